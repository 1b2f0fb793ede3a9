/*
 * cuda_runtime.c - the CUDA host runtime (see cuda_runtime.h): discovery,
 * properties, streams and events, pinned memory, cuBLAS handles, flags.
 *
 * Everything that needs cudart or cuBLAS is under MYTORCH_HAVE_CUDA_TOOLKIT;
 * without it (or without a GPU) the same functions answer for the cpu and
 * cuda-emu devices and say why cuda is not available. Every cudart and
 * cuBLAS return code is checked: a failing call that has a status to return
 * records the error (mt_set_error), an asynchronous one (a copy, a GEMM)
 * records a device error (mt_device_record_error), both naming the call and
 * the CUDA error's name. A failed cudart call also sets cudart's per-thread
 * "last error"; it is cleared at once, so that a kernel wrapper checking
 * cudaGetLastError() after its launch never sees someone else's failure.
 */
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#endif

#include "host/cuda_runtime.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- flags */
static bool allow_tf32;
static bool deterministic;

bool mt_set_allow_tf32(bool allow) { return __atomic_exchange_n(&allow_tf32, allow, __ATOMIC_ACQ_REL); }
bool mt_get_allow_tf32(void) { return __atomic_load_n(&allow_tf32, __ATOMIC_ACQUIRE); }
bool mt_set_deterministic(bool on) { return __atomic_exchange_n(&deterministic, on, __ATOMIC_ACQ_REL); }
bool mt_get_deterministic(void) { return __atomic_load_n(&deterministic, __ATOMIC_ACQUIRE); }

bool mt_cuda_built(void)
{
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
    return true;
#else
    return false;
#endif
}

/* ---------------------------------------------------------------- row-major GEMM mapping */
static int64_t at_least_1(int64_t v) { return v < 1 ? 1 : v; }

mt_gemm_colmajor mt_gemm_row_to_col_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                          const void *a, int64_t lda, int64_t stride_a,
                                          const void *b, int64_t ldb, int64_t stride_b, int64_t ldc)
{
    /* Row-major X with leading dimension ld is column-major X^T with the same ld. */
    return (mt_gemm_colmajor){
        .trans_a = trans_b, .trans_b = trans_a,
        .m = n, .n = m, .k = k,
        .a = b, .lda = at_least_1(ldb), .stride_a = stride_b,
        .b = a, .ldb = at_least_1(lda), .stride_b = stride_a,
        .ldc = at_least_1(ldc),
    };
}

/* ---------------------------------------------------------------- streams and events (common part) */
struct mt_stream {
    mt_device device;
    void *native;              /* cudaStream_t (cuda only) */
    pthread_mutex_t lock;      /* serialises the cuBLAS handle's configuration and calls */
    void *blas;                /* cublasHandle_t, created on first use */
    void *workspace;           /* its fixed workspace (device memory) */
    unsigned blas_config;      /* the flags last applied to the handle (bit 0: tf32, bit 1: deterministic), +4 once set */
};

struct mt_event {
    mt_device device;
    void *native;              /* cudaEvent_t (cuda only) */
    bool recorded;
    double host_ms;            /* cpu, cuda-emu: the host's clock when recorded */
};

static _Thread_local mt_stream *current_stream;

mt_stream *mt_set_current_stream(mt_stream *stream)
{
    mt_stream *prev = current_stream;
    current_stream = stream;
    return prev;
}
mt_stream *mt_current_stream(void) { return current_stream; }
mt_device mt_stream_device(const mt_stream *stream) { return stream ? stream->device : mt_runtime_default_device(); }

static const char *device_type_name(mt_device_type t)
{
    return t == MT_DEVICE_CPU ? "cpu" : t == MT_DEVICE_CUDA ? "cuda" : t == MT_DEVICE_CUDA_EMU ? "cuda-emu" : "unknown";
}

static bool device_usable(const char *what, mt_device device)
{
    const char *why = NULL;
    if (mt_device_available(device, &why)) return true;
    mt_set_error(MT_ERR_DEVICE, "%s: device %s:%d is not available: %s", what, device_type_name(device.type),
                 device.index, why ? why : "?");
    return false;
}

#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
/* ================================================================ with the toolkit */

/* A failed cudart call: clears cudart's last error, returns false. */
static bool cuda_failed(cudaError_t e)
{
    if (e == cudaSuccess) return false;
    (void)cudaGetLastError();
    return true;
}
/* For calls whose failure the engine learns of later. */
static bool cuda_ok_async(cudaError_t e, const char *call)
{
    if (!cuda_failed(e)) return true;
    mt_device_record_error(call, (int)e, cudaGetErrorName(e));
    return false;
}
/* For calls that return a status. */
static mt_status cuda_status(cudaError_t e, const char *call)
{
    if (!cuda_failed(e)) return MT_OK;
    return mt_set_error(MT_ERR_DEVICE, "%s: %s (%s)", call, cudaGetErrorString(e), cudaGetErrorName(e));
}
/* ---------------------------------------------------------------- cuBLAS, loaded on first use */
/* cuBLAS is opened with dlopen the first time a GPU is found, not linked:
   libcublas and libcublasLt are some 600 MB of shared objects whose loading
   costs every process about half a second, GPU or not (measured: a test
   binary's start went from 0.05 s to 0.5 s). Only the calls below are used. */
static struct {
    __typeof__(&cublasCreate_v2) create;
    __typeof__(&cublasDestroy_v2) destroy;
    __typeof__(&cublasSetStream_v2) set_stream;
    __typeof__(&cublasSetWorkspace_v2) set_workspace;
    __typeof__(&cublasSetMathMode) set_math_mode;
    __typeof__(&cublasSetAtomicsMode) set_atomics_mode;
    __typeof__(&cublasGetStatusName) status_name;
    __typeof__(&cublasSgemm_v2_64) sgemm;
    __typeof__(&cublasDgemm_v2_64) dgemm;
    __typeof__(&cublasSgemmStridedBatched_64) sgemm_batched;
    __typeof__(&cublasDgemmStridedBatched_64) dgemm_batched;
} blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static bool blas_loaded;
static char blas_error[512];

#define MT_STR_(x) #x
#define MT_STR(x) MT_STR_(x)
#define CUBLAS_SONAME "libcublas.so." MT_STR(CUBLAS_VER_MAJOR)

static void load_cublas(void)
{
    const char *candidates[] = {
        CUBLAS_SONAME,
#ifdef MYTORCH_CUDA_LIBRARY_DIR
        MYTORCH_CUDA_LIBRARY_DIR "/" CUBLAS_SONAME,   /* the toolkit this was built with */
#endif
    };
    void *lib = NULL;
    const char *err = "?";
    char first[256] = "?";   /* why the plain name failed: the likeliest story */
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && !lib; i++) {
        lib = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) { const char *e = dlerror(); if (i == 0 && e) snprintf(first, sizeof first, "%s", e); }
    }
    if (!lib) {
        snprintf(blas_error, sizeof blas_error, "cuda: cuBLAS (%s) could not be loaded: %s", CUBLAS_SONAME, first);
        return;
    }
    struct { void *slot; size_t size; const char *name; } syms[] = {
        { &blas.create, sizeof blas.create, "cublasCreate_v2" },
        { &blas.destroy, sizeof blas.destroy, "cublasDestroy_v2" },
        { &blas.set_stream, sizeof blas.set_stream, "cublasSetStream_v2" },
        { &blas.set_workspace, sizeof blas.set_workspace, "cublasSetWorkspace_v2" },
        { &blas.set_math_mode, sizeof blas.set_math_mode, "cublasSetMathMode" },
        { &blas.set_atomics_mode, sizeof blas.set_atomics_mode, "cublasSetAtomicsMode" },
        { &blas.status_name, sizeof blas.status_name, "cublasGetStatusName" },
        { &blas.sgemm, sizeof blas.sgemm, "cublasSgemm_v2_64" },
        { &blas.dgemm, sizeof blas.dgemm, "cublasDgemm_v2_64" },
        { &blas.sgemm_batched, sizeof blas.sgemm_batched, "cublasSgemmStridedBatched_64" },
        { &blas.dgemm_batched, sizeof blas.dgemm_batched, "cublasDgemmStridedBatched_64" },
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(lib, syms[i].name);
        if (!p) {
            err = dlerror();
            snprintf(blas_error, sizeof blas_error, "cuda: cuBLAS (%s) lacks %s: %s", CUBLAS_SONAME, syms[i].name,
                     err ? err : "?");
            memset(&blas, 0, sizeof blas);
            return;   /* the library stays open: harmless, and dlclose of cuBLAS is not worth the risk */
        }
        memcpy(syms[i].slot, &p, syms[i].size);
    }
    __atomic_store_n(&blas_loaded, true, __ATOMIC_RELEASE);
}

bool mt_cublas_load(const char **why)
{
    pthread_once(&blas_once, load_cublas);
    if (why) *why = blas_loaded ? NULL : blas_error;
    return blas_loaded;
}

static const char *blas_status_name(cublasStatus_t st)
{
    return blas.status_name ? blas.status_name(st) : "CUBLAS_STATUS_?";
}

static bool blas_ok_async(cublasStatus_t st, const char *call)
{
    if (st == CUBLAS_STATUS_SUCCESS) return true;
    (void)cudaGetLastError();
    mt_device_record_error(call, (int)st, blas_status_name(st));
    return false;
}

/* ---------------------------------------------------------------- discovery */
static pthread_once_t discover_once = PTHREAD_ONCE_INIT;
static int device_count;
static int driver_version, runtime_version;
static char unavailable_reason[256];

static void discover(void)
{
    int n = 0;
    (void)cudaRuntimeGetVersion(&runtime_version);
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0) {
        /* A device is listed: make sure a context can be made on it
           (exclusive-process mode, a broken install, AddressSanitizer's
           shadow gap all fail here rather than at the first tensor). */
        e = cudaSetDevice(0);
        if (e == cudaSuccess) e = cudaFree(NULL);
        if (e == cudaSuccess) {
            (void)cudaDriverGetVersion(&driver_version);
            device_count = n;
            return;
        }
    }
    (void)cudaGetLastError();
    if (cudaDriverGetVersion(&driver_version) != cudaSuccess) { driver_version = 0; (void)cudaGetLastError(); }
    if (e == cudaSuccess)   /* n == 0 */
        snprintf(unavailable_reason, sizeof unavailable_reason, "cuda: no CUDA device found");
    else if (e == cudaErrorInsufficientDriver && driver_version == 0)
        snprintf(unavailable_reason, sizeof unavailable_reason, "cuda: no CUDA driver found (%s)", cudaGetErrorName(e));
    else if (e == cudaErrorInsufficientDriver)
        snprintf(unavailable_reason, sizeof unavailable_reason,
                 "cuda: the CUDA driver (%d.%d) is older than this build's CUDA runtime (%d.%d) (%s)",
                 driver_version / 1000, driver_version % 1000 / 10, runtime_version / 1000,
                 runtime_version % 1000 / 10, cudaGetErrorName(e));
    else if (e == cudaErrorNoDevice)
        snprintf(unavailable_reason, sizeof unavailable_reason, "cuda: no CUDA device found (%s)", cudaGetErrorName(e));
    else
        snprintf(unavailable_reason, sizeof unavailable_reason, "cuda: CUDA could not be initialised: %s (%s)",
                 cudaGetErrorString(e), cudaGetErrorName(e));
    device_count = 0;
}

bool mt_cuda_is_available(const char **why)
{
    pthread_once(&discover_once, discover);
    if (why) *why = device_count > 0 ? NULL : unavailable_reason;
    return device_count > 0;
}

int mt_cuda_device_count(void)
{
    pthread_once(&discover_once, discover);
    return device_count;
}

mt_status mt_cuda_get_device_properties(int index, mt_cuda_device_props *out)
{
    const char *why = NULL;
    if (!out) return mt_set_error(MT_ERR_ARGUMENT, "cuda_get_device_properties: NULL output");
    if (!mt_cuda_is_available(&why)) return mt_set_error(MT_ERR_DEVICE, "cuda_get_device_properties: %s", why);
    if (index < 0 || index >= device_count)
        return mt_set_error(MT_ERR_DEVICE, "cuda_get_device_properties: no device %d (%d CUDA device%s)", index,
                            device_count, device_count == 1 ? "" : "s");
    struct cudaDeviceProp p;
    mt_status st = cuda_status(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
    if (st != MT_OK) return st;
    int clock_khz = 0;
    st = cuda_status(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, index),
                     "cudaDeviceGetAttribute(cudaDevAttrMemoryClockRate)");
    if (st != MT_OK) return st;
    memset(out, 0, sizeof *out);
    out->index = index;
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->sm_count = p.multiProcessorCount;
    out->total_memory = p.totalGlobalMem;
    out->shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
    out->max_threads_per_sm = p.maxThreadsPerMultiProcessor;
    out->l2_cache_bytes = p.l2CacheSize;
    out->memory_clock_khz = clock_khz;
    out->memory_bus_width_bits = p.memoryBusWidth;
    out->peak_bandwidth_gbs = 2.0 * (double)clock_khz * 1e3 * (double)p.memoryBusWidth / 8.0 / 1e9;
    out->driver_version = driver_version;
    out->runtime_version = runtime_version;
    return MT_OK;
}

/* ---------------------------------------------------------------- current stream */
static cudaStream_t native_of(const mt_stream *s)
{
    return s && s->device.type == MT_DEVICE_CUDA ? (cudaStream_t)s->native : (cudaStream_t)0;
}
cudaStream_t mt_cuda_current_stream(void) { return native_of(current_stream); }
void *mt_cuda_current_stream_handle(void) { return (void *)native_of(current_stream); }

/* Scratch memory for the kernel wrappers (kernels/cuda/cuda_compat.h): from
   the caching allocator of the calling thread's device, so it follows the
   current stream like every tensor. */
void *mt_cuda_scratch_alloc(size_t nbytes)
{
    int index = 0;
    cudaError_t e = cudaGetDevice(&index);
    if (e != cudaSuccess) {
        (void)cuda_status(e, "cudaGetDevice");
        return NULL;
    }
    return mt_device_alloc((mt_device){ MT_DEVICE_CUDA, index }, nbytes);
}
void mt_cuda_scratch_free(void *ptr, size_t nbytes)
{
    int index = 0;
    if (cudaGetDevice(&index) != cudaSuccess) index = 0;
    mt_device_free((mt_device){ MT_DEVICE_CUDA, index }, ptr, nbytes);
}

/* ---------------------------------------------------------------- the allocator's view of streams */
static void *alloc_ops_current(void) { return (void *)native_of(current_stream); }
static void *alloc_ops_mark(void *stream)
{
    cudaEvent_t ev = NULL;
    if (!cuda_ok_async(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreateWithFlags (allocator)"))
        return NULL;
    if (!cuda_ok_async(cudaEventRecord(ev, (cudaStream_t)stream), "cudaEventRecord (allocator)")) {
        (void)cuda_ok_async(cudaEventDestroy(ev), "cudaEventDestroy (allocator)");
        return NULL;
    }
    return (void *)ev;
}
static bool alloc_ops_passed(void *event)
{
    cudaError_t e = cudaEventQuery((cudaEvent_t)event);
    if (e == cudaSuccess) return true;
    if (e == cudaErrorNotReady) {
        if (cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();
        return false;
    }
    (void)cuda_ok_async(e, "cudaEventQuery (allocator)");
    return false;
}
static void alloc_ops_release(void *event)
{
    (void)cuda_ok_async(cudaEventDestroy((cudaEvent_t)event), "cudaEventDestroy (allocator)");
}
static const mt_alloc_stream_ops cuda_alloc_ops = {
    alloc_ops_current, alloc_ops_mark, alloc_ops_passed, alloc_ops_release,
};
const mt_alloc_stream_ops *mt_cuda_alloc_stream_ops(void) { return &cuda_alloc_ops; }

/* ---------------------------------------------------------------- streams */
static mt_stream default_stream = {
    .device = { MT_DEVICE_CUDA, 0 }, .native = NULL, .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* cudaStreamCreate: a blocking stream, ordered with the legacy default
   stream (work there waits for it and it for work there), so that work issued
   on the default stream and on s never overlaps unordered. */
static mt_status create_native_stream(mt_stream *s)
{
    cudaStream_t native = NULL;
    mt_status st = cuda_status(cudaStreamCreate(&native), "stream_create: cudaStreamCreate");
    if (st == MT_OK) s->native = (void *)native;
    return st;
}

static mt_status destroy_blas(mt_stream *s)
{
    mt_status st = MT_OK;
    if (s->blas) {
        cublasStatus_t bs = blas.destroy((cublasHandle_t)s->blas);
        if (bs != CUBLAS_STATUS_SUCCESS)
            st = mt_set_error(MT_ERR_DEVICE, "stream_destroy: cublasDestroy_v2: %s", blas_status_name(bs));
        s->blas = NULL;
    }
    if (s->workspace) {
        mt_status fs = cuda_status(cudaFree(s->workspace), "stream_destroy: cudaFree (cuBLAS workspace)");
        if (st == MT_OK) st = fs;
        s->workspace = NULL;
    }
    return st;
}

static mt_status destroy_native_stream(mt_stream *s)
{
    mt_status st = cuda_status(cudaStreamSynchronize((cudaStream_t)s->native), "stream_destroy: cudaStreamSynchronize");
    /* Its work is done: blocks freed on it become the default stream's. */
    mt_device_forget_stream(MT_DEVICE_CUDA, s->native);
    mt_status bs = destroy_blas(s);
    mt_status ds = cuda_status(cudaStreamDestroy((cudaStream_t)s->native), "stream_destroy: cudaStreamDestroy");
    return st != MT_OK ? st : bs != MT_OK ? bs : ds;
}

static mt_status sync_native_stream(mt_stream *s)
{
    return cuda_status(cudaStreamSynchronize(native_of(s)), "stream_synchronize: cudaStreamSynchronize");
}

/* ---------------------------------------------------------------- events */
static mt_status create_native_event(mt_event *e)
{
    cudaEvent_t ev = NULL;
    mt_status st = cuda_status(cudaEventCreate(&ev), "event_create: cudaEventCreate");
    if (st == MT_OK) e->native = (void *)ev;
    return st;
}
static void destroy_native_event(mt_event *e)
{
    (void)cuda_ok_async(cudaEventDestroy((cudaEvent_t)e->native), "event_destroy: cudaEventDestroy");
}
static mt_status record_native_event(mt_event *e, mt_stream *s)
{
    return cuda_status(cudaEventRecord((cudaEvent_t)e->native, native_of(s)), "event_record: cudaEventRecord");
}
static mt_status sync_native_event(mt_event *e)
{
    return cuda_status(cudaEventSynchronize((cudaEvent_t)e->native), "event_synchronize: cudaEventSynchronize");
}
static bool query_native_event(mt_event *e)
{
    cudaError_t r = cudaEventQuery((cudaEvent_t)e->native);
    if (r == cudaSuccess) return true;
    if (r == cudaErrorNotReady) {
        if (cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();
        return false;
    }
    (void)cuda_status(r, "event_query: cudaEventQuery");
    return false;
}
static mt_status elapsed_native(mt_event *start, mt_event *end, float *ms)
{
    mt_status st = sync_native_event(end);
    if (st != MT_OK) return st;
    return cuda_status(cudaEventElapsedTime(ms, (cudaEvent_t)start->native, (cudaEvent_t)end->native),
                       "event_elapsed: cudaEventElapsedTime");
}
static mt_status wait_native_event(mt_stream *s, mt_event *e)
{
    return cuda_status(cudaStreamWaitEvent(native_of(s), (cudaEvent_t)e->native, 0), "stream_wait_event: cudaStreamWaitEvent");
}

/* ---------------------------------------------------------------- pinned memory */
static void *pinned_native_alloc(size_t nbytes)
{
    void *p = NULL;
    if (cuda_failed(cudaHostAlloc(&p, nbytes, cudaHostAllocPortable))) return NULL;
    return p;
}
static void pinned_native_free(void *p)
{
    (void)cuda_ok_async(cudaFreeHost(p), "pinned_free: cudaFreeHost");
}
static mt_status copy_h2d_async(void *dst, const void *src, size_t nbytes)
{
    return cuda_status(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, native_of(current_stream)),
                       "copy_to_device_async: cudaMemcpyAsync");
}

/* ---------------------------------------------------------------- cuBLAS */
static size_t workspace_bytes;

size_t mt_cublas_workspace_bytes(void)
{
    size_t w = __atomic_load_n(&workspace_bytes, __ATOMIC_ACQUIRE);
    if (w) return w;
    int major = 0;
    if (mt_cuda_is_available(NULL) && cuda_failed(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0)))
        major = 0;
    /* NVIDIA's recommendation: 32 MiB on Hopper and later, 4 MiB before. */
    w = (size_t)(major >= 9 ? 32 : 4) << 20;
    __atomic_store_n(&workspace_bytes, w, __ATOMIC_RELEASE);
    return w;
}

/* The handle of stream s, configured for the current flags. Under s->lock. */
static cublasHandle_t blas_handle(mt_stream *s)
{
    if (!s->blas) {
        const char *why = NULL;
        if (!mt_cublas_load(&why)) { mt_device_record_error(why, 0, "cuBLAS not loaded"); return NULL; }
        cublasHandle_t h = NULL;
        if (!blas_ok_async(blas.create(&h), "cublasCreate_v2")) return NULL;
        /* The stream first: cublasSetStream resets the workspace to cuBLAS's pool. */
        void *ws = NULL;
        size_t bytes = mt_cublas_workspace_bytes();
        if (!blas_ok_async(blas.set_stream(h, (cudaStream_t)s->native), "cublasSetStream_v2") ||
            !cuda_ok_async(cudaMalloc(&ws, bytes), "cudaMalloc (cuBLAS workspace)") ||
            !blas_ok_async(blas.set_workspace(h, ws, bytes), "cublasSetWorkspace_v2")) {
            if (ws) (void)cuda_ok_async(cudaFree(ws), "cudaFree (cuBLAS workspace)");
            (void)blas_ok_async(blas.destroy(h), "cublasDestroy_v2");
            return NULL;
        }
        s->blas = (void *)h;
        s->workspace = ws;
        s->blas_config = 0;
    }
    cublasHandle_t h = (cublasHandle_t)s->blas;
    bool tf32 = mt_get_allow_tf32(), det = mt_get_deterministic();
    unsigned want = 4u | (tf32 ? 1u : 0u) | (det ? 2u : 0u);
    if (s->blas_config != want) {
        if (!blas_ok_async(blas.set_math_mode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cublasSetMathMode") ||
            !blas_ok_async(blas.set_atomics_mode(h, det ? CUBLAS_ATOMICS_NOT_ALLOWED : CUBLAS_ATOMICS_ALLOWED),
                           "cublasSetAtomicsMode"))
            return NULL;
        s->blas_config = want;
    }
    return h;
}

/* The stream the calling thread's cuBLAS calls go to, locked. */
static mt_stream *blas_stream_locked(void)
{
    mt_stream *s = current_stream && current_stream->device.type == MT_DEVICE_CUDA ? current_stream : &default_stream;
    pthread_mutex_lock(&s->lock);
    return s;
}

static cublasOperation_t op_of(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

/* MT_OK; MT_ERR_UNSUPPORTED for a dtype cuBLAS has no GEMM for (anything but
   f32 and f64); MT_ERR_DEVICE when the handle or the call failed (recorded as
   a device error, naming the call). */
static mt_status cublas_gemm_any(const char *entry, mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n,
                                 int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                                 const void *b, int64_t ldb, int64_t stride_b,
                                 double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (m <= 0 || n <= 0 || batch <= 0) return MT_OK;
    mt_gemm_colmajor g = mt_gemm_row_to_col_major(trans_a, trans_b, m, n, k, a, lda, stride_a, b, ldb, stride_b, ldc);
    mt_stream *s = blas_stream_locked();
    cublasHandle_t h = blas_handle(s);
    mt_status result = h ? MT_OK : MT_ERR_DEVICE;
    if (h) {
        cublasStatus_t st;
        const char *call;
        if (dtype == MT_F32) {
            float fa = (float)alpha, fb = (float)beta;
            if (batch == 1) {
                call = "cublasSgemm_v2_64";
                st = blas.sgemm(h, op_of(g.trans_a), op_of(g.trans_b), g.m, g.n, g.k, &fa, g.a, g.lda, g.b, g.ldb,
                                    &fb, c, g.ldc);
            } else {
                call = "cublasSgemmStridedBatched_64";
                st = blas.sgemm_batched(h, op_of(g.trans_a), op_of(g.trans_b), g.m, g.n, g.k, &fa, g.a, g.lda,
                                                  g.stride_a, g.b, g.ldb, g.stride_b, &fb, c, g.ldc, stride_c, batch);
            }
        } else {
            if (batch == 1) {
                call = "cublasDgemm_v2_64";
                st = blas.dgemm(h, op_of(g.trans_a), op_of(g.trans_b), g.m, g.n, g.k, &alpha, g.a, g.lda, g.b, g.ldb,
                                    &beta, c, g.ldc);
            } else {
                call = "cublasDgemmStridedBatched_64";
                st = blas.dgemm_batched(h, op_of(g.trans_a), op_of(g.trans_b), g.m, g.n, g.k, &alpha, g.a, g.lda,
                                                  g.stride_a, g.b, g.ldb, g.stride_b, &beta, c, g.ldc, stride_c, batch);
            }
        }
        char what[160];
        if (st != CUBLAS_STATUS_SUCCESS) {
            snprintf(what, sizeof what, "%s: %s (m=%lld, n=%lld, k=%lld, batch=%lld)", entry, call, (long long)m,
                     (long long)n, (long long)k, (long long)batch);
            (void)blas_ok_async(st, what);
            result = MT_ERR_DEVICE;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return result;
}

mt_status mt_cublas_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                         double beta, void *c, int64_t ldc)
{
    return cublas_gemm_any("cuda gemm", dtype, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc,
                           0, 1);
}

mt_status mt_cublas_gemm_batched(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                 double alpha, const void *a, int64_t lda, int64_t stride_a,
                                 const void *b, int64_t ldb, int64_t stride_b,
                                 double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    return cublas_gemm_any("cuda gemm_batched", dtype, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                           stride_b, beta, c, ldc, stride_c, batch);
}

#else
/* ================================================================ without the toolkit */

static const char *no_toolkit = "cuda: this build has no CUDA backend (built without the CUDA toolkit: MYTORCH_CUDA=OFF or no nvcc)";

bool mt_cuda_is_available(const char **why)
{
    if (why) *why = no_toolkit;
    return false;
}
int mt_cuda_device_count(void) { return 0; }
mt_status mt_cuda_get_device_properties(int index, mt_cuda_device_props *out)
{
    (void)index; (void)out;
    return mt_set_error(MT_ERR_DEVICE, "cuda_get_device_properties: %s", no_toolkit);
}
void *mt_cuda_current_stream_handle(void) { return NULL; }
const mt_alloc_stream_ops *mt_cuda_alloc_stream_ops(void) { return NULL; }
bool mt_cublas_load(const char **why)
{
    if (why) *why = no_toolkit;
    return false;
}
size_t mt_cublas_workspace_bytes(void) { return 0; }
/* Never called: no cuda backend is registered without the toolkit. */
mt_status mt_cublas_gemm(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                         double beta, void *c, int64_t ldc)
{
    (void)dtype; (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda;
    (void)b; (void)ldb; (void)beta; (void)c; (void)ldc;
    mt_device_record_error("cuda gemm", 0, no_toolkit);
    return MT_ERR_DEVICE;
}
mt_status mt_cublas_gemm_batched(mt_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                 double alpha, const void *a, int64_t lda, int64_t stride_a,
                                 const void *b, int64_t ldb, int64_t stride_b,
                                 double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    (void)dtype; (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda;
    (void)stride_a; (void)b; (void)ldb; (void)stride_b; (void)beta; (void)c; (void)ldc; (void)stride_c; (void)batch;
    mt_device_record_error("cuda gemm_batched", 0, no_toolkit);
    return MT_ERR_DEVICE;
}

/* Built without the CUDA toolkit: the native paths report that CUDA is not built in (they are
   reached only for cuda devices, which such a build never makes available). */
static mt_status create_native_stream(mt_stream *s) { (void)s; return mt_set_error(MT_ERR_DEVICE, "stream_create: %s", no_toolkit); }
static mt_status destroy_native_stream(mt_stream *s) { (void)s; return MT_OK; }
static mt_status sync_native_stream(mt_stream *s) { (void)s; return MT_OK; }
static mt_status create_native_event(mt_event *e) { (void)e; return mt_set_error(MT_ERR_DEVICE, "event_create: %s", no_toolkit); }
static void destroy_native_event(mt_event *e) { (void)e; }
static mt_status record_native_event(mt_event *e, mt_stream *s) { (void)e; (void)s; return MT_OK; }
static mt_status sync_native_event(mt_event *e) { (void)e; return MT_OK; }
static bool query_native_event(mt_event *e) { (void)e; return true; }
static mt_status elapsed_native(mt_event *a, mt_event *b, float *ms) { (void)a; (void)b; *ms = 0; return MT_OK; }
static mt_status wait_native_event(mt_stream *s, mt_event *e) { (void)s; (void)e; return MT_OK; }
static void *pinned_native_alloc(size_t nbytes) { (void)nbytes; return NULL; }
static void pinned_native_free(void *p) { (void)p; }
static mt_status copy_h2d_async(void *dst, const void *src, size_t nbytes)
{ (void)dst; (void)src; (void)nbytes; return mt_set_error(MT_ERR_DEVICE, "copy_to_device_async: %s", no_toolkit); }

#endif /* MYTORCH_HAVE_CUDA_TOOLKIT */

/* ================================================================ both builds */

/* The emulated kernels' name for the current stream (MT_CUDA_FN(current_stream)
   under emulation): emulated streams are synchronous, any value will do. */
void *mt_cuda_emu_current_stream(void);
void *mt_cuda_emu_current_stream(void) { return NULL; }

/* ---------------------------------------------------------------- streams */
mt_stream *mt_stream_create(mt_device device)
{
    if (!device_usable("stream_create", device)) return NULL;
    mt_stream *s = calloc(1, sizeof *s);
    if (!s) { mt_set_error(MT_ERR_MEMORY, "stream_create: out of memory"); return NULL; }
    s->device = device;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        mt_set_error(MT_ERR_MEMORY, "stream_create: pthread_mutex_init failed");
        return NULL;
    }
    if (device.type == MT_DEVICE_CUDA && create_native_stream(s) != MT_OK) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

mt_status mt_stream_destroy(mt_stream *stream)
{
    if (!stream) return MT_OK;
    if (current_stream == stream) current_stream = NULL;
    mt_status st = stream->device.type == MT_DEVICE_CUDA ? destroy_native_stream(stream) : MT_OK;
    pthread_mutex_destroy(&stream->lock);
    free(stream);
    return st;
}

mt_status mt_stream_synchronize(mt_stream *stream)
{
    if (!stream) stream = current_stream;
    if (stream && stream->device.type != MT_DEVICE_CUDA) return mt_device_error_check();
    /* A cuda stream, or the default stream when cuda is in use. */
    if (stream || mt_cuda_is_available(NULL)) {
        mt_status st = sync_native_stream(stream);
        if (st != MT_OK) return st;
    }
    return mt_device_error_check();
}

mt_status mt_stream_wait_event(mt_stream *stream, mt_event *event)
{
    if (!event) return mt_set_error(MT_ERR_ARGUMENT, "stream_wait_event: NULL event");
    if (!stream) stream = current_stream;
    mt_device_type st = stream ? stream->device.type : event->device.type;
    if (st != event->device.type)
        return mt_set_error(MT_ERR_DEVICE, "stream_wait_event: a %s stream cannot wait for a %s event",
                            device_type_name(st), device_type_name(event->device.type));
    if (!event->recorded) return MT_OK;   /* as cudaStreamWaitEvent: nothing to wait for */
    return event->device.type == MT_DEVICE_CUDA ? wait_native_event(stream, event) : MT_OK;
}

/* ---------------------------------------------------------------- events */
mt_event *mt_event_create(mt_device device)
{
    if (!device_usable("event_create", device)) return NULL;
    mt_event *e = calloc(1, sizeof *e);
    if (!e) { mt_set_error(MT_ERR_MEMORY, "event_create: out of memory"); return NULL; }
    e->device = device;
    if (device.type == MT_DEVICE_CUDA && create_native_event(e) != MT_OK) { free(e); return NULL; }
    return e;
}

void mt_event_destroy(mt_event *event)
{
    if (!event) return;
    if (event->device.type == MT_DEVICE_CUDA) destroy_native_event(event);
    free(event);
}

mt_status mt_event_record(mt_event *event, mt_stream *stream)
{
    if (!event) return mt_set_error(MT_ERR_ARGUMENT, "event_record: NULL event");
    if (!stream && current_stream && current_stream->device.type == event->device.type) stream = current_stream;
    if (stream && stream->device.type != event->device.type)
        return mt_set_error(MT_ERR_DEVICE, "event_record: a %s event cannot be recorded on a %s stream",
                            device_type_name(event->device.type), device_type_name(stream->device.type));
    mt_status st = MT_OK;
    if (event->device.type == MT_DEVICE_CUDA) st = record_native_event(event, stream);
    else event->host_ms = mt_clock_seconds() * 1e3;
    if (st == MT_OK) event->recorded = true;
    return st;
}

mt_status mt_event_synchronize(mt_event *event)
{
    if (!event) return mt_set_error(MT_ERR_ARGUMENT, "event_synchronize: NULL event");
    if (event->device.type == MT_DEVICE_CUDA && event->recorded) {
        mt_status st = sync_native_event(event);
        if (st != MT_OK) return st;
    }
    return mt_device_error_check();
}

bool mt_event_query(mt_event *event)
{
    if (!event) return false;
    if (event->device.type == MT_DEVICE_CUDA && event->recorded) return query_native_event(event);
    return true;
}

mt_status mt_event_elapsed(mt_event *start, mt_event *end, float *ms)
{
    if (!start || !end || !ms) return mt_set_error(MT_ERR_ARGUMENT, "event_elapsed: NULL argument");
    if (start->device.type != end->device.type)
        return mt_set_error(MT_ERR_DEVICE, "event_elapsed: events of different devices (%s, %s)",
                            device_type_name(start->device.type), device_type_name(end->device.type));
    if (!start->recorded || !end->recorded)
        return mt_set_error(MT_ERR_STATE, "event_elapsed: the %s event was never recorded", start->recorded ? "end" : "start");
    if (start->device.type == MT_DEVICE_CUDA) return elapsed_native(start, end, ms);
    *ms = (float)(end->host_ms - start->host_ms);
    return MT_OK;
}

/* ---------------------------------------------------------------- pinned memory */
/* A header before the user's bytes says how they were allocated. */
#define PINNED_HEADER 64
#define PINNED_MAGIC 0x6d74706eu   /* "mtpn" */
typedef struct pinned_header { uint32_t magic; uint32_t page_locked; } pinned_header;

void *mt_pinned_alloc(size_t nbytes)
{
    if (nbytes > SIZE_MAX / 2) { mt_set_error(MT_ERR_MEMORY, "pinned_alloc: out of memory (%zu bytes)", nbytes); return NULL; }
    size_t total = (nbytes + PINNED_HEADER + 63) & ~(size_t)63;
    char *base = NULL;
    uint32_t locked = 0;
    if (mt_cuda_is_available(NULL)) {
        base = pinned_native_alloc(total);
        locked = base != NULL;
    }
    if (!base) base = aligned_alloc(64, total);
    if (!base) { mt_set_error(MT_ERR_MEMORY, "pinned_alloc: out of memory (%zu bytes)", nbytes); return NULL; }
    pinned_header *h = (pinned_header *)base;
    h->magic = PINNED_MAGIC;
    h->page_locked = locked;
    return base + PINNED_HEADER;
}

static pinned_header *pinned_header_of(const void *ptr)
{
    pinned_header *h = (pinned_header *)((char *)ptr - PINNED_HEADER);
    return h->magic == PINNED_MAGIC ? h : NULL;
}

void mt_pinned_free(void *ptr)
{
    if (!ptr) return;
    pinned_header *h = pinned_header_of(ptr);
    if (!h) return;   /* not ours: leaking beats freeing the wrong way */
    h->magic = 0;
    if (h->page_locked) pinned_native_free(h);
    else free(h);
}

bool mt_pinned_is_page_locked(const void *ptr)
{
    pinned_header *h = ptr ? pinned_header_of(ptr) : NULL;
    return h && h->page_locked;
}

mt_status mt_copy_to_device_async(mt_device device, void *dev_dst, const void *host_src, size_t nbytes)
{
    if (nbytes == 0) return MT_OK;
    if (!dev_dst || !host_src) return mt_set_error(MT_ERR_ARGUMENT, "copy_to_device_async: NULL pointer");
    if (!device_usable("copy_to_device_async", device)) return mt_last_status();
    if (device.type == MT_DEVICE_CUDA) return copy_h2d_async(dev_dst, host_src, nbytes);
    mt_backend_for(device.type)->from_host(dev_dst, host_src, nbytes);
    return mt_device_error_check();
}
