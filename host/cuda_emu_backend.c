/*
 * cuda_emu_backend.c - the cuda-emu backend: the .cu files of kernels/cuda compiled
 * against the SIMT emulator (host/simt_emu.c) and run on the CPU. Device
 * memory is host memory; GEMM goes to the CPU BLAS, as cuBLAS stands in for
 * it on a real GPU. This is the backend CI proves the CUDA kernels with:
 * every op of the harness runs here and is compared with the CPU backend.
 */
#include "host/backend.h"

#ifdef MYTORCH_HAVE_CUDA_EMU

#include <string.h>

#include "host/runtime.h"
#include "kernels/cuda/simt_emu.h"
#include "kernels/cpu/cpu_kernels.h"

#define MT_CUDA_FN(name) mt_cuda_emu_##name
#include "kernels/cuda/cuda_kernels.h"

static void *emu_alloc(size_t nbytes)
{
    void *p = NULL;
    return mt_emu_malloc(&p, nbytes ? nbytes : 1) == 0 ? p : NULL;
}
static void emu_free(void *ptr) { mt_emu_free(ptr); }
/* cudaMemcpyKind: 1 host to device, 2 device to host */
static void emu_to_host(void *dst, const void *src, size_t nbytes)
{
    if (nbytes && mt_emu_memcpy(dst, src, nbytes, 2) != 0) mt_device_record_error("cuda-emu: memcpy to host", mt_emu_get_last_error(), NULL);
}
static void emu_from_host(void *dst, const void *src, size_t nbytes)
{
    if (nbytes && mt_emu_memcpy(dst, src, nbytes, 1) != 0) mt_device_record_error("cuda-emu: memcpy from host", mt_emu_get_last_error(), NULL);
}
static void emu_synchronize(void)
{
    int code = mt_emu_device_synchronize();
    if (code != 0) mt_device_record_error("cuda-emu: synchronize", code, mt_emu_error_string(code));
}

/* The kernel wrappers' hooks (kernels/cuda/cuda_compat.h): emulated launches
   are synchronous, so there is one stream, NULL; scratch memory comes from
   the cuda-emu caching allocator. */
void *mt_cuda_emu_current_stream_handle(void) { return NULL; }
void *mt_cuda_emu_scratch_alloc(size_t nbytes) { return mt_device_alloc((mt_device){ MT_DEVICE_CUDA_EMU, 0 }, nbytes); }
void mt_cuda_emu_scratch_free(void *ptr, size_t nbytes) { mt_device_free((mt_device){ MT_DEVICE_CUDA_EMU, 0 }, ptr, nbytes); }

const mt_backend mt_cuda_emu_backend = {
    .name = "cuda-emu",
    .alloc = emu_alloc,
    .free = emu_free,
    .to_host = emu_to_host,
    .from_host = emu_from_host,
    .synchronize = emu_synchronize,
    /* Each entry is the emulated CUDA kernel of its family, never a CPU
       stand-in (tests/test_backend_tables.c checks), but GEMM's. */
    .copy = mt_cuda_emu_copy,
    .fill = mt_cuda_emu_fill,
    .arange = mt_cuda_emu_arange,
    .unary = mt_cuda_emu_unary,
    .unary_backward = mt_cuda_emu_unary_backward,
    .binary = mt_cuda_emu_binary,
    .where = mt_cuda_emu_where,
    .reduce = mt_cuda_emu_reduce,
    .softmax = mt_cuda_emu_softmax,
    .softmax_backward = mt_cuda_emu_softmax_backward,
    .gemm = mt_cpu_gemm,                 /* cuBLAS's stand-in: the CPU BLAS */
    .gemm_batched = mt_cpu_gemm_batched,
    .random = mt_cuda_emu_random,
    .batch_norm_forward = mt_cuda_emu_batch_norm_forward,
    .batch_norm_backward = mt_cuda_emu_batch_norm_backward,
    .nll_forward = mt_cuda_emu_nll_forward,
    .nll_backward = mt_cuda_emu_nll_backward,
    .sgd_step = mt_cuda_emu_sgd_step,
    .adam_step = mt_cuda_emu_adam_step,
    /* scan.cu, sort.cu */
    .cumsum = mt_cuda_emu_cumsum,
    .sort_rows = mt_cuda_emu_sort_rows,
    .take_along = mt_cuda_emu_take_along,
    .put_along = mt_cuda_emu_put_along,
};

#endif
