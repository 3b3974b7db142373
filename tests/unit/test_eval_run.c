/* Tests of trainer/eval_run.c: the ranking helpers on synthetic embeddings whose answers are
 * known, the hit groups, a full evaluation of clip-tiny (plain CLIP) on a freshly generated tiny
 * demo set (sections present or skipped as its capabilities dictate, values in range, R@K
 * monotone, deterministic), and `tailor eval --json` (argv[1] is the tailor executable). */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "demo_data.h"
#include "eval_run.h"
#include "harness.h"

enum { N_SYN = 6, DIM_SYN = 8 };

/* gallery[i] = e_i (one-hot rows of an N_SYN × DIM_SYN matrix). */
static void one_hot_rows(float *rows, size_t n) {
    memset(rows, 0, n * DIM_SYN * sizeof *rows);
    for (size_t i = 0; i < n; i++) rows[i * DIM_SYN + i] = 1;
}

/* Each query is its own target's embedding: its target scores 1, the rest 0, so R@1 = 1. */
TEST(target_recall_own_nearest_neighbour) {
    float gallery[N_SYN * DIM_SYN];
    one_hot_rows(gallery, N_SYN);
    size_t targets[N_SYN];
    for (size_t i = 0; i < N_SYN; i++) targets[i] = i;
    const size_t ks[2] = {1, 2};
    double recall[2] = {-1, -1};
    tl_error err = {0};
    REQUIRE(eval_target_recall(gallery, N_SYN, gallery, N_SYN, DIM_SYN, targets, NULL, ks, 2,
                               recall, &err) == TL_OK);
    CHECK(recall[0] == 1.0 && recall[1] == 1.0);
}

/* Query q = e_q, target q+1, q itself excluded: every other item scores 0 like the target, and
 * ties count against the query, so the target ranks N − 1 (the N − 2 others tie with it). */
TEST(target_recall_ties_and_exclusion) {
    float gallery[N_SYN * DIM_SYN];
    one_hot_rows(gallery, N_SYN);
    size_t targets[N_SYN];
    int64_t excluded[N_SYN];
    for (size_t i = 0; i < N_SYN; i++) targets[i] = (i + 1) % N_SYN, excluded[i] = (int64_t)i;
    const size_t ks[2] = {N_SYN - 2, N_SYN - 1};
    double recall[2] = {-1, -1};
    tl_error err = {0};
    REQUIRE(eval_target_recall(gallery, N_SYN, gallery, N_SYN, DIM_SYN, targets, excluded, ks, 2,
                               recall, &err) == TL_OK);
    CHECK(recall[0] == 0.0 && recall[1] == 1.0);
    const size_t zero = 0;
    CHECK(eval_target_recall(gallery, N_SYN, gallery, N_SYN, DIM_SYN, targets, excluded, &zero, 1,
                             recall, &err) == TL_ERR_INVALID);
}

/* Four items: 0 and 1 share class, colour and pattern (shade differs), 2 differs in pattern, 3
 * has no attributes and shares product 7 with nothing else. */
static char *attr_names[3] = {"class", "colour", "pattern"};
static char *attr_values[3][3] = {
    {"Dress", "red", "plain"}, {"Dress", "red", "plain"}, {"Dress", "red", "striped"}};

static void synthetic_dataset(dataset *ds, dataset_item *items) {
    memset(items, 0, 4 * sizeof *items);
    for (int i = 0; i < 4; i++) items[i].id = items[i].product = 10 + i;
    for (int i = 0; i < 3; i++)
        items[i].attribute_names = attr_names, items[i].attribute_values = attr_values[i],
        items[i].n_attributes = 3;
    *ds = (dataset){.source = "synthetic", .items = items, .n_items = 4};
}

TEST(hit_groups_by_attributes_else_product) {
    dataset_item items[4];
    dataset ds;
    synthetic_dataset(&ds, items);
    size_t group[4], n_groups = 0;
    tl_error err = {0};
    REQUIRE(eval_item_groups(&ds, group, &n_groups, &err) == TL_OK);
    CHECK(n_groups == 3);
    CHECK(group[0] == group[1] && group[1] != group[2] && group[2] != group[3] &&
          group[0] != group[3]);
}

/* Text i is item i's image embedding: its own image is the best hit, so R@1 = 1 both ways;
 * image 1's only caption is text 1, which scores 1 against it. */
TEST(xmr_rank_own_image_is_first) {
    dataset_item items[4];
    dataset ds;
    synthetic_dataset(&ds, items);
    float emb[4 * DIM_SYN];
    one_hot_rows(emb, 4);
    const size_t text_items[4] = {0, 1, 2, 3};
    eval_xmr_result r;
    tl_error err = {0};
    REQUIRE(eval_xmr_rank(&ds, text_items, emb, 4, emb, DIM_SYN, &r, &err) == TL_OK);
    CHECK(r.t2i[0] == 1.0 && r.i2t[0] == 1.0 && r.n_image_queries == 4);
    /* Texts 0 and 1 swapped: text 0 now scores 1 only against image 1, which shares its
     * group (a hit), so R@1 stays 1 both ways; pairing by item alone would give 0.5. */
    float swapped[4 * DIM_SYN];
    memcpy(swapped, emb, sizeof emb);
    memcpy(swapped, emb + DIM_SYN, DIM_SYN * sizeof(float));
    memcpy(swapped + DIM_SYN, emb, DIM_SYN * sizeof(float));
    REQUIRE(eval_xmr_rank(&ds, text_items, swapped, 4, emb, DIM_SYN, &r, &err) == TL_OK);
    CHECK(r.t2i[0] == 1.0 && r.i2t[0] == 1.0);
}

static char tmp_root[] = "/tmp/tl-eval-run-XXXXXX";
static char demo_dir[sizeof tmp_root + 8];
static tl_model *model;
static dataset tiny;
static int have_setup;

static void check_recalls(const double *r, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        CHECKF(r[i] >= 0 && r[i] <= 1, "%s[%zu] = %g", what, i, r[i]);
        if (i) CHECKF(r[i] >= r[i - 1], "%s not monotone at %zu", what, i);
    }
}

static void check_report_values(const eval_report *r) {
    check_recalls(r->xmr.t2i, 3, "xmr t2i");
    check_recalls(r->xmr.i2t, 3, "xmr i2t");
    check_recalls((const double[]){r->tgir.r10, r->tgir.r50}, 2, "tgir");
    check_recalls((const double[]){r->multiturn.r5, r->multiturn.r10, r->multiturn.r50}, 3,
                  "multiturn");
    check_recalls(&r->scr.accuracy, 1, "scr accuracy");
    check_recalls(&r->scr.macro_f1, 1, "scr macro-F1");
    check_recalls(&r->scr_image_only.accuracy, 1, "scr image-only accuracy");
    check_recalls(&r->scr_image_only.macro_f1, 1, "scr image-only macro-F1");
}

/* clip-tiny is plain CLIP with a tokenizer: every section but FIC runs zero-shot; the demo test
 * split of 10 garments has 50 items with 3 captions each, 200 triplets and 20 transactions. */
TEST(tiny_demo_sections_follow_capabilities) {
    REQUIRE(have_setup);
    REQUIRE(tl_model_capabilities(model) == 0);
    eval_options opts;
    eval_default_options(&opts);
    eval_report r;
    tl_error err = {0};
    REQUIRE(eval_run(model, &tiny, &opts, &r, &err) == TL_OK);
    const size_t want_queries[EVAL_N_SECTIONS] = {150, 200, 20, 50, 0};
    for (int s = 0; s < EVAL_FIC; s++) {
        CHECKF(r.sections[s].ran, "%s skipped: %s", EVAL_SECTION_NAMES[s], r.sections[s].reason);
        CHECKF(r.sections[s].n_queries == want_queries[s], "%s: %zu queries", EVAL_SECTION_NAMES[s],
               r.sections[s].n_queries);
        CHECK(r.sections[s].method[0] != '\0' && r.sections[s].reason[0] == '\0');
    }
    CHECK(r.sections[EVAL_XMR].n_gallery == 50 && r.sections[EVAL_SCR].n_gallery == 10);
    CHECK(!r.sections[EVAL_FIC].ran && strstr(r.sections[EVAL_FIC].reason, "fic head"));
    CHECK(r.xmr.n_image_queries == 50);
    check_report_values(&r);
    const char *names[EVAL_MAX_METRICS];
    double values[EVAL_MAX_METRICS];
    CHECK(eval_section_metrics(&r, EVAL_XMR, names, values) == 6);
    CHECK(eval_section_metrics(&r, EVAL_FIC, names, values) == 0);

    eval_report again;
    REQUIRE(eval_run(model, &tiny, &opts, &again, &err) == TL_OK);
    again.seconds = r.seconds;
    CHECK(!memcmp(&r, &again, sizeof r));
}

TEST(tiny_demo_query_limit) {
    REQUIRE(have_setup);
    eval_options opts;
    eval_default_options(&opts);
    opts.max_queries = 7, opts.batch_size = 3;
    eval_report r;
    tl_error err = {0};
    REQUIRE(eval_run(model, &tiny, &opts, &r, &err) == TL_OK);
    for (int s = 0; s < EVAL_FIC; s++)
        CHECKF(r.sections[s].ran && r.sections[s].n_queries == 7, "%s: %zu queries",
               EVAL_SECTION_NAMES[s], r.sections[s].n_queries);
    CHECK(r.sections[EVAL_TGIR].n_gallery == 50);
    check_report_values(&r);
    opts.batch_size = 0;
    CHECK(eval_run(model, &tiny, &opts, &r, &err) == TL_ERR_INVALID);
}

/* tailor-tiny holds every task head but no tokenizer: every section needs text, so every one is
 * not available, with the reason, and the run itself succeeds. */
TEST(tailor_tiny_without_tokenizer_skips_every_section) {
    REQUIRE(have_setup);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tailor-tiny", th_testdata());
    tl_model *tiny_tailor = NULL;
    tl_error err = {0};
    REQUIRE(tl_model_open(&tiny_tailor, dir, NULL, &err) == TL_OK);
    CHECK(tl_model_capabilities(tiny_tailor) != 0);
    eval_options opts;
    eval_default_options(&opts);
    eval_report r;
    CHECK(eval_run(tiny_tailor, &tiny, &opts, &r, &err) == TL_OK);
    for (int s = 0; s < EVAL_N_SECTIONS; s++)
        CHECKF(!r.sections[s].ran && strstr(r.sections[s].reason, "tokenizer"), "%s: %s",
               EVAL_SECTION_NAMES[s], r.sections[s].reason);
    tl_model_close(tiny_tailor);
}

/* The session query of transaction tr, computed here from single tl_compose calls and
 * proto/session.md's decayed sum (decay 0.5, the default): q = n(Σ 0.5^(T−1−t) x_t). */
static int decayed_sum_query(const dataset_transaction *tr, int dim, float *q) {
    memset(q, 0, (size_t)dim * sizeof *q);
    for (size_t t = 0; t < tr->n_turns; t++) {
        tl_image image;
        float x[256];
        tl_error err = {0};
        const char *text = tr->turns[t].captions[0];
        if (dataset_read_image(&tiny, tr->turns[t].reference, &image, &err)) return -1;
        tl_status st = tl_compose(model, &image, &text, 1, x, &err);
        img_free(&image);
        if (st) return -1;
        for (int d = 0; d < dim; d++) q[d] = 0.5f * q[d] + x[d];
    }
    double norm = 0;
    for (int d = 0; d < dim; d++) norm += (double)q[d] * q[d];
    for (int d = 0; d < dim; d++) q[d] = (float)(q[d] / sqrt(norm));
    return 0;
}

/* eval_run's multi-turn numbers (through tl_session_*) against the decayed sum written out. */
TEST(multiturn_matches_decayed_sum) {
    REQUIRE(have_setup && tl_model_get_info(model)->projection_dim <= 256);
    int dim = tl_model_get_info(model)->projection_dim;
    size_t n = tiny.n_transactions, n_items = tiny.n_items;
    float *queries = malloc(n * (size_t)dim * sizeof *queries);
    float *gallery = malloc(n_items * (size_t)dim * sizeof *gallery);
    size_t *targets = malloc(n * sizeof *targets);
    int64_t *excluded = malloc(n * sizeof *excluded);
    tl_error err = {0};
    int ok = queries && gallery && targets && excluded;
    for (size_t i = 0; ok && i < n; i++) {
        const dataset_transaction *tr = &tiny.transactions[i];
        targets[i] = tr->final_target;
        excluded[i] = (int64_t)tr->turns[tr->n_turns - 1].reference;
        ok = !decayed_sum_query(tr, dim, queries + i * (size_t)dim);
    }
    for (size_t i = 0; ok && i < n_items; i++) {
        tl_image image;
        ok = !dataset_read_image(&tiny, i, &image, &err) &&
             !tl_embed_images(model, &image, 1, gallery + i * (size_t)dim, &err);
        img_free(&image);
    }
    const size_t ks[3] = {5, 10, 50};
    double want[3];
    eval_options opts;
    eval_default_options(&opts);
    eval_report r;
    CHECK(ok);
    if (ok &&
        eval_target_recall(queries, n, gallery, n_items, dim, targets, excluded, ks, 3, want,
                           &err) == TL_OK &&
        eval_run(model, &tiny, &opts, &r, &err) == TL_OK) {
        double one_query = 1.0 / (double)n + 1e-9; /* batching may move one tie */
        CHECK_NEAR(r.multiturn.r5, want[0], one_query);
        CHECK_NEAR(r.multiturn.r10, want[1], one_query);
        CHECK_NEAR(r.multiturn.r50, want[2], one_query);
        CHECK(strstr(r.sections[EVAL_MULTITURN].method, "decayed-sum session"));
    } else {
        CHECKF(0, "%s", err.message);
    }
    free(queries), free(gallery), free(targets), free(excluded);
}

static int has_number(json_t *section, const char *key) {
    json_t *v = json_object_get(section, key);
    return json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) <= 1;
}

/* The documented keys of proto/eval.md. */
static void check_json_keys(json_t *root) {
    static const char *const metrics[EVAL_FIC][6] = {
        {"t2i_r1", "t2i_r5", "t2i_r10", "i2t_r1", "i2t_r5", "i2t_r10"},
        {"r10", "r50"},
        {"r5", "r10", "r50"},
        {"accuracy", "macro_f1", "image_only_accuracy", "image_only_macro_f1"}};
    CHECK(json_is_number(json_object_get(root, "seconds")));
    for (int s = 0; s < EVAL_FIC; s++) {
        json_t *sec = json_object_get(root, EVAL_SECTION_NAMES[s]);
        CHECKF(json_is_object(sec), "no section %s", EVAL_SECTION_NAMES[s]);
        CHECK(!strcmp(json_string_value(json_object_get(sec, "status")) ?: "", "ok"));
        CHECK(json_is_string(json_object_get(sec, "method")));
        CHECK(json_is_integer(json_object_get(sec, "queries")));
        CHECK(json_is_integer(json_object_get(sec, "gallery")));
        for (int k = 0; k < 6 && metrics[s][k]; k++)
            CHECKF(has_number(sec, metrics[s][k]), "%s.%s", EVAL_SECTION_NAMES[s], metrics[s][k]);
    }
    json_t *fic = json_object_get(root, "fic");
    CHECK(!strcmp(json_string_value(json_object_get(fic, "status")) ?: "", "not available"));
    CHECK(json_is_string(json_object_get(fic, "reason")));
}

static const char *tailor_exe;

TEST(cli_json_has_documented_keys) {
    REQUIRE(have_setup && tailor_exe);
    char command[1024];
    snprintf(command, sizeof command,
             "'%s' eval --model '%s/clip-tiny' --data '%s' --max-queries 20 --json 2>/dev/null",
             tailor_exe, th_testdata(), demo_dir);
    FILE *p = popen(command, "r");
    REQUIRE(p);
    json_error_t jerr;
    json_t *root = json_loadf(p, 0, &jerr);
    CHECK(pclose(p) == 0);
    CHECKF(root, "not JSON: %s", jerr.text);
    if (root) check_json_keys(root);
    json_decref(root);
    snprintf(command, sizeof command, "'%s' eval --model '%s/clip-tiny' 2>/dev/null", tailor_exe,
             th_testdata());
    CHECK(system(command) == 2 << 8); /* no --data: usage error */
    snprintf(command, sizeof command,
             "'%s' eval --model '%s/clip-tiny' --data '%s' --kind bogus 2>/dev/null", tailor_exe,
             th_testdata(), demo_dir);
    CHECK(system(command) == 2 << 8); /* unknown kind: usage error */
    snprintf(command, sizeof command, "'%s' eval --help | grep -q -- --max-queries", tailor_exe);
    CHECK(system(command) == 0);
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    return remove(path);
}

static void setup(void) {
    if (!mkdtemp(tmp_root)) return;
    snprintf(demo_dir, sizeof demo_dir, "%s/demo", tmp_root);
    demo_options opts;
    demo_default_options(&opts);
    opts.train_garments = 10, opts.test_garments = 10;
    tl_error err = {0};
    char model_dir[512];
    snprintf(model_dir, sizeof model_dir, "%s/clip-tiny", th_testdata());
    train_dataset_config cfg = {.kind = TRAIN_DATA_DEMO, .path = demo_dir, .split = "test"};
    if (demo_generate(demo_dir, &opts, &err) || tl_model_open(&model, model_dir, NULL, &err) ||
        dataset_open(&cfg, &tiny, &err)) {
        printf("# setup: %s\n", err.message);
        return;
    }
    have_setup = 1;
}

int main(int argc, char **argv) {
    tailor_exe = argc > 1 ? argv[1] : NULL;
    RUN(target_recall_own_nearest_neighbour);
    RUN(target_recall_ties_and_exclusion);
    RUN(hit_groups_by_attributes_else_product);
    RUN(xmr_rank_own_image_is_first);
    setup();
    RUN(tiny_demo_sections_follow_capabilities);
    RUN(tiny_demo_query_limit);
    RUN(multiturn_matches_decayed_sum);
    RUN(tailor_tiny_without_tokenizer_skips_every_section);
    RUN(cli_json_has_documented_keys);
    if (have_setup) dataset_free(&tiny);
    tl_model_close(model);
    nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return th_done();
}
