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
/* Sets t's gradient to grad (PyTorch's t.grad = grad): same shape, dtype and
   device; t's .grad shares grad's storage (later backward passes accumulate
   into it in place); NULL clears it. */
mt_status mt_set_grad(mt_tensor *t, mt_tensor *grad);
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
/* One backward pass from n outputs at once (PyTorch's
   torch.autograd.backward(tensors, grad_tensors)): the gradient of
   L = sum_r <outputs[r], grad_outputs[r]>. grad_outputs may be NULL, and so
   may each entry: ones, for an output that is a scalar. Outputs may share
   nodes, be outputs of one multi-output op, or be each other's inputs; every
   node runs once. */
mt_status mt_backward_n(int n, mt_tensor *const *outputs, mt_tensor *const *grad_outputs, bool retain_graph);

/* Disables taping in a C block: MT_NO_GRAD { ... } (PyTorch's torch.no_grad()).
   The previous mode comes back however the block is left: at its end, by
   break or continue, and (with GCC or Clang, through the cleanup attribute)
   by return or goto. A break leaves the block, not an enclosing loop. */
typedef struct mt_grad_guard { bool prev; bool once; } mt_grad_guard;
static inline mt_grad_guard mt_grad_guard_begin(bool enabled)
{
    return (mt_grad_guard){ mt_set_grad_enabled(enabled), true };
}
static inline void mt_grad_guard_end(mt_grad_guard *g)
{
    if (g->once || g->prev != mt_is_grad_enabled()) mt_set_grad_enabled(g->prev);
    g->once = false;
}
#if defined(__GNUC__)
#define MT_GRAD_GUARD_CLEANUP_ __attribute__((cleanup(mt_grad_guard_end)))
#else
#define MT_GRAD_GUARD_CLEANUP_
#endif
/* The inner loop takes break and continue, so that the outer loop's step
   (which restores the mode) always runs. */
#define MT_NO_GRAD \
    for (mt_grad_guard mt_ng_ MT_GRAD_GUARD_CLEANUP_ = mt_grad_guard_begin(false); mt_ng_.once; \
         mt_grad_guard_end(&mt_ng_)) \
        for (bool mt_ng_inner_ = true; mt_ng_inner_; mt_ng_inner_ = false)

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

/* The same for a function with several outputs: f writes n_out outputs
   (every one non-NULL) and returns MT_OK. */
typedef mt_status (*mt_fn_n)(void *ctx, int n_in, mt_tensor *const *inputs, int n_out, mt_tensor **outputs);
/* outs[k] = f_k(primals), out_tangents[k] = J_k . tangents (NULL for an
   output of an integer dtype, such as indices). */
mt_status mt_jvp_n(mt_fn_n f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *const *tangents,
                   int n_out, mt_tensor **outs, mt_tensor **out_tangents);
/* outs[k] = f_k(primals), grads[i] = sum_k J_k^T v[k]: the gradient of
   L = sum_k <outs[k], v[k]>. v[k] == NULL leaves output k out of L (a zero
   cotangent); v == NULL means ones for every output (each a scalar). */
mt_status mt_vjp_n(mt_fn_n f, void *ctx, int n_in, mt_tensor *const *primals, int n_out, mt_tensor *const *v,
                   mt_tensor **outs, mt_tensor **grads);

#endif
