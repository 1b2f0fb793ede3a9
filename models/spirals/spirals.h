/*
 * spirals.h - the two-spirals problem: two interleaved spiral arms in the
 * plane, one per class. Not linearly separable, so it needs a real MLP.
 */
#ifndef MT_MODELS_SPIRALS_H
#define MT_MODELS_SPIRALS_H

#include "mytorch/mytorch.h"

/* n points per arm (2n in all), each arm turning `turns` times, with
   Gaussian noise of standard deviation noise. x: [2n, 2] f32, y: [2n] i64.
   Both are owned by the caller. */
mt_status mt_spirals_make(int64_t n, double turns, double noise, uint64_t seed,
                          mt_tensor **x, mt_tensor **y);

#endif
