/*
 * host/runtime.h - the runtime's internals (the public part is
 * include/mytorch/runtime.h). The process's runtime state: the only mutable state mytorch
 * keeps outside of objects the user holds. It is per thread (errors, grad
 * mode, the scope stack) or guarded by a lock (the caching allocator).
 */
#ifndef MT_RUNTIME_H
#define MT_RUNTIME_H

#include <stdarg.h>
#include "mytorch/runtime.h"
#include "host/backend.h"

/* ---------------------------------------------------------------- device errors */


/* A device error recorded by a kernel wrapper (see kernels/cuda/cuda_kernels.h):
   returns its status and moves its message into the thread's last error, or
   MT_OK when none is pending. The engine checks at every allocation and at
   every copy to the host. */
mt_status mt_device_error_check(void);
/* Records a device error (called by the CUDA kernel wrappers). */
void mt_device_record_error(const char *what, int code, const char *code_name);


/* ---------------------------------------------------------------- scope registry */
/* The per-thread list of objects created inside open step scopes (see
   include/mytorch/tensor.h for the user-facing mt_scope API). The runtime only keeps
   the list; engine/ decides what an entry is and how to release it. */
typedef void (*mt_release_fn)(void *object);
int  mt_runtime_scope_depth(void);
int  mt_runtime_scope_push(void);                /* returns the mark (list length) */
/* Registers object; returns its slot, or -1 when no scope is open. */
int64_t mt_runtime_scope_register(void *object);
void mt_runtime_scope_forget(int64_t slot);      /* the object left the scope (kept or freed) */
/* Pops scopes down to mark, calling release on every live object registered
   after it, newest first. Returns the number of objects released. */
int64_t mt_runtime_scope_pop(int mark, mt_release_fn release);
/* The same, handing each live object to each(object, ctx) instead. */
int64_t mt_runtime_scope_pop_each(int mark, void (*each)(void *object, void *ctx), void *ctx);

/* ---------------------------------------------------------------- memory */
/* Caching allocator: freed blocks go to size-classed free lists of their
   device and are reused; the backend's raw alloc runs only on a miss. */
void *mt_device_alloc(mt_device device, size_t nbytes);
void  mt_device_free(mt_device device, void *ptr, size_t nbytes);

/* Streams, as the caching allocator sees them. A device type without these
   ops (cpu, cuda-emu) has one implicit stream. With them (cuda: installed by
   host/cuda_runtime.c) a freed block remembers the freeing thread's current
   stream; a request on that stream reuses it at once (stream order keeps the
   old work first), a request on another stream only once an event recorded
   on the block's stream has been passed. Streams and events are opaque here. */
typedef struct mt_alloc_stream_ops {
    void *(*current)(void);         /* the calling thread's current stream */
    void *(*mark)(void *stream);    /* an event recorded now on stream; NULL on failure */
    bool (*passed)(void *event);    /* whether its stream has passed it (false on error) */
    void (*release)(void *event);
} mt_alloc_stream_ops;
/* Installs ops for a device type's pool (NULL: back to one implicit stream);
   call while none of its blocks are cached (e.g. after mt_device_empty_cache). */
void  mt_device_set_stream_ops(mt_device_type type, const mt_alloc_stream_ops *ops);
/* A stream is being destroyed, its work finished: its cached blocks move to
   the default stream (NULL), so that no event is ever recorded on it. */
void  mt_device_forget_stream(mt_device_type type, void *stream);

/* ---------------------------------------------------------------- default device */
/* The device new tensors go to. On first use it is chosen once: the
   MYTORCH_DEVICE environment variable (cpu, cuda, cuda:N, cuda-emu) if set,
   else cuda when a GPU is usable, else cpu. */
mt_device mt_runtime_default_device(void);
void mt_runtime_set_default_device(mt_device device);
/* Parses "cpu", "cuda", "cuda:N", "cuda-emu"; false on anything else. */
bool mt_device_parse(const char *text, mt_device *out);

/* ---------------------------------------------------------------- threads and seed */

/* The seed and counter of the process-wide default random generator. */
uint64_t mt_runtime_next_random_offset(uint64_t *seed_out, uint64_t count);
void mt_runtime_manual_seed(uint64_t seed);
void mt_runtime_rng_state(uint64_t *seed, uint64_t *offset);
void mt_runtime_set_rng_state(uint64_t seed, uint64_t offset);

#endif
