/*
 * vision_internal.h - what resnet.c and convnext.c share: the models' impl
 * (mt_vision_embedding_dim reads it) and finding a child by name.
 */
#ifndef MT_MODELS_VISION_INTERNAL_H
#define MT_MODELS_VISION_INTERNAL_H

#include <string.h>

#include "models/vision/vision.h"

/* The impl of a ResNet and of a ConvNeXt. */
typedef struct mt_vision_impl { int64_t embedding_dim; } mt_vision_impl;

/* The child of m called name, or NULL. */
static inline mt_module *mt_vision_child(const mt_module *m, const char *name)
{
    for (int i = 0; i < m->n_children; i++)
        if (strcmp(m->child_names[i], name) == 0) return m->children[i];
    return NULL;
}

#endif
