/* Captioning metrics as pycocoevalcap computes them: corpus BLEU-1..4, ROUGE-L (β = 1.2) and
 * CIDEr-D (σ = 6, clipped, ×10), over our tokeniser (proto/eval.md). Words and n-grams are
 * interned to dense ids so counts live in flat arrays. Not for: decoding captions. */
#include "eval_metrics.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_N = 4 };
#define ROUGE_BETA  1.2
#define CIDER_SIGMA 6.0

size_t eval_tokenize(const char *text, char *out) {
    size_t n_tokens = 0, len = 0;
    int in_word = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 128 && ispunct(*p)) continue;
        if (*p < 128 && isspace(*p)) {
            in_word = 0;
            continue;
        }
        if (!in_word && n_tokens) out[len++] = ' ';
        n_tokens += !in_word;
        in_word = 1;
        out[len++] = *p < 128 ? (char)tolower(*p) : (char)*p;
    }
    out[len] = '\0';
    return n_tokens;
}

/* Byte strings to dense ids 0, 1, 2, ... (open addressing, FNV-1a). */
typedef struct interner {
    uint32_t *slots; /* id + 1, or 0 when empty */
    size_t capacity;
    size_t count;
    struct key_ref {
        size_t offset, length; /* into arena */
    } * keys;                  /* per id */
    char *arena;
    size_t arena_used, arena_capacity, keys_capacity;
} interner;

static uint64_t fnv1a(const void *key, size_t len) {
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int grow(void **buf, size_t *capacity, size_t need, size_t elem) {
    if (need <= *capacity) return 0;
    size_t cap = *capacity ? *capacity : 64;
    while (cap < need) cap *= 2;
    void *p = realloc(*buf, cap * elem);
    if (!p) return -1;
    *buf = p, *capacity = cap;
    return 0;
}

static int interner_rehash(interner *in, size_t capacity) {
    uint32_t *slots = calloc(capacity, sizeof *slots);
    if (!slots) return -1;
    for (size_t id = 0; id < in->count; id++) {
        size_t i = fnv1a(in->arena + in->keys[id].offset, in->keys[id].length) & (capacity - 1);
        while (slots[i]) i = (i + 1) & (capacity - 1);
        slots[i] = (uint32_t)id + 1;
    }
    free(in->slots);
    in->slots = slots, in->capacity = capacity;
    return 0;
}

/* The id of key, adding it if new; -1 when out of memory. */
static int64_t intern(interner *in, const void *key, size_t len) {
    if (2 * (in->count + 1) > in->capacity &&
        interner_rehash(in, in->capacity ? 2 * in->capacity : 1024))
        return -1;
    size_t i = fnv1a(key, len) & (in->capacity - 1);
    for (; in->slots[i]; i = (i + 1) & (in->capacity - 1)) {
        size_t id = in->slots[i] - 1;
        if (in->keys[id].length == len && !memcmp(in->arena + in->keys[id].offset, key, len))
            return (int64_t)id;
    }
    if (grow((void **)&in->arena, &in->arena_capacity, in->arena_used + len + 1, 1) ||
        grow((void **)&in->keys, &in->keys_capacity, in->count + 1, sizeof *in->keys))
        return -1;
    memcpy(in->arena + in->arena_used, key, len);
    in->keys[in->count] = (struct key_ref){.offset = in->arena_used, .length = len};
    in->arena_used += len;
    in->slots[i] = (uint32_t)in->count + 1;
    return (int64_t)in->count++;
}

static void interner_free(interner *in) {
    free(in->slots), free(in->keys), free(in->arena);
}

/* One distinct n-gram of a sentence and how often it occurs there. */
typedef struct ngram_count {
    uint32_t id;
    uint32_t count;
    uint8_t n; /* 1..4 */
} ngram_count;

typedef struct sentence {
    uint32_t *words; /* word ids */
    size_t n_words;
    ngram_count *bag; /* distinct n-grams, all orders */
    size_t bag_len;
} sentence;

typedef struct corpus {
    interner words, ngrams;
    sentence *sentences; /* per item: candidate, then its references */
    size_t *first;       /* per item: index of its candidate in sentences; n_items + 1 entries */
    size_t n_items;
} corpus;

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Appends the distinct order-n n-grams of s to its bag, with their counts. */
static int add_ngrams(corpus *c, sentence *s, unsigned n, uint32_t *scratch) {
    if (s->n_words < n) return 0;
    size_t m = s->n_words - n + 1;
    for (size_t i = 0; i < m; i++) {
        int64_t id = intern(&c->ngrams, s->words + i, n * sizeof(uint32_t));
        if (id < 0 || id > UINT32_MAX - 1) return -1;
        scratch[i] = (uint32_t)id;
    }
    qsort(scratch, m, sizeof *scratch, compare_u32);
    for (size_t i = 0; i < m; i++) {
        if (i && scratch[i] == scratch[i - 1]) {
            s->bag[s->bag_len - 1].count++;
            continue;
        }
        s->bag[s->bag_len++] = (ngram_count){.id = scratch[i], .count = 1, .n = (uint8_t)n};
    }
    return 0;
}

static tl_status build_sentence(corpus *c, sentence *s, const char *text, tl_error *err) {
    size_t len = strlen(text);
    char *norm = malloc(len + 1);
    s->words = malloc((len + 1) * sizeof *s->words);
    s->bag = malloc((MAX_N * len + 1) * sizeof *s->bag);
    uint32_t *scratch = malloc((len + 1) * sizeof *scratch);
    int failed = !norm || !s->words || !s->bag || !scratch;
    if (!failed) eval_tokenize(text, norm);
    char *save = NULL;
    for (char *w = failed ? NULL : strtok_r(norm, " ", &save); w && !failed;
         w = strtok_r(NULL, " ", &save)) {
        int64_t id = intern(&c->words, w, strlen(w));
        failed = id < 0 || id > UINT32_MAX;
        if (!failed) s->words[s->n_words++] = (uint32_t)id;
    }
    for (unsigned n = 1; n <= MAX_N && !failed; n++) failed = add_ngrams(c, s, n, scratch) != 0;
    free(norm), free(scratch);
    return failed ? tl_fail(err, TL_ERR_NOMEM, "captions: out of memory") : TL_OK;
}

static void corpus_free(corpus *c) {
    size_t n = c->first && c->sentences ? c->first[c->n_items] : 0;
    for (size_t i = 0; c->sentences && i < n; i++)
        free(c->sentences[i].words), free(c->sentences[i].bag);
    free(c->sentences), free(c->first);
    interner_free(&c->words), interner_free(&c->ngrams);
}

static tl_status check_items(const eval_caption_item *items, size_t n_items, size_t *n_sentences,
                             tl_error *err) {
    if (!items || n_items == 0) return tl_fail(err, TL_ERR_INVALID, "captions: no items");
    *n_sentences = 0;
    for (size_t i = 0; i < n_items; i++) {
        if (!items[i].candidate)
            return tl_fail(err, TL_ERR_INVALID, "captions: item %zu has no candidate", i);
        if (items[i].n_references == 0 || !items[i].references)
            return tl_fail(err, TL_ERR_INVALID, "captions: item %zu has no references", i);
        for (size_t r = 0; r < items[i].n_references; r++)
            if (!items[i].references[r])
                return tl_fail(err, TL_ERR_INVALID, "captions: item %zu: reference %zu is NULL", i,
                               r);
        *n_sentences += 1 + items[i].n_references;
    }
    return TL_OK;
}

static tl_status corpus_build(corpus *c, const eval_caption_item *items, size_t n_items,
                              tl_error *err) {
    size_t n_sentences = 0;
    tl_status st = check_items(items, n_items, &n_sentences, err);
    if (st) return st;
    c->n_items = n_items;
    c->sentences = calloc(n_sentences, sizeof *c->sentences);
    c->first = calloc(n_items + 1, sizeof *c->first);
    if (!c->sentences || !c->first) return tl_fail(err, TL_ERR_NOMEM, "captions: out of memory");
    c->first[n_items] = n_sentences; /* so corpus_free sees every sentence, even on failure */
    size_t k = 0;
    for (size_t i = 0; i < n_items && !st; i++) {
        c->first[i] = k;
        st = build_sentence(c, &c->sentences[k++], items[i].candidate, err);
        for (size_t r = 0; r < items[i].n_references && !st; r++)
            st = build_sentence(c, &c->sentences[k++], items[i].references[r], err);
    }
    return st;
}

/* BLEU's corpus totals (pycocoevalcap's totalcomps). */
typedef struct bleu_totals {
    double testlen, reflen, guess[MAX_N], correct[MAX_N];
} bleu_totals;

/* Adds one item: candidate s[0] against references s[1..n_refs]. max_ref is zeroed scratch
 * indexed by n-gram id, and is left zeroed. */
static void bleu_add_item(const sentence *s, size_t n_refs, uint32_t *max_ref, bleu_totals *t) {
    size_t testlen = s[0].n_words, reflen = s[1].n_words;
    for (size_t r = 1; r <= n_refs; r++) {
        size_t l = s[r].n_words, dl = l > testlen ? l - testlen : testlen - l;
        size_t best = reflen > testlen ? reflen - testlen : testlen - reflen;
        if (dl < best || (dl == best && l < reflen)) reflen = l; /* closest, then shortest */
        for (size_t j = 0; j < s[r].bag_len; j++)
            if (s[r].bag[j].count > max_ref[s[r].bag[j].id])
                max_ref[s[r].bag[j].id] = s[r].bag[j].count;
    }
    for (size_t j = 0; j < s[0].bag_len; j++) {
        const ngram_count *g = &s[0].bag[j];
        t->correct[g->n - 1] += g->count < max_ref[g->id] ? g->count : max_ref[g->id];
    }
    for (unsigned n = 1; n <= MAX_N; n++)
        t->guess[n - 1] += testlen >= n ? (double)(testlen - n + 1) : 0;
    t->testlen += (double)testlen, t->reflen += (double)reflen;
    for (size_t r = 1; r <= n_refs; r++)
        for (size_t j = 0; j < s[r].bag_len; j++) max_ref[s[r].bag[j].id] = 0;
}

/* pycocoevalcap's BLEU from the totals, with its tiny and small smoothing constants. */
static void bleu_from_totals(const bleu_totals *t, double bleu[MAX_N]) {
    const double tiny = 1e-15, small = 1e-9;
    double product = 1, ratio = (t->testlen + tiny) / (t->reflen + small);
    for (unsigned k = 0; k < MAX_N; k++) {
        product *= (t->correct[k] + tiny) / (t->guess[k] + small);
        bleu[k] = pow(product, 1.0 / (k + 1));
        if (ratio < 1) bleu[k] *= exp(1 - 1 / ratio);
    }
}

static size_t lcs_length(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, size_t *row) {
    memset(row, 0, (nb + 1) * sizeof *row);
    for (size_t i = 1; i <= na; i++) {
        size_t diagonal = 0; /* row[j - 1] of the previous i */
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            row[j] = a[i - 1] == b[j - 1] ? diagonal + 1 : (up > row[j - 1] ? up : row[j - 1]);
            diagonal = up;
        }
    }
    return row[nb];
}

/* ROUGE-L of candidate s[0] against references s[1..n_refs]: F_β of the best precision and
 * best recall over the references. row is scratch of (longest sentence + 1) entries. */
static double rouge_l_item(const sentence *s, size_t n_refs, size_t *row) {
    double best_precision = 0, best_recall = 0;
    for (size_t r = 1; r <= n_refs; r++) {
        double lcs = (double)lcs_length(s[0].words, s[0].n_words, s[r].words, s[r].n_words, row);
        if (s[0].n_words && lcs / (double)s[0].n_words > best_precision)
            best_precision = lcs / (double)s[0].n_words;
        if (s[r].n_words && lcs / (double)s[r].n_words > best_recall)
            best_recall = lcs / (double)s[r].n_words;
    }
    if (best_precision == 0 || best_recall == 0) return 0;
    double b2 = ROUGE_BETA * ROUGE_BETA;
    return (1 + b2) * best_precision * best_recall / (best_recall + b2 * best_precision);
}

/* CIDEr-D's per-sentence TF-IDF vector (values parallel to bag), norms and length. */
typedef struct tfidf {
    double *value;
    double norm[MAX_N];
    double length; /* pycocoevalcap counts the bigrams here */
} tfidf;

static void tfidf_of(const sentence *s, const double *idf, tfidf *v) {
    memset(v->norm, 0, sizeof v->norm);
    v->length = 0;
    for (size_t j = 0; j < s->bag_len; j++) {
        const ngram_count *g = &s->bag[j];
        v->value[j] = g->count * idf[g->id];
        v->norm[g->n - 1] += v->value[j] * v->value[j];
        if (g->n == 2) v->length += g->count;
    }
    for (unsigned n = 0; n < MAX_N; n++) v->norm[n] = sqrt(v->norm[n]);
}

/* Sum over n of CIDEr-D's clipped, length-penalised cosine; ref_value is zeroed scratch by
 * n-gram id, left zeroed. */
static double cider_pair(const sentence *hyp, const tfidf *vh, const sentence *ref, const tfidf *vr,
                         double *ref_value) {
    double val[MAX_N] = {0}, delta = vh->length - vr->length, total = 0;
    for (size_t j = 0; j < ref->bag_len; j++) ref_value[ref->bag[j].id] = vr->value[j];
    for (size_t j = 0; j < hyp->bag_len; j++) {
        double h = vh->value[j], r = ref_value[hyp->bag[j].id];
        val[hyp->bag[j].n - 1] += (h < r ? h : r) * r;
    }
    for (size_t j = 0; j < ref->bag_len; j++) ref_value[ref->bag[j].id] = 0;
    for (unsigned n = 0; n < MAX_N; n++) {
        if (vh->norm[n] != 0 && vr->norm[n] != 0) val[n] /= vh->norm[n] * vr->norm[n];
        total += val[n] * exp(-(delta * delta) / (2 * CIDER_SIGMA * CIDER_SIGMA));
    }
    return total;
}

/* idf[id] = log(items) − log(max(1, items whose references hold the n-gram)). */
static void cider_idf(const corpus *c, double *idf, size_t *last_item) {
    size_t n_ngrams = c->ngrams.count;
    for (size_t id = 0; id < n_ngrams; id++) idf[id] = 0, last_item[id] = 0;
    for (size_t i = 0; i < c->n_items; i++)
        for (size_t k = c->first[i] + 1; k < c->first[i + 1]; k++)
            for (size_t j = 0; j < c->sentences[k].bag_len; j++) {
                uint32_t id = c->sentences[k].bag[j].id;
                if (last_item[id] != i + 1) idf[id] += 1, last_item[id] = i + 1;
            }
    double log_items = log((double)c->n_items);
    for (size_t id = 0; id < n_ngrams; id++) idf[id] = log_items - log(fmax(1.0, idf[id]));
}

typedef struct caption_scratch {
    uint32_t *max_ref; /* per n-gram id */
    double *ref_value; /* per n-gram id */
    double *idf;       /* per n-gram id */
    size_t *last_item; /* per n-gram id */
    size_t *lcs_row;   /* longest sentence + 1 */
    tfidf hyp, ref;    /* values: longest bag */
} caption_scratch;

static tl_status scratch_alloc(const corpus *c, caption_scratch *s, tl_error *err) {
    size_t n_ngrams = c->ngrams.count + 1, longest = 1, longest_bag = 1;
    for (size_t k = 0; k < c->first[c->n_items]; k++) {
        if (c->sentences[k].n_words + 1 > longest) longest = c->sentences[k].n_words + 1;
        if (c->sentences[k].bag_len > longest_bag) longest_bag = c->sentences[k].bag_len;
    }
    s->max_ref = calloc(n_ngrams, sizeof *s->max_ref);
    s->ref_value = calloc(n_ngrams, sizeof *s->ref_value);
    s->idf = malloc(n_ngrams * sizeof *s->idf);
    s->last_item = malloc(n_ngrams * sizeof *s->last_item);
    s->lcs_row = malloc(longest * sizeof *s->lcs_row);
    s->hyp.value = malloc(longest_bag * sizeof(double));
    s->ref.value = malloc(longest_bag * sizeof(double));
    if (!s->max_ref || !s->ref_value || !s->idf || !s->last_item || !s->lcs_row || !s->hyp.value ||
        !s->ref.value)
        return tl_fail(err, TL_ERR_NOMEM, "captions: out of memory");
    return TL_OK;
}

static void scratch_free(caption_scratch *s) {
    free(s->max_ref), free(s->ref_value), free(s->idf), free(s->last_item), free(s->lcs_row);
    free(s->hyp.value), free(s->ref.value);
}

static void score_corpus(const corpus *c, caption_scratch *s, eval_caption_result *out) {
    bleu_totals totals = {0};
    double rouge_sum = 0, cider_sum = 0;
    cider_idf(c, s->idf, s->last_item);
    for (size_t i = 0; i < c->n_items; i++) {
        const sentence *item = &c->sentences[c->first[i]];
        size_t n_refs = c->first[i + 1] - c->first[i] - 1;
        bleu_add_item(item, n_refs, s->max_ref, &totals);
        rouge_sum += rouge_l_item(item, n_refs, s->lcs_row);
        double cider = 0;
        tfidf_of(&item[0], s->idf, &s->hyp);
        for (size_t r = 1; r <= n_refs; r++) {
            tfidf_of(&item[r], s->idf, &s->ref);
            cider += cider_pair(&item[0], &s->hyp, &item[r], &s->ref, s->ref_value);
        }
        cider_sum += cider / MAX_N / (double)n_refs * 10.0;
    }
    bleu_from_totals(&totals, out->bleu);
    out->rouge_l = rouge_sum / (double)c->n_items;
    out->cider_d = cider_sum / (double)c->n_items;
}

tl_status eval_captions(const eval_caption_item *items, size_t n_items, eval_caption_result *out,
                        tl_error *err) {
    corpus c = {0};
    caption_scratch s = {0};
    tl_status st = corpus_build(&c, items, n_items, err);
    if (!st) st = scratch_alloc(&c, &s, err);
    if (!st) score_corpus(&c, &s, out);
    scratch_free(&s);
    corpus_free(&c);
    return st;
}
