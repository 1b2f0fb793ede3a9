/*
 * make_corpus.c - writes the seed inputs of tests/fuzz/corpus (docs/fuzzing.md):
 * small valid files and edge cases for each target, made by mytorch's own
 * writers (which write what NumPy and the safetensors package write) and a
 * few by hand. Run from the repository root after a change to a format:
 *
 *   cmake --build build --target fuzz_make_corpus && ./build/fuzz_make_corpus tests/fuzz/corpus
 *
 * The .npy fixtures of tests/fixtures/npy (written by NumPy) are seeds too:
 * the fuzz runs and the replay tests read that folder as a second corpus.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <sys/stat.h>

static char root[1024];

static const char *out(const char *target, const char *name)
{
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s/%s", root, target);
    mkdir(buf, 0755);
    snprintf(buf, sizeof buf, "%s/%s/%s", root, target, name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    FUZZ_CHECK(fread(b, 1, (size_t)len, f) == (size_t)len, "%s", path);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* The file at path, with a first byte prepended (the npz and checkpoint targets' flags). */
static void with_flags(const char *path, unsigned flags, const char *target, const char *name)
{
    size_t n;
    unsigned char *b = slurp(path, &n);
    unsigned char *c = malloc(n + 1);
    c[0] = (unsigned char)flags;
    memcpy(c + 1, b, n);
    fuzz_write(out(target, name), c, n + 1);
    free(b);
    free(c);
}

static void npy_raw(const char *name, const char *header, size_t ndata)
{
    unsigned char buf[512] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };
    size_t h = strlen(header);
    buf[8] = (unsigned char)h;
    memcpy(buf + 10, header, h);
    for (size_t i = 0; i < ndata; i++) buf[10 + h + i] = (unsigned char)(i * 37 + 1);
    fuzz_write(out("npy", name), buf, 10 + h + ndata);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s tests/fuzz/corpus\n", argv[0]); return 2; }
    snprintf(root, sizeof root, "%s", argv[1]);
    mkdir(root, 0755);
    mt_scope scope = mt_scope_begin();   /* every tensor below is freed at its end */
    mt_npy_save_opts fast = { .no_sync = true };

    /* ---- npy: what mytorch writes (NumPy's bytes), plus headers NumPy also reads */
    mt_tensor *f = mt_arange(MT_F32, 0, 6, 1), *f23 = mt_reshape(f, MT_SHAPE(2, 3));
    mt_npy_save_with(out("npy", "f4_2x3.npy"), f23, &fast);
    mt_npy_save_with(out("npy", "f8_scalar.npy"), mt_scalar(MT_F64, -1.5), &fast);
    mt_npy_save_with(out("npy", "i8_empty_big_dims.npy"), mt_zeros(MT_I64, MT_SHAPE(0, 1LL << 20, 1LL << 20)), &fast);
    mt_npy_save_with(out("npy", "b1.npy"), mt_ones(MT_BOOL, MT_SHAPE(3)), &fast);
    const char *words[3] = { "[SOS]", "\xc5\x8b", "" };
    mt_npy_save_strings_with(out("npy", "U_strings.npy"), 3, words, &fast);
    npy_raw("S_fortran_2x2.npy", "{'descr': '|S2', 'fortran_order': True, 'shape': (2, 2), }\n", 8);
    npy_raw("i2_be_fortran.npy", "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }\n", 12);
    npy_raw("f2.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }\n", 8);
    npy_raw("u8.npy", "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }\n", 8);

    /* ---- npz: each npy seed as a member, in each packing; and whole archives */
    static const char *const members[] = { "f4_2x3.npy", "U_strings.npy", "S_fortran_2x2.npy", "f8_scalar.npy" };
    char src[2048], name[256];
    for (int i = 0; i < 4; i++)
        for (unsigned flags = 0; flags < 16; flags += 5) {   /* 0, 5, 10, 15: each bit set in some */
            snprintf(src, sizeof src, "%s/npy/%s", root, members[i]);
            snprintf(name, sizeof name, "flags%u_%s", flags, members[i]);
            with_flags(src, flags, "npz", name);
        }
    mt_named_tensor items[2] = { { (char *)"x", f23 }, { (char *)"s", mt_scalar(MT_I32, 3) } };
    mt_npz_save(fuzz_path("stored.npz"), (mt_tensor_list){ 2, items }, false);
    mt_npz_save(fuzz_path("deflated.npz"), (mt_tensor_list){ 2, items }, true);
    mt_npz_save(fuzz_path("empty.npz"), (mt_tensor_list){ 0, NULL }, false);
    with_flags(fuzz_path("stored.npz"), 0x80, "npz", "raw_stored.npz");
    with_flags(fuzz_path("deflated.npz"), 0x80, "npz", "raw_deflated.npz");
    with_flags(fuzz_path("empty.npz"), 0x80, "npz", "raw_empty.npz");

    /* ---- safetensors: every dtype, 0-d and empty tensors, metadata, no tensors */
    mt_named_tensor all[6] = {
        { (char *)"f32", f23 }, { (char *)"f64", mt_scalar(MT_F64, 2) }, { (char *)"i32", mt_arange(MT_I32, 0, 3, 1) },
        { (char *)"i64", mt_zeros(MT_I64, MT_SHAPE(0, 4)) }, { (char *)"u8", mt_ones(MT_U8, MT_SHAPE(2, 1, 2)) },
        { (char *)"bool", mt_ones(MT_BOOL, MT_SHAPE(1)) },
    };
    const char *keys[2] = { "format", "note" }, *values[2] = { "pt", "caf\xc3\xa9 \"q\"\n" };
    mt_safetensors_save(out("safetensors", "every_dtype.safetensors"), (mt_tensor_list){ 6, all }, 2, keys, values);
    mt_safetensors_save(out("safetensors", "one.safetensors"), (mt_tensor_list){ 1, all }, 0, NULL, NULL);
    mt_safetensors_save(out("safetensors", "nothing.safetensors"), (mt_tensor_list){ 0, NULL }, 1, keys, values);

    /* ---- checkpoint: the fuzz target's own model, with and without AMSGrad, and a bare state dict */
    for (int ams = 0; ams < 2; ams++) {
        fuzz_rig r = fuzz_rig_new(ams);
        FUZZ_CHECK(fuzz_rig_train(&r, 2) == MT_OK, "%s", mt_last_error());
        FUZZ_CHECK(mt_checkpoint_save(fuzz_path("ckpt"), r.net, r.opt) == MT_OK, "%s", mt_last_error());
        with_flags(fuzz_path("ckpt"), (unsigned)ams, "checkpoint", ams ? "adam_amsgrad.safetensors" : "adam.safetensors");
        if (!ams) {
            FUZZ_CHECK(mt_checkpoint_save(fuzz_path("ckpt"), r.net, NULL) == MT_OK, "%s", mt_last_error());
            with_flags(fuzz_path("ckpt"), 0, "checkpoint", "model_only.safetensors");
            FUZZ_CHECK(mt_module_save(r.net, fuzz_path("ckpt")) == MT_OK, "%s", mt_last_error());
            with_flags(fuzz_path("ckpt"), 0, "checkpoint", "state_dict.safetensors");
        }
        fuzz_rig_free(&r);
    }
    mt_scope_end(scope);
    printf("make_corpus: seeds written under %s\n", root);
    return 0;
}
