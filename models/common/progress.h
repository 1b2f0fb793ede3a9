/*
 * progress.h - the training progress bar, one implementation for every
 * task:
 *
 *   epoch 1/2 [#####...............] 132/447 loss 1.4727 acc  59.5%    6647 samples/s ETA 1m57s
 *
 * redrawn in place on a terminal (at most every 0.1 s), one line every 10 s
 * otherwise (a log file), and the time left written as 45s, 3m07s or 2h05m.
 */
#ifndef MT_MODELS_COMMON_PROGRESS_H
#define MT_MODELS_COMMON_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct mt_progress {
    FILE *f;                 /* NULL: silent */
    bool tty;
    bool open;               /* a bar is drawn on the current line (tty) */
    double last_draw;        /* mt_clock_seconds() of the last draw */
} mt_progress;

enum { MT_PROGRESS_MAX_METRICS = 8 };

/* What one bar shows. */
typedef struct mt_progress_line {
    int64_t epoch, epochs;            /* 1-based */
    int64_t batch, batches;           /* batches done in the epoch, of */
    double loss;
    int n_metrics;
    const char *names[MT_PROGRESS_MAX_METRICS];
    double values[MT_PROGRESS_MAX_METRICS];
    bool percent[MT_PROGRESS_MAX_METRICS];
    double samples_per_s, eta_s;      /* eta < 0 or not finite: "--" */
} mt_progress_line;

void mt_progress_init(mt_progress *p, FILE *f);
/* Draws the bar when one is due (or always with force). */
void mt_progress_draw(mt_progress *p, const mt_progress_line *line, bool force);
/* Before a line of its own (an epoch's summary): wipes the bar on a terminal. */
void mt_progress_clear(mt_progress *p);
/* Keeps the bar as the last line (a run that stops mid-epoch): a newline on a terminal. */
void mt_progress_end(mt_progress *p);
/* "45s", "3m07s", "2h05m"; "--" for a negative or unknown time. */
void mt_format_eta(double seconds, char *buf, size_t size);

#endif
