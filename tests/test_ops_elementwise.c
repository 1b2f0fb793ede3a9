/*
 * test_ops_elementwise.c - harness cases for arithmetic, unary maths,
 * activations and where, on broadcast, size-1, 0-d and odd shapes.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- binary */
typedef double (*binary_fn)(double, double);
static double f_add(double a, double b) { return a + b; }
static double f_sub(double a, double b) { return a - b; }
static double f_mul(double a, double b) { return a * b; }
static double f_div(double a, double b) { return a / b; }
static double f_pow(double a, double b) { return pow(a, b); }
static double f_max(double a, double b) { return a > b ? a : b; }
static double f_min(double a, double b) { return a < b ? a : b; }

static void ref_binary(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    binary_fn f = (binary_fn)c->params;
    int ndim;
    int64_t shape[MT_MAX_DIMS], idx[MT_MAX_DIMS] = { 0 };
    ref_broadcast_shape(&in[0], &in[1], &ndim, shape);
    ref_alloc(out, ndim, shape);
    int64_t k = 0;
    if (ref_numel(out) == 0) return;
    do {
        out->data[k++] = f(in[0].data[ref_broadcast_offset(&in[0], ndim, idx)],
                           in[1].data[ref_broadcast_offset(&in[1], ndim, idx)]);
    } while (ref_next_index(ndim, shape, idx));
}

static mt_tensor *run_binary(const mt_op_case *c, mt_tensor *const *in)
{
    binary_fn f = (binary_fn)c->params;
    if (f == f_add) return mt_add(in[0], in[1]);
    if (f == f_sub) return mt_sub(in[0], in[1]);
    if (f == f_mul) return mt_mul(in[0], in[1]);
    if (f == f_div) return mt_div(in[0], in[1]);
    if (f == f_pow) return mt_pow(in[0], in[1]);
    if (f == f_max) return mt_maximum(in[0], in[1]);
    return mt_minimum(in[0], in[1]);
}

#define BINARY_CASE(NAME, FN, SPEC_A, SPEC_B)                                            \
    Test(ops_binary, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {            \
        mt_op_case c = { .name = #NAME, .n_inputs = 2, .inputs = { SPEC_A, SPEC_B },      \
                         .run = run_binary, .reference = ref_binary, .params = (const void *)FN }; \
        mt_check_op(&c);                                                                 \
    }

BINARY_CASE(add_same, f_add, MT_SPEC(-2, 2, 3, 5), MT_SPEC(-2, 2, 3, 5))
BINARY_CASE(add_broadcast_row, f_add, MT_SPEC(-2, 2, 4, 7), MT_SPEC(-2, 2, 7))
BINARY_CASE(add_broadcast_both, f_add, MT_SPEC(-2, 2, 3, 1, 5), MT_SPEC(-2, 2, 4, 1))
BINARY_CASE(add_scalar_tensor, f_add, MT_SPEC(-2, 2, 2, 3), MT_SPEC0(-2, 2))
BINARY_CASE(sub_broadcast, f_sub, MT_SPEC(-2, 2, 1, 6), MT_SPEC(-2, 2, 5, 1))
BINARY_CASE(mul_broadcast, f_mul, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-2, 2, 3, 1))
BINARY_CASE(mul_odd, f_mul, MT_SPEC(-2, 2, 17), MT_SPEC(-2, 2, 17))
BINARY_CASE(div_broadcast, f_div, MT_SPEC(-2, 2, 3, 4), MT_SPEC(0.5, 2, 4))
BINARY_CASE(pow_positive_base, f_pow, MT_SPEC(0.5, 2, 3, 4), MT_SPEC(-1.5, 1.5, 3, 4))
BINARY_CASE(maximum_broadcast, f_max, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 1, 4))
BINARY_CASE(minimum_same, f_min, MT_SPEC(-2, 2, 5, 3), MT_SPEC(-2, 2, 5, 3))

/* ---------------------------------------------------------------- unary */
typedef struct unary_case { double (*f)(double, const double *); mt_tensor *(*run)(mt_tensor *, const double *); double p[2]; } unary_case;

static void ref_unary(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const unary_case *u = c->params;
    ref_alloc(out, in[0].ndim, in[0].shape);
    for (int64_t k = 0; k < ref_numel(out); k++) out->data[k] = u->f(in[0].data[k], u->p);
}
static mt_tensor *run_unary(const mt_op_case *c, mt_tensor *const *in)
{
    const unary_case *u = c->params;
    return u->run(in[0], u->p);
}

static double r_neg(double x, const double *p) { (void)p; return -x; }
static double r_exp(double x, const double *p) { (void)p; return exp(x); }
static double r_log(double x, const double *p) { (void)p; return log(x); }
static double r_sqrt(double x, const double *p) { (void)p; return sqrt(x); }
static double r_abs(double x, const double *p) { (void)p; return fabs(x); }
static double r_pow_scalar(double x, const double *p) { return pow(x, p[0]); }
static double r_clamp(double x, const double *p) { return x < p[0] ? p[0] : x > p[1] ? p[1] : x; }
static double r_add_scalar(double x, const double *p) { return x + p[0]; }
static double r_mul_scalar(double x, const double *p) { return x * p[0]; }
static double r_sigmoid(double x, const double *p) { (void)p; return 1 / (1 + exp(-x)); }
static double r_tanh(double x, const double *p) { (void)p; return tanh(x); }
static double r_relu(double x, const double *p) { (void)p; return x > 0 ? x : 0; }
static double r_leaky(double x, const double *p) { return x > 0 ? x : p[0] * x; }
static double r_elu(double x, const double *p) { return x > 0 ? x : p[0] * (exp(x) - 1); }
static double r_gelu_erf(double x, const double *p) { (void)p; return 0.5 * x * (1 + erf(x / sqrt(2))); }
static double r_gelu_tanh(double x, const double *p)
{
    (void)p;
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double r_silu(double x, const double *p) { (void)p; return x / (1 + exp(-x)); }
static double r_softplus(double x, const double *p) { return p[0] * x > p[1] ? x : log1p(exp(p[0] * x)) / p[0]; }
static double r_identity(double x, const double *p) { (void)p; return x; }

static mt_tensor *e_neg(mt_tensor *x, const double *p) { (void)p; return mt_neg(x); }
static mt_tensor *e_exp(mt_tensor *x, const double *p) { (void)p; return mt_exp(x); }
static mt_tensor *e_log(mt_tensor *x, const double *p) { (void)p; return mt_log(x); }
static mt_tensor *e_sqrt(mt_tensor *x, const double *p) { (void)p; return mt_sqrt(x); }
static mt_tensor *e_abs(mt_tensor *x, const double *p) { (void)p; return mt_abs(x); }
static mt_tensor *e_pow_scalar(mt_tensor *x, const double *p) { return mt_pow_scalar(x, p[0]); }
static mt_tensor *e_clamp(mt_tensor *x, const double *p) { return mt_clamp(x, p[0], p[1]); }
static mt_tensor *e_add_scalar(mt_tensor *x, const double *p) { return mt_add_scalar(x, p[0]); }
static mt_tensor *e_mul_scalar(mt_tensor *x, const double *p) { return mt_mul_scalar(x, p[0]); }
static mt_tensor *e_sigmoid(mt_tensor *x, const double *p) { (void)p; return mt_sigmoid(x); }
static mt_tensor *e_tanh(mt_tensor *x, const double *p) { (void)p; return mt_tanh(x); }
static mt_tensor *e_relu(mt_tensor *x, const double *p) { (void)p; return mt_relu(x); }
static mt_tensor *e_leaky(mt_tensor *x, const double *p) { return mt_leaky_relu(x, p[0]); }
static mt_tensor *e_elu(mt_tensor *x, const double *p) { return mt_elu(x, p[0]); }
static mt_tensor *e_gelu_erf(mt_tensor *x, const double *p) { (void)p; return mt_gelu(x, MT_GELU_ERF); }
static mt_tensor *e_gelu_tanh(mt_tensor *x, const double *p) { (void)p; return mt_gelu(x, MT_GELU_TANH); }
static mt_tensor *e_silu(mt_tensor *x, const double *p) { (void)p; return mt_silu(x); }
static mt_tensor *e_softplus(mt_tensor *x, const double *p) { return mt_softplus(x, p[0], p[1]); }
static mt_tensor *e_identity(mt_tensor *x, const double *p) { (void)p; return mt_identity(x); }

#define UNARY_CASE(NAME, REF, RUN, P0, P1, SPEC)                                         \
    Test(ops_unary, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const unary_case u = { REF, RUN, { P0, P1 } };                            \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC },               \
                         .run = run_unary, .reference = ref_unary, .params = &u };        \
        mt_check_op(&c);                                                                 \
    }

/* Kinks (relu, abs, clamp, leaky, elu at 0) are avoided by keeping |x| >= 0.1:
   a value range of [0.1, 2] on one case and [-2, -0.1] on another. */
UNARY_CASE(neg, r_neg, e_neg, 0, 0, MT_SPEC(-2, 2, 3, 4))
UNARY_CASE(exp, r_exp, e_exp, 0, 0, MT_SPEC(-2, 2, 2, 3, 5))
UNARY_CASE(log, r_log, e_log, 0, 0, MT_SPEC(0.2, 3, 7))
UNARY_CASE(sqrt, r_sqrt, e_sqrt, 0, 0, MT_SPEC(0.2, 3, 4, 1))
UNARY_CASE(abs_positive, r_abs, e_abs, 0, 0, MT_SPEC(0.1, 2, 6))
UNARY_CASE(abs_negative, r_abs, e_abs, 0, 0, MT_SPEC(-2, -0.1, 6))
UNARY_CASE(pow_scalar, r_pow_scalar, e_pow_scalar, 2.5, 0, MT_SPEC(0.2, 2, 3, 3))
UNARY_CASE(clamp_inside, r_clamp, e_clamp, -5, 5, MT_SPEC(-2, 2, 4))
UNARY_CASE(clamp_above, r_clamp, e_clamp, -3, -2.5, MT_SPEC(-2, 2, 4))
UNARY_CASE(add_scalar, r_add_scalar, e_add_scalar, 1.5, 0, MT_SPEC(-2, 2, 2, 2))
UNARY_CASE(mul_scalar, r_mul_scalar, e_mul_scalar, -0.75, 0, MT_SPEC0(-2, 2))
UNARY_CASE(identity, r_identity, e_identity, 0, 0, MT_SPEC(-2, 2, 5))
UNARY_CASE(sigmoid, r_sigmoid, e_sigmoid, 0, 0, MT_SPEC(-4, 4, 3, 7))
UNARY_CASE(tanh, r_tanh, e_tanh, 0, 0, MT_SPEC(-3, 3, 9))
UNARY_CASE(relu_positive, r_relu, e_relu, 0, 0, MT_SPEC(0.1, 2, 5))
UNARY_CASE(relu_negative, r_relu, e_relu, 0, 0, MT_SPEC(-2, -0.1, 5))
UNARY_CASE(leaky_relu, r_leaky, e_leaky, 0.01, 0, MT_SPEC(-2, -0.1, 4, 3))
UNARY_CASE(elu_negative, r_elu, e_elu, 1.3, 0, MT_SPEC(-2, -0.1, 4, 3))
UNARY_CASE(elu_positive, r_elu, e_elu, 1.3, 0, MT_SPEC(0.1, 2, 4, 3))
UNARY_CASE(gelu_erf, r_gelu_erf, e_gelu_erf, 0, 0, MT_SPEC(-3, 3, 2, 9))
UNARY_CASE(gelu_tanh, r_gelu_tanh, e_gelu_tanh, 0, 0, MT_SPEC(-3, 3, 2, 9))
UNARY_CASE(silu, r_silu, e_silu, 0, 0, MT_SPEC(-4, 4, 11))
UNARY_CASE(softplus, r_softplus, e_softplus, 1, 20, MT_SPEC(-3, 3, 3, 4))
UNARY_CASE(softplus_beta_threshold, r_softplus, e_softplus, 2, 3, MT_SPEC(-1, 1, 3, 4))

/* ---------------------------------------------------------------- swish with a learnable beta */
/* x * sigmoid(beta x): both x and the scalar beta are differentiated. */
static void ref_swish(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    double beta = in[1].data[0];
    ref_alloc(out, in[0].ndim, in[0].shape);
    for (int64_t k = 0; k < ref_numel(out); k++) {
        double x = in[0].data[k];
        out->data[k] = x / (1 + exp(-beta * x));
    }
}
static mt_tensor *run_swish(const mt_op_case *c, mt_tensor *const *in) { (void)c; return mt_swish(in[0], in[1]); }

Test(ops_unary, swish_learnable_beta, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_op_case c = { .name = "swish", .n_inputs = 2, .inputs = { MT_SPEC(-3, 3, 3, 5), MT_SPEC(0.5, 2, 1) },
                     .run = run_swish, .reference = ref_swish };
    mt_check_op(&c);
}

Test(ops_unary, swish_beta_must_be_a_scalar, .init = mt_test_setup, .fini = mt_test_teardown)
{
    cr_assert_null(mt_swish(mt_zeros(MT_F32, MT_SHAPE(3)), mt_ones(MT_F32, MT_SHAPE(2))));
    cr_assert(strstr(mt_last_error(), "swish") && strstr(mt_last_error(), "[2]"), "%s", mt_last_error());
}
