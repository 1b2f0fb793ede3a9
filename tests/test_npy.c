/*
 * test_npy.c - NumPy .npy files and .npz archives (include/mytorch/npy.h).
 *
 *   (a) the files NumPy wrote (tests/fixtures/npy, made by
 *       tests/fixtures/make_npy_fixtures.py) load with the right dtype, shape
 *       and values: every dtype, both byte orders, Fortran order, 0-d and
 *       empty arrays, header versions 2.0 and 3.0, unicode and byte strings;
 *   (b) mt_npy_save and mt_npy_save_strings write np.save's bytes exactly;
 *   (c) round trips through mt_npy_save and mt_npz_save (views, every dtype,
 *       0-d and empty, stored and deflated archives);
 *   (d) corrupt files (every truncation, flipped bytes, hand-made bad
 *       headers) fail with a message naming the file and the problem, never
 *       crash, and allocate nothing;
 *   (e) writes are atomic: a failed save leaves the old file and no temporary;
 *   (f) the course split folder example of docs/npy.md.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ================================================================ helpers */

/* A fresh folder for each test's files, removed afterwards. */
static char tmp_dir[64];

static void npy_setup(void)
{
    mt_test_setup();
    mt_test_temp_dir(tmp_dir, sizeof tmp_dir, "npy");
}

static void npy_teardown(void)
{
    mt_test_remove_tree(tmp_dir);
    mt_test_teardown();
}

/* tmp_dir/name (a rotating set of buffers, so several can be live at once). */
static const char *tmp_path(const char *name) { return mt_test_path(tmp_dir, name); }

/* tests/fixtures/npy/name: MT_FIXTURES_DIR/npy, else next to this source file. */
static const char *fixture(const char *name)
{
    static char bufs[4][1024];
    static int k;
    char *b = bufs[k++ % 4];
    const char *dir = getenv("MT_FIXTURES_DIR");
    if (dir) snprintf(b, 1024, "%.700s/npy/%.200s", dir, name);
    else {
        const char *file = __FILE__, *slash = strrchr(file, '/');
        int len = slash ? (int)(slash - file) : 1;
        snprintf(b, 1024, "%.*s/fixtures/npy/%.200s", len > 700 ? 700 : len, slash ? file : ".", name);
    }
    return b;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void assert_file_equal(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
    size_t i = 0;
    while (i < na && i < nb && x[i] == y[i]) i++;
    cr_expect(na == nb && i == na, "%s and %s differ (sizes %zu and %zu, first difference at byte %zu)", a, b, na,
              nb, i);
    free(x);
    free(y);
}

/* Whether tmp_dir holds a leftover temporary file ("*.tmp.*"). */
static bool temp_file_left(void)
{
    DIR *d = opendir(tmp_dir);
    cr_assert_not_null(d);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) found = true;
    closedir(d);
    return found;
}

static size_t cpu_allocated(void) { return mt_device_memory_stats(mt_cpu()).allocated; }

static void expect_shape(const mt_tensor *t, int ndim, const int64_t *shape, const char *what)
{
    cr_assert_not_null(t, "%s: %s", what, mt_last_error());
    cr_assert_eq(t->ndim, ndim, "%s: ndim %d, expected %d", what, t->ndim, ndim);
    for (int d = 0; d < ndim; d++) cr_expect_eq(t->shape[d], shape[d], "%s: dim %d", what, d);
    cr_expect(mt_is_contiguous(t), "%s: not contiguous", what);
    cr_expect_eq(mt_device_of(t).type, MT_DEVICE_CPU, "%s: not on the CPU", what);
}

/* The n values of a numeric tensor's elements as doubles (contiguous CPU). */
static double value_at(const mt_tensor *t, int64_t i)
{
    const void *p = mt_data_ptr(t);
    switch (t->dtype) {
    case MT_F32: return ((const float *)p)[i];
    case MT_F64: return ((const double *)p)[i];
    case MT_I32: return ((const int32_t *)p)[i];
    case MT_I64: return (double)((const int64_t *)p)[i];
    case MT_U8: case MT_BOOL: return ((const uint8_t *)p)[i];
    default: return NAN;
    }
}

/* Loads fixture name and checks dtype, shape and every value. */
static void check_fixture(const char *name, mt_dtype dtype, int ndim, const int64_t *shape, const double *want)
{
    mt_tensor *t = mt_npy_load(fixture(name));
    expect_shape(t, ndim, shape, name);
    cr_assert_eq(t->dtype, dtype, "%s: dtype %s, expected %s", name, mt_dtype_name(t->dtype), mt_dtype_name(dtype));
    for (int64_t i = 0; i < mt_numel(t); i++)
        cr_expect(value_at(t, i) == want[i] || (isnan(want[i]) && isnan(value_at(t, i))),
                  "%s: element %lld is %.17g, expected %.17g", name, (long long)i, value_at(t, i), want[i]);
}

/* signed(i) of make_npy_fixtures.py: (-1)^i * i * 3 */
static double signed_value(int64_t i) { return (i % 2 ? -1.0 : 1.0) * (double)i * 3; }

static void expect_error(mt_status got, mt_status want, const char *needle, const char *what)
{
    cr_expect_eq(got, want, "%s: status %d, expected %d (%s)", what, (int)got, (int)want, mt_last_error());
    if (needle)
        cr_expect(strstr(mt_last_error(), needle) != NULL, "%s: message \"%s\" does not mention \"%s\"", what,
                  mt_last_error(), needle);
}

static const char *const transcript[] = { "[SOS]", "HH", "AH", "L", "OW", "[EOS]" };
static const char *const non_ascii[] = { "\xc3\xa9", "\xc5\x8b", "\xca\x83\xc9\x99", "\xe6\x97\xa5\xe6\x9c\xac",
                                         "\xf0\x9f\x98\x80x", "" };

static void expect_strings(const mt_string_array *a, int64_t n, const char *const *want, const char *what)
{
    cr_assert_eq(a->n, n, "%s: %lld strings, expected %lld", what, (long long)a->n, (long long)n);
    for (int64_t i = 0; i < n; i++)
        cr_expect_str_eq(a->strings[i], want[i], "%s: string %lld", what, (long long)i);
}

/* ================================================================ (a) reading NumPy's files */

Test(npy, reads_every_numeric_dtype, .init = npy_setup, .fini = npy_teardown)
{
    double f4[12], f8[12], i4[12], i8[12], u1[12], b1[12];
    for (int i = 0; i < 12; i++) {
        f4[i] = i * 0.5 - 2;
        f8[i] = i / 3.0;
        i4[i] = signed_value(i);
        i8[i] = signed_value(i) * 1000000007.0 * 1000;
        u1[i] = i * 21;
        b1[i] = i % 3 == 0;
    }
    const int64_t shape[2] = { 3, 4 };
    check_fixture("f4.npy", MT_F32, 2, shape, f4);
    check_fixture("f8.npy", MT_F64, 2, shape, f8);
    check_fixture("i4.npy", MT_I32, 2, shape, i4);
    check_fixture("i8.npy", MT_I64, 2, shape, i8);
    check_fixture("u1.npy", MT_U8, 2, shape, u1);
    check_fixture("b1.npy", MT_BOOL, 2, shape, b1);
}

Test(npy, widens_the_dtypes_mytorch_lacks, .init = npy_setup, .fini = npy_teardown)
{
    check_fixture("i1.npy", MT_I32, 1, (int64_t[]){ 5 }, (double[]){ -128, -1, 0, 1, 127 });
    check_fixture("i2.npy", MT_I32, 1, (int64_t[]){ 5 }, (double[]){ -32768, -300, 0, 300, 32767 });
    check_fixture("u2.npy", MT_I32, 1, (int64_t[]){ 4 }, (double[]){ 0, 1, 300, 65535 });
    check_fixture("u4.npy", MT_I64, 1, (int64_t[]){ 4 }, (double[]){ 0, 1, 2147483648.0, 4294967295.0 });
    check_fixture("f2.npy", MT_F32, 1, (int64_t[]){ 7 },
                  (double[]){ 0.0, -0.0, 1.5, -2.25, 65504.0, ldexp(1, -24), INFINITY });
    mt_tensor *neg0 = mt_npy_load(fixture("f2.npy"));
    cr_expect(signbit(((float *)mt_data_ptr(neg0))[1]), "f2 -0.0 lost its sign");

    /* u8 -> I64, exactly (2^63 - 1 is not a double) */
    mt_tensor *u8 = mt_npy_load(fixture("u8.npy"));
    expect_shape(u8, 1, (int64_t[]){ 4 }, "u8.npy");
    cr_assert_eq(u8->dtype, MT_I64);
    const int64_t *v = mt_data_ptr(u8);
    cr_expect(v[0] == 0 && v[1] == 1 && v[2] == ((int64_t)1 << 40) && v[3] == INT64_MAX);

    size_t before = cpu_allocated();
    cr_expect_null(mt_npy_load(fixture("u8_too_big.npy")));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "does not fit int64", "u8 above INT64_MAX");
    cr_expect(strstr(mt_last_error(), "u8_too_big.npy") != NULL, "%s", mt_last_error());
    cr_expect_eq(cpu_allocated(), before, "a failed load left memory allocated");
}

Test(npy, reads_big_endian, .init = npy_setup, .fini = npy_teardown)
{
    double f4[12], f8[6], i4[6], i8[6];
    for (int i = 0; i < 12; i++) f4[i] = i * 0.5 - 2;
    for (int i = 0; i < 6; i++) {
        f8[i] = i / 3.0;
        i4[i] = signed_value(i);
        i8[i] = signed_value(i) * 1e12;
    }
    check_fixture("be_f4.npy", MT_F32, 2, (int64_t[]){ 3, 4 }, f4);
    check_fixture("be_f8.npy", MT_F64, 1, (int64_t[]){ 6 }, f8);
    check_fixture("be_i4.npy", MT_I32, 1, (int64_t[]){ 6 }, i4);
    check_fixture("be_i8.npy", MT_I64, 1, (int64_t[]){ 6 }, i8);
    check_fixture("be_i2.npy", MT_I32, 1, (int64_t[]){ 5 }, (double[]){ -32768, -300, 0, 300, 32767 });
    check_fixture("be_u4.npy", MT_I64, 1, (int64_t[]){ 4 }, (double[]){ 0, 1, 2147483648.0, 4294967295.0 });
}

Test(npy, reads_fortran_order, .init = npy_setup, .fini = npy_teardown)
{
    double f4[12], i4[24], f8[6];
    for (int i = 0; i < 12; i++) f4[i] = i * 0.5 - 2;
    for (int i = 0; i < 24; i++) i4[i] = i;   /* C order values: the transpose is undone */
    for (int i = 0; i < 6; i++) f8[i] = i / 3.0;
    check_fixture("fortran_f4.npy", MT_F32, 2, (int64_t[]){ 3, 4 }, f4);
    check_fixture("fortran_i4_3d.npy", MT_I32, 3, (int64_t[]){ 2, 3, 4 }, i4);
    check_fixture("fortran_be_f8.npy", MT_F64, 2, (int64_t[]){ 2, 3 }, f8);
}

Test(npy, reads_0d_and_empty, .init = npy_setup, .fini = npy_teardown)
{
    check_fixture("scalar_f8.npy", MT_F64, 0, NULL, (double[]){ 2.5 });
    check_fixture("scalar_i8.npy", MT_I64, 0, NULL, (double[]){ -7 });
    check_fixture("empty_f4.npy", MT_F32, 2, (int64_t[]){ 0, 5 }, NULL);
    check_fixture("empty_i8.npy", MT_I64, 1, (int64_t[]){ 0 }, NULL);
    mt_tensor *s = mt_npy_load(fixture("scalar_f8.npy"));
    cr_expect_eq(mt_item(s), 2.5);
}

Test(npy, reads_versions_2_and_3, .init = npy_setup, .fini = npy_teardown)
{
    double f4[12];
    for (int i = 0; i < 12; i++) f4[i] = i * 0.5 - 2;
    check_fixture("v2_f4.npy", MT_F32, 2, (int64_t[]){ 3, 4 }, f4);
    check_fixture("v3_f4.npy", MT_F32, 2, (int64_t[]){ 3, 4 }, f4);
}

Test(npy, reads_from_memory, .init = npy_setup, .fini = npy_teardown)
{
    size_t n;
    unsigned char *bytes = read_all(fixture("mfcc.npy"), &n);
    mt_tensor *t = mt_npy_load_buffer(bytes, n, "mfcc.npy");
    expect_shape(t, 2, (int64_t[]){ 7, 13 }, "mfcc from memory");
    cr_assert_eq(t->dtype, MT_F32);
    for (int i = 0; i < 7 * 13; i++) cr_expect_eq(value_at(t, i), i / 8.0 - 5);
    cr_expect_null(mt_npy_load_buffer(bytes, n - 1, "cut.npy"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "npy: cut.npy: truncated data", "buffer cut short");
    cr_expect_null(mt_npy_load_buffer(bytes, 3, NULL));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "npy: <memory>: truncated", "3 bytes");
    cr_expect_null(mt_npy_load_buffer(NULL, 0, NULL));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "truncated", "no bytes");
    cr_expect_null(mt_npy_load_buffer(NULL, 10, NULL));
    expect_error(mt_last_status(), MT_ERR_ARGUMENT, "NULL", "NULL buffer");

    mt_string_array a;
    size_t m;
    unsigned char *text = read_all(fixture("transcript_U.npy"), &m);
    cr_assert_eq(mt_npy_load_strings_buffer(text, m, "t.npy", &a), MT_OK, "%s", mt_last_error());
    expect_strings(&a, 6, transcript, "transcript from memory");
    mt_string_array_free(&a);
    cr_expect_null(a.strings);
    mt_string_array_free(&a);   /* twice is harmless */
    mt_string_array_free(NULL);
    free(text);
    free(bytes);
}

Test(npy, reads_transcripts, .init = npy_setup, .fini = npy_teardown)
{
    static const char *const files[] = { "transcript_U.npy", "transcript_S.npy", "transcript_be_U.npy" };
    for (int k = 0; k < 3; k++) {
        mt_string_array a;
        cr_assert_eq(mt_npy_load_strings(fixture(files[k]), &a), MT_OK, "%s", mt_last_error());
        cr_expect_eq(a.ndim, 1);
        cr_expect_eq(a.shape[0], 6);
        expect_strings(&a, 6, transcript, files[k]);
        mt_string_array_free(&a);
    }
}

Test(npy, reads_non_ascii_strings, .init = npy_setup, .fini = npy_teardown)
{
    static const char *const files[] = { "nonascii_U.npy", "nonascii_S.npy" };
    for (int k = 0; k < 2; k++) {
        mt_string_array a;
        cr_assert_eq(mt_npy_load_strings(fixture(files[k]), &a), MT_OK, "%s", mt_last_error());
        expect_strings(&a, 6, non_ascii, files[k]);
        mt_string_array_free(&a);
    }
}

Test(npy, reads_string_shapes, .init = npy_setup, .fini = npy_teardown)
{
    mt_string_array a;
    cr_assert_eq(mt_npy_load_strings(fixture("strings_2d_fortran.npy"), &a), MT_OK, "%s", mt_last_error());
    cr_expect_eq(a.ndim, 2);
    cr_expect(a.shape[0] == 2 && a.shape[1] == 3);
    expect_strings(&a, 6, (const char *const[]){ "a", "bb", "ccc", "dd", "e", "" }, "2-d Fortran strings");
    mt_string_array_free(&a);

    cr_assert_eq(mt_npy_load_strings(fixture("strings_empty.npy"), &a), MT_OK, "%s", mt_last_error());
    cr_expect(a.n == 0 && a.ndim == 1 && a.shape[0] == 0 && a.strings != NULL);
    mt_string_array_free(&a);
}

Test(npy, refuses_what_it_cannot_read, .init = npy_setup, .fini = npy_teardown)
{
    size_t before = cpu_allocated();
    cr_expect_null(mt_npy_load(fixture("object.npy")));
    expect_error(mt_last_status(), MT_ERR_DTYPE, "object array", "object array");
    cr_expect(strstr(mt_last_error(), "pickled") && strstr(mt_last_error(), "object.npy"), "%s", mt_last_error());
    mt_string_array a = { .n = 77 };
    expect_error(mt_npy_load_strings(fixture("object.npy"), &a), MT_ERR_DTYPE, "pickled", "object array as strings");
    cr_expect_eq(a.n, 77, "the output was touched");

    cr_expect_null(mt_npy_load(fixture("structured.npy")));
    expect_error(mt_last_status(), MT_ERR_DTYPE, "structured dtype", "structured");
    cr_expect_null(mt_npy_load(fixture("complex.npy")));
    expect_error(mt_last_status(), MT_ERR_DTYPE, "complex", "complex");

    /* the wrong call for the kind */
    cr_expect_null(mt_npy_load(fixture("transcript_U.npy")));
    expect_error(mt_last_status(), MT_ERR_DTYPE, "mt_npy_load_strings", "strings as numbers");
    expect_error(mt_npy_load_strings(fixture("f4.npy"), &a), MT_ERR_DTYPE, "mt_npy_load", "numbers as strings");
    cr_expect_eq(a.n, 77);

    /* a NUL inside a byte string */
    expect_error(mt_npy_load_strings(fixture("strings_interior_nul.npy"), &a), MT_ERR_FORMAT, "string 0 (in C order) has a NUL",
                 "interior NUL");
    cr_expect_eq(a.n, 77);

    /* files and arguments */
    cr_expect_null(mt_npy_load(fixture("stored.npz")));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "a zip archive, not a .npy file (a .npz? read it with mt_npz_open)",
                 "a .npz as a .npy");
    cr_expect_null(mt_npy_load(tmp_path("missing.npy")));
    expect_error(mt_last_status(), MT_ERR_IO, "cannot open", "missing file");
    cr_expect_null(mt_npy_load(tmp_dir));
    expect_error(mt_last_status(), MT_ERR_IO, "not a regular file", "a folder");
    cr_expect_null(mt_npy_load(NULL));
    expect_error(mt_last_status(), MT_ERR_ARGUMENT, "path is NULL", "NULL path");
    expect_error(mt_npy_load_strings(fixture("transcript_U.npy"), NULL), MT_ERR_ARGUMENT, "NULL", "NULL output");
    cr_expect_eq(cpu_allocated(), before, "failed loads left memory allocated");
}

/* ================================================================ (b) np.save's bytes */

/* Saves t as name in tmp_dir and compares with the fixture of the same name. */
static void expect_numpy_bytes(const mt_tensor *t, const char *name)
{
    cr_assert_not_null(t, "%s: %s", name, mt_last_error());
    cr_assert_eq(mt_npy_save(tmp_path(name), t), MT_OK, "%s: %s", name, mt_last_error());
    assert_file_equal(tmp_path(name), fixture(name));
}

Test(npy, writes_numpy_bytes, .init = npy_setup, .fini = npy_teardown)
{
    mt_tensor *f4 = mt_sub(mt_mul(mt_arange(MT_F32, 0, 12, 1), mt_scalar(MT_F32, 0.5)), mt_scalar(MT_F32, 2));
    expect_numpy_bytes(mt_reshape(f4, MT_SHAPE(3, 4)), "np_f4.npy");
    mt_tensor *f8 = mt_div(mt_arange(MT_F64, 0, 24, 1), mt_scalar(MT_F64, 4));
    expect_numpy_bytes(mt_reshape(f8, MT_SHAPE(2, 3, 4)), "np_f8_3d.npy");
    int64_t i8[10];
    for (int i = 0; i < 10; i++) i8[i] = (int64_t)signed_value(i);
    expect_numpy_bytes(mt_from_data(MT_I64, MT_SHAPE(10), i8), "np_i8_1d.npy");
    expect_numpy_bytes(mt_zeros(MT_I32, MT_SHAPE(123456789012, 0)), "np_i4_big_dim.npy");
    expect_numpy_bytes(mt_reshape(mt_arange(MT_U8, 0, 12, 1), MT_SHAPE(4, 3)), "np_u1.npy");
    expect_numpy_bytes(mt_from_data(MT_BOOL, MT_SHAPE(1, 3), (uint8_t[]){ 1, 0, 1 }), "np_b1.npy");
    expect_numpy_bytes(mt_scalar(MT_F32, 1.25), "np_scalar_f4.npy");
    expect_numpy_bytes(mt_zeros(MT_F32, MT_SHAPE(0)), "np_empty_f4.npy");
    for (int nd = 1; nd <= 8; nd++) {
        int64_t shape[8] = { 0, 199, 199, 199, 199, 199, 199, 199 };
        char name[32];
        snprintf(name, sizeof name, "np_f4_%dd.npy", nd);
        expect_numpy_bytes(mt_zeros(MT_F32, nd, shape), name);
    }

    cr_assert_eq(mt_npy_save_strings(tmp_path("t.npy"), 6, transcript), MT_OK, "%s", mt_last_error());
    assert_file_equal(tmp_path("t.npy"), fixture("np_transcript.npy"));
    cr_assert_eq(mt_npy_save_strings(tmp_path("n.npy"), 6, non_ascii), MT_OK, "%s", mt_last_error());
    assert_file_equal(tmp_path("n.npy"), fixture("np_nonascii.npy"));
    cr_assert_eq(mt_npy_save_strings(tmp_path("e.npy"), 3, (const char *const[]){ "", "", "" }), MT_OK);
    assert_file_equal(tmp_path("e.npy"), fixture("np_strings_empty.npy"));
}

/* Whatever layout a file had, what we write back is np.save's C-order,
   little-endian, version 1.0 file of the same array. */
Test(npy, rewrites_any_layout_as_numpy_would, .init = npy_setup, .fini = npy_teardown)
{
    static const char *const same[] = { "f4.npy", "f8.npy", "i4.npy", "i8.npy", "u1.npy", "b1.npy", "scalar_f8.npy",
                                        "scalar_i8.npy", "empty_f4.npy", "empty_i8.npy", "mfcc.npy" };
    for (size_t k = 0; k < sizeof same / sizeof *same; k++) {
        mt_tensor *t = mt_npy_load(fixture(same[k]));
        cr_assert_not_null(t, "%s", mt_last_error());
        cr_assert_eq(mt_npy_save(tmp_path("again.npy"), t), MT_OK, "%s", mt_last_error());
        assert_file_equal(tmp_path("again.npy"), fixture(same[k]));
    }
    static const char *const like_f4[] = { "be_f4.npy", "fortran_f4.npy", "v2_f4.npy", "v3_f4.npy" };
    for (size_t k = 0; k < 4; k++) {
        mt_tensor *t = mt_npy_load(fixture(like_f4[k]));
        cr_assert_not_null(t, "%s", mt_last_error());
        cr_assert_eq(mt_npy_save(tmp_path("again.npy"), t), MT_OK, "%s", mt_last_error());
        assert_file_equal(tmp_path("again.npy"), fixture("f4.npy"));
    }
    mt_string_array a;
    cr_assert_eq(mt_npy_load_strings(fixture("transcript_be_U.npy"), &a), MT_OK);
    cr_assert_eq(mt_npy_save_strings(tmp_path("t.npy"), a.n, (const char *const *)a.strings), MT_OK);
    assert_file_equal(tmp_path("t.npy"), fixture("transcript_U.npy"));
    mt_string_array_free(&a);
}

/* ================================================================ (c) round trips */

static void expect_same_tensor(const mt_tensor *want, const mt_tensor *got, const char *what)
{
    cr_assert_not_null(got, "%s: %s", what, mt_last_error());
    cr_assert_eq(got->dtype, want->dtype, "%s: dtype", what);
    cr_assert(mt_same_shape(want, got), "%s: shape", what);
    int64_t n = mt_numel(want);
    size_t es = mt_dtype_size(want->dtype);
    unsigned char *a = malloc((size_t)n * es + 1), *b = malloc((size_t)n * es + 1);
    cr_assert_eq(mt_to_data(want, want->dtype, a), MT_OK);
    cr_assert_eq(mt_to_data(got, got->dtype, b), MT_OK);
    cr_expect(memcmp(a, b, (size_t)n * es) == 0, "%s: values differ", what);
    free(a);
    free(b);
}

/* A few tensors of every dtype and layout. */
static int sample_tensors(mt_tensor **ts, const char **names)
{
    int n = 0;
    mt_tensor *m = mt_randn(NULL, MT_F32, MT_SHAPE(5, 7));
    names[n] = "f32"; ts[n++] = m;
    names[n] = "f32_transposed"; ts[n++] = mt_transpose(m, 0, 1);
    names[n] = "f32_strided"; ts[n++] = mt_slice(m, 1, 1, 7, 3);
    names[n] = "f64_4d"; ts[n++] = mt_randn(NULL, MT_F64, MT_SHAPE(2, 1, 3, 2));
    names[n] = "i32"; ts[n++] = mt_randint(NULL, MT_I32, MT_SHAPE(11), -1000000, 1000000);
    names[n] = "i64"; ts[n++] = mt_from_data(MT_I64, MT_SHAPE(3), (int64_t[]){ INT64_MIN, -1, INT64_MAX });
    names[n] = "u8"; ts[n++] = mt_reshape(mt_arange(MT_U8, 0, 256, 1), MT_SHAPE(16, 16));
    names[n] = "bool"; ts[n++] = mt_from_data(MT_BOOL, MT_SHAPE(2, 2), (uint8_t[]){ 1, 0, 0, 1 });
    names[n] = "scalar"; ts[n++] = mt_scalar(MT_F64, -3.75);
    names[n] = "empty"; ts[n++] = mt_zeros(MT_I64, MT_SHAPE(4, 0, 2));
    names[n] = "max_dims"; ts[n++] = mt_ones(MT_F32, MT_SHAPE(1, 2, 1, 2, 1, 2, 1, 2));
    return n;
}

Test(npy, round_trip_every_dtype_and_layout, .init = npy_setup, .fini = npy_teardown)
{
    mt_tensor *ts[16];
    const char *names[16];
    int n = sample_tensors(ts, names);
    for (int i = 0; i < n; i++) {
        cr_assert_not_null(ts[i], "%s: %s", names[i], mt_last_error());
        cr_assert_eq(mt_npy_save(tmp_path("x.npy"), ts[i]), MT_OK, "%s: %s", names[i], mt_last_error());
        expect_same_tensor(ts[i], mt_npy_load(tmp_path("x.npy")), names[i]);
    }
}

Test(npy, round_trip_from_another_device, .init = npy_setup, .fini = npy_teardown)
{
    const mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    const char *why = "";
    if (!mt_device_available(emu, &why)) cr_skip_test("cuda-emu is not available: %s", why);
    mt_tensor *t = mt_randn(NULL, MT_F32, MT_SHAPE(4, 6));
    mt_tensor *on_emu = mt_to_device(t, emu);
    cr_assert_not_null(on_emu, "%s", mt_last_error());
    cr_assert_eq(mt_npy_save(tmp_path("emu.npy"), mt_transpose(on_emu, 0, 1)), MT_OK, "%s", mt_last_error());
    expect_same_tensor(mt_transpose(t, 0, 1), mt_npy_load(tmp_path("emu.npy")), "from cuda-emu");
}

Test(npy, round_trip_strings, .init = npy_setup, .fini = npy_teardown)
{
    static const char *const words[] = { "", "a", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", "[SOS]", "na\xc3\xafve" };
    mt_string_array a;
    cr_assert_eq(mt_npy_save_strings(tmp_path("w.npy"), 5, words), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_npy_load_strings(tmp_path("w.npy"), &a), MT_OK, "%s", mt_last_error());
    expect_strings(&a, 5, words, "round trip");
    mt_string_array_free(&a);
    cr_assert_eq(mt_npy_save_strings(tmp_path("none.npy"), 0, NULL), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_npy_load_strings(tmp_path("none.npy"), &a), MT_OK, "%s", mt_last_error());
    cr_expect(a.n == 0 && a.ndim == 1 && a.shape[0] == 0);
    mt_string_array_free(&a);
    assert_file_equal(tmp_path("none.npy"), fixture("strings_empty.npy"));
}

/* ================================================================ .npz */

static void check_course_npz(const char *path)
{
    mt_npz *z = NULL;
    cr_assert_eq(mt_npz_open(path, &z), MT_OK, "%s", mt_last_error());
    int n;
    const char *const *names = mt_npz_names(z, &n);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(names[0], "x");
    cr_expect_str_eq(names[1], "y");
    cr_expect_str_eq(names[2], "transcript");
    mt_tensor *x = mt_npz_load(z, "x");
    expect_shape(x, 2, (int64_t[]){ 3, 4 }, "x");
    cr_expect_eq(x->dtype, MT_F32);
    for (int i = 0; i < 12; i++) cr_expect_eq(value_at(x, i), i * 0.5 - 2);
    mt_tensor *y = mt_npz_load(z, "y.npy");   /* a member's full name works too */
    expect_shape(y, 1, (int64_t[]){ 5 }, "y");
    cr_expect_eq(y->dtype, MT_I64);
    for (int i = 0; i < 5; i++) cr_expect_eq(value_at(y, i), signed_value(i));
    mt_string_array t;
    cr_assert_eq(mt_npz_load_strings(z, "transcript", &t), MT_OK, "%s", mt_last_error());
    expect_strings(&t, 6, transcript, "npz transcript");
    mt_string_array_free(&t);

    cr_expect_null(mt_npz_load(z, "transcript"));
    expect_error(mt_last_status(), MT_ERR_DTYPE, "mt_npz_load_strings", "strings as numbers");
    cr_expect(strstr(mt_last_error(), "member 'transcript.npy'"), "%s", mt_last_error());
    cr_expect_null(mt_npz_load(z, "nope"));
    expect_error(mt_last_status(), MT_ERR_ARGUMENT, "no array named 'nope' (it has 3: 'x', 'y', 'transcript')",
                 "missing name");
    mt_npz_close(z);
}

Test(npz, reads_numpy_archives, .init = npy_setup, .fini = npy_teardown)
{
    check_course_npz(fixture("stored.npz"));
    check_course_npz(fixture("compressed.npz"));

    mt_npz *z = NULL;
    cr_assert_eq(mt_npz_open(fixture("empty.npz"), &z), MT_OK, "%s", mt_last_error());
    int n = -1;
    mt_npz_names(z, &n);
    cr_expect_eq(n, 0);
    cr_expect_null(mt_npz_load(z, "x"));
    expect_error(mt_last_status(), MT_ERR_ARGUMENT, "it has 0: none", "empty archive");
    mt_npz_close(z);
}

Test(npz, odd_members, .init = npy_setup, .fini = npy_teardown)
{
    mt_npz *z = NULL;
    cr_assert_eq(mt_npz_open(fixture("odd_members.npz"), &z), MT_OK, "%s", mt_last_error());
    int n;
    const char *const *names = mt_npz_names(z, &n);
    cr_assert_eq(n, 2, "the folder entry is skipped");
    cr_expect_str_eq(names[0], "notes.txt");
    cr_expect_str_eq(names[1], "x");
    cr_expect_not_null(mt_npz_load(z, "x"), "%s", mt_last_error());
    cr_expect_null(mt_npz_load(z, "notes.txt"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "member 'notes.txt': bad magic", "a text member");
    mt_npz_close(z);
    mt_npz_close(NULL);
}

Test(npz, open_errors, .init = npy_setup, .fini = npy_teardown)
{
    mt_npz *z = (mt_npz *)&z;   /* a sentinel: must stay as it is */
    expect_error(mt_npz_open(fixture("f4.npy"), &z), MT_ERR_FORMAT, "not a .npz file", "a .npy file");
    cr_expect(strstr(mt_last_error(), "npz: ") == mt_last_error() && strstr(mt_last_error(), "f4.npy"), "%s",
              mt_last_error());
    expect_error(mt_npz_open(tmp_path("missing.npz"), &z), MT_ERR_IO, "cannot open", "missing");
    expect_error(mt_npz_open(tmp_dir, &z), MT_ERR_IO, "not a regular file", "a folder");
    expect_error(mt_npz_open(NULL, &z), MT_ERR_ARGUMENT, "path is NULL", "NULL path");
    expect_error(mt_npz_open(fixture("stored.npz"), NULL), MT_ERR_ARGUMENT, "NULL", "NULL output");
    cr_expect_eq(z, (mt_npz *)&z, "the output was touched");
    cr_expect_null(mt_npz_load(NULL, "x"));
    int n = 5;
    cr_expect_null(mt_npz_names(NULL, &n));
    cr_expect_eq(n, 0);
}

Test(npz, round_trip_stored_and_compressed, .init = npy_setup, .fini = npy_teardown)
{
    mt_tensor *ts[16];
    const char *names[16];
    int n = sample_tensors(ts, names);
    mt_named_tensor items[16];
    for (int i = 0; i < n; i++) items[i] = (mt_named_tensor){ (char *)names[i], ts[i] };
    mt_tensor_list list = { n, items };
    for (int compressed = 0; compressed <= 1; compressed++) {
        const char *path = tmp_path(compressed ? "c.npz" : "s.npz");
        cr_assert_eq(mt_npz_save(path, list, compressed), MT_OK, "%s", mt_last_error());
        mt_npz *z;
        cr_assert_eq(mt_npz_open(path, &z), MT_OK, "%s", mt_last_error());
        int count;
        const char *const *got = mt_npz_names(z, &count);
        cr_assert_eq(count, n);
        for (int i = 0; i < n; i++) {
            cr_expect_str_eq(got[i], names[i]);
            expect_same_tensor(ts[i], mt_npz_load(z, names[i]), names[i]);
        }
        mt_npz_close(z);
    }
    cr_expect(!temp_file_left());

    /* deflate shrinks what compresses */
    mt_tensor *zeros = mt_zeros(MT_F32, MT_SHAPE(1000));
    mt_tensor_list one = { 1, (mt_named_tensor[]){ { (char *)"zeros", zeros } } };
    cr_assert_eq(mt_npz_save(tmp_path("zs.npz"), one, false), MT_OK);
    cr_assert_eq(mt_npz_save(tmp_path("zc.npz"), one, true), MT_OK);
    struct stat s1, s2;
    cr_assert(stat(tmp_path("zs.npz"), &s1) == 0 && stat(tmp_path("zc.npz"), &s2) == 0);
    cr_expect(s1.st_size > 4000 && s2.st_size < 1000, "stored %lld bytes, deflated %lld", (long long)s1.st_size,
              (long long)s2.st_size);

    /* no tensors: the same 22 bytes as np.savez() */
    cr_assert_eq(mt_npz_save(tmp_path("none.npz"), (mt_tensor_list){ 0, NULL }, false), MT_OK, "%s", mt_last_error());
    assert_file_equal(tmp_path("none.npz"), fixture("empty.npz"));
}

Test(npz, save_rejects_bad_arguments, .init = npy_setup, .fini = npy_teardown)
{
    mt_tensor *t = mt_zeros(MT_F32, MT_SHAPE(2));
    const char *path = tmp_path("bad.npz");
    expect_error(mt_npz_save(path, (mt_tensor_list){ 2, (mt_named_tensor[]){ { (char *)"a", t }, { (char *)"a", t } } },
                             false), MT_ERR_ARGUMENT, "appears twice", "duplicate");
    expect_error(mt_npz_save(path, (mt_tensor_list){ 1, (mt_named_tensor[]){ { NULL, t } } }, false),
                 MT_ERR_ARGUMENT, "no name", "NULL name");
    expect_error(mt_npz_save(path, (mt_tensor_list){ 1, (mt_named_tensor[]){ { (char *)"", t } } }, false),
                 MT_ERR_ARGUMENT, "empty name", "empty name");
    expect_error(mt_npz_save(path, (mt_tensor_list){ 1, (mt_named_tensor[]){ { (char *)"\xff", t } } }, false),
                 MT_ERR_ARGUMENT, "not valid UTF-8", "bad UTF-8 name");
    expect_error(mt_npz_save(path, (mt_tensor_list){ 1, (mt_named_tensor[]){ { (char *)"x", NULL } } }, false),
                 MT_ERR_ARGUMENT, "is NULL", "NULL tensor");
    expect_error(mt_npz_save(path, (mt_tensor_list){ -1, NULL }, false), MT_ERR_ARGUMENT, "invalid", "n < 0");
    expect_error(mt_npz_save(NULL, (mt_tensor_list){ 0, NULL }, false), MT_ERR_ARGUMENT, "NULL", "NULL path");
    cr_expect(access(path, F_OK) != 0, "a failed save created the file");
    cr_expect(!temp_file_left());
}

/* ================================================================ (d) corrupt files */

static bool is_string_fixture(const char *name)
{
    return strstr(name, "transcript") || strstr(name, "strings") || strstr(name, "nonascii") ||
           strcmp(name, "np_nonascii.npy") == 0;
}

/* Loads bytes as the fixture name would be loaded; returns whether it worked.
   On failure the message names the file, nothing stays allocated and a
   string output is untouched. */
static bool load_mutant(const char *name, const unsigned char *bytes, size_t n, const char *label)
{
    size_t before = cpu_allocated();
    if (is_string_fixture(name)) {
        mt_string_array a = { .n = -5 };
        mt_status st = mt_npy_load_strings_buffer(bytes, n, label, &a);
        if (st == MT_OK) {
            mt_string_array_free(&a);
            return true;
        }
        cr_expect_eq(a.n, -5, "%s: the output was touched", label);
    } else {
        mt_tensor *t = mt_npy_load_buffer(bytes, n, label);
        if (t) {
            mt_free(t);
            return true;
        }
        cr_expect_eq(cpu_allocated(), before, "%s: a failed load left memory allocated", label);
    }
    char prefix[160];
    snprintf(prefix, sizeof prefix, "npy: %s: ", label);
    cr_expect(strncmp(mt_last_error(), prefix, strlen(prefix)) == 0, "%s: message \"%s\"", label, mt_last_error());
    return false;
}

static int list_fixtures(const char *suffix, char names[][64], int max)
{
    DIR *d = opendir(fixture(""));
    cr_assert_not_null(d, "cannot list %s", fixture(""));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0 && len < 64) memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    return n;
}

/* Every fixture cut at every length fails (the header fixes the size). */
Test(npy, every_truncation_fails_cleanly, .init = npy_setup, .fini = npy_teardown)
{
    char names[128][64];
    int n = list_fixtures(".npy", names, 128);
    cr_assert_gt(n, 50);
    for (int k = 0; k < n; k++) {
        size_t len;
        unsigned char *bytes = read_all(fixture(names[k]), &len);
        for (size_t cut = 0; cut < len; cut++) {
            char label[160];
            snprintf(label, sizeof label, "%.63s cut at %zu", names[k], cut);
            cr_expect(!load_mutant(names[k], bytes, cut, label), "%s loaded", label);
        }
        free(bytes);
    }
}

/* The same through files, at the places the format changes (magic, version,
   length, header, data). */
Test(npy, truncated_files, .init = npy_setup, .fini = npy_teardown)
{
    static const char *const files[] = { "f4.npy", "v2_f4.npy", "transcript_U.npy" };
    for (int k = 0; k < 3; k++) {
        size_t len;
        unsigned char *bytes = read_all(fixture(files[k]), &len);
        size_t cuts[] = { 0, 3, 6, 7, 8, 9, 10, 11, 12, 40, 127, 128, len - 1 };
        for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
            const char *path = tmp_path("cut.npy");
            write_bytes(path, bytes, cuts[c]);
            mt_string_array a = { .n = -5 };
            mt_status st;
            if (k == 2) st = mt_npy_load_strings(path, &a);
            else st = mt_npy_load(path) ? MT_OK : mt_last_status();
            cr_expect_eq(st, MT_ERR_FORMAT, "%s cut at %zu: %s", files[k], cuts[c], mt_last_error());
            cr_expect(strstr(mt_last_error(), "cut.npy: ") && strstr(mt_last_error(), "trunc"), "%s cut at %zu: %s",
                      files[k], cuts[c], mt_last_error());
            cr_expect_eq(a.n, -5);
        }
        free(bytes);
    }
}

/* Flipping any byte of any header, or of the data of the string and bool
   fixtures, either still loads or fails with a message: never a crash. */
Test(npy, flipped_bytes_never_crash, .init = npy_setup, .fini = npy_teardown)
{
    char names[128][64];
    int n = list_fixtures(".npy", names, 128);
    static const unsigned char flips[] = { 0xFF, 0x01, 0x20, 0x80 };
    int failures = 0;
    for (int k = 0; k < n; k++) {
        size_t len;
        unsigned char *bytes = read_all(fixture(names[k]), &len);
        bool whole = is_string_fixture(names[k]) || strstr(names[k], "b1") || strstr(names[k], "u8");
        size_t upto = whole || len < 128 ? len : 128;
        for (size_t i = 0; i < upto; i++)
            for (size_t f = 0; f < sizeof flips; f++) {
                bytes[i] ^= flips[f];
                char label[160];
                snprintf(label, sizeof label, "%.63s byte %zu ^ 0x%02x", names[k], i, flips[f]);
                if (!load_mutant(names[k], bytes, len, label)) failures++;
                bytes[i] ^= flips[f];
            }
        free(bytes);
    }
    cr_expect_gt(failures, 1000);
}

/* A .npy file from a header text (padded to 64 as NumPy does) and data. */
static size_t make_npy(unsigned char *out, int major, const char *header, const void *data, size_t ndata)
{
    size_t prefix = major == 1 ? 10 : 12, hlen = strlen(header);
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++) out[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(out + prefix, header, hlen);
    memcpy(out + prefix + hlen, data, ndata);
    return prefix + hlen + ndata;
}

static void expect_bad_header(const char *header, size_t ndata, mt_status code, const char *needle)
{
    static unsigned char buf[4096];
    static const unsigned char zeros[256];
    size_t n = make_npy(buf, 1, header, zeros, ndata);
    size_t before = cpu_allocated();
    cr_expect_null(mt_npy_load_buffer(buf, n, "h.npy"), "header %s loaded", header);
    expect_error(mt_last_status(), code, needle, header);
    cr_expect(strncmp(mt_last_error(), "npy: h.npy: ", 12) == 0, "%s", mt_last_error());
    cr_expect_eq(cpu_allocated(), before);
}

static void expect_good_header(const char *header, size_t ndata, int ndim, const int64_t *shape, mt_dtype dtype)
{
    static unsigned char buf[4096];
    static const unsigned char zeros[256];
    size_t n = make_npy(buf, 1, header, zeros, ndata);
    mt_tensor *t = mt_npy_load_buffer(buf, n, "h.npy");
    expect_shape(t, ndim, shape, header);
    cr_expect_eq(t->dtype, dtype, "%s", header);
}

Test(npy, bad_headers, .init = npy_setup, .fini = npy_teardown)
{
    unsigned char buf[256];
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", "\0\0\0\0\0\0\0\0", 8);
    cr_assert_not_null(mt_npy_load_buffer(buf, n, "ok.npy"), "%s", mt_last_error());

    buf[0] = 'X';
    cr_expect_null(mt_npy_load_buffer(buf, n, "m.npy"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "bad magic", "magic");
    buf[0] = 0x93;
    buf[6] = 4;
    cr_expect_null(mt_npy_load_buffer(buf, n, "v.npy"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "unknown format version 4.0", "version 4");
    buf[6] = 1;
    buf[7] = 1;
    cr_expect_null(mt_npy_load_buffer(buf, n, "v.npy"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "unknown format version 1.1", "version 1.1");
    buf[7] = 0;
    buf[8] = 0xFF;
    buf[9] = 0xFF;
    cr_expect_null(mt_npy_load_buffer(buf, n, "l.npy"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "truncated header", "header past the end");
    n = make_npy(buf, 2, "{}", "", 0);
    buf[11] = 0x7F;
    cr_expect_null(mt_npy_load_buffer(buf, n, "l.npy"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "header too long", "2 GB header");

    const char *f4 = "'descr': '<f4'", *fo = "'fortran_order': False";
    char h[512];
#define HDR(...) (snprintf(h, sizeof h, __VA_ARGS__), h)
    expect_bad_header(HDR("{%s, %s}", f4, fo), 0, MT_ERR_FORMAT, "the header has no 'shape'");
    expect_bad_header(HDR("{%s, 'shape': (), }", f4), 4, MT_ERR_FORMAT, "no 'fortran_order'");
    expect_bad_header(HDR("{%s, %s, 'shape': (), 'extra': 1}", f4, fo), 4, MT_ERR_FORMAT, "unexpected key 'extra'");
    expect_bad_header(HDR("{%s, %s, 'shape': (), 'shape': ()}", f4, fo), 4, MT_ERR_FORMAT, "'shape' appears twice");
    expect_bad_header(HDR("{%s, %s, 'shape': (-1,)}", f4, fo), 4, MT_ERR_FORMAT, "negative dimension");
    expect_bad_header(HDR("{%s, %s, 'shape': (3)}", f4, fo), 12, MT_ERR_FORMAT, "not a tuple");
    expect_bad_header(HDR("{%s, %s, 'shape': [3]}", f4, fo), 12, MT_ERR_FORMAT, "a list");
    expect_bad_header(HDR("{%s, %s, 'shape': (3,,)}", f4, fo), 12, MT_ERR_FORMAT, "unparseable header dict");
    expect_bad_header(HDR("{%s, %s, 'shape': (3 4)}", f4, fo), 48, MT_ERR_FORMAT, "expected ',' or ')'");
    expect_bad_header(HDR("{%s, %s, 'shape': (3.0,)}", f4, fo), 12, MT_ERR_FORMAT, "expected an integer");
    expect_bad_header(HDR("{%s, %s, 'shape': (99999999999999999999,)}", f4, fo), 0, MT_ERR_FORMAT, "too large");
    expect_bad_header(HDR("{%s, %s, 'shape': (4294967296, 4294967296)}", f4, fo), 0, MT_ERR_FORMAT, "too large");
    expect_bad_header(HDR("{%s, %s, 'shape': (1,1,1,1,1,1,1,1,1)}", f4, fo), 4, MT_ERR_FORMAT, "more than 8 dimensions");
    /* a 0 dim makes 0 elements, but the other dims still make the strides: found by fuzzing
       (the size checks were skipped and the stride product overflowed) */
    expect_bad_header(HDR("{%s, %s, 'shape': (0, 199, 199, 199199, 199, 199, 199, 199)}", f4, fo), 0, MT_ERR_FORMAT,
                      "shape [0, 199, 199, 199199, 199, 199, 199, 199] is too large: the product of its nonzero dims "
                      "does not fit int64");
    expect_bad_header(HDR("{%s, 'fortran_order': True, 'shape': (4294967296, 4294967296, 0)}", f4), 0, MT_ERR_FORMAT,
                      "too large");
    /* bytes: 2^61 f4 elements have 2^63 bytes; 2^61 u2 elements read as i32 too */
    expect_bad_header(HDR("{%s, %s, 'shape': (2305843009213693952,)}", f4, fo), 0, MT_ERR_FORMAT, "too large");
    expect_bad_header(HDR("{'descr': '<u2', %s, 'shape': (0, 2305843009213693952)}", fo), 0, MT_ERR_FORMAT, "too large");
    expect_bad_header(HDR("{'descr': '<U268435456', %s, 'shape': (0, 8589934592)}", fo), 0, MT_ERR_FORMAT, "too large");
    expect_bad_header(HDR("{%s, 'fortran_order': 0, 'shape': ()}", f4), 4, MT_ERR_FORMAT, "not True or False");
    expect_bad_header(HDR("{%s, 'fortran_order': Falsey, 'shape': ()}", f4), 4, MT_ERR_FORMAT, "not True or False");
    expect_bad_header(HDR("{'descr': '<f3', %s, 'shape': ()}", fo), 3, MT_ERR_DTYPE, "3-byte float");
    expect_bad_header(HDR("{'descr': '<q8', %s, 'shape': ()}", fo), 8, MT_ERR_FORMAT, "unknown descr '<q8'");
    expect_bad_header(HDR("{'descr': '<i3', %s, 'shape': ()}", fo), 3, MT_ERR_FORMAT, "unknown descr '<i3'");
    expect_bad_header(HDR("{'descr': '<f', %s, 'shape': ()}", fo), 4, MT_ERR_FORMAT, "unknown descr '<f'");
    expect_bad_header(HDR("{'descr': '<U0', %s, 'shape': ()}", fo), 0, MT_ERR_FORMAT, "unknown descr '<U0'");
    expect_bad_header(HDR("{'descr': '<M8[ns]', %s, 'shape': ()}", fo), 8, MT_ERR_DTYPE, "datetime");
    expect_bad_header(HDR("{'descr': '|V4', %s, 'shape': ()}", fo), 4, MT_ERR_DTYPE, "void");
    expect_bad_header(HDR("{'descr': 3, %s, 'shape': ()}", fo), 4, MT_ERR_FORMAT, "'descr' is not a string");
    expect_bad_header(HDR("{'descr': '%070d', %s, 'shape': ()}", 0, fo), 4, MT_ERR_FORMAT, "string too long");
    expect_bad_header(HDR("{'descr': '<f4, %s, 'shape': ()}", fo), 4, MT_ERR_FORMAT, "unknown descr '<f4, '");
    expect_bad_header(HDR("{'descr': '<f4\\n', %s, 'shape': ()}", fo), 4, MT_ERR_FORMAT, "unsupported escape");
    expect_bad_header(HDR("{%s %s, 'shape': ()}", f4, fo), 4, MT_ERR_FORMAT, "expected ',' or '}'");
    expect_bad_header(HDR("{%s, %s, 'shape': ()} x", f4, fo), 4, MT_ERR_FORMAT, "after the dict");
    expect_bad_header(HDR("{%s, %s, 'shape': ()", f4, fo), 4, MT_ERR_FORMAT, "ends inside the dict");
    expect_bad_header(HDR("{%s, %s, 'shape': (2,", f4, fo), 4, MT_ERR_FORMAT, "ends inside 'shape'");
    expect_bad_header(HDR("[%s]", f4), 4, MT_ERR_FORMAT, "not a dict");
    expect_bad_header("", 4, MT_ERR_FORMAT, "not a dict");
    expect_bad_header(HDR("{%s, %s, 'shape': (2,)}\n", f4, fo), 12, MT_ERR_FORMAT, "shape/data size mismatch");
    expect_bad_header(HDR("{%s, %s, 'shape': (2,)}\n", f4, fo), 4, MT_ERR_FORMAT, "truncated data");

    /* what Python and old NumPy versions write is accepted */
    int64_t s3[1] = { 3 }, s23[2] = { 2, 3 };
    expect_good_header(HDR("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}"), 12, 1, s3, MT_F32);
    expect_good_header(HDR("{'shape': (2L, 3L), 'fortran_order': True, 'descr': '>i2'}   \n"), 12, 2, s23, MT_I32);
    expect_good_header(HDR("\t{ 'descr' : '=f8' , 'fortran_order' : False , 'shape' : ( 3 , ) , }\r\n"), 24, 1, s3,
                       MT_F64);
    expect_good_header(HDR("{'descr': '|u1', 'fortran_order': False, 'shape': (2,3)}"), 6, 2, s23, MT_U8);
    expect_good_header(HDR("{'descr': 'b1', 'fortran_order': False, 'shape': ()}"), 1, 0, NULL, MT_BOOL);
    /* an empty array with big dims that fit is fine, in either order */
    int64_t s0big[3] = { 1LL << 20, 0, 1LL << 30 };
    expect_good_header(HDR("{%s, %s, 'shape': (1048576, 0, 1073741824)}", f4, fo), 0, 3, s0big, MT_F32);
    expect_good_header(HDR("{%s, 'fortran_order': True, 'shape': (1048576, 0, 1073741824)}", f4), 0, 3, s0big, MT_F32);
#undef HDR
}

/* Every truncation and every byte flip of the archives: errors or (for
   bytes libzip does not check) success, never a crash. */
Test(npz, corrupt_archives_never_crash, .init = npy_setup, .fini = npy_teardown)
{
    static const char *const files[] = { "stored.npz", "compressed.npz" };
    for (int k = 0; k < 2; k++) {
        size_t len;
        unsigned char *bytes = read_all(fixture(files[k]), &len);
        const char *path = tmp_path("bad.npz");
        for (size_t step = 0; step < 2 * len; step++) {
            size_t n = step < len ? step : len;
            if (step >= len) bytes[step - len] ^= 0x5A;
            write_bytes(path, bytes, n);
            size_t before = cpu_allocated();
            mt_npz *z = NULL;
            if (mt_npz_open(path, &z) == MT_OK) {
                int count;
                const char *const *names = mt_npz_names(z, &count);
                for (int i = 0; i < count; i++) {
                    mt_string_array a = { .n = -5 };
                    mt_tensor *t = strcmp(names[i], "transcript") == 0 ? NULL : mt_npz_load(z, names[i]);
                    if (!t && mt_npz_load_strings(z, names[i], &a) == MT_OK) mt_string_array_free(&a);
                    else if (!t) {
                        cr_expect_eq(a.n, -5);
                        cr_expect(strncmp(mt_last_error(), "npz: ", 5) == 0, "%s", mt_last_error());
                    }
                    mt_free(t);
                }
                mt_npz_close(z);
            } else {
                cr_expect_null(z);
                cr_expect(strncmp(mt_last_error(), "npz: ", 5) == 0 && strstr(mt_last_error(), "bad.npz"), "%s",
                          mt_last_error());
            }
            cr_expect_eq(cpu_allocated(), before);
            if (step >= len) bytes[step - len] ^= 0x5A;
        }
        free(bytes);
    }
}

/* A member whose bytes are damaged is caught by its CRC. */
/* An entry that claims far more bytes than the archive holds (a lying or
   damaged header): the reader's buffer grows only as bytes arrive, so the
   load fails as truncated without first allocating what the entry claims.
   In a child allowed 1 GiB more address space than it has (no limit under
   ASan, whose shadow memory needs more), a 3.75 GB allocation up front would
   fail with MT_ERR_MEMORY instead. */
static void patch_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

Test(npz, entry_claiming_gigabytes_allocates_nothing_big, .init = npy_setup, .fini = npy_teardown)
{
    size_t len;
    unsigned char *bytes = read_all(fixture("compressed.npz"), &len);
    /* each deflated member's uncompressed size, in its local and central headers */
    const uint32_t claim = 0xF0000000u;
    int local = 0, central = 0;
    for (size_t i = 0; i + 46 < len; i++) {
        if (memcmp(bytes + i, "PK\x03\x04", 4) == 0) { patch_u32(bytes + i + 22, claim); local++; }
        if (memcmp(bytes + i, "PK\x01\x02", 4) == 0) { patch_u32(bytes + i + 24, claim); central++; }
    }
    cr_assert(local > 0 && central > 0);
    write_bytes(tmp_path("liar.npz"), bytes, len);
    free(bytes);
#if defined(__SANITIZE_ADDRESS__)
    bool limit = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    bool limit = false;
#else
    bool limit = true;
#endif
#else
    bool limit = true;
#endif
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (limit) {   /* what the process maps now, plus 1 GiB */
            unsigned long pages = 0;
            FILE *f = fopen("/proc/self/statm", "r");
            if (f && fscanf(f, "%lu", &pages) == 1) {
                rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
                struct rlimit rl = { cap, cap };
                setrlimit(RLIMIT_AS, &rl);
            }
            if (f) fclose(f);
        }
        mt_npz *z;
        mt_status st = mt_npz_open(tmp_path("liar.npz"), &z);
        if (st != MT_OK) _exit(9);
        int n;
        const char *const *names = mt_npz_names(z, &n);
        for (int i = 0; i < n && st == MT_OK; i++)
            if (mt_npz_load(z, names[i]) || mt_last_status() != MT_ERR_FORMAT ||
                !strstr(mt_last_error(), "truncated: it has"))
                st = mt_last_status() == MT_OK ? MT_ERR_FORMAT : mt_last_status();
        mt_npz_close(z);
        _exit(n == 3 && st == MT_OK ? 0 : 10 + (int)st);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "loading an archive whose entries claim 3.75 GB: exit status %d (9: it did not open; else 10 + the "
              "mytorch status)", WEXITSTATUS(status));
}

Test(npz, damaged_member_is_an_error, .init = npy_setup, .fini = npy_teardown)
{
    size_t len;
    unsigned char *bytes = read_all(fixture("stored.npz"), &len);
    /* the data of x.npy: find its header in the archive and flip a data byte */
    unsigned char *hit = NULL;
    for (size_t i = 0; i + 6 < len && !hit; i++)
        if (memcmp(bytes + i, "\x93NUMPY", 6) == 0) hit = bytes + i;
    cr_assert_not_null(hit);
    hit[130] ^= 0x01;
    write_bytes(tmp_path("crc.npz"), bytes, len);
    mt_npz *z;
    cr_assert_eq(mt_npz_open(tmp_path("crc.npz"), &z), MT_OK, "%s", mt_last_error());
    cr_expect_null(mt_npz_load(z, "x"));
    expect_error(mt_last_status(), MT_ERR_FORMAT, "member 'x.npy': cannot read it: CRC error", "CRC");
    mt_npz_close(z);
    free(bytes);
}

/* ================================================================ (e) atomic writes */

Test(npy, failed_save_keeps_old_file, .init = npy_setup, .fini = npy_teardown)
{
    const char *path = tmp_path("keep.npy");
    mt_tensor *old = mt_ones(MT_F32, MT_SHAPE(3));
    cr_assert_eq(mt_npy_save(path, old), MT_OK);
    size_t n0;
    unsigned char *before = read_all(path, &n0);

    expect_error(mt_npy_save(path, NULL), MT_ERR_ARGUMENT, "npy: ", "NULL tensor");
    expect_error(mt_npy_save_strings(path, 2, (const char *const[]){ "ok", "\xc3" }), MT_ERR_ARGUMENT,
                 "string 1 is not valid UTF-8", "bad UTF-8");
    expect_error(mt_npy_save_strings(path, 2, (const char *const[]){ "ok", NULL }), MT_ERR_ARGUMENT, "string 1 is NULL",
                 "NULL string");
    expect_error(mt_npy_save_strings(path, 2, NULL), MT_ERR_ARGUMENT, "invalid strings", "NULL strings");
    expect_error(mt_npy_save(tmp_path("no/such/folder.npy"), old), MT_ERR_IO, "cannot create the temporary file",
                 "missing folder");
    expect_error(mt_npy_save(NULL, old), MT_ERR_ARGUMENT, "path is NULL", "NULL path");

    /* an npz that fails midway, after members were added */
    const char *zpath = tmp_path("keep.npz");
    mt_tensor_list one = { 1, (mt_named_tensor[]){ { (char *)"a", old } } };
    cr_assert_eq(mt_npz_save(zpath, one, true), MT_OK);
    size_t z0;
    unsigned char *zbefore = read_all(zpath, &z0);
    mt_tensor *broken = mt_zeros(MT_F32, MT_SHAPE(2));
    broken->dtype = MT_DTYPE_COUNT;   /* npy_tensor_image refuses it */
    mt_tensor_list two = { 2, (mt_named_tensor[]){ { (char *)"a", old }, { (char *)"b", broken } } };
    expect_error(mt_npz_save(zpath, two, true), MT_ERR_DTYPE, "member 'b.npy': the tensor has an invalid dtype",
                 "bad dtype midway");
    broken->dtype = MT_F32;
    expect_error(mt_npz_save(tmp_path("no/such/folder.npz"), one, false), MT_ERR_IO, "npz: ", "missing folder");

    size_t n1, z1;
    unsigned char *after = read_all(path, &n1), *zafter = read_all(zpath, &z1);
    cr_expect(n0 == n1 && memcmp(before, after, n0) == 0, "the old .npy file changed");
    cr_expect(z0 == z1 && memcmp(zbefore, zafter, z0) == 0, "the old .npz file changed");
    cr_expect(!temp_file_left(), "a temporary file was left behind");
    free(before);
    free(after);
    free(zbefore);
    free(zafter);
}

Test(npy, save_replaces_and_leaves_no_temp, .init = npy_setup, .fini = npy_teardown)
{
    const char *path = tmp_path("r.npy");
    cr_assert_eq(mt_npy_save(path, mt_zeros(MT_F64, MT_SHAPE(100))), MT_OK);
    cr_assert_eq(mt_npy_save(path, mt_scalar(MT_I32, 7)), MT_OK);
    mt_tensor *t = mt_npy_load(path);
    expect_shape(t, 0, NULL, "replaced");
    cr_expect_eq(mt_item(t), 7);
    cr_assert_eq(mt_npz_save(tmp_path("r.npz"), (mt_tensor_list){ 1, (mt_named_tensor[]){ { (char *)"t", t } } }, false),
                 MT_OK);
    cr_assert_eq(mt_npz_save(tmp_path("r.npz"), (mt_tensor_list){ 1, (mt_named_tensor[]){ { (char *)"u", t } } }, false),
                 MT_OK);
    mt_npz *z;
    cr_assert_eq(mt_npz_open(tmp_path("r.npz"), &z), MT_OK);
    int n;
    const char *const *names = mt_npz_names(z, &n);
    cr_expect(n == 1 && strcmp(names[0], "u") == 0, "the archive was not replaced");
    mt_npz_close(z);
    cr_expect(!temp_file_left());
}

/* The bulk writers' path (no fsync): the same bytes as the durable one, the
   same atomic replace, no temporary file left, the same errors. */
Test(npy, save_without_sync_writes_the_same_bytes, .init = npy_setup, .fini = npy_teardown)
{
    const mt_npy_save_opts no_sync = { .no_sync = true }, durable = { 0 };
    mt_tensor *ts[16];
    const char *names[16];
    int n = sample_tensors(ts, names);
    for (int i = 0; i < n; i++) {
        cr_assert_not_null(ts[i], "%s: %s", names[i], mt_last_error());
        cr_assert_eq(mt_npy_save(tmp_path("durable.npy"), ts[i]), MT_OK, "%s: %s", names[i], mt_last_error());
        cr_assert_eq(mt_npy_save_with(tmp_path("fast.npy"), ts[i], &no_sync), MT_OK, "%s: %s", names[i], mt_last_error());
        assert_file_equal(tmp_path("durable.npy"), tmp_path("fast.npy"));
        cr_assert_eq(mt_npy_save_with(tmp_path("zeroed.npy"), ts[i], &durable), MT_OK, "%s", mt_last_error());
        assert_file_equal(tmp_path("durable.npy"), tmp_path("zeroed.npy"));
    }
    /* against NumPy's own bytes too */
    mt_tensor *f4 = mt_sub(mt_mul(mt_arange(MT_F32, 0, 12, 1), mt_scalar(MT_F32, 0.5)), mt_scalar(MT_F32, 2));
    cr_assert_eq(mt_npy_save_with(tmp_path("np_f4.npy"), mt_reshape(f4, MT_SHAPE(3, 4)), &no_sync), MT_OK);
    assert_file_equal(tmp_path("np_f4.npy"), fixture("np_f4.npy"));
    cr_assert_eq(mt_npy_save_strings_with(tmp_path("t.npy"), 6, transcript, &no_sync), MT_OK, "%s", mt_last_error());
    assert_file_equal(tmp_path("t.npy"), fixture("np_transcript.npy"));
    cr_assert_eq(mt_npy_save_strings_with(tmp_path("n.npy"), 6, non_ascii, NULL), MT_OK, "%s", mt_last_error());
    assert_file_equal(tmp_path("n.npy"), fixture("np_nonascii.npy"));

    /* replaces an existing file; a failed save keeps it */
    const char *path = tmp_path("r.npy");
    cr_assert_eq(mt_npy_save_with(path, mt_zeros(MT_F64, MT_SHAPE(100)), &no_sync), MT_OK);
    cr_assert_eq(mt_npy_save_with(path, mt_scalar(MT_I32, 7), &no_sync), MT_OK);
    mt_tensor *t = mt_npy_load(path);
    expect_shape(t, 0, NULL, "replaced");
    cr_expect_eq(mt_item(t), 7);
    expect_error(mt_npy_save_with(path, NULL, &no_sync), MT_ERR_ARGUMENT, "npy: ", "NULL tensor");
    expect_error(mt_npy_save_strings_with(path, 2, (const char *const[]){ "ok", "\xc3" }, &no_sync), MT_ERR_ARGUMENT,
                 "not valid UTF-8", "bad UTF-8");
    expect_error(mt_npy_save_with(tmp_path("no/such/folder.npy"), t, &no_sync), MT_ERR_IO,
                 "cannot create the temporary file", "missing folder");
    cr_expect_eq(mt_item(mt_npy_load(path)), 7, "a failed save changed the file");
    cr_expect(!temp_file_left(), "a temporary file was left behind");
}

/* Loaded tensors follow the scope rules of any new tensor. */
Test(npy, loaded_tensors_belong_to_the_scope, .init = npy_setup, .fini = npy_teardown)
{
    size_t before = cpu_allocated();
    mt_scope s = mt_scope_begin();
    mt_tensor *t = mt_npy_load(fixture("mfcc.npy"));
    cr_assert_not_null(t);
    cr_expect_gt(cpu_allocated(), before);
    mt_scope_end(s);
    cr_expect_eq(cpu_allocated(), before, "the scope did not free the loaded tensor");

    s = mt_scope_begin();
    mt_tensor *kept = mt_keep(mt_npy_load(fixture("mfcc.npy")));
    mt_scope_end(s);
    cr_expect_eq(value_at(kept, 1), 1 / 8.0 - 5);
    mt_free(kept);
    cr_expect_eq(cpu_allocated(), before);
}

/* ================================================================ (f) a course split folder */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The loop of docs/npy.md: every mfcc/<id>.npy with its transcript/<id>.npy,
   the [SOS]/[EOS] wrapping removed. Returns the number of frames. */
static int64_t read_split(const char *split, int *n_utterances, int64_t *n_phonemes)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/mfcc", split);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    char *ids[16];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 16)
        if (strstr(e->d_name, ".npy")) ids[n++] = strdup(e->d_name);
    closedir(d);
    qsort(ids, (size_t)n, sizeof *ids, cmp_str);   /* readdir's order is arbitrary */

    int64_t frames = 0;
    *n_phonemes = 0;
    for (int i = 0; i < n; i++) {
        char path[1024];
        mt_scope step = mt_scope_begin();
        snprintf(path, sizeof path, "%s/mfcc/%s", split, ids[i]);
        mt_tensor *mfcc = mt_npy_load(path);                         /* [T, 28] float32 */
        snprintf(path, sizeof path, "%s/transcript/%s", split, ids[i]);
        mt_string_array phonemes;
        if (!mfcc || mt_npy_load_strings(path, &phonemes) != MT_OK) cr_assert_fail("%s", mt_last_error());
        int64_t first = 0, last = phonemes.n;
        if (last > 0 && strcmp(phonemes.strings[0], "[SOS]") == 0) first++;
        if (last > first && strcmp(phonemes.strings[last - 1], "[EOS]") == 0) last--;
        cr_expect_eq(mfcc->shape[0], last - first, "%s: one label per frame", ids[i]);
        frames += mfcc->shape[0];
        *n_phonemes += last - first;
        mt_string_array_free(&phonemes);
        mt_scope_end(step);
        free(ids[i]);
    }
    *n_utterances = n;
    return frames;
}

Test(npy, course_split_folder, .init = npy_setup, .fini = npy_teardown)
{
    cr_assert_eq(mkdir(tmp_path("train"), 0755), 0);
    cr_assert_eq(mkdir(tmp_path("train/mfcc"), 0755), 0);
    cr_assert_eq(mkdir(tmp_path("train/transcript"), 0755), 0);
    static const char *const utt[2][6] = { { "[SOS]", "HH", "AH", "L", "OW", "[EOS]" },
                                           { "[SOS]", "W", "ER", "[EOS]" } };
    static const int lens[2] = { 6, 4 };
    for (int u = 0; u < 2; u++) {
        char name[64];
        snprintf(name, sizeof name, "train/mfcc/%04d.npy", u);
        cr_assert_eq(mt_npy_save(tmp_path(name), mt_randn(NULL, MT_F32, MT_SHAPE(lens[u] - 2, 28))), MT_OK);
        snprintf(name, sizeof name, "train/transcript/%04d.npy", u);
        cr_assert_eq(mt_npy_save_strings(tmp_path(name), lens[u], utt[u]), MT_OK);
    }
    int n;
    int64_t phonemes;
    cr_expect_eq(read_split(tmp_path("train"), &n, &phonemes), 6);
    cr_expect_eq(n, 2);
    cr_expect_eq(phonemes, 6);
}
