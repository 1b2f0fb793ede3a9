/*
 * checkpoint.c - a module's state dict, and a module with its optimizer, as
 * safetensors files (the format is in safetensors.c; the user's view in
 * docs/checkpoints.md).
 *
 *   mt_module_save / mt_module_load        names exactly as mt_state_dict gives
 *                                          them ("0.weight", "1.running_mean")
 *   mt_checkpoint_save / mt_checkpoint_load  "model.<name>" for the state dict,
 *                                          "optim.<name>" for mt_optimizer_state,
 *                                          and the learning rate in the metadata
 *                                          ("optim.lr", as text that reads back
 *                                          to the same double)
 *   mt_checkpoint_save_meta / _load_meta   the same with the caller's metadata
 *                                          (a run's settings and position)
 *
 * Loading is all or nothing. The file is read into temporaries; every name,
 * dtype and shape is checked against the module; each tensor is moved to its
 * parameter's device and dtype (f32 and f64 load into each other, as PyTorch's
 * load_state_dict copies with param.copy_(input_param); an integer tensor
 * must stay integer); the optimizer checks and takes its state (it changes
 * nothing when that check fails); only then are the module's values
 * overwritten, by copies that cannot fail because source and destination
 * already agree in device, dtype and shape. On any error the module (and the
 * optimizer) are left exactly as they were.
 */
#include "mytorch/serialize.h"
#include "engine/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_PREFIX "model."
#define OPTIM_PREFIX "optim."
#define LR_KEY "optim.lr"
/* How many problems a mismatch message spells out before "and N more". */
#define MAX_PROBLEMS_SHOWN 4

/* ---------------------------------------------------------------- gathering problems */
typedef struct problems {
    char text[1024];
    size_t len;
    int count;
} problems;

__attribute__((format(printf, 2, 3)))
static void problem(problems *p, const char *fmt, ...)
{
    if (p->count++ >= MAX_PROBLEMS_SHOWN || p->len >= sizeof p->text) return;
    if (p->len > 0) p->len += (size_t)snprintf(p->text + p->len, sizeof p->text - p->len, "; ");
    if (p->len >= sizeof p->text) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
    va_end(ap);
    if (n > 0) p->len += (size_t)n;
    if (p->len > sizeof p->text) p->len = sizeof p->text;
}

static const char *problems_text(problems *p)
{
    if (p->count > MAX_PROBLEMS_SHOWN && p->len < sizeof p->text)
        snprintf(p->text + p->len, sizeof p->text - p->len, "; and %d more", p->count - MAX_PROBLEMS_SHOWN);
    return p->text;
}

/* ---------------------------------------------------------------- lists */
static void free_loaded(mt_tensor_list *list)
{
    for (int i = 0; i < list->n; i++) mt_free(list->items[i].tensor);
    mt_tensor_list_free(list);
}

/* Appends prefix + name -> t (t is borrowed, the name is owned). */
static bool append_prefixed(mt_tensor_list *list, const char *prefix, const char *name, mt_tensor *t)
{
    size_t lp = strlen(prefix), ln = strlen(name);
    char *full = malloc(lp + ln + 1);
    mt_named_tensor *grown = full ? realloc(list->items, (size_t)(list->n + 1) * sizeof *grown) : NULL;
    if (!grown) { free(full); return false; }
    list->items = grown;
    memcpy(full, prefix, lp);
    memcpy(full + lp, name, ln + 1);
    list->items[list->n++] = (mt_named_tensor){ full, t };
    return true;
}

static int cmp_item_name(const void *a, const void *b)
{
    return strcmp((*(const mt_named_tensor *const *)a)->name, (*(const mt_named_tensor *const *)b)->name);
}

/* ---------------------------------------------------------------- counters */
/* A state dict's counters: batch norm's "num_batches_tracked", a 0-d I64
   that training increments through a double. A file's value must be a count
   a run can reach, a whole number in [0, 2^53], as an optimizer's step
   count must (mt_optimizer_load_state checks those). */
#define MAX_COUNT (INT64_C(1) << 53)

static bool is_counter(const char *name)
{
    static const char suffix[] = "num_batches_tracked";
    size_t n = strlen(name), ls = sizeof suffix - 1;
    return n >= ls && strcmp(name + n - ls, suffix) == 0 && (n == ls || name[n - ls - 1] == '.');
}

/* Whether t (a one-element integer tensor) holds a count; *v receives it. */
static bool holds_count(const mt_tensor *t, int64_t *v)
{
    *v = -1;
    return mt_numel(t) == 1 && t->dtype == MT_I64 && mt_to_data(t, MT_I64, v) == MT_OK && *v >= 0 && *v <= MAX_COUNT;
}

/* ---------------------------------------------------------------- matching a file against a state dict */
/*
 * want: the module's state dict; have: the file's tensors (names already
 * without any prefix). Checks that both hold the same names with the same
 * shapes and dtypes (or both floating), and on success returns in staged[i]
 * the value for want.items[i] on that tensor's device and in its dtype (the
 * file's tensor itself when it already is, else a copy in the current scope). label names the kind of
 * state in messages ("module", "model").
 */
/* Whether name is a batch norm's num_batches_tracked, which PyTorch lets a
   state dict lack even in strict mode (files from before it existed): the
   module keeps its own count. */
static bool is_optional_key(const char *name)
{
    size_t n = strlen(name), k = strlen("num_batches_tracked");
    return n >= k && strcmp(name + n - k, "num_batches_tracked") == 0 && (n == k || name[n - k - 1] == '.');
}

/* Appends a copy of name to a report list; false on out of memory. */
static bool report_add(char ***list, int *n, const char *prefix, const char *name)
{
    char **grown = realloc(*list, (size_t)(*n + 1) * sizeof *grown);
    if (!grown) return false;
    *list = grown;
    size_t len = strlen(prefix) + strlen(name) + 1;
    if (!(grown[*n] = malloc(len))) return false;
    snprintf(grown[*n], len, "%s%s", prefix, name);
    (*n)++;
    return true;
}

void mt_load_report_free(mt_load_report *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_missing; i++) free(r->missing[i]);
    for (int i = 0; i < r->n_unexpected; i++) free(r->unexpected[i]);
    free(r->missing);
    free(r->unexpected);
    *r = (mt_load_report){ 0 };
}

/* Matches the file's tensors to the destination's. staged[i] = the value for
   want[i], or NULL where a missing key is allowed (it keeps its value).
   non_strict (PyTorch's strict=False): missing and unexpected keys are only
   reported (into report, when given), never an error; dtypes and shapes of
   the keys present must still fit. */
static mt_status match_state(const char *path, const char *label, const char *prefix,
                             mt_tensor_list want, mt_tensor_list have, mt_tensor **staged,
                             bool non_strict, mt_load_report *report)
{
    const mt_named_tensor **sorted = malloc((size_t)(have.n ? have.n : 1) * sizeof *sorted);
    bool *used = calloc((size_t)(have.n ? have.n : 1), sizeof *used);
    if (!sorted || !used) {
        free(sorted);
        free(used);
        return mt_set_error(MT_ERR_MEMORY, "safetensors: %s: out of memory", path);
    }
    for (int i = 0; i < have.n; i++) sorted[i] = &have.items[i];
    qsort(sorted, (size_t)have.n, sizeof *sorted, cmp_item_name);

    problems p = { .len = 0, .count = 0 };
    for (int i = 0; i < want.n; i++) {
        staged[i] = NULL;
        const mt_named_tensor key = { want.items[i].name, NULL }, *pkey = &key;
        const mt_named_tensor **hit = have.n ? bsearch(&pkey, sorted, (size_t)have.n, sizeof *sorted, cmp_item_name) : NULL;
        if (!hit) {
            if (!non_strict && !is_optional_key(key.name)) problem(&p, "missing '%s%s'", prefix, key.name);
            else if (report && !report_add(&report->missing, &report->n_missing, prefix, key.name))
                problem(&p, "out of memory");
            continue;
        }
        used[*hit - have.items] = true;
        const mt_tensor *w = want.items[i].tensor, *h = (*hit)->tensor;
        char s1[128], s2[128];
        int64_t count;
        if (w->dtype != h->dtype && !(mt_dtype_is_float(w->dtype) && mt_dtype_is_float(h->dtype)))
            problem(&p, "'%s%s' is %s in the file but %s in the %s", prefix, key.name, mt_dtype_name(h->dtype),
                    mt_dtype_name(w->dtype), label);
        else if (!mt_same_shape(w, h))
            problem(&p, "'%s%s' has shape %s in the file but %s in the %s", prefix, key.name,
                    mt_shape_str(h, s1, sizeof s1), mt_shape_str(w, s2, sizeof s2), label);
        else if (is_counter(key.name) && !holds_count(h, &count))
            problem(&p, "'%s%s' is %" PRId64 " in the file, not a count (a whole number in [0, 2^53])", prefix,
                    key.name, count);
        else
            staged[i] = (*hit)->tensor;
    }
    for (int j = 0; j < have.n; j++) {
        if (used[j]) continue;
        if (!non_strict) problem(&p, "unexpected '%s%s' (the %s has no such tensor)", prefix, have.items[j].name, label);
        else if (report && !report_add(&report->unexpected, &report->n_unexpected, prefix, have.items[j].name))
            problem(&p, "out of memory");
    }
    free(sorted);
    free(used);
    if (p.count > 0)
        return mt_set_error(MT_ERR_FORMAT, "safetensors: %s: the file does not match the %s: %s", path, label,
                            problems_text(&p));

    /* Everything matches: move each value to its destination's device and
       dtype now, while a failure can still leave the module untouched. */
    for (int i = 0; i < want.n; i++) {
        const mt_tensor *w = want.items[i].tensor;
        if (!staged[i]) continue;   /* an allowed missing key: keeps its value */
        mt_tensor *moved = mt_to_dtype(mt_to_device(staged[i], mt_device_of(w)), w->dtype);
        if (!moved)
            return mt_set_error(mt_last_status(), "safetensors: %s: '%s%s': %s", path, prefix, want.items[i].name,
                                mt_last_error());
        staged[i] = moved;
    }
    return MT_OK;
}

/* Copies the staged values into the module's tensors (same device, dtype and
   shape: no allocation, nothing that can fail on a valid tensor). */
static mt_status commit_state(const char *path, mt_tensor_list want, mt_tensor *const *staged)
{
    for (int i = 0; i < want.n; i++)
        if (staged[i] && mt_copy_(want.items[i].tensor, staged[i]) != MT_OK)
            return mt_set_error(mt_last_status(), "safetensors: %s: copying '%s': %s", path, want.items[i].name,
                                mt_last_error());
    return MT_OK;
}

/* ---------------------------------------------------------------- module */
mt_status mt_module_save(const mt_module *m, const char *path)
{
    if (!m) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: module is NULL", path ? path : "(null)");
    mt_clear_error();
    mt_tensor_list sd = mt_state_dict(m);
    if (mt_last_status() != MT_OK) return mt_last_status();
    mt_status st = mt_safetensors_save(path, sd, 0, NULL, NULL);
    mt_tensor_list_free(&sd);
    return st;
}

mt_status mt_module_load_ex(mt_module *m, const char *path, mt_load_opts opts, mt_load_report *report)
{
    if (report) *report = (mt_load_report){ 0 };
    if (!m) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: module is NULL", path ? path : "(null)");
    mt_tensor_list have = { 0, NULL };
    mt_status st = mt_safetensors_load(path, &have);
    if (st != MT_OK) return st;
    mt_clear_error();
    mt_tensor_list want = mt_state_dict(m);
    if (mt_last_status() != MT_OK) { free_loaded(&have); return mt_last_status(); }

    mt_scope scope = mt_scope_begin();   /* holds the device copies */
    mt_tensor **staged = calloc((size_t)(want.n ? want.n : 1), sizeof *staged);
    if (!staged) st = mt_set_error(MT_ERR_MEMORY, "safetensors: %s: out of memory", path);
    else st = match_state(path, "module", "", want, have, staged, opts.non_strict, report);
    if (st == MT_OK) st = commit_state(path, want, staged);
    mt_scope_end(scope);
    free(staged);
    mt_tensor_list_free(&want);
    free_loaded(&have);
    return st;
}

mt_status mt_module_load(mt_module *m, const char *path) { return mt_module_load_ex(m, path, (mt_load_opts){ 0 }, NULL); }

/* ---------------------------------------------------------------- module and optimizer */
mt_status mt_checkpoint_save(const char *path, const mt_module *m, const mt_optimizer *opt)
{
    return mt_checkpoint_save_meta(path, m, opt, 0, NULL, NULL);
}

mt_status mt_checkpoint_save_meta(const char *path, const mt_module *m, const mt_optimizer *opt,
                                  int n_meta, const char *const *meta_keys, const char *const *meta_values)
{
    if (!m) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: module is NULL", path ? path : "(null)");
    if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: invalid metadata (n_meta = %d)", path ? path : "(null)", n_meta);
    for (int i = 0; i < n_meta; i++)
        if (meta_keys[i] && strcmp(meta_keys[i], LR_KEY) == 0)
            return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: metadata key \"" LR_KEY "\" is the checkpoint's own "
                                "(the optimizer's learning rate)", path ? path : "(null)");
    mt_clear_error();
    mt_tensor_list sd = mt_state_dict(m);
    if (mt_last_status() != MT_OK) return mt_last_status();
    mt_tensor_list os = { 0, NULL };
    if (opt) {
        os = mt_optimizer_state(opt);
        if (mt_last_status() != MT_OK) { mt_tensor_list_free(&sd); return mt_last_status(); }
    }

    mt_tensor_list all = { 0, NULL };
    bool ok = true;
    for (int i = 0; i < sd.n && ok; i++) ok = append_prefixed(&all, MODEL_PREFIX, sd.items[i].name, sd.items[i].tensor);
    for (int i = 0; i < os.n && ok; i++) ok = append_prefixed(&all, OPTIM_PREFIX, os.items[i].name, os.items[i].tensor);
    /* the metadata: "optim.lr" first (with an optimizer), then the caller's pairs in their order */
    const int n_all = n_meta + (opt ? 1 : 0);
    const char **keys = ok ? malloc((size_t)(n_all ? n_all : 1) * sizeof *keys) : NULL;
    const char **values = keys ? malloc((size_t)(n_all ? n_all : 1) * sizeof *values) : NULL;
    char lr[32];
    mt_status st;
    if (!ok || !values) st = mt_set_error(MT_ERR_MEMORY, "safetensors: %s: out of memory", path ? path : "(null)");
    else {
        int k = 0;
        if (opt) {
            snprintf(lr, sizeof lr, "%.17g", mt_optimizer_lr(opt));
            keys[k] = LR_KEY;
            values[k++] = lr;
        }
        for (int i = 0; i < n_meta; i++, k++) {
            keys[k] = meta_keys[i];
            values[k] = meta_values[i];
        }
        st = mt_safetensors_save(path, all, n_all, keys, values);
    }
    free(keys);
    free(values);
    mt_tensor_list_free(&all);
    mt_tensor_list_free(&os);
    mt_tensor_list_free(&sd);
    return st;
}

/* The learning rate as the writer stores it ("%.17g"): a decimal number,
   finite and >= 0. strtod alone would take "nan", "inf", "-1", " 1" and
   "0x1p-3". */
static bool parse_lr(const char *text, double *out)
{
    const char *c = text;
    if (*c == '+' || *c == '-') c++;
    if (!(*c >= '0' && *c <= '9') && *c != '.') return false;   /* no space, nan, inf */
    for (const char *q = text; *q; q++)
        if (*q == 'x' || *q == 'X') return false;                /* no hex floats */
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v) || !(v >= 0)) return false;
    *out = v;
    return true;
}

/* The device an optimizer state tensor lives on: that of the parameter whose
   name prefixes it ("<param>.exp_avg") and whose shape it has; else the CPU
   (counters such as "step"). */
static mt_device state_device(mt_tensor_list params, const char *name, const mt_tensor *t)
{
    for (int i = 0; i < params.n; i++) {
        size_t lp = strlen(params.items[i].name);
        if (strncmp(name, params.items[i].name, lp) == 0 && name[lp] == '.' && mt_same_shape(t, params.items[i].tensor))
            return mt_device_of(params.items[i].tensor);
    }
    return mt_cpu();
}

mt_status mt_checkpoint_load(const char *path, mt_module *m, mt_optimizer *opt)
{
    return mt_checkpoint_load_meta(path, m, opt, NULL);
}

mt_status mt_checkpoint_load_meta(const char *path, mt_module *m, mt_optimizer *opt, mt_safetensors_metadata *meta_out)
{
    if (meta_out) *meta_out = (mt_safetensors_metadata){ 0, NULL, NULL };
    if (!m) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: module is NULL", path ? path : "(null)");
    mt_tensor_list file = { 0, NULL };
    mt_safetensors_metadata meta = { 0, NULL, NULL };
    mt_status st = mt_safetensors_load_with_metadata(path, &file, &meta);
    if (st != MT_OK) return st;

    /* Split the file by prefix; the lists borrow the file's tensors and point
       into its names past the prefix. */
    size_t lm = strlen(MODEL_PREFIX), lo = strlen(OPTIM_PREFIX);
    mt_named_tensor *model_items = malloc((size_t)(file.n ? file.n : 1) * sizeof *model_items);
    mt_named_tensor *optim_items = malloc((size_t)(file.n ? file.n : 1) * sizeof *optim_items);
    mt_tensor_list model = { 0, model_items }, optim = { 0, optim_items };
    mt_tensor_list want = { 0, NULL }, params = { 0, NULL };
    mt_tensor **staged = NULL;
    mt_scope scope = mt_scope_begin();   /* holds the device copies */
    if (!model_items || !optim_items) { st = mt_set_error(MT_ERR_MEMORY, "safetensors: %s: out of memory", path); goto done; }
    problems p = { .len = 0, .count = 0 };
    for (int i = 0; i < file.n; i++) {
        char *name = file.items[i].name;
        if (strncmp(name, MODEL_PREFIX, lm) == 0)
            model.items[model.n++] = (mt_named_tensor){ name + lm, file.items[i].tensor };
        else if (strncmp(name, OPTIM_PREFIX, lo) == 0)
            optim.items[optim.n++] = (mt_named_tensor){ name + lo, file.items[i].tensor };
        else
            problem(&p, "unexpected '%s' (checkpoint names start with \"" MODEL_PREFIX "\" or \"" OPTIM_PREFIX "\")", name);
    }
    if (opt && optim.n == 0)
        problem(&p, "no optimizer state (no \"" OPTIM_PREFIX "\" tensors: was it saved without an optimizer?)");
    bool have_lr = false;
    double lr = 0;
    for (int i = 0; i < meta.n; i++)
        if (strcmp(meta.keys[i], LR_KEY) == 0) {
            have_lr = parse_lr(meta.values[i], &lr);
            if (!have_lr) problem(&p, "metadata \"" LR_KEY "\" is not a learning rate (a finite number >= 0): '%.64s'",
                                  meta.values[i]);
        }
    if (p.count > 0) {
        st = mt_set_error(MT_ERR_FORMAT, "safetensors: %s: not a checkpoint of this model: %s", path, problems_text(&p));
        goto done;
    }

    /* 1. the model: check and stage, changing nothing yet */
    mt_clear_error();
    want = mt_state_dict(m);
    if ((st = mt_last_status()) != MT_OK) goto done;
    staged = calloc((size_t)(want.n ? want.n : 1), sizeof *staged);
    if (!staged) { st = mt_set_error(MT_ERR_MEMORY, "safetensors: %s: out of memory", path); goto done; }
    if ((st = match_state(path, "model", MODEL_PREFIX, want, model, staged, false, NULL)) != MT_OK) goto done;

    /* 2. the optimizer: it checks everything before it changes anything */
    if (opt) {
        params = mt_parameters(m);
        if ((st = mt_last_status()) != MT_OK) goto done;
        for (int i = 0; i < optim.n; i++) {
            mt_tensor *t = optim.items[i].tensor;
            mt_tensor *moved = mt_to_device(t, state_device(params, optim.items[i].name, t));
            if (!moved) {
                st = mt_set_error(mt_last_status(), "safetensors: %s: '" OPTIM_PREFIX "%s': %s", path,
                                  optim.items[i].name, mt_last_error());
                goto done;
            }
            optim.items[i].tensor = moved;
        }
        if (mt_optimizer_load_state(opt, optim) != MT_OK) {
            st = mt_set_error(mt_last_status(), "safetensors: %s: optimizer state: %s", path, mt_last_error());
            goto done;
        }
        if (have_lr) mt_optimizer_set_lr(opt, lr);
    }

    /* 3. the model's values */
    st = commit_state(path, want, staged);
    if (st == MT_OK && meta_out) {   /* the caller takes the metadata */
        *meta_out = meta;
        meta = (mt_safetensors_metadata){ 0, NULL, NULL };
    }

done:
    mt_scope_end(scope);
    free(staged);
    mt_tensor_list_free(&params);
    mt_tensor_list_free(&want);
    free(model_items);
    free(optim_items);
    free_loaded(&file);
    mt_safetensors_metadata_free(&meta);
    return st;
}
