/*
 * fuzz_checkpoint.c - the checkpoint loaders (engine/io/checkpoint.c, and the
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

/* A rig's values, as owned copies with their names: the model's state dict
   and the optimizer's state (which mt_optimizer_load_state takes back). */
typedef struct frozen {
    mt_tensor_list model, optim;
    int64_t steps;
    double lr;
} frozen;

static mt_tensor_list copy_list(mt_tensor_list from)
{
    mt_tensor_list to = { 0, calloc((size_t)from.n + 1, sizeof(mt_named_tensor)) };
    FUZZ_CHECK(to.items != NULL, "out of memory");
    for (int i = 0; i < from.n; i++) {
        to.items[i].name = strdup(from.items[i].name);
        to.items[i].tensor = mt_clone(from.items[i].tensor);
        FUZZ_CHECK(to.items[i].name && to.items[i].tensor, "%s", mt_last_error());
        to.n++;
    }
    return to;
}

static void free_list(mt_tensor_list *l)
{
    for (int i = 0; i < l->n; i++) mt_free(l->items[i].tensor);
    mt_tensor_list_free(l);
}

static frozen freeze(const fuzz_rig *r)
{
    mt_tensor_list sd = mt_state_dict(r->net), os = mt_optimizer_state(r->opt);
    frozen f = { copy_list(sd), copy_list(os), mt_optimizer_steps(r->opt), mt_optimizer_lr(r->opt) };
    mt_tensor_list_free(&sd);
    mt_tensor_list_free(&os);
    return f;
}

static void frozen_free(frozen *f)
{
    free_list(&f->model);
    free_list(&f->optim);
}

static bool same_list(mt_tensor_list a, mt_tensor_list b)
{
    if (a.n != b.n) return false;
    for (int i = 0; i < a.n; i++)
        if (strcmp(a.items[i].name, b.items[i].name) != 0 || !fuzz_same_tensor(a.items[i].tensor, b.items[i].tensor))
            return false;
    return true;
}

/* The rig holds exactly f's values. */
static void check_unchanged(const fuzz_rig *r, const frozen *f, const char *what)
{
    frozen now = freeze(r);
    FUZZ_CHECK(same_list(now.model, f->model), "%s: a failed load changed the model", what);
    FUZZ_CHECK(same_list(now.optim, f->optim), "%s: a failed load changed the optimizer's state", what);
    FUZZ_CHECK(now.steps == f->steps && now.lr == f->lr, "%s: a failed load changed the step count or lr", what);
    frozen_free(&now);
}

/* Puts f's values back into the rig (cheaper than building and training a new one). */
static void restore(fuzz_rig *r, const frozen *f)
{
    mt_tensor_list sd = mt_state_dict(r->net);
    FUZZ_CHECK(sd.n == f->model.n, "the state dict changed size");
    for (int i = 0; i < sd.n; i++)
        FUZZ_CHECK(mt_copy_(sd.items[i].tensor, f->model.items[i].tensor) == MT_OK, "%s", mt_last_error());
    mt_tensor_list_free(&sd);
    FUZZ_CHECK(mt_optimizer_load_state(r->opt, f->optim) == MT_OK, "%s", mt_last_error());
    mt_optimizer_set_lr(r->opt, f->lr);
}

/* One rig per AMSGrad setting, trained a step, and its values then. */
static fuzz_rig rigs[2];
static frozen pristine[2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int k = data[0] & 1;
    if (!rigs[k].net) {
        rigs[k] = fuzz_rig_new(k);
        FUZZ_CHECK(fuzz_rig_train(&rigs[k], 1) == MT_OK, "%s", mt_last_error());   /* a state to keep or replace */
        pristine[k] = freeze(&rigs[k]);
    }
    fuzz_rig *r = &rigs[k];
    const char *path = fuzz_path("fuzz.safetensors");
    fuzz_write(path, data + 1, size - 1);

    restore(r, &pristine[k]);
    mt_clear_error();
    if (mt_checkpoint_load(path, r->net, r->opt) != MT_OK) {
        fuzz_check_error("safetensors: ");
        check_unchanged(r, &pristine[k], "checkpoint_load");
    } else {
        int64_t steps = mt_optimizer_steps(r->opt);
        double lr = mt_optimizer_lr(r->opt);
        FUZZ_CHECK(steps >= 0 && steps <= (INT64_C(1) << 53), "loaded step count %lld", (long long)steps);
        FUZZ_CHECK(isfinite(lr) && lr >= 0, "loaded learning rate %g", lr);
        /* training goes on from any state (NaNs are numbers too) */
        mt_status st = fuzz_rig_train(r, 1);
        FUZZ_CHECK(st == MT_OK, "a step after a good load failed: %s", mt_last_error());
    }

    restore(r, &pristine[k]);
    mt_clear_error();
    if (mt_module_load(r->net, path) != MT_OK) {
        fuzz_check_error("safetensors: ");
        check_unchanged(r, &pristine[k], "module_load");
    }
    return 0;
}
