/* engine.h: loading the model + catalogue pair and the slot that swaps it. */
#include "engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct engine_slot {
    pthread_mutex_t lock;
    engine *current;
};

static json_t *model_info_json(const tl_model *m, const char *dir) {
    const tl_model_info *i = tl_model_get_info(m);
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:b}", "dir", dir, "projection_dim",
                     i->projection_dim, "image_size", i->image_size, "context_length",
                     i->context_length, "vocab_size", i->vocab_size, "vision_width",
                     i->vision_width, "text_width", i->text_width, "has_tokenizer",
                     i->has_tokenizer);
}

/* What the served checkpoint can do: the API features and the FAME-ViL task heads present. */
static json_t *capabilities_json(const tl_model *m) {
    unsigned caps = tl_model_capabilities(m);
    int text = tl_model_get_info(m)->has_tokenizer;
    const char *const *labels;
    return json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:s}", "embed_text", text,
                     "embed_image", 1, "search", 1, "sessions", 1, "classify_head",
                     tl_scr_labels(m, &labels) > 0, "classify_zero_shot", text, "caption",
                     (caps & TL_CAP_FIC) != 0, "task_xmr", (caps & TL_CAP_XMR) != 0, "task_tgir",
                     (caps & TL_CAP_TGIR) != 0, "task_scr", (caps & TL_CAP_SCR) != 0,
                     "session_memory", caps & TL_CAP_NTM ? "cascade_ntm" : "decayed_sum");
}

/* A short hash of the weights file's identity (path, size, mtime): results computed with
 * different weights never share a version. */
static void embedding_version(const char *model_dir, char *out, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    struct stat st = {0};
    stat(path, &st);
    char identity[4200];
    snprintf(identity, sizeof identity, "%s|%lld|%lld", path, (long long)st.st_size,
             (long long)st.st_mtime);
    unsigned long long h = 1469598103934665603ull;
    for (const char *p = identity; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(out, size, "m%016llx", h);
}

static void engine_free(engine *e) {
    if (!e) return;
    search_service_free(e->search);
    tl_model_close(e->model);
    json_decref(e->info);
    free(e);
}

/* The admin changes' directory: cfg's state_dir, else the index directory's path (trailing
 * slashes dropped) + ".state", beside it. */
static void state_dir_of(const tailord_config *cfg, char *out, size_t size) {
    if (*cfg->state_dir) {
        snprintf(out, size, "%s", cfg->state_dir);
        return;
    }
    size_t n = strlen(cfg->index_dir);
    while (n > 1 && cfg->index_dir[n - 1] == '/') n--;
    snprintf(out, size, "%.*s.state", (int)n, cfg->index_dir);
}

tl_status engine_load(engine **out, const tailord_config *cfg, tl_error *err) {
    *out = NULL;
    const char *model_dir = cfg->model_dir;
    engine *e = calloc(1, sizeof *e);
    if (!e) return tl_fail(err, TL_ERR_NOMEM, "engine");
    e->refs = 1;
    tl_model_opts opts = {.n_threads = (int)cfg->threads,
                          .backend = "cpu",
                          .session_decay = (float)cfg->sessions_decay,
                          .decode_bf16 = cfg->decode_bf16 != 0};
    tl_status st = tl_model_open(&e->model, model_dir, &opts, err);
    if (st) tl_error_prefix(err, "model %s", model_dir);
    char state_dir[4096];
    state_dir_of(cfg, state_dir, sizeof state_dir);
    search_service_paths paths = {cfg->index_dir, state_dir, model_dir};
    if (!st)
        st = search_service_open(&e->search, &paths, e->model, (size_t)cfg->image_max_pixels,
                                 (int)cfg->threads, err);
    if (!st) {
        embedding_version(model_dir, e->version, sizeof e->version);
        e->info =
            json_pack("{s:o, s:o, s:o, s:I, s:s}", "model", model_info_json(e->model, model_dir),
                      "capabilities", capabilities_json(e->model), "index",
                      search_service_manifest(e->search), "loaded_at", (json_int_t)time(NULL),
                      "embedding_version", e->version);
        if (!e->info) st = tl_fail(err, TL_ERR_NOMEM, "engine info");
    }
    if (st) {
        engine_free(e);
        return st;
    }
    *out = e;
    return TL_OK;
}

engine_slot *engine_slot_create(void) {
    engine_slot *slot = calloc(1, sizeof *slot);
    if (slot) pthread_mutex_init(&slot->lock, NULL);
    return slot;
}

void engine_slot_free(engine_slot *slot) {
    if (!slot) return;
    engine_release(slot, slot->current);
    pthread_mutex_destroy(&slot->lock);
    free(slot);
}

engine *engine_acquire(engine_slot *slot) {
    pthread_mutex_lock(&slot->lock);
    engine *e = slot->current;
    if (e) e->refs++;
    pthread_mutex_unlock(&slot->lock);
    return e;
}

void engine_release(engine_slot *slot, engine *e) {
    if (!e) return;
    pthread_mutex_lock(&slot->lock);
    int last = --e->refs == 0;
    pthread_mutex_unlock(&slot->lock);
    if (last) engine_free(e);
}

void engine_slot_swap(engine_slot *slot, engine *next) {
    pthread_mutex_lock(&slot->lock);
    engine *previous = slot->current;
    slot->current = next;
    pthread_mutex_unlock(&slot->lock);
    engine_release(slot, previous);
}
