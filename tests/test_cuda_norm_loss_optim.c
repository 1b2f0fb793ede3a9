/*
 * test_cuda_norm_loss_optim.c - the CUDA kernels of kernels/cuda/norm.cu,
 * loss.cu and optim.cu, run by the SIMT emulator (the cuda-emu backend),
 * against the CPU kernels on the same inputs:
 *
 *   - batch norm forward/backward on edge shapes: c = 1, 3, 64, 1000; n * l
 *     = 2, 33, 5000; l = 1 (the 2-d "rows" mapping) and l > 1 (one block per
 *     channel); training and eval; NULL weight/bias/running statistics; each
 *     gradient output NULL; and in the emulator's shuffled mode;
 *   - group norm (and layer norm, its one-group case) forward/backward on
 *     rows a warp takes and rows a block takes, several chunks of the weight
 *     sums, groups = 1, = c and in between, NULL weight/bias and gradients,
 *     degenerate shapes, shuffled threads and bitwise repeatability;
 *   - nll forward/backward with class weights, ignore_index and out-of-range
 *     targets (backward must write every element of dlogp);
 *   - several SGD (momentum, dampening, nesterov, weight decay) and Adam /
 *     AdamW / AMSGrad steps in a row, n not a multiple of 4, and unaligned
 *     views (the scalar path);
 *   - an MLP (Linear, BatchNorm1d, GELU, Linear) trained with Adam and
 *     cross-entropy on the two spirals, on cpu and on cuda-emu: the same
 *     losses, step by step.
 *
 * Tolerances: f32 1e-5 and f64 1e-10 (relative, floor 1) for batch and group norm,
 * exact for nll, 1e-6 / 1e-12 relative for the optimizers.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/runtime.h"
#include "kernels/cuda/simt_emu.h"
#include "models/spirals/spirals.h"

/* ---------------------------------------------------------------- helpers */
static const mt_backend *emu(void)
{
    const mt_backend *be = mt_backend_for(MT_DEVICE_CUDA_EMU);
    cr_assert_not_null(be, "the cuda-emu backend is not built in");
    return be;
}

static size_t esize(mt_dtype dt) { return dt == MT_F32 ? sizeof(float) : sizeof(double); }

/* A host buffer of n elements of dt from doubles (NULL in, NULL out). */
static void *host_from(mt_dtype dt, const double *v, int64_t n)
{
    if (!v) return NULL;
    void *h = malloc((size_t)(n ? n : 1) * esize(dt));
    cr_assert_not_null(h);
    for (int64_t i = 0; i < n; i++) {
        if (dt == MT_F32) ((float *)h)[i] = (float)v[i];
        else ((double *)h)[i] = v[i];
    }
    return h;
}

static double host_at(mt_dtype dt, const void *h, int64_t i)
{
    return dt == MT_F32 ? ((const float *)h)[i] : ((const double *)h)[i];
}

/* Device copy of a host buffer of nbytes (NULL in, NULL out). */
static void *dev_from(const void *h, size_t nbytes)
{
    if (!h) return NULL;
    void *d = emu()->alloc(nbytes ? nbytes : 1);
    cr_assert_not_null(d);
    emu()->from_host(d, h, nbytes);
    return d;
}

/* Device buffer of nbytes filled with NaN bytes (0xFF), so that an element a
   kernel forgets to write shows. */
static void *dev_garbage(size_t nbytes)
{
    void *d = emu()->alloc(nbytes ? nbytes : 1);
    cr_assert_not_null(d);
    cr_assert_eq(mt_emu_memset(d, 0xFF, nbytes ? nbytes : 1), 0);
    return d;
}

static void *host_garbage(size_t nbytes)
{
    void *h = malloc(nbytes ? nbytes : 1);
    cr_assert_not_null(h);
    memset(h, 0xFF, nbytes ? nbytes : 1);
    return h;
}

static void dev_free(void *d) { if (d) emu()->free(d); }

static void no_device_error(const char *what)
{
    cr_assert(mt_device_error_check() == MT_OK, "%s: %s", what, mt_last_error());
}

/* Compares n elements: |dev - cpu| <= tol * max(|cpu|, floor). */
static void compare(const char *what, mt_dtype dt, const void *cpu, const void *dev_ptr, int64_t n, double tol,
                    double floor)
{
    if (!cpu) return;
    void *h = malloc((size_t)(n ? n : 1) * esize(dt));
    cr_assert_not_null(h);
    emu()->to_host(h, dev_ptr, (size_t)n * esize(dt));
    no_device_error(what);
    for (int64_t i = 0; i < n; i++) {
        double a = host_at(dt, cpu, i), b = host_at(dt, h, i);
        double err = fabs(a - b), lim = tol * fmax(fabs(a), floor);
        if (!(err <= lim) && !(isnan(a) && isnan(b))) {
            free(h);
            cr_assert_fail("%s (%s): element %lld: cpu %.17g, cuda-emu %.17g (error %.3g > %.3g)", what,
                           dt == MT_F32 ? "f32" : "f64", (long long)i, a, b, err, lim);
        }
    }
    free(h);
}

/* Deterministic uniform values in [lo, hi). */
static uint64_t rng_state;
static double urand(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static double *rand_array(int64_t n, double lo, double hi)
{
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    cr_assert_not_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = urand(lo, hi);
    return v;
}

/* ---------------------------------------------------------------- the table */

static uint64_t launches(void)
{
    mt_emu_stats st;
    mt_emu_get_stats(&st);
    return st.launches;
}

/* Each of the six entries of the cuda-emu table is an emulated kernel (one
   launch each), not a CPU stand-in. */
Test(cuda_nlo, entries_launch_emulated_kernels, .init = mt_test_setup, .fini = mt_test_teardown)
{
    float h[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int64_t t[2] = { 0, 1 };
    void *a = dev_from(h, sizeof h), *b = dev_from(h, sizeof h), *c = dev_from(h, sizeof h);
    void *d = dev_from(h, sizeof h), *e = dev_from(h, sizeof h), *ti = dev_from(t, sizeof t);
    const mt_backend *be = emu();
    uint64_t before = launches();
    KERNEL_OK(be->batch_norm_forward(MT_F32, 2, 2, 2, a, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, b, c, d));
    cr_assert_eq(launches(), before + 1, "batch_norm_forward launched no kernel");
    KERNEL_OK(be->batch_norm_backward(MT_F32, 2, 2, 2, a, a, NULL, c, d, true, e, NULL, NULL));
    cr_assert_eq(launches(), before + 2, "batch_norm_backward launched no kernel");
    KERNEL_OK(be->nll_forward(MT_F32, 2, 4, a, ti, NULL, -100, b));
    cr_assert_eq(launches(), before + 3, "nll_forward launched no kernel");
    KERNEL_OK(be->nll_backward(MT_F32, 2, 4, ti, NULL, -100, a, b));
    cr_assert_eq(launches(), before + 4, "nll_backward launched no kernel");
    KERNEL_OK(be->sgd_step(MT_F32, 8, a, b, NULL, 0.1, 0, 0, 0, false, true));
    cr_assert_eq(launches(), before + 5, "sgd_step launched no kernel");
    KERNEL_OK(be->adam_step(MT_F32, 8, a, b, c, d, NULL, 0.1, 0.9, 0.999, 1e-8, 0, false, false, 1));
    cr_assert_eq(launches(), before + 6, "adam_step launched no kernel");
    no_device_error("entries");
    dev_free(a); dev_free(b); dev_free(c); dev_free(d); dev_free(e); dev_free(ti);
}

/* ---------------------------------------------------------------- batch norm */
enum {
    BN_WEIGHT = 1, BN_BIAS = 2, BN_RUNNING = 4, BN_TRAINING = 8,
    BN_DX = 16, BN_DW = 32, BN_DB = 64,
    BN_ALL = BN_WEIGHT | BN_BIAS | BN_RUNNING | BN_TRAINING | BN_DX | BN_DW | BN_DB,
};

/* Forward then backward on both backends, comparing every output. */
static void bn_case(mt_dtype dt, int64_t n, int64_t c, int64_t l, int flags)
{
    char what[160];
    snprintf(what, sizeof what, "batch_norm n=%lld c=%lld l=%lld flags=0x%x", (long long)n, (long long)c,
             (long long)l, flags);
    double tol = dt == MT_F32 ? 1e-5 : 1e-10;
    int64_t total = n * c * l;
    size_t es = esize(dt), tb = (size_t)total * es, cb = (size_t)c * es;
    bool training = flags & BN_TRAINING;

    rng_state = (uint64_t)(n * 1000003 + c * 101 + l + flags);
    double *xv = rand_array(total, -1, 5), *dyv = rand_array(total, -2, 2);
    double *wv = flags & BN_WEIGHT ? rand_array(c, 0.5, 1.5) : NULL;
    double *bv = flags & BN_BIAS ? rand_array(c, -1, 1) : NULL;
    double *rmv = flags & BN_RUNNING ? rand_array(c, -0.5, 0.5) : NULL;
    double *rvv = flags & BN_RUNNING ? rand_array(c, 0.5, 2) : NULL;

    /* host (CPU) side */
    void *x = host_from(dt, xv, total), *dy = host_from(dt, dyv, total);
    void *w = host_from(dt, wv, c), *b = host_from(dt, bv, c);
    void *rm = host_from(dt, rmv, c), *rv = host_from(dt, rvv, c);
    void *y = host_garbage(tb), *sm = host_garbage(cb), *si = host_garbage(cb);
    void *dx = flags & BN_DX ? host_garbage(tb) : NULL;
    void *dw = flags & BN_DW ? host_garbage(cb) : NULL, *db = flags & BN_DB ? host_garbage(cb) : NULL;

    /* device side, with the same inputs */
    void *d_x = dev_from(x, tb), *d_dy = dev_from(dy, tb), *d_w = dev_from(w, cb), *d_b = dev_from(b, cb);
    void *d_rm = dev_from(rm, cb), *d_rv = dev_from(rv, cb);
    void *d_y = dev_garbage(tb), *d_sm = dev_garbage(cb), *d_si = dev_garbage(cb);
    void *d_dx = dx ? dev_garbage(tb) : NULL, *d_dw = dw ? dev_garbage(cb) : NULL, *d_db = db ? dev_garbage(cb) : NULL;

    KERNEL_OK(mt_cpu_backend.batch_norm_forward(dt, n, c, l, x, w, b, rm, rv, training, 0.1, 1e-5, y, sm, si));
    KERNEL_OK(emu()->batch_norm_forward(dt, n, c, l, d_x, d_w, d_b, d_rm, d_rv, training, 0.1, 1e-5, d_y, d_sm, d_si));
    no_device_error(what);
    compare(what, dt, sm, d_sm, c, tol, 1);
    compare(what, dt, si, d_si, c, tol, 1);
    compare(what, dt, rm, d_rm, c, tol, 1);
    compare(what, dt, rv, d_rv, c, tol, 1);
    compare(what, dt, y, d_y, total, tol, 1);

    if (flags & (BN_DX | BN_DW | BN_DB)) {
        /* the backward runs on the CPU's saved statistics on both sides, so
           that it is compared on identical inputs */
        emu()->from_host(d_sm, sm, cb);
        emu()->from_host(d_si, si, cb);
        KERNEL_OK(mt_cpu_backend.batch_norm_backward(dt, n, c, l, x, dy, w, sm, si, training, dx, dw, db));
        KERNEL_OK(emu()->batch_norm_backward(dt, n, c, l, d_x, d_dy, d_w, d_sm, d_si, training, d_dx, d_dw, d_db));
        no_device_error(what);
        compare(what, dt, dw, d_dw, c, tol, 1);
        compare(what, dt, db, d_db, c, tol, 1);
        compare(what, dt, dx, d_dx, total, tol, 1);
    }

    void *hs[] = { x, dy, w, b, rm, rv, y, sm, si, dx, dw, db };
    void *ds[] = { d_x, d_dy, d_w, d_b, d_rm, d_rv, d_y, d_sm, d_si, d_dx, d_dw, d_db };
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) { free(hs[i]); dev_free(ds[i]); }
    free(xv); free(dyv); free(wv); free(bv); free(rmv); free(rvv);
}

/* (n, c, l): the rows mapping (l == 1) and the channel mapping (l > 1) on
   n * l = 2, 33, 5000 (or close: l = 49 divides neither) and c = 1, 3, 64, 1000. */
static const int64_t bn_shapes[][3] = {
    { 2, 1, 1 }, { 2, 3, 1 }, { 2, 1000, 1 }, { 33, 1, 1 }, { 33, 64, 1 }, { 33, 1000, 1 },
    { 5000, 1, 1 }, { 5000, 3, 1 }, { 5000, 64, 1 }, { 65, 1000, 1 },
    { 1, 3, 2 }, { 1, 64, 33 }, { 1, 1, 5000 }, { 1, 3, 49 }, { 2, 1, 49 }, { 33, 3, 49 },
    { 102, 64, 49 }, { 2, 1000, 49 }, { 5, 3, 1000 },
};
#define N_BN_SHAPES (sizeof bn_shapes / sizeof bn_shapes[0])

Test(cuda_nlo, batch_norm_shapes_training, .init = mt_test_setup, .fini = mt_test_teardown)
{
    for (size_t s = 0; s < N_BN_SHAPES; s++)
        for (int p = 0; p < 2; p++) bn_case(p ? MT_F64 : MT_F32, bn_shapes[s][0], bn_shapes[s][1], bn_shapes[s][2], BN_ALL);
}

Test(cuda_nlo, batch_norm_shapes_eval, .init = mt_test_setup, .fini = mt_test_teardown)
{
    for (size_t s = 0; s < N_BN_SHAPES; s++) {
        if (bn_shapes[s][0] * bn_shapes[s][1] * bn_shapes[s][2] > 100000) continue;   /* the largest run in training */
        for (int p = 0; p < 2; p++)
            bn_case(p ? MT_F64 : MT_F32, bn_shapes[s][0], bn_shapes[s][1], bn_shapes[s][2], BN_ALL & ~BN_TRAINING);
    }
}

/* One value per channel in eval mode (training needs two), and no values at all. */
Test(cuda_nlo, batch_norm_degenerate, .init = mt_test_setup, .fini = mt_test_teardown)
{
    for (int p = 0; p < 2; p++) {
        mt_dtype dt = p ? MT_F64 : MT_F32;
        bn_case(dt, 1, 5, 1, BN_ALL & ~BN_TRAINING);
        bn_case(dt, 1, 5, 1, (BN_ALL & ~BN_TRAINING) & ~BN_DX);
        bn_case(dt, 0, 5, 1, BN_ALL & ~BN_TRAINING);
        bn_case(dt, 3, 5, 0, BN_ALL & ~BN_TRAINING);
    }
}

Test(cuda_nlo, batch_norm_null_weight_bias_running, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const int64_t shapes[][3] = { { 33, 3, 1 }, { 7, 64, 1 }, { 3, 3, 49 }, { 2, 5, 33 } };
    static const int variants[] = {
        BN_ALL & ~BN_WEIGHT, BN_ALL & ~BN_BIAS, BN_ALL & ~(BN_WEIGHT | BN_BIAS),
        BN_ALL & ~BN_RUNNING, BN_ALL & ~(BN_WEIGHT | BN_BIAS | BN_RUNNING),
        BN_ALL & ~(BN_WEIGHT | BN_BIAS | BN_TRAINING),
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
            for (int p = 0; p < 2; p++) bn_case(p ? MT_F64 : MT_F32, shapes[s][0], shapes[s][1], shapes[s][2], variants[v]);
}

/* Each gradient output NULL, and each alone, in training and eval. */
Test(cuda_nlo, batch_norm_null_gradients, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const int64_t shapes[][3] = { { 33, 3, 1 }, { 65, 40, 1 }, { 3, 3, 49 }, { 1, 2, 300 } };
    static const int grads[] = { BN_DW | BN_DB, BN_DX | BN_DB, BN_DX | BN_DW, BN_DX, BN_DW, BN_DB };
    int base = BN_WEIGHT | BN_BIAS | BN_RUNNING;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t g = 0; g < sizeof grads / sizeof grads[0]; g++)
            for (int tr = 0; tr < 2; tr++)
                for (int p = 0; p < 2; p++)
                    bn_case(p ? MT_F64 : MT_F32, shapes[s][0], shapes[s][1], shapes[s][2],
                            base | grads[g] | (tr ? BN_TRAINING : 0));
}

/* The reduction kernels with their threads run in random orders: a missing
   barrier would show as a wrong (or NaN) statistic. */
Test(cuda_nlo, batch_norm_shuffled, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const int64_t shapes[][3] = { { 33, 3, 1 }, { 300, 64, 1 }, { 2, 1, 49 }, { 7, 3, 49 }, { 1, 2, 1000 } };
    for (uint64_t seed = 1; seed <= 2; seed++) {
        mt_emu_set_shuffle(1, seed);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int p = 0; p < 2; p++) {
                bn_case(p ? MT_F64 : MT_F32, shapes[s][0], shapes[s][1], shapes[s][2], BN_ALL);
                bn_case(p ? MT_F64 : MT_F32, shapes[s][0], shapes[s][1], shapes[s][2], BN_ALL & ~BN_TRAINING);
            }
    }
    mt_emu_set_shuffle(0, 0);
}

/* The same input on the device gives the same bits twice (no atomics). */
Test(cuda_nlo, batch_norm_deterministic, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int64_t n = 300, c = 5, l = 7, total = n * c * l;
    rng_state = 42;
    double *xv = rand_array(total, -1, 3);
    void *x = host_from(MT_F32, xv, total);
    void *d_x = dev_from(x, (size_t)total * 4), *d_y = dev_garbage((size_t)total * 4);
    void *d_sm = dev_garbage((size_t)c * 4), *d_si = dev_garbage((size_t)c * 4);
    float s1[5], s2[5];
    KERNEL_OK(emu()->batch_norm_forward(MT_F32, n, c, l, d_x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, d_y, d_sm, d_si));
    emu()->to_host(s1, d_si, sizeof s1);
    mt_emu_set_shuffle(1, 3);
    KERNEL_OK(emu()->batch_norm_forward(MT_F32, n, c, l, d_x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, d_y, d_sm, d_si));
    mt_emu_set_shuffle(0, 0);
    emu()->to_host(s2, d_si, sizeof s2);
    no_device_error("batch_norm determinism");
    cr_assert(memcmp(s1, s2, sizeof s1) == 0, "batch_norm: two runs differ");
    free(xv); free(x); dev_free(d_x); dev_free(d_y); dev_free(d_sm); dev_free(d_si);
}

/* ---------------------------------------------------------------- group norm and layer norm */
enum { GN_WEIGHT = 1, GN_BIAS = 2, GN_DX = 4, GN_DW = 8, GN_DB = 16, GN_ALL = 31 };

/* Forward then backward of the group_norm kernels on both backends, comparing
   every output; layer norm over f features is (n = rows, c = f, l = 1, groups = 1). */
static void gn_case(mt_dtype dt, int64_t n, int64_t c, int64_t l, int64_t groups, int flags)
{
    char what[160];
    snprintf(what, sizeof what, "group_norm n=%lld c=%lld l=%lld groups=%lld flags=0x%x", (long long)n, (long long)c,
             (long long)l, (long long)groups, flags);
    double tol = dt == MT_F32 ? 1e-5 : 1e-10;
    int64_t total = n * c * l, rows = n * groups;
    size_t es = esize(dt), tb = (size_t)total * es, cb = (size_t)c * es, rb = (size_t)rows * es;

    rng_state = (uint64_t)(n * 1000003 + c * 101 + l * 7 + groups + flags);
    double *xv = rand_array(total, -1, 5), *dyv = rand_array(total, -2, 2);
    double *wv = flags & GN_WEIGHT ? rand_array(c, 0.5, 1.5) : NULL, *bv = flags & GN_BIAS ? rand_array(c, -1, 1) : NULL;
    void *x = host_from(dt, xv, total), *dy = host_from(dt, dyv, total), *w = host_from(dt, wv, c), *b = host_from(dt, bv, c);
    void *y = host_garbage(tb), *sm = host_garbage(rb), *sr = host_garbage(rb);
    void *dx = flags & GN_DX ? host_garbage(tb) : NULL;
    void *dw = flags & GN_DW ? host_garbage(cb) : NULL, *db = flags & GN_DB ? host_garbage(cb) : NULL;
    void *d_x = dev_from(x, tb), *d_dy = dev_from(dy, tb), *d_w = dev_from(w, cb), *d_b = dev_from(b, cb);
    void *d_y = dev_garbage(tb), *d_sm = dev_garbage(rb), *d_sr = dev_garbage(rb);
    void *d_dx = dx ? dev_garbage(tb) : NULL, *d_dw = dw ? dev_garbage(cb) : NULL, *d_db = db ? dev_garbage(cb) : NULL;

    KERNEL_OK(mt_cpu_backend.group_norm_forward(dt, n, c, l, groups, x, w, b, 1e-5, y, sm, sr));
    KERNEL_OK(emu()->group_norm_forward(dt, n, c, l, groups, d_x, d_w, d_b, 1e-5, d_y, d_sm, d_sr));
    no_device_error(what);
    compare(what, dt, sm, d_sm, rows, tol, 1);
    compare(what, dt, sr, d_sr, rows, tol, 1);
    compare(what, dt, y, d_y, total, tol, 1);

    if (flags & (GN_DX | GN_DW | GN_DB)) {
        /* both backwards from the CPU's statistics, so that they see identical inputs */
        emu()->from_host(d_sm, sm, rb);
        emu()->from_host(d_sr, sr, rb);
        KERNEL_OK(mt_cpu_backend.group_norm_backward(dt, n, c, l, groups, x, dy, w, sm, sr, dx, dw, db));
        KERNEL_OK(emu()->group_norm_backward(dt, n, c, l, groups, d_x, d_dy, d_w, d_sm, d_sr, d_dx, d_dw, d_db));
        no_device_error(what);
        compare(what, dt, dw, d_dw, c, tol, 1);
        compare(what, dt, db, d_db, c, tol, 1);
        compare(what, dt, dx, d_dx, total, tol, 1);
    }
    void *hs[] = { x, dy, w, b, y, sm, sr, dx, dw, db };
    void *ds[] = { d_x, d_dy, d_w, d_b, d_y, d_sm, d_sr, d_dx, d_dw, d_db };
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) { free(hs[i]); dev_free(ds[i]); }
    free(xv); free(dyv); free(wv); free(bv);
}

/* (n, c, l, groups). Layer norm (l = 1, one group): 1 feature; rows of up to
   1024 values (a warp each, 8 per block) and of 1025 and more (a block each);
   300 and 600 rows (2 and 3 chunks of the weight sums, several 32-channel
   tiles). Group norm: groups = 1, = c and in between; l = 1 with several
   groups; runs of 49 (7x7) and 500; rows of 1500 values (a block each). */
static const int64_t gn_shapes[][4] = {
    { 1, 1, 1, 1 }, { 1, 7, 1, 1 }, { 5, 13, 1, 1 }, { 300, 5, 1, 1 }, { 33, 1024, 1, 1 }, { 2, 1025, 1, 1 },
    { 3, 1100, 1, 1 }, { 600, 40, 1, 1 }, { 20, 512, 1, 1 },
    { 2, 6, 5, 1 }, { 3, 4, 3, 4 }, { 2, 6, 6, 3 }, { 7, 6, 1, 3 }, { 5, 8, 3, 4 }, { 2, 64, 49, 32 },
    { 2, 4, 600, 2 }, { 40, 6, 500, 2 }, { 3, 5, 1000, 1 },
};
#define N_GN_SHAPES (sizeof gn_shapes / sizeof gn_shapes[0])

Test(cuda_nlo, group_norm_shapes, .init = mt_test_setup, .fini = mt_test_teardown)
{
    for (size_t s = 0; s < N_GN_SHAPES; s++)
        for (int p = 0; p < 2; p++)
            gn_case(p ? MT_F64 : MT_F32, gn_shapes[s][0], gn_shapes[s][1], gn_shapes[s][2], gn_shapes[s][3], GN_ALL);
}

/* No weight, no bias, each gradient output alone and NULL. */
Test(cuda_nlo, group_norm_null_weight_bias_gradients, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const int64_t shapes[][4] = { { 33, 3, 1, 1 }, { 300, 40, 1, 1 }, { 3, 6, 49, 3 }, { 2, 4, 600, 2 } };
    static const int variants[] = {
        GN_ALL & ~GN_WEIGHT, GN_ALL & ~GN_BIAS, GN_ALL & ~(GN_WEIGHT | GN_BIAS),
        GN_WEIGHT | GN_BIAS | GN_DX, GN_WEIGHT | GN_BIAS | GN_DW, GN_WEIGHT | GN_BIAS | GN_DB,
        GN_WEIGHT | GN_DW | GN_DB, GN_WEIGHT,
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
            for (int p = 0; p < 2; p++)
                gn_case(p ? MT_F64 : MT_F32, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], variants[v]);
}

/* No samples (the weight sums are 0) and no positions. */
Test(cuda_nlo, group_norm_degenerate, .init = mt_test_setup, .fini = mt_test_teardown)
{
    for (int p = 0; p < 2; p++) {
        mt_dtype dt = p ? MT_F64 : MT_F32;
        gn_case(dt, 0, 6, 3, 2, GN_ALL);
        gn_case(dt, 3, 6, 0, 2, GN_ALL);
        gn_case(dt, 4, 1, 1, 1, GN_ALL);   /* one value per row: var 0 */
    }
}

/* The threads of every kernel in random orders: a missing barrier or a
   shuffle among the wrong lanes would show. */
Test(cuda_nlo, group_norm_shuffled, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const int64_t shapes[][4] = { { 20, 37, 1, 1 }, { 3, 1100, 1, 1 }, { 300, 40, 1, 1 }, { 5, 8, 3, 4 },
                                         { 2, 4, 600, 2 } };
    for (uint64_t seed = 1; seed <= 2; seed++) {
        mt_emu_set_shuffle(1, seed);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int p = 0; p < 2; p++) gn_case(p ? MT_F64 : MT_F32, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], GN_ALL);
    }
    mt_emu_set_shuffle(0, 0);
}

/* The same input gives the same bits twice, threads in order and shuffled
   (no atomics): the statistics, dx and the weight sums over several chunks. */
Test(cuda_nlo, group_norm_deterministic, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int64_t n = 600, c = 40, total = n * c;
    rng_state = 43;
    double *xv = rand_array(total, -1, 3), *gv = rand_array(total, -1, 1);
    void *x = host_from(MT_F32, xv, total), *g = host_from(MT_F32, gv, total);
    void *d_x = dev_from(x, (size_t)total * 4), *d_g = dev_from(g, (size_t)total * 4);
    void *d_y = dev_garbage((size_t)total * 4), *d_dx = dev_garbage((size_t)total * 4);
    void *d_sm = dev_garbage((size_t)n * 4), *d_sr = dev_garbage((size_t)n * 4), *d_dw = dev_garbage((size_t)c * 4);
    size_t bytes = (size_t)(n + total + c) * sizeof(float);   /* rstd, dx, dweight */
    float *r[2] = { malloc(bytes), malloc(bytes) };
    cr_assert(r[0] && r[1]);
    for (int k = 0; k < 2; k++) {
        mt_emu_set_shuffle(k, 5);
        KERNEL_OK(emu()->group_norm_forward(MT_F32, n, c, 1, 1, d_x, NULL, NULL, 1e-5, d_y, d_sm, d_sr));
        KERNEL_OK(emu()->group_norm_backward(MT_F32, n, c, 1, 1, d_x, d_g, NULL, d_sm, d_sr, d_dx, d_dw, NULL));
        emu()->to_host(r[k], d_sr, (size_t)n * sizeof(float));
        emu()->to_host(r[k] + n, d_dx, (size_t)total * sizeof(float));
        emu()->to_host(r[k] + n + total, d_dw, (size_t)c * sizeof(float));
    }
    mt_emu_set_shuffle(0, 0);
    no_device_error("group_norm determinism");
    cr_assert(memcmp(r[0], r[1], bytes) == 0, "group_norm: two runs differ");
    free(r[0]);
    free(r[1]);
    free(xv); free(gv); free(x); free(g);
    dev_free(d_x); dev_free(d_g); dev_free(d_y); dev_free(d_dx); dev_free(d_sm); dev_free(d_sr); dev_free(d_dw);
}

/* The entries are emulated kernels: one launch forward; dx, the weight
   sums' partials and their finish backward. */
Test(cuda_nlo, group_norm_entries_launch_emulated_kernels, .init = mt_test_setup, .fini = mt_test_teardown)
{
    float h[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    void *a = dev_from(h, sizeof h), *b = dev_from(h, sizeof h), *c = dev_from(h, sizeof h);
    void *d = dev_from(h, sizeof h), *e = dev_from(h, sizeof h), *f = dev_from(h, sizeof h);
    uint64_t before = launches();
    KERNEL_OK(emu()->group_norm_forward(MT_F32, 2, 4, 1, 2, a, NULL, NULL, 1e-5, b, c, d));
    cr_assert_eq(launches(), before + 1, "group_norm_forward: one launch");
    KERNEL_OK(emu()->group_norm_backward(MT_F32, 2, 4, 1, 2, a, a, NULL, c, d, e, f, NULL));
    cr_assert_eq(launches(), before + 4, "group_norm_backward: dx, partial sums, finish");
    no_device_error("group_norm entries");
    cr_assert_eq(emu()->group_norm_forward(MT_F32, 2, 4, 1, 3, a, NULL, NULL, 1e-5, b, c, d), MT_ERR_ARGUMENT,
                 "4 channels in 3 groups");
    cr_assert_eq(emu()->group_norm_forward(MT_I32, 2, 4, 1, 2, a, NULL, NULL, 1e-5, b, c, d), MT_ERR_UNSUPPORTED);
    dev_free(a); dev_free(b); dev_free(c); dev_free(d); dev_free(e); dev_free(f);
}

/* ---------------------------------------------------------------- nll */
static void nll_case(mt_dtype dt, int64_t n, int64_t c, bool weighted, int64_t ignore_index)
{
    char what[128];
    snprintf(what, sizeof what, "nll n=%lld c=%lld weight=%d ignore=%lld", (long long)n, (long long)c, weighted,
             (long long)ignore_index);
    size_t es = esize(dt);
    rng_state = (uint64_t)(n * 31 + c + weighted);
    double *lv = rand_array(n * c, -5, 0), *wv = weighted ? rand_array(c, 0.1, 2) : NULL, *gv = rand_array(n, -1, 1);
    int64_t *t = malloc((size_t)n * sizeof *t);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < n; i++) {   /* mostly valid, some ignored, some out of range either side */
        int r = (int)(i % 7);
        t[i] = r == 3 ? ignore_index : r == 5 ? c + (int64_t)(i % 3) : r == 6 ? -1 - (int64_t)(i % 2)
                                                                       : (int64_t)(urand(0, (double)c));
        if (t[i] >= c && r != 5) t[i] = c - 1;
    }
    void *logp = host_from(dt, lv, n * c), *w = host_from(dt, wv, c), *dout = host_from(dt, gv, n);
    void *out = host_garbage((size_t)n * es), *dlogp = host_garbage((size_t)(n * c) * es);
    void *d_logp = dev_from(logp, (size_t)(n * c) * es), *d_w = dev_from(w, (size_t)c * es);
    void *d_dout = dev_from(dout, (size_t)n * es), *d_t = dev_from(t, (size_t)n * sizeof *t);
    void *d_out = dev_garbage((size_t)n * es), *d_dlogp = dev_garbage((size_t)(n * c) * es);

    KERNEL_OK(mt_cpu_backend.nll_forward(dt, n, c, logp, t, w, ignore_index, out));
    KERNEL_OK(emu()->nll_forward(dt, n, c, d_logp, d_t, d_w, ignore_index, d_out));
    KERNEL_OK(mt_cpu_backend.nll_backward(dt, n, c, t, w, ignore_index, dout, dlogp));
    KERNEL_OK(emu()->nll_backward(dt, n, c, d_t, d_w, ignore_index, d_dout, d_dlogp));
    no_device_error(what);
    compare(what, dt, out, d_out, n, 0, 0);
    compare(what, dt, dlogp, d_dlogp, n * c, 0, 0);

    free(lv); free(wv); free(gv); free(t); free(logp); free(w); free(dout); free(out); free(dlogp);
    dev_free(d_logp); dev_free(d_w); dev_free(d_dout); dev_free(d_t); dev_free(d_out); dev_free(d_dlogp);
}

Test(cuda_nlo, nll_forward_backward, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const int64_t shapes[][2] = { { 1, 1 }, { 1, 5 }, { 7, 1 }, { 7, 5 }, { 33, 10 }, { 1000, 3 }, { 13, 1000 },
                                         { 300, 257 } };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int p = 0; p < 2; p++)
            for (int wt = 0; wt < 2; wt++) {
                mt_dtype dt = p ? MT_F64 : MT_F32;
                nll_case(dt, shapes[s][0], shapes[s][1], wt, -100);                   /* outside [0, c) */
                nll_case(dt, shapes[s][0], shapes[s][1], wt, shapes[s][1] > 2 ? 2 : 0); /* a real class */
            }
}

/* ---------------------------------------------------------------- optimizers */
typedef struct opt_cfg {
    bool adam;
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
    bool nesterov, decoupled, amsgrad;
} opt_cfg;

/* steps updates in a row on both backends, from the same parameters and
   gradients (new ones each step), comparing the parameters and every state
   buffer after each. offset elements of padding before each buffer make the
   views unaligned (offset 1: 4 or 8 bytes). */
static void opt_case(mt_dtype dt, int64_t n, int64_t offset, const opt_cfg *cfg, int steps)
{
    char what[200];
    snprintf(what, sizeof what, "%s n=%lld offset=%lld lr=%g mom=%g damp=%g wd=%g nesterov=%d decoupled=%d amsgrad=%d",
             cfg->adam ? "adam" : "sgd", (long long)n, (long long)offset, cfg->lr, cfg->momentum, cfg->dampening,
             cfg->weight_decay, cfg->nesterov, cfg->decoupled, cfg->amsgrad);
    double tol = dt == MT_F32 ? 1e-6 : 1e-12;
    size_t es = esize(dt), nb = (size_t)(n + offset) * es;
    rng_state = (uint64_t)(n * 7 + offset);
    double *pv = rand_array(n + offset, -1, 1), *zero = calloc((size_t)(n + offset), sizeof(double));
    cr_assert_not_null(zero);
    enum { P, G, S1, S2, S3, NBUF };
    void *h[NBUF], *d[NBUF];
    for (int k = 0; k < NBUF; k++) {
        h[k] = host_from(dt, k == P ? pv : zero, n + offset);
        d[k] = dev_from(h[k], nb);
    }
    char *hp[NBUF], *dp[NBUF];   /* the views: offset elements in */
    for (int k = 0; k < NBUF; k++) { hp[k] = (char *)h[k] + offset * es; dp[k] = (char *)d[k] + offset * es; }

    for (int step = 1; step <= steps; step++) {
        double *gv = rand_array(n, -1, 1);
        if (step == 2) for (int64_t i = 0; i < n; i += 5) gv[i] *= 1e-3;   /* vary the scale: AMSGrad's max matters */
        void *gh = host_from(dt, gv, n);
        memcpy(hp[G], gh, (size_t)n * es);
        emu()->from_host(dp[G], gh, (size_t)n * es);
        free(gh);
        free(gv);
        if (!cfg->adam) {
            bool first = step == 1;
            void *hb = cfg->momentum != 0 ? hp[S1] : NULL, *db = cfg->momentum != 0 ? dp[S1] : NULL;
            KERNEL_OK(mt_cpu_backend.sgd_step(dt, n, hp[P], hp[G], hb, cfg->lr, cfg->momentum, cfg->dampening, cfg->weight_decay,
                                    cfg->nesterov, first));
            KERNEL_OK(emu()->sgd_step(dt, n, dp[P], dp[G], db, cfg->lr, cfg->momentum, cfg->dampening, cfg->weight_decay,
                            cfg->nesterov, first));
        } else {
            KERNEL_OK(mt_cpu_backend.adam_step(dt, n, hp[P], hp[G], hp[S1], hp[S2], cfg->amsgrad ? hp[S3] : NULL, cfg->lr,
                                     cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay, cfg->decoupled, cfg->amsgrad,
                                     step));
            KERNEL_OK(emu()->adam_step(dt, n, dp[P], dp[G], dp[S1], dp[S2], cfg->amsgrad ? dp[S3] : NULL, cfg->lr, cfg->beta1,
                             cfg->beta2, cfg->eps, cfg->weight_decay, cfg->decoupled, cfg->amsgrad, step));
        }
        no_device_error(what);
        /* whole buffers: the padding before the view must be untouched too */
        for (int k = 0; k < NBUF; k++) compare(what, dt, h[k], d[k], n + offset, tol, 1e-30);
    }
    for (int k = 0; k < NBUF; k++) { free(h[k]); dev_free(d[k]); }
    free(pv);
    free(zero);
}

static const int64_t opt_sizes[] = { 1, 3, 4, 7, 1001, 4099 };
#define N_OPT_SIZES (sizeof opt_sizes / sizeof opt_sizes[0])

static void opt_all(const opt_cfg *cfg)
{
    for (size_t s = 0; s < N_OPT_SIZES; s++)
        for (int64_t offset = 0; offset <= 1; offset++)
            for (int p = 0; p < 2; p++) opt_case(p ? MT_F64 : MT_F32, opt_sizes[s], offset, cfg, 4);
}

Test(cuda_nlo, sgd_steps, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const opt_cfg cfgs[] = {
        { .lr = 0.1 },
        { .lr = 0.05, .weight_decay = 0.01 },
        { .lr = 0.1, .momentum = 0.9 },
        { .lr = 0.1, .momentum = 0.9, .dampening = 0.3, .weight_decay = 1e-3 },
        { .lr = 0.02, .momentum = 0.8, .nesterov = true },
        { .lr = 0.02, .momentum = 0.8, .nesterov = true, .weight_decay = 0.05 },
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) opt_all(&cfgs[i]);
}

Test(cuda_nlo, adam_steps, .init = mt_test_setup, .fini = mt_test_teardown)
{
    const opt_cfg cfgs[] = {
        { .adam = true, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8 },
        { .adam = true, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1 },
        { .adam = true, .lr = 1e-2, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.1, .decoupled = true },
        { .adam = true, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .amsgrad = true },
        { .adam = true, .lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.01, .decoupled = true,
          .amsgrad = true },
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) opt_all(&cfgs[i]);
}

/* ---------------------------------------------------------------- an MLP trained on both */

/* Copies every parameter and buffer of src (cpu) into dst (device). */
static void copy_state(mt_module *dst, mt_module *src, mt_device dev)
{
    mt_tensor_list a = mt_state_dict(dst), b = mt_state_dict(src);
    cr_assert_eq(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        cr_assert_str_eq(a.items[i].name, b.items[i].name);
        mt_tensor *moved = mt_to_device(b.items[i].tensor, dev);
        cr_assert(moved && mt_copy_(a.items[i].tensor, moved) == MT_OK, "%s: %s", a.items[i].name, mt_last_error());
        cr_assert(mt_device_of(a.items[i].tensor).type == dev.type, "%s is not on the device", a.items[i].name);
    }
    mt_tensor_list_free(&a);
    mt_tensor_list_free(&b);
}

static mt_module *make_mlp(void)
{
    return mt_nn_sequential(mt_nn_linear(2, 32, true), mt_nn_batch_norm1d(32, MT_BN_DEFAULTS),
                            mt_nn_gelu(MT_GELU_ERF), mt_nn_linear(32, 2, true));
}

Test(cuda_nlo, mlp_spirals_same_losses, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_device cpu = mt_cpu(), dev = { MT_DEVICE_CUDA_EMU, 0 };
    mt_device saved_default = mt_default_device();
    cr_assert(mt_set_default_device(cpu) == MT_OK);

    mt_tensor *x, *y;
    cr_assert(mt_spirals_make(100, 1.5, 0.02, 11, &x, &y) == MT_OK, "%s", mt_last_error());
    mt_manual_seed(5);
    mt_module *net_cpu = make_mlp();
    cr_assert_not_null(net_cpu, "%s", mt_last_error());

    /* the device copy: built on the device, then given the cpu model's values */
    cr_assert(mt_set_default_device(dev) == MT_OK, "%s", mt_last_error());
    mt_module *net_dev = make_mlp();
    cr_assert(mt_set_default_device(cpu) == MT_OK);
    cr_assert_not_null(net_dev, "%s", mt_last_error());
    copy_state(net_dev, net_cpu, dev);
    mt_tensor *x_dev = mt_keep(mt_to_device(x, dev)), *y_dev = mt_keep(mt_to_device(y, dev));
    cr_assert(x_dev && y_dev, "%s", mt_last_error());

    mt_module *nets[2] = { net_cpu, net_dev };
    mt_tensor *xs[2] = { x, x_dev }, *ys[2] = { y, y_dev };
    mt_optimizer *opts[2];
    for (int k = 0; k < 2; k++) {
        mt_tensor_list params = mt_parameters(nets[k]);
        mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
        adam_opts.lr = 0.02;
        opts[k] = mt_adam(params, adam_opts);
        mt_tensor_list_free(&params);
        cr_assert_not_null(opts[k], "%s", mt_last_error());
    }

    enum { STEPS = 50 };
    double losses[2][STEPS];
    for (int k = 0; k < 2; k++)
        for (int step = 0; step < STEPS; step++) {
            mt_scope s = mt_scope_begin();
            mt_optimizer_zero_grad(opts[k]);
            mt_tensor *loss = mt_cross_entropy(mt_forward(nets[k], xs[k]), ys[k], (mt_ce_opts){ 0 });
            cr_assert(loss && mt_backward(loss) == MT_OK, "%s step %d: %s", k ? "cuda-emu" : "cpu", step, mt_last_error());
            cr_assert(k == 0 || mt_device_of(loss).type == MT_DEVICE_CUDA_EMU, "the loss is not on the device");
            cr_assert(mt_step(opts[k]) == MT_OK, "step %d: %s", step, mt_last_error());
            losses[k][step] = mt_item(loss);
            mt_scope_end(s);
        }
    for (int step = 0; step < STEPS; step++) {
        double a = losses[0][step], b = losses[1][step];
        cr_assert(fabs(a - b) <= 1e-4 * fabs(a), "step %d: loss %.9g on cpu, %.9g on cuda-emu", step, a, b);
    }
    cr_log_info("mlp spirals: loss %.5f -> %.5f on cpu, %.5f -> %.5f on cuda-emu", losses[0][0], losses[0][STEPS - 1],
                losses[1][0], losses[1][STEPS - 1]);
    cr_expect_lt(losses[0][STEPS - 1], 0.9 * losses[0][0], "the model did not learn");

    /* the running statistics moved the same way too */
    mt_tensor *rm_cpu = mt_module_buffer(net_cpu->children[1], "running_var");
    mt_tensor *rm_dev = mt_to_device(mt_module_buffer(net_dev->children[1], "running_var"), cpu);
    cr_assert(rm_cpu && rm_dev, "%s", mt_last_error());
    double diff = mt_item(mt_sum_all(mt_abs(mt_sub(rm_cpu, rm_dev))));
    cr_assert(diff <= 1e-4, "running_var differs by %g in all", diff);

    for (int k = 0; k < 2; k++) { mt_optimizer_free(opts[k]); mt_module_free(nets[k]); }
    mt_free(x); mt_free(y); mt_free(x_dev); mt_free(y_dev);
    mt_set_default_device(saved_default);
}
