/*
 * cuda.h - CUDA devices as a program sees them (PyTorch's torch.cuda):
 * discovery that never fails hard, device properties, the TF32 and
 * deterministic flags, streams and events, pinned host memory.
 *
 * Plain C: this header needs no CUDA header, and everything here links and
 * answers in every build. Built without the CUDA toolkit, or run where no GPU
 * and driver are, discovery says why CUDA is not available, streams and
 * events of the cpu and cuda-emu devices are synchronous (an event records
 * the host's clock), and pinned memory is ordinary memory.
 *
 * Errors: functions returning mt_status record a message (mt_last_error());
 * asynchronous failures are reported by the engine's next allocation or copy,
 * naming the CUDA call and the error's name.
 */
#ifndef MYTORCH_CUDA_H
#define MYTORCH_CUDA_H

#include "mytorch/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- discovery */
/* Whether this build has the CUDA backend compiled in (MYTORCH_HAVE_CUDA_TOOLKIT). */
bool mt_cuda_built(void);
/* Whether CUDA can be used here: built in, a driver that is recent enough,
   and at least one device. Decided once per process (the first call asks
   cudart); when not, *why (if given) says why, e.g.
   "cuda: no CUDA driver found (cudaErrorInsufficientDriver)". Never fails
   hard and never prints. */
bool mt_cuda_is_available(const char **why);
/* Number of usable CUDA devices (0 when not available). */
int mt_cuda_device_count(void);

typedef struct mt_cuda_device_props {
    int index;
    char name[256];
    int cc_major, cc_minor;          /* compute capability */
    int sm_count;                    /* multiprocessors */
    size_t total_memory;             /* bytes */
    size_t shared_memory_per_block_optin;  /* the most a kernel may ask for, bytes */
    int max_threads_per_sm;
    int l2_cache_bytes;
    int memory_clock_khz;            /* peak memory clock */
    int memory_bus_width_bits;
    double peak_bandwidth_gbs;       /* 2 * clock * bus width / 8 (DDR), in 1e9 bytes/s */
    int driver_version, runtime_version;  /* e.g. 13000 for 13.0 */
} mt_cuda_device_props;
/* The properties of device index (for the bench's reports). */
mt_status mt_cuda_get_device_properties(int index, mt_cuda_device_props *out);

/* ---------------------------------------------------------------- flags */
/* TF32 tensor cores for float32 GEMMs (cuBLAS CUBLAS_TF32_TENSOR_OP_MATH):
   off by default (full float32 accuracy). Process-wide; returns the previous
   setting; applies to GEMMs issued after the call. */
bool mt_set_allow_tf32(bool allow);
bool mt_get_allow_tf32(void);
/* Deterministic mode (mt_set_deterministic): include/mytorch/runtime.h. */

/* ---------------------------------------------------------------- streams and events */
/* A stream orders the work issued on it; work on different streams may run
   concurrently. Each host thread has a current stream (initially none: the
   device's default stream), which the backend's kernels, copies and cuBLAS
   calls use. Streams of the cpu and cuda-emu devices exist so that code can
   be written once: their work has finished when the call returns. */
typedef struct mt_stream mt_stream;
typedef struct mt_event mt_event;

/* A new stream on device (cuda: cudaStreamCreate; cpu, cuda-emu: synchronous).
   NULL with MT_ERR_DEVICE when the device is not available. */
mt_stream *mt_stream_create(mt_device device);
/* Waits for the stream's work, then destroys it (NULL: nothing). A stream
   that is some thread's current stream must not be destroyed. */
mt_status mt_stream_destroy(mt_stream *stream);
/* Waits until the work issued on stream has finished (NULL: the calling
   thread's current stream of the default device type, i.e. the default stream). */
mt_status mt_stream_synchronize(mt_stream *stream);
/* Makes stream the calling thread's current stream (NULL: back to the
   default stream); returns the previous one. */
mt_stream *mt_set_current_stream(mt_stream *stream);
mt_stream *mt_current_stream(void);
/* The device a stream belongs to. */
mt_device mt_stream_device(const mt_stream *stream);
/* Makes future work on stream wait for event (cudaStreamWaitEvent). */
mt_status mt_stream_wait_event(mt_stream *stream, mt_event *event);

/* An event marks a point in a stream; it times (cudaEventDefault). */
mt_event *mt_event_create(mt_device device);
void mt_event_destroy(mt_event *event);
/* Records event at the current end of stream (NULL: the current stream). */
mt_status mt_event_record(mt_event *event, mt_stream *stream);
/* Waits until the stream has passed event. */
mt_status mt_event_synchronize(mt_event *event);
/* Whether the stream has passed event (false on error too). */
bool mt_event_query(mt_event *event);
/* Milliseconds between two recorded events (both must have been passed:
   synchronizes on end first). */
mt_status mt_event_elapsed(mt_event *start, mt_event *end, float *ms);

/* ---------------------------------------------------------------- pinned host memory */
/* Page-locked host memory (cudaHostAlloc) for the data loader's staging
   buffers: copies from it to a device run asynchronously and at full bus
   speed. Falls back to ordinary memory (64-byte aligned) where CUDA is not
   available. Free with mt_pinned_free only. NULL with MT_ERR_MEMORY on failure. */
void *mt_pinned_alloc(size_t nbytes);
void mt_pinned_free(void *ptr);
/* Whether ptr (from mt_pinned_alloc) is really page-locked. */
bool mt_pinned_is_page_locked(const void *ptr);
/* Copies nbytes from host memory to device memory on the calling thread's
   current stream, asynchronously on cuda: the source must stay untouched
   until the stream has passed the copy (record an event after it). Other
   devices copy at once. */
mt_status mt_copy_to_device_async(mt_device device, void *dev_dst, const void *host_src, size_t nbytes);

#ifdef __cplusplus
}
#endif

#endif
