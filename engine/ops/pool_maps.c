/*
 * pool_maps.c - the axis maps of pooling and resampling (pool_maps.h says
 * what they are): PyTorch's windows and weights for each kind of op, their
 * transposes, their upload to a device, and the separable linear op
 * (average pooling, adaptive average pooling, interpolation) built on them.
 *
 *   y = A_h X A_w^T per plane            pool_linear with maps (h, w)
 *   vjp  dX = A_h^T dY A_w               pool_linear with maps (h^T, w^T)
 *   jvp  dY = A_h dX A_w^T               pool_linear with maps (h, w)
 *
 * Adaptive average pooling to 1 (x 1), the global average pool of a CNN's
 * head, takes a faster road: the reduce kernel's mean over each plane, and
 * g / (H W) broadcast back for the gradient; no maps at all.
 */
#include "engine/ops/pool_maps.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- building an axis */
void pool_axis_free(pool_axis *a)
{
    free(a->start);
    free(a->index);
    free(a->weight);
    memset(a, 0, sizeof *a);
}

static bool axis_begin(const char *op, pool_axis *a, int64_t n_src, int64_t n_dst)
{
    memset(a, 0, sizeof *a);
    a->n_src = n_src;
    a->n_dst = n_dst;
    a->start = calloc((size_t)n_dst + 1, sizeof *a->start);
    if (!a->start) {
        mt_set_error(MT_ERR_MEMORY, "%s: out of memory building a window map of %" PRId64 " positions", op, n_dst);
        return false;
    }
    return true;
}

/* Appends (src, weight) to row `row` (the row being built); an entry for
   the same src as the row's last one adds its weight there instead, so a
   row's sources are distinct. Entries of weight 0 are left out: they add
   nothing (and an infinite source times 0 would be NaN). */
static bool axis_push(const char *op, pool_axis *a, int64_t row, int64_t src, double weight, bool keep_zero)
{
    if (weight == 0 && !keep_zero) return true;
    if (a->nnz > a->start[row] && a->index[a->nnz - 1] == src) {
        a->weight[a->nnz - 1] += weight;
        return true;
    }
    if (a->nnz == a->cap) {
        int64_t cap = a->cap ? 2 * a->cap : 2 * a->n_dst + 8;
        int64_t *index = realloc(a->index, (size_t)cap * sizeof *index);
        if (index) a->index = index;
        double *w = index ? realloc(a->weight, (size_t)cap * sizeof *w) : NULL;
        if (w) a->weight = w;
        if (!index || !w) {
            mt_set_error(MT_ERR_MEMORY, "%s: out of memory building a window map of %" PRId64 " entries", op, cap);
            return false;
        }
        a->cap = cap;
    }
    a->index[a->nnz] = src;
    a->weight[a->nnz] = weight;
    a->nnz++;
    return true;
}

static void axis_end_row(pool_axis *a, int64_t row) { a->start[row + 1] = a->nnz; }

static bool axis_failed(pool_axis *a)
{
    pool_axis_free(a);
    return false;
}

bool pool_axis_identity(const char *op, pool_axis *a)
{
    if (!axis_begin(op, a, 1, 1) || !axis_push(op, a, 0, 0, 1.0, true)) return axis_failed(a);
    axis_end_row(a, 0);
    return true;
}

bool pool_axis_windows(const char *op, pool_axis *a, int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad,
                       int64_t d)
{
    if (!axis_begin(op, a, in, out)) return false;
    for (int64_t i = 0; i < out; i++) {
        for (int64_t m = 0; m < k; m++) {
            int64_t pos = i * s - pad + m * d;
            if (pos >= 0 && pos < in && !axis_push(op, a, i, pos, 1.0, true)) return axis_failed(a);
        }
        axis_end_row(a, i);
    }
    return true;
}

/* PyTorch's avg_pool: hend = min(hstart + k, in + pad) sets the divisor with
   the padding; the window then shrinks to [0, in). */
bool pool_axis_average(const char *op, pool_axis *a, int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad,
                       bool count_include_pad, bool has_divisor, double scale)
{
    if (!axis_begin(op, a, in, out)) return false;
    for (int64_t i = 0; i < out; i++) {
        int64_t lo = i * s - pad, hi = lo + k < in + pad ? lo + k : in + pad, with_pad = hi - lo;
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        double count = (double)(count_include_pad ? with_pad : hi - lo);
        double w = has_divisor ? scale : scale / count;
        for (int64_t pos = lo; pos < hi; pos++)
            if (!axis_push(op, a, i, pos, w, true)) return axis_failed(a);
        axis_end_row(a, i);
    }
    return true;
}

bool pool_axis_adaptive(const char *op, pool_axis *a, int64_t in, int64_t out, bool average)
{
    if (!axis_begin(op, a, in, out)) return false;
    for (int64_t i = 0; i < out; i++) {
        int64_t lo = (i * in) / out, hi = ((i + 1) * in + out - 1) / out;   /* floor, ceil */
        for (int64_t pos = lo; pos < hi; pos++)
            if (!axis_push(op, a, i, pos, average ? 1.0 / (double)(hi - lo) : 1.0, true)) return axis_failed(a);
        axis_end_row(a, i);
    }
    return true;
}

/* PyTorch's nearest_idx: in float whatever the dtype; sizes equal or
   doubled are exact shortcuts. */
bool pool_axis_nearest(const char *op, pool_axis *a, int64_t in, int64_t out, double scale_factor)
{
    if (!axis_begin(op, a, in, out)) return false;
    float scale = scale_factor > 0 ? (float)(1.0 / scale_factor) : (float)in / (float)out;
    for (int64_t i = 0; i < out; i++) {
        int64_t src;
        if (out == in) src = i;
        else if (out == 2 * in) src = i >> 1;
        else {
            src = (int64_t)floorf((float)i * scale);
            if (src > in - 1) src = in - 1;
        }
        if (!axis_push(op, a, i, src, 1.0, true)) return axis_failed(a);
        axis_end_row(a, i);
    }
    return true;
}

/* PyTorch's compute_source_index_and_lambda (UpSampleKernel.cpp) in opmath T:
   align_corners: src = i (in - 1) / (out - 1); else src = max((i + 0.5) scale - 0.5, 0)
   with scale = 1 / scale_factor or in / out; i0 = min(floor(src), in - 1) (floorf, as
   PyTorch, also for double), lambda = clamp(src - i0, 0, 1), i1 = min(i0 + 1, in - 1);
   the same size is a copy. */
#define LINEAR_SOURCE(T, FLOOR)                                                                   \
    do {                                                                                          \
        T scale = align_corners ? (out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0)                   \
                                : (scale_factor > 0 ? (T)(1.0 / scale_factor) : (T)in / (T)out);  \
        T src = align_corners ? scale * (T)i : scale * ((T)i + (T)0.5) - (T)0.5;                  \
        if (!align_corners && src < 0) src = 0;                                                   \
        i0 = (int64_t)FLOOR(src);                                                                 \
        if (i0 > in - 1) i0 = in - 1;                                                             \
        T l = src - (T)i0;                                                                        \
        lambda = l < 0 ? 0 : (l > 1 ? 1 : (double)l);                                             \
    } while (0)

bool pool_axis_linear(const char *op, pool_axis *a, int64_t in, int64_t out, bool align_corners,
                      double scale_factor, mt_dtype opmath)
{
    if (!axis_begin(op, a, in, out)) return false;
    for (int64_t i = 0; i < out; i++) {
        int64_t i0 = i;
        double lambda = 0;
        if (out != in) {
            if (opmath == MT_F32) LINEAR_SOURCE(float, floorf);
            else LINEAR_SOURCE(double, floorf);   /* floorf: PyTorch's guard_index_and_lambda */
        }
        int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
        double l0 = opmath == MT_F32 ? (double)(1.0f - (float)lambda) : 1.0 - lambda;
        if (!axis_push(op, a, i, i0, l0, false) || !axis_push(op, a, i, i1, lambda, false)) return axis_failed(a);
        axis_end_row(a, i);
    }
    return true;
}

/* The transpose of a: for each source position, the destinations that read
   it, in increasing order (a counting sort by source). */
static bool axis_transpose(const char *op, const pool_axis *a, pool_axis *t)
{
    if (!axis_begin(op, t, a->n_dst, a->n_src)) return false;
    t->index = malloc((size_t)(a->nnz ? a->nnz : 1) * sizeof *t->index);
    t->weight = malloc((size_t)(a->nnz ? a->nnz : 1) * sizeof *t->weight);
    int64_t *fill = calloc((size_t)a->n_src + 1, sizeof *fill);
    if (!t->index || !t->weight || !fill) {
        free(fill);
        mt_set_error(MT_ERR_MEMORY, "%s: out of memory transposing a window map", op);
        return axis_failed(t);
    }
    for (int64_t e = 0; e < a->nnz; e++) t->start[a->index[e] + 1]++;
    for (int64_t s = 0; s < a->n_src; s++) t->start[s + 1] += t->start[s];
    for (int64_t s = 0; s < a->n_src; s++) fill[s] = t->start[s];
    for (int64_t r = 0; r < a->n_dst; r++)
        for (int64_t e = a->start[r]; e < a->start[r + 1]; e++) {
            int64_t at = fill[a->index[e]]++;
            t->index[at] = r;
            t->weight[at] = a->weight[e];
        }
    t->nnz = t->cap = a->nnz;
    free(fill);
    return true;
}

/* ---------------------------------------------------------------- on the device */
/* A 1-d tensor of n elements of dtype on like's device, from a host buffer. */
static mt_tensor *upload(const mt_tensor *like, mt_dtype dtype, int64_t n, const void *data)
{
    mt_tensor *t = mt_new_tensor(mt_device_of(like), dtype, 1, &n);
    if (t && n > 0) mt_backend_of(t)->from_host(mt_ptr(t), data, (size_t)n * mt_dtype_size(dtype));
    return t;
}

bool pool_upload(const char *op, const pool_axis *axes, bool transposes, bool weighted, const mt_tensor *like,
                 pool_layout *layout, mt_tensor **tables, mt_tensor **weights)
{
    *tables = *weights = NULL;
    pool_axis t[2] = { 0 };
    const pool_axis *maps[4] = { &axes[0], &axes[1], &t[0], &t[1] };
    int n_maps = transposes ? 4 : 2;
    if (transposes && (!axis_transpose(op, &axes[0], &t[0]) || !axis_transpose(op, &axes[1], &t[1]))) {
        pool_axis_free(&t[0]);
        return false;
    }
    int64_t n_ints = 0, n_weights = 0;
    layout->n_maps = n_maps;
    for (int k = 0; k < n_maps; k++) {
        layout->n_src[k] = maps[k]->n_src;
        layout->n_dst[k] = maps[k]->n_dst;
        layout->start_off[k] = n_ints;
        n_ints += maps[k]->n_dst + 1;
        layout->index_off[k] = n_ints;
        n_ints += maps[k]->nnz;
        layout->weight_off[k] = n_weights;
        n_weights += maps[k]->nnz;
    }
    size_t wsize = mt_dtype_size(like->dtype);
    int64_t *ints = malloc((size_t)n_ints * sizeof *ints);
    unsigned char *ws = weighted ? malloc((size_t)(n_weights ? n_weights : 1) * wsize) : NULL;
    bool ok = ints && (!weighted || ws);
    if (!ok) mt_set_error(MT_ERR_MEMORY, "%s: out of memory packing its window maps", op);
    for (int k = 0; ok && k < n_maps; k++) {
        const pool_axis *m = maps[k];
        memcpy(ints + layout->start_off[k], m->start, (size_t)(m->n_dst + 1) * sizeof *ints);
        if (m->nnz) memcpy(ints + layout->index_off[k], m->index, (size_t)m->nnz * sizeof *ints);
        for (int64_t e = 0; weighted && e < m->nnz; e++) {
            int64_t at = layout->weight_off[k] + e;
            if (like->dtype == MT_F32) ((float *)ws)[at] = (float)m->weight[e];
            else ((double *)ws)[at] = m->weight[e];
        }
    }
    if (ok) {
        *tables = upload(like, MT_I64, n_ints, ints);
        *weights = weighted ? upload(like, like->dtype, n_weights, ws) : NULL;
        ok = *tables && (!weighted || *weights);
    }
    free(ints);
    free(ws);
    pool_axis_free(&t[0]);
    pool_axis_free(&t[1]);
    if (!ok) {
        mt_free(*tables);
        mt_free(*weights);
        *tables = *weights = NULL;
    }
    return ok;
}

mt_pool_map pool_map_of(const pool_layout *l, const mt_tensor *tables, const mt_tensor *weights, int k)
{
    const int64_t *base = mt_ptr(tables);
    const void *w = weights ? (const char *)mt_ptr(weights) + (size_t)l->weight_off[k] * mt_dtype_size(weights->dtype)
                            : NULL;
    return (mt_pool_map){ l->n_src[k], l->n_dst[k], base + l->start_off[k], base + l->index_off[k], w };
}

void pool_out_shape(const pool_layout *l, const mt_tensor *x, int k_h, int k_w, int64_t *shape)
{
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = l->n_dst[k_w];
    if (l->spatial == 2) shape[x->ndim - 2] = l->n_dst[k_h];
}

/* ---------------------------------------------------------------- the linear ops */
/* x [..., map k_h's sources, map k_w's sources] -> [..., their destinations] */
static mt_tensor *run_linear(const char *op, mt_tensor *x, const pool_layout *l, const mt_tensor *tables,
                             const mt_tensor *weights, int k_h, int k_w)
{
    mt_tensor *xc = mt_contiguous(x);
    if (!xc) return NULL;
    int64_t shape[MT_MAX_DIMS];
    pool_out_shape(l, x, k_h, k_w, shape);
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, shape);
    mt_pool_map h = pool_map_of(l, tables, weights, k_h), w = pool_map_of(l, tables, weights, k_w);
    int64_t planes = mt_numel(x) / (h.n_src * w.n_src);
    if (y && mt_run_kernel(op, x, pool_linear, x->dtype, planes, &h, &w, mt_ptr(xc), mt_ptr(y)) != MT_OK) {
        mt_free(y);
        y = NULL;
    }
    mt_free_temp(xc, x);
    return y;
}

/* The mean of each plane: the reduce kernel over [planes, H W, 1]. */
static mt_tensor *run_global(const char *op, mt_tensor *x, const pool_layout *l)
{
    mt_tensor *xc = mt_contiguous(x);
    if (!xc) return NULL;
    int64_t shape[MT_MAX_DIMS], n = l->n_src[POOL_H] * l->n_src[POOL_W];
    pool_out_shape(l, x, POOL_H, POOL_W, shape);
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, shape);
    if (y && mt_run_kernel(op, x, reduce, MT_REDUCE_MEAN, x->dtype, mt_numel(y), n, 1, mt_ptr(xc), mt_ptr(y), 0) != MT_OK) {
        mt_free(y);
        y = NULL;
    }
    mt_free_temp(xc, x);
    return y;
}

mt_status pool_linear_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    const pool_layout *l = node->extra;
    mt_tensor *x = node->inputs[0];
    if (l->global) {   /* dx = g / (H W), broadcast over the plane */
        double n = (double)(l->n_src[POOL_H] * l->n_src[POOL_W]);
        grads[0] = mt_mul_scalar(mt_expand(g, x->ndim, x->shape), 1.0 / n);
    } else if (l->n_maps < 4) {
        return mt_set_error(MT_ERR_STATE, "%s: the node has no transposed maps for a backward", node->op->name);
    } else {
        grads[0] = run_linear(node->op->name, g, l, node->saved[0], node->saved[1], POOL_HT, POOL_WT);
    }
    return grads[0] ? MT_OK : mt_last_status();
}

mt_tensor *pool_linear_jvp(mt_node *node, mt_tensor *const *t)
{
    const pool_layout *l = node->extra;
    if (!t[0]) return NULL;
    if (l->global) return run_global(node->op->name, t[0], l);
    return run_linear(node->op->name, t[0], l, node->saved[0], node->saved[1], POOL_H, POOL_W);
}

mt_tensor *pool_linear_apply(const mt_op_def *op, mt_tensor *x, int spatial, pool_axis *axes, bool global)
{
    const char *name = op->name;
    pool_layout l = { .spatial = spatial, .n_maps = 2, .global = global };
    mt_tensor *tables = NULL, *weights = NULL, *y = NULL;
    for (int k = 0; k < 2; k++) {
        l.n_src[k] = axes[k].n_src;
        l.n_dst[k] = axes[k].n_dst;
    }
    bool backward = mt_is_grad_enabled() && x->requires_grad;   /* the transposes are for the vjp */
    if (global) y = run_global(name, x, &l);
    else if (pool_upload(name, axes, backward, true, x, &l, &tables, &weights))
        y = run_linear(name, x, &l, tables, weights, POOL_H, POOL_W);
    pool_axis_free(&axes[0]);
    pool_axis_free(&axes[1]);
    mt_node *node = y ? mt_node_new(op, y, 1, &x) : NULL;
    pool_layout *kept = node ? malloc(sizeof *kept) : NULL;
    if (node && !kept) {
        mt_node_free(node);
        mt_free(y);
        y = NULL;
        mt_set_error(MT_ERR_MEMORY, "%s: out of memory recording the tape", name);
    }
    if (kept) {
        *kept = l;
        node->extra = kept;
        mt_node_save(node, 0, tables);
        mt_node_save(node, 1, weights);
    } else {
        mt_free(tables);
        mt_free(weights);
    }
    return y ? mt_node_commit(node, y) : NULL;
}
