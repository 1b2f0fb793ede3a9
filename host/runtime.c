/*
 * runtime.c - per-thread state (last error, grad mode, forward-AD mode, the
 * scope registry) and the process-wide default random generator.
 */
#include "host/runtime.h"
#include "host/cuda_runtime.h"

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- errors */
static _Thread_local char last_error[1024];
static _Thread_local mt_status last_status = MT_OK;

mt_status mt_set_error(mt_status code, const char *fmt, ...)
{
    /* Formatted aside first: callers wrap the previous message,
       mt_set_error(st, "load: %s", mt_last_error()), and vsnprintf into the
       buffer it reads from garbles the text (and is undefined behaviour). */
    char text[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof last_error);
    last_status = code;
    return code;
}

const char *mt_last_error(void) { return last_error; }
mt_status mt_last_status(void) { return last_status; }
void mt_clear_error(void) { last_error[0] = '\0'; last_status = MT_OK; }

/* ---------------------------------------------------------------- device errors */
/* Process-wide: a kernel may fail on a worker thread; the next engine call on
   any thread reports it. */
static pthread_mutex_t device_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char device_error[512];
static bool device_error_pending;

void mt_device_record_error(const char *what, int code, const char *code_name)
{
    pthread_mutex_lock(&device_error_lock);
    if (!device_error_pending) {   /* keep the first: later ones are usually its consequences */
        snprintf(device_error, sizeof device_error, "%s: %s (CUDA error %d)", what, code_name ? code_name : "?", code);
        device_error_pending = true;
    }
    pthread_mutex_unlock(&device_error_lock);
}

mt_status mt_device_error_check(void)
{
    if (!__atomic_load_n(&device_error_pending, __ATOMIC_ACQUIRE)) return MT_OK;
    pthread_mutex_lock(&device_error_lock);
    mt_status st = MT_OK;
    if (device_error_pending) {
        st = mt_set_error(MT_ERR_DEVICE, "device error: %s", device_error);
        device_error_pending = false;
    }
    pthread_mutex_unlock(&device_error_lock);
    return st;
}

/* ---------------------------------------------------------------- grad modes */
static _Thread_local bool grad_disabled;       /* zero-initialised: grad mode on */
static _Thread_local bool forward_ad_disabled;

bool mt_set_grad_enabled(bool enabled)
{
    bool prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}
bool mt_is_grad_enabled(void) { return !grad_disabled; }

bool mt_set_forward_ad_enabled(bool enabled)
{
    bool prev = !forward_ad_disabled;
    forward_ad_disabled = !enabled;
    return prev;
}
bool mt_is_forward_ad_enabled(void) { return !forward_ad_disabled; }

/* Process-wide, as PyTorch's set_detect_anomaly. */
static bool anomaly_detection;
bool mt_set_detect_anomaly(bool enabled) { return __atomic_exchange_n(&anomaly_detection, enabled, __ATOMIC_ACQ_REL); }
bool mt_is_anomaly_enabled(void) { return __atomic_load_n(&anomaly_detection, __ATOMIC_ACQUIRE); }

/* ---------------------------------------------------------------- scope registry */
/* One growing array of objects per thread; a scope is a mark into it. A
   slot is set to NULL when its object leaves early (kept or freed). */
static _Thread_local void **scope_objects;
static _Thread_local int64_t scope_len, scope_cap;
static _Thread_local int scope_depth;

int mt_runtime_scope_depth(void) { return scope_depth; }

int mt_runtime_scope_push(void)
{
    scope_depth++;
    return (int)scope_len;
}

int64_t mt_runtime_scope_register(void *object)
{
    if (scope_depth == 0) return -1;
    if (scope_len == scope_cap) {
        int64_t cap = scope_cap ? 2 * scope_cap : 1024;
        void **grown = realloc(scope_objects, (size_t)cap * sizeof *grown);
        if (!grown) return -1;   /* the object stays owned by the caller: a leak, not a crash */
        scope_objects = grown;
        scope_cap = cap;
    }
    scope_objects[scope_len] = object;
    return scope_len++;
}

void mt_runtime_scope_forget(int64_t slot)
{
    if (slot >= 0 && slot < scope_len) scope_objects[slot] = NULL;
}

typedef struct release_box { mt_release_fn release; } release_box;
static void call_release(void *object, void *ctx) { ((release_box *)ctx)->release(object); }

int64_t mt_runtime_scope_pop(int mark, mt_release_fn release)
{
    release_box box = { release };
    return mt_runtime_scope_pop_each(mark, call_release, &box);
}

int64_t mt_runtime_scope_pop_each(int mark, void (*each)(void *object, void *ctx), void *ctx)
{
    int64_t released = 0;
    if (scope_depth == 0 || mark < 0 || mark > scope_len) return 0;
    /* Newest first: views and outputs go before what they were made from. */
    while (scope_len > mark) {
        void *obj = scope_objects[--scope_len];
        if (obj) { each(obj, ctx); released++; }
    }
    scope_depth--;
    if (scope_depth == 0 && scope_cap > (1 << 20)) {   /* give back an unusually large registry */
        free(scope_objects);
        scope_objects = NULL;
        scope_cap = 0;
    }
    return released;
}

/* ---------------------------------------------------------------- default device */
static pthread_once_t default_device_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t default_device_lock = PTHREAD_MUTEX_INITIALIZER;
static mt_device default_device;   /* zero: cpu */

bool mt_device_parse(const char *text, mt_device *out)
{
    if (!text || !out) return false;
    if (strcmp(text, "cpu") == 0) { *out = (mt_device){ MT_DEVICE_CPU, 0 }; return true; }
    if (strcmp(text, "cuda-emu") == 0) { *out = (mt_device){ MT_DEVICE_CUDA_EMU, 0 }; return true; }
    if (strcmp(text, "cuda") == 0) { *out = (mt_device){ MT_DEVICE_CUDA, 0 }; return true; }
    if (strncmp(text, "cuda:", 5) == 0) {
        char *end = NULL;
        long index = strtol(text + 5, &end, 10);
        if (end == text + 5 || *end != '\0' || index < 0 || index > 1023) return false;
        *out = (mt_device){ MT_DEVICE_CUDA, (int)index };
        return true;
    }
    return false;
}

bool mt_device_available(mt_device device, const char **why)
{
    const char *reason = NULL;
    switch (device.type) {
    case MT_DEVICE_CPU: break;
    case MT_DEVICE_CUDA_EMU:
        if (!mt_cuda_emu_built()) reason = "the emulated CUDA backend was not built (no C++ compiler at build time)";
        break;
    case MT_DEVICE_CUDA:   /* toolkit built in, GPU and driver, device index, a complete table */
        (void)mt_cuda_backend_usable(device.index, &reason);
        break;
    default: reason = "unknown device type";
    }
    if (why) *why = reason;
    return reason == NULL;
}

static void choose_default_device(void)
{
    const char *env = getenv("MYTORCH_DEVICE");
    mt_device d = { MT_DEVICE_CPU, 0 };
    const char *why = NULL;
    if (env && *env) {
        if (!mt_device_parse(env, &d))
            fprintf(stderr, "mytorch: MYTORCH_DEVICE=%s is not a device (cpu, cuda, cuda:N, cuda-emu); using cpu\n", env);
        else if (!mt_device_available(d, &why)) {
            fprintf(stderr, "mytorch: MYTORCH_DEVICE=%s is not available: %s; using cpu\n", env, why);
            d = (mt_device){ MT_DEVICE_CPU, 0 };
        }
    } else {
        mt_device gpu = { MT_DEVICE_CUDA, 0 };
        if (mt_device_available(gpu, NULL)) d = gpu;
    }
    default_device = d;
}

mt_device mt_runtime_default_device(void)
{
    pthread_once(&default_device_once, choose_default_device);
    pthread_mutex_lock(&default_device_lock);
    mt_device d = default_device;
    pthread_mutex_unlock(&default_device_lock);
    return d;
}

void mt_runtime_set_default_device(mt_device device)
{
    pthread_once(&default_device_once, choose_default_device);
    pthread_mutex_lock(&default_device_lock);
    default_device = device;
    pthread_mutex_unlock(&default_device_lock);
}

/* ---------------------------------------------------------------- threads */
/* OpenBLAS's own setter: its OpenMP build reads the OpenMP count per call,
   its pthreads build keeps a count of its own. */
extern void openblas_set_num_threads(int num_threads);

void mt_set_num_threads(int n)
{
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
int mt_get_num_threads(void) { return omp_get_max_threads(); }

/* ---------------------------------------------------------------- clock */
double mt_clock_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- default generator */
static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_seed = 0x2545F4914F6CDD1DULL;
static uint64_t rng_offset;

uint64_t mt_runtime_next_random_offset(uint64_t *seed_out, uint64_t count)
{
    pthread_mutex_lock(&rng_lock);
    uint64_t off = rng_offset;
    rng_offset += count;
    *seed_out = rng_seed;
    pthread_mutex_unlock(&rng_lock);
    return off;
}

void mt_runtime_manual_seed(uint64_t seed)
{
    pthread_mutex_lock(&rng_lock);
    rng_seed = seed;
    rng_offset = 0;
    pthread_mutex_unlock(&rng_lock);
}

/* The default generator's (seed, offset), read or replaced as one. */
void mt_runtime_rng_state(uint64_t *seed, uint64_t *offset)
{
    pthread_mutex_lock(&rng_lock);
    *seed = rng_seed;
    *offset = rng_offset;
    pthread_mutex_unlock(&rng_lock);
}

void mt_runtime_set_rng_state(uint64_t seed, uint64_t offset)
{
    pthread_mutex_lock(&rng_lock);
    rng_seed = seed;
    rng_offset = offset;
    pthread_mutex_unlock(&rng_lock);
}
