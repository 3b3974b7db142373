/* Tests of the data set loaders (trainer/dataset*.c) on fixture files written here: a JSONL
 * catalogue with triplets and transactions, a generated demo set, FashionIQ and Multi-turn
 * FashionIQ JSON, and a FashionGen HDF5 file written with the HDF5 C API; malformed inputs must
 * be reported with their file and position. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "demo_data.h"
#include "harness.h"
#include "test_util.h"

static char root[256];

static void write_text(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *slash = strchr(path + strlen(root) + 1, '/'); slash;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    tu_write_text(path, text);
}

static char *fixture(const char *rel) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", root, rel);
    return p;
}

static train_dataset_config config(int kind, const char *rel) {
    static char *categories[1] = {"dress"};
    train_dataset_config c = {.kind = kind, .path = fixture(rel), .split = "train"};
    memcpy(c.categories, categories, sizeof categories);
    c.n_categories = 1;
    return c;
}

/* Opens cfg expecting failure with a message containing each of want_a and want_b. */
static void expect_error(train_dataset_config cfg, const char *want_a, const char *want_b) {
    dataset ds;
    tl_error err = {0};
    tl_status st = dataset_open(&cfg, &ds, &err);
    CHECKF(st != TL_OK, "accepted %s", cfg.path);
    if (st == TL_OK) {
        dataset_free(&ds);
        return;
    }
    CHECKF(strstr(err.message, want_a) && strstr(err.message, want_b),
           "\"%s\" lacks \"%s\", \"%s\"", err.message, want_a, want_b);
}

static const char CATALOG[] =
    "{\"id\": 5, \"sku\": \"A-5\", \"title\": \"Red dress\", \"description\": \"A red dress.\","
    " \"category\": \"dresses\", \"subcategory\": \"dress\", \"image\": \"img/5.png\","
    " \"attributes\": {\"colour\": \"red\", \"size\": 3}}\n"
    "\n"
    "{\"id\": 7, \"title\": \"Blue shirt\", \"subcategory\": \"shirt\", \"image\": "
    "\"/abs/7.png\"}\n"
    "{\"id\": 9, \"subcategory\": \"dress\", \"image\": \"img/9.png\"}\n";

TEST(catalog_items_triplets_transactions) {
    write_text("cat/products.jsonl", CATALOG);
    write_text("cat/triplets.jsonl",
               "{\"reference\": 5, \"caption\": \"is blue\", \"target\": 7}\n");
    write_text("cat/tx.jsonl", "{\"turns\": [{\"reference\": 5, \"caption\": \"a\", \"target\": 9},"
                               " {\"reference\": 9, \"caption\": \"b\", \"target\": 7}],"
                               " \"final_target\": 7}\n");
    train_dataset_config cfg = config(TRAIN_DATA_CATALOG, "cat/products.jsonl");
    cfg.triplets = fixture("cat/triplets.jsonl");
    cfg.transactions = fixture("cat/tx.jsonl");
    dataset ds;
    tl_error err = {0};
    REQUIRE(dataset_open(&cfg, &ds, &err) == TL_OK);
    REQUIRE(ds.n_items == 3);
    const dataset_item *a = &ds.items[0], *b = &ds.items[1], *c = &ds.items[2];
    CHECK(a->id == 5 && a->product == 5 && !strcmp(a->key, "A-5"));
    CHECK(!strcmp(a->image, fixture("cat/img/5.png")) && !strcmp(b->image, "/abs/7.png"));
    CHECK(a->n_texts == 1 && !strcmp(a->texts[0], "A red dress."));
    CHECK(b->n_texts == 1 && !strcmp(b->texts[0], "Blue shirt")); /* no description: title */
    CHECK(c->n_texts == 0 && c->title == NULL);
    CHECK(a->n_attributes == 2 && !strcmp(a->attribute_names[1], "size") &&
          !strcmp(a->attribute_values[1], "3"));
    /* labels: sorted distinct subcategories */
    CHECK(ds.n_labels == 2 && !strcmp(ds.labels[0], "dress") && !strcmp(ds.labels[1], "shirt"));
    CHECK(a->label == 0 && b->label == 1 && c->label == 0);
    CHECK(dataset_find_id(&ds, 9) == 2 && dataset_find_id(&ds, 8) == -1);
    REQUIRE(ds.n_triplets == 1);
    CHECK(ds.triplets[0].reference == 0 && ds.triplets[0].target == 1);
    CHECK(ds.triplets[0].n_captions == 1 && !strcmp(ds.triplets[0].captions[0], "is blue"));
    REQUIRE(ds.n_transactions == 1 && ds.transactions[0].n_turns == 2);
    CHECK(ds.transactions[0].turns[0].target == 2 && ds.transactions[0].turns[1].reference == 2);
    CHECK(ds.transactions[0].final_target == 1);
    dataset_free(&ds);
    /* With a limit of 2 items, the triplet and the transaction that reach item 9 or 7 beyond
     * it are skipped, not errors. */
    cfg.limit = 1;
    REQUIRE(dataset_open(&cfg, &ds, &err) == TL_OK);
    CHECK(ds.n_items == 1 && ds.n_triplets == 0 && ds.n_transactions == 0);
    dataset_free(&ds);
}

TEST(catalog_errors_name_file_and_line) {
    write_text("bad/a.jsonl", "{\"id\": 1, \"image\": \"x\"}\n{\"id\": 2, \"image\": }\n");
    expect_error(config(TRAIN_DATA_CATALOG, "bad/a.jsonl"), "bad/a.jsonl:2: column", "");
    write_text("bad/b.jsonl", "{\"id\": 1}\n");
    expect_error(config(TRAIN_DATA_CATALOG, "bad/b.jsonl"),
                 "bad/b.jsonl:1:", "\"image\" is missing");
    write_text("bad/c.jsonl", "{\"id\": -1, \"image\": \"x\"}\n");
    expect_error(config(TRAIN_DATA_CATALOG, "bad/c.jsonl"),
                 "bad/c.jsonl:1:", "\"id\" must be an integer ≥ 0");
    write_text("bad/d.jsonl", "[1]\n");
    expect_error(config(TRAIN_DATA_CATALOG, "bad/d.jsonl"), "bad/d.jsonl:1:", "not a JSON object");
    write_text("bad/e.jsonl", "{\"id\": 1, \"image\": \"x\"}\n{\"id\": 1, \"image\": \"y\"}\n");
    expect_error(config(TRAIN_DATA_CATALOG, "bad/e.jsonl"), "bad/e.jsonl", "id 1 is used twice");
    write_text("bad/f.jsonl", "{\"id\": 1, \"image\": \"x\", \"title\": 3}\n");
    expect_error(config(TRAIN_DATA_CATALOG, "bad/f.jsonl"),
                 "bad/f.jsonl:1:", "\"title\" must be a string");
    write_text("bad/t.jsonl", "\n{\"reference\": 1, \"caption\": \"c\", \"target\": 99}\n");
    train_dataset_config cfg = config(TRAIN_DATA_CATALOG, "bad/f.jsonl");
    write_text("bad/f.jsonl", "{\"id\": 1, \"image\": \"x\"}\n");
    cfg.triplets = fixture("bad/t.jsonl");
    expect_error(cfg, "bad/t.jsonl:2:", "\"target\": id 99 is not in the catalogue");
    cfg.triplets = NULL;
    write_text("bad/x.jsonl", "{\"turns\": [], \"final_target\": 1}\n");
    cfg.transactions = fixture("bad/x.jsonl");
    expect_error(cfg, "bad/x.jsonl:1:", "\"turns\" must be a non-empty list");
    write_text("bad/y.jsonl",
               "{\"turns\": [{\"reference\": 1, \"target\": 1}], \"final_target\": 1}\n");
    cfg.transactions = fixture("bad/y.jsonl");
    expect_error(cfg, "bad/y.jsonl:1: turn 0:", "\"caption\" is missing");
    expect_error(config(TRAIN_DATA_CATALOG, "bad/missing.jsonl"), "bad/missing.jsonl",
                 "cannot open");
}

/* A real demo set of 10 + 10 garments from trainer/demo_data: 50 products per split, 20
 * triplets and 2 transactions per garment, 3 captions per product, 64×64 images. */
TEST(demo_set_from_the_generator) {
    demo_options opts;
    demo_default_options(&opts);
    opts.train_garments = 10, opts.test_garments = 10;
    tl_error err = {0};
    REQUIRE(demo_generate(fixture("demo"), &opts, &err) == TL_OK);
    for (int split = 0; split < 2; split++) {
        train_dataset_config cfg = config(TRAIN_DATA_DEMO, "demo");
        cfg.split = split ? "test" : "train";
        dataset ds;
        REQUIRE(dataset_open(&cfg, &ds, &err) == TL_OK);
        CHECK(ds.n_items == 50 && ds.n_triplets == 200 && ds.n_transactions == 20);
        CHECK(ds.items[0].id == (split ? 2000000 : 1000000));
        CHECK(ds.items[0].n_texts == 3 && ds.n_labels == 10);
        CHECK(ds.items[0].label >= 0 && ds.items[0].n_attributes == 5);
        tl_image img;
        REQUIRE(dataset_read_image(&ds, 49, &img, &err) == TL_OK);
        CHECK(img.width == 64 && img.height == 64);
        img_free(&img);
        dataset_free(&ds);
    }
    train_dataset_config cfg = config(TRAIN_DATA_DEMO, "demo");
    cfg.split = "val";
    expect_error(cfg, "no products in split \"val\"", "");
    tu_remove_tree(fixture("demo"));
}

TEST(fashioniq_triplets) {
    write_text("fiq/image_splits/split.dress.train.json", "[\"B01\", \"B02\", \"B03\"]");
    write_text("fiq/captions/cap.dress.train.json",
               "[{\"target\": \"B02\", \"candidate\": \"B01\", \"captions\": [\"is red\", "
               "\"is longer\"]},\n {\"target\": \"B09\", \"candidate\": \"B03\", \"captions\": "
               "[\"has dots\"]}]");
    train_dataset_config cfg = config(TRAIN_DATA_FASHIONIQ, "fiq");
    dataset ds;
    tl_error err = {0};
    REQUIRE(dataset_open(&cfg, &ds, &err) == TL_OK);
    /* B09 is only in the captions: added as a fourth item. */
    REQUIRE(ds.n_items == 4 && ds.n_triplets == 2);
    CHECK(!strcmp(ds.items[1].key, "B02") && !strcmp(ds.items[3].key, "B09"));
    CHECK(!strcmp(ds.items[0].image, fixture("fiq/images/B01.jpg")));
    CHECK(!strcmp(ds.items[0].category, "dress") && ds.items[0].label == -1);
    CHECK(ds.triplets[0].reference == 0 && ds.triplets[0].target == 1);
    CHECK(ds.triplets[0].n_captions == 2 && !strcmp(ds.triplets[0].captions[1], "is longer"));
    CHECK(ds.triplets[1].reference == 2 && ds.triplets[1].target == 3);
    dataset_free(&ds);
    write_text("fiqbad/image_splits/split.dress.train.json", "[\"B01\"]");
    write_text("fiqbad/captions/cap.dress.train.json",
               "[{\"target\": \"B01\", \"candidate\": \"B01\", \"captions\": [\"a\"]},\n"
               " {\"candidate\": \"B01\", \"captions\": [\"a\"]}]");
    expect_error(config(TRAIN_DATA_FASHIONIQ, "fiqbad"),
                 "cap.dress.train.json: record 1:", "\"target\" is missing");
    write_text("fiqbad/captions/cap.dress.train.json", "[\n {\"target\": \"B01\",,}]");
    expect_error(config(TRAIN_DATA_FASHIONIQ, "fiqbad"), "cap.dress.train.json:2:", "");
    write_text("fiqbad/image_splits/split.dress.train.json", "[\"B01\", 7]");
    expect_error(config(TRAIN_DATA_FASHIONIQ, "fiqbad"),
                 "split.dress.train.json: record 1:", "must be a string");
    write_text("fiqbad/image_splits/split.dress.train.json", "{}");
    expect_error(config(TRAIN_DATA_FASHIONIQ, "fiqbad"), "split.dress.train.json",
                 "must hold a list");
}

TEST(fashioniq_multiturn_transactions) {
    write_text("mt/dress.train.json", "[{\"target\": [\"http://t\", \"T1\"], \"reference\": ["
                                      "[\"http://a\", [\"is red\", \"shorter\"], \"R1\"],"
                                      "[\"http://b\", [\"has dots\", \"no sleeves\"], \"R2\"]]}]");
    train_dataset_config cfg = config(TRAIN_DATA_FASHIONIQ_MULTITURN, "mt");
    dataset ds;
    tl_error err = {0};
    REQUIRE(dataset_open(&cfg, &ds, &err) == TL_OK);
    REQUIRE(ds.n_items == 3 && ds.n_transactions == 1);
    const dataset_transaction *tx = &ds.transactions[0];
    REQUIRE(tx->n_turns == 2);
    /* Items in order of first mention: R1 0, R2 1, T1 2. Turn 0 leads to R2, turn 1 to T1. */
    CHECK(tx->turns[0].reference == 0 && tx->turns[0].target == 1);
    CHECK(tx->turns[1].reference == 1 && tx->turns[1].target == 2 && tx->final_target == 2);
    CHECK(!strcmp(tx->turns[1].captions[1], "no sleeves"));
    dataset_free(&ds);
    write_text("mt/dress.train.json",
               "[{\"target\": [\"http://t\", \"T1\"], \"reference\": [[\"u\", \"R1\"]]}]");
    expect_error(cfg, "dress.train.json: record 0: \"reference\"[0]:",
                 "must be a list of 3 entries ending in an asin");
    write_text("mt/dress.train.json", "[{\"target\": \"T1\", \"reference\": []}]");
    expect_error(cfg, "dress.train.json: record 0: \"target\":", "list of 2 entries");
}

/* Writes a fixed-length string column of n rows (width bytes each, from text). */
static void write_strings(hid_t file, const char *name, const char *const *text, size_t n,
                          size_t width) {
    char buf[8][16] = {{0}};
    for (size_t i = 0; i < n; i++) strncpy(buf[i], text[i], width);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, width);
    H5Tset_strpad(type, H5T_STR_NULLPAD);
    hsize_t dims[2] = {n, 1};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    char packed[8 * 16];
    for (size_t i = 0; i < n; i++) memcpy(packed + i * width, buf[i], width);
    H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed);
    H5Dclose(dset), H5Sclose(space), H5Tclose(type);
}

/* A FashionGen-shaped file: 3 rows of 2×2 images whose pixel bytes are row*12 + offset, with
 * latin-1 text (0xE9 = é). without names one of the columns; short_rows gives input_name 2. */
static void write_fashiongen(const char *path, const char *without, int short_rows) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {3, 2, 2, 3};
    unsigned char pixels[36];
    for (int i = 0; i < 36; i++) pixels[i] = (unsigned char)i;
    hid_t space = H5Screate_simple(4, dims, NULL);
    hid_t dset =
        H5Dcreate2(file, "input_image", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(dset, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, pixels);
    H5Dclose(dset), H5Sclose(space);
    const char *desc[3] = {"Caf\xe9 dress", "", "Wool coat  "};
    const char *name[3] = {"Dress", "Shoe", "Coat"};
    const char *cat[3] = {"CLOTHING", "SHOES", "CLOTHING"};
    const char *sub[3] = {"DRESSES", "SNEAKERS", "COATS"};
    if (strcmp(without, "input_description")) write_strings(file, "input_description", desc, 3, 16);
    if (strcmp(without, "input_name"))
        write_strings(file, "input_name", name, short_rows ? 2 : 3, 8);
    write_strings(file, "input_category", cat, 3, 10);
    write_strings(file, "input_subcategory", sub, 3, 10);
    int64_t ids[3] = {101, 101, 202};
    hsize_t id_dims[2] = {3, 1};
    space = H5Screate_simple(2, id_dims, NULL);
    dset = H5Dcreate2(file, "input_productID", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                      H5P_DEFAULT);
    H5Dwrite(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids);
    H5Dclose(dset), H5Sclose(space);
    H5Fclose(file);
}

TEST(fashiongen_hdf5) {
    write_fashiongen(fixture("fg.h5"), "", 0);
    train_dataset_config cfg = config(TRAIN_DATA_FASHIONGEN, "fg.h5");
    dataset ds;
    tl_error err = {0};
    REQUIRE(dataset_open(&cfg, &ds, &err) == TL_OK);
    REQUIRE(ds.n_items == 3);
    CHECK(ds.items[0].n_texts == 1 && !strcmp(ds.items[0].texts[0], "Caf\xc3\xa9 dress"));
    CHECK(ds.items[1].n_texts == 0);                   /* empty description */
    CHECK(!strcmp(ds.items[2].texts[0], "Wool coat")); /* trailing spaces dropped */
    CHECK(!strcmp(ds.items[2].title, "Coat") && !strcmp(ds.items[1].category, "SHOES"));
    CHECK(ds.items[0].product == 101 && ds.items[1].product == 101 && ds.items[2].product == 202);
    CHECK(ds.items[2].id == 2 && ds.items[2].image == NULL);
    /* labels COATS, DRESSES, SNEAKERS */
    CHECK(ds.n_labels == 3 && ds.items[0].label == 1 && ds.items[2].label == 0);
    tl_image img;
    REQUIRE(dataset_read_image(&ds, 2, &img, &err) == TL_OK);
    CHECK(img.width == 2 && img.height == 2 && img.rgb[0] == 24 && img.rgb[11] == 35);
    img_free(&img);
    CHECK(dataset_read_image(&ds, 3, &img, &err) == TL_ERR_INVALID);
    dataset_free(&ds);
    cfg.limit = 2;
    REQUIRE(dataset_open(&cfg, &ds, &err) == TL_OK);
    CHECK(ds.n_items == 2);
    dataset_free(&ds);
    write_fashiongen(fixture("fg_noname.h5"), "input_name", 0);
    expect_error(config(TRAIN_DATA_FASHIONGEN, "fg_noname.h5"), "fg_noname.h5",
                 "no dataset \"input_name\"");
    write_fashiongen(fixture("fg_short.h5"), "", 1);
    expect_error(config(TRAIN_DATA_FASHIONGEN, "fg_short.h5"), "fg_short.h5",
                 "\"input_name\" has 2 rows, input_image has 3");
    hid_t file = H5Fcreate(fixture("fg_flat.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {2, 2, 2};
    hid_t space = H5Screate_simple(3, dims, NULL);
    H5Dclose(H5Dcreate2(file, "input_image", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    H5Sclose(space), H5Fclose(file);
    expect_error(config(TRAIN_DATA_FASHIONGEN, "fg_flat.h5"), "fg_flat.h5",
                 "\"input_image\" must be rows × H × W × 3 uint8");
    write_text("not.h5", "plain text");
    expect_error(config(TRAIN_DATA_FASHIONGEN, "not.h5"), "not.h5", "cannot open as HDF5");
}

int main(void) {
    if (tu_make_temp_dir(root, sizeof root, "test_datasets")) return 1;
    RUN(catalog_items_triplets_transactions);
    RUN(catalog_errors_name_file_and_line);
    RUN(demo_set_from_the_generator);
    RUN(fashioniq_triplets);
    RUN(fashioniq_multiturn_transactions);
    RUN(fashiongen_hdf5);
    tu_remove_tree(root);
    return th_done();
}
