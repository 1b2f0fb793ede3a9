/*
 * scan.cu - cumulative sums over the middle axis of a contiguous
 * [outer, n, inner] array, element (o, j, i) at (o n + j) inner + i: the CUDA
 * counterpart of kernels/cpu/scan.c, with its formulas:
 *
 *   forward   y[o, j, i] = sum_{j' <= j} x[o, j', i]
 *   reverse   y[o, j, i] = sum_{j' >= j} x[o, j', i]
 *
 * f32 and f64 accumulate in double, i64 in unsigned 64-bit integers (wrapping),
 * as on the CPU.
 *
 * Mapping:
 *   rows (inner == 1)  one warp per row (block (32, 8): 8 rows) when
 *            n <= SCAN_SHORT_ROW, else a block of SCAN_THREADS threads per
 *            row. The row is walked in tiles of blockDim.x elements; thread t
 *            takes element base + t of the tile (in the walking order:
 *            j, or n - 1 - j when reversed). Each warp scans its 32 values
 *            (inclusive, by __shfl_up_sync over offsets 1, 2, 4, 8, 16); with
 *            several warps, the warps' totals go through shared memory and each
 *            thread adds those of the warps before it, in order; the carry (the
 *            sum of the tiles before) is added last and grows by the tile's
 *            total.
 *   columns (inner > 1)  one thread per column (o, i) walks j in order, as the
 *            CPU does (consecutive threads read consecutive i: coalesced).
 * Determinism: no atomics; every sum is formed in a fixed order, so the same
 * input gives the same bits. The rows kernel associates the terms
 * differently from the CPU's left-to-right sum (tile carry + warp prefix +
 * lane prefix): in double, far below f32's and the tests' tolerances.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define SCAN_FULL_MASK 0xFFFFFFFFu
#define SCAN_THREADS 256          /* threads of a block-per-row block, and of a column block */
#define SCAN_WARP_ROWS 8          /* rows per block when a warp takes a row */
#define SCAN_SHORT_ROW 512        /* rows up to this long get a warp, longer ones a block */

static long long scan_ceil_div(long long a, long long b) { return (a + b - 1) / b; }

#define DEFINE_SCAN_KERNELS(T, SFX, ACC)                                                          \
static __global__ void __launch_bounds__(SCAN_THREADS)                                            \
cumsum_rows_##SFX(long long rows, long long n, int reverse, const T *__restrict__ x, T *__restrict__ y) \
{                                                                                                 \
    __shared__ ACC warp_total[SCAN_THREADS / 32];                                                 \
    long long r = (long long)blockIdx.x * blockDim.y + threadIdx.y;                               \
    if (r >= rows) return;   /* whole warps: a warp never spans two rows */                       \
    const T *row = x + r * n;                                                                     \
    T *out = y + r * n;                                                                           \
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;               \
    ACC carry = 0;                                                                                \
    for (long long base = 0; base < n; base += blockDim.x) {                                      \
        long long j = base + threadIdx.x, at = reverse ? n - 1 - j : j;                           \
        ACC v = j < n ? (ACC)row[at] : (ACC)0;                                                    \
        for (int o = 1; o < 32; o <<= 1) {                                                        \
            ACC u = __shfl_up_sync(SCAN_FULL_MASK, v, o);                                         \
            if (lane >= o) v += u;                                                                \
        }                                                                                         \
        ACC before = carry, tile = 0;                                                             \
        if (warps > 1) {                                                                          \
            if (lane == 31) warp_total[warp] = v;                                                 \
            __syncthreads();                                                                      \
            for (int w = 0; w < warps; w++) {                                                     \
                if (w < warp) before += warp_total[w];                                            \
                tile += warp_total[w];                                                            \
            }                                                                                     \
            __syncthreads();   /* the next tile overwrites warp_total */                          \
        } else {                                                                                  \
            tile = __shfl_sync(SCAN_FULL_MASK, v, 31);                                            \
        }                                                                                         \
        if (j < n) out[at] = (T)(before + v);                                                     \
        carry += tile;                                                                            \
    }                                                                                             \
}                                                                                                 \
static __global__ void __launch_bounds__(SCAN_THREADS)                                            \
cumsum_cols_##SFX(long long outer, long long n, long long inner, int reverse, const T *__restrict__ x, \
                  T *__restrict__ y)                                                              \
{                                                                                                 \
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;                               \
    if (k >= outer * inner) return;                                                               \
    long long o = k / inner, i = k - o * inner;                                                   \
    ACC acc = 0;                                                                                  \
    for (long long j = 0; j < n; j++) {                                                           \
        long long at = (o * n + (reverse ? n - 1 - j : j)) * inner + i;                           \
        acc += (ACC)x[at];                                                                        \
        y[at] = (T)acc;                                                                           \
    }                                                                                             \
}

DEFINE_SCAN_KERNELS(float, f32, double)
DEFINE_SCAN_KERNELS(double, f64, double)
DEFINE_SCAN_KERNELS(int64_t, i64, unsigned long long)

#define SCAN_LAUNCH(SFX, T)                                                                       \
    do {                                                                                          \
        if (inner == 1) {                                                                         \
            MT_LAUNCH(cumsum_rows_##SFX, grid, block, 0, stream, (long long)outer, (long long)n, rev, \
                      (const T *)x, (T *)y);                                                      \
        } else {                                                                                  \
            MT_LAUNCH(cumsum_cols_##SFX, grid, block, 0, stream, (long long)outer, (long long)n,   \
                      (long long)inner, rev, (const T *)x, (T *)y);                               \
        }                                                                                         \
    } while (0)

extern "C" mt_status MT_CUDA_FN(cumsum)(mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, bool reverse,
                                        const void *x, void *y)
{
    if (outer <= 0 || n <= 0 || inner <= 0) return MT_OK;
    if (dtype != MT_F32 && dtype != MT_F64 && dtype != MT_I64) return MT_ERR_UNSUPPORTED;
    cudaStream_t stream = MT_STREAM();
    int rev = reverse ? 1 : 0;
    dim3 grid, block;
    long long blocks;
    if (inner == 1) {
        bool warp_rows = n <= SCAN_SHORT_ROW;
        block = warp_rows ? dim3(32, SCAN_WARP_ROWS) : dim3(SCAN_THREADS, 1);
        blocks = scan_ceil_div(outer, warp_rows ? SCAN_WARP_ROWS : 1);
    } else {
        block = dim3(SCAN_THREADS);
        blocks = scan_ceil_div((long long)outer * inner, SCAN_THREADS);
    }
    if (blocks > 2147483647LL) return MT_ERR_ARGUMENT;
    grid = dim3((unsigned)blocks);
    if (dtype == MT_F32) SCAN_LAUNCH(f32, float);
    else if (dtype == MT_F64) SCAN_LAUNCH(f64, double);
    else SCAN_LAUNCH(i64, int64_t);
    return mt_cuda_launch_status("cuda cumsum kernel");
}
