/* wsmsg.c -- frame checks and reassembly for one connection (see wsmsg.h).
 *
 * Threads: the caller's; no shared state. */
#include "palaver/wsmsg.h"

#include <stdlib.h>
#include <string.h>

#include "palaver/xalloc.h"

/* Big reassembly buffers are not kept for an idle client. */
#define KEEP_BUF 65536

void pv_wsmsg_init(struct pv_wsmsg *m, size_t max_message)
{
    memset(m, 0, sizeof(*m));
    m->max_message = max_message;
    pv_utf8_init(&m->utf8);
}

void pv_wsmsg_free(struct pv_wsmsg *m)
{
    free(m->buf);
    m->buf = NULL;
    m->len = m->cap = 0;
}

static void reset(struct pv_wsmsg *m)
{
    m->active = false;
    m->len = 0;
    pv_utf8_init(&m->utf8);
    if (m->cap > KEEP_BUF)
        pv_wsmsg_free(m);
}

static void append(struct pv_wsmsg *m, const char *data, size_t len)
{
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 1024;
        while (cap < m->len + len)
            cap *= 2;
        m->buf = pv_xrealloc(m->buf, cap);
        m->cap = cap;
    }
    if (len) /* data may be NULL for an empty fragment */
        memcpy(m->buf + m->len, data, len);
    m->len += len;
}

static struct pv_wsmsg_out fail(uint16_t code, const char *reason)
{
    return (struct pv_wsmsg_out){.kind = PV_WSMSG_FAIL, .code = code, .reason = reason};
}

bool pv_wsmsg_close_code_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return true; /* registered (3xxx) and private (4xxx) codes */
    /* 1004-1006 and 1015 are reserved and must never be sent. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

static struct pv_wsmsg_out on_close(const char *data, size_t len)
{
    unsigned code = 1000;

    if (len == 1)
        return fail(1002, "close frame with a 1-byte payload");
    if (len >= 2) {
        code = ((unsigned)(unsigned char)data[0] << 8) | (unsigned char)data[1];
        if (!pv_wsmsg_close_code_valid(code))
            return fail(1002, "invalid close code");
        if (!pv_utf8_valid(data + 2, len - 2))
            return fail(1007, "close reason is not valid UTF-8");
    }
    return (struct pv_wsmsg_out){.kind = PV_WSMSG_CLOSE, .code = (uint16_t)code};
}

struct pv_wsmsg_out pv_wsmsg_feed(struct pv_wsmsg *m, unsigned bits, const char *data, size_t len)
{
    unsigned op = bits & 0x0F;
    bool fin = (bits & 0x80) != 0;

    if (!m->active && m->len) /* the last message handed out is done */
        reset(m);
    if (bits & 0x70)
        return fail(1002, "reserved bits set"); /* no extension is negotiated */

    if (op & 0x8) { /* control frames may come between fragments */
        if (!fin)
            return fail(1002, "fragmented control frame");
        if (len > 125)
            return fail(1002, "control frame payload over 125 bytes");
        switch (op) {
        case 0x8:
            return on_close(data, len);
        case 0x9:
            return (struct pv_wsmsg_out){.kind = PV_WSMSG_PING, .data = data, .len = len};
        case 0xA:
            return (struct pv_wsmsg_out){.kind = PV_WSMSG_PONG};
        default:
            return fail(1002, "reserved control opcode");
        }
    }

    switch (op) {
    case 0x1:
        if (m->active)
            return fail(1002, "new message before the fragmented one finished");
        break;
    case 0x2:
        if (m->active)
            return fail(1002, "new message before the fragmented one finished");
        return fail(1003, "binary messages are not accepted");
    case 0x0:
        if (!m->active)
            return fail(1002, "continuation frame without a message");
        break;
    default:
        return fail(1002, "reserved data opcode");
    }

    /* Checked per fragment: an oversized fragmented message is refused at
     * the fragment that crosses the limit, before the rest is buffered. */
    if (len > m->max_message || m->len + len > m->max_message)
        return fail(1009, "message too big");
    enum pv_utf8_result u = pv_utf8_feed(&m->utf8, data, len);
    if (u == PV_UTF8_INVALID || (fin && u != PV_UTF8_OK))
        return fail(1007, "text is not valid UTF-8");

    if (fin && !m->active) { /* the common case: one frame, no copy */
        pv_utf8_init(&m->utf8);
        return (struct pv_wsmsg_out){.kind = PV_WSMSG_TEXT, .data = data, .len = len};
    }
    if (m->active && !fin) {
        append(m, data, len);
        return (struct pv_wsmsg_out){.kind = PV_WSMSG_MORE};
    }
    if (!m->active) { /* first fragment */
        m->active = true;
        append(m, data, len);
        return (struct pv_wsmsg_out){.kind = PV_WSMSG_MORE};
    }
    /* Last fragment: the message is the buffer. It stays valid until the
     * next feed, which resets first. */
    append(m, data, len);
    m->active = false;
    pv_utf8_init(&m->utf8);
    return (struct pv_wsmsg_out){
        .kind = PV_WSMSG_TEXT, .data = m->buf ? m->buf : "", .len = m->len};
}
