/*
 * test_nn_conv.c - the convolution layers (engine/nn/nn_conv.c): parameter
 * names and shapes as PyTorch's, PyTorch's initialization bounds, the
 * printed form, forward equal to the functional op, and the errors.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

#define NN_CONV_TEST(name) Test(nn_conv, name, .init = mt_test_setup, .fini = mt_test_teardown)

static void module_repr(const mt_module *m, char *buf, size_t size)
{
    FILE *f = fmemopen(buf, size, "w");
    cr_assert(f);
    mt_module_print(m, f);
    fclose(f);
}

static double max_abs(const mt_tensor *t)
{
    int64_t n = mt_numel(t);
    double *v = malloc(sizeof(double) * (size_t)n), worst = 0;
    cr_assert(v);
    cr_assert_eq(mt_to_data(t, MT_F64, v), MT_OK);
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(v[i]));
    free(v);
    return worst;
}

NN_CONV_TEST(conv2d_parameters_init_and_repr)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    o.stride[0] = o.stride[1] = 2;
    o.padding[0] = o.padding[1] = 3;
    mt_module *m = mt_nn_conv2d(6, 64, 7, 5, false, o);
    cr_assert(m, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(m, "weight");
    cr_assert(w && w->ndim == 4 && w->shape[0] == 64 && w->shape[1] == 6 && w->shape[2] == 7 && w->shape[3] == 5);
    cr_assert_null(mt_module_param(m, "bias"));
    /* kaiming_uniform_(a = sqrt(5)): bound 1 / sqrt(fan_in), fan_in = 6 * 7 * 5 */
    double bound = 1 / sqrt(6.0 * 35), got = max_abs(w);
    cr_assert(got <= bound && got > 0.9 * bound, "weights within %g, largest %g", bound, got);
    char repr[256];
    module_repr(m, repr, sizeof repr);
    cr_assert(strstr(repr, "Conv2d(6, 64, kernel_size=(7, 5), stride=(2, 2), padding=(3, 3), bias=False)"), "%s", repr);
    mt_module_free(m);
}

NN_CONV_TEST(grouped_and_transposed_shapes)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    o.groups = 4;
    mt_module *dw = mt_nn_conv1d(8, 16, 3, true, o);
    cr_assert(dw, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(dw, "weight"), *b = mt_module_param(dw, "bias");
    cr_assert(w->ndim == 3 && w->shape[0] == 16 && w->shape[1] == 2 && w->shape[2] == 3);
    cr_assert(b && b->ndim == 1 && b->shape[0] == 16);
    double bound = 1 / sqrt(2.0 * 3);
    cr_assert(max_abs(b) <= bound);
    char repr[256];
    module_repr(dw, repr, sizeof repr);
    cr_assert(strstr(repr, "Conv1d(8, 16, kernel_size=(3,), stride=(1,), groups=4)"), "%s", repr);
    mt_module_free(dw);

    mt_conv_opts t = MT_CONV_DEFAULTS;
    t.stride[0] = t.stride[1] = 2;
    t.padding[0] = t.padding[1] = 1;
    t.output_padding[0] = t.output_padding[1] = 1;
    mt_module *up = mt_nn_conv_transpose2d(8, 4, 3, 3, true, t);
    cr_assert(up, "%s", mt_last_error());
    w = mt_module_param(up, "weight");
    cr_assert(w->shape[0] == 8 && w->shape[1] == 4 && w->shape[2] == 3 && w->shape[3] == 3);
    mt_tensor *y = mt_forward(up, mt_zeros(MT_F32, 4, (int64_t[]){ 2, 8, 5, 6 }));
    cr_assert(y, "%s", mt_last_error());
    /* (5 - 1) 2 - 2 + 2 + 1 + 1 = 10, (6 - 1) 2 - 2 + 2 + 1 + 1 = 12 */
    cr_assert(y->shape[0] == 2 && y->shape[1] == 4 && y->shape[2] == 10 && y->shape[3] == 12);
    module_repr(up, repr, sizeof repr);
    cr_assert(strstr(repr, "ConvTranspose2d(8, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                           "output_padding=(1, 1))"), "%s", repr);
    mt_module_free(up);
}

NN_CONV_TEST(forward_is_the_functional_op)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    o.padding_same = true;
    o.dilation[1] = 2;
    mt_module *m = mt_nn_conv2d(3, 5, 3, 3, true, o);
    cr_assert(m);
    mt_generator g = mt_generator_new(1);
    mt_tensor *x = mt_randn(&g, MT_F32, 4, (int64_t[]){ 2, 3, 9, 8 });
    mt_tensor *a = mt_forward(m, x);
    mt_tensor *b = mt_conv2d(x, mt_module_param(m, "weight"), mt_module_param(m, "bias"), o);
    cr_assert(a && b && mt_same_shape(a, b) && a->shape[2] == 9 && a->shape[3] == 8);
    cr_assert_eq(max_abs(mt_sub(a, b)), 0.0);
    mt_module_free(m);
}

NN_CONV_TEST(bad_arguments_are_refused)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    cr_assert_null(mt_nn_conv2d(3, 0, 3, 3, true, o));
    cr_assert(strstr(mt_last_error(), "Conv2d"), "%s", mt_last_error());
    mt_conv_opts g = o;
    g.groups = 2;
    cr_assert_null(mt_nn_conv2d(3, 4, 3, 3, true, g));
    cr_assert(strstr(mt_last_error(), "divisible by groups"), "%s", mt_last_error());
    cr_assert_null(mt_nn_conv1d(3, 4, 3, true, (mt_conv_opts){ .stride = { 1, 1 }, .dilation = { 1, 1 }, .groups = 1 }));
    cr_assert(strstr(mt_last_error(), "MT_CONV_DEFAULTS"), "%s", mt_last_error());
}
