/*
 * bench_layernorm.c - the `layernorm` workload of BENCH.md: layer norm over
 * the 512 features of 32768 rows (fp32), with a weight and a bias (a fresh
 * nn.LayerNorm(512): ones and zeros), on normal(0, 1) inputs:
 *
 *   layernorm_fwd_bwd  forward + backward (BENCH's figure): y = mt_layer_norm(x,
 *                      [512], w, b), then backward from a fixed normal(0, 1)
 *                      dL/dy, giving dx, dweight, dbias (the gradients are
 *                      dropped after each step, as zero_grad(set_to_none=True))
 *   layernorm_fwd      the forward alone, with gradients off
 * (named as conv3x3's rows are).
 *
 * The metric is the effective bandwidth: the bytes a fused implementation
 * must move at the least (forward: read x, write y; backward: read x and dy,
 * write dx; 5 x 64 MiB) over the median time. BENCH's figure is the median
 * time itself, which every result carries.
 *
 * On cuda: timed with events, after a check of y, dx, dweight and dbias
 * against the CPU; the bandwidth against the device's DRAM peak goes with it.
 * On cuda-emu: the check only.
 */
#include "bench/bench.h"

#include <stdlib.h>
#include <string.h>

enum { ROWS = 32768, FEATURES = 512 };

typedef struct ln_ctx {
    mt_tensor *x, *w, *b, *dy;   /* x, w, b require grad */
} ln_ctx;

static mt_status step_forward(void *p)
{
    ln_ctx *c = p;
    mt_scope s = mt_scope_begin();
    mt_tensor *y = NULL;
    MT_NO_GRAD { y = mt_layer_norm(c->x, MT_SHAPE(FEATURES), c->w, c->b, 1e-5); }
    mt_status st = y ? MT_OK : mt_last_status();
    mt_scope_end(s);
    return st;
}

static mt_status step_forward_backward(void *p)
{
    ln_ctx *c = p;
    mt_scope s = mt_scope_begin();
    mt_tensor *y = mt_layer_norm(c->x, MT_SHAPE(FEATURES), c->w, c->b, 1e-5);
    mt_status st = y ? mt_backward_ex(y, (mt_backward_opts){ .grad_output = c->dy }) : mt_last_status();
    mt_zero_grad(c->x);
    mt_zero_grad(c->w);
    mt_zero_grad(c->b);
    mt_scope_end(s);
    return st;
}

static void teardown(ln_ctx *c)
{
    mt_free(c->x);
    mt_free(c->w);
    mt_free(c->b);
    mt_free(c->dy);
    memset(c, 0, sizeof *c);
}

/* The inputs from the seed (the same on every device), on device. */
static mt_status setup(ln_ctx *c, uint64_t seed, mt_device device)
{
    memset(c, 0, sizeof *c);
    mt_generator gen = mt_generator_new(seed);
    c->x = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(ROWS, FEATURES)), device);
    c->dy = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(ROWS, FEATURES)), device);
    c->w = mt_bench_to(mt_ones(MT_F32, MT_SHAPE(FEATURES)), device);
    c->b = mt_bench_to(mt_zeros(MT_F32, MT_SHAPE(FEATURES)), device);
    if (!c->x || !c->dy || !c->w || !c->b) return mt_last_status();
    mt_requires_grad(c->x, true);
    mt_requires_grad(c->w, true);
    mt_requires_grad(c->b, true);
    return MT_OK;
}

enum { PROBE_SAMPLES = 1024, PROBE_VALUES = 2 * PROBE_SAMPLES + 2 * FEATURES };

/* One forward + backward on device: out = y and dx at PROBE_SAMPLES spread
   positions, then dweight and dbias. */
static mt_status probe(uint64_t seed, mt_device device, double *out)
{
    ln_ctx c;
    mt_status st = setup(&c, seed, device);
    mt_scope s = mt_scope_begin();
    mt_tensor *y = st == MT_OK ? mt_layer_norm(c.x, MT_SHAPE(FEATURES), c.w, c.b, 1e-5) : NULL;
    if (st == MT_OK && !y) st = mt_last_status();
    if (st == MT_OK) st = mt_backward_ex(y, (mt_backward_opts){ .grad_output = c.dy });
    int64_t total = (int64_t)ROWS * FEATURES;
    double *all = st == MT_OK ? malloc((size_t)total * sizeof *all) : NULL;
    if (st == MT_OK && !all) st = mt_set_error(MT_ERR_MEMORY, "bench layernorm: out of memory");
    mt_tensor *spread[2] = { y, mt_grad(c.x) };
    for (int k = 0; k < 2 && st == MT_OK; k++) {
        st = mt_to_data(spread[k], MT_F64, all);
        for (int i = 0; st == MT_OK && i < PROBE_SAMPLES; i++)
            out[k * PROBE_SAMPLES + i] = all[(int64_t)i * (total / PROBE_SAMPLES) + i % FEATURES];
    }
    if (st == MT_OK) st = mt_to_data(mt_grad(c.w), MT_F64, out + 2 * PROBE_SAMPLES);
    if (st == MT_OK) st = mt_to_data(mt_grad(c.b), MT_F64, out + 2 * PROBE_SAMPLES + FEATURES);
    free(all);
    mt_scope_end(s);
    teardown(&c);
    return st;
}

static void init_result(mt_bench_result *r, const char *name, const mt_bench_opts *opts, int threads)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->impl, sizeof r->impl, "mytorch");
    r->device = opts->device;
    r->threads = threads;
}

int mt_bench_layernorm(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    int threads = mt_bench_set_threads(opts->threads);
    mt_device_type type = opts->dev.type;
    int count = 0;
    if (type != MT_DEVICE_CPU && count < max_results) {
        mt_bench_result *r = &results[count];
        init_result(r, "layernorm", opts, threads);
        double *got = malloc(PROBE_VALUES * sizeof *got), *want = malloc(PROBE_VALUES * sizeof *want);
        mt_status st = got && want ? MT_OK : mt_set_error(MT_ERR_MEMORY, "bench layernorm: out of memory");
        if (st == MT_OK) st = probe(opts->seed, opts->dev, got);
        if (st == MT_OK) st = probe(opts->seed, mt_cpu(), want);
        /* y and dx agree to f32 rounding; dweight and dbias are sums over
           32768 rows, in another order on the device (relative to 1) */
        if (st == MT_OK) st = mt_bench_compare(r, "y, dx (1024 each), dweight, dbias", got, want, PROBE_VALUES, 1e-4, 1);
        free(got);
        free(want);
        if (st != MT_OK) return -1;
        count++;
    }
    if (type == MT_DEVICE_CUDA_EMU) return count;

    ln_ctx c;
    if (setup(&c, opts->seed, opts->dev) != MT_OK) {
        teardown(&c);
        return -1;
    }
    const double mib64 = 4.0 * ROWS * FEATURES;   /* one pass over x */
    struct { const char *name; mt_bench_step_fn step; double bytes; } rows[] = {
        { "layernorm_fwd_bwd", step_forward_backward, 5 * mib64 },
        { "layernorm_fwd", step_forward, 2 * mib64 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && count < max_results; i++) {
        mt_bench_result *r = &results[count];
        init_result(r, rows[i].name, opts, threads);
        r->metric = "GB/s";
        if (mt_bench_time_on(opts->dev, rows[i].step, &c, opts->warmup, opts->iters, r) != MT_OK) {
            teardown(&c);
            return -1;
        }
        r->value = rows[i].bytes / (r->median_ms * 1e-3) / 1e9;
        mt_bench_set_byte_rate(r, opts->dev, rows[i].bytes);
        count++;
    }
    teardown(&c);
    return count;
}
