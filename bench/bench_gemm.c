/*
 * bench_gemm.c - the `gemm` workload of BENCH.md: C = A.B (fp32) for
 * M=N=K=1024 and for M=1024, K=495, N=1024, through mytorch (mt_matmul, a new
 * output each step inside a step scope) and through a direct cblas_sgemm on
 * the same input buffers, so that mytorch's overhead is visible.
 *
 * On cuda: mt_matmul (cuBLAS) timed with events, after a check of C against
 * the CPU; TFLOP/s against the device's fp32 (or, with TF32 allowed, tf32
 * tensor-core) peak. On cuda-emu: the check only.
 */
#include "bench/bench.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mytorch/cuda.h"

typedef struct gemm_ctx {
    mt_tensor *a, *b;   /* [m, k], [k, n] */
    float *c;           /* [m, n] for the direct call */
    int64_t m, n, k;
} gemm_ctx;

static mt_status step_mytorch(void *p)
{
    gemm_ctx *g = p;
    mt_scope s = mt_scope_begin();
    mt_tensor *c = mt_matmul(g->a, g->b);
    mt_status st = c ? MT_OK : mt_last_status();
    mt_scope_end(s);
    return st;
}

static mt_status step_cblas(void *p)
{
    gemm_ctx *g = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)g->m, (blasint)g->n, (blasint)g->k,
                1.0f, mt_data_ptr(g->a), (blasint)g->k, mt_data_ptr(g->b), (blasint)g->n,
                0.0f, g->c, (blasint)g->n);
    return MT_OK;
}

/* C = A.B on the device against the CPU's product of the same inputs: every
   element, relative to sqrt(k) (the typical size of an element). */
static mt_status check_gemm(const gemm_ctx *g, bool tf32, mt_bench_result *r)
{
    mt_status st = MT_OK;
    mt_scope s = mt_scope_begin();
    mt_device cpu = mt_cpu();
    mt_tensor *c = mt_matmul(g->a, g->b);
    mt_tensor *ref = mt_matmul(mt_to_device(g->a, cpu), mt_to_device(g->b, cpu));
    int64_t n = g->m * g->n;
    double *got = malloc((size_t)n * sizeof *got), *want = malloc((size_t)n * sizeof *want);
    if (!c || !ref) st = mt_last_status();
    else if (!got || !want) st = mt_set_error(MT_ERR_MEMORY, "bench gemm: out of memory");
    else if ((st = mt_to_data(c, MT_F64, got)) == MT_OK && (st = mt_to_data(ref, MT_F64, want)) == MT_OK) {
        double tol = tf32 ? 5e-3 : 1e-5;
        st = mt_bench_compare(r, "C", got, want, (int)n, tol, sqrt((double)g->k));
    }
    free(got);
    free(want);
    mt_scope_end(s);
    return st;
}

int mt_bench_gemm(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    static const int64_t shapes[][3] = { { 1024, 1024, 1024 }, { 1024, 1024, 495 } };   /* m, n, k */
    int threads = mt_bench_set_threads(opts->threads);
    mt_device_type type = opts->dev.type;
    int count = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemm_ctx g = { .m = shapes[s][0], .n = shapes[s][1], .k = shapes[s][2] };
        mt_generator gen = mt_generator_new(opts->seed + s);
        g.a = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(g.m, g.k)), opts->dev);
        g.b = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(g.k, g.n)), opts->dev);
        mt_tensor *c = type == MT_DEVICE_CPU ? mt_bench_to(mt_zeros(MT_F32, MT_SHAPE(g.m, g.n)), opts->dev) : NULL;
        g.c = c ? mt_data_ptr(c) : NULL;
        if (!g.a || !g.b || (type == MT_DEVICE_CPU && !g.c)) {
            mt_free(g.a); mt_free(g.b); mt_free(c);
            return -1;
        }
        double flop = 2.0 * (double)g.m * (double)g.n * (double)g.k;
        /* cpu: mytorch and the direct BLAS call, timed; cuda: a check, then
           mytorch timed; cuda-emu: the check only */
        const char *impls[] = { "mytorch", "cblas" };
        mt_bench_step_fn steps[] = { step_mytorch, step_cblas };
        int first = type == MT_DEVICE_CPU ? 0 : -1;
        int last = type == MT_DEVICE_CPU ? 1 : type == MT_DEVICE_CUDA ? 0 : -1;
        for (int i = first; i <= last && count < max_results; i++) {
            mt_bench_result *r = &results[count];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "gemm_m%lld_n%lld_k%lld",
                     (long long)g.m, (long long)g.n, (long long)g.k);
            snprintf(r->impl, sizeof r->impl, "%s", impls[i < 0 ? 0 : i]);
            r->device = opts->device;
            r->threads = threads;
            r->metric = type == MT_DEVICE_CPU ? "GFLOP/s" : "TFLOP/s";
            /* cuBLAS with TF32 rounds the inputs to 10-bit mantissas */
            bool tf32 = type == MT_DEVICE_CUDA && mt_get_allow_tf32();
            mt_status st = i < 0 ? check_gemm(&g, tf32, r)
                                 : mt_bench_time_on(opts->dev, steps[i], &g, opts->warmup, opts->iters, r);
            if (st != MT_OK) {
                mt_free(g.a); mt_free(g.b); mt_free(c);
                return -1;
            }
            if (i >= 0) {
                r->value = flop / (r->median_ms * 1e-3) / (type == MT_DEVICE_CPU ? 1e9 : 1e12);
                mt_bench_set_flop_rate(r, opts->dev, flop);
            }
            count++;
        }
        mt_free(g.a); mt_free(g.b); mt_free(c);
    }
    return count;
}
