/*
 * test_vision_models.c - ResNet and ConvNeXt (models/vision/): torchvision's
 * parameter counts and state-dict names, the shapes of the logits and the
 * embedding, BENCH.md's face configurations, a backward pass reaching every
 * parameter, train/eval (stochastic depth only in training), trunc_normal_,
 * and the errors.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

#include "models/vision/vision.h"

static bool has_key(const mt_module *m, const char *name)
{
    mt_tensor_list sd = mt_state_dict(m);
    bool found = false;
    for (int i = 0; i < sd.n; i++) found = found || strcmp(sd.items[i].name, name) == 0;
    mt_tensor_list_free(&sd);
    return found;
}

/* torchvision.models.resnet18/50 and convnext_tiny with 1000 classes:
   sum(p.numel() for p in model.parameters()). */
Test(vision, parameter_counts_match_torchvision, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_module *r18 = mt_resnet(MT_RESNET_DEFAULTS(18, 1000));
    cr_assert(r18, "%s", mt_last_error());
    cr_assert_eq(mt_parameter_count(r18), 11689512);
    cr_assert(has_key(r18, "layer2.0.downsample.0.weight") && has_key(r18, "layer4.1.bn2.running_var") &&
              has_key(r18, "fc.bias") && has_key(r18, "bn1.num_batches_tracked"));
    cr_assert_eq(mt_vision_embedding_dim(r18), 512);
    mt_module_free(r18);

    mt_module *r50 = mt_resnet(MT_RESNET_DEFAULTS(50, 1000));
    cr_assert(r50, "%s", mt_last_error());
    cr_assert_eq(mt_parameter_count(r50), 25557032);
    cr_assert(has_key(r50, "layer3.5.conv3.weight"));
    cr_assert_eq(mt_vision_embedding_dim(r50), 2048);
    mt_module_free(r50);

    mt_convnext_opts o = MT_CONVNEXT_DEFAULTS(1000);
    int depths[4] = { 3, 3, 9, 3 };
    int64_t dims[4] = { 96, 192, 384, 768 };
    memcpy(o.depths, depths, sizeof depths);
    memcpy(o.dims, dims, sizeof dims);
    mt_module *tiny = mt_convnext(o);
    cr_assert(tiny, "%s", mt_last_error());
    cr_assert_eq(mt_parameter_count(tiny), 28589128);
    cr_assert(has_key(tiny, "features.0.0.weight") && has_key(tiny, "features.1.2.layer_scale") &&
              has_key(tiny, "features.5.8.block.3.weight") && has_key(tiny, "features.6.1.weight") &&
              has_key(tiny, "classifier.2.weight"));
    cr_assert_eq(mt_vision_embedding_dim(tiny), 768);
    mt_module_free(tiny);
}

static void forward_shapes(mt_module *net, int64_t n, int64_t hw, int64_t classes, int64_t dim)
{
    mt_generator g = mt_generator_new(1);
    mt_tensor *x = mt_randn(&g, MT_F32, 4, (int64_t[]){ n, 3, hw, hw }), *out[2];
    cr_assert_eq(mt_forward_n(net, 1, &x, 2, out), 2, "%s", mt_last_error());
    cr_assert(out[0]->ndim == 2 && out[0]->shape[0] == n && out[0]->shape[1] == classes);
    cr_assert(out[1]->ndim == 2 && out[1]->shape[0] == n && out[1]->shape[1] == dim);
    /* every parameter gets a gradient */
    cr_assert_eq(mt_backward(mt_sum_all(mt_add(mt_sum_all(out[0]), mt_sum_all(out[1])))), MT_OK, "%s", mt_last_error());
    mt_tensor_list ps = mt_parameters(net);
    for (int i = 0; i < ps.n; i++) cr_assert(mt_grad(ps.items[i].tensor), "no gradient for %s", ps.items[i].name);
    mt_tensor_list_free(&ps);
}

Test(vision, small_models_forward_and_backward, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_resnet_opts r = MT_RESNET_DEFAULTS(18, 10);
    r.width = 8;
    r.small_stem = true;
    mt_module *net = mt_resnet(r);
    cr_assert(net, "%s", mt_last_error());
    mt_module_train(net, true);
    forward_shapes(net, 2, 32, 10, 64);
    mt_module_free(net);

    mt_resnet_opts b = MT_RESNET_DEFAULTS(50, 5);
    b.width = 4;
    net = mt_resnet(b);   /* the ImageNet stem: 64 -> 16 after conv1 and the max pool, 2 after layer4 */
    cr_assert(net, "%s", mt_last_error());
    mt_module_train(net, true);
    forward_shapes(net, 2, 64, 5, 128);
    mt_module_free(net);

    mt_convnext_opts c = MT_CONVNEXT_DEFAULTS(7);
    c.n_stages = 2;
    c.depths[0] = 1; c.depths[1] = 2;
    c.dims[0] = 8; c.dims[1] = 16;
    c.layer_scale_init = 0.5;
    net = mt_convnext(c);
    cr_assert(net, "%s", mt_last_error());
    mt_module_train(net, true);
    forward_shapes(net, 3, 16, 7, 16);
    mt_module_free(net);
}

/* Stochastic depth draws only in training: two eval passes agree, two
   training passes (with drops) differ. */
Test(vision, stochastic_depth_only_in_training, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator gen = mt_generator_new(5);
    mt_convnext_opts c = MT_CONVNEXT_DEFAULTS(4);
    c.n_stages = 1; c.depths[0] = 3; c.dims[0] = 8;
    c.layer_scale_init = 1;
    c.stochastic_depth = 0.5;
    c.gen = &gen;
    mt_module *net = mt_convnext(c);
    cr_assert(net, "%s", mt_last_error());
    mt_generator g = mt_generator_new(2);
    mt_tensor *x = mt_randn(&g, MT_F32, 4, (int64_t[]){ 16, 3, 8, 8 });
    mt_module_train(net, false);
    double e1 = mt_item(mt_sum_all(mt_abs(mt_forward(net, x)))), e2 = mt_item(mt_sum_all(mt_abs(mt_forward(net, x))));
    cr_assert_eq(e1, e2);
    mt_module_train(net, true);
    double t1 = mt_item(mt_sum_all(mt_abs(mt_forward(net, x)))), t2 = mt_item(mt_sum_all(mt_abs(mt_forward(net, x))));
    cr_assert_neq(t1, t2, "two training passes drew the same stochastic depth masks");
    mt_module_free(net);
}

Test(vision, trunc_normal_stays_in_range, .init = mt_test_setup, .fini = mt_test_teardown)
{
    mt_generator g = mt_generator_new(9);
    mt_tensor *t = mt_empty(MT_F32, 1, (int64_t[]){ 20000 });
    cr_assert_eq(mt_init_trunc_normal_(t, &g, 0, 1, -0.5, 1.0), MT_OK, "%s", mt_last_error());
    float *v = mt_data_ptr(t);
    double mean = 0;
    for (int i = 0; i < 20000; i++) {
        cr_assert(v[i] >= -0.5f && v[i] <= 1.0f, "value %g outside [-0.5, 1]", v[i]);
        mean += v[i] / 20000.0;
    }
    /* the mean of N(0, 1) truncated to [-0.5, 1]: (phi(-0.5) - phi(1)) / (Phi(1) - Phi(-0.5)) = 0.2066 */
    cr_assert(fabs(mean - 0.2066) < 0.01, "mean %g", mean);
    cr_assert_neq(mt_init_trunc_normal_(t, &g, 0, 1, 50, 60), MT_OK);
}

Test(vision, bad_options_are_refused, .init = mt_test_setup, .fini = mt_test_teardown)
{
    cr_assert_null(mt_resnet(MT_RESNET_DEFAULTS(19, 10)));
    cr_assert(strstr(mt_last_error(), "depth"), "%s", mt_last_error());
    cr_assert_null(mt_resnet((mt_resnet_opts){ .depth = 18, .num_classes = 10 }));
    cr_assert(strstr(mt_last_error(), "MT_RESNET_DEFAULTS"), "%s", mt_last_error());
    mt_convnext_opts c = MT_CONVNEXT_DEFAULTS(10);
    c.stochastic_depth = 1;
    cr_assert_null(mt_convnext(c));
    cr_assert_eq(mt_vision_embedding_dim(NULL), -1);
}
