/*
 * test_ops_index.c - the indexing ops of op_index.c: harness cases for
 * index_select, gather, scatter_add, embedding, masked_fill and one_hot
 * (forward against naive double references, vjp against finite differences,
 * jvp against vjp, cuda-emu against the CPU, in both deterministic modes for
 * the ops whose gradients scatter), PyTorch's documented examples, the
 * padding row of embedding, non-contiguous and integer operands, the
 * determinism of the accumulating kernels (CPU across thread counts, the
 * ordered CUDA path bit for bit against the CPU), the errors, and the
 * Embedding module.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- reference helpers */
/* Row-major offset of a multi-index into t. */
static int64_t ref_offset(const ref_tensor *t, const int64_t *index)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) off = off * t->shape[d] + index[d];
    return off;
}

static bool cuda_emu_here(void) { return mt_device_available((mt_device){ MT_DEVICE_CUDA_EMU, 0 }, NULL); }

/* The harness cases run once as they are (atomics on CUDA) and once in deterministic mode. */
static void check_both_modes(const mt_op_case *c)
{
    bool prev = mt_set_deterministic(false);
    mt_check_op(c);
    mt_set_deterministic(true);
    mt_check_op(c);
    mt_set_deterministic(prev);
}

typedef struct index_params { int dim; int64_t n; } index_params;

/* ---------------------------------------------------------------- index_select */
static void ref_index_select(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const index_params *p = c->params;
    const ref_tensor *x = &in[0], *idx = &in[1];
    int dim = p->dim < 0 ? p->dim + x->ndim : p->dim;
    int64_t shape[MT_MAX_DIMS], pos[MT_MAX_DIMS] = { 0 };
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = ref_numel(idx);
    ref_alloc(out, x->ndim, shape);
    if (ref_numel(out) == 0) return;
    do {
        int64_t q[MT_MAX_DIMS];
        memcpy(q, pos, sizeof q);
        q[dim] = (int64_t)idx->data[pos[dim]];
        out->data[ref_offset(out, pos)] = x->data[ref_offset(x, q)];
    } while (ref_next_index(out->ndim, out->shape, pos));
}

static mt_tensor *run_index_select(const mt_op_case *c, mt_tensor *const *in)
{
    const index_params *p = c->params;
    return mt_index_select(in[0], p->dim, in[1]);
}

#define INDEX_SELECT_CASE(NAME, DIM, XSPEC, K, HIGH)                                                     \
    Test(ops_index, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                            \
        static const index_params p = { DIM, 0 };                                                        \
        mt_op_case c = { .name = #NAME, .n_inputs = 2,                                                   \
                         .inputs = { XSPEC, { .ndim = 1, .shape = { K }, .integer = true, .int_high = HIGH } }, \
                         .run = run_index_select, .reference = ref_index_select, .params = &p };          \
        check_both_modes(&c);                                                                            \
    }

INDEX_SELECT_CASE(index_select_rows, 0, MT_SPEC(-2, 2, 7, 5), 9, 7)
/* 390 outputs: two blocks of the gather kernel; 30 columns in the backward */
INDEX_SELECT_CASE(index_select_middle_dim, 1, MT_SPEC(-2, 2, 5, 11, 6), 13, 11)
INDEX_SELECT_CASE(index_select_last_dim, -1, MT_SPEC(-2, 2, 4, 6), 5, 6)
INDEX_SELECT_CASE(index_select_1d, 0, MT_SPEC(-2, 2, 17), 23, 17)

/* ---------------------------------------------------------------- gather */
static void ref_gather(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const index_params *p = c->params;
    const ref_tensor *x = &in[0], *idx = &in[1];
    int dim = p->dim < 0 ? p->dim + x->ndim : p->dim;
    int64_t pos[MT_MAX_DIMS] = { 0 };
    ref_alloc(out, idx->ndim, idx->shape);
    if (ref_numel(out) == 0) return;
    do {
        int64_t q[MT_MAX_DIMS];
        memcpy(q, pos, sizeof q);
        q[dim] = (int64_t)idx->data[ref_offset(idx, pos)];
        out->data[ref_offset(out, pos)] = x->data[ref_offset(x, q)];
    } while (ref_next_index(out->ndim, out->shape, pos));
}

static mt_tensor *run_gather(const mt_op_case *c, mt_tensor *const *in)
{
    const index_params *p = c->params;
    return mt_gather(in[0], p->dim, in[1]);
}

#define INDEX_SPEC(HIGH, ...) \
    { .ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .shape = {__VA_ARGS__}, .integer = true, .int_high = (HIGH) }

#define GATHER_CASE(NAME, DIM, XSPEC, ISPEC)                                                             \
    Test(ops_index, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                            \
        static const index_params p = { DIM, 0 };                                                        \
        mt_op_case c = { .name = #NAME, .n_inputs = 2, .inputs = { XSPEC, ISPEC },                      \
                         .run = run_gather, .reference = ref_gather, .params = &p };                      \
        check_both_modes(&c);                                                                            \
    }

/* the index longer than x along dim (repeats), the same elsewhere */
GATHER_CASE(gather_last_dim, 1, MT_SPEC(-2, 2, 6, 7), INDEX_SPEC(7, 6, 9))
/* the index smaller than x in the other dims */
GATHER_CASE(gather_first_dim_smaller_index, 0, MT_SPEC(-2, 2, 5, 4, 3), INDEX_SPEC(5, 8, 3, 2))
/* 444 outputs, 37 columns of 12 in the backward */
GATHER_CASE(gather_multi_block, -1, MT_SPEC(-2, 2, 40, 9), INDEX_SPEC(9, 37, 12))
GATHER_CASE(gather_middle_dim, 1, MT_SPEC(-2, 2, 3, 4, 5), INDEX_SPEC(4, 3, 6, 5))

/* ---------------------------------------------------------------- scatter_add */
static void ref_scatter_add(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const index_params *p = c->params;
    const ref_tensor *x = &in[0], *idx = &in[1], *src = &in[2];
    int dim = p->dim < 0 ? p->dim + x->ndim : p->dim;
    ref_alloc(out, x->ndim, x->shape);
    memcpy(out->data, x->data, sizeof(double) * (size_t)ref_numel(x));
    int64_t pos[MT_MAX_DIMS] = { 0 };
    if (ref_numel(idx) == 0) return;
    do {
        int64_t q[MT_MAX_DIMS];
        memcpy(q, pos, sizeof q);
        q[dim] = (int64_t)idx->data[ref_offset(idx, pos)];
        out->data[ref_offset(out, q)] += src->data[ref_offset(src, pos)];
    } while (ref_next_index(idx->ndim, idx->shape, pos));
}

static mt_tensor *run_scatter_add(const mt_op_case *c, mt_tensor *const *in)
{
    const index_params *p = c->params;
    return mt_scatter_add(in[0], p->dim, in[1], in[2]);
}

#define SCATTER_CASE(NAME, DIM, XSPEC, ISPEC, SSPEC)                                                     \
    Test(ops_index, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                            \
        static const index_params p = { DIM, 0 };                                                        \
        mt_op_case c = { .name = #NAME, .n_inputs = 3, .inputs = { XSPEC, ISPEC, SSPEC },               \
                         .run = run_scatter_add, .reference = ref_scatter_add, .params = &p };            \
        check_both_modes(&c);                                                                            \
    }

/* src larger than the index: its extra elements get no gradient */
SCATTER_CASE(scatter_add_rows_src_larger, 0, MT_SPEC(-2, 2, 6, 5), INDEX_SPEC(6, 9, 4), MT_SPEC(-2, 2, 10, 5))
/* 300 columns: two blocks of the ordered kernel, 1200 positions for the atomic one */
SCATTER_CASE(scatter_add_multi_block, 1, MT_SPEC(-2, 2, 300, 5), INDEX_SPEC(5, 300, 4), MT_SPEC(-2, 2, 300, 4))
SCATTER_CASE(scatter_add_middle_dim, -2, MT_SPEC(-2, 2, 4, 6, 3), INDEX_SPEC(6, 4, 8, 3), MT_SPEC(-2, 2, 4, 8, 3))
SCATTER_CASE(scatter_add_1d, 0, MT_SPEC(-2, 2, 7), INDEX_SPEC(7, 29), MT_SPEC(-2, 2, 31))

/* ---------------------------------------------------------------- embedding */
static void ref_embedding(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    const ref_tensor *w = &in[0], *idx = &in[1];
    int64_t d = w->shape[1], shape[MT_MAX_DIMS];
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = d;
    ref_alloc(out, idx->ndim + 1, shape);
    for (int64_t q = 0; q < ref_numel(idx); q++)
        for (int64_t j = 0; j < d; j++) out->data[q * d + j] = w->data[(int64_t)idx->data[q] * d + j];
}

static mt_tensor *run_embedding(const mt_op_case *c, mt_tensor *const *in)
{
    const index_params *p = c->params;
    return mt_embedding(in[0], in[1], p->n);
}

#define EMBEDDING_CASE(NAME, WSPEC, ISPEC)                                                               \
    Test(ops_index, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                            \
        static const index_params p = { 0, -1 };                                                         \
        mt_op_case c = { .name = #NAME, .n_inputs = 2, .inputs = { WSPEC, ISPEC },                      \
                         .run = run_embedding, .reference = ref_embedding, .params = &p };                \
        check_both_modes(&c);                                                                            \
    }

/* [5, 7] tokens of dim 37: 1295 outputs, 37 columns over 35 tokens in the backward */
EMBEDDING_CASE(embedding_2d_indices, MT_SPEC(-2, 2, 11, 37), INDEX_SPEC(11, 5, 7))
EMBEDDING_CASE(embedding_1d_indices, MT_SPEC(-2, 2, 6, 3), INDEX_SPEC(6, 20))
EMBEDDING_CASE(embedding_3d_indices, MT_SPEC(-2, 2, 4, 5), INDEX_SPEC(4, 2, 3, 2))

/* ---------------------------------------------------------------- masked_fill */
static void ref_masked_fill(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    const ref_tensor *x = &in[0], *m = &in[1];
    int ndim;
    int64_t shape[MT_MAX_DIMS], pos[MT_MAX_DIMS] = { 0 };
    ref_broadcast_shape(x, m, &ndim, shape);
    ref_alloc(out, ndim, shape);
    int64_t k = 0;
    do {
        bool masked = m->data[ref_broadcast_offset(m, ndim, pos)] != 0;
        out->data[k++] = masked ? -7.5 : x->data[ref_broadcast_offset(x, ndim, pos)];
    } while (ref_next_index(ndim, shape, pos));
}

static mt_tensor *run_masked_fill(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_masked_fill(in[0], mt_to_dtype(in[1], MT_BOOL), -7.5);
}

#define MASKED_FILL_CASE(NAME, XSPEC, MSPEC)                                                             \
    Test(ops_index, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                            \
        mt_op_case c = { .name = #NAME, .n_inputs = 2, .inputs = { XSPEC, MSPEC },                      \
                         .run = run_masked_fill, .reference = ref_masked_fill };                          \
        mt_check_op(&c);                                                                                 \
    }

MASKED_FILL_CASE(masked_fill_same_shape, MT_SPEC(-2, 2, 4, 5), INDEX_SPEC(2, 4, 5))
MASKED_FILL_CASE(masked_fill_mask_broadcast, MT_SPEC(-2, 2, 4, 5), INDEX_SPEC(2, 1, 5))
/* the mask broadcasts x too, as torch.masked_fill does out of place */
MASKED_FILL_CASE(masked_fill_both_broadcast, MT_SPEC(-2, 2, 4, 5), INDEX_SPEC(2, 3, 1, 5))
MASKED_FILL_CASE(masked_fill_multi_block, MT_SPEC(-2, 2, 37, 11), INDEX_SPEC(2, 37, 11))

/* ---------------------------------------------------------------- one_hot */
static void ref_one_hot(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const index_params *p = c->params;
    const ref_tensor *idx = &in[0];
    int64_t classes = p->n;
    if (classes < 0)
        for (int64_t q = 0; q < ref_numel(idx); q++) classes = fmax((double)classes, idx->data[q] + 1);
    int64_t shape[MT_MAX_DIMS];
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = classes;
    ref_alloc(out, idx->ndim + 1, shape);
    for (int64_t q = 0; q < ref_numel(idx); q++) out->data[q * classes + (int64_t)idx->data[q]] = 1;
}

static mt_tensor *run_one_hot(const mt_op_case *c, mt_tensor *const *in)
{
    const index_params *p = c->params;
    mt_tensor *y = mt_one_hot(in[0], p->n);
    cr_assert(y == NULL || y->dtype == MT_I64, "one_hot gave %s", mt_dtype_name(y->dtype));
    return y;
}

#define ONE_HOT_CASE(NAME, CLASSES, ...)                                                               \
    Test(ops_index, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                            \
        static const index_params p = { 0, CLASSES };                                                    \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { __VA_ARGS__ }, .run = run_one_hot,          \
                         .reference = ref_one_hot, .params = &p, .no_grad_check = true };                 \
        mt_check_op(&c);                                                                                 \
    }

ONE_HOT_CASE(one_hot_given_classes, 7, INDEX_SPEC(5, 4, 6))
ONE_HOT_CASE(one_hot_inferred_classes, -1, INDEX_SPEC(9, 31))
ONE_HOT_CASE(one_hot_0d, 4, { .ndim = 0, .integer = true, .int_high = 4 })

/* ---------------------------------------------------------------- PyTorch's examples */
static mt_tensor *i64(int ndim, const int64_t *shape, const int64_t *values)
{
    return mt_from_data(MT_I64, ndim, shape, values);
}

static void assert_values(const mt_tensor *t, const double *expect, int64_t n, const char *what)
{
    cr_assert(t != NULL, "%s: %s", what, mt_last_error());
    cr_assert(mt_numel(t) == n, "%s: %lld elements, expected %lld", what, (long long)mt_numel(t), (long long)n);
    double got[256];
    cr_assert(n <= 256);
    cr_assert(mt_to_data(t, MT_F64, got) == MT_OK);
    for (int64_t k = 0; k < n; k++)
        cr_assert(got[k] == expect[k], "%s: element %lld is %g, expected %g", what, (long long)k, got[k], expect[k]);
}

Test(ops_index, pytorch_gather_example, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* torch.gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]])) == [[1, 1], [4, 3]] */
    mt_tensor *t = mt_from_data(MT_F32, MT_SHAPE(2, 2), (float[]){ 1, 2, 3, 4 });
    mt_tensor *y = mt_gather(t, 1, i64(MT_SHAPE(2, 2), (int64_t[]){ 0, 0, 1, 0 }));
    assert_values(y, (double[]){ 1, 1, 4, 3 }, 4, "gather");
}

Test(ops_index, pytorch_scatter_add_example, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* torch.zeros(3, 5).scatter_add(0, torch.tensor([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]]), torch.ones(2, 5))
       == [[1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [1, 0, 1, 0, 1]] (the src of torch's doc example, ones) */
    mt_tensor *x = mt_zeros(MT_F64, MT_SHAPE(3, 5)), *src = mt_ones(MT_F64, MT_SHAPE(2, 5));
    mt_tensor *idx = i64(MT_SHAPE(2, 5), (int64_t[]){ 0, 1, 2, 0, 0, 2, 0, 0, 1, 2 });
    assert_values(mt_scatter_add(x, 0, idx, src), (double[]){ 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1 }, 15,
                  "scatter_add");
    /* integer dtypes take the same kernel */
    mt_tensor *xi = mt_zeros(MT_I64, MT_SHAPE(3, 5)), *si = mt_full(MT_I64, MT_SHAPE(2, 5), 3);
    mt_tensor *yi = mt_scatter_add(xi, 0, idx, si);
    cr_assert(yi && yi->dtype == MT_I64, "%s", mt_last_error());
    assert_values(yi, (double[]){ 3, 3, 3, 3, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3 }, 15, "scatter_add i64");
    mt_tensor *y32 = mt_scatter_add(mt_zeros(MT_I32, MT_SHAPE(3, 5)), 0, idx, mt_full(MT_I32, MT_SHAPE(2, 5), -2));
    assert_values(y32, (double[]){ -2, -2, -2, -2, -2, 0, -2, 0, -2, 0, -2, 0, -2, 0, -2 }, 15, "scatter_add i32");
}

Test(ops_index, index_select_repeats_accumulate_gradient, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_from_data(MT_F32, MT_SHAPE(3, 2), (float[]){ 1, 2, 3, 4, 5, 6 }), true);
    mt_tensor *y = mt_index_select(x, 0, i64(MT_SHAPE(4), (int64_t[]){ 2, 0, 2, 2 }));
    assert_values(y, (double[]){ 5, 6, 1, 2, 5, 6, 5, 6 }, 8, "index_select");
    cr_assert(mt_backward(mt_sum_all(y)) == MT_OK, "%s", mt_last_error());
    assert_values(x->grad, (double[]){ 1, 1, 0, 0, 3, 3 }, 6, "index_select grad (index_add)");
    /* a 0-d index keeps the dim with size 1, as torch does */
    mt_tensor *one = mt_index_select(x, 1, mt_scalar(MT_I64, 1));
    cr_assert(one && one->ndim == 2 && one->shape[0] == 3 && one->shape[1] == 1, "%s", mt_last_error());
    assert_values(one, (double[]){ 2, 4, 6 }, 3, "index_select 0-d index");
    /* no index at all: an empty dim */
    mt_tensor *none = mt_index_select(x, 0, mt_empty(MT_I64, MT_SHAPE(0)));
    cr_assert(none && none->shape[0] == 0 && none->shape[1] == 2, "%s", mt_last_error());
}

Test(ops_index, gather_integer_and_bool_values, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* gather moves bits: every dtype, 1-, 4- and 8-byte paths, on cpu and cuda-emu */
    mt_device devices[2] = { mt_cpu(), { MT_DEVICE_CUDA_EMU, 0 } };
    mt_dtype dtypes[] = { MT_I64, MT_I32, MT_U8, MT_BOOL, MT_F64, MT_F32 };
    for (int dv = 0; dv < (cuda_emu_here() ? 2 : 1); dv++)
        for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++) {
            mt_tensor *x = mt_to_device(mt_to_dtype(mt_from_data(MT_F64, MT_SHAPE(2, 3), (double[]){ 1, 0, 3, 4, 5, 0 }),
                                                    dtypes[k]), devices[dv]);
            mt_tensor *idx = mt_to_device(i64(MT_SHAPE(5), (int64_t[]){ 2, 2, 0, 1, 0 }), devices[dv]);
            mt_tensor *y = mt_index_select(x, 1, idx);
            cr_assert(y && y->dtype == dtypes[k], "%s", mt_last_error());
            double e[10] = { 3, 3, 1, 0, 1, 0, 0, 4, 5, 4 };
            if (dtypes[k] == MT_BOOL) for (int j = 0; j < 10; j++) e[j] = e[j] != 0;
            assert_values(y, e, 10, mt_dtype_name(dtypes[k]));
        }
}

/* ---------------------------------------------------------------- embedding's padding row */
Test(ops_index, embedding_padding_row_gets_no_gradient, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device devices[2] = { mt_cpu(), { MT_DEVICE_CUDA_EMU, 0 } };
    for (int dv = 0; dv < (cuda_emu_here() ? 2 : 1); dv++) {
        mt_tensor *w = mt_to_device(mt_from_data(MT_F64, MT_SHAPE(4, 2), (double[]){ 1, 2, 3, 4, 5, 6, 7, 8 }),
                                    devices[dv]);
        mt_requires_grad(w, true);
        mt_tensor *idx = mt_to_device(i64(MT_SHAPE(2, 3), (int64_t[]){ 1, 0, 1, 3, 1, 0 }), devices[dv]);
        mt_tensor *y = mt_embedding(w, idx, 1);
        cr_assert(y && y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 2, "%s", mt_last_error());
        /* the forward still reads the padding row, as in PyTorch */
        assert_values(y, (double[]){ 3, 4, 1, 2, 3, 4, 7, 8, 3, 4, 1, 2 }, 12, "embedding forward");
        mt_tensor *v = mt_to_device(mt_from_data(MT_F64, MT_SHAPE(2, 3, 2), (double[]){ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }),
                                    devices[dv]);
        cr_assert(mt_backward(mt_sum_all(mt_mul(y, v))) == MT_OK, "%s", mt_last_error());
        /* row 0: positions 1 and 5 -> (3 + 11, 4 + 12); row 1 (padding): 0; row 2: 0; row 3: position 3 */
        assert_values(w->grad, (double[]){ 14, 16, 0, 0, 0, 0, 7, 8 }, 8, "embedding grad");

        /* forward mode: the tangent of a padding position is 0 (the transpose of the vjp) */
        mt_tensor *w2 = mt_to_device(mt_from_data(MT_F64, MT_SHAPE(4, 2), (double[]){ 1, 2, 3, 4, 5, 6, 7, 8 }), devices[dv]);
        mt_tensor *t = mt_to_device(mt_ones(MT_F64, MT_SHAPE(4, 2)), devices[dv]);
        mt_tensor *dual = mt_make_dual(w2, t);
        cr_assert(dual, "%s", mt_last_error());
        mt_tensor *y2 = mt_embedding(dual, idx, 1);
        cr_assert(y2 && y2->tangent, "%s", mt_last_error());
        assert_values(y2->tangent, (double[]){ 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1 }, 12, "embedding tangent");
    }
}

/* ---------------------------------------------------------------- layouts */
Test(ops_index, non_contiguous_operands, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(3);
    mt_tensor *base = mt_uniform(&gen, MT_F64, MT_SHAPE(6, 5), -1, 1);
    mt_tensor *xt = mt_transpose(base, 0, 1);   /* [5, 6], strides (1, 5) */
    mt_tensor *xc = mt_contiguous(mt_clone(xt));
    mt_tensor *idx_base = mt_randint(&gen, MT_I64, MT_SHAPE(4, 5), 0, 5);
    mt_tensor *idx_t = mt_transpose(idx_base, 0, 1);   /* [5, 4] */
    mt_tensor *idx_c = mt_clone(idx_t);
    mt_device devices[2] = { mt_cpu(), { MT_DEVICE_CUDA_EMU, 0 } };
    for (int dv = 0; dv < (cuda_emu_here() ? 2 : 1); dv++) {
        mt_tensor *x_nc = mt_transpose(mt_to_device(base, devices[dv]), 0, 1);
        mt_tensor *i_nc = mt_transpose(mt_to_device(idx_base, devices[dv]), 0, 1);
        mt_tensor *a = mt_gather(x_nc, 0, i_nc), *b = mt_gather(xc, 0, idx_c);
        cr_assert(a && b, "%s", mt_last_error());
        double da[20], db[20];
        mt_to_data(a, MT_F64, da);
        mt_to_data(b, MT_F64, db);
        for (int k = 0; k < 20; k++) cr_assert(da[k] == db[k], "gather of strided operands, element %d", k);
        /* scatter_add with a strided x, index and src */
        mt_tensor *src_nc = mt_transpose(mt_to_device(mt_uniform(&gen, MT_F64, MT_SHAPE(4, 5), -1, 1), devices[dv]), 0, 1);
        mt_tensor *s1 = mt_scatter_add(x_nc, 0, i_nc, src_nc);
        mt_tensor *s2 = mt_scatter_add(xc, 0, idx_c, mt_to_device(mt_clone(src_nc), mt_cpu()));
        cr_assert(s1 && s2, "%s", mt_last_error());
        double e1[30], e2[30];
        mt_to_data(s1, MT_F64, e1);
        mt_to_data(s2, MT_F64, e2);
        for (int k = 0; k < 30; k++) cr_assert(e1[k] == e2[k], "scatter_add of strided operands, element %d", k);
        /* index_select from a slice (offset and stride) */
        mt_tensor *sl = mt_slice(mt_to_device(base, devices[dv]), 1, 1, 5, 2);   /* [6, 2] */
        mt_tensor *r = mt_index_select(sl, 1, mt_to_device(i64(MT_SHAPE(3), (int64_t[]){ 1, 1, 0 }), devices[dv]));
        cr_assert(r, "%s", mt_last_error());
        for (int64_t i = 0; i < 6; i++) {
            cr_assert(mt_get(r, (int64_t[]){ i, 0 }) == mt_get(base, (int64_t[]){ i, 3 }));
            cr_assert(mt_get(r, (int64_t[]){ i, 2 }) == mt_get(base, (int64_t[]){ i, 1 }));
        }
    }
}

/* ---------------------------------------------------------------- determinism */
/* Many positions onto few rows: the order of the additions shows in f32. */
static mt_tensor *crowded_scatter(mt_device device, mt_tensor *x, mt_tensor *idx, mt_tensor *src)
{
    return mt_scatter_add(mt_to_device(x, device), 0, mt_to_device(idx, device), mt_to_device(src, device));
}

Test(ops_index, scatter_add_is_deterministic, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(11);
    int64_t rows = 3, cols = 150, n = 4000;
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(rows, cols));
    mt_tensor *src = mt_uniform(&gen, MT_F32, MT_SHAPE(n, cols), -1000, 1000);
    mt_tensor *idx = mt_randint(&gen, MT_I64, MT_SHAPE(n, cols), 0, rows);
    int64_t total = rows * cols;
    float ref[450], got[450];
    cr_assert(total <= 450);

    /* CPU: the same bits for any thread count (each element summed by one thread, in order) */
    int prev_threads = mt_get_num_threads();
    mt_set_num_threads(1);
    mt_tensor *one = crowded_scatter(mt_cpu(), x, idx, src);
    cr_assert(one && mt_to_data(one, MT_F32, ref) == MT_OK, "%s", mt_last_error());
    mt_set_num_threads(3);
    mt_tensor *three = crowded_scatter(mt_cpu(), x, idx, src);
    cr_assert(three && mt_to_data(three, MT_F32, got) == MT_OK, "%s", mt_last_error());
    mt_set_num_threads(prev_threads);
    cr_assert(memcmp(ref, got, sizeof(float) * (size_t)total) == 0, "CPU scatter_add differs between 1 and 3 threads");

    /* the sums are in index order: a plain sequential loop gives the same bits */
    const float *ps = mt_data_ptr(src);
    const int64_t *pi = mt_data_ptr(idx);
    float seq[450] = { 0 };
    for (int64_t j = 0; j < n; j++)
        for (int64_t c = 0; c < cols; c++) seq[pi[j * cols + c] * cols + c] += ps[j * cols + c];
    cr_assert(memcmp(ref, seq, sizeof(float) * (size_t)total) == 0, "CPU scatter_add is not the sum in index order");

    if (!cuda_emu_here()) return;
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    bool prev = mt_set_deterministic(true);
    for (int run = 0; run < 2; run++) {
        mt_tensor *e = crowded_scatter(emu, x, idx, src);
        cr_assert(e && mt_to_data(e, MT_F32, got) == MT_OK, "%s", mt_last_error());
        cr_assert(memcmp(ref, got, sizeof(float) * (size_t)total) == 0,
                  "cuda-emu's ordered scatter_add differs from the CPU's bits (run %d)", run);
    }
    /* the atomic path: the same sums up to rounding */
    mt_set_deterministic(false);
    mt_tensor *e = crowded_scatter(emu, x, idx, src);
    cr_assert(e && mt_to_data(e, MT_F32, got) == MT_OK, "%s", mt_last_error());
    for (int64_t k = 0; k < total; k++)
        cr_assert(fabsf(got[k] - ref[k]) <= 1.0f, "atomic scatter_add element %lld: %g vs %g",
                  (long long)k, got[k], ref[k]);
    mt_set_deterministic(prev);
}

/* ---------------------------------------------------------------- errors */
static void expect_error(mt_tensor *y, mt_status code, const char *const *parts, int n_parts)
{
    cr_assert(y == NULL, "expected an error, got a tensor");
    cr_assert(mt_last_status() == code, "status %d, expected %d: %s", mt_last_status(), code, mt_last_error());
    for (int i = 0; i < n_parts; i++)
        cr_assert(strstr(mt_last_error(), parts[i]) != NULL, "message \"%s\" lacks \"%s\"", mt_last_error(), parts[i]);
    mt_clear_error();
}
#define EXPECT_ERROR(y, code, ...) \
    expect_error((y), (code), (const char *const[]){ __VA_ARGS__ }, (int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(char *)))

Test(ops_index, errors_name_the_op_value_and_size, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(3, 5));
    EXPECT_ERROR(mt_index_select(x, 1, i64(MT_SHAPE(2), (int64_t[]){ 4, 5 })), MT_ERR_ARGUMENT, "index_select",
                 "index 5", "dim 1 of size 5", "[3, 5]");
    EXPECT_ERROR(mt_index_select(x, 0, i64(MT_SHAPE(2), (int64_t[]){ -1, 0 })), MT_ERR_ARGUMENT, "index_select",
                 "index -1", "dim 0 of size 3");
    EXPECT_ERROR(mt_gather(x, 0, i64(MT_SHAPE(1, 2), (int64_t[]){ 0, 3 })), MT_ERR_ARGUMENT, "gather", "index 3",
                 "dim 0 of size 3");
    EXPECT_ERROR(mt_scatter_add(x, 1, i64(MT_SHAPE(1, 1), (int64_t[]){ 9 }), mt_ones(MT_F32, MT_SHAPE(1, 1))),
                 MT_ERR_ARGUMENT, "scatter_add", "index 9", "dim 1 of size 5");
    mt_tensor *w = mt_zeros(MT_F32, MT_SHAPE(10, 4));
    EXPECT_ERROR(mt_embedding(w, i64(MT_SHAPE(2), (int64_t[]){ 3, 12 }), -1), MT_ERR_ARGUMENT, "embedding",
                 "index 12", "10 embeddings");
    EXPECT_ERROR(mt_one_hot(i64(MT_SHAPE(2), (int64_t[]){ 3, 7 }), 5), MT_ERR_ARGUMENT, "one_hot", "7",
                 "num_classes 5");
    EXPECT_ERROR(mt_one_hot(i64(MT_SHAPE(2), (int64_t[]){ -2, 1 }), 5), MT_ERR_ARGUMENT, "one_hot", "-2");
    EXPECT_ERROR(mt_one_hot(mt_empty(MT_I64, MT_SHAPE(0)), -1), MT_ERR_ARGUMENT, "one_hot", "empty");
    mt_tensor *empty_classes = mt_one_hot(mt_empty(MT_I64, MT_SHAPE(0)), 3);
    cr_assert(empty_classes && empty_classes->ndim == 2 && empty_classes->shape[1] == 3, "%s", mt_last_error());

    /* out of range on cuda-emu too (the check runs on the device's own reductions) */
    if (cuda_emu_here()) {
        mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
        EXPECT_ERROR(mt_index_select(mt_to_device(x, emu), 1, mt_to_device(i64(MT_SHAPE(2), (int64_t[]){ 4, 5 }), emu)),
                     MT_ERR_ARGUMENT, "index_select", "index 5", "dim 1 of size 5");
    }
}

Test(ops_index, errors_dtypes_shapes_devices, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(3, 5));
    mt_tensor *fidx = mt_zeros(MT_F32, MT_SHAPE(2));
    mt_tensor *iidx = mt_zeros(MT_I32, MT_SHAPE(2));
    EXPECT_ERROR(mt_index_select(x, 0, fidx), MT_ERR_DTYPE, "index_select", "i64", "f32");
    EXPECT_ERROR(mt_index_select(x, 0, iidx), MT_ERR_DTYPE, "index_select", "i64", "i32");
    EXPECT_ERROR(mt_gather(x, 0, mt_zeros(MT_F64, MT_SHAPE(3, 5))), MT_ERR_DTYPE, "gather", "i64");
    EXPECT_ERROR(mt_embedding(mt_zeros(MT_F32, MT_SHAPE(4, 2)), fidx, -1), MT_ERR_DTYPE, "embedding", "indices");
    EXPECT_ERROR(mt_one_hot(fidx, 3), MT_ERR_DTYPE, "one_hot", "i64");
    EXPECT_ERROR(mt_masked_fill(x, mt_zeros(MT_U8, MT_SHAPE(3, 5)), 1), MT_ERR_DTYPE, "masked_fill", "bool");
    mt_tensor *zi = mt_zeros(MT_I64, MT_SHAPE(2, 2));
    EXPECT_ERROR(mt_scatter_add(x, 0, zi, mt_zeros(MT_F64, MT_SHAPE(2, 2))), MT_ERR_DTYPE, "scatter_add", "f32", "f64");
    EXPECT_ERROR(mt_scatter_add(mt_zeros(MT_BOOL, MT_SHAPE(3, 5)), 0, zi, mt_zeros(MT_BOOL, MT_SHAPE(2, 2))), MT_ERR_DTYPE,
                 "scatter_add", "bool");

    EXPECT_ERROR(mt_index_select(x, 0, mt_zeros(MT_I64, MT_SHAPE(2, 2))), MT_ERR_SHAPE, "index_select", "1-d", "[2, 2]");
    EXPECT_ERROR(mt_index_select(x, 2, mt_zeros(MT_I64, MT_SHAPE(2))), MT_ERR_ARGUMENT, "index_select", "dim 2");
    EXPECT_ERROR(mt_gather(x, 0, mt_zeros(MT_I64, MT_SHAPE(3))), MT_ERR_SHAPE, "gather", "dims", "[3, 5]", "[3]");
    EXPECT_ERROR(mt_gather(x, 0, mt_zeros(MT_I64, MT_SHAPE(2, 6))), MT_ERR_SHAPE, "gather", "dim 1", "6 > 5");
    EXPECT_ERROR(mt_scatter_add(x, 0, mt_zeros(MT_I64, MT_SHAPE(2, 3)), mt_zeros(MT_F32, MT_SHAPE(2, 2))), MT_ERR_SHAPE,
                 "scatter_add", "src", "3 > 2");
    EXPECT_ERROR(mt_scatter_add(x, 0, mt_zeros(MT_I64, MT_SHAPE(2, 6)), mt_zeros(MT_F32, MT_SHAPE(2, 6))), MT_ERR_SHAPE,
                 "scatter_add", "x [3, 5]", "6 > 5");
    EXPECT_ERROR(mt_scatter_add(x, 0, mt_zeros(MT_I64, MT_SHAPE(2)), mt_zeros(MT_F32, MT_SHAPE(2))), MT_ERR_SHAPE,
                 "scatter_add", "same number of dims");
    EXPECT_ERROR(mt_embedding(mt_zeros(MT_F32, MT_SHAPE(4)), zi, -1), MT_ERR_SHAPE, "embedding", "2-d");
    EXPECT_ERROR(mt_embedding(mt_zeros(MT_F32, MT_SHAPE(4, 2)), zi, 4), MT_ERR_ARGUMENT, "embedding", "padding_idx 4");
    EXPECT_ERROR(mt_masked_fill(x, mt_zeros(MT_BOOL, MT_SHAPE(4)), 1), MT_ERR_SHAPE, "masked_fill");
    EXPECT_ERROR(mt_index_select(mt_scalar(MT_F32, 1), 0, mt_zeros(MT_I64, MT_SHAPE(2))), MT_ERR_SHAPE, "index_select",
                 "0-d");

    if (cuda_emu_here()) {
        mt_tensor *emu_idx = mt_to_device(mt_zeros(MT_I64, MT_SHAPE(2)), (mt_device){ MT_DEVICE_CUDA_EMU, 0 });
        EXPECT_ERROR(mt_index_select(x, 0, emu_idx), MT_ERR_DEVICE, "index_select", "different devices");
    }

    /* a NULL input (an earlier failure) propagates without a new message */
    mt_set_error(MT_ERR_SHAPE, "earlier failure");
    cr_assert_null(mt_gather(NULL, 0, zi));
    cr_assert_null(mt_index_select(x, 0, NULL));
    cr_assert_null(mt_scatter_add(x, 0, zi, NULL));
    cr_assert_null(mt_embedding(NULL, zi, -1));
    cr_assert_null(mt_masked_fill(NULL, NULL, 0));
    cr_assert_null(mt_one_hot(NULL, 2));
    cr_assert_str_eq(mt_last_error(), "earlier failure");
    mt_clear_error();
}

/* ---------------------------------------------------------------- nn.Embedding */
Test(ops_index, nn_embedding_module, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_manual_seed(5);
    mt_module *m = mt_nn_embedding(1000, 16, 3);
    cr_assert(m, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(m, "weight");
    cr_assert(w && w->requires_grad && w->dtype == MT_F32 && w->shape[0] == 1000 && w->shape[1] == 16);
    const float *pw = mt_data_ptr(w);
    double s = 0, ss = 0;
    for (int64_t k = 0; k < 16; k++) cr_assert(pw[3 * 16 + k] == 0, "padding row element %lld is %g", (long long)k, pw[3 * 16 + k]);
    for (int64_t k = 0; k < 16000; k++) { s += pw[k]; ss += (double)pw[k] * pw[k]; }
    double mean = s / 15984, var = ss / 15984 - mean * mean;   /* the padding row's 16 zeros left out */
    cr_assert(fabs(mean) < 0.05 && fabs(var - 1) < 0.05, "weight mean %g, variance %g: not N(0, 1)", mean, var);

    char repr[256];
    FILE *f = fmemopen(repr, sizeof repr, "w");
    mt_module_print(m, f);
    fclose(f);
    cr_assert(strstr(repr, "Embedding(1000, 16, padding_idx=3)") != NULL, "printed as %s", repr);

    mt_tensor *idx = i64(MT_SHAPE(2, 2), (int64_t[]){ 3, 7, 7, 3 });
    mt_tensor *y = mt_forward(m, idx);
    cr_assert(y && y->ndim == 3 && y->shape[2] == 16, "%s", mt_last_error());
    cr_assert(mt_backward(mt_sum_all(y)) == MT_OK, "%s", mt_last_error());
    const float *g = mt_data_ptr(w->grad);
    for (int64_t k = 0; k < 16; k++) {
        cr_assert(g[3 * 16 + k] == 0 && g[7 * 16 + k] == 2 && g[0 * 16 + k] == 0, "grad column %lld", (long long)k);
    }
    mt_module_free(m);

    mt_module *plain = mt_nn_embedding(4, 2, -1);
    cr_assert(plain);
    f = fmemopen(repr, sizeof repr, "w");
    mt_module_print(plain, f);
    fclose(f);
    cr_assert(strstr(repr, "Embedding(4, 2)") != NULL, "printed as %s", repr);
    mt_module_free(plain);

    cr_assert_null(mt_nn_embedding(4, 2, 4));
    cr_assert(strstr(mt_last_error(), "padding_idx 4") != NULL, "%s", mt_last_error());
    cr_assert_null(mt_nn_embedding(-1, 2, -1));
    cr_assert(strstr(mt_last_error(), "Embedding") != NULL, "%s", mt_last_error());
    mt_clear_error();
}
