/* A persistent pthread pool with one operation, a parallel for over [0, n): the CPU backend's
 * kernels split rows, heads or GEMM column blocks across it. Not a general task queue: one
 * parallel-for runs at a time, called from one thread. */
#ifndef TL_THREADPOOL_H
#define TL_THREADPOOL_H

#include <stddef.h>

typedef struct tl_pool tl_pool;

/* Runs items [begin, end) of a parallel-for on worker `thread` (0 = the calling thread,
 * 1..n_threads-1 = workers), so a kernel can index per-thread scratch. */
typedef void (*tl_pool_fn)(void *ctx, size_t begin, size_t end, int thread);

/* Starts n_threads - 1 workers (the caller is the n-th). Returns NULL on failure.
 * Owned by the caller (tl_pool_destroy). */
tl_pool *tl_pool_create(int n_threads);
void tl_pool_destroy(tl_pool *pool);
int tl_pool_threads(const tl_pool *pool);

/* Calls fn on chunks covering [0, n) exactly once each, in parallel, and returns when all are
 * done. Chunks hold at least `grain` items (0 = 1). A NULL pool runs fn(ctx, 0, n, 0). */
void tl_pool_for(tl_pool *pool, size_t n, size_t grain, tl_pool_fn fn, void *ctx);

#endif
