/*
 * test_shape_limits.c - shapes too large to exist. Every constructor (empty,
 * zeros, ones, full, from_data, from_blob, empty_on, arange, rand*, randperm)
 * and every view op (reshape, view, expand) and broadcast checks the product
 * of the dims, that of the nonzero dims (the strides), and the byte count
 * with one helper (mt_shape_check): an overflow is MT_ERR_SHAPE naming the
 * function and the shape, never a short buffer or a wrapped element count.
 * Found by abuse tests: mt_empty(MT_F32, MT_SHAPE(1LL << 62)) used to give
 * a 0-byte buffer that mt_full then filled. Values given to an integer
 * dtype (full, fill_, arange) must fit it too.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

#define BIG (1LL << 62)

/* The call failed with code and a message holding each of the words. */
static void assert_refused(const void *result, mt_status code, const char *op, const char *shape)
{
    cr_assert_null(result, "%s with shape %s: accepted", op, shape);
    cr_assert_eq(mt_last_status(), code, "%s %s: status %d, expected %d (%s)", op, shape, mt_last_status(), code,
                 mt_last_error());
    cr_assert(strncmp(mt_last_error(), op, strlen(op)) == 0 && mt_last_error()[strlen(op)] == ':',
              "the message names the function %s: %s", op, mt_last_error());
    cr_assert(strstr(mt_last_error(), shape), "the message gives the shape %s: %s", shape, mt_last_error());
}

Test(shape_limits, element_and_byte_counts_that_overflow, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* 2^62 f32: 2^64 bytes */
    assert_refused(mt_empty(MT_F32, MT_SHAPE(BIG)), MT_ERR_SHAPE, "empty", "[4611686018427387904]");
    assert_refused(mt_full(MT_F32, MT_SHAPE(BIG), 1), MT_ERR_SHAPE, "full", "[4611686018427387904]");
    /* 2^31 x 2^31 f32: 2^62 elements fit int64, their bytes do not */
    assert_refused(mt_zeros(MT_F32, MT_SHAPE(1LL << 31, 1LL << 31)), MT_ERR_SHAPE, "zeros", "[2147483648, 2147483648]");
    /* 2^32 x 2^32: the element count itself wraps (to 0 before the fix) */
    assert_refused(mt_ones(MT_U8, MT_SHAPE(1LL << 32, 1LL << 32)), MT_ERR_SHAPE, "ones", "[4294967296, 4294967296]");
    assert_refused(mt_empty_on(mt_cpu(), MT_U8, MT_SHAPE(1LL << 32, 1LL << 32)), MT_ERR_SHAPE, "empty_on",
                   "[4294967296, 4294967296]");
    /* three dims whose product wraps to a small number: 2^22 * 2^22 * 2^22 = 2^66 */
    assert_refused(mt_empty(MT_U8, MT_SHAPE(1LL << 22, 1LL << 22, 1LL << 22)), MT_ERR_SHAPE, "empty",
                   "[4194304, 4194304, 4194304]");
    /* a 0 dim does not excuse the others: the strides are their product */
    assert_refused(mt_empty(MT_F32, MT_SHAPE(0, 1LL << 32, 1LL << 32)), MT_ERR_SHAPE, "empty", "[0, 4294967296, 4294967296]");
    assert_refused(mt_empty(MT_F64, MT_SHAPE(1LL << 61, 0)), MT_ERR_SHAPE, "empty", "[2305843009213693952, 0]");
    float one = 1;
    assert_refused(mt_from_data(MT_F32, MT_SHAPE(BIG), &one), MT_ERR_SHAPE, "from_data", "[4611686018427387904]");
    assert_refused(mt_from_blob(MT_F32, MT_SHAPE(1LL << 31, 1LL << 31), &one), MT_ERR_SHAPE, "from_blob",
                   "[2147483648, 2147483648]");
    assert_refused(mt_rand(NULL, MT_F32, MT_SHAPE(BIG)), MT_ERR_SHAPE, "rand", "[4611686018427387904]");
    assert_refused(mt_randn(NULL, MT_F64, MT_SHAPE(1LL << 32, 1LL << 32)), MT_ERR_SHAPE, "randn", "[4294967296, 4294967296]");
    assert_refused(mt_randint(NULL, MT_F32, MT_SHAPE(BIG), 0, 3), MT_ERR_SHAPE, "randint", "[4611686018427387904]");
    assert_refused(mt_randperm(NULL, BIG), MT_ERR_SHAPE, "randperm", "[4611686018427387904]");
}

Test(shape_limits, negative_dims_everywhere, .init = mt_test_setup, .fini = mt_test_teardown)
{
    float v[4] = { 0 };
    assert_refused(mt_empty(MT_F32, MT_SHAPE(2, -3)), MT_ERR_SHAPE, "empty", "[2, -3]");
    assert_refused(mt_zeros(MT_F32, MT_SHAPE(-1)), MT_ERR_SHAPE, "zeros", "[-1]");
    assert_refused(mt_from_data(MT_F32, MT_SHAPE(-4), v), MT_ERR_SHAPE, "from_data", "[-4]");
    assert_refused(mt_from_blob(MT_F32, MT_SHAPE(2, -2), v), MT_ERR_SHAPE, "from_blob", "[2, -2]");
    assert_refused(mt_empty(MT_F32, MT_SHAPE(INT64_MIN)), MT_ERR_SHAPE, "empty", "[-9223372036854775808]");
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(1, 4));
    cr_assert_not_null(x);
    /* expand: -1 keeps a dim; any other negative size is refused, even for a size-1 dim */
    assert_refused(mt_expand(x, MT_SHAPE(-5, 4)), MT_ERR_SHAPE, "expand", "[-5, 4]");
    assert_refused(mt_reshape(x, MT_SHAPE(-2, -2)), MT_ERR_SHAPE, "reshape", "-2");
}

Test(shape_limits, arange_with_huge_counts, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* 1e19 elements: more than int64 counts (the cast was undefined behaviour) */
    assert_refused(mt_arange(MT_F64, 0, 1e19, 1), MT_ERR_SHAPE, "arange", "1e+19");
    /* end - start overflows to inf */
    cr_assert_null(mt_arange(MT_F64, -1.5e308, 1.5e308, 1e-300));
    cr_assert_eq(mt_last_status(), MT_ERR_SHAPE, "%s", mt_last_error());
    /* 2^62 elements fit int64 but not a storage */
    assert_refused(mt_arange(MT_F32, 0, 0x1p62, 1), MT_ERR_SHAPE, "arange", "[4611686018427387904]");
    /* an ordinary arange still works */
    mt_tensor *a = mt_arange(MT_F32, 0, 5, 1);
    cr_assert(a && mt_numel(a) == 5, "%s", mt_last_error());
}

Test(shape_limits, views_of_huge_shapes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(1, 1)), *e = mt_zeros(MT_F32, MT_SHAPE(0));
    cr_assert(x && e);
    /* an expanded view allocates nothing, but its element count must still be exact */
    assert_refused(mt_expand(x, MT_SHAPE(1LL << 32, 1LL << 32)), MT_ERR_SHAPE, "expand", "[4294967296, 4294967296]");
    assert_refused(mt_expand(x, MT_SHAPE(3, BIG, BIG)), MT_ERR_SHAPE, "expand", "[3, 4611686018427387904");
    /* an expand to 2^40 x 2^20 is a valid view (2^60 elements of 0 bytes each) */
    mt_tensor *wide = mt_expand(x, MT_SHAPE(1LL << 40, 1LL << 20));
    cr_assert(wide, "%s", mt_last_error());
    cr_assert_eq(mt_numel(wide), 1LL << 60);
    /* 0 elements reshaped into a shape whose product wraps to 0 (2^32 * 2^32) */
    assert_refused(mt_reshape(e, MT_SHAPE(1LL << 32, 1LL << 32)), MT_ERR_SHAPE, "reshape", "[4294967296, 4294967296]");
    assert_refused(mt_view(e, MT_SHAPE(0, BIG, BIG)), MT_ERR_SHAPE, "view", "[0, 4611686018427387904, 4611686018427387904]");
    assert_refused(mt_reshape(e, MT_SHAPE(-1, 1LL << 32, 1LL << 32)), MT_ERR_SHAPE, "reshape", "[1, 4294967296, 4294967296]");
    /* two valid tensors whose broadcast shape has 2^80 elements */
    mt_tensor *a = mt_expand(x, MT_SHAPE(1LL << 40, 1)), *b = mt_expand(x, MT_SHAPE(1, 1LL << 40));
    cr_assert(a && b, "%s", mt_last_error());
    assert_refused(mt_add(a, b), MT_ERR_SHAPE, "add", "[1099511627776, 1099511627776]");
    /* copy_ broadcasts its source to the destination the same way */
    cr_assert_eq(mt_copy_(a, b), MT_ERR_SHAPE, "copy_ of shapes broadcasting to 2^80 elements: %s", mt_last_error());
}

Test(shape_limits, large_but_valid_shapes_still_work, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* the limit is exact: the largest dims that fit are not refused by the check
       (they fail at allocation, with MT_ERR_MEMORY naming the function and shape) */
    mt_tensor *t = mt_empty(MT_U8, MT_SHAPE(1LL << 62));
    cr_assert_null(t);
    cr_assert_eq(mt_last_status(), MT_ERR_MEMORY, "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), "empty: cannot allocate a u8 tensor of shape [4611686018427387904]"),
              "%s", mt_last_error());
    /* 0-element tensors with big nonzero dims that fit are fine */
    mt_tensor *z = mt_zeros(MT_F32, MT_SHAPE(0, 1LL << 30, 1LL << 30));
    cr_assert(z, "%s", mt_last_error());
    cr_assert_eq(mt_numel(z), 0);
    cr_assert_eq(z->stride[0], 1LL << 60);
    int64_t big = INT64_MAX;
    cr_assert_null(mt_empty(MT_U8, 1, &big));
    cr_assert_eq(mt_last_status(), MT_ERR_MEMORY, "INT64_MAX bytes pass the check and fail to allocate: %s", mt_last_error());
    cr_assert_null(mt_empty(MT_I32, 1, &big));
    cr_assert_eq(mt_last_status(), MT_ERR_SHAPE, "%s", mt_last_error());
}

/* The same for values: a double outside an integer dtype's range has no
   conversion (C leaves it undefined; PyTorch refuses it). Fractions truncate. */
Test(shape_limits, integer_fill_values_out_of_range, .init = mt_test_setup, .fini = mt_test_teardown)
{
    cr_assert_null(mt_full(MT_I64, MT_SHAPE(2), 0x1p63));
    cr_assert(strstr(mt_last_error(), "full: value 9.2233720368547758e+18 cannot be converted to i64 without overflow"),
              "%s", mt_last_error());
    cr_assert_null(mt_full(MT_I32, MT_SHAPE(2), NAN));
    cr_assert_eq(mt_last_status(), MT_ERR_ARGUMENT);
    cr_assert_null(mt_full(MT_U8, MT_SHAPE(2), 256));
    cr_assert_null(mt_full(MT_U8, MT_SHAPE(2), -1));
    cr_assert_null(mt_full(MT_I32, MT_SHAPE(2), 2147483648.0));
    cr_assert_null(mt_arange(MT_I32, 0, 4e9, 1e9));
    cr_assert(strstr(mt_last_error(), "arange: value 3000000000 cannot"), "the last element is checked: %s", mt_last_error());
    mt_tensor *t = mt_zeros(MT_I64, MT_SHAPE(2));
    cr_assert_eq(mt_fill_(t, INFINITY), MT_ERR_ARGUMENT);
    cr_assert_eq(mt_get(t, (int64_t[]){ 0 }), 0, "a refused fill changes nothing");
    /* the edges that fit */
    cr_assert_eq(mt_get(mt_full(MT_I64, MT_SHAPE(1), -0x1p63), (int64_t[]){ 0 }), -0x1p63);
    cr_assert_eq(mt_get(mt_full(MT_I32, MT_SHAPE(1), -2147483648.9), (int64_t[]){ 0 }), -2147483648.0);
    cr_assert_eq(mt_get(mt_full(MT_U8, MT_SHAPE(1), 255.5), (int64_t[]){ 0 }), 255);
    cr_assert_eq(mt_get(mt_full(MT_BOOL, MT_SHAPE(1), 1e300), (int64_t[]){ 0 }), 1);
    cr_assert_eq(mt_fill_(t, 2.9), MT_OK);
    cr_assert_eq(mt_get(t, (int64_t[]){ 1 }), 2);
}
