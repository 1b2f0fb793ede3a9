/*
 * test_nn_norm.c - the normalization modules of the CNN stack: LayerNorm
 * (channels last, and channels first as ConvNeXt's LayerNorm2d), GroupNorm
 * and BatchNorm2d. Forward against the functional ops (and BatchNorm2d
 * against plain loops in training and eval), PyTorch's state-dict names and
 * printing, the options' rules, bad arguments and inputs, a save/load round
 * trip, moving to cuda-emu and converting to f64.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NN_NORM_TEST(name) Test(nn_norm, name, .init = mt_test_setup, .fini = mt_test_teardown)

/* The module as mt_module_print writes it (its first line for a leaf). */
static const char *printed(const mt_module *m)
{
    static char buf[1024];
    memset(buf, 0, sizeof buf);
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    cr_assert_not_null(f);
    mt_module_print(m, f);
    fclose(f);
    return buf;
}

/* The state dict's names, joined by spaces. */
static const char *state_names(const mt_module *m)
{
    static char buf[1024];
    buf[0] = 0;
    mt_tensor_list sd = mt_state_dict(m);
    for (int i = 0; i < sd.n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", sd.items[i].name);
    mt_tensor_list_free(&sd);
    return buf;
}

/* max |a - b| over all elements (same shape). */
static double max_diff(mt_tensor *a, mt_tensor *b)
{
    cr_assert(a && b, "%s", mt_last_error());
    mt_tensor *d = mt_abs(mt_sub(mt_to_device(a, mt_cpu()), mt_to_device(b, mt_cpu())));
    int64_t n = mt_numel(d);
    return mt_item(mt_max(mt_reshape(d, 1, &n), 0, false));
}

/* Gives every parameter of m values drawn from gen (so that the affine maps are not the identity). */
static void randomize(mt_module *m, uint64_t seed)
{
    mt_generator gen = mt_generator_new(seed);
    mt_tensor_list params = mt_parameters(m);
    for (int i = 0; i < params.n; i++)
        MT_NO_GRAD { cr_assert(mt_uniform_(params.items[i].tensor, &gen, 0.5, 1.5) == MT_OK, "%s", mt_last_error()); }
    mt_tensor_list_free(&params);
}

/* ---------------------------------------------------------------- LayerNorm */
NN_NORM_TEST(layer_norm_module)
{
    mt_module *ln = mt_nn_layer_norm(MT_SHAPE(8), MT_LN_DEFAULTS);
    cr_assert_not_null(ln, "%s", mt_last_error());
    cr_expect_str_eq(state_names(ln), "weight bias");
    cr_expect_str_eq(printed(ln), "LayerNorm((8,), eps=1e-05, elementwise_affine=True)\n");
    cr_expect_float_eq(mt_item(mt_sum_all(mt_module_param(ln, "weight"))), 8, 0, "weight starts at ones");
    cr_expect_float_eq(mt_item(mt_sum_all(mt_abs(mt_module_param(ln, "bias")))), 0, 0, "bias starts at zeros");
    randomize(ln, 1);
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(2, 3, 8));
    mt_tensor *y = mt_forward(ln, x);
    mt_tensor *want = mt_layer_norm(x, MT_SHAPE(8), mt_module_param(ln, "weight"), mt_module_param(ln, "bias"), 1e-5);
    cr_expect_eq(max_diff(y, want), 0, "the module is the functional op");
    mt_tensor *loss = mt_sum_all(mt_mul(y, mt_randn(NULL, MT_F32, MT_SHAPE(2, 3, 8))));
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    cr_expect_not_null(mt_grad(mt_module_param(ln, "weight")));
    cr_expect_not_null(mt_grad(mt_module_param(ln, "bias")));
    /* the trailing dims must be normalized_shape */
    cr_expect_null(mt_forward(ln, mt_randn(NULL, MT_F32, MT_SHAPE(2, 7))));
    cr_expect(strstr(mt_last_error(), "layer_norm") && strstr(mt_last_error(), "[8]"), "%s", mt_last_error());
    mt_module_free(ln);

    /* two normalized dims, no bias; no affine at all */
    mt_ln_opts o = MT_LN_DEFAULTS;
    o.bias = false;
    o.eps = 1e-6;
    mt_module *ln2 = mt_nn_layer_norm(MT_SHAPE(4, 5), o);
    cr_assert_not_null(ln2, "%s", mt_last_error());
    cr_expect_str_eq(state_names(ln2), "weight");
    cr_expect_str_eq(printed(ln2), "LayerNorm((4, 5), eps=1e-06, elementwise_affine=True)\n");
    cr_expect_eq(mt_module_param(ln2, "weight")->ndim, 2);
    x = mt_randn(NULL, MT_F32, MT_SHAPE(3, 4, 5));
    cr_expect_eq(max_diff(mt_forward(ln2, x), mt_layer_norm(x, MT_SHAPE(4, 5), mt_module_param(ln2, "weight"), NULL, 1e-6)), 0);
    mt_module_free(ln2);
    o = MT_LN_DEFAULTS;
    o.elementwise_affine = false;
    mt_module *plain = mt_nn_layer_norm(MT_SHAPE(5), o);
    cr_assert_not_null(plain, "%s", mt_last_error());
    cr_expect_eq(plain->n_params, 0);
    cr_expect_str_eq(printed(plain), "LayerNorm((5,), eps=1e-05, elementwise_affine=False)\n");
    y = mt_forward(plain, mt_randn(NULL, MT_F32, MT_SHAPE(6, 5)));
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_expect_float_eq(mt_item(mt_mean_all(y)), 0, 1e-6);
    mt_module_free(plain);
}

/* channels_first: ConvNeXt's LayerNorm2d, over dim 1 of (N, C, H, W). */
NN_NORM_TEST(layer_norm_channels_first_module)
{
    mt_ln_opts o = MT_LN_DEFAULTS;
    o.channels_first = true;
    o.eps = 1e-6;
    mt_module *ln = mt_nn_layer_norm(MT_SHAPE(6), o);
    cr_assert_not_null(ln, "%s", mt_last_error());
    cr_expect_str_eq(state_names(ln), "weight bias");
    cr_expect_str_eq(printed(ln), "LayerNorm2d((6,), eps=1e-06, elementwise_affine=True)\n");
    randomize(ln, 2);
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(2, 6, 3, 4));
    mt_tensor *y = mt_forward(ln, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_expect_eq(y->ndim, 4);
    cr_expect_eq(y->shape[1], 6);
    /* the channels-last layer norm of the permuted input, permuted back */
    mt_tensor *last = mt_layer_norm(mt_permute(x, (int[]){ 0, 2, 3, 1 }), MT_SHAPE(6), mt_module_param(ln, "weight"),
                                    mt_module_param(ln, "bias"), 1e-6);
    cr_expect_eq(max_diff(y, mt_permute(last, (int[]){ 0, 3, 1, 2 })), 0);
    cr_expect_null(mt_forward(ln, mt_randn(NULL, MT_F32, MT_SHAPE(2, 5, 3, 4))));
    cr_expect(strstr(mt_last_error(), "[6]"), "%s", mt_last_error());
    mt_module_free(ln);
    cr_expect_null(mt_nn_layer_norm(MT_SHAPE(6, 2), o));
    cr_expect(strstr(mt_last_error(), "LayerNorm2d") && strstr(mt_last_error(), "one dim"), "%s", mt_last_error());
}

NN_NORM_TEST(layer_norm_bad_arguments)
{
    cr_expect_null(mt_nn_layer_norm(MT_SHAPE(4), (mt_ln_opts){ .eps = 1e-5 }));
    cr_expect(strstr(mt_last_error(), "MT_LN_DEFAULTS"), "%s", mt_last_error());
    cr_expect_null(mt_nn_layer_norm(0, NULL, MT_LN_DEFAULTS));
    cr_expect(strstr(mt_last_error(), "LayerNorm: normalized_shape"), "%s", mt_last_error());
    cr_expect_null(mt_nn_layer_norm(MT_SHAPE(4, -1), MT_LN_DEFAULTS));
    mt_ln_opts o = MT_LN_DEFAULTS;
    o.eps = -1;
    cr_expect_null(mt_nn_layer_norm(MT_SHAPE(4), o));
    cr_expect(strstr(mt_last_error(), "eps"), "%s", mt_last_error());
}

/* ---------------------------------------------------------------- GroupNorm */
NN_NORM_TEST(group_norm_module)
{
    mt_module *gn = mt_nn_group_norm(2, 6, MT_GN_DEFAULTS);
    cr_assert_not_null(gn, "%s", mt_last_error());
    cr_expect_str_eq(state_names(gn), "weight bias");
    cr_expect_str_eq(printed(gn), "GroupNorm(2, 6, eps=1e-05, affine=True)\n");
    cr_expect_eq(mt_module_param(gn, "weight")->shape[0], 6);
    randomize(gn, 3);
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(3, 6, 4, 5));
    mt_tensor *y = mt_forward(gn, x);
    cr_expect_eq(max_diff(y, mt_group_norm(x, 2, mt_module_param(gn, "weight"), mt_module_param(gn, "bias"), 1e-5)), 0);
    mt_tensor *loss = mt_sum_all(mt_mul(y, y));
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    cr_expect_not_null(mt_grad(mt_module_param(gn, "bias")));
    cr_expect_null(mt_forward(gn, mt_randn(NULL, MT_F32, MT_SHAPE(3, 4, 5))));
    cr_expect(strstr(mt_last_error(), "GroupNorm: input [3, 4, 5]") && strstr(mt_last_error(), "[N, 6, *]"), "%s",
              mt_last_error());
    mt_module_free(gn);

    mt_gn_opts o = MT_GN_DEFAULTS;
    o.affine = false;
    mt_module *plain = mt_nn_group_norm(3, 6, o);
    cr_assert_not_null(plain, "%s", mt_last_error());
    cr_expect_eq(plain->n_params, 0);
    cr_expect_str_eq(printed(plain), "GroupNorm(3, 6, eps=1e-05, affine=False)\n");
    mt_module_free(plain);

    cr_expect_null(mt_nn_group_norm(4, 6, MT_GN_DEFAULTS));
    cr_expect(strstr(mt_last_error(), "divisible") && strstr(mt_last_error(), "num_groups=4"), "%s", mt_last_error());
    cr_expect_null(mt_nn_group_norm(0, 6, MT_GN_DEFAULTS));
    cr_expect_null(mt_nn_group_norm(2, 6, (mt_gn_opts){ .eps = 1e-5, .affine = true }));
    cr_expect(strstr(mt_last_error(), "MT_GN_DEFAULTS"), "%s", mt_last_error());
}

/* ---------------------------------------------------------------- BatchNorm2d */
NN_NORM_TEST(batch_norm2d_train_then_eval)
{
    mt_bn_opts o = MT_BN_DEFAULTS;
    o.momentum = 0.25;
    mt_module *bn = mt_nn_batch_norm2d(2, o);
    cr_assert_not_null(bn, "%s", mt_last_error());
    cr_expect_str_eq(state_names(bn), "weight bias running_mean running_var num_batches_tracked");
    cr_expect_str_eq(printed(bn), "BatchNorm2d(2, eps=1e-05, momentum=0.25, affine=True, track_running_stats=True)\n");

    enum { N = 3, C = 2, HW = 4 };
    mt_generator gen = mt_generator_new(6);
    mt_tensor *x = mt_uniform(&gen, MT_F32, MT_SHAPE(N, C, 2, 2), -1, 3);
    float xv[N * C * HW];
    cr_assert(mt_to_data(x, MT_F32, xv) == MT_OK);
    double mean[C] = { 0 }, var[C] = { 0 };
    for (int c = 0; c < C; c++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) mean[c] += xv[(i * C + c) * HW + j] / (double)(N * HW);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) var[c] += pow(xv[(i * C + c) * HW + j] - mean[c], 2);
    }
    mt_tensor *y = mt_forward(bn, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    float yv[N * C * HW], rm[C], rv[C];
    cr_assert(mt_to_data(y, MT_F32, yv) == MT_OK);
    for (int k = 0; k < N * C * HW; k++) {
        int c = (k / HW) % C;
        double ref = (xv[k] - mean[c]) / sqrt(var[c] / (N * HW) + 1e-5);
        cr_expect_float_eq(yv[k], ref, 1e-5, "train y[%d]: %g vs %g", k, yv[k], ref);
    }
    cr_assert(mt_to_data(mt_module_buffer(bn, "running_mean"), MT_F32, rm) == MT_OK);
    cr_assert(mt_to_data(mt_module_buffer(bn, "running_var"), MT_F32, rv) == MT_OK);
    for (int c = 0; c < C; c++) {
        cr_expect_float_eq(rm[c], 0.25 * mean[c], 1e-6, "running_mean[%d]", c);
        cr_expect_float_eq(rv[c], 0.75 + 0.25 * var[c] / (N * HW - 1), 1e-6, "running_var[%d]", c);
    }
    cr_expect_eq(mt_item(mt_module_buffer(bn, "num_batches_tracked")), 1);

    mt_module_train(bn, false);
    y = mt_forward(bn, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_assert(mt_to_data(y, MT_F32, yv) == MT_OK);
    for (int k = 0; k < N * C * HW; k++) {
        int c = (k / HW) % C;
        cr_expect_float_eq(yv[k], (xv[k] - rm[c]) / sqrt(rv[c] + 1e-5), 1e-5, "eval y[%d]", k);
    }
    cr_expect_eq(mt_item(mt_module_buffer(bn, "num_batches_tracked")), 1, "eval does not count batches");

    /* 4-d only, with its channel count */
    mt_module_train(bn, true);
    cr_expect_null(mt_forward(bn, mt_randn(NULL, MT_F32, MT_SHAPE(3, 2, 5))));
    cr_expect(strstr(mt_last_error(), "BatchNorm2d: input [3, 2, 5]") && strstr(mt_last_error(), "[N, 2, H, W]"), "%s",
              mt_last_error());
    cr_expect_null(mt_forward(bn, mt_randn(NULL, MT_F32, MT_SHAPE(3, 4, 2, 2))));
    mt_module_free(bn);
    cr_expect_null(mt_nn_batch_norm2d(0, MT_BN_DEFAULTS));
    cr_expect(strstr(mt_last_error(), "BatchNorm2d"), "%s", mt_last_error());
    cr_expect_null(mt_nn_batch_norm2d(3, (mt_bn_opts){ .momentum = 0.1 }));
    cr_expect(strstr(mt_last_error(), "BatchNorm2d") && strstr(mt_last_error(), "MT_BN_DEFAULTS"), "%s", mt_last_error());
}

/* ---------------------------------------------------------------- all of them together */
/* BatchNorm2d(6) - GroupNorm(3, 6) - LayerNorm2d(6) - LayerNorm((3, 4)) on [2, 6, 3, 4] */
static mt_module *norm_net(void)
{
    mt_ln_opts first = MT_LN_DEFAULTS;
    first.channels_first = true;
    mt_module *net = mt_nn_sequential(mt_nn_batch_norm2d(6, MT_BN_DEFAULTS), mt_nn_group_norm(3, 6, MT_GN_DEFAULTS),
                                      mt_nn_layer_norm(MT_SHAPE(6), first), mt_nn_layer_norm(MT_SHAPE(3, 4), MT_LN_DEFAULTS));
    cr_assert_not_null(net, "%s", mt_last_error());
    randomize(net, 8);
    return net;
}

NN_NORM_TEST(state_dict_save_load_round_trip)
{
    mt_module *a = norm_net(), *b = norm_net();
    randomize(b, 9);
    /* PyTorch's order: each module's parameters, then its buffers */
    cr_expect_str_eq(state_names(a), "0.weight 0.bias 0.running_mean 0.running_var 0.num_batches_tracked "
                                     "1.weight 1.bias 2.weight 2.bias 3.weight 3.bias");
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(2, 6, 3, 4));
    cr_assert_not_null(mt_forward(a, x), "%s", mt_last_error());   /* moves a's running statistics */
    char dir[128];
    mt_test_temp_dir(dir, sizeof dir, "nn_norm");
    const char *path = mt_test_path(dir, "net.safetensors");
    cr_assert(mt_module_save(a, path) == MT_OK, "%s", mt_last_error());
    cr_assert(mt_module_load(b, path) == MT_OK, "%s", mt_last_error());
    mt_module_train(a, false);
    mt_module_train(b, false);
    cr_expect_eq(max_diff(mt_forward(a, x), mt_forward(b, x)), 0, "the loaded module computes the same");
    mt_test_remove_tree(dir);
    mt_module_free(a);
    mt_module_free(b);
}

NN_NORM_TEST(to_cuda_emu_and_to_f64)
{
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    mt_module *net = norm_net(), *ref = norm_net();
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(2, 6, 3, 4));
    mt_tensor *want = mt_forward(ref, x);
    if (mt_device_available(emu, NULL)) {
        cr_assert(mt_module_to(net, emu) == MT_OK, "%s", mt_last_error());
        mt_tensor *y = mt_forward(net, mt_to_device(x, emu));
        cr_assert(y && mt_device_of(y).type == MT_DEVICE_CUDA_EMU, "%s", mt_last_error());
        cr_expect_leq(max_diff(y, want), 1e-5, "cuda-emu against cpu");
        cr_assert(mt_module_to(net, mt_cpu()) == MT_OK, "%s", mt_last_error());
    }
    mt_module *net64 = norm_net();
    cr_assert(mt_module_to_dtype(net64, MT_F64) == MT_OK, "%s", mt_last_error());
    mt_tensor *y64 = mt_forward(net64, mt_to_dtype(x, MT_F64));
    cr_assert(y64 && y64->dtype == MT_F64, "%s", mt_last_error());
    cr_expect_leq(max_diff(mt_to_dtype(y64, MT_F32), want), 1e-5, "f64 against f32");
    mt_module_free(net);
    mt_module_free(ref);
    mt_module_free(net64);
}
