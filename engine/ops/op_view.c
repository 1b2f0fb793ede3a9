/*
 * op_view.c - differentiable changes of layout. Most are views (no copy):
 * new shape and strides over the same storage. Their derivatives move the
 * gradient back through the inverse change:
 *
 *   reshape:   vjp reshape(g, in.shape)          jvp reshape(t, out.shape)
 *   permute:   vjp permute(g, inverse(dims))      jvp permute(t, dims)
 *   slice:     vjp zeros(in.shape)[slice] = g     jvp slice(t)
 *   expand:    vjp sum_to(g, in.shape)            jvp expand(t)
 *   concat:    vjp narrow(g) per input            jvp concat(t_i)
 */
#include "engine/internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- copies */
static mt_tensor *copy_of(mt_tensor *x, mt_dtype dtype)
{
    mt_tensor *y = mt_new_tensor(mt_device_of(x), dtype, x->ndim, x->shape);
    if (y && mt_copy_(y, x) != MT_OK) { mt_free(y); return NULL; }
    return y;
}

static mt_status identity_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    (void)node;
    grads[0] = g;
    return MT_OK;
}
static mt_tensor *identity_jvp(mt_node *node, mt_tensor *const *t) { (void)node; return t[0]; }
MT_OP_DEF(contiguous_op, "contiguous", identity_vjp, identity_jvp);

mt_tensor *mt_contiguous(mt_tensor *x)
{
    if (!mt_check_input("contiguous", x)) return NULL;
    if (mt_is_contiguous(x)) return x;
    return mt_clone(x);
}

mt_tensor *mt_clone(mt_tensor *x)
{
    if (!mt_check_input("clone", x)) return NULL;
    mt_tensor *y = copy_of(x, x->dtype);
    return mt_node_commit(mt_node_new(&contiguous_op, y, 1, &x), y);
}

static mt_status to_dtype_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = mt_to_dtype(g, node->inputs[0]->dtype);
    return grads[0] ? MT_OK : mt_last_status();
}
static mt_tensor *to_dtype_jvp(mt_node *node, mt_tensor *const *t) { return mt_to_dtype(t[0], node->output->dtype); }
MT_OP_DEF(to_dtype_op, "to_dtype", to_dtype_vjp, to_dtype_jvp);

mt_tensor *mt_to_dtype(mt_tensor *x, mt_dtype dtype)
{
    if (!mt_check_input("to_dtype", x)) return NULL;
    if ((unsigned)dtype >= MT_DTYPE_COUNT) return MT_FAIL(MT_ERR_DTYPE, "to_dtype: unknown dtype %d", (int)dtype);
    if (x->dtype == dtype) return x;
    mt_tensor *y = copy_of(x, dtype);
    /* a gradient crosses only between floating dtypes */
    if (!mt_dtype_is_float(dtype)) return y;
    return mt_node_commit(mt_node_new(&to_dtype_op, y, 1, &x), y);
}

/* ---------------------------------------------------------------- reshape */
static mt_status reshape_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *in = node->inputs[0];
    grads[0] = mt_reshape(g, in->ndim, in->shape);
    return grads[0] ? MT_OK : mt_last_status();
}
static mt_tensor *reshape_jvp(mt_node *node, mt_tensor *const *t)
{
    return mt_reshape(t[0], node->output->ndim, node->output->shape);
}
MT_OP_DEF(reshape_op, "reshape", reshape_vjp, reshape_jvp);

/* Resolves a -1 and checks the element count. */
static bool infer_shape(const char *op, const mt_tensor *x, int ndim, const int64_t *shape, int64_t *out)
{
    if (ndim < 0 || ndim > MT_MAX_DIMS || (ndim > 0 && !shape)) {
        mt_set_error(MT_ERR_SHAPE, "%s: invalid target of %d dims", op, ndim);
        return false;
    }
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1 && infer < 0) { infer = d; out[d] = 1; continue; }
        if (shape[d] < 0) { mt_set_error(MT_ERR_SHAPE, "%s: invalid size %" PRId64 " at dim %d", op, shape[d], d); return false; }
        out[d] = shape[d];
    }
    int64_t known = mt_shape_check(op, ndim, out, mt_dtype_size(x->dtype));   /* the -1 counted as 1 */
    if (known < 0) return false;
    int64_t n = mt_numel(x);
    char s[128];
    if (infer >= 0) {
        if (known == 0 || n % known != 0) {
            mt_set_error(MT_ERR_SHAPE, "%s: cannot infer the -1 dim: %" PRId64 " elements of %s into blocks of %" PRId64,
                         op, n, mt_shape_str(x, s, sizeof s), known);
            return false;
        }
        out[infer] = n / known;
        known *= out[infer];
    }
    if (known != n) {
        mt_set_error(MT_ERR_SHAPE, "%s: shape %s (%" PRId64 " elements) cannot become %" PRId64 " elements",
                     op, mt_shape_str(x, s, sizeof s), n, known);
        return false;
    }
    return true;
}

/* Strides for viewing x as shape without a copy, if its layout allows
   (each new dim must lie within a run of old dims that is contiguous). */
static bool view_strides(const mt_tensor *x, int ndim, const int64_t *shape, int64_t *stride)
{
    if (mt_is_contiguous(x)) { mt_contiguous_strides(ndim, shape, stride); return true; }
    /* walk old and new dims together, grouping them into equal-size chunks */
    int od = 0, nd = 0;
    while (od < x->ndim || nd < ndim) {
        int64_t osize = 1, nsize = 1;
        int o0 = od, n0 = nd;
        /* skip size-1 dims on either side */
        if (od < x->ndim && x->shape[od] == 1) { od++; continue; }
        if (nd < ndim && shape[nd] == 1) { stride[nd] = 1; nd++; continue; }
        if (od < x->ndim) osize = x->shape[od++];
        if (nd < ndim) nsize = shape[nd++];
        while (osize != nsize) {
            if (osize < nsize) { if (od >= x->ndim) return false; osize *= x->shape[od++]; }
            else { if (nd >= ndim) return false; nsize *= shape[nd++]; }
        }
        /* old dims o0..od-1 must be mutually contiguous */
        for (int d = o0; d + 1 < od; d++)
            if (x->shape[d + 1] != 1 && x->stride[d] != x->stride[d + 1] * x->shape[d + 1]) return false;
        int64_t s = od > o0 ? x->stride[od - 1] : 1;
        for (int d = nd - 1; d >= n0; d--) { stride[d] = s; s *= shape[d]; }
    }
    return true;
}

static mt_tensor *reshape_impl(const char *op, mt_tensor *x, int ndim, const int64_t *shape, bool must_view)
{
    if (!mt_check_input(op, x)) return NULL;
    int64_t target[MT_MAX_DIMS], stride[MT_MAX_DIMS];
    if (!infer_shape(op, x, ndim, shape, target)) return NULL;
    mt_tensor *y;
    if (view_strides(x, ndim, target, stride)) {
        y = mt_new_view(x, ndim, target, stride, x->offset);
    } else if (must_view) {
        char s[128];
        return MT_FAIL(MT_ERR_SHAPE, "%s: a tensor of shape %s with these strides cannot be viewed in that shape; use mt_reshape",
                       op, mt_shape_str(x, s, sizeof s));
    } else {
        mt_tensor *c = mt_clone(x);   /* records its own node */
        if (!c) return NULL;
        mt_contiguous_strides(ndim, target, stride);
        y = mt_new_view(c, ndim, target, stride, c->offset);
        if (!y) return NULL;
        return mt_node_commit(mt_node_new(&reshape_op, y, 1, &c), y);
    }
    return mt_node_commit(mt_node_new(&reshape_op, y, 1, &x), y);
}

mt_tensor *mt_reshape(mt_tensor *x, int ndim, const int64_t *shape) { return reshape_impl("reshape", x, ndim, shape, false); }
mt_tensor *mt_view(mt_tensor *x, int ndim, const int64_t *shape) { return reshape_impl("view", x, ndim, shape, true); }

mt_tensor *mt_flatten(mt_tensor *x, int start_dim, int end_dim)
{
    if (!mt_check_input("flatten", x)) return NULL;
    if (x->ndim == 0) return mt_reshape(x, 1, (int64_t[]){ 1 });
    int s = mt_wrap_dim("flatten", start_dim, x->ndim), e = mt_wrap_dim("flatten", end_dim, x->ndim);
    if (s < 0 || e < 0) return NULL;
    if (s > e) return MT_FAIL(MT_ERR_ARGUMENT, "flatten: start_dim %d comes after end_dim %d", start_dim, end_dim);
    int64_t shape[MT_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < s; d++) shape[n++] = x->shape[d];
    int64_t m = 1;
    for (int d = s; d <= e; d++) m *= x->shape[d];
    shape[n++] = m;
    for (int d = e + 1; d < x->ndim; d++) shape[n++] = x->shape[d];
    return mt_reshape(x, n, shape);
}

mt_tensor *mt_squeeze(mt_tensor *x, int dim)
{
    if (!mt_check_input("squeeze", x)) return NULL;
    int d = mt_wrap_dim("squeeze", dim, x->ndim);
    if (d < 0) return NULL;
    if (x->ndim == 0 || x->shape[d] != 1) return mt_reshape(x, x->ndim, x->shape);
    int64_t shape[MT_MAX_DIMS];
    int n = 0;
    for (int k = 0; k < x->ndim; k++) if (k != d) shape[n++] = x->shape[k];
    return mt_reshape(x, n, shape);
}

mt_tensor *mt_unsqueeze(mt_tensor *x, int dim)
{
    if (!mt_check_input("unsqueeze", x)) return NULL;
    if (x->ndim >= MT_MAX_DIMS) return MT_FAIL(MT_ERR_SHAPE, "unsqueeze: tensor already has %d dims", MT_MAX_DIMS);
    int d = dim < 0 ? dim + x->ndim + 1 : dim;
    if (d < 0 || d > x->ndim) return MT_FAIL(MT_ERR_ARGUMENT, "unsqueeze: dim %d out of range for %d dims", dim, x->ndim);
    int64_t shape[MT_MAX_DIMS];
    int n = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (k == d) shape[n++] = 1;
        shape[n++] = x->shape[k];
    }
    if (d == x->ndim) shape[n++] = 1;
    return mt_reshape(x, n, shape);
}

/* ---------------------------------------------------------------- permute */
static mt_status permute_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    int inverse[MT_MAX_DIMS];
    for (int d = 0; d < node->output->ndim; d++) inverse[node->ints[d]] = d;
    grads[0] = mt_permute(g, inverse);
    return grads[0] ? MT_OK : mt_last_status();
}
static mt_tensor *permute_jvp(mt_node *node, mt_tensor *const *t)
{
    int dims[MT_MAX_DIMS];
    for (int d = 0; d < node->output->ndim; d++) dims[d] = (int)node->ints[d];
    return mt_permute(t[0], dims);
}
MT_OP_DEF(permute_op, "permute", permute_vjp, permute_jvp);

mt_tensor *mt_permute(mt_tensor *x, const int *dims)
{
    if (!mt_check_input("permute", x)) return NULL;
    if (!dims && x->ndim > 0) return MT_FAIL(MT_ERR_ARGUMENT, "permute: dims is NULL");
    bool seen[MT_MAX_DIMS] = { false };
    int64_t shape[MT_MAX_DIMS], stride[MT_MAX_DIMS];
    int wrapped[MT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        int s = mt_wrap_dim("permute", dims[d], x->ndim);
        if (s < 0) return NULL;
        if (seen[s]) return MT_FAIL(MT_ERR_ARGUMENT, "permute: dim %d appears twice", dims[d]);
        seen[s] = true;
        wrapped[d] = s;
        shape[d] = x->shape[s];
        stride[d] = x->stride[s];
    }
    mt_tensor *y = mt_new_view(x, x->ndim, shape, stride, x->offset);
    mt_node *node = mt_node_new(&permute_op, y, 1, &x);
    if (node) for (int d = 0; d < x->ndim; d++) node->ints[d] = wrapped[d];
    return mt_node_commit(node, y);
}

mt_tensor *mt_transpose(mt_tensor *x, int dim0, int dim1)
{
    if (!mt_check_input("transpose", x)) return NULL;
    if (x->ndim < 2 && dim0 == dim1) return mt_reshape(x, x->ndim, x->shape);
    int a = mt_wrap_dim("transpose", dim0, x->ndim), b = mt_wrap_dim("transpose", dim1, x->ndim);
    if (a < 0 || b < 0) return NULL;
    int dims[MT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) dims[d] = d;
    dims[a] = b;
    dims[b] = a;
    return mt_permute(x, dims);
}

/* ---------------------------------------------------------------- slice */
/* ints: dim, start, step */
static mt_status slice_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *in = node->inputs[0];
    mt_tensor *z = mt_zeros_like(in);
    if (!z) return mt_last_status();
    int dim = (int)node->ints[0];
    int64_t start = node->ints[1], step = node->ints[2];
    int64_t stride[MT_MAX_DIMS];
    memcpy(stride, z->stride, sizeof stride);
    int64_t offset = z->offset;
    if (node->ints[3]) {                 /* select: the dim is gone from the output */
        offset += start * z->stride[dim];
        for (int d = dim; d + 1 < z->ndim; d++) stride[d] = z->stride[d + 1];
    } else {
        offset += start * z->stride[dim];
        stride[dim] = z->stride[dim] * step;
    }
    mt_tensor *window = mt_new_view(z, g->ndim, g->shape, stride, offset);
    if (!window) return mt_last_status();
    mt_status st = mt_copy_(window, g);
    grads[0] = z;
    return st;
}
static mt_tensor *slice_jvp(mt_node *node, mt_tensor *const *t)
{
    int dim = (int)node->ints[0];
    if (node->ints[3]) return mt_select(t[0], dim, node->ints[1]);
    return mt_slice(t[0], dim, node->ints[1], node->ints[1] + node->output->shape[dim] * node->ints[2], node->ints[2]);
}
MT_OP_DEF(slice_op, "slice", slice_vjp, slice_jvp);

mt_tensor *mt_slice(mt_tensor *x, int dim, int64_t start, int64_t end, int64_t step)
{
    if (!mt_check_input("slice", x)) return NULL;
    if (x->ndim == 0) return MT_FAIL(MT_ERR_SHAPE, "slice: cannot slice a 0-d tensor");
    int d = mt_wrap_dim("slice", dim, x->ndim);
    if (d < 0) return NULL;
    if (step <= 0) return MT_FAIL(MT_ERR_ARGUMENT, "slice: step must be positive, got %" PRId64, step);
    int64_t n = x->shape[d];
    if (start < 0) start += n;
    if (end < 0) end += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (end > n) end = n;
    if (end < start) end = start;
    int64_t shape[MT_MAX_DIMS], stride[MT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    memcpy(stride, x->stride, sizeof stride);
    shape[d] = (end - start + step - 1) / step;
    stride[d] = x->stride[d] * step;
    mt_tensor *y = mt_new_view(x, x->ndim, shape, stride, x->offset + start * x->stride[d]);
    mt_node *node = mt_node_new(&slice_op, y, 1, &x);
    if (node) { node->ints[0] = d; node->ints[1] = start; node->ints[2] = step; node->ints[3] = 0; }
    return mt_node_commit(node, y);
}

mt_tensor *mt_narrow(mt_tensor *x, int dim, int64_t start, int64_t length)
{
    if (!mt_check_input("narrow", x)) return NULL;
    int d = mt_wrap_dim("narrow", dim, x->ndim);
    if (d < 0) return NULL;
    if (start < 0) start += x->shape[d];
    if (start < 0 || length < 0 || start + length > x->shape[d])
        return MT_FAIL(MT_ERR_ARGUMENT, "narrow: [%" PRId64 ", %" PRId64 ") is outside dim %d of size %" PRId64,
                       start, start + length, dim, x->shape[d]);
    return mt_slice(x, d, start, start + length, 1);
}

mt_tensor *mt_select(mt_tensor *x, int dim, int64_t index)
{
    if (!mt_check_input("select", x)) return NULL;
    if (x->ndim == 0) return MT_FAIL(MT_ERR_SHAPE, "select: cannot index a 0-d tensor");
    int d = mt_wrap_dim("select", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t n = x->shape[d];
    if (index < -n || index >= n)
        return MT_FAIL(MT_ERR_ARGUMENT, "select: index %" PRId64 " out of range for dim %d of size %" PRId64, index, dim, n);
    if (index < 0) index += n;
    int64_t shape[MT_MAX_DIMS], stride[MT_MAX_DIMS];
    int m = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (k == d) continue;
        shape[m] = x->shape[k];
        stride[m++] = x->stride[k];
    }
    mt_tensor *y = mt_new_view(x, m, shape, stride, x->offset + index * x->stride[d]);
    mt_node *node = mt_node_new(&slice_op, y, 1, &x);
    if (node) { node->ints[0] = d; node->ints[1] = index; node->ints[2] = 1; node->ints[3] = 1; }
    return mt_node_commit(node, y);
}

/* ---------------------------------------------------------------- expand */
static mt_status expand_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *in = node->inputs[0];
    grads[0] = mt_sum_to(g, in->ndim, in->shape);
    return grads[0] ? MT_OK : mt_last_status();
}
static mt_tensor *expand_jvp(mt_node *node, mt_tensor *const *t)
{
    return mt_expand(t[0], node->output->ndim, node->output->shape);
}
MT_OP_DEF(expand_op, "expand", expand_vjp, expand_jvp);

mt_tensor *mt_expand(mt_tensor *x, int ndim, const int64_t *shape)
{
    if (!mt_check_input("expand", x)) return NULL;
    char s[128];
    if (ndim < x->ndim || ndim > MT_MAX_DIMS || (ndim > 0 && !shape))
        return MT_FAIL(MT_ERR_SHAPE, "expand: cannot expand shape %s to %d dims", mt_shape_str(x, s, sizeof s), ndim);
    int64_t oshape[MT_MAX_DIMS], ostride[MT_MAX_DIMS];
    int lead = ndim - x->ndim;
    for (int d = 0; d < ndim; d++) {
        int xd = d - lead;
        int64_t want = shape[d];
        if (xd < 0) {
            if (want < 0) return MT_FAIL(MT_ERR_SHAPE, "expand: -1 is not allowed for a new leading dim %d", d);
            oshape[d] = want;
            ostride[d] = 0;
        } else if (want == -1 || want == x->shape[xd]) {
            oshape[d] = x->shape[xd];
            ostride[d] = x->stride[xd];
        } else if (x->shape[xd] == 1) {
            oshape[d] = want;
            ostride[d] = 0;
        } else {
            return MT_FAIL(MT_ERR_SHAPE, "expand: shape %s cannot expand to size %" PRId64 " at dim %d (only size-1 dims expand)",
                           mt_shape_str(x, s, sizeof s), want, d);
        }
    }
    if (mt_shape_check("expand", ndim, oshape, mt_dtype_size(x->dtype)) < 0) return NULL;
    mt_tensor *y = mt_new_view(x, ndim, oshape, ostride, x->offset);
    return mt_node_commit(mt_node_new(&expand_op, y, 1, &x), y);
}

/* ---------------------------------------------------------------- concat */
/* ints[0] = dim; inputs are the pieces */
static mt_status concat_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    int dim = (int)node->ints[0];
    int64_t at = 0;
    for (int i = 0; i < node->n_inputs; i++) {
        int64_t len = node->inputs[i]->shape[dim];
        if (mt_node_needs_grad(node, i)) {
            grads[i] = mt_narrow(g, dim, at, len);
            if (!grads[i]) return mt_last_status();
        }
        at += len;
    }
    return MT_OK;
}
static mt_tensor *concat_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor **parts = malloc((size_t)node->n_inputs * sizeof *parts);
    if (!parts) return MT_FAIL(MT_ERR_MEMORY, "concat: out of memory");
    for (int i = 0; i < node->n_inputs; i++) parts[i] = t[i] ? t[i] : mt_zeros_like(node->inputs[i]);
    mt_tensor *r = mt_concat(node->n_inputs, parts, (int)node->ints[0]);
    free(parts);
    return r;
}
MT_OP_DEF(concat_op, "concat", concat_vjp, concat_jvp);

mt_tensor *mt_concat(int n, mt_tensor *const *ts, int dim)
{
    if (n <= 0 || !ts) return MT_FAIL(MT_ERR_ARGUMENT, "concat: no tensors given");
    for (int i = 0; i < n; i++) {
        if (!mt_check_input("concat", ts[i])) return NULL;
        if (ts[i]->ndim == 0)   /* as in PyTorch: there is no dim to join along */
            return MT_FAIL(MT_ERR_SHAPE, "concat: tensor %d is 0-d and cannot be concatenated (mt_stack joins 0-d tensors)", i);
    }
    const mt_tensor *first = ts[0];
    int d = mt_wrap_dim("concat", dim, first->ndim);
    if (d < 0) return NULL;
    int64_t shape[MT_MAX_DIMS];
    memcpy(shape, first->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const mt_tensor *t = ts[i];
        char a[128], b[128];
        if (!mt_check_same_dtype("concat", first, t) || !mt_check_same_device("concat", first, t)) return NULL;
        bool ok = t->ndim == first->ndim;
        for (int k = 0; ok && k < t->ndim; k++) if (k != d && t->shape[k] != first->shape[k]) ok = false;
        if (!ok)
            return MT_FAIL(MT_ERR_SHAPE, "concat: tensor %d has shape %s, which does not match %s outside dim %d",
                           i, mt_shape_str(t, a, sizeof a), mt_shape_str(first, b, sizeof b), d);
        shape[d] += t->shape[d];
    }
    mt_tensor *y = mt_new_tensor(mt_device_of(first), first->dtype, first->ndim, shape);
    if (!y) return NULL;
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        int64_t wshape[MT_MAX_DIMS];
        memcpy(wshape, y->shape, sizeof wshape);
        wshape[d] = ts[i]->shape[d];
        mt_tensor *window = mt_new_view(y, y->ndim, wshape, y->stride, y->offset + at * y->stride[d]);
        if (!window || mt_copy_(window, ts[i]) != MT_OK) { mt_free(window); mt_free(y); return NULL; }
        mt_free(window);
        at += ts[i]->shape[d];
    }
    mt_node *node = mt_node_new(&concat_op, y, n, ts);
    if (node) node->ints[0] = d;
    return mt_node_commit(node, y);
}

static mt_tensor *stack_body(int n, mt_tensor *const *ts, int dim)
{
    if (n <= 0 || !ts) return MT_FAIL(MT_ERR_ARGUMENT, "stack: no tensors given");
    mt_tensor **parts = malloc((size_t)n * sizeof *parts);
    if (!parts) return MT_FAIL(MT_ERR_MEMORY, "stack: out of memory");
    mt_tensor *r = NULL;
    int i = 0;
    for (; i < n; i++) if (!(parts[i] = mt_unsqueeze(ts[i], dim))) break;
    if (i == n) r = mt_concat(n, parts, dim);
    free(parts);
    return r;
}

mt_tensor *mt_stack(int n, mt_tensor *const *ts, int dim)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, stack_body(n, ts, dim));
}

int mt_split(mt_tensor *x, int64_t split_size, int dim, mt_tensor **out, int max_out)
{
    if (!mt_check_input("split", x)) return -1;
    int d = mt_wrap_dim("split", dim, x->ndim);
    if (d < 0) return -1;
    if (split_size <= 0) { mt_set_error(MT_ERR_ARGUMENT, "split: split_size must be positive"); return -1; }
    int64_t n = x->shape[d];
    int count = (int)((n + split_size - 1) / split_size);
    if (n == 0) count = 1;
    if (count > max_out) {
        mt_set_error(MT_ERR_ARGUMENT, "split: %d pieces do not fit the %d output slots", count, max_out);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        int64_t start = (int64_t)i * split_size, len = n - start < split_size ? n - start : split_size;
        out[i] = mt_narrow(x, d, start, len);
        if (!out[i]) return -1;
    }
    return count;
}

int mt_chunk(mt_tensor *x, int chunks, int dim, mt_tensor **out)
{
    if (!mt_check_input("chunk", x)) return -1;
    int d = mt_wrap_dim("chunk", dim, x->ndim);
    if (d < 0) return -1;
    if (chunks <= 0) { mt_set_error(MT_ERR_ARGUMENT, "chunk: chunks must be positive"); return -1; }
    int64_t size = (x->shape[d] + chunks - 1) / chunks;
    return mt_split(x, size ? size : 1, d, out, chunks);
}
