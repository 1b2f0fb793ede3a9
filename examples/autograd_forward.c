/*
 * autograd_forward.c - forward mode (tangents), the example of
 * docs/autograd.md: derivatives computed alongside the values, no tape.
 *
 *   build: cmake --build build --target example_autograd_forward
 *   run:   ./build/example_autograd_forward
 */
#include <math.h>
#include <stdio.h>

#include "mytorch/mytorch.h"

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, mt_last_error());
    return 1;
}

/* f(W, x) = tanh(W x): R^3 -> R^2 for a fixed W. */
static mt_tensor *layer(void *ctx, int n_in, mt_tensor *const *in)
{
    (void)n_in;
    return mt_tanh(mt_matmul((mt_tensor *)ctx, in[0]));
}

int main(void)
{
    mt_scope s = mt_scope_begin();   /* everything below belongs to this scope */

    /* 1. A dual number: x carries a tangent dx; every op propagates it with
          its jvp at once. With dx = 1, y's tangent is f'(x) elementwise. */
    const double xs[3] = { -1.0, 0.5, 2.0 }, ones[3] = { 1, 1, 1 };
    mt_tensor *x = mt_from_data(MT_F64, MT_SHAPE(3), xs);
    mt_tensor *dx = mt_from_data(MT_F64, MT_SHAPE(3), ones);
    mt_tensor *xd = mt_make_dual(x, dx);
    mt_tensor *y = mt_add(mt_pow_scalar(xd, 3.0), mt_exp(xd));   /* y = x^3 + e^x */
    mt_tensor *dy = mt_tangent(y);
    if (!y || !dy) return fail("dual");
    for (int64_t i = 0; i < 3; i++)
        printf("x = %5.2f  y = %8.4f  dy/dx = %8.4f  (3x^2 + e^x = %8.4f)\n", xs[i],
               mt_get(y, &i), mt_get(dy, &i), 3 * xs[i] * xs[i] + exp(xs[i]));

    /* 2. mt_jvp: the directional derivative J v of a function at a point. */
    const double ws[6] = { 0.5, -0.2, 0.1, 0.3, 0.8, -0.5 }, ps[3] = { 0.2, -0.4, 0.6 }, vs[3] = { 1.0, 0.5, -1.0 };
    mt_tensor *W = mt_from_data(MT_F64, MT_SHAPE(2, 3), ws);
    mt_tensor *p = mt_from_data(MT_F64, MT_SHAPE(3), ps);
    mt_tensor *v = mt_from_data(MT_F64, MT_SHAPE(3), vs);
    mt_tensor *out = NULL, *jv = NULL;
    if (mt_jvp(layer, W, 1, &p, &v, &out, &jv) != MT_OK) return fail("jvp");

    /* ... checked against central finite differences (f(p + hv) - f(p - hv)) / 2h */
    double h = 1e-6;
    mt_tensor *fp = layer(W, 1, (mt_tensor *[]){ mt_add(p, mt_mul_scalar(v, h)) });
    mt_tensor *fm = layer(W, 1, (mt_tensor *[]){ mt_sub(p, mt_mul_scalar(v, h)) });
    mt_tensor *fd = mt_mul_scalar(mt_sub(fp, fm), 1.0 / (2 * h));
    if (!fd) return fail("finite differences");
    double worst = 0;
    for (int64_t i = 0; i < 2; i++) {
        printf("(J v)[%lld] = %.8f  finite difference %.8f\n", (long long)i, mt_get(jv, &i), mt_get(fd, &i));
        worst = fmax(worst, fabs(mt_get(jv, &i) - mt_get(fd, &i)));
    }

    /* 3. Forward and reverse mode agree: <J v, u> == <v, J^T u>. */
    const double us[2] = { 0.7, -1.3 };
    mt_tensor *u = mt_from_data(MT_F64, MT_SHAPE(2), us);
    mt_tensor *out2 = NULL, *jtu = NULL;
    if (mt_vjp(layer, W, 1, &p, u, &out2, &jtu) != MT_OK) return fail("vjp");
    double lhs = mt_item(mt_sum_all(mt_mul(jv, u))), rhs = mt_item(mt_sum_all(mt_mul(v, jtu)));
    printf("<J v, u> = %.10f   <v, J^T u> = %.10f\n", lhs, rhs);

    int ok = worst < 1e-6 && fabs(lhs - rhs) < 1e-12;
    mt_scope_end(s);
    return ok ? 0 : 1;
}
