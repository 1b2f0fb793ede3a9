/*
 * nn_embedding.c - the Embedding module (PyTorch's nn.Embedding): a lookup
 * table of num_embeddings rows of embedding_dim, applied with mt_embedding.
 *
 * Parameter "weight" [num_embeddings, embedding_dim], f32, drawn from N(0, 1)
 * (PyTorch's reset_parameters: init.normal_), with the padding row zeroed
 * (and kept out of the gradient by mt_embedding). padding_idx < 0 means none;
 * PyTorch's negative padding_idx (counted from the end) is
 * num_embeddings + padding_idx here.
 */
#include "engine/internal.h"
#include "mytorch/nn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct embedding_impl { int64_t num_embeddings, embedding_dim, padding_idx; } embedding_impl;

static mt_tensor *embedding_forward(mt_module *m, mt_tensor *x)
{
    const embedding_impl *e = m->impl;
    return mt_embedding(mt_module_param(m, "weight"), x, e->padding_idx);
}

static void embedding_repr(const mt_module *m, char *buf, size_t size)
{
    const embedding_impl *e = m->impl;
    int w = snprintf(buf, size, "%" PRId64 ", %" PRId64, e->num_embeddings, e->embedding_dim);
    if (e->padding_idx >= 0 && w > 0 && (size_t)w < size)
        snprintf(buf + w, size - (size_t)w, ", padding_idx=%" PRId64, e->padding_idx);
}

static const mt_module_type embedding_type = { "Embedding", embedding_forward, NULL, embedding_repr };

/* Zeroes row r of the 2-d w in place (no tape). */
static mt_status zero_row(mt_tensor *w, int64_t r)
{
    mt_tensor *row = mt_new_view(w, 1, &w->shape[1], &w->stride[1], w->offset + r * w->stride[0]);
    if (!row) return mt_last_status();
    mt_status st = mt_zero_(row);
    mt_free(row);
    return st;
}

mt_module *mt_nn_embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx)
{
    if (num_embeddings < 0 || embedding_dim < 0) {
        mt_set_error(MT_ERR_ARGUMENT, "Embedding: sizes must be >= 0, got num_embeddings=%" PRId64
                     ", embedding_dim=%" PRId64, num_embeddings, embedding_dim);
        return NULL;
    }
    if (padding_idx >= num_embeddings) {
        mt_set_error(MT_ERR_ARGUMENT, "Embedding: padding_idx %" PRId64 " is out of range for %" PRId64
                     " embeddings (a negative padding_idx means none)", padding_idx, num_embeddings);
        return NULL;
    }
    embedding_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(&embedding_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "Embedding: out of memory"); return NULL; }
    *impl = (embedding_impl){ num_embeddings, embedding_dim, padding_idx < 0 ? -1 : padding_idx };

    mt_tensor *w = mt_empty(MT_F32, MT_SHAPE(num_embeddings, embedding_dim));
    bool ok = w && mt_normal_(w, NULL, 0, 1) == MT_OK && (padding_idx < 0 || zero_row(w, padding_idx) == MT_OK);
    if (!ok) { mt_free(w); mt_module_free(m); return NULL; }
    if (!mt_module_add_param(m, "weight", w)) { mt_module_free(m); return NULL; }
    return m;
}
