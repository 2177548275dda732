/* ws.c -- CivetWeb WebSocket callbacks: framing checks, reassembly and the
 * producer side of the event queue.
 *
 * Threads: CivetWeb worker threads. Each callback works on its own
 * connection's client; the fields it uses are the worker-owned ones of
 * struct pv_client, plus the shared atomics documented in ws.h. */
#include "palaver/ws.h"

#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/client.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/proto.h"
#include "palaver/queue.h"
#include "palaver/stats.h"
#include "palaver/utf8.h"
#include "palaver/xalloc.h"

static const char *subprotocol_names[] = {"sample-protocol", "palaver"};
static struct mg_websocket_subprotocols subprotocols = {2, subprotocol_names};

static void peer_of(const struct mg_connection *conn, char *out, size_t n)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    snprintf(out, n, "%s:%d", ri->remote_addr, ri->remote_port);
}

/* Refuses a handshake with a real status line. mg_send_http_error() does
 * not work once CivetWeb has switched the connection to WebSocket mode
 * (civetweb.md section 4). */
static int refuse(const struct mg_connection *cconn, int status, const char *reason,
                  const char *body)
{
    struct mg_connection *conn = (struct mg_connection *)cconn;
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %zu\r\nRetry-After: 5\r\nConnection: close\r\n\r\n%s",
              status, reason, strlen(body), body);
    return 1;
}

static int on_connect(const struct mg_connection *conn, void *ud)
{
    struct pv_ws *ws = ud;
    char peer[64];

    /* CivetWeb 1.15 never resets the negotiated subprotocol between
     * connections on a worker: a client that offered none would be
     * answered with the previous client's (civetweb.md section 4). */
    if (mg_get_header(conn, "Sec-WebSocket-Protocol") == NULL)
        ((struct mg_request_info *)mg_get_request_info(conn))->acceptedWebSocketSubprotocol =
            NULL;

    if (atomic_load(&ws->stopping))
        return refuse(conn, 503, "Service Unavailable", "palaverd is shutting down\n");
    if (atomic_load(&ws->admitted) >= ws->cfg->max_clients) {
        peer_of(conn, peer, sizeof(peer));
        pv_stat_add(&ws->stats->refused_full, 1);
        pv_warn("refused WebSocket from %s: server full (%u clients, --max-clients)", peer,
                ws->cfg->max_clients);
        return refuse(conn, 503, "Service Unavailable",
                      "palaverd is full: too many chat clients, try again later\n");
    }
    return 0;
}

static void on_ready(struct mg_connection *conn, void *ud)
{
    struct pv_ws *ws = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char peer[64], name[PV_NAME_MAX_BYTES * 2 + 2];
    size_t name_len = 0;
    struct pv_client *c;

    peer_of(conn, peer, sizeof(peer));
    /* The connect handler only looked; admission is counted here, where a
     * close handler is guaranteed to follow. Losing the race gets 1013. */
    if (atomic_fetch_add(&ws->admitted, 1) >= ws->cfg->max_clients) {
        atomic_fetch_sub(&ws->admitted, 1);
        pv_stat_add(&ws->stats->refused_full, 1);
        pv_warn("refused WebSocket from %s: server full (1013)", peer);
        struct pv_frame *f = pv_frame_close(1013, "server full, try again later");
        mg_write(conn, f->data, f->len);
        pv_frame_unref(f);
        mg_set_user_connection_data(conn, NULL);
        return;
    }
    c = pv_client_new(conn, peer);
    mg_set_user_connection_data(conn, c);
    pv_stat_add(&ws->stats->connections_total, 1);

    if (ri->query_string) {
        int n = mg_get_var(ri->query_string, strlen(ri->query_string), "name", name,
                           sizeof(name));
        if (n >= 0)
            name_len = (size_t)n;
        else if (n == -2) /* too long: let the broadcaster reject it */
            name_len = (size_t)snprintf(name, sizeof(name), "%s", "\x7f");
    }
    pv_debug("handshake from %s, subprotocol %s", peer,
             ri->acceptedWebSocketSubprotocol ? ri->acceptedWebSocketSubprotocol : "(none)");
    /* JOIN carries a second reference: the registry's. */
    pv_queue_push_ctl(ws->queue, pv_event_new(PV_EV_JOIN, pv_client_ref(c), name, name_len));
}

/* A protocol violation: answer with a close frame carrying the code, and
 * end the connection (returning 0 makes CivetWeb leave its read loop). */
static int fail(struct pv_ws *ws, struct pv_client *c, uint16_t code, const char *reason)
{
    pv_stat_add(&ws->stats->protocol_closes, 1);
    pv_notice("protocol error from %s: %s; closing with %u", c->peer, reason, code);
    snprintf(c->leave_reason, sizeof(c->leave_reason), "closed %u: %s", code, reason);
    pv_client_close(c, code, reason);
    return 0;
}

static bool close_code_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return true;
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

static int on_close_frame(struct pv_ws *ws, struct pv_client *c, const char *data, size_t len)
{
    unsigned code = 1000;

    if (len == 1)
        return fail(ws, c, 1002, "close frame with a 1-byte payload");
    if (len >= 2) {
        code = ((unsigned)(unsigned char)data[0] << 8) | (unsigned char)data[1];
        if (!close_code_valid(code))
            return fail(ws, c, 1002, "invalid close code");
        if (!pv_utf8_valid(data + 2, len - 2))
            return fail(ws, c, 1007, "close reason is not valid UTF-8");
    }
    snprintf(c->leave_reason, sizeof(c->leave_reason), "client closed %u", code);
    /* Answer the close handshake (a no-op if we sent our close first). */
    pv_client_close(c, len >= 2 ? (uint16_t)code : 1000, NULL);
    return 0;
}

/* A complete text message: hand it to the broadcaster. */
static int push_message(struct pv_ws *ws, struct pv_client *c, const char *data, size_t len)
{
    struct pv_event *ev = pv_event_new(PV_EV_MSG, pv_client_ref(c), data, len);
    int rc = pv_queue_push_msg(ws->queue, ev, (int)ws->cfg->queue_timeout_ms);

    if (rc == 0)
        return 1;
    pv_event_free(ev);
    if (rc == -ESHUTDOWN)
        return 1; /* shutting down: the client already has (or gets) 1001 */

    /* The broadcaster could not take it in time. Tell the sender, naming
     * the message if it carried a msgId; nothing is dropped silently. */
    json_t *root = json_loadb(data, len, 0, NULL);
    json_t *msg_id = json_is_object(root) ? json_object_get(root, "msgId") : NULL;
    if (msg_id && !json_is_integer(msg_id) && !json_is_string(msg_id))
        msg_id = NULL;
    struct pv_frame *f = pv_proto_error("busy", "server busy: message not accepted, send it again",
                                        msg_id);
    pv_client_write(c, f->data, f->len, false);
    pv_frame_unref(f);
    json_decref(root);
    pv_stat_add(&ws->stats->busy_rejects, 1);
    pv_stat_add(&ws->stats->error_replies, 1);
    pv_warn("event queue full for %u ms: message from %s refused with \"busy\"",
            ws->cfg->queue_timeout_ms, c->peer);
    return 1;
}

static void frag_append(struct pv_client *c, const char *data, size_t len)
{
    if (c->frag.len + len > c->frag.cap) {
        size_t cap = c->frag.cap ? c->frag.cap : 1024;
        while (cap < c->frag.len + len)
            cap *= 2;
        c->frag.buf = pv_xrealloc(c->frag.buf, cap);
        c->frag.cap = cap;
    }
    memcpy(c->frag.buf + c->frag.len, data, len);
    c->frag.len += len;
}

static void frag_reset(struct pv_client *c)
{
    c->frag.active = false;
    c->frag.len = 0;
    pv_utf8_init(&c->frag.utf8);
    if (c->frag.cap > 64 * 1024) { /* do not keep a big buffer per idle client */
        free(c->frag.buf);
        c->frag.buf = NULL;
        c->frag.cap = 0;
    }
}

static int on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *ud)
{
    struct pv_ws *ws = ud;
    struct pv_client *c = mg_get_user_connection_data(conn);
    unsigned op = (unsigned)bits & 0x0F;
    bool fin = (bits & 0x80) != 0;

    if (!c)
        return 0; /* refused in on_ready */
    if (atomic_load(&c->kick)) {
        snprintf(c->leave_reason, sizeof(c->leave_reason), "closed %d by the server",
                 atomic_load(&c->kick));
        return 0;
    }
    if (bits & 0x70)
        return fail(ws, c, 1002, "reserved bits set");

    if (op & 0x8) { /* control frames */
        if (!fin)
            return fail(ws, c, 1002, "fragmented control frame");
        if (len > 125)
            return fail(ws, c, 1002, "control frame payload over 125 bytes");
        switch (op) {
        case PV_WS_OP_CLOSE:
            return on_close_frame(ws, c, data, len);
        case PV_WS_OP_PING: {
            /* CivetWeb answers pings itself when ping/pong is enabled;
             * this covers the case where it hands one to us. */
            struct pv_frame *f = pv_frame_new(PV_WS_OP_PONG, data, len);
            pv_client_write(c, f->data, f->len, false);
            pv_frame_unref(f);
            return 1;
        }
        case PV_WS_OP_PONG:
            return 1;
        default:
            return fail(ws, c, 1002, "reserved control opcode");
        }
    }

    switch (op) {
    case PV_WS_OP_TEXT:
        if (c->frag.active)
            return fail(ws, c, 1002, "new message before the fragmented one finished");
        break;
    case PV_WS_OP_BINARY:
        if (c->frag.active)
            return fail(ws, c, 1002, "new message before the fragmented one finished");
        return fail(ws, c, 1003, "binary messages are not accepted");
    case 0x0: /* continuation */
        if (!c->frag.active)
            return fail(ws, c, 1002, "continuation frame without a message");
        break;
    default:
        return fail(ws, c, 1002, "reserved data opcode");
    }

    if (c->frag.len + len > ws->cfg->max_message)
        return fail(ws, c, 1009, "message too big");
    enum pv_utf8_result u = pv_utf8_feed(&c->frag.utf8, data, len);
    if (u == PV_UTF8_INVALID || (fin && u != PV_UTF8_OK))
        return fail(ws, c, 1007, "text is not valid UTF-8");

    if (fin && !c->frag.active) { /* the common case: one frame, no copy */
        pv_utf8_init(&c->frag.utf8);
        return push_message(ws, c, data, len);
    }
    frag_append(c, data, len);
    c->frag.active = true;
    if (!fin)
        return 1;
    int rc = push_message(ws, c, c->frag.buf, c->frag.len);
    frag_reset(c);
    return rc;
}

static void on_close(const struct mg_connection *conn, void *ud)
{
    struct pv_ws *ws = ud;
    struct pv_client *c = mg_get_user_connection_data(conn);

    if (!c)
        return;
    /* Waits for any write in progress; afterwards nobody writes to conn. */
    pv_client_mark_dead(c);
    if (c->leave_reason[0] == '\0')
        snprintf(c->leave_reason, sizeof(c->leave_reason), "connection lost");
    /* LEAVE takes over this worker's reference. */
    pv_queue_push_ctl(ws->queue,
                      pv_event_new(PV_EV_LEAVE, c, c->leave_reason, strlen(c->leave_reason)));
}

void pv_ws_register(struct mg_context *ctx, struct pv_ws *ws)
{
    mg_set_websocket_handler_with_subprotocols(ctx, "/ws", &subprotocols, on_connect, on_ready,
                                               on_data, on_close, ws);
    mg_set_websocket_handler_with_subprotocols(ctx, "/", &subprotocols, on_connect, on_ready,
                                               on_data, on_close, ws);
}
