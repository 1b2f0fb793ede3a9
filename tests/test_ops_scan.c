/*
 * test_ops_scan.c - mt_cumsum: harness cases along the first, a middle and
 * the last dim, 1-d rows short and long (the CUDA kernel's warp-per-row and
 * block-per-row paths, several tiles, several blocks), wide columns (several
 * blocks of the column kernel); integer inputs summed in i64; the CPU result
 * bitwise independent of the thread count; errors.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cumsum_params { int dim; } cumsum_params;

static void ref_cumsum(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const cumsum_params *p = c->params;
    const ref_tensor *x = &in[0];
    int dim = x->ndim == 0 ? 0 : (p->dim < 0 ? p->dim + x->ndim : p->dim);
    int64_t outer = 1, n = x->ndim ? x->shape[dim] : 1, inner = 1;
    for (int d = 0; d < dim; d++) outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
    ref_alloc(out, x->ndim, x->shape);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++) {
                int64_t at = (o * n + j) * inner + i;
                s += x->data[at];
                out->data[at] = s;
            }
        }
}

static mt_tensor *run_cumsum(const mt_op_case *c, mt_tensor *const *in)
{
    const cumsum_params *p = c->params;
    return mt_cumsum(in[0], p->dim);
}

#define CUMSUM_CASE(NAME, DIM, SPEC)                                                       \
    Test(ops_cumsum, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const cumsum_params p = { DIM };                                            \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC },                 \
                         .run = run_cumsum, .reference = ref_cumsum, .params = &p };        \
        mt_check_op(&c);                                                                   \
    }

CUMSUM_CASE(first_dim, 0, MT_SPEC(-2, 2, 5, 3, 4))
CUMSUM_CASE(middle_dim, 1, MT_SPEC(-2, 2, 3, 7, 4))
CUMSUM_CASE(last_dim, -1, MT_SPEC(-2, 2, 3, 4, 9))
CUMSUM_CASE(rows_many_blocks, 1, MT_SPEC(-2, 2, 21, 33))      /* 21 warp-rows: 3 blocks, a partial tile */
CUMSUM_CASE(long_row, 0, MT_SPEC(-1, 1, 700))                 /* a block per row, 3 tiles of 256 */
CUMSUM_CASE(wide_columns, 1, MT_SPEC(-2, 2, 3, 5, 101))       /* 303 columns: 2 column blocks */
CUMSUM_CASE(size1_dim, 1, MT_SPEC(-2, 2, 4, 1, 3))
CUMSUM_CASE(zero_d, 0, MT_SPEC0(-2, 2))

/* A transposed (non-contiguous) input. */
static mt_tensor *run_cumsum_transposed(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_cumsum(mt_transpose(in[0], 0, 1), 0);   /* [4, 3] -> cumsum over the 4 */
}
static void ref_cumsum_transposed(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    const ref_tensor *x = &in[0];   /* [3, 4] */
    int64_t shape[2] = { 4, 3 };
    ref_alloc(out, 2, shape);
    for (int64_t i = 0; i < 3; i++) {
        double s = 0;
        for (int64_t j = 0; j < 4; j++) {
            s += x->data[i * 4 + j];
            out->data[j * 3 + i] = s;
        }
    }
}
Test(ops_cumsum, transposed_input, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_op_case c = { .name = "cumsum_transposed", .n_inputs = 1, .inputs = { MT_SPEC(-2, 2, 3, 4) },
                     .run = run_cumsum_transposed, .reference = ref_cumsum_transposed };
    mt_check_op(&c);
}

/* Integers and bools: summed in i64, as PyTorch does, on the CPU and on cuda-emu. */
Test(ops_cumsum, integers_sum_in_i64, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device devices[] = { mt_cpu(), { MT_DEVICE_CUDA_EMU, 0 } };
    for (size_t k = 0; k < sizeof devices / sizeof devices[0]; k++) {
        if (!mt_device_available(devices[k], NULL)) continue;
        mt_tensor *x = mt_to_device(mt_from_data(MT_I32, MT_SHAPE(2, 3), (int32_t[]){ 1, 2, 2147483647, -4, 5, 6 }),
                                    devices[k]);
        mt_tensor *y = mt_cumsum(x, 1);
        cr_assert(y, "%s", mt_last_error());
        cr_assert_eq(y->dtype, MT_I64);
        int64_t got[6], want[6] = { 1, 3, 2147483650LL, -4, 1, 7 };
        cr_assert_eq(mt_to_data(y, MT_I64, got), MT_OK);
        for (int i = 0; i < 6; i++) cr_assert_eq(got[i], want[i], "%s: element %d is %lld", mt_device_name(devices[k]), i, (long long)got[i]);
        mt_tensor *b = mt_to_device(mt_from_data(MT_BOOL, MT_SHAPE(4), (uint8_t[]){ 1, 0, 1, 1 }), devices[k]);
        mt_tensor *yb = mt_cumsum(b, 0);
        cr_assert(yb && yb->dtype == MT_I64, "%s", mt_last_error());
        cr_assert_eq(mt_to_data(yb, MT_I64, got), MT_OK);
        cr_assert(got[0] == 1 && got[1] == 1 && got[2] == 2 && got[3] == 3);
        cr_assert(!y->requires_grad);
    }
}

/* The CPU's sums are formed in a fixed order per column: 1 and 2 threads give the same bits. */
Test(ops_cumsum, cpu_independent_of_thread_count, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(7);
    int prev = mt_get_num_threads();
    const int dims[] = { 0, 1 };
    for (int k = 0; k < 2; k++) {
        mt_tensor *x = mt_randn(&gen, MT_F32, MT_SHAPE(96, 1000));   /* above the parallel grain */
        float *a = malloc(sizeof(float) * 96000), *b = malloc(sizeof(float) * 96000);
        mt_set_num_threads(1);
        cr_assert_eq(mt_to_data(mt_cumsum(x, dims[k]), MT_F32, a), MT_OK);
        mt_set_num_threads(2);
        cr_assert_eq(mt_to_data(mt_cumsum(x, dims[k]), MT_F32, b), MT_OK);
        cr_assert(memcmp(a, b, sizeof(float) * 96000) == 0, "dim %d: results differ between 1 and 2 threads", dims[k]);
        free(a);
        free(b);
    }
    mt_set_num_threads(prev);
}

/* A backward through cumsum on cuda-emu gives the reversed cumsum of the gradient. */
Test(ops_cumsum, backward_is_reversed_cumsum, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_from_data(MT_F64, MT_SHAPE(4), (double[]){ 1, 2, 3, 4 }), true);
    mt_tensor *w = mt_from_data(MT_F64, MT_SHAPE(4), (double[]){ 1, 10, 100, 1000 });
    mt_tensor *loss = mt_sum_all(mt_mul(mt_cumsum(x, 0), w));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    double g[4];
    mt_to_data(x->grad, MT_F64, g);
    cr_assert(g[0] == 1111 && g[1] == 1110 && g[2] == 1100 && g[3] == 1000, "%g %g %g %g", g[0], g[1], g[2], g[3]);
}

Test(ops_cumsum, errors, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(2, 3));
    cr_assert_null(mt_cumsum(x, 2));
    cr_assert(strstr(mt_last_error(), "cumsum") && strstr(mt_last_error(), "dim 2"), "%s", mt_last_error());
    cr_assert_null(mt_cumsum(NULL, 0));
    mt_tensor *e = mt_cumsum(mt_zeros(MT_F32, MT_SHAPE(0, 3)), 0);   /* empty: fine */
    cr_assert(e && e->shape[0] == 0, "%s", mt_last_error());
}
