/*
 * mfcc.c - MFCC features with FFTW (mfcc.h). The FFT runs in single
 * precision; the filterbank, logarithm, DCT, deltas and normalisation
 * accumulate in double.
 */
#include "models/speech_data/mfcc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

struct mt_mfcc {
    mt_mfcc_opts o;
    int n_bins;             /* n_fft / 2 + 1 */
    double *window;         /* [win_length] */
    double *fbank;          /* [n_mels][n_bins] */
    int *bin_lo, *bin_hi;   /* each filter's nonzero bins [lo, hi) */
    double *dct;            /* [n_ceps][n_mels] */
    float *frame;           /* [n_fft], FFTW-aligned */
    fftwf_complex *spec;    /* [n_bins] */
    fftwf_plan plan;
    double *emphasized;     /* grown per call */
    int64_t emphasized_cap;
};

mt_mfcc_opts mt_mfcc_default(void)
{
    return (mt_mfcc_opts){
        .sample_rate = 16000, .win_length = 400, .hop_length = 160, .n_fft = 512,
        .n_mels = 40, .fmin = 0, .fmax = 8000, .n_ceps = 15, .preemphasis = 0.97,
    };
}

int mt_mfcc_dim(const mt_mfcc_opts *o)
{
    return o->n_ceps * (o->deltas ? (o->delta_deltas ? 3 : 2) : 1);
}

int64_t mt_mfcc_frames(int64_t n_samples, const mt_mfcc_opts *o)
{
    return n_samples > 0 && o->hop_length > 0 ? n_samples / o->hop_length : 0;
}

static double hz_to_mel(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double mel_to_hz(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

void mt_mfcc_free(mt_mfcc *m)
{
    if (!m) return;
    if (m->plan) fftwf_destroy_plan(m->plan);
    fftwf_free(m->frame);
    fftwf_free(m->spec);
    free(m->window);
    free(m->fbank);
    free(m->bin_lo);
    free(m->bin_hi);
    free(m->dct);
    free(m->emphasized);
    free(m);
}

mt_mfcc *mt_mfcc_new(const mt_mfcc_opts *opts)
{
    if (!opts) { mt_set_error(MT_ERR_ARGUMENT, "mfcc: NULL options"); return NULL; }
    const mt_mfcc_opts o = *opts;
    if (o.sample_rate <= 0 || o.win_length <= 1 || o.hop_length <= 0 || o.n_fft < o.win_length || o.n_mels < 1 ||
        o.n_ceps < 1 || o.n_ceps > o.n_mels || !(o.fmin >= 0) || !(o.fmax > o.fmin) || o.fmax > o.sample_rate / 2.0 ||
        !(o.preemphasis >= 0 && o.preemphasis < 1) || (o.delta_deltas && !o.deltas)) {
        mt_set_error(MT_ERR_ARGUMENT,
                     "mfcc: bad options (rate %d, window %d, hop %d, fft %d, mels %d, ceps %d, %g..%g Hz, "
                     "pre-emphasis %g, deltas %d/%d): need window >= 2, fft >= window, 1 <= ceps <= mels, "
                     "0 <= fmin < fmax <= rate/2, 0 <= pre-emphasis < 1, delta-deltas only with deltas",
                     o.sample_rate, o.win_length, o.hop_length, o.n_fft, o.n_mels, o.n_ceps, o.fmin, o.fmax,
                     o.preemphasis, o.deltas, o.delta_deltas);
        return NULL;
    }
    mt_mfcc *m = calloc(1, sizeof *m);
    if (!m) { mt_set_error(MT_ERR_MEMORY, "mfcc: out of memory"); return NULL; }
    m->o = o;
    m->n_bins = o.n_fft / 2 + 1;
    m->window = malloc((size_t)o.win_length * sizeof *m->window);
    m->fbank = calloc((size_t)o.n_mels * m->n_bins, sizeof *m->fbank);
    m->bin_lo = malloc((size_t)o.n_mels * sizeof *m->bin_lo);
    m->bin_hi = malloc((size_t)o.n_mels * sizeof *m->bin_hi);
    m->dct = malloc((size_t)o.n_ceps * o.n_mels * sizeof *m->dct);
    m->frame = fftwf_malloc((size_t)o.n_fft * sizeof *m->frame);
    m->spec = fftwf_malloc((size_t)m->n_bins * sizeof *m->spec);
    if (!m->window || !m->fbank || !m->bin_lo || !m->bin_hi || !m->dct || !m->frame || !m->spec) {
        mt_mfcc_free(m);
        mt_set_error(MT_ERR_MEMORY, "mfcc: out of memory");
        return NULL;
    }
    /* FFTW_ESTIMATE: the plan (and so every bit of the output) does not depend on timings */
    m->plan = fftwf_plan_dft_r2c_1d(o.n_fft, m->frame, m->spec, FFTW_ESTIMATE);
    if (!m->plan) {
        mt_mfcc_free(m);
        mt_set_error(MT_ERR_STATE, "mfcc: FFTW could not plan a %d-point transform", o.n_fft);
        return NULL;
    }
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < o.win_length; i++) m->window[i] = 0.54 - 0.46 * cos(2 * pi * i / (o.win_length - 1));

    /* corner frequencies, equally spaced on the mel scale */
    double *hz = malloc((size_t)(o.n_mels + 2) * sizeof *hz);
    if (!hz) {
        mt_mfcc_free(m);
        mt_set_error(MT_ERR_MEMORY, "mfcc: out of memory");
        return NULL;
    }
    double mlo = hz_to_mel(o.fmin), mhi = hz_to_mel(o.fmax);
    for (int i = 0; i < o.n_mels + 2; i++) hz[i] = mel_to_hz(mlo + (mhi - mlo) * i / (o.n_mels + 1));
    for (int f = 0; f < o.n_mels; f++) {
        double *row = m->fbank + (size_t)f * m->n_bins;
        m->bin_lo[f] = m->n_bins;
        m->bin_hi[f] = 0;
        for (int k = 0; k < m->n_bins; k++) {
            double fk = (double)k * o.sample_rate / o.n_fft;
            double up = (fk - hz[f]) / (hz[f + 1] - hz[f]), down = (hz[f + 2] - fk) / (hz[f + 2] - hz[f + 1]);
            double w = fmax(0.0, fmin(up, down));
            row[k] = w;
            if (w > 0) {
                if (k < m->bin_lo[f]) m->bin_lo[f] = k;
                m->bin_hi[f] = k + 1;
            }
        }
        if (m->bin_hi[f] == 0) m->bin_lo[f] = 0;   /* a filter narrower than a bin: empty */
    }
    free(hz);
    for (int j = 0; j < o.n_ceps; j++) {
        double s = j == 0 ? sqrt(1.0 / o.n_mels) : sqrt(2.0 / o.n_mels);
        for (int f = 0; f < o.n_mels; f++) m->dct[(size_t)j * o.n_mels + f] = s * cos(pi * j * (f + 0.5) / o.n_mels);
    }
    return m;
}

/* d[t] = sum_{k=1..2} k (c[t+k] - c[t-k]) / 10 over n columns of a T x stride
   matrix, from column src to column dst, the edge frames repeated. */
static void add_deltas(double *x, int64_t T, int stride, int src, int dst, int n)
{
    for (int64_t t = 0; t < T; t++)
        for (int j = 0; j < n; j++) {
            double d = 0;
            for (int k = 1; k <= 2; k++) {
                int64_t a = t + k < T ? t + k : T - 1, b = t - k >= 0 ? t - k : 0;
                d += k * (x[a * stride + src + j] - x[b * stride + src + j]);
            }
            x[t * stride + dst + j] = d / 10.0;
        }
}

mt_status mt_mfcc_compute(mt_mfcc *m, const float *x, int64_t n, float *out)
{
    if (!m || (!x && n > 0) || n < 0) return mt_set_error(MT_ERR_ARGUMENT, "mfcc: NULL extractor or samples");
    const mt_mfcc_opts *o = &m->o;
    int64_t T = mt_mfcc_frames(n, o);
    if (T == 0) return MT_OK;
    if (!out) return mt_set_error(MT_ERR_ARGUMENT, "mfcc: NULL output");
    int dim = mt_mfcc_dim(o);
    if (n > m->emphasized_cap) {
        double *e = realloc(m->emphasized, (size_t)n * sizeof *e);
        if (!e) return mt_set_error(MT_ERR_MEMORY, "mfcc: out of memory");
        m->emphasized = e;
        m->emphasized_cap = n;
    }
    double *y = m->emphasized;
    y[0] = x[0];
    for (int64_t i = 1; i < n; i++) y[i] = (double)x[i] - o->preemphasis * (double)x[i - 1];

    double *feat = malloc((size_t)T * dim * sizeof *feat);
    double *logmel = malloc((size_t)o->n_mels * sizeof *logmel);
    double *power = malloc((size_t)m->n_bins * sizeof *power);
    if (!feat || !logmel || !power) {
        free(feat); free(logmel); free(power);
        return mt_set_error(MT_ERR_MEMORY, "mfcc: out of memory");
    }
    for (int64_t t = 0; t < T; t++) {
        int64_t first = t * o->hop_length + o->hop_length / 2 - o->win_length / 2;
        for (int i = 0; i < o->win_length; i++) {
            int64_t s = first + i;
            m->frame[i] = (s >= 0 && s < n) ? (float)(y[s] * m->window[i]) : 0.0f;
        }
        for (int i = o->win_length; i < o->n_fft; i++) m->frame[i] = 0.0f;
        fftwf_execute(m->plan);
        for (int k = 0; k < m->n_bins; k++) {
            double re = m->spec[k][0], im = m->spec[k][1];
            power[k] = re * re + im * im;
        }
        for (int f = 0; f < o->n_mels; f++) {
            const double *row = m->fbank + (size_t)f * m->n_bins;
            double e = 0;
            for (int k = m->bin_lo[f]; k < m->bin_hi[f]; k++) e += row[k] * power[k];
            logmel[f] = log(fmax(e, 1e-10));
        }
        double *c = feat + t * dim;
        for (int j = 0; j < o->n_ceps; j++) {
            const double *d = m->dct + (size_t)j * o->n_mels;
            double s = 0;
            for (int f = 0; f < o->n_mels; f++) s += d[f] * logmel[f];
            c[j] = s;
        }
    }
    if (o->deltas) add_deltas(feat, T, dim, 0, o->n_ceps, o->n_ceps);
    if (o->delta_deltas) add_deltas(feat, T, dim, o->n_ceps, 2 * o->n_ceps, o->n_ceps);
    if (o->cmvn)
        for (int j = 0; j < dim; j++) {
            double mean = 0, var = 0;
            for (int64_t t = 0; t < T; t++) mean += feat[t * dim + j];
            mean /= T;
            for (int64_t t = 0; t < T; t++) var += (feat[t * dim + j] - mean) * (feat[t * dim + j] - mean);
            double inv = 1.0 / sqrt(var / T + 1e-10);
            for (int64_t t = 0; t < T; t++) feat[t * dim + j] = (feat[t * dim + j] - mean) * inv;
        }
    for (int64_t i = 0; i < T * dim; i++) out[i] = (float)feat[i];
    free(feat);
    free(logmel);
    free(power);
    return MT_OK;
}
