/*
 * vision.h - image classifiers for the face task (and any image-folder
 * tree): ResNet (basic and bottleneck blocks) and ConvNeXt, laid out as
 * torchvision lays them out (module and parameter names match its state
 * dicts), each giving class logits and the embedding before the classifier
 * (the features face verification compares). docs/vision-models.md.
 */
#ifndef MT_MODELS_VISION_H
#define MT_MODELS_VISION_H

#include "mytorch/mytorch.h"

/* ResNet-18/34 (basic blocks) and -50/101/152 (bottleneck blocks, torchvision's v1.5: the stride on the 3x3). */
typedef struct mt_resnet_opts {
    int depth;                  /* 18, 34, 50, 101 or 152 */
    int64_t num_classes;
    int64_t in_channels;        /* 3 */
    int64_t width;              /* the first stage's channels: 64 (stages: width x 1, 2, 4, 8) */
    bool small_stem;            /* a 3x3/1 stem conv and no max pool, for images of 32-64 pixels
                                   (the 7x7/2 conv + 3x3/2 max pool of ImageNet otherwise) */
    bool zero_init_residual;    /* each block's last BatchNorm weight starts at 0 (torchvision's option) */
    uint32_t from_defaults;     /* set by MT_RESNET_DEFAULTS; leave it */
} mt_resnet_opts;
#define MT_RESNET_DEFAULTS(depth_, classes_) \
    ((mt_resnet_opts){ .depth = (depth_), .num_classes = (classes_), .in_channels = 3, .width = 64, \
                       .from_defaults = MT_OPTS_FROM_DEFAULTS })
mt_module *mt_resnet(mt_resnet_opts opts);

/* ConvNeXt: a patchify stem (Conv k=s=patch, LayerNorm2d), stages of blocks
   (7x7 depthwise conv, LayerNorm over channels, Linear 4x, GELU, Linear,
   layer scale, stochastic depth, residual), LayerNorm2d + 2x2/2 conv between
   stages, global average pool, LayerNorm, Linear. */
typedef struct mt_convnext_opts {
    int n_stages;               /* 1 to 4 */
    int depths[4];              /* blocks per stage */
    int64_t dims[4];            /* channels per stage */
    int64_t num_classes;
    int64_t in_channels;        /* 3 */
    int64_t stem_patch;         /* 4 */
    double layer_scale_init;    /* 1e-6; 0: no layer scale */
    double stochastic_depth;    /* the last block's drop probability, rising linearly from 0 over the blocks */
    mt_generator *gen;          /* stochastic depth's draws (borrowed; NULL: the default generator) */
    uint32_t from_defaults;     /* set by MT_CONVNEXT_DEFAULTS; leave it */
} mt_convnext_opts;
/* BENCH.md's convnext_face: depths (2, 2, 6, 2), dims (48, 96, 192, 384). */
#define MT_CONVNEXT_DEFAULTS(classes_)                                                                  \
    ((mt_convnext_opts){ .n_stages = 4, .depths = { 2, 2, 6, 2 }, .dims = { 48, 96, 192, 384 },         \
                         .num_classes = (classes_), .in_channels = 3, .stem_patch = 4,                 \
                         .layer_scale_init = 1e-6, .stochastic_depth = 0.1,                            \
                         .from_defaults = MT_OPTS_FROM_DEFAULTS })
mt_module *mt_convnext(mt_convnext_opts opts);

/* Both models: mt_forward gives the logits [N, num_classes]; mt_forward_n
   gives (logits, embedding), the embedding [N, D] being the pooled features
   the classifier reads (D = 512 for ResNet-18/34, 2048 for -50, the last
   dim of ConvNeXt, after its LayerNorm). */
int64_t mt_vision_embedding_dim(const mt_module *net);

#endif
