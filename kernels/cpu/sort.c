/*
 * sort.c - sorting contiguous rows, and moving values along a dim by index
 * (what sort's and topk's derivatives need).
 *
 * sort_rows: each row x[r, 0..n) is sorted into values[r, ..] with
 * indices[r, j] = the position in the row of values[r, j]. The order is
 * PyTorch's stable sort: ascending (or descending), NaN greater than every
 * number (last ascending, first descending), equal elements (and NaNs among
 * themselves) in the order of their positions. -0.0 and 0.0 are equal.
 * Equivalently, rows are sorted under the strict total order `before` on
 * (value, position) pairs below, in which no two pairs are equal: so the
 * result is unique, and any correct sort (the CUDA kernel's bitonic network)
 * produces exactly this one.
 *
 * The sort is a bottom-up merge sort (insertion sort of runs of SORT_RUN,
 * then merges of doubling width between the row and a scratch row), one row
 * per thread; rows are independent, so the result does not depend on the
 * thread count. The scratch rows (one per thread) come from
 * mt_cpu_scratch_alloc: without them the sort returns MT_ERR_MEMORY.
 *
 * take_along / put_along over [outer, n, inner] with an index of shape
 * [outer, k, inner]:
 *   take_along  out[o, j, i] = x[o, index[o, j, i], i]           (a gather)
 *   put_along   out[o, index[o, j, i], i] = src[o, j, i]          (a scatter)
 * put_along writes only where the index points (the caller zeroes out first)
 * and expects the indices of a column (o, :, i) to be distinct, as a sort's
 * or topk's are; indices outside [0, n) are skipped.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <omp.h>
#include <string.h>

#define SORT_RUN 16

/* Whether (a, ia) comes strictly before (b, ib): see the header comment. */
#define DEFINE_BEFORE(T, SFX, ISNAN)                                                          \
static inline bool before_##SFX(T a, int64_t ia, T b, int64_t ib, bool descending)            \
{                                                                                             \
    bool an = ISNAN(a), bn = ISNAN(b);                                                        \
    if (an || bn) return an && bn ? ia < ib : (descending ? an : bn);                         \
    if (a == b) return ia < ib;                                                               \
    return descending ? a > b : a < b;                                                        \
}

#define FLOAT_NAN(v) ((v) != (v))
#define NEVER_NAN(v) ((void)(v), false)

/* Sorts v[0..n) with their positions i[0..n) (initially 0..n-1), using tv, ti
   (n elements each) as scratch. */
#define DEFINE_SORT_ROW(T, SFX)                                                               \
static void sort_row_##SFX(int64_t n, bool desc, T *v, int64_t *ix, T *tv, int64_t *ti)       \
{                                                                                             \
    for (int64_t s = 0; s < n; s += SORT_RUN) {       /* insertion sort of each run */        \
        int64_t e = s + SORT_RUN < n ? s + SORT_RUN : n;                                      \
        for (int64_t j = s + 1; j < e; j++) {                                                 \
            T key = v[j];                                                                     \
            int64_t ki = ix[j], m = j;                                                        \
            while (m > s && before_##SFX(key, ki, v[m - 1], ix[m - 1], desc)) {               \
                v[m] = v[m - 1];                                                              \
                ix[m] = ix[m - 1];                                                            \
                m--;                                                                          \
            }                                                                                 \
            v[m] = key;                                                                       \
            ix[m] = ki;                                                                       \
        }                                                                                     \
    }                                                                                         \
    T *src = v, *dst = tv;                                                                    \
    int64_t *isrc = ix, *idst = ti;                                                           \
    for (int64_t w = SORT_RUN; w < n; w *= 2) {       /* merge runs of width w pairwise */    \
        for (int64_t s = 0; s < n; s += 2 * w) {                                              \
            int64_t m = s + w < n ? s + w : n, e = s + 2 * w < n ? s + 2 * w : n;             \
            int64_t a = s, b = m, o = s;                                                      \
            while (a < m && b < e) {                                                          \
                bool right = before_##SFX(src[b], isrc[b], src[a], isrc[a], desc);            \
                dst[o] = right ? src[b] : src[a];                                             \
                idst[o++] = right ? isrc[b++] : isrc[a++];                                    \
            }                                                                                 \
            for (; a < m; a++, o++) { dst[o] = src[a]; idst[o] = isrc[a]; }                   \
            for (; b < e; b++, o++) { dst[o] = src[b]; idst[o] = isrc[b]; }                   \
        }                                                                                     \
        T *t = src; src = dst; dst = t;                                                       \
        int64_t *it = isrc; isrc = idst; idst = it;                                           \
    }                                                                                         \
    if (src != v) {                                                                           \
        memcpy(v, src, (size_t)n * sizeof(T));                                                \
        memcpy(ix, isrc, (size_t)n * sizeof(int64_t));                                        \
    }                                                                                         \
}                                                                                             \
static mt_status sort_rows_##SFX(int64_t rows, int64_t n, bool desc, const T *x, T *values,  \
                                 int64_t *indices)                                            \
{                                                                                             \
    /* scratch: one row of values and one of positions per thread, taken before    */       \
    /* the parallel region (mt_cpu_scratch_alloc is not for use inside one)           */     \
    bool parallel = rows * n > MT_CPU_PARALLEL_GRAIN;                                         \
    int threads = parallel ? omp_get_max_threads() : 1;                                       \
    size_t per_thread = n > SORT_RUN ? ((size_t)n * (sizeof(T) + sizeof(int64_t)) + 63) & ~(size_t)63 : 0; \
    size_t scratch_bytes = per_thread * (size_t)threads;                                      \
    char *scratch = scratch_bytes ? mt_cpu_scratch_alloc(scratch_bytes) : NULL;               \
    if (scratch_bytes && !scratch) return MT_ERR_MEMORY;                                      \
    _Pragma("omp parallel num_threads(threads) if (parallel)")                                \
    {                                                                                         \
        char *mine = scratch ? scratch + per_thread * (size_t)omp_get_thread_num() : NULL;    \
        int64_t *ti = (int64_t *)mine;                                                        \
        T *tv = mine ? (T *)(mine + (size_t)n * sizeof(int64_t)) : NULL;                      \
        _Pragma("omp for schedule(static)")                                                   \
        for (int64_t r = 0; r < rows; r++) {                                                  \
            T *v = values + r * n;                                                            \
            int64_t *ix = indices + r * n;                                                    \
            memcpy(v, x + r * n, (size_t)n * sizeof(T));                                      \
            for (int64_t j = 0; j < n; j++) ix[j] = j;                                        \
            sort_row_##SFX(n, desc, v, ix, tv, ti);                                           \
        }                                                                                     \
    }                                                                                         \
    if (scratch) mt_cpu_scratch_free(scratch, scratch_bytes);                                 \
    return MT_OK;                                                                             \
}

DEFINE_BEFORE(float, f32, FLOAT_NAN)
DEFINE_BEFORE(double, f64, FLOAT_NAN)
DEFINE_BEFORE(int32_t, i32, NEVER_NAN)
DEFINE_BEFORE(int64_t, i64, NEVER_NAN)
DEFINE_BEFORE(uint8_t, u8, NEVER_NAN)
DEFINE_SORT_ROW(float, f32)
DEFINE_SORT_ROW(double, f64)
DEFINE_SORT_ROW(int32_t, i32)
DEFINE_SORT_ROW(int64_t, i64)
DEFINE_SORT_ROW(uint8_t, u8)

mt_status mt_cpu_sort_rows(mt_dtype dtype, int64_t rows, int64_t n, bool descending, const void *x, void *values,
                           int64_t *indices)
{
    if (rows <= 0 || n <= 0) return MT_OK;
    switch (dtype) {
    case MT_F32: return sort_rows_f32(rows, n, descending, x, values, indices);
    case MT_F64: return sort_rows_f64(rows, n, descending, x, values, indices);
    case MT_I32: return sort_rows_i32(rows, n, descending, x, values, indices);
    case MT_I64: return sort_rows_i64(rows, n, descending, x, values, indices);
    case MT_U8: case MT_BOOL: return sort_rows_u8(rows, n, descending, x, values, indices);
    default: return MT_ERR_UNSUPPORTED;
    }
}

#define DEFINE_ALONG(T, SFX)                                                                  \
static void take_along_##SFX(int64_t outer, int64_t n, int64_t k, int64_t inner, const T *x, \
                             const int64_t *index, T *out)                                    \
{                                                                                             \
    _Pragma("omp parallel for collapse(2) schedule(static) if (outer * k * inner > MT_CPU_PARALLEL_GRAIN)") \
    for (int64_t o = 0; o < outer; o++)                                                       \
        for (int64_t j = 0; j < k; j++)                                                       \
            for (int64_t i = 0; i < inner; i++) {                                             \
                int64_t at = (o * k + j) * inner + i, src = index[at];                        \
                out[at] = src >= 0 && src < n ? x[(o * n + src) * inner + i] : (T)0;          \
            }                                                                                 \
}                                                                                             \
static void put_along_##SFX(int64_t outer, int64_t n, int64_t k, int64_t inner, const T *src, \
                            const int64_t *index, T *out)                                     \
{                                                                                             \
    _Pragma("omp parallel for collapse(2) schedule(static) if (outer * k * inner > MT_CPU_PARALLEL_GRAIN)") \
    for (int64_t o = 0; o < outer; o++)                                                       \
        for (int64_t j = 0; j < k; j++)                                                       \
            for (int64_t i = 0; i < inner; i++) {                                             \
                int64_t at = (o * k + j) * inner + i, dst = index[at];                        \
                if (dst >= 0 && dst < n) out[(o * n + dst) * inner + i] = src[at];            \
            }                                                                                 \
}

DEFINE_ALONG(float, f32)
DEFINE_ALONG(double, f64)

mt_status mt_cpu_take_along(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *x,
                            const int64_t *index, void *out)
{
    if (outer <= 0 || k <= 0 || inner <= 0) return MT_OK;
    switch (dtype) {
    case MT_F32: take_along_f32(outer, n, k, inner, x, index, out); return MT_OK;
    case MT_F64: take_along_f64(outer, n, k, inner, x, index, out); return MT_OK;
    default: return MT_ERR_UNSUPPORTED;
    }
}

mt_status mt_cpu_put_along(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *src,
                           const int64_t *index, void *out)
{
    if (outer <= 0 || k <= 0 || inner <= 0) return MT_OK;
    switch (dtype) {
    case MT_F32: put_along_f32(outer, n, k, inner, src, index, out); return MT_OK;
    case MT_F64: put_along_f64(outer, n, k, inner, src, index, out); return MT_OK;
    default: return MT_ERR_UNSUPPORTED;
    }
}
