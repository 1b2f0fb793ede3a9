/*
 * cli_common.c - option parsing and help for the `mytorch` command line.
 */
#include "app/cli_common.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mt_cli_usage_error(const mt_cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd->path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", cmd->path);
    return MT_CLI_USAGE;
}

void mt_cli_print_help(const mt_cli_command *cmd)
{
    size_t dl = strlen(cmd->description);
    printf("usage: %s %s\n\n%s%s", cmd->path, cmd->usage, cmd->description,
           dl && cmd->description[dl - 1] == '\n' ? "" : "\n");
    printf("\noptions:\n");
    for (const mt_cli_option *o = cmd->options; o && o->name; o++) {
        char left[64];
        if (o->kind == MT_CLI_FLAG) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        printf("  %-22s %s\n", left, o->help);
    }
    printf("  %-22s %s\n", "-h, --help", "show this help and exit");
}

static const mt_cli_option *find_option(const mt_cli_option *opts, const char *name, size_t len)
{
    for (const mt_cli_option *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

static int set_value(const mt_cli_command *cmd, const mt_cli_option *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    bool ranged = o->min <= o->max;
    switch (o->kind) {
    case MT_CLI_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || (ranged && (x < o->min || x > o->max)))
            return ranged ? mt_cli_usage_error(cmd, "--%s expects an integer in [%.0f, %.0f], got '%s'", o->name, o->min, o->max, v)
                          : mt_cli_usage_error(cmd, "--%s expects an integer, got '%s'", o->name, v);
        *(int *)o->dest = (int)x;
        return MT_CLI_OK;
    }
    case MT_CLI_U64: {
        if (*v == '-') return mt_cli_usage_error(cmd, "--%s expects a non-negative integer, got '%s'", o->name, v);
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end)
            return mt_cli_usage_error(cmd, "--%s expects a non-negative integer, got '%s'", o->name, v);
        *(uint64_t *)o->dest = (uint64_t)x;
        return MT_CLI_OK;
    }
    case MT_CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) || (ranged && (x < o->min || x > o->max)))
            return ranged ? mt_cli_usage_error(cmd, "--%s expects a number in [%g, %g], got '%s'", o->name, o->min, o->max, v)
                          : mt_cli_usage_error(cmd, "--%s expects a number, got '%s'", o->name, v);
        *(double *)o->dest = x;
        return MT_CLI_OK;
    }
    case MT_CLI_STRING:
        *(const char **)o->dest = v;
        return MT_CLI_OK;
    case MT_CLI_FLAG:
        *(bool *)o->dest = true;
        return MT_CLI_OK;
    }
    return MT_CLI_USAGE;
}

int mt_cli_parse(const mt_cli_command *cmd, int argc, char **argv, const char **positionals, int *n_positional)
{
    int np = 0;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            mt_cli_print_help(cmd);
            return MT_CLI_HELP;
        }
        if (!only_positional && strcmp(a, "--") == 0) { only_positional = true; continue; }
        if (!only_positional && a[0] == '-' && a[1] != '\0') {
            if (a[1] != '-') return mt_cli_usage_error(cmd, "unknown option '%s' (options are written --name)", a);
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const mt_cli_option *o = find_option(cmd->options, name, len);
            if (!o) return mt_cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
            const char *value;
            if (o->kind == MT_CLI_FLAG) {
                if (eq) return mt_cli_usage_error(cmd, "option '--%s' takes no value", o->name);
                value = "1";
            } else if (eq) {
                value = eq + 1;
            } else {
                if (i + 1 >= argc) return mt_cli_usage_error(cmd, "option '--%s' needs a value (%s)", o->name, o->metavar ? o->metavar : "VALUE");
                value = argv[++i];
            }
            int rc = set_value(cmd, o, value);
            if (rc != MT_CLI_OK) return rc;
            continue;
        }
        if (np >= cmd->max_positional)
            return mt_cli_usage_error(cmd, "unexpected argument '%s'", a);
        positionals[np++] = a;
    }
    if (np < cmd->min_positional)
        return mt_cli_usage_error(cmd, "missing %s", cmd->positional_name ? cmd->positional_name : "argument");
    if (n_positional) *n_positional = np;
    return MT_CLI_OK;
}

/* ---------------------------------------------------------------- Ctrl-C during training */
/* Set by SIGINT: the trainer finishes its step, saves last.safetensors and
   returns. SA_RESETHAND makes a second Ctrl-C end the program at once. */
static volatile sig_atomic_t interrupted;
static struct sigaction previous_sigint;
static bool sigint_caught;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

volatile sig_atomic_t *mt_cli_catch_sigint(void)
{
    interrupted = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigint_caught = sigaction(SIGINT, &sa, &previous_sigint) == 0;
    return &interrupted;
}

void mt_cli_release_sigint(void)
{
    if (sigint_caught) sigaction(SIGINT, &previous_sigint, NULL);
    sigint_caught = false;
}

bool mt_cli_interrupted(void) { return interrupted != 0; }
