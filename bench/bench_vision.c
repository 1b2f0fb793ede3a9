/*
 * bench_vision.c - the face-model training steps of BENCH.md:
 *
 *   resnet18_face   ResNet-18 (7x7/2 stem + 3x3/2 max pool, basic blocks
 *                   64-128-256-512, BatchNorm, ReLU, global average pool),
 *                   input 3x112x112, batch 32, 7000 classes; cross-entropy;
 *                   SGD momentum 0.9, weight decay 5e-4
 *   convnext_face   ConvNeXt depths (2, 2, 6, 2), dims (48, 96, 192, 384), 4x4/4
 *                   stem + LayerNorm, layer scale 1e-6; same input and classes; AdamW
 *
 * One iteration = forward + backward + optimizer step on a fixed random batch
 * (normal(0, 1) images, labels uniform over the classes); images/s = 32 /
 * median time. The models are models/vision's, the ones `mytorch train faces`
 * trains. On cuda-emu (and before timing on cuda) a check: a small model of
 * the same kind (width 8, 16x16 images, batch 2, 5 classes) gives the same
 * two losses and parameter norm on the device as on the CPU.
 */
#include "bench/bench.h"

#include <string.h>

#include "models/vision/vision.h"

enum { BATCH = 32, IMAGE = 112, CLASSES = 7000 };

typedef struct vision_ctx {
    mt_module *net;
    mt_optimizer *opt;
    mt_tensor *x, *y;
} vision_ctx;

static mt_status step(void *p)
{
    vision_ctx *c = p;
    mt_scope s = mt_scope_begin();
    mt_tensor *loss = mt_cross_entropy(mt_forward(c->net, c->x), c->y, (mt_ce_opts){ 0 });
    mt_status st = loss ? mt_backward(loss) : mt_last_status();
    if (st == MT_OK) st = mt_step(c->opt);
    mt_optimizer_zero_grad(c->opt);
    mt_scope_end(s);
    return st;
}

static void teardown(vision_ctx *c)
{
    mt_optimizer_free(c->opt);
    mt_module_free(c->net);
    mt_free(c->x);
    mt_free(c->y);
    memset(c, 0, sizeof *c);
}

/* The model (BENCH's, or the small one of the check), its data and optimizer on device. */
static mt_status setup(vision_ctx *c, bool convnext, bool small, uint64_t seed, mt_device device)
{
    memset(c, 0, sizeof *c);
    mt_manual_seed(seed);
    int64_t batch = small ? 2 : BATCH, image = small ? 16 : IMAGE, classes = small ? 5 : CLASSES;
    if (convnext) {
        mt_convnext_opts o = MT_CONVNEXT_DEFAULTS(classes);
        if (small) { o.n_stages = 2; o.depths[0] = 1; o.depths[1] = 1; o.dims[0] = 8; o.dims[1] = 16; }
        o.stochastic_depth = 0;   /* BENCH's row has none; the check must draw nothing */
        c->net = mt_convnext(o);
    } else {
        mt_resnet_opts o = MT_RESNET_DEFAULTS(18, classes);
        if (small) { o.width = 8; o.small_stem = true; }
        c->net = mt_resnet(o);
    }
    mt_generator gen = mt_generator_new(seed);
    c->x = mt_bench_to(mt_randn(&gen, MT_F32, MT_SHAPE(batch, 3, image, image)), device);
    c->y = mt_bench_to(mt_randint(&gen, MT_I64, MT_SHAPE(batch), 0, classes), device);
    if (!c->net || !c->x || !c->y) return mt_last_status();
    mt_status st = mt_module_to(c->net, device);
    if (st != MT_OK) return st;
    mt_module_train(c->net, true);
    mt_tensor_list params = mt_parameters(c->net);
    if (convnext) {
        mt_adam_opts o = MT_ADAMW_DEFAULTS;
        c->opt = mt_adamw(params, o);
    } else {
        mt_sgd_opts o = MT_SGD_DEFAULTS;
        o.lr = 0.1;
        o.momentum = 0.9;
        o.weight_decay = 5e-4;
        c->opt = mt_sgd(params, o);
    }
    mt_tensor_list_free(&params);
    return c->opt ? MT_OK : mt_last_status();
}

/* Two steps of the small model: out = the two losses and the parameters' squared norm. */
static mt_status probe(bool convnext, uint64_t seed, mt_device device, double out[3])
{
    vision_ctx c;
    mt_status st = setup(&c, convnext, true, seed, device);
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
        out[2] = 0;
        MT_NO_GRAD {
            for (int i = 0; i < params.n && st == MT_OK; i++) {
                mt_tensor *sq = mt_sum_all(mt_mul(params.items[i].tensor, params.items[i].tensor));
                if (!sq) st = mt_last_status();
                else out[2] += mt_item(sq);
            }
        }
        mt_tensor_list_free(&params);
        mt_scope_end(s);
    }
    teardown(&c);
    return st;
}

static int run_model(bool convnext, const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    const char *name = convnext ? "convnext_face" : "resnet18_face";
    int threads = mt_bench_set_threads(opts->threads), count = 0;
    mt_device_type type = opts->dev.type;
    if (type != MT_DEVICE_CPU && count < max_results) {
        mt_bench_result *r = &results[count];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->impl, sizeof r->impl, "mytorch");
        r->device = opts->device;
        r->threads = threads;
        double got[3], want[3];
        mt_status st = probe(convnext, opts->seed, opts->dev, got);
        if (st == MT_OK) st = probe(convnext, opts->seed, mt_cpu(), want);
        if (st == MT_OK) st = mt_bench_compare(r, "loss, loss after one step, parameter norm^2", got, want, 3, 1e-4, 1e-6);
        if (st != MT_OK) return -1;
        count++;
    }
    if (type == MT_DEVICE_CUDA_EMU || count >= max_results) return count;
    vision_ctx c;
    if (setup(&c, convnext, false, opts->seed, opts->dev) != MT_OK) { teardown(&c); return -1; }
    mt_bench_result *r = &results[count];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->impl, sizeof r->impl, "mytorch");
    r->device = opts->device;
    r->threads = threads;
    r->metric = "images/s";
    mt_status st = mt_bench_time_on(opts->dev, step, &c, opts->warmup, opts->iters, r);
    teardown(&c);
    if (st != MT_OK) return -1;
    r->value = BATCH / (r->median_ms * 1e-3);
    return count + 1;
}

int mt_bench_resnet18_face(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    return run_model(false, opts, results, max_results);
}

int mt_bench_convnext_face(const mt_bench_opts *opts, mt_bench_result *results, int max_results)
{
    return run_model(true, opts, results, max_results);
}
