/*
 * autograd.c - the tape (nodes), reverse accumulation (mt_backward) and
 * forward accumulation (tangents, mt_jvp).
 *
 * Reverse mode. The outputs of a recorded op own the node that made them
 * (a reference each: an op with several outputs has one node for all of
 * them, freed with the last); nodes point at their inputs, so the graph is
 * reached from the loss. mt_backward orders the nodes so that every node
 * comes after all nodes that use one of its outputs (reverse topological
 * order), seeds dL/dL = 1 and, node by node, calls the op's vjp to turn
 * dL/d(output k), gathered per output, into dL/d(input_i), summing
 * contributions:
 *
 *     dL/dx = sum over uses u of x:  vjp_u(dL/d(out_u))
 *
 * Forward mode. A tangent travels with its primal. When an op runs on inputs
 * carrying tangents t_i, its jvp computes the output's tangent
 *
 *     t_out = sum_i  d(out)/d(in_i) . t_i
 *
 * right away, so one forward pass gives J . t with no tape at all.
 */
#include "engine/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- nodes */
static bool taping(int n, mt_tensor *const *inputs)
{
    if (!mt_is_grad_enabled()) return false;
    for (int i = 0; i < n; i++) if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

static bool has_tangents(int n, mt_tensor *const *inputs)
{
    if (!mt_is_forward_ad_enabled()) return false;
    for (int i = 0; i < n; i++) if (inputs[i] && inputs[i]->tangent) return true;
    return false;
}

/* A node for op over the inputs, or NULL when nothing needs recording. */
static mt_node *node_alloc(const mt_op_def *op, int n_inputs, mt_tensor *const *inputs)
{
    if (!taping(n_inputs, inputs) && !has_tangents(n_inputs, inputs)) return NULL;
    mt_node *node = calloc(1, sizeof *node);
    if (!node) { mt_set_error(MT_ERR_MEMORY, "%s: out of memory recording the tape", op->name); return NULL; }
    node->op = op;
    node->n_outputs = 1;
    node->refs = 1;                  /* the op's, until the commit hands the node to its outputs */
    node->n_inputs = n_inputs;
    node->inputs = n_inputs <= MT_NODE_INLINE_INPUTS ? node->inline_inputs : calloc((size_t)n_inputs, sizeof(mt_tensor *));
    if (!node->inputs) { free(node); mt_set_error(MT_ERR_MEMORY, "%s: out of memory recording the tape", op->name); return NULL; }
    for (int i = 0; i < n_inputs; i++) node->inputs[i] = inputs[i];
    return node;
}

mt_node *mt_node_new(const mt_op_def *op, mt_tensor *out, int n_inputs, mt_tensor *const *inputs)
{
    mt_node *node = out ? node_alloc(op, n_inputs, inputs) : NULL;
    if (node) node->output = out;
    return node;
}

mt_node *mt_node_new_n(const mt_op_def_n *op, int n_inputs, mt_tensor *const *inputs)
{
    mt_node *node = node_alloc(&op->base, n_inputs, inputs);
    if (node) node->op_n = op;
    return node;
}

mt_tensor *mt_node_save(mt_node *node, int slot, mt_tensor *t)
{
    if (!node || !t) return t;
    mt_unscope(t);
    if (node->saved[slot]) mt_free(node->saved[slot]);
    node->saved[slot] = t;
    return t;
}

bool mt_node_needs_grad(const mt_node *node, int i)
{
    return node->inputs[i] && node->inputs[i]->requires_grad;
}

void mt_node_release(mt_node *node)
{
    for (int i = 0; i < MT_NODE_MAX_SAVED; i++) {
        if (node->saved[i]) mt_free(node->saved[i]);
        node->saved[i] = NULL;
    }
    node->released = true;
}

void mt_node_free(mt_node *node)
{
    if (!node || --node->refs > 0) return;
    mt_node_release(node);
    for (int k = 0; k < MT_NODE_MAX_OUTPUTS; k++) if (node->grad_accum[k]) mt_free(node->grad_accum[k]);
    if (node->inputs != node->inline_inputs) free(node->inputs);
    free(node->extra);
    free(node);
}

void mt_set_tangent(mt_tensor *t, mt_tensor *tangent)
{
    if (t->tangent) mt_free(t->tangent);
    t->tangent = NULL;
    if (!tangent) return;
    t->tangent = mt_unscope(tangent);
}

/* The outputs' tangents from the inputs' (op->jvp, or op_n->jvp_n for several
   outputs), each set on its output. The jvp's temporaries live in a scope of
   their own; its results leave it as owned aliases. */
static mt_status propagate_tangents(mt_node *node, int n, mt_tensor **outs)
{
    const mt_op_def *op = node->op;
    if (node->op_n ? !node->op_n->jvp_n : !op->jvp)
        return mt_set_error(MT_ERR_STATE, "%s: forward-mode AD is not defined for this op", op->name);
    mt_tensor *tangents[64], **tan = node->n_inputs <= 64 ? tangents : malloc(sizeof(mt_tensor *) * (size_t)node->n_inputs);
    if (!tan) return mt_set_error(MT_ERR_MEMORY, "%s: out of memory", op->name);
    for (int i = 0; i < node->n_inputs; i++) tan[i] = node->inputs[i] ? node->inputs[i]->tangent : NULL;
    mt_tensor *result[MT_NODE_MAX_OUTPUTS] = { NULL }, *alias[MT_NODE_MAX_OUTPUTS] = { NULL };
    bool grad_prev = mt_set_grad_enabled(false), fw_prev = mt_set_forward_ad_enabled(false);
    mt_scope scope = mt_scope_begin();
    mt_status st = MT_OK;
    if (node->op_n) st = node->op_n->jvp_n(node, tan, result);
    else if (!(result[0] = op->jvp(node, tan))) st = mt_last_status() != MT_OK ? mt_last_status() : MT_ERR_STATE;
    if (st != MT_OK && mt_last_status() == MT_OK) mt_set_error(st, "%s: its jvp failed", op->name);
    for (int k = 0; k < n && st == MT_OK; k++) {
        if (!result[k] || !mt_dtype_is_float(outs[k]->dtype)) continue;
        char a[128], b[128];
        if (!mt_same_shape(result[k], outs[k]))
            st = mt_set_error(MT_ERR_SHAPE, "%s: its jvp gave a tangent of shape %s for output %d of shape %s", op->name,
                              mt_shape_str(result[k], a, sizeof a), k, mt_shape_str(outs[k], b, sizeof b));
        else if (!(alias[k] = mt_alias_owned(result[k]))) st = mt_last_status();
    }
    mt_scope_end(scope);
    mt_set_grad_enabled(grad_prev);
    mt_set_forward_ad_enabled(fw_prev);
    if (tan != tangents) free(tan);
    for (int k = 0; k < n; k++) {
        if (st == MT_OK && alias[k]) mt_set_tangent(outs[k], alias[k]);
        else if (alias[k]) mt_free(alias[k]);
    }
    return st;
}

/* Anomaly detection: whether t holds a NaN or an infinity (max |t| is then
   not finite; the max reduction propagates NaN). */
static bool has_non_finite(mt_tensor *t)
{
    if (!mt_dtype_is_float(t->dtype) || mt_numel(t) == 0) return false;
    bool grad_prev = mt_set_grad_enabled(false), fw_prev = mt_set_forward_ad_enabled(false);
    mt_scope scope = mt_scope_begin();
    mt_tensor *largest = mt_amax(mt_abs(t), 0, NULL, false);
    double v = largest ? mt_item(largest) : 0;
    mt_scope_end(scope);
    mt_set_grad_enabled(grad_prev);
    mt_set_forward_ad_enabled(fw_prev);
    return !isfinite(v);
}

mt_status mt_node_commit_n(mt_node *node, int n, mt_tensor **outs)
{
    if (!node) return MT_OK;
    const mt_op_def *op = node->op;
    mt_status st = MT_OK;
    if (n < 1 || n > MT_NODE_MAX_OUTPUTS || !outs)
        st = mt_set_error(MT_ERR_ARGUMENT, "%s: a node has 1 to %d outputs, got %d", op->name, MT_NODE_MAX_OUTPUTS, n);
    for (int k = 0; k < n && st == MT_OK; k++)
        if (!outs[k]) st = mt_set_error(MT_ERR_ARGUMENT, "%s: output %d is NULL", op->name, k);
    bool tape = taping(node->n_inputs, node->inputs);
    if (st == MT_OK && n > 1 && !node->op_n)
        st = mt_set_error(MT_ERR_STATE, "%s: an op with %d outputs needs a node from mt_node_new_n", op->name, n);
    if (st == MT_OK && tape && (node->op_n ? !node->op_n->vjp_n : !op->vjp))
        st = mt_set_error(MT_ERR_STATE, "%s: reverse-mode AD is not defined for this op", op->name);
    if (st == MT_OK) {
        node->n_outputs = n;
        node->output = node->op_n ? NULL : outs[0];
        if (has_tangents(node->n_inputs, node->inputs)) st = propagate_tangents(node, n, outs);
    }
    for (int k = 0; k < n && st == MT_OK && mt_is_anomaly_enabled(); k++) {
        char s[128];
        if (has_non_finite(outs[k]))
            st = mt_set_error(MT_ERR_STATE, "detect_anomaly: %s produced a NaN or infinity in its output %d of shape %s",
                              op->name, k, mt_shape_str(outs[k], s, sizeof s));
    }
    if (st != MT_OK) {
        mt_node_free(node);
        for (int k = 0; outs && k < n; k++) { mt_free(outs[k]); outs[k] = NULL; }
        return st;
    }
    /* The op's reference passes to the outputs that take a gradient. */
    node->refs = 0;
    for (int k = 0; k < n && tape; k++) {
        if (!mt_dtype_is_float(outs[k]->dtype)) continue;
        outs[k]->requires_grad = true;
        outs[k]->grad_fn = node;
        node->output_ids[k] = outs[k];
        node->refs++;
    }
    if (node->refs == 0) {
        node->refs = 1;
        mt_node_free(node);
    }
    return MT_OK;
}

mt_status mt_node_commit_to(mt_node *node, int n, mt_tensor **outs, mt_tensor **const *dest)
{
    mt_status st = mt_node_commit_n(node, n, outs);
    if (st != MT_OK) return st;
    for (int k = 0; k < n; k++) {
        if (dest[k]) *dest[k] = outs[k];
        else mt_free(outs[k]);
    }
    return MT_OK;
}

mt_tensor *mt_node_commit(mt_node *node, mt_tensor *out)
{
    if (!node) return out;
    mt_tensor *outs[1] = { out };
    return mt_node_commit_n(node, 1, outs) == MT_OK ? outs[0] : NULL;
}

/* ---------------------------------------------------------------- leaves */
mt_tensor *mt_requires_grad(mt_tensor *t, bool requires_grad)
{
    if (!t) return NULL;
    if (t->grad_fn) {
        if (!requires_grad) {
            mt_set_error(MT_ERR_STATE, "requires_grad: cannot turn off requires_grad on a non-leaf; use mt_detach");
            return NULL;
        }
        return t;
    }
    if (requires_grad && !mt_dtype_is_float(t->dtype)) {
        mt_set_error(MT_ERR_DTYPE, "requires_grad: only f32 and f64 tensors can require gradients, got %s", mt_dtype_name(t->dtype));
        return NULL;
    }
    t->requires_grad = requires_grad;
    return t;
}

mt_status mt_retain_grad(mt_tensor *t)
{
    if (!t) return mt_set_error(MT_ERR_ARGUMENT, "retain_grad: tensor is NULL");
    if (!t->requires_grad) return mt_set_error(MT_ERR_STATE, "retain_grad: tensor does not require grad");
    t->retains_grad = true;
    return MT_OK;
}

mt_tensor *mt_grad(const mt_tensor *t) { return t ? t->grad : NULL; }

mt_status mt_set_grad(mt_tensor *t, mt_tensor *grad)
{
    if (!t) return mt_set_error(MT_ERR_ARGUMENT, "set_grad: tensor is NULL");
    if (grad) {
        char a[128], b[128];
        if (!mt_same_shape(t, grad) || t->dtype != grad->dtype)
            return mt_set_error(MT_ERR_SHAPE, "set_grad: gradient %s %s does not match tensor %s %s",
                                mt_dtype_name(grad->dtype), mt_shape_str(grad, a, sizeof a),
                                mt_dtype_name(t->dtype), mt_shape_str(t, b, sizeof b));
        if (!mt_check_same_device("set_grad", t, grad)) return mt_last_status();
        grad = mt_alias_owned(grad);   /* t's own reference to grad's storage, as p.grad = g shares it */
        if (!grad) return mt_last_status();
    }
    mt_zero_grad(t);
    t->grad = grad;
    return MT_OK;
}

void mt_zero_grad(mt_tensor *t)
{
    if (t && t->grad) {
        mt_free(t->grad);
        t->grad = NULL;
    }
}

mt_tensor *mt_detach(mt_tensor *t)
{
    if (!t) return NULL;
    return mt_new_view(t, t->ndim, t->shape, t->stride, t->offset);
}

/* ---------------------------------------------------------------- reverse mode */
/* grad of holder += g, where holder->grad is owned by holder. */
static mt_status accumulate_into(mt_tensor *holder, mt_tensor *g)
{
    if (!holder->grad) {
        mt_tensor *copy = mt_new_tensor(mt_device_of(holder), holder->dtype, holder->ndim, holder->shape);
        if (!copy) return mt_last_status();
        mt_status st = mt_copy_(copy, g);
        if (st != MT_OK) { mt_free(copy); return st; }
        holder->grad = mt_unscope(copy);
        return MT_OK;
    }
    return mt_add_inplace(holder->grad, g);
}

/* Nodes reachable from the roots, each after every node that consumes one of
   its outputs (iterative depth-first post-order over all roots, reversed).
   A node reached through several of its outputs, or from several roots, is
   listed once. */
static mt_node **topological_order(int n_roots, mt_node *const *roots, int64_t *count)
{
    int64_t cap = 64, n = 0, sp = 0;
    mt_node **order = malloc((size_t)cap * sizeof *order);
    typedef struct { mt_node *node; int next_input; } frame;
    int64_t stack_cap = 64;
    frame *stack = malloc((size_t)stack_cap * sizeof *stack);
    bool ok = order && stack;
    for (int r = 0; r < n_roots && ok; r++) {
        if (!roots[r] || roots[r]->visited) continue;
        roots[r]->visited = true;
        stack[sp++] = (frame){ roots[r], 0 };
        while (sp > 0 && ok) {
            frame *f = &stack[sp - 1];
            if (f->next_input < f->node->n_inputs) {
                mt_tensor *in = f->node->inputs[f->next_input++];
                mt_node *child = in ? in->grad_fn : NULL;
                if (child && !child->visited) {
                    child->visited = true;
                    if (sp == stack_cap) {
                        stack_cap *= 2;
                        frame *grown = realloc(stack, (size_t)stack_cap * sizeof *stack);
                        if (!grown) { ok = false; break; }
                        stack = grown;
                    }
                    stack[sp++] = (frame){ child, 0 };
                }
                continue;
            }
            if (n == cap) {
                cap *= 2;
                mt_node **grown = realloc(order, (size_t)cap * sizeof *order);
                if (!grown) { ok = false; break; }
                order = grown;
            }
            order[n++] = f->node;
            sp--;
        }
    }
    /* clear the marks, also of nodes still on the stack after a failure */
    for (int64_t i = 0; order && i < n; i++) order[i]->visited = false;
    for (int64_t i = 0; stack && i < sp; i++) stack[i].node->visited = false;
    free(stack);
    if (!ok) { free(order); return NULL; }
    /* post-order puts inputs first; reverse it so consumers come first */
    for (int64_t i = 0; i < n / 2; i++) {
        mt_node *tmp = order[i];
        order[i] = order[n - 1 - i];
        order[n - 1 - i] = tmp;
    }
    *count = n;
    return order;
}

/* Which output of its grad_fn t is (-1 when t is none of them). */
static int output_index(const mt_node *node, const mt_tensor *t)
{
    for (int k = 0; k < node->n_outputs; k++) if (node->output_ids[k] == t) return k;
    return -1;
}

/* dL/d(output k of node) += g; the node takes g (a tensor of the backward's scope). */
static mt_status accumulate_output_grad(mt_node *node, int k, mt_tensor *g)
{
    if (!node->grad_accum[k]) { node->grad_accum[k] = g; return MT_OK; }
    mt_tensor *sum = mt_add(node->grad_accum[k], g);
    mt_free(g);
    if (!sum) return mt_last_status();
    mt_free(node->grad_accum[k]);
    node->grad_accum[k] = sum;
    return MT_OK;
}

static bool has_output_grad(const mt_node *node)
{
    for (int k = 0; k < node->n_outputs; k++) if (node->grad_accum[k]) return true;
    return false;
}

/* Runs one node's vjp and hands each input its share of the gradient. */
static mt_status backward_node(mt_node *node)
{
    int n = node->n_inputs;
    mt_tensor *grads[64], **g = n <= 64 ? grads : malloc((size_t)n * sizeof(mt_tensor *));
    if (!g) return mt_set_error(MT_ERR_MEMORY, "backward: out of memory");
    for (int i = 0; i < n; i++) g[i] = NULL;

    /* vjp temporaries live in a scope of their own; the gradients leave it as owned aliases */
    mt_scope scope = mt_scope_begin();
    mt_status st = node->op_n ? node->op_n->vjp_n(node, node->grad_accum, g)
                              : node->op->vjp(node, node->grad_accum[0], g);
    if (st != MT_OK && mt_last_status() == MT_OK) mt_set_error(st, "backward: %s's vjp failed", node->op->name);
    for (int i = 0; i < n; i++) {
        mt_tensor *gi = g[i];
        g[i] = NULL;
        if (st != MT_OK || !gi || !mt_node_needs_grad(node, i)) continue;
        if (!mt_same_shape(gi, node->inputs[i])) {
            char a[128], b[128];
            st = mt_set_error(MT_ERR_SHAPE, "backward: %s's vjp gave a gradient of shape %s for input %d of shape %s",
                              node->op->name, mt_shape_str(gi, a, sizeof a), i, mt_shape_str(node->inputs[i], b, sizeof b));
            continue;
        }
        g[i] = mt_alias_owned(gi);
        if (!g[i]) st = mt_last_status();
        else if (mt_is_anomaly_enabled() && has_non_finite(g[i])) {
            char s[128];
            st = mt_set_error(MT_ERR_STATE, "detect_anomaly: the backward of %s produced a NaN or infinity in the "
                              "gradient of its input %d (shape %s)", node->op->name, i, mt_shape_str(gi, s, sizeof s));
        }
    }
    mt_scope_end(scope);

    for (int i = 0; i < n; i++) {
        mt_tensor *gi = g[i];
        if (!gi) continue;
        mt_tensor *in = node->inputs[i];
        if (st != MT_OK) { mt_free(gi); continue; }
        mt_adopt(gi);
        if (in->retains_grad || (!in->grad_fn && in->requires_grad)) st = accumulate_into(in, gi);
        int k = in->grad_fn ? output_index(in->grad_fn, in) : -1;
        if (st == MT_OK && in->grad_fn && k < 0)
            st = mt_set_error(MT_ERR_STATE, "backward: input %d of %s is not an output of its grad_fn %s", i,
                              node->op->name, in->grad_fn->op->name);
        if (st == MT_OK && k >= 0) { st = accumulate_output_grad(in->grad_fn, k, gi); continue; }
        mt_free(gi);
    }
    if (g != grads) free(g);
    return st;
}

/* Checks one root of a backward pass; the messages name it as "output" (n == 1)
   or "output r". */
static mt_status check_root(int n, int r, const mt_tensor *output, const mt_tensor *grad_output)
{
    char which[32] = "output", s1[128], s2[128];
    if (n > 1) snprintf(which, sizeof which, "output %d", r);
    if (!output) return mt_set_error(MT_ERR_ARGUMENT, "backward: %s is NULL (an earlier op failed: %s)", which, mt_last_error());
    if (output->graph_freed)
        return mt_set_error(MT_ERR_STATE, "backward: the graph of %s was freed (its step scope ended); "
                                          "call backward before mt_scope_end", n > 1 ? which : "this tensor");
    if (!output->requires_grad)
        return mt_set_error(MT_ERR_STATE, "backward: the %s does not require grad (no input requires grad, or grad mode was off)", which);
    if (!grad_output && mt_numel(output) != 1)
        return mt_set_error(MT_ERR_SHAPE, "backward: %s of shape %s is not a scalar; pass grad_output", which,
                            mt_shape_str(output, s1, sizeof s1));
    if (grad_output && !mt_same_shape(grad_output, output))
        return mt_set_error(MT_ERR_SHAPE, "backward: grad_output of shape %s does not match %s of shape %s",
                            mt_shape_str(grad_output, s1, sizeof s1), which, mt_shape_str(output, s2, sizeof s2));
    return MT_OK;
}

/* The nodes about to run must still hold their saved tensors, and none of
   their inputs may come from a step scope that has ended. */
static mt_status check_graph(mt_node *const *order, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (order[i]->released)
            return mt_set_error(MT_ERR_STATE, "backward: trying to backward through the graph a second time "
                                              "(node %s was already released); pass retain_graph = true to the first backward",
                                order[i]->op->name);
        /* A kept tensor whose scope ended lost its graph: reaching it means the
           caller forgot to detach it (the classic RNN hidden-state mistake). */
        for (int k = 0; k < order[i]->n_inputs; k++) {
            mt_tensor *in = order[i]->inputs[k];
            if (in && in->graph_freed && in->requires_grad)
                return mt_set_error(MT_ERR_STATE, "backward: input %d of %s was computed in a step scope that has ended, "
                                                  "so its graph was freed; mt_detach it before using it in a new graph",
                                    k, order[i]->op->name);
        }
    }
    return MT_OK;
}

mt_status mt_backward_n(int n, mt_tensor *const *outputs, mt_tensor *const *grad_outputs, bool retain_graph)
{
    if (n < 1 || !outputs) return mt_set_error(MT_ERR_ARGUMENT, "backward: no outputs given (n = %d)", n);
    for (int r = 0; r < n; r++) {
        mt_status st = check_root(n, r, outputs[r], grad_outputs ? grad_outputs[r] : NULL);
        if (st != MT_OK) return st;
    }
    mt_node **roots = malloc((size_t)n * sizeof *roots);
    if (!roots) return mt_set_error(MT_ERR_MEMORY, "backward: out of memory");
    for (int r = 0; r < n; r++) roots[r] = outputs[r]->grad_fn;

    bool grad_prev = mt_set_grad_enabled(false), fw_prev = mt_set_forward_ad_enabled(false);
    mt_scope scope = mt_scope_begin();
    mt_status st = MT_OK;
    int64_t count = 0;
    mt_node **order = topological_order(n, roots, &count);
    if (!order) st = mt_set_error(MT_ERR_MEMORY, "backward: out of memory ordering the graph");
    if (st == MT_OK) st = check_graph(order, count);

    /* seed dL/d(output r) = grad_outputs[r] (ones for a scalar when NULL) */
    for (int r = 0; r < n && st == MT_OK; r++) {
        mt_tensor *output = outputs[r], *given = grad_outputs ? grad_outputs[r] : NULL;
        mt_tensor *seed = given ? mt_contiguous(given) : mt_ones_like(output);
        if (seed && seed->dtype != output->dtype) seed = mt_to_dtype(seed, output->dtype);
        if (!seed) { st = mt_last_status(); break; }
        if (!output->grad_fn || output->retains_grad) st = accumulate_into(output, seed);   /* a leaf, or kept */
        if (st != MT_OK || !output->grad_fn) continue;
        mt_tensor *g = mt_adopt(mt_alias_owned(seed));
        if (!g) { st = mt_last_status(); break; }
        int k = output_index(output->grad_fn, output);
        st = k >= 0 ? accumulate_output_grad(output->grad_fn, k, g)
                    : mt_set_error(MT_ERR_STATE, "backward: output %d is not an output of its grad_fn", r);
    }
    for (int64_t i = 0; i < count && st == MT_OK; i++) {
        mt_node *node = order[i];
        if (has_output_grad(node)) st = backward_node(node);
        for (int k = 0; k < node->n_outputs; k++) {
            if (node->grad_accum[k]) mt_free(node->grad_accum[k]);
            node->grad_accum[k] = NULL;
        }
        if (!retain_graph) mt_node_release(node);
    }
    for (int64_t i = 0; i < count; i++)   /* after an error, drop what is left */
        for (int k = 0; k < order[i]->n_outputs; k++) {
            if (order[i]->grad_accum[k]) mt_free(order[i]->grad_accum[k]);
            order[i]->grad_accum[k] = NULL;
        }
    free(order);
    free(roots);
    mt_scope_end(scope);
    mt_set_grad_enabled(grad_prev);
    mt_set_forward_ad_enabled(fw_prev);
    return st;
}

mt_status mt_backward_ex(mt_tensor *output, mt_backward_opts opts)
{
    mt_tensor *outputs[1] = { output }, *grads[1] = { opts.grad_output };
    return mt_backward_n(1, outputs, grads, opts.retain_graph);
}

mt_status mt_backward(mt_tensor *loss) { return mt_backward_ex(loss, (mt_backward_opts){ 0 }); }

/* ---------------------------------------------------------------- forward mode */
mt_tensor *mt_make_dual(mt_tensor *primal, mt_tensor *tangent)
{
    if (!primal || !tangent) return MT_FAIL(MT_ERR_ARGUMENT, "make_dual: %s is NULL", primal ? "tangent" : "primal");
    char a[128], b[128];
    if (!mt_same_shape(primal, tangent))
        return MT_FAIL(MT_ERR_SHAPE, "make_dual: tangent of shape %s does not match primal of shape %s",
                       mt_shape_str(tangent, a, sizeof a), mt_shape_str(primal, b, sizeof b));
    if (primal->dtype != tangent->dtype || !mt_dtype_is_float(primal->dtype))
        return MT_FAIL(MT_ERR_DTYPE, "make_dual: primal (%s) and tangent (%s) must share a floating dtype",
                       mt_dtype_name(primal->dtype), mt_dtype_name(tangent->dtype));
    if (!mt_check_same_device("make_dual", primal, tangent)) return NULL;
    mt_tensor *dual = mt_new_view(primal, primal->ndim, primal->shape, primal->stride, primal->offset);
    if (!dual) return NULL;
    /* the dual is a view of primal for the tape too: gradients flow through it */
    dual->requires_grad = primal->requires_grad;
    if (primal->requires_grad) {
        mt_tensor *same = mt_reshape(primal, primal->ndim, primal->shape);
        if (!same) return NULL;
        mt_free(dual);
        dual = same;
    }
    mt_tensor *alias = mt_alias_owned(tangent);
    if (!alias) return NULL;
    mt_set_tangent(dual, alias);
    return dual;
}

mt_tensor *mt_tangent(const mt_tensor *t) { return t ? t->tangent : NULL; }

/* A one-output mt_fn called as an mt_fn_n (mt_jvp and mt_vjp are the n = 1 case). */
typedef struct single_fn { mt_fn f; void *ctx; } single_fn;

static mt_status call_single(void *ctx, int n_in, mt_tensor *const *inputs, int n_out, mt_tensor **outputs)
{
    (void)n_out;
    const single_fn *s = ctx;
    outputs[0] = s->f(s->ctx, n_in, inputs);
    return MT_OK;   /* a NULL output is reported by the caller */
}

/* Runs f into ys (n_out of them), turning a NULL output into an error. */
static mt_status run_fn(const char *what, mt_fn_n f, void *ctx, int n_in, mt_tensor *const *inputs, int n_out,
                        mt_tensor **ys)
{
    for (int k = 0; k < n_out; k++) ys[k] = NULL;
    mt_status st = f(ctx, n_in, inputs, n_out, ys);
    if (st != MT_OK && mt_last_status() == MT_OK) st = mt_set_error(st, "%s: the function failed", what);
    for (int k = 0; k < n_out && st == MT_OK; k++)
        if (!ys[k]) st = mt_last_status() != MT_OK ? mt_last_status()
                                                   : mt_set_error(MT_ERR_STATE, "%s: the function returned NULL", what);
    return st;
}

mt_status mt_jvp_n(mt_fn_n f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *const *tangents,
                   int n_out, mt_tensor **outs, mt_tensor **out_tangents)
{
    if (!f || n_in <= 0 || !primals || !tangents || n_out <= 0 || !outs || !out_tangents)
        return mt_set_error(MT_ERR_ARGUMENT, "jvp: NULL function, inputs or outputs, or no inputs");
    for (int k = 0; k < n_out; k++) outs[k] = out_tangents[k] = NULL;
    mt_tensor **duals = calloc((size_t)n_in, sizeof *duals), **ys = calloc((size_t)n_out, sizeof *ys);
    if (!duals || !ys) { free(duals); free(ys); return mt_set_error(MT_ERR_MEMORY, "jvp: out of memory"); }
    bool grad_prev = mt_set_grad_enabled(false);
    mt_status st = MT_OK;
    for (int i = 0; i < n_in && st == MT_OK; i++) {
        duals[i] = tangents[i] ? mt_make_dual(primals[i], tangents[i]) : primals[i];
        if (!duals[i]) st = mt_last_status();
    }
    if (st == MT_OK) st = run_fn("jvp", f, ctx, n_in, duals, n_out, ys);
    mt_set_grad_enabled(grad_prev);
    for (int k = 0; k < n_out && st == MT_OK; k++) {
        mt_tensor *y = ys[k];
        outs[k] = mt_detach(y);
        /* a floating output without a tangent has a zero one; an integer output has none */
        if (y->tangent) out_tangents[k] = mt_adopt(mt_alias_owned(y->tangent));
        else if (mt_dtype_is_float(y->dtype)) out_tangents[k] = mt_zeros_like(y);
        if (!outs[k] || (mt_dtype_is_float(y->dtype) && !out_tangents[k])) st = mt_last_status();
    }
    free(duals);
    free(ys);
    return st;
}

mt_status mt_jvp(mt_fn f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *const *tangents,
                 mt_tensor **out, mt_tensor **out_tangent)
{
    if (!f || !out || !out_tangent) return mt_set_error(MT_ERR_ARGUMENT, "jvp: NULL function, inputs or outputs, or no inputs");
    single_fn s = { f, ctx };
    return mt_jvp_n(call_single, &s, n_in, primals, tangents, 1, out, out_tangent);
}

mt_status mt_vjp_n(mt_fn_n f, void *ctx, int n_in, mt_tensor *const *primals, int n_out, mt_tensor *const *v,
                   mt_tensor **outs, mt_tensor **grads)
{
    if (!f || n_in <= 0 || !primals || n_out <= 0 || !outs || !grads)
        return mt_set_error(MT_ERR_ARGUMENT, "vjp: NULL function, inputs or outputs, or no inputs");
    for (int k = 0; k < n_out; k++) outs[k] = NULL;
    for (int i = 0; i < n_in; i++) grads[i] = NULL;
    mt_tensor **leaves = calloc((size_t)n_in, sizeof *leaves), **ys = calloc((size_t)n_out, sizeof *ys);
    mt_tensor **roots = calloc((size_t)n_out, sizeof *roots), **seeds = calloc((size_t)n_out, sizeof *seeds);
    mt_status st = MT_OK;
    if (!leaves || !ys || !roots || !seeds) st = mt_set_error(MT_ERR_MEMORY, "vjp: out of memory");
    bool grad_prev = mt_set_grad_enabled(true);
    for (int i = 0; i < n_in && st == MT_OK; i++) {
        leaves[i] = mt_requires_grad(mt_detach(primals[i]), mt_dtype_is_float(primals[i] ? primals[i]->dtype : MT_I64));
        if (!leaves[i] && primals[i]) st = mt_last_status();
    }
    if (st == MT_OK) st = run_fn("vjp", f, ctx, n_in, leaves, n_out, ys);
    mt_set_grad_enabled(grad_prev);
    /* L = sum_k <y_k, v_k> over the outputs that are given a v and depend on an input */
    int n_roots = 0;
    for (int k = 0; k < n_out && st == MT_OK; k++) {
        if ((v && !v[k]) || !ys[k]->requires_grad) continue;
        roots[n_roots] = ys[k];
        seeds[n_roots++] = v ? v[k] : NULL;
    }
    if (st == MT_OK && n_roots > 0) st = mt_backward_n(n_roots, roots, seeds, false);
    for (int k = 0; k < n_out && st == MT_OK; k++)
        if (!(outs[k] = mt_detach(ys[k]))) st = mt_last_status();
    for (int i = 0; i < n_in && st == MT_OK; i++) {
        if (!leaves[i]) continue;
        if (leaves[i]->grad) {
            grads[i] = mt_adopt(leaves[i]->grad);
            leaves[i]->grad = NULL;
        } else if (mt_dtype_is_float(leaves[i]->dtype)) {
            grads[i] = mt_zeros_like(leaves[i]);
        }
    }
    free(leaves);
    free(ys);
    free(roots);
    free(seeds);
    return st;
}

mt_status mt_vjp(mt_fn f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *v,
                 mt_tensor **out, mt_tensor **grads)
{
    if (!f || !out) return mt_set_error(MT_ERR_ARGUMENT, "vjp: NULL function, inputs or outputs, or no inputs");
    single_fn s = { f, ctx };
    mt_tensor *vs[1] = { v };
    return mt_vjp_n(call_single, &s, n_in, primals, 1, v ? vs : NULL, out, grads);
}
