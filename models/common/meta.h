/*
 * meta.h - a checkpoint's metadata as a task and the trainer write and read
 * it: string key/value pairs (mt_checkpoint_save_meta), numbers written so
 * that they read back exactly (doubles with 17 significant digits), and a
 * reader that checks each value's form and range and keeps the first
 * problem, naming the file and the key.
 */
#ifndef MT_MODELS_COMMON_META_H
#define MT_MODELS_COMMON_META_H

#include "mytorch/mytorch.h"

enum { MT_META_MAX = 64 };

/* Pairs being written: the keys are borrowed (string literals), the values owned. */
typedef struct mt_meta_list {
    int n;
    const char *keys[MT_META_MAX];
    char *values[MT_META_MAX];
} mt_meta_list;

/* Appends key = printf(fmt, ...); false when full or out of memory. */
bool mt_meta_add(mt_meta_list *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "a,b,c" of n ints, or of n doubles with 17 digits; NULL when out of memory. */
char *mt_meta_join_ints(int n, const int *v);
char *mt_meta_join_doubles(int n, const double *v);
void mt_meta_list_free(mt_meta_list *m);

/* Reading: each getter records the first problem in st (with mt_set_error)
   and returns 0 / NULL after one; check st once at the end. */
typedef struct mt_meta_reader {
    const mt_safetensors_metadata *meta;
    const char *who;        /* the messages' prefix: "speech-frames" */
    const char *path;
    mt_status st;
} mt_meta_reader;

/* The value of key, or NULL (no problem recorded). */
const char *mt_meta_find(const mt_safetensors_metadata *meta, const char *key);
/* The value of key; a missing key is a problem. */
const char *mt_meta_get(mt_meta_reader *r, const char *key);
double mt_meta_f64(mt_meta_reader *r, const char *key);
int64_t mt_meta_i64(mt_meta_reader *r, const char *key, int64_t lo, int64_t hi);
uint64_t mt_meta_u64(mt_meta_reader *r, const char *key);
/* Records a problem of the reader's file (the first one is kept). */
void mt_meta_problem(mt_meta_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
