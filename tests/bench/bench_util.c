/* Shared pieces of the benchmark programs (see bench_util.h).
 * Not for: a benchmark's workloads or its report. */
#include "bench_util.h"

#include <stdlib.h>

double bench_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_sort_times(double *times, int n) {
    qsort(times, (size_t)n, sizeof *times, compare_double);
}

void bench_fill_uniform(float *x, size_t n, uint32_t seed, float scale) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = scale * ((float)(seed >> 8) * 0x1.0p-23f - 1.0f);
    }
}
