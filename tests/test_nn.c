/*
 * test_nn.c - modules (engine/nn/nn.c, engine/nn/nn_layers.c) and initialization
 * (engine/nn/init.c): names, counts, modes, printing, layer maths against plain
 * loops, init bounds and statistics, BatchNorm1d's running statistics.
 *
 * Every test runs inside a step scope (mt_test_setup): modules must take
 * their tensors out of it, and ASan checks that mt_module_free frees them.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NN_TEST(name) Test(nn, name, .init = mt_test_setup, .fini = mt_test_teardown)

/* Element k of a tensor (any dtype, read as double). */
static double at(const mt_tensor *t, int64_t k)
{
    double *buf = malloc((size_t)mt_numel(t) * sizeof *buf);
    mt_to_data(t, MT_F64, buf);
    double v = buf[k];
    free(buf);
    return v;
}

static double *to_doubles(const mt_tensor *t)
{
    double *buf = malloc((size_t)(mt_numel(t) ? mt_numel(t) : 1) * sizeof *buf);
    cr_assert(mt_to_data(t, MT_F64, buf) == MT_OK, "%s", mt_last_error());
    return buf;
}

/* Linear(4, 8) - BatchNorm1d(8) - GELU - Dropout(0.5) - Linear(8, 3) */
static mt_module *small_mlp(void)
{
    mt_module *net = mt_nn_sequential(mt_nn_linear(4, 8, true), mt_nn_batch_norm1d(8, MT_BN_DEFAULTS),
                                      mt_nn_gelu(MT_GELU_ERF), mt_nn_dropout(0.5), mt_nn_linear(8, 3, true));
    cr_assert_not_null(net, "%s", mt_last_error());
    return net;
}

/* ---------------------------------------------------------------- the module base */
NN_TEST(parameter_names_and_count)
{
    mt_module *net = small_mlp();
    mt_tensor_list params = mt_parameters(net);
    const char *expected[] = { "0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias" };
    const int64_t numel[] = { 32, 8, 8, 8, 24, 3 };
    cr_assert_eq(params.n, 6);
    for (int i = 0; i < 6; i++) {
        cr_expect_str_eq(params.items[i].name, expected[i]);
        cr_expect_eq(mt_numel(params.items[i].tensor), numel[i], "%s", expected[i]);
        cr_expect(params.items[i].tensor->requires_grad, "%s must require grad", expected[i]);
        cr_expect_null(params.items[i].tensor->grad_fn, "%s must be a leaf", expected[i]);
        cr_expect_eq(params.items[i].tensor->scope_slot, -1, "%s must be owned by the module", expected[i]);
    }
    cr_expect_eq(mt_parameter_count(net), 32 + 8 + 8 + 8 + 24 + 3);
    cr_expect_eq(mt_module_param(net->children[0], "weight"), params.items[0].tensor);
    cr_expect_null(mt_module_param(net, "weight"), "lookups are direct, not recursive");
    mt_tensor_list_free(&params);
    mt_module_free(net);
}

NN_TEST(state_dict_includes_buffers)
{
    mt_module *net = small_mlp();
    mt_tensor_list sd = mt_state_dict(net);
    const char *expected[] = { "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                               "1.num_batches_tracked", "4.weight", "4.bias" };
    cr_assert_eq(sd.n, 9);
    for (int i = 0; i < 9; i++) cr_expect_str_eq(sd.items[i].name, expected[i]);
    cr_expect_eq(sd.items[6].tensor->dtype, MT_I64);
    cr_expect_eq(sd.items[6].tensor->ndim, 0);
    cr_expect_not(sd.items[4].tensor->requires_grad);
    mt_tensor_list_free(&sd);
    mt_module_free(net);
}

NN_TEST(train_eval_reaches_children)
{
    mt_module *net = small_mlp();
    cr_expect(net->training && net->children[3]->training, "modules start in training mode");
    mt_module_train(net, false);
    for (int i = 0; i < net->n_children; i++) cr_expect_not(net->children[i]->training, "child %d", i);
    cr_expect_not(net->training);
    mt_module_train(net, true);
    for (int i = 0; i < net->n_children; i++) cr_expect(net->children[i]->training, "child %d", i);
    mt_module_free(net);
}

NN_TEST(zero_grad_frees_every_grad)
{
    mt_manual_seed(1);
    mt_module *net = small_mlp();
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(5, 4));
    mt_tensor *loss = mt_sum_all(mt_forward(net, x));
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    mt_tensor_list params = mt_parameters(net);
    for (int i = 0; i < params.n; i++) cr_expect_not_null(params.items[i].tensor->grad, "%s", params.items[i].name);
    mt_module_zero_grad(net);
    for (int i = 0; i < params.n; i++) cr_expect_null(params.items[i].tensor->grad, "%s", params.items[i].name);
    mt_tensor_list_free(&params);
    mt_module_free(net);
}

NN_TEST(print_matches_pytorch_layout)
{
    mt_module *net = mt_nn_sequential(mt_nn_linear(2, 64, true), mt_nn_tanh(), mt_nn_batch_norm1d(64, MT_BN_DEFAULTS),
                                      mt_nn_leaky_relu(0.01), mt_nn_dropout(0.2), mt_nn_linear(64, 2, false),
                                      mt_nn_log_softmax(1));
    cr_assert_not_null(net, "%s", mt_last_error());
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    mt_module_print(net, f);
    fclose(f);
    const char *expected =
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=64, bias=True)\n"
        "  (1): Tanh()\n"
        "  (2): BatchNorm1d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (3): LeakyReLU(negative_slope=0.01)\n"
        "  (4): Dropout(p=0.2)\n"
        "  (5): Linear(in_features=64, out_features=2, bias=False)\n"
        "  (6): LogSoftmax(dim=1)\n"
        ")\n";
    cr_expect_str_eq(text, expected);
    free(text);
    mt_module_free(net);
}

NN_TEST(nested_names)
{
    mt_module *inner = mt_nn_sequential(mt_nn_linear(3, 3, true), mt_nn_relu());
    mt_module *net = mt_nn_sequential(inner, mt_nn_linear(3, 1, false));
    cr_assert_not_null(net);
    mt_tensor_list params = mt_parameters(net);
    cr_assert_eq(params.n, 3);
    cr_expect_str_eq(params.items[0].name, "0.0.weight");
    cr_expect_str_eq(params.items[1].name, "0.0.bias");
    cr_expect_str_eq(params.items[2].name, "1.weight");
    mt_tensor_list_free(&params);
    mt_module_free(net);
}

NN_TEST(errors_are_reported_and_nothing_leaks)
{
    /* a failed constructor inside the list: the others are freed, NULL comes back */
    mt_module *net = mt_nn_sequential(mt_nn_linear(2, 3, true), mt_nn_dropout(1.5), mt_nn_relu());
    cr_expect_null(net);
    cr_expect(strstr(mt_last_error(), "Dropout") != NULL, "%s", mt_last_error());

    mt_module *lin = mt_nn_linear(2, 3, true);
    cr_expect_null(mt_module_add_param(lin, "weight", mt_zeros(MT_F32, MT_SHAPE(2))));
    cr_expect(strstr(mt_last_error(), "already has") != NULL, "%s", mt_last_error());
    cr_expect_null(mt_module_add_buffer(lin, "a.b", mt_zeros(MT_F32, MT_SHAPE(2))));
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(4, 5));
    cr_expect_null(mt_forward(lin, x));
    cr_expect(strstr(mt_last_error(), "linear") != NULL, "%s", mt_last_error());
    cr_expect_null(mt_forward(lin, NULL));
    mt_module_free(lin);
}

/* ---------------------------------------------------------------- Linear */
NN_TEST(linear_forward_is_x_wt_plus_b)
{
    mt_manual_seed(7);
    mt_module *lin = mt_nn_linear(5, 3, true);
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(4, 5));
    mt_tensor *y = mt_forward(lin, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_assert_eq(y->ndim, 2);
    cr_assert(y->shape[0] == 4 && y->shape[1] == 3);
    double *xs = to_doubles(x), *ys = to_doubles(y);
    double *w = to_doubles(mt_module_param(lin, "weight")), *b = to_doubles(mt_module_param(lin, "bias"));
    for (int i = 0; i < 4; i++)
        for (int o = 0; o < 3; o++) {
            double ref = b[o];   /* y[i, o] = sum_k x[i, k] W[o, k] + b[o] */
            for (int k = 0; k < 5; k++) ref += xs[i * 5 + k] * w[o * 5 + k];
            cr_expect_float_eq(ys[i * 3 + o], ref, 1e-5, "y[%d, %d] = %g, expected %g", i, o, ys[i * 3 + o], ref);
        }
    free(xs); free(ys); free(w); free(b);
    mt_module_free(lin);
}

NN_TEST(linear_init_bounds_and_seed)
{
    const int64_t in = 100, out = 50;
    double bound = 1.0 / sqrt((double)in);
    mt_manual_seed(42);
    mt_module *a = mt_nn_linear(in, out, true);
    mt_manual_seed(42);
    mt_module *b = mt_nn_linear(in, out, true);
    mt_manual_seed(43);
    mt_module *c = mt_nn_linear(in, out, true);
    cr_assert(a && b && c);
    const char *names[] = { "weight", "bias" };
    for (int n = 0; n < 2; n++) {
        mt_tensor *ta = mt_module_param(a, names[n]), *tb = mt_module_param(b, names[n]), *tc = mt_module_param(c, names[n]);
        double *va = to_doubles(ta), *vb = to_doubles(tb), *vc = to_doubles(tc);
        double max_abs = 0, sum = 0;
        int differ = 0;
        for (int64_t k = 0; k < mt_numel(ta); k++) {
            cr_expect(fabs(va[k]) <= bound, "%s[%ld] = %g outside +-%g", names[n], (long)k, va[k], bound);
            cr_expect_eq(va[k], vb[k], "same seed, same %s", names[n]);
            differ += va[k] != vc[k];
            max_abs = fmax(max_abs, fabs(va[k]));
            sum += va[k];
        }
        cr_expect_gt(max_abs, 0.8 * bound, "%s does not fill its range", names[n]);
        cr_expect_gt(differ, 0, "another seed gives another %s", names[n]);
        if (n == 0)   /* U(-b, b) over 5000 draws: the mean's std is b / sqrt(3 * 5000) ~ 0.008 b */
            cr_expect_lt(fabs(sum / 5000), 0.05 * bound);
        free(va); free(vb); free(vc);
    }
    mt_module_free(a);
    mt_module_free(b);
    mt_module_free(c);
}

NN_TEST(linear_without_bias)
{
    mt_module *lin = mt_nn_linear(3, 2, false);
    cr_assert_not_null(lin);
    cr_expect_null(mt_module_param(lin, "bias"));
    cr_expect_eq(mt_parameter_count(lin), 6);
    mt_tensor *y = mt_forward(lin, mt_ones(MT_F32, MT_SHAPE(2, 3)));
    cr_expect_not_null(y, "%s", mt_last_error());
    mt_module_free(lin);
}

/* ---------------------------------------------------------------- init */
typedef struct moments { double mean, std, max_abs; } moments;
static moments moments_of(const mt_tensor *t)
{
    double *v = to_doubles(t), s = 0, s2 = 0, m = 0;
    int64_t n = mt_numel(t);
    for (int64_t k = 0; k < n; k++) { s += v[k]; s2 += v[k] * v[k]; m = fmax(m, fabs(v[k])); }
    free(v);
    double mean = s / (double)n;
    return (moments){ mean, sqrt(s2 / (double)n - mean * mean), m };
}

NN_TEST(calculate_gain)
{
    cr_expect_float_eq(mt_init_calculate_gain("linear", 0), 1.0, 1e-15);
    cr_expect_float_eq(mt_init_calculate_gain("sigmoid", 0), 1.0, 1e-15);
    cr_expect_float_eq(mt_init_calculate_gain("tanh", 0), 5.0 / 3.0, 1e-15);
    cr_expect_float_eq(mt_init_calculate_gain("relu", 0), sqrt(2.0), 1e-15);
    cr_expect_float_eq(mt_init_calculate_gain("leaky_relu", 0.2), sqrt(2.0 / 1.04), 1e-15);
    cr_expect_float_eq(mt_init_calculate_gain("leaky_relu", sqrt(5.0)), sqrt(1.0 / 3.0), 1e-15);
    cr_expect_float_eq(mt_init_calculate_gain("selu", 0), 0.75, 1e-15);
    cr_expect(isnan(mt_init_calculate_gain("swishy", 0)));
    cr_expect(strstr(mt_last_error(), "swishy") != NULL);
}

NN_TEST(kaiming_and_xavier_statistics)
{
    mt_generator gen = mt_generator_new(3);
    /* [out = 256, in = 512]: fan_in 512, fan_out 256 */
    mt_tensor *w = mt_empty(MT_F64, MT_SHAPE(256, 512));

    cr_assert(mt_init_kaiming_uniform_(w, &gen, 0, MT_FAN_IN, "relu") == MT_OK, "%s", mt_last_error());
    moments m = moments_of(w);
    double std = sqrt(2.0) / sqrt(512.0), bound = sqrt(3.0) * std;
    cr_expect_leq(m.max_abs, bound);
    cr_expect_gt(m.max_abs, 0.99 * bound);
    cr_expect_float_eq(m.std, std, 0.02 * std, "kaiming_uniform std %g vs %g", m.std, std);
    cr_expect_lt(fabs(m.mean), 0.02 * std);

    cr_assert(mt_init_kaiming_normal_(w, &gen, 0, MT_FAN_OUT, "relu") == MT_OK);
    m = moments_of(w);
    std = sqrt(2.0) / sqrt(256.0);
    cr_expect_float_eq(m.std, std, 0.02 * std, "kaiming_normal std %g vs %g", m.std, std);
    cr_expect_lt(fabs(m.mean), 0.02 * std);

    cr_assert(mt_init_xavier_uniform_(w, &gen, 1.0) == MT_OK);
    m = moments_of(w);
    std = sqrt(2.0 / (256.0 + 512.0));
    bound = sqrt(3.0) * std;
    cr_expect_leq(m.max_abs, bound);
    cr_expect_float_eq(m.std, std, 0.02 * std, "xavier_uniform std %g vs %g", m.std, std);

    cr_assert(mt_init_xavier_normal_(w, &gen, 5.0 / 3.0) == MT_OK);
    m = moments_of(w);
    std = 5.0 / 3.0 * sqrt(2.0 / (256.0 + 512.0));
    cr_expect_float_eq(m.std, std, 0.02 * std, "xavier_normal std %g vs %g", m.std, std);
}

NN_TEST(init_fans_of_conv_weights)
{
    /* [out = 64, in = 16, 3, 3]: receptive 9, fan_in 144, fan_out 576 */
    mt_generator gen = mt_generator_new(5);
    mt_tensor *w = mt_empty(MT_F32, MT_SHAPE(64, 16, 3, 3));
    cr_assert(mt_init_kaiming_uniform_(w, &gen, 0, MT_FAN_IN, "relu") == MT_OK);
    moments m = moments_of(w);
    double bound = sqrt(3.0) * sqrt(2.0) / sqrt(144.0);
    cr_expect_leq(m.max_abs, bound * (1 + 1e-6));
    cr_expect_gt(m.max_abs, 0.98 * bound);
    cr_assert(mt_init_kaiming_uniform_(w, &gen, 0, MT_FAN_OUT, "relu") == MT_OK);
    m = moments_of(w);
    bound = sqrt(3.0) * sqrt(2.0) / sqrt(576.0);
    cr_expect_leq(m.max_abs, bound * (1 + 1e-6));
    cr_expect_gt(m.max_abs, 0.98 * bound);

    mt_tensor *v = mt_empty(MT_F32, MT_SHAPE(10));
    cr_expect_neq(mt_init_xavier_uniform_(v, &gen, 1), MT_OK, "a 1-d tensor has no fans");
    cr_expect(strstr(mt_last_error(), "2 dims") != NULL, "%s", mt_last_error());
}

/* ---------------------------------------------------------------- BatchNorm1d */
/* PyTorch's momentum=None (cumulative_average): the running stats are the
   plain average of every batch seen; momentum 0 freezes them (a zero is a
   zero, docs/options.md); options that did not start from MT_BN_DEFAULTS are refused. */
NN_TEST(batch_norm1d_cumulative_average_and_zero_momentum)
{
    mt_bn_opts o = MT_BN_DEFAULTS;
    o.cumulative_average = true;
    mt_module *bn = mt_nn_batch_norm1d(1, o);
    o = MT_BN_DEFAULTS;
    o.momentum = 0;
    mt_module *frozen = mt_nn_batch_norm1d(1, o);
    cr_assert(bn && frozen, "%s", mt_last_error());
    const float batches[3][2] = { { 1, 3 }, { 5, 7 }, { -2, 0 } };   /* means 2, 6, -1; unbiased variances 2, 2, 2 */
    for (int k = 0; k < 3; k++) {
        mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(2, 1), batches[k]);
        cr_assert_not_null(mt_forward(bn, x), "%s", mt_last_error());
        cr_assert_not_null(mt_forward(frozen, x), "%s", mt_last_error());
    }
    /* running_mean after 3 batches: (2 + 6 - 1) / 3 (the initial 0 is weighed out by the first batch's factor 1) */
    cr_expect_float_eq(at(mt_module_buffer(bn, "running_mean"), 0), 7.0 / 3.0, 1e-6);
    cr_expect_float_eq(at(mt_module_buffer(bn, "running_var"), 0), 2.0, 1e-6);
    cr_expect_float_eq(at(mt_module_buffer(frozen, "running_mean"), 0), 0.0, 0);
    cr_expect_float_eq(at(mt_module_buffer(frozen, "running_var"), 0), 1.0, 0);
    char repr[256];
    FILE *f = fmemopen(repr, sizeof repr, "w");
    mt_module_print(bn, f);
    fclose(f);
    cr_expect(strstr(repr, "momentum=None") != NULL, "%s", repr);
    mt_module_free(bn);
    mt_module_free(frozen);

    cr_expect_null(mt_nn_batch_norm1d(4, (mt_bn_opts){ .momentum = 0.1 }));
    cr_expect(strstr(mt_last_error(), "MT_BN_DEFAULTS") != NULL, "%s", mt_last_error());
}

NN_TEST(batch_norm1d_train_then_eval)
{
    mt_bn_opts bn_opts = MT_BN_DEFAULTS;
    bn_opts.momentum = 0.25;
    mt_module *bn = mt_nn_batch_norm1d(2, bn_opts);
    cr_assert_not_null(bn, "%s", mt_last_error());
    /* x [4, 2]: column 0 = 1, 2, 3, 6 ; column 1 = -1, 0, 1, 0 */
    const float xs[] = { 1, -1, 2, 0, 3, 1, 6, 0 };
    mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(4, 2), xs);
    double mean[2] = { 3, 0 }, var_b[2] = { (4 + 1 + 0 + 9) / 4.0, 2 / 4.0 }, var_u[2] = { 14 / 3.0, 2 / 3.0 };
    double eps = 1e-5;

    mt_tensor *y = mt_forward(bn, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 2; c++) {
            double ref = (xs[i * 2 + c] - mean[c]) / sqrt(var_b[c] + eps);   /* weight 1, bias 0 */
            cr_expect_float_eq(at(y, i * 2 + c), ref, 1e-5, "train y[%d, %d]", i, c);
        }
    /* running = (1 - momentum) running + momentum batch, unbiased variance */
    mt_tensor *rm = mt_module_buffer(bn, "running_mean"), *rv = mt_module_buffer(bn, "running_var");
    for (int c = 0; c < 2; c++) {
        cr_expect_float_eq(at(rm, c), 0.75 * 0 + 0.25 * mean[c], 1e-6, "running_mean[%d]", c);
        cr_expect_float_eq(at(rv, c), 0.75 * 1 + 0.25 * var_u[c], 1e-6, "running_var[%d]", c);
    }
    cr_expect_eq(mt_item(mt_module_buffer(bn, "num_batches_tracked")), 1);

    mt_module_train(bn, false);
    y = mt_forward(bn, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 2; c++) {
            double ref = (xs[i * 2 + c] - at(rm, c)) / sqrt(at(rv, c) + eps);
            cr_expect_float_eq(at(y, i * 2 + c), ref, 1e-5, "eval y[%d, %d]", i, c);
        }
    cr_expect_eq(mt_item(mt_module_buffer(bn, "num_batches_tracked")), 1, "eval does not count batches");
    cr_expect_float_eq(at(rm, 0), 0.75, 1e-6, "eval leaves the running stats alone");

    /* [N, C, L] is accepted too; a wrong channel count is an error */
    mt_module_train(bn, true);
    cr_expect_not_null(mt_forward(bn, mt_randn(NULL, MT_F32, MT_SHAPE(3, 2, 5))), "%s", mt_last_error());
    cr_expect_null(mt_forward(bn, mt_randn(NULL, MT_F32, MT_SHAPE(3, 4))));
    cr_expect(strstr(mt_last_error(), "BatchNorm1d") != NULL, "%s", mt_last_error());
    mt_module_free(bn);
}

NN_TEST(batch_norm1d_gradients_and_options)
{
    mt_module *bn = mt_nn_batch_norm1d(3, MT_BN_DEFAULTS);
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(6, 3));
    mt_tensor *loss = mt_sum_all(mt_mul(mt_forward(bn, x), mt_randn(NULL, MT_F32, MT_SHAPE(6, 3))));
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    cr_expect_not_null(mt_module_param(bn, "weight")->grad);
    cr_expect_not_null(mt_module_param(bn, "bias")->grad);
    mt_module_free(bn);

    mt_bn_opts bn_opts = MT_BN_DEFAULTS;
    bn_opts.affine = false;
    bn_opts.track_running_stats = false;
    mt_module *plain = mt_nn_batch_norm1d(3, bn_opts);
    cr_assert_not_null(plain);
    cr_expect_eq(plain->n_params, 0);
    cr_expect_eq(plain->n_buffers, 0);
    mt_module_train(plain, false);   /* without running stats, eval still uses the batch's */
    mt_tensor *y = mt_forward(plain, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_expect_float_eq(mt_item(mt_mean_all(y)), 0, 1e-5);
    mt_module_free(plain);
}

/* ---------------------------------------------------------------- Dropout and activations */
NN_TEST(dropout_module_modes)
{
    mt_manual_seed(11);
    mt_module *drop = mt_nn_dropout(0.25);
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(1000));
    mt_tensor *y = mt_forward(drop, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    double *v = to_doubles(y);
    int zeros = 0;
    for (int k = 0; k < 1000; k++) {
        cr_expect(v[k] == 0 || fabs(v[k] - 1 / 0.75) < 1e-6, "y[%d] = %g", k, v[k]);
        zeros += v[k] == 0;
    }
    cr_expect(zeros > 180 && zeros < 320, "%d zeros of 1000 at p = 0.25", zeros);
    free(v);
    mt_module_train(drop, false);
    y = mt_forward(drop, x);
    cr_expect_float_eq(mt_item(mt_sum_all(y)), 1000, 1e-3, "eval is the identity");
    mt_module_free(drop);
}

/* Dropout drawing from its own generator: the masks are a function of the
   generator's (seed, offset), two modules at the same state draw the same
   masks, the generator advances, and the default generator is untouched. */
NN_TEST(dropout_module_with_its_own_generator)
{
    mt_generator g1 = mt_generator_new(21), g2 = mt_generator_new(21);
    mt_module *d1 = mt_nn_dropout_gen(0.5, &g1), *d2 = mt_nn_dropout_gen(0.5, &g2);
    cr_assert(d1 && d2, "%s", mt_last_error());
    mt_manual_seed(3);
    const mt_generator before = mt_get_rng_state();
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(256));
    mt_tensor *a = mt_forward(d1, x), *b = mt_forward(d2, x);
    cr_assert(a && b, "%s", mt_last_error());
    double *va = to_doubles(a), *vb = to_doubles(b);
    int zeros = 0;
    for (int k = 0; k < 256; k++) {
        cr_assert_eq(va[k], vb[k], "element %d: the same generator state, the same mask", k);
        zeros += va[k] == 0;
    }
    cr_expect(zeros > 90 && zeros < 166, "%d zeros of 256 at p = 0.5", zeros);
    cr_expect_neq(g1.offset, 0, "the generator advanced");
    cr_expect_eq(g1.offset, g2.offset);
    const mt_generator after = mt_get_rng_state();
    cr_expect(after.seed == before.seed && after.offset == before.offset, "the default generator was not used");
    /* the next draw differs from the first (the state moved on) */
    mt_tensor *c = mt_forward(d1, x);
    double *vc = to_doubles(c);
    int same = 0;
    for (int k = 0; k < 256; k++) same += vc[k] == va[k];
    cr_expect_lt(same, 256, "a second mask equal to the first");
    free(va);
    free(vb);
    free(vc);
    mt_module_free(d1);
    mt_module_free(d2);
    cr_expect_null(mt_nn_dropout_gen(-0.1, &g1));
}

typedef struct act_case { mt_module *m; mt_tensor *(*ref)(mt_tensor *); } act_case;
static mt_tensor *ref_leaky(mt_tensor *x) { return mt_leaky_relu(x, 0.1); }
static mt_tensor *ref_elu(mt_tensor *x) { return mt_elu(x, 0.5); }
static mt_tensor *ref_gelu(mt_tensor *x) { return mt_gelu(x, MT_GELU_TANH); }
static mt_tensor *ref_softplus(mt_tensor *x) { return mt_softplus(x, 2, 10); }
static mt_tensor *ref_softmax(mt_tensor *x) { return mt_softmax(x, -1); }
static mt_tensor *ref_log_softmax(mt_tensor *x) { return mt_log_softmax(x, 0); }

NN_TEST(activation_modules_match_ops)
{
    act_case cases[] = {
        { mt_nn_identity(), mt_identity }, { mt_nn_sigmoid(), mt_sigmoid }, { mt_nn_tanh(), mt_tanh },
        { mt_nn_relu(), mt_relu }, { mt_nn_leaky_relu(0.1), ref_leaky }, { mt_nn_elu(0.5), ref_elu },
        { mt_nn_gelu(MT_GELU_TANH), ref_gelu }, { mt_nn_silu(), mt_silu }, { mt_nn_softplus(2, 10), ref_softplus },
        { mt_nn_softmax(-1), ref_softmax }, { mt_nn_log_softmax(0), ref_log_softmax },
    };
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(3, 4));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_not_null(cases[i].m);
        mt_tensor *y = mt_forward(cases[i].m, x), *r = cases[i].ref(x);
        cr_assert(y && r, "%s: %s", cases[i].m->type->name, mt_last_error());
        double diff = mt_item(mt_sum_all(mt_abs(mt_sub(y, r))));
        cr_expect_eq(diff, 0, "%s differs from its op by %g", cases[i].m->type->name, diff);
        cr_expect_eq(mt_parameter_count(cases[i].m), 0);
        mt_module_free(cases[i].m);
    }
}

NN_TEST(swish_beta_receives_a_gradient)
{
    mt_module *swish = mt_nn_swish(1.5);
    cr_assert_not_null(swish, "%s", mt_last_error());
    mt_tensor *beta = mt_module_param(swish, "beta");
    cr_assert_not_null(beta);
    cr_expect_eq(mt_parameter_count(swish), 1);
    const float xs[] = { -2, -0.5, 0.25, 1, 3 };
    mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(5), xs);
    mt_tensor *y = mt_forward(swish, x);
    cr_assert(y && mt_backward(mt_sum_all(y)) == MT_OK, "%s", mt_last_error());
    cr_assert_not_null(beta->grad);
    /* d/d(beta) sum x sigmoid(beta x) = sum x^2 s (1 - s), s = sigmoid(beta x) */
    double ref = 0;
    for (int k = 0; k < 5; k++) {
        double s = 1 / (1 + exp(-1.5 * xs[k]));
        ref += xs[k] * xs[k] * s * (1 - s);
        cr_expect_float_eq(at(y, k), xs[k] * s, 1e-6);
    }
    cr_expect_float_eq(mt_item(beta->grad), ref, 1e-5, "dbeta %g vs %g", mt_item(beta->grad), ref);
    mt_module_free(swish);
}

NN_TEST(sequential_append_and_empty)
{
    mt_module *seq = mt_nn_sequential_n((mt_module *const[]){ NULL });
    cr_assert_not_null(seq, "%s", mt_last_error());
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(2, 3));
    cr_expect_eq(mt_forward(seq, x), x, "an empty Sequential is the identity");
    cr_assert_eq(mt_nn_sequential_append(seq, mt_nn_linear(3, 4, true)), seq);
    cr_assert_eq(mt_nn_sequential_append(seq, mt_nn_relu()), seq);
    cr_expect_str_eq(seq->child_names[1], "1");
    mt_tensor *y = mt_forward(seq, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_expect_eq(y->shape[1], 4);
    cr_expect_geq(mt_item(mt_min(mt_reshape(y, 1, (int64_t[]){ -1 }), 0, false)), 0);
    mt_module_free(seq);
}

/* A failed append frees what was built: a chain of appends is checked once
   (ASan's leak check in CI sees anything left behind). */
NN_TEST(sequential_append_failure_frees_both)
{
    mt_module *seq = mt_nn_sequential_append(mt_nn_sequential(mt_nn_relu()), mt_nn_linear(2, 3, true));
    cr_assert_not_null(seq, "%s", mt_last_error());
    cr_assert_eq(seq->n_children, 2);
    cr_assert_null(mt_nn_sequential_append(seq, NULL));          /* frees seq */
    cr_assert_null(mt_nn_sequential_append(NULL, mt_nn_tanh()));  /* frees the tanh */
}

/* state_dict()[name], and nn.Flatten */
NN_TEST(tensor_list_lookup_and_flatten)
{
    mt_module *net = mt_nn_sequential(mt_nn_flatten(1, -1), mt_nn_linear(12, 2, true));
    cr_assert_not_null(net, "%s", mt_last_error());
    mt_tensor_list sd = mt_state_dict(net);
    mt_tensor *w = mt_tensor_list_get(sd, "1.weight");
    cr_expect(w == mt_module_param(net->children[1], "weight"));
    cr_expect_null(mt_tensor_list_get(sd, "1.nope"));
    cr_expect(strstr(mt_last_error(), "\"1.nope\"") != NULL, "%s", mt_last_error());
    mt_tensor_list_free(&sd);

    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(5, 3, 2, 2));
    mt_tensor *y = mt_forward(net, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_expect(y->ndim == 2 && y->shape[0] == 5 && y->shape[1] == 2);
    mt_module *middle = mt_nn_flatten(1, 2);
    mt_tensor *z = mt_forward(middle, x);
    cr_assert_not_null(z, "%s", mt_last_error());
    cr_expect(z->ndim == 3 && z->shape[1] == 6 && z->shape[2] == 2);
    char repr[128];
    FILE *f = fmemopen(repr, sizeof repr, "w");
    mt_module_print(middle, f);
    fclose(f);
    cr_expect(strstr(repr, "Flatten(start_dim=1, end_dim=2)") != NULL, "%s", repr);
    mt_module *bad = mt_nn_flatten(1, 7);
    cr_expect_null(mt_forward(bad, x), "a dim out of range is an error");
    mt_module_free(bad);
    mt_module_free(middle);
    mt_module_free(net);
}
