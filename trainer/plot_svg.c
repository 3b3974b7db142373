/* SVG rendering of training metrics: series per task (loss) and per evaluation metric, each
 * panel with linear axes on "nice" tick steps and a legend. Not for: reading JSON (that is
 * metrics_log.c) or the command line (cmd_plot.c). */
#include "plot_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_log.h"

enum {
    WIDTH = 900,
    PANEL_HEIGHT = 320,
    MARGIN_LEFT = 70,
    MARGIN_RIGHT = 190,
    MARGIN_TOP = 40,
    MARGIN_BOTTOM = 45
};

static const char *const COLOURS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

typedef struct series {
    char *name;
    double *x, *y;
    size_t n, cap;
} series;

typedef struct series_set {
    series *items;
    size_t n, cap;
} series_set;

static series *find_or_add(series_set *set, const char *name) {
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->items[i].name, name)) return &set->items[i];
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 8;
        series *grown = realloc(set->items, cap * sizeof *grown);
        if (!grown) return NULL;
        set->items = grown, set->cap = cap;
    }
    series *s = &set->items[set->n];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name))) return NULL;
    set->n++;
    return s;
}

static int add_point(series_set *set, const char *name, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return 0;
    series *s = find_or_add(set, name);
    if (!s) return -1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (nx) s->x = nx;
        double *ny = nx ? realloc(s->y, cap * sizeof *ny) : NULL;
        if (!ny) return -1;
        s->y = ny, s->cap = cap;
    }
    s->x[s->n] = x, s->y[s->n] = y, s->n++;
    return 0;
}

static void free_set(series_set *set) {
    for (size_t i = 0; i < set->n; i++)
        free(set->items[i].name), free(set->items[i].x), free(set->items[i].y);
    free(set->items);
}

/* A tick step of 1, 2 or 5 × 10^k giving about 5 ticks over range. */
static double nice_step(double range) {
    double raw = range / 5, power = pow(10, floor(log10(raw))), f = raw / power;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

typedef struct axis {
    double lo, hi, step;
} axis;

static axis make_axis(double lo, double hi) {
    if (!(hi > lo)) lo -= 0.5, hi += 0.5;
    axis a = {.step = nice_step(hi - lo)};
    a.lo = floor(lo / a.step) * a.step, a.hi = ceil(hi / a.step) * a.step;
    return a;
}

/* Intervals between ticks, at most 20 (guards against a degenerate step). */
static int tick_count(const axis *a) {
    double n = round((a->hi - a->lo) / a->step);
    return n >= 0 && n <= 20 ? (int)n : 0;
}

static void bounds(const series_set *set, double *x_lo, double *x_hi, double *y_lo, double *y_hi) {
    *x_lo = *y_lo = INFINITY, *x_hi = *y_hi = -INFINITY;
    for (size_t i = 0; i < set->n; i++)
        for (size_t k = 0; k < set->items[i].n; k++) {
            *x_lo = fmin(*x_lo, set->items[i].x[k]), *x_hi = fmax(*x_hi, set->items[i].x[k]);
            *y_lo = fmin(*y_lo, set->items[i].y[k]), *y_hi = fmax(*y_hi, set->items[i].y[k]);
        }
}

/* Writes s with XML's five special characters escaped. */
static void write_escaped(FILE *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
            case '<':
                fputs("&lt;", out);
                break;
            case '>':
                fputs("&gt;", out);
                break;
            case '&':
                fputs("&amp;", out);
                break;
            case '"':
                fputs("&quot;", out);
                break;
            case '\'':
                fputs("&apos;", out);
                break;
            default:
                fputc(*s, out);
        }
    }
}

typedef struct panel {
    double top; /* of the plotting area, in SVG units */
    axis x, y;
} panel;

static double px(const panel *p, double x) {
    return MARGIN_LEFT + (x - p->x.lo) / (p->x.hi - p->x.lo) * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT);
}

static double py(const panel *p, double y) {
    double h = PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    return p->top + h - (y - p->y.lo) / (p->y.hi - p->y.lo) * h;
}

static void draw_axes(FILE *out, const panel *p, const char *title, const char *y_label) {
    double left = MARGIN_LEFT, right = WIDTH - MARGIN_RIGHT;
    double bottom = p->top + PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">", MARGIN_LEFT,
            p->top - 14);
    write_escaped(out, title);
    fprintf(out,
            "</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"none\" stroke=\"#333\"/>\n",
            left, p->top, right - left, bottom - p->top);
    for (int i = 0, n = tick_count(&p->x); i <= n; i++) {
        double t = p->x.lo + i * p->x.step;
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n",
                px(p, t), p->top, px(p, t), bottom, px(p, t), bottom + 15, t);
    }
    for (int i = 0, n = tick_count(&p->y); i <= n; i++) {
        double t = p->y.lo + i * p->y.step;
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.4g</text>\n",
                left, py(p, t), right, py(p, t), left - 6, py(p, t) + 4, t);
    }
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">step</text>\n",
            (left + right) / 2, bottom + 34);
    fprintf(out,
            "<text x=\"16\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 16 %.1f)\">%s</text>\n",
            (p->top + bottom) / 2, (p->top + bottom) / 2, y_label);
}

static void draw_series(FILE *out, const panel *p, const series_set *set) {
    for (size_t i = 0; i < set->n; i++) {
        const series *s = &set->items[i];
        const char *colour = COLOURS[i % (sizeof COLOURS / sizeof COLOURS[0])];
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                colour);
        for (size_t k = 0; k < s->n; k++)
            fprintf(out, "%s%.1f,%.1f", k ? " " : "", px(p, s->x[k]), py(p, s->y[k]));
        fputs("\"/>\n", out);
        double ly = p->top + 14 + 18 * (double)i;
        fprintf(out,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"3\"/><text x=\"%d\" y=\"%.1f\" font-size=\"12\">",
                WIDTH - MARGIN_RIGHT + 12, ly, WIDTH - MARGIN_RIGHT + 32, ly, colour,
                WIDTH - MARGIN_RIGHT + 38, ly + 4);
        write_escaped(out, s->name);
        fputs("</text>\n", out);
    }
}

static void draw_panel(FILE *out, const series_set *set, double top, const char *title,
                       const char *y_label) {
    double x_lo, x_hi, y_lo, y_hi;
    bounds(set, &x_lo, &x_hi, &y_lo, &y_hi);
    panel p = {.top = top + MARGIN_TOP, .x = make_axis(x_lo, x_hi), .y = make_axis(y_lo, y_hi)};
    draw_axes(out, &p, title, y_label);
    draw_series(out, &p, set);
}

/* Reads every record of in into the loss and eval series. */
static tl_status collect(FILE *in, series_set *loss, series_set *eval, plot_summary *summary,
                         tl_error *err) {
    metrics_record rec;
    int got;
    while ((got = metrics_read_record(in, &rec, &summary->skipped_lines)) > 0) {
        int failed = 0;
        if (rec.task) {
            summary->step_records++;
            failed = add_point(loss, rec.task, (double)rec.step, rec.loss);
        } else {
            summary->eval_records++;
            for (size_t i = 0; i < rec.n_eval && !failed; i++)
                failed = add_point(eval, rec.eval_names[i], (double)rec.step, rec.eval_values[i]);
        }
        metrics_record_free(&rec);
        if (failed) return tl_fail(err, TL_ERR_NOMEM, "plot: out of memory");
    }
    if (got < 0) return tl_fail(err, TL_ERR_NOMEM, "plot: out of memory");
    if (loss->n == 0) return tl_fail(err, TL_ERR_FORMAT, "plot: no step record with a finite loss");
    return TL_OK;
}

tl_status plot_metrics_svg(FILE *in, FILE *out, plot_summary *summary, tl_error *err) {
    series_set loss = {0}, eval = {0};
    memset(summary, 0, sizeof *summary);
    tl_status st = collect(in, &loss, &eval, summary, err);
    if (!st) {
        int panels = eval.n ? 2 : 1;
        fprintf(out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                WIDTH, panels * PANEL_HEIGHT, WIDTH, panels * PANEL_HEIGHT);
        draw_panel(out, &loss, 0, "Training loss per task", "loss");
        if (eval.n) draw_panel(out, &eval, PANEL_HEIGHT, "Evaluation", "value");
        fputs("</svg>\n", out);
        summary->loss_series = loss.n, summary->eval_series = eval.n;
        if (ferror(out)) st = tl_fail(err, TL_ERR_IO, "plot: write failed");
    }
    free_set(&loss);
    free_set(&eval);
    return st;
}
