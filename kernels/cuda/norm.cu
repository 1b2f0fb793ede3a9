/*
 * norm.cu - the normalization kernels: batch norm (first) and group norm
 * with its one-group case, layer norm (the section at the end, with its own
 * comment).
 *
 * Batch normalization over x of shape [n, c, l] (contiguous), one
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
   more sample when j wraps past l. The sample i is tracked too (group norm's
   weight sums need its statistics; batch norm's kernels ignore it). */
typedef struct bn_walk {
    int64_t at, i, j;          /* the current offset, sample i and position j */
    int64_t l, step_at, step_i, step_j, wrap;
} bn_walk;

static __device__ __forceinline__ bn_walk bn_walk_begin(int64_t t, int64_t B, int64_t c, int64_t l, int64_t ch)
{
    bn_walk w;
    w.i = t / l;
    w.j = t - w.i * l;
    w.at = (w.i * c + ch) * l + w.j;
    w.l = l;
    w.step_i = B / l;
    w.step_j = B % l;
    w.step_at = w.step_i * c * l + w.step_j;
    w.wrap = c * l - l;        /* j -= l, i += 1 */
    return w;
}

static __device__ __forceinline__ void bn_walk_next(bn_walk *w)
{
    w->at += w->step_at;
    w->i += w->step_i;
    w->j += w->step_j;
    if (w->j >= w->l) { w->j -= w->l; w->at += w->wrap; w->i++; }
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

/* ================================================================ group norm and layer norm */
/*
 * x [n, c, l] (contiguous) in G groups of cpg = c / G consecutive channels:
 * row r = (i, g), r = i G + g, is the m = cpg l contiguous values from r m;
 * the value k of a row belongs to channel g cpg + k / l. Layer norm over F
 * features is n = rows, c = F, l = 1, G = 1. The formulas are those of
 * kernels/cpu/norm.c, in the same precision:
 *
 *   statistics (one pass, shifted by the row's first value K, sums in double):
 *     s1 = sum (x - K),  s2 = sum (x - K)^2,  mean = K + s1 / m,
 *     var = max(0, (s2 - s1^2 / m) / m),  rstd = 1 / sqrt(var + eps)
 *   y = (x - mean) (rstd weight[ch]) + bias[ch]          (in T)
 *   backward, g = dy weight[ch]:
 *     sg = sum g,  sgd = sum g (x - mean)                 (double)
 *     dx = rstd (g - sg / m - (x - mean) rstd (rstd sgd / m))
 *     dweight[ch] = sum dy (x - mean) rstd,  dbias[ch] = sum dy   (over samples and positions)
 *
 * Thread mappings of the row kernels (forward, and backward's dx):
 *   - m <= GN_WARP_ROW: a warp per row, GN_WARP_ROWS rows per block (block
 *     (32, GN_WARP_ROWS)); the sums by a shuffle butterfly, which leaves the
 *     total in every lane (no shared memory, no barrier). The hot shape:
 *     ConvNeXt's LayerNorm over 48..384 channels, BENCH's 512 features.
 *   - longer rows: a block per row (bn_channel_threads(m) threads), the sums
 *     by bn_block_sum.
 *   Thread t reads k = t, t + T, ... (consecutive threads, consecutive
 *   values: coalesced) and tracks k's channel without a division per step
 *   (gn_walk).
 *
 * dweight and dbias, deterministically and without atomics, in two kernels:
 *   gn_param_partial: the samples cut into chunks (a fixed size from the
 *     shape); each (chunk, channel) sums its terms in double into scratch
 *     memory laid out [chunk][c] (one buffer for dweight, one for dbias):
 *       l == 1: block (32, 8): 32 consecutive channels of a row (coalesced)
 *               x 8 rows at a time, a shared-memory tree over the 8;
 *       l > 1:  a block per (chunk, channel) walking the chunk's runs of l
 *               values of that channel (bn_walk), bn_block_sum.
 *   gn_param_finish: a thread per channel adds its chunks in chunk order.
 */
#define GN_WARP_ROW 1024         /* rows up to this long get a warp (32 values per lane at most) */
#define GN_WARP_ROWS 8           /* rows per block of the warp mapping */
#define GN_PARAM_ROWS 8          /* rows of threads of the l == 1 partial kernel */
#define GN_CHUNK_ROWS 256        /* samples per chunk of the l == 1 partial sums (at least) */
#define GN_CHUNK_VALUES 16384    /* values per (chunk, channel) of the l > 1 partial sums (about) */
#define GN_MAX_CHUNKS 1024       /* chunks at most: the finish kernel adds them one by one */
#define GN_MAX_GRID_Y 65535      /* the most blocks along grid.y; more channels loop */

/* Sum of v over the 32 lanes of a full warp, in every lane (xor butterfly:
   each step adds the same two values in every lane pair, so all agree). */
static __device__ __forceinline__ double gn_warp_allsum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

/* Thread t's walk over a row's values k = t, t + T, ...: the channel within
   the group cc = k / l and the position j = k % l, without a division per step. */
typedef struct gn_walk {
    int64_t cc, j, l, step_cc, step_j;
} gn_walk;

static __device__ __forceinline__ gn_walk gn_walk_begin(int64_t t, int64_t T, int64_t l)
{
    /* t < T <= 1024: 32-bit divisions (a 64-bit one is a long subroutine);
       for l >= 2^31 - 1 the quotients are 0 and the remainders t and T alike */
    unsigned ut = (unsigned)t, uT = (unsigned)T, ul = l < 0x7FFFFFFF ? (unsigned)l : 0x7FFFFFFFu;
    gn_walk w;
    w.cc = ut / ul;
    w.j = ut % ul;
    w.l = l;
    w.step_cc = uT / ul;
    w.step_j = uT % ul;
    return w;
}

static __device__ __forceinline__ void gn_walk_next(gn_walk *w)
{
    w->cc += w->step_cc;
    w->j += w->step_j;
    if (w->j >= w->l) { w->j -= w->l; w->cc++; }
}

/* The statistics from the row's shifted sums (as gn_row_stats on the CPU). */
static __device__ __forceinline__ void gn_stats(double k, double s1, double s2, int64_t m, double eps, double *mean,
                                                double *rstd)
{
    double mu = m > 0 ? s1 / (double)m : 0.0, var = m > 0 ? (s2 - s1 * mu) / (double)m : 0.0;
    *mean = k + mu;
    *rstd = 1.0 / sqrt((var > 0 ? var : 0.0) + eps);
}

/*
 * Per type T:
 *   gn_row_sums_<T>       thread t's shifted sums over its values of a row
 *   gn_row_write_<T>      thread t's outputs y of a row
 *   gn_row_grad_sums_<T>  thread t's sg, sgd of a row
 *   gn_row_grad_write_<T> thread t's dx of a row
 *   gn_forward_warp_<T>, gn_forward_block_<T>, gn_backward_warp_<T>, gn_backward_block_<T>:
 *                         the row kernels of the two mappings
 *   gn_param_rows_<T>, gn_param_channel_<T>, gn_param_finish_<T>: dweight and dbias
 */
#define DEFINE_GN_KERNELS(T, SUFFIX)                                                                          \
static __device__ __forceinline__ void gn_row_sums_##SUFFIX(const T *xr, int64_t m, int64_t t, int64_t nt,    \
                                                           double k, double *s1, double *s2)                  \
{                                                                                                             \
    double a = 0.0, b = 0.0;                                                                                  \
    for (int64_t e = t; e < m; e += nt) { double d = (double)xr[e] - k; a += d; b += d * d; }                 \
    *s1 = a;                                                                                                  \
    *s2 = b;                                                                                                  \
}                                                                                                             \
                                                                                                              \
static __device__ __forceinline__ void gn_row_write_##SUFFIX(const T *xr, T *yr, int64_t m, int64_t l,       \
                                                            int64_t t, int64_t nt, const T *wr, const T *br,  \
                                                            T mu, T rs)                                       \
{                                                                                                             \
    gn_walk w = gn_walk_begin(t, nt, l);                                                                      \
    for (int64_t e = t; e < m; e += nt, gn_walk_next(&w)) {                                                   \
        T s = wr ? rs * wr[w.cc] : rs;                                                                        \
        yr[e] = (xr[e] - mu) * s + (br ? br[w.cc] : (T)0);                                                    \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
static __device__ __forceinline__ void gn_row_grad_sums_##SUFFIX(const T *xr, const T *gr, int64_t m,         \
                                                                int64_t l, int64_t t, int64_t nt,             \
                                                                const T *wr, T mu, double *sg, double *sgd)   \
{                                                                                                             \
    double a = 0.0, b = 0.0;                                                                                  \
    gn_walk w = gn_walk_begin(t, nt, l);                                                                      \
    for (int64_t e = t; e < m; e += nt, gn_walk_next(&w)) {                                                   \
        T g = wr ? gr[e] * wr[w.cc] : gr[e];                                                                  \
        a += (double)g;                                                                                       \
        b += (double)(g * (xr[e] - mu));                                                                      \
    }                                                                                                         \
    *sg = a;                                                                                                  \
    *sgd = b;                                                                                                 \
}                                                                                                             \
                                                                                                              \
static __device__ __forceinline__ void gn_row_grad_write_##SUFFIX(const T *xr, const T *gr, T *dxr,          \
                                                                 int64_t m, int64_t l, int64_t t, int64_t nt, \
                                                                 const T *wr, T mu, T rs, double sg,          \
                                                                 double sgd)                                  \
{                                                                                                             \
    T mg = (T)(m > 0 ? sg / (double)m : 0.0), mgx = (T)(m > 0 ? sgd * (double)rs / (double)m : 0.0);          \
    gn_walk w = gn_walk_begin(t, nt, l);                                                                      \
    for (int64_t e = t; e < m; e += nt, gn_walk_next(&w)) {                                                   \
        T g = wr ? gr[e] * wr[w.cc] : gr[e];                                                                  \
        dxr[e] = rs * (g - mg - (xr[e] - mu) * rs * mgx);                                                     \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* grid ceil(rows / GN_WARP_ROWS) x block (32, GN_WARP_ROWS): warp y of block b takes row b GN_WARP_ROWS + y */ \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
gn_forward_warp_##SUFFIX(int64_t rows, int64_t m, int64_t l, int64_t groups, int64_t cpg, const T *x,         \
                         const T *weight, const T *bias, double eps, T *y, T *save_mean, T *save_rstd)        \
{                                                                                                             \
    int64_t r = (int64_t)blockIdx.x * blockDim.y + threadIdx.y, lane = threadIdx.x;                           \
    if (r >= rows) return;   /* the whole warp: its shuffles are its own */                                   \
    const T *xr = x + r * m;                                                                                  \
    double k = m > 0 ? (double)xr[0] : 0.0, s1, s2, mean, rstd;                                               \
    gn_row_sums_##SUFFIX(xr, m, lane, 32, k, &s1, &s2);                                                       \
    gn_stats(k, gn_warp_allsum(s1), gn_warp_allsum(s2), m, eps, &mean, &rstd);                                \
    T mu = (T)mean, rs = (T)rstd;                                                                             \
    if (lane == 0) { save_mean[r] = mu; save_rstd[r] = rs; }                                                  \
    int64_t c0 = (r % groups) * cpg;                                                                          \
    gn_row_write_##SUFFIX(xr, y + r * m, m, l, lane, 32, weight ? weight + c0 : NULL,                         \
                          bias ? bias + c0 : NULL, mu, rs);                                                   \
}                                                                                                             \
                                                                                                              \
/* grid rows x block (B): block r takes row r */                                                             \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
gn_forward_block_##SUFFIX(int64_t m, int64_t l, int64_t groups, int64_t cpg, const T *x, const T *weight,     \
                          const T *bias, double eps, T *y, T *save_mean, T *save_rstd)                        \
{                                                                                                             \
    __shared__ double red[33];                                                                                \
    int64_t r = blockIdx.x, t = threadIdx.x, B = blockDim.x;                                                  \
    const T *xr = x + r * m;                                                                                  \
    double k = (double)xr[0], s1, s2, mean, rstd;                                                             \
    gn_row_sums_##SUFFIX(xr, m, t, B, k, &s1, &s2);                                                           \
    s1 = bn_block_sum(s1, red);                                                                               \
    s2 = bn_block_sum(s2, red);                                                                               \
    gn_stats(k, s1, s2, m, eps, &mean, &rstd);                                                                \
    T mu = (T)mean, rs = (T)rstd;                                                                             \
    if (t == 0) { save_mean[r] = mu; save_rstd[r] = rs; }                                                     \
    int64_t c0 = (r % groups) * cpg;                                                                          \
    gn_row_write_##SUFFIX(xr, y + r * m, m, l, t, B, weight ? weight + c0 : NULL, bias ? bias + c0 : NULL,    \
                          mu, rs);                                                                            \
}                                                                                                             \
                                                                                                              \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
gn_backward_warp_##SUFFIX(int64_t rows, int64_t m, int64_t l, int64_t groups, int64_t cpg, const T *x,        \
                          const T *dy, const T *weight, const T *save_mean, const T *save_rstd, T *dx)        \
{                                                                                                             \
    int64_t r = (int64_t)blockIdx.x * blockDim.y + threadIdx.y, lane = threadIdx.x;                           \
    if (r >= rows) return;                                                                                    \
    const T *wr = weight ? weight + (r % groups) * cpg : NULL;                                                \
    T mu = save_mean[r], rs = save_rstd[r];                                                                   \
    double sg, sgd;                                                                                           \
    gn_row_grad_sums_##SUFFIX(x + r * m, dy + r * m, m, l, lane, 32, wr, mu, &sg, &sgd);                      \
    gn_row_grad_write_##SUFFIX(x + r * m, dy + r * m, dx + r * m, m, l, lane, 32, wr, mu, rs,                 \
                               gn_warp_allsum(sg), gn_warp_allsum(sgd));                                      \
}                                                                                                             \
                                                                                                              \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
gn_backward_block_##SUFFIX(int64_t m, int64_t l, int64_t groups, int64_t cpg, const T *x, const T *dy,        \
                           const T *weight, const T *save_mean, const T *save_rstd, T *dx)                    \
{                                                                                                             \
    __shared__ double red[33];                                                                                \
    int64_t r = blockIdx.x, t = threadIdx.x, B = blockDim.x;                                                  \
    const T *wr = weight ? weight + (r % groups) * cpg : NULL;                                                \
    T mu = save_mean[r], rs = save_rstd[r];                                                                   \
    double sg, sgd;                                                                                           \
    gn_row_grad_sums_##SUFFIX(x + r * m, dy + r * m, m, l, t, B, wr, mu, &sg, &sgd);                          \
    sg = bn_block_sum(sg, red);                                                                               \
    sgd = bn_block_sum(sgd, red);                                                                             \
    gn_row_grad_write_##SUFFIX(x + r * m, dy + r * m, dx + r * m, m, l, t, B, wr, mu, rs, sg, sgd);           \
}                                                                                                             \
                                                                                                              \
/* l == 1: grid (chunks, channel tiles) x block (32, GN_PARAM_ROWS); thread (tx, ty) of block (q, b) sums     \
   channel b 32 + tx over the chunk's samples i = q per_chunk + ty, + GN_PARAM_ROWS, ... */                    \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
gn_param_rows_##SUFFIX(int64_t n, int64_t c, int64_t groups, int64_t cpg, int64_t per_chunk, const T *x,      \
                       const T *dy, const T *save_mean, const T *save_rstd, double *part_w, double *part_b)   \
{                                                                                                             \
    __shared__ double red[BN_THREADS];                                                                        \
    int64_t q = blockIdx.x, i0 = q * per_chunk, i1 = i0 + per_chunk < n ? i0 + per_chunk : n;                 \
    int64_t tiles = (c + 31) / 32;                                                                            \
    for (int64_t tile = blockIdx.y; tile < tiles; tile += gridDim.y) {                                        \
        int64_t ch = tile * 32 + threadIdx.x;                                                                 \
        bool valid = ch < c;                                                                                  \
        double sw = 0.0, sb = 0.0;                                                                            \
        if (valid) {                                                                                          \
            int64_t g = ch / cpg;                                                                             \
            for (int64_t i = i0 + threadIdx.y; i < i1; i += blockDim.y) {                                     \
                int64_t r = i * groups + g;                                                                   \
                T gv = dy[i * c + ch];                                                                        \
                sw += (double)(gv * ((x[i * c + ch] - save_mean[r]) * save_rstd[r]));                         \
                sb += (double)gv;                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        sw = bn_column_sum(sw, red);                                                                          \
        sb = bn_column_sum(sb, red);                                                                          \
        if (valid && threadIdx.y == 0) { part_w[q * c + ch] = sw; part_b[q * c + ch] = sb; }                 \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* l > 1: grid (chunks, channels) x block (B); block (q, ch) sums channel ch over the chunk's samples */      \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
gn_param_channel_##SUFFIX(int64_t n, int64_t c, int64_t l, int64_t groups, int64_t cpg, int64_t per_chunk,    \
                          const T *x, const T *dy, const T *save_mean, const T *save_rstd, double *part_w,    \
                          double *part_b)                                                                     \
{                                                                                                             \
    __shared__ double red[33];                                                                                \
    int64_t q = blockIdx.x, i0 = q * per_chunk, i1 = i0 + per_chunk < n ? i0 + per_chunk : n;                 \
    int64_t t = threadIdx.x, B = blockDim.x, count = (i1 - i0) * l;                                           \
    const T *xq = x + i0 * c * l, *gq = dy + i0 * c * l;                                                      \
    for (int64_t ch = blockIdx.y; ch < c; ch += gridDim.y) {                                                  \
        int64_t g = ch / cpg;                                                                                 \
        double sw = 0.0, sb = 0.0;                                                                            \
        bn_walk w = bn_walk_begin(t, B, c, l, ch);                                                            \
        for (int64_t e = t; e < count; e += B, bn_walk_next(&w)) {                                            \
            int64_t r = (i0 + w.i) * groups + g;                                                              \
            T gv = gq[w.at];                                                                                  \
            sw += (double)(gv * ((xq[w.at] - save_mean[r]) * save_rstd[r]));                                  \
            sb += (double)gv;                                                                                 \
        }                                                                                                     \
        sw = bn_block_sum(sw, red);                                                                           \
        sb = bn_block_sum(sb, red);                                                                           \
        if (t == 0) { part_w[q * c + ch] = sw; part_b[q * c + ch] = sb; }                                    \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* a thread per channel: the chunks' sums in chunk order */                                                  \
static __global__ void __launch_bounds__(BN_THREADS)                                                          \
gn_param_finish_##SUFFIX(int64_t chunks, int64_t c, const double *part_w, const double *part_b, T *dweight,   \
                         T *dbias)                                                                            \
{                                                                                                             \
    int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;                                              \
    if (ch >= c) return;                                                                                      \
    double sw = 0.0, sb = 0.0;                                                                                \
    for (int64_t q = 0; q < chunks; q++) { sw += part_w[q * c + ch]; sb += part_b[q * c + ch]; }              \
    if (dweight) dweight[ch] = (T)sw;                                                                         \
    if (dbias) dbias[ch] = (T)sb;                                                                             \
}

DEFINE_GN_KERNELS(float, f32)
DEFINE_GN_KERNELS(double, f64)

/* Launches kernel name##_f32 or name##_f64 by dtype, the pointer arguments cast to T. */
#define GN_LAUNCH(dtype, name, grid, block, ...)                                                              \
    do {                                                                                                      \
        if ((dtype) == MT_F32) { typedef float T; MT_LAUNCH(name##_f32, grid, block, 0, MT_STREAM(), __VA_ARGS__); } \
        else { typedef double T; MT_LAUNCH(name##_f64, grid, block, 0, MT_STREAM(), __VA_ARGS__); }           \
    } while (0)

/* The row kernels' grid and block: a warp per row (GN_WARP_ROWS per block) or a block per row. */
static bool gn_row_launch(int64_t rows, int64_t m, dim3 *grid, dim3 *block)
{
    int64_t blocks = m <= GN_WARP_ROW ? (rows + GN_WARP_ROWS - 1) / GN_WARP_ROWS : rows;
    if (blocks > 0x7FFFFFFF) return false;
    *grid = dim3((unsigned)blocks);
    *block = m <= GN_WARP_ROW ? dim3(32, GN_WARP_ROWS) : dim3(bn_channel_threads(m));
    return true;
}

mt_status MT_CUDA_FN(group_norm_forward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, int64_t groups,
                                         const void *x, const void *weight, const void *bias, double eps, void *y,
                                         void *save_mean, void *save_rstd)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (groups <= 0 || c % groups != 0) return MT_ERR_ARGUMENT;
    int64_t rows = n * groups, cpg = c / groups, m = cpg * (l > 0 ? l : 0);
    if (rows <= 0) return MT_OK;
    dim3 grid, block;
    if (!gn_row_launch(rows, m, &grid, &block)) return MT_ERR_ARGUMENT;
    if (m <= GN_WARP_ROW)
        GN_LAUNCH(dtype, gn_forward_warp, grid, block, rows, m, l > 0 ? l : 1, groups, cpg, (const T *)x,
                  (const T *)weight, (const T *)bias, eps, (T *)y, (T *)save_mean, (T *)save_rstd);
    else
        GN_LAUNCH(dtype, gn_forward_block, grid, block, m, l, groups, cpg, (const T *)x, (const T *)weight,
                  (const T *)bias, eps, (T *)y, (T *)save_mean, (T *)save_rstd);
    return mt_cuda_launch_status("cuda group_norm_forward kernel");
}

mt_status MT_CUDA_FN(group_norm_backward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, int64_t groups,
                                          const void *x, const void *dy, const void *weight, const void *save_mean,
                                          const void *save_rstd, void *dx, void *dweight, void *dbias)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (groups <= 0 || c % groups != 0) return MT_ERR_ARGUMENT;
    if (l < 0) l = 0;
    int64_t rows = n * groups, cpg = c / groups, m = cpg * l;
    if (dx && rows > 0) {
        dim3 grid, block;
        if (!gn_row_launch(rows, m, &grid, &block)) return MT_ERR_ARGUMENT;
        if (m <= GN_WARP_ROW)
            GN_LAUNCH(dtype, gn_backward_warp, grid, block, rows, m, l > 0 ? l : 1, groups, cpg, (const T *)x,
                      (const T *)dy, (const T *)weight, (const T *)save_mean, (const T *)save_rstd, (T *)dx);
        else
            GN_LAUNCH(dtype, gn_backward_block, grid, block, m, l, groups, cpg, (const T *)x, (const T *)dy,
                      (const T *)weight, (const T *)save_mean, (const T *)save_rstd, (T *)dx);
        mt_status st = mt_cuda_launch_status("cuda group_norm_backward kernel");
        if (st != MT_OK) return st;
    }
    if ((!dweight && !dbias) || c <= 0) return MT_OK;

    /* chunks of samples: a fixed size from the shape, at most GN_MAX_CHUNKS of them */
    int64_t per_chunk = l <= 1 ? GN_CHUNK_ROWS : (GN_CHUNK_VALUES + l - 1) / l;
    if (per_chunk * GN_MAX_CHUNKS < n) per_chunk = (n + GN_MAX_CHUNKS - 1) / GN_MAX_CHUNKS;
    int64_t chunks = n > 0 && l > 0 ? (n + per_chunk - 1) / per_chunk : 0;
    size_t part_bytes = (size_t)chunks * (size_t)c * sizeof(double);
    double *part = NULL;
    if (chunks > 0) {
        part = (double *)MT_CUDA_FN(scratch_alloc)(2 * part_bytes);
        if (!part) return MT_ERR_MEMORY;   /* the allocator has said why */
        double *part_w = part, *part_b = part + chunks * c;
        if (l == 1) {
            int64_t tiles = (c + 31) / 32;
            dim3 grid((unsigned)chunks, (unsigned)(tiles < GN_MAX_GRID_Y ? tiles : GN_MAX_GRID_Y));
            GN_LAUNCH(dtype, gn_param_rows, grid, dim3(32, GN_PARAM_ROWS), n, c, groups, cpg, per_chunk,
                      (const T *)x, (const T *)dy, (const T *)save_mean, (const T *)save_rstd, part_w, part_b);
        } else {
            dim3 grid((unsigned)chunks, (unsigned)(c < GN_MAX_GRID_Y ? c : GN_MAX_GRID_Y));
            GN_LAUNCH(dtype, gn_param_channel, grid, dim3(bn_channel_threads(per_chunk * l)), n, c, l, groups, cpg,
                      per_chunk, (const T *)x, (const T *)dy, (const T *)save_mean, (const T *)save_rstd, part_w,
                      part_b);
        }
    }
    unsigned finish_blocks = mt_cuda_grid_1d(c, BN_THREADS, 0x7FFFFFFF);
    GN_LAUNCH(dtype, gn_param_finish, finish_blocks, BN_THREADS, chunks, c, (const double *)part,
              (const double *)(part ? part + chunks * c : NULL), (T *)dweight, (T *)dbias);
    mt_status st = mt_cuda_launch_status("cuda group_norm_backward kernel");
    if (part) MT_CUDA_FN(scratch_free)(part, 2 * part_bytes);
    return st;
}
