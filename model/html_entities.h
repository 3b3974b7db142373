/* Tables behind the tokenizer's Python-compatible html.unescape, generated into html_entities.c
 * by tools/gen_html_entities.py. Data only; the lookups live in tokenizer_clean.c. */
#ifndef TL_HTML_ENTITIES_H
#define TL_HTML_ENTITIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct html_entity {
    const char *name;  /* without the leading '&'; some end in ';', some do not */
    const char *value; /* UTF-8 replacement */
} html_entity;

typedef struct html_charref_remap {
    uint32_t code;     /* numeric reference value */
    const char *value; /* UTF-8 replacement (Windows-1252 reading of 0x80-0x9F, ...) */
} html_charref_remap;

extern const html_entity html_named_entities[]; /* sorted by strcmp of name */
extern const size_t html_named_entity_count;
extern const html_charref_remap html_charref_remaps[]; /* sorted by code */
extern const size_t html_charref_remap_count;
extern const uint32_t html_charref_dropped[]; /* sorted; these references become "" */
extern const size_t html_charref_dropped_count;

#endif
