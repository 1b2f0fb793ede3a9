/*
 * loss.c - the negative log-likelihood gather that cross-entropy is built on:
 *   out_i = -w[t_i] * logp[i, t_i]        (0 where t_i is ignore_index)
 *   dlogp[i, j] = -w[t_i] * dout_i * [j == t_i]
 */
#include "kernels/cpu/cpu_kernels.h"

#include <string.h>

#define DEFINE_NLL(T, SUFFIX)                                                             \
static void nll_forward_##SUFFIX(int64_t n, int64_t c, const T *logp, const int64_t *t,   \
                                 const T *w, int64_t ignore, T *out)                      \
{                                                                                         \
    for (int64_t i = 0; i < n; i++) {                                                     \
        int64_t k = t[i];                                                                 \
        out[i] = (k == ignore || k < 0 || k >= c) ? (T)0 : -(w ? w[k] : (T)1) * logp[i * c + k]; \
    }                                                                                     \
}                                                                                         \
static void nll_backward_##SUFFIX(int64_t n, int64_t c, const int64_t *t, const T *w,     \
                                  int64_t ignore, const T *dout, T *dlogp)                \
{                                                                                         \
    memset(dlogp, 0, (size_t)(n * c) * sizeof(T));                                        \
    for (int64_t i = 0; i < n; i++) {                                                     \
        int64_t k = t[i];                                                                 \
        if (k == ignore || k < 0 || k >= c) continue;                                     \
        dlogp[i * c + k] = -(w ? w[k] : (T)1) * dout[i];                                  \
    }                                                                                     \
}

DEFINE_NLL(float, f32)
DEFINE_NLL(double, f64)

mt_status mt_cpu_nll_forward(mt_dtype dtype, int64_t n, int64_t c, const void *logp, const int64_t *target,
                             const void *weight, int64_t ignore_index, void *out)
{
    if (dtype == MT_F32) nll_forward_f32(n, c, logp, target, weight, ignore_index, out);
    else if (dtype == MT_F64) nll_forward_f64(n, c, logp, target, weight, ignore_index, out);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}

mt_status mt_cpu_nll_backward(mt_dtype dtype, int64_t n, int64_t c, const int64_t *target, const void *weight,
                              int64_t ignore_index, const void *dout, void *dlogp)
{
    if (dtype == MT_F32) nll_backward_f32(n, c, target, weight, ignore_index, dout, dlogp);
    else if (dtype == MT_F64) nll_backward_f64(n, c, target, weight, ignore_index, dout, dlogp);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}
