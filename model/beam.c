/* Greedy and beam caption search: each step keeps the `width` best (hypothesis, token)
 * extensions; an extension ending in EOS or reaching the length limit is finished and leaves
 * the beam. Not for: the decoder arithmetic (decode.c). */
#include "beam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct candidate {
    double score; /* summed log-probability of the extended sequence */
    int parent;
    int32_t token;
} candidate;

/* Inserts c into best[0..*n) (sorted by descending score, capacity width); an equal score
 * goes after the ones already kept, so lower hypothesis and token indices win ties. */
static void keep_best(candidate *best, int *n, int width, candidate c) {
    if (*n == width && !(c.score > best[width - 1].score)) return;
    int i = *n < width ? (*n)++ : width - 1;
    while (i > 0 && c.score > best[i - 1].score) {
        best[i] = best[i - 1];
        i--;
    }
    best[i] = c;
}

static double row_log_sum_exp(const float *row, int V) {
    float mx = row[0];
    for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)row[v] - mx);
    return mx + log(s);
}

/* The width best extensions of the n live hypotheses with summed log-probabilities logp. */
static int best_extensions(const float *logits, const double *logp, int n, int V, int width,
                           candidate *best) {
    int kept = 0;
    for (int b = 0; b < n; b++) {
        const float *row = logits + (size_t)b * V;
        double base = logp[b] - row_log_sum_exp(row, V);
        for (int v = 0; v < V; v++)
            keep_best(best, &kept, width, (candidate){base + row[v], b, (int32_t)v});
    }
    return kept;
}

typedef struct search_state {
    int32_t *seqs, *next_seqs, *tokens, *best_seq; /* [width, L], [width, L], [width], [L] */
    double *logp;                                  /* [width] */
    int *parent;                                   /* [width] */
    float *logits;                                 /* [width, vocab] */
    candidate *cands;                              /* [width] */
    double best_score;
    int best_len;
} search_state;

static void free_state(search_state *s) {
    free(s->seqs);
    free(s->next_seqs);
    free(s->tokens);
    free(s->best_seq);
    free(s->logp);
    free(s->parent);
    free(s->logits);
    free(s->cands);
}

static int alloc_state(search_state *s, const caption_search *cs) {
    size_t W = (size_t)cs->width, L = (size_t)cs->max_tokens;
    memset(s, 0, sizeof *s);
    s->seqs = malloc(W * L * sizeof(int32_t));
    s->next_seqs = malloc(W * L * sizeof(int32_t));
    s->tokens = malloc(W * sizeof(int32_t));
    s->best_seq = malloc(L * sizeof(int32_t));
    s->logp = malloc(W * sizeof(double));
    s->parent = malloc(W * sizeof(int));
    s->logits = malloc(W * (size_t)cs->vocab * sizeof(float));
    s->cands = malloc(W * sizeof(candidate));
    s->best_score = -INFINITY;
    return s->seqs && s->next_seqs && s->tokens && s->best_seq && s->logp && s->parent &&
           s->logits && s->cands;
}

/* Extends the hypotheses by the chosen candidates; finished ones are scored and dropped.
 * Returns the number still live. len = sequence length after the extension. */
static int advance(search_state *s, const caption_search *cs, int n_cands, int len) {
    int live = 0, L = cs->max_tokens;
    for (int i = 0; i < n_cands; i++) {
        const candidate *c = &s->cands[i];
        int32_t *seq = s->next_seqs + (size_t)live * L;
        memcpy(seq, s->seqs + (size_t)c->parent * L, (size_t)(len - 1) * sizeof(int32_t));
        seq[len - 1] = c->token;
        if (c->token == cs->eos || len == L) {
            double normalised = c->score / (len - 1);
            if (normalised > s->best_score) {
                s->best_score = normalised;
                s->best_len = len;
                memcpy(s->best_seq, seq, (size_t)len * sizeof(int32_t));
            }
            continue;
        }
        s->parent[live] = c->parent;
        s->tokens[live] = c->token;
        s->logp[live] = c->score;
        live++;
    }
    int32_t *t = s->seqs;
    s->seqs = s->next_seqs;
    s->next_seqs = t;
    return live;
}

tl_status caption_search_run(const caption_search *cs, const caption_stepper *st, int32_t *ids,
                             int *n_ids, tl_error *err) {
    *n_ids = 0;
    if (cs->width < 1 || cs->max_tokens < 2 || cs->vocab < 2)
        return tl_fail(err, TL_ERR_INVALID, "caption search needs width >= 1, max_tokens >= 2");
    search_state s;
    if (!alloc_state(&s, cs)) {
        free_state(&s);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory for caption search");
    }
    tl_status status = TL_OK;
    int live = 1;
    s.seqs[0] = s.tokens[0] = cs->sos;
    s.logp[0] = 0;
    for (int pos = 0; pos + 1 < cs->max_tokens && live > 0; pos++) {
        status = st->step(st->ctx, s.tokens, live, pos, s.logits, err);
        if (status) break;
        int n_cands = best_extensions(s.logits, s.logp, live, cs->vocab, cs->width, s.cands);
        live = advance(&s, cs, n_cands, pos + 2);
        if (live > 0) st->reorder(st->ctx, s.parent, live);
    }
    if (!status) {
        memcpy(ids, s.best_seq, (size_t)s.best_len * sizeof(int32_t));
        *n_ids = s.best_len;
    }
    free_state(&s);
    return status;
}
