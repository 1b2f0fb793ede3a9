/*
 * mfcc.h - mel-frequency cepstral coefficients, the features of the speech
 * tasks (docs/speech-data.md), computed with FFTW (single precision):
 *
 *   1. pre-emphasis      y[0] = x[0], y[n] = x[n] - 0.97 x[n-1]
 *   2. frames            frame t covers the hop [t*hop, (t+1)*hop) and is
 *                        centred on c = t*hop + hop/2; its window is the
 *                        samples [c - win/2, c + win/2) (zeros outside the
 *                        signal). T = floor(n / hop) frames.
 *   3. window            Hamming, w[i] = 0.54 - 0.46 cos(2 pi i / (win - 1))
 *   4. power spectrum    |FFT_nfft(windowed frame, zero-padded)|^2, nfft/2+1 bins
 *   5. mel filterbank    n_mels triangles on the HTK mel scale,
 *                        mel(f) = 2595 log10(1 + f / 700), corners equally
 *                        spaced in mel from fmin to fmax; filter m weighs bin
 *                        k (frequency f = k * rate / nfft) by
 *                        max(0, min((f - f[m]) / (f[m+1] - f[m]), (f[m+2] - f) / (f[m+2] - f[m+1])))
 *   6. log               log(max(energy, 1e-10))
 *   7. DCT-II            orthonormal: c[j] = s_j sum_m log E[m] cos(pi j (m + 1/2) / n_mels),
 *                        s_0 = sqrt(1/n_mels), s_j = sqrt(2/n_mels); keep c[0..n_ceps)
 *   8. deltas            optional: d[t] = sum_{k=1..2} k (c[t+k] - c[t-k]) / 10
 *                        (edge frames repeated); delta-deltas are the deltas of d
 *   9. CMVN              optional, per utterance: each column minus its mean,
 *                        divided by sqrt(variance + 1e-10)
 *
 * Defaults (mt_mfcc_default): 16 kHz, 25 ms windows (400) every 10 ms (160),
 * a 512-point FFT, 40 mel filters over 0..8000 Hz, 15 coefficients, no
 * deltas, no normalisation. tests/fixtures/make_mfcc_fixture.py computes the
 * same in NumPy.
 */
#ifndef MT_MODELS_MFCC_H
#define MT_MODELS_MFCC_H

#include <stdbool.h>
#include <stdint.h>

#include "mytorch/mytorch.h"

typedef struct mt_mfcc_opts {
    int sample_rate;        /* Hz (16000) */
    int win_length;         /* samples per window (400) */
    int hop_length;         /* samples between frames (160) */
    int n_fft;              /* FFT size, >= win_length (512) */
    int n_mels;             /* mel filters (40) */
    double fmin, fmax;      /* the filterbank's range in Hz (0, 8000) */
    int n_ceps;             /* coefficients kept, 1..n_mels (15) */
    double preemphasis;     /* 0.97; 0 turns it off */
    bool deltas;            /* append the deltas */
    bool delta_deltas;      /* append the delta-deltas (needs deltas) */
    bool cmvn;              /* per-utterance mean and variance normalisation */
} mt_mfcc_opts;

mt_mfcc_opts mt_mfcc_default(void);
/* Features per frame: n_ceps, times 2 with deltas, times 3 with delta-deltas. */
int mt_mfcc_dim(const mt_mfcc_opts *opts);
/* Frames of a signal of n samples: floor(n / hop_length). */
int64_t mt_mfcc_frames(int64_t n_samples, const mt_mfcc_opts *opts);

/* A feature extractor: the options, the filterbank, the FFT plan. Not
   thread-safe (FFTW's planner is not); one per thread. */
typedef struct mt_mfcc mt_mfcc;
/* NULL (and a message) for inconsistent options. */
mt_mfcc *mt_mfcc_new(const mt_mfcc_opts *opts);
void mt_mfcc_free(mt_mfcc *m);

/* Features of x[0..n) into out, row-major T x dim floats, T =
   mt_mfcc_frames(n): out must hold T * mt_mfcc_dim() floats. */
mt_status mt_mfcc_compute(mt_mfcc *m, const float *x, int64_t n, float *out);

#endif
