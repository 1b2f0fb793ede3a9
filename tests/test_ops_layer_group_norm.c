/*
 * test_ops_layer_group_norm.c - layer norm (over the last 1 and 2 dims, with
 * and without weight and bias, channels first), group norm (groups = 1, = C
 * and in between, 2-d to 4-d inputs) and batch norm on (N, C, H, W), each
 * through the op harness against a naive double reference written as plain
 * loops (the harness adds finite differences, jvp vs vjp and cuda-emu vs
 * cpu), then shapes too large for finite differences against the reference
 * directly (several chunks of the CPU's weight sums, several CUDA blocks),
 * thread-count independence, and the errors.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the reference */
/* Normalizes the `count` values x[base + k stride] (two passes, biased
   variance) into y; the weight and bias of value k are w[woff + k / wdiv]
   (NULL: 1 and 0). */
static void ref_normalize(const double *x, double *y, int64_t base, int64_t count, int64_t stride, double eps,
                          const double *w, const double *b, int64_t woff, int64_t wdiv)
{
    double mean = 0, var = 0;
    for (int64_t k = 0; k < count; k++) mean += x[base + k * stride];
    mean /= (double)count;
    for (int64_t k = 0; k < count; k++) {
        double d = x[base + k * stride] - mean;
        var += d * d;
    }
    var /= (double)count;
    for (int64_t k = 0; k < count; k++) {
        int64_t at = base + k * stride, ch = woff + k / wdiv;
        y[at] = (x[at] - mean) / sqrt(var + eps) * (w ? w[ch] : 1) + (b ? b[ch] : 0);
    }
}

enum { LAYER_NORM, LAYER_NORM_CHANNELS_FIRST, GROUP_NORM };

/* inputs: x, then weight when p->weight, then bias when p->bias */
typedef struct norm_params {
    int kind;
    int n_norm;           /* layer norm: the trailing dims normalized */
    int64_t groups;       /* group norm */
    bool weight, bias;
    double eps;
} norm_params;

static void ref_norm(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const norm_params *p = c->params;
    const ref_tensor *x = &in[0];
    const double *w = p->weight ? in[1].data : NULL, *b = p->bias ? in[p->weight ? 2 : 1].data : NULL;
    ref_alloc(out, x->ndim, x->shape);
    if (p->kind == LAYER_NORM) {   /* rows of the last n_norm dims */
        int64_t f = 1;
        for (int d = x->ndim - p->n_norm; d < x->ndim; d++) f *= x->shape[d];
        for (int64_t r = 0; r < ref_numel(x) / f; r++) ref_normalize(x->data, out->data, r * f, f, 1, p->eps, w, b, 0, 1);
        return;
    }
    int64_t n = x->shape[0], ch = x->shape[1], l = 1;
    for (int d = 2; d < x->ndim; d++) l *= x->shape[d];
    if (p->kind == LAYER_NORM_CHANNELS_FIRST) {   /* over the channels of each (sample, position) */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < l; j++) ref_normalize(x->data, out->data, i * ch * l + j, ch, l, p->eps, w, b, 0, 1);
        return;
    }
    int64_t cpg = ch / p->groups;   /* group g: channels g cpg .. (g + 1) cpg - 1 of sample i, all positions */
    for (int64_t i = 0; i < n; i++)
        for (int64_t g = 0; g < p->groups; g++)
            ref_normalize(x->data, out->data, (i * ch + g * cpg) * l, cpg * l, 1, p->eps, w, b, g * cpg, l);
}

static mt_tensor *run_norm(const mt_op_case *c, mt_tensor *const *in)
{
    const norm_params *p = c->params;
    mt_tensor *w = p->weight ? in[1] : NULL, *b = p->bias ? in[p->weight ? 2 : 1] : NULL;
    if (p->kind == LAYER_NORM)
        return mt_layer_norm(in[0], p->n_norm, in[0]->shape + in[0]->ndim - p->n_norm, w, b, p->eps);
    if (p->kind == LAYER_NORM_CHANNELS_FIRST) return mt_layer_norm_channels_first(in[0], w, b, p->eps);
    return mt_group_norm(in[0], p->groups, w, b, p->eps);
}

/* NORM_CASE(test name, kind, n_norm, groups, weight?, bias?, x spec, weight/bias specs...) */
#define NORM_CASE(NAME, KIND, N_NORM, GROUPS, W, B, ...)                                           \
    Test(ops_layer_group_norm, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {           \
        static const norm_params p = { KIND, N_NORM, GROUPS, W, B, 1e-5 };                        \
        const mt_input_spec specs[] = { __VA_ARGS__ };                                             \
        mt_op_case c = { .name = #NAME, .n_inputs = (int)(sizeof specs / sizeof specs[0]),        \
                         .run = run_norm, .reference = ref_norm, .params = &p, .grad_tol = 1e-5 }; \
        memcpy(c.inputs, specs, sizeof specs);                                                     \
        mt_check_op(&c);                                                                           \
    }

/* weight near 1, bias near 0, of the given shape */
#define WEIGHT(...) MT_SPEC(0.5, 1.5, __VA_ARGS__)
#define BIAS(...) MT_SPEC(-1, 1, __VA_ARGS__)

/* layer norm: one row, odd feature counts, 1 and 2 normalized dims, each affine variant */
NORM_CASE(layer_norm_one_row, LAYER_NORM, 1, 0, true, true, MT_SPEC(-2, 2, 1, 7), WEIGHT(7), BIAS(7))
NORM_CASE(layer_norm_odd_features, LAYER_NORM, 1, 0, true, true, MT_SPEC(-2, 2, 5, 13), WEIGHT(13), BIAS(13))
NORM_CASE(layer_norm_3d_no_affine, LAYER_NORM, 1, 0, false, false, MT_SPEC(-2, 2, 2, 3, 10))
NORM_CASE(layer_norm_last_two_dims, LAYER_NORM, 2, 0, true, true, MT_SPEC(-2, 2, 3, 4, 5), WEIGHT(4, 5), BIAS(4, 5))
NORM_CASE(layer_norm_weight_only, LAYER_NORM, 1, 0, true, false, MT_SPEC(-2, 2, 4, 6), WEIGHT(6))
NORM_CASE(layer_norm_bias_only, LAYER_NORM, 1, 0, false, true, MT_SPEC(-2, 2, 4, 6), BIAS(6))
NORM_CASE(layer_norm_all_dims, LAYER_NORM, 2, 0, true, true, MT_SPEC(-2, 2, 3, 3), WEIGHT(3, 3), BIAS(3, 3))
/* a shifted row: the one-pass statistics must not lose the spread to the mean */
NORM_CASE(layer_norm_large_mean, LAYER_NORM, 1, 0, true, true, MT_SPEC(99, 101, 3, 9), WEIGHT(9), BIAS(9))
/* 300 rows: 38 blocks of 8 warps on cuda-emu, and 2 chunks of 256 rows in its weight sums */
NORM_CASE(layer_norm_many_rows, LAYER_NORM, 1, 0, true, true, MT_SPEC(-2, 2, 300, 5), WEIGHT(5), BIAS(5))
/* rows of 1100 features: a block per row on cuda-emu */
NORM_CASE(layer_norm_long_rows, LAYER_NORM, 1, 0, true, true, MT_SPEC(-2, 2, 3, 1100), WEIGHT(1100), BIAS(1100))

/* ConvNeXt's LayerNorm2d: over the channels of (N, C, H, W), and of (N, C, L) */
NORM_CASE(layer_norm_channels_first_4d, LAYER_NORM_CHANNELS_FIRST, 0, 0, true, true, MT_SPEC(-2, 2, 2, 5, 3, 4),
          WEIGHT(5), BIAS(5))
NORM_CASE(layer_norm_channels_first_3d_no_affine, LAYER_NORM_CHANNELS_FIRST, 0, 0, false, false,
          MT_SPEC(-2, 2, 3, 4, 7))

/* group norm: groups = 1, = C and in between; 2-d (no positions) to 4-d */
NORM_CASE(group_norm_one_group, GROUP_NORM, 0, 1, true, true, MT_SPEC(-2, 2, 2, 6, 5), WEIGHT(6), BIAS(6))
NORM_CASE(group_norm_group_per_channel, GROUP_NORM, 0, 4, true, true, MT_SPEC(-2, 2, 3, 4, 3), WEIGHT(4), BIAS(4))
NORM_CASE(group_norm_4d, GROUP_NORM, 0, 3, true, true, MT_SPEC(-2, 2, 2, 6, 2, 3), WEIGHT(6), BIAS(6))
NORM_CASE(group_norm_no_affine, GROUP_NORM, 0, 2, false, false, MT_SPEC(-2, 2, 2, 4, 7))
NORM_CASE(group_norm_weight_only, GROUP_NORM, 0, 2, true, false, MT_SPEC(-2, 2, 2, 4, 7), WEIGHT(4))
NORM_CASE(group_norm_2d, GROUP_NORM, 0, 2, true, true, MT_SPEC(-2, 2, 5, 6), WEIGHT(6), BIAS(6))
/* 20 rows of 6 values: 3 blocks of 8 warps on cuda-emu */
NORM_CASE(group_norm_many_rows, GROUP_NORM, 0, 4, true, true, MT_SPEC(-2, 2, 5, 8, 3), WEIGHT(8), BIAS(8))
/* rows of 1200 values (2 channels x 600): a block per row on cuda-emu */
NORM_CASE(group_norm_long_rows, GROUP_NORM, 0, 2, true, true, MT_SPEC(-2, 2, 2, 4, 600), WEIGHT(4), BIAS(4))

/* ---------------------------------------------------------------- batch norm on (N, C, H, W) */
typedef struct bn4_params { bool training; } bn4_params;

/* inputs: x [N, C, H, W], weight, bias, running_mean, running_var */
static void ref_batch_norm_4d(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const bn4_params *p = c->params;
    const ref_tensor *x = &in[0];
    int64_t n = x->shape[0], ch = x->shape[1], hw = x->shape[2] * x->shape[3];
    ref_alloc(out, x->ndim, x->shape);
    for (int64_t k = 0; k < ch; k++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) mean += x->data[(i * ch + k) * hw + j];
        mean /= (double)(n * hw);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) var += pow(x->data[(i * ch + k) * hw + j] - mean, 2);
        var /= (double)(n * hw);
        if (!p->training) {
            mean = in[3].data[k];
            var = in[4].data[k];
        }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                int64_t at = (i * ch + k) * hw + j;
                out->data[at] = in[1].data[k] * (x->data[at] - mean) / sqrt(var + 1e-5) + in[2].data[k];
            }
    }
}

static mt_tensor *run_batch_norm_4d(const mt_op_case *c, mt_tensor *const *in)
{
    const bn4_params *p = c->params;
    return mt_batch_norm(in[0], mt_clone(in[3]), mt_clone(in[4]), in[1], in[2], p->training, 0.1, 1e-5);
}

#define BN4_CASE(NAME, TRAINING, ...)                                                                 \
    Test(ops_layer_group_norm, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {              \
        static const bn4_params p = { TRAINING };                                                    \
        mt_op_case c = { .name = #NAME, .n_inputs = 5,                                                \
                         .inputs = { __VA_ARGS__, WEIGHT(3), BIAS(3),                                 \
                                     { .ndim = 1, .shape = { 3 }, .lo = -0.5, .hi = 0.5, .no_grad = true }, \
                                     { .ndim = 1, .shape = { 3 }, .lo = 0.5, .hi = 2, .no_grad = true } }, \
                         .run = run_batch_norm_4d, .reference = ref_batch_norm_4d, .params = &p,      \
                         .fwd_tol_f32 = 1e-4, .grad_tol = 1e-5 };                                      \
        mt_check_op(&c);                                                                              \
    }

BN4_CASE(batch_norm_4d_training, true, MT_SPEC(-2, 2, 2, 3, 4, 5))
BN4_CASE(batch_norm_4d_eval, false, MT_SPEC(-2, 2, 3, 3, 2, 3))

/* The running statistics after a training step on (N, C, H, W) move towards
   the batch's mean and unbiased variance over N, H and W of each channel. */
Test(ops_layer_group_norm, batch_norm_4d_running_stats, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int64_t n = 3, ch = 2, hw = 6;
    mt_generator gen = mt_generator_new(9);
    mt_tensor *x = mt_uniform(&gen, MT_F64, MT_SHAPE(3, 2, 2, 3), -1, 3);
    double xv[36];
    cr_assert(mt_to_data(x, MT_F64, xv) == MT_OK);
    mt_tensor *rm = mt_full(MT_F64, MT_SHAPE(2), 0.5), *rv = mt_full(MT_F64, MT_SHAPE(2), 2.0);
    cr_assert_not_null(mt_batch_norm(x, rm, rv, NULL, NULL, true, 0.2, 1e-5), "%s", mt_last_error());
    for (int64_t k = 0; k < ch; k++) {
        double mean = 0, ss = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) mean += xv[(i * ch + k) * hw + j];
        mean /= (double)(n * hw);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) ss += pow(xv[(i * ch + k) * hw + j] - mean, 2);
        double unbiased = ss / (double)(n * hw - 1);
        cr_expect_float_eq(mt_get(rm, (int64_t[]){ k }), 0.8 * 0.5 + 0.2 * mean, 1e-12, "running_mean[%lld]", (long long)k);
        cr_expect_float_eq(mt_get(rv, (int64_t[]){ k }), 0.8 * 2.0 + 0.2 * unbiased, 1e-12, "running_var[%lld]", (long long)k);
    }
}

/* ---------------------------------------------------------------- larger shapes, directly */
/* Layer norm forward and backward on [rows, f] in f64 against the formulas
   of the reference, for shapes whose finite differences would be too slow:
   1000 rows of 131 are 2 chunks of the CPU's weight sums (65536 values
   each), and on cuda-emu 4 chunks of 256 rows. */
static void check_large_layer_norm(mt_device dev, int64_t rows, int64_t f)
{
    mt_generator gen = mt_generator_new((uint64_t)(rows * 7 + f));
    mt_tensor *x = mt_uniform(&gen, MT_F64, MT_SHAPE(rows, f), -2, 2);
    mt_tensor *w = mt_uniform(&gen, MT_F64, MT_SHAPE(f), 0.5, 1.5), *b = mt_uniform(&gen, MT_F64, MT_SHAPE(f), -1, 1);
    mt_tensor *g = mt_uniform(&gen, MT_F64, MT_SHAPE(rows, f), -1, 1);
    int64_t total = rows * f;
    double *xv = malloc((size_t)total * sizeof *xv), *gv = malloc((size_t)total * sizeof *gv);
    double *wv = malloc((size_t)f * sizeof *wv), *yv = malloc((size_t)total * sizeof *yv);
    double *dxv = malloc((size_t)total * sizeof *dxv), *dwv = calloc((size_t)f, sizeof *dwv);
    double *dbv = calloc((size_t)f, sizeof *dbv), *got = malloc((size_t)total * sizeof *got);
    cr_assert(xv && gv && wv && yv && dxv && dwv && dbv && got);
    cr_assert(mt_to_data(x, MT_F64, xv) == MT_OK && mt_to_data(g, MT_F64, gv) == MT_OK && mt_to_data(w, MT_F64, wv) == MT_OK);
    /* reference: dx = rstd (gw - mean(gw) - xhat mean(gw xhat)), dw = sum g xhat, db = sum g */
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = xv + r * f, *gr = gv + r * f;
        double mean = 0, var = 0, mg = 0, mgx = 0;
        for (int64_t k = 0; k < f; k++) mean += xr[k] / (double)f;
        for (int64_t k = 0; k < f; k++) var += (xr[k] - mean) * (xr[k] - mean) / (double)f;
        double rstd = 1 / sqrt(var + 1e-5);
        for (int64_t k = 0; k < f; k++) {
            double xhat = (xr[k] - mean) * rstd;
            mg += gr[k] * wv[k] / (double)f;
            mgx += gr[k] * wv[k] * xhat / (double)f;
            dwv[k] += gr[k] * xhat;
            dbv[k] += gr[k];
        }
        for (int64_t k = 0; k < f; k++) {
            double xhat = (xr[k] - mean) * rstd;
            dxv[r * f + k] = rstd * (gr[k] * wv[k] - mg - xhat * mgx);
        }
    }
    mt_tensor *xd = mt_to_device(x, dev), *wd = mt_to_device(w, dev), *bd = mt_to_device(b, dev);
    cr_assert(xd && wd && bd, "%s", mt_last_error());
    mt_requires_grad(xd, true);
    mt_requires_grad(wd, true);
    mt_requires_grad(bd, true);
    mt_tensor *y = mt_layer_norm(xd, MT_SHAPE(f), wd, bd, 1e-5);
    mt_tensor *loss = mt_sum_all(mt_mul(y, mt_to_device(g, dev)));
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    struct { const char *what; mt_tensor *t; const double *want; int64_t n; } checks[] = {
        { "dx", mt_grad(xd), dxv, total }, { "dweight", mt_grad(wd), dwv, f }, { "dbias", mt_grad(bd), dbv, f },
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        cr_assert(mt_to_data(checks[i].t, MT_F64, got) == MT_OK, "%s", mt_last_error());
        for (int64_t k = 0; k < checks[i].n; k++)
            cr_assert(fabs(got[k] - checks[i].want[k]) <= 1e-10 * (1 + fabs(checks[i].want[k])),
                      "layer_norm [%lld, %lld] on %s: %s[%lld] = %.15g, reference %.15g", (long long)rows, (long long)f,
                      mt_device_name(dev), checks[i].what, (long long)k, got[k], checks[i].want[k]);
    }
    free(xv); free(gv); free(wv); free(yv); free(dxv); free(dwv); free(dbv); free(got);
}

Test(ops_layer_group_norm, large_layer_norm_against_the_reference, .init = mt_test_setup, .fini = mt_test_teardown)
{
    check_large_layer_norm(mt_cpu(), 1000, 131);
    check_large_layer_norm(mt_cpu(), 2, 70000);   /* rows of more than one chunk's values */
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    if (mt_device_available(emu, NULL)) check_large_layer_norm(emu, 1000, 131);
}

/* The same bits at 1 and 2 threads, forward and backward, for layer norm
   (2 chunks) and group norm, above the kernels' parallel grain. */
Test(ops_layer_group_norm, thread_count_independent, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int prev_threads = mt_get_num_threads();
    mt_generator gen = mt_generator_new(4);
    mt_tensor *xl = mt_randn(&gen, MT_F32, MT_SHAPE(1024, 130)), *xg = mt_randn(&gen, MT_F32, MT_SHAPE(16, 32, 300));
    mt_tensor *w = mt_uniform(&gen, MT_F32, MT_SHAPE(130), 0.5, 1.5), *wg = mt_uniform(&gen, MT_F32, MT_SHAPE(32), 0.5, 1.5);
    mt_requires_grad(xl, true);
    mt_requires_grad(w, true);
    mt_requires_grad(xg, true);
    mt_requires_grad(wg, true);
    float *out[2][4];
    int64_t sizes[4] = { 1024 * 130, 130, 16 * 32 * 300, 32 };
    for (int k = 0; k < 2; k++) {
        mt_set_num_threads(k + 1);
        mt_scope s = mt_scope_begin();
        mt_tensor *yl = mt_layer_norm(xl, MT_SHAPE(130), w, NULL, 1e-5), *yg = mt_group_norm(xg, 8, wg, NULL, 1e-5);
        mt_tensor *loss = mt_add(mt_sum_all(mt_mul(yl, yl)), mt_sum_all(mt_mul(mt_tanh(yg), yg)));
        cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
        mt_tensor *ts[4] = { mt_grad(xl), mt_grad(w), mt_grad(xg), mt_grad(wg) };
        for (int i = 0; i < 4; i++) {
            out[k][i] = malloc((size_t)sizes[i] * sizeof(float));
            cr_assert(out[k][i] && mt_to_data(ts[i], MT_F32, out[k][i]) == MT_OK);
        }
        mt_zero_grad(xl);
        mt_zero_grad(w);
        mt_zero_grad(xg);
        mt_zero_grad(wg);
        mt_scope_end(s);
    }
    mt_set_num_threads(prev_threads);
    const char *names[4] = { "layer_norm dx", "layer_norm dweight", "group_norm dx", "group_norm dweight" };
    for (int i = 0; i < 4; i++) {
        cr_expect(memcmp(out[0][i], out[1][i], (size_t)sizes[i] * sizeof(float)) == 0, "%s differs at 1 and 2 threads",
                  names[i]);
        free(out[0][i]);
        free(out[1][i]);
    }
}

/* A row of equal values has variance 0: y = bias, no NaN. */
Test(ops_layer_group_norm, constant_rows, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_full(MT_F32, MT_SHAPE(2, 5), 1e6);
    mt_tensor *b = mt_full(MT_F32, MT_SHAPE(5), 0.25);
    mt_tensor *y = mt_layer_norm(x, MT_SHAPE(5), NULL, b, 1e-5);
    cr_assert_not_null(y, "%s", mt_last_error());
    float v[10];
    cr_assert(mt_to_data(y, MT_F32, v) == MT_OK);
    for (int k = 0; k < 10; k++) cr_expect_float_eq(v[k], 0.25f, 0, "y[%d] = %g", k, v[k]);
}

/* Empty inputs give empty outputs. */
Test(ops_layer_group_norm, empty_inputs, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *y = mt_layer_norm(mt_zeros(MT_F32, MT_SHAPE(0, 4)), MT_SHAPE(4), NULL, NULL, 1e-5);
    cr_assert(y && mt_numel(y) == 0, "%s", mt_last_error());
    y = mt_group_norm(mt_zeros(MT_F32, MT_SHAPE(0, 4, 3)), 2, NULL, NULL, 1e-5);
    cr_assert(y && mt_numel(y) == 0, "%s", mt_last_error());
}

/* The backward's weight sums take scratch memory (a chunk's sums per channel,
   64 KiB for [2, 4096]): under growing cpu memory limits some limit must let
   everything else through and fail that scratch, naming the op, the kernel
   and the device; a larger one lets the backward finish. */
Test(ops_layer_group_norm, a_scratch_out_of_memory_fails_the_backward, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device cpu = mt_cpu();
    mt_generator gen = mt_generator_new(2);
    mt_tensor *x = mt_requires_grad(mt_randn(&gen, MT_F32, MT_SHAPE(2, 4096)), true);
    mt_tensor *w = mt_requires_grad(mt_ones(MT_F32, MT_SHAPE(4096)), true);
    mt_tensor *g = mt_randn(&gen, MT_F32, MT_SHAPE(2, 4096));
    bool scratch_failed = false, succeeded = false;
    for (size_t extra = 0; extra <= (size_t)1 << 20 && !succeeded; extra += 8192) {
        mt_scope attempt = mt_scope_begin();
        mt_tensor *loss = mt_sum_all(mt_mul(mt_layer_norm(x, MT_SHAPE(4096), w, NULL, 1e-5), g));
        cr_assert_not_null(loss, "%s", mt_last_error());
        mt_device_empty_cache(cpu);
        mt_device_set_memory_limit(cpu, mt_device_memory_stats(cpu).reserved + extra);
        mt_status st = mt_backward(loss);
        mt_device_set_memory_limit(cpu, 0);
        if (st == MT_OK) {
            succeeded = true;
            cr_expect_not_null(mt_grad(w));
        } else if (strstr(mt_last_error(), "layer_norm: kernel 'group_norm_backward' on cpu: no scratch memory")) {
            scratch_failed = true;
        }
        mt_zero_grad(x);
        mt_zero_grad(w);
        mt_scope_end(attempt);
    }
    cr_assert(succeeded, "the backward never ran under a limit of 1 MiB above the start: %s", mt_last_error());
    cr_assert(scratch_failed, "no limit made the kernel's scratch memory fail");
}

/* ---------------------------------------------------------------- errors */
static void expect_error(mt_tensor *result, const char *a, const char *b, const char *c)
{
    cr_expect_null(result);
    const char *e = mt_last_error();
    cr_expect(strstr(e, a) && (!b || strstr(e, b)) && (!c || strstr(e, c)), "message: %s", e);
}

Test(ops_layer_group_norm, bad_inputs, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(4, 3));
    expect_error(mt_layer_norm(x, MT_SHAPE(5), NULL, NULL, 1e-5), "layer_norm: normalized_shape [5]", "[4, 3]", "[*, 5]");
    expect_error(mt_layer_norm(x, MT_SHAPE(4, 3, 1), NULL, NULL, 1e-5), "layer_norm", "1 to 2 trailing dims", NULL);
    expect_error(mt_layer_norm(x, 0, NULL, NULL, NULL, 1e-5), "layer_norm", "normalized_shape", NULL);
    expect_error(mt_layer_norm(x, MT_SHAPE(3), mt_ones(MT_F32, MT_SHAPE(4)), NULL, 1e-5), "layer_norm: weight has shape [4]",
                 "normalized_shape [3]", NULL);
    expect_error(mt_layer_norm(x, MT_SHAPE(3), NULL, mt_ones(MT_F32, MT_SHAPE(1, 3)), 1e-5), "layer_norm: bias has shape [1, 3]",
                 NULL, NULL);
    cr_expect_null(mt_layer_norm(x, MT_SHAPE(3), mt_ones(MT_F64, MT_SHAPE(3)), NULL, 1e-5), "a weight of another dtype");
    expect_error(mt_layer_norm(x, MT_SHAPE(3), NULL, NULL, -1), "layer_norm: eps", NULL, NULL);
    expect_error(mt_layer_norm(mt_zeros(MT_I64, MT_SHAPE(4, 3)), MT_SHAPE(3), NULL, NULL, 1e-5), "layer_norm", NULL, NULL);
    cr_expect_null(mt_layer_norm(NULL, MT_SHAPE(3), NULL, NULL, 1e-5));

    mt_tensor *xg = mt_zeros(MT_F32, MT_SHAPE(2, 6, 5));
    expect_error(mt_group_norm(xg, 4, NULL, NULL, 1e-5), "group_norm", "6 channels", "num_groups = 4");
    expect_error(mt_group_norm(xg, 0, NULL, NULL, 1e-5), "group_norm", "num_groups = 0", NULL);
    expect_error(mt_group_norm(xg, 3, mt_ones(MT_F32, MT_SHAPE(5)), NULL, 1e-5), "group_norm: weight has shape [5]", "[6]",
                 NULL);
    expect_error(mt_group_norm(xg, 3, NULL, mt_ones(MT_F32, MT_SHAPE(2, 3)), 1e-5), "group_norm: bias", NULL, NULL);
    expect_error(mt_group_norm(mt_zeros(MT_F32, MT_SHAPE(6)), 3, NULL, NULL, 1e-5), "group_norm: input [6]", "[N, C, *]",
                 NULL);
    expect_error(mt_group_norm(xg, 3, NULL, NULL, NAN), "group_norm: eps", NULL, NULL);

    expect_error(mt_layer_norm_channels_first(mt_zeros(MT_F32, MT_SHAPE(6)), NULL, NULL, 1e-5),
                 "layer_norm_channels_first: input [6]", NULL, NULL);
    expect_error(mt_layer_norm_channels_first(xg, mt_ones(MT_F32, MT_SHAPE(5)), NULL, 1e-5), "weight has shape [5]", "[6]",
                 NULL);
}
