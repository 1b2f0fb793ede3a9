/*
 * scan.c - cumulative sums over the middle axis of a contiguous
 * [outer, n, inner] array, element (o, j, i) at (o n + j) inner + i:
 *
 *   forward   y[o, j, i] = sum_{j' <= j} x[o, j', i]
 *   reverse   y[o, j, i] = sum_{j' >= j} x[o, j', i]   (the vjp of the forward)
 *
 * f32 and f64 accumulate in double (as PyTorch's CPU cumsum does), i64 in
 * unsigned 64-bit arithmetic (wrapping on overflow, without undefined
 * behaviour). Every output column is summed by one thread in the order of j,
 * so the result does not depend on the thread count.
 */
#include "kernels/cpu/cpu_kernels.h"

/* Columns per block of the inner > 1 walk: their accumulators live on the stack,
   and each step over j reads COLS contiguous elements. */
#define SCAN_COLS 64

#define DEFINE_CUMSUM(T, SFX, ACC)                                                            \
static void cumsum_##SFX(int64_t outer, int64_t n, int64_t inner, bool reverse, const T *x, T *y) \
{                                                                                             \
    if (inner == 1) {                                                                         \
        _Pragma("omp parallel for schedule(static) if (outer * n > MT_CPU_PARALLEL_GRAIN)")   \
        for (int64_t o = 0; o < outer; o++) {                                                 \
            const T *p = x + o * n;                                                           \
            T *q = y + o * n;                                                                 \
            ACC acc = 0;                                                                      \
            for (int64_t j = 0; j < n; j++) {                                                 \
                int64_t at = reverse ? n - 1 - j : j;                                         \
                acc += (ACC)p[at];                                                            \
                q[at] = (T)acc;                                                               \
            }                                                                                 \
        }                                                                                     \
        return;                                                                               \
    }                                                                                         \
    int64_t blocks = (inner + SCAN_COLS - 1) / SCAN_COLS;                                     \
    _Pragma("omp parallel for collapse(2) schedule(static) if (outer * n * inner > MT_CPU_PARALLEL_GRAIN)") \
    for (int64_t o = 0; o < outer; o++)                                                       \
        for (int64_t b = 0; b < blocks; b++) {                                                \
            int64_t i0 = b * SCAN_COLS, cols = inner - i0 < SCAN_COLS ? inner - i0 : SCAN_COLS; \
            ACC acc[SCAN_COLS];                                                               \
            for (int64_t c = 0; c < cols; c++) acc[c] = 0;                                    \
            for (int64_t j = 0; j < n; j++) {                                                 \
                int64_t at = ((o * n + (reverse ? n - 1 - j : j)) * inner) + i0;              \
                for (int64_t c = 0; c < cols; c++) {                                          \
                    acc[c] += (ACC)x[at + c];                                                 \
                    y[at + c] = (T)acc[c];                                                    \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
}

DEFINE_CUMSUM(float, f32, double)
DEFINE_CUMSUM(double, f64, double)
DEFINE_CUMSUM(int64_t, i64, uint64_t)

mt_status mt_cpu_cumsum(mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, bool reverse, const void *x, void *y)
{
    if (outer <= 0 || n <= 0 || inner <= 0) return MT_OK;
    switch (dtype) {
    case MT_F32: cumsum_f32(outer, n, inner, reverse, x, y); return MT_OK;
    case MT_F64: cumsum_f64(outer, n, inner, reverse, x, y); return MT_OK;
    case MT_I64: cumsum_i64(outer, n, inner, reverse, x, y); return MT_OK;
    default: return MT_ERR_UNSUPPORTED;
    }
}
