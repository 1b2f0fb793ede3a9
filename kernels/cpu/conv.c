/*
 * conv.c - 2-d convolution on the CPU (conv1d is the case h = kh = 1), over
 * the geometry of kernels/kernels.h. With G = groups, cin_g = c_in / G and
 * cout_g = c_out / G, group g of image n is a matrix product:
 *
 *   forward          Y_g [cout_g, P]  = W_g [cout_g, K] col_g [K, P]  (+ bias)
 *   backward_input   dcol_g [K, P]    = W_g^T dY_g,  then dx += col2im(dcol_g)
 *   backward_weight  dW_g [cout_g, K] = sum_n dY_g col_g^T
 *
 * where P = out_h out_w output pixels, K = cin_g kh kw taps, and
 * col_g = im2col(x_g): col[(ci kh + i) kw + j, oh out_w + ow] = x[ci, ih, iw]
 * (zero in the padding). Two ways to compute them, picked by shape:
 *
 *   - depthwise (groups == c_in, each output channel reads one input
 *     channel: ConvNeXt's 7x7): direct loops over each (image, channel)
 *     plane. As a GEMM it would be a 1 x K by K x P product per plane, which
 *     no BLAS runs well; the direct loop is a row of fused multiply-adds
 *     along the output width that the compiler vectorizes.
 *   - everything else: im2col + GEMM through the BLAS (mt_cpu_gemm). A 1x1
 *     kernel with stride 1 and no padding reads x_g itself as col_g.
 *
 * Threads. The work is split into units (images; chunks of images for the
 * weight gradient, whose sum over images is fixed to a chunking that does not
 * depend on the thread count), one unit per OpenMP iteration, each with its
 * own im2col buffer; the BLAS runs single-threaded inside the parallel region.
 * A single unit runs outside any parallel region so that the BLAS threads it.
 * Each output element is therefore summed in an order fixed by the shapes;
 * in deterministic mode mt_cpu_gemm's fixed tiles make the single-unit case
 * thread-count invariant too (docs/determinism.md).
 */
#include "kernels/cpu/cpu_kernels.h"

#include <omp.h>
#include <string.h>

/* Images summed into one partial weight gradient (a fixed chunking). */
enum { CONV_WEIGHT_CHUNKS = 8 };

static bool conv_is_depthwise(const mt_conv2d_geometry *g)
{
    return g->groups == g->c_in && g->groups > 1 && g->c_out % g->c_in == 0;
}

/* A 1x1 kernel with stride 1 and no padding: col_g is x_g itself. */
static bool conv_is_pointwise(const mt_conv2d_geometry *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_h == 0 && g->pad_w == 0 &&
           g->out_h == g->h && g->out_w == g->w;
}

/* The output columns ow whose input column iw = ow s - p + j d lies in [0, w):
   [*lo, *hi). */
static void conv_valid_range(int64_t out, int64_t in, int64_t stride, int64_t pad, int64_t offset,
                             int64_t *lo, int64_t *hi)
{
    int64_t first = pad - offset;   /* ow s >= first */
    int64_t a = first <= 0 ? 0 : (first + stride - 1) / stride;
    int64_t last = in - 1 + pad - offset;   /* ow s <= last */
    int64_t b = last < 0 ? 0 : last / stride + 1;
    *lo = a < out ? a : out;
    *hi = b < out ? b : out;
    if (*hi < *lo) *hi = *lo;
}

#define DEFINE_CONV(T, SUFFIX)                                                                                  \
/* col [cin_g kh kw, out_h out_w] from the cin_g channels at x (each h x w). */                                 \
MT_CPU_AVX2_CLONES static void im2col_##SUFFIX(const mt_conv2d_geometry *g, int64_t cin_g, const T *x, T *col)                     \
{                                                                                                               \
    int64_t P = g->out_h * g->out_w;                                                                            \
    for (int64_t ci = 0; ci < cin_g; ci++)                                                                      \
        for (int64_t i = 0; i < g->kh; i++)                                                                     \
            for (int64_t j = 0; j < g->kw; j++) {                                                               \
                T *row = col + ((ci * g->kh + i) * g->kw + j) * P;                                              \
                int64_t lo, hi;                                                                                 \
                conv_valid_range(g->out_w, g->w, g->stride_w, g->pad_w, j * g->dilation_w, &lo, &hi);           \
                for (int64_t oh = 0; oh < g->out_h; oh++) {                                                     \
                    T *r = row + oh * g->out_w;                                                                 \
                    int64_t ih = oh * g->stride_h - g->pad_h + i * g->dilation_h;                               \
                    if (ih < 0 || ih >= g->h) { memset(r, 0, sizeof(T) * (size_t)g->out_w); continue; }         \
                    const T *xr = x + (ci * g->h + ih) * g->w; int64_t off = j * g->dilation_w - g->pad_w;      \
                    for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0;                                              \
                    for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow * g->stride_w + off];                    \
                    for (int64_t ow = hi; ow < g->out_w; ow++) r[ow] = 0;                                       \
                }                                                                                               \
            }                                                                                                   \
}                                                                                                               \
                                                                                                                \
/* dx (cin_g channels, accumulated) += the adjoint of im2col applied to col. */                                 \
MT_CPU_AVX2_CLONES static void col2im_##SUFFIX(const mt_conv2d_geometry *g, int64_t cin_g, const T *col, T *dx)                    \
{                                                                                                               \
    int64_t P = g->out_h * g->out_w;                                                                            \
    for (int64_t ci = 0; ci < cin_g; ci++)                                                                      \
        for (int64_t i = 0; i < g->kh; i++)                                                                     \
            for (int64_t j = 0; j < g->kw; j++) {                                                               \
                const T *row = col + ((ci * g->kh + i) * g->kw + j) * P;                                        \
                int64_t lo, hi;                                                                                 \
                conv_valid_range(g->out_w, g->w, g->stride_w, g->pad_w, j * g->dilation_w, &lo, &hi);           \
                for (int64_t oh = 0; oh < g->out_h; oh++) {                                                     \
                    int64_t ih = oh * g->stride_h - g->pad_h + i * g->dilation_h;                               \
                    if (ih < 0 || ih >= g->h) continue;                                                         \
                    const T *r = row + oh * g->out_w;                                                           \
                    T *xr = dx + (ci * g->h + ih) * g->w; int64_t off = j * g->dilation_w - g->pad_w;           \
                    for (int64_t ow = lo; ow < hi; ow++) xr[ow * g->stride_w + off] += r[ow];                   \
                }                                                                                               \
            }                                                                                                   \
}                                                                                                               \
                                                                                                                \
/* ---- depthwise: output channel co reads input channel co / mult ---- */                                      \
                                                                                                                \
/* y plane = bias + sum_{i, j} w[i, j] x[ih, iw]: one tap at a time over the whole plane (which stays in        \
   the L1 cache), so each tap's valid columns are found once; every element still sums its taps in (i, j)       \
   order. */                                                                                                    \
MT_CPU_AVX2_CLONES static void depthwise_forward_plane_##SUFFIX(const mt_conv2d_geometry *g, const T *restrict x,                  \
                                             const T *restrict w, T bias, T *restrict y)                        \
{                                                                                                               \
    for (int64_t q = 0; q < g->out_h * g->out_w; q++) y[q] = bias;                                              \
    for (int64_t i = 0; i < g->kh; i++)                                                                         \
        for (int64_t j = 0; j < g->kw; j++) {                                                                   \
            int64_t lo, hi;                                                                                     \
            conv_valid_range(g->out_w, g->w, g->stride_w, g->pad_w, j * g->dilation_w, &lo, &hi);               \
            if (lo >= hi) continue;                                                                             \
            T wv = w[i * g->kw + j];                                                                            \
            for (int64_t oh = 0; oh < g->out_h; oh++) {                                                         \
                int64_t ih = oh * g->stride_h - g->pad_h + i * g->dilation_h;                                   \
                if (ih < 0 || ih >= g->h) continue;                                                             \
                const T *restrict xr = x + ih * g->w + j * g->dilation_w - g->pad_w + lo * g->stride_w;         \
                T *restrict yr = y + oh * g->out_w + lo;                                                        \
                int64_t len = hi - lo;                                                                          \
                if (g->stride_w == 1)                                                                           \
                    _Pragma("omp simd")                                                                         \
                    for (int64_t q = 0; q < len; q++) yr[q] += wv * xr[q];                                      \
                else                                                                                            \
                    for (int64_t q = 0; q < len; q++) yr[q] += wv * xr[q * g->stride_w];                        \
            }                                                                                                   \
        }                                                                                                       \
}                                                                                                               \
                                                                                                                \
/* dx plane += sum_{i, j} w[i, j] dy[oh, ow] at (ih, iw): the forward's loops, scattering. */                   \
MT_CPU_AVX2_CLONES static void depthwise_backward_input_plane_##SUFFIX(const mt_conv2d_geometry *g, const T *restrict dy,          \
                                                    const T *restrict w, T *restrict dx)                        \
{                                                                                                               \
    for (int64_t i = 0; i < g->kh; i++)                                                                         \
        for (int64_t j = 0; j < g->kw; j++) {                                                                   \
            int64_t lo, hi;                                                                                     \
            conv_valid_range(g->out_w, g->w, g->stride_w, g->pad_w, j * g->dilation_w, &lo, &hi);               \
            if (lo >= hi) continue;                                                                             \
            T wv = w[i * g->kw + j];                                                                            \
            for (int64_t oh = 0; oh < g->out_h; oh++) {                                                         \
                int64_t ih = oh * g->stride_h - g->pad_h + i * g->dilation_h;                                   \
                if (ih < 0 || ih >= g->h) continue;                                                             \
                T *restrict xr = dx + ih * g->w + j * g->dilation_w - g->pad_w + lo * g->stride_w;              \
                const T *restrict dyr = dy + oh * g->out_w + lo;                                                \
                int64_t len = hi - lo;                                                                          \
                if (g->stride_w == 1)                                                                           \
                    _Pragma("omp simd")                                                                         \
                    for (int64_t q = 0; q < len; q++) xr[q] += wv * dyr[q];                                     \
                else                                                                                            \
                    for (int64_t q = 0; q < len; q++) xr[q * g->stride_w] += wv * dyr[q];                       \
            }                                                                                                   \
        }                                                                                                       \
}                                                                                                               \
/* acc[i kw + j] += sum_{oh, ow} dy[oh, ow] x[ih, iw] (each row's dot in T, the rows summed in double). */      \
MT_CPU_AVX2_CLONES static void depthwise_backward_weight_plane_##SUFFIX(const mt_conv2d_geometry *g, const T *x, const T *dy,      \
                                                     double *acc)                                               \
{                                                                                                               \
    for (int64_t i = 0; i < g->kh; i++)                                                                         \
        for (int64_t j = 0; j < g->kw; j++) {                                                                   \
            int64_t lo, hi;                                                                                     \
            conv_valid_range(g->out_w, g->w, g->stride_w, g->pad_w, j * g->dilation_w, &lo, &hi);               \
            double s = 0;                                                                                       \
            for (int64_t oh = 0; oh < g->out_h && lo < hi; oh++) {                                              \
                int64_t ih = oh * g->stride_h - g->pad_h + i * g->dilation_h;                                   \
                if (ih < 0 || ih >= g->h) continue;                                                             \
                const T *xr = x + ih * g->w + j * g->dilation_w - g->pad_w + lo * g->stride_w;                  \
                const T *dyr = dy + oh * g->out_w;                                                              \
                T row = 0;                                                                                      \
                if (g->stride_w == 1) {                                                                         \
                    _Pragma("omp simd reduction(+:row)")                                                        \
                    for (int64_t ow = lo; ow < hi; ow++) row += dyr[ow] * xr[ow - lo];                          \
                } else {                                                                                        \
                    for (int64_t ow = lo; ow < hi; ow++) row += dyr[ow] * xr[(ow - lo) * g->stride_w];          \
                }                                                                                               \
                s += row;                                                                                       \
            }                                                                                                   \
            acc[i * g->kw + j] += s;                                                                            \
        }                                                                                                       \
}                                                                                                               \
                                                                                                                \
static void depthwise_forward_##SUFFIX(const mt_conv2d_geometry *g, const T *x, const T *w, const T *b, T *y)   \
{                                                                                                               \
    int64_t mult = g->c_out / g->c_in, planes = g->n * g->c_out;                                                \
    int64_t in_plane = g->h * g->w, out_plane = g->out_h * g->out_w, taps = g->kh * g->kw;                      \
    _Pragma("omp parallel for schedule(static) if (planes * out_plane * taps > MT_CPU_PARALLEL_GRAIN)")         \
    for (int64_t p = 0; p < planes; p++) {                                                                      \
        int64_t n = p / g->c_out, co = p % g->c_out;                                                            \
        depthwise_forward_plane_##SUFFIX(g, x + (n * g->c_in + co / mult) * in_plane, w + co * taps,            \
                                         b ? b[co] : (T)0, y + p * out_plane);                                  \
    }                                                                                                           \
}                                                                                                               \
                                                                                                                \
/* One task per input plane: it gathers from its mult output channels, in order. */                             \
static void depthwise_backward_input_##SUFFIX(const mt_conv2d_geometry *g, const T *dy, const T *w, T *dx)      \
{                                                                                                               \
    int64_t mult = g->c_out / g->c_in, planes = g->n * g->c_in;                                                 \
    int64_t in_plane = g->h * g->w, out_plane = g->out_h * g->out_w, taps = g->kh * g->kw;                      \
    _Pragma("omp parallel for schedule(static) if (planes * out_plane * taps > MT_CPU_PARALLEL_GRAIN)")         \
    for (int64_t p = 0; p < planes; p++) {                                                                      \
        int64_t n = p / g->c_in, ci = p % g->c_in;                                                              \
        T *dxp = dx + p * in_plane;                                                                             \
        memset(dxp, 0, sizeof(T) * (size_t)in_plane);                                                           \
        for (int64_t k = 0; k < mult; k++) {                                                                    \
            int64_t co = ci * mult + k;                                                                         \
            depthwise_backward_input_plane_##SUFFIX(g, dy + (n * g->c_out + co) * out_plane, w + co * taps,     \
                                                    dxp);                                                       \
        }                                                                                                       \
    }                                                                                                           \
}                                                                                                               \
                                                                                                                \
/* One task per output channel, summing over images in order. */                                                \
static mt_status depthwise_backward_weight_##SUFFIX(const mt_conv2d_geometry *g, const T *x, const T *dy,       \
                                                    T *dw)                                                      \
{                                                                                                               \
    int64_t mult = g->c_out / g->c_in, taps = g->kh * g->kw;                                                    \
    int64_t in_plane = g->h * g->w, out_plane = g->out_h * g->out_w;                                            \
    size_t bytes = sizeof(double) * (size_t)(g->c_out * taps);                                                  \
    double *acc = mt_cpu_scratch_alloc(bytes);                                                                  \
    if (!acc) return MT_ERR_MEMORY;                                                                             \
    memset(acc, 0, bytes);                                                                                      \
    _Pragma("omp parallel for schedule(static) if (g->n * g->c_out * out_plane * taps > MT_CPU_PARALLEL_GRAIN)") \
    for (int64_t co = 0; co < g->c_out; co++)                                                                   \
        for (int64_t n = 0; n < g->n; n++)                                                                      \
            depthwise_backward_weight_plane_##SUFFIX(g, x + (n * g->c_in + co / mult) * in_plane,               \
                                                     dy + (n * g->c_out + co) * out_plane, acc + co * taps);    \
    for (int64_t k = 0; k < g->c_out * taps; k++) dw[k] = (T)acc[k];                                            \
    mt_cpu_scratch_free(acc, bytes);                                                                            \
    return MT_OK;                                                                                               \
}                                                                                                               \
                                                                                                                \
/* ---- im2col + GEMM ---- */                                                                                   \
                                                                                                                \
static mt_status gemm_forward_##SUFFIX(mt_dtype dtype, const mt_conv2d_geometry *g, const T *x, const T *w,     \
                                       const T *b, T *y)                                                        \
{                                                                                                               \
    int64_t G = g->groups, cin_g = g->c_in / G, cout_g = g->c_out / G;                                          \
    int64_t P = g->out_h * g->out_w, K = cin_g * g->kh * g->kw, in_plane = g->h * g->w;                         \
    bool direct = conv_is_pointwise(g);                                                                         \
    int threads = g->n > 1 ? omp_get_max_threads() : 1;                                                         \
    size_t per_thread = direct ? 0 : (size_t)(K * P);                                                           \
    T *cols = NULL;                                                                                             \
    if (per_thread && !(cols = mt_cpu_scratch_alloc(sizeof(T) * per_thread * (size_t)threads)))                 \
        return MT_ERR_MEMORY;                                                                                   \
    int failed = 0;   /* mt_cpu_gemm fails only on a dtype checked above */                                     \
    _Pragma("omp parallel for schedule(static) if (g->n > 1)")                                                  \
    for (int64_t n = 0; n < g->n; n++) {                                                                        \
        T *col = cols ? cols + per_thread * (size_t)omp_get_thread_num() : NULL;                                \
        for (int64_t gr = 0; gr < G; gr++) {                                                                    \
            const T *xg = x + (n * g->c_in + gr * cin_g) * in_plane;                                            \
            T *yg = y + (n * g->c_out + gr * cout_g) * P;                                                       \
            if (!direct) im2col_##SUFFIX(g, cin_g, xg, col);                                                    \
            if (b)                                                                                              \
                for (int64_t co = 0; co < cout_g; co++)                                                         \
                    for (int64_t q = 0; q < P; q++) yg[co * P + q] = b[gr * cout_g + co];                       \
            mt_status s = mt_cpu_gemm(dtype, false, false, cout_g, P, K, 1.0, w + gr * cout_g * K, K,           \
                                      direct ? xg : col, P, b ? 1.0 : 0.0, yg, P);                              \
            if (s != MT_OK) { _Pragma("omp atomic write") failed = 1; }                                         \
        }                                                                                                       \
    }                                                                                                           \
    if (cols) mt_cpu_scratch_free(cols, sizeof(T) * per_thread * (size_t)threads);                              \
    return failed ? MT_ERR_UNSUPPORTED : MT_OK;                                                                 \
}                                                                                                               \
                                                                                                                \
static mt_status gemm_backward_input_##SUFFIX(mt_dtype dtype, const mt_conv2d_geometry *g, const T *dy,         \
                                              const T *w, T *dx)                                                \
{                                                                                                               \
    int64_t G = g->groups, cin_g = g->c_in / G, cout_g = g->c_out / G;                                          \
    int64_t P = g->out_h * g->out_w, K = cin_g * g->kh * g->kw, in_plane = g->h * g->w;                         \
    bool direct = conv_is_pointwise(g);                                                                         \
    int threads = g->n > 1 ? omp_get_max_threads() : 1;                                                         \
    size_t per_thread = direct ? 0 : (size_t)(K * P);                                                           \
    T *cols = NULL;                                                                                             \
    if (per_thread && !(cols = mt_cpu_scratch_alloc(sizeof(T) * per_thread * (size_t)threads)))                 \
        return MT_ERR_MEMORY;                                                                                   \
    int failed = 0;   /* mt_cpu_gemm fails only on a dtype checked above */                                     \
    _Pragma("omp parallel for schedule(static) if (g->n > 1)")                                                  \
    for (int64_t n = 0; n < g->n; n++) {                                                                        \
        T *col = cols ? cols + per_thread * (size_t)omp_get_thread_num() : NULL;                                \
        for (int64_t gr = 0; gr < G; gr++) {                                                                    \
            T *dxg = dx + (n * g->c_in + gr * cin_g) * in_plane;                                                \
            const T *dyg = dy + (n * g->c_out + gr * cout_g) * P;                                               \
            /* dcol = W_g^T dY_g: straight into dx for a pointwise kernel */                                    \
            mt_status s = mt_cpu_gemm(dtype, true, false, K, P, cout_g, 1.0, w + gr * cout_g * K, K, dyg, P,    \
                                      0.0, direct ? dxg : col, P);                                              \
            if (s != MT_OK) { _Pragma("omp atomic write") failed = 1; }                                         \
            if (!direct) {                                                                                      \
                memset(dxg, 0, sizeof(T) * (size_t)(cin_g * in_plane));                                         \
                col2im_##SUFFIX(g, cin_g, col, dxg);                                                            \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
    if (cols) mt_cpu_scratch_free(cols, sizeof(T) * per_thread * (size_t)threads);                              \
    return failed ? MT_ERR_UNSUPPORTED : MT_OK;                                                                 \
}                                                                                                               \
                                                                                                                \
/* Chunk c of CONV_WEIGHT_CHUNKS sums images [c n / C, (c + 1) n / C) into a partial dW of its own; the         \
   partials are then added in chunk order. */                                                                   \
static mt_status gemm_backward_weight_##SUFFIX(mt_dtype dtype, const mt_conv2d_geometry *g, const T *x,         \
                                               const T *dy, T *dw)                                              \
{                                                                                                               \
    int64_t G = g->groups, cin_g = g->c_in / G, cout_g = g->c_out / G;                                          \
    int64_t P = g->out_h * g->out_w, K = cin_g * g->kh * g->kw, in_plane = g->h * g->w;                         \
    int64_t wsize = g->c_out * K, chunks = g->n < CONV_WEIGHT_CHUNKS ? g->n : CONV_WEIGHT_CHUNKS;               \
    if (chunks == 0) { memset(dw, 0, sizeof(T) * (size_t)wsize); return MT_OK; }                                \
    bool direct = conv_is_pointwise(g);                                                                         \
    int threads = chunks > 1 ? omp_get_max_threads() : 1;                                                       \
    size_t per_thread = direct ? 0 : (size_t)(K * P), partial_count = (size_t)(chunks - 1) * (size_t)wsize;     \
    size_t bytes = sizeof(T) * (per_thread * (size_t)threads + partial_count);                                  \
    T *scratch = bytes ? mt_cpu_scratch_alloc(bytes) : NULL;                                                    \
    if (bytes && !scratch) return MT_ERR_MEMORY;                                                                \
    T *partials = scratch ? scratch + per_thread * (size_t)threads : NULL; /* chunk c > 0: + (c - 1) wsize */   \
    int failed = 0;   /* mt_cpu_gemm fails only on a dtype checked above */                                     \
    _Pragma("omp parallel for schedule(static) if (chunks > 1)")                                                \
    for (int64_t c = 0; c < chunks; c++) {                                                                      \
        T *col = per_thread ? scratch + per_thread * (size_t)omp_get_thread_num() : NULL;                       \
        T *part = c == 0 ? dw : partials + (c - 1) * wsize;                                                     \
        for (int64_t n = c * g->n / chunks; n < (c + 1) * g->n / chunks; n++) {                                 \
            double beta = n == c * g->n / chunks ? 0.0 : 1.0;                                                   \
            for (int64_t gr = 0; gr < G; gr++) {                                                                \
                const T *xg = x + (n * g->c_in + gr * cin_g) * in_plane;                                        \
                const T *dyg = dy + (n * g->c_out + gr * cout_g) * P;                                           \
                if (!direct) im2col_##SUFFIX(g, cin_g, xg, col);                                                \
                mt_status s = mt_cpu_gemm(dtype, false, true, cout_g, K, P, 1.0, dyg, P, direct ? xg : col, P,  \
                                          beta, part + gr * cout_g * K, K);                                     \
                if (s != MT_OK) { _Pragma("omp atomic write") failed = 1; }                                     \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
    for (int64_t c = 1; c < chunks; c++) {                                                                      \
        const T *part = partials + (c - 1) * wsize;                                                             \
        for (int64_t k = 0; k < wsize; k++) dw[k] += part[k];                                                   \
    }                                                                                                           \
    if (scratch) mt_cpu_scratch_free(scratch, bytes);                                                           \
    return failed ? MT_ERR_UNSUPPORTED : MT_OK;                                                                 \
}

DEFINE_CONV(float, f32)
DEFINE_CONV(double, f64)

mt_status mt_cpu_conv2d_forward(mt_dtype dtype, const mt_conv2d_geometry *g, const void *x, const void *weight,
                                const void *bias, void *y)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (g->n * g->c_out * g->out_h * g->out_w == 0) return MT_OK;
    if (conv_is_depthwise(g)) {
        if (dtype == MT_F32) depthwise_forward_f32(g, x, weight, bias, y);
        else depthwise_forward_f64(g, x, weight, bias, y);
        return MT_OK;
    }
    return dtype == MT_F32 ? gemm_forward_f32(dtype, g, x, weight, bias, y)
                           : gemm_forward_f64(dtype, g, x, weight, bias, y);
}

mt_status mt_cpu_conv2d_backward_input(mt_dtype dtype, const mt_conv2d_geometry *g, const void *dy,
                                       const void *weight, void *dx)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (g->n * g->c_in * g->h * g->w == 0) return MT_OK;
    if (conv_is_depthwise(g)) {
        if (dtype == MT_F32) depthwise_backward_input_f32(g, dy, weight, dx);
        else depthwise_backward_input_f64(g, dy, weight, dx);
        return MT_OK;
    }
    return dtype == MT_F32 ? gemm_backward_input_f32(dtype, g, dy, weight, dx)
                           : gemm_backward_input_f64(dtype, g, dy, weight, dx);
}

mt_status mt_cpu_conv2d_backward_weight(mt_dtype dtype, const mt_conv2d_geometry *g, const void *x, const void *dy,
                                        void *dweight)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (conv_is_depthwise(g))
        return dtype == MT_F32 ? depthwise_backward_weight_f32(g, x, dy, dweight)
                               : depthwise_backward_weight_f64(g, x, dy, dweight);
    return dtype == MT_F32 ? gemm_backward_weight_f32(dtype, g, x, dy, dweight)
                           : gemm_backward_weight_f64(dtype, g, x, dy, dweight);
}
