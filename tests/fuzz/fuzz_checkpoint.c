/*
 * fuzz_checkpoint.c - the checkpoint loaders (engine/checkpoint.c, and the
 * optimizer's mt_optimizer_load_state) on any bytes, as a file, loaded into
 * the model of fuzz_common.h (Linear(3, 2), BatchNorm1d(2)) and Adam, the
 * model the seed checkpoints of tests/fuzz/corpus/checkpoint were saved from
 * (make_corpus.c). The first byte chooses AMSGrad (bit 0), so that its extra
 * state is reached; the rest is the file.
 *
 * The checks: a load that fails names the file and changes nothing (every
 * value of the model and of the optimizer, its step count and learning rate,
 * bit for bit: loading is all or nothing); a load that works leaves a step
 * count in [0, 2^53] and a finite learning rate >= 0, and training on from
 * it runs (whatever numbers the state holds). mt_module_load of the same
 * file obeys the same rule.
 */
#include "fuzz_common.h"

#include <math.h>

/* Every value of the rig, as owned copies. */
typedef struct frozen {
    int n;
    mt_tensor *values[32];
    int64_t steps;
    double lr;
} frozen;

static void freeze_list(frozen *f, mt_tensor_list l)
{
    for (int i = 0; i < l.n && f->n < 32; i++) f->values[f->n++] = mt_clone(l.items[i].tensor);
}

static frozen freeze(const fuzz_rig *r)
{
    frozen f = { .n = 0, .steps = mt_optimizer_steps(r->opt), .lr = mt_optimizer_lr(r->opt) };
    mt_tensor_list sd = mt_state_dict(r->net), os = mt_optimizer_state(r->opt);
    freeze_list(&f, sd);
    freeze_list(&f, os);
    mt_tensor_list_free(&sd);
    mt_tensor_list_free(&os);
    return f;
}

static void frozen_free(frozen *f)
{
    for (int i = 0; i < f->n; i++) mt_free(f->values[i]);
}

static void check_unchanged(const fuzz_rig *r, frozen *before, const char *what)
{
    frozen now = freeze(r);
    FUZZ_CHECK(now.n == before->n, "%s: a failed load changed the number of state tensors", what);
    for (int i = 0; i < now.n; i++)
        FUZZ_CHECK(fuzz_same_tensor(now.values[i], before->values[i]), "%s: a failed load changed value %d", what, i);
    FUZZ_CHECK(now.steps == before->steps && now.lr == before->lr, "%s: a failed load changed the optimizer", what);
    frozen_free(&now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *path = fuzz_path("fuzz.safetensors");
    fuzz_write(path, data + 1, size - 1);
    fuzz_rig r = fuzz_rig_new(data[0] & 1);
    FUZZ_CHECK(fuzz_rig_train(&r, 1) == MT_OK, "%s", mt_last_error());   /* a state to keep or replace */

    frozen before = freeze(&r);
    mt_clear_error();
    if (mt_checkpoint_load(path, r.net, r.opt) != MT_OK) {
        fuzz_check_error("safetensors: ");
        check_unchanged(&r, &before, "checkpoint_load");
    } else {
        int64_t steps = mt_optimizer_steps(r.opt);
        double lr = mt_optimizer_lr(r.opt);
        FUZZ_CHECK(steps >= 0 && steps <= (INT64_C(1) << 53), "loaded step count %lld", (long long)steps);
        FUZZ_CHECK(isfinite(lr) && lr >= 0, "loaded learning rate %g", lr);
        /* training goes on from any state (NaNs are numbers too) */
        mt_status st = fuzz_rig_train(&r, 1);
        FUZZ_CHECK(st == MT_OK, "a step after a good load failed: %s", mt_last_error());
    }
    frozen_free(&before);

    frozen model = freeze(&r);
    mt_clear_error();
    if (mt_module_load(r.net, path) != MT_OK) {
        fuzz_check_error("safetensors: ");
        check_unchanged(&r, &model, "module_load");
    }
    frozen_free(&model);
    fuzz_rig_free(&r);
    return 0;
}
