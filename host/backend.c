/*
 * backend.c - which backend serves which device type.
 */
#include "host/backend.h"

#include <stddef.h>

bool mt_cuda_emu_built(void)
{
#ifdef MYTORCH_HAVE_CUDA_EMU
    return true;
#else
    return false;
#endif
}

const mt_backend *mt_backend_for(mt_device_type type)
{
    switch (type) {
    case MT_DEVICE_CPU: return &mt_cpu_backend;
#ifdef MYTORCH_HAVE_CUDA_EMU
    case MT_DEVICE_CUDA_EMU: return &mt_cuda_emu_backend;
#endif
    default: return NULL;   /* the real CUDA backend registers here once it is built */
    }
}
