/* Tailor's model engine: the one public header for the CLI, the server and the trainer's
 * evaluation. An opaque context loads a checkpoint directory (MODEL.md §5; a plain HF CLIP
 * directory is valid) and writes results into caller-owned buffers. Every call returns a
 * tl_status and fills a tl_error; nothing here exits or aborts on bad input.
 * A tl_model is not thread-safe: use it from one thread at a time. */
#ifndef TAILOR_MODEL_H
#define TAILOR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "image.h"

#define TAILOR_VERSION "0.1.0"

typedef struct tl_model tl_model;

typedef struct tl_model_opts {
    int n_threads;       /* 0 = number of online CPUs */
    const char *backend; /* "cpu" (default) or "cuda" */
    float session_decay; /* sessions without a trained NTM: decay in (0, 1]; 0 = 0.5 */
    /* 1: captions decode on bfloat16 copies of the text decoder's Linear weights and the fic
     * head (made when the model opens: tl_model_info.decode_bf16_bytes), faster per token on
     * a CPU; logits then differ from fp32 by bfloat16 rounding (captions may too).
     * 0 (default): fp32, matching the reference. Teacher forcing always runs fp32. */
    int decode_bf16;
} tl_model_opts;

typedef struct tl_model_info {
    int projection_dim;              /* P: embedding width */
    int image_size;                  /* S: input pixels per side */
    int context_length;              /* text positions (77 for CLIP) */
    int vocab_size;
    int vision_width, vision_layers, vision_heads;
    int text_width, text_layers, text_heads;
    int has_tokenizer;               /* vocab.json + merges.txt present: text calls work */
    size_t decode_bf16_bytes;        /* memory of the decode_bf16 weight copies (0: none) */
} tl_model_info;

/* Opens checkpoint directory dir (config.json + model.safetensors or sharded index; weights
 * are memory-mapped, not copied). opts may be NULL. *out is owned by the caller. Missing or
 * mis-shaped tensors are TL_ERR_FORMAT / TL_ERR_NOT_FOUND errors naming the tensor. */
tl_status tl_model_open(tl_model **out, const char *dir, const tl_model_opts *opts,
                        tl_error *err);
void tl_model_close(tl_model *m);
const tl_model_info *tl_model_get_info(const tl_model *m);

/* Plain CLIP embeddings, L2-normalised, out[n, P]. Texts are tokenized and truncated to the
 * context length. */
tl_status tl_embed_texts(tl_model *m, const char *const *texts, int n, float *out,
                         tl_error *err);
tl_status tl_embed_images(tl_model *m, const tl_image *images, int n, float *out,
                          tl_error *err);

/* Preprocesses one decoded image into pixels[3, S, S] (CLIP normalisation). */
tl_status tl_preprocess_image(const tl_model *m, const tl_image *image, float *pixels,
                              tl_error *err);

/* Lower level: encoders on ready inputs, for refcheck and evaluation.
 * ids: n rows of ids_stride token ids each (each row holds its EOS; positions after the
 * first highest id are ignored). pixels: [n, 3, S, S].
 * pooled: [n, width] or NULL; embeds: [n, P] projected, NOT normalised. */
tl_status tl_encode_text_ids(tl_model *m, const int32_t *ids, int ids_stride, int n,
                             float *pooled, float *embeds, tl_error *err);
tl_status tl_encode_pixels(tl_model *m, const float *pixels, int n, float *pooled,
                           float *embeds, tl_error *err);

/* exp(logit_scale) of the checkpoint (100 for CLIP). */
float tl_model_logit_scale(const tl_model *m);

/* ---- Tasks (FAME-ViL, MODEL.md §2) ---- */

/* Tasks in MODEL.md's order. */
typedef enum tl_task { TL_TASK_XMR, TL_TASK_TGIR, TL_TASK_SCR, TL_TASK_FIC, TL_TASK_COUNT } tl_task;

/* "xmr", "tgir", "scr", "fic"; NULL outside the range. */
const char *tl_task_name(int task);
/* The task named name, or -1. */
int tl_task_from_name(const char *name);

/* Capabilities: bit (1u << task) when the checkpoint holds everything the task needs:
 * xmr = TSA_xmr + heads.xmr; tgir = TSA_tgir + XAA + heads.tgir; scr = TSA_scr + XAA +
 * heads.scr; fic = TSA_fic + XAA + heads.fic; and TL_CAP_NTM (sessions, below). 0 for a plain
 * CLIP checkpoint (zero-shot). */
#define TL_CAP_XMR  (1u << TL_TASK_XMR)
#define TL_CAP_TGIR (1u << TL_TASK_TGIR)
#define TL_CAP_SCR  (1u << TL_TASK_SCR)
#define TL_CAP_FIC  (1u << TL_TASK_FIC)
unsigned tl_model_capabilities(const tl_model *m);

/* Task embeddings (contrastive mode with TSA_task, task xmr or tgir), L2-normalised, out[n, P].
 * The Norm head σ·n(x) only scales these unit vectors: cosine ranking is unchanged, and
 * tl_task_head_scale gives σ for logits σ²·cos. TGIR gallery features are
 * tl_embed_images_task(TL_TASK_TGIR). TL_ERR_UNAVAILABLE when the checkpoint lacks TSA_task. */
tl_status tl_embed_texts_task(tl_model *m, tl_task task, const char *const *texts, int n,
                              float *out, tl_error *err);
tl_status tl_embed_images_task(tl_model *m, tl_task task, const tl_image *images, int n, float *out,
                               tl_error *err);

/* σ of heads.{xmr,tgir}; 0 when absent. */
float tl_task_head_scale(const tl_model *m, tl_task task);

/* TGIR queries: n (reference image, modifying text) pairs → out[n, P], L2-normalised
 * (= n(Norm_tgir(f)), f = fusion with TSA_tgir; also the NTM's input x_t). Without the tgir
 * capability: the zero-shot composition n(n(v_ref) + n(t)) of plain CLIP embeddings. */
tl_status tl_compose(tl_model *m, const tl_image *refs, const char *const *texts, int n, float *out,
                     tl_error *err);

/* The scr head's class labels (borrowed from m) and their count; 0 without the scr head. */
int tl_scr_labels(const tl_model *m, const char *const **labels);

/* Sub-category probabilities of (image, text), probs[n_labels] in label order.
 * labels == NULL: the scr head over tl_scr_labels (TL_ERR_UNAVAILABLE without it).
 * labels given: the scr head when they are exactly its labels; otherwise zero-shot CLIP,
 * softmax(exp(logit_scale) · cos(image, "a photo of a {label}")) (text is not used). */
tl_status tl_classify(tl_model *m, const tl_image *image, const char *text,
                      const char *const *labels, int n_labels, float *probs, tl_error *err);

typedef struct tl_caption_opts {
    int beam;       /* beam width; 0 or 1 = greedy */
    int max_tokens; /* sequence limit, SOS and EOS included; 0 = the context length */
} tl_caption_opts;

/* Captions one image (generative mode with TSA_fic, XAA and heads.fic; greedy or beam).
 * ids[ids_cap] receives the sequence, SOS first and EOS kept when reached, *n_ids its
 * length (ids_cap ≥ the limit, else TL_ERR_LIMIT). text (may be NULL) receives the decoded
 * caption (NUL-terminated, cap bytes) when the checkpoint has a tokenizer matching its
 * vocabulary, else "". opts may be NULL. TL_ERR_UNAVAILABLE without the fic capability. */
tl_status tl_caption(tl_model *m, const tl_image *image, const tl_caption_opts *opts, int32_t *ids,
                     int ids_cap, int *n_ids, char *text, size_t text_cap, tl_error *err);

/* Lower level, on ready inputs (refcheck, evaluation); inputs as for tl_encode_*.
 * task -1 = plain CLIP. embeds: [n, P] projected, NOT normalised. */
tl_status tl_encode_pixels_task(tl_model *m, int task, const float *pixels, int n, float *embeds,
                                tl_error *err);
tl_status tl_encode_text_ids_task(tl_model *m, int task, const int32_t *ids, int ids_stride, int n,
                                  float *embeds, tl_error *err);
/* Fusion mode with TSA_task (tgir or scr) on n (pixels[i], ids row i) pairs: projected CLS
 * image_embeds[n, P], projected EOS text_embeds[n, P] (either may be NULL), fused = their
 * sum [n, P]. */
tl_status tl_fuse_ids(tl_model *m, tl_task task, const float *pixels, const int32_t *ids,
                      int ids_stride, int n, float *image_embeds, float *text_embeds, float *fused,
                      tl_error *err);
/* scr head on fused vectors: logits[n, classes] (un-normalised). */
tl_status tl_scr_logits(tl_model *m, const float *fused, int n, float *logits, tl_error *err);
/* Generative mode, teacher forcing: the decoder on ids[n, T] (all T positions run) with
 * memory from pixels[n]: final-LN hidden[n, T, Dt] (may be NULL), logits[n, T, vocab]. */
tl_status tl_fic_forward(tl_model *m, const float *pixels, const int32_t *ids, int T, int n,
                         float *hidden, float *logits, tl_error *err);
/* tl_caption on preprocessed pixels[3, S, S], ids only. */
tl_status tl_caption_pixels(tl_model *m, const float *pixels, const tl_caption_opts *opts,
                            int32_t *ids, int ids_cap, int *n_ids, tl_error *err);

/* Observes internal activations (tests): fn(ctx, name, data, dims, ndim) is called with
 * names such as "fusion.tgir.layer0.vision_z_prime" (testdata README T5, without "debug.");
 * data is only valid during the call. fn NULL turns tracing off. */
typedef void (*tl_trace_fn)(void *ctx, const char *name, const float *data, const int *dims,
                            int ndim);
void tl_model_set_trace(tl_model *m, tl_trace_fn fn, void *ctx);

/* ---- Multi-turn sessions (MODEL.md §3; bytes: proto/session.md) ---- */

/* Capability bit of a trained CM-NTM (config.json tailor.ntm and every ntm.* tensor). Without it
 * sessions use the zero-shot decayed sum (proto/fallbacks.md); a checkpoint holding only some
 * ntm.* tensors does not open (the error names the first missing tensor). */
#define TL_CAP_NTM (1u << TL_TASK_COUNT)

/* "xmr", "tgir", "scr", "fic" or "ntm" for one capability bit; NULL otherwise. */
const char *tl_capability_name(unsigned cap);

/* One multi-turn search session: the NTM memory (or decayed sum), the turn count, the ids
 * already shown and an expiry. Belongs to the model that created or restored it. */
typedef struct tl_session tl_session;

typedef struct tl_session_opts {
    int64_t expires_at; /* unix seconds; 0 = no expiry */
} tl_session_opts;

/* A new session at the initial state (no turns). opts may be NULL. *out is owned by the caller
 * (tl_session_free). */
tl_status tl_session_create(tl_model *m, const tl_session_opts *opts, tl_session **out,
                            tl_error *err);
void tl_session_free(tl_session *s);

/* One turn: x_t = tl_compose(reference, text), then every NTM block steps (or the decayed sum
 * adds x_t). query_out[P] receives q_t: σ_ntm·n(o^C_t) with a trained NTM (norm σ_ntm), the
 * unit vector n(Σ decay^(T−1−t) x_t) without. Rank the TGIR gallery (tl_embed_images_task
 * TL_TASK_TGIR, unit vectors) by dot product: the same order as cosine either way. */
tl_status tl_session_turn(tl_model *m, tl_session *s, const tl_image *reference, const char *text,
                          float *query_out, tl_error *err);
/* The same turn on a precomputed x_t[P] (a tl_compose output, used as given: a server may
 * cache x_t of catalogue items). query_out may be NULL. */
tl_status tl_session_turn_vec(tl_model *m, tl_session *s, const float *x, float *query_out,
                              tl_error *err);
/* One turn each for n distinct sessions on x[n, P] (row i is session i's x_t): query_out[n, P]
 * (may be NULL) receives their q_t. The NTM reads its weights once per pass of up to 64
 * sessions instead of once per session, and each session's q_t and new state are bit for bit
 * those of tl_session_turn_vec on it alone. Everything is checked before any session steps:
 * n ≤ 0, a NULL, a session made for another model configuration, a session given twice or a
 * non-finite x is TL_ERR_INVALID naming the session's index, and no session changes. */
tl_status tl_session_turn_vec_batch(tl_model *m, tl_session *const *sessions, const float *x,
                                    int n, float *query_out, tl_error *err);
/* Turns taken. */
uint64_t tl_session_turn_count(const tl_session *s);
/* The last q_t [P], borrowed from s (zeros before the first turn). */
const float *tl_session_query(const tl_session *s);

/* Appends ids[0..n) to the ids already shown (kept in order, duplicates kept; at most
 * 1,048,576 in all, else TL_ERR_LIMIT and nothing appended). */
tl_status tl_session_add_shown(tl_session *s, const uint64_t *ids, size_t n, tl_error *err);
/* The ids already shown, borrowed from s (valid until the next add), and their count. */
size_t tl_session_shown(const tl_session *s, const uint64_t **ids);
/* Expiry in unix seconds; 0 = none. */
void tl_session_set_expiry(tl_session *s, int64_t expires_at);
int64_t tl_session_expiry(const tl_session *s);

/* The session as proto/session.md bytes: *bytes malloc'd, owned by the caller (free()). */
tl_status tl_session_serialize(const tl_model *m, const tl_session *s, uint8_t **bytes, size_t *len,
                               tl_error *err);
/* A session from bytes[0, len); it continues bit for bit where the serialised one stopped.
 * Bytes that are corrupt, truncated, of another version (TL_ERR_FORMAT, TL_ERR_UNSUPPORTED,
 * TL_ERR_LIMIT) or made by another model configuration or decay (TL_ERR_INVALID) are refused
 * with a message naming the problem. *out is owned by the caller (tl_session_free). */
tl_status tl_session_restore(const tl_model *m, const uint8_t *bytes, size_t len, tl_session **out,
                             tl_error *err);

#endif
