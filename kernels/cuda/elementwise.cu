/*
 * elementwise.cu - the CUDA kernels applied element by element: copies and
 * casts, fills, arange, unary maths and its derivatives, broadcasting binary
 * maths, where. Each computes what kernels/cpu/elementwise.c computes, with the
 * same formulas in the same precision and order of operations (expf, erff,
 * tanhf for f32; exp, erf, tanh for f64; never the fast-math __expf family;
 * the activations' formulas are kernels/scalar_math.h's, shared with the
 * CPU), so that under the SIMT emulator the results match the CPU's to rounding.
 *
 * How threads map to elements, for every kernel of this file: a 1-d grid of
 * EW_THREADS-thread blocks, thread t = blockIdx.x * blockDim.x + threadIdx.x of
 * T = gridDim.x * blockDim.x, walks elements t, t + T, t + 2T, ... (a
 * grid-stride loop over 64-bit indices). The grid is capped at EW_MAX_BLOCKS
 * blocks, so a large tensor gives each thread several elements rather than a
 * huge grid.
 *
 * Two layouts:
 *
 *   - contiguous: element i is at offset i of every operand (or at 0, for an
 *     operand broadcast from one value). When the pointers are 16-byte aligned
 *     and n >= EW_VEC_MIN, thread t first takes 16-byte vectors t, t + T, ...
 *     (float4, double2, int4; uint4 for plain moves) of the first nvec = n / W
 *     vectors of W elements, then the scalar tail: elements nvec W + t, ...
 *   - strided: the wrapper first simplifies the mt_loop (size-1 dims dropped,
 *     neighbouring dims that every operand walks as one run merged: the
 *     mt_loop_merge of kernels/loop.h that engine/checks.c uses), then each thread decomposes its linear index i
 *     into coordinates over the loop's shape (the last dim fastest, i.e.
 *     row-major) and dots them with every operand's strides. The division by a
 *     dim's size is a 32-bit multiply-high by a magic number prepared on the
 *     host (Granlund and Montgomery, as PyTorch's IntDivider) when the element
 *     count is below 2^31, a 64-bit division otherwise. The loop travels by
 *     value as a kernel argument (ew_index, about 400 bytes).
 *
 * Every wrapper launches on MT_STREAM() (the calling thread's current
 * stream) and returns the launch's status (mt_cuda_launch_status,
 * kernels/cuda/cuda_launch.h); a dtype it has no kernel for is
 * MT_ERR_UNSUPPORTED.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"
#include "kernels/scalar_math.h"

#include <string.h>

#define EW_THREADS 256
#define EW_MAX_BLOCKS 1024      /* 256 K threads: about two waves of 256-thread blocks on a 132-SM GPU */
#define EW_VEC_MIN 1024         /* the vector path from this many elements on */

#if MT_CUDA_EMULATED
#define EW_UNROLL
#else
#define EW_UNROLL _Pragma("unroll")
#endif

/* ================================================================ host helpers */

/* Blocks for `units` work items (elements or vectors), one per thread, capped. */
static unsigned ew_grid(int64_t units) { return mt_cuda_grid_1d(units, EW_THREADS, EW_MAX_BLOCKS); }

static int ew_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* ================================================================ strided index */
/* A simplified loop with what the kernels need to split a linear index. */
typedef struct ew_index {
    mt_loop loop;                  /* ndim >= 1, no size-1 dims (except one dim of size 1 for one element) */
    uint32_t magic[MT_MAX_DIMS];   /* q = (umulhi(r, magic) + r) >> shift == r / shape[d], for r < 2^31 */
    uint32_t shift[MT_MAX_DIMS];
    int fast;                      /* numel < 2^31: the 32-bit divisions apply */
} ew_index;

/* Simplifies loop for its first nops operands into ix (mt_loop_merge);
   returns the element count. */
static int64_t ew_index_build(ew_index *ix, const mt_loop *loop, int nops)
{
    memset(ix, 0, sizeof *ix);
    mt_loop *l = &ix->loop;
    l->ndim = loop->ndim;
    for (int d = 0; d < loop->ndim; d++) {
        l->shape[d] = loop->shape[d];
        for (int k = 0; k < nops; k++) l->stride[k][d] = loop->stride[k][d];
    }
    int64_t n = mt_loop_merge(l, nops);
    int m = l->ndim;
    ix->fast = n <= (int64_t)INT32_MAX;
    if (ix->fast && n > 0) {
        for (int d = 0; d < m; d++) {
            uint32_t div = (uint32_t)l->shape[d], s = 0;
            while (s < 31 && ((uint64_t)1 << s) < div) s++;
            ix->shift[d] = s;
            ix->magic[d] = (uint32_t)(((((uint64_t)1) << 32) * ((((uint64_t)1) << s) - div)) / div + 1);
        }
    }
    return n;
}

/* Whether operand k walks the simplified loop with unit stride (offset == index). */
static int ew_unit_stride(const ew_index *ix, int k)
{
    return ix->loop.ndim == 1 && (ix->loop.shape[0] == 1 || ix->loop.stride[k][0] == 1);
}

/* Whether operand k is one value broadcast over the whole loop. */
static int ew_broadcast_one(const ew_index *ix, int k)
{
    return ix->loop.ndim == 1 && ix->loop.stride[k][0] == 0;
}

/* r / d for r < 2^31, from the host's magic number and shift for d. */
static __device__ __forceinline__ uint32_t ew_div32(uint32_t r, uint32_t magic, uint32_t shift)
{
    return (__umulhi(r, magic) + r) >> shift;
}

/* off[k] = sum over d of coord_d(i) * stride[k][d] for the first nops operands,
   where coord(i) is the row-major multi-index of linear index i over the shape. */
static __device__ __forceinline__ void ew_offsets(const ew_index *ix, int nops, int64_t i, int64_t *off)
{
    EW_UNROLL
    for (int k = 0; k < 4; k++) off[k] = 0;
    if (ix->fast) {
        uint32_t r = (uint32_t)i;
        EW_UNROLL
        for (int d = MT_MAX_DIMS - 1; d >= 0; d--) {
            if (d >= ix->loop.ndim) continue;
            uint32_t q = d > 0 ? ew_div32(r, ix->magic[d], ix->shift[d]) : 0u;
            int64_t c = (int64_t)(r - q * (uint32_t)ix->loop.shape[d]);
            EW_UNROLL
            for (int k = 0; k < 4; k++)
                if (k < nops) off[k] += c * ix->loop.stride[k][d];
            r = q;
        }
    } else {
        int64_t r = i;
        EW_UNROLL
        for (int d = MT_MAX_DIMS - 1; d >= 0; d--) {
            if (d >= ix->loop.ndim) continue;
            int64_t q = d > 0 ? r / ix->loop.shape[d] : 0;
            int64_t c = r - q * ix->loop.shape[d];
            EW_UNROLL
            for (int k = 0; k < 4; k++)
                if (k < nops) off[k] += c * ix->loop.stride[k][d];
            r = q;
        }
    }
}

/* The grid-stride loop's start and step, as 64-bit values. */
#define EW_TID ((int64_t)blockIdx.x * blockDim.x + threadIdx.x)
#define EW_NTHREADS ((int64_t)gridDim.x * blockDim.x)

/* Per element type (suffix): the C type, W elements per 16-byte vector, and
   the vector load (into an array A[W]) and store (from A[W]) of vector J. */
#define EW_T_f32 float
#define EW_W_f32 4
#define EW_LOAD_f32(A, P, J)                                                                 \
    do {                                                                                     \
        float4 t_ = ((const float4 *)(P))[J];                                                \
        (A)[0] = t_.x; (A)[1] = t_.y; (A)[2] = t_.z; (A)[3] = t_.w;                          \
    } while (0)
#define EW_STORE_f32(P, J, A) (((float4 *)(P))[J] = make_float4((A)[0], (A)[1], (A)[2], (A)[3]))
#define EW_T_f64 double
#define EW_W_f64 2
#define EW_LOAD_f64(A, P, J)                                                                 \
    do {                                                                                     \
        double2 t_ = ((const double2 *)(P))[J];                                              \
        (A)[0] = t_.x; (A)[1] = t_.y;                                                        \
    } while (0)
#define EW_STORE_f64(P, J, A) (((double2 *)(P))[J] = make_double2((A)[0], (A)[1]))
#define EW_T_i32 int32_t
#define EW_W_i32 4
#define EW_LOAD_i32(A, P, J)                                                                 \
    do {                                                                                     \
        int4 t_ = ((const int4 *)(P))[J];                                                    \
        (A)[0] = t_.x; (A)[1] = t_.y; (A)[2] = t_.z; (A)[3] = t_.w;                          \
    } while (0)
#define EW_STORE_i32(P, J, A) (((int4 *)(P))[J] = make_int4((A)[0], (A)[1], (A)[2], (A)[3]))
#define EW_T_i64 int64_t
#define EW_T_u8 uint8_t

/* ================================================================ copy and cast */
/* Contiguous move of nbytes bytes, src and dst 16-byte aligned:
   dst[j] = src[j] for the 16-byte words j < nvec = nbytes / 16 (thread t takes
   words t, t + T, ...), then byte by byte for the tail bytes 16 nvec + t, .... */
static __global__ void k_move_vec(int64_t nbytes, int64_t nvec, uint4 *dst, const uint4 *src)
{
    const int64_t tid = EW_TID, nthreads = EW_NTHREADS;
    for (int64_t j = tid; j < nvec; j += nthreads) dst[j] = src[j];
    for (int64_t i = nvec * 16 + tid; i < nbytes; i += nthreads)
        ((unsigned char *)dst)[i] = ((const unsigned char *)src)[i];
}

/* Strided move of T-sized elements (a copy without conversion):
   dst[off_0(i)] = src[off_1(i)] for i < n, one element per thread per step. */
#define EW_DEFINE_MOVE(T, SUF)                                                               \
    static __global__ void k_move_##SUF(ew_index ix, int64_t n, T *dst, const T *src)        \
    {                                                                                        \
        const int64_t tid = EW_TID, nthreads = EW_NTHREADS;                                  \
        for (int64_t i = tid; i < n; i += nthreads) {                                        \
            int64_t off[4];                                                                  \
            ew_offsets(&ix, 2, i, off);                                                      \
            dst[off[0]] = src[off[1]];                                                       \
        }                                                                                    \
    }
EW_DEFINE_MOVE(uint8_t, b1)
EW_DEFINE_MOVE(uint32_t, b4)
EW_DEFINE_MOVE(uint64_t, b8)

/* One element held exactly while it changes dtype: integers and bools as
   int64, floats as double (every f32 and f64 value is a double). */
typedef struct ew_value {
    int is_float;
    int64_t i;
    double f;
} ew_value;

static __device__ __forceinline__ ew_value ew_load(mt_dtype dtype, const void *p, int64_t k)
{
    ew_value v = { 0, 0, 0.0 };
    switch (dtype) {
    case MT_F32: v.is_float = 1; v.f = (double)((const float *)p)[k]; break;
    case MT_F64: v.is_float = 1; v.f = ((const double *)p)[k]; break;
    case MT_I32: v.i = ((const int32_t *)p)[k]; break;
    case MT_I64: v.i = ((const int64_t *)p)[k]; break;
    default: v.i = ((const uint8_t *)p)[k]; break;   /* MT_U8, MT_BOOL */
    }
    return v;
}

/* Stores v as dtype with C's conversions, as the CPU's (TD)v does (one rounding
   from either source kind); bool is v != 0. Floats reach u8 through int64, so
   that values outside [0, 256) wrap as on the CPU instead of saturating. */
static __device__ __forceinline__ void ew_store(mt_dtype dtype, void *p, int64_t k, ew_value v)
{
    switch (dtype) {
    case MT_F32: ((float *)p)[k] = v.is_float ? (float)v.f : (float)v.i; break;
    case MT_F64: ((double *)p)[k] = v.is_float ? v.f : (double)v.i; break;
    case MT_I32: ((int32_t *)p)[k] = v.is_float ? (int32_t)v.f : (int32_t)v.i; break;
    case MT_I64: ((int64_t *)p)[k] = v.is_float ? (int64_t)v.f : v.i; break;
    case MT_U8: ((uint8_t *)p)[k] = (uint8_t)(v.is_float ? (int64_t)v.f : v.i); break;
    case MT_BOOL: ((uint8_t *)p)[k] = (uint8_t)(v.is_float ? v.f != 0.0 : v.i != 0); break;
    default: break;
    }
}

/* Strided copy with conversion: dst[off_0(i)] = (dst_dtype) src[off_1(i)] for
   i < n, one element per thread per step. The dtypes are the same for every
   thread, so the switches in ew_load and ew_store do not diverge. */
static __global__ void k_convert(ew_index ix, int64_t n, mt_dtype dst_dtype, void *dst, mt_dtype src_dtype,
                                 const void *src)
{
    const int64_t tid = EW_TID, nthreads = EW_NTHREADS;
    for (int64_t i = tid; i < n; i += nthreads) {
        int64_t off[4];
        ew_offsets(&ix, 2, i, off);
        ew_store(dst_dtype, dst, off[0], ew_load(src_dtype, src, off[1]));
    }
}

extern "C" mt_status MT_CUDA_FN(copy)(const mt_loop *loop, mt_dtype dst_dtype, void *dst, mt_dtype src_dtype,
                                      const void *src)
{
    size_t size = mt_dtype_size(dst_dtype);
    if (size == 0 || mt_dtype_size(src_dtype) == 0) return MT_ERR_UNSUPPORTED;
    ew_index ix;
    int64_t n = ew_index_build(&ix, loop, 2);
    if (n <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    int move = dst_dtype == src_dtype || (dst_dtype == MT_U8 && src_dtype == MT_BOOL);
    if (!move) {
        MT_LAUNCH(k_convert, ew_grid(n), EW_THREADS, 0, stream, ix, n, dst_dtype, dst, src_dtype, src);
    } else if (n >= EW_VEC_MIN && ew_unit_stride(&ix, 0) && ew_unit_stride(&ix, 1) && ew_aligned16(dst) &&
               ew_aligned16(src)) {
        int64_t nbytes = n * (int64_t)size, nvec = nbytes / 16;
        MT_LAUNCH(k_move_vec, ew_grid(nvec), EW_THREADS, 0, stream, nbytes, nvec, (uint4 *)dst, (const uint4 *)src);
    } else if (size == 1) {
        MT_LAUNCH(k_move_b1, ew_grid(n), EW_THREADS, 0, stream, ix, n, (uint8_t *)dst, (const uint8_t *)src);
    } else if (size == 4) {
        MT_LAUNCH(k_move_b4, ew_grid(n), EW_THREADS, 0, stream, ix, n, (uint32_t *)dst, (const uint32_t *)src);
    } else {
        MT_LAUNCH(k_move_b8, ew_grid(n), EW_THREADS, 0, stream, ix, n, (uint64_t *)dst, (const uint64_t *)src);
    }
    return mt_cuda_launch_status("cuda copy kernel");
}

/* ================================================================ fill and arange */
/* dst[i] = value for i < n, elements of `size` bytes whose bits `pattern`
   repeats: thread t stores the 16-byte pattern at words t, t + T, ... of the
   first nvec words (0 when dst is not 16-byte aligned), then single elements of
   the tail nvec (16 / size) + t, .... */
static __global__ void k_fill(int64_t n, int size, int64_t nvec, uint4 pattern, void *dst)
{
    const int64_t tid = EW_TID, nthreads = EW_NTHREADS;
    for (int64_t j = tid; j < nvec; j += nthreads) ((uint4 *)dst)[j] = pattern;
    const uint64_t wide = (uint64_t)pattern.x | ((uint64_t)pattern.y << 32);
    for (int64_t i = nvec * (16 / size) + tid; i < n; i += nthreads) {
        if (size == 1) ((uint8_t *)dst)[i] = (uint8_t)pattern.x;
        else if (size == 4) ((uint32_t *)dst)[i] = pattern.x;
        else ((uint64_t *)dst)[i] = wide;
    }
}

extern "C" mt_status MT_CUDA_FN(fill)(mt_dtype dtype, int64_t n, void *dst, double value)
{
    size_t size = mt_dtype_size(dtype);
    if (size == 0) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    /* the element's bits, converted on the host exactly as the CPU does */
    unsigned char bytes[16];
    switch (dtype) {
    case MT_F32: { float v = (float)value; for (int k = 0; k < 16; k += 4) memcpy(bytes + k, &v, 4); break; }
    case MT_F64: { double v = value; for (int k = 0; k < 16; k += 8) memcpy(bytes + k, &v, 8); break; }
    case MT_I32: { int32_t v = (int32_t)value; for (int k = 0; k < 16; k += 4) memcpy(bytes + k, &v, 4); break; }
    case MT_I64: { int64_t v = (int64_t)value; for (int k = 0; k < 16; k += 8) memcpy(bytes + k, &v, 8); break; }
    case MT_U8: memset(bytes, (uint8_t)value, 16); break;
    default: memset(bytes, value != 0, 16); break;   /* MT_BOOL */
    }
    uint4 pattern;
    memcpy(&pattern, bytes, sizeof pattern);
    int64_t per = 16 / (int64_t)size;
    int64_t nvec = ew_aligned16(dst) ? n / per : 0;
    cudaStream_t stream = MT_STREAM();
    MT_LAUNCH(k_fill, ew_grid(nvec > 0 ? nvec : n), EW_THREADS, 0, stream, n, (int)size, nvec, pattern, dst);
    return mt_cuda_launch_status("cuda fill kernel");
}

/* dst[i] = (dtype)(start + i * step) for i < n, in double as on the CPU: the
   explicit _rn operations keep nvcc from fusing them into one fma, which would
   round differently. One element per thread per step. */
static __global__ void k_arange(mt_dtype dtype, int64_t n, double start, double step, void *dst)
{
    const int64_t tid = EW_TID, nthreads = EW_NTHREADS;
    for (int64_t i = tid; i < n; i += nthreads) {
        double v = __dadd_rn(start, __dmul_rn((double)i, step));
        switch (dtype) {
        case MT_F32: ((float *)dst)[i] = (float)v; break;
        case MT_F64: ((double *)dst)[i] = v; break;
        case MT_I32: ((int32_t *)dst)[i] = (int32_t)v; break;
        case MT_I64: ((int64_t *)dst)[i] = (int64_t)v; break;
        default: ((uint8_t *)dst)[i] = (uint8_t)(int64_t)v; break;   /* MT_U8, MT_BOOL */
        }
    }
}

extern "C" mt_status MT_CUDA_FN(arange)(mt_dtype dtype, int64_t n, double start, double step, void *dst)
{
    if (mt_dtype_size(dtype) == 0) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    MT_LAUNCH(k_arange, ew_grid(n), EW_THREADS, 0, stream, dtype, n, start, step, dst);
    return mt_cuda_launch_status("cuda arange kernel");
}

/* ================================================================ unary maths */

/* One kind of a unary kernel: y[i] = EXPR of v = x[i]. Vectors j < nvec first
   (W elements each through one 16-byte load and store), then the scalar tail. */
#define EW_UNARY_CASE(SUF, KIND, EXPR)                                                       \
    case KIND:                                                                               \
        for (int64_t j = tid; j < nvec; j += nthreads) {                                     \
            T xs_[EW_W_##SUF], ys_[EW_W_##SUF];                                              \
            EW_LOAD_##SUF(xs_, x, j);                                                        \
            EW_UNROLL                                                                        \
            for (int k_ = 0; k_ < EW_W_##SUF; k_++) { T v = xs_[k_]; ys_[k_] = (EXPR); }     \
            EW_STORE_##SUF(y, j, ys_);                                                       \
        }                                                                                    \
        for (int64_t i = nvec * EW_W_##SUF + tid; i < n; i += nthreads) {                    \
            T v = x[i];                                                                      \
            y[i] = (EXPR);                                                                   \
        }                                                                                    \
        break

/* y = f(x) elementwise over contiguous x, y of n elements, f the unary kind
   with parameters p0, p1 (see mt_unary_kind), in the precision of T (the
   activations: kernels/scalar_math.h). The kind is the same for every
   thread: the switch picks one grid-stride loop. */
#define EW_DEFINE_UNARY(SUF, EXP, LOG, SQRT, FABS, POW, TANH)                                \
    static __global__ void k_unary_##SUF(mt_unary_kind kind, int64_t n, int64_t nvec,        \
                                         const EW_T_##SUF *x, EW_T_##SUF *y, double p0d,     \
                                         double p1d)                                         \
    {                                                                                        \
        typedef EW_T_##SUF T;                                                                \
        const T p0 = (T)p0d, p1 = (T)p1d;                                                    \
        const int64_t tid = EW_TID, nthreads = EW_NTHREADS;                                  \
        switch (kind) {                                                                      \
        EW_UNARY_CASE(SUF, MT_UNARY_NEG, -v);                                                \
        EW_UNARY_CASE(SUF, MT_UNARY_EXP, EXP(v));                                            \
        EW_UNARY_CASE(SUF, MT_UNARY_LOG, LOG(v));                                            \
        EW_UNARY_CASE(SUF, MT_UNARY_SQRT, SQRT(v));                                          \
        EW_UNARY_CASE(SUF, MT_UNARY_ABS, FABS(v));                                           \
        EW_UNARY_CASE(SUF, MT_UNARY_SIGN, (T)((v > 0) - (v < 0)));                           \
        EW_UNARY_CASE(SUF, MT_UNARY_POW_SCALAR, POW(v, p0));                                 \
        EW_UNARY_CASE(SUF, MT_UNARY_CLAMP,                                                   \
                      v != v ? v : (p0 == p0 && v < p0) ? p0 : (p1 == p1 && v > p1) ? p1 : v); \
        EW_UNARY_CASE(SUF, MT_UNARY_SIGMOID, mt_sigmoid_##SUF(v));                           \
        EW_UNARY_CASE(SUF, MT_UNARY_TANH, TANH(v));                                          \
        EW_UNARY_CASE(SUF, MT_UNARY_RELU, v > 0 ? v : (T)0);                                 \
        EW_UNARY_CASE(SUF, MT_UNARY_LEAKY_RELU, v > 0 ? v : p0 * v);                         \
        EW_UNARY_CASE(SUF, MT_UNARY_ELU, mt_elu_##SUF(v, p0));                               \
        EW_UNARY_CASE(SUF, MT_UNARY_GELU_ERF, mt_gelu_##SUF(v));                             \
        EW_UNARY_CASE(SUF, MT_UNARY_GELU_TANH, mt_gelu_tanh_##SUF(v));                       \
        EW_UNARY_CASE(SUF, MT_UNARY_SILU, mt_silu_##SUF(v, p0));                             \
        EW_UNARY_CASE(SUF, MT_UNARY_SOFTPLUS, mt_softplus_##SUF(v, p0, p1));                 \
        EW_UNARY_CASE(SUF, MT_UNARY_SCALE, p0 * v + p1);                                     \
        default: break;                                                                      \
        }                                                                                    \
    }
EW_DEFINE_UNARY(f32, expf, logf, sqrtf, fabsf, powf, tanhf)
EW_DEFINE_UNARY(f64, exp, log, sqrt, fabs, pow, tanh)

/* One kind of a unary backward kernel: dx[i] = dy[i] * EXPR, where EXPR reads
   v = IN[i], IN being x or y = f(x) (whichever makes f' cheaper, as on the
   CPU). Vectors j < nvec first, then the scalar tail. */
#define EW_DX_CASE(SUF, KIND, IN, EXPR)                                                      \
    case KIND:                                                                               \
        for (int64_t j = tid; j < nvec; j += nthreads) {                                     \
            T vs_[EW_W_##SUF], gs_[EW_W_##SUF];                                              \
            EW_LOAD_##SUF(vs_, IN, j);                                                       \
            EW_LOAD_##SUF(gs_, dy, j);                                                       \
            EW_UNROLL                                                                        \
            for (int k_ = 0; k_ < EW_W_##SUF; k_++) { T v = vs_[k_]; gs_[k_] *= (EXPR); }    \
            EW_STORE_##SUF(dx, j, gs_);                                                      \
        }                                                                                    \
        for (int64_t i = nvec * EW_W_##SUF + tid; i < n; i += nthreads) {                    \
            T v = IN[i];                                                                     \
            dx[i] = dy[i] * (EXPR);                                                          \
        }                                                                                    \
        break

/* One kind whose derivative is a constant C: dx[i] = dy[i] * C (neither x nor y is read). */
#define EW_DX_CONST_CASE(SUF, KIND, C)                                                       \
    case KIND:                                                                               \
        for (int64_t j = tid; j < nvec; j += nthreads) {                                     \
            T gs_[EW_W_##SUF];                                                               \
            EW_LOAD_##SUF(gs_, dy, j);                                                       \
            EW_UNROLL                                                                        \
            for (int k_ = 0; k_ < EW_W_##SUF; k_++) gs_[k_] *= (C);                          \
            EW_STORE_##SUF(dx, j, gs_);                                                      \
        }                                                                                    \
        for (int64_t i = nvec * EW_W_##SUF + tid; i < n; i += nthreads) dx[i] = dy[i] * (C); \
        break

/* dx = dy * f'(x) elementwise over contiguous arrays of n elements, f the
   unary kind; f' from x, or from y = f(x) for exp, sqrt, sigmoid and tanh.
   The launch bounds (4 blocks of EW_THREADS per SM, so at most 64 registers)
   keep the f64 kernel, whose pow and erf paths would take 126 registers, at
   half occupancy rather than a quarter; ptxas reports no spills. */
#define EW_DEFINE_UNARY_BACKWARD(SUF, POW)                                                   \
    static __global__ void __launch_bounds__(EW_THREADS, 4)                                  \
    k_unary_backward_##SUF(mt_unary_kind kind, int64_t n, int64_t nvec, const EW_T_##SUF *x, \
                           const EW_T_##SUF *y, const EW_T_##SUF *dy, EW_T_##SUF *dx,        \
                           double p0d, double p1d)                                           \
    {                                                                                        \
        typedef EW_T_##SUF T;                                                                \
        const T p0 = (T)p0d, p1 = (T)p1d, one = 1, half = (T)0.5;                            \
        const int64_t tid = EW_TID, nthreads = EW_NTHREADS;                                  \
        switch (kind) {                                                                      \
        EW_DX_CONST_CASE(SUF, MT_UNARY_NEG, -one);                                           \
        EW_DX_CASE(SUF, MT_UNARY_EXP, y, v);                                                 \
        EW_DX_CASE(SUF, MT_UNARY_LOG, x, one / v);                                           \
        EW_DX_CASE(SUF, MT_UNARY_SQRT, y, half / v);                                         \
        EW_DX_CASE(SUF, MT_UNARY_ABS, x, (T)((v > 0) - (v < 0)));                            \
        EW_DX_CONST_CASE(SUF, MT_UNARY_SIGN, (T)0);                                          \
        EW_DX_CASE(SUF, MT_UNARY_POW_SCALAR, x, p0 == 0 ? (T)0 : p0 * POW(v, p0 - one));     \
        EW_DX_CASE(SUF, MT_UNARY_CLAMP, x, ((p0 == p0 && v < p0) || (p1 == p1 && v > p1)) ? (T)0 : one); \
        EW_DX_CASE(SUF, MT_UNARY_SIGMOID, y, v * (one - v));                                 \
        EW_DX_CASE(SUF, MT_UNARY_TANH, y, one - v * v);                                      \
        EW_DX_CASE(SUF, MT_UNARY_RELU, x, v > 0 ? one : (T)0);                               \
        EW_DX_CASE(SUF, MT_UNARY_LEAKY_RELU, x, v > 0 ? one : p0);                           \
        EW_DX_CASE(SUF, MT_UNARY_ELU, x, mt_elu_grad_##SUF(v, p0));                          \
        EW_DX_CASE(SUF, MT_UNARY_GELU_ERF, x, mt_gelu_grad_##SUF(v));                        \
        EW_DX_CASE(SUF, MT_UNARY_GELU_TANH, x, mt_gelu_tanh_grad_##SUF(v));                  \
        EW_DX_CASE(SUF, MT_UNARY_SILU, x, mt_silu_grad_##SUF(v, p0));                        \
        EW_DX_CASE(SUF, MT_UNARY_SOFTPLUS, x, mt_softplus_grad_##SUF(v, p0, p1));            \
        EW_DX_CONST_CASE(SUF, MT_UNARY_SCALE, p0);                                           \
        default: break;                                                                      \
        }                                                                                    \
    }
EW_DEFINE_UNARY_BACKWARD(f32, powf)
EW_DEFINE_UNARY_BACKWARD(f64, pow)

/* The vectors of a contiguous array of n elements: n / w when n is large
   enough and every given pointer is 16-byte aligned, else 0 (scalar path). */
static int64_t ew_vectors(int64_t n, int64_t w, const void *p0, const void *p1, const void *p2, const void *p3)
{
    if (n < EW_VEC_MIN) return 0;
    if (!ew_aligned16(p0) || !ew_aligned16(p1) || !ew_aligned16(p2) || !ew_aligned16(p3)) return 0;
    return n / w;
}

extern "C" mt_status MT_CUDA_FN(unary)(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, void *y,
                                       const double *params)
{
    if ((unsigned)kind >= MT_UNARY_KIND_COUNT) return MT_ERR_ARGUMENT;
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    double p0 = params ? params[0] : 0, p1 = params ? params[1] : 0;
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32) {
        int64_t nvec = ew_vectors(n, EW_W_f32, x, y, NULL, NULL);
        MT_LAUNCH(k_unary_f32, ew_grid(nvec > 0 ? nvec : n), EW_THREADS, 0, stream, kind, n, nvec,
                  (const float *)x, (float *)y, p0, p1);
    } else if (dtype == MT_F64) {
        int64_t nvec = ew_vectors(n, EW_W_f64, x, y, NULL, NULL);
        MT_LAUNCH(k_unary_f64, ew_grid(nvec > 0 ? nvec : n), EW_THREADS, 0, stream, kind, n, nvec,
                  (const double *)x, (double *)y, p0, p1);
    }
    return mt_cuda_launch_status("cuda unary kernel");
}

extern "C" mt_status MT_CUDA_FN(unary_backward)(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x,
                                                const void *y, const void *dy, void *dx, const double *params)
{
    if ((unsigned)kind >= MT_UNARY_KIND_COUNT) return MT_ERR_ARGUMENT;
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    double p0 = params ? params[0] : 0, p1 = params ? params[1] : 0;
    cudaStream_t stream = MT_STREAM();
    if (dtype == MT_F32) {
        int64_t nvec = ew_vectors(n, EW_W_f32, x, y, dy, dx);
        MT_LAUNCH(k_unary_backward_f32, ew_grid(nvec > 0 ? nvec : n), EW_THREADS, 0, stream, kind, n, nvec,
                  (const float *)x, (const float *)y, (const float *)dy, (float *)dx, p0, p1);
    } else if (dtype == MT_F64) {
        int64_t nvec = ew_vectors(n, EW_W_f64, x, y, dy, dx);
        MT_LAUNCH(k_unary_backward_f64, ew_grid(nvec > 0 ? nvec : n), EW_THREADS, 0, stream, kind, n, nvec,
                  (const double *)x, (const double *)y, (const double *)dy, (double *)dx, p0, p1);
    }
    return mt_cuda_launch_status("cuda unary_backward kernel");
}

/* ================================================================ binary maths */
/* The kinds of binary kernel, EXPR over u = a element, v = b element; CASE
   names the macro that wraps one kind's loop. Comparisons write bool (uint8_t). */
#define EW_BINARY_ARITHMETIC(CASE, ...)                                                      \
    CASE(__VA_ARGS__, T, MT_BINARY_ADD, u + v);                                              \
    CASE(__VA_ARGS__, T, MT_BINARY_SUB, u - v);                                              \
    CASE(__VA_ARGS__, T, MT_BINARY_MUL, u * v);                                              \
    CASE(__VA_ARGS__, T, MT_BINARY_DIV, u / v);                                              \
    CASE(__VA_ARGS__, T, MT_BINARY_POW, (T)pow((double)u, (double)v));                       \
    CASE(__VA_ARGS__, T, MT_BINARY_MAX, (u != u || u > v) ? u : v);                          \
    CASE(__VA_ARGS__, T, MT_BINARY_MIN, (u != u || u < v) ? u : v)
#define EW_BINARY_COMPARISONS(CASE, ...)                                                     \
    CASE(__VA_ARGS__, uint8_t, MT_BINARY_EQ, u == v);                                        \
    CASE(__VA_ARGS__, uint8_t, MT_BINARY_NE, u != v);                                        \
    CASE(__VA_ARGS__, uint8_t, MT_BINARY_LT, u < v);                                         \
    CASE(__VA_ARGS__, uint8_t, MT_BINARY_LE, u <= v);                                        \
    CASE(__VA_ARGS__, uint8_t, MT_BINARY_GT, u > v);                                         \
    CASE(__VA_ARGS__, uint8_t, MT_BINARY_GE, u >= v)

/* One kind of the strided binary kernel: out[off_0(i)] = EXPR(a[off_1(i)], b[off_2(i)]). */
#define EW_BINARY_CASE(UNUSED, TO, KIND, EXPR)                                               \
    case KIND:                                                                               \
        for (int64_t i = tid; i < n; i += nthreads) {                                        \
            int64_t off[4];                                                                  \
            ew_offsets(&ix, 3, i, off);                                                      \
            T u = a[off[1]], v = b[off[2]];                                                  \
            ((TO *)out)[off[0]] = (EXPR);                                                    \
        }                                                                                    \
        break

/* out = a (kind) b over a broadcasting loop (operand 0 out, 1 a, 2 b) of n
   elements, one element per thread per step; the element type T is a's and
   b's, comparisons write bool. */
#define EW_DEFINE_BINARY(SUF)                                                                \
    static __global__ void k_binary_##SUF(mt_binary_kind kind, ew_index ix, int64_t n, void *out, \
                                          const EW_T_##SUF *a, const EW_T_##SUF *b)          \
    {                                                                                        \
        typedef EW_T_##SUF T;                                                                \
        const int64_t tid = EW_TID, nthreads = EW_NTHREADS;                                  \
        switch (kind) {                                                                      \
        EW_BINARY_ARITHMETIC(EW_BINARY_CASE, 0);                                             \
        EW_BINARY_COMPARISONS(EW_BINARY_CASE, 0);                                            \
        default: break;                                                                      \
        }                                                                                    \
    }
EW_DEFINE_BINARY(f32)
EW_DEFINE_BINARY(f64)
EW_DEFINE_BINARY(i32)
EW_DEFINE_BINARY(i64)
EW_DEFINE_BINARY(u8)

/* One kind of the contiguous binary kernel: out[i] = EXPR(a[i a_step], b[i b_step]),
   a_step and b_step 1 (an array) or 0 (one value); vectors j < nvec first
   (an operand of step 0 is its one value repeated), then the scalar tail. */
#define EW_BINARY_VEC_CASE(SUF, TO, KIND, EXPR)                                              \
    case KIND:                                                                               \
        for (int64_t j = tid; j < nvec; j += nthreads) {                                     \
            T as_[EW_W_##SUF], bs_[EW_W_##SUF], os_[EW_W_##SUF];                             \
            if (a_step) EW_LOAD_##SUF(as_, a, j);                                            \
            else for (int k_ = 0; k_ < EW_W_##SUF; k_++) as_[k_] = a0;                       \
            if (b_step) EW_LOAD_##SUF(bs_, b, j);                                            \
            else for (int k_ = 0; k_ < EW_W_##SUF; k_++) bs_[k_] = b0;                       \
            EW_UNROLL                                                                        \
            for (int k_ = 0; k_ < EW_W_##SUF; k_++) { T u = as_[k_], v = bs_[k_]; os_[k_] = (EXPR); } \
            EW_STORE_##SUF(out, j, os_);                                                     \
        }                                                                                    \
        for (int64_t i = nvec * EW_W_##SUF + tid; i < n; i += nthreads) {                    \
            T u = a[i * a_step], v = b[i * b_step];                                          \
            out[i] = (EXPR);                                                                 \
        }                                                                                    \
        break

/* out = a (kind) b, arithmetic kinds only, over contiguous out of n elements
   with a and b contiguous or single values: the vector path of k_binary. */
#define EW_DEFINE_BINARY_VEC(SUF)                                                            \
    static __global__ void k_binary_vec_##SUF(mt_binary_kind kind, int64_t n, int64_t nvec,  \
                                              EW_T_##SUF *out, const EW_T_##SUF *a, int a_step, \
                                              const EW_T_##SUF *b, int b_step)               \
    {                                                                                        \
        typedef EW_T_##SUF T;                                                                \
        const int64_t tid = EW_TID, nthreads = EW_NTHREADS;                                  \
        const T a0 = a_step ? (T)0 : a[0], b0 = b_step ? (T)0 : b[0];                        \
        switch (kind) {                                                                      \
        EW_BINARY_ARITHMETIC(EW_BINARY_VEC_CASE, SUF);                                       \
        default: break;                                                                      \
        }                                                                                    \
    }
EW_DEFINE_BINARY_VEC(f32)
EW_DEFINE_BINARY_VEC(f64)
EW_DEFINE_BINARY_VEC(i32)

/* The vector path's plan: the vectors of out (0: take the strided kernel), and
   a's and b's steps. Arithmetic kinds over contiguous out with each input
   contiguous or one value, the arrays 16-byte aligned, n large enough. */
static int64_t ew_binary_vectors(mt_binary_kind kind, const ew_index *ix, int64_t n, int64_t w, const void *out,
                                 const void *a, const void *b, int *a_step, int *b_step)
{
    if (mt_binary_is_comparison(kind) || n < EW_VEC_MIN || !ew_unit_stride(ix, 0)) return 0;
    int sa = ew_unit_stride(ix, 1), sb = ew_unit_stride(ix, 2);
    if ((!sa && !ew_broadcast_one(ix, 1)) || (!sb && !ew_broadcast_one(ix, 2))) return 0;
    if (!ew_aligned16(out) || (sa && !ew_aligned16(a)) || (sb && !ew_aligned16(b))) return 0;
    *a_step = sa;
    *b_step = sb;
    return n / w;
}

#define EW_LAUNCH_BINARY(SUF)                                                                \
    MT_LAUNCH(k_binary_##SUF, ew_grid(n), EW_THREADS, 0, stream, kind, ix, n, out,           \
              (const EW_T_##SUF *)a, (const EW_T_##SUF *)b)
#define EW_LAUNCH_BINARY_OR_VEC(SUF)                                                         \
    do {                                                                                     \
        int a_step = 1, b_step = 1;                                                          \
        int64_t nvec = ew_binary_vectors(kind, &ix, n, EW_W_##SUF, out, a, b, &a_step, &b_step); \
        if (nvec > 0)                                                                        \
            MT_LAUNCH(k_binary_vec_##SUF, ew_grid(nvec), EW_THREADS, 0, stream, kind, n, nvec, \
                      (EW_T_##SUF *)out, (const EW_T_##SUF *)a, a_step, (const EW_T_##SUF *)b, b_step); \
        else                                                                                 \
            EW_LAUNCH_BINARY(SUF);                                                           \
    } while (0)

extern "C" mt_status MT_CUDA_FN(binary)(mt_binary_kind kind, mt_dtype dtype, const mt_loop *loop, void *out,
                                        const void *a, const void *b)
{
    if ((unsigned)kind >= MT_BINARY_KIND_COUNT) return MT_ERR_ARGUMENT;
    if (mt_dtype_size(dtype) == 0) return MT_ERR_UNSUPPORTED;
    ew_index ix;
    int64_t n = ew_index_build(&ix, loop, 3);
    if (n <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    switch (dtype) {
    case MT_F32: EW_LAUNCH_BINARY_OR_VEC(f32); break;
    case MT_F64: EW_LAUNCH_BINARY_OR_VEC(f64); break;
    case MT_I32: EW_LAUNCH_BINARY_OR_VEC(i32); break;
    case MT_I64: EW_LAUNCH_BINARY(i64); break;
    case MT_U8: case MT_BOOL: EW_LAUNCH_BINARY(u8); break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return mt_cuda_launch_status("cuda binary kernel");
}

/* ================================================================ where */
/* out[off_0(i)] = cond[off_1(i)] ? a[off_2(i)] : b[off_3(i)] over a broadcasting
   loop of n elements of T's size (the dtype does not matter to a move), one
   element per thread per step. */
#define EW_DEFINE_WHERE(T, SUF)                                                              \
    static __global__ void k_where_##SUF(ew_index ix, int64_t n, T *out, const uint8_t *cond, \
                                         const T *a, const T *b)                             \
    {                                                                                        \
        const int64_t tid = EW_TID, nthreads = EW_NTHREADS;                                  \
        for (int64_t i = tid; i < n; i += nthreads) {                                        \
            int64_t off[4];                                                                  \
            ew_offsets(&ix, 4, i, off);                                                      \
            out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];                              \
        }                                                                                    \
    }
EW_DEFINE_WHERE(uint8_t, b1)
EW_DEFINE_WHERE(uint32_t, b4)
EW_DEFINE_WHERE(uint64_t, b8)

extern "C" mt_status MT_CUDA_FN(where)(mt_dtype dtype, const mt_loop *loop, void *out, const void *cond,
                                       const void *a, const void *b)
{
    size_t size = mt_dtype_size(dtype);
    if (size != 1 && size != 4 && size != 8) return MT_ERR_UNSUPPORTED;
    ew_index ix;
    int64_t n = ew_index_build(&ix, loop, 4);
    if (n <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    const uint8_t *c = (const uint8_t *)cond;
    switch (size) {
    case 1:
        MT_LAUNCH(k_where_b1, ew_grid(n), EW_THREADS, 0, stream, ix, n, (uint8_t *)out, c, (const uint8_t *)a,
                  (const uint8_t *)b);
        break;
    case 4:
        MT_LAUNCH(k_where_b4, ew_grid(n), EW_THREADS, 0, stream, ix, n, (uint32_t *)out, c, (const uint32_t *)a,
                  (const uint32_t *)b);
        break;
    case 8:
        MT_LAUNCH(k_where_b8, ew_grid(n), EW_THREADS, 0, stream, ix, n, (uint64_t *)out, c, (const uint64_t *)a,
                  (const uint64_t *)b);
        break;
    }
    return mt_cuda_launch_status("cuda where kernel");
}
