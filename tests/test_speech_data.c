/*
 * test_speech_data.c - the speech corpus generator (models/speech_*.c,
 * `mytorch data speech`): the phone set and the engines' maps, sentence
 * cleaning, both engines' audio and alignments, and a tiny corpus generated
 * twice into temporary folders:
 *   - the layout of docs/speech-data.md, T x 15 float32 features, int64
 *     labels in [0, 40) of length T, transcripts "[SOS] ... [EOS]";
 *   - test-clean's speakers (and voices) are not train-clean-100's;
 *   - the espeak-ng table covers every phoneme espeak-ng emitted;
 *   - the same seed gives byte-identical files, in one process or with
 *     two worker processes.
 */
#define _XOPEN_SOURCE 700   /* nftw */
#include "harness.h"

#ifdef MYTORCH_HAVE_SPEECH_DATA

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/speech_data/speech_corpus.h"
#include "models/speech_data/speech_phones.h"
#include "models/speech_data/speech_synth.h"

/* ---------------------------------------------------------------- phones */

Test(speech_phones, set_order_and_lookup, .init = mt_test_setup, .fini = mt_test_teardown)
{
    static const char *const expected[] = {
        "[SIL]", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
        "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
        "[SOS]", "[EOS]",
    };
    for (int i = 0; i < MT_SPEECH_N_SYMBOLS; i++) {
        cr_expect_str_eq(mt_speech_phone_name(i), expected[i]);
        cr_expect_eq(mt_speech_phone_index(expected[i]), i);
    }
    cr_expect_eq(mt_speech_phone_index("aa"), 1);
    cr_expect_eq(mt_speech_phone_index("AX"), -1);
    cr_expect_null(mt_speech_phone_name(MT_SPEECH_N_SYMBOLS));
}

Test(speech_phones, engine_maps, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int ph[MT_PHONE_MAX_EXPANSION];
    bool known;
    /* every table entry expands to 1 or 2 frame classes */
    const char *mn, *arpa;
    int entries = 0;
    for (int i = 0; mt_espeak_table_entry(i, &mn, &arpa); i++, entries++) {
        int k = mt_espeak_to_phones(mn, ph, &known);
        cr_expect(known, "%s", mn);
        cr_expect(k >= 1 && k <= 2, "%s", mn);
        for (int j = 0; j < k; j++) cr_expect(ph[j] >= 0 && ph[j] < MT_SPEECH_N_PHONES, "%s -> %s", mn, arpa);
    }
    cr_expect_gt(entries, 60);
    cr_expect_eq(mt_espeak_to_phones("@", ph, &known), 1);
    cr_expect_eq(ph[0], mt_speech_phone_index("AH"));
    cr_expect_eq(mt_espeak_to_phones("tS", ph, &known), 1);
    cr_expect_eq(ph[0], mt_speech_phone_index("CH"));
    cr_expect_eq(mt_espeak_to_phones("aI@", ph, &known), 2);
    cr_expect(ph[0] == mt_speech_phone_index("AY") && ph[1] == mt_speech_phone_index("ER"));
    cr_expect_eq(mt_espeak_to_phones("_:", ph, &known), 1);
    cr_expect_eq(ph[0], MT_PHONE_SIL);
    /* not in the table: the longest known prefix, reported as unknown */
    cr_expect_eq(mt_espeak_to_phones("t3", ph, &known), 1);
    cr_expect(!known);
    cr_expect_eq(ph[0], mt_speech_phone_index("T"));
    cr_expect_eq(mt_flite_to_phones("pau", ph, &known), 1);
    cr_expect(known && ph[0] == MT_PHONE_SIL);
    mt_flite_to_phones("ax", ph, &known);
    cr_expect(known && ph[0] == mt_speech_phone_index("AH"));
    mt_flite_to_phones("zh", ph, &known);
    cr_expect(known && ph[0] == mt_speech_phone_index("ZH"));
}

/* ---------------------------------------------------------------- sentences */

static void expect_sentence(const char *line, const char *speak, const char *text)
{
    mt_sentence s;
    cr_assert(mt_speech_sentence_normalize(line, &s), "rejected: %s", line);
    cr_expect_str_eq(s.speak, speak);
    cr_expect_str_eq(s.text, text);
    free(s.speak);
    free(s.text);
}

static void expect_rejected(const char *line)
{
    mt_sentence s;
    bool ok = mt_speech_sentence_normalize(line, &s);
    cr_expect(!ok, "accepted: %s", line);
    if (ok) { free(s.speak); free(s.text); }
}

Test(speech_sentences, normalize, .init = mt_test_setup, .fini = mt_test_teardown)
{
    expect_sentence("A tall, dark stranger will have more fun than you.",
                    "A tall, dark stranger will have more fun than you.", "A TALL DARK STRANGER WILL HAVE MORE FUN THAN YOU");
    expect_sentence("Q: How long does it TAKE?", "How long does it take?", "HOW LONG DOES IT TAKE");
    expect_sentence("a long-forgotten loved one   will appear soon", "A long forgotten loved one will appear soon.",
                    "A LONG FORGOTTEN LOVED ONE WILL APPEAR SOON");
    expect_sentence("\"I'm sure,\" she said -- and left", "I'm sure, she said, and left.", "I'M SURE SHE SAID AND LEFT");
    expect_rejected("Call 555 now, please.");
    expect_rejected("The U.S.S. Enterprise is here.");
    expect_rejected("Mr. Smith went home.");
    expect_rejected("Go home.");
    expect_rejected("Bring (some) friends along.");
    expect_rejected("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                    "sixteen seventeen eighteen nineteen twenty twentyone");
}

/* ---------------------------------------------------------------- synthesis */

static void check_synth(const mt_speaker *spk)
{
    char desc[128];
    mt_speaker_describe(spk, desc, sizeof desc);
    mt_synth_output o;
    cr_assert(mt_synth_speak(spk, "The quick brown fox jumps over the lazy dog.", &o) == MT_OK, "%s: %s", desc, mt_last_error());
    double total = (double)o.n_samples / MT_SPEECH_SAMPLE_RATE;
    cr_expect(total > 1.0 && total < 6.0, "%s: %.2f s of audio", desc, total);
    double peak = 0;
    for (int64_t i = 0; i < o.n_samples; i++) peak = fmax(peak, fabs(o.samples[i]));
    cr_expect(peak > 0.05 && peak <= 1.0, "%s: peak %g", desc, peak);
    cr_assert_gt(o.n_segments, 20, "%s", desc);
    cr_expect_float_eq(o.segments[0].start, 0.0, 1e-12, "%s", desc);
    cr_expect_float_eq(o.segments[o.n_segments - 1].end, total, 1e-9, "%s", desc);
    int speech = 0;
    for (int i = 0; i < o.n_segments; i++) {
        cr_expect_gt(o.segments[i].end, o.segments[i].start, "%s: segment %d", desc, i);
        if (i) cr_expect_float_eq(o.segments[i].start, o.segments[i - 1].end, 1e-12, "%s: a gap at %d", desc, i);
        cr_expect(o.segments[i].phone >= 0 && o.segments[i].phone < MT_SPEECH_N_PHONES);
        speech += o.segments[i].phone != MT_PHONE_SIL;
    }
    cr_expect_geq(speech, 25, "%s: %d phones", desc, speech);   /* DH AH K W IH K B R AW N F AA K S ... */
    for (int i = 0; i < o.n_engine_phones; i++) cr_expect(o.engine_phones[i].known, "%s: '%s'", desc, o.engine_phones[i].name);
    mt_synth_output_free(&o);
}

/* The same speaker and text give the same samples whatever ran before:
   another voice spoke in between and rand() was disturbed. */
static void expect_repeatable(const mt_speaker *spk, const mt_speaker *other)
{
    const char *text = "Breathe in, then say it once again.";
    mt_synth_output a, b, c;
    srand(1);
    cr_assert_eq(mt_synth_speak(spk, text, &a), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_synth_speak(other, "Something else entirely.", &c), MT_OK, "%s", mt_last_error());
    mt_synth_output_free(&c);
    srand(2);
    for (int i = 0; i < 7; i++) (void)rand();
    cr_assert_eq(mt_synth_speak(spk, text, &b), MT_OK, "%s", mt_last_error());
    char desc[128];
    mt_speaker_describe(spk, desc, sizeof desc);
    cr_expect_eq(a.n_samples, b.n_samples, "%s: %lld vs %lld samples", desc, (long long)a.n_samples, (long long)b.n_samples);
    cr_expect(a.n_samples == b.n_samples && memcmp(a.samples, b.samples, (size_t)a.n_samples * sizeof *a.samples) == 0,
              "%s: the same utterance gave other samples", desc);
    mt_synth_output_free(&a);
    mt_synth_output_free(&b);
}

Test(speech_synth, repeatable, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_speaker f3 = { MT_TTS_ESPEAK, "en-gb-x-gbclan", "f3", 155, 50 }, m3 = { MT_TTS_ESPEAK, "en-us", "m3", 200, 70 };
    mt_speaker awb = { MT_TTS_FLITE, "awb", "", 100, 100 }, rms = { MT_TTS_FLITE, "rms", "", 120, 80 };
    expect_repeatable(&f3, &m3);   /* a breathy variant: noise from rand() */
    expect_repeatable(&m3, &f3);   /* a variant's settings must not linger */
    expect_repeatable(&awb, &rms); /* clustergen: excitation noise from rand() */
    mt_synth_shutdown();
}

Test(speech_synth, flite_and_espeak, .init = mt_test_setup, .fini = mt_test_teardown)
{
    check_synth(&(mt_speaker){ MT_TTS_FLITE, "kal16", "", 100, 100 });
    check_synth(&(mt_speaker){ MT_TTS_FLITE, "slt", "", 110, 90 });
    check_synth(&(mt_speaker){ MT_TTS_ESPEAK, "en-us", "", 175, 50 });
    check_synth(&(mt_speaker){ MT_TTS_ESPEAK, "en-gb-scotland", "f2", 155, 60 });
    mt_synth_output o;
    cr_expect_neq(mt_synth_speak(&(mt_speaker){ MT_TTS_FLITE, "nobody", "", 100, 100 }, "Hello there you.", &o), MT_OK);
    cr_expect_neq(mt_synth_speak(&(mt_speaker){ MT_TTS_ESPEAK, "xx-nowhere", "", 175, 50 }, "Hello there you.", &o), MT_OK);
    cr_expect(strstr(mt_last_error(), "xx-nowhere"), "%s", mt_last_error());
    mt_synth_shutdown();
}

/* ---------------------------------------------------------------- the tiny corpus */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!b || got != (size_t)n) { free(b); return NULL; }
    b[n] = 0;
    *size = (size_t)n;
    return b;
}

/* The names (without extension) of the files of dir, sorted; returns their number. */
static int list_dir(const char *dir, char names[][32], int max)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n < max) {
            size_t l = strlen(e->d_name);
            if (l > 31) l = 31;
            memcpy(names[n], e->d_name, l);
            names[n][l] = '\0';
            char *dot = strrchr(names[n], '.');
            if (dot) *dot = '\0';
        }
        n++;
    }
    closedir(d);
    qsort(names, (size_t)(n < max ? n : max), 32, (int (*)(const void *, const void *))strcmp);
    return n;
}

static mt_speech_corpus_opts tiny_opts(const char *dir, int jobs)
{
    mt_speech_corpus_opts o = { .out_dir = dir, .size = MT_SPEECH_TINY, .seed = 7, .jobs = jobs };
    o.mfcc = mt_mfcc_default();
    return o;
}

static void check_split(const char *root, int split, int n_expected)
{
    const char *name = mt_speech_split_name(split);
    char dir[1024], path[4096];
    char utts[64][32], other[64][32];
    snprintf(dir, sizeof dir, "%s/%s/mfcc", root, name);
    int n = list_dir(dir, utts, 64);
    cr_assert_eq(n, n_expected, "%s: %d utterances", name, n);
    static const char *const subdirs[] = { "labels", "transcript", "text" };
    for (int s = 0; s < 3; s++) {
        snprintf(dir, sizeof dir, "%s/%s/%s", root, name, subdirs[s]);
        cr_assert_eq(list_dir(dir, other, 64), n, "%s/%s", name, subdirs[s]);
        for (int i = 0; i < n; i++) cr_expect_str_eq(other[i], utts[i], "%s/%s", name, subdirs[s]);
    }
    for (int i = 0; i < n; i++) {
        mt_scope sc = mt_scope_begin();
        snprintf(path, sizeof path, "%s/%s/mfcc/%s.npy", root, name, utts[i]);
        mt_tensor *x = mt_npy_load(path);
        cr_assert_not_null(x, "%s", mt_last_error());
        cr_expect_eq(x->dtype, MT_F32);
        cr_assert_eq(x->ndim, 2, "%s", path);
        cr_expect_eq(mt_size(x, 1), 15, "%s", path);
        int64_t T = mt_size(x, 0);
        cr_expect(T > 50 && T < 2000, "%s: %lld frames", path, (long long)T);
        const float *xf = mt_data_ptr(x);
        for (int64_t k = 0; k < T * 15; k++) cr_assert(isfinite(xf[k]), "%s: element %lld", path, (long long)k);

        snprintf(path, sizeof path, "%s/%s/labels/%s.npy", root, name, utts[i]);
        mt_tensor *y = mt_npy_load(path);
        cr_assert_not_null(y, "%s", mt_last_error());
        cr_expect_eq(y->dtype, MT_I64);
        cr_assert_eq(y->ndim, 1);
        cr_assert_eq(mt_size(y, 0), T, "%s: %lld labels for %lld frames", path, (long long)mt_size(y, 0), (long long)T);
        const int64_t *yl = mt_data_ptr(y);
        int speech = 0;
        for (int64_t k = 0; k < T; k++) {
            cr_assert(yl[k] >= 0 && yl[k] < MT_SPEECH_N_PHONES, "%s: label %lld", path, (long long)yl[k]);
            speech += yl[k] != MT_PHONE_SIL;
        }
        cr_expect_gt(speech, T / 2, "%s: %d of %lld frames are speech", path, speech, (long long)T);

        snprintf(path, sizeof path, "%s/%s/transcript/%s.npy", root, name, utts[i]);
        mt_string_array tr;
        cr_assert_eq(mt_npy_load_strings(path, &tr), MT_OK, "%s", mt_last_error());
        cr_assert_eq(tr.ndim, 1);
        cr_assert_geq(tr.n, 5, "%s", path);
        cr_expect_str_eq(tr.strings[0], "[SOS]");
        cr_expect_str_eq(tr.strings[tr.n - 1], "[EOS]");
        cr_expect_str_neq(tr.strings[1], "[SIL]");
        cr_expect_str_neq(tr.strings[tr.n - 2], "[SIL]");
        for (int64_t k = 1; k + 1 < tr.n; k++) {
            int p = mt_speech_phone_index(tr.strings[k]);
            cr_expect(p >= 0 && p < MT_SPEECH_N_PHONES, "%s: '%s'", path, tr.strings[k]);
        }
        mt_string_array_free(&tr);

        snprintf(path, sizeof path, "%s/%s/text/%s.txt", root, name, utts[i]);
        size_t size = 0;
        unsigned char *text = slurp(path, &size);
        cr_assert_not_null(text, "%s", path);
        cr_expect(size > 5 && text[size - 1] == '\n', "%s", path);
        for (size_t k = 0; k + 1 < size; k++)
            cr_expect((text[k] >= 'A' && text[k] <= 'Z') || text[k] == ' ' || text[k] == '\'', "%s: '%c'", path, text[k]);
        free(text);
        mt_scope_end(sc);
    }
}

/* Every file under a (relative path rel) equals the one under b. Returns the number compared. */
static int compare_trees(const char *a, const char *b, const char *rel)
{
    char da[600], db[600];
    snprintf(da, sizeof da, "%s/%s", a, rel);
    snprintf(db, sizeof db, "%s/%s", b, rel);
    DIR *d = opendir(da);
    cr_assert_not_null(d, "%s", da);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char r[600], pa[1300], pb[1300];
        snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        snprintf(pa, sizeof pa, "%s/%s", a, r);
        snprintf(pb, sizeof pb, "%s/%s", b, r);
        struct stat st;
        cr_assert_eq(stat(pa, &st), 0);
        if (S_ISDIR(st.st_mode)) { n += compare_trees(a, b, r); continue; }
        size_t sa = 0, sb = 0;
        unsigned char *ba = slurp(pa, &sa), *bb = slurp(pb, &sb);
        cr_assert(ba && bb, "%s or %s is missing", pa, pb);
        cr_expect(sa == sb && memcmp(ba, bb, sa) == 0, "%s differs from %s", pa, pb);
        free(ba);
        free(bb);
        n++;
    }
    closedir(d);
    return n;
}

Test(speech_corpus, tiny_layout_splits_and_determinism, .init = mt_test_setup, .fini = mt_test_teardown)
{
    char a[] = "/tmp/mt_speech_a_XXXXXX", b[] = "/tmp/mt_speech_b_XXXXXX";
    cr_assert_not_null(mkdtemp(a));
    cr_assert_not_null(mkdtemp(b));

    mt_speech_corpus_opts o = tiny_opts(a, 1);
    mt_speech_corpus_report r;
    mt_status st = mt_speech_corpus_generate(&o, &r);
    if (st != MT_OK) remove_tree(a), remove_tree(b);
    cr_assert_eq(st, MT_OK, "%s", mt_last_error());
    mt_speech_size_spec spec = mt_speech_size_spec_of(MT_SPEECH_TINY);
    for (int s = 0; s < MT_SPEECH_N_SPLITS; s++) {
        cr_expect_eq(r.utterances[s], spec.utterances[s]);
        cr_expect_eq(r.speakers[s], spec.speakers[s]);
        cr_expect_gt(r.frames[s], 50 * spec.utterances[s]);
        check_split(a, s, spec.utterances[s]);
    }
    cr_expect_eq(r.feature_dim, 15);
    cr_expect_gt(r.engine_phones, 500);
    /* the espeak-ng table covers every phoneme the engines emitted */
    cr_expect_eq(r.unmapped_phones, 0, "%lld phones not in the table, the first '%s'", (long long)r.unmapped_phones,
                 r.n_unmapped_names ? r.unmapped_names[0] : "");
    char path[600];
    snprintf(path, sizeof path, "%s/manifest.json", a);
    size_t msize = 0;
    char *manifest = (char *)slurp(path, &msize);
    cr_assert_not_null(manifest);
    cr_expect(strstr(manifest, "\"phones\": [\"[SIL]\", \"AA\", \"AE\""), "manifest: no phone list");
    cr_expect(strstr(manifest, "\"test-clean\""));
    cr_expect(strstr(manifest, "\"in_table\": false") == NULL, "manifest: an engine phone not in the table");
    free(manifest);

    /* the plan: test speakers and voices unseen in training; no speaker in two splits */
    mt_speech_plan plan;
    cr_assert_eq(mt_speech_plan_make(&o, &plan), MT_OK, "%s", mt_last_error());
    for (int i = 0; i < plan.n_speakers; i++)
        for (int j = 0; j < plan.n_speakers; j++) {
            const mt_speech_speaker *p = &plan.speakers[i], *q = &plan.speakers[j];
            if (i == j || p->split == q->split) continue;
            cr_expect_neq(p->id, q->id);
            if (p->split == 2 && q->split == 0)
                cr_expect(strcmp(p->voice.voice, q->voice.voice) != 0, "test voice %s is in training", p->voice.voice);
        }
    for (int u = 0; u < plan.n_utts; u++) {
        char prefix[8];
        snprintf(prefix, sizeof prefix, "%04d-", plan.speakers[plan.utts[u].speaker].id);
        cr_expect(strncmp(plan.utts[u].id, prefix, 5) == 0, "%s", plan.utts[u].id);
        cr_expect_eq(plan.speakers[plan.utts[u].speaker].split, plan.utts[u].split);
    }
    mt_speech_plan_free(&plan);

    /* the same seed with two worker processes: the same bytes. b holds an
       older corpus first: its files go (a non-corpus folder is refused) */
    char stray[800], stray_dir[700];
    snprintf(stray_dir, sizeof stray_dir, "%s/train-clean-100/mfcc", b);
    snprintf(stray, sizeof stray, "%s/9999-999999.npy", stray_dir);
    FILE *f = fopen(stray, "w");
    cr_assert_null(f, "the layout's folders should not exist yet");
    snprintf(path, sizeof path, "%s/notes.txt", b);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    o = tiny_opts(b, 2);
    cr_expect_eq(mt_speech_corpus_generate(&o, NULL), MT_ERR_ARGUMENT);
    cr_expect(strstr(mt_last_error(), "not empty"), "%s", mt_last_error());
    remove(path);
    snprintf(path, sizeof path, "%s/train-clean-100", b);
    mkdir(path, 0777);
    mkdir(stray_dir, 0777);
    cr_assert_not_null(f = fopen(stray, "w"));
    fclose(f);
    snprintf(path, sizeof path, "%s/manifest.json", b);
    cr_assert_not_null(f = fopen(path, "w"));
    fputs("{\n  \"format\": \"mytorch-speech-corpus\",\n}\n", f);
    fclose(f);
    st = mt_speech_corpus_generate(&o, NULL);
    if (st != MT_OK) remove_tree(a), remove_tree(b);
    cr_assert_eq(st, MT_OK, "%s", mt_last_error());
    cr_expect_neq(access(stray, F_OK), 0, "%s is left from the older corpus", stray);
    int compared = compare_trees(a, b, "");
    cr_expect_eq(compared, 1 + 4 * (spec.utterances[0] + spec.utterances[1] + spec.utterances[2]));
    remove_tree(a);
    remove_tree(b);
}

Test(speech_corpus, seeds_differ_and_bad_options, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_speech_corpus_opts o = tiny_opts("/dev/null/corpus", 1);
    mt_speech_plan p0, p1;
    cr_assert_eq(mt_speech_plan_make(&o, &p0), MT_OK, "%s", mt_last_error());
    o.seed = 8;
    cr_assert_eq(mt_speech_plan_make(&o, &p1), MT_OK, "%s", mt_last_error());
    int same = 0;
    for (int u = 0; u < p0.n_utts; u++) same += p0.utts[u].sentence == p1.utts[u].sentence;
    cr_expect_lt(same, p0.n_utts / 2, "seeds 7 and 8 chose %d of %d sentences alike", same, p0.n_utts);
    mt_speech_plan_free(&p0);
    mt_speech_plan_free(&p1);
    /* the bigger sizes' plans: distinct speakers enough for every split */
    for (int size = MT_SPEECH_DEFAULT; size <= MT_SPEECH_LARGE; size++) {
        o.size = (mt_speech_size)size;
        mt_speech_size_spec spec = mt_speech_size_spec_of(o.size);
        cr_assert_eq(mt_speech_plan_make(&o, &p0), MT_OK, "%s: %s", mt_speech_size_name(o.size), mt_last_error());
        cr_expect_eq(p0.n_utts, spec.utterances[0] + spec.utterances[1] + spec.utterances[2]);
        cr_expect_eq(p0.n_speakers, spec.speakers[0] + spec.speakers[1] + spec.speakers[2]);
        int flite = 0;
        for (int i = 0; i < p0.n_speakers; i++) flite += p0.speakers[i].voice.engine == MT_TTS_FLITE;
        cr_expect(flite > p0.n_speakers / 4 && flite < p0.n_speakers / 2, "%d of %d speakers are flite", flite, p0.n_speakers);
        mt_speech_plan_free(&p0);
    }
    o.size = MT_SPEECH_TINY;
    /* a folder that cannot be made (/dev/null is a file), bad MFCC options, no text */
    cr_expect_eq(mt_speech_corpus_generate(&o, NULL), MT_ERR_IO);
    o = tiny_opts("/tmp", 1);
    o.mfcc.n_ceps = 50;
    cr_expect_eq(mt_speech_corpus_generate(&o, NULL), MT_ERR_ARGUMENT);
    mt_sentences s;
    cr_expect_eq(mt_speech_sentences_load("/nonexistent-a", "/nonexistent-b", &s), MT_ERR_IO);
}

#else
typedef int mt_test_speech_data_not_built;   /* the speech data code was not configured */
#endif
