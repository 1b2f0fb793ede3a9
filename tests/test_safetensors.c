/*
 * test_safetensors.c - checkpoints in the safetensors format (include/mytorch/serialize.h).
 *
 *   (a) files written by the reference writer (the .safetensors files in tests/fixtures,
 *       made by tests/fixtures/make_safetensors_fixtures.py) load with the
 *       right names, dtypes, shapes and values;
 *   (b) mt_safetensors_save writes those same tensors byte for byte;
 *   (c) round trips: every dtype, 0-d and empty tensors, views, metadata;
 *   (d) corrupt files fail with a message naming the file and the problem,
 *       never crash, and leave the output untouched;
 *   (e) writes are atomic: a failed save leaves the old file and no temporary;
 *   and module / checkpoint save and load with an mt_nn_linear and Adam, f32
 *   and f64 loading into each other.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================================ helpers */

/* A fresh folder for each test's files, removed afterwards. */
static char tmp_dir[64];

static void st_setup(void)
{
    mt_test_setup();
    mt_test_temp_dir(tmp_dir, sizeof tmp_dir, "safetensors");
}

static void st_teardown(void)
{
    mt_test_remove_tree(tmp_dir);
    mt_test_teardown();
}

/* tmp_dir/name (a rotating set of buffers, so several can be live at once). */
static const char *tmp_path(const char *name) { return mt_test_path(tmp_dir, name); }

/* tests/fixtures/name: MT_FIXTURES_DIR, else next to this source file. */
static const char *fixture_path(const char *name)
{
    static char buf[1024];
    const char *dir = getenv("MT_FIXTURES_DIR");
    if (dir) snprintf(buf, sizeof buf, "%s/%s", dir, name);
    else {
        const char *file = __FILE__, *slash = strrchr(file, '/');
        int len = slash ? (int)(slash - file) : 1;
        snprintf(buf, sizeof buf, "%.*s/fixtures/%s", len, slash ? file : ".", name);
    }
    return buf;
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

static void write_all_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
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

static void free_loaded(mt_tensor_list *list)
{
    for (int i = 0; i < list->n; i++) mt_free(list->items[i].tensor);
    mt_tensor_list_free(list);
}

static mt_tensor *find(mt_tensor_list list, const char *name)
{
    for (int i = 0; i < list.n; i++)
        if (strcmp(list.items[i].name, name) == 0) return list.items[i].tensor;
    return NULL;
}

/* Row-major bytes of t (malloc'd). */
static unsigned char *bytes_of(const mt_tensor *t, size_t *len)
{
    *len = (size_t)mt_numel(t) * mt_dtype_size(t->dtype);
    unsigned char *b = malloc(*len ? *len : 1);
    cr_assert_eq(mt_to_data(t, t->dtype, b), MT_OK, "%s", mt_last_error());
    return b;
}

/* Same dtype, shape and bytes (so NaNs and -0 compare exactly). */
static void assert_tensor_equal(const mt_tensor *a, const mt_tensor *b, const char *name)
{
    char s1[128], s2[128];
    cr_assert_not_null(a, "%s: missing", name);
    cr_assert_not_null(b, "%s: missing", name);
    cr_assert_eq(a->dtype, b->dtype, "%s: dtype %s vs %s", name, mt_dtype_name(a->dtype), mt_dtype_name(b->dtype));
    cr_assert(mt_same_shape(a, b), "%s: shape %s vs %s", name, mt_shape_str(a, s1, sizeof s1), mt_shape_str(b, s2, sizeof s2));
    size_t la, lb;
    unsigned char *ba = bytes_of(a, &la), *bb = bytes_of(b, &lb);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(ba, bb, la) == 0, "%s: values differ", name);
    free(ba);
    free(bb);
}

static void assert_file_equal(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *ba = read_all(a, &la), *bb = read_all(b, &lb);
    size_t first = 0;
    while (first < la && first < lb && ba[first] == bb[first]) first++;
    cr_assert(la == lb && first == la, "%s (%zu bytes) and %s (%zu bytes) differ from byte %zu", a, la, b, lb, first);
    free(ba);
    free(bb);
}

/* A list of n named tensors (names borrowed from string literals). */
#define LIST(...) ((mt_tensor_list){ (int)(sizeof((mt_named_tensor[]){ __VA_ARGS__ }) / sizeof(mt_named_tensor)), \
                                     (mt_named_tensor[]){ __VA_ARGS__ } })
#define NT(name, t) { (char *)(name), (t) }

static mt_tensor *f32_bits(int n, const uint32_t *bits)
{
    float v[16];
    memcpy(v, bits, (size_t)n * sizeof *v);
    return mt_from_data(MT_F32, MT_SHAPE(n), v);
}

/* ================================================================ the fixtures' tensors */
/* The same values as make_safetensors_fixtures.py's mixed(). */
#define N_MIXED 12
static void mixed_tensors(mt_named_tensor *items)
{
    float w[6], bias[3] = { 0.1f, -2.5f, 3.0f };
    for (int i = 0; i < 6; i++) w[i] = (float)i * 0.5f - 1.25f;
    const uint32_t specials[4] = { 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u };
    double dbl[4], deep[12];
    for (int i = 0; i < 4; i++) dbl[i] = (double)i / 3.0;
    for (int i = 0; i < 12; i++) deep[i] = (double)i - 5.0;
    const int32_t ids[5] = { INT32_MIN, -1, 0, 7, INT32_MAX };
    const int64_t counts[4] = { -((int64_t)1 << 62), -1, 0, ((int64_t)1 << 40) + 7 };
    const int64_t step = 12345678901;
    const uint8_t bytes[6] = { 0, 1, 127, 128, 255, 42 };
    const bool mask[6] = { true, false, true, false, false, true };
    const float scalar = 4.5f;
    int k = 0;
    /* deliberately not in file order: the writer sorts */
    items[k++] = (mt_named_tensor){ "mask", mt_from_data(MT_BOOL, MT_SHAPE(2, 3), mask) };
    items[k++] = (mt_named_tensor){ "weight", mt_from_data(MT_F32, MT_SHAPE(2, 3), w) };
    items[k++] = (mt_named_tensor){ "bias", mt_from_data(MT_F32, MT_SHAPE(3), bias) };
    items[k++] = (mt_named_tensor){ "specials", f32_bits(4, specials) };
    items[k++] = (mt_named_tensor){ "scalar", mt_from_data(MT_F32, 0, NULL, &scalar) };
    items[k++] = (mt_named_tensor){ "empty", mt_zeros(MT_F32, MT_SHAPE(0, 3)) };
    items[k++] = (mt_named_tensor){ "double", mt_from_data(MT_F64, MT_SHAPE(2, 2), dbl) };
    items[k++] = (mt_named_tensor){ "ids", mt_from_data(MT_I32, MT_SHAPE(5), ids) };
    items[k++] = (mt_named_tensor){ "counts", mt_from_data(MT_I64, MT_SHAPE(4), counts) };
    items[k++] = (mt_named_tensor){ "step", mt_from_data(MT_I64, 0, NULL, &step) };
    items[k++] = (mt_named_tensor){ "bytes", mt_from_data(MT_U8, MT_SHAPE(6), bytes) };
    items[k++] = (mt_named_tensor){ "deep", mt_from_data(MT_F64, MT_SHAPE(2, 1, 2, 1, 3), deep) };
    cr_assert_eq(k, N_MIXED);
    for (int i = 0; i < k; i++) cr_assert_not_null(items[i].tensor, "%s: %s", items[i].name, mt_last_error());
}

/* ================================================================ (a) reading the reference writer's files */
Test(safetensors, reads_reference_file, .init = st_setup, .fini = st_teardown)
{
    mt_tensor_list got = { 0, NULL };
    cr_assert_eq(mt_safetensors_load(fixture_path("mixed.safetensors"), &got), MT_OK, "%s", mt_last_error());
    cr_assert_eq(got.n, N_MIXED);

    /* the file's order: I64, F64, F32, I32, U8, BOOL, each by name */
    const char *order[N_MIXED] = { "counts", "step", "deep", "double", "bias", "empty", "scalar", "specials",
                                   "weight", "ids", "bytes", "mask" };
    for (int i = 0; i < N_MIXED; i++) cr_assert_str_eq(got.items[i].name, order[i]);

    mt_named_tensor want[N_MIXED];
    mixed_tensors(want);
    for (int i = 0; i < N_MIXED; i++) assert_tensor_equal(find(got, want[i].name), want[i].tensor, want[i].name);

    /* a few values read independently of the expected tensors */
    mt_tensor *w = find(got, "weight"), *c = find(got, "counts"), *s = find(got, "step"), *m = find(got, "mask");
    cr_assert_eq(w->dtype, MT_F32);
    cr_assert_eq(w->ndim, 2);
    cr_assert_eq(w->shape[0], 2);
    cr_assert_eq(w->shape[1], 3);
    cr_assert_eq(mt_get(w, (int64_t[]){ 1, 2 }), 1.25);
    cr_assert_eq(c->dtype, MT_I64);
    cr_assert_eq(((int64_t *)mt_data_ptr(c))[3], ((int64_t)1 << 40) + 7);
    cr_assert_eq(s->ndim, 0);
    cr_assert_eq(*(int64_t *)mt_data_ptr(s), 12345678901);
    cr_assert_eq(m->dtype, MT_BOOL);
    cr_assert_eq(mt_get(m, (int64_t[]){ 1, 2 }), 1.0);
    mt_tensor *e = find(got, "empty");
    cr_assert_eq(e->ndim, 2);
    cr_assert_eq(mt_numel(e), 0);
    mt_tensor *sp = find(got, "specials");
    cr_assert(signbit(mt_get(sp, (int64_t[]){ 0 })) && mt_get(sp, (int64_t[]){ 0 }) == 0);
    cr_assert(isinf(mt_get(sp, (int64_t[]){ 1 })) && isnan(mt_get(sp, (int64_t[]){ 3 })));

    /* loaded tensors belong to the open scope, like every creator's (docs/ownership.md) */
    for (int i = 0; i < got.n; i++) cr_assert_geq(got.items[i].tensor->scope_slot, 0);

    for (int i = 0; i < N_MIXED; i++) mt_free(want[i].tensor);
    free_loaded(&got);
}

Test(safetensors, reads_reference_metadata, .init = st_setup, .fini = st_teardown)
{
    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_read_metadata(fixture_path("mixed.safetensors"), &meta), MT_OK, "%s", mt_last_error());
    cr_assert_eq(meta.n, 1);
    cr_assert_str_eq(meta.keys[0], "format");
    cr_assert_str_eq(meta.values[0], "mytorch-test");
    mt_safetensors_metadata_free(&meta);

    cr_assert_eq(mt_safetensors_read_metadata(fixture_path("small.safetensors"), &meta), MT_OK, "%s", mt_last_error());
    cr_assert_eq(meta.n, 1);
    cr_assert_str_eq(meta.values[0], "a \"quoted\" value\twith tab, caf\xc3\xa9");
    mt_safetensors_metadata_free(&meta);

    cr_assert_eq(mt_safetensors_read_metadata(fixture_path("names.safetensors"), &meta), MT_OK);
    cr_assert_eq(meta.n, 0);
    mt_safetensors_metadata_free(&meta);
}

Test(safetensors, reads_escaped_names, .init = st_setup, .fini = st_teardown)
{
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load(fixture_path("names.safetensors"), &got), MT_OK, "%s", mt_last_error());
    cr_assert_eq(got.n, 6);
    const char *names[6] = { "B.upper", "a.lower", "na\xc3\xafve.\xc3\xa9t\xc3\xa9", "quote\"back\\slash", "slash/name",
                             "tab\tnew\nline\x01" };
    const double values[6] = { 4, 5, 3, 1, 6, 2 };
    for (int i = 0; i < 6; i++) {
        cr_assert_str_eq(got.items[i].name, names[i]);
        cr_assert_eq(mt_item(got.items[i].tensor), values[i], "%s", names[i]);
    }
    free_loaded(&got);

    cr_assert_eq(mt_safetensors_load(fixture_path("empty.safetensors"), &got), MT_OK, "%s", mt_last_error());
    cr_assert_eq(got.n, 0);
    free_loaded(&got);
}

/* ================================================================ (b) writing what the reference writes */
Test(safetensors, writes_reference_bytes, .init = st_setup, .fini = st_teardown)
{
    mt_named_tensor items[N_MIXED];
    mixed_tensors(items);
    const char *k[1] = { "format" }, *v[1] = { "mytorch-test" };
    const char *out = tmp_path("mixed.safetensors");
    cr_assert_eq(mt_safetensors_save(out, (mt_tensor_list){ N_MIXED, items }, 1, k, v), MT_OK, "%s", mt_last_error());
    assert_file_equal(out, fixture_path("mixed.safetensors"));
    for (int i = 0; i < N_MIXED; i++) mt_free(items[i].tensor);
}

Test(safetensors, writes_reference_bytes_for_names_and_metadata, .init = st_setup, .fini = st_teardown)
{
    /* names that need escaping, non-ASCII names, bytewise order */
    const char *names[6] = { "quote\"back\\slash", "tab\tnew\nline\x01", "na\xc3\xafve.\xc3\xa9t\xc3\xa9", "B.upper",
                             "a.lower", "slash/name" };
    mt_named_tensor items[6];
    for (int i = 0; i < 6; i++) items[i] = (mt_named_tensor){ (char *)names[i], mt_full(MT_F32, MT_SHAPE(1), i + 1) };
    cr_assert_eq(mt_safetensors_save(tmp_path("names"), (mt_tensor_list){ 6, items }, 0, NULL, NULL), MT_OK, "%s",
                 mt_last_error());
    assert_file_equal(tmp_path("names"), fixture_path("names.safetensors"));

    /* no tensors at all */
    cr_assert_eq(mt_safetensors_save(tmp_path("empty"), (mt_tensor_list){ 0, NULL }, 0, NULL, NULL), MT_OK);
    assert_file_equal(tmp_path("empty"), fixture_path("empty.safetensors"));

    /* a metadata value with escapes */
    const char *k[1] = { "note" }, *v[1] = { "a \"quoted\" value\twith tab, caf\xc3\xa9" };
    mt_tensor *x = mt_from_data(MT_F32, MT_SHAPE(2), (float[]){ 1.5f, -2.0f });
    cr_assert_eq(mt_safetensors_save(tmp_path("small"), LIST(NT("x", x)), 1, k, v), MT_OK);
    assert_file_equal(tmp_path("small"), fixture_path("small.safetensors"));
}

Test(safetensors, header_is_padded_to_8_bytes, .init = st_setup, .fini = st_teardown)
{
    /* names of every length mod 8 */
    for (int len = 1; len <= 8; len++) {
        char name[16];
        memset(name, 'n', (size_t)len);
        name[len] = '\0';
        mt_tensor *t = mt_ones(MT_U8, MT_SHAPE(3));
        cr_assert_eq(mt_safetensors_save(tmp_path("pad"), LIST(NT(name, t)), 0, NULL, NULL), MT_OK);
        size_t n;
        unsigned char *b = read_all(tmp_path("pad"), &n);
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--) h = (h << 8) | b[i];
        cr_assert_eq(h % 8, 0);
        cr_assert_eq(n, 8 + h + 3);
        /* {"n..n":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}} is 52 + len bytes, then spaces */
        size_t json = 52 + (size_t)len;
        cr_assert_eq(b[8 + json - 1], '}', "len %d", len);
        cr_assert_eq(h, (json + 7) / 8 * 8, "len %d", len);
        for (size_t i = json; i < h; i++) cr_assert_eq(b[8 + i], ' ');
        free(b);
    }
}

/* ================================================================ (c) round trips */
static void round_trip(mt_tensor_list list)
{
    const char *path = tmp_path("rt.safetensors");
    cr_assert_eq(mt_safetensors_save(path, list, 0, NULL, NULL), MT_OK, "%s", mt_last_error());
    mt_tensor_list got = { 0, NULL };
    cr_assert_eq(mt_safetensors_load(path, &got), MT_OK, "%s", mt_last_error());
    cr_assert_eq(got.n, list.n);
    for (int i = 0; i < list.n; i++) {
        mt_tensor *g = find(got, list.items[i].name);
        /* (an empty tensor's strides are arbitrary: engine/tensor.c does not call
           fresh [3, 0, 2] tensors contiguous) */
        cr_assert(mt_numel(g) == 0 || mt_is_contiguous(g), "%s", list.items[i].name);
        assert_tensor_equal(g, list.items[i].tensor, list.items[i].name);
    }
    free_loaded(&got);
}

Test(safetensors, round_trip_every_dtype, .init = st_setup, .fini = st_teardown)
{
    mt_generator gen = mt_generator_new(7);
    round_trip(LIST(NT("f32", mt_randn(&gen, MT_F32, MT_SHAPE(3, 5))),
                    NT("f64", mt_randn(&gen, MT_F64, MT_SHAPE(4, 1, 2))),
                    NT("i32", mt_randint(&gen, MT_I32, MT_SHAPE(7), -1000000, 1000000)),
                    NT("i64", mt_randint(&gen, MT_I64, MT_SHAPE(2, 2), -((int64_t)1 << 50), (int64_t)1 << 50)),
                    NT("u8", mt_randint(&gen, MT_U8, MT_SHAPE(9), 0, 256)),
                    NT("bool", mt_from_data(MT_BOOL, MT_SHAPE(5), (bool[]){ true, false, false, true, true }))));
}

Test(safetensors, round_trip_0d_and_empty, .init = st_setup, .fini = st_teardown)
{
    round_trip(LIST(NT("s_f32", mt_scalar(MT_F32, -3.5)), NT("s_f64", mt_scalar(MT_F64, 1e300)),
                    NT("s_i32", mt_scalar(MT_I32, -7)), NT("s_i64", mt_scalar(MT_I64, 1e15)),
                    NT("s_u8", mt_scalar(MT_U8, 200)), NT("s_bool", mt_scalar(MT_BOOL, 1)),
                    NT("e0", mt_zeros(MT_F32, MT_SHAPE(0))), NT("e1", mt_zeros(MT_I64, MT_SHAPE(3, 0, 2))),
                    NT("e2", mt_zeros(MT_BOOL, MT_SHAPE(0, 0)))));
    round_trip(LIST(NT("only_empty", mt_zeros(MT_F64, MT_SHAPE(0, 4)))));
    round_trip((mt_tensor_list){ 0, NULL });
}

Test(safetensors, round_trip_views, .init = st_setup, .fini = st_teardown)
{
    mt_tensor *base = mt_arange(MT_F32, 0, 24, 1);
    mt_tensor *m = mt_reshape(base, MT_SHAPE(4, 6));
    mt_tensor *t = mt_transpose(m, 0, 1);                      /* [6, 4], strided */
    mt_tensor *s = mt_slice(m, 1, 1, 6, 2);                    /* [4, 3], step 2 */
    mt_tensor *e = mt_expand(mt_reshape(mt_arange(MT_I64, 0, 3, 1), MT_SHAPE(3, 1)), MT_SHAPE(3, 4));   /* stride 0 */
    mt_tensor *sel = mt_select(m, 1, 2);                       /* offset into storage */
    cr_assert(!mt_is_contiguous(t) && !mt_is_contiguous(s) && !mt_is_contiguous(e));
    round_trip(LIST(NT("t", t), NT("s", s), NT("e", e), NT("sel", sel)));

    /* the values are the view's, in row-major order */
    cr_assert_eq(mt_safetensors_save(tmp_path("v"), LIST(NT("t", t)), 0, NULL, NULL), MT_OK);
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load(tmp_path("v"), &got), MT_OK);
    const float *d = mt_data_ptr(got.items[0].tensor);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) cr_assert_eq(d[i * 4 + j], (float)(j * 6 + i));
    free_loaded(&got);
}

Test(safetensors, round_trip_parameter_and_big_tensor, .init = st_setup, .fini = st_teardown)
{
    mt_generator gen = mt_generator_new(3);
    mt_tensor *p = mt_randn(&gen, MT_F32, MT_SHAPE(8, 8));
    cr_assert_not_null(mt_requires_grad(p, true));
    round_trip(LIST(NT("param", p), NT("big", mt_randn(&gen, MT_F64, MT_SHAPE(300, 700)))));
}

Test(safetensors, round_trip_metadata, .init = st_setup, .fini = st_teardown)
{
    const char *keys[4] = { "zeta", "alpha", "empty", "unicode \xe2\x9c\x93" };
    const char *values[4] = { "1", "line\nbreak \"q\" \\ \x01", "", "\xf0\x9f\x98\x80" };
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(2));
    cr_assert_eq(mt_safetensors_save(tmp_path("m"), LIST(NT("x", x)), 4, keys, values), MT_OK, "%s", mt_last_error());
    mt_safetensors_metadata meta;
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load_with_metadata(tmp_path("m"), &got, &meta), MT_OK, "%s", mt_last_error());
    cr_assert_eq(meta.n, 4);
    for (int i = 0; i < 4; i++) {   /* in the order given */
        cr_assert_str_eq(meta.keys[i], keys[i]);
        cr_assert_str_eq(meta.values[i], values[i]);
    }
    assert_tensor_equal(got.items[0].tensor, x, "x");
    mt_safetensors_metadata_free(&meta);
    free_loaded(&got);

    /* metadata without tensors */
    cr_assert_eq(mt_safetensors_save(tmp_path("m2"), (mt_tensor_list){ 0, NULL }, 1, keys, values), MT_OK);
    cr_assert_eq(mt_safetensors_read_metadata(tmp_path("m2"), &meta), MT_OK, "%s", mt_last_error());
    cr_assert_eq(meta.n, 1);
    cr_assert_str_eq(meta.values[0], "1");
    mt_safetensors_metadata_free(&meta);
}

Test(safetensors, round_trip_reference_file, .init = st_setup, .fini = st_teardown)
{
    /* load the reference file and save it again: the same bytes */
    mt_tensor_list got;
    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_load_with_metadata(fixture_path("mixed.safetensors"), &got, &meta), MT_OK);
    cr_assert_eq(mt_safetensors_save(tmp_path("again"), got, meta.n, (const char *const *)meta.keys,
                                     (const char *const *)meta.values), MT_OK, "%s", mt_last_error());
    assert_file_equal(tmp_path("again"), fixture_path("mixed.safetensors"));
    mt_safetensors_metadata_free(&meta);
    free_loaded(&got);
}

Test(safetensors, save_rejects_bad_arguments, .init = st_setup, .fini = st_teardown)
{
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(2));
    const char *path = tmp_path("bad");
    struct { mt_tensor_list list; const char *expect; } cases[] = {
        { LIST(NT("a", x), NT("a", x)), "tensor name 'a' appears twice" },
        { LIST(NT("__metadata__", x)), "\"__metadata__\" is reserved" },
        { LIST(NT(NULL, x)), "tensor name 0 is NULL" },
        { LIST(NT("a", NULL)), "tensor 'a' is NULL" },
        { LIST(NT("bad\xff", x)), "is not valid UTF-8" },
        { (mt_tensor_list){ 2, NULL }, "invalid tensor list" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mt_status st = mt_safetensors_save(path, cases[i].list, 0, NULL, NULL);
        cr_assert_eq(st, MT_ERR_ARGUMENT, "case %zu", i);
        cr_assert(strstr(mt_last_error(), path), "case %zu: %s", i, mt_last_error());
        cr_assert(strstr(mt_last_error(), cases[i].expect), "case %zu: %s", i, mt_last_error());
        cr_assert(!file_exists(path));
    }
    const char *k2[2] = { "k", "k" }, *v2[2] = { "1", "2" }, *vnull[1] = { NULL };
    cr_assert_eq(mt_safetensors_save(path, LIST(NT("a", x)), 2, k2, v2), MT_ERR_ARGUMENT);
    cr_assert(strstr(mt_last_error(), "metadata key 'k' appears twice"), "%s", mt_last_error());
    cr_assert_eq(mt_safetensors_save(path, LIST(NT("a", x)), 1, k2, vnull), MT_ERR_ARGUMENT);
    cr_assert_eq(mt_safetensors_save(path, LIST(NT("a", x)), 1, NULL, NULL), MT_ERR_ARGUMENT);
    cr_assert_eq(mt_safetensors_save(NULL, LIST(NT("a", x)), 0, NULL, NULL), MT_ERR_ARGUMENT);
    cr_assert(!file_exists(path));
    cr_assert(!temp_file_left());
}

/* ================================================================ (d) corrupt files */

/* A file of: the 8-byte length of header (or len_override when not ~0), the
   header, then data_len bytes of data (0, 1, 2, ...). */
static const char *make_file(const char *name, const char *header, uint64_t len_override, size_t data_len)
{
    const char *path = tmp_path(name);
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + data_len);
    uint64_t n = len_override != ~(uint64_t)0 ? len_override : hl;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (unsigned char)i;
    write_all_bytes(path, buf, 8 + hl + data_len);
    free(buf);
    return path;
}

/* Loading path fails with code and a message naming path and containing
   expect; the output list is untouched and nothing stays allocated. */
static void expect_load_error(const char *path, mt_status code, const char *expect)
{
    mt_named_tensor sentinel_items[1];
    mt_tensor_list out = { -7, sentinel_items };
    size_t before = mt_device_memory_stats(mt_cpu()).allocated;
    mt_status st = mt_safetensors_load(path, &out);
    cr_assert_eq(st, code, "%s: status %d, expected %d (%s)", path, st, code, mt_last_error());
    cr_assert(strncmp(mt_last_error(), "safetensors: ", 13) == 0, "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), path), "message does not name the file: %s", mt_last_error());
    cr_assert(strstr(mt_last_error(), expect), "expected \"%s\" in: %s", expect, mt_last_error());
    cr_assert_eq(out.n, -7);
    cr_assert_eq(out.items, sentinel_items);
    cr_assert_eq(mt_device_memory_stats(mt_cpu()).allocated, before);

    mt_safetensors_metadata meta = { -3, NULL, NULL };
    cr_assert_eq(mt_safetensors_read_metadata(path, &meta), code);
    cr_assert_eq(meta.n, -3);
}

#define T1 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"

Test(safetensors, accepts_valid_variants, .init = st_setup, .fini = st_teardown)
{
    /* what the format allows and other writers produce */
    const char *ok[] = {
        T1,
        "  \n{ \"a\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 8 ] , \"dtype\" : \"F32\" } }\t\r\n  ",
        "{\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":{\"x\":[1,-2.5e+3,true,null,\"s\"]}}}",
        "{\"__metadata__\":{},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2,1],\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mt_tensor_list got;
        cr_assert_eq(mt_safetensors_load(make_file("ok", ok[i], ~(uint64_t)0, 8), &got), MT_OK, "case %zu: %s", i,
                     mt_last_error());
        mt_tensor *a = find(got, "a");
        cr_assert_not_null(a, "case %zu", i);
        cr_assert_eq(mt_numel(a), 2);
        free_loaded(&got);
    }
    /* a surrogate pair and an escaped slash in a name */
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load(make_file("sp", "{\"\\ud83d\\ude00\\/x\":{\"dtype\":\"U8\",\"shape\":[],"
                                                     "\"data_offsets\":[0,1]}}", ~(uint64_t)0, 1), &got), MT_OK,
                 "%s", mt_last_error());
    cr_assert_str_eq(got.items[0].name, "\xf0\x9f\x98\x80/x");
    free_loaded(&got);
    /* BOOL bytes other than 0 and 1 read as true */
    cr_assert_eq(mt_safetensors_load(make_file("b", "{\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                                               ~(uint64_t)0, 2), &got), MT_OK);
    cr_assert_eq(((unsigned char *)mt_data_ptr(got.items[0].tensor))[0], 0);
    cr_assert_eq(mt_safetensors_save(tmp_path("b2"), got, 0, NULL, NULL), MT_OK);
    free_loaded(&got);
}

Test(safetensors, truncated_files, .init = st_setup, .fini = st_teardown)
{
    size_t n;
    unsigned char *full = read_all(fixture_path("mixed.safetensors"), &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | full[i];
    struct { size_t len; const char *expect; } cuts[] = {
        { 0, "too few for the 8-byte header length" },
        { 5, "too few for the 8-byte header length" },
        { 8, "runs past the end" },
        { 100, "runs past the end" },
        { 8 + (size_t)h - 1, "runs past the end" },
        { 8 + (size_t)h, "run past the end of the 0-byte data buffer" },
        { 8 + (size_t)h + 33, "run past the end" },
        { n - 1, "run past the end" },
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *path = tmp_path("cut.safetensors");
        write_all_bytes(path, full, cuts[i].len);
        expect_load_error(path, MT_ERR_FORMAT, cuts[i].expect);
    }
    free(full);
}

Test(safetensors, bad_header_length, .init = st_setup, .fini = st_teardown)
{
    expect_load_error(make_file("big", T1, 1000, 8), MT_ERR_FORMAT, "header length 1000 runs past the end of the");
    expect_load_error(make_file("huge", T1, (uint64_t)1 << 63, 8), MT_ERR_FORMAT, "exceeds the limit");
    expect_load_error(make_file("zero", T1, 0, 8), MT_ERR_FORMAT, "not a JSON object");
    /* a shorter length cuts the JSON */
    expect_load_error(make_file("short", T1, 20, 8), MT_ERR_FORMAT, "invalid JSON");
}

Test(safetensors, garbage_json, .init = st_setup, .fini = st_teardown)
{
    struct { const char *header; const char *expect; } cases[] = {
        { "[]", "not a JSON object" },
        { "hello", "not a JSON object" },
        { "\x01\xff{", "not a JSON object" },
        { "{", "invalid JSON" },
        { "{\"a\"", "expected ':'" },
        { "{\"a\":", "expected an object" },
        { "{\"a\" {}}", "expected ':' after an object key" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", "expected a string as object key" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", "unexpected bytes after the header" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]} \"b\":1}", "expected ',' or '}'" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2 3],\"data_offsets\":[0,8]}}", "expected ',' or ']'" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", "the header ends" },
        { "{\"a\":{\"dtype\":\"F32", "unterminated string" },
        { "{\"a\\", "unterminated string" },
        { "{\"a\\q\":1}", "invalid escape" },
        { "{\"a\\u12x4\":1}", "invalid hex digit" },
        { "{\"a\\ud800\":1}", "unpaired UTF-16 surrogate" },
        { "{\"a\\udc00x\":1}", "unpaired UTF-16 surrogate" },
        { "{\"a\\u0000\":1}", "NUL" },
        { "{\"a\tb\":1}", "unescaped control character" },
        { "{\"a\xc3\":1}", "invalid UTF-8" },
        { "{\"a\xc0\xaf\":1}", "invalid UTF-8" },
        { "{\"a\xed\xa0\x80\":1}", "invalid UTF-8" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "negative number" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", "fraction or exponent" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", "fraction or exponent" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", "leading zeros" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", "integer too large" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "expected a non-negative integer" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":tru}}", "invalid literal" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1.}}", "no digit after '.'" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":@}}", "unexpected character '@'" },
        { "{\"a\":[]}", "expected an object {dtype, shape, data_offsets}" },
        { "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", "\"dtype\" is not a string" },
        { "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "\"shape\" is missing" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "\"data_offsets\" is missing" },
        { "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "\"dtype\" is missing" },
        { "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "\"dtype\" appears twice" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "has 1 numbers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", "more than 2 numbers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", "more than 8 dims" },
        { "{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
          "metadata value of 'k' is not a string" },
        { "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", "metadata key 'k' appears twice" },
        { "{\"__metadata__\":{},\"__metadata__\":{}}", "\"__metadata__\" appears twice" },
        { "{\"__metadata__\":[]}", "expected '{' to start \"__metadata__\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_load_error(make_file("g", cases[i].header, ~(uint64_t)0, 8), MT_ERR_FORMAT, cases[i].expect);
    }

    /* NUL padding (some writers pad with NULs; the format says spaces) */
    size_t l1 = strlen(T1);
    unsigned char nul[8 + sizeof T1 + 8] = { 0 };
    nul[0] = (unsigned char)(l1 + 1);
    memcpy(nul + 8, T1, l1);   /* then the NUL, then 8 data bytes */
    write_all_bytes(tmp_path("nul"), nul, sizeof nul);
    expect_load_error(tmp_path("nul"), MT_ERR_FORMAT, "unexpected bytes after the header");

    /* deep nesting in a skipped field is bounded */
    char deep[400] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":";
    size_t l = strlen(deep);
    for (int i = 0; i < 100; i++) deep[l++] = '[';
    for (int i = 0; i < 100; i++) deep[l++] = ']';
    memcpy(deep + l, "}}", 3);
    expect_load_error(make_file("deep", deep, ~(uint64_t)0, 8), MT_ERR_FORMAT, "nested more than");
}

Test(safetensors, bad_offsets_and_dtypes, .init = st_setup, .fini = st_teardown)
{
    struct { const char *header; size_t data; const char *expect; } cases[] = {
        /* out of range */
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[100,108]}}", 8, "run past the end of the 8-byte data buffer" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[18446744073709551608,0]}}", 8, "end before they begin" },
        /* not what the dtype and shape need */
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, "need 24 bytes, but data_offsets [0, 20] hold 20" },
        { "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "need 16 bytes" },
        { "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "is too large" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[8,0],\"data_offsets\":[0,8]}}", 8, "need 0 bytes" },
        /* a 0 dim does not excuse the others (their product makes the strides): the same path as .npy's */
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,199,199,199199,199,199,199,199],\"data_offsets\":[0,0]}}", 0,
          "tensor 'a': shape [0, 199, 199, 199199, 199, 199, 199, 199] is too large: the product of its nonzero dims" },
        { "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,0,4294967296],\"data_offsets\":[0,0]}}", 0, "is too large" },
        { "{\"a\":{\"dtype\":\"F64\",\"shape\":[0,2305843009213693952],\"data_offsets\":[0,0]}}", 0, "is too large" },
        /* overlap, gap, trailing bytes */
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
          12, "overlap tensor 'a'" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "bytes [0, 4) of the data buffer belong to no tensor" },
        { T1, 12, "the data buffer has 12 bytes but the tensors cover only 8" },
        { "{}", 4, "the data buffer has 4 bytes but the tensors cover only 0" },
        /* dtypes */
        { "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'Q7'" },
        { "{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'f32'" },
        { "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, "dtype F16 is not supported by mytorch" },
        { "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, "dtype BF16 is not supported" },
        /* names */
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
          8, "tensor name 'a' appears twice" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
          8, "tensor name 'a' appears twice" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_load_error(make_file("o", cases[i].header, ~(uint64_t)0, cases[i].data), MT_ERR_FORMAT, cases[i].expect);
}

Test(safetensors, missing_file_and_folder, .init = st_setup, .fini = st_teardown)
{
    expect_load_error(tmp_path("does-not-exist.safetensors"), MT_ERR_IO, "cannot open: No such file or directory");
    expect_load_error(tmp_dir, MT_ERR_IO, "not a regular file");
    mt_tensor_list out;
    cr_assert_eq(mt_safetensors_load(NULL, &out), MT_ERR_ARGUMENT);
    cr_assert_eq(mt_safetensors_load(fixture_path("mixed.safetensors"), NULL), MT_ERR_ARGUMENT);
}

Test(safetensors, every_truncation_and_byte_flip_is_safe, .init = st_setup, .fini = st_teardown)
{
    /* no crash, no leak, and never a success that returns different data */
    size_t n;
    unsigned char *full = read_all(fixture_path("small.safetensors"), &n);
    const char *path = tmp_path("fuzz");
    for (size_t len = 0; len < n; len++) {
        write_all_bytes(path, full, len);
        mt_tensor_list out = { -1, NULL };
        cr_assert_neq(mt_safetensors_load(path, &out), MT_OK, "a %zu-byte prefix loaded", len);
        cr_assert_eq(out.n, -1);
    }
    unsigned char *copy = malloc(n);
    for (size_t i = 0; i < n - 8; i++) {   /* every byte but the data's, each to a few values */
        static const unsigned char values[] = { 0, '"', '\\', '{', '}', ',', ':', '[', ']', '9', 0xff, ' ' };
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(copy, full, n);
            if (copy[i] == values[v]) continue;
            copy[i] = values[v];
            write_all_bytes(path, copy, n);
            mt_tensor_list out = { -1, NULL };
            mt_safetensors_metadata meta = { 0, NULL, NULL };
            if (mt_safetensors_load_with_metadata(path, &out, &meta) == MT_OK) {
                mt_safetensors_metadata_free(&meta);
                free_loaded(&out);
            } else {
                cr_assert_eq(out.n, -1);
                cr_assert(strstr(mt_last_error(), path));
            }
        }
    }
    free(copy);
    free(full);
}

/* ================================================================ (e) atomic writes */
static void write_old_file(const char *path)
{
    write_all_bytes(path, "old contents", 12);
}

static void assert_old_file(const char *path)
{
    size_t n;
    unsigned char *b = read_all(path, &n);
    cr_assert(n == 12 && memcmp(b, "old contents", 12) == 0, "the old file was changed");
    free(b);
}

Test(safetensors, save_replaces_and_leaves_no_temp, .init = st_setup, .fini = st_teardown)
{
    const char *path = tmp_path("ckpt.safetensors");
    write_old_file(path);
    /* a stale temporary of ours from an earlier crash is overwritten, not kept */
    char stale[600];
    snprintf(stale, sizeof stale, "%s.tmp.%ld", path, (long)getpid());
    write_all_bytes(stale, "stale", 5);
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(3));
    cr_assert_eq(mt_safetensors_save(path, LIST(NT("x", x)), 0, NULL, NULL), MT_OK, "%s", mt_last_error());
    cr_assert(!temp_file_left());
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load(path, &got), MT_OK);
    assert_tensor_equal(got.items[0].tensor, x, "x");
    free_loaded(&got);
}

Test(safetensors, failed_save_keeps_old_file, .init = st_setup, .fini = st_teardown)
{
    const char *path = tmp_path("ckpt.safetensors");
    write_old_file(path);
    mt_tensor *x = mt_ones(MT_F32, MT_SHAPE(3));

    /* bad arguments: nothing is written */
    cr_assert_eq(mt_safetensors_save(path, LIST(NT("x", x), NT("y", NULL)), 0, NULL, NULL), MT_ERR_ARGUMENT);
    assert_old_file(path);
    cr_assert(!temp_file_left());

    /* the folder does not exist */
    const char *nowhere = tmp_path("no/such/folder/x.safetensors");
    cr_assert_eq(mt_safetensors_save(nowhere, LIST(NT("x", x)), 0, NULL, NULL), MT_ERR_IO);
    cr_assert(strstr(mt_last_error(), nowhere), "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), "cannot create the temporary file"), "%s", mt_last_error());

    /* the rename fails: the target is a folder that is not empty */
    const char *folder = tmp_path("folder");
    cr_assert_eq(mkdir(folder, 0755), 0);
    write_all_bytes(tmp_path("folder/inside"), "x", 1);
    cr_assert_eq(mt_safetensors_save(folder, LIST(NT("x", x)), 0, NULL, NULL), MT_ERR_IO);
    cr_assert(strstr(mt_last_error(), "cannot rename"), "%s", mt_last_error());
    cr_assert(!temp_file_left());
    cr_assert(file_exists(tmp_path("folder/inside")));
}

Test(safetensors, write_error_midway_keeps_old_file, .init = st_setup, .fini = st_teardown)
{
    /* A file size limit makes the write fail part way through the data
       (EFBIG once SIGXFSZ is ignored), as a full disk would. */
    const char *path = tmp_path("ckpt.safetensors");
    write_old_file(path);
    mt_tensor *big = mt_zeros(MT_F64, MT_SHAPE(4096));
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1000;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    mt_status st = mt_safetensors_save(path, LIST(NT("big", big)), 0, NULL, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_eq(st, MT_ERR_IO, "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), path), "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), "File too large"), "%s", mt_last_error());
    assert_old_file(path);
    cr_assert(!temp_file_left());
}

/* ================================================================ modules and checkpoints */
/* A snapshot of a module's state (owned copies), to check it did not change. */
typedef struct snapshot { int n; char *names[16]; mt_tensor *values[16]; } snapshot;

static snapshot take_snapshot(const mt_module *m)
{
    snapshot s = { 0 };
    mt_tensor_list sd = mt_state_dict(m);
    cr_assert(sd.n <= 16);
    for (int i = 0; i < sd.n; i++) {
        s.names[i] = strdup(sd.items[i].name);
        s.values[i] = mt_keep(mt_empty_like(sd.items[i].tensor));
        cr_assert_eq(mt_copy_(s.values[i], sd.items[i].tensor), MT_OK);
    }
    s.n = sd.n;
    mt_tensor_list_free(&sd);
    return s;
}

static void assert_snapshot(const mt_module *m, snapshot *s)
{
    mt_tensor_list sd = mt_state_dict(m);
    cr_assert_eq(sd.n, s->n);
    for (int i = 0; i < sd.n; i++) {
        cr_assert_str_eq(sd.items[i].name, s->names[i]);
        assert_tensor_equal(sd.items[i].tensor, s->values[i], s->names[i]);
    }
    mt_tensor_list_free(&sd);
}

static void free_snapshot(snapshot *s)
{
    for (int i = 0; i < s->n; i++) { free(s->names[i]); mt_free(s->values[i]); }
}

static void assert_state_equal(const mt_module *a, const mt_module *b)
{
    mt_tensor_list sa = mt_state_dict(a), sb = mt_state_dict(b);
    cr_assert_eq(sa.n, sb.n);
    for (int i = 0; i < sa.n; i++) {
        cr_assert_str_eq(sa.items[i].name, sb.items[i].name);
        assert_tensor_equal(sa.items[i].tensor, sb.items[i].tensor, sa.items[i].name);
    }
    mt_tensor_list_free(&sa);
    mt_tensor_list_free(&sb);
}

static void assert_optim_equal(const mt_optimizer *a, const mt_optimizer *b)
{
    mt_tensor_list sa = mt_optimizer_state(a), sb = mt_optimizer_state(b);
    cr_assert_eq(sa.n, sb.n);
    for (int i = 0; i < sa.n; i++) {
        mt_tensor *t = find(sb, sa.items[i].name);
        cr_assert_not_null(t, "optimizer state '%s' missing", sa.items[i].name);
        assert_tensor_equal(sa.items[i].tensor, t, sa.items[i].name);
    }
    cr_assert_eq(mt_optimizer_steps(a), mt_optimizer_steps(b));
    cr_assert_eq(mt_optimizer_lr(a), mt_optimizer_lr(b));
    mt_tensor_list_free(&sa);
    mt_tensor_list_free(&sb);
}

/* The dtype of m's first parameter. */
static mt_dtype param_dtype(const mt_module *m)
{
    mt_tensor_list params = mt_parameters(m);
    cr_assert_gt(params.n, 0);
    mt_dtype dtype = params.items[0].tensor->dtype;
    mt_tensor_list_free(&params);
    return dtype;
}

/* A few Adam steps on loss = sum((x W^T + b)^2), x in the module's dtype. */
static void train_steps(mt_module *m, mt_optimizer *opt, int steps, uint64_t seed)
{
    mt_generator gen = mt_generator_new(seed);
    for (int s = 0; s < steps; s++) {
        mt_scope scope = mt_scope_begin();
        mt_tensor *x = mt_to_dtype(mt_randn(&gen, MT_F32, MT_SHAPE(5, 3)), param_dtype(m));
        mt_tensor *y = mt_forward(m, x);
        mt_tensor *loss = mt_sum_all(mt_mul(y, y));
        cr_assert_not_null(loss, "%s", mt_last_error());
        mt_optimizer_zero_grad(opt);
        cr_assert_eq(mt_backward(loss), MT_OK, "%s", mt_last_error());
        cr_assert_eq(mt_step(opt), MT_OK, "%s", mt_last_error());
        mt_scope_end(scope);
    }
}

Test(safetensors, module_round_trip, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(1);
    mt_module *a = mt_nn_linear(3, 2, true), *b = mt_nn_linear(3, 2, true);
    cr_assert(a && b);
    const char *path = tmp_path("linear.safetensors");
    cr_assert_eq(mt_module_save(a, path), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_module_load(b, path), MT_OK, "%s", mt_last_error());
    assert_state_equal(a, b);
    cr_assert(mt_module_param(b, "weight")->requires_grad);

    /* the file is a plain safetensors file with the state dict's names */
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load(path, &got), MT_OK);
    cr_assert_eq(got.n, 2);
    cr_assert_str_eq(got.items[0].name, "bias");
    cr_assert_str_eq(got.items[1].name, "weight");
    free_loaded(&got);
    mt_module_free(a);
    mt_module_free(b);
}

Test(safetensors, module_round_trip_with_buffers, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(5);
    mt_module *a = mt_nn_sequential(mt_nn_linear(4, 3, true), mt_nn_batch_norm1d(3, MT_BN_DEFAULTS), mt_nn_relu());
    mt_module *b = mt_nn_sequential(mt_nn_linear(4, 3, true), mt_nn_batch_norm1d(3, MT_BN_DEFAULTS), mt_nn_relu());
    cr_assert(a && b, "%s", mt_last_error());
    /* move the running statistics away from their initial values */
    mt_generator gen = mt_generator_new(6);
    for (int s = 0; s < 3; s++) cr_assert_not_null(mt_forward(a, mt_randn(&gen, MT_F32, MT_SHAPE(8, 4))), "%s", mt_last_error());
    const char *path = tmp_path("seq.safetensors");
    cr_assert_eq(mt_module_save(a, path), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_module_load(b, path), MT_OK, "%s", mt_last_error());
    assert_state_equal(a, b);
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load(path, &got), MT_OK);
    mt_tensor *nbt = find(got, "1.num_batches_tracked");
    cr_assert_not_null(nbt);
    cr_assert_eq(nbt->dtype, MT_I64);
    cr_assert_eq(mt_item(nbt), 3);
    cr_assert_str_eq(got.items[0].name, "1.num_batches_tracked");   /* I64 first */
    free_loaded(&got);
    mt_module_free(a);
    mt_module_free(b);
}

Test(safetensors, module_load_is_strict_and_all_or_nothing, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(2);
    mt_module *a = mt_nn_linear(3, 2, true);
    const char *path = tmp_path("linear.safetensors");
    cr_assert_eq(mt_module_save(a, path), MT_OK);

    struct { mt_module *m; const char *expect; } cases[] = {
        { mt_nn_linear(4, 2, true), "'weight' has shape [2, 3] in the file but [2, 4] in the module" },
        { mt_nn_linear(3, 5, true), "'bias' has shape [2] in the file but [5] in the module" },
        { mt_nn_linear(3, 2, false), "unexpected 'bias'" },
        { mt_nn_sequential(mt_nn_linear(3, 2, true)), "missing '0.bias'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snapshot s = take_snapshot(cases[i].m);
        cr_assert_eq(mt_module_load(cases[i].m, path), MT_ERR_FORMAT, "case %zu", i);
        cr_assert(strstr(mt_last_error(), path), "%s", mt_last_error());
        cr_assert(strstr(mt_last_error(), cases[i].expect), "case %zu: %s", i, mt_last_error());
        assert_snapshot(cases[i].m, &s);
        free_snapshot(&s);
        mt_module_free(cases[i].m);
    }

    /* right names and shapes, an integer dtype where the module has f32 */
    mt_module *b = mt_nn_linear(3, 2, true);
    mt_tensor *w64 = mt_zeros(MT_I64, MT_SHAPE(2, 3)), *bias = mt_zeros(MT_F32, MT_SHAPE(2));
    cr_assert_eq(mt_safetensors_save(tmp_path("i64"), LIST(NT("weight", w64), NT("bias", bias)), 0, NULL, NULL), MT_OK);
    snapshot s = take_snapshot(b);
    cr_assert_eq(mt_module_load(b, tmp_path("i64")), MT_ERR_FORMAT);
    cr_assert(strstr(mt_last_error(), "'weight' is i64 in the file but f32 in the module"), "%s", mt_last_error());
    assert_snapshot(b, &s);

    /* a corrupt or missing file changes nothing either */
    write_all_bytes(tmp_path("junk"), "not a checkpoint", 16);
    cr_assert_eq(mt_module_load(b, tmp_path("junk")), MT_ERR_FORMAT);
    cr_assert_eq(mt_module_load(b, tmp_path("missing")), MT_ERR_IO);
    assert_snapshot(b, &s);
    free_snapshot(&s);
    mt_module_free(b);
    mt_module_free(a);
}

/* f32 and f64 load into each other, as PyTorch's load_state_dict copies
   (param.copy_(input_param)); the module keeps its own dtype. */
Test(safetensors, module_load_converts_between_f32_and_f64, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(6);
    mt_module *a = mt_nn_sequential(mt_nn_linear(3, 2, true), mt_nn_batch_norm1d(2, MT_BN_DEFAULTS));
    mt_module *b = mt_nn_sequential(mt_nn_linear(3, 2, true), mt_nn_batch_norm1d(2, MT_BN_DEFAULTS));
    cr_assert(a && b, "%s", mt_last_error());
    MT_NO_GRAD { mt_fill_(mt_module_buffer(a->children[1], "num_batches_tracked"), 7); }

    /* an f32 file into an f64 module: exact, every f32 being an f64 */
    cr_assert_eq(mt_module_save(a, tmp_path("f32")), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_module_to_dtype(b, MT_F64), MT_OK, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(b->children[0], "weight");
    cr_assert_eq(mt_module_load(b, tmp_path("f32")), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_module_param(b->children[0], "weight"), w, "the same tensor object");
    mt_tensor_list sa = mt_state_dict(a), sb = mt_state_dict(b);
    cr_assert_eq(sa.n, sb.n);
    for (int i = 0; i < sa.n; i++) {
        const mt_tensor *ta = sa.items[i].tensor, *tb = sb.items[i].tensor;
        cr_expect_eq(tb->dtype, ta->dtype == MT_F32 ? MT_F64 : ta->dtype, "%s keeps the module's dtype", sb.items[i].name);
        double va[8], vb[8];
        cr_assert(mt_numel(ta) <= 8 && mt_to_data(ta, MT_F64, va) == MT_OK && mt_to_data(tb, MT_F64, vb) == MT_OK);
        for (int64_t k = 0; k < mt_numel(ta); k++) cr_expect_eq(vb[k], va[k], "%s[%lld]", sa.items[i].name, (long long)k);
    }
    mt_tensor_list_free(&sa);
    mt_tensor_list_free(&sb);

    /* an f64 file into an f32 module: each value rounded to the nearest f32 */
    MT_NO_GRAD { mt_fill_(w, 0.1); }
    cr_assert_eq(mt_module_save(b, tmp_path("f64")), MT_OK, "%s", mt_last_error());
    mt_tensor_list file;
    cr_assert_eq(mt_safetensors_load(tmp_path("f64"), &file), MT_OK);
    cr_assert_eq(find(file, "0.weight")->dtype, MT_F64, "the file holds f64");
    free_loaded(&file);
    cr_assert_eq(mt_module_load(a, tmp_path("f64")), MT_OK, "%s", mt_last_error());
    mt_tensor *wa = mt_module_param(a->children[0], "weight");
    cr_assert_eq(wa->dtype, MT_F32);
    cr_expect_eq(mt_get(wa, (int64_t[]){ 1, 2 }), (double)(float)0.1);

    /* an integer tensor stays integer: an f64 num_batches_tracked is refused */
    mt_module *bn = mt_nn_batch_norm1d(2, MT_BN_DEFAULTS);
    mt_tensor *one = mt_ones(MT_F32, MT_SHAPE(2)), *zero = mt_zeros(MT_F32, MT_SHAPE(2)), *count = mt_scalar(MT_F64, 3);
    cr_assert_eq(mt_safetensors_save(tmp_path("bn"), LIST(NT("weight", one), NT("bias", zero), NT("running_mean", zero),
                                                           NT("running_var", one), NT("num_batches_tracked", count)),
                                     0, NULL, NULL), MT_OK);
    snapshot s = take_snapshot(bn);
    cr_assert_eq(mt_module_load(bn, tmp_path("bn")), MT_ERR_FORMAT);
    cr_assert(strstr(mt_last_error(), "'num_batches_tracked' is f64 in the file but i64 in the module"), "%s", mt_last_error());
    assert_snapshot(bn, &s);
    free_snapshot(&s);
    mt_module_free(bn);
    mt_module_free(a);
    mt_module_free(b);
}

/* An f64 model and its Adam state load into an f32 model and optimizer
   (the state follows its parameter's dtype), and training goes on alike. */
Test(safetensors, checkpoint_load_converts_between_f32_and_f64, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(7);
    mt_module *a = mt_nn_linear(3, 2, true);
    cr_assert_eq(mt_module_to_dtype(a, MT_F64), MT_OK, "%s", mt_last_error());
    mt_tensor_list pa = mt_parameters(a);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.01;
    mt_optimizer *oa = mt_adam(pa, adam_opts);
    train_steps(a, oa, 3, 10);
    const char *path = tmp_path("ckpt64.safetensors");
    cr_assert_eq(mt_checkpoint_save(path, a, oa), MT_OK, "%s", mt_last_error());

    mt_module *b = mt_nn_linear(3, 2, true);
    mt_tensor_list pb = mt_parameters(b);
    mt_optimizer *ob = mt_adam(pb, adam_opts);
    cr_assert_eq(mt_checkpoint_load(path, b, ob), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_optimizer_steps(ob), 3);
    mt_tensor_list state = mt_optimizer_state(ob);
    for (int i = 0; i < state.n; i++)
        if (strstr(state.items[i].name, "exp_avg"))
            cr_expect_eq(state.items[i].tensor->dtype, MT_F32, "%s follows its f32 parameter", state.items[i].name);
    mt_tensor_list_free(&state);

    train_steps(a, oa, 2, 20);
    train_steps(b, ob, 2, 20);
    double wa[6], wb[6];
    cr_assert_eq(mt_to_data(mt_module_param(a, "weight"), MT_F64, wa), MT_OK);
    cr_assert_eq(mt_to_data(mt_module_param(b, "weight"), MT_F64, wb), MT_OK);
    for (int k = 0; k < 6; k++) cr_expect(fabs(wb[k] - wa[k]) <= 1e-5 * (1 + fabs(wa[k])), "weight[%d]: f32 %.9g, f64 %.9g", k, wb[k], wa[k]);

    mt_optimizer_free(oa);
    mt_optimizer_free(ob);
    mt_tensor_list_free(&pa);
    mt_tensor_list_free(&pb);
    mt_module_free(a);
    mt_module_free(b);
}

Test(safetensors, checkpoint_round_trip_with_adam, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(3);
    mt_module *a = mt_nn_linear(3, 2, true);
    mt_tensor_list pa = mt_parameters(a);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.01;
    mt_optimizer *oa = mt_adam(pa, adam_opts);
    train_steps(a, oa, 3, 10);
    mt_optimizer_set_lr(oa, 0.1 / 3);   /* as a scheduler would: restored from the metadata */

    const char *path = tmp_path("ckpt.safetensors");
    cr_assert_eq(mt_checkpoint_save(path, a, oa), MT_OK, "%s", mt_last_error());

    /* a fresh model and optimizer take the state */
    mt_module *b = mt_nn_linear(3, 2, true);
    mt_tensor_list pb = mt_parameters(b);
    adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.01;
    mt_optimizer *ob = mt_adam(pb, adam_opts);
    cr_assert_eq(mt_checkpoint_load(path, b, ob), MT_OK, "%s", mt_last_error());
    assert_state_equal(a, b);
    assert_optim_equal(oa, ob);
    cr_assert_eq(mt_optimizer_steps(ob), 3);
    cr_assert_eq(mt_optimizer_lr(ob), 0.1 / 3);

    /* and training goes on identically */
    train_steps(a, oa, 2, 20);
    train_steps(b, ob, 2, 20);
    assert_state_equal(a, b);
    assert_optim_equal(oa, ob);

    /* the file's names */
    mt_tensor_list got;
    cr_assert_eq(mt_safetensors_load(path, &got), MT_OK);
    cr_assert_not_null(find(got, "model.weight"));
    cr_assert_not_null(find(got, "model.bias"));
    cr_assert_not_null(find(got, "optim.step"));
    cr_assert_not_null(find(got, "optim.weight.exp_avg"));
    cr_assert_not_null(find(got, "optim.weight.exp_avg_sq"));
    free_loaded(&got);

    /* a model-only load of the same file */
    mt_module *c = mt_nn_linear(3, 2, true);
    cr_assert_eq(mt_checkpoint_load(path, c, NULL), MT_OK, "%s", mt_last_error());
    mt_module_free(c);

    mt_optimizer_free(oa);
    mt_optimizer_free(ob);
    mt_tensor_list_free(&pa);
    mt_tensor_list_free(&pb);
    mt_module_free(a);
    mt_module_free(b);
}

/* A checkpoint with the caller's metadata (a run's settings and position):
   written after "optim.lr", read back in file order with the state, and
   bitwise the same tensors as mt_checkpoint_save writes. */
Test(safetensors, checkpoint_with_metadata, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(5);
    mt_module *a = mt_nn_linear(3, 2, true);
    mt_tensor_list pa = mt_parameters(a);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.01;
    mt_optimizer *oa = mt_adam(pa, adam_opts);
    train_steps(a, oa, 2, 40);
    const char *keys[] = { "task", "epoch" }, *values[] = { "demo", "3" };
    const char *path = tmp_path("meta.safetensors");
    cr_assert_eq(mt_checkpoint_save_meta(path, a, oa, 2, keys, values), MT_OK, "%s", mt_last_error());

    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_read_metadata(path, &meta), MT_OK, "%s", mt_last_error());
    cr_assert_eq(meta.n, 3);
    cr_expect_str_eq(meta.keys[0], "optim.lr");
    cr_expect_str_eq(meta.keys[1], "task");
    cr_expect_str_eq(meta.values[1], "demo");
    cr_expect_str_eq(meta.keys[2], "epoch");
    cr_expect_str_eq(meta.values[2], "3");
    mt_safetensors_metadata_free(&meta);

    /* loading returns the pairs with the state */
    mt_module *b = mt_nn_linear(3, 2, true);
    mt_tensor_list pb = mt_parameters(b);
    adam_opts.lr = 0.5;
    mt_optimizer *ob = mt_adam(pb, adam_opts);
    cr_assert_eq(mt_checkpoint_load_meta(path, b, ob, &meta), MT_OK, "%s", mt_last_error());
    assert_state_equal(a, b);
    assert_optim_equal(oa, ob);
    cr_expect_eq(mt_optimizer_lr(ob), 0.01);
    cr_assert_eq(meta.n, 3);
    cr_expect_str_eq(meta.keys[2], "epoch");
    mt_safetensors_metadata_free(&meta);

    /* the same tensors as without metadata */
    cr_assert_eq(mt_checkpoint_save(tmp_path("plain.safetensors"), a, oa), MT_OK);
    mt_tensor_list with, without;
    cr_assert_eq(mt_safetensors_load(path, &with), MT_OK);
    cr_assert_eq(mt_safetensors_load(tmp_path("plain.safetensors"), &without), MT_OK);
    cr_assert_eq(with.n, without.n);
    for (int i = 0; i < with.n; i++) {
        cr_assert_str_eq(with.items[i].name, without.items[i].name);
        assert_tensor_equal(with.items[i].tensor, without.items[i].tensor, with.items[i].name);
    }
    free_loaded(&with);
    free_loaded(&without);

    /* a failed load leaves *meta empty; "optim.lr" is the checkpoint's own key */
    meta.n = 7;
    cr_assert_eq(mt_checkpoint_load_meta(tmp_path("missing"), b, ob, &meta), MT_ERR_IO);
    cr_expect_eq(meta.n, 0);
    cr_expect_null(meta.keys);
    const char *bad_keys[] = { "optim.lr" }, *bad_values[] = { "1" };
    cr_assert_eq(mt_checkpoint_save_meta(tmp_path("bad"), a, oa, 1, bad_keys, bad_values), MT_ERR_ARGUMENT);
    cr_expect(strstr(mt_last_error(), "optim.lr"), "%s", mt_last_error());
    const char *dup_keys[] = { "epoch", "epoch" }, *dup_values[] = { "1", "2" };
    cr_assert_neq(mt_checkpoint_save_meta(tmp_path("dup"), a, oa, 2, dup_keys, dup_values), MT_OK);

    mt_optimizer_free(oa);
    mt_optimizer_free(ob);
    mt_tensor_list_free(&pa);
    mt_tensor_list_free(&pb);
    mt_module_free(a);
    mt_module_free(b);
}

Test(safetensors, checkpoint_load_failure_changes_nothing, .init = st_setup, .fini = st_teardown)
{
    mt_manual_seed(4);
    mt_module *a = mt_nn_linear(3, 2, true);
    mt_tensor_list pa = mt_parameters(a);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.01;
    mt_optimizer *oa = mt_adam(pa, adam_opts);
    train_steps(a, oa, 2, 30);
    const char *path = tmp_path("ckpt.safetensors");
    cr_assert_eq(mt_checkpoint_save(path, a, oa), MT_OK, "%s", mt_last_error());

    /* a model of another shape, with an optimizer that has stepped */
    mt_module *b = mt_nn_linear(4, 2, true);
    mt_tensor_list pb = mt_parameters(b);
    adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.5;
    mt_optimizer *ob = mt_adam(pb, adam_opts);
    mt_generator gen = mt_generator_new(5);
    for (int s = 0; s < 2; s++) {
        mt_scope scope = mt_scope_begin();
        mt_tensor *y = mt_forward(b, mt_randn(&gen, MT_F32, MT_SHAPE(2, 4)));
        mt_optimizer_zero_grad(ob);
        cr_assert_eq(mt_backward(mt_sum_all(mt_mul(y, y))), MT_OK);
        cr_assert_eq(mt_step(ob), MT_OK);
        mt_scope_end(scope);
    }
    snapshot s = take_snapshot(b);
    mt_tensor_list before = mt_optimizer_state(ob);
    mt_tensor *saved[16];
    cr_assert(before.n <= 16);
    for (int i = 0; i < before.n; i++) {
        saved[i] = mt_keep(mt_empty_like(before.items[i].tensor));
        cr_assert_eq(mt_copy_(saved[i], before.items[i].tensor), MT_OK);
    }

    cr_assert_eq(mt_checkpoint_load(path, b, ob), MT_ERR_FORMAT);
    cr_assert(strstr(mt_last_error(), "'model.weight' has shape [2, 3] in the file but [2, 4] in the model"), "%s",
              mt_last_error());
    assert_snapshot(b, &s);
    mt_tensor_list after = mt_optimizer_state(ob);
    cr_assert_eq(after.n, before.n);
    for (int i = 0; i < before.n; i++) assert_tensor_equal(find(after, before.items[i].name), saved[i], before.items[i].name);
    cr_assert_eq(mt_optimizer_steps(ob), 2);
    cr_assert_eq(mt_optimizer_lr(ob), 0.5);

    /* a model-only file cannot restore an optimizer */
    mt_module *c = mt_nn_linear(3, 2, true);
    mt_tensor_list pc = mt_parameters(c);
    mt_optimizer *oc = mt_adam(pc, MT_ADAM_DEFAULTS);
    cr_assert_eq(mt_checkpoint_save(tmp_path("model-only"), a, NULL), MT_OK);
    snapshot sc = take_snapshot(c);
    cr_assert_eq(mt_checkpoint_load(tmp_path("model-only"), c, oc), MT_ERR_FORMAT);
    cr_assert(strstr(mt_last_error(), "no optimizer state"), "%s", mt_last_error());
    assert_snapshot(c, &sc);
    /* nor does a bare state dict load as a checkpoint */
    cr_assert_eq(mt_module_save(a, tmp_path("bare")), MT_OK);
    cr_assert_eq(mt_checkpoint_load(tmp_path("bare"), c, NULL), MT_ERR_FORMAT);
    cr_assert(strstr(mt_last_error(), "unexpected 'weight'"), "%s", mt_last_error());
    assert_snapshot(c, &sc);
    free_snapshot(&sc);

    for (int i = 0; i < before.n; i++) mt_free(saved[i]);
    mt_tensor_list_free(&before);
    mt_tensor_list_free(&after);
    free_snapshot(&s);
    mt_optimizer_free(oa);
    mt_optimizer_free(ob);
    mt_optimizer_free(oc);
    mt_tensor_list_free(&pa);
    mt_tensor_list_free(&pb);
    mt_tensor_list_free(&pc);
    mt_module_free(a);
    mt_module_free(b);
    mt_module_free(c);
}

/* PyTorch lets a state dict lack num_batches_tracked even in strict mode, and
   load_state_dict(strict=False) reports missing and unexpected keys. */
Test(safetensors, missing_num_batches_tracked_and_non_strict_load, .init = st_setup, .fini = st_teardown)
{
    char path[256];
    snprintf(path, sizeof path, "%s/partial.safetensors", tmp_dir);
    mt_module *src = mt_nn_sequential(mt_nn_linear(4, 3, true), mt_nn_batch_norm1d(3, MT_BN_DEFAULTS));
    mt_tensor_list sd = mt_state_dict(src);
    /* the file: everything but 1.num_batches_tracked, plus an extra tensor */
    mt_named_tensor items[16];
    int n = 0;
    for (int i = 0; i < sd.n; i++)
        if (strcmp(sd.items[i].name, "1.num_batches_tracked") != 0) items[n++] = sd.items[i];
    mt_tensor *extra = mt_ones(MT_F32, MT_SHAPE(2));
    cr_assert(mt_safetensors_save(path, (mt_tensor_list){ n, items }, 0, NULL, NULL) == MT_OK, "%s", mt_last_error());

    mt_module *dst = mt_nn_sequential(mt_nn_linear(4, 3, true), mt_nn_batch_norm1d(3, MT_BN_DEFAULTS));
    cr_assert(mt_module_load(dst, path) == MT_OK, "strict load without num_batches_tracked: %s", mt_last_error());
    cr_expect_float_eq(mt_get(mt_module_param(dst->children[0], "weight"), (int64_t[]){ 1, 2 }),
                       mt_get(mt_module_param(src->children[0], "weight"), (int64_t[]){ 1, 2 }), 0);

    items[n++] = (mt_named_tensor){ "head.bias", extra };
    cr_assert(mt_safetensors_save(path, (mt_tensor_list){ n - 1, items + 1 }, 0, NULL, NULL) == MT_OK);  /* no 0.weight */
    cr_expect_neq(mt_module_load(dst, path), MT_OK, "strict: a missing weight and an extra key are errors");
    mt_load_report r;
    cr_assert(mt_module_load_ex(dst, path, (mt_load_opts){ .non_strict = true }, &r) == MT_OK, "%s", mt_last_error());
    cr_expect_geq(r.n_missing, 2);   /* 0.weight, and the optional 1.num_batches_tracked */
    bool weight_missing = false;
    for (int i = 0; i < r.n_missing; i++) weight_missing |= strcmp(r.missing[i], "0.weight") == 0;
    cr_expect(weight_missing);
    cr_expect_eq(r.n_unexpected, 1);
    if (r.n_unexpected == 1) cr_expect_str_eq(r.unexpected[0], "head.bias");
    mt_load_report_free(&r);
    mt_tensor_list_free(&sd);
    mt_free(extra);
    mt_module_free(src);
    mt_module_free(dst);
}
