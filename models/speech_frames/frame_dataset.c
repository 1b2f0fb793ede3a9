/*
 * frame_dataset.c - reading a split folder into the zero-padded row layout
 * of frame_dataset.h, window lookup, statistics and normalisation
 * (docs/frame-dataset.md). The loader is in frame_loader.c.
 *
 * Reading is one pass over the sorted utterances: each mfcc file is read
 * (include/mytorch/npy.h) and appended to the row array, which grows geometrically
 * (amortised O(1) per row), preceded by its K zero rows; its labels are read
 * and checked against its frame count at once, so an error names the first
 * bad file.
 */
#include "models/speech_frames/frame_dataset.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/speech_data/speech_phones.h"

enum { PATH_MAX_LEN = 4096 };

/* ---------------------------------------------------------------- helpers */

/* Records an error that wraps the calling thread's current message (an npy
   reader's "npy: <path>: <problem>"); copied first, because mt_set_error
   writes the buffer mt_last_error() points to. */
static mt_status fail_wrapping(mt_status code, const char *what)
{
    char inner[1024];
    snprintf(inner, sizeof inner, "%s", mt_last_error());
    if (code == MT_OK) code = MT_ERR_FORMAT;
    return mt_set_error(code, "frame_dataset: %s: %s", what, inner);
}

/* Whether path is a folder; *why (when given) says why not. */
static bool is_dir_why(const char *path, const char **why)
{
    struct stat st;
    if (stat(path, &st) != 0) { if (why) *why = strerror(errno); return false; }
    if (!S_ISDIR(st.st_mode)) { if (why) *why = "not a folder"; return false; }
    return true;
}

static bool is_dir(const char *path) { return is_dir_why(path, NULL); }

/* buf = a/b + ext; a path longer than PATH_MAX_LEN is an error, not a
   silently truncated name. */
static mt_status join_path(char *buf, const char *a, const char *b, const char *ext)
{
    int n = snprintf(buf, PATH_MAX_LEN, "%s/%s%s", a, b, ext);
    if (n < 0 || n >= PATH_MAX_LEN)
        return mt_set_error(MT_ERR_ARGUMENT, "frame_dataset: %s/%s%s: path longer than %d bytes", a, b, ext, PATH_MAX_LEN - 1);
    return MT_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The utterance ids of dir/<id>.npy, sorted by strcmp (the course's order:
   np.sort of the file names). */
static mt_status list_npy(const char *dir, char ***out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) return mt_set_error(MT_ERR_IO, "frame_dataset: %s: cannot open the folder (%s)", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    mt_status st = MT_OK;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".npy")) continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 256;
            char **p = realloc(names, ncap * sizeof *p);
            if (!p) { st = MT_ERR_MEMORY; break; }
            names = p;
            cap = ncap;
        }
        size_t len = strlen(e->d_name) - 4;   /* without ".npy" */
        char *id = malloc(len + 1);
        if (!id) { st = MT_ERR_MEMORY; break; }
        memcpy(id, e->d_name, len);
        id[len] = '\0';
        names[n++] = id;
    }
    closedir(d);
    if (st != MT_OK) {
        free_names(names, n);
        return mt_set_error(st, "frame_dataset: %s: out of memory listing the folder", dir);
    }
    if (n > 1) qsort(names, n, sizeof *names, by_name);
    *out = names;
    *count = n;
    return MT_OK;
}

/* Growable arrays: capacity doubles, so appending n items costs O(n). */
static bool grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need < 1) need = 1;   /* never NULL, even when empty */
    if (need <= *cap) return true;
    int64_t ncap = *cap ? *cap : 4096;
    while (ncap < need) ncap *= 2;
    void *q = realloc(*p, (size_t)ncap * elem);
    if (!q) return false;
    *p = q;
    *cap = ncap;
    return true;
}

/* ---------------------------------------------------------------- labels */

/* Reads labels/<id>.npy: a 1-d integer array of exactly T non-negative
   values, appended at dst. */
static mt_status read_int_labels(const char *path, int64_t T, int64_t *dst)
{
    mt_tensor *t = mt_npy_load(path);
    if (!t) return fail_wrapping(mt_last_status(), "reading labels");
    mt_status st = MT_OK;
    if (t->dtype != MT_I64 && t->dtype != MT_I32 && t->dtype != MT_U8) {
        st = mt_set_error(MT_ERR_DTYPE, "frame_dataset: %s: labels must be integers (int64), got %s",
                          path, mt_dtype_name(t->dtype));
    } else if (t->ndim != 1 || t->shape[0] != T) {
        char buf[128];
        st = mt_set_error(MT_ERR_SHAPE, "frame_dataset: %s: %s labels for %lld frames (one label per frame: shape (%lld,))",
                          path, mt_shape_str(t, buf, sizeof buf), (long long)T, (long long)T);
    } else if ((st = mt_to_data(t, MT_I64, dst)) != MT_OK) {
        st = fail_wrapping(st, path);
    } else {
        for (int64_t i = 0; i < T; i++)
            if (dst[i] < 0) {
                st = mt_set_error(MT_ERR_FORMAT, "frame_dataset: %s: label %lld of frame %lld is negative",
                                  path, (long long)dst[i], (long long)i);
                break;
            }
    }
    mt_free(t);
    return st;
}

/* Reads transcript/<id>.npy as frame labels: T phone strings, or T + 2 with
   "[SOS]" first and "[EOS]" last (the course's HW1P2 files), each mapped to
   its index in the phone set ([SIL] + 39 ARPAbet phones). */
static mt_status read_transcript_labels(const char *path, int64_t T, int64_t *dst)
{
    mt_string_array a = { 0 };
    if (mt_npy_load_strings(path, &a) != MT_OK) return fail_wrapping(mt_last_status(), "reading the transcript");
    mt_status st = MT_OK;
    int64_t first = 0;
    if (a.n == T + 2 && strcmp(a.strings[0], "[SOS]") == 0 && strcmp(a.strings[a.n - 1], "[EOS]") == 0) {
        first = 1;
    } else if (a.n != T) {
        st = mt_set_error(MT_ERR_SHAPE,
                          "frame_dataset: %s: %lld phone strings for %lld frames (a frame-level transcript has one "
                          "phone per frame, %lld, or %lld with [SOS] first and [EOS] last)",
                          path, (long long)a.n, (long long)T, (long long)T, (long long)(T + 2));
    }
    for (int64_t i = 0; st == MT_OK && i < T; i++) {
        const char *s = a.strings[first + i];
        int idx = mt_speech_phone_index(s);
        if (idx < 0 || idx >= MT_SPEECH_N_PHONES)
            st = mt_set_error(MT_ERR_FORMAT,
                              "frame_dataset: %s: string %lld '%s' is not a frame phone ([SIL] or one of the 39 ARPAbet phones)",
                              path, (long long)(first + i), s);
        else
            dst[i] = idx;
    }
    mt_string_array_free(&a);
    return st;
}

/* ---------------------------------------------------------------- loading */

typedef enum { LABELS_NONE, LABELS_INT, LABELS_TRANSCRIPT } label_source;

mt_status mt_frame_dataset_load(const char *split_dir, const mt_frame_dataset_opts *opts, mt_frame_dataset *out)
{
    if (!split_dir || !out) return mt_set_error(MT_ERR_ARGUMENT, "frame_dataset_load: NULL %s", split_dir ? "output" : "split_dir");
    mt_frame_dataset_opts o = opts ? *opts : (mt_frame_dataset_opts){ 0 };
    if (o.context < 0) return mt_set_error(MT_ERR_ARGUMENT, "frame_dataset_load: context %d < 0", o.context);
    if (o.n_classes < 0) return mt_set_error(MT_ERR_ARGUMENT, "frame_dataset_load: n_classes %d < 0", o.n_classes);
    if (o.max_utts < 0) return mt_set_error(MT_ERR_ARGUMENT, "frame_dataset_load: max_utts %lld < 0", (long long)o.max_utts);

    char path[PATH_MAX_LEN], dir[PATH_MAX_LEN];
    const char *why = NULL;
    if (!is_dir_why(split_dir, &why))
        return mt_set_error(MT_ERR_IO, "frame_dataset: %s: cannot read the split folder (%s)", split_dir, why);
    if (join_path(dir, split_dir, "mfcc", "") != MT_OK) return mt_last_status();
    if (!is_dir(dir))
        return mt_set_error(MT_ERR_IO, "frame_dataset: %s: missing (a split folder holds mfcc/<utt>.npy, "
                            "and labels/<utt>.npy or transcript/<utt>.npy)", dir);

    label_source src = LABELS_NONE;
    char label_dir[PATH_MAX_LEN];
    if (join_path(label_dir, split_dir, "labels", "") != MT_OK) return mt_last_status();
    if (is_dir(label_dir)) {
        src = LABELS_INT;
    } else {
        if (join_path(label_dir, split_dir, "transcript", "") != MT_OK) return mt_last_status();
        if (is_dir(label_dir)) src = LABELS_TRANSCRIPT;
    }
    if (src == LABELS_NONE && o.require_labels)
        return mt_set_error(MT_ERR_IO, "frame_dataset: %s: no labels/ or transcript/ folder (labels are required)", split_dir);

    char **ids = NULL;
    size_t n_ids = 0;
    mt_status st = list_npy(dir, &ids, &n_ids);
    if (st != MT_OK) return st;
    if (n_ids == 0) {
        free(ids);
        return mt_set_error(MT_ERR_FORMAT, "frame_dataset: %s: no .npy files", dir);
    }
    if (n_ids > INT32_MAX) {
        free_names(ids, n_ids);
        return mt_set_error(MT_ERR_ARGUMENT, "frame_dataset: %s: more than 2^31 - 1 utterances", dir);
    }
    if (o.max_utts > 0 && (size_t)o.max_utts < n_ids) {
        for (size_t i = (size_t)o.max_utts; i < n_ids; i++) free(ids[i]);
        n_ids = (size_t)o.max_utts;
    }

    const int64_t K = o.context;
    mt_frame_dataset ds = { .context = o.context, .n_utts = (int)n_ids, .utt_ids = ids };
    int64_t rows_cap = 0, labels_cap = 0;   /* in rows and labels */
    ds.rows = malloc(sizeof(float));   /* never NULL, even for empty utterances with K = 0 (rows_cap stays 0) */
    int64_t F = 0;
    char first_path[PATH_MAX_LEN] = "";
    ds.utt_start = malloc((n_ids + 1) * sizeof *ds.utt_start);
    if (!ds.utt_start || !ds.rows) { st = mt_set_error(MT_ERR_MEMORY, "frame_dataset: out of memory"); goto fail; }

    for (size_t u = 0; u < n_ids; u++) {
        if ((st = join_path(path, dir, ids[u], ".npy")) != MT_OK) goto fail;
        mt_tensor *m = mt_npy_load(path);
        if (!m) { st = fail_wrapping(mt_last_status(), "reading features"); goto fail; }
        if (m->dtype != MT_F32 && m->dtype != MT_F64) {
            st = mt_set_error(MT_ERR_DTYPE, "frame_dataset: %s: features must be float32 or float64, got %s",
                              path, mt_dtype_name(m->dtype));
        } else if (m->ndim != 2 || m->shape[1] < 1) {
            char buf[128];
            st = mt_set_error(MT_ERR_SHAPE, "frame_dataset: %s: features of shape %s (expected [T, F], F >= 1)",
                              path, mt_shape_str(m, buf, sizeof buf));
        } else if (u > 0 && m->shape[1] != F) {
            st = mt_set_error(MT_ERR_SHAPE, "frame_dataset: %s: %lld coefficients per frame, but %s has %lld",
                              path, (long long)m->shape[1], first_path, (long long)F);
        }
        if (st != MT_OK) { mt_free(m); goto fail; }
        if (u == 0) {
            F = m->shape[1];
            snprintf(first_path, sizeof first_path, "%s", path);
            if (F > INT32_MAX) { mt_free(m); st = mt_set_error(MT_ERR_SHAPE, "frame_dataset: %s: F too large", path); goto fail; }
        }
        const int64_t T = m->shape[0];
        ds.utt_start[u] = ds.n_frames;
        /* rows so far: K zero rows, then the utterance's T rows */
        int64_t need = ds.n_rows + K + T + K;   /* + the final padding, reserved early */
        if (!grow((void **)&ds.rows, &rows_cap, need, (size_t)F * sizeof(float))) {
            mt_free(m);
            st = mt_set_error(MT_ERR_MEMORY, "frame_dataset: out of memory (%lld rows of %lld floats)", (long long)need, (long long)F);
            goto fail;
        }
        memset(ds.rows + ds.n_rows * F, 0, (size_t)(K * F) * sizeof(float));
        ds.n_rows += K;
        st = mt_to_data(m, MT_F32, ds.rows + ds.n_rows * F);
        mt_free(m);
        if (st != MT_OK) { st = fail_wrapping(st, path); goto fail; }
        ds.n_rows += T;

        if (src != LABELS_NONE) {
            if (!grow((void **)&ds.labels, &labels_cap, ds.n_frames + T + 1, sizeof(int64_t))) {
                st = mt_set_error(MT_ERR_MEMORY, "frame_dataset: out of memory (%lld labels)", (long long)(ds.n_frames + T));
                goto fail;
            }
            if ((st = join_path(path, label_dir, ids[u], ".npy")) != MT_OK) goto fail;
            st = src == LABELS_INT ? read_int_labels(path, T, ds.labels + ds.n_frames)
                                   : read_transcript_labels(path, T, ds.labels + ds.n_frames);
            if (st != MT_OK) goto fail;
            for (int64_t i = 0; o.n_classes > 0 && i < T; i++)
                if (ds.labels[ds.n_frames + i] >= o.n_classes) {
                    st = mt_set_error(MT_ERR_FORMAT, "frame_dataset: %s: label %lld of frame %lld is outside the %d classes "
                                      "[0, %d)", path, (long long)ds.labels[ds.n_frames + i], (long long)i, o.n_classes,
                                      o.n_classes);
                    goto fail;
                }
        }
        ds.n_frames += T;
    }
    /* the K zero rows after the last utterance (room reserved above) */
    memset(ds.rows + ds.n_rows * F, 0, (size_t)(K * F) * sizeof(float));
    ds.n_rows += K;
    ds.utt_start[n_ids] = ds.n_frames;
    ds.feature_dim = (int)F;
    if (ds.labels) {
        int64_t max = -1;
        for (int64_t i = 0; i < ds.n_frames; i++)
            if (ds.labels[i] > max) max = ds.labels[i];
        if (max >= INT32_MAX) {
            st = mt_set_error(MT_ERR_FORMAT, "frame_dataset: %s: label %lld is too large", label_dir, (long long)max);
            goto fail;
        }
        ds.n_classes = (int)(max + 1);
    }
    *out = ds;
    return MT_OK;

fail:
    mt_frame_dataset_free(&ds);
    return st;
}

void mt_frame_dataset_free(mt_frame_dataset *ds)
{
    if (!ds) return;
    if (ds->utt_ids) free_names(ds->utt_ids, (size_t)ds->n_utts);
    free(ds->utt_start);
    free(ds->rows);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* ---------------------------------------------------------------- windows */

int64_t mt_frame_dataset_row(const mt_frame_dataset *ds, int64_t frame)
{
    if (!ds || frame < 0 || frame >= ds->n_frames) {
        mt_set_error(MT_ERR_ARGUMENT, "frame_dataset_row: frame %lld outside [0, %lld)", (long long)frame,
                     ds ? (long long)ds->n_frames : 0LL);
        return -1;
    }
    /* u = the last utterance with utt_start[u] <= frame (an empty utterance
       shares its start with the next one, so the last is the non-empty one) */
    int64_t lo = 0, hi = ds->n_utts;   /* invariant: utt_start[lo] <= frame < utt_start[hi] */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ds->utt_start[mid] <= frame) lo = mid;
        else hi = mid;
    }
    /* utterance u is preceded by u + 1 runs of K zero rows */
    return frame + (lo + 1) * (int64_t)ds->context;
}

void mt_frame_dataset_window(const mt_frame_dataset *ds, int64_t frame, float *dst)
{
    if (!ds || !dst) return;
    int64_t row = mt_frame_dataset_row(ds, frame);
    size_t n = (size_t)(2 * ds->context + 1) * (size_t)ds->feature_dim;
    if (row < 0) { memset(dst, 0, n * sizeof *dst); return; }
    memcpy(dst, ds->rows + (row - ds->context) * ds->feature_dim, n * sizeof *dst);
}

/* ---------------------------------------------------------------- statistics */

/* Runs body with row_ptr at every real row (the T rows of each utterance, never padding). */
#define FOR_EACH_REAL_ROW(ds, row_ptr, body)                                        \
    for (int u_ = 0; u_ < (ds)->n_utts; u_++) {                                     \
        int64_t r0_ = (ds)->utt_start[u_] + (int64_t)(u_ + 1) * (ds)->context;      \
        int64_t T_ = (ds)->utt_start[u_ + 1] - (ds)->utt_start[u_];                 \
        for (int64_t t_ = 0; t_ < T_; t_++) {                                       \
            row_ptr = (ds)->rows + (r0_ + t_) * (ds)->feature_dim;                  \
            body                                                                    \
        }                                                                           \
    }

void mt_frame_dataset_stats(const mt_frame_dataset *ds, double *mean, double *std)
{
    if (!ds || !mean || !std) return;
    const int F = ds->feature_dim;
    for (int f = 0; f < F; f++) mean[f] = std[f] = 0.0;
    if (ds->n_frames == 0) return;
    const float *r;
    /* two passes: mean, then the mean squared deviation (population std, as
       np.std), which does not lose precision as E[x^2] - E[x]^2 does */
    FOR_EACH_REAL_ROW(ds, r, { for (int f = 0; f < F; f++) mean[f] += r[f]; })
    for (int f = 0; f < F; f++) mean[f] /= (double)ds->n_frames;
    FOR_EACH_REAL_ROW(ds, r, {
        for (int f = 0; f < F; f++) {
            double d = r[f] - mean[f];
            std[f] += d * d;
        }
    })
    for (int f = 0; f < F; f++) std[f] = sqrt(std[f] / (double)ds->n_frames);
}

void mt_frame_dataset_normalize(mt_frame_dataset *ds, const float *mean, const float *std)
{
    if (!ds || !mean || !std) return;
    const int F = ds->feature_dim;
    /* a constant coefficient (std 0) is only centred: dividing by 0 would
       turn it into NaNs */
    float *r;
    FOR_EACH_REAL_ROW(ds, r, {
        for (int f = 0; f < F; f++) r[f] = std[f] > 0.0f ? (r[f] - mean[f]) / std[f] : r[f] - mean[f];
    })
}
