/*
 * checks.c - argument checks with messages that name the op, and the
 * broadcasting rules shared by every elementwise op.
 */
#include "engine/internal.h"

#include <inttypes.h>
#include <string.h>

bool mt_check_input(const char *op, const mt_tensor *x)
{
    if (x) return true;
    /* A NULL input usually means an earlier op failed: keep its message. */
    if (mt_last_status() == MT_OK) mt_set_error(MT_ERR_ARGUMENT, "%s: input is NULL", op);
    return false;
}

bool mt_check_float(const char *op, const mt_tensor *x)
{
    if (!mt_check_input(op, x)) return false;
    if (mt_dtype_is_float(x->dtype)) return true;
    char s[128];
    mt_set_error(MT_ERR_DTYPE, "%s: expected an f32 or f64 tensor, got %s of shape %s", op,
                 mt_dtype_name(x->dtype), mt_shape_str(x, s, sizeof s));
    return false;
}

bool mt_check_same_device(const char *op, const mt_tensor *a, const mt_tensor *b)
{
    mt_device da = mt_device_of(a), db = mt_device_of(b);
    if (da.type == db.type && da.index == db.index) return true;
    mt_set_error(MT_ERR_DEVICE, "%s: tensors are on different devices (%s:%d and %s:%d)", op,
                 mt_device_name(da), da.index, mt_device_name(db), db.index);
    return false;
}

bool mt_check_same_dtype(const char *op, const mt_tensor *a, const mt_tensor *b)
{
    if (a->dtype == b->dtype) return true;
    mt_set_error(MT_ERR_DTYPE, "%s: dtypes differ (%s and %s); convert one with mt_to_dtype", op,
                 mt_dtype_name(a->dtype), mt_dtype_name(b->dtype));
    return false;
}

int mt_wrap_dim(const char *op, int dim, int ndim)
{
    int n = ndim > 0 ? ndim : 1;
    int d = dim < 0 ? dim + n : dim;
    if (d < 0 || d >= n) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: dim %d out of range for a tensor of %d dims", op, dim, ndim);
        return -1;
    }
    return d;
}

bool mt_broadcast_shapes(const char *op, int n, mt_tensor *const *ts, int *out_ndim, int64_t *out_shape)
{
    int nd = 0;
    for (int i = 0; i < n; i++) if (ts[i]->ndim > nd) nd = ts[i]->ndim;
    for (int d = 0; d < nd; d++) out_shape[d] = 1;
    for (int i = 0; i < n; i++) {
        const mt_tensor *t = ts[i];
        for (int d = 0; d < t->ndim; d++) {
            int od = nd - t->ndim + d;
            int64_t s = t->shape[d];
            if (s == out_shape[od] || s == 1) continue;
            if (out_shape[od] == 1) { out_shape[od] = s; continue; }
            char msg[512] = "";
            size_t used = 0;
            for (int k = 0; k < n && used < sizeof msg; k++) {
                char sh[128];
                used += (size_t)snprintf(msg + used, sizeof msg - used, "%s%s", k ? " and " : "", mt_shape_str(ts[k], sh, sizeof sh));
            }
            mt_set_error(MT_ERR_SHAPE, "%s: shapes %s do not broadcast (dim %d: %" PRId64 " vs %" PRId64 ")",
                         op, msg, od, out_shape[od], s);
            return false;
        }
    }
    /* each input's shape fits, but together they may not: (2^40, 1) and (1, 2^40) */
    if (mt_shape_check(op, nd, out_shape, 1) < 0) return false;
    *out_ndim = nd;
    return true;
}

void mt_loop_build(mt_loop *loop, const mt_tensor *out, int n, mt_tensor *const *inputs)
{
    memset(loop, 0, sizeof *loop);
    int nd = out->ndim;
    loop->ndim = nd;
    for (int d = 0; d < nd; d++) {
        loop->shape[d] = out->shape[d];
        loop->stride[0][d] = out->stride[d];
        for (int k = 0; k < n; k++) {
            const mt_tensor *t = inputs[k];
            int td = d - (nd - t->ndim);
            loop->stride[k + 1][d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td];
        }
    }
    /* size-1 dims dropped, neighbours every operand walks as one run merged
       (kernels/loop.h, shared with the CUDA wrappers) */
    (void)mt_loop_merge(loop, n + 1);
}

mt_status mt_add_inplace(mt_tensor *dst, const mt_tensor *src)
{
    if (!dst || !src) return mt_set_error(MT_ERR_ARGUMENT, "add_: NULL tensor");
    if (!mt_check_same_device("add_", dst, src)) return mt_last_status();
    mt_tensor *s = (mt_tensor *)src;
    if (src->dtype != dst->dtype) {
        s = mt_to_dtype((mt_tensor *)src, dst->dtype);
        if (!s) return mt_last_status();
    }
    mt_loop loop;
    mt_tensor *ins[2] = { dst, s };
    mt_loop_build(&loop, dst, 2, ins);
    mt_status st = mt_run_kernel("add_", dst, binary, MT_BINARY_ADD, dst->dtype, &loop, mt_ptr(dst), mt_ptr(dst),
                                 mt_ptr(s));
    mt_free_temp(s, src);
    return st;
}
