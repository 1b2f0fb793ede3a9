/*
 * cpu_backend.c - the CPU backend: host memory and the kernels of kernels/cpu.
 */
#include "host/backend.h"
#include "mytorch/runtime.h"
#include "kernels/cpu/cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

/* 64-byte alignment: whole cache lines, and aligned vector loads. */
static void *cpu_alloc(size_t nbytes)
{
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded ? rounded : 64);
}
static void cpu_free(void *ptr) { free(ptr); }
static void cpu_copy_bytes(void *dst, const void *src, size_t nbytes) { if (nbytes) memcpy(dst, src, nbytes); }
static void cpu_synchronize(void) {}

bool mt_cpu_deterministic(void) { return mt_get_deterministic(); }

const mt_backend mt_cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_host = cpu_copy_bytes,
    .from_host = cpu_copy_bytes,
    .synchronize = cpu_synchronize,
    .copy = mt_cpu_copy,
    .fill = mt_cpu_fill,
    .arange = mt_cpu_arange,
    .unary = mt_cpu_unary,
    .unary_backward = mt_cpu_unary_backward,
    .binary = mt_cpu_binary,
    .where = mt_cpu_where,
    .reduce = mt_cpu_reduce,
    .softmax = mt_cpu_softmax,
    .softmax_backward = mt_cpu_softmax_backward,
    .gemm = mt_cpu_gemm,
    .gemm_batched = mt_cpu_gemm_batched,
    .random = mt_cpu_random,
    .batch_norm_forward = mt_cpu_batch_norm_forward,
    .batch_norm_backward = mt_cpu_batch_norm_backward,
    .nll_forward = mt_cpu_nll_forward,
    .nll_backward = mt_cpu_nll_backward,
    .sgd_step = mt_cpu_sgd_step,
    .adam_step = mt_cpu_adam_step,
    /* scan, sort */
    .cumsum = mt_cpu_cumsum,
    .sort_rows = mt_cpu_sort_rows,
    .take_along = mt_cpu_take_along,
    .put_along = mt_cpu_put_along,
};
