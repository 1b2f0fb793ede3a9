/*
 * norm.cu - batch normalization over x of shape [n, c, l] (contiguous), one
 * set of statistics per channel over its m = n * l values; the CUDA
 * counterpart of kernels/cpu/norm.c, with the same formulas in the same
 * precision:
 *
 *   training: mean = (1/m) sum x,  var = (1/m) sum (x - mean)^2   (two passes)
 *             running_mean = (1 - momentum) running_mean + momentum mean
 *             running_var  = (1 - momentum) running_var + momentum var m / (m - 1)
 *   eval:     mean = running_mean,  var = running_var
 *   invstd = 1 / sqrt(var + eps),   scale = weight invstd,  shift = bias - mean scale
 *   y = x scale + shift
 *
 * Backward, with xhat = (x - mean) invstd:
 *   dweight = sum dy xhat,  dbias = sum dy
 *   dx = weight invstd (dy - mean(dy) - xhat mean(dy xhat))    (training)
 *   dx = weight invstd dy                                      (eval)
 *
 * Every sum is accumulated in double, f32 and f64 alike (as on the CPU),
 * and reduced deterministically: each thread sums a fixed subset of the
 * channel's values, then a fixed tree combines the threads (warp shuffles
 * and a shared-memory step, or a shared-memory tree). No atomics, so the
 * same input gives the same bits on every run.
 *
 * Two thread mappings:
 *   - l > 1 ([N, C, L], e.g. BatchNorm2d): one block per channel, of B
 *     threads (a power of 2 from 32 to BN_THREADS, no more than the m
 *     values need). Thread t walks the channel's flat indices k = t, t + B,
 *     ... (k = i l + j: sample i, position j); consecutive threads read
 *     consecutive positions of a run of l values, so reads coalesce.
 *   - l == 1 ([N, C], BatchNorm1d): the channels are the fast axis, so a
 *     block is 2-d: threadIdx.x along bx consecutive channels (coalesced
 *     rows), threadIdx.y along the samples (the reduction), bx * by <=
 *     BN_THREADS, both powers of 2.
 * Each block computes its channels' statistics and then, in the same kernel,
 * the elementwise pass over them (y, or dx), so the statistics never leave
 * registers and shared memory: the scale and shift are formed in double from
 * the double statistics, exactly as the CPU kernel forms them.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define BN_THREADS 256      /* the most threads per block, both mappings (a power of 2) */
#define FULL_MASK 0xFFFFFFFFu

/* ---------------------------------------------------------------- reductions */

/* Sum of v over the 32 lanes of a full warp; lane 0 gets the total. */
static __device__ __forceinline__ double bn_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL_MASK, v, o);
    return v;
}

/* Sum of v over a 1-d block of blockDim.x threads (a multiple of 32, at most
   1024); every thread gets the total. red: 33 doubles of shared memory.
   Each warp reduces by shuffles, lane 0 stores its warp's sum in red[warp],
   warp 0 reduces those and lane 0 stores the total in red[32]. The second
   barrier publishes red[32]; red[0..31] may be rewritten by the next call as
   soon as it starts, because warp 0 read them before that barrier. */
static __device__ double bn_block_sum(double v, double *red)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = bn_warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = bn_warp_sum(lane < nwarps ? red[lane] : 0.0);
        if (lane == 0) red[32] = v;
    }
    __syncthreads();
    return red[32];
}

/* Sum of v over threadIdx.y of a 2-d block (blockDim.y a power of 2): thread
   (x, y) stores v in red[y bx + x], then a shared-memory tree halves the rows
   until row 0 holds the column sums. Every thread gets its column's total.
   red: blockDim.x * blockDim.y doubles. The last barrier keeps a next call
   from overwriting red[x] before every thread of column x has read it. */
static __device__ double bn_column_sum(double v, double *red)
{
    int bx = blockDim.x, x = threadIdx.x, y = threadIdx.y;
    red[y * bx + x] = v;
    __syncthreads();
    for (int s = blockDim.y >> 1; s > 0; s >>= 1) {
        if (y < s) red[y * bx + x] += red[(y + s) * bx + x];
        __syncthreads();
    }
    double total = red[x];
    __syncthreads();
    return total;
}

/* ---------------------------------------------------------------- walking one channel of [n, c, l] */

/* Thread t's walk over channel ch's flat indices k = t, t + B, t + 2B, ...
   (k = i l + j), as offsets at = (i c + ch) l + j into x, without a division
   per step: advancing k by B advances i by B / l and j by B % l, plus one
   more sample when j wraps past l. */
typedef struct bn_walk {
    int64_t at, j;             /* the current offset and position j */
    int64_t l, step_at, step_j, wrap;
} bn_walk;

static __device__ __forceinline__ bn_walk bn_walk_begin(int64_t t, int64_t B, int64_t c, int64_t l, int64_t ch)
{
    bn_walk w;
    int64_t i = t / l;
    w.j = t - i * l;
    w.at = (i * c + ch) * l + w.j;
    w.l = l;
    w.step_j = B % l;
    w.step_at = (B / l) * c * l + w.step_j;
    w.wrap = c * l - l;        /* j -= l, i += 1 */
    return w;
}

static __device__ __forceinline__ void bn_walk_next(bn_walk *w)
{
    w->at += w->step_at;
    w->j += w->step_j;
    if (w->j >= w->l) { w->j -= w->l; w->at += w->wrap; }
}

/* ---------------------------------------------------------------- kernels, for T = float and double */

/*
 * bn_forward_channel_<T>: grid c blocks x B threads; block ch
 * normalizes channel ch of x [n, c, l] (l > 1).
 *   training: s = sum x  -> mean = s / m;  ss = sum (x - mean)^2 -> var = ss / m
 *             (thread 0 updates the running statistics)
 *   eval:     mean, var from the running statistics
 *   thread 0 writes save_mean, save_invstd;  y = x scale + shift (in T).
 *
 * bn_forward_rows_<T>: grid ceil(c / bx) blocks of (bx, by) threads; thread
 * (x, y) of block b serves channel ch = b bx + x of x [n, c] (l == 1) and
 * rows i = y, y + by, ...; the same formulas, with column sums over y.
 * Threads past the last channel take part in the barriers only.
 *
 * bn_backward_channel_<T> / bn_backward_rows_<T>: the same two mappings.
 *   sums (when training or dweight/dbias are wanted):
 *     sdy = sum dy,  sdyx = sum dy (x - mean) invstd   (x - mean in T, as on the CPU)
 *     dweight = sdyx, dbias = sdy
 *   dx (when wanted), k = weight invstd (in T):
 *     training: dx = k (dy - sdy / m - xhat sdyx / m),  xhat = (x - mean) invstd in T
 *     eval:     dx = k dy
 */
#define DEFINE_BN_KERNELS(T, SUFFIX)                                                                          \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
bn_forward_channel_##SUFFIX(int64_t n, int64_t c, int64_t l, const T *x, const T *weight, const T *bias,      \
                            T *running_mean, T *running_var, int training, double momentum, double eps,       \
                            T *y, T *save_mean, T *save_invstd)                                               \
{                                                                                                             \
    __shared__ double red[33];                                                                                \
    int64_t ch = blockIdx.x, B = blockDim.x, t = threadIdx.x, m = n * l;                                      \
    double dm = (double)m, mean, var;                                                                         \
    if (training) {                                                                                           \
        double s = 0.0, ss = 0.0;                                                                             \
        bn_walk w = bn_walk_begin(t, B, c, l, ch);                                                            \
        for (int64_t k = t; k < m; k += B, bn_walk_next(&w)) s += x[w.at];                                    \
        mean = bn_block_sum(s, red) / dm;                                                                     \
        w = bn_walk_begin(t, B, c, l, ch);                                                                    \
        for (int64_t k = t; k < m; k += B, bn_walk_next(&w)) { double d = x[w.at] - mean; ss += d * d; }      \
        var = bn_block_sum(ss, red) / dm;                                                                     \
        if (t == 0) {                                                                                         \
            if (running_mean) running_mean[ch] = (T)((1 - momentum) * running_mean[ch] + momentum * mean);    \
            if (running_var)                                                                                  \
                running_var[ch] = (T)((1 - momentum) * running_var[ch] +                                      \
                                      momentum * (dm > 1 ? var * dm / (dm - 1) : var));                       \
        }                                                                                                     \
    } else {                                                                                                  \
        mean = running_mean[ch];                                                                              \
        var = running_var[ch];                                                                                \
    }                                                                                                         \
    double invstd = 1.0 / sqrt(var + eps);                                                                    \
    if (t == 0) { save_mean[ch] = (T)mean; save_invstd[ch] = (T)invstd; }                                    \
    T scale = (T)(invstd * (weight ? weight[ch] : (T)1));                                                     \
    T shift = (T)((bias ? bias[ch] : (T)0) - mean * scale);                                                   \
    bn_walk w = bn_walk_begin(t, B, c, l, ch);                                                                \
    for (int64_t k = t; k < m; k += B, bn_walk_next(&w)) y[w.at] = x[w.at] * scale + shift;                  \
}                                                                                                             \
                                                                                                              \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
bn_forward_rows_##SUFFIX(int64_t n, int64_t c, const T *x, const T *weight, const T *bias,                    \
                         T *running_mean, T *running_var, int training, double momentum, double eps,          \
                         T *y, T *save_mean, T *save_invstd)                                                  \
{                                                                                                             \
    __shared__ double red[BN_THREADS];                                                                        \
    int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, by = blockDim.y;                             \
    bool valid = ch < c;                                                                                      \
    double dm = (double)n, mean = 0.0, var = 0.0;                                                             \
    if (training) {                                                                                           \
        double s = 0.0, ss = 0.0;                                                                             \
        if (valid)                                                                                            \
            for (int64_t i = threadIdx.y; i < n; i += by) s += x[i * c + ch];                                 \
        mean = bn_column_sum(s, red) / dm;                                                                    \
        if (valid)                                                                                            \
            for (int64_t i = threadIdx.y; i < n; i += by) { double d = x[i * c + ch] - mean; ss += d * d; }   \
        var = bn_column_sum(ss, red) / dm;                                                                    \
        if (valid && threadIdx.y == 0) {                                                                      \
            if (running_mean) running_mean[ch] = (T)((1 - momentum) * running_mean[ch] + momentum * mean);    \
            if (running_var)                                                                                  \
                running_var[ch] = (T)((1 - momentum) * running_var[ch] +                                      \
                                      momentum * (dm > 1 ? var * dm / (dm - 1) : var));                       \
        }                                                                                                     \
    } else if (valid) {                                                                                       \
        mean = running_mean[ch];                                                                              \
        var = running_var[ch];                                                                                \
    }                                                                                                         \
    if (!valid) return;                                                                                       \
    double invstd = 1.0 / sqrt(var + eps);                                                                    \
    if (threadIdx.y == 0) { save_mean[ch] = (T)mean; save_invstd[ch] = (T)invstd; }                          \
    T scale = (T)(invstd * (weight ? weight[ch] : (T)1));                                                     \
    T shift = (T)((bias ? bias[ch] : (T)0) - mean * scale);                                                   \
    for (int64_t i = threadIdx.y; i < n; i += by) y[i * c + ch] = x[i * c + ch] * scale + shift;             \
}                                                                                                             \
                                                                                                              \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
bn_backward_channel_##SUFFIX(int64_t n, int64_t c, int64_t l, const T *x, const T *dy, const T *weight,       \
                             const T *save_mean, const T *save_invstd, int training, int need_sums,           \
                             T *dx, T *dweight, T *dbias)                                                     \
{                                                                                                             \
    __shared__ double red[33];                                                                                \
    int64_t ch = blockIdx.x, B = blockDim.x, t = threadIdx.x, m = n * l;                                      \
    T mean = save_mean[ch], invstd = save_invstd[ch];                                                         \
    double sdy = 0.0, sdyx = 0.0;                                                                             \
    if (need_sums) {                                                                                          \
        bn_walk w = bn_walk_begin(t, B, c, l, ch);                                                            \
        for (int64_t k = t; k < m; k += B, bn_walk_next(&w)) {                                                \
            double g = dy[w.at];                                                                              \
            T d = x[w.at] - mean;                                                                             \
            sdy += g;                                                                                         \
            sdyx += g * d * invstd;                                                                           \
        }                                                                                                     \
        sdy = bn_block_sum(sdy, red);                                                                         \
        sdyx = bn_block_sum(sdyx, red);                                                                       \
        if (t == 0) {                                                                                         \
            if (dweight) dweight[ch] = (T)sdyx;                                                               \
            if (dbias) dbias[ch] = (T)sdy;                                                                    \
        }                                                                                                     \
    }                                                                                                         \
    if (!dx) return;                                                                                          \
    T k = (weight ? weight[ch] : (T)1) * invstd;                                                              \
    T mdy = (T)(sdy / (double)m), mdyx = (T)(sdyx / (double)m);                                               \
    bn_walk w = bn_walk_begin(t, B, c, l, ch);                                                                \
    for (int64_t e = t; e < m; e += B, bn_walk_next(&w)) {                                                    \
        if (training) {                                                                                       \
            T xhat = (x[w.at] - mean) * invstd;                                                               \
            dx[w.at] = k * (dy[w.at] - mdy - xhat * mdyx);                                                    \
        } else {                                                                                              \
            dx[w.at] = k * dy[w.at];                                                                          \
        }                                                                                                     \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
bn_backward_rows_##SUFFIX(int64_t n, int64_t c, const T *x, const T *dy, const T *weight,                     \
                          const T *save_mean, const T *save_invstd, int training, int need_sums,              \
                          T *dx, T *dweight, T *dbias)                                                        \
{                                                                                                             \
    __shared__ double red[BN_THREADS];                                                                        \
    int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, by = blockDim.y;                             \
    bool valid = ch < c;                                                                                      \
    T mean = valid ? save_mean[ch] : (T)0, invstd = valid ? save_invstd[ch] : (T)0;                           \
    double sdy = 0.0, sdyx = 0.0;                                                                             \
    if (need_sums) {                                                                                          \
        if (valid)                                                                                            \
            for (int64_t i = threadIdx.y; i < n; i += by) {                                                   \
                double g = dy[i * c + ch];                                                                    \
                T d = x[i * c + ch] - mean;                                                                   \
                sdy += g;                                                                                     \
                sdyx += g * d * invstd;                                                                       \
            }                                                                                                 \
        sdy = bn_column_sum(sdy, red);                                                                        \
        sdyx = bn_column_sum(sdyx, red);                                                                      \
        if (valid && threadIdx.y == 0) {                                                                      \
            if (dweight) dweight[ch] = (T)sdyx;                                                               \
            if (dbias) dbias[ch] = (T)sdy;                                                                    \
        }                                                                                                     \
    }                                                                                                         \
    if (!valid || !dx) return;                                                                                \
    T k = (weight ? weight[ch] : (T)1) * invstd;                                                              \
    T mdy = (T)(sdy / (double)n), mdyx = (T)(sdyx / (double)n);                                               \
    for (int64_t i = threadIdx.y; i < n; i += by) {                                                           \
        int64_t at = i * c + ch;                                                                              \
        if (training) {                                                                                       \
            T xhat = (x[at] - mean) * invstd;                                                                 \
            dx[at] = k * (dy[at] - mdy - xhat * mdyx);                                                        \
        } else {                                                                                              \
            dx[at] = k * dy[at];                                                                              \
        }                                                                                                     \
    }                                                                                                         \
}

DEFINE_BN_KERNELS(float, f32)
DEFINE_BN_KERNELS(double, f64)

/* ---------------------------------------------------------------- host wrappers */

/* The 2-d block of the l == 1 kernels: bx = the smallest power of 2 >= c, at
   most 32 (a warp reads bx consecutive channels of a row); by = the smallest
   power of 2 >= n, at most BN_THREADS / bx rows (a power of 2, as
   bn_column_sum needs): no idle rows of threads for a small batch. */
static dim3 bn_rows_block(int64_t n, int64_t c)
{
    unsigned bx = 1, by = 1;
    while (bx < 32 && (int64_t)bx < c) bx <<= 1;
    while (by < BN_THREADS / bx && (int64_t)by < n) by <<= 1;
    return dim3(bx, by);
}

/* Threads of the l > 1 kernels: the smallest power of 2 >= m = n l, from 32
   (bn_block_sum works on whole warps) to BN_THREADS. */
static unsigned bn_channel_threads(int64_t m)
{
    unsigned t = 32;
    while (t < BN_THREADS && (int64_t)t < m) t <<= 1;
    return t;
}

mt_status MT_CUDA_FN(batch_norm_forward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x,
                                         const void *weight, const void *bias, void *running_mean,
                                         void *running_var, bool training, double momentum, double eps,
                                         void *y, void *save_mean, void *save_invstd)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (c <= 0) return MT_OK;
    if (l <= 0) { n = 0; l = 1; }   /* no values: the statistics alone (the rows kernel, with no rows) */
    cudaStream_t stream = MT_STREAM();
    int tr = training ? 1 : 0;
    if (l == 1) {
        dim3 block = bn_rows_block(n, c);
        unsigned grid = (unsigned)((c + block.x - 1) / block.x);
        if (dtype == MT_F32)
            MT_LAUNCH(bn_forward_rows_f32, grid, block, 0, stream, n, c, (const float *)x, (const float *)weight,
                      (const float *)bias, (float *)running_mean, (float *)running_var, tr, momentum, eps,
                      (float *)y, (float *)save_mean, (float *)save_invstd);
        else
            MT_LAUNCH(bn_forward_rows_f64, grid, block, 0, stream, n, c, (const double *)x, (const double *)weight,
                      (const double *)bias, (double *)running_mean, (double *)running_var, tr, momentum, eps,
                      (double *)y, (double *)save_mean, (double *)save_invstd);
    } else {
        unsigned grid = (unsigned)c, block = bn_channel_threads(n * l);
        if (dtype == MT_F32)
            MT_LAUNCH(bn_forward_channel_f32, grid, block, 0, stream, n, c, l, (const float *)x,
                      (const float *)weight, (const float *)bias, (float *)running_mean, (float *)running_var, tr,
                      momentum, eps, (float *)y, (float *)save_mean, (float *)save_invstd);
        else
            MT_LAUNCH(bn_forward_channel_f64, grid, block, 0, stream, n, c, l, (const double *)x,
                      (const double *)weight, (const double *)bias, (double *)running_mean, (double *)running_var,
                      tr, momentum, eps, (double *)y, (double *)save_mean, (double *)save_invstd);
    }
    return mt_cuda_launch_status("cuda batch_norm_forward kernel");
}

mt_status MT_CUDA_FN(batch_norm_backward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x,
                                          const void *dy, const void *weight, const void *save_mean,
                                          const void *save_invstd, bool training, void *dx, void *dweight,
                                          void *dbias)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (c <= 0) return MT_OK;
    if (l <= 0) { n = 0; l = 1; }
    int tr = training ? 1 : 0;
    int need_sums = (dweight || dbias || (training && dx)) ? 1 : 0;
    if (!need_sums && !dx) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    if (l == 1) {
        dim3 block = bn_rows_block(n, c);
        unsigned grid = (unsigned)((c + block.x - 1) / block.x);
        if (dtype == MT_F32)
            MT_LAUNCH(bn_backward_rows_f32, grid, block, 0, stream, n, c, (const float *)x, (const float *)dy,
                      (const float *)weight, (const float *)save_mean, (const float *)save_invstd, tr, need_sums,
                      (float *)dx, (float *)dweight, (float *)dbias);
        else
            MT_LAUNCH(bn_backward_rows_f64, grid, block, 0, stream, n, c, (const double *)x, (const double *)dy,
                      (const double *)weight, (const double *)save_mean, (const double *)save_invstd, tr, need_sums,
                      (double *)dx, (double *)dweight, (double *)dbias);
    } else {
        unsigned grid = (unsigned)c, block = bn_channel_threads(n * l);
        if (dtype == MT_F32)
            MT_LAUNCH(bn_backward_channel_f32, grid, block, 0, stream, n, c, l, (const float *)x,
                      (const float *)dy, (const float *)weight, (const float *)save_mean, (const float *)save_invstd,
                      tr, need_sums, (float *)dx, (float *)dweight, (float *)dbias);
        else
            MT_LAUNCH(bn_backward_channel_f64, grid, block, 0, stream, n, c, l, (const double *)x,
                      (const double *)dy, (const double *)weight, (const double *)save_mean,
                      (const double *)save_invstd, tr, need_sums, (double *)dx, (double *)dweight, (double *)dbias);
    }
    return mt_cuda_launch_status("cuda batch_norm_backward kernel");
}
