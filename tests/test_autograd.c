/*
 * test_autograd.c - behaviour of the tape and of forward mode, beyond what the
 * op harness checks per op: gradient accumulation and zero_grad, retain_graph
 * and the errors of a second backward or of a graph freed by its scope,
 * no-grad blocks, detach, a tensor used twice, requires_grad on an integer
 * tensor, non-scalar outputs and explicit grad_output, retain_grad on an
 * intermediate, the mt_make_dual / mt_tangent / mt_jvp and mt_vjp APIs against
 * analytic derivatives, and a 20000-node chain (backward is not recursive).
 */
#include "harness.h"

#include <math.h>
#include <string.h>

/* A fresh f64 leaf requiring grad. */
static mt_tensor *leaf(int n, const double *values)
{
    int64_t shape[1] = { n };
    return mt_requires_grad(mt_from_data(MT_F64, 1, shape, values), true);
}

static void assert_values(const mt_tensor *t, const double *expect, int n, double tol, const char *what)
{
    cr_assert(t != NULL, "%s: tensor is NULL (%s)", what, mt_last_error());
    cr_assert_eq(mt_numel(t), n, "%s: %lld elements, expected %d", what, (long long)mt_numel(t), n);
    double got[16];
    cr_assert_eq(mt_to_data(t, MT_F64, got), MT_OK);
    for (int i = 0; i < n; i++)
        cr_assert(fabs(got[i] - expect[i]) <= tol * (1 + fabs(expect[i])), "%s[%d] = %.12g, expected %.12g", what, i,
                  got[i], expect[i]);
}

/* loss = sum(x * x) */
static mt_tensor *sum_of_squares(mt_tensor *x) { return mt_sum_all(mt_mul(x, x)); }

Test(autograd, gradients_accumulate_over_backwards, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const double xs[3] = { 1, -2, 0.5 };
    mt_tensor *x = leaf(3, xs);
    cr_assert_eq(mt_backward(sum_of_squares(x)), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ 2, -4, 1 }, 3, 1e-12, "after one backward");
    cr_assert_eq(mt_backward(sum_of_squares(x)), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ 4, -8, 2 }, 3, 1e-12, "after two backwards");
}

Test(autograd, zero_grad_clears, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 3, 4 });
    cr_assert_null(mt_grad(x), "a fresh leaf has no gradient");
    cr_assert_eq(mt_backward(sum_of_squares(x)), MT_OK, "%s", mt_last_error());
    cr_assert_not_null(mt_grad(x));
    mt_zero_grad(x);
    cr_assert_null(mt_grad(x));
    mt_zero_grad(x);   /* twice is harmless */
    cr_assert_eq(mt_backward(mt_sum_all(x)), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ 1, 1 }, 2, 1e-12, "after zero_grad and a new backward");
}

Test(autograd, retain_graph_allows_second_backward, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 1.5, -1 });
    mt_tensor *loss = mt_sum_all(mt_exp(x));
    cr_assert_eq(mt_backward_ex(loss, (mt_backward_opts){ .retain_graph = true }), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ 2 * exp(1.5), 2 * exp(-1) }, 2, 1e-12, "two backwards through one graph");
}

Test(autograd, second_backward_without_retain_fails, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 1, 2 });
    mt_tensor *loss = mt_sum_all(mt_exp(x));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    mt_status st = mt_backward(loss);
    cr_assert_eq(st, MT_ERR_STATE);
    cr_assert(strstr(mt_last_error(), "second time"), "%s", mt_last_error());
    /* the failed backward left the first gradient alone */
    assert_values(mt_grad(x), (double[]){ exp(1), exp(2) }, 2, 1e-12, "gradient after a refused backward");
}

Test(autograd, backward_after_scope_end_fails, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 1, 2 });
    mt_scope inner = mt_scope_begin();
    mt_tensor *loss = mt_keep(sum_of_squares(x));
    mt_scope_end(inner);
    cr_assert_float_eq(mt_item(loss), 5, 1e-12, "a kept tensor keeps its value");
    cr_assert_eq(mt_backward(loss), MT_ERR_STATE);
    cr_assert(strstr(mt_last_error(), "freed"), "%s", mt_last_error());
    cr_assert_null(mt_grad(x));
    mt_free(loss);
}

/* A tensor kept across steps without detaching (an RNN hidden state, say)
   must not silently become a leaf of the next step's graph. */
Test(autograd, using_a_kept_tensor_without_detach_fails, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *w = mt_requires_grad(mt_ones(MT_F64, MT_SHAPE(3)), true);
    mt_scope step1 = mt_scope_begin();
    mt_tensor *h = mt_keep(mt_mul(w, w));
    mt_scope_end(step1);

    mt_scope step2 = mt_scope_begin();
    mt_tensor *loss = mt_sum_all(mt_mul(h, w));
    cr_assert_neq(mt_backward(loss), MT_OK);
    cr_assert(strstr(mt_last_error(), "detach"), "%s", mt_last_error());
    /* detached, it is a constant of the new graph */
    loss = mt_sum_all(mt_mul(mt_detach(h), w));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    mt_scope_end(step2);
    mt_free(h);
    mt_free(w);
}

Test(autograd, no_grad_records_nothing, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 1, 2 });
    mt_tensor *y = NULL;
    cr_assert(mt_is_grad_enabled());
    MT_NO_GRAD {
        cr_assert(!mt_is_grad_enabled());
        y = mt_sum_all(mt_mul(x, x));
    }
    cr_assert(mt_is_grad_enabled(), "grad mode is restored after the block");
    cr_assert(y && !y->requires_grad && !y->grad_fn);
    cr_assert_float_eq(mt_item(y), 5, 1e-12);
    cr_assert_neq(mt_backward(y), MT_OK);
    cr_assert(strstr(mt_last_error(), "does not require grad"), "%s", mt_last_error());
    /* blocks nest: the inner one restores "off", not "on" */
    MT_NO_GRAD {
        MT_NO_GRAD { y = mt_mul(x, x); }
        cr_assert(!mt_is_grad_enabled());
    }
    cr_assert(mt_is_grad_enabled());
}

static int returns_from_inside_no_grad(void)
{
    MT_NO_GRAD {
        return mt_is_grad_enabled() ? 1 : 2;
    }
    return 0;
}

/* However an MT_NO_GRAD block is left, the previous mode comes back. */
Test(autograd, no_grad_survives_break_continue_and_return, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int runs = 0;
    MT_NO_GRAD {
        runs++;
        if (!mt_is_grad_enabled()) break;
        cr_assert_fail("not reached");
    }
    cr_assert(mt_is_grad_enabled(), "break inside MT_NO_GRAD left grad mode off");
    MT_NO_GRAD {
        runs++;
        continue;
    }
    cr_assert(mt_is_grad_enabled(), "continue inside MT_NO_GRAD left grad mode off");
    cr_assert_eq(runs, 2, "each block ran once");
    /* a break leaves the block only: the enclosing loop goes on */
    int iterations = 0;
    for (int i = 0; i < 3; i++) {
        MT_NO_GRAD { break; }
        iterations++;
    }
    cr_assert_eq(iterations, 3);
    cr_assert(mt_is_grad_enabled());
#if defined(__GNUC__)
    cr_assert_eq(returns_from_inside_no_grad(), 2);
    cr_assert(mt_is_grad_enabled(), "return from inside MT_NO_GRAD left grad mode off");
#endif
    /* off before the block stays off after it, whatever the exit */
    bool prev = mt_set_grad_enabled(false);
    MT_NO_GRAD { break; }
    cr_assert(!mt_is_grad_enabled());
    mt_set_grad_enabled(prev);
}

/* t.grad = g: shared storage, later backward passes accumulate into it; checked */
Test(autograd, set_grad_directly, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 1, 2 });
    mt_tensor *g = mt_from_data(MT_F64, MT_SHAPE(2), (double[]){ 10, 20 });
    cr_assert(mt_set_grad(x, g) == MT_OK, "%s", mt_last_error());
    cr_expect_float_eq(mt_get(mt_grad(x), (int64_t[]){ 1 }), 20, 0);
    cr_assert(mt_backward(mt_sum_all(mt_mul(x, x))) == MT_OK, "%s", mt_last_error());   /* += 2x */
    cr_expect_float_eq(mt_get(mt_grad(x), (int64_t[]){ 0 }), 12, 1e-12);
    cr_expect_float_eq(mt_get(g, (int64_t[]){ 1 }), 24, 1e-12, "the gradient shares g's storage");
    cr_expect_neq(mt_set_grad(x, mt_zeros(MT_F64, MT_SHAPE(3))), MT_OK);
    cr_expect(strstr(mt_last_error(), "does not match") != NULL, "%s", mt_last_error());
    cr_expect_neq(mt_set_grad(x, mt_zeros(MT_F32, MT_SHAPE(2))), MT_OK);
    cr_assert(mt_set_grad(x, NULL) == MT_OK);
    cr_expect_null(mt_grad(x));
}

Test(autograd, detach_cuts_the_graph, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 2, 3 });
    mt_tensor *sq = mt_mul(x, x);
    mt_tensor *frozen = mt_detach(sq);
    cr_assert(!frozen->requires_grad && !frozen->grad_fn);
    cr_assert_eq(frozen->storage, sq->storage, "detach shares storage");
    /* loss = sum(frozen * x): d/dx = frozen = x^2 (not 3 x^2) */
    cr_assert_eq(mt_backward(mt_sum_all(mt_mul(frozen, x))), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ 4, 9 }, 2, 1e-12, "gradient through a detached factor");
}

Test(autograd, tensor_used_twice, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* y = x*x + x: dy/dx = 2x + 1 (both uses of x contribute) */
    mt_tensor *x = leaf(3, (double[]){ -1, 0.25, 4 });
    mt_tensor *y = mt_add(mt_mul(x, x), x);
    cr_assert_eq(mt_backward(mt_sum_all(y)), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ -1, 1.5, 9 }, 3, 1e-12, "2x + 1");
}

Test(autograd, shared_subexpression, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* h = exp(x) feeds two branches: L = sum(h * h) + sum(h) -> dL/dx = (2h + 1) h */
    mt_tensor *x = leaf(2, (double[]){ 0.5, -0.3 });
    mt_tensor *h = mt_exp(x);
    mt_tensor *loss = mt_add(mt_sum_all(mt_mul(h, h)), mt_sum_all(h));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    double h0 = exp(0.5), h1 = exp(-0.3);
    assert_values(mt_grad(x), (double[]){ (2 * h0 + 1) * h0, (2 * h1 + 1) * h1 }, 2, 1e-12, "diamond graph");
}

Test(autograd, requires_grad_on_integer_fails, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *idx = mt_zeros(MT_I64, MT_SHAPE(3));
    cr_assert_null(mt_requires_grad(idx, true));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
    cr_assert(strstr(mt_last_error(), "i64"), "%s", mt_last_error());
    cr_assert_eq(mt_requires_grad(idx, false), idx, "turning it off is fine");
    /* a non-leaf cannot be turned off */
    mt_tensor *x = leaf(1, (double[]){ 1 });
    cr_assert_null(mt_requires_grad(mt_mul(x, x), false));
    cr_assert(strstr(mt_last_error(), "detach"), "%s", mt_last_error());
}

Test(autograd, non_scalar_backward_needs_grad_output, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_ones(MT_F64, MT_SHAPE(2, 3)), true);
    mt_tensor *y = mt_mul_scalar(x, 3);
    cr_assert_eq(mt_backward(y), MT_ERR_SHAPE);
    cr_assert(strstr(mt_last_error(), "scalar") && strstr(mt_last_error(), "[2, 3]"), "%s", mt_last_error());
    cr_assert_null(mt_grad(x));
}

Test(autograd, explicit_grad_output, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_ones(MT_F64, MT_SHAPE(2, 3)), true);
    mt_tensor *y = mt_mul_scalar(x, 3);
    mt_tensor *g = mt_from_data(MT_F64, MT_SHAPE(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    /* a grad_output of the wrong shape is refused */
    cr_assert_eq(mt_backward_ex(y, (mt_backward_opts){ .grad_output = mt_ones(MT_F64, MT_SHAPE(3, 2)) }), MT_ERR_SHAPE);
    cr_assert(strstr(mt_last_error(), "[3, 2]"), "%s", mt_last_error());
    cr_assert_eq(mt_backward_ex(y, (mt_backward_opts){ .grad_output = g }), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ 3, 6, 9, 12, 15, 18 }, 6, 1e-12, "3 * grad_output");
    /* a grad_output of another float dtype is converted */
    mt_tensor *x2 = mt_requires_grad(mt_ones(MT_F64, MT_SHAPE(2)), true);
    mt_tensor *g32 = mt_from_data(MT_F32, MT_SHAPE(2), (float[]){ 0.5f, -1 });
    cr_assert_eq(mt_backward_ex(mt_mul_scalar(x2, 2), (mt_backward_opts){ .grad_output = g32 }), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x2), (double[]){ 1, -2 }, 2, 1e-12, "f32 grad_output for an f64 output");
}

Test(autograd, backward_of_a_leaf_and_of_null, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_scalar(MT_F64, 2), true);
    cr_assert_eq(mt_backward(x), MT_OK, "%s", mt_last_error());
    cr_assert_float_eq(mt_item(mt_grad(x)), 1, 1e-12);
    cr_assert_eq(mt_backward(NULL), MT_ERR_ARGUMENT);
    cr_assert(strstr(mt_last_error(), "backward"), "%s", mt_last_error());
}

Test(autograd, retain_grad_on_intermediate, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = leaf(2, (double[]){ 1, -3 });
    mt_tensor *h = mt_mul_scalar(x, 2), *other = mt_mul_scalar(x, 5);
    cr_assert_eq(mt_retain_grad(h), MT_OK, "%s", mt_last_error());
    /* loss = sum(h * h) + sum(other): dL/dh = 2h, dL/dx = 4h + 5 = 8x + 5 */
    mt_tensor *loss = mt_add(mt_sum_all(mt_mul(h, h)), mt_sum_all(other));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(h), (double[]){ 4, -12 }, 2, 1e-12, "retained intermediate gradient");
    assert_values(mt_grad(x), (double[]){ 13, -19 }, 2, 1e-12, "leaf gradient");
    cr_assert_null(mt_grad(other), "an intermediate without retain_grad keeps no gradient");
    /* retain_grad needs a tensor on the tape */
    cr_assert_neq(mt_retain_grad(mt_ones(MT_F64, MT_SHAPE(2))), MT_OK);
}

/* ---------------------------------------------------------------- forward mode */
/* f(x) = x^3 exp(-x), f'(x) = (3x^2 - x^3) exp(-x) */
static mt_tensor *cubic_decay(mt_tensor *x) { return mt_mul(mt_pow_scalar(x, 3), mt_exp(mt_neg(x))); }
static double cubic_decay_derivative(double x) { return (3 * x * x - x * x * x) * exp(-x); }

static mt_tensor *cubic_decay_fn(void *ctx, int n, mt_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return cubic_decay(in[0]);
}

/* g(x, w) = sum(w * x^3 exp(-x)): dg/dx = w f'(x), dg/dw = f(x) */
static mt_tensor *weighted_fn(void *ctx, int n, mt_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return mt_sum_all(mt_mul(in[1], cubic_decay(in[0])));
}

Test(autograd, make_dual_and_tangent, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const double xs[3] = { 0.5, 1.5, -0.7 }, ts[3] = { 1, -2, 0.25 };
    mt_tensor *x = mt_from_data(MT_F64, MT_SHAPE(3), xs);
    mt_tensor *t = mt_from_data(MT_F64, MT_SHAPE(3), ts);
    mt_tensor *dual = mt_make_dual(x, t);
    cr_assert(dual != NULL, "%s", mt_last_error());
    cr_assert_not_null(mt_tangent(dual));
    cr_assert_null(mt_tangent(x), "the primal itself carries no tangent");
    mt_tensor *y = cubic_decay(dual);
    double expect[3];
    for (int i = 0; i < 3; i++) expect[i] = cubic_decay_derivative(xs[i]) * ts[i];
    assert_values(mt_tangent(y), expect, 3, 1e-12, "tangent of x^3 exp(-x)");
    cr_assert(!y->requires_grad, "forward mode alone records no tape");
    /* an op on a tensor without a tangent gives none */
    cr_assert_null(mt_tangent(cubic_decay(x)));
    /* mismatched shapes and dtypes are refused */
    cr_assert_null(mt_make_dual(x, mt_zeros(MT_F64, MT_SHAPE(2))));
    cr_assert_eq(mt_last_status(), MT_ERR_SHAPE);
    cr_assert_null(mt_make_dual(x, mt_zeros(MT_F32, MT_SHAPE(3))));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
}

Test(autograd, jvp_api, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const double xs[3] = { 0.5, 1.5, -0.7 }, ts[3] = { 1, -2, 0.25 }, ws[3] = { 2, -1, 0.5 };
    mt_tensor *x = mt_from_data(MT_F64, MT_SHAPE(3), xs), *t = mt_from_data(MT_F64, MT_SHAPE(3), ts);
    mt_tensor *out = NULL, *out_tangent = NULL;
    cr_assert_eq(mt_jvp(cubic_decay_fn, NULL, 1, &x, &t, &out, &out_tangent), MT_OK, "%s", mt_last_error());
    double values[3], derivs[3];
    for (int i = 0; i < 3; i++) {
        values[i] = xs[i] * xs[i] * xs[i] * exp(-xs[i]);
        derivs[i] = cubic_decay_derivative(xs[i]) * ts[i];
    }
    assert_values(out, values, 3, 1e-12, "jvp primal output");
    assert_values(out_tangent, derivs, 3, 1e-12, "jvp tangent output");

    /* two inputs, tangent on w only: J . (0, tw) = sum(tw * f(x)) */
    mt_tensor *w = mt_from_data(MT_F64, MT_SHAPE(3), ws), *tw = mt_from_data(MT_F64, MT_SHAPE(3), ts);
    mt_tensor *primals[2] = { x, w }, *tangents[2] = { NULL, tw };
    cr_assert_eq(mt_jvp(weighted_fn, NULL, 2, primals, tangents, &out, &out_tangent), MT_OK, "%s", mt_last_error());
    double expect = 0;
    for (int i = 0; i < 3; i++) expect += ts[i] * values[i];
    cr_assert_float_eq(mt_item(out_tangent), expect, 1e-12);
    /* both: add the x part */
    tangents[0] = t;
    cr_assert_eq(mt_jvp(weighted_fn, NULL, 2, primals, tangents, &out, &out_tangent), MT_OK, "%s", mt_last_error());
    for (int i = 0; i < 3; i++) expect += ws[i] * derivs[i];
    cr_assert_float_eq(mt_item(out_tangent), expect, 1e-12);
    /* no input requires grad afterwards: jvp records no tape */
    cr_assert(!x->requires_grad && !out->requires_grad);
}

Test(autograd, vjp_api, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const double xs[3] = { 0.5, 1.5, -0.7 }, ws[3] = { 2, -1, 0.5 };
    mt_tensor *x = mt_from_data(MT_F64, MT_SHAPE(3), xs), *w = mt_from_data(MT_F64, MT_SHAPE(3), ws);
    mt_tensor *primals[2] = { x, w }, *grads[2] = { NULL, NULL }, *out = NULL;
    cr_assert_eq(mt_vjp(weighted_fn, NULL, 2, primals, NULL, &out, grads), MT_OK, "%s", mt_last_error());
    double gx[3], gw[3], value = 0;
    for (int i = 0; i < 3; i++) {
        gx[i] = ws[i] * cubic_decay_derivative(xs[i]);
        gw[i] = xs[i] * xs[i] * xs[i] * exp(-xs[i]);
        value += ws[i] * gw[i];
    }
    cr_assert_float_eq(mt_item(out), value, 1e-12);
    assert_values(grads[0], gx, 3, 1e-12, "vjp d/dx");
    assert_values(grads[1], gw, 3, 1e-12, "vjp d/dw");
    cr_assert(!x->requires_grad && !mt_grad(x), "vjp leaves its inputs untouched");

    /* a non-scalar output with v: J^T v = v * f'(x) */
    const double vs[3] = { 1, 0.5, -2 };
    mt_tensor *v = mt_from_data(MT_F64, MT_SHAPE(3), vs);
    cr_assert_eq(mt_vjp(cubic_decay_fn, NULL, 1, &x, v, &out, grads), MT_OK, "%s", mt_last_error());
    double expect[3];
    for (int i = 0; i < 3; i++) expect[i] = vs[i] * cubic_decay_derivative(xs[i]);
    assert_values(grads[0], expect, 3, 1e-12, "vjp with v");
}

Test(autograd, forward_and_reverse_together, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* a dual whose primal requires grad: the tangent is propagated and the tape recorded */
    mt_tensor *x = leaf(2, (double[]){ 0.5, 1.5 });
    mt_tensor *dual = mt_make_dual(x, mt_ones(MT_F64, MT_SHAPE(2)));
    mt_tensor *y = cubic_decay(dual);
    assert_values(mt_tangent(y), (double[]){ cubic_decay_derivative(0.5), cubic_decay_derivative(1.5) }, 2, 1e-12,
                  "tangent with the tape on");
    cr_assert_eq(mt_backward(mt_sum_all(y)), MT_OK, "%s", mt_last_error());
    assert_values(mt_grad(x), (double[]){ cubic_decay_derivative(0.5), cubic_decay_derivative(1.5) }, 2, 1e-12,
                  "gradient through the dual");
}

/* ---------------------------------------------------------------- deep graphs */
Test(autograd, long_chain_is_not_recursive, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* y = x + x + ... (20001 terms): 20000 add nodes in a line, dy/dx = 20001 */
    const int n = 20000;
    mt_tensor *x = mt_requires_grad(mt_scalar(MT_F64, 0.5), true);
    mt_tensor *y = x;
    for (int i = 0; i < n; i++) {
        y = mt_add(y, x);
        cr_assert(y != NULL, "%s", mt_last_error());
    }
    cr_assert_float_eq(mt_item(y), 0.5 * (n + 1), 1e-9);
    cr_assert_eq(mt_backward(y), MT_OK, "%s", mt_last_error());
    cr_assert_float_eq(mt_item(mt_grad(x)), n + 1, 1e-9);

    /* and forward mode through the same depth */
    mt_tensor *z = mt_make_dual(mt_scalar(MT_F64, 1), mt_scalar(MT_F64, 1));
    for (int i = 0; i < n; i++) z = mt_add_scalar(z, 1);
    cr_assert_float_eq(mt_item(z), n + 1, 1e-9);
    cr_assert_float_eq(mt_item(mt_tangent(z)), 1, 1e-12);
}
