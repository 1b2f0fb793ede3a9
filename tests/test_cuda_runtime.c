/*
 * test_cuda_runtime.c - the CUDA host runtime (host/cuda_runtime.c), the cuda
 * backend's registration (host/backend.c) and the caching allocator's stream
 * and out-of-memory paths (host/allocator.c).
 *
 * On a machine without a GPU (or without the toolkit): discovery says why
 * cuda is not available and nothing crashes; selecting cuda fails with that
 * reason; MYTORCH_DEVICE=cuda falls back to the cpu with one line on stderr
 * (checked in a child process); the allocator's stream bookkeeping runs
 * against fake streams installed on the cuda-emu pool; the row-major GEMM
 * operand swap is checked by running the column-major call it produces
 * through a CPU BLAS. Where a GPU is usable, the tests marked "gpu" run the
 * real paths (cuBLAS against the CPU, streams, events, pinned memory, the
 * allocator's cross-stream reuse) and otherwise skip, saying why.
 */
#include <criterion/criterion.h>

#include <cblas.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"
#include "mytorch/tensor.h"
#include "host/backend.h"
#include "host/cuda_runtime.h"
#include "host/runtime.h"

extern char **environ;

static const mt_device CUDA0 = { MT_DEVICE_CUDA, 0 };
static const mt_device EMU = { MT_DEVICE_CUDA_EMU, 0 };
static const mt_device CPU = { MT_DEVICE_CPU, 0 };

/* Skips a test that needs a usable GPU, saying why there is none. */
#define NEED_GPU()                                                                             \
    do {                                                                                       \
        const char *why_ = NULL;                                                               \
        if (!mt_device_available(CUDA0, &why_)) cr_skip_test("no usable CUDA device: %s", why_); \
    } while (0)

/* ---------------------------------------------------------------- discovery */
Test(cuda_runtime, discovery_never_fails_hard)
{
    const char *why = NULL;
    bool avail = mt_cuda_is_available(&why);
    if (avail) {
        cr_assert_null(why);
        cr_assert_gt(mt_cuda_device_count(), 0);
        mt_cuda_device_props p;
        cr_assert_eq(mt_cuda_get_device_properties(0, &p), MT_OK, "%s", mt_last_error());
        cr_assert_gt(p.sm_count, 0);
        cr_assert_gt(p.total_memory, 0);
        cr_assert_gt(p.cc_major, 0);
        cr_log_info("cuda: %s, cc %d.%d, %d SMs, %.1f GiB, %.0f GB/s peak", p.name, p.cc_major, p.cc_minor, p.sm_count,
                    (double)p.total_memory / (1 << 30), p.peak_bandwidth_gbs);
        return;
    }
    cr_assert_not_null(why);
    cr_assert(strncmp(why, "cuda: ", 6) == 0, "reason: %s", why);
    cr_assert_eq(mt_cuda_device_count(), 0);
    if (mt_cuda_built())   /* the toolkit's answer names the CUDA error */
        cr_assert(strstr(why, "(cudaError") != NULL || strstr(why, "no CUDA device") != NULL, "reason: %s", why);
    /* decided once: the same answer again */
    const char *why2 = NULL;
    cr_assert_not(mt_cuda_is_available(&why2));
    cr_assert_str_eq(why, why2);
    mt_cuda_device_props p;
    cr_assert_eq(mt_cuda_get_device_properties(0, &p), MT_ERR_DEVICE);
    cr_assert(strstr(mt_last_error(), why) != NULL, "%s", mt_last_error());
    cr_log_info("cuda is not available here: %s", why);
}

Test(cuda_runtime, unavailable_cuda_is_not_registered)
{
    const char *why = NULL, *cuda_why = NULL;
    if (mt_cuda_is_available(&cuda_why)) cr_skip_test("a GPU is usable here");
    cr_assert_not(mt_device_available(CUDA0, &why));
    cr_assert_str_eq(why, cuda_why);
    cr_assert_null(mt_backend_for(MT_DEVICE_CUDA));
    cr_assert_not(mt_cuda_backend_usable(0, NULL));
    /* an allocation on it says why */
    cr_assert_null(mt_device_alloc(CUDA0, 64));
    cr_assert_eq(mt_last_status(), MT_ERR_DEVICE);
    cr_assert(strstr(mt_last_error(), cuda_why) != NULL, "%s", mt_last_error());
    /* and so does a tensor */
    cr_assert_null(mt_empty_on(CUDA0, MT_F32, MT_SHAPE(2, 3)));
    cr_assert_eq(mt_last_status(), MT_ERR_DEVICE);
}

Test(cuda_runtime, set_default_device_to_cuda_fails_naming_the_reason)
{
    const char *why = NULL;
    if (mt_device_available(CUDA0, &why)) cr_skip_test("a GPU is usable here");
    mt_device before = mt_default_device();
    cr_assert_eq(mt_set_default_device(CUDA0), MT_ERR_DEVICE);
    cr_assert(strstr(mt_last_error(), "not available") != NULL, "%s", mt_last_error());
    cr_assert(strstr(mt_last_error(), why) != NULL, "%s", mt_last_error());
    mt_device after = mt_default_device();
    cr_assert_eq(after.type, before.type);
    /* cuda:N beyond the devices: also a clear error */
    cr_assert_eq(mt_set_default_device((mt_device){ MT_DEVICE_CUDA, 7 }), MT_ERR_DEVICE);
}

/* ---------------------------------------------------------------- MYTORCH_DEVICE, in a child process */
/* The child: reports the default device it chose to the file named by
   MT_TEST_CHILD_OUT. Passes trivially when not run as the child. */
Test(cuda_runtime, default_device_child)
{
    const char *out = getenv("MT_TEST_CHILD_OUT");
    if (!out) return;
    mt_device d = mt_runtime_default_device();
    FILE *f = fopen(out, "w");
    cr_assert_not_null(f);
    fprintf(f, "%d %d\n", (int)d.type, d.index);
    fclose(f);
}

/* Runs this test binary's default_device_child with MYTORCH_DEVICE=value;
   returns the chosen device type and the child's stderr. */
static int run_child(const char *value, char *err, size_t err_size)
{
    char out_path[] = "/tmp/mt_cuda_rt_out_XXXXXX", err_path[] = "/tmp/mt_cuda_rt_err_XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    cr_assert(out_fd >= 0 && err_fd >= 0);
    close(out_fd);

    /* the environment: ours, less MYTORCH_DEVICE and Criterion's worker
       marker (BXFI_MAP: a child carrying it takes itself for a sandboxed
       worker and aborts), plus the two variables */
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 3, sizeof *env);
    cr_assert_not_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "MYTORCH_DEVICE=", 15) != 0 && strncmp(environ[i], "MT_TEST_CHILD_OUT=", 18) != 0 &&
            strncmp(environ[i], "BXFI_", 5) != 0)
            env[k++] = environ[i];
    char dev_var[64], out_var[96];
    snprintf(dev_var, sizeof dev_var, "MYTORCH_DEVICE=%s", value);
    snprintf(out_var, sizeof out_var, "MT_TEST_CHILD_OUT=%s", out_path);
    env[k++] = dev_var;
    env[k++] = out_var;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = { "mytorch_tests", "--filter", "cuda_runtime/default_device_child", "--jobs", "1", NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    cr_assert_eq(rc, 0, "posix_spawn: %s", strerror(rc));
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);

    int type = -1, index = -1;
    FILE *f = fopen(out_path, "r");
    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "%d %d", &type, &index), 2);
    fclose(f);
    ssize_t got = pread(err_fd, err, err_size - 1, 0);
    err[got > 0 ? got : 0] = '\0';
    close(err_fd);
    unlink(out_path);
    unlink(err_path);
    return type;
}

static int count_occurrences(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

Test(cuda_runtime, mytorch_device_cuda_falls_back_to_cpu_with_one_line)
{
    static char err[16384];
    const char *why = NULL;
    bool gpu = mt_device_available(CUDA0, &why);
    int type = run_child("cuda", err, sizeof err);
    if (gpu) {
        cr_assert_eq(type, MT_DEVICE_CUDA);
        cr_assert_eq(count_occurrences(err, "MYTORCH_DEVICE"), 0, "stderr: %s", err);
        return;
    }
    cr_assert_eq(type, MT_DEVICE_CPU);
    cr_assert_eq(count_occurrences(err, "MYTORCH_DEVICE=cuda is not available"), 1, "stderr: %s", err);
    cr_assert(strstr(err, why) != NULL, "stderr: %s", err);
    cr_assert(strstr(err, "using cpu") != NULL, "stderr: %s", err);
    /* cuda-emu is taken as asked, silently */
    if (mt_cuda_emu_built()) {
        cr_assert_eq(run_child("cuda-emu", err, sizeof err), MT_DEVICE_CUDA_EMU);
        cr_assert_eq(count_occurrences(err, "MYTORCH_DEVICE"), 0, "stderr: %s", err);
    }
}

/* ---------------------------------------------------------------- the allocator's streams (fake) */
/* Fake streams on the cuda-emu pool: a stream is the address of an int; an
   event records which stream and whether the test said it has passed. */
static int stream_a, stream_b;
static void *fake_current;
static bool a_passed, b_passed;
static int events_made, events_released;
typedef struct fake_event { void *stream; } fake_event;

static void *fake_current_fn(void) { return fake_current; }
static void *fake_mark(void *stream)
{
    fake_event *e = malloc(sizeof *e);
    if (e) { e->stream = stream; events_made++; }
    return e;
}
static bool fake_passed(void *event)
{
    fake_event *e = event;
    return e->stream == &stream_a ? a_passed : e->stream == &stream_b ? b_passed : true;
}
static void fake_release(void *event) { free(event); events_released++; }
static const mt_alloc_stream_ops fake_ops = { fake_current_fn, fake_mark, fake_passed, fake_release };

Test(cuda_runtime, allocator_reuses_blocks_per_stream)
{
    if (!mt_backend_for(MT_DEVICE_CUDA_EMU)) cr_skip_test("the cuda-emu backend is not built (no C++ compiler)");
    mt_device_empty_cache(EMU);
    mt_device_set_stream_ops(MT_DEVICE_CUDA_EMU, &fake_ops);
    mt_memory_stats s0 = mt_device_memory_stats(EMU);

    /* same stream: at once */
    fake_current = &stream_a;
    void *p1 = mt_device_alloc(EMU, 1000);
    cr_assert_not_null(p1);
    mt_device_free(EMU, p1, 1000);
    void *again = mt_device_alloc(EMU, 1000);
    cr_assert_eq(again, p1);
    mt_memory_stats s1 = mt_device_memory_stats(EMU);
    cr_assert_eq(s1.cache_hits - s0.cache_hits, 1);
    cr_assert_eq(s1.cross_stream_reuses, s0.cross_stream_reuses);
    cr_assert_eq(events_made, 0, "a same-stream reuse needs no event");
    mt_device_free(EMU, p1, 1000);   /* freed on a */

    /* another stream, before a has passed the free: a new block */
    fake_current = &stream_b;
    void *p2 = mt_device_alloc(EMU, 1000);
    cr_assert_not_null(p2);
    cr_assert_neq(p2, p1);
    mt_memory_stats s2 = mt_device_memory_stats(EMU);
    cr_assert_eq(s2.raw_allocs - s1.raw_allocs, 1);
    cr_assert_eq(events_made, 1, "the block of stream a got an event");
    /* still not passed: the same event is asked again, none is added */
    void *p3 = mt_device_alloc(EMU, 1000);
    cr_assert(p3 != p1 && p3 != p2);
    cr_assert_eq(events_made, 1);
    mt_device_free(EMU, p3, 1000);   /* freed on b */
    mt_device_free(EMU, p2, 1000);   /* freed on b */

    /* b takes its own blocks first, then a's once a has passed */
    a_passed = true;
    void *q1 = mt_device_alloc(EMU, 1000);
    void *q2 = mt_device_alloc(EMU, 1000);
    cr_assert(q1 == p2 || q1 == p3);
    cr_assert(q2 == p2 || q2 == p3);
    mt_memory_stats s3 = mt_device_memory_stats(EMU);
    cr_assert_eq(s3.cross_stream_reuses, s0.cross_stream_reuses, "b's own blocks are not cross-stream reuses");
    void *q3 = mt_device_alloc(EMU, 1000);
    cr_assert_eq(q3, p1, "a's block once a has passed its event");
    mt_memory_stats s4 = mt_device_memory_stats(EMU);
    cr_assert_eq(s4.cross_stream_reuses - s0.cross_stream_reuses, 1);
    cr_assert_eq(events_released, 1, "the event goes with the reuse");
    cr_assert_eq(s4.raw_allocs - s0.raw_allocs, 3);

    /* a destroyed stream's blocks become the default stream's, events released */
    fake_current = &stream_b;
    void *d1 = mt_device_alloc(EMU, 5000);
    cr_assert_not_null(d1);
    mt_device_free(EMU, d1, 5000);   /* on b */
    fake_current = &stream_a;
    a_passed = b_passed = false;
    void *d2 = mt_device_alloc(EMU, 5000);   /* b not passed: a new block, b's gets an event */
    cr_assert_neq(d2, d1);
    int made = events_made, released = events_released;
    cr_assert_eq(made, 2);
    mt_device_forget_stream(MT_DEVICE_CUDA_EMU, &stream_b);
    cr_assert_eq(events_released, released + 1);
    fake_current = NULL;
    void *d3 = mt_device_alloc(EMU, 5000);   /* the default stream takes it at once */
    cr_assert_eq(d3, d1);
    cr_assert_eq(events_made, made, "no event for a same-stream reuse");
    mt_device_free(EMU, d3, 5000);
    mt_device_free(EMU, d2, 5000);
    fake_current = &stream_b;

    /* a block freed on b, looked at from a and not passed: released with the cache */
    mt_device_free(EMU, q1, 1000);
    fake_current = &stream_a;
    b_passed = false;
    void *r1 = mt_device_alloc(EMU, 1000);
    cr_assert_neq(r1, q1);
    cr_assert_eq(events_made, 3);
    mt_device_free(EMU, r1, 1000);
    mt_device_free(EMU, q2, 1000);
    mt_device_free(EMU, q3, 1000);
    mt_device_empty_cache(EMU);
    cr_assert_eq(events_released, events_made, "every event is released");
    mt_memory_stats s5 = mt_device_memory_stats(EMU);
    cr_assert_eq(s5.allocated, s0.allocated);
    cr_assert_eq(s5.reserved, 0);
    mt_device_set_stream_ops(MT_DEVICE_CUDA_EMU, NULL);
}

Test(cuda_runtime, allocator_without_streams_is_unchanged)
{
    /* cpu: one implicit stream, a freed block comes back at once */
    mt_memory_stats s0 = mt_device_memory_stats(CPU);
    void *p = mt_device_alloc(CPU, 3000);
    cr_assert_not_null(p);
    mt_device_free(CPU, p, 3000);
    void *q = mt_device_alloc(CPU, 3000);
    cr_assert_eq(q, p);
    mt_device_free(CPU, q, 3000);
    mt_memory_stats s1 = mt_device_memory_stats(CPU);
    cr_assert_geq(s1.cache_hits - s0.cache_hits, 1);
    cr_assert_eq(s1.cross_stream_reuses, 0);
    cr_assert_eq(s1.allocated, s0.allocated);
}

/* ---------------------------------------------------------------- out of memory */
Test(cuda_runtime, allocator_absurd_request_fails_with_a_message)
{
    if (!mt_backend_for(MT_DEVICE_CUDA_EMU)) cr_skip_test("the cuda-emu backend is not built (no C++ compiler)");
    void *keep = mt_device_alloc(EMU, 4096);
    cr_assert_not_null(keep);
    size_t absurd = (size_t)1 << 60;
    cr_assert_null(mt_device_alloc(EMU, absurd));
    cr_assert_eq(mt_last_status(), MT_ERR_MEMORY);
    const char *msg = mt_last_error();
    cr_assert(strstr(msg, "out of memory") != NULL, "%s", msg);
    cr_assert(strstr(msg, "1152921504606846976 bytes") != NULL, "%s", msg);
    cr_assert(strstr(msg, "cuda-emu") != NULL, "%s", msg);
    cr_assert(strstr(msg, "4096 allocated") != NULL, "%s", msg);
    cr_assert(strstr(msg, "reserved") != NULL, "%s", msg);
    /* the pool still works */
    mt_device_free(EMU, keep, 4096);
    void *again = mt_device_alloc(EMU, 4096);
    cr_assert_eq(again, keep);
    mt_device_free(EMU, again, 4096);
    /* SIZE_MAX does not wrap around the size classes */
    cr_assert_null(mt_device_alloc(CPU, SIZE_MAX));
    cr_assert_eq(mt_last_status(), MT_ERR_MEMORY);
}

Test(cuda_runtime, allocator_releases_the_cache_and_retries_once)
{
    if (!mt_backend_for(MT_DEVICE_CUDA_EMU)) cr_skip_test("the cuda-emu backend is not built (no C++ compiler)");
    const size_t mib = (size_t)1 << 20;
    mt_device_empty_cache(EMU);
    mt_device_set_memory_limit(EMU, 2 * mib);
    mt_memory_stats s0 = mt_device_memory_stats(EMU);
    cr_assert_eq(s0.reserved, 0);

    void *small = mt_device_alloc(EMU, mib / 2);   /* reserves 512 KiB */
    cr_assert_not_null(small);
    mt_device_free(EMU, small, mib / 2);           /* cached */
    void *big = mt_device_alloc(EMU, 2 * mib);     /* 512 KiB + 2 MiB > limit: the cache goes, then it fits */
    cr_assert_not_null(big, "%s", mt_last_error());
    mt_memory_stats s1 = mt_device_memory_stats(EMU);
    cr_assert_eq(s1.reserved, 2 * mib, "the cached block was released");
    cr_assert_eq(s1.allocated, 2 * mib);

    /* now nothing is cached and nothing fits */
    cr_assert_null(mt_device_alloc(EMU, 100));
    cr_assert_eq(mt_last_status(), MT_ERR_MEMORY);
    const char *msg = mt_last_error();
    cr_assert(strstr(msg, "100 bytes requested on cuda-emu") != NULL, "%s", msg);
    cr_assert(strstr(msg, "limit 2097152 bytes") != NULL, "%s", msg);
    cr_assert(strstr(msg, "2097152 allocated, 2097152 reserved") != NULL, "%s", msg);
    cr_assert_geq(s1.peak_allocated, 2 * mib);

    mt_device_free(EMU, big, 2 * mib);
    mt_device_set_memory_limit(EMU, 0);
    mt_device_empty_cache(EMU);
    cr_assert_eq(mt_device_memory_stats(EMU).reserved, 0);
}

/* ---------------------------------------------------------------- row-major GEMM through column-major BLAS */
static double frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}

/* The row-major definition, directly. */
static void rowmajor_reference(bool ta, bool tb, int m, int n, int k, double alpha, const double *a, int lda,
                               const double *b, int ldb, double beta, double *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++) {
                double av = ta ? a[l * lda + i] : a[i * lda + l];
                double bv = tb ? b[j * ldb + l] : b[l * ldb + j];
                s += av * bv;
            }
            c[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
        }
}

/* What cuBLAS would be asked: the mapped column-major call, run by the CPU BLAS. */
static void via_mapping(bool ta, bool tb, int m, int n, int k, double alpha, const double *a, int lda, int64_t sa,
                        const double *b, int ldb, int64_t sb, double beta, double *c, int ldc, int64_t sc, int batch)
{
    mt_gemm_colmajor g = mt_gemm_row_to_col_major(ta, tb, m, n, k, a, lda, sa, b, ldb, sb, ldc);
    for (int i = 0; i < batch; i++)
        cblas_dgemm(CblasColMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans,
                    (int)g.m, (int)g.n, (int)g.k, alpha, (const double *)g.a + i * g.stride_a, (int)g.lda,
                    (const double *)g.b + i * g.stride_b, (int)g.ldb, beta, c + i * sc, (int)g.ldc);
}

Test(cuda_runtime, gemm_row_major_mapping_matches_a_cpu_reference)
{
    const int shapes[][3] = { { 1, 1, 1 }, { 3, 5, 7 }, { 17, 4, 9 }, { 8, 33, 1 }, { 5, 6, 0 } };
    uint64_t seed = 42;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int t = 0; t < 4; t++)
            for (int pad = 0; pad < 2; pad++) {
                int m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
                bool ta = t & 1, tb = t & 2;
                int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
                int lda = acols + 3 * pad, ldb = bcols + 2 * pad, ldc = n + pad;
                if (lda == 0) lda = 1;
                if (ldb == 0) ldb = 1;
                const int batch = 3;
                int64_t sa = (int64_t)arows * lda + pad, sb = (int64_t)brows * ldb + 5 * pad, sc = (int64_t)m * ldc + pad;
                double *a = malloc(sizeof(double) * (size_t)(sa * batch + 1));
                double *b = malloc(sizeof(double) * (size_t)(sb * batch + 1));
                double *c0 = malloc(sizeof(double) * (size_t)(sc * batch + 1));
                double *c1 = malloc(sizeof(double) * (size_t)(sc * batch + 1));
                cr_assert(a && b && c0 && c1);
                for (int64_t i = 0; i < sa * batch + 1; i++) a[i] = frand(&seed);
                for (int64_t i = 0; i < sb * batch + 1; i++) b[i] = frand(&seed);
                for (int64_t i = 0; i < sc * batch + 1; i++) c0[i] = c1[i] = frand(&seed);
                double alpha = 0.75, beta = pad ? -0.5 : 0.0;
                for (int i = 0; i < batch; i++)
                    rowmajor_reference(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c0 + i * sc, ldc);
                via_mapping(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c1, ldc, sc, batch);
                for (int64_t i = 0; i < sc * batch + 1; i++)
                    cr_assert(fabs(c0[i] - c1[i]) <= 1e-12 * (1 + fabs(c0[i])),
                              "m=%d n=%d k=%d ta=%d tb=%d pad=%d: element %lld: %.17g vs %.17g", m, n, k, ta, tb, pad,
                              (long long)i, c0[i], c1[i]);
                free(a); free(b); free(c0); free(c1);
            }
}

Test(cuda_runtime, gemm_mapping_swaps_operands_and_keeps_their_flags)
{
    double a[1] = { 0 }, b[1] = { 0 };
    mt_gemm_colmajor g = mt_gemm_row_to_col_major(true, false, 2, 3, 4, a, 2, 8, b, 3, 12, 3);
    cr_assert_eq(g.a, (const void *)b);
    cr_assert_eq(g.b, (const void *)a);
    cr_assert_eq(g.trans_a, false);   /* B's flag */
    cr_assert_eq(g.trans_b, true);    /* A's flag */
    cr_assert_eq(g.m, 3);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.k, 4);
    cr_assert_eq(g.lda, 3);
    cr_assert_eq(g.ldb, 2);
    cr_assert_eq(g.stride_a, 12);
    cr_assert_eq(g.stride_b, 8);
    cr_assert_eq(g.ldc, 3);
    /* leading dimensions never below 1 (k == 0: nothing is read) */
    g = mt_gemm_row_to_col_major(false, false, 2, 3, 0, a, 0, 0, b, 3, 0, 3);
    cr_assert_eq(g.ldb, 1);
}

/* ---------------------------------------------------------------- the backend table */
Test(cuda_runtime, incomplete_tables_name_their_missing_families)
{
    char buf[512];
    cr_assert_eq(mt_backend_missing_entries(&mt_cpu_backend, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
    mt_backend half = mt_cpu_backend;
    half.fill = NULL;
    half.where = NULL;
    half.adam_step = NULL;
    cr_assert_eq(mt_backend_missing_entries(&half, buf, sizeof buf), 3);
    cr_assert_str_eq(buf, "elementwise (fill, where), optim (adam_step)");
    /* a short buffer is cut, never overrun */
    char small[8];
    cr_assert_eq(mt_backend_missing_entries(&half, small, sizeof small), 3);
    cr_assert_eq(strlen(small), sizeof small - 1);
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
    /* the real table: memory and cuBLAS always; kernels once their .cu exists */
    cr_assert_not_null(mt_cuda_backend.alloc);
    cr_assert_not_null(mt_cuda_backend.gemm);
    cr_assert_not_null(mt_cuda_backend.gemm_batched);
    int missing = mt_backend_missing_entries(&mt_cuda_backend, buf, sizeof buf);
    cr_log_info("cuda backend table: %d entries without a kernel%s%s", missing, missing ? ": " : "", buf);
    /* a table that lacks kernels is still used: the ops that need them fail (tests/test_partial_backends.c) */
#endif
}

Test(cuda_runtime, cublas_loads_on_demand_or_says_why)
{
    const char *why = NULL;
    bool ok = mt_cublas_load(&why);
    if (!mt_cuda_built()) {
        cr_assert_not(ok);
        cr_assert_not_null(why);
        return;
    }
    /* a toolkit machine normally has it; either way, no crash and a reason */
    if (ok) cr_assert_null(why);
    else cr_assert(why && strstr(why, "cuBLAS") != NULL, "%s", why ? why : "(null)");
    cr_log_info("cuBLAS: %s", ok ? "loaded" : why);
    cr_assert_eq(mt_cublas_load(NULL), ok, "decided once");
}

/* ---------------------------------------------------------------- flags */
Test(cuda_runtime, tf32_and_deterministic_flags)
{
    cr_assert_not(mt_get_allow_tf32(), "TF32 is off by default");
    cr_assert_not(mt_get_deterministic(), "deterministic mode is off by default");
    cr_assert_not(mt_set_allow_tf32(true));
    cr_assert(mt_get_allow_tf32());
    cr_assert(mt_set_allow_tf32(false));
    cr_assert_not(mt_set_deterministic(true));
    cr_assert(mt_get_deterministic());
    cr_assert(mt_set_deterministic(false));
    cr_assert_not(mt_get_deterministic());
}

/* ---------------------------------------------------------------- streams, events, pinned memory */
/* A small tensor on dev, filled through the backend and read back. */
static mt_tensor *filled_tensor(mt_device dev)
{
    mt_tensor *t = mt_empty_on(dev, MT_F32, MT_SHAPE(4, 5));
    if (!t) return NULL;
    cr_assert_eq(mt_backend_of(t)->fill(MT_F32, 20, mt_ptr(t), 2.5), MT_OK);
    float host[20];
    mt_backend_of(t)->to_host(host, mt_ptr(t), sizeof host);
    cr_assert_eq(mt_device_error_check(), MT_OK, "%s", mt_last_error());
    for (int i = 0; i < 20; i++) cr_assert_eq(host[i], 2.5f);
    return t;
}

static void stream_roundtrip(mt_device dev)
{
    mt_stream *s = mt_stream_create(dev);
    cr_assert_not_null(s, "%s", mt_last_error());
    cr_assert_eq(mt_stream_device(s).type, dev.type);
    cr_assert_null(mt_set_current_stream(s));
    cr_assert_eq(mt_current_stream(), s);
    mt_event *e0 = mt_event_create(dev), *e1 = mt_event_create(dev);
    cr_assert(e0 && e1, "%s", mt_last_error());
    float ms = -1;
    cr_assert_eq(mt_event_elapsed(e0, e1, &ms), MT_ERR_STATE, "never recorded");
    cr_assert_eq(mt_event_record(e0, NULL), MT_OK, "%s", mt_last_error());

    /* some work on the stream: a tensor filled and read back */
    mt_tensor *t = filled_tensor(dev);
    cr_assert_not_null(t, "%s", mt_last_error());
    cr_assert_eq(mt_stream_wait_event(s, e0), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_event_record(e1, s), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_event_synchronize(e1), MT_OK, "%s", mt_last_error());
    cr_assert(mt_event_query(e1));
    cr_assert_eq(mt_event_elapsed(e0, e1, &ms), MT_OK, "%s", mt_last_error());
    cr_assert_geq(ms, 0.0f);
    cr_assert_eq(mt_stream_synchronize(NULL), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_stream_synchronize(s), MT_OK, "%s", mt_last_error());
    mt_free(t);

    cr_assert_eq(mt_set_current_stream(NULL), s);
    mt_event_destroy(e0);
    mt_event_destroy(e1);
    cr_assert_eq(mt_stream_destroy(s), MT_OK, "%s", mt_last_error());
    cr_assert_null(mt_current_stream());
}

Test(cuda_runtime, streams_and_events_on_cpu_and_cuda_emu)
{
    stream_roundtrip(CPU);
    if (mt_backend_for(MT_DEVICE_CUDA_EMU)) stream_roundtrip(EMU);
}

Test(cuda_runtime, streams_and_events_on_unavailable_cuda_fail_cleanly)
{
    const char *why = NULL;
    if (mt_device_available(CUDA0, &why)) cr_skip_test("a GPU is usable here");
    cr_assert_null(mt_stream_create(CUDA0));
    cr_assert_eq(mt_last_status(), MT_ERR_DEVICE);
    cr_assert(strstr(mt_last_error(), why) != NULL, "%s", mt_last_error());
    cr_assert_null(mt_event_create(CUDA0));
    cr_assert_eq(mt_last_status(), MT_ERR_DEVICE);
    cr_assert_eq(mt_stream_synchronize(NULL), MT_OK);   /* nothing to wait for */
    cr_assert_eq(mt_stream_destroy(NULL), MT_OK);
    mt_event_destroy(NULL);
    /* events of one device type on another's stream */
    mt_stream *s = mt_stream_create(CPU);
    cr_assert_not_null(s);
    if (mt_backend_for(MT_DEVICE_CUDA_EMU)) {
        mt_event *e = mt_event_create(EMU);
        cr_assert_eq(mt_event_record(e, s), MT_ERR_DEVICE);
        cr_assert_eq(mt_stream_wait_event(s, e), MT_ERR_DEVICE);
        mt_event_destroy(e);
    }
    mt_stream_destroy(s);
    /* a host-to-device copy to it */
    char buf[8] = { 0 };
    cr_assert_eq(mt_copy_to_device_async(CUDA0, buf, buf, sizeof buf), MT_ERR_DEVICE);
}

Test(cuda_runtime, pinned_memory_and_async_copies)
{
    size_t n = 1000;
    unsigned char *p = mt_pinned_alloc(n);
    cr_assert_not_null(p, "%s", mt_last_error());
    cr_assert_eq((uintptr_t)p % 64, 0);
    cr_assert_eq(mt_pinned_is_page_locked(p), mt_cuda_is_available(NULL));
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7);
    mt_device dev = mt_device_available(CUDA0, NULL) ? CUDA0 : mt_backend_for(MT_DEVICE_CUDA_EMU) ? EMU : CPU;
    void *d = mt_device_alloc(dev, n);
    cr_assert_not_null(d);
    mt_event *done = mt_event_create(dev);
    cr_assert_not_null(done);
    cr_assert_eq(mt_copy_to_device_async(dev, d, p, n), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_event_record(done, NULL), MT_OK);
    cr_assert_eq(mt_event_synchronize(done), MT_OK);   /* now p may be reused */
    unsigned char back[1000];
    mt_backend_for(dev.type)->to_host(back, d, n);
    cr_assert_eq(mt_device_error_check(), MT_OK, "%s", mt_last_error());
    cr_assert_eq(memcmp(back, p, n), 0);
    mt_event_destroy(done);
    mt_device_free(dev, d, n);
    mt_pinned_free(p);
    mt_pinned_free(NULL);
    cr_assert_null(mt_pinned_alloc(SIZE_MAX));
    cr_assert_eq(mt_last_status(), MT_ERR_MEMORY);
}

/* ---------------------------------------------------------------- the real GPU paths */
static void gpu_gemm_case(mt_dtype dt, bool ta, bool tb, int m, int n, int k, int batch)
{
    const mt_backend *gpu = mt_backend_for(MT_DEVICE_CUDA);
    size_t es = mt_dtype_size(dt);
    int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
    int64_t sa = (int64_t)m * k, sb = (int64_t)k * n, sc = (int64_t)m * n;
    size_t na = (size_t)(sa * batch), nb = (size_t)(sb * batch), nc = (size_t)(sc * batch);
    double *ha = malloc(na * 8), *hb = malloc(nb * 8), *hc = malloc(nc * 8), *hr = malloc(nc * 8);
    cr_assert(ha && hb && hc && hr);
    uint64_t seed = 7;
    for (size_t i = 0; i < na; i++) ha[i] = frand(&seed);
    for (size_t i = 0; i < nb; i++) hb[i] = frand(&seed);
    for (size_t i = 0; i < nc; i++) hc[i] = hr[i] = frand(&seed);
    float *fa = malloc(na * 4), *fb = malloc(nb * 4), *fc = malloc(nc * 4);
    cr_assert(fa && fb && fc);
    for (size_t i = 0; i < na; i++) fa[i] = (float)ha[i];
    for (size_t i = 0; i < nb; i++) fb[i] = (float)hb[i];
    for (size_t i = 0; i < nc; i++) fc[i] = (float)hc[i];
    const void *src_a = dt == MT_F32 ? (void *)fa : (void *)ha, *src_b = dt == MT_F32 ? (void *)fb : (void *)hb;
    void *src_c = dt == MT_F32 ? (void *)fc : (void *)hc;
    void *da = mt_device_alloc(CUDA0, na * es), *db = mt_device_alloc(CUDA0, nb * es), *dc = mt_device_alloc(CUDA0, nc * es);
    cr_assert(da && db && dc, "%s", mt_last_error());
    gpu->from_host(da, src_a, na * es);
    gpu->from_host(db, src_b, nb * es);
    gpu->from_host(dc, src_c, nc * es);
    double alpha = 1.25, beta = -0.5;
    mt_status st = batch == 1 ? gpu->gemm(dt, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc)
                              : gpu->gemm_batched(dt, ta, tb, m, n, k, alpha, da, lda, sa, db, ldb, sb, beta, dc, ldc,
                                                  sc, batch);
    cr_assert_eq(st, MT_OK, "%s", mt_last_error());
    gpu->to_host(src_c, dc, nc * es);
    cr_assert_eq(mt_device_error_check(), MT_OK, "%s", mt_last_error());
    for (int i = 0; i < batch; i++)
        rowmajor_reference(ta, tb, m, n, k, alpha, ha + i * sa, lda, hb + i * sb, ldb, beta, hr + i * sc, ldc);
    double tol = dt == MT_F32 ? 1e-4 * (k + 1) : 1e-12 * (k + 1);
    for (size_t i = 0; i < nc; i++) {
        double got = dt == MT_F32 ? fc[i] : hc[i];
        cr_assert(fabs(got - hr[i]) <= tol * (1 + fabs(hr[i])), "%s ta=%d tb=%d m=%d n=%d k=%d batch=%d: [%zu] %g vs %g",
                  dt == MT_F32 ? "f32" : "f64", ta, tb, m, n, k, batch, i, got, hr[i]);
    }
    mt_device_free(CUDA0, da, na * es);
    mt_device_free(CUDA0, db, nb * es);
    mt_device_free(CUDA0, dc, nc * es);
    free(ha); free(hb); free(hc); free(hr); free(fa); free(fb); free(fc);
}

Test(cuda_runtime, gpu_cublas_gemm_matches_the_cpu)
{
    NEED_GPU();
    for (int t = 0; t < 4; t++) {
        gpu_gemm_case(MT_F32, t & 1, t & 2, 37, 29, 53, 1);
        gpu_gemm_case(MT_F64, t & 1, t & 2, 37, 29, 53, 1);
        gpu_gemm_case(MT_F32, t & 1, t & 2, 9, 17, 5, 4);
        gpu_gemm_case(MT_F64, t & 1, t & 2, 9, 17, 5, 4);
    }
    /* on a stream of its own (a handle of its own), with the math mode switched to TF32
       (which float64 ignores: the same tolerance holds) */
    mt_stream *s = mt_stream_create(CUDA0);
    cr_assert_not_null(s, "%s", mt_last_error());
    mt_set_current_stream(s);
    bool prev = mt_set_allow_tf32(true);
    gpu_gemm_case(MT_F64, false, true, 33, 65, 17, 1);
    mt_set_allow_tf32(prev);
    mt_set_current_stream(NULL);
    cr_assert_eq(mt_stream_destroy(s), MT_OK, "%s", mt_last_error());
}

Test(cuda_runtime, gpu_streams_events_and_the_allocator)
{
    NEED_GPU();
    stream_roundtrip(CUDA0);
    mt_cuda_device_props p;
    cr_assert_eq(mt_cuda_get_device_properties(0, &p), MT_OK, "%s", mt_last_error());
    cr_assert_gt(p.peak_bandwidth_gbs, 0.0);
    /* a block freed on one stream: reused there at once, elsewhere once passed */
    mt_stream *a = mt_stream_create(CUDA0), *b = mt_stream_create(CUDA0);
    cr_assert(a && b, "%s", mt_last_error());
    mt_set_current_stream(a);
    void *x = mt_device_alloc(CUDA0, 12345);
    cr_assert_not_null(x);
    mt_device_free(CUDA0, x, 12345);
    cr_assert_eq(mt_device_alloc(CUDA0, 12345), x);
    mt_device_free(CUDA0, x, 12345);
    cr_assert_eq(mt_stream_synchronize(a), MT_OK);
    mt_set_current_stream(b);
    mt_memory_stats s0 = mt_device_memory_stats(CUDA0);
    void *y = mt_device_alloc(CUDA0, 12345);   /* a is idle: its event passes at once */
    cr_assert_eq(y, x);
    cr_assert_eq(mt_device_memory_stats(CUDA0).cross_stream_reuses - s0.cross_stream_reuses, 1);
    mt_device_free(CUDA0, y, 12345);
    mt_set_current_stream(NULL);
    cr_assert_eq(mt_stream_destroy(a), MT_OK);
    cr_assert_eq(mt_stream_destroy(b), MT_OK);
    mt_device_empty_cache(CUDA0);
    /* out of memory on the real device: the message names the request */
    cr_assert_null(mt_device_alloc(CUDA0, p.total_memory * 2));
    cr_assert_eq(mt_last_status(), MT_ERR_MEMORY);
    cr_assert(strstr(mt_last_error(), "bytes requested on cuda") != NULL, "%s", mt_last_error());
    cr_assert_eq(mt_device_error_check(), MT_OK, "an out-of-memory is not a sticky device error: %s", mt_last_error());
}
