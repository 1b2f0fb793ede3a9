/*
 * index.cu - gather and scatter-add along one dim, the CUDA counterpart of
 * kernels/cpu/index.c (which states the loop conventions):
 *
 *   gather       out[p] = x[p + index[p] * x_dim_stride]        operands 0 = out, 1 = index, 2 = x
 *   scatter_add  out[p + index[p] * out_dim_stride] += src[p]   operands 0 = out, 1 = index, 2 = src
 *
 * How threads map to work (1-d grids of IX_THREADS-thread blocks, grid-stride
 * loops over 64-bit indices, at most IX_MAX_BLOCKS blocks):
 *
 *   - gather_<size>: one thread per position p, in the loop's row-major
 *     order (the last dim fastest, so consecutive threads write consecutive
 *     elements of a contiguous out). Bits are moved, so one kernel per
 *     element size serves every dtype.
 *   - scatter_add_atomic_<T>, the default: one thread per position, the
 *     positions numbered with the columns fastest (c + columns * j), so a warp
 *     adds to neighbouring elements of one row; atomicAdd on out. Floating-
 *     point atomics make the order of the additions, and so the rounding of
 *     f32/f64 sums with repeated indices, vary from run to run.
 *   - scatter_add_ordered_<T>, with deterministic = true: one thread per
 *     column (every coordinate but the last, the scattered dim), walking
 *     j = 0, 1, ... in order; no two threads write the same element. The
 *     sums are those of the CPU kernel, bit for bit, in every run; but the
 *     parallelism is the number of columns only (an embedding gradient of
 *     dim D runs D threads, each over every token), so it is slower when
 *     there are few columns and many positions.
 *
 * Coordinates: a thread splits its linear index into the loop's coordinates
 * with 64-bit divisions (unrolled over MT_MAX_DIMS, every struct access at a
 * constant index, so the loop stays in the kernel's parameter space).
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define IX_THREADS 256
#define IX_MAX_BLOCKS 4096

#if MT_CUDA_EMULATED
#define IX_UNROLL
#else
#define IX_UNROLL _Pragma("unroll")
#endif

static unsigned ix_grid(int64_t units) { return mt_cuda_grid_1d(units, IX_THREADS, IX_MAX_BLOCKS); }

/* off[k] = sum over d < ndim of coord_d(r) * stride[k][d], k < 3, where
   coord(r) is the row-major multi-index of r over the first ndim dims. */
static __device__ __forceinline__ void ix_offsets(const mt_loop *l, int ndim, int64_t r, int64_t *off)
{
    off[0] = off[1] = off[2] = 0;
    IX_UNROLL
    for (int d = MT_MAX_DIMS - 1; d >= 0; d--) {
        if (d >= ndim) continue;
        int64_t size = l->shape[d], q = r / size, c = r - q * size;
        r = q;
        off[0] += c * l->stride[0][d];
        off[1] += c * l->stride[1][d];
        off[2] += c * l->stride[2][d];
    }
}

#define IX_TID ((int64_t)blockIdx.x * blockDim.x + threadIdx.x)
#define IX_NTHREADS ((int64_t)gridDim.x * blockDim.x)

/* ================================================================ gather */
#define DEFINE_GATHER_KERNEL(T, SUFFIX)                                                                   \
static __global__ void __launch_bounds__(IX_THREADS)                                                      \
gather_##SUFFIX(mt_loop loop, int64_t total, T *out, const int64_t *index, const T *x, int64_t x_dim_stride, \
                int64_t dim_size)                                                                         \
{                                                                                                         \
    for (int64_t e = IX_TID; e < total; e += IX_NTHREADS) {                                               \
        int64_t off[3];                                                                                   \
        ix_offsets(&loop, loop.ndim, e, off);                                                             \
        int64_t k = index[off[1]];                                                                        \
        out[off[0]] = (k >= 0 && k < dim_size) ? x[off[2] + k * x_dim_stride] : (T)0;                     \
    }                                                                                                     \
}

DEFINE_GATHER_KERNEL(uint8_t, b1)
DEFINE_GATHER_KERNEL(uint32_t, b4)
DEFINE_GATHER_KERNEL(unsigned long long, b8)

mt_status MT_CUDA_FN(gather)(mt_dtype dtype, const mt_loop *loop, void *out, const int64_t *index, const void *x,
                             int64_t x_dim_stride, int64_t dim_size)
{
    int64_t total = 1;
    for (int d = 0; d < loop->ndim; d++) total *= loop->shape[d];
    if (loop->ndim < 1 || total <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    unsigned grid = ix_grid(total);
    switch (mt_dtype_size(dtype)) {
    case 1:
        MT_LAUNCH(gather_b1, grid, IX_THREADS, 0, stream, *loop, total, (uint8_t *)out, index, (const uint8_t *)x,
                  x_dim_stride, dim_size);
        break;
    case 4:
        MT_LAUNCH(gather_b4, grid, IX_THREADS, 0, stream, *loop, total, (uint32_t *)out, index, (const uint32_t *)x,
                  x_dim_stride, dim_size);
        break;
    case 8:
        MT_LAUNCH(gather_b8, grid, IX_THREADS, 0, stream, *loop, total, (unsigned long long *)out, index,
                  (const unsigned long long *)x, x_dim_stride, dim_size);
        break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return mt_cuda_launch_status("cuda gather kernel");
}

/* ================================================================ scatter-add */
static __device__ __forceinline__ void ix_atomic_add_f32(float *p, float v) { atomicAdd(p, v); }
static __device__ __forceinline__ void ix_atomic_add_f64(double *p, double v) { atomicAdd(p, v); }
static __device__ __forceinline__ void ix_atomic_add_i32(int *p, int v) { atomicAdd(p, v); }
/* two's complement: an unsigned 64-bit add is the signed one */
static __device__ __forceinline__ void ix_atomic_add_i64(long long *p, long long v)
{
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
}

/* The loop's last dim (n = shape[nd - 1]) is the scattered one; the columns
   are the positions of the other dims (columns = product of their sizes). */
#define DEFINE_SCATTER_KERNELS(T, SUFFIX)                                                                 \
static __global__ void __launch_bounds__(IX_THREADS)                                                      \
scatter_add_atomic_##SUFFIX(mt_loop loop, int64_t columns, int64_t n, T *out, const int64_t *index,       \
                            const T *src, int64_t out_dim_stride, int64_t dim_size)                       \
{                                                                                                         \
    int last = loop.ndim - 1;                                                                             \
    int64_t so = 0, si = 0, ss = 0;                                                                       \
    IX_UNROLL                                                                                             \
    for (int d = 0; d < MT_MAX_DIMS; d++)                                                                 \
        if (d == last) { so = loop.stride[0][d]; si = loop.stride[1][d]; ss = loop.stride[2][d]; }        \
    for (int64_t e = IX_TID; e < columns * n; e += IX_NTHREADS) {                                         \
        int64_t j = e / columns, c = e - j * columns, off[3];                                             \
        ix_offsets(&loop, last, c, off);                                                                  \
        int64_t k = index[off[1] + j * si];                                                               \
        if (k >= 0 && k < dim_size) ix_atomic_add_##SUFFIX(out + off[0] + j * so + k * out_dim_stride, src[off[2] + j * ss]); \
    }                                                                                                     \
}                                                                                                         \
                                                                                                          \
static __global__ void __launch_bounds__(IX_THREADS)                                                      \
scatter_add_ordered_##SUFFIX(mt_loop loop, int64_t columns, int64_t n, T *out, const int64_t *index,      \
                             const T *src, int64_t out_dim_stride, int64_t dim_size)                      \
{                                                                                                         \
    int last = loop.ndim - 1;                                                                             \
    int64_t so = 0, si = 0, ss = 0;                                                                       \
    IX_UNROLL                                                                                             \
    for (int d = 0; d < MT_MAX_DIMS; d++)                                                                 \
        if (d == last) { so = loop.stride[0][d]; si = loop.stride[1][d]; ss = loop.stride[2][d]; }        \
    for (int64_t c = IX_TID; c < columns; c += IX_NTHREADS) {                                             \
        int64_t off[3];                                                                                   \
        ix_offsets(&loop, last, c, off);                                                                  \
        for (int64_t j = 0; j < n; j++) {                                                                 \
            int64_t k = index[off[1] + j * si];                                                           \
            if (k >= 0 && k < dim_size) out[off[0] + j * so + k * out_dim_stride] += src[off[2] + j * ss]; \
        }                                                                                                 \
    }                                                                                                     \
}

DEFINE_SCATTER_KERNELS(float, f32)
DEFINE_SCATTER_KERNELS(double, f64)
DEFINE_SCATTER_KERNELS(int, i32)
DEFINE_SCATTER_KERNELS(long long, i64)

#define IX_LAUNCH_SCATTER(SUFFIX, T)                                                                      \
    do {                                                                                                  \
        if (deterministic)                                                                                \
            MT_LAUNCH(scatter_add_ordered_##SUFFIX, ix_grid(columns), IX_THREADS, 0, stream, *loop, columns, n, \
                      (T *)out, index, (const T *)src, out_dim_stride, dim_size);                         \
        else                                                                                              \
            MT_LAUNCH(scatter_add_atomic_##SUFFIX, ix_grid(columns * n), IX_THREADS, 0, stream, *loop, columns, n, \
                      (T *)out, index, (const T *)src, out_dim_stride, dim_size);                         \
    } while (0)

mt_status MT_CUDA_FN(scatter_add)(mt_dtype dtype, const mt_loop *loop, void *out, const int64_t *index, const void *src,
                                  int64_t out_dim_stride, int64_t dim_size, bool deterministic)
{
    if (loop->ndim < 1) return MT_OK;
    int64_t n = loop->shape[loop->ndim - 1], columns = 1;
    for (int d = 0; d < loop->ndim - 1; d++) columns *= loop->shape[d];
    if (n <= 0 || columns <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    switch (dtype) {
    case MT_F32: IX_LAUNCH_SCATTER(f32, float); break;
    case MT_F64: IX_LAUNCH_SCATTER(f64, double); break;
    case MT_I32: IX_LAUNCH_SCATTER(i32, int); break;
    case MT_I64: IX_LAUNCH_SCATTER(i64, long long); break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return mt_cuda_launch_status(deterministic ? "cuda scatter_add kernel (ordered)" : "cuda scatter_add kernel");
}
