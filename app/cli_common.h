/*
 * cli_common.h - shared pieces of the `mytorch` command line: a small option
 * parser (--name VALUE or --name=VALUE) with generated help, and the
 * subcommands' entry points.
 *
 * Exit codes: 0 success, 1 a run that failed (the message of mt_last_error()
 * is printed), 2 a usage error (unknown command or option, bad value).
 */
#ifndef MT_MODELS_CLI_COMMON_H
#define MT_MODELS_CLI_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

enum { MT_CLI_OK = 0, MT_CLI_FAIL = 1, MT_CLI_USAGE = 2, MT_CLI_HELP = -1 };

typedef enum mt_cli_kind { MT_CLI_INT, MT_CLI_U64, MT_CLI_DOUBLE, MT_CLI_STRING, MT_CLI_FLAG } mt_cli_kind;

typedef struct mt_cli_option {
    const char *name;      /* "epochs" for --epochs */
    mt_cli_kind kind;
    void *dest;            /* int *, uint64_t *, double *, const char **, bool * */
    double min, max;       /* inclusive range for numbers (ignored when min > max) */
    const char *metavar;   /* "N" */
    const char *help;
} mt_cli_option;

typedef struct mt_cli_command {
    const char *path;          /* "mytorch train" */
    const char *usage;         /* "<task> [options]" */
    const char *description;   /* a paragraph, printed under usage */
    const mt_cli_option *options;   /* ends with name == NULL */
    int min_positional, max_positional;
    const char *positional_name;    /* "task", for messages */
} mt_cli_command;

/* Parses argv[0..argc) (the words after the command's own name) into the
   options' destinations and positionals[]. Returns MT_CLI_OK, MT_CLI_HELP
   (help was printed on stdout) or MT_CLI_USAGE (a message was printed on
   stderr). */
int mt_cli_parse(const mt_cli_command *cmd, int argc, char **argv, const char **positionals, int *n_positional);
void mt_cli_print_help(const mt_cli_command *cmd);
/* Prints "<path>: <message>" and a pointer to --help on stderr; returns MT_CLI_USAGE. */
int mt_cli_usage_error(const mt_cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ctrl-C during a training command (every `mytorch train <task>`): from
   catch until release, SIGINT sets the returned flag, which the trainer
   watches (mt_train_opts.stop_flag: it finishes the step, saves
   last.safetensors and returns stopped); a second Ctrl-C ends the program
   at once. interrupted: whether it came. Exit with MT_CLI_INTERRUPTED then. */
enum { MT_CLI_INTERRUPTED = 130 };   /* the shell's code for a program ended by SIGINT */
volatile sig_atomic_t *mt_cli_catch_sigint(void);
void mt_cli_release_sigint(void);
bool mt_cli_interrupted(void);

/* Subcommands: argv[0] is the first word after the subcommand's name. */
int mt_cli_train(int argc, char **argv);
/* `mytorch bench`, implemented in app/cli_bench.c: bench/ sits above models/,
   and the program's entry point (app/main.c) is the one place joining them. */
int mt_cli_bench(int argc, char **argv);

#endif
