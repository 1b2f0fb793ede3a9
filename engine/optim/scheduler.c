/*
 * scheduler.c - learning-rate schedules (PyTorch's torch.optim.lr_scheduler).
 *
 * A scheduler remembers the optimizer's lr when it is made (base) and sets
 * the lr for epoch e = 0 at once; each mt_scheduler_step advances e by one
 * and sets the lr for the new e. The lrs are computed in closed form:
 *
 *   StepLR:        lr(e) = base * gamma^floor(e / step_size)
 *   MultiStepLR:   lr(e) = base * gamma^(number of milestones m with m <= e)
 *   cosine warm-up (W warm-up steps, T total, as in HF's get_cosine_schedule_with_warmup):
 *                  lr(e) = base * e / W                                   for e < W
 *                  lr(e) = min + (base - min) * (1 + cos(pi * q)) / 2,    q = min(1, (e - W) / (T - W))
 *
 * ReduceLROnPlateau watches a metric instead (PyTorch's rules, relative threshold):
 *   better(a)  = a < best * (1 - threshold)      (mode min)
 *              = a > best * (1 + threshold)      (mode max)
 *   each step: better ? (best = a, bad = 0) : bad++
 *              in cooldown: cooldown_left--, bad = 0
 *              bad > patience: lr = max(lr * factor, min_lr), cooldown_left = cooldown, bad = 0
 */
#include "engine/internal.h"
#include "mytorch/optim.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum scheduler_kind { SCHED_STEP, SCHED_MULTISTEP, SCHED_COSINE_WARMUP, SCHED_PLATEAU } scheduler_kind;

struct mt_scheduler {
    scheduler_kind kind;
    mt_optimizer *opt;
    double base_lr;
    int64_t epoch;                 /* steps taken (PyTorch's last_epoch) */

    /* StepLR, MultiStepLR */
    int64_t step_size;
    double gamma;
    int n_milestones;
    int64_t *milestones;

    /* cosine with warm-up */
    int64_t warmup_steps, total_steps;
    double min_lr;

    /* ReduceLROnPlateau */
    mt_plateau_opts plateau;
    double best;
    int bad_epochs, cooldown_left;
};

static double scheduled_lr(const mt_scheduler *s, int64_t e)
{
    switch (s->kind) {
    case SCHED_STEP:
        return s->base_lr * pow(s->gamma, (double)(e / s->step_size));
    case SCHED_MULTISTEP: {
        int passed = 0;
        for (int i = 0; i < s->n_milestones; i++) passed += s->milestones[i] <= e;
        return s->base_lr * pow(s->gamma, passed);
    }
    case SCHED_COSINE_WARMUP: {
        if (e < s->warmup_steps) return s->base_lr * (double)e / (double)s->warmup_steps;
        double span = (double)(s->total_steps - s->warmup_steps);
        double q = span > 0 ? (double)(e - s->warmup_steps) / span : 1;
        if (q > 1) q = 1;
        return s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1 + cos(M_PI * q));
    }
    default:
        return mt_optimizer_lr(s->opt);
    }
}

static mt_scheduler *scheduler_new(scheduler_kind kind, mt_optimizer *opt, const char *op)
{
    if (!opt) { mt_set_error(MT_ERR_ARGUMENT, "%s: optimizer is NULL", op); return NULL; }
    mt_scheduler *s = calloc(1, sizeof *s);
    if (!s) { mt_set_error(MT_ERR_MEMORY, "%s: out of memory", op); return NULL; }
    s->kind = kind;
    s->opt = opt;
    s->base_lr = mt_optimizer_lr(opt);
    return s;
}

/* Epoch 0's lr, set when the scheduler is made (as PyTorch's constructor does). */
static mt_scheduler *start(mt_scheduler *s)
{
    mt_optimizer_set_lr(s->opt, scheduled_lr(s, 0));
    return s;
}

mt_scheduler *mt_step_lr(mt_optimizer *opt, int64_t step_size, double gamma)
{
    if (step_size <= 0) { mt_set_error(MT_ERR_ARGUMENT, "StepLR: step_size must be positive, got %" PRId64, step_size); return NULL; }
    mt_scheduler *s = scheduler_new(SCHED_STEP, opt, "StepLR");
    if (!s) return NULL;
    s->step_size = step_size;
    s->gamma = gamma;
    return start(s);
}

mt_scheduler *mt_multistep_lr(mt_optimizer *opt, int n, const int64_t *milestones, double gamma)
{
    if (n < 0 || (n > 0 && !milestones)) { mt_set_error(MT_ERR_ARGUMENT, "MultiStepLR: bad milestone list (n = %d)", n); return NULL; }
    mt_scheduler *s = scheduler_new(SCHED_MULTISTEP, opt, "MultiStepLR");
    if (!s) return NULL;
    s->milestones = malloc((size_t)(n > 0 ? n : 1) * sizeof *s->milestones);
    if (!s->milestones) { free(s); mt_set_error(MT_ERR_MEMORY, "MultiStepLR: out of memory"); return NULL; }
    if (n > 0) memcpy(s->milestones, milestones, (size_t)n * sizeof *milestones);
    s->n_milestones = n;
    s->gamma = gamma;
    return start(s);
}

mt_scheduler *mt_cosine_warmup_lr(mt_optimizer *opt, int64_t warmup_steps, int64_t total_steps, double min_lr)
{
    if (warmup_steps < 0 || total_steps < warmup_steps || min_lr < 0) {
        mt_set_error(MT_ERR_ARGUMENT, "cosine_warmup_lr: need 0 <= warmup_steps <= total_steps and min_lr >= 0, got "
                     "warmup=%" PRId64 ", total=%" PRId64 ", min_lr=%g", warmup_steps, total_steps, min_lr);
        return NULL;
    }
    mt_scheduler *s = scheduler_new(SCHED_COSINE_WARMUP, opt, "cosine_warmup_lr");
    if (!s) return NULL;
    s->warmup_steps = warmup_steps;
    s->total_steps = total_steps;
    s->min_lr = min_lr;
    return start(s);
}

mt_scheduler *mt_reduce_on_plateau(mt_optimizer *opt, mt_plateau_opts o)
{
    if (o.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "ReduceLROnPlateau: options must start from MT_PLATEAU_DEFAULTS (every field "
                     "is used as given, zero included; docs/options.md)");
        return NULL;
    }
    if (!(o.factor >= 0 && o.factor < 1) || o.patience < 0 || !(o.threshold >= 0) || o.cooldown < 0 ||
        !(o.min_lr >= 0)) {
        mt_set_error(MT_ERR_ARGUMENT, "ReduceLROnPlateau: need 0 <= factor < 1, patience >= 0, threshold >= 0, "
                     "cooldown >= 0, min_lr >= 0, got factor=%g, patience=%d, threshold=%g, cooldown=%d, min_lr=%g",
                     o.factor, o.patience, o.threshold, o.cooldown, o.min_lr);
        return NULL;
    }
    mt_scheduler *s = scheduler_new(SCHED_PLATEAU, opt, "ReduceLROnPlateau");
    if (!s) return NULL;
    s->plateau = o;
    s->best = o.maximize ? -INFINITY : INFINITY;
    return s;
}

void mt_scheduler_step(mt_scheduler *s)
{
    if (!s) return;
    if (s->kind == SCHED_PLATEAU) {
        mt_set_error(MT_ERR_ARGUMENT, "ReduceLROnPlateau: step needs the metric (mt_scheduler_step_metric)");
        return;
    }
    s->epoch++;
    mt_optimizer_set_lr(s->opt, scheduled_lr(s, s->epoch));
}

static bool is_better(const mt_scheduler *s, double a)
{
    const mt_plateau_opts *o = &s->plateau;
    return o->maximize ? a > s->best * (1 + o->threshold) : a < s->best * (1 - o->threshold);
}

void mt_scheduler_step_metric(mt_scheduler *s, double metric)
{
    if (!s) return;
    if (s->kind != SCHED_PLATEAU) { mt_scheduler_step(s); return; }   /* the metric only matters to a plateau */
    s->epoch++;
    if (is_better(s, metric)) { s->best = metric; s->bad_epochs = 0; }
    else s->bad_epochs++;
    if (s->cooldown_left > 0) { s->cooldown_left--; s->bad_epochs = 0; }
    if (s->bad_epochs > s->plateau.patience) {
        double old_lr = mt_optimizer_lr(s->opt);
        double new_lr = fmax(old_lr * s->plateau.factor, s->plateau.min_lr);
        if (old_lr - new_lr > 1e-8) mt_optimizer_set_lr(s->opt, new_lr);   /* PyTorch's eps */
        s->cooldown_left = s->plateau.cooldown;
        s->bad_epochs = 0;
    }
}

void mt_scheduler_free(mt_scheduler *s)
{
    if (!s) return;
    free(s->milestones);
    free(s);
}
