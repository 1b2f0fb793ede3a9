/*
 * speech_synth.h - sentences to 16 kHz speech with time-aligned phones, by
 * two text-to-speech engines from Debian (docs/speech-data.md):
 *
 *   flite      (libflite, voices cmu_us_kal16, cmu_us_awb, cmu_us_rms,
 *               cmu_us_slt): the utterance's "Segment" relation gives each
 *               phone's name (the CMU phone set) and end time.
 *   espeak-ng  (libespeak-ng, the English voices en, en-us, en-gb-x-rp, ...
 *               with the variants +m1 .. +f4): phoneme events give each
 *               phoneme's mnemonic and start; speech_phones.h maps them.
 *
 * Audio at another rate (espeak-ng speaks at 22050 Hz) is resampled to
 * 16 kHz by libsamplerate (SRC_SINC_MEDIUM_QUALITY).
 *
 * Determinism: the same speaker and text give the same samples whatever was
 * spoken before. espeak-ng keeps state from one utterance to the next (and
 * cannot be restarted), so each espeak-ng utterance is spoken by a fresh
 * child process (fork) that sends the audio back through a pipe. Both
 * engines draw noise from rand() (flite's statistical voices, espeak-ng's
 * breathy variants such as +f3): it is seeded (srand) from the speaker and
 * the text before each utterance.
 *
 * flite keeps global state: these functions are not thread-safe. Generate in
 * parallel with processes (speech_corpus.c forks workers).
 */
#ifndef MT_MODELS_SPEECH_SYNTH_H
#define MT_MODELS_SPEECH_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mytorch/mytorch.h"

enum { MT_SPEECH_SAMPLE_RATE = 16000 };

typedef enum mt_tts_engine { MT_TTS_FLITE = 0, MT_TTS_ESPEAK = 1 } mt_tts_engine;

/* A synthetic speaker: an engine's voice and how it speaks. */
typedef struct mt_speaker {
    mt_tts_engine engine;
    const char *voice;     /* flite: "kal16", "awb", "rms", "slt"; espeak-ng: "en-us", "en-gb-x-rp", ... */
    const char *variant;   /* espeak-ng only: "m1".."m7", "f1".."f4", ... or "" (the voice's own) */
    int rate;              /* flite: percent of the voice's speed (50..200); espeak-ng: words per minute (80..450) */
    int pitch;             /* flite: percent of the voice's mean f0 (50..200); espeak-ng: 0..100 (50 = the voice's) */
} mt_speaker;

/* A phone and the time it covers, in seconds from the start of the audio. */
typedef struct mt_phone_segment {
    int phone;             /* index into the phone set (speech_phones.h) */
    double start, end;
} mt_phone_segment;

/* A phone as the engine named it, in the order spoken. */
typedef struct mt_engine_phone {
    char name[12];
    bool known;            /* false: not in the engine's table; the nearest phone was guessed */
} mt_engine_phone;

typedef struct mt_synth_output {
    float *samples;        /* mono, MT_SPEECH_SAMPLE_RATE Hz, in [-1, 1] */
    int64_t n_samples;
    /* The phones covering [0, n_samples / rate): contiguous, each of positive
       length, runs of [SIL] merged. */
    mt_phone_segment *segments;
    int n_segments;
    mt_engine_phone *engine_phones;
    int n_engine_phones;
} mt_synth_output;

/* Speaks text (UTF-8) with speaker's voice into *out (zeroed first; free it
   with mt_synth_output_free). MT_ERR_ARGUMENT for a voice the engine does not
   have, MT_ERR_STATE when the engine fails. */
mt_status mt_synth_speak(const mt_speaker *speaker, const char *text, mt_synth_output *out);
void mt_synth_output_free(mt_synth_output *out);

/* Whether the engine has the voice (and variant) installed. */
bool mt_synth_has_voice(const mt_speaker *speaker);
/* "flite 2.2", "espeak-ng 1.51" (static strings). */
const char *mt_synth_engine_name(mt_tts_engine engine);
const char *mt_synth_engine_version(mt_tts_engine engine);
/* Writes "flite/awb/r100/p100" or "espeak-ng/en-us+m3/r175/p50" to buf. */
void mt_speaker_describe(const mt_speaker *speaker, char *buf, size_t size);

/* Releases the engines' voices and state (they start again when needed). */
void mt_synth_shutdown(void);

#endif
