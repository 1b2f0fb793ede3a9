/*
 * speech_frames_model.h - the frame classifier: BENCH.md's mlp_speech and its
 * variants, built in one place for the task (speech_frames_task.c) and the
 * benchmark (bench/bench_mlp_speech*.c):
 *
 *   x [B, inputs]  ->  { Linear - BatchNorm1d - GELU(erf) - Dropout(p) } per hidden width  ->  Linear -> classes logits
 *
 * or, with linear, the single Linear(inputs, classes) of the linear
 * baseline. mlp_speech is inputs 495 ((2 16 + 1) x 15), hidden 1024, 1024,
 * 512, dropout 0.2 (the task has 40 classes, the benchmark row 43).
 */
#ifndef MT_MODELS_SPEECH_FRAMES_MODEL_H
#define MT_MODELS_SPEECH_FRAMES_MODEL_H

#include "mytorch/mytorch.h"

typedef struct mt_speech_mlp_opts {
    int64_t inputs;             /* (2K + 1) F */
    int n_hidden;
    const int *hidden;          /* [n_hidden] widths */
    int classes;
    double dropout;             /* p of every Dropout */
    mt_generator *dropout_gen;  /* the Dropouts' generator (borrowed); NULL: the default one */
    bool linear;                /* the linear baseline (hidden ignored) */
} mt_speech_mlp_opts;

/* The model on the CPU, in training mode; the initial weights are PyTorch's
   defaults drawn from the default generator, layer by layer in order (seed
   it first). NULL and an error on a bad width or out of memory. */
mt_module *mt_speech_frames_mlp(const mt_speech_mlp_opts *o);

#endif
