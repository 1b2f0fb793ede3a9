/*
 * test_simt.c - the SIMT emulator (host/simt_emu.c) running the kernels of
 * tests/simt_test_kernels.cu: barriers, a tree reduction, warp shuffles and
 * votes, atomics on global and shared memory, dynamic shared memory, 2-d and
 * 3-d launches with partial warps, a race that only the shuffled mode
 * catches, the errors it reports, and a stress launch (timed, printed).
 *
 * Most checks run three times: in thread order and in shuffled mode with two
 * seeds; a correct kernel gives the same answer in every order.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda/simt_emu.h"

#ifndef MYTORCH_SIMT_TEST_KERNELS   /* cmake/cuda.cmake found no C++ compiler */
Test(simt, needs_a_cxx_compiler, .disabled = true) {}
#else

#define SIMT_TEST_PROTOTYPES_ONLY
#include "simt_test_kernels.cu"

/* ---------------------------------------------------------------- helpers */
static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    cr_assert_eq(mt_emu_malloc(&p, bytes), MT_EMU_SUCCESS);
    cr_assert(p != NULL || bytes == 0);
    return p;
}

static void *dev_copy(const void *host, size_t bytes)
{
    void *p = dev_alloc(bytes);
    cr_assert_eq(mt_emu_memcpy(p, host, bytes, MT_EMU_MEMCPY_HOST_TO_DEVICE), MT_EMU_SUCCESS);
    return p;
}

static void dev_zero(void *p, size_t bytes) { cr_assert_eq(mt_emu_memset(p, 0, bytes), MT_EMU_SUCCESS); }

static void to_host(void *host, const void *dev, size_t bytes)
{
    cr_assert_eq(mt_emu_memcpy(host, dev, bytes, MT_EMU_MEMCPY_DEVICE_TO_HOST), MT_EMU_SUCCESS);
}

/* mode 0: threads in index order; 1, 2: shuffled with seeds 7, 8. */
#define N_MODES 3
static void set_mode(int mode) { mt_emu_set_shuffle(mode != 0, (uint64_t)(mode + 6)); }

static void check_launch(int rc, const char *what)
{
    cr_assert_eq(rc, MT_EMU_SUCCESS, "%s: %s (%s)", what, mt_emu_error_string(rc), mt_emu_last_error_message());
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void setup(void)
{
    mt_emu_set_shuffle(0, 0);
    mt_emu_set_threads(0);
}

/* Every test starts in thread order with the default number of OS threads,
   whatever MYTORCH_EMU_SHUFFLE says (except the test of that variable). */
#define SIMT_TEST(name) Test(simt, name, .init = setup)

/* ---------------------------------------------------------------- barriers and shared memory */
SIMT_TEST(barrier_neighbour_exchange)
{
    enum { N = 1000, B = 96 };
    int in[N], out[N], ref[N];
    for (int i = 0; i < N; i++) in[i] = (i * 37) % 101 - 50;
    for (int b = 0; b * B < N; b++) {
        int s1[B], s2[B];
        for (int t = 0; t < B; t++) s1[t] = b * B + t < N ? in[b * B + t] : 0;
        for (int t = 0; t < B; t++) s2[t] = s1[(t + 1) % B] * 2 + t;
        for (int t = 0; t < B && b * B + t < N; t++) ref[b * B + t] = s2[(t + B - 1) % B];
    }
    int *din = dev_copy(in, sizeof in), *dout = dev_alloc(sizeof out);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        dev_zero(dout, sizeof out);
        check_launch(simt_test_barrier(din, dout, N, B), "barrier");
        to_host(out, dout, sizeof out);
        for (int i = 0; i < N; i++) cr_assert_eq(out[i], ref[i], "mode %d: out[%d] = %d, expected %d", mode, i, out[i], ref[i]);
    }
    mt_emu_free(din);
    mt_emu_free(dout);
}

SIMT_TEST(tree_reduction_odd_tail)
{
    enum { N = 1077, B = 128, BLOCKS = (N + 2 * B - 1) / (2 * B) };
    float in[N], part[BLOCKS];
    double ref[BLOCKS] = { 0 };
    for (int i = 0; i < N; i++) {
        in[i] = (float)((i * 13) % 7 - 3);
        ref[i / (2 * B)] += in[i];
    }
    float *din = dev_copy(in, sizeof in), *dpart = dev_alloc(sizeof part);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        check_launch(simt_test_reduce_sum(din, dpart, N, B), "reduce");
        to_host(part, dpart, sizeof part);
        for (int b = 0; b < BLOCKS; b++)
            cr_assert_eq((double)part[b], ref[b], "mode %d: block %d sums to %g, expected %g", mode, b, part[b], ref[b]);
    }
    mt_emu_free(din);
    mt_emu_free(dpart);
}

SIMT_TEST(dynamic_shared_memory)
{
    enum { N = 500, B = 64 };
    float in[N], out[N], ref[N];
    for (int i = 0; i < N; i++) in[i] = (float)(i % 17) - 8.0f;
    for (int b = 0; b * B < N; b++) {
        float buf[2 * B];
        for (int t = 0; t < B; t++) buf[t] = b * B + t < N ? in[b * B + t] : 0.0f;
        for (int t = 0; t < B; t++) buf[B + t] = 2.0f * buf[t];
        for (int t = 0; t < B && b * B + t < N; t++) ref[b * B + t] = buf[B - 1 - t] + buf[B + (t + 1) % B];
    }
    float *din = dev_copy(in, sizeof in), *dout = dev_alloc(sizeof out);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        check_launch(simt_test_dynamic_shared(din, dout, N, B), "dynamic shared");
        to_host(out, dout, sizeof out);
        for (int i = 0; i < N; i++) cr_assert_eq(out[i], ref[i], "mode %d: out[%d] = %g, expected %g", mode, i, out[i], ref[i]);
    }
    mt_emu_free(din);
    mt_emu_free(dout);
}

SIMT_TEST(dynamic_shared_memory_over_48k_needs_the_attribute)
{
    enum { F = 16 * 1024 };
    float *in = malloc(2 * F * sizeof *in), *out = malloc(2 * F * sizeof *out);
    cr_assert(in && out);
    for (int i = 0; i < 2 * F; i++) in[i] = (float)i;
    float *din = dev_copy(in, 2 * F * sizeof *in), *dout = dev_alloc(2 * F * sizeof *out);
    int rc = simt_test_dynamic_shared_big(din, dout, 0);
    cr_assert_eq(rc, MT_EMU_ERROR_INVALID_CONFIGURATION, "64 KiB without the attribute: %s", mt_emu_error_string(rc));
    cr_assert(strstr(mt_emu_last_error_message(), "dynamic shared memory") != NULL, "%s", mt_emu_last_error_message());
    check_launch(simt_test_dynamic_shared_big(din, dout, 1), "64 KiB with the attribute");
    to_host(out, dout, 2 * F * sizeof *out);
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < F; k++) cr_assert_eq(out[b * F + k], in[b * F + F - 1 - k]);
    mt_emu_free(din);
    mt_emu_free(dout);
    free(in);
    free(out);
}

/* ---------------------------------------------------------------- warps */
SIMT_TEST(warp_shuffle_reductions_and_scan)
{
    enum { N = 192, B = 64 };
    int in[N], down[N / 32], xr[N], seg8[N], scan[N], bcast[N];
    for (int i = 0; i < N; i++) in[i] = (i * 7) % 13 - 6;
    int *din = dev_copy(in, sizeof in), *ddown = dev_alloc(sizeof down), *dxr = dev_alloc(sizeof xr),
        *dseg = dev_alloc(sizeof seg8), *dscan = dev_alloc(sizeof scan), *dbc = dev_alloc(sizeof bcast);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        check_launch(simt_test_warp(din, ddown, dxr, dseg, dscan, dbc, N, B), "warp");
        to_host(down, ddown, sizeof down);
        to_host(xr, dxr, sizeof xr);
        to_host(seg8, dseg, sizeof seg8);
        to_host(scan, dscan, sizeof scan);
        to_host(bcast, dbc, sizeof bcast);
        for (int w = 0; w < N / 32; w++) {
            int total = 0, run = 0;
            for (int l = 0; l < 32; l++) total += in[w * 32 + l];
            cr_assert_eq(down[w], total, "mode %d: warp %d: __shfl_down_sync sum %d, expected %d", mode, w, down[w], total);
            for (int l = 0; l < 32; l++) {
                int g = w * 32 + l, seg = 0;
                run += in[g];
                for (int k = l & ~7; k < (l & ~7) + 8; k++) seg += in[w * 32 + k];
                cr_assert_eq(xr[g], total, "mode %d: lane %d: __shfl_xor_sync sum %d, expected %d", mode, g, xr[g], total);
                cr_assert_eq(seg8[g], seg, "mode %d: lane %d: width-8 sum %d, expected %d", mode, g, seg8[g], seg);
                cr_assert_eq(scan[g], run, "mode %d: lane %d: __shfl_up_sync scan %d, expected %d", mode, g, scan[g], run);
                cr_assert_eq(bcast[g], in[w * 32 + 3], "mode %d: lane %d: broadcast", mode, g);
            }
        }
    }
    mt_emu_free(din); mt_emu_free(ddown); mt_emu_free(dxr); mt_emu_free(dseg); mt_emu_free(dscan); mt_emu_free(dbc);
}

SIMT_TEST(votes_and_counting_barriers_with_partial_warps)
{
    enum { N = 230, B = 48, BLOCKS = (N + B - 1) / B };
    int in[N], any[N], all[N], count[N], band[N], bor[N];
    unsigned ballot[N];
    /* block 0: all positive; block 1: none; the rest mixed */
    for (int i = 0; i < N; i++) in[i] = i < B ? 1 : i < 2 * B ? -1 : ((i * 5) % 7 > 3 ? 1 : -1);
    int *din = dev_copy(in, sizeof in), *dany = dev_alloc(sizeof any), *dall = dev_alloc(sizeof all),
        *dcount = dev_alloc(sizeof count), *dband = dev_alloc(sizeof band), *dbor = dev_alloc(sizeof bor);
    unsigned *dballot = dev_alloc(sizeof ballot);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        check_launch(simt_test_votes(din, dballot, dany, dall, dcount, dband, dbor, N, B), "votes");
        to_host(ballot, dballot, sizeof ballot);
        to_host(any, dany, sizeof any);
        to_host(all, dall, sizeof all);
        to_host(count, dcount, sizeof count);
        to_host(band, dband, sizeof band);
        to_host(bor, dbor, sizeof bor);
        for (int b = 0; b < BLOCKS; b++) {
            int cnt = 0;
            for (int t = 0; t < B; t++) cnt += b * B + t < N && in[b * B + t] > 0;
            for (int t = 0; t < B && b * B + t < N; t++) {
                int g = b * B + t, w0 = t & ~31, lanes = B - w0 < 32 ? B - w0 : 32;
                unsigned bal = 0;
                for (int l = 0; l < lanes; l++) {
                    int g2 = b * B + w0 + l;
                    if (g2 < N && in[g2] > 0) bal |= 1u << l;
                }
                unsigned exists = lanes == 32 ? 0xFFFFFFFFu : (1u << lanes) - 1;
                cr_assert_eq(ballot[g], bal, "mode %d: thread %d: ballot 0x%08x, expected 0x%08x", mode, g, ballot[g], bal);
                cr_assert_eq(any[g], bal != 0, "mode %d: thread %d: any", mode, g);
                cr_assert_eq(all[g], bal == exists, "mode %d: thread %d: all", mode, g);
                cr_assert_eq(count[g], cnt, "mode %d: thread %d: __syncthreads_count %d, expected %d", mode, g, count[g], cnt);
                cr_assert_eq(band[g], cnt == B, "mode %d: thread %d: __syncthreads_and", mode, g);
                cr_assert_eq(bor[g], cnt > 0, "mode %d: thread %d: __syncthreads_or", mode, g);
            }
        }
    }
    mt_emu_free(din); mt_emu_free(dballot); mt_emu_free(dany); mt_emu_free(dall);
    mt_emu_free(dcount); mt_emu_free(dband); mt_emu_free(dbor);
}

SIMT_TEST(match_reduce_and_disjoint_half_warps)
{
    enum { N = 64 };
    int in[N], rmin[N], halves[N];
    unsigned match[N], radd[N], rmax[N];
    for (int i = 0; i < N; i++) in[i] = (i * 11) % 29 - 9;
    int *din = dev_copy(in, sizeof in), *drmin = dev_alloc(sizeof rmin), *dhalves = dev_alloc(sizeof halves);
    unsigned *dmatch = dev_alloc(sizeof match), *dradd = dev_alloc(sizeof radd), *drmax = dev_alloc(sizeof rmax);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        check_launch(simt_test_warp_misc(din, dmatch, dradd, drmin, drmax, dhalves, N), "warp misc");
        to_host(match, dmatch, sizeof match);
        to_host(radd, dradd, sizeof radd);
        to_host(rmin, drmin, sizeof rmin);
        to_host(rmax, drmax, sizeof rmax);
        to_host(halves, dhalves, sizeof halves);
        for (int g = 0; g < N; g++) {
            int w0 = g & ~31, h0 = g & ~15, mn = in[w0], half = 0;
            unsigned m = 0, add = 0, mx = (unsigned)in[w0];
            for (int l = 0; l < 32; l++) {
                int v = in[w0 + l];
                if (v % 3 == in[g] % 3) m |= 1u << l;
                add += (unsigned)v;
                mn = v < mn ? v : mn;
                mx = (unsigned)v > mx ? (unsigned)v : mx;
            }
            for (int l = 0; l < 16; l++) half += in[h0 + l];
            cr_assert_eq(match[g], m, "mode %d: lane %d: __match_any_sync 0x%08x, expected 0x%08x", mode, g, match[g], m);
            cr_assert_eq(radd[g], add, "mode %d: lane %d: __reduce_add_sync", mode, g);
            cr_assert_eq(rmin[g], mn, "mode %d: lane %d: __reduce_min_sync", mode, g);
            cr_assert_eq(rmax[g], mx, "mode %d: lane %d: __reduce_max_sync", mode, g);
            cr_assert_eq(halves[g], half, "mode %d: lane %d: half-warp sum %d, expected %d", mode, g, halves[g], half);
        }
    }
    mt_emu_free(din); mt_emu_free(drmin); mt_emu_free(dhalves); mt_emu_free(dmatch); mt_emu_free(dradd); mt_emu_free(drmax);
}

/* ---------------------------------------------------------------- atomics */
SIMT_TEST(global_atomics_over_many_blocks_and_os_threads)
{
    enum { N = 64 * 256 + 17, NB = 10 };
    mt_emu_set_threads(4);
    int *vals = malloc(N * sizeof *vals);
    cr_assert(vals);
    unsigned ref_hist[NB] = { 0 };
    int vmax = -1, vmin = 1 << 30;
    unsigned long long isum = 0;
    for (int i = 0; i < N; i++) {
        vals[i] = (int)(((unsigned)i * 2654435761u) % 1000u);
        ref_hist[vals[i] % NB]++;
        vmax = vals[i] > vmax ? vals[i] : vmax;
        vmin = vals[i] < vmin ? vals[i] : vmin;
        isum += (unsigned long long)i;
    }
    int *dvals = dev_copy(vals, N * sizeof *vals);
    unsigned *dhist = dev_alloc(sizeof ref_hist), *dinc = dev_alloc(sizeof(unsigned));
    float *dfsum = dev_alloc(sizeof(float));
    double *ddsum = dev_alloc(sizeof(double));
    int *dimax = dev_alloc(sizeof(int)), *dimin = dev_alloc(sizeof(int)), *dslot = dev_alloc(sizeof(int)),
        *dwin = dev_alloc(sizeof(int)), *dexch = dev_alloc(sizeof(int));
    unsigned long long *dexsum = dev_alloc(sizeof(unsigned long long));
    int init_max = -1, init_min = 1 << 30, init_slot = -1;
    dev_zero(dhist, sizeof ref_hist); dev_zero(dinc, sizeof(unsigned)); dev_zero(dfsum, sizeof(float));
    dev_zero(ddsum, sizeof(double)); dev_zero(dwin, sizeof(int)); dev_zero(dexch, sizeof(int));
    dev_zero(dexsum, sizeof(unsigned long long));
    mt_emu_memcpy(dimax, &init_max, sizeof(int), MT_EMU_MEMCPY_HOST_TO_DEVICE);
    mt_emu_memcpy(dimin, &init_min, sizeof(int), MT_EMU_MEMCPY_HOST_TO_DEVICE);
    mt_emu_memcpy(dslot, &init_slot, sizeof(int), MT_EMU_MEMCPY_HOST_TO_DEVICE);

    check_launch(simt_test_atomics(dvals, N, dhist, NB, dfsum, ddsum, dimax, dimin, dslot, dwin, dinc, dexch, dexsum), "atomics");

    unsigned hist[NB], inc;
    float fsum;
    double dsum;
    int imax, imin, slot, win, exch;
    unsigned long long exsum;
    to_host(hist, dhist, sizeof hist); to_host(&inc, dinc, sizeof inc); to_host(&fsum, dfsum, sizeof fsum);
    to_host(&dsum, ddsum, sizeof dsum); to_host(&imax, dimax, sizeof imax); to_host(&imin, dimin, sizeof imin);
    to_host(&slot, dslot, sizeof slot); to_host(&win, dwin, sizeof win); to_host(&exch, dexch, sizeof exch);
    to_host(&exsum, dexsum, sizeof exsum);
    for (int k = 0; k < NB; k++) cr_assert_eq(hist[k], ref_hist[k], "bin %d: %u, expected %u", k, hist[k], ref_hist[k]);
    cr_assert_eq(fsum, 0.5f * N, "float atomicAdd: %g", fsum);
    cr_assert_eq(dsum, 0.25 * N, "double atomicAdd: %g", dsum);
    cr_assert_eq(imax, vmax);
    cr_assert_eq(imin, vmin);
    cr_assert_eq(win, 1, "atomicCAS: %d winners", win);
    cr_assert(slot >= 0 && slot < N);
    cr_assert_eq(inc, (unsigned)(N % 100), "atomicInc wraps at 99: %u", inc);
    cr_assert_eq(exsum + (unsigned long long)exch, isum, "atomicExch returned every value once");
    mt_emu_free(dvals); mt_emu_free(dhist); mt_emu_free(dinc); mt_emu_free(dfsum); mt_emu_free(ddsum);
    mt_emu_free(dimax); mt_emu_free(dimin); mt_emu_free(dslot); mt_emu_free(dwin); mt_emu_free(dexch); mt_emu_free(dexsum);
    free(vals);
}

SIMT_TEST(shared_memory_atomics)
{
    enum { N = 1000, B = 128, BLOCKS = (N + B - 1) / B };
    int vals[N], bmax[BLOCKS], ref_max[BLOCKS];
    unsigned hist[16], ref_hist[16] = { 0 };
    for (int b = 0; b < BLOCKS; b++) ref_max[b] = -1;
    for (int i = 0; i < N; i++) {
        vals[i] = (i * 31 + 7) % 211;
        ref_hist[vals[i] & 15]++;
        ref_max[i / B] = vals[i] > ref_max[i / B] ? vals[i] : ref_max[i / B];
    }
    int *dvals = dev_copy(vals, sizeof vals), *dbmax = dev_alloc(sizeof bmax);
    unsigned *dhist = dev_alloc(sizeof hist);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        dev_zero(dhist, sizeof hist);
        check_launch(simt_test_shared_atomics(dvals, N, dhist, dbmax), "shared atomics");
        to_host(hist, dhist, sizeof hist);
        to_host(bmax, dbmax, sizeof bmax);
        for (int k = 0; k < 16; k++) cr_assert_eq(hist[k], ref_hist[k], "mode %d: bin %d", mode, k);
        for (int b = 0; b < BLOCKS; b++) cr_assert_eq(bmax[b], ref_max[b], "mode %d: block %d max", mode, b);
    }
    mt_emu_free(dvals); mt_emu_free(dbmax); mt_emu_free(dhist);
}

/* ---------------------------------------------------------------- launch shapes */
static void check_coords(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz)
{
    int nthr = (int)(bx * by * bz), nblk = (int)(gx * gy * gz), total = nthr * nblk;
    int *out = malloc((size_t)total * 5 * sizeof *out);
    cr_assert(out);
    int *dout = dev_alloc((size_t)total * 5 * sizeof *out);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        mt_emu_memset(dout, 0xFF, (size_t)total * 5 * sizeof *out);
        check_launch(simt_test_coords(dout, gx, gy, gz, bx, by, bz), "coords");
        to_host(out, dout, (size_t)total * 5 * sizeof *out);
        for (int bid = 0; bid < nblk; bid++) {
            int bxi = bid % (int)gx, byi = bid / (int)gx % (int)gy, bzi = bid / (int)(gx * gy);
            for (int tid = 0; tid < nthr; tid++) {
                int g = bid * nthr + tid;
                int tx = tid % (int)bx, ty = tid / (int)bx % (int)by, tz = tid / (int)(bx * by);
                int w0 = tid & ~31, lanes = nthr - w0 < 32 ? nthr - w0 : 32;
                cr_assert_eq(out[g * 5 + 0], tx | ty << 8 | tz << 16, "mode %d: block %d thread %d: threadIdx", mode, bid, tid);
                cr_assert_eq(out[g * 5 + 1], bxi | byi << 8 | bzi << 16, "mode %d: block %d: blockIdx", mode, bid);
                cr_assert_eq(out[g * 5 + 2], lanes, "mode %d: block %d thread %d: warp of %d lanes, expected %d",
                             mode, bid, tid, out[g * 5 + 2], lanes);
                cr_assert_eq(out[g * 5 + 3], tid & 31);
                cr_assert_eq(out[g * 5 + 4], bid * nthr + nthr - 1 - tid, "mode %d: block %d thread %d: shared", mode, bid, tid);
            }
        }
    }
    mt_emu_free(dout);
    free(out);
}

SIMT_TEST(two_d_grid_and_block_with_partial_warp) { check_coords(3, 2, 1, 8, 6, 1); }   /* 48 threads */
SIMT_TEST(three_d_grid_and_block) { check_coords(3, 2, 2, 4, 3, 2); check_coords(2, 1, 3, 16, 4, 3); }

SIMT_TEST(exited_threads_count_as_arrived)
{
    enum { N = 40, B = 64 };
    int in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = i * i;
    int *din = dev_copy(in, sizeof in), *dout = dev_alloc(sizeof out);
    for (int mode = 0; mode < N_MODES; mode++) {
        set_mode(mode);
        check_launch(simt_test_early_exit(din, dout, N, B), "early exit");
        to_host(out, dout, sizeof out);
        for (int i = 0; i < N; i++) cr_assert_eq(out[i], in[N - 1 - i], "mode %d", mode);
    }
    mt_emu_free(din);
    mt_emu_free(dout);
}

SIMT_TEST(kernel_without_barriers_runs_on_one_fiber_per_block)
{
    enum { N = 1000 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) { x[i] = (float)i; y[i] = 1.0f; }
    float *dx = dev_copy(x, sizeof x), *dy = dev_copy(y, sizeof y);
    mt_emu_set_threads(1);
    mt_emu_reset_stats();
    check_launch(simt_test_saxpy(N, 2.0f, dx, dy), "saxpy");
    mt_emu_stats st;
    mt_emu_get_stats(&st);
    to_host(y, dy, sizeof y);
    for (int i = 0; i < N; i++) cr_assert_eq(y[i], 2.0f * (float)i + 1.0f);
    cr_assert_eq(st.blocks, 8u);
    cr_assert_eq(st.threads, 8u * 128u);
    cr_assert_eq(st.fibers_started, 8u, "%llu fibers started", (unsigned long long)st.fibers_started);
    cr_assert_eq(st.switches, 16u, "%llu switches", (unsigned long long)st.switches);
    mt_emu_free(dx);
    mt_emu_free(dy);
}

/* ---------------------------------------------------------------- shuffled mode catches a race */
SIMT_TEST(shuffled_mode_catches_a_missing_barrier)
{
    enum { BLOCKS = 8, B = 64, N = BLOCKS * B };
    int in[N], out[N], ref[N];
    for (int i = 0; i < N; i++) in[i] = 1000 + i;
    for (int i = 0; i < N; i++) ref[i] = i % B ? in[i - 1] : -1;
    int *din = dev_copy(in, sizeof in), *dout = dev_alloc(sizeof out);

    /* in thread order the racy kernel happens to be right */
    check_launch(simt_test_racy(din, dout, BLOCKS, B, 0), "racy");
    to_host(out, dout, sizeof out);
    cr_assert_eq(memcmp(out, ref, sizeof out), 0, "the racy kernel is right in thread order");

    int caught = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        mt_emu_set_shuffle(1, seed);
        check_launch(simt_test_racy(din, dout, BLOCKS, B, 0), "racy, shuffled");
        to_host(out, dout, sizeof out);
        caught += memcmp(out, ref, sizeof out) != 0;
        check_launch(simt_test_racy(din, dout, BLOCKS, B, 1), "with the barrier, shuffled");
        to_host(out, dout, sizeof out);
        cr_assert_eq(memcmp(out, ref, sizeof out), 0, "seed %d: the kernel with its barrier is right", (int)seed);
    }
    cr_assert(caught >= 1, "no shuffled run caught the missing barrier");
    cr_log_info("simt: the missing barrier was caught by %d of 4 shuffled seeds", caught);
    mt_emu_free(din);
    mt_emu_free(dout);
}

Test(simt, shuffled_mode_from_the_environment)
{
    /* Each Criterion test runs in a fresh process, so the emulator reads the
       environment for the first time here. */
    setenv("MYTORCH_EMU_SHUFFLE", "1", 1);
    setenv("MYTORCH_EMU_SEED", "5", 1);
    cr_assert_eq(mt_emu_get_shuffle(), 1);
}

/* ---------------------------------------------------------------- errors */
SIMT_TEST(deadlock_is_reported_and_the_next_launch_works)
{
    int *dout = dev_alloc(64 * sizeof(int));
    int rc = simt_test_deadlock(dout);
    cr_assert_eq(rc, MT_EMU_ERROR_LAUNCH_FAILURE, "%s", mt_emu_error_string(rc));
    cr_assert(strstr(mt_emu_last_error_message(), "deadlock") != NULL, "%s", mt_emu_last_error_message());
    cr_assert(strstr(mt_emu_last_error_message(), "k_deadlock") != NULL, "%s", mt_emu_last_error_message());
    cr_assert_eq(mt_emu_get_last_error(), MT_EMU_SUCCESS, "cudaGetLastError clears the error");
    int in[40], out[40];
    for (int i = 0; i < 40; i++) in[i] = i;
    int *din = dev_copy(in, sizeof in);
    check_launch(simt_test_early_exit(din, dout, 40, 64), "after the deadlock");
    to_host(out, dout, sizeof out);
    for (int i = 0; i < 40; i++) cr_assert_eq(out[i], 39 - i);
    mt_emu_free(din);
    mt_emu_free(dout);
}

SIMT_TEST(misuse_is_reported)
{
    int *dout = dev_alloc(256 * sizeof(int));
    int rc = simt_test_bad_mask(dout);
    cr_assert_eq(rc, MT_EMU_ERROR_LAUNCH_FAILURE, "%s", mt_emu_error_string(rc));
    cr_assert(strstr(mt_emu_last_error_message(), "does not name its own lane") != NULL, "%s", mt_emu_last_error_message());
    rc = simt_test_trap(dout);
    cr_assert_eq(rc, MT_EMU_ERROR_ASSERT, "%s", mt_emu_error_string(rc));
    cr_assert(strstr(mt_emu_last_error_message(), "block (1,0,0)") != NULL, "%s", mt_emu_last_error_message());
    rc = simt_test_bad_config(dout);
    cr_assert_eq(rc, MT_EMU_ERROR_INVALID_CONFIGURATION, "%s", mt_emu_error_string(rc));
    void *p = (void *)1;
    cr_assert_eq(mt_emu_malloc(&p, 0), MT_EMU_SUCCESS);
    cr_assert_null(p);
    cr_assert_eq(mt_emu_memcpy(dout, dout, 4, 7), MT_EMU_ERROR_INVALID_VALUE);
    mt_emu_free(dout);
}

/* ---------------------------------------------------------------- stress (timed, printed, not asserted) */
SIMT_TEST(stress_512_blocks_of_256_threads)
{
    enum { BLOCKS = 512, B = 256, N = BLOCKS * B, ROUNDS = 4 };   /* 8 barriers */
    int *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out), *ref = malloc(N * sizeof *ref);
    cr_assert(in && out && ref);
    for (int i = 0; i < N; i++) in[i] = (i * 2654435761u) % 1000;
    for (int b = 0; b < BLOCKS; b++) {
        int v[B], s[B];
        for (int t = 0; t < B; t++) v[t] = in[b * B + t];
        for (int r = 0; r < ROUNDS; r++) {
            memcpy(s, v, sizeof s);
            for (int t = 0; t < B; t++) v[t] = s[(t + r + 1) % B] + r;
        }
        memcpy(ref + b * B, v, sizeof v);
    }
    int *din = dev_copy(in, N * sizeof *in), *dout = dev_alloc(N * sizeof *out);
    int nthreads = mt_emu_get_threads();
    for (int threads = 1; threads <= 2; threads++) {
        mt_emu_set_threads(threads == 1 ? 1 : nthreads > 1 ? nthreads : 2);
        dev_zero(dout, N * sizeof *out);
        mt_emu_reset_stats();
        double t0 = now_s();
        check_launch(simt_test_stress(din, dout, BLOCKS, B, ROUNDS), "stress");
        double dt = now_s() - t0;
        mt_emu_stats st;
        mt_emu_get_stats(&st);
        to_host(out, dout, N * sizeof *out);
        for (int i = 0; i < N; i++) cr_assert_eq(out[i], ref[i], "out[%d] = %d, expected %d", i, out[i], ref[i]);
        cr_assert_eq(st.block_barriers, (uint64_t)BLOCKS * 2 * ROUNDS);
        printf("simt stress: %d blocks x %d threads x %d barriers on %d OS thread(s): %.1f ms, "
               "%llu switches, %.1f ns per thread-barrier\n", BLOCKS, B, 2 * ROUNDS, mt_emu_get_threads(), 1e3 * dt,
               (unsigned long long)st.switches, 1e9 * dt / ((double)N * 2 * ROUNDS));
    }

    /* the bare cost of a switch: barriers with no work between them */
    mt_emu_set_threads(1);
    mt_emu_reset_stats();
    double t0 = now_s();
    check_launch(simt_test_sync_only(16, 256, 256), "sync only");
    double dt = now_s() - t0;
    mt_emu_stats st;
    mt_emu_get_stats(&st);
    printf("simt switch cost: %llu switches in %.1f ms: %.1f ns per switch (%s)\n", (unsigned long long)st.switches,
           1e3 * dt, 1e9 * dt / (double)st.switches, mt_emu_switch_kind());
    fflush(stdout);
    mt_emu_free(din);
    mt_emu_free(dout);
    free(in);
    free(out);
    free(ref);
}
#endif /* MYTORCH_SIMT_TEST_KERNELS */
