/*
 * fuzz_safetensors.c - the safetensors reader (engine/io/safetensors.c) on any
 * bytes, as a file.
 *
 * The checks, beyond the sanitizers': mt_safetensors_read_metadata (the
 * header alone) and mt_safetensors_load_with_metadata agree; a failure
 * names the file, leaves the outputs untouched and nothing allocated; a
 * file that loads has unique names and contiguous CPU tensors, and writing
 * its tensors and metadata back and reading them again gives the same
 * names, tensors and metadata.
 */
#include "fuzz_common.h"

static void free_list(mt_tensor_list *l)
{
    for (int i = 0; i < l->n; i++) mt_free(l->items[i].tensor);
    mt_tensor_list_free(l);
}

static mt_tensor *find(mt_tensor_list l, const char *name)
{
    for (int i = 0; i < l.n; i++) if (strcmp(l.items[i].name, name) == 0) return l.items[i].tensor;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("fuzz.safetensors");
    fuzz_write(path, data, size);
    size_t before = fuzz_cpu_allocated();

    mt_safetensors_metadata only = { -1, NULL, NULL };
    mt_clear_error();
    mt_status sm = mt_safetensors_read_metadata(path, &only);
    if (sm != MT_OK) { fuzz_check_error("safetensors: "); FUZZ_CHECK(only.n == -1, "a failed read touched its output"); }

    mt_named_tensor sentinel;
    mt_tensor_list list = { -1, &sentinel };
    mt_safetensors_metadata meta = { -1, NULL, NULL };
    mt_clear_error();
    mt_status sl = mt_safetensors_load_with_metadata(path, &list, &meta);
    FUZZ_CHECK(sl == sm, "the header reader says %d, the loader %d (%s)", sm, sl, mt_last_error());
    if (sl != MT_OK) {
        fuzz_check_error("safetensors: ");
        FUZZ_CHECK(list.n == -1 && list.items == &sentinel && meta.n == -1, "a failed load touched its outputs");
        FUZZ_CHECK(fuzz_cpu_allocated() == before, "a failed load left %zu bytes", fuzz_cpu_allocated() - before);
        return 0;
    }
    FUZZ_CHECK(only.n == meta.n, "the metadata differs between the two readers");
    for (int i = 0; i < list.n; i++) {
        FUZZ_CHECK(mt_is_contiguous(list.items[i].tensor), "'%s' is not contiguous", list.items[i].name);
        for (int j = 0; j < i; j++) FUZZ_CHECK(strcmp(list.items[i].name, list.items[j].name) != 0, "a name twice");
    }

    /* written back and read again */
    const char *again = fuzz_path("again.safetensors");
    mt_status sw = mt_safetensors_save(again, list, meta.n, (const char *const *)meta.keys,
                                       (const char *const *)meta.values);
    FUZZ_CHECK(sw == MT_OK, "what was read cannot be written: %s", mt_last_error());
    mt_tensor_list back;
    mt_safetensors_metadata back_meta;
    FUZZ_CHECK(mt_safetensors_load_with_metadata(again, &back, &back_meta) == MT_OK, "%s", mt_last_error());
    FUZZ_CHECK(back.n == list.n && back_meta.n == meta.n, "counts differ after a round trip");
    for (int i = 0; i < list.n; i++) {
        mt_tensor *t = find(back, list.items[i].name);
        FUZZ_CHECK(t && fuzz_same_tensor(t, list.items[i].tensor), "'%s' changed in a round trip", list.items[i].name);
    }
    for (int i = 0; i < meta.n; i++) {
        FUZZ_CHECK(strcmp(meta.keys[i], back_meta.keys[i]) == 0 && strcmp(meta.values[i], back_meta.values[i]) == 0,
                   "metadata %d changed in a round trip", i);
        FUZZ_CHECK(strcmp(meta.keys[i], only.keys[i]) == 0 && strcmp(meta.values[i], only.values[i]) == 0,
                   "metadata %d differs between the readers", i);
    }
    free_list(&back);
    free_list(&list);
    mt_safetensors_metadata_free(&back_meta);
    mt_safetensors_metadata_free(&meta);
    mt_safetensors_metadata_free(&only);
    FUZZ_CHECK(fuzz_cpu_allocated() == before, "%zu bytes left", fuzz_cpu_allocated() - before);
    return 0;
}
