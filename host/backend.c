/*
 * backend.c - which backend serves which device type.
 *
 * The cuda table is registered only when the library was built with the CUDA
 * toolkit, a GPU and driver are usable at run time, and the table has no NULL
 * entry (a kernel family whose .cu file has not landed yet). The decision is
 * taken once, on first use; it also installs the allocator's stream
 * operations for cuda.
 */
#include "host/backend.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "host/cuda_runtime.h"

bool mt_cuda_emu_built(void)
{
#ifdef MYTORCH_HAVE_CUDA_EMU
    return true;
#else
    return false;
#endif
}

/* ---------------------------------------------------------------- completeness */
typedef void (*any_fn)(void);
#define ENTRY(field, family) { #field, family, offsetof(mt_backend, field) }
static const struct { const char *name, *family; size_t offset; } backend_entries[] = {
    ENTRY(alloc, "memory"), ENTRY(free, "memory"), ENTRY(to_host, "memory"), ENTRY(from_host, "memory"),
    ENTRY(synchronize, "memory"),
    ENTRY(copy, "elementwise.cu"), ENTRY(fill, "elementwise.cu"), ENTRY(arange, "elementwise.cu"),
    ENTRY(unary, "elementwise.cu"), ENTRY(unary_backward, "elementwise.cu"), ENTRY(binary, "elementwise.cu"),
    ENTRY(where, "elementwise.cu"),
    ENTRY(reduce, "reduce.cu"), ENTRY(softmax, "reduce.cu"), ENTRY(softmax_backward, "reduce.cu"),
    ENTRY(gemm, "gemm"), ENTRY(gemm_batched, "gemm"),
    ENTRY(random, "random.cu"),
    ENTRY(batch_norm_forward, "norm.cu"), ENTRY(batch_norm_backward, "norm.cu"),
    ENTRY(nll_forward, "loss.cu"), ENTRY(nll_backward, "loss.cu"),
    ENTRY(sgd_step, "optim.cu"), ENTRY(adam_step, "optim.cu"),
    ENTRY(cumsum, "scan.cu"), ENTRY(sort_rows, "sort.cu"), ENTRY(take_along, "sort.cu"), ENTRY(put_along, "sort.cu"),
};
#undef ENTRY
/* Every entry of mt_backend is listed above (each is one function pointer). */
_Static_assert(sizeof(mt_backend) == sizeof(const char *) + sizeof backend_entries / sizeof backend_entries[0] * sizeof(any_fn),
               "host/backend.c: backend_entries must list every entry of mt_backend");

int mt_backend_missing_entries(const mt_backend *be, char *buf, size_t size)
{
    int missing = 0;
    size_t len = 0;
    const char *open_family = NULL;
    if (buf && size) buf[0] = '\0';
    for (size_t i = 0; i < sizeof backend_entries / sizeof backend_entries[0]; i++) {
        any_fn fn;
        memcpy(&fn, (const char *)be + backend_entries[i].offset, sizeof fn);
        if (fn) continue;
        missing++;
        if (!buf || !size || len >= size) continue;
        const char *fam = backend_entries[i].family;
        int w;
        if (open_family == fam) w = snprintf(buf + len, size - len, ", %s", backend_entries[i].name);
        else w = snprintf(buf + len, size - len, "%s%s (%s", open_family ? "), " : "", fam, backend_entries[i].name);
        open_family = fam;
        if (w > 0) len += (size_t)w;
    }
    if (open_family && buf && size && len < size) snprintf(buf + len, size - len, ")");
    return missing;
}

/* ---------------------------------------------------------------- cuda registration */
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;
static const mt_backend *cuda_registered;
static char cuda_reason[768];

static void register_cuda(void)
{
    const char *why = NULL;
    if (!mt_cuda_is_available(&why)) {
        snprintf(cuda_reason, sizeof cuda_reason, "%s", why);
        return;
    }
    if (!mt_cublas_load(&why)) {
        snprintf(cuda_reason, sizeof cuda_reason, "%s", why);
        return;
    }
    char missing[600];
    int n = mt_backend_missing_entries(&mt_cuda_backend, missing, sizeof missing);
    if (n > 0) {
        snprintf(cuda_reason, sizeof cuda_reason, "cuda: the CUDA backend of this build is incomplete: "
                 "%d entr%s without a kernel: %s", n, n == 1 ? "y" : "ies", missing);
        return;
    }
    mt_device_set_stream_ops(MT_DEVICE_CUDA, mt_cuda_alloc_stream_ops());
    __atomic_store_n(&cuda_registered, &mt_cuda_backend, __ATOMIC_RELEASE);
}
#endif

bool mt_cuda_backend_usable(int index, const char **why)
{
    static _Thread_local char reason[160];
    const char *r = NULL;
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
    pthread_once(&cuda_once, register_cuda);
    int count = mt_cuda_device_count();
    if (!cuda_registered) r = cuda_reason;
    else if (index < 0 || index >= count) {
        snprintf(reason, sizeof reason, "cuda: there is no device cuda:%d (%d CUDA device%s)", index, count,
                 count == 1 ? "" : "s");
        r = reason;
    } else if (index > 0) {
        snprintf(reason, sizeof reason, "cuda: only cuda:0 is supported for now (%d CUDA devices)", count);
        r = reason;
    }
#else
    (void)index;
    (void)reason;
    (void)mt_cuda_is_available(&r);
#endif
    if (why) *why = r;
    return r == NULL;
}

const mt_backend *mt_backend_for(mt_device_type type)
{
    switch (type) {
    case MT_DEVICE_CPU: return &mt_cpu_backend;
#ifdef MYTORCH_HAVE_CUDA_EMU
    case MT_DEVICE_CUDA_EMU: return &mt_cuda_emu_backend;
#endif
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
    case MT_DEVICE_CUDA: {
        const mt_backend *be = __atomic_load_n(&cuda_registered, __ATOMIC_ACQUIRE);
        if (be) return be;
        pthread_once(&cuda_once, register_cuda);
        return __atomic_load_n(&cuda_registered, __ATOMIC_ACQUIRE);
    }
#endif
    default: return NULL;
    }
}
