/* Index directories built by index_build with the TEST-ONLY fake embedder: manifest contents,
 * verification (tampered and missing files are caught), publication over an existing index,
 * strict mode, and the galleries' contents. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog_store.h"
#include "harness.h"
#include "embedding_space.h"
#include "index_dir.h"
#include "index_fake_embedder.h"
#include "vector_index.h"

static char dir[] = "/tmp/tl_test_index_dir_XXXXXX";
static char catalog[300], out[300];

/* A 2x2 binary PNG (8-bit RGB) with pixel values from seed, written with the bytes below. */
static void write_png(const char *path, int seed);

static int n_issues;
static void count_issue(int line, const char *message, void *ctx) {
    printf("# line %d: %s\n", line, message);
    n_issues++;
}

static index_build_stats last_stats;

static tl_status build(const char *factory, int strict) {
    index_build_opts o = {.catalog = catalog,
                          .out_dir = out,
                          .factory = factory,
                          .strict = strict,
                          .batch = 3,
                          .n_threads = 1,
                          .model_checksum = "abc",
                          .capabilities = "clip-image,clip-text",
                          .embedder = &FAKE_EMBEDDER,
                          .on_issue = count_issue};
    tl_error err = {0};
    n_issues = 0;
    last_stats = (index_build_stats){-1, -1, -1, -1};
    tl_status st = index_build(&o, &last_stats, &err);
    if (st) printf("# build: %s\n", err.message);
    return st;
}

TEST(build_and_verify) {
    REQUIRE(!build(NULL, 0));
    CHECK(n_issues == 1); /* the missing image */
    CHECK(last_stats.products == 9 && last_stats.embedded == 9);
    CHECK(last_stats.embed_s >= 0 && last_stats.index_s >= 0);
    index_manifest m;
    tl_error err;
    CHECKF(!index_dir_verify(out, &m, &err), "%s", err.message);
    CHECK(m.n_products == 9 && m.dim == FAKE_EMBED_DIM && !strcmp(m.factory, "IDMap2,Flat"));
    CHECK(m.gallery_counts[GALLERY_XMR_IMAGE] == 9 && m.gallery_counts[GALLERY_XMR_TEXT] == 9);
    CHECK(!strcmp(m.model_checksum, "abc") && m.format_version == INDEX_FORMAT_VERSION);
    char path[400];
    snprintf(path, sizeof path, "%s.building", out);
    CHECK(access(path, F_OK) != 0);
    /* The image gallery finds each product's own image first, within its category. */
    vector_index *ix;
    snprintf(path, sizeof path, "%s/xmr_image.gallery", out);
    REQUIRE(!vector_index_load(&ix, path, VECTOR_INDEX_READ_ONLY, 1, &err));
    tl_image img;
    snprintf(path, sizeof path, "%s/img4.png", dir);
    REQUIRE(!img_load_file(path, NULL, &img, &err));
    float q[FAKE_EMBED_DIM], s[3];
    int64_t ids[3];
    fake_embed_images(NULL, SPACE_XMR, &img, 1, q, &err);
    CHECK(!vector_index_search(ix, q, 1, 3, "shoes", s, ids, &err));
    CHECK(ids[0] == 104 && s[0] > 0.999f);
    vector_index_free(ix);
    /* The TGIR gallery holds the images' TGIR-space vectors, not their XMR ones. */
    snprintf(path, sizeof path, "%s/tgir_target.gallery", out);
    REQUIRE(!vector_index_load(&ix, path, VECTOR_INDEX_READ_ONLY, 1, &err));
    CHECK(!vector_index_search(ix, q, 1, 1, "shoes", s, ids, &err) && s[0] < 0.999f);
    fake_embed_images(NULL, SPACE_TGIR, &img, 1, q, &err);
    CHECK(!vector_index_search(ix, q, 1, 3, "shoes", s, ids, &err));
    CHECK(ids[0] == 104 && s[0] > 0.999f);
    vector_index_free(ix);
    img_free(&img);
}

/* The model embedder puts each gallery in its task's space when the checkpoint has the task. */
TEST(space_embedder_uses_task_spaces) {
    char model_dir[400], path[500];
    snprintf(model_dir, sizeof model_dir, "%s/tailor-tiny", th_testdata());
    tl_model *m;
    tl_error err;
    REQUIRE(!tl_model_open(&m, model_dir, NULL, &err));
    index_embedder e = space_embedder(m);
    CHECK(e.distinct_spaces && e.dim == tl_model_get_info(m)->projection_dim);
    char caps[64];
    space_capabilities(m, caps, sizeof caps);
    CHECKF(!strcmp(caps, "xmr-image,tgir-image,xmr-text"), "%s", caps);
    snprintf(path, sizeof path, "%s/img4.png", dir);
    tl_image img;
    REQUIRE(!img_load_file(path, NULL, &img, &err));
    float got[2][256], want[2][256];
    REQUIRE(e.dim <= 256);
    for (int space = 0; space < SPACE_COUNT; space++) {
        tl_task task = space == SPACE_TGIR ? TL_TASK_TGIR : TL_TASK_XMR;
        CHECK(!e.embed_images(e.ctx, (embedding_space)space, &img, 1, got[space], &err));
        CHECK(!tl_embed_images_task(m, task, &img, 1, want[space], &err));
        CHECK(!memcmp(got[space], want[space], e.dim * sizeof(float)));
    }
    CHECK(memcmp(got[0], got[1], e.dim * sizeof(float)) != 0);
    img_free(&img);
    tl_model_close(m);
}

TEST(verify_catches_tampering) {
    tl_error err;
    char path[400];
    snprintf(path, sizeof path, "%s/xmr_text.gallery", out);
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    CHECK(index_dir_verify(out, NULL, &err) == TL_ERR_FORMAT && strstr(err.message, "xmr_text"));
    unlink(path);
    CHECK(index_dir_verify(out, NULL, &err) != TL_OK);
}

TEST(rebuild_replaces_published_index) {
    REQUIRE(!build("IVF2,Flat", 0));
    index_manifest m;
    tl_error err;
    CHECKF(!index_dir_verify(out, &m, &err), "%s", err.message);
    CHECK(!strcmp(m.factory, "IVF2,Flat"));
    CHECK(build(NULL, 1) == TL_ERR_FORMAT); /* strict: the missing image is fatal */
    CHECK(!index_dir_verify(out, &m, &err) && !strcmp(m.factory, "IVF2,Flat"));
}

/* A build killed while creating its checkpoint leaves a partial header; --resume restarts. */
TEST(resume_over_a_partial_checkpoint_header) {
    char work[400], path[500];
    snprintf(work, sizeof work, "%s.building", out);
    snprintf(path, sizeof path, "%s/checkpoint.bin", work);
    CHECK(mkdir(work, 0755) == 0);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs("TLCK", f);
    fclose(f);
    index_build_opts o = {.catalog = catalog,
                          .out_dir = out,
                          .resume = 1,
                          .batch = 3,
                          .n_threads = 1,
                          .model_checksum = "abc",
                          .embedder = &FAKE_EMBEDDER};
    tl_error err = {0};
    CHECKF(!index_build(&o, NULL, &err), "%s", err.message);
    CHECK(!index_dir_verify(out, NULL, &err) && access(work, F_OK) != 0);
}

static void write_png(const char *path, int seed) {
    /* Uncompressed-deflate PNG of 2x2 RGB pixels; CRCs and Adler computed here. */
    uint8_t raw[2 * (1 + 6)];
    for (int y = 0; y < 2; y++) {
        raw[y * 7] = 0;
        for (int i = 0; i < 6; i++) raw[y * 7 + 1 + i] = (uint8_t)(seed * 37 + y * 11 + i * 23);
    }
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < sizeof raw; i++) a = (a + raw[i]) % 65521, b = (b + a) % 65521;
    uint8_t idat[2 + 5 + sizeof raw + 4] = {0x78, 0x01, 0x01, sizeof raw, 0, (uint8_t) ~sizeof raw,
                                            0xff};
    memcpy(idat + 7, raw, sizeof raw);
    uint32_t adler = b << 16 | a;
    for (int i = 0; i < 4; i++) idat[7 + sizeof raw + i] = (uint8_t)(adler >> (24 - 8 * i));
    uint8_t ihdr[13] = {0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0};
    FILE *f = fopen(path, "wb");
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    const char *types[3] = {"IHDR", "IDAT", "IEND"};
    const uint8_t *data[3] = {ihdr, idat, NULL};
    uint32_t lens[3] = {sizeof ihdr, sizeof idat, 0};
    for (int c = 0; c < 3; c++) {
        uint8_t len_be[4] = {lens[c] >> 24, lens[c] >> 16, lens[c] >> 8, lens[c]};
        fwrite(len_be, 1, 4, f);
        uint32_t crc = 0xffffffffu;
        uint8_t buf[64];
        memcpy(buf, types[c], 4);
        if (lens[c]) memcpy(buf + 4, data[c], lens[c]);
        for (uint32_t i = 0; i < 4 + lens[c]; i++) {
            crc ^= buf[i];
            for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
        }
        crc ^= 0xffffffffu;
        fwrite(buf, 1, 4 + lens[c], f);
        uint8_t crc_be[4] = {crc >> 24, crc >> 16, crc >> 8, crc};
        fwrite(crc_be, 1, 4, f);
    }
    fclose(f);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    snprintf(catalog, sizeof catalog, "%s/catalog.jsonl", dir);
    snprintf(out, sizeof out, "%s/index", dir);
    FILE *f = fopen(catalog, "w");
    const char *categories[3] = {"dresses", "shoes", "bags"};
    for (int i = 0; i < 10; i++) {
        char png[400];
        snprintf(png, sizeof png, "%s/img%d.png", dir, i);
        if (i != 7) write_png(png, i);
        fprintf(
            f, "{\"id\": %d, \"title\": \"t%d\", \"category\": \"%s\", \"image\": \"img%d.png\"}\n",
            100 + i, i, categories[i % 3], i);
    }
    fclose(f);
    RUN(build_and_verify);
    RUN(space_embedder_uses_task_spaces);
    RUN(verify_catches_tampering);
    RUN(rebuild_replaces_published_index);
    RUN(resume_over_a_partial_checkpoint_header);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd), th_done();
}
