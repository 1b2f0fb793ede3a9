/*
 * test_trainer.c - the shared trainer (models/common/trainer.h) on a toy
 * task: 3 classes of points in 4 dimensions (each class a mean plus noise,
 * from a hash of the item), an MLP with a Dropout drawing from the run's
 * generator, a held-out set as the evaluation.
 *
 * Checks: a run stopped anywhere (mid-epoch, at an epoch's end, by the stop
 * flag) and resumed ends bitwise where an uninterrupted run ends, with the
 * same metrics, under every schedule and with clipping; a non-finite loss
 * stops the run with a message naming the step and the batch, and leaves
 * every checkpoint as it was; a failed run leaves no run folder; paths of
 * the wrong kind are named as what they are; metrics.jsonl and the
 * checkpoints' metadata hold what docs/training.md says; clipping bounds
 * the update.
 */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/common/trainer.h"

enum { F = 4, CLASSES = 3, WIDTH = 16 };

static char tmp_dir[64];

static const char *tp(const char *name) { return mt_test_path(tmp_dir, name); }

/* tmp_dir/dir/file */
static const char *in(const char *dir, const char *file)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s/%s", tmp_dir, dir, file);
    return b;
}

static void tr_setup(void)
{
    mt_test_setup();
    mt_test_temp_dir(tmp_dir, sizeof tmp_dir, "trainer");
}

static void tr_teardown(void)
{
    mt_test_remove_tree(tmp_dir);
    mt_test_teardown();
}

/* ---------------------------------------------------------------- the toy task */
typedef struct toy {
    int64_t n;
    uint64_t salt;          /* another draw of the noise (the held-out set) */
    int64_t nan_epoch, nan_batch;   /* the rows of this batch get a NaN feature (-1: never) */
} toy;

static double unit(uint64_t h) { return (double)(h >> 11) / 9007199254740992.0; }
static int64_t label_of(int64_t i) { return i % CLASSES; }

static mt_status toy_get(void *ctx, int64_t item, const mt_data_pos *pos, void *const *dst)
{
    const toy *t = ctx;
    float *x = dst[0];
    const int64_t c = label_of(item);
    for (int f = 0; f < F; f++) {
        double noise = unit(mt_data_hash(mt_data_hash(t->salt, (uint64_t)item), (uint64_t)f)) - 0.5;
        x[f] = (float)((f == c ? 1.5 : 0.0) - (f == (c + 1) % F ? 0.7 : 0.0) + 1.2 * noise);
    }
    if (pos->epoch == t->nan_epoch && pos->batch == t->nan_batch) x[1] = NAN;
    *(int64_t *)dst[1] = c;
    return MT_OK;
}

static mt_dataset toy_data(toy *t)
{
    return (mt_dataset){ .n = t->n, .n_fields = 2, .ctx = t, .get = toy_get,
                         .fields = { { .name = "x", .dtype = MT_F32, .ndim = 1, .shape = { F } },
                                     { .name = "y", .dtype = MT_I64, .ndim = 0 } } };
}

static mt_module *toy_build(void *ctx, mt_generator *gen)
{
    (void)ctx;
    return mt_nn_sequential(mt_nn_linear(F, WIDTH, true), mt_nn_gelu(MT_GELU_ERF), mt_nn_dropout_gen(0.3, gen),
                            mt_nn_linear(WIDTH, CLASSES, true));
}

static mt_status toy_step(void *ctx, mt_module *net, const mt_batch *b, mt_device device, mt_train_step_out *out)
{
    (void)ctx;
    mt_tensor *y = mt_batch_tensor(b, 1, device);
    mt_tensor *logits = mt_forward(net, mt_batch_tensor(b, 0, device));
    out->loss = mt_cross_entropy(logits, y, (mt_ce_opts){ .reduction = MT_REDUCTION_MEAN });
    out->sums[0] = mt_sum_all(mt_to_dtype(mt_eq(mt_argmax(logits, 1, false), y), MT_F64));
    return out->loss && out->sums[0] ? MT_OK : mt_last_status();
}

static mt_status toy_eval(void *ctx, mt_module *net, const mt_batch *b, mt_device device, double *sums)
{
    (void)ctx;
    mt_tensor *y = mt_batch_tensor(b, 1, device);
    mt_tensor *logits = mt_forward(net, mt_batch_tensor(b, 0, device));
    mt_tensor *loss = mt_cross_entropy(logits, y, (mt_ce_opts){ .reduction = MT_REDUCTION_SUM });
    mt_tensor *hits = mt_sum_all(mt_to_dtype(mt_eq(mt_argmax(logits, 1, false), y), MT_F64));
    if (!loss || !hits) return mt_last_status();
    sums[0] += mt_item(loss);
    sums[1] += mt_item(hits);
    return MT_OK;
}

typedef struct toy_run {
    toy train_toy, dev_toy;
    mt_dataset train, dev;
    mt_task task;
    mt_train_opts opts;
} toy_run;

static const char *const meta_keys[] = { "width" };
static const char *const meta_values[] = { "16" };

/* 100 training items in batches of 8 (12 full, the partial one dropped), 30 held out. */
static void toy_init(toy_run *r, const char *run_dir)
{
    memset(r, 0, sizeof *r);
    r->train_toy = (toy){ .n = 100, .salt = 1, .nan_epoch = -1, .nan_batch = -1 };
    r->dev_toy = (toy){ .n = 30, .salt = 2, .nan_epoch = -1, .nan_batch = -1 };
    r->train = toy_data(&r->train_toy);
    r->dev = toy_data(&r->dev_toy);
    r->task = (mt_task){
        .name = "toy", .build = toy_build, .train_step = toy_step,
        .n_train_metrics = 1, .train_metrics = { { .name = "acc", .percent = true } },
        .train_data = &r->train, .drop_last = true,
        .eval_data = &r->dev, .eval_name = "dev", .eval_step = toy_eval,
        .n_eval_metrics = 2, .eval_metrics = { { .name = "loss" }, { .name = "acc", .percent = true } },
        .best_metric = 1, .maximize = true,
        .n_meta = 1, .meta_keys = meta_keys, .meta_values = meta_values,
    };
    r->opts = (mt_train_opts){ .epochs = 4, .batch_size = 8, .lr = 0.02, .weight_decay = 0.01, .schedule = MT_SCHEDULE_COSINE,
                               .warmup = 0.1, .plateau_factor = 0.5, .plateau_patience = 1, .seed = 3,
                               .run_dir = run_dir, .device = "cpu", .prefetch = 1 };
}

/* ---------------------------------------------------------------- file helpers */
static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert(s && fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = '\0';
    fclose(f);
    if (size) *size = (size_t)n;
    return s;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Whether two checkpoints hold bitwise the same tensors. */
static void assert_same_tensors(const char *a, const char *b)
{
    mt_tensor_list la, lb;
    cr_assert_eq(mt_safetensors_load(a, &la), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_safetensors_load(b, &lb), MT_OK, "%s", mt_last_error());
    cr_assert_eq(la.n, lb.n);
    for (int i = 0; i < la.n; i++) {
        cr_assert_str_eq(la.items[i].name, lb.items[i].name);
        mt_tensor *x = la.items[i].tensor, *y = lb.items[i].tensor;
        cr_assert(x->dtype == y->dtype && mt_same_shape(x, y));
        cr_assert(memcmp(mt_data_ptr(x), mt_data_ptr(y), (size_t)mt_numel(x) * mt_dtype_size(x->dtype)) == 0,
                  "'%s' differs between %s and %s", la.items[i].name, a, b);
    }
    for (int i = 0; i < la.n; i++) mt_free(la.items[i].tensor);
    for (int i = 0; i < lb.n; i++) mt_free(lb.items[i].tensor);
    mt_tensor_list_free(&la);
    mt_tensor_list_free(&lb);
}

/* metrics.jsonl without the timing fields (seconds, samples_per_s, data_wait_s). */
static char *metrics_values(const char *path)
{
    char *s = read_file(path, NULL);
    for (char *p; (p = strstr(s, ",\"seconds\":"));) {
        char *end = strchr(p, '}');
        memmove(p, end, strlen(end) + 1);
    }
    return s;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---------------------------------------------------------------- tests */
/* A full run against a run stopped at `stop` steps and resumed (and, with
   twice, stopped again once more). */
static void check_resume(const char *name, mt_train_schedule schedule, double clip, int64_t stop1, int64_t stop2,
                         mt_train_optimizer optimizer)
{
    char full[96], split[96];
    snprintf(full, sizeof full, "%s-full", name);
    snprintf(split, sizeof split, "%s-split", name);
    toy_run r;
    toy_init(&r, tp(full));
    r.opts.schedule = schedule;
    r.opts.clip_grad_norm = clip;
    r.opts.plateau_patience = 0;
    r.opts.optimizer = optimizer;
    if (optimizer == MT_OPTIMIZER_SGD) { r.opts.momentum = 0.9; r.opts.nesterov = true; }
    mt_train_report a, b;
    cr_assert_eq(mt_train(&r.task, &r.opts, &a, NULL), MT_OK, "%s", mt_last_error());
    cr_assert(a.finished && a.epochs_done == 4 && a.steps == 48, "%s: %d epochs, %lld steps", name, a.epochs_done, (long long)a.steps);

    toy_run q;
    toy_init(&q, tp(split));
    q.opts.schedule = schedule;
    q.opts.clip_grad_norm = clip;
    q.opts.plateau_patience = 0;
    q.opts.save_every = 5;
    q.opts.optimizer = r.opts.optimizer;
    q.opts.momentum = r.opts.momentum;
    q.opts.nesterov = r.opts.nesterov;
    for (int64_t stop = stop1, k = 0; k < 3; k++, stop = k == 1 ? stop2 : 0) {
        q.opts.stop_after = stop;
        cr_assert_eq(mt_train(&q.task, &q.opts, &b, NULL), MT_OK, "%s, part %lld: %s", name, (long long)k, mt_last_error());
        if (stop) cr_assert(b.stopped && b.steps == stop, "%s: stopped %d at %lld", name, b.stopped, (long long)b.steps);
        q.opts.resume = "auto";
        q.opts.epochs = 0;   /* the checkpoint's */
        if (!stop) break;
    }
    cr_assert(b.finished && b.resumed, "%s", name);
    cr_expect_eq(b.steps, a.steps);
    cr_expect_eq(b.train_loss, a.train_loss, "%s: train loss %.17g vs %.17g", name, b.train_loss, a.train_loss);
    cr_expect_eq(b.eval_metrics[1], a.eval_metrics[1]);
    cr_expect_eq(b.best, a.best);
    cr_expect_eq(b.best_epoch, a.best_epoch);
    assert_same_tensors(in(full, "last.safetensors"), in(split, "last.safetensors"));
    assert_same_tensors(in(full, "best.safetensors"), in(split, "best.safetensors"));
    char *ma = metrics_values(in(full, "metrics.jsonl"));
    char *mb = metrics_values(in(split, "metrics.jsonl"));
    cr_expect_str_eq(mb, ma, "%s: the metrics differ", name);
    cr_expect_eq(count_lines(ma), 4);
    free(ma);
    free(mb);
}

Test(trainer, resume_anywhere_is_bitwise_equal, .init = tr_setup, .fini = tr_teardown)
{
    check_resume("cosine-mid", MT_SCHEDULE_COSINE, 0, 17, 30, MT_OPTIMIZER_ADAMW);   /* mid-epoch twice (epochs 2 and 3) */
    check_resume("cosine-end", MT_SCHEDULE_COSINE, 0, 12, 0, MT_OPTIMIZER_ADAMW);    /* at the end of epoch 1 */
    check_resume("plateau", MT_SCHEDULE_PLATEAU, 0, 26, 0, MT_OPTIMIZER_ADAMW);      /* its state replayed from the history */
    check_resume("none-clip", MT_SCHEDULE_NONE, 0.5, 7, 41, MT_OPTIMIZER_ADAMW);     /* clipping on */
    /* SGD with Nesterov momentum: the momentum buffers and the optimizer's name come back from the checkpoint */
    check_resume("sgd-mid", MT_SCHEDULE_COSINE, 0, 17, 30, MT_OPTIMIZER_SGD);
}

Test(trainer, the_stop_flag_saves_and_returns, .init = tr_setup, .fini = tr_teardown)
{
    toy_run r;
    toy_init(&r, tp("run"));
    volatile sig_atomic_t flag = 1;   /* as if Ctrl-C came during the first step */
    r.opts.stop_flag = &flag;
    mt_train_report rep;
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK, "%s", mt_last_error());
    cr_expect(rep.stopped && !rep.finished);
    cr_expect_eq(rep.steps, 1);
    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_read_metadata(tp("run/last.safetensors"), &meta), MT_OK, "%s", mt_last_error());
    int found = 0;
    for (int i = 0; i < meta.n; i++) {
        if (strcmp(meta.keys[i], "epoch_step") == 0) { cr_expect_str_eq(meta.values[i], "1"); found++; }
        if (strcmp(meta.keys[i], "epoch") == 0) { cr_expect_str_eq(meta.values[i], "0"); found++; }
    }
    cr_expect_eq(found, 2);
    mt_safetensors_metadata_free(&meta);
    /* and the run goes on from there */
    flag = 0;
    r.opts.resume = "auto";
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK, "%s", mt_last_error());
    cr_expect(rep.finished && rep.resumed && rep.steps == 48 && rep.session_steps == 47);
}

/* --detect-anomaly: the run stops at the first op that makes the NaN, named */
Test(trainer, detect_anomaly_names_the_op, .init = tr_setup, .fini = tr_teardown)
{
    toy_run r;
    toy_init(&r, tp("run"));
    r.train_toy.nan_epoch = 0;
    r.train_toy.nan_batch = 2;
    r.opts.detect_anomaly = true;
    mt_train_report rep;
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "detect_anomaly: ") != NULL, "%s", mt_last_error());
    cr_expect(!mt_is_anomaly_enabled(), "the run restores the mode");
}

Test(trainer, a_non_finite_loss_stops_the_run_and_keeps_the_checkpoints, .init = tr_setup, .fini = tr_teardown)
{
    /* a good first epoch, then a NaN in the data */
    toy_run r;
    toy_init(&r, tp("run"));
    r.opts.stop_after = 12;
    mt_train_report rep;
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK, "%s", mt_last_error());
    cr_assert(rep.stopped && rep.epochs_done == 1);
    size_t n_best;
    char *last = NULL, *best = read_file(tp("run/best.safetensors"), &n_best);
    char *metrics = read_file(tp("run/metrics.jsonl"), NULL);

    r.train_toy.nan_epoch = 1;   /* epoch 2, its 5th batch: step 12 + 5 */
    r.train_toy.nan_batch = 4;
    r.opts.stop_after = 0;
    r.opts.resume = "auto";
    r.opts.save_every = 1;   /* it saves after every step: it must not save the NaN one */
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_ERR_STATE);
    const char *msg = mt_last_error();
    cr_expect(strstr(msg, "toy: step 17 (epoch 2, batch 5 of 12): the loss is NaN"), "%s", msg);
    cr_expect(strstr(msg, "last.safetensors is the state of step 16, untouched"), "%s", msg);
    cr_expect(strstr(msg, "NaN or infinite values in the training data"), "%s", msg);
    /* last.safetensors is step 16's, finite; best and the metrics are the first epoch's */
    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_read_metadata(tp("run/last.safetensors"), &meta), MT_OK);
    for (int i = 0; i < meta.n; i++)
        if (strcmp(meta.keys[i], "global_step") == 0) cr_expect_str_eq(meta.values[i], "16");
    mt_safetensors_metadata_free(&meta);
    mt_tensor_list l;
    cr_assert_eq(mt_safetensors_load(tp("run/last.safetensors"), &l), MT_OK);
    for (int i = 0; i < l.n; i++) {
        mt_tensor *t = l.items[i].tensor;
        const float *v = mt_data_ptr(t);
        for (int64_t j = 0; t->dtype == MT_F32 && j < mt_numel(t); j++)
            cr_assert(isfinite(v[j]), "%s has a non-finite value", l.items[i].name);
        mt_free(t);
    }
    mt_tensor_list_free(&l);
    size_t n_best2;
    char *best2 = read_file(tp("run/best.safetensors"), &n_best2), *metrics2 = read_file(tp("run/metrics.jsonl"), NULL);
    cr_expect(n_best2 == n_best && memcmp(best, best2, n_best) == 0, "best.safetensors was overwritten");
    cr_expect_str_eq(metrics2, metrics, "metrics.jsonl changed");
    /* resumed again without save_every: the message points at the checkpoint it resumed from */
    r.opts.save_every = 0;
    r.train_toy.nan_batch = 6;   /* the resumed epoch starts at batch 5 */
    r.opts.resume = tp("run/last.safetensors");
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_ERR_STATE);
    cr_expect(strstr(mt_last_error(), "resumed from, is untouched"), "%s", mt_last_error());
    free(last); free(best); free(metrics); free(best2); free(metrics2);

    /* a fresh run on bad data from the first step: an error, and no run folder (nor its parent) */
    toy_run f;
    toy_init(&f, tp("fresh/run"));
    f.train_toy.nan_epoch = 0;
    f.train_toy.nan_batch = 0;
    cr_assert_eq(mt_train(&f.task, &f.opts, &rep, NULL), MT_ERR_STATE);
    cr_expect(strstr(mt_last_error(), "step 1 (epoch 1, batch 1 of 12)"), "%s", mt_last_error());
    cr_expect(strstr(mt_last_error(), "nothing was saved"), "%s", mt_last_error());
    cr_expect(!exists(tp("fresh/run")), "the failed run left its folder");
    cr_expect(!exists(tp("fresh")), "the failed run left the folder's parent");
}

Test(trainer, failed_runs_leave_no_folder_and_paths_are_named, .init = tr_setup, .fini = tr_teardown)
{
    toy_run r;
    mt_train_report rep;
    toy_init(&r, tp("a/run"));
    r.opts.device = "tpu";
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "'tpu' is not a device"), "%s", mt_last_error());
    r.opts.device = "cpu";
    r.opts.lr = -1;
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "lr must be positive"), "%s", mt_last_error());
    r.opts.lr = 0.01;
    r.opts.batch_size = 1000;   /* no batch at all with drop_last */
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "make no batch"), "%s", mt_last_error());
    cr_expect(!exists(tp("a")), "a failed run left a folder");

    /* a file where the run folder should be, a folder where a checkpoint should be, a missing checkpoint */
    FILE *f = fopen(tp("plain"), "w");
    cr_assert_not_null(f);
    fputs("x", f);
    fclose(f);
    toy_init(&r, tp("plain"));
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "is a file, not a folder"), "%s", mt_last_error());
    toy_init(&r, tp("b"));
    r.opts.resume = tmp_dir;
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "is a folder, not a file"), "%s", mt_last_error());
    r.opts.resume = tp("none.safetensors");
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "not found"), "%s", mt_last_error());
    r.opts.resume = tp("plain");   /* a file that is not a checkpoint */
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(!exists(tp("b")), "a failed resume left a folder");

    /* a checkpoint of another task; a fresh run into a folder that holds one */
    toy_init(&r, tp("c"));
    r.opts.epochs = 1;
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK, "%s", mt_last_error());
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "already holds a run"), "%s", mt_last_error());
    cr_expect(exists(tp("c/last.safetensors")), "a refused run removed the folder's checkpoint");
    toy_run o;
    toy_init(&o, tp("d"));
    o.task.name = "other";
    o.opts.resume = tp("c/last.safetensors");
    cr_assert_neq(mt_train(&o.task, &o.opts, &rep, NULL), MT_OK);
    cr_expect(strstr(mt_last_error(), "is not a other checkpoint"), "%s", mt_last_error());
    cr_expect(strstr(mt_last_error(), "\"toy\" checkpoint"), "%s", mt_last_error());
}

Test(trainer, metrics_checkpoints_and_the_schedule, .init = tr_setup, .fini = tr_teardown)
{
    toy_run r;
    toy_init(&r, tp("run"));
    mt_train_report rep;
    mt_module *net = NULL;
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, &net), MT_OK, "%s", mt_last_error());
    cr_assert_not_null(net);
    cr_expect(rep.finished && rep.has_eval && rep.epochs == 4 && rep.parameters == F * WIDTH + WIDTH + WIDTH * CLASSES + CLASSES);
    cr_expect_gt(rep.eval_metrics[1], 0.6, "held-out accuracy %.3f", rep.eval_metrics[1]);
    cr_expect(rep.best_epoch >= 1 && rep.best_epoch <= 4 && rep.best >= rep.eval_metrics[1]);

    /* one line per epoch with every field; cosine ends at lr/100 */
    char *m = read_file(tp("run/metrics.jsonl"), NULL);
    cr_expect_eq(count_lines(m), 4);
    const char *fields[] = { "{\"epoch\":4,\"step\":48,", "\"lr\":", "\"train_loss\":", "\"train_acc\":", "\"dev_loss\":",
                             "\"dev_acc\":", "\"seconds\":", "\"samples_per_s\":", "\"data_wait_s\":" };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) cr_expect_not_null(strstr(m, fields[i]), "%s", fields[i]);
    const char *lr = strstr(strstr(m, "\"epoch\":4"), "\"lr\":");
    cr_expect_float_eq(strtod(lr + 5, NULL), 0.02 * 0.01, 1e-9, "the last lr: %s", lr);
    free(m);

    /* the checkpoint: the task's pairs, the run's settings and position */
    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_read_metadata(tp("run/last.safetensors"), &meta), MT_OK);
    const char *want[] = { "task", "width", "epochs", "batch", "lr", "schedule", "seed", "clip_grad_norm", "epoch", "global_step",
                           "best_dev_acc", "dev_acc_history", "dropout_seed", "dropout_offset", "epoch_acc_sum", "optim.lr" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        bool found = false;
        for (int j = 0; j < meta.n; j++) found = found || strcmp(meta.keys[j], want[i]) == 0;
        cr_expect(found, "no \"%s\" in the metadata", want[i]);
    }
    mt_train_opts s = { 0 };
    cr_assert_eq(mt_train_read_settings("toy", tp("run/last.safetensors"), &meta, &s), MT_OK, "%s", mt_last_error());
    cr_expect(s.epochs == 4 && s.batch_size == 8 && s.lr == 0.02 && s.seed == 3 && s.schedule == MT_SCHEDULE_COSINE);
    cr_expect_neq(mt_train_read_settings("toy2", tp("run/last.safetensors"), &meta, &s), MT_OK);
    mt_safetensors_metadata_free(&meta);

    /* the returned model is the final one: it evaluates to the last evaluation */
    double sums[2];
    int64_t items;
    cr_assert_eq(mt_train_evaluate(net, &r.dev, 7, mt_cpu(), 0, toy_eval, NULL, 2, sums, &items), MT_OK);
    cr_expect_eq(items, 30);
    cr_expect_eq(sums[1] / 30, rep.eval_metrics[1]);
    mt_module_free(net);

    /* more epochs on resume extend the run */
    r.opts.resume = "auto";
    r.opts.epochs = 5;
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK, "%s", mt_last_error());
    cr_expect(rep.finished && rep.epochs == 5 && rep.steps == 60 && rep.session_steps == 12);
    m = read_file(tp("run/metrics.jsonl"), NULL);
    cr_expect_eq(count_lines(m), 5);
    free(m);

    /* without a run folder nothing is written, and resuming is refused */
    toy_init(&r, NULL);
    r.opts.epochs = 1;
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK, "%s", mt_last_error());
    r.opts.resume = "auto";
    cr_assert_neq(mt_train(&r.task, &r.opts, &rep, NULL), MT_OK);
}

/* The largest change of any parameter over one epoch. */
static double one_epoch_change(double clip)
{
    toy_run r;
    toy_init(&r, NULL);
    r.opts.epochs = 1;
    r.opts.clip_grad_norm = clip;
    r.opts.schedule = MT_SCHEDULE_NONE;
    mt_train_report rep;
    mt_module *net = NULL;
    cr_assert_eq(mt_train(&r.task, &r.opts, &rep, &net), MT_OK, "%s", mt_last_error());
    mt_manual_seed(3);   /* the initial weights again */
    mt_generator g = mt_generator_new(0);
    mt_module *init = toy_build(NULL, &g);
    mt_tensor_list a = mt_parameters(net), b = mt_parameters(init);
    double worst = 0;
    for (int i = 0; i < a.n; i++) {
        const int64_t n = mt_numel(a.items[i].tensor);
        float *va = malloc((size_t)n * sizeof *va), *vb = malloc((size_t)n * sizeof *vb);
        cr_assert_eq(mt_to_data(a.items[i].tensor, MT_F32, va), MT_OK);
        cr_assert_eq(mt_to_data(b.items[i].tensor, MT_F32, vb), MT_OK);
        for (int64_t j = 0; j < n; j++) worst = fmax(worst, fabs((double)va[j] - (double)vb[j]));
        free(va);
        free(vb);
    }
    mt_tensor_list_free(&a);
    mt_tensor_list_free(&b);
    mt_module_free(net);
    mt_module_free(init);
    return worst;
}

Test(trainer, clipping_bounds_the_update, .init = tr_setup, .fini = tr_teardown)
{
    /* AdamW's step is lr m / (sqrt(v) + eps): gradients clipped far below eps make it tiny */
    const double free_change = one_epoch_change(0), clipped = one_epoch_change(1e-12), loose = one_epoch_change(1e6);
    cr_expect_gt(free_change, 0.05, "an epoch moved the weights by %g", free_change);
    cr_expect_lt(clipped, 1e-2 * free_change, "clipped to 1e-12: %g against %g", clipped, free_change);
    cr_expect_eq(loose, free_change, "a bound never reached changes nothing");
}
