/*
 * cli_speech_frames.c - `mytorch train speech-frames`, `mytorch eval
 * speech-frames` and `mytorch predict speech-frames` (docs/speech-frames.md):
 * options in, models/speech_frames/speech_frames_task.c does the work, a summary out.
 */
#include "app/cli_speech_frames.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli_common.h"
#include "models/speech_frames/speech_frames_task.h"
#include "models/speech_data/speech_phones.h"

/* ---------------------------------------------------------------- train */
static const char train_description[] =
    "Frame-level phoneme classification (docs/speech-frames.md). Every 10 ms frame of every\n"
    "utterance of DIR/train-clean-100 is an example: its MFCC row with K frames of context on\n"
    "each side (zeros past the utterance's edges), standardized per coefficient with the\n"
    "training split's mean and std; its label is one of 40 phones ([SIL] + 39 ARPAbet).\n"
    "Model: Linear((2K+1)F, H1)-BatchNorm1d-GELU-Dropout ... Linear(Hn, 40) (BENCH mlp_speech),\n"
    "or --model linear. AdamW on cross-entropy. Writes RUN/metrics.jsonl (one JSON object per\n"
    "epoch), RUN/last.safetensors (every epoch, and every --save-every steps) and\n"
    "RUN/best.safetensors (best dev accuracy). --resume continues a run exactly where it\n"
    "stopped (its settings come from the checkpoint; a larger --epochs extends it). Ctrl-C\n"
    "finishes the step, saves last.safetensors and exits. At the end: dev-clean and test-clean\n"
    "frame accuracy, and the majority-class baseline on both.\n";

int mt_cli_train_speech_frames(int argc, char **argv)
{
    mt_speech_frames_opts o = mt_speech_frames_defaults();
    o.epochs = 0;   /* 0: 10 on a fresh run, the checkpoint's on resume */
    const char *model = "mlp", *hidden = NULL, *schedule = "cosine";
    bool quiet = false, no_test = false, detect_anomaly = false;
    uint64_t save_every = 0, stop_after = 0, max_utts = 0;
    const mt_cli_option options[] = {
        { "data",             MT_CLI_STRING, &o.data_dir,         1, 0,     "DIR",  "corpus root with train-clean-100/, dev-clean/, test-clean/ (required)" },
        { "run",              MT_CLI_STRING, &o.run_dir,          1, 0,     "DIR",  "run folder: checkpoints and metrics (default runs/speech-frames)" },
        { "resume",           MT_CLI_STRING, &o.resume,           1, 0,     "[CKPT]", "continue from CKPT; alone or 'auto': from RUN/last.safetensors when it exists" },
        { "model",            MT_CLI_STRING, &model,              1, 0,     "NAME", "mlp (default) or linear (one Linear layer: the baseline)" },
        { "hidden",           MT_CLI_STRING, &hidden,             1, 0,     "LIST", "hidden widths of the MLP (default 1024,1024,512)" },
        { "context",          MT_CLI_INT,    &o.context,          0, 1000,  "K",    "frames of context on each side (default 16)" },
        { "dropout",          MT_CLI_DOUBLE, &o.dropout,          0, 0.99,  "P",    "dropout after each hidden layer (default 0.2)" },
        { "epochs",           MT_CLI_INT,    &o.epochs,           1, 1e6,   "N",    "passes over the training split (default 10)" },
        { "batch",            MT_CLI_INT,    &o.batch_size,       2, 1e7,   "B",    "frames per batch (default 1024)" },
        { "lr",               MT_CLI_DOUBLE, &o.lr,               1e-12, 10, "LR",  "AdamW learning rate (default 0.001)" },
        { "weight-decay",     MT_CLI_DOUBLE, &o.weight_decay,     0, 10,    "WD",   "AdamW decoupled weight decay (default 0.01)" },
        { "clip-grad-norm",   MT_CLI_DOUBLE, &o.clip_grad_norm,   0, 1e6,   "N",    "clip the gradients' total norm to N before each update (default 0: off)" },
        { "label-smoothing",  MT_CLI_DOUBLE, &o.label_smoothing,  0, 0.99,  "E",    "cross-entropy label smoothing (default 0)" },
        { "schedule",         MT_CLI_STRING, &schedule,           1, 0,     "NAME", "cosine (warm-up, then cosine to lr/100; default), plateau or none" },
        { "warmup",           MT_CLI_DOUBLE, &o.warmup,           0, 1,     "FRAC", "cosine: warm-up steps as a fraction of all steps (default 0.05)" },
        { "plateau-factor",   MT_CLI_DOUBLE, &o.plateau_factor,   1e-6, 0.999999, "F", "plateau: multiply lr by F when dev accuracy stalls (default 0.5)" },
        { "plateau-patience", MT_CLI_INT,    &o.plateau_patience, 0, 1e6,   "N",    "plateau: epochs without a better dev accuracy first (default 1)" },
        { "freq-mask",        MT_CLI_INT,    &o.freq_mask,        0, 1000,  "W",    "masking: zero one band of up to W coefficients per window (default 0: off)" },
        { "time-mask",        MT_CLI_INT,    &o.time_mask,        0, 1000,  "W",    "masking: zero one run of up to W frames per window (default 0: off)" },
        { "seed",             MT_CLI_U64,    &o.seed,             1, 0,     "S",    "seed of the weights, shuffling, masks and dropout (default 0)" },
        { "max-utts",         MT_CLI_U64,    &max_utts,           1, 0,     "N",    "read at most N utterances of each split (quick runs; default all)" },
        { "save-every",       MT_CLI_U64,    &save_every,         1, 0,     "N",    "also save RUN/last.safetensors every N steps (default: epoch ends only)" },
        { "stop-after",       MT_CLI_U64,    &stop_after,         1, 0,     "N",    "stop, saving RUN/last.safetensors, once the global step count reaches N" },
        { "device",           MT_CLI_STRING, &o.device,           1, 0,     "DEV",  "cpu, cuda, cuda:N or cuda-emu (default: MYTORCH_DEVICE, else cuda where usable, else cpu)" },
        { "prefetch",         MT_CLI_INT,    &o.prefetch,         -1, 64,   "N",    "batches the loader's thread prepares ahead (default 0: 2; -1: no thread)" },
        { "no-test",          MT_CLI_FLAG,   &no_test,            1, 0,     NULL,   "do not evaluate on test-clean at the end" },
        { "quiet",            MT_CLI_FLAG,   &quiet,              1, 0,     NULL,   "no progress bar" },
        { "detect-anomaly",   MT_CLI_FLAG,   &detect_anomaly,     1, 0,     NULL,   "name the first op that makes a NaN or infinity (slow: for debugging)" },
        { NULL, 0, NULL, 0, 0, NULL, NULL },
    };
    const mt_cli_command cmd = { "mytorch train speech-frames", "--data DIR [options]", train_description, options, 0, 0, NULL };

    /* A bare --resume (the last word, or followed by another option) means "auto". */
    char **args = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *args);
    if (!args) { fprintf(stderr, "%s: out of memory\n", cmd.path); return MT_CLI_FAIL; }
    static char resume_auto[] = "--resume=auto";
    for (int i = 0; i < argc; i++)
        args[i] = strcmp(argv[i], "--resume") == 0 && (i + 1 == argc || strncmp(argv[i + 1], "--", 2) == 0) ? resume_auto : argv[i];
    int rc = mt_cli_parse(&cmd, argc, args, NULL, NULL);
    free(args);
    if (rc == MT_CLI_HELP) return MT_CLI_OK;
    if (rc != MT_CLI_OK) return rc;
    if (!o.data_dir) return mt_cli_usage_error(&cmd, "--data DIR is required (make a corpus with 'mytorch data speech --out DIR')");
    if (strcmp(model, "mlp") != 0 && strcmp(model, "linear") != 0)
        return mt_cli_usage_error(&cmd, "--model is mlp or linear, got '%s'", model);
    o.linear = strcmp(model, "linear") == 0;
    if (hidden && mt_speech_frames_parse_hidden(hidden, &o) != MT_OK) return mt_cli_usage_error(&cmd, "%s", mt_last_error());
    if (!mt_train_schedule_from_name(schedule, &o.schedule)) return mt_cli_usage_error(&cmd, "--schedule is cosine, plateau or none, got '%s'", schedule);
    mt_device dev;
    if (o.device && mt_device_from_string(o.device, &dev) != MT_OK)
        return mt_cli_usage_error(&cmd, "'%s' is not a device (cpu, cuda, cuda:N, cuda-emu)", o.device);
    o.max_utts = (int64_t)max_utts;
    o.save_every = (int64_t)save_every;
    o.stop_after = (int64_t)stop_after;
    o.skip_test = no_test;
    o.progress = quiet ? NULL : stderr;
    o.detect_anomaly = detect_anomaly;
    o.stop_flag = mt_cli_catch_sigint();
    mt_speech_frames_report r;
    mt_status st = mt_speech_frames_train(&o, &r);
    mt_cli_release_sigint();
    if (st != MT_OK) {
        fprintf(stderr, "mytorch train: %s\n", mt_last_error());   /* the message starts with "speech-frames:" */
        return MT_CLI_FAIL;
    }
    printf("speech-frames: %d epochs, %lld steps (%lld in this session: %.1f s, %.0f samples/s, data wait %.2f s) on %s; "
           "%lld parameters", r.epochs_done, (long long)r.steps, (long long)r.session_steps, r.seconds, r.samples_per_s,
           r.data_wait_s, mt_device_name(r.device), (long long)r.parameters);
    if (r.epochs_done > 0) printf("; best dev accuracy %.2f%% (epoch %d)", 100 * r.best_dev_acc, r.best_epoch);
    putchar('\n');
    if (r.stopped) {
        printf("speech-frames: stopped%s; the state is in %s/last.safetensors; continue with\n"
               "  mytorch train speech-frames --data %s --run %s --resume\n",
               mt_cli_interrupted() ? " by Ctrl-C" : "", o.run_dir, o.data_dir, o.run_dir);
        return mt_cli_interrupted() ? MT_CLI_INTERRUPTED : MT_CLI_OK;
    }
    const char *maj = mt_speech_phone_name(r.majority_class);
    printf("speech-frames: dev-clean   frame accuracy %6.2f%%  loss %.4f  (%lld frames; majority class %s: %.2f%%)\n",
           100 * r.dev_acc, r.dev_loss, (long long)r.dev_frames, maj, 100 * r.majority_dev_acc);
    if (r.has_test)
        printf("speech-frames: test-clean  frame accuracy %6.2f%%  loss %.4f  (%lld frames; majority class %s: %.2f%%)\n",
               100 * r.test_acc, r.test_loss, (long long)r.test_frames, maj, 100 * r.majority_test_acc);
    return MT_CLI_OK;
}

/* ---------------------------------------------------------------- eval and predict */
static const char eval_description[] =
    "Evaluates a checkpoint of a task on one split of its data.\n\n"
    "tasks:\n"
    "  speech-frames  frame accuracy and mean cross-entropy of a `mytorch train speech-frames`\n"
    "                 checkpoint (the model, its context and input statistics come from the\n"
    "                 checkpoint), and with --per-phone each phone's accuracy and its most\n"
    "                 frequent confusion.\n";

static const char predict_description[] =
    "Writes a checkpoint's predictions for one split as a CSV file.\n\n"
    "tasks:\n"
    "  speech-frames  one row per frame, 'id,label': id is the frame's global index (utterances\n"
    "                 in sorted file-name order, frames in time order, from 0), label the\n"
    "                 predicted phone's name ([SIL], AA, ...), as the course's Kaggle\n"
    "                 submissions; the split needs no labels.\n";

/* The shared part of eval and predict; out_csv is NULL for eval. */
static int eval_or_predict(int argc, char **argv, bool predict)
{
    mt_speech_frames_eval_opts eo = { .split = predict ? "test-clean" : "dev-clean" };
    const char *out = NULL;
    int batch = 0;
    int64_t max_utts_i = 0;
    uint64_t max_utts = 0;
    bool all_utts = false, per_phone = false;
    const mt_cli_option options[] = {
        { "checkpoint", MT_CLI_STRING, &eo.checkpoint, 1, 0, "CKPT", "a checkpoint (RUN/best.safetensors, RUN/last.safetensors) (required)" },
        { "data",       MT_CLI_STRING, &eo.data_dir,   1, 0, "DIR",  "corpus root (required)" },
        { "split",      MT_CLI_STRING, &eo.split,      1, 0, "NAME", predict ? "split folder under DIR (default test-clean)" : "split folder under DIR: dev-clean (default) or test-clean" },
        { "out",        MT_CLI_STRING, &out,           1, 0, "FILE", "the CSV file to write (required)" },
        { "batch",      MT_CLI_INT,    &batch,         1, 1e7, "B",  "frames per batch (default: the checkpoint's)" },
        { "max-utts",   MT_CLI_U64,    &max_utts,      1, 0, "N",    "read at most N utterances (default: as the run did)" },
        { "all-utts",   MT_CLI_FLAG,   &all_utts,      1, 0, NULL,   "read every utterance even if the run used --max-utts" },
        { "per-phone",  MT_CLI_FLAG,   &per_phone,     1, 0, NULL,   "also print each phone's accuracy and most frequent confusion" },
        { "device",     MT_CLI_STRING, &eo.device,     1, 0, "DEV",  "cpu, cuda, cuda:N or cuda-emu (default: the default device)" },
        { NULL, 0, NULL, 0, 0, NULL, NULL },
    };
    /* eval has no --out; predict has no --per-phone */
    mt_cli_option opts[sizeof options / sizeof options[0]];
    int n = 0;
    for (const mt_cli_option *p = options; p->name; p++)
        if (!(predict ? strcmp(p->name, "per-phone") == 0 : strcmp(p->name, "out") == 0)) opts[n++] = *p;
    opts[n] = options[sizeof options / sizeof options[0] - 1];
    const mt_cli_command cmd = { predict ? "mytorch predict" : "mytorch eval",
                                 predict ? "<task> --checkpoint CKPT --data DIR --out FILE.csv [options]"
                                         : "<task> --checkpoint CKPT --data DIR [options]",
                                 predict ? predict_description : eval_description, opts, 1, 1, "task (speech-frames)" };
    const char *pos[1];
    int rc = mt_cli_parse(&cmd, argc, argv, pos, NULL);
    if (rc == MT_CLI_HELP) return MT_CLI_OK;
    if (rc != MT_CLI_OK) return rc;
    if (strcmp(pos[0], "speech-frames") != 0) return mt_cli_usage_error(&cmd, "unknown task '%s' (tasks: speech-frames)", pos[0]);
    if (!eo.checkpoint) return mt_cli_usage_error(&cmd, "--checkpoint CKPT is required");
    if (!eo.data_dir) return mt_cli_usage_error(&cmd, "--data DIR is required");
    if (predict && !out) return mt_cli_usage_error(&cmd, "--out FILE.csv is required");
    max_utts_i = all_utts ? -1 : (int64_t)max_utts;
    eo.max_utts = max_utts_i;
    eo.batch_size = batch;
    mt_device dev;
    if (eo.device && mt_device_from_string(eo.device, &dev) != MT_OK)
        return mt_cli_usage_error(&cmd, "'%s' is not a device (cpu, cuda, cuda:N, cuda-emu)", eo.device);

    if (predict) {
        int64_t rows = 0;
        if (mt_speech_frames_predict(&eo, out, &rows) != MT_OK) {
            fprintf(stderr, "%s: %s\n", cmd.path, mt_last_error());
            return MT_CLI_FAIL;
        }
        printf("speech-frames: wrote %lld predictions of %s/%s to %s\n", (long long)rows, eo.data_dir, eo.split, out);
        return MT_CLI_OK;
    }
    mt_speech_frames_eval_report r;
    if (mt_speech_frames_eval(&eo, &r) != MT_OK) {
        fprintf(stderr, "%s: %s\n", cmd.path, mt_last_error());
        return MT_CLI_FAIL;
    }
    printf("speech-frames: %s frame accuracy %.2f%%  loss %.4f  (%lld frames, %s)\n", eo.split, 100 * r.accuracy, r.loss,
           (long long)r.frames, eo.checkpoint);
    if (per_phone) mt_speech_frames_print_confusion(&r, stdout);
    mt_speech_frames_eval_report_free(&r);
    return MT_CLI_OK;
}

int mt_cli_eval(int argc, char **argv) { return eval_or_predict(argc, argv, false); }
int mt_cli_predict(int argc, char **argv) { return eval_or_predict(argc, argv, true); }
