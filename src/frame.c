/* frame.c -- building and releasing shared pre-encoded frames.
 *
 * Threads: frames are built by one thread (usually the broadcaster) and are
 * immutable afterwards; only the atomic refcount is shared. */
#include "palaver/frame.h"

#include <stdlib.h>
#include <string.h>

#include "palaver/log.h"
#include "palaver/xalloc.h"

void *pv_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        pv_err("out of memory allocating %zu bytes", n);
        abort();
    }
    return p;
}

void *pv_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        pv_err("out of memory allocating %zu x %zu bytes", n, size);
        abort();
    }
    return p;
}

void *pv_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        pv_err("out of memory reallocating %zu bytes", n);
        abort();
    }
    return q;
}

char *pv_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(pv_xmalloc(n), s, n);
}

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
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > sizeof(payload) - 2)
        rlen = sizeof(payload) - 2;
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
