/*
 * test_spirals.c - the acceptance test of nn + optim: an MLP trained with
 * Adam and cross-entropy separates the two spirals (models/spirals.h), which
 * no linear model can, reaching >= 99% training accuracy.
 *
 * The loop is the one a user writes: one step scope per step, the loss and
 * every temporary freed when it closes, the parameters and Adam's state kept
 * by the module and the optimizer.
 */
#include "harness.h"

#include "models/spirals.h"

static double accuracy(mt_module *net, mt_tensor *x, mt_tensor *y)
{
    double acc = 0;
    mt_scope s = mt_scope_begin();
    MT_NO_GRAD {
        mt_tensor *pred = mt_argmax(mt_forward(net, x), 1, false);
        acc = mt_item(mt_mean_all(mt_to_dtype(mt_eq(pred, y), MT_F64)));
    }
    mt_scope_end(s);
    return acc;
}

Test(spirals, mlp_reaches_99_percent, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x, *y;
    cr_assert(mt_spirals_make(200, 1.5, 0.02, 7, &x, &y) == MT_OK, "%s", mt_last_error());

    mt_manual_seed(0);
    mt_module *net = mt_nn_sequential(mt_nn_linear(2, 64, true), mt_nn_tanh(),
                                      mt_nn_linear(64, 64, true), mt_nn_tanh(),
                                      mt_nn_linear(64, 2, true));
    cr_assert_not_null(net, "%s", mt_last_error());
    mt_tensor_list params = mt_parameters(net);
    mt_optimizer *opt = mt_adam(params, (mt_adam_opts){ .lr = 0.01 });
    mt_tensor_list_free(&params);
    cr_assert_not_null(opt, "%s", mt_last_error());

    double first_loss = 0, loss_value = 0, acc = 0;
    int step;
    for (step = 0; step < 2000; step++) {
        mt_scope s = mt_scope_begin();
        mt_optimizer_zero_grad(opt);
        mt_tensor *loss = mt_cross_entropy(mt_forward(net, x), y, (mt_ce_opts){ 0 });
        cr_assert(loss && mt_backward(loss) == MT_OK, "step %d: %s", step, mt_last_error());
        cr_assert(mt_step(opt) == MT_OK, "step %d: %s", step, mt_last_error());
        loss_value = mt_item(loss);
        if (step == 0) first_loss = loss_value;
        mt_scope_end(s);
        if (step % 100 == 99 && (acc = accuracy(net, x, y)) >= 0.995) break;
    }
    acc = accuracy(net, x, y);
    cr_log_info("spirals: accuracy %.4f after %d steps, loss %.4f -> %.4f", acc, step + 1, first_loss, loss_value);
    cr_expect_geq(acc, 0.99, "accuracy %.4f after %d steps (loss %.4f -> %.4f)", acc, step + 1, first_loss, loss_value);
    cr_expect_lt(loss_value, 0.1 * first_loss, "loss %.4f -> %.4f", first_loss, loss_value);

    mt_optimizer_free(opt);
    mt_module_free(net);
    mt_free(x);
    mt_free(y);
}
