/*
 * scalar_math.h - the scalar formulas of the activations and their
 * derivatives, written once for the CPU kernels (kernels/cpu/elementwise.c,
 * C) and the CUDA kernels (kernels/cuda/elementwise.cu: nvcc device code, or
 * C++ under the SIMT emulator), in f32 (expf, erff, tanhf, log1pf) and f64
 * (exp, erf, tanh, log1p). The operations and their order are those the CPU
 * kernels always had, so the CPU results are bitwise what they were, and the
 * emulated CUDA kernels compute the CPU's numbers to the bit on the host
 * compiler (nvcc may contract a * b + c into an fma on a real GPU).
 *
 *   sigmoid(x)      = 1 / (1 + e^-x)
 *   elu(x)          = x > 0 ? x : a (e^x - 1)            elu'(x) = x > 0 ? 1 : a e^x
 *   gelu(x)         = x/2 (1 + erf(x / sqrt 2))
 *   gelu'(x)        = (1 + erf(x / sqrt 2)) / 2 + x e^(-x^2/2) / sqrt(2 pi)
 *   gelu_tanh(x)    = x/2 (1 + tanh u),  u = sqrt(2/pi) (x + c x^3), c = 0.044715
 *   gelu_tanh'(x)   = (1 + t)/2 + x/2 (1 - t^2) du,  t = tanh u,  du = sqrt(2/pi) (1 + 3 c x^2)
 *   silu(x; b)      = x / (1 + e^(-b x))
 *   silu'(x; b)     = s + b x s (1 - s),  s = 1 / (1 + e^(-b x))
 *   softplus(x; b, t)  = b x > t ? x : log(1 + e^(b x)) / b
 *   softplus'(x; b, t) = b x > t ? 1 : 1 / (1 + e^(-b x))
 *
 * Each function is MT_HOST_DEVICE: static and always inlined, so that the
 * CPU's `omp simd` loops still vectorize through libmvec
 * (kernels/cpu/simd_math.h) and nvcc inlines them into the kernels.
 */
#ifndef MT_KERNELS_SCALAR_MATH_H
#define MT_KERNELS_SCALAR_MATH_H

#include <math.h>

#if defined(__CUDACC__)
#define MT_HOST_DEVICE static __host__ __device__ __forceinline__
#else
#define MT_HOST_DEVICE static inline __attribute__((always_inline))
#endif

#define MT_SQRT_2_OVER_PI 0.7978845608028654
#define MT_INV_SQRT_2     0.7071067811865476
#define MT_INV_SQRT_2PI   0.3989422804014327
#define MT_GELU_C         0.044715

/* The family for one precision: T the type, SUF the suffix, EXP ... the
   maths of that precision. The parentheses around the function names keep
   <tgmath.h>'s type-generic macros (kernels/cpu/elementwise.c) from
   re-dispatching them. */
#define MT_DEFINE_SCALAR_MATH(T, SUF, EXP, ERF, TANH, LOG1P)                                  \
    MT_HOST_DEVICE T mt_sigmoid_##SUF(T x) { return (T)1 / ((T)1 + (EXP)(-x)); }              \
    MT_HOST_DEVICE T mt_elu_##SUF(T x, T a) { return x > 0 ? x : a * ((EXP)(x) - (T)1); }     \
    MT_HOST_DEVICE T mt_elu_grad_##SUF(T x, T a) { return x > 0 ? (T)1 : a * (EXP)(x); }      \
    MT_HOST_DEVICE T mt_gelu_##SUF(T x)                                                       \
    {                                                                                         \
        return (T)0.5 * x * ((T)1 + (ERF)(x * (T)MT_INV_SQRT_2));                             \
    }                                                                                         \
    MT_HOST_DEVICE T mt_gelu_grad_##SUF(T x)                                                  \
    {                                                                                         \
        return (T)0.5 * ((T)1 + (ERF)(x * (T)MT_INV_SQRT_2)) +                                \
               x * (T)MT_INV_SQRT_2PI * (EXP)(-(T)0.5 * x * x);                               \
    }                                                                                         \
    MT_HOST_DEVICE T mt_gelu_tanh_##SUF(T x)                                                  \
    {                                                                                         \
        return (T)0.5 * x * ((T)1 + (TANH)((T)MT_SQRT_2_OVER_PI * (x + (T)MT_GELU_C * x * x * x))); \
    }                                                                                         \
    MT_HOST_DEVICE T mt_gelu_tanh_grad_##SUF(T x)                                             \
    {                                                                                         \
        T u = (T)MT_SQRT_2_OVER_PI * (x + (T)MT_GELU_C * x * x * x), t = (TANH)(u);           \
        T du = (T)MT_SQRT_2_OVER_PI * ((T)1 + 3 * (T)MT_GELU_C * x * x);                      \
        return (T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du;                        \
    }                                                                                         \
    MT_HOST_DEVICE T mt_silu_##SUF(T x, T b) { return x / ((T)1 + (EXP)(-b * x)); }           \
    MT_HOST_DEVICE T mt_silu_grad_##SUF(T x, T b)                                             \
    {                                                                                         \
        T s = (T)1 / ((T)1 + (EXP)(-b * x));                                                  \
        return s + b * x * s * ((T)1 - s);                                                    \
    }                                                                                         \
    MT_HOST_DEVICE T mt_softplus_##SUF(T x, T b, T threshold)                                 \
    {                                                                                         \
        return b * x > threshold ? x : (LOG1P)((EXP)(b * x)) / b;                             \
    }                                                                                         \
    MT_HOST_DEVICE T mt_softplus_grad_##SUF(T x, T b, T threshold)                            \
    {                                                                                         \
        return b * x > threshold ? (T)1 : (T)1 / ((T)1 + (EXP)(-b * x));                      \
    }

MT_DEFINE_SCALAR_MATH(float, f32, expf, erff, tanhf, log1pf)
MT_DEFINE_SCALAR_MATH(double, f64, exp, erf, tanh, log1p)

#undef MT_DEFINE_SCALAR_MATH

#endif
