/* Caption search over a step function: greedy (width 1) and beam search, from SOS until EOS
 * or a length limit (MODEL.md §2 fic; testdata README "Greedy captions"). Not for: running
 * the decoder (decode.c supplies the step function). */
#ifndef TL_BEAM_H
#define TL_BEAM_H

#include <stdint.h>

#include "error.h"

typedef struct caption_stepper {
    void *ctx;
    /* Feeds tokens[b] at position pos to live hypothesis b < n (whose cache holds positions
     * 0..pos-1) and writes logits[n, vocab] for the next token. */
    tl_status (*step)(void *ctx, const int32_t *tokens, int n, int pos, float *logits,
                      tl_error *err);
    /* Hypothesis b continues hypothesis parent[b]'s cache, b < n. */
    void (*reorder)(void *ctx, const int *parent, int n);
} caption_stepper;

typedef struct caption_search {
    int vocab, sos, eos;
    int max_tokens; /* sequence limit, SOS and EOS included (≥ 2) */
    int width;      /* hypotheses kept; 1 = greedy */
} caption_search;

/* Runs the search and writes the best sequence (SOS first, EOS kept when reached) into
 * ids[max_tokens], its length into *n_ids. Scores are summed log-probabilities divided by the
 * number of generated tokens; with width 1 this is exactly greedy argmax decoding. */
tl_status caption_search_run(const caption_search *cs, const caption_stepper *st, int32_t *ids,
                             int *n_ids, tl_error *err);

#endif
