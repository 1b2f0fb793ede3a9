/*
 * backend.h - the table through which engine/ reaches the arithmetic.
 *
 * An op is defined once in engine/ (shape checks, output allocation, tape
 * record, vjp, jvp); the arithmetic is a call through the mt_backend of the
 * tensors' device. A table has the memory entries below, then one kernel
 * entry per line of kernels/kernel_entries.h (the one list of kernel entries,
 * which documents each signature), generated from it. Every kernel entry
 * returns an mt_status the caller must look at; engine/ calls through
 * mt_run_kernel (engine/internal.h), which also turns a failure into the op's
 * error message.
 *
 * Partial backends: a kernel entry may be NULL (a .cu file or wrapper that
 * has not landed yet). The backend is still used; only the ops that need the
 * entry fail on it ("softmax: the cuda-emu backend has no 'softmax' kernel").
 * The memory entries are required.
 */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include "kernels/kernels.h"

/* The memory entries X(name, return type, (parameters)): raw memory
   (host/allocator.c caches on top of alloc and free), copies between the
   host and the device, and a device-wide synchronisation. */
#define MT_BACKEND_MEMORY_ENTRIES(X)                                          \
    X(alloc, void *, (size_t nbytes))                                         \
    X(free, void, (void *ptr))                                                \
    X(to_host, void, (void *host_dst, const void *dev_src, size_t nbytes))    \
    X(from_host, void, (void *dev_dst, const void *host_src, size_t nbytes))  \
    X(synchronize, void, (void))

typedef struct mt_backend {
    const char *name;
#define MT_BACKEND_MEMORY_MEMBER(name, ret, params) ret (*name) params;
    MT_BACKEND_MEMORY_ENTRIES(MT_BACKEND_MEMORY_MEMBER)
#undef MT_BACKEND_MEMORY_MEMBER
#define MT_KERNEL_ENTRY(name, family, params) mt_status (*name) params MT_MUST_CHECK;
#include "kernels/kernel_entries.h"
} mt_backend;

/* The backend serving a device type, or NULL when it is not built in. */
const mt_backend *mt_backend_for(mt_device_type type);

/* ---------------------------------------------------------------- the entries, for messages and checks */
/* One entry of mt_backend, in declaration order (generated from the lists). */
typedef struct mt_backend_entry_info {
    const char *name;      /* "softmax" */
    const char *family;    /* "reduce" (the kernel files); "memory" for the memory entries */
    size_t offset;         /* of its function pointer in mt_backend */
    bool is_kernel;        /* false for the memory entries */
} mt_backend_entry_info;
/* Every entry of mt_backend; *count receives how many. */
const mt_backend_entry_info *mt_backend_entries(int *count);
/* Whether be has the entry (its function pointer is not NULL). */
bool mt_backend_has(const mt_backend *be, const mt_backend_entry_info *entry);
/* Writes the names of be's NULL entries, grouped by kernel family (e.g.
   "elementwise (copy, fill), optim (sgd_step)"), into buf; returns how many
   entries are NULL (for diagnostics: a backend may lack kernels). */
int mt_backend_missing_entries(const mt_backend *be, char *buf, size_t size);
/* Whether entries a and b of two tables are the same function. */
bool mt_backend_same_entry(const mt_backend *a, const mt_backend *b, const mt_backend_entry_info *entry);

/* For tests: serve device type `type` with table be (e.g. a copy of a
   backend with an entry set to NULL, to see a partial backend fail cleanly);
   NULL restores the built-in table. Returns the table served before. Not for
   concurrent use with ops on that device. */
const mt_backend *mt_backend_replace(mt_device_type type, const mt_backend *be);

/* The CPU backend (kernels/cpu behind host/cpu_backend.c). */
extern const mt_backend mt_cpu_backend;
/* The CUDA kernels run by the SIMT emulator on the CPU (host/cuda_emu_backend.c):
   device memory is host memory, GEMM goes to the CPU BLAS. */
extern const mt_backend mt_cuda_emu_backend;
/* Whether the emulated CUDA backend is built in (it needs a C++ compiler). */
bool mt_cuda_emu_built(void);

/* ---------------------------------------------------------------- generating a table */
/* A backend's table names its kernels by convention: <prefix><name> for
   every line of kernels/kernel_entries.h. Inside the table's initializer:

       #define MT_KERNEL_ENTRY(name, family, params) .name = mt_cpu_##name,
       #include "kernels/kernel_entries.h"

   For a backend whose kernels may be missing, MT_PP_IF_ONE(flag, a, b) is a
   when the macro flag is defined as 1 and b otherwise:

       .name = MT_PP_IF_ONE(MT_CUDA_HAS_##name, mt_cuda_##name, NULL),

   (MT_CUDA_HAS_<name> comes from the header cmake/cuda.cmake generates from
   the wrappers the .cu files define; see host/cuda_backend.c). */
#define MT_PP_ARG_PLACEHOLDER_1 0,
#define MT_PP_SECOND(ignored, value, ...) value
#define MT_PP_IS_ONE(x) MT_PP_IS_ONE_(x)
#define MT_PP_IS_ONE_(x) MT_PP_IS_ONE__(MT_PP_ARG_PLACEHOLDER_##x)
#define MT_PP_IS_ONE__(one_or_junk) MT_PP_SECOND(one_or_junk 1, 0, 0)
#define MT_PP_CAT(a, b) MT_PP_CAT_(a, b)
#define MT_PP_CAT_(a, b) a##b
#define MT_PP_IF_1(then, otherwise) then
#define MT_PP_IF_0(then, otherwise) otherwise
#define MT_PP_IF_ONE(flag, then, otherwise) MT_PP_CAT(MT_PP_IF_, MT_PP_IS_ONE(flag))(then, otherwise)

#endif
