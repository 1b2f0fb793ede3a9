/*
 * tensor.c - tensor objects: storage, ownership and scopes, creation,
 * random tensors, queries and printing. Differentiable views live in
 * op_view.c.
 */
#include "engine/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- storage */
static mt_storage *storage_new(mt_device device, size_t nbytes)
{
    mt_storage *s = calloc(1, sizeof *s);
    if (!s) { mt_set_error(MT_ERR_MEMORY, "out of memory allocating a storage header"); return NULL; }
    s->data = mt_device_alloc(device, nbytes);
    if (!s->data) { free(s); return NULL; }
    s->nbytes = nbytes;
    s->device = device;
    s->refcount = 1;
    return s;
}

static void storage_release(mt_storage *s)
{
    if (!s || --s->refcount > 0) return;
    if (!s->borrowed) mt_device_free(s->device, s->data, s->nbytes);
    free(s);
}

/* ---------------------------------------------------------------- ownership */
/* The intermediates a composite op made with no scope open: they belong to
   its result and go with it (mt_composite_end). */
struct mt_companions { int n, cap; mt_tensor **items; };

static void tensor_destroy(mt_tensor *t)
{
    if (t->grad_fn) mt_node_free(t->grad_fn);
    if (t->grad) tensor_destroy(t->grad);
    if (t->tangent) tensor_destroy(t->tangent);
    if (t->companions) {   /* collected newest first: freed in that order, as a scope frees them */
        for (int i = 0; i < t->companions->n; i++) tensor_destroy(t->companions->items[i]);
        free(t->companions->items);
        free(t->companions);
    }
    storage_release(t->storage);
    free(t);
}

/* Called by the scope registry for each object of a closing scope. */
static void release_scoped(void *object)
{
    mt_tensor *t = object;
    if (t->kept) {
        /* Survives; what it was computed from is being freed, so its graph goes. */
        t->scope_slot = -1;
        t->kept = false;
        if (t->grad_fn) {
            mt_node_free(t->grad_fn);
            t->grad_fn = NULL;
            t->graph_freed = true;
        }
        return;
    }
    tensor_destroy(t);
}

mt_scope mt_scope_begin(void) { return (mt_scope){ mt_runtime_scope_push() }; }

/* ---------------------------------------------------------------- composite ops */
mt_composite mt_composite_begin(void)
{
    if (mt_runtime_scope_depth() > 0) return (mt_composite){ 0, false };   /* the open scope takes everything */
    return (mt_composite){ mt_runtime_scope_push(), true };
}

typedef struct companion_collector { mt_tensor *result; bool failed; } companion_collector;

static void collect_companion(void *object, void *ctx)
{
    companion_collector *c = ctx;
    mt_tensor *t = object, *r = c->result;
    t->scope_slot = -1;
    t->kept = false;
    if (!r->companions && !(r->companions = calloc(1, sizeof *r->companions))) { c->failed = true; tensor_destroy(t); return; }
    struct mt_companions *list = r->companions;
    if (list->n == list->cap) {
        int cap = list->cap ? 2 * list->cap : 8;
        mt_tensor **grown = realloc(list->items, (size_t)cap * sizeof *grown);
        if (!grown) { c->failed = true; tensor_destroy(t); return; }
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->n++] = t;
}

mt_tensor *mt_composite_end(mt_composite c, mt_tensor *result)
{
    if (!c.opened) return result;
    if (!result) { mt_runtime_scope_pop(c.mark, release_scoped); return NULL; }
    mt_runtime_scope_forget(result->scope_slot);
    result->scope_slot = -1;
    companion_collector col = { result, false };
    mt_runtime_scope_pop_each(c.mark, collect_companion, &col);
    if (col.failed) {   /* some intermediates could not be kept: the graph through them is gone */
        if (result->grad_fn) { mt_node_free(result->grad_fn); result->grad_fn = NULL; result->graph_freed = true; }
        mt_set_error(MT_ERR_MEMORY, "out of memory keeping an op's intermediates with its result (no scope open)");
        mt_free(result);
        return NULL;
    }
    return result;
}

mt_tensor *mt_unscope(mt_tensor *t)
{
    if (t) {
        mt_runtime_scope_forget(t->scope_slot);
        t->scope_slot = -1;
        t->kept = false;
    }
    return t;
}

void mt_scope_end(mt_scope scope) { mt_runtime_scope_pop(scope.mark, release_scoped); }

mt_tensor *mt_keep(mt_tensor *t)
{
    if (t && t->scope_slot >= 0) t->kept = true;
    return t;
}

void mt_free(mt_tensor *t)
{
    if (!t) return;
    mt_runtime_scope_forget(t->scope_slot);
    tensor_destroy(t);
}

mt_tensor *mt_adopt(mt_tensor *t)
{
    if (t && t->scope_slot < 0) t->scope_slot = mt_runtime_scope_register(t);
    return t;
}

void mt_free_temp(mt_tensor *tmp, const mt_tensor *original)
{
    if (tmp && tmp != original) mt_free(tmp);
}

/* ---------------------------------------------------------------- geometry */
int64_t mt_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

void mt_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d] > 1 ? shape[d] : 1;
    }
}

/* The largest storage in bytes: offsets and sizes in bytes are int64_t and
   ptrdiff_t (size_t) arithmetic. */
#define MT_MAX_STORAGE_BYTES ((uint64_t)(PTRDIFF_MAX < INT64_MAX ? PTRDIFF_MAX : INT64_MAX))

/*
 * numel = prod(shape[d]). Checked, in unsigned arithmetic that cannot wrap
 * unseen: every dim >= 0; the product of the dims above 0 (the largest
 * contiguous stride times its dim, which mt_contiguous_strides computes even
 * when some other dim is 0) fits int64; and that product times elem_size
 * fits MT_MAX_STORAGE_BYTES. So a shape that passes has strides, a numel
 * and a byte count that are all exact.
 */
int64_t mt_shape_check(const char *op, int ndim, const int64_t *shape, size_t elem_size)
{
    if (ndim < 0 || ndim > MT_MAX_DIMS) {
        mt_set_error(MT_ERR_SHAPE, "%s: %d dims requested, mytorch supports 0 to %d", op, ndim, MT_MAX_DIMS);
        return -1;
    }
    if (ndim > 0 && !shape) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: shape is NULL", op);
        return -1;
    }
    char s[256];
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) {
            mt_set_error(MT_ERR_SHAPE, "%s: shape %s: dim %d has negative size %" PRId64, op,
                         mt_shape_text(ndim, shape, s, sizeof s), d, shape[d]);
            return -1;
        }
    bool empty = false;
    for (int d = 0; d < ndim; d++) empty = empty || shape[d] == 0;
    uint64_t span = 1;   /* the product of the dims above 0 */
    for (int d = 0; d < ndim; d++) {
        uint64_t n = (uint64_t)shape[d];
        if (n == 0) continue;
        if (span > (uint64_t)INT64_MAX / n) {
            mt_set_error(MT_ERR_SHAPE, "%s: shape %s is too large: the product of its %sdims does not fit int64",
                         op, mt_shape_text(ndim, shape, s, sizeof s), empty ? "nonzero " : "");
            return -1;
        }
        span *= n;
    }
    uint64_t es = elem_size ? elem_size : 1;
    if (span > MT_MAX_STORAGE_BYTES / es) {
        mt_set_error(MT_ERR_SHAPE, "%s: shape %s is too large: %s%" PRIu64 " elements of %" PRIu64 " bytes exceed the "
                     "largest storage (%" PRIu64 " bytes)", op, mt_shape_text(ndim, shape, s, sizeof s),
                     empty ? "its nonzero dims (which its strides span) make " : "", span, es, MT_MAX_STORAGE_BYTES);
        return -1;
    }
    return empty ? 0 : (int64_t)span;
}

static mt_tensor *tensor_struct(mt_dtype dtype, int ndim, const int64_t *shape)
{
    mt_tensor *t = calloc(1, sizeof *t);
    if (!t) { mt_set_error(MT_ERR_MEMORY, "out of memory allocating a tensor header"); return NULL; }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->scope_slot = -1;
    return t;
}

/* A new contiguous tensor; op names the public function in messages. */
static mt_tensor *tensor_new(const char *op, mt_device device, mt_dtype dtype, int ndim, const int64_t *shape)
{
    if (mt_device_error_check() != MT_OK) return NULL;   /* an earlier kernel failed */
    if ((unsigned)dtype >= MT_DTYPE_COUNT) {
        mt_set_error(MT_ERR_DTYPE, "%s: unknown dtype %d", op, (int)dtype);
        return NULL;
    }
    int64_t numel = mt_shape_check(op, ndim, shape, mt_dtype_size(dtype));
    if (numel < 0) return NULL;
    if (!mt_backend_for(device.type)) {
        mt_set_error(MT_ERR_DEVICE, "%s: device %s is not available in this build", op, mt_device_name(device));
        return NULL;
    }
    mt_tensor *t = tensor_struct(dtype, ndim, shape);
    if (!t) return NULL;
    mt_contiguous_strides(ndim, shape, t->stride);
    size_t nbytes = (size_t)numel * mt_dtype_size(dtype);
    t->storage = storage_new(device, nbytes);
    if (!t->storage) {
        free(t);
        char why[512], s[192];
        snprintf(why, sizeof why, "%s", mt_last_error());
        mt_set_error(mt_last_status(), "%s: cannot allocate a %s tensor of shape %s (%zu bytes) on %s: %s", op,
                     mt_dtype_name(dtype), mt_shape_text(ndim, shape, s, sizeof s), nbytes, mt_device_name(device), why);
        return NULL;
    }
    return mt_adopt(t);
}

mt_tensor *mt_new_tensor(mt_device device, mt_dtype dtype, int ndim, const int64_t *shape)
{
    return tensor_new("empty", device, dtype, ndim, shape);
}

mt_tensor *mt_new_view(const mt_tensor *base, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset)
{
    /* the view ops check their shapes with their own names; this is the net */
    if (mt_shape_check("view", ndim, shape, mt_dtype_size(base->dtype)) < 0) return NULL;
    mt_tensor *t = tensor_struct(base->dtype, ndim, shape);
    if (!t) return NULL;
    for (int d = 0; d < ndim; d++) t->stride[d] = stride[d];
    t->offset = offset;
    t->storage = base->storage;
    t->storage->refcount++;
    return mt_adopt(t);
}

mt_tensor *mt_alias_owned(const mt_tensor *t)
{
    mt_tensor *a = tensor_struct(t->dtype, t->ndim, t->shape);
    if (!a) return NULL;
    memcpy(a->stride, t->stride, sizeof a->stride);
    a->offset = t->offset;
    a->storage = t->storage;
    a->storage->refcount++;
    return a;
}

void *mt_ptr(const mt_tensor *t)
{
    return (char *)t->storage->data + (size_t)t->offset * mt_dtype_size(t->dtype);
}

const mt_backend *mt_backend_of(const mt_tensor *t) { return mt_backend_for(t->storage->device.type); }

/* ---------------------------------------------------------------- devices */
mt_device mt_cpu(void) { return (mt_device){ MT_DEVICE_CPU, 0 }; }

mt_device mt_default_device(void) { return mt_runtime_default_device(); }

mt_status mt_set_default_device(mt_device device)
{
    const char *why = NULL;
    if (!mt_device_available(device, &why))
        return mt_set_error(MT_ERR_DEVICE, "set_default_device: %s:%d is not available: %s", mt_device_name(device), device.index, why);
    mt_runtime_set_default_device(device);
    return MT_OK;
}

mt_status mt_device_from_string(const char *text, mt_device *out)
{
    if (mt_device_parse(text, out)) return MT_OK;
    return mt_set_error(MT_ERR_ARGUMENT, "device: '%s' is not a device (cpu, cuda, cuda:N, cuda-emu)", text ? text : "(null)");
}

const char *mt_device_name(mt_device device)
{
    switch (device.type) {
    case MT_DEVICE_CPU: return "cpu";
    case MT_DEVICE_CUDA: return "cuda";
    case MT_DEVICE_CUDA_EMU: return "cuda-emu";
    default: return "unknown";
    }
}

mt_device mt_device_of(const mt_tensor *t) { return t->storage->device; }

/* ---------------------------------------------------------------- creation */
/* t (contiguous) filled with value, or NULL (t freed) when the kernel failed; NULL stays NULL. */
static mt_tensor *filled(const char *op, mt_tensor *t, double value)
{
    if (t && mt_run_kernel(op, t, fill, t->dtype, mt_numel(t), mt_ptr(t), value) != MT_OK) {
        mt_free(t);
        return NULL;
    }
    return t;
}

mt_tensor *mt_empty_on(mt_device device, mt_dtype dtype, int ndim, const int64_t *shape)
{
    return tensor_new("empty_on", device, dtype, ndim, shape);
}

mt_tensor *mt_empty(mt_dtype dtype, int ndim, const int64_t *shape)
{
    return tensor_new("empty", mt_default_device(), dtype, ndim, shape);
}

/* Whether value converts to dtype (C's conversion of a double to an integer
   type is undefined outside its range; PyTorch refuses these too). Fractions
   truncate toward zero, as in PyTorch; bools take any value (nonzero: true). */
static bool value_fits(const char *op, mt_dtype dtype, double value)
{
    bool fits;   /* the values that truncate into the type (NaN fits none) */
    switch (dtype) {
    case MT_I32: fits = value > -0x1p31 - 1 && value < 0x1p31; break;
    case MT_I64: fits = value >= -0x1p63 && value < 0x1p63; break;
    case MT_U8: fits = value > -1 && value < 256; break;
    default: return true;
    }
    if (!fits)
        mt_set_error(MT_ERR_ARGUMENT, "%s: value %.17g cannot be converted to %s without overflow", op, value,
                     mt_dtype_name(dtype));
    return fits;
}

static mt_tensor *full(const char *op, mt_dtype dtype, int ndim, const int64_t *shape, double value)
{
    if ((unsigned)dtype < MT_DTYPE_COUNT && !value_fits(op, dtype, value)) return NULL;
    return filled(op, tensor_new(op, mt_default_device(), dtype, ndim, shape), value);
}

mt_tensor *mt_full(mt_dtype dtype, int ndim, const int64_t *shape, double value) { return full("full", dtype, ndim, shape, value); }
mt_tensor *mt_zeros(mt_dtype dtype, int ndim, const int64_t *shape) { return full("zeros", dtype, ndim, shape, 0); }
mt_tensor *mt_ones(mt_dtype dtype, int ndim, const int64_t *shape) { return full("ones", dtype, ndim, shape, 1); }
mt_tensor *mt_scalar(mt_dtype dtype, double value) { return full("scalar", dtype, 0, NULL, value); }

static mt_tensor *like(const mt_tensor *t, bool fill, double value)
{
    if (!t) return NULL;
    mt_tensor *r = mt_new_tensor(mt_device_of(t), t->dtype, t->ndim, t->shape);
    return fill ? filled("full_like", r, value) : r;
}
mt_tensor *mt_zeros_like(const mt_tensor *t) { return like(t, true, 0); }

mt_tensor *mt_scalar_like(const mt_tensor *t, double value)
{
    if (!t) return NULL;
    mt_tensor *r = mt_new_tensor(mt_device_of(t), t->dtype, 0, NULL);
    return filled("scalar_like", r, value);
}
mt_tensor *mt_ones_like(const mt_tensor *t) { return like(t, true, 1); }
mt_tensor *mt_empty_like(const mt_tensor *t) { return like(t, false, 0); }

mt_tensor *mt_arange(mt_dtype dtype, double start, double end, double step)
{
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
        mt_set_error(MT_ERR_ARGUMENT, "arange: start %g, end %g, step %g must be finite with step != 0", start, end, step);
        return NULL;
    }
    double count = ceil((end - start) / step);   /* may be inf when end - start overflows */
    if (!(count < 0x1p63)) {
        mt_set_error(MT_ERR_SHAPE, "arange: start %g, end %g, step %g give %g elements, more than int64 counts",
                     start, end, step, count);
        return NULL;
    }
    int64_t n = count > 0 ? (int64_t)count : 0;
    if ((unsigned)dtype < MT_DTYPE_COUNT && n > 0 &&
        (!value_fits("arange", dtype, start) || !value_fits("arange", dtype, start + (double)(n - 1) * step)))
        return NULL;
    mt_tensor *t = tensor_new("arange", mt_default_device(), dtype, 1, &n);
    if (t && mt_run_kernel("arange", t, arange, dtype, n, start, step, mt_ptr(t)) != MT_OK) { mt_free(t); return NULL; }
    return t;
}

mt_tensor *mt_from_data(mt_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    if (!data) { mt_set_error(MT_ERR_ARGUMENT, "from_data: data is NULL"); return NULL; }
    mt_tensor *t = tensor_new("from_data", mt_default_device(), dtype, ndim, shape);
    if (t) mt_backend_of(t)->from_host(mt_ptr(t), data, (size_t)mt_numel(t) * mt_dtype_size(dtype));
    return t;
}

mt_tensor *mt_from_blob(mt_dtype dtype, int ndim, const int64_t *shape, void *data)
{
    if (!data) { mt_set_error(MT_ERR_ARGUMENT, "from_blob: data is NULL"); return NULL; }
    if ((unsigned)dtype >= MT_DTYPE_COUNT) { mt_set_error(MT_ERR_DTYPE, "from_blob: unknown dtype %d", (int)dtype); return NULL; }
    int64_t numel = mt_shape_check("from_blob", ndim, shape, mt_dtype_size(dtype));
    if (numel < 0) return NULL;
    mt_tensor *t = tensor_struct(dtype, ndim, shape);
    mt_storage *s = calloc(1, sizeof *s);
    if (!t || !s) { free(t); free(s); mt_set_error(MT_ERR_MEMORY, "from_blob: out of memory"); return NULL; }
    mt_contiguous_strides(ndim, shape, t->stride);
    s->data = data;
    s->nbytes = (size_t)numel * mt_dtype_size(dtype);
    s->device = mt_cpu();
    s->refcount = 1;
    s->borrowed = true;
    t->storage = s;
    return mt_adopt(t);
}

/* A loop of one tensor's layout against a contiguous buffer. */
static void loop_against_contiguous(mt_loop *loop, const mt_tensor *t, int t_operand)
{
    memset(loop, 0, sizeof *loop);
    loop->ndim = t->ndim;
    int64_t cstride[MT_MAX_DIMS];
    mt_contiguous_strides(t->ndim, t->shape, cstride);
    for (int d = 0; d < t->ndim; d++) {
        loop->shape[d] = t->shape[d];
        loop->stride[t_operand][d] = t->stride[d];
        loop->stride[1 - t_operand][d] = cstride[d];
    }
}

mt_status mt_to_data(const mt_tensor *t, mt_dtype dtype, void *dst)
{
    if (!t || !dst) return mt_set_error(MT_ERR_ARGUMENT, "to_data: %s is NULL", t ? "destination" : "tensor");
    if ((unsigned)dtype >= MT_DTYPE_COUNT) return mt_set_error(MT_ERR_DTYPE, "to_data: unknown dtype %d", (int)dtype);
    int64_t n = mt_numel(t);
    if (mt_device_error_check() != MT_OK) return mt_last_status();
    if (n == 0) return MT_OK;
    const mt_backend *be = mt_backend_of(t);
    if (mt_device_of(t).type == MT_DEVICE_CPU) {
        mt_loop loop;
        loop_against_contiguous(&loop, t, 1);
        return mt_run_kernel("to_data", t, copy, &loop, dtype, dst, t->dtype, mt_ptr(t));
    }
    /* another device: make a contiguous copy of the right dtype there, then move it */
    mt_tensor *c = mt_new_tensor(mt_device_of(t), dtype, t->ndim, t->shape);
    if (!c) return mt_last_status();
    mt_loop loop;
    loop_against_contiguous(&loop, t, 1);
    mt_status st = mt_run_kernel("to_data", t, copy, &loop, dtype, mt_ptr(c), t->dtype, mt_ptr(t));
    if (st == MT_OK) be->to_host(dst, mt_ptr(c), (size_t)n * mt_dtype_size(dtype));
    mt_free(c);
    return st;
}

mt_tensor *mt_to_device(mt_tensor *t, mt_device device)
{
    if (!mt_check_input("to_device", t)) return NULL;
    mt_device from = mt_device_of(t);
    if (from.type == device.type && from.index == device.index) return t;
    mt_tensor *c = mt_contiguous(t);
    mt_tensor *r = c ? mt_new_tensor(device, t->dtype, t->ndim, t->shape) : NULL;
    if (r) {
        size_t nbytes = (size_t)mt_numel(t) * mt_dtype_size(t->dtype);
        if (from.type == MT_DEVICE_CPU) mt_backend_of(r)->from_host(mt_ptr(r), mt_ptr(c), nbytes);
        else if (device.type == MT_DEVICE_CPU) mt_backend_of(c)->to_host(mt_ptr(r), mt_ptr(c), nbytes);
        else {
            void *staging = malloc(nbytes ? nbytes : 1);
            if (!staging) { mt_free_temp(c, t); mt_free(r); return MT_FAIL(MT_ERR_MEMORY, "to_device: out of memory"); }
            mt_backend_of(c)->to_host(staging, mt_ptr(c), nbytes);
            mt_backend_of(r)->from_host(mt_ptr(r), staging, nbytes);
            free(staging);
        }
    }
    mt_free_temp(c, t);
    return r;
}

/* ---------------------------------------------------------------- random */
mt_generator mt_generator_new(uint64_t seed) { return (mt_generator){ seed, 0 }; }
void mt_manual_seed(uint64_t seed) { mt_runtime_manual_seed(seed); }
mt_generator mt_get_rng_state(void)
{
    mt_generator g;
    mt_runtime_rng_state(&g.seed, &g.offset);
    return g;
}
void mt_set_rng_state(mt_generator state) { mt_runtime_set_rng_state(state.seed, state.offset); }

/* Reserves n counters of gen (or of the default generator). */
static uint64_t take_counters(mt_generator *gen, uint64_t n, uint64_t *seed)
{
    if (!gen) return mt_runtime_next_random_offset(seed, n);
    *seed = gen->seed;
    uint64_t off = gen->offset;
    gen->offset += n;
    return off;
}

static mt_status random_fill(mt_tensor *t, mt_generator *gen, mt_random_kind kind, double p0, double p1)
{
    uint64_t seed, n = (uint64_t)mt_numel(t);
    uint64_t off = take_counters(gen, n, &seed);
    if (mt_is_contiguous(t)) return mt_run_kernel("random", t, random, kind, t->dtype, (int64_t)n, seed, off, p0, p1, mt_ptr(t));
    mt_tensor *tmp = mt_new_tensor(mt_device_of(t), t->dtype, t->ndim, t->shape);
    if (!tmp) return mt_last_status();
    mt_status st = mt_run_kernel("random", t, random, kind, t->dtype, (int64_t)n, seed, off, p0, p1, mt_ptr(tmp));
    if (st == MT_OK) st = mt_copy_(t, tmp);
    mt_free(tmp);
    return st;
}

static mt_tensor *random_tensor(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape,
                                mt_random_kind kind, double p0, double p1, const char *op)
{
    if (kind != MT_RANDOM_UNIFORM && !mt_dtype_is_float(dtype)) {
        mt_set_error(MT_ERR_DTYPE, "%s: needs f32 or f64, got %s", op, mt_dtype_name(dtype));
        return NULL;
    }
    mt_tensor *t = tensor_new(op, mt_default_device(), dtype, ndim, shape);
    if (t && random_fill(t, gen, kind, p0, p1) != MT_OK) { mt_free(t); return NULL; }
    return t;
}

mt_tensor *mt_rand(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape)
{
    return random_tensor(gen, dtype, ndim, shape, MT_RANDOM_UNIFORM, 0, 1, "rand");
}
mt_tensor *mt_randn(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape)
{
    return random_tensor(gen, dtype, ndim, shape, MT_RANDOM_NORMAL, 0, 1, "randn");
}
mt_tensor *mt_uniform(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape, double low, double high)
{
    return random_tensor(gen, dtype, ndim, shape, MT_RANDOM_UNIFORM, low, high, "uniform");
}
mt_tensor *mt_normal(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape, double mean, double std)
{
    return random_tensor(gen, dtype, ndim, shape, MT_RANDOM_NORMAL, mean, std, "normal");
}
mt_tensor *mt_randint(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape, int64_t low, int64_t high)
{
    if (high <= low) { mt_set_error(MT_ERR_ARGUMENT, "randint: empty range [%" PRId64 ", %" PRId64 ")", low, high); return NULL; }
    /* the kernel floors U[low, high) only for integer dtypes */
    if (!mt_dtype_is_float(dtype))
        return random_tensor(gen, dtype, ndim, shape, MT_RANDOM_UNIFORM, (double)low, (double)high, "randint");
    /* A float dtype would get the unfloored uniform values: draw integers
       (same counters) and convert, so that f32/f64 hold integers as in PyTorch. */
    mt_tensor *ints = random_tensor(gen, MT_I64, ndim, shape, MT_RANDOM_UNIFORM, (double)low, (double)high, "randint");
    if (!ints) return NULL;
    mt_tensor *t = tensor_new("randint", mt_default_device(), dtype, ndim, shape);
    if (t && mt_copy_(t, ints) != MT_OK) { mt_free(t); t = NULL; }
    mt_free(ints);
    return t;
}

mt_status mt_uniform_(mt_tensor *t, mt_generator *gen, double low, double high)
{
    if (!t) return mt_set_error(MT_ERR_ARGUMENT, "uniform_: tensor is NULL");
    return random_fill(t, gen, MT_RANDOM_UNIFORM, low, high);
}

mt_status mt_normal_(mt_tensor *t, mt_generator *gen, double mean, double std)
{
    if (!t) return mt_set_error(MT_ERR_ARGUMENT, "normal_: tensor is NULL");
    if (!mt_dtype_is_float(t->dtype)) return mt_set_error(MT_ERR_DTYPE, "normal_: needs f32 or f64, got %s", mt_dtype_name(t->dtype));
    return random_fill(t, gen, MT_RANDOM_NORMAL, mean, std);
}

mt_tensor *mt_randperm(mt_generator *gen, int64_t n)
{
    if (n < 0) { mt_set_error(MT_ERR_ARGUMENT, "randperm: n = %" PRId64 " is negative", n); return NULL; }
    /* the host buffers below hold n doubles and n int64s: the same check as a tensor of n of them */
    if (mt_shape_check("randperm", 1, &n, sizeof(double)) < 0) return NULL;
    /* Fisher-Yates driven by uniform keys, on the host: the keys are drawn on
       the default device (the same numbers on every backend) and read back,
       and the permutation is copied to the default device */
    mt_tensor *keys = random_tensor(gen, MT_F64, 1, &n, MT_RANDOM_UNIFORM, 0, 1, "randperm");
    if (!keys) return NULL;
    double *u = malloc((size_t)(n ? n : 1) * sizeof *u);
    int64_t *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    mt_tensor *perm = NULL;
    if (!u || !p) {
        mt_set_error(MT_ERR_MEMORY, "randperm: out of memory for %" PRId64 " elements", n);
    } else if (mt_to_data(keys, MT_F64, u) == MT_OK) {
        for (int64_t i = 0; i < n; i++) p[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(u[i] * (double)(i + 1));
            if (j > i) j = i;
            int64_t tmp = p[i]; p[i] = p[j]; p[j] = tmp;
        }
        perm = tensor_new("randperm", mt_default_device(), MT_I64, 1, &n);
        if (perm) mt_backend_of(perm)->from_host(mt_ptr(perm), p, (size_t)n * sizeof *p);
    }
    free(u);
    free(p);
    mt_free(keys);
    return perm;
}

/* ---------------------------------------------------------------- queries */
int64_t mt_numel(const mt_tensor *t) { return t ? mt_shape_numel(t->ndim, t->shape) : 0; }

int64_t mt_size(const mt_tensor *t, int dim)
{
    if (!t) return -1;
    int d = mt_wrap_dim("size", dim, t->ndim);
    return d < 0 ? -1 : t->shape[d];
}

bool mt_is_contiguous(const mt_tensor *t)
{
    if (mt_numel(t) == 0) return true;   /* no element is out of place */
    int64_t expected = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (t->stride[d] != expected) return false;
        expected *= t->shape[d];
    }
    return true;
}

bool mt_same_shape(const mt_tensor *a, const mt_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++) if (a->shape[d] != b->shape[d]) return false;
    return true;
}

void *mt_data_ptr(const mt_tensor *t)
{
    if (!t || mt_device_of(t).type != MT_DEVICE_CPU) return NULL;
    return mt_ptr(t);
}

double mt_get(const mt_tensor *t, const int64_t *index)
{
    if (!t) return NAN;
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (index[d] < 0 || index[d] >= t->shape[d]) {
            mt_set_error(MT_ERR_ARGUMENT, "get: index %" PRId64 " out of range for dim %d of size %" PRId64, index[d], d, t->shape[d]);
            return NAN;
        }
        off += index[d] * t->stride[d];
    }
    size_t es = mt_dtype_size(t->dtype);
    unsigned char buf[8];
    mt_backend_of(t)->to_host(buf, (char *)t->storage->data + (size_t)(t->offset + off) * es, es);
    switch (t->dtype) {
    case MT_F32: { float v; memcpy(&v, buf, 4); return v; }
    case MT_F64: { double v; memcpy(&v, buf, 8); return v; }
    case MT_I32: { int32_t v; memcpy(&v, buf, 4); return v; }
    case MT_I64: { int64_t v; memcpy(&v, buf, 8); return (double)v; }
    default: return buf[0];
    }
}

double mt_item(const mt_tensor *t)
{
    if (!t) return NAN;
    if (mt_numel(t) != 1) {
        char s[128];
        mt_set_error(MT_ERR_SHAPE, "item: tensor of shape %s has %" PRId64 " elements, expected 1",
                     mt_shape_str(t, s, sizeof s), mt_numel(t));
        return NAN;
    }
    int64_t zero[MT_MAX_DIMS] = { 0 };
    return mt_get(t, zero);
}

const char *mt_dtype_name(mt_dtype dtype)
{
    static const char *names[] = { "f32", "f64", "i32", "i64", "u8", "bool" };
    return (unsigned)dtype < MT_DTYPE_COUNT ? names[dtype] : "invalid";
}

const char *mt_shape_text(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ", %" PRId64 : "%" PRId64, shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

const char *mt_shape_str(const mt_tensor *t, char *buf, size_t size)
{
    if (!t) { snprintf(buf, size, "(null)"); return buf; }
    return mt_shape_text(t->ndim, t->shape, buf, size);
}

/* Prints nested brackets like PyTorch, eliding the middle of long dims. */
static void print_rec(const mt_tensor *t, FILE *f, int d, int64_t *index, int indent)
{
    const int64_t edge = 3;
    if (d == t->ndim) {
        double v = mt_get(t, index);
        if (mt_dtype_is_float(t->dtype)) fprintf(f, "%.4f", v);
        else fprintf(f, "%lld", (long long)v);
        return;
    }
    fputc('[', f);
    int64_t n = t->shape[d];
    for (int64_t i = 0; i < n; i++) {
        if (n > 2 * edge && i == edge) {
            fprintf(f, d + 1 == t->ndim ? "..., " : "...,\n%*s", d + 1 == t->ndim ? 0 : indent + 1, "");
            i = n - edge;
        }
        index[d] = i;
        print_rec(t, f, d + 1, index, indent + 1);
        if (i + 1 < n) {
            if (d + 1 == t->ndim) fputs(", ", f);
            else fprintf(f, ",\n%*s", indent + 1, "");
        }
    }
    fputc(']', f);
}

void mt_print(const mt_tensor *t, FILE *f)
{
    if (!t) { fprintf(f, "tensor(NULL)\n"); return; }
    char s[128];
    int64_t index[MT_MAX_DIMS] = { 0 };
    fprintf(f, "tensor(");
    print_rec(t, f, 0, index, 7);
    fprintf(f, ", shape=%s, dtype=%s%s%s)\n", mt_shape_str(t, s, sizeof s), mt_dtype_name(t->dtype),
            t->requires_grad ? ", requires_grad" : "", t->grad_fn ? ", grad_fn" : "");
}

/* ---------------------------------------------------------------- in place */
mt_status mt_fill_(mt_tensor *t, double value)
{
    if (!t) return mt_set_error(MT_ERR_ARGUMENT, "fill_: tensor is NULL");
    if (!value_fits("fill_", t->dtype, value)) return mt_last_status();
    if (mt_is_contiguous(t)) return mt_run_kernel("fill_", t, fill, t->dtype, mt_numel(t), mt_ptr(t), value);
    mt_tensor *v = mt_full(t->dtype, 0, NULL, value);
    if (!v) return mt_last_status();
    mt_status st = mt_copy_(t, v);
    mt_free(v);
    return st;
}

mt_status mt_zero_(mt_tensor *t) { return mt_fill_(t, 0); }

mt_status mt_copy_(mt_tensor *dst, const mt_tensor *src)
{
    if (!dst || !src) return mt_set_error(MT_ERR_ARGUMENT, "copy_: %s is NULL", dst ? "source" : "destination");
    if (!mt_check_same_device("copy_", dst, src)) return mt_last_status();
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    mt_tensor *pair[2] = { dst, (mt_tensor *)src };
    if (!mt_broadcast_shapes("copy_", 2, pair, &ndim, shape)) return mt_last_status();
    if (ndim != dst->ndim || mt_shape_numel(ndim, shape) != mt_numel(dst)) {
        char a[128], b[128];
        return mt_set_error(MT_ERR_SHAPE, "copy_: source of shape %s does not broadcast to destination shape %s",
                            mt_shape_str(src, a, sizeof a), mt_shape_str(dst, b, sizeof b));
    }
    mt_loop loop;
    mt_tensor *srcs[1] = { (mt_tensor *)src };
    mt_loop_build(&loop, dst, 1, srcs);
    return mt_run_kernel("copy_", dst, copy, &loop, dst->dtype, mt_ptr(dst), src->dtype, mt_ptr(src));
}
