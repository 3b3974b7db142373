/* Terminal and plain-text progress reports of a training run (progress.h). ETA is the
 * remaining steps at the average pace since this process started. Not for: metrics files. */
#include "progress.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, FILE *out, int64_t total, int64_t first_step, double now_s) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->on_terminal = isatty(fileno(out));
    p->plain_interval_s = 30;
    p->total = total, p->first_step = p->step = first_step;
    p->start_s = p->last_print_s = now_s;
}

static void remember_loss(progress *p, const char *task, double loss) {
    size_t i = 0;
    while (i < p->n_tasks && strcmp(p->tasks[i], task)) i++;
    if (i == p->n_tasks) {
        if (p->n_tasks == PROGRESS_MAX_TASKS) return;
        snprintf(p->tasks[i], sizeof p->tasks[i], "%s", task);
        p->n_tasks++;
    }
    p->losses[i] = loss;
}

/* h:mm:ss of a non-negative number of seconds. */
static void format_duration(double s, char *buf, size_t size) {
    long t = (long)(s + 0.5);
    snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void progress_format(const progress *p, double now_s, char *buf, size_t size) {
    size_t len = 0;
#define APPEND(...) len += (size_t)snprintf(buf + len, len < size ? size - len : 0, __VA_ARGS__)
    double percent = p->total > 0 ? 100.0 * (double)p->step / (double)p->total : 0;
    APPEND("%lld/%lld %.1f%%", (long long)p->step, (long long)p->total, percent);
    for (size_t i = 0; i < p->n_tasks; i++)
        APPEND("%s%s %.4g", i ? " " : " | ", p->tasks[i], p->losses[i]);
    if (p->rate > 0) APPEND(" | %.1f samples/s", p->rate);
    int64_t done = p->step - p->first_step;
    if (done > 0 && now_s > p->start_s && p->step < p->total) {
        char eta[32];
        format_duration((now_s - p->start_s) / (double)done * (double)(p->total - p->step), eta,
                        sizeof eta);
        APPEND(" | ETA %s", eta);
    }
#undef APPEND
}

static void print(progress *p, double now_s) {
    char text[512];
    progress_format(p, now_s, text, sizeof text);
    if (!p->on_terminal) {
        fprintf(p->out, "%s\n", text);
        return;
    }
    enum { BAR = 24 };
    int filled = p->total > 0 ? (int)(BAR * (double)p->step / (double)p->total) : 0;
    char bar[BAR + 1];
    for (int i = 0; i < BAR; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR] = '\0';
    fprintf(p->out, "\r[%s] %s\033[K", bar, text);
    fflush(p->out);
}

void progress_update(progress *p, int64_t step, const char *task, double loss, double samples_per_s,
                     double now_s) {
    p->step = step;
    if (task) remember_loss(p, task, loss);
    if (isfinite(samples_per_s)) p->rate = samples_per_s;
    double interval = p->on_terminal ? 0.1 : p->plain_interval_s;
    if (now_s - p->last_print_s < interval) return;
    p->last_print_s = now_s;
    print(p, now_s);
}

void progress_finish(progress *p, double now_s) {
    print(p, now_s);
    if (p->on_terminal) fputc('\n', p->out);
    fflush(p->out);
}
