/*
 * op_elementwise.c - arithmetic, element by element, with PyTorch's
 * broadcasting. For out = f(a, b) broadcast to a common shape:
 *
 *   op      vjp (before sum_to the input's shape)        jvp
 *   add     ga = g,            gb = g                    ta + tb
 *   sub     ga = g,            gb = -g                   ta - tb
 *   mul     ga = g b,          gb = g a                  ta b + a tb
 *   div     ga = g / b,        gb = -g out / b           (ta - tb out) / b
 *   pow     ga = g b a^(b-1),  gb = g out log a          ta b a^(b-1) + tb out log a
 *   maximum ga = g [a > b] + g/2 [a = b], gb the rest    ta ma + tb mb
 *
 * Unary functions y = f(x) share one op: vjp g f'(x), jvp t f'(x), with f'
 * from the backend's unary_backward kernel.
 */
#include "engine/internal.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */
/* t broadcast to like's shape (materialized, so that it can be a tangent). */
static mt_tensor *expand_as(mt_tensor *t, const mt_tensor *like)
{
    if (mt_same_shape(t, like)) return t;
    return mt_contiguous(mt_expand(t, like->ndim, like->shape));
}

/* out = a (kind) b with broadcasting; no autograd. */
static mt_tensor *binary_raw(const char *name, mt_binary_kind kind, mt_tensor *a, mt_tensor *b)
{
    if (!mt_check_input(name, a) || !mt_check_input(name, b)) return NULL;
    if (!mt_check_same_device(name, a, b) || !mt_check_same_dtype(name, a, b)) return NULL;
    bool arithmetic = !mt_binary_is_comparison(kind);
    if (arithmetic && (kind == MT_BINARY_DIV || kind == MT_BINARY_POW) && !mt_dtype_is_float(a->dtype))
        return MT_FAIL(MT_ERR_DTYPE, "%s: expected f32 or f64 tensors, got %s", name, mt_dtype_name(a->dtype));
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    mt_tensor *ins[2] = { a, b };
    if (!mt_broadcast_shapes(name, 2, ins, &ndim, shape)) return NULL;
    mt_tensor *out = mt_new_tensor(mt_device_of(a), arithmetic ? a->dtype : MT_BOOL, ndim, shape);
    if (!out) return NULL;
    mt_loop loop;
    mt_loop_build(&loop, out, 2, ins);
    if (mt_run_kernel(name, a, binary, kind, a->dtype, &loop, mt_ptr(out), mt_ptr(a), mt_ptr(b)) != MT_OK) {
        mt_free(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------- binary arithmetic */
static mt_status binary_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *a = node->inputs[0], *b = node->inputs[1], *out = node->output;
    mt_tensor *ga = NULL, *gb = NULL;
    bool need_a = mt_node_needs_grad(node, 0), need_b = mt_node_needs_grad(node, 1);
    switch ((mt_binary_kind)node->ints[0]) {
    case MT_BINARY_ADD: ga = g; gb = g; break;
    case MT_BINARY_SUB: ga = g; gb = need_b ? mt_neg(g) : NULL; break;
    case MT_BINARY_MUL:
        if (need_a) ga = mt_mul(g, b);
        if (need_b) gb = mt_mul(g, a);
        break;
    case MT_BINARY_DIV:
        if (need_a) ga = mt_div(g, b);
        if (need_b) gb = mt_neg(mt_div(mt_mul(g, out), b));
        break;
    case MT_BINARY_POW:
        if (need_a) ga = mt_mul(g, mt_mul(b, mt_pow(a, mt_add_scalar(b, -1))));
        if (need_b) {
            /* log a is taken as 0 where a <= 0 (there the exponent's gradient is 0 or undefined) */
            mt_tensor *pos = mt_gt(a, mt_zeros_like(a));
            mt_tensor *safe_a = mt_where(pos, a, mt_ones_like(a));
            gb = mt_mul(mt_mul(g, out), mt_log(safe_a));
        }
        break;
    case MT_BINARY_MAX: case MT_BINARY_MIN: {
        mt_binary_kind strict = node->ints[0] == MT_BINARY_MAX ? MT_BINARY_GT : MT_BINARY_LT;
        mt_tensor *a_wins = mt_to_dtype(binary_raw(node->op->name, strict, a, b), g->dtype);
        mt_tensor *tie = mt_to_dtype(binary_raw(node->op->name, MT_BINARY_EQ, a, b), g->dtype);
        mt_tensor *share_a = mt_add(a_wins, mt_mul_scalar(tie, 0.5));
        if (need_a) ga = mt_mul(g, share_a);
        if (need_b) gb = mt_mul(g, mt_add_scalar(mt_neg(share_a), 1));
        break;
    }
    default: return mt_set_error(MT_ERR_STATE, "binary vjp: unknown kind");
    }
    if (need_a) { grads[0] = mt_sum_to(ga, a->ndim, a->shape); if (!grads[0]) return mt_last_status(); }
    if (need_b) { grads[1] = mt_sum_to(gb, b->ndim, b->shape); if (!grads[1]) return mt_last_status(); }
    return MT_OK;
}

static mt_tensor *binary_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *a = node->inputs[0], *b = node->inputs[1], *out = node->output;
    mt_tensor *ta = t[0], *tb = t[1], *r = NULL;
    switch ((mt_binary_kind)node->ints[0]) {
    case MT_BINARY_ADD: r = ta && tb ? mt_add(ta, tb) : ta ? ta : tb; break;
    case MT_BINARY_SUB: r = ta && tb ? mt_sub(ta, tb) : ta ? ta : mt_neg(tb); break;
    case MT_BINARY_MUL: {
        mt_tensor *pa = ta ? mt_mul(ta, b) : NULL, *pb = tb ? mt_mul(a, tb) : NULL;
        r = pa && pb ? mt_add(pa, pb) : pa ? pa : pb;
        break;
    }
    case MT_BINARY_DIV: {
        mt_tensor *num = ta && tb ? mt_sub(ta, mt_mul(tb, out)) : ta ? ta : mt_neg(mt_mul(tb, out));
        r = mt_div(num, b);
        break;
    }
    case MT_BINARY_POW: {
        mt_tensor *pa = ta ? mt_mul(ta, mt_mul(b, mt_pow(a, mt_add_scalar(b, -1)))) : NULL;
        mt_tensor *pb = NULL;
        if (tb) {
            mt_tensor *safe_a = mt_where(mt_gt(a, mt_zeros_like(a)), a, mt_ones_like(a));
            pb = mt_mul(mt_mul(tb, out), mt_log(safe_a));
        }
        r = pa && pb ? mt_add(pa, pb) : pa ? pa : pb;
        break;
    }
    case MT_BINARY_MAX: case MT_BINARY_MIN: {
        mt_binary_kind strict = node->ints[0] == MT_BINARY_MAX ? MT_BINARY_GT : MT_BINARY_LT;
        mt_tensor *ref = ta ? ta : tb;
        mt_tensor *a_wins = mt_to_dtype(binary_raw(node->op->name, strict, a, b), ref->dtype);
        mt_tensor *tie = mt_to_dtype(binary_raw(node->op->name, MT_BINARY_EQ, a, b), ref->dtype);
        mt_tensor *share_a = mt_add(a_wins, mt_mul_scalar(tie, 0.5));
        mt_tensor *pa = ta ? mt_mul(ta, share_a) : NULL;
        mt_tensor *pb = tb ? mt_mul(tb, mt_add_scalar(mt_neg(share_a), 1)) : NULL;
        r = pa && pb ? mt_add(pa, pb) : pa ? pa : pb;
        break;
    }
    default: return MT_FAIL(MT_ERR_STATE, "binary jvp: unknown kind");
    }
    return r ? expand_as(r, out) : NULL;
}

MT_OP_DEF(add_op, "add", binary_vjp, binary_jvp);
MT_OP_DEF(sub_op, "sub", binary_vjp, binary_jvp);
MT_OP_DEF(mul_op, "mul", binary_vjp, binary_jvp);
MT_OP_DEF(div_op, "div", binary_vjp, binary_jvp);
MT_OP_DEF(pow_op, "pow", binary_vjp, binary_jvp);
MT_OP_DEF(maximum_op, "maximum", binary_vjp, binary_jvp);
MT_OP_DEF(minimum_op, "minimum", binary_vjp, binary_jvp);

static mt_tensor *binary(const mt_op_def *op, mt_binary_kind kind, mt_tensor *a, mt_tensor *b)
{
    mt_tensor *out = binary_raw(op->name, kind, a, b);
    if (!out) return NULL;
    mt_tensor *ins[2] = { a, b };
    mt_node *node = mt_node_new(op, out, 2, ins);
    if (node) node->ints[0] = kind;
    return mt_node_commit(node, out);
}

mt_tensor *mt_add(mt_tensor *a, mt_tensor *b) { return binary(&add_op, MT_BINARY_ADD, a, b); }
mt_tensor *mt_sub(mt_tensor *a, mt_tensor *b) { return binary(&sub_op, MT_BINARY_SUB, a, b); }
mt_tensor *mt_mul(mt_tensor *a, mt_tensor *b) { return binary(&mul_op, MT_BINARY_MUL, a, b); }
mt_tensor *mt_div(mt_tensor *a, mt_tensor *b) { return binary(&div_op, MT_BINARY_DIV, a, b); }
mt_tensor *mt_pow(mt_tensor *a, mt_tensor *b) { return binary(&pow_op, MT_BINARY_POW, a, b); }
mt_tensor *mt_maximum(mt_tensor *a, mt_tensor *b) { return binary(&maximum_op, MT_BINARY_MAX, a, b); }
mt_tensor *mt_minimum(mt_tensor *a, mt_tensor *b) { return binary(&minimum_op, MT_BINARY_MIN, a, b); }

/* ---------------------------------------------------------------- comparisons */
mt_tensor *mt_eq(mt_tensor *a, mt_tensor *b) { return binary_raw("eq", MT_BINARY_EQ, a, b); }
mt_tensor *mt_ne(mt_tensor *a, mt_tensor *b) { return binary_raw("ne", MT_BINARY_NE, a, b); }
mt_tensor *mt_lt(mt_tensor *a, mt_tensor *b) { return binary_raw("lt", MT_BINARY_LT, a, b); }
mt_tensor *mt_le(mt_tensor *a, mt_tensor *b) { return binary_raw("le", MT_BINARY_LE, a, b); }
mt_tensor *mt_gt(mt_tensor *a, mt_tensor *b) { return binary_raw("gt", MT_BINARY_GT, a, b); }
mt_tensor *mt_ge(mt_tensor *a, mt_tensor *b) { return binary_raw("ge", MT_BINARY_GE, a, b); }

/* ---------------------------------------------------------------- unary functions */
/* node->ints[0] = kind, node->reals[0..1] = params */
static mt_tensor *unary_derivative_times(mt_node *node, mt_tensor *v)
{
    mt_tensor *x = mt_contiguous(node->inputs[0]);
    mt_tensor *y = node->output;   /* made contiguous by unary() */
    mt_tensor *vc = mt_contiguous(v);
    if (!x || !vc) return NULL;
    mt_tensor *r = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape);
    if (!r) return NULL;
    if (mt_run_kernel(node->op->name, x, unary_backward, (mt_unary_kind)node->ints[0], x->dtype, mt_numel(x),
                      mt_ptr(x), mt_ptr(y), mt_ptr(vc), mt_ptr(r), node->reals) != MT_OK)
        return NULL;   /* vjp and jvp run in a scope of their own: r goes with it */
    return r;
}

static mt_status unary_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = unary_derivative_times(node, g);
    return grads[0] ? MT_OK : mt_last_status();
}
static mt_tensor *unary_jvp(mt_node *node, mt_tensor *const *t) { return unary_derivative_times(node, t[0]); }

#define UNARY_OP(NAME) MT_OP_DEF(NAME##_op, #NAME, unary_vjp, unary_jvp);
UNARY_OP(neg) UNARY_OP(exp) UNARY_OP(log) UNARY_OP(sqrt) UNARY_OP(abs) UNARY_OP(pow_scalar)
UNARY_OP(clamp) UNARY_OP(sigmoid) UNARY_OP(tanh) UNARY_OP(relu) UNARY_OP(leaky_relu) UNARY_OP(elu)
UNARY_OP(gelu) UNARY_OP(silu) UNARY_OP(softplus) UNARY_OP(scale)

/* Applies f elementwise (the result is contiguous) and records the op. */
mt_tensor *mt_unary(const mt_op_def *op, mt_unary_kind kind, mt_tensor *x, double p0, double p1)
{
    if (!mt_check_float(op->name, x)) return NULL;
    double params[2] = { p0, p1 };
    mt_tensor *xc = mt_contiguous(x);
    if (!xc) return NULL;
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape);
    if (!y) { mt_free_temp(xc, x); return NULL; }
    mt_status st = mt_run_kernel(op->name, x, unary, kind, x->dtype, mt_numel(x), mt_ptr(xc), mt_ptr(y), params);
    mt_free_temp(xc, x);
    if (st != MT_OK) { mt_free(y); return NULL; }
    mt_node *node = mt_node_new(op, y, 1, &x);
    if (node) {
        node->ints[0] = kind;
        node->reals[0] = p0;
        node->reals[1] = p1;
    }
    return mt_node_commit(node, y);
}

mt_tensor *mt_neg(mt_tensor *x) { return mt_unary(&neg_op, MT_UNARY_NEG, x, 0, 0); }
mt_tensor *mt_exp(mt_tensor *x) { return mt_unary(&exp_op, MT_UNARY_EXP, x, 0, 0); }
mt_tensor *mt_log(mt_tensor *x) { return mt_unary(&log_op, MT_UNARY_LOG, x, 0, 0); }
mt_tensor *mt_sqrt(mt_tensor *x) { return mt_unary(&sqrt_op, MT_UNARY_SQRT, x, 0, 0); }
mt_tensor *mt_abs(mt_tensor *x) { return mt_unary(&abs_op, MT_UNARY_ABS, x, 0, 0); }
mt_tensor *mt_pow_scalar(mt_tensor *x, double p) { return mt_unary(&pow_scalar_op, MT_UNARY_POW_SCALAR, x, p, 0); }
mt_tensor *mt_add_scalar(mt_tensor *x, double s) { return mt_unary(&scale_op, MT_UNARY_SCALE, x, 1, s); }
mt_tensor *mt_mul_scalar(mt_tensor *x, double s) { return mt_unary(&scale_op, MT_UNARY_SCALE, x, s, 0); }
mt_tensor *mt_clamp(mt_tensor *x, double lo, double hi)
{
    if (!isnan(lo) && !isnan(hi) && lo > hi) return MT_FAIL(MT_ERR_ARGUMENT, "clamp: min %g is above max %g", lo, hi);
    return mt_unary(&clamp_op, MT_UNARY_CLAMP, x, lo, hi);
}

/* ---------------------------------------------------------------- activations */
mt_tensor *mt_identity(mt_tensor *x) { return x; }
mt_tensor *mt_sigmoid(mt_tensor *x) { return mt_unary(&sigmoid_op, MT_UNARY_SIGMOID, x, 0, 0); }
mt_tensor *mt_tanh(mt_tensor *x) { return mt_unary(&tanh_op, MT_UNARY_TANH, x, 0, 0); }
mt_tensor *mt_relu(mt_tensor *x) { return mt_unary(&relu_op, MT_UNARY_RELU, x, 0, 0); }
mt_tensor *mt_leaky_relu(mt_tensor *x, double slope) { return mt_unary(&leaky_relu_op, MT_UNARY_LEAKY_RELU, x, slope, 0); }
mt_tensor *mt_elu(mt_tensor *x, double alpha) { return mt_unary(&elu_op, MT_UNARY_ELU, x, alpha, 0); }
mt_tensor *mt_gelu(mt_tensor *x, mt_gelu_approx approximate)
{
    return mt_unary(&gelu_op, approximate == MT_GELU_TANH ? MT_UNARY_GELU_TANH : MT_UNARY_GELU_ERF, x, 0, 0);
}
mt_tensor *mt_silu(mt_tensor *x) { return mt_unary(&silu_op, MT_UNARY_SILU, x, 1, 0); }
mt_tensor *mt_softplus(mt_tensor *x, double beta, double threshold)
{
    if (!(beta > 0)) return MT_FAIL(MT_ERR_ARGUMENT, "softplus: beta must be positive, got %g", beta);
    return mt_unary(&softplus_op, MT_UNARY_SOFTPLUS, x, beta, threshold);
}

/* Swish with a learnable scalar beta: x * sigmoid(beta x), composed from ops
   so that beta's gradient and tangent follow from theirs. */
static mt_tensor *swish_body(mt_tensor *x, mt_tensor *beta)
{
    if (!mt_check_float("swish", x) || !mt_check_float("swish", beta)) return NULL;
    if (mt_numel(beta) != 1) {
        char s[128];
        return MT_FAIL(MT_ERR_SHAPE, "swish: beta must have one element, got shape %s", mt_shape_str(beta, s, sizeof s));
    }
    return mt_mul(x, mt_sigmoid(mt_mul(mt_reshape(beta, 0, NULL), x)));
}

mt_tensor *mt_swish(mt_tensor *x, mt_tensor *beta)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, swish_body(x, beta));
}

/* ---------------------------------------------------------------- where */
static mt_status where_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *cond = node->inputs[0], *a = node->inputs[1], *b = node->inputs[2];
    mt_tensor *zero = mt_scalar_like(g, 0);
    if (mt_node_needs_grad(node, 1)) {
        grads[1] = mt_sum_to(mt_where(cond, g, zero), a->ndim, a->shape);
        if (!grads[1]) return mt_last_status();
    }
    if (mt_node_needs_grad(node, 2)) {
        grads[2] = mt_sum_to(mt_where(cond, zero, g), b->ndim, b->shape);
        if (!grads[2]) return mt_last_status();
    }
    return MT_OK;
}
static mt_tensor *where_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *ref = t[1] ? t[1] : t[2];
    mt_tensor *zero = mt_scalar_like(ref, 0);
    return expand_as(mt_where(node->inputs[0], t[1] ? t[1] : zero, t[2] ? t[2] : zero), node->output);
}
MT_OP_DEF(where_op, "where", where_vjp, where_jvp);

mt_tensor *mt_where(mt_tensor *cond, mt_tensor *a, mt_tensor *b)
{
    if (!mt_check_input("where", cond) || !mt_check_input("where", a) || !mt_check_input("where", b)) return NULL;
    if (cond->dtype != MT_BOOL)
        return MT_FAIL(MT_ERR_DTYPE, "where: condition must be bool, got %s", mt_dtype_name(cond->dtype));
    if (!mt_check_same_dtype("where", a, b) || !mt_check_same_device("where", a, b) ||
        !mt_check_same_device("where", cond, a))
        return NULL;
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    mt_tensor *ins[3] = { cond, a, b };
    if (!mt_broadcast_shapes("where", 3, ins, &ndim, shape)) return NULL;
    mt_tensor *out = mt_new_tensor(mt_device_of(a), a->dtype, ndim, shape);
    if (!out) return NULL;
    mt_loop loop;
    mt_loop_build(&loop, out, 3, ins);
    if (mt_run_kernel("where", a, where, a->dtype, &loop, mt_ptr(out), mt_ptr(cond), mt_ptr(a), mt_ptr(b)) != MT_OK) {
        mt_free(out);
        return NULL;
    }
    return mt_node_commit(mt_node_new(&where_op, out, 3, ins), out);
}
