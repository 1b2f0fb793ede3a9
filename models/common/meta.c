/*
 * meta.c - writing and reading checkpoint metadata (meta.h).
 */
#include "models/common/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool mt_meta_add(mt_meta_list *m, const char *key, const char *fmt, ...)
{
    if (m->n >= MT_META_MAX) return false;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return false;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    m->keys[m->n] = key;
    m->values[m->n++] = s;
    return true;
}

char *mt_meta_join_ints(int n, const int *v)
{
    char *s = malloc((size_t)n * 12 + 1);
    if (!s) return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s%d", i ? "," : "", v[i]);
    return s;
}

char *mt_meta_join_doubles(int n, const double *v)
{
    char *s = malloc((size_t)n * 26 + 1);
    if (!s) return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s%.17g", i ? "," : "", v[i]);
    return s;
}

void mt_meta_list_free(mt_meta_list *m)
{
    for (int i = 0; i < m->n; i++) free(m->values[i]);
    m->n = 0;
}

void mt_meta_problem(mt_meta_reader *r, const char *fmt, ...)
{
    if (r->st != MT_OK) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->st = mt_set_error(MT_ERR_FORMAT, "%s: %s: %s", r->who, r->path, msg);
}

const char *mt_meta_find(const mt_safetensors_metadata *meta, const char *key)
{
    for (int i = 0; meta && i < meta->n; i++)
        if (strcmp(meta->keys[i], key) == 0) return meta->values[i];
    return NULL;
}

const char *mt_meta_get(mt_meta_reader *r, const char *key)
{
    const char *v = mt_meta_find(r->meta, key);
    if (!v) mt_meta_problem(r, "the checkpoint's metadata has no \"%s\"", key);
    return v;
}

double mt_meta_f64(mt_meta_reader *r, const char *key)
{
    const char *v = mt_meta_get(r, key);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) {
        mt_meta_problem(r, "metadata \"%s\" is not a number: '%.40s'", key, v);
        return 0;
    }
    return x;
}

int64_t mt_meta_i64(mt_meta_reader *r, const char *key, int64_t lo, int64_t hi)
{
    const char *v = mt_meta_get(r, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi) {
        mt_meta_problem(r, "metadata \"%s\" is not an integer in [%" PRId64 ", %" PRId64 "]: '%.40s'", key, lo, hi, v);
        return 0;
    }
    return x;
}

uint64_t mt_meta_u64(mt_meta_reader *r, const char *key)
{
    const char *v = mt_meta_get(r, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || errno || *v == '-') {
        mt_meta_problem(r, "metadata \"%s\" is not an unsigned integer: '%.40s'", key, v);
        return 0;
    }
    return x;
}
