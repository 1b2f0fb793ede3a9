/*
 * test_speech_frames.c - the frame-level phoneme classification task
 * (models/speech_frames/speech_frames_task.h) on a tiny synthetic corpus in the course
 * layout: each frame's features are its phone's mean vector plus noise (and
 * a common offset and scale, which the input standardization must undo),
 * so the labels are learnable; [SIL] is the most frequent phone.
 *
 * Checks: training beats the majority-class baseline by far; resuming from
 * an epoch-boundary or a mid-epoch checkpoint ends bitwise equal to an
 * uninterrupted run; eval of the final checkpoint reproduces the reported
 * dev accuracy; predict writes one "id,label" row per frame; bad inputs
 * give clear errors.
 */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/speech_frames/speech_frames_task.h"
#include "models/speech_data/speech_phones.h"

enum { F = 6, N_PHONES_USED = 6 };
static const int phones_used[N_PHONES_USED] = { 0, 1, 3, 17, 23, 31 };   /* [SIL] AA AH IH N T */

static char tmp_dir[64];

/* tmp_dir/name (a rotating set of buffers, so several can be live at once). */
static const char *tmp_path(const char *name) { return mt_test_path(tmp_dir, name); }

static void make_dir(const char *path) { cr_assert(mkdir(path, 0777) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno)); }

/* A small deterministic generator for the corpus (xorshift64*), and a normal via Box-Muller. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }
static double rng_normal(uint64_t *s)
{
    double u = rng_unit(s), v = rng_unit(s);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* Writes split/mfcc/<utt>.npy and split/labels/<utt>.npy for n_utts utterances of f features. */
static void write_split(const char *root, const char *split, int n_utts, int f, uint64_t seed)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", root, split);
    make_dir(dir);
    snprintf(path, sizeof path, "%s/mfcc", dir); make_dir(path);
    snprintf(path, sizeof path, "%s/labels", dir); make_dir(path);
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int u = 0; u < n_utts; u++) {
        int t_len = 40 + (int)(rng_next(&s) % 30);
        float *x = malloc((size_t)t_len * (size_t)f * sizeof *x);
        int64_t *y = malloc((size_t)t_len * sizeof *y);
        cr_assert(x && y);
        for (int t = 0; t < t_len;) {
            /* segments of 3..8 frames; [SIL] a third of the time */
            int ph = rng_unit(&s) < 0.34 ? 0 : phones_used[1 + rng_next(&s) % (N_PHONES_USED - 1)];
            int len = 3 + (int)(rng_next(&s) % 6);
            for (int k = 0; k < len && t < t_len; k++, t++) {
                y[t] = ph;
                for (int j = 0; j < f; j++) {
                    /* the phone's mean: a fixed pattern per (phone, coefficient) */
                    double mean = 2.0 * sin(0.7 * ph + 1.3 * j) + (j == ph % f ? 1.5 : 0);
                    x[(size_t)t * (size_t)f + (size_t)j] = (float)(10 + 3 * (mean + 0.5 * rng_normal(&s)));
                }
            }
        }
        char name[64];
        snprintf(name, sizeof name, "%04d-%06d", u % 3, u);
        mt_tensor *tx = mt_from_data(MT_F32, MT_SHAPE(t_len, f), x);
        mt_tensor *ty = mt_from_data(MT_I64, MT_SHAPE(t_len), y);
        snprintf(path, sizeof path, "%s/mfcc/%s.npy", dir, name);
        cr_assert_eq(mt_npy_save(path, tx), MT_OK, "%s", mt_last_error());
        snprintf(path, sizeof path, "%s/labels/%s.npy", dir, name);
        cr_assert_eq(mt_npy_save(path, ty), MT_OK, "%s", mt_last_error());
        mt_free(tx);
        mt_free(ty);
        free(x);
        free(y);
    }
}

/* tmp_dir/<name>: train 8, dev 3, test 3 utterances (about 440 / 165 / 165 frames). */
static const char *make_corpus(const char *name, int f)
{
    static char root[512];
    snprintf(root, sizeof root, "%s/%s", tmp_dir, name);
    make_dir(root);
    write_split(root, "train-clean-100", 8, f, 1);
    write_split(root, "dev-clean", 3, f, 2);
    write_split(root, "test-clean", 3, f, 3);
    return root;
}

static void sf_setup(void)
{
    mt_test_setup();
    mt_test_temp_dir(tmp_dir, sizeof tmp_dir, "speech_frames");
}

static void sf_teardown(void)
{
    mt_test_remove_tree(tmp_dir);
    mt_test_teardown();
}

/* Small and quick: K 2, one hidden layer of 32, batch 32, dropout and masking on. */
static mt_speech_frames_opts small_opts(const char *data, const char *run)
{
    mt_speech_frames_opts o = mt_speech_frames_defaults();
    o.data_dir = data;
    o.run_dir = run;
    o.n_hidden = 1;
    o.hidden[0] = 32;
    o.context = 2;
    o.batch_size = 32;
    o.lr = 1e-2;
    o.epochs = 3;
    o.freq_mask = 1;
    o.time_mask = 1;
    o.prefetch = 2;
    o.device = "cpu";
    return o;
}

/* Whether two checkpoints hold bitwise the same tensors (names, shapes, bytes). */
static void assert_same_tensors(const char *a, const char *b)
{
    mt_tensor_list la, lb;
    cr_assert_eq(mt_safetensors_load(a, &la), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_safetensors_load(b, &lb), MT_OK, "%s", mt_last_error());
    cr_assert_eq(la.n, lb.n, "%d vs %d tensors", la.n, lb.n);
    for (int i = 0; i < la.n; i++) {
        cr_assert_str_eq(la.items[i].name, lb.items[i].name);
        mt_tensor *x = la.items[i].tensor, *y = lb.items[i].tensor;
        cr_assert(x->dtype == y->dtype && mt_same_shape(x, y), "%s differs in dtype or shape", la.items[i].name);
        size_t n = (size_t)mt_numel(x) * mt_dtype_size(x->dtype);
        cr_assert(memcmp(mt_data_ptr(x), mt_data_ptr(y), n) == 0, "'%s' differs between %s and %s", la.items[i].name, a, b);
    }
    for (int i = 0; i < la.n; i++) mt_free(la.items[i].tensor);
    for (int i = 0; i < lb.n; i++) mt_free(lb.items[i].tensor);
    mt_tensor_list_free(&la);
    mt_tensor_list_free(&lb);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert(s && fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

Test(speech_frames, learns_far_above_majority_and_eval_reproduces, .init = sf_setup, .fini = sf_teardown)
{
    const char *data = make_corpus("data", F);
    mt_speech_frames_opts o = small_opts(data, tmp_path("run"));
    o.epochs = 12;
    mt_speech_frames_report r;
    cr_assert_eq(mt_speech_frames_train(&o, &r), MT_OK, "%s", mt_last_error());
    cr_log_info("speech-frames: %lld steps, train acc %.3f, dev acc %.3f, test acc %.3f, majority %.3f/%.3f",
                (long long)r.steps, r.train_acc, r.dev_acc, r.test_acc, r.majority_dev_acc, r.majority_test_acc);
    cr_assert(r.finished && !r.stopped && r.epochs_done == 12);
    cr_assert_eq(r.majority_class, MT_PHONE_SIL);
    cr_assert(r.has_test);
    cr_expect_gt(r.dev_acc, 0.8, "dev accuracy %.3f", r.dev_acc);
    cr_expect_gt(r.test_acc, 0.8, "test accuracy %.3f", r.test_acc);
    cr_expect_lt(r.majority_dev_acc, 0.5, "majority %.3f", r.majority_dev_acc);
    cr_expect_gt(r.dev_acc, r.majority_dev_acc + 0.3);

    /* one metrics line per epoch, with every field */
    char *metrics = read_text(tmp_path("run/metrics.jsonl"));
    cr_expect_eq(count_lines(metrics), 12);
    const char *fields[] = { "\"epoch\":12,", "\"step\":", "\"lr\":", "\"train_loss\":", "\"train_acc\":", "\"dev_loss\":",
                             "\"dev_acc\":", "\"seconds\":", "\"samples_per_s\":", "\"data_wait_s\":" };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) cr_expect_not_null(strstr(metrics, fields[i]), "%s", fields[i]);
    free(metrics);

    /* eval of the final checkpoint: the same dev accuracy and loss, bit for bit */
    mt_speech_frames_eval_opts eo = { .checkpoint = tmp_path("run/last.safetensors"), .data_dir = data, .split = "dev-clean",
                                      .device = "cpu" };
    mt_speech_frames_eval_report er;
    cr_assert_eq(mt_speech_frames_eval(&eo, &er), MT_OK, "%s", mt_last_error());
    cr_expect_eq(er.frames, r.dev_frames);
    cr_expect_eq(er.accuracy, r.dev_acc, "eval %.17g vs training %.17g", er.accuracy, r.dev_acc);
    cr_expect_eq(er.loss, r.dev_loss, "eval loss %.17g vs training %.17g", er.loss, r.dev_loss);
    int64_t total = 0, diag = 0;
    for (int i = 0; i < er.n_classes; i++)
        for (int j = 0; j < er.n_classes; j++) {
            total += er.confusion[i * er.n_classes + j];
            if (i == j) diag += er.confusion[i * er.n_classes + j];
        }
    cr_expect_eq(total, er.frames);
    cr_expect_eq((double)diag / (double)total, er.accuracy);
    mt_speech_frames_eval_report_free(&er);

    /* test split too */
    eo.split = "test-clean";
    cr_assert_eq(mt_speech_frames_eval(&eo, &er), MT_OK, "%s", mt_last_error());
    cr_expect_eq(er.accuracy, r.test_acc);
    mt_speech_frames_eval_report_free(&er);

    /* best.safetensors exists and evaluates to the best dev accuracy */
    eo.split = "dev-clean";
    eo.checkpoint = tmp_path("run/best.safetensors");
    cr_assert_eq(mt_speech_frames_eval(&eo, &er), MT_OK, "%s", mt_last_error());
    cr_expect_eq(er.accuracy, r.best_dev_acc);
    mt_speech_frames_eval_report_free(&er);
}

Test(speech_frames, resume_at_epoch_boundary_is_bitwise_equal, .init = sf_setup, .fini = sf_teardown)
{
    const char *data = make_corpus("data", F);
    mt_speech_frames_opts o = small_opts(data, tmp_path("full"));
    o.schedule = MT_SCHEDULE_PLATEAU;   /* its state is replayed from the dev history */
    o.plateau_patience = 0;
    mt_speech_frames_report full, part;
    cr_assert_eq(mt_speech_frames_train(&o, &full), MT_OK, "%s", mt_last_error());
    int64_t per_epoch = full.steps / o.epochs;

    o.run_dir = tmp_path("split");
    o.stop_after = per_epoch;   /* stop at the end of epoch 1 */
    cr_assert_eq(mt_speech_frames_train(&o, &part), MT_OK, "%s", mt_last_error());
    cr_assert(part.stopped && part.epochs_done == 1, "stopped %d, epochs %d", part.stopped, part.epochs_done);
    o.stop_after = 0;
    o.resume = "auto";
    o.epochs = 0;   /* the checkpoint's */
    cr_assert_eq(mt_speech_frames_train(&o, &part), MT_OK, "%s", mt_last_error());
    cr_assert(part.resumed && part.finished && part.epochs_done == 3);
    cr_expect_eq(part.steps, full.steps);
    cr_expect_eq(part.dev_acc, full.dev_acc);
    assert_same_tensors(tmp_path("full/last.safetensors"), tmp_path("split/last.safetensors"));
    assert_same_tensors(tmp_path("full/best.safetensors"), tmp_path("split/best.safetensors"));
    /* the metrics log has one line per epoch */
    char *m = read_text(tmp_path("split/metrics.jsonl"));
    cr_expect_eq(count_lines(m), 3);
    free(m);
}

Test(speech_frames, resume_mid_epoch_is_bitwise_equal, .init = sf_setup, .fini = sf_teardown)
{
    const char *data = make_corpus("data", F);
    mt_speech_frames_opts o = small_opts(data, tmp_path("full"));
    mt_speech_frames_report full, part;
    cr_assert_eq(mt_speech_frames_train(&o, &full), MT_OK, "%s", mt_last_error());
    int64_t per_epoch = full.steps / o.epochs;
    cr_assert_gt(per_epoch, 6);

    o.run_dir = tmp_path("split");
    o.save_every = 3;
    o.stop_after = per_epoch + 6;   /* in epoch 2, at a --save-every checkpoint */
    cr_assert_eq(mt_speech_frames_train(&o, &part), MT_OK, "%s", mt_last_error());
    cr_assert(part.stopped && part.epochs_done == 1);
    cr_expect_eq(part.steps, per_epoch + 6);
    o.stop_after = 0;
    o.resume = tmp_path("split/last.safetensors");
    cr_assert_eq(mt_speech_frames_train(&o, &part), MT_OK, "%s", mt_last_error());
    cr_assert(part.finished);
    cr_expect_eq(part.steps, full.steps);
    cr_expect_eq(part.dev_acc, full.dev_acc);
    cr_expect_eq(part.train_loss, full.train_loss);
    assert_same_tensors(tmp_path("full/last.safetensors"), tmp_path("split/last.safetensors"));
}

Test(speech_frames, predict_writes_one_row_per_frame, .init = sf_setup, .fini = sf_teardown)
{
    const char *data = make_corpus("data", F);
    mt_speech_frames_opts o = small_opts(data, tmp_path("run"));
    o.linear = true;   /* the linear baseline trains too */
    o.epochs = 2;
    o.skip_test = true;
    mt_speech_frames_report r;
    cr_assert_eq(mt_speech_frames_train(&o, &r), MT_OK, "%s", mt_last_error());
    cr_expect_eq(r.parameters, (int64_t)(5 * F) * MT_SPEECH_N_PHONES + MT_SPEECH_N_PHONES);
    cr_expect(!r.has_test);

    /* test-clean without its labels: predict needs none */
    char labels[600];
    snprintf(labels, sizeof labels, "%s/test-clean/labels", data);
    mt_test_remove_tree(labels);
    mt_speech_frames_eval_opts eo = { .checkpoint = tmp_path("run/last.safetensors"), .data_dir = data,
                                      .split = "test-clean", .device = "cpu" };
    int64_t rows = 0;
    cr_assert_eq(mt_speech_frames_predict(&eo, tmp_path("pred.csv"), &rows), MT_OK, "%s", mt_last_error());
    char *csv = read_text(tmp_path("pred.csv"));
    cr_expect_eq(count_lines(csv), rows + 1);
    cr_assert_eq(strncmp(csv, "id,label\n", 9), 0);
    int64_t expect_id = 0;
    for (char *line = strchr(csv, '\n') + 1; *line; expect_id++) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl);
        *nl = '\0';
        char *comma = strchr(line, ',');
        cr_assert_not_null(comma, "row '%s'", line);
        *comma = '\0';
        cr_expect_eq(strtoll(line, NULL, 10), expect_id);
        int ph = mt_speech_phone_index(comma + 1);
        cr_expect(ph >= 0 && ph < MT_SPEECH_N_PHONES, "label '%s'", comma + 1);
        line = nl + 1;
    }
    cr_expect_eq(expect_id, rows);
    free(csv);

    /* eval needs labels: a clear error */
    cr_expect_neq(mt_speech_frames_eval(&(mt_speech_frames_eval_opts){ .checkpoint = eo.checkpoint, .data_dir = data,
                                                                        .split = "test-clean" }, &(mt_speech_frames_eval_report){ 0 }),
                  MT_OK);
}

Test(speech_frames, bad_inputs_give_clear_errors, .init = sf_setup, .fini = sf_teardown)
{
    mt_speech_frames_report r;
    mt_speech_frames_opts o = small_opts(tmp_path("nowhere"), tmp_path("run"));
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "nowhere"), "%s", mt_last_error());
    cr_expect_not_null(strstr(mt_last_error(), "not found"), "%s", mt_last_error());

    const char *data = make_corpus("data", F);
    o = small_opts(data, tmp_path("run"));
    o.epochs = 1;
    o.skip_test = true;
    cr_assert_eq(mt_speech_frames_train(&o, &r), MT_OK, "%s", mt_last_error());
    /* a second fresh run into the same folder is refused */
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "--resume"), "%s", mt_last_error());

    /* a checkpoint whose tensors do not match its settings (another width) */
    mt_tensor_list t;
    mt_safetensors_metadata meta;
    cr_assert_eq(mt_safetensors_load_with_metadata(tmp_path("run/last.safetensors"), &t, &meta), MT_OK, "%s", mt_last_error());
    for (int i = 0; i < meta.n; i++)
        if (strcmp(meta.keys[i], "hidden") == 0) {
            free(meta.values[i]);
            meta.values[i] = strdup("48");
        }
    cr_assert_eq(mt_safetensors_save(tmp_path("other.safetensors"), t, meta.n, (const char *const *)meta.keys,
                                     (const char *const *)meta.values), MT_OK, "%s", mt_last_error());
    mt_safetensors_metadata_free(&meta);
    mt_speech_frames_eval_opts eo = { .checkpoint = tmp_path("other.safetensors"), .data_dir = data, .split = "dev-clean" };
    mt_speech_frames_eval_report er;
    cr_assert_neq(mt_speech_frames_eval(&eo, &er), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "shape"), "%s", mt_last_error());

    /* a safetensors file that is not a checkpoint of this task */
    mt_named_tensor only[] = { { "model.weight", t.items[0].tensor } };
    cr_assert_eq(mt_safetensors_save(tmp_path("foreign.safetensors"), (mt_tensor_list){ 1, only }, 0, NULL, NULL), MT_OK);
    for (int i = 0; i < t.n; i++) mt_free(t.items[i].tensor);
    mt_tensor_list_free(&t);
    eo.checkpoint = tmp_path("foreign.safetensors");
    cr_assert_neq(mt_speech_frames_eval(&eo, &er), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "not a speech-frames checkpoint"), "%s", mt_last_error());

    /* a missing checkpoint, a missing split, data of another width */
    eo.checkpoint = tmp_path("run/none.safetensors");
    cr_assert_neq(mt_speech_frames_eval(&eo, &er), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "not found"), "%s", mt_last_error());
    eo.checkpoint = tmp_path("run/last.safetensors");
    eo.split = "dev-other";
    cr_assert_neq(mt_speech_frames_eval(&eo, &er), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "dev-other"), "%s", mt_last_error());
    char narrow[512];
    snprintf(narrow, sizeof narrow, "%s/narrow", tmp_dir);
    make_dir(narrow);
    write_split(narrow, "dev-clean", 2, F - 1, 5);
    eo = (mt_speech_frames_eval_opts){ .checkpoint = tmp_path("run/last.safetensors"), .data_dir = narrow, .split = "dev-clean" };
    cr_assert_neq(mt_speech_frames_eval(&eo, &er), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "coefficients"), "%s", mt_last_error());

    /* bad options */
    o.resume = NULL;
    o.run_dir = tmp_path("run2");
    o.dropout = 1.5;
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect_not_null(strstr(mt_last_error(), "dropout"), "%s", mt_last_error());
    cr_expect_neq(mt_speech_frames_parse_hidden("12,x", &o), MT_OK);
    cr_expect_eq(mt_speech_frames_parse_hidden("12,7", &o), MT_OK);
    cr_expect(o.n_hidden == 2 && o.hidden[0] == 12 && o.hidden[1] == 7);
}

static bool path_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Overwrites tmp_dir/<rel> (an MFCC file) with NaN features of the same shape. */
static void poison_mfcc(const char *rel)
{
    mt_tensor *t = mt_npy_load(tmp_path(rel));
    cr_assert_not_null(t, "%s", mt_last_error());
    mt_tensor *nan = mt_full(MT_F32, t->ndim, t->shape, NAN);
    cr_assert_eq(mt_npy_save(tmp_path(rel), nan), MT_OK, "%s", mt_last_error());
    mt_free(t);
    mt_free(nan);
}

Test(speech_frames, a_nan_in_the_data_stops_the_run_and_keeps_the_checkpoints, .init = sf_setup, .fini = sf_teardown)
{
    const char *data = make_corpus("data", F);
    mt_speech_frames_opts o = small_opts(data, tmp_path("run"));
    o.epochs = 1;
    o.skip_test = true;
    mt_speech_frames_report r;
    cr_assert_eq(mt_speech_frames_train(&o, &r), MT_OK, "%s", mt_last_error());
    char *last = read_text(tmp_path("run/last.safetensors")), *best = read_text(tmp_path("run/best.safetensors"));
    struct stat sb;
    cr_assert_eq(stat(tmp_path("run/last.safetensors"), &sb), 0);
    const size_t n_last = (size_t)sb.st_size;
    char *metrics = read_text(tmp_path("run/metrics.jsonl"));

    /* an utterance turns NaN: the resumed run (the checkpoint's statistics) meets it in a batch */
    poison_mfcc("data/train-clean-100/mfcc/0001-000004.npy");
    o.resume = "auto";
    o.epochs = 3;
    o.save_every = 1;
    cr_assert_eq(mt_speech_frames_train(&o, &r), MT_ERR_STATE);
    const char *msg = mt_last_error();
    cr_expect(strstr(msg, "speech-frames: step "), "%s", msg);
    cr_expect(strstr(msg, "(epoch 2, batch "), "%s", msg);
    cr_expect(strstr(msg, "the loss is NaN"), "%s", msg);
    /* best.safetensors and the metrics are the first epoch's; last.safetensors is a finite state */
    char *best2 = read_text(tmp_path("run/best.safetensors")), *metrics2 = read_text(tmp_path("run/metrics.jsonl"));
    cr_assert_eq(stat(tmp_path("run/best.safetensors"), &sb), 0);
    cr_expect(memcmp(best, best2, (size_t)sb.st_size) == 0, "best.safetensors was overwritten");
    cr_expect_str_eq(metrics2, metrics);
    if (strstr(msg, "resumed from")) {
        char *last2 = read_text(tmp_path("run/last.safetensors"));
        cr_expect(memcmp(last, last2, n_last) == 0, "last.safetensors was overwritten");
        free(last2);
    }
    mt_speech_frames_eval_opts eo = { .checkpoint = tmp_path("run/last.safetensors"), .data_dir = data, .split = "dev-clean",
                                      .device = "cpu" };
    mt_speech_frames_eval_report er;
    cr_assert_eq(mt_speech_frames_eval(&eo, &er), MT_OK, "%s", mt_last_error());
    cr_expect(isfinite(er.loss) && er.accuracy > 0.2, "the kept checkpoint evaluates to loss %g, accuracy %g", er.loss, er.accuracy);
    mt_speech_frames_eval_report_free(&er);
    free(last); free(best); free(best2); free(metrics); free(metrics2);

    /* a fresh run on that data: stopped at its first step, and no run folder is left */
    o = small_opts(data, tmp_path("fresh"));
    cr_assert_eq(mt_speech_frames_train(&o, &r), MT_ERR_STATE);
    cr_expect(strstr(mt_last_error(), "step 1 (epoch 1, batch 1 of "), "%s", mt_last_error());
    cr_expect(!path_exists(tmp_path("fresh")), "the failed run left its folder");
}

Test(speech_frames, labels_and_paths_are_named_in_errors, .init = sf_setup, .fini = sf_teardown)
{
    const char *data = make_corpus("data", F);
    mt_speech_frames_report r;

    /* a label outside the 40 phones: its file, frame and value; no run folder */
    mt_tensor *t = mt_npy_load(tmp_path("data/dev-clean/labels/0002-000002.npy"));
    cr_assert_not_null(t);
    int64_t *bad = malloc((size_t)t->shape[0] * sizeof *bad);
    for (int64_t i = 0; i < t->shape[0]; i++) bad[i] = i == 7 ? 41 : 0;
    mt_tensor *l = mt_from_data(MT_I64, MT_SHAPE(t->shape[0]), bad);
    cr_assert_eq(mt_npy_save(tmp_path("data/dev-clean/labels/0002-000002.npy"), l), MT_OK);
    mt_free(t);
    mt_free(l);
    free(bad);
    mt_speech_frames_opts o = small_opts(data, tmp_path("run"));
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect(strstr(mt_last_error(), "dev-clean/labels/0002-000002.npy: label 41 of frame 7 is outside the 40 classes"), "%s",
              mt_last_error());
    cr_expect(!path_exists(tmp_path("run")), "the failed run left its folder");

    /* a file for the data folder, a folder for the checkpoint, a file for the run folder */
    FILE *f = fopen(tmp_path("file"), "w");
    cr_assert_not_null(f);
    fputs("x\n", f);
    fclose(f);
    o = small_opts(tmp_path("file"), tmp_path("run"));
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect(strstr(mt_last_error(), "is a file, not a folder"), "%s", mt_last_error());
    cr_expect(!strstr(mt_last_error(), "not found"), "%s", mt_last_error());
    o = small_opts(data, tmp_path("run"));
    o.resume = tmp_dir;
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect(strstr(mt_last_error(), "is a folder, not a file"), "%s", mt_last_error());
    mt_speech_frames_eval_opts eo = { .checkpoint = tmp_dir, .data_dir = data, .split = "dev-clean" };
    mt_speech_frames_eval_report er;
    cr_assert_neq(mt_speech_frames_eval(&eo, &er), MT_OK);
    cr_expect(strstr(mt_last_error(), "is a folder, not a file"), "%s", mt_last_error());
    o = small_opts(data, tmp_path("file"));
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect(strstr(mt_last_error(), "run folder"), "%s", mt_last_error());
    cr_expect(strstr(mt_last_error(), "is a file, not a folder"), "%s", mt_last_error());
    /* a file where a split should be */
    mt_test_remove_tree(tmp_path("data/dev-clean"));
    f = fopen(tmp_path("data/dev-clean"), "w");
    cr_assert_not_null(f);
    fclose(f);
    o = small_opts(data, tmp_path("run"));
    cr_assert_neq(mt_speech_frames_train(&o, &r), MT_OK);
    cr_expect(strstr(mt_last_error(), "dev-clean' is a file, not a folder"), "%s", mt_last_error());
}

/* On a device (cuda-emu always where it is built, cuda where a GPU is): the
   model, its buffers and AdamW's state live there, batches are copied
   there; the result matches the CPU's closely (the kernels may sum in
   another order), a mid-epoch resume there gives the same weights (bitwise
   on cuda-emu; on a GPU within 1e-6, in case a kernel is not deterministic),
   and the checkpoint evaluates on the CPU. */
static void train_on_device(const char *name, mt_device dev, bool exact)
{
    const char *why = NULL;
    if (!mt_device_available(dev, &why)) cr_skip_test("%s is not available: %s", name, why);
    const char *data = make_corpus("data", F);
    mt_speech_frames_opts o = small_opts(data, tmp_path("cpu"));
    o.epochs = 2;
    o.skip_test = true;
    mt_speech_frames_report cpu, full, part;
    cr_assert_eq(mt_speech_frames_train(&o, &cpu), MT_OK, "cpu: %s", mt_last_error());
    o.device = name;
    o.run_dir = tmp_path("dev");
    cr_assert_eq(mt_speech_frames_train(&o, &full), MT_OK, "%s: %s", name, mt_last_error());
    cr_expect(fabs(full.train_loss - cpu.train_loss) <= 1e-3 * cpu.train_loss, "train loss: %s %.9g, cpu %.9g", name,
              full.train_loss, cpu.train_loss);
    cr_expect(fabs(full.dev_acc - cpu.dev_acc) <= 0.02, "dev accuracy: %s %.4f, cpu %.4f", name, full.dev_acc, cpu.dev_acc);

    o.run_dir = tmp_path("dev2");
    o.stop_after = full.steps / 2 + 1;
    cr_assert_eq(mt_speech_frames_train(&o, &part), MT_OK, "%s: %s", name, mt_last_error());
    cr_assert(part.stopped);
    o.stop_after = 0;
    o.resume = "auto";
    cr_assert_eq(mt_speech_frames_train(&o, &part), MT_OK, "%s resume: %s", name, mt_last_error());
    if (exact) assert_same_tensors(tmp_path("dev/last.safetensors"), tmp_path("dev2/last.safetensors"));
    else {
        cr_expect(fabs(part.train_loss - full.train_loss) <= 1e-6 * full.train_loss, "%s resume: train loss %.9g vs %.9g",
                  name, part.train_loss, full.train_loss);
        cr_log_info("%s: resumed train loss %.9g, uninterrupted %.9g", name, part.train_loss, full.train_loss);
    }

    mt_speech_frames_eval_opts eo = { .checkpoint = tmp_path("dev/last.safetensors"), .data_dir = data,
                                      .split = "dev-clean", .device = "cpu" };
    mt_speech_frames_eval_report er;
    cr_assert_eq(mt_speech_frames_eval(&eo, &er), MT_OK, "%s", mt_last_error());
    cr_expect(fabs(er.accuracy - full.dev_acc) <= 0.02, "cpu eval %.4f, %s training %.4f", er.accuracy, name, full.dev_acc);
    mt_speech_frames_eval_report_free(&er);
}

Test(speech_frames, trains_and_resumes_on_cuda_emu, .init = sf_setup, .fini = sf_teardown)
{
    train_on_device("cuda-emu", (mt_device){ MT_DEVICE_CUDA_EMU, 0 }, true);
}

Test(speech_frames, trains_and_resumes_on_cuda, .init = sf_setup, .fini = sf_teardown)
{
    train_on_device("cuda", (mt_device){ MT_DEVICE_CUDA, 0 }, false);
}
