/*
 * norm.c - batch normalization over x of shape [n, c, l], one set of
 * statistics per channel c over its m = n * l values:
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
