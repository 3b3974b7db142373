/* Text for Fashion-MNIST Colours: product titles, item captions from several templates, and
 * relative captions saying how a TGIR target differs from its reference. Word and template
 * choices come from the caller's RNG, so the text is reproducible. Not for: other data sets. */
#ifndef TL_TRAINER_DEMO_CAPTIONS_H
#define TL_TRAINER_DEMO_CAPTIONS_H

#include <stddef.h>

#include "demo_data.h"
#include "rng.h"

#define DEMO_TEXT_MAX         160 /* every title and caption fits, with its NUL */
#define DEMO_N_ITEM_TEMPLATES 6

/* The canonical title, e.g. "Dark blue striped dress". label is 0..9. */
void demo_title(int label, demo_attrs attrs, char out[DEMO_TEXT_MAX]);

/* An item caption from template 0..DEMO_N_ITEM_TEMPLATES-1, synonyms drawn from rng, e.g.
 * "striped pullover in deep blue" or "an orange sandal with polka dots". */
void demo_item_caption(tl_rng *rng, int template_index, int label, demo_attrs attrs,
                       char out[DEMO_TEXT_MAX]);

/* A relative caption naming every attribute that differs from reference to target (which
 * must differ), e.g. "is blue instead of red and has stripes" or "make it darker". */
void demo_relative_caption(tl_rng *rng, demo_attrs reference, demo_attrs target,
                           char out[DEMO_TEXT_MAX]);

#endif
