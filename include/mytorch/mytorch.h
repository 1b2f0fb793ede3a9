/*
 * mytorch.h - the one header a program includes.
 *
 *   types.h      dtypes, status codes, devices
 *   runtime.h    errors, grad mode, device memory statistics, threads
 *   cuda.h       CUDA devices, streams and events, pinned memory
 *   tensor.h     tensors, views, creation, step scopes
 *   autograd.h   backward (reverse mode) and jvp (forward mode)
 *   ops.h        differentiable operations
 *   conv.h       convolutions
 *   pool.h       pooling and resampling (max, average, adaptive, interpolate, the course's up/downsample)
 *   nn.h         modules
 *   optim.h      optimizers, schedulers, clipping
 *   serialize.h  safetensors checkpoints
 *   npy.h        NumPy .npy / .npz files
 *   data.h       datasets and the prefetching batch loader
 */
#ifndef MYTORCH_H
#define MYTORCH_H

#include "mytorch/types.h"
#include "mytorch/runtime.h"
#include "mytorch/cuda.h"
#include "mytorch/tensor.h"
#include "mytorch/autograd.h"
#include "mytorch/ops.h"
#include "mytorch/conv.h"
#include "mytorch/pool.h"
#include "mytorch/nn.h"
#include "mytorch/optim.h"
#include "mytorch/serialize.h"
#include "mytorch/npy.h"
#include "mytorch/data.h"

#endif
