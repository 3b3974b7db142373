/* What the benchmark programs share: a clock reading, sorting timings, repeatable random
 * inputs. Not for: tests (benchmarks assert nothing) or the engine. */
#ifndef TL_BENCH_UTIL_H
#define TL_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Seconds on clock: CLOCK_MONOTONIC for wall time, CLOCK_PROCESS_CPUTIME_ID for CPU time. */
double bench_seconds(clockid_t clock);

/* Sorts times[n] ascending, for medians and percentiles. */
void bench_sort_times(double *times, int n);

/* Uniform values in [-scale, scale) from a fixed LCG started at seed, so runs repeat. */
void bench_fill_uniform(float *x, size_t n, uint32_t seed, float scale);

#endif
