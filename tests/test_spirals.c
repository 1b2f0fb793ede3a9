/*
 * test_spirals.c - the acceptance test of nn + optim: an MLP trained with
 * Adam and cross-entropy separates the two spirals (models/spirals/spirals.h), which
 * no linear model can, reaching >= 99% training accuracy.
 *
 * The loop is the one a user writes: one step scope per step, the loss and
 * every temporary freed when it closes, the parameters and Adam's state kept
 * by the module and the optimizer.
 */
#include "harness.h"

#include "models/spirals/spirals.h"
#include "models/spirals/spirals_task.h"

#include <math.h>

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
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.01;
    mt_optimizer *opt = mt_adam(params, adam_opts);
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

/* The demo task (models/spirals/spirals_task.c, `mytorch train spirals --device`) on
   cuda-emu: the same seed gives the same final loss as on the CPU (within
   1e-4 relative: the CUDA kernels may sum in another order). */
Test(spirals, task_same_loss_on_cpu_and_cuda_emu, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    const char *why = NULL;
    if (!mt_device_available(emu, &why)) cr_skip_test("cuda-emu is not available: %s", why);
    mt_spirals_opts o = { .epochs = 8, .seed = 3, .hidden = 32, .points_per_arm = 150, .device = "cpu" };
    mt_spirals_report cpu, gpu;
    cr_assert_eq(mt_spirals_train(&o, &cpu), MT_OK, "cpu: %s", mt_last_error());
    o.device = "cuda-emu";
    cr_assert_eq(mt_spirals_train(&o, &gpu), MT_OK, "cuda-emu: %s", mt_last_error());
    cr_expect_eq(cpu.device.type, MT_DEVICE_CPU);
    cr_expect_eq(gpu.device.type, MT_DEVICE_CUDA_EMU);
    cr_expect_eq(gpu.steps, cpu.steps);
    cr_expect(isfinite(cpu.final_loss) && cpu.final_loss > 0, "loss %g", cpu.final_loss);
    cr_expect(fabs(gpu.final_loss - cpu.final_loss) <= 1e-4 * fabs(cpu.final_loss),
              "final loss: cuda-emu %.9g, cpu %.9g", gpu.final_loss, cpu.final_loss);
    cr_expect(fabs(gpu.train_accuracy - cpu.train_accuracy) <= 0.01, "train accuracy: cuda-emu %.4f, cpu %.4f",
              gpu.train_accuracy, cpu.train_accuracy);
    cr_log_info("spirals task: final loss cpu %.9g, cuda-emu %.9g", cpu.final_loss, gpu.final_loss);
}

Test(spirals, task_rejects_a_bad_device, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_spirals_opts o = { .epochs = 1, .points_per_arm = 10, .device = "tpu" };
    mt_spirals_report r;
    cr_expect_eq(mt_spirals_train(&o, &r), MT_ERR_ARGUMENT);
    cr_expect(strstr(mt_last_error(), "tpu") != NULL, "%s", mt_last_error());
}
