/*
 * kernel_entries.h - THE list of kernel entries of a backend, written once.
 *
 * Each line is MT_KERNEL_ENTRY(name, family, (parameters)): the entry's name,
 * its kernel family (the kernels/cpu/<family>.c and kernels/cuda/<family>.cu
 * files that implement it) and its parameter list. Every entry returns an
 * mt_status (MT_OK, or why the kernel could not run: MT_ERR_UNSUPPORTED for a
 * dtype or kind it has no code for, MT_ERR_MEMORY when its scratch memory
 * could not be had, MT_ERR_ARGUMENT for sizes it cannot take, MT_ERR_DEVICE
 * for a failed launch), and the caller must look at it.
 *
 * From this list are generated (docs/architecture.md, "Adding a kernel entry"):
 *   - the members of mt_backend (host/backend.h), after its memory entries;
 *   - the prototypes mt_cpu_<name> (kernels/cpu/cpu_kernels.h) and
 *     MT_CUDA_FN(<name>) (kernels/cuda/cuda_kernels.h);
 *   - the tables of the cpu, cuda-emu and cuda backends (host/cpu_backend.c,
 *     host/cuda_emu_backend.c, host/cuda_backend.c), by naming convention;
 *     a CUDA entry whose wrapper no .cu file defines (cmake/cuda.cmake lists
 *     them) stays NULL: that backend then lacks it;
 *   - the names and families used in messages and checks (host/backend.c)
 *     and in tests/test_backend_tables.c.
 *
 * Include it with MT_KERNEL_ENTRY defined (it is #undef'd at the end), after
 * kernels/kernels.h. Every kernel receives raw device pointers already offset
 * to the first element; "contiguous" means row-major with no gaps.
 */
#ifndef MT_KERNEL_ENTRY
#error "define MT_KERNEL_ENTRY(name, family, params) before including kernels/kernel_entries.h"
#endif

/* ---- layout ---- */
/* dst[i] = (dst_dtype) src[i] over loop (operand 0 = dst, 1 = src). */
MT_KERNEL_ENTRY(copy, elementwise, (const mt_loop *loop, mt_dtype dst_dtype, void *dst, mt_dtype src_dtype, const void *src))
MT_KERNEL_ENTRY(fill, elementwise, (mt_dtype dtype, int64_t n, void *dst, double value))
MT_KERNEL_ENTRY(arange, elementwise, (mt_dtype dtype, int64_t n, double start, double step, void *dst))

/* ---- elementwise (contiguous x, y of n elements) ---- */
MT_KERNEL_ENTRY(unary, elementwise,
                (mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, void *y, const double *params))
/* dx = dy * f'(x); y = f(x) is given too since some derivatives are cheaper from it. */
MT_KERNEL_ENTRY(unary_backward, elementwise,
                (mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, const void *y, const void *dy,
                 void *dx, const double *params))
/* out = a (op) b over loop (operand 0 = out, 1 = a, 2 = b); comparisons write MT_BOOL. */
MT_KERNEL_ENTRY(binary, elementwise,
                (mt_binary_kind kind, mt_dtype dtype, const mt_loop *loop, void *out, const void *a, const void *b))
/* out = cond ? a : b (operand 0 = out, 1 = cond (MT_BOOL), 2 = a, 3 = b). */
MT_KERNEL_ENTRY(where, elementwise,
                (mt_dtype dtype, const mt_loop *loop, void *out, const void *cond, const void *a, const void *b))

/* ---- reductions over the middle axis of contiguous [outer, n, inner] ---- */
MT_KERNEL_ENTRY(reduce, reduce,
                (mt_reduce_kind kind, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, const void *x,
                 void *out, double param))
MT_KERNEL_ENTRY(softmax, reduce,
                (bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, const void *x, void *y))
/* dx from the forward's output y and the output gradient dy. */
MT_KERNEL_ENTRY(softmax_backward, reduce,
                (bool log, mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, const void *y, const void *dy,
                 void *dx))

/* ---- linear algebra: C = alpha op(A) op(B) + beta C, row-major ---- */
MT_KERNEL_ENTRY(gemm, gemm,
                (mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc))
MT_KERNEL_ENTRY(gemm_batched, gemm,
                (mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                 const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb, int64_t stride_b,
                 double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch))

/* ---- random numbers: Philox4x32-10 under key seed; element i reads the two
   32-bit words 2(g%2), 2(g%2)+1 of counter block g/2, g = offset + i ---- */
MT_KERNEL_ENTRY(random, random,
                (mt_random_kind kind, mt_dtype dtype, int64_t n, uint64_t seed, uint64_t offset, double p0,
                 double p1, void *out))

/* ---- normalization over x of contiguous shape [n, c, l], statistics per channel c ---- */
/* Training: mean/invstd from the batch (biased variance), running stats updated with
   momentum (unbiased variance) when given; eval: running stats used. weight/bias may be NULL. */
MT_KERNEL_ENTRY(batch_norm_forward, norm,
                (mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x, const void *weight,
                 const void *bias, void *running_mean, void *running_var, bool training, double momentum,
                 double eps, void *y, void *save_mean, void *save_invstd))
/* Gradients of the above; any of dx, dweight, dbias may be NULL. */
MT_KERNEL_ENTRY(batch_norm_backward, norm,
                (mt_dtype dtype, int64_t n, int64_t c, int64_t l, const void *x, const void *dy, const void *weight,
                 const void *save_mean, const void *save_invstd, bool training, void *dx, void *dweight,
                 void *dbias))
/* Group normalization over x of contiguous shape [n, c, l] in `groups` groups of
   c / groups consecutive channels: statistics per row (i, g), the (c / groups) l
   contiguous values of sample i and group g, written to save_mean and save_rstd
   [n * groups] (rstd = 1 / sqrt(biased var + eps)); weight, bias [c] (per channel)
   or NULL. Layer norm over F trailing features is its case n = rows, c = F,
   l = 1, groups = 1 (kernels/cpu/norm.c has the formulas). */
MT_KERNEL_ENTRY(group_norm_forward, norm,
                (mt_dtype dtype, int64_t n, int64_t c, int64_t l, int64_t groups, const void *x,
                 const void *weight, const void *bias, double eps, void *y, void *save_mean, void *save_rstd))
/* Gradients of the above from the saved statistics; any of dx, dweight, dbias may be NULL. */
MT_KERNEL_ENTRY(group_norm_backward, norm,
                (mt_dtype dtype, int64_t n, int64_t c, int64_t l, int64_t groups, const void *x, const void *dy,
                 const void *weight, const void *save_mean, const void *save_rstd, void *dx, void *dweight,
                 void *dbias))

/* ---- losses over logits/log-probabilities of contiguous shape [n, c] ---- */
/* out[i] = -w[t_i] * logp[i, t_i] (0 where t_i == ignore_index); weight may be NULL. */
MT_KERNEL_ENTRY(nll_forward, loss,
                (mt_dtype dtype, int64_t n, int64_t c, const void *logp, const int64_t *target, const void *weight,
                 int64_t ignore_index, void *out))
/* dlogp[i, j] = -w[t_i] * dout[i] * [j == t_i] */
MT_KERNEL_ENTRY(nll_backward, loss,
                (mt_dtype dtype, int64_t n, int64_t c, const int64_t *target, const void *weight,
                 int64_t ignore_index, const void *dout, void *dlogp))

/* ---- fused optimizer updates over n parameters ---- */
MT_KERNEL_ENTRY(sgd_step, optim,
                (mt_dtype dtype, int64_t n, void *param, const void *grad, void *momentum_buf, double lr,
                 double momentum, double dampening, double weight_decay, bool nesterov, bool first_step))
/* Adam (decoupled = false: L2 added to the gradient) and AdamW (decoupled = true). */
MT_KERNEL_ENTRY(adam_step, optim,
                (mt_dtype dtype, int64_t n, void *param, const void *grad, void *exp_avg, void *exp_avg_sq,
                 void *max_exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay,
                 bool decoupled, bool amsgrad, int64_t step))

/* ---- scan and sort ---- */
/* Cumulative sum over the middle axis of contiguous [outer, n, inner] (f32, f64, i64):
   y[o, j, i] = sum_{j' <= j} x[o, j', i], or sum_{j' >= j} when reverse. */
MT_KERNEL_ENTRY(cumsum, scan,
                (mt_dtype dtype, int64_t outer, int64_t n, int64_t inner, bool reverse, const void *x, void *y))
/* Sorts each contiguous row of n (stable; NaN greatest): values, and indices[r, j] =
   the position in row r of values[r, j]. Every dtype. */
MT_KERNEL_ENTRY(sort_rows, sort,
                (mt_dtype dtype, int64_t rows, int64_t n, bool descending, const void *x, void *values,
                 int64_t *indices))
/* [outer, n, inner] x, [outer, k, inner] index (f32, f64):
   take_along out[o, j, i] = x[o, index[o, j, i], i];
   put_along out[o, index[o, j, i], i] = src[o, j, i] (distinct indices per column; out is not cleared). */
MT_KERNEL_ENTRY(take_along, sort,
                (mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *x,
                 const int64_t *index, void *out))
MT_KERNEL_ENTRY(put_along, sort,
                (mt_dtype dtype, int64_t outer, int64_t n, int64_t k, int64_t inner, const void *src,
                 const int64_t *index, void *out))

/* indexing along one dim (kernels/cpu/index.c, kernels/cuda/index.cu).
   gather over loop (operand 0 = out, 1 = index (int64), 2 = x, whose stride along
   the gathered dim is 0): out[p] = x[p + index[p] * x_dim_stride]; an index value
   outside [0, dim_size) gives 0 (the engine refuses such indices first). Every dtype. */
MT_KERNEL_ENTRY(gather, index,
                (mt_dtype dtype, const mt_loop *loop, void *out, const int64_t *index, const void *x,
                 int64_t x_dim_stride, int64_t dim_size))
/* scatter_add over loop, whose LAST dim is the scattered one (operand 0 = out, with
   stride 0 along it, 1 = index (int64), 2 = src): out[p + index[p] * out_dim_stride] += src[p];
   index values outside [0, dim_size) add nothing. f32, f64, i32, i64. With
   deterministic, each out element is summed in increasing order of the last
   coordinate on every run (the CPU always does so); without, atomics may be used. */
MT_KERNEL_ENTRY(scatter_add, index,
                (mt_dtype dtype, const mt_loop *loop, void *out, const int64_t *index, const void *src,
                 int64_t out_dim_stride, int64_t dim_size, bool deterministic))

/* ---- convolution (kernels/cpu/conv.c, kernels/cuda/conv.cu) over an
   mt_conv2d_geometry g (kernels/kernels.h); f32 and f64 ---- */
/* y[n, co, oh, ow] = bias[co] + sum_{ci in co's group, i, j} w[co, ci', i, j] x[n, ci, ih, iw]
   (bias may be NULL). */
MT_KERNEL_ENTRY(conv2d_forward, conv,
                (mt_dtype dtype, const mt_conv2d_geometry *g, const void *x, const void *weight,
                 const void *bias, void *y))
/* The adjoint in x (transposed convolution): dx[n, ci, ih, iw] = sum over the
   (co, i, j, oh, ow) that read (ih, iw) of w[co, ci', i, j] dy[n, co, oh, ow]. */
MT_KERNEL_ENTRY(conv2d_backward_input, conv,
                (mt_dtype dtype, const mt_conv2d_geometry *g, const void *dy, const void *weight, void *dx))
/* The adjoint in w: dw[co, ci', i, j] = sum_{n, oh, ow} dy[n, co, oh, ow] x[n, ci, ih, iw]
   (dw is overwritten, not accumulated). */
MT_KERNEL_ENTRY(conv2d_backward_weight, conv,
                (mt_dtype dtype, const mt_conv2d_geometry *g, const void *x, const void *dy, void *dweight))

/* ---- pooling ---- */
/* Over contiguous planes x [planes, h.n_src, w.n_src] -> y [planes, h.n_dst, w.n_dst],
   with the separable window maps h (rows) and w (columns) of kernels/kernels.h
   (docs/ops-pool.md). f32, f64.
   pool_linear: y[p, i, j] = sum_{a in row i of h} h.weight[a] sum_{b in row j of w} w.weight[b]
   x[p, h.index[a], w.index[b]]: average and adaptive average pooling and
   interpolation, and, with the transposed maps, their gradients. */
MT_KERNEL_ENTRY(pool_linear, pool,
                (mt_dtype dtype, int64_t planes, const mt_pool_map *h, const mt_pool_map *w, const void *x, void *y))
/* pool_max: y[p, i, j] = the largest x[p, h.index[a], w.index[b]] over the same windows
   (weights unused), indices[p, i, j] = h.index[a] * w.n_src + w.index[b] of the
   first largest (a NaN wins, as in PyTorch: the last NaN); every window is non-empty. */
MT_KERNEL_ENTRY(pool_max, pool,
                (mt_dtype dtype, int64_t planes, const mt_pool_map *h, const mt_pool_map *w, const void *x, void *y,
                 int64_t *indices))
/* pool_max_backward: dx = 0, then dx[p, indices[p, o]] += dy[p, o] for every output o of
   dy/indices [planes, ht.n_src, wt.n_src] into dx [planes, ht.n_dst, wt.n_dst]. ht, wt:
   the transposed maps (for each input position, the outputs whose window holds it, in
   increasing order). With deterministic, each dx element is summed in increasing
   output order on every run (the CPU always does so); without, atomics may be used. */
MT_KERNEL_ENTRY(pool_max_backward, pool,
                (mt_dtype dtype, int64_t planes, const mt_pool_map *ht, const mt_pool_map *wt, const void *dy,
                 const int64_t *indices, void *dx, bool deterministic))

#undef MT_KERNEL_ENTRY
