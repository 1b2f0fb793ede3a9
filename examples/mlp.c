/* mlp.c - define and train an MLP with mytorch (the example of README.md). */
#include <stdio.h>
#include "mytorch/mytorch.h"

int main(void)
{
    mt_manual_seed(0);
    mt_scope data = mt_scope_begin();   /* owns the data; freed at the end */
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(512, 20));            /* 512 samples, 20 features */
    mt_tensor *y = mt_argmax(mt_narrow(x, 1, 0, 4), 1, false);         /* class: argmax of the first 4 */
    mt_module *net = mt_nn_sequential(mt_nn_linear(20, 64, true), mt_nn_gelu(MT_GELU_ERF),
                                      mt_nn_linear(64, 4, true));
    mt_tensor_list params = mt_parameters(net);
    mt_adam_opts adam_opts = MT_ADAMW_DEFAULTS;
    adam_opts.lr = 1e-2;
    adam_opts.weight_decay = 0.01;
    mt_optimizer *opt = mt_adamw(params, adam_opts);
    int failed = !opt;
    for (int step = 0; step <= 300 && !failed; step++) {
        mt_scope s = mt_scope_begin();                                    /* one scope per step */
        mt_tensor *loss = mt_cross_entropy(mt_forward(net, x), y, (mt_ce_opts){ 0 });
        failed = !loss || mt_backward(loss) != MT_OK || mt_step(opt) != MT_OK;    /* errors: checked once */
        if (!failed && step % 100 == 0) printf("step %3d  loss %.4f\n", step, mt_item(loss));
        mt_optimizer_zero_grad(opt);
        mt_scope_end(s);
    }
    if (failed) fprintf(stderr, "error: %s\n", mt_last_error());
    mt_optimizer_free(opt); mt_tensor_list_free(&params); mt_module_free(net);
    mt_scope_end(data);
    return failed;
}
