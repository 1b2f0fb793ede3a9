/*
 * test_cuda_reduce.c - kernels/cuda/reduce.cu on the cuda-emu backend (the SIMT
 * emulator) against the CPU backend (kernels/cpu/reduce.c), called directly
 * through the two backend tables:
 *
 *   - every reduction kind, f32 and f64, var with correction 0 and 1, over
 *     rows (inner 1: a warp per row for n <= 256, a block per row above, and
 *     the two-pass split for few long rows) and columns (inner 7 and 64, split
 *     or not), with n = 1, 31, 32, 33, 256, 257, 1000, 100000 and outer 1 to
 *     1100 (several blocks, partial warps, tails);
 *   - sum, mean, max, min, argmax, argmin of i32, i64 (values near 2^62:
 *     compared exactly), u8 and bool;
 *   - ties (argmax/argmin: the first index wins, across threads, warps and
 *     the parts of a split row), NaN (wins), +-inf, rows of only -inf, in
 *     every layout;
 *   - softmax and log_softmax, forward and backward, the same layouts;
 *   - the same kernels in the emulator's shuffled mode (a missing barrier
 *     changes the answer there), bitwise determinism (two runs, and 1 vs 3
 *     emulator OS threads), the number of launches of the two-pass scheme,
 *     and the errors reported for dtypes the kernels do not take.
 *
 * Tolerances are the harness's: |emu - cpu| <= tol (1 + |cpu|) with tol 1e-5
 * for f32 and 1e-10 for f64; integers and indices exactly; NaN matches NaN.
 */
#include <criterion/criterion.h>

#include "harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/backend.h"
#include "host/runtime.h"
#include "kernels/cuda/simt_emu.h"

typedef struct shape3 { int64_t outer, n, inner; } shape3;

static const mt_backend *emu;

static void setup(void)
{
    mt_clear_error();
    emu = mt_backend_for(MT_DEVICE_CUDA_EMU);
    if (!emu) cr_skip_test("the cuda-emu backend is not built (no C++ compiler at build time)");
    mt_emu_set_shuffle(0, 0);
}

static void teardown(void) { mt_emu_set_shuffle(0, 0); }

TestSuite(cuda_reduce, .init = setup, .fini = teardown, .timeout = 300);

/* ---------------------------------------------------------------- data */
static uint64_t rng;
static uint64_t next_u64(void)   /* splitmix64 */
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform(void) { return (double)(next_u64() >> 11) * 0x1.0p-53 * 2.0 - 1.0; }   /* [-1, 1) */

static int64_t numel(shape3 s) { return s.outer * s.n * s.inner; }

/* value k of a float array: a * uniform + b */
static void *float_data(mt_dtype dtype, int64_t count, double a, double b, uint64_t seed)
{
    rng = seed;
    void *p = malloc((size_t)(count ? count : 1) * mt_dtype_size(dtype));
    cr_assert(p);
    for (int64_t k = 0; k < count; k++) {
        double v = a * uniform() + b;
        if (dtype == MT_F32) ((float *)p)[k] = (float)v;
        else ((double *)p)[k] = v;
    }
    return p;
}

static void set_value(mt_dtype dtype, void *p, int64_t k, double v)
{
    if (dtype == MT_F32) ((float *)p)[k] = (float)v;
    else ((double *)p)[k] = v;
}

static double get_value(mt_dtype dtype, const void *p, int64_t k)
{
    switch (dtype) {
    case MT_F32: return ((const float *)p)[k];
    case MT_F64: return ((const double *)p)[k];
    case MT_I32: return ((const int32_t *)p)[k];
    case MT_I64: return (double)((const int64_t *)p)[k];
    default: return ((const uint8_t *)p)[k];
    }
}

/* ---------------------------------------------------------------- running both backends */
static void *upload(const void *host, size_t bytes)
{
    void *d = emu->alloc(bytes ? bytes : 1);
    cr_assert(d);
    emu->from_host(d, host, bytes);
    return d;
}

static void expect_no_device_error(const char *what)
{
    cr_assert(mt_device_error_check() == MT_OK, "%s: %s", what, mt_last_error());
}

static void compare(const char *what, mt_dtype dtype, const void *expect, const void *got, int64_t count)
{
    if (!mt_dtype_is_float(dtype)) {
        size_t sz = mt_dtype_size(dtype);
        for (int64_t k = 0; k < count; k++)
            if (memcmp((const char *)expect + k * sz, (const char *)got + k * sz, sz) != 0) {
                if (dtype == MT_I64)
                    cr_assert_fail("%s: element %lld on cuda-emu is %lld, on cpu %lld", what, (long long)k,
                                   (long long)((const int64_t *)got)[k], (long long)((const int64_t *)expect)[k]);
                cr_assert_fail("%s: element %lld on cuda-emu is %g, on cpu %g", what, (long long)k,
                               get_value(dtype, got, k), get_value(dtype, expect, k));
            }
        return;
    }
    double tol = dtype == MT_F32 ? 1e-5 : 1e-10;
    for (int64_t k = 0; k < count; k++) {
        double e = get_value(dtype, expect, k), g = get_value(dtype, got, k);
        if ((isnan(e) && isnan(g)) || (isinf(e) && e == g)) continue;
        cr_assert(fabs(g - e) <= tol * (1 + fabs(e)), "%s: element %lld on cuda-emu is %.10g, on cpu %.10g (tol %g)",
                  what, (long long)k, g, e, tol);
    }
}

static const char *dtype_name(mt_dtype dtype)
{
    static const char *names[] = { "f32", "f64", "i32", "i64", "u8", "bool" };
    return names[dtype];
}

static const char *kind_name(mt_reduce_kind kind)
{
    static const char *names[] = { "sum", "mean", "max", "min", "argmax", "argmin", "var", "logsumexp" };
    return names[kind];
}

/* Runs the reduction on both backends; the cuda-emu result goes to emu_out
   (when given, for the caller to inspect) and is compared with the CPU's. */
static void check_reduce_out(mt_reduce_kind kind, mt_dtype dtype, shape3 s, const void *x, double param, void *emu_out)
{
    bool arg = kind == MT_REDUCE_ARGMAX || kind == MT_REDUCE_ARGMIN;
    mt_dtype odt = arg ? MT_I64 : dtype;
    int64_t outs = s.outer * s.inner;
    size_t obytes = (size_t)outs * mt_dtype_size(odt), xbytes = (size_t)numel(s) * mt_dtype_size(dtype);
    void *cpu_out = calloc(1, obytes), *got = emu_out ? emu_out : calloc(1, obytes);
    cr_assert(cpu_out && got);
    KERNEL_OK(mt_cpu_backend.reduce(kind, dtype, s.outer, s.n, s.inner, x, cpu_out, param));
    void *dx = upload(x, xbytes), *dout = emu->alloc(obytes);
    cr_assert(dout);
    KERNEL_OK(emu->reduce(kind, dtype, s.outer, s.n, s.inner, dx, dout, param));
    emu->to_host(got, dout, obytes);
    char what[160];
    snprintf(what, sizeof what, "%s [%s] over [%lld, %lld, %lld] (param %g)", kind_name(kind), dtype_name(dtype),
             (long long)s.outer, (long long)s.n, (long long)s.inner, param);
    expect_no_device_error(what);
    compare(what, odt, cpu_out, got, outs);
    emu->free(dx);
    emu->free(dout);
    free(cpu_out);
    if (!emu_out) free(got);
}

static void check_reduce(mt_reduce_kind kind, mt_dtype dtype, shape3 s, const void *x, double param)
{
    check_reduce_out(kind, dtype, s, x, param, NULL);
}

/* Every float kind (var with correction 0 and 1) on x. */
static void check_all_float_kinds(mt_dtype dtype, shape3 s, const void *x)
{
    for (int kind = 0; kind < MT_REDUCE_KIND_COUNT; kind++) {
        check_reduce((mt_reduce_kind)kind, dtype, s, x, 0);
        if (kind == MT_REDUCE_VAR) check_reduce((mt_reduce_kind)kind, dtype, s, x, 1);
    }
}

/* softmax (log or not) forward on both backends, then the backward from the
   CPU's y and a random dy. */
static void check_softmax(bool log, mt_dtype dtype, shape3 s, const void *x)
{
    int64_t count = numel(s);
    size_t bytes = (size_t)count * mt_dtype_size(dtype);
    void *y_cpu = calloc(1, bytes ? bytes : 1), *y_emu = calloc(1, bytes ? bytes : 1);
    cr_assert(y_cpu && y_emu);
    char what[160];
    snprintf(what, sizeof what, "%s [%s] over [%lld, %lld, %lld]", log ? "log_softmax" : "softmax", dtype_name(dtype),
             (long long)s.outer, (long long)s.n, (long long)s.inner);
    KERNEL_OK(mt_cpu_backend.softmax(log, dtype, s.outer, s.n, s.inner, x, y_cpu));
    void *dx = upload(x, bytes), *dy = emu->alloc(bytes ? bytes : 1);
    KERNEL_OK(emu->softmax(log, dtype, s.outer, s.n, s.inner, dx, dy));
    emu->to_host(y_emu, dy, bytes);
    expect_no_device_error(what);
    compare(what, dtype, y_cpu, y_emu, count);

    /* backward */
    void *g = float_data(dtype, count, 1.0, 0.0, 99 + (uint64_t)count);
    void *gx_cpu = calloc(1, bytes ? bytes : 1), *gx_emu = calloc(1, bytes ? bytes : 1);
    cr_assert(gx_cpu && gx_emu);
    KERNEL_OK(mt_cpu_backend.softmax_backward(log, dtype, s.outer, s.n, s.inner, y_cpu, g, gx_cpu));
    void *d_y = upload(y_cpu, bytes), *d_g = upload(g, bytes), *d_gx = emu->alloc(bytes ? bytes : 1);
    KERNEL_OK(emu->softmax_backward(log, dtype, s.outer, s.n, s.inner, d_y, d_g, d_gx));
    emu->to_host(gx_emu, d_gx, bytes);
    strncat(what, " backward", sizeof what - strlen(what) - 1);
    expect_no_device_error(what);
    compare(what, dtype, gx_cpu, gx_emu, count);

    emu->free(dx);
    emu->free(dy);
    emu->free(d_y);
    emu->free(d_g);
    emu->free(d_gx);
    free(y_cpu);
    free(y_emu);
    free(g);
    free(gx_cpu);
    free(gx_emu);
}

/* ---------------------------------------------------------------- every kind, f32 and f64 */
static void check_shapes_all_kinds(const shape3 *shapes, int count)
{
    for (int d = 0; d < 2; d++) {
        mt_dtype dtype = d ? MT_F64 : MT_F32;
        for (int i = 0; i < count; i++) {
            /* offset from 0, so sums neither cancel to nothing nor avoid cancelling */
            void *x = float_data(dtype, numel(shapes[i]), 2.0, 0.5, 1000 + (uint64_t)i);
            check_all_float_kinds(dtype, shapes[i], x);
            free(x);
        }
    }
}

Test(cuda_reduce, kinds_short_rows)
{
    /* a warp per row (n <= 256): n = 1, 31, 32, 33, 256; several blocks of 8 rows, a partial last block */
    static const shape3 shapes[] = { { 1, 1, 1 }, { 13, 1, 1 }, { 7, 31, 1 }, { 5, 32, 1 }, { 3, 33, 1 },
                                     { 513, 33, 1 }, { 9, 256, 1 } };
    check_shapes_all_kinds(shapes, sizeof shapes / sizeof shapes[0]);
}

Test(cuda_reduce, kinds_long_rows)
{
    /* a block per row; 513 rows of 1000; few long rows split into parts (two passes) */
    static const shape3 shapes[] = { { 4, 257, 1 }, { 513, 1000, 1 }, { 2, 5000, 1 }, { 1, 100000, 1 },
                                     { 3, 100000, 1 } };
    check_shapes_all_kinds(shapes, sizeof shapes / sizeof shapes[0]);
}

Test(cuda_reduce, kinds_columns)
{
    /* a thread per column: inner 7 and 64, split along n when the columns are few */
    static const shape3 shapes[] = { { 1, 1, 7 }, { 3, 1, 64 }, { 1, 31, 7 }, { 1, 1000, 7 }, { 513, 33, 7 },
                                     { 2, 1000, 64 }, { 513, 31, 64 }, { 1100, 3, 64 }, { 1, 100000, 7 } };
    check_shapes_all_kinds(shapes, sizeof shapes / sizeof shapes[0]);
}

/* Long rows of large values: f32 sums accumulate in double, so they stay within 1e-5 of the CPU's. */
Test(cuda_reduce, long_row_precision)
{
    shape3 s = { 2, 100000, 1 };
    for (int d = 0; d < 2; d++) {
        mt_dtype dtype = d ? MT_F64 : MT_F32;
        void *x = float_data(dtype, numel(s), 1.0, 1000.0, 5);
        check_reduce(MT_REDUCE_SUM, dtype, s, x, 0);
        check_reduce(MT_REDUCE_MEAN, dtype, s, x, 0);
        check_reduce(MT_REDUCE_VAR, dtype, s, x, 1);
        check_reduce(MT_REDUCE_LOGSUMEXP, dtype, s, x, 0);
        free(x);
    }
}

/* ---------------------------------------------------------------- integers */
static void *int_data(mt_dtype dtype, int64_t count, int64_t lo, int64_t hi, int64_t base, uint64_t seed)
{
    rng = seed;
    void *p = malloc((size_t)(count ? count : 1) * mt_dtype_size(dtype));
    cr_assert(p);
    for (int64_t k = 0; k < count; k++) {
        int64_t v = base + lo + (int64_t)(next_u64() % (uint64_t)(hi - lo + 1));
        switch (dtype) {
        case MT_I32: ((int32_t *)p)[k] = (int32_t)v; break;
        case MT_I64: ((int64_t *)p)[k] = v; break;
        default: ((uint8_t *)p)[k] = (uint8_t)v; break;
        }
    }
    return p;
}

Test(cuda_reduce, integers)
{
    static const shape3 shapes[] = { { 1, 1, 1 }, { 7, 31, 1 }, { 3, 33, 1 }, { 40, 63, 1 }, { 67, 300, 1 },
                                     { 1, 100000, 1 }, { 1, 1000, 7 }, { 513, 33, 7 }, { 2, 63, 64 },
                                     { 1, 100000, 7 } };
    static const mt_reduce_kind kinds[] = { MT_REDUCE_SUM, MT_REDUCE_MEAN, MT_REDUCE_MAX, MT_REDUCE_MIN,
                                            MT_REDUCE_ARGMAX, MT_REDUCE_ARGMIN };
    static const mt_dtype dtypes[] = { MT_I32, MT_I64, MT_U8, MT_BOOL };
    for (size_t t = 0; t < sizeof dtypes / sizeof dtypes[0]; t++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            mt_dtype dtype = dtypes[t];
            shape3 s = shapes[i];
            bool small = dtype == MT_U8 || dtype == MT_BOOL;
            /* few distinct values: ties everywhere */
            void *x = int_data(dtype, numel(s), small ? 0 : -3, dtype == MT_BOOL ? 1 : 3, 0, 77 + i);
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                /* u8 sums wrap past 255 (differently from the CPU's double sum cast back): keep them small */
                if (small && kinds[k] <= MT_REDUCE_MEAN && s.n * 3 > 255) continue;
                check_reduce(kinds[k], dtype, s, x, 0);
            }
            free(x);
        }
    /* int64 beyond 2^53: compared and indexed exactly */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        void *x = int_data(MT_I64, numel(shapes[i]), -50, 50, (int64_t)1 << 62, 9 + i);
        for (size_t k = 2; k < sizeof kinds / sizeof kinds[0]; k++) check_reduce(kinds[k], MT_I64, shapes[i], x, 0);
        free(x);
    }
    /* int64 sums: exact */
    shape3 s = { 3, 1000, 1 };
    void *x = int_data(MT_I64, numel(s), -1000000, 1000000, 0, 5);
    check_reduce(MT_REDUCE_SUM, MT_I64, s, x, 0);
    free(x);
}

/* ---------------------------------------------------------------- ties, NaN, infinities */
Test(cuda_reduce, ties_first_index_wins)
{
    static const shape3 shapes[] = { { 5, 33, 1 }, { 41, 1000, 1 }, { 3, 100000, 1 }, { 1, 1000, 7 },
                                     { 2, 100000, 7 }, { 513, 31, 64 } };
    for (int d = 0; d < 2; d++) {
        mt_dtype dtype = d ? MT_F64 : MT_F32;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            int64_t count = numel(shapes[i]);
            void *x = float_data(dtype, count, 1.0, 0.0, 31 + i);
            for (int64_t k = 0; k < count; k++) set_value(dtype, x, k, floor(get_value(dtype, x, k) * 1.5));  /* -2..1 */
            for (int kind = MT_REDUCE_MAX; kind <= MT_REDUCE_ARGMIN; kind++)
                check_reduce((mt_reduce_kind)kind, dtype, shapes[i], x, 0);
            free(x);
        }
    }
    /* one long row, split into parts: the maximum twice, far apart, in different parts; all equal */
    shape3 s = { 2, 100000, 1 };
    double *x = calloc((size_t)numel(s), sizeof *x);
    cr_assert(x);
    x[70000] = 5;
    x[90000] = 5;
    x[100000 + 99999] = -1;
    int64_t got[2];
    check_reduce_out(MT_REDUCE_ARGMAX, MT_F64, s, x, 0, got);
    cr_assert(got[0] == 70000 && got[1] == 0, "argmax: %lld %lld", (long long)got[0], (long long)got[1]);
    check_reduce_out(MT_REDUCE_ARGMIN, MT_F64, s, x, 0, got);
    cr_assert(got[0] == 0 && got[1] == 99999, "argmin: %lld %lld", (long long)got[0], (long long)got[1]);
    x[80000] = NAN;
    x[95000] = NAN;
    check_reduce_out(MT_REDUCE_ARGMIN, MT_F64, s, x, 0, got);
    cr_assert(got[0] == 80000, "argmin with NaN: %lld", (long long)got[0]);
    free(x);
}

/* Column k of the layout gets special pattern k % 8. */
static void put_specials(mt_dtype dtype, shape3 s, void *x)
{
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            int pattern = (int)((o * s.inner + i) % 8);
            for (int64_t j = 0; j < s.n; j++) {
                int64_t at = (o * s.n + j) * s.inner + i;
                double v = NAN;
                bool set = true;
                switch (pattern) {
                case 0: set = false; break;                                   /* finite */
                case 1: set = j == s.n / 2 || j == s.n - 1; break;            /* NaN inside */
                case 2: v = -INFINITY; break;                                 /* only -inf */
                case 3: v = INFINITY; set = j == s.n / 3; break;              /* one +inf */
                case 4: set = j == 0; break;                                  /* NaN first */
                case 5: v = -INFINITY; set = j % 3 == 1; break;               /* -inf among finite */
                case 6: v = j == 0 ? INFINITY : NAN; set = j == 0 || j == s.n - 1; break;  /* +inf and NaN */
                default: break;                                               /* only NaN */
                }
                if (set) set_value(dtype, x, at, v);
            }
        }
}

Test(cuda_reduce, nan_and_infinities)
{
    static const shape3 shapes[] = { { 8, 1, 1 }, { 8, 33, 1 }, { 16, 1000, 1 }, { 8, 100000, 1 }, { 2, 33, 7 },
                                     { 3, 1000, 8 }, { 1, 50000, 8 } };
    for (int d = 0; d < 2; d++) {
        mt_dtype dtype = d ? MT_F64 : MT_F32;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            void *x = float_data(dtype, numel(shapes[i]), 3.0, 0.0, 50 + i);
            put_specials(dtype, shapes[i], x);
            check_all_float_kinds(dtype, shapes[i], x);
            check_softmax(false, dtype, shapes[i], x);
            check_softmax(true, dtype, shapes[i], x);
            free(x);
        }
    }
}

/* ---------------------------------------------------------------- softmax */
Test(cuda_reduce, softmax_forward_backward)
{
    static const shape3 shapes[] = { { 1, 1, 1 }, { 7, 31, 1 }, { 5, 32, 1 }, { 3, 33, 1 }, { 9, 256, 1 },
                                     { 4, 257, 1 }, { 65, 1000, 1 }, { 1, 100000, 1 }, { 1, 1, 7 },
                                     { 513, 33, 7 }, { 2, 1000, 64 }, { 1100, 3, 64 } };
    for (int d = 0; d < 2; d++) {
        mt_dtype dtype = d ? MT_F64 : MT_F32;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            void *x = float_data(dtype, numel(shapes[i]), 4.0, 0.0, 300 + i);
            check_softmax(false, dtype, shapes[i], x);
            check_softmax(true, dtype, shapes[i], x);
            free(x);
        }
    }
}

/* log_softmax of large logits keeps its fraction in f32: (x - m) - log s */
Test(cuda_reduce, log_softmax_large_logits)
{
    shape3 shapes[] = { { 17, 100, 1 }, { 3, 100, 5 } };
    for (size_t i = 0; i < 2; i++) {
        int64_t count = numel(shapes[i]);
        float *x = float_data(MT_F32, count, 1.0, 20000.0, 8);
        float *y = malloc((size_t)count * sizeof *y);
        cr_assert(y);
        check_softmax(true, MT_F32, shapes[i], x);
        void *dx = upload(x, (size_t)count * sizeof *x), *dy = emu->alloc((size_t)count * sizeof *y);
        KERNEL_OK(emu->softmax(true, MT_F32, shapes[i].outer, shapes[i].n, shapes[i].inner, dx, dy));
        emu->to_host(y, dy, (size_t)count * sizeof *y);
        expect_no_device_error("log_softmax");
        /* against double precision: error of a few f32 ulps of |y| (~5), not of 20000 */
        for (int64_t o = 0; o < shapes[i].outer; o++)
            for (int64_t c = 0; c < shapes[i].inner; c++) {
                int64_t base = o * shapes[i].n * shapes[i].inner + c, st = shapes[i].inner;
                double m = -INFINITY, s = 0;
                for (int64_t j = 0; j < shapes[i].n; j++) m = fmax(m, x[base + j * st]);
                for (int64_t j = 0; j < shapes[i].n; j++) s += exp(x[base + j * st] - m);
                for (int64_t j = 0; j < shapes[i].n; j++) {
                    double e = x[base + j * st] - m - log(s);
                    cr_assert(fabs(y[base + j * st] - e) < 1e-5, "log_softmax: %.9g vs %.9g", y[base + j * st], e);
                }
            }
        emu->free(dx);
        emu->free(dy);
        free(x);
        free(y);
    }
}

/* ---------------------------------------------------------------- shuffled mode, determinism, launches */
static void shuffled_round(void)
{
    static const shape3 shapes[] = { { 13, 33, 1 }, { 5, 1000, 1 }, { 2, 100000, 1 }, { 3, 1000, 7 },
                                     { 1, 50000, 7 } };
    for (int d = 0; d < 2; d++) {
        mt_dtype dtype = d ? MT_F64 : MT_F32;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            void *x = float_data(dtype, numel(shapes[i]), 2.0, 0.25, 600 + i);
            check_all_float_kinds(dtype, shapes[i], x);
            check_softmax(false, dtype, shapes[i], x);
            check_softmax(true, dtype, shapes[i], x);
            free(x);
        }
    }
}

Test(cuda_reduce, shuffled_mode)
{
    for (uint64_t seed = 3; seed <= 4; seed++) {
        mt_emu_set_shuffle(1, seed);
        shuffled_round();
    }
    mt_emu_set_shuffle(0, 0);
}

/* The same input gives the same bits: twice, and with 1 or 3 emulator OS threads. */
Test(cuda_reduce, deterministic)
{
    static const shape3 shapes[] = { { 3, 100000, 1 }, { 300, 700, 1 }, { 2, 30000, 7 } };
    static const mt_reduce_kind kinds[] = { MT_REDUCE_SUM, MT_REDUCE_MEAN, MT_REDUCE_VAR, MT_REDUCE_LOGSUMEXP };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        shape3 s = shapes[i];
        int64_t outs = s.outer * s.inner;
        size_t obytes = (size_t)outs * sizeof(float);
        float *x = float_data(MT_F32, numel(s), 3.0, 0.1, 700 + i);
        float *first = malloc(obytes), *again = malloc(obytes);
        cr_assert(first && again);
        void *dx = upload(x, (size_t)numel(s) * sizeof *x), *dout = emu->alloc(obytes);
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            for (int run = 0; run < 3; run++) {
                mt_emu_set_threads(run == 2 ? 1 : 3);
                KERNEL_OK(emu->reduce(kinds[k], MT_F32, s.outer, s.n, s.inner, dx, dout, 1));
                emu->to_host(run ? again : first, dout, obytes);
                cr_assert(run == 0 || memcmp(first, again, obytes) == 0, "%s over [%lld, %lld, %lld]: run %d differs",
                          kind_name(kinds[k]), (long long)s.outer, (long long)s.n, (long long)s.inner, run);
            }
        mt_emu_set_threads(0);
        expect_no_device_error("deterministic");
        emu->free(dx);
        emu->free(dout);
        free(first);
        free(again);
        free(x);
    }
}

static uint64_t launches_of(mt_reduce_kind kind, shape3 s)
{
    double *x = float_data(MT_F64, numel(s), 1.0, 0.0, 1);
    void *dx = upload(x, (size_t)numel(s) * sizeof *x), *dout = emu->alloc((size_t)(s.outer * s.inner) * sizeof(double));
    mt_emu_reset_stats();
    KERNEL_OK(emu->reduce(kind, MT_F64, s.outer, s.n, s.inner, dx, dout, 0));
    mt_emu_stats st;
    mt_emu_get_stats(&st);
    expect_no_device_error("launches");
    emu->free(dx);
    emu->free(dout);
    free(x);
    return st.launches;
}

/* Few long rows or columns take the two-pass scheme (a second, finishing launch); var adds its mean pass. */
Test(cuda_reduce, two_pass_scheme_launches)
{
    cr_expect_eq(launches_of(MT_REDUCE_SUM, (shape3){ 300, 1000, 1 }), 1);
    cr_expect_eq(launches_of(MT_REDUCE_SUM, (shape3){ 1, 100000, 1 }), 2);
    cr_expect_eq(launches_of(MT_REDUCE_ARGMAX, (shape3){ 1, 100000, 1 }), 2);
    cr_expect_eq(launches_of(MT_REDUCE_VAR, (shape3){ 1, 100000, 1 }), 4);
    cr_expect_eq(launches_of(MT_REDUCE_VAR, (shape3){ 300, 1000, 1 }), 2);
    cr_expect_eq(launches_of(MT_REDUCE_SUM, (shape3){ 1, 1000, 7 }), 2);
    cr_expect_eq(launches_of(MT_REDUCE_SUM, (shape3){ 1100, 3, 64 }), 1);
    cr_expect_eq(launches_of(MT_REDUCE_LOGSUMEXP, (shape3){ 2, 1000, 64 }), 2);
}

/* ---------------------------------------------------------------- errors */
Test(cuda_reduce, unsupported_dtypes_are_reported)
{
    int32_t xi[6] = { 1, 2, 3, 4, 5, 6 };
    void *dx = upload(xi, sizeof xi), *dout = emu->alloc(sizeof xi);
    /* refused with a status before any launch: no device error is left behind */
    cr_assert_eq(emu->reduce(MT_REDUCE_VAR, MT_I32, 2, 3, 1, dx, dout, 1), MT_ERR_UNSUPPORTED);
    cr_assert_eq(emu->reduce(MT_REDUCE_LOGSUMEXP, MT_U8, 2, 3, 1, dx, dout, 0), MT_ERR_UNSUPPORTED);
    cr_assert_eq(emu->reduce((mt_reduce_kind)99, MT_F32, 2, 3, 1, dx, dout, 0), MT_ERR_ARGUMENT);
    cr_assert_eq(emu->softmax(false, MT_I32, 2, 3, 1, dx, dout), MT_ERR_UNSUPPORTED);
    cr_assert_eq(emu->softmax_backward(true, MT_I64, 1, 3, 1, dx, dx, dout), MT_ERR_UNSUPPORTED);
    cr_assert_eq(mt_device_error_check(), MT_OK, "%s", mt_last_error());
    /* the CPU kernels answer the same */
    cr_assert_eq(mt_cpu_backend.reduce(MT_REDUCE_VAR, MT_I32, 2, 3, 1, xi, xi, 1), MT_ERR_UNSUPPORTED);
    cr_assert_eq(mt_cpu_backend.softmax(false, MT_I32, 2, 3, 1, xi, xi), MT_ERR_UNSUPPORTED);
    /* then a good call works and reports nothing */
    KERNEL_OK(emu->reduce(MT_REDUCE_SUM, MT_I32, 2, 3, 1, dx, dout, 0));
    int32_t out[2];
    emu->to_host(out, dout, sizeof out);
    cr_assert_eq(mt_device_error_check(), MT_OK);
    cr_assert(out[0] == 6 && out[1] == 15);
    emu->free(dx);
    emu->free(dout);
}
