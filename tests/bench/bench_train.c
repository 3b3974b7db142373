/* bench_train: seconds per training step (forward + loss + backward, then AdamW) of one task on
 * a checkpoint (e.g. make_random_clip --adapters), with random inputs, or (--task all) the
 * training throughput in samples/s over the five tasks in turn. Not a test: timings need a
 * quiet machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "optim.h"
#include "tailor_model.h"
#include "train_tasks.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: bench_train DIR [--task xmr|tgir|scr|fic|ntm|all] [--batch B] [--steps N]\n"
            "                   [--threads T] [--text-len L]\n"
            "Times training steps (all parts trained) on the checkpoint DIR with random\n"
            "inputs: forward + loss + backward, and the AdamW update, per step.\n"
            "  --task     task (default xmr); all: each task in turn, then samples/s\n"
            "  --batch    items per step (default 8)\n"
            "  --steps    timed steps (5)      --threads  CPU threads (0 = all)\n"
            "  --text-len text/caption tokens incl. SOS/EOS (default 16)\n"
            "  --help, --version\n");
}

typedef struct bench_args {
    const char *dir, *task;
    int batch, steps, threads, text_len;
} bench_args;

static int parse(int argc, char **argv, bench_args *a) {
    *a = (bench_args){NULL, "xmr", 8, 5, 0, 16};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--task") && v)
            a->task = argv[++i];
        else if (!strcmp(argv[i], "--batch") && v)
            a->batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && v)
            a->steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && v)
            a->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--text-len") && v)
            a->text_len = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !a->dir)
            a->dir = argv[i];
        else
            return 0;
    }
    return a->dir && a->batch > 0 && a->steps > 0 && a->text_len >= 2;
}

/* Random pixels, ids (SOS, words, EOS), labels and NTM inputs for one batch. */
typedef struct bench_batch {
    float *pixels, *x, *gallery;
    int32_t *ids;
    int *labels;
} bench_batch;

static void make_batch(const train_model *m, const bench_args *a, bench_batch *b) {
    int B = a->batch, L = a->text_len, S = m->vision.image_size, V = m->text.vocab;
    size_t np = (size_t)B * 3 * S * S, nx = (size_t)3 * B * m->projection_dim;
    b->pixels = malloc(np * sizeof *b->pixels);
    b->ids = malloc((size_t)B * L * sizeof *b->ids);
    b->labels = malloc((size_t)B * sizeof *b->labels);
    b->x = malloc(nx * sizeof *b->x);
    b->gallery = malloc((size_t)B * m->projection_dim * sizeof *b->gallery);
    srand(1);
    for (size_t i = 0; i < np; i++) b->pixels[i] = (float)rand() / RAND_MAX * 2 - 1;
    for (size_t i = 0; i < nx; i++) b->x[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < B * m->projection_dim; i++) b->gallery[i] = (float)rand() / RAND_MAX;
    for (int r = 0; r < B; r++) {
        b->labels[r] = r % m->scr_classes;
        for (int i = 0; i < L; i++) b->ids[r * L + i] = 1 + rand() % (V - 3);
        b->ids[r * L] = V - 2, b->ids[r * L + L - 1] = V - 1; /* SOS ... EOS */
    }
}

static const char *const all_tasks[] = {"xmr", "tgir", "scr", "fic", "ntm"};

static tl_status step(train_model *m, train_arena *ar, const bench_args *a, const bench_batch *b,
                      int s, double *loss, tl_error *err) {
    int B = a->batch, L = a->text_len;
    const char *task = strcmp(a->task, "all") ? a->task : all_tasks[s % 5];
    if (!strcmp(task, "tgir"))
        return train_tgir_step(m, ar, b->pixels, b->ids, L, b->pixels, B, NULL, loss, err);
    if (!strcmp(task, "scr"))
        return train_scr_step(m, ar, b->pixels, b->ids, L, b->labels, B, NULL, loss, err);
    if (!strcmp(task, "fic"))
        return train_fic_step(m, ar, b->pixels, b->ids, B, L, NULL, loss, err);
    if (!strcmp(task, "ntm")) return train_ntm_step(m, ar, b->x, b->gallery, 3, B, loss, err);
    return train_xmr_step(m, ar, b->pixels, b->ids, L, B, NULL, loss, err);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--help")) return usage(stdout), 0;
    if (argc == 2 && !strcmp(argv[1], "--version"))
        return printf("bench_train %s\n", TAILOR_VERSION), 0;
    bench_args a;
    if (!parse(argc, argv, &a)) return usage(stderr), 2;
    tl_backend *be = NULL;
    train_model m;
    tl_error err = {0};
    if (tl_backend_cpu_create(&be, a.threads, &err) ||
        train_model_load(&m, be, a.dir, (1u << TRAIN_PART_COUNT) - 1, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        return 1;
    }
    param_set *sets[TRAIN_PART_COUNT];
    for (int p = 0; p < TRAIN_PART_COUNT; p++) sets[p] = &m.parts[p];
    adamw opt;
    adamw_init(&opt, &(adamw_config){0.9, 0.999, 1e-8, 1e-5, 0}, sets, NULL, TRAIN_PART_COUNT, NULL,
               0, &err);
    bench_batch b;
    make_batch(&m, &a, &b);
    train_arena ar = {0};
    double *fb = malloc((size_t)(a.steps + 1) * sizeof *fb),
           *up = malloc((size_t)(a.steps + 1) * sizeof *up);
    int rc = 0;
    for (int s = 0; s <= a.steps && !rc; s++) { /* step 0 warms up */
        double loss, t0 = now();
        train_model_zero_grad(&m);
        rc = step(&m, &ar, &a, &b, s, &loss, &err) != TL_OK;
        double t1 = now();
        adamw_step(&opt, 1e-5);
        fb[s] = t1 - t0, up[s] = now() - t1;
        if (!rc)
            printf("step %d: loss %.4f, forward+backward %.3f s, adamw %.3f s\n", s, loss, fb[s],
                   up[s]);
    }
    if (rc)
        fprintf(stderr, "bench_train: %s\n", err.message);
    else {
        double total = 0;
        for (int s = 1; s <= a.steps; s++) total += fb[s] + up[s];
        qsort(fb + 1, (size_t)a.steps, sizeof *fb, by_value);
        qsort(up + 1, (size_t)a.steps, sizeof *up, by_value);
        printf("%s batch %d: forward+backward median %.3f s (min %.3f), adamw median %.3f s, "
               "%.1f samples/s\n",
               a.task, a.batch, fb[1 + a.steps / 2], fb[1], up[1 + a.steps / 2],
               a.batch * a.steps / total);
    }
    free(fb), free(up), free(b.pixels), free(b.ids), free(b.labels), free(b.x), free(b.gallery);
    train_arena_free(&ar);
    adamw_free(&opt);
    train_model_free(&m);
    be->destroy(be);
    return rc;
}
