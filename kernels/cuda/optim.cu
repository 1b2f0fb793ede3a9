/*
 * optim.cu - fused parameter updates, one pass over each parameter; the CUDA
 * counterpart of kernels/cpu/optim.c, with its formulas in its order and
 * precision (the scalar coefficients are formed on the host in double and
 * rounded to the element type, as the CPU kernel does):
 *
 * SGD (PyTorch's formulation), with g the gradient:
 *   d = g + wd p;  b = first ? d : momentum b + (1 - dampening) d
 *   d = nesterov ? d + momentum b : b   (when momentum != 0);  p -= lr d
 *
 * Adam / AdamW at step t (1-based):
 *   Adam: g += wd p        AdamW: p *= 1 - lr wd
 *   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   vmax = max(vmax, v) (AMSGrad)
 *   p -= lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
 * The last line is evaluated in double for f32 too, as the CPU's C code does
 * (sqrt of a float is the double sqrt there).
 *
 * Thread mapping: a grid-stride loop. When every pointer is 16-byte aligned
 * each thread loads and stores 16-byte vectors (float4 for f32, double2 for
 * f64) of W = 16 / sizeof(T) elements, and the n % W elements of the tail go
 * through the scalar loop; otherwise (an unaligned view) every element goes
 * through the scalar loop. nvcc may contract a * b + c into one FMA, so on a
 * GPU the results may differ from the CPU's by an ulp per operation.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define OPT_THREADS 256
#define OPT_MAX_BLOCKS 4096   /* grid-stride beyond this */

/* ---------------------------------------------------------------- 16-byte vector loads and stores */
static __device__ __forceinline__ void opt_load_f32(const float *p, int64_t q, float *r)
{
    float4 v = ((const float4 *)p)[q];
    r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
}
static __device__ __forceinline__ void opt_store_f32(float *p, int64_t q, const float *r)
{
    ((float4 *)p)[q] = make_float4(r[0], r[1], r[2], r[3]);
}
static __device__ __forceinline__ void opt_load_f64(const double *p, int64_t q, double *r)
{
    double2 v = ((const double2 *)p)[q];
    r[0] = v.x; r[1] = v.y;
}
static __device__ __forceinline__ void opt_store_f64(double *p, int64_t q, const double *r)
{
    ((double2 *)p)[q] = make_double2(r[0], r[1]);
}

/* ---------------------------------------------------------------- kernels, for T = float (W = 4) and double (W = 2) */

/*
 * sgd_elem_<T>: one element's SGD update, in T:
 *   d = g + wd p;  if momentum: b = first ? d : mom b + damp1 d  (damp1 = 1 - dampening),
 *   d = nesterov ? d + mom b : b;  p -= lr d
 * sgd_<T>: grid-stride over the n elements (vectors of W when vec, then the
 * scalar tail), thread i updating p[i] and buf[i] in place.
 *
 * adam_elem_<T>: one element's Adam/AdamW update (the formulas above; the
 * step size lr / (1 - b1^t), 1 / sqrt(1 - b2^t) and the decay 1 - lr wd come
 * from the host). adam_<T>: the same grid-stride mapping as sgd_<T>.
 */
#define DEFINE_OPTIM_KERNELS(T, SUFFIX, W)                                                                     \
static __device__ __forceinline__ void sgd_elem_##SUFFIX(T *p, T g, T *b, T lr, T mom, T damp1, T wd,          \
                                                         int has_momentum, int nesterov, int first)            \
{                                                                                                              \
    T d = g + wd * *p;                                                                                         \
    if (has_momentum) {                                                                                        \
        T bb = first ? d : mom * *b + damp1 * d;                                                               \
        *b = bb;                                                                                               \
        d = nesterov ? d + mom * bb : bb;                                                                      \
    }                                                                                                          \
    *p -= lr * d;                                                                                              \
}                                                                                                              \
                                                                                                               \
static __global__ void __launch_bounds__(OPT_THREADS)                                                          \
sgd_##SUFFIX(int64_t n, T *p, const T *g, T *buf, T lr, T mom, T damp1, T wd, int has_momentum, int nesterov,  \
             int first, int vec)                                                                               \
{                                                                                                              \
    int64_t stride = (int64_t)gridDim.x * blockDim.x, tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;    \
    int64_t nv = vec ? n / W : 0;                                                                              \
    for (int64_t q = tid; q < nv; q += stride) {                                                               \
        T pr[W], gr[W], br[W];                                                                                 \
        opt_load_##SUFFIX(p, q, pr);                                                                           \
        opt_load_##SUFFIX(g, q, gr);                                                                           \
        if (has_momentum && !first) opt_load_##SUFFIX(buf, q, br);                                             \
        for (int k = 0; k < W; k++)                                                                            \
            sgd_elem_##SUFFIX(&pr[k], gr[k], &br[k], lr, mom, damp1, wd, has_momentum, nesterov, first);       \
        opt_store_##SUFFIX(p, q, pr);                                                                          \
        if (has_momentum) opt_store_##SUFFIX(buf, q, br);                                                      \
    }                                                                                                          \
    for (int64_t i = nv * W + tid; i < n; i += stride) {                                                       \
        T pi = p[i], bi = has_momentum && !first ? buf[i] : (T)0;                                              \
        sgd_elem_##SUFFIX(&pi, g[i], &bi, lr, mom, damp1, wd, has_momentum, nesterov, first);                  \
        p[i] = pi;                                                                                             \
        if (has_momentum) buf[i] = bi;                                                                         \
    }                                                                                                          \
}                                                                                                              \
                                                                                                               \
static __device__ __forceinline__ void adam_elem_##SUFFIX(T *p, T g, T *m, T *v, T *vmax, T b1, T omb1, T b2,  \
                                                          T omb2, T wd, T decay, T step_size, T inv_sqrt_bc2,  \
                                                          T eps, int decoupled, int amsgrad)                   \
{                                                                                                              \
    T gi = g;                                                                                                  \
    if (decoupled) *p *= decay;                                                                                \
    else gi += wd * *p;                                                                                        \
    *m = b1 * *m + omb1 * gi;                                                                                  \
    *v = b2 * *v + omb2 * gi * gi;                                                                             \
    T vv = *v;                                                                                                 \
    if (amsgrad) { if (*vmax < vv) *vmax = vv; vv = *vmax; }                                                   \
    *p = (T)((double)*p - (double)(step_size * *m) / (sqrt((double)vv) * (double)inv_sqrt_bc2 + (double)eps)); \
}                                                                                                              \
                                                                                                               \
static __global__ void __launch_bounds__(OPT_THREADS)                                                          \
adam_##SUFFIX(int64_t n, T *p, const T *g, T *m, T *v, T *vmax, T b1, T omb1, T b2, T omb2, T wd, T decay,     \
              T step_size, T inv_sqrt_bc2, T eps, int decoupled, int amsgrad, int vec)                         \
{                                                                                                              \
    int64_t stride = (int64_t)gridDim.x * blockDim.x, tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;    \
    int64_t nv = vec ? n / W : 0;                                                                              \
    for (int64_t q = tid; q < nv; q += stride) {                                                               \
        T pr[W], gr[W], mr[W], vr[W], xr[W];                                                                   \
        opt_load_##SUFFIX(p, q, pr);                                                                           \
        opt_load_##SUFFIX(g, q, gr);                                                                           \
        opt_load_##SUFFIX(m, q, mr);                                                                           \
        opt_load_##SUFFIX(v, q, vr);                                                                           \
        if (amsgrad) opt_load_##SUFFIX(vmax, q, xr);                                                           \
        for (int k = 0; k < W; k++)                                                                            \
            adam_elem_##SUFFIX(&pr[k], gr[k], &mr[k], &vr[k], &xr[k], b1, omb1, b2, omb2, wd, decay,           \
                               step_size, inv_sqrt_bc2, eps, decoupled, amsgrad);                              \
        opt_store_##SUFFIX(p, q, pr);                                                                          \
        opt_store_##SUFFIX(m, q, mr);                                                                          \
        opt_store_##SUFFIX(v, q, vr);                                                                          \
        if (amsgrad) opt_store_##SUFFIX(vmax, q, xr);                                                          \
    }                                                                                                          \
    for (int64_t i = nv * W + tid; i < n; i += stride) {                                                       \
        T pi = p[i], mi = m[i], vi = v[i], xi = amsgrad ? vmax[i] : (T)0;                                      \
        adam_elem_##SUFFIX(&pi, g[i], &mi, &vi, &xi, b1, omb1, b2, omb2, wd, decay, step_size, inv_sqrt_bc2,   \
                           eps, decoupled, amsgrad);                                                           \
        p[i] = pi;                                                                                             \
        m[i] = mi;                                                                                             \
        v[i] = vi;                                                                                             \
        if (amsgrad) vmax[i] = xi;                                                                             \
    }                                                                                                          \
}

DEFINE_OPTIM_KERNELS(float, f32, 4)
DEFINE_OPTIM_KERNELS(double, f64, 2)

/* ---------------------------------------------------------------- host wrappers */

static bool opt_aligned16(const void *a, const void *b, const void *c, const void *d, const void *e)
{
    return (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e) & 15u) == 0;   /* NULL passes */
}

/* Blocks for a grid-stride loop: one thread per vector (and per tail element). */
static unsigned opt_grid(int64_t n, int vec, int w)
{
    int64_t items = vec ? (n + w - 1) / w : n;
    return mt_cuda_grid_1d(items, OPT_THREADS, OPT_MAX_BLOCKS);
}

mt_status MT_CUDA_FN(sgd_step)(mt_dtype dtype, int64_t n, void *param, const void *grad, void *momentum_buf,
                               double lr, double momentum, double dampening, double weight_decay,
                               bool nesterov, bool first_step)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    int has_momentum = momentum != 0 ? 1 : 0, nest = nesterov ? 1 : 0, first = first_step ? 1 : 0;
    int vec = opt_aligned16(param, grad, has_momentum ? momentum_buf : NULL, NULL, NULL) ? 1 : 0;
    if (dtype == MT_F32)
        MT_LAUNCH(sgd_f32, opt_grid(n, vec, 4), OPT_THREADS, 0, stream, n, (float *)param, (const float *)grad,
                  (float *)momentum_buf, (float)lr, (float)momentum, (float)(1 - dampening), (float)weight_decay,
                  has_momentum, nest, first, vec);
    else
        MT_LAUNCH(sgd_f64, opt_grid(n, vec, 2), OPT_THREADS, 0, stream, n, (double *)param, (const double *)grad,
                  (double *)momentum_buf, lr, momentum, 1 - dampening, weight_decay, has_momentum, nest, first, vec);
    return mt_cuda_launch_status("cuda sgd_step kernel");
}

mt_status MT_CUDA_FN(adam_step)(mt_dtype dtype, int64_t n, void *param, const void *grad, void *exp_avg,
                                void *exp_avg_sq, void *max_exp_avg_sq, double lr, double beta1, double beta2,
                                double eps, double weight_decay, bool decoupled, bool amsgrad, int64_t step)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    /* the step's scalars, exactly as kernels/cpu/optim.c forms them */
    double bc1 = 1 - pow(beta1, (double)step), bc2 = 1 - pow(beta2, (double)step);
    double step_size = lr / bc1, inv_sqrt_bc2 = 1 / sqrt(bc2), decay = 1 - lr * weight_decay;
    int dec = decoupled ? 1 : 0, ams = amsgrad ? 1 : 0;
    int vec = opt_aligned16(param, grad, exp_avg, exp_avg_sq, ams ? max_exp_avg_sq : NULL) ? 1 : 0;
    if (dtype == MT_F32)
        MT_LAUNCH(adam_f32, opt_grid(n, vec, 4), OPT_THREADS, 0, stream, n, (float *)param, (const float *)grad,
                  (float *)exp_avg, (float *)exp_avg_sq, (float *)max_exp_avg_sq, (float)beta1, (float)(1 - beta1),
                  (float)beta2, (float)(1 - beta2), (float)weight_decay, (float)decay, (float)step_size,
                  (float)inv_sqrt_bc2, (float)eps, dec, ams, vec);
    else
        MT_LAUNCH(adam_f64, opt_grid(n, vec, 2), OPT_THREADS, 0, stream, n, (double *)param, (const double *)grad,
                  (double *)exp_avg, (double *)exp_avg_sq, (double *)max_exp_avg_sq, beta1, 1 - beta1, beta2,
                  1 - beta2, weight_decay, decay, step_size, inv_sqrt_bc2, eps, dec, ams, vec);
    return mt_cuda_launch_status("cuda adam_step kernel");
}
