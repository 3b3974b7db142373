/* Tests of trainer/eval_metrics: every expected number is derived by hand in the comment above
 * its check (proto/eval.md gives the definitions). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "eval_metrics.h"
#include "harness.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* 3 queries × 4 gallery items.
 * q0 [0.9 0.1 0.5 0.3] positive {0}: best 0.9, nothing else ≥ 0.9 → rank 1.
 * q1 [0.2 0.8 0.8 0.1] positive {2}: best 0.8 ties with item 1 → counts against → rank 2.
 * q2 [0.4 0.3 0.2 0.1] positives {2, 3}: best 0.2; items 0, 1 score ≥ 0.2 → rank 3.
 * R@1 = 1/3, R@2 = 2/3, R@3 = 3/3. */
static const float RANK_SCORES[12] = {0.9f, 0.1f, 0.5f, 0.3f, 0.2f, 0.8f,
                                      0.8f, 0.1f, 0.4f, 0.3f, 0.2f, 0.1f};
static const size_t RANK_OFFSETS[4] = {0, 1, 2, 4};
static const size_t RANK_POSITIVES[4] = {0, 2, 2, 3};

static eval_retrieval rank_example(void) {
    return (eval_retrieval){.scores = RANK_SCORES,
                            .n_queries = 3,
                            .n_gallery = 4,
                            .row_stride = 4,
                            .col_stride = 1,
                            .pos_offsets = RANK_OFFSETS,
                            .positives = RANK_POSITIVES};
}

TEST(recall_ranks_with_ties_against_the_query) {
    eval_retrieval r = rank_example();
    size_t ks[4] = {1, 2, 3, 50};
    double recall[4];
    tl_error err = {0};
    REQUIRE(eval_recall_at_k(&r, ks, 4, recall, &err) == TL_OK);
    CHECK_NEAR(recall[0], 1.0 / 3, 1e-12);
    CHECK_NEAR(recall[1], 2.0 / 3, 1e-12);
    CHECK_NEAR(recall[2], 1.0, 1e-12);
    CHECK_NEAR(recall[3], 1.0, 1e-12);
    size_t rank = 0;
    CHECK(eval_best_positive_rank(&r, 1, &rank, &err) == TL_OK && rank == 2);
    CHECK(eval_best_positive_rank(&r, 2, &rank, &err) == TL_OK && rank == 3);
}

/* Excluding item 0 from q2 (as TGIR excludes the reference image) leaves only item 1 above
 * its best positive → rank 2. Excluding q0's only positive leaves it without one: an error. */
TEST(recall_excluded_items) {
    eval_retrieval r = rank_example();
    int64_t excluded[3] = {-1, -1, 0};
    r.excluded = excluded;
    size_t rank = 0;
    tl_error err = {0};
    CHECK(eval_best_positive_rank(&r, 2, &rank, &err) == TL_OK && rank == 2);
    excluded[0] = 0;
    double recall;
    size_t k = 1;
    CHECK(eval_recall_at_k(&r, &k, 1, &recall, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "query 0 has no positive"));
}

/* A positive listed twice is one item: q [0.5 0.5 0.1], positives {0, 0}: item 1 ties → 2. */
TEST(recall_duplicate_positive_counts_once) {
    const float scores[3] = {0.5f, 0.5f, 0.1f};
    const size_t offsets[2] = {0, 2}, positives[2] = {0, 0};
    eval_retrieval r = {.scores = scores,
                        .n_queries = 1,
                        .n_gallery = 3,
                        .row_stride = 3,
                        .col_stride = 1,
                        .pos_offsets = offsets,
                        .positives = positives};
    size_t rank = 0;
    CHECK(eval_best_positive_rank(&r, 0, &rank, NULL) == TL_OK && rank == 2);
}

/* A constant score matrix: every item ties with the positive, so the positive ranks last
 * (gallery of 4 → rank 4): R@3 = 0 and R@4 = 1. */
TEST(recall_constant_scores) {
    const float scores[4] = {1, 1, 1, 1};
    const size_t offsets[2] = {0, 1}, positives[1] = {2};
    eval_retrieval r = {.scores = scores,
                        .n_queries = 1,
                        .n_gallery = 4,
                        .row_stride = 4,
                        .col_stride = 1,
                        .pos_offsets = offsets,
                        .positives = positives};
    size_t ks[2] = {3, 4};
    double recall[2];
    REQUIRE(eval_recall_at_k(&r, ks, 2, recall, NULL) == TL_OK);
    CHECK(recall[0] == 0.0 && recall[1] == 1.0);
}

TEST(recall_bad_inputs) {
    eval_retrieval r = rank_example();
    size_t k = 1, zero_k = 0;
    double recall;
    tl_error err = {0};
    r.n_queries = 0;
    CHECK(eval_recall_at_k(&r, &k, 1, &recall, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "no queries"));
    r = rank_example();
    r.n_gallery = 0;
    CHECK(eval_recall_at_k(&r, &k, 1, &recall, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "empty gallery"));
    r = rank_example();
    CHECK(eval_recall_at_k(&r, &zero_k, 1, &recall, &err) == TL_ERR_INVALID);
    const size_t offsets[4] = {0, 1, 1, 2}; /* query 1 has no positives */
    r.pos_offsets = offsets;
    CHECK(eval_recall_at_k(&r, &k, 1, &recall, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "query 1 has no positive"));
    const size_t far[4] = {0, 9, 2, 3};
    r = rank_example();
    r.positives = far;
    CHECK(eval_recall_at_k(&r, &k, 1, &recall, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "positive 9 outside the gallery of 4"));
    float nan_scores[12];
    memcpy(nan_scores, RANK_SCORES, sizeof nan_scores);
    nan_scores[5] = NAN;
    r = rank_example();
    r.scores = nan_scores;
    CHECK(eval_recall_at_k(&r, &k, 1, &recall, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "NaN"));
}

/* Texts × images:
 *   t0 [0.9 0.2 0.75] → {i0}      t1 [0.3 0.8 0.7] → {i1, i2}      t2 [0.6 0.5 0.4] → {i2}
 * text→image: t0 rank 1; t1 best 0.8 rank 1; t2 best 0.4 under 0.6, 0.5 → rank 3.
 *   R@1 = 2/3, R@5 = R@10 = 1.
 * image→text (columns): i0 [0.9 0.3 0.6] → {t0} rank 1; i1 [0.2 0.8 0.5] → {t1} rank 1;
 *   i2 [0.75 0.7 0.4] → {t1, t2}: best 0.7 under t0's 0.75 → rank 2.
 *   R@1 = 2/3, R@5 = R@10 = 1. A fourth image nobody points at is left out of image→text. */
TEST(xmr_both_directions) {
    const float scores[12] = {0.9f, 0.2f, 0.75f, 0.0f, 0.3f, 0.8f,
                              0.7f, 0.0f, 0.6f,  0.5f, 0.4f, 0.0f};
    const size_t offsets[4] = {0, 1, 3, 4}, positives[4] = {0, 1, 2, 2};
    eval_xmr_result out;
    tl_error err = {0};
    REQUIRE(eval_xmr(scores, 3, 4, offsets, positives, &out, &err) == TL_OK);
    CHECK_NEAR(out.t2i[0], 2.0 / 3, 1e-12);
    CHECK_NEAR(out.t2i[1], 1.0, 1e-12);
    CHECK_NEAR(out.t2i[2], 1.0, 1e-12);
    CHECK_NEAR(out.i2t[0], 2.0 / 3, 1e-12);
    CHECK_NEAR(out.i2t[1], 1.0, 1e-12);
    CHECK(out.n_image_queries == 3);
    const size_t bad[4] = {0, 1, 3, 7};
    CHECK(eval_xmr(scores, 3, 4, offsets, bad, &out, &err) == TL_ERR_INVALID);
    CHECK(eval_xmr(scores, 0, 4, offsets, positives, &out, &err) == TL_ERR_INVALID);
}

/* 60 gallery items, one query per target position: the query's target gets score 0 and item g
 * gets score −g, except that items ahead of the target score above it. Target at rank r means
 * r − 1 items above it; ranks 1, 6, 11, 51 → R@5 = 1/4, R@10 = 2/4, R@50 = 3/4;
 * TGIR R@10 = 2/4, R@50 = 3/4. */
TEST(tgir_and_multiturn_cutoffs) {
    enum { G = 60 };
    static float scores[4 * G];
    const size_t ranks[4] = {1, 6, 11, 51};
    size_t offsets[5] = {0, 1, 2, 3, 4}, positives[4];
    for (size_t q = 0; q < 4; q++) {
        positives[q] = ranks[q] - 1;
        for (size_t g = 0; g < G; g++) scores[q * G + g] = -(float)g;
    }
    eval_retrieval r = {.scores = scores,
                        .n_queries = 4,
                        .n_gallery = G,
                        .row_stride = G,
                        .col_stride = 1,
                        .pos_offsets = offsets,
                        .positives = positives};
    eval_multiturn_result mt;
    eval_tgir_result tg;
    REQUIRE(eval_multiturn(&r, &mt, NULL) == TL_OK);
    REQUIRE(eval_tgir(&r, &tg, NULL) == TL_OK);
    CHECK_NEAR(mt.r5, 0.25, 1e-12);
    CHECK_NEAR(mt.r10, 0.5, 1e-12);
    CHECK_NEAR(mt.r50, 0.75, 1e-12);
    CHECK_NEAR(tg.r10, 0.5, 1e-12);
    CHECK_NEAR(tg.r50, 0.75, 1e-12);
}

/* predicted [0 0 1 2 2 2], truth [0 1 1 2 2 0], 4 classes (class 3 never occurs).
 * Accuracy 4/6. Class 0: TP 1, FP 1, FN 1 → F1 2/4 = 0.5. Class 1: TP 1, FP 0, FN 1 → 2/3.
 * Class 2: TP 2, FP 1, FN 0 → 4/5. Macro-F1 over the 3 present classes = (0.5 + 2/3 + 0.8)/3. */
TEST(classification_accuracy_and_macro_f1) {
    const int32_t predicted[6] = {0, 0, 1, 2, 2, 2}, truth[6] = {0, 1, 1, 2, 2, 0};
    eval_classification_result out;
    REQUIRE(eval_classification(predicted, truth, 6, 4, &out, NULL) == TL_OK);
    CHECK_NEAR(out.accuracy, 4.0 / 6, 1e-12);
    CHECK_NEAR(out.macro_f1, (0.5 + 2.0 / 3 + 0.8) / 3, 1e-12);
    CHECK(out.n_classes_present == 3);
    /* predicted [1], truth [0]: both classes present with F1 0 → macro-F1 0, accuracy 0. */
    const int32_t p1[1] = {1}, t1[1] = {0};
    REQUIRE(eval_classification(p1, t1, 1, 2, &out, NULL) == TL_OK);
    CHECK(out.macro_f1 == 0.0 && out.accuracy == 0.0 && out.n_classes_present == 2);
    tl_error err = {0};
    const int32_t out_of_range[1] = {5};
    CHECK(eval_classification(out_of_range, t1, 1, 2, &out, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "sample 0"));
    CHECK(eval_classification(p1, t1, 0, 2, &out, &err) == TL_ERR_INVALID);
}

/* argmax: the first maximum on ties; NaN never wins. */
TEST(argmax_ties_and_nan) {
    const float v[5] = {NAN, 1.0f, 3.0f, 3.0f, -1.0f};
    CHECK(eval_argmax(v, 5) == 2);
    const float all_nan[2] = {NAN, NAN};
    CHECK(eval_argmax(all_nan, 2) == 0);
}

TEST(tokenizer_rules) {
    char out[64];
    CHECK(eval_tokenize("  The T-Shirt, isn't RED!  ", out) == 4);
    CHECK(!strcmp(out, "the tshirt isnt red"));
    CHECK(eval_tokenize(" ... ", out) == 0 && out[0] == '\0');
    CHECK(eval_tokenize("Été\tbleu", out) == 2 && !strcmp(out, "Été bleu"));
}

static eval_caption_result score(const eval_caption_item *items, size_t n) {
    eval_caption_result out;
    memset(&out, 0xff, sizeof out);
    tl_error err = {0};
    CHECKF(eval_captions(items, n, &out, &err) == TL_OK, "%s", err.message);
    return out;
}

/* A caption equal to its reference (after tokenising) scores BLEU-n = 1 and ROUGE-L = 1
 * (pycocoevalcap's smoothing constants leave BLEU 1e-9 short of 1). */
TEST(captions_identical) {
    const char *r0[1] = {"the cat sat on the mat"}, *r1[1] = {"A red dress!"};
    eval_caption_item items[2] = {{"The cat sat on the mat.", r0, 1}, {"a red dress", r1, 1}};
    eval_caption_result s = score(items, 2);
    for (int n = 0; n < 4; n++) CHECK_NEAR(s.bleu[n], 1.0, 1e-8);
    CHECK_NEAR(s.rouge_l, 1.0, 1e-12);
}

/* Papineni et al. 2002: "the the the the the the the" against "the cat is on the mat" and
 * "there is a cat on the mat". "the" is clipped to its largest reference count, 2: modified
 * unigram precision 2/7. Lengths 7 vs closest reference 7 → no brevity penalty. BLEU-1 = 2/7.
 * No bigram matches: BLEU-2 = sqrt(2/7 · 1e-15/6) ≈ 6.9e-9 (pycocoevalcap's tiny constant). */
TEST(captions_bleu_papineni) {
    const char *refs[2] = {"the cat is on the mat", "there is a cat on the mat"};
    eval_caption_item item = {"the the the the the the the", refs, 2};
    eval_caption_result s = score(&item, 1);
    CHECK_NEAR(s.bleu[0], 2.0 / 7, 1e-9);
    CHECK_NEAR(s.bleu[1], sqrt(2.0 / 7 * 1e-15 / 6), 1e-12);
}

/* "the cat" against "the cat sat on the mat": all unigrams and bigrams match, but the
 * candidate is 2 words against 6 → brevity penalty exp(1 − 6/2) = e^−2 on every BLEU-n.
 * BLEU-1 = BLEU-2 = e^−2. */
TEST(captions_bleu_brevity_penalty) {
    const char *refs[1] = {"the cat sat on the mat"};
    eval_caption_item item = {"the cat", refs, 1};
    eval_caption_result s = score(&item, 1);
    CHECK_NEAR(s.bleu[0], exp(-2.0), 1e-9);
    CHECK_NEAR(s.bleu[1], exp(-2.0), 1e-9);
}

/* BLEU is corpus-level: counts are summed before dividing. Item 1 "a b c d" / "a b c d" and
 * item 2 "a b x y" / "a b c d": matches 4+2 of 8 unigrams, 3+1 of 6 bigrams, 2+0 of 4
 * trigrams, 1+0 of 2 4-grams. BLEU-4 = (6/8 · 4/6 · 2/4 · 1/2)^(1/4) = (1/8)^(1/4) = 2^(−3/4)
 * ≈ 0.5946 (the mean of per-item BLEU-4 would be ≈ 0.5). BLEU-1 = 6/8. */
TEST(captions_bleu_corpus_level) {
    const char *refs[1] = {"a b c d"};
    eval_caption_item items[2] = {{"a b c d", refs, 1}, {"a b x y", refs, 1}};
    eval_caption_result s = score(items, 2);
    CHECK_NEAR(s.bleu[3], pow(2.0, -0.75), 1e-9);
    CHECK_NEAR(s.bleu[0], 0.75, 1e-9);
}

/* Closest reference length, shorter on ties: candidate of 4 words, references of 2 and 6
 * words are both 2 away; pycocoevalcap picks 2 → no penalty, BLEU-4 = 1 (all n-grams match).
 * Picking 6 would give exp(1 − 6/4) ≈ 0.61. */
TEST(captions_bleu_closest_length_tie) {
    const char *refs[2] = {"a b", "a b c d e f"};
    eval_caption_item item = {"a b c d", refs, 2};
    CHECK_NEAR(score(&item, 1).bleu[3], 1.0, 1e-8);
}

/* ROUGE-L: "a b c d" vs "a c e": LCS "a c" = 2, P = 2/4, R = 2/3;
 * F = (1 + 1.2²)·P·R / (R + 1.2²·P) = 2.44·(1/3) / (2/3 + 0.72) = 2.44/4.16. */
TEST(captions_rouge_l) {
    const char *refs[1] = {"a c e"};
    eval_caption_item item = {"a b c d", refs, 1};
    CHECK_NEAR(score(&item, 1).rouge_l, 2.44 / 4.16, 1e-12);
}

/* pycocoevalcap takes the best precision and the best recall over references separately:
 * "a b c" vs "a b c d e f" (P 1, R 1/2) and "a" (P 1/3, R 1) → P = R = 1 → ROUGE-L 1.
 * No common word → 0; an empty (all punctuation) candidate → 0. */
TEST(captions_rouge_l_multi_reference_and_empty) {
    const char *refs[2] = {"a b c d e f", "a"};
    eval_caption_item item = {"a b c", refs, 2};
    CHECK_NEAR(score(&item, 1).rouge_l, 1.0, 1e-12);
    const char *other[1] = {"x y"};
    eval_caption_item none[2] = {{"a b", other, 1}, {"?!", other, 1}};
    CHECK(score(none, 2).rouge_l == 0.0);
}

/* CIDEr-D on 2 images. Image A: "a b" / ref "a b"; image B: "c d" / ref "c e".
 * Each reference n-gram occurs in 1 of 2 images: idf = ln 2 − ln 1 = ln 2; n-grams in no
 * reference (d, "c d") use df = max(1, 0) → idf ln 2 as well. Let L = ln 2.
 * A: n=1: vectors (a L, b L) both sides: Σ min·ref = 2L², norms √2·L each → 1.
 *    n=2: ("a b" L) both sides → 1. n=3,4: empty → 0. Lengths equal → no penalty.
 *    score = 10 · (1 + 1 + 0 + 0)/4 = 5.
 * B: n=1: hyp (c L, d L), ref (c L, e L): L² / (√2L·√2L) = 1/2. n=2: "c d" ≠ "c e" → 0.
 *    score = 10 · (1/2)/4 = 1.25.
 * CIDEr-D = (5 + 1.25)/2 = 3.125. */
TEST(captions_cider_two_images) {
    const char *ra[1] = {"a b"}, *rb[1] = {"c e"};
    eval_caption_item items[2] = {{"a b", ra, 1}, {"c d", rb, 1}};
    CHECK_NEAR(score(items, 2).cider_d, 3.125, 1e-12);
}

/* CIDEr-D with a shared word and a length penalty. A: "a b" / "a b"; B: "a c" / "a c d".
 * "a" is in both images' references: idf ln 2 − ln 2 = 0. All else: idf L = ln 2.
 * A: n=1: hyp (a 0, b L) = ref → L²/(L·L) = 1; n=2: 1; score 10·2/4 = 5.
 * B: n=1: hyp (a 0, c L), ref (a 0, c L, d L): L²/(L·√2L) = 1/√2; n=2: hyp ("a c" L), ref
 *    ("a c" L, "c d" L) → 1/√2; n=3: hyp empty → 0. pycocoevalcap's length is the bigram
 *    count: 1 vs 2 → δ = −1 → penalty e^(−1/72) (σ = 6).
 *    score = 10 · (2/√2) · e^(−1/72) / 4 = 2.5·√2·e^(−1/72).
 * CIDEr-D = (5 + 2.5·√2·e^(−1/72))/2 ≈ 4.24338. */
TEST(captions_cider_idf_and_length_penalty) {
    const char *ra[1] = {"a b"}, *rb[1] = {"a c d"};
    eval_caption_item items[2] = {{"a b", ra, 1}, {"a c", rb, 1}};
    double expected = (5 + 2.5 * sqrt(2.0) * exp(-1.0 / 72)) / 2;
    CHECK_NEAR(score(items, 2).cider_d, expected, 1e-12);
}

/* CIDEr-D clips the candidate's TF-IDF at the reference's. A: "x x" / "x"; B: "y" / "y";
 * every idf is L = ln 2. A: n=1: hyp (x 2L), ref (x L): min(2L, L)·L = L², norms 2L and L
 * → 1/2 (unclipped it would be 1). n=2: ref has no bigram → 0. Bigram counts 1 vs 0 →
 * penalty e^(−1/72). score = 10 · (1/2)·e^(−1/72)/4 = 1.25·e^(−1/72).
 * B: n=1: 1; score 10/4 = 2.5. CIDEr-D = (1.25·e^(−1/72) + 2.5)/2. */
TEST(captions_cider_clipping) {
    const char *ra[1] = {"x"}, *rb[1] = {"y"};
    eval_caption_item items[2] = {{"x x", ra, 1}, {"y", rb, 1}};
    CHECK_NEAR(score(items, 2).cider_d, (1.25 * exp(-1.0 / 72) + 2.5) / 2, 1e-12);
}

/* With a single image every idf is ln 1 − ln 1 = 0, so CIDEr-D is 0 even for a perfect
 * caption (as in pycocoevalcap). */
TEST(captions_cider_single_image_is_zero) {
    const char *refs[1] = {"a b"};
    eval_caption_item item = {"a b", refs, 1};
    CHECK(score(&item, 1).cider_d == 0.0);
}

TEST(captions_bad_inputs) {
    tl_error err = {0};
    eval_caption_result out;
    const char *refs[1] = {"a"}, *null_ref[1] = {NULL};
    eval_caption_item no_refs = {"a", refs, 0}, null_cand = {NULL, refs, 1},
                      null_reference = {"a", null_ref, 1};
    CHECK(eval_captions(&no_refs, 0, &out, &err) == TL_ERR_INVALID);
    CHECK(eval_captions(&no_refs, 1, &out, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "item 0 has no references"));
    CHECK(eval_captions(&null_cand, 1, &out, &err) == TL_ERR_INVALID);
    CHECK(eval_captions(&null_reference, 1, &out, &err) == TL_ERR_INVALID);
}

/* Many distinct words force the interners to grow. Every caption equals its reference and
 * every n-gram is in one image's reference only: BLEU-4 1, and CIDEr-D 10 per image (each
 * order's cosine is 1, lengths equal: 10 · 4/4). */
TEST(captions_many_words) {
    enum { ITEMS = 300 };
    static char text[ITEMS][64];
    static const char *refs[ITEMS][1];
    static eval_caption_item items[ITEMS];
    for (int i = 0; i < ITEMS; i++) {
        snprintf(text[i], sizeof text[i], "w%d x%d y%d z%d v%d", i, i * 7, i * 13, i * 17, i);
        refs[i][0] = text[i];
        items[i] = (eval_caption_item){text[i], refs[i], 1};
    }
    eval_caption_result s = score(items, ITEMS);
    CHECK_NEAR(s.bleu[3], 1.0, 1e-8);
    CHECK_NEAR(s.cider_d, 10.0, 1e-9);
}

int main(void) {
    RUN(recall_ranks_with_ties_against_the_query);
    RUN(recall_excluded_items);
    RUN(recall_duplicate_positive_counts_once);
    RUN(recall_constant_scores);
    RUN(recall_bad_inputs);
    RUN(xmr_both_directions);
    RUN(tgir_and_multiturn_cutoffs);
    RUN(classification_accuracy_and_macro_f1);
    RUN(argmax_ties_and_nan);
    RUN(tokenizer_rules);
    RUN(captions_identical);
    RUN(captions_bleu_papineni);
    RUN(captions_bleu_brevity_penalty);
    RUN(captions_bleu_corpus_level);
    RUN(captions_bleu_closest_length_tie);
    RUN(captions_rouge_l);
    RUN(captions_rouge_l_multi_reference_and_empty);
    RUN(captions_cider_two_images);
    RUN(captions_cider_idf_and_length_penalty);
    RUN(captions_cider_clipping);
    RUN(captions_cider_single_image_is_zero);
    RUN(captions_bad_inputs);
    RUN(captions_many_words);
    return th_done();
}
