/*
 * test_ops_conv.c - the convolutions of op_conv.c: harness cases for conv1d,
 * conv2d (stride, padding, 'same', dilation, groups, depthwise, 1x1),
 * conv_transpose1d/2d and the weight gradient (forward against naive loop
 * references, vjp against finite differences, jvp against vjp, cuda-emu
 * against the CPU); many random geometries against the 7-loop reference;
 * the transposed convolution as the adjoint of the convolution; the CPU
 * kernels' thread-count invariance; and the errors.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

typedef struct conv_params {
    int spatial;          /* 1 or 2 */
    int kind;             /* CONV, TRANSPOSE, WEIGHT_GRAD */
    mt_conv_opts o;
    int64_t kh, kw;       /* WEIGHT_GRAD: the kernel size */
} conv_params;

enum { CONV, TRANSPOSE, WEIGHT_GRAD };

/* The options of spatial dim d (0 = height, 1 = width) of a 2-d view of a
   1-d or 2-d case: the 1-d ops read [0] into the width. */
static int64_t opt_at(const int64_t *v, int spatial, int d, int64_t unit)
{
    return spatial == 2 ? v[d] : d == 0 ? unit : v[0];
}

/* Geometry of the reference, from first principles (not from the engine's code). */
typedef struct ref_geom {
    int64_t n, ci, h, w, co, kh, kw, oh, ow, s[2], p[2], d[2], groups;
} ref_geom;

/* x [n, ci, h, w] (or its 1-d / unbatched form) with co kernels kh x kw. */
static ref_geom ref_conv_geom(const conv_params *p, const ref_tensor *x, int64_t co, int64_t kh, int64_t kw)
{
    ref_geom g = { 0 };
    int batched = x->ndim == p->spatial + 2;
    g.n = batched ? x->shape[0] : 1;
    g.ci = x->shape[batched];
    g.h = p->spatial == 2 ? x->shape[batched + 1] : 1;
    g.w = x->shape[x->ndim - 1];
    g.co = co; g.kh = kh; g.kw = kw; g.groups = p->o.groups;
    int64_t in[2] = { g.h, g.w }, k[2] = { kh, kw }, out[2];
    for (int d = 0; d < 2; d++) {
        g.s[d] = opt_at(p->o.stride, p->spatial, d, 1);
        g.d[d] = opt_at(p->o.dilation, p->spatial, d, 1);
        if (p->o.padding_same) {
            g.p[d] = g.d[d] * (k[d] - 1) / 2;   /* PyTorch: total // 2 on the left */
            out[d] = in[d];
        } else {
            g.p[d] = opt_at(p->o.padding, p->spatial, d, 0);
            out[d] = (in[d] + 2 * g.p[d] - g.d[d] * (k[d] - 1) - 1) / g.s[d] + 1;
        }
    }
    g.oh = out[0]; g.ow = out[1];
    return g;
}

/* Output shape [n, c, h, w] written back in the case's layout. */
static void ref_alloc_layout(ref_tensor *out, const conv_params *p, const ref_tensor *x, int64_t n, int64_t c,
                             int64_t h, int64_t w)
{
    int batched = x->ndim == p->spatial + 2;
    int64_t shape[4];
    int nd = 0;
    if (batched) shape[nd++] = n;
    shape[nd++] = c;
    if (p->spatial == 2) shape[nd++] = h;
    shape[nd++] = w;
    ref_alloc(out, nd, shape);
}

#define X4(g, x, n, c, i, j) ((x)[(((n) * (g).ci + (c)) * (g).h + (i)) * (g).w + (j)])
#define W4(g, wt, o, c, i, j) ((wt)[(((o) * ((g).ci / (g).groups) + (c)) * (g).kh + (i)) * (g).kw + (j)])
#define Y4(g, y, n, o, i, j) ((y)[(((n) * (g).co + (o)) * (g).oh + (i)) * (g).ow + (j)])

/* y[n, o, a, b] = bias[o] + sum_{c, i, j} w[o, c, i, j] x[n, group(o) cig + c, a s - p + i d, b s - p + j d] */
static void ref_conv(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const conv_params *p = c->params;
    const ref_tensor *x = &in[0], *wt = &in[1], *bias = c->n_inputs > 2 ? &in[2] : NULL;
    ref_geom g = ref_conv_geom(p, x, wt->shape[0], p->spatial == 2 ? wt->shape[2] : 1, wt->shape[wt->ndim - 1]);
    ref_alloc_layout(out, p, x, g.n, g.co, g.oh, g.ow);
    int64_t cig = g.ci / g.groups, cog = g.co / g.groups;
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t o = 0; o < g.co; o++)
            for (int64_t a = 0; a < g.oh; a++)
                for (int64_t b = 0; b < g.ow; b++) {
                    double s = bias ? bias->data[o] : 0;
                    for (int64_t ch = 0; ch < cig; ch++)
                        for (int64_t i = 0; i < g.kh; i++)
                            for (int64_t j = 0; j < g.kw; j++) {
                                int64_t ih = a * g.s[0] - g.p[0] + i * g.d[0], iw = b * g.s[1] - g.p[1] + j * g.d[1];
                                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                                s += W4(g, wt->data, o, ch, i, j) * X4(g, x->data, n, (o / cog) * cig + ch, ih, iw);
                            }
                    Y4(g, out->data, n, o, a, b) = s;
                }
}

/* The transposed convolution as a scatter: every input pixel (n, c, a, b)
   adds x w[c, o, i, j] to output pixel (a s - p + i d, b s - p + j d) of
   channel group(c) cog + o. */
static void ref_conv_transpose(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const conv_params *p = c->params;
    const ref_tensor *x = &in[0], *wt = &in[1], *bias = c->n_inputs > 2 ? &in[2] : NULL;
    int batched = x->ndim == p->spatial + 2;
    int64_t n_ = batched ? x->shape[0] : 1, ci = x->shape[batched];
    int64_t h = p->spatial == 2 ? x->shape[batched + 1] : 1, w = x->shape[x->ndim - 1];
    int64_t kh = p->spatial == 2 ? wt->shape[2] : 1, kw = wt->shape[wt->ndim - 1];
    int64_t G = p->o.groups, cog = wt->shape[1], co = cog * G, cig = ci / G;
    int64_t s[2], pd[2], d[2], op[2], k[2] = { kh, kw }, inn[2] = { h, w }, o_[2];
    for (int q = 0; q < 2; q++) {
        s[q] = opt_at(p->o.stride, p->spatial, q, 1);
        d[q] = opt_at(p->o.dilation, p->spatial, q, 1);
        pd[q] = opt_at(p->o.padding, p->spatial, q, 0);
        op[q] = opt_at(p->o.output_padding, p->spatial, q, 0);
        o_[q] = (inn[q] - 1) * s[q] - 2 * pd[q] + d[q] * (k[q] - 1) + op[q] + 1;
    }
    ref_alloc_layout(out, p, x, n_, co, o_[0], o_[1]);
    for (int64_t n = 0; n < n_; n++)
        for (int64_t o = 0; o < co; o++)
            for (int64_t a = 0; a < o_[0]; a++)
                for (int64_t b = 0; b < o_[1]; b++)
                    out->data[((n * co + o) * o_[0] + a) * o_[1] + b] = bias ? bias->data[o] : 0;
    for (int64_t n = 0; n < n_; n++)
        for (int64_t ch = 0; ch < ci; ch++)
            for (int64_t a = 0; a < h; a++)
                for (int64_t b = 0; b < w; b++) {
                    double v = x->data[((n * ci + ch) * h + a) * w + b];
                    for (int64_t o = 0; o < cog; o++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t y = a * s[0] - pd[0] + i * d[0], z = b * s[1] - pd[1] + j * d[1];
                                if (y < 0 || y >= o_[0] || z < 0 || z >= o_[1]) continue;
                                int64_t oc = (ch / cig) * cog + o;
                                out->data[((n * co + oc) * o_[0] + y) * o_[1] + z] +=
                                    v * wt->data[((ch * cog + o) * kh + i) * kw + j];
                            }
                }
}

/* dw[o, c, i, j] = sum_{n, a, b} dy[n, o, a, b] x[n, group(o) cig + c, a s - p + i d, b s - p + j d] */
static void ref_weight_grad(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const conv_params *p = c->params;
    const ref_tensor *x = &in[0], *dy = &in[1];
    int batched = dy->ndim == p->spatial + 2;
    ref_geom g = ref_conv_geom(p, x, dy->shape[batched], p->spatial == 2 ? p->kh : 1, p->spatial == 2 ? p->kw : p->kh);
    int64_t cig = g.ci / g.groups, cog = g.co / g.groups;
    if (p->spatial == 2) ref_alloc(out, 4, (int64_t[]){ g.co, cig, g.kh, g.kw });
    else ref_alloc(out, 3, (int64_t[]){ g.co, cig, g.kw });
    for (int64_t o = 0; o < g.co; o++)
        for (int64_t ch = 0; ch < cig; ch++)
            for (int64_t i = 0; i < g.kh; i++)
                for (int64_t j = 0; j < g.kw; j++) {
                    double s = 0;
                    for (int64_t n = 0; n < g.n; n++)
                        for (int64_t a = 0; a < g.oh; a++)
                            for (int64_t b = 0; b < g.ow; b++) {
                                int64_t ih = a * g.s[0] - g.p[0] + i * g.d[0], iw = b * g.s[1] - g.p[1] + j * g.d[1];
                                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                                s += Y4(g, dy->data, n, o, a, b) * X4(g, x->data, n, (o / cog) * cig + ch, ih, iw);
                            }
                    W4(g, out->data, o, ch, i, j) = s;
                }
}

static mt_tensor *run_conv(const mt_op_case *c, mt_tensor *const *in)
{
    const conv_params *p = c->params;
    mt_tensor *b = c->n_inputs > 2 ? in[2] : NULL;
    switch (p->kind) {
    case TRANSPOSE:
        return p->spatial == 2 ? mt_conv_transpose2d(in[0], in[1], b, p->o) : mt_conv_transpose1d(in[0], in[1], b, p->o);
    case WEIGHT_GRAD:
        return p->spatial == 2 ? mt_conv2d_weight_grad(in[0], in[1], p->kh, p->kw, p->o)
                               : mt_conv1d_weight_grad(in[0], in[1], p->kh, p->o);
    default:
        return p->spatial == 2 ? mt_conv2d(in[0], in[1], b, p->o) : mt_conv1d(in[0], in[1], b, p->o);
    }
}

static mt_conv_opts opts_of(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    o.stride[0] = sh; o.stride[1] = sw;
    o.padding[0] = ph; o.padding[1] = pw;
    o.dilation[0] = dh; o.dilation[1] = dw;
    o.groups = groups;
    return o;
}

static void check_conv_case(const char *name, const conv_params *p, int n_inputs, const mt_input_spec *specs)
{
    mt_op_case c = { .name = name, .n_inputs = n_inputs, .run = run_conv, .params = p,
                     .reference = p->kind == TRANSPOSE ? ref_conv_transpose
                                : p->kind == WEIGHT_GRAD ? ref_weight_grad : ref_conv };
    memcpy(c.inputs, specs, sizeof(mt_input_spec) * (size_t)n_inputs);
    mt_check_op(&c);
}

#define CONV_TEST(NAME, PARAMS, ...)                                                                      \
    Test(ops_conv, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                             \
        conv_params p = PARAMS;                                                                           \
        mt_input_spec specs[] = { __VA_ARGS__ };                                                          \
        check_conv_case(#NAME, &p, (int)(sizeof specs / sizeof specs[0]), specs);                         \
    }

/* ---------------------------------------------------------------- conv2d */
CONV_TEST(conv2d_3x3_pad1_bias, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 1, 1, 1, 1, 1) }),
          MT_SPEC(-2, 2, 2, 3, 7, 6), MT_SPEC(-1, 1, 4, 3, 3, 3), MT_SPEC(-1, 1, 4))
CONV_TEST(conv2d_stride_pad_dilation, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(2, 3, 1, 2, 2, 1, 1) }),
          MT_SPEC(-2, 2, 2, 2, 9, 8), MT_SPEC(-1, 1, 3, 2, 3, 2))
CONV_TEST(conv2d_groups2, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(2, 1, 1, 1, 1, 1, 2) }),
          MT_SPEC(-2, 2, 2, 4, 6, 6), MT_SPEC(-1, 1, 6, 2, 3, 3), MT_SPEC(-1, 1, 6))
CONV_TEST(conv2d_depthwise, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 1, 1, 1, 1, 3) }),
          MT_SPEC(-2, 2, 2, 3, 8, 7), MT_SPEC(-1, 1, 3, 1, 3, 3), MT_SPEC(-1, 1, 3))
CONV_TEST(conv2d_depthwise_strided, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(2, 2, 2, 1, 1, 2, 3) }),
          MT_SPEC(-2, 2, 2, 3, 9, 8), MT_SPEC(-1, 1, 3, 1, 5, 3))
/* channel multiplier 2: output channel o reads input channel o / 2 */
CONV_TEST(conv2d_depthwise_multiplier, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 3, 3, 1, 1, 2) }),
          MT_SPEC(-2, 2, 2, 2, 7, 7), MT_SPEC(-1, 1, 4, 1, 7, 7), MT_SPEC(-1, 1, 4))
CONV_TEST(conv2d_pointwise, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 0, 0, 1, 1, 1) }),
          MT_SPEC(-2, 2, 2, 5, 4, 3), MT_SPEC(-1, 1, 7, 5, 1, 1), MT_SPEC(-1, 1, 7))
CONV_TEST(conv2d_pointwise_strided, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(2, 2, 0, 0, 1, 1, 1) }),
          MT_SPEC(-2, 2, 2, 3, 5, 6), MT_SPEC(-1, 1, 4, 3, 1, 1))
CONV_TEST(conv2d_unbatched, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 1, 0, 1, 1, 1) }),
          MT_SPEC(-2, 2, 3, 6, 5), MT_SPEC(-1, 1, 2, 3, 3, 2))
CONV_TEST(conv2d_kernel_covers_input, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 0, 0, 1, 1, 1) }),
          MT_SPEC(-2, 2, 3, 2, 4, 3), MT_SPEC(-1, 1, 2, 2, 4, 3))
/* 288 output pixels: several tiles of the CUDA kernels along M (and of K in the weight gradient) */
CONV_TEST(conv2d_multi_block, ((conv_params){ .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 1, 1, 1, 1, 1) }),
          MT_SPEC(-2, 2, 2, 3, 12, 12), MT_SPEC(-1, 1, 5, 3, 3, 3), MT_SPEC(-1, 1, 5))

Test(ops_conv, conv2d_same_even_kernel, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* span d (k - 1) = 3 in height and 2 * 1 = 2 in width: odd spans pad one more at the bottom */
    conv_params p = { .spatial = 2, .kind = CONV, .o = opts_of(1, 1, 0, 0, 1, 2, 1) };
    p.o.padding_same = true;
    mt_input_spec specs[] = { MT_SPEC(-2, 2, 1, 2, 5, 6), MT_SPEC(-1, 1, 3, 2, 4, 2), MT_SPEC(-1, 1, 3) };
    check_conv_case("conv2d_same_even_kernel", &p, 3, specs);
}

/* ---------------------------------------------------------------- conv1d */
CONV_TEST(conv1d_strided, ((conv_params){ .spatial = 1, .kind = CONV, .o = opts_of(2, 0, 2, 0, 1, 0, 1) }),
          MT_SPEC(-2, 2, 2, 3, 11), MT_SPEC(-1, 1, 4, 3, 5), MT_SPEC(-1, 1, 4))
CONV_TEST(conv1d_dilated_groups, ((conv_params){ .spatial = 1, .kind = CONV, .o = opts_of(1, 0, 3, 0, 3, 0, 2) }),
          MT_SPEC(-2, 2, 2, 4, 10), MT_SPEC(-1, 1, 6, 2, 3))
CONV_TEST(conv1d_unbatched, ((conv_params){ .spatial = 1, .kind = CONV, .o = opts_of(1, 0, 0, 0, 1, 0, 1) }),
          MT_SPEC(-2, 2, 3, 9), MT_SPEC(-1, 1, 2, 3, 4))

Test(ops_conv, conv1d_depthwise_same, .init = mt_test_setup, .fini = mt_test_teardown)
{
    conv_params p = { .spatial = 1, .kind = CONV, .o = opts_of(1, 0, 0, 0, 1, 0, 3) };
    p.o.padding_same = true;
    mt_input_spec specs[] = { MT_SPEC(-2, 2, 2, 3, 9), MT_SPEC(-1, 1, 3, 1, 4), MT_SPEC(-1, 1, 3) };
    check_conv_case("conv1d_depthwise_same", &p, 3, specs);
}

/* ---------------------------------------------------------------- transposed */
Test(ops_conv, conv_transpose2d_stride2_output_padding, .init = mt_test_setup, .fini = mt_test_teardown)
{
    conv_params p = { .spatial = 2, .kind = TRANSPOSE, .o = opts_of(2, 2, 1, 1, 1, 1, 1) };
    p.o.output_padding[0] = 1;
    mt_input_spec specs[] = { MT_SPEC(-2, 2, 2, 4, 4, 5), MT_SPEC(-1, 1, 4, 3, 3, 3), MT_SPEC(-1, 1, 3) };
    check_conv_case("conv_transpose2d_stride2_output_padding", &p, 3, specs);
}

CONV_TEST(conv_transpose2d_groups_dilation, ((conv_params){ .spatial = 2, .kind = TRANSPOSE, .o = opts_of(1, 2, 0, 1, 2, 1, 2) }),
          MT_SPEC(-2, 2, 2, 4, 3, 4), MT_SPEC(-1, 1, 4, 2, 3, 3))
CONV_TEST(conv_transpose2d_depthwise, ((conv_params){ .spatial = 2, .kind = TRANSPOSE, .o = opts_of(2, 2, 1, 1, 1, 1, 3) }),
          MT_SPEC(-2, 2, 2, 3, 4, 4), MT_SPEC(-1, 1, 3, 1, 3, 3), MT_SPEC(-1, 1, 3))
CONV_TEST(conv_transpose1d_stride3, ((conv_params){ .spatial = 1, .kind = TRANSPOSE, .o = opts_of(3, 0, 1, 0, 1, 0, 1) }),
          MT_SPEC(-2, 2, 2, 3, 6), MT_SPEC(-1, 1, 3, 2, 4), MT_SPEC(-1, 1, 2))

/* ---------------------------------------------------------------- the weight gradient as an op */
Test(ops_conv, conv2d_weight_grad_op, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* x [2, 4, 7, 6], kernels 3 x 2, stride (2, 1), padding (1, 0), groups 2 -> dy [2, 6, 4, 5] */
    conv_params p = { 2, WEIGHT_GRAD, opts_of(2, 1, 1, 0, 1, 1, 2), 3, 2 };
    mt_input_spec specs[] = { MT_SPEC(-2, 2, 2, 4, 7, 6), MT_SPEC(-1, 1, 2, 6, 4, 5) };
    check_conv_case("conv2d_weight_grad_op", &p, 2, specs);
}

Test(ops_conv, conv1d_weight_grad_op, .init = mt_test_setup, .fini = mt_test_teardown)
{
    conv_params p = { 1, WEIGHT_GRAD, opts_of(1, 0, 1, 0, 2, 0, 1), 3, 0 };   /* x [2, 3, 8], k 3, dilation 2 */
    mt_input_spec specs[] = { MT_SPEC(-2, 2, 2, 3, 8), MT_SPEC(-1, 1, 2, 2, 6) };
    check_conv_case("conv1d_weight_grad_op", &p, 2, specs);
}

/* ---------------------------------------------------------------- many geometries against the reference */
/* Forward, input gradient and weight gradient of 60 random convolutions (f64,
   CPU and, where present, cuda-emu) against the 7-loop reference and its adjoints. */
static double max_rel_diff(const mt_tensor *t, const ref_tensor *r)
{
    int64_t n = ref_numel(r);
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1)), worst = 0;
    cr_assert(v && mt_numel(t) == n);
    cr_assert_eq(mt_to_data(t, MT_F64, v), MT_OK);
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(v[i] - r->data[i]) / (1 + fabs(r->data[i]));
        if (d > worst) worst = d;
    }
    free(v);
    return worst;
}

static uint64_t lcg(uint64_t *s) { *s = *s * 6364136223846793005ull + 1442695040888963407ull; return *s >> 33; }

Test(ops_conv, random_geometries_match_reference, .init = mt_test_setup, .fini = mt_test_teardown)
{
    uint64_t seed = 12345;
    mt_device devices[2] = { { MT_DEVICE_CPU, 0 }, { MT_DEVICE_CUDA_EMU, 0 } };
    int n_dev = mt_device_available(devices[1], NULL) ? 2 : 1;
    for (int t = 0; t < 60; t++) {
        int64_t G = 1 + (int64_t)(lcg(&seed) % 3), cig = 1 + (int64_t)(lcg(&seed) % 3), cog = 1 + (int64_t)(lcg(&seed) % 3);
        if (t % 4 == 0) { cig = 1; }   /* depthwise-shaped */
        conv_params p = { .spatial = 2, .kind = CONV, .o = opts_of(1 + (int64_t)(lcg(&seed) % 3), 1 + (int64_t)(lcg(&seed) % 3),
                                           (int64_t)(lcg(&seed) % 3), (int64_t)(lcg(&seed) % 3),
                                           1 + (int64_t)(lcg(&seed) % 2), 1 + (int64_t)(lcg(&seed) % 2), G) };
        int64_t kh = 1 + (int64_t)(lcg(&seed) % 4), kw = 1 + (int64_t)(lcg(&seed) % 4);
        int64_t h = kh * p.o.dilation[0] + (int64_t)(lcg(&seed) % 6), w = kw * p.o.dilation[1] + (int64_t)(lcg(&seed) % 6);
        int64_t n = 1 + (int64_t)(lcg(&seed) % 3);
        mt_generator gen = mt_generator_new((uint64_t)t);
        mt_tensor *x = mt_uniform(&gen, MT_F64, 4, (int64_t[]){ n, G * cig, h, w }, -1, 1);
        mt_tensor *wt = mt_uniform(&gen, MT_F64, 4, (int64_t[]){ G * cog, cig, kh, kw }, -1, 1);
        mt_tensor *b = mt_uniform(&gen, MT_F64, 1, (int64_t[]){ G * cog }, -1, 1);
        ref_tensor rin[3] = { 0 };
        mt_tensor *ins[3] = { x, wt, b };
        for (int k = 0; k < 3; k++) {
            rin[k].ndim = ins[k]->ndim;
            memcpy(rin[k].shape, ins[k]->shape, sizeof rin[k].shape);
            rin[k].data = malloc(sizeof(double) * (size_t)mt_numel(ins[k]));
            cr_assert_eq(mt_to_data(ins[k], MT_F64, rin[k].data), MT_OK);
        }
        mt_op_case c = { .n_inputs = 3, .params = &p };
        ref_tensor ry = { 0 };
        ref_conv(&c, rin, &ry);
        /* dy, and the gradients the references give for it */
        mt_tensor *dy = mt_uniform(&gen, MT_F64, 4, ry.shape, -1, 1);
        ref_tensor rdy = { .ndim = 4 };
        memcpy(rdy.shape, ry.shape, sizeof rdy.shape);
        rdy.data = malloc(sizeof(double) * (size_t)ref_numel(&ry));
        cr_assert_eq(mt_to_data(dy, MT_F64, rdy.data), MT_OK);
        ref_tensor wg_in[2] = { rin[0], rdy }, rdw = { 0 }, rdx = { 0 };
        conv_params pw = p;
        pw.kind = WEIGHT_GRAD; pw.kh = kh; pw.kw = kw;
        mt_op_case cw = { .n_inputs = 2, .params = &pw };
        ref_weight_grad(&cw, wg_in, &rdw);
        /* dx = the transposed convolution of dy (the scatter reference) */
        conv_params pt = p;
        pt.kind = TRANSPOSE;
        pt.o.output_padding[0] = h - ((ry.shape[2] - 1) * p.o.stride[0] - 2 * p.o.padding[0] + p.o.dilation[0] * (kh - 1) + 1);
        pt.o.output_padding[1] = w - ((ry.shape[3] - 1) * p.o.stride[1] - 2 * p.o.padding[1] + p.o.dilation[1] * (kw - 1) + 1);
        ref_tensor tin[2] = { rdy, rin[1] };
        mt_op_case ct = { .n_inputs = 2, .params = &pt };
        ref_conv_transpose(&ct, tin, &rdx);
        for (int d = 0; d < n_dev; d++) {
            mt_tensor *xd = mt_requires_grad(mt_to_device(x, devices[d]), true);
            mt_tensor *wd = mt_requires_grad(mt_to_device(wt, devices[d]), true);
            mt_tensor *y = mt_conv2d(xd, wd, mt_to_device(b, devices[d]), p.o);
            cr_assert(y, "conv2d (case %d): %s", t, mt_last_error());
            double e = max_rel_diff(y, &ry);
            cr_assert_lt(e, 1e-12, "case %d on %s: forward differs by %g", t, mt_device_name(devices[d]), e);
            cr_assert_eq(mt_backward_ex(y, (mt_backward_opts){ .grad_output = mt_to_device(dy, devices[d]) }), MT_OK);
            e = max_rel_diff(mt_grad(xd), &rdx);
            cr_assert_lt(e, 1e-12, "case %d on %s: input gradient differs by %g", t, mt_device_name(devices[d]), e);
            e = max_rel_diff(mt_grad(wd), &rdw);
            cr_assert_lt(e, 1e-12, "case %d on %s: weight gradient differs by %g", t, mt_device_name(devices[d]), e);
        }
        for (int k = 0; k < 3; k++) free(rin[k].data);
        free(rdy.data); free(ry.data); free(rdw.data); free(rdx.data);
    }
}

/* ---------------------------------------------------------------- the adjoint identity */
/* <conv(x, w), y> = <x, conv_transpose(y, w)>: the same weight tensor read
   both ways, with output_padding recovering the input's size. */
Test(ops_conv, conv_transpose_is_the_adjoint, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(7);
    mt_conv_opts o = opts_of(2, 3, 1, 2, 1, 2, 2);
    mt_tensor *x = mt_uniform(&gen, MT_F64, 4, (int64_t[]){ 3, 4, 11, 13 }, -1, 1);
    mt_tensor *w = mt_uniform(&gen, MT_F64, 4, (int64_t[]){ 6, 2, 3, 3 }, -1, 1);
    mt_tensor *cx = mt_conv2d(x, w, NULL, o);
    cr_assert(cx, "%s", mt_last_error());
    mt_tensor *y = mt_uniform(&gen, MT_F64, cx->ndim, cx->shape, -1, 1);
    /* (out - 1) s - 2p + d (k - 1) + 1 + output_padding = in */
    o.output_padding[0] = 11 - ((cx->shape[2] - 1) * 2 - 2 + 2 + 1);
    o.output_padding[1] = 13 - ((cx->shape[3] - 1) * 3 - 4 + 4 + 1);
    mt_tensor *ty = mt_conv_transpose2d(y, w, NULL, o);
    cr_assert(ty, "%s", mt_last_error());
    cr_assert(mt_same_shape(ty, x));
    double lhs = mt_item(mt_sum_all(mt_mul(cx, y))), rhs = mt_item(mt_sum_all(mt_mul(x, ty)));
    cr_assert_float_eq(lhs, rhs, 1e-10 * (1 + fabs(lhs)), "<conv x, y> = %.15g but <x, conv_T y> = %.15g", lhs, rhs);
}

/* ---------------------------------------------------------------- threads */
/* The CPU kernels sum each element in an order fixed by the shapes: the
   same bits at 1 and 2 threads, forward and both gradients, f32. */
static void conv_step_f32(int threads, mt_conv_opts o, int64_t groups_w1, float *out, size_t n_out)
{
    mt_set_num_threads(threads);
    mt_generator gen = mt_generator_new(3);
    mt_tensor *x = mt_requires_grad(mt_uniform(&gen, MT_F32, 4, (int64_t[]){ 5, 8, 15, 14 }, -1, 1), true);
    mt_tensor *w = mt_requires_grad(mt_uniform(&gen, MT_F32, 4, (int64_t[]){ 8, groups_w1, 3, 3 }, -1, 1), true);
    mt_tensor *y = mt_conv2d(x, w, NULL, o);
    cr_assert(y, "%s", mt_last_error());
    cr_assert_eq(mt_backward_ex(y, (mt_backward_opts){ .grad_output = mt_uniform(&gen, MT_F32, 4, y->shape, -1, 1) }),
                 MT_OK);
    size_t ny = (size_t)mt_numel(y), nx = (size_t)mt_numel(x), nw = (size_t)mt_numel(w);
    cr_assert_eq(ny + nx + nw, n_out);
    cr_assert_eq(mt_to_data(y, MT_F32, out), MT_OK);
    cr_assert_eq(mt_to_data(mt_grad(x), MT_F32, out + ny), MT_OK);
    cr_assert_eq(mt_to_data(mt_grad(w), MT_F32, out + ny + nx), MT_OK);
}

Test(ops_conv, cpu_kernels_thread_count_invariant, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int prev = mt_get_num_threads();
    for (int depthwise = 0; depthwise < 2; depthwise++) {
        mt_conv_opts o = opts_of(1, 2, 1, 1, 1, 1, depthwise ? 8 : 1);
        int64_t w1 = depthwise ? 1 : 8;
        mt_tensor *probe = mt_conv2d(mt_zeros(MT_F32, 4, (int64_t[]){ 5, 8, 15, 14 }),
                                     mt_zeros(MT_F32, 4, (int64_t[]){ 8, w1, 3, 3 }), NULL, o);
        cr_assert(probe);
        size_t n = (size_t)mt_numel(probe) + 5 * 8 * 15 * 14 + (size_t)(8 * w1 * 9);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        cr_assert(a && b);
        conv_step_f32(1, o, w1, a, n);
        conv_step_f32(2, o, w1, b, n);
        cr_assert(memcmp(a, b, sizeof(float) * n) == 0, "%s conv: results differ between 1 and 2 threads",
                  depthwise ? "depthwise" : "im2col");
        free(a); free(b);
    }
    mt_set_num_threads(prev);
}

/* ---------------------------------------------------------------- errors */
static void expect_error(mt_tensor *r, const char *needle)
{
    cr_assert_null(r, "expected an error containing '%s'", needle);
    cr_assert(strstr(mt_last_error(), needle), "error '%s' does not mention '%s'", mt_last_error(), needle);
}

Test(ops_conv, errors_name_the_problem, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    mt_tensor *x = mt_zeros(MT_F32, 4, (int64_t[]){ 2, 4, 6, 6 });
    mt_tensor *w = mt_zeros(MT_F32, 4, (int64_t[]){ 3, 4, 3, 3 });
    expect_error(mt_conv2d(x, mt_zeros(MT_F32, 4, (int64_t[]){ 3, 2, 3, 3 }), NULL, o), "does not fit weight");
    expect_error(mt_conv2d(x, mt_zeros(MT_F32, 4, (int64_t[]){ 3, 3, 7, 3 }), NULL, o), "does not fit weight");
    expect_error(mt_conv2d(x, mt_zeros(MT_F32, 4, (int64_t[]){ 3, 4, 7, 3 }), NULL, o), "smaller than the dilated kernel");
    expect_error(mt_conv2d(x, w, mt_zeros(MT_F32, 1, (int64_t[]){ 4 }), o), "bias");
    expect_error(mt_conv2d(mt_zeros(MT_F32, 2, (int64_t[]){ 4, 6 }), w, NULL, o), "must be [N, C, H, W]");
    expect_error(mt_conv2d(x, mt_zeros(MT_F32, 3, (int64_t[]){ 3, 4, 3 }), NULL, o), "weight");
    expect_error(mt_conv2d(x, mt_zeros(MT_F64, 4, (int64_t[]){ 3, 4, 3, 3 }), NULL, o), "dtype");
    mt_conv_opts g3 = o; g3.groups = 3;
    expect_error(mt_conv2d(x, w, NULL, g3), "groups");
    mt_conv_opts g0 = o; g0.groups = 0;
    expect_error(mt_conv2d(x, w, NULL, g0), "groups must be >= 1");
    mt_conv_opts s0 = o; s0.stride[1] = 0;
    expect_error(mt_conv2d(x, w, NULL, s0), "stride");
    mt_conv_opts same2 = o; same2.padding_same = true; same2.stride[0] = 2;
    expect_error(mt_conv2d(x, w, NULL, same2), "'same' needs stride 1");
    expect_error(mt_conv2d(x, w, NULL, (mt_conv_opts){ .stride = { 1, 1 }, .dilation = { 1, 1 }, .groups = 1 }),
                 "MT_CONV_DEFAULTS");
    mt_conv_opts op = o; op.stride[0] = 2; op.output_padding[0] = 2;
    expect_error(mt_conv_transpose2d(x, mt_zeros(MT_F32, 4, (int64_t[]){ 4, 2, 3, 3 }), NULL, op), "output_padding");
    expect_error(mt_conv_transpose2d(x, w, NULL, o), "does not fit weight");
    expect_error(mt_conv1d(mt_zeros(MT_I64, 3, (int64_t[]){ 1, 4, 6 }), mt_zeros(MT_F32, 3, (int64_t[]){ 1, 4, 3 }),
                           NULL, o), "conv1d");
    expect_error(mt_conv2d_weight_grad(x, mt_zeros(MT_F32, 4, (int64_t[]){ 2, 3, 5, 5 }), 3, 3, o),
                 "does not match");
    /* NULL propagates, naming nothing new */
    cr_assert_null(mt_conv2d(NULL, w, NULL, o));
}
