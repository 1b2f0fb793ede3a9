/*
 * op_resample.c - resampling (docs/ops-pool.md):
 *
 *   interpolate  PyTorch's F.interpolate, modes nearest, linear (3-d) and bilinear
 *                (4-d): a separable linear map per plane built from PyTorch's source
 *                coordinates (engine/ops/pool_maps.c), recorded under PyTorch's op
 *                names upsample_nearest1d/2d, upsample_linear1d, upsample_bilinear2d
 *                y = A_h X A_w^T    vjp  A_h^T G A_w    jvp  A_h T A_w^T
 *   the course's resampling (CMU 11-785 mytorch) by an integer factor k along W (1d)
 *   or H and W (2d):
 *     upsample    zero insertion, out = k (in - 1) + 1:  y[i k] = x[i], zeros between
 *                 vjp  g[::k]                      jvp  upsample(t)
 *     downsample  strided selection, out = ceil(in / k):  y = x[::k]
 *                 vjp  zeros(in) with [::k] = g    jvp  downsample(t)
 *
 * Up- and downsampling are strided copies between a tensor and a strided
 * view of another (the backend's copy kernel), each the other's adjoint.
 */
#include "engine/internal.h"
#include "engine/ops/pool_maps.h"

#include <inttypes.h>
#include <math.h>

/* ---------------------------------------------------------------- the course's up- and downsampling */
/* dst (a view) = src through the copy kernel, errors named after op. */
static mt_status strided_copy(const char *op, mt_tensor *dst, mt_tensor *src)
{
    mt_loop loop;
    mt_loop_build(&loop, dst, 1, &src);
    return mt_run_kernel(op, dst, copy, &loop, dst->dtype, mt_ptr(dst), src->dtype, mt_ptr(src));
}

/* The view of t's last `spatial` dims every k-th position, sizes ceil(n / k) (or n_sel[]). */
static mt_tensor *every_kth(mt_tensor *t, int spatial, int64_t k, const int64_t *n_sel)
{
    int64_t shape[MT_MAX_DIMS], stride[MT_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        shape[d] = t->shape[d];
        stride[d] = t->stride[d];
    }
    for (int s = 0; s < spatial; s++) {
        int d = t->ndim - spatial + s;
        shape[d] = n_sel ? n_sel[s] : (t->shape[d] + k - 1) / k;
        stride[d] = t->stride[d] * k;
    }
    return mt_new_view(t, t->ndim, shape, stride, t->offset);
}

/* x[..., ::k (, ::k)], contiguous. */
static mt_tensor *downsample_raw(const char *op, mt_tensor *x, int spatial, int64_t k)
{
    mt_tensor *view = every_kth(x, spatial, k, NULL);
    mt_tensor *y = view ? mt_new_tensor(mt_device_of(x), x->dtype, view->ndim, view->shape) : NULL;
    if (y && strided_copy(op, y, view) != MT_OK) {
        mt_free(y);
        y = NULL;
    }
    mt_free(view);
    return y;
}

/* zeros of x's shape with the last `spatial` dims of sizes out[], and x at every k-th position. */
static mt_tensor *upsample_raw(const char *op, mt_tensor *x, int spatial, int64_t k, const int64_t *out)
{
    int64_t shape[MT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    for (int s = 0; s < spatial; s++) shape[x->ndim - spatial + s] = out[s];
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, shape);
    if (y && mt_zero_(y) != MT_OK) {
        mt_free(y);
        return NULL;
    }
    int64_t n_sel[2];
    for (int s = 0; s < spatial; s++) n_sel[s] = x->shape[x->ndim - spatial + s];
    mt_tensor *view = y ? every_kth(y, spatial, k, n_sel) : NULL;
    if (y && (!view || strided_copy(op, view, x) != MT_OK)) {
        mt_free(y);
        y = NULL;
    }
    mt_free(view);
    return y;
}

/* ints[0] = spatial, ints[1] = k, ints[2..3] = the sizes of the last spatial
   dims of the input (downsample: what its backward restores) */
static mt_status upsample_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = downsample_raw(node->op->name, g, (int)node->ints[0], node->ints[1]);
    return grads[0] ? MT_OK : mt_last_status();
}

static mt_tensor *upsample_jvp(mt_node *node, mt_tensor *const *t)
{
    int spatial = (int)node->ints[0];
    int64_t out[2];
    for (int s = 0; s < spatial; s++) out[s] = node->output->shape[node->output->ndim - spatial + s];
    return upsample_raw(node->op->name, t[0], spatial, node->ints[1], out);
}

static mt_status downsample_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = upsample_raw(node->op->name, g, (int)node->ints[0], node->ints[1], &node->ints[2]);
    return grads[0] ? MT_OK : mt_last_status();
}

static mt_tensor *downsample_jvp(mt_node *node, mt_tensor *const *t)
{
    return downsample_raw(node->op->name, t[0], (int)node->ints[0], node->ints[1]);
}

MT_OP_DEF(upsample1d_op, "upsample1d", upsample_vjp, upsample_jvp);
MT_OP_DEF(upsample2d_op, "upsample2d", upsample_vjp, upsample_jvp);
MT_OP_DEF(downsample1d_op, "downsample1d", downsample_vjp, downsample_jvp);
MT_OP_DEF(downsample2d_op, "downsample2d", downsample_vjp, downsample_jvp);

/* x of spatial + 1 or + 2 dims, non-empty but for the batch, and k >= 1. */
static bool check_resample(const char *op, const mt_tensor *x, int spatial, int64_t k)
{
    if (!mt_check_float(op, x)) return false;
    char s[128];
    bool shape_ok = x->ndim == spatial + 1 || x->ndim == spatial + 2;
    for (int d = x->ndim == spatial + 2 ? 1 : 0; shape_ok && d < x->ndim; d++) shape_ok = x->shape[d] > 0;
    if (!shape_ok) {
        mt_set_error(MT_ERR_SHAPE, "%s: input %s must be %s with non-empty dims other than the batch", op,
                     mt_shape_str(x, s, sizeof s), spatial == 1 ? "(N, C, W) or (C, W)" : "(N, C, H, W) or (C, H, W)");
        return false;
    }
    if (k < 1) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: the factor must be >= 1, got %" PRId64 " (input %s)", op, k,
                     mt_shape_str(x, s, sizeof s));
        return false;
    }
    return true;
}

static mt_tensor *resample(const mt_op_def *op, mt_tensor *x, int spatial, int64_t k, bool up)
{
    if (!check_resample(op->name, x, spatial, k)) return NULL;
    int64_t in[2], out[2];
    for (int s = 0; s < spatial; s++) {
        in[s] = x->shape[x->ndim - spatial + s];
        out[s] = k * (in[s] - 1) + 1;
    }
    mt_tensor *y = up ? upsample_raw(op->name, x, spatial, k, out) : downsample_raw(op->name, x, spatial, k);
    mt_node *node = y ? mt_node_new(op, y, 1, &x) : NULL;
    if (node) {
        node->ints[0] = spatial;
        node->ints[1] = k;
        for (int s = 0; s < spatial; s++) node->ints[2 + s] = in[s];
    }
    return y ? mt_node_commit(node, y) : NULL;
}

mt_tensor *mt_upsample1d(mt_tensor *x, int64_t factor) { return resample(&upsample1d_op, x, 1, factor, true); }
mt_tensor *mt_upsample2d(mt_tensor *x, int64_t factor) { return resample(&upsample2d_op, x, 2, factor, true); }
mt_tensor *mt_downsample1d(mt_tensor *x, int64_t factor) { return resample(&downsample1d_op, x, 1, factor, false); }
mt_tensor *mt_downsample2d(mt_tensor *x, int64_t factor) { return resample(&downsample2d_op, x, 2, factor, false); }

/* ---------------------------------------------------------------- interpolate */
MT_OP_DEF(upsample_nearest1d_op, "upsample_nearest1d", pool_linear_vjp, pool_linear_jvp);
MT_OP_DEF(upsample_nearest2d_op, "upsample_nearest2d", pool_linear_vjp, pool_linear_jvp);
MT_OP_DEF(upsample_linear1d_op, "upsample_linear1d", pool_linear_vjp, pool_linear_jvp);
MT_OP_DEF(upsample_bilinear2d_op, "upsample_bilinear2d", pool_linear_vjp, pool_linear_jvp);

mt_tensor *mt_interpolate(mt_tensor *x, mt_interpolate_opts o)
{
    const char *name = "interpolate";
    if (!mt_check_float(name, x)) return NULL;
    char s[128];
    mt_shape_str(x, s, sizeof s);
    if (x->ndim != 3 && x->ndim != 4)
        return MT_FAIL(MT_ERR_SHAPE, "interpolate: input %s must be (N, C, W) or (N, C, H, W)", s);
    for (int d = 1; d < x->ndim; d++)
        if (x->shape[d] <= 0)
            return MT_FAIL(MT_ERR_SHAPE, "interpolate: input %s must have non-empty dims other than the batch", s);
    int spatial = x->ndim - 2;
    if (o.mode != MT_INTERP_NEAREST && o.mode != MT_INTERP_LINEAR && o.mode != MT_INTERP_BILINEAR)
        return MT_FAIL(MT_ERR_ARGUMENT, "interpolate: unknown mode %d", (int)o.mode);
    if (o.mode == MT_INTERP_LINEAR && spatial != 1)
        return MT_FAIL(MT_ERR_SHAPE, "interpolate: mode linear needs a 3-d (N, C, W) input, got %s (bilinear is for 4-d)", s);
    if (o.mode == MT_INTERP_BILINEAR && spatial != 2)
        return MT_FAIL(MT_ERR_SHAPE, "interpolate: mode bilinear needs a 4-d (N, C, H, W) input, got %s (linear is for 3-d)", s);
    if (o.mode == MT_INTERP_NEAREST && o.align_corners)
        return MT_FAIL(MT_ERR_ARGUMENT, "interpolate: align_corners can only be set with the interpolating modes "
                       "linear and bilinear, not nearest");
    bool has_size = false, has_scale = false;
    for (int a = 0; a < spatial; a++) {
        has_size = has_size || o.size[a] != 0;
        has_scale = has_scale || o.scale_factor[a] != 0;
    }
    if (has_size == has_scale)
        return MT_FAIL(MT_ERR_ARGUMENT, "interpolate: give either size or scale_factor (%s), for input %s",
                       has_size ? "not both" : "neither was given", s);
    int64_t in[2], out[2];
    double scale[2] = { 0, 0 };   /* 0: none, the kernel's scale is in / out */
    for (int a = 0; a < spatial; a++) {
        in[a] = x->shape[2 + a];
        if (has_size) {
            if (o.size[a] <= 0)
                return MT_FAIL(MT_ERR_ARGUMENT, "interpolate: size[%d] must be positive, got %" PRId64 " (input %s)", a,
                               o.size[a], s);
            out[a] = o.size[a];
        } else {
            if (!(o.scale_factor[a] > 0) || !isfinite(o.scale_factor[a]))
                return MT_FAIL(MT_ERR_ARGUMENT, "interpolate: scale_factor[%d] must be positive and finite, got %g "
                               "(input %s)", a, o.scale_factor[a], s);
            double n = floor((double)in[a] * o.scale_factor[a]);
            if (!(n >= 1) || n > 9.0e15)
                return MT_FAIL(MT_ERR_ARGUMENT, "interpolate: scale_factor[%d] = %g gives an output size of %g along "
                               "dim %d of input %s", a, o.scale_factor[a], n, 2 + a, s);
            out[a] = (int64_t)n;
            scale[a] = o.scale_factor[a];
        }
    }
    const mt_op_def *op = o.mode == MT_INTERP_BILINEAR ? &upsample_bilinear2d_op
                        : o.mode == MT_INTERP_LINEAR   ? &upsample_linear1d_op
                        : spatial == 1                 ? &upsample_nearest1d_op
                                                       : &upsample_nearest2d_op;
    /* axes[0] is H (the identity for 3-d), axes[1] is W */
    pool_axis axes[2] = { 0 };
    bool ok = true;
    for (int a = 0; a < 2 && ok; a++) {
        int k = spatial == 2 ? a : 0;   /* the spatial entry of axis a */
        if (spatial == 1 && a == 0) ok = pool_axis_identity(op->name, &axes[0]);
        else if (o.mode == MT_INTERP_NEAREST) ok = pool_axis_nearest(op->name, &axes[a], in[k], out[k], scale[k]);
        else ok = pool_axis_linear(op->name, &axes[a], in[k], out[k], o.align_corners, scale[k], x->dtype);
    }
    if (!ok) {
        pool_axis_free(&axes[0]);
        pool_axis_free(&axes[1]);
        return NULL;
    }
    return pool_linear_apply(op, x, spatial, axes, false);
}
