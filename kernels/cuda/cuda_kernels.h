/*
 * cuda_kernels.h - the host wrappers of the .cu files of kernels/cuda: one per backend
 * entry (host/backend.h documents each signature). Each .cu file is built
 * twice: by nvcc, giving mt_cuda_<name> for real GPUs, and under the SIMT
 * emulator, giving mt_cuda_emu_<name>. MT_CUDA_FN picks the prefix: the .cu
 * files get it from cuda_compat.h; a host file defines it before including
 * this header (host/cuda_backend.c, host/cuda_emu_backend.c).
 *
 * A wrapper launches on the calling thread's current stream, checks the launch
 * (mt_cuda_launch_status in cuda_launch.h: cudaGetLastError) and returns an
 * mt_status: MT_OK; MT_ERR_UNSUPPORTED for a dtype or kind it has no kernel
 * for; MT_ERR_ARGUMENT for sizes it cannot launch; MT_ERR_MEMORY when its
 * scratch memory could not be had; MT_ERR_DEVICE when a launch or CUDA call
 * failed, which it has also recorded through mt_device_record_error (the
 * CUDA error's name, which the engine puts into the op's message).
 */
#ifndef MT_CUDA_FN
#error "define MT_CUDA_FN(name) (or include kernels/cuda/cuda_compat.h) before kernels/cuda/cuda_kernels.h"
#endif

#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Implemented by the host runtime (host/runtime.c): a wrapper whose launch or
   CUDA call failed reports it here; the engine fails its next operation with
   the message ("<what>: <CUDA error name>"), as CUDA reports asynchronous
   errors at the next call. */
void mt_device_record_error(const char *what, int code, const char *code_name);

/* The wrappers' two other hooks into the host runtime, named per build like
   the wrappers (mt_cuda_... in host/cuda_runtime.c, mt_cuda_emu_... in
   host/cuda_emu_backend.c):
   - the calling thread's current stream (an opaque cudaStream_t; NULL, the
     legacy default stream, when none was set, and always under emulation,
     whose launches are synchronous); every launch goes on it, so one
     thread's work stays in its stream's order (MT_STREAM() in cuda_compat.h);
   - scratch memory for a kernel's temporaries from the engine's caching
     allocator of the current device, reused in stream order (cudaMalloc and
     cudaFree would call the driver and synchronise the device on every
     step); NULL on failure, with the engine error set. */
void *MT_CUDA_FN(current_stream_handle)(void);
void *MT_CUDA_FN(scratch_alloc)(size_t nbytes);
void MT_CUDA_FN(scratch_free)(void *ptr, size_t nbytes);

/* mt_status MT_CUDA_FN(<name>)(<params>) for every kernel entry of
   kernels/kernel_entries.h. A .cu file defines those of its family; the
   backend tables point only at those defined (cmake/cuda.cmake lists them),
   so a declaration here without a definition is a missing entry, not a link
   error. */
#define MT_KERNEL_ENTRY(name, family, params) MT_MUST_CHECK mt_status MT_CUDA_FN(name) params;
#include "kernels/kernel_entries.h"

#ifdef __cplusplus
}
#endif
