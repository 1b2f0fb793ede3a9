/*
 * nn_conv.c - the convolution layers: Conv1d, Conv2d, ConvTranspose1d and
 * ConvTranspose2d, over the functional ops of conv.h.
 *
 * Parameters as PyTorch names and shapes them (so state dicts load either way):
 *   Conv:           weight [out, in / groups, kH, kW]   bias [out]
 *   ConvTranspose:  weight [in, out / groups, kH, kW]   bias [out]
 * (1-d layers drop kH). PyTorch's reset_parameters: kaiming_uniform_(weight,
 * a = sqrt(5)), a bound of 1 / sqrt(fan_in) with fan_in = weight.shape[1]
 * kH kW, and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 */
#include "engine/internal.h"
#include "mytorch/nn.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct conv_impl {
    int spatial;              /* 1 or 2 */
    bool transposed;
    int64_t in_channels, out_channels, kernel[2];
    mt_conv_opts opts;
} conv_impl;

static mt_tensor *conv_forward(mt_module *m, mt_tensor *x)
{
    const conv_impl *c = m->impl;
    mt_tensor *w = mt_module_param(m, "weight"), *b = mt_module_param(m, "bias");
    if (c->transposed)
        return c->spatial == 2 ? mt_conv_transpose2d(x, w, b, c->opts) : mt_conv_transpose1d(x, w, b, c->opts);
    return c->spatial == 2 ? mt_conv2d(x, w, b, c->opts) : mt_conv1d(x, w, b, c->opts);
}

/* "(a, b)" for 2-d, "(a,)" for 1-d, as PyTorch prints its tuples. */
static int print_pair(char *buf, size_t size, int spatial, const int64_t *v)
{
    return spatial == 2 ? snprintf(buf, size, "(%" PRId64 ", %" PRId64 ")", v[0], v[1])
                        : snprintf(buf, size, "(%" PRId64 ",)", v[0]);
}

/* Appends printf output at *at within buf[size], never past its end. */
static void append(char *buf, size_t size, size_t *at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *at, const char *fmt, ...)
{
    if (*at >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *at, size - *at, fmt, ap);
    va_end(ap);
    if (k > 0) *at += (size_t)k;
}

static void append_pair(char *buf, size_t size, size_t *at, const char *name, int spatial, const int64_t *v)
{
    char p[64];
    print_pair(p, sizeof p, spatial, v);
    append(buf, size, at, ", %s=%s", name, p);
}

/* PyTorch's extra_repr: "3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False"
   (settings at their defaults left out). */
static void conv_repr(const mt_module *m, char *buf, size_t size)
{
    const conv_impl *c = m->impl;
    const mt_conv_opts *o = &c->opts;
    size_t at = 0;
    append(buf, size, &at, "%" PRId64 ", %" PRId64, c->in_channels, c->out_channels);
    append_pair(buf, size, &at, "kernel_size", c->spatial, c->kernel);
    append_pair(buf, size, &at, "stride", c->spatial, o->stride);
    if (o->padding_same) append(buf, size, &at, ", padding=same");
    else if (o->padding[0] || (c->spatial == 2 && o->padding[1])) append_pair(buf, size, &at, "padding", c->spatial, o->padding);
    if (c->transposed && (o->output_padding[0] || (c->spatial == 2 && o->output_padding[1])))
        append_pair(buf, size, &at, "output_padding", c->spatial, o->output_padding);
    if (o->dilation[0] != 1 || (c->spatial == 2 && o->dilation[1] != 1))
        append_pair(buf, size, &at, "dilation", c->spatial, o->dilation);
    if (o->groups != 1) append(buf, size, &at, ", groups=%" PRId64, o->groups);
    if (!mt_module_param(m, "bias")) append(buf, size, &at, ", bias=False");
}

static const mt_module_type conv1d_type = { "Conv1d", conv_forward, NULL, conv_repr };
static const mt_module_type conv2d_type = { "Conv2d", conv_forward, NULL, conv_repr };
static const mt_module_type conv_transpose1d_type = { "ConvTranspose1d", conv_forward, NULL, conv_repr };
static const mt_module_type conv_transpose2d_type = { "ConvTranspose2d", conv_forward, NULL, conv_repr };

static mt_module *conv_new(const mt_module_type *type, int spatial, bool transposed, int64_t in, int64_t out,
                           int64_t kh, int64_t kw, bool bias, mt_conv_opts o)
{
    const char *name = type->name;
    if (o.from_defaults != MT_OPTS_FROM_DEFAULTS) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: options must start from MT_CONV_DEFAULTS (every field is used as given, "
                     "zero included; docs/options.md)", name);
        return NULL;
    }
    if (in < 1 || out < 1 || kh < 1 || kw < 1 || o.groups < 1 || in % o.groups || out % o.groups) {
        mt_set_error(MT_ERR_ARGUMENT, "%s: in_channels %" PRId64 " and out_channels %" PRId64 " must be >= 1 and "
                     "divisible by groups (%" PRId64 "), and the kernel size >= 1", name, in, out, o.groups);
        return NULL;
    }
    conv_impl *impl = malloc(sizeof *impl);
    mt_module *m = impl ? mt_module_new(type, impl) : NULL;
    if (!m) { free(impl); if (!impl) mt_set_error(MT_ERR_MEMORY, "%s: out of memory", name); return NULL; }
    *impl = (conv_impl){ spatial, transposed, in, out, { spatial == 2 ? kh : kw, kw }, o };
    int64_t rows = transposed ? in : out, cols = (transposed ? out : in) / o.groups;
    mt_tensor *w = spatial == 2 ? mt_empty(MT_F32, MT_SHAPE(rows, cols, kh, kw)) : mt_empty(MT_F32, MT_SHAPE(rows, cols, kw));
    w = mt_module_add_param(m, "weight", w);
    bool ok = w && mt_init_kaiming_uniform_(w, NULL, sqrt(5.0), MT_FAN_IN, "leaky_relu") == MT_OK;
    if (ok && bias) {
        double fan_in = (double)cols * (double)kh * (double)kw, bound = 1.0 / sqrt(fan_in);
        mt_tensor *b = mt_module_add_param(m, "bias", mt_empty(MT_F32, MT_SHAPE(out)));
        ok = b && mt_uniform_(b, NULL, -bound, bound) == MT_OK;
    }
    if (!ok) { mt_module_free(m); return NULL; }
    return m;
}

mt_module *mt_nn_conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias, mt_conv_opts opts)
{
    return conv_new(&conv1d_type, 1, false, in_channels, out_channels, 1, kernel_size, bias, opts);
}

mt_module *mt_nn_conv2d(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw, bool bias,
                        mt_conv_opts opts)
{
    return conv_new(&conv2d_type, 2, false, in_channels, out_channels, kh, kw, bias, opts);
}

mt_module *mt_nn_conv_transpose1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias,
                                  mt_conv_opts opts)
{
    return conv_new(&conv_transpose1d_type, 1, true, in_channels, out_channels, 1, kernel_size, bias, opts);
}

mt_module *mt_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw, bool bias,
                                  mt_conv_opts opts)
{
    return conv_new(&conv_transpose2d_type, 2, true, in_channels, out_channels, kh, kw, bias, opts);
}
