/*
 * test_bench_data.c - the `mlp_speech_data` benchmark (bench/): mlp_speech's
 * step fed by the frame loader from a corpus folder. On a small corpus in
 * the course layout (F = 15, 1,100 frames: one batch of 1024 per epoch, so
 * three steps cross two epoch ends): one timed result with the loader's
 * fields, in the JSON too; clear errors without --data, for a folder that
 * is not a corpus, for another feature width, and on cuda-emu.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/bench.h"

/* root/train-clean-100/{mfcc,labels}/<utt>.npy: utterances of 550 frames of f coefficients. */
static void write_corpus(const char *root, int n_utts, int f)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/train-clean-100", root);
    cr_assert_eq(mkdir(root, 0777), 0);
    cr_assert_eq(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/mfcc", dir);
    cr_assert_eq(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/labels", dir);
    cr_assert_eq(mkdir(path, 0777), 0);
    mt_generator gen = mt_generator_new(5);
    for (int u = 0; u < n_utts; u++) {
        mt_scope s = mt_scope_begin();
        snprintf(path, sizeof path, "%s/mfcc/%04d.npy", dir, u);
        cr_assert_eq(mt_npy_save(path, mt_randn(&gen, MT_F32, MT_SHAPE(550, f))), MT_OK, "%s", mt_last_error());
        snprintf(path, sizeof path, "%s/labels/%04d.npy", dir, u);
        cr_assert_eq(mt_npy_save(path, mt_randint(&gen, MT_I64, MT_SHAPE(550), 0, 40)), MT_OK, "%s", mt_last_error());
        mt_scope_end(s);
    }
}

static mt_bench_opts opts_for(const char *data)
{
    return (mt_bench_opts){ .iters = 2, .warmup = 1, .threads = 0, .device = "cpu", .dev = mt_cpu(), .seed = 3,
                            .data_dir = data };
}

Test(bench_data, mlp_speech_data_times_the_loader_fed_step, .init = mt_test_setup, .fini = mt_test_teardown)
{
    char root[128], data[160], narrow[160];
    mt_test_temp_dir(root, sizeof root, "bench_data");
    snprintf(data, sizeof data, "%s/corpus", root);
    snprintf(narrow, sizeof narrow, "%s/narrow", root);
    write_corpus(data, 2, 15);
    write_corpus(narrow, 2, 13);

    cr_assert_not_null(mt_bench_find("mlp_speech_data"));
    mt_bench_result r[2];
    mt_bench_opts o = opts_for(data);
    int n = mt_bench_mlp_speech_data(&o, r, 2);
    cr_assert_eq(n, 1, "%s", n < 0 ? mt_last_error() : "");
    cr_expect_str_eq(r[0].name, "mlp_speech_data");
    cr_expect_str_eq(r[0].metric, "samples/s");
    cr_expect(r[0].iters == 2 && r[0].warmup == 1);
    cr_expect(r[0].min_ms > 0 && r[0].min_ms <= r[0].median_ms && r[0].median_ms <= r[0].max_ms);
    cr_expect_float_eq(r[0].value, 1024 / (r[0].median_ms * 1e-3), 1e-6 * r[0].value);
    cr_expect(r[0].has_loader);
    cr_expect_eq(r[0].data_frames, 1100);
    cr_expect(r[0].loader_wait_ms >= 0 && r[0].loader_wait_max_ms <= r[0].loader_wait_ms);

    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    cr_assert_not_null(f);
    mt_bench_write_json(f, r, 1);
    fclose(f);
    cr_expect_not_null(strstr(json, "\"name\": \"mlp_speech_data\""), "%s", json);
    cr_expect_not_null(strstr(json, "\"loader_wait_ms\": "), "%s", json);
    cr_expect_not_null(strstr(json, "\"loader_wait_max_ms\": "), "%s", json);
    cr_expect_not_null(strstr(json, "\"data_frames\": 1100"), "%s", json);
    free(json);

    /* errors: no --data, no corpus there, 13 coefficients, cuda-emu */
    o = opts_for(NULL);
    cr_expect_eq(mt_bench_mlp_speech_data(&o, r, 2), -1);
    cr_expect_not_null(strstr(mt_last_error(), "--data DIR"), "%s", mt_last_error());
    char nowhere[200];
    snprintf(nowhere, sizeof nowhere, "%s/nowhere", root);
    o = opts_for(nowhere);
    cr_expect_eq(mt_bench_mlp_speech_data(&o, r, 2), -1);
    cr_expect_not_null(strstr(mt_last_error(), "nowhere/train-clean-100"), "%s", mt_last_error());
    o = opts_for(narrow);
    cr_expect_eq(mt_bench_mlp_speech_data(&o, r, 2), -1);
    cr_expect_not_null(strstr(mt_last_error(), "13 MFCC coefficients"), "%s", mt_last_error());
    o = opts_for(data);
    o.device = "cuda-emu";
    o.dev = (mt_device){ MT_DEVICE_CUDA_EMU, 0 };
    cr_expect_eq(mt_bench_mlp_speech_data(&o, r, 2), -1);
    cr_expect_not_null(strstr(mt_last_error(), "cuda-emu"), "%s", mt_last_error());
    mt_test_remove_tree(root);
}
