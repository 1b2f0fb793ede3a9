/*
 * cli_bench.c - `mytorch bench <name>`: runs a standard workload of
 * BENCH.md (bench/) and prints its results as JSON on stdout (and to --out).
 */
#include "app/cli_common.h"

#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

static void describe(char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size,
        "Runs a standard workload of BENCH.md on random inputs of its shapes (fixed seed)\n"
        "and prints one JSON object per measurement: the median, min and max time of the\n"
        "timed iterations after warm-up, a throughput metric and the peak resident memory.\n"
        "--device cuda times with events and adds the achieved rate against the GPU's peak;\n"
        "--device cuda-emu (the CUDA kernels on the SIMT emulator) times nothing: each\n"
        "workload runs once and compares a few values with the CPU (\"metric\": \"check\").\n"
        "mlp_speech_data times mlp_speech's step fed by the frame loader from --data DIR, a\n"
        "corpus made by `mytorch data speech`, and adds the time the step waited for data.\n\n"
        "workloads:\n");
    for (const mt_bench_workload *w = mt_bench_workloads; w->name && used < size; w++)
        used += (size_t)snprintf(buf + used, size - used, "  %-16s %s (default --iters %d --warmup %d)\n",
                                 w->name, w->summary, w->default_iters, w->default_warmup);
}

int mt_cli_bench(int argc, char **argv)
{
    int iters = 0, warmup = -1, threads = 0;
    uint64_t seed = 0;
    const char *out = NULL, *device = "cpu", *data = NULL;
    const mt_cli_option options[] = {
        { "iters",   MT_CLI_INT,    &iters,   1, 1e6, "N", "timed iterations (default: per workload)" },
        { "warmup",  MT_CLI_INT,    &warmup,  0, 1e6, "N", "untimed warm-up iterations (default: per workload)" },
        { "threads", MT_CLI_INT,    &threads, 1, 1024, "T", "CPU threads for kernels and the BLAS (default: as configured)" },
        { "seed",    MT_CLI_U64,    &seed,    1, 0, "S", "seed of the random inputs (default 0)" },
        { "device",  MT_CLI_STRING, &device,  1, 0, "DEV", "cpu (default), cuda, cuda:N or cuda-emu" },
        { "data",    MT_CLI_STRING, &data,    1, 0, "DIR", "mlp_speech_data: the corpus (from `mytorch data speech`)" },
        { "out",     MT_CLI_STRING, &out,     1, 0, "FILE", "also write the JSON to FILE" },
        { NULL, 0, NULL, 0, 0, NULL, NULL },
    };
    char description[4096];
    describe(description, sizeof description);
    const mt_cli_command cmd = { "mytorch bench", "<name> [options]", description, options, 1, 1, "workload name" };
    const char *pos[1];
    int n_pos = 0;
    int rc = mt_cli_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc == MT_CLI_HELP) return MT_CLI_OK;
    if (rc != MT_CLI_OK) return rc;

    const mt_bench_workload *w = mt_bench_find(pos[0]);
    if (!w) {
        char names[256] = "";
        for (const mt_bench_workload *x = mt_bench_workloads; x->name; x++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "", x->name);
        return mt_cli_usage_error(&cmd, "unknown workload '%s' (workloads: %s)", pos[0], names);
    }
    mt_device dev;
    if (mt_device_from_string(device, &dev) != MT_OK)
        return mt_cli_usage_error(&cmd, "'%s' is not a device (cpu, cuda, cuda:N, cuda-emu)", device);
    /* the workloads' tensors are made on it */
    if (mt_set_default_device(dev) != MT_OK) {
        fprintf(stderr, "mytorch bench %s: %s\n", w->name, mt_last_error());
        return MT_CLI_FAIL;
    }

    FILE *fout = NULL;
    if (out && !(fout = fopen(out, "w"))) {
        perror(out);
        return MT_CLI_FAIL;
    }
    mt_bench_opts opts = {
        .iters = iters > 0 ? iters : w->default_iters,
        .warmup = warmup >= 0 ? warmup : w->default_warmup,
        .threads = threads, .device = device, .dev = dev, .seed = seed, .data_dir = data,
    };
    if (dev.type == MT_DEVICE_CUDA_EMU)
        fprintf(stderr, "bench %s on %s: one checked iteration against the cpu (nothing is timed)...\n", w->name, device);
    else
        fprintf(stderr, "bench %s on %s: %d warm-up + %d timed iterations...\n", w->name, device, opts.warmup, opts.iters);
    mt_bench_result results[16];
    int n = w->run(&opts, results, (int)(sizeof results / sizeof results[0]));
    if (n < 0) {
        fprintf(stderr, "mytorch bench %s: %s\n", w->name, mt_last_error());
        if (fout) { fclose(fout); remove(out); }
        return MT_CLI_FAIL;
    }
    mt_bench_write_json(stdout, results, n);
    fflush(stdout);
    /* A readable summary on stderr; mytorch against the direct BLAS call where both ran. */
    for (int i = 0; i < n; i++) {
        if (results[i].check) {
            fprintf(stderr, "  %-24s %-8s check %s: %d values, largest relative error %.3g (allowed %.3g)\n",
                    results[i].name, results[i].impl, results[i].passed ? "passed" : "FAILED", results[i].checked,
                    results[i].value, results[i].tolerance);
            continue;
        }
        fprintf(stderr, "  %-24s %-8s %10.2f %-9s (median %.3f ms, min %.3f, max %.3f)\n", results[i].name,
                results[i].impl, results[i].value, results[i].metric,
                results[i].median_ms, results[i].min_ms, results[i].max_ms);
        if (results[i].has_loader)
            fprintf(stderr, "  %-24s waited for data %.3f ms in %d steps (%.3f ms per step, longest %.3f ms)\n", "",
                    results[i].loader_wait_ms, results[i].iters, results[i].loader_wait_ms / results[i].iters,
                    results[i].loader_wait_max_ms);
        if (results[i].peak_unit && results[i].peak > 0)
            fprintf(stderr, "  %-24s %.3f %s = %.1f%% of the %s peak of %s (%.1f %s)\n", "", results[i].achieved,
                    results[i].peak_unit, 100.0 * results[i].achieved / results[i].peak, results[i].peak_kind,
                    results[i].device_name, results[i].peak, results[i].peak_unit);
        else if (results[i].peak_unit)
            fprintf(stderr, "  %-24s %.3f %s (no published %s peak known for %s)\n", "", results[i].achieved,
                    results[i].peak_unit, results[i].peak_kind, results[i].device_name);
        if (strcmp(results[i].impl, "cblas") == 0 && i > 0 && strcmp(results[i - 1].name, results[i].name) == 0)
            fprintf(stderr, "  %-24s mytorch / cblas time: %+.1f%%\n", "",
                    100.0 * (results[i - 1].median_ms / results[i].median_ms - 1.0));
    }
    if (fout) {
        mt_bench_write_json(fout, results, n);
        if (fclose(fout) != 0) { perror(out); return MT_CLI_FAIL; }
    }
    return MT_CLI_OK;
}
