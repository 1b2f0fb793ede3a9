/*
 * fuzz_npz.c - the .npz reader (engine/io/npy.c, through libzip) on any member.
 *
 * The first byte of an input chooses how it is packed, the rest is a member:
 *   bit 7 set     the rest is the whole .npz file (the zip layer itself);
 *   else          the rest is the bytes of one member, wrapped by this
 *                 harness in a valid zip archive built with libzip, so that
 *                 every input reaches the .npy layer inside the archive:
 *                 bit 0 deflated (else stored), bit 1 also a second member
 *                 "b.npy" of the same bytes, bit 2 the member is named "a"
 *                 (no ".npy" suffix), bit 3 a folder entry "d/" first.
 * The checks: opening and listing never fail on a valid archive; each
 * member loads (as numbers and as strings) exactly as mt_npy_load_buffer
 * loads the same bytes (same status; same tensor or strings); failures name
 * the archive and the member and leave nothing allocated.
 */
#include "fuzz_common.h"

#include <zip.h>

/* Writes the member bytes as an archive at path, laid out by flags. */
static void pack(const char *path, unsigned flags, const uint8_t *member, size_t size)
{
    int code = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);
    FUZZ_CHECK(z != NULL, "zip_open: %d", code);
    if (flags & 8) FUZZ_CHECK(zip_dir_add(z, "d", ZIP_FL_ENC_UTF_8) >= 0, "zip_dir_add");
    const char *names[2] = { flags & 4 ? "a" : "a.npy", "b.npy" };
    for (int k = 0; k < ((flags & 2) ? 2 : 1); k++) {
        zip_source_t *src = zip_source_buffer(z, member, size, 0);
        FUZZ_CHECK(src != NULL, "zip_source_buffer");
        zip_int64_t i = zip_file_add(z, names[k], src, ZIP_FL_ENC_UTF_8);
        FUZZ_CHECK(i >= 0, "zip_file_add: %s", zip_strerror(z));
        FUZZ_CHECK(zip_set_file_compression(z, (zip_uint64_t)i, flags & 1 ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) == 0,
                   "zip_set_file_compression");
    }
    FUZZ_CHECK(zip_close(z) == 0, "zip_close: %s", zip_strerror(z));
}

/* Loading member name of npz agrees with loading its bytes from memory. */
static void check_member(mt_npz *npz, const char *name, const uint8_t *member, size_t size, bool know_bytes)
{
    size_t before = fuzz_cpu_allocated();
    mt_clear_error();
    mt_tensor *t = mt_npz_load(npz, name);
    mt_status st = t ? MT_OK : mt_last_status();
    if (!t) fuzz_check_error("npz: ");
    FUZZ_CHECK(t || fuzz_cpu_allocated() == before, "a failed load left memory");
    mt_string_array a = { .n = -1 };
    mt_clear_error();
    mt_status sa = mt_npz_load_strings(npz, name, &a);
    if (sa != MT_OK) { fuzz_check_error("npz: "); FUZZ_CHECK(a.n == -1, "a failed load touched its output"); }
    if (know_bytes) {
        mt_tensor *m = mt_npy_load_buffer(member, size, "m");
        FUZZ_CHECK((m != NULL) == (t != NULL), "the member %s as a buffer but %s in the archive (%s)",
                   m ? "loads" : "fails", t ? "loads" : "fails", mt_last_error());
        if (m) FUZZ_CHECK(fuzz_same_tensor(m, t), "the member's tensor differs from the buffer's");
        if (!t) {
            mt_npy_load_buffer(member, size, "m");
            FUZZ_CHECK(mt_last_status() == st, "different error codes: %d in the archive, %d as a buffer", st,
                       mt_last_status());
        }
        mt_free(m);
        mt_string_array b = { .n = -1 };
        mt_status sb = mt_npy_load_strings_buffer(member, size, "m", &b);
        FUZZ_CHECK(sb == sa, "strings: %d in the archive, %d as a buffer", sa, sb);
        if (sb == MT_OK) {
            FUZZ_CHECK(a.n == b.n, "string counts differ");
            for (int64_t i = 0; i < a.n; i++) FUZZ_CHECK(strcmp(a.strings[i], b.strings[i]) == 0, "string %lld", (long long)i);
        }
        mt_string_array_free(&b);
    }
    mt_string_array_free(&a);
    mt_free(t);
    FUZZ_CHECK(fuzz_cpu_allocated() == before, "%zu bytes left", fuzz_cpu_allocated() - before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    unsigned flags = data[0];
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    const char *path = fuzz_path("fuzz.npz");
    bool raw = flags & 0x80;
    if (raw) fuzz_write(path, rest, n);
    else pack(path, flags, rest, n);

    mt_npz *npz = NULL;
    mt_clear_error();
    mt_status st = mt_npz_open(path, &npz);
    if (st != MT_OK) {
        FUZZ_CHECK(raw, "a valid archive did not open: %s", mt_last_error());
        fuzz_check_error("npz: ");
        FUZZ_CHECK(npz == NULL, "a failed open gave an archive");
        return 0;
    }
    int count = -1;
    const char *const *names = mt_npz_names(npz, &count);
    FUZZ_CHECK(count >= 0 && (count == 0 || names), "bad name list");
    if (!raw) FUZZ_CHECK(count == ((flags & 2) ? 2 : 1), "%d arrays listed", count);
    for (int i = 0; i < count && i < 16; i++) check_member(npz, names[i], rest, n, !raw);
    /* a name that is not there */
    FUZZ_CHECK(mt_npz_load(npz, "no such member") == NULL && mt_last_status() == MT_ERR_ARGUMENT, "missing member");
    mt_npz_close(npz);
    return 0;
}
