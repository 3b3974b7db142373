/* Persistent worker threads for tl_pool_for: workers spin briefly on a generation counter, then
 * sleep on a condition variable; chunks are handed out with an atomic counter. The caller works
 * too and never waits for a worker that has not joined the job yet: a late worker finds the
 * job closed and goes back to waiting, so a descheduled thread costs no latency.
 * Not for: nested or concurrent parallel-fors (one caller thread at a time). */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_ROUNDS = 4000 };

struct tl_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int sleepers; /* guarded by lock */
    atomic_uint generation;
    atomic_int stop;
    /* the current job */
    tl_pool_fn fn;
    void *ctx;
    size_t n, chunk;
    atomic_size_t next;
    /* (generation << 32) | JOB_OPEN | number of workers inside the job */
    _Atomic uint64_t entry;
};

#define JOB_OPEN        (1ull << 31)
#define JOB_ACTIVE_MASK (JOB_OPEN - 1)

typedef struct worker_arg {
    tl_pool *pool;
    int thread;
} worker_arg;

static void run_chunks(tl_pool *p, int thread) {
    for (;;) {
        size_t begin = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
        if (begin >= p->n) return;
        size_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
        p->fn(p->ctx, begin, end, thread);
    }
}

/* Returns the next generation once it differs from seen (or on stop). */
static unsigned wait_for_job(tl_pool *p, unsigned seen) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        unsigned g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load(&p->stop)) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    p->sleepers++;
    unsigned g;
    while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->lock);
    p->sleepers--;
    pthread_mutex_unlock(&p->lock);
    return g;
}

/* Joins job `generation` if it is still open; returns 1 when joined. */
static int join_job(tl_pool *p, unsigned generation) {
    uint64_t e = atomic_load_explicit(&p->entry, memory_order_acquire);
    while ((e >> 32) == generation && (e & JOB_OPEN))
        if (atomic_compare_exchange_weak_explicit(&p->entry, &e, e + 1, memory_order_acquire,
                                                  memory_order_acquire))
            return 1;
    return 0;
}

static void *worker_main(void *arg) {
    worker_arg *w = arg;
    tl_pool *p = w->pool;
    int thread = w->thread;
    free(w);
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        if (!join_job(p, seen)) continue;
        run_chunks(p, thread);
        atomic_fetch_sub_explicit(&p->entry, 1, memory_order_release);
    }
}

/* Owned by the caller (tl_pool_destroy). */
tl_pool *tl_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    tl_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        tl_pool_destroy(p);
        return NULL;
    }
    for (int t = 1; t < n_threads; t++) {
        worker_arg *w = malloc(sizeof *w);
        if (!w) break;
        *w = (worker_arg){p, t};
        if (pthread_create(&p->workers[t], NULL, worker_main, w)) {
            free(w);
            break;
        }
        p->n_threads++;
    }
    if (p->n_threads != n_threads) {
        tl_pool_destroy(p);
        return NULL;
    }
    return p;
}

void tl_pool_destroy(tl_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int t = 1; t < p->n_threads; t++) pthread_join(p->workers[t], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}

int tl_pool_threads(const tl_pool *p) {
    return p ? p->n_threads : 1;
}

/* Waits until no worker is inside the current job, then closes it to late joiners. */
/* After SPIN_ROUNDS it yields the core: on a busy machine the worker it waits for may be
 * waiting for a core itself. */
static void close_job(tl_pool *p) {
    uint64_t e = atomic_load_explicit(&p->entry, memory_order_acquire);
    for (int spins = 0;; spins++) {
        if (e & JOB_ACTIVE_MASK) {
            if (spins < SPIN_ROUNDS)
                cpu_relax();
            else
                sched_yield();
            e = atomic_load_explicit(&p->entry, memory_order_acquire);
        } else if (atomic_compare_exchange_weak_explicit(
                       &p->entry, &e, e & ~JOB_OPEN, memory_order_acq_rel, memory_order_acquire)) {
            return;
        }
    }
}

void tl_pool_for(tl_pool *p, size_t n, size_t grain, tl_pool_fn fn, void *ctx) {
    if (n == 0) return;
    if (grain == 0) grain = 1;
    if (!p || p->n_threads == 1 || n <= grain) {
        fn(ctx, 0, n, 0);
        return;
    }
    size_t target = (n + 4 * (size_t)p->n_threads - 1) / (4 * (size_t)p->n_threads);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = target > grain ? target : grain;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    unsigned g = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->entry, ((uint64_t)g << 32) | JOB_OPEN, memory_order_release);
    atomic_store_explicit(&p->generation, g, memory_order_release);
    pthread_mutex_lock(&p->lock);
    if (p->sleepers) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    run_chunks(p, 0);
    close_job(p);
}
