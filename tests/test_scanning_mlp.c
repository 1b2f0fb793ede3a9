/*
 * test_scanning_mlp.c - the course's "CNN as a scanning MLP" exercise
 * (models/scanning_mlp/): an MLP's weights loaded into a Conv1d network give
 * the MLP's outputs on every window, for the simple scanning CNN (a random
 * MLP) and for the distributed one (an MLP with the shared weights it
 * stands for); and the distributed CNN is wrong for an MLP without them.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/scanning_mlp/scanning_mlp.h"

static double max_abs_diff(mt_tensor *a, mt_tensor *b)
{
    cr_assert(a && b, "%s", mt_last_error());
    cr_assert(mt_same_shape(a, b));
    int64_t n = mt_numel(a);
    float *u = malloc(sizeof(float) * (size_t)n), *v = malloc(sizeof(float) * (size_t)n);
    cr_assert(u && v && mt_to_data(a, MT_F32, u) == MT_OK && mt_to_data(b, MT_F32, v) == MT_OK);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)u[i] - v[i]));
    free(u); free(v);
    return worst;
}

static mt_scanning_mlp random_mlp(uint64_t seed)
{
    mt_generator g = mt_generator_new(seed);
    static const int64_t shapes[3][2] = { { 8, 192 }, { 16, 8 }, { 4, 16 } };
    mt_scanning_mlp mlp;
    for (int l = 0; l < 3; l++) {
        mlp.weight[l] = mt_uniform(&g, MT_F32, 2, shapes[l], -0.3, 0.3);
        mlp.bias[l] = mt_uniform(&g, MT_F32, 1, shapes[l], -0.1, 0.1);
    }
    return mlp;
}

Test(scanning_mlp, simple_cnn_equals_the_mlp, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_scanning_mlp mlp = random_mlp(1);
    mt_module *cnn = mt_scanning_simple_cnn(&mlp);
    cr_assert(cnn, "%s", mt_last_error());
    mt_generator g = mt_generator_new(2);
    mt_tensor *x = mt_randn(&g, MT_F32, 3, (int64_t[]){ 2, 24, 128 });
    mt_tensor *y = mt_forward(cnn, x);
    cr_assert(y && y->shape[0] == 2 && y->shape[1] == 4 && y->shape[2] == 31, "%s", mt_last_error());
    double d = max_abs_diff(y, mt_scanning_mlp_forward(&mlp, x));
    cr_assert_lt(d, 1e-5, "CNN and MLP differ by %g", d);
    mt_module_free(cnn);
}

Test(scanning_mlp, distributed_cnn_equals_the_shared_mlp, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_scanning_mlp mlp;
    cr_assert_eq(mt_scanning_shared_mlp(3, &mlp), MT_OK, "%s", mt_last_error());
    mt_module *cnn = mt_scanning_distributed_cnn(&mlp);
    cr_assert(cnn, "%s", mt_last_error());
    mt_generator g = mt_generator_new(4);
    mt_tensor *x = mt_randn(&g, MT_F32, 3, (int64_t[]){ 2, 24, 128 });
    mt_tensor *y = mt_forward(cnn, x);
    cr_assert(y && y->shape[2] == 31, "%s", mt_last_error());
    double d = max_abs_diff(y, mt_scanning_mlp_forward(&mlp, x));
    cr_assert_lt(d, 1e-5, "distributed CNN and shared MLP differ by %g", d);
    /* the simple CNN equals any MLP, so the shared one too */
    mt_module *simple = mt_scanning_simple_cnn(&mlp);
    d = max_abs_diff(mt_forward(simple, x), y);
    cr_assert_lt(d, 1e-5, "the two CNNs differ by %g", d);
    /* an MLP without the sharing is not what the distributed CNN computes */
    mt_scanning_mlp other = random_mlp(5);
    mt_module *wrong = mt_scanning_distributed_cnn(&other);
    cr_assert_gt(max_abs_diff(mt_forward(wrong, x), mt_scanning_mlp_forward(&other, x)), 1e-2);
    mt_module_free(cnn); mt_module_free(simple); mt_module_free(wrong);
}

Test(scanning_mlp, bad_weights_are_refused, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_scanning_mlp mlp = random_mlp(1);
    mlp.weight[1] = mt_zeros(MT_F32, 2, (int64_t[]){ 16, 9 });
    cr_assert_null(mt_scanning_simple_cnn(&mlp));
    cr_assert(strstr(mt_last_error(), "layer 2"), "%s", mt_last_error());
}
