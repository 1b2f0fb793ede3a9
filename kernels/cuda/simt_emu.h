/*
 * simt_emu.h - the SIMT emulator: runs CUDA kernels (the .cu files of kernels/cuda,
 * compiled as C++ by the host compiler against kernels/cuda/cuda_compat.h)
 * on the CPU.
 *
 * A grid's blocks are spread over OS threads (OpenMP, a fixed contiguous range
 * of blocks per thread); a block runs start to finish on one OS thread; its
 * CUDA threads are fibers on that OS thread that switch only at barriers
 * (__syncthreads, __syncwarp, shuffles, votes). So `__shared__` memory can be
 * a thread-local static, and a kernel that reaches no barrier runs its threads
 * one after the other on a single fiber. See docs/emulator.md.
 *
 * Two halves:
 *   - the host API (mt_emu_malloc, mt_emu_memcpy, mt_emu_launch, errors,
 *     settings, statistics), callable from C;
 *   - the device-side entry points (mt_emu_syncthreads_op, mt_emu_warp_op,
 *     the thread-local built-in variables) that cuda_compat.h wraps as
 *     __syncthreads, __shfl_sync, threadIdx, ...; kernels never call them
 *     directly.
 *
 * Error codes are the numeric values of the CUDA runtime's cudaError_t, so
 * the same wrapper code returns the same codes under nvcc and under emulation.
 */
#ifndef MT_KERNELS_CUDA_SIMT_EMU_H
#define MT_KERNELS_CUDA_SIMT_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#define MT_EMU_TLS __thread
#else
#define MT_EMU_TLS _Thread_local
#endif

/* ---------------------------------------------------------------- types */
typedef struct mt_emu_uint3 { unsigned int x, y, z; } mt_emu_uint3;
typedef struct mt_emu_dim3 { unsigned int x, y, z; } mt_emu_dim3;
/* Streams are synchronous in emulation: every call has finished when it returns. */
typedef struct mt_emu_stream_s *mt_emu_stream_t;

/* cudaError_t values */
enum {
    MT_EMU_SUCCESS = 0,
    MT_EMU_ERROR_INVALID_VALUE = 1,          /* cudaErrorInvalidValue */
    MT_EMU_ERROR_MEMORY_ALLOCATION = 2,      /* cudaErrorMemoryAllocation */
    MT_EMU_ERROR_INVALID_CONFIGURATION = 9,  /* cudaErrorInvalidConfiguration */
    MT_EMU_ERROR_ASSERT = 710,               /* cudaErrorAssert (__trap) */
    MT_EMU_ERROR_LAUNCH_FAILURE = 719,       /* cudaErrorLaunchFailure: deadlock, misuse of a barrier */
};

/* cudaMemcpyKind values */
enum {
    MT_EMU_MEMCPY_HOST_TO_HOST = 0,
    MT_EMU_MEMCPY_HOST_TO_DEVICE = 1,
    MT_EMU_MEMCPY_DEVICE_TO_HOST = 2,
    MT_EMU_MEMCPY_DEVICE_TO_DEVICE = 3,
    MT_EMU_MEMCPY_DEFAULT = 4,
};

/* Limits checked at launch (those of sm_80/sm_90). */
#define MT_EMU_MAX_THREADS_PER_BLOCK 1024
#define MT_EMU_MAX_BLOCK_Z 64
#define MT_EMU_MAX_GRID_YZ 65535u
#define MT_EMU_DEFAULT_MAX_DYNAMIC_SHARED (48u * 1024u)  /* without cudaFuncSetAttribute */
#define MT_EMU_MAX_DYNAMIC_SHARED (227u * 1024u)         /* with it */

/* ---------------------------------------------------------------- memory (device memory is host memory) */
int mt_emu_malloc(void **ptr, size_t bytes);       /* 256-byte aligned; bytes == 0 gives NULL */
int mt_emu_free(void *ptr);                         /* NULL is fine */
int mt_emu_memcpy(void *dst, const void *src, size_t bytes, int kind);
int mt_emu_memset(void *ptr, int value, size_t bytes);
int mt_emu_device_synchronize(void);                /* returns the last error without clearing it */
int mt_emu_stream_synchronize(mt_emu_stream_t stream);

/* ---------------------------------------------------------------- errors (per host thread, like cudart) */
int mt_emu_get_last_error(void);                    /* returns and clears */
int mt_emu_peek_last_error(void);
const char *mt_emu_error_string(int code);          /* "cudaErrorLaunchFailure"-like name */
/* What went wrong in detail (kernel name, block, what the threads were doing);
   "" when the last error carried no message. Valid until the next failing call. */
const char *mt_emu_last_error_message(void);

/* ---------------------------------------------------------------- launching */
/* Runs fn(ctx) once per CUDA thread of the grid, with threadIdx, blockIdx,
   blockDim, gridDim set. kernel_id identifies the kernel for
   mt_emu_func_set_max_dynamic_shared (may be NULL); name is for messages.
   Returns an error code and records it as the last error. Synchronous. */
int mt_emu_launch(const char *name, const void *kernel_id, mt_emu_dim3 grid, mt_emu_dim3 block,
                  size_t dynamic_shared_bytes, mt_emu_stream_t stream, void (*fn)(void *), void *ctx);
/* cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes). */
int mt_emu_func_set_max_dynamic_shared(const void *kernel_id, int bytes);

/* ---------------------------------------------------------------- settings */
/* Shuffled mode: each launch runs a block's threads in a random order, and
   after every barrier resumes the waiting threads in a random order, so that a
   missing barrier or a race changes the answer. The orders are a function of
   (seed, number of launches since this call, block index): reproducible.
   Also switched on by the environment: MYTORCH_EMU_SHUFFLE=1 (seed from
   MYTORCH_EMU_SEED, default 1). */
void mt_emu_set_shuffle(int enabled, uint64_t seed);
int mt_emu_get_shuffle(void);
/* OS threads that run blocks; 0 = omp_get_max_threads() (the default; or
   MYTORCH_EMU_THREADS). */
void mt_emu_set_threads(int n);
int mt_emu_get_threads(void);
/* Frees the calling OS thread's cached fiber stacks and block state. They are
   otherwise kept for the next launch, and freed when the OS thread exits (the
   main thread's at process exit, by the system). */
void mt_emu_trim(void);

/* How fibers switch in this build: "x86-64 asm" or "ucontext", with
   " + ASan annotations" under AddressSanitizer. */
const char *mt_emu_switch_kind(void);

/* ---------------------------------------------------------------- statistics */
typedef struct mt_emu_stats {
    uint64_t launches;
    uint64_t blocks;
    uint64_t threads;
    uint64_t switches;          /* context switches between fibers (and to/from a block's scheduler) */
    uint64_t fibers_started;    /* fiber starts (a thread that reaches no barrier reuses its predecessor's) */
    uint64_t block_barriers;    /* completed __syncthreads, per block */
    uint64_t warp_ops;          /* completed warp-synchronous operations, per warp */
} mt_emu_stats;
void mt_emu_get_stats(mt_emu_stats *out);
void mt_emu_reset_stats(void);

/* ---------------------------------------------------------------- device side (used by cuda_compat.h) */
extern MT_EMU_TLS mt_emu_uint3 mt_emu_threadIdx;
extern MT_EMU_TLS mt_emu_uint3 mt_emu_blockIdx;
extern MT_EMU_TLS mt_emu_uint3 mt_emu_blockDim;
extern MT_EMU_TLS mt_emu_uint3 mt_emu_gridDim;

/* __syncthreads and its counting variants */
enum { MT_EMU_SYNC_PLAIN = 0, MT_EMU_SYNC_COUNT, MT_EMU_SYNC_AND, MT_EMU_SYNC_OR };
int mt_emu_syncthreads_op(int op, int pred);

/* Warp-synchronous operations. value carries the operand's bits (32-bit
   types zero-extended); arg is srcLane / delta / laneMask; width the shuffle
   width. Returns the result's bits. */
enum {
    MT_EMU_WARP_SYNC = 0,
    MT_EMU_WARP_SHFL_IDX, MT_EMU_WARP_SHFL_UP, MT_EMU_WARP_SHFL_DOWN, MT_EMU_WARP_SHFL_XOR,
    MT_EMU_WARP_BALLOT, MT_EMU_WARP_ANY, MT_EMU_WARP_ALL,
    MT_EMU_WARP_MATCH_ANY, MT_EMU_WARP_MATCH_ALL,  /* MATCH_ALL: mask | (pred << 32) */
    MT_EMU_WARP_REDUCE_ADD, MT_EMU_WARP_REDUCE_MIN_U, MT_EMU_WARP_REDUCE_MAX_U,
    MT_EMU_WARP_REDUCE_MIN_I, MT_EMU_WARP_REDUCE_MAX_I,
    MT_EMU_WARP_REDUCE_AND, MT_EMU_WARP_REDUCE_OR, MT_EMU_WARP_REDUCE_XOR,
    MT_EMU_WARP_N_OPS
};
uint64_t mt_emu_warp_op(int op, unsigned int mask, uint64_t value, int arg, int width);
/* Lanes of the caller's warp that have not exited (the emulator cannot see
   divergence, so this is what __activemask() returns). */
unsigned int mt_emu_activemask(void);
/* The block's dynamic shared memory (aligned to 64 bytes). */
void *mt_emu_dynamic_shared(void);
/* __trap(): fails the launch with MT_EMU_ERROR_ASSERT; the block stops here. */
#ifdef __cplusplus
[[noreturn]]
#else
_Noreturn
#endif
void mt_emu_trap(void);

#ifdef __cplusplus
}
#endif

#endif
