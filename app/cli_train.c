/*
 * cli_train.c - `mytorch train <task>`: trains a model and reports how well
 * it does. Tasks: spirals (models/spirals/spirals_task.c), speech-frames
 * (app/cli_speech_frames.c, models/speech_frames/speech_frames_task.c).
 */
#include "app/cli_common.h"

#include <stdio.h>
#include <string.h>

#include "app/cli_speech_frames.h"
#include "models/spirals/spirals_task.h"

static const char description[] =
    "Trains a model on a task's data and reports its accuracy.\n\n"
    "tasks:\n"
    "  spirals   the two-spirals problem: 1000 points on two interleaved arms; an MLP\n"
    "            Linear(2,H)-GELU-Linear(H,H)-GELU-Linear(H,2) trained with AdamW and\n"
    "            cross-entropy in minibatches of 64; accuracy on the training set and\n"
    "            on a held-out set drawn with seed S+1.\n"
    "  speech-frames  frame-level phoneme classification on an MFCC corpus (mytorch data\n"
    "            speech): an MLP over context windows of frames; its options:\n"
    "            'mytorch train speech-frames --help' (docs/speech-frames.md).\n";

int mt_cli_train(int argc, char **argv)
{
    mt_spirals_opts so = { .epochs = 200, .seed = 0, .hidden = 64, .lr = 1e-2, .batch_size = 64 };
    const char *device = NULL;
    bool quiet = false;
    uint64_t save_every = 0, stop_after = 0;
    const mt_cli_option options[] = {
        { "epochs", MT_CLI_INT,    &so.epochs,     1, 1e7, "N",  "passes over the training set (default 200)" },
        { "seed",   MT_CLI_U64,    &so.seed,       1, 0,   "S",  "seed of the data, the initial weights and the shuffling (default 0)" },
        { "hidden", MT_CLI_INT,    &so.hidden,     1, 1e5, "H",  "width of the hidden layers (default 64)" },
        { "lr",     MT_CLI_DOUBLE, &so.lr,         1e-12, 10, "LR", "AdamW learning rate (default 0.01)" },
        { "batch",  MT_CLI_INT,    &so.batch_size, 1, 1e7, "B",  "minibatch size (default 64)" },
        { "device", MT_CLI_STRING, &device,        1, 0,   "DEV", "device: cpu, cuda, cuda:N or cuda-emu (default: MYTORCH_DEVICE, else cuda where a GPU is usable, else cpu)" },
        { "run",    MT_CLI_STRING, &so.run_dir,    1, 0,   "DIR", "run folder: metrics.jsonl, last/best checkpoints (default: none, nothing written)" },
        { "resume", MT_CLI_STRING, &so.resume,     1, 0,   "CKPT", "continue from CKPT, or 'auto': from RUN/last.safetensors when it exists" },
        { "save-every", MT_CLI_U64, &save_every,   1, 0,   "N",  "also save RUN/last.safetensors every N steps" },
        { "stop-after", MT_CLI_U64, &stop_after,   1, 0,   "N",  "stop, saving RUN/last.safetensors, once the step count reaches N" },
        { "quiet",  MT_CLI_FLAG,   &quiet,         1, 0,   NULL, "no progress bar" },
        { NULL, 0, NULL, 0, 0, NULL, NULL },
    };
    const mt_cli_command cmd = { "mytorch train", "<task> [options]", description, options, 1, 1, "task (spirals, speech-frames)" };
    if (argc > 0 && strcmp(argv[0], "speech-frames") == 0) return mt_cli_train_speech_frames(argc - 1, argv + 1);
    const char *pos[1];
    int n_pos = 0;
    int rc = mt_cli_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc == MT_CLI_HELP) return MT_CLI_OK;
    if (rc != MT_CLI_OK) return rc;
    if (strcmp(pos[0], "spirals") != 0)
        return mt_cli_usage_error(&cmd, "unknown task '%s' (tasks: spirals, speech-frames)", pos[0]);
    mt_device dev;
    if (device && mt_device_from_string(device, &dev) != MT_OK)
        return mt_cli_usage_error(&cmd, "'%s' is not a device (cpu, cuda, cuda:N, cuda-emu)", device);

    so.progress = quiet ? NULL : stderr;
    so.device = device;
    so.save_every = (int64_t)save_every;
    so.stop_after = (int64_t)stop_after;
    so.stop_flag = mt_cli_catch_sigint();
    mt_spirals_report r;
    mt_status st = mt_spirals_train(&so, &r);
    mt_cli_release_sigint();
    if (st != MT_OK) {
        fprintf(stderr, "mytorch train spirals: %s\n", mt_last_error());
        return MT_CLI_FAIL;
    }
    if (r.stopped) {
        printf("spirals: stopped after %lld steps%s%s%s\n", (long long)r.steps, mt_cli_interrupted() ? " by Ctrl-C" : "",
               so.run_dir ? "; continue with --resume, the state is in " : "", so.run_dir ? so.run_dir : "");
        return mt_cli_interrupted() ? MT_CLI_INTERRUPTED : MT_CLI_OK;
    }
    char where[32];
    if (r.device.type == MT_DEVICE_CUDA) snprintf(where, sizeof where, "cuda:%d", r.device.index);
    else snprintf(where, sizeof where, "%s", mt_device_name(r.device));
    printf("spirals: train accuracy %.2f%%, held-out accuracy %.2f%% (seed %llu), final loss %.4f, "
           "%d epochs, %lld steps, %lld parameters, %.2f s on %s\n",
           100 * r.train_accuracy, 100 * r.test_accuracy, (unsigned long long)(so.seed + 1), r.final_loss,
           r.epochs, (long long)r.steps, (long long)r.parameters, r.seconds, where);
    return MT_CLI_OK;
}
