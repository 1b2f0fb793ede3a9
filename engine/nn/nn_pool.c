/*
 * nn_pool.c - the pooling and resampling layers of nn.h: MaxPool1d/2d,
 * AvgPool1d/2d, AdaptiveAvgPool1d/2d, AdaptiveMaxPool2d, Upsample
 * (PyTorch's nn.Upsample: interpolation), and the course's Upsample1d/2d
 * and Downsample1d/2d (zero insertion, strided selection). Each keeps its
 * options and applies the functional op of pool.h; none has parameters
 * or buffers, so they move and convert with any module and their state
 * dicts are empty, as PyTorch's. The options are checked when the layer is
 * built as far as they do not depend on the input; the rest (a kernel larger
 * than the input, ...) fails at forward, with the op's message.
 */
#include "engine/internal.h"
#include "mytorch/nn.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pool_layer {
    union {
        mt_max_pool1d_opts max1;
        mt_max_pool2d_opts max2;
        mt_avg_pool1d_opts avg1;
        mt_avg_pool2d_opts avg2;
        mt_interpolate_opts interp;
    } o;
    int64_t out[2];          /* adaptive: the output size (out[0] = H) */
    int64_t factor;          /* the course's layers */
} pool_layer;

static const pool_layer *layer_of(const mt_module *m) { return m->impl; }

static mt_module *new_layer(const mt_module_type *type, pool_layer args)
{
    pool_layer *impl = malloc(sizeof *impl);
    if (!impl) { mt_set_error(MT_ERR_MEMORY, "%s: out of memory", type->name); return NULL; }
    *impl = args;
    mt_module *m = mt_module_new(type, impl);
    if (!m) free(impl);
    return m;
}

/* "3", or "(3, 2)" when the two differ, as PyTorch prints an int or a tuple */
static const char *pair_text(const int64_t *v, char *buf, size_t size)
{
    if (v[0] == v[1]) snprintf(buf, size, "%" PRId64, v[0]);
    else snprintf(buf, size, "(%" PRId64 ", %" PRId64 ")", v[0], v[1]);
    return buf;
}

static bool check_defaults(const char *layer, uint32_t tag, const char *defaults)
{
    if (tag == MT_OPTS_FROM_DEFAULTS) return true;
    mt_set_error(MT_ERR_ARGUMENT, "%s: options must start from %s (every field is used as given, zero included; "
                 "docs/options.md)", layer, defaults);
    return false;
}

/* kernel, stride, dilation positive, 0 <= padding <= half the effective kernel size, per axis */
static bool check_window(const char *layer, const char *axis, int64_t k, int64_t s, int64_t pad, int64_t d)
{
    if (k > 0 && s > 0 && d > 0 && pad >= 0 && pad <= (d * (k - 1) + 1) / 2) return true;
    mt_set_error(MT_ERR_ARGUMENT, "%s: need kernel_size, stride and dilation > 0 and 0 <= padding <= "
                 "(dilation (kernel_size - 1) + 1) / 2, "
                 "got kernel_size %" PRId64 ", stride %" PRId64 ", padding %" PRId64 ", dilation %" PRId64 "%s%s",
                 layer, k, s, pad, d, *axis ? " along " : "", axis);
    return false;
}

/* ---------------------------------------------------------------- MaxPool1d, MaxPool2d */
static mt_tensor *max_pool1d_forward(mt_module *m, mt_tensor *x) { return mt_max_pool1d(x, layer_of(m)->o.max1, NULL); }
static mt_tensor *max_pool2d_forward(mt_module *m, mt_tensor *x) { return mt_max_pool2d(x, layer_of(m)->o.max2, NULL); }

static void max_pool1d_repr(const mt_module *m, char *buf, size_t size)
{
    const mt_max_pool1d_opts *o = &layer_of(m)->o.max1;
    snprintf(buf, size, "kernel_size=%" PRId64 ", stride=%" PRId64 ", padding=%" PRId64 ", dilation=%" PRId64
             ", ceil_mode=%s", o->kernel_size, o->stride, o->padding, o->dilation, o->ceil_mode ? "True" : "False");
}

static void max_pool2d_repr(const mt_module *m, char *buf, size_t size)
{
    const mt_max_pool2d_opts *o = &layer_of(m)->o.max2;
    char k[48], s[48], p[48], d[48];
    snprintf(buf, size, "kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s",
             pair_text(o->kernel_size, k, sizeof k), pair_text(o->stride, s, sizeof s),
             pair_text(o->padding, p, sizeof p), pair_text(o->dilation, d, sizeof d), o->ceil_mode ? "True" : "False");
}

static const mt_module_type max_pool1d_type = { "MaxPool1d", max_pool1d_forward, NULL, max_pool1d_repr };
static const mt_module_type max_pool2d_type = { "MaxPool2d", max_pool2d_forward, NULL, max_pool2d_repr };

mt_module *mt_nn_max_pool1d(mt_max_pool1d_opts opts)
{
    if (!check_defaults("MaxPool1d", opts.from_defaults, "MT_MAX_POOL1D_DEFAULTS(k)") ||
        !check_window("MaxPool1d", "", opts.kernel_size, opts.stride, opts.padding, opts.dilation))
        return NULL;
    return new_layer(&max_pool1d_type, (pool_layer){ .o.max1 = opts });
}

mt_module *mt_nn_max_pool2d(mt_max_pool2d_opts opts)
{
    if (!check_defaults("MaxPool2d", opts.from_defaults, "MT_MAX_POOL2D_DEFAULTS(kh, kw)")) return NULL;
    for (int a = 0; a < 2; a++)
        if (!check_window("MaxPool2d", a ? "W" : "H", opts.kernel_size[a], opts.stride[a], opts.padding[a],
                          opts.dilation[a]))
            return NULL;
    return new_layer(&max_pool2d_type, (pool_layer){ .o.max2 = opts });
}

/* ---------------------------------------------------------------- AvgPool1d, AvgPool2d */
static mt_tensor *avg_pool1d_forward(mt_module *m, mt_tensor *x) { return mt_avg_pool1d(x, layer_of(m)->o.avg1); }
static mt_tensor *avg_pool2d_forward(mt_module *m, mt_tensor *x) { return mt_avg_pool2d(x, layer_of(m)->o.avg2); }

/* PyTorch's AvgPool1d keeps 1-tuples: kernel_size=(3,) */
static void avg_pool1d_repr(const mt_module *m, char *buf, size_t size)
{
    const mt_avg_pool1d_opts *o = &layer_of(m)->o.avg1;
    snprintf(buf, size, "kernel_size=(%" PRId64 ",), stride=(%" PRId64 ",), padding=(%" PRId64 ",)", o->kernel_size,
             o->stride, o->padding);
}

static void avg_pool2d_repr(const mt_module *m, char *buf, size_t size)
{
    const mt_avg_pool2d_opts *o = &layer_of(m)->o.avg2;
    char k[48], s[48], p[48];
    snprintf(buf, size, "kernel_size=%s, stride=%s, padding=%s", pair_text(o->kernel_size, k, sizeof k),
             pair_text(o->stride, s, sizeof s), pair_text(o->padding, p, sizeof p));
}

static const mt_module_type avg_pool1d_type = { "AvgPool1d", avg_pool1d_forward, NULL, avg_pool1d_repr };
static const mt_module_type avg_pool2d_type = { "AvgPool2d", avg_pool2d_forward, NULL, avg_pool2d_repr };

mt_module *mt_nn_avg_pool1d(mt_avg_pool1d_opts opts)
{
    if (!check_defaults("AvgPool1d", opts.from_defaults, "MT_AVG_POOL1D_DEFAULTS(k)") ||
        !check_window("AvgPool1d", "", opts.kernel_size, opts.stride, opts.padding, 1))
        return NULL;
    return new_layer(&avg_pool1d_type, (pool_layer){ .o.avg1 = opts });
}

mt_module *mt_nn_avg_pool2d(mt_avg_pool2d_opts opts)
{
    if (!check_defaults("AvgPool2d", opts.from_defaults, "MT_AVG_POOL2D_DEFAULTS(kh, kw)")) return NULL;
    for (int a = 0; a < 2; a++)
        if (!check_window("AvgPool2d", a ? "W" : "H", opts.kernel_size[a], opts.stride[a], opts.padding[a], 1))
            return NULL;
    if (opts.has_divisor_override && opts.divisor_override == 0) {
        mt_set_error(MT_ERR_ARGUMENT, "AvgPool2d: divisor_override must not be 0");
        return NULL;
    }
    return new_layer(&avg_pool2d_type, (pool_layer){ .o.avg2 = opts });
}

/* ---------------------------------------------------------------- adaptive pooling */
static mt_tensor *adaptive_avg1d_forward(mt_module *m, mt_tensor *x) { return mt_adaptive_avg_pool1d(x, layer_of(m)->out[1]); }
static mt_tensor *adaptive_avg2d_forward(mt_module *m, mt_tensor *x)
{
    return mt_adaptive_avg_pool2d(x, layer_of(m)->out[0], layer_of(m)->out[1]);
}
static mt_tensor *adaptive_max2d_forward(mt_module *m, mt_tensor *x)
{
    return mt_adaptive_max_pool2d(x, layer_of(m)->out[0], layer_of(m)->out[1], NULL);
}

static void output_size1_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "output_size=%" PRId64, layer_of(m)->out[1]);
}
static void output_size2_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "output_size=(%" PRId64 ", %" PRId64 ")", layer_of(m)->out[0], layer_of(m)->out[1]);
}

static const mt_module_type adaptive_avg1d_type = { "AdaptiveAvgPool1d", adaptive_avg1d_forward, NULL, output_size1_repr };
static const mt_module_type adaptive_avg2d_type = { "AdaptiveAvgPool2d", adaptive_avg2d_forward, NULL, output_size2_repr };
static const mt_module_type adaptive_max2d_type = { "AdaptiveMaxPool2d", adaptive_max2d_forward, NULL, output_size2_repr };

static mt_module *adaptive(const mt_module_type *type, int64_t out_h, int64_t out_w)
{
    if (out_h <= 0 || out_w <= 0) {
        if (type == &adaptive_avg1d_type)
            mt_set_error(MT_ERR_ARGUMENT, "%s: the output size must be positive, got %" PRId64, type->name, out_w);
        else
            mt_set_error(MT_ERR_ARGUMENT, "%s: the output size must be positive, got (%" PRId64 ", %" PRId64 ")",
                         type->name, out_h, out_w);
        return NULL;
    }
    return new_layer(type, (pool_layer){ .out = { out_h, out_w } });
}

mt_module *mt_nn_adaptive_avg_pool1d(int64_t out_w) { return adaptive(&adaptive_avg1d_type, 1, out_w); }
mt_module *mt_nn_adaptive_avg_pool2d(int64_t out_h, int64_t out_w) { return adaptive(&adaptive_avg2d_type, out_h, out_w); }
mt_module *mt_nn_adaptive_max_pool2d(int64_t out_h, int64_t out_w) { return adaptive(&adaptive_max2d_type, out_h, out_w); }

/* ---------------------------------------------------------------- Upsample (interpolation) */
static mt_tensor *upsample_forward(mt_module *m, mt_tensor *x) { return mt_interpolate(x, layer_of(m)->o.interp); }

/* A float as Python's repr writes the usual ones: 2.0, 1.5 */
static void float_text(double v, char *buf, size_t size)
{
    if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, size, "%.1f", v);
    else snprintf(buf, size, "%g", v);
}

/* PyTorch: scale_factor=2.0 or size=(4, 4), then mode='nearest'. Which entries
   are used depends on the input's rank, unknown here: one value when the
   second entry is unset or equal, else both. */
static void upsample_repr(const mt_module *m, char *buf, size_t size)
{
    const mt_interpolate_opts *o = &layer_of(m)->o.interp;
    const char *mode = o->mode == MT_INTERP_LINEAR ? "linear" : o->mode == MT_INTERP_BILINEAR ? "bilinear" : "nearest";
    char what[96];
    if (o->size[0] || o->size[1]) {
        if (o->size[1] == 0 || o->size[1] == o->size[0]) snprintf(what, sizeof what, "size=%" PRId64, o->size[0]);
        else snprintf(what, sizeof what, "size=(%" PRId64 ", %" PRId64 ")", o->size[0], o->size[1]);
    } else {
        char a[40], b[40];
        float_text(o->scale_factor[0], a, sizeof a);
        float_text(o->scale_factor[1], b, sizeof b);
        if (o->scale_factor[1] == 0 || o->scale_factor[1] == o->scale_factor[0])
            snprintf(what, sizeof what, "scale_factor=%s", a);
        else snprintf(what, sizeof what, "scale_factor=(%s, %s)", a, b);
    }
    snprintf(buf, size, "%s, mode='%s'", what, mode);   /* PyTorch does not print align_corners */
}

static const mt_module_type upsample_type = { "Upsample", upsample_forward, NULL, upsample_repr };

mt_module *mt_nn_upsample(mt_interpolate_opts opts)
{
    bool has_size = opts.size[0] || opts.size[1], has_scale = opts.scale_factor[0] || opts.scale_factor[1];
    if (has_size == has_scale) {
        mt_set_error(MT_ERR_ARGUMENT, "Upsample: give either size or scale_factor (%s)",
                     has_size ? "not both" : "neither was given");
        return NULL;
    }
    if (opts.mode == MT_INTERP_NEAREST && opts.align_corners) {
        mt_set_error(MT_ERR_ARGUMENT, "Upsample: align_corners can only be set with the modes linear and bilinear");
        return NULL;
    }
    return new_layer(&upsample_type, (pool_layer){ .o.interp = opts });
}

/* ---------------------------------------------------------------- the course's Upsample1d/2d, Downsample1d/2d */
static mt_tensor *upsample1d_forward(mt_module *m, mt_tensor *x) { return mt_upsample1d(x, layer_of(m)->factor); }
static mt_tensor *upsample2d_forward(mt_module *m, mt_tensor *x) { return mt_upsample2d(x, layer_of(m)->factor); }
static mt_tensor *downsample1d_forward(mt_module *m, mt_tensor *x) { return mt_downsample1d(x, layer_of(m)->factor); }
static mt_tensor *downsample2d_forward(mt_module *m, mt_tensor *x) { return mt_downsample2d(x, layer_of(m)->factor); }

static void upsampling_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "upsampling_factor=%" PRId64, layer_of(m)->factor);
}
static void downsampling_repr(const mt_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "downsampling_factor=%" PRId64, layer_of(m)->factor);
}

static const mt_module_type upsample1d_type = { "Upsample1d", upsample1d_forward, NULL, upsampling_repr };
static const mt_module_type upsample2d_type = { "Upsample2d", upsample2d_forward, NULL, upsampling_repr };
static const mt_module_type downsample1d_type = { "Downsample1d", downsample1d_forward, NULL, downsampling_repr };
static const mt_module_type downsample2d_type = { "Downsample2d", downsample2d_forward, NULL, downsampling_repr };

static mt_module *resampling(const mt_module_type *type, int64_t factor)
{
    if (factor < 1) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: the factor must be >= 1, got %" PRId64, type->name, factor);
        return NULL;
    }
    return new_layer(type, (pool_layer){ .factor = factor });
}

mt_module *mt_nn_upsample1d(int64_t factor) { return resampling(&upsample1d_type, factor); }
mt_module *mt_nn_upsample2d(int64_t factor) { return resampling(&upsample2d_type, factor); }
mt_module *mt_nn_downsample1d(int64_t factor) { return resampling(&downsample1d_type, factor); }
mt_module *mt_nn_downsample2d(int64_t factor) { return resampling(&downsample2d_type, factor); }
