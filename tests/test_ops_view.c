/*
 * test_ops_view.c - harness cases for the changes of layout: reshape (with -1,
 * and of a non-contiguous transposed tensor), view, flatten, transpose,
 * permute, slice (step > 1, negative start), narrow, select, expand, squeeze,
 * unsqueeze, contiguous, clone, to_dtype (f32 <-> f64), concat, stack,
 * split and chunk; where with a condition computed inside the case, and the
 * comparisons (no gradient). Plain tests cover what the harness cannot:
 * storage sharing, errors and dtype crossing in backward.
 *
 * Every view reference is a gather: out[i] = in[source(i)], with source()
 * written out per op with plain index arithmetic.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */
/* Row-major flat offset of idx in shape. */
static int64_t flat(int ndim, const int64_t *shape, const int64_t *idx)
{
    int64_t off = 0;
    for (int d = 0; d < ndim; d++) off = off * shape[d] + idx[d];
    return off;
}

/* The multi-index of flat offset k in shape. */
static void unflat(int ndim, const int64_t *shape, int64_t k, int64_t *idx)
{
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] ? k % shape[d] : 0;
        k = shape[d] ? k / shape[d] : 0;
    }
}

/* out = in gathered: out[idx] = in[source(idx)] over out's shape. */
typedef int64_t (*source_fn)(const ref_tensor *in, const int64_t *out_idx);
static void gather(const ref_tensor *in, int ondim, const int64_t *oshape, source_fn source, ref_tensor *out)
{
    ref_alloc(out, ondim, oshape);
    int64_t idx[MT_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < ref_numel(out); k++) {
        unflat(ondim, oshape, k, idx);
        out->data[k] = in->data[source(in, idx)];
    }
}

/* The input itself, in a new shape with the same element order. */
static void ref_same_order(const ref_tensor *in, int ondim, const int64_t *oshape, double scale, ref_tensor *out)
{
    ref_alloc(out, ondim, oshape);
    for (int64_t k = 0; k < ref_numel(out); k++) out->data[k] = scale * in->data[k];
}

#define VIEW_CASE(SUITE, NAME, RUN, REF, ...)                                              \
    Test(SUITE, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                  \
        mt_op_case c = { .name = #NAME, .n_inputs = (int)(sizeof((mt_input_spec[]){ __VA_ARGS__ }) / sizeof(mt_input_spec)), \
                         .inputs = { __VA_ARGS__ }, .run = RUN, .reference = REF };        \
        mt_check_op(&c);                                                                   \
    }

/* ---------------------------------------------------------------- reshape, view, flatten */
/* [2, 3, 4] -> [4, -1] = [4, 6], times 3 so that the result is not the input itself */
static mt_tensor *run_reshape_infer(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_mul_scalar(mt_reshape(in[0], MT_SHAPE(4, -1)), 3);
}
static void ref_reshape_infer(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], 2, (int64_t[]){ 4, 6 }, 3, out);
}
VIEW_CASE(ops_view, reshape_infer, run_reshape_infer, ref_reshape_infer, MT_SPEC(-2, 2, 2, 3, 4))

/* [3, 4] transposed to [4, 3] (not contiguous), then reshaped to [2, 6]: a copy */
static mt_tensor *run_reshape_transposed(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_reshape(mt_transpose(in[0], 0, 1), MT_SHAPE(2, 6));
}
static int64_t src_reshape_transposed(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    int64_t k = o[0] * 6 + o[1];           /* position in the [4, 3] transposed tensor */
    int64_t i = k / 3, j = k % 3;          /* transposed[i][j] = in[j][i] */
    return j * 4 + i;
}
static void ref_reshape_transposed(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 2, (int64_t[]){ 2, 6 }, src_reshape_transposed, out);
}
VIEW_CASE(ops_view, reshape_transposed, run_reshape_transposed, ref_reshape_transposed, MT_SPEC(-2, 2, 3, 4))

/* [2, 3, 4] viewed as [6, 4], then to 0-d-friendly [24] through view again */
static mt_tensor *run_view(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_mul_scalar(mt_view(mt_view(in[0], MT_SHAPE(6, 4)), MT_SHAPE(3, 8)), -2);
}
static void ref_view(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], 2, (int64_t[]){ 3, 8 }, -2, out);
}
VIEW_CASE(ops_view, view, run_view, ref_view, MT_SPEC(-2, 2, 2, 3, 4))

/* a view of a transposed tensor that only splits a dim is allowed */
static mt_tensor *run_view_split_transposed(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    /* in [4, 3] -> transposed [3, 4] -> view [3, 2, 2] (splits the strided dim 1) */
    return mt_view(mt_transpose(in[0], 0, 1), MT_SHAPE(3, 2, 2));
}
static int64_t src_view_split_transposed(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    int64_t row = o[0], col = o[1] * 2 + o[2];  /* transposed[row][col] = in[col][row] */
    return col * 3 + row;
}
static void ref_view_split_transposed(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 3, (int64_t[]){ 3, 2, 2 }, src_view_split_transposed, out);
}
VIEW_CASE(ops_view, view_split_transposed, run_view_split_transposed, ref_view_split_transposed, MT_SPEC(-2, 2, 4, 3))

static mt_tensor *run_flatten_inner(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_flatten(in[0], 1, -1);
}
static void ref_flatten_inner(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], 2, (int64_t[]){ 2, 12 }, 1, out);
}
VIEW_CASE(ops_view, flatten_inner, run_flatten_inner, ref_flatten_inner, MT_SPEC(-2, 2, 2, 3, 4))

static mt_tensor *run_flatten_all(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_mul_scalar(mt_flatten(in[0], 0, -1), 0.5);
}
static void ref_flatten_all(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], 1, (int64_t[]){ 15 }, 0.5, out);
}
VIEW_CASE(ops_view, flatten_all, run_flatten_all, ref_flatten_all, MT_SPEC(-2, 2, 3, 1, 5))

/* ---------------------------------------------------------------- transpose, permute */
static mt_tensor *run_transpose(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_transpose(in[0], 0, -1);   /* [2, 3, 4] -> [4, 3, 2] */
}
static int64_t src_transpose(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return flat(3, (int64_t[]){ 2, 3, 4 }, (int64_t[]){ o[2], o[1], o[0] });
}
static void ref_transpose(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 3, (int64_t[]){ 4, 3, 2 }, src_transpose, out);
}
VIEW_CASE(ops_view, transpose, run_transpose, ref_transpose, MT_SPEC(-2, 2, 2, 3, 4))

static mt_tensor *run_permute(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_permute(in[0], (int[]){ 2, 0, -2 });   /* [2, 3, 4] -> [4, 2, 3] */
}
static int64_t src_permute(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    /* out[a][b][c] = in[b][c][a] */
    return flat(3, (int64_t[]){ 2, 3, 4 }, (int64_t[]){ o[1], o[2], o[0] });
}
static void ref_permute(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 3, (int64_t[]){ 4, 2, 3 }, src_permute, out);
}
VIEW_CASE(ops_view, permute, run_permute, ref_permute, MT_SPEC(-2, 2, 2, 3, 4))

/* ---------------------------------------------------------------- slice, narrow, select */
/* [7, 3]: rows -6, -4, -2 (= 1, 3, 5) by slice(start -6, end 7, step 2) */
static mt_tensor *run_slice_step(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_slice(in[0], 0, -6, 7, 2);
}
static int64_t src_slice_step(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return (1 + 2 * o[0]) * 3 + o[1];
}
static void ref_slice_step(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 2, (int64_t[]){ 3, 3 }, src_slice_step, out);
}
VIEW_CASE(ops_view, slice_step_negative_start, run_slice_step, ref_slice_step, MT_SPEC(-2, 2, 7, 3))

/* [2, 9] last dim: slice(0, 9, 3) -> columns 0, 3, 6, then an inner slice of that view */
static mt_tensor *run_slice_of_slice(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_slice(mt_slice(in[0], -1, 0, 9, 3), 1, 1, 100, 1);   /* columns 3, 6 (end clamps) */
}
static int64_t src_slice_of_slice(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return o[0] * 9 + 3 * (1 + o[1]);
}
static void ref_slice_of_slice(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 2, (int64_t[]){ 2, 2 }, src_slice_of_slice, out);
}
VIEW_CASE(ops_view, slice_of_slice, run_slice_of_slice, ref_slice_of_slice, MT_SPEC(-2, 2, 2, 9))

static mt_tensor *run_narrow(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_narrow(in[0], 1, 1, 3);   /* [4, 5] -> [4, 3], columns 1..3 */
}
static int64_t src_narrow(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return o[0] * 5 + 1 + o[1];
}
static void ref_narrow(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 2, (int64_t[]){ 4, 3 }, src_narrow, out);
}
VIEW_CASE(ops_view, narrow, run_narrow, ref_narrow, MT_SPEC(-2, 2, 4, 5))

static mt_tensor *run_select(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_select(in[0], 1, -1);   /* [3, 4, 2] -> [3, 2], index 3 of dim 1 */
}
static int64_t src_select(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return flat(3, (int64_t[]){ 3, 4, 2 }, (int64_t[]){ o[0], 3, o[1] });
}
static void ref_select(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 2, (int64_t[]){ 3, 2 }, src_select, out);
}
VIEW_CASE(ops_view, select_negative_index, run_select, ref_select, MT_SPEC(-2, 2, 3, 4, 2))

/* ---------------------------------------------------------------- expand, squeeze, unsqueeze */
static mt_tensor *run_expand(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_expand(in[0], MT_SHAPE(2, 3, 4));   /* [3, 1] -> [2, 3, 4] */
}
static int64_t src_expand(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return o[1];
}
static void ref_expand(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 3, (int64_t[]){ 2, 3, 4 }, src_expand, out);
}
VIEW_CASE(ops_view, expand_new_and_size1_dims, run_expand, ref_expand, MT_SPEC(-2, 2, 3, 1))

static mt_tensor *run_expand_keep(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_mul(mt_expand(in[0], MT_SHAPE(-1, 4)), in[1]);   /* [3, 1] -> [3, 4], times a [3, 4] input */
}
static void ref_expand_keep(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 2, (int64_t[]){ 3, 4 });
    for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++) out->data[i * 4 + j] = in[0].data[i] * in[1].data[i * 4 + j];
}
VIEW_CASE(ops_view, expand_keep_dim_times_input, run_expand_keep, ref_expand_keep, MT_SPEC(-2, 2, 3, 1), MT_SPEC(-2, 2, 3, 4))

static mt_tensor *run_squeeze(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_mul_scalar(mt_squeeze(in[0], 1), 2);   /* [3, 1, 5] -> [3, 5] */
}
static void ref_squeeze(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], 2, (int64_t[]){ 3, 5 }, 2, out);
}
VIEW_CASE(ops_view, squeeze, run_squeeze, ref_squeeze, MT_SPEC(-2, 2, 3, 1, 5))

static mt_tensor *run_unsqueeze(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_unsqueeze(mt_unsqueeze(in[0], -1), 0);   /* [3, 5] -> [1, 3, 5, 1] */
}
static void ref_unsqueeze(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], 4, (int64_t[]){ 1, 3, 5, 1 }, 1, out);
}
VIEW_CASE(ops_view, unsqueeze, run_unsqueeze, ref_unsqueeze, MT_SPEC(-2, 2, 3, 5))

/* ---------------------------------------------------------------- copies */
static mt_tensor *run_contiguous(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_contiguous(mt_transpose(in[0], 0, 1));   /* [3, 4] -> [4, 3], copied */
}
static int64_t src_transpose2d(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return o[1] * 4 + o[0];
}
static void ref_contiguous(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 2, (int64_t[]){ 4, 3 }, src_transpose2d, out);
}
VIEW_CASE(ops_view, contiguous_of_transposed, run_contiguous, ref_contiguous, MT_SPEC(-2, 2, 3, 4))

static mt_tensor *run_clone(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_clone(in[0]);
}
static void ref_clone(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], in[0].ndim, in[0].shape, 1, out);
}
VIEW_CASE(ops_view, clone, run_clone, ref_clone, MT_SPEC(-2, 2, 2, 3))

/* to_dtype: f64 -> f32 -> f64 in the harness's f64 pass, f32 -> f64 -> f32 in
   its f32 pass. The round trip through f32 rounds, so the gradient checks
   (which need f64 accuracy) are done by the plain test below instead. */
static mt_tensor *run_to_dtype(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    mt_dtype other = in[0]->dtype == MT_F64 ? MT_F32 : MT_F64;
    return mt_to_dtype(mt_to_dtype(in[0], other), in[0]->dtype);
}
static void ref_to_dtype(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_same_order(&in[0], in[0].ndim, in[0].shape, 1, out);
}
Test(ops_view, to_dtype_round_trip, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_op_case c = { .name = "to_dtype_round_trip", .n_inputs = 1, .inputs = { MT_SPEC(-2, 2, 3, 4) },
                     .run = run_to_dtype, .reference = ref_to_dtype, .fwd_tol_f64 = 1e-7, .no_grad_check = true };
    mt_check_op(&c);
}

Test(ops_view, to_dtype_gradient_crosses_dtypes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* loss = sum(f32(x)^2) for an f64 leaf x: dloss/dx = 2x, delivered in f64 */
    mt_tensor *x = mt_requires_grad(mt_from_data(MT_F64, MT_SHAPE(3), (double[]){ 0.5, -1.25, 2 }), true);
    mt_tensor *y = mt_to_dtype(x, MT_F32);
    cr_assert_eq(y->dtype, MT_F32);
    mt_tensor *loss = mt_sum_all(mt_mul(y, y));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    mt_tensor *g = mt_grad(x);
    cr_assert(g && g->dtype == MT_F64);
    for (int64_t i = 0; i < 3; i++) cr_assert_float_eq(mt_get(g, &i), 2 * mt_get(x, &i), 1e-6);

    /* forward mode: the tangent crosses too */
    mt_tensor *t = mt_from_data(MT_F32, MT_SHAPE(3), (float[]){ 1, 2, 3 });
    mt_tensor *dual = mt_make_dual(mt_from_data(MT_F32, MT_SHAPE(3), (float[]){ 1, 1, 1 }), t);
    mt_tensor *z = mt_mul_scalar(mt_to_dtype(dual, MT_F64), 2);
    cr_assert(mt_tangent(z) && mt_tangent(z)->dtype == MT_F64);
    cr_assert_float_eq(mt_get(mt_tangent(z), (int64_t[]){ 2 }), 6, 1e-12);

    /* to an integer dtype, no gradient flows: the result is not on the tape */
    mt_tensor *xi = mt_to_dtype(x, MT_I64);
    cr_assert(xi && !xi->requires_grad);
}

/* ---------------------------------------------------------------- concat, stack, split, chunk */
static mt_tensor *run_concat(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_concat(3, in, 1);   /* [2, 1, 3] ++ [2, 3, 3] ++ [2, 2, 3] -> [2, 6, 3] */
}
static void ref_concat(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 3, (int64_t[]){ 2, 6, 3 });
    for (int64_t a = 0; a < 2; a++) {
        int64_t row = 0;
        for (int i = 0; i < 3; i++)
            for (int64_t r = 0; r < in[i].shape[1]; r++, row++)
                for (int64_t k = 0; k < 3; k++)
                    out->data[(a * 6 + row) * 3 + k] = in[i].data[(a * in[i].shape[1] + r) * 3 + k];
    }
}
VIEW_CASE(ops_view, concat_three_dim1, run_concat, ref_concat, MT_SPEC(-2, 2, 2, 1, 3), MT_SPEC(-2, 2, 2, 3, 3),
          MT_SPEC(-2, 2, 2, 2, 3))

static mt_tensor *run_concat_transposed(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    /* a non-contiguous piece: [3, 2] transposed to [2, 3], joined with a [2, 3] along dim 0 */
    mt_tensor *parts[2] = { mt_transpose(in[0], 0, 1), in[1] };
    return mt_concat(2, parts, 0);
}
static void ref_concat_transposed(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 2, (int64_t[]){ 4, 3 });
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++) {
            out->data[i * 3 + j] = in[0].data[j * 2 + i];
            out->data[(2 + i) * 3 + j] = in[1].data[i * 3 + j];
        }
}
VIEW_CASE(ops_view, concat_transposed_piece, run_concat_transposed, ref_concat_transposed, MT_SPEC(-2, 2, 3, 2),
          MT_SPEC(-2, 2, 2, 3))

static mt_tensor *run_stack(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_stack(2, in, 1);   /* two [2, 3] -> [2, 2, 3] */
}
static void ref_stack(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 3, (int64_t[]){ 2, 2, 3 });
    for (int64_t a = 0; a < 2; a++)
        for (int i = 0; i < 2; i++)
            for (int64_t k = 0; k < 3; k++) out->data[(a * 2 + i) * 3 + k] = in[i].data[a * 3 + k];
}
VIEW_CASE(ops_view, stack_dim1, run_stack, ref_stack, MT_SPEC(-2, 2, 2, 3), MT_SPEC(-2, 2, 2, 3))

static mt_tensor *run_stack_last(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_stack(3, in, -1);   /* three [4] -> [4, 3] */
}
static void ref_stack_last(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 2, (int64_t[]){ 4, 3 });
    for (int64_t a = 0; a < 4; a++)
        for (int i = 0; i < 3; i++) out->data[a * 3 + i] = in[i].data[a];
}
VIEW_CASE(ops_view, stack_last_dim, run_stack_last, ref_stack_last, MT_SPEC(-2, 2, 4), MT_SPEC(-2, 2, 4), MT_SPEC(-2, 2, 4))

/* split [5, 4] into rows of 2: pieces [2, 4], [2, 4], [1, 4]; the case returns the
   last (short) piece times the middle one's first row */
static mt_tensor *run_split(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    mt_tensor *pieces[4];
    int n = mt_split(in[0], 2, 0, pieces, 4);
    if (n != 3) return NULL;
    return mt_mul(pieces[2], mt_narrow(pieces[1], 0, 0, 1));
}
static void ref_split(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 2, (int64_t[]){ 1, 4 });
    for (int64_t j = 0; j < 4; j++) out->data[j] = in[0].data[4 * 4 + j] * in[0].data[2 * 4 + j];
}
VIEW_CASE(ops_view, split_pieces, run_split, ref_split, MT_SPEC(-2, 2, 5, 4))

/* chunk [3, 6] into 3 along dim 1: the middle chunk, columns 2..3 */
static mt_tensor *run_chunk(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    mt_tensor *pieces[3];
    if (mt_chunk(in[0], 3, 1, pieces) != 3) return NULL;
    return pieces[1];
}
static int64_t src_chunk(const ref_tensor *in, const int64_t *o)
{
    (void)in;
    return o[0] * 6 + 2 + o[1];
}
static void ref_chunk(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    gather(&in[0], 2, (int64_t[]){ 3, 2 }, src_chunk, out);
}
VIEW_CASE(ops_view, chunk_middle_piece, run_chunk, ref_chunk, MT_SPEC(-2, 2, 3, 6))

/* ---------------------------------------------------------------- where, comparisons */
/* inputs: the condition's source (no gradient), a [3, 4], b [1, 4] (broadcast) */
static mt_tensor *run_where(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    mt_tensor *zero = mt_zeros_like(in[0]);   /* on in[0]'s device */
    return mt_where(mt_gt(in[0], zero), in[1], in[2]);
}
static void ref_where(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 2, (int64_t[]){ 3, 4 });
    for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++)
            out->data[i * 4 + j] = in[0].data[i * 4 + j] > 0 ? in[1].data[i * 4 + j] : in[2].data[j];
}
Test(ops_view, where_broadcast, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_op_case c = { .name = "where_broadcast", .n_inputs = 3,
                     .inputs = { { .ndim = 2, .shape = { 3, 4 }, .lo = -2, .hi = 2, .no_grad = true },
                                 MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 1, 4) },
                     .run = run_where, .reference = ref_where };
    mt_check_op(&c);
}

typedef enum compare_kind { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE } compare_kind;
static mt_tensor *run_compare(const mt_op_case *c, mt_tensor *const *in)
{
    switch (*(const compare_kind *)c->params) {
    case C_EQ: return mt_eq(in[0], in[1]);
    case C_NE: return mt_ne(in[0], in[1]);
    case C_LT: return mt_lt(in[0], in[1]);
    case C_LE: return mt_le(in[0], in[1]);
    case C_GT: return mt_gt(in[0], in[1]);
    case C_GE: return mt_ge(in[0], in[1]);
    }
    return NULL;
}
static void ref_compare(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    compare_kind kind = *(const compare_kind *)c->params;
    int ndim;
    int64_t shape[MT_MAX_DIMS], idx[MT_MAX_DIMS] = { 0 };
    ref_broadcast_shape(&in[0], &in[1], &ndim, shape);
    ref_alloc(out, ndim, shape);
    int64_t k = 0;
    do {
        double a = in[0].data[ref_broadcast_offset(&in[0], ndim, idx)];
        double b = in[1].data[ref_broadcast_offset(&in[1], ndim, idx)];
        bool r = kind == C_EQ ? a == b : kind == C_NE ? a != b : kind == C_LT ? a < b
               : kind == C_LE ? a <= b : kind == C_GT ? a > b : a >= b;
        out->data[k++] = r;
    } while (ref_next_index(ndim, shape, idx));
}

/* Integer inputs in [0, 3) make ties common, so eq/le/ge are really exercised. */
#define INT_SPEC(...) { .ndim = (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), .shape = { __VA_ARGS__ }, \
                        .integer = true, .int_high = 3 }
#define COMPARE_CASE(NAME, KIND, SPEC_A, SPEC_B)                                           \
    Test(ops_compare, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {            \
        static const compare_kind kind = KIND;                                             \
        mt_op_case c = { .name = #NAME, .n_inputs = 2, .inputs = { SPEC_A, SPEC_B },       \
                         .run = run_compare, .reference = ref_compare, .params = &kind,     \
                         .no_grad_check = true };                                          \
        mt_check_op(&c);                                                                   \
    }

COMPARE_CASE(eq_int_broadcast, C_EQ, INT_SPEC(3, 4), INT_SPEC(4))
COMPARE_CASE(ne_int_broadcast, C_NE, INT_SPEC(3, 1), INT_SPEC(1, 4))
COMPARE_CASE(le_int, C_LE, INT_SPEC(5, 3), INT_SPEC(5, 3))
COMPARE_CASE(ge_int, C_GE, INT_SPEC(2, 3, 2), INT_SPEC(3, 1))
COMPARE_CASE(lt_float_broadcast, C_LT, MT_SPEC(-2, 2, 3, 4), MT_SPEC(-2, 2, 4))
COMPARE_CASE(gt_float, C_GT, MT_SPEC(-2, 2, 7), MT_SPEC(-2, 2, 7))
COMPARE_CASE(ge_float_scalar, C_GE, MT_SPEC(-2, 2, 2, 5), MT_SPEC0(-2, 2))

/* ---------------------------------------------------------------- plain checks */
Test(ops_view, views_share_storage, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_arange(MT_F32, 0, 12, 1);
    mt_tensor *m = mt_reshape(x, MT_SHAPE(3, 4));
    mt_tensor *t = mt_transpose(m, 0, 1);
    mt_tensor *s = mt_slice(m, 1, 1, 4, 2);
    cr_assert_eq(m->storage, x->storage);
    cr_assert_eq(t->storage, x->storage);
    cr_assert_eq(s->storage, x->storage);
    cr_assert(mt_is_contiguous(m) && !mt_is_contiguous(t) && !mt_is_contiguous(s));
    cr_assert_eq(mt_contiguous(m), m, "contiguous of a contiguous tensor is the tensor itself");
    mt_tensor *tc = mt_contiguous(t);
    cr_assert(tc != t && tc->storage != x->storage && mt_is_contiguous(tc));
    cr_assert_eq(mt_get(tc, (int64_t[]){ 3, 1 }), 7);
    mt_tensor *cl = mt_clone(m);
    cr_assert(cl->storage != x->storage);
    cr_assert_eq(mt_get(s, (int64_t[]){ 2, 1 }), 11);
}

Test(ops_view, view_of_non_viewable_layout_fails, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *t = mt_transpose(mt_zeros(MT_F32, MT_SHAPE(3, 4)), 0, 1);
    cr_assert_null(mt_view(t, MT_SHAPE(12)));
    cr_assert(strstr(mt_last_error(), "view") && strstr(mt_last_error(), "[4, 3]"), "%s", mt_last_error());
    cr_assert_eq(mt_last_status(), MT_ERR_SHAPE);
    /* reshape copies instead */
    mt_tensor *r = mt_reshape(t, MT_SHAPE(12));
    cr_assert(r != NULL, "%s", mt_last_error());
}

Test(ops_view, bad_arguments, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(2, 3, 4));
    cr_assert_null(mt_reshape(x, MT_SHAPE(5, -1)));
    cr_assert(strstr(mt_last_error(), "reshape"), "%s", mt_last_error());
    cr_assert_null(mt_reshape(x, MT_SHAPE(5, 5)));
    cr_assert_null(mt_permute(x, (int[]){ 0, 0, 1 }));
    cr_assert(strstr(mt_last_error(), "twice"), "%s", mt_last_error());
    cr_assert_null(mt_transpose(x, 0, 3));
    cr_assert(strstr(mt_last_error(), "out of range"), "%s", mt_last_error());
    cr_assert_null(mt_slice(x, 0, 0, 2, 0));
    cr_assert_null(mt_narrow(x, 2, 2, 3));
    cr_assert(strstr(mt_last_error(), "narrow"), "%s", mt_last_error());
    cr_assert_null(mt_select(x, 1, 3));
    cr_assert_null(mt_select(x, 1, -4));
    cr_assert_null(mt_expand(x, MT_SHAPE(2, 5, 4)));
    cr_assert(strstr(mt_last_error(), "expand"), "%s", mt_last_error());
    mt_tensor *parts[2] = { x, mt_zeros(MT_F32, MT_SHAPE(2, 4, 4)) };
    cr_assert_null(mt_concat(2, parts, 2));
    cr_assert(strstr(mt_last_error(), "concat") && strstr(mt_last_error(), "[2, 4, 4]"), "%s", mt_last_error());
    mt_tensor *pieces[2];
    cr_assert_eq(mt_split(x, 1, 0, pieces, 1), -1);
    cr_assert_null(mt_where(mt_zeros(MT_F32, MT_SHAPE(2, 3, 4)), x, x));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
    /* squeezing a dim that is not 1 leaves the shape alone, as in PyTorch */
    mt_tensor *same = mt_squeeze(x, 1);
    cr_assert(same && same->ndim == 3);
}
