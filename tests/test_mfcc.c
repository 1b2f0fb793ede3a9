/*
 * test_mfcc.c - models/speech_data/mfcc.c against two references:
 *   - NumPy: a noisy chirp and its features for three settings, written by
 *     tests/fixtures/make_mfcc_fixture.py (float64 NumPy, the pipeline of
 *     models/speech_data/mfcc.h), must agree within 1e-4;
 *   - a naive one written here in plain C from the formulas of mfcc.h (a
 *     direct O(N^2) DFT in double, no FFT library), on a pure tone, whose
 *     spectrum is known, and on an utterance from the speech synthesizer.
 */
#include "harness.h"

#ifdef MYTORCH_HAVE_SPEECH_DATA

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/speech_data/mfcc.h"
#include "models/speech_data/speech_synth.h"

/* tests/fixtures/name: MT_FIXTURES_DIR, else next to this source file. */
static const char *fixture(const char *name)
{
    static char bufs[4][1024];
    static int k;
    char *b = bufs[k++ % 4];
    const char *dir = getenv("MT_FIXTURES_DIR");
    if (dir) snprintf(b, 1024, "%s/%s", dir, name);
    else {
        const char *file = __FILE__, *slash = strrchr(file, '/');
        int len = slash ? (int)(slash - file) : 1;
        snprintf(b, 1024, "%.*s/fixtures/%s", len, slash ? file : ".", name);
    }
    return b;
}

static void check_against(const mt_mfcc_opts *o, const char *expected_name)
{
    mt_tensor *x = mt_npy_load(fixture("mfcc_chirp_signal.npy"));
    mt_tensor *want = mt_npy_load(fixture(expected_name));
    cr_assert(x && want, "%s", mt_last_error());
    cr_assert_eq(x->dtype, MT_F32);
    int64_t n = mt_numel(x), T = mt_mfcc_frames(n, o);
    int dim = mt_mfcc_dim(o);
    cr_assert_eq(want->ndim, 2);
    cr_assert_eq(mt_size(want, 0), T, "frames: %lld vs the fixture's %lld", (long long)T, (long long)mt_size(want, 0));
    cr_assert_eq(mt_size(want, 1), dim);

    mt_mfcc *m = mt_mfcc_new(o);
    cr_assert_not_null(m, "%s", mt_last_error());
    float *got = malloc((size_t)(T * dim) * sizeof *got);
    cr_assert(mt_mfcc_compute(m, mt_data_ptr(x), n, got) == MT_OK, "%s", mt_last_error());
    const float *ref = mt_data_ptr(want);
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < T * dim; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d > worst) { worst = d; at = i; }
    }
    cr_expect_leq(worst, 1e-4, "%s: frame %lld coefficient %lld: %.7f vs NumPy %.7f", expected_name,
                  (long long)(at / dim), (long long)(at % dim), got[at], ref[at]);
    free(got);
    mt_mfcc_free(m);
}

Test(mfcc, defaults_match_numpy, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_mfcc_opts o = mt_mfcc_default();
    cr_assert_eq(mt_mfcc_dim(&o), 15);
    check_against(&o, "mfcc_chirp_expected.npy");
}

Test(mfcc, deltas_and_cmvn_match_numpy, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_mfcc_opts o = mt_mfcc_default();
    o.deltas = o.delta_deltas = o.cmvn = true;
    cr_assert_eq(mt_mfcc_dim(&o), 45);
    check_against(&o, "mfcc_chirp_expected_full.npy");
}

Test(mfcc, other_settings_match_numpy, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_mfcc_opts o = mt_mfcc_default();
    o.n_mels = 26;
    o.n_ceps = 13;
    o.fmin = 300;
    o.fmax = 7600;
    o.preemphasis = 0;
    o.deltas = true;
    check_against(&o, "mfcc_chirp_expected_13.npy");
}

/* ---------------------------------------------------------------- the naive reference */

static const double PI = 3.14159265358979323846;
static double mel_of(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double hz_of(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

/* Frame t's power spectrum |X[k]|^2, k = 0..n_fft/2, by the DFT's definition
   X[k] = sum_i w[i] y[c - win/2 + i] e^{-2 pi i k i / n_fft}, in double. */
static void naive_power(const mt_mfcc_opts *o, const double *y, int64_t n, int64_t t, double *power)
{
    int64_t first = t * o->hop_length + o->hop_length / 2 - o->win_length / 2;
    /* e^{-2 pi i j / n_fft} for j = k i mod n_fft (the exponent is periodic) */
    double *c = malloc((size_t)o->n_fft * sizeof *c), *s = malloc((size_t)o->n_fft * sizeof *s);
    double *v = malloc((size_t)o->win_length * sizeof *v);
    cr_assert(c && s && v);
    for (int j = 0; j < o->n_fft; j++) {
        c[j] = cos(2 * PI * j / o->n_fft);
        s[j] = sin(2 * PI * j / o->n_fft);
    }
    for (int i = 0; i < o->win_length; i++) {
        int64_t at = first + i;
        v[i] = at >= 0 && at < n ? y[at] * (0.54 - 0.46 * cos(2 * PI * i / (o->win_length - 1))) : 0.0;
    }
    for (int k = 0; k <= o->n_fft / 2; k++) {
        double re = 0, im = 0;
        for (int i = 0; i < o->win_length; i++) {
            int j = (int)(((int64_t)k * i) % o->n_fft);
            re += v[i] * c[j];
            im -= v[i] * s[j];
        }
        power[k] = re * re + im * im;
    }
    free(c);
    free(s);
    free(v);
}

/* Filter m's weight of a bin at frequency f: the triangle over corners
   hz[m], hz[m+1], hz[m+2]. */
static double triangle(const double *hz, int m, double f)
{
    return fmax(0.0, fmin((f - hz[m]) / (hz[m + 1] - hz[m]), (hz[m + 2] - f) / (hz[m + 2] - hz[m + 1])));
}

/* The whole pipeline of mfcc.h (no deltas, no CMVN): out [T, n_ceps]; also
   the log mel energies, logmel [T, n_mels], when not NULL. */
static void naive_mfcc(const mt_mfcc_opts *o, const float *x, int64_t n, double *out, double *logmel_out)
{
    double *y = malloc((size_t)n * sizeof *y), *hz = malloc((size_t)(o->n_mels + 2) * sizeof *hz);
    double *power = malloc((size_t)(o->n_fft / 2 + 1) * sizeof *power), *logmel = malloc((size_t)o->n_mels * sizeof *logmel);
    cr_assert(y && hz && power && logmel);
    for (int64_t i = 0; i < n; i++) y[i] = i == 0 ? x[0] : (double)x[i] - o->preemphasis * (double)x[i - 1];
    for (int i = 0; i < o->n_mels + 2; i++)
        hz[i] = hz_of(mel_of(o->fmin) + (mel_of(o->fmax) - mel_of(o->fmin)) * i / (o->n_mels + 1));
    int64_t T = n / o->hop_length;
    for (int64_t t = 0; t < T; t++) {
        naive_power(o, y, n, t, power);
        for (int m = 0; m < o->n_mels; m++) {
            double e = 0;
            for (int k = 0; k <= o->n_fft / 2; k++) e += triangle(hz, m, (double)k * o->sample_rate / o->n_fft) * power[k];
            logmel[m] = log(fmax(e, 1e-10));
            if (logmel_out) logmel_out[t * o->n_mels + m] = logmel[m];
        }
        /* orthonormal DCT-II */
        for (int j = 0; j < o->n_ceps; j++) {
            double c = 0;
            for (int m = 0; m < o->n_mels; m++) c += logmel[m] * cos(PI * j * (m + 0.5) / o->n_mels);
            out[t * o->n_ceps + j] = c * (j == 0 ? sqrt(1.0 / o->n_mels) : sqrt(2.0 / o->n_mels));
        }
    }
    free(y);
    free(hz);
    free(power);
    free(logmel);
}

/* mt_mfcc of x; returns T and fills *got (malloc'd, [T, n_ceps]). */
static int64_t run_mfcc(const mt_mfcc_opts *o, const float *x, int64_t n, float **got)
{
    int64_t T = mt_mfcc_frames(n, o);
    mt_mfcc *m = mt_mfcc_new(o);
    cr_assert_not_null(m, "%s", mt_last_error());
    *got = malloc((size_t)(T * o->n_ceps) * sizeof **got);
    cr_assert_not_null(*got);
    cr_assert_eq(mt_mfcc_compute(m, x, n, *got), MT_OK, "%s", mt_last_error());
    mt_mfcc_free(m);
    return T;
}

/* mt_mfcc against the naive reference: |got - want| <= tol * max(|want|, 1)
   for every coefficient of every frame. */
static void expect_naive_match(const mt_mfcc_opts *o, const float *x, int64_t n, double tol, const char *what)
{
    float *got;
    int64_t T = run_mfcc(o, x, n, &got);
    cr_assert_gt(T, 0);
    double *want = malloc((size_t)(T * o->n_ceps) * sizeof *want);
    cr_assert_not_null(want);
    naive_mfcc(o, x, n, want, NULL);
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < T * o->n_ceps; i++) {
        double err = fabs(got[i] - want[i]) / fmax(fabs(want[i]), 1.0);
        if (err > worst) { worst = err; at = i; }
    }
    cr_log_info("mfcc vs naive DFT, %s: %lld frames, largest relative error %.2g", what, (long long)T, worst);
    cr_expect_leq(worst, tol, "%s: frame %lld coefficient %lld: %.7f vs the naive reference %.7f", what,
                  (long long)(at / o->n_ceps), (long long)(at % o->n_ceps), got[at], want[at]);
    free(got);
    free(want);
}

/* A 1 kHz tone = bin 32 of the 512-point FFT at 16 kHz (31.25 Hz per bin). */
Test(mfcc, pure_tone_matches_naive_dft_and_its_known_spectrum, .init = mt_test_setup, .fini = mt_test_teardown)
{
    enum { N = 8000, BIN = 32 };
    const double amp = 0.5, freq = BIN * 16000.0 / 512;
    float *x = malloc(N * sizeof *x);
    cr_assert_not_null(x);
    for (int i = 0; i < N; i++) x[i] = (float)(amp * sin(2 * PI * freq * i / 16000.0));

    /* the known spectrum (no pre-emphasis, an interior frame): the peak is
       bin 32, with |X|^2 = (amp/2 * sum w)^2 for a windowed sinusoid on a
       bin centre (the negative frequency leaks into it only through the
       window's sidelobes, 64 bins away) */
    mt_mfcc_opts o = mt_mfcc_default();
    o.preemphasis = 0;
    double *y = malloc(N * sizeof *y), power[257];
    cr_assert_not_null(y);
    for (int i = 0; i < N; i++) y[i] = x[i];
    naive_power(&o, y, N, 20, power);
    int peak = 0;
    for (int k = 1; k <= 256; k++) if (power[k] > power[peak]) peak = k;
    cr_expect_eq(peak, BIN);
    double wsum = 0;
    for (int i = 0; i < 400; i++) wsum += 0.54 - 0.46 * cos(2 * PI * i / 399);
    double expected = pow(amp / 2 * wsum, 2);
    cr_expect(fabs(power[BIN] - expected) <= 1e-3 * expected, "peak power %.6g, expected %.6g", power[BIN], expected);
    free(y);

    /* the mel band with the most energy is the one whose triangle weighs
       1 kHz most: seen in mt_mfcc's own output, through the inverse of the
       orthonormal DCT (all 40 coefficients kept) */
    o.n_ceps = o.n_mels;
    float *got;
    int64_t T = run_mfcc(&o, x, N, &got);
    double hz[42];
    for (int i = 0; i < 42; i++) hz[i] = hz_of(mel_of(0) + (mel_of(8000) - mel_of(0)) * i / 41);
    int band = 0;
    for (int m = 1; m < 40; m++) if (triangle(hz, m, freq) > triangle(hz, band, freq)) band = m;
    cr_assert(hz[band] < freq && freq < hz[band + 2]);
    for (int64_t t = 3; t < T - 3; t++) {   /* frames whose window lies inside the signal */
        double logmel[40];
        int top = 0;
        for (int m = 0; m < 40; m++) {
            /* DCT-III: logmel[m] = sum_j s_j c[j] cos(pi j (m + 1/2) / 40) */
            double v = 0;
            for (int j = 0; j < 40; j++)
                v += got[t * 40 + j] * (j == 0 ? sqrt(1.0 / 40) : sqrt(2.0 / 40)) * cos(PI * j * (m + 0.5) / 40);
            logmel[m] = v;
            if (v > logmel[top]) top = m;
        }
        cr_expect_eq(top, band, "frame %lld: the most energy in mel band %d (%.0f..%.0f Hz), expected band %d", (long long)t,
                     top, hz[top], hz[top + 2], band);
    }
    free(got);
    expect_naive_match(&o, x, N, 1e-4, "1 kHz tone, 40 coefficients, no pre-emphasis");

    /* the defaults (pre-emphasis, 15 coefficients) */
    o = mt_mfcc_default();
    expect_naive_match(&o, x, N, 1e-4, "1 kHz tone, defaults");
    free(x);
}

Test(mfcc, synthesized_utterance_matches_naive_dft, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_synth_output syn;
    const mt_speaker kal = { MT_TTS_FLITE, "kal16", "", 100, 100 };
    cr_assert_eq(mt_synth_speak(&kal, "A tall, dark stranger will have more fun than you.", &syn), MT_OK, "%s",
                 mt_last_error());
    cr_assert_gt(syn.n_samples, 16000);
    mt_mfcc_opts o = mt_mfcc_default();
    expect_naive_match(&o, syn.samples, syn.n_samples, 1e-4, "flite kal16 utterance, defaults");
    o.deltas = false;
    o.n_mels = 26;
    o.n_ceps = 13;
    o.fmin = 300;
    o.fmax = 7600;
    expect_naive_match(&o, syn.samples, syn.n_samples, 1e-4, "flite kal16 utterance, 26 mels 300..7600 Hz, 13 coefficients");
    mt_synth_output_free(&syn);
    mt_synth_shutdown();
}

Test(mfcc, frames_and_bad_options, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_mfcc_opts o = mt_mfcc_default();
    cr_expect_eq(mt_mfcc_frames(16000, &o), 100);
    cr_expect_eq(mt_mfcc_frames(159, &o), 0);
    cr_expect_eq(mt_mfcc_frames(161, &o), 1);
    /* a signal shorter than a hop has no frames: nothing is written */
    mt_mfcc *m = mt_mfcc_new(&o);
    cr_assert_not_null(m);
    float x[100] = { 0 };
    cr_expect_eq(mt_mfcc_compute(m, x, 100, NULL), MT_OK);
    /* silence: the log floor, finite everywhere */
    float *z = calloc(1600, sizeof *z), out[10 * 15];
    cr_assert_eq(mt_mfcc_compute(m, z, 1600, out), MT_OK);
    for (int i = 0; i < 150; i++) cr_expect(isfinite(out[i]));
    cr_expect_float_eq(out[0], (float)(log(1e-10) * sqrt(40.0)), 1e-3);
    free(z);
    mt_mfcc_free(m);

    mt_mfcc_opts bad = o;
    bad.n_ceps = 41;
    cr_expect_null(mt_mfcc_new(&bad));
    cr_expect(strstr(mt_last_error(), "mfcc:"), "%s", mt_last_error());
    bad = o;
    bad.n_fft = 256;
    cr_expect_null(mt_mfcc_new(&bad));
    bad = o;
    bad.fmax = 9000;
    cr_expect_null(mt_mfcc_new(&bad));
    bad = o;
    bad.delta_deltas = true;
    cr_expect_null(mt_mfcc_new(&bad));
}

#else
typedef int mt_test_mfcc_not_built;   /* the speech data code was not configured */
#endif
