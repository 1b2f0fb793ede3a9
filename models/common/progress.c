/*
 * progress.c - the progress bar (progress.h).
 */
#include "models/common/progress.h"

#include <math.h>
#include <unistd.h>

#include "mytorch/mytorch.h"

void mt_progress_init(mt_progress *p, FILE *f)
{
    *p = (mt_progress){ .f = f, .tty = f && isatty(fileno(f)), .last_draw = -1e300 };
}

void mt_format_eta(double seconds, char *buf, size_t size)
{
    if (!isfinite(seconds) || seconds < 0) snprintf(buf, size, "--");
    else if (seconds < 60) snprintf(buf, size, "%.0fs", seconds);
    else if (seconds < 3600) snprintf(buf, size, "%dm%02ds", (int)(seconds / 60), (int)fmod(seconds, 60));
    else snprintf(buf, size, "%dh%02dm", (int)(seconds / 3600), (int)fmod(seconds / 60, 60));
}

void mt_progress_draw(mt_progress *p, const mt_progress_line *l, bool force)
{
    if (!p->f) return;
    const double now = mt_clock_seconds();
    if (!force && now - p->last_draw < (p->tty ? 0.1 : 10.0)) return;
    p->last_draw = now;
    enum { WIDTH = 20 };
    char bar[WIDTH + 1], eta[32];
    int filled = l->batches > 0 ? (int)((double)WIDTH * (double)l->batch / (double)l->batches) : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    mt_format_eta(l->eta_s, eta, sizeof eta);
    fprintf(p->f, "%sepoch %lld/%lld [%s] %lld/%lld loss %.4f", p->tty ? "\r" : "", (long long)l->epoch,
            (long long)l->epochs, bar, (long long)l->batch, (long long)l->batches, l->loss);
    for (int i = 0; i < l->n_metrics && i < MT_PROGRESS_MAX_METRICS; i++) {
        if (l->percent[i]) fprintf(p->f, " %s %5.1f%%", l->names[i], 100 * l->values[i]);
        else fprintf(p->f, " %s %.4f", l->names[i], l->values[i]);
    }
    fprintf(p->f, " %7.0f samples/s ETA %s%s", l->samples_per_s, eta, p->tty ? "\033[K" : "\n");
    fflush(p->f);
    p->open = p->tty;
}

void mt_progress_clear(mt_progress *p)
{
    if (!p->f || !p->open) return;
    fputs("\r\033[K", p->f);
    p->open = false;
}

void mt_progress_end(mt_progress *p)
{
    if (!p->f || !p->open) return;
    fputc('\n', p->f);
    p->open = false;
}
