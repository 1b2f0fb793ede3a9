/*
 * test_frame_dataset.c - frame-level phoneme data (models/speech_frames/frame_dataset.h):
 *
 *   (a) the padded row layout against a naive reference that builds each
 *       window by index arithmetic, t - K .. t + K with zeros outside the
 *       utterance: first and last frames, utterances shorter than K, empty
 *       utterances, K = 0; sorted file order; float64 features;
 *   (b) labels: labels/<utt>.npy (int64), transcript/<utt>.npy phone strings with and
 *       without [SOS]/[EOS], labels/ preferred over a phone-sequence
 *       transcript/, a test split without labels;
 *   (c) statistics and normalisation (padding stays zero);
 *   (d) bad inputs fail with a message naming the file: a missing folder, a
 *       truncated .npy, a feature width mismatch, a label count mismatch, an
 *       unknown phone string;
 *   (e) the loader: batches in order, drop_last, each frame once per
 *       shuffled epoch and a new order every epoch, the same batches (masks
 *       included) whatever the prefetch depth and when resumed at
 *       first_batch > 0, what masking zeroes, errors from the worker thread,
 *       freeing mid-epoch.
 *
 * The corpora are tiny synthetic ones written with include/mytorch/npy.h into a
 * temporary folder (under /dev/shm when it exists: npy's writer fsyncs every
 * file, which costs milliseconds on a disk and nothing on tmpfs).
 */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/speech_frames/frame_dataset.h"
#include "models/speech_data/speech_phones.h"

/* ================================================================ helpers */

static char tmp_dir[64];

static void fd_setup(void)
{
    mt_test_setup();
    mt_test_temp_dir(tmp_dir, sizeof tmp_dir, "frames");
}

static void fd_teardown(void)
{
    mt_test_remove_tree(tmp_dir);
    mt_test_teardown();
}

/* tmp_dir/a[/b[/c]] (a rotating set of buffers) */
static const char *tp(const char *rel)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s", tmp_dir, rel);
    return b;
}

static void make_dir(const char *rel)
{
    const char *p = tp(rel);
    cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
}

/* The synthetic features: utterance u (its index in sorted order), frame t,
   coefficient f; never 0, so that padding is told apart from data. */
static float feat(int u, int64_t t, int f) { return (float)(100 * (u + 1)) + (float)t + 0.01f * (float)(f + 1); }
static int64_t label_of(int u, int64_t t) { return (7 * u + 3 * t) % MT_SPEECH_N_PHONES; }

static void save_mfcc(const char *split, const char *id, int u, int64_t T, int F, mt_dtype dtype)
{
    double *v = malloc((size_t)(T * F + 1) * sizeof *v);
    float *v32 = malloc((size_t)(T * F + 1) * sizeof *v32);
    for (int64_t i = 0; i < T; i++)
        for (int f = 0; f < F; f++) v32[i * F + f] = (float)(v[i * F + f] = feat(u, i, f));
    mt_tensor *t = dtype == MT_F64 ? mt_from_data(MT_F64, MT_SHAPE(T, F), v) : mt_from_data(MT_F32, MT_SHAPE(T, F), v32);
    cr_assert_not_null(t, "%s", mt_last_error());
    char rel[256];
    snprintf(rel, sizeof rel, "%s/mfcc/%s.npy", split, id);
    cr_assert_eq(mt_npy_save(tp(rel), t), MT_OK, "%s", mt_last_error());
    free(v);
    free(v32);
    mt_free(t);
}

static void save_labels(const char *split, const char *id, int u, int64_t T)
{
    int64_t *v = malloc((size_t)(T + 1) * sizeof *v);
    for (int64_t i = 0; i < T; i++) v[i] = label_of(u, i);
    mt_tensor *t = mt_from_data(MT_I64, MT_SHAPE(T), v);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/labels/%s.npy", split, id);
    cr_assert_eq(mt_npy_save(tp(rel), t), MT_OK, "%s", mt_last_error());
    free(v);
    mt_free(t);
}

/* transcript/<id>.npy: frame-level phone strings, wrapped in [SOS]/[EOS] or not */
static void save_transcript(const char *split, const char *id, int u, int64_t T, bool wrapped)
{
    const char **s = malloc((size_t)(T + 2) * sizeof *s);
    int64_t n = 0;
    if (wrapped) s[n++] = "[SOS]";
    for (int64_t i = 0; i < T; i++) s[n++] = mt_speech_phone_name((int)label_of(u, i));
    if (wrapped) s[n++] = "[EOS]";
    char rel[256];
    snprintf(rel, sizeof rel, "%s/transcript/%s.npy", split, id);
    cr_assert_eq(mt_npy_save_strings(tp(rel), n, s), MT_OK, "%s", mt_last_error());
    free(s);
}

/* A split of utterances with the given ids (written in this order) and
   lengths; u in feat() is the id's index in sorted order, which the caller
   passes as order[]. */
typedef struct utt_spec { const char *id; int64_t T; int sorted_index; } utt_spec;

static void make_split(const char *split, const utt_spec *utts, int n, int F, bool labels)
{
    char rel[256];
    make_dir(split);
    snprintf(rel, sizeof rel, "%s/mfcc", split);
    make_dir(rel);
    if (labels) {
        snprintf(rel, sizeof rel, "%s/labels", split);
        make_dir(rel);
    }
    for (int i = 0; i < n; i++) {
        save_mfcc(split, utts[i].id, utts[i].sorted_index, utts[i].T, F, MT_F32);
        if (labels) save_labels(split, utts[i].id, utts[i].sorted_index, utts[i].T);
    }
}

/* The layout test's split: written out of order; sorted it is
   a (T 5), b (1), c10 (0: empty), c9 (3), d (8). */
static const utt_spec small_utts[] = {
    { "d", 8, 4 }, { "b", 1, 1 }, { "c9", 3, 3 }, { "a", 5, 0 }, { "c10", 0, 2 },
};
enum { SMALL_N = 5, SMALL_F = 3 };
static const int64_t small_T[SMALL_N] = { 5, 1, 0, 3, 8 };   /* in sorted order */

/* The naive reference: frame t of utterance u, offset j in [-K, K], is
   feat(u, t + j) when 0 <= t + j < T, else 0. */
static void ref_window(int u, int64_t T, int64_t t, int K, int F, float *dst)
{
    for (int j = -K; j <= K; j++)
        for (int f = 0; f < F; f++) {
            int64_t tt = t + j;
            dst[(j + K) * F + f] = tt >= 0 && tt < T ? feat(u, tt, f) : 0.0f;
        }
}

static mt_frame_dataset load_ok(const char *rel, int K)
{
    mt_frame_dataset ds;
    mt_frame_dataset_opts o = { .context = K };
    cr_assert_eq(mt_frame_dataset_load(tp(rel), &o, &ds), MT_OK, "%s", mt_last_error());
    return ds;
}

/* ================================================================ (a) layout */

Test(frame_dataset, windows_match_naive_reference, .init = fd_setup, .fini = fd_teardown)
{
    make_split("train", small_utts, SMALL_N, SMALL_F, true);
    static const char *const sorted[SMALL_N] = { "a", "b", "c10", "c9", "d" };
    const int contexts[] = { 0, 1, 2, 7 };   /* 7: wider than every utterance */
    for (size_t ci = 0; ci < sizeof contexts / sizeof *contexts; ci++) {
        const int K = contexts[ci], F = SMALL_F, W = (2 * K + 1) * F;
        mt_frame_dataset ds = load_ok("train", K);
        cr_assert_eq(ds.n_utts, SMALL_N);
        cr_assert_eq(ds.feature_dim, F);
        cr_assert_eq(ds.context, K);
        cr_assert_eq(ds.n_frames, 17);
        cr_assert_eq(ds.n_rows, 17 + (SMALL_N + 1) * K);
        float *want = malloc((size_t)W * sizeof *want), *got = malloc((size_t)W * sizeof *got);
        int64_t frame = 0;
        for (int u = 0; u < SMALL_N; u++) {
            cr_assert_str_eq(ds.utt_ids[u], sorted[u]);
            cr_assert_eq(ds.utt_start[u], frame, "K %d utt %d", K, u);
            for (int64_t t = 0; t < small_T[u]; t++, frame++) {
                ref_window(u, small_T[u], t, K, F, want);
                mt_frame_dataset_window(&ds, frame, got);
                cr_assert_arr_eq(got, want, (size_t)W * sizeof *got, "K %d utt %s frame %lld", K, sorted[u], (long long)t);
                /* the window in place is the same run of rows */
                int64_t row = mt_frame_dataset_row(&ds, frame);
                cr_assert_arr_eq(ds.rows + (row - K) * F, want, (size_t)W * sizeof *got);
                cr_assert_eq(ds.labels[frame], label_of(u, t));
            }
        }
        cr_assert_eq(ds.utt_start[SMALL_N], ds.n_frames);
        /* every padding row is zero: K before each utterance and after the last */
        int64_t zero_rows = 0;
        for (int64_t r = 0; r < ds.n_rows; r++) {
            bool zero = true;
            for (int f = 0; f < F; f++) zero = zero && ds.rows[r * F + f] == 0.0f;
            zero_rows += zero;
        }
        cr_assert_eq(zero_rows, (SMALL_N + 1) * K);
        int64_t max_label = 0;
        for (int u = 0; u < SMALL_N; u++)
            for (int64_t t = 0; t < small_T[u]; t++)
                if (label_of(u, t) > max_label) max_label = label_of(u, t);
        cr_assert_eq(ds.n_classes, max_label + 1);
        cr_assert_eq(mt_frame_dataset_row(&ds, ds.n_frames), -1);
        cr_assert_eq(mt_frame_dataset_row(&ds, -1), -1);
        free(want);
        free(got);
        mt_frame_dataset_free(&ds);
        cr_assert_null(ds.rows);
    }
}

Test(frame_dataset, float64_features_and_max_utts, .init = fd_setup, .fini = fd_teardown)
{
    make_dir("s");
    make_dir("s/mfcc");
    save_mfcc("s", "u0", 0, 4, 2, MT_F64);
    save_mfcc("s", "u1", 1, 2, 2, MT_F64);
    mt_frame_dataset ds;
    mt_frame_dataset_opts o = { .context = 1, .max_utts = 1 };
    cr_assert_eq(mt_frame_dataset_load(tp("s"), &o, &ds), MT_OK, "%s", mt_last_error());
    cr_assert_eq(ds.n_utts, 1);
    cr_assert_eq(ds.n_frames, 4);
    cr_assert_null(ds.labels, "no labels/ or transcript/: a test split");
    cr_assert_eq(ds.n_classes, 0);
    float w[6], want[6];
    mt_frame_dataset_window(&ds, 3, w);
    ref_window(0, 4, 3, 1, 2, want);
    cr_assert_arr_eq(w, want, sizeof w);
    mt_frame_dataset_free(&ds);
    /* the same split when labels are required */
    o.require_labels = true;
    cr_assert_neq(mt_frame_dataset_load(tp("s"), &o, &ds), MT_OK);
    cr_assert(strstr(mt_last_error(), "labels"), "%s", mt_last_error());
}

/* ================================================================ (b) labels */

Test(frame_dataset, transcript_strings_with_and_without_sos_eos, .init = fd_setup, .fini = fd_teardown)
{
    make_dir("hw1");
    make_dir("hw1/mfcc");
    make_dir("hw1/transcript");
    save_mfcc("hw1", "x0", 0, 6, 2, MT_F32);
    save_transcript("hw1", "x0", 0, 6, true);    /* [T + 2]: "[SOS]", 6 phones, "[EOS]" */
    save_mfcc("hw1", "x1", 1, 4, 2, MT_F32);
    save_transcript("hw1", "x1", 1, 4, false);   /* [T] */
    mt_frame_dataset ds = load_ok("hw1", 2);
    cr_assert_eq(ds.n_frames, 10);
    cr_assert_not_null(ds.labels);
    for (int64_t t = 0; t < 6; t++) cr_expect_eq(ds.labels[t], label_of(0, t), "x0 frame %lld", (long long)t);
    for (int64_t t = 0; t < 4; t++) cr_expect_eq(ds.labels[6 + t], label_of(1, t), "x1 frame %lld", (long long)t);
    mt_frame_dataset_free(&ds);
}

Test(frame_dataset, labels_folder_preferred_over_sequence_transcripts, .init = fd_setup, .fini = fd_teardown)
{
    /* the generated corpus: labels/ per frame, transcript/ the phone sequence */
    static const utt_spec u[] = { { "a", 5, 0 } };
    make_split("g", u, 1, 2, true);
    make_dir("g/transcript");
    const char *seq[] = { "[SOS]", "HH", "AH", "[EOS]" };
    cr_assert_eq(mt_npy_save_strings(tp("g/transcript/a.npy"), 4, seq), MT_OK, "%s", mt_last_error());
    mt_frame_dataset ds = load_ok("g", 0);
    for (int64_t t = 0; t < 5; t++) cr_expect_eq(ds.labels[t], label_of(0, t));
    mt_frame_dataset_free(&ds);
}

/* ================================================================ (c) statistics */

Test(frame_dataset, stats_and_normalize_leave_padding_zero, .init = fd_setup, .fini = fd_teardown)
{
    make_split("train", small_utts, SMALL_N, SMALL_F, true);
    const int K = 2, F = SMALL_F;
    mt_frame_dataset ds = load_ok("train", K);
    double mean[SMALL_F], std[SMALL_F], want_mean[SMALL_F] = { 0 }, want_var[SMALL_F] = { 0 };
    for (int u = 0; u < SMALL_N; u++)
        for (int64_t t = 0; t < small_T[u]; t++)
            for (int f = 0; f < F; f++) want_mean[f] += feat(u, t, f) / (double)ds.n_frames;
    for (int u = 0; u < SMALL_N; u++)
        for (int64_t t = 0; t < small_T[u]; t++)
            for (int f = 0; f < F; f++) want_var[f] += pow(feat(u, t, f) - want_mean[f], 2) / (double)ds.n_frames;
    mt_frame_dataset_stats(&ds, mean, std);
    for (int f = 0; f < F; f++) {
        cr_expect_float_eq(mean[f], want_mean[f], 1e-9 * fabs(want_mean[f]));
        cr_expect_float_eq(std[f], sqrt(want_var[f]), 1e-9 * sqrt(want_var[f]));
    }
    float fm[SMALL_F], fs[SMALL_F];
    for (int f = 0; f < F; f++) { fm[f] = (float)mean[f]; fs[f] = (float)std[f]; }
    mt_frame_dataset_normalize(&ds, fm, fs);
    double m2[SMALL_F], s2[SMALL_F];
    mt_frame_dataset_stats(&ds, m2, s2);
    for (int f = 0; f < F; f++) {
        cr_expect(fabs(m2[f]) < 1e-5, "coefficient %d: mean %g after normalising", f, m2[f]);
        cr_expect(fabs(s2[f] - 1.0) < 1e-5, "coefficient %d: std %g after normalising", f, s2[f]);
    }
    /* windows: padding still zero, data (x - mean) / std */
    float w[(2 * 2 + 1) * SMALL_F];
    mt_frame_dataset_window(&ds, 0, w);   /* utterance a, frame 0: two rows of padding first */
    for (int i = 0; i < 2 * F; i++) cr_expect_eq(w[i], 0.0f, "padding element %d", i);
    for (int f = 0; f < F; f++) cr_expect_float_eq(w[2 * F + f], (feat(0, 0, f) - fm[f]) / fs[f], 1e-6);
    mt_frame_dataset_free(&ds);
}

/* ================================================================ (d) errors */

/* Loading rel fails with a message holding every needle. */
static void expect_load_error(const char *rel, int K, const char *needle1, const char *needle2)
{
    mt_frame_dataset ds = { .n_utts = -7 };
    mt_frame_dataset_opts o = { .context = K, .require_labels = true };
    mt_status st = mt_frame_dataset_load(tp(rel), &o, &ds);
    cr_expect_neq(st, MT_OK, "%s loaded", rel);
    const char *msg = mt_last_error();
    cr_expect(strstr(msg, "frame_dataset") != NULL, "%s", msg);
    if (needle1) cr_expect(strstr(msg, needle1) != NULL, "'%s' not in: %s", needle1, msg);
    if (needle2) cr_expect(strstr(msg, needle2) != NULL, "'%s' not in: %s", needle2, msg);
    cr_expect_eq(ds.n_utts, -7, "the output is untouched on error");
    if (st == MT_OK) mt_frame_dataset_free(&ds);
}

Test(frame_dataset, bad_inputs_give_clear_errors, .init = fd_setup, .fini = fd_teardown)
{
    static const utt_spec u2[] = { { "a", 4, 0 }, { "b", 3, 1 } };

    expect_load_error("nowhere", 1, "nowhere", "No such file");
    make_dir("nomfcc");
    expect_load_error("nomfcc", 1, "nomfcc/mfcc", "missing");
    make_split("empty", u2, 0, 2, true);
    expect_load_error("empty", 1, "empty/mfcc", "no .npy");

    /* a truncated features file */
    make_split("trunc", u2, 2, 2, true);
    struct stat st;
    cr_assert_eq(stat(tp("trunc/mfcc/b.npy"), &st), 0);
    cr_assert_eq(truncate(tp("trunc/mfcc/b.npy"), st.st_size - 5), 0);
    expect_load_error("trunc", 1, "trunc/mfcc/b.npy", "truncated");

    /* features 2 wide, then 3 wide */
    make_split("width", u2, 1, 2, true);
    save_mfcc("width", "b", 1, 3, 3, MT_F32);
    save_labels("width", "b", 1, 3);
    expect_load_error("width", 1, "width/mfcc/b.npy", "3 coefficients per frame, but");

    /* features of another shape or dtype */
    make_split("shape", u2, 1, 2, true);
    mt_tensor *v = mt_zeros(MT_F32, MT_SHAPE(6));
    cr_assert_eq(mt_npy_save(tp("shape/mfcc/b.npy"), v), MT_OK);
    expect_load_error("shape", 0, "shape/mfcc/b.npy", "[T, F]");
    mt_tensor *ints = mt_zeros(MT_I64, MT_SHAPE(3, 2));
    cr_assert_eq(mt_npy_save(tp("shape/mfcc/b.npy"), ints), MT_OK);
    expect_load_error("shape", 0, "shape/mfcc/b.npy", "float32 or float64");

    /* 3 frames, 4 labels; a missing labels file; a float labels file */
    make_split("count", u2, 2, 2, true);
    save_labels("count", "b", 1, 4);
    expect_load_error("count", 1, "count/labels/b.npy", "for 3 frames");
    cr_assert_eq(unlink(tp("count/labels/b.npy")), 0);
    expect_load_error("count", 1, "count/labels/b.npy", NULL);
    cr_assert_eq(mt_npy_save(tp("count/labels/b.npy"), mt_zeros(MT_F32, MT_SHAPE(3))), MT_OK);
    expect_load_error("count", 1, "count/labels/b.npy", "integers");

    /* transcripts: an unknown phone, [SOS]/[EOS] inside, a wrong count */
    make_dir("tr");
    make_dir("tr/mfcc");
    make_dir("tr/transcript");
    save_mfcc("tr", "a", 0, 3, 2, MT_F32);
    const char *bad[] = { "[SOS]", "AA", "XYZ", "B", "[EOS]" };
    cr_assert_eq(mt_npy_save_strings(tp("tr/transcript/a.npy"), 5, bad), MT_OK);
    expect_load_error("tr", 1, "tr/transcript/a.npy", "'XYZ' is not a frame phone");
    const char *inner[] = { "AA", "[EOS]", "B" };
    cr_assert_eq(mt_npy_save_strings(tp("tr/transcript/a.npy"), 3, inner), MT_OK);
    expect_load_error("tr", 1, "tr/transcript/a.npy", "'[EOS]'");
    const char *unwrapped[] = { "AA", "B", "B", "AA", "B" };
    cr_assert_eq(mt_npy_save_strings(tp("tr/transcript/a.npy"), 5, unwrapped), MT_OK);
    expect_load_error("tr", 1, "tr/transcript/a.npy", "5 phone strings for 3 frames");

    /* a label outside the classes: the file, the frame and the value */
    make_split("range", u2, 2, 2, true);
    int64_t big[3] = { 0, 45, 1 };
    cr_assert_eq(mt_npy_save(tp("range/labels/b.npy"), mt_from_data(MT_I64, MT_SHAPE(3), big)), MT_OK);
    mt_frame_dataset ds;
    cr_assert_eq(mt_frame_dataset_load(tp("range"), &(mt_frame_dataset_opts){ .n_classes = 40 }, &ds), MT_ERR_FORMAT);
    cr_expect(strstr(mt_last_error(), "range/labels/b.npy: label 45 of frame 1 is outside the 40 classes"), "%s",
              mt_last_error());
    cr_assert_eq(mt_frame_dataset_load(tp("range"), &(mt_frame_dataset_opts){ .n_classes = 0 }, &ds), MT_OK, "no limit");
    cr_expect_eq(ds.n_classes, 46);
    mt_frame_dataset_free(&ds);

    /* bad options */
    cr_expect_eq(mt_frame_dataset_load(tp("tr"), &(mt_frame_dataset_opts){ .n_classes = -1 }, &ds), MT_ERR_ARGUMENT);
    cr_expect_eq(mt_frame_dataset_load(tp("tr"), &(mt_frame_dataset_opts){ .context = -1 }, &ds), MT_ERR_ARGUMENT);
    cr_expect_eq(mt_frame_dataset_load(NULL, NULL, &ds), MT_ERR_ARGUMENT);
}

/* ================================================================ (e) the loader */

/* A corpus for the loader: 6 utterances, 61 frames, F 2. */
static mt_frame_dataset loader_corpus(int K)
{
    static const utt_spec u[] = { { "u0", 9, 0 }, { "u1", 1, 1 }, { "u2", 17, 2 }, { "u3", 0, 3 }, { "u4", 30, 4 }, { "u5", 4, 5 } };
    make_split("train", u, 6, 2, true);
    return load_ok("train", K);
}

/* Every batch of an epoch, flattened. */
typedef struct epoch_log {
    int64_t n_batches, rows, window;
    int64_t *index, *size, *frames, *y;
    float *x;
} epoch_log;

static epoch_log run_epoch(const mt_frame_dataset *ds, mt_frame_loader_opts o, int64_t epoch, int64_t first_batch)
{
    mt_frame_loader *L = mt_frame_loader_new(ds, &o);
    cr_assert_not_null(L, "%s", mt_last_error());
    const int64_t nb = mt_frame_loader_batches(L), B = o.batch_size;
    epoch_log log = { .window = (2 * ds->context + 1) * ds->feature_dim };
    log.index = calloc((size_t)nb + 1, sizeof *log.index);
    log.size = calloc((size_t)nb + 1, sizeof *log.size);
    log.frames = calloc((size_t)(nb * B) + 1, sizeof *log.frames);
    log.y = calloc((size_t)(nb * B) + 1, sizeof *log.y);
    log.x = calloc((size_t)(nb * B * log.window) + 1, sizeof *log.x);
    cr_assert_eq(mt_frame_loader_start(L, epoch, first_batch), MT_OK, "%s", mt_last_error());
    mt_frame_batch b;
    while (mt_frame_loader_next(L, &b)) {
        cr_assert_eq(b.index, first_batch + log.n_batches, "batches come in order");
        cr_assert(b.size >= 1 && b.size <= B);
        log.index[log.n_batches] = b.index;
        log.size[log.n_batches] = b.size;
        memcpy(log.frames + log.rows, b.frames, (size_t)b.size * sizeof *b.frames);
        memcpy(log.y + log.rows, b.y, (size_t)b.size * sizeof *b.y);
        memcpy(log.x + log.rows * log.window, b.x, (size_t)(b.size * log.window) * sizeof *b.x);
        log.n_batches++;
        log.rows += b.size;
    }
    cr_assert(!mt_frame_loader_failed(L), "%s", mt_last_error());
    cr_assert_eq(first_batch + log.n_batches, nb);
    cr_assert(mt_frame_loader_wait_seconds(L) >= 0.0);
    mt_frame_loader_free(L);
    return log;
}

static void free_log(epoch_log *l)
{
    free(l->index);
    free(l->size);
    free(l->frames);
    free(l->y);
    free(l->x);
}

Test(frame_loader, batches_in_order_with_windows_and_labels, .init = fd_setup, .fini = fd_teardown)
{
    mt_frame_dataset ds = loader_corpus(3);
    for (int pf = -1; pf <= 2; pf++) {
        epoch_log l = run_epoch(&ds, (mt_frame_loader_opts){ .batch_size = 8, .prefetch = pf }, 0, 0);
        cr_assert_eq(l.n_batches, 8, "61 frames in batches of 8: 7 full and 1 of 5");
        cr_assert_eq(l.size[7], 5);
        cr_assert_eq(l.rows, 61);
        float *w = malloc((size_t)l.window * sizeof *w);
        for (int64_t i = 0; i < 61; i++) {
            cr_assert_eq(l.frames[i], i);
            cr_assert_eq(l.y[i], ds.labels[i]);
            mt_frame_dataset_window(&ds, i, w);
            cr_assert_arr_eq(l.x + i * l.window, w, (size_t)l.window * sizeof *w, "frame %lld", (long long)i);
        }
        free(w);
        free_log(&l);
    }
    /* drop_last: the partial batch is skipped */
    epoch_log d = run_epoch(&ds, (mt_frame_loader_opts){ .batch_size = 8, .drop_last = true }, 0, 0);
    cr_expect_eq(d.n_batches, 7);
    cr_expect_eq(d.rows, 56);
    free_log(&d);
    epoch_log e = run_epoch(&ds, (mt_frame_loader_opts){ .batch_size = 61, .drop_last = true }, 0, 0);
    cr_expect_eq(e.n_batches, 1, "an exact multiple loses nothing");
    free_log(&e);
    mt_frame_dataset_free(&ds);
}

Test(frame_loader, shuffle_visits_every_frame_once_in_a_new_order_each_epoch, .init = fd_setup, .fini = fd_teardown)
{
    mt_frame_dataset ds = loader_corpus(1);
    mt_frame_loader_opts o = { .batch_size = 5, .shuffle = true, .seed = 42 };
    epoch_log e0 = run_epoch(&ds, o, 0, 0), e1 = run_epoch(&ds, o, 1, 0), again = run_epoch(&ds, o, 0, 0);
    o.seed = 43;
    epoch_log other = run_epoch(&ds, o, 0, 0);
    const epoch_log *all[] = { &e0, &e1, &other };
    for (int k = 0; k < 3; k++) {
        int seen[61] = { 0 };
        cr_assert_eq(all[k]->rows, 61);
        for (int64_t i = 0; i < 61; i++) {
            cr_assert(all[k]->frames[i] >= 0 && all[k]->frames[i] < 61);
            seen[all[k]->frames[i]]++;
            cr_assert_eq(all[k]->y[i], ds.labels[all[k]->frames[i]], "labels follow their frames");
        }
        for (int i = 0; i < 61; i++) cr_assert_eq(seen[i], 1, "frame %d seen %d times", i, seen[i]);
    }
    int64_t same01 = 0, same_seed = 0, in_place = 0;
    for (int64_t i = 0; i < 61; i++) {
        same01 += e0.frames[i] == e1.frames[i];
        same_seed += e0.frames[i] == other.frames[i];
        in_place += e0.frames[i] == i;
    }
    cr_expect(same01 < 10, "epochs 0 and 1 share %lld of 61 positions", (long long)same01);
    cr_expect(same_seed < 10, "seeds 42 and 43 share %lld of 61 positions", (long long)same_seed);
    cr_expect(in_place < 10, "the shuffle left %lld of 61 frames in place", (long long)in_place);
    cr_expect_arr_eq(e0.frames, again.frames, 61 * sizeof *e0.frames, "(seed, epoch) fixes the order");
    free_log(&e0);
    free_log(&e1);
    free_log(&again);
    free_log(&other);
    mt_frame_dataset_free(&ds);
}

static void expect_same_tail(const epoch_log *full, const epoch_log *got, int64_t first_batch, const char *what)
{
    int64_t row0 = 0;
    for (int64_t b = 0; b < first_batch; b++) row0 += full->size[b];
    cr_assert_eq(got->n_batches, full->n_batches - first_batch, "%s", what);
    cr_assert_eq(got->rows, full->rows - row0, "%s", what);
    cr_assert_arr_eq(got->size, full->size + first_batch, (size_t)got->n_batches * sizeof *got->size, "%s", what);
    cr_assert_arr_eq(got->frames, full->frames + row0, (size_t)got->rows * sizeof *got->frames, "%s", what);
    cr_assert_arr_eq(got->y, full->y + row0, (size_t)got->rows * sizeof *got->y, "%s", what);
    cr_assert_arr_eq(got->x, full->x + row0 * full->window, (size_t)(got->rows * full->window) * sizeof *got->x,
                     "%s: windows (masks included)", what);
}

Test(frame_loader, same_batches_whatever_the_prefetch_depth_and_on_resume, .init = fd_setup, .fini = fd_teardown)
{
    mt_frame_dataset ds = loader_corpus(2);
    mt_frame_loader_opts o = { .batch_size = 4, .shuffle = true, .seed = 7, .prefetch = -1,
                               .masking = { .freq_masks = 1, .freq_width = 1, .time_masks = 2, .time_width = 2 } };
    for (int64_t epoch = 0; epoch < 2; epoch++) {
        epoch_log ref = run_epoch(&ds, o, epoch, 0);   /* no thread: made on demand */
        cr_assert_eq(ref.n_batches, 16);
        const int depths[] = { -1, 0, 1, 2, 4, 100 };
        for (size_t k = 0; k < sizeof depths / sizeof *depths; k++) {
            mt_frame_loader_opts p = o;
            p.prefetch = depths[k];
            p.pinned = k % 2 == 1;
            const int64_t firsts[] = { 0, 1, 5, 15, 16 };
            for (size_t f = 0; f < sizeof firsts / sizeof *firsts; f++) {
                char what[96];
                snprintf(what, sizeof what, "epoch %lld, prefetch %d, first_batch %lld", (long long)epoch, depths[k],
                         (long long)firsts[f]);
                epoch_log got = run_epoch(&ds, p, epoch, firsts[f]);
                expect_same_tail(&ref, &got, firsts[f], what);
                free_log(&got);
            }
        }
        free_log(&ref);
    }
    mt_frame_dataset_free(&ds);
}

Test(frame_loader, restart_and_free_mid_epoch, .init = fd_setup, .fini = fd_teardown)
{
    mt_frame_dataset ds = loader_corpus(1);
    mt_frame_loader_opts o = { .batch_size = 3, .shuffle = true, .seed = 1, .prefetch = 2 };
    epoch_log ref = run_epoch(&ds, o, 3, 0);
    mt_frame_loader *L = mt_frame_loader_new(&ds, &o);
    cr_assert_not_null(L);
    mt_frame_batch b;
    /* a few batches of epoch 0, then epoch 3 from its start: the old
       epoch's prefetched batches are dropped */
    cr_assert_eq(mt_frame_loader_start(L, 0, 0), MT_OK);
    for (int i = 0; i < 4; i++) cr_assert(mt_frame_loader_next(L, &b));
    cr_assert_eq(mt_frame_loader_start(L, 3, 0), MT_OK);
    int64_t row = 0;
    while (mt_frame_loader_next(L, &b)) {
        cr_assert_arr_eq(b.frames, ref.frames + row, (size_t)b.size * sizeof *b.frames, "batch %lld", (long long)b.index);
        row += b.size;
    }
    cr_assert_eq(row, 61);
    cr_assert(!mt_frame_loader_next(L, &b), "the end stays the end");
    /* then mid-epoch again, and freed there with batches in flight */
    cr_assert_eq(mt_frame_loader_start(L, 4, 2), MT_OK);
    cr_assert(mt_frame_loader_next(L, &b));
    cr_assert_eq(b.index, 2);
    mt_frame_loader_free(L);

    /* freed right after start, and never started */
    for (int pf = -1; pf <= 4; pf++) {
        o.prefetch = pf;
        L = mt_frame_loader_new(&ds, &o);
        cr_assert_not_null(L);
        cr_assert_eq(mt_frame_loader_start(L, 0, 0), MT_OK);
        mt_frame_loader_free(L);
        L = mt_frame_loader_new(&ds, &o);
        mt_frame_loader_free(L);
    }
    mt_frame_loader_free(NULL);
    free_log(&ref);
    mt_frame_dataset_free(&ds);
}

/* The zeros of a masked all-ones window: whole coefficient columns (the
   bands) and whole frame rows (the runs), within the limits. */
static void check_mask_shape(const float *w, int K, int F, const mt_frame_masking *m, int *zero_cols, int *zero_rows)
{
    const int W = 2 * K + 1;
    bool col[64] = { 0 }, rowz[64] = { 0 };
    *zero_cols = *zero_rows = 0;
    for (int f = 0; f < F; f++) {
        col[f] = true;
        for (int t = 0; t < W; t++) col[f] = col[f] && w[t * F + f] == 0.0f;
        *zero_cols += col[f];
    }
    for (int t = 0; t < W; t++) {
        rowz[t] = true;
        for (int f = 0; f < F; f++) rowz[t] = rowz[t] && w[t * F + f] == 0.0f;
        *zero_rows += rowz[t];
    }
    for (int t = 0; t < W; t++)
        for (int f = 0; f < F; f++) {
            float v = w[t * F + f];
            cr_assert(v == 1.0f || v == 0.0f);
            if (v == 0.0f) cr_assert(col[f] || rowz[t], "a zero at (%d, %d) outside every band and run", t, f);
        }
    /* bands may overlap, so they cover at most masks * width columns (rows) */
    if (*zero_cols < F) cr_assert(*zero_cols <= m->freq_masks * m->freq_width, "%d zero columns", *zero_cols);
    if (*zero_rows < W) cr_assert(*zero_rows <= m->time_masks * m->time_width, "%d zero rows", *zero_rows);
}

Test(frame_loader, masking_zeroes_bands_and_runs_deterministically, .init = fd_setup, .fini = fd_teardown)
{
    enum { K = 4, F = 10, W = (2 * K + 1) * F };
    const mt_frame_masking m = { .freq_masks = 2, .freq_width = 3, .time_masks = 1, .time_width = 4 };
    int max_cols = 0, max_rows = 0, masked = 0, distinct = 0;
    float prev[W] = { 0 };
    for (int64_t b = 0; b < 200; b++) {
        float w[W], w2[W];
        for (int i = 0; i < W; i++) w[i] = w2[i] = 1.0f;
        mt_frame_mask_window(&m, K, F, 9, 1, b, 3, w);
        mt_frame_mask_window(&m, K, F, 9, 1, b, 3, w2);
        cr_assert_arr_eq(w, w2, sizeof w, "a function of (seed, epoch, batch, row)");
        int c, r;
        check_mask_shape(w, K, F, &m, &c, &r);
        if (c > max_cols) max_cols = c;
        if (r > max_rows) max_rows = r;
        masked += c > 0 || r > 0;
        distinct += memcmp(prev, w, sizeof w) != 0;
        memcpy(prev, w, sizeof w);
    }
    cr_expect(max_cols >= 3 && max_rows == 4, "the widths reach their limits (cols %d, rows %d)", max_cols, max_rows);
    cr_expect(masked > 150 && distinct > 150, "masked %d, distinct %d of 200", masked, distinct);
    /* no masking when every count or width is 0 */
    float w[W];
    for (int i = 0; i < W; i++) w[i] = 1.0f;
    mt_frame_mask_window(&(mt_frame_masking){ .freq_masks = 3, .time_width = 5 }, K, F, 9, 1, 0, 0, w);
    for (int i = 0; i < W; i++) cr_assert_eq(w[i], 1.0f);

    /* the loader's rows are the windows masked by (seed, epoch, batch, row) */
    mt_frame_dataset ds = loader_corpus(2);
    mt_frame_loader_opts o = { .batch_size = 6, .shuffle = true, .seed = 9, .masking = m };
    epoch_log l = run_epoch(&ds, o, 5, 0);
    const int64_t Wd = l.window;
    float *want = malloc((size_t)Wd * sizeof *want);
    int64_t row = 0, changed = 0;
    for (int64_t b = 0; b < l.n_batches; b++)
        for (int64_t r = 0; r < l.size[b]; r++, row++) {
            mt_frame_dataset_window(&ds, l.frames[row], want);
            mt_frame_mask_window(&o.masking, ds.context, ds.feature_dim, o.seed, 5, b, r, want);
            cr_assert_arr_eq(l.x + row * Wd, want, (size_t)Wd * sizeof *want, "batch %lld row %lld", (long long)b, (long long)r);
            float plain[5 * 2];
            mt_frame_dataset_window(&ds, l.frames[row], plain);
            changed += memcmp(plain, want, sizeof plain) != 0;
        }
    cr_expect(changed > 20, "masking changed only %lld of 61 windows", (long long)changed);
    free(want);
    free_log(&l);
    mt_frame_dataset_free(&ds);
}

Test(frame_loader, errors_reach_the_consumer, .init = fd_setup, .fini = fd_teardown)
{
    mt_frame_dataset ds = loader_corpus(1);
    cr_expect_null(mt_frame_loader_new(&ds, &(mt_frame_loader_opts){ .batch_size = 0 }));
    cr_expect(strstr(mt_last_error(), "batch_size"), "%s", mt_last_error());
    cr_expect_null(mt_frame_loader_new(NULL, &(mt_frame_loader_opts){ .batch_size = 1 }));
    cr_expect_null(mt_frame_loader_new(&ds, &(mt_frame_loader_opts){ .batch_size = 1, .masking = { .freq_masks = -1 } }));

    for (int pf = -1; pf <= 1; pf++) {
        mt_frame_loader *L = mt_frame_loader_new(&ds, &(mt_frame_loader_opts){ .batch_size = 4, .prefetch = pf });
        cr_assert_not_null(L);
        mt_frame_batch b;
        cr_expect(!mt_frame_loader_next(L, &b));
        cr_expect(mt_frame_loader_failed(L));
        cr_expect(strstr(mt_last_error(), "start"), "%s", mt_last_error());
        cr_expect_eq(mt_frame_loader_start(L, 0, 17), MT_ERR_ARGUMENT, "16 batches: 17 is past the end");
        cr_expect_eq(mt_frame_loader_start(L, -1, 0), MT_ERR_ARGUMENT);
        cr_expect_eq(mt_frame_loader_start(L, 0, 16), MT_OK, "the end itself: an empty epoch");
        cr_expect(!mt_frame_loader_next(L, &b));
        cr_expect(!mt_frame_loader_failed(L));

        /* an error on the worker thread: its message crosses to this one */
        const int64_t n = ds.n_frames;
        ds.n_frames = 10;
        mt_clear_error();
        cr_assert_eq(mt_frame_loader_start(L, 0, 0), MT_OK);
        cr_expect(!mt_frame_loader_next(L, &b));
        cr_expect(mt_frame_loader_failed(L), "prefetch %d", pf);
        cr_expect(strstr(mt_last_error(), "the dataset changed"), "prefetch %d: '%s'", pf, mt_last_error());
        ds.n_frames = n;
        cr_assert_eq(mt_frame_loader_start(L, 0, 0), MT_OK, "a new start clears the error");
        cr_expect(mt_frame_loader_next(L, &b));
        cr_expect(!mt_frame_loader_failed(L));
        mt_frame_loader_free(L);
    }
    mt_frame_dataset_free(&ds);
}
