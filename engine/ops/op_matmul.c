/*
 * op_matmul.c - matrix products.
 *
 * The primitive is a batched product of 3-d operands, C[b] = A[b] B[b]:
 *   vjp  gA = g B^T,  gB = A^T g          jvp  tA B + A tB
 * Transposed views cost nothing: the BLAS reads them through its trans flags.
 * mt_matmul reduces every PyTorch case (1-d, 2-d, broadcast batches) to it.
 *
 * linear(x, W, b) = x W^T + b is a primitive of its own so that the bias is
 * folded into the GEMM (beta = 1 over rows pre-filled with b).
 */
#include "engine/internal.h"

#include <string.h>

/* How the BLAS reads matrix k of a 3-d operand: row-major (trans = false)
   or column-major (trans = true) with leading dimension ld. */
typedef struct blas_view { bool trans; int64_t ld, batch_stride; } blas_view;

static bool as_blas(const mt_tensor *x, blas_view *v)
{
    int64_t r = x->shape[1], c = x->shape[2];
    v->batch_stride = x->shape[0] == 1 ? 0 : x->stride[0];
    if (x->stride[2] == 1 && (x->stride[1] >= (c > 1 ? c : 1) || r == 1)) {
        v->trans = false;
        v->ld = r == 1 ? (c > 1 ? c : 1) : x->stride[1];
        return true;
    }
    if (x->stride[1] == 1 && (x->stride[2] >= (r > 1 ? r : 1) || c == 1)) {
        v->trans = true;
        v->ld = c == 1 ? (r > 1 ? r : 1) : x->stride[2];
        return true;
    }
    return false;
}

static mt_tensor *bmm(mt_tensor *a, mt_tensor *b);

static mt_status bmm_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *a = node->inputs[0], *b = node->inputs[1];
    if (mt_node_needs_grad(node, 0) && !(grads[0] = bmm(g, mt_transpose(b, 1, 2)))) return mt_last_status();
    if (mt_node_needs_grad(node, 1) && !(grads[1] = bmm(mt_transpose(a, 1, 2), g))) return mt_last_status();
    return MT_OK;
}

static mt_tensor *bmm_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *pa = t[0] ? bmm(t[0], node->inputs[1]) : NULL;
    mt_tensor *pb = t[1] ? bmm(node->inputs[0], t[1]) : NULL;
    return pa && pb ? mt_add(pa, pb) : pa ? pa : pb;
}

MT_OP_DEF(bmm_op, "matmul", bmm_vjp, bmm_jvp);

/* a [B, m, k] x b [B, k, n] -> [B, m, n]; a batch of 1 broadcasts. */
static mt_tensor *bmm(mt_tensor *a, mt_tensor *b)
{
    if (!a || !b) return NULL;
    int64_t batch = a->shape[0] > b->shape[0] ? a->shape[0] : b->shape[0];
    int64_t m = a->shape[1], k = a->shape[2], n = b->shape[2];
    mt_tensor *out = mt_new_tensor(mt_device_of(a), a->dtype, 3, (int64_t[]){ batch, m, n });
    if (!out) return NULL;
    blas_view va, vb;
    mt_tensor *ac = a, *bc = b;
    if (!as_blas(a, &va)) { ac = mt_contiguous(a); as_blas(ac, &va); }
    if (!as_blas(b, &vb)) { bc = mt_contiguous(b); as_blas(bc, &vb); }
    if (!ac || !bc) { mt_free(out); return NULL; }
    mt_status st;
    if (k == 0 || mt_numel(out) == 0)
        st = mt_run_kernel("matmul", a, fill, out->dtype, mt_numel(out), mt_ptr(out), 0);
    else if (batch == 1)
        st = mt_run_kernel("matmul", a, gemm, a->dtype, va.trans, vb.trans, m, n, k, 1.0, mt_ptr(ac), va.ld, mt_ptr(bc),
                           vb.ld, 0.0, mt_ptr(out), n > 1 ? n : 1);
    else
        st = mt_run_kernel("matmul", a, gemm_batched, a->dtype, va.trans, vb.trans, m, n, k, 1.0, mt_ptr(ac), va.ld,
                           va.batch_stride, mt_ptr(bc), vb.ld, vb.batch_stride, 0.0, mt_ptr(out), n > 1 ? n : 1, m * n,
                           batch);
    mt_free_temp(ac, a);
    mt_free_temp(bc, b);
    if (st != MT_OK) { mt_free(out); return NULL; }
    mt_tensor *ins[2] = { a, b };
    return mt_node_commit(mt_node_new(&bmm_op, out, 2, ins), out);
}

static mt_tensor *matmul_body(mt_tensor *a, mt_tensor *b)
{
    if (!mt_check_float("matmul", a) || !mt_check_float("matmul", b)) return NULL;
    if (!mt_check_same_dtype("matmul", a, b) || !mt_check_same_device("matmul", a, b)) return NULL;
    char sa[128], sb[128];
    if (a->ndim == 0 || b->ndim == 0)
        return MT_FAIL(MT_ERR_SHAPE, "matmul: both operands need at least 1 dim, got %s and %s",
                       mt_shape_str(a, sa, sizeof sa), mt_shape_str(b, sb, sizeof sb));
    int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim >= 2 ? b->ndim - 2 : 0];
    if (ka != kb)
        return MT_FAIL(MT_ERR_SHAPE, "matmul: shapes %s and %s do not multiply (inner sizes %lld and %lld)",
                       mt_shape_str(a, sa, sizeof sa), mt_shape_str(b, sb, sizeof sb), (long long)ka, (long long)kb);
    bool a_vec = a->ndim == 1, b_vec = b->ndim == 1;
    mt_tensor *a2 = a_vec ? mt_unsqueeze(a, 0) : a;            /* [.., m, k] */
    mt_tensor *b2 = b_vec ? mt_unsqueeze(b, 1) : b;            /* [.., k, n] */
    if (!a2 || !b2) return NULL;
    int64_t m = a2->shape[a2->ndim - 2], k = ka, n = b2->shape[b2->ndim - 1];

    /* the broadcast batch shape */
    int bdim = (a2->ndim > b2->ndim ? a2->ndim : b2->ndim) - 2;
    int64_t batch_shape[MT_MAX_DIMS];
    for (int d = 0; d < bdim; d++) {
        int da = d - (bdim - (a2->ndim - 2)), db = d - (bdim - (b2->ndim - 2));
        int64_t x = da >= 0 ? a2->shape[da] : 1, y = db >= 0 ? b2->shape[db] : 1;
        if (x != y && x != 1 && y != 1)
            return MT_FAIL(MT_ERR_SHAPE, "matmul: batch dims of %s and %s do not broadcast",
                           mt_shape_str(a, sa, sizeof sa), mt_shape_str(b, sb, sizeof sb));
        batch_shape[d] = x > y ? x : y;
    }
    int64_t batch = mt_shape_numel(bdim, batch_shape);
    mt_tensor *a3, *b3;
    if (b2->ndim == 2 && !a_vec) {
        /* [.., m, k] x [k, n]: fold a's batch into its rows, one GEMM */
        a3 = mt_reshape(a2, 3, (int64_t[]){ 1, batch * m, k });
        b3 = mt_unsqueeze(b2, 0);
    } else {
        int64_t full[MT_MAX_DIMS];
        memcpy(full, batch_shape, sizeof(int64_t) * (size_t)bdim);
        full[bdim] = m; full[bdim + 1] = k;
        a3 = mt_reshape(mt_expand(a2, bdim + 2, full), 3, (int64_t[]){ batch, m, k });
        full[bdim] = k; full[bdim + 1] = n;
        b3 = mt_reshape(mt_expand(b2, bdim + 2, full), 3, (int64_t[]){ batch, k, n });
    }
    mt_tensor *c3 = bmm(a3, b3);
    if (!c3) return NULL;
    int64_t oshape[MT_MAX_DIMS];
    int od = 0;
    for (int d = 0; d < bdim; d++) oshape[od++] = batch_shape[d];
    if (!a_vec) oshape[od++] = m;
    if (!b_vec) oshape[od++] = n;
    return mt_reshape(c3, od, oshape);
}

mt_tensor *mt_matmul(mt_tensor *a, mt_tensor *b)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, matmul_body(a, b));
}

/* ---------------------------------------------------------------- linear */
/* inputs: x2 [M, in], weight [out, in], bias [out] or absent */
static mt_status linear_vjp(mt_node *node, mt_tensor *g, mt_tensor **grads)
{
    mt_tensor *x = node->inputs[0], *w = node->inputs[1];
    if (mt_node_needs_grad(node, 0) && !(grads[0] = mt_matmul(g, w))) return mt_last_status();
    if (mt_node_needs_grad(node, 1) && !(grads[1] = mt_matmul(mt_transpose(g, 0, 1), x))) return mt_last_status();
    if (node->n_inputs > 2 && mt_node_needs_grad(node, 2)) {
        int rows = 0;
        if (!(grads[2] = mt_sum(g, 1, &rows, false))) return mt_last_status();
    }
    return MT_OK;
}

static mt_tensor *linear_jvp(mt_node *node, mt_tensor *const *t)
{
    mt_tensor *x = node->inputs[0], *w = node->inputs[1], *r = NULL;
    if (t[0]) r = mt_matmul(t[0], mt_transpose(w, 0, 1));
    if (t[1]) {
        mt_tensor *p = mt_matmul(x, mt_transpose(t[1], 0, 1));
        r = r ? mt_add(r, p) : p;
    }
    if (node->n_inputs > 2 && t[2]) {
        mt_tensor *p = mt_expand(t[2], 2, node->output->shape);
        r = r ? mt_add(r, p) : mt_contiguous(p);
    }
    return r;
}

MT_OP_DEF(linear_op, "linear", linear_vjp, linear_jvp);

static mt_tensor *linear_body(mt_tensor *x, mt_tensor *weight, mt_tensor *bias)
{
    if (!mt_check_float("linear", x) || !mt_check_float("linear", weight)) return NULL;
    if (bias && !mt_check_float("linear", bias)) return NULL;
    char sx[128], sw[128], sb[128];
    if (weight->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != weight->shape[1])
        return MT_FAIL(MT_ERR_SHAPE, "linear: input %s does not fit weight %s (expected [..., in] and [out, in])",
                       mt_shape_str(x, sx, sizeof sx), mt_shape_str(weight, sw, sizeof sw));
    if (bias && (bias->ndim != 1 || bias->shape[0] != weight->shape[0]))
        return MT_FAIL(MT_ERR_SHAPE, "linear: bias %s does not fit weight %s (expected [out])",
                       mt_shape_str(bias, sb, sizeof sb), mt_shape_str(weight, sw, sizeof sw));
    if (!mt_check_same_dtype("linear", x, weight) || (bias && !mt_check_same_dtype("linear", x, bias))) return NULL;
    if (!mt_check_same_device("linear", x, weight) || (bias && !mt_check_same_device("linear", x, bias))) return NULL;

    int64_t in = weight->shape[1], out_f = weight->shape[0], rows = mt_numel(x) / (in ? in : 1);
    mt_tensor *x2 = x->ndim == 2 ? x : mt_reshape(x, 2, (int64_t[]){ rows, in });
    if (!x2) return NULL;
    mt_tensor *xc = mt_contiguous(x2), *wc = mt_contiguous(weight);
    mt_tensor *y = mt_new_tensor(mt_device_of(x), x->dtype, 2, (int64_t[]){ rows, out_f });
    if (!xc || !wc || !y) return NULL;
    double beta = 0;
    mt_status st = MT_OK;
    if (bias) {   /* every row of y starts as the bias */
        mt_tensor *bc = mt_contiguous(bias);
        if (!bc) return NULL;
        mt_loop loop;
        mt_loop_build(&loop, y, 1, &bc);
        st = mt_run_kernel("linear", x, copy, &loop, y->dtype, mt_ptr(y), bc->dtype, mt_ptr(bc));
        mt_free_temp(bc, bias);
        beta = 1;
    }
    if (st == MT_OK && rows > 0 && out_f > 0) {
        if (in > 0)
            st = mt_run_kernel("linear", x, gemm, x->dtype, false, true, rows, out_f, in, 1.0, mt_ptr(xc), in, mt_ptr(wc),
                               in, beta, mt_ptr(y), out_f);
        else if (!bias)
            st = mt_run_kernel("linear", x, fill, y->dtype, mt_numel(y), mt_ptr(y), 0);
    }
    mt_free_temp(xc, x2);
    mt_free_temp(wc, weight);
    if (st != MT_OK) { mt_free(y); return NULL; }
    mt_tensor *ins[3] = { x2, weight, bias };
    y = mt_node_commit(mt_node_new(&linear_op, y, bias ? 3 : 2, ins), y);
    if (!y || x->ndim == 2) return y;
    int64_t oshape[MT_MAX_DIMS];
    memcpy(oshape, x->shape, sizeof oshape);
    oshape[x->ndim - 1] = out_f;
    return mt_reshape(y, x->ndim, oshape);
}

mt_tensor *mt_linear(mt_tensor *x, mt_tensor *weight, mt_tensor *bias)
{
    mt_composite c = mt_composite_begin();   /* intermediates: docs/ownership.md */
    return mt_composite_end(c, linear_body(x, weight, bias));
}
