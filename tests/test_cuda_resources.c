/*
 * test_cuda_resources.c - the CUDA kernels do not spill (DESIGN.md: "The
 * compiler's resource report (registers, spills, shared memory) for every
 * kernel is kept in docs/ and checked: hot kernels do not spill").
 *
 * The build writes what ptxas says about every kernel of kernels/cuda (.cu),
 * for each architecture of MYTORCH_CUDA_ARCHS, to
 * <build>/cuda_resources/resources.tsv (scripts/cuda_resources.sh, run by
 * cmake/cuda.cmake; the path arrives as MYTORCH_CUDA_RESOURCES_TSV). These
 * tests read it: any spill store or load fails, naming the kernel. Without
 * nvcc at build time there is no such file and the tests skip.
 *
 * docs/kernels/resources.md is the same table kept in the repository; a
 * kernel the build knows and the page does not is reported as a warning
 * (rerun scripts/cuda_resources.sh), since register counts differ between
 * toolkit versions and only the names are compared.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COLS = 11, MAX_ROWS = 4096 };

typedef struct row {
    char arch[16], file[256], kind[16], kernel[128];
    long registers, shared, stack, spill_stores, spill_loads;
} row;

typedef struct table {
    int n;
    row *rows;
} table;

/* Splits line (modified in place) at tabs into at most max fields. */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

/* "-" (a device function: its caller's registers) reads as -1. */
static bool parse_long(const char *s, long *out)
{
    if (strcmp(s, "-") == 0) { *out = -1; return true; }
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 0) return false;
    *out = v;
    return true;
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

#ifdef MYTORCH_CUDA_RESOURCES_TSV
static const char *const tsv_path = MYTORCH_CUDA_RESOURCES_TSV;
#else
static const char *const tsv_path = NULL;
#endif

/* Reads the build's table; skips the test when the build had no nvcc. */
static table read_table(void)
{
    if (!tsv_path)
        cr_skip_test("no CUDA resource report: this build had no CUDA toolkit (nvcc), so the kernels were only "
                     "compiled for the SIMT emulator (configure with the toolkit on PATH, or -DMYTORCH_CUDA=ON)");
    /* MT_CUDA_RESOURCES_TSV: the table of a build run elsewhere (scripts/gpu_check.sh) */
    const char *path = getenv("MT_CUDA_RESOURCES_TSV") ? getenv("MT_CUDA_RESOURCES_TSV") : tsv_path;
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s is missing: the build writes it (target mytorch_cuda_resources_data, "
                          "scripts/cuda_resources.sh --tsv)", path);
    table t = { 0, calloc(MAX_ROWS, sizeof(row)) };
    cr_assert_not_null(t.rows);
    char line[2048];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        char *fld[COLS];
        int n = split_tabs(line, fld, COLS);
        cr_assert_eq(n, COLS, "%s:%d: %d fields, expected %d", path, lineno, n, COLS);
        cr_assert_lt(t.n, MAX_ROWS, "%s: more than %d rows", path, MAX_ROWS);
        row *r = &t.rows[t.n++];
        copy_field(r->arch, sizeof r->arch, fld[0]);
        copy_field(r->file, sizeof r->file, fld[1]);
        copy_field(r->kind, sizeof r->kind, fld[2]);
        copy_field(r->kernel, sizeof r->kernel, fld[3]);
        cr_assert(parse_long(fld[4], &r->registers) && parse_long(fld[5], &r->shared) &&
                  parse_long(fld[6], &r->stack) && parse_long(fld[7], &r->spill_stores) &&
                  parse_long(fld[8], &r->spill_loads),
                  "%s:%d: a resource column is not a count", path, lineno);
        cr_assert(strcmp(r->kind, "kernel") == 0 || strcmp(r->kind, "function") == 0,
                  "%s:%d: kind '%s'", path, lineno, r->kind);
        cr_assert(strcmp(r->kind, "function") == 0 || r->registers > 0,
                  "%s:%d: kernel %s without a register count", path, lineno, r->kernel);
    }
    fclose(f);
    return t;
}

Test(cuda_resources, no_kernel_spills)
{
    table t = read_table();
    char spills[4096] = "";
    size_t used = 0;
    int n_spill = 0, n_kernels = 0;
    long max_regs = 0;
    const char *max_kernel = "";
    for (int i = 0; i < t.n; i++) {
        const row *r = &t.rows[i];
        if (strcmp(r->kind, "kernel") == 0) {
            n_kernels++;
            if (r->registers > max_regs) { max_regs = r->registers; max_kernel = r->kernel; }
        }
        if (r->spill_stores > 0 || r->spill_loads > 0) {
            n_spill++;
            if (used < sizeof spills)
                used += (size_t)snprintf(spills + used, sizeof spills - used,
                                         "\n  sm_%s %s: %s%s spills (%ld bytes stores, %ld bytes loads per thread)",
                                         r->arch, r->file, r->kernel,
                                         strcmp(r->kind, "function") == 0 ? " (device function)" : "",
                                         r->spill_stores, r->spill_loads);
        }
    }
    cr_log_info("cuda resources: %d kernel rows over all architectures, most registers %ld (%s)",
                n_kernels, max_regs, max_kernel);
    cr_expect_eq(n_spill, 0, "%d kernel(s) spill registers to local memory (hot kernels must not spill: "
                 "fewer live values, smaller unrolls, or __launch_bounds__ that leave more registers):%s",
                 n_spill, spills);
    free(t.rows);
}

/* docs/kernels/resources.md (MYTORCH_CUDA_RESOURCES_DOCS: its absolute path,
   from the build). */
static char *read_docs_page(void)
{
#ifdef MYTORCH_CUDA_RESOURCES_DOCS
    const char *path = MYTORCH_CUDA_RESOURCES_DOCS;
#else
    const char *path = "docs/kernels/resources.md";
#endif
    if (getenv("MT_CUDA_RESOURCES_DOCS")) path = getenv("MT_CUDA_RESOURCES_DOCS");   /* a build run elsewhere */
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t size = 0, cap = 0, got;
    char chunk[8192];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (size + got + 1 > cap) {
            cap = 2 * (size + got + 1);
            char *grown = realloc(buf, cap);
            if (!grown) { free(buf); fclose(f); return NULL; }
            buf = grown;
        }
        memcpy(buf + size, chunk, got);
        size += got;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    else buf[size] = '\0';
    return buf;
}

Test(cuda_resources, docs_page_names_every_kernel)
{
    table t = read_table();
    char *page = read_docs_page();
    cr_assert_not_null(page, "docs/kernels/resources.md is missing (scripts/cuda_resources.sh writes it)");
    char missing[2048] = "";
    size_t used = 0;
    int n_missing = 0;
    for (int i = 0; i < t.n; i++) {
        char needle[160];
        snprintf(needle, sizeof needle, "`%s`", t.rows[i].kernel);
        if (strstr(page, needle)) continue;
        bool seen = false;   /* once per name, not per architecture */
        for (int j = 0; j < i && !seen; j++) seen = strcmp(t.rows[j].kernel, t.rows[i].kernel) == 0;
        if (seen) continue;
        n_missing++;
        if (used < sizeof missing)
            used += (size_t)snprintf(missing + used, sizeof missing - used, " %s (%s)", t.rows[i].kernel, t.rows[i].file);
    }
    if (n_missing > 0)
        cr_log_warn("docs/kernels/resources.md does not list %d kernel(s) the build compiled:%s; "
                    "rerun scripts/cuda_resources.sh (or cmake --build <build> --target cuda_resources)",
                    n_missing, missing);
    free(page);
    free(t.rows);
}
