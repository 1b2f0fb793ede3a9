/*
 * test_autograd_multi.c - tape nodes with several outputs, through a
 * test-only op with two differentiable outputs:
 *
 *   pair(x [R, C], y [C]) = (x * y,  sum_j x_ij^2)        shapes [R, C] and [R]
 *   vjp:  dx = g0 * y + 2 x g1[:, None],   dy = sum_i g0_ij x_ij   (a NULL g counts as zero)
 *   jvp:  t0 = tx * y + x * ty,            t1 = sum_j 2 x_ij tx_ij
 *
 * It goes through the op harness (each output's gradient alone and both
 * together against finite differences, jvp against vjp, cuda-emu against the
 * CPU) and through the tape's rules: backward from one output or from both,
 * the node run once however it is reached, an output freed while the other
 * lives on, kept outputs whose scope ended, retain_graph, mt_backward_n with
 * two roots, retain_grad on one output, and tangents on both outputs.
 */
#include "harness.h"
#include "engine/internal.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- the op */
static int pair_vjp_calls;   /* how often the node's vjp_n ran (each test is its own process) */

static mt_status pair_vjp(mt_node *node, mt_tensor *const *g, mt_tensor **grads)
{
    pair_vjp_calls++;
    mt_tensor *x = node->inputs[0], *y = node->inputs[1];
    mt_tensor *dx = NULL, *dy = NULL;
    if (g[0]) {
        dx = mt_mul(g[0], y);
        dy = mt_sum_to(mt_mul(g[0], x), y->ndim, y->shape);
    }
    if (g[1]) {
        mt_tensor *from_norm = mt_mul(mt_mul_scalar(x, 2), mt_unsqueeze(g[1], 1));
        dx = dx ? mt_add(dx, from_norm) : from_norm;
    }
    grads[0] = dx;
    grads[1] = dy;
    return (g[0] && !(dx && dy)) || (g[1] && !dx) ? mt_last_status() : MT_OK;
}

static mt_status pair_jvp(mt_node *node, mt_tensor *const *t, mt_tensor **out_tangents)
{
    mt_tensor *x = node->inputs[0], *y = node->inputs[1], *zero = mt_scalar_like(x, 0);
    mt_tensor *tx = t[0] ? t[0] : zero, *ty = t[1] ? t[1] : zero;
    out_tangents[0] = mt_add(mt_mul(tx, y), mt_mul(x, ty));
    out_tangents[1] = mt_sum(mt_mul(mt_mul_scalar(x, 2), tx), 1, (int[]){ 1 }, false);
    return out_tangents[0] && out_tangents[1] ? MT_OK : mt_last_status();
}

MT_OP_DEF_N(pair_op, { "pair", NULL, NULL }, pair_vjp, pair_jvp);

/* (x * y, sum_j x_ij^2) as one node; out0, out1 receive them (NULL on error). */
static mt_status pair(mt_tensor *x, mt_tensor *y, mt_tensor **out0, mt_tensor **out1)
{
    mt_tensor *outs[2] = { NULL, NULL };
    bool grad = mt_set_grad_enabled(false), fwd = mt_set_forward_ad_enabled(false);
    mt_tensor *square = mt_mul(x, x);
    outs[0] = mt_mul(x, y);
    outs[1] = mt_sum(square, 1, (int[]){ 1 }, false);
    mt_free(square);
    mt_set_grad_enabled(grad);
    mt_set_forward_ad_enabled(fwd);
    *out0 = *out1 = NULL;
    if (!outs[0] || !outs[1]) { mt_free(outs[0]); mt_free(outs[1]); return mt_last_status(); }
    mt_tensor *ins[2] = { x, y };
    mt_status st = mt_node_commit_n(mt_node_new_n(&pair_op, 2, ins), 2, outs);
    *out0 = outs[0];
    *out1 = outs[1];
    return st;
}

/* ---------------------------------------------------------------- through the harness */
static mt_status run_pair(const mt_op_case *c, mt_tensor *const *in, mt_tensor **out)
{
    (void)c;
    return pair(in[0], in[1], &out[0], &out[1]);
}

static void ref_pair(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    int64_t R = in[0].shape[0], C = in[0].shape[1];
    ref_alloc(&out[0], 2, in[0].shape);
    ref_alloc(&out[1], 1, &R);
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) {
            double x = in[0].data[i * C + j];
            out[0].data[i * C + j] = x * in[1].data[j];
            out[1].data[i] += x * x;
        }
}

Test(autograd_multi, pair_in_the_harness, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_op_case c = { .name = "pair", .n_inputs = 2, .inputs = { MT_SPEC(-2, 2, 3, 5), MT_SPEC(-1, 1, 5) },
                     .n_outputs = 2, .run_n = run_pair, .reference = ref_pair };
    mt_check_op(&c);
}

/* ---------------------------------------------------------------- helpers */
static mt_tensor *leaf(int ndim, const int64_t *shape, const double *data)
{
    return mt_requires_grad(mt_from_data(MT_F64, ndim, shape, data), true);
}

static const double X[6] = { 1, -2, 3, 0.5, 2, -1 }, Y[3] = { 2, -1, 0.5 };

/* x [2, 3], y [3] */
static void make_inputs(mt_tensor **x, mt_tensor **y)
{
    *x = leaf(MT_SHAPE(2, 3), X);
    *y = leaf(MT_SHAPE(3), Y);
    cr_assert(*x && *y, "%s", mt_last_error());
}

static void expect_grad(const mt_tensor *t, const double *want, int64_t n, const char *what)
{
    cr_assert_not_null(mt_grad(t), "%s has no gradient", what);
    cr_assert_eq(mt_numel(mt_grad(t)), n, "%s", what);
    double got[16];
    cr_assert_eq(mt_to_data(mt_grad(t), MT_F64, got), MT_OK);
    for (int64_t k = 0; k < n; k++) cr_expect_float_eq(got[k], want[k], 1e-12, "%s[%lld]: %g, want %g", what, (long long)k, got[k], want[k]);
}

/* dL/dx and dL/dy for L = a <1, out0> + b <1, out1>: dx = a y + 2 b x, dy = a sum_i x_i */
static void expected_grads(double a, double b, double *dx, double *dy)
{
    for (int j = 0; j < 3; j++) dy[j] = a * (X[j] + X[3 + j]);
    for (int k = 0; k < 6; k++) dx[k] = a * Y[k % 3] + 2 * b * X[k];
}

/* ---------------------------------------------------------------- the tape's rules */
Test(autograd_multi, backward_from_the_sum_of_both_outputs, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y, *out0, *out1;
    make_inputs(&x, &y);
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    cr_assert(out0->grad_fn && out0->grad_fn == out1->grad_fn, "both outputs share one node");
    cr_assert_eq(out0->grad_fn->n_outputs, 2);
    pair_vjp_calls = 0;
    cr_assert_eq(mt_backward(mt_add(mt_sum_all(out0), mt_sum_all(out1))), MT_OK, "%s", mt_last_error());
    cr_expect_eq(pair_vjp_calls, 1, "the node ran %d times", pair_vjp_calls);
    double dx[6], dy[3];
    expected_grads(1, 1, dx, dy);
    expect_grad(x, dx, 6, "x");
    expect_grad(y, dy, 3, "y");
}

Test(autograd_multi, backward_from_one_output, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y, *out0, *out1;
    make_inputs(&x, &y);
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_backward(mt_sum_all(out1)), MT_OK, "%s", mt_last_error());
    double dx[6], dy[3];
    expected_grads(0, 1, dx, dy);
    expect_grad(x, dx, 6, "x");
    cr_expect_null(mt_grad(y), "no gradient reached y through out1");

    /* and the other one, straight from the non-scalar output with a grad_output */
    mt_zero_grad(x);
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_backward_ex(out0, (mt_backward_opts){ .grad_output = mt_ones_like(out0) }), MT_OK, "%s", mt_last_error());
    expected_grads(1, 0, dx, dy);
    expect_grad(x, dx, 6, "x");
    expect_grad(y, dy, 3, "y");
}

Test(autograd_multi, a_node_reached_through_both_outputs_runs_once, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y, *out0, *out1;
    make_inputs(&x, &y);
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    /* a diamond: z = out0 * out1[:, None] uses both, and out1 is used again */
    mt_tensor *z = mt_mul(out0, mt_unsqueeze(out1, 1));
    mt_tensor *loss = mt_add(mt_sum_all(z), mt_sum_all(out1));
    pair_vjp_calls = 0;
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    cr_expect_eq(pair_vjp_calls, 1, "the node ran %d times", pair_vjp_calls);
    /* L = sum_i n_i (sum_j x_ij y_j) + sum_i n_i,  n_i = sum_j x_ij^2:
       dL/dx_ij = n_i y_j + 2 x_ij (s_i + 1),  s_i = sum_j x_ij y_j;  dL/dy_j = sum_i n_i x_ij */
    double dx[6], dy[3] = { 0 };
    for (int i = 0; i < 2; i++) {
        double n = 0, s = 0;
        for (int j = 0; j < 3; j++) { n += X[3 * i + j] * X[3 * i + j]; s += X[3 * i + j] * Y[j]; }
        for (int j = 0; j < 3; j++) { dx[3 * i + j] = n * Y[j] + 2 * X[3 * i + j] * (s + 1); dy[j] += n * X[3 * i + j]; }
    }
    expect_grad(x, dx, 6, "x");
    expect_grad(y, dy, 3, "y");
}

Test(autograd_multi, backward_n_from_two_roots, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y, *out0, *out1;
    make_inputs(&x, &y);
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    mt_tensor *roots[2] = { out0, out1 }, *seeds[2] = { mt_full(MT_F64, MT_SHAPE(2, 3), 3), mt_full(MT_F64, MT_SHAPE(2), -2) };
    pair_vjp_calls = 0;
    cr_assert_eq(mt_backward_n(2, roots, seeds, false), MT_OK, "%s", mt_last_error());
    cr_expect_eq(pair_vjp_calls, 1);
    double dx[6], dy[3];
    expected_grads(3, -2, dx, dy);
    expect_grad(x, dx, 6, "x");
    expect_grad(y, dy, 3, "y");

    /* the roots are checked one by one, and named */
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    mt_tensor *bad[2] = { out0, mt_zeros(MT_F64, MT_SHAPE(2)) };
    cr_assert_eq(mt_backward_n(2, bad, NULL, false), MT_ERR_SHAPE);   /* out0 is not a scalar */
    cr_assert(strstr(mt_last_error(), "output 0"), "%s", mt_last_error());
    mt_tensor *seeds2[2] = { mt_ones_like(out0), NULL };
    cr_assert_eq(mt_backward_n(2, bad, seeds2, false), MT_ERR_STATE);
    cr_assert(strstr(mt_last_error(), "output 1") && strstr(mt_last_error(), "does not require grad"), "%s", mt_last_error());
    cr_assert_eq(mt_backward_n(0, bad, NULL, false), MT_ERR_ARGUMENT);
}

Test(autograd_multi, retain_graph_for_the_other_output, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y, *out0, *out1;
    make_inputs(&x, &y);
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    mt_tensor *l0 = mt_sum_all(out0), *l1 = mt_sum_all(out1);
    cr_assert_eq(mt_backward_ex(l0, (mt_backward_opts){ .retain_graph = true }), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_backward(l1), MT_OK, "%s", mt_last_error());
    double dx[6], dy[3];
    expected_grads(1, 1, dx, dy);   /* the two backwards accumulate */
    expect_grad(x, dx, 6, "x");
    expect_grad(y, dy, 3, "y");

    /* without retain_graph the shared node is released by the first */
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    l0 = mt_sum_all(out0);
    l1 = mt_sum_all(out1);
    cr_assert_eq(mt_backward(l0), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_backward(l1), MT_ERR_STATE);
    cr_assert(strstr(mt_last_error(), "second time") && strstr(mt_last_error(), "pair"), "%s", mt_last_error());
}

Test(autograd_multi, retain_grad_on_one_output, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y, *out0, *out1;
    make_inputs(&x, &y);
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_retain_grad(out1), MT_OK);
    cr_assert_eq(mt_backward(mt_add(mt_sum_all(out0), mt_mul_scalar(mt_sum_all(out1), 4))), MT_OK, "%s", mt_last_error());
    expect_grad(out1, (double[]){ 4, 4 }, 2, "out1");
    cr_expect_null(mt_grad(out0), "out0 did not ask to retain its gradient");
}

/* Owned tensors (no scope): each output can go first, and the node lives
   until the last one goes (ASan checks there is no leak and no dangling use). */
Test(autograd_multi, an_output_freed_while_the_other_lives)
{
    for (int first = 0; first < 2; first++) {
        mt_tensor *x, *y, *out[2];
        make_inputs(&x, &y);
        cr_assert_eq(pair(x, y, &out[0], &out[1]), MT_OK, "%s", mt_last_error());
        mt_free(out[first]);
        mt_tensor *other = out[1 - first], *loss = mt_sum_all(other);
        cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
        double dx[6], dy[3];
        expected_grads(first == 1, first == 0, dx, dy);
        expect_grad(x, dx, 6, "x");
        if (first == 1) expect_grad(y, dy, 3, "y");
        else cr_expect_null(mt_grad(y));
        mt_free(loss);
        mt_free(other);
        mt_free(x);
        mt_free(y);
    }
    /* freed before any backward: the node goes with the second */
    mt_tensor *x, *y, *a, *b;
    make_inputs(&x, &y);
    cr_assert_eq(pair(x, y, &a, &b), MT_OK, "%s", mt_last_error());
    mt_free(b);
    mt_free(a);
    mt_free(x);
    mt_free(y);
}

Test(autograd_multi, kept_outputs_after_their_scope_ended, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y, *out0, *out1;
    make_inputs(&x, &y);
    /* one output kept: its graph is cut, and the node goes with the other */
    mt_scope s = mt_scope_begin();
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    mt_keep(out0);
    mt_scope_end(s);
    cr_assert(out0->graph_freed && !out0->grad_fn);
    cr_assert_eq(mt_backward(mt_sum_all(out0)), MT_ERR_STATE);
    cr_assert(strstr(mt_last_error(), "detach"), "%s", mt_last_error());
    mt_clear_error();
    cr_assert_eq(mt_backward(mt_sum_all(mt_mul(mt_detach(out0), x))), MT_OK, "%s", mt_last_error());
    mt_free(out0);

    /* both kept: both cut */
    s = mt_scope_begin();
    cr_assert_eq(pair(x, y, &out0, &out1), MT_OK, "%s", mt_last_error());
    mt_keep(out0);
    mt_keep(out1);
    mt_scope_end(s);
    cr_assert(out0->graph_freed && out1->graph_freed && !out0->grad_fn && !out1->grad_fn);
    cr_assert_eq(mt_backward(mt_sum_all(out1)), MT_ERR_STATE);
    mt_free(out0);
    mt_free(out1);
}

Test(autograd_multi, tangents_on_both_outputs, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_from_data(MT_F64, MT_SHAPE(2, 3), X), *y = mt_from_data(MT_F64, MT_SHAPE(3), Y);
    mt_tensor *tx = mt_full(MT_F64, MT_SHAPE(2, 3), 1), *out0, *out1;
    cr_assert_eq(pair(mt_make_dual(x, tx), y, &out0, &out1), MT_OK, "%s", mt_last_error());
    cr_assert(mt_tangent(out0) && mt_tangent(out1), "both outputs carry a tangent");
    cr_assert(!out0->grad_fn, "nothing requires grad: no tape");
    for (int64_t k = 0; k < 6; k++) {
        int64_t idx[2] = { k / 3, k % 3 };
        cr_expect_float_eq(mt_get(mt_tangent(out0), idx), Y[k % 3], 1e-12);
    }
    for (int64_t i = 0; i < 2; i++) cr_expect_float_eq(mt_get(mt_tangent(out1), &i), 2 * (X[3 * i] + X[3 * i + 1] + X[3 * i + 2]), 1e-12);
}
