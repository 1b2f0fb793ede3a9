/*
 * op_loss.c - loss functions with PyTorch's semantics (docs/losses.md).
 *
 *   mse_loss         l = (x - y)^2                       (composite: sub, pow, mean/sum)
 *   nll_loss         l_i = -w[t_i] logp[i, t_i]          (primitive, backend nll kernels)
 *                    0 where t_i == ignore_index
 *   cross_entropy    class indices:  l_i = (1 - eps) nll_i(log_softmax(x))
 *                                          + eps/C * sum_j -w_j logp[i, j]
 *                    probabilities:  l_i = -sum_j w_j p'_ij logp_ij,  p' = (1 - eps) p + eps/C
 *                    (composite: log_softmax, nll_loss, mul, sum)
 *   bce_with_logits  l = (1 - y) x + (1 + (pw - 1) y) log(1 + exp(-x)),  times weight
 *                    (composite; log(1 + exp(-x)) is softplus(-x), stable for every x)
 *
 * Reductions: none keeps one loss per sample (per element for mse/bce), sum
 * adds them, mean divides the sum by
 *   - the sum of w[t_i] over the samples that are not ignored (nll_loss and
 *     cross_entropy with class indices; the count of such samples without weights),
 *   - the number of samples N * d1 * ... (cross_entropy with probabilities),
 *   - the number of elements (mse_loss, bce_with_logits).
 *
 * Class weights (weight, pos_weight) are constants, as in PyTorch: they are
 * detached and get no gradient. Inputs [N, C, d1, ...] with targets
 * [N, d1, ...] are handled by moving C last and flattening to [M, C].
 */
#include "engine/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

/* Above this, log(1 + exp(z)) equals z to double precision (exp(-40) < 2^-57). */
#define SOFTPLUS_LINEAR_ABOVE 40.0

/* ---------------------------------------------------------------- helpers */
static bool check_reduction(const char *op, mt_reduction reduction)
{
    if (reduction == MT_REDUCTION_MEAN || reduction == MT_REDUCTION_SUM || reduction == MT_REDUCTION_NONE) return true;
    mt_set_error(MT_ERR_ARGUMENT, "%s: unknown reduction %d (expected MT_REDUCTION_MEAN, MT_REDUCTION_SUM or MT_REDUCTION_NONE)",
                 op, (int)reduction);
    return false;
}

/* A contiguous copy of x (or x itself) for a kernel, made without recording anything. */
static mt_tensor *contiguous_raw(mt_tensor *x)
{
    bool grad_prev = mt_set_grad_enabled(false), forward_prev = mt_set_forward_ad_enabled(false);
    mt_tensor *c = mt_contiguous(x);
    mt_set_grad_enabled(grad_prev);
    mt_set_forward_ad_enabled(forward_prev);
    return c;
}

/* A 0-d tensor on device. */
static mt_tensor *scalar_on(mt_device device, mt_dtype dtype, double value)
{
    mt_tensor *s = mt_empty_on(device, dtype, 0, NULL);
    if (s && mt_fill_(s, value) != MT_OK) return NULL;
    return s;
}

/* Per-element losses reduced: none keeps them, sum adds them, mean divides the sum by denominator. */
static mt_tensor *reduce_losses(mt_tensor *losses, mt_reduction reduction, double denominator)
{
    if (reduction == MT_REDUCTION_NONE) return losses;
    mt_tensor *total = mt_sum_all(losses);
    if (reduction == MT_REDUCTION_SUM) return total;
    return mt_mul_scalar(total, 1.0 / denominator);   /* 0/0 (all ignored) is NaN, as in PyTorch */
}

/* ---------------------------------------------------------------- mse_loss */
/*
 * l = (x - y)^2 over the broadcast shape of x and y;
 * mean: sum l / numel, sum: sum l, none: l.
 * vjp and jvp follow from sub and pow: dl = 2 (x - y)(dx - dy).
 */
static mt_tensor *mse_loss_body(mt_tensor *input, mt_tensor *target, mt_reduction reduction)
{
    const char *op = "mse_loss";
    if (!mt_check_float(op, input) || !mt_check_float(op, target)) return NULL;
    if (!check_reduction(op, reduction)) return NULL;
    if (!mt_check_same_device(op, input, target) || !mt_check_same_dtype(op, input, target)) return NULL;
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    mt_tensor *both[2] = { input, target };
    if (!mt_broadcast_shapes(op, 2, both, &ndim, shape)) return NULL;

    mt_tensor *squared = mt_pow_scalar(mt_sub(input, target), 2.0);
    if (reduction == MT_REDUCTION_MEAN) return mt_mean_all(squared);
    if (reduction == MT_REDUCTION_SUM) return mt_sum_all(squared);
    return squared;
}

mt_tensor *mt_mse_loss(mt_tensor *input, mt_tensor *target, mt_reduction reduction)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, mse_loss_body(input, target, reduction));
}

/* ---------------------------------------------------------------- class-index targets */
/* What nll_loss and cross_entropy learn about a batch of class-index targets. */
typedef struct class_batch {
    int class_dim;           /* 1, or 0 for an unbatched input [C] */
    int64_t n_classes;       /* C */
    int64_t n_rows;          /* M = N * d1 * ...: one row of C scores per target */
    mt_tensor *flat_target;  /* the target as [M] */
    mt_tensor *weight;       /* [C], detached, or NULL */
    int64_t ignore_index;    /* the target value the kernels skip */
    double total_weight;     /* sum of w[t_i] over targets not ignored: the mean's denominator */
    int64_t n_ignored;
} class_batch;

/* The index the kernels are given when none is set: never a valid class. */
#define NO_IGNORE_INDEX INT64_MIN

/* input [N, C, d1, ...] or [C]; target [N, d1, ...] or [] */
static bool check_target_shape(const char *op, const mt_tensor *input, const mt_tensor *target)
{
    char s1[128], s2[128], s3[128];
    if (input->ndim < 1) {
        mt_set_error(MT_ERR_SHAPE, "%s: input must be [N, C], [N, C, d1, ...] or [C], got shape %s", op,
                     mt_shape_str(input, s1, sizeof s1));
        return false;
    }
    int64_t expect[MT_MAX_DIMS];
    int expect_ndim = 0;
    if (input->ndim > 1) {
        expect[expect_ndim++] = input->shape[0];
        for (int d = 2; d < input->ndim; d++) expect[expect_ndim++] = input->shape[d];
    }
    bool fits = target->ndim == expect_ndim;
    for (int d = 0; fits && d < expect_ndim; d++) fits = target->shape[d] == expect[d];
    if (fits) return true;
    mt_set_error(MT_ERR_SHAPE, "%s: target of shape %s does not fit input of shape %s: expected target shape %s", op,
                 mt_shape_str(target, s1, sizeof s1), mt_shape_str(input, s2, sizeof s2),
                 mt_shape_text(expect_ndim, expect, s3, sizeof s3));
    return false;
}

static bool check_class_weight(const char *op, const mt_tensor *input, const mt_tensor *weight, int64_t n_classes)
{
    if (!weight) return true;
    char s[128];
    if (!mt_check_same_device(op, input, weight)) return false;
    if (weight->dtype != input->dtype) {
        mt_set_error(MT_ERR_DTYPE, "%s: weight must have the input's dtype %s, got %s", op, mt_dtype_name(input->dtype),
                     mt_dtype_name(weight->dtype));
        return false;
    }
    if (weight->ndim != 1 || weight->shape[0] != n_classes) {
        mt_set_error(MT_ERR_SHAPE, "%s: weight must have shape [%" PRId64 "] (one per class), got %s", op, n_classes,
                     mt_shape_str(weight, s, sizeof s));
        return false;
    }
    return true;
}

/* Reads the targets on the host: each must be a class in [0, C) or the
   ignore_index. Sums w[t_i] over the others (counts them without weights). */
static bool scan_targets(const char *op, const mt_tensor *target, const mt_tensor *weight, const mt_ce_opts *opts,
                         class_batch *b)
{
    int64_t m = mt_numel(target), n_classes = b->n_classes;
    int64_t *t = malloc(sizeof(int64_t) * (size_t)(m ? m : 1));
    double *w = weight ? malloc(sizeof(double) * (size_t)(n_classes ? n_classes : 1)) : NULL;
    bool ok = t && (!weight || w);
    if (!ok) mt_set_error(MT_ERR_MEMORY, "%s: out of memory reading %" PRId64 " targets", op, m);
    if (ok) ok = mt_to_data(target, MT_I64, t) == MT_OK && (!w || mt_to_data(weight, MT_F64, w) == MT_OK);
    double total = 0;
    int64_t ignored = 0;
    for (int64_t i = 0; ok && i < m; i++) {
        int64_t k = t[i];
        if (opts->has_ignore_index && k == opts->ignore_index) { ignored++; continue; }
        if (k < 0 || k >= n_classes) {
            mt_set_error(MT_ERR_ARGUMENT, "%s: target %" PRId64 " (element %" PRId64 ") is not a class index in [0, %" PRId64 ")%s",
                         op, k, i, n_classes,
                         (!opts->has_ignore_index && k == -100) ? "; to skip it set has_ignore_index and ignore_index = -100" : "");
            ok = false;
            break;
        }
        total += w ? w[k] : 1.0;
    }
    free(t);
    free(w);
    b->total_weight = total;
    b->n_ignored = ignored;
    return ok;
}

/* Checks input, target (MT_I64 already) and options; fills b. */
static bool class_batch_prepare(const char *op, mt_tensor *input, mt_tensor *target, const mt_ce_opts *opts, class_batch *b)
{
    if (!check_target_shape(op, input, target)) return false;
    if (!mt_check_same_device(op, input, target)) return false;
    b->class_dim = input->ndim == 1 ? 0 : 1;
    b->n_classes = input->shape[b->class_dim];
    b->n_rows = mt_numel(target);
    if (!check_class_weight(op, input, opts->weight, b->n_classes)) return false;
    if (!scan_targets(op, target, opts->weight, opts, b)) return false;
    b->weight = opts->weight ? mt_detach(opts->weight) : NULL;
    b->flat_target = mt_reshape(target, 1, &b->n_rows);
    b->ignore_index = opts->has_ignore_index ? opts->ignore_index : NO_IGNORE_INDEX;
    return b->flat_target && (!opts->weight || b->weight);
}

/* [N, C, d1, ...] -> [N d1 ..., C] (class dim last: a copy when there are d's); [C] -> [1, C]. */
static mt_tensor *classes_last(mt_tensor *x, const class_batch *b)
{
    if (!x) return NULL;
    if (x->ndim > 2) {
        int perm[MT_MAX_DIMS], k = 0;
        perm[k++] = 0;
        for (int d = 2; d < x->ndim; d++) perm[k++] = d;
        perm[k++] = 1;
        x = mt_permute(x, perm);
    }
    if (x && x->ndim == 2 && x->shape[0] == b->n_rows) return x;
    return mt_reshape(x, 2, (int64_t[]){ b->n_rows, b->n_classes });
}

/* ---------------------------------------------------------------- nll (primitive) */
/*
 * Over logp [M, C] and targets t [M] (saved[0]), weights w [C] (saved[1] or NULL):
 *   forward  out_i = -w[t_i] logp[i, t_i]              (0 where t_i == ignore_index)
 *   vjp      dlogp[i, j] = -w[t_i] g_i [j == t_i]
 *   jvp      tout_i = -w[t_i] tlogp[i, t_i]             (the op is linear in logp)
 * ints[0] = ignore_index.
 */
static mt_tensor *nll_gather(mt_node *node, mt_tensor *logp_like)
{
    mt_tensor *logp = node->inputs[0], *target = node->saved[0], *weight = node->saved[1];
    mt_tensor *v = contiguous_raw(mt_to_dtype(logp_like, logp->dtype));
    if (!v) return NULL;
    int64_t m = logp->shape[0], c = logp->shape[1];
    mt_tensor *out = mt_new_tensor(mt_device_of(logp), logp->dtype, 1, &m);
    if (!out) return NULL;
    if (m > 0 && mt_run_kernel("nll_loss", logp, nll_forward, logp->dtype, m, c, mt_ptr(v), mt_ptr(target),
                               weight ? mt_ptr(weight) : NULL, node->ints[0], mt_ptr(out)) != MT_OK)
        return NULL;   /* out belongs to the jvp's scope */
    return out;
}

static mt_status nll_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *logp = node->inputs[0], *target = node->saved[0], *weight = node->saved[1];
    mt_tensor *gc = contiguous_raw(mt_to_dtype(g, logp->dtype));
    mt_tensor *dlogp = mt_new_tensor(mt_device_of(logp), logp->dtype, 2, logp->shape);
    if (!gc || !dlogp) return mt_last_status();
    int64_t m = logp->shape[0], c = logp->shape[1];
    if (m * c > 0) {
        mt_status st = mt_run_kernel("nll_loss", logp, nll_backward, logp->dtype, m, c, mt_ptr(target),
                                     weight ? mt_ptr(weight) : NULL, node->ints[0], mt_ptr(gc), mt_ptr(dlogp));
        if (st != MT_OK) return st;
    }
    grads[0] = dlogp;
    return MT_OK;
}

static mt_tensor *nll_jvp(mt_node *node, mt_tensor *const *t) { return nll_gather(node, t[0]); }

MT_OP_DEF(nll_op, "nll_loss", nll_vjp, nll_jvp);

/* One loss per row of logp [M, C]: -w[t_i] logp[i, t_i], recorded as nll_op. */
static mt_tensor *nll_rows(mt_tensor *logp, const class_batch *b)
{
    if (!logp) return NULL;
    mt_tensor *logp_c = contiguous_raw(logp);
    mt_tensor *target_c = contiguous_raw(b->flat_target);
    mt_tensor *weight_c = b->weight ? contiguous_raw(b->weight) : NULL;
    mt_tensor *losses = mt_new_tensor(mt_device_of(logp), logp->dtype, 1, &b->n_rows);
    if (!logp_c || !target_c || (b->weight && !weight_c) || !losses) {
        mt_free_temp(logp_c, logp);
        mt_free_temp(target_c, b->flat_target);
        mt_free_temp(weight_c, b->weight);
        mt_free(losses);
        return NULL;
    }
    mt_status st = b->n_rows > 0 ? mt_run_kernel("nll_loss", logp, nll_forward, logp->dtype, b->n_rows, b->n_classes,
                                                 mt_ptr(logp_c), mt_ptr(target_c),
                                                 weight_c ? mt_ptr(weight_c) : NULL, b->ignore_index, mt_ptr(losses))
                                 : MT_OK;
    mt_free_temp(logp_c, logp);
    if (st != MT_OK) {
        mt_free_temp(target_c, b->flat_target);
        mt_free_temp(weight_c, b->weight);
        mt_free(losses);
        return NULL;
    }

    mt_node *node = mt_node_new(&nll_op, losses, 1, &logp);
    bool saved = true;
    if (node) {
        /* the node keeps its own aliases of the (contiguous) targets and weights */
        node->ints[0] = b->ignore_index;
        mt_tensor *saved_target = mt_alias_owned(target_c);
        mt_tensor *saved_weight = weight_c ? mt_alias_owned(weight_c) : NULL;
        mt_node_save(node, 0, saved_target);
        mt_node_save(node, 1, saved_weight);
        saved = saved_target && (!weight_c || saved_weight);
    }
    mt_free_temp(target_c, b->flat_target);
    mt_free_temp(weight_c, b->weight);
    if (!saved) {
        mt_node_free(node);
        mt_free(losses);
        return MT_FAIL(MT_ERR_MEMORY, "nll_loss: out of memory recording the tape");
    }
    return mt_node_commit(node, losses);
}

/*
 * mean: sum_i l_i / sum_i w[t_i] [t_i != ignore_index]; sum: sum_i l_i;
 * none: l_i in the target's shape.
 */
static mt_tensor *reduce_class_losses(mt_tensor *losses, mt_reduction reduction, const class_batch *b, const mt_tensor *target)
{
    if (reduction == MT_REDUCTION_NONE) return mt_reshape(losses, target->ndim, target->shape);
    return reduce_losses(losses, reduction, b->total_weight);
}

static bool check_index_target_dtype(const char *op, const mt_tensor *input, const mt_tensor *target)
{
    if (target->dtype == MT_I64) return true;
    char s1[128], s2[128];
    mt_set_error(MT_ERR_DTYPE, "%s: target must hold class indices as i64, got %s of shape %s for input of shape %s"
                 " (convert with mt_to_dtype)", op, mt_dtype_name(target->dtype), mt_shape_str(target, s1, sizeof s1),
                 mt_shape_str(input, s2, sizeof s2));
    return false;
}

static mt_tensor *nll_loss_body(mt_tensor *logp, mt_tensor *target, mt_ce_opts opts)
{
    const char *op = "nll_loss";
    if (!mt_check_float(op, logp) || !mt_check_input(op, target)) return NULL;
    if (!check_reduction(op, opts.reduction)) return NULL;
    if (opts.label_smoothing != 0)
        return MT_FAIL(MT_ERR_ARGUMENT, "nll_loss: label_smoothing (%g) applies to cross_entropy only; leave it 0",
                       opts.label_smoothing);
    if (!check_index_target_dtype(op, logp, target)) return NULL;
    class_batch b;
    if (!class_batch_prepare(op, logp, target, &opts, &b)) return NULL;
    mt_tensor *losses = nll_rows(classes_last(logp, &b), &b);
    return reduce_class_losses(losses, opts.reduction, &b, target);
}

mt_tensor *mt_nll_loss(mt_tensor *logp, mt_tensor *target, mt_ce_opts opts)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, nll_loss_body(logp, target, opts));
}

/* ---------------------------------------------------------------- cross_entropy */
/*
 * Class indices, logp = log_softmax(x) over the class dim, as [M, C]:
 *   l_i = (1 - eps) (-w[t_i] logp[i, t_i]) + eps/C * sum_j (-w_j logp[i, j])
 *   and l_i = 0 where t_i == ignore_index (both terms, as PyTorch's masked_fill).
 * The mean divides by sum_i w[t_i] over the targets not ignored, for both terms.
 */
static mt_tensor *cross_entropy_indices(mt_tensor *logits, mt_tensor *target, const mt_ce_opts *opts)
{
    const char *op = "cross_entropy";
    if (!check_index_target_dtype(op, logits, target)) return NULL;
    class_batch b;
    if (!class_batch_prepare(op, logits, target, opts, &b)) return NULL;
    mt_tensor *logp = classes_last(mt_log_softmax(logits, b.class_dim), &b);
    mt_tensor *losses = nll_rows(logp, &b);
    double eps = opts->label_smoothing;
    if (eps > 0 && losses) {
        int class_axis = 1;
        /* minus the smoothing term: sum_j w_j logp[i, j] */
        mt_tensor *weighted = b.weight ? mt_mul(logp, b.weight) : logp;
        mt_tensor *neg_smooth = mt_sum(weighted, 1, &class_axis, false);
        if (b.n_ignored > 0 && neg_smooth) {
            mt_device device = mt_device_of(target);
            mt_tensor *kept = mt_ne(b.flat_target, scalar_on(device, MT_I64, (double)b.ignore_index));
            neg_smooth = mt_where(kept, neg_smooth, scalar_on(device, neg_smooth->dtype, 0.0));
        }
        losses = mt_sub(mt_mul_scalar(losses, 1.0 - eps), mt_mul_scalar(neg_smooth, eps / (double)b.n_classes));
    }
    return reduce_class_losses(losses, opts->reduction, &b, target);
}

/*
 * Probabilities p of the logits' shape, p' = (1 - eps) p + eps/C:
 *   l_n = -sum_j w_j p'_nj logp_nj      (per sample n and position d)
 * mean divides sum_n l_n by the number of samples N * d1 * ... (not by weights).
 */
static mt_tensor *cross_entropy_probabilities(mt_tensor *logits, mt_tensor *probs, const mt_ce_opts *opts)
{
    const char *op = "cross_entropy";
    char s1[128];
    if (!mt_check_same_device(op, logits, probs)) return NULL;
    if (probs->dtype != logits->dtype)
        return MT_FAIL(MT_ERR_DTYPE, "cross_entropy: probability target must have the logits' dtype %s, got %s",
                       mt_dtype_name(logits->dtype), mt_dtype_name(probs->dtype));
    if (logits->ndim < 1)
        return MT_FAIL(MT_ERR_SHAPE, "cross_entropy: input must be [N, C], [N, C, d1, ...] or [C], got shape %s",
                       mt_shape_str(logits, s1, sizeof s1));
    if (opts->has_ignore_index && opts->ignore_index >= 0)
        return MT_FAIL(MT_ERR_ARGUMENT, "cross_entropy: ignore_index (%" PRId64 ") is not supported with probability targets",
                       opts->ignore_index);
    int class_dim = logits->ndim == 1 ? 0 : 1;
    int64_t n_classes = logits->shape[class_dim];
    if (!check_class_weight(op, logits, opts->weight, n_classes)) return NULL;
    double n_samples = 1;
    for (int d = 0; d < logits->ndim; d++) if (d != class_dim) n_samples *= (double)logits->shape[d];

    double eps = opts->label_smoothing;
    mt_tensor *logp = mt_log_softmax(logits, class_dim);
    mt_tensor *p = eps > 0 ? mt_add_scalar(mt_mul_scalar(probs, 1.0 - eps), eps / (double)n_classes) : probs;
    mt_tensor *terms = mt_mul(logp, p);
    if (opts->weight) {
        /* w as [1, C, 1, ...] so that it meets the class dim */
        int64_t wshape[MT_MAX_DIMS];
        for (int d = 0; d < logits->ndim; d++) wshape[d] = d == class_dim ? n_classes : 1;
        terms = mt_mul(terms, mt_reshape(mt_detach(opts->weight), logits->ndim, wshape));
    }
    if (opts->reduction == MT_REDUCTION_NONE) return mt_neg(mt_sum(terms, 1, &class_dim, false));
    mt_tensor *total = mt_sum_all(terms);
    return mt_mul_scalar(total, opts->reduction == MT_REDUCTION_SUM ? -1.0 : -1.0 / n_samples);
}

static mt_tensor *cross_entropy_body(mt_tensor *logits, mt_tensor *target, mt_ce_opts opts)
{
    const char *op = "cross_entropy";
    if (!mt_check_float(op, logits) || !mt_check_input(op, target)) return NULL;
    if (!check_reduction(op, opts.reduction)) return NULL;
    if (!(opts.label_smoothing >= 0.0 && opts.label_smoothing <= 1.0))
        return MT_FAIL(MT_ERR_ARGUMENT, "cross_entropy: label_smoothing must be in [0, 1], got %g", opts.label_smoothing);
    bool same_shape = mt_same_shape(logits, target);
    if (mt_dtype_is_float(target->dtype)) {
        if (same_shape) return cross_entropy_probabilities(logits, target, &opts);
        char s1[128], s2[128];
        return MT_FAIL(MT_ERR_DTYPE, "cross_entropy: a %s target must be class probabilities of the logits' shape %s,"
                       " got shape %s; class indices must be i64", mt_dtype_name(target->dtype),
                       mt_shape_str(logits, s1, sizeof s1), mt_shape_str(target, s2, sizeof s2));
    }
    if (same_shape && logits->ndim > 0) {
        char s1[128];
        return MT_FAIL(MT_ERR_DTYPE, "cross_entropy: a target of the logits' shape %s holds class probabilities and must be %s,"
                       " got %s", mt_shape_str(logits, s1, sizeof s1), mt_dtype_name(logits->dtype), mt_dtype_name(target->dtype));
    }
    return cross_entropy_indices(logits, target, &opts);
}

mt_tensor *mt_cross_entropy(mt_tensor *logits, mt_tensor *target, mt_ce_opts opts)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, cross_entropy_body(logits, target, opts));
}

/* ---------------------------------------------------------------- bce_with_logits */
/*
 * l = (1 - y) x + lw log(1 + exp(-x)),   lw = 1 + (pw - 1) y   (lw = 1 without pos_weight)
 *   = max(x, 0) - x y + log(1 + exp(-|x|))   when lw = 1
 * then l *= weight. log(1 + exp(-x)) is softplus(-x), exact for large |x|.
 * dl/dx = (1 - y) - lw sigmoid(-x), dl/dy = -x + (pw - 1) softplus(-x): from the ops.
 */
static bool check_broadcasts_to(const char *op, const char *what, mt_tensor *t, mt_tensor *logits)
{
    if (!t) return true;
    if (!mt_check_same_device(op, logits, t)) return false;
    if (t->dtype != logits->dtype) {
        mt_set_error(MT_ERR_DTYPE, "%s: %s must have the logits' dtype %s, got %s", op, what,
                     mt_dtype_name(logits->dtype), mt_dtype_name(t->dtype));
        return false;
    }
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    mt_tensor *both[2] = { logits, t };
    bool fits = mt_broadcast_shapes(op, 2, both, &ndim, shape) && ndim == logits->ndim;
    for (int d = 0; fits && d < ndim; d++) fits = shape[d] == logits->shape[d];
    if (fits) return true;
    char s1[128], s2[128];
    mt_set_error(MT_ERR_SHAPE, "%s: %s of shape %s does not broadcast to the logits' shape %s", op, what,
                 mt_shape_str(t, s1, sizeof s1), mt_shape_str(logits, s2, sizeof s2));
    return false;
}

static mt_tensor *bce_with_logits_body(mt_tensor *logits, mt_tensor *target, mt_bce_opts opts)
{
    const char *op = "bce_with_logits";
    if (!mt_check_float(op, logits) || !mt_check_input(op, target)) return NULL;
    if (!check_reduction(op, opts.reduction)) return NULL;
    if (!mt_check_float(op, target) || !mt_check_same_device(op, logits, target) ||
        !mt_check_same_dtype(op, logits, target))
        return NULL;
    if (!mt_same_shape(logits, target)) {
        char s1[128], s2[128];
        return MT_FAIL(MT_ERR_SHAPE, "bce_with_logits: target shape %s must equal the logits' shape %s",
                       mt_shape_str(target, s1, sizeof s1), mt_shape_str(logits, s2, sizeof s2));
    }
    if (!check_broadcasts_to(op, "weight", opts.weight, logits) ||
        !check_broadcasts_to(op, "pos_weight", opts.pos_weight, logits))
        return NULL;

    mt_tensor *x = logits, *y = target;
    mt_tensor *log1p_exp_neg_x = mt_softplus(mt_neg(x), 1.0, SOFTPLUS_LINEAR_ABOVE);
    if (opts.pos_weight) {
        mt_tensor *log_weight = mt_add_scalar(mt_mul(mt_add_scalar(mt_detach(opts.pos_weight), -1.0), y), 1.0);
        log1p_exp_neg_x = mt_mul(log_weight, log1p_exp_neg_x);
    }
    mt_tensor *losses = mt_add(mt_sub(x, mt_mul(x, y)), log1p_exp_neg_x);
    if (opts.weight) losses = mt_mul(losses, mt_detach(opts.weight));
    if (opts.reduction == MT_REDUCTION_MEAN) return mt_mean_all(losses);
    if (opts.reduction == MT_REDUCTION_SUM) return mt_sum_all(losses);
    return losses;
}

mt_tensor *mt_bce_with_logits(mt_tensor *logits, mt_tensor *target, mt_bce_opts opts)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, bce_with_logits_body(logits, target, opts));
}
