/*
 * allocator.c - a caching allocator per device type.
 *
 * Requests are rounded up to a size class (powers of two from 64 bytes, then
 * multiples of 1 MiB above 1 MiB); a freed block goes onto its class's free
 * list and the next request of that class takes it back without reaching the
 * backend. A training step thus allocates from the backend only while warming
 * up. On a backend allocation failure (or when the pool's limit would be
 * exceeded) the cache is emptied and the request retried once before failing.
 *
 * Streams (a device type with mt_alloc_stream_ops: cuda): a freed block is
 * tagged with the freeing thread's current stream. A request on the same
 * stream reuses it at once: whatever the stream does next runs after the
 * work that used the block. A request on another stream may take it only
 * once an event recorded on the block's stream has been passed; the event is
 * recorded the first time such a request looks at the block (later than the
 * free, so the check errs on the safe side) and kept with the block until it
 * is reused or released. Without ops (cpu, cuda-emu) every block is on the
 * one implicit stream and the path is the same as before streams.
 */
#include "host/runtime.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MT_SIZE_CLASSES 64
/* Larger requests fail at once: no device has this much, and rounding them
   to a size class could overflow. */
#define MT_MAX_REQUEST ((size_t)1 << 56)

typedef struct free_block {
    struct free_block *next;
    void *ptr;
    size_t size;
    void *stream;   /* the stream it was freed on (NULL: the default stream) */
    void *event;    /* recorded on that stream by a request from another stream, or NULL */
} free_block;

typedef struct device_pool {
    pthread_mutex_t lock;
    free_block *free_lists[MT_SIZE_CLASSES];
    free_block *spare_nodes;    /* list nodes not in use, to avoid malloc churn */
    const mt_alloc_stream_ops *ops;
    size_t limit;               /* 0: none */
    mt_memory_stats stats;
} device_pool;

static device_pool pools[MT_DEVICE_TYPE_COUNT] = {
    [MT_DEVICE_CPU] = { .lock = PTHREAD_MUTEX_INITIALIZER },
    [MT_DEVICE_CUDA] = { .lock = PTHREAD_MUTEX_INITIALIZER },
    [MT_DEVICE_CUDA_EMU] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

static const char *type_name(mt_device_type t)
{
    switch (t) {
    case MT_DEVICE_CPU: return "cpu";
    case MT_DEVICE_CUDA: return "cuda";
    case MT_DEVICE_CUDA_EMU: return "cuda-emu";
    default: return "an unknown device";
    }
}

/* Size class index and the rounded size it stands for (nbytes <= MT_MAX_REQUEST). */
static int size_class(size_t nbytes, size_t *rounded)
{
    const size_t mib = (size_t)1 << 20;
    if (nbytes <= 64) { *rounded = 64; return 0; }
    if (nbytes <= mib) {
        int c = 0;
        size_t s = 64;
        while (s < nbytes) { s <<= 1; c++; }
        *rounded = s;
        return c;   /* 0..14 */
    }
    size_t mibs = nbytes / mib + (nbytes % mib != 0);
    *rounded = mibs * mib;
    /* one class per MiB up to 48 MiB, then a single class for larger blocks whose
       free list is searched for an exact size */
    return mibs <= 48 ? 14 + (int)mibs : MT_SIZE_CLASSES - 1;
}

/* Whether b (of another stream than the request's) may be handed out now. Under the lock. */
static bool passed_other_stream(const mt_alloc_stream_ops *ops, free_block *b)
{
    if (!b->event) b->event = ops->mark(b->stream);
    return b->event && ops->passed(b->event);
}

/* Takes a cached block of exactly rounded bytes usable on stream, or NULL. Under the lock. */
static void *take_cached(device_pool *pool, int c, size_t rounded, void *stream)
{
    const mt_alloc_stream_ops *ops = pool->ops;
    for (free_block **link = &pool->free_lists[c]; *link; link = &(*link)->next) {
        free_block *b = *link;
        if (b->size != rounded) continue;
        bool other = b->stream != stream;
        if (other && !passed_other_stream(ops, b)) continue;
        *link = b->next;
        void *ptr = b->ptr;
        if (b->event) { ops->release(b->event); b->event = NULL; }
        b->next = pool->spare_nodes;
        pool->spare_nodes = b;
        pool->stats.cache_hits++;
        if (other) pool->stats.cross_stream_reuses++;
        return ptr;
    }
    return NULL;
}

static void *fail_out_of_memory(mt_device device, const char *backend, size_t nbytes, const char *detail)
{
    mt_memory_stats s = mt_device_memory_stats(device);
    mt_set_error(MT_ERR_MEMORY, "out of memory: %zu bytes requested on %s%s (pool: %zu allocated, %zu reserved, "
                 "cache emptied and retried)", nbytes, backend, detail, s.allocated, s.reserved);
    return NULL;
}

/* The backend's raw allocation, within the pool's limit. */
static void *raw_alloc(const mt_backend *be, device_pool *pool, size_t rounded)
{
    if (pool->limit) {
        pthread_mutex_lock(&pool->lock);
        bool over = pool->stats.reserved + rounded > pool->limit || rounded > pool->limit;
        pthread_mutex_unlock(&pool->lock);
        if (over) return NULL;
    }
    return be->alloc(rounded);
}

void *mt_device_alloc(mt_device device, size_t nbytes)
{
    if ((unsigned)device.type >= MT_DEVICE_TYPE_COUNT) {
        mt_set_error(MT_ERR_DEVICE, "alloc: unknown device type %d", (int)device.type);
        return NULL;
    }
    const mt_backend *be = mt_backend_for(device.type);
    if (!be) {
        const char *why = NULL;
        (void)mt_device_available(device, &why);
        mt_set_error(MT_ERR_DEVICE, "alloc: device %s is not available%s%s", type_name(device.type),
                     why ? ": " : "", why ? why : "");
        return NULL;
    }
    if (nbytes > MT_MAX_REQUEST) return fail_out_of_memory(device, be->name, nbytes, " (more than any device has)");
    device_pool *pool = &pools[device.type];
    size_t rounded;
    int c = size_class(nbytes ? nbytes : 1, &rounded);
    const mt_alloc_stream_ops *ops = __atomic_load_n(&pool->ops, __ATOMIC_ACQUIRE);
    void *stream = ops ? ops->current() : NULL;

    pthread_mutex_lock(&pool->lock);
    void *ptr = take_cached(pool, c, rounded, stream);
    if (ptr) {
        pool->stats.allocated += rounded;
        if (pool->stats.allocated > pool->stats.peak_allocated) pool->stats.peak_allocated = pool->stats.allocated;
        pthread_mutex_unlock(&pool->lock);
        return ptr;
    }
    pthread_mutex_unlock(&pool->lock);

    ptr = raw_alloc(be, pool, rounded);
    if (!ptr) {
        mt_device_empty_cache(device);
        ptr = raw_alloc(be, pool, rounded);
    }
    if (!ptr) {
        char detail[96] = "";
        if (pool->limit) snprintf(detail, sizeof detail, " (limit %zu bytes)", pool->limit);
        return fail_out_of_memory(device, be->name, nbytes, detail);
    }
    pthread_mutex_lock(&pool->lock);
    pool->stats.allocated += rounded;
    pool->stats.reserved += rounded;
    pool->stats.raw_allocs++;
    if (pool->stats.allocated > pool->stats.peak_allocated) pool->stats.peak_allocated = pool->stats.allocated;
    pthread_mutex_unlock(&pool->lock);
    return ptr;
}

void mt_device_free(mt_device device, void *ptr, size_t nbytes)
{
    if (!ptr || (unsigned)device.type >= MT_DEVICE_TYPE_COUNT || nbytes > MT_MAX_REQUEST) return;
    device_pool *pool = &pools[device.type];
    size_t rounded;
    int c = size_class(nbytes ? nbytes : 1, &rounded);
    const mt_alloc_stream_ops *ops = __atomic_load_n(&pool->ops, __ATOMIC_ACQUIRE);
    void *stream = ops ? ops->current() : NULL;
    pthread_mutex_lock(&pool->lock);
    free_block *b = pool->spare_nodes;
    if (b) pool->spare_nodes = b->next;
    else b = malloc(sizeof *b);
    if (!b) {   /* cannot cache it: hand it straight back */
        pool->stats.allocated -= rounded;
        pool->stats.reserved -= rounded;
        pthread_mutex_unlock(&pool->lock);
        const mt_backend *be = mt_backend_for(device.type);
        if (ops && be) be->synchronize();   /* its last use may still be running */
        if (be) be->free(ptr);
        return;
    }
    b->ptr = ptr;
    b->size = rounded;
    b->stream = stream;
    b->event = NULL;
    b->next = pool->free_lists[c];
    pool->free_lists[c] = b;
    pool->stats.allocated -= rounded;
    pthread_mutex_unlock(&pool->lock);
}

void mt_device_empty_cache(mt_device device)
{
    if ((unsigned)device.type >= MT_DEVICE_TYPE_COUNT) return;
    const mt_backend *be = mt_backend_for(device.type);
    if (!be) return;
    device_pool *pool = &pools[device.type];
    pthread_mutex_lock(&pool->lock);
    const mt_alloc_stream_ops *ops = pool->ops;
    bool any = false;
    for (int c = 0; c < MT_SIZE_CLASSES && !any; c++) any = pool->free_lists[c] != NULL;
    /* Blocks freed on a stream may still be in use by work queued there. */
    if (any && ops) be->synchronize();
    for (int c = 0; c < MT_SIZE_CLASSES; c++) {
        while (pool->free_lists[c]) {
            free_block *b = pool->free_lists[c];
            pool->free_lists[c] = b->next;
            if (b->event) ops->release(b->event);
            be->free(b->ptr);
            pool->stats.reserved -= b->size;
            free(b);
        }
    }
    while (pool->spare_nodes) {
        free_block *b = pool->spare_nodes;
        pool->spare_nodes = b->next;
        free(b);
    }
    pthread_mutex_unlock(&pool->lock);
}

mt_memory_stats mt_device_memory_stats(mt_device device)
{
    if ((unsigned)device.type >= MT_DEVICE_TYPE_COUNT) return (mt_memory_stats){ 0 };
    device_pool *pool = &pools[device.type];
    pthread_mutex_lock(&pool->lock);
    mt_memory_stats s = pool->stats;
    pthread_mutex_unlock(&pool->lock);
    return s;
}

void mt_device_set_memory_limit(mt_device device, size_t bytes)
{
    if ((unsigned)device.type >= MT_DEVICE_TYPE_COUNT) return;
    device_pool *pool = &pools[device.type];
    pthread_mutex_lock(&pool->lock);
    pool->limit = bytes;
    pthread_mutex_unlock(&pool->lock);
}

void mt_device_set_stream_ops(mt_device_type type, const mt_alloc_stream_ops *ops)
{
    if ((unsigned)type >= MT_DEVICE_TYPE_COUNT) return;
    device_pool *pool = &pools[type];
    pthread_mutex_lock(&pool->lock);
    /* Cached blocks keep their tags; events belong to the old ops. */
    for (int c = 0; c < MT_SIZE_CLASSES; c++)
        for (free_block *b = pool->free_lists[c]; b; b = b->next) {
            if (b->event && pool->ops) pool->ops->release(b->event);
            b->event = NULL;
            b->stream = NULL;
        }
    __atomic_store_n(&pool->ops, ops, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&pool->lock);
}

void mt_device_forget_stream(mt_device_type type, void *stream)
{
    if ((unsigned)type >= MT_DEVICE_TYPE_COUNT || !stream) return;
    device_pool *pool = &pools[type];
    pthread_mutex_lock(&pool->lock);
    for (int c = 0; c < MT_SIZE_CLASSES; c++)
        for (free_block *b = pool->free_lists[c]; b; b = b->next)
            if (b->stream == stream) {
                if (b->event && pool->ops) pool->ops->release(b->event);
                b->event = NULL;
                b->stream = NULL;
            }
    pthread_mutex_unlock(&pool->lock);
}

/* Hands every cached CPU block back at exit so leak checkers see a clean heap. */
__attribute__((destructor)) static void release_caches_at_exit(void)
{
    mt_device_empty_cache((mt_device){ MT_DEVICE_CPU, 0 });
}
