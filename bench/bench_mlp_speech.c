/*
 * bench_mlp_speech.c - the `mlp_speech` workload of BENCH.md: one training
 * step (forward + backward + AdamW update) of the frame-level speech MLP
 *   Linear 495-1024-1024-512-43, each hidden Linear followed by
 *   BatchNorm1d, GELU, Dropout(0.2); cross-entropy; AdamW(lr 1e-3, wd 0.01)
 * on a batch of 1024 random frames (normal(0,1) features, labels uniform
 * over the 43 classes, fixed seed). Reports samples/s.
 */
#include "bench/bench.h"

#include <string.h>

enum { BATCH = 1024, INPUT = 495, CLASSES = 43 };

typedef struct mlp_ctx {
    mt_module *net;
    mt_optimizer *opt;
    mt_tensor *x, *y;
} mlp_ctx;

static mt_status step(void *p)
{
    mlp_ctx *c = p;
    mt_scope s = mt_scope_begin();
    mt_tensor *loss = mt_cross_entropy(mt_forward(c->net, c->x), c->y, (mt_ce_opts){ 0 });
    mt_status st = loss ? mt_backward(loss) : mt_last_status();
    if (st == MT_OK) st = mt_step(c->opt);
    mt_optimizer_zero_grad(c->opt);
    mt_scope_end(s);
    return st;
}

int mt_bench_mlp_speech(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    if (max_results < 1) return 0;
    int threads = mt_bench_set_threads(opts->threads);
    mt_manual_seed(opts->seed);
    mlp_ctx c = { 0 };
    mt_generator gen = mt_generator_new(opts->seed);
    c.x = mt_randn(&gen, MT_F32, MT_SHAPE(BATCH, INPUT));
    c.y = mt_randint(&gen, MT_I64, MT_SHAPE(BATCH), 0, CLASSES);
    c.net = mt_nn_sequential(
        mt_nn_linear(INPUT, 1024, true), mt_nn_batch_norm1d(1024, (mt_bn_opts){ 0 }), mt_nn_gelu(MT_GELU_ERF), mt_nn_dropout(0.2),
        mt_nn_linear(1024, 1024, true),  mt_nn_batch_norm1d(1024, (mt_bn_opts){ 0 }), mt_nn_gelu(MT_GELU_ERF), mt_nn_dropout(0.2),
        mt_nn_linear(1024, 512, true),   mt_nn_batch_norm1d(512, (mt_bn_opts){ 0 }),  mt_nn_gelu(MT_GELU_ERF), mt_nn_dropout(0.2),
        mt_nn_linear(512, CLASSES, true));
    int count = -1;
    if (c.x && c.y && c.net) {
        mt_module_train(c.net, true);
        mt_tensor_list params = mt_parameters(c.net);
        c.opt = mt_adamw(params, (mt_adam_opts){ .lr = 1e-3, .weight_decay = 0.01 });
        mt_tensor_list_free(&params);
    }
    if (c.opt) {
        mt_bench_result *r = &results[0];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "mlp_speech");
        snprintf(r->impl, sizeof r->impl, "mytorch");
        r->device = "cpu";
        r->threads = threads;
        r->metric = "samples/s";
        if (mt_bench_time(step, &c, opts->warmup, opts->iters, r) == MT_OK) {
            r->value = BATCH / (r->median_ms * 1e-3);
            count = 1;
        }
    }
    mt_optimizer_free(c.opt);
    mt_module_free(c.net);
    mt_free(c.x);
    mt_free(c.y);
    return count;
}
