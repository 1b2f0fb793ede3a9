/*
 * frame_loader.c - frame classification batches (frame_dataset.h,
 * docs/frame-dataset.md): the frame dataset as a dataset of the engine's
 * loader (include/mytorch/data.h: item i is frame i, its window and its
 * label), SpecAugment-style masking, and mt_frame_loader, a thin wrapper
 * over mt_loader with the frame batch's names.
 *
 * Determinism: the engine's loader orders an epoch by a Fisher-Yates
 * shuffle keyed by (seed, epoch) (docs/data-loading.md); row r of batch b
 * is masked from draws keyed by (seed, epoch, b, r). No draw depends on
 * which thread made the batch, on how far ahead it ran, or on where the
 * epoch was started, so a resumed epoch yields the batches of an
 * uninterrupted one.
 */
#include "models/speech_frames/frame_dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- masking */
enum { TAG_MASK = 0x4d41 };   /* the masks' stream (the loader's order has its own) */

/* Uniform in [0, n) from draw counter c of key; the modulo's bias is at most
   n / 2^64, far below anything measurable. */
static uint64_t uniform_below(uint64_t key, uint64_t c, uint64_t n) { return mt_data_hash(key, c) % n; }

void mt_frame_mask_window(const mt_frame_masking *m, int context, int feature_dim, uint64_t seed,
                          int64_t epoch, int64_t batch, int64_t row, float *window)
{
    if (!m || !window || context < 0 || feature_dim < 1) return;
    const int64_t W = 2 * (int64_t)context + 1, F = feature_dim;
    uint64_t key = mt_data_hash(mt_data_hash(mt_data_hash(mt_data_hash(seed, TAG_MASK), (uint64_t)epoch), (uint64_t)batch),
                                (uint64_t)row);
    uint64_t c = 0;
    /* frequency bands: width w ~ U[0, freq_width] (at most F), first
       coefficient f0 ~ U[0, F - w]; zero across every frame of the window */
    for (int i = 0; i < m->freq_masks && m->freq_width > 0; i++) {
        int64_t w = (int64_t)uniform_below(key, c++, (uint64_t)m->freq_width + 1);
        if (w > F) w = F;
        int64_t f0 = (int64_t)uniform_below(key, c++, (uint64_t)(F - w + 1));
        for (int64_t t = 0; t < W; t++)
            for (int64_t f = f0; f < f0 + w; f++) window[t * F + f] = 0.0f;
    }
    /* time runs: w ~ U[0, time_width] (at most 2K+1) frames from t0 ~ U[0, W - w] */
    for (int i = 0; i < m->time_masks && m->time_width > 0; i++) {
        int64_t w = (int64_t)uniform_below(key, c++, (uint64_t)m->time_width + 1);
        if (w > W) w = W;
        int64_t t0 = (int64_t)uniform_below(key, c++, (uint64_t)(W - w + 1));
        memset(window + t0 * F, 0, (size_t)(w * F) * sizeof *window);
    }
}

static bool masking_on(const mt_frame_masking *m)
{
    return (m->freq_masks > 0 && m->freq_width > 0) || (m->time_masks > 0 && m->time_width > 0);
}

/* ---------------------------------------------------------------- the dataset view */
/* Row `pos->row` of a batch: frame `item`'s window (one contiguous run of
   rows row(f) - K .. row(f) + K), masked, and its label. Runs on the
   loader's thread: reads ds only. */
static mt_status frame_get(void *ctx, int64_t item, const mt_data_pos *pos, void *const *dst)
{
    const mt_frame_source *src = ctx;
    const mt_frame_dataset *ds = src->ds;
    if (ds->n_frames != src->n_frames || !ds->rows)
        return mt_set_error(MT_ERR_STATE, "frame_loader: the dataset changed under the loader (it had %lld frames, now %lld); "
                            "make a new loader", (long long)src->n_frames, (long long)ds->n_frames);
    const int64_t K = ds->context, F = ds->feature_dim, window = (2 * K + 1) * F;
    float *x = dst[0];
    memcpy(x, ds->rows + (mt_frame_dataset_row(ds, item) - K) * F, (size_t)window * sizeof *x);
    if (masking_on(&src->masking))
        mt_frame_mask_window(&src->masking, (int)K, (int)F, pos->seed, pos->epoch, pos->batch, pos->row, x);
    if (ds->labels) *(int64_t *)dst[1] = ds->labels[item];
    return MT_OK;
}

mt_dataset mt_frame_source_dataset(mt_frame_source *src, const mt_frame_dataset *ds, const mt_frame_masking *masking)
{
    *src = (mt_frame_source){ .ds = ds, .n_frames = ds->n_frames };
    if (masking) src->masking = *masking;
    mt_dataset d = {
        .n = ds->n_frames, .n_fields = ds->labels ? 2 : 1, .ctx = src, .get = frame_get,
        .fields = {
            { .name = "x", .dtype = MT_F32, .ndim = 1, .shape = { (2 * (int64_t)ds->context + 1) * ds->feature_dim } },
            { .name = "y", .dtype = MT_I64, .ndim = 0 },
        },
    };
    return d;
}

/* ---------------------------------------------------------------- the loader */
struct mt_frame_loader {
    mt_frame_source src;
    mt_loader *loader;
};

mt_frame_loader *mt_frame_loader_new(const mt_frame_dataset *ds, const mt_frame_loader_opts *opts)
{
    if (!ds || !opts) { mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: NULL %s", ds ? "opts" : "dataset"); return NULL; }
    if (opts->batch_size < 1) {
        mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: batch_size %d < 1", opts->batch_size);
        return NULL;
    }
    const mt_frame_masking *m = &opts->masking;
    if (m->freq_masks < 0 || m->freq_width < 0 || m->time_masks < 0 || m->time_width < 0) {
        mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: negative masking (freq %d x %d, time %d x %d)",
                     m->freq_masks, m->freq_width, m->time_masks, m->time_width);
        return NULL;
    }
    if (ds->n_frames < 0 || ds->context < 0 || ds->feature_dim < 1 || !ds->rows) {
        mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: the dataset is not loaded (n_frames %lld, F %d)",
                     (long long)ds->n_frames, ds->feature_dim);
        return NULL;
    }
    mt_frame_loader *L = calloc(1, sizeof *L);
    if (!L) { mt_set_error(MT_ERR_MEMORY, "frame_loader_new: out of memory"); return NULL; }
    const mt_dataset d = mt_frame_source_dataset(&L->src, ds, m);
    const mt_loader_opts lo = { .batch_size = opts->batch_size, .shuffle = opts->shuffle, .drop_last = opts->drop_last,
                                .seed = opts->seed, .prefetch = opts->prefetch, .pinned = opts->pinned };
    if (!(L->loader = mt_loader_new(&d, &lo))) {
        free(L);
        return NULL;
    }
    return L;
}

void mt_frame_loader_free(mt_frame_loader *L)
{
    if (!L) return;
    mt_loader_free(L->loader);
    free(L);
}

int64_t mt_frame_loader_batches(const mt_frame_loader *L) { return L ? mt_loader_batches(L->loader) : 0; }

mt_status mt_frame_loader_start(mt_frame_loader *L, int64_t epoch, int64_t first_batch)
{
    if (!L) return mt_set_error(MT_ERR_ARGUMENT, "frame_loader_start: NULL loader");
    return mt_loader_start(L->loader, epoch, first_batch);
}

bool mt_frame_loader_next(mt_frame_loader *L, mt_frame_batch *batch)
{
    if (!L || !batch) { mt_set_error(MT_ERR_ARGUMENT, "frame_loader_next: NULL %s", L ? "batch" : "loader"); return false; }
    mt_batch b;
    if (!mt_loader_next(L->loader, &b)) return false;
    *batch = (mt_frame_batch){ .index = b.index, .size = b.size, .x = b.fields[0].data,
                               .y = b.n_fields > 1 ? b.fields[1].data : NULL, .frames = b.items };
    return true;
}

bool mt_frame_loader_failed(const mt_frame_loader *L) { return L ? mt_loader_failed(L->loader) : false; }

double mt_frame_loader_wait_seconds(const mt_frame_loader *L) { return L ? mt_loader_wait_seconds(L->loader) : 0.0; }
