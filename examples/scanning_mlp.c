/*
 * scanning_mlp.c - the course's "CNN as a scanning MLP" exercise: an MLP that
 * classifies 8-frame windows of a 24-feature, 128-frame input (stride 4) is
 * run window by window, then its weights are loaded into the equivalent
 * Conv1d networks (simple and distributed scanning), which compute all 31
 * windows in one pass. Prints how far the outputs are apart (they agree to
 * float rounding). docs/scanning-mlp.md explains the weight maps.
 */
#include <stdio.h>

#include "models/scanning_mlp/scanning_mlp.h"

static double max_diff(mt_tensor *a, mt_tensor *b)
{
    mt_tensor *d = mt_abs(mt_sub(a, b));
    return d ? mt_item(mt_amax(mt_flatten(d, 0, -1), 1, (int[]){ 0 }, false)) : -1;
}

int main(void)
{
    mt_scope scope = mt_scope_begin();
    mt_generator gen = mt_generator_new(0);
    mt_tensor *x = mt_randn(&gen, MT_F32, MT_SHAPE(1, 24, 128));   /* [N, features, frames] */

    /* an MLP with the distributed CNN's weight sharing (any MLP works for the simple CNN) */
    mt_scanning_mlp mlp;
    int failed = mt_scanning_shared_mlp(1, &mlp) != MT_OK;
    mt_module *simple = failed ? NULL : mt_scanning_simple_cnn(&mlp);
    mt_module *distributed = failed ? NULL : mt_scanning_distributed_cnn(&mlp);
    mt_tensor *want = mt_scanning_mlp_forward(&mlp, x);               /* [1, 4, 31]: window j in column j */
    double d_simple = simple && want ? max_diff(mt_forward(simple, x), want) : -1;
    double d_distributed = distributed && want ? max_diff(mt_forward(distributed, x), want) : -1;
    failed = failed || d_simple < 0 || d_distributed < 0;
    if (failed) {
        fprintf(stderr, "error: %s\n", mt_last_error());
    } else {
        mt_module_print(simple, stdout);
        mt_module_print(distributed, stdout);
        printf("MLP over 31 windows vs simple scanning CNN:      max |difference| %.3g\n", d_simple);
        printf("MLP over 31 windows vs distributed scanning CNN: max |difference| %.3g\n", d_distributed);
        failed = d_simple > 1e-5 || d_distributed > 1e-5;
    }
    mt_module_free(simple);
    mt_module_free(distributed);
    mt_scope_end(scope);
    return failed;
}
