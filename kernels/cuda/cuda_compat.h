/*
 * cuda_compat.h - the one header every .cu file of kernels/cuda includes first, so
 * that the file compiles two ways:
 *
 *   - by nvcc (__CUDACC__): real CUDA, for real GPUs;
 *   - by the host C++ compiler (g++ -x c++, C++17) against the SIMT emulator
 *     (kernels/cuda/simt_emu.h), which runs the grid on the CPU: threads are fibers,
 *     __syncthreads and warp operations are barriers among them, __shared__
 *     is a thread-local static (a block runs on one OS thread at a time).
 *
 * Conventions for kernel authors (docs/emulator.md says more):
 *
 *   - Kernels are written in the C subset of CUDA: no templates, classes,
 *     references or overloading in kernel code.
 *   - Launch only with MT_LAUNCH(kernel, grid, block, shared_bytes, stream,
 *     args...): kernel<<<grid, block, shared_bytes, stream>>>(args...) under
 *     nvcc. Arguments are evaluated once, at the launch.
 *   - Static shared memory: `__shared__ float tile[32][33];` inside the kernel
 *     (never `static __shared__`, never `extern __shared__`). Dynamic shared
 *     memory: `MT_DYNAMIC_SHARED(float, smem);` as a statement in the kernel
 *     (the launch's shared_bytes give its size; 16-byte aligned on the GPU).
 *     Shared memory is not initialised; the emulator may hand a block the
 *     values an earlier block left.
 *   - Every __global__ kernel, __device__ function and __device__ variable
 *     is `static`: under emulation all .cu files end up in one library, and
 *     two non-static `__device__ inline` helpers of the same name would be
 *     silently merged. The only external symbols of a .cu file are its
 *     extern "C" host wrappers, declared in a header it includes
 *     (-Wmissing-declarations is on for emulated .cu files).
 *   - Warp-synchronous code uses the *_sync intrinsics with a mask that names
 *     exactly the lanes taking part; there is no implicit warp synchrony.
 */
#ifndef MT_KERNELS_CUDA_COMPAT_H
#define MT_KERNELS_CUDA_COMPAT_H

#if defined(__CUDACC__)
/* ================================================================ real CUDA */
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define MT_CUDA_EMULATED 0
/* The host wrappers' names: mt_cuda_<name> for real GPUs (see cuda_kernels.h). */
#define MT_CUDA_FN(name) mt_cuda_##name

#define MT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
    kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)

#define MT_DYNAMIC_SHARED(type, name)                                       \
    extern __shared__ __align__(16) unsigned char mt_dynamic_shared_[];     \
    type *const name = (type *)mt_dynamic_shared_

#else
/* ================================================================ emulation */
#ifndef __cplusplus
#error "under emulation a .cu file is compiled as C++ (g++ -x c++ -std=c++17)"
#endif

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tuple>
#include <utility>

#include "kernels/cuda/simt_emu.h"

#define MT_CUDA_EMULATED 1
/* The host wrappers' names under emulation: mt_cuda_emu_<name>, so that the
   same source can be linked twice into one library (cuda and cuda-emu). */
#define MT_CUDA_FN(name) mt_cuda_emu_##name

/* ---------------------------------------------------------------- qualifiers */
#define __global__ __attribute__((unused))
#define __device__ __attribute__((unused))
#define __host__
#define __constant__ __attribute__((unused))
#define __shared__ static thread_local
#define __managed__ __attribute__((unused))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
/* __restrict__ is already a keyword of g++ and clang++ */
#define warpSize 32

/* ---------------------------------------------------------------- built-in types and variables */
typedef mt_emu_uint3 uint3;
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(mt_emu_uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

#define threadIdx mt_emu_threadIdx
#define blockIdx mt_emu_blockIdx
#define blockDim mt_emu_blockDim
#define gridDim mt_emu_gridDim

struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) int2 { int x, y; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(8))) uint2 { unsigned int x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
struct __attribute__((aligned(16))) double2 { double x, y; };
static inline float2 make_float2(float x, float y) { float2 v = { x, y }; return v; }
static inline float4 make_float4(float x, float y, float z, float w) { float4 v = { x, y, z, w }; return v; }
static inline int2 make_int2(int x, int y) { int2 v = { x, y }; return v; }
static inline int4 make_int4(int x, int y, int z, int w) { int4 v = { x, y, z, w }; return v; }
static inline uint2 make_uint2(unsigned int x, unsigned int y) { uint2 v = { x, y }; return v; }
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { uint4 v = { x, y, z, w }; return v; }
static inline double2 make_double2(double x, double y) { double2 v = { x, y }; return v; }

/* ---------------------------------------------------------------- the runtime API the host wrappers use */
typedef mt_emu_stream_t cudaStream_t;
typedef enum cudaError {
    cudaSuccess = MT_EMU_SUCCESS,
    cudaErrorInvalidValue = MT_EMU_ERROR_INVALID_VALUE,
    cudaErrorMemoryAllocation = MT_EMU_ERROR_MEMORY_ALLOCATION,
    cudaErrorInvalidConfiguration = MT_EMU_ERROR_INVALID_CONFIGURATION,
    cudaErrorAssert = MT_EMU_ERROR_ASSERT,
    cudaErrorLaunchFailure = MT_EMU_ERROR_LAUNCH_FAILURE,
} cudaError_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = MT_EMU_MEMCPY_HOST_TO_HOST,
    cudaMemcpyHostToDevice = MT_EMU_MEMCPY_HOST_TO_DEVICE,
    cudaMemcpyDeviceToHost = MT_EMU_MEMCPY_DEVICE_TO_HOST,
    cudaMemcpyDeviceToDevice = MT_EMU_MEMCPY_DEVICE_TO_DEVICE,
    cudaMemcpyDefault = MT_EMU_MEMCPY_DEFAULT,
};
enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

static inline cudaError_t cudaGetLastError(void) { return (cudaError_t)mt_emu_get_last_error(); }
static inline cudaError_t cudaPeekAtLastError(void) { return (cudaError_t)mt_emu_peek_last_error(); }
static inline const char *cudaGetErrorString(cudaError_t e) { return mt_emu_error_string((int)e); }
static inline const char *cudaGetErrorName(cudaError_t e) { return mt_emu_error_string((int)e); }
static inline cudaError_t cudaDeviceSynchronize(void) { return (cudaError_t)mt_emu_device_synchronize(); }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t s) { return (cudaError_t)mt_emu_stream_synchronize(s); }
static inline cudaError_t cudaMalloc(void **p, size_t bytes) { return (cudaError_t)mt_emu_malloc(p, bytes); }
template <class T> static inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
static inline cudaError_t cudaFree(void *p) { return (cudaError_t)mt_emu_free(p); }
static inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{ return (cudaError_t)mt_emu_memcpy(dst, src, bytes, (int)kind); }
static inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0)
{ (void)s; return (cudaError_t)mt_emu_memcpy(dst, src, bytes, (int)kind); }
static inline cudaError_t cudaMemset(void *p, int value, size_t bytes) { return (cudaError_t)mt_emu_memset(p, value, bytes); }
static inline cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s = 0)
{ (void)s; return (cudaError_t)mt_emu_memset(p, value, bytes); }
template <class K> static inline cudaError_t cudaFuncSetAttribute(K *kernel, cudaFuncAttribute attr, int value)
{
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
    return (cudaError_t)mt_emu_func_set_max_dynamic_shared(reinterpret_cast<const void *>(kernel), value);
}
template <class T> static inline cudaError_t cudaMemcpyToSymbol(T &symbol, const void *src, size_t bytes, size_t offset = 0,
                                                                cudaMemcpyKind kind = cudaMemcpyHostToDevice)
{ return (cudaError_t)mt_emu_memcpy((char *)&symbol + offset, src, bytes, (int)kind); }
template <class T> static inline cudaError_t cudaMemcpyFromSymbol(void *dst, const T &symbol, size_t bytes, size_t offset = 0,
                                                                  cudaMemcpyKind kind = cudaMemcpyDeviceToHost)
{ return (cudaError_t)mt_emu_memcpy(dst, (const char *)&symbol + offset, bytes, (int)kind); }

/* ---------------------------------------------------------------- the launch */
template <class F> static void mt_emu_invoke_(void *body) { (*static_cast<F *>(body))(); }
template <class K, class F>
static inline void mt_emu_launch_(const char *name, K *kernel, dim3 grid, dim3 block, size_t shared_bytes,
                                  cudaStream_t stream, F &body)
{
    mt_emu_dim3 g = { grid.x, grid.y, grid.z }, b = { block.x, block.y, block.z };
    (void)mt_emu_launch(name, reinterpret_cast<const void *>(kernel), g, b, shared_bytes, stream,
                        &mt_emu_invoke_<F>, &body);
}
/* The arguments are evaluated once into a tuple; every emulated thread calls
   the kernel with its own copies. Errors: cudaGetLastError(), as with <<<>>>. */
#define MT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                                    \
    do {                                                                                              \
        auto mt_emu_args_ = std::make_tuple(__VA_ARGS__);                                             \
        auto mt_emu_body_ = [&mt_emu_args_]() { std::apply(kernel, mt_emu_args_); };                  \
        mt_emu_launch_(#kernel, &kernel, dim3(grid), dim3(block), (size_t)(shared_bytes), (stream),   \
                       mt_emu_body_);                                                                 \
    } while (0)

#define MT_DYNAMIC_SHARED(type, name) type *const name = (type *)mt_emu_dynamic_shared()

/* ---------------------------------------------------------------- synchronisation */
static inline void __syncthreads(void) { (void)mt_emu_syncthreads_op(MT_EMU_SYNC_PLAIN, 0); }
static inline int __syncthreads_count(int pred) { return mt_emu_syncthreads_op(MT_EMU_SYNC_COUNT, pred != 0); }
static inline int __syncthreads_and(int pred) { return mt_emu_syncthreads_op(MT_EMU_SYNC_AND, pred != 0); }
static inline int __syncthreads_or(int pred) { return mt_emu_syncthreads_op(MT_EMU_SYNC_OR, pred != 0); }
static inline void __syncwarp(unsigned int mask = 0xFFFFFFFFu) { (void)mt_emu_warp_op(MT_EMU_WARP_SYNC, mask, 0, 0, 32); }
static inline unsigned int __activemask(void) { return mt_emu_activemask(); }
static inline void __threadfence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_system(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
[[noreturn]] static inline void __trap(void) { mt_emu_trap(); }

/* ---------------------------------------------------------------- warp shuffles, votes, matches, reductions */
template <class T> static inline uint64_t mt_emu_to_bits_(T v)
{
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "warp operations take 4- or 8-byte values");
    if constexpr (sizeof(T) == 4) { uint32_t b; memcpy(&b, &v, 4); return b; }
    else { uint64_t b; memcpy(&b, &v, 8); return b; }
}
template <class T> static inline T mt_emu_from_bits_(uint64_t bits)
{
    T v;
    if constexpr (sizeof(T) == 4) { uint32_t b = (uint32_t)bits; memcpy(&v, &b, 4); }
    else memcpy(&v, &bits, 8);
    return v;
}
template <class T> static inline T __shfl_sync(unsigned int mask, T var, int srcLane, int width = warpSize)
{ return mt_emu_from_bits_<T>(mt_emu_warp_op(MT_EMU_WARP_SHFL_IDX, mask, mt_emu_to_bits_(var), srcLane, width)); }
template <class T> static inline T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = warpSize)
{ return mt_emu_from_bits_<T>(mt_emu_warp_op(MT_EMU_WARP_SHFL_UP, mask, mt_emu_to_bits_(var), (int)delta, width)); }
template <class T> static inline T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = warpSize)
{ return mt_emu_from_bits_<T>(mt_emu_warp_op(MT_EMU_WARP_SHFL_DOWN, mask, mt_emu_to_bits_(var), (int)delta, width)); }
template <class T> static inline T __shfl_xor_sync(unsigned int mask, T var, int laneMask, int width = warpSize)
{ return mt_emu_from_bits_<T>(mt_emu_warp_op(MT_EMU_WARP_SHFL_XOR, mask, mt_emu_to_bits_(var), laneMask, width)); }

static inline unsigned int __ballot_sync(unsigned int mask, int pred)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_BALLOT, mask, pred != 0, 0, 32); }
static inline int __any_sync(unsigned int mask, int pred) { return (int)mt_emu_warp_op(MT_EMU_WARP_ANY, mask, pred != 0, 0, 32); }
static inline int __all_sync(unsigned int mask, int pred) { return (int)mt_emu_warp_op(MT_EMU_WARP_ALL, mask, pred != 0, 0, 32); }
template <class T> static inline unsigned int __match_any_sync(unsigned int mask, T value)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_MATCH_ANY, mask, mt_emu_to_bits_(value), 0, 32); }
template <class T> static inline unsigned int __match_all_sync(unsigned int mask, T value, int *pred)
{
    uint64_t r = mt_emu_warp_op(MT_EMU_WARP_MATCH_ALL, mask, mt_emu_to_bits_(value), 0, 32);
    *pred = (int)(r >> 32);
    return (unsigned int)r;
}
static inline unsigned int __reduce_add_sync(unsigned int mask, unsigned int v)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_ADD, mask, v, 0, 32); }
static inline int __reduce_add_sync(unsigned int mask, int v)
{ return (int)(unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_ADD, mask, (unsigned int)v, 0, 32); }
static inline unsigned int __reduce_min_sync(unsigned int mask, unsigned int v)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_MIN_U, mask, v, 0, 32); }
static inline int __reduce_min_sync(unsigned int mask, int v)
{ return (int)(unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_MIN_I, mask, (unsigned int)v, 0, 32); }
static inline unsigned int __reduce_max_sync(unsigned int mask, unsigned int v)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_MAX_U, mask, v, 0, 32); }
static inline int __reduce_max_sync(unsigned int mask, int v)
{ return (int)(unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_MAX_I, mask, (unsigned int)v, 0, 32); }
static inline unsigned int __reduce_and_sync(unsigned int mask, unsigned int v)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_AND, mask, v, 0, 32); }
static inline unsigned int __reduce_or_sync(unsigned int mask, unsigned int v)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_OR, mask, v, 0, 32); }
static inline unsigned int __reduce_xor_sync(unsigned int mask, unsigned int v)
{ return (unsigned int)mt_emu_warp_op(MT_EMU_WARP_REDUCE_XOR, mask, v, 0, 32); }

/* ---------------------------------------------------------------- atomics (real atomics, relaxed, return the old value) */
#define MT_EMU_RLX __ATOMIC_RELAXED
static inline int atomicAdd(int *a, int v) { return __atomic_fetch_add(a, v, MT_EMU_RLX); }
static inline unsigned int atomicAdd(unsigned int *a, unsigned int v) { return __atomic_fetch_add(a, v, MT_EMU_RLX); }
static inline unsigned long long atomicAdd(unsigned long long *a, unsigned long long v) { return __atomic_fetch_add(a, v, MT_EMU_RLX); }
static inline float atomicAdd(float *a, float v)
{
    float old, upd;
    __atomic_load(a, &old, MT_EMU_RLX);
    do upd = old + v;
    while (!__atomic_compare_exchange(a, &old, &upd, true, MT_EMU_RLX, MT_EMU_RLX));
    return old;
}
static inline double atomicAdd(double *a, double v)
{
    double old, upd;
    __atomic_load(a, &old, MT_EMU_RLX);
    do upd = old + v;
    while (!__atomic_compare_exchange(a, &old, &upd, true, MT_EMU_RLX, MT_EMU_RLX));
    return old;
}
static inline int atomicSub(int *a, int v) { return __atomic_fetch_sub(a, v, MT_EMU_RLX); }
static inline unsigned int atomicSub(unsigned int *a, unsigned int v) { return __atomic_fetch_sub(a, v, MT_EMU_RLX); }
static inline int atomicExch(int *a, int v) { return __atomic_exchange_n(a, v, MT_EMU_RLX); }
static inline unsigned int atomicExch(unsigned int *a, unsigned int v) { return __atomic_exchange_n(a, v, MT_EMU_RLX); }
static inline unsigned long long atomicExch(unsigned long long *a, unsigned long long v) { return __atomic_exchange_n(a, v, MT_EMU_RLX); }
static inline float atomicExch(float *a, float v) { float old; __atomic_exchange(a, &v, &old, MT_EMU_RLX); return old; }
static inline int atomicCAS(int *a, int compare, int v)
{ __atomic_compare_exchange_n(a, &compare, v, false, MT_EMU_RLX, MT_EMU_RLX); return compare; }
static inline unsigned int atomicCAS(unsigned int *a, unsigned int compare, unsigned int v)
{ __atomic_compare_exchange_n(a, &compare, v, false, MT_EMU_RLX, MT_EMU_RLX); return compare; }
static inline unsigned long long atomicCAS(unsigned long long *a, unsigned long long compare, unsigned long long v)
{ __atomic_compare_exchange_n(a, &compare, v, false, MT_EMU_RLX, MT_EMU_RLX); return compare; }
#define MT_EMU_ATOMIC_MINMAX(T)                                                                   \
    static inline T atomicMax(T *a, T v)                                                          \
    {                                                                                             \
        T old = __atomic_load_n(a, MT_EMU_RLX);                                                   \
        while (old < v && !__atomic_compare_exchange_n(a, &old, v, true, MT_EMU_RLX, MT_EMU_RLX)) \
            ;                                                                                     \
        return old;                                                                               \
    }                                                                                             \
    static inline T atomicMin(T *a, T v)                                                          \
    {                                                                                             \
        T old = __atomic_load_n(a, MT_EMU_RLX);                                                   \
        while (old > v && !__atomic_compare_exchange_n(a, &old, v, true, MT_EMU_RLX, MT_EMU_RLX)) \
            ;                                                                                     \
        return old;                                                                               \
    }
MT_EMU_ATOMIC_MINMAX(int)
MT_EMU_ATOMIC_MINMAX(unsigned int)
MT_EMU_ATOMIC_MINMAX(long long)
MT_EMU_ATOMIC_MINMAX(unsigned long long)
#undef MT_EMU_ATOMIC_MINMAX
static inline int atomicAnd(int *a, int v) { return __atomic_fetch_and(a, v, MT_EMU_RLX); }
static inline unsigned int atomicAnd(unsigned int *a, unsigned int v) { return __atomic_fetch_and(a, v, MT_EMU_RLX); }
static inline int atomicOr(int *a, int v) { return __atomic_fetch_or(a, v, MT_EMU_RLX); }
static inline unsigned int atomicOr(unsigned int *a, unsigned int v) { return __atomic_fetch_or(a, v, MT_EMU_RLX); }
static inline int atomicXor(int *a, int v) { return __atomic_fetch_xor(a, v, MT_EMU_RLX); }
static inline unsigned int atomicXor(unsigned int *a, unsigned int v) { return __atomic_fetch_xor(a, v, MT_EMU_RLX); }
static inline unsigned int atomicInc(unsigned int *a, unsigned int limit)   /* old >= limit ? 0 : old + 1 */
{
    unsigned int old = __atomic_load_n(a, MT_EMU_RLX), upd;
    do upd = old >= limit ? 0u : old + 1u;
    while (!__atomic_compare_exchange_n(a, &old, upd, true, MT_EMU_RLX, MT_EMU_RLX));
    return old;
}
static inline unsigned int atomicDec(unsigned int *a, unsigned int limit)   /* old == 0 || old > limit ? limit : old - 1 */
{
    unsigned int old = __atomic_load_n(a, MT_EMU_RLX), upd;
    do upd = (old == 0u || old > limit) ? limit : old - 1u;
    while (!__atomic_compare_exchange_n(a, &old, upd, true, MT_EMU_RLX, MT_EMU_RLX));
    return old;
}
#undef MT_EMU_RLX

/* ---------------------------------------------------------------- math and bit intrinsics */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
static inline double normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
static inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
template <class T> static inline T __ldg(const T *p) { return *p; }

/* The __-prefixed intrinsics are macros over mt_emu_* functions: glibc's
   <math.h> declares some of these names (__expf, __logf, ...) itself. */
static inline float mt_emu_fdividef_(float a, float b) { return a / b; }
static inline float mt_emu_saturatef_(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  /* NaN -> 0 */
static inline float mt_emu_frcp_(float x) { return 1.0f / x; }
static inline float mt_emu_fadd_(float a, float b) { return a + b; }
static inline float mt_emu_fsub_(float a, float b) { return a - b; }
static inline float mt_emu_fmul_(float a, float b) { return a * b; }
static inline double mt_emu_dadd_(double a, double b) { return a + b; }
static inline double mt_emu_dmul_(double a, double b) { return a * b; }
static inline int mt_emu_float2int_rn_(float x) { return (int)nearbyintf(x); }
static inline int mt_emu_float_as_int_(float x) { int i; memcpy(&i, &x, 4); return i; }
static inline unsigned int mt_emu_float_as_uint_(float x) { unsigned int i; memcpy(&i, &x, 4); return i; }
static inline float mt_emu_int_as_float_(int i) { float x; memcpy(&x, &i, 4); return x; }
static inline float mt_emu_uint_as_float_(unsigned int i) { float x; memcpy(&x, &i, 4); return x; }
static inline long long mt_emu_double_as_longlong_(double x) { long long i; memcpy(&i, &x, 8); return i; }
static inline double mt_emu_longlong_as_double_(long long i) { double x; memcpy(&x, &i, 8); return x; }
static inline int mt_emu_popc_(unsigned int x) { return __builtin_popcount(x); }
static inline int mt_emu_popcll_(unsigned long long x) { return __builtin_popcountll(x); }
static inline int mt_emu_clz_(int x) { return x ? __builtin_clz((unsigned int)x) : 32; }
static inline int mt_emu_clzll_(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int mt_emu_ffs_(int x) { return __builtin_ffs(x); }
static inline int mt_emu_ffsll_(long long x) { return __builtin_ffsll(x); }
static inline unsigned int mt_emu_brev_(unsigned int x)
{
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
    return __builtin_bswap32(x);
}
static inline unsigned int mt_emu_umulhi_(unsigned int a, unsigned int b) { return (unsigned int)(((uint64_t)a * b) >> 32); }
static inline int mt_emu_mulhi_(int a, int b) { return (int)(((int64_t)a * b) >> 32); }
static inline unsigned long long mt_emu_umul64hi_(unsigned long long a, unsigned long long b)
{ return (unsigned long long)(((unsigned __int128)a * b) >> 64); }

#define __expf(x) expf(x)
#define __exp10f(x) exp10f(x)
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __powf(x, y) powf(x, y)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __sincosf(x, s, c) sincosf(x, s, c)
#define __fdividef(a, b) mt_emu_fdividef_(a, b)
#define __saturatef(x) mt_emu_saturatef_(x)
#define __frcp_rn(x) mt_emu_frcp_(x)
#define __fsqrt_rn(x) sqrtf(x)
#define __fmaf_rn(a, b, c) fmaf(a, b, c)
#define __fadd_rn(a, b) mt_emu_fadd_(a, b)
#define __fsub_rn(a, b) mt_emu_fsub_(a, b)
#define __fmul_rn(a, b) mt_emu_fmul_(a, b)
#define __dadd_rn(a, b) mt_emu_dadd_(a, b)
#define __dmul_rn(a, b) mt_emu_dmul_(a, b)
#define __fma_rn(a, b, c) fma(a, b, c)
#define __float2int_rn(x) mt_emu_float2int_rn_(x)
#define __float2int_rz(x) ((int)(x))
#define __float2int_rd(x) ((int)floorf(x))
#define __float2int_ru(x) ((int)ceilf(x))
#define __int2float_rn(x) ((float)(x))
#define __float_as_int(x) mt_emu_float_as_int_(x)
#define __float_as_uint(x) mt_emu_float_as_uint_(x)
#define __int_as_float(x) mt_emu_int_as_float_(x)
#define __uint_as_float(x) mt_emu_uint_as_float_(x)
#define __double_as_longlong(x) mt_emu_double_as_longlong_(x)
#define __longlong_as_double(x) mt_emu_longlong_as_double_(x)
#define __popc(x) mt_emu_popc_(x)
#define __popcll(x) mt_emu_popcll_(x)
#define __clz(x) mt_emu_clz_(x)
#define __clzll(x) mt_emu_clzll_(x)
#define __ffs(x) mt_emu_ffs_(x)
#define __ffsll(x) mt_emu_ffsll_(x)
#define __brev(x) mt_emu_brev_(x)
#define __umulhi(a, b) mt_emu_umulhi_(a, b)
#define __mulhi(a, b) mt_emu_mulhi_(a, b)
#define __umul64hi(a, b) mt_emu_umul64hi_(a, b)

#endif /* __CUDACC__ */

/* ================================================================ both builds */
/* The stream every launch goes on: the calling thread's current stream
   (MT_CUDA_FN(current_stream_handle), declared in cuda_kernels.h). */
#define MT_STREAM() ((cudaStream_t)MT_CUDA_FN(current_stream_handle)())

#endif
