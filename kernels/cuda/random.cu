/*
 * random.cu - random numbers from Philox4x32-10 (Salmon et al., "Parallel
 * random numbers: as easy as 1, 2, 3", SC'11), the same stream as
 * kernels/cpu/random.c, bit for bit:
 *
 *   element i of a draw of n elements at `offset` sits at global position
 *   g = offset + i and takes the two 32-bit words 2 (g % 2) and 2 (g % 2) + 1
 *   of counter block g / 2 under key `seed`; one Philox call serves the two
 *   elements of a block.
 *
 * From its words w0, w1 an element is
 *
 *   uniform f32    lo + span * ((w0 >> 8) 2^-24)          lo = (float)p0, span = (float)(p1 - p0)
 *   uniform f64    lo + span * (w0 2^-32)
 *   normal         p0 + p1 sqrt(-2 log(1 - u1)) cos(2 pi u2)   u1 = w0 2^-32, u2 = w1 2^-32, in double
 *   bernoulli      p1 when w0 < p0 2^32 (an integer comparison), else 0
 *   integers       floor(p0 + (p1 - p0) (w0 2^-32)), in double
 *
 * with the same operations in the same order as the CPU. The additions use
 * __fadd_rn/__dadd_rn over __fmul_rn/__dmul_rn so that nvcc cannot fuse them
 * into an fma, which rounds once instead of twice and would change the last
 * bit. (On a real GPU, the normal draw's log, sqrt and cos are CUDA's, which
 * may differ from glibc's in the last bit; under the emulator they are
 * glibc's and the draws are bitwise the CPU's.)
 *
 * Threads: one per counter block. Thread t of T = gridDim.x * blockDim.x
 * takes blocks first + t, first + t + T, ... (a grid-stride loop; the grid is
 * capped at RNG_MAX_BLOCKS blocks) and writes the block's elements 2b and
 * 2b + 1 that fall inside [offset, offset + n): at the ends of the draw a
 * block may give only one of its two elements (odd offset, odd end).
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define RNG_THREADS 256
#define RNG_MAX_BLOCKS 1024

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u


/* The draw's constants, prepared on the host as kernels/cpu/random.c does. */
typedef struct rng_params {
    double p0, p1;
    float lo_f32, span_f32, hit_f32;   /* uniform f32: lo + span u; bernoulli f32: hit */
    double lo_f64, span_f64, hit_f64;
    uint64_t threshold;                /* bernoulli: w0 < threshold with probability p0 */
} rng_params;

/* Philox4x32-10: ten rounds over the counter (c0, c1) = (low, high word of
   `counter`), (c2, c3) = 0, under the key (k0, k1) = (low, high word of
   `key`), which is bumped by the Weyl constants after each round. */
static __device__ __forceinline__ uint4 rng_philox(uint64_t counter, uint64_t key)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        uint32_t hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c1 = lo1;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return make_uint4(c0, c1, c2, c3);
}

/* Uniform in [0, 1): 24 random bits for f32, 32 for f64 (both exact). */
static __device__ __forceinline__ float rng_u01_f32(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }
static __device__ __forceinline__ double rng_u01_f64(uint32_t w) { return (double)w * (1.0 / 4294967296.0); }

/* Box-Muller, in double; 1 - u1 lies in (0, 1], so the log is finite. */
static __device__ __forceinline__ double rng_normal(uint32_t w0, uint32_t w1, double mean, double std)
{
    double r = std * sqrt(-2.0 * log(1.0 - rng_u01_f64(w0)));
    double c = cos(6.283185307179586 * rng_u01_f64(w1));
    return __dadd_rn(mean, __dmul_rn(r, c));
}

/* out[i] from the element's two words, for the draw's kind and dtype (the
   same for every thread: the switches do not diverge). Integer dtypes always
   draw uniformly, as on the CPU. */
static __device__ __forceinline__ void rng_store(mt_random_kind kind, mt_dtype dtype, void *out, int64_t i,
                                                 uint32_t w0, uint32_t w1, const rng_params *p)
{
    switch (dtype) {
    case MT_F32: {
        float v;
        if (kind == MT_RANDOM_UNIFORM) v = __fadd_rn(p->lo_f32, __fmul_rn(p->span_f32, rng_u01_f32(w0)));
        else if (kind == MT_RANDOM_NORMAL) v = (float)rng_normal(w0, w1, p->p0, p->p1);
        else v = (uint64_t)w0 < p->threshold ? p->hit_f32 : 0.0f;
        ((float *)out)[i] = v;
        break;
    }
    case MT_F64: {
        double v;
        if (kind == MT_RANDOM_UNIFORM) v = __dadd_rn(p->lo_f64, __dmul_rn(p->span_f64, rng_u01_f64(w0)));
        else if (kind == MT_RANDOM_NORMAL) v = rng_normal(w0, w1, p->p0, p->p1);
        else v = (uint64_t)w0 < p->threshold ? p->hit_f64 : 0.0;
        ((double *)out)[i] = v;
        break;
    }
    default: {
        double v = floor(__dadd_rn(p->p0, __dmul_rn(p->p1 - p->p0, rng_u01_f64(w0))));
        if (dtype == MT_I32) ((int32_t *)out)[i] = (int32_t)v;
        else if (dtype == MT_I64) ((int64_t *)out)[i] = (int64_t)v;
        else ((uint8_t *)out)[i] = (uint8_t)v;   /* MT_U8, MT_BOOL */
        break;
    }
    }
}

/* out[g - offset] for the positions g in [offset, offset + n) of counter
   blocks first .. first + nblocks - 1: thread t runs Philox for blocks
   first + t, first + t + T, ... and writes element 2b from words 0, 1 and
   element 2b + 1 from words 2, 3, each when it falls inside the draw. */
static __global__ void k_random(mt_random_kind kind, mt_dtype dtype, uint64_t first, uint64_t nblocks,
                                uint64_t seed, uint64_t offset, uint64_t n, rng_params p, void *out)
{
    const uint64_t tid = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const uint64_t nthreads = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t t = tid; t < nblocks; t += nthreads) {
        uint64_t b = first + t;
        uint4 w = rng_philox(b, seed);
        uint64_t g = 2 * b;
        if (g >= offset && g - offset < n) rng_store(kind, dtype, out, (int64_t)(g - offset), w.x, w.y, &p);
        g++;
        if (g >= offset && g - offset < n) rng_store(kind, dtype, out, (int64_t)(g - offset), w.z, w.w, &p);
    }
}

extern "C" mt_status MT_CUDA_FN(random)(mt_random_kind kind, mt_dtype dtype, int64_t n, uint64_t seed,
                                        uint64_t offset, double p0, double p1, void *out)
{
    if ((unsigned)kind > MT_RANDOM_BERNOULLI) return MT_ERR_ARGUMENT;
    if (mt_dtype_size(dtype) == 0) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    rng_params p;
    p.p0 = p0;
    p.p1 = p1;
    p.lo_f32 = (float)p0;
    p.span_f32 = (float)(p1 - p0);
    p.hit_f32 = (float)p1;
    p.lo_f64 = p0;
    p.span_f64 = p1 - p0;
    p.hit_f64 = p1;
    /* p0 2^32 truncated, as the CPU's (uint64_t)(p0 * 4294967296.0); p0 <= 0 (or NaN) never hits */
    p.threshold = p0 >= 1 ? (1ULL << 32) : p0 > 0 ? (uint64_t)(p0 * 4294967296.0) : 0;
    uint64_t first = offset >> 1, last = (offset + (uint64_t)n - 1) >> 1, nblocks = last - first + 1;
    unsigned grid = mt_cuda_grid_1d((int64_t)nblocks, RNG_THREADS, RNG_MAX_BLOCKS);
    cudaStream_t stream = MT_STREAM();
    MT_LAUNCH(k_random, grid, RNG_THREADS, 0, stream, kind, dtype, first, nblocks, seed, offset, (uint64_t)n, p, out);
    return mt_cuda_launch_status("cuda random kernel");
}
