/*
 * op_softmax.c - softmax and log-softmax along one dim.
 *
 *   softmax      y = exp(x - lse(x))   vjp  y (g - sum(g y))      jvp  y (t - sum(t y))
 *   log_softmax  y = x - lse(x)        vjp  g - exp(y) sum(g)     jvp  t - sum(t exp(y))
 *
 * Softmax's Jacobian is symmetric, so its jvp is the backward kernel applied
 * to the tangent; log-softmax's is not, and its jvp is composed from ops.
 */
#include "engine/internal.h"

/* [outer, n, inner] of a contiguous x around dim */
static void split_at(const mt_tensor *x, int dim, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *inner = 1;
    *n = x->ndim ? x->shape[dim] : 1;
    for (int d = 0; d < dim; d++) *outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) *inner *= x->shape[d];
}

/* ints[0] = dim, ints[1] = log */
static mt_tensor *softmax_backward_kernel(mt_node *node, mt_tensor *v)
{
    mt_tensor *y = node->output, *vc = mt_contiguous(v);
    if (!vc) return NULL;
    mt_tensor *r = mt_empty_like(y);
    if (!r) return NULL;
    int64_t outer, n, inner;
    split_at(y, (int)node->ints[0], &outer, &n, &inner);
    if (mt_run_kernel(node->op->name, y, softmax_backward, node->ints[1] != 0, y->dtype, outer, n, inner, mt_ptr(y),
                      mt_ptr(vc), mt_ptr(r)) != MT_OK)
        return NULL;   /* r belongs to the vjp's scope */
    return r;
}

static mt_status softmax_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = softmax_backward_kernel(node, g);
    return grads[0] ? MT_OK : mt_last_status();
}

static mt_tensor *softmax_jvp(mt_node *node, mt_tensor *const *t)
{
    if (!node->ints[1]) return softmax_backward_kernel(node, t[0]);
    int dim = (int)node->ints[0];
    mt_tensor *p = mt_exp(node->output);
    return mt_sub(t[0], mt_sum(mt_mul(t[0], p), 1, &dim, true));
}

MT_OP_DEF(softmax_op, "softmax", softmax_vjp, softmax_jvp);
MT_OP_DEF(log_softmax_op, "log_softmax", softmax_vjp, softmax_jvp);

static mt_tensor *softmax(const mt_op_def *op, mt_tensor *x, int dim, bool log)
{
    if (!mt_check_float(op->name, x)) return NULL;
    int d = mt_wrap_dim(op->name, dim, x->ndim);
    if (d < 0) return NULL;
    mt_tensor *xc = mt_contiguous(x);
    if (!xc) return NULL;
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape);
    if (!y) { mt_free_temp(xc, x); return NULL; }
    int64_t outer, n, inner;
    split_at(x, d, &outer, &n, &inner);
    mt_status st = mt_numel(x) > 0 ? mt_run_kernel(op->name, x, softmax, log, x->dtype, outer, n, inner, mt_ptr(xc),
                                                   mt_ptr(y))
                                   : MT_OK;
    mt_free_temp(xc, x);
    if (st != MT_OK) { mt_free(y); return NULL; }
    mt_node *node = mt_node_new(op, y, 1, &x);
    if (node) { node->ints[0] = d; node->ints[1] = log; }
    return mt_node_commit(node, y);
}

mt_tensor *mt_softmax(mt_tensor *x, int dim) { return softmax(&softmax_op, x, dim, false); }
mt_tensor *mt_log_softmax(mt_tensor *x, int dim) { return softmax(&log_softmax_op, x, dim, true); }
