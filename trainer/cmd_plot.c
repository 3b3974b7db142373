/* `tailor-train plot METRICS.jsonl --out FILE.svg`: argument parsing and reporting around
 * plot_metrics_svg (plot_svg.h). The SVG is written to a temporary file and renamed. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot_svg.h"
#include "train_commands.h"

static void usage(FILE *out) {
    fprintf(out, "usage: tailor-train plot METRICS.jsonl --out FILE.svg\n\n"
                 "Draws a run's metrics.jsonl as an SVG: the loss of each task over steps and,\n"
                 "when the run evaluated, each evaluation metric over steps. Lines that are not\n"
                 "metrics records (e.g. a torn last line) are skipped and counted.\n\n"
                 "  --out FILE.svg   where to write the plot\n"
                 "  --help           this text\n");
}

/* Plots in_path into out_path via out_path.tmp; returns the exit status. */
static int plot_file(const char *in_path, const char *out_path) {
    FILE *in = fopen(in_path, "r");
    if (!in) {
        fprintf(stderr, "tailor-train plot: %s: %s\n", in_path, strerror(errno));
        return 1;
    }
    char *tmp = NULL;
    FILE *out = asprintf(&tmp, "%s.tmp", out_path) < 0 ? NULL : fopen(tmp, "w");
    if (!out) {
        fprintf(stderr, "tailor-train plot: cannot write %s: %s\n", out_path, strerror(errno));
        fclose(in);
        free(tmp);
        return 1;
    }
    plot_summary summary;
    tl_error err = {0};
    tl_status st = plot_metrics_svg(in, out, &summary, &err);
    fclose(in);
    if (fclose(out) && !st) st = tl_fail(&err, TL_ERR_IO, "write failed");
    if (!st && rename(tmp, out_path)) st = tl_fail(&err, TL_ERR_IO, "%s", strerror(errno));
    if (st) {
        unlink(tmp);
        fprintf(stderr, "tailor-train plot: %s: %s\n", in_path, err.message);
    } else {
        fprintf(stderr, "%s: %zu task(s), %zu step records, %zu evaluations, %zu lines skipped\n",
                out_path, summary.loss_series, summary.step_records, summary.eval_records,
                summary.skipped_lines);
    }
    free(tmp);
    return st ? 1 : 0;
}

int cmd_plot(int argc, char **argv) {
    static const struct option long_opts[] = {{"out", required_argument, NULL, 'o'},
                                              {"help", no_argument, NULL, 'h'},
                                              {NULL, 0, NULL, 0}};
    const char *out_path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c != 'o') {
            usage(stderr);
            return 2;
        }
        out_path = optarg;
    }
    if (!out_path || optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    return plot_file(argv[optind], out_path);
}
