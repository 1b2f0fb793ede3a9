/*
 * op_conv.c - convolutions: conv1d, conv2d and their transposes.
 *
 * Three primitives, each bilinear in its two inputs, over one geometry
 * (mt_conv2d_geometry, kernels/kernels.h; conv1d is a conv2d with height 1):
 *
 *   conv          y  = conv(x, w) (+ b)      x [N, Ci, H, W], w [Co, Ci/G, kH, kW] -> y [N, Co, oH, oW]
 *   conv_input    dx = conv_input(dy, w)     the adjoint of conv in x: <conv(x, w), dy> = <x, conv_input(dy, w)>
 *   conv_weight   dw = conv_weight(x, dy)    the adjoint of conv in w: <conv(x, w), dy> = <w, conv_weight(x, dy)>
 *
 * conv_input is the transposed convolution. Because each is the adjoint of
 * conv in one argument, the three close under differentiation, so every
 * order of derivative exists (a gradient penalty, a Hessian-vector product):
 *
 *   conv:         vjp  gx = conv_input(g, w),   gw = conv_weight(x, g),   gb = sum_{n,h,w} g
 *                 jvp  conv(tx, w) + conv(x, tw) + tb
 *   conv_input:   vjp  gdy = conv(g, w),        gw = conv_weight(g, dy)
 *                 jvp  conv_input(tdy, w) + conv_input(dy, tw)
 *   conv_weight:  vjp  gx = conv_input(dy, g),  gdy = conv(x, g)
 *                 jvp  conv_weight(tx, dy) + conv_weight(x, tdy)
 *
 * Each node keeps the geometry (all of it but the batch size) in its ints.
 */
#include "engine/internal.h"
#include "mytorch/conv.h"

#include <string.h>

/* ---------------------------------------------------------------- the geometry on a node */
enum { GEOMETRY_INTS = 15 };

static void geometry_save(int64_t *ints, const mt_conv2d_geometry *g)
{
    const int64_t v[GEOMETRY_INTS] = { g->c_in, g->h, g->w, g->c_out, g->kh, g->kw, g->out_h, g->out_w,
                                       g->stride_h, g->stride_w, g->pad_h, g->pad_w, g->dilation_h,
                                       g->dilation_w, g->groups };
    memcpy(ints, v, sizeof v);
}

static mt_conv2d_geometry geometry_load(const int64_t *v, int64_t n)
{
    return (mt_conv2d_geometry){ .n = n, .c_in = v[0], .h = v[1], .w = v[2], .c_out = v[3], .kh = v[4],
                                 .kw = v[5], .out_h = v[6], .out_w = v[7], .stride_h = v[8], .stride_w = v[9],
                                 .pad_h = v[10], .pad_w = v[11], .dilation_h = v[12], .dilation_w = v[13],
                                 .groups = v[14] };
}

static mt_tensor *conv(mt_tensor *x, mt_tensor *w, mt_tensor *b, const mt_conv2d_geometry *g);
static mt_tensor *conv_input(mt_tensor *dy, mt_tensor *w, const mt_conv2d_geometry *g);
static mt_tensor *conv_weight(mt_tensor *x, mt_tensor *dy, const mt_conv2d_geometry *g);

static mt_tensor *sum2(mt_tensor *a, mt_tensor *b) { return a && b ? mt_add(a, b) : a ? a : b; }

/* Runs the kernel into a new tensor of shape; the inputs are made contiguous first. */
#define CONV_RUN(op, out_shape, entry, a, b_, ...)                                                          \
    do {                                                                                                     \
        mt_tensor *ac_ = mt_contiguous(a), *bc_ = mt_contiguous(b_);                                         \
        out = ac_ && bc_ ? mt_new_tensor(mt_device_of(a), (a)->dtype, 4, out_shape) : NULL;                  \
        if (out && mt_run_kernel(op, a, entry, (a)->dtype, __VA_ARGS__) != MT_OK) { mt_free(out); out = NULL; } \
        mt_free_temp(ac_, a);                                                                                \
        mt_free_temp(bc_, b_);                                                                               \
    } while (0)

/* ---------------------------------------------------------------- conv */
/* inputs x, w, b (optional) */
static mt_status conv_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *x = node->inputs[0], *w = node->inputs[1];
    mt_conv2d_geometry geo = geometry_load(node->ints, x->shape[0]);
    if (mt_node_needs_grad(node, 0) && !(grads[0] = conv_input(g, w, &geo))) return mt_last_status();
    if (mt_node_needs_grad(node, 1) && !(grads[1] = conv_weight(x, g, &geo))) return mt_last_status();
    if (node->n_inputs > 2 && mt_node_needs_grad(node, 2) && !(grads[2] = mt_sum(g, 3, (int[]){ 0, 2, 3 }, false)))
        return mt_last_status();
    return MT_OK;
}

static mt_tensor *conv_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *x = node->inputs[0], *w = node->inputs[1];
    mt_conv2d_geometry geo = geometry_load(node->ints, x->shape[0]);
    mt_tensor *r = t[0] ? conv(t[0], w, NULL, &geo) : NULL;
    if (t[1]) r = sum2(r, conv(x, t[1], NULL, &geo));
    if (node->n_inputs > 2 && t[2]) {
        mt_tensor *tb = mt_expand(mt_reshape(t[2], 4, (int64_t[]){ 1, geo.c_out, 1, 1 }), 4, node->output->shape);
        r = r ? mt_add(r, tb) : mt_contiguous(tb);
    }
    return r;
}

MT_OP_DEF(conv_op, "conv2d", conv_vjp, conv_jvp);

static mt_tensor *conv(mt_tensor *x, mt_tensor *w, mt_tensor *b, const mt_conv2d_geometry *g)
{
    if (!x || !w) return NULL;
    mt_conv2d_geometry geo = *g;
    geo.n = x->shape[0];
    mt_tensor *out, *bc = b ? mt_contiguous(b) : NULL;
    if (b && !bc) return NULL;
    CONV_RUN("conv2d", ((int64_t[]){ geo.n, geo.c_out, geo.out_h, geo.out_w }), conv2d_forward, x, w, &geo,
             mt_ptr(ac_), mt_ptr(bc_), bc ? mt_ptr(bc) : NULL, mt_ptr(out));
    if (bc) mt_free_temp(bc, b);
    if (!out) return NULL;
    mt_tensor *ins[3] = { x, w, b };
    mt_node *node = mt_node_new(&conv_op, out, b ? 3 : 2, ins);
    if (node) geometry_save(node->ints, &geo);
    return mt_node_commit(node, out);
}

/* ---------------------------------------------------------------- conv_input (the transposed convolution) */
/* inputs dy, w */
static mt_status conv_input_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *dy = node->inputs[0], *w = node->inputs[1];
    mt_conv2d_geometry geo = geometry_load(node->ints, dy->shape[0]);
    if (mt_node_needs_grad(node, 0) && !(grads[0] = conv(g, w, NULL, &geo))) return mt_last_status();
    if (mt_node_needs_grad(node, 1) && !(grads[1] = conv_weight(g, dy, &geo))) return mt_last_status();
    return MT_OK;
}

static mt_tensor *conv_input_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *dy = node->inputs[0], *w = node->inputs[1];
    mt_conv2d_geometry geo = geometry_load(node->ints, dy->shape[0]);
    mt_tensor *r = t[0] ? conv_input(t[0], w, &geo) : NULL;
    return t[1] ? sum2(r, conv_input(dy, t[1], &geo)) : r;
}

MT_OP_DEF(conv_input_op, "conv2d_input_grad", conv_input_vjp, conv_input_jvp);

static mt_tensor *conv_input(mt_tensor *dy, mt_tensor *w, const mt_conv2d_geometry *g)
{
    if (!dy || !w) return NULL;
    mt_conv2d_geometry geo = *g;
    geo.n = dy->shape[0];
    mt_tensor *out;
    CONV_RUN("conv2d_input_grad", ((int64_t[]){ geo.n, geo.c_in, geo.h, geo.w }), conv2d_backward_input, dy, w,
             &geo, mt_ptr(ac_), mt_ptr(bc_), mt_ptr(out));
    if (!out) return NULL;
    mt_tensor *ins[2] = { dy, w };
    mt_node *node = mt_node_new(&conv_input_op, out, 2, ins);
    if (node) geometry_save(node->ints, &geo);
    return mt_node_commit(node, out);
}

/* ---------------------------------------------------------------- conv_weight */
/* inputs x, dy */
static mt_status conv_weight_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *x = node->inputs[0], *dy = node->inputs[1];
    mt_conv2d_geometry geo = geometry_load(node->ints, x->shape[0]);
    if (mt_node_needs_grad(node, 0) && !(grads[0] = conv_input(dy, g, &geo))) return mt_last_status();
    if (mt_node_needs_grad(node, 1) && !(grads[1] = conv(x, g, NULL, &geo))) return mt_last_status();
    return MT_OK;
}

static mt_tensor *conv_weight_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *x = node->inputs[0], *dy = node->inputs[1];
    mt_conv2d_geometry geo = geometry_load(node->ints, x->shape[0]);
    mt_tensor *r = t[0] ? conv_weight(t[0], dy, &geo) : NULL;
    return t[1] ? sum2(r, conv_weight(x, t[1], &geo)) : r;
}

MT_OP_DEF(conv_weight_op, "conv2d_weight_grad", conv_weight_vjp, conv_weight_jvp);

static mt_tensor *conv_weight(mt_tensor *x, mt_tensor *dy, const mt_conv2d_geometry *g)
{
    if (!x || !dy) return NULL;
    mt_conv2d_geometry geo = *g;
    geo.n = x->shape[0];
    mt_tensor *out;
    CONV_RUN("conv2d_weight_grad", ((int64_t[]){ geo.c_out, geo.c_in / geo.groups, geo.kh, geo.kw }),
             conv2d_backward_weight, x, dy, &geo, mt_ptr(ac_), mt_ptr(bc_), mt_ptr(out));
    if (!out) return NULL;
    mt_tensor *ins[2] = { x, dy };
    mt_node *node = mt_node_new(&conv_weight_op, out, 2, ins);
    if (node) geometry_save(node->ints, &geo);
    return mt_node_commit(node, out);
}

/* ---------------------------------------------------------------- the public ops */

/* Checks what every convolution shares and reads the options of spatial dims
   dims (1 or 2; the 1-d ops read element [0] of each array into the width). */
static bool check_common(const char *op, int spatial, mt_tensor *x, mt_tensor *w, mt_tensor *b, const mt_conv_opts *o)
{
    if (!mt_check_float(op, x) || !mt_check_float(op, w) || (b && !mt_check_float(op, b))) return false;
    if (!mt_check_same_dtype(op, x, w) || (b && !mt_check_same_dtype(op, x, b))) return false;
    if (!mt_check_same_device(op, x, w) || (b && !mt_check_same_device(op, x, b))) return false;
    if (o->from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: options must start from MT_CONV_DEFAULTS (every field is used as given, "
                     "zero included; docs/options.md)", op);
        return false;
    }
    char sx[128], sw[128];
    if (x->ndim != spatial + 1 && x->ndim != spatial + 2) {
        mt_set_error(MT_ERR_SHAPE, "%s: input %s must be [N, C, %s] or unbatched [C, %s]", op,
                     mt_shape_str(x, sx, sizeof sx), spatial == 2 ? "H, W" : "L", spatial == 2 ? "H, W" : "L");
        return false;
    }
    if (w->ndim != spatial + 2) {
        mt_set_error(MT_ERR_SHAPE, "%s: weight %s must have %d dims", op, mt_shape_str(w, sw, sizeof sw), spatial + 2);
        return false;
    }
    if (o->groups < 1) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: groups must be >= 1, got %lld", op, (long long)o->groups);
        return false;
    }
    for (int d = 0; d < spatial; d++) {
        if (o->stride[d] < 1 || o->dilation[d] < 1 || o->padding[d] < 0) {
            mt_set_error(MT_ERR_ARGUMENT, "%s: stride and dilation must be >= 1 and padding >= 0, got stride %lld, "
                         "dilation %lld, padding %lld", op, (long long)o->stride[d], (long long)o->dilation[d],
                         (long long)o->padding[d]);
            return false;
        }
    }
    return true;
}

/* x as [N, C, H, W] (a view): unbatched inputs gain N = 1, 1-d ones H = 1. */
static mt_tensor *as_4d(mt_tensor *x, int spatial)
{
    if (x->ndim == spatial + 1) x = mt_unsqueeze(x, 0);
    if (x && spatial == 1) x = mt_unsqueeze(x, 2);
    return x;
}

/* The result back in the caller's layout (undoing as_4d). */
static mt_tensor *from_4d(mt_tensor *y, int spatial, int in_ndim)
{
    if (y && spatial == 1) y = mt_squeeze(y, 2);
    if (y && in_ndim == spatial + 1) y = mt_squeeze(y, 0);
    return y;
}

/* Options of spatial dim d in the 2-d geometry's order: (h, w) = ([0], [1])
   for 2-d; for 1-d, h is the unit dim and w reads [0]. */
#define OPT(o, field, spatial, d) ((spatial) == 2 ? (o)->field[d] : (d) == 0 ? 1 : (o)->field[0])

/* The geometry of a convolution of x4 [N, C_in, H, W] with c_out kernels of
   kh x kw under o: false with the error recorded when it has no output. */
static bool conv_geometry(const char *op, int spatial, const mt_tensor *x, const mt_tensor *x4, int64_t c_out,
                          int64_t kh, int64_t kw, const mt_conv_opts *o, mt_conv2d_geometry *g)
{
    char sx[128];
    *g = (mt_conv2d_geometry){ .n = x4->shape[0], .c_in = x4->shape[1], .h = x4->shape[2], .w = x4->shape[3],
                               .c_out = c_out, .kh = kh, .kw = kw, .groups = o->groups };
    int64_t in[2] = { g->h, g->w }, k[2] = { kh, kw }, out[2], pad[2];
    int64_t stride[2] = { OPT(o, stride, spatial, 0), OPT(o, stride, spatial, 1) };
    int64_t dil[2] = { OPT(o, dilation, spatial, 0), OPT(o, dilation, spatial, 1) };
    for (int d = 0; d < 2; d++) {
        int64_t span = dil[d] * (k[d] - 1);   /* the dilated kernel's extent, less one */
        if (o->padding_same) {
            if (stride[d] != 1) {
                mt_set_error(MT_ERR_ARGUMENT, "%s: padding 'same' needs stride 1, got %lld", op, (long long)stride[d]);
                return false;
            }
            pad[d] = span / 2;   /* the extra one of an odd span goes to the bottom/right */
            out[d] = in[d];
        } else {
            pad[d] = spatial == 2 ? o->padding[d] : d == 0 ? 0 : o->padding[0];
            if (in[d] + 2 * pad[d] - span - 1 < 0) {
                mt_set_error(MT_ERR_SHAPE, "%s: input %s with padding %lld is smaller than the dilated kernel (%lld)",
                             op, mt_shape_str(x, sx, sizeof sx), (long long)pad[d], (long long)(span + 1));
                return false;
            }
            out[d] = (in[d] + 2 * pad[d] - span - 1) / stride[d] + 1;
        }
    }
    g->out_h = out[0]; g->out_w = out[1];
    g->stride_h = stride[0]; g->stride_w = stride[1];
    g->pad_h = pad[0]; g->pad_w = pad[1];
    g->dilation_h = dil[0]; g->dilation_w = dil[1];
    return true;
}

static mt_tensor *conv_body(const char *op, int spatial, mt_tensor *x, mt_tensor *w, mt_tensor *b, mt_conv_opts o)
{
    if (!check_common(op, spatial, x, w, b, &o)) return NULL;
    char sx[128], sw[128], sb[128];
    int in_ndim = x->ndim;
    mt_tensor *x4 = as_4d(x, spatial), *w4 = spatial == 1 ? mt_unsqueeze(w, 2) : w;
    if (!x4 || !w4) return NULL;
    int64_t c_out = w4->shape[0];
    if (c_out % o.groups || x4->shape[1] != w4->shape[1] * o.groups)
        return MT_FAIL(MT_ERR_SHAPE, "%s: input %s does not fit weight %s with groups = %lld (expected C_in = "
                       "weight.shape[1] * groups and C_out divisible by groups)", op, mt_shape_str(x, sx, sizeof sx),
                       mt_shape_str(w, sw, sizeof sw), (long long)o.groups);
    if (b && (b->ndim != 1 || b->shape[0] != c_out))
        return MT_FAIL(MT_ERR_SHAPE, "%s: bias %s does not fit weight %s (expected [%lld])", op,
                       mt_shape_str(b, sb, sizeof sb), mt_shape_str(w, sw, sizeof sw), (long long)c_out);
    mt_conv2d_geometry g;
    if (!conv_geometry(op, spatial, x, x4, c_out, w4->shape[2], w4->shape[3], &o, &g)) return NULL;
    return from_4d(conv(x4, w4, b, &g), spatial, in_ndim);
}

/* torch.nn.grad.conv2d_weight: the gradient of conv2d's weight, of shape
   [C_out, C_in / groups, kh, kw], for input x and output gradient dy. */
static mt_tensor *weight_grad_body(const char *op, int spatial, mt_tensor *x, mt_tensor *dy, int64_t kh, int64_t kw,
                                   mt_conv_opts o)
{
    if (!check_common(op, spatial, x, dy, NULL, &o)) return NULL;
    char sx[128], sy[128];
    if (dy->ndim != x->ndim)
        return MT_FAIL(MT_ERR_SHAPE, "%s: input %s and output gradient %s differ in dims", op,
                       mt_shape_str(x, sx, sizeof sx), mt_shape_str(dy, sy, sizeof sy));
    mt_tensor *x4 = as_4d(x, spatial), *dy4 = as_4d(dy, spatial);
    if (!x4 || !dy4) return NULL;
    int64_t c_out = dy4->shape[1];
    if (kh < 1 || kw < 1 || c_out % o.groups || x4->shape[1] % o.groups)
        return MT_FAIL(MT_ERR_ARGUMENT, "%s: kernel %lld x %lld, %lld input and %lld output channels do not make "
                       "groups = %lld (both counts must be divisible by it)", op, (long long)kh, (long long)kw,
                       (long long)x4->shape[1], (long long)c_out, (long long)o.groups);
    mt_conv2d_geometry g;
    if (!conv_geometry(op, spatial, x, x4, c_out, spatial == 2 ? kh : 1, spatial == 2 ? kw : kh, &o, &g)) return NULL;
    if (dy4->shape[0] != g.n || dy4->shape[2] != g.out_h || dy4->shape[3] != g.out_w)
        return MT_FAIL(MT_ERR_SHAPE, "%s: output gradient %s does not match the convolution of input %s "
                       "(expected [%lld, %lld, %lld, %lld] as 2-d)", op, mt_shape_str(dy, sy, sizeof sy),
                       mt_shape_str(x, sx, sizeof sx), (long long)g.n, (long long)c_out, (long long)g.out_h,
                       (long long)g.out_w);
    mt_tensor *dw = conv_weight(x4, dy4, &g);
    return spatial == 1 && dw ? mt_squeeze(dw, 2) : dw;
}

static mt_tensor *conv_transpose_body(const char *op, int spatial, mt_tensor *x, mt_tensor *w, mt_tensor *b,
                                      mt_conv_opts o)
{
    if (!check_common(op, spatial, x, w, b, &o)) return NULL;
    char sx[128], sw[128], sb[128];
    if (o.padding_same) return MT_FAIL(MT_ERR_ARGUMENT, "%s: padding 'same' is for convolutions, not transposed ones", op);
    int in_ndim = x->ndim;
    mt_tensor *x4 = as_4d(x, spatial), *w4 = spatial == 1 ? mt_unsqueeze(w, 2) : w;
    if (!x4 || !w4) return NULL;
    /* The transposed convolution is conv_input of the convolution that maps
       its output back to its input: that one's c_in is our C_out. */
    int64_t c_in = x4->shape[1], c_out = w4->shape[1] * o.groups;
    if (w4->shape[0] != c_in || c_in % o.groups)
        return MT_FAIL(MT_ERR_SHAPE, "%s: input %s does not fit weight %s with groups = %lld (expected "
                       "weight [C_in, C_out / groups, ...] and C_in divisible by groups)", op,
                       mt_shape_str(x, sx, sizeof sx), mt_shape_str(w, sw, sizeof sw), (long long)o.groups);
    if (b && (b->ndim != 1 || b->shape[0] != c_out))
        return MT_FAIL(MT_ERR_SHAPE, "%s: bias %s does not fit weight %s (expected [%lld])", op,
                       mt_shape_str(b, sb, sizeof sb), mt_shape_str(w, sw, sizeof sw), (long long)c_out);
    mt_conv2d_geometry g = { .n = x4->shape[0], .c_in = c_out, .c_out = c_in, .kh = w4->shape[2], .kw = w4->shape[3],
                             .out_h = x4->shape[2], .out_w = x4->shape[3], .groups = o.groups };
    int64_t k[2] = { g.kh, g.kw }, in[2] = { g.out_h, g.out_w }, out[2];
    int64_t stride[2] = { OPT(&o, stride, spatial, 0), OPT(&o, stride, spatial, 1) };
    int64_t dil[2] = { OPT(&o, dilation, spatial, 0), OPT(&o, dilation, spatial, 1) };
    int64_t pad[2] = { spatial == 2 ? o.padding[0] : 0, spatial == 2 ? o.padding[1] : o.padding[0] };
    int64_t opad[2] = { spatial == 2 ? o.output_padding[0] : 0, spatial == 2 ? o.output_padding[1] : o.output_padding[0] };
    for (int d = 0; d < 2; d++) {
        if (opad[d] < 0 || (opad[d] >= stride[d] && opad[d] >= dil[d]))
            return MT_FAIL(MT_ERR_ARGUMENT, "%s: output_padding %lld must be >= 0 and smaller than the stride (%lld) "
                           "or the dilation (%lld)", op, (long long)opad[d], (long long)stride[d], (long long)dil[d]);
        out[d] = (in[d] - 1) * stride[d] - 2 * pad[d] + dil[d] * (k[d] - 1) + opad[d] + 1;
        if (out[d] < 1)
            return MT_FAIL(MT_ERR_SHAPE, "%s: input %s with padding %lld gives an empty output (size %lld)", op,
                           mt_shape_str(x, sx, sizeof sx), (long long)pad[d], (long long)out[d]);
    }
    g.h = out[0]; g.w = out[1];
    g.stride_h = stride[0]; g.stride_w = stride[1];
    g.pad_h = pad[0]; g.pad_w = pad[1];
    g.dilation_h = dil[0]; g.dilation_w = dil[1];
    mt_tensor *y = conv_input(x4, w4, &g);
    if (y && b) y = mt_add(y, mt_reshape(b, 4, (int64_t[]){ 1, c_out, 1, 1 }));
    return from_4d(y, spatial, in_ndim);
}

mt_tensor *mt_conv2d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, conv_body("conv2d", 2, x, weight, bias, opts));
}

mt_tensor *mt_conv1d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, conv_body("conv1d", 1, x, weight, bias, opts));
}

mt_tensor *mt_conv_transpose2d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, conv_transpose_body("conv_transpose2d", 2, x, weight, bias, opts));
}

mt_tensor *mt_conv_transpose1d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, conv_transpose_body("conv_transpose1d", 1, x, weight, bias, opts));
}

mt_tensor *mt_conv2d_weight_grad(mt_tensor *x, mt_tensor *grad_output, int64_t kh, int64_t kw, mt_conv_opts opts)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, weight_grad_body("conv2d_weight_grad", 2, x, grad_output, kh, kw, opts));
}

mt_tensor *mt_conv1d_weight_grad(mt_tensor *x, mt_tensor *grad_output, int64_t k, mt_conv_opts opts)
{
    mt_composite c = mt_composite_begin();
    return mt_composite_end(c, weight_grad_body("conv1d_weight_grad", 1, x, grad_output, k, 1, opts));
}
