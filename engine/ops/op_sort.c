/*
 * op_sort.c - ordering and selection: sort, topk, and argmax/argmin over all
 * dims.
 *
 *   sort     values = x sorted along dim, indices = where each value came from:
 *            values[..., j, ...] = x[..., indices[..., j, ...], ...]
 *   topk     the first k of sort (descending when largest)
 *   vjp      dx = zeros(x.shape) with dx[..., indices[..., j, ...], ...] = g[..., j, ...]
 *            (the gradient scattered back to the source positions; indices
 *            within a row are distinct, so nothing accumulates)
 *   jvp      t[..., indices[..., j, ...], ...]   (the tangent gathered like the values)
 *
 * The order is PyTorch's stable sort: equal elements keep their order of
 * position, NaN is greater than every number (last ascending, first
 * descending). topk returns its k values in that order too, sorted or not
 * (PyTorch's sorted=False leaves the order unspecified).
 *
 * Two outputs, one node (mt_node_new_n): values take the gradient, indices
 * (MT_I64) none; the node keeps an alias of the indices for its vjp and jvp.
 *
 * The kernel sorts contiguous rows: dim is moved last (a transposed copy)
 * and the results moved back. The derivatives go through take_along /
 * put_along over [outer, n, inner].
 */
#include "engine/internal.h"

#include <inttypes.h>

/* [outer, n, inner] of shape around dim d (n = 1 for a 0-d tensor) */
static void split_at(const mt_tensor *x, int d, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *inner = 1;
    *n = x->ndim ? x->shape[d] : 1;
    for (int k = 0; k < d; k++) *outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) *inner *= x->shape[k];
}

/* ---------------------------------------------------------------- moving values by index */
/* out[o, j, i] = x[o, index[o, j, i], i]: x of the input's shape, index of the output's. */
static mt_tensor *take_along(const char *op, mt_tensor *x, const mt_tensor *index, int d)
{
    mt_tensor *xc = mt_contiguous(x);
    if (!xc) return NULL;
    mt_tensor *out = mt_new_tensor(mt_device_of(x), x->dtype, index->ndim, index->shape);
    int64_t outer, n, inner, k = index->ndim ? index->shape[d] : 1;
    split_at(x, d, &outer, &n, &inner);
    if (out && mt_run_kernel(op, x, take_along, x->dtype, outer, n, k, inner, mt_ptr(xc), mt_ptr(index),
                             mt_ptr(out)) != MT_OK) {
        mt_free(out);
        out = NULL;
    }
    mt_free_temp(xc, x);
    return out;
}

/* zeros like `like` (the input: same dtype as src) with out[o, index[o, j, i], i] = src[o, j, i]. */
static mt_tensor *put_along(const char *op, mt_tensor *src, const mt_tensor *index, const mt_tensor *like, int d)
{
    mt_tensor *sc = mt_contiguous(src);
    if (!sc) return NULL;
    mt_tensor *out = mt_zeros_like(like);
    int64_t outer, n, inner, k = index->ndim ? index->shape[d] : 1;
    split_at(like, d, &outer, &n, &inner);
    if (out && mt_run_kernel(op, src, put_along, src->dtype, outer, n, k, inner, mt_ptr(sc), mt_ptr(index),
                             mt_ptr(out)) != MT_OK) {
        mt_free(out);
        out = NULL;
    }
    mt_free_temp(sc, src);
    return out;
}

/* ---------------------------------------------------------------- sort and topk */
/* outputs (values, indices); ints[0] = dim; saved[0] = the indices (the outputs' shape, contiguous) */
static mt_status select_vjp(mt_node *node, mt_tensor *const *g, mt_tensor **grads)
{
    if (!g[0]) return MT_OK;   /* only the values take a gradient */
    grads[0] = put_along(node->op->name, g[0], node->saved[0], node->inputs[0], (int)node->ints[0]);
    return grads[0] ? MT_OK : mt_last_status();
}

static mt_status select_jvp(mt_node *node, mt_tensor *const *t, mt_tensor **out_tangents)
{
    out_tangents[0] = take_along(node->op->name, t[0], node->saved[0], (int)node->ints[0]);
    return out_tangents[0] ? MT_OK : mt_last_status();
}

MT_OP_DEF_N(sort_op, { "sort", NULL, NULL }, select_vjp, select_jvp);
MT_OP_DEF_N(topk_op, { "topk", NULL, NULL }, select_vjp, select_jvp);

/* values and indices of x sorted along d (the first k when k >= 0), contiguous, without autograd */
static bool sort_raw(const char *op, mt_tensor *x, int d, bool descending, int64_t k, mt_tensor **values,
                     mt_tensor **indices)
{
    *values = *indices = NULL;
    bool grad_prev = mt_set_grad_enabled(false), fw_prev = mt_set_forward_ad_enabled(false);
    mt_scope scope = mt_scope_begin();
    int last = x->ndim - 1;
    mt_tensor *xt = x->ndim > 1 && d != last ? mt_transpose(x, d, last) : x;
    mt_tensor *xc = mt_contiguous(xt);
    mt_tensor *v = xc ? mt_new_tensor(mt_device_of(x), x->dtype, xc->ndim, xc->shape) : NULL;
    mt_tensor *ix = v ? mt_new_tensor(mt_device_of(x), MT_I64, xc->ndim, xc->shape) : NULL;
    int64_t n = x->ndim ? x->shape[d] : 1;
    bool ok = ix != NULL;
    if (ok && n > 0 && mt_numel(x) > 0)
        ok = mt_run_kernel(op, x, sort_rows, x->dtype, mt_numel(x) / n, n, descending, mt_ptr(xc), mt_ptr(v),
                           mt_ptr(ix)) == MT_OK;
    if (ok && k >= 0 && x->ndim > 0) {
        v = mt_narrow(v, last, 0, k);
        ix = mt_narrow(ix, last, 0, k);
    }
    if (ok && xt != x) {
        v = mt_transpose(v, d, last);
        ix = mt_transpose(ix, d, last);
    }
    if (ok) {
        v = mt_contiguous(v);
        ix = mt_contiguous(ix);
        ok = v && ix;
    }
    if (ok) {   /* out of the scope, into the caller's */
        *values = mt_alias_owned(v);
        *indices = mt_alias_owned(ix);
    }
    mt_scope_end(scope);
    mt_set_grad_enabled(grad_prev);
    mt_set_forward_ad_enabled(fw_prev);
    if (ok && (!*values || !*indices)) {
        mt_free(*values);
        mt_free(*indices);
        *values = *indices = NULL;
        mt_set_error(MT_ERR_MEMORY, "%s: out of memory", op);
        return false;
    }
    if (ok) {
        mt_adopt(*values);
        mt_adopt(*indices);
    }
    return ok;
}

static mt_status select_impl(const mt_op_def_n *op, mt_tensor *x, int64_t k, int dim, bool descending,
                             mt_tensor **values, mt_tensor **indices)
{
    const char *name = op->base.name;
    if (values) *values = NULL;
    if (indices) *indices = NULL;
    if (!values && !indices) return mt_set_error(MT_ERR_ARGUMENT, "%s: values and indices are both NULL", name);
    if (!mt_check_input(name, x)) return mt_last_status();
    int d = mt_wrap_dim(name, dim, x->ndim);
    if (d < 0) return mt_last_status();
    int64_t n = x->ndim ? x->shape[d] : 1;
    if (k == 0 && x->ndim == 0) return mt_set_error(MT_ERR_ARGUMENT, "%s: k = 0 on a 0-d tensor", name);
    if (k > n) {
        char s[128];
        return mt_set_error(MT_ERR_ARGUMENT, "%s: k = %" PRId64 " is larger than dim %d of shape %s (size %" PRId64 ")",
                            name, k, dim, mt_shape_str(x, s, sizeof s), n);
    }
    mt_tensor *outs[2];
    if (!sort_raw(name, x, d, descending, k, &outs[0], &outs[1])) return mt_last_status();
    mt_node *node = mt_dtype_is_float(x->dtype) ? mt_node_new_n(op, 1, &x) : NULL;
    if (node) {
        node->ints[0] = d;
        if (!mt_node_save(node, 0, mt_alias_owned(outs[1]))) {
            mt_node_free(node);
            mt_free(outs[0]);
            mt_free(outs[1]);
            return mt_set_error(MT_ERR_MEMORY, "%s: out of memory recording the tape", name);
        }
    }
    return mt_node_commit_to(node, 2, outs, (mt_tensor **[]){ values, indices });
}

mt_status mt_sort(mt_tensor *x, int dim, bool descending, mt_tensor **values, mt_tensor **indices)
{
    return select_impl(&sort_op, x, -1, dim, descending, values, indices);
}

mt_status mt_topk(mt_tensor *x, int64_t k, int dim, bool largest, bool sorted, mt_tensor **values, mt_tensor **indices)
{
    (void)sorted;   /* always sorted: a valid answer for sorted=False too */
    if (k < 0) {
        if (values) *values = NULL;
        if (indices) *indices = NULL;
        return mt_set_error(MT_ERR_ARGUMENT, "topk: k must be >= 0, got %" PRId64, k);
    }
    return select_impl(&topk_op, x, k, dim, largest, values, indices);
}

/* ---------------------------------------------------------------- argmax / argmin over all dims */
/* The index into the row-major flattening of x (PyTorch's dim=None): the
   reduce kernel over all dims of a contiguous copy; ties and NaN as with a
   dim (the first extreme element, or the first NaN). MT_I64, 0-d. */
mt_tensor *mt_argmax_all(mt_tensor *x) { return mt_reduce_raw("argmax", MT_REDUCE_ARGMAX, x, 0, NULL, false, 0); }
mt_tensor *mt_argmin_all(mt_tensor *x) { return mt_reduce_raw("argmin", MT_REDUCE_ARGMIN, x, 0, NULL, false, 0); }
