/*
 * frame_loader.c - batches of context windows for frame classification
 * (frame_dataset.h, docs/frame-dataset.md): a shuffled order per epoch,
 * SpecAugment-style masking, and a background thread that fills a ring of
 * batch buffers ahead of the training loop.
 *
 * Determinism: batch b of epoch e is a pure function of (ds, seed, e, b):
 * the order is a Fisher-Yates shuffle whose draws come from a counter-based
 * generator keyed by (seed, e), and row r's masks from one keyed by
 * (seed, e, b, r). No draw depends on which thread made the batch, on how far
 * ahead it ran, or on where the epoch was started, so a resumed epoch yields
 * the batches of an uninterrupted one.
 *
 * The ring: slots hold batches [released, produced); the worker fills slot
 * produced % n_slots while produced - released < n_slots, the consumer takes
 * batch `next_batch` once produced > next_batch and gives it back (released =
 * b + 1) at its next call. With n_slots = prefetch + 1 the worker can run
 * `prefetch` batches ahead of the one the consumer holds.
 */
#include "models/speech_frames/frame_dataset.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mytorch/cuda.h"   /* mt_pinned_alloc: page-locked staging buffers */

/* ---------------------------------------------------------------- counter-based draws */

/* splitmix64's finaliser (Steele, Lea and Flood 2014): a bijective 64-bit
   mix with full avalanche, so hashing a counter gives independent-looking
   draws and a key chain (seed, tag, epoch, batch, row) needs no state. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t derive(uint64_t key, uint64_t value) { return mix64(key ^ mix64(value)); }

enum { TAG_SHUFFLE = 0x5348, TAG_MASK = 0x4d41 };   /* separate streams for the order and the masks */

/* Uniform in [0, n) from draw counter c of key; the modulo's bias is at most
   n / 2^64, far below anything measurable. */
static uint64_t uniform_below(uint64_t key, uint64_t c, uint64_t n) { return derive(key, c) % n; }

void mt_frame_mask_window(const mt_frame_masking *m, int context, int feature_dim, uint64_t seed,
                          int64_t epoch, int64_t batch, int64_t row, float *window)
{
    if (!m || !window || context < 0 || feature_dim < 1) return;
    const int64_t W = 2 * (int64_t)context + 1, F = feature_dim;
    uint64_t key = derive(derive(derive(derive(seed, TAG_MASK), (uint64_t)epoch), (uint64_t)batch), (uint64_t)row);
    uint64_t c = 0;
    /* frequency bands: width w ~ U[0, freq_width] (at most F), first
       coefficient f0 ~ U[0, F - w]; zero across every frame of the window */
    for (int i = 0; i < m->freq_masks && m->freq_width > 0; i++) {
        int64_t w = (int64_t)uniform_below(key, c++, (uint64_t)m->freq_width + 1);
        if (w > F) w = F;
        int64_t f0 = (int64_t)uniform_below(key, c++, (uint64_t)(F - w + 1));
        for (int64_t t = 0; t < W; t++)
            for (int64_t f = f0; f < f0 + w; f++) window[t * F + f] = 0.0f;
    }
    /* time runs: w ~ U[0, time_width] (at most 2K+1) frames from t0 ~ U[0, W - w] */
    for (int i = 0; i < m->time_masks && m->time_width > 0; i++) {
        int64_t w = (int64_t)uniform_below(key, c++, (uint64_t)m->time_width + 1);
        if (w > W) w = W;
        int64_t t0 = (int64_t)uniform_below(key, c++, (uint64_t)(W - w + 1));
        memset(window + t0 * F, 0, (size_t)(w * F) * sizeof *window);
    }
}

static bool masking_on(const mt_frame_masking *m)
{
    return (m->freq_masks > 0 && m->freq_width > 0) || (m->time_masks > 0 && m->time_width > 0);
}

/* ---------------------------------------------------------------- the loader */

typedef struct slot {
    float *x;               /* [B, window] */
    int64_t *y;             /* [B], or NULL without labels */
    int64_t *frames;        /* [B] */
    int64_t index, size;
} slot;

struct mt_frame_loader {
    const mt_frame_dataset *ds;
    mt_frame_loader_opts opts;
    int64_t n_frames;       /* ds->n_frames when made: a change is reported, never read past */
    int64_t window;         /* (2K+1) F floats */
    int64_t n_batches;
    bool masking;
    bool threaded;
    int n_slots;
    slot *slots;
    int64_t *perm;          /* [n_frames]: this epoch's order (NULL without shuffle: the identity) */

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* the worker waits here for room, a new epoch, or quit */
    pthread_cond_t ready_cv;    /* the consumer waits here for a batch, an error, or an idle worker */

    /* guarded by mu when threaded */
    bool started;           /* an epoch is running: the worker may fill */
    int64_t epoch;
    int64_t produced;       /* batches < produced are ready */
    int64_t released;       /* batches < released were given back: their slots are free */
    int64_t held;           /* the batch the consumer holds, or -1 */
    int64_t next_batch;     /* the batch the consumer takes next */
    uint64_t generation;    /* bumped by start: a fill begun earlier is discarded */
    bool busy;              /* the worker is filling a slot (reading perm and ds) */
    bool quit;
    mt_status error;        /* the worker's error, and its message (mt_last_error is per thread) */
    char message[1024];

    /* the consumer's own */
    bool failed;
    double wait_seconds;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fills s with batch b of `epoch`. Runs on the worker: it touches no
   per-thread runtime state and reports an error through msg only. */
static mt_status fill(const mt_frame_loader *L, slot *s, int64_t epoch, int64_t b, char *msg, size_t msg_size)
{
    const mt_frame_dataset *ds = L->ds;
    if (ds->n_frames != L->n_frames || !ds->rows) {
        snprintf(msg, msg_size, "frame_loader: the dataset changed under the loader (it had %lld frames, now %lld); "
                 "make a new loader", (long long)L->n_frames, (long long)ds->n_frames);
        return MT_ERR_STATE;
    }
    const int64_t B = L->opts.batch_size, K = ds->context, F = ds->feature_dim;
    const int64_t first = b * B;
    const int64_t size = L->n_frames - first < B ? L->n_frames - first : B;
    s->index = b;
    s->size = size;
    for (int64_t r = 0; r < size; r++) {
        int64_t f = L->perm ? L->perm[first + r] : first + r;
        s->frames[r] = f;
        if (s->y) s->y[r] = ds->labels[f];
        float *dst = s->x + r * L->window;
        /* the window is one contiguous run: rows row(f) - K .. row(f) + K */
        memcpy(dst, ds->rows + (mt_frame_dataset_row(ds, f) - K) * F, (size_t)L->window * sizeof *dst);
        if (L->masking) mt_frame_mask_window(&L->opts.masking, (int)K, (int)F, L->opts.seed, epoch, b, r, dst);
    }
    return MT_OK;
}

static void *worker_main(void *arg)
{
    mt_frame_loader *L = arg;
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

static void free_slots(mt_frame_loader *L)
{
    if (!L->slots) return;
    for (int i = 0; i < L->n_slots; i++) {
        if (L->opts.pinned) mt_pinned_free(L->slots[i].x);
        else free(L->slots[i].x);
        free(L->slots[i].y);
        free(L->slots[i].frames);
    }
    free(L->slots);
    L->slots = NULL;
}

mt_frame_loader *mt_frame_loader_new(const mt_frame_dataset *ds, const mt_frame_loader_opts *opts)
{
    if (!ds || !opts) { mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: NULL %s", ds ? "opts" : "dataset"); return NULL; }
    if (opts->batch_size < 1) {
        mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: batch_size %d < 1", opts->batch_size);
        return NULL;
    }
    const mt_frame_masking *m = &opts->masking;
    if (m->freq_masks < 0 || m->freq_width < 0 || m->time_masks < 0 || m->time_width < 0) {
        mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: negative masking (freq %d x %d, time %d x %d)",
                     m->freq_masks, m->freq_width, m->time_masks, m->time_width);
        return NULL;
    }
    if (ds->n_frames < 0 || ds->context < 0 || ds->feature_dim < 1 || !ds->rows) {
        mt_set_error(MT_ERR_ARGUMENT, "frame_loader_new: the dataset is not loaded (n_frames %lld, F %d)",
                     (long long)ds->n_frames, ds->feature_dim);
        return NULL;
    }
    mt_frame_loader *L = calloc(1, sizeof *L);
    if (!L) { mt_set_error(MT_ERR_MEMORY, "frame_loader_new: out of memory"); return NULL; }
    L->ds = ds;
    L->opts = *opts;
    L->n_frames = ds->n_frames;
    L->window = (2 * (int64_t)ds->context + 1) * ds->feature_dim;
    const int64_t B = opts->batch_size;
    L->n_batches = opts->drop_last ? ds->n_frames / B : (ds->n_frames + B - 1) / B;
    L->masking = masking_on(m);
    L->threaded = opts->prefetch >= 0;
    L->held = -1;
    /* prefetch batches ahead + the one the consumer holds; never more than
       an epoch has */
    int64_t ahead = opts->prefetch == 0 ? 2 : opts->prefetch;
    if (ahead > L->n_batches) ahead = L->n_batches > 0 ? L->n_batches : 1;
    L->n_slots = L->threaded ? (int)ahead + 1 : 1;

    if ((uint64_t)B * (uint64_t)L->window > SIZE_MAX / 2 / sizeof(float)) {
        mt_set_error(MT_ERR_MEMORY, "frame_loader_new: a batch of %lld windows of %lld floats is too large",
                     (long long)B, (long long)L->window);
        free(L);
        return NULL;
    }
    const size_t x_bytes = (size_t)B * (size_t)L->window * sizeof(float);
    L->slots = calloc((size_t)L->n_slots, sizeof *L->slots);
    bool ok = L->slots != NULL;
    for (int i = 0; ok && i < L->n_slots; i++) {
        slot *s = &L->slots[i];
        s->x = opts->pinned ? mt_pinned_alloc(x_bytes) : malloc(x_bytes);
        s->frames = malloc((size_t)B * sizeof *s->frames);
        if (ds->labels) s->y = malloc((size_t)B * sizeof *s->y);
        ok = s->x && s->frames && (s->y || !ds->labels);
    }
    if (ok && opts->shuffle && ds->n_frames > 0) {
        L->perm = malloc((size_t)ds->n_frames * sizeof *L->perm);
        ok = L->perm != NULL;
    }
    if (!ok) {
        mt_set_error(MT_ERR_MEMORY, "frame_loader_new: out of memory (%d buffers of %zu bytes)", L->n_slots, x_bytes);
        free_slots(L);
        free(L->perm);
        free(L);
        return NULL;
    }
    if (L->threaded) {
        pthread_mutex_init(&L->mu, NULL);
        pthread_cond_init(&L->work_cv, NULL);
        pthread_cond_init(&L->ready_cv, NULL);
        int rc = pthread_create(&L->thread, NULL, worker_main, L);
        if (rc != 0) {
            mt_set_error(MT_ERR_MEMORY, "frame_loader_new: cannot start the prefetch thread (%s)", strerror(rc));
            mt_frame_loader_free(L);   /* thread_started is false: nothing to join */
            return NULL;
        }
        L->thread_started = true;
    }
    return L;
}

void mt_frame_loader_free(mt_frame_loader *L)
{
    if (!L) return;
    if (L->thread_started) {
        /* the worker finishes the batch it may be filling (microseconds),
           sees quit and returns */
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
    free_slots(L);
    free(L->perm);
    free(L);
}

int64_t mt_frame_loader_batches(const mt_frame_loader *L)
{
    return L ? L->n_batches : 0;
}

/* This epoch's order: Fisher-Yates from the end, swapping i with
   j ~ U[0, i], the draw for position i being counter i of key (seed, epoch). */
static void shuffle(mt_frame_loader *L, int64_t epoch)
{
    const int64_t n = L->n_frames;
    const uint64_t key = derive(derive(L->opts.seed, TAG_SHUFFLE), (uint64_t)epoch);
    for (int64_t i = 0; i < n; i++) L->perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)uniform_below(key, (uint64_t)i, (uint64_t)i + 1);
        int64_t t = L->perm[i];
        L->perm[i] = L->perm[j];
        L->perm[j] = t;
    }
}

mt_status mt_frame_loader_start(mt_frame_loader *L, int64_t epoch, int64_t first_batch)
{
    if (!L) return mt_set_error(MT_ERR_ARGUMENT, "frame_loader_start: NULL loader");
    if (epoch < 0) return mt_set_error(MT_ERR_ARGUMENT, "frame_loader_start: epoch %lld < 0", (long long)epoch);
    if (first_batch < 0 || first_batch > L->n_batches)
        return mt_set_error(MT_ERR_ARGUMENT, "frame_loader_start: first_batch %lld outside [0, %lld] (batches per epoch)",
                            (long long)first_batch, (long long)L->n_batches);
    if (L->threaded) {
        /* stop the worker taking work and wait until it is not filling, so
           that perm and the ring are ours */
        pthread_mutex_lock(&L->mu);
        L->started = false;
        L->generation++;
        while (L->busy) pthread_cond_wait(&L->ready_cv, &L->mu);
        pthread_mutex_unlock(&L->mu);
    }
    if (L->perm) shuffle(L, epoch);
    if (L->threaded) pthread_mutex_lock(&L->mu);
    L->epoch = epoch;
    L->produced = L->released = L->next_batch = first_batch;
    L->held = -1;
    L->error = MT_OK;
    L->message[0] = '\0';
    L->failed = false;
    L->started = true;
    if (L->threaded) {
        pthread_cond_broadcast(&L->work_cv);
        pthread_mutex_unlock(&L->mu);
    }
    return MT_OK;
}

static void to_batch(const mt_frame_loader *L, const slot *s, mt_frame_batch *batch)
{
    *batch = (mt_frame_batch){ .index = s->index, .size = s->size, .x = s->x, .y = s->y, .frames = s->frames };
}

bool mt_frame_loader_next(mt_frame_loader *L, mt_frame_batch *batch)
{
    if (!L || !batch) { mt_set_error(MT_ERR_ARGUMENT, "frame_loader_next: NULL %s", L ? "batch" : "loader"); return false; }
    if (!L->started) {
        L->failed = true;
        mt_set_error(MT_ERR_STATE, "frame_loader_next: no epoch started (call mt_frame_loader_start first)");
        return false;
    }
    if (!L->threaded) {
        const int64_t b = L->next_batch;
        if (b >= L->n_batches) return false;
        const double t0 = now_seconds();
        char msg[sizeof L->message];
        mt_status st = fill(L, &L->slots[0], L->epoch, b, msg, sizeof msg);
        L->wait_seconds += now_seconds() - t0;   /* made on demand: all of it is waiting */
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
        const double t0 = now_seconds();
        while (L->produced <= b && L->error == MT_OK) pthread_cond_wait(&L->ready_cv, &L->mu);
        L->wait_seconds += now_seconds() - t0;
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

bool mt_frame_loader_failed(const mt_frame_loader *L)
{
    return L ? L->failed : false;
}

double mt_frame_loader_wait_seconds(const mt_frame_loader *L)
{
    return L ? L->wait_seconds : 0.0;
}
