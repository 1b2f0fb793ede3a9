/*
 * simt_emu.c - the SIMT emulator runtime (see simt_emu.h, docs/emulator.md).
 *
 * Structure of a launch:
 *
 *   mt_emu_launch          checks the configuration, splits the grid's blocks
 *                          into contiguous ranges, one per OS thread (OpenMP);
 *   run_blocks             per OS thread: a worker (fiber pool + block state,
 *                          cached per OS thread) runs its blocks one by one;
 *   run_block              the worker's scheduler ("main" context) switches to
 *                          the block's first thread and gets control back when
 *                          every thread of the block has exited (or on error);
 *   fiber_main             a fiber runs a CUDA thread's body; when the body
 *                          returns and the next ready thread has not started,
 *                          the same fiber runs it (no switch at all), so a
 *                          kernel without barriers costs one fiber per block;
 *   yield_next             a thread that waits at a barrier (or has exited)
 *                          hands the OS thread directly to the next ready
 *                          thread: one context switch per thread per barrier.
 *
 * Barriers. __syncthreads completes when every thread of the block that has
 * not exited has arrived (exited threads count as arrived; CUDA leaves this
 * undefined). A warp-synchronous operation (__syncwarp, shuffles, votes,
 * matches, reductions) is a barrier among the lanes named in its mask that
 * exist and have not exited; disjoint masks in one warp are separate
 * barriers. The lane that completes a barrier computes every participant's
 * result (so no exchange buffer outlives the barrier) and puts the waiting
 * threads back on the ready queue: in thread order, or in a random order in
 * shuffled mode. If the ready queue empties while threads still wait, the
 * block is deadlocked: the launch fails with a message naming who waits where.
 *
 * Context switches: a dozen instructions of x86-64 assembly (callee-saved
 * registers and the stack pointer; MXCSR and the x87 control word are not
 * saved: kernels do not change them), ucontext elsewhere or with
 * -DMT_EMU_FORCE_UCONTEXT. Fiber stacks are mmap'd with a guard page below
 * and pooled per worker. Under AddressSanitizer every switch is annotated
 * (__sanitizer_start/finish_switch_fiber); under valgrind stacks are registered.
 */
#include "kernels/cuda/simt_emu.h"

#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---------------------------------------------------------------- configuration of the build */
#if defined(__SANITIZE_ADDRESS__)
#define MT_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_EMU_ASAN 1
#endif
#endif
#ifndef MT_EMU_ASAN
#define MT_EMU_ASAN 0
#endif
#if MT_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define MT_EMU_VALGRIND 1
#endif
#endif
#ifndef MT_EMU_VALGRIND
#define MT_EMU_VALGRIND 0
#endif

#if defined(__x86_64__) && !defined(MT_EMU_FORCE_UCONTEXT)
#define MT_EMU_ASM_SWITCH 1
#else
#define MT_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

/* Default fiber stack: 64 KiB (256 KiB under ASan, whose frames carry redzones). */
#if MT_EMU_ASAN
#define MT_EMU_DEFAULT_STACK (256u * 1024u)
#else
#define MT_EMU_DEFAULT_STACK (64u * 1024u)
#endif

/* Bits a shuffle returns in shuffled mode when its source lane does not take
   part (undefined in CUDA): a NaN as float (low half) and as double. */
#define MT_EMU_POISON 0xFFF8DEADFFC0DEADull

/* ---------------------------------------------------------------- the built-in variables */
_Thread_local mt_emu_uint3 mt_emu_threadIdx;
_Thread_local mt_emu_uint3 mt_emu_blockIdx;
_Thread_local mt_emu_uint3 mt_emu_blockDim;
_Thread_local mt_emu_uint3 mt_emu_gridDim;

/* ---------------------------------------------------------------- the context switch */
#if MT_EMU_ASM_SWITCH
/* void mt_emu_ctx_switch(void **save_sp, void *new_sp): pushes the callee-saved
   registers, saves rsp into *save_sp, loads new_sp and pops the same frame
   layout from it. A fresh fiber's stack holds six zero registers and the
   address of mt_emu_fiber_trampoline, which calls mt_emu_fiber_main. */
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl mt_emu_ctx_switch\n"
    ".hidden mt_emu_ctx_switch\n"
    ".type mt_emu_ctx_switch, @function\n"
    "mt_emu_ctx_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size mt_emu_ctx_switch, .-mt_emu_ctx_switch\n"
    ".p2align 4\n"
    ".globl mt_emu_fiber_trampoline\n"
    ".hidden mt_emu_fiber_trampoline\n"
    ".type mt_emu_fiber_trampoline, @function\n"
    "mt_emu_fiber_trampoline:\n"
    "    xorl %ebp, %ebp\n"
    "    call mt_emu_fiber_main\n"
    "    ud2\n"
    ".size mt_emu_fiber_trampoline, .-mt_emu_fiber_trampoline\n");
void mt_emu_ctx_switch(void **save_sp, void *new_sp) __attribute__((visibility("hidden")));
void mt_emu_fiber_trampoline(void) __attribute__((visibility("hidden")));
#endif
void mt_emu_fiber_main(void) __attribute__((visibility("hidden"), noreturn, used));

/* ---------------------------------------------------------------- data structures */
typedef struct emu_fiber {
    void *sp;                   /* saved stack pointer (asm switch) */
#if !MT_EMU_ASM_SWITCH
    ucontext_t uc;
#endif
    char *map;                  /* mapping: guard page, then the stack */
    size_t map_size;
    char *stack;                /* lowest usable address */
    size_t size;
    void *asan_fake;            /* ASan's fake stack while switched out */
    struct emu_fiber *next_free;
    bool dirty;                 /* abandoned mid-kernel: unpoison before reuse */
    unsigned vg_id;
} emu_fiber;

enum { T_READY, T_RUNNING, T_WAIT_BLOCK, T_WAIT_WARP, T_DONE };

typedef struct emu_thread {
    mt_emu_uint3 idx;
    int state;
    emu_fiber *fiber;           /* NULL until started, and after exit */
    /* barrier arrival data and results */
    int sync_op, sync_pred, sync_res;
    int wop, warg, wwidth;
    uint64_t wval, wres;
} emu_thread;

typedef struct emu_winst {      /* a warp barrier in progress */
    unsigned mask;              /* the lanes named (that exist) */
    unsigned arrived;
    int op;
} emu_winst;

typedef struct emu_warp {
    unsigned exists, live;
    int ninst;
    emu_winst inst[32];         /* disjoint masks: at most 32 at once */
} emu_warp;

typedef struct emu_launch {
    const char *name;
    void (*fn)(void *);
    void *ctx;
    mt_emu_dim3 grid, block;
    unsigned nthreads;          /* per block */
    size_t shmem;
    bool shuffle;
    uint64_t seed;              /* this launch's */
    uint64_t rotate;            /* shuffled mode: OS threads take blocks (b + rotate) % blocks */
    atomic_int failed;          /* first error wins */
    int code;
    char msg[640];
} emu_launch;

typedef struct emu_worker {
    emu_fiber main;             /* the OS thread's own context (the scheduler) */
    emu_fiber **fibers;         /* every fiber owned, for trimming */
    int nfibers, fibers_cap;
    emu_fiber *free_list;
    emu_thread *threads;
    emu_warp *warps;
    int *queue, *scratch;
    int cap;                    /* threads per block the arrays hold */
    mt_emu_dim3 shape;          /* the block shape threads[].idx is computed for */
    unsigned char *dyn;         /* dynamic shared memory */
    size_t dyn_cap;
    /* the block running */
    const emu_launch *L;
    int nthreads, live;
    int qhead, qlen;
    int sync_arrived, sync_true;
    emu_thread *cur;
    emu_fiber *cur_fiber;
    bool aborted, in_block, from_main;
    uint64_t rng;
    /* counters of the launch running */
    uint64_t n_switch, n_fiber, n_barrier, n_warpop;
    struct emu_worker *next;    /* the registry */
} emu_worker;

/* ---------------------------------------------------------------- process state */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;   /* registry and attributes */
static emu_worker *g_workers;
static atomic_int g_shuffle;
static _Atomic uint64_t g_seed;
static _Atomic uint64_t g_launch_counter;
static atomic_int g_threads;
static size_t g_stack_size = MT_EMU_DEFAULT_STACK;
static size_t g_page = 4096;

static struct { _Atomic uint64_t launches, blocks, threads, switches, fibers, barriers, warp_ops; } g_stats;

#define MT_EMU_MAX_ATTRS 256
static struct { const void *kernel; int max_dyn; } g_attrs[MT_EMU_MAX_ATTRS];
static int g_nattrs;

static _Thread_local emu_worker *tl_worker;
static _Thread_local int tl_error;
static _Thread_local char tl_message[640];

static void worker_destroy(emu_worker *w);

static void thread_exit_destructor(void *p)
{
    emu_worker *w = p;
    pthread_mutex_lock(&g_lock);
    for (emu_worker **pp = &g_workers; *pp; pp = &(*pp)->next)
        if (*pp == w) { *pp = w->next; break; }
    pthread_mutex_unlock(&g_lock);
    if (tl_worker == w) tl_worker = NULL;
    worker_destroy(w);
}

static void init_once(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (pg > 0) g_page = (size_t)pg;
    pthread_key_create(&g_key, thread_exit_destructor);
    const char *s = getenv("MYTORCH_EMU_SHUFFLE");
    if (s && *s && strcmp(s, "0") != 0) {
        const char *seed = getenv("MYTORCH_EMU_SEED");
        atomic_store(&g_seed, seed ? strtoull(seed, NULL, 0) : 1);
        atomic_store(&g_shuffle, 1);
    }
    const char *t = getenv("MYTORCH_EMU_THREADS");
    if (t && atoi(t) > 0) atomic_store(&g_threads, atoi(t));
    const char *k = getenv("MYTORCH_EMU_STACK_KB");
    if (k && atoi(k) >= 16) g_stack_size = (size_t)atoi(k) * 1024u;
    g_stack_size = (g_stack_size + g_page - 1) / g_page * g_page;
}

static void ensure_init(void) { pthread_once(&g_once, init_once); }

/* ---------------------------------------------------------------- errors */
static int set_error(int code, const char *msg)
{
    tl_error = code;
    snprintf(tl_message, sizeof tl_message, "%s", msg ? msg : "");
    return code;
}

int mt_emu_get_last_error(void) { int e = tl_error; tl_error = MT_EMU_SUCCESS; return e; }
int mt_emu_peek_last_error(void) { return tl_error; }
const char *mt_emu_last_error_message(void) { return tl_message; }

const char *mt_emu_error_string(int code)
{
    switch (code) {
    case MT_EMU_SUCCESS: return "cudaSuccess";
    case MT_EMU_ERROR_INVALID_VALUE: return "cudaErrorInvalidValue";
    case MT_EMU_ERROR_MEMORY_ALLOCATION: return "cudaErrorMemoryAllocation";
    case MT_EMU_ERROR_INVALID_CONFIGURATION: return "cudaErrorInvalidConfiguration";
    case MT_EMU_ERROR_ASSERT: return "cudaErrorAssert";
    case MT_EMU_ERROR_LAUNCH_FAILURE: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
    }
}

/* ---------------------------------------------------------------- memory */
int mt_emu_malloc(void **ptr, size_t bytes)
{
    if (!ptr) return set_error(MT_EMU_ERROR_INVALID_VALUE, "mt_emu_malloc: NULL result pointer");
    *ptr = NULL;
    if (bytes == 0) return MT_EMU_SUCCESS;
    void *p = NULL;     /* the exact size, so that AddressSanitizer sees an access past the end */
    if (posix_memalign(&p, 256, bytes) != 0) p = NULL;
    if (!p) {
        char m[96];
        snprintf(m, sizeof m, "mt_emu_malloc: out of memory (%zu bytes)", bytes);
        return set_error(MT_EMU_ERROR_MEMORY_ALLOCATION, m);
    }
    *ptr = p;
    return MT_EMU_SUCCESS;
}

int mt_emu_free(void *ptr) { free(ptr); return MT_EMU_SUCCESS; }

int mt_emu_memcpy(void *dst, const void *src, size_t bytes, int kind)
{
    if (kind < MT_EMU_MEMCPY_HOST_TO_HOST || kind > MT_EMU_MEMCPY_DEFAULT)
        return set_error(MT_EMU_ERROR_INVALID_VALUE, "mt_emu_memcpy: invalid cudaMemcpyKind");
    if (bytes == 0) return MT_EMU_SUCCESS;
    if (!dst || !src) return set_error(MT_EMU_ERROR_INVALID_VALUE, "mt_emu_memcpy: NULL pointer");
    memmove(dst, src, bytes);
    return MT_EMU_SUCCESS;
}

int mt_emu_memset(void *ptr, int value, size_t bytes)
{
    if (bytes == 0) return MT_EMU_SUCCESS;
    if (!ptr) return set_error(MT_EMU_ERROR_INVALID_VALUE, "mt_emu_memset: NULL pointer");
    memset(ptr, value, bytes);
    return MT_EMU_SUCCESS;
}

int mt_emu_device_synchronize(void) { return tl_error; }
int mt_emu_stream_synchronize(mt_emu_stream_t stream) { (void)stream; return tl_error; }

int mt_emu_func_set_max_dynamic_shared(const void *kernel_id, int bytes)
{
    if (!kernel_id || bytes < 0 || (size_t)bytes > MT_EMU_MAX_DYNAMIC_SHARED)
        return set_error(MT_EMU_ERROR_INVALID_VALUE, "cudaFuncSetAttribute: invalid kernel or size");
    pthread_mutex_lock(&g_lock);
    int i = 0;
    while (i < g_nattrs && g_attrs[i].kernel != kernel_id) i++;
    int rc = MT_EMU_SUCCESS;
    if (i == g_nattrs && g_nattrs == MT_EMU_MAX_ATTRS) rc = MT_EMU_ERROR_MEMORY_ALLOCATION;
    else {
        if (i == g_nattrs) g_nattrs++;
        g_attrs[i].kernel = kernel_id;
        g_attrs[i].max_dyn = bytes;
    }
    pthread_mutex_unlock(&g_lock);
    return rc == MT_EMU_SUCCESS ? rc : set_error(rc, "cudaFuncSetAttribute: too many kernels");
}

static size_t max_dynamic_shared(const void *kernel_id)
{
    size_t lim = MT_EMU_DEFAULT_MAX_DYNAMIC_SHARED;
    if (!kernel_id) return lim;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nattrs; i++)
        if (g_attrs[i].kernel == kernel_id && (size_t)g_attrs[i].max_dyn > lim) lim = (size_t)g_attrs[i].max_dyn;
    pthread_mutex_unlock(&g_lock);
    return lim;
}

/* ---------------------------------------------------------------- settings and statistics */
void mt_emu_set_shuffle(int enabled, uint64_t seed)
{
    ensure_init();
    atomic_store(&g_seed, seed);
    atomic_store(&g_launch_counter, 0);
    atomic_store(&g_shuffle, enabled ? 1 : 0);
}
int mt_emu_get_shuffle(void) { ensure_init(); return atomic_load(&g_shuffle); }
void mt_emu_set_threads(int n) { ensure_init(); atomic_store(&g_threads, n > 0 ? n : 0); }
int mt_emu_get_threads(void)
{
    ensure_init();
    int n = atomic_load(&g_threads);
    return n > 0 ? n : omp_get_max_threads();
}

const char *mt_emu_switch_kind(void)
{
    if (MT_EMU_ASM_SWITCH) return MT_EMU_ASAN ? "x86-64 asm + ASan annotations" : "x86-64 asm";
    return MT_EMU_ASAN ? "ucontext + ASan annotations" : "ucontext";
}

void mt_emu_get_stats(mt_emu_stats *out)
{
    if (!out) return;
    out->launches = atomic_load(&g_stats.launches);
    out->blocks = atomic_load(&g_stats.blocks);
    out->threads = atomic_load(&g_stats.threads);
    out->switches = atomic_load(&g_stats.switches);
    out->fibers_started = atomic_load(&g_stats.fibers);
    out->block_barriers = atomic_load(&g_stats.barriers);
    out->warp_ops = atomic_load(&g_stats.warp_ops);
}

void mt_emu_reset_stats(void)
{
    atomic_store(&g_stats.launches, 0);
    atomic_store(&g_stats.blocks, 0);
    atomic_store(&g_stats.threads, 0);
    atomic_store(&g_stats.switches, 0);
    atomic_store(&g_stats.fibers, 0);
    atomic_store(&g_stats.barriers, 0);
    atomic_store(&g_stats.warp_ops, 0);
}

/* ---------------------------------------------------------------- random orders */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void shuffle_ints(emu_worker *w, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(splitmix64(&w->rng) % (uint64_t)(i + 1));
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

/* ---------------------------------------------------------------- fibers */
static emu_fiber *fiber_new(emu_worker *w)
{
    if (w->nfibers == w->fibers_cap) {
        int cap = w->fibers_cap ? 2 * w->fibers_cap : 64;
        emu_fiber **nf = realloc(w->fibers, (size_t)cap * sizeof *nf);
        if (!nf) return NULL;
        w->fibers = nf;
        w->fibers_cap = cap;
    }
    emu_fiber *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->map_size = g_stack_size + g_page;
    void *m = mmap(NULL, f->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) { free(f); return NULL; }
    f->map = m;
    mprotect(f->map, g_page, PROT_NONE);     /* the guard page: a stack overflow faults */
    f->stack = f->map + g_page;
    f->size = g_stack_size;
#if MT_EMU_VALGRIND
    f->vg_id = VALGRIND_STACK_REGISTER(f->stack, f->stack + f->size);
#endif
    w->fibers[w->nfibers++] = f;
    return f;
}

static void fiber_delete(emu_fiber *f)
{
#if MT_EMU_VALGRIND
    VALGRIND_STACK_DEREGISTER(f->vg_id);
#endif
#if MT_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(f->stack, f->size);
#endif
    munmap(f->map, f->map_size);
    free(f);
}

#if !MT_EMU_ASM_SWITCH
/* (a function of its own: getcontext returns twice) */
static __attribute__((noinline)) void fiber_make_context(emu_fiber *f)
{
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack;
    f->uc.uc_stack.ss_size = f->size;
    f->uc.uc_link = NULL;
    makecontext(&f->uc, (void (*)(void))mt_emu_fiber_main, 0);
}
#endif

/* A fiber ready to start mt_emu_fiber_main from scratch, or NULL. */
static __attribute__((noinline)) emu_fiber *fiber_get(emu_worker *w)
{
    emu_fiber *f = w->free_list;
    if (f) w->free_list = f->next_free;
    else if (!(f = fiber_new(w))) return NULL;
#if MT_EMU_ASAN
    /* Frames left by the fiber's previous run (its last switch-out, or a
       kernel abandoned on error) may have left redzones poisoned. */
    ASAN_UNPOISON_MEMORY_REGION(f->stack, f->size);
#endif
    f->dirty = false;
    f->asan_fake = NULL;
#if MT_EMU_ASM_SWITCH
    uintptr_t top = ((uintptr_t)f->stack + f->size) & ~(uintptr_t)15;
    void **sp = (void **)(top - 16);
    sp[0] = NULL;                            /* the trampoline's return-address slot */
    sp[1] = NULL;
    *--sp = (void *)mt_emu_fiber_trampoline; /* where the switch's `ret` goes */
    for (int i = 0; i < 6; i++) *--sp = NULL; /* r15 r14 r13 r12 rbx rbp */
    f->sp = sp;
#else
    fiber_make_context(f);
#endif
    w->n_fiber++;
    return f;
}

static void fiber_put(emu_worker *w, emu_fiber *f)
{
    f->next_free = w->free_list;
    w->free_list = f;
}

static void ctx_switch(emu_worker *w, emu_fiber *from, emu_fiber *to, bool from_dying)
{
    w->n_switch++;
#if MT_EMU_ASAN
    __sanitizer_start_switch_fiber(from_dying ? NULL : &from->asan_fake, to->stack, to->size);
#else
    (void)from_dying;
#endif
#if MT_EMU_ASM_SWITCH
    mt_emu_ctx_switch(&from->sp, to->sp);
#else
    swapcontext(&from->uc, &to->uc);
#endif
#if MT_EMU_ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

/* ---------------------------------------------------------------- workers */
static void worker_destroy(emu_worker *w)
{
    if (!w) return;
    for (int i = 0; i < w->nfibers; i++) fiber_delete(w->fibers[i]);
    free(w->fibers);
    free(w->threads);
    free(w->warps);
    free(w->queue);
    free(w->scratch);
#if MT_EMU_ASAN
    if (w->dyn) ASAN_UNPOISON_MEMORY_REGION(w->dyn, w->dyn_cap);
#endif
    free(w->dyn);
    free(w);
}

static emu_worker *worker_get(void)
{
    if (tl_worker) return tl_worker;
    emu_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_lock(&g_lock);
    w->next = g_workers;
    g_workers = w;
    pthread_mutex_unlock(&g_lock);
    pthread_setspecific(g_key, w);
    tl_worker = w;
    return w;
}

void mt_emu_trim(void)
{
    emu_worker *w = tl_worker;
    if (!w || w->in_block) return;
    pthread_setspecific(g_key, NULL);
    thread_exit_destructor(w);
}

static bool worker_reserve(emu_worker *w, int nthreads, size_t shmem)
{
    if (nthreads > w->cap) {
        int cap = nthreads;
        int nwarps = (cap + 31) / 32;
        emu_thread *t = realloc(w->threads, (size_t)cap * sizeof *t);
        if (t) w->threads = t;
        emu_warp *wp = realloc(w->warps, (size_t)nwarps * sizeof *wp);
        if (wp) w->warps = wp;
        int *q = realloc(w->queue, (size_t)cap * sizeof *q);
        if (q) w->queue = q;
        int *s = realloc(w->scratch, (size_t)cap * sizeof *s);
        if (s) w->scratch = s;
        if (!t || !wp || !q || !s) return false;
        w->cap = cap;
        w->shape = (mt_emu_dim3){ 0, 0, 0 };
    }
    if (shmem > w->dyn_cap) {
        size_t cap = (shmem + 63u) & ~(size_t)63u;
#if MT_EMU_ASAN
        if (w->dyn) ASAN_UNPOISON_MEMORY_REGION(w->dyn, w->dyn_cap);
#endif
        void *d = aligned_alloc(64, cap);
        if (!d) return false;
        free(w->dyn);
        w->dyn = d;
        w->dyn_cap = cap;
    }
#if MT_EMU_ASAN
    /* only this launch's bytes of dynamic shared memory are addressable */
    if (w->dyn) {
        ASAN_UNPOISON_MEMORY_REGION(w->dyn, shmem);
        ASAN_POISON_MEMORY_REGION(w->dyn + shmem, w->dyn_cap - shmem);
    }
#endif
    return true;
}

/* ---------------------------------------------------------------- the scheduler */
static void q_push(emu_worker *w, int tid)
{
    int i = w->qhead + w->qlen;
    if (i >= w->nthreads) i -= w->nthreads;
    w->queue[i] = tid;
    w->qlen++;
}

static int q_pop(emu_worker *w)
{
    int tid = w->queue[w->qhead];
    if (++w->qhead == w->nthreads) w->qhead = 0;
    w->qlen--;
    return tid;
}

static void activate(emu_worker *w, emu_thread *t)
{
    w->cur = t;
    w->cur_fiber = t->fiber;
    t->state = T_RUNNING;
    mt_emu_threadIdx = t->idx;
}

static const char *warp_op_name(int op)
{
    static const char *const names[MT_EMU_WARP_N_OPS] = {
        "__syncwarp", "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
        "__ballot_sync", "__any_sync", "__all_sync", "__match_any_sync", "__match_all_sync",
        "__reduce_add_sync", "__reduce_min_sync", "__reduce_max_sync", "__reduce_min_sync",
        "__reduce_max_sync", "__reduce_and_sync", "__reduce_or_sync", "__reduce_xor_sync",
    };
    return op >= 0 && op < MT_EMU_WARP_N_OPS ? names[op] : "?";
}

/* Records the first error of the launch. */
static void launch_fail(const emu_launch *Lc, int code, const char *msg)
{
    emu_launch *L = (emu_launch *)Lc;
    int expected = 0;
    if (atomic_compare_exchange_strong(&L->failed, &expected, 1)) {
        L->code = code;
        snprintf(L->msg, sizeof L->msg, "%s", msg);
    }
}

/* Fails the launch from inside a fiber: the block stops where it is (its
   fibers are abandoned) and the worker's scheduler gets control back. */
__attribute__((noreturn, cold, noinline, format(printf, 3, 4)))
static void block_fail(emu_worker *w, int code, const char *fmt, ...)
{
    char body[480], msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "kernel %s, block (%u,%u,%u): %s", w->L->name ? w->L->name : "?",
             mt_emu_blockIdx.x, mt_emu_blockIdx.y, mt_emu_blockIdx.z, body);
    launch_fail(w->L, code, msg);
    w->aborted = true;
    ctx_switch(w, w->cur_fiber, &w->main, false);
    __builtin_unreachable();
}

__attribute__((noreturn, cold, noinline))
static void deadlock(emu_worker *w)
{
    int at_block = 0, at_warp = 0, first = -1;
    for (int i = 0; i < w->nthreads; i++) {
        if (w->threads[i].state == T_WAIT_BLOCK) at_block++;
        if (w->threads[i].state == T_WAIT_WARP) { at_warp++; if (first < 0) first = i; }
    }
    if (first >= 0) {
        emu_thread *t = &w->threads[first];
        emu_warp *W = &w->warps[first >> 5];
        unsigned mask = 0, missing = 0;
        for (int k = 0; k < W->ninst; k++)
            if (W->inst[k].arrived & (1u << (first & 31))) {
                mask = W->inst[k].mask;
                missing = mask & W->live & ~W->inst[k].arrived;
            }
        block_fail(w, MT_EMU_ERROR_LAUNCH_FAILURE,
                   "deadlock: %d threads wait at __syncthreads, %d at warp operations "
                   "(e.g. thread (%u,%u,%u) of warp %d at %s with mask 0x%08x, whose lanes 0x%08x never arrive)",
                   at_block, at_warp, t->idx.x, t->idx.y, t->idx.z, first >> 5, warp_op_name(t->wop), mask, missing);
    }
    block_fail(w, MT_EMU_ERROR_LAUNCH_FAILURE, "deadlock: %d threads wait at __syncthreads", at_block);
}

/* Hands the OS thread to the next ready thread. The caller (w->cur) either
   waits at a barrier (returns when it has been resumed) or has exited
   (cur_done: its fiber either runs the next thread, returning with w->cur set
   to it, or is given up). */
static void yield_next(emu_worker *w, bool cur_done)
{
    emu_fiber *self = w->cur_fiber;
    if (w->qlen == 0) {
        if (w->live > 0) {
            if (cur_done) { self->dirty = true; fiber_put(w, self); }   /* not referenced by a thread any more */
            deadlock(w);
        }
        /* the block is complete */
        fiber_put(w, self);
        ctx_switch(w, self, &w->main, true);
        __builtin_unreachable();
    }
    emu_thread *t = &w->threads[q_pop(w)];
    if (!t->fiber) {
        if (cur_done) {         /* run it on this fiber: no switch */
            t->fiber = self;
            activate(w, t);
            return;
        }
        if (!(t->fiber = fiber_get(w)))
            block_fail(w, MT_EMU_ERROR_MEMORY_ALLOCATION, "out of memory for fiber stacks");
    } else if (t->fiber == self) {
        activate(w, t);         /* the caller completed the barrier and is first again */
        return;
    }
    activate(w, t);
    if (cur_done) fiber_put(w, self);
    ctx_switch(w, self, t->fiber, cur_done);
}

static void block_barrier_complete(emu_worker *w)
{
    int n = 0;
    for (int i = 0; i < w->nthreads; i++)
        if (w->threads[i].state == T_WAIT_BLOCK) w->scratch[n++] = i;
    if (w->L->shuffle) shuffle_ints(w, w->scratch, n);
    int cnt = w->sync_true;
    for (int k = 0; k < n; k++) {
        emu_thread *t = &w->threads[w->scratch[k]];
        switch (t->sync_op) {
        case MT_EMU_SYNC_COUNT: t->sync_res = cnt; break;
        case MT_EMU_SYNC_AND: t->sync_res = cnt == n; break;
        case MT_EMU_SYNC_OR: t->sync_res = cnt > 0; break;
        default: t->sync_res = 0; break;
        }
        t->state = T_READY;
        q_push(w, w->scratch[k]);
    }
    w->sync_arrived = 0;
    w->sync_true = 0;
    w->n_barrier++;
}

static bool is_shfl(int op) { return op >= MT_EMU_WARP_SHFL_IDX && op <= MT_EMU_WARP_SHFL_XOR; }

/* Computes every participant's result of warp wi's barrier k, removes the
   barrier and makes its threads ready. */
static void warp_barrier_complete(emu_worker *w, int wi, int k)
{
    emu_warp *W = &w->warps[wi];
    emu_winst in = W->inst[k];
    W->inst[k] = W->inst[--W->ninst];
    emu_thread *base = &w->threads[wi * 32];
    unsigned P = in.arrived;
    uint64_t all = 0;
    switch (in.op) {
    case MT_EMU_WARP_SYNC:
        break;
    case MT_EMU_WARP_SHFL_IDX: case MT_EMU_WARP_SHFL_UP: case MT_EMU_WARP_SHFL_DOWN: case MT_EMU_WARP_SHFL_XOR:
        for (unsigned m = P; m; m &= m - 1) {
            unsigned l = (unsigned)__builtin_ctz(m);
            emu_thread *t = &base[l];
            unsigned wd = (unsigned)t->wwidth, lo = l & ~(wd - 1), src = l, arg = (unsigned)t->warg;
            switch (t->wop) {
            case MT_EMU_WARP_SHFL_IDX: src = lo + (arg & (wd - 1)); break;
            case MT_EMU_WARP_SHFL_UP: src = (l - lo) >= arg ? l - arg : l; break;
            case MT_EMU_WARP_SHFL_DOWN: src = (uint64_t)(l - lo) + arg < wd ? l + arg : l; break;
            default: src = l ^ arg; if (src >= lo + wd) src = l; break;   /* later groups: own value */
            }
            if (src < 32 && (P >> src & 1u)) t->wres = base[src].wval;
            else t->wres = w->L->shuffle ? MT_EMU_POISON : t->wval;   /* undefined in CUDA */
        }
        break;
    case MT_EMU_WARP_BALLOT: case MT_EMU_WARP_ANY: case MT_EMU_WARP_ALL: {
        unsigned b = 0;
        for (unsigned m = P; m; m &= m - 1) {
            unsigned l = (unsigned)__builtin_ctz(m);
            if (base[l].wval) b |= 1u << l;
        }
        all = in.op == MT_EMU_WARP_BALLOT ? b : in.op == MT_EMU_WARP_ANY ? b != 0 : b == P;
        break;
    }
    case MT_EMU_WARP_MATCH_ANY: case MT_EMU_WARP_MATCH_ALL: {
        bool same = true;
        for (unsigned m = P; m; m &= m - 1) {
            unsigned l = (unsigned)__builtin_ctz(m), eq = 0;
            for (unsigned m2 = P; m2; m2 &= m2 - 1) {
                unsigned l2 = (unsigned)__builtin_ctz(m2);
                if (base[l2].wval == base[l].wval) eq |= 1u << l2;
            }
            base[l].wres = eq;
            if (eq != P) same = false;
        }
        if (in.op == MT_EMU_WARP_MATCH_ALL) all = same ? ((uint64_t)1 << 32) | P : 0;
        break;
    }
    default: {                                  /* reductions over 32-bit values */
        uint32_t acc = 0;
        bool first = true;
        for (unsigned m = P; m; m &= m - 1) {
            uint32_t v = (uint32_t)base[__builtin_ctz(m)].wval;
            if (first) { acc = v; first = false; continue; }
            switch (in.op) {
            case MT_EMU_WARP_REDUCE_ADD: acc += v; break;
            case MT_EMU_WARP_REDUCE_MIN_U: acc = v < acc ? v : acc; break;
            case MT_EMU_WARP_REDUCE_MAX_U: acc = v > acc ? v : acc; break;
            case MT_EMU_WARP_REDUCE_MIN_I: acc = (int32_t)v < (int32_t)acc ? v : acc; break;
            case MT_EMU_WARP_REDUCE_MAX_I: acc = (int32_t)v > (int32_t)acc ? v : acc; break;
            case MT_EMU_WARP_REDUCE_AND: acc &= v; break;
            case MT_EMU_WARP_REDUCE_OR: acc |= v; break;
            default: acc ^= v; break;
            }
        }
        all = acc;
        break;
    }
    }
    int n = 0;
    for (unsigned m = P; m; m &= m - 1) w->scratch[n++] = wi * 32 + __builtin_ctz(m);
    if (w->L->shuffle) shuffle_ints(w, w->scratch, n);
    for (int i = 0; i < n; i++) {
        emu_thread *t = &w->threads[w->scratch[i]];
        if (!is_shfl(in.op) && in.op != MT_EMU_WARP_MATCH_ANY) t->wres = all;
        t->state = T_READY;
        q_push(w, w->scratch[i]);
    }
    w->n_warpop++;
}

/* The current thread's body has returned. */
static void thread_exit(emu_worker *w, emu_thread *t)
{
    int tid = (int)(t - w->threads);
    int wi = tid >> 5;
    emu_warp *W = &w->warps[wi];
    t->state = T_DONE;
    t->fiber = NULL;
    w->live--;
    W->live &= ~(1u << (tid & 31));
    if (w->sync_arrived > 0 && w->sync_arrived == w->live) block_barrier_complete(w);
    for (int k = 0; k < W->ninst;) {
        emu_winst *in = &W->inst[k];
        if (!(in->mask & W->live & ~in->arrived)) warp_barrier_complete(w, wi, k);   /* removes k */
        else k++;
    }
}

void mt_emu_fiber_main(void)
{
    emu_worker *w = tl_worker;
#if MT_EMU_ASAN
    const void *bottom = NULL;
    size_t size = 0;
    __sanitizer_finish_switch_fiber(NULL, &bottom, &size);
    if (w->from_main) {         /* learn the scheduler's stack, to switch back to it */
        w->main.stack = (char *)bottom;
        w->main.size = size;
    }
#endif
    w->from_main = false;
    const emu_launch *L = w->L;
    for (;;) {
        L->fn(L->ctx);
        thread_exit(w, w->cur);
        yield_next(w, true);    /* returns when this fiber is to run the next thread */
    }
}

static void run_block(emu_worker *w, const emu_launch *L, uint64_t b)
{
    unsigned gx = L->grid.x, gy = L->grid.y;
    mt_emu_blockIdx.x = (unsigned)(b % gx);
    mt_emu_blockIdx.y = (unsigned)(b / gx % gy);
    mt_emu_blockIdx.z = (unsigned)(b / ((uint64_t)gx * gy));
    if (L->shuffle) {
        uint64_t s = L->seed ^ (b * 0xD1B54A32D192ED03ull);
        w->rng = splitmix64(&s);
    }
    int n = (int)L->nthreads;
    w->nthreads = n;
    w->live = n;
    w->sync_arrived = w->sync_true = 0;
    w->aborted = false;
    for (int i = 0; i < n; i++) {
        w->threads[i].state = T_READY;
        w->threads[i].fiber = NULL;
    }
    for (int wi = 0; wi < (n + 31) / 32; wi++) {
        int lanes = n - wi * 32 < 32 ? n - wi * 32 : 32;
        w->warps[wi].exists = w->warps[wi].live = lanes == 32 ? 0xFFFFFFFFu : (1u << lanes) - 1;
        w->warps[wi].ninst = 0;
    }
    w->qhead = 0;
    w->qlen = n;
    for (int i = 0; i < n; i++) w->queue[i] = i;
    if (L->shuffle) {
        shuffle_ints(w, w->queue, n);
        if (L->shmem) memset(w->dyn, 0xFF, L->shmem);   /* uninitialised shared memory reads as NaN */
    }
    emu_thread *t = &w->threads[q_pop(w)];
    if (!(t->fiber = fiber_get(w))) {
        char msg[200];
        snprintf(msg, sizeof msg, "kernel %s: out of memory for fiber stacks", L->name ? L->name : "?");
        launch_fail(L, MT_EMU_ERROR_MEMORY_ALLOCATION, msg);
        return;
    }
    activate(w, t);
    w->from_main = true;
    ctx_switch(w, &w->main, t->fiber, false);
    if (w->aborted) {           /* give back the fibers of the abandoned threads */
        for (int i = 0; i < n; i++) {
            emu_fiber *f = w->threads[i].fiber;
            if (f) { f->dirty = true; fiber_put(w, f); w->threads[i].fiber = NULL; }
        }
    }
    w->cur = NULL;
    w->cur_fiber = NULL;
}

static uint64_t nblocks_of(const emu_launch *L) { return (uint64_t)L->grid.x * L->grid.y * L->grid.z; }

static void run_blocks(const emu_launch *L, uint64_t b0, uint64_t b1)
{
    emu_worker *w = worker_get();
    if (!w || !worker_reserve(w, (int)L->nthreads, L->shmem)) {
        char msg[200];
        snprintf(msg, sizeof msg, "kernel %s: out of memory for the emulator's block state", L->name ? L->name : "?");
        launch_fail(L, MT_EMU_ERROR_MEMORY_ALLOCATION, msg);
        return;
    }
    mt_emu_blockDim = (mt_emu_uint3){ L->block.x, L->block.y, L->block.z };
    if (w->shape.x != L->block.x || w->shape.y != L->block.y || w->shape.z != L->block.z) {
        unsigned bx = L->block.x, by = L->block.y, i = 0;
        for (unsigned z = 0; z < L->block.z; z++)
            for (unsigned y = 0; y < by; y++)
                for (unsigned x = 0; x < bx; x++, i++) w->threads[i].idx = (mt_emu_uint3){ x, y, z };
        w->shape = L->block;
    }
    mt_emu_gridDim = (mt_emu_uint3){ L->grid.x, L->grid.y, L->grid.z };
    w->L = L;
    w->n_switch = w->n_fiber = w->n_barrier = w->n_warpop = 0;
    w->in_block = true;
    uint64_t done = 0;
    for (uint64_t b = b0; b < b1; b++) {
        if (atomic_load_explicit(&((emu_launch *)L)->failed, memory_order_relaxed)) break;
        run_block(w, L, L->rotate ? (b + L->rotate) % nblocks_of(L) : b);
        done++;
    }
    w->in_block = false;
    w->L = NULL;
    atomic_fetch_add(&g_stats.blocks, done);
    atomic_fetch_add(&g_stats.threads, done * L->nthreads);
    atomic_fetch_add(&g_stats.switches, w->n_switch);
    atomic_fetch_add(&g_stats.fibers, w->n_fiber);
    atomic_fetch_add(&g_stats.barriers, w->n_barrier);
    atomic_fetch_add(&g_stats.warp_ops, w->n_warpop);
}

int mt_emu_launch(const char *name, const void *kernel_id, mt_emu_dim3 grid, mt_emu_dim3 block,
                  size_t dynamic_shared_bytes, mt_emu_stream_t stream, void (*fn)(void *), void *ctx)
{
    (void)stream;
    ensure_init();
    char msg[400];
    const char *kn = name ? name : "?";
    if (!fn) return set_error(MT_EMU_ERROR_INVALID_VALUE, "mt_emu_launch: NULL kernel");
    if (tl_worker && tl_worker->in_block) {
        snprintf(msg, sizeof msg, "kernel %s launched from inside a kernel: dynamic parallelism is not emulated", kn);
        return set_error(MT_EMU_ERROR_LAUNCH_FAILURE, msg);
    }
    uint64_t nthreads = (uint64_t)block.x * block.y * block.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0 ||
        nthreads > MT_EMU_MAX_THREADS_PER_BLOCK || block.z > MT_EMU_MAX_BLOCK_Z ||
        grid.x > 0x7FFFFFFFu || grid.y > MT_EMU_MAX_GRID_YZ || grid.z > MT_EMU_MAX_GRID_YZ) {
        snprintf(msg, sizeof msg, "kernel %s: invalid configuration grid (%u,%u,%u) block (%u,%u,%u)", kn,
                 grid.x, grid.y, grid.z, block.x, block.y, block.z);
        return set_error(MT_EMU_ERROR_INVALID_CONFIGURATION, msg);
    }
    size_t lim = max_dynamic_shared(kernel_id);
    if (dynamic_shared_bytes > lim) {
        snprintf(msg, sizeof msg, "kernel %s: %zu bytes of dynamic shared memory exceed the limit of %zu "
                 "(raise it with cudaFuncSetAttribute(..., cudaFuncAttributeMaxDynamicSharedMemorySize, ...))",
                 kn, dynamic_shared_bytes, lim);
        return set_error(MT_EMU_ERROR_INVALID_CONFIGURATION, msg);
    }
    emu_launch L = { .name = kn, .fn = fn, .ctx = ctx, .grid = grid, .block = block,
                     .nthreads = (unsigned)nthreads, .shmem = dynamic_shared_bytes };
    atomic_init(&L.failed, 0);
    uint64_t launch_no = atomic_fetch_add(&g_launch_counter, 1);
    L.shuffle = atomic_load(&g_shuffle) != 0;
    if (L.shuffle) {
        uint64_t s = atomic_load(&g_seed) ^ (launch_no * 0x9E3779B97F4A7C15ull);
        L.seed = splitmix64(&s);
        /* Static __shared__ memory is a thread_local of the OS thread running
           the block and keeps the last block's values; with the blocks dealt
           out to OS threads the same way in every launch, a block would find
           its own values of the previous launch and a missing barrier could
           read the right number. Rotating the deal makes them another
           block's. */
        L.rotate = L.seed % ((uint64_t)grid.x * grid.y * grid.z);
    }
    atomic_fetch_add(&g_stats.launches, 1);

    uint64_t nblocks = (uint64_t)grid.x * grid.y * grid.z;
    int nt = mt_emu_get_threads();
    if ((uint64_t)nt > nblocks) nt = (int)nblocks;
    if (nt <= 1) {
        run_blocks(&L, 0, nblocks);
    } else {
#pragma omp parallel num_threads(nt)
        {
            uint64_t id = (uint64_t)omp_get_thread_num(), team = (uint64_t)omp_get_num_threads();
            run_blocks(&L, nblocks * id / team, nblocks * (id + 1) / team);
        }
    }
    if (atomic_load(&L.failed)) return set_error(L.code, L.msg);
    return MT_EMU_SUCCESS;
}

/* ---------------------------------------------------------------- device-side entry points */
static emu_worker *device_worker(const char *what)
{
    emu_worker *w = tl_worker;
    if (!w || !w->in_block || !w->cur) {
        fprintf(stderr, "mytorch simt emulator: %s called outside a kernel\n", what);
        return NULL;
    }
    return w;
}

int mt_emu_syncthreads_op(int op, int pred)
{
    emu_worker *w = device_worker("__syncthreads");
    if (!w) return 0;
    emu_thread *t = w->cur;
    t->sync_op = op;
    t->state = T_WAIT_BLOCK;
    w->sync_arrived++;
    if (pred) w->sync_true++;
    if (w->sync_arrived == w->live) block_barrier_complete(w);
    yield_next(w, false);
    return t->sync_res;
}

uint64_t mt_emu_warp_op(int op, unsigned int mask, uint64_t value, int arg, int width)
{
    emu_worker *w = device_worker(warp_op_name(op));
    if (!w) return value;
    emu_thread *t = w->cur;
    int tid = (int)(t - w->threads), wi = tid >> 5;
    unsigned lane = (unsigned)tid & 31u, bit = 1u << lane;
    emu_warp *W = &w->warps[wi];
    if (op < 0 || op >= MT_EMU_WARP_N_OPS)
        block_fail(w, MT_EMU_ERROR_LAUNCH_FAILURE, "unknown warp operation %d", op);
    if (!(mask & bit))
        block_fail(w, MT_EMU_ERROR_LAUNCH_FAILURE, "thread (%u,%u,%u) (lane %u) calls %s with mask 0x%08x, "
                   "which does not name its own lane", t->idx.x, t->idx.y, t->idx.z, lane, warp_op_name(op), mask);
    if (is_shfl(op) && (width < 1 || width > 32 || (width & (width - 1))))
        block_fail(w, MT_EMU_ERROR_LAUNCH_FAILURE, "thread (%u,%u,%u) calls %s with width %d "
                   "(must be a power of 2 in [1, 32])", t->idx.x, t->idx.y, t->idx.z, warp_op_name(op), width);
    unsigned m = mask & W->exists;
    emu_winst *in = NULL;
    for (int k = 0; k < W->ninst; k++) {
        if (!(W->inst[k].mask & m)) continue;
        in = &W->inst[k];
        if (in->mask != m)
            block_fail(w, MT_EMU_ERROR_LAUNCH_FAILURE, "warp %d: lane %u calls %s with mask 0x%08x while lanes "
                       "0x%08x wait in %s with mask 0x%08x", wi, lane, warp_op_name(op), mask, in->arrived,
                       warp_op_name(in->op), in->mask);
        if (in->op != op && !(is_shfl(in->op) && is_shfl(op)))
            block_fail(w, MT_EMU_ERROR_LAUNCH_FAILURE, "warp %d: lane %u reaches %s while lanes 0x%08x wait in %s "
                       "(mask 0x%08x)", wi, lane, warp_op_name(op), in->arrived, warp_op_name(in->op), in->mask);
        break;
    }
    if (!in) {
        in = &W->inst[W->ninst++];
        in->mask = m;
        in->arrived = 0;
        in->op = op;
    }
    t->wop = op;
    t->warg = arg;
    t->wwidth = width;
    t->wval = value;
    t->state = T_WAIT_WARP;
    in->arrived |= bit;
    if (!(in->mask & W->live & ~in->arrived)) warp_barrier_complete(w, wi, (int)(in - W->inst));
    yield_next(w, false);
    return t->wres;
}

unsigned int mt_emu_activemask(void)
{
    emu_worker *w = device_worker("__activemask");
    if (!w) return 0;
    return w->warps[(w->cur - w->threads) >> 5].live;
}

void *mt_emu_dynamic_shared(void)
{
    emu_worker *w = tl_worker;
    return w ? (void *)w->dyn : NULL;
}

void mt_emu_trap(void)
{
    emu_worker *w = device_worker("__trap");
    if (!w) abort();
    emu_thread *t = w->cur;
    block_fail(w, MT_EMU_ERROR_ASSERT, "__trap() in thread (%u,%u,%u)", t->idx.x, t->idx.y, t->idx.z);
}
