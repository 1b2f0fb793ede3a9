/*
 * main.c - the `mytorch` command line:
 *
 *   mytorch train <task> [options]    train a model (tasks: spirals, speech-frames)
 *   mytorch eval <task> [options]     evaluate a checkpoint (tasks: speech-frames)
 *   mytorch predict <task> [options]  write a checkpoint's predictions as CSV (tasks: speech-frames)
 *   mytorch bench <name> [options]    run a standard benchmark (BENCH.md)
 *   mytorch data <dataset> [options]  generate an offline dataset (datasets: speech)
 *
 * Exit codes: 0 success, 1 failure (the library's message is printed),
 * 2 usage error (unknown command or option, bad value).
 */
#include <stdio.h>
#include <string.h>

#include "mytorch/mytorch.h"
#include "app/cli_common.h"
#include "app/cli_speech_frames.h"

int mt_cli_data(int argc, char **argv);   /* app/cli_data.c */

#ifndef MYTORCH_VERSION_STRING
#define MYTORCH_VERSION_STRING "0.1.0"
#endif

static void print_help(FILE *f)
{
    fprintf(f,
        "mytorch - a deep-learning engine in C\n"
        "\n"
        "usage: mytorch <command> [options]\n"
        "\n"
        "commands:\n"
        "  train <task>    train a model and report its accuracy (tasks: spirals, speech-frames)\n"
        "  eval <task>     evaluate a checkpoint on a split (tasks: speech-frames)\n"
        "  predict <task>  write a checkpoint's predictions as a CSV file (tasks: speech-frames)\n"
        "  bench <name>    run a standard benchmark and print JSON (gemm, mlp_speech, mlp_speech_data)\n"
        "  data <dataset>  generate an offline dataset (speech: MFCC + phone labels, docs/speech-data.md)\n"
        "\n"
        "options:\n"
        "  -h, --help      show this help and exit ('mytorch <command> --help' for a command)\n"
        "  --version       print the version and exit\n"
        "\n"
        "examples:\n"
        "  mytorch train spirals --epochs 200\n"
        "  mytorch data speech --size tiny --out /tmp/speech && mytorch train speech-frames --data /tmp/speech --run /tmp/run\n"
        "  mytorch bench gemm --iters 20 --out gemm.json\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return MT_CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        print_help(stdout);
        return MT_CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("mytorch %s\n", MYTORCH_VERSION_STRING);
        return MT_CLI_OK;
    }
    if (strcmp(cmd, "train") == 0) return mt_cli_train(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return mt_cli_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "predict") == 0) return mt_cli_predict(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0) return mt_cli_bench(argc - 2, argv + 2);
    if (strcmp(cmd, "data") == 0) return mt_cli_data(argc - 2, argv + 2);
    if (cmd[0] == '-')
        fprintf(stderr, "mytorch: unknown option '%s'\n", cmd);
    else
        fprintf(stderr, "mytorch: unknown command '%s' (commands: train, eval, predict, bench, data)\n", cmd);
    fprintf(stderr, "Try 'mytorch --help' for more information.\n");
    return MT_CLI_USAGE;
}
