/*
 * bench_conv.c - the convolution workloads of BENCH.md:
 *
 *   conv3x3    N=32, C_in=C_out=64, H=W=56, k=3, stride 1, pad 1, with bias:
 *              the forward alone, and forward + backward (grad input,
 *              weight and bias)
 *   dwconv7x7  N=32, C=96, H=W=28, k=7, pad 3, groups=96 (ConvNeXt's
 *              depthwise conv), with bias: forward, and forward + backward
 *
 * Random inputs (normal(0,1), fixed seed); the output gradient is a fixed
 * random tensor. Each result's metric is GFLOP/s at the median time, counting
 * 2 multiply-adds per tap: forward 2 N C_out oH oW (C_in / groups) k^2, and
 * each of the two gradients as much again.
 *
 * On cuda-emu (and before timing on cuda) a check: a reduced shape (N=2,
 * H=W=12) gives the same output and gradients on the device as on the CPU.
 */
#include "bench/bench.h"

#include <string.h>

typedef struct conv_shape {
    const char *name;
    int64_t n, c_in, c_out, hw, k, pad, groups;
} conv_shape;

static const conv_shape conv3x3 = { "conv3x3", 32, 64, 64, 56, 3, 1, 1 };
static const conv_shape dwconv7x7 = { "dwconv7x7", 32, 96, 96, 28, 7, 3, 96 };

typedef struct conv_ctx {
    mt_tensor *x, *w, *b, *dy;
    mt_conv_opts o;
    bool backward;
} conv_ctx;

static mt_status step(void *p)
{
    conv_ctx *c = p;
    mt_scope s = mt_scope_begin();
    mt_status st = MT_OK;
    if (!c->backward) {
        MT_NO_GRAD {
            if (!mt_conv2d(c->x, c->w, c->b, c->o)) st = mt_last_status();
        }
    } else {
        mt_tensor *y = mt_conv2d(c->x, c->w, c->b, c->o);
        st = y ? mt_backward_ex(y, (mt_backward_opts){ .grad_output = c->dy }) : mt_last_status();
        mt_zero_grad(c->x);
        mt_zero_grad(c->w);
        mt_zero_grad(c->b);
    }
    mt_scope_end(s);
    return st;
}

static void teardown(conv_ctx *c)
{
    mt_free(c->x); mt_free(c->w); mt_free(c->b); mt_free(c->dy);
    memset(c, 0, sizeof *c);
}

/* Inputs of shape sh (with n, hw replaced when given) on device, from seed. */
static mt_status setup(conv_ctx *c, const conv_shape *sh, int64_t n, int64_t hw, uint64_t seed, mt_device device)
{
    memset(c, 0, sizeof *c);
    c->o = MT_CONV_DEFAULTS;
    c->o.padding[0] = c->o.padding[1] = sh->pad;
    c->o.groups = sh->groups;
    mt_generator gen = mt_generator_new(seed);
    c->x = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(n, sh->c_in, hw, hw)), device);
    c->w = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(sh->c_out, sh->c_in / sh->groups, sh->k, sh->k)), device);
    c->b = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(sh->c_out)), device);
    int64_t out = hw + 2 * sh->pad - sh->k + 1;
    c->dy = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(n, sh->c_out, out, out)), device);
    if (!c->x || !c->w || !c->b || !c->dy) return mt_last_status();
    mt_requires_grad(c->x, true);
    mt_requires_grad(c->w, true);
    mt_requires_grad(c->b, true);
    return MT_OK;
}

/* The reduced problem's output and gradients (their sums of squares and a few
   elements) into out[8]. */
static mt_status probe(const conv_shape *sh, uint64_t seed, mt_device device, double out[8])
{
    conv_ctx c;
    mt_status st = setup(&c, sh, 2, 12, seed, device);
    mt_scope s = mt_scope_begin();
    mt_tensor *y = st == MT_OK ? mt_conv2d(c.x, c.w, c.b, c.o) : NULL;
    if (st == MT_OK && !y) st = mt_last_status();
    if (st == MT_OK) st = mt_backward_ex(y, (mt_backward_opts){ .grad_output = c.dy, .retain_graph = true });
    mt_tensor *parts[4] = { y, mt_grad(c.x), mt_grad(c.w), mt_grad(c.b) };
    for (int i = 0; i < 4 && st == MT_OK; i++) {
        MT_NO_GRAD {
            mt_tensor *sq = mt_sum_all(mt_mul(parts[i], parts[i]));
            mt_tensor *first = mt_sum_all(mt_narrow(mt_flatten(parts[i], 0, -1), 0, 0, 1));
            if (!sq || !first) st = mt_last_status();
            else { out[2 * i] = mt_item(sq); out[2 * i + 1] = mt_item(first); }
        }
    }
    mt_scope_end(s);
    teardown(&c);
    return st;
}

/* The two results of one shape (forward; forward + backward), or the check. */
static int run_shape(const conv_shape *sh, const mt_bench_opts *opts, int threads, mt_bench_result *results,
                     int max_results)
{
    mt_device_type type = opts->dev.type;
    int count = 0;
    if (type != MT_DEVICE_CPU && count < max_results) {
        mt_bench_result *r = &results[count];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", sh->name);
        snprintf(r->impl, sizeof r->impl, "mytorch");
        r->device = opts->device;
        r->threads = threads;
        double got[8], want[8];
        mt_status st = probe(sh, opts->seed, opts->dev, got);
        if (st == MT_OK) st = probe(sh, opts->seed, mt_cpu(), want);
        if (st == MT_OK)
            st = mt_bench_compare(r, "sum of squares and first element of y, dx, dw, db", got, want, 8, 1e-4, 1e-3);
        if (st != MT_OK) return -1;
        count++;
    }
    if (type == MT_DEVICE_CUDA_EMU) return count;
    int64_t out = sh->hw + 2 * sh->pad - sh->k + 1;
    double fwd_flop = 2.0 * (double)(sh->n * sh->c_out * out * out) * (double)(sh->c_in / sh->groups * sh->k * sh->k);
    for (int backward = 0; backward < 2 && count < max_results; backward++) {
        conv_ctx c;
        if (setup(&c, sh, sh->n, sh->hw, opts->seed, opts->dev) != MT_OK) { teardown(&c); return -1; }
        c.backward = backward;
        mt_bench_result *r = &results[count];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s_%s", sh->name, backward ? "fwd_bwd" : "fwd");
        snprintf(r->impl, sizeof r->impl, "mytorch");
        r->device = opts->device;
        r->threads = threads;
        r->metric = "GFLOP/s";
        double flop = backward ? 3 * fwd_flop : fwd_flop;
        mt_status st = mt_bench_time_on(opts->dev, step, &c, opts->warmup, opts->iters, r);
        teardown(&c);
        if (st != MT_OK) return -1;
        r->value = flop / (r->median_ms * 1e-3) / 1e9;
        mt_bench_set_flop_rate(r, opts->dev, flop);
        count++;
    }
    return count;
}

int mt_bench_conv3x3(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    return run_shape(&conv3x3, opts, mt_bench_set_threads(opts->threads), results, max_results);
}

int mt_bench_dwconv7x7(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    return run_shape(&dwconv7x7, opts, mt_bench_set_threads(opts->threads), results, max_results);
}
