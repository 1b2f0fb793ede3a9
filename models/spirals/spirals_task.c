/*
 * spirals_task.c - the two-spirals demo: an MLP
 *   Linear(2, H) - GELU - Linear(H, H) - GELU - Linear(H, 2)
 * trained by the shared trainer (models/common/trainer.h) with AdamW on
 * cross-entropy in shuffled minibatches (learning rate: one epoch of linear
 * warm-up, then cosine decay), on the device the options name. The smallest
 * complete task: what it gives the trainer is the model, the points as a
 * loader dataset, a batch -> loss and hits step, the held-out accuracy and
 * its settings as checkpoint metadata.
 */
#include "models/spirals/spirals_task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/common/meta.h"
#include "models/common/trainer.h"
#include "models/spirals/spirals.h"

#define TASK "spirals"

/* The points on the host: x [n, 2], y [n], and the epochs' order. */
typedef struct points {
    int64_t n;
    float *x;
    int64_t *y;
    /* the order: epoch e's is the e-th mt_randperm of one generator (as the
       demo shuffled before the trainer existed); gen_epoch is the epoch its
       next permutation belongs to, so epochs in a row cost one draw each */
    uint64_t order_seed;
    mt_generator gen;
    int64_t gen_epoch;
} points;

static mt_status points_get(void *ctx, int64_t item, const mt_data_pos *pos, void *const *dst)
{
    const points *p = ctx;
    (void)pos;
    float *x = dst[0];
    x[0] = p->x[2 * item];
    x[1] = p->x[2 * item + 1];
    *(int64_t *)dst[1] = p->y[item];
    return MT_OK;
}

static mt_status points_order(void *ctx, uint64_t seed, int64_t epoch, int64_t *perm)
{
    points *p = ctx;
    (void)seed;
    if (epoch < p->gen_epoch) {   /* an earlier epoch (a resumed run): replay from the start */
        p->gen = mt_generator_new(p->order_seed);
        p->gen_epoch = 0;
    }
    for (;;) {
        mt_tensor *t = mt_randperm(&p->gen, p->n);
        mt_status st = t ? MT_OK : mt_last_status();
        if (st == MT_OK && p->gen_epoch == epoch) st = mt_to_data(t, MT_I64, perm);
        mt_free(t);
        if (st != MT_OK) return st;
        if (p->gen_epoch++ == epoch) return MT_OK;
    }
}

static mt_dataset points_dataset(points *p)
{
    return (mt_dataset){
        .n = p->n, .n_fields = 2, .ctx = p, .get = points_get,
        .fields = { { .name = "x", .dtype = MT_F32, .ndim = 1, .shape = { 2 } }, { .name = "y", .dtype = MT_I64, .ndim = 0 } },
    };
}

/* The host copy of a set drawn by mt_spirals_make (the tensors stay the caller's). */
static mt_status points_from(const mt_tensor *x, const mt_tensor *y, points *p)
{
    memset(p, 0, sizeof *p);
    p->n = mt_size(x, 0);
    p->x = malloc((size_t)(2 * p->n) * sizeof *p->x);
    p->y = malloc((size_t)p->n * sizeof *p->y);
    if (!p->x || !p->y) return mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    mt_status st = mt_to_data(x, MT_F32, p->x);
    return st == MT_OK ? mt_to_data(y, MT_I64, p->y) : st;
}

static void points_free(points *p)
{
    free(p->x);
    free(p->y);
}

/* ---------------------------------------------------------------- what the trainer calls */
static mt_module *spirals_build(void *ctx, mt_generator *gen)
{
    const int hidden = *(const int *)ctx;
    (void)gen;   /* no dropout */
    return mt_nn_sequential(mt_nn_linear(2, hidden, true), mt_nn_gelu(MT_GELU_TANH),
                            mt_nn_linear(hidden, hidden, true), mt_nn_gelu(MT_GELU_TANH),
                            mt_nn_linear(hidden, 2, true));
}

static mt_status spirals_step(void *ctx, mt_module *net, const mt_batch *b, mt_device device, mt_train_step_out *out)
{
    (void)ctx;
    mt_tensor *y = mt_batch_tensor(b, 1, device);
    mt_tensor *logits = mt_forward(net, mt_batch_tensor(b, 0, device));
    out->loss = mt_cross_entropy(logits, y, (mt_ce_opts){ .reduction = MT_REDUCTION_MEAN });
    out->sums[0] = mt_sum_all(mt_to_dtype(mt_eq(mt_argmax(logits, 1, false), y), MT_F64));
    return out->loss && out->sums[0] ? MT_OK : mt_last_status();
}

static mt_status spirals_eval(void *ctx, mt_module *net, const mt_batch *b, mt_device device, double *sums)
{
    (void)ctx;
    mt_tensor *hits = mt_sum_all(mt_to_dtype(mt_eq(mt_argmax(mt_forward(net, mt_batch_tensor(b, 0, device)), 1, false),
                                                   mt_batch_tensor(b, 1, device)), MT_F64));
    if (!hits) return mt_last_status();
    sums[0] += mt_item(hits);
    return MT_OK;
}

/* Accuracy of net on (x, y) in one batch, in eval mode and without a tape. */
static double accuracy(mt_module *net, const mt_dataset *data, mt_device device)
{
    double hits = 0;
    int64_t items = 0;
    if (mt_train_evaluate(net, data, data->n, device, -1, spirals_eval, NULL, 1, &hits, &items) != MT_OK) return NAN;
    return hits / (double)items;
}

/* ---------------------------------------------------------------- the task */
mt_status mt_spirals_train(const mt_spirals_opts *o, mt_spirals_report *report)
{
    if (!o || !report) return mt_set_error(MT_ERR_ARGUMENT, TASK ": NULL options or report");
    memset(report, 0, sizeof *report);
    mt_spirals_opts s = *o;   /* the run's settings: the options' (defaults filled in), or the checkpoint's */
    if (s.epochs <= 0) s.epochs = 200;
    if (s.hidden <= 0) s.hidden = 64;
    if (s.batch_size <= 0) s.batch_size = 64;
    if (s.points_per_arm <= 0) s.points_per_arm = 500;
    if (s.lr <= 0) s.lr = 1e-2;
    if (s.turns <= 0) s.turns = 1.5;
    s.noise = o->noise > 0 ? o->noise : o->noise < 0 ? 0.0 : 0.01;

    char *resume = NULL;
    mt_tensor *x = NULL, *y = NULL, *x_test = NULL, *y_test = NULL;
    points train = { 0 }, test = { 0 };
    mt_meta_list meta = { 0 };
    mt_module *net = NULL;
    mt_status st = mt_train_resume_path(TASK, o->run_dir, o->resume, &resume);
    if (st != MT_OK) return st;
    if (resume) {   /* the data and the model's width come from the checkpoint */
        mt_safetensors_metadata m;
        if ((st = mt_safetensors_read_metadata(resume, &m)) != MT_OK) goto done;
        mt_train_opts to = { 0 };
        st = mt_train_read_settings(TASK, resume, &m, &to);
        mt_meta_reader r = { &m, TASK, resume, st };
        s.hidden = (int)mt_meta_i64(&r, "hidden", 1, 100000);
        s.points_per_arm = mt_meta_i64(&r, "points_per_arm", 1, INT32_MAX);
        s.turns = mt_meta_f64(&r, "turns");
        s.noise = mt_meta_f64(&r, "noise");
        mt_safetensors_metadata_free(&m);
        if ((st = r.st) != MT_OK) goto done;
        s.seed = to.seed;
        s.epochs = to.epochs > o->epochs ? to.epochs : o->epochs;
        s.batch_size = (int)to.batch_size;
        s.lr = to.lr;
    }

    if ((st = mt_spirals_make(s.points_per_arm, s.turns, s.noise, s.seed, &x, &y)) != MT_OK) goto done;
    if ((st = mt_spirals_make(s.points_per_arm, s.turns, s.noise, s.seed + 1, &x_test, &y_test)) != MT_OK) goto done;
    if ((st = points_from(x, y, &train)) != MT_OK || (st = points_from(x_test, y_test, &test)) != MT_OK) goto done;
    train.order_seed = s.seed ^ 0x5eed5eed5eedULL;
    train.gen = mt_generator_new(train.order_seed);
    mt_dataset train_data = points_dataset(&train), test_data = points_dataset(&test);
    train_data.order = points_order;
    if (!mt_meta_add(&meta, "hidden", "%d", s.hidden) || !mt_meta_add(&meta, "points_per_arm", "%lld", (long long)s.points_per_arm) ||
        !mt_meta_add(&meta, "turns", "%.17g", s.turns) || !mt_meta_add(&meta, "noise", "%.17g", s.noise)) {
        st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
        goto done;
    }

    const mt_task task = {
        .name = TASK, .ctx = &s.hidden, .build = spirals_build, .train_step = spirals_step,
        .n_train_metrics = 1, .train_metrics = { { .name = "acc", .percent = true, .sum_key = "epoch_hits" } },
        .train_data = &train_data,
        .eval_data = &test_data, .eval_name = "heldout", .eval_step = spirals_eval, .eval_batch = test.n,
        .n_eval_metrics = 1, .eval_metrics = { { .name = "acc", .percent = true } }, .best_metric = 0, .maximize = true,
        .n_meta = meta.n, .meta_keys = meta.keys, .meta_values = (const char *const *)meta.values,
        .items = "points",
    };
    /* one epoch of warm-up: warmup * (batches * epochs) = batches */
    const mt_train_opts to = {
        .epochs = s.epochs, .batch_size = s.batch_size, .lr = s.lr, .weight_decay = s.weight_decay,
        .schedule = MT_SCHEDULE_COSINE, .warmup = 1.0 / s.epochs, .plateau_factor = 0.5, .seed = s.seed,
        .run_dir = o->run_dir, .resume = resume, .save_every = o->save_every, .stop_after = o->stop_after,
        .stop_flag = o->stop_flag, .device = o->device, .progress = o->progress,
        .log_every = s.epochs < 10 ? 1 : s.epochs / 10,
    };
    mt_train_report tr;
    st = mt_train(&task, &to, &tr, &net);
    report->device = tr.device;
    if (st != MT_OK) goto done;
    report->final_loss = tr.train_loss;
    report->seconds = tr.seconds;
    report->steps = tr.steps;
    report->samples = tr.session_samples;
    report->parameters = tr.parameters;
    report->epochs = tr.epochs;
    report->stopped = tr.stopped;
    if (tr.stopped) goto done;
    const mt_dataset train_in_order = points_dataset(&train);
    report->train_accuracy = accuracy(net, &train_in_order, tr.device);
    report->test_accuracy = accuracy(net, &test_data, tr.device);
    if (isnan(report->train_accuracy) || isnan(report->test_accuracy)) st = mt_last_status();

done:
    mt_module_free(net);
    mt_meta_list_free(&meta);
    points_free(&train);
    points_free(&test);
    mt_free(x); mt_free(y); mt_free(x_test); mt_free(y_test);
    free(resume);
    return st;
}
