/*
 * test_mfcc.c - models/mfcc.c against a NumPy reference: a noisy chirp and
 * its features for three settings, written by
 * tests/fixtures/make_mfcc_fixture.py (float64 NumPy, the pipeline of
 * models/mfcc.h), must agree within 1e-4.
 */
#include "harness.h"

#ifdef MYTORCH_HAVE_SPEECH_DATA

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/mfcc.h"

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
