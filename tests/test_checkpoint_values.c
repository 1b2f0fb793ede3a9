/*
 * test_checkpoint_values.c - the scalars a checkpoint holds are checked
 * before they are used. Crafted files (a real checkpoint with one value
 * replaced) must fail to load with MT_ERR_FORMAT naming the entry, and leave
 * the model and the optimizer as they were:
 *
 *   optim.step, optim.<param>.step   a whole number in [0, 2^53] of an integer
 *                                    dtype or a float dtype (PyTorch keeps
 *                                    Adam's step as a float); 2.7e185 and NaN
 *                                    were undefined behaviour when cast to
 *                                    int64, and -5 loaded and was used
 *   model.<bn>.num_batches_tracked   the same range
 *   "optim.lr" (metadata)            a finite decimal number >= 0
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char tmp_dir[64];
static void values_setup(void)
{
    mt_test_setup();
    mt_test_temp_dir(tmp_dir, sizeof tmp_dir, "ckpt_values");
}
static void values_teardown(void)
{
    mt_test_remove_tree(tmp_dir);
    mt_test_teardown();
}

static const char *tmp_path(const char *name) { return mt_test_path(tmp_dir, name); }

/* Linear(3, 2) then BatchNorm1d(2), with Adam, after two steps. */
typedef struct rig {
    mt_module *net;
    mt_tensor_list params;
    mt_optimizer *opt;
} rig;

static rig rig_new(double lr)
{
    rig r;
    r.net = mt_nn_sequential(mt_nn_linear(3, 2, true), mt_nn_batch_norm1d(2, MT_BN_DEFAULTS));
    r.params = mt_parameters(r.net);
    mt_adam_opts o = MT_ADAM_DEFAULTS;
    o.lr = lr;
    r.opt = mt_adam(r.params, o);
    cr_assert(r.net && r.opt, "%s", mt_last_error());
    mt_generator gen = mt_generator_new(7);
    for (int s = 0; s < 2; s++) {
        mt_scope scope = mt_scope_begin();
        mt_tensor *y = mt_forward(r.net, mt_randn(&gen, MT_F32, MT_SHAPE(4, 3)));
        mt_optimizer_zero_grad(r.opt);
        cr_assert_eq(mt_backward(mt_sum_all(mt_mul(y, y))), MT_OK, "%s", mt_last_error());
        cr_assert_eq(mt_step(r.opt), MT_OK, "%s", mt_last_error());
        mt_scope_end(scope);
    }
    return r;
}

static void rig_free(rig *r)
{
    mt_optimizer_free(r->opt);
    mt_tensor_list_free(&r->params);
    mt_module_free(r->net);
}

/* A copy of every value of the model and the optimizer, to compare against. */
typedef struct frozen {
    mt_tensor_list state;   /* owned copies, names owned */
    int64_t steps;
    double lr;
} frozen;

static void freeze_list(mt_tensor_list from, frozen *f)
{
    for (int i = 0; i < from.n; i++) {
        mt_tensor *c = mt_keep(mt_clone(from.items[i].tensor));
        f->state.items = realloc(f->state.items, (size_t)(f->state.n + 1) * sizeof *f->state.items);
        f->state.items[f->state.n++] = (mt_named_tensor){ strdup(from.items[i].name), c };
    }
}

static frozen freeze(const rig *r)
{
    frozen f = { { 0, NULL }, mt_optimizer_steps(r->opt), mt_optimizer_lr(r->opt) };
    mt_tensor_list sd = mt_state_dict(r->net), os = mt_optimizer_state(r->opt);
    freeze_list(sd, &f);
    freeze_list(os, &f);
    mt_tensor_list_free(&sd);
    mt_tensor_list_free(&os);
    return f;
}

static bool same_values(const mt_tensor *a, const mt_tensor *b)
{
    if (a->dtype != b->dtype || !mt_same_shape(a, b)) return false;
    size_t n = (size_t)mt_numel(a) * 8;
    double *x = malloc(n + 8), *y = malloc(n + 8);
    bool same = mt_to_data(a, MT_F64, x) == MT_OK && mt_to_data(b, MT_F64, y) == MT_OK && memcmp(x, y, n) == 0;
    free(x);
    free(y);
    return same;
}

/* The rig still holds exactly the frozen values. */
static void assert_unchanged(const rig *r, frozen *f, const char *what)
{
    frozen now = freeze(r);
    cr_assert_eq(now.state.n, f->state.n, "%s: the number of state tensors changed", what);
    for (int i = 0; i < f->state.n; i++) {
        cr_assert_str_eq(now.state.items[i].name, f->state.items[i].name, "%s", what);
        cr_assert(same_values(now.state.items[i].tensor, f->state.items[i].tensor), "%s: '%s' changed", what,
                  f->state.items[i].name);
    }
    cr_assert_eq(now.steps, f->steps, "%s: the step count changed", what);
    cr_assert_eq(now.lr, f->lr, "%s: the learning rate changed", what);
    for (int i = 0; i < now.state.n; i++) mt_free(now.state.items[i].tensor);
    mt_tensor_list_free(&now.state);
}

static void unfreeze(frozen *f)
{
    for (int i = 0; i < f->state.n; i++) mt_free(f->state.items[i].tensor);
    mt_tensor_list_free(&f->state);
}

/* Rewrites checkpoint src into dst with entry name replaced by value (owned
   by the caller) and the "optim.lr" metadata replaced by lr (NULL: kept). */
static void craft(const char *src, const char *dst, const char *name, mt_tensor *value, const char *lr)
{
    mt_tensor_list list;
    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_load_with_metadata(src, &list, &meta), MT_OK, "%s", mt_last_error());
    mt_tensor *old = NULL;
    bool found = name == NULL;
    for (int i = 0; i < list.n; i++)
        if (name && strcmp(list.items[i].name, name) == 0) {
            old = list.items[i].tensor;
            list.items[i].tensor = value;
            found = true;
        }
    cr_assert(found, "the checkpoint has no '%s'", name);
    const char *values[1] = { lr ? lr : (meta.n ? meta.values[0] : "0.001") };
    const char *keys[1] = { "optim.lr" };
    cr_assert_eq(mt_safetensors_save(dst, list, 1, keys, values), MT_OK, "%s", mt_last_error());
    for (int i = 0; i < list.n; i++)
        if (list.items[i].tensor != value) mt_free(list.items[i].tensor);
    mt_free(old);
    mt_tensor_list_free(&list);
    mt_safetensors_metadata_free(&meta);
}

static mt_tensor *f64_scalar(double v) { return mt_keep(mt_scalar(MT_F64, v)); }

/* Loading dst into r fails with MT_ERR_FORMAT mentioning every needle, and changes nothing. */
static void expect_refused(rig *r, const char *dst, const char *needle1, const char *needle2)
{
    frozen f = freeze(r);
    mt_status st = mt_checkpoint_load(dst, r->net, r->opt);
    cr_assert_eq(st, MT_ERR_FORMAT, "%s loaded (status %d): %s", needle1, st, mt_last_error());
    cr_assert(strstr(mt_last_error(), needle1), "expected \"%s\" in: %s", needle1, mt_last_error());
    if (needle2) cr_assert(strstr(mt_last_error(), needle2), "expected \"%s\" in: %s", needle2, mt_last_error());
    assert_unchanged(r, &f, needle1);
    unfreeze(&f);
}

Test(checkpoint_values, step_counts_are_checked, .init = values_setup, .fini = values_teardown)
{
    rig a = rig_new(0.01);
    const char *good = tmp_path("good.safetensors"), *bad = tmp_path("bad.safetensors");
    cr_assert_eq(mt_checkpoint_save(good, a.net, a.opt), MT_OK, "%s", mt_last_error());
    rig b = rig_new(0.5);

    craft(good, bad, "optim.step", f64_scalar(2.7e185), NULL);
    expect_refused(&b, bad, "\"step\" is 2.7000000000000001e+185, not a step count", "in [0, 2^53]");
    craft(good, bad, "optim.step", f64_scalar(NAN), NULL);
    expect_refused(&b, bad, "\"step\" is nan", NULL);
    craft(good, bad, "optim.step", f64_scalar(INFINITY), NULL);
    expect_refused(&b, bad, "\"step\" is inf", NULL);
    craft(good, bad, "optim.step", mt_keep(mt_scalar(MT_I64, -5)), NULL);
    expect_refused(&b, bad, "\"step\" is -5, not a step count", NULL);
    craft(good, bad, "optim.step", f64_scalar(2.5), NULL);
    expect_refused(&b, bad, "\"step\" is 2.5", NULL);
    int64_t over = (1LL << 53) + 1;   /* exactly: a double would round it to 2^53 */
    craft(good, bad, "optim.step", mt_keep(mt_from_data(MT_I64, 0, NULL, &over)), NULL);
    expect_refused(&b, bad, "\"step\" is 9007199254740993", NULL);
    craft(good, bad, "optim.step", mt_keep(mt_scalar(MT_BOOL, 1)), NULL);
    expect_refused(&b, bad, "\"step\" is a bool tensor", NULL);
    craft(good, bad, "optim.step", mt_keep(mt_zeros(MT_I64, MT_SHAPE(2))), NULL);
    cr_assert_eq(mt_checkpoint_load(bad, b.net, b.opt), MT_ERR_SHAPE, "%s", mt_last_error());
    /* a parameter's own step count */
    craft(good, bad, "optim.0.weight.step", mt_keep(mt_scalar(MT_F32, -1)), NULL);
    expect_refused(&b, bad, "\"0.weight.step\" is -1", NULL);
    craft(good, bad, "optim.1.bias.step", f64_scalar(1e300), NULL);
    expect_refused(&b, bad, "\"1.bias.step\" is 1.0000000000000001e+300", NULL);

    /* whole numbers in any numeric dtype load: PyTorch writes Adam's step as a float */
    craft(good, bad, "optim.step", mt_keep(mt_scalar(MT_F32, 2)), NULL);
    cr_assert_eq(mt_checkpoint_load(bad, b.net, b.opt), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_optimizer_steps(b.opt), 2);
    craft(good, bad, "optim.0.weight.step", mt_keep(mt_scalar(MT_I32, 2)), NULL);
    cr_assert_eq(mt_checkpoint_load(bad, b.net, b.opt), MT_OK, "%s", mt_last_error());
    craft(good, bad, "optim.step", mt_keep(mt_scalar(MT_I64, 1LL << 53)), NULL);
    cr_assert_eq(mt_checkpoint_load(bad, b.net, b.opt), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_optimizer_steps(b.opt), 1LL << 53);
    rig_free(&a);
    rig_free(&b);
}

Test(checkpoint_values, load_state_checks_counts_given_directly, .init = values_setup, .fini = values_teardown)
{
    rig a = rig_new(0.01);
    mt_tensor_list state = mt_optimizer_state(a.opt);
    frozen f = freeze(&a);
    mt_tensor *nan_step = mt_scalar(MT_F64, NAN);
    for (int i = 0; i < state.n; i++)
        if (strcmp(state.items[i].name, "step") == 0) state.items[i].tensor = nan_step;
    cr_assert_eq(mt_optimizer_load_state(a.opt, state), MT_ERR_FORMAT, "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), "Adam load_state: \"step\" is nan"), "%s", mt_last_error());
    assert_unchanged(&a, &f, "load_state with a NaN step");
    unfreeze(&f);
    mt_tensor_list_free(&state);
    rig_free(&a);
}

Test(checkpoint_values, batch_norm_counter_is_checked, .init = values_setup, .fini = values_teardown)
{
    rig a = rig_new(0.01);
    const char *good = tmp_path("good.safetensors"), *bad = tmp_path("bad.safetensors");
    cr_assert_eq(mt_checkpoint_save(good, a.net, a.opt), MT_OK, "%s", mt_last_error());
    rig b = rig_new(0.5);
    craft(good, bad, "model.1.num_batches_tracked", mt_keep(mt_scalar(MT_I64, -3)), NULL);
    expect_refused(&b, bad, "'model.1.num_batches_tracked' is -3 in the file, not a count", NULL);
    /* INT64_MAX: the next training step's count + 1 would overflow */
    craft(good, bad, "model.1.num_batches_tracked", mt_keep(mt_full(MT_I64, 0, NULL, 0x1p62)), NULL);
    expect_refused(&b, bad, "is 4611686018427387904 in the file", NULL);
    /* the same through mt_module_load of a state dict */
    mt_named_tensor item = { (char *)"1.num_batches_tracked", mt_scalar(MT_I64, -1) };
    mt_tensor_list sd = mt_state_dict(a.net);
    for (int i = 0; i < sd.n; i++)
        if (strcmp(sd.items[i].name, item.name) == 0) sd.items[i].tensor = item.tensor;
    cr_assert_eq(mt_safetensors_save(bad, sd, 0, NULL, NULL), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_module_load(b.net, bad), MT_ERR_FORMAT, "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), "'1.num_batches_tracked' is -1 in the file"), "%s", mt_last_error());
    mt_tensor_list_free(&sd);
    rig_free(&a);
    rig_free(&b);
}

Test(checkpoint_values, learning_rate_is_checked, .init = values_setup, .fini = values_teardown)
{
    rig a = rig_new(0.01);
    const char *good = tmp_path("good.safetensors"), *bad = tmp_path("bad.safetensors");
    cr_assert_eq(mt_checkpoint_save(good, a.net, a.opt), MT_OK, "%s", mt_last_error());
    rig b = rig_new(0.5);
    static const char *const refused[] = { "nan", "NaN", "inf", "-inf", "-1", "-0.5", "1e400", " 0.1", "0.1 ",
                                           "0x1p-3", "", "abc", "1e", "+" };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        craft(good, bad, NULL, NULL, refused[i]);
        expect_refused(&b, bad, "metadata \"optim.lr\" is not a learning rate", refused[i]);
    }
    static const char *const accepted[] = { "0.001", "0", "1e-3", "0.033333333333333333", "+2", ".5", "-0" };
    static const double values[] = { 0.001, 0, 1e-3, 0.1 / 3, 2, 0.5, 0 };
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
        craft(good, bad, NULL, NULL, accepted[i]);
        cr_assert_eq(mt_checkpoint_load(bad, b.net, b.opt), MT_OK, "lr '%s': %s", accepted[i], mt_last_error());
        cr_assert_eq(mt_optimizer_lr(b.opt), values[i], "lr '%s'", accepted[i]);
    }
    rig_free(&a);
    rig_free(&b);
}
