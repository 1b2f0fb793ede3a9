/*
 * nn.h - modules: objects that own parameters and buffers and map a tensor
 * to a tensor, or several to several (PyTorch's torch.nn). Functional forms of the same maths live
 * in ops.h (mt_linear, mt_gelu, ...); modules are named mt_nn_*.
 *
 * A module owns its parameters (leaves with requires_grad), its buffers
 * (e.g. running statistics) and its children; mt_module_free frees them all.
 * Names follow PyTorch's state_dict: "0.weight", "2.running_mean", ...
 */
#ifndef MT_NN_H
#define MT_NN_H

#include "mytorch/ops.h"
#include "mytorch/conv.h"
#include "mytorch/pool.h"

typedef struct mt_module mt_module;

/* The most outputs one module can return. */
#define MT_MODULE_MAX_OUTPUTS 8

typedef struct mt_module_type {
    const char *name;                                   /* "Linear", "Sequential", ... */
    mt_tensor *(*forward)(mt_module *m, mt_tensor *x);
    void (*destroy)(mt_module *m);                      /* frees impl; NULL: free(impl) */
    /* Writes the arguments mt_module_print shows ("in_features=2, ..."); may be NULL. */
    void (*extra_repr)(const mt_module *m, char *buf, size_t size);
} mt_module_type;

/* A module type with several inputs or outputs (a recurrent cell:
   (x, h, c) -> (h', c')); modules of it are made with mt_module_new_n.
   forward_n takes n_in inputs, none NULL (fewer inputs stand for PyTorch's
   optional arguments, e.g. a zero initial state), writes its n_outputs
   outputs into out and returns MT_OK, or an error status with a message
   naming the module and what was expected. An output may be NULL only where
   the module documents it (PyTorch's None). base.forward may be NULL:
   mt_forward then runs forward_n, when it returns one output. */
typedef struct mt_module_type_n {
    mt_module_type base;                                /* name, destroy, extra_repr, optional forward */
    mt_status (*forward_n)(mt_module *m, int n_in, mt_tensor *const *in, mt_tensor **out);
    int n_outputs;                                      /* 1 to MT_MODULE_MAX_OUTPUTS */
} mt_module_type_n;

typedef struct mt_named_tensor { char *name; mt_tensor *tensor; } mt_named_tensor;

struct mt_module {
    const mt_module_type *type;
    bool training;
    int n_params, n_buffers, n_children;
    mt_named_tensor *params;       /* owned leaves, requires_grad */
    mt_named_tensor *buffers;      /* owned, no gradient */
    char **child_names;
    mt_module **children;
    void *impl;                    /* the module type's own state */
    const mt_module_type_n *type_n; /* the same type when it has a forward_n (mt_module_new_n), else NULL */
};

/* A flat list of named tensors, e.g. every parameter of a model. The list
   owns its array and names, not the tensors. */
typedef struct mt_tensor_list {
    int n;
    mt_named_tensor *items;
} mt_tensor_list;
void mt_tensor_list_free(mt_tensor_list *list);
/* The tensor named name (PyTorch's state_dict()[name]), or NULL with an
   error naming it when the list has none. */
mt_tensor *mt_tensor_list_get(mt_tensor_list list, const char *name);

/* ---------------------------------------------------------------- the module base */
mt_module *mt_module_new(const mt_module_type *type, void *impl);
/* A module of a type with several inputs or outputs. */
mt_module *mt_module_new_n(const mt_module_type_n *type, void *impl);
/* Registers t under name and takes it (out of its scope if it was in one);
   a parameter gets requires_grad and must be a leaf. On error (NULL m,
   duplicate name, ...) NULL is returned and t freed (left to its scope when
   one holds it). add_child likewise takes child (freed on error). */
mt_tensor *mt_module_add_param(mt_module *m, const char *name, mt_tensor *t);
mt_tensor *mt_module_add_buffer(mt_module *m, const char *name, mt_tensor *t);
mt_module *mt_module_add_child(mt_module *m, const char *name, mt_module *child);
mt_tensor *mt_module_param(const mt_module *m, const char *name);   /* direct, not recursive */
mt_tensor *mt_module_buffer(const mt_module *m, const char *name);
void mt_module_free(mt_module *m);

/* y = m(x). A module that only has forward_n runs through it when it
   returns one output; otherwise this is an error that says to call
   mt_forward_n. */
mt_tensor *mt_forward(mt_module *m, mt_tensor *x);
/* outs = m(in[0], ..., in[n_in - 1]): writes the module's outputs into
   out[0..] and returns their count, or -1 on error (out is then all NULL).
   max_out is the room in out: fewer than the module's outputs is an error
   before anything runs. A NULL among the inputs (an earlier op failed)
   returns -1 and keeps that error. A module with only forward takes one
   input and gives one output. The outputs belong to the current scope. */
int mt_forward_n(mt_module *m, int n_in, mt_tensor *const *in, int max_out, mt_tensor **out);
/* Sets training mode on m and all its children. */
void mt_module_train(mt_module *m, bool training);
/* Every parameter, depth first, with dotted names (the caller frees the list). */
mt_tensor_list mt_parameters(const mt_module *m);
/* Parameters then buffers: what a checkpoint stores. */
mt_tensor_list mt_state_dict(const mt_module *m);
int64_t mt_parameter_count(const mt_module *m);
/* Frees the .grad of every parameter. */
void mt_module_zero_grad(mt_module *m);
/* Moves every parameter and buffer of m and of its children to device, in
   place (PyTorch's module.to(device)): each tensor keeps its identity, so
   pointers to it stay valid; a parameter stays a leaf with requires_grad; a
   .grad (and a forward-mode tangent) moves with its tensor; the old storage
   is freed (tensors that shared a storage get one copy each). All or
   nothing: when the device is not available (MT_ERR_DEVICE)
   or a copy fails, m is unchanged and the status is returned. Create the
   optimizer after moving the module, as in PyTorch (an optimizer's existing
   state stays where it was). */
mt_status mt_module_to(mt_module *m, mt_device device);
/* Converts every floating-point parameter and buffer of m and its children
   to dtype (MT_F32 or MT_F64), in place, with their gradients and tangents:
   PyTorch's module.double() / module.float(). Integer buffers (a batch
   norm's num_batches_tracked) keep theirs. Same rules as mt_module_to:
   tensors keep their identity and stay leaves; all or nothing; create the
   optimizer after converting (an optimizer's existing state keeps its
   dtype, and stepping it against converted parameters is not supported). */
mt_status mt_module_to_dtype(mt_module *m, mt_dtype dtype);
/* A readable tree of the module, as PyTorch prints it:
   "Sequential(\n  (0): Linear(in_features=495, out_features=1024, bias=True)\n..." */
void mt_module_print(const mt_module *m, FILE *f);

/* ---------------------------------------------------------------- layers */
/* y = x W^T + b, W [out, in] and b [out] ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default). */
mt_module *mt_nn_linear(int64_t in_features, int64_t out_features, bool bias);
/* Every field is used as given (docs/options.md): start from MT_BN_DEFAULTS. */
typedef struct mt_bn_opts {
    double eps;
    double momentum;           /* running = (1 - momentum) running + momentum batch; 0 freezes them */
    bool cumulative_average;   /* PyTorch's momentum=None: running stats are the plain average of
                                  every batch seen (momentum 1/num_batches_tracked); momentum is ignored */
    bool affine;               /* learnable weight and bias */
    bool track_running_stats;  /* false: always normalize with batch statistics */
    uint32_t from_defaults;    /* set by MT_BN_DEFAULTS; leave it */
} mt_bn_opts;
/* PyTorch's defaults: eps 1e-5, momentum 0.1, affine, tracking running stats. */
#define MT_BN_DEFAULTS ((mt_bn_opts){ .eps = 1e-5, .momentum = 0.1, .affine = true, .track_running_stats = true, \
                                      .from_defaults = MT_OPTS_FROM_DEFAULTS })
mt_module *mt_nn_batch_norm1d(int64_t num_features, mt_bn_opts opts);
/* BatchNorm2d: the same over [N, C, H, W] (statistics per channel over N, H
   and W), with the same options, parameters and buffers. */
mt_module *mt_nn_batch_norm2d(int64_t num_features, mt_bn_opts opts);
/* nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias): normalizes
   over the last n_dims dims of its input, which must be normalized_shape;
   parameters "weight" (ones) and "bias" (zeros) of normalized_shape.
   Every field is used as given: start from MT_LN_DEFAULTS. */
typedef struct mt_ln_opts {
    double eps;
    bool elementwise_affine;   /* learnable weight, and bias when `bias` is set too */
    bool bias;                 /* PyTorch's bias=True (used only with elementwise_affine) */
    bool channels_first;       /* normalize over dim 1 of [N, C, *] instead (torchvision ConvNeXt's
                                  LayerNorm2d, printed so): normalized_shape must then be (C) */
    uint32_t from_defaults;    /* set by MT_LN_DEFAULTS; leave it */
} mt_ln_opts;
/* PyTorch's defaults: eps 1e-5, elementwise_affine, bias; channels last. */
#define MT_LN_DEFAULTS ((mt_ln_opts){ .eps = 1e-5, .elementwise_affine = true, .bias = true, \
                                      .from_defaults = MT_OPTS_FROM_DEFAULTS })
/* mt_nn_layer_norm(MT_SHAPE(96), MT_LN_DEFAULTS) */
mt_module *mt_nn_layer_norm(int n_dims, const int64_t *normalized_shape, mt_ln_opts opts);
/* nn.GroupNorm(num_groups, num_channels, eps, affine): statistics per
   (sample, group of num_channels / num_groups channels) of [N, C, *];
   parameters "weight" (ones) and "bias" (zeros) of [C]. Start from MT_GN_DEFAULTS. */
typedef struct mt_gn_opts {
    double eps;
    bool affine;               /* learnable per-channel weight and bias */
    uint32_t from_defaults;    /* set by MT_GN_DEFAULTS; leave it */
} mt_gn_opts;
/* PyTorch's defaults: eps 1e-5, affine. */
#define MT_GN_DEFAULTS ((mt_gn_opts){ .eps = 1e-5, .affine = true, .from_defaults = MT_OPTS_FROM_DEFAULTS })
mt_module *mt_nn_group_norm(int64_t num_groups, int64_t num_channels, mt_gn_opts opts);
/* nn.Conv1d / nn.Conv2d: weight [out, in / groups, (kh,) kw], bias [out], initialized as
   PyTorch does (kaiming_uniform_ with a = sqrt(5); bias ~ U(+-1/sqrt(fan_in))); forward is
   mt_conv1d / mt_conv2d with opts (start from MT_CONV_DEFAULTS; conv.h). */
mt_module *mt_nn_conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias, mt_conv_opts opts);
mt_module *mt_nn_conv2d(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw, bool bias,
                        mt_conv_opts opts);
/* nn.ConvTranspose1d / 2d: weight [in, out / groups, (kh,) kw], bias [out]; opts.output_padding applies. */
mt_module *mt_nn_conv_transpose1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias,
                                  mt_conv_opts opts);
mt_module *mt_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw, bool bias,
                                  mt_conv_opts opts);
/* Zeroes each element with probability p in training mode and scales the rest
   by 1/(1-p); the identity in eval mode. The masks come from the default
   generator, or with _gen from gen (borrowed: it must outlive the module),
   so that a run owns its draws and a checkpoint can save their position. */
mt_module *mt_nn_dropout(double p);
mt_module *mt_nn_dropout_gen(double p, mt_generator *gen);
mt_module *mt_nn_identity(void);
mt_module *mt_nn_sigmoid(void);
mt_module *mt_nn_tanh(void);
mt_module *mt_nn_relu(void);
mt_module *mt_nn_leaky_relu(double negative_slope);
mt_module *mt_nn_elu(double alpha);
mt_module *mt_nn_gelu(mt_gelu_approx approximate);
mt_module *mt_nn_silu(void);
/* Swish with a learnable scalar beta (parameter "beta", initialised to beta0). */
mt_module *mt_nn_swish(double beta0);
mt_module *mt_nn_softplus(double beta, double threshold);
/* nn.Embedding: parameter "weight" [num_embeddings, embedding_dim] ~ N(0, 1), the row padding_idx
   zeroed and without gradient (padding_idx < 0: none); forward is mt_embedding (MT_I64 indices). */
mt_module *mt_nn_embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx);
mt_module *mt_nn_softmax(int dim);
mt_module *mt_nn_log_softmax(int dim);
/* Flattens dims start_dim..end_dim into one (PyTorch's nn.Flatten: (1, -1)
   keeps the batch dim); dims are checked at forward time, against the input. */
mt_module *mt_nn_flatten(int start_dim, int end_dim);
/* Pooling and resampling (engine/nn/nn_pool.c; docs/ops-pool.md): the functional ops of
   pool.h with their options kept; no parameters. The max-pool layers return the values
   (PyTorch's return_indices=False; mt_max_pool2d gives the indices too). */
mt_module *mt_nn_max_pool1d(mt_max_pool1d_opts opts);          /* nn.MaxPool1d: MT_MAX_POOL1D_DEFAULTS(k) */
mt_module *mt_nn_max_pool2d(mt_max_pool2d_opts opts);          /* nn.MaxPool2d: MT_MAX_POOL2D_DEFAULTS(kh, kw) */
mt_module *mt_nn_avg_pool1d(mt_avg_pool1d_opts opts);          /* nn.AvgPool1d */
mt_module *mt_nn_avg_pool2d(mt_avg_pool2d_opts opts);          /* nn.AvgPool2d */
mt_module *mt_nn_adaptive_avg_pool1d(int64_t out_w);           /* nn.AdaptiveAvgPool1d */
mt_module *mt_nn_adaptive_avg_pool2d(int64_t out_h, int64_t out_w);   /* nn.AdaptiveAvgPool2d((1, 1)): global pool */
mt_module *mt_nn_adaptive_max_pool2d(int64_t out_h, int64_t out_w);   /* nn.AdaptiveMaxPool2d */
/* nn.Upsample(size or scale_factor, mode, align_corners): mt_interpolate. */
mt_module *mt_nn_upsample(mt_interpolate_opts opts);
/* The course's Upsample1d/2d (zero insertion) and Downsample1d/2d (strided
   selection) by an integer factor: mt_upsample1d ... mt_downsample2d. */
mt_module *mt_nn_upsample1d(int64_t factor);
mt_module *mt_nn_upsample2d(int64_t factor);
mt_module *mt_nn_downsample1d(int64_t factor);
mt_module *mt_nn_downsample2d(int64_t factor);
/* Children run in order; the list ends with NULL. Takes ownership of them. */
mt_module *mt_nn_sequential_n(mt_module *const *modules);
/* The same with a count: a NULL among the n (a constructor that failed)
   frees the others and returns NULL, so a chain is checked once. */
mt_module *mt_nn_sequential_array(int n, mt_module *const *modules);
#define mt_nn_sequential(...) \
    mt_nn_sequential_array((int)(sizeof((mt_module *const[]){__VA_ARGS__}) / sizeof(mt_module *)), \
                           (mt_module *const[]){__VA_ARGS__})
/* Appends m to seq and returns seq; on failure frees both and returns NULL. */
mt_module *mt_nn_sequential_append(mt_module *seq, mt_module *m);

/* ---------------------------------------------------------------- initialization (in place, no tape) */
typedef enum mt_fan_mode { MT_FAN_IN, MT_FAN_OUT } mt_fan_mode;
/* gain for a nonlinearity name ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"). */
double mt_init_calculate_gain(const char *nonlinearity, double param);
mt_status mt_init_kaiming_uniform_(mt_tensor *t, mt_generator *gen, double a, mt_fan_mode mode, const char *nonlinearity);
mt_status mt_init_kaiming_normal_(mt_tensor *t, mt_generator *gen, double a, mt_fan_mode mode, const char *nonlinearity);
mt_status mt_init_xavier_uniform_(mt_tensor *t, mt_generator *gen, double gain);
mt_status mt_init_xavier_normal_(mt_tensor *t, mt_generator *gen, double gain);
/* trunc_normal_(t, mean, std, a, b): N(mean, std^2) redrawn until inside [a, b]. */
mt_status mt_init_trunc_normal_(mt_tensor *t, mt_generator *gen, double mean, double std, double a, double b);

#endif
