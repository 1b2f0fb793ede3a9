/*
 * test_optim.c - optimizers, state export/import, gradient clipping and
 * learning-rate schedulers (engine/optim/optim.c, engine/optim/scheduler.c).
 *
 * Optimizer tests use f64 parameters and compare every step with the update
 * formulas written out below in double precision. The gradient of step t is
 * made by backward through  L = sum(c * p^2) / 2,  so  g = c * p  changes as
 * p moves (a realistic sequence, not a constant).
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OPTIM_TEST(name) Test(optim, name, .init = mt_test_setup, .fini = mt_test_teardown)

enum { N = 4 };
static const double p0[N] = { 1.0, -2.0, 0.5, 3.0 };
static const double curvature[N] = { 1.0, 0.5, 4.0, -0.25 };

static mt_tensor *new_param(const double *values)
{
    mt_tensor *p = mt_from_data(MT_F64, MT_SHAPE(N), values);
    return mt_keep(mt_requires_grad(p, true));
}

static mt_tensor_list one_param(const char *name, mt_tensor *p)
{
    mt_tensor_list list = { 1, malloc(sizeof(mt_named_tensor)) };
    list.items[0].name = strdup(name);
    list.items[0].tensor = p;
    return list;
}

/* p.grad = curvature * p  (through backward of sum(c p^2) / 2) */
static void make_grad(mt_tensor *p)
{
    mt_zero_grad(p);
    mt_scope s = mt_scope_begin();
    mt_tensor *c = mt_from_data(MT_F64, MT_SHAPE(N), curvature);
    mt_tensor *loss = mt_mul_scalar(mt_sum_all(mt_mul(c, mt_mul(p, p))), 0.5);
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    mt_scope_end(s);
}

static void expect_param(const mt_tensor *p, const double *expected, int step, const char *what)
{
    double got[N];
    cr_assert(mt_to_data(p, MT_F64, got) == MT_OK);
    for (int i = 0; i < N; i++)
        cr_expect(fabs(got[i] - expected[i]) <= 1e-12 * (1 + fabs(expected[i])),
                  "%s step %d p[%d]: %.17g, expected %.17g", what, step, i, got[i], expected[i]);
}

/* ---------------------------------------------------------------- SGD */
typedef struct sgd_ref { double lr, momentum, dampening, weight_decay; bool nesterov; } sgd_ref;

/* PyTorch's SGD written out:
     d = g + wd p;  b = (t == 1) ? d : mu b + (1 - dampening) d;
     d = nesterov ? d + mu b : b;  p = p - lr d                         */
static void run_sgd(sgd_ref o, int steps, const char *what)
{
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("w", p);
    mt_sgd_opts opts = MT_SGD_DEFAULTS;
    opts.lr = o.lr;
    opts.momentum = o.momentum;
    opts.dampening = o.dampening;
    opts.weight_decay = o.weight_decay;
    opts.nesterov = o.nesterov;
    mt_optimizer *opt = mt_sgd(list, opts);
    mt_tensor_list_free(&list);
    cr_assert_not_null(opt, "%s", mt_last_error());
    double ref[N], buf[N];
    memcpy(ref, p0, sizeof ref);
    for (int t = 1; t <= steps; t++) {
        make_grad(p);
        mt_optimizer_zero_grad(opt);   /* zero_grad then grad again: the usual loop */
        make_grad(p);
        cr_assert(mt_step(opt) == MT_OK, "%s", mt_last_error());
        for (int i = 0; i < N; i++) {
            double d = curvature[i] * ref[i] + o.weight_decay * ref[i];
            if (o.momentum != 0) {
                buf[i] = t == 1 ? d : o.momentum * buf[i] + (1 - o.dampening) * d;
                d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
            }
            ref[i] -= o.lr * d;
        }
        expect_param(p, ref, t, what);
    }
    cr_expect_eq(mt_optimizer_steps(opt), steps);
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(sgd_plain_by_hand)
{
    /* p = 1, c = 1, lr = 0.1: g = p, so p = 0.9, 0.81, 0.729 */
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("w", p);
    mt_sgd_opts sgd_opts = MT_SGD_DEFAULTS;
    sgd_opts.lr = 0.1;
    mt_optimizer *opt = mt_sgd(list, sgd_opts);
    mt_tensor_list_free(&list);
    const double after[3] = { 0.9, 0.81, 0.729 };
    for (int t = 0; t < 3; t++) {
        make_grad(p);
        cr_assert(mt_step(opt) == MT_OK);
        double v[N];
        mt_to_data(p, MT_F64, v);
        cr_expect_float_eq(v[0], after[t], 1e-15, "step %d: %.17g", t + 1, v[0]);
    }
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(sgd_plain) { run_sgd((sgd_ref){ .lr = 0.1 }, 4, "sgd"); }
OPTIM_TEST(sgd_momentum_dampening) { run_sgd((sgd_ref){ .lr = 0.05, .momentum = 0.9, .dampening = 0.3 }, 5, "momentum"); }
OPTIM_TEST(sgd_nesterov) { run_sgd((sgd_ref){ .lr = 0.05, .momentum = 0.8, .nesterov = true }, 5, "nesterov"); }
OPTIM_TEST(sgd_weight_decay) { run_sgd((sgd_ref){ .lr = 0.1, .momentum = 0.5, .weight_decay = 0.01 }, 4, "weight decay"); }

OPTIM_TEST(sgd_rejects_bad_options)
{
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("w", p);
    mt_sgd_opts o = MT_SGD_DEFAULTS;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.dampening = 0.1;
    o.nesterov = true;
    cr_expect_null(mt_sgd(list, o));
    cr_expect(strstr(mt_last_error(), "nesterov") != NULL, "%s", mt_last_error());
    o = MT_SGD_DEFAULTS;
    o.lr = -1;
    cr_expect_null(mt_sgd(list, o));
    mt_adam_opts a = MT_ADAM_DEFAULTS;
    a.beta1 = 1.0;
    cr_expect_null(mt_adam(list, a));
    cr_expect(strstr(mt_last_error(), "betas") != NULL, "%s", mt_last_error());
    cr_expect_null(mt_sgd((mt_tensor_list){ 0, NULL }, MT_SGD_DEFAULTS));
    mt_tensor_list_free(&list);
    mt_free(p);
}

/* Options are used as given (docs/options.md): a zero is a zero, and a struct
   that did not start from its defaults value is refused, not read as zeros. */
OPTIM_TEST(options_zero_is_zero_and_defaults_are_required)
{
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("w", p);
    cr_expect_null(mt_adam(list, (mt_adam_opts){ .lr = 0.1 }));
    cr_expect(strstr(mt_last_error(), "MT_ADAM_DEFAULTS") != NULL, "%s", mt_last_error());
    cr_expect_null(mt_adamw(list, (mt_adam_opts){ .lr = 0.1 }));
    cr_expect(strstr(mt_last_error(), "MT_ADAMW_DEFAULTS") != NULL, "%s", mt_last_error());
    cr_expect_null(mt_sgd(list, (mt_sgd_opts){ .lr = 0.1 }));
    cr_expect(strstr(mt_last_error(), "MT_SGD_DEFAULTS") != NULL, "%s", mt_last_error());

    mt_tensor_list_free(&list);
    mt_free(p);
}

/* ---------------------------------------------------------------- Adam */
typedef struct adam_ref { double lr, beta1, beta2, eps, weight_decay; bool amsgrad, decoupled; } adam_ref;

/* Adam written out (t counts from 1):
     Adam:  g = g + wd p          AdamW: p = p (1 - lr wd)
     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  vmax = max(vmax, v)
     m_hat = m / (1 - b1^t);  v_hat = (amsgrad ? vmax : v) / (1 - b2^t)
     p = p - lr m_hat / (sqrt(v_hat) + eps)                               */
static void adam_reference(adam_ref o, int t, double *p, double *m, double *v, double *vmax, const double *grad)
{
    for (int i = 0; i < N; i++) {
        double g = grad[i];
        if (o.decoupled) p[i] *= 1 - o.lr * o.weight_decay;
        else g += o.weight_decay * p[i];
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
        vmax[i] = fmax(vmax[i], v[i]);
        double m_hat = m[i] / (1 - pow(o.beta1, t));
        double v_hat = (o.amsgrad ? vmax[i] : v[i]) / (1 - pow(o.beta2, t));
        p[i] -= o.lr * m_hat / (sqrt(v_hat) + o.eps);
    }
}

/* Runs steps of Adam/AdamW; grads come from make_grad, or from `grads` (steps x N) when given. */
static void run_adam(adam_ref o, int steps, const double *grads, const char *what)
{
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("w", p);
    mt_adam_opts opts = MT_ADAM_DEFAULTS;
    opts.lr = o.lr;
    opts.beta1 = o.beta1;
    opts.beta2 = o.beta2;
    opts.eps = o.eps;
    opts.weight_decay = o.weight_decay;
    opts.amsgrad = o.amsgrad;
    mt_optimizer *opt = o.decoupled ? mt_adamw(list, opts) : mt_adam(list, opts);
    mt_tensor_list_free(&list);
    cr_assert_not_null(opt, "%s", mt_last_error());
    double ref[N], m[N] = { 0 }, v[N] = { 0 }, vmax[N] = { 0 }, g[N];
    memcpy(ref, p0, sizeof ref);
    for (int t = 1; t <= steps; t++) {
        if (grads) {
            memcpy(g, grads + (t - 1) * N, sizeof g);
            mt_zero_grad(p);
            mt_scope s = mt_scope_begin();
            cr_assert(mt_backward(mt_sum_all(mt_mul(p, mt_from_data(MT_F64, MT_SHAPE(N), g)))) == MT_OK);
            mt_scope_end(s);
        } else {
            for (int i = 0; i < N; i++) g[i] = curvature[i] * ref[i];
            make_grad(p);
        }
        cr_assert(mt_step(opt) == MT_OK, "%s", mt_last_error());
        adam_reference(o, t, ref, m, v, vmax, g);
        expect_param(p, ref, t, what);
    }
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(adam_bias_correction_first_step)
{
    /* step 1: m_hat = g, v_hat = g^2, so p moves by lr * g / (|g| + eps) ~ lr sign(g) */
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("w", p);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.01;
    mt_optimizer *opt = mt_adam(list, adam_opts);
    mt_tensor_list_free(&list);
    make_grad(p);
    cr_assert(mt_step(opt) == MT_OK);
    double v[N];
    mt_to_data(p, MT_F64, v);
    for (int i = 0; i < N; i++) {
        double g = curvature[i] * p0[i];
        cr_expect_float_eq(v[i], p0[i] - 0.01 * g / (fabs(g) + 1e-8), 1e-14, "p[%d]", i);
    }
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(adam_defaults) { run_adam((adam_ref){ 1e-3, 0.9, 0.999, 1e-8, 0, false, false }, 6, NULL, "adam"); }
OPTIM_TEST(adam_custom_l2) { run_adam((adam_ref){ 0.05, 0.8, 0.99, 1e-6, 0.1, false, false }, 6, NULL, "adam l2"); }
OPTIM_TEST(adamw_decoupled) { run_adam((adam_ref){ 0.05, 0.9, 0.999, 1e-8, 0.1, false, true }, 6, NULL, "adamw"); }
/* zeros are zeros: no first-moment averaging, no eps (docs/options.md) */
OPTIM_TEST(adam_zero_beta1_and_eps) { run_adam((adam_ref){ 0.05, 0, 0.999, 0, 0, false, false }, 6, NULL, "adam beta1=0 eps=0"); }

OPTIM_TEST(amsgrad_keeps_the_max)
{
    /* large gradients first, then small ones: v falls below its maximum, which AMSGrad keeps */
    const double grads[5 * N] = {
        3, -2, 1, 4,
        2, -1, 0.5, 3,
        0.1, 0.1, 0.1, 0.1,
        0.01, -0.01, 0.02, 0.01,
        0.01, 0.01, -0.01, 0.02,
    };
    adam_ref o = { 0.1, 0.5, 0.6, 1e-8, 0, true, false };
    run_adam(o, 5, grads, "amsgrad");
    o.decoupled = true;
    o.weight_decay = 0.05;
    run_adam(o, 5, grads, "adamw amsgrad");
    /* and it differs from plain Adam on this sequence */
    double a[N], b[N], m1[N] = { 0 }, v1[N] = { 0 }, x1[N] = { 0 }, m2[N] = { 0 }, v2[N] = { 0 }, x2[N] = { 0 };
    memcpy(a, p0, sizeof a);
    memcpy(b, p0, sizeof b);
    adam_ref plain = { 0.1, 0.5, 0.6, 1e-8, 0, false, false }, ams = plain;
    ams.amsgrad = true;
    for (int t = 1; t <= 5; t++) {
        adam_reference(plain, t, a, m1, v1, x1, grads + (t - 1) * N);
        adam_reference(ams, t, b, m2, v2, x2, grads + (t - 1) * N);
    }
    cr_expect_gt(fabs(a[0] - b[0]), 1e-3, "the sequence must exercise the max");
}

/* ---------------------------------------------------------------- common behaviour */
OPTIM_TEST(parameters_without_grad_are_skipped)
{
    for (int k = 0; k < 2; k++) {
        mt_tensor *a = new_param(p0), *b = new_param(p0);
        mt_tensor_list list = { 2, malloc(2 * sizeof(mt_named_tensor)) };
        list.items[0] = (mt_named_tensor){ strdup("a"), a };
        list.items[1] = (mt_named_tensor){ strdup("b"), b };
        mt_sgd_opts sgd_opts = MT_SGD_DEFAULTS;
        sgd_opts.lr = 0.1;
        sgd_opts.momentum = 0.9;
        mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
        adam_opts.lr = 0.1;
        mt_optimizer *opt = k == 0 ? mt_sgd(list, sgd_opts) : mt_adam(list, adam_opts);
        mt_tensor_list_free(&list);
        cr_assert_not_null(opt, "%s", mt_last_error());
        make_grad(a);
        cr_assert(mt_step(opt) == MT_OK, "%s", mt_last_error());
        expect_param(b, p0, 1, "untouched b");
        double va[N];
        mt_to_data(a, MT_F64, va);
        cr_expect_neq(va[0], p0[0], "a moved");
        /* only a has state */
        mt_tensor_list st = mt_optimizer_state(opt);
        cr_expect_gt(st.n, 1);
        for (int i = 0; i < st.n; i++) cr_expect_neq(st.items[i].name[0], 'b', "b has state %s", st.items[i].name);
        mt_tensor_list_free(&st);
        mt_optimizer_free(opt);
        mt_free(a);
        mt_free(b);
    }
}

OPTIM_TEST(state_names)
{
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("0.weight", p);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.amsgrad = true;
    mt_optimizer *opt = mt_adam(list, adam_opts);
    make_grad(p);
    mt_step(opt);
    mt_tensor_list st = mt_optimizer_state(opt);
    const char *expected[] = { "step", "0.weight.exp_avg", "0.weight.exp_avg_sq", "0.weight.max_exp_avg_sq", "0.weight.step" };
    cr_assert_eq(st.n, 5);
    for (int i = 0; i < 5; i++) cr_expect_str_eq(st.items[i].name, expected[i]);
    cr_expect_eq(mt_item(st.items[0].tensor), 1);
    mt_tensor_list_free(&st);
    mt_optimizer_free(opt);

    mt_sgd_opts sgd_opts = MT_SGD_DEFAULTS;
    sgd_opts.lr = 0.1;
    sgd_opts.momentum = 0.9;
    opt = mt_sgd(list, sgd_opts);
    mt_step(opt);
    st = mt_optimizer_state(opt);
    cr_assert_eq(st.n, 2);
    cr_expect_str_eq(st.items[1].name, "0.weight.momentum_buffer");
    mt_tensor_list_free(&st);
    mt_optimizer_free(opt);
    mt_tensor_list_free(&list);
    mt_free(p);
}

/* Runs `first` steps on one optimizer, copies its state into a fresh one on a
   copy of the parameter, then runs both `more` steps: they must agree bitwise. */
static void roundtrip(bool adam)
{
    mt_adam_opts adam_opts = MT_ADAMW_DEFAULTS;
    adam_opts.lr = 0.05;
    adam_opts.amsgrad = true;
    mt_sgd_opts sgd_opts = MT_SGD_DEFAULTS;
    sgd_opts.lr = 0.05;
    sgd_opts.momentum = 0.9;
    sgd_opts.nesterov = true;
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("layer.w", p);
    mt_optimizer *a = adam ? mt_adamw(list, adam_opts) : mt_sgd(list, sgd_opts);
    mt_tensor_list_free(&list);
    for (int t = 0; t < 3; t++) { make_grad(p); mt_step(a); }

    /* "save": copies of the parameter and of every state tensor */
    double saved_p[N];
    mt_to_data(p, MT_F64, saved_p);
    mt_tensor *q = new_param(saved_p);
    mt_tensor_list state = mt_optimizer_state(a);
    mt_tensor_list copy = { state.n, calloc((size_t)state.n, sizeof(mt_named_tensor)) };
    for (int i = 0; i < state.n; i++) copy.items[i] = (mt_named_tensor){ strdup(state.items[i].name), mt_clone(state.items[i].tensor) };
    mt_tensor_list_free(&state);

    list = one_param("layer.w", q);
    mt_optimizer *b = adam ? mt_adamw(list, adam_opts) : mt_sgd(list, sgd_opts);
    mt_tensor_list_free(&list);
    cr_assert(mt_optimizer_load_state(b, copy) == MT_OK, "%s", mt_last_error());
    mt_tensor_list_free(&copy);
    cr_expect_eq(mt_optimizer_steps(b), 3);

    for (int t = 0; t < 3; t++) {
        make_grad(p); mt_step(a);
        make_grad(q); mt_step(b);
        double vp[N], vq[N];
        mt_to_data(p, MT_F64, vp);
        mt_to_data(q, MT_F64, vq);
        for (int i = 0; i < N; i++) cr_expect_eq(vp[i], vq[i], "%s step %d p[%d]: %.17g vs %.17g", adam ? "adamw" : "sgd", t, i, vp[i], vq[i]);
    }
    mt_optimizer_free(a);
    mt_optimizer_free(b);
    mt_free(p);
    mt_free(q);
}

OPTIM_TEST(state_round_trip_sgd) { roundtrip(false); }
OPTIM_TEST(state_round_trip_adam) { roundtrip(true); }

OPTIM_TEST(load_state_rejects_mismatches)
{
    mt_tensor *p = new_param(p0);
    mt_tensor_list list = one_param("w", p);
    mt_optimizer *opt = mt_adam(list, MT_ADAM_DEFAULTS);
    mt_tensor_list_free(&list);
    mt_tensor_list bad = { 1, malloc(sizeof(mt_named_tensor)) };
    bad.items[0] = (mt_named_tensor){ strdup("v.exp_avg"), mt_zeros(MT_F64, MT_SHAPE(N)) };
    cr_expect_neq(mt_optimizer_load_state(opt, bad), MT_OK);
    cr_expect(strstr(mt_last_error(), "v.exp_avg") != NULL, "%s", mt_last_error());
    free(bad.items[0].name);
    bad.items[0].name = strdup("w.exp_avg");
    bad.items[0].tensor = mt_zeros(MT_F64, MT_SHAPE(N + 1));
    cr_expect_eq(mt_optimizer_load_state(opt, bad), MT_ERR_SHAPE, "%s", mt_last_error());
    bad.items[0].tensor = mt_zeros(MT_F64, MT_SHAPE(N));
    cr_expect_eq(mt_optimizer_load_state(opt, bad), MT_ERR_FORMAT, "half an Adam state: %s", mt_last_error());
    mt_tensor_list_free(&bad);
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(f32_parameters_of_a_module)
{
    /* the usual case: f32 module parameters, Adam, a few steps reduce a loss */
    mt_manual_seed(2);
    mt_module *lin = mt_nn_linear(3, 1, true);
    mt_tensor_list params = mt_parameters(lin);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.05;
    mt_optimizer *opt = mt_adam(params, adam_opts);
    mt_tensor_list_free(&params);
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(16, 3)), *target = mt_randn(NULL, MT_F32, MT_SHAPE(16, 1));
    double first = 0, last = 0;
    for (int t = 0; t < 50; t++) {
        mt_scope s = mt_scope_begin();
        mt_optimizer_zero_grad(opt);
        mt_tensor *diff = mt_sub(mt_forward(lin, x), target);
        mt_tensor *loss = mt_mean_all(mt_mul(diff, diff));   /* mean squared error */
        cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
        cr_assert(mt_step(opt) == MT_OK, "%s", mt_last_error());
        last = mt_item(loss);
        if (t == 0) first = last;
        mt_scope_end(s);
    }
    cr_expect_lt(last, 0.8 * first, "loss %g -> %g", first, last);
    mt_optimizer_free(opt);
    mt_module_free(lin);
}

/* ---------------------------------------------------------------- clip_grad_norm */
OPTIM_TEST(clip_grad_norm_total_and_scaling)
{
    /* grads (3, 4) and (12): total norm sqrt(9 + 16 + 144) = 13 */
    const double ga[2] = { 3, 4 }, gb[1] = { 12 };
    mt_tensor *a = mt_keep(mt_requires_grad(mt_zeros(MT_F64, MT_SHAPE(2)), true));
    mt_tensor *b = mt_keep(mt_requires_grad(mt_zeros(MT_F64, MT_SHAPE(1)), true));
    mt_tensor *c = mt_keep(mt_requires_grad(mt_zeros(MT_F64, MT_SHAPE(3)), true));   /* no grad: ignored */
    mt_tensor_list list = { 3, malloc(3 * sizeof(mt_named_tensor)) };
    list.items[0] = (mt_named_tensor){ strdup("a"), a };
    list.items[1] = (mt_named_tensor){ strdup("b"), b };
    list.items[2] = (mt_named_tensor){ strdup("c"), c };
    mt_tensor *loss = mt_add(mt_sum_all(mt_mul(a, mt_from_data(MT_F64, MT_SHAPE(2), ga))),
                             mt_sum_all(mt_mul(b, mt_from_data(MT_F64, MT_SHAPE(1), gb))));
    cr_assert(mt_backward(loss) == MT_OK);

    cr_expect_float_eq(mt_clip_grad_norm(list, 100), 13, 1e-12, "a large max_norm only measures");
    cr_expect_float_eq(mt_item(mt_select(a->grad, 0, 1)), 4, 1e-15);

    double total = mt_clip_grad_norm(list, 6.5);
    cr_expect_float_eq(total, 13, 1e-12);
    double scale = 6.5 / (13 + 1e-6);
    cr_expect_float_eq(mt_item(mt_select(a->grad, 0, 0)), 3 * scale, 1e-14);
    cr_expect_float_eq(mt_item(mt_select(a->grad, 0, 1)), 4 * scale, 1e-14);
    cr_expect_float_eq(mt_item(b->grad), 12 * scale, 1e-14);
    cr_expect_float_eq(mt_clip_grad_norm(list, 6.5), 6.5, 1e-5, "after clipping the norm is max_norm");
    cr_expect_null(c->grad);
    cr_expect(isnan(mt_clip_grad_norm(list, -1)));
    mt_tensor_list_free(&list);
    mt_free(a);
    mt_free(b);
    mt_free(c);
}

/* ---------------------------------------------------------------- schedulers */
static mt_optimizer *lr_holder(mt_tensor **p, double lr)
{
    *p = new_param(p0);
    mt_tensor_list list = one_param("w", *p);
    mt_sgd_opts sgd_opts = MT_SGD_DEFAULTS;
    sgd_opts.lr = lr;
    mt_optimizer *opt = mt_sgd(list, sgd_opts);
    mt_tensor_list_free(&list);
    return opt;
}

/* lr after construction, then after each of n - 1 steps */
static void expect_lrs(mt_scheduler *s, mt_optimizer *opt, int n, const double *expected, const char *what)
{
    for (int e = 0; e < n; e++) {
        if (e > 0) mt_scheduler_step(s);
        cr_expect_float_eq(mt_optimizer_lr(opt), expected[e], 1e-12, "%s epoch %d: lr %.17g, expected %.17g",
                           what, e, mt_optimizer_lr(opt), expected[e]);
    }
}

OPTIM_TEST(step_lr)
{
    mt_tensor *p;
    mt_optimizer *opt = lr_holder(&p, 1.0);
    mt_scheduler *s = mt_step_lr(opt, 3, 0.1);
    const double expected[] = { 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01 };
    expect_lrs(s, opt, 8, expected, "StepLR");
    mt_scheduler_free(s);
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(multistep_lr)
{
    mt_tensor *p;
    mt_optimizer *opt = lr_holder(&p, 0.8);
    mt_scheduler *s = mt_multistep_lr(opt, 2, (const int64_t[]){ 2, 5 }, 0.5);
    const double expected[] = { 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2 };
    expect_lrs(s, opt, 8, expected, "MultiStepLR");
    mt_scheduler_free(s);
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(cosine_with_warmup)
{
    mt_tensor *p;
    mt_optimizer *opt = lr_holder(&p, 1.0);
    /* warm-up 10 steps, cosine to min 0.1 at step 110 */
    mt_scheduler *s = mt_cosine_warmup_lr(opt, 10, 110, 0.1);
    double lr[201];
    for (int e = 0; e <= 200; e++) {
        if (e > 0) mt_scheduler_step(s);
        lr[e] = mt_optimizer_lr(opt);
    }
    cr_expect_float_eq(lr[0], 0.0, 1e-15, "warm-up starts at 0");
    cr_expect_float_eq(lr[1], 0.1, 1e-15);
    cr_expect_float_eq(lr[5], 0.5, 1e-15, "warm-up is linear");
    cr_expect_float_eq(lr[10], 1.0, 1e-15, "warm-up ends at the base lr");
    cr_expect_float_eq(lr[60], 0.55, 1e-12, "the cosine's midpoint is (base + min) / 2");
    cr_expect_float_eq(lr[35], 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 0.25)), 1e-12);
    cr_expect_float_eq(lr[110], 0.1, 1e-12, "ends at min_lr");
    cr_expect_float_eq(lr[200], 0.1, 1e-12, "stays at min_lr");
    for (int e = 11; e <= 110; e++) cr_expect_leq(lr[e], lr[e - 1] + 1e-15, "decreasing at %d", e);
    mt_scheduler_free(s);
    mt_optimizer_free(opt);
    mt_free(p);
}

OPTIM_TEST(reduce_on_plateau_patience_cooldown_min_lr)
{
    mt_tensor *p;
    mt_optimizer *opt = lr_holder(&p, 1.0);
    mt_plateau_opts plateau_opts = MT_PLATEAU_DEFAULTS;
    plateau_opts.factor = 0.5;
    plateau_opts.patience = 2;
    plateau_opts.cooldown = 1;
    plateau_opts.min_lr = 0.2;
    mt_scheduler *s = mt_reduce_on_plateau(opt, plateau_opts);
    cr_assert_not_null(s, "%s", mt_last_error());
    /* 10, 9 improve; then 9 forever: 3 bad epochs > patience 2 reduce; one cooldown epoch
       does not count; min_lr stops the fall at 0.2. */
    const double metric[] = { 10, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9 };
    const double expected[] = { 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2 };
    for (int e = 0; e < 17; e++) {
        mt_scheduler_step_metric(s, metric[e]);
        cr_expect_float_eq(mt_optimizer_lr(opt), expected[e], 1e-15, "epoch %d: lr %g, expected %g",
                           e + 1, mt_optimizer_lr(opt), expected[e]);
    }
    mt_scheduler_free(s);

    /* relative threshold: 1% better is required; an improvement resets the count */
    mt_optimizer_set_lr(opt, 1.0);
    plateau_opts = MT_PLATEAU_DEFAULTS;
    plateau_opts.factor = 0.1;
    plateau_opts.patience = 1;
    plateau_opts.threshold = 0.01;
    s = mt_reduce_on_plateau(opt, plateau_opts);
    const double m2[] = { 100, 99.5, 99.2, 98, 97.5, 97.4 };
    /* 100 best; 99.5 not < 99 (bad 1); 99.2 bad 2 > 1 -> 0.1; 98 < 99 better (best 98);
       97.5 not < 97.02 (bad 1); 97.4 bad 2 -> 0.01 */
    const double e2[] = { 1, 1, 0.1, 0.1, 0.1, 0.01 };
    for (int e = 0; e < 6; e++) {
        mt_scheduler_step_metric(s, m2[e]);
        cr_expect_float_eq(mt_optimizer_lr(opt), e2[e], 1e-15, "threshold epoch %d: lr %g", e + 1, mt_optimizer_lr(opt));
    }
    mt_scheduler_free(s);

    /* maximize: higher is better */
    mt_optimizer_set_lr(opt, 1.0);
    plateau_opts = MT_PLATEAU_DEFAULTS;
    plateau_opts.maximize = true;
    plateau_opts.factor = 0.5;
    plateau_opts.patience = 0;
    s = mt_reduce_on_plateau(opt, plateau_opts);
    mt_scheduler_step_metric(s, 0.5);
    cr_expect_float_eq(mt_optimizer_lr(opt), 1.0, 1e-15);
    mt_scheduler_step_metric(s, 0.9);
    cr_expect_float_eq(mt_optimizer_lr(opt), 1.0, 1e-15, "an improvement keeps the lr");
    mt_scheduler_step_metric(s, 0.8);
    cr_expect_float_eq(mt_optimizer_lr(opt), 0.5, 1e-15, "patience 0: the first bad epoch reduces");
    mt_scheduler_free(s);
    mt_optimizer_free(opt);
    mt_free(p);
}
