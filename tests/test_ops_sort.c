/*
 * test_ops_sort.c - mt_sort, mt_topk, and argmax/argmin along a dim and over
 * all dims.
 *
 * Harness cases with both outputs (values and indices: forward against a naive
 * stable sort, vjp against finite differences, jvp, cuda-emu; the indices take
 * no gradient) along the first, a middle and
 * the last dim, ascending and descending, odd lengths, rows longer than the
 * CUDA kernel's shared-memory limit (its global-memory path). Random inputs
 * have no ties; plain tests check ties and NaN against a naive stable sort on
 * the CPU and on cuda-emu, in every dtype, over lengths that exercise the
 * bitonic network's padding (1, 2, 3, 17, 33, 255, 257, 2048, 2049, 3001).
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the naive reference */
/* Whether a comes strictly before b: PyTorch's stable order, NaN greatest. */
static bool ref_before(double a, int64_t ia, double b, int64_t ib, bool desc)
{
    bool an = isnan(a), bn = isnan(b);
    if (an || bn) return an && bn ? ia < ib : (desc ? an : bn);
    if (a == b) return ia < ib;
    return desc ? a > b : a < b;
}

/* Sorts the n values v[j * stride] (insertion sort: stable by construction,
   checked against the total order), writing the first k values and their
   positions. */
static void ref_sort_column(const double *v, int64_t n, int64_t stride, bool desc, int64_t k, double *values,
                            int64_t *pos, int64_t out_stride)
{
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t j = 0; j < n; j++) {
        int64_t m = j;
        while (m > 0 && ref_before(v[j * stride], j, v[order[m - 1] * stride], order[m - 1], desc)) {
            order[m] = order[m - 1];
            m--;
        }
        order[m] = j;
    }
    for (int64_t j = 0; j < k; j++) {
        if (values) values[j * out_stride] = v[order[j] * stride];
        if (pos) pos[j * out_stride] = order[j];
    }
    free(order);
}

typedef struct sort_params {
    int dim;
    bool descending;    /* for topk: largest */
    int64_t k;          /* -1: sort */
} sort_params;

/* out[0] = the values, out[1] = the indices */
static void ref_sort(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const sort_params *p = c->params;
    const ref_tensor *x = &in[0];
    int dim = x->ndim == 0 ? 0 : (p->dim < 0 ? p->dim + x->ndim : p->dim);
    int64_t outer = 1, n = x->ndim ? x->shape[dim] : 1, inner = 1, k = p->k < 0 ? n : p->k;
    for (int d = 0; d < dim; d++) outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
    int64_t shape[MT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    if (x->ndim) shape[dim] = k;
    ref_alloc(&out[0], x->ndim, shape);
    ref_alloc(&out[1], x->ndim, shape);
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(k ? k : 1));
    double *vals = malloc(sizeof(double) * (size_t)(k ? k : 1));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            ref_sort_column(x->data + o * n * inner + i, n, inner, p->descending, k, vals, pos, 1);
            for (int64_t j = 0; j < k; j++) {
                out[0].data[(o * k + j) * inner + i] = vals[j];
                out[1].data[(o * k + j) * inner + i] = (double)pos[j];
            }
        }
    free(pos);
    free(vals);
}

static mt_status run_sort(const mt_op_case *c, mt_tensor *const *in, mt_tensor **out)
{
    const sort_params *p = c->params;
    return p->k < 0 ? mt_sort(in[0], p->dim, p->descending, &out[0], &out[1])
                    : mt_topk(in[0], p->k, p->dim, p->descending, true, &out[0], &out[1]);
}

#define SORT_CASE(SUITE, NAME, DIM, DESC, K, SPEC)                                         \
    Test(SUITE, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                  \
        static const sort_params p = { DIM, DESC, K };                                     \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC }, .n_outputs = 2, \
                         .run_n = run_sort, .reference = ref_sort, .params = &p };         \
        mt_check_op(&c);                                                                   \
    }
/* Forward and cuda-emu only (no finite differences: long rows). */
#define SORT_FORWARD_CASE(SUITE, NAME, DIM, DESC, K, SPEC)                                 \
    Test(SUITE, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {                  \
        static const sort_params p = { DIM, DESC, K };                                     \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC }, .n_outputs = 2, \
                         .run_n = run_sort, .reference = ref_sort, .params = &p,           \
                         .no_grad_check = true };                                          \
        mt_check_op(&c);                                                                   \
    }

SORT_CASE(ops_sort, first_dim, 0, false, -1, MT_SPEC(-2, 2, 5, 3, 2))
SORT_CASE(ops_sort, middle_dim_descending, 1, true, -1, MT_SPEC(-2, 2, 2, 7, 3))
SORT_CASE(ops_sort, last_dim, -1, false, -1, MT_SPEC(-2, 2, 3, 2, 11))
SORT_CASE(ops_sort, odd_row_descending, 0, true, -1, MT_SPEC(-2, 2, 37))
SORT_CASE(ops_sort, many_rows, 1, false, -1, MT_SPEC(-2, 2, 19, 5))
SORT_CASE(ops_sort, zero_d, 0, false, -1, MT_SPEC0(-2, 2))
/* > 2048: the global bitonic path. Among 2100 random values two lie within
   1e-6 of each other, and the default finite-difference step would swap them. */
Test(ops_sort, long_row_global_path, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const sort_params p = { 0, false, -1 };
    mt_op_case c = { .name = "long_row_global_path", .n_inputs = 1, .inputs = { MT_SPEC(-2, 2, 2100) }, .n_outputs = 2,
                     .run_n = run_sort, .reference = ref_sort, .params = &p, .fd_step = 1e-9, .grad_tol = 1e-5 };
    mt_check_op(&c);
}
SORT_FORWARD_CASE(ops_sort, long_rows_global_path_descending, 1, true, -1, MT_SPEC(-2, 2, 3, 2500))
SORT_FORWARD_CASE(ops_sort, rows_at_shared_limit, -1, false, -1, MT_SPEC(-2, 2, 2, 2048))

SORT_CASE(ops_topk, largest_last_dim, -1, true, 3, MT_SPEC(-2, 2, 4, 9))
SORT_CASE(ops_topk, smallest_first_dim, 0, false, 2, MT_SPEC(-2, 2, 5, 3, 2))
SORT_CASE(ops_topk, largest_middle_dim_k1, 1, true, 1, MT_SPEC(-2, 2, 2, 6, 3))
SORT_CASE(ops_topk, k_equals_n, 0, true, 7, MT_SPEC(-2, 2, 7))
SORT_CASE(ops_topk, k_zero, 1, true, 0, MT_SPEC(-2, 2, 3, 4))

/* ---------------------------------------------------------------- ties and NaN, every dtype, cpu and cuda-emu */
/* Values drawn from a few levels (many ties), NaN every 7th element for floats. */
static void tie_values(double *v, int64_t n, uint64_t seed, bool with_nan, mt_dtype dtype)
{
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int64_t j = 0; j < n; j++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int level = (int)((s >> 33) % 5);
        v[j] = dtype == MT_BOOL ? (level & 1) : dtype == MT_U8 ? level * 50 : level - 2;
        if (dtype == MT_F32 || dtype == MT_F64) {
            if (level == 4) v[j] = -0.0;   /* -0 and 0 tie */
            if (level == 3) v[j] = 0.0;
            if (with_nan && j % 7 == 3) v[j] = NAN;
        }
    }
}

static void check_ties(mt_device dev, mt_dtype dtype, int64_t rows, int64_t n, bool desc)
{
    mt_scope scope = mt_scope_begin();
    int64_t total = rows * n;
    double *v = malloc(sizeof(double) * (size_t)total), *want = malloc(sizeof(double) * (size_t)total);
    double *got = malloc(sizeof(double) * (size_t)total);
    int64_t *want_pos = malloc(sizeof(int64_t) * (size_t)total), *got_pos = malloc(sizeof(int64_t) * (size_t)total);
    tie_values(v, total, (uint64_t)(n * 31 + rows + desc), true, dtype);
    mt_tensor *x = mt_to_device(mt_to_dtype(mt_from_data(MT_F64, MT_SHAPE(rows, n), v), dtype), dev);
    mt_tensor *values = NULL, *indices = NULL;
    cr_assert_eq(mt_sort(x, 1, desc, &values, &indices), MT_OK, "%s", mt_last_error());
    cr_assert(values->dtype == dtype && indices->dtype == MT_I64);
    cr_assert_eq(mt_to_data(values, MT_F64, got), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_to_data(indices, MT_I64, got_pos), MT_OK, "%s", mt_last_error());
    /* the reference sorts the values as x holds them (after the cast to dtype) */
    double *cast = malloc(sizeof(double) * (size_t)total);
    mt_to_data(x, MT_F64, cast);
    for (int64_t r = 0; r < rows; r++) ref_sort_column(cast + r * n, n, 1, desc, n, want + r * n, want_pos + r * n, 1);
    for (int64_t e = 0; e < total; e++) {
        cr_assert(got_pos[e] == want_pos[e], "%s %s rows %lld n %lld %s: index %lld is %lld, expected %lld",
                  mt_device_name(dev), mt_dtype_name(dtype), (long long)rows, (long long)n, desc ? "desc" : "asc",
                  (long long)e, (long long)got_pos[e], (long long)want_pos[e]);
        bool same = (isnan(got[e]) && isnan(want[e])) || (got[e] == want[e] && signbit(got[e]) == signbit(want[e]));
        cr_assert(same, "%s %s n %lld: value %lld is %g, expected %g", mt_device_name(dev), mt_dtype_name(dtype),
                  (long long)n, (long long)e, got[e], want[e]);
    }
    free(cast);
    free(v);
    free(want);
    free(got);
    free(want_pos);
    free(got_pos);
    mt_scope_end(scope);
}

static const int64_t tie_lengths[] = { 1, 2, 3, 17, 33, 255, 257, 2048, 2049, 3001 };

static void ties_on(mt_device dev)
{
    const mt_dtype dtypes[] = { MT_F32, MT_F64, MT_I32, MT_I64, MT_U8, MT_BOOL };
    for (size_t t = 0; t < sizeof dtypes / sizeof dtypes[0]; t++)
        for (size_t l = 0; l < sizeof tie_lengths / sizeof tie_lengths[0]; l++)
            for (int desc = 0; desc < 2; desc++) {
                int64_t n = tie_lengths[l], rows = n > 300 ? 2 : 5;
                check_ties(dev, dtypes[t], rows, n, desc != 0);
            }
}

Test(ops_sort, ties_and_nan_stable_on_cpu, .init = mt_test_setup, .fini = mt_test_teardown) { ties_on(mt_cpu()); }

Test(ops_sort, ties_and_nan_stable_on_cuda_emu, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    if (!mt_device_available(emu, NULL)) cr_skip_test("cuda-emu is not built in");
    ties_on(emu);
}

/* PyTorch: torch.sort(tensor([3., nan, 1., nan, 1.])) -> values [1, 1, 3, nan, nan], indices [2, 4, 0, 1, 3];
   descending: [nan, nan, 3, 1, 1], [1, 3, 0, 2, 4]. */
Test(ops_sort, pytorch_example, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(5), (float[]){ 3, NAN, 1, NAN, 1 });
    mt_tensor *v, *i;
    int64_t pos[5];
    cr_assert_eq(mt_sort(x, 0, false, &v, &i), MT_OK, "%s", mt_last_error());
    mt_to_data(i, MT_I64, pos);
    cr_assert(pos[0] == 2 && pos[1] == 4 && pos[2] == 0 && pos[3] == 1 && pos[4] == 3);
    cr_assert(isnan(mt_get(v, (int64_t[]){ 4 })) && mt_get(v, (int64_t[]){ 2 }) == 3);
    cr_assert_eq(mt_sort(x, 0, true, &v, &i), MT_OK, "%s", mt_last_error());
    mt_to_data(i, MT_I64, pos);
    cr_assert(pos[0] == 1 && pos[1] == 3 && pos[2] == 0 && pos[3] == 2 && pos[4] == 4);
    /* topk(2) of ties takes the first positions */
    mt_tensor *y = mt_from_data(MT_F64, MT_SHAPE(6), (double[]){ 5, 1, 5, 2, 5, 1 });
    cr_assert_eq(mt_topk(y, 2, 0, true, true, &v, &i), MT_OK, "%s", mt_last_error());
    mt_to_data(i, MT_I64, pos);
    cr_assert(pos[0] == 0 && pos[1] == 2);
    cr_assert_eq(mt_topk(y, 3, 0, false, false, &v, &i), MT_OK, "%s", mt_last_error());
    mt_to_data(i, MT_I64, pos);
    cr_assert(pos[0] == 1 && pos[1] == 5 && pos[2] == 3, "%lld %lld %lld", (long long)pos[0], (long long)pos[1], (long long)pos[2]);
}

/* The gradient goes back to the source positions; indices carry none. */
Test(ops_sort, gradient_scatters_to_sources, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_requires_grad(mt_from_data(MT_F64, MT_SHAPE(2, 3), (double[]){ 3, 1, 2, 0, 5, 4 }), true);
    mt_tensor *v, *i;
    cr_assert_eq(mt_topk(x, 2, 1, true, true, &v, &i), MT_OK, "%s", mt_last_error());
    cr_assert(v->requires_grad && !i->requires_grad && i->grad_fn == NULL);
    mt_tensor *w = mt_from_data(MT_F64, MT_SHAPE(2, 2), (double[]){ 10, 20, 30, 40 });
    cr_assert_eq(mt_backward(mt_sum_all(mt_mul(v, w))), MT_OK, "%s", mt_last_error());
    double g[6];
    mt_to_data(x->grad, MT_F64, g);
    /* row 0: top 3 (pos 0) then 2 (pos 2); row 1: 5 (pos 1) then 4 (pos 2) */
    cr_assert(g[0] == 10 && g[1] == 0 && g[2] == 20 && g[3] == 0 && g[4] == 30 && g[5] == 40,
              "%g %g %g %g %g %g", g[0], g[1], g[2], g[3], g[4], g[5]);
    /* only the values wanted, or only the indices */
    mt_tensor *only;
    cr_assert_eq(mt_sort(x, 0, false, &only, NULL), MT_OK);
    cr_assert(only && only->requires_grad);
    cr_assert_eq(mt_sort(x, 0, false, NULL, &only), MT_OK);
    cr_assert(only && only->dtype == MT_I64);
}

Test(ops_sort, errors, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(2, 3)), *v = (mt_tensor *)1, *i = (mt_tensor *)1;
    cr_assert_neq(mt_sort(x, 2, false, &v, &i), MT_OK);
    cr_assert(v == NULL && i == NULL);
    cr_assert(strstr(mt_last_error(), "sort") && strstr(mt_last_error(), "dim 2"), "%s", mt_last_error());
    cr_assert_neq(mt_topk(x, 4, 1, true, true, &v, &i), MT_OK);
    cr_assert(strstr(mt_last_error(), "topk") && strstr(mt_last_error(), "k = 4") && strstr(mt_last_error(), "[2, 3]"),
              "%s", mt_last_error());
    cr_assert_neq(mt_topk(x, -1, 1, true, true, &v, &i), MT_OK);
    cr_assert(strstr(mt_last_error(), "k must be >= 0"), "%s", mt_last_error());
    cr_assert_neq(mt_sort(x, 0, false, NULL, NULL), MT_OK);
    mt_clear_error();
    cr_assert_neq(mt_sort(NULL, 0, false, &v, &i), MT_OK);
    cr_assert(strstr(mt_last_error(), "input is NULL"), "%s", mt_last_error());
    /* empty dims sort to empty results */
    cr_assert_eq(mt_sort(mt_zeros(MT_F32, MT_SHAPE(0, 3)), 1, false, &v, &i), MT_OK, "%s", mt_last_error());
    cr_assert(v->shape[0] == 0 && i->shape[1] == 3);
    cr_assert_eq(mt_topk(mt_zeros(MT_F32, MT_SHAPE(2, 0)), 0, 1, true, true, &v, &i), MT_OK, "%s", mt_last_error());
    cr_assert(v->shape[1] == 0);
}

/* ---------------------------------------------------------------- argmax / argmin */
typedef struct arg_params { int dim; bool all; bool keepdim; bool min; } arg_params;

static void ref_arg(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const arg_params *p = c->params;
    const ref_tensor *x = &in[0];
    int dim = p->all ? 0 : (p->dim < 0 ? p->dim + x->ndim : p->dim);
    int64_t outer = 1, n = p->all ? ref_numel(x) : x->shape[dim], inner = 1;
    int64_t shape[MT_MAX_DIMS];
    int ondim = 0;
    if (!p->all) {
        for (int d = 0; d < dim; d++) outer *= x->shape[d];
        for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
        for (int d = 0; d < x->ndim; d++) {
            if (d != dim) shape[ondim++] = x->shape[d];
            else if (p->keepdim) shape[ondim++] = 1;
        }
    }
    ref_alloc(out, ondim, shape);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < n; j++) {
                double v = x->data[(o * n + j) * inner + i], b = x->data[(o * n + best) * inner + i];
                if (p->min ? v < b : v > b) best = j;   /* strictly better: the first extreme wins */
            }
            out->data[o * inner + i] = (double)best;
        }
}

static mt_tensor *run_arg(const mt_op_case *c, mt_tensor *const *in)
{
    const arg_params *p = c->params;
    if (p->all) return p->min ? mt_argmin_all(in[0]) : mt_argmax_all(in[0]);
    return p->min ? mt_argmin(in[0], p->dim, p->keepdim) : mt_argmax(in[0], p->dim, p->keepdim);
}

#define ARG_CASE(NAME, DIM, ALL, KEEP, MIN, SPEC)                                          \
    Test(ops_argmax, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const arg_params p = { DIM, ALL, KEEP, MIN };                               \
        mt_op_case c = { .name = #NAME, .n_inputs = 1, .inputs = { SPEC }, .run = run_arg, \
                         .reference = ref_arg, .params = &p, .no_grad_check = true };      \
        mt_check_op(&c);                                                                   \
    }

ARG_CASE(argmax_first_dim, 0, false, false, false, MT_SPEC(-2, 2, 5, 3, 4))
ARG_CASE(argmax_middle_dim_keepdim, 1, false, true, false, MT_SPEC(-2, 2, 3, 7, 4))
ARG_CASE(argmax_last_dim, -1, false, false, false, MT_SPEC(-2, 2, 3, 4, 9))
ARG_CASE(argmax_all_dims, 0, true, false, false, MT_SPEC(-2, 2, 3, 4, 5))
ARG_CASE(argmax_all_long, 0, true, false, false, MT_SPEC(-2, 2, 70, 150))   /* a split row on cuda */
ARG_CASE(argmin_first_dim, 0, false, false, true, MT_SPEC(-2, 2, 5, 3, 4))
ARG_CASE(argmin_middle_dim, 1, false, false, true, MT_SPEC(-2, 2, 3, 7, 4))
ARG_CASE(argmin_last_dim_keepdim, -1, false, true, true, MT_SPEC(-2, 2, 3, 4, 9))
ARG_CASE(argmin_all_dims, 0, true, false, true, MT_SPEC(-2, 2, 6, 7))

/* Ties: the first index, along a dim and flattened, on every backend; NaN wins (the first NaN). */
Test(ops_argmax, ties_take_first_index_everywhere, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device devices[] = { mt_cpu(), { MT_DEVICE_CUDA_EMU, 0 } };
    for (size_t k = 0; k < sizeof devices / sizeof devices[0]; k++) {
        if (!mt_device_available(devices[k], NULL)) continue;
        const char *dn = mt_device_name(devices[k]);
        mt_tensor *x = mt_to_device(mt_from_data(MT_F32, MT_SHAPE(2, 4), (float[]){ 1, 7, 7, 0, 7, 7, -1, -1 }), devices[k]);
        cr_assert_eq(mt_item(mt_argmax_all(x)), 1, "%s", dn);
        cr_assert_eq(mt_item(mt_argmin_all(x)), 6, "%s", dn);
        int64_t a[4];
        mt_to_data(mt_argmax(x, 1, false), MT_I64, a);
        cr_assert(a[0] == 1 && a[1] == 0, "%s: %lld %lld", dn, (long long)a[0], (long long)a[1]);
        mt_to_data(mt_argmax(x, 0, false), MT_I64, a);
        cr_assert(a[0] == 1 && a[1] == 0 && a[2] == 0 && a[3] == 0, "%s", dn);
        mt_to_data(mt_argmin(x, 1, false), MT_I64, a);
        cr_assert(a[0] == 3 && a[1] == 2, "%s", dn);
        /* transposed input: the index is into the flattening of the transposed view */
        mt_tensor *xt = mt_transpose(x, 0, 1);   /* [[1, 7], [7, 7], [7, -1], [0, -1]] */
        cr_assert_eq(mt_item(mt_argmax_all(xt)), 1, "%s", dn);
        cr_assert_eq(mt_item(mt_argmin_all(xt)), 5, "%s", dn);
        mt_tensor *n = mt_to_device(mt_from_data(MT_F64, MT_SHAPE(5), (double[]){ 1, NAN, 9, NAN, -3 }), devices[k]);
        cr_assert_eq(mt_item(mt_argmax_all(n)), 1, "%s", dn);
        cr_assert_eq(mt_item(mt_argmin_all(n)), 1, "%s", dn);
        mt_tensor *i = mt_to_device(mt_from_data(MT_I64, MT_SHAPE(3), (int64_t[]){ 4, 9, 9 }), devices[k]);
        cr_assert_eq(mt_item(mt_argmax_all(i)), 1, "%s", dn);
        mt_tensor *r = mt_argmax_all(x);
        cr_assert(r->ndim == 0 && r->dtype == MT_I64);
    }
    cr_assert_null(mt_argmax_all(mt_zeros(MT_F32, MT_SHAPE(0, 3))));
    cr_assert(strstr(mt_last_error(), "argmax") && strstr(mt_last_error(), "empty"), "%s", mt_last_error());
    cr_assert_eq(mt_item(mt_argmax_all(mt_scalar(MT_F32, 3))), 0);
}

/* Rows are sorted independently, one per thread: 1 and 2 threads give the same values and indices. */
Test(ops_sort, cpu_independent_of_thread_count, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(3);
    mt_tensor *x = mt_randint(&gen, MT_I64, MT_SHAPE(64, 1000), 0, 50);   /* ties; above the parallel grain */
    x = mt_to_dtype(x, MT_F32);
    int prev = mt_get_num_threads();
    int64_t *ia = malloc(sizeof(int64_t) * 64000), *ib = malloc(sizeof(int64_t) * 64000);
    mt_tensor *v, *i;
    mt_set_num_threads(1);
    cr_assert_eq(mt_sort(x, 1, true, &v, &i), MT_OK, "%s", mt_last_error());
    mt_to_data(i, MT_I64, ia);
    mt_set_num_threads(2);
    cr_assert_eq(mt_sort(x, 1, true, &v, &i), MT_OK, "%s", mt_last_error());
    mt_to_data(i, MT_I64, ib);
    mt_set_num_threads(prev);
    cr_assert(memcmp(ia, ib, sizeof(int64_t) * 64000) == 0, "indices differ between 1 and 2 threads");
    free(ia);
    free(ib);
}
