/*
 * frame_dataset.h - frame-level phoneme classification data: every 10 ms
 * frame of every utterance of a split is one example, its input the frame
 * and its K neighbours on each side (a context window of 2K+1 frames).
 *
 * Storage, without copies of the windows: all utterances' MFCC rows are
 * kept in one float array with K zero rows before each utterance and after
 * the last, so the window of any frame is one contiguous run of (2K+1)*F
 * floats, zero-padded at utterance edges:
 *
 *   [0]*K  u0 frames  [0]*K  u1 frames  [0]*K ... u_last frames  [0]*K
 *
 *   window(i) = rows [row(i) - K, row(i) + K], row(i) = the row of frame i.
 *
 * A batch is the only copy: the engine's loader (include/mytorch/data.h)
 * gathers B windows into a [B, (2K+1)*F] float buffer on its background
 * thread while the model trains on the current batch (a ring of buffers),
 * so the training loop never waits on data once warm.
 * mt_frame_source_dataset is the dataset the loader reads;
 * mt_frame_loader wraps the two with the frame batch's names.
 *
 * Reads the course layout (docs/speech-data.md): <split>/mfcc/<utt>.npy
 * float32/float64 [T, F], and labels from <split>/labels/<utt>.npy (integer
 * [T]) or, as the course ships them, <split>/transcript/<utt>.npy (strings,
 * one phone per frame, [T] or [T+2] wrapped in [SOS]/[EOS]). Utterances are
 * taken in sorted file-name order.
 */
#ifndef MT_MODELS_FRAME_DATASET_H
#define MT_MODELS_FRAME_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "mytorch/mytorch.h"

typedef struct mt_frame_dataset {
    int context;            /* K: frames on each side of the centre frame */
    int feature_dim;        /* F: MFCC coefficients per frame */
    int n_utts;
    char **utt_ids;         /* [n_utts]: file names without ".npy" */
    int64_t *utt_start;     /* [n_utts + 1]: first frame index of each utterance; utt_start[n_utts] = n_frames */
    int64_t n_frames;       /* examples */
    float *rows;            /* [n_rows, F]: the padded layout above */
    int64_t n_rows;         /* n_frames + (n_utts + 1) * K */
    int64_t *labels;        /* [n_frames], or NULL when the split has no labels (a test set) */
    int n_classes;          /* 1 + the largest label, or 0 without labels */
} mt_frame_dataset;

typedef struct mt_frame_dataset_opts {
    int context;            /* K (BENCH mlp_speech: 16) */
    int64_t max_utts;       /* read at most this many utterances (0: all) */
    bool require_labels;    /* a split without labels is an error (train/dev) */
    int n_classes;          /* > 0: every label must lie in [0, n_classes), else an error naming the file */
} mt_frame_dataset_opts;

/* Reads split_dir (e.g. DIR/train-clean-100). Errors name the file and what
   is wrong: a missing mfcc/ folder, an unreadable .npy, a feature width that
   differs between utterances, a label count that differs from the frame
   count, a phone string outside [SIL] + the 39 ARPAbet phones, a label
   outside [0, n_classes) (with its file, frame and value). On error
   nothing is allocated and *out is untouched. labels/ is preferred over
   transcript/ when both exist (a generated corpus's transcript/ holds the
   phone sequence, not frame labels). opts NULL: K = 0, every utterance,
   labels optional. */
mt_status mt_frame_dataset_load(const char *split_dir, const mt_frame_dataset_opts *opts, mt_frame_dataset *out);
void mt_frame_dataset_free(mt_frame_dataset *ds);

/* The row (in ds->rows) of frame i's centre; its window starts K rows earlier.
   -1 (and an error) when i is outside [0, n_frames). */
int64_t mt_frame_dataset_row(const mt_frame_dataset *ds, int64_t frame);
/* Copies frame i's window, (2K+1)*F floats, into dst (zeros, and an error,
   when i is outside [0, n_frames)). */
void mt_frame_dataset_window(const mt_frame_dataset *ds, int64_t frame, float *dst);

/* Per-coefficient mean and standard deviation over all frames (not the
   padding): mean[F], std[F]. */
void mt_frame_dataset_stats(const mt_frame_dataset *ds, double *mean, double *std);
/* rows = (rows - mean) / std for every real row; padding rows stay zero. A
   coefficient with std 0 is only centred. */
void mt_frame_dataset_normalize(mt_frame_dataset *ds, const float *mean, const float *std);

/* ---------------------------------------------------------------- augmentation */
/* SpecAugment-style masking of one window, drawn from a counter-based
   generator so that a batch's masks are a function of (seed, epoch, batch
   index) alone: up to freq_masks bands of at most freq_width coefficients
   set to zero across the whole window, and up to time_masks runs of at most
   time_width frames of the window set to zero. All zero: no masking. */
typedef struct mt_frame_masking {
    int freq_masks, freq_width;
    int time_masks, time_width;
} mt_frame_masking;

/* Masks one window ((2K+1) frames of F coefficients, row-major) in place, as
   the loader masks row `row` of batch `batch` of epoch `epoch`: each band's
   width is uniform in [0, freq_width] and its first coefficient uniform
   among the positions where it fits; the same for the time runs. */
void mt_frame_mask_window(const mt_frame_masking *masking, int context, int feature_dim, uint64_t seed,
                          int64_t epoch, int64_t batch, int64_t row, float *window);

/* ---------------------------------------------------------------- the dataset view */
/* What the dataset view reads: the frames, the masking (all zero: none), and
   the frame count when it was made (a change is reported, never read past). */
typedef struct mt_frame_source {
    const mt_frame_dataset *ds;
    mt_frame_masking masking;
    int64_t n_frames;
} mt_frame_source;

/* ds as a dataset of the engine's loader (include/mytorch/data.h): item i is
   frame i; field 0 "x" its window, (2K+1)*F f32, masked with (seed, epoch,
   batch, row) when masking is set (mt_frame_mask_window); field 1 "y" its
   label (i64), present when ds has labels. Fills *src, which the dataset
   reads and which (with ds) must outlive every loader made from it. */
mt_dataset mt_frame_source_dataset(mt_frame_source *src, const mt_frame_dataset *ds, const mt_frame_masking *masking);

/* ---------------------------------------------------------------- the loader */
typedef struct mt_frame_loader_opts {
    int batch_size;         /* B */
    bool shuffle;           /* a fresh permutation of the frames each epoch, from (seed, epoch) */
    bool drop_last;         /* skip a final partial batch */
    uint64_t seed;
    mt_frame_masking masking;   /* applied to training batches only when set */
    int prefetch;           /* batches prepared ahead by the background thread (0: 2; < 0: no thread, batches made on demand) */
    bool pinned;            /* page-locked host buffers (faster host->device copies when training on cuda) */
} mt_frame_loader_opts;

typedef struct mt_frame_batch {
    int64_t index;          /* batch number within the epoch */
    int64_t size;           /* rows in this batch (<= batch_size) */
    const float *x;         /* [size, (2K+1)*F], row-major */
    const int64_t *y;       /* [size] labels, or NULL without labels */
    const int64_t *frames;  /* [size]: which frame of the dataset each row is */
} mt_frame_batch;

typedef struct mt_frame_loader mt_frame_loader;

/* The loader borrows ds (which must outlive it). Its calls are made from one
   consumer thread. */
mt_frame_loader *mt_frame_loader_new(const mt_frame_dataset *ds, const mt_frame_loader_opts *opts);
void mt_frame_loader_free(mt_frame_loader *loader);
/* Batches per epoch. */
int64_t mt_frame_loader_batches(const mt_frame_loader *loader);
/* Starts epoch `epoch` at batch `first_batch` (0 for the whole epoch; a
   resumed run passes the batch it stopped before). The order and the masks
   depend only on (seed, epoch), so a resumed epoch yields the same batches
   as an uninterrupted one. */
mt_status mt_frame_loader_start(mt_frame_loader *loader, int64_t epoch, int64_t first_batch);
/* The next batch of the epoch: true and *batch filled (valid until the next
   call of mt_frame_loader_next or start), or false at the end of the epoch.
   Also false on an error (mt_last_error() says which); check
   mt_frame_loader_failed(). */
bool mt_frame_loader_next(mt_frame_loader *loader, mt_frame_batch *batch);
bool mt_frame_loader_failed(const mt_frame_loader *loader);
/* Seconds the consumer spent waiting for batches since the loader was made
   (how often the model waited on data). */
double mt_frame_loader_wait_seconds(const mt_frame_loader *loader);

#endif
