/*
 * speech_frames_task.c - frame-level phoneme classification: an MLP over
 * context windows of MFCC frames (models/speech_frames/frame_dataset.h), trained with
 * AdamW on cross-entropy; checkpoints that carry everything needed to
 * evaluate, predict and resume. The user's guide is docs/speech-frames.md.
 *
 * Exact resumption. A run's state is: the model's parameters and buffers,
 * AdamW's moments and step counts, the learning rate and the scheduler, the
 * position in the data, and the dropout generator. The first three are the
 * checkpoint's tensors (mt_checkpoint_load); the scheduler is rebuilt by
 * replaying it (cosine: one step per global step; plateau: the dev
 * accuracies of the finished epochs, kept in the metadata); the loader's
 * order and masks depend only on (seed, epoch), so it restarts at the saved
 * batch; dropout draws from a Philox generator owned by this task, whose
 * (seed, offset) is saved. Nothing draws from the process-wide generator
 * after the initial weights.
 */
#include "models/speech_frames/speech_frames_task.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "models/speech_frames/frame_dataset.h"
#include "models/speech_data/speech_phones.h"

#define TASK "speech-frames"
#define TRAIN_SPLIT "train-clean-100"
#define DEV_SPLIT "dev-clean"
#define TEST_SPLIT "test-clean"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* snprintf into a fresh malloc'd string (NULL when out of memory). */
__attribute__((format(printf, 1, 2)))
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ---------------------------------------------------------------- options */
mt_speech_frames_opts mt_speech_frames_defaults(void)
{
    return (mt_speech_frames_opts){
        .run_dir = "runs/speech-frames",
        .n_hidden = 3, .hidden = { 1024, 1024, 512 },
        .context = 16, .dropout = 0.2,
        .epochs = 10, .batch_size = 1024, .lr = 1e-3, .weight_decay = 0.01,
        .schedule = MT_SPEECH_SCHEDULE_COSINE, .warmup = 0.05,
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

static const char *schedule_name(mt_speech_schedule s)
{
    return s == MT_SPEECH_SCHEDULE_PLATEAU ? "plateau" : s == MT_SPEECH_SCHEDULE_NONE ? "none" : "cosine";
}

static bool schedule_from_name(const char *name, mt_speech_schedule *s)
{
    if (strcmp(name, "cosine") == 0) *s = MT_SPEECH_SCHEDULE_COSINE;
    else if (strcmp(name, "plateau") == 0) *s = MT_SPEECH_SCHEDULE_PLATEAU;
    else if (strcmp(name, "none") == 0) *s = MT_SPEECH_SCHEDULE_NONE;
    else return false;
    return true;
}

static mt_status check_opts(const mt_speech_frames_opts *o)
{
    if (!o->data_dir) return mt_set_error(MT_ERR_ARGUMENT, TASK ": no data folder (--data DIR)");
    if (!o->run_dir) return mt_set_error(MT_ERR_ARGUMENT, TASK ": no run folder (--run DIR)");
    if (o->context < 0 || o->context > 1000) return mt_set_error(MT_ERR_ARGUMENT, TASK ": context K must be in [0, 1000], got %d", o->context);
    if (!(o->dropout >= 0 && o->dropout < 1)) return mt_set_error(MT_ERR_ARGUMENT, TASK ": dropout must be in [0, 1), got %g", o->dropout);
    if (o->epochs < 1) return mt_set_error(MT_ERR_ARGUMENT, TASK ": epochs must be positive, got %d", o->epochs);
    if (o->batch_size < 2) return mt_set_error(MT_ERR_ARGUMENT, TASK ": the batch needs at least 2 frames (batch norm), got %d", o->batch_size);
    if (!(o->lr > 0)) return mt_set_error(MT_ERR_ARGUMENT, TASK ": lr must be positive, got %g", o->lr);
    if (!(o->weight_decay >= 0)) return mt_set_error(MT_ERR_ARGUMENT, TASK ": weight decay must be >= 0, got %g", o->weight_decay);
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
        return mt_set_error(MT_ERR_ARGUMENT, TASK ": label smoothing must be in [0, 1), got %g", o->label_smoothing);
    if (!(o->warmup >= 0 && o->warmup <= 1)) return mt_set_error(MT_ERR_ARGUMENT, TASK ": warm-up must be a fraction in [0, 1], got %g", o->warmup);
    if (!(o->plateau_factor > 0 && o->plateau_factor < 1))
        return mt_set_error(MT_ERR_ARGUMENT, TASK ": the plateau factor must be in (0, 1), got %g", o->plateau_factor);
    if (o->plateau_patience < 0) return mt_set_error(MT_ERR_ARGUMENT, TASK ": the plateau patience must be >= 0");
    if (o->freq_mask < 0 || o->time_mask < 0) return mt_set_error(MT_ERR_ARGUMENT, TASK ": mask widths must be >= 0");
    if (o->n_hidden < 0 || o->n_hidden > MT_SPEECH_FRAMES_MAX_HIDDEN) return mt_set_error(MT_ERR_ARGUMENT, TASK ": bad hidden-layer count %d", o->n_hidden);
    for (int i = 0; i < o->n_hidden; i++)
        if (o->hidden[i] < 1) return mt_set_error(MT_ERR_ARGUMENT, TASK ": hidden width %d is not positive", o->hidden[i]);
    return MT_OK;
}

/* ---------------------------------------------------------------- the model */
/* The shape of the model: what a checkpoint needs to rebuild it. */
typedef struct model_config {
    bool linear;
    int n_hidden, hidden[MT_SPEECH_FRAMES_MAX_HIDDEN];
    int context, features, classes;
    double dropout;
} model_config;

/* Dropout drawing from a generator of the task (nn's Dropout draws from the
   process-wide one, whose position a checkpoint could not restore). */
typedef struct dropout_impl { double p; mt_generator *gen; } dropout_impl;

static mt_tensor *dropout_forward(mt_module *m, mt_tensor *x)
{
    const dropout_impl *d = m->impl;
    return mt_dropout(x, d->p, m->training, d->gen);
}
static void dropout_repr(const mt_module *m, char *buf, size_t size) { snprintf(buf, size, "p=%g", ((const dropout_impl *)m->impl)->p); }
static const mt_module_type dropout_type = { "Dropout", dropout_forward, NULL, dropout_repr };

static mt_module *seeded_dropout(double p, mt_generator *gen)
{
    dropout_impl *impl = malloc(sizeof *impl);
    if (!impl) { mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); return NULL; }
    *impl = (dropout_impl){ p, gen };
    mt_module *m = mt_module_new(&dropout_type, impl);
    if (!m) free(impl);
    return m;
}

/* Sequential(Linear, BatchNorm1d, GELU, Dropout, ..., Linear) with the input
   statistics as buffers "input_mean" and "input_std" [F] (mean 0, std 1
   until set). The initial weights come from the default generator. */
static mt_module *build_model(const model_config *c, mt_generator *dropout_gen)
{
    int64_t in = (int64_t)(2 * c->context + 1) * c->features;
    int n_layers = c->linear ? 1 : 4 * c->n_hidden + 1;
    mt_module **layers = calloc((size_t)n_layers, sizeof *layers);
    if (!layers) { mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); return NULL; }
    int k = 0;
    if (!c->linear)
        for (int i = 0; i < c->n_hidden; i++) {
            layers[k++] = mt_nn_linear(in, c->hidden[i], true);
            layers[k++] = mt_nn_batch_norm1d(c->hidden[i], MT_BN_DEFAULTS);
            layers[k++] = mt_nn_gelu(MT_GELU_ERF);
            layers[k++] = seeded_dropout(c->dropout, dropout_gen);
            in = c->hidden[i];
        }
    layers[k++] = mt_nn_linear(in, c->classes, true);
    mt_module *net = mt_nn_sequential_array(k, layers);   /* frees them all when one is NULL */
    free(layers);
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

/* ---------------------------------------------------------------- data */
static mt_status load_split(const char *data_dir, const char *split, int context, int64_t max_utts,
                            bool require_labels, mt_frame_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    if (!is_dir(data_dir))
        return mt_set_error(MT_ERR_IO, TASK ": data folder '%s' not found (make a corpus with `mytorch data speech --out DIR`)", data_dir);
    char *dir = str_printf("%s/%s", data_dir, split);
    if (!dir) return mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    mt_status st;
    if (!is_dir(dir))
        st = mt_set_error(MT_ERR_IO, TASK ": '%s' has no split '%s' (expected %s/%s/mfcc/*.npy)", data_dir, split, data_dir, split);
    else {
        mt_frame_dataset_opts fo = { .context = context, .max_utts = max_utts, .require_labels = require_labels };
        st = mt_frame_dataset_load(dir, &fo, ds);
        if (st == MT_OK && ds->n_frames == 0) {
            mt_frame_dataset_free(ds);
            st = mt_set_error(MT_ERR_FORMAT, TASK ": '%s' has no frames", dir);
        } else if (st == MT_OK && ds->labels && ds->n_classes > MT_SPEECH_N_PHONES) {
            mt_frame_dataset_free(ds);
            st = mt_set_error(MT_ERR_FORMAT, TASK ": '%s' has label %d, outside the %d phones of [SIL] + ARPAbet",
                              dir, ds->n_classes - 1, MT_SPEECH_N_PHONES);
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

/* ---------------------------------------------------------------- evaluation */
typedef struct eval_result {
    double loss_sum;        /* sum of per-frame cross-entropy (labels only) */
    int64_t hits, n;
} eval_result;

/* Runs net (eval mode, no tape) over every frame of ds in order. With labels:
   loss and hits, and confusion[true * classes + predicted] when given; pred
   (when given) gets each frame's predicted class. */
static mt_status evaluate(mt_module *net, const mt_frame_dataset *ds, int batch, mt_device device, int prefetch,
                          int classes, int64_t *confusion, int64_t *pred, eval_result *out)
{
    memset(out, 0, sizeof *out);
    mt_frame_loader_opts lo = { .batch_size = batch, .prefetch = prefetch, .pinned = device.type == MT_DEVICE_CUDA };
    mt_frame_loader *loader = mt_frame_loader_new(ds, &lo);
    int64_t *host_pred = malloc((size_t)batch * sizeof *host_pred);
    if (!loader || !host_pred) {
        mt_frame_loader_free(loader);
        free(host_pred);
        return loader ? mt_set_error(MT_ERR_MEMORY, TASK ": out of memory") : mt_last_status();
    }
    int64_t dim = (int64_t)(2 * ds->context + 1) * ds->feature_dim;
    bool was_training = net->training;
    mt_module_train(net, false);
    mt_status st = mt_frame_loader_start(loader, 0, 0);
    mt_frame_batch b;
    while (st == MT_OK && mt_frame_loader_next(loader, &b)) {
        mt_scope scope = mt_scope_begin();
        MT_NO_GRAD {
            mt_tensor *x = mt_to_device(mt_from_blob(MT_F32, MT_SHAPE(b.size, dim), (void *)b.x), device);
            mt_tensor *logits = mt_forward(net, x);
            mt_tensor *p = mt_argmax(logits, 1, false);
            if (!p) st = mt_last_status();
            if (st == MT_OK) st = mt_to_data(p, MT_I64, host_pred);
            if (st == MT_OK && b.y) {
                mt_tensor *y = mt_to_device(mt_from_blob(MT_I64, MT_SHAPE(b.size), (void *)b.y), device);
                mt_tensor *loss = mt_cross_entropy(logits, y, (mt_ce_opts){ .reduction = MT_REDUCTION_SUM });
                double l = loss ? mt_item(loss) : NAN;
                if (!loss) st = mt_last_status();
                else out->loss_sum += l;
            }
        }
        mt_scope_end(scope);
        if (st != MT_OK) break;
        for (int64_t i = 0; i < b.size; i++) {
            if (pred) pred[b.frames[i]] = host_pred[i];
            if (!b.y) continue;
            out->hits += host_pred[i] == b.y[i];
            if (confusion && b.y[i] >= 0 && b.y[i] < classes && host_pred[i] >= 0 && host_pred[i] < classes)
                confusion[b.y[i] * classes + host_pred[i]]++;
        }
        out->n += b.size;
    }
    if (st == MT_OK && mt_frame_loader_failed(loader)) st = mt_last_status();
    mt_module_train(net, was_training);
    mt_frame_loader_free(loader);
    free(host_pred);
    return st;
}

/* ---------------------------------------------------------------- checkpoint metadata */
/* Everything a checkpoint says besides its tensors. */
typedef struct run_state {
    mt_speech_frames_opts o;     /* the run's settings (the session fields are not saved) */
    model_config model;
    int64_t epoch;               /* complete epochs */
    int64_t epoch_step;          /* batches done in the epoch after those */
    int64_t global_step;
    double best_dev_acc;
    int best_epoch;
    int n_history;               /* dev accuracy of each complete epoch (replayed into a plateau scheduler) */
    double *history;
    mt_generator dropout;
    double ep_loss_sum, ep_hits; /* the running sums of the epoch in progress */
    int64_t ep_samples;
} run_state;

typedef struct meta_list {
    int n;
    const char *keys[48];
    char *values[48];
} meta_list;

__attribute__((format(printf, 3, 4)))
static bool meta_add(meta_list *m, const char *key, const char *fmt, ...)
{
    if (m->n >= (int)(sizeof m->keys / sizeof m->keys[0])) return false;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return false;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    m->keys[m->n] = key;
    m->values[m->n++] = s;
    return true;
}

static void meta_list_free(meta_list *m)
{
    for (int i = 0; i < m->n; i++) free(m->values[i]);
    m->n = 0;
}

/* "a,b,c" of n ints or of n doubles (17 digits: they read back exactly). */
static char *join_ints(int n, const int *v)
{
    char *s = malloc((size_t)n * 12 + 1);
    if (!s) return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s%d", i ? "," : "", v[i]);
    return s;
}

static char *join_doubles(int n, const double *v)
{
    char *s = malloc((size_t)n * 26 + 1);
    if (!s) return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s%.17g", i ? "," : "", v[i]);
    return s;
}

static bool state_to_meta(const run_state *s, double lr, meta_list *m)
{
    const mt_speech_frames_opts *o = &s->o;
    const model_config *c = &s->model;
    char *hidden = join_ints(c->n_hidden, c->hidden), *history = join_doubles(s->n_history, s->history);
    bool ok = hidden && history &&
        meta_add(m, "optim.lr", "%.17g", lr) &&          /* read by mt_checkpoint_load */
        meta_add(m, "task", "%s", TASK) &&
        meta_add(m, "model", "%s", c->linear ? "linear" : "mlp") &&
        meta_add(m, "hidden", "%s", hidden) &&
        meta_add(m, "context", "%d", c->context) &&
        meta_add(m, "features", "%d", c->features) &&
        meta_add(m, "classes", "%d", c->classes) &&
        meta_add(m, "dropout", "%.17g", c->dropout) &&
        meta_add(m, "epochs", "%d", o->epochs) &&
        meta_add(m, "batch", "%d", o->batch_size) &&
        meta_add(m, "lr", "%.17g", o->lr) &&
        meta_add(m, "weight_decay", "%.17g", o->weight_decay) &&
        meta_add(m, "label_smoothing", "%.17g", o->label_smoothing) &&
        meta_add(m, "schedule", "%s", schedule_name(o->schedule)) &&
        meta_add(m, "warmup", "%.17g", o->warmup) &&
        meta_add(m, "plateau_factor", "%.17g", o->plateau_factor) &&
        meta_add(m, "plateau_patience", "%d", o->plateau_patience) &&
        meta_add(m, "freq_mask", "%d", o->freq_mask) &&
        meta_add(m, "time_mask", "%d", o->time_mask) &&
        meta_add(m, "seed", "%" PRIu64, o->seed) &&
        meta_add(m, "max_utts", "%" PRId64, o->max_utts) &&
        meta_add(m, "epoch", "%" PRId64, s->epoch) &&
        meta_add(m, "epoch_step", "%" PRId64, s->epoch_step) &&
        meta_add(m, "global_step", "%" PRId64, s->global_step) &&
        meta_add(m, "best_dev_acc", "%.17g", s->best_dev_acc) &&
        meta_add(m, "best_epoch", "%d", s->best_epoch) &&
        meta_add(m, "dev_acc_history", "%s", history) &&
        meta_add(m, "dropout_seed", "%" PRIu64, s->dropout.seed) &&
        meta_add(m, "dropout_offset", "%" PRIu64, s->dropout.offset) &&
        meta_add(m, "epoch_loss_sum", "%.17g", s->ep_loss_sum) &&
        meta_add(m, "epoch_hits", "%.17g", s->ep_hits) &&
        meta_add(m, "epoch_samples", "%" PRId64, s->ep_samples);
    free(hidden);
    free(history);
    return ok;
}

/* Reads metadata values, remembering the first problem. */
typedef struct meta_reader {
    const mt_safetensors_metadata *m;
    const char *path;
    mt_status st;
} meta_reader;

static const char *meta_get(meta_reader *r, const char *key)
{
    for (int i = 0; i < r->m->n; i++)
        if (strcmp(r->m->keys[i], key) == 0) return r->m->values[i];
    if (r->st == MT_OK)
        r->st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: the checkpoint's metadata has no \"%s\"", r->path, key);
    return NULL;
}

static double meta_f64(meta_reader *r, const char *key)
{
    const char *v = meta_get(r, key);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) {
        if (r->st == MT_OK) r->st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: metadata \"%s\" is not a number: '%.40s'", r->path, key, v);
        return 0;
    }
    return x;
}

static int64_t meta_i64(meta_reader *r, const char *key, int64_t lo, int64_t hi)
{
    const char *v = meta_get(r, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi) {
        if (r->st == MT_OK)
            r->st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: metadata \"%s\" is not an integer in [%" PRId64 ", %" PRId64 "]: '%.40s'",
                                 r->path, key, lo, hi, v);
        return 0;
    }
    return x;
}

static uint64_t meta_u64(meta_reader *r, const char *key)
{
    const char *v = meta_get(r, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || errno || *v == '-') {
        if (r->st == MT_OK) r->st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: metadata \"%s\" is not an unsigned integer: '%.40s'", r->path, key, v);
        return 0;
    }
    return x;
}

/* Reads the settings and position of a checkpoint (state->history is malloc'd). */
static mt_status state_from_file(const char *path, run_state *s)
{
    memset(s, 0, sizeof *s);
    if (!is_file(path)) return mt_set_error(MT_ERR_IO, TASK ": checkpoint '%s' not found", path);
    mt_safetensors_metadata meta;
    mt_status st = mt_safetensors_read_metadata(path, &meta);
    if (st != MT_OK) return st;
    meta_reader r = { &meta, path, MT_OK };
    const char *task = NULL;
    for (int i = 0; i < meta.n; i++)
        if (strcmp(meta.keys[i], "task") == 0) task = meta.values[i];
    if (!task || strcmp(task, TASK) != 0) {
        mt_safetensors_metadata_free(&meta);
        return mt_set_error(MT_ERR_FORMAT, TASK ": %s is not a " TASK " checkpoint (its metadata has no \"task\": \"" TASK "\")", path);
    }
    s->o = mt_speech_frames_defaults();
    model_config *c = &s->model;
    const char *model = meta_get(&r, "model");
    if (model && strcmp(model, "mlp") != 0 && strcmp(model, "linear") != 0 && r.st == MT_OK)
        r.st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: unknown model '%.40s'", path, model);
    c->linear = model && strcmp(model, "linear") == 0;
    const char *hidden = meta_get(&r, "hidden");
    if (hidden && r.st == MT_OK) {
        mt_speech_frames_opts tmp;
        if (mt_speech_frames_parse_hidden(hidden, &tmp) != MT_OK) r.st = mt_set_error(MT_ERR_FORMAT, "%s: %s", path, mt_last_error());
        c->n_hidden = tmp.n_hidden;
        memcpy(c->hidden, tmp.hidden, sizeof c->hidden);
    }
    c->context = (int)meta_i64(&r, "context", 0, 1000);
    c->features = (int)meta_i64(&r, "features", 1, 100000);
    c->classes = (int)meta_i64(&r, "classes", 1, 100000);
    c->dropout = meta_f64(&r, "dropout");
    mt_speech_frames_opts *o = &s->o;
    o->linear = c->linear;
    o->n_hidden = c->n_hidden;
    memcpy(o->hidden, c->hidden, sizeof o->hidden);
    o->context = c->context;
    o->dropout = c->dropout;
    o->epochs = (int)meta_i64(&r, "epochs", 1, INT32_MAX);
    o->batch_size = (int)meta_i64(&r, "batch", 2, INT32_MAX);
    o->lr = meta_f64(&r, "lr");
    o->weight_decay = meta_f64(&r, "weight_decay");
    o->label_smoothing = meta_f64(&r, "label_smoothing");
    const char *sched = meta_get(&r, "schedule");
    if (sched && !schedule_from_name(sched, &o->schedule) && r.st == MT_OK)
        r.st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: unknown schedule '%.40s'", path, sched);
    o->warmup = meta_f64(&r, "warmup");
    o->plateau_factor = meta_f64(&r, "plateau_factor");
    o->plateau_patience = (int)meta_i64(&r, "plateau_patience", 0, INT32_MAX);
    o->freq_mask = (int)meta_i64(&r, "freq_mask", 0, INT32_MAX);
    o->time_mask = (int)meta_i64(&r, "time_mask", 0, INT32_MAX);
    o->seed = meta_u64(&r, "seed");
    o->max_utts = meta_i64(&r, "max_utts", 0, INT64_MAX);
    s->epoch = meta_i64(&r, "epoch", 0, INT32_MAX);
    s->epoch_step = meta_i64(&r, "epoch_step", 0, INT64_MAX);
    s->global_step = meta_i64(&r, "global_step", 0, INT64_MAX);
    s->best_dev_acc = meta_f64(&r, "best_dev_acc");
    s->best_epoch = (int)meta_i64(&r, "best_epoch", 0, INT32_MAX);
    s->dropout.seed = meta_u64(&r, "dropout_seed");
    s->dropout.offset = meta_u64(&r, "dropout_offset");
    s->ep_loss_sum = meta_f64(&r, "epoch_loss_sum");
    s->ep_hits = meta_f64(&r, "epoch_hits");
    s->ep_samples = meta_i64(&r, "epoch_samples", 0, INT64_MAX);
    const char *hist = meta_get(&r, "dev_acc_history");
    if (hist && r.st == MT_OK) {
        s->history = malloc((size_t)(s->epoch + 1) * sizeof *s->history);
        if (!s->history) r.st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
        for (const char *p = hist; r.st == MT_OK && *p;) {
            char *end;
            double v = strtod(p, &end);
            if (end == p || s->n_history >= s->epoch || (*end && *end != ',')) {
                r.st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: bad \"dev_acc_history\" (one accuracy per complete epoch)", path);
                break;
            }
            s->history[s->n_history++] = v;
            p = *end ? end + 1 : end;
        }
        if (r.st == MT_OK && s->n_history != s->epoch)
            r.st = mt_set_error(MT_ERR_FORMAT, TASK ": %s: \"dev_acc_history\" has %d entries for %" PRId64 " epochs", path, s->n_history, s->epoch);
    }
    if (r.st == MT_OK) {
        mt_speech_frames_opts check = *o;
        check.data_dir = check.run_dir = "";
        if (check_opts(&check) != MT_OK) r.st = mt_set_error(MT_ERR_FORMAT, "%s: %s", path, mt_last_error());
    }
    mt_safetensors_metadata_free(&meta);
    if (r.st != MT_OK) { free(s->history); s->history = NULL; }
    return r.st;
}

/* Writes a checkpoint: "model.<name>" for the state dict, "optim.<name>" for
   AdamW's state (mt_checkpoint_save's layout, so mt_checkpoint_load reads
   it), plus the run state as metadata. Atomic (mt_safetensors_save). */
static mt_status save_checkpoint(const char *path, mt_module *net, mt_optimizer *opt, const run_state *s)
{
    mt_clear_error();
    mt_tensor_list sd = mt_state_dict(net), os = mt_optimizer_state(opt);
    mt_status st = mt_last_status();
    mt_tensor_list all = { 0, calloc((size_t)(sd.n + os.n + 1), sizeof(mt_named_tensor)) };
    meta_list meta = { 0 };
    if (st == MT_OK && !all.items) st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    for (int i = 0; st == MT_OK && i < sd.n + os.n; i++) {
        const mt_named_tensor *t = i < sd.n ? &sd.items[i] : &os.items[i - sd.n];
        char *name = str_printf("%s%s", i < sd.n ? "model." : "optim.", t->name);
        if (!name) { st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); break; }
        all.items[all.n++] = (mt_named_tensor){ name, t->tensor };
    }
    if (st == MT_OK && !state_to_meta(s, mt_optimizer_lr(opt), &meta)) st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    if (st == MT_OK) st = mt_safetensors_save(path, all, meta.n, meta.keys, (const char *const *)meta.values);
    meta_list_free(&meta);
    mt_tensor_list_free(&all);   /* frees the names we made */
    mt_tensor_list_free(&os);
    mt_tensor_list_free(&sd);
    return st;
}

/* ---------------------------------------------------------------- metrics.jsonl */
static void json_number(FILE *f, const char *key, double v, const char *fmt)
{
    fprintf(f, ",\"%s\":", key);
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

/* Keeps the lines of path whose "epoch" is at most last_epoch (a resumed run
   drops what the interrupted one wrote after its checkpoint). */
static mt_status trim_metrics(const char *path, int64_t last_epoch)
{
    FILE *f = fopen(path, "r");
    if (!f) return MT_OK;   /* nothing written yet */
    char *tmp = str_printf("%s.tmp", path);
    FILE *g = tmp ? fopen(tmp, "w") : NULL;
    mt_status st = MT_OK;
    if (!g) st = mt_set_error(MT_ERR_IO, TASK ": cannot write '%s': %s", tmp ? tmp : path, strerror(errno));
    char line[4096];
    while (st == MT_OK && fgets(line, sizeof line, f)) {
        const char *e = strstr(line, "\"epoch\":");
        if (e && strtoll(e + 8, NULL, 10) <= last_epoch) fputs(line, g);
    }
    fclose(f);
    if (g && fclose(g) != 0 && st == MT_OK) st = mt_set_error(MT_ERR_IO, TASK ": cannot write '%s': %s", tmp, strerror(errno));
    if (st == MT_OK && rename(tmp, path) != 0) st = mt_set_error(MT_ERR_IO, TASK ": cannot rename '%s': %s", tmp, strerror(errno));
    if (st != MT_OK && tmp) remove(tmp);
    free(tmp);
    return st;
}

/* ---------------------------------------------------------------- progress */
static void format_eta(double seconds, char *buf, size_t size)
{
    if (!isfinite(seconds) || seconds < 0) snprintf(buf, size, "--");
    else if (seconds < 60) snprintf(buf, size, "%.0fs", seconds);
    else if (seconds < 3600) snprintf(buf, size, "%dm%02ds", (int)(seconds / 60), (int)fmod(seconds, 60));
    else snprintf(buf, size, "%dh%02dm", (int)(seconds / 3600), (int)fmod(seconds / 60, 60));
}

static void progress_line(FILE *f, bool tty, int64_t epoch, int epochs, int64_t batch, int64_t batches,
                          double loss, double acc, double rate, double eta)
{
    enum { WIDTH = 20 };
    char bar[WIDTH + 1], eta_s[32];
    int filled = batches > 0 ? (int)((double)WIDTH * (double)batch / (double)batches) : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    format_eta(eta, eta_s, sizeof eta_s);
    fprintf(f, "%sepoch %" PRId64 "/%d [%s] %" PRId64 "/%" PRId64 " loss %.4f acc %5.1f%% %7.0f samples/s ETA %s%s",
            tty ? "\r" : "", epoch, epochs, bar, batch, batches, loss, 100 * acc, rate, eta_s, tty ? "\033[K" : "\n");
    fflush(f);
}

/* ---------------------------------------------------------------- training */
/* The scheduler of the run, advanced to the state's position: cosine steps
   once per global step, a plateau once per finished epoch with its dev
   accuracy (both set the optimizer's lr; a loaded checkpoint then sets the
   saved lr, which is the same). */
static mt_status make_scheduler(mt_optimizer *opt, const run_state *s, int64_t batches, mt_scheduler **out)
{
    const mt_speech_frames_opts *o = &s->o;
    *out = NULL;
    if (o->schedule == MT_SPEECH_SCHEDULE_NONE) return MT_OK;
    mt_scheduler *sched;
    if (o->schedule == MT_SPEECH_SCHEDULE_COSINE) {
        int64_t total = batches * o->epochs;
        int64_t warm = (int64_t)llround(o->warmup * (double)total);
        sched = mt_cosine_warmup_lr(opt, warm, total, o->lr * 1e-2);
        for (int64_t i = 0; sched && i < s->global_step; i++) mt_scheduler_step(sched);
    } else {
        mt_plateau_opts plateau = MT_PLATEAU_DEFAULTS;
        plateau.maximize = true;
        plateau.factor = o->plateau_factor;
        plateau.patience = o->plateau_patience;
        sched = mt_reduce_on_plateau(opt, plateau);
        for (int i = 0; sched && i < s->n_history; i++) mt_scheduler_step_metric(sched, s->history[i]);
    }
    if (!sched) return mt_last_status();
    *out = sched;
    return MT_OK;
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

static mt_status make_run_dir(const char *dir)
{
    if (is_dir(dir)) return MT_OK;
    /* one level of parents, e.g. runs/speech-frames */
    char *parent = str_printf("%s", dir);
    if (!parent) return mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (!is_dir(parent)) (void)mkdir(parent, 0777);
    }
    free(parent);
    if (mkdir(dir, 0777) != 0 && !is_dir(dir))
        return mt_set_error(MT_ERR_IO, TASK ": cannot make the run folder '%s': %s", dir, strerror(errno));
    return MT_OK;
}

mt_status mt_speech_frames_train(const mt_speech_frames_opts *opts, mt_speech_frames_report *report)
{
    if (!opts || !report) return mt_set_error(MT_ERR_ARGUMENT, TASK ": NULL options or report");
    memset(report, 0, sizeof *report);
    mt_speech_frames_opts fresh = *opts;
    if (fresh.epochs == 0) fresh.epochs = mt_speech_frames_defaults().epochs;
    mt_status st = check_opts(&fresh);
    if (st != MT_OK) return st;
    mt_device device = mt_default_device();
    if (opts->device && mt_device_from_string(opts->device, &device) != MT_OK) return mt_last_status();
    report->device = device;
    FILE *pf = opts->progress;

    char *last_path = str_printf("%s/last.safetensors", opts->run_dir);
    char *best_path = str_printf("%s/best.safetensors", opts->run_dir);
    char *metrics_path = str_printf("%s/metrics.jsonl", opts->run_dir);
    run_state s = { 0 };
    mt_frame_dataset train = { 0 }, dev = { 0 }, test = { 0 };
    mt_frame_loader *loader = NULL;
    mt_module *net = NULL;
    mt_optimizer *opt = NULL;
    mt_scheduler *sched = NULL;
    float *mean = NULL, *std = NULL;
    if (!last_path || !best_path || !metrics_path) { st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); goto done; }

    /* 1. Where to start: a checkpoint's settings and position, or the options. */
    const char *resume = opts->resume;
    if (resume && strcmp(resume, "auto") == 0) resume = is_file(last_path) ? last_path : NULL;
    if (resume) {
        if ((st = state_from_file(resume, &s)) != MT_OK) goto done;
        if (opts->epochs > s.o.epochs) s.o.epochs = opts->epochs;   /* more epochs may be asked for */
        report->resumed = true;
    } else {
        if (is_file(last_path)) {
            st = mt_set_error(MT_ERR_ARGUMENT, TASK ": '%s' already holds a run (%s); continue it with --resume, "
                              "or choose another --run folder", opts->run_dir, last_path);
            goto done;
        }
        s.o = fresh;
        s.best_dev_acc = -1;
        s.dropout = mt_generator_new(opts->seed ^ 0xd20f0d20f0ULL);
        s.history = malloc(sizeof *s.history);
        if (!s.history) { st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); goto done; }
    }
    const mt_speech_frames_opts *o = &s.o;
    if ((st = make_run_dir(opts->run_dir)) != MT_OK) goto done;

    /* 2. The data: train and dev, standardized with the training statistics. */
    if ((st = load_split(opts->data_dir, TRAIN_SPLIT, o->context, o->max_utts, true, &train)) != MT_OK) goto done;
    if ((st = load_split(opts->data_dir, DEV_SPLIT, o->context, o->max_utts, true, &dev)) != MT_OK) goto done;
    if (dev.feature_dim != train.feature_dim) {
        st = mt_set_error(MT_ERR_FORMAT, TASK ": %s has %d coefficients per frame but %s has %d", DEV_SPLIT,
                          dev.feature_dim, TRAIN_SPLIT, train.feature_dim);
        goto done;
    }
    if (resume && s.model.features != train.feature_dim) {
        st = mt_set_error(MT_ERR_FORMAT, TASK ": the checkpoint %s expects %d coefficients per frame, but %s/%s has %d",
                          resume, s.model.features, opts->data_dir, TRAIN_SPLIT, train.feature_dim);
        goto done;
    }
    if (!resume) config_from_opts(o, train.feature_dim, &s.model);
    report->train_frames = train.n_frames;
    report->dev_frames = dev.n_frames;

    /* 3. Model (initial weights from the seed), device, optimizer, scheduler;
       then the checkpoint's values over them. */
    mt_manual_seed(o->seed);
    net = build_model(&s.model, &s.dropout);
    if (!net) { st = mt_last_status(); goto done; }
    if ((st = mt_module_to(net, device)) != MT_OK) goto done;
    report->parameters = mt_parameter_count(net);
    mt_tensor_list params = mt_parameters(net);
    mt_adam_opts adam = MT_ADAMW_DEFAULTS;
    adam.lr = o->lr;
    adam.weight_decay = o->weight_decay;
    opt = mt_adamw(params, adam);
    mt_tensor_list_free(&params);
    if (!opt) { st = mt_last_status(); goto done; }
    /* training drops a last partial batch (a batch of one frame would break batch norm) */
    mt_frame_loader_opts lo = {
        .batch_size = o->batch_size, .shuffle = true, .drop_last = train.n_frames > o->batch_size, .seed = o->seed,
        .masking = { .freq_masks = o->freq_mask > 0, .freq_width = o->freq_mask,
                     .time_masks = o->time_mask > 0, .time_width = o->time_mask },
        .prefetch = opts->prefetch, .pinned = device.type == MT_DEVICE_CUDA,
    };
    loader = mt_frame_loader_new(&train, &lo);
    if (!loader) { st = mt_last_status(); goto done; }
    int64_t batches = mt_frame_loader_batches(loader);
    if ((st = make_scheduler(opt, &s, batches, &sched)) != MT_OK) goto done;
    mean = malloc((size_t)train.feature_dim * sizeof *mean);
    std = malloc((size_t)train.feature_dim * sizeof *std);
    if (!mean || !std) { st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); goto done; }
    if (resume) {
        if ((st = mt_checkpoint_load(resume, net, opt)) != MT_OK) goto done;
        if ((st = get_input_stats(net, mean, std)) != MT_OK) goto done;
        if (s.epoch_step > batches) {
            st = mt_set_error(MT_ERR_FORMAT, TASK ": %s stopped at batch %" PRId64 " of an epoch of %" PRId64 " batches "
                              "(was the data changed?)", resume, s.epoch_step, batches);
            goto done;
        }
        if ((st = trim_metrics(metrics_path, s.epoch)) != MT_OK) goto done;
    } else {
        if ((st = set_input_stats(net, &train, mean, std)) != MT_OK) goto done;
        FILE *mf = fopen(metrics_path, "w");   /* a fresh run starts a fresh log */
        if (!mf) { st = mt_set_error(MT_ERR_IO, TASK ": cannot write '%s': %s", metrics_path, strerror(errno)); goto done; }
        fclose(mf);
    }
    mt_frame_dataset_normalize(&train, mean, std);
    mt_frame_dataset_normalize(&dev, mean, std);

    if (pf) {
        fprintf(pf, "%s: %" PRId64 " training frames, %" PRId64 " dev frames, input %d x %d = %d, %" PRId64 " parameters, "
                "%" PRId64 " batches per epoch, on %s\n", TASK, train.n_frames, dev.n_frames, 2 * o->context + 1,
                train.feature_dim, (2 * o->context + 1) * train.feature_dim, report->parameters, batches,
                mt_device_name(device));
        if (resume)
            fprintf(pf, "%s: resuming %s at epoch %" PRId64 ", batch %" PRId64 " (step %" PRId64 ")\n", TASK, resume,
                    s.epoch + 1, s.epoch_step, s.global_step);
    }

    /* 4. The loop. */
    int64_t dim = (int64_t)(2 * o->context + 1) * train.feature_dim;
    bool tty = pf && isatty(fileno(pf));
    double t_train = 0, last_draw = -1e9, wait0 = mt_frame_loader_wait_seconds(loader);
    eval_result last_dev = { 0 };
    bool have_dev = false, stop = false;
    mt_ce_opts ce = { .reduction = MT_REDUCTION_MEAN, .label_smoothing = o->label_smoothing };
    mt_module_train(net, true);
    while (s.epoch < o->epochs && !stop && st == MT_OK) {
        double t_epoch = now_s(), train_s_epoch = 0, wait_epoch = mt_frame_loader_wait_seconds(loader);
        int64_t session_epoch_samples = 0;
        if ((st = mt_frame_loader_start(loader, s.epoch, s.epoch_step)) != MT_OK) break;
        mt_frame_batch b;
        for (;;) {
            double t_step = now_s();
            if (!mt_frame_loader_next(loader, &b)) break;
            mt_scope scope = mt_scope_begin();
            mt_tensor *x = mt_to_device(mt_from_blob(MT_F32, MT_SHAPE(b.size, dim), (void *)b.x), device);
            mt_tensor *y = mt_to_device(mt_from_blob(MT_I64, MT_SHAPE(b.size), (void *)b.y), device);
            mt_tensor *logits = mt_forward(net, x);
            mt_tensor *loss = mt_cross_entropy(logits, y, ce);
            if (!loss) st = mt_last_status();
            if (st == MT_OK) st = mt_backward(loss);
            if (st == MT_OK) st = mt_step(opt);
            mt_optimizer_zero_grad(opt);
            if (st == MT_OK && sched && o->schedule == MT_SPEECH_SCHEDULE_COSINE) mt_scheduler_step(sched);
            if (st == MT_OK) {
                mt_tensor *hits = mt_sum_all(mt_to_dtype(mt_eq(mt_argmax(logits, 1, false), y), MT_F64));
                if (!hits) st = mt_last_status();
                else {
                    s.ep_loss_sum += mt_item(loss) * (double)b.size;
                    s.ep_hits += mt_item(hits);
                }
            }
            mt_scope_end(scope);
            if (st != MT_OK) break;
            s.ep_samples += b.size;
            s.global_step++;
            s.epoch_step++;
            report->session_steps++;
            report->session_samples += b.size;
            session_epoch_samples += b.size;
            double dt = now_s() - t_step;
            t_train += dt;
            train_s_epoch += dt;

            double elapsed = now_s() - t_epoch;
            if (pf && (tty ? elapsed - last_draw >= 0.1 : elapsed - last_draw >= 10)) {
                double rate = (double)report->session_samples / t_train;
                int64_t left = (o->epochs - s.epoch) * batches - s.epoch_step;
                progress_line(pf, tty, s.epoch + 1, o->epochs, s.epoch_step, batches, s.ep_loss_sum / (double)s.ep_samples,
                              s.ep_hits / (double)s.ep_samples, rate, (double)left * t_train / (double)report->session_steps);
                last_draw = elapsed;
            }
            stop = (opts->stop_after > 0 && s.global_step >= opts->stop_after) || (opts->stop_flag && *opts->stop_flag);
            bool mid_epoch = s.epoch_step < batches;
            if (mid_epoch && (stop || (opts->save_every > 0 && s.global_step % opts->save_every == 0))) {
                if ((st = save_checkpoint(last_path, net, opt, &s)) != MT_OK) break;
                if (stop) break;
            }
        }
        if (st == MT_OK && mt_frame_loader_failed(loader)) st = mt_last_status();
        if (st != MT_OK) break;
        last_draw = -1e9;
        if (s.epoch_step < batches) {   /* stopped mid-epoch (already saved) */
            if (tty) fputc('\n', pf);
            break;
        }

        /* End of the epoch: dev accuracy, scheduler, metrics, checkpoints. */
        double lr_used = mt_optimizer_lr(opt);
        if ((st = evaluate(net, &dev, o->batch_size, device, opts->prefetch, MT_SPEECH_N_PHONES, NULL, NULL, &last_dev)) != MT_OK) break;
        have_dev = true;
        double dev_acc = (double)last_dev.hits / (double)last_dev.n, dev_loss = last_dev.loss_sum / (double)last_dev.n;
        double train_loss = s.ep_loss_sum / (double)s.ep_samples, train_acc = s.ep_hits / (double)s.ep_samples;
        s.history[s.n_history++] = dev_acc;
        s.epoch++;
        s.epoch_step = 0;
        bool improved = dev_acc > s.best_dev_acc;
        if (improved) { s.best_dev_acc = dev_acc; s.best_epoch = (int)s.epoch; }
        if (sched && o->schedule == MT_SPEECH_SCHEDULE_PLATEAU) mt_scheduler_step_metric(sched, dev_acc);
        double *grown = realloc(s.history, (size_t)(s.n_history + 1) * sizeof *s.history);
        if (!grown) { st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory"); break; }
        s.history = grown;

        double seconds = now_s() - t_epoch, wait = mt_frame_loader_wait_seconds(loader) - wait_epoch;
        double rate = train_s_epoch > 0 ? (double)session_epoch_samples / train_s_epoch : 0;
        FILE *mf = fopen(metrics_path, "a");
        if (!mf) { st = mt_set_error(MT_ERR_IO, TASK ": cannot append to '%s': %s", metrics_path, strerror(errno)); break; }
        fprintf(mf, "{\"epoch\":%" PRId64 ",\"step\":%" PRId64, s.epoch, s.global_step);
        json_number(mf, "lr", lr_used, "%.6g");
        json_number(mf, "train_loss", train_loss, "%.6f");
        json_number(mf, "train_acc", train_acc, "%.6f");
        json_number(mf, "dev_loss", dev_loss, "%.6f");
        json_number(mf, "dev_acc", dev_acc, "%.6f");
        json_number(mf, "seconds", seconds, "%.3f");
        json_number(mf, "samples_per_s", rate, "%.1f");
        json_number(mf, "data_wait_s", wait, "%.3f");
        fputs("}\n", mf);
        if (fclose(mf) != 0) { st = mt_set_error(MT_ERR_IO, TASK ": cannot write '%s': %s", metrics_path, strerror(errno)); break; }
        report->train_loss = train_loss;
        report->train_acc = train_acc;
        s.ep_loss_sum = s.ep_hits = 0;
        s.ep_samples = 0;
        if ((st = save_checkpoint(last_path, net, opt, &s)) != MT_OK) break;
        if (improved && (st = save_checkpoint(best_path, net, opt, &s)) != MT_OK) break;
        if (pf)
            fprintf(pf, "%sepoch %" PRId64 "/%d: train loss %.4f acc %.2f%% | dev loss %.4f acc %.2f%%%s | lr %.3g | %.1f s, %.0f samples/s, data wait %.2f s\n",
                    tty ? "\r\033[K" : "", s.epoch, o->epochs, train_loss, 100 * train_acc, dev_loss, 100 * dev_acc,
                    improved ? " (best)" : "", lr_used, seconds, rate, wait);
        if (stop && s.epoch < o->epochs) break;
    }
    if (st != MT_OK) goto done;
    report->epochs_done = (int)s.epoch;
    report->steps = s.global_step;
    report->seconds = t_train;
    report->samples_per_s = t_train > 0 ? (double)report->session_samples / t_train : 0;
    report->data_wait_s = mt_frame_loader_wait_seconds(loader) - wait0;
    report->best_dev_acc = s.best_dev_acc;
    report->best_epoch = s.best_epoch;
    if (s.epoch < o->epochs) { report->stopped = true; goto done; }

    /* 5. The final model on dev and test, and the majority-class baseline. */
    report->finished = true;
    if (!have_dev && (st = evaluate(net, &dev, o->batch_size, device, opts->prefetch, MT_SPEECH_N_PHONES, NULL, NULL, &last_dev)) != MT_OK)
        goto done;
    report->dev_acc = (double)last_dev.hits / (double)last_dev.n;
    report->dev_loss = last_dev.loss_sum / (double)last_dev.n;
    report->majority_class = majority_class(&train);
    report->majority_dev_acc = majority_accuracy(&dev, report->majority_class);
    report->majority_test_acc = NAN;
    report->test_acc = report->test_loss = NAN;
    char *test_dir = str_printf("%s/%s", opts->data_dir, TEST_SPLIT);
    bool has_test = test_dir && is_dir(test_dir);
    free(test_dir);
    if (!opts->skip_test && has_test) {
        if ((st = load_split(opts->data_dir, TEST_SPLIT, o->context, o->max_utts, true, &test)) != MT_OK) goto done;
        if (test.feature_dim != train.feature_dim) {
            st = mt_set_error(MT_ERR_FORMAT, TASK ": %s has %d coefficients per frame but %s has %d", TEST_SPLIT,
                              test.feature_dim, TRAIN_SPLIT, train.feature_dim);
            goto done;
        }
        mt_frame_dataset_normalize(&test, mean, std);
        eval_result r;
        if ((st = evaluate(net, &test, o->batch_size, device, opts->prefetch, MT_SPEECH_N_PHONES, NULL, NULL, &r)) != MT_OK) goto done;
        report->has_test = true;
        report->test_frames = r.n;
        report->test_acc = (double)r.hits / (double)r.n;
        report->test_loss = r.loss_sum / (double)r.n;
        report->majority_test_acc = majority_accuracy(&test, report->majority_class);
    }

done:
    mt_scheduler_free(sched);
    mt_optimizer_free(opt);
    mt_module_free(net);
    mt_frame_loader_free(loader);
    mt_frame_dataset_free(&train);
    mt_frame_dataset_free(&dev);
    mt_frame_dataset_free(&test);
    free(s.history);
    free(mean);
    free(std);
    free(last_path);
    free(best_path);
    free(metrics_path);
    return st;
}

/* ---------------------------------------------------------------- eval and predict */
/* Loads a checkpoint's model (eval mode) and the split, standardized with the model's statistics. */
static mt_status open_for_eval(const mt_speech_frames_eval_opts *o, bool require_labels, run_state *s,
                               mt_generator *gen, mt_module **net, mt_device *device, mt_frame_dataset *ds)
{
    *net = NULL;
    memset(ds, 0, sizeof *ds);
    if (!o->checkpoint || !o->data_dir || !o->split)
        return mt_set_error(MT_ERR_ARGUMENT, TASK ": need a checkpoint, a data folder and a split");
    *device = mt_default_device();
    if (o->device && mt_device_from_string(o->device, device) != MT_OK) return mt_last_status();
    mt_status st = state_from_file(o->checkpoint, s);
    if (st != MT_OK) return st;
    int64_t max_utts = o->max_utts > 0 ? o->max_utts : o->max_utts < 0 ? 0 : s->o.max_utts;
    if ((st = load_split(o->data_dir, o->split, s->model.context, max_utts, require_labels, ds)) != MT_OK) return st;
    if (ds->feature_dim != s->model.features)
        return mt_set_error(MT_ERR_FORMAT, TASK ": the checkpoint %s expects %d coefficients per frame, but %s/%s has %d",
                            o->checkpoint, s->model.features, o->data_dir, o->split, ds->feature_dim);
    *gen = s->dropout;
    *net = build_model(&s->model, gen);
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

mt_status mt_speech_frames_eval(const mt_speech_frames_eval_opts *o, mt_speech_frames_eval_report *report)
{
    if (!o || !report) return mt_set_error(MT_ERR_ARGUMENT, TASK ": NULL options or report");
    memset(report, 0, sizeof *report);
    run_state s = { 0 };
    mt_generator gen;
    mt_module *net = NULL;
    mt_device device;
    mt_frame_dataset ds;
    mt_status st = open_for_eval(o, true, &s, &gen, &net, &device, &ds);
    int classes = s.model.classes;
    if (st == MT_OK) {
        report->confusion = calloc((size_t)classes * (size_t)classes, sizeof *report->confusion);
        if (!report->confusion) st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    }
    eval_result r;
    if (st == MT_OK)
        st = evaluate(net, &ds, o->batch_size > 0 ? o->batch_size : s.o.batch_size, device, 0, classes, report->confusion, NULL, &r);
    if (st == MT_OK) {
        report->n_classes = classes;
        report->frames = r.n;
        report->accuracy = (double)r.hits / (double)r.n;
        report->loss = r.loss_sum / (double)r.n;
    } else mt_speech_frames_eval_report_free(report);
    mt_module_free(net);
    mt_frame_dataset_free(&ds);
    free(s.history);
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
    run_state s = { 0 };
    mt_generator gen;
    mt_module *net = NULL;
    mt_device device;
    mt_frame_dataset ds;
    int64_t *pred = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    mt_status st = open_for_eval(o, false, &s, &gen, &net, &device, &ds);
    if (st == MT_OK) {
        pred = malloc((size_t)ds.n_frames * sizeof *pred);
        tmp = str_printf("%s.tmp.%ld", out_csv, (long)getpid());
        if (!pred || !tmp) st = mt_set_error(MT_ERR_MEMORY, TASK ": out of memory");
    }
    eval_result r;
    if (st == MT_OK)
        st = evaluate(net, &ds, o->batch_size > 0 ? o->batch_size : s.o.batch_size, device, 0, s.model.classes, NULL, pred, &r);
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
    mt_module_free(net);
    mt_frame_dataset_free(&ds);
    free(s.history);
    return st;
}
