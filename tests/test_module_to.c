/*
 * test_module_to.c - mt_module_to moves a module's parameters and buffers
 * between devices in place: values survive a cpu -> cuda-emu -> cpu round
 * trip, parameters stay leaves with requires_grad (the same tensor objects),
 * gradients move along, an unavailable device leaves the module unchanged,
 * and an optimizer made after the move trains on the device exactly as on
 * the CPU. mt_module_to_dtype converts the floating tensors (and gradients)
 * to f64 and back in place under the same rules, integer buffers staying
 * i64, and an f64 module trains like the f32 one. The cuda-emu cases skip
 * when the emulated backend is not built.
 */
#include "harness.h"

#include <string.h>

#include <math.h>
#include <stdlib.h>

#define MT_TEST(name) Test(module_to, name, .init = mt_test_setup, .fini = mt_test_teardown)

static const mt_device CPU = { MT_DEVICE_CPU, 0 };
static const mt_device EMU = { MT_DEVICE_CUDA_EMU, 0 };

static void need_emu(void)
{
    const char *why = NULL;
    if (!mt_device_available(EMU, &why)) cr_skip_test("cuda-emu is not available: %s", why);
}

static bool same_device(mt_device a, mt_device b) { return a.type == b.type && a.index == b.index; }

/* Linear(3, 5) - BatchNorm1d(5) - Tanh - Linear(5, 2): parameters, buffers, nesting. */
static mt_module *small_net(void)
{
    mt_manual_seed(11);
    mt_module *net = mt_nn_sequential(mt_nn_linear(3, 5, true), mt_nn_batch_norm1d(5, MT_BN_DEFAULTS),
                                      mt_nn_tanh(), mt_nn_linear(5, 2, true));
    cr_assert_not_null(net, "%s", mt_last_error());
    return net;
}

/* Every tensor of the state dict as host doubles, concatenated. */
static double *snapshot(const mt_module *m, int64_t *count)
{
    mt_tensor_list sd = mt_state_dict(m);
    int64_t total = 0;
    for (int i = 0; i < sd.n; i++) total += mt_numel(sd.items[i].tensor);
    double *v = malloc((size_t)(total ? total : 1) * sizeof *v);
    cr_assert_not_null(v);
    int64_t at = 0;
    for (int i = 0; i < sd.n; i++) {
        cr_assert_eq(mt_to_data(sd.items[i].tensor, MT_F64, v + at), MT_OK, "%s", mt_last_error());
        at += mt_numel(sd.items[i].tensor);
    }
    mt_tensor_list_free(&sd);
    *count = total;
    return v;
}

static void expect_all_on(const mt_module *m, mt_device d)
{
    mt_tensor_list sd = mt_state_dict(m);
    cr_assert_gt(sd.n, 0);
    for (int i = 0; i < sd.n; i++) {
        mt_tensor *t = sd.items[i].tensor;
        cr_expect(same_device(mt_device_of(t), d), "%s is on %s, expected %s", sd.items[i].name,
                  mt_device_name(mt_device_of(t)), mt_device_name(d));
        cr_expect(mt_is_contiguous(t), "%s", sd.items[i].name);
        if (t->grad) cr_expect(same_device(mt_device_of(t->grad), d), "%s.grad", sd.items[i].name);
    }
    mt_tensor_list params = mt_parameters(m);
    for (int i = 0; i < params.n; i++) {
        mt_tensor *p = params.items[i].tensor;
        cr_expect(p->requires_grad, "%s lost requires_grad", params.items[i].name);
        cr_expect_null(p->grad_fn, "%s is not a leaf", params.items[i].name);
    }
    mt_tensor_list_free(&params);
    mt_tensor_list_free(&sd);
}

MT_TEST(round_trip_keeps_values_and_leaves)
{
    need_emu();
    mt_module *net = small_net();
    int64_t n0, n1, n2;
    double *before = snapshot(net, &n0);
    mt_tensor_list params = mt_parameters(net);
    mt_tensor *w0 = params.items[0].tensor;

    cr_assert_eq(mt_module_to(net, EMU), MT_OK, "%s", mt_last_error());
    expect_all_on(net, EMU);
    cr_expect_eq(mt_module_param(net->children[0], "weight"), w0, "the parameter is the same tensor object");
    double *on_emu = snapshot(net, &n1);
    cr_assert_eq(mt_module_to(net, CPU), MT_OK, "%s", mt_last_error());
    expect_all_on(net, CPU);
    double *after = snapshot(net, &n2);
    cr_assert_eq(n0, n1);
    cr_assert_eq(n0, n2);
    for (int64_t i = 0; i < n0; i++) {
        cr_expect_eq(on_emu[i], before[i], "element %lld on cuda-emu", (long long)i);
        cr_expect_eq(after[i], before[i], "element %lld after the round trip", (long long)i);
    }
    /* moving to where it already is changes nothing */
    void *data = mt_data_ptr(w0);
    cr_assert_eq(mt_module_to(net, CPU), MT_OK, "%s", mt_last_error());
    cr_expect_eq(mt_data_ptr(w0), data);

    free(before); free(on_emu); free(after);
    mt_tensor_list_free(&params);
    mt_module_free(net);
}

MT_TEST(gradients_move_with_their_parameters)
{
    need_emu();
    mt_module *net = small_net();
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(4, 3));
    mt_tensor *loss = mt_sum_all(mt_forward(net, x));
    cr_assert(loss && mt_backward(loss) == MT_OK, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(net->children[3], "weight");
    cr_assert_not_null(w->grad);
    double g[10], g_emu[10];
    cr_assert_eq(mt_to_data(w->grad, MT_F64, g), MT_OK);

    cr_assert_eq(mt_module_to(net, EMU), MT_OK, "%s", mt_last_error());
    expect_all_on(net, EMU);
    cr_assert_eq(mt_to_data(w->grad, MT_F64, g_emu), MT_OK);
    for (int i = 0; i < 10; i++) cr_expect_eq(g_emu[i], g[i], "grad element %d", i);
    /* a backward on the device accumulates into the moved gradient */
    mt_tensor *xe = mt_to_device(x, EMU);
    mt_tensor *loss2 = mt_sum_all(mt_forward(net, xe));
    cr_assert(loss2 && mt_backward(loss2) == MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_to_data(w->grad, MT_F64, g_emu), MT_OK);
    for (int i = 0; i < 10; i++) cr_expect_float_eq(g_emu[i], 2 * g[i], 1e-5 * (1 + fabs(g[i])), "grad element %d", i);
    mt_module_free(net);
}

MT_TEST(unavailable_device_leaves_module_unchanged)
{
    mt_module *net = small_net();
    int64_t n0, n1;
    double *before = snapshot(net, &n0);
    mt_tensor *w = mt_module_param(net->children[0], "weight");
    void *data = mt_data_ptr(w);

    mt_device bogus = { MT_DEVICE_TYPE_COUNT, 0 };
    cr_expect_eq(mt_module_to(net, bogus), MT_ERR_DEVICE);
    cr_expect(strstr(mt_last_error(), "module_to") != NULL, "%s", mt_last_error());
    mt_device cuda = { MT_DEVICE_CUDA, 0 };
    if (!mt_device_available(cuda, NULL)) {
        cr_expect_eq(mt_module_to(net, cuda), MT_ERR_DEVICE);
        cr_expect(strstr(mt_last_error(), "not available") != NULL, "%s", mt_last_error());
    }
    expect_all_on(net, CPU);
    cr_expect_eq(mt_data_ptr(w), data);
    double *after = snapshot(net, &n1);
    cr_assert_eq(n0, n1);
    for (int64_t i = 0; i < n0; i++) cr_expect_eq(after[i], before[i]);
    cr_expect_eq(mt_module_to(NULL, CPU), MT_ERR_ARGUMENT);
    free(before); free(after);
    mt_module_free(net);
}

/* Every floating tensor of the state dict is dtype; integer buffers are i64. */
static void expect_all_of(const mt_module *m, mt_dtype dtype)
{
    mt_tensor_list sd = mt_state_dict(m);
    for (int i = 0; i < sd.n; i++) {
        mt_tensor *t = sd.items[i].tensor;
        bool counter = strstr(sd.items[i].name, "num_batches_tracked") != NULL;
        cr_expect_eq(t->dtype, counter ? MT_I64 : dtype, "%s is %s", sd.items[i].name, mt_dtype_name(t->dtype));
        if (t->grad) cr_expect_eq(t->grad->dtype, dtype, "%s.grad is %s", sd.items[i].name, mt_dtype_name(t->grad->dtype));
        if (t->requires_grad) cr_expect_null(t->grad_fn, "%s stays a leaf", sd.items[i].name);
    }
    mt_tensor_list_free(&sd);
}

/* Five Adam steps of small_net on (x, y) on device in dtype (the optimizer
   made after moving and converting); the losses into out. */
static void train_on(mt_device device, mt_dtype dtype, double *out)
{
    mt_module *net = small_net();
    cr_assert_eq(mt_module_to(net, device), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_module_to_dtype(net, dtype), MT_OK, "%s", mt_last_error());
    mt_generator gen = mt_generator_new(5);
    mt_tensor *x = mt_to_device(mt_to_dtype(mt_randn(&gen, MT_F32, MT_SHAPE(16, 3)), dtype), device);
    mt_tensor *y = mt_to_device(mt_randint(&gen, MT_I64, MT_SHAPE(16), 0, 2), device);
    mt_tensor_list params = mt_parameters(net);
    mt_adam_opts adam_opts = MT_ADAM_DEFAULTS;
    adam_opts.lr = 0.05;
    mt_optimizer *opt = mt_adam(params, adam_opts);
    mt_tensor_list_free(&params);
    cr_assert_not_null(opt, "%s", mt_last_error());
    for (int step = 0; step < 5; step++) {
        mt_scope s = mt_scope_begin();
        mt_optimizer_zero_grad(opt);
        mt_tensor *loss = mt_cross_entropy(mt_forward(net, x), y, (mt_ce_opts){ 0 });
        cr_assert(loss && mt_backward(loss) == MT_OK, "%s step %d: %s", mt_device_name(device), step, mt_last_error());
        cr_assert_eq(mt_step(opt), MT_OK, "%s step %d: %s", mt_device_name(device), step, mt_last_error());
        cr_assert(same_device(mt_device_of(loss), device) && loss->dtype == dtype);
        out[step] = mt_item(loss);
        mt_scope_end(s);
    }
    expect_all_on(net, device);
    expect_all_of(net, dtype);
    mt_optimizer_free(opt);
    mt_module_free(net);
}

MT_TEST(optimizer_after_the_move_trains_as_on_the_cpu)
{
    need_emu();
    double cpu[5], emu[5];
    train_on(CPU, MT_F32, cpu);
    train_on(EMU, MT_F32, emu);
    cr_expect_lt(cpu[4], cpu[0], "the loss goes down: %g -> %g", cpu[0], cpu[4]);
    for (int i = 0; i < 5; i++)
        cr_expect(fabs(emu[i] - cpu[i]) <= 1e-5 * fabs(cpu[i]), "step %d: cuda-emu loss %.9g, cpu %.9g", i, emu[i], cpu[i]);
}

/* ---------------------------------------------------------------- dtype (mt_module_to_dtype) */
MT_TEST(to_f64_and_back_keeps_values_identity_and_grads)
{
    mt_module *net = small_net();
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(4, 3));
    cr_assert_eq(mt_backward(mt_sum_all(mt_forward(net, x))), MT_OK, "%s", mt_last_error());
    mt_tensor *w = mt_module_param(net->children[3], "weight");
    double g[10], g64[10];
    cr_assert_eq(mt_to_data(w->grad, MT_F64, g), MT_OK);
    int64_t n0, n1, n2;
    double *before = snapshot(net, &n0);

    cr_assert_eq(mt_module_to_dtype(net, MT_F64), MT_OK, "%s", mt_last_error());   /* .double() */
    expect_all_of(net, MT_F64);
    cr_expect_eq(mt_module_param(net->children[3], "weight"), w, "the parameter is the same tensor object");
    cr_expect(w->requires_grad && mt_is_contiguous(w));
    double *as_f64 = snapshot(net, &n1);
    cr_assert_eq(mt_to_data(w->grad, MT_F64, g64), MT_OK);
    for (int i = 0; i < 10; i++) cr_expect_eq(g64[i], g[i], "grad element %d", i);

    cr_assert_eq(mt_module_to_dtype(net, MT_F32), MT_OK, "%s", mt_last_error());   /* .float() */
    expect_all_of(net, MT_F32);
    double *after = snapshot(net, &n2);
    cr_assert(n0 == n1 && n0 == n2);
    for (int64_t i = 0; i < n0; i++) {
        cr_expect_eq(as_f64[i], before[i], "element %lld in f64", (long long)i);
        cr_expect_eq(after[i], before[i], "element %lld back in f32", (long long)i);
    }
    /* converting to the dtype it has changes nothing */
    void *data = mt_data_ptr(w);
    cr_assert_eq(mt_module_to_dtype(net, MT_F32), MT_OK, "%s", mt_last_error());
    cr_expect_eq(mt_data_ptr(w), data);

    /* it runs in f64: a new backward accumulates into the converted gradient */
    cr_assert_eq(mt_module_to_dtype(net, MT_F64), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_backward(mt_sum_all(mt_forward(net, mt_to_dtype(x, MT_F64)))), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_to_data(w->grad, MT_F64, g64), MT_OK);
    for (int i = 0; i < 10; i++) cr_expect_float_eq(g64[i], 2 * g[i], 1e-5 * (1 + fabs(g[i])), "grad element %d", i);
    free(before); free(as_f64); free(after);
    mt_module_free(net);
}

MT_TEST(to_dtype_refuses_integer_dtypes)
{
    mt_module *net = small_net();
    cr_expect_eq(mt_module_to_dtype(net, MT_I64), MT_ERR_DTYPE);
    cr_expect(strstr(mt_last_error(), "module_to_dtype") && strstr(mt_last_error(), "i64"), "%s", mt_last_error());
    expect_all_of(net, MT_F32);
    cr_expect_eq(mt_module_to_dtype(NULL, MT_F64), MT_ERR_ARGUMENT);
    mt_module_free(net);
}

MT_TEST(to_dtype_on_cuda_emu)
{
    need_emu();
    mt_module *net = small_net();
    int64_t n0, n1;
    double *before = snapshot(net, &n0);
    cr_assert_eq(mt_module_to(net, EMU), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_module_to_dtype(net, MT_F64), MT_OK, "%s", mt_last_error());
    expect_all_on(net, EMU);
    expect_all_of(net, MT_F64);
    double *after = snapshot(net, &n1);
    cr_assert_eq(n0, n1);
    for (int64_t i = 0; i < n0; i++) cr_expect_eq(after[i], before[i], "element %lld", (long long)i);
    free(before); free(after);
    mt_module_free(net);
}

/* An f64 module with an optimizer made after converting trains like the f32 one. */
MT_TEST(optimizer_after_converting_trains_in_f64)
{
    double f32[5], f64[5];
    train_on(CPU, MT_F32, f32);
    train_on(CPU, MT_F64, f64);
    cr_expect_lt(f64[4], f64[0], "the loss goes down: %g -> %g", f64[0], f64[4]);
    for (int i = 0; i < 5; i++)
        cr_expect(fabs(f64[i] - f32[i]) <= 1e-4 * fabs(f32[i]), "step %d: f64 loss %.9g, f32 %.9g", i, f64[i], f32[i]);
}

/* An optimizer whose state was made before its module changed dtype refuses
   to step (it would read the f32 state as f64) and says what to do. */
MT_TEST(optimizer_state_from_before_a_conversion_is_refused)
{
    mt_module *net = small_net();
    cr_assert_not_null(net, "%s", mt_last_error());
    mt_tensor_list params = mt_parameters(net);
    mt_optimizer *opt = mt_adam(params, MT_ADAM_DEFAULTS);
    mt_tensor_list_free(&params);
    cr_assert_not_null(opt, "%s", mt_last_error());
    mt_tensor *x = mt_randn(NULL, MT_F32, MT_SHAPE(4, 3));
    cr_assert(mt_backward(mt_sum_all(mt_forward(net, x))) == MT_OK, "%s", mt_last_error());
    cr_assert(mt_step(opt) == MT_OK, "%s", mt_last_error());     /* the state exists now, in f32 */
    cr_assert(mt_module_to_dtype(net, MT_F64) == MT_OK, "%s", mt_last_error());
    cr_expect_eq(mt_step(opt), MT_ERR_STATE);
    cr_expect(strstr(mt_last_error(), "create the optimizer afterwards") != NULL, "%s", mt_last_error());
    mt_optimizer_free(opt);
    mt_module_free(net);
}
