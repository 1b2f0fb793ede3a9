/*
 * nn_norm.c - LayerNorm and GroupNorm (nn.h), over mt_layer_norm,
 * mt_layer_norm_channels_first and mt_group_norm (engine/ops/op_norm.c;
 * docs/ops-norm.md has the formulas). BatchNorm1d and BatchNorm2d are in
 * nn_layers.c.
 *
 * Parameters and their names are PyTorch's, so that state dicts match:
 * "weight" (ones) and "bias" (zeros), of normalized_shape for LayerNorm and
 * [num_channels] for GroupNorm; f32 like every module's.
 */
#include "engine/internal.h"
#include "mytorch/nn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* A shape as Python prints a tuple: (96,) or (4, 5). */
static void tuple_text(int n, const int64_t *shape, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < n && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (used < size) snprintf(buf + used, size - used, n == 1 ? ",)" : ")");
}

/* Adds "weight" (ones) and, with bias, "bias" (zeros) of shape; false on failure. */
static bool add_affine(mt_module *m, int n, const int64_t *shape, bool bias)
{
    return mt_module_add_param(m, "weight", mt_ones(MT_F32, n, shape)) &&
           (!bias || mt_module_add_param(m, "bias", mt_zeros(MT_F32, n, shape)));
}

/* ---------------------------------------------------------------- LayerNorm */
/* y = (x - mean) / sqrt(var + eps) * weight + bias over each row of the last
   n dims (channels_first: over dim 1 of [N, C, *], ConvNeXt's LayerNorm2d). */
typedef struct ln_impl {
    int n;
    int64_t shape[MT_MAX_DIMS];
    double eps;
    bool affine, channels_first;
} ln_impl;

static mt_tensor *ln_forward(mt_module *m, mt_tensor *x)
{
    const ln_impl *ln = m->impl;
    mt_tensor *w = mt_module_param(m, "weight"), *b = mt_module_param(m, "bias");
    if (ln->channels_first) return mt_layer_norm_channels_first(x, w, b, ln->eps);
    return mt_layer_norm(x, ln->n, ln->shape, w, b, ln->eps);
}

static void ln_repr(const mt_module *m, char *buf, size_t size)
{
    const ln_impl *ln = m->impl;
    char shape[160];
    tuple_text(ln->n, ln->shape, shape, sizeof shape);
    snprintf(buf, size, "%s, eps=%g, elementwise_affine=%s", shape, ln->eps, ln->affine ? "True" : "False");
}

static const mt_module_type ln_type = { "LayerNorm", ln_forward, NULL, ln_repr };
static const mt_module_type ln2d_type = { "LayerNorm2d", ln_forward, NULL, ln_repr };

mt_module *mt_nn_layer_norm(int n_dims, const int64_t *normalized_shape, mt_ln_opts opts)
{
    const char *name = opts.channels_first ? "LayerNorm2d" : "LayerNorm";
    if (opts.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: options must start from MT_LN_DEFAULTS (every field is used as given, "
                     "zero included; docs/options.md)", name);
        return NULL;
    }
    if (n_dims < 1 || n_dims > MT_MAX_DIMS || !normalized_shape) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: normalized_shape must have 1 to %d dims, got %d", name, MT_MAX_DIMS, n_dims);
        return NULL;
    }
    if (opts.channels_first && n_dims != 1) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: channels_first normalizes over one dim (C), got normalized_shape of %d dims",
                     name, n_dims);
        return NULL;
    }
    if (mt_shape_check(name, n_dims, normalized_shape, sizeof(float)) < 0) return NULL;
    if (!(opts.eps >= 0)) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: need eps >= 0, got %g", name, opts.eps);
        return NULL;
    }
    ln_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(opts.channels_first ? &ln2d_type : &ln_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "%s: out of memory", name); return NULL; }
    *impl = (ln_impl){ .n = n_dims, .eps = opts.eps, .affine = opts.elementwise_affine,
                       .channels_first = opts.channels_first };
    for (int d = 0; d < n_dims; d++) impl->shape[d] = normalized_shape[d];
    if (impl->affine && !add_affine(m, n_dims, normalized_shape, opts.bias)) { mt_module_free(m); return NULL; }
    return m;
}

/* ---------------------------------------------------------------- GroupNorm */
typedef struct gn_impl { int64_t num_groups, num_channels; double eps; bool affine; } gn_impl;

static mt_tensor *gn_forward(mt_module *m, mt_tensor *x)
{
    const gn_impl *gn = m->impl;
    char s[128];
    if (x->ndim < 2 || x->shape[1] != gn->num_channels) {
        mt_set_error(MT_ERR_SHAPE, "GroupNorm: input %s must be [N, %" PRId64 ", *]", mt_shape_str(x, s, sizeof s),
                     gn->num_channels);
        return NULL;
    }
    return mt_group_norm(x, gn->num_groups, mt_module_param(m, "weight"), mt_module_param(m, "bias"), gn->eps);
}

static void gn_repr(const mt_module *m, char *buf, size_t size)
{
    const gn_impl *gn = m->impl;
    snprintf(buf, size, "%" PRId64 ", %" PRId64 ", eps=%g, affine=%s", gn->num_groups, gn->num_channels, gn->eps,
             gn->affine ? "True" : "False");
}

static const mt_module_type gn_type = { "GroupNorm", gn_forward, NULL, gn_repr };

mt_module *mt_nn_group_norm(int64_t num_groups, int64_t num_channels, mt_gn_opts opts)
{
    if (opts.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "GroupNorm: options must start from MT_GN_DEFAULTS (every field is used as "
                     "given, zero included; docs/options.md)");
        return NULL;
    }
    if (num_groups < 1 || num_channels < 1 || num_channels % num_groups != 0) {
        mt_set_error(MT_ERR_ARGUMENT, "GroupNorm: num_channels must be divisible by num_groups (both positive), "
                     "got num_groups=%" PRId64 ", num_channels=%" PRId64, num_groups, num_channels);
        return NULL;
    }
    if (!(opts.eps >= 0)) {
        mt_set_error(MT_ERR_ARGUMENT, "GroupNorm: need eps >= 0, got %g", opts.eps);
        return NULL;
    }
    gn_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(&gn_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "GroupNorm: out of memory"); return NULL; }
    *impl = (gn_impl){ num_groups, num_channels, opts.eps, opts.affine };
    if (impl->affine && !add_affine(m, 1, &num_channels, true)) { mt_module_free(m); return NULL; }
    return m;
}
