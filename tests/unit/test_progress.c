/* Tests of trainer/progress: the text (loss per task, rate, ETA on resumed runs) and the
 * pacing of plain lines when the output is not a terminal. Times are passed in. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "progress.h"

/* 25 of 100 steps after 10 s: 75 steps left at 2.5 steps/s → ETA 30 s. */
TEST(text_with_losses_rate_and_eta) {
    FILE *out = tmpfile();
    REQUIRE(out);
    progress p;
    progress_start(&p, out, 100, 0, 0.0);
    progress_update(&p, 24, "xmr", 0.5, 40, 9.0);
    progress_update(&p, 25, "tgir", 1.25, 40, 10.0);
    char text[256];
    progress_format(&p, 10.0, text, sizeof text);
    CHECKF(!strcmp(text, "25/100 25.0% | xmr 0.5 tgir 1.25 | 40.0 samples/s | ETA 0:00:30"), "%s",
           text);
    fclose(out);
}

/* A run resumed at step 50 that reaches 75 after 25 s: 1 step/s, 25 left → ETA 25 s (the steps
 * done before the restart do not count towards the pace). */
TEST(eta_of_a_resumed_run) {
    FILE *out = tmpfile();
    REQUIRE(out);
    progress p;
    progress_start(&p, out, 100, 50, 100.0);
    progress_update(&p, 75, "scr", 2.0, NAN, 125.0);
    char text[256];
    progress_format(&p, 125.0, text, sizeof text);
    CHECKF(!strcmp(text, "75/100 75.0% | scr 2 | ETA 0:00:25"), "%s", text);
    fclose(out);
}

/* Not a terminal: one line per 30 s (at 30, 60 and 90 s of 100 updates a second apart), plus
 * the final one. */
TEST(plain_lines_are_paced) {
    FILE *out = tmpfile();
    REQUIRE(out);
    progress p;
    progress_start(&p, out, 100, 0, 0.0);
    CHECK(p.on_terminal == 0);
    for (int s = 1; s <= 100; s++) progress_update(&p, s, "fic", 1.0 / s, 10, (double)s);
    progress_finish(&p, 100.0);
    rewind(out);
    char line[512], last[512] = "";
    int lines = 0;
    while (fgets(line, sizeof line, out)) lines++, strcpy(last, line);
    CHECK(lines == 4);
    CHECKF(!strcmp(last, "100/100 100.0% | fic 0.01 | 10.0 samples/s\n"), "%s", last);
    fclose(out);
}

int main(void) {
    RUN(text_with_losses_rate_and_eta);
    RUN(eta_of_a_resumed_run);
    RUN(plain_lines_are_paced);
    return th_done();
}
