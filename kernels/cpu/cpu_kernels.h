/*
 * cpu_kernels.h - the CPU implementations of the backend entries: one
 * mt_cpu_<name> per line of kernels/kernel_entries.h (which documents each
 * signature), declared here from that list. OpenMP spreads the larger loops
 * over threads with static schedules, so results do not depend on timing.
 */
#ifndef MT_CPU_KERNELS_H
#define MT_CPU_KERNELS_H

#include "kernels/kernels.h"

/* A hot loop nest compiled twice, for x86-64-v3 (AVX2 and FMA) and for the
   baseline the library is built for (x86-64-v2), the one to run picked at
   load time from the CPU (GCC's function multiversioning), so the same
   binary runs everywhere and uses the wide vectors where they exist. The
   two versions may round differently (FMA), so on a given machine the
   results are the same on every run, as docs/determinism.md promises. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MT_CPU_AVX2_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MT_CPU_AVX2_CLONES
#endif

/* Loops shorter than this run on one thread: below it, waking threads costs more than it saves. */
#define MT_CPU_PARALLEL_GRAIN 32768

/* mt_status mt_cpu_<name>(<params>) for every kernel entry (elementwise.c,
   reduce.c, gemm.c, random.c, norm.c, loss.c, optim.c). */
#define MT_KERNEL_ENTRY(name, family, params) MT_MUST_CHECK mt_status mt_cpu_##name params;
#include "kernels/kernel_entries.h"

/* Scratch memory for a kernel's temporaries (per-channel sums, im2col
   buffers, workspaces), from the cpu device's caching allocator: implemented
   by the host runtime (host/cpu_backend.c), which kernels/ may not include.
   NULL when it cannot be had (the allocator has then recorded why, e.g. the
   cpu memory limit); the kernel then returns MT_ERR_MEMORY and the engine
   fails the op with that message. Never call them inside a parallel region. */
void *mt_cpu_scratch_alloc(size_t nbytes);
void mt_cpu_scratch_free(void *ptr, size_t nbytes);
/* Whether deterministic mode is on (mt_get_deterministic; host/cpu_backend.c too). */
bool mt_cpu_deterministic(void);

#endif
