/*
 * elementwise.c - CPU kernels applied element by element: copies and casts,
 * fills, unary maths with its derivatives, broadcasting binary maths, where.
 *
 * Each kernel is written once as a macro over the element type T and
 * instantiated for the dtypes it takes; <tgmath.h> picks expf/exp from T.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <string.h>
#include <tgmath.h>

#include "kernels/cpu/simd_math.h"
#include "kernels/scalar_math.h"

/* ---------------------------------------------------------------- strided walks */
/* A loop is walked row by row: a row is the innermost dim, the rows are the
   product of the outer dims. off[k] receives operand k's offset at row r. */
static inline void loop_rows(const mt_loop *loop, int64_t *rows, int64_t *len)
{
    *rows = 1;
    for (int d = 0; d + 1 < loop->ndim; d++) *rows *= loop->shape[d];
    *len = loop->ndim ? loop->shape[loop->ndim - 1] : 1;
}

static inline void row_offsets(const mt_loop *loop, int nops, int64_t r, int64_t *off)
{
    for (int k = 0; k < nops; k++) off[k] = 0;
    for (int d = loop->ndim - 2; d >= 0; d--) {
        int64_t i = r % loop->shape[d];
        r /= loop->shape[d];
        for (int k = 0; k < nops; k++) off[k] += i * loop->stride[k][d];
    }
}

static inline int64_t inner_stride(const mt_loop *loop, int k)
{
    return loop->ndim ? loop->stride[k][loop->ndim - 1] : 0;
}

/* ---------------------------------------------------------------- copy and cast */
#define COPY_ROWS(TD, TS, CONVERT)                                                        \
    do {                                                                                  \
        TD *d_ = (TD *)dst; const TS *s_ = (const TS *)src;                               \
        _Pragma("omp parallel for if (rows * len > MT_CPU_PARALLEL_GRAIN)")               \
        for (int64_t r = 0; r < rows; r++) {                                              \
            int64_t off[2];                                                               \
            row_offsets(loop, 2, r, off);                                                 \
            TD *o = d_ + off[0]; const TS *x = s_ + off[1];                               \
            if (sd == 1 && ss == 1) for (int64_t i = 0; i < len; i++) { TS v = x[i]; o[i] = CONVERT; } \
            else for (int64_t i = 0; i < len; i++) { TS v = x[i * ss]; o[i * sd] = CONVERT; } \
        }                                                                                 \
    } while (0)

#define COPY_FROM(TD, IS_BOOL)                                                            \
    switch (src_dtype) {                                                                  \
    case MT_F32:  COPY_ROWS(TD, float, IS_BOOL ? (TD)(v != 0) : (TD)v); break;            \
    case MT_F64:  COPY_ROWS(TD, double, IS_BOOL ? (TD)(v != 0) : (TD)v); break;           \
    case MT_I32:  COPY_ROWS(TD, int32_t, IS_BOOL ? (TD)(v != 0) : (TD)v); break;          \
    case MT_I64:  COPY_ROWS(TD, int64_t, IS_BOOL ? (TD)(v != 0) : (TD)v); break;          \
    case MT_U8: case MT_BOOL: COPY_ROWS(TD, uint8_t, IS_BOOL ? (TD)(v != 0) : (TD)v); break; \
    default: break;                                                                       \
    }

mt_status mt_cpu_copy(const mt_loop *loop, mt_dtype dst_dtype, void *dst, mt_dtype src_dtype, const void *src)
{
    if (mt_dtype_size(dst_dtype) == 0 || mt_dtype_size(src_dtype) == 0) return MT_ERR_UNSUPPORTED;
    int64_t rows, len;
    loop_rows(loop, &rows, &len);
    int64_t sd = inner_stride(loop, 0), ss = inner_stride(loop, 1);
    if (dst_dtype == src_dtype || (dst_dtype == MT_U8 && src_dtype == MT_BOOL)) {
        /* a plain move of 1, 4 or 8-byte elements */
        switch (mt_dtype_size(dst_dtype)) {
        case 1: COPY_ROWS(uint8_t, uint8_t, v); break;
        case 4: COPY_ROWS(uint32_t, uint32_t, v); break;
        case 8: COPY_ROWS(uint64_t, uint64_t, v); break;
        default: break;
        }
        return MT_OK;
    }
    switch (dst_dtype) {
    case MT_F32: COPY_FROM(float, 0); break;
    case MT_F64: COPY_FROM(double, 0); break;
    case MT_I32: COPY_FROM(int32_t, 0); break;
    case MT_I64: COPY_FROM(int64_t, 0); break;
    case MT_U8:  COPY_FROM(uint8_t, 0); break;
    case MT_BOOL: COPY_FROM(uint8_t, 1); break;
    default: break;
    }
    return MT_OK;
}

#define FILL(T, V)                                                                        \
    do {                                                                                  \
        T *d_ = (T *)dst; T v_ = (T)(V);                                                  \
        _Pragma("omp parallel for if (n > MT_CPU_PARALLEL_GRAIN)")                        \
        for (int64_t i = 0; i < n; i++) d_[i] = v_;                                       \
    } while (0)

mt_status mt_cpu_fill(mt_dtype dtype, int64_t n, void *dst, double value)
{
    switch (dtype) {
    case MT_F32: FILL(float, value); break;
    case MT_F64: FILL(double, value); break;
    case MT_I32: FILL(int32_t, value); break;
    case MT_I64: FILL(int64_t, value); break;
    case MT_U8: FILL(uint8_t, value); break;
    case MT_BOOL: FILL(uint8_t, value != 0); break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return MT_OK;
}

mt_status mt_cpu_arange(mt_dtype dtype, int64_t n, double start, double step, void *dst)
{
    if (mt_dtype_size(dtype) == 0) return MT_ERR_UNSUPPORTED;
    for (int64_t i = 0; i < n; i++) {
        double v = start + (double)i * step;
        switch (dtype) {
        case MT_F32: ((float *)dst)[i] = (float)v; break;
        case MT_F64: ((double *)dst)[i] = v; break;
        case MT_I32: ((int32_t *)dst)[i] = (int32_t)v; break;
        case MT_I64: ((int64_t *)dst)[i] = (int64_t)v; break;
        case MT_U8: case MT_BOOL: ((uint8_t *)dst)[i] = (uint8_t)v; break;
        default: break;
        }
    }
    return MT_OK;
}

/* ---------------------------------------------------------------- unary maths */
/* The activations' formulas are kernels/scalar_math.h's (shared with the CUDA kernels). */

#define MAP(EXPR)                                                                         \
    _Pragma("omp parallel for simd if (n > MT_CPU_PARALLEL_GRAIN)")                       \
    for (int64_t i = 0; i < n; i++) { elem_t v = x[i]; (void)v; y[i] = (EXPR); }               \
    break

#define DEFINE_UNARY(T, SUFFIX)                                                                   \
static void unary_##SUFFIX(mt_unary_kind kind, int64_t n, const T *x, T *y, const double *prm)   \
{                                                                                                 \
    typedef T elem_t;                                                                             \
    const T p0 = prm ? (T)prm[0] : 0, p1 = prm ? (T)prm[1] : 0;                                   \
    switch (kind) {                                                                               \
    case MT_UNARY_NEG:        MAP(-v);                                                            \
    case MT_UNARY_EXP:        MAP(exp(v));                                                        \
    case MT_UNARY_LOG:        MAP(log(v));                                                        \
    case MT_UNARY_SQRT:       MAP(sqrt(v));                                                       \
    case MT_UNARY_ABS:        MAP(fabs(v));                                                       \
    case MT_UNARY_SIGN:       MAP((T)((v > 0) - (v < 0)));                                        \
    case MT_UNARY_POW_SCALAR: MAP(pow(v, p0));                                                    \
    case MT_UNARY_CLAMP:      MAP(v != v ? v : (p0 == p0 && v < p0) ? p0 : (p1 == p1 && v > p1) ? p1 : v); \
    case MT_UNARY_SIGMOID:    MAP(mt_sigmoid_##SUFFIX(v));                                        \
    case MT_UNARY_TANH:       MAP(tanh(v));                                                       \
    case MT_UNARY_RELU:       MAP(v > 0 ? v : 0);                                                 \
    case MT_UNARY_LEAKY_RELU: MAP(v > 0 ? v : p0 * v);                                            \
    case MT_UNARY_ELU:        MAP(mt_elu_##SUFFIX(v, p0));                                        \
    case MT_UNARY_GELU_ERF:   MAP(mt_gelu_##SUFFIX(v));                                           \
    case MT_UNARY_GELU_TANH:  MAP(mt_gelu_tanh_##SUFFIX(v));                                      \
    case MT_UNARY_SILU:       MAP(mt_silu_##SUFFIX(v, p0));                                       \
    case MT_UNARY_SOFTPLUS:   MAP(mt_softplus_##SUFFIX(v, p0, p1));                               \
    case MT_UNARY_SCALE:      MAP(p0 * v + p1);                                                   \
    default: break;                                                                               \
    }                                                                                             \
}

/* dx = dy * f'(x), from x (DMAP_X) or from y = f(x) where that is cheaper (DMAP_Y). */
#define DMAP_X(EXPR)                                                                      \
    _Pragma("omp parallel for simd if (n > MT_CPU_PARALLEL_GRAIN)")                       \
    for (int64_t i = 0; i < n; i++) { elem_t v = x[i]; (void)v; dx[i] = dy[i] * (EXPR); }         \
    break
#define DMAP_Y(EXPR)                                                                      \
    _Pragma("omp parallel for simd if (n > MT_CPU_PARALLEL_GRAIN)")                       \
    for (int64_t i = 0; i < n; i++) { elem_t o = y[i]; dx[i] = dy[i] * (EXPR); }         \
    break

#define DEFINE_UNARY_BACKWARD(T, SUFFIX)                                                          \
static void unary_backward_##SUFFIX(mt_unary_kind kind, int64_t n, const T *x, const T *y,       \
                                    const T *dy, T *dx, const double *prm)                        \
{                                                                                                 \
    typedef T elem_t;                                                                             \
    const T p0 = prm ? (T)prm[0] : 0, p1 = prm ? (T)prm[1] : 0;                                   \
    const T one = 1, half = (T)0.5;                                                               \
    switch (kind) {                                                                               \
    case MT_UNARY_NEG:        DMAP_X(-one);                                                         \
    case MT_UNARY_EXP:        DMAP_Y(o);                                                            \
    case MT_UNARY_LOG:        DMAP_X(one / v);                                                      \
    case MT_UNARY_SQRT:       DMAP_Y(half / o);                                                     \
    case MT_UNARY_ABS:        DMAP_X((T)((v > 0) - (v < 0)));                                       \
    case MT_UNARY_SIGN:       DMAP_X((T)0);                                                         \
    case MT_UNARY_POW_SCALAR: DMAP_X(p0 == 0 ? (T)0 : p0 * pow(v, p0 - one));                       \
    case MT_UNARY_CLAMP:      DMAP_X(((p0 == p0 && v < p0) || (p1 == p1 && v > p1)) ? (T)0 : one);  \
    case MT_UNARY_SIGMOID:    DMAP_Y(o * (one - o));                                                \
    case MT_UNARY_TANH:       DMAP_Y(one - o * o);                                                  \
    case MT_UNARY_RELU:       DMAP_X(v > 0 ? one : (T)0);                                           \
    case MT_UNARY_LEAKY_RELU: DMAP_X(v > 0 ? one : p0);                                             \
    case MT_UNARY_ELU:        DMAP_X(mt_elu_grad_##SUFFIX(v, p0));                                  \
    case MT_UNARY_GELU_ERF:   DMAP_X(mt_gelu_grad_##SUFFIX(v));                                     \
    case MT_UNARY_GELU_TANH:  DMAP_X(mt_gelu_tanh_grad_##SUFFIX(v));                                \
    case MT_UNARY_SILU:       DMAP_X(mt_silu_grad_##SUFFIX(v, p0));                                 \
    case MT_UNARY_SOFTPLUS:   DMAP_X(mt_softplus_grad_##SUFFIX(v, p0, p1));                         \
    case MT_UNARY_SCALE:      DMAP_X(p0);                                                           \
    default: break;                                                                               \
    }                                                                                             \
}

DEFINE_UNARY(float, f32)
DEFINE_UNARY(double, f64)
DEFINE_UNARY_BACKWARD(float, f32)
DEFINE_UNARY_BACKWARD(double, f64)

mt_status mt_cpu_unary(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, void *y, const double *params)
{
    if ((unsigned)kind >= MT_UNARY_KIND_COUNT) return MT_ERR_ARGUMENT;
    if (dtype == MT_F32) unary_f32(kind, n, x, y, params);
    else if (dtype == MT_F64) unary_f64(kind, n, x, y, params);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}

mt_status mt_cpu_unary_backward(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, const void *y,
                                const void *dy, void *dx, const double *params)
{
    if ((unsigned)kind >= MT_UNARY_KIND_COUNT) return MT_ERR_ARGUMENT;
    if (dtype == MT_F32) unary_backward_f32(kind, n, x, y, dy, dx, params);
    else if (dtype == MT_F64) unary_backward_f64(kind, n, x, y, dy, dx, params);
    else return MT_ERR_UNSUPPORTED;
    return MT_OK;
}

/* ---------------------------------------------------------------- binary maths */
#define ZIP(TO, EXPR)                                                                     \
    _Pragma("omp parallel for if (rows * len > MT_CPU_PARALLEL_GRAIN)")                   \
    for (int64_t r = 0; r < rows; r++) {                                                  \
        int64_t off[3];                                                                   \
        row_offsets(loop, 3, r, off);                                                     \
        TO *o = (TO *)out + off[0]; const elem_t *pa = a_ + off[1], *pb = b_ + off[2];    \
        if (so == 1 && sa == 1 && sb == 1)                                                \
            for (int64_t i = 0; i < len; i++) { elem_t u = pa[i], v = pb[i]; o[i] = (EXPR); } \
        else if (so == 1 && sa == 1 && sb == 0) {                                         \
            const elem_t v = pb[0];                                                       \
            for (int64_t i = 0; i < len; i++) { elem_t u = pa[i]; o[i] = (EXPR); }        \
        } else                                                                            \
            for (int64_t i = 0; i < len; i++) {                                           \
                elem_t u = pa[i * sa], v = pb[i * sb]; o[i * so] = (EXPR);                \
            }                                                                             \
    }                                                                                     \
    break

#define DEFINE_BINARY(T, SUFFIX)                                                          \
static void binary_##SUFFIX(mt_binary_kind kind, const mt_loop *loop, void *out,         \
                            const void *a, const void *b)                                 \
{                                                                                         \
    typedef T elem_t;                                                                             \
    const T *a_ = a, *b_ = b;                                                             \
    int64_t rows, len;                                                                    \
    loop_rows(loop, &rows, &len);                                                         \
    int64_t so = inner_stride(loop, 0), sa = inner_stride(loop, 1), sb = inner_stride(loop, 2); \
    switch (kind) {                                                                       \
    case MT_BINARY_ADD: ZIP(elem_t, u + v);                                                    \
    case MT_BINARY_SUB: ZIP(elem_t, u - v);                                                    \
    case MT_BINARY_MUL: ZIP(elem_t, u * v);                                                    \
    case MT_BINARY_DIV: ZIP(elem_t, u / v);                                                    \
    case MT_BINARY_POW: ZIP(elem_t, (T)pow((double)u, (double)v));                             \
    case MT_BINARY_MAX: ZIP(elem_t, (u != u || u > v) ? u : v);                                \
    case MT_BINARY_MIN: ZIP(elem_t, (u != u || u < v) ? u : v);                                \
    case MT_BINARY_EQ:  ZIP(uint8_t, u == v);                                             \
    case MT_BINARY_NE:  ZIP(uint8_t, u != v);                                             \
    case MT_BINARY_LT:  ZIP(uint8_t, u < v);                                              \
    case MT_BINARY_LE:  ZIP(uint8_t, u <= v);                                             \
    case MT_BINARY_GT:  ZIP(uint8_t, u > v);                                              \
    case MT_BINARY_GE:  ZIP(uint8_t, u >= v);                                             \
    default: break;                                                                       \
    }                                                                                     \
}

DEFINE_BINARY(float, f32)
DEFINE_BINARY(double, f64)
DEFINE_BINARY(int32_t, i32)
DEFINE_BINARY(int64_t, i64)
DEFINE_BINARY(uint8_t, u8)

mt_status mt_cpu_binary(mt_binary_kind kind, mt_dtype dtype, const mt_loop *loop, void *out, const void *a,
                        const void *b)
{
    if ((unsigned)kind >= MT_BINARY_KIND_COUNT) return MT_ERR_ARGUMENT;
    switch (dtype) {
    case MT_F32: binary_f32(kind, loop, out, a, b); break;
    case MT_F64: binary_f64(kind, loop, out, a, b); break;
    case MT_I32: binary_i32(kind, loop, out, a, b); break;
    case MT_I64: binary_i64(kind, loop, out, a, b); break;
    case MT_U8: case MT_BOOL: binary_u8(kind, loop, out, a, b); break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return MT_OK;
}

/* ---------------------------------------------------------------- where */
#define WHERE(T)                                                                          \
    do {                                                                                  \
        const uint8_t *c_ = cond; const T *a_ = a, *b_ = b; T *o_ = out;                  \
        _Pragma("omp parallel for if (rows * len > MT_CPU_PARALLEL_GRAIN)")               \
        for (int64_t r = 0; r < rows; r++) {                                              \
            int64_t off[4];                                                               \
            row_offsets(loop, 4, r, off);                                                 \
            for (int64_t i = 0; i < len; i++)                                             \
                o_[off[0] + i * s[0]] = c_[off[1] + i * s[1]] ? a_[off[2] + i * s[2]]     \
                                                                : b_[off[3] + i * s[3]];  \
        }                                                                                 \
    } while (0)

mt_status mt_cpu_where(mt_dtype dtype, const mt_loop *loop, void *out, const void *cond, const void *a, const void *b)
{
    int64_t rows, len, s[4];
    loop_rows(loop, &rows, &len);
    for (int k = 0; k < 4; k++) s[k] = inner_stride(loop, k);
    switch (mt_dtype_size(dtype)) {
    case 1: WHERE(uint8_t); break;
    case 4: WHERE(uint32_t); break;
    case 8: WHERE(uint64_t); break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return MT_OK;
}
