/*
 * op_norm.c - batch normalization over x of shape [N, C] or [N, C, L...],
 * statistics per channel over the N * L values (kernels/cpu/norm.c has the
 * kernel-level formulas).
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
