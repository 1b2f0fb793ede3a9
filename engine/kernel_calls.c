/*
 * kernel_calls.c - the messages of a backend kernel call that did not work
 * (engine/internal.h, mt_run_kernel): an entry the backend lacks, or a kernel
 * that returned a failure status. Each names the op, the entry and the device.
 */
#include "engine/internal.h"

#include <stdio.h>

bool mt_kernel_missing(const char *op, const mt_tensor *t, const char *entry)
{
    mt_set_error(MT_ERR_UNSUPPORTED, "%s: the %s backend has no '%s' kernel", op, mt_backend_of(t)->name, entry);
    return false;
}

mt_status mt_kernel_failed(const char *op, const mt_tensor *t, const char *entry, mt_status st)
{
    const char *device = mt_backend_of(t)->name, *dtype = mt_dtype_name(t->dtype);
    char shape[128], detail[640];
    mt_shape_str(t, shape, sizeof shape);
    switch (st) {
    case MT_ERR_UNSUPPORTED:
        return mt_set_error(st, "%s: no %s kernel '%s' for %s", op, device, entry, dtype);
    case MT_ERR_MEMORY:
        /* A kernel returns this only when its scratch allocation failed, and
           the allocator has just recorded why (the size, the device, its limit). */
        snprintf(detail, sizeof detail, "%s", mt_last_status() == MT_ERR_MEMORY ? mt_last_error() : "out of memory");
        return mt_set_error(st, "%s: kernel '%s' on %s: no scratch memory: %s", op, entry, device, detail);
    case MT_ERR_DEVICE:
        /* The wrapper recorded the CUDA error as a device error: it is this op's. */
        snprintf(detail, sizeof detail, "%s",
                 mt_device_error_check() != MT_OK ? mt_last_error() : "a device error");
        return mt_set_error(st, "%s: kernel '%s' on %s failed: %s", op, entry, device, detail);
    case MT_ERR_ARGUMENT:
        return mt_set_error(st, "%s: kernel '%s' on %s cannot take its arguments (%s tensor of shape %s)", op, entry,
                            device, dtype, shape);
    default:
        return mt_set_error(st, "%s: kernel '%s' on %s failed with status %d (%s tensor of shape %s)", op, entry,
                            device, (int)st, dtype, shape);
    }
}
