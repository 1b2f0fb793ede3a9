/*
 * bench_mlp_speech.c - the `mlp_speech` workload of BENCH.md: one training
 * step (forward + backward + AdamW update) of the frame-level speech MLP
 *   Linear 495-1024-1024-512-43, each hidden Linear followed by
 *   BatchNorm1d, GELU, Dropout(0.2); cross-entropy; AdamW(lr 1e-3, wd 0.01)
 * on a batch of 1024 random frames (normal(0,1) features, labels uniform
 * over the 43 classes, fixed seed). Reports samples/s.
 *
 * On cuda: timed with events, after a check against the CPU; the step's GEMM
 * FLOPs per second against the device's fp32 (or tf32) peak go with it. On
 * cuda-emu: the check only: two steps from the same seed on the device and
 * on the CPU give the same two losses and the same parameter norm.
 */
#include "bench/bench.h"

#include <string.h>

#include "mytorch/cuda.h"
#include "models/speech_frames/speech_frames_model.h"

enum { BATCH = 1024, INPUT = 495, CLASSES = 43 };
/* The Linear layers' (in, out). */
static const int64_t layers[][2] = { { INPUT, 1024 }, { 1024, 1024 }, { 1024, 512 }, { 512, CLASSES } };

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

/* GEMM FLOPs of one step: forward, the weight gradients, and the input
   gradients of every layer but the first (x needs none). */
static double step_flop(void)
{
    double sum = 0, first = (double)(layers[0][0] * layers[0][1]);
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) sum += (double)(layers[i][0] * layers[i][1]);
    return 2.0 * BATCH * (3 * sum - first);
}

static void teardown(mlp_ctx *c)
{
    mt_optimizer_free(c->opt);
    mt_module_free(c->net);
    mt_free(c->x);
    mt_free(c->y);
    memset(c, 0, sizeof *c);
}

/* The model (initial weights from the seed, the same on every backend),
   moved to device, the inputs there and the optimizer made afterwards. */
static mt_status setup(mlp_ctx *c, uint64_t seed, mt_device device)
{
    memset(c, 0, sizeof *c);
    mt_manual_seed(seed);
    mt_generator gen = mt_generator_new(seed);
    c->x = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(BATCH, INPUT)), device);
    c->y = mt_bench_to(mt_randint(&gen, MT_I64, MT_SHAPE(BATCH), 0, CLASSES), device);
    if (!c->x || !c->y) return mt_last_status();
    return mt_bench_mlp_speech_model(device, &c->net, &c->opt);
}

mt_status mt_bench_mlp_speech_model(mt_device device, mt_module **net, mt_optimizer **opt)
{
    *opt = NULL;
    /* the task's model builder (models/speech_frames/speech_frames_model.h), BENCH's widths and 43 classes */
    static const int hidden[] = { 1024, 1024, 512 };
    *net = mt_speech_frames_mlp(&(mt_speech_mlp_opts){ .inputs = INPUT, .n_hidden = 3, .hidden = hidden,
                                                        .classes = CLASSES, .dropout = 0.2 });
    if (!*net) return mt_last_status();
    mt_status st = mt_module_to(*net, device);
    if (st != MT_OK) return st;
    mt_module_train(*net, true);
    mt_tensor_list params = mt_parameters(*net);
    mt_adam_opts adam_opts = MT_ADAMW_DEFAULTS;
    adam_opts.lr = 1e-3;
    adam_opts.weight_decay = 0.01;
    *opt = mt_adamw(params, adam_opts);
    mt_tensor_list_free(&params);
    return *opt ? MT_OK : mt_last_status();
}

/* Two steps from the seed on device: out = the two losses and the squared
   norm of the parameters after them. */
static mt_status probe(uint64_t seed, mt_device device, double out[3])
{
    mlp_ctx c;
    mt_status st = setup(&c, seed, device);
    for (int i = 0; i < 2 && st == MT_OK; i++) {
        mt_scope s = mt_scope_begin();
        mt_tensor *loss = mt_cross_entropy(mt_forward(c.net, c.x), c.y, (mt_ce_opts){ 0 });
        st = loss ? mt_backward(loss) : mt_last_status();
        if (st == MT_OK) st = mt_step(c.opt);
        if (st == MT_OK) out[i] = mt_item(loss);
        mt_optimizer_zero_grad(c.opt);
        mt_scope_end(s);
    }
    if (st == MT_OK) {
        mt_scope s = mt_scope_begin();
        mt_tensor_list params = mt_parameters(c.net);
        double norm2 = 0;
        MT_NO_GRAD {
            for (int i = 0; i < params.n && st == MT_OK; i++) {
                mt_tensor *sq = mt_sum_all(mt_mul(params.items[i].tensor, params.items[i].tensor));
                if (!sq) st = mt_last_status();
                else norm2 += mt_item(sq);
            }
        }
        out[2] = norm2;
        mt_tensor_list_free(&params);
        mt_scope_end(s);
    }
    teardown(&c);
    return st;
}

int mt_bench_mlp_speech(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    int threads = mt_bench_set_threads(opts->threads);
    mt_device_type type = opts->dev.type;
    int count = 0;
    if (type != MT_DEVICE_CPU && count < max_results) {
        mt_bench_result *r = &results[count];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "mlp_speech");
        snprintf(r->impl, sizeof r->impl, "mytorch");
        r->device = opts->device;
        r->threads = threads;
        double got[3], want[3];
        mt_status st = probe(opts->seed, opts->dev, got);
        if (st == MT_OK) st = probe(opts->seed, mt_cpu(), want);
        /* the first loss differs only by summation order; the second and the
           norm also through one AdamW update */
        if (st == MT_OK) st = mt_bench_compare(r, "loss, loss after one step, parameter norm^2", got, want, 3, 1e-4, 1e-6);
        if (st != MT_OK) return -1;
        count++;
    }
    if (type == MT_DEVICE_CUDA_EMU || count >= max_results) return count;

    mlp_ctx c;
    if (setup(&c, opts->seed, opts->dev) != MT_OK) {
        teardown(&c);
        return -1;
    }
    mt_bench_result *r = &results[count];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "mlp_speech");
    snprintf(r->impl, sizeof r->impl, "mytorch");
    r->device = opts->device;
    r->threads = threads;
    r->metric = "samples/s";
    if (mt_bench_time_on(opts->dev, step, &c, opts->warmup, opts->iters, r) == MT_OK) {
        r->value = BATCH / (r->median_ms * 1e-3);
        mt_bench_set_flop_rate(r, opts->dev, step_flop());
        count++;
    } else {
        count = -1;
    }
    teardown(&c);
    return count;
}
