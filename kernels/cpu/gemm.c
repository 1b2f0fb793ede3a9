/*
 * gemm.c - matrix products through the BLAS (OpenBLAS), row-major:
 *   C[m x n] = alpha * op(A) op(B) + beta * C,  op(A) is m x k, op(B) is k x n.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <cblas.h>

void mt_cpu_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
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

void mt_cpu_gemm_batched(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         double alpha, const void *a, int64_t lda, int64_t stride_a,
                         const void *b, int64_t ldb, int64_t stride_b,
                         double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    size_t es = mt_dtype_size(dtype);
    for (int64_t i = 0; i < batch; i++)
        mt_cpu_gemm(dtype, trans_a, trans_b, m, n, k, alpha,
                    (const char *)a + (size_t)(i * stride_a) * es, lda,
                    (const char *)b + (size_t)(i * stride_b) * es, ldb, beta,
                    (char *)c + (size_t)(i * stride_c) * es, ldc);
}
