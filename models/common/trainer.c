/*
 * trainer.c - the shared training loop (trainer.h, docs/training.md).
 *
 * Exact resumption. A run's state is: the model's parameters and buffers,
 * AdamW's moments and step counts, the learning rate and the scheduler, the
 * position in the data, the run's generator (dropout), and the running sums
 * of the epoch in progress. The first three are the checkpoint's tensors
 * (mt_checkpoint_load_meta); the scheduler is rebuilt by replaying it
 * (cosine: one step per global step; plateau: the best metric of every
 * evaluated epoch, kept in the metadata); the loader's order depends only on
 * (seed, epoch), so it restarts at the saved batch; the generator's (seed,
 * offset) and the sums are metadata. Nothing draws from the process-wide
 * generator after the initial weights.
 *
 * Checkpoint metadata: "task", the task's pairs, then the run's settings
 * (epochs, batch, lr, weight_decay, schedule, warmup, plateau_factor,
 * plateau_patience, clip_grad_norm, seed) and its position (epoch,
 * epoch_step, global_step, best_<eval>_<metric>, <eval>_<metric>_history,
 * best_epoch, dropout_seed, dropout_offset, epoch_loss_sum, the training
 * metrics' sums, epoch_samples).
 */
#include "models/common/trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/common/meta.h"
#include "models/common/paths.h"
#include "models/common/progress.h"

/* The run's generator: seeded from the run's seed (the value speech-frames
   used before the trainer existed, so that its runs repeat). */
#define RUN_GENERATOR_SALT 0xd20f0d20f0ULL
/* cosine decays to lr * MIN_LR_FACTOR */
#define MIN_LR_FACTOR 1e-2

const char *mt_train_optimizer_name(mt_train_optimizer o)
{
    return o == MT_OPTIMIZER_SGD ? "sgd" : "adamw";
}

bool mt_train_optimizer_from_name(const char *name, mt_train_optimizer *o)
{
    if (name && strcmp(name, "adamw") == 0) { *o = MT_OPTIMIZER_ADAMW; return true; }
    if (name && strcmp(name, "sgd") == 0) { *o = MT_OPTIMIZER_SGD; return true; }
    return false;
}

const char *mt_train_schedule_name(mt_train_schedule s)
{
    return s == MT_SCHEDULE_PLATEAU ? "plateau" : s == MT_SCHEDULE_NONE ? "none" : "cosine";
}

bool mt_train_schedule_from_name(const char *name, mt_train_schedule *s)
{
    if (!name) return false;
    if (strcmp(name, "cosine") == 0) *s = MT_SCHEDULE_COSINE;
    else if (strcmp(name, "plateau") == 0) *s = MT_SCHEDULE_PLATEAU;
    else if (strcmp(name, "none") == 0) *s = MT_SCHEDULE_NONE;
    else return false;
    return true;
}

/* ---------------------------------------------------------------- settings */
static mt_status check_settings(const char *who, const char *where, const mt_train_opts *o)
{
    const char *w = where ? where : "", *sep = where ? ": " : "";
    if (o->epochs < 1) return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sepochs must be positive, got %d", who, w, sep, o->epochs);
    if (o->batch_size < 1)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sthe batch size must be positive, got %" PRId64, who, w, sep, o->batch_size);
    if (!(o->lr > 0) || !isfinite(o->lr)) return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%slr must be positive, got %g", who, w, sep, o->lr);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sweight decay must be >= 0, got %g", who, w, sep, o->weight_decay);
    if (!(o->warmup >= 0 && o->warmup <= 1))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%swarm-up must be a fraction in [0, 1], got %g", who, w, sep, o->warmup);
    if (!(o->plateau_factor > 0 && o->plateau_factor < 1))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sthe plateau factor must be in (0, 1), got %g", who, w, sep, o->plateau_factor);
    if (o->plateau_patience < 0)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sthe plateau patience must be >= 0, got %d", who, w, sep, o->plateau_patience);
    if (!(o->clip_grad_norm >= 0) || !isfinite(o->clip_grad_norm))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sthe gradient clipping norm must be >= 0 (0: off), got %g", who, w, sep,
                            o->clip_grad_norm);
    if ((unsigned)o->optimizer > MT_OPTIMIZER_SGD)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sunknown optimizer %d", who, w, sep, (int)o->optimizer);
    if (!(o->momentum >= 0 && o->momentum < 1))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sthe momentum must be in [0, 1), got %g", who, w, sep, o->momentum);
    if (o->nesterov && !(o->optimizer == MT_OPTIMIZER_SGD && o->momentum > 0))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sNesterov momentum needs SGD with a momentum > 0", who, w, sep);
    if ((unsigned)o->schedule > MT_SCHEDULE_NONE) return mt_set_error(MT_ERR_ARGUMENT, "%s: %s%sunknown schedule %d", who, w, sep, (int)o->schedule);
    return MT_OK;
}

mt_status mt_train_read_settings(const char *who, const char *path, const mt_safetensors_metadata *meta, mt_train_opts *o)
{
    const char *task = mt_meta_find(meta, "task");
    if (!task || strcmp(task, who) != 0)
        return mt_set_error(MT_ERR_FORMAT, "%s: %s is not a %s checkpoint (its metadata has no \"task\": \"%s\"%s%s%s)", who, path,
                            who, who, task ? "; it is a \"" : "", task ? task : "", task ? "\" checkpoint" : "");
    mt_meta_reader r = { meta, who, path, MT_OK };
    o->epochs = (int)mt_meta_i64(&r, "epochs", 1, INT32_MAX);
    o->batch_size = mt_meta_i64(&r, "batch", 1, INT32_MAX);
    o->lr = mt_meta_f64(&r, "lr");
    o->weight_decay = mt_meta_f64(&r, "weight_decay");
    const char *sched = mt_meta_get(&r, "schedule");
    if (sched && !mt_train_schedule_from_name(sched, &o->schedule)) mt_meta_problem(&r, "unknown schedule '%.40s'", sched);
    o->warmup = mt_meta_f64(&r, "warmup");
    o->plateau_factor = mt_meta_f64(&r, "plateau_factor");
    o->plateau_patience = (int)mt_meta_i64(&r, "plateau_patience", 0, INT32_MAX);
    o->seed = mt_meta_u64(&r, "seed");
    /* written since the trainer offers SGD; older checkpoints used AdamW */
    const char *optimizer = mt_meta_find(meta, "optimizer");
    o->optimizer = MT_OPTIMIZER_ADAMW;
    if (optimizer && !mt_train_optimizer_from_name(optimizer, &o->optimizer))
        mt_meta_problem(&r, "unknown optimizer '%.40s'", optimizer);
    o->momentum = mt_meta_find(meta, "momentum") ? mt_meta_f64(&r, "momentum") : 0;
    o->nesterov = mt_meta_find(meta, "nesterov") ? mt_meta_i64(&r, "nesterov", 0, 1) != 0 : false;
    /* written since the trainer clips; older checkpoints did not clip */
    o->clip_grad_norm = mt_meta_find(meta, "clip_grad_norm") ? mt_meta_f64(&r, "clip_grad_norm") : 0;
    if (r.st != MT_OK) return r.st;
    return check_settings(who, path, o);
}

mt_status mt_train_device(const char *who, const char *name, mt_device *device)
{
    *device = mt_default_device();
    if (name && mt_device_from_string(name, device) != MT_OK)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: '%s' is not a device (cpu, cuda, cuda:N, cuda-emu)", who, name);
    const char *why = NULL;
    if (!mt_device_available(*device, &why))
        return mt_set_error(MT_ERR_DEVICE, "%s: device %s is not available here: %s", who, name ? name : mt_device_name(*device),
                            why ? why : "unknown reason");
    return MT_OK;
}

mt_status mt_train_resume_path(const char *who, const char *run_dir, const char *resume, char **path)
{
    *path = NULL;
    if (run_dir) {   /* a run folder that is there must be a folder */
        const mt_path_kind kind = mt_path_kind_of(run_dir);
        if (kind != MT_PATH_MISSING && kind != MT_PATH_DIR) return mt_expect_dir(who, "run folder", run_dir, NULL);
    }
    char *last = run_dir ? mt_str_printf("%s/last.safetensors", run_dir) : NULL;
    if (run_dir && !last) return mt_set_error(MT_ERR_MEMORY, "%s: out of memory", who);
    mt_status st = MT_OK;
    if (!resume) {   /* a fresh run: not into a folder that holds one */
        if (last && mt_path_kind_of(last) != MT_PATH_MISSING)
            st = mt_set_error(MT_ERR_ARGUMENT, "%s: '%s' already holds a run (%s); continue it with --resume, "
                              "or choose another --run folder", who, run_dir, last);
        free(last);
        return st;
    }
    if (strcmp(resume, "auto") == 0) {
        if (!run_dir) return mt_set_error(MT_ERR_ARGUMENT, "%s: --resume auto needs a run folder", who);
        if (mt_path_kind_of(last) == MT_PATH_MISSING) { free(last); return MT_OK; }   /* nothing yet: a fresh start */
        if ((st = mt_expect_file(who, "checkpoint", last, NULL)) != MT_OK) { free(last); return st; }
        *path = last;
        return MT_OK;
    }
    free(last);
    st = mt_expect_file(who, "checkpoint", resume,
                        mt_path_kind_of(resume) == MT_PATH_DIR ? "a run folder holds last.safetensors and best.safetensors" : NULL);
    if (st != MT_OK) return st;
    if (!(*path = mt_str_printf("%s", resume))) return mt_set_error(MT_ERR_MEMORY, "%s: out of memory", who);
    return MT_OK;
}

/* ---------------------------------------------------------------- the evaluation pass */
mt_status mt_train_evaluate(mt_module *net, const mt_dataset *data, int64_t batch_size, mt_device device, int prefetch,
                            mt_eval_step_fn step, void *ctx, int n_sums, double *sums, int64_t *items)
{
    for (int i = 0; i < n_sums; i++) sums[i] = 0;
    if (items) *items = 0;
    const mt_loader_opts lo = { .batch_size = batch_size, .prefetch = prefetch, .pinned = device.type == MT_DEVICE_CUDA };
    mt_loader *loader = mt_loader_new(data, &lo);
    if (!loader) return mt_last_status();
    const bool was_training = net->training;
    mt_module_train(net, false);
    mt_status st = mt_loader_start(loader, 0, 0);
    mt_batch b;
    int64_t seen = 0;
    while (st == MT_OK && mt_loader_next(loader, &b)) {
        mt_scope scope = mt_scope_begin();
        MT_NO_GRAD { st = step(ctx, net, &b, device, sums); }
        mt_scope_end(scope);
        seen += b.size;
    }
    if (st == MT_OK && mt_loader_failed(loader)) st = mt_last_status();
    mt_module_train(net, was_training);
    mt_loader_free(loader);
    if (items) *items = seen;
    return st;
}

/* ---------------------------------------------------------------- the run */
/* Everything a checkpoint says besides its tensors and the settings. */
typedef struct run_state {
    int64_t epoch;                  /* complete epochs */
    int64_t epoch_step;             /* batches done in the epoch after those */
    int64_t global_step;
    double best;                    /* the best evaluation metric so far */
    int best_epoch;
    int n_history;                  /* the best metric of each evaluated epoch (replayed into a plateau scheduler) */
    double *history;
    mt_generator gen;               /* the run's generator (dropout) */
    double loss_sum, sums[MT_TRAIN_MAX_METRICS];   /* the running sums of the epoch in progress */
    int64_t samples;
} run_state;

typedef struct trainer {
    const mt_task *task;
    const char *who;
    mt_train_opts o;                /* the run's settings (from the checkpoint on resume) */
    mt_device device;
    char *last_path, *best_path, *metrics_path;
    bool metrics_started;           /* this session has written metrics.jsonl (a fresh run starts it anew) */
    bool made_dir, made_parent;     /* this call made the run folder (and its parent) */
    char *parent;
    /* metadata key names built from the metrics' names */
    char best_key[96], history_key[96], sum_keys[MT_TRAIN_MAX_METRICS][96];
    run_state s;
    int64_t saved_step;             /* the global step of the last checkpoint written (-1: none) */
    mt_module *net;
    mt_optimizer *opt;
    mt_scheduler *sched;
    mt_tensor_list params;
    mt_loader *loader;
    int64_t batches;
} trainer;

static const char *eval_metric_name(const trainer *t)
{
    return t->task->eval_data ? t->task->eval_metrics[t->task->best_metric].name : NULL;
}

static mt_status check_task(const mt_task *k)
{
    const char *who = k->name ? k->name : "train";
    if (!k->name || !k->build || !k->train_step || !k->train_data)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: a task needs a name, build, train_step and train_data", who);
    if (k->n_train_metrics < 0 || k->n_train_metrics > MT_TRAIN_MAX_METRICS || k->n_eval_metrics < 0 ||
        k->n_eval_metrics > MT_TRAIN_MAX_METRICS)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: at most %d training and %d evaluation metrics", who, MT_TRAIN_MAX_METRICS,
                            MT_TRAIN_MAX_METRICS);
    if (k->eval_data && (!k->eval_step || !k->eval_name || k->n_eval_metrics < 1 || k->best_metric < 0 ||
                         k->best_metric >= k->n_eval_metrics))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: an evaluation needs eval_step, eval_name, metrics and a best_metric among them", who);
    for (int i = 0; i < k->n_train_metrics; i++)
        if (!k->train_metrics[i].name) return mt_set_error(MT_ERR_ARGUMENT, "%s: training metric %d has no name", who, i);
    for (int i = 0; i < k->n_eval_metrics; i++)
        if (!k->eval_metrics[i].name) return mt_set_error(MT_ERR_ARGUMENT, "%s: evaluation metric %d has no name", who, i);
    if (k->n_meta < 0 || (k->n_meta > 0 && (!k->meta_keys || !k->meta_values)) || k->n_meta > MT_META_MAX - 24)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: bad task metadata (%d pairs)", who, k->n_meta);
    return MT_OK;
}

/* The position of a checkpoint (its settings are read by mt_train_read_settings). */
static mt_status read_state(trainer *t, const char *path, const mt_safetensors_metadata *meta)
{
    run_state *s = &t->s;
    mt_meta_reader r = { meta, t->who, path, MT_OK };
    s->epoch = mt_meta_i64(&r, "epoch", 0, INT32_MAX);
    s->epoch_step = mt_meta_i64(&r, "epoch_step", 0, INT64_MAX);
    s->global_step = mt_meta_i64(&r, "global_step", 0, INT64_MAX);
    s->gen.seed = mt_meta_u64(&r, "dropout_seed");
    s->gen.offset = mt_meta_u64(&r, "dropout_offset");
    s->loss_sum = mt_meta_f64(&r, "epoch_loss_sum");
    for (int i = 0; i < t->task->n_train_metrics; i++) s->sums[i] = mt_meta_f64(&r, t->sum_keys[i]);
    s->samples = mt_meta_i64(&r, "epoch_samples", 0, INT64_MAX);
    if (r.st == MT_OK && s->epoch > t->o.epochs)
        mt_meta_problem(&r, "\"epoch\" %" PRId64 " is past the run's %d epochs", s->epoch, t->o.epochs);
    if (t->task->eval_data && r.st == MT_OK) {
        s->best = mt_meta_f64(&r, t->best_key);
        s->best_epoch = (int)mt_meta_i64(&r, "best_epoch", 0, INT32_MAX);
        const char *hist = mt_meta_get(&r, t->history_key);
        if (hist && r.st == MT_OK) {
            for (const char *p = hist; *p;) {
                char *end;
                double v = strtod(p, &end);
                if (end == p || s->n_history >= s->epoch || (*end && *end != ',')) {
                    mt_meta_problem(&r, "bad \"%s\" (one value per evaluated epoch, at most %" PRId64 ")", t->history_key, s->epoch);
                    break;
                }
                s->history[s->n_history++] = v;
                p = *end ? end + 1 : end;
            }
        }
    }
    return r.st;
}

/* The scheduler of the run, advanced to the state's position: cosine steps
   once per global step, a plateau once per evaluated epoch with its metric
   (both set the optimizer's lr; a loaded checkpoint then sets the saved lr,
   which is the same). */
static mt_status make_scheduler(trainer *t)
{
    const mt_train_opts *o = &t->o;
    t->sched = NULL;
    if (o->schedule == MT_SCHEDULE_NONE) return MT_OK;
    mt_scheduler *sched;
    if (o->schedule == MT_SCHEDULE_COSINE) {
        int64_t total = t->batches * o->epochs;
        int64_t warm = (int64_t)llround(o->warmup * (double)total);
        sched = mt_cosine_warmup_lr(t->opt, warm, total, o->lr * MIN_LR_FACTOR);
        for (int64_t i = 0; sched && i < t->s.global_step; i++) mt_scheduler_step(sched);
    } else {
        if (!t->task->eval_data)
            return mt_set_error(MT_ERR_ARGUMENT, "%s: the plateau schedule watches an evaluation metric, and the task has none", t->who);
        mt_plateau_opts plateau = MT_PLATEAU_DEFAULTS;
        plateau.maximize = t->task->maximize;
        plateau.factor = o->plateau_factor;
        plateau.patience = o->plateau_patience;
        sched = mt_reduce_on_plateau(t->opt, plateau);
        for (int i = 0; sched && i < t->s.n_history; i++) mt_scheduler_step_metric(sched, t->s.history[i]);
    }
    if (!sched) return mt_last_status();
    t->sched = sched;
    return MT_OK;
}

/* Writes a checkpoint of the run (atomically: mt_safetensors_save). */
static mt_status save_checkpoint(trainer *t, const char *path)
{
    const mt_task *k = t->task;
    const mt_train_opts *o = &t->o;
    const run_state *s = &t->s;
    mt_meta_list m = { 0 };
    char *history = mt_meta_join_doubles(s->n_history, s->history);
    bool ok = history && mt_meta_add(&m, "task", "%s", k->name);
    for (int i = 0; ok && i < k->n_meta; i++) ok = mt_meta_add(&m, k->meta_keys[i], "%s", k->meta_values[i]);
    ok = ok &&
        mt_meta_add(&m, "epochs", "%d", o->epochs) &&
        mt_meta_add(&m, "batch", "%" PRId64, o->batch_size) &&
        mt_meta_add(&m, "lr", "%.17g", o->lr) &&
        mt_meta_add(&m, "weight_decay", "%.17g", o->weight_decay) &&
        mt_meta_add(&m, "optimizer", "%s", mt_train_optimizer_name(o->optimizer)) &&
        mt_meta_add(&m, "momentum", "%.17g", o->momentum) &&
        mt_meta_add(&m, "nesterov", "%d", o->nesterov ? 1 : 0) &&
        mt_meta_add(&m, "schedule", "%s", mt_train_schedule_name(o->schedule)) &&
        mt_meta_add(&m, "warmup", "%.17g", o->warmup) &&
        mt_meta_add(&m, "plateau_factor", "%.17g", o->plateau_factor) &&
        mt_meta_add(&m, "plateau_patience", "%d", o->plateau_patience) &&
        mt_meta_add(&m, "clip_grad_norm", "%.17g", o->clip_grad_norm) &&
        mt_meta_add(&m, "seed", "%" PRIu64, o->seed) &&
        mt_meta_add(&m, "epoch", "%" PRId64, s->epoch) &&
        mt_meta_add(&m, "epoch_step", "%" PRId64, s->epoch_step) &&
        mt_meta_add(&m, "global_step", "%" PRId64, s->global_step) &&
        mt_meta_add(&m, "dropout_seed", "%" PRIu64, s->gen.seed) &&
        mt_meta_add(&m, "dropout_offset", "%" PRIu64, s->gen.offset) &&
        mt_meta_add(&m, "epoch_loss_sum", "%.17g", s->loss_sum) &&
        mt_meta_add(&m, "epoch_samples", "%" PRId64, s->samples);
    for (int i = 0; ok && i < k->n_train_metrics; i++) ok = mt_meta_add(&m, t->sum_keys[i], "%.17g", s->sums[i]);
    if (ok && k->eval_data)
        ok = mt_meta_add(&m, t->best_key, "%.17g", s->best) && mt_meta_add(&m, "best_epoch", "%d", s->best_epoch) &&
             mt_meta_add(&m, t->history_key, "%s", history);
    free(history);
    mt_status st = ok ? mt_checkpoint_save_meta(path, t->net, t->opt, m.n, m.keys, (const char *const *)m.values)
                      : mt_set_error(MT_ERR_MEMORY, "%s: out of memory", t->who);
    mt_meta_list_free(&m);
    if (st == MT_OK) t->saved_step = s->global_step;
    return st;
}

/* ---------------------------------------------------------------- the run folder and metrics.jsonl */
/* Makes the run folder (and one level of parents, e.g. runs/speech-frames),
   remembering what it made so that a failed run can take it away again. */
static mt_status make_run_dir(trainer *t)
{
    const char *dir = t->o.run_dir;
    if (mt_path_kind_of(dir) == MT_PATH_DIR) return MT_OK;
    t->parent = mt_str_printf("%s", dir);
    if (!t->parent) return mt_set_error(MT_ERR_MEMORY, "%s: out of memory", t->who);
    char *slash = strrchr(t->parent, '/');
    if (slash && slash != t->parent) {
        *slash = '\0';
        if (mt_path_kind_of(t->parent) == MT_PATH_MISSING) t->made_parent = mkdir(t->parent, 0777) == 0;
    }
    if (mkdir(dir, 0777) != 0) {
        mt_status st = mt_set_error(MT_ERR_IO, "%s: cannot make the run folder '%s': %s", t->who, dir, strerror(errno));
        if (t->made_parent) rmdir(t->parent);
        t->made_parent = false;
        return st;
    }
    t->made_dir = true;
    return MT_OK;
}

/* After a failed run: the folder this call made goes again if nothing of
   value is in it (a checkpoint keeps it). */
static void unmake_run_dir(trainer *t)
{
    if (t->made_dir) {
        struct stat sb;
        if (t->metrics_path && stat(t->metrics_path, &sb) == 0 && sb.st_size == 0) unlink(t->metrics_path);
        if (rmdir(t->o.run_dir) == 0 && t->made_parent) rmdir(t->parent);
    }
}

static void json_number(FILE *f, const char *key, double v, const char *fmt)
{
    fprintf(f, ",\"%s\":", key);
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

/* Keeps the lines of path whose "epoch" is at most last_epoch (a resumed run
   drops what the interrupted one wrote after its checkpoint). */
static mt_status trim_metrics(const trainer *t, int64_t last_epoch)
{
    const char *path = t->metrics_path;
    FILE *f = fopen(path, "r");
    if (!f) return MT_OK;   /* nothing written yet */
    char *tmp = mt_str_printf("%s.tmp", path);
    FILE *g = tmp ? fopen(tmp, "w") : NULL;
    mt_status st = MT_OK;
    if (!g) st = mt_set_error(MT_ERR_IO, "%s: cannot write '%s': %s", t->who, tmp ? tmp : path, strerror(errno));
    char line[4096];
    while (st == MT_OK && fgets(line, sizeof line, f)) {
        const char *e = strstr(line, "\"epoch\":");
        if (e && strtoll(e + 8, NULL, 10) <= last_epoch) fputs(line, g);
    }
    fclose(f);
    if (g && fclose(g) != 0 && st == MT_OK) st = mt_set_error(MT_ERR_IO, "%s: cannot write '%s': %s", t->who, tmp, strerror(errno));
    if (st == MT_OK && rename(tmp, path) != 0) st = mt_set_error(MT_ERR_IO, "%s: cannot rename '%s': %s", t->who, tmp, strerror(errno));
    if (st != MT_OK && tmp) remove(tmp);
    free(tmp);
    return st;
}

/* One line of metrics.jsonl for the epoch that just ended. */
static mt_status write_metrics(trainer *t, double lr, double train_loss, const double *train, const double *eval, double seconds,
                               double rate, double wait)
{
    const mt_task *k = t->task;
    FILE *mf = fopen(t->metrics_path, t->metrics_started ? "a" : "w");
    if (!mf) return mt_set_error(MT_ERR_IO, "%s: cannot append to '%s': %s", t->who, t->metrics_path, strerror(errno));
    t->metrics_started = true;
    char key[128];
    fprintf(mf, "{\"epoch\":%" PRId64 ",\"step\":%" PRId64, t->s.epoch, t->s.global_step);
    json_number(mf, "lr", lr, "%.6g");
    json_number(mf, "train_loss", train_loss, "%.6f");
    for (int i = 0; i < k->n_train_metrics; i++) {
        snprintf(key, sizeof key, "train_%s", k->train_metrics[i].name);
        json_number(mf, key, train[i], "%.6f");
    }
    for (int i = 0; eval && i < k->n_eval_metrics; i++) {
        snprintf(key, sizeof key, "%s_%s", k->eval_name, k->eval_metrics[i].name);
        json_number(mf, key, eval[i], "%.6f");
    }
    json_number(mf, "seconds", seconds, "%.3f");
    json_number(mf, "samples_per_s", rate, "%.1f");
    json_number(mf, "data_wait_s", wait, "%.3f");
    fputs("}\n", mf);
    if (fclose(mf) != 0) return mt_set_error(MT_ERR_IO, "%s: cannot write '%s': %s", t->who, t->metrics_path, strerror(errno));
    return MT_OK;
}

static void print_metrics(FILE *f, const mt_metric_spec *specs, int n, const double *v)
{
    for (int i = 0; i < n; i++) {
        if (specs[i].percent) fprintf(f, " %s %.2f%%", specs[i].name, 100 * v[i]);
        else fprintf(f, " %s %.4f", specs[i].name, v[i]);
    }
}

/* ---------------------------------------------------------------- setting up */
static void trainer_free(trainer *t)
{
    mt_loader_free(t->loader);
    mt_scheduler_free(t->sched);
    mt_optimizer_free(t->opt);
    mt_tensor_list_free(&t->params);
    mt_module_free(t->net);
    free(t->s.history);
    free(t->last_path);
    free(t->best_path);
    free(t->metrics_path);
    free(t->parent);
}

/* Everything before the first step: the settings and position (a
   checkpoint's, or the options'), the loader, the model on its device,
   AdamW, the scheduler, the checkpoint's values, the task's prepare, the
   run folder. */
static mt_status setup(trainer *t, const mt_train_opts *opts, mt_train_report *report, char **resume_out)
{
    const mt_task *k = t->task;
    mt_status st = mt_train_device(t->who, opts->device, &t->device);
    if (st != MT_OK) return st;
    report->device = t->device;
    t->o = *opts;
    t->saved_step = -1;
    snprintf(t->best_key, sizeof t->best_key, "best_%s_%s", k->eval_name ? k->eval_name : "eval", eval_metric_name(t) ? eval_metric_name(t) : "");
    snprintf(t->history_key, sizeof t->history_key, "%s_%s_history", k->eval_name ? k->eval_name : "eval",
             eval_metric_name(t) ? eval_metric_name(t) : "");
    for (int i = 0; i < k->n_train_metrics; i++) {
        if (k->train_metrics[i].sum_key) snprintf(t->sum_keys[i], sizeof t->sum_keys[i], "%s", k->train_metrics[i].sum_key);
        else snprintf(t->sum_keys[i], sizeof t->sum_keys[i], "epoch_%s_sum", k->train_metrics[i].name);
    }

    /* 1. Where to start: a checkpoint's settings and position, or the options. */
    if (opts->run_dir) {
        t->last_path = mt_str_printf("%s/last.safetensors", opts->run_dir);
        t->best_path = mt_str_printf("%s/best.safetensors", opts->run_dir);
        t->metrics_path = mt_str_printf("%s/metrics.jsonl", opts->run_dir);
        if (!t->last_path || !t->best_path || !t->metrics_path) return mt_set_error(MT_ERR_MEMORY, "%s: out of memory", t->who);
    }
    char *resume = NULL;
    if ((st = mt_train_resume_path(t->who, opts->run_dir, opts->resume, &resume)) != MT_OK) return st;
    *resume_out = resume;
    if (resume) {
        mt_safetensors_metadata meta;
        if ((st = mt_safetensors_read_metadata(resume, &meta)) != MT_OK) return st;
        st = mt_train_read_settings(t->who, resume, &meta, &t->o);
        if (st == MT_OK) {
            if (opts->epochs > t->o.epochs) t->o.epochs = opts->epochs;   /* more epochs may be asked for */
            t->s.history = malloc((size_t)(t->o.epochs + 1) * sizeof *t->s.history);
            if (!t->s.history) st = mt_set_error(MT_ERR_MEMORY, "%s: out of memory", t->who);
        }
        if (st == MT_OK) st = read_state(t, resume, &meta);
        mt_safetensors_metadata_free(&meta);
        if (st != MT_OK) return st;
        report->resumed = true;
    } else {   /* (mt_train_resume_path refused a folder that holds a run) */
        if ((st = check_settings(t->who, NULL, &t->o)) != MT_OK) return st;
        t->s.best = k->maximize ? -INFINITY : INFINITY;
        t->s.gen = mt_generator_new(t->o.seed ^ RUN_GENERATOR_SALT);
        t->s.history = malloc((size_t)(t->o.epochs + 1) * sizeof *t->s.history);
        if (!t->s.history) return mt_set_error(MT_ERR_MEMORY, "%s: out of memory", t->who);
    }
    const mt_train_opts *o = &t->o;
    report->epochs = o->epochs;
    report->seed = o->seed;
    report->batch_size = o->batch_size;

    /* 2. The training data's loader. */
    const mt_loader_opts lo = { .batch_size = o->batch_size, .shuffle = true, .drop_last = k->drop_last, .seed = o->seed,
                                .prefetch = opts->prefetch, .pinned = t->device.type == MT_DEVICE_CUDA };
    if (!(t->loader = mt_loader_new(k->train_data, &lo))) return mt_last_status();
    t->batches = mt_loader_batches(t->loader);
    if (t->batches < 1)
        return mt_set_error(MT_ERR_ARGUMENT, "%s: %" PRId64 " training %s make no batch of %" PRId64, t->who, k->train_data->n,
                            k->items ? k->items : "items", o->batch_size);
    if (t->s.epoch_step > t->batches)
        return mt_set_error(MT_ERR_FORMAT, "%s: %s stopped at batch %" PRId64 " of an epoch of %" PRId64 " batches "
                            "(was the data changed?)", t->who, resume, t->s.epoch_step, t->batches);

    /* 3. Model (initial weights from the seed), device, optimizer, scheduler;
       then the checkpoint's values over them. */
    mt_manual_seed(o->seed);
    if (!(t->net = k->build(k->ctx, &t->s.gen))) return mt_last_status();
    if ((st = mt_module_to(t->net, t->device)) != MT_OK) return st;
    report->parameters = mt_parameter_count(t->net);
    mt_clear_error();
    t->params = mt_parameters(t->net);
    if (mt_last_status() != MT_OK) return mt_last_status();
    if (o->optimizer == MT_OPTIMIZER_SGD) {
        mt_sgd_opts sgd = MT_SGD_DEFAULTS;
        sgd.lr = o->lr;
        sgd.momentum = o->momentum;
        sgd.nesterov = o->nesterov;
        sgd.weight_decay = o->weight_decay;
        t->opt = mt_sgd(t->params, sgd);
    } else {
        mt_adam_opts adam = MT_ADAMW_DEFAULTS;
        adam.lr = o->lr;
        adam.weight_decay = o->weight_decay;
        t->opt = mt_adamw(t->params, adam);
    }
    if (!t->opt) return mt_last_status();
    if ((st = make_scheduler(t)) != MT_OK) return st;
    if (resume && (st = mt_checkpoint_load(resume, t->net, t->opt)) != MT_OK) return st;
    if (k->prepare && (st = k->prepare(k->ctx, t->net, resume != NULL)) != MT_OK) return st;

    /* 4. The run folder: now that nothing of the setup can fail any more. */
    if (o->run_dir) {
        if ((st = make_run_dir(t)) != MT_OK) return st;
        /* what writers killed before their rename left there (never a live writer's) */
        if ((st = mt_clean_stale_temp_files(o->run_dir, NULL)) != MT_OK) return st;
        if (resume && (st = trim_metrics(t, t->s.epoch)) != MT_OK) return st;
        t->metrics_started = resume != NULL;
    }
    return MT_OK;
}

/* ---------------------------------------------------------------- training */
static mt_status train(const mt_task *task, const mt_train_opts *opts, mt_train_report *report, mt_module **net_out)
{
    if (net_out) *net_out = NULL;
    if (!task || !opts || !report) return mt_set_error(MT_ERR_ARGUMENT, "train: NULL task, options or report");
    memset(report, 0, sizeof *report);
    mt_status st = check_task(task);
    if (st != MT_OK) return st;
    trainer t = { .task = task, .who = task->name };
    char *resume = NULL;
    if ((st = setup(&t, opts, report, &resume)) != MT_OK) goto done;
    const mt_train_opts *o = &t.o;
    run_state *s = &t.s;
    const mt_task *k = task;
    FILE *pf = opts->progress;
    mt_progress bar;
    mt_progress_init(&bar, pf);

    if (pf) {
        fprintf(pf, "%s: %" PRId64 " training %s", t.who, k->train_data->n, k->items ? k->items : "items");
        if (k->eval_data) fprintf(pf, ", %" PRId64 " %s %s", k->eval_data->n, k->eval_name, k->items ? k->items : "items");
        if (k->summary) fprintf(pf, ", %s", k->summary);
        fprintf(pf, ", %" PRId64 " parameters, %" PRId64 " batches per epoch, on %s\n", report->parameters, t.batches,
                mt_device_name(t.device));
        if (resume)
            fprintf(pf, "%s: resuming %s at epoch %" PRId64 ", batch %" PRId64 " (step %" PRId64 ")\n", t.who, resume,
                    s->epoch + 1, s->epoch_step, s->global_step);
    }

    double t_train = 0;
    const double wait0 = mt_loader_wait_seconds(t.loader);
    bool stop = false;
    const int n_train = k->n_train_metrics;
    mt_module_train(t.net, true);
    while (s->epoch < o->epochs && !stop && st == MT_OK) {
        const double t_epoch = mt_clock_seconds(), wait_epoch = mt_loader_wait_seconds(t.loader);
        double train_s_epoch = 0;
        int64_t session_epoch_samples = 0;
        if ((st = mt_loader_start(t.loader, s->epoch, s->epoch_step)) != MT_OK) break;
        mt_batch b;
        for (;;) {
            const double t_step = mt_clock_seconds();
            if (!mt_loader_next(t.loader, &b)) break;
            mt_scope scope = mt_scope_begin();
            mt_train_step_out out = { 0 };
            st = k->train_step(k->ctx, t.net, &b, t.device, &out);
            if (st == MT_OK && !out.loss) st = mt_set_error(MT_ERR_STATE, "%s: train_step gave no loss", t.who);
            if (st == MT_OK) st = mt_backward(out.loss);
            if (st == MT_OK && o->clip_grad_norm > 0) {   /* NAN is an error only with a message (NaN gradients: caught below) */
                mt_clear_error();
                if (isnan(mt_clip_grad_norm(t.params, o->clip_grad_norm)) && mt_last_status() != MT_OK) st = mt_last_status();
            }
            if (st == MT_OK) st = mt_step(t.opt);
            mt_optimizer_zero_grad(t.opt);
            if (st == MT_OK && t.sched && o->schedule == MT_SCHEDULE_COSINE) mt_scheduler_step(t.sched);
            double loss = NAN, sums[MT_TRAIN_MAX_METRICS] = { 0 };
            if (st == MT_OK) {
                loss = mt_item(out.loss);
                for (int i = 0; i < n_train && st == MT_OK; i++) {
                    if (!out.sums[i]) st = mt_set_error(MT_ERR_STATE, "%s: train_step gave no sum for metric '%s'", t.who,
                                                        k->train_metrics[i].name);
                    else sums[i] = mt_item(out.sums[i]);
                }
            }
            mt_scope_end(scope);
            if (st == MT_OK && !isfinite(loss)) {
                /* stop before anything is saved: the checkpoints keep the last finite state */
                char saved[256] = "nothing was saved";
                if (t.saved_step >= 0) snprintf(saved, sizeof saved, "%s is the state of step %" PRId64 ", untouched", t.last_path, t.saved_step);
                else if (resume) snprintf(saved, sizeof saved, "%s, resumed from, is untouched", resume);
                st = mt_set_error(MT_ERR_STATE, "%s: step %" PRId64 " (epoch %" PRId64 ", batch %" PRId64 " of %" PRId64
                                  "): the loss is %s; the run stops here and %s (look for NaN or infinite values in the "
                                  "training data, or lower the learning rate)", t.who, s->global_step + 1, s->epoch + 1,
                                  b.index + 1, t.batches, isnan(loss) ? "NaN" : "infinite", saved);
            }
            if (st != MT_OK) break;
            s->loss_sum += loss * (double)b.size;
            for (int i = 0; i < n_train; i++) s->sums[i] += sums[i];
            s->samples += b.size;
            s->global_step++;
            s->epoch_step++;
            report->session_steps++;
            report->session_samples += b.size;
            session_epoch_samples += b.size;
            const double dt = mt_clock_seconds() - t_step;
            t_train += dt;
            train_s_epoch += dt;

            if (pf) {
                mt_progress_line line = {
                    .epoch = s->epoch + 1, .epochs = o->epochs, .batch = s->epoch_step, .batches = t.batches,
                    .loss = s->loss_sum / (double)s->samples, .n_metrics = n_train,
                    .samples_per_s = (double)report->session_samples / t_train,
                    .eta_s = (double)((o->epochs - s->epoch) * t.batches - s->epoch_step) * t_train / (double)report->session_steps,
                };
                for (int i = 0; i < n_train; i++) {
                    line.names[i] = k->train_metrics[i].name;
                    line.values[i] = s->sums[i] / (double)s->samples;
                    line.percent[i] = k->train_metrics[i].percent;
                }
                mt_progress_draw(&bar, &line, false);   /* the run's first draw is always due */
            }
            stop = (opts->stop_after > 0 && s->global_step >= opts->stop_after) || (opts->stop_flag && *opts->stop_flag);
            const bool mid_epoch = s->epoch_step < t.batches;
            if (mid_epoch && o->run_dir && (stop || (opts->save_every > 0 && s->global_step % opts->save_every == 0))) {
                if ((st = save_checkpoint(&t, t.last_path)) != MT_OK) break;
            }
            if (mid_epoch && stop) break;
        }
        if (st == MT_OK && mt_loader_failed(t.loader)) st = mt_last_status();
        if (st != MT_OK) break;
        if (s->epoch_step < t.batches) {   /* stopped mid-epoch (saved, when there is a run folder) */
            mt_progress_end(&bar);
            break;
        }

        /* End of the epoch: the evaluation, the scheduler, metrics, checkpoints. */
        const double lr_used = mt_optimizer_lr(t.opt);
        double eval[MT_TRAIN_MAX_METRICS] = { 0 };
        bool improved = false;
        if (k->eval_data) {
            int64_t items = 0;
            st = mt_train_evaluate(t.net, k->eval_data, k->eval_batch > 0 ? k->eval_batch : o->batch_size, t.device,
                                   opts->prefetch, k->eval_step, k->ctx, k->n_eval_metrics, eval, &items);
            if (st != MT_OK) break;
            for (int i = 0; i < k->n_eval_metrics; i++) eval[i] = items > 0 ? eval[i] / (double)items : NAN;
            report->has_eval = true;
            memcpy(report->eval_metrics, eval, sizeof eval);
        }
        double train[MT_TRAIN_MAX_METRICS];
        const double train_loss = s->loss_sum / (double)s->samples;
        for (int i = 0; i < n_train; i++) train[i] = s->sums[i] / (double)s->samples;
        s->epoch++;
        s->epoch_step = 0;
        if (k->eval_data) {
            const double m = eval[k->best_metric];
            s->history[s->n_history++] = m;
            improved = k->maximize ? m > s->best : m < s->best;
            if (improved) { s->best = m; s->best_epoch = (int)s->epoch; }
            if (t.sched && o->schedule == MT_SCHEDULE_PLATEAU) mt_scheduler_step_metric(t.sched, m);
        }
        const double seconds = mt_clock_seconds() - t_epoch, wait = mt_loader_wait_seconds(t.loader) - wait_epoch;
        const double rate = train_s_epoch > 0 ? (double)session_epoch_samples / train_s_epoch : 0;
        if (o->run_dir &&
            (st = write_metrics(&t, lr_used, train_loss, train, k->eval_data ? eval : NULL, seconds, rate, wait)) != MT_OK)
            break;
        report->train_loss = train_loss;
        memcpy(report->train_metrics, train, sizeof train);
        s->loss_sum = 0;
        memset(s->sums, 0, sizeof s->sums);
        s->samples = 0;
        if (o->run_dir) {
            if ((st = save_checkpoint(&t, t.last_path)) != MT_OK) break;
            if (improved && (st = save_checkpoint(&t, t.best_path)) != MT_OK) break;
        }
        if (pf && (o->log_every <= 1 || s->epoch % o->log_every == 0 || s->epoch == o->epochs || stop)) {
            mt_progress_clear(&bar);
            fprintf(pf, "epoch %" PRId64 "/%d: train loss %.4f", s->epoch, o->epochs, train_loss);
            print_metrics(pf, k->train_metrics, n_train, train);
            if (k->eval_data) {
                fprintf(pf, " | %s", k->eval_name);
                print_metrics(pf, k->eval_metrics, k->n_eval_metrics, eval);
                if (improved) fputs(" (best)", pf);
            }
            fprintf(pf, " | lr %.3g | %.1f s, %.0f samples/s, data wait %.2f s\n", lr_used, seconds, rate, wait);
        }
        if (stop && s->epoch < o->epochs) break;
    }
    if (st != MT_OK) goto done;
    mt_progress_clear(&bar);
    report->epochs_done = (int)s->epoch;
    report->steps = s->global_step;
    report->seconds = t_train;
    report->samples_per_s = t_train > 0 ? (double)report->session_samples / t_train : 0;
    report->data_wait_s = mt_loader_wait_seconds(t.loader) - wait0;
    report->best = k->eval_data ? s->best : NAN;
    report->best_epoch = s->best_epoch;
    report->stopped = s->epoch < o->epochs;
    report->finished = !report->stopped;
    if (net_out) {
        *net_out = t.net;
        t.net = NULL;
    }

done:
    if (st != MT_OK) unmake_run_dir(&t);
    free(resume);
    trainer_free(&t);
    return st;
}

mt_status mt_train(const mt_task *task, const mt_train_opts *opts, mt_train_report *report, mt_module **net_out)
{
    bool anomaly = opts && opts->detect_anomaly, prev = anomaly ? mt_set_detect_anomaly(true) : false;
    mt_status st = train(task, opts, report, net_out);
    if (anomaly) mt_set_detect_anomaly(prev);
    return st;
}
