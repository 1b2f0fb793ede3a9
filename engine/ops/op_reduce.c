/*
 * op_reduce.c - reductions over a set of dims.
 *
 *   op         vjp (g expanded back over the reduced dims)      jvp
 *   sum        g                                                sum(t)
 *   mean       g / n                                            mean(t)
 *   var        g * 2 (x - mean) / (n - correction)              sum(2 (x - mean) t) / (n - correction)
 *   max, min   g * [x == out] / count                           sum(t [x == out]) / count
 *   logsumexp  g * exp(x - out)                                 sum(t exp(x - out))
 *
 * max, min (PyTorch's amax, amin) share the gradient evenly among tied
 * elements. max_dim, min_dim (PyTorch's x.max(dim) -> (values, indices)) are
 * one node with two outputs and give it all to the returned index:
 *
 *   max_dim    g * [j == index]                                 sum(t [j == index])
 *
 * The kernel reduces the middle axis of [outer, n, inner]; when the reduced
 * dims of a contiguous tensor are adjacent that is a reinterpretation, else
 * the tensor is first permuted so that they come last.
 */
#include "engine/internal.h"

#include <string.h>

/* Marks the reduced dims; returns their count (-1 on error). */
static int reduced_mask(const char *op, const mt_tensor *x, int n_dims, const int *dims, bool *mask)
{
    memset(mask, 0, sizeof(bool) * MT_MAX_DIMS);
    if (n_dims == 0) {
        for (int d = 0; d < x->ndim; d++) mask[d] = true;
        return x->ndim;
    }
    if (!dims) { mt_set_error(MT_ERR_ARGUMENT, "%s: dims is NULL", op); return -1; }
    int count = 0;
    for (int i = 0; i < n_dims; i++) {
        int d = mt_wrap_dim(op, dims[i], x->ndim);
        if (d < 0) return -1;
        if (x->ndim == 0) continue;
        if (mask[d]) { mt_set_error(MT_ERR_ARGUMENT, "%s: dim %d appears twice", op, dims[i]); return -1; }
        mask[d] = true;
        count++;
    }
    return count;
}

/* The output shape: reduced dims dropped, or kept as 1. */
static int reduced_shape(const mt_tensor *x, const bool *mask, bool keepdim, int64_t *shape)
{
    int n = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!mask[d]) shape[n++] = x->shape[d];
        else if (keepdim) shape[n++] = 1;
    }
    return n;
}

mt_tensor *mt_reduce_raw(const char *op, mt_reduce_kind kind, mt_tensor *x, int n_dims, const int *dims,
                         bool keepdim, double param)
{
    if (!mt_check_input(op, x)) return NULL;
    bool mask[MT_MAX_DIMS];
    if (reduced_mask(op, x, n_dims, dims, mask) < 0) return NULL;
    int64_t oshape[MT_MAX_DIMS];
    int ondim = reduced_shape(x, mask, keepdim, oshape);
    int64_t n = 1;
    for (int d = 0; d < x->ndim; d++) if (mask[d]) n *= x->shape[d];
    bool arg = kind == MT_REDUCE_ARGMAX || kind == MT_REDUCE_ARGMIN;
    if (n == 0 && kind != MT_REDUCE_SUM && kind != MT_REDUCE_MEAN) {
        char s[128];
        return MT_FAIL(MT_ERR_SHAPE, "%s: cannot reduce an empty dim of shape %s", op, mt_shape_str(x, s, sizeof s));
    }
    mt_tensor *out = mt_new_tensor(mt_device_of(x), arg ? MT_I64 : x->dtype, ondim, oshape);
    if (!out) return NULL;

    /* Find [first, last] of reduced dims (ignoring size-1 dims): adjacent? */
    int first = -1, last = -1;
    bool adjacent = true;
    for (int d = 0; d < x->ndim; d++) {
        if (!mask[d] || x->shape[d] == 1) continue;
        if (first < 0) first = d;
        else if (last != d - 1) {
            for (int k = last + 1; k < d; k++) if (x->shape[k] != 1) adjacent = false;
        }
        last = d;
    }
    int64_t outer = 1, inner = 1;
    mt_tensor *src = x;
    if (first < 0) {                       /* only size-1 dims reduced: n == 1 */
        outer = mt_numel(x);
        src = mt_contiguous(x);
    } else if (adjacent && mt_is_contiguous(x)) {
        for (int d = 0; d < first; d++) outer *= x->shape[d];
        for (int d = last + 1; d < x->ndim; d++) inner *= x->shape[d];
    } else {                               /* kept dims first, reduced dims last */
        int perm[MT_MAX_DIMS], k = 0;
        for (int d = 0; d < x->ndim; d++) if (!mask[d]) { perm[k++] = d; outer *= x->shape[d]; }
        for (int d = 0; d < x->ndim; d++) if (mask[d]) perm[k++] = d;
        bool grad_prev = mt_set_grad_enabled(false), fw_prev = mt_set_forward_ad_enabled(false);
        mt_tensor *p = mt_permute(x, perm);
        src = mt_contiguous(p);
        if (src != p) mt_free(p);
        mt_set_grad_enabled(grad_prev);
        mt_set_forward_ad_enabled(fw_prev);
    }
    if (!src) { mt_free(out); return NULL; }
    mt_status st = n == 0 ? mt_run_kernel(op, out, fill, out->dtype, mt_numel(out), mt_ptr(out), 0)
                          : mt_run_kernel(op, x, reduce, kind, x->dtype, outer, n, inner, mt_ptr(src), mt_ptr(out), param);
    mt_free_temp(src, x);
    if (st != MT_OK) { mt_free(out); return NULL; }
    return out;
}

/* g of the output's shape, viewed with the reduced dims as 1 and expanded to x's shape. */
static mt_tensor *expand_back(mt_node *node, mt_tensor *g)
{
    mt_tensor *x = node->inputs[0];
    bool mask[MT_MAX_DIMS];
    for (int d = 0; d < MT_MAX_DIMS; d++) mask[d] = (node->ints[1] >> d) & 1;
    int64_t kshape[MT_MAX_DIMS];
    int kdim = reduced_shape(x, mask, true, kshape);
    return mt_expand(mt_reshape(g, kdim, kshape), x->ndim, x->shape);
}

/* Reduces t like the node's forward reduced x, as a sum. */
static mt_tensor *sum_like_node(mt_node *node, mt_tensor *t)
{
    int dims[MT_MAX_DIMS], n = 0;
    for (int d = 0; d < node->inputs[0]->ndim; d++) if ((node->ints[1] >> d) & 1) dims[n++] = d;
    if (n == 0) return mt_reshape(t, node->output->ndim, node->output->shape);
    return mt_sum(t, n, dims, node->ints[2] != 0);
}

/* ints[0] = kind, ints[1] = reduced-dims bitmask, ints[2] = keepdim, reals[0] = count n, reals[1] = param */
static mt_status reduce_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *x = node->inputs[0], *out = node->output, *ge = expand_back(node, g), *r = NULL;
    double n = node->reals[0];
    switch ((mt_reduce_kind)node->ints[0]) {
    case MT_REDUCE_SUM: r = ge; break;
    case MT_REDUCE_MEAN: r = mt_mul_scalar(ge, 1.0 / n); break;
    case MT_REDUCE_VAR: {
        int dims[MT_MAX_DIMS], k = 0;
        for (int d = 0; d < x->ndim; d++) if ((node->ints[1] >> d) & 1) dims[k++] = d;
        mt_tensor *m = mt_mean(x, k, dims, true);
        r = mt_mul(ge, mt_mul_scalar(mt_sub(x, m), 2.0 / (n - node->reals[1])));
        break;
    }
    case MT_REDUCE_MAX: case MT_REDUCE_MIN: {
        mt_tensor *hit = mt_to_dtype(mt_eq(x, expand_back(node, out)), x->dtype);
        mt_tensor *count = expand_back(node, sum_like_node(node, hit));
        r = mt_div(mt_mul(ge, hit), count);
        break;
    }
    case MT_REDUCE_LOGSUMEXP:
        r = mt_mul(ge, mt_exp(mt_sub(x, expand_back(node, out))));
        break;
    default: return mt_set_error(MT_ERR_STATE, "reduce vjp: not differentiable");
    }
    grads[0] = r;
    return r ? MT_OK : mt_last_status();
}

static mt_tensor *reduce_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *x = node->inputs[0], *out = node->output, *tx = t[0];
    double n = node->reals[0];
    switch ((mt_reduce_kind)node->ints[0]) {
    case MT_REDUCE_SUM: return sum_like_node(node, tx);
    case MT_REDUCE_MEAN: return mt_mul_scalar(sum_like_node(node, tx), 1.0 / n);
    case MT_REDUCE_VAR: {
        int dims[MT_MAX_DIMS], k = 0;
        for (int d = 0; d < x->ndim; d++) if ((node->ints[1] >> d) & 1) dims[k++] = d;
        mt_tensor *m = mt_mean(x, k, dims, true);
        return mt_mul_scalar(sum_like_node(node, mt_mul(mt_sub(x, m), tx)), 2.0 / (n - node->reals[1]));
    }
    case MT_REDUCE_MAX: case MT_REDUCE_MIN: {
        mt_tensor *hit = mt_to_dtype(mt_eq(x, expand_back(node, out)), x->dtype);
        return mt_div(sum_like_node(node, mt_mul(tx, hit)), sum_like_node(node, hit));
    }
    case MT_REDUCE_LOGSUMEXP:
        return sum_like_node(node, mt_mul(tx, mt_exp(mt_sub(x, expand_back(node, out)))));
    default: return MT_FAIL(MT_ERR_STATE, "reduce jvp: not differentiable");
    }
}

MT_OP_DEF(sum_op, "sum", reduce_vjp, reduce_jvp);
MT_OP_DEF(mean_op, "mean", reduce_vjp, reduce_jvp);
MT_OP_DEF(var_op, "var", reduce_vjp, reduce_jvp);
MT_OP_DEF(max_op, "max", reduce_vjp, reduce_jvp);
MT_OP_DEF(min_op, "min", reduce_vjp, reduce_jvp);
MT_OP_DEF(logsumexp_op, "logsumexp", reduce_vjp, reduce_jvp);

static mt_tensor *reduce(const mt_op_def *op, mt_reduce_kind kind, mt_tensor *x, int n_dims, const int *dims,
                         bool keepdim, double param)
{
    if (!mt_check_input(op->name, x)) return NULL;
    if (kind != MT_REDUCE_SUM && kind != MT_REDUCE_MAX && kind != MT_REDUCE_MIN && !mt_check_float(op->name, x)) return NULL;
    /* like PyTorch, integer and bool sums count in i64 */
    if (kind == MT_REDUCE_SUM && !mt_dtype_is_float(x->dtype) && x->dtype != MT_I64) x = mt_to_dtype(x, MT_I64);
    if (!x) return NULL;
    mt_tensor *out = mt_reduce_raw(op->name, kind, x, n_dims, dims, keepdim, param);
    if (!out) return NULL;
    mt_node *node = mt_node_new(op, out, 1, &x);
    if (node) {
        bool mask[MT_MAX_DIMS];
        reduced_mask(op->name, x, n_dims, dims, mask);
        int64_t bits = 0, n = 1;
        for (int d = 0; d < x->ndim; d++) if (mask[d]) { bits |= (int64_t)1 << d; n *= x->shape[d]; }
        node->ints[0] = kind;
        node->ints[1] = bits;
        node->ints[2] = keepdim;
        node->reals[0] = (double)n;
        node->reals[1] = param;
    }
    return mt_node_commit(node, out);
}

mt_tensor *mt_sum(mt_tensor *x, int n_dims, const int *dims, bool keepdim)
{
    return reduce(&sum_op, MT_REDUCE_SUM, x, n_dims, dims, keepdim, 0);
}
mt_tensor *mt_mean(mt_tensor *x, int n_dims, const int *dims, bool keepdim)
{
    return reduce(&mean_op, MT_REDUCE_MEAN, x, n_dims, dims, keepdim, 0);
}
mt_tensor *mt_var(mt_tensor *x, int n_dims, const int *dims, int correction, bool keepdim)
{
    if (correction < 0) return MT_FAIL(MT_ERR_ARGUMENT, "var: correction must be >= 0, got %d", correction);
    return reduce(&var_op, MT_REDUCE_VAR, x, n_dims, dims, keepdim, correction);
}
mt_tensor *mt_max(mt_tensor *x, int dim, bool keepdim) { return reduce(&max_op, MT_REDUCE_MAX, x, 1, &dim, keepdim, 0); }
mt_tensor *mt_min(mt_tensor *x, int dim, bool keepdim) { return reduce(&min_op, MT_REDUCE_MIN, x, 1, &dim, keepdim, 0); }
mt_tensor *mt_logsumexp(mt_tensor *x, int dim, bool keepdim)
{
    return reduce(&logsumexp_op, MT_REDUCE_LOGSUMEXP, x, 1, &dim, keepdim, 0);
}
mt_tensor *mt_amax(mt_tensor *x, int n_dims, const int *dims, bool keepdim)
{
    return reduce(&max_op, MT_REDUCE_MAX, x, n_dims, dims, keepdim, 0);
}
mt_tensor *mt_amin(mt_tensor *x, int n_dims, const int *dims, bool keepdim)
{
    return reduce(&min_op, MT_REDUCE_MIN, x, n_dims, dims, keepdim, 0);
}
mt_tensor *mt_logsumexp_dims(mt_tensor *x, int n_dims, const int *dims, bool keepdim)
{
    return reduce(&logsumexp_op, MT_REDUCE_LOGSUMEXP, x, n_dims, dims, keepdim, 0);
}
mt_tensor *mt_argmax(mt_tensor *x, int dim, bool keepdim) { return mt_reduce_raw("argmax", MT_REDUCE_ARGMAX, x, 1, &dim, keepdim, 0); }
mt_tensor *mt_argmin(mt_tensor *x, int dim, bool keepdim) { return mt_reduce_raw("argmin", MT_REDUCE_ARGMIN, x, 1, &dim, keepdim, 0); }

/* ---------------------------------------------------------------- max_dim, min_dim */
/* [j == index_j] along dim: a bool tensor of x's shape, from index (MT_I64)
   with dim kept as size 1. Built from arange and eq until a gather kernel
   exists. */
static mt_tensor *one_hot_along(const mt_tensor *x, int dim, mt_tensor *index)
{
    int64_t n = x->ndim > 0 ? x->shape[dim] : 1, shape[MT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = d == dim ? n : 1;
    mt_tensor *positions = mt_to_device(mt_arange(MT_I64, 0, (double)n, 1), mt_device_of(x));
    return mt_eq(mt_reshape(positions, x->ndim, shape), index);
}

/* ints[0] = dim, ints[1] = keepdim; saved[0] = the indices with dim kept as size 1 */
static mt_status extremum_dim_vjp(mt_node *node, mt_tensor *const *g, mt_tensor **grads)
{
    if (!g[0]) return MT_OK;   /* only the values take a gradient */
    mt_tensor *x = node->inputs[0];
    int dim = (int)node->ints[0];
    bool kept = node->ints[1] || x->ndim == 0;
    mt_tensor *gk = kept ? g[0] : mt_unsqueeze(g[0], dim);
    grads[0] = mt_where(one_hot_along(x, dim, node->saved[0]), gk, mt_scalar_like(g[0], 0));
    return grads[0] ? MT_OK : mt_last_status();
}

static mt_status extremum_dim_jvp(mt_node *node, mt_tensor *const *t, mt_tensor **out_tangents)
{
    mt_tensor *x = node->inputs[0];
    int dim = (int)node->ints[0];
    mt_tensor *picked = mt_where(one_hot_along(x, dim, node->saved[0]), t[0], mt_scalar_like(t[0], 0));
    out_tangents[0] = mt_sum(picked, 1, &dim, node->ints[1] != 0);
    return out_tangents[0] ? MT_OK : mt_last_status();
}

MT_OP_DEF_N(max_dim_op, { "max_dim", NULL, NULL }, extremum_dim_vjp, extremum_dim_jvp);
MT_OP_DEF_N(min_dim_op, { "min_dim", NULL, NULL }, extremum_dim_vjp, extremum_dim_jvp);

static mt_status extremum_dim(const mt_op_def_n *op, mt_reduce_kind value_kind, mt_reduce_kind index_kind, mt_tensor *x,
                              int dim, bool keepdim, mt_tensor **values, mt_tensor **indices)
{
    const char *name = op->base.name;
    if (values) *values = NULL;
    if (indices) *indices = NULL;
    if (!values && !indices) return mt_set_error(MT_ERR_ARGUMENT, "%s: values and indices are both NULL", name);
    if (!mt_check_input(name, x)) return mt_last_status();
    int d = mt_wrap_dim(name, dim, x->ndim);
    if (d < 0) return mt_last_status();
    /* both kernels take the first extreme element (the first NaN), so values == x[indices] */
    mt_tensor *outs[2] = { mt_reduce_raw(name, value_kind, x, 1, &d, keepdim, 0),
                           mt_reduce_raw(name, index_kind, x, 1, &d, keepdim, 0) };
    if (!outs[0] || !outs[1]) {
        mt_status st = mt_last_status();
        mt_free(outs[0]);
        mt_free(outs[1]);
        return st;
    }
    mt_node *node = mt_node_new_n(op, 1, &x);
    if (node) {
        node->ints[0] = d;
        node->ints[1] = keepdim;
        mt_tensor *index = keepdim || x->ndim == 0 ? outs[1] : mt_unsqueeze(outs[1], d);
        mt_tensor *saved = index ? mt_node_save(node, 0, mt_alias_owned(index)) : NULL;
        if (index != outs[1]) mt_free(index);
        if (!saved) {
            mt_status st = mt_last_status() != MT_OK ? mt_last_status()
                                                     : mt_set_error(MT_ERR_MEMORY, "%s: out of memory recording the tape", name);
            mt_node_free(node);
            mt_free(outs[0]);
            mt_free(outs[1]);
            return st;
        }
    }
    return mt_node_commit_to(node, 2, outs, (mt_tensor **[]){ values, indices });
}

mt_status mt_max_dim(mt_tensor *x, int dim, bool keepdim, mt_tensor **values, mt_tensor **indices)
{
    return extremum_dim(&max_dim_op, MT_REDUCE_MAX, MT_REDUCE_ARGMAX, x, dim, keepdim, values, indices);
}
mt_status mt_min_dim(mt_tensor *x, int dim, bool keepdim, mt_tensor **values, mt_tensor **indices)
{
    return extremum_dim(&min_dim_op, MT_REDUCE_MIN, MT_REDUCE_ARGMIN, x, dim, keepdim, values, indices);
}

mt_tensor *mt_sum_all(mt_tensor *x) { return mt_sum(x, 0, NULL, false); }
mt_tensor *mt_mean_all(mt_tensor *x) { return mt_mean(x, 0, NULL, false); }

mt_tensor *mt_sum_to(mt_tensor *x, int ndim, const int64_t *shape)
{
    if (!mt_check_input("sum_to", x)) return NULL;
    char s[128];
    if (ndim > x->ndim) return MT_FAIL(MT_ERR_SHAPE, "sum_to: cannot sum %s to %d dims", mt_shape_str(x, s, sizeof s), ndim);
    int dims[MT_MAX_DIMS], n = 0, lead = x->ndim - ndim;
    for (int d = 0; d < x->ndim; d++) {
        int td = d - lead;
        if (td < 0) { dims[n++] = d; continue; }
        if (shape[td] == x->shape[d]) continue;
        if (shape[td] != 1)
            return MT_FAIL(MT_ERR_SHAPE, "sum_to: shape %s does not broadcast from target dim %d of size %lld",
                           mt_shape_str(x, s, sizeof s), td, (long long)shape[td]);
        dims[n++] = d;
    }
    if (n == 0) return x;
    return mt_reshape(mt_sum(x, n, dims, true), ndim, shape);
}
