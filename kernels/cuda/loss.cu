/*
 * loss.cu - the negative log-likelihood gather that cross-entropy is built
 * on, over log-probabilities logp [n, c] (contiguous) and targets t [n]
 * (int64); the CUDA counterpart of kernels/cpu/loss.c:
 *
 *   out_i      = -w[t_i] logp[i, t_i]                  (0 where t_i is ignore_index or not in [0, c))
 *   dlogp[i, j] = -w[t_i] dout_i [j == t_i]            (every element written: zeros elsewhere)
 *
 * w is the class weight vector, or NULL for all ones. f32 and f64.
 */
#include "kernels/cuda/cuda_compat.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_launch.h"

#define NLL_THREADS 256
#define NLL_MAX_BLOCKS 4096   /* grid-stride beyond this */

/* Blocks for a grid-stride loop over total items. */
static unsigned nll_grid(int64_t total) { return mt_cuda_grid_1d(total, NLL_THREADS, NLL_MAX_BLOCKS); }

/*
 * nll_forward_<T>: one thread per row i (grid-stride loop over the rows):
 *   k = t[i];  out[i] = (k == ignore_index || k < 0 || k >= c) ? 0 : -(w ? w[k] : 1) logp[i c + k]
 *
 * nll_backward_<T>: one thread per element e = i c + j of dlogp (grid-stride
 * loop, consecutive threads on consecutive elements so the writes coalesce):
 *   dlogp[e] = (j == t[i] and t[i] valid) ? -(w ? w[t[i]] : 1) dout[i] : 0
 * The row i = e / c uses a 32-bit division when every index fits (small).
 */
#define DEFINE_NLL_KERNELS(T, SUFFIX)                                                                     \
static __global__ void __launch_bounds__(NLL_THREADS)                                                     \
nll_forward_##SUFFIX(int64_t n, int64_t c, const T *logp, const int64_t *target, const T *weight,         \
                     int64_t ignore_index, T *out)                                                        \
{                                                                                                         \
    int64_t stride = (int64_t)gridDim.x * blockDim.x;                                                     \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {                \
        int64_t k = target[i];                                                                            \
        out[i] = (k == ignore_index || k < 0 || k >= c) ? (T)0 : -(weight ? weight[k] : (T)1) * logp[i * c + k]; \
    }                                                                                                     \
}                                                                                                         \
                                                                                                          \
static __global__ void __launch_bounds__(NLL_THREADS)                                                     \
nll_backward_##SUFFIX(int64_t n, int64_t c, const int64_t *target, const T *weight, int64_t ignore_index, \
                      const T *dout, T *dlogp, int small)                                                 \
{                                                                                                         \
    int64_t total = n * c, stride = (int64_t)gridDim.x * blockDim.x;                                      \
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {            \
        int64_t i = small ? (int64_t)((uint32_t)e / (uint32_t)c) : e / c, j = e - i * c;                  \
        int64_t k = target[i];                                                                            \
        bool hit = j == k && k != ignore_index;   /* j in [0, c), so k is in range too */                 \
        dlogp[e] = hit ? -(weight ? weight[k] : (T)1) * dout[i] : (T)0;                                   \
    }                                                                                                     \
}

DEFINE_NLL_KERNELS(float, f32)
DEFINE_NLL_KERNELS(double, f64)

mt_status MT_CUDA_FN(nll_forward)(mt_dtype dtype, int64_t n, int64_t c, const void *logp, const int64_t *target,
                                  const void *weight, int64_t ignore_index, void *out)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (n <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    unsigned grid = nll_grid(n);
    if (dtype == MT_F32)
        MT_LAUNCH(nll_forward_f32, grid, NLL_THREADS, 0, stream, n, c, (const float *)logp, target,
                  (const float *)weight, ignore_index, (float *)out);
    else
        MT_LAUNCH(nll_forward_f64, grid, NLL_THREADS, 0, stream, n, c, (const double *)logp, target,
                  (const double *)weight, ignore_index, (double *)out);
    return mt_cuda_launch_status("cuda nll_forward kernel");
}

mt_status MT_CUDA_FN(nll_backward)(mt_dtype dtype, int64_t n, int64_t c, const int64_t *target, const void *weight,
                                   int64_t ignore_index, const void *dout, void *dlogp)
{
    if (dtype != MT_F32 && dtype != MT_F64) return MT_ERR_UNSUPPORTED;
    if (n <= 0 || c <= 0) return MT_OK;
    cudaStream_t stream = MT_STREAM();
    int64_t total = n * c;
    unsigned grid = nll_grid(total);
    int small = total <= (int64_t)UINT32_MAX ? 1 : 0;   /* every element index fits 32 bits */
    if (dtype == MT_F32)
        MT_LAUNCH(nll_backward_f32, grid, NLL_THREADS, 0, stream, n, c, target, (const float *)weight, ignore_index,
                  (const float *)dout, (float *)dlogp, small);
    else
        MT_LAUNCH(nll_backward_f64, grid, NLL_THREADS, 0, stream, n, c, target, (const double *)weight, ignore_index,
                  (const double *)dout, (double *)dlogp, small);
    return mt_cuda_launch_status("cuda nll_backward kernel");
}
