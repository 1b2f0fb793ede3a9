/*
 * pool_maps.h - the separable window maps under pooling and resampling
 * (engine/ops/op_pool.c, engine/ops/op_resample.c; docs/ops-pool.md).
 *
 * Every pooling and resampling op of x [..., H, W] (or [..., W]) works plane
 * by plane, and along each spatial axis output position i reads a window of
 * input positions with weights: a sparse "axis map". Max pooling takes the
 * largest of the window; average pooling, adaptive average pooling and
 * interpolation sum x times the weights of the H map and of the W map:
 *
 *   y[p, i, j] = sum_a hw[a] sum_b ww[b] x[p, h_index[a], w_index[b]]
 *
 * a linear map Y = A_h X A_w^T per plane, whose gradient is
 * dX = A_h^T dY A_w: the same kernel (pool_linear) with the maps transposed.
 * So each op is: check the arguments, build its two axis maps on the host
 * (this file's builders give PyTorch's windows and weights), upload them,
 * run the kernel; the tape keeps the uploaded maps for the backward.
 */
#ifndef MT_ENGINE_OPS_POOL_MAPS_H
#define MT_ENGINE_OPS_POOL_MAPS_H

#include "engine/internal.h"
#include "mytorch/pool.h"

/* One axis map on the host, while it is built: destination i reads the
   entries [start[i], start[i + 1]) of index and weight. */
typedef struct pool_axis {
    int64_t n_src, n_dst, nnz, cap;
    int64_t *start;     /* n_dst + 1 */
    int64_t *index;     /* nnz */
    double *weight;     /* nnz */
} pool_axis;

void pool_axis_free(pool_axis *a);

/* The builders: each fills *a (freed with pool_axis_free, also on failure)
   and returns false (out of memory, with an error naming op) on failure. */
/* 1 -> 1, weight 1: the H axis of a 1-d op. */
bool pool_axis_identity(const char *op, pool_axis *a);
/* Windows of k positions start + m d (start = i s - pad, m < k), the ones
   inside [0, in) (padding contributes nothing): max pooling, weights 1. */
bool pool_axis_windows(const char *op, pool_axis *a, int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad,
                       int64_t d);
/* Average pooling's windows (dilation 1), each entry weighted scale / count,
   count = the window clipped to [-pad, in + pad) (count_include_pad) or to
   [0, in); with has_divisor, scale alone (the caller puts 1 / divisor into
   one axis). */
bool pool_axis_average(const char *op, pool_axis *a, int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad,
                       bool count_include_pad, bool has_divisor, double scale);
/* PyTorch's adaptive windows [floor(i in / out), ceil((i + 1) in / out)),
   weights 1 / their length (average) or 1 (max). */
bool pool_axis_adaptive(const char *op, pool_axis *a, int64_t in, int64_t out, bool average);
/* Interpolation (upsample_nearest, upsample_linear/bilinear): scale_factor
   0 means none (the scale is in / out); opmath is the dtype PyTorch computes
   the source coordinates in (f32 for an f32 tensor). */
bool pool_axis_nearest(const char *op, pool_axis *a, int64_t in, int64_t out, double scale_factor);
bool pool_axis_linear(const char *op, pool_axis *a, int64_t in, int64_t out, bool align_corners,
                      double scale_factor, mt_dtype opmath);

/* The maps of one op on its device: h and w (maps 0, 1) and, when asked for,
   their transposes (2, 3), packed into one int64 tensor of starts and
   indices and, when weighted, one tensor of weights in the data's dtype.
   Kept on a node as saved[0] and saved[1], the layout as node->extra. */
enum { POOL_H, POOL_W, POOL_HT, POOL_WT };
typedef struct pool_layout {
    int spatial;                /* 1 or 2 spatial dims */
    int n_maps;                 /* 2, or 4 with the transposes */
    int64_t n_src[4], n_dst[4];
    int64_t start_off[4], index_off[4], weight_off[4];
    bool global;                /* adaptive average to 1 (x 1): the mean over each plane, no maps */
} pool_layout;

/* Uploads axes[0] (H) and axes[1] (W) to like's device (weights in like's
   dtype when weighted), with their transposes when transposes; fills
   *layout (spatial set by the caller) and *tables, *weights (NULL when not
   weighted). False with the error recorded, nothing left allocated. */
bool pool_upload(const char *op, const pool_axis *axes, bool transposes, bool weighted, const mt_tensor *like,
                 pool_layout *layout, mt_tensor **tables, mt_tensor **weights);
/* Map k of an uploaded layout, with device pointers into tables and weights. */
mt_pool_map pool_map_of(const pool_layout *l, const mt_tensor *tables, const mt_tensor *weights, int k);

/* The shape of x with its last l->spatial dims replaced by map k's destination sizes. */
void pool_out_shape(const pool_layout *l, const mt_tensor *x, int k_h, int k_w, int64_t *shape);

/* ---------------------------------------------------------------- the linear ops */
/* A separable linear op (average pooling, adaptive average, interpolation):
   y = the maps of axes applied to x over its last `spatial` dims, recorded
   as op, whose vjp and jvp are pool_linear_vjp and pool_linear_jvp. Frees
   the axes. global: the mean over each plane (the axes give only the sizes). */
mt_tensor *pool_linear_apply(const mt_op_def *op, mt_tensor *x, int spatial, pool_axis *axes, bool global);
mt_status pool_linear_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads);
mt_tensor *pool_linear_jvp(mt_node *node, mt_tensor *const *t);

#endif
