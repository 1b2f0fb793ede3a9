/*
 * convnext.c - ConvNeXt (Liu et al. 2022) as torchvision builds it:
 *
 *   features.0      stem: Conv2d(in, dims[0], k = s = patch) -> LayerNorm2d
 *   features.1      stage 0: depths[0] blocks of dims[0] channels
 *   features.2      downsample: LayerNorm2d -> Conv2d(dims[0], dims[1], k = s = 2)
 *   features.3 ...  stage 1, and so on
 *   avgpool (global) -> classifier: LayerNorm2d -> Flatten (= the embedding) -> Linear (= the logits)
 *
 *   block (CNBlock): x + stochastic_depth(layer_scale * f(x)),
 *     f = Conv2d 7x7 depthwise (pad 3) -> permute to channels last -> LayerNorm(C, eps 1e-6)
 *         -> Linear(C, 4C) -> GELU -> Linear(4C, C) -> permute back
 *   layer_scale [C, 1, 1] starts at layer_scale_init; stochastic depth drops a
 *   whole sample's branch with probability p in training (keeping the rest
 *   scaled by 1 / (1 - p)), p rising linearly from 0 to stochastic_depth over
 *   the blocks.
 *
 * LayerNorm2d normalizes the channels of [N, C, H, W] (mt_nn_layer_norm with
 * channels_first); every LayerNorm has eps 1e-6. Conv2d and Linear weights
 * start as trunc_normal_(std 0.02), biases at 0, as torchvision does.
 */
#include "models/vision/vision_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>



/* ---------------------------------------------------------------- Permute (torchvision.ops.Permute) */
typedef struct permute_impl { int dims[4]; } permute_impl;

static mt_tensor *permute_forward(mt_module *m, mt_tensor *x)
{
    return mt_permute(x, ((const permute_impl *)m->impl)->dims);
}

static void permute_repr(const mt_module *m, char *buf, size_t size)
{
    const int *d = ((const permute_impl *)m->impl)->dims;
    snprintf(buf, size, "dims=[%d, %d, %d, %d]", d[0], d[1], d[2], d[3]);
}

static const mt_module_type permute_type = { "Permute", permute_forward, NULL, permute_repr };

static mt_module *permute(int a, int b, int c, int d)
{
    permute_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(&permute_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "Permute: out of memory"); return NULL; }
    *impl = (permute_impl){ { a, b, c, d } };
    return m;
}

/* ---------------------------------------------------------------- layers with ConvNeXt's init */
static mt_module *init_trunc(mt_module *m)
{
    mt_tensor *w = m ? mt_module_param(m, "weight") : NULL, *b = m ? mt_module_param(m, "bias") : NULL;
    if (m && (mt_init_trunc_normal_(w, NULL, 0, 0.02, -2, 2) != MT_OK || (b && mt_zero_(b) != MT_OK))) {
        mt_module_free(m);
        return NULL;
    }
    return m;
}

static mt_module *conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t groups)
{
    mt_conv_opts o = MT_CONV_DEFAULTS;
    o.stride[0] = o.stride[1] = stride;
    o.padding[0] = o.padding[1] = pad;
    o.groups = groups;
    return init_trunc(mt_nn_conv2d(in, out, k, k, true, o));
}

static mt_module *layer_norm(int64_t channels, bool channels_first)
{
    mt_ln_opts o = MT_LN_DEFAULTS;
    o.eps = 1e-6;
    o.channels_first = channels_first;
    return mt_nn_layer_norm(1, (int64_t[]){ channels }, o);
}

/* ---------------------------------------------------------------- CNBlock */
typedef struct block_impl { double drop; mt_generator *gen; } block_impl;

static mt_tensor *block_forward(mt_module *m, mt_tensor *x)
{
    const block_impl *b = m->impl;
    mt_tensor *y = mt_forward(mt_vision_child(m, "block"), x);
    mt_tensor *scale = mt_module_param(m, "layer_scale");
    if (scale) y = mt_mul(y, scale);
    if (y && m->training && b->drop > 0) {
        /* one keep-or-drop per sample: dropout of a [N, 1, 1, 1] tensor of ones */
        mt_tensor *ones = mt_empty_on(mt_device_of(x), x->dtype, 4, (int64_t[]){ x->shape[0], 1, 1, 1 });
        if (!ones || mt_fill_(ones, 1) != MT_OK) return NULL;
        y = mt_mul(y, mt_dropout(ones, b->drop, true, b->gen));
    }
    return mt_add(x, y);
}

static void block_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "stochastic_depth=%g", ((const block_impl *)m->impl)->drop);
}

static const mt_module_type block_type = { "CNBlock", block_forward, NULL, block_repr };

static mt_module *block(int64_t dim, double layer_scale, double drop, mt_generator *gen)
{
    block_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(&block_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "CNBlock: out of memory"); return NULL; }
    *impl = (block_impl){ drop, gen };
    mt_module *f = mt_nn_sequential(conv(dim, dim, 7, 1, 3, dim), permute(0, 2, 3, 1), layer_norm(dim, false),
                                    init_trunc(mt_nn_linear(dim, 4 * dim, true)), mt_nn_gelu(MT_GELU_ERF),
                                    init_trunc(mt_nn_linear(4 * dim, dim, true)), permute(0, 3, 1, 2));
    bool ok = mt_module_add_child(m, "block", f) != NULL;
    if (ok && layer_scale > 0) {
        mt_tensor *s = mt_module_add_param(m, "layer_scale", mt_full(MT_F32, 3, (int64_t[]){ dim, 1, 1 }, layer_scale));
        ok = s != NULL;
    }
    if (!ok) { mt_module_free(m); return NULL; }
    return m;
}

/* ---------------------------------------------------------------- the network */
static mt_status convnext_forward_n(mt_module *m, int n_in, mt_tensor *const *in, mt_tensor **out)
{
    (void)n_in;
    mt_tensor *x = mt_forward(mt_vision_child(m, "features"), in[0]);
    x = mt_forward(mt_vision_child(m, "avgpool"), x);
    mt_module *head = mt_vision_child(m, "classifier");   /* LayerNorm2d, Flatten, Linear */
    mt_tensor *embedding = mt_forward(head->children[1], mt_forward(head->children[0], x));
    mt_tensor *logits = mt_forward(head->children[2], embedding);
    if (!logits) return mt_last_status();
    out[0] = logits;
    out[1] = embedding;
    return MT_OK;
}

static mt_tensor *convnext_forward(mt_module *m, mt_tensor *x)
{
    mt_tensor *out[2];
    return convnext_forward_n(m, 1, &x, out) == MT_OK ? out[0] : NULL;
}

static const mt_module_type_n convnext_type = { { "ConvNeXt", convnext_forward, NULL, NULL }, convnext_forward_n, 2 };

mt_module *mt_convnext(mt_convnext_opts o)
{
    if (o.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "ConvNeXt: options must start from MT_CONVNEXT_DEFAULTS(classes)");
        return NULL;
    }
    bool valid = o.n_stages >= 1 && o.n_stages <= 4 && o.num_classes >= 1 && o.in_channels >= 1 && o.stem_patch >= 1 &&
                 o.layer_scale_init >= 0 && o.stochastic_depth >= 0 && o.stochastic_depth < 1;
    int total = 0;
    for (int s = 0; valid && s < o.n_stages; s++) {
        valid = o.depths[s] >= 1 && o.dims[s] >= 1;
        total += o.depths[s];
    }
    if (!valid) {
        mt_set_error(MT_ERR_ARGUMENT, "ConvNeXt: need 1 to 4 stages of depth and dim >= 1, classes, input channels "
                     "and patch >= 1, layer scale >= 0 and stochastic depth in [0, 1)");
        return NULL;
    }
    mt_vision_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new_n(&convnext_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "ConvNeXt: out of memory"); return NULL; }
    int64_t last = o.dims[o.n_stages - 1];
    impl->embedding_dim = last;
    mt_module *features = mt_nn_sequential(mt_nn_sequential(conv(o.in_channels, o.dims[0], o.stem_patch,
                                                                 o.stem_patch, 0, 1),
                                                            layer_norm(o.dims[0], true)));
    int index = 0;
    for (int s = 0; s < o.n_stages && features; s++) {
        if (s > 0)
            features = mt_nn_sequential_append(features, mt_nn_sequential(layer_norm(o.dims[s - 1], true),
                                                                          conv(o.dims[s - 1], o.dims[s], 2, 2, 0, 1)));
        mt_module *stage = mt_nn_sequential_array(0, NULL);
        for (int b = 0; b < o.depths[s] && stage; b++, index++) {
            double p = total > 1 ? o.stochastic_depth * index / (total - 1) : 0;
            stage = mt_nn_sequential_append(stage, block(o.dims[s], o.layer_scale_init, p, o.gen));
        }
        features = mt_nn_sequential_append(features, stage);
    }
    bool ok = mt_module_add_child(m, "features", features) &&
              mt_module_add_child(m, "avgpool", mt_nn_adaptive_avg_pool2d(1, 1)) &&
              mt_module_add_child(m, "classifier",
                                  mt_nn_sequential(layer_norm(last, true), mt_nn_flatten(1, -1),
                                                   init_trunc(mt_nn_linear(last, o.num_classes, true))));
    if (!ok) { mt_module_free(m); return NULL; }
    return m;
}
