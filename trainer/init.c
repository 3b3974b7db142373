/* Table-driven initialisation of the FAME-ViL parts by tensor name. Not for: CLIP weights,
 * which always come from a checkpoint. */
#include "init.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

typedef enum init_kind {
    INIT_CONST,      /* every value = value */
    INIT_FAN_IN,     /* U(−1/√fan_in, 1/√fan_in): PyTorch's Linear (weights and biases) */
    INIT_LSTM,       /* U(−1/√H, 1/√H): PyTorch's LSTM, H = the NTM hidden width */
    INIT_FAN_IN_ROW, /* a bias: U(±1/√fan_in) of the weight beside it (the same name, .weight) */
} init_kind;

typedef struct init_rule {
    const char *pattern; /* fnmatch(3) on the tensor name; the first match wins */
    init_kind kind;
    double value;
} init_rule;

static const init_rule rules[] = {
    {"*.tsa.*.up.*", INIT_CONST, 0}, /* a fresh adapter outputs exactly 0 [code] */
    {"*.adapter.up.*", INIT_CONST, 0},
    {"*.down.bias", INIT_CONST, 0},
    {"*.down.weight", INIT_FAN_IN, 0},
    {"*.tsa.*.scale", INIT_CONST, 1},
    {"*.adapter.scale", INIT_CONST, 1},
    {"*.ln*.weight", INIT_CONST, 1}, /* ln, ln_q, ln_kv */
    {"*.ln*.bias", INIT_CONST, 0},
    {"heads.*.scale", INIT_CONST, 4}, /* σ = 4 [code] */
    {"ntm.scale", INIT_CONST, 4},     /* σ_ntm = 4 [ours] */
    {"ntm.*.lstm.*", INIT_LSTM, 0},
    {"ntm.*.mem_init", INIT_LSTM, 0}, /* [ours]: the learned initial state */
    {"ntm.*.read_init", INIT_LSTM, 0},
    {"*.weight", INIT_FAN_IN, 0}, /* xaa q/k/v, heads, ntm read/write/out */
    {"*.bias", INIT_FAN_IN_ROW, 0},
};

static const init_rule *rule_for(const char *name) {
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if (!fnmatch(rules[i].pattern, name, 0)) return &rules[i];
    return NULL;
}

/* fan_in of a bias NAME.bias: the last dimension of NAME.weight in the same set (0: none). */
static int64_t bias_fan_in(const param_set *s, const char *bias_name) {
    char name[PARAM_NAME_MAX];
    size_t len = strlen(bias_name) - 4; /* "...bias" -> "...weight" */
    snprintf(name, sizeof name, "%.*sweight", (int)len, bias_name);
    const param_tensor *w = param_set_find(s, name);
    return w && w->ndim == 2 ? w->shape[1] : 0;
}

static tl_status init_tensor(const train_model *m, const param_set *s, const param_tensor *t,
                             tl_rng *rng, tl_error *err) {
    const init_rule *r = rule_for(t->name);
    int64_t fan_in = t->ndim == 2 ? t->shape[1] : 0;
    if (r && r->kind == INIT_LSTM) fan_in = m->ntm.hidden;
    if (r && r->kind == INIT_FAN_IN_ROW) fan_in = bias_fan_in(s, t->name);
    if (!r || (r->kind != INIT_CONST && fan_in <= 0))
        return tl_fail(err, TL_ERR_INVALID, "no initialisation rule for %s", t->name);
    float *x = s->data + t->offset;
    double bound = r->kind == INIT_CONST ? 0 : 1.0 / sqrt((double)fan_in);
    for (size_t i = 0; i < t->numel; i++) {
        double u = (double)(rng_next_u64(rng) >> 11) / (double)(1ull << 53); /* [0, 1) */
        x[i] = r->kind == INIT_CONST ? (float)r->value : (float)((2 * u - 1) * bound);
    }
    return TL_OK;
}

tl_status train_model_init_parts(train_model *m, unsigned parts, uint64_t seed, tl_error *err) {
    for (int p = TRAIN_PART_CLIP + 1; p < TRAIN_PART_COUNT; p++) {
        if (!(parts >> p & 1)) continue;
        tl_rng rng;
        rng_seed(&rng, seed, (uint64_t)p);
        const param_set *s = &m->parts[p];
        for (size_t i = 0; i < s->count; i++) {
            tl_status st = init_tensor(m, s, &s->tensors[i], &rng, err);
            if (st) return st;
        }
    }
    return TL_OK;
}
