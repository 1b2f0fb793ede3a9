/*
 * speech_frames_task.h - frame-level phoneme classification (the course's
 * HW1P2): every 10 ms MFCC frame, with K frames of context on each side, is
 * classified into one of the 40 phones of models/speech_data/speech_phones.h ([SIL] +
 * 39 ARPAbet). `mytorch train|eval|predict speech-frames` run it
 * (docs/speech-frames.md).
 *
 * The model (BENCH.md mlp_speech by default):
 *
 *   x [B, (2K+1)F]  ->  { Linear - BatchNorm1d - GELU - Dropout(p) } per hidden width  ->  Linear -> 40 logits
 *
 * or, with linear = true, a single Linear (the linear baseline). Inputs are
 * standardized per MFCC coefficient with the mean and standard deviation of
 * the training split; both are buffers of the model ("input_mean",
 * "input_std"), so every checkpoint carries them.
 *
 * Training goes through the shared trainer (models/common/trainer.h,
 * docs/training.md): a run folder holds last.safetensors (every epoch, and
 * every save_every steps), best.safetensors (best dev accuracy) and
 * metrics.jsonl (one JSON object per epoch). A checkpoint is a
 * mt_checkpoint_load_meta file ("model.*", "optim.*") whose metadata holds
 * the task's settings (the model's shape, masking, max_utts), the run's
 * (epochs, batch, AdamW, schedule, seed) and its position (epoch, step,
 * scheduler history, dropout generator), so that eval, predict and resume
 * need nothing else; a resumed run ends with bitwise the same weights as an
 * uninterrupted one (same device and thread count).
 */
#ifndef MT_MODELS_SPEECH_FRAMES_TASK_H
#define MT_MODELS_SPEECH_FRAMES_TASK_H

#include <signal.h>
#include <stdio.h>

#include "mytorch/mytorch.h"
#include "models/common/trainer.h"

enum { MT_SPEECH_FRAMES_MAX_HIDDEN = 16 };

typedef struct mt_speech_frames_opts {
    const char *data_dir;        /* corpus root: train-clean-100/, dev-clean/, test-clean/ */
    const char *run_dir;         /* run folder (made when missing) */
    const char *resume;          /* a checkpoint to continue from; "auto": run_dir/last.safetensors when it
                                    exists (else a fresh start); NULL: a fresh start */

    /* the model */
    bool linear;                 /* the linear baseline: one Linear((2K+1)F, 40) */
    int n_hidden;                /* hidden layers of the MLP */
    int hidden[MT_SPEECH_FRAMES_MAX_HIDDEN];
    int context;                 /* K */
    double dropout;              /* p of every hidden layer's Dropout */

    /* training (with resume, these come from the checkpoint; only a larger epochs extends the run) */
    int epochs;                  /* 0: the default (10) on a fresh run, the checkpoint's on resume */
    int batch_size;
    double lr, weight_decay;     /* AdamW */
    double label_smoothing;
    mt_train_schedule schedule;  /* cosine (warm-up, then to lr/100; every step), plateau (on dev accuracy; every epoch), none */
    double warmup;               /* cosine: warm-up steps as a fraction of all steps */
    double plateau_factor;       /* plateau: lr *= factor ... */
    int plateau_patience;        /* ... after this many epochs without a better dev accuracy */
    double clip_grad_norm;       /* > 0: clip the gradients' total norm to it (0: off) */
    int freq_mask, time_mask;    /* loader masking: one band of up to N coefficients / one run of up to N frames; 0: off */
    uint64_t seed;               /* initial weights, shuffling, masks, dropout */
    int64_t max_utts;            /* read at most this many utterances of each split (0: all) */

    /* the session (not part of the run: a resumed run may change them) */
    int64_t save_every;          /* also save last.safetensors every N steps (0: at epoch ends only) */
    int64_t stop_after;          /* stop (saving last.safetensors) once the global step reaches N (0: never) */
    volatile sig_atomic_t *stop_flag;   /* when set nonzero (e.g. by SIGINT): finish the step, save, return */
    const char *device;          /* "cpu", "cuda", "cuda:N", "cuda-emu"; NULL: mt_default_device() */
    bool skip_test;              /* do not evaluate on test-clean at the end */
    int prefetch;                /* loader batches prepared ahead (0: the loader's default) */
    bool detect_anomaly;         /* name the first op that makes a NaN or infinity (slow; mt_set_detect_anomaly) */
    FILE *progress;              /* progress bar and per-epoch lines, or NULL */
} mt_speech_frames_opts;

/* BENCH mlp_speech: hidden 1024,1024,512, K 16, dropout 0.2, batch 1024, AdamW lr 1e-3 wd 0.01, cosine with
   5% warm-up, 10 epochs, plateau factor 0.5 patience 1, run folder runs/speech-frames. */
mt_speech_frames_opts mt_speech_frames_defaults(void);
/* Parses "1024,1024,512" into opts->hidden (an empty string or "none": no hidden layer). */
mt_status mt_speech_frames_parse_hidden(const char *text, mt_speech_frames_opts *opts);

typedef struct mt_speech_frames_report {
    int epochs_done;                 /* complete epochs */
    int64_t steps;                   /* global steps (all sessions) */
    int64_t session_steps, session_samples;
    double seconds, samples_per_s, data_wait_s;   /* this session's training (evaluations excluded) */
    double train_loss, train_acc;    /* the last complete epoch's running means */
    double dev_loss, dev_acc;        /* the final model on dev-clean */
    double best_dev_acc;
    int best_epoch;
    bool has_test;
    double test_loss, test_acc;
    int majority_class;              /* the most frequent training label */
    double majority_dev_acc, majority_test_acc;
    int64_t parameters;
    int64_t train_frames, dev_frames, test_frames;
    mt_device device;
    bool resumed;                    /* continued from a checkpoint */
    bool stopped;                    /* stopped before the last epoch (stop_after or stop_flag); last.safetensors holds the state */
    bool finished;                   /* all epochs done: dev/test/majority fields are set */
} mt_speech_frames_report;

/* Trains (or resumes); on error returns the status (mt_last_error()). */
mt_status mt_speech_frames_train(const mt_speech_frames_opts *opts, mt_speech_frames_report *report);

/* ---------------------------------------------------------------- eval and predict */
typedef struct mt_speech_frames_eval_opts {
    const char *checkpoint;
    const char *data_dir;
    const char *split;           /* "dev-clean", "test-clean", ... */
    int batch_size;              /* 0: the checkpoint's */
    int64_t max_utts;            /* 0: the checkpoint's (so a run's dev accuracy reproduces); < 0: all */
    const char *device;
    FILE *progress;
} mt_speech_frames_eval_opts;

typedef struct mt_speech_frames_eval_report {
    int64_t frames;
    double loss, accuracy;       /* mean cross-entropy (no smoothing), fraction correct */
    int n_classes;
    int64_t *confusion;          /* [n_classes * n_classes]: row = true class, column = predicted */
} mt_speech_frames_eval_report;

mt_status mt_speech_frames_eval(const mt_speech_frames_eval_opts *opts, mt_speech_frames_eval_report *report);
void mt_speech_frames_eval_report_free(mt_speech_frames_eval_report *report);
/* Per-class accuracy and the most frequent confusion, one line per class seen. */
void mt_speech_frames_print_confusion(const mt_speech_frames_eval_report *report, FILE *f);

/* Writes a Kaggle-style CSV "id,label": id is the global frame index (utterances in sorted file-name order,
   frames in time order), label the predicted phone's name ("[SIL]", "AA", ...). The split needs no labels.
   *rows (may be NULL) gets the number of rows written. The file is written to a temporary name and renamed. */
mt_status mt_speech_frames_predict(const mt_speech_frames_eval_opts *opts, const char *out_csv, int64_t *rows);

#endif
