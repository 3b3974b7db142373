/* Internal layout of tl_tokenizer, shared by tokenizer_load.c (which builds it) and
 * tokenizer.c (which encodes and decodes with it). Not an API: include only from those. */
#ifndef TL_TOKENIZER_INTERNAL_H
#define TL_TOKENIZER_INTERNAL_H

#include <stdint.h>

#include "tokenizer.h"

#define SOT_TEXT    "<|startoftext|>"
#define EOT_TEXT    "<|endoftext|>"
#define END_OF_WORD "</w>"

/* One line of merges.txt: first + second → result, as vocabulary ids. Indexed by rank. */
typedef struct merge_rule {
    int32_t first, second, result;
} merge_rule;

/* Open-addressing slot of the pair → rank table; rank < 0 marks an empty slot. */
typedef struct merge_slot {
    uint64_t pair;
    int32_t rank;
} merge_slot;

struct tl_tokenizer {
    int32_t vocab_size, sot_id, eot_id;
    int32_t byte_id[256];     /* symbol of each byte */
    int32_t byte_end_id[256]; /* the same followed by "</w>" */
    uint8_t *token_bytes;     /* every token's bytes ("</w>" kept), concatenated in id order */
    size_t *token_offset;     /* [vocab_size + 1] into token_bytes */
    merge_rule *rules;        /* [num_rules] by rank */
    int32_t num_rules;
    merge_slot *slots; /* [slot_mask + 1] */
    uint64_t slot_mask;
};

static inline uint64_t merge_pair_key(int32_t first, int32_t second) {
    return (uint64_t)(uint32_t)first << 32 | (uint32_t)second;
}

/* The slot holding pair, or the empty slot where it would go. */
static inline merge_slot *merge_slot_of(const tl_tokenizer *tok, uint64_t pair) {
    uint64_t h = pair ^ (pair >> 29);
    h *= 0x9E3779B97F4A7C15ull;
    uint64_t i = (h ^ (h >> 32)) & tok->slot_mask;
    while (tok->slots[i].rank >= 0 && tok->slots[i].pair != pair) i = (i + 1) & tok->slot_mask;
    return &tok->slots[i];
}

#endif
