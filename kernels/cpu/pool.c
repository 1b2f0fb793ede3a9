/*
 * pool.c - pooling and resampling over contiguous planes [planes, H, W]
 * through separable window maps (kernels/kernels.h, mt_pool_map): one map
 * h for the rows and one map w for the columns, each saying which source
 * positions (and with which weights) a destination position reads.
 *
 *   pool_linear        y[p, i, j] = sum_a h.weight[a] sum_b w.weight[b] x[p, h.index[a], w.index[b]]
 *                      (a over row i of h, b over row j of w): average pooling (weights
 *                      1 / count), adaptive average pooling, nearest and linear
 *                      interpolation. Its gradient is the same sum with the maps
 *                      transposed, so the engine calls this kernel for both.
 *   pool_max           y[p, i, j] = max over the same window, indices = where it is
 *                      (h.index[a] * w.n_src + w.index[b]), the first largest; a NaN wins
 *                      (x > max || isnan(x), PyTorch's rule: the last NaN).
 *   pool_max_backward  dx = 0, dx[p, indices[p, o]] += dy[p, o].
 *
 * Threads (OpenMP) take whole planes, so every output element is computed
 * by one thread in a fixed order and the results do not depend on the
 * thread count. The max-pool gradient scatters each plane serially, in
 * increasing output order: two outputs of one plane may pick the same input
 * (overlapping windows), and then the sum is the same on every run.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* Whole planes per thread, and per output row i: for each entry a of row i
   of h, the W pass of source row h.index[a] into tmp (sum_b w.weight[b]
   x[r, w.index[b]] for every column j), then y_row += h.weight[a] tmp, a
   loop the compiler vectorizes. Each element still sums in the order of
   the formula (rows a outside, columns b inside), as the CUDA kernel does.
   tmp: one row of w.n_dst per thread, scratch taken before the parallel
   region. */
#define DEFINE_POOL_LINEAR(T, SUFFIX)                                                                 \
static mt_status pool_linear_##SUFFIX(int64_t planes, const mt_pool_map *h, const mt_pool_map *w,     \
                                      const T *x, T *y)                                               \
{                                                                                                     \
    const int64_t *restrict h_start = h->start, *restrict h_index = h->index;                         \
    const int64_t *restrict w_start = w->start, *restrict w_index = w->index;                         \
    const T *restrict hw = h->weight, *restrict ww = w->weight;                                       \
    int64_t in_w = w->n_src, out_h = h->n_dst, out_w = w->n_dst;                                      \
    int64_t in_plane = h->n_src * in_w, out_plane = out_h * out_w;                                    \
    bool parallel = planes * out_plane > MT_CPU_PARALLEL_GRAIN;                                       \
    int threads = parallel ? omp_get_max_threads() : 1;                                               \
    size_t scratch_bytes = (size_t)threads * (size_t)out_w * sizeof(T);                               \
    T *scratch = mt_cpu_scratch_alloc(scratch_bytes);                                                 \
    if (!scratch) return MT_ERR_MEMORY;                                                               \
    _Pragma("omp parallel num_threads(threads) if (parallel)")                                        \
    {                                                                                                 \
        T *restrict tmp = scratch + (size_t)omp_get_thread_num() * (size_t)out_w;                     \
        _Pragma("omp for schedule(static)")                                                           \
        for (int64_t p = 0; p < planes; p++) {                                                        \
            const T *xp = x + p * in_plane;                                                           \
            for (int64_t i = 0; i < out_h; i++) {                                                     \
                T *restrict yrow = y + p * out_plane + i * out_w;                                     \
                for (int64_t j = 0; j < out_w; j++) yrow[j] = 0;                                      \
                for (int64_t a = h_start[i]; a < h_start[i + 1]; a++) {                               \
                    const T *restrict row = xp + h_index[a] * in_w;                                   \
                    for (int64_t j = 0; j < out_w; j++) {                                             \
                        T racc = 0;                                                                   \
                        for (int64_t b = w_start[j]; b < w_start[j + 1]; b++) racc += ww[b] * row[w_index[b]]; \
                        tmp[j] = racc;                                                                \
                    }                                                                                 \
                    T wa = hw[a];                                                                     \
                    for (int64_t j = 0; j < out_w; j++) yrow[j] += wa * tmp[j];                       \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    mt_cpu_scratch_free(scratch, scratch_bytes);                                                      \
    return MT_OK;                                                                                     \
}

/* The first element of the window starts the running max, so no sentinel
   is needed; then v replaces it when v > max or v is NaN (without a branch:
   which of the values wins is data, not a pattern to predict). */
#define DEFINE_POOL_MAX(T, SUFFIX)                                                                    \
static void pool_max_##SUFFIX(int64_t planes, const mt_pool_map *h, const mt_pool_map *w,             \
                              const T *x, T *y, int64_t *indices)                                     \
{                                                                                                     \
    const int64_t *restrict h_start = h->start, *restrict h_index = h->index;                         \
    const int64_t *restrict w_start = w->start, *restrict w_index = w->index;                         \
    int64_t in_w = w->n_src, out_h = h->n_dst, out_w = w->n_dst;                                      \
    int64_t in_plane = h->n_src * in_w, out_plane = out_h * out_w;                                    \
    _Pragma("omp parallel for if (planes * out_plane > MT_CPU_PARALLEL_GRAIN)")                       \
    for (int64_t p = 0; p < planes; p++) {                                                            \
        const T *restrict xp = x + p * in_plane;                                                      \
        T *restrict yp = y + p * out_plane;                                                           \
        int64_t *restrict ip = indices + p * out_plane;                                               \
        for (int64_t i = 0; i < out_h; i++) {                                                         \
            int64_t a0 = h_start[i], a1 = h_start[i + 1];                                             \
            for (int64_t j = 0; j < out_w; j++) {                                                     \
                int64_t b0 = w_start[j], b1 = w_start[j + 1];                                         \
                int64_t at = h_index[a0] * in_w + w_index[b0];                                        \
                T best = xp[at];                                                                      \
                for (int64_t a = a0; a < a1; a++) {                                                   \
                    int64_t row = h_index[a] * in_w;                                                  \
                    for (int64_t b = b0; b < b1; b++) {                                               \
                        int64_t k = row + w_index[b];                                                 \
                        T v = xp[k];                                                                  \
                        bool take = v > best || v != v;                                               \
                        best = take ? v : best;                                                       \
                        at = take ? k : at;                                                           \
                    }                                                                                 \
                }                                                                                     \
                yp[i * out_w + j] = best;                                                             \
                ip[i * out_w + j] = at;                                                               \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
}

/* ht, wt are the transposed maps: their n_src is the output's size, n_dst the input's. */
#define DEFINE_POOL_MAX_BACKWARD(T, SUFFIX)                                                           \
static void pool_max_backward_##SUFFIX(int64_t planes, const mt_pool_map *ht, const mt_pool_map *wt,  \
                                       const T *dy, const int64_t *indices, T *dx)                    \
{                                                                                                     \
    int64_t in_plane = ht->n_dst * wt->n_dst, out_plane = ht->n_src * wt->n_src;                      \
    _Pragma("omp parallel for if (planes * (in_plane + out_plane) > MT_CPU_PARALLEL_GRAIN)")          \
    for (int64_t p = 0; p < planes; p++) {                                                            \
        T *dxp = dx + p * in_plane;                                                                   \
        memset(dxp, 0, sizeof(T) * (size_t)in_plane);                                                 \
        for (int64_t o = 0; o < out_plane; o++) {                                                     \
            int64_t k = indices[p * out_plane + o];                                                   \
            if (k >= 0 && k < in_plane) dxp[k] += dy[p * out_plane + o];                              \
        }                                                                                             \
    }                                                                                                 \
}

DEFINE_POOL_LINEAR(float, f32)
DEFINE_POOL_LINEAR(double, f64)
DEFINE_POOL_MAX(float, f32)
DEFINE_POOL_MAX(double, f64)
DEFINE_POOL_MAX_BACKWARD(float, f32)
DEFINE_POOL_MAX_BACKWARD(double, f64)

mt_status mt_cpu_pool_linear(mt_dtype dtype, int64_t planes, const mt_pool_map *h, const mt_pool_map *w,
                             const void *x, void *y)
{
    if (planes <= 0 || h->n_dst <= 0 || w->n_dst <= 0) return dtype == MT_F32 || dtype == MT_F64 ? MT_OK : MT_ERR_UNSUPPORTED;
    if (dtype == MT_F32) return pool_linear_f32(planes, h, w, x, y);
    if (dtype == MT_F64) return pool_linear_f64(planes, h, w, x, y);
    return MT_ERR_UNSUPPORTED;
}

mt_status mt_cpu_pool_max(mt_dtype dtype, int64_t planes, const mt_pool_map *h, const mt_pool_map *w, const void *x,
                          void *y, int64_t *indices)
{
    if (dtype == MT_F32) pool_max_f32(planes, h, w, x, y, indices);
    else if (dtype == MT_F64) pool_max_f64(planes, h, w, x, y, indices);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}

mt_status mt_cpu_pool_max_backward(mt_dtype dtype, int64_t planes, const mt_pool_map *ht, const mt_pool_map *wt,
                                   const void *dy, const int64_t *indices, void *dx, bool deterministic)
{
    (void)deterministic;   /* always: one thread per plane, outputs in order */
    if (dtype == MT_F32) pool_max_backward_f32(planes, ht, wt, dy, indices, dx);
    else if (dtype == MT_F64) pool_max_backward_f64(planes, ht, wt, dy, indices, dx);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}
