/*
 * gemm.c - matrix products through the BLAS (OpenBLAS), row-major:
 *   C[m x n] = alpha * op(A) op(B) + beta * C,  op(A) is m x k, op(B) is k x n.
 *
 * OpenBLAS threads a GEMM by splitting it according to the thread count, and
 * its results then differ in the last bits between thread counts. In
 * deterministic mode C is cut into fixed tiles instead, each computed by one
 * single-threaded BLAS call (OpenBLAS runs single-threaded inside an OpenMP
 * parallel region), so each element's sum is a function of the shapes alone.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <cblas.h>

enum { GEMM_TILE_M = 256, GEMM_TILE_N = 256 };

static void blas_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                 double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                 double beta, void *c, int64_t ldc)
{
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    if (dtype == MT_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)k, (float)alpha,
                    a, (blasint)lda, b, (blasint)ldb, (float)beta, c, (blasint)ldc);
    else if (dtype == MT_F64)
        cblas_dgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)k, alpha,
                    a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* Tile (i, j) of C reads rows i.. of op(A) and columns j.. of op(B):
   op(A)[i, 0] is a + i * lda untransposed, a + i transposed (A is k x m). */
static void tiled_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                       double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                       double beta, void *c, int64_t ldc)
{
    size_t es = mt_dtype_size(dtype);
    int64_t tiles_m = (m + GEMM_TILE_M - 1) / GEMM_TILE_M, tiles_n = (n + GEMM_TILE_N - 1) / GEMM_TILE_N;
    _Pragma("omp parallel for schedule(static) if (tiles_m * tiles_n > 1)")
    for (int64_t t = 0; t < tiles_m * tiles_n; t++) {
        int64_t i = (t / tiles_n) * GEMM_TILE_M, j = (t % tiles_n) * GEMM_TILE_N;
        int64_t tm = m - i < GEMM_TILE_M ? m - i : GEMM_TILE_M, tn = n - j < GEMM_TILE_N ? n - j : GEMM_TILE_N;
        const char *ap = (const char *)a + (size_t)(trans_a ? i : i * lda) * es;
        const char *bp = (const char *)b + (size_t)(trans_b ? j * ldb : j) * es;
        blas_gemm(dtype, trans_a, trans_b, tm, tn, k, alpha, ap, lda, bp, ldb, beta,
                  (char *)c + (size_t)(i * ldc + j) * es, ldc);
    }
}

/* f32 and f64 only: the BLAS has no integer GEMM (MT_ERR_UNSUPPORTED). */
mt_status mt_cpu_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                      double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                      double beta, void *c, int64_t ldc)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (mt_cpu_deterministic())
        tiled_gemm(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        blas_gemm(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return MT_OK;
}

mt_status mt_cpu_gemm_batched(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                              double alpha, const void *a, int64_t lda, int64_t stride_a,
                              const void *b, int64_t ldb, int64_t stride_b,
                              double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    size_t es = mt_dtype_size(dtype);
    for (int64_t i = 0; i < batch; i++) {
        mt_status st = mt_cpu_gemm(dtype, trans_a, trans_b, m, n, k, alpha,
                                   (const char *)a + (size_t)(i * stride_a) * es, lda,
                                   (const char *)b + (size_t)(i * stride_b) * es, ldb, beta,
                                   (char *)c + (size_t)(i * stride_c) * es, ldc);
        if (st != MT_OK) return st;
    }
    return MT_OK;
}
