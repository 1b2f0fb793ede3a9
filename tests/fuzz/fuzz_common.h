/*
 * fuzz_common.h - what the fuzz targets of tests/fuzz share (docs/fuzzing.md):
 *
 *   - a private folder (under /dev/shm when writable, else $TMPDIR or /tmp)
 *     for the readers that take a path, removed when the process exits;
 *   - FUZZ_CHECK: an invariant that must hold for every input (a failed
 *     check aborts, which libFuzzer reports as a crash and saves the input);
 *   - the checks every target makes after a reader returns: an error has a
 *     code and a message starting with the reader's prefix, and nothing the
 *     reader allocated is left behind (the CPU pool's live bytes are back to
 *     where they were);
 *   - the model and optimizer the checkpoint target loads into, shared with
 *     make_corpus.c, which writes the seed checkpoints for it.
 *
 * Each target defines LLVMFuzzerTestOneInput. Built by clang with
 * -fsanitize=fuzzer it is a libFuzzer program; linked with replay.c (any
 * compiler) it runs the files it is given once each: how the kept corpus and
 * regression inputs are replayed by ctest in every build.
 */
#ifndef MT_FUZZ_COMMON_H
#define MT_FUZZ_COMMON_H

#include "mytorch/mytorch.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                    \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__,        \
                    __LINE__, #cond);                                            \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* ---------------------------------------------------------------- files */
static char fuzz_folder[256];

static inline void fuzz_remove_folder(void)
{
    DIR *d = opendir(fuzz_folder);
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", fuzz_folder, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(fuzz_folder);
}

/* fuzz_folder/name; the folder is made on the first call. */
static inline const char *fuzz_path(const char *name)
{
    static char bufs[4][512];
    static int k;
    if (!fuzz_folder[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(fuzz_folder, sizeof fuzz_folder, "%s/mt_fuzz_XXXXXX", base);
        FUZZ_CHECK(mkdtemp(fuzz_folder) != NULL, "cannot make a folder in %s", base);
        atexit(fuzz_remove_folder);
    }
    char *b = bufs[k++ % 4];
    snprintf(b, 512, "%s/%s", fuzz_folder, name);
    return b;
}

static inline void fuzz_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "cannot create %s", path);
    FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "cannot write %s", path);
    FUZZ_CHECK(fclose(f) == 0, "cannot close %s", path);
}

/* ---------------------------------------------------------------- the reader's contract */
static inline size_t fuzz_cpu_allocated(void) { return mt_device_memory_stats(mt_cpu()).allocated; }

/* A reader failed: it says why, with its prefix ("npy: <name>: "). */
static inline void fuzz_check_error(const char *prefix)
{
    FUZZ_CHECK(mt_last_status() != MT_OK, "a failed call set no error code");
    FUZZ_CHECK(strncmp(mt_last_error(), prefix, strlen(prefix)) == 0, "message '%s' does not start with '%s'",
               mt_last_error(), prefix);
}

/* Two tensors of the same dtype, shape and bytes. */
static inline bool fuzz_same_tensor(const mt_tensor *a, const mt_tensor *b)
{
    if (a->dtype != b->dtype || !mt_same_shape(a, b)) return false;
    size_t n = (size_t)mt_numel(a) * mt_dtype_size(a->dtype);
    unsigned char *x = malloc(n + 1), *y = malloc(n + 1);
    bool same = x && y && mt_to_data(a, a->dtype, x) == MT_OK && mt_to_data(b, b->dtype, y) == MT_OK &&
                memcmp(x, y, n) == 0;
    free(x);
    free(y);
    return same;
}

/* ---------------------------------------------------------------- the checkpoint target's model */
/* Linear(3, 2) then BatchNorm1d(2) ("0.weight", "0.bias", "1.weight",
   "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"),
   with Adam (AMSGrad when amsgrad). */
typedef struct fuzz_rig {
    mt_module *net;
    mt_tensor_list params;
    mt_optimizer *opt;
} fuzz_rig;

static inline fuzz_rig fuzz_rig_new(bool amsgrad)
{
    fuzz_rig r;
    mt_manual_seed(1);
    r.net = mt_nn_sequential(mt_nn_linear(3, 2, true), mt_nn_batch_norm1d(2, MT_BN_DEFAULTS));
    FUZZ_CHECK(r.net != NULL, "%s", mt_last_error());
    r.params = mt_parameters(r.net);
    mt_adam_opts o = MT_ADAM_DEFAULTS;
    o.lr = 0.01;
    o.amsgrad = amsgrad;
    r.opt = mt_adam(r.params, o);
    FUZZ_CHECK(r.opt != NULL, "%s", mt_last_error());
    return r;
}

/* n training steps on fixed inputs (fills the optimizer's state). */
static inline mt_status fuzz_rig_train(fuzz_rig *r, int n)
{
    mt_generator gen = mt_generator_new(7);
    for (int s = 0; s < n; s++) {
        mt_scope scope = mt_scope_begin();
        mt_tensor *y = mt_forward(r->net, mt_randn(&gen, MT_F32, MT_SHAPE(4, 3)));
        mt_optimizer_zero_grad(r->opt);
        mt_tensor *loss = mt_sum_all(mt_mul(y, y));
        mt_status st = loss ? mt_backward(loss) : mt_last_status();
        if (st == MT_OK) st = mt_step(r->opt);
        mt_scope_end(scope);
        if (st != MT_OK) return st;
    }
    return MT_OK;
}

static inline void fuzz_rig_free(fuzz_rig *r)
{
    mt_optimizer_free(r->opt);
    mt_tensor_list_free(&r->params);
    mt_module_free(r->net);
}

#endif
