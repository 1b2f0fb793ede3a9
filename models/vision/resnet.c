/*
 * resnet.c - ResNet (He et al. 2015) as torchvision builds it:
 *
 *   conv1 (7x7/2, 64) -> bn1 -> relu -> maxpool (3x3/2)          the stem ("small": 3x3/1, no pool)
 *   layer1..layer4: blocks of width 64, 128, 256, 512 (x the base width / 64),
 *                   the first block of layers 2-4 with stride 2
 *   avgpool (global) -> flatten = the embedding -> fc = the logits
 *
 *   BasicBlock (18, 34):  relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))          3x3, 3x3
 *   Bottleneck (50+):     relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))
 *                         1x1 (width), 3x3 (width, the stride), 1x1 (4 x width)
 *   shortcut: x, or downsample = conv 1x1 (stride) + BatchNorm when the shape changes.
 *
 * Parameter names follow torchvision's state dict ("layer2.0.downsample.0.weight").
 * Convolutions are initialized with kaiming_normal_(fan_out, relu), as
 * torchvision does; BatchNorm with weight 1 and bias 0; fc as any Linear.
 */
#include "models/vision/vision_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>



/* ---------------------------------------------------------------- blocks */
static mt_tensor *block_forward(mt_module *m, mt_tensor *x)
{
    bool bottleneck = mt_vision_child(m, "conv3") != NULL;
    mt_tensor *out = mt_relu(mt_forward(mt_vision_child(m, "bn1"), mt_forward(mt_vision_child(m, "conv1"), x)));
    out = mt_forward(mt_vision_child(m, "bn2"), mt_forward(mt_vision_child(m, "conv2"), out));
    if (bottleneck) out = mt_forward(mt_vision_child(m, "bn3"), mt_forward(mt_vision_child(m, "conv3"), mt_relu(out)));
    mt_module *down = mt_vision_child(m, "downsample");
    mt_tensor *shortcut = down ? mt_forward(down, x) : x;
    return mt_relu(mt_add(out, shortcut));
}

static const mt_module_type basic_block_type = { "BasicBlock", block_forward, NULL, NULL };
static const mt_module_type bottleneck_type = { "Bottleneck", block_forward, NULL, NULL };

static mt_module *conv(int64_t in, int64_t out, int64_t k, int64_t stride)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    o.stride[0] = o.stride[1] = stride;
    o.padding[0] = o.padding[1] = k / 2;
    mt_module *c = mt_nn_conv2d(in, out, k, k, false, o);
    if (c && mt_init_kaiming_normal_(mt_module_param(c, "weight"), NULL, 0, MT_FAN_OUT, "relu") != MT_OK) {
        mt_module_free(c);
        return NULL;
    }
    return c;
}

static mt_module *bn(int64_t channels) { return mt_nn_batch_norm2d(channels, MT_BN_DEFAULTS); }

/* One block from in channels to planes (x 4 for a bottleneck), with stride. */
static mt_module *block(bool bottleneck, int64_t in, int64_t planes, int64_t stride, bool zero_init_residual)
{
    mt_module *m = mt_module_new(bottleneck ? &bottleneck_type : &basic_block_type, NULL);
    if (!m) return NULL;
    int64_t out = bottleneck ? 4 * planes : planes;
    bool ok;
    if (bottleneck)
        ok = mt_module_add_child(m, "conv1", conv(in, planes, 1, 1)) && mt_module_add_child(m, "bn1", bn(planes)) &&
             mt_module_add_child(m, "conv2", conv(planes, planes, 3, stride)) &&
             mt_module_add_child(m, "bn2", bn(planes)) && mt_module_add_child(m, "conv3", conv(planes, out, 1, 1)) &&
             mt_module_add_child(m, "bn3", bn(out));
    else
        ok = mt_module_add_child(m, "conv1", conv(in, planes, 3, stride)) && mt_module_add_child(m, "bn1", bn(planes)) &&
             mt_module_add_child(m, "conv2", conv(planes, planes, 3, 1)) && mt_module_add_child(m, "bn2", bn(planes));
    if (ok && (stride != 1 || in != out))
        ok = mt_module_add_child(m, "downsample", mt_nn_sequential(conv(in, out, 1, stride), bn(out))) != NULL;
    if (ok && zero_init_residual)
        ok = mt_zero_(mt_module_param(mt_vision_child(m, bottleneck ? "bn3" : "bn2"), "weight")) == MT_OK;
    if (!ok) { mt_module_free(m); return NULL; }
    return m;
}

/* ---------------------------------------------------------------- the network */
static mt_status resnet_forward_n(mt_module *m, int n_in, mt_tensor *const *in, mt_tensor **out)
{
    (void)n_in;
    mt_tensor *x = mt_relu(mt_forward(mt_vision_child(m, "bn1"), mt_forward(mt_vision_child(m, "conv1"), in[0])));
    mt_module *pool = mt_vision_child(m, "maxpool");
    if (pool) x = mt_forward(pool, x);
    char name[16];
    for (int l = 1; l <= 4; l++) {
        snprintf(name, sizeof name, "layer%d", l);
        x = mt_forward(mt_vision_child(m, name), x);
    }
    mt_tensor *embedding = mt_flatten(mt_forward(mt_vision_child(m, "avgpool"), x), 1, -1);
    mt_tensor *logits = mt_forward(mt_vision_child(m, "fc"), embedding);
    if (!logits) return mt_last_status();
    out[0] = logits;
    out[1] = embedding;
    return MT_OK;
}

static mt_tensor *resnet_forward(mt_module *m, mt_tensor *x)
{
    mt_tensor *out[2];
    return resnet_forward_n(m, 1, &x, out) == MT_OK ? out[0] : NULL;
}

static const mt_module_type_n resnet_type = { { "ResNet", resnet_forward, NULL, NULL }, resnet_forward_n, 2 };

mt_module *mt_resnet(mt_resnet_opts o)
{
    if (o.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "ResNet: options must start from MT_RESNET_DEFAULTS(depth, classes)");
        return NULL;
    }
    static const int depths[][5] = { { 18, 2, 2, 2, 2 }, { 34, 3, 4, 6, 3 }, { 50, 3, 4, 6, 3 },
                                     { 101, 3, 4, 23, 3 }, { 152, 3, 8, 36, 3 } };
    const int *blocks = NULL;
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++)
        if (depths[i][0] == o.depth) blocks = depths[i] + 1;
    if (!blocks || o.num_classes < 1 || o.in_channels < 1 || o.width < 1) {
        mt_set_error(MT_ERR_ARGUMENT, "ResNet: depth must be 18, 34, 50, 101 or 152 (got %d), and the classes, input "
                     "channels and width >= 1", o.depth);
        return NULL;
    }
    bool bottleneck = o.depth >= 50;
    int64_t expansion = bottleneck ? 4 : 1;
    mt_vision_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new_n(&resnet_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "ResNet: out of memory"); return NULL; }
    impl->embedding_dim = 8 * o.width * expansion;
    bool ok = mt_module_add_child(m, "conv1", o.small_stem ? conv(o.in_channels, o.width, 3, 1)
                                                           : conv(o.in_channels, o.width, 7, 2)) &&
              mt_module_add_child(m, "bn1", bn(o.width)) && mt_module_add_child(m, "relu", mt_nn_relu());
    if (ok && !o.small_stem) {
        mt_max_pool2d_opts p = MT_MAX_POOL2D_DEFAULTS(3, 3);
        p.stride[0] = p.stride[1] = 2;
        p.padding[0] = p.padding[1] = 1;
        ok = mt_module_add_child(m, "maxpool", mt_nn_max_pool2d(p)) != NULL;
    }
    int64_t in = o.width;
    for (int l = 0; l < 4 && ok; l++) {
        int64_t planes = o.width << l;
        mt_module *stage = mt_nn_sequential_array(0, NULL);
        for (int b = 0; b < blocks[l] && stage; b++) {
            stage = mt_nn_sequential_append(stage, block(bottleneck, in, planes, b == 0 && l > 0 ? 2 : 1,
                                                         o.zero_init_residual));
            in = planes * expansion;
        }
        char name[16];
        snprintf(name, sizeof name, "layer%d", l + 1);
        ok = mt_module_add_child(m, name, stage) != NULL;
    }
    ok = ok && mt_module_add_child(m, "avgpool", mt_nn_adaptive_avg_pool2d(1, 1)) &&
         mt_module_add_child(m, "fc", mt_nn_linear(in, o.num_classes, true));
    if (!ok) { mt_module_free(m); return NULL; }
    return m;
}

int64_t mt_vision_embedding_dim(const mt_module *net)
{
    if (!net || (strcmp(net->type->name, "ResNet") != 0 && strcmp(net->type->name, "ConvNeXt") != 0)) {
        mt_set_error(MT_ERR_ARGUMENT, "vision: not a ResNet or ConvNeXt");
        return -1;
    }
    return ((const mt_vision_impl *)net->impl)->embedding_dim;
}
