/* Caption templates for Fashion-MNIST Colours (see demo_captions.h). Templates are strings
 * with {slot} placeholders filled from a small slot table; {art} is the class's article ("a",
 * "a pair of"): it always precedes a shade or pattern word, none of which starts with a vowel.
 * Synonyms are picked with the caller's RNG. */
#include "demo_captions.h"

#include <stdio.h>
#include <string.h>

typedef struct text {
    char *buf;
    size_t len;
} text;

typedef struct slot {
    const char *name;
    const char *value;
} slot;

static const char *const SHADE_WORDS[DEMO_N_SHADES][2] = {{"light", "pale"}, {"dark", "deep"}};
static const char *const SHADE_COMPARATIVES[DEMO_N_SHADES][2] = {{"lighter", "paler"},
                                                                 {"darker", "deeper"}};
static const char *const PATTERN_ADJECTIVES[DEMO_N_PATTERNS][2] = {
    {"plain", "solid"}, {"striped", "striped"}, {"dotted", "polka-dot"}};
static const char *const PATTERN_WITH[DEMO_N_PATTERNS][2] = {
    {"with no pattern", "without a pattern"},
    {"with stripes", "with stripes"},
    {"with dots", "with polka dots"}};
static const char *const PATTERN_MARKS[DEMO_N_PATTERNS] = {"", "stripes", "dots"};

static const char *const ITEM_TEMPLATES[DEMO_N_ITEM_TEMPLATES] = {
    "{art} {shade} {colour} {adj} {noun}",           "{adj} {noun} in {shade} {colour}",
    "{art} {shade} {colour} {noun} {with}",          "{noun}, {shade} {colour}, {adj}",
    "{art} {adj} {noun} in a {shade} {colour} tone", "{shade} {colour} {noun} {with}",
};

/* Relative-caption clauses. Slots: {tc}/{rc} target/reference colour, {ts}/{rs} shade,
 * {tcmp} comparative of the target shade ("darker"), {tp}/{rp} pattern adjective, {tm}/{rm}
 * the pattern's marks ("stripes", "dots"). */
static const char *const COLOUR_ONLY[] = {"is {tc} instead of {rc}", "make it {tc}",
                                          "change the colour to {tc}", "{tc} rather than {rc}",
                                          "in {tc} instead"};
static const char *const SHADE_ONLY[] = {"make it {tcmp}", "is {ts} instead of {rs}",
                                         "a {tcmp} shade", "is {ts} {tc} instead of {rs} {tc}"};
static const char *const COLOUR_AND_SHADE[] = {
    "is {ts} {tc} instead of {rs} {rc}", "make it {ts} {tc}", "change the colour to {ts} {tc}",
    "{ts} {tc} rather than {rc}"};
static const char *const TO_PATTERN_FROM_PLAIN[] = {"has {tm}", "add {tm}",
                                                    "{tp} instead of plain"};
static const char *const TO_PATTERN_FROM_PATTERN[] = {
    "has {tm} instead of {rm}", "{tp} instead of {rp}", "swap the {rm} for {tm}"};
static const char *const TO_PLAIN[] = {"plain instead of {rp}", "remove the {rm}",
                                       "make it solid, without {rm}", "no {rm}, just plain"};
static const char *const JOINERS[] = {"%s and %s", "%s, %s", "%s and also %s"};

#define COUNT(a)     (int)(sizeof(a) / sizeof((a)[0]))
#define PICK(rng, a) ((a)[rng_below((rng), (uint32_t)COUNT(a))])

static void text_append(text *t, const char *s, size_t n) {
    if (t->len + n >= DEMO_TEXT_MAX) n = DEMO_TEXT_MAX - 1 - t->len;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static const char *slot_value(const slot *slots, int n_slots, const char *name, size_t len) {
    for (int i = 0; i < n_slots; i++)
        if (strlen(slots[i].name) == len && !memcmp(slots[i].name, name, len))
            return slots[i].value;
    return "";
}

/* Appends tmpl with its {slots} filled. */
static void expand(text *t, const char *tmpl, const slot *slots, int n_slots) {
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            text_append(t, p, 1);
            p++;
            continue;
        }
        const char *value = slot_value(slots, n_slots, p + 1, (size_t)(close - p - 1));
        text_append(t, value, strlen(value));
        p = close + 1;
    }
}

void demo_title(int label, demo_attrs attrs, char out[DEMO_TEXT_MAX]) {
    const demo_class_info *cls = &DEMO_CLASSES[label];
    snprintf(out, DEMO_TEXT_MAX, "%s %s %s %s", DEMO_SHADE_NAMES[attrs.shade],
             DEMO_COLOUR_NAMES[attrs.colour], DEMO_PATTERN_NAMES[attrs.pattern], cls->subcategory);
    out[0] = (char)(out[0] - 'a' + 'A');
}

void demo_item_caption(tl_rng *rng, int template_index, int label, demo_attrs attrs,
                       char out[DEMO_TEXT_MAX]) {
    const demo_class_info *cls = &DEMO_CLASSES[label];
    const slot slots[] = {
        {"art", cls->article},
        {"noun", cls->subcategory},
        {"colour", DEMO_COLOUR_NAMES[attrs.colour]},
        {"shade", PICK(rng, SHADE_WORDS[attrs.shade])},
        {"adj", PICK(rng, PATTERN_ADJECTIVES[attrs.pattern])},
        {"with", PICK(rng, PATTERN_WITH[attrs.pattern])},
    };
    text t = {out, 0};
    out[0] = '\0';
    expand(&t, ITEM_TEMPLATES[template_index], slots, COUNT(slots));
}

/* The clause about colour and shade, or NULL when both are unchanged. */
static const char *colour_clause(tl_rng *rng, demo_attrs ref, demo_attrs target) {
    int colour_changed = ref.colour != target.colour, shade_changed = ref.shade != target.shade;
    if (colour_changed && shade_changed) return PICK(rng, COLOUR_AND_SHADE);
    if (colour_changed) return PICK(rng, COLOUR_ONLY);
    if (shade_changed) return PICK(rng, SHADE_ONLY);
    return NULL;
}

static const char *pattern_clause(tl_rng *rng, demo_attrs ref, demo_attrs target) {
    if (ref.pattern == target.pattern) return NULL;
    if (target.pattern == DEMO_PLAIN) return PICK(rng, TO_PLAIN);
    if (ref.pattern == DEMO_PLAIN) return PICK(rng, TO_PATTERN_FROM_PLAIN);
    return PICK(rng, TO_PATTERN_FROM_PATTERN);
}

void demo_relative_caption(tl_rng *rng, demo_attrs ref, demo_attrs target,
                           char out[DEMO_TEXT_MAX]) {
    const slot slots[] = {
        {"tc", DEMO_COLOUR_NAMES[target.colour]},
        {"rc", DEMO_COLOUR_NAMES[ref.colour]},
        {"ts", PICK(rng, SHADE_WORDS[target.shade])},
        {"rs", PICK(rng, SHADE_WORDS[ref.shade])},
        {"tcmp", PICK(rng, SHADE_COMPARATIVES[target.shade])},
        {"tp", PICK(rng, PATTERN_ADJECTIVES[target.pattern])},
        {"rp", PICK(rng, PATTERN_ADJECTIVES[ref.pattern])},
        {"tm", PATTERN_MARKS[target.pattern]},
        {"rm", PATTERN_MARKS[ref.pattern]},
    };
    const char *colour_tmpl = colour_clause(rng, ref, target);
    const char *pattern_tmpl = pattern_clause(rng, ref, target);
    char first[DEMO_TEXT_MAX] = "", second[DEMO_TEXT_MAX] = "";
    text a = {first, 0}, b = {second, 0};
    if (colour_tmpl) expand(&a, colour_tmpl, slots, COUNT(slots));
    if (pattern_tmpl)
        expand(pattern_tmpl && colour_tmpl ? &b : &a, pattern_tmpl, slots, COUNT(slots));
    if (b.len)
        snprintf(out, DEMO_TEXT_MAX, PICK(rng, JOINERS), first, second);
    else
        snprintf(out, DEMO_TEXT_MAX, "%s", first);
}
