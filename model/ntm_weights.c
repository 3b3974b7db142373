/* The ntm.* tensors of a checkpoint (MODEL.md §5): their names and shapes, capability detection
 * (all or nothing) and binding with exact shape checks. Not for: the turn arithmetic (ntm.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntm.h"

#define BLOCK_TENSORS 12

/* One tensor of block c: its name after "ntm.blocks.{c}.", its shape, and where it binds. */
typedef struct block_tensor_spec {
    const char *suffix;
    int ndim;
    int64_t shape[2];
    size_t field; /* offsetof(ntm_block_weights, ...) */
} block_tensor_spec;

static int block_in_dim(const ntm_config *cfg, int c) {
    return c == 0 ? cfg->proj : 2 * cfg->proj;
}

/* Fills specs[BLOCK_TENSORS] with block c's tensors for cfg. */
static void block_tensor_specs(const ntm_config *cfg, int c, block_tensor_spec *specs) {
    int64_t H = cfg->hidden, W = cfg->width, N = cfg->slots, P = cfg->proj;
    int64_t in = block_in_dim(cfg, c);
    const block_tensor_spec table[BLOCK_TENSORS] = {
        {"lstm.weight_ih", 2, {4 * H, in + W}, offsetof(ntm_block_weights, lstm_w_ih)},
        {"lstm.weight_hh", 2, {4 * H, H}, offsetof(ntm_block_weights, lstm_w_hh)},
        {"lstm.bias_ih", 1, {4 * H}, offsetof(ntm_block_weights, lstm_b_ih)},
        {"lstm.bias_hh", 1, {4 * H}, offsetof(ntm_block_weights, lstm_b_hh)},
        {"read.weight", 2, {W + 6, H}, offsetof(ntm_block_weights, read_w)},
        {"read.bias", 1, {W + 6}, offsetof(ntm_block_weights, read_b)},
        {"write.weight", 2, {3 * W + 6, H}, offsetof(ntm_block_weights, write_w)},
        {"write.bias", 1, {3 * W + 6}, offsetof(ntm_block_weights, write_b)},
        {"out.weight", 2, {P, H + W}, offsetof(ntm_block_weights, out_w)},
        {"out.bias", 1, {P}, offsetof(ntm_block_weights, out_b)},
        {"mem_init", 2, {N, W}, offsetof(ntm_block_weights, mem_init)},
        {"read_init", 1, {W}, offsetof(ntm_block_weights, read_init)},
    };
    memcpy(specs, table, sizeof table);
}

static void block_tensor_name(char *name, size_t size, int c, const char *suffix) {
    snprintf(name, size, "ntm.blocks.%d.%s", c, suffix);
}

static bool is_ntm_name(const char *name) {
    return strncmp(name, "ntm.", 4) == 0;
}

/* Whether name is one of cfg's tensors. */
static bool ntm_name_expected(const ntm_config *cfg, const char *name) {
    if (strcmp(name, "ntm.scale") == 0) return true;
    block_tensor_spec specs[BLOCK_TENSORS];
    char expected[128];
    for (int c = 0; c < cfg->blocks; c++) {
        block_tensor_specs(cfg, c, specs);
        for (int i = 0; i < BLOCK_TENSORS; i++) {
            block_tensor_name(expected, sizeof expected, c, specs[i].suffix);
            if (strcmp(name, expected) == 0) return true;
        }
    }
    return false;
}

static tl_status check_all_present(const st_file *f, const ntm_config *cfg, tl_error *err) {
    block_tensor_spec specs[BLOCK_TENSORS];
    char name[128];
    for (int c = 0; c < cfg->blocks; c++) {
        block_tensor_specs(cfg, c, specs);
        for (int i = 0; i < BLOCK_TENSORS; i++) {
            block_tensor_name(name, sizeof name, c, specs[i].suffix);
            if (!st_find(f, name))
                return tl_fail(err, TL_ERR_NOT_FOUND,
                               "NTM tensor %s is missing (the checkpoint holds other ntm.* "
                               "tensors: all or none)",
                               name);
        }
    }
    if (!st_find(f, "ntm.scale"))
        return tl_fail(err, TL_ERR_NOT_FOUND,
                       "NTM tensor ntm.scale is missing (the checkpoint holds other ntm.* "
                       "tensors: all or none)");
    return TL_OK;
}

tl_status ntm_tensors_detect(const st_file *f, const ntm_config *cfg, bool *present,
                             tl_error *err) {
    *present = false;
    const char *first = NULL;
    for (size_t i = 0; i < st_count(f); i++) {
        const char *name = st_at(f, i)->name;
        if (!is_ntm_name(name)) continue;
        if (!first) first = name;
        if (cfg && cfg->kind == NTM_KIND_CASCADE && !ntm_name_expected(cfg, name))
            return tl_fail(err, TL_ERR_FORMAT,
                           "tensor %s does not belong to the NTM of config.json tailor.ntm "
                           "(blocks %d)",
                           name, cfg->blocks);
    }
    if (!first) return TL_OK;
    if (!cfg || cfg->kind != NTM_KIND_CASCADE)
        return tl_fail(err, TL_ERR_FORMAT,
                       "the checkpoint holds NTM tensors (%s) but config.json has no tailor.ntm",
                       first);
    tl_status st = check_all_present(f, cfg, err);
    *present = st == TL_OK;
    return st;
}

static tl_status bind_block(ntm_block_weights *b, st_file *f, const ntm_config *cfg, int c,
                            tl_error *err) {
    block_tensor_spec specs[BLOCK_TENSORS];
    char name[128];
    block_tensor_specs(cfg, c, specs);
    b->in_dim = block_in_dim(cfg, c);
    for (int i = 0; i < BLOCK_TENSORS; i++) {
        block_tensor_name(name, sizeof name, c, specs[i].suffix);
        const float **dst = (const float **)((char *)b + specs[i].field);
        tl_status st = st_get_f32(f, name, specs[i].ndim, specs[i].shape, dst, err);
        if (st != TL_OK) return st;
    }
    return TL_OK;
}

static tl_status bind_cascade(ntm_weights *w, st_file *f, tl_error *err) {
    const ntm_config *cfg = &w->cfg;
    w->blocks = calloc((size_t)cfg->blocks, sizeof *w->blocks);
    if (!w->blocks) return tl_fail(err, TL_ERR_NOMEM, "out of memory for NTM blocks");
    for (int c = 0; c < cfg->blocks; c++) {
        tl_status st = bind_block(&w->blocks[c], f, cfg, c, err);
        if (st != TL_OK) return st;
    }
    const int64_t one = 1;
    const float *scale;
    tl_status st = st_get_f32(f, "ntm.scale", 1, &one, &scale, err);
    if (st == TL_OK) w->scale = scale[0];
    return st;
}

tl_status ntm_weights_bind(ntm_weights *w, st_file *f, const ntm_config *cfg, tl_backend *be,
                           tl_error *err) {
    *w = (ntm_weights){.cfg = *cfg, .scale = 1.0f, .be = be};
    tl_status st = TL_OK;
    if (cfg->kind == NTM_KIND_CASCADE) {
        if (!f || !be)
            return tl_fail(err, TL_ERR_INVALID, "NTM weights need a checkpoint file and a backend");
        st = bind_cascade(w, f, err);
    } else if (cfg->kind != NTM_KIND_DECAYED_SUM) {
        return tl_fail(err, TL_ERR_INVALID, "unknown session memory kind %d", (int)cfg->kind);
    }
    if (st == TL_OK) {
        w->ws = ntm_workspace_create(cfg);
        if (!w->ws) st = tl_fail(err, TL_ERR_NOMEM, "out of memory for the NTM workspace");
    }
    if (st != TL_OK) ntm_weights_release(w);
    return st;
}

void ntm_weights_release(ntm_weights *w) {
    free(w->blocks);
    ntm_workspace_free(w->ws);
    w->blocks = NULL;
    w->ws = NULL;
}
