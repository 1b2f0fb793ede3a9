/*
 * op_dropout.c - inverted dropout.
 *
 * Training:  m_i ~ Bernoulli(1 - p),  y = x * m / (1 - p)
 *            vjp  g * m / (1 - p)      jvp  t * m / (1 - p)
 * Eval:      y = x.
 *
 * The mask is drawn from a Philox generator (counter = generator offset +
 * element index), so the same seed gives the same mask on every backend.
 */
#include "engine/internal.h"

static mt_status dropout_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    grads[0] = mt_mul(g, node->saved[0]);
    return grads[0] ? MT_OK : mt_last_status();
}

static mt_tensor *dropout_jvp(mt_node *node, mt_tensor *const *t) { return mt_mul(t[0], node->saved[0]); }

MT_OP_DEF(dropout_op, "dropout", dropout_vjp, dropout_jvp);

mt_tensor *mt_dropout(mt_tensor *x, double p, bool training, mt_generator *gen)
{
    if (!mt_check_float("dropout", x)) return NULL;
    if (!(p >= 0 && p <= 1)) return MT_FAIL(MT_ERR_ARGUMENT, "dropout: probability must be in [0, 1], got %g", p);
    if (!training || p == 0) return x;

    /* scaled mask: 1/(1-p) where kept, 0 where dropped (all 0 when p == 1) */
    mt_tensor *mask = mt_new_tensor(mt_device_of(x), x->dtype, x->ndim, x->shape);
    if (!mask) return NULL;
    int64_t n = mt_numel(x);
    uint64_t seed, offset;
    if (gen) {
        seed = gen->seed;
        offset = gen->offset;
        gen->offset += (uint64_t)n;
    } else {
        offset = mt_runtime_next_random_offset(&seed, (uint64_t)n);
    }
    if (mt_run_kernel("dropout", x, random, MT_RANDOM_BERNOULLI, x->dtype, n, seed, offset, 1 - p,
                      p < 1 ? 1 / (1 - p) : 0, mt_ptr(mask)) != MT_OK) {
        mt_free(mask);
        return NULL;
    }

    mt_tensor *y;
    MT_NO_GRAD {
        bool fw = mt_set_forward_ad_enabled(false);
        y = mt_mul(x, mask);
        mt_set_forward_ad_enabled(fw);
    }
    if (!y) { mt_free(mask); return NULL; }
    mt_node *node = mt_node_new(&dropout_op, y, 1, &x);
    if (node) mt_node_save(node, 0, mask);
    else mt_free(mask);
    return mt_node_commit(node, y);
}
