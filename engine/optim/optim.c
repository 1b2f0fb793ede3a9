/*
 * optim.c - SGD, Adam, AdamW (PyTorch's torch.optim, one parameter group)
 * and gradient clipping. Each update is one fused backend kernel per
 * parameter (kernels/cpu/optim.c), run outside the tape.
 *
 * SGD, with g the gradient, b the momentum buffer (PyTorch's formulation):
 *   g = g + wd * p
 *   b = g                                   at the first update
 *   b = momentum * b + (1 - dampening) * g  afterwards
 *   g = nesterov ? g + momentum * b : b     (when momentum != 0)
 *   p = p - lr * g
 *
 * Adam at step t (1-based, counted per parameter):
 *   g = g + wd * p                          (Adam: L2 in the gradient)
 *   p = p * (1 - lr * wd)                   (AdamW: decoupled decay instead)
 *   m = beta1 m + (1 - beta1) g
 *   v = beta2 v + (1 - beta2) g^2
 *   vmax = max(vmax, v)                     (AMSGrad: v below is vmax)
 *   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * State, created at a parameter's first update and owned by the optimizer,
 * is exported under PyTorch-like names: "<param>.momentum_buffer",
 * "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.max_exp_avg_sq",
 * "<param>.step" (Adam's per-parameter count) and "step" (mt_step calls).
 * The counts are 0-d MT_I64 tensors on the CPU.
 */
#include "engine/internal.h"
#include "mytorch/optim.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum optimizer_kind { OPT_SGD, OPT_ADAM, OPT_ADAMW } optimizer_kind;
static const char *const kind_names[] = { "SGD", "Adam", "AdamW" };

/* One parameter and its state. */
typedef struct param_state {
    char *name;
    mt_tensor *param;                   /* owned by its module */
    mt_tensor *momentum_buffer;         /* SGD with momentum */
    mt_tensor *exp_avg, *exp_avg_sq;    /* Adam: m, v */
    mt_tensor *max_exp_avg_sq;          /* AMSGrad: vmax */
    mt_tensor *step;                    /* Adam: this parameter's update count */
} param_state;

/* The kinds of state tensor, by name suffix. */
enum { ST_MOMENTUM, ST_EXP_AVG, ST_EXP_AVG_SQ, ST_MAX_EXP_AVG_SQ, ST_STEP, ST_COUNT };
static const char *const state_suffix[ST_COUNT] = { "momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step" };

static mt_tensor **state_slot(param_state *s, int kind)
{
    switch (kind) {
    case ST_MOMENTUM: return &s->momentum_buffer;
    case ST_EXP_AVG: return &s->exp_avg;
    case ST_EXP_AVG_SQ: return &s->exp_avg_sq;
    case ST_MAX_EXP_AVG_SQ: return &s->max_exp_avg_sq;
    default: return &s->step;
    }
}

struct mt_optimizer {
    optimizer_kind kind;
    double lr, momentum, dampening, weight_decay;   /* SGD */
    double beta1, beta2, eps;                       /* Adam (lr and weight_decay shared) */
    bool nesterov, amsgrad;
    int n;
    param_state *params;
    mt_tensor *steps;                               /* "step": number of mt_step calls */
};

/* ---------------------------------------------------------------- helpers */
/* t leaves its scope: the optimizer owns it. */
static mt_tensor *owned(mt_tensor *t) { return mt_unscope(t); }

/* A 0-d i64 counter on the CPU, read and written on the host. */
static mt_tensor *new_counter(int64_t value)
{
    mt_tensor *t = owned(mt_empty_on(mt_cpu(), MT_I64, 0, NULL));
    if (t) *(int64_t *)mt_data_ptr(t) = value;
    return t;
}
static int64_t counter(const mt_tensor *t) { return t ? *(const int64_t *)mt_data_ptr(t) : 0; }
static void set_counter(mt_tensor *t, int64_t value) { *(int64_t *)mt_data_ptr(t) = value; }

static void free_state(param_state *s)
{
    for (int k = 0; k < ST_COUNT; k++) {
        mt_tensor **slot = state_slot(s, k);
        mt_free(*slot);
        *slot = NULL;
    }
}

static mt_optimizer *optimizer_new(optimizer_kind kind, mt_tensor_list params)
{
    const char *op = kind_names[kind];
    if (params.n <= 0 || !params.items) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: got an empty parameter list", op);
        return NULL;
    }
    for (int i = 0; i < params.n; i++) {
        const mt_named_tensor *p = &params.items[i];
        if (!p->tensor || !p->name) {
            mt_set_error(MT_ERR_ARGUMENT, "%s: parameter %d is NULL or has no name", op, i);
            return NULL;
        }
        if (!mt_dtype_is_float(p->tensor->dtype) || p->tensor->grad_fn) {
            mt_set_error(MT_ERR_ARGUMENT, "%s: parameter \"%s\" must be a floating-point leaf", op, p->name);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (params.items[j].tensor == p->tensor || strcmp(params.items[j].name, p->name) == 0) {
                mt_set_error(MT_ERR_ARGUMENT, "%s: parameter \"%s\" appears twice", op, p->name);
                return NULL;
            }
    }
    mt_optimizer *opt = calloc(1, sizeof *opt);
    param_state *states = calloc((size_t)params.n, sizeof *states);
    mt_tensor *steps = new_counter(0);
    if (!opt || !states || !steps) {
        free(opt); free(states); mt_free(steps);
        mt_set_error(MT_ERR_MEMORY, "%s: out of memory", op);
        return NULL;
    }
    opt->kind = kind;
    opt->params = states;
    opt->steps = steps;
    for (int i = 0; i < params.n; i++) {
        size_t len = strlen(params.items[i].name) + 1;
        states[i].name = malloc(len);
        if (!states[i].name) { mt_optimizer_free(opt); mt_set_error(MT_ERR_MEMORY, "%s: out of memory", op); return NULL; }
        memcpy(states[i].name, params.items[i].name, len);
        states[i].param = params.items[i].tensor;
        opt->n = i + 1;
    }
    return opt;
}

/* ---------------------------------------------------------------- constructors */
mt_optimizer *mt_sgd(mt_tensor_list params, mt_sgd_opts o)
{
    if (o.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "SGD: options must start from MT_SGD_DEFAULTS (every field is used as given, "
                     "zero included; docs/options.md)");
        return NULL;
    }
    if (!(o.lr >= 0) || !(o.momentum >= 0) || !(o.weight_decay >= 0)) {
        mt_set_error(MT_ERR_ARGUMENT, "SGD: need lr, momentum and weight_decay >= 0, got lr=%g, momentum=%g, "
                     "weight_decay=%g", o.lr, o.momentum, o.weight_decay);
        return NULL;
    }
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) {
        mt_set_error(MT_ERR_ARGUMENT, "SGD: nesterov momentum needs momentum > 0 and dampening 0, got momentum=%g, "
                     "dampening=%g", o.momentum, o.dampening);
        return NULL;
    }
    mt_optimizer *opt = optimizer_new(OPT_SGD, params);
    if (!opt) return NULL;
    opt->lr = o.lr;
    opt->momentum = o.momentum;
    opt->dampening = o.dampening;
    opt->weight_decay = o.weight_decay;
    opt->nesterov = o.nesterov;
    return opt;
}

static mt_optimizer *adam_like(optimizer_kind kind, mt_tensor_list params, mt_adam_opts o)
{
    const char *op = kind_names[kind];
    if (o.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: options must start from MT_%s_DEFAULTS (every field is used as given, "
                     "zero included; docs/options.md)", op, kind == OPT_ADAMW ? "ADAMW" : "ADAM");
        return NULL;
    }
    double lr = o.lr, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps;
    if (!(lr >= 0) || !(eps >= 0) || !(o.weight_decay >= 0)) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: need lr, eps and weight_decay >= 0, got lr=%g, eps=%g, weight_decay=%g",
                     op, lr, eps, o.weight_decay);
        return NULL;
    }
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: betas must be in [0, 1), got beta1=%g, beta2=%g", op, beta1, beta2);
        return NULL;
    }
    mt_optimizer *opt = optimizer_new(kind, params);
    if (!opt) return NULL;
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = o.weight_decay;
    opt->amsgrad = o.amsgrad;
    return opt;
}

mt_optimizer *mt_adam(mt_tensor_list params, mt_adam_opts opts) { return adam_like(OPT_ADAM, params, opts); }
mt_optimizer *mt_adamw(mt_tensor_list params, mt_adam_opts opts) { return adam_like(OPT_ADAMW, params, opts); }

void mt_optimizer_free(mt_optimizer *opt)
{
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) {
        free_state(&opt->params[i]);
        free(opt->params[i].name);
    }
    free(opt->params);
    mt_free(opt->steps);
    free(opt);
}

/* ---------------------------------------------------------------- the update */
/* Checks that p and its grad can go through the fused kernel. */
static mt_status check_update(const mt_optimizer *opt, const param_state *s)
{
    const char *op = kind_names[opt->kind];
    const mt_tensor *p = s->param, *g = p->grad;
    char sp[128], sg[128];
    if (!mt_same_shape(p, g) || p->dtype != g->dtype)
        return mt_set_error(MT_ERR_SHAPE, "%s: gradient of \"%s\" is %s %s, parameter is %s %s", op, s->name,
                            mt_dtype_name(g->dtype), mt_shape_str(g, sg, sizeof sg),
                            mt_dtype_name(p->dtype), mt_shape_str(p, sp, sizeof sp));
    if (!mt_check_same_device(op, p, g)) return mt_last_status();
    /* state made before the module moved or changed dtype: create the optimizer after mt_module_to / _to_dtype */
    const mt_tensor *states[] = { s->momentum_buffer, s->exp_avg, s->exp_avg_sq, s->max_exp_avg_sq };
    for (int k = 0; k < 4; k++) {
        const mt_tensor *t = states[k];
        if (t && (t->dtype != p->dtype || !mt_same_shape(t, p) || t->storage->device.type != p->storage->device.type ||
                  t->storage->device.index != p->storage->device.index))
            return mt_set_error(MT_ERR_STATE, "%s: the state of \"%s\" is %s on %s but the parameter is %s on %s now "
                                "(was the module moved or converted after the optimizer was made? create the "
                                "optimizer afterwards)", op, s->name, mt_dtype_name(t->dtype),
                                mt_device_name(t->storage->device), mt_dtype_name(p->dtype),
                                mt_device_name(p->storage->device));
    }
    if (!mt_is_contiguous(p))
        return mt_set_error(MT_ERR_ARGUMENT, "%s: parameter \"%s\" must be contiguous (it is updated in place)", op, s->name);
    if (opt->kind == OPT_SGD ? !mt_kernel(op, p, sgd_step) : !mt_kernel(op, p, adam_step)) return mt_last_status();
    return MT_OK;
}

/* The state tensors of one parameter, made at its first update. */
static mt_status ensure_state(mt_optimizer *opt, param_state *s)
{
    bool ok = true;
    if (opt->kind == OPT_SGD) {
        if (opt->momentum != 0 && !s->momentum_buffer) ok = (s->momentum_buffer = owned(mt_zeros_like(s->param)));
    } else if (!s->exp_avg) {
        ok = (s->exp_avg = owned(mt_zeros_like(s->param))) && (s->exp_avg_sq = owned(mt_zeros_like(s->param))) &&
             (s->step = new_counter(0));
        if (ok && opt->amsgrad) ok = (s->max_exp_avg_sq = owned(mt_zeros_like(s->param)));
    } else if (opt->amsgrad && !s->max_exp_avg_sq) {
        ok = (s->max_exp_avg_sq = owned(mt_zeros_like(s->param)));
    }
    return ok ? MT_OK : mt_last_status();
}

mt_status mt_step(mt_optimizer *opt)
{
    if (!opt) return mt_set_error(MT_ERR_ARGUMENT, "step: optimizer is NULL");
    /* check everything first, so that an error leaves every parameter as it was */
    for (int i = 0; i < opt->n; i++) {
        if (!opt->params[i].param->grad) continue;
        mt_status st = check_update(opt, &opt->params[i]);
        if (st != MT_OK) return st;
    }
    mt_status st = MT_OK;
    mt_scope scope = mt_scope_begin();   /* for contiguous copies of gradients */
    for (int i = 0; i < opt->n && st == MT_OK; i++) {
        param_state *s = &opt->params[i];
        mt_tensor *p = s->param;
        if (!p->grad) continue;          /* no gradient: skipped, as in PyTorch */
        mt_tensor *g = mt_contiguous(p->grad);
        bool first = opt->kind == OPT_SGD && !s->momentum_buffer;
        if (!g || (st = ensure_state(opt, s)) != MT_OK) { st = mt_last_status(); break; }
        const char *op = kind_names[opt->kind];
        if (opt->kind == OPT_SGD) {
            st = mt_run_kernel(op, p, sgd_step, p->dtype, mt_numel(p), mt_ptr(p), mt_ptr(g),
                               s->momentum_buffer ? mt_ptr(s->momentum_buffer) : NULL, opt->lr, opt->momentum,
                               opt->dampening, opt->weight_decay, opt->nesterov, first);
        } else {
            int64_t t = counter(s->step) + 1;
            st = mt_run_kernel(op, p, adam_step, p->dtype, mt_numel(p), mt_ptr(p), mt_ptr(g), mt_ptr(s->exp_avg),
                               mt_ptr(s->exp_avg_sq), s->max_exp_avg_sq ? mt_ptr(s->max_exp_avg_sq) : NULL, opt->lr,
                               opt->beta1, opt->beta2, opt->eps, opt->weight_decay, opt->kind == OPT_ADAMW,
                               opt->amsgrad, t);
            if (st == MT_OK) set_counter(s->step, t);
        }
    }
    mt_scope_end(scope);
    if (st == MT_OK) set_counter(opt->steps, counter(opt->steps) + 1);
    return st;
}

void mt_optimizer_zero_grad(mt_optimizer *opt)
{
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) mt_zero_grad(opt->params[i].param);
}

double mt_optimizer_lr(const mt_optimizer *opt) { return opt ? opt->lr : NAN; }
void mt_optimizer_set_lr(mt_optimizer *opt, double lr) { if (opt) opt->lr = lr; }
int64_t mt_optimizer_steps(const mt_optimizer *opt) { return opt ? counter(opt->steps) : 0; }

/* ---------------------------------------------------------------- state for checkpoints */
static bool list_push(mt_tensor_list *list, const char *name, const char *suffix, mt_tensor *t)
{
    size_t ln = strlen(name), ls = suffix ? strlen(suffix) + 1 : 0;
    char *full = malloc(ln + ls + 1);
    mt_named_tensor *grown = realloc(list->items, (size_t)(list->n + 1) * sizeof *grown);
    if (grown) list->items = grown;
    if (!full || !grown) { free(full); return false; }
    memcpy(full, name, ln);
    if (suffix) { full[ln] = '.'; memcpy(full + ln + 1, suffix, ls); }
    full[ln + ls] = '\0';
    list->items[list->n++] = (mt_named_tensor){ full, t };
    return true;
}

mt_tensor_list mt_optimizer_state(const mt_optimizer *opt)
{
    mt_tensor_list list = { 0, NULL };
    if (!opt) { mt_set_error(MT_ERR_ARGUMENT, "optimizer_state: optimizer is NULL"); return list; }
    bool ok = list_push(&list, "step", NULL, opt->steps);
    for (int i = 0; i < opt->n && ok; i++) {
        param_state *s = &opt->params[i];
        for (int k = 0; k < ST_COUNT && ok; k++) {
            mt_tensor *t = *state_slot(s, k);
            if (t) ok = list_push(&list, s->name, state_suffix[k], t);
        }
    }
    if (!ok) { mt_tensor_list_free(&list); mt_set_error(MT_ERR_MEMORY, "optimizer_state: out of memory"); }
    return list;
}

/* Finds which parameter and which kind of state a name like "0.weight.exp_avg" is. */
static bool parse_state_name(const mt_optimizer *opt, const char *name, int *param, int *kind)
{
    size_t ln = strlen(name);
    for (int k = 0; k < ST_COUNT; k++) {
        size_t ls = strlen(state_suffix[k]);
        if (ln < ls + 2 || name[ln - ls - 1] != '.' || strcmp(name + ln - ls, state_suffix[k]) != 0) continue;
        for (int i = 0; i < opt->n; i++)
            if (strlen(opt->params[i].name) == ln - ls - 1 && strncmp(opt->params[i].name, name, ln - ls - 1) == 0) {
                *param = i;
                *kind = k;
                return true;
            }
    }
    return false;
}

/* Which state kinds an optimizer keeps. */
static bool kind_used(const mt_optimizer *opt, int kind)
{
    if (opt->kind == OPT_SGD) return kind == ST_MOMENTUM && opt->momentum != 0;
    if (kind == ST_MOMENTUM) return false;
    return kind != ST_MAX_EXP_AVG_SQ || opt->amsgrad;
}

/* The largest step count a state may hold: 2^53, the last integer a double
   (Adam's bias correction 1 - beta^t, PyTorch's float "step") holds exactly. */
#define MAX_STEP_COUNT (INT64_C(1) << 53)

/* A step count from a state tensor (typically read from a file): one element
   of an integer dtype, or of a float dtype holding a whole number, in
   [0, MAX_STEP_COUNT]. Anything else (NaN, 2.7e185, -5, 2.5, a bool) is an
   MT_ERR_FORMAT error naming the entry: casting it would be undefined
   behaviour, or a count no run can have reached. */
static mt_status read_step_count(const char *op, const char *name, const mt_tensor *t, int64_t *out)
{
    if (mt_numel(t) != 1)
        return mt_set_error(MT_ERR_SHAPE, "%s load_state: \"%s\" must have one element", op, name);
    if (t->dtype == MT_BOOL || (unsigned)t->dtype >= MT_DTYPE_COUNT)
        return mt_set_error(MT_ERR_FORMAT, "%s load_state: \"%s\" is a %s tensor; a step count is an integer", op,
                            name, mt_dtype_name(t->dtype));
    if (t->dtype == MT_I64) {   /* exactly, not through a double */
        int64_t v;
        if (mt_to_data(t, MT_I64, &v) != MT_OK) return mt_last_status();
        if (v < 0 || v > MAX_STEP_COUNT)
            return mt_set_error(MT_ERR_FORMAT, "%s load_state: \"%s\" is %" PRId64 ", not a step count (a whole number "
                                "in [0, 2^53])", op, name, v);
        *out = v;
        return MT_OK;
    }
    double v;
    if (mt_to_data(t, MT_F64, &v) != MT_OK) return mt_last_status();
    if (!(v >= 0 && v <= (double)MAX_STEP_COUNT) || v != floor(v))
        return mt_set_error(MT_ERR_FORMAT, "%s load_state: \"%s\" is %.17g, not a step count (a whole number in "
                            "[0, 2^53])", op, name, v);
    *out = (int64_t)v;
    return MT_OK;
}

mt_status mt_optimizer_load_state(mt_optimizer *opt, mt_tensor_list state)
{
    if (!opt) return mt_set_error(MT_ERR_ARGUMENT, "load_state: optimizer is NULL");
    const char *op = kind_names[opt->kind];
    /* 1. check every entry before touching anything */
    unsigned *have = calloc((size_t)opt->n, sizeof *have);   /* bit k: kind k given */
    if (!have) return mt_set_error(MT_ERR_MEMORY, "load_state: out of memory");
    mt_status st = MT_OK;
    const mt_tensor *steps = NULL;
    int64_t n_steps = 0;
    for (int j = 0; j < state.n && st == MT_OK; j++) {
        const char *name = state.items[j].name;
        const mt_tensor *t = state.items[j].tensor;
        int i, k;
        char s1[128], s2[128];
        if (!name || !t) { st = mt_set_error(MT_ERR_ARGUMENT, "%s load_state: entry %d is NULL", op, j); break; }
        if (strcmp(name, "step") == 0) {
            if (steps) { st = mt_set_error(MT_ERR_ARGUMENT, "%s load_state: \"step\" appears twice", op); break; }
            steps = t;
            st = read_step_count(op, name, t, &n_steps);
            continue;
        }
        if (!parse_state_name(opt, name, &i, &k) || !kind_used(opt, k)) {
            st = mt_set_error(MT_ERR_ARGUMENT, "%s load_state: \"%s\" names no state of this optimizer", op, name);
            break;
        }
        if (have[i] & (1u << k)) { st = mt_set_error(MT_ERR_ARGUMENT, "%s load_state: \"%s\" appears twice", op, name); break; }
        have[i] |= 1u << k;
        if (k == ST_STEP) {
            int64_t ignored;
            st = read_step_count(op, name, t, &ignored);
        } else if (!mt_same_shape(t, opt->params[i].param))
            st = mt_set_error(MT_ERR_SHAPE, "%s load_state: \"%s\" has shape %s, expected %s", op, name,
                              mt_shape_str(t, s1, sizeof s1), mt_shape_str(opt->params[i].param, s2, sizeof s2));
    }
    /* Adam's state comes whole: exp_avg, exp_avg_sq, step (and max_exp_avg_sq with AMSGrad), or nothing */
    unsigned adam_all = (1u << ST_EXP_AVG) | (1u << ST_EXP_AVG_SQ) | (1u << ST_STEP) | (opt->amsgrad ? 1u << ST_MAX_EXP_AVG_SQ : 0);
    for (int i = 0; i < opt->n && st == MT_OK && opt->kind != OPT_SGD; i++)
        if (have[i] != 0 && have[i] != adam_all)
            st = mt_set_error(MT_ERR_FORMAT, "%s load_state: the state of \"%s\" is incomplete (needs exp_avg, exp_avg_sq, "
                              "step%s)", op, opt->params[i].name, opt->amsgrad ? ", max_exp_avg_sq" : "");
    free(have);
    if (st != MT_OK) return st;

    /* 2. the loaded state replaces the current one (parameters absent from it start fresh) */
    for (int i = 0; i < opt->n; i++) free_state(&opt->params[i]);
    set_counter(opt->steps, n_steps);
    for (int j = 0; j < state.n && st == MT_OK; j++) {
        int i, k;
        if (strcmp(state.items[j].name, "step") == 0) continue;
        parse_state_name(opt, state.items[j].name, &i, &k);
        mt_tensor **slot = state_slot(&opt->params[i], k);
        if (k == ST_STEP) {
            int64_t count = 0;
            (void)read_step_count(op, state.items[j].name, state.items[j].tensor, &count);   /* checked above */
            *slot = new_counter(count);
            if (!*slot) st = mt_last_status();
            continue;
        }
        /* like PyTorch, state follows its parameter's device and dtype */
        mt_tensor *src = mt_to_device(state.items[j].tensor, mt_device_of(opt->params[i].param));
        *slot = src ? owned(mt_empty_like(opt->params[i].param)) : NULL;
        st = *slot ? mt_copy_(*slot, src) : mt_last_status();
        mt_free_temp(src, state.items[j].tensor);
    }
    if (st != MT_OK) for (int i = 0; i < opt->n; i++) free_state(&opt->params[i]);
    return st;
}

/* ---------------------------------------------------------------- clipping */
/* total = sqrt(sum over grads g of sum(g^2));  g *= max_norm / (total + 1e-6) when that is < 1 */
double mt_clip_grad_norm(mt_tensor_list params, double max_norm)
{
    if (!(max_norm >= 0)) { mt_set_error(MT_ERR_ARGUMENT, "clip_grad_norm: max_norm must be >= 0, got %g", max_norm); return NAN; }
    double sum_sq = 0;
    bool ok = true;
    bool grad_prev = mt_set_grad_enabled(false);
    mt_scope scope = mt_scope_begin();
    for (int i = 0; i < params.n && ok; i++) {
        mt_tensor *g = params.items[i].tensor ? params.items[i].tensor->grad : NULL;
        if (!g) continue;
        mt_tensor *s = mt_sum_all(mt_mul(g, g));
        ok = s != NULL;
        if (ok) sum_sq += mt_item(s);   /* a NaN gradient gives a NaN norm, as in PyTorch */
    }
    double total = sqrt(sum_sq);
    double coef = max_norm / (total + 1e-6);
    for (int i = 0; i < params.n && ok && coef < 1; i++) {
        mt_tensor *g = params.items[i].tensor ? params.items[i].tensor->grad : NULL;
        mt_tensor *scaled = g ? mt_mul_scalar(g, coef) : NULL;
        if (g) ok = scaled && mt_copy_(g, scaled) == MT_OK;
    }
    mt_scope_end(scope);
    mt_set_grad_enabled(grad_prev);
    return ok ? total : NAN;
}
