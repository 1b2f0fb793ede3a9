/*
 * optim.h - optimizers, learning-rate schedulers and gradient clipping
 * (PyTorch's torch.optim). Updates run as fused backend kernels on each
 * parameter, outside the tape.
 */
#ifndef MT_OPTIM_H
#define MT_OPTIM_H

#include "mytorch/nn.h"

typedef struct mt_optimizer mt_optimizer;

/* Options: every field is used as given, zero included; start from the
   defaults value and change what you need (docs/options.md):

       mt_adam_opts o = MT_ADAMW_DEFAULTS;
       o.lr = 3e-4;
       o.beta1 = 0;                        // a zero is a zero
       mt_optimizer *opt = mt_adamw(params, o);
*/
typedef struct mt_sgd_opts {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
    uint32_t from_defaults;   /* set by MT_SGD_DEFAULTS; leave it */
} mt_sgd_opts;
/* PyTorch's SGD defaults: lr 1e-3, no momentum, dampening or weight decay. */
#define MT_SGD_DEFAULTS ((mt_sgd_opts){ .lr = 1e-3, .from_defaults = MT_OPTS_FROM_DEFAULTS })

typedef struct mt_adam_opts {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad;
    uint32_t from_defaults;   /* set by MT_ADAM_DEFAULTS / MT_ADAMW_DEFAULTS; leave it */
} mt_adam_opts;
/* PyTorch's Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay. */
#define MT_ADAM_DEFAULTS ((mt_adam_opts){ .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, \
                                          .from_defaults = MT_OPTS_FROM_DEFAULTS })
/* PyTorch's AdamW defaults: Adam's, with weight decay 0.01. */
#define MT_ADAMW_DEFAULTS ((mt_adam_opts){ .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, \
                                           .weight_decay = 1e-2, .from_defaults = MT_OPTS_FROM_DEFAULTS })

/* The optimizer keeps its own copy of the list (not the tensors: the module owns those). */
mt_optimizer *mt_sgd(mt_tensor_list params, mt_sgd_opts opts);
mt_optimizer *mt_adam(mt_tensor_list params, mt_adam_opts opts);   /* L2 added to the gradient */
mt_optimizer *mt_adamw(mt_tensor_list params, mt_adam_opts opts);  /* decoupled weight decay */
/* Applies one update to every parameter that has a gradient. */
mt_status mt_step(mt_optimizer *opt);
void mt_optimizer_zero_grad(mt_optimizer *opt);
double mt_optimizer_lr(const mt_optimizer *opt);
void mt_optimizer_set_lr(mt_optimizer *opt, double lr);
int64_t mt_optimizer_steps(const mt_optimizer *opt);
/* The optimizer's state as named tensors ("<param>.exp_avg", ..., "step"),
   for checkpoints; the tensors belong to the optimizer. */
mt_tensor_list mt_optimizer_state(const mt_optimizer *opt);
/* Loads state saved by mt_optimizer_state (names must match). */
mt_status mt_optimizer_load_state(mt_optimizer *opt, mt_tensor_list state);
void mt_optimizer_free(mt_optimizer *opt);

/* Scales every gradient by min(1, max_norm / ||g||_2) where ||g|| is the
   norm of all gradients together; returns that total norm (NAN on error). */
double mt_clip_grad_norm(mt_tensor_list params, double max_norm);

/* ---------------------------------------------------------------- schedulers */
typedef struct mt_scheduler mt_scheduler;
/* lr = base * gamma^(epoch / step_size) */
mt_scheduler *mt_step_lr(mt_optimizer *opt, int64_t step_size, double gamma);
/* lr = base * gamma^(number of milestones passed) */
mt_scheduler *mt_multistep_lr(mt_optimizer *opt, int n, const int64_t *milestones, double gamma);
/* Linear warm-up from 0 to base over warmup steps, then cosine from base to min_lr at total steps. */
mt_scheduler *mt_cosine_warmup_lr(mt_optimizer *opt, int64_t warmup_steps, int64_t total_steps, double min_lr);
typedef struct mt_plateau_opts {
    bool maximize;         /* false: a lower metric is better (PyTorch's mode 'min') */
    double factor;         /* lr *= factor on a plateau, in [0, 1) */
    int patience;          /* epochs without improvement tolerated */
    double threshold;      /* relative improvement that counts */
    int cooldown;          /* epochs to wait after a reduction */
    double min_lr;
    uint32_t from_defaults;   /* set by MT_PLATEAU_DEFAULTS; leave it */
} mt_plateau_opts;
/* PyTorch's defaults: mode 'min', factor 0.1, patience 10, threshold 1e-4 ('rel'), cooldown 0, min_lr 0. */
#define MT_PLATEAU_DEFAULTS ((mt_plateau_opts){ .factor = 0.1, .patience = 10, .threshold = 1e-4, \
                                                .from_defaults = MT_OPTS_FROM_DEFAULTS })
mt_scheduler *mt_reduce_on_plateau(mt_optimizer *opt, mt_plateau_opts opts);
/* Advances one step (epoch or iteration, as the caller uses it). */
void mt_scheduler_step(mt_scheduler *s);
/* For ReduceLROnPlateau: advances with the watched metric. */
void mt_scheduler_step_metric(mt_scheduler *s, double metric);
void mt_scheduler_free(mt_scheduler *s);

#endif
