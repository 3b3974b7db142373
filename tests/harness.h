/* A minimal unit-test harness printing TAP, which tests/run counts.
 * Usage: TEST(name) { CHECK(x); ... }  and  int main(void) { RUN(name); ...; return th_done(); }
 * CHECK records a failure with file:line and continues; REQUIRE also returns from the test. */
#ifndef TL_TEST_HARNESS_H
#define TL_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int th_count, th_failed_tests, th_current_failed;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            th_current_failed++;                                                     \
            printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);      \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        if (!(cond)) {                                                               \
            th_current_failed++;                                                     \
            printf("#   %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);      \
            printf(__VA_ARGS__);                                                     \
            printf("\n");                                                            \
        }                                                                            \
    } while (0)

#define REQUIRE(cond)                                                                \
    do {                                                                             \
        if (!(cond)) {                                                               \
            th_current_failed++;                                                     \
            printf("#   %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond);    \
            return;                                                                  \
        }                                                                            \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                        \
    CHECKF(fabs((double)(a) - (double)(b)) <= (tol), "%s=%.9g %s=%.9g tol=%g", #a,   \
           (double)(a), #b, (double)(b), (double)(tol))

#define RUN(name) th_run(#name, name)

static inline void th_run(const char *name, void (*fn)(void)) {
    th_current_failed = 0;
    fn();
    th_count++;
    if (th_current_failed) th_failed_tests++;
    printf("%s %d - %s\n", th_current_failed ? "not ok" : "ok", th_count, name);
    fflush(stdout);
}

static inline int th_done(void) {
    printf("1..%d\n", th_count);
    return th_failed_tests ? 1 : 0;
}

/* Directory of the shared test vectors, from the TL_TESTDATA environment variable. */
static inline const char *th_testdata(void) {
    extern char *getenv(const char *);
    const char *d = getenv("TL_TESTDATA");
    return d ? d : "../shared/testdata";
}

#endif
