/*
 * test_speech_tiny_corpus.c - the whole speech pipeline inside the test
 * suite: the real tiny corpus (synthesized speech, MFCC, frame labels;
 * models/speech_data/speech_corpus.h) generated into a temporary folder, then the
 * frame-level phoneme task (models/speech_frames/speech_frames_task.h) trained on it for
 * a few epochs.
 *
 * Checks: every utterance of every split has exactly one label per MFCC
 * frame, and a small MLP reaches a dev accuracy far above the majority-class
 * baseline (dev speakers are not training speakers). One test, so the
 * corpus is generated once (about 1.2 s of CPU).
 */
#include "harness.h"

#ifdef MYTORCH_HAVE_SPEECH_DATA

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "models/speech_data/speech_corpus.h"
#include "models/speech_frames/speech_frames_task.h"
#include "models/speech_data/speech_phones.h"

/* Every utterance of root/split: its labels/<utt>.npy has one int64 label in
   [0, 40) per row of mfcc/<utt>.npy. Returns the number of frames. */
static int64_t check_labels_match_frames(const char *root, const char *split, int n_expected)
{
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/%s/mfcc", root, split);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    int64_t frames = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
        mt_scope s = mt_scope_begin();
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        mt_tensor *x = mt_npy_load(path);
        cr_assert_not_null(x, "%s", mt_last_error());
        snprintf(path, sizeof path, "%s/%s/labels/%s", root, split, e->d_name);
        mt_tensor *y = mt_npy_load(path);
        cr_assert_not_null(y, "%s", mt_last_error());
        cr_assert(x->ndim == 2 && y->ndim == 1 && y->dtype == MT_I64, "%s", path);
        cr_expect_eq(mt_size(y, 0), mt_size(x, 0), "%s/%s: %lld labels for %lld frames", split, e->d_name,
                     (long long)mt_size(y, 0), (long long)mt_size(x, 0));
        const int64_t *yl = mt_data_ptr(y);
        for (int64_t t = 0; t < mt_size(y, 0); t++)
            cr_assert(yl[t] >= 0 && yl[t] < MT_SPEECH_N_PHONES, "%s: label %lld", path, (long long)yl[t]);
        frames += mt_size(x, 0);
        n++;
        mt_scope_end(s);
    }
    closedir(d);
    cr_expect_eq(n, n_expected, "%s: %d utterances", split, n);
    return frames;
}

Test(speech_tiny_corpus, generated_corpus_trains_far_above_majority, .init = mt_test_setup, .fini = mt_test_teardown)
{
    char root[128];
    mt_test_temp_dir(root, sizeof root, "tiny_corpus");   /* /dev/shm when writable */
    char data[160], run[160];
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(run, sizeof run, "%s/run", root);

    double t0 = mt_clock_seconds();
    mt_speech_corpus_opts co = { .out_dir = data, .size = MT_SPEECH_TINY, .seed = 1, .jobs = 2 };
    co.mfcc = mt_mfcc_default();
    mt_speech_corpus_report cr;
    mt_status s = mt_speech_corpus_generate(&co, &cr);
    if (s != MT_OK) mt_test_remove_tree(root);
    cr_assert_eq(s, MT_OK, "%s", mt_last_error());
    double t_gen = mt_clock_seconds() - t0;

    mt_speech_size_spec spec = mt_speech_size_spec_of(MT_SPEECH_TINY);
    for (int i = 0; i < MT_SPEECH_N_SPLITS; i++) {
        int64_t frames = check_labels_match_frames(data, mt_speech_split_name(i), spec.utterances[i]);
        cr_expect_eq(frames, cr.frames[i], "%s: %lld frames on disk, %lld reported", mt_speech_split_name(i),
                     (long long)frames, (long long)cr.frames[i]);
    }

    /* a small MLP: K 8 (17 x 15 = 255 inputs), 256-256, batch 128, 8 epochs */
    t0 = mt_clock_seconds();
    mt_speech_frames_opts o = mt_speech_frames_defaults();
    o.data_dir = data;
    o.run_dir = run;
    o.n_hidden = 2;
    o.hidden[0] = o.hidden[1] = 256;
    o.context = 8;
    o.dropout = 0.1;
    o.batch_size = 128;
    o.lr = 2e-3;
    o.epochs = 8;
    o.seed = 1;
    o.device = "cpu";
    mt_speech_frames_report r;
    s = mt_speech_frames_train(&o, &r);
    if (s != MT_OK) mt_test_remove_tree(root);
    cr_assert_eq(s, MT_OK, "%s", mt_last_error());
    double t_train = mt_clock_seconds() - t0;
    cr_log_info("tiny corpus: generated in %.2f s (%lld/%lld/%lld frames); trained %d epochs (%lld steps) in %.2f s: "
                "train acc %.3f, dev acc %.3f (majority %s %.3f), test acc %.3f (majority %.3f)",
                t_gen, (long long)cr.frames[0], (long long)cr.frames[1], (long long)cr.frames[2], r.epochs_done,
                (long long)r.steps, t_train, r.train_acc, r.dev_acc, mt_speech_phone_name(r.majority_class),
                r.majority_dev_acc, r.test_acc, r.majority_test_acc);
    cr_expect(r.finished && r.epochs_done == 8);
    cr_expect_eq(r.train_frames, cr.frames[0]);
    cr_expect_eq(r.dev_frames, cr.frames[1]);
    cr_expect_lt(r.majority_dev_acc, 0.25, "majority %.3f", r.majority_dev_acc);
    /* well above the baseline (about 0.48 against 0.07 here): three times its accuracy and 25 points more */
    cr_expect_gt(r.dev_acc, 3 * r.majority_dev_acc, "dev accuracy %.3f, majority %.3f", r.dev_acc, r.majority_dev_acc);
    cr_expect_gt(r.dev_acc, r.majority_dev_acc + 0.25, "dev accuracy %.3f, majority %.3f", r.dev_acc, r.majority_dev_acc);
    mt_test_remove_tree(root);
}

#else
typedef int mt_test_speech_tiny_corpus_not_built;   /* the speech data code was not configured */
#endif
