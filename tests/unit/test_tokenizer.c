/* Tests of the CLIP tokenizer against the reference vectors: clip-tiny's 47 tokenizer cases,
 * tailor-tiny's texts and captions, the decoder, bad input and bad vocabulary files. */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "html_entities.h"
#include "safetensors.h"
#include "test_util.h"
#include "tokenizer.h"

#define CONTEXT_LEN 77

static tl_tokenizer *tok;
static json_t *clip_cases; /* clip-tiny expected.json tokenizer.cases */
static json_t *tailor_expected;
static st_file *tailor_inputs; /* tailor-tiny inputs.safetensors */

static char *testdata_path(const char *rel) {
    static char path[4][4096];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", th_testdata(), rel);
    return p;
}

static json_t *load_json(const char *rel) {
    json_error_t jerr;
    json_t *j = json_load_file(testdata_path(rel), 0, &jerr);
    if (!j) printf("# cannot read %s: %s\n", rel, jerr.text);
    return j;
}

static const char *case_text(json_t *c, size_t *len) {
    json_t *t = json_object_get(c, "text");
    *len = json_string_length(t);
    return json_string_value(t);
}

/* Whether ids[0..n) equals the JSON integer array `expected`. */
static bool ids_equal(const int32_t *ids, int n, json_t *expected) {
    if ((size_t)n != json_array_size(expected)) return false;
    for (int i = 0; i < n; i++)
        if (ids[i] != json_integer_value(json_array_get(expected, (size_t)i))) return false;
    return true;
}

/* Pads ids[0..n) with 0 to len, as the reference input_ids. */
static void pad_ids(int32_t *ids, int n, int len) {
    for (int i = n; i < len; i++) ids[i] = 0;
}

TEST(html_entity_table_is_sorted_and_complete) {
    CHECK(html_named_entity_count == 2231); /* Python's html.entities.html5 */
    for (size_t i = 1; i < html_named_entity_count; i++)
        CHECKF(strcmp(html_named_entities[i - 1].name, html_named_entities[i].name) < 0,
               "entry %zu", i);
    for (size_t i = 1; i < html_charref_remap_count; i++)
        CHECK(html_charref_remaps[i - 1].code < html_charref_remaps[i].code);
    for (size_t i = 1; i < html_charref_dropped_count; i++)
        CHECK(html_charref_dropped[i - 1] < html_charref_dropped[i]);
}

TEST(vocabulary_sizes_and_special_ids) {
    REQUIRE(tok);
    CHECK(tok_vocab_size(tok) == 49408);
    CHECK(tok_sot_id(tok) == 49406);
    CHECK(tok_eot_id(tok) == 49407);
}

TEST(clip_tiny_clean_text) {
    REQUIRE(tok && json_array_size(clip_cases) == 47);
    size_t i;
    json_t *c;
    json_array_foreach(clip_cases, i, c) {
        size_t len;
        const char *text = case_text(c, &len);
        tl_error err;
        char *clean = tok_clean_text(text, len, &err);
        const char *want = json_string_value(json_object_get(c, "clean_text"));
        CHECKF(clean && strcmp(clean, want) == 0, "case %zu \"%s\": got \"%s\" want \"%s\"", i,
               text, clean ? clean : err.message, want);
        free(clean);
    }
}

TEST(clip_tiny_ids) {
    REQUIRE(tok && json_array_size(clip_cases) == 47);
    size_t i;
    json_t *c;
    json_array_foreach(clip_cases, i, c) {
        size_t len;
        const char *text = case_text(c, &len);
        int32_t *ids = NULL;
        int n = 0;
        tl_error err;
        tl_status st = tok_encode_all(tok, text, len, &ids, &n, &err);
        CHECKF(st == TL_OK && ids_equal(ids, n, json_object_get(c, "ids")),
               "case %zu \"%s\": %d ids, want %zu", i, text, n,
               json_array_size(json_object_get(c, "ids")));
        free(ids);
    }
}

/* The pooling position: the first position holding the highest id. */
static int eos_position(const int32_t *ids, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (ids[i] > ids[best]) best = i;
    return best;
}

TEST(clip_tiny_input_ids_truncation_and_eos) {
    REQUIRE(tok && json_array_size(clip_cases) == 47);
    size_t i;
    json_t *c;
    int truncated_cases = 0;
    json_array_foreach(clip_cases, i, c) {
        size_t len;
        const char *text = case_text(c, &len);
        int32_t ids[CONTEXT_LEN];
        int n = 0;
        tl_error err;
        tl_status st = tok_encode(tok, text, len, CONTEXT_LEN, ids, &n, &err);
        pad_ids(ids, n, CONTEXT_LEN);
        bool truncated = json_is_true(json_object_get(c, "truncated"));
        truncated_cases += truncated;
        CHECKF(st == TL_OK && ids_equal(ids, CONTEXT_LEN, json_object_get(c, "input_ids")),
               "case %zu \"%s\": input_ids differ", i, text);
        CHECKF(n == json_integer_value(json_object_get(c, "num_tokens")),
               "case %zu \"%s\": %d tokens", i, text, n);
        CHECKF(truncated == (json_integer_value(json_object_get(c, "num_ids")) > CONTEXT_LEN),
               "case %zu \"%s\": truncated flag", i, text);
        CHECKF(eos_position(ids, CONTEXT_LEN) ==
                   json_integer_value(json_object_get(c, "eos_index")),
               "case %zu \"%s\": eos at %d", i, text, eos_position(ids, CONTEXT_LEN));
    }
    CHECK(truncated_cases == 2); /* boundary-78 and the long paragraph */
}

/* Checks that the texts tokenize to the rows of I64 tensor `name` [rows, cols] of inputs. */
static void check_tokenized_rows(st_file *inputs, const char *name, json_t *texts, int cols) {
    const st_tensor *t = st_find(inputs, name);
    REQUIRE(t && t->ndim == 2 && t->shape[0] == (int64_t)json_array_size(texts) &&
            t->shape[1] == cols);
    int64_t *want = malloc((size_t)st_numel(t) * sizeof *want);
    REQUIRE(want);
    st_to_i64(t, want);
    for (size_t r = 0; r < json_array_size(texts); r++) {
        const char *text = json_string_value(json_array_get(texts, r));
        int32_t ids[CONTEXT_LEN];
        int n = 0;
        tl_error err;
        CHECK(tok_encode(tok, text, strlen(text), cols, ids, &n, &err) == TL_OK);
        pad_ids(ids, n, cols);
        bool same = true;
        for (int k = 0; k < cols; k++) same &= ids[k] == want[r * (size_t)cols + (size_t)k];
        CHECKF(same, "%s row %zu \"%s\"", name, r, text);
    }
    free(want);
}

TEST(tailor_tiny_texts_and_captions) {
    REQUIRE(tok && tailor_expected && tailor_inputs);
    json_t *in = json_object_get(tailor_expected, "inputs");
    check_tokenized_rows(tailor_inputs, "input_ids_real", json_object_get(in, "texts"),
                         CONTEXT_LEN);
    check_tokenized_rows(tailor_inputs, "fic_ids_real", json_object_get(in, "caption_texts"), 10);
}

/* Decodes real ids and compares with want. */
static void check_decode(const int32_t *ids, int n, const char *want, const char *what) {
    char out[4096];
    tl_error err;
    tl_status st = tok_decode(tok, ids, n, out, sizeof out, &err);
    CHECKF(st == TL_OK && strcmp(out, want) == 0, "%s: got \"%s\" want \"%s\"", what,
           st == TL_OK ? out : err.message, want);
}

TEST(decode_round_trips_plain_phrases) {
    REQUIRE(tok);
    static const char *const phrases[] = {
        "a photo of a red summer dress", "navy slim fit blazer with gold buttons", "x",
        "supercalifragilisticexpialidocious", "oversized cashmere turtleneck sweater in oatmeal"};
    for (size_t i = 0; i < sizeof phrases / sizeof *phrases; i++) {
        int32_t *ids = NULL;
        int n = 0;
        tl_error err;
        REQUIRE(tok_encode_all(tok, phrases[i], strlen(phrases[i]), &ids, &n, &err) == TL_OK);
        char want[256];
        snprintf(want, sizeof want, "%s ", phrases[i]); /* every word ends in "</w>" */
        check_decode(ids, n, want, phrases[i]);
        free(ids);
    }
}

TEST(decode_tailor_tiny_captions) {
    REQUIRE(tok && tailor_expected && tailor_inputs);
    const st_tensor *map_t = st_find(tailor_inputs, "vocab_map");
    REQUIRE(map_t && st_numel(map_t) == 512);
    int64_t vocab_map[512];
    st_to_i64(map_t, vocab_map);
    json_t *captions = json_object_get(tailor_expected, "captions");
    json_t *ids = json_object_get(captions, "ids"), *texts = json_object_get(captions, "text");
    CHECK(json_array_size(ids) == 4 && json_array_size(texts) == 4);
    for (size_t r = 0; r < json_array_size(ids); r++) {
        json_t *row = json_array_get(ids, r);
        int32_t real[64];
        int n = 0;
        for (size_t k = 0; k < json_array_size(row) && n < 64; k++) {
            json_int_t c = json_integer_value(json_array_get(row, k));
            if (c >= 0 && c < 512) real[n++] = (int32_t)vocab_map[c];
        }
        char what[32];
        snprintf(what, sizeof what, "caption %zu", r);
        check_decode(real, n, json_string_value(json_array_get(texts, r)), what);
    }
}

TEST(decode_bad_ids_small_buffers_and_broken_utf8) {
    REQUIRE(tok);
    char out[64];
    tl_error err;
    int32_t bad[] = {49406, 49408, 49407};
    CHECK(tok_decode(tok, bad, 3, out, sizeof out, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "49408") != NULL);
    int32_t negative[] = {-1};
    CHECK(tok_decode(tok, negative, 1, out, sizeof out, &err) == TL_ERR_INVALID);
    int32_t *ids;
    int n;
    REQUIRE(tok_encode_all(tok, "red dress", 9, &ids, &n, &err) == TL_OK);
    CHECK(tok_decode(tok, ids, n, out, 10, &err) == TL_ERR_LIMIT); /* "red dress " + NUL = 11 */
    CHECK(tok_decode(tok, ids, n, out, 11, &err) == TL_OK && strcmp(out, "red dress ") == 0);
    CHECK(tok_decode(tok, ids, 0, out, 1, &err) == TL_OK && out[0] == '\0');
    free(ids);
    /* ids 0..255 of vocab.json are the byte symbols in byte-table order: 127 = "Ã" (byte 0xC3),
     * 358 = "©</w>" (0xA9 + "</w>"); 320 = "a</w>". Expected strings from openai's decoder. */
    int32_t e_acute[] = {127, 358}, lone[] = {127, 127}, broken[] = {127, 320};
    check_decode(e_acute, 2, "\xC3\xA9 ", "e acute from its two bytes");
    check_decode(lone, 2, "\xEF\xBF\xBD\xEF\xBF\xBD", "two lone lead bytes");
    check_decode(broken, 2,
                 "\xEF\xBF\xBD"
                 "a ",
                 "lead byte before ASCII");
}

static void check_invalid_utf8(const char *text, size_t len, size_t offset, const char *what) {
    tl_error err;
    int32_t *ids = NULL;
    int n = 0;
    char want[64];
    snprintf(want, sizeof want, "byte offset %zu", offset);
    CHECKF(tok_encode_all(tok, text, len, &ids, &n, &err) == TL_ERR_INVALID &&
               strstr(err.message, want),
           "%s: %s", what, err.message);
    CHECK(ids == NULL && n == 0);
    CHECK(tok_clean_text(text, len, &err) == NULL && err.code == TL_ERR_INVALID);
}

TEST(bad_text_is_refused) {
    REQUIRE(tok);
    check_invalid_utf8("ab\x80", 3, 2, "lone continuation byte");
    check_invalid_utf8("a\xC0\xAF", 3, 1, "overlong slash");
    check_invalid_utf8("\xE0\x80\xAF", 3, 0, "overlong 3-byte");
    check_invalid_utf8("xy\xED\xA0\x80", 5, 2, "UTF-16 surrogate");
    check_invalid_utf8("abc\xE2\x82", 5, 3, "truncated sequence");
    check_invalid_utf8("\xF4\x90\x80\x80", 4, 0, "beyond U+10FFFF");
    check_invalid_utf8("\xFF", 1, 0, "0xFF byte");
    size_t big = 1u << 20;
    char *text = malloc(big);
    REQUIRE(text);
    memset(text, 'a', big);
    tl_error err;
    int32_t ids[CONTEXT_LEN];
    int n = -1;
    CHECK(tok_encode(tok, text, big, CONTEXT_LEN, ids, &n, &err) == TL_ERR_LIMIT && n == 0);
    CHECKF(strstr(err.message, "text too long (1048576 bytes, limit 65536)"), "%s", err.message);
    CHECK(tok_encode(tok, text, TOK_MAX_TEXT_BYTES + 1, CONTEXT_LEN, ids, &n, &err) ==
          TL_ERR_LIMIT);
    CHECK(tok_encode(tok, text, TOK_MAX_TEXT_BYTES, CONTEXT_LEN, ids, &n, &err) == TL_OK);
    CHECK(n == CONTEXT_LEN && ids[CONTEXT_LEN - 1] == tok_eot_id(tok));
    free(text);
    CHECK(tok_encode(tok, "a", 1, 1, ids, &n, &err) == TL_ERR_INVALID);
}

TEST(empty_text_is_sot_eot) {
    REQUIRE(tok);
    int32_t ids[CONTEXT_LEN];
    int n = 0;
    tl_error err;
    CHECK(tok_encode(tok, "", 0, CONTEXT_LEN, ids, &n, &err) == TL_OK && n == 2);
    CHECK(ids[0] == tok_sot_id(tok) && ids[1] == tok_eot_id(tok));
    CHECK(tok_encode(tok, NULL, 0, CONTEXT_LEN, ids, &n, &err) == TL_OK && n == 2);
}

/* Writes text to DIR/name and returns the path (static storage, one at a time per name). */
static const char *write_temp(const char *dir, const char *name, const char *text) {
    static char path[2][4096];
    char *p = path[strcmp(name, "vocab.json") == 0 ? 0 : 1];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    tu_write_text(p, text);
    return p;
}

/* Expects tok_load(vocab, merges) to fail with `code` and a message containing `needle`. */
static void check_load_fails(const char *vocab, const char *merges, tl_status code,
                             const char *needle, const char *what) {
    tl_tokenizer *t = (tl_tokenizer *)1;
    tl_error err;
    tl_status st = tok_load(&t, vocab, merges, &err);
    CHECKF(st == code && t == NULL && strstr(err.message, needle), "%s: status %d, \"%s\"", what,
           st, err.message);
}

TEST(bad_vocabulary_files_are_named) {
    char dir[256];
    REQUIRE(!tu_make_temp_dir(dir, sizeof dir, "test_tokenizer"));
    char real_vocab[4096], real_merges[4096];
    snprintf(real_vocab, sizeof real_vocab, "%s", testdata_path("clip-vocab/vocab.json"));
    snprintf(real_merges, sizeof real_merges, "%s", testdata_path("clip-vocab/merges.txt"));
    check_load_fails("/nonexistent/vocab.json", real_merges, TL_ERR_IO, "/nonexistent/vocab.json",
                     "missing vocab");
    check_load_fails(real_vocab, "/nonexistent/merges.txt", TL_ERR_IO, "/nonexistent/merges.txt",
                     "missing merges");
    static const char *const garbled_vocabs[] = {"{\"a\": 0, \"b\": 1",
                                                 "[1, 2]",
                                                 "{\"a\": 0, \"a\": 1}",
                                                 "{\"a\": 0, \"b\": 0}",
                                                 "{\"a\": 5}",
                                                 "{\"a\": -1}",
                                                 "{\"a\\u12\": 0}",
                                                 "{\"a\": 0} x",
                                                 "",
                                                 "{\"a\": 0}"};
    for (size_t i = 0; i < sizeof garbled_vocabs / sizeof *garbled_vocabs; i++) {
        const char *path = write_temp(dir, "vocab.json", garbled_vocabs[i]);
        char what[64];
        snprintf(what, sizeof what, "garbled vocab %zu", i);
        check_load_fails(path, real_merges, TL_ERR_FORMAT, path, what);
    }
    static const char *const garbled_merges[] = {"#version: 0.2\ni n\nt\n", "i n\n\xE2\x98\x83 x\n",
                                                 "i  n\n", "i n x\n"};
    for (size_t i = 0; i < sizeof garbled_merges / sizeof *garbled_merges; i++) {
        const char *path = write_temp(dir, "merges.txt", garbled_merges[i]);
        char what[64], where[4200];
        snprintf(what, sizeof what, "garbled merges %zu", i);
        snprintf(where, sizeof where, "%s:", path);
        check_load_fails(real_vocab, path, TL_ERR_FORMAT, where, what);
    }
    tu_remove_tree(dir);
}

/* Encodes every clip-tiny case and counts mismatches; run from several threads at once. */
static void *encode_all_cases(void *arg) {
    int *mismatches = arg;
    for (int round = 0; round < 20; round++) {
        size_t i;
        json_t *c;
        json_array_foreach(clip_cases, i, c) {
            size_t len;
            const char *text = case_text(c, &len);
            int32_t *ids = NULL;
            int n = 0;
            if (tok_encode_all(tok, text, len, &ids, &n, NULL) != TL_OK ||
                !ids_equal(ids, n, json_object_get(c, "ids")))
                (*mismatches)++;
            free(ids);
        }
    }
    return NULL;
}

TEST(concurrent_encoding_matches) {
    REQUIRE(tok && clip_cases);
    pthread_t threads[4];
    int mismatches[4] = {0};
    for (int t = 0; t < 4; t++)
        REQUIRE(pthread_create(&threads[t], NULL, encode_all_cases, &mismatches[t]) == 0);
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        CHECKF(mismatches[t] == 0, "thread %d: %d mismatches", t, mismatches[t]);
    }
}

int main(void) {
    tl_error err;
    if (tok_load_dir(&tok, testdata_path("clip-vocab"), &err) != TL_OK)
        printf("# tok_load_dir: %s\n", err.message);
    json_t *clip = load_json("clip-tiny/expected.json");
    clip_cases = json_object_get(json_object_get(clip, "tokenizer"), "cases");
    tailor_expected = load_json("tailor-tiny/expected.json");
    if (st_open(&tailor_inputs, testdata_path("tailor-tiny/inputs.safetensors"), &err) != TL_OK)
        printf("# tailor-tiny inputs: %s\n", err.message);
    RUN(html_entity_table_is_sorted_and_complete);
    RUN(vocabulary_sizes_and_special_ids);
    RUN(clip_tiny_clean_text);
    RUN(clip_tiny_ids);
    RUN(clip_tiny_input_ids_truncation_and_eos);
    RUN(tailor_tiny_texts_and_captions);
    RUN(decode_round_trips_plain_phrases);
    RUN(decode_tailor_tiny_captions);
    RUN(decode_bad_ids_small_buffers_and_broken_utf8);
    RUN(bad_text_is_refused);
    RUN(empty_text_is_sot_eot);
    RUN(bad_vocabulary_files_are_named);
    RUN(concurrent_encoding_matches);
    tok_free(tok);
    json_decref(clip);
    json_decref(tailor_expected);
    st_close(tailor_inputs);
    return th_done();
}
