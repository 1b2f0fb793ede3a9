/*
 * host/cuda_runtime.h - the CUDA host runtime's internals: cuBLAS (one handle
 * and workspace per stream), the backend's registration, and what the kernel
 * wrappers call. Its public part (device discovery that never fails hard,
 * device properties, streams and events, pinned host memory, the TF32 and
 * deterministic flags) is include/mytorch/cuda.h.
 *
 * Plain C: this header needs no CUDA header, so engine/, bench/ and tests
 * include it in every build. Built without the CUDA toolkit, or run where no
 * GPU and driver are, everything here still links and answers: discovery says
 * why CUDA is not available, streams and events of the cpu and cuda-emu
 * devices are synchronous (an event records the host's clock), pinned memory
 * is ordinary memory.
 *
 * Errors: functions returning mt_status record a message (mt_last_error());
 * asynchronous failures (cuBLAS, copies, launches) are recorded as a device
 * error (mt_device_record_error) that the engine reports at its next
 * allocation or copy, naming the CUDA call and the error's name.
 */
#ifndef MT_CUDA_RUNTIME_H
#define MT_CUDA_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mytorch/cuda.h"
#include "host/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- cuBLAS */
/* Row-major GEMM through column-major BLAS: C = alpha op(A) op(B) + beta C
   with row-major A, B, C is, read column-major, C^T = alpha op(B)^T op(A)^T
   + beta C^T: the column-major call takes B as its first operand and A as its
   second, with m and n exchanged and each operand keeping its own transpose
   flag and leading dimension. This pure function does the exchange (tested
   against a CPU reference in tests/test_cuda_runtime.c); leading dimensions
   are raised to 1 where BLAS requires it (only when nothing is read). */
typedef struct mt_gemm_colmajor {
    bool trans_a, trans_b;     /* op of the column-major call's first and second operand */
    int64_t m, n, k;
    const void *a; int64_t lda; int64_t stride_a;
    const void *b; int64_t ldb; int64_t stride_b;
    int64_t ldc;
} mt_gemm_colmajor;
mt_gemm_colmajor mt_gemm_row_to_col_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                          const void *a, int64_t lda, int64_t stride_a,
                                          const void *b, int64_t ldb, int64_t stride_b, int64_t ldc);

/* The cuda backend's gemm and gemm_batched entries (kernels/kernel_entries.h)
   through cuBLAS on the current stream (f32: cublasSgemm, TF32 when allowed;
   f64: cublasDgemm; other dtypes: MT_ERR_UNSUPPORTED). A failed call is
   recorded as a device error and returns MT_ERR_DEVICE. */
MT_MUST_CHECK mt_status mt_cublas_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                       double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                                       double beta, void *c, int64_t ldc);
MT_MUST_CHECK mt_status mt_cublas_gemm_batched(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n,
                                               int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                                               const void *b, int64_t ldb, int64_t stride_b,
                                               double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch);
/* Loads cuBLAS (dlopen of libcublas.so.<major> of the toolkit this was built
   with; once per process). The cuda backend is registered only when it
   loads; when not, *why says why. Nothing else loads it: a process that never
   uses a GPU never maps its 600 MB. */
bool mt_cublas_load(const char **why);
/* Bytes of the fixed workspace each cuBLAS handle gets (4 MiB; 32 MiB on
   compute capability 9.0 and later). */
size_t mt_cublas_workspace_bytes(void);

/* ---------------------------------------------------------------- the backend's registration (host/backend.c) */
/* Whether device cuda:index can be used: the toolkit built in, a GPU and
   driver (mt_cuda_is_available), cuBLAS, and the index in range. When not,
   *why says which of these failed. Decided once. A table that lacks kernel
   entries is used all the same: the ops that need them fail on cuda. */
bool mt_cuda_backend_usable(int index, const char **why);
/* The allocator's stream operations for cuda (NULL without the toolkit). */
const mt_alloc_stream_ops *mt_cuda_alloc_stream_ops(void);
/* The real CUDA backend's table (host/cuda_backend.c; built with the toolkit
   only). Kernel entries whose .cu wrapper has not landed yet are NULL. */
extern const mt_backend mt_cuda_backend;

/* ---------------------------------------------------------------- for the kernel wrappers */
/* The calling thread's current CUDA stream, as an opaque cudaStream_t (NULL:
   the legacy default stream). the wrappers of kernels/cuda launch on it:
       cudaStream_t s = (cudaStream_t)mt_cuda_current_stream_handle();
   mt_cuda_current_stream() (declared with its CUDA type in a translation unit
   that includes cuda_runtime_api.h) is the same function. Under emulation
   streams are synchronous and any stream value, NULL included, is fine. */
void *mt_cuda_current_stream_handle(void);
/* Scratch memory for a wrapper's temporaries (e.g. a two-pass reduction's
   partial states): the caching allocator of the calling thread's device. */
void *mt_cuda_scratch_alloc(size_t nbytes);
void mt_cuda_scratch_free(void *ptr, size_t nbytes);

#ifdef __cplusplus
}
#endif

/* With the CUDA runtime's types at hand (nvcc, or a C file that includes
   cuda_runtime_api.h before this header): the typed accessor. */
#if defined(__CUDACC__) || defined(__CUDA_RUNTIME_API_H__)
#ifdef __cplusplus
extern "C"
#endif
cudaStream_t mt_cuda_current_stream(void);
#endif

#endif
