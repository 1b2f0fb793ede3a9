/*
 * bench_mlp_speech_data.c - `mlp_speech_data`: mlp_speech's training step
 * (the same model, loss and AdamW; bench_mlp_speech.c) fed by the frame
 * dataset and its prefetching loader (models/speech_frames/frame_dataset.h) from a corpus
 * folder (`--data DIR`, made by `mytorch data speech`), as
 * `mytorch train speech-frames` trains:
 *
 *   setup (untimed)   load DIR/train-clean-100 with K = 16 frames of context,
 *                     standardize with its own mean and std, make a loader
 *                     (batch 1024, shuffled, last partial batch dropped,
 *                     2 batches prefetched by its thread)
 *   one iteration     take the next batch (waiting when the thread is
 *                     behind), wrap it as tensors (no copy on the CPU), forward,
 *                     cross-entropy, backward, AdamW update
 *
 * Besides the step's time it reports how long the step waited for data
 * (loader_wait_ms, summed over the timed iterations): near zero means the
 * loader's thread keeps up and the figure is mlp_speech's on real data.
 * The corpus must have 15 MFCC coefficients (33 x 15 = 495 inputs, as in
 * BENCH.md). On cuda each batch is copied to the GPU and the step ends with
 * a stream synchronisation, so the wall clock times the whole step;
 * cuda-emu is refused (its speed means nothing; mlp_speech checks the step).
 */
#include "bench/bench.h"

#include <string.h>

#include "mytorch/cuda.h"
#include "models/speech_frames/frame_dataset.h"

enum { BATCH = 1024, CONTEXT = 16, FEATURES = 15 };

typedef struct data_ctx {
    mt_frame_dataset ds;
    mt_frame_loader *loader;
    mt_module *net;
    mt_optimizer *opt;
    mt_device device;
    int64_t epoch;
    int calls, warmup;          /* steps so far; the first `warmup` are not timed */
    double wait_s, wait_max_s;  /* over the timed steps */
} data_ctx;

/* The next batch, starting the next epoch at the end of one. */
static mt_status next_batch(data_ctx *c, mt_frame_batch *b)
{
    for (int tries = 0; tries < 2; tries++) {
        if (mt_frame_loader_next(c->loader, b)) return MT_OK;
        if (mt_frame_loader_failed(c->loader)) return mt_last_status();
        mt_status st = mt_frame_loader_start(c->loader, ++c->epoch, 0);
        if (st != MT_OK) return st;
    }
    return mt_set_error(MT_ERR_STATE, "bench mlp_speech_data: the loader gives no batch (fewer than %d frames?)", BATCH);
}

static mt_status step(void *p)
{
    data_ctx *c = p;
    double waited = mt_frame_loader_wait_seconds(c->loader);
    mt_frame_batch b;
    mt_status st = next_batch(c, &b);
    if (st != MT_OK) return st;
    waited = mt_frame_loader_wait_seconds(c->loader) - waited;
    if (c->calls++ >= c->warmup) {
        c->wait_s += waited;
        if (waited > c->wait_max_s) c->wait_max_s = waited;
    }
    const int64_t width = (2 * CONTEXT + 1) * (int64_t)c->ds.feature_dim;
    mt_scope s = mt_scope_begin();
    /* the loader's buffers, valid until the next call: wrapped, not copied (copied to a GPU) */
    mt_tensor *x = mt_to_device(mt_from_blob(MT_F32, MT_SHAPE(b.size, width), (void *)b.x), c->device);
    mt_tensor *y = mt_to_device(mt_from_blob(MT_I64, MT_SHAPE(b.size), (void *)b.y), c->device);
    mt_tensor *loss = x && y ? mt_cross_entropy(mt_forward(c->net, x), y, (mt_ce_opts){ 0 }) : NULL;
    st = loss ? mt_backward(loss) : mt_last_status();
    if (st == MT_OK) st = mt_step(c->opt);
    mt_optimizer_zero_grad(c->opt);
    if (st == MT_OK && c->device.type == MT_DEVICE_CUDA) st = mt_stream_synchronize(NULL);
    mt_scope_end(s);
    return st;
}

static void teardown(data_ctx *c)
{
    mt_frame_loader_free(c->loader);   /* before the dataset it borrows */
    mt_frame_dataset_free(&c->ds);
    mt_optimizer_free(c->opt);
    mt_module_free(c->net);
    memset(c, 0, sizeof *c);
}

static mt_status setup(data_ctx *c, const mt_bench_opts *opts)
{
    memset(c, 0, sizeof *c);
    c->device = opts->dev;
    c->warmup = opts->warmup;
    char split[4096];
    snprintf(split, sizeof split, "%s/train-clean-100", opts->data_dir);
    mt_frame_dataset_opts fo = { .context = CONTEXT, .require_labels = true };
    mt_status st = mt_frame_dataset_load(split, &fo, &c->ds);
    if (st != MT_OK) return st;
    if (c->ds.feature_dim != FEATURES)
        return mt_set_error(MT_ERR_ARGUMENT, "bench mlp_speech_data: %s has %d MFCC coefficients per frame; the row needs "
                            "%d (33 x %d = 495 inputs, as mlp_speech): make the corpus with `mytorch data speech --mfcc %d`",
                            split, c->ds.feature_dim, FEATURES, FEATURES, FEATURES);
    if (c->ds.n_classes > 43)
        return mt_set_error(MT_ERR_ARGUMENT, "bench mlp_speech_data: %s has labels up to %d; the model has 43 outputs",
                            split, c->ds.n_classes - 1);
    /* standardize each coefficient with the split's own statistics, as the task does */
    double mean[FEATURES], std[FEATURES];
    float fmean[FEATURES], fstd[FEATURES];
    mt_frame_dataset_stats(&c->ds, mean, std);
    for (int f = 0; f < FEATURES; f++) {
        fmean[f] = (float)mean[f];
        fstd[f] = std[f] > 0 ? (float)std[f] : 1.0f;
    }
    mt_frame_dataset_normalize(&c->ds, fmean, fstd);
    mt_frame_loader_opts lo = { .batch_size = BATCH, .shuffle = true, .drop_last = true, .seed = opts->seed,
                                .pinned = opts->dev.type == MT_DEVICE_CUDA };
    c->loader = mt_frame_loader_new(&c->ds, &lo);
    if (!c->loader) return mt_last_status();
    if (mt_frame_loader_batches(c->loader) < 1)
        return mt_set_error(MT_ERR_ARGUMENT, "bench mlp_speech_data: %s has %lld frames, fewer than one batch of %d",
                            split, (long long)c->ds.n_frames, BATCH);
    mt_manual_seed(opts->seed);   /* the initial weights, as mlp_speech's */
    if ((st = mt_bench_mlp_speech_model(opts->dev, &c->net, &c->opt)) != MT_OK) return st;
    return mt_frame_loader_start(c->loader, 0, 0);
}

int mt_bench_mlp_speech_data(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    if (!opts->data_dir || !opts->data_dir[0]) {
        mt_set_error(MT_ERR_ARGUMENT, "mlp_speech_data needs --data DIR, a corpus made by `mytorch data speech` "
                     "(e.g. mytorch data speech --size default --out DIR); mlp_speech times the same step on random data");
        return -1;
    }
    if (opts->dev.type == MT_DEVICE_CUDA_EMU) {
        mt_set_error(MT_ERR_ARGUMENT, "mlp_speech_data times the data path on cpu or cuda; on cuda-emu, "
                     "`mytorch bench mlp_speech --device cuda-emu` checks the step");
        return -1;
    }
    if (max_results < 1) return 0;
    int threads = mt_bench_set_threads(opts->threads);
    data_ctx c;
    double t0 = mt_clock_seconds();
    if (setup(&c, opts) != MT_OK) {
        teardown(&c);
        return -1;
    }
    fprintf(stderr, "  %s: %lld training frames (%d utterances) loaded in %.2f s\n", opts->data_dir,
            (long long)c.ds.n_frames, c.ds.n_utts, mt_clock_seconds() - t0);
    mt_bench_result *r = &results[0];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "mlp_speech_data");
    snprintf(r->impl, sizeof r->impl, "mytorch");
    r->device = opts->device;
    r->threads = threads;
    r->metric = "samples/s";
    int count = -1;
    if (mt_bench_time(step, &c, opts->warmup, opts->iters, r) == MT_OK) {
        r->value = BATCH / (r->median_ms * 1e-3);
        r->has_loader = true;
        r->loader_wait_ms = 1e3 * c.wait_s;
        r->loader_wait_max_ms = 1e3 * c.wait_max_s;
        r->data_frames = c.ds.n_frames;
        count = 1;
    }
    teardown(&c);
    return count;
}
