/* Tests of trainer/metrics_log (writing and reading JSON lines) and trainer/plot_svg (the SVG
 * of a run's metrics), including garbled and torn lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "metrics_log.h"
#include "plot_svg.h"
#include "test_util.h"

static char path[256];

static size_t count(const char *haystack, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Two tasks (one named with XML specials), one NaN loss, two evaluations of two metrics. */
static void write_run(void) {
    metrics_log *log = NULL;
    tl_error err = {0};
    unlink(path);
    if (metrics_log_open(path, &log, &err)) return;
    for (int step = 10; step <= 100; step += 10) {
        metrics_log_step(log, step, "xmr", 5.0 / step, 1e-4, 123.5, step * 0.5, &err);
        metrics_log_step(log, step, "a<b&c", step == 50 ? NAN : 2.0 / step, 1e-4, 99, 1, &err);
    }
    const char *names[2] = {"xmr.t2i_r1", "fic.cider_d"};
    double first[2] = {0.1, 0.5}, second[2] = {0.3, 0.9};
    metrics_log_eval(log, 50, names, first, 2, &err);
    metrics_log_eval(log, 100, names, second, 2, &err);
    metrics_log_close(log, &err);
}

TEST(metrics_round_trip) {
    write_run();
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    metrics_record rec;
    size_t skipped = 0, steps = 0, evals = 0, nan_losses = 0;
    int got;
    while ((got = metrics_read_record(f, &rec, &skipped)) > 0) {
        if (rec.task) {
            steps++;
            nan_losses += isnan(rec.loss);
            if (steps == 1)
                CHECK(rec.step == 10 && !strcmp(rec.task, "xmr") && rec.loss == 0.5 &&
                      rec.lr == 1e-4 && rec.rate == 123.5 && rec.time == 5);
        } else {
            evals++;
            CHECK(rec.n_eval == 2 && !strcmp(rec.eval_names[1], "fic.cider_d"));
            if (evals == 2) CHECK(rec.step == 100 && rec.eval_values[0] == 0.3);
        }
        metrics_record_free(&rec);
    }
    fclose(f);
    CHECK(got == 0 && steps == 20 && evals == 2 && skipped == 0);
    CHECK(nan_losses == 1); /* written as null, read back as NaN */
}

static char *render(plot_summary *summary, tl_status *st) {
    FILE *in = fopen(path, "r");
    char *svg = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&svg, &len);
    tl_error err = {0};
    *st = in && out ? plot_metrics_svg(in, out, summary, &err) : TL_ERR_IO;
    if (in) fclose(in);
    if (out) fclose(out);
    return svg;
}

TEST(plot_has_a_series_per_task_and_metric) {
    write_run();
    FILE *f = fopen(path, "a");
    REQUIRE(f);
    fputs("not json at all\n{\"step\": \"x\", \"task\": \"xmr\"}\n\n{\"step\": 110, \"task\": \"xm",
          f);
    fclose(f);
    plot_summary s;
    tl_status st;
    char *svg = render(&s, &st);
    REQUIRE(st == TL_OK && svg);
    CHECK(s.step_records == 20 && s.eval_records == 2 && s.skipped_lines == 3);
    CHECK(s.loss_series == 2 && s.eval_series == 2);
    CHECK(!strncmp(svg, "<?xml", 5) && strstr(svg, "</svg>\n"));
    CHECK(count(svg, "<polyline") == 4);
    CHECK(strstr(svg, ">a&lt;b&amp;c</text>") && !strstr(svg, "a<b"));
    CHECK(strstr(svg, ">fic.cider_d</text>") && strstr(svg, ">Evaluation</text>"));
    /* The NaN loss is left out: the second task's line has 9 points (8 spaces between). */
    const char *second = strstr(strstr(svg, "<polyline") + 1, "<polyline");
    REQUIRE(second);
    const char *points = strstr(second, "points=\"") + 8;
    size_t spaces = 0;
    for (const char *p = points; *p != '"'; p++) spaces += *p == ' ';
    CHECK(spaces == 8);
    free(svg);
}

TEST(plot_without_evaluations_or_steps) {
    REQUIRE(!tu_write_text(path, "{\"step\": 1, \"task\": \"scr\", \"loss\": 1.0}\n"));
    plot_summary s;
    tl_status st;
    char *svg = render(&s, &st);
    CHECK(st == TL_OK && s.eval_series == 0 && svg && !strstr(svg, "Evaluation"));
    free(svg);
    REQUIRE(!tu_write_text(
        path,
        "{\"step\": 1, \"eval\": {\"x\": 1}}\n{\"step\": 2, \"task\": \"scr\", \"loss\": null}\n"));
    svg = render(&s, &st);
    CHECK(st == TL_ERR_FORMAT);
    free(svg);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/test_plot.%d.jsonl", tmp ? tmp : "/tmp", (int)getpid());
    RUN(metrics_round_trip);
    RUN(plot_has_a_series_per_task_and_metric);
    RUN(plot_without_evaluations_or_steps);
    unlink(path);
    return th_done();
}
