/*
 * op_pool.c - pooling over the last one or two dims of (N, C, W) / (N, C, H, W)
 * inputs (or unbatched (C, W) / (C, H, W)): max, average and adaptive
 * pooling, PyTorch's semantics (docs/ops-pool.md). Each op builds the
 * window map of each axis (engine/ops/pool_maps.c) and runs a pooling
 * kernel over the planes.
 *
 * Output size per axis (max and average; dilation d = 1 for average):
 *   out = floor((in + 2 pad - d (k - 1) - 1 + (ceil_mode ? s - 1 : 0)) / s) + 1,
 *   minus one in ceil_mode when the last window would start in the right padding:
 *   (out - 1) s >= in + pad.
 *
 * max pooling (and adaptive max): values and indices, one node with two outputs
 *   y = x[argmax]        vjp  dx[argmax] += g (pool_max_backward: the CPU, and CUDA in
 *                        deterministic mode, sum in output order; CUDA otherwise uses atomics)
 *                        jvp  t[argmax] (a gather of the tangent at the indices)
 * average and adaptive average pooling: the linear ops of pool_maps.c
 *   y = A_h X A_w^T      vjp  A_h^T G A_w    jvp  A_h T A_w^T
 */
#include "engine/internal.h"
#include "engine/ops/pool_maps.h"
#include "mytorch/runtime.h"   /* mt_get_deterministic */

#include <inttypes.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- argument checks */
/* x is a float tensor of spatial + 1 or spatial + 2 dims whose dims other
   than the batch are non-empty. */
static bool check_pool_input(const char *op, const mt_tensor *x, int spatial)
{
    if (!mt_check_float(op, x)) return false;
    char s[128];
    const char *layouts = spatial == 1 ? "(N, C, W) or (C, W)" : "(N, C, H, W) or (C, H, W)";
    if (x->ndim != spatial + 1 && x->ndim != spatial + 2) {
        mt_set_error(MT_ERR_SHAPE, "%s: input %s must be %s", op, mt_shape_str(x, s, sizeof s), layouts);
        return false;
    }
    for (int d = x->ndim == spatial + 2 ? 1 : 0; d < x->ndim; d++)
        if (x->shape[d] <= 0) {
            mt_set_error(MT_ERR_SHAPE, "%s: input %s must be %s with non-empty dims other than the batch", op,
                         mt_shape_str(x, s, sizeof s), layouts);
            return false;
        }
    return true;
}

static bool check_from_defaults(const char *op, uint32_t tag, const char *defaults)
{
    if (tag == MT_OPTS_FROM_DEFAULTS) return true;
    mt_set_error(MT_ERR_ARGUMENT, "%s: options must start from %s (every field is used as given, zero included; "
                 "docs/options.md)", op, defaults);
    return false;
}

/* The output size along one axis of a window pooling (PyTorch's
   pooling_output_shape), after checking the axis's settings. */
static bool window_out_size(const char *op, const mt_tensor *x, const char *axis, int64_t in, int64_t k, int64_t s,
                            int64_t pad, int64_t d, bool ceil_mode, int64_t *out)
{
    char sh[128];
    mt_shape_str(x, sh, sizeof sh);
    if (k <= 0 || s <= 0 || d <= 0) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: kernel_size, stride and dilation must be positive, got %" PRId64 ", %" PRId64
                     " and %" PRId64 " along %s (input %s)", op, k, s, d, axis, sh);
        return false;
    }
    int64_t span = d * (k - 1) + 1;   /* the effective kernel size */
    if (pad < 0 || pad > span / 2) {   /* PyTorch's rule */
        mt_set_error(MT_ERR_ARGUMENT, "%s: padding must be between 0 and half the effective kernel size (dilation x "
                     "(kernel_size - 1) + 1 = %" PRId64 ", half: %" PRId64 "), got padding %" PRId64 " for kernel_size %"
                     PRId64 " and dilation %" PRId64 " along %s (input %s)", op, span, span / 2, pad, k, d, axis, sh);
        return false;
    }
    if (span > in + 2 * pad) {
        mt_set_error(MT_ERR_SHAPE, "%s: the kernel spans %" PRId64 " positions along %s (kernel_size %" PRId64
                     ", dilation %" PRId64 "), more than the padded input: %" PRId64 " + 2 x %" PRId64 " = %" PRId64
                     " (input %s)", op, span, axis, k, d, in, pad, in + 2 * pad, sh);
        return false;
    }
    int64_t n = (in + 2 * pad - span + (ceil_mode ? s - 1 : 0)) / s + 1;
    if (ceil_mode && (n - 1) * s >= in + pad) n--;
    if (n <= 0) {   /* not reached after the check above; kept as the net */
        mt_set_error(MT_ERR_SHAPE, "%s: the output size along %s would be %" PRId64 " (input %s)", op, axis, n, sh);
        return false;
    }
    *out = n;
    return true;
}

static bool check_output_size(const char *op, const mt_tensor *x, const char *axis, int64_t out)
{
    if (out > 0) return true;
    char s[128];
    mt_set_error(MT_ERR_ARGUMENT, "%s: the output size must be positive, got %" PRId64 " along %s (input %s)", op, out,
                 axis, mt_shape_str(x, s, sizeof s));
    return false;
}

/* The last spatial dims of x: (H, W), H = 1 for a 1-d op. */
static void plane_size(const mt_tensor *x, int spatial, int64_t *h, int64_t *w)
{
    *w = x->shape[x->ndim - 1];
    *h = spatial == 2 ? x->shape[x->ndim - 2] : 1;
}

/* ---------------------------------------------------------------- max pooling */
/* outputs (values, indices); saved[0] = the maps (with the transposes when
   taping), saved[1] = the indices; extra = the layout */
static mt_status max_pool_vjp(mt_node *node, mt_tensor *const *g, mt_tensor **grads)
{
    if (!g[0]) return MT_OK;   /* only the values take a gradient */
    const pool_layout *l = node->extra;
    const char *op = node->op->name;
    mt_tensor *x = node->inputs[0];
    if (l->n_maps < 4) return mt_set_error(MT_ERR_STATE, "%s: the node has no transposed maps for a backward", op);
    mt_tensor *gc = mt_contiguous(g[0]);
    mt_tensor *dx = gc ? mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape) : NULL;
    if (!dx) return mt_last_status();
    mt_pool_map ht = pool_map_of(l, node->saved[0], NULL, POOL_HT), wt = pool_map_of(l, node->saved[0], NULL, POOL_WT);
    int64_t planes = mt_numel(x) / (ht.n_dst * wt.n_dst);
    mt_status st = mt_run_kernel(op, x, pool_max_backward, x->dtype, planes, &ht, &wt, mt_ptr(gc),
                                 mt_ptr(node->saved[1]), mt_ptr(dx), mt_get_deterministic());
    grads[0] = dx;   /* on failure it goes with the vjp's scope */
    return st;
}

/* The tangent at the argmax: t viewed as [planes, H W] gathered at the
   indices viewed as [planes, out_h out_w]. */
static mt_status max_pool_jvp(mt_node *node, mt_tensor *const *t, mt_tensor **out_tangents)
{
    if (!t[0]) return MT_OK;
    const pool_layout *l = node->extra;
    mt_tensor *index = node->saved[1];
    int64_t in_plane = l->n_src[POOL_H] * l->n_src[POOL_W], out_plane = l->n_dst[POOL_H] * l->n_dst[POOL_W];
    int64_t planes = mt_numel(index) / out_plane;
    if (planes == 0) {   /* an empty batch: an empty tangent */
        out_tangents[0] = mt_empty_on(mt_device_of(t[0]), t[0]->dtype, index->ndim, index->shape);
        return out_tangents[0] ? MT_OK : mt_last_status();
    }
    mt_tensor *picked = mt_gather(mt_reshape(t[0], 2, (int64_t[]){ planes, in_plane }), 1,
                                  mt_reshape(index, 2, (int64_t[]){ planes, out_plane }));
    out_tangents[0] = mt_reshape(picked, index->ndim, index->shape);
    return out_tangents[0] ? MT_OK : mt_last_status();
}

MT_OP_DEF_N(max_pool1d_op, { "max_pool1d", NULL, NULL }, max_pool_vjp, max_pool_jvp);
MT_OP_DEF_N(max_pool2d_op, { "max_pool2d", NULL, NULL }, max_pool_vjp, max_pool_jvp);
MT_OP_DEF_N(adaptive_max_pool1d_op, { "adaptive_max_pool1d", NULL, NULL }, max_pool_vjp, max_pool_jvp);
MT_OP_DEF_N(adaptive_max_pool2d_op, { "adaptive_max_pool2d", NULL, NULL }, max_pool_vjp, max_pool_jvp);

/* A window with no input position in it (all padding and dilation gaps),
   where PyTorch would return -inf and an index outside the plane: refused. */
static bool check_windows_hold_input(const char *op, const mt_tensor *x, int spatial, const pool_axis *axes)
{
    for (int k = 2 - spatial; k < 2; k++)
        for (int64_t i = 0; i < axes[k].n_dst; i++)
            if (axes[k].start[i] == axes[k].start[i + 1]) {
                char s[128];
                mt_set_error(MT_ERR_ARGUMENT, "%s: the window of output position %" PRId64 " along %s covers no "
                             "input position of %s (only padding and dilation gaps); use less padding or dilation", op,
                             i, k == 0 ? "H" : "W", mt_shape_str(x, s, sizeof s));
                return false;
            }
    return true;
}

/* The values of x's windows (maps axes, freed here) and their argmax. */
static mt_tensor *max_pool_apply(const mt_op_def_n *op, mt_tensor *x, int spatial, pool_axis *axes, mt_tensor **indices)
{
    const char *name = op->base.name;
    pool_layout l = { .spatial = spatial };
    mt_tensor *tables = NULL, *unused = NULL;
    bool backward = mt_is_grad_enabled() && x->requires_grad;   /* the transposes are for the vjp */
    bool ok = check_windows_hold_input(name, x, spatial, axes) &&
              pool_upload(name, axes, backward, false, x, &l, &tables, &unused);
    pool_axis_free(&axes[0]);
    pool_axis_free(&axes[1]);
    if (!ok) return NULL;

    mt_tensor *xc = mt_contiguous(x);
    int64_t shape[MT_MAX_DIMS];
    pool_out_shape(&l, x, POOL_H, POOL_W, shape);
    mt_tensor *y = xc ? mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, shape) : NULL;
    mt_tensor *ix = y ? mt_new_tensor(mt_device_of(x), MT_I64, x->ndim, shape) : NULL;
    mt_pool_map h = pool_map_of(&l, tables, NULL, POOL_H), w = pool_map_of(&l, tables, NULL, POOL_W);
    ok = ix && mt_run_kernel(name, x, pool_max, x->dtype, mt_numel(x) / (h.n_src * w.n_src), &h, &w, mt_ptr(xc),
                             mt_ptr(y), mt_ptr(ix)) == MT_OK;
    if (xc) mt_free_temp(xc, x);
    if (!ok) {
        mt_free(y);
        mt_free(ix);
        mt_free(tables);
        return NULL;
    }

    mt_node *node = mt_node_new_n(op, 1, &x);
    pool_layout *kept = node ? malloc(sizeof *kept) : NULL;
    mt_tensor *saved_ix = kept ? mt_alias_owned(ix) : NULL;
    if (node && !saved_ix) {
        free(kept);
        mt_node_free(node);
        mt_free(y);
        mt_free(ix);
        mt_free(tables);
        return MT_FAIL(MT_ERR_MEMORY, "%s: out of memory recording the tape", name);
    }
    if (node) {
        *kept = l;
        node->extra = kept;
        mt_node_save(node, 0, tables);
        mt_node_save(node, 1, saved_ix);
    } else {
        mt_free(tables);
    }
    mt_tensor *outs[2] = { y, ix }, *values = NULL;
    if (mt_node_commit_to(node, 2, outs, (mt_tensor **[]){ &values, indices }) != MT_OK) return NULL;
    return values;
}

mt_tensor *mt_max_pool1d(mt_tensor *x, mt_max_pool1d_opts o, mt_tensor **indices)
{
    const char *name = "max_pool1d";
    if (indices) *indices = NULL;
    if (!check_pool_input(name, x, 1) || !check_from_defaults(name, o.from_defaults, "MT_MAX_POOL1D_DEFAULTS(k)"))
        return NULL;
    int64_t in_h, in_w, out_w;
    plane_size(x, 1, &in_h, &in_w);
    if (!window_out_size(name, x, "W", in_w, o.kernel_size, o.stride, o.padding, o.dilation, o.ceil_mode, &out_w))
        return NULL;
    pool_axis axes[2] = { 0 };
    if (!pool_axis_identity(name, &axes[0]) ||
        !pool_axis_windows(name, &axes[1], in_w, out_w, o.kernel_size, o.stride, o.padding, o.dilation)) {
        pool_axis_free(&axes[0]);
        return NULL;
    }
    return max_pool_apply(&max_pool1d_op, x, 1, axes, indices);
}

mt_tensor *mt_max_pool2d(mt_tensor *x, mt_max_pool2d_opts o, mt_tensor **indices)
{
    const char *name = "max_pool2d";
    if (indices) *indices = NULL;
    if (!check_pool_input(name, x, 2) || !check_from_defaults(name, o.from_defaults, "MT_MAX_POOL2D_DEFAULTS(kh, kw)"))
        return NULL;
    int64_t in[2], out[2];
    plane_size(x, 2, &in[0], &in[1]);
    for (int a = 0; a < 2; a++)
        if (!window_out_size(name, x, a ? "W" : "H", in[a], o.kernel_size[a], o.stride[a], o.padding[a],
                             o.dilation[a], o.ceil_mode, &out[a]))
            return NULL;
    pool_axis axes[2] = { 0 };
    for (int a = 0; a < 2; a++)
        if (!pool_axis_windows(name, &axes[a], in[a], out[a], o.kernel_size[a], o.stride[a], o.padding[a],
                               o.dilation[a])) {
            pool_axis_free(&axes[0]);
            return NULL;
        }
    return max_pool_apply(&max_pool2d_op, x, 2, axes, indices);
}

/* ---------------------------------------------------------------- average pooling */
MT_OP_DEF(avg_pool1d_op, "avg_pool1d", pool_linear_vjp, pool_linear_jvp);
MT_OP_DEF(avg_pool2d_op, "avg_pool2d", pool_linear_vjp, pool_linear_jvp);

mt_tensor *mt_avg_pool1d(mt_tensor *x, mt_avg_pool1d_opts o)
{
    const char *name = "avg_pool1d";
    if (!check_pool_input(name, x, 1) || !check_from_defaults(name, o.from_defaults, "MT_AVG_POOL1D_DEFAULTS(k)"))
        return NULL;
    int64_t in_h, in_w, out_w;
    plane_size(x, 1, &in_h, &in_w);
    if (!window_out_size(name, x, "W", in_w, o.kernel_size, o.stride, o.padding, 1, o.ceil_mode, &out_w)) return NULL;
    pool_axis axes[2] = { 0 };
    if (!pool_axis_identity(name, &axes[0]) ||
        !pool_axis_average(name, &axes[1], in_w, out_w, o.kernel_size, o.stride, o.padding, o.count_include_pad,
                           false, 1.0)) {
        pool_axis_free(&axes[0]);
        return NULL;
    }
    return pool_linear_apply(&avg_pool1d_op, x, 1, axes, false);
}

mt_tensor *mt_avg_pool2d(mt_tensor *x, mt_avg_pool2d_opts o)
{
    const char *name = "avg_pool2d";
    if (!check_pool_input(name, x, 2) || !check_from_defaults(name, o.from_defaults, "MT_AVG_POOL2D_DEFAULTS(kh, kw)"))
        return NULL;
    if (o.has_divisor_override && o.divisor_override == 0)
        return MT_FAIL(MT_ERR_ARGUMENT, "avg_pool2d: divisor_override must not be 0");
    int64_t in[2], out[2];
    plane_size(x, 2, &in[0], &in[1]);
    for (int a = 0; a < 2; a++)
        if (!window_out_size(name, x, a ? "W" : "H", in[a], o.kernel_size[a], o.stride[a], o.padding[a], 1,
                             o.ceil_mode, &out[a]))
            return NULL;
    /* with divisor_override the H map carries 1 / divisor and the W map 1 */
    double scale[2] = { o.has_divisor_override ? 1.0 / (double)o.divisor_override : 1.0, 1.0 };
    pool_axis axes[2] = { 0 };
    for (int a = 0; a < 2; a++)
        if (!pool_axis_average(name, &axes[a], in[a], out[a], o.kernel_size[a], o.stride[a], o.padding[a],
                               o.count_include_pad, o.has_divisor_override, scale[a])) {
            pool_axis_free(&axes[0]);
            return NULL;
        }
    return pool_linear_apply(&avg_pool2d_op, x, 2, axes, false);
}

/* ---------------------------------------------------------------- adaptive pooling */
MT_OP_DEF(adaptive_avg_pool1d_op, "adaptive_avg_pool1d", pool_linear_vjp, pool_linear_jvp);
MT_OP_DEF(adaptive_avg_pool2d_op, "adaptive_avg_pool2d", pool_linear_vjp, pool_linear_jvp);

/* The adaptive maps of x's last spatial dims to out (out[0] = H, unused in 1-d). */
static bool adaptive_axes(const char *op, const mt_tensor *x, int spatial, const int64_t *out, bool average,
                          pool_axis *axes)
{
    int64_t in[2];
    plane_size(x, spatial, &in[0], &in[1]);
    for (int a = 2 - spatial; a < 2; a++)
        if (!check_output_size(op, x, a ? "W" : "H", out[a])) return false;
    bool ok = spatial == 1 ? pool_axis_identity(op, &axes[0]) : pool_axis_adaptive(op, &axes[0], in[0], out[0], average);
    ok = ok && pool_axis_adaptive(op, &axes[1], in[1], out[1], average);
    if (!ok) pool_axis_free(&axes[0]);
    return ok;
}

mt_tensor *mt_adaptive_avg_pool1d(mt_tensor *x, int64_t out_w)
{
    const char *name = "adaptive_avg_pool1d";
    pool_axis axes[2] = { 0 };
    if (!check_pool_input(name, x, 1) || !adaptive_axes(name, x, 1, (int64_t[]){ 1, out_w }, true, axes)) return NULL;
    return pool_linear_apply(&adaptive_avg_pool1d_op, x, 1, axes, out_w == 1);
}

mt_tensor *mt_adaptive_avg_pool2d(mt_tensor *x, int64_t out_h, int64_t out_w)
{
    const char *name = "adaptive_avg_pool2d";
    pool_axis axes[2] = { 0 };
    if (!check_pool_input(name, x, 2) || !adaptive_axes(name, x, 2, (int64_t[]){ out_h, out_w }, true, axes))
        return NULL;
    return pool_linear_apply(&adaptive_avg_pool2d_op, x, 2, axes, out_h == 1 && out_w == 1);
}

mt_tensor *mt_adaptive_max_pool1d(mt_tensor *x, int64_t out_w, mt_tensor **indices)
{
    const char *name = "adaptive_max_pool1d";
    if (indices) *indices = NULL;
    pool_axis axes[2] = { 0 };
    if (!check_pool_input(name, x, 1) || !adaptive_axes(name, x, 1, (int64_t[]){ 1, out_w }, false, axes)) return NULL;
    return max_pool_apply(&adaptive_max_pool1d_op, x, 1, axes, indices);
}

mt_tensor *mt_adaptive_max_pool2d(mt_tensor *x, int64_t out_h, int64_t out_w, mt_tensor **indices)
{
    const char *name = "adaptive_max_pool2d";
    if (indices) *indices = NULL;
    pool_axis axes[2] = { 0 };
    if (!check_pool_input(name, x, 2) || !adaptive_axes(name, x, 2, (int64_t[]){ out_h, out_w }, false, axes))
        return NULL;
    return max_pool_apply(&adaptive_max_pool2d_op, x, 2, axes, indices);
}
