/* frame.c -- building and releasing shared pre-encoded frames.
 *
 * Threads: frames are built by one thread (usually the broadcaster) and are
 * immutable afterwards; only the atomic refcount is shared. */
#include "palaver/frame.h"
#include "palaver/utf8.h"

#include <stdlib.h>
#include <string.h>

#include "palaver/log.h"
#include "palaver/xalloc.h"

size_t pv_ws_header(unsigned char hdr[PV_WS_MAX_HEADER], unsigned opcode, size_t len)
{
    hdr[0] = (unsigned char)(0x80u | (opcode & 0x0Fu));
    if (len < 126) {
        hdr[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        hdr[1] = 126;
        hdr[2] = (unsigned char)(len >> 8);
        hdr[3] = (unsigned char)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Places the header right in front of a payload that starts at
 * storage + PV_WS_MAX_HEADER. */
static void frame_finish(struct pv_frame *f, unsigned opcode, size_t payload_len)
{
    unsigned char hdr[PV_WS_MAX_HEADER];
    size_t hlen = pv_ws_header(hdr, opcode, payload_len);

    f->data = f->storage + PV_WS_MAX_HEADER - hlen;
    memcpy(f->data, hdr, hlen);
    f->len = hlen + payload_len;
    f->opcode = (uint8_t)opcode;
    f->dialect = 0;
    atomic_init(&f->refs, 1);
}

struct pv_frame *pv_frame_new(unsigned opcode, const void *payload, size_t len)
{
    struct pv_frame *f = pv_xmalloc(sizeof(*f) + PV_WS_MAX_HEADER + len);
    if (len)
        memcpy(f->storage + PV_WS_MAX_HEADER, payload, len);
    frame_finish(f, opcode, len);
    return f;
}

struct json_sink {
    struct pv_frame *f;
    size_t used; /* payload bytes written */
    size_t cap;  /* payload capacity */
};

static int json_sink_write(const char *buf, size_t size, void *data)
{
    struct json_sink *s = data;
    if (s->used + size > s->cap) {
        size_t cap = s->cap * 2;
        while (cap < s->used + size)
            cap *= 2;
        s->f = pv_xrealloc(s->f, sizeof(*s->f) + PV_WS_MAX_HEADER + cap);
        s->cap = cap;
    }
    memcpy(s->f->storage + PV_WS_MAX_HEADER + s->used, buf, size);
    s->used += size;
    return 0;
}

struct pv_frame *pv_frame_from_json(const json_t *obj)
{
    struct json_sink s = {.cap = 256};
    s.f = pv_xmalloc(sizeof(*s.f) + PV_WS_MAX_HEADER + s.cap);
    if (json_dump_callback(obj, json_sink_write, &s, JSON_COMPACT) != 0) {
        /* Only reachable for invalid JSON values, which we never build. */
        pv_err("json_dump_callback failed");
        abort();
    }
    frame_finish(s.f, PV_WS_OP_TEXT, s.used);
    return s.f;
}

struct pv_frame *pv_frame_close(uint16_t code, const char *reason)
{
    unsigned char payload[125];
    /* At most 123 bytes, cut on a character boundary: a reason that is not
     * UTF-8 makes the peer fail the connection (RFC 6455 8.1), code and all. */
    size_t rlen = reason ? pv_utf8_prefix(reason, strlen(reason), sizeof(payload) - 2) : 0;
    payload[0] = (unsigned char)(code >> 8);
    payload[1] = (unsigned char)code;
    if (rlen)
        memcpy(payload + 2, reason, rlen);
    return pv_frame_new(PV_WS_OP_CLOSE, payload, 2 + rlen);
}

void pv_frame_unref(struct pv_frame *f)
{
    if (!f)
        return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

const unsigned char *pv_frame_payload(const struct pv_frame *f, size_t *len)
{
    size_t hlen = (size_t)((f->storage + PV_WS_MAX_HEADER) - f->data);
    *len = f->len - hlen;
    return f->data + hlen;
}

/* ---- batches ---- */

void pv_batch_push(struct pv_batch **bp, struct pv_frame *f)
{
    struct pv_batch *b = *bp;
    if (!b || b->n == b->cap) {
        size_t cap = b ? b->cap * 2 : 8;
        b = pv_xrealloc(b, sizeof(*b) + cap * sizeof(b->f[0]));
        if (!*bp) {
            b->n = 0;
            b->bytes = 0;
        }
        b->cap = cap;
        *bp = b;
    }
    b->f[b->n++] = f;
    b->bytes += f->len;
}

void pv_batch_concat(struct pv_batch **dst, struct pv_batch *src)
{
    if (!src)
        return;
    if (!*dst) {
        *dst = src;
        return;
    }
    for (size_t i = 0; i < src->n; i++)
        pv_batch_push(dst, src->f[i]);
    free(src);
}

void pv_batch_free(struct pv_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        pv_frame_unref(b->f[i]);
    free(b);
}
