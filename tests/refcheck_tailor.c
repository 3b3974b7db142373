/* refcheck for FAME-ViL vector folders (tailor-tiny; testdata README T1–T8): contrastive,
 * fusion and generative outputs of every task, heads, losses, greedy captions and the layer
 * internals (debug.*) through the model's trace hook. Every size comes from the folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heads.h"
#include "losses.h"
#include "model_internal.h"
#include "ntm.h"
#include "refcheck.h"

typedef struct tailor_refs {
    tl_model *m;
    st_file *in, *ex; /* inputs.safetensors, expected.safetensors */
    json_t *json;     /* expected.json */
    double tol;
    int N, Nt, P, S, ctx; /* images, texts, projection, image size, ids stride */
    float *pixels;        /* [N, 3, S, S] */
    int32_t *ids;         /* [Nt, ctx] */
    int64_t *eos;         /* [Nt] */
} tailor_refs;

int refcheck_tailor_detect(const char *dir) {
    return rc_file_has_tensors(dir, "inputs.safetensors", "pixel_values", "input_ids");
}

/* ---- debug.* internals through the trace hook ---- */

#define MAX_DEBUG 64

typedef struct debug_check {
    const tailor_refs *r;
    const int64_t *text_eos; /* eos of the traced text rows; NULL: compare every position */
    int n;
    char names[MAX_DEBUG][128];
    double worst[MAX_DEBUG];
} debug_check;

static int debug_slot(debug_check *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->names[i], name)) return i;
    if (d->n == MAX_DEBUG) return -1;
    snprintf(d->names[d->n], sizeof d->names[0], "%s", name);
    d->worst[d->n] = 0;
    return d->n++;
}

/* The axis holding text positions that must be ≤ EOS, or -1. */
static int text_time_axis(const char *name, int ndim) {
    if (strstr(name, "text_xaa_probs")) return 2;
    if (ndim == 3 && (strstr(name, "text_") || strstr(name, ".text."))) return 1;
    return -1;
}

/* Compares got (dims) with want (the reference's shape, same rank) over the reference's
 * elements: positions after a text row's EOS are skipped; elements beyond got's extent
 * (masked keys after the longest EOS) must be 0 in the reference. */
static double compare_traced(const float *got, const int *dims, const float *want,
                             const int64_t *shape, int ndim, int time_axis, const int64_t *eos) {
    size_t total = 1;
    for (int k = 0; k < ndim; k++) total *= (size_t)shape[k];
    double worst = 0;
    for (size_t flat = 0; flat < total; flat++) {
        size_t rest = flat, got_index = 0, stride = 1;
        int idx[ST_MAX_DIMS] = {0}, inside = 1;
        for (int k = ndim - 1; k >= 0; k--) {
            idx[k] = (int)(rest % (size_t)shape[k]);
            rest /= (size_t)shape[k];
        }
        for (int k = ndim - 1; k >= 0; k--) {
            inside &= idx[k] < dims[k];
            got_index += (size_t)idx[k] * stride;
            stride *= (size_t)dims[k];
        }
        if (time_axis >= 0 && eos && idx[time_axis] > eos[idx[0]]) continue;
        double d = fabs((inside ? got[got_index] : 0.0) - want[flat]);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

static void on_trace(void *ctx, const char *name, const float *data, const int *dims, int ndim) {
    debug_check *d = ctx;
    char key[128];
    snprintf(key, sizeof key, "debug.%s", name);
    const st_tensor *t = st_find(d->r->ex, key);
    int slot = t ? debug_slot(d, key) : -1;
    if (slot < 0) return;
    float *want = malloc((size_t)st_numel(t) * sizeof *want);
    if (!want || t->ndim != ndim || t->shape[0] != dims[0]) {
        d->worst[slot] = INFINITY;
        free(want);
        return;
    }
    st_to_f32(t, want);
    int axis = text_time_axis(name, ndim);
    double w = compare_traced(data, dims, want, t->shape, ndim, axis, d->text_eos);
    if (!(w <= d->worst[slot])) d->worst[slot] = w;
    free(want);
}

static void report_debug(refcheck *rc, const tailor_refs *r, const debug_check *d) {
    for (size_t i = 0; i < st_count(r->ex); i++) {
        const char *name = st_at(r->ex, i)->name;
        if (strncmp(name, "debug.", 6) != 0) continue;
        int slot = -1;
        for (int k = 0; k < d->n; k++)
            if (!strcmp(d->names[k], name)) slot = k;
        if (slot < 0) {
            rc_case(rc, 0, "%s was not traced", name);
            continue;
        }
        rc_case(rc, d->worst[slot] <= r->tol, "%s (max |diff| %.3g, tol %.3g)", name,
                d->worst[slot], r->tol);
    }
}

/* ---- helpers ---- */

static void compare_expected(refcheck *rc, const tailor_refs *r, const char *name, const float *got,
                             size_t n) {
    rc_compare_tensor(rc, r->ex, name, name, got, n, r->tol);
}

/* An I64 index list of inputs.safetensors as ints (caller frees), count in *n. */
static int *index_list(const tailor_refs *r, const char *name, int *n) {
    size_t count = 0;
    int64_t *v = rc_tensor_i64(r->in, name, &count);
    int *out = v ? malloc((count + 1) * sizeof *out) : NULL;
    for (size_t i = 0; out && i < count; i++) out[i] = (int)v[i];
    *n = (int)count;
    free(v);
    return out;
}

static float *gather_pixels(const tailor_refs *r, const int *rows, int n) {
    size_t per = 3 * (size_t)r->S * r->S;
    float *out = malloc((size_t)n * per * sizeof *out);
    for (int i = 0; out && i < n; i++)
        memcpy(out + i * per, r->pixels + (size_t)rows[i] * per, per * sizeof *out);
    return out;
}

static int32_t *gather_ids(const tailor_refs *r, const int *rows, int n) {
    int32_t *out = malloc((size_t)n * r->ctx * sizeof *out);
    for (int i = 0; out && i < n; i++)
        memcpy(out + (size_t)i * r->ctx, r->ids + (size_t)rows[i] * r->ctx,
               (size_t)r->ctx * sizeof *out);
    return out;
}

static float *gather_rows_f(const float *x, const int *rows, int n, int P) {
    float *out = malloc((size_t)n * P * sizeof *out);
    for (int i = 0; out && i < n; i++)
        memcpy(out + (size_t)i * P, x + (size_t)rows[i] * P, (size_t)P * sizeof *out);
    return out;
}

/* logits[n, n2] = a[n, P] · b[n2, P]ᵀ in double, stored as float. */
static void dot_rows(const float *a, int n, const float *b, int n2, int P, float *logits) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n2; j++) {
            double s = 0;
            for (int k = 0; k < P; k++) s += (double)a[(size_t)i * P + k] * b[(size_t)j * P + k];
            logits[(size_t)i * n2 + j] = (float)s;
        }
}

static void compare_loss(refcheck *rc, const tailor_refs *r, const char *name, double got) {
    float g = (float)got;
    compare_expected(rc, r, name, &g, 1);
}

/* ---- checks ---- */

static const char *const mode_names[] = {"none", "xmr", "tgir", "scr", "fic"};

/* contrastive.{mode}.{image,text}_embeds; keeps the xmr and tgir ones in emb_* [task]. */
static void check_contrastive(refcheck *rc, tailor_refs *r, debug_check *d, float *img[],
                              float *txt[]) {
    for (int k = 0; k < 5; k++) {
        int task = k - 1;
        tl_error err = {0};
        float *iv = malloc((size_t)r->N * r->P * sizeof *iv);
        float *tv = malloc((size_t)r->Nt * r->P * sizeof *tv);
        tl_model_set_trace(r->m, task == TL_TASK_XMR ? on_trace : NULL, d);
        d->text_eos = r->eos;
        tl_status st = tl_encode_pixels_task(r->m, task, r->pixels, r->N, iv, &err);
        if (!st) st = tl_encode_text_ids_task(r->m, task, r->ids, r->ctx, r->Nt, tv, &err);
        tl_model_set_trace(r->m, NULL, NULL);
        char name[96];
        if (rc_case(rc, !st, "contrastive %s forward %s", mode_names[k], err.message)) {
            snprintf(name, sizeof name, "contrastive.%s.image_embeds", mode_names[k]);
            compare_expected(rc, r, name, iv, (size_t)r->N * r->P);
            snprintf(name, sizeof name, "contrastive.%s.text_embeds", mode_names[k]);
            compare_expected(rc, r, name, tv, (size_t)r->Nt * r->P);
        }
        if (task == TL_TASK_XMR || task == TL_TASK_TGIR) {
            img[task] = iv;
            txt[task] = tv;
        } else {
            free(iv);
            free(tv);
        }
    }
}

/* Norm head rows σ·n(x) of x's rows `rows`. */
static float *norm_feats(const tailor_refs *r, const float *x, const int *rows, int n, int task) {
    float *f = gather_rows_f(x, rows, n, r->P);
    if (f) norm_head_forward(f, n, r->P, tl_task_head_scale(r->m, task));
    return f;
}

static void check_xmr(refcheck *rc, tailor_refs *r, float *img[], float *txt[]) {
    int ni, nt;
    int *ii = index_list(r, "xmr_image", &ni), *ti = index_list(r, "xmr_text", &nt);
    if (!rc_case(rc, ii && ti && ni == nt && img[TL_TASK_XMR], "xmr batch")) goto done;
    float *fi = norm_feats(r, img[TL_TASK_XMR], ii, ni, TL_TASK_XMR);
    float *ft = norm_feats(r, txt[TL_TASK_XMR], ti, nt, TL_TASK_XMR);
    float *logits = malloc((size_t)ni * nt * sizeof *logits);
    compare_expected(rc, r, "xmr.image_feats", fi, (size_t)ni * r->P);
    compare_expected(rc, r, "xmr.text_feats", ft, (size_t)nt * r->P);
    dot_rows(fi, ni, ft, nt, r->P, logits);
    compare_expected(rc, r, "xmr.logits", logits, (size_t)ni * nt);
    compare_loss(rc, r, "loss.xmr", symmetric_ce_loss(logits, ni));
    free(fi);
    free(ft);
    free(logits);
done:
    free(ii);
    free(ti);
}

/* Fusion mode with TSA_task on the pairs (image_list[i], text_list[i]): returns fused
 * [n, P] (caller frees; NULL on failure) and the projected CLS / EOS in *v, *t. With d the
 * run is traced. */
static float *run_fusion(refcheck *rc, tailor_refs *r, int task, const char *image_list,
                         const char *text_list, debug_check *d, int *n, float **v, float **t) {
    int ni, nt;
    int *ii = index_list(r, image_list, &ni), *ti = index_list(r, text_list, &nt);
    float *px = ii ? gather_pixels(r, ii, ni) : NULL;
    int32_t *ids = ti ? gather_ids(r, ti, nt) : NULL;
    float *fused = malloc((size_t)(ni + 1) * r->P * sizeof *fused);
    int64_t *eos = malloc((size_t)(nt + 1) * sizeof *eos);
    *v = malloc((size_t)(ni + 1) * r->P * sizeof **v);
    *t = malloc((size_t)(ni + 1) * r->P * sizeof **t);
    for (int i = 0; eos && ti && i < nt; i++) eos[i] = r->eos[ti[i]];
    tl_error err = {0};
    tl_status st = TL_ERR_INVALID;
    if (px && ids && fused && eos && *v && *t && ni == nt) {
        if (d) d->text_eos = eos;
        tl_model_set_trace(r->m, d ? on_trace : NULL, d);
        st = tl_fuse_ids(r->m, task, px, ids, r->ctx, ni, *v, *t, fused, &err);
        tl_model_set_trace(r->m, NULL, NULL);
    }
    rc_case(rc, !st, "fusion %s on %s/%s %s", tl_task_name(task), image_list, text_list,
            err.message);
    *n = ni;
    free(ii);
    free(ti);
    free(px);
    free(ids);
    free(eos);
    if (!st) return fused;
    free(fused);
    return NULL;
}

static void check_fusion_outputs(refcheck *rc, tailor_refs *r, int task, debug_check *d) {
    int n;
    float *v = NULL, *t = NULL;
    float *f = run_fusion(rc, r, task, "pair_image", "pair_text", d, &n, &v, &t);
    char name[64];
    const char *tn = tl_task_name(task);
    if (f) {
        snprintf(name, sizeof name, "fusion.%s.image_embeds", tn);
        compare_expected(rc, r, name, v, (size_t)n * r->P);
        snprintf(name, sizeof name, "fusion.%s.text_embeds", tn);
        compare_expected(rc, r, name, t, (size_t)n * r->P);
        snprintf(name, sizeof name, "fusion.%s.fused", tn);
        compare_expected(rc, r, name, f, (size_t)n * r->P);
    }
    free(f);
    free(v);
    free(t);
}

static void check_tgir(refcheck *rc, tailor_refs *r, float *img[]) {
    int n, ng;
    float *v = NULL, *t = NULL;
    float *f = run_fusion(rc, r, TL_TASK_TGIR, "tgir_ref", "tgir_text", NULL, &n, &v, &t);
    int *target = index_list(r, "tgir_target", &ng);
    if (f && target && ng == n && img[TL_TASK_TGIR]) {
        int *all = malloc((size_t)n * sizeof *all);
        for (int i = 0; all && i < n; i++) all[i] = i;
        float *query = all ? norm_feats(r, f, all, n, TL_TASK_TGIR) : NULL;
        float *gallery = norm_feats(r, img[TL_TASK_TGIR], target, n, TL_TASK_TGIR);
        float *logits = malloc((size_t)n * n * sizeof *logits);
        int *diag = malloc((size_t)n * sizeof *diag);
        compare_expected(rc, r, "tgir.query", query, (size_t)n * r->P);
        compare_expected(rc, r, "tgir.gallery", gallery, (size_t)n * r->P);
        dot_rows(query, n, gallery, n, r->P, logits);
        compare_expected(rc, r, "tgir.logits", logits, (size_t)n * n);
        for (int i = 0; i < n; i++) diag[i] = i;
        compare_loss(rc, r, "loss.tgir", ce_loss(logits, diag, n, n));
        free(all);
        free(query);
        free(gallery);
        free(logits);
        free(diag);
    }
    free(f);
    free(v);
    free(t);
    free(target);
}

static void check_scr(refcheck *rc, tailor_refs *r) {
    int n, nl;
    float *v = NULL, *t = NULL;
    float *f = run_fusion(rc, r, TL_TASK_SCR, "scr_image", "scr_text", NULL, &n, &v, &t);
    int *labels = index_list(r, "scr_label", &nl);
    const char *const *names;
    int classes = tl_scr_labels(r->m, &names);
    float *logits = malloc((size_t)(n + 1) * (classes + 1) * sizeof *logits);
    tl_error err = {0};
    if (f && labels && logits && nl == n &&
        rc_case(rc, !tl_scr_logits(r->m, f, n, logits, &err), "scr head %s", err.message)) {
        compare_expected(rc, r, "scr.logits", logits, (size_t)n * classes);
        compare_loss(rc, r, "loss.scr", ce_loss(logits, labels, n, classes));
    }
    free(f);
    free(v);
    free(t);
    free(labels);
    free(logits);
}

/* fic.hidden and fic.logits at positions 0..EOS, loss.fic. */
static void check_fic(refcheck *rc, tailor_refs *r, debug_check *d) {
    int nb;
    size_t count = 0;
    int *images = index_list(r, "fic_image", &nb);
    int64_t *ids64 = rc_tensor_i64(r->in, "fic_ids", &count);
    if (!rc_case(rc, images && ids64 && nb > 0 && count % (size_t)nb == 0, "fic inputs")) {
        free(images);
        free(ids64);
        return;
    }
    int T = (int)(count / (size_t)nb), D = r->m->info.text_width, V = r->m->info.vocab_size;
    int32_t *ids = malloc(count * sizeof *ids);
    int *targets = malloc(count * sizeof *targets);
    float *px = gather_pixels(r, images, nb);
    float *hidden = malloc(count * D * sizeof *hidden),
          *logits = malloc(count * V * sizeof *logits);
    for (size_t i = 0; i < count; i++) ids[i] = (int32_t)ids64[i];
    tl_error err = {0};
    d->text_eos = NULL; /* the reference ran the same T positions: compare them all */
    tl_model_set_trace(r->m, on_trace, d);
    tl_status st = tl_fic_forward(r->m, px, ids, T, nb, hidden, logits, &err);
    tl_model_set_trace(r->m, NULL, NULL);
    if (rc_case(rc, !st, "generative forward (teacher forcing) %s", err.message)) {
        /* the stored ids run as they are (padding included), so every position compares;
         * the loss scores positions 0..EOS-1 only */
        for (int b = 0; b < nb; b++) {
            int e = clip_text_pool_position(ids + (size_t)b * T, T);
            for (int p = 0; p < T; p++) targets[b * T + p] = p < e ? ids[b * T + p + 1] : -1;
        }
        compare_expected(rc, r, "fic.hidden", hidden, count * D);
        compare_expected(rc, r, "fic.logits", logits, count * V);
        compare_loss(rc, r, "loss.fic", ce_loss(logits, targets, (int)count, V));
    }
    free(images);
    free(ids64);
    free(ids);
    free(targets);
    free(px);
    free(hidden);
    free(logits);
}

/* caption.ids / caption.lengths exactly: greedy, limit = the reference's row length. */
static void check_captions(refcheck *rc, tailor_refs *r) {
    size_t count = 0, n_len = 0;
    int64_t *want = rc_tensor_i64(r->ex, "caption.ids", &count);
    int64_t *lengths = rc_tensor_i64(r->ex, "caption.lengths", &n_len);
    int limit = n_len ? (int)(count / n_len) : 0;
    int32_t *ids = malloc((size_t)(limit + 1) * sizeof *ids);
    for (size_t i = 0; want && lengths && ids && i < n_len && (int)i < r->N; i++) {
        tl_caption_opts opts = {.beam = 1, .max_tokens = limit};
        tl_error err = {0};
        int n = 0;
        size_t per = 3 * (size_t)r->S * r->S;
        tl_status st = tl_caption_pixels(r->m, r->pixels + i * per, &opts, ids, limit, &n, &err);
        int same = !st && n == lengths[i];
        for (int k = 0; same && k < limit; k++)
            same = (k < n ? ids[k] : -1) == want[i * (size_t)limit + k];
        rc_case(rc, same, "caption.ids of image %zu (length %d, want %lld) %s", i, n,
                (long long)lengths[i], err.message);
    }
    if (!want || !lengths) rc_case(rc, 0, "caption references present");
    free(want);
    free(lengths);
    free(ids);
}

/* ---- CM-NTM (MODEL.md §3): ntm.* values, through ntm.h ---- */

typedef struct ntm_refs {
    int turns, batch, C, N, W, H, P;
    float *x, *gallery; /* [turns, batch, P], [batch, P] */
    /* got values in the reference layouts */
    float *q, *outputs, *w_r, *w_w, *reads, *M, *h, *cell, *r, *fw_r, *fw_w;
} ntm_refs;

/* Steps transaction b through every turn, storing its values into the reference layouts. */
static tl_status ntm_run_transaction(const ntm_weights *w, ntm_state *s, ntm_refs *n, int b,
                                     tl_error *err) {
    int C = n->C, N = n->N, W = n->W, P = n->P, B = n->batch;
    float *o = malloc((size_t)C * (P + 2 * N + W) * sizeof *o);
    if (!o) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    ntm_trace tr = {o, o + C * P, o + C * P + C * N, o + C * P + 2 * C * N};
    tl_status st = ntm_state_init(s, w, err);
    for (int t = 0; t < n->turns && !st; t++) {
        st = ntm_turn(w, s, n->x + ((size_t)t * B + b) * P, n->q + ((size_t)t * B + b) * P, &tr,
                      err);
        for (int c = 0; c < C && !st; c++) { /* [turn, block, transaction, ·] */
            size_t at = ((size_t)t * C + c) * B + b;
            memcpy(n->outputs + at * P, tr.block_outputs + c * P, (size_t)P * sizeof(float));
            memcpy(n->w_r + at * N, tr.read_weights + c * N, (size_t)N * sizeof(float));
            memcpy(n->w_w + at * N, tr.write_weights + c * N, (size_t)N * sizeof(float));
            memcpy(n->reads + at * W, tr.read_vectors + c * W, (size_t)W * sizeof(float));
        }
    }
    for (int c = 0; c < C && !st; c++) { /* final state [block, transaction, ·] */
        const ntm_block_state *bs = &s->blocks[c];
        size_t at = (size_t)c * B + b;
        memcpy(n->M + at * N * W, bs->M, (size_t)N * W * sizeof(float));
        memcpy(n->h + at * n->H, bs->h, (size_t)n->H * sizeof(float));
        memcpy(n->cell + at * n->H, bs->cell, (size_t)n->H * sizeof(float));
        memcpy(n->r + at * W, bs->r, (size_t)W * sizeof(float));
        memcpy(n->fw_r + at * N, bs->w_r, (size_t)N * sizeof(float));
        memcpy(n->fw_w + at * N, bs->w_w, (size_t)N * sizeof(float));
    }
    free(o);
    return st;
}

static void compare_ntm(refcheck *rc, const tailor_refs *r, ntm_refs *n) {
    size_t TB = (size_t)n->turns * n->batch, CB = (size_t)n->C * n->batch;
    compare_expected(rc, r, "ntm.q", n->q, TB * n->P);
    compare_expected(rc, r, "ntm.block_outputs", n->outputs, TB * n->C * n->P);
    compare_expected(rc, r, "ntm.read_weights", n->w_r, TB * n->C * n->N);
    compare_expected(rc, r, "ntm.write_weights", n->w_w, TB * n->C * n->N);
    compare_expected(rc, r, "ntm.read_vectors", n->reads, TB * n->C * n->W);
    compare_expected(rc, r, "ntm.final.M", n->M, CB * n->N * n->W);
    compare_expected(rc, r, "ntm.final.h", n->h, CB * n->H);
    compare_expected(rc, r, "ntm.final.cell", n->cell, CB * n->H);
    compare_expected(rc, r, "ntm.final.r", n->r, CB * n->W);
    compare_expected(rc, r, "ntm.final.w_r", n->fw_r, CB * n->N);
    compare_expected(rc, r, "ntm.final.w_w", n->fw_w, CB * n->N);
    float *logits = malloc((size_t)n->batch * n->batch * sizeof *logits);
    int *diag = malloc((size_t)n->batch * sizeof *diag);
    if (logits && diag) {
        const float *q_last = n->q + (size_t)(n->turns - 1) * n->batch * n->P;
        dot_rows(q_last, n->batch, n->gallery, n->batch, n->P, logits);
        for (int i = 0; i < n->batch; i++) diag[i] = i;
        compare_expected(rc, r, "ntm.logits", logits, (size_t)n->batch * n->batch);
        compare_loss(rc, r, "loss.ntm", ce_loss(logits, diag, n->batch, n->batch));
    }
    free(logits);
    free(diag);
}

static void check_ntm(refcheck *rc, tailor_refs *r, const char *dir) {
    json_t *config = rc_load_json(dir, "config.json");
    const json_t *ntm = json_object_get(json_object_get(config, "tailor"), "ntm");
    ntm_config cfg;
    ntm_weights w = {0};
    ntm_state s = {0};
    tl_error err = {0};
    tl_status st = ntm_config_parse(&cfg, ntm, r->P, &err);
    if (!st) st = ntm_weights_bind(&w, r->m->st, &cfg, r->m->be, &err);
    if (!st) st = ntm_state_alloc(&s, &cfg, &err);
    size_t nx = 0, ng = 0;
    ntm_refs n = {0};
    n.x = rc_tensor_f32(r->in, "ntm_x", &nx);
    n.gallery = rc_tensor_f32(r->in, "ntm_gallery", &ng);
    if (rc_case(rc, !st && n.x && n.gallery, "ntm weights and inputs %s", err.message)) {
        n.C = cfg.blocks, n.N = cfg.slots, n.W = cfg.width, n.H = cfg.hidden, n.P = r->P;
        n.batch = (int)(ng / (size_t)n.P);
        n.turns = (int)(nx / ng);
        size_t TB = (size_t)n.turns * n.batch, CB = (size_t)n.C * n.batch;
        float *all = malloc((TB * (n.P + n.C * (n.P + 2 * n.N + n.W)) +
                             CB * (n.N * n.W + 2 * n.H + n.W + 2 * n.N)) *
                            sizeof *all);
        float *p = all;
        float **slots[] = {&n.q, &n.outputs, &n.w_r, &n.w_w,  &n.reads, &n.M,
                           &n.h, &n.cell,    &n.r,   &n.fw_r, &n.fw_w};
        size_t sizes[] = {TB * n.P,       TB * n.C * n.P, TB * n.C * n.N, TB * n.C * n.N,
                          TB * n.C * n.W, CB * n.N * n.W, CB * n.H,       CB * n.H,
                          CB * n.W,       CB * n.N,       CB * n.N};
        for (size_t k = 0; all && k < sizeof sizes / sizeof *sizes; k++) {
            *slots[k] = p;
            p += sizes[k];
        }
        for (int b = 0; all && b < n.batch && !st; b++)
            st = ntm_run_transaction(&w, &s, &n, b, &err);
        if (rc_case(rc, all && !st, "ntm turns %s", err.message)) compare_ntm(rc, r, &n);
        free(all);
    }
    free(n.x);
    free(n.gallery);
    ntm_state_release(&s);
    ntm_weights_release(&w);
    json_decref(config);
}

/* ---- setup ---- */

/* The max-abs tolerance of expected.json (recommended_tolerances.max_abs; NaN if absent,
 * which fails every comparison). */
static double read_tolerance(const json_t *json) {
    json_t *max_abs = json_object_get(json_object_get(json, "recommended_tolerances"), "max_abs");
    const char *key;
    json_t *v;
    json_object_foreach(max_abs, key, v) if (json_is_number(v)) return json_number_value(v);
    return NAN;
}

static int load_inputs(refcheck *rc, tailor_refs *r, const char *dir) {
    char path[4096];
    tl_error err = {0};
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (!rc_case(rc, !st_open(&r->in, path, &err), "inputs.safetensors %s", err.message)) return 0;
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (!rc_case(rc, !st_open(&r->ex, path, &err), "expected.safetensors %s", err.message))
        return 0;
    tl_status st = tl_model_open(&r->m, dir, NULL, &err);
    if (!rc_case(rc, !st, "model opens %s", st ? err.message : "")) return 0;
    const tl_model_info *info = tl_model_get_info(r->m);
    r->P = info->projection_dim;
    r->S = info->image_size;
    size_t n_px = 0, n_ids = 0, n_eos = 0;
    r->pixels = rc_tensor_f32(r->in, "pixel_values", &n_px);
    int64_t *ids = rc_tensor_i64(r->in, "input_ids", &n_ids);
    r->eos = rc_tensor_i64(r->in, "eos_index", &n_eos);
    r->N = (int)(n_px / (3 * (size_t)r->S * r->S));
    r->Nt = (int)n_eos;
    r->ctx = n_eos ? (int)(n_ids / n_eos) : 0;
    r->ids = ids ? malloc((n_ids + 1) * sizeof *r->ids) : NULL;
    for (size_t i = 0; r->ids && i < n_ids; i++) r->ids[i] = (int32_t)ids[i];
    free(ids);
    r->json = rc_load_json(dir, "expected.json");
    r->tol = read_tolerance(r->json);
    return rc_case(rc, r->pixels && r->ids && r->eos && r->N > 0 && r->ctx > 0 && r->tol > 0,
                   "inputs: %d images, %d texts of %d ids, tolerance %g", r->N, r->Nt, r->ctx,
                   r->tol);
}

/* The folder's model holds every part of the tasks config.json lists, and the NTM when it
 * configures one. */
static void check_capabilities(refcheck *rc, tailor_refs *r, const char *dir) {
    json_t *config = rc_load_json(dir, "config.json");
    const json_t *tasks = json_object_get(json_object_get(config, "tailor"), "tasks");
    unsigned caps = tl_model_capabilities(r->m), want = 0;
    size_t i;
    json_t *v;
    json_array_foreach(tasks, i, v) {
        int t = tl_task_from_name(json_string_value(v));
        if (t >= 0) want |= 1u << t;
    }
    if (json_object_get(json_object_get(config, "tailor"), "ntm")) want |= TL_CAP_NTM;
    rc_case(rc, tasks && caps == want, "capabilities %#x (config.json tasks: %#x)", caps, want);
    json_decref(config);
}

void refcheck_tailor_run(refcheck *rc, const char *dir) {
    tailor_refs r = {0};
    debug_check d = {.r = &r};
    float *img[TL_TASK_COUNT] = {0}, *txt[TL_TASK_COUNT] = {0};
    if (load_inputs(rc, &r, dir)) {
        check_capabilities(rc, &r, dir);
        check_contrastive(rc, &r, &d, img, txt);
        check_xmr(rc, &r, img, txt);
        check_fusion_outputs(rc, &r, TL_TASK_TGIR, &d);
        check_fusion_outputs(rc, &r, TL_TASK_SCR, NULL);
        check_tgir(rc, &r, img);
        check_scr(rc, &r);
        check_fic(rc, &r, &d);
        check_captions(rc, &r);
        check_ntm(rc, &r, dir);
        report_debug(rc, &r, &d);
    }
    for (int t = 0; t < TL_TASK_COUNT; t++) {
        free(img[t]);
        free(txt[t]);
    }
    free(r.pixels);
    free(r.ids);
    free(r.eos);
    json_decref(r.json);
    tl_model_close(r.m);
    st_close(r.in);
    st_close(r.ex);
}
