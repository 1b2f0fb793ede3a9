/*
 * index.c - gather and scatter-add along one dim: the CPU kernels under
 * index_select, gather, scatter_add and embedding (engine/ops/op_index.c).
 *
 * Both walk an mt_loop over the positions p of an index (operand 1, int64)
 * and move one element per position:
 *
 *   gather       out[p] = x[p + index[p] * x_dim_stride]        0 = out, 1 = index, 2 = x
 *   scatter_add  out[p + index[p] * out_dim_stride] += src[p]   0 = out, 1 = index, 2 = src
 *
 * where "x[p + ...]" means x's offset at p (its stride along the indexed dim
 * is 0 in the loop: that coordinate comes from the index value instead). An
 * index value outside [0, dim_size) reads as 0 or adds nothing; the engine
 * has refused such indices with a message before calling, so this is only a
 * guard against writing outside the buffer.
 *
 * Scatter-add is deterministic and independent of the thread count. Its
 * loop's LAST dim is the scattered one: two positions can hit the same out
 * element only if they agree on every other coordinate, i.e. lie in the same
 * "column" (all positions sharing the other coordinates). Each column is
 * summed by one thread, in increasing order of the last coordinate. A thread
 * takes SCATTER_CHUNK neighbouring columns of the innermost other dim at a
 * time and walks them together, so that for an embedding gradient each
 * index step adds a contiguous run of a row.
 */
#include "kernels/cpu/cpu_kernels.h"

#define SCATTER_CHUNK 64

static int64_t loop_numel(const mt_loop *l)
{
    int64_t n = 1;
    for (int d = 0; d < l->ndim; d++) n *= l->shape[d];
    return n;
}

/* Offsets of the first nops operands at the row-major multi-index of r over
   the first ndim dims of l (dim ndim - 1 fastest). */
static void loop_offsets(const mt_loop *l, int ndim, int64_t r, int nops, int64_t *off)
{
    for (int k = 0; k < nops; k++) off[k] = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t size = l->shape[d], c = r % size;
        r /= size;
        for (int k = 0; k < nops; k++) off[k] += c * l->stride[k][d];
    }
}

/* Gather by element size: a move of bits, so one kernel serves every dtype
   of that size. Rows are all loop dims but the last; each row walks the last. */
#define DEFINE_GATHER(T, SUFFIX)                                                                     \
static void gather_##SUFFIX(const mt_loop *l, T *out, const int64_t *index, const T *x,              \
                            int64_t x_dim_stride, int64_t dim_size)                                  \
{                                                                                                    \
    int nd = l->ndim;                                                                                \
    int64_t n = l->shape[nd - 1], rows = 1;                                                          \
    for (int d = 0; d < nd - 1; d++) rows *= l->shape[d];                                            \
    int64_t so = l->stride[0][nd - 1], si = l->stride[1][nd - 1], sx = l->stride[2][nd - 1];         \
    _Pragma("omp parallel for if (rows * n > MT_CPU_PARALLEL_GRAIN)")                                \
    for (int64_t r = 0; r < rows; r++) {                                                             \
        int64_t off[3];                                                                              \
        loop_offsets(l, nd - 1, r, 3, off);                                                          \
        for (int64_t j = 0; j < n; j++) {                                                            \
            int64_t k = index[off[1] + j * si];                                                      \
            out[off[0] + j * so] = (k >= 0 && k < dim_size) ? x[off[2] + j * sx + k * x_dim_stride] : (T)0; \
        }                                                                                            \
    }                                                                                                \
}

DEFINE_GATHER(uint8_t, b1)
DEFINE_GATHER(uint32_t, b4)
DEFINE_GATHER(uint64_t, b8)

mt_status mt_cpu_gather(mt_dtype dtype, const mt_loop *loop, void *out, const int64_t *index, const void *x,
                        int64_t x_dim_stride, int64_t dim_size)
{
    if (loop->ndim < 1 || loop_numel(loop) == 0) return MT_OK;
    switch (mt_dtype_size(dtype)) {
    case 1: gather_b1(loop, out, index, x, x_dim_stride, dim_size); return MT_OK;
    case 4: gather_b4(loop, out, index, x, x_dim_stride, dim_size); return MT_OK;
    case 8: gather_b8(loop, out, index, x, x_dim_stride, dim_size); return MT_OK;
    default: return MT_ERR_UNSUPPORTED;
    }
}

/* Work items are (outer coordinate o over dims [0, nd-2), chunk of dim nd-2);
   each walks j = 0, 1, ... over the last dim and, for each j, its chunk. A
   1-d loop is a single column. */
#define DEFINE_SCATTER_ADD(T, SUFFIX)                                                                \
static void scatter_add_##SUFFIX(const mt_loop *l, T *out, const int64_t *index, const T *src,       \
                                 int64_t out_dim_stride, int64_t dim_size)                           \
{                                                                                                    \
    int nd = l->ndim;                                                                                \
    int64_t n = l->shape[nd - 1];                                                                    \
    int64_t so_j = l->stride[0][nd - 1], si_j = l->stride[1][nd - 1], ss_j = l->stride[2][nd - 1];   \
    int64_t m = 1, so_i = 0, si_i = 0, ss_i = 0, outer = 1;                                          \
    if (nd >= 2) {                                                                                   \
        m = l->shape[nd - 2];                                                                        \
        so_i = l->stride[0][nd - 2]; si_i = l->stride[1][nd - 2]; ss_i = l->stride[2][nd - 2];       \
        for (int d = 0; d < nd - 2; d++) outer *= l->shape[d];                                       \
    }                                                                                                \
    int64_t chunks = (m + SCATTER_CHUNK - 1) / SCATTER_CHUNK;                                        \
    _Pragma("omp parallel for schedule(static) if (outer * m * n > MT_CPU_PARALLEL_GRAIN)")          \
    for (int64_t item = 0; item < outer * chunks; item++) {                                          \
        int64_t o = item / chunks, i0 = (item % chunks) * SCATTER_CHUNK;                             \
        int64_t i1 = i0 + SCATTER_CHUNK < m ? i0 + SCATTER_CHUNK : m;                                \
        int64_t off[3];                                                                              \
        loop_offsets(l, nd >= 2 ? nd - 2 : 0, o, 3, off);                                            \
        for (int64_t j = 0; j < n; j++)                                                              \
            for (int64_t i = i0; i < i1; i++) {                                                      \
                int64_t k = index[off[1] + i * si_i + j * si_j];                                     \
                if (k < 0 || k >= dim_size) continue;                                                \
                out[off[0] + i * so_i + j * so_j + k * out_dim_stride] += src[off[2] + i * ss_i + j * ss_j]; \
            }                                                                                        \
    }                                                                                                \
}

DEFINE_SCATTER_ADD(float, f32)
DEFINE_SCATTER_ADD(double, f64)
DEFINE_SCATTER_ADD(int32_t, i32)
DEFINE_SCATTER_ADD(int64_t, i64)

mt_status mt_cpu_scatter_add(mt_dtype dtype, const mt_loop *loop, void *out, const int64_t *index, const void *src,
                             int64_t out_dim_stride, int64_t dim_size, bool deterministic)
{
    (void)deterministic;   /* always: one thread per column, in order */
    if (loop->ndim < 1 || loop_numel(loop) == 0) return MT_OK;
    switch (dtype) {
    case MT_F32: scatter_add_f32(loop, out, index, src, out_dim_stride, dim_size); return MT_OK;
    case MT_F64: scatter_add_f64(loop, out, index, src, out_dim_stride, dim_size); return MT_OK;
    case MT_I32: scatter_add_i32(loop, out, index, src, out_dim_stride, dim_size); return MT_OK;
    case MT_I64: scatter_add_i64(loop, out, index, src, out_dim_stride, dim_size); return MT_OK;
    default: return MT_ERR_UNSUPPORTED;
    }
}
