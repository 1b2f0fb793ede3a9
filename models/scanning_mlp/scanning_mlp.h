/*
 * scanning_mlp.h - the course's "CNN as a scanning MLP" exercise: an MLP that
 * classifies a window of 8 frames of 24 features, slid along a 128-frame
 * input with a stride of 4, is exactly a 1-d CNN; its weights can be loaded
 * into one, and the CNN computes all 31 windows at once.
 *
 *   the MLP       Linear(8 * 24 -> 8), ReLU, Linear(8 -> 16), ReLU, Linear(16 -> 4)
 *                 on the window x[t0 .. t0 + 8) flattened time-major (index t * 24 + c)
 *   simple        Conv1d(24, 8, 8, stride 4), ReLU, Conv1d(8, 16, 1), ReLU, Conv1d(16, 4, 1):
 *                 each MLP layer is a conv whose kernel covers what that layer sees
 *   distributed   Conv1d(24, 2, 2, stride 2), ReLU, Conv1d(2, 8, 2, stride 2), ReLU, Conv1d(8, 4, 2, stride 1):
 *                 the same receptive field (8 frames) and stride (4), for an MLP whose
 *                 neurons share weights: its 8 first-layer neurons are 2 filters of 2 frames
 *                 at 4 positions, its 16 second-layer neurons 8 filters at 2 positions.
 *
 * The MLP's weights are in PyTorch's Linear layout [out, in]. See
 * docs/scanning-mlp.md and examples/scanning_mlp.c.
 */
#ifndef MT_MODELS_SCANNING_MLP_H
#define MT_MODELS_SCANNING_MLP_H

#include "mytorch/mytorch.h"

enum { MT_SCAN_FEATURES = 24, MT_SCAN_WINDOW = 8, MT_SCAN_STRIDE = 4 };

/* The MLP's three layers: weight[k] [out, in] and bias[k] [out], f32 (borrowed). */
typedef struct mt_scanning_mlp {
    mt_tensor *weight[3], *bias[3];
} mt_scanning_mlp;

/* The MLP applied to every window of x [N, 24, T]: [N, 4, (T - 8) / 4 + 1],
   window j in column j (the slow way, for checking). */
mt_tensor *mt_scanning_mlp_forward(const mt_scanning_mlp *mlp, mt_tensor *x);

/* The simple scanning CNN holding the MLP's weights. */
mt_module *mt_scanning_simple_cnn(const mt_scanning_mlp *mlp);

/* The distributed scanning CNN holding the MLP's weights: each conv's kernel
   is sliced out of the MLP layer whose shared neurons it stands for
   (conv1[f, c, k] = W1[f, k * 24 + c], conv2[g, f, k] = W2[g, k * 2 + f],
   conv3[h, g, k] = W3[h, k * 8 + g]). The MLP must have that sharing for the
   two to agree (mt_scanning_shared_mlp makes one). */
mt_module *mt_scanning_distributed_cnn(const mt_scanning_mlp *mlp);

/* An MLP with the distributed CNN's weight sharing, from random filters
   (seed): W1[p * 2 + f, t * 24 + c] = conv1[f, c, t - 2p] for t in {2p, 2p + 1}
   and 0 elsewhere, and likewise for the second and third layers. The tensors
   are new (in the current scope). */
mt_status mt_scanning_shared_mlp(uint64_t seed, mt_scanning_mlp *out);

#endif
