/*
 * loader.c - the prefetching batch loader of data.h (docs/data-loading.md):
 * an epoch's plan (the order, buckets, the batches' order), a background
 * thread that fills a ring of batch buffers from the dataset's callback,
 * and the padded collate of variable-length fields.
 *
 * The plan of epoch e, made by start on the consumer's thread:
 *
 *   order    a permutation of the items: Fisher-Yates from the end, the swap
 *            of position i with j ~ U[0, i] drawn as hash(hash(hash(seed,
 *            SHUFFLE), e), i) mod (i + 1); the identity without shuffle; or
 *            the dataset's own order
 *   buckets  (bucket > 0) the order cut into runs of bucket * B items, each
 *            sorted by decreasing length (ties keep their order)
 *   chunks   order[c B .. (c + 1) B) is chunk c; batch b is chunk c(b), where
 *            c is the identity, or with buckets and shuffle a Fisher-Yates
 *            permutation of the chunks keyed by (seed, BATCHES, e)
 *   sort     each chunk by decreasing length
 *
 * Nothing in it depends on the thread, on how far ahead the thread ran, or
 * on where the epoch was started: batch b of epoch e is a function of
 * (dataset, seed, e, b), and start(e, b) resumes an epoch exactly.
 *
 * The ring: slots hold batches [released, produced); the worker fills slot
 * produced % n_slots while produced - released < n_slots; the consumer takes
 * batch next_batch once produced > next_batch and gives it back (released =
 * b + 1) at its next call. With n_slots = prefetch + 1 the worker runs up to
 * `prefetch` batches ahead of the one the consumer holds. start bumps a
 * generation number and waits until the worker is not filling, so a fill
 * begun for the old epoch is dropped and the plan can be rewritten.
 */
#include "mytorch/data.h"
#include "mytorch/cuda.h"
#include "mytorch/runtime.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- counter-based draws */
/* splitmix64's finaliser (Steele, Lea and Flood 2014): a bijective 64-bit
   mix with full avalanche, so hashing a counter gives independent-looking
   draws and a key chain (seed, tag, epoch, i) needs no state. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t mt_data_hash(uint64_t key, uint64_t value) { return mix64(key ^ mix64(value)); }

enum { TAG_SHUFFLE = 0x5348, TAG_BATCHES = 0x4241 };   /* separate streams for the items' and the batches' order */

/* A Fisher-Yates permutation of 0..n-1 keyed by key: the draw for position
   i is U[0, i] from counter i (the modulo's bias is at most n / 2^64). */
static void fisher_yates(int64_t *perm, int64_t n, uint64_t key)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(mt_data_hash(key, (uint64_t)i) % ((uint64_t)i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---------------------------------------------------------------- the loader */
typedef struct slot {
    void *data[MT_DATA_MAX_FIELDS];
    size_t capacity[MT_DATA_MAX_FIELDS];      /* bytes */
    int64_t *lengths[MT_DATA_MAX_FIELDS];     /* [B], variable fields only */
    int64_t longest[MT_DATA_MAX_FIELDS];      /* a variable field's padded length in this batch */
    int64_t *items;                           /* [B] */
    int64_t index, size;
} slot;

struct mt_loader {
    mt_dataset ds;
    mt_loader_opts opts;
    int64_t n_batches;
    int64_t step_elems[MT_DATA_MAX_FIELDS];   /* elements of one item (fixed) or of one step (variable) */
    int sort_field;                           /* the first variable field, or -1 */
    int64_t *lengths[MT_DATA_MAX_FIELDS];     /* [n] per variable field */
    int64_t *order;                           /* [n]: this epoch's items, chunk after chunk */
    int64_t *chunk_of;                        /* [n_batches]: batch -> chunk, or NULL (the identity) */
    bool threaded;
    int n_slots;
    slot *slots;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* the worker waits here for room, a new epoch, or quit */
    pthread_cond_t ready_cv;    /* the consumer waits here for a batch, an error, or an idle worker */

    /* guarded by mu when threaded */
    bool started;               /* an epoch is running: the worker may fill */
    int64_t epoch;
    int64_t produced;           /* batches < produced are ready */
    int64_t released;           /* batches < released were given back: their slots are free */
    int64_t held;               /* the batch the consumer holds, or -1 */
    int64_t next_batch;         /* the batch the consumer takes next */
    uint64_t generation;        /* bumped by start: a fill begun earlier is discarded */
    bool busy;                  /* the worker is filling a slot (reading the plan) */
    bool quit;
    mt_status error;            /* the worker's error and its message (mt_last_error is per thread) */
    char message[1024];

    /* the consumer's own */
    bool failed;
    double wait_seconds;
};

static void *buffer_alloc(const mt_loader *L, size_t bytes)
{
    if (bytes == 0) bytes = 1;
    return L->opts.pinned ? mt_pinned_alloc(bytes) : malloc(bytes);
}

static void buffer_free(const mt_loader *L, void *p)
{
    if (!p) return;
    if (L->opts.pinned) mt_pinned_free(p);
    else free(p);
}

/* Writes count copies of v, converted to dtype, at dst. */
static void fill_value(void *dst, mt_dtype dtype, int64_t count, double v)
{
    if (count <= 0) return;
    if (v == 0) { memset(dst, 0, (size_t)count * mt_dtype_size(dtype)); return; }
    switch (dtype) {
    case MT_F32: for (int64_t i = 0; i < count; i++) ((float *)dst)[i] = (float)v; break;
    case MT_F64: for (int64_t i = 0; i < count; i++) ((double *)dst)[i] = v; break;
    case MT_I32: for (int64_t i = 0; i < count; i++) ((int32_t *)dst)[i] = (int32_t)v; break;
    case MT_I64: for (int64_t i = 0; i < count; i++) ((int64_t *)dst)[i] = (int64_t)v; break;
    case MT_U8: memset(dst, (int)(uint8_t)v, (size_t)count); break;
    case MT_BOOL: memset(dst, v != 0, (size_t)count); break;
    default: break;
    }
}

/* Makes batch b of `epoch` in s. Runs on the worker (or, without a thread,
   on the consumer); on failure writes the message to msg. */
static mt_status fill(mt_loader *L, slot *s, int64_t epoch, int64_t b, char *msg, size_t msg_size)
{
    const mt_dataset *ds = &L->ds;
    const int64_t B = L->opts.batch_size;
    const int64_t c = L->chunk_of ? L->chunk_of[b] : b;
    const int64_t first = c * B, size = ds->n - first < B ? ds->n - first : B;
    s->index = b;
    s->size = size;
    memcpy(s->items, L->order + first, (size_t)size * sizeof *s->items);

    /* variable fields: the batch's longest row sets the padded length */
    for (int f = 0; f < ds->n_fields; f++) {
        if (!ds->fields[f].variable) continue;
        int64_t longest = 0;
        for (int64_t r = 0; r < size; r++) {
            const int64_t len = L->lengths[f][s->items[r]];
            s->lengths[f][r] = len;
            if (len > longest) longest = len;
        }
        s->longest[f] = longest;
        const size_t need = (size_t)size * (size_t)longest * (size_t)L->step_elems[f] * mt_dtype_size(ds->fields[f].dtype);
        if (need > s->capacity[f]) {   /* grow; nothing to keep */
            const size_t cap = need + need / 2;
            buffer_free(L, s->data[f]);
            s->data[f] = buffer_alloc(L, cap);
            s->capacity[f] = s->data[f] ? cap : 0;
            if (!s->data[f]) {
                snprintf(msg, msg_size, "loader: out of memory for batch %" PRId64 " of epoch %" PRId64 " (field '%s': %zu bytes)",
                         b, epoch, ds->fields[f].name ? ds->fields[f].name : "?", cap);
                return MT_ERR_MEMORY;
            }
        }
    }

    void *dst[MT_DATA_MAX_FIELDS];
    for (int64_t r = 0; r < size; r++) {
        const int64_t item = s->items[r];
        for (int f = 0; f < ds->n_fields; f++) {
            const size_t es = mt_dtype_size(ds->fields[f].dtype);
            const int64_t row_elems = L->step_elems[f] * (ds->fields[f].variable ? s->longest[f] : 1);
            dst[f] = (char *)s->data[f] + (size_t)(r * row_elems) * es;
        }
        const mt_data_pos pos = { L->opts.seed, epoch, b, r };
        mt_clear_error();
        mt_status st = ds->get(ds->ctx, item, &pos, dst);
        if (st != MT_OK) {
            const char *why = mt_last_error();
            snprintf(msg, msg_size, "loader: batch %" PRId64 " of epoch %" PRId64 ", item %" PRId64 ": %s", b, epoch, item,
                     why[0] ? why : "the dataset's get failed without a message");
            return st;
        }
        /* the padding after each variable field's own length */
        for (int f = 0; f < ds->n_fields; f++) {
            if (!ds->fields[f].variable) continue;
            const int64_t len = s->lengths[f][r], step = L->step_elems[f];
            fill_value((char *)dst[f] + (size_t)(len * step) * mt_dtype_size(ds->fields[f].dtype), ds->fields[f].dtype,
                       (s->longest[f] - len) * step, ds->fields[f].pad);
        }
    }
    return MT_OK;
}

static void *worker_main(void *arg)
{
    mt_loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->quit && !(L->started && L->error == MT_OK && L->produced < L->n_batches &&
                             L->produced - L->released < L->n_slots))
            pthread_cond_wait(&L->work_cv, &L->mu);
        if (L->quit) break;
        const int64_t b = L->produced, epoch = L->epoch;
        const uint64_t gen = L->generation;
        slot *s = &L->slots[b % L->n_slots];
        L->busy = true;
        pthread_mutex_unlock(&L->mu);

        char msg[sizeof L->message];
        mt_status st = fill(L, s, epoch, b, msg, sizeof msg);

        pthread_mutex_lock(&L->mu);
        L->busy = false;
        if (gen == L->generation) {     /* else start() began another epoch meanwhile: drop it */
            if (st == MT_OK) {
                L->produced = b + 1;
            } else {
                L->error = st;
                memcpy(L->message, msg, sizeof msg);
            }
        }
        pthread_cond_broadcast(&L->ready_cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static void free_slots(mt_loader *L)
{
    if (!L->slots) return;
    for (int i = 0; i < L->n_slots; i++) {
        for (int f = 0; f < MT_DATA_MAX_FIELDS; f++) {
            buffer_free(L, L->slots[i].data[f]);
            free(L->slots[i].lengths[f]);
        }
        free(L->slots[i].items);
    }
    free(L->slots);
    L->slots = NULL;
}

static void free_loader(mt_loader *L)
{
    free_slots(L);
    for (int f = 0; f < MT_DATA_MAX_FIELDS; f++) free(L->lengths[f]);
    free(L->order);
    free(L->chunk_of);
    free(L);
}

static const char *field_name(const mt_data_field *f) { return f->name ? f->name : "?"; }

/* Checks the dataset's fields and sets step_elems; B rows of any fixed
   field must fit in memory. */
static mt_status check_fields(mt_loader *L)
{
    const mt_dataset *ds = &L->ds;
    if (ds->n < 0) return mt_set_error(MT_ERR_ARGUMENT, "loader_new: the dataset has %" PRId64 " items", ds->n);
    if (ds->n_fields < 1 || ds->n_fields > MT_DATA_MAX_FIELDS)
        return mt_set_error(MT_ERR_ARGUMENT, "loader_new: a dataset has 1 to %d fields, got %d", MT_DATA_MAX_FIELDS, ds->n_fields);
    if (!ds->get) return mt_set_error(MT_ERR_ARGUMENT, "loader_new: the dataset has no get callback");
    L->sort_field = -1;
    for (int f = 0; f < ds->n_fields; f++) {
        const mt_data_field *fd = &ds->fields[f];
        if (mt_dtype_size(fd->dtype) == 0)
            return mt_set_error(MT_ERR_ARGUMENT, "loader_new: field %d ('%s') has no valid dtype", f, field_name(fd));
        if (fd->ndim < 0 || fd->ndim > MT_MAX_DIMS - 1 || (fd->variable && fd->ndim < 1))
            return mt_set_error(MT_ERR_ARGUMENT, "loader_new: field %d ('%s'): an item has %s dims, got %d", f, field_name(fd),
                                fd->variable ? "1 to 7 (the first one variable)" : "0 to 7", fd->ndim);
        int64_t elems = 1;
        for (int d = fd->variable ? 1 : 0; d < fd->ndim; d++) {
            if (fd->shape[d] < 0 || (fd->shape[d] > 0 && elems > INT64_MAX / 16 / fd->shape[d]))
                return mt_set_error(MT_ERR_ARGUMENT, "loader_new: field %d ('%s'): bad item dim %d = %" PRId64, f,
                                    field_name(fd), d, fd->shape[d]);
            elems *= fd->shape[d];
        }
        L->step_elems[f] = elems;
        if (!fd->variable && elems > 0 && (uint64_t)L->opts.batch_size > SIZE_MAX / 4 / mt_dtype_size(fd->dtype) / (uint64_t)elems)
            return mt_set_error(MT_ERR_MEMORY, "loader_new: field '%s': a batch of %" PRId64 " items of %" PRId64
                                " elements is too large", field_name(fd), L->opts.batch_size, elems);
        if (fd->variable && L->sort_field < 0) L->sort_field = f;
    }
    if (L->sort_field >= 0 && !ds->length)
        return mt_set_error(MT_ERR_ARGUMENT, "loader_new: field '%s' is variable but the dataset has no length callback",
                            field_name(&ds->fields[L->sort_field]));
    if ((L->opts.bucket > 0 || L->opts.sort) && L->sort_field < 0)
        return mt_set_error(MT_ERR_ARGUMENT, "loader_new: bucketing and sorting need a variable field (none of the %d is)",
                            ds->n_fields);
    return MT_OK;
}

mt_loader *mt_loader_new(const mt_dataset *ds, const mt_loader_opts *opts)
{
    if (!ds || !opts) { mt_set_error(MT_ERR_ARGUMENT, "loader_new: NULL %s", ds ? "options" : "dataset"); return NULL; }
    if (opts->batch_size < 1) {
        mt_set_error(MT_ERR_ARGUMENT, "loader_new: batch_size %" PRId64 " < 1", opts->batch_size);
        return NULL;
    }
    if (opts->bucket < 0 || opts->bucket > INT64_MAX / opts->batch_size) {
        mt_set_error(MT_ERR_ARGUMENT, "loader_new: bucket %" PRId64 " (batches per bucket) must be >= 0", opts->bucket);
        return NULL;
    }
    mt_loader *L = calloc(1, sizeof *L);
    if (!L) { mt_set_error(MT_ERR_MEMORY, "loader_new: out of memory"); return NULL; }
    L->ds = *ds;
    L->opts = *opts;
    if (check_fields(L) != MT_OK) { free_loader(L); return NULL; }
    const int64_t n = ds->n, B = opts->batch_size;
    L->n_batches = opts->drop_last ? n / B : n / B + (n % B != 0);
    L->threaded = opts->prefetch >= 0;
    L->held = -1;
    /* prefetch batches ahead + the one the consumer holds; never more than an epoch has */
    int64_t ahead = opts->prefetch == 0 ? 2 : opts->prefetch;
    if (ahead > L->n_batches) ahead = L->n_batches > 0 ? L->n_batches : 1;
    L->n_slots = L->threaded ? (int)ahead + 1 : 1;

    bool ok = (L->order = malloc((size_t)(n ? n : 1) * sizeof *L->order)) != NULL;
    if (ok && opts->bucket > 0 && opts->shuffle)
        ok = (L->chunk_of = malloc((size_t)(L->n_batches ? L->n_batches : 1) * sizeof *L->chunk_of)) != NULL;
    /* every item's lengths, once */
    for (int f = 0; ok && f < ds->n_fields; f++) {
        if (!ds->fields[f].variable) continue;
        if (!(ok = (L->lengths[f] = malloc((size_t)(n ? n : 1) * sizeof *L->lengths[f])) != NULL)) break;
        for (int64_t i = 0; i < n; i++) {
            int64_t len = ds->length(ds->ctx, i, f);
            if (len < 0 || (L->step_elems[f] > 0 && len > INT64_MAX / 16 / L->step_elems[f] / B)) {
                mt_set_error(MT_ERR_ARGUMENT, "loader_new: item %" PRId64 " has length %" PRId64 " in field '%s'", i, len,
                             field_name(&ds->fields[f]));
                free_loader(L);
                return NULL;
            }
            L->lengths[f][i] = len;
        }
    }
    L->slots = ok ? calloc((size_t)L->n_slots, sizeof *L->slots) : NULL;
    ok = L->slots != NULL;
    for (int i = 0; ok && i < L->n_slots; i++) {
        slot *s = &L->slots[i];
        ok = (s->items = malloc((size_t)B * sizeof *s->items)) != NULL;
        for (int f = 0; ok && f < ds->n_fields; f++) {
            if (ds->fields[f].variable) {
                ok = (s->lengths[f] = malloc((size_t)B * sizeof *s->lengths[f])) != NULL;
                continue;   /* its buffer grows with the batches' lengths */
            }
            s->capacity[f] = (size_t)B * (size_t)L->step_elems[f] * mt_dtype_size(ds->fields[f].dtype);
            ok = (s->data[f] = buffer_alloc(L, s->capacity[f])) != NULL;
        }
    }
    if (!ok) {
        mt_set_error(MT_ERR_MEMORY, "loader_new: out of memory (%d batch buffers of %" PRId64 " items)", L->n_slots, B);
        free_loader(L);
        return NULL;
    }
    if (L->threaded) {
        pthread_mutex_init(&L->mu, NULL);
        pthread_cond_init(&L->work_cv, NULL);
        pthread_cond_init(&L->ready_cv, NULL);
        int rc = pthread_create(&L->thread, NULL, worker_main, L);
        if (rc != 0) {
            mt_set_error(MT_ERR_MEMORY, "loader_new: cannot start the prefetch thread (%s)", strerror(rc));
            mt_loader_free(L);   /* thread_started is false: nothing to join */
            return NULL;
        }
        L->thread_started = true;
    }
    return L;
}

void mt_loader_free(mt_loader *L)
{
    if (!L) return;
    if (L->thread_started) {
        /* the worker finishes the batch it may be filling, sees quit and returns */
        pthread_mutex_lock(&L->mu);
        L->quit = true;
        pthread_cond_broadcast(&L->work_cv);
        pthread_mutex_unlock(&L->mu);
        pthread_join(L->thread, NULL);
    }
    if (L->threaded) {   /* the mutex and conditions exist */
        pthread_cond_destroy(&L->work_cv);
        pthread_cond_destroy(&L->ready_cv);
        pthread_mutex_destroy(&L->mu);
    }
    free_loader(L);
}

int64_t mt_loader_batches(const mt_loader *L) { return L ? L->n_batches : 0; }

/* ---------------------------------------------------------------- the plan */
typedef struct by_length { int64_t length, position, item; } by_length;

/* Decreasing length; equal lengths keep their order (a stable sort). */
static int cmp_by_length(const void *pa, const void *pb)
{
    const by_length *a = pa, *b = pb;
    if (a->length != b->length) return a->length > b->length ? -1 : 1;
    return (a->position > b->position) - (a->position < b->position);
}

/* Sorts order[first, first + count) by decreasing length of the sort field. */
static void sort_run(mt_loader *L, by_length *tmp, int64_t first, int64_t count)
{
    const int64_t *len = L->lengths[L->sort_field];
    for (int64_t i = 0; i < count; i++) {
        const int64_t item = L->order[first + i];
        tmp[i] = (by_length){ len[item], i, item };
    }
    qsort(tmp, (size_t)count, sizeof *tmp, cmp_by_length);
    for (int64_t i = 0; i < count; i++) L->order[first + i] = tmp[i].item;
}

static mt_status make_plan(mt_loader *L, int64_t epoch)
{
    const mt_dataset *ds = &L->ds;
    const int64_t n = ds->n, B = L->opts.batch_size;
    if (ds->order) {
        mt_status st = ds->order(ds->ctx, L->opts.seed, epoch, L->order);
        if (st != MT_OK) return st;
        /* it must be a permutation: anything else would read past the items */
        bool *seen = calloc((size_t)(n ? n : 1), sizeof *seen);
        if (!seen) return mt_set_error(MT_ERR_MEMORY, "loader_start: out of memory");
        for (int64_t i = 0; i < n; i++) {
            const int64_t it = L->order[i];
            if (it < 0 || it >= n || seen[it]) {
                free(seen);
                return mt_set_error(MT_ERR_ARGUMENT, "loader_start: the dataset's order for epoch %" PRId64 " is not a "
                                    "permutation of 0..%" PRId64 " (position %" PRId64 " holds %" PRId64 ")",
                                    epoch, n - 1, i, it);
            }
            seen[it] = true;
        }
        free(seen);
    } else if (L->opts.shuffle) {
        fisher_yates(L->order, n, mt_data_hash(mt_data_hash(L->opts.seed, TAG_SHUFFLE), (uint64_t)epoch));
    } else {
        for (int64_t i = 0; i < n; i++) L->order[i] = i;
    }
    if (L->opts.bucket > 0 || L->opts.sort) {
        const int64_t run = L->opts.bucket > 0 ? L->opts.bucket * B : B;
        by_length *tmp = malloc((size_t)(run < n ? run : (n ? n : 1)) * sizeof *tmp);
        if (!tmp) return mt_set_error(MT_ERR_MEMORY, "loader_start: out of memory");
        for (int64_t first = 0; first < n; first += run) sort_run(L, tmp, first, n - first < run ? n - first : run);
        free(tmp);
    }
    if (L->chunk_of)
        fisher_yates(L->chunk_of, L->n_batches, mt_data_hash(mt_data_hash(L->opts.seed, TAG_BATCHES), (uint64_t)epoch));
    return MT_OK;
}

mt_status mt_loader_start(mt_loader *L, int64_t epoch, int64_t first_batch)
{
    if (!L) return mt_set_error(MT_ERR_ARGUMENT, "loader_start: NULL loader");
    if (epoch < 0) return mt_set_error(MT_ERR_ARGUMENT, "loader_start: epoch %" PRId64 " < 0", epoch);
    if (first_batch < 0 || first_batch > L->n_batches)
        return mt_set_error(MT_ERR_ARGUMENT, "loader_start: first_batch %" PRId64 " outside [0, %" PRId64 "] (batches per epoch)",
                            first_batch, L->n_batches);
    if (L->threaded) {
        /* stop the worker taking work and wait until it is not filling, so
           that the plan and the ring are ours */
        pthread_mutex_lock(&L->mu);
        L->started = false;
        L->generation++;
        while (L->busy) pthread_cond_wait(&L->ready_cv, &L->mu);
        pthread_mutex_unlock(&L->mu);
    }
    mt_status st = make_plan(L, epoch);
    if (L->threaded) pthread_mutex_lock(&L->mu);
    L->epoch = epoch;
    L->produced = L->released = L->next_batch = first_batch;
    L->held = -1;
    L->error = MT_OK;
    L->message[0] = '\0';
    L->failed = st != MT_OK;
    L->started = st == MT_OK;
    if (L->threaded) {
        pthread_cond_broadcast(&L->work_cv);
        pthread_mutex_unlock(&L->mu);
    }
    return st;
}

static void to_batch(const mt_loader *L, const slot *s, mt_batch *b)
{
    const mt_dataset *ds = &L->ds;
    memset(b, 0, sizeof *b);
    b->epoch = L->epoch;
    b->index = s->index;
    b->size = s->size;
    b->items = s->items;
    b->n_fields = ds->n_fields;
    for (int f = 0; f < ds->n_fields; f++) {
        const mt_data_field *fd = &ds->fields[f];
        mt_batch_field *bf = &b->fields[f];
        bf->dtype = fd->dtype;
        bf->ndim = fd->ndim + 1;
        bf->shape[0] = s->size;
        for (int d = 0; d < fd->ndim; d++) bf->shape[d + 1] = fd->shape[d];
        if (fd->variable) {
            bf->shape[1] = s->longest[f];
            bf->lengths = s->lengths[f];
        }
        bf->data = s->data[f];
    }
}

bool mt_loader_next(mt_loader *L, mt_batch *batch)
{
    if (!L || !batch) { mt_set_error(MT_ERR_ARGUMENT, "loader_next: NULL %s", L ? "batch" : "loader"); return false; }
    if (!L->started) {
        L->failed = true;
        mt_set_error(MT_ERR_STATE, "loader_next: no epoch started (call mt_loader_start first)");
        return false;
    }
    if (!L->threaded) {
        const int64_t b = L->next_batch;
        if (b >= L->n_batches) return false;
        const double t0 = mt_clock_seconds();
        char msg[sizeof L->message];
        mt_status st = fill(L, &L->slots[0], L->epoch, b, msg, sizeof msg);
        L->wait_seconds += mt_clock_seconds() - t0;   /* made on demand: all of it is waiting */
        if (st != MT_OK) {
            L->failed = true;
            mt_set_error(st, "%s", msg);
            return false;
        }
        L->next_batch = b + 1;
        to_batch(L, &L->slots[0], batch);
        return true;
    }

    pthread_mutex_lock(&L->mu);
    if (L->held >= 0) {   /* give the previous batch's slot back to the worker */
        L->released = L->held + 1;
        L->held = -1;
        pthread_cond_signal(&L->work_cv);
    }
    const int64_t b = L->next_batch;
    if (b >= L->n_batches) { pthread_mutex_unlock(&L->mu); return false; }
    if (L->produced <= b && L->error == MT_OK) {
        const double t0 = mt_clock_seconds();
        while (L->produced <= b && L->error == MT_OK) pthread_cond_wait(&L->ready_cv, &L->mu);
        L->wait_seconds += mt_clock_seconds() - t0;
    }
    if (L->produced <= b) {   /* the worker failed on this batch */
        char msg[sizeof L->message];
        memcpy(msg, L->message, sizeof msg);
        const mt_status st = L->error;
        pthread_mutex_unlock(&L->mu);
        L->failed = true;
        mt_set_error(st, "%s", msg);   /* carried to the consumer's thread */
        return false;
    }
    L->held = b;
    L->next_batch = b + 1;
    const slot *s = &L->slots[b % L->n_slots];
    pthread_mutex_unlock(&L->mu);
    to_batch(L, s, batch);
    return true;
}

bool mt_loader_failed(const mt_loader *L) { return L ? L->failed : false; }

double mt_loader_wait_seconds(const mt_loader *L) { return L ? L->wait_seconds : 0.0; }

/* ---------------------------------------------------------------- batches as tensors */
mt_tensor *mt_batch_tensor(const mt_batch *b, int field, mt_device device)
{
    if (!b || field < 0 || field >= b->n_fields) {
        mt_set_error(MT_ERR_ARGUMENT, "batch_tensor: no field %d (the batch has %d)", field, b ? b->n_fields : 0);
        return NULL;
    }
    const mt_batch_field *f = &b->fields[field];
    return mt_to_device(mt_from_blob(f->dtype, f->ndim, f->shape, f->data), device);
}

mt_tensor *mt_batch_lengths(const mt_batch *b, int field, mt_device device)
{
    if (!b || field < 0 || field >= b->n_fields || !b->fields[field].lengths) {
        mt_set_error(MT_ERR_ARGUMENT, "batch_lengths: field %d is not a variable field of the batch", field);
        return NULL;
    }
    return mt_to_device(mt_from_blob(MT_I64, 1, &b->size, (void *)b->fields[field].lengths), device);
}
