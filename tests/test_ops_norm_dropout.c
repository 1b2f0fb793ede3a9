/*
 * test_ops_norm_dropout.c - batch normalization (training and eval, with and
 * without affine parameters, [N, C] and [N, C, L]) and dropout (through the
 * harness with a fixed generator, plus statistics and scaling).
 */
#include "harness.h"

#include <math.h>

/* ---------------------------------------------------------------- batch norm */
typedef struct bn_params { bool training, affine; double eps; } bn_params;

/* inputs: x, weight, bias, running_mean, running_var (the last four optional by case) */
static void ref_batch_norm(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    const bn_params *p = c->params;
    const ref_tensor *x = &in[0];
    int64_t n = x->shape[0], ch = x->shape[1], l = 1;
    for (int d = 2; d < x->ndim; d++) l *= x->shape[d];
    ref_alloc(out, x->ndim, x->shape);
    for (int64_t k = 0; k < ch; k++) {
        double mean = 0, var = 0;
        if (p->training) {
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < l; j++) mean += x->data[(i * ch + k) * l + j];
            mean /= (double)(n * l);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < l; j++) {
                    double d = x->data[(i * ch + k) * l + j] - mean;
                    var += d * d;
                }
            var /= (double)(n * l);
        } else {
            mean = in[3].data[k];
            var = in[4].data[k];
        }
        double w = p->affine ? in[1].data[k] : 1, b = p->affine ? in[2].data[k] : 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < l; j++) {
                int64_t at = (i * ch + k) * l + j;
                out->data[at] = w * (x->data[at] - mean) / sqrt(var + p->eps) + b;
            }
    }
}

static mt_tensor *run_batch_norm(const mt_op_case *c, mt_tensor *const *in)
{
    const bn_params *p = c->params;
    mt_tensor *w = p->affine ? in[1] : NULL, *b = p->affine ? in[2] : NULL;
    if (p->training) return mt_batch_norm(in[0], NULL, NULL, w, b, true, 0.1, p->eps);
    /* eval reads the running stats; clone them so the op cannot disturb the case's inputs */
    return mt_batch_norm(in[0], mt_clone(in[3]), mt_clone(in[4]), w, b, false, 0.1, p->eps);
}

#define BN_CASE(NAME, TRAINING, AFFINE, ...)                                             \
    Test(ops_norm, NAME, .init = mt_test_setup, .fini = mt_test_teardown) {             \
        static const bn_params p = { TRAINING, AFFINE, 1e-5 };                           \
        mt_op_case c = { .name = #NAME, .n_inputs = 5, .inputs = { __VA_ARGS__ },         \
                         .run = run_batch_norm, .reference = ref_batch_norm, .params = &p, \
                         .fwd_tol_f32 = 1e-4, .grad_tol = 1e-5 };                          \
        mt_check_op(&c);                                                                 \
    }

#define RUNNING_STATS(C) { .ndim = 1, .shape = { C }, .lo = -0.5, .hi = 0.5, .no_grad = true }, \
                         { .ndim = 1, .shape = { C }, .lo = 0.5, .hi = 2, .no_grad = true }

BN_CASE(batch_norm_train_2d, true, true, MT_SPEC(-2, 2, 6, 3), MT_SPEC(0.5, 1.5, 3), MT_SPEC(-1, 1, 3), RUNNING_STATS(3))
BN_CASE(batch_norm_train_3d, true, true, MT_SPEC(-2, 2, 3, 2, 5), MT_SPEC(0.5, 1.5, 2), MT_SPEC(-1, 1, 2), RUNNING_STATS(2))
BN_CASE(batch_norm_train_no_affine, true, false, MT_SPEC(-2, 2, 5, 4), MT_SPEC(0.5, 1.5, 4), MT_SPEC(-1, 1, 4), RUNNING_STATS(4))
BN_CASE(batch_norm_eval_2d, false, true, MT_SPEC(-2, 2, 4, 3), MT_SPEC(0.5, 1.5, 3), MT_SPEC(-1, 1, 3), RUNNING_STATS(3))
BN_CASE(batch_norm_eval_4d, false, true, MT_SPEC(-2, 2, 2, 3, 2, 2), MT_SPEC(0.5, 1.5, 3), MT_SPEC(-1, 1, 3), RUNNING_STATS(3))

Test(ops_norm, running_stats_update, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* one channel, values 1..4: mean 2.5, biased var 1.25, unbiased var 5/3 */
    mt_tensor *x = mt_from_data(MT_F64, MT_SHAPE(4, 1), (double[]){ 1, 2, 3, 4 });
    mt_tensor *rm = mt_zeros(MT_F64, MT_SHAPE(1)), *rv = mt_ones(MT_F64, MT_SHAPE(1));
    mt_tensor *y = mt_batch_norm(x, rm, rv, NULL, NULL, true, 0.1, 1e-5);
    cr_assert(y != NULL, "%s", mt_last_error());
    cr_assert_float_eq(mt_item(rm), 0.1 * 2.5, 1e-12);
    cr_assert_float_eq(mt_item(rv), 0.9 * 1 + 0.1 * 5.0 / 3.0, 1e-12);
    cr_assert_float_eq(mt_get(y, (int64_t[]){ 0, 0 }), (1 - 2.5) / sqrt(1.25 + 1e-5), 1e-12);
    /* eval: uses the running statistics */
    mt_tensor *ye = mt_batch_norm(x, rm, rv, NULL, NULL, false, 0.1, 1e-5);
    cr_assert_float_eq(mt_get(ye, (int64_t[]){ 3, 0 }), (4 - 0.25) / sqrt(mt_item(rv) + 1e-5), 1e-12);
}

Test(ops_norm, bad_inputs, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_tensor *x = mt_zeros(MT_F32, MT_SHAPE(4, 3));
    cr_assert_null(mt_batch_norm(x, NULL, NULL, mt_ones(MT_F32, MT_SHAPE(5)), NULL, true, 0.1, 1e-5));
    cr_assert(strstr(mt_last_error(), "batch_norm") && strstr(mt_last_error(), "[5]"), "%s", mt_last_error());
    cr_assert_null(mt_batch_norm(mt_zeros(MT_F32, MT_SHAPE(1, 3)), NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    cr_assert(strstr(mt_last_error(), "more than 1 value"), "%s", mt_last_error());
    cr_assert_null(mt_batch_norm(x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5));
    cr_assert_null(mt_batch_norm(mt_zeros(MT_F32, MT_SHAPE(4)), NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    cr_assert_null(mt_batch_norm(NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
}

/* ---------------------------------------------------------------- dropout */
/* With a generator re-seeded on every run the mask is the same each time, so
   the harness's finite differences see a fixed linear map. */
static mt_tensor *run_dropout(const mt_op_case *c, mt_tensor *const *in)
{
    (void)c;
    mt_generator gen = mt_generator_new(42);
    return mt_dropout(in[0], 0.3, true, &gen);
}

static void ref_dropout(const mt_op_case *c, const ref_tensor *in, ref_tensor *out)
{
    (void)c;
    /* the mask the engine draws for generator seed 42: reproduce it through the
       public Bernoulli path (mt_rand < 0.7 with the same counters) */
    mt_generator gen = mt_generator_new(42);
    int64_t n = ref_numel(&in[0]);
    mt_tensor *u = mt_rand(&gen, MT_F64, 1, &n);
    ref_alloc(out, in[0].ndim, in[0].shape);
    for (int64_t k = 0; k < n; k++) {
        double keep = mt_get(u, (int64_t[]){ k }) < 0.7 ? 1 : 0;
        out->data[k] = in[0].data[k] * keep / 0.7;
    }
}

Test(ops_dropout, harness, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_op_case c = { .name = "dropout", .n_inputs = 1, .inputs = { MT_SPEC(-2, 2, 4, 6) },
                     .run = run_dropout, .reference = ref_dropout };
    mt_check_op(&c);
}

Test(ops_dropout, statistics_and_scaling, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int64_t n = 200000;
    mt_generator gen = mt_generator_new(7);
    mt_tensor *x = mt_ones(MT_F32, 1, &n);
    mt_tensor *y = mt_dropout(x, 0.2, true, &gen);
    int64_t zeros = 0;
    double sum = 0;
    const float *p = mt_data_ptr(y);
    for (int64_t i = 0; i < n; i++) {
        if (p[i] == 0) zeros++;
        else cr_assert_float_eq(p[i], 1.25f, 1e-6);
        sum += p[i];
    }
    double rate = (double)zeros / (double)n;
    cr_assert(fabs(rate - 0.2) < 0.005, "drop rate %g, expected 0.2", rate);
    cr_assert(fabs(sum / (double)n - 1) < 0.01, "mean %g, expected 1 (inverted dropout keeps the expectation)", sum / (double)n);

    /* same seed, same mask; the generator advances so the next mask differs */
    mt_generator g1 = mt_generator_new(7), g2 = mt_generator_new(7);
    mt_tensor *a = mt_dropout(x, 0.5, true, &g1), *b = mt_dropout(x, 0.5, true, &g2), *c2 = mt_dropout(x, 0.5, true, &g1);
    cr_assert(mt_item(mt_sum_all(mt_ne(a, b))) == 0, "same seed must give the same mask");
    cr_assert(mt_item(mt_sum_all(mt_to_dtype(mt_ne(a, c2), MT_F64))) > 0, "a second draw must give a new mask");

    /* eval and p = 0 are the identity; p = 1 drops everything */
    cr_assert_eq(mt_dropout(x, 0.5, false, NULL), x);
    cr_assert_eq(mt_dropout(x, 0, true, NULL), x);
    cr_assert(mt_item(mt_sum_all(mt_dropout(x, 1, true, &gen))) == 0);
    cr_assert_null(mt_dropout(x, 1.5, true, NULL));
    cr_assert(strstr(mt_last_error(), "dropout"), "%s", mt_last_error());
}
