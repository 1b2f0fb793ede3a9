/*
 * norm.c - the normalization kernels: batch norm (first) and group norm,
 * whose one-group case is layer norm (second; its own comment below).
 *
 * Batch normalization over x of shape [n, c, l], one set of statistics per
 * channel c over its m = n * l values:
 *
 *   mean = (1/m) sum x,  var = (1/m) sum (x - mean)^2,  invstd = 1 / sqrt(var + eps)
 *   xhat = (x - mean) * invstd,   y = weight * xhat + bias
 *
 * Backward (training, statistics depend on x):
 *   dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
 *   dweight = sum dy * xhat,  dbias = sum dy
 * In eval mode the statistics are constants: dx = weight * invstd * dy.
 *
 * The per-channel temporaries are scratch memory (mt_cpu_scratch_alloc):
 * when it cannot be had, the kernel writes nothing and returns MT_ERR_MEMORY.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <math.h>
#include <string.h>

#define AT(n_, c_, l_) (((n_) * c + (c_)) * l + (l_))

#define DEFINE_BN_FORWARD(T, SUFFIX)                                                        \
static void bn_forward_##SUFFIX(int64_t n, int64_t c, int64_t l, const T *x, const T *w,    \
                                const T *b, T *rmean, T *rvar, bool training, double mom,   \
                                double eps, T *y, T *smean, T *sinvstd)                     \
{                                                                                           \
    double m = (double)(n * l);                                                             \
    _Pragma("omp parallel for if (n * c * l > MT_CPU_PARALLEL_GRAIN)")                      \
    for (int64_t ch = 0; ch < c; ch++) {                                                    \
        double mean, var;                                                                   \
        if (training) {                                                                     \
            double s = 0, ss = 0;                                                           \
            for (int64_t i = 0; i < n; i++)                                                 \
                for (int64_t j = 0; j < l; j++) s += x[AT(i, ch, j)];                       \
            mean = s / m;                                                                   \
            for (int64_t i = 0; i < n; i++)                                                 \
                for (int64_t j = 0; j < l; j++) { double d = x[AT(i, ch, j)] - mean; ss += d * d; } \
            var = ss / m;                                                                   \
            if (rmean) rmean[ch] = (T)((1 - mom) * rmean[ch] + mom * mean);                 \
            if (rvar) rvar[ch] = (T)((1 - mom) * rvar[ch] + mom * (m > 1 ? var * m / (m - 1) : var)); \
        } else {                                                                            \
            mean = rmean[ch];                                                               \
            var = rvar[ch];                                                                 \
        }                                                                                   \
        double invstd = 1.0 / sqrt(var + eps);                                              \
        smean[ch] = (T)mean;                                                                \
        sinvstd[ch] = (T)invstd;                                                            \
        T scale = (T)(invstd * (w ? w[ch] : 1)), shift = (T)((b ? b[ch] : 0) - mean * scale); \
        for (int64_t i = 0; i < n; i++)                                                     \
            for (int64_t j = 0; j < l; j++) y[AT(i, ch, j)] = x[AT(i, ch, j)] * scale + shift; \
    }                                                                                       \
}

/* For l == 1 the channels are the fast axis: walk rows and keep per-channel
   sums (scratch: mean and var in double, scale and shift in T, c of each). */
#define DEFINE_BN_FORWARD_ROWS(T, SUFFIX)                                                   \
static mt_status bn_forward_rows_##SUFFIX(int64_t n, int64_t c, const T *x, const T *w,     \
                                          const T *b, T *rmean, T *rvar, bool training,     \
                                          double mom, double eps, T *y, T *smean, T *sinvstd) \
{                                                                                           \
    size_t scratch_bytes = (size_t)c * (2 * sizeof(double) + 2 * sizeof(T));                \
    double *mean = mt_cpu_scratch_alloc(scratch_bytes);                                     \
    if (!mean) return MT_ERR_MEMORY;                                                        \
    double *var = mean + c;                                                                 \
    T *scale = (T *)(var + c), *shift = scale + c;                                          \
    memset(mean, 0, 2 * (size_t)c * sizeof(double));                                        \
    if (training) {                                                                         \
        for (int64_t i = 0; i < n; i++)                                                     \
            for (int64_t ch = 0; ch < c; ch++) mean[ch] += x[i * c + ch];                   \
        for (int64_t ch = 0; ch < c; ch++) mean[ch] /= (double)n;                           \
        for (int64_t i = 0; i < n; i++)                                                     \
            for (int64_t ch = 0; ch < c; ch++) {                                            \
                double d = x[i * c + ch] - mean[ch];                                        \
                var[ch] += d * d;                                                           \
            }                                                                               \
        for (int64_t ch = 0; ch < c; ch++) {                                                \
            var[ch] /= (double)n;                                                           \
            if (rmean) rmean[ch] = (T)((1 - mom) * rmean[ch] + mom * mean[ch]);             \
            if (rvar) rvar[ch] = (T)((1 - mom) * rvar[ch] + mom * (n > 1 ? var[ch] * n / (n - 1) : var[ch])); \
        }                                                                                   \
    } else {                                                                                \
        for (int64_t ch = 0; ch < c; ch++) { mean[ch] = rmean[ch]; var[ch] = rvar[ch]; }    \
    }                                                                                       \
    for (int64_t ch = 0; ch < c; ch++) {                                                    \
        double invstd = 1.0 / sqrt(var[ch] + eps);                                          \
        smean[ch] = (T)mean[ch];                                                            \
        sinvstd[ch] = (T)invstd;                                                            \
        scale[ch] = (T)(invstd * (w ? w[ch] : 1));                                          \
        shift[ch] = (T)((b ? b[ch] : 0) - mean[ch] * scale[ch]);                            \
    }                                                                                       \
    _Pragma("omp parallel for if (n * c > MT_CPU_PARALLEL_GRAIN)")                          \
    for (int64_t i = 0; i < n; i++)                                                         \
        for (int64_t ch = 0; ch < c; ch++) y[i * c + ch] = x[i * c + ch] * scale[ch] + shift[ch]; \
    mt_cpu_scratch_free(mean, scratch_bytes);                                               \
    return MT_OK;                                                                           \
}

/* Scratch: the per-channel sums of dy and dy * xhat, in double. */
#define DEFINE_BN_BACKWARD(T, SUFFIX)                                                       \
static mt_status bn_backward_##SUFFIX(int64_t n, int64_t c, int64_t l, const T *x, const T *dy, \
                                      const T *w, const T *smean, const T *sinvstd,         \
                                      bool training, T *dx, T *dw, T *db)                   \
{                                                                                           \
    double m = (double)(n * l);                                                             \
    size_t scratch_bytes = 2 * (size_t)c * sizeof(double);                                  \
    double *sum_dy = mt_cpu_scratch_alloc(scratch_bytes);                                   \
    if (!sum_dy) return MT_ERR_MEMORY;                                                      \
    double *sum_dy_xhat = sum_dy + c;                                                       \
    memset(sum_dy, 0, scratch_bytes);                                                       \
    if (l == 1) {   /* rows: channels are the fast axis */                                  \
        for (int64_t i = 0; i < n; i++)                                                     \
            for (int64_t ch = 0; ch < c; ch++) {                                            \
                double g = dy[i * c + ch];                                                  \
                sum_dy[ch] += g;                                                            \
                sum_dy_xhat[ch] += g * (x[i * c + ch] - smean[ch]) * sinvstd[ch];           \
            }                                                                               \
    } else {                                                                                \
        _Pragma("omp parallel for if (n * c * l > MT_CPU_PARALLEL_GRAIN)")                  \
        for (int64_t ch = 0; ch < c; ch++)                                                  \
            for (int64_t i = 0; i < n; i++)                                                 \
                for (int64_t j = 0; j < l; j++) {                                           \
                    double g = dy[AT(i, ch, j)];                                            \
                    sum_dy[ch] += g;                                                        \
                    sum_dy_xhat[ch] += g * (x[AT(i, ch, j)] - smean[ch]) * sinvstd[ch];     \
                }                                                                           \
    }                                                                                       \
    for (int64_t ch = 0; ch < c; ch++) {                                                    \
        if (dw) dw[ch] = (T)sum_dy_xhat[ch];                                                \
        if (db) db[ch] = (T)sum_dy[ch];                                                     \
    }                                                                                       \
    if (dx) {                                                                               \
        _Pragma("omp parallel for if (n * c * l > MT_CPU_PARALLEL_GRAIN)")                  \
        for (int64_t i = 0; i < n; i++)                                                     \
            for (int64_t ch = 0; ch < c; ch++) {                                            \
                T k = (T)((w ? w[ch] : 1) * sinvstd[ch]);                                   \
                T mdy = (T)(sum_dy[ch] / m), mdyx = (T)(sum_dy_xhat[ch] / m);               \
                for (int64_t j = 0; j < l; j++) {                                           \
                    int64_t at = AT(i, ch, j);                                              \
                    if (training) {                                                         \
                        T xhat = (x[at] - smean[ch]) * sinvstd[ch];                         \
                        dx[at] = k * (dy[at] - mdy - xhat * mdyx);                          \
                    } else {                                                                \
                        dx[at] = k * dy[at];                                                \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
    }                                                                                       \
    mt_cpu_scratch_free(sum_dy, scratch_bytes);                                             \
    return MT_OK;                                                                           \
}

DEFINE_BN_FORWARD(float, f32)
DEFINE_BN_FORWARD(double, f64)
DEFINE_BN_FORWARD_ROWS(float, f32)
DEFINE_BN_FORWARD_ROWS(double, f64)
DEFINE_BN_BACKWARD(float, f32)
DEFINE_BN_BACKWARD(double, f64)

mt_status mt_cpu_batch_norm_forward(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x,
                                    const void *weight, const void *bias, void *running_mean, void *running_var,
                                    bool training, double momentum, double eps,
                                    void *y, void *save_mean, void *save_invstd)
{
    if (dtype == MT_F32) {
        if (l == 1) return bn_forward_rows_f32(n, c, x, weight, bias, running_mean, running_var, training, momentum, eps, y, save_mean, save_invstd);
        bn_forward_f32(n, c, l, x, weight, bias, running_mean, running_var, training, momentum, eps, y, save_mean, save_invstd);
    } else if (dtype == MT_F64) {
        if (l == 1) return bn_forward_rows_f64(n, c, x, weight, bias, running_mean, running_var, training, momentum, eps, y, save_mean, save_invstd);
        bn_forward_f64(n, c, l, x, weight, bias, running_mean, running_var, training, momentum, eps, y, save_mean, save_invstd);
    } else {
        return MT_ERR_UNSUPPORTED;
    }
    return MT_OK;
}

mt_status mt_cpu_batch_norm_backward(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x, const void *dy,
                                     const void *weight, const void *save_mean, const void *save_invstd,
                                     bool training, void *dx, void *dweight, void *dbias)
{
    if (dtype == MT_F32) return bn_backward_f32(n, c, l, x, dy, weight, save_mean, save_invstd, training, dx, dweight, dbias);
    if (dtype == MT_F64) return bn_backward_f64(n, c, l, x, dy, weight, save_mean, save_invstd, training, dx, dweight, dbias);
    return MT_ERR_UNSUPPORTED;
}

/* ---------------------------------------------------------------- group norm and layer norm */
/*
 * Group normalization over x [n, c, l] in G groups of cpg = c / G consecutive
 * channels. Row r = (i, g), r = i G + g, is the m = cpg l contiguous values
 * x[i, g cpg .. (g + 1) cpg - 1, :]; it has its own statistics, and the
 * affine parameters are per channel:
 *
 *   mean_r = (1/m) sum x,  var_r = (1/m) sum (x - mean_r)^2,  rstd_r = 1 / sqrt(var_r + eps)
 *   xhat = (x - mean_r) rstd_r,   y = weight[ch] xhat + bias[ch]
 *
 * Layer norm over the F trailing features of [rows, F] is the case n = rows,
 * c = F, l = 1, G = 1: one row per sample, one "channel" per feature.
 *
 * Statistics in one pass per row, by the shifted-data method: with K the
 * row's first value,  s1 = sum (x - K),  s2 = sum (x - K)^2  (in double), then
 *   mean = K + s1 / m,   var = (s2 - s1^2 / m) / m   (clamped at 0).
 * Shifting by a value of the row keeps s2 - s1^2/m free of the cancellation
 * of the textbook sum-of-squares formula when |mean| is large against the
 * spread (a constant row gives var = 0 exactly), and in double it is exact to
 * far below f32's resolution for any row of f32 values. The CUDA kernels use
 * the same formulas.
 *
 * Backward, with g = dy weight[ch] (per element) and the row's sums:
 *   dx = rstd (g - mean_r(g) - xhat mean_r(g xhat))
 *   dweight[ch] = sum over i and l of dy xhat,   dbias[ch] = sum dy
 * (the x-part is an orthogonal projection of g within the row, scaled by rstd).
 *
 * Threads: the forward and dx split the rows; each row is one thread's, so
 * the bits do not depend on the thread count. dweight and dbias are summed
 * per chunk of samples (a fixed number per chunk, from the shape alone) into
 * scratch memory, then the chunks are added in order: deterministic too.
 */
#define GN_CHUNK_VALUES 65536   /* about this many values per chunk of the backward's weight sums */

/* The loops over a row of layer-norm shape (l == 1: one channel per value),
   unswitched on which of weight and bias are there so that each vectorizes. */
#define GN_AFFINE_ROW(m_, w_, b_, out_, expr_w_b_, expr_w_, expr_b_, expr_)     \
    do {                                                                        \
        if ((w_) && (b_)) {                                                     \
            _Pragma("omp simd") for (int64_t k = 0; k < (m_); k++) out_[k] = (expr_w_b_); \
        } else if (w_) {                                                        \
            _Pragma("omp simd") for (int64_t k = 0; k < (m_); k++) out_[k] = (expr_w_); \
        } else if (b_) {                                                        \
            _Pragma("omp simd") for (int64_t k = 0; k < (m_); k++) out_[k] = (expr_b_); \
        } else {                                                                \
            _Pragma("omp simd") for (int64_t k = 0; k < (m_); k++) out_[k] = (expr_); \
        }                                                                       \
    } while (0)

#define DEFINE_GN(T, SUFFIX)                                                                \
/* mean and 1 / sqrt(var + eps) of the m values v (shifted one-pass sums in double) */     \
static void gn_row_stats_##SUFFIX(const T *v, int64_t m, double eps, double *mean, double *rstd) \
{                                                                                           \
    double k = m > 0 ? (double)v[0] : 0.0, s1 = 0, s2 = 0;                                  \
    _Pragma("omp simd reduction(+:s1, s2)")                                                 \
    for (int64_t j = 0; j < m; j++) { double d = (double)v[j] - k; s1 += d; s2 += d * d; }  \
    double mu = m > 0 ? s1 / (double)m : 0.0, var = m > 0 ? (s2 - s1 * mu) / (double)m : 0.0; \
    *mean = k + mu;                                                                         \
    *rstd = 1.0 / sqrt((var > 0 ? var : 0.0) + eps);                                        \
}                                                                                           \
                                                                                            \
static void gn_forward_##SUFFIX(int64_t n, int64_t c, int64_t l, int64_t groups, const T *x, \
                                const T *w, const T *b, double eps, T *y, T *smean, T *srstd) \
{                                                                                           \
    int64_t cpg = c / groups, m = cpg * l, rows = n * groups;                               \
    _Pragma("omp parallel for if (rows * m > MT_CPU_PARALLEL_GRAIN)")                       \
    for (int64_t r = 0; r < rows; r++) {                                                    \
        const T *xr = x + r * m, *wr = w ? w + (r % groups) * cpg : NULL;                   \
        const T *br = b ? b + (r % groups) * cpg : NULL;                                    \
        T *yr = y + r * m;                                                                  \
        double mean, rstd;                                                                  \
        gn_row_stats_##SUFFIX(xr, m, eps, &mean, &rstd);                                    \
        T mu = (T)mean, rs = (T)rstd;                                                       \
        smean[r] = mu;                                                                      \
        srstd[r] = rs;                                                                      \
        if (l == 1) {                                                                       \
            GN_AFFINE_ROW(m, wr, br, yr, (xr[k] - mu) * (rs * wr[k]) + br[k],               \
                          (xr[k] - mu) * (rs * wr[k]), (xr[k] - mu) * rs + br[k], (xr[k] - mu) * rs); \
        } else {                                                                            \
            for (int64_t cc = 0; cc < cpg; cc++) {                                          \
                T s = wr ? rs * wr[cc] : rs, t = br ? br[cc] : (T)0;                        \
                const T *xc = xr + cc * l;                                                  \
                T *yc = yr + cc * l;                                                        \
                _Pragma("omp simd")                                                         \
                for (int64_t j = 0; j < l; j++) yc[j] = (xc[j] - mu) * s + t;               \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
/* One row's backward: dx (when wanted) and its terms of the weight sums pw, pb             \
   (when wanted: the row's channels' entries of its chunk's partial sums). */               \
static void gn_backward_row_##SUFFIX(int64_t cpg, int64_t l, const T *xr, const T *gr,     \
                                     const T *wr, T mu, T rs, T *dxr, double *pw, double *pb) \
{                                                                                           \
    int64_t m = cpg * l;                                                                    \
    if (pw) {                                                                               \
        if (l == 1) {                                                                       \
            _Pragma("omp simd")                                                             \
            for (int64_t k = 0; k < m; k++) {                                               \
                pw[k] += (double)(gr[k] * ((xr[k] - mu) * rs));                             \
                pb[k] += (double)gr[k];                                                     \
            }                                                                               \
        } else {                                                                            \
            for (int64_t cc = 0; cc < cpg; cc++) {                                          \
                const T *xc = xr + cc * l, *gc = gr + cc * l;                               \
                double sw = 0, sb = 0;                                                      \
                _Pragma("omp simd reduction(+:sw, sb)")                                     \
                for (int64_t j = 0; j < l; j++) { sw += (double)(gc[j] * ((xc[j] - mu) * rs)); sb += (double)gc[j]; } \
                pw[cc] += sw;                                                               \
                pb[cc] += sb;                                                               \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    if (!dxr) return;                                                                       \
    /* sg = sum g, sgd = sum g (x - mean): mean(g) = sg / m, mean(g xhat) = rstd sgd / m */ \
    double sg = 0, sgd = 0;                                                                 \
    if (l == 1 && wr) {                                                                     \
        _Pragma("omp simd reduction(+:sg, sgd)")                                            \
        for (int64_t k = 0; k < m; k++) { T g = gr[k] * wr[k]; sg += (double)g; sgd += (double)(g * (xr[k] - mu)); } \
    } else if (l == 1) {                                                                    \
        _Pragma("omp simd reduction(+:sg, sgd)")                                            \
        for (int64_t k = 0; k < m; k++) { T g = gr[k]; sg += (double)g; sgd += (double)(g * (xr[k] - mu)); } \
    } else {                                                                                \
        for (int64_t cc = 0; cc < cpg; cc++) {                                              \
            const T *xc = xr + cc * l, *gc = gr + cc * l;                                   \
            T wc = wr ? wr[cc] : (T)1;                                                      \
            _Pragma("omp simd reduction(+:sg, sgd)")                                        \
            for (int64_t j = 0; j < l; j++) { T g = gc[j] * wc; sg += (double)g; sgd += (double)(g * (xc[j] - mu)); } \
        }                                                                                   \
    }                                                                                       \
    T mg = (T)(m > 0 ? sg / (double)m : 0.0), mgx = (T)(m > 0 ? sgd * (double)rs / (double)m : 0.0); \
    if (l == 1) {                                                                           \
        if (wr) {                                                                           \
            _Pragma("omp simd")                                                             \
            for (int64_t k = 0; k < m; k++) dxr[k] = rs * (gr[k] * wr[k] - mg - (xr[k] - mu) * rs * mgx); \
        } else {                                                                            \
            _Pragma("omp simd")                                                             \
            for (int64_t k = 0; k < m; k++) dxr[k] = rs * (gr[k] - mg - (xr[k] - mu) * rs * mgx); \
        }                                                                                   \
    } else {                                                                                \
        for (int64_t cc = 0; cc < cpg; cc++) {                                              \
            const T *xc = xr + cc * l, *gc = gr + cc * l;                                   \
            T *dc = dxr + cc * l, wc = wr ? wr[cc] : (T)1;                                  \
            _Pragma("omp simd")                                                             \
            for (int64_t j = 0; j < l; j++) dc[j] = rs * (gc[j] * wc - mg - (xc[j] - mu) * rs * mgx); \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static mt_status gn_backward_##SUFFIX(int64_t n, int64_t c, int64_t l, int64_t groups, const T *x, \
                                      const T *dy, const T *w, const T *smean, const T *srstd, \
                                      T *dx, T *dw, T *db)                                  \
{                                                                                           \
    int64_t cpg = c / groups, m = cpg * l, cl = c * l > 0 ? c * l : 1;                      \
    int64_t per_chunk = cl >= GN_CHUNK_VALUES ? 1 : GN_CHUNK_VALUES / cl;                   \
    int64_t chunks = (n + per_chunk - 1) / per_chunk;                                       \
    bool sums = dw || db;                                                                   \
    size_t scratch_bytes = sums ? (size_t)chunks * 2 * (size_t)c * sizeof(double) : 0;      \
    double *part = NULL;                                                                    \
    if (scratch_bytes) {                                                                    \
        if (!(part = mt_cpu_scratch_alloc(scratch_bytes))) return MT_ERR_MEMORY;            \
        memset(part, 0, scratch_bytes);                                                     \
    }                                                                                       \
    _Pragma("omp parallel for if (n * c * l > MT_CPU_PARALLEL_GRAIN)")                      \
    for (int64_t q = 0; q < chunks; q++) {                                                  \
        double *pw = part ? part + q * 2 * c : NULL, *pb = part ? pw + c : NULL;            \
        int64_t end = (q + 1) * per_chunk < n ? (q + 1) * per_chunk : n;                    \
        for (int64_t i = q * per_chunk; i < end; i++)                                       \
            for (int64_t g = 0; g < groups; g++) {                                          \
                int64_t r = i * groups + g;                                                 \
                gn_backward_row_##SUFFIX(cpg, l, x + r * m, dy + r * m, w ? w + g * cpg : NULL, \
                                         smean[r], srstd[r], dx ? dx + r * m : NULL,        \
                                         pw ? pw + g * cpg : NULL, pb ? pb + g * cpg : NULL); \
            }                                                                               \
    }                                                                                       \
    if (sums) {   /* the chunks' sums, added in chunk order */                              \
        _Pragma("omp parallel for if (chunks * c > MT_CPU_PARALLEL_GRAIN)")                 \
        for (int64_t ch = 0; ch < c; ch++) {                                                \
            double sw = 0, sb = 0;                                                          \
            for (int64_t q = 0; q < chunks; q++) { sw += part[q * 2 * c + ch]; sb += part[q * 2 * c + c + ch]; } \
            if (dw) dw[ch] = (T)sw;                                                         \
            if (db) db[ch] = (T)sb;                                                         \
        }                                                                                   \
    }                                                                                       \
    if (part) mt_cpu_scratch_free(part, scratch_bytes);                                     \
    return MT_OK;                                                                           \
}

DEFINE_GN(float, f32)
DEFINE_GN(double, f64)

mt_status mt_cpu_group_norm_forward(mt_dtype dtype, int64_t n, int64_t c, int64_t l, int64_t groups, const void *x,
                                    const void *weight, const void *bias, double eps, void *y, void *save_mean,
                                    void *save_rstd)
{
    if (groups <= 0 || c % groups != 0) return MT_ERR_ARGUMENT;
    if (dtype == MT_F32) gn_forward_f32(n, c, l, groups, x, weight, bias, eps, y, save_mean, save_rstd);
    else if (dtype == MT_F64) gn_forward_f64(n, c, l, groups, x, weight, bias, eps, y, save_mean, save_rstd);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}

mt_status mt_cpu_group_norm_backward(mt_dtype dtype, int64_t n, int64_t c, int64_t l, int64_t groups, const void *x,
                                     const void *dy, const void *weight, const void *save_mean, const void *save_rstd,
                                     void *dx, void *dweight, void *dbias)
{
    if (groups <= 0 || c % groups != 0) return MT_ERR_ARGUMENT;
    if (dtype == MT_F32) return gn_backward_f32(n, c, l, groups, x, dy, weight, save_mean, save_rstd, dx, dweight, dbias);
    if (dtype == MT_F64) return gn_backward_f64(n, c, l, groups, x, dy, weight, save_mean, save_rstd, dx, dweight, dbias);
    return MT_ERR_UNSUPPORTED;
}
