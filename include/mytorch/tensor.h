/*
 * tensor.h - n-dimensional arrays, views, creation and step scopes.
 *
 * A tensor is a view (shape, strides in elements, offset) onto a reference-
 * counted storage on one device. Views (reshape, transpose, slice, expand...)
 * share the storage; contiguous() copies only when needed.
 *
 * Ownership (DESIGN.md "Memory"): a tensor created while a step scope is open
 * belongs to that scope and is freed when it closes, unless mt_keep() takes it
 * out. A tensor created with no scope open belongs to the caller, who frees
 * it with mt_free(). Parameters and buffers belong to their module.
 *
 * Errors: functions that make a tensor return NULL on error and record a
 * message (mt_last_error()); given a NULL input they return NULL, so a chain
 * of calls can be checked once at the end.
 */
#ifndef MT_TENSOR_H
#define MT_TENSOR_H

#include <stdio.h>
#include "mytorch/runtime.h"

typedef struct mt_tensor mt_tensor;
typedef struct mt_node mt_node;

typedef struct mt_storage {
    void *data;           /* device pointer */
    size_t nbytes;
    mt_device device;
    int refcount;
    bool borrowed;        /* data belongs to the user (mt_from_blob): never freed */
} mt_storage;

struct mt_tensor {
    mt_dtype dtype;
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    int64_t stride[MT_MAX_DIMS];   /* in elements */
    int64_t offset;                /* in elements, into storage */
    mt_storage *storage;

    /* autograd */
    bool requires_grad;
    bool retains_grad;    /* a non-leaf that keeps its .grad (mt_retain_grad) */
    mt_tensor *grad;      /* accumulated gradient (leaves, or retains_grad) */
    mt_node *grad_fn;     /* the node that made this tensor; NULL for leaves */
    mt_tensor *tangent;   /* forward-mode tangent, or NULL */
    bool graph_freed;     /* its graph was released: backward through it is an error */

    /* ownership */
    int64_t scope_slot;   /* slot in the scope registry, -1 when owned by the caller */
    bool kept;            /* mt_keep'd: survives its scope's end, which cuts its graph */
    const char *name;     /* optional, for messages (not owned) */
    struct mt_companions *companions;  /* intermediates of the op that made it with no scope open,
                                          freed with it (docs/ownership.md) */
};

/* A shape argument pair: mt_zeros(MT_F32, MT_SHAPE(3, 4)) */
#define MT_SHAPE(...) \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* ---------------------------------------------------------------- step scopes */
typedef struct mt_scope { int mark; } mt_scope;
mt_scope mt_scope_begin(void);
/* Frees every tensor created since the matching begin that was not kept. */
void mt_scope_end(mt_scope scope);
/* Takes t out of its scope: the caller now owns it (mt_free). Returns t. */
mt_tensor *mt_keep(mt_tensor *t);
/* Frees t now (owned or scoped). NULL is ignored. */
void mt_free(mt_tensor *t);

/* ---------------------------------------------------------------- devices */
mt_device mt_cpu(void);
/* The default device for new tensors: MYTORCH_DEVICE (cpu, cuda, cuda:N,
   cuda-emu) when set, else cuda where a GPU is usable, else cpu. */
mt_device mt_default_device(void);
/* Makes device the default; a device that is not available here is an
   error (MT_ERR_DEVICE, saying why) and changes nothing. */
mt_status mt_set_default_device(mt_device device);
/* "cpu", "cuda:0", ... into *out; MT_ERR_ARGUMENT for anything else. */
mt_status mt_device_from_string(const char *text, mt_device *out);
const char *mt_device_name(mt_device device);
mt_tensor *mt_to_device(mt_tensor *t, mt_device device);

/* ---------------------------------------------------------------- creation */
mt_tensor *mt_empty(mt_dtype dtype, int ndim, const int64_t *shape);
mt_tensor *mt_zeros(mt_dtype dtype, int ndim, const int64_t *shape);
mt_tensor *mt_ones(mt_dtype dtype, int ndim, const int64_t *shape);
mt_tensor *mt_full(mt_dtype dtype, int ndim, const int64_t *shape, double value);
mt_tensor *mt_scalar(mt_dtype dtype, double value);           /* 0-d */
mt_tensor *mt_empty_on(mt_device device, mt_dtype dtype, int ndim, const int64_t *shape);
mt_tensor *mt_zeros_like(const mt_tensor *t);
mt_tensor *mt_ones_like(const mt_tensor *t);
mt_tensor *mt_empty_like(const mt_tensor *t);
/* [start, start+step, ...) strictly before end. */
mt_tensor *mt_arange(mt_dtype dtype, double start, double end, double step);
/* Copies count elements of dtype from a host buffer. */
mt_tensor *mt_from_data(mt_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* Wraps a host buffer without copying; the buffer must outlive the tensor. */
mt_tensor *mt_from_blob(mt_dtype dtype, int ndim, const int64_t *shape, void *data);
/* Copies a tensor's elements (row-major, any layout) into a host buffer of
   mt_numel(t) * mt_dtype_size(dtype) bytes, converting to dtype. */
mt_status mt_to_data(const mt_tensor *t, mt_dtype dtype, void *dst);

/* ---------------------------------------------------------------- random */
/* A counter-based (Philox4x32-10) generator: draws are a function of
   (seed, offset) only, so the same seed gives the same numbers on every
   backend and thread count. */
typedef struct mt_generator { uint64_t seed; uint64_t offset; } mt_generator;
mt_generator mt_generator_new(uint64_t seed);
void mt_manual_seed(uint64_t seed);   /* seeds the default generator */
/* The default generator's state (torch.get_rng_state / set_rng_state): save
   it with a checkpoint and restore it to resume dropout masks and other
   draws exactly where a run stopped. */
mt_generator mt_get_rng_state(void);
void mt_set_rng_state(mt_generator state);
/* gen may be NULL: the default generator. */
mt_tensor *mt_rand(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape);    /* U[0,1) */
mt_tensor *mt_randn(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape);   /* N(0,1) */
mt_tensor *mt_uniform(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape, double low, double high);
mt_tensor *mt_normal(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape, double mean, double std);
/* Integers uniform in [low, high). */
mt_tensor *mt_randint(mt_generator *gen, mt_dtype dtype, int ndim, const int64_t *shape, int64_t low, int64_t high);
/* In place, no autograd. */
mt_status mt_uniform_(mt_tensor *t, mt_generator *gen, double low, double high);
mt_status mt_normal_(mt_tensor *t, mt_generator *gen, double mean, double std);
/* A random permutation of 0..n-1 (MT_I64). */
mt_tensor *mt_randperm(mt_generator *gen, int64_t n);

/* ---------------------------------------------------------------- queries */
int64_t mt_numel(const mt_tensor *t);
int64_t mt_size(const mt_tensor *t, int dim);       /* dim may be negative */
bool mt_is_contiguous(const mt_tensor *t);
bool mt_same_shape(const mt_tensor *a, const mt_tensor *b);
mt_device mt_device_of(const mt_tensor *t);
/* Host pointer to the first element of a CPU tensor (NULL otherwise). */
void *mt_data_ptr(const mt_tensor *t);
/* The value of a one-element tensor as double (NAN on error). */
double mt_item(const mt_tensor *t);
/* Value at a multi-index (slow; for tests and printing). */
double mt_get(const mt_tensor *t, const int64_t *index);
const char *mt_dtype_name(mt_dtype dtype);
/* "[2, 3, 4]" into buf. */
const char *mt_shape_str(const mt_tensor *t, char *buf, size_t size);
/* The same for a shape given as ndim sizes. */
const char *mt_shape_text(int ndim, const int64_t *shape, char *buf, size_t size);
void mt_print(const mt_tensor *t, FILE *f);

/* ---------------------------------------------------------------- in place, no autograd */
mt_status mt_fill_(mt_tensor *t, double value);
mt_status mt_zero_(mt_tensor *t);
/* dst[...] = src[...] (same shape, or src broadcastable); casts dtype. */
mt_status mt_copy_(mt_tensor *dst, const mt_tensor *src);

/* ---------------------------------------------------------------- views and layout (differentiable) */
mt_tensor *mt_reshape(mt_tensor *t, int ndim, const int64_t *shape);  /* one dim may be -1 */
mt_tensor *mt_view(mt_tensor *t, int ndim, const int64_t *shape);     /* like reshape, never copies */
mt_tensor *mt_flatten(mt_tensor *t, int start_dim, int end_dim);
mt_tensor *mt_transpose(mt_tensor *t, int dim0, int dim1);
mt_tensor *mt_permute(mt_tensor *t, const int *dims);
/* Elements start..end-1 (step > 0) along dim; negative indices count from the end. */
mt_tensor *mt_slice(mt_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
mt_tensor *mt_narrow(mt_tensor *t, int dim, int64_t start, int64_t length);
/* Index i of dim, which is removed. */
mt_tensor *mt_select(mt_tensor *t, int dim, int64_t index);
mt_tensor *mt_expand(mt_tensor *t, int ndim, const int64_t *shape);   /* -1 keeps a dim */
mt_tensor *mt_squeeze(mt_tensor *t, int dim);    /* dim of size 1 */
mt_tensor *mt_unsqueeze(mt_tensor *t, int dim);
mt_tensor *mt_contiguous(mt_tensor *t);          /* t itself when already contiguous */
mt_tensor *mt_clone(mt_tensor *t);               /* always a fresh contiguous copy */
mt_tensor *mt_to_dtype(mt_tensor *t, mt_dtype dtype);
mt_tensor *mt_concat(int n, mt_tensor *const *ts, int dim);
mt_tensor *mt_stack(int n, mt_tensor *const *ts, int dim);
/* Splits dim into pieces of size split_size (the last may be smaller); writes
   up to max_out views into out and returns how many there are (-1 on error). */
int mt_split(mt_tensor *t, int64_t split_size, int dim, mt_tensor **out, int max_out);
int mt_chunk(mt_tensor *t, int chunks, int dim, mt_tensor **out);

#endif
