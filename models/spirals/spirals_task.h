/*
 * spirals_task.h - the demo task: train an MLP on the two-spirals problem
 * (models/spirals/spirals.h) with AdamW and cross-entropy in minibatches,
 * through the shared trainer (models/common/trainer.h); then report the
 * accuracy on the training set and on a held-out set drawn with another
 * seed. `mytorch train spirals` runs it. With a run folder it writes
 * metrics.jsonl and checkpoints and resumes like every task.
 */
#ifndef MT_MODELS_SPIRALS_TASK_H
#define MT_MODELS_SPIRALS_TASK_H

#include <signal.h>
#include <stdio.h>
#include "mytorch/mytorch.h"

typedef struct mt_spirals_opts {
    int epochs;              /* 0: 200 */
    uint64_t seed;           /* training data, initial weights, shuffling; held-out data uses seed + 1 */
    int hidden;              /* width of the two hidden layers; 0: 64 */
    double lr;               /* AdamW learning rate; 0: 1e-2 */
    double weight_decay;     /* AdamW weight decay, used as given */
    int batch_size;          /* 0: 64 */
    int64_t points_per_arm;  /* 0: 500 (1000 points per set) */
    double turns;            /* 0: 1.5 */
    double noise;            /* 0: 0.01; negative for none */
    FILE *progress;          /* progress bar (epoch, loss, accuracy, samples/s, ETA), or NULL */
    const char *device;      /* "cpu", "cuda", "cuda:N", "cuda-emu"; NULL: mt_default_device() */
    /* the session (docs/training.md) */
    const char *run_dir;     /* NULL: nothing written */
    const char *resume;      /* a checkpoint, "auto" or NULL; the settings then come from it */
    int64_t save_every, stop_after;
    volatile sig_atomic_t *stop_flag;
} mt_spirals_opts;

typedef struct mt_spirals_report {
    double train_accuracy, test_accuracy;   /* fractions in [0, 1] */
    double final_loss;                      /* mean training loss of the last epoch */
    double seconds;                         /* training time */
    int64_t steps, samples, parameters;     /* steps of the run; samples of this session */
    int epochs;                             /* the run's */
    bool stopped;                           /* stopped early (the accuracies are then not measured) */
    mt_device device;                       /* where it trained */
} mt_spirals_report;

/* Trains and evaluates; on error returns the status (mt_last_error()). */
mt_status mt_spirals_train(const mt_spirals_opts *opts, mt_spirals_report *report);

#endif
