/*
 * nn.c - the module base: a module owns named parameters, named buffers and
 * named children, and maps a tensor to a tensor through its type's forward
 * (or several to several through forward_n); in-place conversion of all its
 * tensors to another device or dtype.
 *
 * Ownership: every tensor registered here is taken out of the step scope it
 * was created in (if any) and freed by mt_module_free, children included.
 *
 * Names are PyTorch's state_dict names: a child's tensors are prefixed with
 * the child's name and a dot, depth first ("0.weight", "1.running_mean").
 * Order, as in PyTorch: a module's parameters, then its buffers, then its
 * children in registration order.
 */
#include "engine/internal.h"
#include "mytorch/nn.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */
static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* The module owns t from now on: it leaves whatever scope it was in. */
static void take_out_of_scope(mt_tensor *t) { mt_unscope(t); }

/* A tensor handed over with a failed registration: freed unless a scope
   still holds it (then the scope frees it, and nothing else breaks). */
static void drop(mt_tensor *t)
{
    if (t->scope_slot < 0 || t->kept) mt_free(t);
}

static bool name_taken(const mt_module *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++) if (strcmp(m->params[i].name, name) == 0) return true;
    for (int i = 0; i < m->n_buffers; i++) if (strcmp(m->buffers[i].name, name) == 0) return true;
    for (int i = 0; i < m->n_children; i++) if (strcmp(m->child_names[i], name) == 0) return true;
    return false;
}

/* Checks shared by add_param / add_buffer / add_child; false + error otherwise. */
static bool valid_name(const char *what, const mt_module *m, const char *name)
{
    if (!name || !name[0] || strchr(name, '.')) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: name \"%s\" must be non-empty and contain no '.'", what, name ? name : "(null)");
        return false;
    }
    if (name_taken(m, name)) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: module %s already has something named \"%s\"", what, m->type->name, name);
        return false;
    }
    return true;
}

/* Appends (name, t) to a named-tensor array of count *n. */
static bool append_named(mt_named_tensor **items, int *n, const char *name, mt_tensor *t)
{
    char *copy = copy_string(name);
    mt_named_tensor *grown = realloc(*items, (size_t)(*n + 1) * sizeof **items);
    if (!copy || !grown) {
        free(copy);
        if (grown) *items = grown;
        mt_set_error(MT_ERR_MEMORY, "module: out of memory registering \"%s\"", name);
        return false;
    }
    *items = grown;
    (*items)[*n] = (mt_named_tensor){ copy, t };
    (*n)++;
    return true;
}

/* ---------------------------------------------------------------- the base */
mt_module *mt_module_new(const mt_module_type *type, void *impl)
{
    if (!type || !type->forward) {
        mt_set_error(MT_ERR_ARGUMENT, "module_new: a module type with a forward is required");
        return NULL;
    }
    mt_module *m = calloc(1, sizeof *m);
    if (!m) { mt_set_error(MT_ERR_MEMORY, "module_new: out of memory"); return NULL; }
    m->type = type;
    m->training = true;   /* PyTorch's modules start in training mode */
    m->impl = impl;
    return m;
}

mt_module *mt_module_new_n(const mt_module_type_n *type, void *impl)
{
    if (!type || !type->forward_n) {
        mt_set_error(MT_ERR_ARGUMENT, "module_new_n: a module type with a forward_n is required");
        return NULL;
    }
    if (type->n_outputs < 1 || type->n_outputs > MT_MODULE_MAX_OUTPUTS) {
        mt_set_error(MT_ERR_ARGUMENT, "module_new_n: %s declares %d outputs, a module has 1 to %d", type->base.name,
                     type->n_outputs, MT_MODULE_MAX_OUTPUTS);
        return NULL;
    }
    mt_module *m = calloc(1, sizeof *m);
    if (!m) { mt_set_error(MT_ERR_MEMORY, "module_new_n: out of memory"); return NULL; }
    m->type = &type->base;
    m->type_n = type;
    m->training = true;
    m->impl = impl;
    return m;
}

mt_tensor *mt_module_add_param(mt_module *m, const char *name, mt_tensor *t)
{
    if (!t) return NULL;   /* the error that made t NULL is already recorded */
    if (!m) { drop(t); mt_set_error(MT_ERR_ARGUMENT, "add_param: module is NULL"); return NULL; }
    if (!valid_name("add_param", m, name)) { drop(t); return NULL; }
    if (t->grad_fn) {
        mt_set_error(MT_ERR_ARGUMENT, "add_param: \"%s\" is not a leaf (it was computed by %s); register a fresh "
                     "tensor or mt_detach it", name, t->grad_fn->op->name);
        drop(t);
        return NULL;
    }
    if (!mt_requires_grad(t, true)) { drop(t); return NULL; }
    take_out_of_scope(t);
    if (!append_named(&m->params, &m->n_params, name, t)) { mt_free(t); return NULL; }
    return t;
}

mt_tensor *mt_module_add_buffer(mt_module *m, const char *name, mt_tensor *t)
{
    if (!t) return NULL;
    if (!m) { drop(t); mt_set_error(MT_ERR_ARGUMENT, "add_buffer: module is NULL"); return NULL; }
    if (!valid_name("add_buffer", m, name)) { drop(t); return NULL; }
    if (t->grad_fn || t->requires_grad) {
        mt_set_error(MT_ERR_ARGUMENT, "add_buffer: buffer \"%s\" must not require grad", name);
        drop(t);
        return NULL;
    }
    take_out_of_scope(t);
    if (!append_named(&m->buffers, &m->n_buffers, name, t)) { mt_free(t); return NULL; }
    return t;
}

mt_module *mt_module_add_child(mt_module *m, const char *name, mt_module *child)
{
    if (!child) return NULL;
    if (!m) { mt_module_free(child); mt_set_error(MT_ERR_ARGUMENT, "add_child: module is NULL"); return NULL; }
    if (child == m) { mt_set_error(MT_ERR_ARGUMENT, "add_child: a module cannot be its own child"); return NULL; }
    if (!valid_name("add_child", m, name)) { mt_module_free(child); return NULL; }
    char *copy = copy_string(name);
    char **names = realloc(m->child_names, (size_t)(m->n_children + 1) * sizeof *names);
    if (names) m->child_names = names;
    mt_module **children = names ? realloc(m->children, (size_t)(m->n_children + 1) * sizeof *children) : NULL;
    if (children) m->children = children;
    if (!copy || !names || !children) {
        free(copy);
        mt_module_free(child);
        mt_set_error(MT_ERR_MEMORY, "add_child: out of memory");
        return NULL;
    }
    m->child_names[m->n_children] = copy;
    m->children[m->n_children] = child;
    m->n_children++;
    return child;
}

mt_tensor *mt_module_param(const mt_module *m, const char *name)
{
    if (!m || !name) return NULL;
    for (int i = 0; i < m->n_params; i++) if (strcmp(m->params[i].name, name) == 0) return m->params[i].tensor;
    return NULL;
}

mt_tensor *mt_module_buffer(const mt_module *m, const char *name)
{
    if (!m || !name) return NULL;
    for (int i = 0; i < m->n_buffers; i++) if (strcmp(m->buffers[i].name, name) == 0) return m->buffers[i].tensor;
    return NULL;
}

static void free_named(mt_named_tensor *items, int n)
{
    for (int i = 0; i < n; i++) {
        mt_free(items[i].tensor);
        free(items[i].name);
    }
    free(items);
}

void mt_module_free(mt_module *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_children; i++) {
        mt_module_free(m->children[i]);
        free(m->child_names[i]);
    }
    free(m->children);
    free(m->child_names);
    free_named(m->params, m->n_params);
    free_named(m->buffers, m->n_buffers);
    if (m->type->destroy) m->type->destroy(m);
    else free(m->impl);
    free(m);
}

/* ---------------------------------------------------------------- running */
mt_tensor *mt_forward(mt_module *m, mt_tensor *x)
{
    if (!m) { mt_set_error(MT_ERR_ARGUMENT, "forward: module is NULL"); return NULL; }
    if (!x) return NULL;
    if (m->type->forward) return m->type->forward(m, x);
    mt_tensor *y = NULL;
    return mt_forward_n(m, 1, &x, 1, &y) == 1 ? y : NULL;
}

int mt_forward_n(mt_module *m, int n_in, mt_tensor *const *in, int max_out, mt_tensor **out)
{
    for (int k = 0; out && k < max_out; k++) out[k] = NULL;
    if (!m) { mt_set_error(MT_ERR_ARGUMENT, "forward: module is NULL"); return -1; }
    const char *name = m->type->name;
    if (n_in < 0 || (n_in > 0 && !in) || max_out < 0 || (max_out > 0 && !out)) {
        mt_set_error(MT_ERR_ARGUMENT, "forward: %s: %d inputs%s and room for %d outputs%s", name, n_in,
                     n_in > 0 && !in ? " in a NULL array" : "", max_out, max_out > 0 && !out ? " in a NULL array" : "");
        return -1;
    }
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {   /* an earlier op failed: keep its message */
            if (mt_last_status() == MT_OK) mt_set_error(MT_ERR_ARGUMENT, "forward: input %d of %s is NULL", i, name);
            return -1;
        }
    int n_out = m->type_n ? m->type_n->n_outputs : 1;
    if (n_out > max_out) {
        mt_set_error(MT_ERR_ARGUMENT, "forward: %s returns %d output%s, but there is room for %d%s", name, n_out,
                     n_out == 1 ? "" : "s", max_out, max_out == 1 ? " (call mt_forward_n)" : "");
        return -1;
    }
    if (!m->type_n) {
        if (n_in != 1) {
            mt_set_error(MT_ERR_ARGUMENT, "forward: %s takes one input, got %d", name, n_in);
            return -1;
        }
        out[0] = m->type->forward(m, in[0]);
        return out[0] ? 1 : -1;
    }
    mt_status st = m->type_n->forward_n(m, n_in, in, out);
    if (st == MT_OK) return n_out;
    if (mt_last_status() == MT_OK) mt_set_error(st, "forward: %s failed", name);
    for (int k = 0; k < max_out; k++) out[k] = NULL;   /* what it made stays with the scope */
    return -1;
}

void mt_module_train(mt_module *m, bool training)
{
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->n_children; i++) mt_module_train(m->children[i], training);
}

void mt_module_zero_grad(mt_module *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) mt_zero_grad(m->params[i].tensor);
    for (int i = 0; i < m->n_children; i++) mt_module_zero_grad(m->children[i]);
}

int64_t mt_parameter_count(const mt_module *m)
{
    if (!m) return 0;
    int64_t count = 0;
    for (int i = 0; i < m->n_params; i++) count += mt_numel(m->params[i].tensor);
    for (int i = 0; i < m->n_children; i++) count += mt_parameter_count(m->children[i]);
    return count;
}

/* ---------------------------------------------------------------- named lists */
void mt_tensor_list_free(mt_tensor_list *list)
{
    if (!list) return;
    for (int i = 0; i < list->n; i++) free(list->items[i].name);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

mt_tensor *mt_tensor_list_get(mt_tensor_list list, const char *name)
{
    if (!name) { mt_set_error(MT_ERR_ARGUMENT, "tensor_list_get: name is NULL"); return NULL; }
    for (int i = 0; i < list.n; i++)
        if (list.items[i].name && strcmp(list.items[i].name, name) == 0) return list.items[i].tensor;
    mt_set_error(MT_ERR_ARGUMENT, "tensor_list_get: no tensor named \"%s\" among the list's %d", name, list.n);
    return NULL;
}

/* Appends prefix + name; false on out-of-memory (the list keeps what it had). */
static bool list_append(mt_tensor_list *list, const char *prefix, const char *name, mt_tensor *t)
{
    size_t lp = strlen(prefix), ln = strlen(name);
    char *full = malloc(lp + ln + 1);
    mt_named_tensor *grown = realloc(list->items, (size_t)(list->n + 1) * sizeof *grown);
    if (grown) list->items = grown;
    if (!full || !grown) { free(full); return false; }
    memcpy(full, prefix, lp);
    memcpy(full + lp, name, ln + 1);
    list->items[list->n++] = (mt_named_tensor){ full, t };
    return true;
}

/* Walks m depth first collecting parameters (and buffers when asked). */
static bool collect(const mt_module *m, const char *prefix, bool with_buffers, mt_tensor_list *list)
{
    for (int i = 0; i < m->n_params; i++)
        if (!list_append(list, prefix, m->params[i].name, m->params[i].tensor)) return false;
    if (with_buffers)
        for (int i = 0; i < m->n_buffers; i++)
            if (!list_append(list, prefix, m->buffers[i].name, m->buffers[i].tensor)) return false;
    for (int i = 0; i < m->n_children; i++) {
        size_t lp = strlen(prefix), ln = strlen(m->child_names[i]);
        char *child_prefix = malloc(lp + ln + 2);
        if (!child_prefix) return false;
        memcpy(child_prefix, prefix, lp);
        memcpy(child_prefix + lp, m->child_names[i], ln);
        child_prefix[lp + ln] = '.';
        child_prefix[lp + ln + 1] = '\0';
        bool ok = collect(m->children[i], child_prefix, with_buffers, list);
        free(child_prefix);
        if (!ok) return false;
    }
    return true;
}

static mt_tensor_list collect_list(const mt_module *m, bool with_buffers, const char *what)
{
    mt_tensor_list list = { 0, NULL };
    if (!m) { mt_set_error(MT_ERR_ARGUMENT, "%s: module is NULL", what); return list; }
    if (!collect(m, "", with_buffers, &list)) {
        mt_tensor_list_free(&list);
        mt_set_error(MT_ERR_MEMORY, "%s: out of memory", what);
    }
    return list;
}

mt_tensor_list mt_parameters(const mt_module *m) { return collect_list(m, false, "parameters"); }
mt_tensor_list mt_state_dict(const mt_module *m) { return collect_list(m, true, "state_dict"); }

/* ---------------------------------------------------------------- printing */
/* PyTorch's layout:
     Sequential(
       (0): Linear(in_features=2, out_features=64, bias=true)
       (1): Tanh()
     )                                                                       */
static void print_rec(const mt_module *m, FILE *f, int indent)
{
    char extra[256] = "";
    if (m->type->extra_repr) m->type->extra_repr(m, extra, sizeof extra);
    fprintf(f, "%s(%s", m->type->name, extra);
    if (m->n_children == 0) { fputc(')', f); return; }
    fputc('\n', f);
    for (int i = 0; i < m->n_children; i++) {
        fprintf(f, "%*s(%s): ", indent + 2, "", m->child_names[i]);
        print_rec(m->children[i], f, indent + 2);
        fputc('\n', f);
    }
    fprintf(f, "%*s)", indent, "");
}

void mt_module_print(const mt_module *m, FILE *f)
{
    if (!m || !f) return;
    print_rec(m, f, 0);
    fputc('\n', f);
}

/* ---------------------------------------------------------------- converting in place (device, dtype) */
/* Every tensor m owns (recursively) that a conversion carries: parameters,
   buffers, and their gradients and tangents, each once. */
static int convertible_count(const mt_module *m)
{
    int n = 3 * (m->n_params + m->n_buffers);
    for (int i = 0; i < m->n_children; i++) n += convertible_count(m->children[i]);
    return n;
}

static void add_convertible(mt_tensor **list, int *n, mt_tensor *t)
{
    if (!t) return;
    for (int i = 0; i < *n; i++) if (list[i] == t) return;
    list[(*n)++] = t;
}

static void gather_convertible(const mt_module *m, mt_tensor **list, int *n)
{
    for (int k = 0; k < m->n_params + m->n_buffers; k++) {
        mt_tensor *t = k < m->n_params ? m->params[k].tensor : m->buffers[k - m->n_params].tensor;
        add_convertible(list, n, t);
        add_convertible(list, n, t->grad);
        add_convertible(list, n, t->tangent);
    }
    for (int i = 0; i < m->n_children; i++) gather_convertible(m->children[i], list, n);
}

/* One tensor's new contents: a fresh contiguous tensor, or t itself when t
   stays as it is; NULL (with an error) on failure. */
typedef mt_tensor *(*convert_fn)(mt_tensor *t, const void *target);

/*
 * Converts every tensor m owns in place, in two phases:
 * 1. converted copies of everything; nothing in m changes yet, so a failure
 *    (out of memory, a device error) leaves m as it was;
 * 2. each tensor takes its copy's storage and dtype (contiguous, offset 0)
 *    and hands its old storage to the copy, which is freed with it. The
 *    tensors keep their identity, autograd flags and ownership, so the
 *    module's own pointers (and a Linear's weight, ...) stay valid.
 */
static mt_status convert_module(mt_module *m, const char *what, convert_fn convert, const void *target)
{
    if (mt_device_error_check() != MT_OK) return mt_last_status();
    int cap = convertible_count(m), n = 0;
    if (cap == 0) return MT_OK;
    mt_tensor **list = malloc((size_t)cap * sizeof *list);
    mt_tensor **converted = calloc((size_t)cap, sizeof *converted);
    if (!list || !converted) {
        free(list); free(converted);
        return mt_set_error(MT_ERR_MEMORY, "%s: out of memory", what);
    }
    gather_convertible(m, list, &n);

    bool grad = mt_set_grad_enabled(false), fwd = mt_set_forward_ad_enabled(false);
    mt_status st = MT_OK;
    for (int i = 0; i < n && st == MT_OK; i++) {
        mt_tensor *c = convert(list[i], target);
        if (!c) st = mt_last_status() != MT_OK ? mt_last_status() : mt_set_error(MT_ERR_MEMORY, "%s: copy failed", what);
        converted[i] = c == list[i] ? NULL : c;
    }
    if (st == MT_OK) st = mt_device_error_check();
    mt_set_grad_enabled(grad);
    mt_set_forward_ad_enabled(fwd);
    if (st != MT_OK) {
        for (int i = 0; i < n; i++) mt_free(converted[i]);
        free(list); free(converted);
        return st;
    }

    for (int i = 0; i < n; i++) {
        if (!converted[i]) continue;
        mt_tensor *t = list[i], *c = converted[i];
        mt_storage *old = t->storage;
        t->storage = c->storage;
        c->storage = old;
        t->dtype = c->dtype;
        t->offset = 0;
        mt_contiguous_strides(t->ndim, t->shape, t->stride);
        mt_free(c);
    }
    free(list);
    free(converted);
    return MT_OK;
}

static mt_tensor *to_device(mt_tensor *t, const void *target)
{
    mt_device d = *(const mt_device *)target, s = mt_device_of(t);
    return s.type == d.type && s.index == d.index ? t : mt_to_device(t, d);
}

mt_status mt_module_to(mt_module *m, mt_device device)
{
    if (!m) return mt_set_error(MT_ERR_ARGUMENT, "module_to: module is NULL");
    const char *why = NULL;
    if (!mt_device_available(device, &why))
        return mt_set_error(MT_ERR_DEVICE, "module_to: %s:%d is not available: %s", mt_device_name(device),
                            device.index, why ? why : "unknown reason");
    return convert_module(m, "module_to", to_device, &device);
}

/* Floating tensors only: integer buffers keep their dtype, as in PyTorch. */
static mt_tensor *to_dtype(mt_tensor *t, const void *target)
{
    mt_dtype dtype = *(const mt_dtype *)target;
    if (!mt_dtype_is_float(t->dtype) || t->dtype == dtype) return t;
    mt_tensor *c = mt_new_tensor(mt_device_of(t), dtype, t->ndim, t->shape);
    if (c && mt_copy_(c, t) != MT_OK) { mt_free(c); return NULL; }
    return c;
}

mt_status mt_module_to_dtype(mt_module *m, mt_dtype dtype)
{
    if (!m) return mt_set_error(MT_ERR_ARGUMENT, "module_to_dtype: module is NULL");
    if (!mt_dtype_is_float(dtype))
        return mt_set_error(MT_ERR_DTYPE, "module_to_dtype: a module converts to f32 or f64 (its floating parameters "
                                          "and buffers), not to %s", mt_dtype_name(dtype));
    return convert_module(m, "module_to_dtype", to_dtype, &dtype);
}
