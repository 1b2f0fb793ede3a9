/*
 * op_index.c - indexing along one dim, as PyTorch defines it
 * (docs/ops-indexing.md): gather, index_select, scatter_add, embedding, and
 * the composites masked_fill and one_hot.
 *
 * Writing p for a position of the index and p[d := k] for p with coordinate
 * d replaced by k:
 *
 *   op                       forward                            vjp                                jvp
 *   gather(x, d, i)          y[p] = x[p[d := i[p]]]            dx = scatter_add(0, d, i, g)       gather(t_x, d, i)
 *   index_select(x, d, i)    gather with the 1-d i broadcast over the other dims: the same rules, so
 *                            dx is index_add(0, d, i, g) (repeated indices accumulate)
 *   scatter_add(x, d, i, s)  y = x;  y[p[d := i[p]]] += s[p]   dx = g,                            t_x + scatter_add(0, d, i, t_s)
 *                                                              ds = gather(g, d, i) (0 where s
 *                                                              extends past i's shape)
 *   embedding(w, i, pad)     y[q, :] = w[i[q], :]              dw = index_add of g over rows,     gather(t_w) with the rows
 *                                                              row pad left 0                     where i[q] == pad zeroed
 *
 * The arithmetic is two backend kernels, gather and scatter_add (host/backend.h):
 * each op below only describes its operands to them as an mt_loop of strides,
 * so a broadcast index (index_select, embedding) is a stride of 0 and no
 * operand needs to be contiguous. Index values are checked here, before any
 * kernel runs (one min and one max reduction read back to the host), so an
 * out-of-range index is an error that names the op, the value and the size.
 *
 * Scatter-add (and so every gradient above) is deterministic on the CPU and,
 * with mt_set_deterministic(true), on CUDA; by default CUDA adds with atomics.
 */
#include "engine/internal.h"
#include "mytorch/cuda.h"   /* mt_get_deterministic */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- checks */
static bool check_index(const char *op, const char *what, const mt_tensor *index, const mt_tensor *x)
{
    if (!mt_check_input(op, index)) return false;
    if (index->dtype != MT_I64) {
        char s[128];
        mt_set_error(MT_ERR_DTYPE, "%s: %s must be i64, got %s of shape %s", op, what,
                     mt_dtype_name(index->dtype), mt_shape_str(index, s, sizeof s));
        return false;
    }
    return mt_check_same_device(op, x, index);
}

/* The smallest and largest index value (index not empty), read to the host. */
static bool index_min_max(const char *op, mt_tensor *index, int64_t *lo, int64_t *hi)
{
    mt_tensor *mn = mt_reduce_raw(op, MT_REDUCE_MIN, index, 0, NULL, false, 0);
    mt_tensor *mx = mn ? mt_reduce_raw(op, MT_REDUCE_MAX, index, 0, NULL, false, 0) : NULL;
    bool ok = mn && mx && mt_to_data(mn, MT_I64, lo) == MT_OK && mt_to_data(mx, MT_I64, hi) == MT_OK;
    mt_free(mn);
    mt_free(mx);
    return ok;
}

/* Every value of index in [0, size); otherwise an error "<op>: index <v> is
   out of range for <range>" (range says what size is, e.g. "dim 1 of size 5
   (x of shape [3, 5])"). */
static bool check_index_values(const char *op, mt_tensor *index, int64_t size, const char *range)
{
    if (mt_numel(index) == 0) return true;
    int64_t lo, hi;
    if (!index_min_max(op, index, &lo, &hi)) return false;
    int64_t bad = lo < 0 ? lo : hi;
    if (lo >= 0 && hi < size) return true;
    mt_set_error(MT_ERR_ARGUMENT, "%s: index %" PRId64 " is out of range for %s; indices must be in [0, %" PRId64 ")",
                 op, bad, range, size);
    return false;
}

/* ---------------------------------------------------------------- loops and raw kernels */
/* The gather loop over out's positions: operand 0 = out, 1 = index (with out's
   shape), 2 = x with no stride along dim (the index supplies that coordinate). */
static void gather_loop(mt_loop *l, const mt_tensor *out, const mt_tensor *index, const mt_tensor *x, int dim)
{
    memset(l, 0, sizeof *l);
    l->ndim = 1;
    l->shape[0] = 1;                      /* 0-d: one position, strides 0 */
    if (out->ndim == 0) return;
    l->ndim = out->ndim;
    for (int d = 0; d < out->ndim; d++) {
        l->shape[d] = out->shape[d];
        l->stride[0][d] = out->stride[d];
        l->stride[1][d] = index->stride[d];
        l->stride[2][d] = d == dim ? 0 : x->stride[d];
    }
}

/* The scatter loop over index's positions with dim moved last (the kernel's
   convention): operand 0 = out with no stride along dim, 1 = index, 2 = src. */
static void scatter_loop(mt_loop *l, const mt_tensor *out, const mt_tensor *index, const mt_tensor *src, int dim)
{
    memset(l, 0, sizeof *l);
    l->ndim = 1;
    l->shape[0] = 1;
    if (index->ndim == 0) return;
    int k = 0;
    for (int d = 0; d < index->ndim; d++) {
        if (d == dim) continue;
        l->shape[k] = index->shape[d];
        l->stride[0][k] = out->stride[d];
        l->stride[1][k] = index->stride[d];
        l->stride[2][k] = src->stride[d];
        k++;
    }
    l->shape[k] = index->shape[dim];
    l->stride[0][k] = 0;
    l->stride[1][k] = index->stride[dim];
    l->stride[2][k] = src->stride[dim];
    l->ndim = k + 1;
}

static int64_t dim_size(const mt_tensor *t, int dim) { return t->ndim ? t->shape[dim] : 1; }
static int64_t dim_stride(const mt_tensor *t, int dim) { return t->ndim ? t->stride[dim] : 0; }

/* out[p] = x[p[dim := index[p]]] for every position p of out (index has out's shape). */
static mt_status gather_into(const char *op, mt_tensor *out, mt_tensor *x, int dim, mt_tensor *index)
{
    if (mt_numel(out) == 0) return MT_OK;
    mt_loop loop;
    gather_loop(&loop, out, index, x, dim);
    return mt_run_kernel(op, x, gather, x->dtype, &loop, mt_ptr(out), mt_ptr(index), mt_ptr(x), dim_stride(x, dim),
                         dim_size(x, dim));
}

/* A new tensor of index's shape gathered from x. */
static mt_tensor *gather_new(mt_tensor *x, int dim, mt_tensor *index)
{
    mt_tensor *out = mt_new_tensor(mt_device_of(x), x->dtype, index->ndim, index->shape);
    if (out && gather_into("gather", out, x, dim, index) != MT_OK) { mt_free(out); return NULL; }
    return out;
}

/* out[p[dim := index[p]]] += src[p] for every position p of index; out is a
   tensor of its own (no two positions of it share memory). */
static mt_status scatter_add_into(const char *op, mt_tensor *out, int dim, mt_tensor *index, mt_tensor *src)
{
    if (mt_numel(index) == 0) return MT_OK;
    mt_loop loop;
    scatter_loop(&loop, out, index, src, dim);
    return mt_run_kernel(op, out, scatter_add, out->dtype, &loop, mt_ptr(out), mt_ptr(index), mt_ptr(src),
                         dim_stride(out, dim), dim_size(out, dim), mt_get_deterministic());
}

/* A fresh contiguous copy of t (no autograd). */
static mt_tensor *copy_raw(mt_tensor *t)
{
    mt_tensor *c = mt_new_tensor(mt_device_of(t), t->dtype, t->ndim, t->shape);
    if (c && mt_copy_(c, t) != MT_OK) { mt_free(c); return NULL; }
    return c;
}

/* small placed at the start of every dim of zeros shaped like `like`
   (small itself when the shapes agree). */
static mt_tensor *zero_padded(mt_tensor *small, const mt_tensor *like)
{
    if (!small || mt_same_shape(small, like)) return small;
    mt_tensor *big = mt_zeros_like(like);
    if (!big) return NULL;
    mt_tensor *corner = mt_new_view(big, small->ndim, small->shape, big->stride, big->offset);
    if (!corner || mt_copy_(corner, small) != MT_OK) return NULL;
    return big;
}

/* Records node for y with index saved (an alias: the node owns it); y on success. */
static mt_tensor *commit_with_index(mt_node *node, mt_tensor *y, mt_tensor *index)
{
    if (node) {
        mt_tensor *saved = mt_alias_owned(index);
        if (!saved) {
            mt_node_free(node);
            mt_free(y);
            return MT_FAIL(MT_ERR_MEMORY, "%s: out of memory recording the tape", node->op->name);
        }
        mt_node_save(node, 0, saved);
    }
    return mt_node_commit(node, y);
}

/* ---------------------------------------------------------------- gather, index_select */
/* inputs {x}; ints[0] = dim; saved[0] = index with the output's shape (for
   index_select, the 1-d index broadcast over the other dims). */
static mt_status gather_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{   /* dx = scatter_add(0, dim, index, g): each x element collects the g of every position that read it */
    mt_tensor *dx = mt_zeros_like(node->inputs[0]);
    if (!dx) return mt_last_status();
    mt_status st = scatter_add_into(node->op->name, dx, (int)node->ints[0], node->saved[0], g);
    grads[0] = dx;
    return st;
}
static mt_tensor *gather_jvp(mt_node *node, mt_tensor *const *t)
{   /* linear in x: the tangent is gathered the same way */
    return t[0] ? gather_new(t[0], (int)node->ints[0], node->saved[0]) : mt_zeros_like(node->output);
}
MT_OP_DEF(gather_op, "gather", gather_vjp, gather_jvp);
MT_OP_DEF(index_select_op, "index_select", gather_vjp, gather_jvp);

static mt_tensor *gather_recorded(const mt_op_def *op, mt_tensor *x, int dim, mt_tensor *index)
{
    mt_tensor *y = gather_new(x, dim, index);
    if (!y) return NULL;
    mt_node *node = mt_node_new(op, y, 1, &x);
    if (node) node->ints[0] = dim;
    return commit_with_index(node, y, index);
}

mt_tensor *mt_gather(mt_tensor *x, int dim, mt_tensor *index)
{
    const char *op = "gather";
    if (!mt_check_input(op, x) || !check_index(op, "index", index, x)) return NULL;
    int d = mt_wrap_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    char sx[128], si[128];
    mt_shape_str(x, sx, sizeof sx);
    mt_shape_str(index, si, sizeof si);
    if (index->ndim != x->ndim)
        return MT_FAIL(MT_ERR_SHAPE, "%s: index must have as many dims as x: x %s has %d, index %s has %d", op, sx,
                       x->ndim, si, index->ndim);
    for (int k = 0; k < x->ndim; k++)
        if (k != d && index->shape[k] > x->shape[k])
            return MT_FAIL(MT_ERR_SHAPE, "%s: index %s is larger than x %s in dim %d (%" PRId64 " > %" PRId64
                           "); only the gathered dim %d may be larger", op, si, sx, k, index->shape[k], x->shape[k], d);
    char range[320];
    snprintf(range, sizeof range, "dim %d of size %" PRId64 " (x of shape %s)", d, dim_size(x, d), sx);
    if (!check_index_values(op, index, dim_size(x, d), range)) return NULL;
    return gather_recorded(&gather_op, x, d, index);
}

mt_tensor *mt_index_select(mt_tensor *x, int dim, mt_tensor *index)
{
    const char *op = "index_select";
    if (!mt_check_input(op, x) || !check_index(op, "index", index, x)) return NULL;
    int d = mt_wrap_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    char sx[128], si[128];
    mt_shape_str(x, sx, sizeof sx);
    mt_shape_str(index, si, sizeof si);
    if (index->ndim > 1)
        return MT_FAIL(MT_ERR_SHAPE, "%s: index must be 1-d (or 0-d), got shape %s", op, si);
    int64_t k = mt_numel(index);
    if (x->ndim == 0 && k != 1)
        return MT_FAIL(MT_ERR_SHAPE, "%s: selecting from a 0-d x takes exactly one index, got %" PRId64, op, k);
    char range[320];
    snprintf(range, sizeof range, "dim %d of size %" PRId64 " (x of shape %s)", d, dim_size(x, d), sx);
    if (!check_index_values(op, index, dim_size(x, d), range)) return NULL;
    /* the index as a view of the output's shape: its values along dim, the same for every other coordinate */
    int64_t shape[MT_MAX_DIMS], stride[MT_MAX_DIMS];
    for (int j = 0; j < x->ndim; j++) {
        shape[j] = j == d ? k : x->shape[j];
        stride[j] = j == d && index->ndim == 1 ? index->stride[0] : 0;
    }
    mt_tensor *view = mt_new_view(index, x->ndim, shape, stride, index->offset);
    if (!view) return NULL;
    mt_tensor *y = gather_recorded(&index_select_op, x, d, view);
    mt_free(view);
    return y;
}

/* ---------------------------------------------------------------- scatter_add */
/* inputs {x, src}; ints[0] = dim; saved[0] = index. */
static mt_status scatter_add_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    int dim = (int)node->ints[0];
    if (mt_node_needs_grad(node, 0)) grads[0] = g;   /* y = x + (something independent of x) */
    if (mt_node_needs_grad(node, 1)) {                /* each src element went to one place: read g there */
        grads[1] = zero_padded(gather_new(g, dim, node->saved[0]), node->inputs[1]);
        if (!grads[1]) return mt_last_status();
    }
    return MT_OK;
}
static mt_tensor *scatter_add_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *r = t[0] ? copy_raw(t[0]) : mt_zeros_like(node->output);
    if (r && t[1] && scatter_add_into("scatter_add", r, (int)node->ints[0], node->saved[0], t[1]) != MT_OK) return NULL;
    return r;
}
MT_OP_DEF(scatter_add_op, "scatter_add", scatter_add_vjp, scatter_add_jvp);

mt_tensor *mt_scatter_add(mt_tensor *x, int dim, mt_tensor *index, mt_tensor *src)
{
    const char *op = "scatter_add";
    if (!mt_check_input(op, x) || !mt_check_input(op, src) || !check_index(op, "index", index, x)) return NULL;
    if (!mt_check_same_dtype(op, x, src) || !mt_check_same_device(op, x, src)) return NULL;
    if (x->dtype != MT_F32 && x->dtype != MT_F64 && x->dtype != MT_I32 && x->dtype != MT_I64)
        return MT_FAIL(MT_ERR_DTYPE, "%s: x and src must be f32, f64, i32 or i64, got %s", op, mt_dtype_name(x->dtype));
    int d = mt_wrap_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    char sx[128], si[128], ss[128];
    mt_shape_str(x, sx, sizeof sx);
    mt_shape_str(index, si, sizeof si);
    mt_shape_str(src, ss, sizeof ss);
    if (index->ndim != x->ndim || src->ndim != x->ndim)
        return MT_FAIL(MT_ERR_SHAPE, "%s: x %s, index %s and src %s must have the same number of dims", op, sx, si, ss);
    for (int k = 0; k < x->ndim; k++) {
        if (index->shape[k] > src->shape[k])
            return MT_FAIL(MT_ERR_SHAPE, "%s: index %s is larger than src %s in dim %d (%" PRId64 " > %" PRId64 ")", op,
                           si, ss, k, index->shape[k], src->shape[k]);
        if (k != d && index->shape[k] > x->shape[k])
            return MT_FAIL(MT_ERR_SHAPE, "%s: index %s is larger than x %s in dim %d (%" PRId64 " > %" PRId64
                           "); only the scattered dim %d may be larger", op, si, sx, k, index->shape[k], x->shape[k], d);
    }
    char range[320];
    snprintf(range, sizeof range, "dim %d of size %" PRId64 " (x of shape %s)", d, dim_size(x, d), sx);
    if (!check_index_values(op, index, dim_size(x, d), range)) return NULL;
    mt_tensor *y = copy_raw(x);
    if (!y) return NULL;
    if (scatter_add_into(op, y, d, index, src) != MT_OK) { mt_free(y); return NULL; }
    mt_tensor *ins[2] = { x, src };
    mt_node *node = mt_node_new(&scatter_add_op, y, 2, ins);
    if (node) node->ints[0] = d;
    return commit_with_index(node, y, index);
}

/* ---------------------------------------------------------------- embedding */
/* weight [V, D], indices of any shape (saved[0]) -> indices.shape + [D];
   ints[0] = padding_idx (< 0: none). Seen as index_select over rows:
   y viewed as [N, D] = gather(weight, 0, i broadcast to [N, D]). */

/* indices flattened to [N] and broadcast to [N, D] (a view). */
static mt_tensor *rows_index(mt_tensor *indices, int64_t d)
{
    int64_t n = mt_numel(indices);
    mt_tensor *flat = mt_reshape(indices, 1, &n);
    if (!flat) return NULL;
    mt_tensor *view = mt_new_view(flat, 2, (int64_t[]){ n, d }, (int64_t[]){ flat->stride[0], 0 }, flat->offset);
    if (flat != indices) mt_free(flat);
    return view;
}

/* out (a new tensor of indices.shape + [D]) = the rows of w picked by indices. */
static mt_tensor *embedding_rows(mt_tensor *w, mt_tensor *indices)
{
    int64_t shape[MT_MAX_DIMS], n = mt_numel(indices), d = w->shape[1];
    for (int k = 0; k < indices->ndim; k++) shape[k] = indices->shape[k];
    shape[indices->ndim] = d;
    mt_tensor *out = mt_new_tensor(mt_device_of(w), w->dtype, indices->ndim + 1, shape);
    mt_tensor *index = out ? rows_index(indices, d) : NULL;
    mt_tensor *out2 = index ? mt_new_view(out, 2, (int64_t[]){ n, d }, (int64_t[]){ d, 1 }, out->offset) : NULL;
    if (!out2) { mt_free(index); mt_free(out); return NULL; }
    mt_status st = gather_into("embedding", out2, w, 0, index);
    mt_free(out2);
    mt_free(index);
    if (st != MT_OK) { mt_free(out); return NULL; }
    return out;
}

static mt_status embedding_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{   /* dw[r] = sum of g[q] over the q with indices[q] == r; the padding row stays 0 */
    mt_tensor *w = node->inputs[0], *indices = node->saved[0];
    int64_t n = mt_numel(indices), d = w->shape[1], padding_idx = node->ints[0];
    mt_tensor *dw = mt_zeros_like(w), *index = rows_index(indices, d);
    mt_tensor *g2 = mt_reshape(g, 2, (int64_t[]){ n, d });
    if (!dw || !index || !g2) return mt_last_status();
    mt_status st = scatter_add_into("embedding", dw, 0, index, g2);
    if (st == MT_OK && padding_idx >= 0)
        st = mt_run_kernel("embedding", dw, fill, dw->dtype, d,
                           (char *)mt_ptr(dw) + (size_t)(padding_idx * d) * mt_dtype_size(dw->dtype), 0);
    grads[0] = dw;
    return st;
}
static mt_tensor *embedding_jvp(mt_node *node, mt_tensor *const *t)
{   /* the transpose of the vjp: rows read from the padding row carry no tangent */
    mt_tensor *indices = node->saved[0];
    if (!t[0]) return mt_zeros_like(node->output);
    mt_tensor *y = embedding_rows(t[0], indices);
    if (!y || node->ints[0] < 0) return y;
    mt_tensor *pad = mt_unsqueeze(mt_eq(indices, mt_scalar_like(indices, (double)node->ints[0])), -1);
    return mt_masked_fill(y, pad, 0);
}
MT_OP_DEF(embedding_op, "embedding", embedding_vjp, embedding_jvp);

mt_tensor *mt_embedding(mt_tensor *weight, mt_tensor *indices, int64_t padding_idx)
{
    const char *op = "embedding";
    if (!mt_check_input(op, weight) || !check_index(op, "indices", indices, weight)) return NULL;
    char sw[128], si[128];
    mt_shape_str(weight, sw, sizeof sw);
    mt_shape_str(indices, si, sizeof si);
    if (weight->ndim != 2)
        return MT_FAIL(MT_ERR_SHAPE, "%s: weight must be 2-d [num_embeddings, embedding_dim], got %s", op, sw);
    if (indices->ndim + 1 > MT_MAX_DIMS)
        return MT_FAIL(MT_ERR_SHAPE, "%s: indices %s have %d dims; the output would have more than %d", op, si,
                       indices->ndim, MT_MAX_DIMS);
    int64_t v = weight->shape[0];
    if (padding_idx >= v)
        return MT_FAIL(MT_ERR_ARGUMENT, "%s: padding_idx %" PRId64 " is out of range for %" PRId64
                       " embeddings (weight %s); a negative padding_idx means none", op, padding_idx, v, sw);
    char range[320];
    snprintf(range, sizeof range, "a weight of %" PRId64 " embeddings (shape %s)", v, sw);
    if (!check_index_values(op, indices, v, range)) return NULL;
    mt_tensor *y = embedding_rows(weight, indices);
    if (!y) return NULL;
    mt_node *node = mt_node_new(&embedding_op, y, 1, &weight);
    if (node) node->ints[0] = padding_idx < 0 ? -1 : padding_idx;
    return commit_with_index(node, y, indices);
}

/* ---------------------------------------------------------------- masked_fill, one_hot (composites) */
/* where(mask, value, x): exact, and the gradient is g where the mask is false, 0 where true. */
mt_tensor *mt_masked_fill(mt_tensor *x, mt_tensor *mask, double value)
{
    const char *op = "masked_fill";
    if (!mt_check_input(op, x) || !mt_check_input(op, mask)) return NULL;
    if (mask->dtype != MT_BOOL) {
        char s[128];
        return MT_FAIL(MT_ERR_DTYPE, "%s: mask must be bool, got %s of shape %s", op, mt_dtype_name(mask->dtype),
                       mt_shape_str(mask, s, sizeof s));
    }
    if (!mt_check_same_device(op, x, mask)) return NULL;
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    mt_tensor *ins[2] = { x, mask };
    if (!mt_broadcast_shapes(op, 2, ins, &ndim, shape)) return NULL;
    return mt_where(mask, mt_scalar_like(x, value), x);
}

mt_tensor *mt_one_hot(mt_tensor *indices, int64_t num_classes)
{
    const char *op = "one_hot";
    if (!mt_check_input(op, indices)) return NULL;
    char si[128];
    mt_shape_str(indices, si, sizeof si);
    if (indices->dtype != MT_I64)
        return MT_FAIL(MT_ERR_DTYPE, "%s: indices must be i64 class values, got %s of shape %s", op,
                       mt_dtype_name(indices->dtype), si);
    if (indices->ndim + 1 > MT_MAX_DIMS)
        return MT_FAIL(MT_ERR_SHAPE, "%s: indices %s have %d dims; the output would have more than %d", op, si,
                       indices->ndim, MT_MAX_DIMS);
    int64_t c = num_classes;
    if (mt_numel(indices) == 0) {
        if (c < 0)
            return MT_FAIL(MT_ERR_ARGUMENT, "%s: cannot infer num_classes from the empty indices %s; pass it", op, si);
    } else {
        int64_t lo, hi;
        if (!index_min_max(op, indices, &lo, &hi)) return NULL;
        if (lo < 0)
            return MT_FAIL(MT_ERR_ARGUMENT, "%s: class values must be non-negative, got %" PRId64, op, lo);
        if (c < 0) c = hi + 1;
        if (hi >= c)
            return MT_FAIL(MT_ERR_ARGUMENT, "%s: class value %" PRId64 " is out of range for num_classes %" PRId64, op,
                           hi, c);
    }
    /* [indices[q] == k] for k = 0 .. c-1, as i64 */
    mt_tensor *classes = mt_new_tensor(mt_device_of(indices), MT_I64, 1, &c);
    if (!classes) return NULL;
    if (c > 0 && mt_run_kernel("one_hot", classes, arange, MT_I64, c, 0, 1, mt_ptr(classes)) != MT_OK) {
        mt_free(classes);
        return NULL;
    }
    mt_tensor *column = mt_unsqueeze(indices, -1);
    mt_tensor *hit = mt_eq(column, classes);
    mt_tensor *out = mt_to_dtype(hit, MT_I64);
    mt_free(hit);
    mt_free(column);
    mt_free(classes);
    return out;
}
