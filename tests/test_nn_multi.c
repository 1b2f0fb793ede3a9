/*
 * test_nn_multi.c - modules with several inputs and outputs (mt_forward_n,
 * mt_module_type_n), through a test-only recurrent cell with state (h, c):
 *
 *   c' = sigmoid(x W^T + h U^T) * c + tanh(x V^T),   h' = tanh(c')
 *
 * run for two steps in f64 (mt_module_to_dtype) with its parameters'
 * gradients checked against finite differences; mt_forward on it is a clear
 * error; a one-output forward_n module works through mt_forward and inside
 * Sequential; plain modules through mt_forward_n; argument errors.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

#define MT_TEST(name) Test(nn_multi, name, .init = mt_test_setup, .fini = mt_test_teardown)

/* ---------------------------------------------------------------- the cell */
typedef struct cell_impl { int64_t input, hidden; } cell_impl;

/* in: x [N, I], or x, h [N, H], c [N, H] (zero state when only x is given);
   out: h', c'. */
static mt_status cell_forward(mt_module *m, int n_in, mt_tensor *const *in, mt_tensor **out)
{
    const cell_impl *cell = m->impl;
    if (n_in != 1 && n_in != 3)
        return mt_set_error(MT_ERR_ARGUMENT, "Cell: takes x or (x, h, c), got %d inputs", n_in);
    mt_tensor *x = in[0];
    mt_tensor *h = n_in == 3 ? in[1] : mt_zeros(x->dtype, MT_SHAPE(x->shape[0], cell->hidden));
    mt_tensor *c = n_in == 3 ? in[2] : mt_zeros(x->dtype, MT_SHAPE(x->shape[0], cell->hidden));
    mt_tensor *gate = mt_sigmoid(mt_add(mt_linear(x, mt_module_param(m, "W"), NULL), mt_linear(h, mt_module_param(m, "U"), NULL)));
    out[1] = mt_add(mt_mul(gate, c), mt_tanh(mt_linear(x, mt_module_param(m, "V"), NULL)));
    out[0] = mt_tanh(out[1]);
    return out[0] && out[1] ? MT_OK : mt_last_status();
}

static const mt_module_type_n cell_type = { { "Cell", NULL, NULL, NULL }, cell_forward, 2 };

static mt_module *cell_new(int64_t input, int64_t hidden)
{
    cell_impl *impl = malloc(sizeof *impl);
    cr_assert_not_null(impl);
    *impl = (cell_impl){ input, hidden };
    mt_module *m = mt_module_new_n(&cell_type, impl);
    cr_assert_not_null(m, "%s", mt_last_error());
    mt_generator gen = mt_generator_new(3);
    cr_assert(mt_module_add_param(m, "W", mt_uniform(&gen, MT_F32, MT_SHAPE(hidden, input), -0.8, 0.8)) &&
              mt_module_add_param(m, "U", mt_uniform(&gen, MT_F32, MT_SHAPE(hidden, hidden), -0.8, 0.8)) &&
              mt_module_add_param(m, "V", mt_uniform(&gen, MT_F32, MT_SHAPE(hidden, input), -0.8, 0.8)),
              "%s", mt_last_error());
    return m;
}

/* ---------------------------------------------------------------- two steps, against finite differences */
typedef struct unroll { mt_tensor *x1, *x2, *h0, *c0, *a, *b; } unroll;

/* L = <h2, a> + <c2, b> after (h1, c1) = cell(x1, h0, c0), (h2, c2) = cell(x2, h1, c1). */
static mt_tensor *two_step_loss(mt_module *cell, const unroll *u)
{
    mt_tensor *s1[2], *s2[2];
    cr_assert_eq(mt_forward_n(cell, 3, (mt_tensor *[]){ u->x1, u->h0, u->c0 }, 2, s1), 2, "%s", mt_last_error());
    cr_assert_eq(mt_forward_n(cell, 3, (mt_tensor *[]){ u->x2, s1[0], s1[1] }, 2, s2), 2, "%s", mt_last_error());
    return mt_add(mt_sum_all(mt_mul(s2[0], u->a)), mt_sum_all(mt_mul(s2[1], u->b)));
}

MT_TEST(cell_gradients_through_two_steps)
{
    const int64_t N = 2, I = 3, H = 4;
    mt_module *cell = cell_new(I, H);
    cr_assert_eq(mt_module_to_dtype(cell, MT_F64), MT_OK, "%s", mt_last_error());
    mt_generator gen = mt_generator_new(8);
    unroll u = { mt_uniform(&gen, MT_F64, MT_SHAPE(N, I), -1, 1), mt_uniform(&gen, MT_F64, MT_SHAPE(N, I), -1, 1),
                 mt_uniform(&gen, MT_F64, MT_SHAPE(N, H), -1, 1), mt_uniform(&gen, MT_F64, MT_SHAPE(N, H), -1, 1),
                 mt_uniform(&gen, MT_F64, MT_SHAPE(N, H), -1, 1), mt_uniform(&gen, MT_F64, MT_SHAPE(N, H), -1, 1) };
    mt_requires_grad(u.h0, true);   /* the initial state's gradient too */
    cr_assert_eq(mt_backward(two_step_loss(cell, &u)), MT_OK, "%s", mt_last_error());

    mt_tensor_list params = mt_parameters(cell);
    cr_assert_eq(params.n, 3);
    const double h = 1e-6;
    for (int p = 0; p <= params.n; p++) {
        mt_tensor *t = p < params.n ? params.items[p].tensor : u.h0;
        const char *name = p < params.n ? params.items[p].name : "h0";
        cr_assert_eq(t->dtype, MT_F64, "%s is f64", name);
        cr_assert_not_null(mt_grad(t), "%s has a gradient", name);
        double *v = mt_data_ptr(t);
        for (int64_t k = 0; k < mt_numel(t); k++) {
            double saved = v[k], up, down;
            MT_NO_GRAD {
                mt_scope s = mt_scope_begin();
                v[k] = saved + h;
                up = mt_item(two_step_loss(cell, &u));
                v[k] = saved - h;
                down = mt_item(two_step_loss(cell, &u));
                mt_scope_end(s);
            }
            v[k] = saved;
            double fd = (up - down) / (2 * h);
            double g = mt_get(mt_grad(t), (int64_t[]){ k / t->shape[t->ndim - 1], k % t->shape[t->ndim - 1] });
            cr_expect(fabs(g - fd) <= 1e-7 * fmax(1, fabs(fd)), "d/d %s[%lld]: backward %.12g, finite differences %.12g",
                      name, (long long)k, g, fd);
        }
    }
    mt_tensor_list_free(&params);
    mt_module_free(cell);
}

MT_TEST(cell_with_a_default_state_and_its_errors)
{
    mt_module *cell = cell_new(3, 4);
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(5, 3)), *out[3] = { x, x, x };
    cr_assert_eq(mt_forward_n(cell, 1, &x, 3, out), 2, "%s", mt_last_error());
    cr_assert(out[0] && out[1] && out[2] == NULL, "two outputs, the third slot cleared");
    cr_assert(out[0]->shape[0] == 5 && out[0]->shape[1] == 4 && out[1]->shape[1] == 4);
    cr_assert(out[0]->requires_grad && out[1]->requires_grad);

    /* one tensor out of a two-output module: a clear error */
    cr_assert_null(mt_forward(cell, x));
    cr_assert(strstr(mt_last_error(), "Cell returns 2 outputs") && strstr(mt_last_error(), "mt_forward_n"), "%s",
              mt_last_error());
    cr_assert_eq(mt_forward_n(cell, 1, &x, 1, out), -1);
    cr_assert(out[0] == NULL, "outputs are cleared on error");
    /* the module's own checks */
    cr_assert_eq(mt_forward_n(cell, 2, (mt_tensor *[]){ x, x }, 2, out), -1);
    cr_assert(strstr(mt_last_error(), "Cell: takes x or (x, h, c), got 2"), "%s", mt_last_error());
    cr_assert(out[0] == NULL && out[1] == NULL);
    /* inside Sequential (a one-tensor chain) it fails the same way */
    mt_module *seq = mt_nn_sequential(mt_nn_identity(), cell);
    cr_assert_not_null(seq, "%s", mt_last_error());
    cr_assert_null(mt_forward(seq, x));
    cr_assert(strstr(mt_last_error(), "mt_forward_n"), "%s", mt_last_error());
    /* a NULL input (an earlier op failed) keeps the earlier message */
    mt_set_error(MT_ERR_SHAPE, "linear: an earlier failure");
    cr_assert_eq(mt_forward_n(seq->children[1], 3, (mt_tensor *[]){ x, NULL, NULL }, 2, out), -1);
    cr_assert(strstr(mt_last_error(), "earlier failure"), "%s", mt_last_error());
    mt_clear_error();
    cr_assert_eq(mt_forward_n(NULL, 1, &x, 2, out), -1);
    cr_assert_eq(mt_forward_n(cell, 1, NULL, 2, out), -1);
    mt_module_free(seq);
}

/* ---------------------------------------------------------------- one output through forward_n */
/* y = x * s (+ bias when given a second input) */
static mt_status scale_forward(mt_module *m, int n_in, mt_tensor *const *in, mt_tensor **out)
{
    if (n_in < 1 || n_in > 2) return mt_set_error(MT_ERR_ARGUMENT, "Scale: takes x or (x, bias), got %d inputs", n_in);
    out[0] = mt_mul(in[0], mt_module_param(m, "s"));
    if (n_in == 2) out[0] = mt_add(out[0], in[1]);
    return out[0] ? MT_OK : mt_last_status();
}

static const mt_module_type_n scale_type = { { "Scale", NULL, NULL, NULL }, scale_forward, 1 };

MT_TEST(one_output_forward_n_works_through_mt_forward)
{
    mt_module *scale = mt_module_new_n(&scale_type, NULL);
    cr_assert(scale && mt_module_add_param(scale, "s", mt_full(MT_F32, MT_SHAPE(2), 3)), "%s", mt_last_error());
    mt_module *net = mt_nn_sequential(mt_nn_linear(2, 2, false), scale);
    cr_assert_not_null(net, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(net->children[0], "weight");
    MT_NO_GRAD { mt_copy_(w, mt_from_data(MT_F32, MT_SHAPE(2, 2), (float[]){ 1, 0, 0, 2 })); }
    mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(1, 2), (float[]){ 1, 1 });
    mt_tensor *y = mt_forward(net, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_expect(mt_get(y, (int64_t[]){ 0, 0 }) == 3 && mt_get(y, (int64_t[]){ 0, 1 }) == 6);
    cr_assert_eq(mt_backward(mt_sum_all(y)), MT_OK, "%s", mt_last_error());
    cr_expect_eq(mt_get(mt_grad(mt_module_param(scale, "s")), (int64_t[]){ 1 }), 2);

    mt_tensor *out[1];
    cr_assert_eq(mt_forward_n(scale, 2, (mt_tensor *[]){ x, mt_ones(MT_F32, MT_SHAPE(2)) }, 1, out), 1, "%s", mt_last_error());
    cr_expect_eq(mt_get(out[0], (int64_t[]){ 0, 1 }), 4);
    mt_module_free(net);
}

MT_TEST(plain_modules_through_forward_n)
{
    mt_module *lin = mt_nn_linear(3, 2, true);
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(4, 3)), *out[2];
    cr_assert_eq(mt_forward_n(lin, 1, &x, 2, out), 1, "%s", mt_last_error());
    cr_assert(out[0] && out[0]->shape[1] == 2 && out[1] == NULL);
    cr_assert_eq(mt_forward_n(lin, 2, (mt_tensor *[]){ x, x }, 2, out), -1);
    cr_assert(strstr(mt_last_error(), "Linear takes one input, got 2"), "%s", mt_last_error());
    cr_assert_eq(mt_forward_n(lin, 1, &x, 0, NULL), -1);
    cr_assert(strstr(mt_last_error(), "room for 0"), "%s", mt_last_error());
    mt_module_free(lin);
}

MT_TEST(module_types_are_checked)
{
    static const mt_module_type_n none = { { "None", NULL, NULL, NULL }, NULL, 1 };
    static const mt_module_type_n zero = { { "Zero", NULL, NULL, NULL }, scale_forward, 0 };
    static const mt_module_type_n many = { { "Many", NULL, NULL, NULL }, scale_forward, MT_MODULE_MAX_OUTPUTS + 1 };
    cr_assert_null(mt_module_new_n(&none, NULL));
    cr_assert(strstr(mt_last_error(), "forward_n"), "%s", mt_last_error());
    cr_assert_null(mt_module_new_n(&zero, NULL));
    cr_assert(strstr(mt_last_error(), "Zero declares 0 outputs"), "%s", mt_last_error());
    cr_assert_null(mt_module_new_n(&many, NULL));
    cr_assert_null(mt_module_new_n(NULL, NULL));
    static const mt_module_type no_forward = { "NoForward", NULL, NULL, NULL };
    cr_assert_null(mt_module_new(&no_forward, NULL));
}
