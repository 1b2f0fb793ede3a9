/*
 * ops.h - differentiable operations. Every op here has a forward, a vjp and a
 * jvp (engine/ops/op_*.c), CPU kernels for f32 and f64, CUDA kernels (run on GPUs
 * and proven on the SIMT emulator against the CPU), and a case in the op
 * harness (tests/). Binary ops broadcast as PyTorch does. dim arguments may
 * be negative (counted from the end).
 */
#ifndef MT_OPS_H
#define MT_OPS_H

#include "mytorch/autograd.h"

/* ---------------------------------------------------------------- arithmetic (op_elementwise.c) */
mt_tensor *mt_add(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_sub(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_mul(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_div(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_pow(mt_tensor *a, mt_tensor *b);           /* a^b, a > 0 where b is not an integer */
mt_tensor *mt_maximum(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_minimum(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_add_scalar(mt_tensor *a, double s);
mt_tensor *mt_mul_scalar(mt_tensor *a, double s);
mt_tensor *mt_pow_scalar(mt_tensor *a, double p);
mt_tensor *mt_neg(mt_tensor *a);
mt_tensor *mt_exp(mt_tensor *a);
mt_tensor *mt_log(mt_tensor *a);
mt_tensor *mt_sqrt(mt_tensor *a);
mt_tensor *mt_abs(mt_tensor *a);
/* NAN for lo or hi leaves that side unbounded. */
mt_tensor *mt_clamp(mt_tensor *a, double lo, double hi);
/* cond (MT_BOOL) ? a : b, broadcasting all three. */
mt_tensor *mt_where(mt_tensor *cond, mt_tensor *a, mt_tensor *b);

/* Comparisons (no gradient): MT_BOOL results. */
mt_tensor *mt_eq(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_ne(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_lt(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_le(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_gt(mt_tensor *a, mt_tensor *b);
mt_tensor *mt_ge(mt_tensor *a, mt_tensor *b);

/* ---------------------------------------------------------------- activations (op_elementwise.c) */
mt_tensor *mt_identity(mt_tensor *x);
mt_tensor *mt_sigmoid(mt_tensor *x);
mt_tensor *mt_tanh(mt_tensor *x);
mt_tensor *mt_relu(mt_tensor *x);
mt_tensor *mt_leaky_relu(mt_tensor *x, double negative_slope);
mt_tensor *mt_elu(mt_tensor *x, double alpha);
typedef enum mt_gelu_approx { MT_GELU_ERF, MT_GELU_TANH } mt_gelu_approx;
mt_tensor *mt_gelu(mt_tensor *x, mt_gelu_approx approximate);
mt_tensor *mt_silu(mt_tensor *x);
/* Swish with a (possibly learnable) scalar beta: x * sigmoid(beta x). */
mt_tensor *mt_swish(mt_tensor *x, mt_tensor *beta);
mt_tensor *mt_softplus(mt_tensor *x, double beta, double threshold);

/* ---------------------------------------------------------------- reductions (op_reduce.c) */
/* dims: n_dims dims to reduce (n_dims == 0 reduces all). */
mt_tensor *mt_sum(mt_tensor *x, int n_dims, const int *dims, bool keepdim);
mt_tensor *mt_mean(mt_tensor *x, int n_dims, const int *dims, bool keepdim);
mt_tensor *mt_var(mt_tensor *x, int n_dims, const int *dims, int correction, bool keepdim);
/* The largest (smallest) element along dim, PyTorch's amax (amin): where
   several elements tie, the gradient is shared evenly among them. */
mt_tensor *mt_max(mt_tensor *x, int dim, bool keepdim);
mt_tensor *mt_min(mt_tensor *x, int dim, bool keepdim);
/* PyTorch's x.max(dim) / x.min(dim): *values and *indices (MT_I64, no
   gradient) of the first largest (smallest) element along dim, a NaN
   counting as largest (smallest); one node with two outputs. The whole
   gradient goes to the returned index, even where elements tie (mt_max
   shares it). Either pointer may be NULL when that output is not wanted;
   on error both are set to NULL. */
mt_status mt_max_dim(mt_tensor *x, int dim, bool keepdim, mt_tensor **values, mt_tensor **indices);
mt_status mt_min_dim(mt_tensor *x, int dim, bool keepdim, mt_tensor **values, mt_tensor **indices);
mt_tensor *mt_argmax(mt_tensor *x, int dim, bool keepdim);   /* MT_I64, no gradient; ties: the first index */
mt_tensor *mt_argmin(mt_tensor *x, int dim, bool keepdim);
mt_tensor *mt_logsumexp(mt_tensor *x, int dim, bool keepdim);
/* The same over a set of dims (PyTorch's torch.amax, torch.amin, torch.logsumexp
   with a tuple of dims): n_dims dims, n_dims == 0 reduces all. Ties share the
   gradient evenly, as mt_max does. */
mt_tensor *mt_amax(mt_tensor *x, int n_dims, const int *dims, bool keepdim);
mt_tensor *mt_amin(mt_tensor *x, int n_dims, const int *dims, bool keepdim);
mt_tensor *mt_logsumexp_dims(mt_tensor *x, int n_dims, const int *dims, bool keepdim);
mt_tensor *mt_sum_all(mt_tensor *x);
mt_tensor *mt_mean_all(mt_tensor *x);
/* Sums x down to a shape x broadcasts from (the vjp of broadcasting). */
mt_tensor *mt_sum_to(mt_tensor *x, int ndim, const int64_t *shape);

/* ---------------------------------------------------------------- scans, ordering, shape (op_scan.c, op_sort.c, op_shape.c)
   docs/ops-shape.md gives each op's PyTorch equivalent and gradient rule. */
/* torch.cumsum(x, dim): running sums along dim; integers and bools sum in MT_I64. */
mt_tensor *mt_cumsum(mt_tensor *x, int dim);
/* torch.sort(x, dim, descending, stable=True): *values (differentiable) and
   *indices (MT_I64, no gradient), one node with two outputs; ties keep their
   order, NaN sorts greatest. Either pointer may be NULL when that output is
   not wanted; on error both are set to NULL. */
mt_status mt_sort(mt_tensor *x, int dim, bool descending, mt_tensor **values, mt_tensor **indices);
/* torch.topk(x, k, dim, largest, sorted): the k largest (or smallest) along dim, in sorted order. */
mt_status mt_topk(mt_tensor *x, int64_t k, int dim, bool largest, bool sorted, mt_tensor **values, mt_tensor **indices);
/* torch.argmax(x) / argmin(x) with dim=None: the index into the flattened x (0-d MT_I64, no gradient). */
mt_tensor *mt_argmax_all(mt_tensor *x);
mt_tensor *mt_argmin_all(mt_tensor *x);
/* torch.flip(x, dims): a copy with the n_dims dims reversed. */
mt_tensor *mt_flip(mt_tensor *x, int n_dims, const int *dims);
/* F.pad(x, pads, mode="constant", value): n pads, last dim first (left, right,
   top, bottom, ...); negative pads crop. */
mt_tensor *mt_pad(mt_tensor *x, int n, const int64_t *pads, double value);

/* ---------------------------------------------------------------- softmax (op_softmax.c) */
mt_tensor *mt_softmax(mt_tensor *x, int dim);
mt_tensor *mt_log_softmax(mt_tensor *x, int dim);

/* ---------------------------------------------------------------- linear algebra (op_matmul.c) */
/* PyTorch's matmul: 1-d and 2-d operands, and batched with broadcast batch dims. */
mt_tensor *mt_matmul(mt_tensor *a, mt_tensor *b);
/* y = x W^T + b; x [..., in], weight [out, in], bias [out] or NULL. */
mt_tensor *mt_linear(mt_tensor *x, mt_tensor *weight, mt_tensor *bias);

/* ---------------------------------------------------------------- regularization and normalization */
/* Zeroes elements with probability p and scales the rest by 1/(1-p) when
   training; identity otherwise. The mask comes from gen (NULL: default). */
mt_tensor *mt_dropout(mt_tensor *x, double p, bool training, mt_generator *gen);
/* x [N, C] or [N, C, *] (BatchNorm1d's [N, C, L], BatchNorm2d's [N, C, H, W], ...:
   viewed as [N, C, prod(*)]); weight, bias [C] or NULL; running stats [C] or NULL.
   Training normalizes with the batch's biased variance and updates the
   running stats (unbiased variance) with momentum; eval uses the running stats. */
mt_tensor *mt_batch_norm(mt_tensor *x, mt_tensor *running_mean, mt_tensor *running_var,
                         mt_tensor *weight, mt_tensor *bias, bool training, double momentum, double eps);
/* F.layer_norm(x, normalized_shape, weight, bias, eps): normalizes every row
   of x's last n_norm dims, which must equal normalized_shape (n_norm of them):
   y = (x - mean) / sqrt(var + eps) * weight + bias, biased variance; weight
   and bias of normalized_shape, or NULL. mt_layer_norm(x, MT_SHAPE(512), w, b, 1e-5). */
mt_tensor *mt_layer_norm(mt_tensor *x, int n_norm, const int64_t *normalized_shape, mt_tensor *weight,
                         mt_tensor *bias, double eps);
/* Layer norm over the channels (dim 1) of x [N, C, *], weight and bias [C] or
   NULL: torchvision ConvNeXt's LayerNorm2d, x.permute(0, 2, 3, 1) -> layer_norm
   over C -> permute back (the result is that permuted view). */
mt_tensor *mt_layer_norm_channels_first(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, double eps);
/* F.group_norm(x, num_groups, weight, bias, eps): x [N, C, *] with C divisible
   by num_groups; statistics per (sample, group of C / num_groups consecutive
   channels) over its channels and positions (biased variance); weight and
   bias [C] (per channel) or NULL. */
mt_tensor *mt_group_norm(mt_tensor *x, int64_t num_groups, mt_tensor *weight, mt_tensor *bias, double eps);

/* ---------------------------------------------------------------- losses (op_loss.c) */
typedef enum mt_reduction { MT_REDUCTION_MEAN, MT_REDUCTION_SUM, MT_REDUCTION_NONE } mt_reduction;
mt_tensor *mt_mse_loss(mt_tensor *input, mt_tensor *target, mt_reduction reduction);
typedef struct mt_ce_opts {
    mt_reduction reduction;     /* default mean */
    double label_smoothing;     /* in [0, 1] */
    int64_t ignore_index;       /* class-index targets only; set has_ignore_index */
    bool has_ignore_index;      /* PyTorch's default ignore_index is -100: set it to use one */
    mt_tensor *weight;          /* [C] per-class weights, or NULL */
} mt_ce_opts;
/* logits [N, C] (or [N, C, d...]); target: class indices (MT_I64, [N] or
   [N, d...]) or probabilities (same shape and dtype as logits). */
mt_tensor *mt_cross_entropy(mt_tensor *logits, mt_tensor *target, mt_ce_opts opts);
/* log-probabilities [N, C], class-index target [N]. */
mt_tensor *mt_nll_loss(mt_tensor *logp, mt_tensor *target, mt_ce_opts opts);
typedef struct mt_bce_opts { mt_reduction reduction; mt_tensor *weight; mt_tensor *pos_weight; } mt_bce_opts;
mt_tensor *mt_bce_with_logits(mt_tensor *logits, mt_tensor *target, mt_bce_opts opts);

/* ---------------------------------------------------------------- indexing (op_index.c; docs/ops-indexing.md) */
/* Index tensors are MT_I64; an index outside its dim is an error naming the op, the value and the size.
   Gradients that accumulate (index_add, scatter_add) are deterministic on the CPU, and on CUDA
   under mt_set_deterministic(true). */
/* torch.index_select: the entries index[j] (1-d, or 0-d) of dim; gradient index_add (repeats accumulate). */
mt_tensor *mt_index_select(mt_tensor *x, int dim, mt_tensor *index);
/* torch.gather: y[p] = x[p with coordinate dim := index[p]]; index has x's rank and no dim larger
   than x's but dim; y has index's shape; gradient scatter_add. */
mt_tensor *mt_gather(mt_tensor *x, int dim, mt_tensor *index);
/* torch.scatter_add: y = x, then y[p with coordinate dim := index[p]] += src[p] for every p of index
   (index no larger than src, nor than x but along dim); f32/f64/i32/i64; gradients g (x), gather (src). */
mt_tensor *mt_scatter_add(mt_tensor *x, int dim, mt_tensor *index, mt_tensor *src);
/* F.embedding: weight [V, D], indices of any shape -> indices.shape + [D]; the row padding_idx
   gets no gradient (padding_idx < 0: none). */
mt_tensor *mt_embedding(mt_tensor *weight, mt_tensor *indices, int64_t padding_idx);
/* torch.masked_fill: value where mask (MT_BOOL, broadcast with x) is true, x elsewhere; no gradient there. */
mt_tensor *mt_masked_fill(mt_tensor *x, mt_tensor *mask, double value);
/* F.one_hot: indices (MT_I64) -> indices.shape + [num_classes] of 0/1 as MT_I64, no gradient;
   num_classes < 0: the largest index + 1. */
mt_tensor *mt_one_hot(mt_tensor *indices, int64_t num_classes);

#endif
