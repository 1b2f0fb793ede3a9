/*
 * speech_synth.c - speech and phone alignments from flite and espeak-ng
 * (speech_synth.h).
 */
#include "models/speech_data/speech_synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <espeak-ng/speak_lib.h>
#include <flite/flite.h>
#include <flite/flite_version.h>
#include <samplerate.h>

#include "models/speech_data/speech_phones.h"

/* ---------------------------------------------------------------- growing arrays */

typedef struct raw_phone {      /* an engine phone before mapping */
    char name[12];
    double start, end;          /* seconds */
} raw_phone;

typedef struct synth_buffer {
    short *pcm;
    int64_t n_pcm, cap_pcm;
    raw_phone *phones;
    int n_phones, cap_phones;
    bool failed;                /* out of memory */
} synth_buffer;

static bool grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap) return true;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool push_pcm(synth_buffer *b, const short *x, int64_t n)
{
    if (!grow((void **)&b->pcm, &b->cap_pcm, b->n_pcm + n, sizeof *b->pcm)) return false;
    memcpy(b->pcm + b->n_pcm, x, (size_t)n * sizeof *x);
    b->n_pcm += n;
    return true;
}

static bool push_phone(synth_buffer *b, const char *name, double start, double end)
{
    int64_t cap = b->cap_phones;
    if (!grow((void **)&b->phones, &cap, b->n_phones + 1, sizeof *b->phones)) return false;
    b->cap_phones = (int)cap;
    raw_phone *r = &b->phones[b->n_phones++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->start = start;
    r->end = end;
    return true;
}

static void buffer_free(synth_buffer *b)
{
    free(b->pcm);
    free(b->phones);
    memset(b, 0, sizeof *b);
}

/* Both engines draw noise from rand() (flite's statistical voices for their
   excitation, espeak-ng's variants with breath such as +f3): it is seeded
   from the speaker and the text before each utterance, so that the same
   utterance gives the same samples whatever ran before in the process. */
static void seed_rand(const mt_speaker *spk, const char *text)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = text; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    h ^= (uint64_t)spk->rate * 1000003u + (uint64_t)spk->pitch;
    srand((unsigned)(h ^ (h >> 32)));
}

/* ---------------------------------------------------------------- flite */

cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);
cst_voice *register_cmu_us_slt(const char *voxdir);
void unregister_cmu_us_kal16(cst_voice *v);
void unregister_cmu_us_awb(cst_voice *v);
void unregister_cmu_us_rms(cst_voice *v);
void unregister_cmu_us_slt(cst_voice *v);

static struct flite_voice {
    const char *name;
    bool clustergen;            /* statistical voices take f0_shift; the diphone voice int_f0_target_mean */
    cst_voice *(*reg)(const char *);
    void (*unreg)(cst_voice *);
    cst_voice *voice;
    float f0_mean;              /* the diphone voice's own int_f0_target_mean */
} flite_voices[] = {
    { "kal16", false, register_cmu_us_kal16, unregister_cmu_us_kal16, NULL, 0 },
    { "awb",   true,  register_cmu_us_awb,   unregister_cmu_us_awb,   NULL, 0 },
    { "rms",   true,  register_cmu_us_rms,   unregister_cmu_us_rms,   NULL, 0 },
    { "slt",   true,  register_cmu_us_slt,   unregister_cmu_us_slt,   NULL, 0 },
};
enum { N_FLITE_VOICES = (int)(sizeof flite_voices / sizeof flite_voices[0]) };
static bool flite_started;

static struct flite_voice *flite_find(const char *name)
{
    for (int i = 0; i < N_FLITE_VOICES; i++)
        if (strcmp(flite_voices[i].name, name) == 0) return &flite_voices[i];
    return NULL;
}

static mt_status flite_speak(const mt_speaker *spk, const char *text, synth_buffer *b, int *rate)
{
    struct flite_voice *fv = flite_find(spk->voice);
    if (!fv) return mt_set_error(MT_ERR_ARGUMENT, "speech: flite has no voice '%s' (kal16, awb, rms, slt)", spk->voice);
    if (spk->rate < 50 || spk->rate > 200 || spk->pitch < 50 || spk->pitch > 200)
        return mt_set_error(MT_ERR_ARGUMENT, "speech: flite rate and pitch are percentages in [50, 200], got %d and %d",
                            spk->rate, spk->pitch);
    if (!flite_started) {
        flite_init();
        flite_started = true;
    }
    if (!fv->voice) {
        fv->voice = fv->reg(NULL);
        if (!fv->voice) return mt_set_error(MT_ERR_STATE, "speech: flite could not load the voice '%s'", fv->name);
        fv->f0_mean = get_param_float(fv->voice->features, "int_f0_target_mean", 100.0f);
    }
    cst_features *f = fv->voice->features;
    feat_set_float(f, "duration_stretch", 100.0f / (float)spk->rate);
    if (fv->clustergen) feat_set_float(f, "f0_shift", (float)spk->pitch / 100.0f);
    else feat_set_float(f, "int_f0_target_mean", fv->f0_mean * (float)spk->pitch / 100.0f);

    seed_rand(spk, text);
    cst_utterance *u = flite_synth_text(text, fv->voice);
    cst_wave *w = u ? utt_wave(u) : NULL;
    if (!w || w->num_channels != 1 || w->sample_rate <= 0) {
        if (u) delete_utterance(u);
        return mt_set_error(MT_ERR_STATE, "speech: flite (%s) could not speak \"%s\"", fv->name, text);
    }
    *rate = w->sample_rate;
    bool ok = push_pcm(b, w->samples, w->num_samples);
    double start = 0;
    for (cst_item *it = relation_head(utt_relation(u, "Segment")); ok && it; it = item_next(it)) {
        double end = item_feat_float(it, "end");
        ok = push_phone(b, item_feat_string(it, "name"), start, end);
        start = end;
    }
    delete_utterance(u);
    return ok ? MT_OK : mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
}

/* ---------------------------------------------------------------- espeak-ng */
/* espeak-ng's output depends on what it spoke before in the same process (the
   same sentence twice gives a few samples more or less, and a voice variant's
   settings linger after the next voice is chosen), and it cannot be stopped
   and started again (espeak_Terminate then espeak_Initialize hangs). So every
   utterance is spoken by a child process that starts espeak-ng afresh and
   sends the audio and the phoneme events back through a pipe: the same
   speaker and text give the same samples whatever came before. This process
   never starts espeak-ng itself. */

typedef struct espeak_reply {   /* then n_pcm shorts, then n_phones raw_phones */
    int32_t status;             /* an mt_status */
    int32_t rate;
    int64_t n_pcm;
    int32_t n_phones;
    char message[256];
} espeak_reply;

static synth_buffer *espeak_target;   /* in the child */

static int espeak_callback(short *wav, int n, espeak_EVENT *events)
{
    synth_buffer *b = espeak_target;
    if (!b || b->failed) return 1;
    if (wav && n > 0 && !push_pcm(b, wav, n)) b->failed = true;
    for (espeak_EVENT *e = events; e && e->type != espeakEVENT_LIST_TERMINATED; e++) {
        if (e->type != espeakEVENT_PHONEME) continue;
        char name[9];
        memcpy(name, e->id.string, 8);
        name[8] = '\0';
        /* audio_position: milliseconds from the start of this message */
        if (!push_phone(b, name, e->audio_position / 1000.0, 0)) b->failed = true;
    }
    return b->failed ? 1 : 0;
}

static void espeak_voice_name(const mt_speaker *spk, char *buf, size_t size)
{
    if (spk->variant && spk->variant[0]) snprintf(buf, size, "%s+%s", spk->voice, spk->variant);
    else snprintf(buf, size, "%s", spk->voice);
}

static bool write_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        size -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, void *data, size_t size)
{
    char *p = data;
    while (size > 0) {
        ssize_t r = read(fd, p, size);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        size -= (size_t)r;
    }
    return true;
}

/* The child: speaks text (text == NULL: only selects the voice) and writes the reply to fd. */
static int espeak_child(const mt_speaker *spk, const char *text, int fd)
{
    espeak_reply rep = { .status = MT_OK };
    synth_buffer b = { 0 };
    char name[96];
    espeak_voice_name(spk, name, sizeof name);
    int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, NULL, espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0) {
        rep.status = MT_ERR_STATE;
        snprintf(rep.message, sizeof rep.message, "speech: espeak-ng could not start (is espeak-ng-data installed?)");
    } else if (espeak_SetVoiceByName(name) != EE_OK) {
        rep.status = MT_ERR_ARGUMENT;
        snprintf(rep.message, sizeof rep.message, "speech: espeak-ng has no voice '%s'", name);
    } else if (text) {
        espeak_SetSynthCallback(espeak_callback);
        espeak_SetParameter(espeakRATE, spk->rate, 0);
        espeak_SetParameter(espeakPITCH, spk->pitch, 0);
        espeak_target = &b;
        seed_rand(spk, text);
        espeak_ERROR e = espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
        espeak_target = NULL;
        if (b.failed) {
            rep.status = MT_ERR_MEMORY;
            snprintf(rep.message, sizeof rep.message, "speech: out of memory");
        } else if (e != EE_OK) {
            rep.status = MT_ERR_STATE;
            snprintf(rep.message, sizeof rep.message, "speech: espeak-ng (%.60s) could not speak \"%.100s\" (error %d)", name, text, (int)e);
        }
    }
    rep.rate = rate;
    if (rep.status == MT_OK) {
        rep.n_pcm = b.n_pcm;
        rep.n_phones = b.n_phones;
    }
    bool ok = write_all(fd, &rep, sizeof rep) &&
              write_all(fd, b.pcm, (size_t)rep.n_pcm * sizeof *b.pcm) &&
              write_all(fd, b.phones, (size_t)rep.n_phones * sizeof *b.phones);
    buffer_free(&b);
    return ok ? 0 : 1;
}

/* Runs espeak_child in a fresh process; fills b (text == NULL: b may be NULL). */
static mt_status espeak_run(const mt_speaker *spk, const char *text, synth_buffer *b, int *rate)
{
    int p[2];
    if (pipe(p) != 0) return mt_set_error(MT_ERR_STATE, "speech: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return mt_set_error(MT_ERR_STATE, "speech: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(p[0]);
        _exit(espeak_child(spk, text, p[1]));
    }
    close(p[1]);
    espeak_reply rep;
    mt_status st = MT_OK;
    if (!read_all(p[0], &rep, sizeof rep)) {
        st = mt_set_error(MT_ERR_STATE, "speech: the espeak-ng process ended without a reply");
    } else if (rep.status != MT_OK) {
        rep.message[sizeof rep.message - 1] = '\0';
        st = mt_set_error((mt_status)rep.status, "%s", rep.message);
    } else if (b) {
        if (rep.n_pcm < 0 || rep.n_phones < 0 ||
            !grow((void **)&b->pcm, &b->cap_pcm, rep.n_pcm, sizeof *b->pcm)) {
            st = mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
        } else {
            int64_t cap = b->cap_phones;
            if (!grow((void **)&b->phones, &cap, rep.n_phones, sizeof *b->phones))
                st = mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
            b->cap_phones = (int)cap;
        }
        if (st == MT_OK && (!read_all(p[0], b->pcm, (size_t)rep.n_pcm * sizeof *b->pcm) ||
                            !read_all(p[0], b->phones, (size_t)rep.n_phones * sizeof *b->phones)))
            st = mt_set_error(MT_ERR_STATE, "speech: the espeak-ng process's reply was cut short");
        if (st == MT_OK) {
            b->n_pcm = rep.n_pcm;
            b->n_phones = rep.n_phones;
            *rate = rep.rate;
        }
    }
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (st == MT_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        st = mt_set_error(MT_ERR_STATE, "speech: the espeak-ng process failed (status %d)", status);
    return st;
}

static mt_status espeak_speak(const mt_speaker *spk, const char *text, synth_buffer *b, int *rate)
{
    if (spk->rate < 80 || spk->rate > 450 || spk->pitch < 0 || spk->pitch > 100)
        return mt_set_error(MT_ERR_ARGUMENT, "speech: espeak-ng rate is in [80, 450] words per minute and pitch in [0, 100], got %d and %d",
                            spk->rate, spk->pitch);
    mt_status st = espeak_run(spk, text, b, rate);
    if (st != MT_OK) return st;
    /* Events give starts: a phone ends where the next starts, the last one at the end of the audio. */
    double total = (double)b->n_pcm / *rate;
    for (int i = 0; i < b->n_phones; i++) {
        double end = i + 1 < b->n_phones ? b->phones[i + 1].start : total;
        b->phones[i].end = end > b->phones[i].start ? end : b->phones[i].start;
    }
    return MT_OK;
}

/* ---------------------------------------------------------------- common */

const char *mt_synth_engine_name(mt_tts_engine engine)
{
    return engine == MT_TTS_FLITE ? "flite" : "espeak-ng";
}

const char *mt_synth_engine_version(mt_tts_engine engine)
{
    if (engine == MT_TTS_FLITE) return FLITE_PROJECT_VERSION;
    const char *v = espeak_Info(NULL);
    return v ? v : "?";
}

void mt_speaker_describe(const mt_speaker *spk, char *buf, size_t size)
{
    if (spk->engine == MT_TTS_FLITE) {
        snprintf(buf, size, "flite/%s/r%d/p%d", spk->voice, spk->rate, spk->pitch);
    } else {
        char name[96];
        espeak_voice_name(spk, name, sizeof name);
        snprintf(buf, size, "espeak-ng/%s/r%d/p%d", name, spk->rate, spk->pitch);
    }
}

bool mt_synth_has_voice(const mt_speaker *spk)
{
    if (spk->engine == MT_TTS_FLITE) return flite_find(spk->voice) != NULL;
    int rate = 0;
    return espeak_run(spk, NULL, NULL, &rate) == MT_OK;
}

void mt_synth_output_free(mt_synth_output *out)
{
    if (!out) return;
    free(out->samples);
    free(out->segments);
    free(out->engine_phones);
    memset(out, 0, sizeof *out);
}

void mt_synth_shutdown(void)
{
    for (int i = 0; i < N_FLITE_VOICES; i++)
        if (flite_voices[i].voice) {
            flite_voices[i].unreg(flite_voices[i].voice);
            flite_voices[i].voice = NULL;
        }
}

/* PCM at `rate` Hz -> float at 16 kHz. */
static mt_status to_16k(const synth_buffer *b, int rate, mt_synth_output *out)
{
    int64_t n = b->n_pcm;
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    if (!x) return mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
    for (int64_t i = 0; i < n; i++) x[i] = (float)b->pcm[i] / 32768.0f;
    if (rate == MT_SPEECH_SAMPLE_RATE || n == 0) {
        out->samples = x;
        out->n_samples = n;
        return MT_OK;
    }
    double ratio = (double)MT_SPEECH_SAMPLE_RATE / rate;
    int64_t cap = (int64_t)ceil((double)n * ratio) + 16;
    float *y = malloc((size_t)cap * sizeof *y);
    if (!y) {
        free(x);
        return mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
    }
    SRC_DATA d = { .data_in = x, .data_out = y, .input_frames = (long)n, .output_frames = (long)cap, .src_ratio = ratio };
    int err = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
    free(x);
    if (err) {
        free(y);
        return mt_set_error(MT_ERR_STATE, "speech: resampling %d Hz -> %d Hz failed: %s", rate, MT_SPEECH_SAMPLE_RATE, src_strerror(err));
    }
    for (long i = 0; i < d.output_frames_gen; i++) y[i] = fminf(1.0f, fmaxf(-1.0f, y[i]));
    out->samples = y;
    out->n_samples = d.output_frames_gen;
    return MT_OK;
}

static int map_phone(mt_tts_engine engine, const char *name, int out[MT_PHONE_MAX_EXPANSION], bool *known)
{
    return engine == MT_TTS_FLITE ? mt_flite_to_phones(name, out, known) : mt_espeak_to_phones(name, out, known);
}

/* Adds [start, end) of phone p, merging runs of [SIL]. */
static void add_segment(mt_synth_output *out, int p, double start, double end)
{
    if (end <= start) return;
    mt_phone_segment *last = out->n_segments ? &out->segments[out->n_segments - 1] : NULL;
    if (last && (last->phone == p && p == MT_PHONE_SIL)) {
        last->end = end;
        return;
    }
    out->segments[out->n_segments++] = (mt_phone_segment){ p, start, end };
}

/* Engine phones -> contiguous segments of the phone set covering the audio. */
static mt_status align(mt_tts_engine engine, const synth_buffer *b, mt_synth_output *out)
{
    double total = (double)out->n_samples / MT_SPEECH_SAMPLE_RATE;
    out->segments = malloc(((size_t)b->n_phones * (MT_PHONE_MAX_EXPANSION + 1) + 2) * sizeof *out->segments);
    out->engine_phones = malloc(((size_t)b->n_phones + 1) * sizeof *out->engine_phones);
    if (!out->segments || !out->engine_phones) return mt_set_error(MT_ERR_MEMORY, "speech: out of memory");
    double t = 0;   /* where the segments reach */
    for (int i = 0; i < b->n_phones; i++) {
        const raw_phone *r = &b->phones[i];
        int ph[MT_PHONE_MAX_EXPANSION];
        bool known = true;
        int k = map_phone(engine, r->name, ph, &known);
        mt_engine_phone *ep = &out->engine_phones[out->n_engine_phones++];
        snprintf(ep->name, sizeof ep->name, "%s", r->name);
        ep->known = known;
        if (k == 2 && i + 1 < b->n_phones) {   /* "A@ r": the r is spoken once */
            int next[MT_PHONE_MAX_EXPANSION];
            bool nk;
            map_phone(engine, b->phones[i + 1].name, next, &nk);
            if (next[0] == ph[1]) k = 1;
        }
        double start = fmax(r->start, t), end = fmin(r->end, total);
        if (end <= start) continue;
        if (start > t) add_segment(out, MT_PHONE_SIL, t, start);   /* a gap: silence */
        for (int j = 0; j < k; j++) {
            double s = start + (end - start) * j / k, e = j + 1 == k ? end : start + (end - start) * (j + 1) / k;
            add_segment(out, ph[j], s, e);
        }
        t = end;
    }
    if (t < total) add_segment(out, MT_PHONE_SIL, t, total);
    return MT_OK;
}

mt_status mt_synth_speak(const mt_speaker *speaker, const char *text, mt_synth_output *out)
{
    if (!speaker || !text || !out || !speaker->voice) return mt_set_error(MT_ERR_ARGUMENT, "speech: NULL speaker, text or output");
    memset(out, 0, sizeof *out);
    synth_buffer b = { 0 };
    int rate = 0;
    mt_status st = speaker->engine == MT_TTS_FLITE ? flite_speak(speaker, text, &b, &rate)
                 : speaker->engine == MT_TTS_ESPEAK ? espeak_speak(speaker, text, &b, &rate)
                 : mt_set_error(MT_ERR_ARGUMENT, "speech: unknown engine %d", (int)speaker->engine);
    if (st == MT_OK) st = to_16k(&b, rate, out);
    if (st == MT_OK) st = align(speaker->engine, &b, out);
    buffer_free(&b);
    if (st != MT_OK) mt_synth_output_free(out);
    return st;
}
