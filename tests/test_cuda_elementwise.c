/*
 * test_cuda_elementwise.c - the CUDA kernels of kernels/cuda/elementwise.cu and
 * kernels/cuda/random.cu, run by the SIMT emulator through the cuda-emu
 * backend's entries, against the CPU backend's on the same inputs.
 *
 * Shapes exercise the edges: n = 1, 3, 257, 4099 and 2^20 + 5 (more vectors or
 * elements than the capped grid has threads, so the grid-stride loops go
 * round), pointers offset by one element (the vector paths fall back to
 * scalars), strided and broadcast loops of 3 to 5 dims (transposed, stepped,
 * stride-0 operands), every dtype pair of copy, every kind of unary, binary
 * and random. Exact operations (copies, casts, fills, binary maths, where,
 * random draws) must match bit for bit; transcendental unary maths to 1e-5
 * (f32) and 1e-10 (f64) relative, as the harness (the CPU evaluates some of
 * them with libmvec's SIMD functions). The output buffers have gaps the loops
 * skip, so a kernel writing where it should not shows up too. One test runs
 * a selection again in the emulator's shuffled mode.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/backend.h"
#include "host/runtime.h"
#include "kernels/cuda/simt_emu.h"

#define BIG ((1 << 20) + 5)

static const int64_t SIZES[] = { 1, 3, 257, 4099 };
#define N_SIZES ((int)(sizeof SIZES / sizeof SIZES[0]))

static const mt_dtype ALL_DTYPES[] = { MT_F32, MT_F64, MT_I32, MT_I64, MT_U8, MT_BOOL };

/* ---------------------------------------------------------------- helpers */
static const mt_backend *cpu_be(void) { return &mt_cpu_backend; }

static const mt_backend *emu_be(void)
{
    const mt_backend *be = mt_backend_for(MT_DEVICE_CUDA_EMU);
    if (!be) cr_skip_test("the cuda-emu backend is not built (no C++ compiler)");
    return be;
}

static const char *dname(mt_dtype t)
{
    static const char *names[] = { "f32", "f64", "i32", "i64", "u8", "bool" };
    return (unsigned)t < MT_DTYPE_COUNT ? names[t] : "?";
}

/* A small deterministic generator (xorshift64*). */
static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull + 1; }
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static double rng_unit(void) { return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0); }

/* n values of dtype in [lo, hi]: floats with fractions (about 1 in 8 a whole
   number, so that comparisons meet equal values), integers whole, bools 0/1. */
static void fill_values(mt_dtype t, void *buf, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * rng_unit();
        if (rng_next() % 8 == 0) v = floor(v);
        switch (t) {
        case MT_F32: ((float *)buf)[i] = (float)v; break;
        case MT_F64: ((double *)buf)[i] = v; break;
        case MT_I32: ((int32_t *)buf)[i] = (int32_t)floor(v); break;
        case MT_I64: ((int64_t *)buf)[i] = (int64_t)floor(v); break;
        case MT_U8: ((uint8_t *)buf)[i] = (uint8_t)floor(v); break;
        case MT_BOOL: ((uint8_t *)buf)[i] = (uint8_t)(rng_next() & 1); break;
        default: break;
        }
    }
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    cr_assert(p != NULL);
    return p;
}

/* Device copy of a host buffer (cuda-emu memory, exactly `bytes` long). */
static void *dev_upload(const void *host, size_t bytes)
{
    void *d = emu_be()->alloc(bytes ? bytes : 1);
    cr_assert(d != NULL);
    if (bytes) emu_be()->from_host(d, host, bytes);
    return d;
}

static void dev_download(void *host, const void *dev, size_t bytes)
{
    if (bytes) emu_be()->to_host(host, dev, bytes);
}

static void expect_no_device_error(const char *what)
{
    cr_assert_eq(mt_device_error_check(), MT_OK, "%s: %s", what, mt_last_error());
}

/* Byte-exact comparison; on a mismatch, names the first differing element. */
static void expect_same_bytes(const char *what, const void *cpu, const void *emu, int64_t n, size_t esize)
{
    if (memcmp(cpu, emu, (size_t)n * esize) == 0) return;
    for (int64_t i = 0; i < n; i++)
        if (memcmp((const char *)cpu + i * esize, (const char *)emu + i * esize, esize) != 0) {
            double c = 0, e = 0;
            if (esize == 4) { c = ((const float *)cpu)[i]; e = ((const float *)emu)[i]; }
            if (esize == 8) { c = ((const double *)cpu)[i]; e = ((const double *)emu)[i]; }
            cr_assert_fail("%s: element %lld of %lld differs (cpu %.9g, cuda-emu %.9g as floats; bytes %s)", what,
                           (long long)i, (long long)n, c, e, esize == 1 ? "u8" : "wide");
        }
}

/* Relative comparison of float arrays (NaN == NaN, inf == inf). */
static void expect_close(const char *what, mt_dtype t, const void *cpu, const void *emu, int64_t n)
{
    double tol = t == MT_F32 ? 1e-5 : 1e-10;
    for (int64_t i = 0; i < n; i++) {
        double e = t == MT_F32 ? ((const float *)cpu)[i] : ((const double *)cpu)[i];
        double g = t == MT_F32 ? ((const float *)emu)[i] : ((const double *)emu)[i];
        if ((isnan(e) && isnan(g)) || (isinf(e) && e == g)) continue;
        cr_assert(fabs(g - e) <= tol * (1 + fabs(e)), "%s: element %lld of %lld is %.10g on cuda-emu, %.10g on cpu",
                  what, (long long)i, (long long)n, g, e);
    }
}

/* ---------------------------------------------------------------- loops */
/* Operand layouts for a loop over shape[ndim]: the operand is row-major in the
   dim order perm (perm[0] outermost; NULL: 0, 1, ...), dims in bcast (a bit
   mask) have stride 0, and every stride is multiplied by step (gaps). */
typedef struct layout {
    const int *perm;
    unsigned bcast;
    int64_t step;
} layout;

static int64_t layout_strides(int ndim, const int64_t *shape, layout l, int64_t *stride)
{
    int64_t s = l.step > 0 ? l.step : 1, extent = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        int d = l.perm ? l.perm[k] : k;
        if (l.bcast & (1u << d)) { stride[d] = 0; continue; }
        stride[d] = s;
        extent += (shape[d] - 1) * s;
        s *= shape[d];
    }
    return extent;   /* elements from the first to one past the last reachable */
}

/* Fills loop for nops operands; extent[k] = elements operand k spans. */
static void make_loop(mt_loop *loop, int ndim, const int64_t *shape, int nops, const layout *ls, int64_t *extent)
{
    memset(loop, 0, sizeof *loop);
    loop->ndim = ndim;
    for (int d = 0; d < ndim; d++) loop->shape[d] = shape[d];
    for (int k = 0; k < nops; k++) extent[k] = layout_strides(ndim, shape, ls[k], loop->stride[k]);
}

static void contiguous_loop(mt_loop *loop, int64_t n, int nops, int64_t *extent)
{
    layout ls[4] = { { NULL, 0, 1 }, { NULL, 0, 1 }, { NULL, 0, 1 }, { NULL, 0, 1 } };
    make_loop(loop, 1, &n, nops, ls, extent);
}

/* ---------------------------------------------------------------- copy */
/* Copies src (dtype sd, extent[1] elements after a shift of sh[1]) into dst
   (dd, extent[0] after sh[0]) over loop on both backends; compares all of dst
   bitwise, the gaps included. Values lie in [lo, hi]. */
static void check_copy(const char *what, const mt_loop *loop, const int64_t *extent, const int64_t *sh, mt_dtype dd,
                       mt_dtype sd, double lo, double hi)
{
    size_t dsz = mt_dtype_size(dd), ssz = mt_dtype_size(sd);
    int64_t dn = sh[0] + extent[0], sn = sh[1] + extent[1];
    unsigned char *src = xmalloc((size_t)sn * ssz), *dc = xmalloc((size_t)dn * dsz), *de = xmalloc((size_t)dn * dsz);
    fill_values(sd, src, sn, lo, hi);
    memset(dc, 0xA5, (size_t)dn * dsz);
    void *d_src = dev_upload(src, (size_t)sn * ssz), *d_dst = dev_upload(dc, (size_t)dn * dsz);
    KERNEL_OK(cpu_be()->copy(loop, dd, dc + sh[0] * dsz, sd, src + sh[1] * ssz));
    KERNEL_OK(emu_be()->copy(loop, dd, (char *)d_dst + sh[0] * dsz, sd, (char *)d_src + sh[1] * ssz));
    expect_no_device_error(what);
    dev_download(de, d_dst, (size_t)dn * dsz);
    char msg[160];
    snprintf(msg, sizeof msg, "copy %s <- %s (%s)", dname(dd), dname(sd), what);
    expect_same_bytes(msg, dc, de, dn, dsz);
    emu_be()->free(d_src);
    emu_be()->free(d_dst);
    free(src);
    free(dc);
    free(de);
}

Test(cuda_elementwise, copy_every_dtype_pair_contiguous, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(1);
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            for (int s = 0; s < N_SIZES; s++)
                for (int shift = 0; shift < 2; shift++) {
                    mt_loop loop;
                    int64_t ext[2], sh[2] = { shift, 2 * shift };
                    contiguous_loop(&loop, SIZES[s], 2, ext);
                    char what[64];
                    snprintf(what, sizeof what, "n %lld, shift %d", (long long)SIZES[s], shift);
                    /* values every dtype holds: [0, 120] */
                    check_copy(what, &loop, ext, sh, ALL_DTYPES[a], ALL_DTYPES[b], 0, 120);
                }
}

Test(cuda_elementwise, copy_negative_values_between_signed_dtypes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(2);
    const mt_dtype signed_types[] = { MT_F32, MT_F64, MT_I32, MT_I64, MT_BOOL };
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 4; b++) {   /* bool sources are 0/1 anyway */
            mt_loop loop;
            int64_t ext[2], sh[2] = { 0, 0 };
            contiguous_loop(&loop, 4099, 2, ext);
            check_copy("negative values", &loop, ext, sh, signed_types[a], signed_types[b], -1e6, 1e6);
        }
}

Test(cuda_elementwise, copy_strided_every_dtype_pair, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(3);
    static const int perm3[] = { 2, 0, 1 }, perm4[] = { 3, 1, 0, 2 }, perm5[] = { 4, 3, 2, 1, 0 };
    struct { int ndim; int64_t shape[5]; layout dst, src; } cases[] = {
        { 3, { 5, 7, 9 }, { NULL, 0, 1 }, { perm3, 0, 1 } },            /* gather from a permuted source */
        { 4, { 3, 4, 5, 6 }, { perm4, 0, 1 }, { NULL, 0, 2 } },         /* scatter into a permuted dst, stepped src */
        { 5, { 2, 3, 4, 3, 5 }, { NULL, 0, 1 }, { perm5, 0x5, 1 } },    /* broadcast (stride 0) dims 0 and 2 */
        { 3, { 17, 1, 33 }, { NULL, 0, 3 }, { perm3, 0x4, 1 } },        /* a size-1 dim, gaps in dst */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++) {
                mt_loop loop;
                layout ls[2] = { cases[c].dst, cases[c].src };
                int64_t ext[2], sh[2] = { 1, 1 };
                make_loop(&loop, cases[c].ndim, cases[c].shape, 2, ls, ext);
                char what[64];
                snprintf(what, sizeof what, "strided case %zu", c);
                check_copy(what, &loop, ext, sh, ALL_DTYPES[a], ALL_DTYPES[b], 0, 120);
            }
}

Test(cuda_elementwise, copy_large_and_zero_dim, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(4);
    mt_loop loop;
    int64_t ext[2], sh0[2] = { 0, 0 }, sh1[2] = { 1, 0 };
    contiguous_loop(&loop, BIG, 2, ext);
    check_copy("large, aligned", &loop, ext, sh0, MT_F32, MT_F32, -5, 5);   /* the 16-byte move */
    check_copy("large, aligned", &loop, ext, sh0, MT_U8, MT_U8, 0, 200);
    check_copy("large, unaligned", &loop, ext, sh1, MT_F64, MT_F64, -5, 5);
    check_copy("large, convert", &loop, ext, sh0, MT_F64, MT_I32, -1000, 1000);
    /* a transposed 1024 x 1025 matrix: strided, several passes of the grid */
    static const int perm[] = { 1, 0 };
    int64_t shape[2] = { 1024, 1025 };
    layout ls[2] = { { NULL, 0, 1 }, { perm, 0, 1 } };
    make_loop(&loop, 2, shape, 2, ls, ext);
    check_copy("large transpose", &loop, ext, sh0, MT_F32, MT_F32, -5, 5);
    check_copy("large transpose", &loop, ext, sh0, MT_I64, MT_F32, -5, 5);
    /* a 0-d loop: one element */
    memset(&loop, 0, sizeof loop);
    int64_t one[2] = { 1, 1 };
    check_copy("0-d", &loop, one, sh1, MT_I32, MT_F64, -5, 5);
    /* an empty loop writes nothing */
    int64_t zero = 0;
    layout flat[2] = { { NULL, 0, 1 }, { NULL, 0, 1 } };
    make_loop(&loop, 1, &zero, 2, flat, ext);
    check_copy("empty", &loop, one, sh0, MT_F32, MT_F32, -5, 5);
}

/* ---------------------------------------------------------------- fill and arange */
Test(cuda_elementwise, fill_every_dtype, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    const double values[] = { 2.75, -3.0, 0.0, 200.0 };
    const int64_t sizes[] = { 1, 3, 257, 4099, BIG };
    for (int a = 0; a < 6; a++)
        for (int s = 0; s < 5; s++)
            for (int shift = 0; shift < 3; shift++)
                for (int v = 0; v < 4; v++) {
                    mt_dtype t = ALL_DTYPES[a];
                    if (t == MT_U8 && values[v] < 0) continue;   /* (uint8_t)-3.0 is undefined in C */
                    if (sizes[s] == BIG && (shift == 2 || v > 1)) continue;
                    size_t sz = mt_dtype_size(t);
                    int64_t total = sizes[s] + shift + 1;   /* one guard element after */
                    unsigned char *hc = xmalloc((size_t)total * sz), *he = xmalloc((size_t)total * sz);
                    memset(hc, 0x5A, (size_t)total * sz);
                    void *d = dev_upload(hc, (size_t)total * sz);
                    KERNEL_OK(cpu_be()->fill(t, sizes[s], hc + shift * sz, values[v]));
                    KERNEL_OK(emu_be()->fill(t, sizes[s], (char *)d + shift * sz, values[v]));
                    expect_no_device_error("fill");
                    dev_download(he, d, (size_t)total * sz);
                    char msg[96];
                    snprintf(msg, sizeof msg, "fill %s n %lld shift %d value %g", dname(t), (long long)sizes[s], shift,
                             values[v]);
                    expect_same_bytes(msg, hc, he, total, sz);
                    emu_be()->free(d);
                    free(hc);
                    free(he);
                }
}

Test(cuda_elementwise, arange_every_dtype, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    const int64_t sizes[] = { 1, 3, 257, 4099, BIG };
    for (int a = 0; a < 6; a++)
        for (int s = 0; s < 5; s++) {
            mt_dtype t = ALL_DTYPES[a];
            int small = t == MT_U8 || t == MT_BOOL;
            if (small && sizes[s] == BIG) continue;
            /* steps that are not exact in binary, so a fused multiply-add would show */
            double start = small ? 0.0 : -3.3, step = small ? 0.05 : 0.1;
            size_t sz = mt_dtype_size(t);
            unsigned char *hc = xmalloc((size_t)sizes[s] * sz), *he = xmalloc((size_t)sizes[s] * sz);
            void *d = emu_be()->alloc((size_t)sizes[s] * sz);
            KERNEL_OK(cpu_be()->arange(t, sizes[s], start, step, hc));
            KERNEL_OK(emu_be()->arange(t, sizes[s], start, step, d));
            expect_no_device_error("arange");
            dev_download(he, d, (size_t)sizes[s] * sz);
            char msg[64];
            snprintf(msg, sizeof msg, "arange %s n %lld", dname(t), (long long)sizes[s]);
            expect_same_bytes(msg, hc, he, sizes[s], sz);
            emu_be()->free(d);
            free(hc);
            free(he);
        }
}

/* ---------------------------------------------------------------- unary */
typedef struct unary_setup {
    mt_unary_kind kind;
    const char *name;
    double lo, hi;
    double params[2];
} unary_setup;

static const unary_setup UNARY[] = {
    { MT_UNARY_NEG, "neg", -3, 3, { 0, 0 } },
    { MT_UNARY_EXP, "exp", -3, 3, { 0, 0 } },
    { MT_UNARY_LOG, "log", 0.1, 3, { 0, 0 } },
    { MT_UNARY_SQRT, "sqrt", 0.1, 3, { 0, 0 } },
    { MT_UNARY_ABS, "abs", -3, 3, { 0, 0 } },
    { MT_UNARY_SIGN, "sign", -3, 3, { 0, 0 } },
    { MT_UNARY_POW_SCALAR, "pow", 0.1, 3, { 2.5, 0 } },
    { MT_UNARY_POW_SCALAR, "pow 0", 0.1, 3, { 0, 0 } },
    { MT_UNARY_CLAMP, "clamp", -3, 3, { -0.5, 0.75 } },
    { MT_UNARY_CLAMP, "clamp lo", -3, 3, { -0.5, NAN } },
    { MT_UNARY_CLAMP, "clamp hi", -3, 3, { NAN, 0.75 } },
    { MT_UNARY_SIGMOID, "sigmoid", -3, 3, { 0, 0 } },
    { MT_UNARY_TANH, "tanh", -3, 3, { 0, 0 } },
    { MT_UNARY_RELU, "relu", -3, 3, { 0, 0 } },
    { MT_UNARY_LEAKY_RELU, "leaky_relu", -3, 3, { 0.01, 0 } },
    { MT_UNARY_ELU, "elu", -3, 3, { 1.3, 0 } },
    { MT_UNARY_GELU_ERF, "gelu_erf", -3, 3, { 0, 0 } },
    { MT_UNARY_GELU_TANH, "gelu_tanh", -3, 3, { 0, 0 } },
    { MT_UNARY_SILU, "silu", -3, 3, { 1.5, 0 } },
    { MT_UNARY_SOFTPLUS, "softplus", -3, 3, { 2.0, 3.0 } },
    { MT_UNARY_SCALE, "scale", -3, 3, { 2.5, -1.0 } },
};
#define N_UNARY ((int)(sizeof UNARY / sizeof UNARY[0]))

/* Forward and backward of one unary kind on n elements, the arrays shifted by
   `shift` elements from their (aligned) allocations. Checks y and dx, and that
   the guard elements before and after are untouched. */
static void check_unary(const unary_setup *u, mt_dtype t, int64_t n, int shift)
{
    size_t sz = mt_dtype_size(t), bytes = (size_t)(n + shift + 1) * sz;
    unsigned char *x = xmalloc(bytes), *dy = xmalloc(bytes), *yc = xmalloc(bytes), *dxc = xmalloc(bytes);
    unsigned char *ye = xmalloc(bytes), *dxe = xmalloc(bytes);
    fill_values(t, x, n + shift + 1, u->lo, u->hi);
    fill_values(t, dy, n + shift + 1, -1, 1);
    if (n > 2) {   /* NaN and infinities propagate alike */
        if (t == MT_F32) ((float *)x)[shift + 2] = NAN;
        else ((double *)x)[shift + 2] = NAN;
    }
    memset(yc, 0x7F, bytes);
    memset(dxc, 0x7F, bytes);
    void *dx_ = dev_upload(x, bytes), *ddy = dev_upload(dy, bytes), *dyo = dev_upload(yc, bytes), *ddx = dev_upload(dxc, bytes);
    KERNEL_OK(cpu_be()->unary(u->kind, t, n, x + shift * sz, yc + shift * sz, u->params));
    KERNEL_OK(emu_be()->unary(u->kind, t, n, (char *)dx_ + shift * sz, (char *)dyo + shift * sz, u->params));
    expect_no_device_error("unary");
    /* the backward reads the CPU's y on both sides, so that only dx is compared */
    emu_be()->from_host(dyo, yc, bytes);
    KERNEL_OK(cpu_be()->unary_backward(u->kind, t, n, x + shift * sz, yc + shift * sz, dy + shift * sz, dxc + shift * sz,
                             u->params));
    KERNEL_OK(emu_be()->unary_backward(u->kind, t, n, (char *)dx_ + shift * sz, (char *)dyo + shift * sz,
                             (char *)ddy + shift * sz, (char *)ddx + shift * sz, u->params));
    expect_no_device_error("unary_backward");
    KERNEL_OK(emu_be()->unary(u->kind, t, n, (char *)dx_ + shift * sz, (char *)dyo + shift * sz, u->params));
    dev_download(ye, dyo, bytes);
    dev_download(dxe, ddx, bytes);
    char msg[96];
    snprintf(msg, sizeof msg, "unary %s %s n %lld shift %d", u->name, dname(t), (long long)n, shift);
    expect_close(msg, t, yc + shift * sz, ye + shift * sz, n);
    expect_same_bytes(msg, yc, ye, shift, sz);                                   /* guards */
    expect_same_bytes(msg, yc + (n + shift) * sz, ye + (n + shift) * sz, 1, sz);
    snprintf(msg, sizeof msg, "unary_backward %s %s n %lld shift %d", u->name, dname(t), (long long)n, shift);
    expect_close(msg, t, dxc + shift * sz, dxe + shift * sz, n);
    expect_same_bytes(msg, dxc, dxe, shift, sz);
    expect_same_bytes(msg, dxc + (n + shift) * sz, dxe + (n + shift) * sz, 1, sz);
    emu_be()->free(dx_);
    emu_be()->free(ddy);
    emu_be()->free(dyo);
    emu_be()->free(ddx);
    free(x); free(dy); free(yc); free(dxc); free(ye); free(dxe);
}

Test(cuda_elementwise, unary_every_kind, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(5);
    for (int k = 0; k < N_UNARY; k++)
        for (int p = 0; p < 2; p++)
            for (int s = 0; s < N_SIZES; s++)
                for (int shift = 0; shift < 2; shift++) check_unary(&UNARY[k], p ? MT_F64 : MT_F32, SIZES[s], shift);
}

Test(cuda_elementwise, unary_large, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(6);
    const int kinds[] = { 1, 17, 20 };   /* exp, gelu_tanh, scale */
    for (int k = 0; k < 3; k++)
        for (int p = 0; p < 2; p++) {
            check_unary(&UNARY[kinds[k]], p ? MT_F64 : MT_F32, BIG, 0);   /* vectors, grid-stride, tail */
            check_unary(&UNARY[kinds[k]], p ? MT_F64 : MT_F32, BIG, 1);   /* scalar grid-stride */
        }
}

/* ---------------------------------------------------------------- binary */
static const char *BINARY_NAMES[] = { "add", "sub", "mul", "div", "pow", "max", "min",
                                      "eq", "ne", "lt", "le", "gt", "ge" };

/* out = a (kind) b over loop on both backends; a and b hold values of their
   dtype in [lo, hi] ([1, 5] for b of an integer division or power). */
static void check_binary(const char *what, mt_binary_kind kind, mt_dtype t, const mt_loop *loop, const int64_t *extent,
                         const int64_t *sh)
{
    mt_dtype ot = mt_binary_is_comparison(kind) ? MT_BOOL : t;
    size_t sz = mt_dtype_size(t), osz = mt_dtype_size(ot);
    int64_t on = sh[0] + extent[0], an = sh[1] + extent[1], bn = sh[2] + extent[2];
    unsigned char *a = xmalloc((size_t)an * sz), *b = xmalloc((size_t)bn * sz);
    unsigned char *oc = xmalloc((size_t)on * osz), *oe = xmalloc((size_t)on * osz);
    int integer = !mt_dtype_is_float(t);
    double lo = integer ? (t == MT_U8 || t == MT_BOOL ? 0 : -20) : -3, hi = integer ? 20 : 3;
    fill_values(t, a, an, lo, hi);
    if (integer && (kind == MT_BINARY_DIV || kind == MT_BINARY_POW)) fill_values(t, b, bn, 1, 5.99);
    else if (kind == MT_BINARY_POW) fill_values(t, b, bn, -2, 2);
    else fill_values(t, b, bn, lo, hi);
    if (t == MT_BOOL && kind == MT_BINARY_DIV) memset(b, 1, (size_t)bn);   /* no division by zero */
    if (!integer && an > 3) {   /* NaN against numbers, for max/min and the comparisons */
        if (t == MT_F32) ((float *)a)[an / 2] = NAN;
        else ((double *)a)[an / 2] = NAN;
    }
    memset(oc, 0x3C, (size_t)on * osz);
    void *da = dev_upload(a, (size_t)an * sz), *db = dev_upload(b, (size_t)bn * sz), *dout = dev_upload(oc, (size_t)on * osz);
    KERNEL_OK(cpu_be()->binary(kind, t, loop, oc + sh[0] * osz, a + sh[1] * sz, b + sh[2] * sz));
    KERNEL_OK(emu_be()->binary(kind, t, loop, (char *)dout + sh[0] * osz, (char *)da + sh[1] * sz, (char *)db + sh[2] * sz));
    expect_no_device_error("binary");
    dev_download(oe, dout, (size_t)on * osz);
    char msg[128];
    snprintf(msg, sizeof msg, "binary %s %s (%s)", BINARY_NAMES[kind], dname(t), what);
    expect_same_bytes(msg, oc, oe, on, osz);
    emu_be()->free(da);
    emu_be()->free(db);
    emu_be()->free(dout);
    free(a); free(b); free(oc); free(oe);
}

Test(cuda_elementwise, binary_contiguous_every_kind_and_dtype, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(7);
    const int64_t shifts[][3] = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 3, 1 } };
    for (int k = 0; k < MT_BINARY_KIND_COUNT; k++)
        for (int a = 0; a < 6; a++)
            for (int s = 0; s < N_SIZES; s++)
                for (int h = 0; h < 3; h++) {
                    mt_loop loop;
                    int64_t ext[3];
                    contiguous_loop(&loop, SIZES[s], 3, ext);
                    char what[64];
                    snprintf(what, sizeof what, "contiguous n %lld, shifts %d", (long long)SIZES[s], h);
                    check_binary(what, (mt_binary_kind)k, ALL_DTYPES[a], &loop, ext, shifts[h]);
                }
}

Test(cuda_elementwise, binary_scalar_operand, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(8);
    for (int k = 0; k < MT_BINARY_KIND_COUNT; k++)
        for (int a = 0; a < 6; a++)
            for (int which = 1; which <= 2; which++)
                for (int s = 2; s < N_SIZES; s++) {
                    int64_t n = SIZES[s];
                    layout ls[3] = { { NULL, 0, 1 }, { NULL, which == 1 ? 1u : 0u, 1 }, { NULL, which == 2 ? 1u : 0u, 1 } };
                    mt_loop loop;
                    int64_t ext[3], sh[3] = { 0, 0, 0 };
                    make_loop(&loop, 1, &n, 3, ls, ext);
                    char what[64];
                    snprintf(what, sizeof what, "operand %d a single value, n %lld", which, (long long)n);
                    check_binary(what, (mt_binary_kind)k, ALL_DTYPES[a], &loop, ext, sh);
                }
}

Test(cuda_elementwise, binary_strided_broadcast, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(9);
    static const int perm3[] = { 1, 2, 0 }, perm4[] = { 2, 3, 0, 1 }, perm5[] = { 0, 4, 1, 3, 2 };
    struct { int ndim; int64_t shape[5]; layout out, a, b; } cases[] = {
        { 3, { 6, 5, 7 }, { NULL, 0, 1 }, { perm3, 0, 1 }, { NULL, 0x2, 1 } },           /* [6,5,7] = a^T + b[6,1,7] */
        { 4, { 3, 4, 5, 6 }, { NULL, 0, 1 }, { NULL, 0x9, 1 }, { perm4, 0, 2 } },        /* a[1,4,5,1], b permuted, stepped */
        { 5, { 2, 3, 4, 5, 3 }, { perm5, 0, 1 }, { NULL, 0x15, 1 }, { NULL, 0xA, 1 } },  /* out permuted, both broadcast */
        { 4, { 9, 1, 17, 5 }, { NULL, 0, 2 }, { NULL, 0, 1 }, { NULL, 0x8, 1 } },        /* size-1 dim, out with gaps */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int k = 0; k < MT_BINARY_KIND_COUNT; k++)
            for (int a = 0; a < 6; a++) {
                mt_loop loop;
                layout ls[3] = { cases[c].out, cases[c].a, cases[c].b };
                int64_t ext[3], sh[3] = { 1, 0, 1 };
                make_loop(&loop, cases[c].ndim, cases[c].shape, 3, ls, ext);
                char what[64];
                snprintf(what, sizeof what, "strided case %zu", c);
                check_binary(what, (mt_binary_kind)k, ALL_DTYPES[a], &loop, ext, sh);
            }
}

Test(cuda_elementwise, binary_large, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(10);
    const mt_dtype types[] = { MT_F32, MT_F64, MT_I32, MT_I64, MT_U8 };
    const mt_binary_kind kinds[] = { MT_BINARY_ADD, MT_BINARY_MUL, MT_BINARY_LT };
    for (int a = 0; a < 5; a++)
        for (int k = 0; k < 3; k++) {
            mt_loop loop;
            int64_t n = BIG, ext[3], sh0[3] = { 0, 0, 0 }, sh1[3] = { 0, 1, 0 };
            contiguous_loop(&loop, n, 3, ext);
            check_binary("large contiguous", kinds[k], types[a], &loop, ext, sh0);
            if (k == 0) check_binary("large contiguous, a unaligned", kinds[k], types[a], &loop, ext, sh1);
            layout ls[3] = { { NULL, 0, 1 }, { NULL, 0, 1 }, { NULL, 1, 1 } };
            make_loop(&loop, 1, &n, 3, ls, ext);
            if (k == 1) check_binary("large, b a single value", kinds[k], types[a], &loop, ext, sh0);
        }
    /* strided and broadcast, past the grid: [1029, 1027] + [1029, 1] */
    static const int perm[] = { 1, 0 };
    int64_t shape[2] = { 1029, 1027 }, ext[3], sh[3] = { 0, 0, 0 };
    layout ls[3] = { { NULL, 0, 1 }, { perm, 0, 1 }, { NULL, 2, 1 } };
    mt_loop loop;
    make_loop(&loop, 2, shape, 3, ls, ext);
    check_binary("large strided", MT_BINARY_SUB, MT_F32, &loop, ext, sh);
    check_binary("large strided", MT_BINARY_GE, MT_I64, &loop, ext, sh);
}

/* ---------------------------------------------------------------- where */
static void check_where(const char *what, mt_dtype t, const mt_loop *loop, const int64_t *extent, const int64_t *sh)
{
    size_t sz = mt_dtype_size(t);
    int64_t on = sh[0] + extent[0], cn = sh[1] + extent[1], an = sh[2] + extent[2], bn = sh[3] + extent[3];
    unsigned char *c = xmalloc((size_t)cn), *a = xmalloc((size_t)an * sz), *b = xmalloc((size_t)bn * sz);
    unsigned char *oc = xmalloc((size_t)on * sz), *oe = xmalloc((size_t)on * sz);
    fill_values(MT_BOOL, c, cn, 0, 1);
    fill_values(t, a, an, -50, 50);
    fill_values(t, b, bn, -50, 50);
    memset(oc, 0x66, (size_t)on * sz);
    void *dc = dev_upload(c, (size_t)cn), *da = dev_upload(a, (size_t)an * sz), *db = dev_upload(b, (size_t)bn * sz);
    void *dout = dev_upload(oc, (size_t)on * sz);
    KERNEL_OK(cpu_be()->where(t, loop, oc + sh[0] * sz, c + sh[1], a + sh[2] * sz, b + sh[3] * sz));
    KERNEL_OK(emu_be()->where(t, loop, (char *)dout + sh[0] * sz, (char *)dc + sh[1], (char *)da + sh[2] * sz,
                    (char *)db + sh[3] * sz));
    expect_no_device_error("where");
    dev_download(oe, dout, (size_t)on * sz);
    char msg[96];
    snprintf(msg, sizeof msg, "where %s (%s)", dname(t), what);
    expect_same_bytes(msg, oc, oe, on, sz);
    emu_be()->free(dc); emu_be()->free(da); emu_be()->free(db); emu_be()->free(dout);
    free(c); free(a); free(b); free(oc); free(oe);
}

Test(cuda_elementwise, where_layouts, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    rng_seed(11);
    static const int perm3[] = { 2, 1, 0 }, perm4[] = { 1, 3, 0, 2 };
    struct { int ndim; int64_t shape[5]; layout out, c, a, b; } cases[] = {
        { 1, { 4099 }, { NULL, 0, 1 }, { NULL, 0, 1 }, { NULL, 0, 1 }, { NULL, 0, 1 } },
        { 1, { 3 }, { NULL, 0, 1 }, { NULL, 0, 1 }, { NULL, 1, 1 }, { NULL, 0, 1 } },
        { 3, { 7, 6, 5 }, { NULL, 0, 1 }, { NULL, 0x1, 1 }, { perm3, 0, 1 }, { NULL, 0x4, 2 } },
        { 4, { 3, 5, 4, 6 }, { perm4, 0, 1 }, { NULL, 0xA, 1 }, { NULL, 0, 1 }, { NULL, 0x5, 1 } },
        { 5, { 2, 3, 2, 5, 7 }, { NULL, 0, 1 }, { NULL, 0x10, 1 }, { NULL, 0x1, 1 }, { NULL, 0, 3 } },
    };
    const mt_dtype types[] = { MT_F32, MT_F64, MT_I32, MT_I64, MT_U8, MT_BOOL };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int a = 0; a < 6; a++)
            for (int shift = 0; shift < 2; shift++) {
                mt_loop loop;
                layout ls[4] = { cases[k].out, cases[k].c, cases[k].a, cases[k].b };
                int64_t ext[4], sh[4] = { shift, shift, 0, shift };
                make_loop(&loop, cases[k].ndim, cases[k].shape, 4, ls, ext);
                char what[64];
                snprintf(what, sizeof what, "case %zu, shift %d", k, shift);
                check_where(what, types[a], &loop, ext, sh);
            }
    mt_loop loop;
    int64_t ext[4], sh[4] = { 0, 0, 0, 0 };
    contiguous_loop(&loop, BIG, 4, ext);
    check_where("large", MT_F32, &loop, ext, sh);
}

/* ---------------------------------------------------------------- random */
static void check_random(mt_random_kind kind, mt_dtype t, int64_t n, uint64_t seed, uint64_t offset, double p0,
                         double p1, int shift)
{
    size_t sz = mt_dtype_size(t), bytes = (size_t)(n + shift) * sz;
    unsigned char *hc = xmalloc(bytes), *he = xmalloc(bytes);
    memset(hc, 0x11, bytes);
    void *d = dev_upload(hc, bytes);
    KERNEL_OK(cpu_be()->random(kind, t, n, seed, offset, p0, p1, hc + shift * sz));
    KERNEL_OK(emu_be()->random(kind, t, n, seed, offset, p0, p1, (char *)d + shift * sz));
    expect_no_device_error("random");
    dev_download(he, d, bytes);
    static const char *kinds[] = { "uniform", "normal", "bernoulli" };
    char msg[128];
    snprintf(msg, sizeof msg, "random %s %s n %lld offset %llu seed %llx", kinds[kind], dname(t), (long long)n,
             (unsigned long long)offset, (unsigned long long)seed);
    expect_same_bytes(msg, hc, he, n + shift, sz);
    emu_be()->free(d);
    free(hc);
    free(he);
}

Test(cuda_elementwise, random_bitwise_every_kind_and_dtype, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    const struct { uint64_t offset; int64_t n; } draws[] = {
        { 0, 1 }, { 1, 1 }, { 0, 2 }, { 1, 2 }, { 3, 7 }, { 2, 8 }, { 5, 257 }, { 0, 4099 }, { 7, 4099 },
        { 12345678901ull, 1001 }, { (1ull << 33) - 1, 3 },
    };
    const uint64_t seeds[] = { 0, 42, 0x0123456789ABCDEFull };
    for (int a = 0; a < 6; a++)
        for (int kind = 0; kind < 3; kind++)
            for (size_t w = 0; w < sizeof draws / sizeof draws[0]; w++)
                for (int s = 0; s < 3; s++) {
                    mt_dtype t = ALL_DTYPES[a];
                    double p0, p1;
                    if (t == MT_U8) { p0 = 0; p1 = 200; }
                    else if (t == MT_BOOL) { p0 = 0; p1 = 2; }
                    else if (!mt_dtype_is_float(t)) { p0 = -5; p1 = 17; }
                    else if (kind == MT_RANDOM_UNIFORM) { p0 = -2; p1 = 3; }
                    else if (kind == MT_RANDOM_NORMAL) { p0 = 0.5; p1 = 2; }
                    else { p0 = 0.3; p1 = 2.5; }
                    check_random((mt_random_kind)kind, t, draws[w].n, seeds[s], draws[w].offset, p0, p1, (int)(w % 2));
                }
    /* bernoulli's edges: p = 0, 1 */
    check_random(MT_RANDOM_BERNOULLI, MT_F32, 257, 9, 3, 0.0, 1.0, 0);
    check_random(MT_RANDOM_BERNOULLI, MT_F64, 257, 9, 3, 1.0, 1.0, 0);
}

Test(cuda_elementwise, random_large_and_split, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    check_random(MT_RANDOM_UNIFORM, MT_F32, BIG, 7, 1, -1, 1, 0);   /* past the grid, odd offset and n */
    check_random(MT_RANDOM_NORMAL, MT_F64, BIG, 7, 0, 0, 1, 1);
    /* one draw equals the same draw in pieces of odd sizes and offsets */
    const int64_t n = 4099, cuts[] = { 0, 1, 4, 11, 2048, 2049, n };
    size_t bytes = (size_t)n * sizeof(float);
    void *whole = emu_be()->alloc(bytes), *parts = emu_be()->alloc(bytes);
    KERNEL_OK(emu_be()->random(MT_RANDOM_NORMAL, MT_F32, n, 99, 5, 0, 1, whole));
    for (int c = 0; c + 1 < 7; c++)
        KERNEL_OK(emu_be()->random(MT_RANDOM_NORMAL, MT_F32, cuts[c + 1] - cuts[c], 99, 5 + (uint64_t)cuts[c], 0, 1,
                         (float *)parts + cuts[c]));
    expect_no_device_error("random in pieces");
    float *hw = xmalloc(bytes), *hp = xmalloc(bytes);
    dev_download(hw, whole, bytes);
    dev_download(hp, parts, bytes);
    expect_same_bytes("random in pieces", hw, hp, n, sizeof(float));
    emu_be()->free(whole);
    emu_be()->free(parts);
    free(hw);
    free(hp);
}

/* ---------------------------------------------------------------- shuffled mode */
Test(cuda_elementwise, shuffled_thread_order, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    for (uint64_t seed = 3; seed <= 4; seed++) {
        mt_emu_set_shuffle(1, seed);
        rng_seed(seed);
        static const int perm[] = { 2, 0, 1 };
        int64_t shape[3] = { 9, 13, 35 }, ext[4], sh[4] = { 1, 0, 1, 0 };
        layout ls[4] = { { NULL, 0, 1 }, { perm, 0, 1 }, { NULL, 0x2, 1 }, { NULL, 0, 2 } };
        mt_loop loop;
        make_loop(&loop, 3, shape, 2, ls, ext);
        check_copy("shuffled", &loop, ext, sh, MT_F64, MT_I32, -100, 100);
        make_loop(&loop, 3, shape, 3, ls, ext);
        check_binary("shuffled", MT_BINARY_MUL, MT_F32, &loop, ext, sh);
        make_loop(&loop, 3, shape, 4, ls, ext);
        check_where("shuffled", MT_F64, &loop, ext, sh);
        check_unary(&UNARY[17], MT_F32, 4099, 0);
        check_unary(&UNARY[8], MT_F64, 4099, 1);
        check_random(MT_RANDOM_NORMAL, MT_F32, 4099, 5, 3, 0, 1, 1);
        check_random(MT_RANDOM_UNIFORM, MT_I64, 257, 5, 0, -9, 9, 0);
    }
    mt_emu_set_shuffle(0, 0);
}

/* ---------------------------------------------------------------- through the engine */
/* Tensors moved to cuda-emu with mt_to_device: views made contiguous there,
   broadcasting ops, conversions and random fills agree with the CPU. */
Test(cuda_elementwise, engine_ops_on_cuda_emu, .init = mt_test_setup, .fini = mt_test_teardown)
{
    emu_be();
    mt_device emu = { MT_DEVICE_CUDA_EMU, 0 };
    rng_seed(12);
    int64_t shape[4] = { 3, 4, 5, 6 };
    double *data = xmalloc(360 * sizeof(double));
    fill_values(MT_F64, data, 360, -2, 2);
    mt_tensor *x = mt_from_data(MT_F64, 4, shape, data);
    cr_assert(x != NULL, "%s", mt_last_error());
    mt_tensor *xd = mt_to_device(x, emu);
    cr_assert(xd != NULL, "%s", mt_last_error());
    const int perm[4] = { 2, 0, 3, 1 };
    mt_tensor *outs_cpu[4], *outs_emu[4];
    for (int dev = 0; dev < 2; dev++) {
        mt_tensor *t = dev ? xd : x;
        mt_tensor *p = mt_permute(t, perm);
        mt_tensor *s = mt_slice(p, 3, 1, 4, 2);                       /* [5, 3, 6, 2], strided */
        mt_tensor **o = dev ? outs_emu : outs_cpu;
        o[0] = mt_contiguous(s);
        o[1] = mt_mul(mt_gelu(s, MT_GELU_TANH), mt_slice(s, 0, 2, 3, 1));   /* broadcast [5,3,6,2] * [1,3,6,2] */
        o[2] = mt_to_dtype(p, MT_I32);
        o[3] = mt_where(mt_lt(p, mt_exp(p)), p, mt_neg(p));
    }
    for (int k = 0; k < 4; k++) {
        cr_assert(outs_cpu[k] && outs_emu[k], "output %d: %s", k, mt_last_error());
        int64_t n = mt_numel(outs_cpu[k]);
        double *c = xmalloc((size_t)n * sizeof(double)), *e = xmalloc((size_t)n * sizeof(double));
        cr_assert_eq(mt_to_data(outs_cpu[k], MT_F64, c), MT_OK, "%s", mt_last_error());
        cr_assert_eq(mt_to_data(outs_emu[k], MT_F64, e), MT_OK, "%s", mt_last_error());
        char msg[32];
        snprintf(msg, sizeof msg, "engine output %d", k);
        expect_close(msg, MT_F64, c, e, n);
        free(c);
        free(e);
    }
    mt_clear_error();
    /* a random fill of a non-contiguous device tensor: bitwise the CPU's */
    mt_generator g1 = mt_generator_new(77), g2 = mt_generator_new(77);
    mt_tensor *rc = mt_transpose(mt_zeros(MT_F32, 2, (int64_t[]){ 33, 17 }), 0, 1);
    mt_tensor *re = mt_transpose(mt_to_device(mt_zeros(MT_F32, 2, (int64_t[]){ 33, 17 }), emu), 0, 1);
    cr_assert(rc && re, "%s", mt_last_error());
    cr_assert_eq(mt_uniform_(rc, &g1, -1, 1), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_uniform_(re, &g2, -1, 1), MT_OK, "%s", mt_last_error());
    float hc[561], he[561];
    cr_assert_eq(mt_to_data(rc, MT_F32, hc), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_to_data(re, MT_F32, he), MT_OK, "%s", mt_last_error());
    expect_same_bytes("engine random fill", hc, he, 561, sizeof(float));
    free(data);
}
