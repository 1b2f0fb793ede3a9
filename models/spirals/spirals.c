/*
 * spirals.c - generator for the two-spirals classification problem.
 *
 * Point i of arm c (c = 0, 1) at fraction s = i / n along the arm:
 *   r = s,  theta = 2 pi turns s + pi c,  (x, y) = r (cos theta, sin theta) + noise
 */
#include "models/spirals/spirals.h"

#include <math.h>
#include <stdlib.h>

mt_status mt_spirals_make(int64_t n, double turns, double noise, uint64_t seed,
                          mt_tensor **x, mt_tensor **y)
{
    if (!x || !y || n <= 0) return mt_set_error(MT_ERR_ARGUMENT, "spirals: need n > 0 and output pointers");
    mt_generator gen = mt_generator_new(seed);
    mt_tensor *eps = mt_randn(&gen, MT_F64, MT_SHAPE(2 * n, 2));
    float *xs = malloc((size_t)(4 * n) * sizeof *xs);
    int64_t *ys = malloc((size_t)(2 * n) * sizeof *ys);
    double *e = malloc((size_t)(4 * n) * sizeof *e);
    /* eps lives on the default device: read it through mt_to_data, not a host pointer */
    if (!eps || !xs || !ys || !e || mt_to_data(eps, MT_F64, e) != MT_OK) {
        mt_free(eps); free(xs); free(ys); free(e);
        return mt_set_error(MT_ERR_MEMORY, "spirals: out of memory");
    }
    for (int c = 0; c < 2; c++)
        for (int64_t i = 0; i < n; i++) {
            int64_t k = c * n + i;
            double s = (double)(i + 1) / (double)n;
            double theta = 2 * M_PI * turns * s + M_PI * c;
            xs[2 * k] = (float)(s * cos(theta) + noise * e[2 * k]);
            xs[2 * k + 1] = (float)(s * sin(theta) + noise * e[2 * k + 1]);
            ys[k] = c;
        }
    *x = mt_from_data(MT_F32, MT_SHAPE(2 * n, 2), xs);
    *y = mt_from_data(MT_I64, MT_SHAPE(2 * n), ys);
    free(xs);
    free(ys);
    free(e);
    mt_free(eps);
    if (!*x || !*y) { mt_free(*x); mt_free(*y); *x = *y = NULL; return mt_last_status(); }
    return MT_OK;
}
