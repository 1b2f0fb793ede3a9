/*
 * kernels.h - the vocabulary shared by every compute kernel.
 *
 * A kernel knows nothing of tensors, autograd or devices: it receives raw
 * pointers (already offset to the first element), element counts and, where a
 * kernel walks a strided layout, an mt_loop describing it, and returns an
 * mt_status. Every backend (kernels/cpu, kernels/cuda) implements the
 * signatures of kernels/kernel_entries.h; host/backend.h gathers them into a
 * table that engine/ calls through.
 */
#ifndef MT_KERNELS_H
#define MT_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mytorch/types.h"   /* mt_dtype, mt_status, MT_MAX_DIMS: the vocabulary every layer shares */
#include "kernels/loop.h"     /* mt_loop: a strided walk, and its simplification */

/* A kernel entry's status must be looked at (kernels/kernel_entries.h): the
   compiler warns, and -Werror fails the build, where it is dropped. */
#define MT_MUST_CHECK __attribute__((warn_unused_result))

/* Elementwise functions of one input. params[] carries the constants a few need. */
typedef enum mt_unary_kind {
    MT_UNARY_NEG, MT_UNARY_EXP, MT_UNARY_LOG, MT_UNARY_SQRT, MT_UNARY_ABS,
    MT_UNARY_SIGN,
    MT_UNARY_POW_SCALAR,  /* x^p,             params[0] = p */
    MT_UNARY_CLAMP,       /* min(max(x,lo),hi) params[0] = lo, params[1] = hi (NaN = unbounded) */
    MT_UNARY_SIGMOID, MT_UNARY_TANH, MT_UNARY_RELU,
    MT_UNARY_LEAKY_RELU,  /* params[0] = negative slope */
    MT_UNARY_ELU,         /* params[0] = alpha */
    MT_UNARY_GELU_ERF, MT_UNARY_GELU_TANH,
    MT_UNARY_SILU,        /* x * sigmoid(beta x), params[0] = beta */
    MT_UNARY_SOFTPLUS,    /* log(1 + exp(beta x)) / beta, params[0] = beta, params[1] = threshold */
    MT_UNARY_SCALE,       /* params[0] * x + params[1] */
    MT_UNARY_KIND_COUNT
} mt_unary_kind;

/* Elementwise functions of two inputs; comparisons write MT_BOOL. */
typedef enum mt_binary_kind {
    MT_BINARY_ADD, MT_BINARY_SUB, MT_BINARY_MUL, MT_BINARY_DIV, MT_BINARY_POW,
    MT_BINARY_MAX, MT_BINARY_MIN,
    MT_BINARY_EQ, MT_BINARY_NE, MT_BINARY_LT, MT_BINARY_LE, MT_BINARY_GT, MT_BINARY_GE,
    MT_BINARY_KIND_COUNT
} mt_binary_kind;
static inline bool mt_binary_is_comparison(mt_binary_kind k) { return k >= MT_BINARY_EQ; }

/* Reductions over the middle axis of a contiguous [outer, n, inner] array. */
typedef enum mt_reduce_kind {
    MT_REDUCE_SUM, MT_REDUCE_MEAN, MT_REDUCE_MAX, MT_REDUCE_MIN,
    MT_REDUCE_ARGMAX, MT_REDUCE_ARGMIN, /* write MT_I64 indices */
    MT_REDUCE_VAR,                      /* param = correction (1 = unbiased) */
    MT_REDUCE_LOGSUMEXP,
    MT_REDUCE_KIND_COUNT
} mt_reduce_kind;

typedef enum mt_random_kind {
    MT_RANDOM_UNIFORM,   /* U[p0, p1) */
    MT_RANDOM_NORMAL,    /* N(p0, p1^2) */
    MT_RANDOM_BERNOULLI, /* p1 with probability p0, else 0 */
} mt_random_kind;


/* The geometry of a 2-d convolution (conv1d is one with h = kh = 1), in
   PyTorch's layouts: x [n, c_in, h, w], weight [c_out, c_in / groups, kh, kw],
   y [n, c_out, out_h, out_w], all contiguous. Output pixel (oh, ow) and tap
   (i, j) read input pixel
       ih = oh * stride_h - pad_h + i * dilation_h,  iw = ow * stride_w - pad_w + j * dilation_w,
   zero where that is outside [0, h) x [0, w). pad_h, pad_w are the top and
   left padding; the bottom and right padding are implied by out_h, out_w
   (asymmetric for 'same' padding with an even span). */
typedef struct mt_conv2d_geometry {
    int64_t n, c_in, h, w;
    int64_t c_out, kh, kw;
    int64_t out_h, out_w;
    int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
    int64_t groups;
} mt_conv2d_geometry;

/* One axis of a separable window map, the vocabulary of the pooling and
   resampling kernels (kernels/cpu/pool.c, kernels/cuda/pool.cu): destination
   position i reads the source positions index[e] with weights weight[e] for
   e in [start[i], start[i + 1]). start has n_dst + 1 entries, index (and
   weight) start[n_dst]. weight holds values of the data's dtype, or is NULL
   where a kernel takes none (max pooling). A 2-d map over [H, W] planes is
   one map per axis; a 1-d one has the identity map (1 -> 1) for H. The
   engine builds them (engine/ops/pool_maps.c); the pointers are device
   pointers. */
typedef struct mt_pool_map {
    int64_t n_src, n_dst;
    const int64_t *start, *index;
    const void *weight;
} mt_pool_map;

#endif
