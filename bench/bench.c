/*
 * bench.c - timing, statistics and JSON output for the benchmarks.
 */
#include "bench/bench.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mytorch/cuda.h"

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

/* Sorts the iterations' times ms[iters] and fills r's median, min, max,
   counts and the process's peak memory. */
static void summarize(double *ms, int warmup, int iters, mt_bench_result *r)
{
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    r->iters = iters;
    r->warmup = warmup;
    r->min_ms = ms[0];
    r->max_ms = ms[iters - 1];
    r->median_ms = iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]);
    r->peak_rss_mb = mt_bench_peak_rss_mb();
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
        double t0 = mt_clock_seconds();
        mt_status st = step(ctx);
        ms[i] = 1e3 * (mt_clock_seconds() - t0);
        if (st != MT_OK) { free(ms); return st; }
    }
    summarize(ms, warmup, iters, r);
    free(ms);
    return MT_OK;
}

/* One iteration's time on a CUDA device: events recorded around it on the
   current stream. */
static mt_status time_cuda_iteration(mt_bench_step_fn step, void *ctx, mt_event *start, mt_event *end, double *ms)
{
    mt_status st = mt_event_record(start, NULL);
    if (st == MT_OK) st = step(ctx);
    if (st == MT_OK) st = mt_event_record(end, NULL);
    float elapsed = 0;
    if (st == MT_OK) st = mt_event_elapsed(start, end, &elapsed);   /* waits for end */
    *ms = elapsed;
    return st;
}

mt_status mt_bench_time_on(mt_device device, mt_bench_step_fn step, void *ctx, int warmup, int iters,
                           mt_bench_result *r)
{
    if (device.type != MT_DEVICE_CUDA) return mt_bench_time(step, ctx, warmup, iters, r);
    if (!step || !r || iters <= 0 || warmup < 0)
        return mt_set_error(MT_ERR_ARGUMENT, "bench: need iters > 0 and warmup >= 0 (got %d, %d)", iters, warmup);
    double *ms = malloc((size_t)iters * sizeof *ms);
    mt_event *start = mt_event_create(device), *end = mt_event_create(device);
    mt_status st = ms && start && end ? MT_OK
                 : ms ? mt_last_status() : mt_set_error(MT_ERR_MEMORY, "bench: out of memory");
    for (int i = 0; i < warmup && st == MT_OK; i++) st = step(ctx);
    if (st == MT_OK) st = mt_stream_synchronize(NULL);
    for (int i = 0; i < iters && st == MT_OK; i++) st = time_cuda_iteration(step, ctx, start, end, &ms[i]);
    if (st == MT_OK) summarize(ms, warmup, iters, r);
    mt_event_destroy(start);
    mt_event_destroy(end);
    free(ms);
    return st;
}

/* ---------------------------------------------------------------- device peaks */
/* Published dense peaks (NVIDIA's datasheets; the tensor-core figures without
   sparsity), matched against the device's name in this order. */
static const struct { const char *match; double fp32, tf32; } known_peaks[] = {
    { "H100 PCIe", 51.2, 378.0 },
    { "H100 NVL", 60.0, 417.5 },
    { "H100", 66.9, 494.7 },      /* SXM5: "NVIDIA H100 80GB HBM3" */
    { "H200", 66.9, 494.7 },
    { "H800", 66.9, 494.7 },
    { "A100", 19.5, 156.0 },
    { "A800", 19.5, 156.0 },
    { "L40S", 91.6, 183.0 },
    { "A10", 31.2, 62.5 },
};

mt_status mt_bench_cuda_peaks(int index, mt_bench_peaks *out)
{
    memset(out, 0, sizeof *out);
    mt_cuda_device_props p;
    mt_status st = mt_cuda_get_device_properties(index, &p);
    if (st != MT_OK) return st;
    snprintf(out->name, sizeof out->name, "%.63s", p.name);
    out->dram_gbs = p.peak_bandwidth_gbs;
    for (size_t i = 0; i < sizeof known_peaks / sizeof known_peaks[0]; i++)
        if (strstr(p.name, known_peaks[i].match)) {
            out->fp32_tflops = known_peaks[i].fp32;
            out->tf32_tflops = known_peaks[i].tf32;
            break;
        }
    return MT_OK;
}

static bool device_peaks(mt_bench_result *r, mt_device device, mt_bench_peaks *pk)
{
    if (device.type != MT_DEVICE_CUDA || r->median_ms <= 0) return false;
    if (mt_bench_cuda_peaks(device.index, pk) != MT_OK) { mt_clear_error(); return false; }
    snprintf(r->device_name, sizeof r->device_name, "%.63s", pk->name);
    return true;
}

void mt_bench_set_flop_rate(mt_bench_result *r, mt_device device, double flop)
{
    mt_bench_peaks pk;
    if (!device_peaks(r, device, &pk)) return;
    bool tf32 = mt_get_allow_tf32();
    r->achieved = flop / (r->median_ms * 1e-3) / 1e12;
    r->peak = tf32 ? pk.tf32_tflops : pk.fp32_tflops;
    r->peak_unit = "TFLOP/s";
    r->peak_kind = tf32 ? "tf32 tensor" : "fp32";
}

void mt_bench_set_byte_rate(mt_bench_result *r, mt_device device, double bytes)
{
    mt_bench_peaks pk;
    if (!device_peaks(r, device, &pk)) return;
    r->achieved = bytes / (r->median_ms * 1e-3) / 1e9;
    r->peak = pk.dram_gbs;
    r->peak_unit = "GB/s";
    r->peak_kind = "dram";
}

/* ---------------------------------------------------------------- checks */
mt_tensor *mt_bench_to(mt_tensor *t, mt_device device)
{
    mt_tensor *m = mt_to_device(t, device);
    if (m != t) mt_free(t);
    return m;
}

mt_status mt_bench_compare(mt_bench_result *r, const char *what, const double *got, const double *want, int n,
                           double tol, double floor)
{
    double worst = 0;
    int at = 0;
    bool nan = false;
    for (int i = 0; i < n; i++) {
        double err = fabs(got[i] - want[i]) / fmax(fabs(want[i]), floor);
        if (isnan(err)) { nan = true; at = i; break; }
        if (err > worst) { worst = err; at = i; }
    }
    r->check = true;
    r->metric = "check";
    r->iters = 1;
    r->warmup = 0;
    r->checked = n;
    r->tolerance = tol;
    r->value = nan ? NAN : worst;
    r->passed = !nan && worst <= tol;
    r->peak_rss_mb = mt_bench_peak_rss_mb();
    if (r->passed) return MT_OK;
    return mt_set_error(MT_ERR_STATE, "bench %s: %s on %s differs from the cpu: value %d is %.9g, cpu %.9g "
                        "(relative error %.3g, allowed %.3g)", r->name, what, r->device, at, got[n ? at : 0],
                        want[n ? at : 0], nan ? NAN : worst, tol);
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
        if (r->device_name[0]) { fputs(", \"device_name\": ", f); json_string(f, r->device_name); }
        fprintf(f, ", \"threads\": %d, \"iters\": %d, \"warmup\": %d", r->threads, r->iters, r->warmup);
        if (r->check) {
            /* a check is never timed */
            fputs(", \"metric\": \"check\"", f);
            if (isfinite(r->value)) fprintf(f, ", \"value\": %.3g", r->value);
            else fputs(", \"value\": null", f);
            fprintf(f, ", \"tolerance\": %.3g, \"checked\": %d, \"passed\": %s",
                    r->tolerance, r->checked, r->passed ? "true" : "false");
        } else {
            fprintf(f, ", \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f", r->median_ms, r->min_ms, r->max_ms);
            fputs(", \"metric\": ", f);          json_string(f, r->metric);
            fprintf(f, ", \"value\": %.2f", r->value);
            if (r->peak_unit) {
                fprintf(f, ", \"achieved\": %.3f, \"peak_unit\": ", r->achieved);
                json_string(f, r->peak_unit);
                fputs(", \"peak_kind\": ", f);
                json_string(f, r->peak_kind);
                if (r->peak > 0) fprintf(f, ", \"peak\": %.1f, \"fraction_of_peak\": %.4f", r->peak, r->achieved / r->peak);
                else fputs(", \"peak\": null, \"fraction_of_peak\": null", f);
            }
        }
        if (r->has_loader)
            fprintf(f, ", \"loader_wait_ms\": %.4f, \"loader_wait_max_ms\": %.4f, \"data_frames\": %lld",
                    r->loader_wait_ms, r->loader_wait_max_ms, (long long)r->data_frames);
        fprintf(f, ", \"peak_rss_mb\": %.1f}%s\n", r->peak_rss_mb, i + 1 < n ? "," : "");
    }
    fputs("]\n", f);
}

const mt_bench_workload mt_bench_workloads[] = {
    { "gemm", "C = A.B, M=N=K=1024 and M=1024 K=495 N=1024; GFLOP/s, vs cblas_sgemm",
      20, 3, mt_bench_gemm },
    { "layernorm", "layer norm over 512 features of 32768 rows, fwd+bwd and fwd alone; GB/s moved (and ms)",
      20, 3, mt_bench_layernorm },
    { "mlp_speech", "one AdamW training step of the 495-1024-1024-512-43 MLP, batch 1024; samples/s",
      10, 2, mt_bench_mlp_speech },
    { "mlp_speech_data", "mlp_speech's step fed by the frame loader from a corpus (needs --data DIR); samples/s",
      20, 2, mt_bench_mlp_speech_data },
    { "conv3x3", "conv2d N=32 C=64 56x56 k3 pad 1: forward, and forward + backward; GFLOP/s (and ms)",
      10, 2, mt_bench_conv3x3 },
    { "dwconv7x7", "depthwise conv2d N=32 C=96 28x28 k7 pad 3 groups 96: forward, and forward + backward; GFLOP/s",
      10, 2, mt_bench_dwconv7x7 },
    { "resnet18_face", "one SGD training step of ResNet-18, batch 32 of 3x112x112, 7000 classes; images/s",
      5, 1, mt_bench_resnet18_face },
    { "convnext_face", "one AdamW training step of ConvNeXt (2,2,6,2)x(48..384), batch 32 of 3x112x112, 7000 classes; images/s",
      5, 1, mt_bench_convnext_face },
    { NULL, NULL, 0, 0, NULL },
};

const mt_bench_workload *mt_bench_find(const char *name)
{
    for (const mt_bench_workload *w = mt_bench_workloads; name && w->name; w++)
        if (strcmp(w->name, name) == 0) return w;
    return NULL;
}
