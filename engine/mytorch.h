/*
 * mytorch.h - the one header a program includes.
 *
 *   tensor.h     tensors, views, creation, step scopes
 *   autograd.h   backward (reverse mode) and jvp (forward mode)
 *   ops.h        differentiable operations
 *   nn.h         modules
 *   optim.h      optimizers, schedulers, clipping
 *   serialize.h  safetensors checkpoints
 */
#ifndef MYTORCH_H
#define MYTORCH_H

#include "engine/tensor.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/nn.h"
#include "engine/optim.h"
#include "engine/serialize.h"
#include "engine/npy.h"

#endif
