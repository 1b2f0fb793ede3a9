/*
 * scanning_mlp.c - the MLP of scanning_mlp.h as a 1-d CNN, two ways.
 *
 * The weight maps, with W [out, in] (PyTorch's Linear) and conv weights
 * [out, in_channels, k]:
 *   simple       conv1[o, c, t] = W1[o, t * 24 + c]       (k = 8: the layer sees the whole window)
 *                conv2[o, i, 0] = W2[o, i],  conv3[o, i, 0] = W3[o, i]
 *   distributed  conv1[f, c, k] = W1[f, k * 24 + c]       (neuron f at position 0, frames 0 and 1)
 *                conv2[g, f, k] = W2[g, k * 2 + f]        (neuron g at position 0, layer-1 positions 0, 1)
 *                conv3[h, g, k] = W3[h, k * 8 + g]
 * Biases carry over unchanged (the shared neurons' biases are equal).
 */
#include "models/scanning_mlp/scanning_mlp.h"

#include <math.h>
#include <stdlib.h>

/* The layers' (in, out) of the MLP, and of each CNN: (in_channels, out_channels, kernel, stride). */
static const int64_t mlp_layers[3][2] = { { MT_SCAN_WINDOW * MT_SCAN_FEATURES, 8 }, { 8, 16 }, { 16, 4 } };
static const int64_t simple_convs[3][4] = { { MT_SCAN_FEATURES, 8, MT_SCAN_WINDOW, MT_SCAN_STRIDE }, { 8, 16, 1, 1 },
                                            { 16, 4, 1, 1 } };
static const int64_t distributed_convs[3][4] = { { MT_SCAN_FEATURES, 2, 2, 2 }, { 2, 8, 2, 2 }, { 8, 4, 2, 1 } };

static mt_status check_mlp(const mt_scanning_mlp *mlp)
{
    for (int l = 0; l < 3; l++) {
        const mt_tensor *w = mlp->weight[l], *b = mlp->bias[l];
        if (!w || !b || w->ndim != 2 || w->shape[0] != mlp_layers[l][1] || w->shape[1] != mlp_layers[l][0] ||
            b->ndim != 1 || b->shape[0] != mlp_layers[l][1])
            return mt_set_error(MT_ERR_SHAPE, "scanning MLP: layer %d must have weight [%lld, %lld] and bias [%lld]",
                                l + 1, (long long)mlp_layers[l][1], (long long)mlp_layers[l][0],
                                (long long)mlp_layers[l][1]);
    }
    return MT_OK;
}

mt_tensor *mt_scanning_mlp_forward(const mt_scanning_mlp *mlp, mt_tensor *x)
{
    if (check_mlp(mlp) != MT_OK || !x) return NULL;
    if (x->ndim != 3 || x->shape[1] != MT_SCAN_FEATURES || x->shape[2] < MT_SCAN_WINDOW) {
        char s[64];
        mt_set_error(MT_ERR_SHAPE, "scanning MLP: input %s must be [N, 24, T] with T >= 8", mt_shape_str(x, s, sizeof s));
        return NULL;
    }
    int64_t windows = (x->shape[2] - MT_SCAN_WINDOW) / MT_SCAN_STRIDE + 1;
    mt_tensor *xt = mt_transpose(x, 1, 2);   /* [N, T, 24]: a window is then 8 consecutive rows */
    mt_tensor *outs[64];
    mt_tensor **cols = windows <= 64 ? outs : malloc(sizeof(mt_tensor *) * (size_t)windows);
    if (!cols) { mt_set_error(MT_ERR_MEMORY, "scanning MLP: out of memory"); return NULL; }
    for (int64_t j = 0; j < windows; j++) {
        mt_tensor *h = mt_flatten(mt_narrow(xt, 1, j * MT_SCAN_STRIDE, MT_SCAN_WINDOW), 1, 2);   /* index t * 24 + c */
        h = mt_relu(mt_linear(h, mlp->weight[0], mlp->bias[0]));
        h = mt_relu(mt_linear(h, mlp->weight[1], mlp->bias[1]));
        cols[j] = mt_unsqueeze(mt_linear(h, mlp->weight[2], mlp->bias[2]), 2);   /* [N, 4, 1] */
    }
    mt_tensor *y = mt_concat((int)windows, cols, 2);
    if (cols != outs) free(cols);
    return y;
}

/* A Sequential of three Conv1d (ReLU between) with the given shapes. */
static mt_module *cnn_of(const int64_t convs[3][4])
{
    mt_module *layers[5];
    for (int l = 0; l < 3; l++) {
        mt_conv_opts o = MT_CONV_DEFAULTS;
        o.stride[0] = convs[l][3];
        layers[2 * l] = mt_nn_conv1d(convs[l][0], convs[l][1], convs[l][2], true, o);
        if (l < 2) layers[2 * l + 1] = mt_nn_relu();
    }
    return mt_nn_sequential_array(5, layers);
}

/* Conv layer l of cnn (children 0, 2, 4 of the Sequential) gets weight
   value(l, o, c, k) and the MLP's bias. */
typedef double (*weight_map)(const double *mlp_weight, int64_t in_features, int64_t o, int64_t c, int64_t k);

static mt_status load(mt_module *cnn, const int64_t convs[3][4], const mt_scanning_mlp *mlp, const weight_map *maps)
{
    mt_status st = MT_OK;
    for (int l = 0; l < 3 && st == MT_OK; l++) {
        mt_module *conv = cnn->children[2 * l];
        mt_tensor *w = mt_module_param(conv, "weight"), *b = mt_module_param(conv, "bias");
        int64_t in_f = mlp_layers[l][0], n_mlp = mlp_layers[l][0] * mlp_layers[l][1];
        int64_t co = convs[l][1], ci = convs[l][0], k = convs[l][2];
        double *src = malloc(sizeof(double) * (size_t)n_mlp), *dst = malloc(sizeof(double) * (size_t)(co * ci * k));
        if (!src || !dst) st = mt_set_error(MT_ERR_MEMORY, "scanning MLP: out of memory");
        if (st == MT_OK) st = mt_to_data(mlp->weight[l], MT_F64, src);
        if (st == MT_OK) {
            for (int64_t o = 0; o < co; o++)
                for (int64_t c = 0; c < ci; c++)
                    for (int64_t t = 0; t < k; t++) dst[(o * ci + c) * k + t] = maps[l](src, in_f, o, c, t);
            mt_scope s = mt_scope_begin();
            mt_tensor *nw = mt_from_data(MT_F64, 3, w->shape, dst);
            st = nw ? mt_copy_(w, nw) : mt_last_status();
            /* the shared neurons' biases: the first co of the MLP layer's */
            if (st == MT_OK) st = mt_copy_(b, mt_narrow(mlp->bias[l], 0, 0, co));
            mt_scope_end(s);
        }
        free(src);
        free(dst);
    }
    return st;
}

static double simple_first(const double *w, int64_t in_f, int64_t o, int64_t c, int64_t t)
{
    return w[o * in_f + t * MT_SCAN_FEATURES + c];
}
static double pointwise(const double *w, int64_t in_f, int64_t o, int64_t c, int64_t t)
{
    (void)t;
    return w[o * in_f + c];
}
static double distributed_first(const double *w, int64_t in_f, int64_t o, int64_t c, int64_t k)
{
    return w[o * in_f + k * MT_SCAN_FEATURES + c];
}
static double distributed_second(const double *w, int64_t in_f, int64_t o, int64_t c, int64_t k)
{
    return w[o * in_f + k * 2 + c];
}
static double distributed_third(const double *w, int64_t in_f, int64_t o, int64_t c, int64_t k)
{
    return w[o * in_f + k * 8 + c];
}

static mt_module *build(const mt_scanning_mlp *mlp, const int64_t convs[3][4], const weight_map *maps)
{
    if (check_mlp(mlp) != MT_OK) return NULL;
    mt_module *cnn = cnn_of(convs);
    if (cnn && load(cnn, convs, mlp, maps) != MT_OK) { mt_module_free(cnn); cnn = NULL; }
    return cnn;
}

mt_module *mt_scanning_simple_cnn(const mt_scanning_mlp *mlp)
{
    static const weight_map maps[3] = { simple_first, pointwise, pointwise };
    return build(mlp, simple_convs, maps);
}

mt_module *mt_scanning_distributed_cnn(const mt_scanning_mlp *mlp)
{
    static const weight_map maps[3] = { distributed_first, distributed_second, distributed_third };
    return build(mlp, distributed_convs, maps);
}

/* Layer l of the shared MLP: neuron (p, f) at position p of `positions`, filter
   f of `filters`, reads inputs [p * step, p * step + k * width) from filter f's
   kernel conv[f, c, t] (c < width channels per position). */
static mt_tensor *shared_layer(mt_generator *gen, int64_t filters, int64_t positions, int64_t width, int64_t k,
                               int64_t step, int64_t in_f, mt_tensor **bias)
{
    int64_t out_f = filters * positions;
    double *conv = malloc(sizeof(double) * (size_t)(filters * width * k));
    double *w = calloc((size_t)(out_f * in_f), sizeof(double)), *b = malloc(sizeof(double) * (size_t)out_f);
    mt_tensor *r = NULL;
    if (conv && w && b) {
        double bound = 1 / sqrt((double)(width * k));   /* Conv1d's default range */
        mt_tensor *cw = mt_uniform(gen, MT_F64, MT_SHAPE(filters * width * k + filters), -bound, bound);
        if (cw && mt_to_data(mt_narrow(cw, 0, 0, filters * width * k), MT_F64, conv) == MT_OK) {
            double fb[64];
            if (mt_to_data(mt_narrow(cw, 0, filters * width * k, filters), MT_F64, fb) == MT_OK) {
                for (int64_t p = 0; p < positions; p++)
                    for (int64_t f = 0; f < filters; f++) {
                        b[p * filters + f] = fb[f];
                        for (int64_t t = 0; t < k; t++)
                            for (int64_t c = 0; c < width; c++)
                                w[(p * filters + f) * in_f + (p * step + t) * width + c] = conv[(f * width + c) * k + t];
                    }
                r = mt_to_dtype(mt_from_data(MT_F64, MT_SHAPE(out_f, in_f), w), MT_F32);
                *bias = mt_to_dtype(mt_from_data(MT_F64, MT_SHAPE(out_f), b), MT_F32);
            }
        }
    } else {
        mt_set_error(MT_ERR_MEMORY, "scanning MLP: out of memory");
    }
    free(conv); free(w); free(b);
    return r && *bias ? r : NULL;
}

mt_status mt_scanning_shared_mlp(uint64_t seed, mt_scanning_mlp *out)
{
    mt_generator gen = mt_generator_new(seed);
    /* layer 1: 2 filters of 2 frames at 4 positions, 2 frames apart; layer 2:
       8 filters over 2 layer-1 positions at 2 positions, 2 apart; layer 3: 4 over 2 */
    out->weight[0] = shared_layer(&gen, 2, 4, MT_SCAN_FEATURES, 2, 2, mlp_layers[0][0], &out->bias[0]);
    out->weight[1] = shared_layer(&gen, 8, 2, 2, 2, 2, mlp_layers[1][0], &out->bias[1]);
    out->weight[2] = shared_layer(&gen, 4, 1, 8, 2, 2, mlp_layers[2][0], &out->bias[2]);
    return out->weight[0] && out->weight[1] && out->weight[2] ? MT_OK : mt_last_status();
}
