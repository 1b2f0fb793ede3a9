/*
 * cli_data.c - `mytorch data <dataset>`: generates an offline dataset in the
 * layout of the course's real one. Datasets: speech (models/speech_data/speech_corpus.c,
 * docs/speech-data.md).
 *
 * The speech generator needs flite, espeak-ng, FFTW and libsamplerate; a
 * build without them (CMake says so when it configures) keeps the command,
 * which then says what to install.
 */
#include "app/cli_common.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef MYTORCH_HAVE_SPEECH_DATA
#include "models/speech_data/speech_corpus.h"
#include "models/speech_data/speech_phones.h"
#endif

int mt_cli_data(int argc, char **argv);

static const char description[] =
    "Generates an offline dataset shaped like the course's real one.\n\n"
    "datasets:\n"
    "  speech    English sentences (fortunes-min, wordnet-base) spoken by synthetic speakers\n"
    "            (flite and espeak-ng voices, accents, variants, rates and pitches), as\n"
    "            MFCC features with frame-level phone labels ([SIL] + 39 ARPAbet phones):\n"
    "              DIR/manifest.json\n"
    "              DIR/<split>/mfcc/<utt>.npy        float32 [T, F], T frames of 10 ms\n"
    "              DIR/<split>/labels/<utt>.npy      int64 [T], phone index of each frame\n"
    "              DIR/<split>/transcript/<utt>.npy  phone strings: [SOS] ... [EOS]\n"
    "              DIR/<split>/text/<utt>.txt        the sentence, upper case\n"
    "            splits: train-clean-100, dev-clean (new speakers), test-clean (voices and\n"
    "            accents unseen in training). Sizes (train/dev/test utterances):\n"
    "            tiny 24/6/6, default 2000/200/200, large 24000/2000/2000.\n"
    "            The same seed gives the same files, with any number of jobs.\n"
    "            See docs/speech-data.md.\n";

int mt_cli_data(int argc, char **argv)
{
    const char *out = NULL, *size = "default";
    uint64_t seed = 0;
    int n_ceps = 15, n_mels = 40;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = ncpu > 0 ? (ncpu > 64 ? 64 : (int)ncpu) : 1;
    bool deltas = false, delta_deltas = false, cmvn = false, quiet = false;
    const mt_cli_option options[] = {
        { "out",          MT_CLI_STRING, &out,          1, 0,   "DIR", "the folder to write (created if missing; required)" },
        { "size",         MT_CLI_STRING, &size,         1, 0,   "SIZE", "tiny, default or large (default: default)" },
        { "seed",         MT_CLI_U64,    &seed,         1, 0,   "S",   "seed of the sentences and speakers (default 0)" },
        { "mfcc",         MT_CLI_INT,    &n_ceps,       1, 128, "N",   "cepstral coefficients per frame, e.g. 13, 15, 27, 28 (default 15)" },
        { "mels",         MT_CLI_INT,    &n_mels,       1, 128, "M",   "mel filters, at least N (default 40)" },
        { "deltas",       MT_CLI_FLAG,   &deltas,       1, 0,   NULL,  "append the deltas (F = 2N)" },
        { "delta-deltas", MT_CLI_FLAG,   &delta_deltas, 1, 0,   NULL,  "append the deltas and delta-deltas (F = 3N)" },
        { "cmvn",         MT_CLI_FLAG,   &cmvn,         1, 0,   NULL,  "normalise each utterance's features to mean 0, variance 1" },
        { "jobs",         MT_CLI_INT,    &jobs,         1, 256, "J",   "worker processes (default: the number of cores)" },
        { "quiet",        MT_CLI_FLAG,   &quiet,        1, 0,   NULL,  "no progress line" },
        { NULL, 0, NULL, 0, 0, NULL, NULL },
    };
    const mt_cli_command cmd = { "mytorch data", "<dataset> --out DIR [options]", description, options, 1, 1, "dataset (speech)" };
    const char *pos[1];
    int n_pos = 0;
    int rc = mt_cli_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc == MT_CLI_HELP) return MT_CLI_OK;
    if (rc != MT_CLI_OK) return rc;
    if (strcmp(pos[0], "speech") != 0)
        return mt_cli_usage_error(&cmd, "unknown dataset '%s' (datasets: speech)", pos[0]);
    if (!out) return mt_cli_usage_error(&cmd, "--out DIR is required");
    if (n_ceps > n_mels) return mt_cli_usage_error(&cmd, "--mfcc %d needs at least as many mel filters (--mels %d)", n_ceps, n_mels);

#ifdef MYTORCH_HAVE_SPEECH_DATA
    mt_speech_corpus_opts o = { .out_dir = out, .seed = seed, .jobs = jobs, .progress = quiet ? NULL : stderr };
    if (!mt_speech_size_from_string(size, &o.size))
        return mt_cli_usage_error(&cmd, "--size expects tiny, default or large, got '%s'", size);
    o.mfcc = mt_mfcc_default();
    o.mfcc.n_ceps = n_ceps;
    o.mfcc.n_mels = n_mels;
    o.mfcc.deltas = deltas || delta_deltas;
    o.mfcc.delta_deltas = delta_deltas;
    o.mfcc.cmvn = cmvn;
    mt_speech_corpus_report r;
    if (mt_speech_corpus_generate(&o, &r) != MT_OK) {
        fprintf(stderr, "mytorch data speech: %s\n", mt_last_error());
        return MT_CLI_FAIL;
    }
    printf("speech corpus in %s (size %s, seed %llu): %d sentences in the pool, features %d per frame\n", out,
           mt_speech_size_name(o.size), (unsigned long long)seed, r.sentences, r.feature_dim);
    for (int s = 0; s < MT_SPEECH_N_SPLITS; s++)
        printf("  %-16s %6d utterances, %4d speakers, %9lld frames, %7.2f hours\n", mt_speech_split_name(s),
               r.utterances[s], r.speakers[s], (long long)r.frames[s], r.audio_seconds[s] / 3600.0);
    printf("  engine phones: %lld, not in the espeak-ng table (mapped to the nearest phone): %lld",
           (long long)r.engine_phones, (long long)r.unmapped_phones);
    for (int i = 0; i < r.n_unmapped_names; i++) printf("%s%s", i ? " " : " (", r.unmapped_names[i]);
    printf("%s\n  %.2f s with %d job%s\n", r.n_unmapped_names ? ")" : "", r.seconds, jobs, jobs == 1 ? "" : "s");
    return MT_CLI_OK;
#else
    (void)seed; (void)jobs; (void)quiet; (void)cmvn; (void)size;
    fprintf(stderr, "mytorch data speech: this mytorch was built without the speech data generator: it needs flite, "
                    "espeak-ng, FFTW and libsamplerate (apt-get install flite1-dev libespeak-ng-dev libfftw3-dev "
                    "libsamplerate0-dev fortunes-min wordnet-base), then configure again with cmake\n");
    return MT_CLI_FAIL;
#endif
}
