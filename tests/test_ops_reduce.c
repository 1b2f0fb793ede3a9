/*
 * test_ops_reduce.c - harness cases for the reductions: sum, mean and var
 * (correction 0 and 1) over one dim, adjacent and non-adjacent dims, all dims,
 * negative dims, with and without keepdim, and on a non-contiguous input;
 * max, min and logsumexp over a dim; argmax and argmin (indices, no
 * gradient); max_dim and min_dim (values and indices as one node with two
 * outputs; ties give the whole gradient to the first, where max shares it;
 * the first NaN wins); sum_to (undoing a broadcast). Shapes include size-1 dims, odd
 * sizes and a 0-d input.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>

typedef enum reduce_kind { R_SUM, R_MEAN, R_VAR, R_MAX, R_MIN, R_LOGSUMEXP, R_ARGMAX, R_ARGMIN } reduce_kind;

typedef struct reduce_params {
    reduce_kind kind;
    int n_dims;          /* 0 reduces every dim */
    int dims[MT_MAX_DIMS];
    bool keepdim;
    int correction;      /* var only */
    bool transpose_first; /* reduce mt_transpose(x, 0, -1) instead of x */
} reduce_params;

/* ---------------------------------------------------------------- reference */
/* t with its first and last dims swapped (a fresh row-major array). */
static ref_tensor ref_transpose_first_last(const ref_tensor *t)
{
    ref_tensor r = { 0 };
    int64_t shape[MT_MAX_DIMS], idx[MT_MAX_DIMS] = { 0 };
    int last = t->ndim - 1;
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    shape[0] = t->shape[last];
    shape[last] = t->shape[0];
    ref_alloc(&r, t->ndim, shape);
    int64_t k = 0;
    do {
        int64_t src[MT_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) src[d] = idx[d];
        src[0] = idx[last];
        src[last] = idx[0];
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off = off * t->shape[d] + src[d];
        r.data[k++] = t->data[off];
    } while (ref_next_index(r.ndim, r.shape, idx));
    return r;
}

static double reduce_group(reduce_kind kind, const double *v, int64_t n, int correction)
{
    double acc = 0, mean = 0;
    int64_t best = 0;
    switch (kind) {
    case R_SUM:
        for (int64_t j = 0; j < n; j++) acc += v[j];
        return acc;
    case R_MEAN:
        for (int64_t j = 0; j < n; j++) acc += v[j];
        return acc / (double)n;
    case R_VAR:
        for (int64_t j = 0; j < n; j++) mean += v[j];
        mean /= (double)n;
        for (int64_t j = 0; j < n; j++) acc += (v[j] - mean) * (v[j] - mean);
        return acc / (double)(n - correction);
    case R_MAX: case R_ARGMAX:
        for (int64_t j = 1; j < n; j++) if (v[j] > v[best]) best = j;
        return kind == R_MAX ? v[best] : (double)best;
    case R_MIN: case R_ARGMIN:
        for (int64_t j = 1; j < n; j++) if (v[j] < v[best]) best = j;
        return kind == R_MIN ? v[best] : (double)best;
    case R_LOGSUMEXP:
        for (int64_t j = 0; j < n; j++) acc += exp(v[j]);
        return log(acc);
    }
    return NAN;
}

/* Groups the input's elements by output position (reduced dims in row-major
   order inside each group), then reduces each group. */
static void ref_reduce(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const reduce_params *p = c->params;
    ref_tensor transposed = { 0 };
    const ref_tensor *x = &in[0];
    if (p->transpose_first) { transposed = ref_transpose_first_last(&in[0]); x = &transposed; }

    bool mask[MT_MAX_DIMS] = { false };
    if (p->n_dims == 0) for (int d = 0; d < x->ndim; d++) mask[d] = true;
    for (int i = 0; i < p->n_dims; i++) mask[p->dims[i] < 0 ? p->dims[i] + x->ndim : p->dims[i]] = true;

    int64_t oshape[MT_MAX_DIMS], group = 1;
    int ondim = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (mask[d]) group *= x->shape[d];
        if (!mask[d]) oshape[ondim++] = x->shape[d];
        else if (p->keepdim) oshape[ondim++] = 1;
    }
    ref_alloc(out, ondim, oshape);
    int64_t n_out = ref_numel(out);
    double *groups = calloc((size_t)(n_out * group), sizeof(double));
    int64_t *filled = calloc((size_t)n_out, sizeof(int64_t));
    int64_t idx[MT_MAX_DIMS] = { 0 }, k = 0;
    do {
        int64_t o = 0;   /* the output position: the kept dims of idx, row-major */
        for (int d = 0; d < x->ndim; d++) if (!mask[d]) o = o * x->shape[d] + idx[d];
        groups[o * group + filled[o]++] = x->data[k++];
    } while (x->ndim > 0 && ref_next_index(x->ndim, x->shape, idx));
    for (int64_t o = 0; o < n_out; o++) out->data[o] = reduce_group(p->kind, groups + o * group, group, p->correction);
    free(groups);
    free(filled);
    free(transposed.data);
}

/* ---------------------------------------------------------------- engine */
static mt_tensor *run_reduce(const mt_op_case *c, mt_tensor *const *in)
{
    const reduce_params *p = c->params;
    mt_tensor *x = p->transpose_first ? mt_transpose(in[0], 0, -1) : in[0];
    switch (p->kind) {
    case R_SUM: return mt_sum(x, p->n_dims, p->dims, p->keepdim);
    case R_MEAN: return mt_mean(x, p->n_dims, p->dims, p->keepdim);
    case R_VAR: return mt_var(x, p->n_dims, p->dims, p->correction, p->keepdim);
    /* one dim: the single-dim forms; several (or 0 = all): the dim-set forms */
    case R_MAX: return p->n_dims == 1 ? mt_max(x, p->dims[0], p->keepdim) : mt_amax(x, p->n_dims, p->dims, p->keepdim);
    case R_MIN: return p->n_dims == 1 ? mt_min(x, p->dims[0], p->keepdim) : mt_amin(x, p->n_dims, p->dims, p->keepdim);
    case R_LOGSUMEXP:
        return p->n_dims == 1 ? mt_logsumexp(x, p->dims[0], p->keepdim)
                              : mt_logsumexp_dims(x, p->n_dims, p->dims, p->keepdim);
    case R_ARGMAX: return mt_argmax(x, p->dims[0], p->keepdim);
    case R_ARGMIN: return mt_argmin(x, p->dims[0], p->keepdim);
    }
    return NULL;
}

/* REDUCE_CASE(name, spec, kind, n_dims, {dims}, keepdim, correction, transpose_first) */
#define REDUCE_CASE(NAME, SPEC, KIND, N_DIMS, DIMS, KEEPDIM, CORRECTION, TRANSPOSE)        \
    Test(ops_reduce, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const reduce_params p = { KIND, N_DIMS, DIMS, KEEPDIM, CORRECTION, TRANSPOSE }; \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC },                 \
                         .run = run_reduce, .reference = ref_reduce, .params = &p,          \
                         .no_grad_check = (KIND == R_ARGMAX || KIND == R_ARGMIN) };         \
        mt_check_op(&c);                                                                   \
    }
#define DIMS(...) { __VA_ARGS__ }

/* sum */
REDUCE_CASE(sum_middle_dim, MT_SPEC(-2, 2, 2, 3, 4), R_SUM, 1, DIMS(1), false, 0, false)
REDUCE_CASE(sum_first_dim_keepdim, MT_SPEC(-2, 2, 3, 1, 5), R_SUM, 1, DIMS(0), true, 0, false)
REDUCE_CASE(sum_size1_dim, MT_SPEC(-2, 2, 3, 1, 5), R_SUM, 1, DIMS(1), false, 0, false)
REDUCE_CASE(sum_adjacent_dims, MT_SPEC(-2, 2, 2, 3, 4), R_SUM, 2, DIMS(1, 2), false, 0, false)
REDUCE_CASE(sum_nonadjacent_dims, MT_SPEC(-2, 2, 2, 3, 4), R_SUM, 2, DIMS(0, 2), false, 0, false)
REDUCE_CASE(sum_nonadjacent_keepdim, MT_SPEC(-2, 2, 2, 3, 2, 3), R_SUM, 2, DIMS(2, 0), true, 0, false)
REDUCE_CASE(sum_dims_around_size1, MT_SPEC(-2, 2, 2, 1, 3), R_SUM, 2, DIMS(0, 2), true, 0, false)
REDUCE_CASE(sum_all, MT_SPEC(-2, 2, 2, 3, 4), R_SUM, 0, DIMS(0), false, 0, false)
REDUCE_CASE(sum_all_keepdim, MT_SPEC(-2, 2, 3, 1, 5), R_SUM, 0, DIMS(0), true, 0, false)
REDUCE_CASE(sum_all_0d, MT_SPEC0(-2, 2), R_SUM, 0, DIMS(0), false, 0, false)
REDUCE_CASE(sum_negative_dim, MT_SPEC(-2, 2, 2, 3, 4), R_SUM, 1, DIMS(-1), false, 0, false)
REDUCE_CASE(sum_negative_dims_keepdim, MT_SPEC(-2, 2, 2, 3, 4), R_SUM, 2, DIMS(-3, -2), true, 0, false)
REDUCE_CASE(sum_1d, MT_SPEC(-2, 2, 7), R_SUM, 1, DIMS(0), false, 0, false)
/* a wide inner extent takes the row-wise summation path of the CPU kernel */
REDUCE_CASE(sum_first_dim_wide, MT_SPEC(-2, 2, 3, 17), R_SUM, 1, DIMS(0), false, 0, false)
REDUCE_CASE(mean_first_dim_wide_keepdim, MT_SPEC(-2, 2, 3, 17), R_MEAN, 1, DIMS(0), true, 0, false)
REDUCE_CASE(sum_transposed_input, MT_SPEC(-2, 2, 2, 3, 4), R_SUM, 1, DIMS(1), false, 0, true)

/* mean */
REDUCE_CASE(mean_middle_dim, MT_SPEC(-2, 2, 2, 3, 4), R_MEAN, 1, DIMS(1), false, 0, false)
REDUCE_CASE(mean_adjacent_keepdim, MT_SPEC(-2, 2, 2, 3, 4), R_MEAN, 2, DIMS(0, 1), true, 0, false)
REDUCE_CASE(mean_nonadjacent_dims, MT_SPEC(-2, 2, 2, 3, 4), R_MEAN, 2, DIMS(0, -1), false, 0, false)
REDUCE_CASE(mean_all, MT_SPEC(-2, 2, 3, 1, 5), R_MEAN, 0, DIMS(0), false, 0, false)
REDUCE_CASE(mean_1d_keepdim, MT_SPEC(-2, 2, 7), R_MEAN, 1, DIMS(-1), true, 0, false)
REDUCE_CASE(mean_transposed_all, MT_SPEC(-2, 2, 3, 5), R_MEAN, 0, DIMS(0), false, 0, true)

/* var, biased (correction 0) and unbiased (correction 1) */
REDUCE_CASE(var0_middle_dim, MT_SPEC(-2, 2, 2, 3, 4), R_VAR, 1, DIMS(1), false, 0, false)
REDUCE_CASE(var1_middle_dim, MT_SPEC(-2, 2, 2, 3, 4), R_VAR, 1, DIMS(1), false, 1, false)
REDUCE_CASE(var1_last_dim_keepdim, MT_SPEC(-2, 2, 3, 1, 5), R_VAR, 1, DIMS(-1), true, 1, false)
REDUCE_CASE(var0_adjacent_dims, MT_SPEC(-2, 2, 2, 3, 4), R_VAR, 2, DIMS(1, 2), false, 0, false)
REDUCE_CASE(var1_nonadjacent_keepdim, MT_SPEC(-2, 2, 2, 3, 4), R_VAR, 2, DIMS(0, 2), true, 1, false)
REDUCE_CASE(var0_all, MT_SPEC(-2, 2, 7), R_VAR, 0, DIMS(0), false, 0, false)
REDUCE_CASE(var1_all, MT_SPEC(-2, 2, 2, 3, 4), R_VAR, 0, DIMS(0), false, 1, false)
REDUCE_CASE(var1_transposed_input, MT_SPEC(-2, 2, 3, 2, 4), R_VAR, 1, DIMS(0), false, 1, true)

/* max, min, logsumexp over one dim */
REDUCE_CASE(max_middle_dim, MT_SPEC(-2, 2, 2, 3, 4), R_MAX, 1, DIMS(1), false, 0, false)
REDUCE_CASE(max_last_dim_keepdim, MT_SPEC(-2, 2, 3, 1, 5), R_MAX, 1, DIMS(-1), true, 0, false)
REDUCE_CASE(max_1d, MT_SPEC(-2, 2, 7), R_MAX, 1, DIMS(0), false, 0, false)
REDUCE_CASE(max_transposed_input, MT_SPEC(-2, 2, 2, 3, 4), R_MAX, 1, DIMS(0), false, 0, true)
REDUCE_CASE(min_first_dim, MT_SPEC(-2, 2, 2, 3, 4), R_MIN, 1, DIMS(0), false, 0, false)
REDUCE_CASE(min_size1_dim_keepdim, MT_SPEC(-2, 2, 3, 1, 5), R_MIN, 1, DIMS(1), true, 0, false)
REDUCE_CASE(min_1d, MT_SPEC(-2, 2, 7), R_MIN, 1, DIMS(-1), false, 0, false)
REDUCE_CASE(logsumexp_middle_dim, MT_SPEC(-2, 2, 2, 3, 4), R_LOGSUMEXP, 1, DIMS(1), false, 0, false)
REDUCE_CASE(logsumexp_last_keepdim, MT_SPEC(-3, 3, 3, 1, 5), R_LOGSUMEXP, 1, DIMS(-1), true, 0, false)
REDUCE_CASE(logsumexp_1d, MT_SPEC(-2, 2, 7), R_LOGSUMEXP, 1, DIMS(0), false, 0, false)

/* amax, amin, logsumexp over a set of dims */
REDUCE_CASE(amax_nonadjacent_dims, MT_SPEC(-2, 2, 2, 3, 4), R_MAX, 2, DIMS(0, 2), false, 0, false)
REDUCE_CASE(amin_adjacent_keepdim, MT_SPEC(-2, 2, 2, 3, 4), R_MIN, 2, DIMS(1, 2), true, 0, false)
REDUCE_CASE(amax_all, MT_SPEC(-2, 2, 3, 5), R_MAX, 0, DIMS(0), false, 0, false)
REDUCE_CASE(logsumexp_nonadjacent_keepdim, MT_SPEC(-3, 3, 2, 3, 4), R_LOGSUMEXP, 2, DIMS(-1, 0), true, 0, false)
REDUCE_CASE(logsumexp_all_transposed, MT_SPEC(-3, 3, 3, 5), R_LOGSUMEXP, 0, DIMS(0), false, 0, true)

/* argmax, argmin: compared as indices, no gradient */
REDUCE_CASE(argmax_middle_dim, MT_SPEC(-2, 2, 2, 3, 4), R_ARGMAX, 1, DIMS(1), false, 0, false)
REDUCE_CASE(argmax_last_dim_keepdim, MT_SPEC(-2, 2, 3, 1, 5), R_ARGMAX, 1, DIMS(-1), true, 0, false)
REDUCE_CASE(argmax_1d, MT_SPEC(-2, 2, 7), R_ARGMAX, 1, DIMS(0), false, 0, false)
REDUCE_CASE(argmax_transposed_input, MT_SPEC(-2, 2, 2, 3, 4), R_ARGMAX, 1, DIMS(0), false, 0, true)
REDUCE_CASE(argmin_first_dim, MT_SPEC(-2, 2, 2, 3, 4), R_ARGMIN, 1, DIMS(0), false, 0, false)
REDUCE_CASE(argmin_negative_dim_keepdim, MT_SPEC(-2, 2, 2, 3, 4), R_ARGMIN, 1, DIMS(-2), true, 0, false)
REDUCE_CASE(argmin_1d, MT_SPEC(-2, 2, 7), R_ARGMIN, 1, DIMS(0), false, 0, false)

/* ---------------------------------------------------------------- max_dim, min_dim */
/* (values, indices) as one op with two outputs; the reference is the
   max/argmax (min/argmin) pair of ref_reduce. */
static mt_status run_extremum_dim(const mt_op_case *c, mt_tensor *const *in, mt_tensor **out)
{
    const reduce_params *p = c->params;
    mt_tensor *x = p->transpose_first ? mt_transpose(in[0], 0, -1) : in[0];
    return (p->kind == R_MAX ? mt_max_dim : mt_min_dim)(x, p->dims[0], p->keepdim, &out[0], &out[1]);
}

static void ref_extremum_dim(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const reduce_params *p = c->params;
    reduce_params values = *p, indices = *p;
    indices.kind = p->kind == R_MAX ? R_ARGMAX : R_ARGMIN;
    mt_op_case cv = *c, ci = *c;
    cv.params = &values;
    ci.params = &indices;
    ref_reduce(&cv, in, &out[0]);
    ref_reduce(&ci, in, &out[1]);
}

/* EXTREMUM_DIM_CASE(name, spec, R_MAX or R_MIN, dim, keepdim, transpose_first) */
#define EXTREMUM_DIM_CASE(NAME, SPEC, KIND, DIM, KEEPDIM, TRANSPOSE)                       \
    Test(ops_reduce, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const reduce_params p = { KIND, 1, { DIM }, KEEPDIM, 0, TRANSPOSE };        \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC }, .n_outputs = 2, \
                         .run_n = run_extremum_dim, .reference = ref_extremum_dim, .params = &p }; \
        mt_check_op(&c);                                                                   \
    }

EXTREMUM_DIM_CASE(max_dim_middle, MT_SPEC(-2, 2, 2, 3, 4), R_MAX, 1, false, false)
EXTREMUM_DIM_CASE(max_dim_last_keepdim, MT_SPEC(-2, 2, 3, 1, 5), R_MAX, -1, true, false)
EXTREMUM_DIM_CASE(max_dim_first, MT_SPEC(-2, 2, 5, 3), R_MAX, 0, false, false)
EXTREMUM_DIM_CASE(max_dim_size1_dim, MT_SPEC(-2, 2, 3, 1, 5), R_MAX, 1, false, false)
EXTREMUM_DIM_CASE(max_dim_1d, MT_SPEC(-2, 2, 7), R_MAX, 0, false, false)
EXTREMUM_DIM_CASE(max_dim_0d, MT_SPEC0(-2, 2), R_MAX, 0, false, false)
EXTREMUM_DIM_CASE(max_dim_transposed_input, MT_SPEC(-2, 2, 2, 3, 4), R_MAX, 0, true, true)
EXTREMUM_DIM_CASE(min_dim_middle_keepdim, MT_SPEC(-2, 2, 2, 3, 4), R_MIN, -2, true, false)
EXTREMUM_DIM_CASE(min_dim_last, MT_SPEC(-2, 2, 4, 6), R_MIN, 1, false, false)
EXTREMUM_DIM_CASE(min_dim_transposed_input, MT_SPEC(-2, 2, 3, 2, 5), R_MIN, 2, false, true)

/* ---------------------------------------------------------------- sum_to */
typedef struct sum_to_params { int ndim; int64_t shape[MT_MAX_DIMS]; } sum_to_params;

static void ref_sum_to(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const sum_to_params *p = c->params;
    ref_alloc(out, p->ndim, p->shape);
    int64_t idx[MT_MAX_DIMS] = { 0 }, k = 0;
    do {
        out->data[ref_broadcast_offset(out, in[0].ndim, idx)] += in[0].data[k++];
    } while (ref_next_index(in[0].ndim, in[0].shape, idx));
}

static mt_tensor *run_sum_to(const mt_op_case *c, mt_tensor *const *in)
{
    const sum_to_params *p = c->params;
    return mt_sum_to(in[0], p->ndim, p->shape);
}

#define SUM_TO_CASE(NAME, SPEC, NDIM, ...)                                                 \
    Test(ops_reduce, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const sum_to_params p = { NDIM, { __VA_ARGS__ } };                          \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC },                 \
                         .run = run_sum_to, .reference = ref_sum_to, .params = &p };        \
        mt_check_op(&c);                                                                   \
    }

SUM_TO_CASE(sum_to_leading_and_inner, MT_SPEC(-2, 2, 2, 3, 4), 2, 3, 1)
SUM_TO_CASE(sum_to_last_dim, MT_SPEC(-2, 2, 2, 3, 4), 1, 4)
SUM_TO_CASE(sum_to_middle_one, MT_SPEC(-2, 2, 2, 3, 4), 3, 2, 1, 4)
SUM_TO_CASE(sum_to_size1_source, MT_SPEC(-2, 2, 3, 1, 5), 2, 1, 5)
SUM_TO_CASE(sum_to_same_shape, MT_SPEC(-2, 2, 3, 5), 2, 3, 5)
SUM_TO_CASE(sum_to_scalar, MT_SPEC(-2, 2, 2, 3), 0, 0)

/* ---------------------------------------------------------------- plain checks */
Test(ops_reduce, argmax_returns_i64_and_first_of_ties, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(2, 4), (float[]){ 1, 5, 5, 0, -1, -3, -3, 2 });
    mt_tensor *amax = mt_argmax(x, 1, false), *amin = mt_argmin(x, -1, true);
    cr_assert(amax && amin, "%s", mt_last_error());
    cr_assert_eq(amax->dtype, MT_I64);
    cr_assert_eq(amin->ndim, 2);
    cr_assert_eq(mt_get(amax, (int64_t[]){ 0 }), 1);
    cr_assert_eq(mt_get(amax, (int64_t[]){ 1 }), 3);
    cr_assert_eq(mt_get(amin, (int64_t[]){ 0, 0 }), 3);
    cr_assert_eq(mt_get(amin, (int64_t[]){ 1, 0 }), 1);
}

Test(ops_reduce, max_gradient_splits_ties, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_from_data(MT_F64, MT_SHAPE(4), (double[]){ 1, 3, 3, 2 }), true);
    mt_tensor *m = mt_max(x, 0, false);
    cr_assert_eq(mt_backward(m), MT_OK, "%s", mt_last_error());
    double expect[4] = { 0, 0.5, 0.5, 0 };
    for (int64_t i = 0; i < 4; i++) cr_assert_float_eq(mt_get(mt_grad(x), &i), expect[i], 1e-12);
}

Test(ops_reduce, integer_sum_counts_in_i64, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *flags = mt_from_data(MT_BOOL, MT_SHAPE(5), (uint8_t[]){ 1, 0, 1, 1, 0 });
    mt_tensor *s = mt_sum_all(flags);
    cr_assert(s != NULL, "%s", mt_last_error());
    cr_assert_eq(s->dtype, MT_I64);
    cr_assert_eq(mt_item(s), 3);
}

Test(ops_reduce, bad_arguments, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(2, 3));
    cr_assert_null(mt_sum(x, 1, (int[]){ 2 }, false));
    cr_assert(strstr(mt_last_error(), "sum") && strstr(mt_last_error(), "out of range"), "%s", mt_last_error());
    cr_assert_null(mt_mean(x, 2, (int[]){ 1, -1 }, false));
    cr_assert(strstr(mt_last_error(), "twice"), "%s", mt_last_error());
    cr_assert_null(mt_var(x, 1, (int[]){ 0 }, -1, false));
    cr_assert_null(mt_sum_to(x, 2, (int64_t[]){ 2, 2 }));
    cr_assert(strstr(mt_last_error(), "sum_to"), "%s", mt_last_error());
    cr_assert_null(mt_mean(mt_zeros(MT_I64, MT_SHAPE(3)), 0, NULL, false));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
    cr_assert_null(mt_max(mt_zeros(MT_F32, MT_SHAPE(0, 3)), 0, false));
    cr_assert(strstr(mt_last_error(), "empty"), "%s", mt_last_error());
}

/* ---------------------------------------------------------------- max_dim, min_dim: ties, NaN, errors */
/* The devices to check a tie rule on: the CPU, and the emulated CUDA backend where it is built. */
static int tie_devices(mt_device *devices)
{
    int n = 0;
    devices[n++] = mt_cpu();
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    if (mt_device_available(emu, NULL)) devices[n++] = emu;
    return n;
}

Test(ops_reduce, max_dim_gives_a_tie_all_the_gradient, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* rows: a tie for the max at 1 and 2; a three-way tie; a tie for the min at 0 and 3 */
    const double data[12] = { 1, 3, 3, 2,   4, 4, 0, 4,   -1, 2, 5, -1 };
    mt_device devices[2];
    int n_dev = tie_devices(devices);
    for (int d = 0; d < n_dev; d++) {
        const char *dev = mt_device_name(devices[d]);
        mt_tensor *x = mt_requires_grad(mt_to_device(mt_from_data(MT_F64, MT_SHAPE(3, 4), data), devices[d]), true);
        mt_tensor *values = NULL, *indices = NULL;
        cr_assert_eq(mt_max_dim(x, 1, false, &values, &indices), MT_OK, "%s", mt_last_error());
        cr_assert_eq(indices->dtype, MT_I64);
        cr_assert(!indices->requires_grad && !indices->grad_fn, "indices take no gradient");
        cr_assert(values->requires_grad && values->grad_fn, "values are on the tape");
        const int64_t want_index[3] = { 1, 0, 2 };
        const double want_value[3] = { 3, 4, 5 };
        for (int64_t r = 0; r < 3; r++) {
            cr_expect_eq(mt_get(indices, &r), want_index[r], "%s: row %lld", dev, (long long)r);
            cr_expect_eq(mt_get(values, &r), want_value[r], "%s: row %lld", dev, (long long)r);
        }
        /* L = sum_r (r + 1) values_r: all of row r's gradient goes to its index */
        mt_tensor *w = mt_to_device(mt_from_data(MT_F64, MT_SHAPE(3), (double[]){ 1, 2, 3 }), devices[d]);
        cr_assert_eq(mt_backward(mt_sum_all(mt_mul(values, w))), MT_OK, "%s", mt_last_error());
        const double want_grad[12] = { 0, 1, 0, 0,   2, 0, 0, 0,   0, 0, 3, 0 };
        for (int64_t k = 0; k < 12; k++) {
            int64_t idx[2] = { k / 4, k % 4 };
            cr_expect_eq(mt_get(mt_grad(x), idx), want_grad[k], "%s: grad[%lld]", dev, (long long)k);
        }
        /* mt_max (amax) shares it among the ties instead */
        mt_zero_grad(x);
        cr_assert_eq(mt_backward(mt_sum_all(mt_mul(mt_max(x, 1, false), w))), MT_OK, "%s", mt_last_error());
        const double shared[12] = { 0, 0.5, 0.5, 0,   2.0 / 3, 2.0 / 3, 0, 2.0 / 3,   0, 0, 3, 0 };
        for (int64_t k = 0; k < 12; k++) {
            int64_t idx[2] = { k / 4, k % 4 };
            cr_expect_float_eq(mt_get(mt_grad(x), idx), shared[k], 1e-12, "%s: amax grad[%lld]", dev, (long long)k);
        }
        /* min_dim along dim 0, keeping it: columns [2, 1, 1] and [0, 0, 5] tie for the min */
        mt_tensor *y = mt_requires_grad(mt_to_device(mt_from_data(MT_F64, MT_SHAPE(3, 2), (double[]){ 2, 0, 1, 0, 1, 5 }),
                                                     devices[d]), true);
        cr_assert_eq(mt_min_dim(y, 0, true, &values, &indices), MT_OK, "%s", mt_last_error());
        cr_assert(values->ndim == 2 && values->shape[0] == 1 && values->shape[1] == 2);
        cr_expect(mt_get(indices, (int64_t[]){ 0, 0 }) == 1 && mt_get(indices, (int64_t[]){ 0, 1 }) == 0, "%s", dev);
        cr_expect(mt_get(values, (int64_t[]){ 0, 0 }) == 1 && mt_get(values, (int64_t[]){ 0, 1 }) == 0, "%s", dev);
        cr_assert_eq(mt_backward(mt_sum_all(values)), MT_OK, "%s", mt_last_error());
        const double want_min_grad[6] = { 0, 1,   1, 0,   0, 0 };
        for (int64_t k = 0; k < 6; k++) {
            int64_t idx[2] = { k / 2, k % 2 };
            cr_expect_eq(mt_get(mt_grad(y), idx), want_min_grad[k], "%s: min grad[%lld]", dev, (long long)k);
        }
    }
}

Test(ops_reduce, max_dim_takes_the_first_nan, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device devices[2];
    int n_dev = tie_devices(devices);
    for (int d = 0; d < n_dev; d++) {
        mt_tensor *x = mt_to_device(mt_from_data(MT_F32, MT_SHAPE(5), (float[]){ 1, NAN, 7, NAN, 2 }), devices[d]);
        mt_tensor *values = NULL, *indices = NULL;
        cr_assert_eq(mt_max_dim(x, 0, false, &values, &indices), MT_OK, "%s", mt_last_error());
        cr_expect(isnan(mt_item(values)), "%s: max is NaN", mt_device_name(devices[d]));
        cr_expect_eq(mt_item(indices), 1, "%s", mt_device_name(devices[d]));
        cr_assert_eq(mt_min_dim(x, 0, false, &values, &indices), MT_OK, "%s", mt_last_error());
        cr_expect(isnan(mt_item(values)), "%s: min is NaN", mt_device_name(devices[d]));
        cr_expect_eq(mt_item(indices), 1, "%s", mt_device_name(devices[d]));
    }
}

Test(ops_reduce, max_dim_one_output_wanted, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_from_data(MT_F64, MT_SHAPE(2, 3), (double[]){ 1, 5, 2, 9, 0, 9 }), true);
    mt_tensor *values = NULL, *indices = NULL;
    cr_assert_eq(mt_max_dim(x, -1, false, &values, NULL), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_backward(mt_sum_all(values)), MT_OK, "%s", mt_last_error());
    const double want[6] = { 0, 1, 0, 1, 0, 0 };
    for (int64_t k = 0; k < 6; k++) {
        int64_t idx[2] = { k / 3, k % 3 };
        cr_expect_eq(mt_get(mt_grad(x), idx), want[k]);
    }
    cr_assert_eq(mt_max_dim(x, -1, false, NULL, &indices), MT_OK, "%s", mt_last_error());
    cr_expect_eq(mt_get(indices, (int64_t[]){ 1 }), 0);
    /* integers: values keep the dtype, nothing is recorded */
    mt_tensor *ints = mt_from_data(MT_I64, MT_SHAPE(3), (int64_t[]){ 4, -2, 4 });
    cr_assert_eq(mt_min_dim(ints, 0, false, &values, &indices), MT_OK, "%s", mt_last_error());
    cr_expect(values->dtype == MT_I64 && mt_item(values) == -2 && mt_item(indices) == 1);
}

Test(ops_reduce, max_dim_bad_arguments, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(2, 3)), *values = x, *indices = x;
    cr_assert_neq(mt_max_dim(x, 2, false, &values, &indices), MT_OK);
    cr_assert(strstr(mt_last_error(), "max_dim") && strstr(mt_last_error(), "out of range"), "%s", mt_last_error());
    cr_assert(values == NULL && indices == NULL, "outputs are NULL after an error");
    cr_assert_neq(mt_min_dim(mt_zeros(MT_F32, MT_SHAPE(0, 3)), 0, false, &values, &indices), MT_OK);
    cr_assert(strstr(mt_last_error(), "min_dim") && strstr(mt_last_error(), "empty"), "%s", mt_last_error());
    cr_assert_eq(mt_max_dim(x, 0, false, NULL, NULL), MT_ERR_ARGUMENT);
    mt_set_error(MT_ERR_SHAPE, "an earlier op failed");
    cr_assert_eq(mt_max_dim(NULL, 0, false, &values, &indices), MT_ERR_SHAPE, "a NULL input keeps the earlier error");
    cr_assert(strstr(mt_last_error(), "earlier op"), "%s", mt_last_error());
}
