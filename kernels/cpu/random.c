/*
 * random.c - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
 * as 1, 2, 3", SC'11): a counter-based generator. Element i of a draw is a
 * pure function of (key = seed, position offset + i), so any backend and
 * any thread split produce the same numbers.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Uniform in [0, 1): 24 random bits for f32, 32 for f64 (from one word). */
static inline float u01_f32(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
static inline double u01_f64(uint32_t x) { return (double)x * (1.0 / 4294967296.0); }

/*
 * Element i of a draw takes two 32-bit words of the Philox stream at global
 * position g = offset + i: block g / 2 of the counter, words 2 (g % 2) and
 * 2 (g % 2) + 1. One Philox call thus serves two elements.
 */
/* Philox for blocks b0 .. b0 + nb - 1 into four word arrays (structure of
   arrays, so that the compiler can run several blocks per SIMD instruction). */
static void philox_blocks(uint64_t b0, int64_t nb, uint64_t seed, uint32_t *w0, uint32_t *w1, uint32_t *w2, uint32_t *w3)
{
    #pragma omp simd
    for (int64_t k = 0; k < nb; k++) {
        uint64_t counter = b0 + (uint64_t)k;
        uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int round = 0; round < 10; round++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint32_t)p1;
            c3 = (uint32_t)p0;
            c0 = n0;
            c2 = n2;
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        w0[k] = c0; w1[k] = c1; w2[k] = c2; w3[k] = c3;
    }
}

/* Runs BODY for each element with its two words w0, w1, a chunk of blocks at a time. */
#define RANDOM_CHUNK 256
#define FOR_EACH_PAIR(BODY)                                                               \
    if (n <= 0) return MT_OK;                                                             \
    const uint64_t first_block = offset >> 1;                                             \
    const uint64_t blocks = ((offset + (uint64_t)n - 1) >> 1) - first_block + 1;          \
    const int64_t chunks = (int64_t)((blocks + RANDOM_CHUNK - 1) / RANDOM_CHUNK);         \
    _Pragma("omp parallel for if (n > MT_CPU_PARALLEL_GRAIN)")                            \
    for (int64_t ci = 0; ci < chunks; ci++) {                                             \
        uint32_t a0[RANDOM_CHUNK], a1[RANDOM_CHUNK], a2[RANDOM_CHUNK], a3[RANDOM_CHUNK];  \
        uint64_t b0 = first_block + (uint64_t)ci * RANDOM_CHUNK;                          \
        int64_t nb = (int64_t)(blocks - (uint64_t)ci * RANDOM_CHUNK);                     \
        if (nb > RANDOM_CHUNK) nb = RANDOM_CHUNK;                                         \
        philox_blocks(b0, nb, seed, a0, a1, a2, a3);                                      \
        /* element positions g covered by this chunk, clipped to the draw */             \
        uint64_t g_lo = 2 * b0, g_hi = 2 * (b0 + (uint64_t)nb);                           \
        if (g_lo < offset) g_lo = offset;                                                 \
        if (g_hi > offset + (uint64_t)n) g_hi = offset + (uint64_t)n;                     \
        for (uint64_t g = g_lo; g < g_hi; g++) {                                          \
            int64_t i = (int64_t)(g - offset);                                            \
            uint64_t k = (g >> 1) - b0;                                                   \
            uint32_t w0 = (g & 1) ? a2[k] : a0[k], w1 = (g & 1) ? a3[k] : a1[k];          \
            (void)w1;                                                                     \
            BODY;                                                                         \
        }                                                                                 \
    }

#define RANDOM_LOOP(T, U01)                                                                \
    do {                                                                                  \
        T *o = out;                                                                       \
        switch (kind) {                                                                   \
        case MT_RANDOM_UNIFORM: {                                                         \
            T lo = (T)p0, span = (T)(p1 - p0);                                            \
            FOR_EACH_PAIR(o[i] = lo + span * U01(w0));                                    \
            break;                                                                        \
        }                                                                                 \
        case MT_RANDOM_NORMAL: {  /* Box-Muller; 1 - u lies in (0, 1], so the log is finite */ \
            FOR_EACH_PAIR(o[i] = (T)(p0 + p1 * sqrt(-2.0 * log(1.0 - u01_f64(w0))) *      \
                                          cos(6.283185307179586 * u01_f64(w1))));        \
            break;                                                                        \
        }                                                                                 \
        case MT_RANDOM_BERNOULLI: {  /* p1 with probability p0, else 0 */                 \
            /* compare integers: w0 < p0 * 2^32 happens with probability p0 */            \
            uint64_t threshold = p0 >= 1 ? (1ULL << 32) : (uint64_t)(p0 * 4294967296.0);  \
            T hit = (T)p1;                                                                \
            FOR_EACH_PAIR(o[i] = (uint64_t)w0 < threshold ? hit : (T)0);                  \
            break;                                                                        \
        }                                                                                 \
        }                                                                                 \
    } while (0)

/* Integers: floor of a uniform draw in [p0, p1) with 32 random bits. */
#define RANDOM_INT_LOOP(T)                                                                \
    do {                                                                                  \
        T *o = out;                                                                       \
        FOR_EACH_PAIR(o[i] = (T)floor(p0 + (p1 - p0) * u01_f64(w0)));                     \
    } while (0)

mt_status mt_cpu_random(mt_random_kind kind, mt_dtype dtype, int64_t n, uint64_t seed, uint64_t offset,
                        double p0, double p1, void *out)
{
    if ((unsigned)kind > MT_RANDOM_BERNOULLI) return MT_ERR_ARGUMENT;
    switch (dtype) {
    case MT_F32: RANDOM_LOOP(float, u01_f32); break;
    case MT_F64: RANDOM_LOOP(double, u01_f64); break;
    case MT_I32: RANDOM_INT_LOOP(int32_t); break;
    case MT_I64: RANDOM_INT_LOOP(int64_t); break;
    case MT_U8: case MT_BOOL: RANDOM_INT_LOOP(uint8_t); break;
    default: return MT_ERR_UNSUPPORTED;
    }
    return MT_OK;
}
