/*
 * test_threads.c - CPU results do not depend on the thread count
 * (docs/determinism.md): mytorch's own kernels always (each output element is
 * computed by one thread in a fixed order), GEMM in deterministic mode (fixed
 * tiles; OpenBLAS's own threading splits by the thread count).
 *
 * One training step of a small MLP (Linear, BatchNorm1d, GELU, Dropout,
 * cross-entropy with label smoothing, AdamW) is run at 1 and at 2 threads
 * from the same state; the loss, every gradient and every updated parameter
 * must be bitwise equal. Sizes are above the kernels' parallel grain so that
 * the 2-thread run really splits the work.
 */
#include "harness.h"

#include <string.h>

enum { BATCH = 384, IN = 300, HIDDEN = 272, CLASSES = 43 };

typedef struct step_result {
    float loss;
    int n;
    float *values;      /* every gradient, then every parameter after the step */
    int64_t count;
} step_result;

static mt_module *make_net(void)
{
    return mt_nn_sequential(mt_nn_linear(IN, HIDDEN, true), mt_nn_batch_norm1d(HIDDEN, MT_BN_DEFAULTS),
                            mt_nn_gelu(MT_GELU_ERF), mt_nn_dropout(0.2), mt_nn_linear(HIDDEN, CLASSES, true));
}

static step_result run_step(int threads)
{
    int prev_threads = mt_get_num_threads();
    mt_set_num_threads(threads);
    mt_manual_seed(7);
    mt_module *net = make_net();
    cr_assert_not_null(net, "%s", mt_last_error());
    mt_generator data = mt_generator_new(11);
    mt_tensor *x = mt_randn(&data, MT_F32, MT_SHAPE(BATCH, IN));
    mt_tensor *y = mt_randint(&data, MT_I64, MT_SHAPE(BATCH), 0, CLASSES);
    mt_tensor_list params = mt_parameters(net);
    mt_optimizer *opt = mt_adamw(params, MT_ADAMW_DEFAULTS);
    cr_assert_not_null(opt, "%s", mt_last_error());

    step_result r = { 0 };
    mt_tensor *loss = mt_cross_entropy(mt_forward(net, x), y, (mt_ce_opts){ .label_smoothing = 0.1 });
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    r.loss = (float)mt_item(loss);
    int64_t total = 0;
    for (int i = 0; i < params.n; i++) total += 2 * mt_numel(params.items[i].tensor);
    r.values = malloc((size_t)total * sizeof(float));
    r.count = total;
    int64_t at = 0;
    for (int i = 0; i < params.n; i++) {
        mt_tensor *g = mt_grad(params.items[i].tensor);
        cr_assert_not_null(g, "no gradient for %s", params.items[i].name);
        cr_assert(mt_to_data(g, MT_F32, r.values + at) == MT_OK);
        at += mt_numel(g);
    }
    cr_assert(mt_step(opt) == MT_OK, "%s", mt_last_error());
    for (int i = 0; i < params.n; i++) {
        cr_assert(mt_to_data(params.items[i].tensor, MT_F32, r.values + at) == MT_OK);
        at += mt_numel(params.items[i].tensor);
    }
    r.n = params.n;
    mt_optimizer_free(opt);
    mt_tensor_list_free(&params);
    mt_module_free(net);
    mt_set_num_threads(prev_threads);
    return r;
}

static void expect_bitwise_equal(step_result a, step_result b, const char *what)
{
    cr_expect(memcmp(&a.loss, &b.loss, sizeof a.loss) == 0, "%s: loss %.9g at 1 thread, %.9g at 2", what, a.loss, b.loss);
    cr_assert_eq(a.count, b.count);
    int64_t differ = 0, first = -1;
    for (int64_t i = 0; i < a.count; i++)
        if (memcmp(&a.values[i], &b.values[i], sizeof(float)) != 0) { differ++; if (first < 0) first = i; }
    cr_expect_eq(differ, 0, "%s: %lld of %lld gradient/parameter values differ between 1 and 2 threads "
                 "(first at %lld: %.9g vs %.9g)", what, (long long)differ, (long long)a.count, (long long)first,
                 first >= 0 ? a.values[first] : 0.0, first >= 0 ? b.values[first] : 0.0);
    free(a.values);
    free(b.values);
}

Test(threads, training_step_is_thread_count_independent_in_deterministic_mode,
     .init = mt_test_setup, .fini = mt_test_teardown)
{
    bool prev = mt_set_deterministic(true);
    step_result one = run_step(1), two = run_step(2);
    mt_set_deterministic(prev);
    expect_bitwise_equal(one, two, "deterministic mode");
}

/* Without GEMM, every CPU kernel is thread-count independent in both modes:
   reductions, softmax, batch norm, elementwise, the loss and AdamW. */
static mt_tensor *no_gemm_graph(mt_tensor *x)
{
    mt_tensor *w = mt_requires_grad(mt_full(MT_F32, MT_SHAPE(1, IN), 0.5), true);
    mt_tensor *h = mt_gelu(mt_mul(x, w), MT_GELU_ERF);
    mt_tensor *mean = mt_mean(h, 1, (int[]){ 0 }, true);
    mt_tensor *centered = mt_sub(h, mean);
    mt_tensor *logp = mt_log_softmax(centered, 1);
    mt_tensor *lse = mt_logsumexp(centered, 1, false);
    mt_tensor *loss = mt_add(mt_mean_all(mt_mul(logp, logp)), mt_mean_all(lse));
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    mt_tensor *out = mt_concat(2, (mt_tensor *[]){ mt_reshape(loss, 1, (int64_t[]){ 1 }), mt_grad(w) ? mt_reshape(mt_grad(w), 1, (int64_t[]){ IN }) : NULL }, 0);
    cr_assert_not_null(out, "%s", mt_last_error());
    return out;
}

Test(threads, own_kernels_are_thread_count_independent, .init = mt_test_setup, .fini = mt_test_teardown)
{
    int prev_threads = mt_get_num_threads();
    mt_generator data = mt_generator_new(3);
    mt_tensor *x = mt_randn(&data, MT_F32, MT_SHAPE(BATCH, IN));
    float results[2][1 + IN];
    for (int k = 0; k < 2; k++) {
        mt_set_num_threads(k + 1);
        cr_assert(mt_to_data(no_gemm_graph(x), MT_F32, results[k]) == MT_OK);
    }
    mt_set_num_threads(prev_threads);
    cr_expect(memcmp(results[0], results[1], sizeof results[0]) == 0,
              "mytorch's own kernels gave different bits at 1 and 2 threads");
}
