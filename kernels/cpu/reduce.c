/*
 * reduce.c - reductions and softmax over the middle axis of a contiguous
 * [outer, n, inner] array: element (o, j, i) sits at (o * n + j) * inner + i.
 * Sums accumulate in double, so f32 results do not depend on summation order
 * at the precision of f32.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <math.h>

#include "kernels/cpu/simd_math.h"

/* One output element: the reduction of x[o, :, i]. */
#define DEFINE_REDUCE(T, SUFFIX)                                                          \
static void reduce_##SUFFIX(mt_reduce_kind kind, int64_t outer, int64_t n, int64_t inner, \
                            const T *x, void *out, double param)                          \
{                                                                                         \
    _Pragma("omp parallel for collapse(2) if (outer * n * inner > MT_CPU_PARALLEL_GRAIN)") \
    for (int64_t o = 0; o < outer; o++)                                                   \
        for (int64_t i = 0; i < inner; i++) {                                             \
            const T *p = x + o * n * inner + i;                                           \
            int64_t k = o * inner + i;                                                    \
            switch (kind) {                                                               \
            case MT_REDUCE_SUM: case MT_REDUCE_MEAN: {                                    \
                double s = 0;                                                             \
                for (int64_t j = 0; j < n; j++) s += p[j * inner];                        \
                ((T *)out)[k] = (T)(kind == MT_REDUCE_MEAN ? s / (double)n : s);          \
                break;                                                                    \
            }                                                                             \
            case MT_REDUCE_MAX: case MT_REDUCE_MIN:                                       \
            case MT_REDUCE_ARGMAX: case MT_REDUCE_ARGMIN: {                               \
                bool want_max = kind == MT_REDUCE_MAX || kind == MT_REDUCE_ARGMAX;        \
                T best = p[0];                                                            \
                int64_t arg = 0;                                                          \
                for (int64_t j = 1; j < n && best == best; j++) {   /* NaN wins */        \
                    T v = p[j * inner];                                                   \
                    if (v != v || (want_max ? v > best : v < best)) { best = v; arg = j; } \
                }                                                                         \
                if (kind == MT_REDUCE_ARGMAX || kind == MT_REDUCE_ARGMIN) ((int64_t *)out)[k] = arg; \
                else ((T *)out)[k] = best;                                                \
                break;                                                                    \
            }                                                                             \
            case MT_REDUCE_VAR: {   /* two passes: mean, then squared deviations */      \
                double s = 0, ss = 0;                                                     \
                for (int64_t j = 0; j < n; j++) s += p[j * inner];                        \
                double mean = s / (double)n;                                              \
                for (int64_t j = 0; j < n; j++) {                                         \
                    double d = p[j * inner] - mean;                                       \
                    ss += d * d;                                                          \
                }                                                                         \
                double dof = (double)n - param;                                           \
                ((T *)out)[k] = (T)(dof > 0 ? ss / dof : NAN);                            \
                break;                                                                    \
            }                                                                             \
            case MT_REDUCE_LOGSUMEXP: {                                                   \
                double m = -INFINITY, s = 0;                                              \
                for (int64_t j = 0; j < n; j++) if (p[j * inner] > m) m = p[j * inner];   \
                if (isinf(m)) { ((T *)out)[k] = (T)m; break; }                            \
                for (int64_t j = 0; j < n; j++) s += exp(p[j * inner] - m);               \
                ((T *)out)[k] = (T)(m + log(s));                                          \
                break;                                                                    \
            }                                                                             \
            default: break;                                                               \
            }                                                                             \
        }                                                                                 \
}

DEFINE_REDUCE(float, f32)
DEFINE_REDUCE(double, f64)
DEFINE_REDUCE(int32_t, i32)
DEFINE_REDUCE(int64_t, i64)
DEFINE_REDUCE(uint8_t, u8)

/* Sums over the middle axis when inner > 1: walk each [n, inner] slab row by
   row, adding whole contiguous rows into a double accumulator (the column-
   wise walk of the generic loop would stride through memory). The
   accumulator is scratch memory; without it the sum fails (MT_ERR_MEMORY). */
#define DEFINE_SUM_ROWS(T, SUFFIX)                                                        \
static mt_status sum_rows_##SUFFIX(bool mean, int64_t outer, int64_t n, int64_t inner,     \
                                   const T *x, T *out)                                    \
{                                                                                         \
    size_t acc_bytes = (size_t)inner * sizeof(double);                                    \
    double *acc = mt_cpu_scratch_alloc(acc_bytes);                                        \
    if (!acc) return MT_ERR_MEMORY;                                                       \
    for (int64_t o = 0; o < outer; o++) {                                                 \
        for (int64_t i = 0; i < inner; i++) acc[i] = 0;                                   \
        for (int64_t j = 0; j < n; j++) {                                                 \
            const T *row = x + (o * n + j) * inner;                                       \
            _Pragma("omp simd")                                                           \
            for (int64_t i = 0; i < inner; i++) acc[i] += row[i];                         \
        }                                                                                 \
        for (int64_t i = 0; i < inner; i++)                                               \
            out[o * inner + i] = (T)(mean ? acc[i] / (double)n : acc[i]);                 \
    }                                                                                     \
    mt_cpu_scratch_free(acc, acc_bytes);                                                  \
    return MT_OK;                                                                         \
}

DEFINE_SUM_ROWS(float, f32)
DEFINE_SUM_ROWS(double, f64)

mt_status mt_cpu_reduce(mt_reduce_kind kind, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                        const void *x, void *out, double param)
{
    if ((unsigned)kind >= MT_REDUCE_KIND_COUNT) return MT_ERR_ARGUMENT;
    bool is_float = dtype == MT_F32 || dtype == MT_F64;
    if (!is_float && (kind == MT_REDUCE_VAR || kind == MT_REDUCE_LOGSUMEXP)) return MT_ERR_UNSUPPORTED;
    if ((kind == MT_REDUCE_SUM || kind == MT_REDUCE_MEAN) && inner >= 16 && outer < 4) {
        bool mean = kind == MT_REDUCE_MEAN;
        if (dtype == MT_F32) return sum_rows_f32(mean, outer, n, inner, x, out);
        if (dtype == MT_F64) return sum_rows_f64(mean, outer, n, inner, x, out);
    }
    switch (dtype) {
    case MT_F32: reduce_f32(kind, outer, n, inner, x, out, param); break;
    case MT_F64: reduce_f64(kind, outer, n, inner, x, out, param); break;
    case MT_I32: reduce_i32(kind, outer, n, inner, x, out, param); break;
    case MT_I64: reduce_i64(kind, outer, n, inner, x, out, param); break;
    case MT_U8: case MT_BOOL: reduce_u8(kind, outer, n, inner, x, out, param); break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return MT_OK;
}

/*
 * softmax:      y_j = exp(x_j - m) / sum_k exp(x_k - m),  m = max_k x_k
 * log_softmax:  y_j = x_j - m - log sum_k exp(x_k - m)
 */
#define DEFINE_SOFTMAX(T, SUFFIX)                                                         \
static void softmax_##SUFFIX(bool log_, int64_t outer, int64_t n, int64_t inner, const T *x, T *y) \
{                                                                                         \
    _Pragma("omp parallel for collapse(2) if (outer * n * inner > MT_CPU_PARALLEL_GRAIN)") \
    for (int64_t o = 0; o < outer; o++)                                                   \
        for (int64_t i = 0; i < inner; i++) {                                             \
            const T *p = x + o * n * inner + i;                                           \
            T *q = y + o * n * inner + i;                                                 \
            T m = -INFINITY;                                                              \
            for (int64_t j = 0; j < n; j++) if (p[j * inner] > m) m = p[j * inner];       \
            double s = 0;                                                                 \
            if (log_) {                                                                   \
                for (int64_t j = 0; j < n; j++) s += exp((double)(p[j * inner] - m));     \
                /* (x - m) - log s, not x - (m + log s): with large logits the */         \
                /* rounded m + log s would cost f32 all its fractional digits */          \
                double log_s = log(s);                                                    \
                for (int64_t j = 0; j < n; j++)                                           \
                    q[j * inner] = (T)((double)(p[j * inner] - m) - log_s);               \
            } else {                                                                      \
                for (int64_t j = 0; j < n; j++) {                                         \
                    T e = (T)exp((double)(p[j * inner] - m));                             \
                    q[j * inner] = e;                                                     \
                    s += e;                                                               \
                }                                                                         \
                T inv = (T)(1.0 / s);                                                     \
                for (int64_t j = 0; j < n; j++) q[j * inner] *= inv;                      \
            }                                                                             \
        }                                                                                 \
}

/*
 * softmax:      dx_j = y_j (dy_j - sum_k dy_k y_k)
 * log_softmax:  dx_j = dy_j - exp(y_j) sum_k dy_k
 */
#define DEFINE_SOFTMAX_BACKWARD(T, SUFFIX)                                                \
static void softmax_backward_##SUFFIX(bool log_, int64_t outer, int64_t n, int64_t inner, \
                                      const T *y, const T *dy, T *dx)                     \
{                                                                                         \
    _Pragma("omp parallel for collapse(2) if (outer * n * inner > MT_CPU_PARALLEL_GRAIN)") \
    for (int64_t o = 0; o < outer; o++)                                                   \
        for (int64_t i = 0; i < inner; i++) {                                             \
            int64_t base = o * n * inner + i;                                             \
            double s = 0;                                                                 \
            if (log_) {                                                                   \
                for (int64_t j = 0; j < n; j++) s += dy[base + j * inner];                \
                for (int64_t j = 0; j < n; j++)                                           \
                    dx[base + j * inner] = (T)(dy[base + j * inner] - exp((double)y[base + j * inner]) * s); \
            } else {                                                                      \
                for (int64_t j = 0; j < n; j++) s += (double)dy[base + j * inner] * y[base + j * inner]; \
                for (int64_t j = 0; j < n; j++)                                           \
                    dx[base + j * inner] = (T)(y[base + j * inner] * (dy[base + j * inner] - s)); \
            }                                                                             \
        }                                                                                 \
}

DEFINE_SOFTMAX(float, f32)
DEFINE_SOFTMAX(double, f64)
DEFINE_SOFTMAX_BACKWARD(float, f32)
DEFINE_SOFTMAX_BACKWARD(double, f64)

/* The common case, softmax over contiguous rows (inner == 1), as SIMD loops:
   exp runs in the element type through libmvec, sums accumulate in double. */
#define DEFINE_SOFTMAX_ROWS(T, SUFFIX, EXP)                                               \
static void softmax_rows_##SUFFIX(bool log_, int64_t rows, int64_t n, const T *x, T *y)   \
{                                                                                         \
    _Pragma("omp parallel for if (rows * n > MT_CPU_PARALLEL_GRAIN)")                     \
    for (int64_t r = 0; r < rows; r++) {                                                  \
        const T *p = x + r * n;                                                           \
        T *q = y + r * n;                                                                 \
        T m = -INFINITY;                                                                  \
        _Pragma("omp simd reduction(max:m)")                                              \
        for (int64_t j = 0; j < n; j++) m = p[j] > m ? p[j] : m;                          \
        if (m == -INFINITY) m = 0;   /* an all -inf row: keep the NaNs of exp(-inf - -inf) out */ \
        double s = 0;                                                                     \
        if (log_) {                                                                       \
            _Pragma("omp simd reduction(+:s)")                                            \
            for (int64_t j = 0; j < n; j++) s += (double)EXP(p[j] - m);                   \
            /* (x - m) - log s, not x - (m + log s): see softmax_##SUFFIX */              \
            T log_s = (T)log(s);                                                          \
            _Pragma("omp simd")                                                           \
            for (int64_t j = 0; j < n; j++) q[j] = (p[j] - m) - log_s;                    \
        } else {                                                                          \
            _Pragma("omp simd reduction(+:s)")                                            \
            for (int64_t j = 0; j < n; j++) { T e = EXP(p[j] - m); q[j] = e; s += (double)e; } \
            T inv = (T)(1.0 / s);                                                         \
            _Pragma("omp simd")                                                           \
            for (int64_t j = 0; j < n; j++) q[j] *= inv;                                  \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
static void softmax_backward_rows_##SUFFIX(bool log_, int64_t rows, int64_t n, const T *y, \
                                           const T *dy, T *dx)                            \
{                                                                                         \
    _Pragma("omp parallel for if (rows * n > MT_CPU_PARALLEL_GRAIN)")                     \
    for (int64_t r = 0; r < rows; r++) {                                                  \
        const T *py = y + r * n, *pg = dy + r * n;                                        \
        T *q = dx + r * n;                                                                \
        double s = 0;                                                                     \
        if (log_) {                                                                       \
            _Pragma("omp simd reduction(+:s)")                                            \
            for (int64_t j = 0; j < n; j++) s += (double)pg[j];                           \
            T st = (T)s;                                                                  \
            _Pragma("omp simd")                                                           \
            for (int64_t j = 0; j < n; j++) q[j] = pg[j] - EXP(py[j]) * st;               \
        } else {                                                                          \
            _Pragma("omp simd reduction(+:s)")                                            \
            for (int64_t j = 0; j < n; j++) s += (double)pg[j] * (double)py[j];           \
            T st = (T)s;                                                                  \
            _Pragma("omp simd")                                                           \
            for (int64_t j = 0; j < n; j++) q[j] = py[j] * (pg[j] - st);                  \
        }                                                                                 \
    }                                                                                     \
}

DEFINE_SOFTMAX_ROWS(float, f32, expf)
DEFINE_SOFTMAX_ROWS(double, f64, exp)

mt_status mt_cpu_softmax(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, const void *x, void *y)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (inner == 1) {
        if (dtype == MT_F32) softmax_rows_f32(log, outer, n, x, y);
        else softmax_rows_f64(log, outer, n, x, y);
    } else {
        if (dtype == MT_F32) softmax_f32(log, outer, n, inner, x, y);
        else softmax_f64(log, outer, n, inner, x, y);
    }
    return MT_OK;
}

mt_status mt_cpu_softmax_backward(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                                  const void *y, const void *dy, void *dx)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (inner == 1) {
        if (dtype == MT_F32) softmax_backward_rows_f32(log, outer, n, y, dy, dx);
        else softmax_backward_rows_f64(log, outer, n, y, dy, dx);
    } else {
        if (dtype == MT_F32) softmax_backward_f32(log, outer, n, inner, y, dy, dx);
        else softmax_backward_f64(log, outer, n, inner, y, dy, dx);
    }
    return MT_OK;
}
