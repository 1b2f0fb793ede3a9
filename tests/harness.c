/*
 * harness.c - implementation of the op-checking harness (see harness.h).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"   /* the tape's nodes and their op definitions, for the coverage records */

/* ---------------------------------------------------------------- ref tensors */
int64_t ref_numel(const ref_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

void ref_alloc(ref_tensor *t, int ndim, const int64_t *shape)
{
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    int64_t n = ref_numel(t);
    t->data = calloc((size_t)(n ? n : 1), sizeof(double));
}

int64_t ref_broadcast_offset(const ref_tensor *t, int out_ndim, const int64_t *index)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        int od = out_ndim - t->ndim + d;
        int64_t i = t->shape[d] == 1 ? 0 : index[od];
        off = off * t->shape[d] + i;
    }
    return off;
}

bool ref_next_index(int ndim, const int64_t *shape, int64_t *index)
{
    for (int d = ndim - 1; d >= 0; d--) {
        if (++index[d] < shape[d]) return true;
        index[d] = 0;
    }
    return false;
}

void ref_broadcast_shape(const ref_tensor *a, const ref_tensor *b, int *ndim, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < n; d++) {
        int da = d - (n - a->ndim), db = d - (n - b->ndim);
        int64_t x = da >= 0 ? a->shape[da] : 1, y = db >= 0 ? b->shape[db] : 1;
        shape[d] = x > y ? x : y;
    }
    *ndim = n;
}

/* ---------------------------------------------------------------- inputs */
typedef struct case_inputs {
    double *values[6];          /* the canonical values, f64 */
    int64_t numel[6];
} case_inputs;

static void make_values(const mt_op_case *c, case_inputs *v, uint64_t seed)
{
    mt_generator gen = mt_generator_new(seed);
    for (int i = 0; i < c->n_inputs; i++) {
        const mt_input_spec *s = &c->inputs[i];
        int64_t n = 1;
        for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
        v->numel[i] = n;
        v->values[i] = malloc(sizeof(double) * (size_t)(n ? n : 1));
        mt_tensor *u = mt_rand(&gen, MT_F64, 1, &n);
        const double *p = mt_data_ptr(u);
        double lo = s->lo, hi = s->hi;
        if (lo == 0 && hi == 0) { lo = -2; hi = 2; }
        for (int64_t k = 0; k < n; k++)
            v->values[i][k] = s->integer ? floor(p[k] * (double)s->int_high) : lo + (hi - lo) * p[k];
        mt_free(u);
    }
}

static void free_values(const mt_op_case *c, case_inputs *v)
{
    for (int i = 0; i < c->n_inputs; i++) free(v->values[i]);
}

/* Engine tensors of the case's inputs in dtype (index inputs stay MT_I64). */
static void make_tensors(const mt_op_case *c, const case_inputs *v, mt_dtype dtype, mt_tensor **t)
{
    for (int i = 0; i < c->n_inputs; i++) {
        const mt_input_spec *s = &c->inputs[i];
        mt_tensor *d = mt_from_data(MT_F64, s->ndim, s->shape, v->values[i]);
        t[i] = s->integer ? mt_to_dtype(d, MT_I64) : mt_to_dtype(d, dtype);
    }
}

static bool differentiable(const mt_op_case *c, int i) { return !c->inputs[i].integer && !c->inputs[i].no_grad; }

static double *to_f64(const mt_tensor *t)
{
    double *d = malloc(sizeof(double) * (size_t)(mt_numel(t) ? mt_numel(t) : 1));
    mt_to_data(t, MT_F64, d);
    return d;
}

static int n_outputs(const mt_op_case *c) { return c->run_n ? c->n_outputs : 1; }

/* The case's op into out[0..n_outputs-1]; false (with the error recorded) when it fails. */
static bool run_case(const mt_op_case *c, mt_tensor *const *in, mt_tensor **out)
{
    if (!c->run_n) return (out[0] = c->run(c, in)) != NULL;
    for (int k = 0; k < n_outputs(c); k++) out[k] = NULL;
    if (c->run_n(c, in, out) != MT_OK) return false;
    for (int k = 0; k < n_outputs(c); k++) if (!out[k]) return false;
    return true;
}

static mt_status run_fn(void *ctx, int n_in, mt_tensor *const *in, int n_out, mt_tensor **out)
{
    (void)n_in;
    (void)n_out;
    return run_case(ctx, in, out) ? MT_OK : mt_last_status();
}

static bool float_output(const mt_tensor *t) { return mt_dtype_is_float(t->dtype); }

/* ---------------------------------------------------------------- checks */
static void check_forward(const mt_op_case *c, const case_inputs *v, mt_dtype dtype, const ref_tensor *expects)
{
    mt_scope scope = mt_scope_begin();
    mt_tensor *in[6], *outs[MT_CASE_MAX_OUTPUTS];
    make_tensors(c, v, dtype, in);
    cr_assert(run_case(c, in, outs), "%s [%s]: forward failed: %s", c->name, mt_dtype_name(dtype), mt_last_error());
    for (int o = 0; o < n_outputs(c); o++) {
        const mt_tensor *out = outs[o];
        const ref_tensor *expect = &expects[o];
        char s[128];
        cr_assert(out->ndim == expect->ndim, "%s [%s]: output %d has %d dims (%s), reference %d", c->name,
                  mt_dtype_name(dtype), o, out->ndim, mt_shape_str(out, s, sizeof s), expect->ndim);
        for (int d = 0; d < out->ndim; d++)
            cr_assert(out->shape[d] == expect->shape[d], "%s [%s]: output %d shape %s, reference dim %d is %lld", c->name,
                      mt_dtype_name(dtype), o, mt_shape_str(out, s, sizeof s), d, (long long)expect->shape[d]);
        double *got = to_f64(out);
        double tol = dtype == MT_F64 ? (c->fwd_tol_f64 ? c->fwd_tol_f64 : 1e-10) : (c->fwd_tol_f32 ? c->fwd_tol_f32 : 1e-5);
        for (int64_t k = 0; k < ref_numel(expect); k++) {
            double e = expect->data[k], g = got[k];
            bool both_nan = isnan(e) && isnan(g);
            bool same_inf = isinf(e) && e == g;
            cr_assert(both_nan || same_inf || fabs(g - e) <= tol * (1 + fabs(e)),
                      "%s [%s]: output %d element %lld is %.12g, reference %.12g (tol %g)", c->name, mt_dtype_name(dtype),
                      o, (long long)k, g, e, tol);
        }
        free(got);
    }
    mt_scope_end(scope);
}

/* L(x) = sum_k <f_k(x), v_k> in f64 (v[k] NULL: left out) with input i's
   element k shifted by delta. */
static double objective(const mt_op_case *c, case_inputs *vals, double *const *v, int i, int64_t k, double delta)
{
    mt_scope scope = mt_scope_begin();
    double saved = 0;
    if (i >= 0) { saved = vals->values[i][k]; vals->values[i][k] += delta; }
    mt_tensor *in[6], *outs[MT_CASE_MAX_OUTPUTS];
    make_tensors(c, vals, MT_F64, in);
    double L = NAN;
    MT_NO_GRAD {
        if (run_case(c, in, outs)) {
            L = 0;
            for (int o = 0; o < n_outputs(c); o++) {
                if (!v[o]) continue;
                double *d = to_f64(outs[o]);
                for (int64_t j = 0; j < mt_numel(outs[o]); j++) L += d[j] * v[o][j];
                free(d);
            }
        }
    }
    if (i >= 0) vals->values[i][k] = saved;
    mt_scope_end(scope);
    return L;
}

/* One reverse-mode pass: grads of L = sum_k <f_k(x), v_k> over the outputs
   with use[k], against finite differences, then <J u, v> == <u, J^T v> with
   the tangents ty of the same outputs. */
static void check_cotangents(const mt_op_case *c, case_inputs *vals, mt_tensor *const *in, mt_tensor *const *v,
                             double *const *vd, const bool *use, mt_tensor *const *tangents, mt_tensor *const *ty,
                             const char *which)
{
    int n_out = n_outputs(c);
    mt_tensor *vs[MT_CASE_MAX_OUTPUTS] = { 0 }, *ys[MT_CASE_MAX_OUTPUTS], *grads[6] = { 0 };
    double *vds[MT_CASE_MAX_OUTPUTS] = { 0 };
    for (int o = 0; o < n_out; o++) if (use[o]) { vs[o] = v[o]; vds[o] = vd[o]; }
    mt_status st = mt_vjp_n(run_fn, (void *)c, c->n_inputs, in, n_out, vs, ys, grads);
    cr_assert(st == MT_OK, "%s: vjp (%s) failed: %s", c->name, which, mt_last_error());

    /* finite differences, element by element */
    double h = c->fd_step ? c->fd_step : 1e-6, tol = c->grad_tol ? c->grad_tol : 1e-6;
    for (int i = 0; i < c->n_inputs; i++) {
        if (!differentiable(c, i)) continue;
        cr_assert(grads[i] != NULL, "%s: no gradient for input %d (%s)", c->name, i, which);
        double *g = to_f64(grads[i]);
        for (int64_t k = 0; k < vals->numel[i]; k++) {
            double fd = (objective(c, vals, vds, i, k, h) - objective(c, vals, vds, i, k, -h)) / (2 * h);
            double err = fabs(g[k] - fd) / fmax(1.0, fmax(fabs(g[k]), fabs(fd)));
            cr_assert(err <= tol, "%s: d/d(input %d)[%lld] (%s): vjp %.12g, finite differences %.12g (rel err %.3g > %g)",
                      c->name, i, (long long)k, which, g[k], fd, err, tol);
        }
        free(g);
    }

    /* forward mode: <J u, v> == <u, J^T v> */
    double lhs = 0, rhs = 0, scale = 0;
    for (int o = 0; o < n_out; o++) {
        if (!vds[o]) continue;
        double *tyd = to_f64(ty[o]);
        for (int64_t j = 0; j < mt_numel(ty[o]); j++) { lhs += tyd[j] * vds[o][j]; scale += fabs(tyd[j] * vds[o][j]); }
        free(tyd);
    }
    for (int i = 0; i < c->n_inputs; i++) {
        if (!tangents[i]) continue;
        double *u = to_f64(tangents[i]), *g = to_f64(grads[i]);
        for (int64_t k = 0; k < vals->numel[i]; k++) { rhs += u[k] * g[k]; scale += fabs(u[k] * g[k]); }
        free(u);
        free(g);
    }
    cr_assert(fabs(lhs - rhs) <= 1e-9 * fmax(1.0, scale), "%s: <J u, v> = %.12g but <u, J^T v> = %.12g (%s)", c->name,
              lhs, rhs, which);
}

static void check_gradients(const mt_op_case *c, case_inputs *vals, uint64_t seed)
{
    mt_scope scope = mt_scope_begin();
    mt_generator gen = mt_generator_new(seed);
    int n_out = n_outputs(c);
    mt_tensor *in[6], *outs[MT_CASE_MAX_OUTPUTS];
    make_tensors(c, vals, MT_F64, in);
    bool ok = false;
    MT_NO_GRAD { ok = run_case(c, in, outs); }
    cr_assert(ok, "%s: forward failed: %s", c->name, mt_last_error());

    /* a cotangent v_k for each floating output */
    mt_tensor *v[MT_CASE_MAX_OUTPUTS] = { 0 };
    double *vd[MT_CASE_MAX_OUTPUTS] = { 0 };
    bool all[MT_CASE_MAX_OUTPUTS] = { false };
    int n_float = 0;
    for (int o = 0; o < n_out; o++) {
        if (!float_output(outs[o])) continue;
        v[o] = mt_uniform(&gen, MT_F64, outs[o]->ndim, outs[o]->shape, -1, 1);
        vd[o] = to_f64(v[o]);
        all[o] = true;
        n_float++;
    }
    cr_assert(n_float > 0, "%s: no output of a floating dtype to differentiate (set no_grad_check)", c->name);

    /* tangents u and the outputs' J u, once for every pass */
    mt_tensor *tangents[6] = { 0 }, *ys[MT_CASE_MAX_OUTPUTS], *ty[MT_CASE_MAX_OUTPUTS];
    for (int i = 0; i < c->n_inputs; i++)
        if (differentiable(c, i)) tangents[i] = mt_uniform(&gen, MT_F64, in[i]->ndim, in[i]->shape, -1, 1);
    mt_status st = mt_jvp_n(run_fn, (void *)c, c->n_inputs, in, tangents, n_out, ys, ty);
    cr_assert(st == MT_OK, "%s: jvp failed: %s", c->name, mt_last_error());
    for (int o = 0; o < n_out; o++) {
        char s1[128], s2[128];
        if (!float_output(outs[o])) {
            cr_assert(ty[o] == NULL, "%s: integer output %d got a tangent", c->name, o);
            continue;
        }
        cr_assert(mt_same_shape(ty[o], outs[o]), "%s: jvp tangent %d has shape %s, the output %s", c->name, o,
                  mt_shape_str(ty[o], s1, sizeof s1), mt_shape_str(outs[o], s2, sizeof s2));
    }

    check_cotangents(c, vals, in, v, vd, all, tangents, ty, n_float > 1 ? "every output" : "the output");
    for (int o = 0; o < n_out && n_float > 1; o++) {
        if (!v[o]) continue;
        bool only[MT_CASE_MAX_OUTPUTS] = { false };
        only[o] = true;
        char which[32];
        snprintf(which, sizeof which, "output %d alone", o);
        check_cotangents(c, vals, in, v, vd, only, tangents, ty, which);
    }
    for (int o = 0; o < n_out; o++) free(vd[o]);
    mt_scope_end(scope);
}

/* ---------------------------------------------------------------- the op definitions a case exercises */
/* The names of the op definitions (mt_op_def) on the tape of one forward run
   of c on device, its differentiable inputs requiring grad: what the case's
   vjp and jvp checks went through. */
typedef struct op_set {
    int n;
    const char *names[MT_COVERAGE_MAX_OPS];
} op_set;

static void op_set_add(op_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++) if (strcmp(s->names[i], name) == 0) return;
    cr_assert(s->n < MT_COVERAGE_MAX_OPS, "more than %d op definitions in one case", MT_COVERAGE_MAX_OPS);
    s->names[s->n++] = name;
}

/* Whether the forward ran (false: it failed, e.g. the device has no kernel for it). */
static bool collect_ops(const mt_op_case *c, const case_inputs *vals, mt_device device, op_set *ops)
{
    mt_scope scope = mt_scope_begin();
    ops->n = 0;
    mt_tensor *host_in[6], *in[6], *outs[MT_CASE_MAX_OUTPUTS] = { 0 };
    make_tensors(c, vals, MT_F64, host_in);
    for (int i = 0; i < c->n_inputs; i++) {
        in[i] = mt_to_device(host_in[i], device);
        if (in[i] && differentiable(c, i)) in[i] = mt_requires_grad(in[i], true);
    }
    bool ran = run_case(c, in, outs);
    /* depth-first over the nodes (a case's graph is small) */
    mt_node *stack[256], *seen[256];
    int top = 0, n_seen = 0;
    for (int o = 0; ran && o < n_outputs(c); o++)
        if (outs[o] && outs[o]->grad_fn) stack[top++] = outs[o]->grad_fn;
    while (top > 0) {
        mt_node *node = stack[--top];
        bool visited = false;
        for (int i = 0; i < n_seen && !visited; i++) visited = seen[i] == node;
        if (visited) continue;
        cr_assert(n_seen < 256, "%s: more than 256 nodes on the tape", c->name);
        seen[n_seen++] = node;
        op_set_add(ops, node->op->name);
        for (int i = 0; i < node->n_inputs; i++) {
            mt_tensor *t = node->inputs[i];
            if (t && t->grad_fn && top < 256) stack[top++] = t->grad_fn;
        }
    }
    mt_scope_end(scope);
    return ran;
}

/* ---------------------------------------------------------------- coverage records */
/* With MYTORCH_OP_COVERAGE_DIR set, every passing mt_check_op appends one line
   per (backend, op definition) to <dir>/records-<pid>.tsv:
       backend \t checked|no-kernel \t op \t case \t why (no-kernel only)
   tests/test_op_coverage.c reads them all (see docs/architecture.md). */
static void record_coverage(const mt_op_case *c, const char *backend, const char *state, const op_set *ops,
                            const char *why)
{
    const char *dir = getenv("MYTORCH_OP_COVERAGE_DIR");
    if (!dir || !*dir) return;
    char path[1024];
    (void)mkdir(dir, 0755);   /* ctest empties it by removing it; EEXIST is fine */
    snprintf(path, sizeof path, "%s/records-%ld.tsv", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    cr_assert(fd >= 0, "op coverage: cannot open %s: %s", path, strerror(errno));
    for (int i = 0; i < ops->n; i++) {
        char line[1024], clean[400];
        snprintf(clean, sizeof clean, "%s", why ? why : "");
        for (char *p = clean; *p; p++) if (*p == '\t' || *p == '\n') *p = ' ';
        int len = snprintf(line, sizeof line, "%s\t%s\t%s\t%s\t%s\n", backend, state, ops->names[i], c->name, clean);
        if (len > (int)sizeof line - 1) len = (int)sizeof line - 1;
        cr_assert(write(fd, line, (size_t)len) == len, "op coverage: cannot write %s: %s", path, strerror(errno));
    }
    close(fd);
}

/* ---------------------------------------------------------------- backends against the CPU */
/* Everything one device computes for a case: the outputs, the vjp of fixed
   cotangents and the jvp of fixed tangents, all copied to the host as double. */
typedef struct device_results {
    int64_t n_out[MT_CASE_MAX_OUTPUTS];
    double *out[MT_CASE_MAX_OUTPUTS], *tangent[MT_CASE_MAX_OUTPUTS];
    double *grads[6];
    char unsupported[400];      /* why the device could not run the case */
} device_results;

/* A step of run_on_device that did not work: on the CPU a failure of the
   test; on another device, when its backend lacks a kernel for the case
   (MT_ERR_UNSUPPORTED), the reason is kept and the device is skipped. */
#define DEVICE_STEP_OK(ok, ...)                                                                    \
    do {                                                                                           \
        if (ok) break;                                                                             \
        if (device.type != MT_DEVICE_CPU && mt_last_status() == MT_ERR_UNSUPPORTED) {              \
            snprintf(r->unsupported, sizeof r->unsupported, "%s", mt_last_error());                \
            mt_scope_end(scope);                                                                   \
            return false;                                                                          \
        }                                                                                          \
        cr_assert(false, __VA_ARGS__);                                                             \
    } while (0)

/* Whether the case ran on device (false: it has no kernel for it, r->unsupported says which). */
static bool run_on_device(const mt_op_case *c, const case_inputs *vals, mt_dtype dtype, mt_device device,
                          device_results *r)
{
    mt_scope scope = mt_scope_begin();
    memset(r, 0, sizeof *r);
    int n_out = n_outputs(c);
    mt_tensor *host_in[6], *in[6], *outs[MT_CASE_MAX_OUTPUTS];
    make_tensors(c, vals, dtype, host_in);
    for (int i = 0; i < c->n_inputs; i++) {
        in[i] = mt_to_device(host_in[i], device);
        cr_assert(in[i] != NULL, "%s [%s]: moving input %d to %s failed: %s", c->name, mt_dtype_name(dtype), i,
                  mt_device_name(device), mt_last_error());
    }
    bool ok = false;
    MT_NO_GRAD { ok = run_case(c, in, outs); }
    DEVICE_STEP_OK(ok, "%s [%s on %s]: forward failed: %s", c->name, mt_dtype_name(dtype), mt_device_name(device),
                   mt_last_error());
    for (int o = 0; o < n_out; o++) {
        r->n_out[o] = mt_numel(outs[o]);
        r->out[o] = to_f64(outs[o]);
    }
    if (!c->no_grad_check) {
        mt_generator gen = mt_generator_new(5);
        mt_tensor *v[MT_CASE_MAX_OUTPUTS] = { 0 }, *tangents[6] = { 0 }, *grads[6] = { 0 };
        mt_tensor *ys[MT_CASE_MAX_OUTPUTS], *ty[MT_CASE_MAX_OUTPUTS];
        for (int o = 0; o < n_out; o++)
            if (float_output(outs[o]))
                v[o] = mt_to_device(mt_uniform(&gen, dtype, outs[o]->ndim, outs[o]->shape, -1, 1), device);
        for (int i = 0; i < c->n_inputs; i++)
            if (differentiable(c, i))
                tangents[i] = mt_to_device(mt_uniform(&gen, dtype, in[i]->ndim, in[i]->shape, -1, 1), device);
        DEVICE_STEP_OK(mt_vjp_n(run_fn, (void *)c, c->n_inputs, in, n_out, v, ys, grads) == MT_OK,
                       "%s [%s on %s]: vjp failed: %s", c->name, mt_dtype_name(dtype), mt_device_name(device),
                       mt_last_error());
        for (int i = 0; i < c->n_inputs; i++) if (grads[i] && differentiable(c, i)) r->grads[i] = to_f64(grads[i]);
        DEVICE_STEP_OK(mt_jvp_n(run_fn, (void *)c, c->n_inputs, in, tangents, n_out, ys, ty) == MT_OK,
                       "%s [%s on %s]: jvp failed: %s", c->name, mt_dtype_name(dtype), mt_device_name(device),
                       mt_last_error());
        for (int o = 0; o < n_out; o++) if (ty[o]) r->tangent[o] = to_f64(ty[o]);
    }
    mt_scope_end(scope);
    return true;
}

static void free_results(device_results *r)
{
    for (int o = 0; o < MT_CASE_MAX_OUTPUTS; o++) {
        free(r->out[o]);
        free(r->tangent[o]);
    }
    for (int i = 0; i < 6; i++) free(r->grads[i]);
}

static void compare_arrays(const mt_op_case *c, const char *what, mt_dtype dtype, const char *device,
                           const double *expect, const double *got, int64_t n, double tol)
{
    for (int64_t k = 0; k < n; k++) {
        double e = expect[k], g = got[k];
        if ((isnan(e) && isnan(g)) || (isinf(e) && e == g)) continue;
        cr_assert(fabs(g - e) <= tol * (1 + fabs(e)), "%s [%s]: %s element %lld on %s is %.10g, on cpu %.10g (tol %g)",
                  c->name, mt_dtype_name(dtype), what, (long long)k, device, g, e, tol);
    }
}

/* The op on every other built-in backend against the CPU, forward, vjp and
   jvp. A backend that has no kernel for the case (a partial backend) is
   skipped and reported as such in the coverage records; cpu_ops are the op
   definitions the case exercises. */
static void check_backends(const mt_op_case *c, const case_inputs *vals, const op_set *cpu_ops)
{
    mt_device others[] = { { MT_DEVICE_CUDA_EMU, 0 }, { MT_DEVICE_CUDA, 0 } };
    for (size_t d = 0; d < sizeof others / sizeof others[0]; d++) {
        if (!mt_device_available(others[d], NULL)) continue;
        const char *name = mt_device_name(others[d]);
        bool ran = true;
        char why[400] = "";
        for (int pass = 0; pass < 2 && ran; pass++) {
            mt_dtype dtype = pass ? MT_F64 : MT_F32;
            double tol = dtype == MT_F32 ? 1e-5 : 1e-10;
            device_results cpu, dev;
            run_on_device(c, vals, dtype, mt_cpu(), &cpu);
            if (!run_on_device(c, vals, dtype, others[d], &dev)) {
                cr_log_info("%s: skipped on %s, which has no kernel for it: %s", c->name, name, dev.unsupported);
                snprintf(why, sizeof why, "%s", dev.unsupported);
                free_results(&cpu);
                free_results(&dev);
                ran = false;
                break;
            }
            for (int o = 0; o < n_outputs(c); o++) {
                char what[32];
                cr_assert(cpu.n_out[o] == dev.n_out[o], "%s: output %d has %lld elements on %s, %lld on cpu", c->name, o,
                          (long long)dev.n_out[o], name, (long long)cpu.n_out[o]);
                snprintf(what, sizeof what, n_outputs(c) > 1 ? "output %d" : "output", o);
                compare_arrays(c, what, dtype, name, cpu.out[o], dev.out[o], cpu.n_out[o], tol);
                if (!cpu.tangent[o]) continue;
                cr_assert(dev.tangent[o] != NULL, "%s: output %d has a tangent on cpu, none on %s", c->name, o, name);
                snprintf(what, sizeof what, n_outputs(c) > 1 ? "jvp %d" : "jvp", o);
                compare_arrays(c, what, dtype, name, cpu.tangent[o], dev.tangent[o], cpu.n_out[o], tol);
            }
            if (!c->no_grad_check)
                for (int i = 0; i < c->n_inputs; i++)
                    if (cpu.grads[i]) compare_arrays(c, "vjp", dtype, name, cpu.grads[i], dev.grads[i], vals->numel[i], tol);
            free_results(&cpu);
            free_results(&dev);
        }
        if (ran) {
            op_set dev_ops;
            cr_assert(collect_ops(c, vals, others[d], &dev_ops), "%s on %s: %s", c->name, name, mt_last_error());
            record_coverage(c, name, "checked", &dev_ops, NULL);
        } else {
            record_coverage(c, name, "no-kernel", cpu_ops, why);
        }
    }
}

void mt_check_op(const mt_op_case *c)
{
    mt_clear_error();
    cr_assert(c->run_n ? c->n_outputs >= 1 && c->n_outputs <= MT_CASE_MAX_OUTPUTS : c->run != NULL,
              "%s: a case has run, or run_n with 1 to %d outputs", c->name, MT_CASE_MAX_OUTPUTS);
    case_inputs vals = { 0 };
    make_values(c, &vals, 1234);
    ref_tensor ins[6] = { 0 }, expect[MT_CASE_MAX_OUTPUTS] = { 0 };
    for (int i = 0; i < c->n_inputs; i++) {
        ins[i].ndim = c->inputs[i].ndim;
        memcpy(ins[i].shape, c->inputs[i].shape, sizeof ins[i].shape);
        ins[i].data = vals.values[i];
    }
    c->reference(c, ins, expect);
    check_forward(c, &vals, MT_F64, expect);
    check_forward(c, &vals, MT_F32, expect);
    if (!c->no_grad_check) check_gradients(c, &vals, 99);
    op_set cpu_ops;
    cr_assert(collect_ops(c, &vals, mt_cpu(), &cpu_ops), "%s: %s", c->name, mt_last_error());
    check_backends(c, &vals, &cpu_ops);
    record_coverage(c, "cpu", "checked", &cpu_ops, NULL);
    for (int o = 0; o < MT_CASE_MAX_OUTPUTS; o++) free(expect[o].data);
    free_values(c, &vals);
}

/* ---------------------------------------------------------------- fixtures */
/* The tests build their inputs with the default device and read results
   through host pointers: they run on the CPU unless MYTORCH_DEVICE says
   otherwise (on a GPU machine cuda would be the default). The harness and
   the device tests name cuda and cuda-emu explicitly. Runs in every test
   process before main. */
__attribute__((constructor)) static void tests_default_to_cpu(void) { setenv("MYTORCH_DEVICE", "cpu", 0); }

static _Thread_local mt_scope test_scope;
void mt_test_setup(void) { mt_clear_error(); test_scope = mt_scope_begin(); }
void mt_test_teardown(void) { mt_scope_end(test_scope); }

/* ---------------------------------------------------------------- temporary folders */
void mt_test_temp_dir(char *buf, size_t size, const char *tag)
{
    struct stat st;
    bool shm = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0;
    snprintf(buf, size, "%s/mt_%s_XXXXXX", shm ? "/dev/shm" : "/tmp", tag);
    cr_assert_not_null(mkdtemp(buf), "mkdtemp %s: %s", buf, strerror(errno));
}

const char *mt_test_path(const char *dir, const char *name)
{
    static char bufs[32][512];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

void mt_test_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            mt_test_remove_tree(sub);
        }
        closedir(d);
    }
    rmdir(path);
}
