/*
 * cuda_kernels.h - the host wrappers of the .cu files of kernels/cuda: one per backend
 * entry (host/backend.h documents each signature). Each .cu file is built
 * twice: by nvcc, giving mt_cuda_<name> for real GPUs, and under the SIMT
 * emulator, giving mt_cuda_emu_<name>. MT_CUDA_FN picks the prefix: the .cu
 * files get it from cuda_compat.h; a host file defines it before including
 * this header (host/cuda_backend.c, host/cuda_emu_backend.c).
 *
 * A wrapper launches on the calling thread's current stream, checks the launch
 * (cudaGetLastError) and records failures through mt_device_record_error, so
 * that the engine reports them.
 */
#ifndef MT_CUDA_FN
#error "define MT_CUDA_FN(name) (or include kernels/cuda/cuda_compat.h) before kernels/cuda/cuda_kernels.h"
#endif

#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Implemented by the host runtime (host/runtime.c): a wrapper whose launch or
   CUDA call failed reports it here; the engine fails its next operation with
   the message ("<what>: <CUDA error name>"), as CUDA reports asynchronous
   errors at the next call. */
void mt_device_record_error(const char *what, int code, const char *code_name);

/* The wrappers' two other hooks into the host runtime, named per build like
   the wrappers (mt_cuda_... in host/cuda_runtime.c, mt_cuda_emu_... in
   host/cuda_emu_backend.c):
   - the calling thread's current stream (an opaque cudaStream_t; NULL, the
     legacy default stream, when none was set, and always under emulation,
     whose launches are synchronous); every launch goes on it, so one
     thread's work stays in its stream's order (MT_STREAM() in cuda_compat.h);
   - scratch memory for a kernel's temporaries from the engine's caching
     allocator of the current device, reused in stream order (cudaMalloc and
     cudaFree would call the driver and synchronise the device on every
     step); NULL on failure, with the engine error set. */
void *MT_CUDA_FN(current_stream_handle)(void);
void *MT_CUDA_FN(scratch_alloc)(size_t nbytes);
void MT_CUDA_FN(scratch_free)(void *ptr, size_t nbytes);

/* elementwise.cu */
void MT_CUDA_FN(copy)(const mt_loop *loop, mt_dtype dst_dtype, void *dst, mt_dtype src_dtype, const void *src);
void MT_CUDA_FN(fill)(mt_dtype dtype, int64_t n, void *dst, double value);
void MT_CUDA_FN(arange)(mt_dtype dtype, int64_t n, double start, double step, void *dst);
void MT_CUDA_FN(unary)(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, void *y, const double *params);
void MT_CUDA_FN(unary_backward)(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, const void *y,
                                const void *dy, void *dx, const double *params);
void MT_CUDA_FN(binary)(mt_binary_kind kind, mt_dtype dtype, const mt_loop *loop, void *out, const void *a, const void *b);
void MT_CUDA_FN(where)(mt_dtype dtype, const mt_loop *loop, void *out, const void *cond, const void *a, const void *b);

/* random.cu */
void MT_CUDA_FN(random)(mt_random_kind kind, mt_dtype dtype, int64_t n, uint64_t seed, uint64_t offset,
                        double p0, double p1, void *out);

/* reduce.cu */
void MT_CUDA_FN(reduce)(mt_reduce_kind kind, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                        const void *x, void *out, double param);
void MT_CUDA_FN(softmax)(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, const void *x, void *y);
void MT_CUDA_FN(softmax_backward)(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                                  const void *y, const void *dy, void *dx);

/* norm.cu */
void MT_CUDA_FN(batch_norm_forward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x,
                                    const void *weight, const void *bias, void *running_mean, void *running_var,
                                    bool training, double momentum, double eps,
                                    void *y, void *save_mean, void *save_invstd);
void MT_CUDA_FN(batch_norm_backward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x, const void *dy,
                                     const void *weight, const void *save_mean, const void *save_invstd,
                                     bool training, void *dx, void *dweight, void *dbias);

/* loss.cu */
void MT_CUDA_FN(nll_forward)(mt_dtype dtype, int64_t n, int64_t c, const void *logp, const int64_t *target,
                             const void *weight, int64_t ignore_index, void *out);
void MT_CUDA_FN(nll_backward)(mt_dtype dtype, int64_t n, int64_t c, const int64_t *target, const void *weight,
                              int64_t ignore_index, const void *dout, void *dlogp);

/* optim.cu */
void MT_CUDA_FN(sgd_step)(mt_dtype dtype, int64_t n, void *param, const void *grad, void *momentum_buf,
                          double lr, double momentum, double dampening, double weight_decay,
                          bool nesterov, bool first_step);
void MT_CUDA_FN(adam_step)(mt_dtype dtype, int64_t n, void *param, const void *grad, void *exp_avg,
                           void *exp_avg_sq, void *max_exp_avg_sq, double lr, double beta1, double beta2,
                           double eps, double weight_decay, bool decoupled, bool amsgrad, int64_t step);

/* ---- scan.cu, sort.cu: these wrappers return a status (MT_OK; MT_ERR_DTYPE,
   MT_ERR_ARGUMENT for what they cannot take; MT_ERR_MEMORY without scratch
   memory; MT_ERR_DEVICE for a failed launch, also recorded through
   mt_device_record_error) ---- */
mt_status MT_CUDA_FN(cumsum)(mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, bool reverse, const void *x,
                             void *y);
mt_status MT_CUDA_FN(sort_rows)(mt_dtype dtype, int64_t rows, int64_t n, bool descending, const void *x,
                                void *values, int64_t *indices);
mt_status MT_CUDA_FN(take_along)(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *x,
                                 const int64_t *index, void *out);
mt_status MT_CUDA_FN(put_along)(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *src,
                                const int64_t *index, void *out);

#ifdef __cplusplus
}
#endif
