/*
 * bench.h - the benchmark harness: timing, statistics and JSON output for the
 * standard workloads of ../shared/BENCH.md (see docs/bench.md).
 *
 * A workload times a step function: warm-up iterations first (not timed),
 * then `iters` timed iterations; it reports the median, min and max in
 * milliseconds, a throughput metric computed from the median, and the peak
 * resident memory of the process (getrusage ru_maxrss).
 */
#ifndef MT_BENCH_H
#define MT_BENCH_H

#include <stdio.h>
#include "engine/mytorch.h"

typedef struct mt_bench_opts {
    int iters;          /* timed iterations; 0: the workload's default */
    int warmup;         /* untimed iterations first; -1: the workload's default */
    int threads;        /* CPU threads for kernels and the BLAS; 0: leave as configured */
    const char *device; /* "cpu" */
    uint64_t seed;      /* random inputs */
} mt_bench_opts;

typedef struct mt_bench_result {
    char name[64];
    char impl[16];      /* "mytorch", or "cblas" for the direct BLAS call */
    const char *device;
    int threads, iters, warmup;
    double median_ms, min_ms, max_ms;
    const char *metric; /* "GFLOP/s", "samples/s" */
    double value;       /* the metric at the median time */
    double peak_rss_mb;
} mt_bench_result;

/* One iteration of a workload; returns MT_OK or an error (mt_last_error). */
typedef mt_status (*mt_bench_step_fn)(void *ctx);

/* Runs warmup + iters calls of step and fills the timing fields of r (and
   r->iters, r->warmup, r->peak_rss_mb). Stops at the first error. */
mt_status mt_bench_time(mt_bench_step_fn step, void *ctx, int warmup, int iters, mt_bench_result *r);

/* Wall-clock time in seconds (CLOCK_MONOTONIC). */
double mt_bench_now(void);
/* Peak resident set size of the process in MiB. */
double mt_bench_peak_rss_mb(void);
/* Applies opts->threads to mytorch's kernels and to the BLAS; returns the
   thread count in effect. */
int mt_bench_set_threads(int threads);

/* Writes results as a JSON array of objects, one per workload. */
void mt_bench_write_json(FILE *f, const mt_bench_result *results, int n);

/* ---------------------------------------------------------------- workloads */
/* Each appends up to max_results results; returns how many (-1 on error). */
typedef int (*mt_bench_workload_fn)(const mt_bench_opts *opts, mt_bench_result *results, int max_results);

typedef struct mt_bench_workload {
    const char *name;
    const char *summary;
    int default_iters, default_warmup;
    mt_bench_workload_fn run;
} mt_bench_workload;

/* The registered workloads, terminated by an entry with name == NULL. */
extern const mt_bench_workload mt_bench_workloads[];
const mt_bench_workload *mt_bench_find(const char *name);

int mt_bench_gemm(const mt_bench_opts *opts, mt_bench_result *results, int max_results);
int mt_bench_mlp_speech(const mt_bench_opts *opts, mt_bench_result *results, int max_results);

#endif
