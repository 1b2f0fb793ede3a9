/*
 * test_ownership.c - the one ownership rule (docs/ownership.md): what a
 * function creates belongs to the open scope, or to the caller when none is
 * open; a composite op's intermediates go with its result; a failing op
 * leaves nothing behind; loaded tensors follow the same rule.
 *
 * Leaks are measured with the CPU allocator's count of bytes handed out,
 * so they show in every build, not only under AddressSanitizer. These tests
 * open no scope of their own.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>

static size_t cpu_allocated(void) { return mt_device_memory_stats(mt_cpu()).allocated; }

Test(ownership, composite_ops_without_a_scope_free_their_intermediates_with_the_result)
{
    size_t before = cpu_allocated();
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(8, 5));
    mt_tensor *w = mt_requires_grad(mt_randn(NULL, MT_F32, MT_SHAPE(3, 5)), true);
    mt_tensor *y = mt_randint(NULL, MT_I64, MT_SHAPE(8), 0, 3);
    mt_tensor *logits = mt_linear(x, w, NULL);
    mt_tensor *loss = mt_cross_entropy(logits, y, (mt_ce_opts){ .label_smoothing = 0.1 });
    cr_assert_not_null(loss, "%s", mt_last_error());
    /* the graph through the intermediates is intact as long as loss lives */
    cr_assert(mt_backward(loss) == MT_OK, "%s", mt_last_error());
    cr_assert_not_null(mt_grad(w));
    mt_tensor *zeros = mt_zeros_like(logits);
    mt_tensor *mse = mt_mse_loss(logits, zeros, MT_REDUCTION_MEAN);
    cr_assert_not_null(mse, "%s", mt_last_error());
    mt_free(mse);
    mt_free(zeros);
    mt_free(loss);
    mt_free(logits);
    mt_zero_grad(w);
    mt_free(w);
    mt_free(x);
    mt_free(y);
    cr_expect_eq(cpu_allocated(), before, "%zu bytes were left behind", cpu_allocated() - before);
}

Test(ownership, a_failing_op_without_a_scope_leaves_nothing)
{
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(4, 3));
    mt_tensor *bad_weight = mt_ones(MT_F32, MT_SHAPE(5));   /* 5 != 3 channels */
    size_t before = cpu_allocated();
    cr_expect_null(mt_batch_norm(x, NULL, NULL, bad_weight, NULL, true, 0.1, 1e-5));
    cr_expect_eq(cpu_allocated(), before, "batch_norm's failure left %zu bytes behind", cpu_allocated() - before);
    mt_tensor *target = mt_randint(NULL, MT_I64, MT_SHAPE(4), 3, 9);   /* class indices out of range */
    before = cpu_allocated();
    cr_expect_null(mt_cross_entropy(x, target, (mt_ce_opts){ 0 }));
    cr_expect_eq(cpu_allocated(), before, "cross_entropy's failure left %zu bytes behind", cpu_allocated() - before);
    mt_free(target);
    mt_free(bad_weight);
    mt_free(x);
}

Test(ownership, results_and_intermediates_all_go_when_the_result_goes)
{
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(16, 7));
    mt_tensor *y = mt_randint(NULL, MT_I64, MT_SHAPE(16), 0, 7);
    size_t before = cpu_allocated();
    mt_tensor *loss = mt_cross_entropy(x, y, (mt_ce_opts){ .label_smoothing = 0.2 });
    cr_assert_not_null(loss, "%s", mt_last_error());
    cr_expect_gt(cpu_allocated(), before);
    mt_free(loss);
    cr_expect_eq(cpu_allocated(), before, "cross_entropy with no scope open leaked %zu bytes", cpu_allocated() - before);
    mt_tensor *beta = mt_requires_grad(mt_full(MT_F32, MT_SHAPE(1), 1.5), true);
    size_t before_swish = cpu_allocated();
    mt_tensor *s = mt_swish(x, beta);
    cr_assert_not_null(s, "%s", mt_last_error());
    mt_free(s);
    cr_expect_eq(cpu_allocated(), before_swish, "swish with no scope open leaked %zu bytes", cpu_allocated() - before_swish);
    mt_free(beta);
    mt_free(x);
    mt_free(y);
}

Test(ownership, loaded_tensors_belong_to_the_open_scope)
{
    char dir[128], path[192];
    mt_test_temp_dir(dir, sizeof dir, "ownership");
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    mt_tensor *a = mt_ones(MT_F32, MT_SHAPE(64));
    mt_named_tensor item = { "a", a };
    cr_assert(mt_safetensors_save(path, (mt_tensor_list){ 1, &item }, 0, NULL, NULL) == MT_OK, "%s", mt_last_error());
    mt_free(a);
    size_t before = cpu_allocated();
    mt_scope s = mt_scope_begin();
    mt_tensor_list loaded;
    cr_assert(mt_safetensors_load(path, &loaded) == MT_OK, "%s", mt_last_error());
    cr_expect_gt(cpu_allocated(), before);
    mt_tensor_list_free(&loaded);   /* the list; its tensors are the scope's */
    mt_scope_end(s);
    cr_expect_eq(cpu_allocated(), before, "the scope did not free the loaded tensors");
    mt_test_remove_tree(dir);
}
