/*
 * autograd.c - the tape (nodes), reverse accumulation (mt_backward) and
 * forward accumulation (tangents, mt_jvp).
 *
 * Reverse mode. Each recorded output owns the node that made it; nodes point
 * at their inputs, so the graph is reached from the loss. mt_backward orders
 * the nodes so that every node comes after all nodes that use its output
 * (reverse topological order), seeds dL/dL = 1 and, node by node, calls the
 * op's vjp to turn dL/d(output) into dL/d(input_i), summing contributions:
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

mt_node *mt_node_new(const mt_op_def *op, mt_tensor *out, int n_inputs, mt_tensor *const *inputs)
{
    if (!out || (!taping(n_inputs, inputs) && !has_tangents(n_inputs, inputs))) return NULL;
    mt_node *node = calloc(1, sizeof *node);
    if (!node) { mt_set_error(MT_ERR_MEMORY, "%s: out of memory recording the tape", op->name); return NULL; }
    node->op = op;
    node->output = out;
    node->n_inputs = n_inputs;
    node->inputs = n_inputs <= MT_NODE_INLINE_INPUTS ? node->inline_inputs : calloc((size_t)n_inputs, sizeof(mt_tensor *));
    if (!node->inputs) { free(node); mt_set_error(MT_ERR_MEMORY, "%s: out of memory recording the tape", op->name); return NULL; }
    for (int i = 0; i < n_inputs; i++) node->inputs[i] = inputs[i];
    return node;
}

mt_tensor *mt_node_save(mt_node *node, int slot, mt_tensor *t)
{
    if (!node || !t) return t;
    mt_runtime_scope_forget(t->scope_slot);
    t->scope_slot = -1;
    t->kept = false;
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
    if (!node) return;
    mt_node_release(node);
    if (node->inputs != node->inline_inputs) free(node->inputs);
    free(node->extra);
    free(node);
}

void mt_set_tangent(mt_tensor *t, mt_tensor *tangent)
{
    if (t->tangent) mt_free(t->tangent);
    t->tangent = NULL;
    if (!tangent) return;
    mt_runtime_scope_forget(tangent->scope_slot);
    tangent->scope_slot = -1;
    tangent->kept = false;
    t->tangent = tangent;
}

mt_tensor *mt_node_commit(mt_node *node, mt_tensor *out)
{
    if (!node) return out;
    const mt_op_def *op = node->op;
    if (has_tangents(node->n_inputs, node->inputs)) {
        if (!op->jvp) {
            mt_set_error(MT_ERR_STATE, "%s: forward-mode AD is not defined for this op", op->name);
            mt_node_free(node);
            mt_free(out);
            return NULL;
        }
        mt_tensor *tangents[64], **tan = node->n_inputs <= 64 ? tangents : malloc(sizeof(mt_tensor *) * (size_t)node->n_inputs);
        if (!tan) { mt_node_free(node); mt_free(out); return MT_FAIL(MT_ERR_MEMORY, "%s: out of memory", op->name); }
        for (int i = 0; i < node->n_inputs; i++) tan[i] = node->inputs[i] ? node->inputs[i]->tangent : NULL;
        /* The jvp's temporaries live in a scope of their own; its result leaves as an alias. */
        bool grad_prev = mt_set_grad_enabled(false), fw_prev = mt_set_forward_ad_enabled(false);
        mt_scope scope = mt_scope_begin();
        mt_tensor *t = op->jvp(node, tan);
        mt_tensor *alias = t ? mt_alias_owned(t) : NULL;
        mt_scope_end(scope);
        mt_set_grad_enabled(grad_prev);
        mt_set_forward_ad_enabled(fw_prev);
        if (tan != tangents) free(tan);
        if (!alias) { mt_node_free(node); mt_free(out); return NULL; }
        mt_set_tangent(out, alias);
    }
    if (taping(node->n_inputs, node->inputs)) {
        out->requires_grad = true;
        out->grad_fn = node;
    } else {
        mt_node_free(node);
    }
    return out;
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
        mt_runtime_scope_forget(copy->scope_slot);
        copy->scope_slot = -1;
        holder->grad = copy;
        return MT_OK;
    }
    return mt_add_inplace(holder->grad, g);
}

/* Nodes reachable from root, each after every node that consumes its output
   (iterative depth-first post-order, reversed). */
static mt_node **topological_order(mt_node *root, int64_t *count)
{
    int64_t cap = 64, n = 0, sp = 0;
    mt_node **order = malloc((size_t)cap * sizeof *order);
    typedef struct { mt_node *node; int next_input; } frame;
    int64_t stack_cap = 64;
    frame *stack = malloc((size_t)stack_cap * sizeof *stack);
    if (!order || !stack) { free(order); free(stack); return NULL; }
    root->visited = true;
    stack[sp++] = (frame){ root, 0 };
    while (sp > 0) {
        frame *f = &stack[sp - 1];
        if (f->next_input < f->node->n_inputs) {
            mt_tensor *in = f->node->inputs[f->next_input++];
            mt_node *child = in ? in->grad_fn : NULL;
            if (child && !child->visited) {
                child->visited = true;
                if (sp == stack_cap) {
                    stack_cap *= 2;
                    frame *grown = realloc(stack, (size_t)stack_cap * sizeof *stack);
                    if (!grown) { free(order); free(stack); return NULL; }
                    stack = grown;
                }
                stack[sp++] = (frame){ child, 0 };
            }
            continue;
        }
        if (n == cap) {
            cap *= 2;
            mt_node **grown = realloc(order, (size_t)cap * sizeof *order);
            if (!grown) { free(order); free(stack); return NULL; }
            order = grown;
        }
        order[n++] = f->node;
        sp--;
    }
    free(stack);
    for (int64_t i = 0; i < n; i++) order[i]->visited = false;
    /* post-order puts inputs first; reverse it so consumers come first */
    for (int64_t i = 0; i < n / 2; i++) {
        mt_node *tmp = order[i];
        order[i] = order[n - 1 - i];
        order[n - 1 - i] = tmp;
    }
    *count = n;
    return order;
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
    mt_status st = node->op->vjp(node, node->grad_accum, g);
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
    }
    mt_scope_end(scope);

    for (int i = 0; i < n; i++) {
        mt_tensor *gi = g[i];
        if (!gi) continue;
        mt_tensor *in = node->inputs[i];
        if (st != MT_OK) { mt_free(gi); continue; }
        mt_adopt(gi);
        if (in->retains_grad || (!in->grad_fn && in->requires_grad)) st = accumulate_into(in, gi);
        if (in->grad_fn && st == MT_OK) {
            mt_node *prev = in->grad_fn;
            if (!prev->grad_accum) { prev->grad_accum = gi; continue; }
            mt_tensor *sum = mt_add(prev->grad_accum, gi);
            if (!sum) st = mt_last_status();
            else { mt_free(prev->grad_accum); prev->grad_accum = sum; }
        }
        mt_free(gi);
    }
    if (g != grads) free(g);
    return st;
}

mt_status mt_backward_ex(mt_tensor *output, mt_backward_opts opts)
{
    if (!output) return mt_set_error(MT_ERR_ARGUMENT, "backward: output is NULL (an earlier op failed: %s)", mt_last_error());
    if (output->graph_freed)
        return mt_set_error(MT_ERR_STATE, "backward: the graph of this tensor was freed (its step scope ended); "
                                          "call backward before mt_scope_end");
    if (!output->requires_grad)
        return mt_set_error(MT_ERR_STATE, "backward: the output does not require grad (no input requires grad, or grad mode was off)");
    char s1[128], s2[128];
    if (!opts.grad_output && mt_numel(output) != 1)
        return mt_set_error(MT_ERR_SHAPE, "backward: output of shape %s is not a scalar; pass grad_output",
                            mt_shape_str(output, s1, sizeof s1));
    if (opts.grad_output && !mt_same_shape(opts.grad_output, output))
        return mt_set_error(MT_ERR_SHAPE, "backward: grad_output of shape %s does not match output of shape %s",
                            mt_shape_str(opts.grad_output, s1, sizeof s1), mt_shape_str(output, s2, sizeof s2));

    bool grad_prev = mt_set_grad_enabled(false), fw_prev = mt_set_forward_ad_enabled(false);
    mt_scope scope = mt_scope_begin();
    mt_status st = MT_OK;
    mt_tensor *seed = opts.grad_output ? mt_contiguous(opts.grad_output) : mt_ones_like(output);
    if (!seed) st = mt_last_status();
    else if (seed->dtype != output->dtype) {
        seed = mt_to_dtype(seed, output->dtype);
        if (!seed) st = mt_last_status();
    }

    if (st == MT_OK && !output->grad_fn) {           /* the output is itself a leaf */
        st = accumulate_into(output, seed);
    } else if (st == MT_OK) {
        int64_t n = 0;
        mt_node **order = topological_order(output->grad_fn, &n);
        if (!order) st = mt_set_error(MT_ERR_MEMORY, "backward: out of memory ordering the graph");
        for (int64_t i = 0; i < n && st == MT_OK; i++) {
            if (order[i]->released)
                st = mt_set_error(MT_ERR_STATE, "backward: trying to backward through the graph a second time "
                                                "(node %s was already released); pass retain_graph = true to the first backward",
                                  order[i]->op->name);
            /* A kept tensor whose scope ended lost its graph: reaching it means the
               caller forgot to detach it (the classic RNN hidden-state mistake). */
            for (int k = 0; k < order[i]->n_inputs && st == MT_OK; k++) {
                mt_tensor *in = order[i]->inputs[k];
                if (in && in->graph_freed && in->requires_grad)
                    st = mt_set_error(MT_ERR_STATE, "backward: input %d of %s was computed in a step scope that has ended, "
                                                    "so its graph was freed; mt_detach it before using it in a new graph",
                                      k, order[i]->op->name);
            }
        }
        if (st == MT_OK) output->grad_fn->grad_accum = mt_alias_owned(seed);
        if (st == MT_OK) mt_adopt(output->grad_fn->grad_accum);
        if (st == MT_OK && output->retains_grad) st = accumulate_into(output, seed);
        for (int64_t i = 0; i < n && st == MT_OK; i++) {
            mt_node *node = order[i];
            if (node->grad_accum) st = backward_node(node);
            if (node->grad_accum) mt_free(node->grad_accum);
            node->grad_accum = NULL;
            if (!opts.retain_graph) mt_node_release(node);
        }
        for (int64_t i = 0; i < n; i++) {   /* after an error, drop what is left */
            if (order[i]->grad_accum) mt_free(order[i]->grad_accum);
            order[i]->grad_accum = NULL;
        }
        free(order);
    }
    mt_scope_end(scope);
    mt_set_grad_enabled(grad_prev);
    mt_set_forward_ad_enabled(fw_prev);
    return st;
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

mt_status mt_jvp(mt_fn f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *const *tangents,
                 mt_tensor **out, mt_tensor **out_tangent)
{
    if (!f || n_in <= 0 || !primals || !tangents || !out || !out_tangent)
        return mt_set_error(MT_ERR_ARGUMENT, "jvp: NULL function, inputs or outputs, or no inputs");
    mt_tensor **duals = calloc((size_t)n_in, sizeof *duals);
    if (!duals) return mt_set_error(MT_ERR_MEMORY, "jvp: out of memory");
    bool grad_prev = mt_set_grad_enabled(false);
    mt_status st = MT_OK;
    for (int i = 0; i < n_in && st == MT_OK; i++) {
        duals[i] = tangents[i] ? mt_make_dual(primals[i], tangents[i]) : primals[i];
        if (!duals[i]) st = mt_last_status();
    }
    mt_tensor *y = st == MT_OK ? f(ctx, n_in, duals) : NULL;
    if (st == MT_OK && !y) st = mt_last_status() != MT_OK ? mt_last_status() : mt_set_error(MT_ERR_STATE, "jvp: the function returned NULL");
    mt_set_grad_enabled(grad_prev);
    *out = *out_tangent = NULL;
    if (st == MT_OK) {
        *out = mt_detach(y);
        *out_tangent = y->tangent ? mt_adopt(mt_alias_owned(y->tangent)) : mt_zeros_like(y);
        if (!*out || !*out_tangent) st = mt_last_status();
    }
    free(duals);
    return st;
}

mt_status mt_vjp(mt_fn f, void *ctx, int n_in, mt_tensor *const *primals, mt_tensor *v,
                 mt_tensor **out, mt_tensor **grads)
{
    if (!f || n_in <= 0 || !primals || !out || !grads)
        return mt_set_error(MT_ERR_ARGUMENT, "vjp: NULL function, inputs or outputs, or no inputs");
    mt_tensor **leaves = calloc((size_t)n_in, sizeof *leaves);
    if (!leaves) return mt_set_error(MT_ERR_MEMORY, "vjp: out of memory");
    bool grad_prev = mt_set_grad_enabled(true);
    mt_status st = MT_OK;
    for (int i = 0; i < n_in && st == MT_OK; i++) {
        leaves[i] = mt_requires_grad(mt_detach(primals[i]), mt_dtype_is_float(primals[i] ? primals[i]->dtype : MT_I64));
        if (!leaves[i] && primals[i]) st = mt_last_status();
    }
    mt_tensor *y = st == MT_OK ? f(ctx, n_in, leaves) : NULL;
    if (st == MT_OK && !y) st = mt_last_status() != MT_OK ? mt_last_status() : mt_set_error(MT_ERR_STATE, "vjp: the function returned NULL");
    mt_set_grad_enabled(grad_prev);
    *out = NULL;
    for (int i = 0; i < n_in; i++) grads[i] = NULL;
    if (st == MT_OK && y->requires_grad) st = mt_backward_ex(y, (mt_backward_opts){ .grad_output = v });
    if (st == MT_OK) {
        *out = mt_detach(y);
        for (int i = 0; i < n_in; i++) {
            if (!leaves[i]) continue;
            if (leaves[i]->grad) {
                grads[i] = mt_adopt(leaves[i]->grad);
                leaves[i]->grad = NULL;
            } else if (mt_dtype_is_float(leaves[i]->dtype)) {
                grads[i] = mt_zeros_like(leaves[i]);
            }
        }
    }
    free(leaves);
    return st;
}
