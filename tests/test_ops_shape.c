/*
 * test_ops_shape.c - mt_flip, mt_pad (constant, F.pad's pad order, negative
 * pads cropping) and mt_concat along the first, a middle and the last dim
 * (with a piece that needs no gradient and an empty piece), through the
 * harness (forward, vjp, jvp, cuda-emu); integer tensors; errors.
 *
 * Every reference is a gather over the output: out[idx] = in[source(idx)],
 * or the pad value where there is no source.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */
static void unflat(int ndim, const int64_t *shape, int64_t k, int64_t *idx)
{
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] ? k % shape[d] : 0;
        k = shape[d] ? k / shape[d] : 0;
    }
}
static int64_t flat(int ndim, const int64_t *shape, const int64_t *idx)
{
    int64_t off = 0;
    for (int d = 0; d < ndim; d++) off = off * shape[d] + idx[d];
    return off;
}

/* ---------------------------------------------------------------- flip */
typedef struct flip_params { int n; int dims[4]; bool transposed; } flip_params;

static void ref_flip(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const flip_params *p = c->params;
    ref_tensor x = in[0];
    ref_tensor xt = { 0 };
    if (p->transposed) {   /* the case flips transpose(x, 0, 1) of a 2-d x */
        int64_t shape[2] = { x.shape[1], x.shape[0] };
        ref_alloc(&xt, 2, shape);
        for (int64_t i = 0; i < x.shape[0]; i++)
            for (int64_t j = 0; j < x.shape[1]; j++) xt.data[j * x.shape[0] + i] = x.data[i * x.shape[1] + j];
        x = xt;
    }
    bool flipped[MT_MAX_DIMS] = { false };
    for (int i = 0; i < p->n; i++) flipped[p->dims[i] < 0 ? p->dims[i] + x.ndim : p->dims[i]] = true;
    ref_alloc(out, x.ndim, x.shape);
    int64_t idx[MT_MAX_DIMS];
    for (int64_t k = 0; k < ref_numel(out); k++) {
        unflat(x.ndim, x.shape, k, idx);
        for (int d = 0; d < x.ndim; d++) if (flipped[d]) idx[d] = x.shape[d] - 1 - idx[d];
        out->data[k] = x.data[flat(x.ndim, x.shape, idx)];
    }
    free(xt.data);
}

static mt_tensor *run_flip(const mt_op_case *c, mt_tensor *const *in)
{
    const flip_params *p = c->params;
    mt_tensor *x = p->transposed ? mt_transpose(in[0], 0, 1) : in[0];
    return mt_flip(x, p->n, p->dims);
}

#define FLIP_CASE(NAME, SPEC, TRANSPOSED, N, ...)                                         \
    Test(ops_flip, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {              \
        static const flip_params p = { N, { __VA_ARGS__ }, TRANSPOSED };                  \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC }, .run = run_flip, \
                         .reference = ref_flip, .params = &p };                            \
        mt_check_op(&c);                                                                  \
    }

FLIP_CASE(first_dim, MT_SPEC(-2, 2, 3, 4, 5), false, 1, 0)
FLIP_CASE(middle_and_last, MT_SPEC(-2, 2, 3, 4, 5), false, 2, 1, -1)
FLIP_CASE(all_dims, MT_SPEC(-2, 2, 3, 4, 5), false, 3, 2, 0, 1)
FLIP_CASE(no_dims, MT_SPEC(-2, 2, 3, 4), false, 0, 0)
FLIP_CASE(long_1d, MT_SPEC(-2, 2, 1500), false, 1, 0)   /* several blocks of the copy kernel */
FLIP_CASE(transposed_input, MT_SPEC(-2, 2, 3, 5), true, 1, 1)

Test(ops_flip, integers_and_errors, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device devices[] = { mt_cpu(), { MT_DEVICE_CUDA_EMU, 0 } };
    for (size_t k = 0; k < sizeof devices / sizeof devices[0]; k++) {
        if (!mt_device_available(devices[k], NULL)) continue;
        mt_tensor *x = mt_to_device(mt_from_data(MT_I64, MT_SHAPE(2, 3), (int64_t[]){ 1, 2, 3, 4, 5, 6 }), devices[k]);
        int64_t got[6];
        cr_assert_eq(mt_to_data(mt_flip(x, 2, (int[]){ 0, 1 }), MT_I64, got), MT_OK, "%s", mt_last_error());
        for (int i = 0; i < 6; i++) cr_assert_eq(got[i], 6 - i);
        /* the result is a copy, not a view */
        mt_tensor *y = mt_flip(x, 1, (int[]){ 1 });
        cr_assert(y->storage != x->storage && mt_is_contiguous(y));
    }
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(2, 3));
    cr_assert_null(mt_flip(x, 2, (int[]){ 1, -1 }));
    cr_assert(strstr(mt_last_error(), "flip") && strstr(mt_last_error(), "twice"), "%s", mt_last_error());
    cr_assert_null(mt_flip(x, 1, (int[]){ 2 }));
    cr_assert(strstr(mt_last_error(), "dim 2 out of range"), "%s", mt_last_error());
    cr_assert_null(mt_flip(x, 1, NULL));
}

/* ---------------------------------------------------------------- pad */
typedef struct pad_params { int n; int64_t pads[8]; double value; } pad_params;

static void ref_pad(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const pad_params *p = c->params;
    const ref_tensor *x = &in[0];
    int64_t left[MT_MAX_DIMS] = { 0 }, shape[MT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        int pair = x->ndim - 1 - d;
        int64_t l = 2 * pair + 1 < p->n ? p->pads[2 * pair] : 0, r = 2 * pair + 1 < p->n ? p->pads[2 * pair + 1] : 0;
        left[d] = l;
        shape[d] = x->shape[d] + l + r;
    }
    ref_alloc(out, x->ndim, shape);
    int64_t idx[MT_MAX_DIMS];
    for (int64_t k = 0; k < ref_numel(out); k++) {
        unflat(x->ndim, shape, k, idx);
        bool inside = true;
        for (int d = 0; d < x->ndim; d++) {
            idx[d] -= left[d];
            if (idx[d] < 0 || idx[d] >= x->shape[d]) inside = false;
        }
        out->data[k] = inside ? x->data[flat(x->ndim, x->shape, idx)] : p->value;
    }
}

static mt_tensor *run_pad(const mt_op_case *c, mt_tensor *const *in)
{
    const pad_params *p = c->params;
    return mt_pad(in[0], p->n, p->pads, p->value);
}

#define PAD_CASE(NAME, SPEC, VALUE, N, ...)                                                \
    Test(ops_pad, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {               \
        static const pad_params p = { N, { __VA_ARGS__ }, VALUE };                        \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC }, .run = run_pad, \
                         .reference = ref_pad, .params = &p };                             \
        mt_check_op(&c);                                                                  \
    }

PAD_CASE(last_dim, MT_SPEC(-2, 2, 2, 3, 4), 0, 2, 1, 2)
PAD_CASE(last_two_dims_value, MT_SPEC(-2, 2, 2, 3, 4), 0.5, 4, 1, 0, 2, 1)
PAD_CASE(first_dim, MT_SPEC(-2, 2, 2, 3, 4), -1, 6, 0, 0, 0, 0, 1, 1)
PAD_CASE(negative_crops, MT_SPEC(-2, 2, 3, 4, 5), 0, 4, -1, 2, 1, -2)
PAD_CASE(crop_everything_of_a_dim, MT_SPEC(-2, 2, 3, 4), 0, 2, -2, -2)
PAD_CASE(no_pads, MT_SPEC(-2, 2, 3, 4), 0, 0, 0)
PAD_CASE(wide_1d, MT_SPEC(-2, 2, 600), 3, 2, 500, 7)

Test(ops_pad, integers_and_errors, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_from_data(MT_I32, MT_SHAPE(2, 2), (int32_t[]){ 1, 2, 3, 4 });
    mt_tensor *y = mt_pad(x, 4, (int64_t[]){ 1, 0, 0, 1 }, 9);
    cr_assert(y && y->dtype == MT_I32 && y->shape[0] == 3 && y->shape[1] == 3, "%s", mt_last_error());
    int32_t got[9], want[9] = { 9, 1, 2, 9, 3, 4, 9, 9, 9 };
    mt_to_data(y, MT_I32, got);
    for (int i = 0; i < 9; i++) cr_assert_eq(got[i], want[i], "element %d is %d", i, got[i]);
    cr_assert_null(mt_pad(x, 3, (int64_t[]){ 1, 1, 1 }, 0));
    cr_assert(strstr(mt_last_error(), "pad") && strstr(mt_last_error(), "even"), "%s", mt_last_error());
    cr_assert_null(mt_pad(x, 6, (int64_t[]){ 1, 1, 1, 1, 1, 1 }, 0));
    cr_assert(strstr(mt_last_error(), "[2, 2]") && strstr(mt_last_error(), "3 dims"), "%s", mt_last_error());
    cr_assert_null(mt_pad(x, 2, (int64_t[]){ -2, -1 }, 0));
    cr_assert(strstr(mt_last_error(), "crop more than its size 2"), "%s", mt_last_error());
    cr_assert_null(mt_pad(x, 2, NULL, 0));
}

/* ---------------------------------------------------------------- concat */
typedef struct concat_params { int dim; } concat_params;

static void ref_concat(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const concat_params *p = c->params;
    int nd = in[0].ndim, dim = p->dim < 0 ? p->dim + nd : p->dim;
    int64_t shape[MT_MAX_DIMS];
    memcpy(shape, in[0].shape, sizeof shape);
    shape[dim] = 0;
    for (int i = 0; i < c->n_inputs; i++) shape[dim] += in[i].shape[dim];
    ref_alloc(out, nd, shape);
    int64_t idx[MT_MAX_DIMS];
    for (int64_t k = 0; k < ref_numel(out); k++) {
        unflat(nd, shape, k, idx);
        int i = 0;
        while (idx[dim] >= in[i].shape[dim]) idx[dim] -= in[i++].shape[dim];
        out->data[k] = in[i].data[flat(nd, in[i].shape, idx)];
    }
}

static mt_tensor *run_concat(const mt_op_case *c, mt_tensor *const *in)
{
    const concat_params *p = c->params;
    return mt_concat(c->n_inputs, in, p->dim);
}

#define CONCAT_CASE(NAME, DIM, ...)                                                        \
    Test(ops_concat, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {            \
        static const concat_params p = { DIM };                                           \
        mt_op_case c = { .name = #NAME, .n_inputs = (int)(sizeof((mt_input_spec[]){ __VA_ARGS__ }) / sizeof(mt_input_spec)), \
                         .inputs = { __VA_ARGS__ }, .run = run_concat, .reference = ref_concat, .params = &p }; \
        mt_check_op(&c);                                                                  \
    }

CONCAT_CASE(first_dim, 0, MT_SPEC(-2, 2, 2, 3, 4), MT_SPEC(-2, 2, 1, 3, 4), MT_SPEC(-2, 2, 3, 3, 4))
CONCAT_CASE(middle_dim, 1, MT_SPEC(-2, 2, 2, 1, 4), MT_SPEC(-2, 2, 2, 4, 4), MT_SPEC(-2, 2, 2, 2, 4))
CONCAT_CASE(last_dim, -1, MT_SPEC(-2, 2, 2, 3, 5), MT_SPEC(-2, 2, 2, 3, 1), MT_SPEC(-2, 2, 2, 3, 2))
CONCAT_CASE(with_empty_piece, 1, MT_SPEC(-2, 2, 2, 3), MT_SPEC(-2, 2, 2, 0), MT_SPEC(-2, 2, 2, 2))
CONCAT_CASE(many_pieces, 0, MT_SPEC(-2, 2, 1, 3), MT_SPEC(-2, 2, 2, 3), MT_SPEC(-2, 2, 1, 3), MT_SPEC(-2, 2, 3, 3),
            MT_SPEC(-2, 2, 1, 3), MT_SPEC(-2, 2, 2, 3))

/* One piece without gradient: the others still get theirs (the harness skips its check). */
Test(ops_concat, piece_without_gradient, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const concat_params p = { -1 };
    mt_input_spec fixed = MT_SPEC(-2, 2, 3, 2);
    fixed.no_grad = true;
    mt_op_case c = { .name = "concat_piece_without_gradient", .n_inputs = 3,
                     .inputs = { MT_SPEC(-2, 2, 3, 4), fixed, MT_SPEC(-2, 2, 3, 1) },
                     .run = run_concat, .reference = ref_concat, .params = &p };
    mt_check_op(&c);
}

Test(ops_concat, integers_and_errors, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *a = mt_from_data(MT_I64, MT_SHAPE(1, 2), (int64_t[]){ 1, 2 });
    mt_tensor *b = mt_from_data(MT_I64, MT_SHAPE(1, 1), (int64_t[]){ 3 });
    mt_tensor *y = mt_concat(2, (mt_tensor *[]){ a, b }, 1);
    cr_assert(y && y->shape[1] == 3 && mt_get(y, (int64_t[]){ 0, 2 }) == 3, "%s", mt_last_error());
    mt_tensor *s = mt_scalar(MT_F32, 1);
    cr_assert_null(mt_concat(2, (mt_tensor *[]){ s, s }, 0));
    cr_assert(strstr(mt_last_error(), "concat") && strstr(mt_last_error(), "0-d"), "%s", mt_last_error());
    cr_assert_null(mt_concat(2, (mt_tensor *[]){ a, mt_to_dtype(b, MT_F32) }, 1));
    cr_assert(strstr(mt_last_error(), "dtypes differ"), "%s", mt_last_error());
    cr_assert_null(mt_concat(2, (mt_tensor *[]){ a, b }, 0));
    cr_assert(strstr(mt_last_error(), "[1, 1]") && strstr(mt_last_error(), "[1, 2]"), "%s", mt_last_error());
}
