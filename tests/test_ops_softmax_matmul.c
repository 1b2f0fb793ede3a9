/*
 * test_ops_softmax_matmul.c - harness cases for softmax and log_softmax over
 * the first, a middle and the last dim; mt_matmul in every PyTorch form
 * (1-d and 2-d operands, batched, broadcast batch dims) including transposed
 * operands that reach the BLAS through its trans flags; mt_linear with and
 * without bias on 2-d and 3-d inputs.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- softmax */
typedef struct softmax_params { int dim; bool log; } softmax_params;

static void ref_softmax(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const softmax_params *p = c->params;
    const ref_tensor *x = &in[0];
    int dim = p->dim < 0 ? p->dim + x->ndim : p->dim;
    int64_t outer = 1, n = x->shape[dim], inner = 1;
    for (int d = 0; d < dim; d++) outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
    ref_alloc(out, x->ndim, x->shape);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double total = 0;
            for (int64_t j = 0; j < n; j++) total += exp(x->data[(o * n + j) * inner + i]);
            for (int64_t j = 0; j < n; j++) {
                int64_t at = (o * n + j) * inner + i;
                out->data[at] = p->log ? x->data[at] - log(total) : exp(x->data[at]) / total;
            }
        }
}

static mt_tensor *run_softmax(const mt_op_case *c, mt_tensor *const *in)
{
    const softmax_params *p = c->params;
    return p->log ? mt_log_softmax(in[0], p->dim) : mt_softmax(in[0], p->dim);
}

#define SOFTMAX_CASE(NAME, LOG, DIM, SPEC)                                                 \
    Test(ops_softmax, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {            \
        static const softmax_params p = { DIM, LOG };                                      \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC },                 \
                         .run = run_softmax, .reference = ref_softmax, .params = &p };      \
        mt_check_op(&c);                                                                   \
    }

SOFTMAX_CASE(softmax_first_dim, false, 0, MT_SPEC(-3, 3, 3, 2, 4))
SOFTMAX_CASE(softmax_middle_dim, false, 1, MT_SPEC(-3, 3, 2, 3, 4))
SOFTMAX_CASE(softmax_last_dim, false, -1, MT_SPEC(-3, 3, 2, 3, 5))
SOFTMAX_CASE(softmax_1d, false, 0, MT_SPEC(-3, 3, 7))
SOFTMAX_CASE(softmax_size1_dim, false, 1, MT_SPEC(-3, 3, 3, 1, 5))
SOFTMAX_CASE(log_softmax_first_dim, true, 0, MT_SPEC(-3, 3, 3, 2, 4))
SOFTMAX_CASE(log_softmax_middle_dim, true, -2, MT_SPEC(-3, 3, 2, 3, 4))
SOFTMAX_CASE(log_softmax_last_dim, true, 2, MT_SPEC(-3, 3, 2, 3, 5))
SOFTMAX_CASE(log_softmax_1d, true, -1, MT_SPEC(-3, 3, 7))

Test(ops_softmax, large_logits_stay_finite, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(3), (float[]){ 1000, 1001, 999 });
    mt_tensor *p = mt_softmax(x, 0), *lp = mt_log_softmax(x, 0);
    cr_assert(p && lp, "%s", mt_last_error());
    double e = exp(-1.0), z = 1 + e + exp(-2.0);
    cr_assert_float_eq(mt_get(p, (int64_t[]){ 1 }), 1 / z, 1e-6);
    cr_assert_float_eq(mt_get(lp, (int64_t[]){ 2 }), -2 - log(z), 1e-5);
}

/* ---------------------------------------------------------------- matmul */
/* Which operands are stored transposed: run multiplies mt_transpose(x, -2, -1). */
typedef struct matmul_params { bool transpose_a, transpose_b; } matmul_params;

/* t with its last two dims swapped (a fresh array; t must have >= 2 dims). */
static ref_tensor ref_transpose_last2(const ref_tensor *t)
{
    ref_tensor r = { 0 };
    int nd = t->ndim;
    int64_t shape[MT_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[nd - 2] = t->shape[nd - 1];
    shape[nd - 1] = t->shape[nd - 2];
    ref_alloc(&r, nd, shape);
    int64_t rows = t->shape[nd - 2], cols = t->shape[nd - 1], batch = rows * cols > 0 ? ref_numel(t) / (rows * cols) : 0;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) r.data[(b * cols + j) * rows + i] = t->data[(b * rows + i) * cols + j];
    return r;
}

/* PyTorch's matmul by definition: a 1-d a is a row [1, k] (dropped after),
   a 1-d b a column [k, 1] (dropped after), batch dims broadcast. */
static void ref_matmul_plain(const ref_tensor *a, const ref_tensor *b, ref_tensor *out)
{
    ref_tensor a2 = *a, b2 = *b;
    if (a->ndim == 1) { a2.ndim = 2; a2.shape[0] = 1; a2.shape[1] = a->shape[0]; }
    if (b->ndim == 1) { b2.ndim = 2; b2.shape[0] = b->shape[0]; b2.shape[1] = 1; }
    int64_t m = a2.shape[a2.ndim - 2], k = a2.shape[a2.ndim - 1], n = b2.shape[b2.ndim - 1];
    /* batch parts as ref tensors of their own, to reuse the broadcasting helpers */
    ref_tensor ab = { .ndim = a2.ndim - 2 }, bb = { .ndim = b2.ndim - 2 };
    memcpy(ab.shape, a2.shape, sizeof(int64_t) * (size_t)ab.ndim);
    memcpy(bb.shape, b2.shape, sizeof(int64_t) * (size_t)bb.ndim);
    int bnd;
    int64_t bshape[MT_MAX_DIMS], idx[MT_MAX_DIMS] = { 0 };
    ref_broadcast_shape(&ab, &bb, &bnd, bshape);
    int64_t oshape[MT_MAX_DIMS];
    int ond = 0;
    for (int d = 0; d < bnd; d++) oshape[ond++] = bshape[d];
    if (a->ndim > 1) oshape[ond++] = m;
    if (b->ndim > 1) oshape[ond++] = n;
    ref_alloc(out, ond, oshape);
    int64_t batch = 0;
    do {
        const double *pa = a2.data + ref_broadcast_offset(&ab, bnd, idx) * m * k;
        const double *pb = b2.data + ref_broadcast_offset(&bb, bnd, idx) * k * n;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t l = 0; l < k; l++) s += pa[i * k + l] * pb[l * n + j];
                out->data[(batch * m + i) * n + j] = s;
            }
        batch++;
    } while (bnd > 0 && ref_next_index(bnd, bshape, idx));
}

static void ref_matmul(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const matmul_params *p = c->params;
    ref_tensor ta = { 0 }, tb = { 0 };
    if (p->transpose_a) ta = ref_transpose_last2(&in[0]);
    if (p->transpose_b) tb = ref_transpose_last2(&in[1]);
    ref_matmul_plain(p->transpose_a ? &ta : &in[0], p->transpose_b ? &tb : &in[1], out);
    free(ta.data);
    free(tb.data);
}

static mt_tensor *run_matmul(const mt_op_case *c, mt_tensor *const *in)
{
    const matmul_params *p = c->params;
    mt_tensor *a = p->transpose_a ? mt_transpose(in[0], -2, -1) : in[0];
    mt_tensor *b = p->transpose_b ? mt_transpose(in[1], -2, -1) : in[1];
    return mt_matmul(a, b);
}

#define MATMUL_CASE(NAME, TA, TB, SPEC_A, SPEC_B)                                          \
    Test(ops_matmul, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const matmul_params p = { TA, TB };                                         \
        mt_op_case c = { .name = #NAME, .n_inputs = 2, .inputs = { SPEC_A, SPEC_B },       \
                         .run = run_matmul, .reference = ref_matmul, .params = &p };        \
        mt_check_op(&c);                                                                   \
    }

MATMUL_CASE(vec_vec, false, false, MT_SPEC(-2, 2, 5), MT_SPEC(-2, 2, 5))
MATMUL_CASE(vec_mat, false, false, MT_SPEC(-2, 2, 4), MT_SPEC(-2, 2, 4, 3))
MATMUL_CASE(mat_vec, false, false, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 4))
MATMUL_CASE(mat_mat, false, false, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 4, 5))
MATMUL_CASE(mat_mat_inner_1, false, false, MT_SPEC(-2, 2, 3, 1), MT_SPEC(-2, 2, 1, 4))
MATMUL_CASE(batched_mat, false, false, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-2, 2, 4, 5))
MATMUL_CASE(batched_batched, false, false, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-2, 2, 2, 4, 2))
MATMUL_CASE(broadcast_batch, false, false, MT_SPEC(-2, 2, 2, 1, 3, 4), MT_SPEC(-2, 2, 3, 4, 2))
MATMUL_CASE(mat_batched, false, false, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 2, 4, 2))
MATMUL_CASE(batched_vec, false, false, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-2, 2, 4))
MATMUL_CASE(vec_batched, false, false, MT_SPEC(-2, 2, 4), MT_SPEC(-2, 2, 2, 4, 3))
MATMUL_CASE(transposed_a, true, false, MT_SPEC(-2, 2, 4, 3), MT_SPEC(-2, 2, 4, 5))
MATMUL_CASE(transposed_b, false, true, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 5, 4))
MATMUL_CASE(transposed_both, true, true, MT_SPEC(-2, 2, 4, 3), MT_SPEC(-2, 2, 5, 4))
MATMUL_CASE(transposed_batched_a, true, false, MT_SPEC(-2, 2, 2, 4, 3), MT_SPEC(-2, 2, 2, 4, 2))
MATMUL_CASE(transposed_batched_a_shared_b, true, false, MT_SPEC(-2, 2, 2, 4, 3), MT_SPEC(-2, 2, 4, 2))
MATMUL_CASE(transposed_shared_b, false, true, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-2, 2, 5, 4))

Test(ops_matmul, bad_shapes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *a = mt_zeros(MT_F32, MT_SHAPE(3, 4)), *b = mt_zeros(MT_F32, MT_SHAPE(5, 2));
    cr_assert_null(mt_matmul(a, b));
    cr_assert(strstr(mt_last_error(), "matmul") && strstr(mt_last_error(), "[3, 4]") && strstr(mt_last_error(), "[5, 2]"),
              "%s", mt_last_error());
    cr_assert_null(mt_matmul(mt_zeros(MT_F32, MT_SHAPE(2, 3, 4)), mt_zeros(MT_F32, MT_SHAPE(3, 4, 2))));
    cr_assert(strstr(mt_last_error(), "batch"), "%s", mt_last_error());
    cr_assert_null(mt_matmul(a, mt_zeros(MT_F64, MT_SHAPE(4, 2))));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
}

/* ---------------------------------------------------------------- linear */
/* inputs: x [..., in], weight [out, in], bias [out] (when the case has one) */
static void ref_linear(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const ref_tensor *x = &in[0], *w = &in[1];
    bool has_bias = c->n_inputs > 2;
    int64_t n_in = w->shape[1], n_out = w->shape[0], rows = ref_numel(x) / n_in;
    int64_t shape[MT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = n_out;
    ref_alloc(out, x->ndim, shape);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double s = has_bias ? in[2].data[o] : 0;
            for (int64_t i = 0; i < n_in; i++) s += x->data[r * n_in + i] * w->data[o * n_in + i];
            out->data[r * n_out + o] = s;
        }
}

static mt_tensor *run_linear(const mt_op_case *c, mt_tensor *const *in)
{
    return mt_linear(in[0], in[1], c->n_inputs > 2 ? in[2] : NULL);
}

#define LINEAR_CASE(NAME, N_INPUTS, ...)                                                   \
    Test(ops_linear, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        mt_op_case c = { .name = #NAME, .n_inputs = N_INPUTS, .inputs = { __VA_ARGS__ },   \
                         .run = run_linear, .reference = ref_linear };                      \
        mt_check_op(&c);                                                                   \
    }

LINEAR_CASE(linear_2d_bias, 3, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-1, 1, 5, 4), MT_SPEC(-1, 1, 5))
LINEAR_CASE(linear_2d_no_bias, 2, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-1, 1, 5, 4))
LINEAR_CASE(linear_3d_bias, 3, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-1, 1, 3, 4), MT_SPEC(-1, 1, 3))
LINEAR_CASE(linear_3d_no_bias, 2, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-1, 1, 3, 4))
LINEAR_CASE(linear_1d_bias, 3, MT_SPEC(-2, 2, 4), MT_SPEC(-1, 1, 3, 4), MT_SPEC(-1, 1, 3))

Test(ops_linear, bad_shapes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(3, 4));
    cr_assert_null(mt_linear(x, mt_zeros(MT_F32, MT_SHAPE(5, 3)), NULL));
    cr_assert(strstr(mt_last_error(), "linear") && strstr(mt_last_error(), "[5, 3]"), "%s", mt_last_error());
    cr_assert_null(mt_linear(x, mt_zeros(MT_F32, MT_SHAPE(5, 4)), mt_zeros(MT_F32, MT_SHAPE(4))));
    cr_assert(strstr(mt_last_error(), "bias"), "%s", mt_last_error());
}
