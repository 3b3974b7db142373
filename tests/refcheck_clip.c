/* refcheck for plain CLIP vector folders (clip-tiny; README §1–7): tokenizer ids, image
 * decoding, resize and preprocessing, both towers' hidden states, pooled and projected
 * embeddings, normalised embeddings and logits. Every size comes from the folder's files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "model_internal.h"
#include "refcheck.h"

typedef struct clip_refs {
    const char *dir;
    tl_model *m;
    st_file *ex;  /* expected.safetensors */
    json_t *json; /* expected.json */
    const json_t *tol;
    int P;
} clip_refs;

static double tolerance(const clip_refs *r, const char *key) {
    return rc_json_number(r->tol, NAN, key, (const char *)NULL);
}

int refcheck_clip_detect(const char *dir) {
    return rc_file_has_tensors(dir, "expected.safetensors", "vision.pixel_values",
                               "text.input_ids");
}

/* ---- hidden-state capture ---- */
typedef struct hidden_check {
    float **want;       /* [layers+1] expected [N, Tfull, D] */
    const int64_t *eos; /* text: compare positions 0..eos[b]; NULL: all */
    int Tfull;
    double worst[256];
} hidden_check;

static void compare_hidden(void *ctx, int index, const float *z, int B, int T, int D) {
    hidden_check *h = ctx;
    if (index >= 256 || !h->want[index]) return;
    for (int b = 0; b < B; b++) {
        int last = h->eos ? (int)h->eos[b] : T - 1;
        for (int t = 0; t <= last && t < T; t++)
            for (int d = 0; d < D; d++) {
                double diff = fabs(z[((size_t)b * T + t) * D + d] -
                                   h->want[index][((size_t)b * h->Tfull + t) * D + d]);
                if (!(diff <= h->worst[index])) h->worst[index] = diff;
            }
    }
}

static void report_hidden(refcheck *rc, const char *tower, hidden_check *h, int layers,
                          double tol) {
    for (int i = 0; i <= layers; i++) {
        int pass = h->want[i] && h->worst[i] <= tol;
        rc_case(rc, pass, "%s.hidden_states.%d (max |diff| %.3g, tol %.3g)", tower, i, h->worst[i],
                tol);
        free(h->want[i]);
    }
    free(h->want);
}

static void load_hidden(clip_refs *r, hidden_check *h, const char *tower, int layers) {
    h->want = calloc((size_t)layers + 1, sizeof *h->want);
    for (int i = 0; i <= layers; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.hidden_states.%d", tower, i);
        h->want[i] = rc_tensor_f32(r->ex, name, NULL);
    }
}

/* Normalises rows of x[n, P] in double (the reference's definition). */
static void normalize_rows(float *x, int n, int P) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < P; j++) s += (double)x[i * P + j] * x[i * P + j];
        for (int j = 0; j < P; j++) x[i * P + j] = (float)(x[i * P + j] / sqrt(s));
    }
}

/* Compares got[n] with reference tensor `name`; the case is called label (NULL: name). */
static void compare_named(refcheck *rc, clip_refs *r, const char *name, const char *label,
                          const float *got, size_t n, const char *tol_key) {
    rc_compare_tensor(rc, r->ex, name, label ? label : name, got, n, tolerance(r, tol_key));
}

/* TOWER.pooler_output [N, D], TOWER.EMBEDS_unnorm and (normalising emb in place)
 * TOWER.EMBEDS [N, P]. */
static void compare_tower_outputs(refcheck *rc, clip_refs *r, const char *tower, const char *embeds,
                                  const float *pooled, float *emb, int N, int D) {
    char name[64];
    snprintf(name, sizeof name, "%s.pooler_output", tower);
    compare_named(rc, r, name, NULL, pooled, (size_t)N * D, "pooler_output_abs");
    snprintf(name, sizeof name, "%s.%s_unnorm", tower, embeds);
    compare_named(rc, r, name, NULL, emb, (size_t)N * r->P, "embeds_unnorm_abs");
    normalize_rows(emb, N, r->P);
    snprintf(name, sizeof name, "%s.%s", tower, embeds);
    compare_named(rc, r, name, NULL, emb, (size_t)N * r->P, "embeds_abs");
}

/* ---- model parts on the stored inputs ---- */

/* Text tower from text.input_ids; returns the normalised embeddings [N,P] (caller frees). */
static float *check_text_tower(refcheck *rc, clip_refs *r, int *n_out) {
    size_t count = 0, n_eos = 0;
    int64_t *ids64 = rc_tensor_i64(r->ex, "text.input_ids", &count);
    int64_t *eos = rc_tensor_i64(r->ex, "text.eos_index", &n_eos);
    if (!ids64 || !eos || n_eos == 0) {
        rc_case(rc, 0, "text inputs present");
        free(ids64), free(eos);
        return NULL;
    }
    int N = (int)n_eos, T = (int)(count / n_eos), D = r->m->info.text_width, P = r->P;
    int32_t *ids = malloc(count * sizeof *ids);
    int eos_ok = 1;
    for (size_t i = 0; i < count; i++) ids[i] = (int32_t)ids64[i];
    for (int b = 0; b < N; b++) eos_ok &= clip_text_pool_position(ids + (size_t)b * T, T) == eos[b];
    rc_case(rc, eos_ok, "text.eos_index (pooling positions)");
    float *pooled = malloc((size_t)N * D * sizeof *pooled),
          *emb = malloc((size_t)N * P * sizeof *emb);
    tl_error err = {0};
    int ok = rc_case(rc, !tl_encode_text_ids(r->m, ids, T, N, pooled, emb, &err),
                     "tl_encode_text_ids %s", err.message);
    if (ok) compare_tower_outputs(rc, r, "text", "text_embeds", pooled, emb, N, D);
    hidden_check h = {NULL, eos, T, {0}};
    int layers = r->m->info.text_layers;
    load_hidden(r, &h, "text", layers);
    tl_status st = clip_text_forward(r->m->be, &r->m->w.text, ids, T, N, NULL, NULL, &r->m->scratch,
                                     compare_hidden, &h, &err);
    rc_case(rc, !st, "text forward with layer capture %s", err.message);
    report_hidden(rc, "text", &h, layers, tolerance(r, "hidden_states_abs"));
    free(ids64), free(eos), free(ids), free(pooled);
    *n_out = N;
    if (!ok) free(emb);
    return ok ? emb : NULL;
}

/* Vision tower from vision.pixel_values; returns normalised embeddings [N,P] (caller frees). */
static float *check_vision_tower(refcheck *rc, clip_refs *r, int *n_out) {
    size_t count = 0;
    float *pixels = rc_tensor_f32(r->ex, "vision.pixel_values", &count);
    int S = r->m->info.image_size, D = r->m->info.vision_width, P = r->P;
    int N = (int)(count / (3 * (size_t)S * S));
    if (!pixels || N == 0) {
        rc_case(rc, 0, "vision inputs present");
        free(pixels);
        return NULL;
    }
    float *pooled = malloc((size_t)N * D * sizeof *pooled),
          *emb = malloc((size_t)N * P * sizeof *emb);
    tl_error err = {0};
    int ok = rc_case(rc, !tl_encode_pixels(r->m, pixels, N, pooled, emb, &err),
                     "tl_encode_pixels %s", err.message);
    if (ok) compare_tower_outputs(rc, r, "vision", "image_embeds", pooled, emb, N, D);
    hidden_check h = {NULL, NULL, r->m->w.vision.tokens, {0}};
    int layers = r->m->info.vision_layers;
    load_hidden(r, &h, "vision", layers);
    tl_status st = clip_vision_forward(r->m->be, &r->m->w.vision, pixels, N, NULL, NULL,
                                       &r->m->scratch, compare_hidden, &h, &err);
    rc_case(rc, !st, "vision forward with layer capture %s", err.message);
    report_hidden(rc, "vision", &h, layers, tolerance(r, "hidden_states_abs"));
    free(pixels), free(pooled);
    *n_out = N;
    if (!ok) free(emb);
    return ok ? emb : NULL;
}

/* logits_per_image [Ni, Nt] = exp(logit_scale) · image · textᵀ. */
static void check_logits(refcheck *rc, clip_refs *r, const float *img, int Ni, const float *txt,
                         int Nt) {
    float *logits = malloc((size_t)Ni * Nt * sizeof *logits);
    double scale = tl_model_logit_scale(r->m);
    for (int i = 0; i < Ni; i++)
        for (int t = 0; t < Nt; t++) {
            double s = 0;
            for (int p = 0; p < r->P; p++) s += (double)img[i * r->P + p] * txt[t * r->P + p];
            logits[i * Nt + t] = (float)(scale * s);
        }
    compare_named(rc, r, "logits_per_image", NULL, logits, (size_t)Ni * Nt, "logits_per_image_abs");
    free(logits);
    double want = rc_json_number(r->json, NAN, "model", "logit_scale_exp", (const char *)NULL);
    rc_case(rc, fabs(scale - want) <= 1e-4 * want, "exp(logit_scale) %.6g (want %.6g)", scale,
            want);
}

/* ---- tokenizer ---- */
static int ids_equal(const int32_t *got, int n_got, const json_t *want, int n_want) {
    if (n_got != n_want || (int)json_array_size(want) < n_want) return 0;
    for (int i = 0; i < n_got; i++)
        if (got[i] != json_integer_value(json_array_get(want, (size_t)i))) return 0;
    return 1;
}

static void check_tokenizer_case(refcheck *rc, clip_refs *r, const json_t *c, int ctx) {
    const char *text = json_string_value(json_object_get(c, "text"));
    int index = (int)json_integer_value(json_object_get(c, "index"));
    const json_t *ids = json_object_get(c, "ids"), *input_ids = json_object_get(c, "input_ids");
    int num_tokens = (int)json_integer_value(json_object_get(c, "num_tokens"));
    int32_t *got = calloc((size_t)ctx, sizeof *got), *all = NULL;
    int n = 0, n_all = 0;
    tl_error err = {0};
    int pass = text && !tok_encode(r->m->tok, text, strlen(text), ctx, got, &n, &err) &&
               ids_equal(got, n, input_ids, num_tokens) &&
               !tok_encode_all(r->m->tok, text, strlen(text), &all, &n_all, &err) &&
               ids_equal(all, n_all, ids, (int)json_array_size(ids));
    if (!pass && err.message[0]) printf("# %s\n", err.message);
    rc_case(rc, pass, "tokenizer case %d (%s): ids and truncated input_ids", index,
            json_string_value(json_object_get(c, "category")));
    free(got), free(all);
}

static void check_tokenizer(refcheck *rc, clip_refs *r) {
    const json_t *tok = json_object_get(r->json, "tokenizer");
    const json_t *cases = json_object_get(tok, "cases");
    if (!rc_case(rc, r->m->tok && json_array_size(cases) > 0, "tokenizer loaded, cases present"))
        return;
    int ctx = (int)rc_json_number(tok, 0, "context_length", (const char *)NULL);
    for (size_t i = 0; i < json_array_size(cases); i++)
        check_tokenizer_case(rc, r, json_array_get(cases, i), ctx);
}

/* ---- preprocessing and end to end ---- */
static void compare_u8(refcheck *rc, clip_refs *r, const char *name, const tl_image *img) {
    const st_tensor *t = st_find(r->ex, name);
    int pass = t && t->ndim == 3 && t->shape[0] == img->height && t->shape[1] == img->width &&
               t->shape[2] == 3 && !memcmp(t->data, img->rgb, (size_t)img->width * img->height * 3);
    rc_case(rc, pass, "%s (%dx%d, exact)", name, img->width, img->height);
}

/* Decodes every image of preprocess.images into imgs[] (caller frees with img_free). */
static int check_image(refcheck *rc, clip_refs *r, const json_t *entry, int k, tl_image *img,
                       const float *want_pixels) {
    char path[4096], name[64];
    snprintf(path, sizeof path, "%s/%s", r->dir, json_string_value(json_object_get(entry, "file")));
    tl_error err = {0};
    if (!rc_case(rc, !img_load_file(path, NULL, img, &err), "decode %s %s", path, err.message))
        return 0;
    snprintf(name, sizeof name, "image.%d.rgb", k);
    compare_u8(rc, r, name, img);
    int w, h;
    img_clip_resize_dims(img->width, img->height, r->m->info.image_size, &w, &h);
    tl_image resized = {0};
    snprintf(name, sizeof name, "image.%d.resized", k);
    if (!img_resize_bicubic(img, w, h, &resized, &err))
        compare_u8(rc, r, name, &resized);
    else
        rc_case(rc, 0, "%s: %s", name, err.message);
    img_free(&resized);
    int S = r->m->info.image_size;
    float *px = malloc(3 * (size_t)S * S * sizeof *px);
    snprintf(name, sizeof name, "vision.pixel_values[%d]", k);
    if (!tl_preprocess_image(r->m, img, px, &err))
        rc_compare(rc, name, px, want_pixels + (size_t)k * 3 * S * S, 3 * (size_t)S * S,
                   tolerance(r, "pixel_values_abs_given_identical_u8"));
    else
        rc_case(rc, 0, "%s: %s", name, err.message);
    free(px);
    return 1;
}

static void check_images_end_to_end(refcheck *rc, clip_refs *r) {
    const json_t *images = json_object_get(json_object_get(r->json, "preprocess"), "images");
    int N = (int)json_array_size(images);
    float *want_pixels = rc_tensor_f32(r->ex, "vision.pixel_values", NULL);
    tl_image *imgs = calloc((size_t)N + 1, sizeof *imgs);
    int decoded = want_pixels != NULL;
    for (int k = 0; k < N && want_pixels; k++)
        decoded &= check_image(rc, r, json_array_get(images, (size_t)k), k, &imgs[k], want_pixels);
    if (decoded && N > 0) {
        float *emb = malloc((size_t)N * r->P * sizeof *emb);
        tl_error err = {0};
        if (!tl_embed_images(r->m, imgs, N, emb, &err))
            compare_named(rc, r, "vision.image_embeds",
                          "vision.image_embeds (tl_embed_images from files)", emb, (size_t)N * r->P,
                          "embeds_abs");
        else
            rc_case(rc, 0, "tl_embed_images: %s", err.message);
        free(emb);
    }
    for (int k = 0; k < N; k++) img_free(&imgs[k]);
    free(imgs), free(want_pixels);
}

static void check_texts_end_to_end(refcheck *rc, clip_refs *r) {
    const json_t *texts = json_object_get(json_object_get(r->json, "text"), "texts");
    int N = (int)json_array_size(texts);
    if (!r->m->tok || N == 0) return; /* reported by check_tokenizer */
    const char **strs = calloc((size_t)N, sizeof *strs);
    for (int i = 0; i < N; i++) strs[i] = json_string_value(json_array_get(texts, (size_t)i));
    float *emb = malloc((size_t)N * r->P * sizeof *emb),
          *want = rc_tensor_f32(r->ex, "text.text_embeds", NULL);
    tl_error err = {0};
    if (!tl_embed_texts(r->m, strs, N, emb, &err))
        rc_compare(rc, "text.text_embeds (tl_embed_texts from strings)", emb, want,
                   (size_t)N * r->P, tolerance(r, "embeds_abs"));
    else
        rc_case(rc, 0, "tl_embed_texts: %s", err.message);
    free(strs), free(emb), free(want);
}

static int open_refs(refcheck *rc, clip_refs *r, const char *dir) {
    char path[4096];
    tl_error err = {0};
    r->dir = dir;
    if (!rc_case(rc, !tl_model_open(&r->m, dir, NULL, &err), "open model %s", err.message))
        return 0;
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (!rc_case(rc, !st_open(&r->ex, path, &err), "open expected.safetensors %s", err.message))
        return 0;
    r->json = rc_load_json(dir, "expected.json");
    r->tol = json_object_get(r->json, "recommended_tolerances");
    r->P = r->m->info.projection_dim;
    return rc_case(rc, r->tol != NULL, "expected.json with recommended_tolerances");
}

void refcheck_clip_run(refcheck *rc, const char *dir) {
    clip_refs r = {0};
    if (open_refs(rc, &r, dir)) {
        int Nt = 0, Ni = 0;
        float *txt = check_text_tower(rc, &r, &Nt);
        float *img = check_vision_tower(rc, &r, &Ni);
        if (txt && img) check_logits(rc, &r, img, Ni, txt, Nt);
        free(txt), free(img);
        check_tokenizer(rc, &r);
        check_texts_end_to_end(rc, &r);
        check_images_end_to_end(rc, &r);
    }
    tl_model_close(r.m);
    st_close(r.ex);
    json_decref(r.json);
}
