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
#include <string.h>

/* Whole planes per thread; parallel only when there is enough work. */
#define DEFINE_POOL_LINEAR(T, SUFFIX)                                                                 \
static void pool_linear_##SUFFIX(int64_t planes, const mt_pool_map *h, const mt_pool_map *w,          \
                                 const T *x, T *y)                                                    \
{                                                                                                     \
    const T *hw = h->weight, *ww = w->weight;                                                         \
    int64_t in_plane = h->n_src * w->n_src, out_plane = h->n_dst * w->n_dst;                          \
    _Pragma("omp parallel for if (planes * out_plane > MT_CPU_PARALLEL_GRAIN)")                       \
    for (int64_t p = 0; p < planes; p++) {                                                            \
        const T *xp = x + p * in_plane;                                                               \
        T *yp = y + p * out_plane;                                                                    \
        for (int64_t i = 0; i < h->n_dst; i++)                                                        \
            for (int64_t j = 0; j < w->n_dst; j++) {                                                  \
                T acc = 0;                                                                            \
                for (int64_t a = h->start[i]; a < h->start[i + 1]; a++) {                             \
                    const T *row = xp + h->index[a] * w->n_src;                                       \
                    T racc = 0;                                                                       \
                    for (int64_t b = w->start[j]; b < w->start[j + 1]; b++) racc += ww[b] * row[w->index[b]]; \
                    acc += hw[a] * racc;                                                              \
                }                                                                                     \
                yp[i * w->n_dst + j] = acc;                                                           \
            }                                                                                         \
    }                                                                                                 \
}

#define DEFINE_POOL_MAX(T, SUFFIX)                                                                    \
static void pool_max_##SUFFIX(int64_t planes, const mt_pool_map *h, const mt_pool_map *w,             \
                              const T *x, T *y, int64_t *indices)                                     \
{                                                                                                     \
    int64_t in_plane = h->n_src * w->n_src, out_plane = h->n_dst * w->n_dst;                          \
    _Pragma("omp parallel for if (planes * out_plane > MT_CPU_PARALLEL_GRAIN)")                       \
    for (int64_t p = 0; p < planes; p++) {                                                            \
        const T *xp = x + p * in_plane;                                                               \
        for (int64_t i = 0; i < h->n_dst; i++)                                                        \
            for (int64_t j = 0; j < w->n_dst; j++) {                                                  \
                T best = (T)-INFINITY;                                                                \
                int64_t at = -1;                                                                      \
                for (int64_t a = h->start[i]; a < h->start[i + 1]; a++)                               \
                    for (int64_t b = w->start[j]; b < w->start[j + 1]; b++) {                         \
                        int64_t k = h->index[a] * w->n_src + w->index[b];                             \
                        T v = xp[k];                                                                  \
                        if (v > best || isnan(v) || at < 0) { best = v; at = k; }                     \
                    }                                                                                 \
                y[p * out_plane + i * w->n_dst + j] = best;                                           \
                indices[p * out_plane + i * w->n_dst + j] = at;                                       \
            }                                                                                         \
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
    if (dtype == MT_F32) pool_linear_f32(planes, h, w, x, y);
    else if (dtype == MT_F64) pool_linear_f64(planes, h, w, x, y);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
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
