/*
 * cuda_launch.h - what the host wrappers of every .cu file share: the launch
 * check, failures turned into an mt_status, and 1-d grid sizing. Include
 * after cuda_compat.h and cuda_kernels.h; compiles under nvcc and under the
 * SIMT emulator.
 */
#ifndef MT_KERNELS_CUDA_LAUNCH_H
#define MT_KERNELS_CUDA_LAUNCH_H

/* Records a failed CUDA call or launch as a device error ("<what>: <CUDA
   error name>") and returns MT_ERR_DEVICE, the status a wrapper then returns. */
static inline mt_status mt_cuda_fail(const char *what, cudaError_t code)
{
    mt_device_record_error(what, (int)code, cudaGetErrorName(code));
    return MT_ERR_DEVICE;
}

/* The check after MT_LAUNCH (or after a kernel's last CUDA call): MT_OK, or
   the pending error recorded under `what` (e.g. "cuda softmax kernel") and
   MT_ERR_DEVICE. cudaGetLastError also clears a non-sticky error, so that
   the next launch's check does not see it. */
static inline mt_status mt_cuda_launch_status(const char *what)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? MT_OK : mt_cuda_fail(what, e);
}

/* Blocks of `threads` threads for `units` work items of a grid-stride loop
   (one item per thread per step): enough for every item, at most
   max_blocks (the loop gives each thread several items beyond that), at
   least 1. */
static inline unsigned mt_cuda_grid_1d(int64_t units, int threads, int64_t max_blocks)
{
    int64_t blocks = (units + threads - 1) / threads;
    if (blocks > max_blocks) blocks = max_blocks;
    return blocks < 1 ? 1u : (unsigned)blocks;
}

#endif
