/* Session serialisation (proto/session.md): fixed little-endian header, the state's floats as
 * IEEE-754 binary32, optional shown ids and expiry, CRC-32 (zlib) over everything before it.
 * Not for: where sessions are kept or when they expire; the server decides that. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "session_codec.h"

enum { FLAG_SHOWN_IDS = 1u, FLAG_EXPIRY = 2u, KNOWN_FLAGS = FLAG_SHOWN_IDS | FLAG_EXPIRY };

enum { CRC_BYTES = 4, SHOWN_COUNT_BYTES = 4, ID_BYTES = 8, EXPIRY_BYTES = 8 };

typedef struct session_header {
    uint16_t version, flags;
    uint32_t kind, blocks, slots, width, hidden, proj;
    float decay;
    uint32_t reserved;
    uint64_t turns, n_floats;
} session_header;

static uint8_t *put_u16(uint8_t *p, uint16_t v) {
    for (int i = 0; i < 2; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_f32(uint8_t *p, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put_u32(p, bits);
}

static uint16_t get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float get_f32(const uint8_t *p) {
    uint32_t bits = get_u32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint32_t checksum(const uint8_t *bytes, size_t len) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (len > 0) { /* zlib takes uInt lengths */
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, bytes, chunk);
        bytes += chunk, len -= chunk;
    }
    return (uint32_t)crc;
}

static uint8_t *encode_header(uint8_t *p, const session_header *h) {
    memcpy(p, SESSION_MAGIC, 4), p += 4;
    p = put_u16(p, h->version), p = put_u16(p, h->flags);
    uint32_t fields[] = {h->kind, h->blocks, h->slots, h->width, h->hidden, h->proj};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) p = put_u32(p, fields[i]);
    p = put_f32(p, h->decay), p = put_u32(p, h->reserved);
    p = put_u64(p, h->turns), p = put_u64(p, h->n_floats);
    return p;
}

static void decode_header(const uint8_t *p, session_header *h) {
    p += 4;
    h->version = get_u16(p), h->flags = get_u16(p + 2), p += 4;
    uint32_t *fields[] = {&h->kind, &h->blocks, &h->slots, &h->width, &h->hidden, &h->proj};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) *fields[i] = get_u32(p), p += 4;
    h->decay = get_f32(p), h->reserved = get_u32(p + 4), p += 8;
    h->turns = get_u64(p), h->n_floats = get_u64(p + 8);
}

/* Bytes after the payload up to the checksum, for the given flags and id count. */
static size_t tail_bytes(uint16_t flags, size_t n_shown) {
    size_t n = 0;
    if (flags & FLAG_SHOWN_IDS) n += SHOWN_COUNT_BYTES + n_shown * ID_BYTES;
    if (flags & FLAG_EXPIRY) n += EXPIRY_BYTES;
    return n;
}

static tl_status check_state_finite(const ntm_state *s, tl_error *err) {
    for (size_t i = 0; i < s->n_values; i++)
        if (!isfinite(s->values[i]))
            return tl_fail(err, TL_ERR_INVALID, "session state value %zu is not finite", i);
    return TL_OK;
}

static session_header header_of(const ntm_state *s, const session_meta *meta) {
    const ntm_config *c = &s->cfg;
    session_header h = {.version = SESSION_FORMAT_VERSION,
                        .kind = (uint32_t)c->kind,
                        .blocks = (uint32_t)c->blocks,
                        .slots = (uint32_t)c->slots,
                        .width = (uint32_t)c->width,
                        .hidden = (uint32_t)c->hidden,
                        .proj = (uint32_t)c->proj,
                        .turns = s->turns,
                        .n_floats = s->n_values};
    h.decay = c->kind == NTM_KIND_DECAYED_SUM ? c->decay : 0.0f;
    if (meta && meta->n_shown > 0) h.flags |= FLAG_SHOWN_IDS;
    if (meta && meta->has_expiry) h.flags |= FLAG_EXPIRY;
    return h;
}

static void encode_tail(uint8_t *p, uint16_t flags, const session_meta *meta) {
    if (flags & FLAG_SHOWN_IDS) {
        p = put_u32(p, (uint32_t)meta->n_shown);
        for (size_t i = 0; i < meta->n_shown; i++) p = put_u64(p, meta->shown_ids[i]);
    }
    if (flags & FLAG_EXPIRY) put_u64(p, (uint64_t)meta->expires_at);
}

tl_status session_serialize(const ntm_state *s, const session_meta *meta, uint8_t **out,
                            size_t *len, tl_error *err) {
    *out = NULL, *len = 0;
    if (!s->values) return tl_fail(err, TL_ERR_INVALID, "session state is not allocated");
    if (meta && meta->n_shown > 0 && !meta->shown_ids)
        return tl_fail(err, TL_ERR_INVALID, "session meta has %zu shown ids but no array",
                       meta->n_shown);
    if (meta && meta->n_shown > SESSION_MAX_SHOWN_IDS)
        return tl_fail(err, TL_ERR_LIMIT, "%zu shown ids exceed the session limit of %u",
                       meta->n_shown, SESSION_MAX_SHOWN_IDS);
    tl_status st = check_state_finite(s, err);
    if (st != TL_OK) return st;
    session_header h = header_of(s, meta);
    size_t total = SESSION_HEADER_BYTES + s->n_values * 4 +
                   tail_bytes(h.flags, meta ? meta->n_shown : 0) + CRC_BYTES;
    uint8_t *buf = malloc(total);
    if (!buf) return tl_fail(err, TL_ERR_NOMEM, "out of memory for a %zu-byte session", total);
    uint8_t *p = encode_header(buf, &h);
    for (size_t i = 0; i < s->n_values; i++) p = put_f32(p, s->values[i]);
    encode_tail(p, h.flags, meta);
    put_u32(buf + total - CRC_BYTES, checksum(buf, total - CRC_BYTES));
    *out = buf, *len = total;
    return TL_OK;
}

/* Magic, minimum length and version: what must hold before any field is trusted. */
static tl_status check_prefix(const uint8_t *bytes, size_t len, tl_error *err) {
    if (len >= 4 && memcmp(bytes, SESSION_MAGIC, 4) != 0)
        return tl_fail(err, TL_ERR_FORMAT, "not a session: bad magic (expected \"TLSS\")");
    if (len < SESSION_HEADER_BYTES + CRC_BYTES)
        return tl_fail(err, TL_ERR_FORMAT, "session truncated: %zu bytes, the header needs %d", len,
                       SESSION_HEADER_BYTES + CRC_BYTES);
    uint16_t version = get_u16(bytes + 4);
    if (version != SESSION_FORMAT_VERSION)
        return tl_fail(err, TL_ERR_UNSUPPORTED,
                       "session format version %u is not supported (this build reads %d)", version,
                       SESSION_FORMAT_VERSION);
    return TL_OK;
}

/* The header's own consistency: flags, kind, limits and the payload size its dims imply. */
static tl_status check_header(const session_header *h, tl_error *err) {
    if (h->flags & ~KNOWN_FLAGS)
        return tl_fail(err, TL_ERR_FORMAT, "session has unknown flags 0x%04x", h->flags);
    if (h->kind != NTM_KIND_CASCADE && h->kind != NTM_KIND_DECAYED_SUM)
        return tl_fail(err, TL_ERR_FORMAT, "session has unknown kind %u", h->kind);
    if (h->reserved != 0)
        return tl_fail(err, TL_ERR_FORMAT, "session reserved field is %u, not 0", h->reserved);
    uint32_t dims[] = {h->blocks, h->slots, h->width, h->hidden, h->proj};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
        if (dims[i] > NTM_MAX_DIM)
            return tl_fail(err, TL_ERR_LIMIT, "session dimension %u exceeds the limit of %d",
                           dims[i], NTM_MAX_DIM);
    ntm_config cfg = {.kind = (ntm_kind)h->kind,
                      .blocks = (int)h->blocks,
                      .slots = (int)h->slots,
                      .width = (int)h->width,
                      .hidden = (int)h->hidden,
                      .proj = (int)h->proj};
    size_t implied = ntm_state_floats(&cfg);
    if (implied > NTM_MAX_STATE_FLOATS || h->n_floats > NTM_MAX_STATE_FLOATS)
        return tl_fail(err, TL_ERR_LIMIT, "session state of %zu floats exceeds the limit of %u",
                       implied > h->n_floats ? implied : (size_t)h->n_floats, NTM_MAX_STATE_FLOATS);
    if (h->n_floats != implied)
        return tl_fail(err, TL_ERR_FORMAT,
                       "session payload holds %llu floats but its dimensions imply %zu",
                       (unsigned long long)h->n_floats, implied);
    return TL_OK;
}

/* Checks the total length against what the header announces; *n_shown = the id count. */
static tl_status check_length(const uint8_t *bytes, size_t len, const session_header *h,
                              size_t *n_shown, tl_error *err) {
    size_t payload_end = SESSION_HEADER_BYTES + (size_t)h->n_floats * 4;
    *n_shown = 0;
    if (h->flags & FLAG_SHOWN_IDS) {
        if (len < payload_end + SHOWN_COUNT_BYTES + CRC_BYTES)
            return tl_fail(err, TL_ERR_FORMAT,
                           "session truncated: %zu bytes, the header needs "
                           "at least %zu",
                           len, payload_end + SHOWN_COUNT_BYTES + CRC_BYTES);
        *n_shown = get_u32(bytes + payload_end);
        if (*n_shown == 0)
            return tl_fail(err, TL_ERR_FORMAT, "session shown-id list is flagged but empty");
        if (*n_shown > SESSION_MAX_SHOWN_IDS)
            return tl_fail(err, TL_ERR_LIMIT, "session holds %zu shown ids, the limit is %u",
                           *n_shown, SESSION_MAX_SHOWN_IDS);
    }
    size_t expected = payload_end + tail_bytes(h->flags, *n_shown) + CRC_BYTES;
    if (len < expected)
        return tl_fail(err, TL_ERR_FORMAT, "session truncated: %zu bytes, the header needs %zu",
                       len, expected);
    if (len > expected)
        return tl_fail(err, TL_ERR_FORMAT, "session has %zu extra bytes after its checksum",
                       len - expected);
    return TL_OK;
}

static tl_status check_crc(const uint8_t *bytes, size_t len, tl_error *err) {
    uint32_t stored = get_u32(bytes + len - CRC_BYTES);
    uint32_t computed = checksum(bytes, len - CRC_BYTES);
    if (stored != computed)
        return tl_fail(err, TL_ERR_FORMAT, "session checksum mismatch (stored %08x, computed %08x)",
                       stored, computed);
    return TL_OK;
}

static const char *kind_name(uint32_t kind) {
    return kind == NTM_KIND_CASCADE ? "cascaded NTM" : "decayed sum";
}

/* Whether the session was made by a model like the loaded one. */
static tl_status check_against_model(const session_header *h, const ntm_config *m, tl_error *err) {
    if (h->kind != (uint32_t)m->kind)
        return tl_fail(err, TL_ERR_INVALID, "session holds a %s state, the model uses the %s",
                       kind_name(h->kind), kind_name((uint32_t)m->kind));
    if (h->blocks != (uint32_t)m->blocks || h->slots != (uint32_t)m->slots ||
        h->width != (uint32_t)m->width || h->hidden != (uint32_t)m->hidden ||
        h->proj != (uint32_t)m->proj)
        return tl_fail(err, TL_ERR_INVALID,
                       "session dims C=%u N=%u W=%u H=%u P=%u do not match the model's "
                       "C=%d N=%d W=%d H=%d P=%d",
                       h->blocks, h->slots, h->width, h->hidden, h->proj, m->blocks, m->slots,
                       m->width, m->hidden, m->proj);
    float model_decay = m->kind == NTM_KIND_DECAYED_SUM ? m->decay : 0.0f;
    if (memcmp(&h->decay, &model_decay, sizeof model_decay) != 0)
        return tl_fail(err, TL_ERR_INVALID, "session decay %g does not match the model's %g",
                       (double)h->decay, (double)model_decay);
    return TL_OK;
}

static tl_status check_payload_finite(const uint8_t *payload, size_t n, tl_error *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(get_f32(payload + 4 * i)))
            return tl_fail(err, TL_ERR_FORMAT, "session payload float %zu is not finite", i);
    return TL_OK;
}

static tl_status decode_meta(const uint8_t *tail, uint16_t flags, size_t n_shown,
                             session_meta *meta, tl_error *err) {
    if (flags & FLAG_SHOWN_IDS) {
        meta->shown_ids = malloc(n_shown * sizeof *meta->shown_ids);
        if (!meta->shown_ids) return tl_fail(err, TL_ERR_NOMEM, "out of memory for shown ids");
        meta->n_shown = n_shown;
        tail += SHOWN_COUNT_BYTES;
        for (size_t i = 0; i < n_shown; i++, tail += ID_BYTES) meta->shown_ids[i] = get_u64(tail);
    }
    if (flags & FLAG_EXPIRY) meta->has_expiry = true, meta->expires_at = (int64_t)get_u64(tail);
    return TL_OK;
}

static tl_status validate(const uint8_t *bytes, size_t len, const ntm_config *expected,
                          session_header *h, size_t *n_shown, tl_error *err) {
    tl_status st = check_prefix(bytes, len, err);
    if (st != TL_OK) return st;
    decode_header(bytes, h);
    if ((st = check_header(h, err)) != TL_OK) return st;
    if ((st = check_length(bytes, len, h, n_shown, err)) != TL_OK) return st;
    if ((st = check_crc(bytes, len, err)) != TL_OK) return st;
    if ((st = check_against_model(h, expected, err)) != TL_OK) return st;
    return check_payload_finite(bytes + SESSION_HEADER_BYTES, (size_t)h->n_floats, err);
}

tl_status session_deserialize(const uint8_t *bytes, size_t len, const ntm_config *expected,
                              ntm_state *out, session_meta *meta, tl_error *err) {
    *out = (ntm_state){0};
    if (meta) *meta = (session_meta){0};
    session_header h;
    size_t n_shown;
    tl_status st = validate(bytes, len, expected, &h, &n_shown, err);
    if (st == TL_OK) st = ntm_state_alloc(out, expected, err);
    if (st != TL_OK) return st;
    const uint8_t *payload = bytes + SESSION_HEADER_BYTES;
    for (size_t i = 0; i < out->n_values; i++) out->values[i] = get_f32(payload + 4 * i);
    out->turns = h.turns;
    if (meta) st = decode_meta(payload + 4 * out->n_values, h.flags, n_shown, meta, err);
    if (st != TL_OK) ntm_state_release(out);
    return st;
}

void session_meta_release(session_meta *meta) {
    free(meta->shown_ids);
    *meta = (session_meta){0};
}
