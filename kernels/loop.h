/*
 * loop.h - a strided walk over up to 4 operands that share one shape, and
 * its simplification. Plain C that also compiles as C++ and under nvcc: the
 * engine builds loops from tensors (engine/checks.c, mt_loop_build) and the
 * CUDA wrappers simplify the loops they are given (kernels/cuda/elementwise.cu)
 * with the same function.
 */
#ifndef MT_KERNELS_LOOP_H
#define MT_KERNELS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "mytorch/types.h"

/*
 * stride[k][d] is operand k's step, in elements, along dim d (0 where
 * operand k is broadcast). Operand 0 is the output by convention.
 */
typedef struct mt_loop {
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    int64_t stride[4][MT_MAX_DIMS];
} mt_loop;

/*
 * Simplifies the walk of loop's first nops operands in place and returns its
 * element count: size-1 dims are dropped, and neighbours d-1, d merge into one
 * dim whenever every operand steps over d-1 exactly as a run of d
 * (stride[k][d-1] == stride[k][d] * shape[d]): fewer, longer rows, the same
 * elements in the same order. The result has at least one dim: a single dim
 * of size 0 when the loop is empty, of size 1 (stride 0) when it holds one
 * element.
 */
static inline int64_t mt_loop_merge(mt_loop *loop, int nops)
{
    int64_t n = 1;
    for (int d = 0; d < loop->ndim; d++) n *= loop->shape[d];
    int m = 0;   /* dims kept so far; m <= d, so reading dim d after writing dim m - 1 is safe */
    for (int d = 0; d < loop->ndim; d++) {
        int64_t size = loop->shape[d];
        if (size == 1) continue;
        if (m > 0) {
            bool mergeable = true;
            for (int k = 0; k < nops; k++)
                if (loop->stride[k][m - 1] != loop->stride[k][d] * size) { mergeable = false; break; }
            if (mergeable) {
                loop->shape[m - 1] *= size;
                for (int k = 0; k < nops; k++) loop->stride[k][m - 1] = loop->stride[k][d];
                continue;
            }
        }
        loop->shape[m] = size;
        for (int k = 0; k < nops; k++) loop->stride[k][m] = loop->stride[k][d];
        m++;
    }
    if (n == 0 || m == 0) {   /* nothing to do, or a single element */
        m = 1;
        loop->shape[0] = n == 0 ? 0 : 1;
        for (int k = 0; k < nops; k++) loop->stride[k][0] = 0;
    }
    loop->ndim = m;
    return n;
}

#endif
