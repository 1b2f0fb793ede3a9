/*
 * optim.c - fused parameter updates, one pass over each parameter.
 *
 * SGD (PyTorch's formulation), with g the gradient:
 *   g += wd * p;  b = first ? g : momentum * b + (1 - dampening) * g
 *   g = nesterov ? g + momentum * b : b   (when momentum != 0);  p -= lr * g
 *
 * Adam / AdamW at step t (1-based):
 *   Adam: g += wd * p        AdamW: p *= 1 - lr * wd
 *   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   vmax = max(vmax, v) (AMSGrad)
 *   p -= lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
 */
#include "kernels/cpu/cpu_kernels.h"

#include <math.h>

#define DEFINE_SGD(T, SUFFIX)                                                             \
static void sgd_##SUFFIX(int64_t n, T *p, const T *g, T *buf, double lr, double mom,      \
                         double damp, double wd, bool nesterov, bool first)               \
{                                                                                         \
    _Pragma("omp parallel for if (n > MT_CPU_PARALLEL_GRAIN)")                            \
    for (int64_t i = 0; i < n; i++) {                                                     \
        T d = g[i] + (T)wd * p[i];                                                        \
        if (mom != 0) {                                                                   \
            T b = first ? d : (T)mom * buf[i] + (T)(1 - damp) * d;                        \
            buf[i] = b;                                                                   \
            d = nesterov ? d + (T)mom * b : b;                                            \
        }                                                                                 \
        p[i] -= (T)lr * d;                                                                \
    }                                                                                     \
}

#define DEFINE_ADAM(T, SUFFIX)                                                            \
static void adam_##SUFFIX(int64_t n, T *p, const T *g, T *m, T *v, T *vmax, double lr,    \
                          double b1, double b2, double eps, double wd, bool decoupled,    \
                          bool amsgrad, int64_t step)                                     \
{                                                                                         \
    double bc1 = 1 - pow(b1, (double)step), bc2 = 1 - pow(b2, (double)step);              \
    T step_size = (T)(lr / bc1), inv_sqrt_bc2 = (T)(1 / sqrt(bc2));                       \
    T decay = (T)(1 - lr * wd);                                                           \
    _Pragma("omp parallel for if (n > MT_CPU_PARALLEL_GRAIN)")                            \
    for (int64_t i = 0; i < n; i++) {                                                     \
        T gi = g[i];                                                                      \
        if (decoupled) p[i] *= decay;                                                     \
        else gi += (T)wd * p[i];                                                          \
        m[i] = (T)b1 * m[i] + (T)(1 - b1) * gi;                                           \
        v[i] = (T)b2 * v[i] + (T)(1 - b2) * gi * gi;                                      \
        T vv = v[i];                                                                      \
        if (amsgrad) { if (vmax[i] < vv) vmax[i] = vv; vv = vmax[i]; }                    \
        p[i] -= step_size * m[i] / (sqrt(vv) * inv_sqrt_bc2 + (T)eps);                    \
    }                                                                                     \
}

DEFINE_SGD(float, f32)
DEFINE_SGD(double, f64)
DEFINE_ADAM(float, f32)
DEFINE_ADAM(double, f64)

mt_status mt_cpu_sgd_step(mt_dtype dtype, int64_t n, void *param, const void *grad, void *momentum_buf,
                          double lr, double momentum, double dampening, double weight_decay,
                          bool nesterov, bool first_step)
{
    if (dtype == MT_F32) sgd_f32(n, param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, first_step);
    else if (dtype == MT_F64) sgd_f64(n, param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, first_step);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}

mt_status mt_cpu_adam_step(mt_dtype dtype, int64_t n, void *param, const void *grad, void *exp_avg,
                           void *exp_avg_sq, void *max_exp_avg_sq, double lr, double beta1, double beta2,
                           double eps, double weight_decay, bool decoupled, bool amsgrad, int64_t step)
{
    if (dtype == MT_F32) adam_f32(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step);
    else if (dtype == MT_F64) adam_f64(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}
