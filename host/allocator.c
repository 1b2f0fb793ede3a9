/*
 * allocator.c - a caching allocator per device type.
 *
 * Requests are rounded up to a size class (powers of two from 64 bytes, then
 * multiples of 1 MiB above 1 MiB); a freed block goes onto its class's free
 * list and the next request of that class takes it back without reaching the
 * backend. A training step thus allocates from the backend only while warming
 * up. On a backend allocation failure the cache is emptied and the request
 * retried once before failing.
 */
#include "host/runtime.h"

#include <pthread.h>
#include <stdlib.h>

#define MT_SIZE_CLASSES 64

typedef struct free_block { struct free_block *next; void *ptr; size_t size; } free_block;

typedef struct device_pool {
    pthread_mutex_t lock;
    free_block *free_lists[MT_SIZE_CLASSES];
    free_block *spare_nodes;    /* list nodes not in use, to avoid malloc churn */
    mt_memory_stats stats;
} device_pool;

static device_pool pools[MT_DEVICE_TYPE_COUNT] = {
    [MT_DEVICE_CPU] = { .lock = PTHREAD_MUTEX_INITIALIZER },
    [MT_DEVICE_CUDA] = { .lock = PTHREAD_MUTEX_INITIALIZER },
    [MT_DEVICE_CUDA_EMU] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

/* Size class index and the rounded size it stands for. */
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
    size_t mibs = (nbytes + mib - 1) / mib;
    *rounded = mibs * mib;
    /* one class per MiB up to 48 MiB, then a single class for larger blocks whose
       free list is searched for an exact size */
    return mibs <= 48 ? 14 + (int)mibs : MT_SIZE_CLASSES - 1;
}

void *mt_device_alloc(mt_device device, size_t nbytes)
{
    const mt_backend *be = mt_backend_for(device.type);
    if (!be) { mt_set_error(MT_ERR_DEVICE, "alloc: device %s is not available", "?"); return NULL; }
    device_pool *pool = &pools[device.type];
    size_t rounded;
    int c = size_class(nbytes ? nbytes : 1, &rounded);

    pthread_mutex_lock(&pool->lock);
    for (free_block **link = &pool->free_lists[c]; *link; link = &(*link)->next) {
        free_block *b = *link;
        if (b->size != rounded) continue;
        *link = b->next;
        void *ptr = b->ptr;
        b->next = pool->spare_nodes;
        pool->spare_nodes = b;
        pool->stats.allocated += rounded;
        if (pool->stats.allocated > pool->stats.peak_allocated) pool->stats.peak_allocated = pool->stats.allocated;
        pool->stats.cache_hits++;
        pthread_mutex_unlock(&pool->lock);
        return ptr;
    }
    pthread_mutex_unlock(&pool->lock);

    void *ptr = be->alloc(rounded);
    if (!ptr) {
        mt_device_empty_cache(device);
        ptr = be->alloc(rounded);
    }
    if (!ptr) {
        mt_memory_stats s = mt_device_memory_stats(device);
        mt_set_error(MT_ERR_MEMORY, "out of memory: %zu bytes requested on %s (pool: %zu allocated, %zu reserved)",
                     nbytes, be->name, s.allocated, s.reserved);
        return NULL;
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
    if (!ptr) return;
    device_pool *pool = &pools[device.type];
    size_t rounded;
    int c = size_class(nbytes ? nbytes : 1, &rounded);
    pthread_mutex_lock(&pool->lock);
    free_block *b = pool->spare_nodes;
    if (b) pool->spare_nodes = b->next;
    else b = malloc(sizeof *b);
    if (!b) {   /* cannot cache it: hand it straight back */
        pool->stats.allocated -= rounded;
        pool->stats.reserved -= rounded;
        pthread_mutex_unlock(&pool->lock);
        mt_backend_for(device.type)->free(ptr);
        return;
    }
    b->ptr = ptr;
    b->size = rounded;
    b->next = pool->free_lists[c];
    pool->free_lists[c] = b;
    pool->stats.allocated -= rounded;
    pthread_mutex_unlock(&pool->lock);
}

void mt_device_empty_cache(mt_device device)
{
    const mt_backend *be = mt_backend_for(device.type);
    if (!be) return;
    device_pool *pool = &pools[device.type];
    pthread_mutex_lock(&pool->lock);
    for (int c = 0; c < MT_SIZE_CLASSES; c++) {
        while (pool->free_lists[c]) {
            free_block *b = pool->free_lists[c];
            pool->free_lists[c] = b->next;
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
    device_pool *pool = &pools[device.type];
    pthread_mutex_lock(&pool->lock);
    mt_memory_stats s = pool->stats;
    pthread_mutex_unlock(&pool->lock);
    return s;
}

/* Hands every cached CPU block back at exit so leak checkers see a clean heap. */
__attribute__((destructor)) static void release_caches_at_exit(void)
{
    mt_device_empty_cache((mt_device){ MT_DEVICE_CPU, 0 });
}
