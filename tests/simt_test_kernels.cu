/*
 * simt_test_kernels.cu - the kernels of tests/test_simt.c. Compiled as C++
 * against the SIMT emulator into mytorch_tests, and by nvcc (when a toolkit
 * is present) into mytorch_cuda_test_kernels, which proves they are CUDA.
 *
 * Each kernel has a C-callable wrapper taking device pointers (emulated
 * device memory is host memory) that launches it with MT_LAUNCH and returns
 * cudaGetLastError() as an int. The prototypes below are the only part
 * tests/test_simt.c reads (it includes this file with
 * SIMT_TEST_PROTOTYPES_ONLY defined, as C).
 */
#ifdef __cplusplus
extern "C" {
#endif
int simt_test_barrier(const int *in, int *out, int n, int block);
int simt_test_reduce_sum(const float *in, float *partial, int n, int block);
int simt_test_warp(const int *in, int *down, int *xr, int *seg8, int *scan, int *bcast, int n, int block);
int simt_test_votes(const int *in, unsigned *ballot, int *any, int *all, int *count, int *band, int *bor, int n, int block);
int simt_test_warp_misc(const int *in, unsigned *match, unsigned *radd, int *rmin, unsigned *rmax, int *halves, int n);
int simt_test_atomics(const int *vals, int n, unsigned *hist, int nbins, float *fsum, double *dsum, int *imax,
                      int *imin, int *cas_slot, int *cas_winners, unsigned *inc, int *exch_slot,
                      unsigned long long *exch_sum);
int simt_test_shared_atomics(const int *vals, int n, unsigned *hist, int *bmax);
int simt_test_dynamic_shared(const float *in, float *out, int n, int block);
int simt_test_dynamic_shared_big(const float *in, float *out, int set_attribute);
int simt_test_coords(int *out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz);
int simt_test_racy(const int *in, int *out, int nblocks, int block, int with_barrier);
int simt_test_stress(const int *in, int *out, int nblocks, int block, int rounds);
int simt_test_sync_only(int nblocks, int block, int rounds);
int simt_test_early_exit(const int *in, int *out, int n, int block);
int simt_test_saxpy(int n, float a, const float *x, float *y);
int simt_test_deadlock(int *out);
int simt_test_bad_mask(int *out);
int simt_test_trap(int *out);
int simt_test_bad_config(int *out);
#ifdef __cplusplus
}
#endif

#ifndef SIMT_TEST_PROTOTYPES_ONLY
#include "kernels/cuda/cuda_compat.h"

#define FULL 0xFFFFFFFFu

/* ---------------------------------------------------------------- barriers */
/* Three phases through shared memory, each reading a neighbour's value. */
static __global__ void k_barrier(const int *in, int *out, int n)
{
    __shared__ int s[1024];
    int t = threadIdx.x, nb = blockDim.x, g = blockIdx.x * nb + t;
    s[t] = g < n ? in[g] : 0;
    __syncthreads();
    int a = s[(t + 1) % nb];
    __syncthreads();
    s[t] = a * 2 + t;
    __syncthreads();
    int b = s[(t + nb - 1) % nb];
    if (g < n) out[g] = b;
}

int simt_test_barrier(const int *in, int *out, int n, int block)
{
    MT_LAUNCH(k_barrier, (n + block - 1) / block, block, 0, 0, in, out, n);
    return (int)cudaGetLastError();
}

/* A shared-memory tree reduction: each block sums 2 * blockDim elements
   (blockDim a power of 2), the last block reading past the end. */
static __global__ void k_reduce_sum(const float *in, float *partial, int n)
{
    __shared__ float s[1024];
    int t = threadIdx.x, nb = blockDim.x;
    int i = blockIdx.x * nb * 2 + t;
    float v = 0.0f;
    if (i < n) v += in[i];
    if (i + nb < n) v += in[i + nb];
    s[t] = v;
    __syncthreads();
    for (int st = nb / 2; st > 0; st >>= 1) {
        if (t < st) s[t] += s[t + st];
        __syncthreads();
    }
    if (t == 0) partial[blockIdx.x] = s[0];
}

int simt_test_reduce_sum(const float *in, float *partial, int n, int block)
{
    MT_LAUNCH(k_reduce_sum, (n + 2 * block - 1) / (2 * block), block, 0, 0, in, partial, n);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- warps */
static __device__ __forceinline__ int warp_sum_down(int v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL, v, o);
    return v;          /* the total in lane 0 */
}

static __device__ __forceinline__ int warp_sum_xor(int v, int width)
{
    for (int o = width / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o, width);
    return v;          /* the total of the lane's group of `width` in every lane */
}

/* blockDim a multiple of 32, n == grid * blockDim */
static __global__ void k_warp(const int *in, int *down, int *xr, int *seg8, int *scan, int *bcast)
{
    int g = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x & 31;
    int v = in[g];
    int d = warp_sum_down(v);
    if (lane == 0) down[g / 32] = d;
    xr[g] = warp_sum_xor(v, 32);
    seg8[g] = warp_sum_xor(v, 8);
    int x = v;                                   /* inclusive scan (Hillis-Steele) */
    for (int o = 1; o < 32; o <<= 1) {
        int y = __shfl_up_sync(FULL, x, o);
        if (lane >= o) x += y;
    }
    scan[g] = x;
    bcast[g] = __shfl_sync(FULL, v, 3);
}

int simt_test_warp(const int *in, int *down, int *xr, int *seg8, int *scan, int *bcast, int n, int block)
{
    MT_LAUNCH(k_warp, n / block, block, 0, 0, in, down, xr, seg8, scan, bcast);
    return (int)cudaGetLastError();
}

/* Votes and the counting barriers, with a partial last warp when blockDim is
   not a multiple of 32. */
static __global__ void k_votes(const int *in, unsigned *ballot, int *any, int *all, int *count, int *band, int *bor, int n)
{
    int g = blockIdx.x * blockDim.x + threadIdx.x;
    int p = g < n && in[g] > 0;
    unsigned b = __ballot_sync(FULL, p);
    int a = __any_sync(FULL, p), l = __all_sync(FULL, p);
    int c = __syncthreads_count(p), ba = __syncthreads_and(p), bo = __syncthreads_or(p);
    if (g < n) {
        ballot[g] = b;
        any[g] = a;
        all[g] = l;
        count[g] = c;
        band[g] = ba;
        bor[g] = bo;
    }
}

int simt_test_votes(const int *in, unsigned *ballot, int *any, int *all, int *count, int *band, int *bor, int n, int block)
{
    MT_LAUNCH(k_votes, (n + block - 1) / block, block, 0, 0, in, ballot, any, all, count, band, bor, n);
    return (int)cudaGetLastError();
}

/* Matches, the sm_80 reductions, and two half-warps reducing at the same time
   with disjoint masks. One block of n threads (n a multiple of 32). */
static __global__ void k_warp_misc(const int *in, unsigned *match, unsigned *radd, int *rmin, unsigned *rmax, int *halves)
{
    int t = threadIdx.x, lane = t & 31;
    int v = in[t];
    match[t] = __match_any_sync(FULL, v % 3);
    radd[t] = __reduce_add_sync(FULL, (unsigned)v);
    rmin[t] = __reduce_min_sync(FULL, v);
    rmax[t] = __reduce_max_sync(FULL, (unsigned)v);
    unsigned m = lane < 16 ? 0x0000FFFFu : 0xFFFF0000u;
    int h = v;
    for (int o = 8; o > 0; o >>= 1) h += __shfl_xor_sync(m, h, o);
    halves[t] = h;
}

int simt_test_warp_misc(const int *in, unsigned *match, unsigned *radd, int *rmin, unsigned *rmax, int *halves, int n)
{
    MT_LAUNCH(k_warp_misc, 1, n, 0, 0, in, match, radd, rmin, rmax, halves);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- atomics */
static __global__ void k_atomics(const int *vals, int n, unsigned *hist, int nbins, float *fsum, double *dsum,
                                 int *imax, int *imin, int *cas_slot, int *cas_winners, unsigned *inc,
                                 int *exch_slot, unsigned long long *exch_sum)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int v = vals[i];
    atomicAdd(&hist[v % nbins], 1u);
    atomicAdd(fsum, 0.5f);
    atomicAdd(dsum, 0.25);
    atomicMax(imax, v);
    atomicMin(imin, v);
    if (atomicCAS(cas_slot, -1, i) == -1) atomicAdd(cas_winners, 1);
    atomicInc(inc, 99u);
    int old = atomicExch(exch_slot, i);
    atomicAdd(exch_sum, (unsigned long long)old);
}

int simt_test_atomics(const int *vals, int n, unsigned *hist, int nbins, float *fsum, double *dsum, int *imax,
                      int *imin, int *cas_slot, int *cas_winners, unsigned *inc, int *exch_slot,
                      unsigned long long *exch_sum)
{
    MT_LAUNCH(k_atomics, (n + 255) / 256, 256, 0, 0, vals, n, hist, nbins, fsum, dsum, imax, imin, cas_slot,
              cas_winners, inc, exch_slot, exch_sum);
    return (int)cudaGetLastError();
}

/* A per-block histogram in shared memory, merged into the global one. */
static __global__ void k_shared_atomics(const int *vals, int n, unsigned *hist, int *bmax)
{
    __shared__ unsigned sh[16];
    __shared__ int smax;
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    if (t < 16) sh[t] = 0;
    if (t == 0) smax = -1;
    __syncthreads();
    if (i < n) {
        atomicAdd(&sh[vals[i] & 15], 1u);
        atomicMax(&smax, vals[i]);
    }
    __syncthreads();
    if (t < 16) atomicAdd(&hist[t], sh[t]);
    if (t == 0) bmax[blockIdx.x] = smax;
}

int simt_test_shared_atomics(const int *vals, int n, unsigned *hist, int *bmax)
{
    MT_LAUNCH(k_shared_atomics, (n + 127) / 128, 128, 0, 0, vals, n, hist, bmax);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- dynamic shared memory */
static __global__ void k_dyn(const float *in, float *out, int n)
{
    MT_DYNAMIC_SHARED(float, buf);          /* 2 * blockDim floats */
    int t = threadIdx.x, nb = blockDim.x, g = blockIdx.x * nb + t;
    buf[t] = g < n ? in[g] : 0.0f;
    buf[nb + t] = 2.0f * buf[t];
    __syncthreads();
    if (g < n) out[g] = buf[nb - 1 - t] + buf[nb + (t + 1) % nb];
}

int simt_test_dynamic_shared(const float *in, float *out, int n, int block)
{
    MT_LAUNCH(k_dyn, (n + block - 1) / block, block, 2 * block * sizeof(float), 0, in, out, n);
    return (int)cudaGetLastError();
}

#define BIG_FLOATS (16 * 1024)               /* 64 KiB: over the default 48 KiB */
static __global__ void k_dyn_big(const float *in, float *out)
{
    MT_DYNAMIC_SHARED(float, buf);
    for (int k = threadIdx.x; k < BIG_FLOATS; k += blockDim.x) buf[k] = in[blockIdx.x * BIG_FLOATS + k];
    __syncthreads();
    for (int k = threadIdx.x; k < BIG_FLOATS; k += blockDim.x)
        out[blockIdx.x * BIG_FLOATS + k] = buf[BIG_FLOATS - 1 - k];
}

int simt_test_dynamic_shared_big(const float *in, float *out, int set_attribute)
{
    if (set_attribute) {
        cudaError_t e = cudaFuncSetAttribute(k_dyn_big, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)(BIG_FLOATS * sizeof(float)));
        if (e != cudaSuccess) return (int)e;
    }
    MT_LAUNCH(k_dyn_big, 2, 256, BIG_FLOATS * sizeof(float), 0, in, out);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- 2-d and 3-d grids and blocks */
/* out: 5 ints per thread: thread index, block index (x | y << 8 | z << 16),
   lanes in the thread's warp, lane, and a value read back through shared
   memory from the mirror thread of the block. */
static __global__ void k_coords(int *out)
{
    __shared__ int s[1024];
    int nthr = blockDim.x * blockDim.y * blockDim.z;
    int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int g = bid * nthr + tid;
    unsigned b = __ballot_sync(FULL, 1);
    s[tid] = g;
    __syncthreads();
    out[g * 5 + 0] = threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16;
    out[g * 5 + 1] = blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16;
    out[g * 5 + 2] = __popc(b);
    out[g * 5 + 3] = tid & 31;
    out[g * 5 + 4] = s[nthr - 1 - tid];
}

int simt_test_coords(int *out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz)
{
    MT_LAUNCH(k_coords, dim3(gx, gy, gz), dim3(bx, by, bz), 0, 0, out);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- a race */
/* Without the barrier, thread t reads s[t - 1] before thread t - 1 may have
   written it: right when threads run in index order, wrong otherwise. */
static __global__ void k_racy(const int *in, int *out, int with_barrier)
{
    __shared__ int s[1024];
    int t = threadIdx.x, g = blockIdx.x * blockDim.x + t;
    s[t] = in[g];
    if (with_barrier) __syncthreads();
    out[g] = t > 0 ? s[t - 1] : -1;
}

int simt_test_racy(const int *in, int *out, int nblocks, int block, int with_barrier)
{
    MT_LAUNCH(k_racy, nblocks, block, 0, 0, in, out, with_barrier);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- stress */
static __global__ void k_stress(const int *in, int *out, int rounds)
{
    __shared__ int s[1024];
    int t = threadIdx.x, nb = blockDim.x, g = blockIdx.x * nb + t;
    int v = in[g];
    for (int r = 0; r < rounds; r++) {
        s[t] = v;
        __syncthreads();
        v = s[(t + r + 1) % nb] + r;
        __syncthreads();
    }
    out[g] = v;
}

int simt_test_stress(const int *in, int *out, int nblocks, int block, int rounds)
{
    MT_LAUNCH(k_stress, nblocks, block, 0, 0, in, out, rounds);
    return (int)cudaGetLastError();
}

static __global__ void k_sync_only(int rounds)
{
    for (int r = 0; r < rounds; r++) __syncthreads();
}

int simt_test_sync_only(int nblocks, int block, int rounds)
{
    MT_LAUNCH(k_sync_only, nblocks, block, 0, 0, rounds);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- exited threads, no barriers */
/* Threads past n return before the barrier; the rest still meet there. */
static __global__ void k_early_exit(const int *in, int *out, int n)
{
    __shared__ int s[1024];
    int t = threadIdx.x;
    if (t >= n) return;
    s[t] = in[t];
    __syncthreads();
    out[t] = s[n - 1 - t];
}

int simt_test_early_exit(const int *in, int *out, int n, int block)
{
    MT_LAUNCH(k_early_exit, 1, block, 0, 0, in, out, n);
    return (int)cudaGetLastError();
}

static __global__ void k_saxpy(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

int simt_test_saxpy(int n, float a, const float *x, float *y)
{
    MT_LAUNCH(k_saxpy, (n + 127) / 128, 128, 0, 0, n, a, x, y);
    return (int)cudaGetLastError();
}

/* ---------------------------------------------------------------- misuse the emulator reports */
/* Lanes 0-15 wait at __syncthreads for lanes 16-31, which wait at
   __syncwarp for lanes 0-15. */
static __global__ void k_deadlock(int *out)
{
    int t = threadIdx.x;
    if (t < 16) __syncthreads();
    else __syncwarp();
    out[t] = t;
}

int simt_test_deadlock(int *out)
{
    MT_LAUNCH(k_deadlock, 1, 32, 0, 0, out);
    return (int)cudaGetLastError();
}

/* Lanes 1-31 call a shuffle whose mask names only lane 0. */
static __global__ void k_bad_mask(int *out)
{
    int t = threadIdx.x;
    out[t] = __shfl_sync(1u, t, 0);
}

int simt_test_bad_mask(int *out)
{
    MT_LAUNCH(k_bad_mask, 1, 32, 0, 0, out);
    return (int)cudaGetLastError();
}

static __global__ void k_trap(int *out)
{
    int t = threadIdx.x;
    if (blockIdx.x == 1 && t == 5) __trap();
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = t;
}

int simt_test_trap(int *out)
{
    MT_LAUNCH(k_trap, 3, 64, 0, 0, out);
    return (int)cudaGetLastError();
}

int simt_test_bad_config(int *out)
{
    MT_LAUNCH(k_saxpy, 1, 2048, 0, 0, 0, 1.0f, (const float *)out, (float *)out);
    return (int)cudaGetLastError();
}
#endif /* SIMT_TEST_PROTOTYPES_ONLY */
