/* main.c - the install check's consumer: includes the installed header,
   computes a small gradient and checks it. */
#include <math.h>
#include <stdio.h>

#include "mytorch/mytorch.h"

int main(void)
{
    mt_scope s = mt_scope_begin();
    mt_tensor *x = mt_requires_grad(mt_full(MT_F32, MT_SHAPE(2, 3), 2.0), true);
    mt_tensor *loss = mt_sum_all(mt_mul(x, x));     /* d/dx sum x^2 = 2x = 4 */
    if (!loss || mt_backward(loss) != MT_OK) {
        fprintf(stderr, "consumer: %s\n", mt_last_error());
        return 1;
    }
    double g = mt_item(mt_sum_all(mt_grad(x)));
    printf("consumer: loss %.1f, sum of gradient %.1f (expected 24.0, 24.0)\n", mt_item(loss), g);
    int ok = fabs(mt_item(loss) - 24.0) < 1e-5 && fabs(g - 24.0) < 1e-5;
    mt_scope_end(s);
    return ok ? 0 : 1;
}
