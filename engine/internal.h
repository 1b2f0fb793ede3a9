/*
 * internal.h - what an op's implementation needs and a user does not:
 * the op definition (vjp, jvp), the tape node, and small helpers for checks,
 * output allocation and broadcasting. Included by the .c files of engine/ only.
 *
 * Writing an op (see op_elementwise.c for the pattern):
 *
 *   MT_OP_DEF(exp_op, "exp", exp_vjp, exp_jvp);          // registered for the coverage test
 *   mt_tensor *mt_exp(mt_tensor *x) {
 *       if (!mt_check_float("exp", x)) return NULL;
 *       mt_tensor *y = mt_new_tensor(...);
 *       if (mt_run_kernel("exp", x, unary, MT_UNARY_EXP, ...) != MT_OK) { mt_free(y); return NULL; }
 *       mt_node *node = mt_node_new(&exp_op, y, 1, &x);   // NULL if neither tape nor tangent
 *       return mt_node_commit(node, y);                    // runs the jvp, attaches the node
 *   }
 *
 * vjp and jvp run with grad mode and forward AD off, so they may use any op.
 *
 * An op with several outputs (values and indices of max over a dim; an LSTM's
 * y, h_n, c_n) records one node for all of them:
 *
 *   mt_node *node = mt_node_new_n(&max_dim_op, 1, &x);   // an mt_op_def_n
 *   mt_node_save(node, 0, mt_alias_owned(what_the_vjp_needs));
 *   if (mt_node_commit_n(node, 2, outs) != MT_OK) return <error>;   // outs freed on error
 *
 * and defines vjp_n / jvp_n, which see every output's gradient or tangent.
 */
#ifndef MT_ENGINE_INTERNAL_H
#define MT_ENGINE_INTERNAL_H

#include "mytorch/ops.h"
#include "host/runtime.h"   /* the backend table, the scope registry, device errors */

#define MT_NODE_INLINE_INPUTS 4
#define MT_NODE_MAX_SAVED 6
/* The most outputs one node can have (an LSTM layer has 3). */
#define MT_NODE_MAX_OUTPUTS 4

typedef struct mt_op_def {
    const char *name;
    /* Reverse mode: from grad_out = dL/d(output), set grads[i] = dL/d(inputs[i])
       for each input i with mt_node_needs_grad(node, i) (others may stay NULL).
       Each gradient has exactly its input's shape (mt_sum_to undoes broadcasting). */
    mt_status (*vjp)(mt_node *node, mt_tensor *grad_out, mt_tensor **grads);
    /* Forward mode: the output's tangent from the inputs' tangents
       (tangents[i] == NULL means zero). NULL result with an error set fails the op. */
    mt_tensor *(*jvp)(mt_node *node, mt_tensor *const *tangents);
} mt_op_def;

/* An op with several outputs (mt_node_new_n / mt_node_commit_n). vjp_n gets
   grad_outs[k] = dL/d(output k) for k < node->n_outputs, NULL where no
   gradient reached output k (it counts as zero; at least one is set), and
   sets grads as a vjp does. jvp_n sets out_tangents[k] for each output (NULL
   means zero; outputs of an integer dtype get none). Neither may read the
   outputs themselves (one may have been freed while the node lives on
   through another): what they need of them is saved on the node.
   base.vjp and base.jvp stay NULL; base.name names the op. */
typedef struct mt_op_def_n {
    mt_op_def base;
    mt_status (*vjp_n)(mt_node *node, mt_tensor *const *grad_outs, mt_tensor **grads);
    mt_status (*jvp_n)(mt_node *node, mt_tensor *const *tangents, mt_tensor **out_tangents);
} mt_op_def_n;

/* Defines op definition `var` (static const mt_op_def var = { name, vjp, jvp })
   and registers it in the list of every op definition, a linker section that
   mt_op_defs() reads: the op-coverage test (tests/test_op_coverage.c) checks
   that each has a harness case on every backend. Every op definition is
   written with it (scripts/check_layers.sh fails on one that is not). */
#define MT_OP_DEF(var, ...)                                                                  \
    static const mt_op_def var = { __VA_ARGS__ };                                            \
    static const mt_op_def *const var##_registered_                                          \
        __attribute__((used, section("mt_op_defs"), aligned(sizeof(void *)))) = &var
/* The same for an op with several outputs: registers var.base. */
#define MT_OP_DEF_N(var, ...)                                                                \
    static const mt_op_def_n var = { __VA_ARGS__ };                                          \
    static const mt_op_def *const var##_registered_                                          \
        __attribute__((used, section("mt_op_defs"), aligned(sizeof(void *)))) = &var.base
/* Every op definition of the library (MT_OP_DEF, MT_OP_DEF_N: the base of
   an op with several outputs), in no particular order. */
const mt_op_def *const *mt_op_defs(size_t *count);

struct mt_node {
    const mt_op_def *op;
    const mt_op_def_n *op_n;         /* the op with several outputs, NULL for the rest */
    /* A single-output node: the tensor it made, which holds the node, so
       vjp and jvp may read it. NULL on a node with several outputs. */
    mt_tensor *output;
    int n_outputs;                   /* 1, or the count given to mt_node_commit_n */
    /* Which tensor is output k, for routing gradients: compared, never
       dereferenced (an output may be freed while the node lives on through
       another). NULL for an output that takes no gradient (integer dtype). */
    const mt_tensor *output_ids[MT_NODE_MAX_OUTPUTS];
    /* Holders of the node: each output whose grad_fn it is (before the
       commit: the op that made it). The node is freed with the last. */
    int refs;
    int n_inputs;
    mt_tensor **inputs;              /* points at inline_inputs or a heap array */
    mt_tensor *inline_inputs[MT_NODE_INLINE_INPUTS];
    mt_tensor *saved[MT_NODE_MAX_SAVED]; /* owned by the node, see mt_node_save */
    int64_t ints[16];                /* the op's integer parameters */
    double reals[4];                 /* the op's real parameters */
    void *extra;                     /* op-specific heap data, freed with the node */

    /* backward bookkeeping */
    mt_tensor *grad_accum[MT_NODE_MAX_OUTPUTS];   /* dL/d(output k) gathered so far */
    bool visited;
    bool released;                   /* its saved tensors are gone */
};

/* ---------------------------------------------------------------- recording */
/* A node for op with output out, or NULL when nothing needs recording (grad
   mode off or no input requires grad, and no input carries a tangent). */
mt_node *mt_node_new(const mt_op_def *op, mt_tensor *out, int n_inputs, mt_tensor *const *inputs);
/* The same for an op with several outputs (check them before: no out here). */
mt_node *mt_node_new_n(const mt_op_def_n *op, int n_inputs, mt_tensor *const *inputs);
/* The node takes ownership of t (removing it from its scope); returns t. */
mt_tensor *mt_node_save(mt_node *node, int slot, mt_tensor *t);
/* Propagates tangents with op->jvp, then attaches node to out for the tape
   (or frees it when only tangents were needed). Returns out, or NULL on error
   (out is then freed). node may be NULL: returns out. */
mt_tensor *mt_node_commit(mt_node *node, mt_tensor *out);
/* The same for a node of mt_node_new_n with n outputs (n <= MT_NODE_MAX_OUTPUTS):
   tangents from its jvp_n, then node becomes the grad_fn of every floating output (integer
   outputs, such as indices, take no gradient and no tangent). On error node
   and every outs[k] are freed and set to NULL. node may be NULL: MT_OK. */
mt_status mt_node_commit_n(mt_node *node, int n, mt_tensor **outs);
/* mt_node_commit_n, then hands output k to *dest[k], or frees it where dest[k]
   is NULL (the caller did not ask for it): the end of a multi-output op's
   public function, e.g. mt_max_dim(x, ..., &values, NULL). */
mt_status mt_node_commit_to(mt_node *node, int n, mt_tensor **outs, mt_tensor **const *dest);
bool mt_node_needs_grad(const mt_node *node, int i);
/* Drops one holder's reference (an output's when it is freed or its graph
   is cut, or the op's for a node it never committed); the last frees the node. */
void mt_node_free(mt_node *node);
/* Drops what the node saved (after backward without retain_graph). */
void mt_node_release(mt_node *node);

/* Tangent ownership: t takes tangent (removing it from its scope). */
void mt_set_tangent(mt_tensor *t, mt_tensor *tangent);

/* ---------------------------------------------------------------- errors with the op's name */
#define MT_FAIL(code, ...) (mt_set_error((code), __VA_ARGS__), (mt_tensor *)NULL)
/* Checks that x is non-NULL (NULL propagates silently: an earlier error is
   already recorded, or records one) and floating point. */
bool mt_check_input(const char *op, const mt_tensor *x);
bool mt_check_float(const char *op, const mt_tensor *x);
bool mt_check_same_device(const char *op, const mt_tensor *a, const mt_tensor *b);
bool mt_check_same_dtype(const char *op, const mt_tensor *a, const mt_tensor *b);
/* Normalizes dim (negative counts from the end) into [0, ndim); -1 + error if out of range. */
int mt_wrap_dim(const char *op, int dim, int ndim);

/* ---------------------------------------------------------------- kernels */
const mt_backend *mt_backend_of(const mt_tensor *t);

/*
 * Every call of a backend kernel goes through these. A backend may lack an
 * entry (a partial backend), and a kernel may fail (a dtype it has no code
 * for, its scratch memory, a launch); either way the op fails with an error
 * naming the op, the entry and the device:
 *
 *   if (mt_run_kernel("softmax", x, softmax, log, x->dtype, outer, n, inner, px, py) != MT_OK) {
 *       mt_free(y);          // the op's partial results
 *       return NULL;
 *   }
 *
 * mt_run_kernel(op, t, entry, args...) runs the backend entry `entry` of t's
 * device with args and returns MT_OK, or records the error and returns its
 * status. t (evaluated more than once) is the tensor whose device, dtype and
 * shape the message names. Messages:
 *   "softmax: the cuda-emu backend has no 'softmax' kernel"     (a NULL entry)
 *   "matmul: no cpu kernel 'gemm' for i32"                      (MT_ERR_UNSUPPORTED)
 *   "batch_norm: kernel 'batch_norm_forward' on cpu: no scratch memory: <the allocator's message>"
 *   "softmax: kernel 'softmax' on cuda failed: <the device error>"  (MT_ERR_DEVICE)
 *
 * mt_kernel(op, t, entry) is the entry itself (to check before a series of
 * calls), or NULL with the "has no kernel" error recorded.
 */
#define mt_kernel(op, t, entry) \
    ((mt_backend_of(t)->entry || mt_kernel_missing((op), (t), #entry)) ? mt_backend_of(t)->entry : NULL)
#define mt_run_kernel(op, t, entry, ...)                                                          \
    (mt_kernel((op), (t), entry) ? mt_kernel_status((op), (t), #entry, mt_backend_of(t)->entry(__VA_ARGS__)) \
                                 : MT_ERR_UNSUPPORTED)
/* Records "<op>: the <device> backend has no '<entry>' kernel"; returns false. */
bool mt_kernel_missing(const char *op, const mt_tensor *t, const char *entry);
/* Records the failure st of kernel `entry` run for op on t's device; returns st. */
mt_status mt_kernel_failed(const char *op, const mt_tensor *t, const char *entry, mt_status st);
static inline mt_status mt_kernel_status(const char *op, const mt_tensor *t, const char *entry, mt_status st)
{
    return st == MT_OK ? MT_OK : mt_kernel_failed(op, t, entry, st);
}

/* ---------------------------------------------------------------- allocation and layout */
/* A contiguous tensor on device (in the current scope, or owned when none is open). */
mt_tensor *mt_new_tensor(mt_device device, mt_dtype dtype, int ndim, const int64_t *shape);
/* A 0-d tensor holding value, with like's dtype and device (for constants in
   vjp/jvp code, which must live where the op's tensors live). */
mt_tensor *mt_scalar_like(const mt_tensor *like, double value);
/* A view of base's storage with the given geometry (shares storage). */
mt_tensor *mt_new_view(const mt_tensor *base, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset);
/* Pointer to element 0 of t on its device. */
void *mt_ptr(const mt_tensor *t);
/* Contiguous strides for shape (a shape mt_shape_check accepted). */
void mt_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
/* The product of the dims of a shape already checked (a tensor's own shape). */
int64_t mt_shape_numel(int ndim, const int64_t *shape);
/* The checked product, for any shape from outside (arguments, files): the
   number of elements, or -1 with an MT_ERR_SHAPE error naming op and the
   shape when ndim is out of range, a dim is negative, or the product of the
   nonzero dims, or that product times elem_size bytes, overflows. Every
   tensor constructor and every file reader calls it. */
int64_t mt_shape_check(const char *op, int ndim, const int64_t *shape, size_t elem_size);
/* An owned alias of t (same storage and geometry, no autograd state): how a
   result leaves an inner scope. */
mt_tensor *mt_alias_owned(const mt_tensor *t);
/* Hands an owned tensor to the current scope (it stays owned when none is open). */
mt_tensor *mt_adopt(mt_tensor *t);
/* Takes t out of its scope now: whoever holds it (a module, a node, an
   optimizer, a tensor's .grad) owns it from here on. Returns t. */
mt_tensor *mt_unscope(mt_tensor *t);

/* Composite ops (built from other ops) bracket their body so that ownership
   follows the one rule of docs/ownership.md with or without a scope open:
       mt_composite c = mt_composite_begin();
       ... ops ...
       return mt_composite_end(c, result);
   With a scope open this does nothing (the scope owns every intermediate).
   With none, the intermediates become the result's companions, freed with
   it, so the graph through them stays valid as long as the result lives;
   a NULL result (an error) frees them at once. */
typedef struct mt_composite { int mark; bool opened; } mt_composite;
mt_composite mt_composite_begin(void);
mt_tensor *mt_composite_end(mt_composite c, mt_tensor *result);

/* Frees tmp if it is a temporary distinct from original (for mt_contiguous results). */
void mt_free_temp(mt_tensor *tmp, const mt_tensor *original);

/* ---------------------------------------------------------------- broadcasting */
/* out_shape = broadcast of the n shapes (PyTorch rules); false + error naming op otherwise. */
bool mt_broadcast_shapes(const char *op, int n, mt_tensor *const *ts, int *out_ndim, int64_t *out_shape);
/* A loop over out (operand 0) and the n inputs broadcast to out's shape,
   with adjacent dims merged where every operand allows. */
void mt_loop_build(mt_loop *loop, const mt_tensor *out, int n, mt_tensor *const *inputs);

/* ---------------------------------------------------------------- shared op bodies */
/* y = f(x) elementwise through the backend's unary kernel, recorded as op
   (vjp and jvp from unary_backward); p0, p1 are the kind's params. */
mt_tensor *mt_unary(const mt_op_def *op, mt_unary_kind kind, mt_tensor *x, double p0, double p1);
/* A reduction of x over a set of dims through the backend's reduce kernel,
   without autograd: the building block of op_reduce.c. */
mt_tensor *mt_reduce_raw(const char *op, mt_reduce_kind kind, mt_tensor *x, int n_dims, const int *dims,
                         bool keepdim, double param);

/* ---------------------------------------------------------------- no-autograd in-place helpers */
/* dst += src (src broadcast to dst), no tape. */
mt_status mt_add_inplace(mt_tensor *dst, const mt_tensor *src);

#endif
