/*
 * speech_frames_model.c - the frame classifier (speech_frames_model.h).
 */
#include "models/speech_frames/speech_frames_model.h"

#include <stdlib.h>

mt_module *mt_speech_frames_mlp(const mt_speech_mlp_opts *o)
{
    if (!o || o->inputs < 1 || o->classes < 1 || o->n_hidden < 0 || (o->n_hidden > 0 && !o->hidden && !o->linear)) {
        mt_set_error(MT_ERR_ARGUMENT, "speech_frames_mlp: need inputs >= 1, classes >= 1 and the hidden widths");
        return NULL;
    }
    const int n_hidden = o->linear ? 0 : o->n_hidden;
    const int n_layers = 4 * n_hidden + 1;
    mt_module **layers = calloc((size_t)n_layers, sizeof *layers);
    if (!layers) { mt_set_error(MT_ERR_MEMORY, "speech_frames_mlp: out of memory"); return NULL; }
    int64_t in = o->inputs;
    int k = 0;
    for (int i = 0; i < n_hidden; i++) {   /* in order: the weights are drawn layer by layer */
        layers[k++] = mt_nn_linear(in, o->hidden[i], true);
        layers[k++] = mt_nn_batch_norm1d(o->hidden[i], MT_BN_DEFAULTS);
        layers[k++] = mt_nn_gelu(MT_GELU_ERF);
        layers[k++] = mt_nn_dropout_gen(o->dropout, o->dropout_gen);
        in = o->hidden[i];
    }
    layers[k++] = mt_nn_linear(in, o->classes, true);
    mt_module *net = mt_nn_sequential_array(k, layers);   /* frees them all when one is NULL */
    free(layers);
    if (net) mt_module_train(net, true);
    return net;
}
