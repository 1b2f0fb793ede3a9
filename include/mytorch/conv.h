/*
 * conv.h - convolutions (engine/ops/op_conv.c; docs/ops-conv.md).
 *
 * PyTorch's layouts: conv2d takes x [N, C_in, H, W] (or unbatched
 * [C_in, H, W]) and weight [C_out, C_in / groups, kH, kW]; conv1d takes
 * x [N, C_in, W] and weight [C_out, C_in / groups, k]. The transposed
 * convolutions take weight [C_in, C_out / groups, kH, kW], as
 * nn.ConvTranspose2d does. bias [C_out] may be NULL everywhere.
 *
 * Output sizes, per spatial dim (in, kernel k, stride s, padding p, dilation d):
 *   conv            out = floor((in + 2p - d (k - 1) - 1) / s) + 1
 *   conv, 'same'    out = in  (stride 1; d (k - 1) padding in all, the extra
 *                   one on the bottom/right when it is odd, as PyTorch pads)
 *   transposed      out = (in - 1) s - 2p + d (k - 1) + output_padding + 1
 */
#ifndef MYTORCH_CONV_H
#define MYTORCH_CONV_H

#include "mytorch/tensor.h"

/* Settings of every convolution. Arrays are (height, width) for the 2-d
   ops; the 1-d ops read element [0]. Start from MT_CONV_DEFAULTS (stride 1,
   padding 0, dilation 1, groups 1: PyTorch's defaults); every field is
   used as given (docs/options.md). */
typedef struct mt_conv_opts {
    int64_t stride[2];
    int64_t padding[2];
    int64_t dilation[2];
    int64_t groups;
    bool padding_same;           /* padding='same' (stride 1 only); padding[] is then ignored */
    int64_t output_padding[2];   /* transposed only: < stride or < dilation */
    uint32_t from_defaults;      /* set by MT_CONV_DEFAULTS; leave it */
} mt_conv_opts;
#define MT_CONV_DEFAULTS ((mt_conv_opts){ .stride = { 1, 1 }, .dilation = { 1, 1 }, .groups = 1, \
                                          .from_defaults = MT_OPTS_FROM_DEFAULTS })

mt_tensor *mt_conv1d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts);
mt_tensor *mt_conv2d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts);
mt_tensor *mt_conv_transpose1d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts);
mt_tensor *mt_conv_transpose2d(mt_tensor *x, mt_tensor *weight, mt_tensor *bias, mt_conv_opts opts);

/* torch.nn.grad.conv2d_weight / conv1d_weight: the gradient of the weight of
   the convolution of x (with kernels kh x kw, or k) whose output gradient is
   grad_output, as conv2d's backward computes it; differentiable too. (Its
   companion conv2d_input is mt_conv_transpose2d.) */
mt_tensor *mt_conv2d_weight_grad(mt_tensor *x, mt_tensor *grad_output, int64_t kh, int64_t kw, mt_conv_opts opts);
mt_tensor *mt_conv1d_weight_grad(mt_tensor *x, mt_tensor *grad_output, int64_t k, mt_conv_opts opts);

#endif
