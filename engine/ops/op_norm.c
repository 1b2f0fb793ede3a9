/*
 * op_norm.c - the normalizations (docs/ops-norm.md): batch norm here, and
 * group norm, layer norm and channels-first layer norm in the second half.
 *
 * Batch normalization over x of shape [N, C] or [N, C, *] (BatchNorm1d's
 * [N, C, L], BatchNorm2d's [N, C, H, W]: viewed as [N, C, L] with L the
 * product of the trailing dims), statistics per channel over the N * L
 * values (kernels/cpu/norm.c has the kernel-level formulas).
 *
 *   xhat = (x - mean) * invstd,   y = w * xhat + b
 *
 * vjp (training):  dx = w invstd (g - mean(g) - xhat mean(g xhat)),
 *                  dw = sum(g xhat),  db = sum(g)
 * jvp (training):  ty = w invstd (tx - mean(tx) - xhat mean(tx xhat)) + tw xhat + tb
 *
 * The x-part of the jvp is the x-part of the vjp with g := tx: the map
 * tx -> (tx - mean(tx) - xhat mean(tx xhat)) is an orthogonal projection,
 * hence symmetric, so one kernel serves both directions. In eval mode the
 * statistics are constants and both reduce to w invstd (.).
 */
#include "engine/internal.h"

#include <inttypes.h>
#include <math.h>

/* node: inputs x, weight (or NULL), bias (or NULL); saved[0] = mean, saved[1] = invstd;
   ints[0] = training */
static void split_ncl(const mt_tensor *x, int64_t *n, int64_t *c, int64_t *l)
{
    *n = x->shape[0];
    *c = x->shape[1];
    *l = 1;
    for (int d = 2; d < x->ndim; d++) *l *= x->shape[d];
}

/* The kernel's dx (or tangent) for v given the node's statistics. */
static mt_status batch_norm_backward_kernel(mt_node *node, mt_tensor *v, mt_tensor **dx, mt_tensor **dw, mt_tensor **db)
{
    mt_tensor *x = mt_contiguous(node->inputs[0]), *w = node->inputs[1], *vc = mt_contiguous(v);
    if (!x || !vc) return mt_last_status();
    mt_tensor *wc = w ? mt_contiguous(w) : NULL;
    int64_t n, c, l;
    split_ncl(x, &n, &c, &l);
    if (dx && !(*dx = mt_empty_like(x))) return mt_last_status();
    if (dw && !(*dw = mt_new_tensor(mt_device_of(x), x->dtype, 1, &c))) return mt_last_status();
    if (db && !(*db = mt_new_tensor(mt_device_of(x), x->dtype, 1, &c))) return mt_last_status();
    /* on failure the outputs go with the vjp's (or jvp's) scope */
    return mt_run_kernel("batch_norm", x, batch_norm_backward, x->dtype, n, c, l, mt_ptr(x), mt_ptr(vc),
                         wc ? mt_ptr(wc) : NULL, mt_ptr(node->saved[0]), mt_ptr(node->saved[1]), node->ints[0] != 0,
                         dx ? mt_ptr(*dx) : NULL, dw ? mt_ptr(*dw) : NULL, db ? mt_ptr(*db) : NULL);
}

static mt_status batch_norm_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    bool nx = mt_node_needs_grad(node, 0), nw = node->inputs[1] && mt_node_needs_grad(node, 1);
    bool nb = node->inputs[2] && mt_node_needs_grad(node, 2);
    return batch_norm_backward_kernel(node, g, nx ? &grads[0] : NULL, nw ? &grads[1] : NULL, nb ? &grads[2] : NULL);
}

/* [1, C, 1, ...] so that a per-channel vector broadcasts over x */
static mt_tensor *per_channel(mt_tensor *v, const mt_tensor *x)
{
    int64_t shape[MT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = d == 1 ? x->shape[1] : 1;
    return mt_reshape(v, x->ndim, shape);
}

static mt_tensor *batch_norm_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *x = node->inputs[0], *r = NULL;
    if (t[0]) {
        if (batch_norm_backward_kernel(node, t[0], &r, NULL, NULL) != MT_OK) return NULL;
    }
    if (t[1]) {
        mt_tensor *xhat = mt_mul(mt_sub(x, per_channel(node->saved[0], x)), per_channel(node->saved[1], x));
        mt_tensor *p = mt_mul(xhat, per_channel(t[1], x));
        r = r ? mt_add(r, p) : p;
    }
    if (t[2]) {
        mt_tensor *p = mt_expand(per_channel(t[2], x), x->ndim, x->shape);
        r = r ? mt_add(r, p) : mt_contiguous(p);
    }
    return r;
}

MT_OP_DEF(batch_norm_op, "batch_norm", batch_norm_vjp, batch_norm_jvp);

static bool channel_vector(const char *what, const mt_tensor *v, int64_t c, const mt_tensor *x)
{
    if (!v) return true;
    char s[128], sx[128];
    if (v->ndim != 1 || v->shape[0] != c) {
        mt_set_error(MT_ERR_SHAPE, "batch_norm: %s has shape %s, expected [%" PRId64 "] for input %s", what,
                     mt_shape_str(v, s, sizeof s), c, mt_shape_str(x, sx, sizeof sx));
        return false;
    }
    return mt_check_same_dtype("batch_norm", x, v) && mt_check_same_device("batch_norm", x, v);
}

static mt_tensor *batch_norm_body(mt_tensor *x, mt_tensor *running_mean, mt_tensor *running_var,
                                  mt_tensor *weight, mt_tensor *bias, bool training, double momentum, double eps)
{
    if (!mt_check_float("batch_norm", x)) return NULL;
    char s[128];
    if (x->ndim < 2)
        return MT_FAIL(MT_ERR_SHAPE, "batch_norm: input %s must be [N, C] or [N, C, L...]", mt_shape_str(x, s, sizeof s));
    int64_t n, c, l;
    split_ncl(x, &n, &c, &l);
    if (!channel_vector("weight", weight, c, x) || !channel_vector("bias", bias, c, x) ||
        !channel_vector("running_mean", running_mean, c, x) || !channel_vector("running_var", running_var, c, x))
        return NULL;
    if ((running_mean == NULL) != (running_var == NULL))
        return MT_FAIL(MT_ERR_ARGUMENT, "batch_norm: give both running_mean and running_var, or neither");
    if (!training && !running_mean)
        return MT_FAIL(MT_ERR_ARGUMENT, "batch_norm: eval mode needs running statistics");
    if (training && n * l <= 1)
        return MT_FAIL(MT_ERR_SHAPE, "batch_norm: expected more than 1 value per channel when training, got input %s",
                       mt_shape_str(x, s, sizeof s));
    if ((running_mean && !mt_is_contiguous(running_mean)) || (running_var && !mt_is_contiguous(running_var)))
        return MT_FAIL(MT_ERR_ARGUMENT, "batch_norm: running statistics must be contiguous (they are updated in place)");
    if (!(eps > 0)) return MT_FAIL(MT_ERR_ARGUMENT, "batch_norm: eps must be positive, got %g", eps);

    mt_tensor *xc = mt_contiguous(x);
    mt_tensor *wc = weight ? mt_contiguous(weight) : NULL, *bc = bias ? mt_contiguous(bias) : NULL;
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape);
    mt_tensor *mean = mt_new_tensor(mt_device_of(x), x->dtype, 1, &c);
    mt_tensor *invstd = mt_new_tensor(mt_device_of(x), x->dtype, 1, &c);
    if (!xc || !y || !mean || !invstd || (weight && !wc) || (bias && !bc)) return NULL;
    mt_status st = mt_run_kernel("batch_norm", x, batch_norm_forward, x->dtype, n, c, l, mt_ptr(xc),
                                 wc ? mt_ptr(wc) : NULL, bc ? mt_ptr(bc) : NULL,
                                 running_mean ? mt_ptr(running_mean) : NULL,
                                 running_var ? mt_ptr(running_var) : NULL, training, momentum, eps,
                                 mt_ptr(y), mt_ptr(mean), mt_ptr(invstd));
    mt_free_temp(xc, x);
    mt_free_temp(wc, weight);
    mt_free_temp(bc, bias);
    if (st != MT_OK) {
        mt_free(y);
        mt_free(mean);
        mt_free(invstd);
        return NULL;
    }

    mt_tensor *ins[3] = { x, weight, bias };
    mt_node *node = mt_node_new(&batch_norm_op, y, 3, ins);
    if (node) {
        mt_node_save(node, 0, mean);
        mt_node_save(node, 1, invstd);
        node->ints[0] = training;
    } else {
        mt_free(mean);
        mt_free(invstd);
    }
    return mt_node_commit(node, y);
}

mt_tensor *mt_batch_norm(mt_tensor *x, mt_tensor *running_mean, mt_tensor *running_var,
                         mt_tensor *weight, mt_tensor *bias, bool training, double momentum, double eps)
{
    mt_composite c = mt_composite_begin();   /* intermediates, and those of a failure: docs/ownership.md */
    return mt_composite_end(c, batch_norm_body(x, running_mean, running_var, weight, bias, training, momentum, eps));
}

/* ---------------------------------------------------------------- group norm and layer norm */
/*
 * Both run the group_norm kernels on x viewed as [n, c, l] in G groups of
 * c / G consecutive channels, one set of statistics per row (sample i,
 * group g) over its (c / G) l values, the affine parameters per channel:
 *
 *   group_norm(x [N, C, *], G):             n = N, c = C, l = prod(*)
 *   layer_norm(x [..., D1..Dk], [D1..Dk]):   n = prod(...), c = D1 ... Dk, l = 1, G = 1
 *
 *   xhat = (x - mean_row) rstd_row,  rstd = 1 / sqrt(var + eps),  y = w xhat + b
 *
 * vjp:  dx = rstd (g - mean_row(g) - xhat mean_row(g xhat)),  g = w dy
 *       dw = sum dy xhat,  db = sum dy   (over everything but the channel)
 * jvp:  ty = w rstd (tx - mean_row(tx) - xhat mean_row(tx xhat)) + tw xhat + tb
 *
 * The x-part of the jvp is the kernel's dx without a weight for v = tx (the
 * map is an orthogonal projection within each row, hence symmetric), times w:
 * w varies inside a row, so it stays outside the projection.
 *
 * node: inputs x, weight (or NULL), bias (or NULL); saved[0] = mean,
 * saved[1] = rstd, both [n G]; ints = n, c, l, G.
 */

/* The kernel's dx (or tangent) for v, and the parameter sums, from the node's
   statistics; with_weight false leaves the weight out of dx (for the jvp). */
static mt_status gn_backward_kernel(mt_node *node, mt_tensor *v, bool with_weight, mt_tensor **dx, mt_tensor **dw,
                                    mt_tensor **db)
{
    mt_tensor *x = mt_contiguous(node->inputs[0]), *vc = mt_contiguous(v);
    mt_tensor *w = with_weight ? node->inputs[1] : NULL, *wc = w ? mt_contiguous(w) : NULL;
    if (!x || !vc || (w && !wc)) return mt_last_status();
    mt_device dev = mt_device_of(x);
    if (dx && !(*dx = mt_empty_like(x))) return mt_last_status();
    if (dw && !(*dw = mt_new_tensor(dev, x->dtype, node->inputs[1]->ndim, node->inputs[1]->shape))) return mt_last_status();
    if (db && !(*db = mt_new_tensor(dev, x->dtype, node->inputs[2]->ndim, node->inputs[2]->shape))) return mt_last_status();
    /* on failure the outputs go with the vjp's (or jvp's) scope */
    return mt_run_kernel(node->op->name, x, group_norm_backward, x->dtype, node->ints[0], node->ints[1], node->ints[2],
                         node->ints[3], mt_ptr(x), mt_ptr(vc), wc ? mt_ptr(wc) : NULL, mt_ptr(node->saved[0]),
                         mt_ptr(node->saved[1]), dx ? mt_ptr(*dx) : NULL, dw ? mt_ptr(*dw) : NULL,
                         db ? mt_ptr(*db) : NULL);
}

static mt_status gn_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    bool nx = mt_node_needs_grad(node, 0), nw = node->inputs[1] && mt_node_needs_grad(node, 1);
    bool nb = node->inputs[2] && mt_node_needs_grad(node, 2);
    return gn_backward_kernel(node, g, true, nx ? &grads[0] : NULL, nw ? &grads[1] : NULL, nb ? &grads[2] : NULL);
}

static mt_tensor *gn_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *x = node->inputs[0], *r = NULL;
    int64_t n = node->ints[0], c = node->ints[1], l = node->ints[2], groups = node->ints[3];
    int64_t ncl[3] = { n, c, l }, per_channel[3] = { 1, c, 1 };
    if (t[0]) {
        if (gn_backward_kernel(node, t[0], false, &r, NULL, NULL) != MT_OK) return NULL;
        r = mt_reshape(r, 3, ncl);
        if (node->inputs[1]) r = mt_mul(r, mt_reshape(node->inputs[1], 3, per_channel));
    }
    if (t[1]) {
        int64_t rows[3] = { n, groups, groups ? c / groups * l : 0 }, stat[3] = { n, groups, 1 };
        mt_tensor *xhat = mt_mul(mt_sub(mt_reshape(x, 3, rows), mt_reshape(node->saved[0], 3, stat)),
                                 mt_reshape(node->saved[1], 3, stat));
        mt_tensor *p = mt_mul(mt_reshape(xhat, 3, ncl), mt_reshape(t[1], 3, per_channel));
        r = r ? mt_add(r, p) : p;
    }
    if (t[2]) {
        mt_tensor *p = mt_expand(mt_reshape(t[2], 3, per_channel), 3, ncl);
        r = r ? mt_add(r, p) : mt_contiguous(p);
    }
    return mt_reshape(r, x->ndim, x->shape);
}

MT_OP_DEF(layer_norm_op, "layer_norm", gn_vjp, gn_jvp);
MT_OP_DEF(group_norm_op, "group_norm", gn_vjp, gn_jvp);

/* weight or bias (NULL: none) must have the given shape, and x's dtype and device. */
static bool affine_param(const char *op, const char *what, const mt_tensor *v, int ndim, const int64_t *shape,
                         const char *expected, const mt_tensor *x)
{
    if (!v) return true;
    bool same = v->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = v->shape[d] == shape[d];
    if (!same) {
        char s[128], e[128], sx[128];
        mt_set_error(MT_ERR_SHAPE, "%s: %s has shape %s, expected %s %s for input %s", op, what,
                     mt_shape_str(v, s, sizeof s), expected, mt_shape_text(ndim, shape, e, sizeof e),
                     mt_shape_str(x, sx, sizeof sx));
        return false;
    }
    return mt_check_same_dtype(op, x, v) && mt_check_same_device(op, x, v);
}

/* The normalization of x viewed as [n, c, l] in `groups` groups, recorded as op. */
static mt_tensor *gn_run(const mt_op_def *op, mt_tensor *x, int64_t n, int64_t c, int64_t l, int64_t groups,
                         mt_tensor *weight, mt_tensor *bias, double eps)
{
    if (!(eps >= 0) || isinf(eps)) return MT_FAIL(MT_ERR_ARGUMENT, "%s: eps must be >= 0 and finite, got %g", op->name, eps);
    mt_device dev = mt_device_of(x);
    int64_t rows = n * groups;
    mt_tensor *xc = mt_contiguous(x);
    mt_tensor *wc = weight ? mt_contiguous(weight) : NULL, *bc = bias ? mt_contiguous(bias) : NULL;
    mt_tensor *y = mt_new_tensor(dev, x->dtype, x->ndim, x->shape);
    mt_tensor *mean = mt_new_tensor(dev, x->dtype, 1, &rows), *rstd = mt_new_tensor(dev, x->dtype, 1, &rows);
    if (!xc || !y || !mean || !rstd || (weight && !wc) || (bias && !bc)) return NULL;   /* the composite frees them */
    mt_status st = mt_run_kernel(op->name, x, group_norm_forward, x->dtype, n, c, l, groups, mt_ptr(xc),
                                 wc ? mt_ptr(wc) : NULL, bc ? mt_ptr(bc) : NULL, eps, mt_ptr(y), mt_ptr(mean),
                                 mt_ptr(rstd));
    mt_free_temp(xc, x);
    mt_free_temp(wc, weight);
    mt_free_temp(bc, bias);
    if (st != MT_OK) {
        mt_free(y);
        mt_free(mean);
        mt_free(rstd);
        return NULL;
    }
    mt_tensor *ins[3] = { x, weight, bias };
    mt_node *node = mt_node_new(op, y, 3, ins);
    if (node) {
        mt_node_save(node, 0, mean);
        mt_node_save(node, 1, rstd);
        node->ints[0] = n;
        node->ints[1] = c;
        node->ints[2] = l;
        node->ints[3] = groups;
    } else {
        mt_free(mean);
        mt_free(rstd);
    }
    return mt_node_commit(node, y);
}

static mt_tensor *layer_norm_body(mt_tensor *x, int n_norm, const int64_t *normalized_shape, mt_tensor *weight,
                                  mt_tensor *bias, double eps)
{
    if (!mt_check_float("layer_norm", x)) return NULL;
    char s[128], e[128];
    if (n_norm < 1 || n_norm > x->ndim || !normalized_shape)
        return MT_FAIL(MT_ERR_SHAPE, "layer_norm: normalized_shape must name 1 to %d trailing dims of input %s, got %d dims",
                       x->ndim, mt_shape_str(x, s, sizeof s), n_norm);
    int lead = x->ndim - n_norm;
    for (int d = 0; d < n_norm; d++)
        if (normalized_shape[d] != x->shape[lead + d])
            return MT_FAIL(MT_ERR_SHAPE, "layer_norm: normalized_shape %s does not match the last %d dims of input %s "
                           "(expected input [*, %s)", mt_shape_text(n_norm, normalized_shape, e, sizeof e), n_norm,
                           mt_shape_str(x, s, sizeof s), e + 1);
    if (!affine_param("layer_norm", "weight", weight, n_norm, normalized_shape, "normalized_shape", x) ||
        !affine_param("layer_norm", "bias", bias, n_norm, normalized_shape, "normalized_shape", x))
        return NULL;
    int64_t rows = mt_shape_numel(lead, x->shape), features = mt_shape_numel(n_norm, x->shape + lead);
    return gn_run(&layer_norm_op, x, rows, features, 1, 1, weight, bias, eps);
}

mt_tensor *mt_layer_norm(mt_tensor *x, int n_norm, const int64_t *normalized_shape, mt_tensor *weight, mt_tensor *bias,
                         double eps)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, layer_norm_body(x, n_norm, normalized_shape, weight, bias, eps));
}

/* (N, C, *) -> (N, *, C), layer norm over C, and back: ConvNeXt's LayerNorm2d. */
static mt_tensor *layer_norm_channels_first_body(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, double eps)
{
    if (!mt_check_float("layer_norm_channels_first", x)) return NULL;
    char s[128];
    if (x->ndim < 2)
        return MT_FAIL(MT_ERR_SHAPE, "layer_norm_channels_first: input %s must be [N, C, *]", mt_shape_str(x, s, sizeof s));
    int to_last[MT_MAX_DIMS], to_first[MT_MAX_DIMS], nd = x->ndim;
    for (int d = 0; d < nd; d++) {
        to_last[d] = d == 0 ? 0 : d == nd - 1 ? 1 : d + 1;     /* (N, C, H, W) -> (N, H, W, C) */
        to_first[d] = d == 0 ? 0 : d == 1 ? nd - 1 : d - 1;    /* and back */
    }
    mt_tensor *y = mt_layer_norm(mt_permute(x, to_last), 1, &x->shape[1], weight, bias, eps);
    return mt_permute(y, to_first);
}

mt_tensor *mt_layer_norm_channels_first(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, double eps)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, layer_norm_channels_first_body(x, weight, bias, eps));
}

static mt_tensor *group_norm_body(mt_tensor *x, int64_t num_groups, mt_tensor *weight, mt_tensor *bias, double eps)
{
    if (!mt_check_float("group_norm", x)) return NULL;
    char s[128];
    if (x->ndim < 2)
        return MT_FAIL(MT_ERR_SHAPE, "group_norm: input %s must be [N, C, *]", mt_shape_str(x, s, sizeof s));
    int64_t n = x->shape[0], c = x->shape[1], l = mt_shape_numel(x->ndim - 2, x->shape + 2);
    if (num_groups < 1 || c % num_groups != 0)
        return MT_FAIL(MT_ERR_SHAPE, "group_norm: the %" PRId64 " channels of input %s are not divisible into "
                       "num_groups = %" PRId64 " groups", c, mt_shape_str(x, s, sizeof s), num_groups);
    if (!affine_param("group_norm", "weight", weight, 1, &c, "[C] =", x) ||
        !affine_param("group_norm", "bias", bias, 1, &c, "[C] =", x))
        return NULL;
    return gn_run(&group_norm_op, x, n, c, l, num_groups, weight, bias, eps);
}

mt_tensor *mt_group_norm(mt_tensor *x, int64_t num_groups, mt_tensor *weight, mt_tensor *bias, double eps)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, group_norm_body(x, num_groups, weight, bias, eps));
}
