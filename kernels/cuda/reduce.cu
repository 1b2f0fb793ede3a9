/*
 * reduce.cu - reductions and softmax over the middle axis of a contiguous
 * [outer, n, inner] array, element (o, j, i) at (o n + j) inner + i: the CUDA
 * counterpart of kernels/cpu/reduce.c, with its formulas and its tie and NaN
 * rules.
 *
 * Reductions (one output per column (o, i), k = o inner + i):
 *   sum        sum_j x_j                 mean  sum_j x_j / n
 *   max, min   the extreme element; a NaN wins
 *   argmax, argmin  its index j (int64): on ties the smallest j, and the
 *              first NaN wins
 *   var        sum_j (x_j - mean)^2 / (n - correction), NaN when
 *              n - correction <= 0; two passes (mean, then deviations)
 *   logsumexp  m + log sum_j exp(x_j - m),  m = max_j x_j (m itself when it
 *              is +-inf)
 * f32/f64 take every kind; i32/i64/u8 (and bool, as u8) sum, mean, max,
 * min, argmax and argmin (var and logsumexp of an integer dtype are reported
 * as an invalid value: the engine never asks for them).
 *
 * Precision: f32 and f64 sums accumulate in double, as on the CPU, so that an
 * f32 result does not depend on the summation order at f32 precision (a row
 * of 100000 stays within 1e-5 of the CPU); reductions are bandwidth-bound, so
 * the double adds are hidden behind the loads. Integer sums accumulate in
 * int64 (exact, wrapping on overflow; the CPU sums them in double). exp runs
 * in the element type (expf for f32), as in the CPU's row kernels.
 *
 * Determinism: no atomics. Partial results are combined in a fixed order (a
 * fixed shuffle tree within a warp, the warps in order through shared memory,
 * the parts of a split row in order), so the same input gives the same bits.
 *
 * Each reduction is a family of five device functions over a state: init,
 * accumulate one element, merge two states, shuffle a state down the warp,
 * write the result (DEFINE_*_FAMILY). Three generic kernels run any family
 * (DEFINE_REDUCE_KERNELS):
 *   rows     inner == 1: one warp per row (8 rows per block) when n <= 256,
 *            else one block of 256 threads per row. Thread t accumulates
 *            j = t, t + blockDim.x, ... (coalesced); the warp merges by
 *            shuffles, then warp 0 merges the warps' states from shared memory.
 *   columns  inner > 1: one thread per column (o, i) walks j; consecutive
 *            threads read consecutive i (coalesced along inner).
 *   finish   the second pass of the two-pass scheme.
 * Two-pass scheme: when the outputs are too few to fill the GPU and n is long
 * (e.g. one row of 100000), the reduced axis is cut into `parts` chunks
 * (grid.y); each (output, chunk) writes its state to a scratch buffer laid out
 * [parts][outputs], and the finish kernel (one thread per output) merges the
 * parts in order and writes the result.
 * Scratch memory (the parts' states, var's means) comes from the engine's
 * caching allocator (MT_CUDA_FN(scratch_alloc), reused in stream order, no
 * device synchronisation). Only split shapes and var allocate.
 *
 * Softmax over the same axis:
 *   forward   one read computes m = max_j x_j and s = sum_j exp(x_j - m)
 *             online (on a new maximum s <- s exp(m_old - m_new) + 1), a
 *             second writes y_j = exp(x_j - m) (1 / s), or
 *             y_j = (x_j - m) - log s (not x_j - (m + log s): with large
 *             logits the rounded m + log s would cost f32 its fraction)
 *   backward  softmax dx_j = y_j (dy_j - sum_k dy_k y_k),
 *             log_softmax dx_j = dy_j - exp(y_j) sum_k dy_k   (sums in double)
 *   mapping   inner == 1 as the rows reduction, the row's totals broadcast to
 *             its threads; inner > 1 one thread per column.
 * A row holding a NaN, or a +inf, or only -inf gives NaN everywhere, as on
 * the CPU (and in PyTorch).
 *
 * Every wrapper launches on the calling thread's current stream and returns
 * a status: MT_ERR_UNSUPPORTED for a kind or dtype it has no kernel for,
 * MT_ERR_ARGUMENT for a grid too large to launch, MT_ERR_MEMORY when its
 * scratch memory could not be had, MT_ERR_DEVICE for a failed launch (also
 * recorded through mt_device_record_error).
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define FULL_MASK 0xFFFFFFFFu
#define RED_THREADS 256          /* threads of a block-per-row block, a column block, a finish block */
#define RED_WARP_ROWS 8          /* rows per block when a warp takes a row */
#define RED_SHORT_ROW 256        /* rows up to this long get a warp, longer ones a block */
#define RED_TARGET_BLOCKS 264    /* row blocks that keep a GPU busy (2 per SM of an H100) */
#define RED_TARGET_THREADS 67584 /* column threads that keep a GPU busy (RED_TARGET_BLOCKS x 256) */
#define RED_ROW_CHUNK_MIN 4096   /* a split row's chunk: at least 16 elements per thread of its block */
#define RED_COL_CHUNK_MIN 64     /* a split column's chunk: at least 64 elements */
#define RED_MAX_PARTS 1024       /* chunks per output at most */
#define RED_STATE_MAX 16         /* bytes of the largest family state */

static __device__ __forceinline__ bool nan_f32(float v) { return v != v; }
static __device__ __forceinline__ bool nan_f64(double v) { return v != v; }
static __device__ __forceinline__ bool nan_int(long long v) { (void)v; return false; }

/* ================================================================ the families */

/*
 * sum family: sum, mean, and var's first pass (the mean, in double, into
 * var's scratch). State: s = sum_j x_j in ACC (double for f32/f64, int64 for
 * integers).
 */
#define DEFINE_SUM_FAMILY(T, SFX, ACC)                                                             \
typedef struct { ACC s; } sum_state_##SFX;                                                         \
static __device__ __forceinline__ sum_state_##SFX sum_init_##SFX(void)                             \
{                                                                                                  \
    sum_state_##SFX st;                                                                            \
    st.s = 0;                                                                                      \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void sum_accum_##SFX(sum_state_##SFX *st, T x, long long j,      \
                                                       int kind, double ctx)                       \
{                                                                                                  \
    st->s += (ACC)x;                                                                               \
}                                                                                                  \
static __device__ __forceinline__ sum_state_##SFX sum_merge_##SFX(sum_state_##SFX a, sum_state_##SFX b, \
                                                                  int kind)                        \
{                                                                                                  \
    a.s += b.s;                                                                                    \
    return a;                                                                                      \
}                                                                                                  \
static __device__ __forceinline__ sum_state_##SFX sum_shfl_##SFX(sum_state_##SFX st, int offset)  \
{                                                                                                  \
    st.s = __shfl_down_sync(FULL_MASK, st.s, offset);                                              \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void sum_final_##SFX(sum_state_##SFX st, int kind, long long n,  \
                                                       double param, double ctx, void *out,        \
                                                       long long k)                                \
{                                                                                                  \
    if (kind == MT_REDUCE_SUM) ((T *)out)[k] = (T)st.s;                                            \
    else if (kind == MT_REDUCE_MEAN) ((T *)out)[k] = (T)((double)st.s / (double)n);                \
    else ((double *)out)[k] = (double)st.s / (double)n;   /* var's first pass */                   \
}

/*
 * extremum family: max, min, argmax, argmin. State: the best value v (in VT,
 * wide enough to shuffle) and its index i (-1: no element yet). Within a
 * thread j only grows, so a strictly better value replaces (ties keep the
 * first); merging two states takes the NaN, else the better value, and on
 * equal values (or two NaNs) the smaller index: the result is the first
 * extreme element, or the first NaN, whatever the merge order.
 */
#define DEFINE_EXT_FAMILY(T, SFX, VT, ISNAN)                                                       \
typedef struct { VT v; long long i; } ext_state_##SFX;                                             \
static __device__ __forceinline__ ext_state_##SFX ext_init_##SFX(void)                             \
{                                                                                                  \
    ext_state_##SFX st;                                                                            \
    st.v = 0;                                                                                      \
    st.i = -1;                                                                                     \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void ext_accum_##SFX(ext_state_##SFX *st, T x, long long j,      \
                                                       int kind, double ctx)                       \
{                                                                                                  \
    VT v = (VT)x;                                                                                  \
    bool want_max = kind == MT_REDUCE_MAX || kind == MT_REDUCE_ARGMAX;                             \
    if (st->i < 0 || (!ISNAN(st->v) && (ISNAN(v) || (want_max ? v > st->v : v < st->v)))) {        \
        st->v = v;                                                                                 \
        st->i = j;                                                                                 \
    }                                                                                              \
}                                                                                                  \
static __device__ __forceinline__ ext_state_##SFX ext_merge_##SFX(ext_state_##SFX a, ext_state_##SFX b, \
                                                                  int kind)                        \
{                                                                                                  \
    if (a.i < 0) return b;                                                                         \
    if (b.i < 0) return a;                                                                         \
    bool a_nan = ISNAN(a.v), b_nan = ISNAN(b.v), take_b;                                           \
    if (a_nan || b_nan) take_b = b_nan && (!a_nan || b.i < a.i);                                   \
    else if (a.v == b.v) take_b = b.i < a.i;                                                       \
    else take_b = (kind == MT_REDUCE_MAX || kind == MT_REDUCE_ARGMAX) ? b.v > a.v : b.v < a.v;     \
    return take_b ? b : a;                                                                         \
}                                                                                                  \
static __device__ __forceinline__ ext_state_##SFX ext_shfl_##SFX(ext_state_##SFX st, int offset)  \
{                                                                                                  \
    st.v = __shfl_down_sync(FULL_MASK, st.v, offset);                                              \
    st.i = __shfl_down_sync(FULL_MASK, st.i, offset);                                              \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void ext_final_##SFX(ext_state_##SFX st, int kind, long long n,  \
                                                       double param, double ctx, void *out,        \
                                                       long long k)                                \
{                                                                                                  \
    if (kind == MT_REDUCE_ARGMAX || kind == MT_REDUCE_ARGMIN) ((int64_t *)out)[k] = (int64_t)st.i; \
    else ((T *)out)[k] = (T)st.v;                                                                  \
}

/*
 * deviation family: var's second pass, s = sum_j (x_j - mean)^2 in double,
 * mean (ctx) from the first pass; result s / (n - correction).
 */
#define DEFINE_DEV_FAMILY(T, SFX)                                                                  \
typedef struct { double s; } dev_state_##SFX;                                                      \
static __device__ __forceinline__ dev_state_##SFX dev_init_##SFX(void)                             \
{                                                                                                  \
    dev_state_##SFX st;                                                                            \
    st.s = 0;                                                                                      \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void dev_accum_##SFX(dev_state_##SFX *st, T x, long long j,      \
                                                       int kind, double ctx)                       \
{                                                                                                  \
    double d = (double)x - ctx;                                                                    \
    st->s += d * d;                                                                                \
}                                                                                                  \
static __device__ __forceinline__ dev_state_##SFX dev_merge_##SFX(dev_state_##SFX a, dev_state_##SFX b, \
                                                                  int kind)                        \
{                                                                                                  \
    a.s += b.s;                                                                                    \
    return a;                                                                                      \
}                                                                                                  \
static __device__ __forceinline__ dev_state_##SFX dev_shfl_##SFX(dev_state_##SFX st, int offset)  \
{                                                                                                  \
    st.s = __shfl_down_sync(FULL_MASK, st.s, offset);                                              \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void dev_final_##SFX(dev_state_##SFX st, int kind, long long n,  \
                                                       double param, double ctx, void *out,        \
                                                       long long k)                                \
{                                                                                                  \
    double dof = (double)n - param;                                                                \
    ((T *)out)[k] = (T)(dof > 0 ? st.s / dof : (double)NAN);                                       \
}

/*
 * logsumexp family (also softmax's first pass). State: m = max_j x_j over the
 * non-NaN elements (-inf: none yet) and s = sum_j exp(x_j - m) in double.
 * scale(a, b) = exp(a - b) with exp(-inf - -inf) taken as 1, so that leading
 * -inf elements are counted, not turned into NaN, and vanish (times 0) once a
 * finite maximum arrives. A NaN element adds NaN to s; a +inf maximum makes s
 * NaN (exp(inf - inf)), as the CPU's sum does. Result: m when m is +-inf,
 * else m + log s.
 */
#define DEFINE_LSE_FAMILY(T, SFX, EXP)                                                             \
typedef struct { T m; double s; } lse_state_##SFX;                                                 \
static __device__ __forceinline__ double lse_scale_##SFX(T a, T b)                                 \
{                                                                                                  \
    if (a == -INFINITY) return b == -INFINITY ? 1.0 : 0.0;                                        \
    return (double)EXP(a - b);                                                                     \
}                                                                                                  \
static __device__ __forceinline__ lse_state_##SFX lse_init_##SFX(void)                             \
{                                                                                                  \
    lse_state_##SFX st;                                                                            \
    st.m = -INFINITY;                                                                              \
    st.s = 0;                                                                                      \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void lse_accum_##SFX(lse_state_##SFX *st, T x, long long j,      \
                                                       int kind, double ctx)                       \
{                                                                                                  \
    if (x > st->m) {   /* a new maximum: rescale the sum; x's own term is exp(x - x) */            \
        st->s = st->s * lse_scale_##SFX(st->m, x) + (x == INFINITY ? (double)NAN : 1.0);           \
        st->m = x;                                                                                 \
    } else {                                                                                       \
        st->s += lse_scale_##SFX(x, st->m);                                                        \
    }                                                                                              \
}                                                                                                  \
static __device__ __forceinline__ lse_state_##SFX lse_merge_##SFX(lse_state_##SFX a, lse_state_##SFX b, \
                                                                  int kind)                        \
{                                                                                                  \
    T m = b.m > a.m ? b.m : a.m;                                                                   \
    a.s = a.s * lse_scale_##SFX(a.m, m) + b.s * lse_scale_##SFX(b.m, m);                           \
    a.m = m;                                                                                       \
    return a;                                                                                      \
}                                                                                                  \
static __device__ __forceinline__ lse_state_##SFX lse_shfl_##SFX(lse_state_##SFX st, int offset)  \
{                                                                                                  \
    st.m = __shfl_down_sync(FULL_MASK, st.m, offset);                                              \
    st.s = __shfl_down_sync(FULL_MASK, st.s, offset);                                              \
    return st;                                                                                     \
}                                                                                                  \
static __device__ __forceinline__ void lse_final_##SFX(lse_state_##SFX st, int kind, long long n,  \
                                                       double param, double ctx, void *out,        \
                                                       long long k)                                \
{                                                                                                  \
    if (st.m == INFINITY || st.m == -INFINITY) ((T *)out)[k] = st.m;                               \
    else ((T *)out)[k] = (T)((double)st.m + log(st.s));                                            \
}

DEFINE_SUM_FAMILY(float, f32, double)
DEFINE_SUM_FAMILY(double, f64, double)
DEFINE_SUM_FAMILY(int32_t, i32, long long)
DEFINE_SUM_FAMILY(int64_t, i64, long long)
DEFINE_SUM_FAMILY(uint8_t, u8, long long)
DEFINE_EXT_FAMILY(float, f32, float, nan_f32)
DEFINE_EXT_FAMILY(double, f64, double, nan_f64)
DEFINE_EXT_FAMILY(int32_t, i32, int, nan_int)
DEFINE_EXT_FAMILY(int64_t, i64, long long, nan_int)
DEFINE_EXT_FAMILY(uint8_t, u8, int, nan_int)
DEFINE_DEV_FAMILY(float, f32)
DEFINE_DEV_FAMILY(double, f64)
DEFINE_LSE_FAMILY(float, f32, expf)
DEFINE_LSE_FAMILY(double, f64, exp)

/* ================================================================ the generic kernels */

/*
 * Per family: the warp and block merges, and the three kernels.
 *
 * FAM_warp: lane 0 gets the merge of the warp's 32 states (a fixed shuffle
 * tree: offsets 16, 8, 4, 2, 1; lane l < offset reads lane l + offset < 32).
 * FAM_block: thread 0 of a row gets the merge of the row's blockDim.x states
 * (a multiple of 32): each warp merges by FAM_warp, lane 0 stores its state
 * in part[warp], and after a barrier warp 0 merges those in order. With
 * blockDim.x == 32 (a warp per row) there is no barrier: the rows of a block
 * are independent warps.
 *
 * FAM_rows (inner == 1): out[r] = reduce_j x[r, j].
 *   grid (ceil(rows / blockDim.y), parts), block (tpr, rpb): row
 *   r = blockIdx.x rpb + threadIdx.y, chunk c = blockIdx.y covering
 *   j in [c chunk, (c + 1) chunk); thread t = threadIdx.x accumulates
 *   j = c chunk + t, + tpr, ... (consecutive threads, consecutive j).
 *   tpr = 32 and rpb = 8 (a warp per row), or tpr = 256 and rpb = 1; a warp
 *   never spans two rows, so the warps of a row past the end leave together.
 *   One part: thread 0 of the row writes the result; several: its state goes
 *   to partials[c][r].
 * FAM_cols (inner > 1): out[o, i] = reduce_j x[o, j, i].
 *   grid (ceil(outer inner / blockDim.x), parts), block (tpr): thread
 *   k = blockIdx.x tpr + threadIdx.x is column (o, i) = (k / inner, k % inner)
 *   and walks j in its chunk in order; partials[c][k] as above.
 * FAM_finish: out[k] from partials[0..parts)[k], merged in order; one thread
 *   per output, grid (ceil(outputs / 256)), block (256).
 * ctx: the value aux[k] the family needs per output (var's mean), else 0.
 */
#define DEFINE_REDUCE_KERNELS(FAM, T, SFX)                                                         \
static __device__ __forceinline__ FAM##_state_##SFX FAM##_warp_##SFX(FAM##_state_##SFX st, int kind) \
{                                                                                                  \
    for (int o = 16; o > 0; o >>= 1) st = FAM##_merge_##SFX(st, FAM##_shfl_##SFX(st, o), kind);   \
    return st;                                                                                     \
}                                                                                                  \
static __device__ FAM##_state_##SFX FAM##_block_##SFX(FAM##_state_##SFX st, int kind,              \
                                                      FAM##_state_##SFX *part)                     \
{                                                                                                  \
    st = FAM##_warp_##SFX(st, kind);                                                               \
    if (blockDim.x > 32) {                                                                         \
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;                                      \
        if (lane == 0) part[warp] = st;                                                            \
        __syncthreads();                                                                           \
        if (warp == 0) {                                                                           \
            st = lane < (int)(blockDim.x >> 5) ? part[lane] : FAM##_init_##SFX();                  \
            st = FAM##_warp_##SFX(st, kind);                                                       \
        }                                                                                          \
    }                                                                                              \
    return st;                                                                                     \
}                                                                                                  \
static __global__ void __launch_bounds__(RED_THREADS)                                              \
FAM##_rows_##SFX(int kind, long long rows, long long n, long long chunk, const T *__restrict__ x,  \
                 void *out, double param, const double *aux, FAM##_state_##SFX *partials)          \
{                                                                                                  \
    __shared__ FAM##_state_##SFX part[RED_THREADS / 32];                                           \
    long long r = (long long)blockIdx.x * blockDim.y + threadIdx.y;                                \
    if (r >= rows) return;                                                                         \
    long long begin = (long long)blockIdx.y * chunk;                                               \
    long long end = begin + chunk < n ? begin + chunk : n;                                         \
    double ctx = aux ? aux[r] : 0.0;                                                               \
    const T *row = x + r * n;                                                                      \
    FAM##_state_##SFX st = FAM##_init_##SFX();                                                     \
    for (long long j = begin + threadIdx.x; j < end; j += blockDim.x)                              \
        FAM##_accum_##SFX(&st, row[j], j, kind, ctx);                                              \
    st = FAM##_block_##SFX(st, kind, part);                                                        \
    if (threadIdx.x != 0) return;                                                                  \
    if (gridDim.y == 1) FAM##_final_##SFX(st, kind, n, param, ctx, out, r);                        \
    else partials[(long long)blockIdx.y * rows + r] = st;                                          \
}                                                                                                  \
static __global__ void __launch_bounds__(RED_THREADS)                                              \
FAM##_cols_##SFX(int kind, long long outer, long long n, long long inner, long long chunk,          \
                 const T *__restrict__ x, void *out, double param, const double *aux,              \
                 FAM##_state_##SFX *partials)                                                      \
{                                                                                                  \
    long long outputs = outer * inner;                                                             \
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;                                \
    if (k >= outputs) return;                                                                      \
    long long o = k / inner, i = k - o * inner;                                                    \
    long long begin = (long long)blockIdx.y * chunk;                                               \
    long long end = begin + chunk < n ? begin + chunk : n;                                         \
    double ctx = aux ? aux[k] : 0.0;                                                               \
    const T *col = x + o * n * inner + i;                                                          \
    FAM##_state_##SFX st = FAM##_init_##SFX();                                                     \
    for (long long j = begin; j < end; j++) FAM##_accum_##SFX(&st, col[j * inner], j, kind, ctx);  \
    if (gridDim.y == 1) FAM##_final_##SFX(st, kind, n, param, ctx, out, k);                        \
    else partials[(long long)blockIdx.y * outputs + k] = st;                                       \
}                                                                                                  \
static __global__ void __launch_bounds__(RED_THREADS)                                              \
FAM##_finish_##SFX(int kind, long long outputs, long long n, int parts,                            \
                   const FAM##_state_##SFX *__restrict__ partials, void *out, double param,        \
                   const double *aux)                                                              \
{                                                                                                  \
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;                                \
    if (k >= outputs) return;                                                                      \
    FAM##_state_##SFX st = partials[k];                                                            \
    for (int c = 1; c < parts; c++) st = FAM##_merge_##SFX(st, partials[(long long)c * outputs + k], kind); \
    FAM##_final_##SFX(st, kind, n, param, aux ? aux[k] : 0.0, out, k);                             \
}

DEFINE_REDUCE_KERNELS(sum, float, f32)
DEFINE_REDUCE_KERNELS(sum, double, f64)
DEFINE_REDUCE_KERNELS(sum, int32_t, i32)
DEFINE_REDUCE_KERNELS(sum, int64_t, i64)
DEFINE_REDUCE_KERNELS(sum, uint8_t, u8)
DEFINE_REDUCE_KERNELS(ext, float, f32)
DEFINE_REDUCE_KERNELS(ext, double, f64)
DEFINE_REDUCE_KERNELS(ext, int32_t, i32)
DEFINE_REDUCE_KERNELS(ext, int64_t, i64)
DEFINE_REDUCE_KERNELS(ext, uint8_t, u8)
DEFINE_REDUCE_KERNELS(dev, float, f32)
DEFINE_REDUCE_KERNELS(dev, double, f64)
DEFINE_REDUCE_KERNELS(lse, float, f32)
DEFINE_REDUCE_KERNELS(lse, double, f64)

/* ================================================================ softmax kernels */

/*
 * softmax_rows (inner == 1), per row r:
 *   pass 1  (m, s) = (max_j x_j, sum_j exp(x_j - m)), online per thread
 *           (the logsumexp family's state), merged over the row's threads as
 *           in the rows reduction, then broadcast (a shuffle from lane 0, or
 *           shared memory and a barrier)
 *   pass 2  y_j = exp(x_j - m) (1 / s)   or   y_j = (x_j - m) - log s
 * Mapping: as lse_rows, block (32, 8) (a warp per row) for n <= 256, else
 * block (256) per row; thread t handles j = t, t + blockDim.x, ...
 *
 * softmax_backward_rows, per row r, same mapping:
 *   s = sum_j dy_j y_j (softmax) or sum_j dy_j (log_softmax), in double,
 *   merged and broadcast like pass 1, then
 *   dx_j = y_j (dy_j - s)   or   dx_j = dy_j - exp(y_j) s
 *
 * softmax_cols / softmax_backward_cols (inner > 1): one thread per column
 * k = (o, i) walks j three times (the online pass, the writes) or twice (the
 * sum, the writes); consecutive threads read consecutive i. grid
 * (ceil(outer inner / 256)), block (256).
 */
#define DEFINE_SOFTMAX(T, SFX, EXP)                                                                \
static __device__ __forceinline__ void softmax_write_##SFX(int log_, lse_state_##SFX st,           \
                                                           const T *p, T *q, long long n,          \
                                                           long long first, long long step,        \
                                                           long long stride)                       \
{                                                                                                  \
    if (log_) {                                                                                    \
        T log_s = (T)log(st.s);                                                                    \
        for (long long j = first; j < n; j += step) q[j * stride] = (p[j * stride] - st.m) - log_s; \
    } else {                                                                                       \
        T inv = (T)(1.0 / st.s);                                                                   \
        for (long long j = first; j < n; j += step) q[j * stride] = EXP(p[j * stride] - st.m) * inv; \
    }                                                                                              \
}                                                                                                  \
static __global__ void __launch_bounds__(RED_THREADS)                                              \
softmax_rows_##SFX(int log_, long long rows, long long n, const T *__restrict__ x, T *__restrict__ y) \
{                                                                                                  \
    __shared__ lse_state_##SFX part[RED_THREADS / 32];                                             \
    __shared__ lse_state_##SFX total;                                                              \
    long long r = (long long)blockIdx.x * blockDim.y + threadIdx.y;                                \
    if (r >= rows) return;                                                                         \
    const T *p = x + r * n;                                                                        \
    lse_state_##SFX st = lse_init_##SFX();                                                         \
    for (long long j = threadIdx.x; j < n; j += blockDim.x) lse_accum_##SFX(&st, p[j], j, 0, 0.0); \
    st = lse_block_##SFX(st, 0, part);                                                             \
    if (blockDim.x == 32) {                                                                        \
        st.m = __shfl_sync(FULL_MASK, st.m, 0);                                                    \
        st.s = __shfl_sync(FULL_MASK, st.s, 0);                                                    \
    } else {                                                                                       \
        if (threadIdx.x == 0) total = st;                                                          \
        __syncthreads();                                                                           \
        st = total;                                                                                \
    }                                                                                              \
    softmax_write_##SFX(log_, st, p, y + r * n, n, threadIdx.x, blockDim.x, 1);                    \
}                                                                                                  \
static __global__ void __launch_bounds__(RED_THREADS)                                              \
softmax_cols_##SFX(int log_, long long outer, long long n, long long inner, const T *__restrict__ x, \
                   T *__restrict__ y)                                                              \
{                                                                                                  \
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;                                \
    if (k >= outer * inner) return;                                                                \
    long long o = k / inner, i = k - o * inner;                                                    \
    const T *p = x + o * n * inner + i;                                                            \
    lse_state_##SFX st = lse_init_##SFX();                                                         \
    for (long long j = 0; j < n; j++) lse_accum_##SFX(&st, p[j * inner], j, 0, 0.0);               \
    softmax_write_##SFX(log_, st, p, y + o * n * inner + i, n, 0, 1, inner);                       \
}                                                                                                  \
static __device__ __forceinline__ void softmax_backward_write_##SFX(int log_, double s, const T *py, \
                                                                    const T *pg, T *q, long long n, \
                                                                    long long first, long long step, \
                                                                    long long stride)              \
{                                                                                                  \
    T st = (T)s;                                                                                   \
    if (log_) {                                                                                    \
        for (long long j = first; j < n; j += step)                                                \
            q[j * stride] = pg[j * stride] - EXP(py[j * stride]) * st;                             \
    } else {                                                                                       \
        for (long long j = first; j < n; j += step)                                                \
            q[j * stride] = py[j * stride] * (pg[j * stride] - st);                                \
    }                                                                                              \
}                                                                                                  \
static __global__ void __launch_bounds__(RED_THREADS)                                              \
softmax_backward_rows_##SFX(int log_, long long rows, long long n, const T *__restrict__ y,         \
                            const T *__restrict__ dy, T *__restrict__ dx)                          \
{                                                                                                  \
    __shared__ sum_state_f64 part[RED_THREADS / 32];                                               \
    __shared__ double total;                                                                       \
    long long r = (long long)blockIdx.x * blockDim.y + threadIdx.y;                                \
    if (r >= rows) return;                                                                         \
    const T *py = y + r * n, *pg = dy + r * n;                                                     \
    sum_state_f64 st = sum_init_f64();                                                             \
    if (log_) for (long long j = threadIdx.x; j < n; j += blockDim.x) st.s += (double)pg[j];       \
    else for (long long j = threadIdx.x; j < n; j += blockDim.x) st.s += (double)pg[j] * (double)py[j]; \
    st = sum_block_f64(st, MT_REDUCE_SUM, part);                                                   \
    double s;                                                                                      \
    if (blockDim.x == 32) {                                                                        \
        s = __shfl_sync(FULL_MASK, st.s, 0);                                                       \
    } else {                                                                                       \
        if (threadIdx.x == 0) total = st.s;                                                        \
        __syncthreads();                                                                           \
        s = total;                                                                                 \
    }                                                                                              \
    softmax_backward_write_##SFX(log_, s, py, pg, dx + r * n, n, threadIdx.x, blockDim.x, 1);      \
}                                                                                                  \
static __global__ void __launch_bounds__(RED_THREADS)                                              \
softmax_backward_cols_##SFX(int log_, long long outer, long long n, long long inner,               \
                            const T *__restrict__ y, const T *__restrict__ dy, T *__restrict__ dx) \
{                                                                                                  \
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;                                \
    if (k >= outer * inner) return;                                                                \
    long long o = k / inner, i = k - o * inner, base = o * n * inner + i;                          \
    double s = 0;                                                                                  \
    if (log_) for (long long j = 0; j < n; j++) s += (double)dy[base + j * inner];                 \
    else for (long long j = 0; j < n; j++) s += (double)dy[base + j * inner] * (double)y[base + j * inner]; \
    softmax_backward_write_##SFX(log_, s, y + base, dy + base, dx + base, n, 0, 1, inner);         \
}

DEFINE_SOFTMAX(float, f32, expf)
DEFINE_SOFTMAX(double, f64, exp)

/* ================================================================ host side */

/* How a reduction over [outer, n, inner] is laid out on the grid (see the
   kernels above). */
typedef struct reduce_plan {
    long long outer, n, inner, outputs;
    long long chunk;       /* elements of the reduced axis per part */
    unsigned blocks;       /* grid.x */
    unsigned parts;        /* grid.y: chunks per output (1: no second pass) */
    unsigned tpr, rpb;     /* block (tpr, rpb) */
} reduce_plan;

static long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

/* Block shape of a per-row kernel: a warp per row for short rows, else a block. */
static void row_block(long long n, unsigned *tpr, unsigned *rpb)
{
    *tpr = n <= RED_SHORT_ROW ? 32u : (unsigned)RED_THREADS;
    *rpb = n <= RED_SHORT_ROW ? (unsigned)RED_WARP_ROWS : 1u;
}

/* Block size of a per-column kernel: 256, or fewer (a multiple of 32) for few columns. */
static unsigned col_block(long long columns)
{
    return columns >= RED_THREADS ? (unsigned)RED_THREADS : (unsigned)(ceil_div(columns, 32) * 32);
}

/* false when the grid would be too large. */
static bool reduce_plan_for(reduce_plan *p, long long outer, long long n, long long inner)
{
    p->outer = outer;
    p->n = n;
    p->inner = inner;
    p->outputs = outer * inner;
    long long blocks, parts = 1;
    if (inner == 1) {
        row_block(n, &p->tpr, &p->rpb);
        blocks = ceil_div(outer, p->rpb);
        if (blocks < RED_TARGET_BLOCKS) {   /* few rows: split long ones */
            long long by_gpu = ceil_div(RED_TARGET_BLOCKS, blocks), by_len = n / RED_ROW_CHUNK_MIN;
            parts = by_gpu < by_len ? by_gpu : by_len;
        }
    } else {
        p->tpr = col_block(p->outputs);
        p->rpb = 1;
        blocks = ceil_div(p->outputs, p->tpr);
        if (p->outputs < RED_TARGET_THREADS) {   /* few columns: split long ones */
            long long by_gpu = ceil_div(RED_TARGET_THREADS, p->outputs), by_len = n / RED_COL_CHUNK_MIN;
            parts = by_gpu < by_len ? by_gpu : by_len;
        }
    }
    if (parts < 1) parts = 1;
    if (parts > RED_MAX_PARTS) parts = RED_MAX_PARTS;
    p->chunk = ceil_div(n, parts);
    parts = ceil_div(n, p->chunk);   /* no empty chunk */
    if (blocks > 2147483647LL) return false;
    p->blocks = (unsigned)blocks;
    p->parts = (unsigned)parts;
    return true;
}

/* FAM_run_SFX: the kernels of one family and dtype for plan p, on stream;
   partials: p->parts * p->outputs states when p->parts > 1. */
#define DEFINE_REDUCE_RUN(FAM, T, SFX)                                                             \
static_assert(sizeof(FAM##_state_##SFX) <= RED_STATE_MAX, "RED_STATE_MAX is too small");          \
static cudaError_t FAM##_run_##SFX(const reduce_plan *p, int kind, const void *x, void *out,       \
                                   double param, const double *aux, void *partials,                \
                                   cudaStream_t stream)                                            \
{                                                                                                  \
    FAM##_state_##SFX *part = (FAM##_state_##SFX *)partials;                                       \
    const T *xt = (const T *)x;                                                                    \
    dim3 grid(p->blocks, p->parts), block(p->tpr, p->rpb);                                         \
    if (p->inner == 1)                                                                             \
        MT_LAUNCH(FAM##_rows_##SFX, grid, block, 0, stream, kind, p->outer, p->n, p->chunk, xt, out, \
                  param, aux, part);                                                               \
    else                                                                                           \
        MT_LAUNCH(FAM##_cols_##SFX, grid, block, 0, stream, kind, p->outer, p->n, p->inner, p->chunk, \
                  xt, out, param, aux, part);                                                      \
    cudaError_t e = cudaGetLastError();                                                            \
    if (e != cudaSuccess || p->parts == 1) return e;                                               \
    const FAM##_state_##SFX *cpart = part;                                                         \
    int parts = (int)p->parts;                                                                     \
    unsigned fin_blocks = (unsigned)ceil_div(p->outputs, RED_THREADS);                             \
    MT_LAUNCH(FAM##_finish_##SFX, fin_blocks, RED_THREADS, 0, stream, kind, p->outputs, p->n, parts, \
              cpart, out, param, aux);                                                             \
    return cudaGetLastError();                                                                     \
}

DEFINE_REDUCE_RUN(sum, float, f32)
DEFINE_REDUCE_RUN(sum, double, f64)
DEFINE_REDUCE_RUN(sum, int32_t, i32)
DEFINE_REDUCE_RUN(sum, int64_t, i64)
DEFINE_REDUCE_RUN(sum, uint8_t, u8)
DEFINE_REDUCE_RUN(ext, float, f32)
DEFINE_REDUCE_RUN(ext, double, f64)
DEFINE_REDUCE_RUN(ext, int32_t, i32)
DEFINE_REDUCE_RUN(ext, int64_t, i64)
DEFINE_REDUCE_RUN(ext, uint8_t, u8)
DEFINE_REDUCE_RUN(dev, float, f32)
DEFINE_REDUCE_RUN(dev, double, f64)
DEFINE_REDUCE_RUN(lse, float, f32)
DEFINE_REDUCE_RUN(lse, double, f64)

/* RUN_BY_DTYPE: a float-only family (dev, lse) for dtype; run_sum, run_ext: any dtype. */
#define RUN_BY_DTYPE(FAM, dtype, ...)                                                              \
    ((dtype) == MT_F32 ? FAM##_run_f32(__VA_ARGS__) : (dtype) == MT_F64 ? FAM##_run_f64(__VA_ARGS__) \
                                                                        : cudaErrorInvalidValue)
static cudaError_t run_sum(mt_dtype dtype, const reduce_plan *p, int kind, const void *x, void *out, double param,
                           const double *aux, void *partials, cudaStream_t stream)
{
    switch (dtype) {
    case MT_F32: return sum_run_f32(p, kind, x, out, param, aux, partials, stream);
    case MT_F64: return sum_run_f64(p, kind, x, out, param, aux, partials, stream);
    case MT_I32: return sum_run_i32(p, kind, x, out, param, aux, partials, stream);
    case MT_I64: return sum_run_i64(p, kind, x, out, param, aux, partials, stream);
    case MT_U8: case MT_BOOL: return sum_run_u8(p, kind, x, out, param, aux, partials, stream);
    default: return cudaErrorInvalidValue;
    }
}
static cudaError_t run_ext(mt_dtype dtype, const reduce_plan *p, int kind, const void *x, void *out, double param,
                           const double *aux, void *partials, cudaStream_t stream)
{
    switch (dtype) {
    case MT_F32: return ext_run_f32(p, kind, x, out, param, aux, partials, stream);
    case MT_F64: return ext_run_f64(p, kind, x, out, param, aux, partials, stream);
    case MT_I32: return ext_run_i32(p, kind, x, out, param, aux, partials, stream);
    case MT_I64: return ext_run_i64(p, kind, x, out, param, aux, partials, stream);
    case MT_U8: case MT_BOOL: return ext_run_u8(p, kind, x, out, param, aux, partials, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" mt_status MT_CUDA_FN(reduce)(mt_reduce_kind kind, mt_dtype dtype, int64_t outer, int64_t n,
                                        int64_t inner, const void *x, void *out, double param)
{
    cudaStream_t stream = MT_STREAM();
    if ((int)kind < 0 || kind >= MT_REDUCE_KIND_COUNT) return MT_ERR_ARGUMENT;
    bool is_float = dtype == MT_F32 || dtype == MT_F64;
    bool known = is_float || dtype == MT_I32 || dtype == MT_I64 || dtype == MT_U8 || dtype == MT_BOOL;
    if (!known || (!is_float && (kind == MT_REDUCE_VAR || kind == MT_REDUCE_LOGSUMEXP))) return MT_ERR_UNSUPPORTED;
    if (outer <= 0 || n <= 0 || inner <= 0) return MT_OK;   /* nothing to reduce (the engine fills n == 0) */
    reduce_plan p;
    if (!reduce_plan_for(&p, outer, n, inner)) return MT_ERR_ARGUMENT;   /* a grid too large */
    /* scratch: var's means (double per output), then the parts' states */
    size_t mean_bytes = kind == MT_REDUCE_VAR ? (size_t)ceil_div(p.outputs * (long long)sizeof(double), 256) * 256 : 0;
    size_t part_bytes = p.parts > 1 ? (size_t)p.parts * (size_t)p.outputs * RED_STATE_MAX : 0;
    void *scratch = NULL;
    if (mean_bytes + part_bytes > 0) {
        scratch = MT_CUDA_FN(scratch_alloc)(mean_bytes + part_bytes);
        if (!scratch) return MT_ERR_MEMORY;   /* the allocator has said why */
    }
    double *mean = (double *)scratch;
    const double *no_aux = NULL;
    void *partials = part_bytes ? (char *)scratch + mean_bytes : NULL;
    cudaError_t e;
    switch (kind) {
    case MT_REDUCE_SUM: case MT_REDUCE_MEAN:
        e = run_sum(dtype, &p, kind, x, out, param, no_aux, partials, stream);
        break;
    case MT_REDUCE_VAR:   /* mean into scratch, then the squared deviations from it */
        e = run_sum(dtype, &p, kind, x, mean, param, no_aux, partials, stream);
        if (e == cudaSuccess) e = RUN_BY_DTYPE(dev, dtype, &p, kind, x, out, param, mean, partials, stream);
        break;
    case MT_REDUCE_LOGSUMEXP:
        e = RUN_BY_DTYPE(lse, dtype, &p, kind, x, out, param, no_aux, partials, stream);
        break;
    default:   /* max, min, argmax, argmin */
        e = run_ext(dtype, &p, kind, x, out, param, no_aux, partials, stream);
        break;
    }
    if (scratch) MT_CUDA_FN(scratch_free)(scratch, mean_bytes + part_bytes);
    return e == cudaSuccess ? MT_OK : mt_cuda_fail("cuda reduce kernel", e);
}

extern "C" mt_status MT_CUDA_FN(softmax)(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                                         const void *x, void *y)
{
    cudaStream_t stream = MT_STREAM();
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (outer <= 0 || n <= 0 || inner <= 0) return MT_OK;
    int log_ = log ? 1 : 0;
    long long rows = outer, cols = (long long)outer * inner;
    if (inner == 1) {
        unsigned tpr, rpb;
        row_block(n, &tpr, &rpb);
        long long blocks = ceil_div(rows, rpb);
        if (blocks > 2147483647LL) return MT_ERR_ARGUMENT;   /* a grid too large */
        dim3 grid((unsigned)blocks), block(tpr, rpb);
        if (dtype == MT_F32)
            MT_LAUNCH(softmax_rows_f32, grid, block, 0, stream, log_, rows, (long long)n, (const float *)x, (float *)y);
        else
            MT_LAUNCH(softmax_rows_f64, grid, block, 0, stream, log_, rows, (long long)n, (const double *)x, (double *)y);
    } else {
        unsigned threads = col_block(cols);
        long long blocks = ceil_div(cols, threads);
        if (blocks > 2147483647LL) return MT_ERR_ARGUMENT;
        if (dtype == MT_F32)
            MT_LAUNCH(softmax_cols_f32, (unsigned)blocks, threads, 0, stream, log_, (long long)outer, (long long)n,
                      (long long)inner, (const float *)x, (float *)y);
        else
            MT_LAUNCH(softmax_cols_f64, (unsigned)blocks, threads, 0, stream, log_, (long long)outer, (long long)n,
                      (long long)inner, (const double *)x, (double *)y);
    }
    return mt_cuda_launch_status("cuda softmax kernel");
}

extern "C" mt_status MT_CUDA_FN(softmax_backward)(bool log, mt_dtype dtype, int64_t outer, int64_t n,
                                                  int64_t inner, const void *y, const void *dy, void *dx)
{
    cudaStream_t stream = MT_STREAM();
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (outer <= 0 || n <= 0 || inner <= 0) return MT_OK;
    int log_ = log ? 1 : 0;
    long long rows = outer, cols = (long long)outer * inner;
    if (inner == 1) {
        unsigned tpr, rpb;
        row_block(n, &tpr, &rpb);
        long long blocks = ceil_div(rows, rpb);
        if (blocks > 2147483647LL) return MT_ERR_ARGUMENT;   /* a grid too large */
        dim3 grid((unsigned)blocks), block(tpr, rpb);
        if (dtype == MT_F32)
            MT_LAUNCH(softmax_backward_rows_f32, grid, block, 0, stream, log_, rows, (long long)n, (const float *)y,
                      (const float *)dy, (float *)dx);
        else
            MT_LAUNCH(softmax_backward_rows_f64, grid, block, 0, stream, log_, rows, (long long)n, (const double *)y,
                      (const double *)dy, (double *)dx);
    } else {
        unsigned threads = col_block(cols);
        long long blocks = ceil_div(cols, threads);
        if (blocks > 2147483647LL) return MT_ERR_ARGUMENT;
        if (dtype == MT_F32)
            MT_LAUNCH(softmax_backward_cols_f32, (unsigned)blocks, threads, 0, stream, log_, (long long)outer,
                      (long long)n, (long long)inner, (const float *)y, (const float *)dy, (float *)dx);
        else
            MT_LAUNCH(softmax_backward_cols_f64, (unsigned)blocks, threads, 0, stream, log_, (long long)outer,
                      (long long)n, (long long)inner, (const double *)y, (const double *)dy, (double *)dx);
    }
    return mt_cuda_launch_status("cuda softmax_backward kernel");
}
