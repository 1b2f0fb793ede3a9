/*
 * fuzz_npy.c - the .npy reader (engine/io/npy.c) on any bytes.
 *
 * Each input is read four ways: as numbers and as strings, from memory
 * (mt_npy_load_buffer) and from a file (mt_npy_load, which reads the header
 * and the data in its own code). The checks, beyond the sanitizers':
 *   - the memory and file readers agree: both fail with the same code, or
 *     both give the same tensor (dtype, shape, bytes) or the same strings;
 *   - a failure names the file ("npy: <name>: ...") and leaves nothing
 *     allocated;
 *   - a tensor that loads saves and loads back to the same tensor.
 */
#include "fuzz_common.h"

static void check_numbers(const uint8_t *data, size_t size, const char *file)
{
    size_t before = fuzz_cpu_allocated();
    mt_clear_error();
    mt_tensor *m = mt_npy_load_buffer(data, size, "fuzz.npy");
    mt_status sm = m ? MT_OK : mt_last_status();
    if (!m) fuzz_check_error("npy: fuzz.npy: ");
    FUZZ_CHECK(m || fuzz_cpu_allocated() == before, "a failed load left %zu bytes", fuzz_cpu_allocated() - before);

    mt_clear_error();
    mt_tensor *f = mt_npy_load(file);
    mt_status sf = f ? MT_OK : mt_last_status();
    if (!f) fuzz_check_error("npy: ");
    FUZZ_CHECK(sm == sf, "the buffer reader says %d, the file reader %d (%s)", sm, sf, mt_last_error());
    if (m) {
        FUZZ_CHECK(fuzz_same_tensor(m, f), "the buffer and file readers give different tensors");
        FUZZ_CHECK(mt_is_contiguous(m) && mt_device_of(m).type == MT_DEVICE_CPU, "not a contiguous CPU tensor");
        const char *again = fuzz_path("again.npy");
        FUZZ_CHECK(mt_npy_save_with(again, m, &(mt_npy_save_opts){ .no_sync = true }) == MT_OK, "%s", mt_last_error());
        mt_tensor *r = mt_npy_load(again);
        FUZZ_CHECK(r && fuzz_same_tensor(m, r), "save and load changed the tensor: %s", r ? "" : mt_last_error());
        mt_free(r);
    }
    mt_free(m);
    mt_free(f);
    FUZZ_CHECK(fuzz_cpu_allocated() == before, "%zu bytes left", fuzz_cpu_allocated() - before);
}

static bool same_strings(const mt_string_array *a, const mt_string_array *b)
{
    if (a->n != b->n || a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++) if (a->shape[d] != b->shape[d]) return false;
    for (int64_t i = 0; i < a->n; i++) if (strcmp(a->strings[i], b->strings[i]) != 0) return false;
    return true;
}

static void check_strings(const uint8_t *data, size_t size, const char *file)
{
    mt_string_array m = { .n = -1 }, f = { .n = -1 };
    mt_clear_error();
    mt_status sm = mt_npy_load_strings_buffer(data, size, "fuzz.npy", &m);
    if (sm != MT_OK) {
        fuzz_check_error("npy: fuzz.npy: ");
        FUZZ_CHECK(m.n == -1, "a failed load touched its output");
    }
    mt_clear_error();
    mt_status sf = mt_npy_load_strings(file, &f);
    if (sf != MT_OK) fuzz_check_error("npy: ");
    FUZZ_CHECK(sm == sf, "the buffer reader says %d, the file reader %d (%s)", sm, sf, mt_last_error());
    if (sm == MT_OK) {
        FUZZ_CHECK(same_strings(&m, &f), "the buffer and file readers give different strings");
        int64_t n = 1;
        for (int d = 0; d < m.ndim; d++) n *= m.shape[d];
        FUZZ_CHECK(n == m.n, "%lld strings for a shape of %lld", (long long)m.n, (long long)n);
        /* strings written back as a 1-d array read back the same */
        const char *again = fuzz_path("again_s.npy");
        FUZZ_CHECK(mt_npy_save_strings_with(again, m.n, (const char *const *)m.strings,
                                            &(mt_npy_save_opts){ .no_sync = true }) == MT_OK, "%s", mt_last_error());
        mt_string_array r;
        FUZZ_CHECK(mt_npy_load_strings(again, &r) == MT_OK, "%s", mt_last_error());
        FUZZ_CHECK(r.n == m.n, "%lld strings came back of %lld", (long long)r.n, (long long)m.n);
        for (int64_t i = 0; i < m.n; i++) FUZZ_CHECK(strcmp(r.strings[i], m.strings[i]) == 0, "string %lld", (long long)i);
        mt_string_array_free(&r);
        mt_string_array_free(&m);
        mt_string_array_free(&f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *file = fuzz_path("fuzz.npy");
    fuzz_write(file, data, size);
    check_numbers(data, size, file);
    check_strings(data, size, file);
    return 0;
}
