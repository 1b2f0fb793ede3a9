/*
 * speech_frames_task.c - frame-level phoneme classification: an MLP over
 * context windows of MFCC frames (models/speech_frames/frame_dataset.h)
 * trained by the shared trainer (models/common/trainer.h) with AdamW on
 * cross-entropy; checkpoints that carry everything needed to evaluate,
 * predict and resume. The user's guide is docs/speech-frames.md.
 *
 * What the task gives the trainer: the model (speech_frames_model.h, with the
 * input statistics as buffers), the training frames as a loader dataset
 * (windows, masks, labels), a batch -> cross-entropy and hits step, the
 * dev-clean pass (loss and accuracy) and its settings as checkpoint
 * metadata. The trainer keeps the run's position (resume), the schedule, the
 * checkpoints and metrics.jsonl.
 */
#include "models/speech_frames/speech_frames_task.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/common/meta.h"
#include "models/common/paths.h"
#include "models/speech_data/speech_phones.h"
#include "models/speech_frames/frame_dataset.h"
#include "models/speech_frames/speech_frames_model.h"

#define TASK "speech-frames"
#define TRAIN_SPLIT "train-clean-100"
#define DEV_SPLIT "dev-clean"
#define TEST_SPLIT "test-clean"

/* ---------------------------------------------------------------- options */
mt_speech_frames_opts mt_speech_frames_defaults(void)
{
    return (mt_speech_frames_opts){
        .run_dir = "runs/speech-frames",
        .n_hidden = 3, .hidden = { 1024, 1024, 512 },
        .context = 16, .dropout = 0.2,
        .epochs = 10, .batch_size = 1024, .lr = 1e-3, .weight_decay = 0.01,
        .schedule = MT_SCHEDULE_COSINE, .warmup = 0.05,
        .plateau_factor = 0.5, .plateau_patience = 1,
    };
}

mt_status mt_speech_frames_parse_hidden(const char *text, mt_speech_frames_opts *o)
{
    if (!text || !o) return mt_set_error(MT_ERR_ARGUMENT, TASK ": NULL hidden-layer list");
    o->n_hidden = 0;
    if (*text == '\0' || strcmp(text, "none") == 0) return MT_OK;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        long w = strtol(p, &end, 10);
        if (end == p || errno || w < 1 || w > 1000000)
            return mt_set_error(MT_ERR_ARGUMENT, TASK ": hidden widths are positive integers separated by commas "
                                "(\"1024,1024,512\"), got '%s'", text);
        if (o->n_hidden == MT_SPEECH_FRAMES_MAX_HIDDEN)
            return mt_set_error(MT_ERR_ARGUMENT, TASK ": at most %d hidden layers, got '%s'", MT_SPEECH_FRAMES_MAX_HIDDEN, text);
        o->hidden[o->n_hidden++] = (int)w;
        if (*end == '\0') return MT_OK;
        if (*end != ',')
            return mt_set_error(MT_ERR_ARGUMENT, TASK ": hidden widths are positive integers separated by commas "
                                "(\"1024,1024,512\"), got '%s'", text);
        p = end + 1;
    }
}

/* The task's own settings (the trainer checks the run's: epochs, lr, ...). */
static mt_status check_opts(const mt_speech_frames_opts *o)
{
    if (!o->data_dir) return mt_set_error(MT_ERR_ARGUMENT, TASK ": no data folder (--data DIR)");
    if (!o->run_dir) return mt_set_error(MT_ERR_ARGUMENT, TASK ": no run folder (--run DIR)");
    if (o->context < 0 || o->context > 1000) return mt_set_error(MT_ERR_ARGUMENT, TASK ": context K must be in [0, 1000], got %d", o->context);
    if (!(o->dropout >= 0 && o->dropout < 1)) return mt_set_error(MT_ERR_ARGUMENT, TASK ": dropout must be in [0, 1), got %g", o->dropout);
    if (o->batch_size < 2) return mt_set_error(MT_ERR_ARGUMENT, TASK ": the batch needs at least 2 frames (batch norm), got %d", o->batch_size);
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
        return mt_set_error(MT_ERR_ARGUMENT, TASK ": label smoothing must be in [0, 1), got %g", o->label_smoothing);
    if (o->freq_mask < 0 || o->time_mask < 0) return mt_set_error(MT_ERR_ARGUMENT, TASK ": mask widths must be >= 0");
    if (o->max_utts < 0) return mt_set_error(MT_ERR_ARGUMENT, TASK ": max_utts must be >= 0");
    if (o->n_hidden < 0 || o->n_hidden > MT_SPEECH_FRAMES_MAX_HIDDEN) return mt_set_error(MT_ERR_ARGUMENT, TASK ": bad hidden-layer count %d", o->n_hidden);
    for (int i = 0; i < o->n_hidden; i++)
        if (o->hidden[i] < 1) return mt_set_error(MT_ERR_ARGUMENT, TASK ": hidden width %d is not positive", o->hidden[i]);
    return MT_OK;
}

/* The run's settings for the trainer (the session's come from opts). */
static mt_train_opts train_opts(const mt_speech_frames_opts *o)
{
    return (mt_train_opts){
        .epochs = o->epochs, .batch_size = o->batch_size, .lr = o->lr, .weight_decay = o->weight_decay,
        .schedule = o->schedule, .warmup = o->warmup, .plateau_factor = o->plateau_factor,
        .plateau_patience = o->plateau_patience, .clip_grad_norm = o->clip_grad_norm, .seed = o->seed,
    };
}

/* ---------------------------------------------------------------- the model */
/* The shape of the model: what a checkpoint needs to rebuild it. */
typedef struct model_config {
    bool linear;
    int n_hidden, hidden[MT_SPEECH_FRAMES_MAX_HIDDEN];
    int context, features, classes;
    double dropout;
} model_config;

/* mt_speech_frames_mlp with the input statistics as buffers "input_mean" and
   "input_std" [F] (mean 0, std 1 until set). The initial weights come from
   the default generator, the dropout masks from gen. */
static mt_module *build_model(const model_config *c, mt_generator *gen)
{
    mt_module *net = mt_speech_frames_mlp(&(mt_speech_mlp_opts){
        .inputs = (int64_t)(2 * c->context + 1) * c->features, .n_hidden = c->n_hidden, .hidden = c->hidden,
        .classes = c->classes, .dropout = c->dropout, .dropout_gen = gen, .linear = c->linear });
    if (!net) return NULL;
    if (!mt_module_add_buffer(net, "input_mean", mt_zeros(MT_F32, MT_SHAPE(c->features))) ||
        !mt_module_add_buffer(net, "input_std", mt_ones(MT_F32, MT_SHAPE(c->features)))) {
        mt_module_free(net);
        return NULL;
    }
    return net;
}

static void config_from_opts(const mt_speech_frames_opts *o, int features, model_config *c)
{
    *c = (model_config){ .linear = o->linear, .n_hidden = o->linear ? 0 : o->n_hidden, .context = o->context,
                         .features = features, .classes = MT_SPEECH_N_PHONES, .dropout = o->dropout };
    memcpy(c->hidden, o->hidden, sizeof c->hidden);
}

/* ---------------------------------------------------------------- checkpoint metadata */
/* The task's pairs of every checkpoint (the trainer adds the run's). */
static mt_status task_meta(const model_config *c, const mt_speech_frames_opts *o, mt_meta_list *m)
{
    char *hidden = mt_meta_join_ints(c->n_hidden, c->hidden);
    bool ok = hidden &&
        mt_meta_add(m, "model", "%s", c->linear ? "linear" : "mlp") &&
        mt_meta_add(m, "hidden", "%s", hidden) &&
        mt_meta_add(m, "context", "%d", c->context) &&
        mt_meta_add(m, "features", "%d", c->features) &&
        mt_meta_add(m, "classes", "%d", c->classes) &&
        mt_meta_add(m, "dropout", "%.17g", c->dropout) &&
        mt_meta_add(m, "label_smoothing", "%.17g", o->label_smoothing) &&
        mt_meta_add(m, "freq_mask", "%d", o->freq_mask) &&
        mt_meta_add(m, "time_mask", "%d", o->time_mask) &&
        mt_meta_add(m, "max_utts", "%" PRId64, o->max_utts);
    free(hidden);
    return ok ? MT_OK : mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
}

/* Reads a checkpoint's settings: the run's (mt_train_read_settings) and the
   task's, into *o (session fields untouched) and *c. */
static mt_status settings_from_file(const char *path, mt_speech_frames_opts *o, model_config *c)
{
    mt_status st = mt_expect_file(TASK, "checkpoint", path,
                                  mt_path_kind_of(path) == MT_PATH_DIR ? "a run folder holds last.safetensors and best.safetensors" : NULL);
    if (st != MT_OK) return st;
    mt_safetensors_metadata meta;
    if ((st = mt_safetensors_read_metadata(path, &meta)) != MT_OK) return st;
    mt_train_opts to = { 0 };
    st = mt_train_read_settings(TASK, path, &meta, &to);
    if (st != MT_OK) { mt_safetensors_metadata_free(&meta); return st; }
    o->epochs = to.epochs;
    o->batch_size = (int)to.batch_size;
    o->lr = to.lr;
    o->weight_decay = to.weight_decay;
    o->schedule = to.schedule;
    o->warmup = to.warmup;
    o->plateau_factor = to.plateau_factor;
    o->plateau_patience = to.plateau_patience;
    o->clip_grad_norm = to.clip_grad_norm;
    o->seed = to.seed;

    mt_meta_reader r = { &meta, TASK, path, MT_OK };
    memset(c, 0, sizeof *c);
    const char *model = mt_meta_get(&r, "model");
    if (model && strcmp(model, "mlp") != 0 && strcmp(model, "linear") != 0) mt_meta_problem(&r, "unknown model '%.40s'", model);
    c->linear = model && strcmp(model, "linear") == 0;
    const char *hidden = mt_meta_get(&r, "hidden");
    if (hidden && r.st == MT_OK) {
        mt_speech_frames_opts tmp;
        if (mt_speech_frames_parse_hidden(hidden, &tmp) != MT_OK) mt_meta_problem(&r, "%s", mt_last_error());
        c->n_hidden = tmp.n_hidden;
        memcpy(c->hidden, tmp.hidden, sizeof c->hidden);
    }
    c->context = (int)mt_meta_i64(&r, "context", 0, 1000);
    c->features = (int)mt_meta_i64(&r, "features", 1, 100000);
    c->classes = (int)mt_meta_i64(&r, "classes", 1, 100000);
    c->dropout = mt_meta_f64(&r, "dropout");
    o->linear = c->linear;
    o->n_hidden = c->n_hidden;
    memcpy(o->hidden, c->hidden, sizeof o->hidden);
    o->context = c->context;
    o->dropout = c->dropout;
    o->label_smoothing = mt_meta_f64(&r, "label_smoothing");
    o->freq_mask = (int)mt_meta_i64(&r, "freq_mask", 0, INT32_MAX);
    o->time_mask = (int)mt_meta_i64(&r, "time_mask", 0, INT32_MAX);
    o->max_utts = mt_meta_i64(&r, "max_utts", 0, INT64_MAX);
    mt_safetensors_metadata_free(&meta);
    if (r.st != MT_OK) return r.st;
    mt_speech_frames_opts check = *o;
    check.data_dir = check.run_dir = "";
    if (check_opts(&check) != MT_OK) return mt_set_error(MT_ERR_FORMAT, "%s: %s", path, mt_last_error());
    return MT_OK;
}

/* ---------------------------------------------------------------- data */
static mt_status load_split(const char *data_dir, const char *split, int context, int64_t max_utts,
                            bool require_labels, mt_frame_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    mt_status st = mt_expect_dir(TASK, "data folder", data_dir,
                                 "--data is a corpus root with " TRAIN_SPLIT "/, " DEV_SPLIT "/ and " TEST_SPLIT
                                 "/; make one with `mytorch data speech --out DIR`");
    if (st != MT_OK) return st;
    char *dir = mt_str_printf("%s/%s", data_dir, split);
    if (!dir) return mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    const mt_path_kind kind = mt_path_kind_of(dir);
    if (kind == MT_PATH_MISSING)
        st = mt_set_error(MT_ERR_IO, TASK ": '%s' has no split '%s' (expected %s/%s/mfcc/*.npy)", data_dir, split, data_dir, split);
    else if (kind != MT_PATH_DIR)
        st = mt_expect_dir(TASK, "split folder", dir, NULL);
    else {
        mt_frame_dataset_opts fo = { .context = context, .max_utts = max_utts, .require_labels = require_labels,
                                     .n_classes = MT_SPEECH_N_PHONES };
        st = mt_frame_dataset_load(dir, &fo, ds);
        if (st == MT_OK && ds->n_frames == 0) {
            mt_frame_dataset_free(ds);
            st = mt_set_error(MT_ERR_FORMAT, TASK ": '%s' has no frames", dir);
        }
    }
    free(dir);
    return st;
}

/* The model's input statistics (host copies of its buffers). */
static mt_status get_input_stats(mt_module *net, float *mean, float *std)
{
    mt_tensor *m = mt_module_buffer(net, "input_mean"), *s = mt_module_buffer(net, "input_std");
    if (!m || !s) return mt_set_error(MT_ERR_ARGUMENT, TASK ": the model has no input statistics");
    mt_status st = mt_to_data(m, MT_F32, mean);
    if (st == MT_OK) st = mt_to_data(s, MT_F32, std);
    return st;
}

/* Sets the model's input statistics from the training split: mean and
   standard deviation per coefficient (a constant coefficient gets std 1). */
static mt_status set_input_stats(mt_module *net, const mt_frame_dataset *train, float *mean, float *std)
{
    int f = train->feature_dim;
    double *dm = malloc((size_t)f * sizeof *dm), *ds = malloc((size_t)f * sizeof *ds);
    if (!dm || !ds) { free(dm); free(ds); return mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); }
    mt_frame_dataset_stats(train, dm, ds);
    for (int i = 0; i < f; i++) {
        mean[i] = (float)dm[i];
        std[i] = ds[i] > 1e-8 ? (float)ds[i] : 1.0f;
    }
    free(dm);
    free(ds);
    mt_status st = MT_OK;
    mt_scope scope = mt_scope_begin();
    mt_tensor *bm = mt_module_buffer(net, "input_mean"), *bs = mt_module_buffer(net, "input_std");
    /* host values, copied to the buffers' device (copy_ stays on one device) */
    mt_tensor *tm = mt_to_device(mt_from_data(MT_F32, MT_SHAPE(f), mean), mt_device_of(bm));
    mt_tensor *ts = mt_to_device(mt_from_data(MT_F32, MT_SHAPE(f), std), mt_device_of(bs));
    if (!tm || !ts) st = mt_last_status();
    if (st == MT_OK) st = mt_copy_(bm, tm);
    if (st == MT_OK) st = mt_copy_(bs, ts);
    mt_scope_end(scope);
    return st;
}

/* The majority class of the training labels and its share of ds's frames. */
static double majority_accuracy(const mt_frame_dataset *ds, int cls)
{
    if (!ds->labels || ds->n_frames == 0) return NAN;
    int64_t hits = 0;
    for (int64_t i = 0; i < ds->n_frames; i++) hits += ds->labels[i] == cls;
    return (double)hits / (double)ds->n_frames;
}

static int majority_class(const mt_frame_dataset *ds)
{
    int64_t counts[MT_SPEECH_N_PHONES] = { 0 };
    for (int64_t i = 0; i < ds->n_frames; i++)
        if (ds->labels[i] >= 0 && ds->labels[i] < MT_SPEECH_N_PHONES) counts[ds->labels[i]]++;
    int best = 0;
    for (int c = 1; c < MT_SPEECH_N_PHONES; c++)
        if (counts[c] > counts[best]) best = c;
    return best;
}

/* ---------------------------------------------------------------- what the trainer calls */
typedef struct task_ctx {
    const model_config *model;
    mt_ce_opts ce;                  /* the training loss */
    mt_frame_dataset *train, *dev;  /* standardized by prepare */
    float *mean, *std;              /* [F] */
    /* the evaluation pass */
    int classes;
    int64_t *host_pred;             /* [eval batch]: a batch's predictions on the host */
    int64_t *confusion;             /* [classes * classes] or NULL */
    int64_t *pred;                  /* [frames] or NULL: every frame's prediction */
} task_ctx;

static mt_module *task_build(void *ctx, mt_generator *gen)
{
    const task_ctx *c = ctx;
    return build_model(c->model, gen);
}

/* The input statistics: the training split's on a fresh run, the
   checkpoint's on a resumed one; then both splits standardized with them. */
static mt_status task_prepare(void *ctx, mt_module *net, bool resumed)
{
    task_ctx *c = ctx;
    mt_status st = resumed ? get_input_stats(net, c->mean, c->std) : set_input_stats(net, c->train, c->mean, c->std);
    if (st != MT_OK) return st;
    mt_frame_dataset_normalize(c->train, c->mean, c->std);
    if (c->dev) mt_frame_dataset_normalize(c->dev, c->mean, c->std);
    return MT_OK;
}

/* cross-entropy of the batch's logits, and the number of frames whose
   largest logit is their label */
static mt_status task_train_step(void *ctx, mt_module *net, const mt_batch *b, mt_device device, mt_train_step_out *out)
{
    const task_ctx *c = ctx;
    mt_tensor *x = mt_batch_tensor(b, 0, device), *y = mt_batch_tensor(b, 1, device);
    mt_tensor *logits = mt_forward(net, x);
    out->loss = mt_cross_entropy(logits, y, c->ce);
    out->sums[0] = mt_sum_all(mt_to_dtype(mt_eq(mt_argmax(logits, 1, false), y), MT_F64));
    return out->loss && out->sums[0] ? MT_OK : mt_last_status();
}

/* sums[0] += the batch's summed cross-entropy (no smoothing), sums[1] += its
   hits; the confusion matrix and the predictions when asked for */
static mt_status task_eval_step(void *ctx, mt_module *net, const mt_batch *b, mt_device device, double *sums)
{
    task_ctx *c = ctx;
    mt_tensor *logits = mt_forward(net, mt_batch_tensor(b, 0, device));
    mt_tensor *p = mt_argmax(logits, 1, false);
    if (!p) return mt_last_status();
    mt_status st = mt_to_data(p, MT_I64, c->host_pred);
    if (st != MT_OK) return st;
    const int64_t *y = b->n_fields > 1 ? b->fields[1].data : NULL;
    if (y) {
        mt_tensor *loss = mt_cross_entropy(logits, mt_batch_tensor(b, 1, device), (mt_ce_opts){ .reduction = MT_REDUCTION_SUM });
        if (!loss) return mt_last_status();
        sums[0] += mt_item(loss);
    }
    int64_t hits = 0;
    for (int64_t i = 0; i < b->size; i++) {
        const int64_t pr = c->host_pred[i];
        if (c->pred) c->pred[b->items[i]] = pr;
        if (!y) continue;
        hits += pr == y[i];
        if (c->confusion && y[i] >= 0 && y[i] < c->classes && pr >= 0 && pr < c->classes) c->confusion[y[i] * c->classes + pr]++;
    }
    sums[1] += (double)hits;
    return MT_OK;
}

/* The task as the trainer sees it (ctx, the datasets and the metadata filled by the caller). */
static mt_task make_task(task_ctx *ctx, const mt_dataset *train, const mt_dataset *dev, const mt_meta_list *meta)
{
    return (mt_task){
        .name = TASK, .ctx = ctx, .build = task_build, .prepare = task_prepare, .train_step = task_train_step,
        .n_train_metrics = 1, .train_metrics = { { .name = "acc", .percent = true, .sum_key = "epoch_hits" } },
        .train_data = train,   /* drop_last: set by the caller */
        .eval_data = dev, .eval_name = "dev", .eval_step = task_eval_step,
        .n_eval_metrics = 2, .eval_metrics = { { .name = "loss" }, { .name = "acc", .percent = true } },
        .best_metric = 1, .maximize = true,
        .n_meta = meta->n, .meta_keys = meta->keys, .meta_values = (const char *const *)meta->values,
        .items = "frames",
    };
}

/* ---------------------------------------------------------------- training */
mt_status mt_speech_frames_train(const mt_speech_frames_opts *opts, mt_speech_frames_report *report)
{
    if (!opts || !report) return mt_set_error(MT_ERR_ARGUMENT, TASK ": NULL options or report");
    memset(report, 0, sizeof *report);
    mt_speech_frames_opts o = *opts;   /* the run's settings: the options', or the checkpoint's */
    if (o.epochs == 0) o.epochs = mt_speech_frames_defaults().epochs;
    mt_status st = check_opts(&o);
    if (st != MT_OK) return st;

    char *resume = NULL;
    model_config model = { 0 };
    mt_frame_dataset train = { 0 }, dev = { 0 }, test = { 0 };
    mt_meta_list meta = { 0 };
    mt_module *net = NULL;
    float *mean = NULL, *std = NULL;
    int64_t *host_pred = NULL;

    /* 1. Where to start: a checkpoint's settings, or the options. */
    if ((st = mt_train_resume_path(TASK, opts->run_dir, opts->resume, &resume)) != MT_OK) goto done;
    if (resume) {
        if ((st = settings_from_file(resume, &o, &model)) != MT_OK) goto done;
        o.epochs = opts->epochs;   /* 0 or more: the trainer keeps the larger of it and the checkpoint's */
    }

    /* 2. The data: train and dev (standardized by the task's prepare). */
    if ((st = load_split(opts->data_dir, TRAIN_SPLIT, o.context, o.max_utts, true, &train)) != MT_OK) goto done;
    if ((st = load_split(opts->data_dir, DEV_SPLIT, o.context, o.max_utts, true, &dev)) != MT_OK) goto done;
    if (dev.feature_dim != train.feature_dim) {
        st = mt_set_error(MT_ERR_FORMAT, TASK ": %s has %d coefficients per frame but %s has %d", DEV_SPLIT,
                          dev.feature_dim, TRAIN_SPLIT, train.feature_dim);
        goto done;
    }
    if (resume && model.features != train.feature_dim) {
        st = mt_set_error(MT_ERR_FORMAT, TASK ": the checkpoint %s expects %d coefficients per frame, but %s/%s has %d",
                          resume, model.features, opts->data_dir, TRAIN_SPLIT, train.feature_dim);
        goto done;
    }
    if (!resume) config_from_opts(&o, train.feature_dim, &model);
    report->train_frames = train.n_frames;
    report->dev_frames = dev.n_frames;
    mean = malloc((size_t)train.feature_dim * sizeof *mean);
    std = malloc((size_t)train.feature_dim * sizeof *std);
    host_pred = malloc((size_t)o.batch_size * sizeof *host_pred);
    if (!mean || !std || !host_pred) { st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); goto done; }
    if ((st = task_meta(&model, &o, &meta)) != MT_OK) goto done;

    /* 3. The trainer. Training batches are masked when asked; the last
       partial batch is dropped (a batch of one frame would break batch norm). */
    const mt_frame_masking masking = { .freq_masks = o.freq_mask > 0, .freq_width = o.freq_mask,
                                       .time_masks = o.time_mask > 0, .time_width = o.time_mask };
    mt_frame_source train_src, dev_src;
    const mt_dataset train_data = mt_frame_source_dataset(&train_src, &train, &masking);
    const mt_dataset dev_data = mt_frame_source_dataset(&dev_src, &dev, NULL);
    task_ctx ctx = { .model = &model, .ce = { .reduction = MT_REDUCTION_MEAN, .label_smoothing = o.label_smoothing },
                     .train = &train, .dev = &dev, .mean = mean, .std = std, .classes = model.classes, .host_pred = host_pred };
    mt_task task = make_task(&ctx, &train_data, &dev_data, &meta);
    task.drop_last = train.n_frames > o.batch_size;
    char summary[96];
    snprintf(summary, sizeof summary, "input %d x %d = %d", 2 * model.context + 1, model.features,
             (2 * model.context + 1) * model.features);
    task.summary = summary;
    mt_train_opts to = train_opts(&o);
    to.run_dir = opts->run_dir;
    to.resume = resume;
    to.save_every = opts->save_every;
    to.stop_after = opts->stop_after;
    to.stop_flag = opts->stop_flag;
    to.device = opts->device;
    to.prefetch = opts->prefetch;
    to.detect_anomaly = opts->detect_anomaly;
    to.progress = opts->progress;
    mt_train_report tr;
    st = mt_train(&task, &to, &tr, &net);
    report->device = tr.device;
    if (st != MT_OK) goto done;
    report->epochs_done = tr.epochs_done;
    report->steps = tr.steps;
    report->session_steps = tr.session_steps;
    report->session_samples = tr.session_samples;
    report->seconds = tr.seconds;
    report->samples_per_s = tr.samples_per_s;
    report->data_wait_s = tr.data_wait_s;
    report->train_loss = tr.train_loss;
    report->train_acc = tr.train_metrics[0];
    report->best_dev_acc = tr.best;
    report->best_epoch = tr.best_epoch;
    report->parameters = tr.parameters;
    report->resumed = tr.resumed;
    report->stopped = tr.stopped;
    if (!tr.finished) goto done;

    /* 4. The final model on dev and test, and the majority-class baseline. */
    report->finished = true;
    double sums[2];
    int64_t items = 0;
    if (tr.has_eval) {   /* the last epoch's evaluation is the final model's */
        report->dev_loss = tr.eval_metrics[0];
        report->dev_acc = tr.eval_metrics[1];
    } else {
        if ((st = mt_train_evaluate(net, &dev_data, o.batch_size, tr.device, opts->prefetch, task_eval_step, &ctx, 2, sums,
                                    &items)) != MT_OK)
            goto done;
        report->dev_loss = sums[0] / (double)items;
        report->dev_acc = sums[1] / (double)items;
    }
    report->majority_class = majority_class(&train);
    report->majority_dev_acc = majority_accuracy(&dev, report->majority_class);
    report->majority_test_acc = NAN;
    report->test_acc = report->test_loss = NAN;
    char *test_dir = mt_str_printf("%s/%s", opts->data_dir, TEST_SPLIT);
    bool has_test = test_dir && mt_path_kind_of(test_dir) == MT_PATH_DIR;
    free(test_dir);
    if (!opts->skip_test && has_test) {
        if ((st = load_split(opts->data_dir, TEST_SPLIT, o.context, o.max_utts, true, &test)) != MT_OK) goto done;
        if (test.feature_dim != train.feature_dim) {
            st = mt_set_error(MT_ERR_FORMAT, TASK ": %s has %d coefficients per frame but %s has %d", TEST_SPLIT,
                              test.feature_dim, TRAIN_SPLIT, train.feature_dim);
            goto done;
        }
        mt_frame_dataset_normalize(&test, mean, std);
        mt_frame_source test_src;
        const mt_dataset test_data = mt_frame_source_dataset(&test_src, &test, NULL);
        if ((st = mt_train_evaluate(net, &test_data, o.batch_size, tr.device, opts->prefetch, task_eval_step, &ctx, 2, sums,
                                    &items)) != MT_OK)
            goto done;
        report->has_test = true;
        report->test_frames = items;
        report->test_loss = sums[0] / (double)items;
        report->test_acc = sums[1] / (double)items;
        report->majority_test_acc = majority_accuracy(&test, report->majority_class);
    }

done:
    mt_module_free(net);
    mt_meta_list_free(&meta);
    mt_frame_dataset_free(&train);
    mt_frame_dataset_free(&dev);
    mt_frame_dataset_free(&test);
    free(host_pred);
    free(mean);
    free(std);
    free(resume);
    return st;
}

/* ---------------------------------------------------------------- eval and predict */
/* A checkpoint's model (eval mode) and the split, standardized with the
   model's statistics; *batch is the batch size to use. */
static mt_status open_for_eval(const mt_speech_frames_eval_opts *o, bool require_labels, model_config *c, int *batch,
                               mt_module **net, mt_device *device, mt_frame_dataset *ds)
{
    *net = NULL;
    memset(ds, 0, sizeof *ds);
    if (!o->checkpoint || !o->data_dir || !o->split)
        return mt_set_error(MT_ERR_ARGUMENT, TASK ": need a checkpoint, a data folder and a split");
    mt_status st = mt_train_device(TASK, o->device, device);
    if (st != MT_OK) return st;
    mt_speech_frames_opts s = mt_speech_frames_defaults();
    if ((st = settings_from_file(o->checkpoint, &s, c)) != MT_OK) return st;
    *batch = o->batch_size > 0 ? o->batch_size : s.batch_size;
    int64_t max_utts = o->max_utts > 0 ? o->max_utts : o->max_utts < 0 ? 0 : s.max_utts;
    if ((st = load_split(o->data_dir, o->split, c->context, max_utts, require_labels, ds)) != MT_OK) return st;
    if (ds->feature_dim != c->features)
        return mt_set_error(MT_ERR_FORMAT, TASK ": the checkpoint %s expects %d coefficients per frame, but %s/%s has %d",
                            o->checkpoint, c->features, o->data_dir, o->split, ds->feature_dim);
    *net = build_model(c, NULL);   /* eval mode: dropout draws nothing */
    if (!*net) return mt_last_status();
    if ((st = mt_module_to(*net, *device)) != MT_OK) return st;
    if ((st = mt_checkpoint_load(o->checkpoint, *net, NULL)) != MT_OK) return st;
    mt_module_train(*net, false);
    float *mean = malloc((size_t)ds->feature_dim * sizeof *mean), *std = malloc((size_t)ds->feature_dim * sizeof *std);
    if (!mean || !std) st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    if (st == MT_OK) st = get_input_stats(*net, mean, std);
    if (st == MT_OK) mt_frame_dataset_normalize(ds, mean, std);
    free(mean);
    free(std);
    return st;
}

/* The evaluation pass of a checkpoint over a split (confusion, pred: as task_ctx's). */
static mt_status eval_split(const mt_speech_frames_eval_opts *o, bool require_labels, int64_t **confusion, int64_t **pred,
                            model_config *c, mt_frame_dataset *ds, double sums[2], int64_t *items)
{
    mt_module *net = NULL;
    mt_device device;
    int batch = 0;
    int64_t *host_pred = NULL;
    mt_status st = open_for_eval(o, require_labels, c, &batch, &net, &device, ds);
    if (st == MT_OK) {
        host_pred = malloc((size_t)batch * sizeof *host_pred);
        if (confusion) *confusion = calloc((size_t)c->classes * (size_t)c->classes, sizeof **confusion);
        if (pred) *pred = malloc((size_t)(ds->n_frames ? ds->n_frames : 1) * sizeof **pred);
        if (!host_pred || (confusion && !*confusion) || (pred && !*pred)) st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    }
    if (st == MT_OK) {
        task_ctx ctx = { .model = c, .classes = c->classes, .host_pred = host_pred, .confusion = confusion ? *confusion : NULL,
                         .pred = pred ? *pred : NULL };
        mt_frame_source src;
        const mt_dataset data = mt_frame_source_dataset(&src, ds, NULL);
        st = mt_train_evaluate(net, &data, batch, device, 0, task_eval_step, &ctx, 2, sums, items);
    }
    free(host_pred);
    mt_module_free(net);
    return st;
}

mt_status mt_speech_frames_eval(const mt_speech_frames_eval_opts *o, mt_speech_frames_eval_report *report)
{
    if (!o || !report) return mt_set_error(MT_ERR_ARGUMENT, TASK ": NULL options or report");
    memset(report, 0, sizeof *report);
    model_config c;
    mt_frame_dataset ds;
    double sums[2];
    int64_t items = 0;
    mt_status st = eval_split(o, true, &report->confusion, NULL, &c, &ds, sums, &items);
    if (st == MT_OK) {
        report->n_classes = c.classes;
        report->frames = items;
        report->accuracy = sums[1] / (double)items;
        report->loss = sums[0] / (double)items;
    } else mt_speech_frames_eval_report_free(report);
    mt_frame_dataset_free(&ds);
    return st;
}

void mt_speech_frames_eval_report_free(mt_speech_frames_eval_report *report)
{
    if (!report) return;
    free(report->confusion);
    report->confusion = NULL;
}

void mt_speech_frames_print_confusion(const mt_speech_frames_eval_report *r, FILE *f)
{
    if (!r || !r->confusion || !f) return;
    int c = r->n_classes;
    fprintf(f, "%-6s %9s %8s  %s\n", "phone", "frames", "acc", "most often mistaken for");
    for (int i = 0; i < c; i++) {
        const int64_t *row = r->confusion + (size_t)i * (size_t)c;
        int64_t total = 0;
        int worst = -1;
        for (int j = 0; j < c; j++) {
            total += row[j];
            if (j != i && row[j] > 0 && (worst < 0 || row[j] > row[worst])) worst = j;
        }
        if (total == 0) continue;
        const char *name = i < MT_SPEECH_N_SYMBOLS ? mt_speech_phone_name(i) : "?";
        fprintf(f, "%-6s %9" PRId64 " %7.2f%%", name, total, 100.0 * (double)row[i] / (double)total);
        if (worst >= 0)
            fprintf(f, "  %s (%.1f%%)", worst < MT_SPEECH_N_SYMBOLS ? mt_speech_phone_name(worst) : "?",
                    100.0 * (double)row[worst] / (double)total);
        fputc('\n', f);
    }
}

mt_status mt_speech_frames_predict(const mt_speech_frames_eval_opts *o, const char *out_csv, int64_t *rows)
{
    if (!o || !out_csv) return mt_set_error(MT_ERR_ARGUMENT, TASK ": NULL options or output path");
    if (rows) *rows = 0;
    model_config c;
    mt_frame_dataset ds;
    int64_t *pred = NULL;
    double sums[2];
    int64_t items = 0;
    char *tmp = NULL;
    FILE *f = NULL;
    mt_status st = eval_split(o, false, NULL, &pred, &c, &ds, sums, &items);
    if (st == MT_OK && !(tmp = mt_str_printf("%s.tmp.%ld", out_csv, (long)getpid()))) st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    if (st == MT_OK && !(f = fopen(tmp, "w")))
        st = mt_set_error(MT_ERR_IO, TASK ": cannot write '%s': %s", tmp, strerror(errno));
    if (st == MT_OK) {
        fputs("id,label\n", f);
        for (int64_t i = 0; i < ds.n_frames; i++) {
            int p = (int)pred[i];
            fprintf(f, "%" PRId64 ",%s\n", i, p >= 0 && p < MT_SPEECH_N_SYMBOLS ? mt_speech_phone_name(p) : "?");
        }
        bool bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
        if (fclose(f) != 0) bad = true;
        f = NULL;
        if (bad) st = mt_set_error(MT_ERR_IO, TASK ": cannot write '%s': %s", tmp, strerror(errno));
        else if (rename(tmp, out_csv) != 0)
            st = mt_set_error(MT_ERR_IO, TASK ": cannot rename '%s' to '%s': %s", tmp, out_csv, strerror(errno));
        if (st != MT_OK) remove(tmp);
        else if (rows) *rows = ds.n_frames;
    }
    free(tmp);
    free(pred);
    mt_frame_dataset_free(&ds);
    return st;
}
