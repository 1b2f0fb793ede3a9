/*
 * test_anomaly.c - anomaly detection (mt_set_detect_anomaly, PyTorch's
 * set_detect_anomaly): the first op whose output, or whose backward's
 * gradient, holds a NaN or an infinity fails with a message naming it.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

#define ANOMALY_TEST(name) Test(anomaly, name, .init = mt_test_setup, .fini = mt_test_teardown)

static mt_tensor *leaf(double a, double b)
{
    return mt_requires_grad(mt_from_data(MT_F32, MT_SHAPE(2), (float[]){ (float)a, (float)b }), true);
}

ANOMALY_TEST(forward_nan_names_the_op)
{
    mt_tensor *x = leaf(-1, 4);
    bool prev = mt_set_detect_anomaly(true);
    mt_tensor *y = mt_mul_scalar(x, 2);          /* finite: passes */
    cr_assert_not_null(y, "%s", mt_last_error());
    mt_tensor *z = mt_log(y);                    /* log(-2) = NaN */
    mt_set_detect_anomaly(prev);
    cr_expect_null(z);
    cr_expect(strstr(mt_last_error(), "detect_anomaly: log produced a NaN or infinity") != NULL, "%s", mt_last_error());

    /* off (the default): the NaN goes through silently, as in PyTorch */
    z = mt_log(y);
    cr_assert_not_null(z);
    cr_expect(isnan(mt_get(z, (int64_t[]){ 0 })));
}

ANOMALY_TEST(backward_infinity_names_the_op)
{
    mt_tensor *x = leaf(0, 4);
    bool prev = mt_set_detect_anomaly(true);
    mt_tensor *loss = mt_sum_all(mt_sqrt(x));    /* forward finite; d sqrt(x) = 1 / (2 sqrt 0) = inf */
    cr_assert_not_null(loss, "%s", mt_last_error());
    mt_status st = mt_backward(loss);
    mt_set_detect_anomaly(prev);
    cr_expect_neq(st, MT_OK);
    cr_expect(strstr(mt_last_error(), "the backward of sqrt produced a NaN or infinity in the gradient of its input 0")
              != NULL, "%s", mt_last_error());
    cr_expect_null(mt_grad(x), "no gradient is accumulated from a failed backward");
}

ANOMALY_TEST(finite_training_step_passes)
{
    bool prev = mt_set_detect_anomaly(true);
    mt_module *net = mt_nn_sequential(mt_nn_linear(3, 4, true), mt_nn_batch_norm1d(4, MT_BN_DEFAULTS),
                                      mt_nn_gelu(MT_GELU_ERF), mt_nn_linear(4, 2, true));
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(8, 3));
    mt_tensor *y = mt_randint(NULL, MT_I64, MT_SHAPE(8), 0, 2);
    mt_tensor *loss = mt_cross_entropy(mt_forward(net, x), y, (mt_ce_opts){ 0 });
    cr_expect(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    mt_set_detect_anomaly(prev);
    mt_module_free(net);
}
