/*
 * runtime.h - the process-wide settings and state a program reaches:
 * errors, grad mode, device memory statistics and limits, CPU threads.
 * Errors, grad mode and the scope stack are per thread; the caching
 * allocator is guarded by a lock. (The runtime's internals are in host/.)
 */
#ifndef MYTORCH_RUNTIME_H
#define MYTORCH_RUNTIME_H

#include "mytorch/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */
/* Records the error of the calling thread (printf-style) and returns code. */
mt_status mt_set_error(mt_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message of the calling thread's most recent error ("" when none). */
const char *mt_last_error(void);
mt_status mt_last_status(void);
void mt_clear_error(void);

/* ---------------------------------------------------------------- grad mode */
/* Whether ops record onto the tape. Returns the previous mode so that
   scopes nest:  bool prev = mt_set_grad_enabled(false); ... mt_set_grad_enabled(prev); */
bool mt_set_grad_enabled(bool enabled);
bool mt_is_grad_enabled(void);
/* Whether ops propagate forward-mode tangents (off inside a jvp or vjp so
   that derivative computations do not differentiate themselves). */
bool mt_set_forward_ad_enabled(bool enabled);
bool mt_is_forward_ad_enabled(void);
/* Anomaly detection (PyTorch's torch.autograd.set_detect_anomaly), off by
   default, process-wide; returns the previous setting. When on, every op
   that records onto the tape checks its outputs, and every backward step
   its gradients, for NaN and infinity: the first one found fails that op (or
   mt_backward) with a message naming the op. It costs a pass over every
   output and a device-to-host copy per op: for debugging only. */
bool mt_set_detect_anomaly(bool enabled);
bool mt_is_anomaly_enabled(void);

/* ---------------------------------------------------------------- device memory (the caching allocator) */
/* Returns every cached block of device to its backend. */
void  mt_device_empty_cache(mt_device device);
typedef struct mt_memory_stats {
    size_t allocated;      /* bytes handed out and not yet freed */
    size_t reserved;       /* allocated + cached */
    size_t peak_allocated;
    uint64_t raw_allocs;   /* calls that reached the backend's alloc */
    uint64_t cache_hits;
    uint64_t cross_stream_reuses;  /* cache hits on a block freed on another stream */
} mt_memory_stats;
mt_memory_stats mt_device_memory_stats(mt_device device);
/* Caps the bytes the device's pool may reserve from its backend (0: no cap,
   the default). A request that would exceed it empties the cache and, if
   still too big, fails as out of memory. */
void  mt_device_set_memory_limit(mt_device device, size_t bytes);

/* ---------------------------------------------------------------- devices */
/* Whether a device of this kind can be used here (built in, and for cuda a
   GPU with a working driver); when not, why (for messages). */
bool mt_device_available(mt_device device, const char **why);

/* ---------------------------------------------------------------- determinism */
/* Deterministic mode (PyTorch's torch.use_deterministic_algorithms), off by
   default; process-wide; returns the previous setting; read by each kernel
   when it runs (docs/determinism.md):
   - cpu: GEMMs run on fixed 256 x 256 tiles of C, each by one thread, so that
     results are bitwise the same at any thread count (OpenBLAS's own
     threading, used otherwise, splits the work by the thread count and its
     results differ in the last bits between 1 and 2 threads). Every other CPU
     kernel is thread-count independent in both modes.
   - cuda: kernels that would accumulate with floating-point atomics take an
     order-fixed path instead, and cuBLAS is told not to use atomics
     (docs/cuda.md lists the kernels concerned). */
bool mt_set_deterministic(bool deterministic);
bool mt_get_deterministic(void);

/* ---------------------------------------------------------------- threads */
/* Threads used by CPU kernels and the BLAS (0 = leave as configured). */
void mt_set_num_threads(int n);
int  mt_get_num_threads(void);

/* ---------------------------------------------------------------- clock */
/* Seconds on the monotonic clock (CLOCK_MONOTONIC): for measuring
   intervals (steps, epochs, waits), not the time of day. */
double mt_clock_seconds(void);

#ifdef __cplusplus
}
#endif

#endif
