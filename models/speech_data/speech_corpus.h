/*
 * speech_corpus.h - an offline speech corpus in the course's layout
 * (`mytorch data speech`, docs/speech-data.md): English sentences from
 * packaged text (fortunes-min, wordnet-base), spoken by synthetic speakers
 * (speech_synth.h), turned into MFCC features (mfcc.h) with frame-level
 * phone labels (speech_phones.h).
 *
 *   DIR/manifest.json                      phone set, sizes, speakers, settings
 *   DIR/<split>/mfcc/<utt>.npy             float32 [T, F]
 *   DIR/<split>/labels/<utt>.npy           int64 [T]: phone index of each frame
 *   DIR/<split>/transcript/<utt>.npy       <U: "[SOS]", phones..., "[EOS]"
 *   DIR/<split>/text/<utt>.txt             the sentence: upper case, words and apostrophes
 *
 * splits: train-clean-100, dev-clean (speakers unseen in training, voices
 * seen), test-clean (voices and accents unseen in training). The files are a
 * function of the options but for jobs and progress: the same seed gives the
 * same bytes, with any number of jobs.
 */
#ifndef MT_MODELS_SPEECH_CORPUS_H
#define MT_MODELS_SPEECH_CORPUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mytorch/mytorch.h"
#include "models/speech_data/mfcc.h"
#include "models/speech_data/speech_synth.h"

typedef enum mt_speech_size { MT_SPEECH_TINY = 0, MT_SPEECH_DEFAULT = 1, MT_SPEECH_LARGE = 2 } mt_speech_size;
enum { MT_SPEECH_N_SPLITS = 3 };

/* "train-clean-100", "dev-clean", "test-clean" for i = 0, 1, 2. */
const char *mt_speech_split_name(int i);
/* "tiny", "default", "large"; and back (false for another word). */
const char *mt_speech_size_name(mt_speech_size size);
bool mt_speech_size_from_string(const char *s, mt_speech_size *out);

typedef struct mt_speech_corpus_opts {
    const char *out_dir;
    mt_speech_size size;
    uint64_t seed;
    mt_mfcc_opts mfcc;          /* mt_mfcc_default() with n_ceps 15 unless changed */
    int jobs;                   /* worker processes (<= 1: in this process) */
    FILE *progress;             /* a progress line, or NULL */
    /* Where the text comes from (NULL: the Debian paths
       /usr/share/games/fortunes and /usr/share/wordnet); a missing folder
       is skipped, and no sentences at all is an error. */
    const char *fortunes_dir, *wordnet_dir;
} mt_speech_corpus_opts;

/* The utterance and speaker counts of a size. */
typedef struct mt_speech_size_spec {
    int utterances[MT_SPEECH_N_SPLITS];
    int speakers[MT_SPEECH_N_SPLITS];
} mt_speech_size_spec;
mt_speech_size_spec mt_speech_size_spec_of(mt_speech_size size);

/* ---------------------------------------------------------------- sentences */
typedef struct mt_sentence {
    char *speak;                /* what the engines are given: "A gift of a flower will soon be made to you." */
    char *text;                 /* the transcript: "A GIFT OF A FLOWER WILL SOON BE MADE TO YOU" */
} mt_sentence;

typedef struct mt_sentences {
    mt_sentence *items;
    int n;
    int from_fortunes, from_wordnet;
} mt_sentences;

/* Every usable sentence of the sources, in file order, without duplicates:
   3 to 20 words of letters (apostrophes inside words), no digits,
   abbreviations or other symbols. */
mt_status mt_speech_sentences_load(const char *fortunes_dir, const char *wordnet_dir, mt_sentences *out);
void mt_speech_sentences_free(mt_sentences *s);
/* Cleans one line of text into a sentence; false when it is not usable. */
bool mt_speech_sentence_normalize(const char *line, mt_sentence *out);

/* ---------------------------------------------------------------- the plan */
typedef struct mt_speech_speaker {
    int id;                     /* unique in the corpus: the utterances' "<id>-..." */
    int split;
    mt_speaker voice;
} mt_speech_speaker;

typedef struct mt_speech_utt {
    char id[24];                /* "0003-000017": speaker id - index in the split */
    int split;
    int speaker;                /* index into plan->speakers */
    int sentence;               /* index into plan->sentences */
} mt_speech_utt;

typedef struct mt_speech_plan {
    mt_sentences sentences;
    mt_speech_speaker *speakers;
    int n_speakers;
    mt_speech_utt *utts;
    int n_utts;
    int split_sentences[MT_SPEECH_N_SPLITS];   /* sentences in each split's pool */
} mt_speech_plan;

/* Draws the speakers and assigns sentences, deterministically from the seed. */
mt_status mt_speech_plan_make(const mt_speech_corpus_opts *opts, mt_speech_plan *out);
void mt_speech_plan_free(mt_speech_plan *plan);

/* ---------------------------------------------------------------- generation */
typedef struct mt_speech_corpus_report {
    int utterances[MT_SPEECH_N_SPLITS];
    int speakers[MT_SPEECH_N_SPLITS];
    int64_t frames[MT_SPEECH_N_SPLITS];
    double audio_seconds[MT_SPEECH_N_SPLITS];
    int sentences;              /* in the source pool */
    int64_t engine_phones;      /* phones the engines emitted */
    int64_t unmapped_phones;    /* ... of which the espeak-ng table lacked (guessed) */
    int n_unmapped_names;
    char unmapped_names[32][12];/* the first of them */
    int feature_dim;
    double seconds;             /* wall time */
} mt_speech_corpus_report;

mt_status mt_speech_corpus_generate(const mt_speech_corpus_opts *opts, mt_speech_corpus_report *report);

#endif
