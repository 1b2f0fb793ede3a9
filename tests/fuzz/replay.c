/*
 * replay.c - a main() for a fuzz target without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on each file given, and on each file of each
 * folder given (in name order). ctest runs every target this way over its
 * kept corpus and regression inputs (tests/fuzz/corpus/<target>,
 * tests/fuzz/regressions/<target>) in every build, with the build's own
 * compiler and sanitizers; a crash or a failed FUZZ_CHECK fails the test.
 *
 *   fuzz_replay_npy tests/fuzz/corpus/npy tests/fuzz/regressions/npy
 */
#include "fuzz_common.h"

#include <errno.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: %s: %s\n", path, strerror(errno)); return 1; }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) { fprintf(stderr, "replay: %s: out of memory\n", path); return 1; }
    /* an exact-size copy, so that the sanitizers see a read past the input */
    unsigned char *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    int files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) { fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno)); errors++; continue; }
        if (!S_ISDIR(sb.st_mode)) { errors += run_file(argv[i]); files++; continue; }
        DIR *d = opendir(argv[i]);
        if (!d) { fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno)); errors++; continue; }
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;   /* ., .., and .gitkeep */
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp_names);
        for (size_t k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
            errors += run_file(path);
            files++;
            free(names[k]);
        }
        free(names);
    }
    printf("replay: %d inputs ran, %d could not be read\n", files, errors);
    return errors ? 1 : 0;
}
