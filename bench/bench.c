/*
 * bench.c - timing, statistics and JSON output for the benchmarks.
 */
#include "bench/bench.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

double mt_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double mt_bench_peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0;   /* Linux: kilobytes */
}

int mt_bench_set_threads(int threads)
{
    if (threads > 0) {
        mt_set_num_threads(threads);
        /* The BLAS may keep its own pool (OpenBLAS built with pthreads). */
        openblas_set_num_threads(threads);
    }
    return mt_get_num_threads();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

mt_status mt_bench_time(mt_bench_step_fn step, void *ctx, int warmup, int iters, mt_bench_result *r)
{
    if (!step || !r || iters <= 0 || warmup < 0)
        return mt_set_error(MT_ERR_ARGUMENT, "bench: need iters > 0 and warmup >= 0 (got %d, %d)", iters, warmup);
    double *ms = malloc((size_t)iters * sizeof *ms);
    if (!ms) return mt_set_error(MT_ERR_MEMORY, "bench: out of memory");
    for (int i = 0; i < warmup; i++) {
        mt_status st = step(ctx);
        if (st != MT_OK) { free(ms); return st; }
    }
    for (int i = 0; i < iters; i++) {
        double t0 = mt_bench_now();
        mt_status st = step(ctx);
        ms[i] = 1e3 * (mt_bench_now() - t0);
        if (st != MT_OK) { free(ms); return st; }
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    r->iters = iters;
    r->warmup = warmup;
    r->min_ms = ms[0];
    r->max_ms = ms[iters - 1];
    r->median_ms = iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]);
    r->peak_rss_mb = mt_bench_peak_rss_mb();
    free(ms);
    return MT_OK;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", (unsigned char)*s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

void mt_bench_write_json(FILE *f, const mt_bench_result *results, int n)
{
    fputs("[\n", f);
    for (int i = 0; i < n; i++) {
        const mt_bench_result *r = &results[i];
        fputs("  {\"name\": ", f);           json_string(f, r->name);
        fputs(", \"impl\": ", f);            json_string(f, r->impl);
        fputs(", \"device\": ", f);          json_string(f, r->device);
        fprintf(f, ", \"threads\": %d, \"iters\": %d, \"warmup\": %d", r->threads, r->iters, r->warmup);
        fprintf(f, ", \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f", r->median_ms, r->min_ms, r->max_ms);
        fputs(", \"metric\": ", f);          json_string(f, r->metric);
        fprintf(f, ", \"value\": %.2f, \"peak_rss_mb\": %.1f}%s\n", r->value, r->peak_rss_mb, i + 1 < n ? "," : "");
    }
    fputs("]\n", f);
}

const mt_bench_workload mt_bench_workloads[] = {
    { "gemm", "C = A.B, M=N=K=1024 and M=1024 K=495 N=1024; GFLOP/s, vs cblas_sgemm",
      20, 3, mt_bench_gemm },
    { "mlp_speech", "one AdamW training step of the 495-1024-1024-512-43 MLP, batch 1024; samples/s",
      10, 2, mt_bench_mlp_speech },
    { NULL, NULL, 0, 0, NULL },
};

const mt_bench_workload *mt_bench_find(const char *name)
{
    for (const mt_bench_workload *w = mt_bench_workloads; name && w->name; w++)
        if (strcmp(w->name, name) == 0) return w;
    return NULL;
}
