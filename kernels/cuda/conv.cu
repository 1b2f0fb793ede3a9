/*
 * conv.cu - 2-d convolution on CUDA, the counterpart of kernels/cpu/conv.c,
 * over the same geometry (kernels/kernels.h). Two kinds of kernels:
 *
 * Implicit GEMM (every convolution but the depthwise ones). Per group, each
 * of the three products is a GEMM C[M, N] = sum_k A[m, k] B[k, n] whose
 * operands are read straight from the tensors, never materialized as im2col:
 *
 *   forward          m = (image, oh, ow)  n = co   k = (ci, i, j)       A = x (at ih, iw)  B = w
 *   backward_input   m = (image, ih, iw)  n = ci   k = (co, i, j)       A = dy (at oh, ow) B = w
 *   backward_weight  m = co               n = (ci, i, j)  k = (image, oh, ow)   A = dy  B = x
 *
 * where ih = oh s - p + i d. For backward_input an A element is nonzero only
 * where (ih + p - i d) is a multiple of the stride: oh = (ih + p - i d) / s.
 * A block of IG_THREADS threads computes a TILE_M x TILE_N tile of C,
 * staging TILE_K-deep slices of A and B in shared memory; thread t owns the
 * 4 x 4 outputs (t % 16 + 16 a, t / 16 + 16 b), so that neighbouring
 * threads write neighbouring pixels. Grid: x = tiles of M, y = tiles of N,
 * z = group x split.
 *
 * The weight gradient sums over every pixel of every image (K = N oH oW, up
 * to 10^5 and more), so K is cut into `splits` slices whose partial tiles go
 * to scratch memory, then added in slice order by conv_sum_splits: no
 * atomics, and the slicing is a function of the shapes, so the bits are the
 * same on every run.
 *
 * Depthwise (groups == c_in, output channel co reading input channel
 * co / mult): direct kernels, one thread per output element (forward), per
 * input element (backward_input: it gathers from the outputs that read it,
 * so nothing is accumulated by two threads), and per (weight element, slice
 * of pixels) for the weight gradient, summed by conv_sum_splits.
 *
 * Every sum runs in T (float for f32), in an order fixed by the shapes; the
 * CPU's BLAS sums in another order, so f32 results agree to rounding, not bits.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16
#define IG_THREADS 256          /* 16 x 16 threads, 4 x 4 outputs each */
#define DW_THREADS 256
#define DW_MAX_BLOCKS 8192
#define SPLIT_MIN_K 4096        /* the weight gradient's K per slice, at least */
#define MAX_SPLITS 64

enum { IG_FORWARD = 0, IG_BACKWARD_INPUT = 1, IG_BACKWARD_WEIGHT = 2 };

/* A problem for the implicit-GEMM kernel: the geometry, which product, and
   the GEMM's sizes per group. */
typedef struct ig_problem {
    mt_conv2d_geometry g;
    int mode;
    int64_t M, N, K;
    int64_t k_per_split;        /* the slice of K each z-split sums */
} ig_problem;

static int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

#define DEFINE_CONV_KERNELS(T, SUFFIX)                                                                        \
/* A[m, k] of group gr, zero outside the input. */                                                         \
static __device__ __forceinline__ T ig_load_a_##SUFFIX(const ig_problem *p, int64_t gr, int64_t m, int64_t k, \
                                                       const T *a)                                          \
{                                                                                                           \
    const mt_conv2d_geometry *g = &p->g;                                                                    \
    int64_t taps = g->kh * g->kw;                                                                           \
    if (p->mode == IG_FORWARD) {                                                                            \
        int64_t plane = g->out_h * g->out_w, img = m / plane, pix = m - img * plane;                        \
        int64_t oh = pix / g->out_w, ow = pix - oh * g->out_w;                                              \
        int64_t ci = k / taps, r = k - ci * taps, i = r / g->kw, j = r - i * g->kw;                         \
        int64_t ih = oh * g->stride_h - g->pad_h + i * g->dilation_h;                                       \
        int64_t iw = ow * g->stride_w - g->pad_w + j * g->dilation_w;                                       \
        if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) return (T)0;                                      \
        return a[((img * g->c_in + gr * (g->c_in / g->groups) + ci) * g->h + ih) * g->w + iw];              \
    }                                                                                                       \
    int64_t cout_g = g->c_out / g->groups;                                                                  \
    if (p->mode == IG_BACKWARD_INPUT) {                                                                     \
        int64_t plane = g->h * g->w, img = m / plane, pix = m - img * plane;                                \
        int64_t ih = pix / g->w, iw = pix - ih * g->w;                                                      \
        int64_t co = k / taps, r = k - co * taps, i = r / g->kw, j = r - i * g->kw;                         \
        int64_t th = ih + g->pad_h - i * g->dilation_h, tw = iw + g->pad_w - j * g->dilation_w;             \
        if (th < 0 || tw < 0 || th % g->stride_h || tw % g->stride_w) return (T)0;                          \
        int64_t oh = th / g->stride_h, ow = tw / g->stride_w;                                               \
        if (oh >= g->out_h || ow >= g->out_w) return (T)0;                                                  \
        return a[((img * g->c_out + gr * cout_g + co) * g->out_h + oh) * g->out_w + ow];                    \
    }                                                                                                       \
    /* IG_BACKWARD_WEIGHT: A = dy [co, (image, oh, ow)] */                                                  \
    int64_t plane = g->out_h * g->out_w, img = k / plane, pix = k - img * plane;                            \
    return a[(img * g->c_out + gr * cout_g + m) * plane + pix];                                             \
}                                                                                                           \
                                                                                                            \
/* B[k, n] of group gr. */                                                                                  \
static __device__ __forceinline__ T ig_load_b_##SUFFIX(const ig_problem *p, int64_t gr, int64_t k, int64_t n, \
                                                       const T *b)                                          \
{                                                                                                           \
    const mt_conv2d_geometry *g = &p->g;                                                                    \
    int64_t taps = g->kh * g->kw, cin_g = g->c_in / g->groups, cout_g = g->c_out / g->groups;               \
    if (p->mode == IG_FORWARD) return b[(gr * cout_g + n) * p->K + k];   /* w [co, (ci, i, j)] */           \
    if (p->mode == IG_BACKWARD_INPUT) {                                  /* w [co, ci, (i, j)] */           \
        int64_t co = k / taps, r = k - co * taps;                                                           \
        return b[((gr * cout_g + co) * cin_g + n) * taps + r];                                              \
    }                                                                                                       \
    /* IG_BACKWARD_WEIGHT: B = x at (image, oh, ow) for tap (ci, i, j) */                                  \
    int64_t plane = g->out_h * g->out_w, img = k / plane, pix = k - img * plane;                            \
    int64_t oh = pix / g->out_w, ow = pix - oh * g->out_w;                                                  \
    int64_t ci = n / taps, r = n - ci * taps, i = r / g->kw, j = r - i * g->kw;                             \
    int64_t ih = oh * g->stride_h - g->pad_h + i * g->dilation_h;                                           \
    int64_t iw = ow * g->stride_w - g->pad_w + j * g->dilation_w;                                           \
    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) return (T)0;                                          \
    return b[((img * g->c_in + gr * cin_g + ci) * g->h + ih) * g->w + iw];                                  \
}                                                                                                           \
                                                                                                            \
/* C[m, n] of group gr and split s into out (y, dx, or a slice of the weight gradient's partials). */      \
static __device__ __forceinline__ void ig_store_##SUFFIX(const ig_problem *p, int64_t gr, int64_t s,         \
                                                         int64_t m, int64_t n, T v, const T *bias, T *out)  \
{                                                                                                           \
    const mt_conv2d_geometry *g = &p->g;                                                                    \
    int64_t cin_g = g->c_in / g->groups, cout_g = g->c_out / g->groups;                                     \
    if (p->mode == IG_FORWARD) {                                                                            \
        int64_t plane = g->out_h * g->out_w, img = m / plane, pix = m - img * plane, co = gr * cout_g + n;  \
        out[(img * g->c_out + co) * plane + pix] = bias ? v + bias[co] : v;                                 \
    } else if (p->mode == IG_BACKWARD_INPUT) {                                                              \
        int64_t plane = g->h * g->w, img = m / plane, pix = m - img * plane;                                \
        out[(img * g->c_in + gr * cin_g + n) * plane + pix] = v;                                            \
    } else {                                                                                                \
        out[s * g->c_out * p->N + (gr * cout_g + m) * p->N + n] = v;                                        \
    }                                                                                                       \
}                                                                                                           \
                                                                                                            \
static __global__ void __launch_bounds__(IG_THREADS)                                                        \
conv_igemm_##SUFFIX(ig_problem p, const T *a, const T *b, const T *bias, T *out)                            \
{                                                                                                           \
    __shared__ T as[TILE_K][TILE_M];                                                                        \
    __shared__ T bs[TILE_K][TILE_N];                                                                        \
    int64_t splits = ceil_div64_dev(p.K, p.k_per_split);                                                   \
    int64_t gr = blockIdx.z / splits, s = blockIdx.z - gr * splits;                                         \
    int64_t m0 = (int64_t)blockIdx.x * TILE_M, n0 = (int64_t)blockIdx.y * TILE_N;                           \
    int64_t k_begin = s * p.k_per_split, k_end = k_begin + p.k_per_split < p.K ? k_begin + p.k_per_split : p.K; \
    int t = threadIdx.x, tm = t % 16, tn = t / 16;                                                          \
    T acc[4][4];                                                                                            \
    for (int u = 0; u < 4; u++)                                                                             \
        for (int v = 0; v < 4; v++) acc[u][v] = (T)0;                                                       \
    for (int64_t k0 = k_begin; k0 < k_end; k0 += TILE_K) {                                                  \
        for (int r = 0; r < (TILE_K * TILE_M) / IG_THREADS; r++) {   /* m fastest across threads */         \
            int e = t + r * IG_THREADS, ml = e % TILE_M, kl = e / TILE_M;                                   \
            int64_t m = m0 + ml, k = k0 + kl;                                                               \
            as[kl][ml] = m < p.M && k < k_end ? ig_load_a_##SUFFIX(&p, gr, m, k, a) : (T)0;                 \
        }                                                                                                   \
        for (int r = 0; r < (TILE_K * TILE_N) / IG_THREADS; r++) {   /* k fastest across threads */         \
            int e = t + r * IG_THREADS, kl = e % TILE_K, nl = e / TILE_K;                                   \
            int64_t n = n0 + nl, k = k0 + kl;                                                               \
            bs[kl][nl] = n < p.N && k < k_end ? ig_load_b_##SUFFIX(&p, gr, k, n, b) : (T)0;                 \
        }                                                                                                   \
        __syncthreads();                                                                                    \
        for (int kk = 0; kk < TILE_K; kk++) {                                                               \
            T av[4], bv[4];                                                                                 \
            for (int u = 0; u < 4; u++) av[u] = as[kk][tm + 16 * u];                                        \
            for (int v = 0; v < 4; v++) bv[v] = bs[kk][tn + 16 * v];                                        \
            for (int u = 0; u < 4; u++)                                                                     \
                for (int v = 0; v < 4; v++) acc[u][v] += av[u] * bv[v];                                     \
        }                                                                                                   \
        __syncthreads();                                                                                    \
    }                                                                                                       \
    for (int u = 0; u < 4; u++)                                                                             \
        for (int v = 0; v < 4; v++) {                                                                       \
            int64_t m = m0 + tm + 16 * u, n = n0 + tn + 16 * v;                                             \
            if (m < p.M && n < p.N) ig_store_##SUFFIX(&p, gr, s, m, n, acc[u][v], bias, out);              \
        }                                                                                                   \
}                                                                                                           \
                                                                                                            \
/* out[e] = sum_s parts[s][e], s in order. */                                                               \
static __global__ void conv_sum_splits_##SUFFIX(int64_t n, int64_t splits, const T *parts, T *out)          \
{                                                                                                           \
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) { \
        T v = (T)0;                                                                                         \
        for (int64_t s = 0; s < splits; s++) v += parts[s * n + e];                                         \
        out[e] = v;                                                                                         \
    }                                                                                                       \
}                                                                                                           \
                                                                                                            \
/* ---- depthwise ---- */                                                                                   \
static __global__ void dw_forward_##SUFFIX(mt_conv2d_geometry g, const T *x, const T *w, const T *bias, T *y) \
{                                                                                                           \
    int64_t total = g.n * g.c_out * g.out_h * g.out_w, mult = g.c_out / g.c_in;                             \
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;                             \
         e += (int64_t)gridDim.x * blockDim.x) {                                                            \
        int64_t ow = e % g.out_w, oh = (e / g.out_w) % g.out_h, pl = e / (g.out_w * g.out_h);               \
        int64_t co = pl % g.c_out, img = pl / g.c_out;                                                      \
        const T *xp = x + (img * g.c_in + co / mult) * g.h * g.w, *wp = w + co * g.kh * g.kw;               \
        T s = bias ? bias[co] : (T)0;                                                                       \
        for (int64_t i = 0; i < g.kh; i++) {                                                                \
            int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;                                      \
            if (ih < 0 || ih >= g.h) continue;                                                              \
            for (int64_t j = 0; j < g.kw; j++) {                                                            \
                int64_t iw = ow * g.stride_w - g.pad_w + j * g.dilation_w;                                  \
                if (iw >= 0 && iw < g.w) s += wp[i * g.kw + j] * xp[ih * g.w + iw];                         \
            }                                                                                               \
        }                                                                                                   \
        y[e] = s;                                                                                           \
    }                                                                                                       \
}                                                                                                           \
                                                                                                            \
/* dx[img, ci, ih, iw] = sum over the mult output channels and taps whose output pixel reads (ih, iw). */   \
static __global__ void dw_backward_input_##SUFFIX(mt_conv2d_geometry g, const T *dy, const T *w, T *dx)    \
{                                                                                                           \
    int64_t total = g.n * g.c_in * g.h * g.w, mult = g.c_out / g.c_in;                                      \
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;                             \
         e += (int64_t)gridDim.x * blockDim.x) {                                                            \
        int64_t iw = e % g.w, ih = (e / g.w) % g.h, pl = e / (g.w * g.h);                                   \
        int64_t ci = pl % g.c_in, img = pl / g.c_in;                                                        \
        T s = (T)0;                                                                                         \
        for (int64_t k = 0; k < mult; k++) {                                                                \
            int64_t co = ci * mult + k;                                                                     \
            const T *dyp = dy + (img * g.c_out + co) * g.out_h * g.out_w, *wp = w + co * g.kh * g.kw;       \
            for (int64_t i = 0; i < g.kh; i++) {                                                            \
                int64_t th = ih + g.pad_h - i * g.dilation_h;                                               \
                if (th < 0 || th % g.stride_h || th / g.stride_h >= g.out_h) continue;                      \
                for (int64_t j = 0; j < g.kw; j++) {                                                        \
                    int64_t tw = iw + g.pad_w - j * g.dilation_w;                                           \
                    if (tw < 0 || tw % g.stride_w || tw / g.stride_w >= g.out_w) continue;                  \
                    s += wp[i * g.kw + j] * dyp[(th / g.stride_h) * g.out_w + tw / g.stride_w];             \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
        dx[e] = s;                                                                                          \
    }                                                                                                       \
}                                                                                                           \
                                                                                                            \
/* parts[s][co, i, j] = the sum over pixel slice s of (image, oh, ow) of dy x, one thread per entry. */    \
static __global__ void dw_backward_weight_##SUFFIX(mt_conv2d_geometry g, int64_t per_split, int64_t splits, \
                                                   const T *x, const T *dy, T *parts)                       \
{                                                                                                           \
    int64_t taps = g.kh * g.kw, wsize = g.c_out * taps, total = wsize * splits, mult = g.c_out / g.c_in;    \
    int64_t plane = g.out_h * g.out_w, pixels = g.n * plane;                                                \
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;                             \
         e += (int64_t)gridDim.x * blockDim.x) {                                                            \
        int64_t s = e / wsize, we = e - s * wsize, co = we / taps, r = we - co * taps;                      \
        int64_t i = r / g.kw, j = r - i * g.kw;                                                             \
        int64_t q_end = (s + 1) * per_split < pixels ? (s + 1) * per_split : pixels;                        \
        T acc = (T)0;                                                                                       \
        for (int64_t q = s * per_split; q < q_end; q++) {                                                   \
            int64_t img = q / plane, pix = q - img * plane, oh = pix / g.out_w, ow = pix - oh * g.out_w;     \
            int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;                                      \
            int64_t iw = ow * g.stride_w - g.pad_w + j * g.dilation_w;                                      \
            if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;                                       \
            acc += dy[(img * g.c_out + co) * plane + pix] * x[((img * g.c_in + co / mult) * g.h + ih) * g.w + iw]; \
        }                                                                                                   \
        parts[e] = acc;                                                                                     \
    }                                                                                                       \
}

static __device__ __forceinline__ int64_t ceil_div64_dev(int64_t a, int64_t b) { return (a + b - 1) / b; }

DEFINE_CONV_KERNELS(float, f32)
DEFINE_CONV_KERNELS(double, f64)

/* ---------------------------------------------------------------- host side */

static bool conv_is_depthwise(const mt_conv2d_geometry *g)
{
    return g->groups == g->c_in && g->groups > 1 && g->c_out % g->c_in == 0;
}

/* Runs the implicit GEMM of mode over every group (and split). */
static mt_status ig_run(mt_dtype dtype, const mt_conv2d_geometry *g, int mode, const void *a, const void *b,
                        const void *bias, void *out, int64_t k_per_split)
{
    ig_problem p;
    p.g = *g;
    p.mode = mode;
    int64_t cin_g = g->c_in / g->groups, cout_g = g->c_out / g->groups, taps = g->kh * g->kw;
    if (mode == IG_FORWARD) { p.M = g->n * g->out_h * g->out_w; p.N = cout_g; p.K = cin_g * taps; }
    else if (mode == IG_BACKWARD_INPUT) { p.M = g->n * g->h * g->w; p.N = cin_g; p.K = cout_g * taps; }
    else { p.M = cout_g; p.N = cin_g * taps; p.K = g->n * g->out_h * g->out_w; }
    p.k_per_split = k_per_split > 0 ? k_per_split : (p.K > 0 ? p.K : 1);
    int64_t splits = ceil_div64(p.K, p.k_per_split);
    if (p.M <= 0 || p.N <= 0) return MT_OK;
    int64_t gx = ceil_div64(p.M, TILE_M), gy = ceil_div64(p.N, TILE_N), gz = g->groups * (splits > 0 ? splits : 1);
    if (gx > 2147483647 || gy > 65535 || gz > 65535) return MT_ERR_ARGUMENT;   /* a grid too large */
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32)
        MT_LAUNCH(conv_igemm_f32, grid, IG_THREADS, 0, stream, p, (const float *)a, (const float *)b,
                  (const float *)bias, (float *)out);
    else
        MT_LAUNCH(conv_igemm_f64, grid, IG_THREADS, 0, stream, p, (const double *)a, (const double *)b,
                  (const double *)bias, (double *)out);
    return mt_cuda_launch_status("cuda conv2d implicit-GEMM kernel");
}

/* dw = the ordered sum of the splits partial weight gradients in parts. */
static mt_status sum_splits(mt_dtype dtype, int64_t wsize, int64_t splits, const void *parts, void *dw)
{
    unsigned grid = mt_cuda_grid_1d(wsize, DW_THREADS, DW_MAX_BLOCKS);
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32)
        MT_LAUNCH(conv_sum_splits_f32, grid, DW_THREADS, 0, stream, wsize, splits, (const float *)parts, (float *)dw);
    else
        MT_LAUNCH(conv_sum_splits_f64, grid, DW_THREADS, 0, stream, wsize, splits, (const double *)parts,
                  (double *)dw);
    return mt_cuda_launch_status("cuda conv2d split-sum kernel");
}

/* The slices of the weight gradient's sum over `pixels` (image, oh, ow) positions. */
static int64_t weight_splits(int64_t pixels)
{
    int64_t splits = pixels / SPLIT_MIN_K;
    return splits < 1 ? 1 : splits > MAX_SPLITS ? MAX_SPLITS : splits;
}

extern "C" mt_status MT_CUDA_FN(conv2d_forward)(mt_dtype dtype, const mt_conv2d_geometry *g, const void *x,
                                                const void *weight, const void *bias, void *y)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    int64_t total = g->n * g->c_out * g->out_h * g->out_w;
    if (total == 0) return MT_OK;
    if (!conv_is_depthwise(g)) return ig_run(dtype, g, IG_FORWARD, x, weight, bias, y, 0);
    unsigned grid = mt_cuda_grid_1d(total, DW_THREADS, DW_MAX_BLOCKS);
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32)
        MT_LAUNCH(dw_forward_f32, grid, DW_THREADS, 0, stream, *g, (const float *)x, (const float *)weight,
                  (const float *)bias, (float *)y);
    else
        MT_LAUNCH(dw_forward_f64, grid, DW_THREADS, 0, stream, *g, (const double *)x, (const double *)weight,
                  (const double *)bias, (double *)y);
    return mt_cuda_launch_status("cuda depthwise conv2d kernel");
}

extern "C" mt_status MT_CUDA_FN(conv2d_backward_input)(mt_dtype dtype, const mt_conv2d_geometry *g, const void *dy,
                                                       const void *weight, void *dx)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    int64_t total = g->n * g->c_in * g->h * g->w;
    if (total == 0) return MT_OK;
    if (!conv_is_depthwise(g)) return ig_run(dtype, g, IG_BACKWARD_INPUT, dy, weight, NULL, dx, 0);
    unsigned grid = mt_cuda_grid_1d(total, DW_THREADS, DW_MAX_BLOCKS);
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32)
        MT_LAUNCH(dw_backward_input_f32, grid, DW_THREADS, 0, stream, *g, (const float *)dy, (const float *)weight,
                  (float *)dx);
    else
        MT_LAUNCH(dw_backward_input_f64, grid, DW_THREADS, 0, stream, *g, (const double *)dy,
                  (const double *)weight, (double *)dx);
    return mt_cuda_launch_status("cuda depthwise conv2d backward-input kernel");
}

extern "C" mt_status MT_CUDA_FN(conv2d_backward_weight)(mt_dtype dtype, const mt_conv2d_geometry *g, const void *x,
                                                        const void *dy, void *dweight)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    size_t es = dtype == MT_F32 ? sizeof(float) : sizeof(double);
    int64_t wsize = g->c_out * (g->c_in / g->groups) * g->kh * g->kw, pixels = g->n * g->out_h * g->out_w;
    if (wsize == 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    if (pixels == 0) {
        cudaError_t e = cudaMemsetAsync(dweight, 0, (size_t)wsize * es, stream);
        return e == cudaSuccess ? MT_OK : mt_cuda_fail("cuda conv2d backward-weight (clear)", e);
    }
    int64_t splits = weight_splits(pixels), per_split = ceil_div64(pixels, splits);
    splits = ceil_div64(pixels, per_split);
    void *parts = dweight;
    size_t bytes = (size_t)(splits * wsize) * es;
    if (splits > 1 && !(parts = MT_CUDA_FN(scratch_alloc)(bytes))) return MT_ERR_MEMORY;
    mt_status st;
    if (conv_is_depthwise(g)) {
        int64_t total = wsize * splits;
        unsigned grid = mt_cuda_grid_1d(total, DW_THREADS, DW_MAX_BLOCKS);
        if (dtype == MT_F32)
            MT_LAUNCH(dw_backward_weight_f32, grid, DW_THREADS, 0, stream, *g, per_split, splits, (const float *)x,
                      (const float *)dy, (float *)parts);
        else
            MT_LAUNCH(dw_backward_weight_f64, grid, DW_THREADS, 0, stream, *g, per_split, splits, (const double *)x,
                      (const double *)dy, (double *)parts);
        st = mt_cuda_launch_status("cuda depthwise conv2d backward-weight kernel");
    } else {
        st = ig_run(dtype, g, IG_BACKWARD_WEIGHT, dy, x, NULL, parts, per_split);
    }
    if (st == MT_OK && splits > 1) st = sum_splits(dtype, wsize, splits, parts, dweight);
    if (splits > 1) MT_CUDA_FN(scratch_free)(parts, bytes);
    return st;
}
