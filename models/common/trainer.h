/*
 * trainer.h - the one training loop of every task (docs/training.md).
 *
 * A task supplies its model, its data and what one batch means:
 *
 *   build        the model (on the CPU; the initial weights come from the
 *                default generator, which the trainer seeds with the run's
 *                seed; gen is the run's own generator for draws during the
 *                steps, e.g. mt_nn_dropout_gen)
 *   train_step   a batch -> the loss (what backward differentiates) and the
 *                batch's sums of the task's training metrics
 *   eval_step    a batch of the evaluation data -> sums of the evaluation
 *                metrics (each metric = its sum / items)
 *   metadata     its settings, saved in every checkpoint
 *
 * and the trainer does the rest: device selection, the run folder,
 * the optimizer (AdamW or SGD with momentum), the learning-rate schedule, gradient clipping, the progress bar
 * with its ETA, the evaluation pass after each epoch, metrics.jsonl, the
 * last and best checkpoints (mt_checkpoint_save_meta), exact resumption
 * (epoch and mid-epoch: the scheduler replayed, the run's generator and the
 * loader's position restored), stopping on a flag (SIGINT) with a save, and
 * stopping on a non-finite loss without overwriting a checkpoint.
 *
 * One step, in this order (the same arithmetic as a hand-written loop):
 *
 *   scope { out = train_step(batch); backward(out.loss); [clip]; optimizer step;
 *           zero_grad; [cosine: scheduler step]; loss, sums = items of out }
 */
#ifndef MT_MODELS_COMMON_TRAINER_H
#define MT_MODELS_COMMON_TRAINER_H

#include <signal.h>
#include <stdio.h>

#include "mytorch/mytorch.h"

enum { MT_TRAIN_MAX_METRICS = 8 };

typedef enum mt_train_schedule {
    MT_SCHEDULE_COSINE,    /* linear warm-up over `warmup` of all steps, then cosine decay to lr/100; every step */
    MT_SCHEDULE_PLATEAU,   /* ReduceLROnPlateau on the best metric of the evaluation; every epoch */
    MT_SCHEDULE_NONE,
} mt_train_schedule;
const char *mt_train_schedule_name(mt_train_schedule s);

typedef enum mt_train_optimizer {
    MT_OPTIMIZER_ADAMW,    /* AdamW, betas (0.9, 0.999), eps 1e-8 (the default) */
    MT_OPTIMIZER_SGD,      /* SGD with momentum (and Nesterov when asked), L2 weight decay as PyTorch's SGD */
} mt_train_optimizer;
const char *mt_train_optimizer_name(mt_train_optimizer o);
bool mt_train_optimizer_from_name(const char *name, mt_train_optimizer *o);
bool mt_train_schedule_from_name(const char *name, mt_train_schedule *s);

/* A metric: a running sum over a pass divided by its items (training: the
   epoch's samples so far; evaluation: the data's items). */
typedef struct mt_metric_spec {
    const char *name;        /* "acc": "train_acc" / "dev_acc" in metrics.jsonl, "acc" in the lines */
    bool percent;            /* shown as a percentage */
    const char *sum_key;     /* training metrics: the checkpoint key of the epoch's running sum (NULL: "epoch_<name>_sum") */
} mt_metric_spec;

/* What train_step gives back: tensors of the step's scope, read after the update. */
typedef struct mt_train_step_out {
    mt_tensor *loss;                          /* the batch's mean loss, a scalar */
    mt_tensor *sums[MT_TRAIN_MAX_METRICS];    /* per training metric: its sum over the batch, a scalar */
} mt_train_step_out;

typedef mt_status (*mt_train_step_fn)(void *ctx, mt_module *net, const mt_batch *b, mt_device device, mt_train_step_out *out);
/* Adds the batch's contribution to each evaluation metric's sum (eval mode, no tape, in a scope of its own). */
typedef mt_status (*mt_eval_step_fn)(void *ctx, mt_module *net, const mt_batch *b, mt_device device, double *sums);

typedef struct mt_task {
    const char *name;                /* "speech-frames": the checkpoints' "task", the messages' prefix */
    void *ctx;                       /* the callbacks' first argument */
    mt_module *(*build)(void *ctx, mt_generator *gen);
    /* Optional: once the model holds its initial or resumed state, before the first step
       (e.g. input statistics: set them on a fresh run, read them back on a resumed one). */
    mt_status (*prepare)(void *ctx, mt_module *net, bool resumed);
    mt_train_step_fn train_step;
    int n_train_metrics;
    mt_metric_spec train_metrics[MT_TRAIN_MAX_METRICS];
    const mt_dataset *train_data;    /* shuffled each epoch from (seed, epoch) */
    bool drop_last;                  /* drop each epoch's last partial batch */
    /* The evaluation after each epoch (optional: eval_data NULL) */
    const mt_dataset *eval_data;
    const char *eval_name;           /* "dev": "dev_acc" in metrics.jsonl, "| dev loss ... acc ..." in the lines */
    mt_eval_step_fn eval_step;
    int n_eval_metrics;
    mt_metric_spec eval_metrics[MT_TRAIN_MAX_METRICS];
    int best_metric;                 /* the evaluation metric (index) that picks best.safetensors and drives plateau */
    bool maximize;                   /* a larger value of it is better */
    int64_t eval_batch;              /* 0: the training batch */
    /* The task's settings, saved in every checkpoint after "task" */
    int n_meta;
    const char *const *meta_keys;
    const char *const *meta_values;
    /* The header line: "<name>: <n> training <items>, <m> <eval_name> <items>, <summary>, <P> parameters, ..." */
    const char *items;               /* "frames" (NULL: "items") */
    const char *summary;             /* e.g. "input 33 x 15 = 495" (may be NULL) */
} mt_task;

typedef struct mt_train_opts {
    /* The run: saved in every checkpoint; a resumed run takes them from there
       (a larger epochs extends it). */
    int epochs;
    int64_t batch_size;
    double lr, weight_decay;
    mt_train_optimizer optimizer;    /* AdamW (0) or SGD */
    double momentum;                 /* SGD's momentum */
    bool nesterov;                   /* SGD's Nesterov momentum */
    mt_train_schedule schedule;
    double warmup;                   /* cosine: warm-up steps as a fraction of all steps */
    double plateau_factor;           /* plateau: lr *= factor ... */
    int plateau_patience;            /* ... after more than this many epochs without a better metric */
    double clip_grad_norm;           /* > 0: the gradients' total norm is clipped to it before each update */
    uint64_t seed;                   /* initial weights, order, the run's generator */
    /* The session (not saved) */
    const char *run_dir;             /* NULL: nothing is written (no checkpoints, metrics or resume) */
    const char *resume;              /* a checkpoint; "auto": run_dir/last.safetensors when it exists; NULL: fresh */
    int64_t save_every;              /* also save last.safetensors every N steps (0: at epoch ends only) */
    int64_t stop_after;              /* stop (saving) once the global step reaches N (0: never) */
    volatile sig_atomic_t *stop_flag;   /* set nonzero (SIGINT): finish the step, save, return stopped */
    const char *device;              /* "cpu", "cuda", "cuda:N", "cuda-emu"; NULL: mt_default_device() */
    int prefetch;                    /* the loaders' batches made ahead (0: their default) */
    bool detect_anomaly;             /* mt_set_detect_anomaly for the run: the first op making a NaN is named */
    FILE *progress;                  /* the bar and the epoch lines, or NULL */
    int log_every;                   /* an epoch line every N epochs, and the last (0 or 1: every epoch) */
} mt_train_opts;

typedef struct mt_train_report {
    int epochs;                                  /* the run's (the checkpoint's on resume, or more) */
    int epochs_done;                             /* complete epochs */
    int64_t steps;                               /* global steps (all sessions) */
    int64_t session_steps, session_samples;
    double seconds, samples_per_s, data_wait_s;  /* this session's steps (evaluations excluded) */
    double train_loss;                           /* the last complete epoch's running means */
    double train_metrics[MT_TRAIN_MAX_METRICS];
    bool has_eval;                               /* an evaluation ran in this session: its values */
    double eval_metrics[MT_TRAIN_MAX_METRICS];
    double best;                                 /* the best metric so far, and its epoch (0: none) */
    int best_epoch;
    int64_t parameters;
    mt_device device;
    uint64_t seed;                               /* the run's */
    int64_t batch_size;
    bool resumed;                                /* continued from a checkpoint */
    bool stopped;                                /* stopped before the last epoch; last.safetensors holds the state */
    bool finished;                               /* all epochs done */
} mt_train_report;

/* Trains (or resumes). On success *report is filled and, when net_out is
   given, *net_out is the trained model (on the device; the caller frees
   it). On error: the status, mt_last_error() names the task and the
   problem, nothing is returned, and a run folder this call made is removed
   again unless it holds a checkpoint. */
mt_status mt_train(const mt_task *task, const mt_train_opts *opts, mt_train_report *report, mt_module **net_out);

/* The session's paths, checked before a task loads its data (mt_train
   calls it too): run_dir, when it exists, must be a folder, and a fresh run
   (resume NULL) must not go into one that holds last.safetensors; *path is
   the checkpoint a session resumes from: NULL for a fresh run (resume NULL,
   or "auto" without run_dir/last.safetensors), else a malloc'd path that is
   a file. Errors name what a path is ("is a folder, not a file"). */
mt_status mt_train_resume_path(const char *who, const char *run_dir, const char *resume, char **path);
/* Reads the run settings of a checkpoint's metadata (the mt_train_opts
   fields saved there) into *opts, and checks that its "task" is who. */
mt_status mt_train_read_settings(const char *who, const char *path, const mt_safetensors_metadata *meta, mt_train_opts *opts);

/* The device a name gives (NULL: the default), checked to be usable here. */
mt_status mt_train_device(const char *who, const char *name, mt_device *device);

/* The evaluation pass: net in eval mode, no tape, data in order in batches
   of batch_size, one scope per batch; step adds to sums[0..n_sums). *items
   gets the items seen. The model's mode is restored. */
mt_status mt_train_evaluate(mt_module *net, const mt_dataset *data, int64_t batch_size, mt_device device, int prefetch,
                            mt_eval_step_fn step, void *ctx, int n_sums, double *sums, int64_t *items);

#endif
