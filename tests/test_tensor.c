/*
 * test_tensor.c - tensor objects: creation (zeros, ones, full, arange, scalar,
 * from_data, from_blob, to_data with dtype conversion), the MT_SHAPE macro,
 * element access, printing, seeded random numbers (determinism, moments,
 * ranges, permutations), storage sharing between views, in-place copy with
 * broadcasting, step scopes and the memory they give back, and the error
 * contract (NULL + a message naming the op and shapes; NULL propagates).
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- creation */
Test(tensor, zeros_ones_full_scalar, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *z = mt_zeros(MT_F32, MT_SHAPE(2, 3));
    mt_tensor *o = mt_ones(MT_I64, MT_SHAPE(4));
    mt_tensor *f = mt_full(MT_F64, MT_SHAPE(3, 1, 2), -2.5);
    mt_tensor *s = mt_scalar(MT_I32, 7);
    cr_assert(z && o && f && s, "%s", mt_last_error());
    cr_assert(z->dtype == MT_F32 && z->ndim == 2 && z->shape[0] == 2 && z->shape[1] == 3);
    cr_assert_eq(mt_numel(z), 6);
    cr_assert_eq(mt_numel(s), 1);
    cr_assert_eq(s->ndim, 0);
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++) cr_assert_eq(mt_get(z, (int64_t[]){ i, j }), 0);
    for (int64_t i = 0; i < 4; i++) cr_assert_eq(mt_get(o, &i), 1);
    cr_assert_eq(mt_get(f, (int64_t[]){ 2, 0, 1 }), -2.5);
    cr_assert_eq(mt_item(s), 7);
    mt_tensor *zl = mt_zeros_like(f), *ol = mt_ones_like(f);
    cr_assert(mt_same_shape(zl, f) && zl->dtype == MT_F64);
    cr_assert_eq(mt_get(ol, (int64_t[]){ 1, 0, 0 }), 1);
    mt_tensor *b = mt_full(MT_BOOL, MT_SHAPE(2), 5);
    cr_assert_eq(mt_get(b, (int64_t[]){ 1 }), 1, "a bool fill stores true as 1");
    cr_assert_eq(mt_numel(mt_zeros(MT_F32, MT_SHAPE(0, 3))), 0, "empty tensors are allowed");
}

Test(tensor, arange, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *a = mt_arange(MT_I64, 0, 5, 1);
    cr_assert_eq(mt_numel(a), 5);
    for (int64_t i = 0; i < 5; i++) cr_assert_eq(mt_get(a, &i), i);
    mt_tensor *b = mt_arange(MT_F64, 1, 2, 0.25);    /* 1, 1.25, 1.5, 1.75 */
    cr_assert_eq(mt_numel(b), 4);
    cr_assert_float_eq(mt_get(b, (int64_t[]){ 3 }), 1.75, 1e-15);
    mt_tensor *c = mt_arange(MT_F32, 5, 0, -2);      /* 5, 3, 1 */
    cr_assert_eq(mt_numel(c), 3);
    cr_assert_eq(mt_get(c, (int64_t[]){ 2 }), 1);
    cr_assert_eq(mt_numel(mt_arange(MT_F32, 3, 3, 1)), 0);
    cr_assert_null(mt_arange(MT_F32, 0, 1, 0));
    cr_assert(strstr(mt_last_error(), "arange"), "%s", mt_last_error());
}

Test(tensor, from_data_and_to_data_convert, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const float values[6] = { 1.5f, -2.75f, 0, 3, -0.5f, 100 };
    mt_tensor *t = mt_from_data(MT_F32, MT_SHAPE(2, 3), values);
    cr_assert(t != NULL, "%s", mt_last_error());
    double d[6];
    cr_assert_eq(mt_to_data(t, MT_F64, d), MT_OK);
    for (int i = 0; i < 6; i++) cr_assert_eq(d[i], values[i]);
    int32_t ints[6];
    cr_assert_eq(mt_to_data(t, MT_I32, ints), MT_OK);
    int32_t truncated[6] = { 1, -2, 0, 3, 0, 100 };   /* C conversion truncates toward zero */
    for (int i = 0; i < 6; i++) cr_assert_eq(ints[i], truncated[i]);
    uint8_t flags[6];
    cr_assert_eq(mt_to_data(t, MT_BOOL, flags), MT_OK);
    uint8_t nonzero[6] = { 1, 1, 0, 1, 1, 1 };
    for (int i = 0; i < 6; i++) cr_assert_eq(flags[i], nonzero[i]);
    /* a transposed view comes out in its own row-major order */
    float tf[6];
    cr_assert_eq(mt_to_data(mt_transpose(t, 0, 1), MT_F32, tf), MT_OK);
    float expect[6] = { 1.5f, 3, -2.75f, -0.5f, 0, 100 };
    for (int i = 0; i < 6; i++) cr_assert_eq(tf[i], expect[i]);
    /* from_data copies: changing the source afterwards changes nothing */
    double src[2] = { 1, 2 };
    mt_tensor *c = mt_from_data(MT_F64, MT_SHAPE(2), src);
    src[0] = 99;
    cr_assert_eq(mt_get(c, (int64_t[]){ 0 }), 1);
    cr_assert_null(mt_from_data(MT_F64, MT_SHAPE(2), NULL));
    cr_assert_neq(mt_to_data(NULL, MT_F64, d), MT_OK);
}

Test(tensor, from_blob_borrows, .init = mt_test_setup, .fini = mt_test_teardown)
{
    double buffer[4] = { 1, 2, 3, 4 };
    mt_tensor *t = mt_from_blob(MT_F64, MT_SHAPE(2, 2), buffer);
    cr_assert(t != NULL, "%s", mt_last_error());
    cr_assert_eq(mt_data_ptr(t), (void *)buffer);
    buffer[3] = 40;
    cr_assert_eq(mt_get(t, (int64_t[]){ 1, 1 }), 40);
    mt_fill_(t, 0.5);
    cr_assert_eq(buffer[0], 0.5);
}

/* Takes a shape argument pair the way creation functions do. */
static int shape_arity(int ndim, const int64_t *shape, int64_t *product)
{
    *product = 1;
    for (int d = 0; d < ndim; d++) *product *= shape[d];
    return ndim;
}

Test(tensor, shape_macro, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int64_t product;
    cr_assert_eq(shape_arity(MT_SHAPE(7), &product), 1);
    cr_assert_eq(product, 7);
    cr_assert_eq(shape_arity(MT_SHAPE(2, 3, 4, 5), &product), 4);
    cr_assert_eq(product, 120);
    mt_tensor *t = mt_zeros(MT_F32, MT_SHAPE(1, 2, 3, 4, 5, 6, 7, 8));
    cr_assert(t && t->ndim == 8 && t->shape[7] == 8, "%s", mt_last_error());
    char s[128];
    cr_assert_str_eq(mt_shape_str(t, s, sizeof s), "[1, 2, 3, 4, 5, 6, 7, 8]");
    cr_assert_str_eq(mt_shape_str(mt_scalar(MT_F32, 0), s, sizeof s), "[]");
}

Test(tensor, item_get_size, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *t = mt_reshape(mt_arange(MT_F64, 0, 24, 1), MT_SHAPE(2, 3, 4));
    cr_assert_eq(mt_get(t, (int64_t[]){ 1, 2, 3 }), 23);
    cr_assert_eq(mt_get(t, (int64_t[]){ 0, 1, 2 }), 6);
    cr_assert(isnan(mt_get(t, (int64_t[]){ 0, 3, 0 })));
    cr_assert(strstr(mt_last_error(), "out of range"), "%s", mt_last_error());
    cr_assert_eq(mt_item(mt_reshape(mt_scalar(MT_F64, 4.25), MT_SHAPE(1, 1))), 4.25);
    cr_assert(isnan(mt_item(t)));
    cr_assert(strstr(mt_last_error(), "item") && strstr(mt_last_error(), "[2, 3, 4]"), "%s", mt_last_error());
    cr_assert(isnan(mt_item(NULL)));
    cr_assert_eq(mt_size(t, -1), 4);
    cr_assert_eq(mt_size(t, 1), 3);
    cr_assert_eq(mt_size(t, 3), -1);
    cr_assert_str_eq(mt_dtype_name(MT_I64), "i64");
    cr_assert_str_eq(mt_dtype_name(MT_BOOL), "bool");
}

/* ---------------------------------------------------------------- printing */
/* What mt_print writes for t (caller frees). */
static char *printed(const mt_tensor *t)
{
    FILE *f = tmpfile();
    cr_assert(f != NULL);
    mt_print(t, f);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)n + 1, 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

Test(tensor, print_contains_values, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *t = mt_from_data(MT_F32, MT_SHAPE(2, 3), (float[]){ 0.5f, -1.25f, 2, 3, 4, 5.75f });
    char *text = printed(t);
    cr_assert(strstr(text, "0.5000") && strstr(text, "-1.2500") && strstr(text, "5.7500"), "%s", text);
    cr_assert(strstr(text, "shape=[2, 3]") && strstr(text, "dtype=f32"), "%s", text);
    free(text);

    text = printed(mt_arange(MT_I64, 0, 100, 1));   /* long dims are elided in the middle */
    cr_assert(strstr(text, "0, 1, 2") && strstr(text, "...") && strstr(text, "97, 98, 99"), "%s", text);
    cr_assert(!strstr(text, "50"), "%s", text);
    free(text);

    mt_tensor *x = mt_requires_grad(mt_ones(MT_F64, MT_SHAPE(2)), true);
    text = printed(mt_mul(x, x));
    cr_assert(strstr(text, "grad_fn"), "%s", text);
    free(text);
    text = printed(NULL);
    cr_assert(strstr(text, "NULL"), "%s", text);
    free(text);
}

/* ---------------------------------------------------------------- random */
static bool same_values(const mt_tensor *a, const mt_tensor *b)
{
    int64_t n = mt_numel(a);
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
    mt_to_data(a, MT_F64, x);
    mt_to_data(b, MT_F64, y);
    bool same = n == mt_numel(b) && memcmp(x, y, sizeof(double) * (size_t)n) == 0;
    free(x);
    free(y);
    return same;
}

Test(tensor, random_is_seeded, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator g1 = mt_generator_new(123), g2 = mt_generator_new(123), g3 = mt_generator_new(124);
    mt_tensor *a = mt_randn(&g1, MT_F32, MT_SHAPE(64));
    mt_tensor *b = mt_randn(&g2, MT_F32, MT_SHAPE(64));
    mt_tensor *c = mt_randn(&g3, MT_F32, MT_SHAPE(64));
    cr_assert(same_values(a, b), "the same seed gives the same numbers");
    cr_assert(!same_values(a, c), "different seeds give different numbers");
    mt_tensor *a2 = mt_randn(&g1, MT_F32, MT_SHAPE(64));
    cr_assert(!same_values(a, a2), "the generator advances between draws");

    /* the default generator follows mt_manual_seed */
    mt_manual_seed(5);
    mt_tensor *d1 = mt_rand(NULL, MT_F64, MT_SHAPE(16));
    mt_manual_seed(5);
    mt_tensor *d2 = mt_rand(NULL, MT_F64, MT_SHAPE(16));
    cr_assert(same_values(d1, d2));

    /* in-place fills draw the same numbers as fresh tensors, even into a strided view */
    mt_generator g4 = mt_generator_new(9), g5 = mt_generator_new(9);
    mt_tensor *fresh = mt_uniform(&g4, MT_F64, MT_SHAPE(3, 4), -1, 1);
    mt_tensor *base = mt_zeros(MT_F64, MT_SHAPE(4, 3));
    mt_tensor *view = mt_transpose(base, 0, 1);
    cr_assert_eq(mt_uniform_(view, &g5, -1, 1), MT_OK);
    cr_assert(same_values(fresh, view));
}

Test(tensor, random_distributions, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const int64_t n = 100000;
    mt_generator gen = mt_generator_new(2024);
    mt_tensor *z = mt_randn(&gen, MT_F64, 1, &n);
    const double *p = mt_data_ptr(z);
    double sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; i++) { sum += p[i]; sum_sq += p[i] * p[i]; }
    double mean = sum / (double)n, std = sqrt(sum_sq / (double)n - mean * mean);
    cr_assert(fabs(mean) < 0.02, "randn mean %g", mean);
    cr_assert(fabs(std - 1) < 0.02, "randn std %g", std);

    mt_tensor *u = mt_rand(&gen, MT_F32, 1, &n);
    const float *q = mt_data_ptr(u);
    double usum = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_assert(q[i] >= 0 && q[i] < 1, "rand value %g outside [0, 1)", q[i]);
        usum += q[i];
    }
    cr_assert(fabs(usum / (double)n - 0.5) < 0.01, "rand mean %g", usum / (double)n);

    mt_tensor *nm = mt_normal(&gen, MT_F64, 1, &n, 3, 0.5);
    cr_assert(fabs(mt_item(mt_mean_all(nm)) - 3) < 0.01);
    cr_assert_null(mt_randn(&gen, MT_I64, MT_SHAPE(3)));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
}

Test(tensor, randint_range, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const int64_t n = 5000;
    mt_generator gen = mt_generator_new(77);
    mt_tensor *r = mt_randint(&gen, MT_I64, 1, &n, -3, 4);
    cr_assert(r && r->dtype == MT_I64, "%s", mt_last_error());
    const int64_t *p = mt_data_ptr(r);
    int seen[7] = { 0 };
    for (int64_t i = 0; i < n; i++) {
        cr_assert(p[i] >= -3 && p[i] < 4, "randint value %lld outside [-3, 4)", (long long)p[i]);
        seen[p[i] + 3]++;
    }
    for (int k = 0; k < 7; k++) cr_assert(seen[k] > 500, "value %d drawn %d times of %lld", k - 3, seen[k], (long long)n);
    /* float dtypes hold integer values too */
    mt_tensor *rf = mt_randint(&gen, MT_F32, 1, &n, 0, 10);
    cr_assert(rf != NULL, "%s", mt_last_error());
    const float *pf = mt_data_ptr(rf);
    for (int64_t i = 0; i < n; i++)
        cr_assert(pf[i] == floorf(pf[i]) && pf[i] >= 0 && pf[i] < 10, "randint f32 value %g", pf[i]);
    cr_assert_null(mt_randint(&gen, MT_I64, 1, &n, 4, 4));
    cr_assert(strstr(mt_last_error(), "randint"), "%s", mt_last_error());
}

Test(tensor, randperm_is_a_permutation, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const int64_t n = 1000;
    mt_generator gen = mt_generator_new(31);
    mt_tensor *p = mt_randperm(&gen, n);
    cr_assert(p && p->dtype == MT_I64 && mt_numel(p) == n, "%s", mt_last_error());
    const int64_t *v = mt_data_ptr(p);
    bool *seen = calloc((size_t)n, sizeof(bool));
    int64_t fixed_points = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_assert(v[i] >= 0 && v[i] < n && !seen[v[i]], "randperm value %lld repeated or out of range", (long long)v[i]);
        seen[v[i]] = true;
        fixed_points += v[i] == i;
    }
    free(seen);
    cr_assert(fixed_points < 20, "%lld fixed points: not shuffled", (long long)fixed_points);
    mt_generator again = mt_generator_new(31);
    cr_assert(same_values(p, mt_randperm(&again, n)));
    cr_assert_eq(mt_numel(mt_randperm(&gen, 0)), 0);
    cr_assert_null(mt_randperm(&gen, -1));
}

/* ---------------------------------------------------------------- views and in-place copies */
Test(tensor, write_through_a_view, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *base = mt_zeros(MT_F32, MT_SHAPE(3, 4));
    mt_tensor *col = mt_slice(base, 1, 1, 4, 2);          /* columns 1 and 3 */
    cr_assert_eq(col->storage, base->storage);
    cr_assert(!mt_is_contiguous(col));
    mt_tensor *src = mt_from_data(MT_F32, MT_SHAPE(3, 2), (float[]){ 1, 2, 3, 4, 5, 6 });
    cr_assert_eq(mt_copy_(col, src), MT_OK, "%s", mt_last_error());
    float expect[12] = { 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6 };
    float got[12];
    mt_to_data(base, MT_F32, got);
    for (int i = 0; i < 12; i++) cr_assert_eq(got[i], expect[i], "base[%d] = %g, expected %g", i, got[i], expect[i]);
    /* fill_ through a select view */
    cr_assert_eq(mt_fill_(mt_select(base, 0, 2), -1), MT_OK);
    cr_assert_eq(mt_get(base, (int64_t[]){ 2, 3 }), -1);
    cr_assert_eq(mt_get(base, (int64_t[]){ 1, 3 }), 4);
    cr_assert_eq(mt_zero_(base), MT_OK);
    cr_assert_eq(mt_item(mt_sum_all(mt_abs(base))), 0);
}

Test(tensor, is_contiguous, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *t = mt_zeros(MT_F32, MT_SHAPE(2, 3, 4));
    cr_assert(mt_is_contiguous(t));
    cr_assert(!mt_is_contiguous(mt_transpose(t, 1, 2)));
    cr_assert(mt_is_contiguous(mt_select(t, 0, 1)), "a leading select stays contiguous");
    cr_assert(!mt_is_contiguous(mt_select(t, 2, 1)));
    cr_assert(mt_is_contiguous(mt_narrow(t, 0, 1, 1)));
    cr_assert(!mt_is_contiguous(mt_expand(mt_zeros(MT_F32, MT_SHAPE(3, 1)), MT_SHAPE(3, 5))));
    cr_assert(mt_is_contiguous(mt_unsqueeze(t, 1)));
    cr_assert(mt_is_contiguous(mt_transpose(mt_zeros(MT_F32, MT_SHAPE(1, 5)), 0, 1)), "size-1 dims do not matter");
}

Test(tensor, copy_broadcasts_and_casts, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *dst = mt_zeros(MT_F64, MT_SHAPE(2, 3));
    cr_assert_eq(mt_copy_(dst, mt_from_data(MT_F32, MT_SHAPE(3), (float[]){ 1, 2, 3 })), MT_OK, "%s", mt_last_error());
    double got[6];
    mt_to_data(dst, MT_F64, got);
    double rows[6] = { 1, 2, 3, 1, 2, 3 };
    for (int i = 0; i < 6; i++) cr_assert_eq(got[i], rows[i]);
    cr_assert_eq(mt_copy_(dst, mt_from_data(MT_I64, MT_SHAPE(2, 1), (int64_t[]){ 7, -8 })), MT_OK, "%s", mt_last_error());
    mt_to_data(dst, MT_F64, got);
    double cols[6] = { 7, 7, 7, -8, -8, -8 };
    for (int i = 0; i < 6; i++) cr_assert_eq(got[i], cols[i]);
    cr_assert_eq(mt_copy_(dst, mt_scalar(MT_F64, 0.5)), MT_OK);
    cr_assert_eq(mt_get(dst, (int64_t[]){ 1, 2 }), 0.5);
    /* the source must broadcast to the destination, not the other way round */
    cr_assert_eq(mt_copy_(mt_zeros(MT_F64, MT_SHAPE(3)), dst), MT_ERR_SHAPE);
    cr_assert(strstr(mt_last_error(), "copy_") && strstr(mt_last_error(), "[2, 3]"), "%s", mt_last_error());
    cr_assert_eq(mt_copy_(dst, mt_zeros(MT_F64, MT_SHAPE(4))), MT_ERR_SHAPE);
    cr_assert_neq(mt_copy_(dst, NULL), MT_OK);
}

/* ---------------------------------------------------------------- scopes and memory */
Test(tensor, scope_end_frees_everything)
{
    size_t start = mt_device_memory_stats(mt_cpu()).allocated;
    mt_scope s = mt_scope_begin();
    mt_tensor *a = mt_ones(MT_F32, MT_SHAPE(100, 100));
    mt_tensor *x = mt_requires_grad(mt_randn(NULL, MT_F64, MT_SHAPE(50)), true);
    mt_tensor *loss = mt_sum_all(mt_mul(mt_exp(x), x));
    cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
    mt_tensor *view = mt_transpose(mt_reshape(a, MT_SHAPE(50, 200)), 0, 1);
    cr_assert(mt_contiguous(view) != NULL);
    cr_assert(mt_device_memory_stats(mt_cpu()).allocated > start);
    mt_scope_end(s);
    cr_assert_eq(mt_device_memory_stats(mt_cpu()).allocated, start, "a closed scope gives back all its memory");
}

Test(tensor, kept_tensor_survives_its_scope)
{
    size_t start = mt_device_memory_stats(mt_cpu()).allocated;
    mt_scope outer = mt_scope_begin();
    mt_scope inner = mt_scope_begin();
    mt_tensor *tmp = mt_ones(MT_F64, MT_SHAPE(64));
    mt_tensor *kept = mt_keep(mt_mul_scalar(tmp, 3));
    mt_scope_end(inner);
    cr_assert(mt_device_memory_stats(mt_cpu()).allocated > start);
    cr_assert_eq(mt_get(kept, (int64_t[]){ 63 }), 3, "a kept tensor keeps its values");
    mt_scope_end(outer);
    cr_assert_eq(mt_get(kept, (int64_t[]){ 0 }), 3, "an outer scope does not free a kept tensor either");
    mt_free(kept);
    cr_assert_eq(mt_device_memory_stats(mt_cpu()).allocated, start, "mt_free gives the kept tensor's memory back");
}

Test(tensor, nested_scopes_and_views)
{
    size_t start = mt_device_memory_stats(mt_cpu()).allocated;
    mt_scope outer = mt_scope_begin();
    mt_tensor *base = mt_zeros(MT_F32, MT_SHAPE(8));
    size_t with_base = mt_device_memory_stats(mt_cpu()).allocated;
    mt_scope inner = mt_scope_begin();
    mt_tensor *view = mt_slice(base, 0, 2, 6, 1);
    mt_fill_(view, 1);
    mt_scope_end(inner);
    cr_assert_eq(mt_device_memory_stats(mt_cpu()).allocated, with_base, "freeing a view leaves its base's storage alone");
    cr_assert_eq(mt_get(base, (int64_t[]){ 3 }), 1);
    /* a view kept out of a scope holds the storage after its base is freed */
    mt_scope third = mt_scope_begin();
    mt_tensor *b2 = mt_arange(MT_F64, 0, 10, 1);
    mt_tensor *tail = mt_keep(mt_slice(b2, 0, 7, 10, 1));
    mt_scope_end(third);
    cr_assert_eq(mt_get(tail, (int64_t[]){ 2 }), 9);
    mt_free(tail);
    mt_scope_end(outer);
    cr_assert_eq(mt_device_memory_stats(mt_cpu()).allocated, start);
    /* with no scope open, tensors belong to the caller */
    mt_tensor *owned = mt_ones(MT_F32, MT_SHAPE(4));
    cr_assert_eq(owned->scope_slot, -1);
    cr_assert(mt_device_memory_stats(mt_cpu()).allocated > start);
    mt_free(owned);
    mt_free(NULL);
    cr_assert_eq(mt_device_memory_stats(mt_cpu()).allocated, start);
}

/* ---------------------------------------------------------------- errors */
Test(tensor, errors_name_the_op_and_shapes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *a = mt_zeros(MT_F32, MT_SHAPE(3, 4)), *b = mt_zeros(MT_F32, MT_SHAPE(5));
    cr_assert_null(mt_add(a, b));
    cr_assert_eq(mt_last_status(), MT_ERR_SHAPE);
    const char *msg = mt_last_error();
    cr_assert(strstr(msg, "add") && strstr(msg, "[3, 4]") && strstr(msg, "[5]"), "%s", msg);
    cr_assert_null(mt_mul(a, mt_zeros(MT_F64, MT_SHAPE(3, 4))));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
    cr_assert(strstr(mt_last_error(), "mul") && strstr(mt_last_error(), "f64"), "%s", mt_last_error());
    cr_assert_null(mt_zeros(MT_F32, MT_SHAPE(2, -1)));
    cr_assert(strstr(mt_last_error(), "negative"), "%s", mt_last_error());
    cr_assert_null(mt_zeros(MT_F32, 9, (int64_t[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1 }));
    cr_assert_eq(mt_last_status(), MT_ERR_SHAPE);
    mt_clear_error();
    cr_assert_eq(mt_last_status(), MT_OK);
    cr_assert_str_eq(mt_last_error(), "");
}

Test(tensor, null_propagates_and_keeps_the_first_message, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *a = mt_zeros(MT_F32, MT_SHAPE(3, 4)), *b = mt_zeros(MT_F32, MT_SHAPE(5));
    mt_tensor *chain = mt_sum_all(mt_exp(mt_mul_scalar(mt_add(a, b), 2)));
    cr_assert_null(chain);
    cr_assert(strstr(mt_last_error(), "add") && strstr(mt_last_error(), "[3, 4]"), "the first failure's message survives: %s",
              mt_last_error());
    cr_assert_null(mt_matmul(NULL, a));
    cr_assert_null(mt_reshape(NULL, MT_SHAPE(2)));
    cr_assert_null(mt_softmax(NULL, 0));
    cr_assert_null(mt_concat(2, (mt_tensor *[]){ a, NULL }, 0));
    cr_assert(strstr(mt_last_error(), "add"), "%s", mt_last_error());
    /* a NULL with no earlier error records one */
    mt_clear_error();
    cr_assert_null(mt_exp(NULL));
    cr_assert(strstr(mt_last_error(), "exp") && strstr(mt_last_error(), "NULL"), "%s", mt_last_error());
}

Test(tensor, wrong_dtype, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *idx = mt_arange(MT_I64, 0, 4, 1);
    cr_assert_null(mt_exp(idx));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
    cr_assert(strstr(mt_last_error(), "exp") && strstr(mt_last_error(), "i64"), "%s", mt_last_error());
    cr_assert_null(mt_div(idx, idx));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
    cr_assert_null(mt_softmax(idx, 0));
    cr_assert_eq(mt_last_status(), MT_ERR_DTYPE);
    /* integer arithmetic that makes sense works */
    mt_tensor *twice = mt_add(idx, idx);
    cr_assert(twice && twice->dtype == MT_I64, "%s", mt_last_error());
    cr_assert_eq(mt_get(twice, (int64_t[]){ 3 }), 6);
}

/* torch.get_rng_state / set_rng_state: restoring the default generator's
   state repeats its draws, dropout masks included. */
Test(tensor, rng_state_save_and_restore, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_manual_seed(42);
    mt_tensor *warm = mt_rand(NULL, MT_F32, 1, (int64_t[]){ 5 });
    cr_assert_not_null(warm);
    mt_generator saved = mt_get_rng_state();
    cr_assert_eq(saved.seed, 42u);
    cr_assert_gt(saved.offset, 0u, "draws advance the offset");
    mt_tensor *x = mt_ones(MT_F32, 1, (int64_t[]){ 64 });
    mt_tensor *a = mt_randn(NULL, MT_F64, 1, (int64_t[]){ 7 });
    mt_tensor *da = mt_dropout(x, 0.5, true, NULL);
    mt_manual_seed(7);   /* something else in between */
    mt_tensor *other = mt_rand(NULL, MT_F32, 1, (int64_t[]){ 3 });
    mt_set_rng_state(saved);
    mt_tensor *b = mt_randn(NULL, MT_F64, 1, (int64_t[]){ 7 });
    mt_tensor *db = mt_dropout(x, 0.5, true, NULL);
    cr_assert(a && b && da && db && other);
    for (int64_t i = 0; i < 7; i++) cr_assert_eq(mt_get(a, &i), mt_get(b, &i), "element %lld", (long long)i);
    for (int64_t i = 0; i < 64; i++) cr_assert_eq(mt_get(da, &i), mt_get(db, &i), "mask element %lld", (long long)i);
    mt_generator now = mt_get_rng_state();
    cr_assert(now.seed == 42 && now.offset > saved.offset);
}
