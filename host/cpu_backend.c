/*
 * cpu_backend.c - the CPU backend: host memory and the kernels of kernels/cpu
 * (mt_cpu_<name> for every entry of kernels/kernel_entries.h), and the CPU
 * kernels' scratch memory.
 */
#include "host/backend.h"
#include "host/runtime.h"   /* mt_device_alloc, mt_get_deterministic */
#include "kernels/cpu/cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

/* 64-byte alignment: whole cache lines, and aligned vector loads. */
static void *cpu_alloc(size_t nbytes)
{
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded ? rounded : 64);
}
static void cpu_free(void *ptr) { free(ptr); }
static void cpu_copy_bytes(void *dst, const void *src, size_t nbytes) { if (nbytes) memcpy(dst, src, nbytes); }
static void cpu_synchronize(void) {}

bool mt_cpu_deterministic(void) { return mt_get_deterministic(); }

/* The kernels' scratch memory (kernels/cpu/cpu_kernels.h) comes from the cpu
   device's caching allocator, like a tensor's: it counts towards the
   device's memory statistics and limit, and a failure leaves the
   allocator's message (naming the device, the size and the limit) as the
   thread's error for the engine to report. */
void *mt_cpu_scratch_alloc(size_t nbytes) { return mt_device_alloc((mt_device){ MT_DEVICE_CPU, 0 }, nbytes); }
void mt_cpu_scratch_free(void *ptr, size_t nbytes) { mt_device_free((mt_device){ MT_DEVICE_CPU, 0 }, ptr, nbytes); }

const mt_backend mt_cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_host = cpu_copy_bytes,
    .from_host = cpu_copy_bytes,
    .synchronize = cpu_synchronize,
    /* every kernel entry: mt_cpu_<name> (the CPU is the reference backend and has them all) */
#define MT_KERNEL_ENTRY(name, family, params) .name = mt_cpu_##name,
#include "kernels/kernel_entries.h"
};
