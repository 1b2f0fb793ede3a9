/*
 * pool.h - pooling and resampling for the CNN stack (PyTorch's
 * F.max_pool1d/2d, F.avg_pool1d/2d, F.adaptive_*_pool*, F.interpolate, and
 * the course's Upsample/Downsample layers), on (N, C, W) and (N, C, H, W)
 * inputs, or unbatched (C, W) and (C, H, W) where PyTorch takes them.
 * Like every op of ops.h they have a forward, a vjp and a jvp, CPU kernels
 * for f32 and f64 and CUDA kernels (engine/ops/op_pool.c, op_resample.c;
 * kernels/cpu/pool.c, kernels/cuda/pool.cu). docs/ops-pool.md gives the formulas, the output sizes
 * and the PyTorch equivalent of each.
 *
 * Options follow docs/options.md: every field is used as given, and the
 * structs whose PyTorch defaults are not all zero start from a defaults
 * value, which takes the kernel size because PyTorch's stride defaults to
 * it:
 *
 *   mt_max_pool2d_opts o = MT_MAX_POOL2D_DEFAULTS(3, 3);   // kernel 3x3, stride 3x3, no padding
 *   o.stride[0] = o.stride[1] = 2;
 *   o.padding[0] = o.padding[1] = 1;
 *   mt_tensor *indices;
 *   mt_tensor *y = mt_max_pool2d(x, o, &indices);          // ResNet's stem pool, with the argmax
 *
 * 2-d fields are (H, W) pairs, as PyTorch's tuples.
 */
#ifndef MT_POOL_H
#define MT_POOL_H

#include "mytorch/autograd.h"

/* ---------------------------------------------------------------- max pooling */
typedef struct mt_max_pool1d_opts {
    int64_t kernel_size;
    int64_t stride;             /* PyTorch's default: the kernel size (set by the defaults value) */
    int64_t padding;            /* implicit -inf on both sides; at most (dilation (kernel_size - 1) + 1) / 2 */
    int64_t dilation;
    bool ceil_mode;             /* the output size rounds up (the last window may hang over) */
    uint32_t from_defaults;     /* set by MT_MAX_POOL1D_DEFAULTS; leave it */
} mt_max_pool1d_opts;
#define MT_MAX_POOL1D_DEFAULTS(k) \
    ((mt_max_pool1d_opts){ .kernel_size = (k), .stride = (k), .dilation = 1, .from_defaults = MT_OPTS_FROM_DEFAULTS })

typedef struct mt_max_pool2d_opts {
    int64_t kernel_size[2], stride[2], padding[2], dilation[2];   /* (H, W) */
    bool ceil_mode;
    uint32_t from_defaults;     /* set by MT_MAX_POOL2D_DEFAULTS; leave it */
} mt_max_pool2d_opts;
#define MT_MAX_POOL2D_DEFAULTS(kh, kw)                                                       \
    ((mt_max_pool2d_opts){ .kernel_size = { (kh), (kw) }, .stride = { (kh), (kw) },          \
                           .dilation = { 1, 1 }, .from_defaults = MT_OPTS_FROM_DEFAULTS })

/* F.max_pool1d / F.max_pool2d(x, ..., return_indices=True): the largest
   value of each window and, in *indices (MT_I64, no gradient; NULL: not
   wanted), where it is: the flat index into the input's W (1-d) or H * W
   (2-d) plane of its (n, c), the first largest on ties, a NaN winning. One
   node with two outputs; the gradient goes to the argmax (summed where
   windows overlap), the tangent is taken there. On error NULL, and
   *indices is NULL. */
mt_tensor *mt_max_pool1d(mt_tensor *x, mt_max_pool1d_opts opts, mt_tensor **indices);
mt_tensor *mt_max_pool2d(mt_tensor *x, mt_max_pool2d_opts opts, mt_tensor **indices);

/* ---------------------------------------------------------------- average pooling */
typedef struct mt_avg_pool1d_opts {
    int64_t kernel_size;
    int64_t stride;             /* PyTorch's default: the kernel size */
    int64_t padding;            /* zeros; at most kernel_size / 2 */
    bool ceil_mode;
    bool count_include_pad;     /* the padding counts in the divisor (PyTorch's default: true) */
    uint32_t from_defaults;     /* set by MT_AVG_POOL1D_DEFAULTS; leave it */
} mt_avg_pool1d_opts;
#define MT_AVG_POOL1D_DEFAULTS(k)                                                            \
    ((mt_avg_pool1d_opts){ .kernel_size = (k), .stride = (k), .count_include_pad = true,     \
                           .from_defaults = MT_OPTS_FROM_DEFAULTS })

typedef struct mt_avg_pool2d_opts {
    int64_t kernel_size[2], stride[2], padding[2];   /* (H, W) */
    bool ceil_mode;
    bool count_include_pad;
    bool has_divisor_override;  /* PyTorch's divisor_override=None is false */
    int64_t divisor_override;   /* with has_divisor_override: every window's sum / this (not 0) */
    uint32_t from_defaults;     /* set by MT_AVG_POOL2D_DEFAULTS; leave it */
} mt_avg_pool2d_opts;
#define MT_AVG_POOL2D_DEFAULTS(kh, kw)                                                       \
    ((mt_avg_pool2d_opts){ .kernel_size = { (kh), (kw) }, .stride = { (kh), (kw) },          \
                           .count_include_pad = true, .from_defaults = MT_OPTS_FROM_DEFAULTS })

/* F.avg_pool1d / F.avg_pool2d: the mean of each window (the sum over its
   elements inside the input, divided by the window's size with or without
   the padding, or by divisor_override). */
mt_tensor *mt_avg_pool1d(mt_tensor *x, mt_avg_pool1d_opts opts);
mt_tensor *mt_avg_pool2d(mt_tensor *x, mt_avg_pool2d_opts opts);

/* ---------------------------------------------------------------- adaptive pooling */
/* F.adaptive_avg_pool1d/2d(x, output_size): output position i averages the
   input positions [floor(i in / out), ceil((i + 1) in / out)) of each axis.
   Output 1 (x 1) is the global average pool of a CNN's head, and has a fast
   path (the mean over each plane). */
mt_tensor *mt_adaptive_avg_pool1d(mt_tensor *x, int64_t out_w);
mt_tensor *mt_adaptive_avg_pool2d(mt_tensor *x, int64_t out_h, int64_t out_w);
/* F.adaptive_max_pool1d/2d(x, output_size, return_indices=True): the same
   windows, their largest value and its index as for mt_max_pool1d/2d. */
mt_tensor *mt_adaptive_max_pool1d(mt_tensor *x, int64_t out_w, mt_tensor **indices);
mt_tensor *mt_adaptive_max_pool2d(mt_tensor *x, int64_t out_h, int64_t out_w, mt_tensor **indices);

/* ---------------------------------------------------------------- interpolation */
typedef enum mt_interp_mode {
    MT_INTERP_NEAREST,          /* 'nearest': src = floor(dst in / out) (PyTorch's, not 'nearest-exact') */
    MT_INTERP_LINEAR,           /* 'linear', (N, C, W) inputs */
    MT_INTERP_BILINEAR,         /* 'bilinear', (N, C, H, W) inputs */
} mt_interp_mode;
/* PyTorch's defaults are all zero: (mt_interpolate_opts){ .scale_factor = { 2, 2 } } is nearest x2.
   The spatial entries are [0] = W for a 3-d input, [0] = H and [1] = W for a 4-d one. */
typedef struct mt_interpolate_opts {
    int64_t size[2];            /* the output size, or all 0 and scale_factor */
    double scale_factor[2];     /* output = floor(input * scale_factor), the scale used as given */
    mt_interp_mode mode;
    bool align_corners;         /* linear modes only: the corner pixels' centres align */
} mt_interpolate_opts;
/* F.interpolate(x, size or scale_factor, mode, align_corners) on batched
   (N, C, W) or (N, C, H, W) inputs. */
mt_tensor *mt_interpolate(mt_tensor *x, mt_interpolate_opts opts);

/* ---------------------------------------------------------------- the course's resampling */
/* 11-785's Upsample1d/2d: zero insertion by an integer factor k >= 1 along
   W (and H): out = k (in - 1) + 1, y[..., i k] = x[..., i], zeros between.
   Backward: the strided selection g[..., ::k]. (Not PyTorch's nn.Upsample:
   that is mt_interpolate.) */
mt_tensor *mt_upsample1d(mt_tensor *x, int64_t factor);
mt_tensor *mt_upsample2d(mt_tensor *x, int64_t factor);
/* 11-785's Downsample1d/2d: y = x[..., ::k] (and [..., ::k, ::k]), out =
   ceil(in / k); the backward scatters g into zeros of the input's size
   (odd sizes included). Both take (N, C, W) / (N, C, H, W), or unbatched. */
mt_tensor *mt_downsample1d(mt_tensor *x, int64_t factor);
mt_tensor *mt_downsample2d(mt_tensor *x, int64_t factor);

#endif
