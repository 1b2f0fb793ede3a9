/*
 * op_scan.c - cumulative sums along one dim (torch.cumsum).
 *
 *   cumsum   y_j = sum_{j' <= j} x_j'
 *   vjp      dx_j = sum_{j' >= j} g_j'     (the cumsum of g taken from the end)
 *   jvp      cumsum(t)                     (cumsum is linear)
 *
 * The kernel scans the middle axis of [outer, n, inner]; integer and bool
 * inputs are summed in i64, as PyTorch does (no gradient there).
 */
#include "engine/internal.h"

/* [outer, n, inner] of x around dim d */
static void split_at(const mt_tensor *x, int d, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *inner = 1;
    *n = x->ndim ? x->shape[d] : 1;
    for (int k = 0; k < d; k++) *outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) *inner *= x->shape[k];
}

/* The scan of x (f32, f64 or i64) along d, forward or from the end, without autograd. */
static mt_tensor *cumsum_raw(mt_tensor *x, int d, bool reverse)
{
    mt_tensor *xc = mt_contiguous(x);
    if (!xc) return NULL;
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape);
    int64_t outer, n, inner;
    split_at(x, d, &outer, &n, &inner);
    if (y && mt_numel(x) > 0 &&
        mt_run_kernel("cumsum", x, cumsum, x->dtype, outer, n, inner, reverse, mt_ptr(xc), mt_ptr(y)) != MT_OK) {
        mt_free(y);
        y = NULL;
    }
    mt_free_temp(xc, x);
    return y;
}

/* ints[0] = dim */
static mt_status cumsum_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = cumsum_raw(g, (int)node->ints[0], true);
    return grads[0] ? MT_OK : mt_last_status();
}

static mt_tensor *cumsum_jvp(mt_node *node, mt_tensor *const *t)
{
    return cumsum_raw(t[0], (int)node->ints[0], false);
}

MT_OP_DEF(cumsum_op, "cumsum", cumsum_vjp, cumsum_jvp);

mt_tensor *mt_cumsum(mt_tensor *x, int dim)
{
    if (!mt_check_input("cumsum", x)) return NULL;
    int d = mt_wrap_dim("cumsum", dim, x->ndim);
    if (d < 0) return NULL;
    if (!mt_dtype_is_float(x->dtype)) {   /* integers and bools count in i64, without gradient */
        mt_tensor *xi = x->dtype == MT_I64 ? x : mt_to_dtype(x, MT_I64);
        return xi ? cumsum_raw(xi, d, false) : NULL;
    }
    mt_tensor *y = cumsum_raw(x, d, false);
    if (!y) return NULL;
    mt_node *node = mt_node_new(&cumsum_op, y, 1, &x);
    if (node) node->ints[0] = d;
    return mt_node_commit(node, y);
}
