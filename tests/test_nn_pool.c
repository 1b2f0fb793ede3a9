/*
 * test_nn_pool.c - the pooling and resampling layers (engine/nn/nn_pool.c):
 * each against its functional op, printing as PyTorch prints them, bad
 * options, a small CNN head trained one step through them, and the layers
 * on cuda-emu and in f64.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define NN_POOL_TEST(name) Test(nn_pool, name, .init = mt_test_setup, .fini = mt_test_teardown)

static bool same_values(const mt_tensor *a, const mt_tensor *b)
{
    if (!a || !b || !mt_same_shape(a, b)) return false;
    int64_t n = mt_numel(a);
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    bool same = mt_to_data(a, MT_F64, x) == MT_OK && mt_to_data(b, MT_F64, y) == MT_OK &&
                memcmp(x, y, sizeof(double) * (size_t)n) == 0;
    free(x);
    free(y);
    return same;
}

static mt_max_pool2d_opts stem_pool(void)
{
    mt_max_pool2d_opts o = MT_MAX_POOL2D_DEFAULTS(3, 3);
    o.stride[0] = o.stride[1] = 2;
    o.padding[0] = o.padding[1] = 1;
    return o;
}

NN_POOL_TEST(layers_are_their_functional_ops)
{
    mt_generator gen = mt_generator_new(1);
    mt_tensor *x2 = mt_randn(&gen, MT_F32, MT_SHAPE(2, 3, 9, 8)), *x1 = mt_randn(&gen, MT_F32, MT_SHAPE(2, 3, 11));
    mt_avg_pool2d_opts a2 = MT_AVG_POOL2D_DEFAULTS(2, 3);
    a2.count_include_pad = false;
    a2.padding[1] = 1;
    mt_avg_pool1d_opts a1 = MT_AVG_POOL1D_DEFAULTS(3);
    mt_max_pool1d_opts m1 = MT_MAX_POOL1D_DEFAULTS(2);
    mt_interpolate_opts up = { .scale_factor = { 2, 2 }, .mode = MT_INTERP_BILINEAR };
    struct { mt_module *m; mt_tensor *x, *expect; } cases[] = {
        { mt_nn_max_pool2d(stem_pool()), x2, mt_max_pool2d(x2, stem_pool(), NULL) },
        { mt_nn_max_pool1d(m1), x1, mt_max_pool1d(x1, m1, NULL) },
        { mt_nn_avg_pool2d(a2), x2, mt_avg_pool2d(x2, a2) },
        { mt_nn_avg_pool1d(a1), x1, mt_avg_pool1d(x1, a1) },
        { mt_nn_adaptive_avg_pool2d(1, 1), x2, mt_adaptive_avg_pool2d(x2, 1, 1) },
        { mt_nn_adaptive_avg_pool1d(4), x1, mt_adaptive_avg_pool1d(x1, 4) },
        { mt_nn_adaptive_max_pool2d(2, 3), x2, mt_adaptive_max_pool2d(x2, 2, 3, NULL) },
        { mt_nn_upsample(up), x2, mt_interpolate(x2, up) },
        { mt_nn_upsample1d(3), x1, mt_upsample1d(x1, 3) },
        { mt_nn_upsample2d(2), x2, mt_upsample2d(x2, 2) },
        { mt_nn_downsample1d(2), x1, mt_downsample1d(x1, 2) },
        { mt_nn_downsample2d(3), x2, mt_downsample2d(x2, 3) },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_not_null(cases[i].m, "layer %zu: %s", i, mt_last_error());
        cr_assert_eq(mt_parameter_count(cases[i].m), 0);
        mt_tensor *y = mt_forward(cases[i].m, cases[i].x);
        cr_assert(same_values(y, cases[i].expect), "layer %zu (%s) differs from its op: %s", i, cases[i].m->type->name,
                  y ? "values" : mt_last_error());
        mt_module_free(cases[i].m);
    }
}

NN_POOL_TEST(print_matches_pytorch)
{
    mt_max_pool2d_opts rect = MT_MAX_POOL2D_DEFAULTS(3, 2);
    rect.ceil_mode = true;
    mt_avg_pool1d_opts a1 = MT_AVG_POOL1D_DEFAULTS(3);
    a1.stride = 2;
    mt_max_pool1d_opts m1 = MT_MAX_POOL1D_DEFAULTS(3);
    m1.stride = 2;
    mt_module *net = mt_nn_sequential(
        mt_nn_max_pool2d(stem_pool()), mt_nn_max_pool2d(rect), mt_nn_avg_pool2d(MT_AVG_POOL2D_DEFAULTS(2, 2)),
        mt_nn_adaptive_avg_pool2d(1, 1), mt_nn_avg_pool1d(a1), mt_nn_max_pool1d(m1), mt_nn_adaptive_avg_pool1d(5),
        mt_nn_upsample((mt_interpolate_opts){ .scale_factor = { 2, 2 } }),
        mt_nn_upsample((mt_interpolate_opts){ .size = { 4, 6 }, .mode = MT_INTERP_BILINEAR, .align_corners = true }),
        mt_nn_upsample((mt_interpolate_opts){ .scale_factor = { 1.5 }, .mode = MT_INTERP_LINEAR }),
        mt_nn_upsample1d(2), mt_nn_downsample2d(3));
    cr_assert_not_null(net, "%s", mt_last_error());
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    mt_module_print(net, f);
    fclose(f);
    const char *expected =
        "Sequential(\n"
        "  (0): MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)\n"
        "  (1): MaxPool2d(kernel_size=(3, 2), stride=(3, 2), padding=0, dilation=1, ceil_mode=True)\n"
        "  (2): AvgPool2d(kernel_size=2, stride=2, padding=0)\n"
        "  (3): AdaptiveAvgPool2d(output_size=(1, 1))\n"
        "  (4): AvgPool1d(kernel_size=(3,), stride=(2,), padding=(0,))\n"
        "  (5): MaxPool1d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (6): AdaptiveAvgPool1d(output_size=5)\n"
        "  (7): Upsample(scale_factor=2.0, mode='nearest')\n"
        "  (8): Upsample(size=(4, 6), mode='bilinear')\n"
        "  (9): Upsample(scale_factor=1.5, mode='linear')\n"
        "  (10): Upsample1d(upsampling_factor=2)\n"
        "  (11): Downsample2d(downsampling_factor=3)\n"
        ")\n";
    cr_expect_str_eq(text, expected);
    free(text);
    mt_module_free(net);
}

NN_POOL_TEST(bad_options)
{
#define EXPECT_REFUSED(call, want)                                                                  \
    do {                                                                                            \
        mt_module *m_ = (call);                                                                     \
        cr_expect_null(m_, "%s should fail", #call);                                                \
        mt_module_free(m_);                                                                         \
        cr_expect(strstr(mt_last_error(), (want)) != NULL, "%s: \"%s\" lacks \"%s\"", #call, mt_last_error(), (want)); \
    } while (0)
    EXPECT_REFUSED(mt_nn_max_pool2d((mt_max_pool2d_opts){ .kernel_size = { 2, 2 }, .stride = { 2, 2 } }),
                   "MT_MAX_POOL2D_DEFAULTS");
    EXPECT_REFUSED(mt_nn_max_pool1d(MT_MAX_POOL1D_DEFAULTS(0)), "MaxPool1d: need kernel_size");
    EXPECT_REFUSED(mt_nn_avg_pool1d((mt_avg_pool1d_opts){ .kernel_size = 2 }), "MT_AVG_POOL1D_DEFAULTS");
    EXPECT_REFUSED(mt_nn_adaptive_avg_pool2d(0, 3), "AdaptiveAvgPool2d: the output size must be positive, got (0, 3)");
    EXPECT_REFUSED(mt_nn_adaptive_avg_pool1d(-1), "AdaptiveAvgPool1d: the output size must be positive, got -1");
    EXPECT_REFUSED(mt_nn_upsample((mt_interpolate_opts){ .mode = MT_INTERP_NEAREST }),
                   "Upsample: give either size or scale_factor");
    EXPECT_REFUSED(mt_nn_upsample((mt_interpolate_opts){ .size = { 2, 2 }, .align_corners = true }), "align_corners");
    EXPECT_REFUSED(mt_nn_upsample1d(0), "Upsample1d: the factor must be >= 1, got 0");
    EXPECT_REFUSED(mt_nn_downsample2d(-3), "Downsample2d: the factor must be >= 1, got -3");
    mt_avg_pool2d_opts pad = MT_AVG_POOL2D_DEFAULTS(3, 3);
    pad.padding[1] = 2;
    EXPECT_REFUSED(mt_nn_avg_pool2d(pad), "along W");
    /* what depends on the input fails at forward, with the op's message */
    mt_module *big = mt_nn_max_pool2d(MT_MAX_POOL2D_DEFAULTS(5, 5));
    cr_assert_null(mt_forward(big, mt_zeros(MT_F32, MT_SHAPE(1, 1, 4, 4))));
    cr_expect(strstr(mt_last_error(), "max_pool2d") && strstr(mt_last_error(), "[1, 1, 4, 4]"), "%s", mt_last_error());
    mt_module_free(big);
}

/* conv-free CNN head: MaxPool2d -> AdaptiveAvgPool2d(1) -> Flatten -> Linear, one backward */
NN_POOL_TEST(cnn_head_backward_on_cuda_emu_and_in_f64)
{
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    bool has_emu = mt_device_available(emu, NULL);
    mt_generator gen = mt_generator_new(2);
    mt_tensor *x = mt_randn(&gen, MT_F32, MT_SHAPE(4, 6, 12, 12));
    mt_tensor *target = mt_from_data(MT_I64, MT_SHAPE(4), (int64_t[]){ 0, 2, 1, 2 });
    mt_manual_seed(9);
    mt_module *net = mt_nn_sequential(mt_nn_max_pool2d(stem_pool()), mt_nn_adaptive_avg_pool2d(1, 1),
                                      mt_nn_flatten(1, -1), mt_nn_linear(6, 3, true));
    cr_assert_not_null(net, "%s", mt_last_error());
    mt_tensor *loss_cpu = mt_cross_entropy(mt_forward(net, x), target, (mt_ce_opts){ 0 });
    cr_assert(loss_cpu && mt_backward(loss_cpu) == MT_OK, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(net->children[3], "weight");
    double *grad_cpu = malloc(sizeof(double) * 18);
    cr_assert_eq(mt_to_data(w->grad, MT_F64, grad_cpu), MT_OK);
    mt_module_zero_grad(net);
    if (has_emu) {
        cr_assert_eq(mt_module_to(net, emu), MT_OK, "%s", mt_last_error());
        mt_tensor *loss = mt_cross_entropy(mt_forward(net, mt_to_device(x, emu)), mt_to_device(target, emu),
                                           (mt_ce_opts){ 0 });
        cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
        cr_expect_float_eq(mt_item(loss), mt_item(loss_cpu), 1e-5);
        double grad[18];
        cr_assert_eq(mt_to_data(w->grad, MT_F64, grad), MT_OK);
        for (int i = 0; i < 18; i++) cr_expect_float_eq(grad[i], grad_cpu[i], 1e-5, "weight grad %d on cuda-emu", i);
        cr_assert_eq(mt_module_to(net, mt_cpu()), MT_OK);
        mt_module_zero_grad(net);
    }
    cr_assert_eq(mt_module_to_dtype(net, MT_F64), MT_OK, "%s", mt_last_error());
    mt_tensor *loss64 = mt_cross_entropy(mt_forward(net, mt_to_dtype(x, MT_F64)), target, (mt_ce_opts){ 0 });
    cr_assert(loss64 && loss64->dtype == MT_F64 && mt_backward(loss64) == MT_OK, "%s", mt_last_error());
    cr_expect_float_eq(mt_item(loss64), mt_item(loss_cpu), 1e-5);
    free(grad_cpu);
    mt_module_free(net);
}
