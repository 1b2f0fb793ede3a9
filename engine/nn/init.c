/*
 * init.c - weight initialization (PyTorch's torch.nn.init), in place and off
 * the tape.
 *
 * Fans, for a weight of shape [out, in, k1, k2, ...]:
 *   receptive = k1 * k2 * ...   (1 for a Linear weight [out, in])
 *   fan_in    = in  * receptive
 *   fan_out   = out * receptive
 *
 * Kaiming (He et al. 2015), with gain = calculate_gain(nonlinearity, a):
 *   std = gain / sqrt(fan)          normal:  N(0, std^2)
 *   bound = sqrt(3) * std           uniform: U(-bound, bound)   (same variance)
 * Xavier (Glorot & Bengio 2010):
 *   std = gain * sqrt(2 / (fan_in + fan_out)), bound = sqrt(3) * std
 */
#include "engine/internal.h"
#include "mytorch/nn.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>

double mt_init_calculate_gain(const char *nonlinearity, double param)
{
    if (!nonlinearity) { mt_set_error(MT_ERR_ARGUMENT, "calculate_gain: nonlinearity is NULL"); return NAN; }
    static const char *const unit_gain[] = {
        "linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d",
        "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    };
    for (size_t i = 0; i < sizeof unit_gain / sizeof unit_gain[0]; i++)
        if (strcmp(nonlinearity, unit_gain[i]) == 0) return 1.0;
    if (strcmp(nonlinearity, "tanh") == 0) return 5.0 / 3.0;
    if (strcmp(nonlinearity, "relu") == 0) return sqrt(2.0);
    /* param is the negative slope, used as given (kaiming's a) */
    if (strcmp(nonlinearity, "leaky_relu") == 0) return sqrt(2.0 / (1.0 + param * param));
    if (strcmp(nonlinearity, "selu") == 0) return 3.0 / 4.0;
    mt_set_error(MT_ERR_ARGUMENT, "calculate_gain: unknown nonlinearity \"%s\" (expected linear, sigmoid, tanh, "
                 "relu, leaky_relu, selu or conv*)", nonlinearity);
    return NAN;
}

/* fan_in and fan_out of t as PyTorch computes them; needs >= 2 dims. */
static mt_status compute_fans(const char *op, const mt_tensor *t, double *fan_in, double *fan_out)
{
    if (!t) return mt_set_error(MT_ERR_ARGUMENT, "%s: tensor is NULL", op);
    if (!mt_dtype_is_float(t->dtype))
        return mt_set_error(MT_ERR_DTYPE, "%s: needs f32 or f64, got %s", op, mt_dtype_name(t->dtype));
    if (t->ndim < 2) {
        char s[128];
        return mt_set_error(MT_ERR_SHAPE, "%s: fan in and fan out need a tensor of at least 2 dims, got %s",
                            op, mt_shape_str(t, s, sizeof s));
    }
    double receptive = 1;
    for (int d = 2; d < t->ndim; d++) receptive *= (double)t->shape[d];
    *fan_in = (double)t->shape[1] * receptive;
    *fan_out = (double)t->shape[0] * receptive;
    return MT_OK;
}

/* std = gain / sqrt(fan) for kaiming; 0 when the fan is 0 (an empty tensor: nothing to draw). */
static mt_status kaiming_std(const char *op, const mt_tensor *t, double a, mt_fan_mode mode,
                             const char *nonlinearity, double *std)
{
    double fan_in, fan_out;
    mt_status st = compute_fans(op, t, &fan_in, &fan_out);
    if (st != MT_OK) return st;
    double gain = mt_init_calculate_gain(nonlinearity, a);
    if (isnan(gain)) return mt_last_status();
    double fan = mode == MT_FAN_IN ? fan_in : fan_out;
    *std = fan > 0 ? gain / sqrt(fan) : 0;
    return MT_OK;
}

mt_status mt_init_kaiming_uniform_(mt_tensor *t, mt_generator *gen, double a, mt_fan_mode mode, const char *nonlinearity)
{
    double std;
    mt_status st = kaiming_std("kaiming_uniform_", t, a, mode, nonlinearity, &std);
    if (st != MT_OK || mt_numel(t) == 0) return st;
    double bound = sqrt(3.0) * std;
    return mt_uniform_(t, gen, -bound, bound);
}

mt_status mt_init_kaiming_normal_(mt_tensor *t, mt_generator *gen, double a, mt_fan_mode mode, const char *nonlinearity)
{
    double std;
    mt_status st = kaiming_std("kaiming_normal_", t, a, mode, nonlinearity, &std);
    if (st != MT_OK || mt_numel(t) == 0) return st;
    return mt_normal_(t, gen, 0, std);
}

static mt_status xavier_std(const char *op, const mt_tensor *t, double gain, double *std)
{
    double fan_in, fan_out;
    mt_status st = compute_fans(op, t, &fan_in, &fan_out);
    if (st != MT_OK) return st;
    *std = fan_in + fan_out > 0 ? gain * sqrt(2.0 / (fan_in + fan_out)) : 0;
    return MT_OK;
}

mt_status mt_init_xavier_uniform_(mt_tensor *t, mt_generator *gen, double gain)
{
    double std;
    mt_status st = xavier_std("xavier_uniform_", t, gain, &std);
    if (st != MT_OK || mt_numel(t) == 0) return st;
    double bound = sqrt(3.0) * std;
    return mt_uniform_(t, gen, -bound, bound);
}

mt_status mt_init_xavier_normal_(mt_tensor *t, mt_generator *gen, double gain)
{
    double std;
    mt_status st = xavier_std("xavier_normal_", t, gain, &std);
    if (st != MT_OK || mt_numel(t) == 0) return st;
    return mt_normal_(t, gen, 0, std);
}

/* N(mean, std^2) conditioned on [a, b] (PyTorch's trunc_normal_, the default
   std 0.02 of ViT and ConvNeXt with a = -2, b = 2): draws outside the range
   are drawn again until every value is inside, in order, so the result is a
   function of the generator's state alone. The range must hold some of the
   distribution's mass (at least 1e-6 of it), else the redraws would not end. */
mt_status mt_init_trunc_normal_(mt_tensor *t, mt_generator *gen, double mean, double std, double a, double b)
{
    if (!t) return mt_last_status();
    double mass = 0.5 * (erf((b - mean) / (std * sqrt(2.0))) - erf((a - mean) / (std * sqrt(2.0))));
    if (!(std > 0) || !(a < b) || !(mass >= 1e-6))
        return mt_set_error(MT_ERR_ARGUMENT, "trunc_normal_: need std > 0 and a < b with [a, b] holding some of "
                            "N(mean, std^2), got mean %g, std %g, [%g, %g]", mean, std, a, b);
    int64_t n = mt_numel(t);
    if (n == 0) return MT_OK;
    double *v = malloc(sizeof(double) * (size_t)n), *redraw = malloc(sizeof(double) * (size_t)n);
    if (!v || !redraw) { free(v); free(redraw); return mt_set_error(MT_ERR_MEMORY, "trunc_normal_: out of memory"); }
    mt_status st = MT_OK;
    mt_scope s = mt_scope_begin();
    for (int64_t todo = n, first = 1; todo > 0 && st == MT_OK; first = 0) {
        mt_tensor *draw = mt_normal(gen, MT_F64, 1, &todo, mean, std);
        st = draw ? mt_to_data(draw, MT_F64, first ? v : redraw) : mt_last_status();
        int64_t used = 0, left = 0;
        for (int64_t i = 0; i < n && st == MT_OK; i++) {
            if (!first && !(v[i] >= a && v[i] <= b)) v[i] = redraw[used++];
            if (!(v[i] >= a && v[i] <= b)) left++;
        }
        todo = left;
    }
    if (st == MT_OK) {
        mt_tensor *src = mt_from_data(MT_F64, t->ndim, t->shape, v);
        st = src ? mt_copy_(t, src) : mt_last_status();
    }
    mt_scope_end(s);
    free(v);
    free(redraw);
    return st;
}
