/*
 * test_ops_pool.c - pooling and resampling (include/mytorch/pool.h):
 * max, average and adaptive pooling in 1-d and 2-d, interpolation (nearest,
 * linear, bilinear) and the course's up/downsampling.
 *
 * Every op goes through the harness against a naive reference written here
 * as plain loops in double, straight from PyTorch's definitions (output
 * sizes included), on shapes that exercise the edges: odd sizes, padding,
 * stride != kernel, dilation, ceil_mode, count_include_pad, 1 x 1 outputs,
 * unbatched inputs, and cases with more elements than one CUDA block so that
 * cuda-emu runs several. The max-pool references check that no window's
 * maximum is within 1e-5 of another of its values (finite differences would
 * then swap them). Then: values worked out by hand from PyTorch's formulas,
 * the deterministic and atomic gradient paths of max pooling on cuda-emu,
 * thread-count independence, the course's identities, and bad arguments.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum pool_kind {
    MAX_POOL, AVG_POOL, ADAPTIVE_AVG, ADAPTIVE_MAX, NEAREST, LINEAR, UPSAMPLE, DOWNSAMPLE
} pool_kind;

/* [0] = H, [1] = W; a 1-d op uses [1] only */
typedef struct pool_params {
    pool_kind kind;
    int spatial;
    int64_t k[2], s[2], p[2], d[2];
    bool ceil_mode, count_include_pad, has_div;
    int64_t div;
    int64_t size[2];            /* adaptive and interpolate output sizes (interpolate: 0 = by scale) */
    double scale[2];
    bool align;
    int64_t factor;
} pool_params;

/* ---------------------------------------------------------------- reference helpers */
/* x as [planes, H, W] (H = 1 in 1-d) */
static void ref_planes(const pool_params *p, const ref_tensor *x, int64_t *planes, int64_t *h, int64_t *w)
{
    *w = x->shape[x->ndim - 1];
    *h = p->spatial == 2 ? x->shape[x->ndim - 2] : 1;
    *planes = ref_numel(x) / (*h * *w);
}

static void ref_alloc_out(const pool_params *p, const ref_tensor *x, int64_t oh, int64_t ow, ref_tensor *out)
{
    int64_t shape[MT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = ow;
    if (p->spatial == 2) shape[x->ndim - 2] = oh;
    ref_alloc(out, x->ndim, shape);
}

/* PyTorch's pooling_output_shape */
static int64_t ref_pool_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d, bool ceil_mode)
{
    int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t out = (int64_t)floor((double)num / (double)s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pad) out--;
    return out;
}

/* a = 0 (H) or 1 (W): the parameters of axis a, the identity for H in 1-d */
#define AX(p, field, a) ((p)->spatial == 1 && (a) == 0 ? (int64_t)1 : (p)->field[a])
#define AXP(p, field, a) ((p)->spatial == 1 && (a) == 0 ? (int64_t)0 : (p)->field[a])

/* ---------------------------------------------------------------- max pooling */
static void ref_max_pool(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const pool_params *p = c->params;
    int64_t planes, H, W, o[2], n[2];
    ref_planes(p, &in[0], &planes, &H, &W);
    n[0] = H;
    n[1] = W;
    bool adaptive = p->kind == ADAPTIVE_MAX;
    for (int a = 0; a < 2; a++)
        o[a] = adaptive ? (p->spatial == 1 && a == 0 ? 1 : p->size[a])
                        : ref_pool_size(n[a], AX(p, k, a), AX(p, s, a), AXP(p, p, a), AX(p, d, a), p->ceil_mode);
    ref_alloc_out(p, &in[0], o[0], o[1], &out[0]);
    ref_alloc_out(p, &in[0], o[0], o[1], &out[1]);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < o[0]; i++)
            for (int64_t j = 0; j < o[1]; j++) {
                /* the window's positions along each axis */
                int64_t pos[2][64], cnt[2] = { 0, 0 }, idx[2] = { i, j };
                for (int a = 0; a < 2; a++) {
                    if (adaptive) {
                        int64_t lo = (int64_t)floor((double)idx[a] * (double)n[a] / (double)o[a]);
                        int64_t hi = (int64_t)ceil((double)(idx[a] + 1) * (double)n[a] / (double)o[a]);
                        for (int64_t r = lo; r < hi; r++) pos[a][cnt[a]++] = r;
                    } else {
                        for (int64_t m = 0; m < AX(p, k, a); m++) {
                            int64_t r = idx[a] * AX(p, s, a) - AXP(p, p, a) + m * AX(p, d, a);
                            if (r >= 0 && r < n[a]) pos[a][cnt[a]++] = r;
                        }
                    }
                }
                double best = -INFINITY;
                int64_t at = -1;
                for (int64_t u = 0; u < cnt[0]; u++)
                    for (int64_t v = 0; v < cnt[1]; v++) {
                        int64_t k = pos[0][u] * W + pos[1][v];
                        double x = in[0].data[q * H * W + k];
                        if (at < 0 || x > best) { best = x; at = k; }
                    }
                cr_assert(at >= 0, "%s: empty window in the reference", c->name);
                for (int64_t u = 0; u < cnt[0]; u++)
                    for (int64_t v = 0; v < cnt[1]; v++) {
                        int64_t k = pos[0][u] * W + pos[1][v];
                        cr_assert(k == at || best - in[0].data[q * H * W + k] > 1e-5,
                                  "%s: a near tie in a window (%.9g and %.9g): choose another shape", c->name, best,
                                  in[0].data[q * H * W + k]);
                    }
                out[0].data[(q * o[0] + i) * o[1] + j] = best;
                out[1].data[(q * o[0] + i) * o[1] + j] = (double)at;
            }
}

static mt_status run_max_pool(const mt_op_case *c, mt_tensor *const *in, mt_tensor **out)
{
    const pool_params *p = c->params;
    if (p->kind == ADAPTIVE_MAX)
        out[0] = p->spatial == 1 ? mt_adaptive_max_pool1d(in[0], p->size[1], &out[1])
                                 : mt_adaptive_max_pool2d(in[0], p->size[0], p->size[1], &out[1]);
    else if (p->spatial == 1) {
        mt_max_pool1d_opts o = MT_MAX_POOL1D_DEFAULTS(p->k[1]);
        o.stride = p->s[1];
        o.padding = p->p[1];
        o.dilation = p->d[1];
        o.ceil_mode = p->ceil_mode;
        out[0] = mt_max_pool1d(in[0], o, &out[1]);
    } else {
        mt_max_pool2d_opts o = MT_MAX_POOL2D_DEFAULTS(p->k[0], p->k[1]);
        for (int a = 0; a < 2; a++) {
            o.stride[a] = p->s[a];
            o.padding[a] = p->p[a];
            o.dilation[a] = p->d[a];
        }
        o.ceil_mode = p->ceil_mode;
        out[0] = mt_max_pool2d(in[0], o, &out[1]);
    }
    return out[0] ? MT_OK : mt_last_status();
}

/* SPEC is the input's shape in parentheses, values in [-2, 2] */
#define SHAPE_SPEC(...) MT_SPEC(-2, 2, __VA_ARGS__)
#define MAX_CASE(NAME, SPEC, ...)                                                                 \
    Test(ops_pool, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                       \
        static const pool_params p = { __VA_ARGS__ };                                             \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SHAPE_SPEC SPEC }, .n_outputs = 2,        \
                         .run_n = run_max_pool, .reference = ref_max_pool, .params = &p };        \
        mt_check_op(&c);                                                                          \
    }

MAX_CASE(max_pool2d_k2_s2, (2, 3, 8, 8), MAX_POOL, 2, { 2, 2 }, { 2, 2 }, { 0, 0 }, { 1, 1 })
MAX_CASE(max_pool2d_resnet_stem_k3_s2_p1, (2, 2, 9, 9), MAX_POOL, 2, { 3, 3 }, { 2, 2 }, { 1, 1 }, { 1, 1 })
MAX_CASE(max_pool2d_overlapping_k3_s1_p1, (1, 2, 5, 6), MAX_POOL, 2, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1 })
MAX_CASE(max_pool2d_dilation2, (1, 2, 7, 8), MAX_POOL, 2, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 2, 2 })
MAX_CASE(max_pool2d_dilation2_padding2, (1, 2, 7, 8), MAX_POOL, 2, { 3, 3 }, { 2, 2 }, { 2, 2 }, { 2, 2 })
MAX_CASE(max_pool2d_ceil_mode, (1, 2, 8, 7), MAX_POOL, 2, { 3, 3 }, { 2, 2 }, { 0, 0 }, { 1, 1 }, .ceil_mode = true)
MAX_CASE(max_pool2d_ceil_mode_padded, (2, 1, 6, 5), MAX_POOL, 2, { 2, 3 }, { 2, 2 }, { 1, 1 }, { 1, 1 }, .ceil_mode = true)
MAX_CASE(max_pool2d_rectangular, (2, 1, 6, 7), MAX_POOL, 2, { 2, 3 }, { 1, 2 }, { 1, 1 }, { 1, 1 })
MAX_CASE(max_pool2d_multi_block, (2, 4, 20, 18), MAX_POOL, 2, { 2, 2 }, { 2, 2 }, { 0, 0 }, { 1, 1 })
MAX_CASE(max_pool2d_unbatched, (3, 6, 5), MAX_POOL, 2, { 2, 2 }, { 1, 1 }, { 0, 0 }, { 1, 1 })
MAX_CASE(max_pool2d_whole_plane, (2, 3, 4, 4), MAX_POOL, 2, { 4, 4 }, { 4, 4 }, { 0, 0 }, { 1, 1 })
MAX_CASE(max_pool1d_k3_s2_p1, (2, 3, 11), MAX_POOL, 1, { 0, 3 }, { 0, 2 }, { 0, 1 }, { 0, 1 })
MAX_CASE(max_pool1d_dilation_ceil, (2, 2, 10), MAX_POOL, 1, { 0, 3 }, { 0, 2 }, { 0, 1 }, { 0, 2 }, .ceil_mode = true)
MAX_CASE(max_pool1d_unbatched, (4, 9), MAX_POOL, 1, { 0, 2 }, { 0, 2 }, { 0, 0 }, { 0, 1 })
MAX_CASE(adaptive_max_pool2d_3x4, (2, 2, 7, 9), ADAPTIVE_MAX, 2, .size = { 3, 4 })
MAX_CASE(adaptive_max_pool2d_larger_output, (1, 2, 3, 4), ADAPTIVE_MAX, 2, .size = { 5, 6 })
MAX_CASE(adaptive_max_pool1d_5, (2, 3, 11), ADAPTIVE_MAX, 1, .size = { 0, 5 })

/* ---------------------------------------------------------------- average pooling */
static void ref_avg_pool(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const pool_params *p = c->params;
    int64_t planes, H, W, o[2], n[2];
    ref_planes(p, &in[0], &planes, &H, &W);
    n[0] = H;
    n[1] = W;
    for (int a = 0; a < 2; a++) o[a] = ref_pool_size(n[a], AX(p, k, a), AX(p, s, a), AXP(p, p, a), 1, p->ceil_mode);
    ref_alloc_out(p, &in[0], o[0], o[1], out);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < o[0]; i++)
            for (int64_t j = 0; j < o[1]; j++) {
                /* PyTorch's avg_pool2d: hend = min(hstart + k, H + pad); pool_size with the padding */
                int64_t lo[2], hi[2], idx[2] = { i, j }, pool_size = 1, count = 1;
                for (int a = 0; a < 2; a++) {
                    lo[a] = idx[a] * AX(p, s, a) - AXP(p, p, a);
                    hi[a] = lo[a] + AX(p, k, a);
                    if (hi[a] > n[a] + AXP(p, p, a)) hi[a] = n[a] + AXP(p, p, a);
                    pool_size *= hi[a] - lo[a];
                    if (lo[a] < 0) lo[a] = 0;
                    if (hi[a] > n[a]) hi[a] = n[a];
                    count *= hi[a] - lo[a];
                }
                double sum = 0;
                for (int64_t r = lo[0]; r < hi[0]; r++)
                    for (int64_t s = lo[1]; s < hi[1]; s++) sum += in[0].data[(q * H + r) * W + s];
                double div = p->has_div ? (double)p->div : (double)(p->count_include_pad ? pool_size : count);
                out->data[(q * o[0] + i) * o[1] + j] = sum / div;
            }
}

static mt_tensor *run_avg_pool(const mt_op_case *c, mt_tensor *const *in)
{
    const pool_params *p = c->params;
    if (p->spatial == 1) {
        mt_avg_pool1d_opts o = MT_AVG_POOL1D_DEFAULTS(p->k[1]);
        o.stride = p->s[1];
        o.padding = p->p[1];
        o.ceil_mode = p->ceil_mode;
        o.count_include_pad = p->count_include_pad;
        return mt_avg_pool1d(in[0], o);
    }
    mt_avg_pool2d_opts o = MT_AVG_POOL2D_DEFAULTS(p->k[0], p->k[1]);
    for (int a = 0; a < 2; a++) {
        o.stride[a] = p->s[a];
        o.padding[a] = p->p[a];
    }
    o.ceil_mode = p->ceil_mode;
    o.count_include_pad = p->count_include_pad;
    o.has_divisor_override = p->has_div;
    o.divisor_override = p->div;
    return mt_avg_pool2d(in[0], o);
}

#define LINEAR_CASE(NAME, RUN, REF, SPEC, ...)                                                    \
    Test(ops_pool, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                       \
        static const pool_params p = { __VA_ARGS__ };                                             \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SHAPE_SPEC SPEC }, .run = RUN,            \
                         .reference = REF, .params = &p };                                        \
        mt_check_op(&c);                                                                          \
    }
#define AVG_CASE(NAME, SPEC, ...) LINEAR_CASE(NAME, run_avg_pool, ref_avg_pool, SPEC, AVG_POOL, __VA_ARGS__)

AVG_CASE(avg_pool2d_k2_s2, (2, 3, 6, 6), 2, { 2, 2 }, { 2, 2 }, { 0, 0 }, .count_include_pad = true)
AVG_CASE(avg_pool2d_k3_s2_p1_include_pad, (2, 2, 7, 8), 2, { 3, 3 }, { 2, 2 }, { 1, 1 }, .count_include_pad = true)
AVG_CASE(avg_pool2d_k3_s2_p1_exclude_pad, (2, 2, 7, 8), 2, { 3, 3 }, { 2, 2 }, { 1, 1 })
AVG_CASE(avg_pool2d_ceil_mode_exclude_pad, (1, 2, 7, 7), 2, { 3, 3 }, { 2, 2 }, { 1, 1 }, .ceil_mode = true)
AVG_CASE(avg_pool2d_ceil_mode_include_pad, (1, 2, 6, 7), 2, { 3, 2 }, { 2, 2 }, { 1, 1 }, .ceil_mode = true, .count_include_pad = true)
AVG_CASE(avg_pool2d_divisor_override, (2, 2, 6, 7), 2, { 2, 3 }, { 2, 1 }, { 1, 1 }, .has_div = true, .div = 5)
AVG_CASE(avg_pool2d_multi_block, (2, 4, 17, 17), 2, { 3, 3 }, { 1, 1 }, { 1, 1 }, .count_include_pad = true)
AVG_CASE(avg_pool2d_unbatched, (3, 5, 6), 2, { 2, 3 }, { 1, 2 }, { 0, 1 }, .count_include_pad = true)
AVG_CASE(avg_pool1d_k3_s2_p1, (2, 3, 10), 1, { 0, 3 }, { 0, 2 }, { 0, 1 }, .count_include_pad = true)
AVG_CASE(avg_pool1d_ceil_mode_exclude_pad, (2, 2, 9), 1, { 0, 4 }, { 0, 3 }, { 0, 2 }, .ceil_mode = true)
AVG_CASE(avg_pool1d_unbatched, (3, 8), 1, { 0, 2 }, { 0, 2 }, { 0, 0 }, .count_include_pad = true)

/* ---------------------------------------------------------------- adaptive average pooling */
static void ref_adaptive_avg(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const pool_params *p = c->params;
    int64_t planes, H, W, o[2] = { p->spatial == 1 ? 1 : p->size[0], p->size[1] };
    ref_planes(p, &in[0], &planes, &H, &W);
    int64_t n[2] = { H, W };
    ref_alloc_out(p, &in[0], o[0], o[1], out);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < o[0]; i++)
            for (int64_t j = 0; j < o[1]; j++) {
                int64_t lo[2], hi[2], idx[2] = { i, j };
                for (int a = 0; a < 2; a++) {
                    lo[a] = (int64_t)floor((double)idx[a] * (double)n[a] / (double)o[a]);
                    hi[a] = (int64_t)ceil((double)(idx[a] + 1) * (double)n[a] / (double)o[a]);
                }
                double sum = 0;
                for (int64_t r = lo[0]; r < hi[0]; r++)
                    for (int64_t s = lo[1]; s < hi[1]; s++) sum += in[0].data[(q * H + r) * W + s];
                out->data[(q * o[0] + i) * o[1] + j] = sum / (double)((hi[0] - lo[0]) * (hi[1] - lo[1]));
            }
}

static mt_tensor *run_adaptive_avg(const mt_op_case *c, mt_tensor *const *in)
{
    const pool_params *p = c->params;
    return p->spatial == 1 ? mt_adaptive_avg_pool1d(in[0], p->size[1])
                           : mt_adaptive_avg_pool2d(in[0], p->size[0], p->size[1]);
}

#define ADAPTIVE_AVG_CASE(NAME, SPEC, ...) \
    LINEAR_CASE(NAME, run_adaptive_avg, ref_adaptive_avg, SPEC, ADAPTIVE_AVG, __VA_ARGS__)

ADAPTIVE_AVG_CASE(adaptive_avg_pool2d_global, (2, 3, 5, 7), 2, .size = { 1, 1 })
ADAPTIVE_AVG_CASE(adaptive_avg_pool2d_global_multi_block, (4, 80, 3, 3), 2, .size = { 1, 1 })
ADAPTIVE_AVG_CASE(adaptive_avg_pool2d_3x2, (2, 2, 7, 5), 2, .size = { 3, 2 })
ADAPTIVE_AVG_CASE(adaptive_avg_pool2d_larger_output, (1, 2, 3, 4), 2, .size = { 5, 6 })
ADAPTIVE_AVG_CASE(adaptive_avg_pool2d_1x3_unbatched, (3, 4, 7), 2, .size = { 1, 3 })
ADAPTIVE_AVG_CASE(adaptive_avg_pool2d_multi_block, (2, 8, 9, 10), 2, .size = { 4, 5 })
ADAPTIVE_AVG_CASE(adaptive_avg_pool1d_4, (2, 3, 10), 1, .size = { 0, 4 })
ADAPTIVE_AVG_CASE(adaptive_avg_pool1d_global, (2, 3, 10), 1, .size = { 0, 1 })

/* ---------------------------------------------------------------- interpolation */
/* PyTorch's nearest_idx, in float. */
static int64_t ref_nearest(int64_t i, int64_t in, int64_t out, double scale_factor)
{
    if (out == in) return i;
    if (out == 2 * in) return i >> 1;
    float scale = scale_factor > 0 ? (float)(1.0 / scale_factor) : (float)in / (float)out;
    int64_t src = (int64_t)floorf((float)i * scale);
    return src < in - 1 ? src : in - 1;
}

/* PyTorch's linear source index and weight (in double here). */
static void ref_linear(int64_t i, int64_t in, int64_t out, double scale_factor, bool align, int64_t *i0, int64_t *i1,
                       double *l1)
{
    if (out == in) { *i0 = *i1 = i; *l1 = 0; return; }
    double src;
    if (align) src = out > 1 ? (double)i * (double)(in - 1) / (double)(out - 1) : 0;
    else {
        double scale = scale_factor > 0 ? 1.0 / scale_factor : (double)in / (double)out;
        src = ((double)i + 0.5) * scale - 0.5;
        if (src < 0) src = 0;
    }
    *i0 = (int64_t)floor(src);
    if (*i0 > in - 1) *i0 = in - 1;
    *l1 = fmin(fmax(src - (double)*i0, 0), 1);
    *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
}

static int64_t ref_interp_size(const pool_params *p, int a, int64_t in)
{
    return p->size[a] ? p->size[a] : (int64_t)floor((double)in * p->scale[a]);
}

static void ref_interpolate(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const pool_params *p = c->params;
    int64_t planes, H, W;
    ref_planes(p, &in[0], &planes, &H, &W);
    int64_t oh = p->spatial == 2 ? ref_interp_size(p, 0, H) : 1, ow = ref_interp_size(p, p->spatial == 2 ? 1 : 0, W);
    double sh = p->spatial == 2 && !p->size[0] ? p->scale[0] : 0;
    double sw = p->size[p->spatial == 2 ? 1 : 0] ? 0 : p->scale[p->spatial == 2 ? 1 : 0];
    ref_alloc_out(p, &in[0], oh, ow, out);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                const double *x = in[0].data + q * H * W;
                double v;
                if (p->kind == NEAREST) {
                    v = x[ref_nearest(i, H, oh, sh) * W + ref_nearest(j, W, ow, sw)];
                } else {
                    int64_t h0 = 0, h1 = 0, w0, w1;
                    double lh = 0, lw;
                    if (p->spatial == 2) ref_linear(i, H, oh, sh, p->align, &h0, &h1, &lh);
                    ref_linear(j, W, ow, sw, p->align, &w0, &w1, &lw);
                    v = (1 - lh) * ((1 - lw) * x[h0 * W + w0] + lw * x[h0 * W + w1]) +
                        lh * ((1 - lw) * x[h1 * W + w0] + lw * x[h1 * W + w1]);
                }
                out->data[(q * oh + i) * ow + j] = v;
            }
}

static mt_tensor *run_interpolate(const mt_op_case *c, mt_tensor *const *in)
{
    const pool_params *p = c->params;
    mt_interpolate_opts o = { .mode = p->kind == NEAREST ? MT_INTERP_NEAREST
                                      : p->spatial == 1 ? MT_INTERP_LINEAR : MT_INTERP_BILINEAR,
                              .align_corners = p->align };
    for (int a = 0; a < 2; a++) {
        o.size[a] = p->size[a];
        o.scale_factor[a] = p->scale[a];
    }
    return mt_interpolate(in[0], o);
}

/* size / scale: [0] = W in 1-d, (H, W) in 2-d (as mt_interpolate_opts) */
#define INTERP_CASE(NAME, SPEC, KIND, SPATIAL, ...) \
    LINEAR_CASE(NAME, run_interpolate, ref_interpolate, SPEC, KIND, SPATIAL, __VA_ARGS__)

INTERP_CASE(nearest1d_scale2, (2, 3, 5), NEAREST, 1, .scale = { 2 })
INTERP_CASE(nearest1d_size7, (2, 3, 5), NEAREST, 1, .size = { 7 })
INTERP_CASE(nearest1d_scale_0_6, (2, 2, 11), NEAREST, 1, .scale = { 0.6 })
INTERP_CASE(nearest2d_scale_1_5_and_2_5, (1, 2, 5, 4), NEAREST, 2, .scale = { 1.5, 2.5 })
INTERP_CASE(nearest2d_down_to_3x4, (1, 2, 7, 9), NEAREST, 2, .size = { 3, 4 })
INTERP_CASE(nearest2d_multi_block, (2, 3, 6, 7), NEAREST, 2, .scale = { 2, 2 })
INTERP_CASE(linear1d_scale2, (2, 3, 5), LINEAR, 1, .scale = { 2 })
INTERP_CASE(linear1d_align_corners_size9, (2, 3, 5), LINEAR, 1, .size = { 9 }, .align = true)
INTERP_CASE(linear1d_down_size3, (2, 2, 8), LINEAR, 1, .size = { 3 })
INTERP_CASE(bilinear2d_size_7x9, (2, 2, 4, 5), LINEAR, 2, .size = { 7, 9 })
INTERP_CASE(bilinear2d_align_corners_7x9, (2, 2, 4, 5), LINEAR, 2, .size = { 7, 9 }, .align = true)
INTERP_CASE(bilinear2d_scale_2_5_and_1_5, (1, 2, 3, 4), LINEAR, 2, .scale = { 2.5, 1.5 })
INTERP_CASE(bilinear2d_down_to_3x3, (1, 2, 7, 8), LINEAR, 2, .size = { 3, 3 })
INTERP_CASE(bilinear2d_align_corners_to_1x1, (1, 2, 3, 4), LINEAR, 2, .size = { 1, 1 }, .align = true)
INTERP_CASE(bilinear2d_multi_block, (2, 3, 8, 8), LINEAR, 2, .scale = { 2, 2 })

/* ---------------------------------------------------------------- the course's up- and downsampling */
static void ref_resample(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const pool_params *p = c->params;
    int64_t planes, H, W, k = p->factor;
    ref_planes(p, &in[0], &planes, &H, &W);
    bool up = p->kind == UPSAMPLE;
    int64_t oh = p->spatial == 1 ? 1 : up ? k * (H - 1) + 1 : (H + k - 1) / k;
    int64_t ow = up ? k * (W - 1) + 1 : (W + k - 1) / k;
    int64_t kh = p->spatial == 1 ? 1 : k;
    ref_alloc_out(p, &in[0], oh, ow, out);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                double v = 0;
                if (!up) v = in[0].data[(q * H + i * kh) * W + j * k];
                else if (i % kh == 0 && j % k == 0) v = in[0].data[(q * H + i / kh) * W + j / k];
                out->data[(q * oh + i) * ow + j] = v;
            }
}

static mt_tensor *run_resample(const mt_op_case *c, mt_tensor *const *in)
{
    const pool_params *p = c->params;
    if (p->kind == UPSAMPLE) return p->spatial == 1 ? mt_upsample1d(in[0], p->factor) : mt_upsample2d(in[0], p->factor);
    return p->spatial == 1 ? mt_downsample1d(in[0], p->factor) : mt_downsample2d(in[0], p->factor);
}

#define RESAMPLE_CASE(NAME, SPEC, KIND, SPATIAL, K) \
    LINEAR_CASE(NAME, run_resample, ref_resample, SPEC, KIND, SPATIAL, .factor = K)

RESAMPLE_CASE(upsample1d_k3, (2, 3, 5), UPSAMPLE, 1, 3)
RESAMPLE_CASE(upsample1d_k1_unbatched, (3, 4), UPSAMPLE, 1, 1)
RESAMPLE_CASE(upsample2d_k2, (2, 2, 4, 5), UPSAMPLE, 2, 2)
RESAMPLE_CASE(upsample2d_multi_block_unbatched, (3, 6, 7), UPSAMPLE, 2, 3)
RESAMPLE_CASE(downsample1d_k2_odd_width, (2, 3, 9), DOWNSAMPLE, 1, 2)
RESAMPLE_CASE(downsample1d_k4_unbatched, (3, 10), DOWNSAMPLE, 1, 4)
RESAMPLE_CASE(downsample2d_k3, (2, 2, 7, 8), DOWNSAMPLE, 2, 3)
RESAMPLE_CASE(downsample2d_k2_multi_block, (2, 3, 15, 13), DOWNSAMPLE, 2, 2)

/* ---------------------------------------------------------------- values worked out by hand */
static void expect_values(const mt_tensor *t, int64_t n, const double *want, const char *what)
{
    cr_assert(t != NULL, "%s: %s", what, mt_last_error());
    cr_assert_eq(mt_numel(t), n, "%s: %lld elements, expected %lld", what, (long long)mt_numel(t), (long long)n);
    double *got = malloc(sizeof(double) * (size_t)n);
    cr_assert_eq(mt_to_data(t, MT_F64, got), MT_OK);
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) < 1e-6, "%s: element %lld is %.9g, expected %.9g", what, (long long)i, got[i],
                  want[i]);
    free(got);
}

Test(ops_pool, values_by_hand, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x16 = mt_reshape(mt_arange(MT_F32, 0, 16, 1), 4, (int64_t[]){ 1, 1, 4, 4 });
    mt_tensor *ix;
    mt_tensor *y = mt_max_pool2d(x16, MT_MAX_POOL2D_DEFAULTS(2, 2), &ix);
    expect_values(y, 4, (double[]){ 5, 7, 13, 15 }, "max_pool2d 2x2 of arange(16)");
    expect_values(ix, 4, (double[]){ 5, 7, 13, 15 }, "its indices");
    cr_assert_eq(ix->dtype, MT_I64);

    /* ceil_mode keeps the last half window: [max(0, 1), max(2, 3), max(4)] */
    mt_tensor *x5 = mt_reshape(mt_arange(MT_F64, 0, 5, 1), 3, (int64_t[]){ 1, 1, 5 });
    mt_max_pool1d_opts o1 = MT_MAX_POOL1D_DEFAULTS(2);
    expect_values(mt_max_pool1d(x5, o1, NULL), 2, (double[]){ 1, 3 }, "max_pool1d floor mode");
    o1.ceil_mode = true;
    expect_values(mt_max_pool1d(x5, o1, &ix), 3, (double[]){ 1, 3, 4 }, "max_pool1d ceil mode");
    expect_values(ix, 3, (double[]){ 1, 3, 4 }, "max_pool1d ceil mode indices");

    /* 3x3 ones, k3 s1 p1: corners 4/9, edges 6/9 with the padding counted, all 1 without */
    mt_tensor *ones = mt_ones(MT_F64, MT_SHAPE(1, 1, 3, 3));
    mt_avg_pool2d_opts a = MT_AVG_POOL2D_DEFAULTS(3, 3);
    a.stride[0] = a.stride[1] = 1;
    a.padding[0] = a.padding[1] = 1;
    expect_values(mt_avg_pool2d(ones, a), 9, (double[]){ 4 / 9., 6 / 9., 4 / 9., 6 / 9., 1, 6 / 9., 4 / 9., 6 / 9., 4 / 9. },
                  "avg_pool2d count_include_pad");
    a.count_include_pad = false;
    expect_values(mt_avg_pool2d(ones, a), 9, (double[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1 }, "avg_pool2d exclude pad");
    a.has_divisor_override = true;
    a.divisor_override = 2;
    expect_values(mt_avg_pool2d(ones, a), 9, (double[]){ 2, 3, 2, 3, 4.5, 3, 2, 3, 2 }, "avg_pool2d divisor_override");

    /* adaptive 5 -> 3: windows [0, 2), [1, 4), [3, 5) */
    expect_values(mt_adaptive_avg_pool1d(x5, 3), 3, (double[]){ 0.5, 2, 3.5 }, "adaptive_avg_pool1d 5 -> 3");
    expect_values(mt_adaptive_max_pool1d(x5, 3, &ix), 3, (double[]){ 1, 3, 4 }, "adaptive_max_pool1d 5 -> 3");
    expect_values(mt_adaptive_avg_pool2d(x16, 1, 1), 1, (double[]){ 7.5 }, "global average pool");

    /* PyTorch: F.interpolate([[1, 2], [3, 4]], scale_factor=2, mode='bilinear') */
    mt_tensor *q = mt_from_data(MT_F32, MT_SHAPE(1, 1, 2, 2), (float[]){ 1, 2, 3, 4 });
    expect_values(mt_interpolate(q, (mt_interpolate_opts){ .scale_factor = { 2, 2 }, .mode = MT_INTERP_BILINEAR }), 16,
                  (double[]){ 1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4 },
                  "bilinear x2");
    expect_values(mt_interpolate(q, (mt_interpolate_opts){ .size = { 3, 3 }, .mode = MT_INTERP_BILINEAR,
                                                           .align_corners = true }),
                  9, (double[]){ 1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4 }, "bilinear align_corners to 3x3");
    expect_values(mt_interpolate(q, (mt_interpolate_opts){ .scale_factor = { 2, 2 } }), 16,
                  (double[]){ 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4 }, "nearest x2");
    /* nearest 2 -> 3: src = floor(dst * 2/3) = 0, 0, 1 */
    mt_tensor *r = mt_from_data(MT_F32, MT_SHAPE(1, 1, 2), (float[]){ 1, 2 });
    expect_values(mt_interpolate(r, (mt_interpolate_opts){ .size = { 3 } }), 3, (double[]){ 1, 1, 2 }, "nearest 2 -> 3");
    expect_values(mt_interpolate(r, (mt_interpolate_opts){ .size = { 4 }, .mode = MT_INTERP_LINEAR }), 4,
                  (double[]){ 1, 1.25, 1.75, 2 }, "linear 2 -> 4");

    /* the course's: upsample1d k2 of [1, 2, 3] = [1, 0, 2, 0, 3]; downsample1d k2 of that is [1, 2, 3] */
    mt_tensor *u = mt_upsample1d(mt_from_data(MT_F64, MT_SHAPE(1, 1, 3), (double[]){ 1, 2, 3 }), 2);
    expect_values(u, 5, (double[]){ 1, 0, 2, 0, 3 }, "upsample1d");
    expect_values(mt_downsample1d(u, 2), 3, (double[]){ 1, 2, 3 }, "downsample1d");
}

/* ---------------------------------------------------------------- the course's identities */
Test(ops_pool, upsample_then_downsample_is_the_identity, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(3);
    for (int64_t k = 1; k <= 4; k++) {
        mt_tensor *x1 = mt_randn(&gen, MT_F64, MT_SHAPE(2, 3, 7));
        mt_tensor *x2 = mt_randn(&gen, MT_F64, MT_SHAPE(2, 3, 5, 6));
        mt_tensor *y1 = mt_downsample1d(mt_upsample1d(x1, k), k), *y2 = mt_downsample2d(mt_upsample2d(x2, k), k);
        cr_assert(y1 && y2, "%s", mt_last_error());
        cr_assert(mt_same_shape(y1, x1) && mt_same_shape(y2, x2), "k = %lld: shapes changed", (long long)k);
        cr_assert(mt_item(mt_sum_all(mt_ne(y1, x1))) == 0 && mt_item(mt_sum_all(mt_ne(y2, x2))) == 0,
                  "k = %lld: upsample then downsample must give x back exactly", (long long)k);
    }
}

Test(ops_pool, downsample_of_odd_width_restores_it_in_backward, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* W = 9, k = 2: y = x[..., ::2] has 5 elements; dx = g at the even positions of a width-9 zeros */
    mt_tensor *x = mt_requires_grad(mt_randn(NULL, MT_F64, MT_SHAPE(2, 3, 9)), true);
    mt_tensor *y = mt_downsample1d(x, 2);
    cr_assert(y && mt_size(y, 2) == 5, "%s", y ? "width" : mt_last_error());
    mt_tensor *g = mt_randn(NULL, MT_F64, MT_SHAPE(2, 3, 5));
    cr_assert_eq(mt_backward(mt_sum_all(mt_mul(y, g))), MT_OK, "%s", mt_last_error());
    cr_assert(x->grad && mt_same_shape(x->grad, x), "the gradient must have the odd input width 9");
    for (int64_t w = 0; w < 9; w++) {
        double expect = w % 2 ? 0 : mt_get(g, (int64_t[]){ 1, 2, w / 2 });
        cr_assert(mt_get(x->grad, (int64_t[]){ 1, 2, w }) == expect, "dx[1, 2, %lld]", (long long)w);
    }
    /* and 2-d: 7 x 8 by 3 -> 3 x 3, back to 7 x 8 */
    mt_tensor *x2 = mt_requires_grad(mt_randn(NULL, MT_F32, MT_SHAPE(1, 2, 7, 8)), true);
    mt_tensor *y2 = mt_downsample2d(x2, 3);
    cr_assert(y2 && mt_size(y2, 2) == 3 && mt_size(y2, 3) == 3);
    cr_assert_eq(mt_backward(mt_sum_all(y2)), MT_OK, "%s", mt_last_error());
    cr_assert(mt_same_shape(x2->grad, x2));
    cr_assert_float_eq(mt_item(mt_sum_all(x2->grad)), 2 * 9, 1e-6);
    cr_assert_float_eq(mt_get(x2->grad, (int64_t[]){ 0, 1, 6, 6 }), 1, 0);
    cr_assert_float_eq(mt_get(x2->grad, (int64_t[]){ 0, 1, 6, 7 }), 0, 0);
}

/* ---------------------------------------------------------------- determinism */
/* Overlapping windows (k3 s1 p1): a local maximum is the argmax of up to 9
   windows, so its gradient is a sum. On cuda-emu in deterministic mode that
   sum is the CPU's bit for bit; with atomics it agrees to rounding. */
static void max_pool_grad(mt_device dev, const mt_tensor *x_host, const mt_tensor *v_host, double *out, int64_t n)
{
    mt_scope s = mt_scope_begin();
    mt_tensor *x = mt_requires_grad(mt_to_device(mt_clone((mt_tensor *)x_host), dev), true);
    mt_max_pool2d_opts o = MT_MAX_POOL2D_DEFAULTS(3, 3);
    o.stride[0] = o.stride[1] = 1;
    o.padding[0] = o.padding[1] = 1;
    mt_tensor *y = mt_max_pool2d(x, o, NULL);
    cr_assert_eq(mt_backward(mt_sum_all(mt_mul(y, mt_to_device((mt_tensor *)v_host, dev)))), MT_OK, "%s",
                 mt_last_error());
    cr_assert_eq(mt_numel(x->grad), n);
    cr_assert_eq(mt_to_data(x->grad, MT_F64, out), MT_OK);
    mt_scope_end(s);
}

Test(ops_pool, max_pool_backward_deterministic_on_cuda_emu, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    if (!mt_device_available(emu, NULL)) cr_skip_test("cuda-emu is not available");
    mt_generator gen = mt_generator_new(11);
    for (int pass = 0; pass < 2; pass++) {
        mt_dtype dt = pass ? MT_F64 : MT_F32;
        mt_tensor *x = mt_randn(&gen, dt, MT_SHAPE(2, 3, 16, 16)), *v = mt_randn(&gen, dt, MT_SHAPE(2, 3, 16, 16));
        int64_t n = mt_numel(x);
        double *cpu = malloc(sizeof(double) * (size_t)n), *ordered = malloc(sizeof(double) * (size_t)n);
        double *atomic = malloc(sizeof(double) * (size_t)n);
        max_pool_grad(mt_cpu(), x, v, cpu, n);
        bool prev = mt_set_deterministic(true);
        max_pool_grad(emu, x, v, ordered, n);
        mt_set_deterministic(false);
        max_pool_grad(emu, x, v, atomic, n);
        mt_set_deterministic(prev);
        for (int64_t i = 0; i < n; i++) {
            cr_assert(ordered[i] == cpu[i], "%s: dx[%lld] is %.17g in deterministic mode, %.17g on the cpu",
                      mt_dtype_name(dt), (long long)i, ordered[i], cpu[i]);
            cr_assert(fabs(atomic[i] - cpu[i]) <= 1e-5 * (1 + fabs(cpu[i])), "%s: dx[%lld] with atomics", mt_dtype_name(dt),
                      (long long)i);
        }
        /* the case is worth it: some inputs are the argmax of several windows */
        mt_tensor *ix;
        mt_max_pool2d_opts o = MT_MAX_POOL2D_DEFAULTS(3, 3);
        o.stride[0] = o.stride[1] = 1;
        o.padding[0] = o.padding[1] = 1;
        cr_assert_not_null(mt_max_pool2d(x, o, &ix));
        int64_t *picks = calloc((size_t)n, sizeof *picks), *at = malloc(sizeof(int64_t) * (size_t)n), shared = 0;
        cr_assert_eq(mt_to_data(ix, MT_I64, at), MT_OK);
        for (int64_t e = 0; e < n; e++) picks[(e / 256) * 256 + at[e]]++;   /* same shape in and out: 16 x 16 planes */
        for (int64_t e = 0; e < n; e++) shared += picks[e] > 1;
        cr_assert(shared > 50, "only %lld inputs are the argmax of several windows", (long long)shared);
        free(picks);
        free(at);
        free(cpu);
        free(ordered);
        free(atomic);
    }
}

Test(ops_pool, cpu_independent_of_thread_count, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(5);
    int prev = mt_get_num_threads();
    mt_tensor *x = mt_randn(&gen, MT_F32, MT_SHAPE(8, 16, 32, 32));   /* above the parallel grain */
    mt_tensor *v = mt_randn(&gen, MT_F32, MT_SHAPE(8, 16, 16, 16));
    int64_t n = mt_numel(x);
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    for (int kind = 0; kind < 3; kind++) {
        float *outs[2] = { a, b };
        for (int t = 0; t < 2; t++) {
            mt_set_num_threads(t + 1);
            mt_scope s = mt_scope_begin();
            mt_tensor *xg = mt_requires_grad(mt_clone(x), true), *y;
            if (kind == 0) {
                mt_max_pool2d_opts o = MT_MAX_POOL2D_DEFAULTS(3, 3);
                o.stride[0] = o.stride[1] = 2;
                o.padding[0] = o.padding[1] = 1;
                y = mt_max_pool2d(xg, o, NULL);
            } else if (kind == 1) {
                mt_avg_pool2d_opts o = MT_AVG_POOL2D_DEFAULTS(3, 3);
                o.stride[0] = o.stride[1] = 2;
                o.padding[0] = o.padding[1] = 1;
                y = mt_avg_pool2d(xg, o);
            } else {
                y = mt_interpolate(xg, (mt_interpolate_opts){ .size = { 16, 16 }, .mode = MT_INTERP_BILINEAR });
            }
            cr_assert(y && mt_backward(mt_sum_all(mt_mul(y, v))) == MT_OK, "%s", mt_last_error());
            cr_assert_eq(mt_to_data(xg->grad, MT_F32, outs[t]), MT_OK);
            mt_scope_end(s);
        }
        cr_assert(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "kind %d: gradients differ between 1 and 2 threads", kind);
    }
    mt_set_num_threads(prev);
    free(a);
    free(b);
}

/* ---------------------------------------------------------------- errors */
#define EXPECT_ERROR(call, ...)                                                                      \
    do {                                                                                             \
        mt_clear_error();                                                                            \
        cr_assert_null((call), "%s should fail", #call);                                             \
        const char *subs_[] = { __VA_ARGS__ };                                                       \
        for (size_t i_ = 0; i_ < sizeof subs_ / sizeof subs_[0]; i_++)                               \
            cr_assert(strstr(mt_last_error(), subs_[i_]), "%s: message \"%s\" lacks \"%s\"", #call,   \
                      mt_last_error(), subs_[i_]);                                                   \
    } while (0)

Test(ops_pool, bad_arguments, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(2, 3, 6, 5)), *x1 = mt_zeros(MT_F32, MT_SHAPE(2, 3, 6)), *ix = x;
    mt_max_pool2d_opts m = MT_MAX_POOL2D_DEFAULTS(2, 2);
    EXPECT_ERROR(mt_max_pool2d(mt_zeros(MT_F32, MT_SHAPE(3, 6)), m, &ix), "max_pool2d", "[3, 6]", "(N, C, H, W) or (C, H, W)");
    cr_assert_null(ix, "indices are NULL on error");
    EXPECT_ERROR(mt_max_pool2d(mt_zeros(MT_F32, MT_SHAPE(6)), m, NULL), "max_pool2d", "[6]");
    EXPECT_ERROR(mt_max_pool1d(x, MT_MAX_POOL1D_DEFAULTS(2), NULL), "max_pool1d", "[2, 3, 6, 5]", "(N, C, W)");
    EXPECT_ERROR(mt_max_pool2d(mt_zeros(MT_F32, MT_SHAPE(2, 0, 6, 5)), m, NULL), "max_pool2d", "non-empty");
    EXPECT_ERROR(mt_max_pool2d(mt_zeros(MT_I64, MT_SHAPE(2, 3, 6, 5)), m, NULL), "max_pool2d");
    cr_assert_null(mt_max_pool2d(NULL, m, NULL));
    EXPECT_ERROR(mt_max_pool2d(x, (mt_max_pool2d_opts){ .kernel_size = { 2, 2 }, .stride = { 2, 2 } }, NULL),
                 "max_pool2d", "MT_MAX_POOL2D_DEFAULTS");

    /* the kernel larger than the padded input */
    EXPECT_ERROR(mt_max_pool2d(x, MT_MAX_POOL2D_DEFAULTS(7, 2), NULL), "max_pool2d", "7 positions along H",
                 "6 + 2 x 0 = 6", "[2, 3, 6, 5]");
    mt_max_pool2d_opts dil = MT_MAX_POOL2D_DEFAULTS(3, 3);
    dil.dilation[1] = 3;   /* spans 7 > 5 */
    EXPECT_ERROR(mt_max_pool2d(x, dil, NULL), "max_pool2d", "7 positions along W", "dilation 3");
    /* padding more than half the effective kernel size (PyTorch's rule) */
    mt_max_pool2d_opts pad = MT_MAX_POOL2D_DEFAULTS(3, 3);
    pad.padding[0] = 2;
    EXPECT_ERROR(mt_max_pool2d(x, pad, NULL), "max_pool2d", "padding 2", "kernel_size 3", "half: 1", "along H");
    pad.dilation[0] = 2;   /* the effective kernel is 5: padding 2 is allowed, as in PyTorch */
    cr_assert_not_null(mt_max_pool2d(x, pad, NULL), "%s", mt_last_error());
    pad.padding[0] = 3;
    EXPECT_ERROR(mt_max_pool2d(x, pad, NULL), "max_pool2d", "padding 3", "half: 2");
    pad.dilation[0] = 1;
    pad.padding[0] = -1;
    EXPECT_ERROR(mt_max_pool2d(x, pad, NULL), "max_pool2d", "padding -1");
    /* non-positive stride, kernel, dilation */
    mt_max_pool2d_opts st = MT_MAX_POOL2D_DEFAULTS(2, 2);
    st.stride[1] = 0;
    EXPECT_ERROR(mt_max_pool2d(x, st, NULL), "max_pool2d", "positive", "along W");
    EXPECT_ERROR(mt_max_pool1d(x1, MT_MAX_POOL1D_DEFAULTS(0), NULL), "max_pool1d", "positive");
    mt_max_pool1d_opts d0 = MT_MAX_POOL1D_DEFAULTS(2);
    d0.dilation = 0;
    EXPECT_ERROR(mt_max_pool1d(x1, d0, NULL), "max_pool1d", "dilation");
    /* a window of padding and dilation gaps only: W = 2, k 2, d 3, pad 1 reads positions -1 and 2 */
    mt_max_pool1d_opts gaps = MT_MAX_POOL1D_DEFAULTS(2);
    gaps.dilation = 3;
    gaps.padding = 1;
    EXPECT_ERROR(mt_max_pool1d(mt_zeros(MT_F32, MT_SHAPE(1, 1, 2)), gaps, NULL), "max_pool1d", "covers no input",
                 "[1, 1, 2]");

    mt_avg_pool2d_opts a = MT_AVG_POOL2D_DEFAULTS(3, 3);
    a.padding[1] = 2;
    EXPECT_ERROR(mt_avg_pool2d(x, a), "avg_pool2d", "padding 2");
    a = MT_AVG_POOL2D_DEFAULTS(3, 3);
    a.has_divisor_override = true;
    EXPECT_ERROR(mt_avg_pool2d(x, a), "avg_pool2d", "divisor_override");
    EXPECT_ERROR(mt_avg_pool2d(x, (mt_avg_pool2d_opts){ .kernel_size = { 2, 2 }, .stride = { 2, 2 } }), "avg_pool2d",
                 "MT_AVG_POOL2D_DEFAULTS");
    EXPECT_ERROR(mt_avg_pool1d(x1, MT_AVG_POOL1D_DEFAULTS(8)), "avg_pool1d", "8 positions");
    mt_avg_pool1d_opts a1 = MT_AVG_POOL1D_DEFAULTS(2);
    a1.stride = -1;
    EXPECT_ERROR(mt_avg_pool1d(x1, a1), "avg_pool1d", "positive");

    EXPECT_ERROR(mt_adaptive_avg_pool2d(x, 0, 2), "adaptive_avg_pool2d", "positive", "along H", "[2, 3, 6, 5]");
    EXPECT_ERROR(mt_adaptive_avg_pool1d(x, 2), "adaptive_avg_pool1d", "(N, C, W)");
    EXPECT_ERROR(mt_adaptive_max_pool2d(x, 2, -1, &ix), "adaptive_max_pool2d", "along W");
    cr_assert_null(ix);
    EXPECT_ERROR(mt_adaptive_max_pool1d(x1, 0, NULL), "adaptive_max_pool1d", "positive");

    EXPECT_ERROR(mt_interpolate(x, (mt_interpolate_opts){ .mode = MT_INTERP_NEAREST }), "interpolate", "size or scale_factor", "neither");
    EXPECT_ERROR(mt_interpolate(x, (mt_interpolate_opts){ .size = { 2, 2 }, .scale_factor = { 2, 2 } }), "interpolate",
                 "not both");
    EXPECT_ERROR(mt_interpolate(x, (mt_interpolate_opts){ .size = { 2, 0 } }), "interpolate", "size[1]");
    EXPECT_ERROR(mt_interpolate(x, (mt_interpolate_opts){ .scale_factor = { 0.1, 2 } }), "interpolate",
                 "output size of 0", "[2, 3, 6, 5]");
    EXPECT_ERROR(mt_interpolate(x, (mt_interpolate_opts){ .scale_factor = { -1, 2 } }), "interpolate", "scale_factor[0]");
    EXPECT_ERROR(mt_interpolate(x, (mt_interpolate_opts){ .size = { 4, 4 }, .mode = MT_INTERP_LINEAR }), "interpolate",
                 "linear needs a 3-d");
    EXPECT_ERROR(mt_interpolate(x1, (mt_interpolate_opts){ .size = { 4 }, .mode = MT_INTERP_BILINEAR }), "interpolate",
                 "bilinear needs a 4-d");
    EXPECT_ERROR(mt_interpolate(x, (mt_interpolate_opts){ .size = { 4, 4 }, .align_corners = true }), "interpolate",
                 "align_corners");
    EXPECT_ERROR(mt_interpolate(mt_zeros(MT_F32, MT_SHAPE(3, 6)), (mt_interpolate_opts){ .size = { 4 } }), "interpolate",
                 "[3, 6]");

    EXPECT_ERROR(mt_upsample1d(x1, 0), "upsample1d", "factor", "[2, 3, 6]");
    EXPECT_ERROR(mt_downsample2d(x, -2), "downsample2d", "factor");
    EXPECT_ERROR(mt_upsample2d(mt_zeros(MT_F32, MT_SHAPE(3, 6)), 2), "upsample2d", "[3, 6]");
    EXPECT_ERROR(mt_downsample1d(x, 2), "downsample1d", "(N, C, W)");
}

/* ---------------------------------------------------------------- ownership */
/* With no scope open, an op's result and what its node keeps (the maps, the
   indices) go when the results go; a failing op leaves nothing. The CPU
   allocator's count of bytes handed out shows a leak in every build. */
static size_t cpu_allocated(void) { return mt_device_memory_stats(mt_cpu()).allocated; }

Test(ops_pool, no_scope_results_own_their_maps)
{
    mt_tensor *x = mt_requires_grad(mt_randn(NULL, MT_F32, MT_SHAPE(2, 3, 9, 8)), true);
    size_t before = cpu_allocated();
    mt_tensor *ix = NULL;
    mt_max_pool2d_opts m = MT_MAX_POOL2D_DEFAULTS(3, 3);
    m.stride[0] = m.stride[1] = 2;
    mt_tensor *outs[] = {
        mt_max_pool2d(x, m, &ix),
        mt_avg_pool2d(x, MT_AVG_POOL2D_DEFAULTS(2, 2)),
        mt_adaptive_avg_pool2d(x, 1, 1),
        mt_adaptive_max_pool2d(x, 2, 3, NULL),
        mt_interpolate(x, (mt_interpolate_opts){ .size = { 5, 5 }, .mode = MT_INTERP_BILINEAR }),
        mt_upsample2d(x, 2),
        mt_downsample2d(x, 2),
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        cr_assert_not_null(outs[i], "op %zu: %s", i, mt_last_error());
        mt_tensor *loss = mt_sum_all(outs[i]);
        cr_assert(loss && mt_backward(loss) == MT_OK, "op %zu: %s", i, mt_last_error());
        mt_free(loss);
    }
    cr_assert_not_null(ix);
    mt_free(ix);
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) mt_free(outs[i]);
    mt_zero_grad(x);
    cr_expect_eq(cpu_allocated(), before, "%zu bytes were left behind", cpu_allocated() - before);
    before = cpu_allocated();
    cr_expect_null(mt_max_pool2d(x, MT_MAX_POOL2D_DEFAULTS(10, 2), &ix));
    cr_expect_null(mt_interpolate(x, (mt_interpolate_opts){ .size = { 4, 4 }, .mode = MT_INTERP_LINEAR }));
    cr_expect_eq(cpu_allocated(), before, "a failure left %zu bytes behind", cpu_allocated() - before);
    mt_free(x);
}

/* The CPU's pool_linear takes a row of scratch per thread: under growing cpu
   memory limits some limit lets the maps and the output through and fails
   the scratch, and that failure names the op, the kernel and the device. */
Test(ops_pool, a_scratch_out_of_memory_fails_the_op, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device cpu = mt_cpu();
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(2, 1, 40000));   /* out_w = 20000: 80000 bytes of scratch a thread */
    mt_device_empty_cache(cpu);
    size_t base = mt_device_memory_stats(cpu).reserved;
    bool scratch_failed = false, succeeded = false;
    for (size_t extra = 0; extra <= (size_t)4 << 20 && !succeeded; extra += 8192) {
        mt_scope attempt = mt_scope_begin();
        mt_device_empty_cache(cpu);
        mt_device_set_memory_limit(cpu, base + extra);
        mt_tensor *y = mt_avg_pool1d(x, MT_AVG_POOL1D_DEFAULTS(2));
        mt_device_set_memory_limit(cpu, 0);
        if (y) {
            succeeded = true;
            cr_assert_float_eq(mt_item(mt_sum_all(y)), 40000, 1e-3);
        } else {
            cr_assert_eq(mt_last_status(), MT_ERR_MEMORY, "%s", mt_last_error());
            if (strstr(mt_last_error(), "avg_pool1d: kernel 'pool_linear' on cpu: no scratch memory")) scratch_failed = true;
        }
        mt_scope_end(attempt);
    }
    cr_assert(succeeded, "%s", mt_last_error());
    cr_assert(scratch_failed, "no limit made pool_linear's scratch memory fail");
}
