/*
 * bench_gemm.c - the `gemm` workload of BENCH.md: C = A.B (fp32) for
 * M=N=K=1024 and for M=1024, K=495, N=1024, through mytorch (mt_matmul, a new
 * output each step inside a step scope) and through a direct cblas_sgemm on
 * the same input buffers, so that mytorch's overhead is visible.
 */
#include "bench/bench.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

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

int mt_bench_gemm(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    static const int64_t shapes[][3] = { { 1024, 1024, 1024 }, { 1024, 1024, 495 } };   /* m, n, k */
    int threads = mt_bench_set_threads(opts->threads);
    int count = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemm_ctx g = { .m = shapes[s][0], .n = shapes[s][1], .k = shapes[s][2] };
        mt_generator gen = mt_generator_new(opts->seed + s);
        g.a = mt_randn(&gen, MT_F32, MT_SHAPE(g.m, g.k));
        g.b = mt_randn(&gen, MT_F32, MT_SHAPE(g.k, g.n));
        mt_tensor *c = mt_zeros(MT_F32, MT_SHAPE(g.m, g.n));
        g.c = c ? mt_data_ptr(c) : NULL;
        if (!g.a || !g.b || !g.c) {
            mt_free(g.a); mt_free(g.b); mt_free(c);
            return -1;
        }
        double flop = 2.0 * (double)g.m * (double)g.n * (double)g.k;
        const char *impls[] = { "mytorch", "cblas" };
        mt_bench_step_fn steps[] = { step_mytorch, step_cblas };
        for (int i = 0; i < 2 && count < max_results; i++) {
            mt_bench_result *r = &results[count];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "gemm_m%lld_n%lld_k%lld",
                     (long long)g.m, (long long)g.n, (long long)g.k);
            snprintf(r->impl, sizeof r->impl, "%s", impls[i]);
            r->device = "cpu";
            r->threads = threads;
            r->metric = "GFLOP/s";
            if (mt_bench_time(steps[i], &g, opts->warmup, opts->iters, r) != MT_OK) {
                mt_free(g.a); mt_free(g.b); mt_free(c);
                return -1;
            }
            r->value = flop / (r->median_ms * 1e-3) / 1e9;
            count++;
        }
        mt_free(g.a); mt_free(g.b); mt_free(c);
    }
    return count;
}
