/*
 * test_ops_loss.c - mse_loss, nll_loss, cross_entropy (class indices and
 * probabilities) and bce_with_logits: harness cases for every reduction and
 * option against naive double references, values cross-checked against
 * PyTorch, and the errors bad inputs give.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- case parameters */
typedef enum loss_kind { LOSS_MSE, LOSS_NLL, LOSS_CE, LOSS_CE_PROBS, LOSS_BCE } loss_kind;

typedef struct loss_case {
    loss_kind kind;
    mt_reduction reduction;
    double label_smoothing;
    bool has_ignore_index;
    int64_t ignore_index;
    int weight_at;       /* index of the class weight (ce/nll) or weight (bce) input; 0 = none */
    int pos_weight_at;   /* bce: index of the pos_weight input; 0 = none */
} loss_case;

/* Index inputs (MT_I64, uniform in [0, high)) and constant float inputs. */
#define INDEX_SPEC(high, ...) \
    { .ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .shape = {__VA_ARGS__}, .integer = true, .int_high = (high) }
#define INDEX_SPEC0(high) { .ndim = 0, .integer = true, .int_high = (high) }
#define CONST_SPEC(lo_, hi_, ...) \
    { .ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .shape = {__VA_ARGS__}, .lo = (lo_), .hi = (hi_), .no_grad = true }

static mt_ce_opts ce_opts_of(const loss_case *p, mt_tensor *const *in)
{
    return (mt_ce_opts){ .reduction = p->reduction, .label_smoothing = p->label_smoothing,
                         .has_ignore_index = p->has_ignore_index, .ignore_index = p->ignore_index,
                         .weight = p->weight_at ? in[p->weight_at] : NULL };
}

static mt_tensor *run_loss(const mt_op_case *c, mt_tensor *const *in)
{
    const loss_case *p = c->params;
    switch (p->kind) {
    case LOSS_MSE: return mt_mse_loss(in[0], in[1], p->reduction);
    case LOSS_NLL: return mt_nll_loss(in[0], in[1], ce_opts_of(p, in));
    case LOSS_CE: return mt_cross_entropy(in[0], in[1], ce_opts_of(p, in));
    case LOSS_CE_PROBS: {
        /* probabilities: the softmax of input 1 over the class dim */
        mt_tensor *probs = mt_softmax(in[1], in[1]->ndim == 1 ? 0 : 1);
        return mt_cross_entropy(in[0], probs, ce_opts_of(p, in));
    }
    case LOSS_BCE:
        return mt_bce_with_logits(in[0], in[1], (mt_bce_opts){ .reduction = p->reduction,
                                  .weight = p->weight_at ? in[p->weight_at] : NULL,
                                  .pos_weight = p->pos_weight_at ? in[p->pos_weight_at] : NULL });
    }
    return NULL;
}

/* ---------------------------------------------------------------- references */
/* out = losses (none, in shape), their sum, or their sum / denominator (mean). */
static void ref_reduce(ref_tensor *out, const double *losses, int ndim, const int64_t *shape, mt_reduction reduction,
                       double denominator)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    if (reduction == MT_REDUCTION_NONE) {
        ref_alloc(out, ndim, shape);
        for (int64_t k = 0; k < n; k++) out->data[k] = losses[k];
        return;
    }
    double total = 0;
    for (int64_t k = 0; k < n; k++) total += losses[k];
    ref_alloc(out, 0, NULL);
    out->data[0] = reduction == MT_REDUCTION_SUM ? total : total / denominator;
}

/* mse: (a - b)^2 over the broadcast shape */
static void ref_mse(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const loss_case *p = c->params;
    int ndim;
    int64_t shape[MT_MAX_DIMS], idx[MT_MAX_DIMS] = { 0 };
    ref_broadcast_shape(&in[0], &in[1], &ndim, shape);
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    double *losses = calloc((size_t)n, sizeof(double));
    for (int64_t k = 0; k < n; k++) {
        double diff = in[0].data[ref_broadcast_offset(&in[0], ndim, idx)] - in[1].data[ref_broadcast_offset(&in[1], ndim, idx)];
        losses[k] = diff * diff;
        ref_next_index(ndim, shape, idx);
    }
    ref_reduce(out, losses, ndim, shape, p->reduction, (double)n);
    free(losses);
}

/* An input [N, C, d1, ...] (or [C]) seen as (N, C, D): element (n, j, d) is at (n C + j) D + d. */
typedef struct class_layout { int64_t n, c, d; int out_ndim; int64_t out_shape[MT_MAX_DIMS]; } class_layout;

static class_layout layout_of(const ref_tensor *x)
{
    class_layout l = { .n = 1, .c = x->shape[0], .d = 1, .out_ndim = 0 };
    if (x->ndim == 1) return l;
    l.n = x->shape[0];
    l.c = x->shape[1];
    l.out_shape[l.out_ndim++] = x->shape[0];
    for (int k = 2; k < x->ndim; k++) { l.d *= x->shape[k]; l.out_shape[l.out_ndim++] = x->shape[k]; }
    return l;
}

/* row[j] = log_softmax over the classes of sample (n, d), or the values themselves */
static void class_row(const ref_tensor *x, class_layout l, int64_t n, int64_t d, bool log_softmax, double *row)
{
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < l.c; j++) {
        row[j] = x->data[(n * l.c + j) * l.d + d];
        if (row[j] > max) max = row[j];
    }
    if (!log_softmax) return;
    for (int64_t j = 0; j < l.c; j++) sum += exp(row[j] - max);
    double lse = max + log(sum);
    for (int64_t j = 0; j < l.c; j++) row[j] -= lse;
}

/* nll / cross_entropy with class indices:
   l = (1 - eps)(-w[t] logp[t]) + eps/C sum_j -w_j logp[j], 0 where t is ignored;
   mean divides by sum of w[t] over the targets not ignored. */
static void ref_class_index(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const loss_case *p = c->params;
    const ref_tensor *x = &in[0], *t = &in[1];
    const double *w = p->weight_at ? in[p->weight_at].data : NULL;
    class_layout l = layout_of(x);
    double *losses = calloc((size_t)(l.n * l.d), sizeof(double)), *logp = calloc((size_t)l.c, sizeof(double));
    double denominator = 0, eps = p->label_smoothing;
    int64_t ignored = 0;
    for (int64_t n = 0; n < l.n; n++) {
        for (int64_t d = 0; d < l.d; d++) {
            class_row(x, l, n, d, p->kind == LOSS_CE, logp);
            int64_t k = (int64_t)t->data[n * l.d + d];
            if (p->has_ignore_index && k == p->ignore_index) { ignored++; continue; }
            double wk = w ? w[k] : 1, smooth = 0;
            for (int64_t j = 0; j < l.c; j++) smooth -= (w ? w[j] : 1) * logp[j];
            losses[n * l.d + d] = (1 - eps) * (-wk * logp[k]) + eps / (double)l.c * smooth;
            denominator += wk;
        }
    }
    /* the case must exercise ignore_index: some targets ignored, some not */
    if (p->has_ignore_index)
        cr_assert(ignored > 0 && ignored < l.n * l.d, "%s: %lld of %lld targets equal ignore_index %lld; pick another",
                  c->name, (long long)ignored, (long long)(l.n * l.d), (long long)p->ignore_index);
    ref_reduce(out, losses, l.out_ndim, l.out_shape, p->reduction, denominator);
    free(losses);
    free(logp);
}

/* cross_entropy with probabilities p = softmax(input 1), p' = (1 - eps) p + eps/C:
   l = -sum_j w_j p'_j logp_j; mean divides by the number of samples. */
static void ref_class_probs(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const loss_case *p = c->params;
    const double *w = p->weight_at ? in[p->weight_at].data : NULL;
    class_layout l = layout_of(&in[0]);
    double *losses = calloc((size_t)(l.n * l.d), sizeof(double));
    double *logp = calloc((size_t)l.c, sizeof(double)), *logq = calloc((size_t)l.c, sizeof(double));
    double eps = p->label_smoothing;
    for (int64_t n = 0; n < l.n; n++) {
        for (int64_t d = 0; d < l.d; d++) {
            class_row(&in[0], l, n, d, true, logp);
            class_row(&in[1], l, n, d, true, logq);   /* log of the target probabilities */
            double loss = 0;
            for (int64_t j = 0; j < l.c; j++) {
                double target = (1 - eps) * exp(logq[j]) + eps / (double)l.c;
                loss -= (w ? w[j] : 1) * target * logp[j];
            }
            losses[n * l.d + d] = loss;
        }
    }
    ref_reduce(out, losses, l.out_ndim, l.out_shape, p->reduction, (double)(l.n * l.d));
    free(losses);
    free(logp);
    free(logq);
}

/* bce: (1 - y) x + (1 + (pw - 1) y)(max(-x, 0) + log(1 + exp(-|x|))), times weight */
static void ref_bce(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const loss_case *p = c->params;
    const ref_tensor *x = &in[0], *y = &in[1];
    int64_t n = ref_numel(x), idx[MT_MAX_DIMS] = { 0 };
    double *losses = calloc((size_t)n, sizeof(double));
    for (int64_t k = 0; k < n; k++) {
        double xv = x->data[k], yv = y->data[k];
        double pw = p->pos_weight_at ? in[p->pos_weight_at].data[ref_broadcast_offset(&in[p->pos_weight_at], x->ndim, idx)] : 1;
        double w = p->weight_at ? in[p->weight_at].data[ref_broadcast_offset(&in[p->weight_at], x->ndim, idx)] : 1;
        double log1p_exp_neg_x = fmax(-xv, 0) + log1p(exp(-fabs(xv)));
        losses[k] = w * ((1 - yv) * xv + (1 + (pw - 1) * yv) * log1p_exp_neg_x);
        ref_next_index(x->ndim, x->shape, idx);
    }
    ref_reduce(out, losses, x->ndim, x->shape, p->reduction, (double)n);
    free(losses);
}

static void ref_loss(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const loss_case *p = c->params;
    switch (p->kind) {
    case LOSS_MSE: ref_mse(c, in, out); break;
    case LOSS_NLL: case LOSS_CE: ref_class_index(c, in, out); break;
    case LOSS_CE_PROBS: ref_class_probs(c, in, out); break;
    case LOSS_BCE: ref_bce(c, in, out); break;
    }
}

#define LOSS_CASE(NAME, N_IN, PARAMS, ...)                                                \
    Test(ops_loss, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {               \
        static const loss_case params = PARAMS;                                            \
        mt_op_case c = { .name = #NAME, .n_inputs = N_IN, .inputs = { __VA_ARGS__ },       \
                         .run = run_loss, .reference = ref_loss, .params = &params };       \
        mt_check_op(&c);                                                                   \
    }
#define P(...) { __VA_ARGS__ }

#define MEAN MT_REDUCTION_MEAN
#define SUM MT_REDUCTION_SUM
#define NONE MT_REDUCTION_NONE

/* ---------------------------------------------------------------- mse_loss */
LOSS_CASE(mse_mean, 2, P(.kind = LOSS_MSE, .reduction = MEAN), MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 3, 4))
LOSS_CASE(mse_sum, 2, P(.kind = LOSS_MSE, .reduction = SUM), MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 3, 4))
LOSS_CASE(mse_none, 2, P(.kind = LOSS_MSE, .reduction = NONE), MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 3, 4))
LOSS_CASE(mse_broadcast_none, 2, P(.kind = LOSS_MSE, .reduction = NONE), MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 4))
LOSS_CASE(mse_broadcast_mean, 2, P(.kind = LOSS_MSE, .reduction = MEAN), MT_SPEC(-2, 2, 2, 1, 3), MT_SPEC(-2, 2, 4, 1))
LOSS_CASE(mse_scalar_sum, 2, P(.kind = LOSS_MSE, .reduction = SUM), MT_SPEC0(-2, 2), MT_SPEC0(-2, 2))

/* ---------------------------------------------------------------- nll_loss (log-probabilities as inputs) */
#define LOGP(...) MT_SPEC(-3, -0.05, __VA_ARGS__)
LOSS_CASE(nll_mean, 2, P(.kind = LOSS_NLL, .reduction = MEAN), LOGP(5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(nll_sum, 2, P(.kind = LOSS_NLL, .reduction = SUM), LOGP(5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(nll_none, 2, P(.kind = LOSS_NLL, .reduction = NONE), LOGP(5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(nll_weight_mean, 3, P(.kind = LOSS_NLL, .reduction = MEAN, .weight_at = 2),
          LOGP(6, 4), INDEX_SPEC(4, 6), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(nll_ignore_mean, 2, P(.kind = LOSS_NLL, .reduction = MEAN, .has_ignore_index = true, .ignore_index = 2),
          LOGP(8, 4), INDEX_SPEC(4, 8))
LOSS_CASE(nll_weight_ignore_mean, 3, P(.kind = LOSS_NLL, .reduction = MEAN, .has_ignore_index = true, .ignore_index = 0, .weight_at = 2),
          LOGP(8, 3), INDEX_SPEC(3, 8), CONST_SPEC(0.5, 2, 3))
LOSS_CASE(nll_weight_ignore_sum, 3, P(.kind = LOSS_NLL, .reduction = SUM, .has_ignore_index = true, .ignore_index = 0, .weight_at = 2),
          LOGP(8, 3), INDEX_SPEC(3, 8), CONST_SPEC(0.5, 2, 3))
LOSS_CASE(nll_weight_ignore_none, 3, P(.kind = LOSS_NLL, .reduction = NONE, .has_ignore_index = true, .ignore_index = 0, .weight_at = 2),
          LOGP(8, 3), INDEX_SPEC(3, 8), CONST_SPEC(0.5, 2, 3))
LOSS_CASE(nll_nd_weight_ignore_mean, 3, P(.kind = LOSS_NLL, .reduction = MEAN, .has_ignore_index = true, .ignore_index = 2, .weight_at = 2),
          LOGP(3, 4, 2, 2), INDEX_SPEC(4, 3, 2, 2), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(nll_nd_none, 2, P(.kind = LOSS_NLL, .reduction = NONE), LOGP(2, 3, 4), INDEX_SPEC(3, 2, 4))
LOSS_CASE(nll_unbatched_none, 2, P(.kind = LOSS_NLL, .reduction = NONE), LOGP(5), INDEX_SPEC0(5))

/* ---------------------------------------------------------------- cross_entropy, class indices */
#define CE(...) P(.kind = LOSS_CE, __VA_ARGS__)
LOSS_CASE(ce_mean, 2, CE(.reduction = MEAN), MT_SPEC(-3, 3, 5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(ce_sum, 2, CE(.reduction = SUM), MT_SPEC(-3, 3, 5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(ce_none, 2, CE(.reduction = NONE), MT_SPEC(-3, 3, 5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(ce_weight_mean, 3, CE(.reduction = MEAN, .weight_at = 2), MT_SPEC(-3, 3, 6, 4), INDEX_SPEC(4, 6), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(ce_weight_sum, 3, CE(.reduction = SUM, .weight_at = 2), MT_SPEC(-3, 3, 6, 4), INDEX_SPEC(4, 6), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(ce_ignore_mean, 2, CE(.reduction = MEAN, .has_ignore_index = true, .ignore_index = 0), MT_SPEC(-3, 3, 8, 3), INDEX_SPEC(3, 8))
LOSS_CASE(ce_weight_ignore_mean, 3, CE(.reduction = MEAN, .has_ignore_index = true, .ignore_index = 2, .weight_at = 2),
          MT_SPEC(-3, 3, 8, 4), INDEX_SPEC(4, 8), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(ce_smoothing_mean, 2, CE(.reduction = MEAN, .label_smoothing = 0.2), MT_SPEC(-3, 3, 5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(ce_smoothing_sum, 2, CE(.reduction = SUM, .label_smoothing = 0.2), MT_SPEC(-3, 3, 5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(ce_smoothing_none, 2, CE(.reduction = NONE, .label_smoothing = 0.2), MT_SPEC(-3, 3, 5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(ce_smoothing_one_mean, 2, CE(.reduction = MEAN, .label_smoothing = 1.0), MT_SPEC(-3, 3, 5, 4), INDEX_SPEC(4, 5))
LOSS_CASE(ce_smoothing_weight_mean, 3, CE(.reduction = MEAN, .label_smoothing = 0.3, .weight_at = 2),
          MT_SPEC(-3, 3, 6, 4), INDEX_SPEC(4, 6), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(ce_smoothing_ignore_mean, 2, CE(.reduction = MEAN, .label_smoothing = 0.1, .has_ignore_index = true, .ignore_index = 0),
          MT_SPEC(-3, 3, 8, 3), INDEX_SPEC(3, 8))
LOSS_CASE(ce_smoothing_weight_ignore_mean, 3,
          CE(.reduction = MEAN, .label_smoothing = 0.1, .has_ignore_index = true, .ignore_index = 2, .weight_at = 2),
          MT_SPEC(-3, 3, 8, 4), INDEX_SPEC(4, 8), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(ce_smoothing_weight_ignore_sum, 3,
          CE(.reduction = SUM, .label_smoothing = 0.1, .has_ignore_index = true, .ignore_index = 2, .weight_at = 2),
          MT_SPEC(-3, 3, 8, 4), INDEX_SPEC(4, 8), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(ce_smoothing_weight_ignore_none, 3,
          CE(.reduction = NONE, .label_smoothing = 0.1, .has_ignore_index = true, .ignore_index = 2, .weight_at = 2),
          MT_SPEC(-3, 3, 8, 4), INDEX_SPEC(4, 8), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(ce_nd_mean, 2, CE(.reduction = MEAN), MT_SPEC(-3, 3, 3, 4, 5), INDEX_SPEC(4, 3, 5))
LOSS_CASE(ce_nd_smoothing_weight_ignore_mean, 3,
          CE(.reduction = MEAN, .label_smoothing = 0.2, .has_ignore_index = true, .ignore_index = 1, .weight_at = 2),
          MT_SPEC(-3, 3, 2, 3, 2, 2), INDEX_SPEC(3, 2, 2, 2), CONST_SPEC(0.5, 2, 3))
LOSS_CASE(ce_nd_smoothing_weight_ignore_none, 3,
          CE(.reduction = NONE, .label_smoothing = 0.2, .has_ignore_index = true, .ignore_index = 1, .weight_at = 2),
          MT_SPEC(-3, 3, 2, 3, 2, 2), INDEX_SPEC(3, 2, 2, 2), CONST_SPEC(0.5, 2, 3))
LOSS_CASE(ce_unbatched_smoothing_weight, 3, CE(.reduction = MEAN, .label_smoothing = 0.1, .weight_at = 2),
          MT_SPEC(-3, 3, 6), INDEX_SPEC0(6), CONST_SPEC(0.5, 2, 6))
LOSS_CASE(ce_unbatched_none, 2, CE(.reduction = NONE), MT_SPEC(-3, 3, 6), INDEX_SPEC0(6))

/* ---------------------------------------------------------------- cross_entropy, probabilities */
/* input 1 holds scores whose softmax (taken in run) is the target */
#define CEP(...) P(.kind = LOSS_CE_PROBS, __VA_ARGS__)
LOSS_CASE(ce_probs_mean, 2, CEP(.reduction = MEAN), MT_SPEC(-3, 3, 4, 5), CONST_SPEC(-2, 2, 4, 5))
LOSS_CASE(ce_probs_sum, 2, CEP(.reduction = SUM), MT_SPEC(-3, 3, 4, 5), CONST_SPEC(-2, 2, 4, 5))
LOSS_CASE(ce_probs_none, 2, CEP(.reduction = NONE), MT_SPEC(-3, 3, 4, 5), CONST_SPEC(-2, 2, 4, 5))
LOSS_CASE(ce_probs_weight_smoothing_mean, 3, CEP(.reduction = MEAN, .label_smoothing = 0.25, .weight_at = 2),
          MT_SPEC(-3, 3, 4, 5), CONST_SPEC(-2, 2, 4, 5), CONST_SPEC(0.5, 2, 5))
LOSS_CASE(ce_probs_smoothing_sum, 2, CEP(.reduction = SUM, .label_smoothing = 0.1), MT_SPEC(-3, 3, 4, 5), CONST_SPEC(-2, 2, 4, 5))
/* the gradient reaches the target too, as in PyTorch */
LOSS_CASE(ce_probs_target_grad_mean, 2, CEP(.reduction = MEAN, .label_smoothing = 0.1), MT_SPEC(-3, 3, 3, 4), MT_SPEC(-2, 2, 3, 4))
LOSS_CASE(ce_probs_nd_weight_none, 3, CEP(.reduction = NONE, .weight_at = 2),
          MT_SPEC(-3, 3, 2, 3, 4), CONST_SPEC(-2, 2, 2, 3, 4), CONST_SPEC(0.5, 2, 3))
LOSS_CASE(ce_probs_nd_weight_mean, 3, CEP(.reduction = MEAN, .weight_at = 2),
          MT_SPEC(-3, 3, 2, 3, 4), CONST_SPEC(-2, 2, 2, 3, 4), CONST_SPEC(0.5, 2, 3))
LOSS_CASE(ce_probs_unbatched, 2, CEP(.reduction = MEAN), MT_SPEC(-3, 3, 5), CONST_SPEC(-2, 2, 5))

/* ---------------------------------------------------------------- bce_with_logits */
#define BCE(...) P(.kind = LOSS_BCE, __VA_ARGS__)
LOSS_CASE(bce_mean, 2, BCE(.reduction = MEAN), MT_SPEC(-4, 4, 3, 4), MT_SPEC(0, 1, 3, 4))
LOSS_CASE(bce_sum, 2, BCE(.reduction = SUM), MT_SPEC(-4, 4, 3, 4), MT_SPEC(0, 1, 3, 4))
LOSS_CASE(bce_none, 2, BCE(.reduction = NONE), MT_SPEC(-4, 4, 3, 4), MT_SPEC(0, 1, 3, 4))
LOSS_CASE(bce_weight_mean, 3, BCE(.reduction = MEAN, .weight_at = 2), MT_SPEC(-4, 4, 3, 4), MT_SPEC(0, 1, 3, 4), CONST_SPEC(0.5, 2, 4))
LOSS_CASE(bce_pos_weight_mean, 3, BCE(.reduction = MEAN, .pos_weight_at = 2),
          MT_SPEC(-4, 4, 3, 4), MT_SPEC(0, 1, 3, 4), CONST_SPEC(0.5, 3, 4))
LOSS_CASE(bce_weight_pos_weight_sum, 4, BCE(.reduction = SUM, .weight_at = 2, .pos_weight_at = 3),
          MT_SPEC(-4, 4, 3, 4), MT_SPEC(0, 1, 3, 4), CONST_SPEC(0.5, 2, 3, 1), CONST_SPEC(0.5, 3, 4))
LOSS_CASE(bce_weight_pos_weight_none, 4, BCE(.reduction = NONE, .weight_at = 2, .pos_weight_at = 3),
          MT_SPEC(-4, 4, 2, 3, 2), MT_SPEC(0, 1, 2, 3, 2), CONST_SPEC(0.5, 2, 3, 2), CONST_SPEC(0.5, 3, 2))
LOSS_CASE(bce_wide_logits_sum, 2, BCE(.reduction = SUM), MT_SPEC(-45, 45, 12), MT_SPEC(0, 1, 12))

/* ---------------------------------------------------------------- values from PyTorch */
/*
 * Expected numbers produced once with PyTorch 1.13.1 (Debian's python3-torch),
 * in float64, by torch.nn.functional.{cross_entropy, nll_loss,
 * binary_cross_entropy_with_logits, mse_loss} on the tensors below, e.g.
 *   F.cross_entropy(x, t, weight=w, ignore_index=0, label_smoothing=0.1)
 * and .backward() for the gradients.
 */
static const double X34[] = { 1.0, -0.5, 2.0, 0.3, 0.2, 0.1, -1.2, 1.5, -0.7, 0.8, 0.0, -2.0 };
static const int64_t T3[] = { 2, 0, 3 };
static const double W4[] = { 0.5, 1.0, 2.0, 1.5 };
static const double PROBS34[] = { 0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25, 0.7, 0.1, 0.1, 0.1 };

static void expect_values(const char *what, mt_tensor *got, int64_t n, const double *expect, double tol)
{
    cr_assert(got != NULL, "%s: failed: %s", what, mt_last_error());
    cr_assert_eq(mt_numel(got), n, "%s: %lld values, expected %lld", what, (long long)mt_numel(got), (long long)n);
    double values[64];
    mt_to_data(got, MT_F64, values);
    for (int64_t k = 0; k < n; k++)
        cr_assert(fabs(values[k] - expect[k]) <= tol * (1 + fabs(expect[k])), "%s[%lld] = %.17g, PyTorch %.17g", what,
                  (long long)k, values[k], expect[k]);
}

static mt_tensor *f64(const double *data, int ndim, const int64_t *shape) { return mt_from_data(MT_F64, ndim, shape, data); }
static mt_tensor *i64(const int64_t *data, int ndim, const int64_t *shape) { return mt_from_data(MT_I64, ndim, shape, data); }

Test(ops_loss, pytorch_cross_entropy_indices, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(f64(X34, MT_SHAPE(3, 4)), true), *t = i64(T3, MT_SHAPE(3)), *w = f64(W4, MT_SHAPE(4));
    expect_values("ce mean", mt_cross_entropy(x, t, (mt_ce_opts){ 0 }), 1, (double[]){ 1.8672128022794283 }, 1e-13);
    expect_values("ce none", mt_cross_entropy(x, t, (mt_ce_opts){ .reduction = MT_REDUCTION_NONE }), 3,
                  (double[]){ 0.4902032144153275, 1.7614258637514433, 3.350009328671515 }, 1e-13);
    expect_values("ce smoothing 0.25", mt_cross_entropy(x, t, (mt_ce_opts){ .label_smoothing = 0.25 }), 1,
                  (double[]){ 1.8526294689460951 }, 1e-13);
    mt_ce_opts opts = { .weight = w, .has_ignore_index = true, .ignore_index = 0, .label_smoothing = 0.1 };
    mt_tensor *loss = mt_cross_entropy(x, t, opts);
    expect_values("ce weight+ignore+smoothing mean", loss, 1, (double[]){ 1.6678299850114258 }, 1e-13);
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    expect_values("its gradient", mt_grad(x), 12,
                  (double[]){ 0.12035834509968306, 0.020509613103536654, -0.19169537679620366, 0.05082741859298386,
                              0.0, 0.0, 0.0, 0.0,
                              0.05068063183856344, 0.23599800903992443, 0.09496451925075894, -0.3816431601292468 }, 1e-13);
    opts.reduction = MT_REDUCTION_SUM;
    expect_values("ce weight+ignore+smoothing sum", mt_cross_entropy(x, t, opts), 1, (double[]){ 5.83740494753999 }, 1e-13);
    opts.reduction = MT_REDUCTION_NONE;
    expect_values("ce weight+ignore+smoothing none", mt_cross_entropy(x, t, opts), 3,
                  (double[]){ 1.0823911877495056, 0.0, 4.755013759790485 }, 1e-13);
}

Test(ops_loss, pytorch_cross_entropy_nd, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const double xn[] = { 0.5, -1.0, 1.5, 0.2, -0.3, 0.9, 2.0, 0.0, -0.4, 0.7, 0.1, -1.1 };
    static const int64_t tn[] = { 0, 2, 1, 1 };
    static const double wn[] = { 1.0, 2.0, 0.5 };
    mt_tensor *x = f64(xn, MT_SHAPE(2, 3, 2)), *t = i64(tn, MT_SHAPE(2, 2)), *w = f64(wn, MT_SHAPE(3));
    expect_values("ce [N, C, d] weight+ignore+smoothing mean",
                  mt_cross_entropy(x, t, (mt_ce_opts){ .weight = w, .has_ignore_index = true, .ignore_index = 2, .label_smoothing = 0.3 }),
                  1, (double[]){ 1.339895079101564 }, 1e-13);
    mt_tensor *none = mt_cross_entropy(x, t, (mt_ce_opts){ .reduction = MT_REDUCTION_NONE });
    expect_values("ce [N, C, d] none", none, 4,
                  (double[]){ 1.4273429201907635, 0.4984416112570428, 2.6153424597804222, 0.5079520141095887 }, 1e-13);
    cr_assert(none->ndim == 2 && none->shape[0] == 2 && none->shape[1] == 2, "none keeps the target's shape [2, 2]");
}

Test(ops_loss, pytorch_cross_entropy_probabilities, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *p = f64(PROBS34, MT_SHAPE(3, 4)), *w = f64(W4, MT_SHAPE(4));
    expect_values("ce probs weight+smoothing mean", mt_cross_entropy(x, p, (mt_ce_opts){ .weight = w, .label_smoothing = 0.2 }),
                  1, (double[]){ 2.1216590548441885 }, 1e-13);
    expect_values("ce probs none", mt_cross_entropy(x, p, (mt_ce_opts){ .reduction = MT_REDUCTION_NONE }), 3,
                  (double[]){ 1.7702032144153277, 1.811425863751443, 1.960009328671515 }, 1e-13);
}

Test(ops_loss, pytorch_nll_loss, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *t = i64(T3, MT_SHAPE(3)), *w = f64(W4, MT_SHAPE(4));
    expect_values("nll weight mean", mt_nll_loss(x, t, (mt_ce_opts){ .weight = w }), 1, (double[]){ -0.275 }, 1e-13);
    mt_ce_opts opts = { .weight = w, .has_ignore_index = true, .ignore_index = 2, .reduction = MT_REDUCTION_NONE };
    expect_values("nll weight+ignore none", mt_nll_loss(x, t, opts), 3, (double[]){ 0.0, -0.1, 3.0 }, 1e-13);
    opts.reduction = MT_REDUCTION_MEAN;
    expect_values("nll weight+ignore mean", mt_nll_loss(x, t, opts), 1, (double[]){ 1.45 }, 1e-13);
}

Test(ops_loss, pytorch_bce_with_logits, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const double xb[] = { 0.5, -1.5, 3.0, -0.2, 0.0, 2.5 }, yb[] = { 1.0, 0.0, 0.3, 0.0, 1.0, 0.9 };
    static const double wb[] = { 1.0, 0.5, 2.0 }, pwb[] = { 3.0, 1.0, 0.5 };
    mt_tensor *x = mt_requires_grad(f64(xb, MT_SHAPE(2, 3)), true), *y = f64(yb, MT_SHAPE(2, 3));
    mt_tensor *w = f64(wb, MT_SHAPE(3)), *pw = f64(pwb, MT_SHAPE(3));
    expect_values("bce mean", mt_bce_with_logits(x, y, (mt_bce_opts){ 0 }), 1, (double[]){ 0.7407088996617812 }, 1e-13);
    mt_tensor *loss = mt_bce_with_logits(x, y, (mt_bce_opts){ .weight = w, .pos_weight = pw });
    expect_values("bce weight+pos_weight mean", loss, 1, (double[]){ 1.2228378760984044 }, 1e-13);
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    /* note the logit exactly 0 (element 4): its gradient is (sigmoid(0) - y) / 6, not a kink */
    expect_values("its gradient", mt_grad(x), 6,
                  (double[]){ -0.18877033439907268, 0.015202126983863029, 0.21989600259968942, 0.07502766711458703,
                              -0.041666666666666664, 0.01942600032943866 }, 1e-13);
    expect_values("bce pos_weight none", mt_bce_with_logits(x, y, (mt_bce_opts){ .pos_weight = pw, .reduction = MT_REDUCTION_NONE }), 6,
                  (double[]){ 1.42223095254032, 0.20141327798275244, 2.1412992488376803, 0.5981388693815919,
                              0.6931471805599453, 0.2933893538609022 }, 1e-13);
    /* large logits stay finite (PyTorch: 0, 0, 50, 50, 400, 400; ours gives log1p(exp(-100)) = 3.7e-44 for the first two) */
    static const double xl[] = { 100.0, -100.0, 50.0, -50.0, 800.0, -800.0 }, yl[] = { 1.0, 0.0, 0.0, 1.0, 0.5, 0.5 };
    mt_tensor *large = mt_bce_with_logits(f64(xl, MT_SHAPE(6)), f64(yl, MT_SHAPE(6)), (mt_bce_opts){ .reduction = MT_REDUCTION_NONE });
    expect_values("bce large logits none", large, 6, (double[]){ 0.0, 0.0, 50.0, 50.0, 400.0, 400.0 }, 1e-13);
    mt_tensor *large32 = mt_bce_with_logits(mt_from_data(MT_F32, MT_SHAPE(6), (float[]){ 100, -100, 50, -50, 800, -800 }),
                                            mt_from_data(MT_F32, MT_SHAPE(6), (float[]){ 1, 0, 0, 1, 0.5f, 0.5f }),
                                            (mt_bce_opts){ .reduction = MT_REDUCTION_NONE });
    expect_values("bce large logits none, f32", large32, 6, (double[]){ 0.0, 0.0, 50.0, 50.0, 400.0, 400.0 }, 1e-6);
}

Test(ops_loss, pytorch_mse_broadcast, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const double a[] = { 1.0, 2.0, -1.0, 0.5, 0.0, 3.0 }, b[] = { 0.5, -1.0, 2.0 };
    mt_tensor *ta = f64(a, MT_SHAPE(2, 3)), *tb = f64(b, MT_SHAPE(3));
    expect_values("mse broadcast mean", mt_mse_loss(ta, tb, MT_REDUCTION_MEAN), 1, (double[]){ 3.375 }, 1e-14);
    expect_values("mse broadcast sum", mt_mse_loss(ta, tb, MT_REDUCTION_SUM), 1, (double[]){ 20.25 }, 1e-14);
}

/* ---------------------------------------------------------------- behaviour */
Test(ops_loss, all_targets_ignored_mean_is_nan, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* PyTorch divides 0 by a total weight of 0 */
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *t = i64((int64_t[]){ 1, 1, 1 }, MT_SHAPE(3));
    mt_tensor *loss = mt_cross_entropy(x, t, (mt_ce_opts){ .has_ignore_index = true, .ignore_index = 1 });
    cr_assert(loss && isnan(mt_item(loss)), "expected NaN, got %g", loss ? mt_item(loss) : 0.0);
    mt_tensor *sum = mt_cross_entropy(x, t, (mt_ce_opts){ .has_ignore_index = true, .ignore_index = 1, .reduction = MT_REDUCTION_SUM });
    cr_assert(sum && mt_item(sum) == 0.0, "sum over ignored targets is 0");
}

Test(ops_loss, ignore_index_minus_100, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* PyTorch's padding value works once has_ignore_index is set */
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *t = i64((int64_t[]){ 2, -100, 3 }, MT_SHAPE(3));
    mt_tensor *loss = mt_cross_entropy(x, t, (mt_ce_opts){ .has_ignore_index = true, .ignore_index = -100,
                                                           .reduction = MT_REDUCTION_NONE });
    expect_values("ce ignore -100", loss, 3, (double[]){ 0.4902032144153275, 0.0, 3.350009328671515 }, 1e-13);
}

Test(ops_loss, f32_cross_entropy_matches_f64, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *t = i64(T3, MT_SHAPE(3)), *w = f64(W4, MT_SHAPE(4));
    mt_ce_opts opts = { .weight = mt_to_dtype(w, MT_F32), .label_smoothing = 0.1 };
    expect_values("ce f32", mt_cross_entropy(mt_to_dtype(x, MT_F32), t, opts), 1,
                  (double[]){ mt_item(mt_cross_entropy(x, t, (mt_ce_opts){ .weight = w, .label_smoothing = 0.1 })) }, 1e-6);
}

Test(ops_loss, empty_batch, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* as PyTorch: the mean of no samples is NaN, the sum 0, none is empty; backward works */
    mt_tensor *x = mt_requires_grad(mt_zeros(MT_F64, MT_SHAPE(0, 4)), true), *t = mt_zeros(MT_I64, MT_SHAPE(0));
    mt_tensor *mean = mt_cross_entropy(x, t, (mt_ce_opts){ .label_smoothing = 0.1 });
    cr_assert(mean && isnan(mt_item(mean)), "%s", mt_last_error());
    mt_tensor *sum = mt_cross_entropy(x, t, (mt_ce_opts){ .reduction = MT_REDUCTION_SUM });
    cr_assert(sum && mt_item(sum) == 0.0);
    mt_tensor *none = mt_nll_loss(x, t, (mt_ce_opts){ .reduction = MT_REDUCTION_NONE });
    cr_assert(none && none->ndim == 1 && none->shape[0] == 0);
    cr_assert_eq(mt_backward(sum), MT_OK, "%s", mt_last_error());
    cr_assert(mt_grad(x) && mt_numel(mt_grad(x)) == 0);
}

/* ---------------------------------------------------------------- bad inputs */
static void expect_error(mt_tensor *result, mt_status code, const char *const *needles, int n_needles)
{
    cr_assert(result == NULL, "expected an error, got a tensor");
    cr_assert_eq(mt_last_status(), code, "status %d, expected %d (%s)", (int)mt_last_status(), (int)code, mt_last_error());
    for (int i = 0; i < n_needles; i++)
        cr_assert(strstr(mt_last_error(), needles[i]) != NULL, "message \"%s\" lacks \"%s\"", mt_last_error(), needles[i]);
    mt_clear_error();
}
#define EXPECT_ERROR(RESULT, CODE, ...) \
    expect_error((RESULT), (CODE), (const char *const[]){ __VA_ARGS__ }, (int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(char *)))

Test(ops_loss, null_inputs_return_null, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *t = i64(T3, MT_SHAPE(3));
    /* an earlier failure's message survives the chain */
    cr_assert_null(mt_reshape(x, MT_SHAPE(5)));
    char earlier[512];
    snprintf(earlier, sizeof earlier, "%s", mt_last_error());
    cr_assert_null(mt_cross_entropy(NULL, t, (mt_ce_opts){ 0 }));
    cr_assert_null(mt_cross_entropy(x, NULL, (mt_ce_opts){ 0 }));
    cr_assert_null(mt_nll_loss(NULL, t, (mt_ce_opts){ 0 }));
    cr_assert_null(mt_mse_loss(x, NULL, MT_REDUCTION_MEAN));
    cr_assert_null(mt_bce_with_logits(NULL, x, (mt_bce_opts){ 0 }));
    cr_assert_str_eq(mt_last_error(), earlier);
}

Test(ops_loss, wrong_target_dtypes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *t = i64(T3, MT_SHAPE(3));
    EXPECT_ERROR(mt_cross_entropy(x, mt_to_dtype(t, MT_F64), (mt_ce_opts){ 0 }), MT_ERR_DTYPE, "cross_entropy", "[3]", "[3, 4]", "i64");
    EXPECT_ERROR(mt_cross_entropy(x, mt_to_dtype(t, MT_I32), (mt_ce_opts){ 0 }), MT_ERR_DTYPE, "cross_entropy", "i32");
    EXPECT_ERROR(mt_nll_loss(x, mt_to_dtype(t, MT_I32), (mt_ce_opts){ 0 }), MT_ERR_DTYPE, "nll_loss", "i32");
    EXPECT_ERROR(mt_cross_entropy(x, mt_zeros(MT_I64, MT_SHAPE(3, 4)), (mt_ce_opts){ 0 }), MT_ERR_DTYPE, "cross_entropy", "probabilities");
    EXPECT_ERROR(mt_cross_entropy(x, mt_zeros(MT_F32, MT_SHAPE(3, 4)), (mt_ce_opts){ 0 }), MT_ERR_DTYPE, "cross_entropy", "f32");
    EXPECT_ERROR(mt_cross_entropy(mt_to_dtype(t, MT_I64), t, (mt_ce_opts){ 0 }), MT_ERR_DTYPE, "cross_entropy");
    EXPECT_ERROR(mt_mse_loss(x, mt_to_dtype(x, MT_I64), MT_REDUCTION_MEAN), MT_ERR_DTYPE, "mse_loss");
    EXPECT_ERROR(mt_mse_loss(x, mt_to_dtype(x, MT_F32), MT_REDUCTION_MEAN), MT_ERR_DTYPE, "mse_loss");
    EXPECT_ERROR(mt_bce_with_logits(x, mt_to_dtype(x, MT_F32), (mt_bce_opts){ 0 }), MT_ERR_DTYPE, "bce_with_logits");
    EXPECT_ERROR(mt_cross_entropy(x, t, (mt_ce_opts){ .weight = mt_ones(MT_F32, MT_SHAPE(4)) }), MT_ERR_DTYPE, "cross_entropy", "weight");
}

Test(ops_loss, targets_out_of_range, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4));
    EXPECT_ERROR(mt_cross_entropy(x, i64((int64_t[]){ 0, 7, 1 }, MT_SHAPE(3)), (mt_ce_opts){ 0 }), MT_ERR_ARGUMENT,
                 "cross_entropy", "target 7", "[0, 4)");
    EXPECT_ERROR(mt_nll_loss(x, i64((int64_t[]){ 0, 1, -1 }, MT_SHAPE(3)), (mt_ce_opts){ 0 }), MT_ERR_ARGUMENT,
                 "nll_loss", "target -1", "[0, 4)");
    EXPECT_ERROR(mt_nll_loss(x, i64((int64_t[]){ 0, 4, 1 }, MT_SHAPE(3)), (mt_ce_opts){ .has_ignore_index = true, .ignore_index = 1 }),
                 MT_ERR_ARGUMENT, "nll_loss", "target 4", "[0, 4)");
    /* PyTorch's default padding value, without has_ignore_index: a hint */
    EXPECT_ERROR(mt_cross_entropy(x, i64((int64_t[]){ 0, -100, 1 }, MT_SHAPE(3)), (mt_ce_opts){ 0 }), MT_ERR_ARGUMENT,
                 "target -100", "has_ignore_index");
}

Test(ops_loss, shape_mismatches, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F64, MT_SHAPE(4, 5));
    EXPECT_ERROR(mt_nll_loss(x, mt_zeros(MT_I64, MT_SHAPE(3)), (mt_ce_opts){ 0 }), MT_ERR_SHAPE, "nll_loss", "[3]", "[4, 5]", "[4]");
    EXPECT_ERROR(mt_cross_entropy(mt_zeros(MT_F64, MT_SHAPE(2, 3, 4)), mt_zeros(MT_I64, MT_SHAPE(2, 5)), (mt_ce_opts){ 0 }),
                 MT_ERR_SHAPE, "cross_entropy", "[2, 5]", "[2, 3, 4]", "[2, 4]");
    EXPECT_ERROR(mt_cross_entropy(x, mt_zeros(MT_I64, MT_SHAPE(4, 1)), (mt_ce_opts){ 0 }), MT_ERR_SHAPE, "cross_entropy", "[4, 1]");
    EXPECT_ERROR(mt_cross_entropy(mt_scalar(MT_F64, 1), mt_scalar(MT_I64, 0), (mt_ce_opts){ 0 }), MT_ERR_SHAPE, "cross_entropy");
    EXPECT_ERROR(mt_mse_loss(mt_zeros(MT_F64, MT_SHAPE(3, 4)), mt_zeros(MT_F64, MT_SHAPE(5)), MT_REDUCTION_MEAN), MT_ERR_SHAPE,
                 "mse_loss", "[3, 4]", "[5]");
    EXPECT_ERROR(mt_bce_with_logits(x, mt_zeros(MT_F64, MT_SHAPE(5)), (mt_bce_opts){ 0 }), MT_ERR_SHAPE,
                 "bce_with_logits", "[5]", "[4, 5]");
    EXPECT_ERROR(mt_bce_with_logits(x, x, (mt_bce_opts){ .weight = mt_ones(MT_F64, MT_SHAPE(4)) }), MT_ERR_SHAPE,
                 "bce_with_logits", "weight", "[4]");
    EXPECT_ERROR(mt_bce_with_logits(x, x, (mt_bce_opts){ .pos_weight = mt_ones(MT_F64, MT_SHAPE(2, 4, 5)) }), MT_ERR_SHAPE,
                 "bce_with_logits", "pos_weight", "[2, 4, 5]");
    EXPECT_ERROR(mt_cross_entropy(x, mt_zeros(MT_I64, MT_SHAPE(4)), (mt_ce_opts){ .weight = mt_ones(MT_F64, MT_SHAPE(4)) }),
                 MT_ERR_SHAPE, "cross_entropy", "weight", "[5]", "[4]");
    EXPECT_ERROR(mt_cross_entropy(x, mt_zeros(MT_F64, MT_SHAPE(4, 5)), (mt_ce_opts){ .weight = mt_ones(MT_F64, MT_SHAPE(3)) }),
                 MT_ERR_SHAPE, "cross_entropy", "weight");
}

Test(ops_loss, bad_options, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = f64(X34, MT_SHAPE(3, 4)), *t = i64(T3, MT_SHAPE(3));
    EXPECT_ERROR(mt_cross_entropy(x, t, (mt_ce_opts){ .label_smoothing = -0.1 }), MT_ERR_ARGUMENT, "cross_entropy", "label_smoothing");
    EXPECT_ERROR(mt_cross_entropy(x, t, (mt_ce_opts){ .label_smoothing = 1.5 }), MT_ERR_ARGUMENT, "label_smoothing", "[0, 1]");
    EXPECT_ERROR(mt_cross_entropy(x, t, (mt_ce_opts){ .label_smoothing = NAN }), MT_ERR_ARGUMENT, "label_smoothing");
    EXPECT_ERROR(mt_nll_loss(x, t, (mt_ce_opts){ .label_smoothing = 0.1 }), MT_ERR_ARGUMENT, "nll_loss", "label_smoothing");
    EXPECT_ERROR(mt_cross_entropy(x, t, (mt_ce_opts){ .reduction = (mt_reduction)7 }), MT_ERR_ARGUMENT, "cross_entropy", "reduction");
    EXPECT_ERROR(mt_mse_loss(x, x, (mt_reduction)-1), MT_ERR_ARGUMENT, "mse_loss", "reduction");
    EXPECT_ERROR(mt_bce_with_logits(x, x, (mt_bce_opts){ .reduction = (mt_reduction)3 }), MT_ERR_ARGUMENT, "bce_with_logits", "reduction");
    EXPECT_ERROR(mt_cross_entropy(x, f64(PROBS34, MT_SHAPE(3, 4)), (mt_ce_opts){ .has_ignore_index = true, .ignore_index = 0 }),
                 MT_ERR_ARGUMENT, "cross_entropy", "ignore_index");
    /* a negative ignore_index is allowed (and unused) with probabilities, as in PyTorch */
    cr_assert_not_null(mt_cross_entropy(x, f64(PROBS34, MT_SHAPE(3, 4)), (mt_ce_opts){ .has_ignore_index = true, .ignore_index = -100 }));
}
