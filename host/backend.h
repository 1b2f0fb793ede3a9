/*
 * backend.h - the table through which engine/ reaches the arithmetic.
 *
 * An op is defined once in engine/ (shape checks, output allocation, tape
 * record, vjp, jvp); the arithmetic is a call through the mt_backend of the
 * tensors' device. Adding a backend means filling one more table; engine/
 * never changes. Every entry takes raw device pointers already offset to the
 * first element. Contiguous means row-major with no gaps.
 */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include "kernels/kernels.h"


typedef struct mt_backend {
    const char *name;

    /* ---- memory (raw; host/allocator.c caches on top of these) ---- */
    void *(*alloc)(size_t nbytes);
    void (*free)(void *ptr);
    void (*to_host)(void *host_dst, const void *dev_src, size_t nbytes);
    void (*from_host)(void *dev_dst, const void *host_src, size_t nbytes);
    void (*synchronize)(void);

    /* ---- layout ---- */
    /* dst[i] = (dst_dtype) src[i] over loop (operand 0 = dst, 1 = src). */
    void (*copy)(const mt_loop *loop, mt_dtype dst_dtype, void *dst, mt_dtype src_dtype, const void *src);
    void (*fill)(mt_dtype dtype, int64_t n, void *dst, double value);
    void (*arange)(mt_dtype dtype, int64_t n, double start, double step, void *dst);

    /* ---- elementwise (contiguous x, y of n elements) ---- */
    void (*unary)(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, void *y, const double *params);
    /* dx = dy * f'(x); y = f(x) is given too since some derivatives are cheaper from it. */
    void (*unary_backward)(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, const void *y,
                           const void *dy, void *dx, const double *params);
    /* out = a (op) b over loop (operand 0 = out, 1 = a, 2 = b); comparisons write MT_BOOL. */
    void (*binary)(mt_binary_kind kind, mt_dtype dtype, const mt_loop *loop, void *out, const void *a, const void *b);
    /* out = cond ? a : b (operand 0 = out, 1 = cond (MT_BOOL), 2 = a, 3 = b). */
    void (*where)(mt_dtype dtype, const mt_loop *loop, void *out, const void *cond, const void *a, const void *b);

    /* ---- reductions over the middle axis of contiguous [outer, n, inner] ---- */
    void (*reduce)(mt_reduce_kind kind, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                   const void *x, void *out, double param);
    void (*softmax)(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, const void *x, void *y);
    /* dx from the forward's output y and the output gradient dy. */
    void (*softmax_backward)(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                             const void *y, const void *dy, void *dx);

    /* ---- linear algebra: C = alpha op(A) op(B) + beta C, row-major ---- */
    void (*gemm)(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                 double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                 double beta, void *c, int64_t ldc);
    void (*gemm_batched)(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         double alpha, const void *a, int64_t lda, int64_t stride_a,
                         const void *b, int64_t ldb, int64_t stride_b,
                         double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch);

    /* ---- random numbers: Philox4x32-10 under key seed; element i reads the two
       32-bit words 2(g%2), 2(g%2)+1 of counter block g/2, g = offset + i ---- */
    void (*random)(mt_random_kind kind, mt_dtype dtype, int64_t n, uint64_t seed, uint64_t offset,
                   double p0, double p1, void *out);

    /* ---- normalization over x of contiguous shape [n, c, l], statistics per channel c ---- */
    /* Training: mean/invstd from the batch (biased variance), running stats updated with
       momentum (unbiased variance) when given; eval: running stats used. weight/bias may be NULL. */
    void (*batch_norm_forward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x,
                               const void *weight, const void *bias, void *running_mean, void *running_var,
                               bool training, double momentum, double eps,
                               void *y, void *save_mean, void *save_invstd);
    /* Gradients of the above; any of dx, dweight, dbias may be NULL. */
    void (*batch_norm_backward)(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x, const void *dy,
                                const void *weight, const void *save_mean, const void *save_invstd,
                                bool training, void *dx, void *dweight, void *dbias);

    /* ---- losses over logits/log-probabilities of contiguous shape [n, c] ---- */
    /* out[i] = -w[t_i] * logp[i, t_i] (0 where t_i == ignore_index); weight may be NULL. */
    void (*nll_forward)(mt_dtype dtype, int64_t n, int64_t c, const void *logp, const int64_t *target,
                        const void *weight, int64_t ignore_index, void *out);
    /* dlogp[i, j] = -w[t_i] * dout[i] * [j == t_i] */
    void (*nll_backward)(mt_dtype dtype, int64_t n, int64_t c, const int64_t *target, const void *weight,
                         int64_t ignore_index, const void *dout, void *dlogp);

    /* ---- fused optimizer updates over n parameters ---- */
    void (*sgd_step)(mt_dtype dtype, int64_t n, void *param, const void *grad, void *momentum_buf,
                     double lr, double momentum, double dampening, double weight_decay,
                     bool nesterov, bool first_step);
    /* Adam (decoupled = false: L2 added to the gradient) and AdamW (decoupled = true). */
    void (*adam_step)(mt_dtype dtype, int64_t n, void *param, const void *grad, void *exp_avg,
                      void *exp_avg_sq, void *max_exp_avg_sq, double lr, double beta1, double beta2,
                      double eps, double weight_decay, bool decoupled, bool amsgrad, int64_t step);

    /* ---- scan and sort (kernels/{cpu,cuda}/scan, sort): these return a status:
       MT_OK, MT_ERR_DTYPE / MT_ERR_ARGUMENT for what the kernel cannot take,
       MT_ERR_MEMORY without scratch memory, MT_ERR_DEVICE for a failed launch ---- */
    /* Cumulative sum over the middle axis of contiguous [outer, n, inner] (f32, f64, i64):
       y[o, j, i] = sum_{j' <= j} x[o, j', i], or sum_{j' >= j} when reverse. */
    mt_status (*cumsum)(mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, bool reverse, const void *x, void *y);
    /* Sorts each contiguous row of n (stable; NaN greatest): values, and indices[r, j] =
       the position in row r of values[r, j]. Every dtype. */
    mt_status (*sort_rows)(mt_dtype dtype, int64_t rows, int64_t n, bool descending, const void *x, void *values,
                           int64_t *indices);
    /* [outer, n, inner] x, [outer, k, inner] index (f32, f64):
       take_along out[o, j, i] = x[o, index[o, j, i], i];
       put_along out[o, index[o, j, i], i] = src[o, j, i] (distinct indices per column; out is not cleared). */
    mt_status (*take_along)(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *x,
                            const int64_t *index, void *out);
    mt_status (*put_along)(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *src,
                           const int64_t *index, void *out);
} mt_backend;

/* The backend serving a device type, or NULL when it is not built in. */
const mt_backend *mt_backend_for(mt_device_type type);

/* The CPU backend (kernels/cpu behind host/cpu_backend.c). */
extern const mt_backend mt_cpu_backend;
/* The CUDA kernels run by the SIMT emulator on the CPU (host/cuda_emu_backend.c):
   device memory is host memory, GEMM goes to the CPU BLAS. */
extern const mt_backend mt_cuda_emu_backend;
/* Whether the emulated CUDA backend is built in (it needs a C++ compiler). */
bool mt_cuda_emu_built(void);

#endif
