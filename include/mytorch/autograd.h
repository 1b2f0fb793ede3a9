/*
 * autograd.h - reverse accumulation on a tape and forward accumulation with
 * tangents. See docs/autograd.md for worked examples of both.
 *
 * Reverse mode: an op whose inputs require grad (and grad mode is on) records
 * a node on its output: the op, its inputs, what it saved. mt_backward(loss)
 * walks the nodes in reverse topological order, calling each op's vjp, and
 * accumulates gradients into the leaves' .grad.
 *
 * Forward mode: a tensor may carry a tangent (mt_make_dual). Each op whose
 * inputs carry tangents computes its output's tangent with its jvp at once,
 * without a tape. mt_jvp() wraps the whole pattern for a function.
 */
#ifndef MT_AUTOGRAD_H
#define MT_AUTOGRAD_H

#include "mytorch/tensor.h"

/* Marks a leaf as needing a gradient (no-op in the other direction for non-leaves). */
mt_tensor *mt_requires_grad(mt_tensor *t, bool requires_grad);
/* Keep .grad on a non-leaf too. */
mt_status mt_retain_grad(mt_tensor *t);
/* The accumulated gradient of t (NULL when none). */
mt_tensor *mt_grad(const mt_tensor *t);
/* Frees t's gradient (PyTorch's zero_grad(set_to_none=True)). */
void mt_zero_grad(mt_tensor *t);
/* A view sharing t's storage that is cut off from the graph and carries no tangent. */
mt_tensor *mt_detach(mt_tensor *t);

/* d(loss)/d(leaf) for every leaf reached; loss must have one element.
   The graph is released afterwards: a second backward through it is an error. */
mt_status mt_backward(mt_tensor *loss);
typedef struct mt_backward_opts {
    mt_tensor *grad_output;   /* dL/d(output); NULL means ones (output must be a scalar) */
    bool retain_graph;        /* keep the graph for another backward */
} mt_backward_opts;
mt_status mt_backward_ex(mt_tensor *output, mt_backward_opts opts);

/* Disables taping in a C block: MT_NO_GRAD { ... } */
#define MT_NO_GRAD \
    for (bool mt_ng_prev_ = mt_set_grad_enabled(false), mt_ng_once_ = true; mt_ng_once_; \
         mt_set_grad_enabled(mt_ng_prev_), mt_ng_once_ = false)

/* ---------------------------------------------------------------- forward mode */
/* A view of primal carrying tangent (same shape) for forward-mode AD. */
mt_tensor *mt_make_dual(mt_tensor *primal, mt_tensor *tangent);
/* The tangent carried by t, or NULL (meaning zero). */
mt_tensor *mt_tangent(const mt_tensor *t);

/* f maps n_in inputs to one output. */
typedef mt_tensor *(*mt_fn)(void *ctx, int n_in, mt_tensor *const *inputs);
/* Evaluates f(primals) and its directional derivative J_f(primals) . tangents
   in one forward pass (no tape): *out = f(primals), *out_tangent = J . t. */
mt_status mt_jvp(mt_fn f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *const *tangents,
                 mt_tensor **out, mt_tensor **out_tangent);
/* Evaluates f(primals) and J^T . v (v = ones for a scalar output when NULL):
   grads[i] receives the gradient for inputs[i] (fresh tensors in the current scope). */
mt_status mt_vjp(mt_fn f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *v,
                 mt_tensor **out, mt_tensor **grads);

#endif
