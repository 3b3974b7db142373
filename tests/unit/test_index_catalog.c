/* Catalogue parsing and storage: malformed JSON Lines and CSV lines are each reported with
 * their line number while every good line is kept; strict mode; the SQLite store's upsert,
 * get, delete, iterate, count and sealing. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog_parse.h"
#include "catalog_store.h"
#include "harness.h"

typedef struct collected {
    int64_t ids[64];
    int n_ids;
    int issue_lines[64];
    int n_issues;
    char last_title[64];
} collected;

static tl_status keep_product(const catalog_product *p, int line, void *ctx, tl_error *err) {
    collected *c = ctx;
    c->ids[c->n_ids++] = p->id;
    snprintf(c->last_title, sizeof c->last_title, "%s", p->title ? p->title : "");
    return TL_OK;
}

static void keep_issue(int line, const char *message, void *ctx) {
    collected *c = ctx;
    printf("# line %d: %s\n", line, message);
    c->issue_lines[c->n_issues++] = line;
}

static char dir[] = "/tmp/tl_test_catalog_XXXXXX";

static void write_file(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static tl_status parse(const char *name, int strict, collected *c, tl_error *err) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    catalog_parse_opts opts = {.strict = strict,
                               .check_images = 1,
                               .on_product = keep_product,
                               .on_issue = keep_issue,
                               .ctx = c};
    *c = (collected){0};
    return catalog_parse_file(path, &opts, NULL, err);
}

static const char JSONL[] =
    "{\"id\": 1, \"title\": \"red dress\", \"image\": \"a.png\", \"category\": \"dresses\"}\n"
    "{\"id\": 2, \"title\": \"broken\", \"image\": \"a.png\"\n" /* 2: broken JSON */
    "\n"                                                        /* blank: skipped */
    "{\"title\": \"no id\", \"image\": \"a.png\"}\n"            /* 4: missing id */
    "{\"id\": \"5\", \"image\": \"a.png\"}\n"                   /* 5: id type */
    "{\"id\": 6, \"title\": 7, \"image\": \"a.png\"}\n"         /* 6: title type */
    "{\"id\": 1, \"image\": \"a.png\"}\n"                       /* 7: duplicate */
    "{\"id\": 8, \"image\": \"missing.png\"}\n"                 /* 8: no image */
    "[1, 2]\n"                                                  /* 9: not object */
    "{\"id\": 10, \"image\": \"a.png\", \"attributes\": {\"color\": \"red\"}}\n"
    "{\"id\": 11, \"image\": \"a.png\", \"attributes\": \"red\"}\n" /* 11: attrs type */
    "{\"id\": 12, \"title\": \"last\", \"image\": \"a.png\"}";      /* no final \n */

TEST(jsonl_reports_every_bad_line) {
    collected c;
    tl_error err;
    CHECK(!parse("cat.jsonl", 0, &c, &err));
    const int bad[] = {2, 4, 5, 6, 7, 8, 9, 11};
    CHECK(c.n_issues == 8);
    for (int i = 0; i < 8 && i < c.n_issues; i++) CHECKF(c.issue_lines[i] == bad[i], "issue %d", i);
    CHECK(c.n_ids == 3 && c.ids[0] == 1 && c.ids[1] == 10 && c.ids[2] == 12);
    CHECK(!strcmp(c.last_title, "last"));
    CHECK(parse("cat.jsonl", 1, &c, &err) == TL_ERR_FORMAT && c.n_issues == 8);
}

static const char CSV[] =
    "id,sku,title,description,category,image,attributes\r\n"
    "1,S1,plain,\"quoted, with comma\",dresses,a.png,\r\n"
    "2,S2,\"multi\nline\",\"say \"\"hi\"\"\",shoes,a.png,\"{\"\"color\"\": \"\"red\"\"}\"\r\n"
    "x3,S3,bad id,,shoes,a.png,\r\n"        /* 5: id */
    "4,S4,bad\"quote,,shoes,a.png,\r\n"     /* 6: quoting */
    "5,S5,\"closed\"junk,,shoes,a.png,\r\n" /* 7: quoting */
    "6,S6,too,few\r\n"                      /* 8: fields */
    "1,S7,dup,,shoes,a.png,\r\n"            /* 9: duplicate */
    "8,S8,no image,,shoes,missing.png,\r\n" /* 10: missing */
    "9,S9,\"unterminated,,shoes,a.png,\r\n" /* 11: quoting */
    "10,S10,\"good after\",,shoes,a.png,\r\n"
    "11,S11,attrs,,shoes,a.png,[1]\r\n"; /* 13: attrs */

TEST(csv_reports_every_bad_line) {
    collected c;
    tl_error err;
    CHECK(!parse("cat.csv", 0, &c, &err));
    /* Physical line numbers: record 2 spans lines 3-4. */
    const int bad[] = {5, 6, 7, 8, 9, 10, 11, 13};
    CHECKF(c.n_issues == 8, "%d issues", c.n_issues);
    for (int i = 0; i < 8 && i < c.n_issues; i++) CHECKF(c.issue_lines[i] == bad[i], "issue %d", i);
    CHECKF(c.n_ids == 3 && c.ids[0] == 1 && c.ids[1] == 2 && c.ids[2] == 10, "%d ids", c.n_ids);
    write_file("badheader.csv", "id,colour,image\n1,red,a.png\n");
    CHECK(parse("badheader.csv", 0, &c, &err) == TL_ERR_FORMAT);
    CHECK(strstr(err.message, "colour") != NULL);
}

static int count_visits(const catalog_product *p, void *ctx) {
    int64_t *last = ctx;
    if (p->id <= *last) return 1; /* out of order: stop, the test sees the short count */
    *last = p->id;
    return 0;
}

TEST(store_round_trip) {
    char path[256];
    snprintf(path, sizeof path, "%s/catalog.sqlite", dir);
    catalog_store *s;
    tl_error err;
    REQUIRE(!catalog_store_open(&s, path, 0, &err));
    CHECK(!catalog_begin(s, &err));
    for (int i = 0; i < 100; i++) {
        char title[32];
        snprintf(title, sizeof title, "item %d", i);
        catalog_product p = {.id = 1000 - i,
                             .title = title,
                             .category = i % 2 ? "a" : "b",
                             .image_path = "/x.png",
                             .embedding_version = 1};
        CHECK(!catalog_upsert(s, &p, &err));
    }
    CHECK(!catalog_commit(s, &err));
    catalog_product got;
    CHECK(!catalog_get(s, 990, &got, &err));
    CHECK(!strcmp(got.title, "item 10") && !strcmp(got.category, "b") &&
          !strcmp(got.attributes, "{}") && !strcmp(got.sku, "") && got.embedding_version == 1);
    catalog_product_clear(&got);
    catalog_product replace = {.id = 990, .title = "renamed", .attributes = "{\"a\":1}"};
    CHECK(!catalog_upsert(s, &replace, &err));
    CHECK(!catalog_get(s, 990, &got, &err) && !strcmp(got.title, "renamed"));
    catalog_product_clear(&got);
    int deleted = 0;
    CHECK(!catalog_delete(s, 999, &deleted, &err) && deleted == 1);
    CHECK(!catalog_delete(s, 999, &deleted, &err) && deleted == 0);
    CHECK(catalog_get(s, 999, &got, &err) == TL_ERR_NOT_FOUND);
    int64_t n = 0, last = -1;
    CHECK(!catalog_count(s, &n, &err) && n == 99);
    CHECK(!catalog_iterate(s, count_visits, &last, &err) && last == 1000);
    CHECK(!catalog_store_seal(s, &err));
    catalog_store_close(s);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    CHECK(access(wal, F_OK) != 0);
    REQUIRE(!catalog_store_open(&s, path, CATALOG_READ_ONLY, &err));
    CHECK(!catalog_count(s, &n, &err) && n == 99);
    CHECK(catalog_upsert(s, &replace, &err) == TL_ERR_IO);
    catalog_store_close(s);
    CHECK(access(wal, F_OK) != 0);
    CHECK(catalog_store_open(&s, "/nonexistent/dir/c.sqlite", 0, &err) == TL_ERR_IO);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    write_file("a.png", "not really a png; only its existence is checked");
    write_file("cat.jsonl", JSONL);
    write_file("cat.csv", CSV);
    RUN(jsonl_reports_every_bad_line);
    RUN(csv_reports_every_bad_line);
    RUN(store_round_trip);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd), th_done();
}
