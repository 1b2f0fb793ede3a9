/*
 * cpu_kernels.h - the CPU implementations of the backend entries
 * (host/backend.h documents each signature). OpenMP spreads the larger loops
 * over threads with static schedules, so results do not depend on timing.
 */
#ifndef MT_CPU_KERNELS_H
#define MT_CPU_KERNELS_H

#include "kernels/kernels.h"

/* Loops shorter than this run on one thread: below it, waking threads costs more than it saves. */
#define MT_CPU_PARALLEL_GRAIN 32768

/* Hooks the CPU kernels call into the runtime (defined in host/cpu_backend.c). */
/* Whether deterministic mode is on (mt_get_deterministic). */
bool mt_cpu_deterministic(void);

/* elementwise.c */
void mt_cpu_copy(const mt_loop *loop, mt_dtype dst_dtype, void *dst, mt_dtype src_dtype, const void *src);
void mt_cpu_fill(mt_dtype dtype, int64_t n, void *dst, double value);
void mt_cpu_arange(mt_dtype dtype, int64_t n, double start, double step, void *dst);
void mt_cpu_unary(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, void *y, const double *params);
void mt_cpu_unary_backward(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, const void *y,
                           const void *dy, void *dx, const double *params);
void mt_cpu_binary(mt_binary_kind kind, mt_dtype dtype, const mt_loop *loop, void *out, const void *a, const void *b);
void mt_cpu_where(mt_dtype dtype, const mt_loop *loop, void *out, const void *cond, const void *a, const void *b);

/* reduce.c */
void mt_cpu_reduce(mt_reduce_kind kind, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                   const void *x, void *out, double param);
void mt_cpu_softmax(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, const void *x, void *y);
void mt_cpu_softmax_backward(bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner,
                             const void *y, const void *dy, void *dx);

/* gemm.c */
void mt_cpu_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                 double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                 double beta, void *c, int64_t ldc);
void mt_cpu_gemm_batched(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         double alpha, const void *a, int64_t lda, int64_t stride_a,
                         const void *b, int64_t ldb, int64_t stride_b,
                         double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch);

/* random.c */
void mt_cpu_random(mt_random_kind kind, mt_dtype dtype, int64_t n, uint64_t seed, uint64_t offset,
                   double p0, double p1, void *out);

/* norm.c */
void mt_cpu_batch_norm_forward(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x,
                               const void *weight, const void *bias, void *running_mean, void *running_var,
                               bool training, double momentum, double eps,
                               void *y, void *save_mean, void *save_invstd);
void mt_cpu_batch_norm_backward(mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x, const void *dy,
                                const void *weight, const void *save_mean, const void *save_invstd,
                                bool training, void *dx, void *dweight, void *dbias);

/* loss.c */
void mt_cpu_nll_forward(mt_dtype dtype, int64_t n, int64_t c, const void *logp, const int64_t *target,
                        const void *weight, int64_t ignore_index, void *out);
void mt_cpu_nll_backward(mt_dtype dtype, int64_t n, int64_t c, const int64_t *target, const void *weight,
                         int64_t ignore_index, const void *dout, void *dlogp);

/* optim.c */
void mt_cpu_sgd_step(mt_dtype dtype, int64_t n, void *param, const void *grad, void *momentum_buf,
                     double lr, double momentum, double dampening, double weight_decay,
                     bool nesterov, bool first_step);
void mt_cpu_adam_step(mt_dtype dtype, int64_t n, void *param, const void *grad, void *exp_avg,
                      void *exp_avg_sq, void *max_exp_avg_sq, double lr, double beta1, double beta2,
                      double eps, double weight_decay, bool decoupled, bool amsgrad, int64_t step);

/* ---- scan, sort (scan.c, sort.c): these entries return a status (MT_OK;
   MT_ERR_DTYPE for a dtype they have no code for; MT_ERR_MEMORY when their
   scratch memory could not be had) ---- */
mt_status mt_cpu_cumsum(mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, bool reverse, const void *x, void *y);
mt_status mt_cpu_sort_rows(mt_dtype dtype, int64_t rows, int64_t n, bool descending, const void *x, void *values,
                           int64_t *indices);
mt_status mt_cpu_take_along(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *x,
                            const int64_t *index, void *out);
mt_status mt_cpu_put_along(mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *src,
                           const int64_t *index, void *out);

#endif
