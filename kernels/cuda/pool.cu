/*
 * pool.cu - pooling and resampling over contiguous planes [planes, H, W]
 * through separable window maps (kernels/kernels.h, mt_pool_map): the CUDA
 * counterpart of kernels/cpu/pool.c, which states the formulas.
 *
 * How threads map to work (1-d grids of POOL_THREADS-thread blocks,
 * grid-stride loops over 64-bit indices, at most POOL_MAX_BLOCKS blocks):
 *
 *   - pool_linear_<T>, pool_max_<T>: one thread per output element (p, i, j),
 *     numbered row-major, so consecutive threads write consecutive elements
 *     and read neighbouring windows of one plane. Each thread walks its
 *     window in the CPU's order (rows a, then columns b), so its sum is the
 *     CPU's up to the contraction of multiply-adds. The maps are small tables
 *     every thread of a row shares (cached).
 *   - pool_max_backward_atomic_<T>, the default: dx is cleared, then one
 *     thread per output element adds dy to dx[indices] with atomicAdd. Where
 *     windows overlap (stride < kernel) two outputs can pick the same input,
 *     and the order of those additions, and so the last bits of an f32/f64
 *     sum, vary from run to run.
 *   - pool_max_backward_ordered_<T>, with deterministic = true: one thread
 *     per input element, which walks the outputs whose window holds it (the
 *     transposed maps, in increasing output order) and adds dy where their
 *     index is its position: the CPU's sums, bit for bit, every run, and no
 *     clearing pass. Each thread reads about (kernel / stride)^2 indices.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define POOL_THREADS 256
#define POOL_MAX_BLOCKS 4096

static unsigned pool_grid(int64_t units) { return mt_cuda_grid_1d(units, POOL_THREADS, POOL_MAX_BLOCKS); }

#define POOL_TID ((int64_t)blockIdx.x * blockDim.x + threadIdx.x)
#define POOL_NTHREADS ((int64_t)gridDim.x * blockDim.x)

#define DEFINE_POOL_KERNELS(T, SUFFIX, ATOMIC_ADD)                                                    \
static __global__ void __launch_bounds__(POOL_THREADS)                                                \
pool_linear_##SUFFIX(int64_t planes, mt_pool_map h, mt_pool_map w, const T *x, T *y)                  \
{                                                                                                     \
    const T *hw = (const T *)h.weight, *ww = (const T *)w.weight;                                     \
    int64_t out_plane = h.n_dst * w.n_dst, total = planes * out_plane;                                \
    for (int64_t e = POOL_TID; e < total; e += POOL_NTHREADS) {                                       \
        int64_t p = e / out_plane, r = e - p * out_plane, i = r / w.n_dst, j = r - i * w.n_dst;       \
        const T *xp = x + p * h.n_src * w.n_src;                                                      \
        int64_t b0 = w.start[j], b1 = w.start[j + 1];                                                 \
        T acc = 0;                                                                                    \
        for (int64_t a = h.start[i]; a < h.start[i + 1]; a++) {                                       \
            const T *row = xp + h.index[a] * w.n_src;                                                 \
            T racc = 0;                                                                               \
            for (int64_t b = b0; b < b1; b++) racc += ww[b] * row[w.index[b]];                        \
            acc += hw[a] * racc;                                                                      \
        }                                                                                             \
        y[e] = acc;                                                                                   \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
static __global__ void __launch_bounds__(POOL_THREADS)                                                \
pool_max_##SUFFIX(int64_t planes, mt_pool_map h, mt_pool_map w, const T *x, T *y, int64_t *indices)   \
{                                                                                                     \
    int64_t out_plane = h.n_dst * w.n_dst, total = planes * out_plane;                                \
    for (int64_t e = POOL_TID; e < total; e += POOL_NTHREADS) {                                       \
        int64_t p = e / out_plane, r = e - p * out_plane, i = r / w.n_dst, j = r - i * w.n_dst;       \
        const T *xp = x + p * h.n_src * w.n_src;                                                      \
        int64_t b0 = w.start[j], b1 = w.start[j + 1];                                                 \
        T best = (T)-INFINITY;                                                                        \
        int64_t at = -1;                                                                              \
        for (int64_t a = h.start[i]; a < h.start[i + 1]; a++) {                                       \
            int64_t row = h.index[a] * w.n_src;                                                       \
            for (int64_t b = b0; b < b1; b++) {                                                       \
                int64_t k = row + w.index[b];                                                         \
                T v = xp[k];                                                                          \
                if (v > best || v != v || at < 0) { best = v; at = k; }                             \
            }                                                                                         \
        }                                                                                             \
        y[e] = best;                                                                                  \
        indices[e] = at;                                                                              \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* ht, wt are the transposed maps: n_src the output's sizes, n_dst the input's. */                     \
static __global__ void __launch_bounds__(POOL_THREADS)                                                \
pool_max_backward_atomic_##SUFFIX(int64_t planes, int64_t in_plane, int64_t out_plane, const T *dy,  \
                                  const int64_t *indices, T *dx)                                      \
{                                                                                                     \
    for (int64_t e = POOL_TID; e < planes * out_plane; e += POOL_NTHREADS) {                          \
        int64_t p = e / out_plane, k = indices[e];                                                    \
        if (k >= 0 && k < in_plane) ATOMIC_ADD(dx + p * in_plane + k, dy[e]);                         \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
static __global__ void __launch_bounds__(POOL_THREADS)                                                \
pool_max_backward_ordered_##SUFFIX(int64_t planes, mt_pool_map ht, mt_pool_map wt, const T *dy,      \
                                   const int64_t *indices, T *dx)                                     \
{                                                                                                     \
    int64_t in_plane = ht.n_dst * wt.n_dst, out_plane = ht.n_src * wt.n_src, total = planes * in_plane; \
    for (int64_t e = POOL_TID; e < total; e += POOL_NTHREADS) {                                       \
        int64_t p = e / in_plane, k = e - p * in_plane, r = k / wt.n_dst, c = k - r * wt.n_dst;       \
        const T *dyp = dy + p * out_plane;                                                            \
        const int64_t *ip = indices + p * out_plane;                                                  \
        int64_t b0 = wt.start[c], b1 = wt.start[c + 1];                                               \
        T acc = 0;                                                                                    \
        for (int64_t a = ht.start[r]; a < ht.start[r + 1]; a++) {                                     \
            int64_t orow = ht.index[a] * wt.n_src;                                                    \
            for (int64_t b = b0; b < b1; b++) {                                                       \
                int64_t o = orow + wt.index[b];                                                       \
                if (ip[o] == k) acc += dyp[o];                                                        \
            }                                                                                         \
        }                                                                                             \
        dx[e] = acc;                                                                                  \
    }                                                                                                 \
}

static __device__ __forceinline__ void pool_atomic_add_f32(float *p, float v) { atomicAdd(p, v); }
static __device__ __forceinline__ void pool_atomic_add_f64(double *p, double v) { atomicAdd(p, v); }

DEFINE_POOL_KERNELS(float, f32, pool_atomic_add_f32)
DEFINE_POOL_KERNELS(double, f64, pool_atomic_add_f64)

/* ---------------------------------------------------------------- host wrappers */
mt_status MT_CUDA_FN(pool_linear)(mt_dtype dtype, int64_t planes, const mt_pool_map *h, const mt_pool_map *w,
                                  const void *x, void *y)
{
    int64_t total = planes * h->n_dst * w->n_dst;
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (total <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32)
        MT_LAUNCH(pool_linear_f32, pool_grid(total), POOL_THREADS, 0, stream, planes, *h, *w, (const float *)x,
                  (float *)y);
    else
        MT_LAUNCH(pool_linear_f64, pool_grid(total), POOL_THREADS, 0, stream, planes, *h, *w, (const double *)x,
                  (double *)y);
    return mt_cuda_launch_status("cuda pool_linear kernel");
}

mt_status MT_CUDA_FN(pool_max)(mt_dtype dtype, int64_t planes, const mt_pool_map *h, const mt_pool_map *w,
                               const void *x, void *y, int64_t *indices)
{
    int64_t total = planes * h->n_dst * w->n_dst;
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (total <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32)
        MT_LAUNCH(pool_max_f32, pool_grid(total), POOL_THREADS, 0, stream, planes, *h, *w, (const float *)x,
                  (float *)y, indices);
    else
        MT_LAUNCH(pool_max_f64, pool_grid(total), POOL_THREADS, 0, stream, planes, *h, *w, (const double *)x,
                  (double *)y, indices);
    return mt_cuda_launch_status("cuda pool_max kernel");
}

mt_status MT_CUDA_FN(pool_max_backward)(mt_dtype dtype, int64_t planes, const mt_pool_map *ht, const mt_pool_map *wt,
                                        const void *dy, const int64_t *indices, void *dx, bool deterministic)
{
    int64_t in_plane = ht->n_dst * wt->n_dst, out_plane = ht->n_src * wt->n_src;
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (planes * in_plane <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    if (deterministic) {
        unsigned grid = pool_grid(planes * in_plane);
        if (dtype == MT_F32)
            MT_LAUNCH(pool_max_backward_ordered_f32, grid, POOL_THREADS, 0, stream, planes, *ht, *wt,
                      (const float *)dy, indices, (float *)dx);
        else
            MT_LAUNCH(pool_max_backward_ordered_f64, grid, POOL_THREADS, 0, stream, planes, *ht, *wt,
                      (const double *)dy, indices, (double *)dx);
        return mt_cuda_launch_status("cuda pool_max_backward kernel (ordered)");
    }
    size_t bytes = (size_t)(planes * in_plane) * (dtype == MT_F32 ? sizeof(float) : sizeof(double));
    cudaError_t e = cudaMemsetAsync(dx, 0, bytes, stream);   /* all-zero bits are 0.0 */
    if (e != cudaSuccess) return mt_cuda_fail("cuda pool_max_backward: cudaMemsetAsync", e);
    if (planes * out_plane <= 0) return MT_OK;
    unsigned grid = pool_grid(planes * out_plane);
    if (dtype == MT_F32)
        MT_LAUNCH(pool_max_backward_atomic_f32, grid, POOL_THREADS, 0, stream, planes, in_plane, out_plane,
                  (const float *)dy, indices, (float *)dx);
    else
        MT_LAUNCH(pool_max_backward_atomic_f64, grid, POOL_THREADS, 0, stream, planes, in_plane, out_plane,
                  (const double *)dy, indices, (double *)dx);
    return mt_cuda_launch_status("cuda pool_max_backward kernel");
}
