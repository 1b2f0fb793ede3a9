/*
 * autograd_reverse.c - reverse mode (backpropagation) by hand, the example of
 * docs/autograd.md: fit y = 2x + 1 with a weight and a bias.
 *
 *   build: cmake --build build --target example_autograd_reverse
 *   run:   ./build/example_autograd_reverse
 */
#include <math.h>
#include <stdio.h>

#include "mytorch/mytorch.h"

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, mt_last_error());
    return 1;
}

/* loss(w, b) = mean((x w + b - y)^2) */
static mt_tensor *loss_of(mt_tensor *x, mt_tensor *y, mt_tensor *w, mt_tensor *b)
{
    mt_tensor *pred = mt_add(mt_mul(x, w), b);
    return mt_mean_all(mt_pow_scalar(mt_sub(pred, y), 2.0));
}

int main(void)
{
    /* Data and parameters are created outside any scope: we own them. */
    const double xs[4] = { 0, 1, 2, 3 }, ys[4] = { 1, 3, 5, 7 };
    mt_tensor *x = mt_from_data(MT_F64, MT_SHAPE(4), xs);
    mt_tensor *y = mt_from_data(MT_F64, MT_SHAPE(4), ys);
    mt_tensor *w = mt_requires_grad(mt_zeros(MT_F64, MT_SHAPE(1)), true);   /* leaves */
    mt_tensor *b = mt_requires_grad(mt_zeros(MT_F64, MT_SHAPE(1)), true);
    if (!x || !y || !w || !b) return fail("setup");

    /* 1. One backward: the tape records mul, add, sub, pow, mean; mt_backward
          walks it in reverse and leaves dL/dw, dL/db in w->grad, b->grad. */
    mt_scope s = mt_scope_begin();
    mt_tensor *loss = loss_of(x, y, w, b);
    if (!loss || mt_backward(loss) != MT_OK) return fail("backward");
    /* by hand at w = b = 0: dL/dw = 2/n sum (xw+b-y) x = -17, dL/db = 2/n sum (xw+b-y) = -8 */
    printf("loss %.4f  dL/dw %.4f (expected -17)  dL/db %.4f (expected -8)\n",
           mt_item(loss), mt_item(mt_grad(w)), mt_item(mt_grad(b)));

    /* 2. The graph is released by backward: a second one is an error, not a crash. */
    if (mt_backward(loss) != MT_OK) printf("second backward: %s\n", mt_last_error());
    mt_scope_end(s);   /* frees loss and every intermediate; w->grad belongs to w */

    /* 3. Gradients accumulate: another forward + backward adds to .grad. */
    s = mt_scope_begin();
    if (mt_backward(loss_of(x, y, w, b)) != MT_OK) return fail("backward");
    printf("after a second pass without zeroing: dL/dw %.4f (twice -17)\n", mt_item(mt_grad(w)));
    mt_scope_end(s);
    mt_zero_grad(w);
    mt_zero_grad(b);

    /* 4. Gradient descent: one step scope per step; the update itself is not
          recorded (MT_NO_GRAD) and writes into the leaves in place. */
    double lr = 0.1, last = NAN;
    for (int step = 0; step < 200; step++) {
        s = mt_scope_begin();
        loss = loss_of(x, y, w, b);
        if (!loss || mt_backward(loss) != MT_OK) return fail("train");
        last = mt_item(loss);
        MT_NO_GRAD {
            mt_copy_(w, mt_sub(w, mt_mul_scalar(mt_grad(w), lr)));
            mt_copy_(b, mt_sub(b, mt_mul_scalar(mt_grad(b), lr)));
        }
        mt_zero_grad(w);
        mt_zero_grad(b);
        mt_scope_end(s);
    }
    printf("after 200 steps: w %.4f  b %.4f  loss %.2e (fit y = 2x + 1)\n", mt_item(w), mt_item(b), last);
    int ok = fabs(mt_item(w) - 2.0) < 1e-3 && fabs(mt_item(b) - 1.0) < 1e-3;

    mt_free(x); mt_free(y); mt_free(w); mt_free(b);
    return ok ? 0 : 1;
}
