/*
 * data.h - datasets and the prefetching batch loader (PyTorch's Dataset,
 * DataLoader and collate_fn), docs/data-loading.md.
 *
 * A dataset is n items and a callback that writes one item into its row of
 * a batch's host buffers. An item has up to MT_DATA_MAX_FIELDS fields (the
 * input, the label, ...), each of a fixed dtype and shape, or variable in
 * its first dim (a sequence of T_i frames, a transcript of L_i symbols):
 *
 *   fixed field     item shape S          batch [B, S...]
 *   variable field  item shape [T_i, S...]  batch [B, max_i T_i, S...], the tail
 *                   of each row filled with the field's pad value, and the
 *                   lengths [B] beside it
 *
 * so a CTC or attention batch is (inputs padded + input lengths, targets
 * padded + target lengths) with no collate code in the task.
 *
 * The loader makes the batches of an epoch in an order that is a function of
 * (seed, epoch) only: a Fisher-Yates shuffle drawn from a counter-based hash
 * (or the dataset's own order), optionally cut into buckets sorted by length.
 * Batch b of epoch e is the same whatever the prefetch depth, the thread
 * timing, or where the epoch was started, so a run resumes at any batch.
 * A background thread fills a ring of buffers ahead of the consumer
 * (page-locked with .pinned, for fast copies to a GPU); an error in the
 * dataset's callback reaches the consumer's thread with its message.
 */
#ifndef MYTORCH_DATA_H
#define MYTORCH_DATA_H

#include "mytorch/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { MT_DATA_MAX_FIELDS = 8 };

/* One field of an item. */
typedef struct mt_data_field {
    const char *name;                 /* "x", "y", "targets": for messages */
    mt_dtype dtype;
    int ndim;                         /* the item's dims: 0 (one value per item) .. MT_MAX_DIMS - 1 */
    int64_t shape[MT_MAX_DIMS - 1];   /* the item's shape; a variable field's shape[0] is ignored */
    bool variable;                    /* shape[0] is the item's own length (mt_dataset.length) */
    double pad;                       /* a variable field's padding value (0 unless set) */
} mt_data_field;

/* Where a row is being made: the loader's seed, the epoch, the batch and
   the row within it (e.g. for augmentation drawn from these alone). */
typedef struct mt_data_pos {
    uint64_t seed;
    int64_t epoch, batch, row;
} mt_data_pos;

typedef struct mt_dataset {
    int64_t n;                                   /* items */
    int n_fields;
    mt_data_field fields[MT_DATA_MAX_FIELDS];
    void *ctx;                                   /* the callbacks' first argument (borrowed) */
    /* Writes item `item` into its row: dst[f] is where field f's values of
       the row start (row-major, the item's shape; a variable field has room
       for length(item, f) steps, the loader pads the rest). Runs on the
       loader's thread: it must only read shared data and must not touch
       step scopes or devices; on failure it returns a status and sets a
       message (mt_set_error), which the consumer then gets. */
    mt_status (*get)(void *ctx, int64_t item, const mt_data_pos *pos, void *const *dst);
    /* The length of variable field `field` of item (>= 0). Called for every
       item when the loader is made; NULL when no field is variable. */
    int64_t (*length)(void *ctx, int64_t item, int field);
    /* Optional: the order of epoch `epoch`, a permutation of 0..n-1 written
       to perm, in place of the loader's shuffle (called by start, on the
       consumer's thread). */
    mt_status (*order)(void *ctx, uint64_t seed, int64_t epoch, int64_t *perm);
} mt_dataset;

typedef struct mt_loader_opts {
    int64_t batch_size;     /* B */
    bool shuffle;           /* a new order each epoch, from (seed, epoch) */
    bool drop_last;         /* skip the epoch's final partial batch */
    uint64_t seed;
    int prefetch;           /* batches made ahead by the background thread (0: 2; < 0: no thread, made in next) */
    bool pinned;            /* page-locked buffers (mt_pinned_alloc) */
    /* Variable-length batches: by the length of the first variable field. */
    int64_t bucket;         /* > 0: the order is cut into buckets of bucket * B items, each sorted by decreasing
                               length and cut into batches; with shuffle the batches' order is then shuffled */
    bool sort;              /* each batch's rows by decreasing length (pack_padded_sequence's order) */
} mt_loader_opts;

/* One field of a batch, in the loader's host memory. */
typedef struct mt_batch_field {
    mt_dtype dtype;
    int ndim;                         /* 1 + the item's dims */
    int64_t shape[MT_MAX_DIMS];       /* [size, ...]; a variable field [size, longest, ...] */
    void *data;
    const int64_t *lengths;           /* a variable field: [size] each row's length; else NULL */
} mt_batch_field;

/* A batch: valid until the next mt_loader_next or mt_loader_start. */
typedef struct mt_batch {
    int64_t epoch, index, size;       /* index: the batch's number in its epoch; size: rows (<= B) */
    const int64_t *items;             /* [size]: the dataset item of each row */
    int n_fields;
    mt_batch_field fields[MT_DATA_MAX_FIELDS];
} mt_batch;

typedef struct mt_loader mt_loader;

/* The loader copies *ds and *opts and borrows ds->ctx (which must outlive
   it). NULL and an error for a bad dataset or options. Its calls are made
   from one consumer thread. */
mt_loader *mt_loader_new(const mt_dataset *ds, const mt_loader_opts *opts);
/* Stops the thread (it finishes at most the batch it is making) and frees
   everything, at any point of an epoch. NULL is ignored. */
void mt_loader_free(mt_loader *loader);
/* Batches per epoch: ceil(n / B), or floor with drop_last. */
int64_t mt_loader_batches(const mt_loader *loader);
/* Starts epoch `epoch` at batch first_batch (0: all of it; a resumed run
   passes the batches it had done), dropping whatever was made ahead. */
mt_status mt_loader_start(mt_loader *loader, int64_t epoch, int64_t first_batch);
/* The next batch of the epoch: true and *batch filled, or false at the end
   of the epoch and on an error (then mt_loader_failed is true and
   mt_last_error() names the batch, the item and the dataset's message). */
bool mt_loader_next(mt_loader *loader, mt_batch *batch);
bool mt_loader_failed(const mt_loader *loader);
/* Seconds mt_loader_next spent waiting for batches since the loader was made. */
double mt_loader_wait_seconds(const mt_loader *loader);

/* Field f of b as a tensor on device (in the current scope): on the CPU it
   wraps the loader's buffer (valid while the batch is), elsewhere a copy. */
mt_tensor *mt_batch_tensor(const mt_batch *b, int field, mt_device device);
/* The lengths of variable field f as an I64 [size] tensor on device. */
mt_tensor *mt_batch_lengths(const mt_batch *b, int field, mt_device device);

/* The counter-based hash behind the loader's draws (splitmix64's mixer of
   key ^ mix(value)): chain it, mt_data_hash(mt_data_hash(seed, epoch), row),
   for draws that depend on a position and on nothing else. */
uint64_t mt_data_hash(uint64_t key, uint64_t value);

#ifdef __cplusplus
}
#endif

#endif
