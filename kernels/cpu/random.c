/*
 * random.c - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
 * as 1, 2, 3", SC'11): a counter-based generator. Element i of a draw is a
 * pure function of (key = seed, counter = offset + i), so any backend and
 * any thread split produce the same numbers.
 */
#include "kernels/cpu/cpu_kernels.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

typedef struct { uint32_t v[4]; } philox_block;

static inline philox_block philox4x32_10(uint64_t counter, uint64_t seed)
{
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
    return (philox_block){ { c0, c1, c2, c3 } };
}

/* Uniform in [0, 1) with 24 (f32) or 53 (f64) random bits. */
static inline float u01_f32(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
static inline double u01_f64(uint32_t hi, uint32_t lo)
{
    uint64_t bits = ((uint64_t)hi << 21) ^ (lo >> 11);
    return (double)(bits & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
}

void mt_cpu_random(mt_random_kind kind, mt_dtype dtype, int64_t n, uint64_t seed, uint64_t offset,
                   double p0, double p1, void *out)
{
    #pragma omp parallel for if (n > MT_CPU_PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; i++) {
        philox_block r = philox4x32_10(offset + (uint64_t)i, seed);
        double u = dtype == MT_F32 ? (double)u01_f32(r.v[0]) : u01_f64(r.v[0], r.v[1]);
        double v;
        switch (kind) {
        case MT_RANDOM_UNIFORM:
            v = p0 + (p1 - p0) * u;
            break;
        case MT_RANDOM_NORMAL: {   /* Box-Muller; 1 - u lies in (0, 1] so the log is finite */
            double u2 = dtype == MT_F32 ? (double)u01_f32(r.v[2]) : u01_f64(r.v[2], r.v[3]);
            v = p0 + p1 * sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * u2);
            break;
        }
        case MT_RANDOM_BERNOULLI:
        default:
            v = u < p0 ? 1.0 : 0.0;
            break;
        }
        switch (dtype) {
        case MT_F32: ((float *)out)[i] = (float)v; break;
        case MT_F64: ((double *)out)[i] = v; break;
        case MT_I32: ((int32_t *)out)[i] = (int32_t)floor(v); break;
        case MT_I64: ((int64_t *)out)[i] = (int64_t)floor(v); break;
        case MT_U8: case MT_BOOL: ((uint8_t *)out)[i] = (uint8_t)v; break;
        default: break;
        }
    }
}
