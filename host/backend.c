/*
 * backend.c - which backend serves which device type.
 *
 * The cuda table is registered only when the library was built with the CUDA
 * toolkit and a GPU and driver (and cuBLAS) are usable at run time. A table
 * may lack kernel entries (a kernel family whose .cu file has not landed
 * yet): it is registered all the same, and the ops that need a missing entry
 * fail on that device, naming it (engine/internal.h, mt_run_kernel). The
 * decision is taken once, on first use; it also installs the allocator's
 * stream operations for cuda.
 *
 * Also here: the list of a table's entries (names and families, for messages
 * and tests), generated from MT_BACKEND_MEMORY_ENTRIES and
 * kernels/kernel_entries.h.
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

/* ---------------------------------------------------------------- the entries */
typedef void (*any_fn)(void);
static const mt_backend_entry_info backend_entries[] = {
#define MEMORY_ENTRY(name, ret, params) { #name, "memory", offsetof(mt_backend, name), false },
    MT_BACKEND_MEMORY_ENTRIES(MEMORY_ENTRY)
#undef MEMORY_ENTRY
#define MT_KERNEL_ENTRY(name, family, params) { #name, #family, offsetof(mt_backend, name), true },
#include "kernels/kernel_entries.h"
};
enum { N_ENTRIES = (int)(sizeof backend_entries / sizeof backend_entries[0]) };
/* The struct and the table come from the same lists: a member is a name and function pointers. */
_Static_assert(sizeof(mt_backend) == sizeof(const char *) + N_ENTRIES * sizeof(any_fn),
               "host/backend.c: mt_backend is its name and one function pointer per listed entry");

const mt_backend_entry_info *mt_backend_entries(int *count)
{
    if (count) *count = N_ENTRIES;
    return backend_entries;
}

static any_fn entry_fn(const mt_backend *be, const mt_backend_entry_info *entry)
{
    any_fn fn;
    memcpy(&fn, (const char *)be + entry->offset, sizeof fn);
    return fn;
}

bool mt_backend_has(const mt_backend *be, const mt_backend_entry_info *entry) { return entry_fn(be, entry) != NULL; }

bool mt_backend_same_entry(const mt_backend *a, const mt_backend *b, const mt_backend_entry_info *entry)
{
    return entry_fn(a, entry) == entry_fn(b, entry);
}

int mt_backend_missing_entries(const mt_backend *be, char *buf, size_t size)
{
    int missing = 0;
    size_t len = 0;
    const char *open_family = NULL;
    if (buf && size) buf[0] = '\0';
    for (int i = 0; i < N_ENTRIES; i++) {
        if (mt_backend_has(be, &backend_entries[i])) continue;
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

#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
/* Whether be has every memory entry (a backend cannot serve a device without them). */
static bool has_memory_entries(const mt_backend *be)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (!backend_entries[i].is_kernel && !mt_backend_has(be, &backend_entries[i])) return false;
    return true;
}
#endif

/* ---------------------------------------------------------------- replacement tables (tests) */
static const mt_backend *replaced[MT_DEVICE_TYPE_COUNT];

const mt_backend *mt_backend_replace(mt_device_type type, const mt_backend *be)
{
    if ((unsigned)type >= MT_DEVICE_TYPE_COUNT) return NULL;
    const mt_backend *before = mt_backend_for(type);
    __atomic_store_n(&replaced[type], be, __ATOMIC_RELEASE);
    return before;
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
    if (!has_memory_entries(&mt_cuda_backend)) {
        snprintf(cuda_reason, sizeof cuda_reason, "cuda: the CUDA backend of this build has no memory entries");
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
    if ((unsigned)type < MT_DEVICE_TYPE_COUNT) {
        const mt_backend *r = __atomic_load_n(&replaced[type], __ATOMIC_ACQUIRE);
        if (r) return r;
    }
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
