/*
 * types.h - the vocabulary every layer of mytorch shares: element types,
 * status codes and devices. Plain enums and structs, nothing else, so that
 * kernels/ (which includes nothing above it) can use them too.
 */
#ifndef MYTORCH_TYPES_H
#define MYTORCH_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_MAX_DIMS 8

typedef enum mt_dtype {
    MT_F32, MT_F64, MT_I32, MT_I64, MT_U8, MT_BOOL, MT_DTYPE_COUNT
} mt_dtype;

/* Size in bytes of one element; 0 for an invalid dtype. */
static inline size_t mt_dtype_size(mt_dtype t)
{
    switch (t) {
    case MT_F32: case MT_I32: return 4;
    case MT_F64: case MT_I64: return 8;
    case MT_U8: case MT_BOOL: return 1;
    default: return 0;
    }
}
static inline bool mt_dtype_is_float(mt_dtype t) { return t == MT_F32 || t == MT_F64; }

typedef enum mt_status {
    MT_OK = 0,
    MT_ERR_ARGUMENT,  /* a bad argument: NULL, out of range, inconsistent options */
    MT_ERR_SHAPE,     /* shapes that do not fit the op */
    MT_ERR_DTYPE,     /* a dtype the op does not take */
    MT_ERR_DEVICE,    /* tensors on different devices, or a device that is not there */
    MT_ERR_MEMORY,    /* an allocation failed */
    MT_ERR_IO,        /* a file could not be opened, read or written */
    MT_ERR_FORMAT,    /* a file's contents are malformed or truncated */
    MT_ERR_STATE,     /* the call does not fit the object's state (e.g. backward twice) */
    MT_ERR_UNSUPPORTED, /* the device's backend has no kernel for this op, or none for this dtype */
} mt_status;

typedef enum mt_device_type { MT_DEVICE_CPU, MT_DEVICE_CUDA, MT_DEVICE_CUDA_EMU, MT_DEVICE_TYPE_COUNT } mt_device_type;

typedef struct mt_device {
    mt_device_type type;
    int index;
} mt_device;

/* Options structs (docs/options.md): every field is used exactly as given,
   zero included. A struct whose PyTorch defaults are not all zero comes with
   a defaults value, MT_<NAME>_DEFAULTS: start from it and change what you
   need. It sets from_defaults to this tag, and the constructor refuses a
   struct without it, so a zero-initialized one cannot slip through as
   "all zeros" by mistake. */
#define MT_OPTS_FROM_DEFAULTS 0x6d744f70u

#endif
