/*
 * harness.h - the op-checking harness every op registers with (in the
 * spirit of ggml's test-backend-ops). A case names an op, its input shapes
 * and value ranges, how to run it on engine tensors and a naive reference
 * written with plain loops in double precision. mt_check_op then verifies:
 *
 *   1. forward, f64 and f32, against the reference;
 *   2. vjp against central finite differences in f64:
 *        dL/dx_i  vs  (L(x + h e_i) - L(x - h e_i)) / 2h,   L = <f(x), v>;
 *   3. jvp against vjp:  <J u, v> == <u, J^T v>  for random u, v;
 *   4. the op on every other available backend (cuda-emu, and cuda where a
 *      GPU is present) against the CPU: forward, vjp and jvp, in f32 (relative
 *      error 1e-5) and f64 (1e-10). A backend that has no kernel for the op
 *      (a partial backend: MT_ERR_UNSUPPORTED) is skipped, not failed.
 *
 * Coverage: with MYTORCH_OP_COVERAGE_DIR set (ctest sets it), a passing
 * mt_check_op records which op definitions (mt_op_def) the case exercised on
 * which backend, or that the backend had no kernel for them;
 * tests/test_op_coverage.c compares the records with every op definition of
 * the library and fails on one without a case (docs/architecture.md).
 *
 * An op with several outputs (max over a dim: values and indices; an LSTM:
 * y, h_n, c_n) sets n_outputs and run_n instead of run, and its reference
 * fills one ref_tensor per output. Every output is checked in 1 and 4;
 * outputs of an integer dtype take no part in 2 and 3, and for the others
 *   L = sum_k <f_k(x), v_k>
 * is checked once with every v_k set and, when there are two or more,
 * once more for each output alone (the other cotangents zero).
 */
#ifndef MT_TESTS_HARNESS_H
#define MT_TESTS_HARNESS_H

#include <criterion/criterion.h>

#include "mytorch/mytorch.h"

/* A plain array for references: row-major, double. */
typedef struct ref_tensor {
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    double *data;
} ref_tensor;

int64_t ref_numel(const ref_tensor *t);
/* Sets shape and allocates zeroed data (freed by the harness). */
void ref_alloc(ref_tensor *t, int ndim, const int64_t *shape);
/* Flat offset of a multi-index into t, broadcasting t to an output of out_ndim
   dims (size-1 and missing leading dims repeat). */
int64_t ref_broadcast_offset(const ref_tensor *t, int out_ndim, const int64_t *index);
/* Advances a multi-index over shape; false after the last. */
bool ref_next_index(int ndim, const int64_t *shape, int64_t *index);
/* Broadcast shape of a and b into out (the inputs are assumed compatible). */
void ref_broadcast_shape(const ref_tensor *a, const ref_tensor *b, int *ndim, int64_t *shape);

typedef struct mt_input_spec {
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    double lo, hi;              /* uniform range of values; both 0: [-2, 2] */
    bool integer;               /* an index tensor (MT_I64) with values in [0, int_high) */
    int64_t int_high;
    bool no_grad;               /* a float input that is not differentiated */
} mt_input_spec;

/* The most outputs a case can have. */
#define MT_CASE_MAX_OUTPUTS 4
/* Op definitions on the tape of one case at most (for the coverage records). */
#define MT_COVERAGE_MAX_OPS 32

typedef struct mt_op_case mt_op_case;
struct mt_op_case {
    const char *name;
    int n_inputs;
    mt_input_spec inputs[6];
    /* The op on engine tensors. */
    mt_tensor *(*run)(const mt_op_case *c, mt_tensor *const *in);
    /* Or, for an op with n_outputs > 1 outputs: write them into out[0..n_outputs-1]. */
    int n_outputs;              /* 0: one output, from run */
    mt_status (*run_n)(const mt_op_case *c, mt_tensor *const *in, mt_tensor **out);
    /* The naive reference: fill out (ref_alloc) from the inputs; with
       n_outputs, out is an array of n_outputs to fill. */
    void (*reference)(const mt_op_case *c, const ref_tensor *in, ref_tensor *out);
    /* Parameters for run and reference (e.g. dims, a constant). */
    const void *params;
    double fwd_tol_f64;         /* 0: 1e-10 (relative) */
    double fwd_tol_f32;         /* 0: 1e-5 */
    double grad_tol;            /* 0: 1e-6 (relative error of vjp vs finite differences) */
    double fd_step;             /* 0: 1e-6 */
    bool no_grad_check;         /* the op has no gradient (comparisons, argmax) */
    bool train_only_random;     /* reserved: the op draws random numbers (dropout) */
};

/* Runs every check on c, failing the current Criterion test with a message
   naming the op, the check and the worst element. */
void mt_check_op(const mt_op_case *c);

/* A direct call of a backend kernel entry (they return an mt_status that
   must be looked at) that must succeed: KERNEL_OK(emu->fill(MT_F32, n, p, 0)). */
#define KERNEL_OK(call) cr_assert_eq((call), MT_OK, "kernel call failed: %s", #call)

/* Shape helper for specs: MT_SPEC(-2, 2, 3, 4) is a [3, 4] input in [-2, 2]. */
#define MT_SPEC(lo_, hi_, ...) \
    { .ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .shape = {__VA_ARGS__}, .lo = (lo_), .hi = (hi_) }
#define MT_SPEC0(lo_, hi_) { .ndim = 0, .lo = (lo_), .hi = (hi_) }

/* A fresh folder for a test's files, written into buf (size >= 64):
   "<base>/mt_<tag>_XXXXXX" with base /dev/shm when it is writable (the npy
   and checkpoint writers fsync every file, which is slow on a disk), else
   /tmp. Fails the test when it cannot be made. */
void mt_test_temp_dir(char *buf, size_t size, const char *tag);
/* "<dir>/<name>" in one of 32 rotating buffers, so that several can be live
   at once (a test's file paths). */
const char *mt_test_path(const char *dir, const char *name);
/* Removes path and everything below it (links are removed, not followed). */
void mt_test_remove_tree(const char *path);

/* Opens a step scope around every Criterion test of a suite. */
void mt_test_setup(void);
void mt_test_teardown(void);

#endif
