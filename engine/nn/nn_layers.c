/*
 * nn_layers.c - the layers of nn.h: Linear, BatchNorm1d and BatchNorm2d,
 * Dropout, the activations and Sequential (LayerNorm and GroupNorm are in
 * nn_norm.c). Each is a module type (forward, destroy, extra_repr) over the
 * functional ops of ops.h.
 *
 * Parameters are f32, like PyTorch's default dtype.
 */
#include "engine/internal.h"
#include "mytorch/nn.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The settings of the simple layers (activations, dropout, softmax). */
typedef struct layer_args {
    double a, b;             /* slope, alpha, p, beta / threshold, ... */
    int dim;
    mt_gelu_approx approx;
    mt_generator *gen;       /* Dropout: the generator of its masks (borrowed; NULL: the default one) */
} layer_args;

static mt_module *new_with_args(const mt_module_type *type, layer_args args)
{
    layer_args *impl = malloc(sizeof *impl);
    if (!impl) { mt_set_error(MT_ERR_MEMORY, "%s: out of memory", type->name); return NULL; }
    *impl = args;
    mt_module *m = mt_module_new(type, impl);
    if (!m) free(impl);
    return m;
}

static const layer_args *args_of(const mt_module *m) { return m->impl; }

/* ---------------------------------------------------------------- Linear */
/* y = x W^T + b,  W [out, in], b [out].
   PyTorch's reset_parameters: kaiming_uniform_(W, a = sqrt(5)), i.e.
   gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / in) = 1 / sqrt(in);
   b ~ U(-1/sqrt(in), 1/sqrt(in)). */
typedef struct linear_impl { int64_t in_features, out_features; } linear_impl;

static mt_tensor *linear_forward(mt_module *m, mt_tensor *x)
{
    return mt_linear(x, mt_module_param(m, "weight"), mt_module_param(m, "bias"));
}

static void linear_repr(const mt_module *m, char *buf, size_t size)
{
    const linear_impl *l = m->impl;
    snprintf(buf, size, "in_features=%" PRId64 ", out_features=%" PRId64 ", bias=%s",
             l->in_features, l->out_features, mt_module_param(m, "bias") ? "True" : "False");
}

static const mt_module_type linear_type = { "Linear", linear_forward, NULL, linear_repr };

mt_module *mt_nn_linear(int64_t in_features, int64_t out_features, bool bias)
{
    if (in_features < 0 || out_features < 0) {
        mt_set_error(MT_ERR_ARGUMENT, "Linear: features must be >= 0, got in=%" PRId64 ", out=%" PRId64,
                     in_features, out_features);
        return NULL;
    }
    linear_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(&linear_type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "Linear: out of memory"); return NULL; }
    *impl = (linear_impl){ in_features, out_features };

    mt_tensor *w = mt_module_add_param(m, "weight", mt_empty(MT_F32, MT_SHAPE(out_features, in_features)));
    bool ok = w && mt_init_kaiming_uniform_(w, NULL, sqrt(5.0), MT_FAN_IN, "leaky_relu") == MT_OK;
    if (ok && bias) {
        double bound = in_features > 0 ? 1.0 / sqrt((double)in_features) : 0;
        mt_tensor *b = mt_module_add_param(m, "bias", mt_empty(MT_F32, MT_SHAPE(out_features)));
        ok = b && mt_uniform_(b, NULL, -bound, bound) == MT_OK;
    }
    if (!ok) { mt_module_free(m); return NULL; }
    return m;
}

/* ---------------------------------------------------------------- BatchNorm1d, BatchNorm2d */
/* Training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias over the batch
   (and length, or height and width) of each channel, with the biased batch
   variance; the running stats move by  r = (1 - momentum) r + momentum * stat_B
   (unbiased variance). Eval: the running stats replace the batch's.
   BatchNorm1d takes [N, C] or [N, C, L], BatchNorm2d [N, C, H, W]; both are
   mt_batch_norm, which views x as [N, C, prod(rest)]. */
typedef struct bn_impl { int64_t num_features; double eps, momentum; bool cumulative, affine, track, two_d; } bn_impl;

static mt_tensor *bn_forward(mt_module *m, mt_tensor *x)
{
    const bn_impl *bn = m->impl;
    char s[128];
    bool dims_ok = bn->two_d ? x->ndim == 4 : x->ndim == 2 || x->ndim == 3;
    if (!dims_ok || x->shape[1] != bn->num_features) {
        if (bn->two_d)
            mt_set_error(MT_ERR_SHAPE, "BatchNorm2d: input %s must be [N, %" PRId64 ", H, W]",
                         mt_shape_str(x, s, sizeof s), bn->num_features);
        else
            mt_set_error(MT_ERR_SHAPE, "BatchNorm1d: input %s must be [N, %" PRId64 "] or [N, %" PRId64 ", L]",
                         mt_shape_str(x, s, sizeof s), bn->num_features, bn->num_features);
        return NULL;
    }
    mt_tensor *running_mean = mt_module_buffer(m, "running_mean"), *running_var = mt_module_buffer(m, "running_var");
    bool use_batch_stats = m->training || !bn->track;
    double momentum = bn->momentum;
    if (m->training && bn->track) {   /* PyTorch counts the batches seen in training, before using the count */
        mt_tensor *count = mt_module_buffer(m, "num_batches_tracked");
        double seen = mt_item(count) + 1;
        if (mt_fill_(count, seen) != MT_OK) return NULL;
        if (bn->cumulative) momentum = 1.0 / seen;   /* running stats = the average over all batches */
    }
    return mt_batch_norm(x, running_mean, running_var, mt_module_param(m, "weight"),
                         mt_module_param(m, "bias"), use_batch_stats, momentum, bn->eps);
}

static void bn_repr(const mt_module *m, char *buf, size_t size)
{
    const bn_impl *bn = m->impl;
    char momentum[32];
    if (bn->cumulative) snprintf(momentum, sizeof momentum, "None");
    else snprintf(momentum, sizeof momentum, "%g", bn->momentum);
    snprintf(buf, size, "%" PRId64 ", eps=%g, momentum=%s, affine=%s, track_running_stats=%s", bn->num_features,
             bn->eps, momentum, bn->affine ? "True" : "False", bn->track ? "True" : "False");
}

static const mt_module_type bn1d_type = { "BatchNorm1d", bn_forward, NULL, bn_repr };
static const mt_module_type bn2d_type = { "BatchNorm2d", bn_forward, NULL, bn_repr };

/* Either batch norm: the same options, parameters and buffers (PyTorch's names). */
static mt_module *batch_norm_new(const mt_module_type *type, bool two_d, int64_t num_features, mt_bn_opts opts)
{
    const char *name = type->name;
    if (num_features <= 0) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: num_features must be positive, got %" PRId64, name, num_features);
        return NULL;
    }
    if (opts.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: options must start from MT_BN_DEFAULTS (every field is used as "
                     "given, zero included; docs/options.md)", name);
        return NULL;
    }
    if (!(opts.eps >= 0) || !(opts.momentum >= 0 && opts.momentum <= 1)) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: need eps >= 0 and momentum in [0, 1], got eps=%g, momentum=%g",
                     name, opts.eps, opts.momentum);
        return NULL;
    }
    bn_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "%s: out of memory", name); return NULL; }
    *impl = (bn_impl){ num_features, opts.eps, opts.momentum, opts.cumulative_average, opts.affine,
                       opts.track_running_stats, two_d };
    bool ok = true;
    if (impl->affine)
        ok = mt_module_add_param(m, "weight", mt_ones(MT_F32, MT_SHAPE(num_features))) &&
             mt_module_add_param(m, "bias", mt_zeros(MT_F32, MT_SHAPE(num_features)));
    if (ok && impl->track)
        ok = mt_module_add_buffer(m, "running_mean", mt_zeros(MT_F32, MT_SHAPE(num_features))) &&
             mt_module_add_buffer(m, "running_var", mt_ones(MT_F32, MT_SHAPE(num_features))) &&
             mt_module_add_buffer(m, "num_batches_tracked", mt_zeros(MT_I64, 0, NULL));
    if (!ok) { mt_module_free(m); return NULL; }
    return m;
}

mt_module *mt_nn_batch_norm1d(int64_t num_features, mt_bn_opts opts)
{
    return batch_norm_new(&bn1d_type, false, num_features, opts);
}

mt_module *mt_nn_batch_norm2d(int64_t num_features, mt_bn_opts opts)
{
    return batch_norm_new(&bn2d_type, true, num_features, opts);
}

/* ---------------------------------------------------------------- Dropout */
static mt_tensor *dropout_forward(mt_module *m, mt_tensor *x)
{
    return mt_dropout(x, args_of(m)->a, m->training, args_of(m)->gen);
}
static void dropout_repr(const mt_module *m, char *buf, size_t size) { snprintf(buf, size, "p=%g", args_of(m)->a); }
static const mt_module_type dropout_type = { "Dropout", dropout_forward, NULL, dropout_repr };

mt_module *mt_nn_dropout(double p) { return mt_nn_dropout_gen(p, NULL); }

mt_module *mt_nn_dropout_gen(double p, mt_generator *gen)
{
    if (!(p >= 0 && p <= 1)) {
        mt_set_error(MT_ERR_ARGUMENT, "Dropout: probability must be in [0, 1], got %g", p);
        return NULL;
    }
    return new_with_args(&dropout_type, (layer_args){ .a = p, .gen = gen });
}

/* ---------------------------------------------------------------- activations */
static mt_tensor *identity_forward(mt_module *m, mt_tensor *x) { (void)m; return mt_identity(x); }
static mt_tensor *sigmoid_forward(mt_module *m, mt_tensor *x) { (void)m; return mt_sigmoid(x); }
static mt_tensor *tanh_forward(mt_module *m, mt_tensor *x) { (void)m; return mt_tanh(x); }
static mt_tensor *relu_forward(mt_module *m, mt_tensor *x) { (void)m; return mt_relu(x); }
static mt_tensor *silu_forward(mt_module *m, mt_tensor *x) { (void)m; return mt_silu(x); }
static mt_tensor *leaky_relu_forward(mt_module *m, mt_tensor *x) { return mt_leaky_relu(x, args_of(m)->a); }
static mt_tensor *elu_forward(mt_module *m, mt_tensor *x) { return mt_elu(x, args_of(m)->a); }
static mt_tensor *gelu_forward(mt_module *m, mt_tensor *x) { return mt_gelu(x, args_of(m)->approx); }
static mt_tensor *softplus_forward(mt_module *m, mt_tensor *x) { return mt_softplus(x, args_of(m)->a, args_of(m)->b); }
static mt_tensor *softmax_forward(mt_module *m, mt_tensor *x) { return mt_softmax(x, args_of(m)->dim); }
static mt_tensor *log_softmax_forward(mt_module *m, mt_tensor *x) { return mt_log_softmax(x, args_of(m)->dim); }
static mt_tensor *flatten_forward(mt_module *m, mt_tensor *x) { return mt_flatten(x, args_of(m)->dim, (int)args_of(m)->a); }
static void flatten_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "start_dim=%d, end_dim=%d", args_of(m)->dim, (int)args_of(m)->a);
}
static const mt_module_type flatten_type = { "Flatten", flatten_forward, NULL, flatten_repr };
mt_module *mt_nn_flatten(int start_dim, int end_dim)
{
    return new_with_args(&flatten_type, (layer_args){ .dim = start_dim, .a = end_dim });
}

/* swish(x) = x * sigmoid(beta x) with beta a learnable scalar */
static mt_tensor *swish_forward(mt_module *m, mt_tensor *x) { return mt_swish(x, mt_module_param(m, "beta")); }

static void leaky_relu_repr(const mt_module *m, char *buf, size_t size) { snprintf(buf, size, "negative_slope=%g", args_of(m)->a); }
static void elu_repr(const mt_module *m, char *buf, size_t size) { snprintf(buf, size, "alpha=%g", args_of(m)->a); }
static void gelu_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "approximate='%s'", args_of(m)->approx == MT_GELU_TANH ? "tanh" : "none");
}
static void softplus_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "beta=%g, threshold=%g", args_of(m)->a, args_of(m)->b);
}
static void dim_repr(const mt_module *m, char *buf, size_t size) { snprintf(buf, size, "dim=%d", args_of(m)->dim); }

static const mt_module_type identity_type = { "Identity", identity_forward, NULL, NULL };
static const mt_module_type sigmoid_type = { "Sigmoid", sigmoid_forward, NULL, NULL };
static const mt_module_type tanh_type = { "Tanh", tanh_forward, NULL, NULL };
static const mt_module_type relu_type = { "ReLU", relu_forward, NULL, NULL };
static const mt_module_type silu_type = { "SiLU", silu_forward, NULL, NULL };
static const mt_module_type leaky_relu_type = { "LeakyReLU", leaky_relu_forward, NULL, leaky_relu_repr };
static const mt_module_type elu_type = { "ELU", elu_forward, NULL, elu_repr };
static const mt_module_type gelu_type = { "GELU", gelu_forward, NULL, gelu_repr };
static const mt_module_type softplus_type = { "Softplus", softplus_forward, NULL, softplus_repr };
static const mt_module_type softmax_type = { "Softmax", softmax_forward, NULL, dim_repr };
static const mt_module_type log_softmax_type = { "LogSoftmax", log_softmax_forward, NULL, dim_repr };
static const mt_module_type swish_type = { "Swish", swish_forward, NULL, NULL };

mt_module *mt_nn_identity(void) { return mt_module_new(&identity_type, NULL); }
mt_module *mt_nn_sigmoid(void) { return mt_module_new(&sigmoid_type, NULL); }
mt_module *mt_nn_tanh(void) { return mt_module_new(&tanh_type, NULL); }
mt_module *mt_nn_relu(void) { return mt_module_new(&relu_type, NULL); }
mt_module *mt_nn_silu(void) { return mt_module_new(&silu_type, NULL); }
mt_module *mt_nn_leaky_relu(double negative_slope) { return new_with_args(&leaky_relu_type, (layer_args){ .a = negative_slope }); }
mt_module *mt_nn_elu(double alpha) { return new_with_args(&elu_type, (layer_args){ .a = alpha }); }
mt_module *mt_nn_gelu(mt_gelu_approx approximate) { return new_with_args(&gelu_type, (layer_args){ .approx = approximate }); }
mt_module *mt_nn_softplus(double beta, double threshold)
{
    return new_with_args(&softplus_type, (layer_args){ .a = beta, .b = threshold });
}
mt_module *mt_nn_softmax(int dim) { return new_with_args(&softmax_type, (layer_args){ .dim = dim }); }
mt_module *mt_nn_log_softmax(int dim) { return new_with_args(&log_softmax_type, (layer_args){ .dim = dim }); }

mt_module *mt_nn_swish(double beta0)
{
    mt_module *m = mt_module_new(&swish_type, NULL);
    if (m && !mt_module_add_param(m, "beta", mt_full(MT_F32, MT_SHAPE(1), beta0))) { mt_module_free(m); return NULL; }
    return m;
}

/* ---------------------------------------------------------------- Sequential */
/* y = f_n(... f_2(f_1(x))) */
static mt_tensor *sequential_forward(mt_module *m, mt_tensor *x)
{
    for (int i = 0; i < m->n_children && x; i++) x = mt_forward(m->children[i], x);
    return x;
}

static const mt_module_type sequential_type = { "Sequential", sequential_forward, NULL, NULL };

mt_module *mt_nn_sequential_append(mt_module *seq, mt_module *m)
{
    /* Takes both: on any failure both are freed, so a chain of appends is
       checked once at the end without leaking the part already built. */
    if (!seq) { mt_module_free(m); return NULL; }
    if (!m) { mt_module_free(seq); return NULL; }
    if (m == seq) { mt_module_free(seq); return (mt_set_error(MT_ERR_ARGUMENT, "sequential_append: a module cannot contain itself"), (mt_module *)NULL); }
    char name[24];
    snprintf(name, sizeof name, "%d", seq->n_children);
    if (!mt_module_add_child(seq, name, m)) { mt_module_free(seq); return NULL; }   /* add_child freed m */
    return seq;
}

mt_module *mt_nn_sequential_array(int n, mt_module *const *modules)
{
    bool all_there = n >= 0 && (n == 0 || modules);
    for (int i = 0; all_there && i < n; i++) all_there = modules[i] != NULL;
    mt_module *seq = all_there ? mt_module_new(&sequential_type, NULL) : NULL;
    if (!seq) {   /* free what was made; the failed constructor recorded why */
        for (int i = 0; modules && i < n; i++) mt_module_free(modules[i]);
        if (mt_last_status() == MT_OK) mt_set_error(MT_ERR_ARGUMENT, "Sequential: a module is NULL");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!(seq = mt_nn_sequential_append(seq, modules[i]))) {   /* freed seq and modules[i] */
            for (int j = i + 1; j < n; j++) mt_module_free(modules[j]);
            return NULL;
        }
    }
    return seq;
}

mt_module *mt_nn_sequential_n(mt_module *const *modules)
{
    int n = 0;
    while (modules && modules[n]) n++;
    return mt_nn_sequential_array(n, modules);
}
