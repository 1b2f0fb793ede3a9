/*
 * test_partial_backends.c - a backend may lack kernel entries, and a kernel
 * may fail; the op then fails with a message naming the op, the entry and
 * the device, and the rest keeps working (engine/internal.h, mt_run_kernel):
 *
 *   - a table without softmax (cuda-emu, and the cpu): softmax fails, add
 *     still works; without softmax_backward the forward works and backward
 *     names the missing entry; without sgd_step the optimizer fails before
 *     touching any parameter;
 *   - a kernel's failure status becomes the op's error: unsupported dtype,
 *     bad arguments, a device error (with the CUDA error's name), and an
 *     out-of-memory in the CPU kernels' scratch memory (the cpu memory limit
 *     set between the op's outputs and the kernel's scratch).
 *
 * Tables are swapped with mt_backend_replace; Criterion runs each test in a
 * process of its own, and each test restores the table anyway.
 */
#include "harness.h"

#include <string.h>

#include "engine/internal.h"
#include "host/backend.h"
#include "host/runtime.h"

static const mt_device CPU = { MT_DEVICE_CPU, 0 };
static const mt_device EMU = { MT_DEVICE_CUDA_EMU, 0 };

#define ASSERT_ERROR(expr, status, text)                                                               \
    do {                                                                                               \
        cr_assert_null((expr), "%s succeeded", #expr);                                                 \
        cr_assert_eq(mt_last_status(), (status), "%s: status %d: %s", #expr, (int)mt_last_status(),    \
                     mt_last_error());                                                                 \
        cr_assert(strstr(mt_last_error(), (text)) != NULL, "%s: expected \"%s\" in \"%s\"", #expr, (text), \
                  mt_last_error());                                                                    \
    } while (0)

static mt_tensor *ramp(mt_device device, int64_t rows, int64_t cols)
{
    mt_tensor *t = mt_to_device(mt_arange(MT_F32, 0, (double)(rows * cols), 1), device);
    return mt_mul_scalar(mt_reshape(t, 2, (int64_t[]){ rows, cols }), 0.1);
}

static void skip_without_emu(void)
{
    if (!mt_backend_for(MT_DEVICE_CUDA_EMU)) cr_skip_test("cuda-emu is not built in (no C++ compiler)");
}

/* ---------------------------------------------------------------- missing entries */
Test(partial_backends, a_missing_forward_kernel_fails_only_its_op, .init = mt_test_setup, .fini = mt_test_teardown)
{
    skip_without_emu();
    mt_backend partial = mt_cuda_emu_backend;
    partial.softmax = NULL;
    mt_backend_replace(MT_DEVICE_CUDA_EMU, &partial);
    mt_tensor *x = ramp(EMU, 3, 4);
    cr_assert_not_null(x, "%s", mt_last_error());
    ASSERT_ERROR(mt_softmax(x, 1), MT_ERR_UNSUPPORTED, "softmax: the cuda-emu backend has no 'softmax' kernel");
    ASSERT_ERROR(mt_log_softmax(x, 0), MT_ERR_UNSUPPORTED, "log_softmax: the cuda-emu backend has no 'softmax' kernel");
    /* the backend still serves everything else */
    mt_tensor *y = mt_add(x, x);
    cr_assert_not_null(y, "%s", mt_last_error());
    cr_assert_float_eq(mt_item(mt_sum_all(mt_to_device(y, CPU))), 2 * 0.1 * 66, 1e-4);
    mt_backend_replace(MT_DEVICE_CUDA_EMU, NULL);
    cr_assert_not_null(mt_softmax(x, 1), "restored: %s", mt_last_error());
}

Test(partial_backends, the_cpu_table_may_be_partial_too, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_backend partial = mt_cpu_backend;
    partial.gemm = NULL;
    mt_tensor *a = ramp(CPU, 2, 3), *b = ramp(CPU, 3, 2);
    mt_backend_replace(MT_DEVICE_CPU, &partial);
    ASSERT_ERROR(mt_matmul(a, b), MT_ERR_UNSUPPORTED, "matmul: the cpu backend has no 'gemm' kernel");
    mt_backend_replace(MT_DEVICE_CPU, NULL);
    cr_assert_not_null(mt_matmul(a, b), "%s", mt_last_error());
}

Test(partial_backends, a_missing_backward_kernel_fails_backward, .init = mt_test_setup, .fini = mt_test_teardown)
{
    skip_without_emu();
    mt_backend partial = mt_cuda_emu_backend;
    partial.softmax_backward = NULL;
    mt_backend_replace(MT_DEVICE_CUDA_EMU, &partial);
    mt_tensor *x = mt_requires_grad(ramp(EMU, 3, 4), true);
    mt_tensor *y = mt_softmax(x, 1);
    cr_assert_not_null(y, "the forward has its kernel: %s", mt_last_error());
    mt_tensor *loss = mt_sum_all(mt_mul(y, y));
    cr_assert_neq(mt_backward(loss), MT_OK);
    cr_assert(strstr(mt_last_error(), "softmax: the cuda-emu backend has no 'softmax_backward' kernel") != NULL, "%s",
              mt_last_error());
    mt_backend_replace(MT_DEVICE_CUDA_EMU, NULL);
}

Test(partial_backends, an_optimizer_without_its_kernel_changes_nothing, .init = mt_test_setup, .fini = mt_test_teardown)
{
    skip_without_emu();
    mt_tensor *w = mt_keep(mt_requires_grad(ramp(EMU, 2, 2), true));
    mt_tensor *loss = mt_sum_all(mt_mul(w, w));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    mt_named_tensor item = { .name = "w", .tensor = w };
    mt_sgd_opts opts = MT_SGD_DEFAULTS;
    opts.lr = 0.5;
    mt_optimizer *opt = mt_sgd((mt_tensor_list){ 1, &item }, opts);
    cr_assert_not_null(opt, "%s", mt_last_error());
    mt_backend partial = mt_cuda_emu_backend;
    partial.sgd_step = NULL;
    mt_backend_replace(MT_DEVICE_CUDA_EMU, &partial);
    cr_assert_eq(mt_step(opt), MT_ERR_UNSUPPORTED);
    cr_assert(strstr(mt_last_error(), "SGD: the cuda-emu backend has no 'sgd_step' kernel") != NULL, "%s",
              mt_last_error());
    mt_backend_replace(MT_DEVICE_CUDA_EMU, NULL);
    cr_assert_float_eq(mt_item(mt_sum_all(mt_to_device(w, CPU))), 0.1 * 6, 1e-5, "the parameter is untouched");
    cr_assert_eq(mt_step(opt), MT_OK, "%s", mt_last_error());
    mt_optimizer_free(opt);
    mt_free(w);
}

Test(partial_backends, the_missing_entries_are_listed_by_family)
{
    mt_backend partial = mt_cpu_backend;
    partial.softmax = NULL;
    partial.softmax_backward = NULL;
    partial.gemm_batched = NULL;
    char buf[256];
    cr_assert_eq(mt_backend_missing_entries(&partial, buf, sizeof buf), 3);
    cr_assert_str_eq(buf, "reduce (softmax, softmax_backward), gemm (gemm_batched)");
}

/* ---------------------------------------------------------------- failing kernels */
/* A stand-in unary kernel that fails with the status the test sets. */
static mt_status fake_status;
static mt_status failing_unary(mt_unary_kind kind, mt_dtype dtype, int64_t n, const void *x, void *y,
                               const double *params)
{
    (void)kind; (void)dtype; (void)n; (void)x; (void)y; (void)params;
    if (fake_status == MT_ERR_DEVICE) mt_device_record_error("cuda unary kernel", 719, "cudaErrorLaunchFailure");
    return fake_status;
}

Test(partial_backends, a_kernel_failure_is_the_ops_error, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = ramp(CPU, 2, 3);
    mt_backend failing = mt_cpu_backend;
    failing.unary = failing_unary;
    mt_backend_replace(MT_DEVICE_CPU, &failing);
    fake_status = MT_ERR_UNSUPPORTED;
    ASSERT_ERROR(mt_exp(x), MT_ERR_UNSUPPORTED, "exp: no cpu kernel 'unary' for f32");
    fake_status = MT_ERR_ARGUMENT;
    ASSERT_ERROR(mt_tanh(x), MT_ERR_ARGUMENT, "tanh: kernel 'unary' on cpu cannot take its arguments (f32 tensor of shape [2, 3])");
    fake_status = MT_ERR_DEVICE;
    ASSERT_ERROR(mt_sigmoid(x), MT_ERR_DEVICE,
                 "sigmoid: kernel 'unary' on cpu failed: device error: cuda unary kernel: cudaErrorLaunchFailure");
    cr_assert_eq(mt_device_error_check(), MT_OK, "the op took the device error");
    fake_status = MT_OK;
    cr_assert_not_null(mt_exp(x), "%s", mt_last_error());
    mt_backend_replace(MT_DEVICE_CPU, NULL);
}

/* ---------------------------------------------------------------- scratch memory */
/* Runs batch_norm over x [n, c] (l == 1: the kernel takes 24 c bytes of
   scratch for its per-channel sums) under growing cpu memory limits, from
   what is reserved now upward, until it succeeds. Some limit must let the
   outputs through and fail the kernel's scratch: that failure must name the
   op, the kernel and the device, and leave no output behind. */
Test(partial_backends, a_scratch_out_of_memory_fails_the_op, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const int64_t n = 2, c = 4096;
    mt_tensor *x = mt_uniform(&(mt_generator){ 3, 0 }, MT_F32, 2, (int64_t[]){ n, c }, -1, 1);
    cr_assert_not_null(x);
    mt_device_empty_cache(CPU);
    size_t base = mt_device_memory_stats(CPU).reserved;
    bool scratch_failed = false, succeeded = false;
    for (size_t extra = 0; extra <= (size_t)1 << 20 && !succeeded; extra += 4096) {
        mt_scope attempt = mt_scope_begin();   /* what a failed attempt allocated goes with it */
        mt_device_empty_cache(CPU);
        mt_device_set_memory_limit(CPU, base + extra);
        size_t before = mt_device_memory_stats(CPU).allocated;
        mt_tensor *y;
        MT_NO_GRAD { y = mt_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5); }
        mt_device_set_memory_limit(CPU, 0);
        if (y) { succeeded = true; mt_scope_end(attempt); break; }
        cr_assert_eq(mt_last_status(), MT_ERR_MEMORY, "%s", mt_last_error());
        if (strstr(mt_last_error(), "batch_norm: kernel 'batch_norm_forward' on cpu: no scratch memory: out of memory")) {
            scratch_failed = true;
            cr_assert(strstr(mt_last_error(), "limit") != NULL, "%s", mt_last_error());
            cr_assert_eq(mt_device_memory_stats(CPU).allocated, before, "the failed op freed its outputs");
        }
        mt_scope_end(attempt);
    }
    cr_assert(succeeded, "batch_norm never ran under a limit of 1 MiB above the start: %s", mt_last_error());
    cr_assert(scratch_failed, "no limit made the kernel's scratch memory fail");
}

/* The same for a CPU reduction with scratch (a row sum over a wide inner axis). */
Test(partial_backends, a_reduction_scratch_out_of_memory_fails_the_op, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(2, 3, 8192));   /* sum over dim 1: 8192 doubles of scratch */
    cr_assert_not_null(x);
    mt_device_empty_cache(CPU);
    size_t base = mt_device_memory_stats(CPU).reserved;
    bool scratch_failed = false, succeeded = false;
    for (size_t extra = 0; extra <= (size_t)1 << 20; extra += 4096) {
        mt_scope attempt = mt_scope_begin();
        mt_device_empty_cache(CPU);
        mt_device_set_memory_limit(CPU, base + extra);
        mt_tensor *s = mt_sum(x, 1, (int[]){ 1 }, false);
        mt_device_set_memory_limit(CPU, 0);
        if (s) {
            succeeded = true;
            cr_assert_float_eq(mt_item(mt_sum_all(s)), 2.0 * 3 * 8192, 1e-3);
        } else if (strstr(mt_last_error(), "sum: kernel 'reduce' on cpu: no scratch memory")) scratch_failed = true;
        mt_scope_end(attempt);
        if (succeeded) break;
    }
    cr_assert(succeeded, "%s", mt_last_error());
    cr_assert(scratch_failed, "no limit made the reduction's scratch memory fail");
}

/* And for the CPU sort, whose merge passes need a scratch row per thread. */
Test(partial_backends, a_sort_scratch_out_of_memory_fails_the_op, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_uniform(&(mt_generator){ 5, 0 }, MT_F32, 2, (int64_t[]){ 3, 4000 }, -1, 1);
    cr_assert_not_null(x);
    mt_device_empty_cache(CPU);
    size_t base = mt_device_memory_stats(CPU).reserved;
    bool scratch_failed = false, succeeded = false;
    for (size_t extra = 0; extra <= (size_t)1 << 20 && !succeeded; extra += 4096) {
        mt_scope attempt = mt_scope_begin();
        mt_device_empty_cache(CPU);
        mt_device_set_memory_limit(CPU, base + extra);
        mt_tensor *values = NULL, *indices = NULL;
        mt_status st = mt_sort(x, 1, false, &values, &indices);
        mt_device_set_memory_limit(CPU, 0);
        if (st == MT_OK) {
            succeeded = true;
            cr_assert(mt_item(mt_sum_all(mt_lt(mt_narrow(values, 1, 1, 3999), mt_narrow(values, 1, 0, 3999)))) == 0,
                      "sorted ascending");
        } else if (strstr(mt_last_error(), "sort: kernel 'sort_rows' on cpu: no scratch memory")) {
            scratch_failed = true;
        }
        mt_scope_end(attempt);
    }
    cr_assert(succeeded, "%s", mt_last_error());
    cr_assert(scratch_failed, "no limit made the sort's scratch memory fail");
}
