/*
 * bench.h - the benchmark harness: timing, statistics and JSON output for the
 * standard workloads of ../shared/BENCH.md (see docs/bench.md).
 *
 * A workload times a step function: warm-up iterations first (not timed),
 * then `iters` timed iterations; it reports the median, min and max in
 * milliseconds, a throughput metric computed from the median, and the peak
 * resident memory of the process (getrusage ru_maxrss).
 *
 * Devices (--device, docs/bench.md): on cpu the workloads are timed with the
 * wall clock; on cuda with events on the stream, and each result also gives
 * the achieved TFLOP/s or GB/s against the device's peak; on cuda-emu (the
 * CUDA kernels run by the SIMT emulator on the CPU) nothing is timed: each
 * workload runs once and compares a few values with the CPU ("metric":
 * "check"). On cuda that check runs too, before the timing.
 */
#ifndef MT_BENCH_H
#define MT_BENCH_H

#include <stdio.h>
#include "mytorch/mytorch.h"

typedef struct mt_bench_opts {
    int iters;          /* timed iterations; 0: the workload's default */
    int warmup;         /* untimed iterations first; -1: the workload's default */
    int threads;        /* CPU threads for kernels and the BLAS; 0: leave as configured */
    const char *device; /* as given: "cpu", "cuda", "cuda:1", "cuda-emu" */
    mt_device dev;      /* the device it names (the default device while the bench runs) */
    uint64_t seed;      /* random inputs (mlp_speech_data: the loader's order) */
    const char *data_dir; /* mlp_speech_data: a corpus root from `mytorch data speech` */
} mt_bench_opts;

typedef struct mt_bench_result {
    char name[64];
    char impl[16];      /* "mytorch", or "cblas" for the direct BLAS call */
    const char *device;
    int threads, iters, warmup;
    double median_ms, min_ms, max_ms;
    const char *metric; /* "GFLOP/s", "TFLOP/s", "samples/s", "GB/s"; "check" for a check */
    double value;       /* the metric at the median time; a check: its largest relative error */
    double peak_rss_mb;
    /* a check (metric "check"): no time; values compared with the CPU */
    bool check, passed;
    int checked;        /* how many values were compared */
    double tolerance;   /* the largest relative error allowed */
    /* cuda: the achieved rate against the device's peak (0: unknown) */
    double achieved;    /* in peak_unit */
    double peak;
    const char *peak_unit;   /* "TFLOP/s" (fp32 or tf32, see peak_kind) or "GB/s" */
    const char *peak_kind;   /* "fp32", "tf32 tensor", "dram" */
    char device_name[64];    /* cuda: the GPU's name */
    /* mlp_speech_data: the frame loader's share of the timed iterations */
    bool has_loader;
    double loader_wait_ms;     /* time the step waited for its batch, summed over the timed iterations */
    double loader_wait_max_ms; /* the longest single wait */
    int64_t data_frames;       /* training frames (examples) in the corpus */
} mt_bench_result;

/* One iteration of a workload; returns MT_OK or an error (mt_last_error). */
typedef mt_status (*mt_bench_step_fn)(void *ctx);

/* Runs warmup + iters calls of step and fills the timing fields of r (and
   r->iters, r->warmup, r->peak_rss_mb). Stops at the first error. */
mt_status mt_bench_time(mt_bench_step_fn step, void *ctx, int warmup, int iters, mt_bench_result *r);
/* The same on device: cuda times each iteration with a pair of events on the
   current stream (the GPU's time, not the host's); other devices as above. */
mt_status mt_bench_time_on(mt_device device, mt_bench_step_fn step, void *ctx, int warmup, int iters,
                           mt_bench_result *r);

/* The published dense peaks of a CUDA device (0 where unknown): fp32 (CUDA
   cores) and tf32 tensor-core TFLOP/s, and DRAM GB/s (from the device's
   memory clock and bus width). */
typedef struct mt_bench_peaks {
    char name[64];
    double fp32_tflops, tf32_tflops, dram_gbs;
} mt_bench_peaks;
mt_status mt_bench_cuda_peaks(int index, mt_bench_peaks *out);
/* Fills r's device_name, achieved, peak, peak_unit and peak_kind for a
   workload of `flop` floating-point operations per iteration at r's median
   time on device (nothing unless device is cuda). The peak is the tf32
   tensor-core one when TF32 is allowed, else fp32. */
void mt_bench_set_flop_rate(mt_bench_result *r, mt_device device, double flop);
/* The same for a memory-bound workload moving `bytes` per iteration. */
void mt_bench_set_byte_rate(mt_bench_result *r, mt_device device, double bytes);

/* t on device: t itself when it is there, else a copy (t is freed). */
mt_tensor *mt_bench_to(mt_tensor *t, mt_device device);

/* Compares n values computed on the device with the CPU's: relative error
   |got - want| / max(|want|, floor); fills r as a check (metric "check",
   value = the largest error, passed = every error <= tol). Returns MT_OK, or
   MT_ERR_STATE with a message naming the worst value when the check fails. */
mt_status mt_bench_compare(mt_bench_result *r, const char *what, const double *got, const double *want, int n,
                           double tol, double floor);

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
int mt_bench_layernorm(const mt_bench_opts *opts, mt_bench_result *results, int max_results);
int mt_bench_mlp_speech(const mt_bench_opts *opts, mt_bench_result *results, int max_results);
int mt_bench_mlp_speech_data(const mt_bench_opts *opts, mt_bench_result *results, int max_results);
int mt_bench_conv3x3(const mt_bench_opts *opts, mt_bench_result *results, int max_results);
int mt_bench_dwconv7x7(const mt_bench_opts *opts, mt_bench_result *results, int max_results);
int mt_bench_resnet18_face(const mt_bench_opts *opts, mt_bench_result *results, int max_results);
int mt_bench_convnext_face(const mt_bench_opts *opts, mt_bench_result *results, int max_results);

/* mlp_speech's model (from the current seed) on device, in training mode, and
   its AdamW; the caller frees both. */
mt_status mt_bench_mlp_speech_model(mt_device device, mt_module **net, mt_optimizer **opt);

#endif
