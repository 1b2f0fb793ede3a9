/*
 * test_op_coverage.c - every op definition has a harness case on every
 * backend that has its kernels (the model: ggml's test-backend-ops coverage).
 *
 * How it works (docs/architecture.md, "The op-coverage test"):
 *   1. every op definition is written with MT_OP_DEF, which lists it in a
 *      linker section: mt_op_defs() is the list of all of them;
 *   2. each passing mt_check_op (tests/harness.c) walks the tape of its case
 *      and, with MYTORCH_OP_COVERAGE_DIR set, appends one record per
 *      (backend, op definition) to a file in that folder: "checked", or
 *      "no-kernel" when the backend lacks a kernel the case needs;
 *   3. ctest runs the suite with that folder set (after emptying it), then
 *      this test alone with MYTORCH_OP_COVERAGE_REPORT=1: it prints the table
 *      op x backend (checked / no kernel / MISSING) and fails on a MISSING
 *      cell, or on a recorded op that MT_OP_DEF did not register.
 * Run without MYTORCH_OP_COVERAGE_REPORT (a plain ./mytorch_tests), the
 * report is skipped: the records of a partial run would prove nothing.
 *
 * Also here: the registry itself, and the records of a partial backend.
 */
#include "harness.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/internal.h"
#include "host/backend.h"

/* ---------------------------------------------------------------- the registry */
static bool registered(const char *name)
{
    size_t n;
    const mt_op_def *const *defs = mt_op_defs(&n);
    for (size_t i = 0; i < n; i++) if (strcmp(defs[i]->name, name) == 0) return true;
    return false;
}

Test(op_coverage, every_op_definition_is_registered)
{
    size_t n;
    const mt_op_def *const *defs = mt_op_defs(&n);
    cr_assert(n >= 30, "only %zu op definitions registered", n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_not_null(defs[i]);
        /* an op with several outputs registers its base, whose vjp is NULL (it has vjp_n) */
        cr_assert(defs[i]->name && (defs[i]->vjp || !defs[i]->jvp), "op definition %zu", i);
    }
    const char *some[] = { "add", "exp", "gelu", "softmax", "log_softmax", "matmul", "linear", "batch_norm",
                           "nll_loss", "dropout", "sum", "var", "concat", "to_dtype", "where", "max_dim", "min_dim" };
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) cr_assert(registered(some[i]), "%s", some[i]);
}

/* ---------------------------------------------------------------- the records */
enum { CELL_MISSING, CELL_NO_KERNEL, CELL_CHECKED };
#define MAX_BACKENDS 3
#define MAX_UNREGISTERED 16

typedef struct coverage {
    const char *backends[MAX_BACKENDS];
    int n_backends;
    size_t n_ops;
    const mt_op_def *const *ops;
    int (*cells)[MAX_BACKENDS];     /* [n_ops][n_backends] */
    char (*cases)[MAX_BACKENDS][48];  /* a case that checked the cell, or why there is no kernel */
    char unregistered[MAX_UNREGISTERED][64];
    int n_unregistered;
    int records;
} coverage;

static int backend_index(const coverage *cov, const char *name)
{
    for (int b = 0; b < cov->n_backends; b++) if (strcmp(cov->backends[b], name) == 0) return b;
    return -1;
}

/* Reads one file of records into cov. */
static void read_records(coverage *cov, const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char line[1200];
    while (fgets(line, sizeof line, f)) {
        char *fields[5] = { 0 }, *p = line;
        line[strcspn(line, "\n")] = '\0';
        for (int k = 0; k < 5 && p; k++) {
            fields[k] = p;
            p = strchr(p, '\t');
            if (p) *p++ = '\0';
        }
        cr_assert(fields[3] != NULL, "%s: malformed record \"%s\"", path, line);
        cov->records++;
        int b = backend_index(cov, fields[0]);
        if (b < 0) continue;   /* a backend not available to this run */
        bool found = false;
        for (size_t i = 0; i < cov->n_ops && !found; i++) {
            if (strcmp(cov->ops[i]->name, fields[2]) != 0) continue;
            found = true;
            int state = strcmp(fields[1], "checked") == 0 ? CELL_CHECKED : CELL_NO_KERNEL;
            if (state > cov->cells[i][b]) {
                cov->cells[i][b] = state;
                snprintf(cov->cases[i][b], sizeof cov->cases[i][b], "%s",
                         state == CELL_CHECKED ? fields[3] : (fields[4] ? fields[4] : ""));
            }
        }
        if (!found) {
            bool known = false;
            for (int u = 0; u < cov->n_unregistered && !known; u++) known = strcmp(cov->unregistered[u], fields[2]) == 0;
            if (!known && cov->n_unregistered < MAX_UNREGISTERED)
                snprintf(cov->unregistered[cov->n_unregistered++], 64, "%s", fields[2]);
        }
    }
    fclose(f);
}

static const char *cell_text(int cell) { return cell == CELL_CHECKED ? "checked" : cell == CELL_NO_KERNEL ? "no kernel" : "MISSING"; }

/* Reads every records file of dir and compares them with the registered op
   definitions; with out set, prints the table there. Returns the number of
   MISSING cells; *unregistered receives the number of recorded ops that are
   not registered. */
static int coverage_report(const char *dir, FILE *out, int *unregistered)
{
    coverage cov = { .n_backends = 0 };
    cov.backends[cov.n_backends++] = "cpu";
    if (mt_device_available((mt_device){ MT_DEVICE_CUDA_EMU, 0 }, NULL)) cov.backends[cov.n_backends++] = "cuda-emu";
    if (mt_device_available((mt_device){ MT_DEVICE_CUDA, 0 }, NULL)) cov.backends[cov.n_backends++] = "cuda";
    cov.ops = mt_op_defs(&cov.n_ops);
    cov.cells = calloc(cov.n_ops, sizeof *cov.cells);
    cov.cases = calloc(cov.n_ops, sizeof *cov.cases);
    size_t *order = malloc(cov.n_ops * sizeof *order);
    cr_assert(cov.cells && cov.cases && order);

    DIR *d = opendir(dir);
    cr_assert_not_null(d, "no records folder %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "records-", 8) != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        read_records(&cov, path);
    }
    closedir(d);
    cr_assert(cov.records > 0, "no coverage records in %s: did the suite run with MYTORCH_OP_COVERAGE_DIR set?", dir);

    /* the table, sorted by op name */
    for (size_t i = 0; i < cov.n_ops; i++) order[i] = i;
    for (size_t i = 1; i < cov.n_ops; i++)
        for (size_t j = i; j > 0 && strcmp(cov.ops[order[j - 1]]->name, cov.ops[order[j]]->name) > 0; j--) {
            size_t t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    int missing = 0;
    if (out) {
        fprintf(out, "\nop coverage (%zu op definitions, %d records): a harness case per op and backend\n",
                cov.n_ops, cov.records);
        fprintf(out, "%-14s", "op");
        for (int b = 0; b < cov.n_backends; b++) fprintf(out, " %-10s", cov.backends[b]);
        fprintf(out, " a case that checks it (or why there is no kernel)\n");
    }
    for (size_t k = 0; k < cov.n_ops; k++) {
        size_t i = order[k];
        const char *example = "";
        if (out) fprintf(out, "%-14s", cov.ops[i]->name);
        for (int b = 0; b < cov.n_backends; b++) {
            if (out) fprintf(out, " %-10s", cell_text(cov.cells[i][b]));
            missing += cov.cells[i][b] == CELL_MISSING;
            if (!*example && cov.cells[i][b] != CELL_MISSING) example = cov.cases[i][b];
        }
        if (out) fprintf(out, " %s\n", example);
    }
    for (int u = 0; out && u < cov.n_unregistered; u++)
        fprintf(out, "%-14s recorded by a harness case but not registered: write its op definition with MT_OP_DEF\n",
                cov.unregistered[u]);
    *unregistered = cov.n_unregistered;
    free(order);
    free(cov.cells);
    free(cov.cases);
    return missing;
}

Test(op_coverage, every_op_has_a_harness_case_on_every_backend)
{
    const char *dir = getenv("MYTORCH_OP_COVERAGE_DIR");
    if (!getenv("MYTORCH_OP_COVERAGE_REPORT") || !dir)
        cr_skip_test("the report runs under ctest, after the suite has recorded its cases "
                     "(MYTORCH_OP_COVERAGE_DIR and MYTORCH_OP_COVERAGE_REPORT)");
    int unregistered = 0;
    int missing = coverage_report(dir, stderr, &unregistered);
    cr_assert(unregistered == 0, "%d op definitions are not registered with MT_OP_DEF (see the table)", unregistered);
    cr_assert(missing == 0, "%d (op, backend) cells have no harness case (MISSING in the table): add an "
              "mt_check_op case for each", missing);
}

/* The report itself: from records naming one op on the cpu and an op that is
   not registered, every other cell is MISSING and the stranger is reported. */
Test(op_coverage, the_report_finds_missing_and_unregistered_ops)
{
    char dir[128], path[256];
    mt_test_temp_dir(dir, sizeof dir, "coverage_report");
    snprintf(path, sizeof path, "%s/records-1.tsv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "cpu\tchecked\tadd\tadd_same\t\ncpu\tchecked\tnot_an_op\tnot_a_case\t\n");
    fprintf(f, "cuda-emu\tno-kernel\tadd\tadd_same\tadd: the cuda-emu backend has no 'binary' kernel\n");
    fclose(f);
    size_t n_ops;
    mt_op_defs(&n_ops);
    int backends = 1 + mt_device_available((mt_device){ MT_DEVICE_CUDA_EMU, 0 }, NULL) +
                   mt_device_available((mt_device){ MT_DEVICE_CUDA, 0 }, NULL);
    int unregistered = 0;
    int missing = coverage_report(dir, NULL, &unregistered);
    int covered = backends > 1 ? 2 : 1;   /* add on cpu (checked) and on cuda-emu (no kernel) */
    cr_assert_eq(missing, (int)n_ops * backends - covered);
    cr_assert_eq(unregistered, 1);
    mt_test_remove_tree(dir);
}

/* ---------------------------------------------------------------- records of a partial backend */
static mt_tensor *run_softmax(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    return mt_softmax(in[0], 1);
}

static void ref_softmax(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    ref_alloc(out, 2, in[0].shape);
    int64_t rows = in[0].shape[0], cols = in[0].shape[1];
    for (int64_t r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < cols; j++) m = fmax(m, in[0].data[r * cols + j]);
        for (int64_t j = 0; j < cols; j++) s += exp(in[0].data[r * cols + j] - m);
        for (int64_t j = 0; j < cols; j++) out->data[r * cols + j] = exp(in[0].data[r * cols + j] - m) / s;
    }
}

/* A harness case on a backend that lacks the op's kernel passes, skipping
   that backend, and records "no-kernel" for it with the reason. */
Test(op_coverage, a_partial_backend_is_recorded_as_no_kernel, .init = mt_test_setup, .fini = mt_test_teardown)
{
    if (!mt_backend_for(MT_DEVICE_CUDA_EMU)) cr_skip_test("cuda-emu is not built in (no C++ compiler)");
    char dir[128];
    mt_test_temp_dir(dir, sizeof dir, "coverage");
    setenv("MYTORCH_OP_COVERAGE_DIR", dir, 1);
    mt_backend partial = mt_cuda_emu_backend;
    partial.softmax = NULL;
    mt_backend_replace(MT_DEVICE_CUDA_EMU, &partial);
    mt_op_case c = { .name = "softmax rows (partial backend)", .n_inputs = 1, .inputs = { MT_SPEC(-2, 2, 3, 5) },
                     .run = run_softmax, .reference = ref_softmax };
    mt_check_op(&c);
    mt_backend_replace(MT_DEVICE_CUDA_EMU, NULL);

    char path[256], line[1200];
    snprintf(path, sizeof path, "%s/records-%ld.tsv", dir, (long)getpid());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    bool cpu_checked = false, emu_no_kernel = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "cpu\tchecked\tsoftmax\t", 20) == 0) cpu_checked = true;
        if (strncmp(line, "cuda-emu\tno-kernel\tsoftmax\t", 27) == 0 &&
            strstr(line, "the cuda-emu backend has no 'softmax' kernel"))
            emu_no_kernel = true;
        cr_assert(strncmp(line, "cuda-emu\tchecked", 16) != 0, "%s", line);
    }
    fclose(f);
    mt_test_remove_tree(dir);
    cr_assert(cpu_checked, "no cpu record");
    cr_assert(emu_no_kernel, "no cuda-emu no-kernel record");
}
