/*
 * speech_corpus.c - the offline speech corpus generator (speech_corpus.h,
 * docs/speech-data.md).
 *
 * The plan (which speaker says which sentence) is drawn in this process from
 * the seed; the utterances are then synthesized, featurized and written by
 * `jobs` worker processes (the engines are not thread-safe), worker k taking
 * utterances k, k + jobs, ... Each utterance's files depend only on the plan,
 * so the output is the same with any number of jobs. Workers send a fixed-size
 * record per utterance (and, at the end, their engine-phone counts) through a
 * pipe; the parent sums them into the manifest.
 *
 * Durability: the .npy files are written atomically (temporary file +
 * rename) but without a per-file fsync (about 7 ms each on a disk, 7,200
 * files for the default size); the parent makes them durable with one
 * syncfs(2) once every worker is done, and only then writes the manifest
 * (synced too), so a manifest on disk means a complete corpus.
 */
#define _GNU_SOURCE   /* syncfs */
#include "models/speech_data/speech_corpus.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/speech_data/speech_phones.h"

/* ---------------------------------------------------------------- names and sizes */

static const char *const split_names[MT_SPEECH_N_SPLITS] = { "train-clean-100", "dev-clean", "test-clean" };
static const char *const size_names[] = { "tiny", "default", "large" };

const char *mt_speech_split_name(int i)
{
    return i >= 0 && i < MT_SPEECH_N_SPLITS ? split_names[i] : NULL;
}

const char *mt_speech_size_name(mt_speech_size size)
{
    return (int)size >= 0 && (int)size < 3 ? size_names[size] : "?";
}

bool mt_speech_size_from_string(const char *s, mt_speech_size *out)
{
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, size_names[i]) == 0) {
            *out = (mt_speech_size)i;
            return true;
        }
    return false;
}

mt_speech_size_spec mt_speech_size_spec_of(mt_speech_size size)
{
    switch (size) {
    case MT_SPEECH_TINY:  return (mt_speech_size_spec){ { 24, 6, 6 }, { 6, 2, 2 } };
    case MT_SPEECH_LARGE: return (mt_speech_size_spec){ { 24000, 2000, 2000 }, { 160, 20, 20 } };
    case MT_SPEECH_DEFAULT:
    default:              return (mt_speech_size_spec){ { 2000, 200, 200 }, { 40, 8, 8 } };
    }
}

/* ---------------------------------------------------------------- random numbers */

typedef struct rng { uint64_t s; } rng;

static uint64_t rng_next(rng *r)   /* splitmix64 */
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rng_below(rng *r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

/* ---------------------------------------------------------------- sentences */

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool has_vowel(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strchr("aeiouyAEIOUY", w[i])) return true;
    return false;
}

static bool is_abbreviation(const char *w, size_t n)
{
    static const char *const abbr[] = { "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "inc", "ltd", "co", "esp", "ie", "eg" };
    char low[8];
    if (n >= sizeof low) return false;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)w[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof abbr / sizeof abbr[0]; i++)
        if (strcmp(low, abbr[i]) == 0) return true;
    return false;
}

static bool is_pronoun_i(const char *w, size_t n)   /* I, I'm, I'll, I've, I'd */
{
    return (w[0] == 'i' || w[0] == 'I') && (n == 1 || w[1] == '\'');
}

enum { MAX_WORDS = 20, MIN_WORDS = 3, MAX_SENTENCE = 400 };

bool mt_speech_sentence_normalize(const char *line, mt_sentence *out)
{
    char buf[MAX_SENTENCE + 1];
    size_t len = strlen(line);
    if (len > MAX_SENTENCE) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (!(isalpha(c) || isspace(c) || strchr(",;:.!?'\"-", c)) || c >= 0x80) return false;
        buf[i] = isspace(c) ? ' ' : (char)c;
    }
    buf[len] = '\0';
    for (char *p = strstr(buf, "--"); p; p = strstr(p, "--")) { p[0] = ','; p[1] = ' '; }

    /* words (a token's hyphens split it) and the punctuation after each */
    const char *word[MAX_WORDS + 1];
    size_t wlen[MAX_WORDS + 1];
    char punct[MAX_WORDS + 1];
    int nw = 0;
    char *save = NULL;
    bool first_token = true;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (first_token && (strcmp(tok, "Q:") == 0 || strcmp(tok, "A:") == 0)) { first_token = false; continue; }
        first_token = false;
        size_t n = strlen(tok), a = 0;
        char p = 0;
        while (a < n && strchr("\"'-", tok[a])) a++;
        while (n > a && strchr("\"',;:.!?-", tok[n - 1])) {
            if (!p && strchr(",;:.!?", tok[n - 1])) p = tok[n - 1];
            n--;
        }
        if (n == a) {   /* punctuation alone ("-", ","): it belongs to the word before */
            if (nw > 0 && p && !punct[nw - 1]) punct[nw - 1] = p;
            continue;
        }
        size_t s = a;
        for (size_t i = a; i <= n; i++) {
            if (i < n && tok[i] != '-') {
                if (!isalpha((unsigned char)tok[i]) && tok[i] != '\'') return false;   /* '.', ',' inside a word */
                continue;
            }
            if (i == s) return false;   /* "a--b" */
            if (nw == MAX_WORDS) return false;
            const char *w = tok + s;
            size_t l = i - s;
            if (!isalpha((unsigned char)w[l - 1]) || !has_vowel(w, l) || is_abbreviation(w, l)) return false;
            word[nw] = w;
            wlen[nw] = l;
            punct[nw] = 0;
            nw++;
            s = i + 1;
        }
        punct[nw - 1] = p;
    }
    if (nw < MIN_WORDS) return false;

    char speak[MAX_SENTENCE + 2 * MAX_WORDS + 2], text[MAX_SENTENCE + MAX_WORDS + 1];
    size_t ps = 0, pt = 0;
    for (int i = 0; i < nw; i++) {
        if (i) { speak[ps++] = ' '; text[pt++] = ' '; }
        bool keep_i = is_pronoun_i(word[i], wlen[i]);
        for (size_t k = 0; k < wlen[i]; k++) {
            char c = word[i][k];
            speak[ps++] = (i == 0 && k == 0) || (keep_i && k == 0) ? (char)toupper((unsigned char)c) : (char)tolower((unsigned char)c);
            text[pt++] = (char)toupper((unsigned char)c);
        }
        char p = punct[i];
        if (i + 1 == nw) p = (p == '!' || p == '?') ? p : '.';
        if (p) speak[ps++] = p;
    }
    speak[ps] = '\0';
    text[pt] = '\0';
    out->speak = dup_string(speak);
    out->text = dup_string(text);
    if (!out->speak || !out->text) {
        free(out->speak);
        free(out->text);
        out->speak = out->text = NULL;
        return false;
    }
    return true;
}

void mt_speech_sentences_free(mt_sentences *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].speak);
        free(s->items[i].text);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* The loader's state: the sentences so far and a hash set of their texts. */
typedef struct loader {
    mt_sentences *out;
    int cap;
    uint32_t *slots;            /* sentence index + 1, 0 = empty */
    uint32_t n_slots;           /* a power of two */
    bool oom;
} loader;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static bool loader_rehash(loader *L, uint32_t n_slots)
{
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots) return false;
    for (int i = 0; i < L->out->n; i++) {
        uint32_t h = (uint32_t)fnv1a(L->out->items[i].text) & (n_slots - 1);
        while (slots[h]) h = (h + 1) & (n_slots - 1);
        slots[h] = (uint32_t)i + 1;
    }
    free(L->slots);
    L->slots = slots;
    L->n_slots = n_slots;
    return true;
}

/* Adds a sentence (taking its strings) unless its text is there already. */
static bool loader_add(loader *L, mt_sentence s)
{
    if (L->oom) goto drop;
    if ((uint32_t)(L->out->n + 1) * 2 > L->n_slots && !loader_rehash(L, L->n_slots ? L->n_slots * 2 : 1024)) {
        L->oom = true;
        goto drop;
    }
    uint32_t h = (uint32_t)fnv1a(s.text) & (L->n_slots - 1);
    for (; L->slots[h]; h = (h + 1) & (L->n_slots - 1))
        if (strcmp(L->out->items[L->slots[h] - 1].text, s.text) == 0) goto drop;
    if (L->out->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 1024;
        mt_sentence *items = realloc(L->out->items, (size_t)cap * sizeof *items);
        if (!items) {
            L->oom = true;
            goto drop;
        }
        L->out->items = items;
        L->cap = cap;
    }
    L->slots[h] = (uint32_t)L->out->n + 1;
    L->out->items[L->out->n++] = s;
    return true;
drop:
    free(s.speak);
    free(s.text);
    return false;
}

/* Splits text into sentences at '.', '!' or '?' followed by a space (or the
   end; closing quotes stay with the sentence) and adds the usable ones. */
static int add_sentences(loader *L, char *text)
{
    int added = 0;
    char *start = text;
    for (char *p = text;; p++) {
        bool end = *p == '\0';
        if (!end && strchr(".!?", *p)) {
            char *q = p + 1;
            while (*q == '"' || *q == '\'') q++;
            if (*q == ' ' || *q == '\0') {
                char keep = *q;
                *q = '\0';
                mt_sentence s;
                if (mt_speech_sentence_normalize(start, &s) && loader_add(L, s)) added++;
                *q = keep;
                p = q - 1;
                start = q;
                continue;
            }
        }
        if (end) {
            mt_sentence s;
            if (mt_speech_sentence_normalize(start, &s) && loader_add(L, s)) added++;
            return added;
        }
    }
}

static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) { free(buf); fclose(f); return NULL; }
            buf = b;
        }
        size_t got = fread(buf + n, 1, 65536, f);
        n += got;
        if (got < 65536) break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) { free(buf); return NULL; }
    buf[n] = '\0';
    if (size) *size = n;
    return buf;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A fortune file: cookies separated by lines "%"; attribution lines ("-- Mark Twain") are dropped. */
static int load_fortune_file(loader *L, const char *path)
{
    char *data = read_file(path, NULL);
    if (!data) return 0;
    size_t n = strlen(data);
    char *cookie = malloc(n + 2);
    int added = 0;
    if (!cookie) { free(data); L->oom = true; return 0; }
    size_t cl = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save);; line = strtok_r(NULL, "\n", &save)) {
        if (!line || strcmp(line, "%") == 0) {
            cookie[cl] = '\0';
            if (cl) added += add_sentences(L, cookie);
            cl = 0;
            if (!line) break;
            continue;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (strncmp(p, "--", 2) == 0) continue;
        size_t l = strlen(line);
        memcpy(cookie + cl, line, l);
        cl += l;
        cookie[cl++] = ' ';
    }
    free(cookie);
    free(data);
    return added;
}

static int load_fortunes(loader *L, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    int n = 0, cap = 0, added = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strchr(e->d_name, '.')) continue;   /* fortunes, not fortunes.dat / .u8 */
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        if (!(names[n] = dup_string(e->d_name))) break;
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, compare_strings);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) added += load_fortune_file(L, path);
        free(names[i]);
    }
    free(names);
    return added;
}

/* WordNet's data.* files: "<synset> ... | <gloss>; "<example>"; ..." - the quoted examples are sentences. */
static int load_wordnet(loader *L, const char *dir)
{
    static const char *const files[] = { "data.adj", "data.adv", "data.noun", "data.verb" };
    int added = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        char *data = read_file(path, NULL);
        if (!data) continue;
        char *save = NULL;
        for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (line[0] == ' ') continue;   /* the licence */
            char *gloss = strstr(line, " | ");
            if (!gloss) continue;
            for (char *q = strchr(gloss, '"'); q;) {
                char *e = strchr(q + 1, '"');
                if (!e) break;
                *e = '\0';
                added += add_sentences(L, q + 1);
                q = strchr(e + 1, '"');
            }
        }
        free(data);
    }
    return added;
}

mt_status mt_speech_sentences_load(const char *fortunes_dir, const char *wordnet_dir, mt_sentences *out)
{
    if (!out) return mt_set_error(MT_ERR_ARGUMENT, "speech: NULL sentences");
    memset(out, 0, sizeof *out);
    const char *fd = fortunes_dir ? fortunes_dir : "/usr/share/games/fortunes";
    const char *wd = wordnet_dir ? wordnet_dir : "/usr/share/wordnet";
    loader L = { .out = out };
    out->from_fortunes = load_fortunes(&L, fd);
    out->from_wordnet = load_wordnet(&L, wd);
    free(L.slots);
    if (L.oom) {
        mt_speech_sentences_free(out);
        return mt_set_error(MT_ERR_MEMORY, "speech: out of memory reading sentences");
    }
    if (out->n < MT_SPEECH_N_SPLITS) {
        mt_speech_sentences_free(out);
        return mt_set_error(MT_ERR_IO, "speech: no English sentences found in %s (fortunes-min) or %s (wordnet-base): "
                            "apt-get install fortunes-min wordnet-base", fd, wd);
    }
    return MT_OK;
}

/* ---------------------------------------------------------------- speakers */

static const char *const flite_train[] = { "kal16", "awb", "rms" };
static const char *const flite_test[] = { "slt" };
static const char *const espeak_train[] = { "en-us", "en", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc" };
static const char *const espeak_test[] = { "en-gb-scotland", "en-029" };
static const char *const espeak_variants[] = { "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4" };
static const int espeak_rates[] = { 140, 155, 170, 185, 200 };
static const int espeak_pitches[] = { 30, 40, 50, 60, 70 };
static const int flite_rates[] = { 80, 90, 100, 110, 120 };
static const int flite_pitches[] = { 80, 90, 100, 110, 120 };
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static bool same_speaker(const mt_speaker *a, const mt_speaker *b)
{
    return a->engine == b->engine && strcmp(a->voice, b->voice) == 0 && strcmp(a->variant, b->variant) == 0 &&
           a->rate == b->rate && a->pitch == b->pitch;
}

static mt_speaker draw_speaker(rng *r, mt_tts_engine engine, bool test)
{
    mt_speaker s = { .engine = engine, .variant = "" };
    if (engine == MT_TTS_FLITE) {
        s.voice = test ? flite_test[rng_below(r, COUNT(flite_test))] : flite_train[rng_below(r, COUNT(flite_train))];
        s.rate = flite_rates[rng_below(r, COUNT(flite_rates))];
        s.pitch = flite_pitches[rng_below(r, COUNT(flite_pitches))];
    } else {
        s.voice = test ? espeak_test[rng_below(r, COUNT(espeak_test))] : espeak_train[rng_below(r, COUNT(espeak_train))];
        s.variant = espeak_variants[rng_below(r, COUNT(espeak_variants))];
        s.rate = espeak_rates[rng_below(r, COUNT(espeak_rates))];
        s.pitch = espeak_pitches[rng_below(r, COUNT(espeak_pitches))];
    }
    return s;
}

void mt_speech_plan_free(mt_speech_plan *plan)
{
    if (!plan) return;
    mt_speech_sentences_free(&plan->sentences);
    free(plan->speakers);
    free(plan->utts);
    memset(plan, 0, sizeof *plan);
}

mt_status mt_speech_plan_make(const mt_speech_corpus_opts *opts, mt_speech_plan *plan)
{
    if (!opts || !plan) return mt_set_error(MT_ERR_ARGUMENT, "speech: NULL options or plan");
    memset(plan, 0, sizeof *plan);
    mt_speech_size_spec spec = mt_speech_size_spec_of(opts->size);
    mt_status st = mt_speech_sentences_load(opts->fortunes_dir, opts->wordnet_dir, &plan->sentences);
    if (st != MT_OK) return st;

    /* the sentences, shuffled, cut into three pools: 80% train, 10% dev, 10% test */
    int n = plan->sentences.n;
    int *perm = malloc((size_t)n * sizeof *perm);
    int total_spk = spec.speakers[0] + spec.speakers[1] + spec.speakers[2];
    int total_utt = spec.utterances[0] + spec.utterances[1] + spec.utterances[2];
    plan->speakers = calloc((size_t)total_spk, sizeof *plan->speakers);
    plan->utts = calloc((size_t)total_utt, sizeof *plan->utts);
    if (!perm || !plan->speakers || !plan->utts) {
        free(perm);
        mt_speech_plan_free(plan);
        return mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
    }
    rng r = { opts->seed ^ 0x5e7e4ce5ull };
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = rng_below(&r, i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int held = n / 10 > 0 ? n / 10 : 1;
    plan->split_sentences[0] = n - 2 * held;
    plan->split_sentences[1] = held;
    plan->split_sentences[2] = held;
    const int pool_start[MT_SPEECH_N_SPLITS] = { 0, n - 2 * held, n - held };

    /* speakers: every third one flite, the others espeak-ng; no two alike */
    rng rs = { opts->seed ^ 0x5bea4e25ull };
    int first_speaker[MT_SPEECH_N_SPLITS];
    for (int split = 0; split < MT_SPEECH_N_SPLITS; split++) {
        first_speaker[split] = plan->n_speakers;
        for (int k = 0; k < spec.speakers[split]; k++) {
            mt_tts_engine engine = k % 3 == 0 ? MT_TTS_FLITE : MT_TTS_ESPEAK;
            mt_speaker s;
            bool fresh = false;
            for (int attempt = 0; attempt < 400 && !fresh; attempt++) {
                if (attempt == 200) engine = engine == MT_TTS_FLITE ? MT_TTS_ESPEAK : MT_TTS_FLITE;
                s = draw_speaker(&rs, engine, split == 2);
                fresh = true;
                for (int j = 0; j < plan->n_speakers && fresh; j++)
                    if (same_speaker(&s, &plan->speakers[j].voice)) fresh = false;
            }
            if (!fresh) {
                free(perm);
                mt_speech_plan_free(plan);
                return mt_set_error(MT_ERR_STATE, "speech: could not draw %d distinct speakers for %s", spec.speakers[split], split_names[split]);
            }
            plan->speakers[plan->n_speakers] = (mt_speech_speaker){ .id = plan->n_speakers, .split = split, .voice = s };
            plan->n_speakers++;
        }
    }

    /* utterance u of a split: sentence u of its pool (cycling), speakers in
       turn, shifted by one on each pass over the pool so that no speaker
       says a sentence twice */
    for (int split = 0; split < MT_SPEECH_N_SPLITS; split++) {
        int P = plan->split_sentences[split], S = spec.speakers[split];
        for (int u = 0; u < spec.utterances[split]; u++) {
            mt_speech_utt *utt = &plan->utts[plan->n_utts++];
            utt->split = split;
            utt->speaker = first_speaker[split] + (u + u / P) % S;
            utt->sentence = perm[pool_start[split] + u % P];
            snprintf(utt->id, sizeof utt->id, "%04d-%06d", plan->speakers[utt->speaker].id, u);
        }
    }
    free(perm);
    return MT_OK;
}

/* ---------------------------------------------------------------- workers */

enum { REC_UTT = 1, REC_PHONE = 2, REC_ERROR = 3 };

typedef struct record {
    int32_t type;
    int32_t utt;
    int64_t frames, samples;
    int32_t n_phones;                          /* the transcript's phones, without [SOS]/[EOS] */
    int32_t label_counts[MT_SPEECH_N_PHONES];  /* frames per class */
    /* REC_PHONE */
    char name[12];
    int32_t engine, known;
    int64_t count;
    /* REC_ERROR */
    char message[300];
} record;

typedef struct engine_phone_count {
    char name[12];
    int engine;
    bool known;
    int64_t count;
} engine_phone_count;

typedef struct phone_table {
    engine_phone_count *items;
    int n, cap;
} phone_table;

static bool phone_table_add(phone_table *t, const char *name, int engine, bool known, int64_t count)
{
    for (int i = 0; i < t->n; i++)
        if (t->items[i].engine == engine && strcmp(t->items[i].name, name) == 0) {
            t->items[i].count += count;
            return true;
        }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        engine_phone_count *items = realloc(t->items, (size_t)cap * sizeof *items);
        if (!items) return false;
        t->items = items;
        t->cap = cap;
    }
    engine_phone_count *e = &t->items[t->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->engine = engine;
    e->known = known;
    e->count = count;
    return true;
}

typedef void (*emit_fn)(void *ctx, const record *r);

static const char *const layout_dirs[] = { "mfcc", "labels", "transcript", "text" };

/* mkdir -p */
static mt_status make_path(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) return mt_set_error(MT_ERR_ARGUMENT, "speech: bad output folder '%s'", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        struct stat st;
        if (mkdir(path, 0777) != 0 && (errno != EEXIST || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
            return mt_set_error(MT_ERR_IO, "speech: cannot create %s: %s", path, strerror(errno == EEXIST ? ENOTDIR : errno));
        path[i] = c;
    }
    return MT_OK;
}

static bool is_dot(const char *name) { return strcmp(name, ".") == 0 || strcmp(name, "..") == 0; }

/* Whether dir is empty; -1 when it cannot be read. */
static int folder_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        if (!is_dot(e->d_name)) empty = 0;
    closedir(d);
    return empty;
}

/* The files of an earlier corpus in out_dir: its utterances (*.npy, *.txt
   and left-over *.tmp.* in the layout's folders) and its manifest. */
static mt_status remove_old_corpus(const char *out_dir)
{
    char path[4096];
    for (int s = 0; s < MT_SPEECH_N_SPLITS; s++)
        for (int k = 0; k < 4; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", out_dir, split_names[s], layout_dirs[k]);
            DIR *d = opendir(path);
            if (!d) continue;
            for (struct dirent *e; (e = readdir(d));) {
                const char *dot = strrchr(e->d_name, '.');
                if (is_dot(e->d_name) || !dot) continue;
                if (strcmp(dot, ".npy") != 0 && strcmp(dot, ".txt") != 0 && !strstr(e->d_name, ".tmp.")) continue;
                char file[4400];
                snprintf(file, sizeof file, "%s/%s", path, e->d_name);
                if (unlink(file) != 0) {
                    closedir(d);
                    return mt_set_error(MT_ERR_IO, "speech: cannot remove %s: %s", file, strerror(errno));
                }
            }
            closedir(d);
        }
    snprintf(path, sizeof path, "%s/manifest.json", out_dir);
    unlink(path);
    return MT_OK;
}

/* Creates out_dir and its layout. A folder holding an earlier corpus (a
   manifest.json of this format) is cleared of that corpus's files first, so
   that no utterance of a bigger earlier size lingers; any other non-empty
   folder is refused. */
static mt_status make_dirs(const char *out_dir)
{
    char path[4096];
    mt_status st = make_path(out_dir);
    if (st != MT_OK) return st;
    int empty = folder_is_empty(out_dir);
    if (empty < 0) return mt_set_error(MT_ERR_IO, "speech: cannot read %s: %s", out_dir, strerror(errno));
    if (!empty) {
        snprintf(path, sizeof path, "%s/manifest.json", out_dir);
        char *m = read_file(path, NULL);
        bool ours = m && strstr(m, "\"format\": \"mytorch-speech-corpus\"");
        free(m);
        if (!ours)
            return mt_set_error(MT_ERR_ARGUMENT, "speech: %s is not empty and holds no speech corpus (manifest.json): "
                                "choose a new or empty folder", out_dir);
        if ((st = remove_old_corpus(out_dir)) != MT_OK) return st;
    }
    for (int s = 0; s < MT_SPEECH_N_SPLITS; s++) {
        for (int d = 0; d < 4; d++) {
            snprintf(path, sizeof path, "%s/%s/%s", out_dir, split_names[s], layout_dirs[d]);
            if ((st = make_path(path)) != MT_OK) return st;
        }
    }
    return MT_OK;
}

static mt_status write_text(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return mt_set_error(MT_ERR_IO, "speech: cannot write %s: %s", tmp, strerror(errno));
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mt_set_error(MT_ERR_IO, "speech: cannot write %s", path);
    }
    return MT_OK;
}

/* Synthesizes, featurizes and writes one utterance; fills rec. */
static mt_status make_utterance(const mt_speech_corpus_opts *opts, const mt_speech_plan *plan, int u, mt_mfcc *mfcc,
                                phone_table *phones, record *rec)
{
    const mt_speech_utt *utt = &plan->utts[u];
    const mt_sentence *sent = &plan->sentences.items[utt->sentence];
    const mt_speaker *spk = &plan->speakers[utt->speaker].voice;
    const mt_mfcc_opts *mo = &opts->mfcc;
    mt_synth_output syn;
    mt_status st = mt_synth_speak(spk, sent->speak, &syn);
    if (st != MT_OK) return st;
    for (int i = 0; i < syn.n_engine_phones; i++)
        if (!phone_table_add(phones, syn.engine_phones[i].name, spk->engine, syn.engine_phones[i].known, 1)) {
            mt_synth_output_free(&syn);
            return mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
        }

    int64_t T = mt_mfcc_frames(syn.n_samples, mo);
    int dim = mt_mfcc_dim(mo);
    float *feat = T > 0 ? malloc((size_t)T * dim * sizeof *feat) : NULL;
    int64_t *labels = T > 0 ? malloc((size_t)T * sizeof *labels) : NULL;
    const char **seq = malloc(((size_t)syn.n_segments + 2) * sizeof *seq);
    char path[4096];
    if (T == 0) {
        st = mt_set_error(MT_ERR_STATE, "speech: utterance %s (\"%s\") gave no audio", utt->id, sent->speak);
        goto done;
    }
    if (!feat || !labels || !seq) {
        st = mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
        goto done;
    }
    if ((st = mt_mfcc_compute(mfcc, syn.samples, syn.n_samples, feat)) != MT_OK) goto done;

    /* frame t is labelled with the phone covering its centre */
    memset(rec, 0, sizeof *rec);
    int j = 0;
    for (int64_t t = 0; t < T; t++) {
        double c = (double)(t * mo->hop_length + mo->hop_length / 2) / mo->sample_rate;
        while (j < syn.n_segments && syn.segments[j].end <= c) j++;
        labels[t] = j < syn.n_segments ? syn.segments[j].phone : MT_PHONE_SIL;
        rec->label_counts[labels[t]]++;
    }
    /* the phone sequence, without the silence at the ends */
    int a = 0, b = syn.n_segments;
    while (a < b && syn.segments[a].phone == MT_PHONE_SIL) a++;
    while (b > a && syn.segments[b - 1].phone == MT_PHONE_SIL) b--;
    int n_seq = 0;
    seq[n_seq++] = mt_speech_phone_name(MT_PHONE_SOS);
    for (int i = a; i < b; i++) seq[n_seq++] = mt_speech_phone_name(syn.segments[i].phone);
    seq[n_seq++] = mt_speech_phone_name(MT_PHONE_EOS);

    const char *dir = opts->out_dir, *split = split_names[utt->split];
    const mt_npy_save_opts no_sync = { .no_sync = true };   /* synced once at the end (sync_corpus) */
    {
        int64_t shape[2] = { T, dim };
        mt_tensor *x = mt_from_blob(MT_F32, 2, shape, feat);
        snprintf(path, sizeof path, "%s/%s/mfcc/%s.npy", dir, split, utt->id);
        st = x ? mt_npy_save_with(path, x, &no_sync) : mt_last_status();
        mt_free(x);
        if (st != MT_OK) goto done;
        mt_tensor *y = mt_from_blob(MT_I64, 1, shape, labels);
        snprintf(path, sizeof path, "%s/%s/labels/%s.npy", dir, split, utt->id);
        st = y ? mt_npy_save_with(path, y, &no_sync) : mt_last_status();
        mt_free(y);
        if (st != MT_OK) goto done;
    }
    snprintf(path, sizeof path, "%s/%s/transcript/%s.npy", dir, split, utt->id);
    if ((st = mt_npy_save_strings_with(path, n_seq, seq, &no_sync)) != MT_OK) goto done;
    {
        char line[MAX_SENTENCE + MAX_WORDS + 2];
        snprintf(line, sizeof line, "%s\n", sent->text);
        snprintf(path, sizeof path, "%s/%s/text/%s.txt", dir, split, utt->id);
        if ((st = write_text(path, line)) != MT_OK) goto done;
    }
    rec->type = REC_UTT;
    rec->utt = u;
    rec->frames = T;
    rec->samples = syn.n_samples;
    rec->n_phones = n_seq - 2;
done:
    free(feat);
    free(labels);
    free(seq);
    mt_synth_output_free(&syn);
    return st;
}

/* Makes utterances first, first + step, ...; every result goes to emit. */
static mt_status run_worker(const mt_speech_corpus_opts *opts, const mt_speech_plan *plan, int first, int step,
                            emit_fn emit, void *ctx)
{
    mt_mfcc *mfcc = mt_mfcc_new(&opts->mfcc);
    phone_table phones = { 0 };
    mt_status st = mfcc ? MT_OK : mt_last_status();
    record *rec = malloc(sizeof *rec);
    if (!rec && st == MT_OK) st = mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
    for (int u = first; st == MT_OK && u < plan->n_utts; u += step) {
        st = make_utterance(opts, plan, u, mfcc, &phones, rec);
        if (st == MT_OK) emit(ctx, rec);
    }
    for (int i = 0; st == MT_OK && i < phones.n; i++) {
        memset(rec, 0, sizeof *rec);
        rec->type = REC_PHONE;
        snprintf(rec->name, sizeof rec->name, "%s", phones.items[i].name);
        rec->engine = phones.items[i].engine;
        rec->known = phones.items[i].known;
        rec->count = phones.items[i].count;
        emit(ctx, rec);
    }
    if (st != MT_OK && rec) {
        memset(rec, 0, sizeof *rec);
        rec->type = REC_ERROR;
        snprintf(rec->message, sizeof rec->message, "%s", mt_last_error());
        emit(ctx, rec);
    }
    free(rec);
    free(phones.items);
    mt_mfcc_free(mfcc);
    return st;
}

/* ---------------------------------------------------------------- the parent's sums */

typedef struct totals {
    const mt_speech_plan *plan;
    int utterances[MT_SPEECH_N_SPLITS];
    int64_t frames[MT_SPEECH_N_SPLITS], samples[MT_SPEECH_N_SPLITS], phones[MT_SPEECH_N_SPLITS];
    int64_t labels[MT_SPEECH_N_SPLITS][MT_SPEECH_N_PHONES];
    phone_table engine_phones;
    bool failed, oom;
    char message[300];
    int done;
    FILE *progress;
    int last_shown;
} totals;

static void take_record(void *ctx, const record *r)
{
    totals *t = ctx;
    switch (r->type) {
    case REC_UTT: {
        if (r->utt < 0 || r->utt >= t->plan->n_utts) return;
        int s = t->plan->utts[r->utt].split;
        t->utterances[s]++;
        t->frames[s] += r->frames;
        t->samples[s] += r->samples;
        t->phones[s] += r->n_phones;
        for (int k = 0; k < MT_SPEECH_N_PHONES; k++) t->labels[s][k] += r->label_counts[k];
        t->done++;
        if (t->progress) {
            int pct = (int)(100LL * t->done / t->plan->n_utts);
            if (pct != t->last_shown || t->done == t->plan->n_utts) {
                fprintf(t->progress, "\rspeech: %d/%d utterances (%d%%)", t->done, t->plan->n_utts, pct);
                fflush(t->progress);
                t->last_shown = pct;
            }
        }
        break;
    }
    case REC_PHONE: {
        char name[sizeof r->name + 1];
        memcpy(name, r->name, sizeof r->name);
        name[sizeof r->name] = '\0';
        if (!phone_table_add(&t->engine_phones, name, r->engine, r->known, r->count)) t->oom = true;
        break;
    }
    case REC_ERROR:
        if (!t->failed) {
            memcpy(t->message, r->message, sizeof t->message);
            t->message[sizeof t->message - 1] = '\0';
        }
        t->failed = true;
        break;
    default:
        break;
    }
}

static void emit_to_pipe(void *ctx, const record *r)
{
    int fd = *(int *)ctx;
    const char *p = (const char *)r;
    size_t left = sizeof *r;
    while (left > 0) {   /* one write of < PIPE_BUF bytes: atomic, but be careful anyway */
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        left -= (size_t)w;
    }
}

static mt_status run_parallel(const mt_speech_corpus_opts *opts, const mt_speech_plan *plan, int jobs, totals *tot)
{
    pid_t *pids = calloc((size_t)jobs, sizeof *pids);
    int *fds = calloc((size_t)jobs, sizeof *fds);
    size_t *fill = calloc((size_t)jobs, sizeof *fill);
    char *bufs = malloc((size_t)jobs * sizeof(record));
    struct pollfd *pfd = calloc((size_t)jobs, sizeof *pfd);
    mt_status st = MT_OK;
    int started = 0;
    if (!pids || !fds || !fill || !bufs || !pfd) {
        st = mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
        goto done;
    }
    fflush(NULL);
    for (int k = 0; k < jobs; k++) {
        int p[2];
        if (pipe(p) != 0) {
            st = mt_set_error(MT_ERR_STATE, "speech: pipe: %s", strerror(errno));
            break;
        }
        pid_t pid = fork();
        if (pid < 0) {
            close(p[0]);
            close(p[1]);
            st = mt_set_error(MT_ERR_STATE, "speech: fork: %s", strerror(errno));
            break;
        }
        if (pid == 0) {   /* the worker */
            close(p[0]);
            for (int i = 0; i < started; i++) close(fds[i]);
            int fd = p[1];
            mt_status ws = run_worker(opts, plan, k, jobs, emit_to_pipe, &fd);
            close(fd);
            mt_synth_shutdown();
            _exit(ws == MT_OK ? 0 : 1);
        }
        close(p[1]);
        pids[k] = pid;
        fds[k] = p[0];
        started++;
    }
    /* read every worker's records until all pipes close */
    int open_fds = started;
    while (open_fds > 0) {
        int np = 0;
        for (int k = 0; k < started; k++)
            if (fds[k] >= 0) pfd[np++] = (struct pollfd){ .fd = fds[k], .events = POLLIN };
        if (poll(pfd, (nfds_t)np, -1) < 0) {
            if (errno == EINTR) continue;
            st = mt_set_error(MT_ERR_STATE, "speech: poll: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < np; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int k = 0;
            while (fds[k] != pfd[i].fd) k++;
            char *buf = bufs + (size_t)k * sizeof(record);
            ssize_t got = read(fds[k], buf + fill[k], sizeof(record) - fill[k]);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                close(fds[k]);
                fds[k] = -1;
                open_fds--;
                continue;
            }
            fill[k] += (size_t)got;
            if (fill[k] == sizeof(record)) {
                record r;
                memcpy(&r, buf, sizeof r);
                take_record(tot, &r);
                fill[k] = 0;
            }
        }
    }
done:
    for (int k = 0; k < started; k++) {
        if (fds[k] >= 0) close(fds[k]);
        int status = 0;
        while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR) {}
        if (st == MT_OK && !tot->failed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            tot->failed = true;
            snprintf(tot->message, sizeof tot->message, "speech: worker %d ended abnormally (status %d)", k, status);
        }
    }
    free(pids);
    free(fds);
    free(fill);
    free(bufs);
    free(pfd);
    return st;
}

/* ---------------------------------------------------------------- the manifest */

static int compare_phone_counts(const void *a, const void *b)
{
    const engine_phone_count *x = a, *y = b;
    if (x->engine != y->engine) return x->engine - y->engine;
    return strcmp(x->name, y->name);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void phone_expansion(int engine, const char *name, char *buf, size_t size)
{
    int ph[MT_PHONE_MAX_EXPANSION];
    bool known;
    int k = engine == MT_TTS_FLITE ? mt_flite_to_phones(name, ph, &known) : mt_espeak_to_phones(name, ph, &known);
    buf[0] = '\0';
    for (int i = 0; i < k; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, "%s%s", i ? " " : "", mt_speech_phone_name(ph[i]));
    }
}

static mt_status write_manifest(const mt_speech_corpus_opts *opts, const mt_speech_plan *plan, totals *tot)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/manifest.json", opts->out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return mt_set_error(MT_ERR_IO, "speech: cannot write %s: %s", tmp, strerror(errno));
    const mt_mfcc_opts *m = &opts->mfcc;
    mt_speech_size_spec spec = mt_speech_size_spec_of(opts->size);
    fprintf(f, "{\n  \"format\": \"mytorch-speech-corpus\",\n  \"version\": 1,\n");
    fprintf(f, "  \"phones\": [");
    for (int i = 0; i < MT_SPEECH_N_PHONES; i++) {
        fprintf(f, "%s", i ? ", " : "");
        json_string(f, mt_speech_phone_name(i));
    }
    fprintf(f, "],\n  \"silence\": \"[SIL]\",\n  \"sos\": \"[SOS]\",\n  \"eos\": \"[EOS]\",\n");
    fprintf(f, "  \"sample_rate\": %d,\n", m->sample_rate);
    fprintf(f, "  \"features\": {\"type\": \"mfcc\", \"dim\": %d, \"n_ceps\": %d, \"n_mels\": %d, \"fmin\": %g, \"fmax\": %g, "
               "\"win_length\": %d, \"hop_length\": %d, \"n_fft\": %d, \"window\": \"hamming\", \"preemphasis\": %g, "
               "\"log_floor\": 1e-10, \"dct\": \"orthonormal\", \"deltas\": %s, \"delta_deltas\": %s, \"cmvn\": %s},\n",
            mt_mfcc_dim(m), m->n_ceps, m->n_mels, m->fmin, m->fmax, m->win_length, m->hop_length, m->n_fft, m->preemphasis,
            m->deltas ? "true" : "false", m->delta_deltas ? "true" : "false", m->cmvn ? "true" : "false");
    fprintf(f, "  \"frame_labels\": \"the phone covering the frame's centre, t * %d + %d samples\",\n", m->hop_length, m->hop_length / 2);
    fprintf(f, "  \"generator\": {\"command\": \"mytorch data speech\", \"size\": \"%s\", \"seed\": %" PRIu64 ", "
               "\"sentences\": %d, \"sentences_fortunes\": %d, \"sentences_wordnet\": %d, "
               "\"engines\": {\"flite\": \"%s\", \"espeak-ng\": ",
            mt_speech_size_name(opts->size), opts->seed, plan->sentences.n, plan->sentences.from_fortunes,
            plan->sentences.from_wordnet, mt_synth_engine_version(MT_TTS_FLITE));
    json_string(f, mt_synth_engine_version(MT_TTS_ESPEAK));
    fprintf(f, "}, \"resampler\": \"libsamplerate sinc medium\"},\n");
    fprintf(f, "  \"splits\": {\n");
    for (int s = 0; s < MT_SPEECH_N_SPLITS; s++) {
        fprintf(f, "    \"%s\": {\n      \"utterances\": %d,\n      \"frames\": %" PRId64 ",\n      \"hours\": %.4f,\n"
                   "      \"phones\": %" PRId64 ",\n      \"sentence_pool\": %d,\n      \"label_counts\": [",
                split_names[s], tot->utterances[s], tot->frames[s], (double)tot->samples[s] / m->sample_rate / 3600.0,
                tot->phones[s], plan->split_sentences[s]);
        for (int k = 0; k < MT_SPEECH_N_PHONES; k++) fprintf(f, "%s%" PRId64, k ? ", " : "", tot->labels[s][k]);
        fprintf(f, "],\n      \"speakers\": [\n");
        int printed = 0;
        for (int i = 0; i < plan->n_speakers; i++) {
            const mt_speech_speaker *sp = &plan->speakers[i];
            if (sp->split != s) continue;
            char desc[160];
            mt_speaker_describe(&sp->voice, desc, sizeof desc);
            fprintf(f, "%s        {\"id\": \"%04d\", \"engine\": \"%s\", \"voice\": ", printed ? ",\n" : "", sp->id,
                    mt_synth_engine_name(sp->voice.engine));
            json_string(f, sp->voice.voice);
            fprintf(f, ", \"variant\": ");
            json_string(f, sp->voice.variant);
            fprintf(f, ", \"rate\": %d, \"pitch\": %d, \"name\": ", sp->voice.rate, sp->voice.pitch);
            json_string(f, desc);
            fprintf(f, "}");
            printed++;
        }
        fprintf(f, "\n      ]\n    }%s\n", s + 1 < MT_SPEECH_N_SPLITS ? "," : "");
    }
    (void)spec;
    fprintf(f, "  },\n  \"engine_phones\": [\n");
    qsort(tot->engine_phones.items, (size_t)tot->engine_phones.n, sizeof *tot->engine_phones.items, compare_phone_counts);
    for (int i = 0; i < tot->engine_phones.n; i++) {
        const engine_phone_count *e = &tot->engine_phones.items[i];
        char exp[32];
        phone_expansion(e->engine, e->name, exp, sizeof exp);
        fprintf(f, "    {\"engine\": \"%s\", \"phone\": ", mt_synth_engine_name((mt_tts_engine)e->engine));
        json_string(f, e->name);
        fprintf(f, ", \"maps_to\": \"%s\", \"in_table\": %s, \"count\": %" PRId64 "}%s\n", exp, e->known ? "true" : "false",
                e->count, i + 1 < tot->engine_phones.n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    bool ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mt_set_error(MT_ERR_IO, "speech: cannot write %s", path);
    }
    return MT_OK;
}

/* ---------------------------------------------------------------- generate */

/* Flushes everything written under dir to disk: one syncfs(2) of its file
   system instead of an fsync per file. */
static mt_status sync_corpus(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return mt_set_error(MT_ERR_IO, "speech: cannot open %s: %s", dir, strerror(errno));
    int rc = syncfs(fd);
    int err = errno;
    close(fd);
    if (rc != 0) return mt_set_error(MT_ERR_IO, "speech: cannot sync %s to disk: %s", dir, strerror(err));
    return MT_OK;
}

mt_status mt_speech_corpus_generate(const mt_speech_corpus_opts *opts, mt_speech_corpus_report *report)
{
    if (!opts || !opts->out_dir) return mt_set_error(MT_ERR_ARGUMENT, "speech: NULL options or output folder");
    double t0 = mt_clock_seconds();
    mt_mfcc *check = mt_mfcc_new(&opts->mfcc);
    if (!check) return mt_last_status();
    mt_mfcc_free(check);
    mt_status st = make_dirs(opts->out_dir);
    if (st != MT_OK) return st;
    mt_speech_plan plan;
    if ((st = mt_speech_plan_make(opts, &plan)) != MT_OK) return st;

    totals tot = { .plan = &plan, .progress = opts->progress, .last_shown = -1 };
    int jobs = opts->jobs > 1 ? opts->jobs : 1;
    if (jobs > plan.n_utts) jobs = plan.n_utts;
    if (jobs <= 1) {
        if (run_worker(opts, &plan, 0, 1, take_record, &tot) != MT_OK) st = mt_last_status();
    } else {
        st = run_parallel(opts, &plan, jobs, &tot);
    }
    if (opts->progress && tot.done > 0) fprintf(opts->progress, "\n");
    if (st == MT_OK && tot.failed) st = mt_set_error(MT_ERR_STATE, "%s", tot.message);
    if (st == MT_OK && tot.oom) st = mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
    if (st == MT_OK && tot.done != plan.n_utts)
        st = mt_set_error(MT_ERR_STATE, "speech: %d of %d utterances were made", tot.done, plan.n_utts);
    if (st == MT_OK) st = sync_corpus(opts->out_dir);   /* the utterances' files */
    if (st == MT_OK) st = write_manifest(opts, &plan, &tot);
    if (st == MT_OK) st = sync_corpus(opts->out_dir);   /* the manifest */
    if (st == MT_OK && report) {
        memset(report, 0, sizeof *report);
        for (int s = 0; s < MT_SPEECH_N_SPLITS; s++) {
            report->utterances[s] = tot.utterances[s];
            report->frames[s] = tot.frames[s];
            report->audio_seconds[s] = (double)tot.samples[s] / opts->mfcc.sample_rate;
        }
        for (int i = 0; i < plan.n_speakers; i++) report->speakers[plan.speakers[i].split]++;
        report->sentences = plan.sentences.n;
        for (int i = 0; i < tot.engine_phones.n; i++) {
            const engine_phone_count *e = &tot.engine_phones.items[i];
            report->engine_phones += e->count;
            if (!e->known) {
                report->unmapped_phones += e->count;
                if (report->n_unmapped_names < 32)
                    snprintf(report->unmapped_names[report->n_unmapped_names++], sizeof report->unmapped_names[0], "%s", e->name);
            }
        }
        report->feature_dim = mt_mfcc_dim(&opts->mfcc);
        report->seconds = mt_clock_seconds() - t0;
    }
    free(tot.engine_phones.items);
    if (jobs <= 1) mt_synth_shutdown();
    mt_speech_plan_free(&plan);
    return st;
}
