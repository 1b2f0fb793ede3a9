/*
 * sort.cu - sorting contiguous rows, and moving values along a dim by index:
 * the CUDA counterpart of kernels/cpu/sort.c, giving the same results.
 *
 * sort_rows: each row x[r, 0..n) into values[r, ..] and indices[r, ..]
 * (int64 positions), PyTorch's stable order: ascending or descending, NaN
 * greater than every number, equal elements in the order of their positions.
 * Rows are sorted under the strict total order `before` on (value, position)
 * pairs (sort.c), in which no two pairs are equal, so the unstable bitonic
 * network below gives exactly the stable result.
 *
 * Bitonic sort of a row padded to P = the next power of two >= n: padding
 * elements have positions n..P-1 and come after every real element. For
 * k = 2, 4, ..., P and j = k/2, ..., 1, the pair (a, a + j) with
 * a = 2t - (t mod j), t < P/2, is put in `before` order when a & k == 0 and
 * in the opposite order otherwise; after the stage k = P the row is sorted.
 *
 *   shared   n <= SORT_SHARED_MAX (2048): one block per row sorts it in
 *            shared memory (values and int positions; 24 KB for f64), thread t
 *            of min(256, P/2) handling pairs t, t + blockDim.x, ...; a
 *            __syncthreads between stages. One launch.
 *   global   longer rows: the padded rows live in scratch memory (P values and
 *            P int64 positions per row, from the engine's caching allocator);
 *            one launch per stage (k, j), one thread per pair of every row,
 *            log2(P) (log2(P) + 1) / 2 launches (78 for P = 4096, 210 for
 *            2^20), then the first n of each row are written out. Correct for
 *            any length; a merge-path or radix sort would be faster for long
 *            rows (not done).
 *
 * take_along / put_along over [outer, n, inner] with an index [outer, k, inner]:
 *   take_along  out[o, j, i] = x[o, index[o, j, i], i]
 *   put_along   out[o, index[o, j, i], i] = src[o, j, i]   (distinct indices per
 *               column, as a sort's are: no two threads write one element)
 * one thread per element of the index (grid-stride loop); indices outside
 * [0, n) are skipped (take_along writes 0 there).
 *
 * Determinism: no atomics; the result is a function of the input.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define SORT_SHARED_MAX 2048      /* longest row sorted in shared memory */
#define SORT_THREADS 256          /* threads per block */
#define SORT_MAX_BLOCKS 4096      /* grid cap of the grid-stride kernels */

static __device__ __forceinline__ bool sort_nan_f32(float v) { return v != v; }
static __device__ __forceinline__ bool sort_nan_f64(double v) { return v != v; }
static __device__ __forceinline__ bool sort_nan_int(long long v) { (void)v; return false; }

/* Whether (a, ia) comes strictly before (b, ib); positions >= n are padding (last). */
#define DEFINE_SORT_KERNELS(T, SFX, ISNAN)                                                        \
static __device__ __forceinline__ bool before_##SFX(T a, long long ia, T b, long long ib, int desc, \
                                                    long long n)                                  \
{                                                                                                 \
    if (ia >= n || ib >= n) return ia < ib;                                                       \
    bool an = ISNAN(a), bn = ISNAN(b);                                                            \
    if (an || bn) return an && bn ? ia < ib : (desc ? an : bn);                                   \
    if (a == b) return ia < ib;                                                                   \
    return desc ? a > b : a < b;                                                                  \
}                                                                                                 \
static __global__ void __launch_bounds__(SORT_THREADS)                                            \
sort_shared_##SFX(long long n, int p, int desc, const T *__restrict__ x, T *__restrict__ values,  \
                  int64_t *__restrict__ indices)                                                  \
{                                                                                                 \
    __shared__ T key[SORT_SHARED_MAX];                                                            \
    __shared__ int pos[SORT_SHARED_MAX];                                                          \
    long long r = blockIdx.x;                                                                     \
    const T *row = x + r * n;                                                                     \
    for (int j = threadIdx.x; j < p; j += blockDim.x) {                                           \
        key[j] = j < n ? row[j] : (T)0;                                                           \
        pos[j] = j;                                                                               \
    }                                                                                             \
    __syncthreads();                                                                              \
    for (int k = 2; k <= p; k <<= 1)                                                              \
        for (int j = k >> 1; j > 0; j >>= 1) {                                                    \
            for (int t = threadIdx.x; t < p / 2; t += blockDim.x) {                               \
                int a = 2 * t - (t & (j - 1)), b = a + j;                                         \
                T ka = key[a], kb = key[b];                                                       \
                int ia = pos[a], ib = pos[b];                                                     \
                bool swap = (a & k) == 0 ? before_##SFX(kb, ib, ka, ia, desc, n)                  \
                                         : before_##SFX(ka, ia, kb, ib, desc, n);                 \
                if (swap) {                                                                       \
                    key[a] = kb; key[b] = ka;                                                     \
                    pos[a] = ib; pos[b] = ia;                                                     \
                }                                                                                 \
            }                                                                                     \
            __syncthreads();                                                                      \
        }                                                                                         \
    for (int j = threadIdx.x; j < n; j += blockDim.x) {                                           \
        values[r * n + j] = key[j];                                                               \
        indices[r * n + j] = pos[j];                                                              \
    }                                                                                             \
}                                                                                                 \
/* global path: pad every row into (key, pos) of P entries */                                     \
static __global__ void sort_pad_##SFX(long long rows, long long n, long long p, const T *__restrict__ x, \
                                      T *__restrict__ key, long long *__restrict__ pos)           \
{                                                                                                 \
    long long total = rows * p, step = (long long)gridDim.x * blockDim.x;                         \
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {  \
        long long r = e / p, j = e - r * p;                                                       \
        key[e] = j < n ? x[r * n + j] : (T)0;                                                     \
        pos[e] = j;                                                                               \
    }                                                                                             \
}                                                                                                 \
/* global path: the compare-exchanges of stage (k, j) of every row */                             \
static __global__ void sort_stage_##SFX(long long rows, long long n, long long p, long long k,    \
                                        long long j, int desc, T *__restrict__ key,               \
                                        long long *__restrict__ pos)                              \
{                                                                                                 \
    long long half = p / 2, total = rows * half, step = (long long)gridDim.x * blockDim.x;       \
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {  \
        long long r = e / half, t = e - r * half;                                                 \
        long long a = 2 * t - (t & (j - 1)), b = a + j;                                           \
        T *rk = key + r * p;                                                                      \
        long long *rp = pos + r * p;                                                              \
        T ka = rk[a], kb = rk[b];                                                                 \
        long long ia = rp[a], ib = rp[b];                                                         \
        bool swap = (a & k) == 0 ? before_##SFX(kb, ib, ka, ia, desc, n)                          \
                                 : before_##SFX(ka, ia, kb, ib, desc, n);                         \
        if (swap) {                                                                               \
            rk[a] = kb; rk[b] = ka;                                                               \
            rp[a] = ib; rp[b] = ia;                                                               \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
/* global path: the first n entries of every padded row are the sorted row */                    \
static __global__ void sort_unpad_##SFX(long long rows, long long n, long long p,                 \
                                        const T *__restrict__ key, const long long *__restrict__ pos, \
                                        T *__restrict__ values, int64_t *__restrict__ indices)    \
{                                                                                                 \
    long long total = rows * n, step = (long long)gridDim.x * blockDim.x;                         \
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {  \
        long long r = e / n, j = e - r * n;                                                       \
        values[e] = key[r * p + j];                                                               \
        indices[e] = (int64_t)pos[r * p + j];                                                     \
    }                                                                                             \
}

DEFINE_SORT_KERNELS(float, f32, sort_nan_f32)
DEFINE_SORT_KERNELS(double, f64, sort_nan_f64)
DEFINE_SORT_KERNELS(int32_t, i32, sort_nan_int)
DEFINE_SORT_KERNELS(int64_t, i64, sort_nan_int)
DEFINE_SORT_KERNELS(uint8_t, u8, sort_nan_int)

#define DEFINE_ALONG_KERNELS(T, SFX)                                                              \
static __global__ void take_along_##SFX(long long outer, long long n, long long k, long long inner, \
                                        const T *__restrict__ x, const int64_t *__restrict__ index, \
                                        T *__restrict__ out)                                      \
{                                                                                                 \
    long long total = outer * k * inner, step = (long long)gridDim.x * blockDim.x;                \
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {  \
        long long o = e / (k * inner), i = e % inner, src = index[e];                             \
        out[e] = src >= 0 && src < n ? x[(o * n + src) * inner + i] : (T)0;                       \
    }                                                                                             \
}                                                                                                 \
static __global__ void put_along_##SFX(long long outer, long long n, long long k, long long inner, \
                                       const T *__restrict__ src, const int64_t *__restrict__ index, \
                                       T *__restrict__ out)                                       \
{                                                                                                 \
    long long total = outer * k * inner, step = (long long)gridDim.x * blockDim.x;                \
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {  \
        long long o = e / (k * inner), i = e % inner, dst = index[e];                             \
        if (dst >= 0 && dst < n) out[(o * n + dst) * inner + i] = src[e];                         \
    }                                                                                             \
}

DEFINE_ALONG_KERNELS(float, f32)
DEFINE_ALONG_KERNELS(double, f64)

/* ================================================================ host wrappers */

static unsigned sort_grid(long long units) { return mt_cuda_grid_1d(units, SORT_THREADS, SORT_MAX_BLOCKS); }

/* The global path for one dtype: pad, every stage, unpad, within scratch memory. */
#define SORT_GLOBAL(SFX, T)                                                                       \
    do {                                                                                          \
        T *key = (T *)scratch;                                                                    \
        long long *pos = (long long *)((char *)scratch + key_bytes);                              \
        MT_LAUNCH(sort_pad_##SFX, sort_grid(rows * p), SORT_THREADS, 0, stream, rows, nn, p,      \
                  (const T *)x, key, pos);                                                        \
        for (long long k = 2; k <= p && st == MT_OK; k <<= 1)                                     \
            for (long long j = k >> 1; j > 0 && st == MT_OK; j >>= 1) {                           \
                MT_LAUNCH(sort_stage_##SFX, sort_grid(rows * (p / 2)), SORT_THREADS, 0, stream, rows, \
                          nn, p, k, j, desc, key, pos);                                           \
                st = mt_cuda_launch_status("sort_rows: stage kernel launch");                             \
            }                                                                                     \
        if (st == MT_OK)                                                                          \
            MT_LAUNCH(sort_unpad_##SFX, sort_grid(rows * nn), SORT_THREADS, 0, stream, rows, nn, p, \
                      (const T *)key, (const long long *)pos, (T *)values, indices);              \
    } while (0)

#define SORT_SHARED(SFX, T)                                                                       \
    MT_LAUNCH(sort_shared_##SFX, (unsigned)rows, threads, 0, stream, nn, (int)p, desc, (const T *)x, \
              (T *)values, indices)

extern "C" mt_status MT_CUDA_FN(sort_rows)(mt_dtype dtype, int64_t rows_, int64_t n, bool descending,
                                           const void *x, void *values, int64_t *indices)
{
    if (rows_ <= 0 || n <= 0) return MT_OK;
    if (dtype != MT_F32 && dtype != MT_F64 && dtype != MT_I32 && dtype != MT_I64 && dtype != MT_U8 &&
        dtype != MT_BOOL)
        return MT_ERR_UNSUPPORTED;
    if (n > ((long long)1 << 40)) return MT_ERR_ARGUMENT;
    cudaStream_t stream = MT_STREAM();
    long long rows = rows_, nn = n, p = 1;
    while (p < nn) p <<= 1;
    int desc = descending ? 1 : 0;
    mt_status st = MT_OK;
    if (nn <= SORT_SHARED_MAX) {
        if (rows > 2147483647LL) return MT_ERR_ARGUMENT;
        unsigned threads = p / 2 < SORT_THREADS ? (unsigned)(p > 1 ? p / 2 : 1) : SORT_THREADS;
        switch (dtype) {
        case MT_F32: SORT_SHARED(f32, float); break;
        case MT_F64: SORT_SHARED(f64, double); break;
        case MT_I32: SORT_SHARED(i32, int32_t); break;
        case MT_I64: SORT_SHARED(i64, int64_t); break;
        default: SORT_SHARED(u8, uint8_t); break;
        }
        return mt_cuda_launch_status("sort_rows: kernel launch");
    }
    size_t esize = mt_dtype_size(dtype);
    if ((unsigned long long)rows > ((unsigned long long)1 << 62) / ((unsigned long long)p * (esize + 8)))
        return MT_ERR_ARGUMENT;
    size_t key_bytes = ((size_t)(rows * p) * esize + 255) / 256 * 256;
    size_t bytes = key_bytes + (size_t)(rows * p) * sizeof(long long);
    void *scratch = MT_CUDA_FN(scratch_alloc)(bytes);
    if (!scratch) return MT_ERR_MEMORY;
    switch (dtype) {
    case MT_F32: SORT_GLOBAL(f32, float); break;
    case MT_F64: SORT_GLOBAL(f64, double); break;
    case MT_I32: SORT_GLOBAL(i32, int32_t); break;
    case MT_I64: SORT_GLOBAL(i64, int64_t); break;
    default: SORT_GLOBAL(u8, uint8_t); break;
    }
    if (st == MT_OK) st = mt_cuda_launch_status("sort_rows: kernel launch");
    MT_CUDA_FN(scratch_free)(scratch, bytes);
    return st;
}

#define ALONG_LAUNCH(KERNEL, SRC, OUT)                                                            \
    do {                                                                                          \
        long long total = (long long)outer * k * inner;                                           \
        if (dtype == MT_F32)                                                                      \
            MT_LAUNCH(KERNEL##_f32, sort_grid(total), SORT_THREADS, 0, MT_STREAM(), (long long)outer, \
                      (long long)n, (long long)k, (long long)inner, (const float *)(SRC), index, (float *)(OUT)); \
        else                                                                                      \
            MT_LAUNCH(KERNEL##_f64, sort_grid(total), SORT_THREADS, 0, MT_STREAM(), (long long)outer, \
                      (long long)n, (long long)k, (long long)inner, (const double *)(SRC), index, (double *)(OUT)); \
    } while (0)

extern "C" mt_status MT_CUDA_FN(take_along)(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner,
                                            const void *x, const int64_t *index, void *out)
{
    if (outer <= 0 || k <= 0 || inner <= 0) return MT_OK;
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    ALONG_LAUNCH(take_along, x, out);
    return mt_cuda_launch_status("take_along: kernel launch");
}

extern "C" mt_status MT_CUDA_FN(put_along)(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner,
                                           const void *src, const int64_t *index, void *out)
{
    if (outer <= 0 || k <= 0 || inner <= 0) return MT_OK;
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    ALONG_LAUNCH(put_along, src, out);
    return mt_cuda_launch_status("put_along: kernel launch");
}
