/*
 * op_shape.c - copies that rearrange or resize a tensor: flip and constant
 * padding. Both are linear in x, and their derivatives are the same kind of
 * copy:
 *
 *   flip   y = x walked backwards along dims     vjp flip(g, dims)      jvp flip(t, dims)
 *   pad    y = x inside a border of `value`      vjp pad(g, -pads, 0)   jvp pad(t, pads, 0)
 *
 * pad's vjp is the gradient cropped to x (negating the pads crops what was
 * padded and puts zeros where a negative pad had cropped x).
 *
 * Neither needs a kernel of its own: flip is the backend's strided copy from
 * a view whose flipped dims have negative strides (the view never leaves
 * this file), pad a fill and a strided copy into a window of the output.
 */
#include "engine/internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- flip */
/* A fresh copy of x with the dims in mask reversed, without autograd. */
static mt_tensor *flip_raw(mt_tensor *x, int64_t mask)
{
    int64_t stride[MT_MAX_DIMS], offset = x->offset;
    for (int d = 0; d < x->ndim; d++) {
        stride[d] = x->stride[d];
        if (!((mask >> d) & 1) || x->shape[d] == 0) continue;
        offset += (x->shape[d] - 1) * x->stride[d];   /* start at the last element, walk back */
        stride[d] = -x->stride[d];
    }
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape);
    mt_tensor *backwards = y ? mt_new_view(x, x->ndim, x->shape, stride, offset) : NULL;
    if (!backwards || mt_copy_(y, backwards) != MT_OK) {
        mt_free(backwards);
        mt_free(y);
        return NULL;
    }
    mt_free(backwards);
    return y;
}

/* ints[0] = the flipped dims as a bitmask */
static mt_status flip_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = flip_raw(g, node->ints[0]);
    return grads[0] ? MT_OK : mt_last_status();
}
static mt_tensor *flip_jvp(mt_node *node, mt_tensor *const *t) { return flip_raw(t[0], node->ints[0]); }
MT_OP_DEF(flip_op, "flip", flip_vjp, flip_jvp);

mt_tensor *mt_flip(mt_tensor *x, int n_dims, const int *dims)
{
    if (!mt_check_input("flip", x)) return NULL;
    if (n_dims < 0 || (n_dims > 0 && !dims))
        return MT_FAIL(MT_ERR_ARGUMENT, "flip: %d dims given%s", n_dims, n_dims > 0 ? " but dims is NULL" : "");
    int64_t mask = 0;
    for (int i = 0; i < n_dims; i++) {
        int d = mt_wrap_dim("flip", dims[i], x->ndim);
        if (d < 0) return NULL;
        if ((mask >> d) & 1) return MT_FAIL(MT_ERR_ARGUMENT, "flip: dim %d appears twice", dims[i]);
        mask |= (int64_t)1 << d;
    }
    if (x->ndim == 0) mask = 0;
    mt_tensor *y = flip_raw(x, mask);
    if (!y) return NULL;
    mt_node *node = mt_node_new(&flip_op, y, 1, &x);
    if (node) node->ints[0] = mask;
    return mt_node_commit(node, y);
}

/* ---------------------------------------------------------------- pad */
/* The (left, right) pads of dim d from F.pad's list: the last dim first. */
static void pads_of(int ndim, int n, const int64_t *pads, int d, int64_t *left, int64_t *right)
{
    int pair = ndim - 1 - d;
    *left = *right = 0;
    if (2 * pair + 1 < n) {
        *left = pads[2 * pair];
        *right = pads[2 * pair + 1];
    }
}

/* x padded with value (cropped where a pad is negative), without autograd. */
static mt_tensor *pad_raw(const char *op, mt_tensor *x, int n, const int64_t *pads, double value)
{
    int nd = x->ndim;
    int64_t oshape[MT_MAX_DIMS], src_off = x->offset, dst_start[MT_MAX_DIMS], len[MT_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int64_t l, r, s = x->shape[d];
        pads_of(nd, n, pads, d, &l, &r);
        int64_t crop_l = l < 0 ? -l : 0, crop_r = r < 0 ? -r : 0;
        if (crop_l > s || crop_r > s - crop_l) {
            char sh[128];
            return MT_FAIL(MT_ERR_SHAPE, "%s: pads (%" PRId64 ", %" PRId64 ") of dim %d crop more than its size %" PRId64
                           " (shape %s)", op, l, r, d, s, mt_shape_str(x, sh, sizeof sh));
        }
        if (l > INT64_MAX / 4 || r > INT64_MAX / 4 || s + l + r > INT64_MAX / 4)
            return MT_FAIL(MT_ERR_SHAPE, "%s: pads (%" PRId64 ", %" PRId64 ") of dim %d are too large", op, l, r, d);
        oshape[d] = s + l + r;
        len[d] = s - crop_l - crop_r;
        dst_start[d] = l > 0 ? l : 0;
        src_off += crop_l * x->stride[d];
    }
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, nd, oshape);
    if (!y || mt_fill_(y, value) != MT_OK) { mt_free(y); return NULL; }
    if (mt_shape_numel(nd, len) == 0) return y;
    int64_t dst_off = y->offset;
    for (int d = 0; d < nd; d++) dst_off += dst_start[d] * y->stride[d];
    mt_tensor *window = mt_new_view(y, nd, len, y->stride, dst_off);
    mt_tensor *inside = window ? mt_new_view(x, nd, len, x->stride, src_off) : NULL;
    mt_status st = inside ? mt_copy_(window, inside) : mt_last_status();
    mt_free(inside);
    mt_free(window);
    if (st != MT_OK) { mt_free(y); return NULL; }
    return y;
}

/* ints[0] = the number of pads, extra = the pads (int64_t[ints[0]]) */
static mt_status pad_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    int n = (int)node->ints[0];
    int64_t neg[2 * MT_MAX_DIMS];
    const int64_t *pads = node->extra;
    for (int i = 0; i < n; i++) neg[i] = -pads[i];
    grads[0] = pad_raw("pad", g, n, neg, 0);
    return grads[0] ? MT_OK : mt_last_status();
}
static mt_tensor *pad_jvp(mt_node *node, mt_tensor *const *t)
{
    return pad_raw("pad", t[0], (int)node->ints[0], node->extra, 0);
}
MT_OP_DEF(pad_op, "pad", pad_vjp, pad_jvp);

mt_tensor *mt_pad(mt_tensor *x, int n, const int64_t *pads, double value)
{
    if (!mt_check_input("pad", x)) return NULL;
    if (n < 0 || n % 2 != 0) return MT_FAIL(MT_ERR_ARGUMENT, "pad: the number of pads must be even, got %d", n);
    if (n > 0 && !pads) return MT_FAIL(MT_ERR_ARGUMENT, "pad: %d pads given but pads is NULL", n);
    if (n / 2 > x->ndim) {
        char s[128];
        return MT_FAIL(MT_ERR_ARGUMENT, "pad: %d pads pad %d dims, but the input of shape %s has %d", n, n / 2,
                       mt_shape_str(x, s, sizeof s), x->ndim);
    }
    mt_tensor *y = pad_raw("pad", x, n, pads, value);
    if (!y) return NULL;
    mt_node *node = mt_node_new(&pad_op, y, 1, &x);
    if (node) {
        int64_t *copy = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!copy) { mt_node_free(node); mt_free(y); return MT_FAIL(MT_ERR_MEMORY, "pad: out of memory"); }
        if (n) memcpy(copy, pads, sizeof(int64_t) * (size_t)n);
        node->ints[0] = n;
        node->extra = copy;
    }
    return mt_node_commit(node, y);
}
