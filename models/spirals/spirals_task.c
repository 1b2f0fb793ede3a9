/*
 * spirals_task.c - the two-spirals demo: an MLP
 *   Linear(2, H) - GELU - Linear(H, H) - GELU - Linear(H, 2)
 * trained with AdamW on cross-entropy in shuffled minibatches (learning rate:
 * one epoch of linear warm-up, then cosine decay), every step in a step scope,
 * on the device the options name (the model is built, then moved there with
 * mt_module_to; the data is copied there). Uses the public API only
 * (include/mytorch/mytorch.h).
 */
#include "models/spirals/spirals_task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "models/spirals/spirals.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Accuracy of net on (x, y), in eval mode and without a tape. */
static double accuracy(mt_module *net, mt_tensor *x, mt_tensor *y)
{
    double acc = NAN;
    bool was_training = net->training;
    mt_module_train(net, false);
    mt_scope s = mt_scope_begin();
    MT_NO_GRAD {
        mt_tensor *pred = mt_argmax(mt_forward(net, x), 1, false);
        mt_tensor *hits = mt_sum_all(mt_to_dtype(mt_eq(pred, y), MT_F64));
        if (hits) acc = mt_item(hits) / (double)mt_size(y, 0);
    }
    mt_scope_end(s);
    mt_module_train(net, was_training);
    return acc;
}

static void format_eta(double seconds, char *buf, size_t size)
{
    if (!isfinite(seconds) || seconds < 0) snprintf(buf, size, "--");
    else if (seconds < 60) snprintf(buf, size, "%.1fs", seconds);
    else snprintf(buf, size, "%dm%02ds", (int)(seconds / 60), (int)fmod(seconds, 60));
}

static void progress_line(FILE *f, bool tty, int epoch, int epochs, double loss, double acc,
                          double rate, double eta)
{
    enum { WIDTH = 24 };
    char bar[WIDTH + 1], eta_s[32];
    int filled = (int)((double)WIDTH * epoch / epochs);
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    format_eta(eta, eta_s, sizeof eta_s);
    fprintf(f, "%sepoch %*d/%d [%s] loss %.4f  acc %5.1f%%  %7.0f samples/s  ETA %s%s",
            tty ? "\r" : "", (int)snprintf(NULL, 0, "%d", epochs), epoch, epochs, bar, loss, 100 * acc,
            rate, eta_s, tty ? "\033[K" : "\n");
    fflush(f);
}

/* Replaces *t by a copy on device (freeing the old one); nothing when it is there. */
static mt_status move_to(mt_tensor **t, mt_device device)
{
    mt_tensor *m = mt_to_device(*t, device);
    if (!m) return mt_last_status();
    if (m != *t) {
        mt_free(*t);
        *t = m;
    }
    return MT_OK;
}

mt_status mt_spirals_train(const mt_spirals_opts *o, mt_spirals_report *report)
{
    if (!o || !report) return mt_set_error(MT_ERR_ARGUMENT, "spirals: NULL options or report");
    int epochs = o->epochs > 0 ? o->epochs : 200;
    int hidden = o->hidden > 0 ? o->hidden : 64;
    int batch = o->batch_size > 0 ? o->batch_size : 64;
    int64_t per_arm = o->points_per_arm > 0 ? o->points_per_arm : 500;
    double lr = o->lr > 0 ? o->lr : 1e-2;
    double turns = o->turns > 0 ? o->turns : 1.5;
    double noise = o->noise > 0 ? o->noise : o->noise < 0 ? 0.0 : 0.01;
    memset(report, 0, sizeof *report);
    mt_device device = mt_default_device();
    if (o->device && mt_device_from_string(o->device, &device) != MT_OK) return mt_last_status();
    report->device = device;

    mt_tensor *x = NULL, *y = NULL, *x_test = NULL, *y_test = NULL, *xs = NULL, *ys = NULL;
    mt_module *net = NULL;
    mt_optimizer *opt = NULL;
    mt_scheduler *sched = NULL;
    int64_t *perm = NULL;
    float *xbuf = NULL, *xs_p = NULL;
    int64_t *ybuf = NULL, *ys_p = NULL;
    mt_status st = mt_spirals_make(per_arm, turns, noise, o->seed, &x, &y);
    if (st == MT_OK) st = mt_spirals_make(per_arm, turns, noise, o->seed + 1, &x_test, &y_test);
    if (st != MT_OK) goto done;
    int64_t n = mt_size(x, 0);

    /* The initial weights come from the seeded Philox stream, the same numbers
       on every backend; the module is then moved to the device, and the
       optimizer made afterwards so that its state lives there too. */
    mt_manual_seed(o->seed);
    net = mt_nn_sequential(mt_nn_linear(2, hidden, true), mt_nn_gelu(MT_GELU_TANH),
                           mt_nn_linear(hidden, hidden, true), mt_nn_gelu(MT_GELU_TANH),
                           mt_nn_linear(hidden, 2, true));
    if (!net) { st = mt_last_status(); goto done; }
    if ((st = mt_module_to(net, device)) != MT_OK) goto done;
    if ((st = move_to(&x, device)) != MT_OK || (st = move_to(&y, device)) != MT_OK ||
        (st = move_to(&x_test, device)) != MT_OK || (st = move_to(&y_test, device)) != MT_OK) goto done;
    report->parameters = mt_parameter_count(net);
    mt_tensor_list params = mt_parameters(net);
    mt_adam_opts adam_opts = MT_ADAMW_DEFAULTS;
    adam_opts.lr = lr;
    adam_opts.weight_decay = o->weight_decay;
    opt = mt_adamw(params, adam_opts);
    mt_tensor_list_free(&params);
    if (!opt) { st = mt_last_status(); goto done; }
    int64_t steps_per_epoch = (n + batch - 1) / batch;
    sched = mt_cosine_warmup_lr(opt, steps_per_epoch, steps_per_epoch * epochs, lr * 1e-2);
    if (!sched) { st = mt_last_status(); goto done; }

    /* Shuffled copies of the training set, refilled each epoch on the host
       (xs, ys wrap host buffers) and copied to the device once per epoch; a
       minibatch is a view (mt_narrow) of the device copy. */
    perm = malloc((size_t)n * sizeof *perm);
    xbuf = malloc((size_t)(2 * n) * sizeof *xbuf);
    ybuf = malloc((size_t)n * sizeof *ybuf);
    xs_p = malloc((size_t)(2 * n) * sizeof *xs_p);
    ys_p = malloc((size_t)n * sizeof *ys_p);
    if (!perm || !xbuf || !ybuf || !xs_p || !ys_p) { st = mt_set_error(MT_ERR_MEMORY, "spirals: out of memory"); goto done; }
    xs = mt_from_blob(MT_F32, MT_SHAPE(n, 2), xs_p);
    ys = mt_from_blob(MT_I64, MT_SHAPE(n), ys_p);
    if (!xs || !ys) { st = mt_last_status(); goto done; }
    if ((st = mt_to_data(x, MT_F32, xbuf)) != MT_OK || (st = mt_to_data(y, MT_I64, ybuf)) != MT_OK) goto done;

    mt_generator shuffle = mt_generator_new(o->seed ^ 0x5eed5eed5eedULL);
    bool tty = o->progress && isatty(fileno(o->progress));
    int every = epochs < 10 ? 1 : epochs / 10;   /* lines when stderr is not a terminal */
    double t0 = now_s(), last_draw = -1;
    mt_module_train(net, true);
    for (int epoch = 1; epoch <= epochs && st == MT_OK; epoch++) {
        mt_tensor *p = mt_randperm(&shuffle, n);
        if (!p || (st = mt_to_data(p, MT_I64, perm)) != MT_OK) { st = mt_last_status(); mt_free(p); break; }
        mt_free(p);
        for (int64_t i = 0; i < n; i++) {
            xs_p[2 * i] = xbuf[2 * perm[i]];
            xs_p[2 * i + 1] = xbuf[2 * perm[i] + 1];
            ys_p[i] = ybuf[perm[i]];
        }
        mt_tensor *xd = mt_to_device(xs, device), *yd = mt_to_device(ys, device);
        if (!xd || !yd) st = mt_last_status();
        double loss_sum = 0, hits = 0;
        for (int64_t start = 0; start < n && st == MT_OK; start += batch) {
            int64_t len = n - start < batch ? n - start : batch;
            mt_scope step = mt_scope_begin();
            mt_tensor *xb = mt_narrow(xd, 0, start, len), *yb = mt_narrow(yd, 0, start, len);
            mt_tensor *logits = mt_forward(net, xb);
            mt_tensor *loss = mt_cross_entropy(logits, yb, (mt_ce_opts){ .reduction = MT_REDUCTION_MEAN });
            if (!loss) st = mt_last_status();
            if (st == MT_OK) st = mt_backward(loss);
            if (st == MT_OK) st = mt_step(opt);
            mt_optimizer_zero_grad(opt);
            mt_scheduler_step(sched);
            if (st == MT_OK) {
                loss_sum += mt_item(loss) * (double)len;
                mt_tensor *h = mt_sum_all(mt_to_dtype(mt_eq(mt_argmax(logits, 1, false), yb), MT_F64));
                if (!h) st = mt_last_status();
                else hits += mt_item(h);
            }
            mt_scope_end(step);
            report->steps++;
        }
        if (xd != xs) mt_free(xd);
        if (yd != ys) mt_free(yd);
        if (st != MT_OK) break;
        report->samples += n;
        report->final_loss = loss_sum / (double)n;
        double elapsed = now_s() - t0;
        if (o->progress && ((tty && (elapsed - last_draw > 0.05 || epoch == epochs)) ||
                            (!tty && (epoch % every == 0 || epoch == epochs)))) {
            double rate = (double)report->samples / elapsed;
            progress_line(o->progress, tty, epoch, epochs, report->final_loss, hits / (double)n,
                          rate, elapsed / epoch * (epochs - epoch));
            last_draw = elapsed;
        }
    }
    if (tty) fputc('\n', o->progress);
    report->seconds = now_s() - t0;
    if (st != MT_OK) goto done;

    report->train_accuracy = accuracy(net, x, y);
    report->test_accuracy = accuracy(net, x_test, y_test);
    if (isnan(report->train_accuracy) || isnan(report->test_accuracy)) st = mt_last_status();

done:
    mt_free(xs); mt_free(ys);
    free(perm); free(xbuf); free(ybuf); free(xs_p); free(ys_p);
    mt_scheduler_free(sched);
    mt_optimizer_free(opt);
    mt_module_free(net);
    mt_free(x); mt_free(y); mt_free(x_test); mt_free(y_test);
    return st;
}
