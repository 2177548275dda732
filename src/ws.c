/* ws.c -- CivetWeb WebSocket callbacks: handshake checks, framing checks,
 * the rate and byte limits, the JSON decode of each message, and the
 * producer side of the event queue.
 *
 * Threads: CivetWeb worker threads. Each callback works on its own
 * connection's client; the fields it uses are the worker-owned ones of
 * struct pv_client, plus the shared atomics documented in ws.h and the
 * per-address table (its own lock, limits.h). */
#include "palaver/ws.h"
#include "palaver/http.h"

#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/accounts.h"
#include "palaver/api.h"
#include "palaver/client.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/dialect.h"
#include "palaver/files.h"
#include "palaver/frame.h"
#include "palaver/limits.h"
#include "palaver/live.h"
#include "palaver/log.h"
#include "palaver/nickname.h"
#include "palaver/proto.h"
#include "palaver/queue.h"
#include "palaver/peer.h"
#include "palaver/socketio.h"
#include "palaver/stats.h"
#include "palaver/wsmsg.h"
#include "palaver/xalloc.h"

/* "/" also speaks the seeds' dialects (dialect.h): seed 003's
 * echo-protocol, and with no subprotocol at all, seed 004's plain text.
 * "/ws" is palaver's own. */
static const char *subprotocol_names[] = {"sample-protocol", "palaver", "echo-protocol"};
static struct mg_websocket_subprotocols subprotocols_ws = {2, subprotocol_names};
static struct mg_websocket_subprotocols subprotocols_root = {3, subprotocol_names};

/* Who is connecting (peer.h: through a trusted proxy, the client it
 * forwards for), and that as the log lines name it: "addr:port", or
 * "addr via proxy:port". */
static void peer_of(struct pv_ws *ws, const struct mg_connection *conn, struct pv_peer *p,
                    char *out, size_t n)
{
    (void)pv_request_peer(conn, &ws->cfg->trusted, p); /* a bad one got 400 in begin_request */
    pv_peer_text(conn, p, out, n);
}

/* Refuses a handshake with a real status line. mg_send_http_error() does
 * not work once CivetWeb has switched the connection to WebSocket mode
 * (docs/civetweb.md section 4). */
static int refuse(const struct mg_connection *cconn, int status, const char *reason,
                  const char *body)
{
    struct mg_connection *conn = (struct mg_connection *)cconn;
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%s",
              status, reason, strlen(body),
              status == 503   ? "Retry-After: 5\r\n"
              : status == 429 ? "Retry-After: 1\r\n"
                              : "",
              body);
    return 1;
}

/* The account the connect handler found in the session cookie, for the
 * ready handler that follows it on the same worker thread (CivetWeb calls
 * both on the worker serving the handshake, connect first). Thread-local:
 * each worker reads only what it wrote itself. */
/* (cppcheck does not see the members used through the _Thread_local.) */
struct handshake_account {
    bool set;                  // cppcheck-suppress unusedStructMember
    struct pv_account account; // cppcheck-suppress unusedStructMember
};
static _Thread_local struct handshake_account handshake_account;

/* True if the display name s[0..len) asked for by a guest is an
 * account's (the same profile and key as accounts.h compares by). A name
 * the profile refuses is left to the broadcaster, which says why. */
static bool name_reserved(struct pv_ws *ws, const char *s, size_t len)
{
    char name[PV_NAME_MAX_BYTES + 1], key[PV_NAME_KEY_MAX];
    const char *why;
    return ws->accounts && len > 0 && pv_nickname_prepare(s, len, name, sizeof(name), &why) &&
           pv_nickname_key(name, key) && pv_accounts_name_reserved(ws->accounts, key);
}

static int on_connect(const struct mg_connection *conn, void *ud)
{
    struct pv_ws *ws = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *origin = mg_get_header(conn, "Origin");
    const char *host = mg_get_header(conn, "Host");
    char peer[128];
    struct pv_peer p;

    /* CivetWeb 1.15 never resets the negotiated subprotocol between
     * connections on a worker: a client that offered none would be
     * answered with the previous client's (docs/civetweb.md section 4). */
    if (mg_get_header(conn, "Sec-WebSocket-Protocol") == NULL)
        ((struct mg_request_info *)ri)->acceptedWebSocketSubprotocol = NULL;

    peer_of(ws, conn, &p, peer, sizeof(peer));
    if (atomic_load(&ws->stopping))
        return refuse(conn, 503, "Service Unavailable", "palaverd is shutting down\n");
    const char *sio_why;
    if (pv_dialect_of(ri->local_uri, NULL) == PV_DIALECT_SIO &&
        !pv_socketio_ws_check(ws, ri->query_string, p.addr, &sio_why)) {
        pv_info("refused Socket.IO WebSocket from %s: %s; answered 400", peer, sio_why);
        return refuse(conn, 400, "Bad Request", "{\"code\":3,\"message\":\"Bad request\"}");
    }
    if (!pv_origin_allowed(origin, p.https, host,
                           atomic_load_explicit(&ws->live->origins, memory_order_acquire))) {
        char o[128], h[128];
        pv_log_printable(origin, o, sizeof(o));
        pv_log_printable(host, h, sizeof(h));
        pv_stat_add(&ws->stats->refused_origin, 1);
        pv_warn("refused WebSocket from %s: Origin '%s' is not allowed (the page's own is "
                "%s://%s; see --allowed-origins, and --trusted-proxies behind a TLS terminator); "
                "answered 403",
                peer, o, p.https ? "https" : "http", h);
        return refuse(conn, 403, "Forbidden",
                      "cross-site WebSocket refused: this page's origin is not allowed\n");
    }
    if (!pv_peers_handshake(ws->peers, p.addr, ws->cfg->handshake_rate, ws->cfg->handshake_burst,
                            pv_mono_ns())) {
        static struct pv_log_limit lim = PV_LOG_LIMIT("handshakes refused over --handshake-rate");
        pv_stat_add(&ws->stats->refused_rate, 1);
        if (pv_log_limited(&lim, PV_LOG_WARNING, 5))
            pv_warn("refused WebSocket from %s: more than %u handshakes/s from that address "
                    "(--handshake-rate, burst %u); answered 429",
                    peer, ws->cfg->handshake_rate, ws->cfg->handshake_burst);
        return refuse(conn, 429, "Too Many Requests",
                      "too many connection attempts from your address, slow down\n");
    }
    if (atomic_load(&ws->admitted) >= ws->cfg->max_clients) {
        pv_stat_add(&ws->stats->refused_full, 1);
        pv_warn("refused WebSocket from %s: server full (%u clients, --max-clients); answered 503",
                peer, ws->cfg->max_clients);
        return refuse(conn, 503, "Service Unavailable",
                      "palaverd is full: too many chat clients, try again later\n");
    }
    unsigned per_ip = atomic_load_explicit(&ws->live->max_per_ip, memory_order_relaxed);
    if (per_ip && pv_peers_count(ws->peers, p.addr) >= per_ip) {
        pv_stat_add(&ws->stats->refused_per_ip, 1);
        pv_warn("refused WebSocket from %s: %u connections from that address already "
                "(--max-per-ip); answered 503",
                peer, per_ip);
        return refuse(conn, 503, "Service Unavailable",
                      "too many chat connections from your address, try again later\n");
    }
    /* After the Origin check: a page on another site never gets this far
     * with a visitor's cookie (cross-site WebSocket hijacking). A cookie
     * whose session has ended is refused rather than taken as a guest, so
     * a stolen-then-revoked token opens nothing and the page knows to sign
     * in again. */
    handshake_account.set = false;
    int s = pv_api_session(ws->accounts, conn, &handshake_account.account);
    if (s < 0) {
        pv_notice("refused WebSocket from %s: its session cookie is unknown, expired or "
                  "revoked; answered 401",
                  peer);
        return refuse(conn, 401, "Unauthorized",
                      "your session has ended (signed out, expired or revoked): sign in again\n");
    }
    if (s == 0 && atomic_load_explicit(&ws->live->members_only, memory_order_relaxed)) {
        static struct pv_log_limit lim = PV_LOG_LIMIT("WebSockets refused without a session");
        if (pv_log_limited(&lim, PV_LOG_NOTICE, 5))
            pv_notice("refused WebSocket from %s: auth = members and it has no session; "
                      "answered 401",
                      peer);
        return refuse(conn, 401, "Unauthorized",
                      "this chat is for members: sign in on the chat page first\n");
    }
    /* An address banned with a guest or, in open mode, with an account
     * (limits.h): guests from it stay out; people signed in come in (their
     * own account's ban is checked with the session above). */
    int64_t until = s == 1 ? 0 : pv_bans_until(ws->bans, p.addr, pv_now_ms());
    if (until) {
        long long minutes = (until - pv_now_ms() + 59999) / 60000;
        static struct pv_log_limit lim = PV_LOG_LIMIT("WebSockets refused from banned addresses");
        if (pv_log_limited(&lim, PV_LOG_NOTICE, 5))
            pv_notice("refused WebSocket from %s: the address is banned for %lld more min; "
                      "answered 403",
                      peer, minutes);
        char why[128];
        snprintf(why, sizeof(why), "a moderator banned your address: %lld more minutes\n", minutes);
        return refuse(conn, 403, "Forbidden", why);
    }
    handshake_account.set = s == 1;
    return 0;
}

/* The ready handler lost a race for a limit: close 1013 and count
 * nothing. The connection is still open until the peer answers our close
 * frame, and a peer that never does would keep this worker for good; so
 * the client goes to the broadcaster as REFUSED, whose sweep evicts it
 * like any other closed client (issue 12, item 8). */
static void refuse_ready(struct pv_ws *ws, struct mg_connection *conn, const char *addr, int port,
                         const char *reason)
{
    struct pv_client *c = pv_client_new(conn, addr, port, 0);
    c->refused = true;
    pv_client_close_decide(c, 1013, NULL); /* a new client: this is the decision */
    snprintf(c->leave_reason, sizeof(c->leave_reason), "refused 1013: %s", reason);
    atomic_store_explicit(&c->last_rx, pv_mono_ns(), memory_order_relaxed);
    mg_set_user_connection_data(conn, c);
    pv_client_close(c, 1013, reason);
    pv_queue_push_ctl(ws->queue, pv_event_new(PV_EV_REFUSED, pv_client_ref(c), NULL, 0));
}

static void on_ready(struct mg_connection *conn, void *ud)
{
    struct pv_ws *ws = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char peer[128];
    struct pv_peer p;
    struct pv_client *c;

    peer_of(ws, conn, &p, peer, sizeof(peer));
    /* The connect handler only looked; admission is counted here, where a
     * close handler is guaranteed to follow. Losing the race gets 1013. */
    if (atomic_fetch_add(&ws->admitted, 1) >= ws->cfg->max_clients) {
        atomic_fetch_sub(&ws->admitted, 1);
        pv_stat_add(&ws->stats->refused_full, 1);
        pv_warn("refused WebSocket from %s: server full; closed 1013", peer);
        refuse_ready(ws, conn, p.addr, p.port, "server full, try again later");
        return;
    }
    if (!pv_peers_acquire(ws->peers, p.addr,
                          atomic_load_explicit(&ws->live->max_per_ip, memory_order_relaxed))) {
        atomic_fetch_sub(&ws->admitted, 1);
        pv_stat_add(&ws->stats->refused_per_ip, 1);
        pv_warn("refused WebSocket from %s: too many from that address (--max-per-ip); "
                "closed 1013",
                peer);
        refuse_ready(ws, conn, p.addr, p.port, "too many connections from your address");
        return;
    }
    c = pv_client_new(conn, p.addr, p.port, ws->cfg->max_message);
    c->counted = true;
    c->dialect = (uint8_t)pv_dialect_of(ri->local_uri, ri->acceptedWebSocketSubprotocol);
    pv_stat_add(&ws->stats->dialect_conns[c->dialect], 1);
    uint64_t now = pv_mono_ns();
    atomic_store_explicit(&c->last_rx, now, memory_order_relaxed);
    pv_rate_init(&c->rate, atomic_load_explicit(&ws->live->rate_burst, memory_order_relaxed), now);
    pv_rate_init(&c->typing, PV_TYPING_BURST, now);
    c->bytes = (struct pv_rate){.tokens = ws->cfg->byte_burst, .last_ns = now};
    mg_set_user_connection_data(conn, c);
    pv_stat_add(&ws->stats->connections_total, 1);

    /* ?name=, ?since= and ?server=: parsed here, judged by the broadcaster. */
    struct pv_join_req jr = {0};
    bool signed_in = handshake_account.set;
    handshake_account.set = false;
    if (ri->query_string) {
        const char *q = ri->query_string;
        size_t ql = strlen(q);
        char v[32];
        int n = mg_get_var(q, ql, "name", jr.name, sizeof(jr.name));
        if (n >= 0)
            jr.name_len = (size_t)n;
        else if (n == -2) /* too long: let the broadcaster reject it */
            jr.name_len = (size_t)snprintf(jr.name, sizeof(jr.name), "%s", "\x7f");
        n = mg_get_var(q, ql, "since", v, sizeof(v));
        if (n != -1) {
            jr.has_since = n >= 0 && pv_seq_parse(v, (size_t)n, &jr.since);
            jr.bad_since = !jr.has_since;
        }
        if (mg_get_var(q, ql, "server", v, sizeof(v)) >= 0)
            snprintf(jr.server, sizeof(jr.server), "%.*s", (int)sizeof(jr.server) - 1, v);
    }
    if (signed_in) {
        const struct pv_account *a = &handshake_account.account;
        jr.account = a->id;
        c->uploader = a->id; /* the worker's own copy: files in messages (files.h) */
        snprintf(jr.role, sizeof(jr.role), "%s", a->role);
        jr.session = a->session;
        jr.muted_until = a->muted_until;
        jr.name_len = (size_t)snprintf(jr.name, sizeof(jr.name), "%s", a->name);
    } else if (jr.name_len && jr.name[0] != '\x7f') {
        jr.name_reserved = name_reserved(ws, jr.name, jr.name_len);
    }
    pv_debug("handshake from %s, subprotocol %s", peer,
             ri->acceptedWebSocketSubprotocol ? ri->acceptedWebSocketSubprotocol : "(none)");
    /* JOIN carries a second reference: the registry's. */
    pv_queue_push_ctl(ws->queue, pv_event_new(PV_EV_JOIN, pv_client_ref(c), &jr, sizeof(jr)));
    /* Seed 002's: its Engine.IO handshake goes on (socketio.h); the
     * broadcaster delivers nothing to it until OPEN. */
    if (c->dialect == PV_DIALECT_SIO)
        pv_socketio_ws_ready(ws, c, ri->query_string);
    /* From here the worker only reads frames: the handshake's stack is dead. */
    pv_http_trim_stack();
}

/* Closes the client from its worker: a close frame with code and reason
 * (queued by the broadcaster after the replies to the client's earlier
 * messages), then the closing handshake (RFC 6455 section 7.1.1). The
 * connection is not dropped at once: a client still sending would make
 * close(2) find unread data and answer with a TCP reset, which can destroy
 * our close frame before the client reads it. So the worker keeps reading
 * and discards everything until the client's close frame arrives; a
 * client that never sends one is evicted by the broadcaster's sweep a
 * second later (client.h). */
static int close_with(struct pv_ws *ws, struct pv_client *c, uint16_t code, const char *reason)
{
    /* Closing already for another reason (slow, idle, broken): that
     * close stands, this one is dropped. */
    if (!pv_client_close_decide(c, code, NULL))
        return 1;
    struct pv_event *ev = pv_event_new(PV_EV_KICK, pv_client_ref(c), reason, strlen(reason));
    ev->code = code;
    pv_queue_push_ctl(ws->queue, ev);
    return 1;
}

/* A protocol violation: logged, counted, closed with its code. A bad
 * close frame is answered at once: CivetWeb ends the connection after any
 * close frame, whatever the handler returns. */
static int fail(struct pv_ws *ws, struct pv_client *c, unsigned bits, uint16_t code,
                const char *reason)
{
    pv_stat_add(&ws->stats->protocol_closes, 1);
    pv_notice("protocol error from %s: %s; closing with %u", c->peer, reason, code);
    snprintf(c->leave_reason, sizeof(c->leave_reason), "closed %u: %s", code, reason);
    if ((bits & 0x0F) == PV_WS_OP_CLOSE) {
        pv_client_close(c, code, reason);
        return 0;
    }
    return close_with(ws, c, code, reason);
}

/* Answers a message the broker will not take with {"type":"error"},
 * naming the message by its msgId when it carried one (msg_id: from the
 * decode; a msgId that broke the rule was never kept). */
static void reply_error(struct pv_ws *ws, struct pv_client *c, const json_t *msg_id,
                        const char *code, const char *text)
{
    struct pv_frame *f = pv_proto_error(code, text, msg_id);
    if (c->dialect != PV_DIALECT_PALAVER) { /* the refusal in its own words */
        struct pv_frame *d = pv_dialect_out((enum pv_dialect)c->dialect, f, pv_now_ms());
        pv_frame_unref(f);
        f = d;
    }
    if (f) {
        pv_client_write(c, f->data, f->len, false);
        pv_frame_unref(f);
    }
    pv_stat_error(ws->stats, code);
}

/* A complete text message, decoded here, on this worker (the broadcaster
 * is one thread; the workers run in parallel), before any bucket: which
 * bucket it draws on depends on its type (typing has its own). The cost
 * is bounded by --max-message and the byte budget, and the over-the-rate
 * reply needs the msgId anyway. */
static struct pv_event *decode_message(struct pv_ws *ws, struct pv_client *c, const char *data,
                                       size_t len)
{
    struct pv_event *ev = pv_event_new(PV_EV_MSG, pv_client_ref(c), NULL, 0);
    pv_proto_decode(data, len, ws->cfg->max_text, &ev->in);
    ev->len = len; /* what the queue's byte bound counts */
    return ev;
}

/* A dialect client's frame as a palaver request (dialect.h), or NULL
 * after answering it. Seed 003 names its sender in every message: a name
 * other than the last one claimed is returned in *rename, to go first as
 * a hello of its own (a guest's rename, checked by the broadcaster like
 * any) -- once the message has passed the rate and byte checks, so a
 * client changing its name with every message cannot rename past them. */
static char *dialect_request(struct pv_ws *ws, struct pv_client *c, const char *data, size_t len,
                             char **rename)
{
    *rename = NULL;
    if (c->dialect == PV_DIALECT_TEXT)
        return pv_dialect_text_in(data, len);
    char *msg;
    const char *why;
    if (!pv_dialect_echo_in(data, len, &msg, rename, &why)) {
        pv_info("refused a message from %s (%s dialect): %s", c->peer,
                pv_dialect_name((enum pv_dialect)c->dialect), why);
        reply_error(ws, c, NULL, "bad-json", why);
        return NULL;
    }
    if (*rename && strcmp(*rename, c->claimed) == 0) {
        free(*rename);
        *rename = NULL;
    }
    return msg;
}

static int push_message(struct pv_ws *ws, struct pv_client *c, struct pv_event *ev);

/* Queues seed 003's rename (see dialect_request) ahead of its message. */
static void push_rename(struct pv_ws *ws, struct pv_client *c, const char *name)
{
    snprintf(c->claimed, sizeof(c->claimed), "%s", name);
    json_t *hello = json_pack("{s:s, s:s}", "type", "hello", "name", name);
    char *h = hello ? json_dumps(hello, JSON_COMPACT) : NULL;
    json_decref(hello);
    if (h)
        push_message(ws, c, decode_message(ws, c, h, strlen(h)));
    free(h);
}

/* Hands a decoded message over. An invalid one goes too, as its error, so
 * the replies to one client's messages keep their order. */
static int push_message(struct pv_ws *ws, struct pv_client *c, struct pv_event *ev)
{
    /* A guest renaming itself to an account's name: asked here, on the
     * worker, so the broadcaster never waits on the accounts' database.
     * (A signed-in client's own hello names are the broadcaster's.) */
    if (ev->in.type == PV_IN_HELLO && ev->in.name)
        ev->in.name_reserved = name_reserved(ws, ev->in.name, ev->in.name_len);
    /* An invitation or a DM names a person: their account is found here,
     * for the same reason, and the name becomes the account's own. */
    if (ev->in.type == PV_IN_ROOM && ev->in.user && ws->accounts) {
        struct pv_account acc;
        if (pv_accounts_find(ws->accounts, ev->in.user, &acc)) {
            ev->in.user_account = acc.id;
            json_object_set_new(ev->in.root, "user", json_string(acc.name));
            ev->in.user = json_string_value(json_object_get(ev->in.root, "user"));
        }
    }
    /* A message's files: their ids become their descriptions here, read
     * from palaver.db by this worker (files.h); the broadcaster encodes
     * them with the message once. */
    if (ev->in.type == PV_IN_MESSAGE && ev->in.files) {
        const char *code, *why;
        json_t *d = pv_files_resolve(ws->files, c->uploader, c->addr, ev->in.room, ev->in.files,
                                     &code, &why);
        if (!d) {
            pv_info("message with files from %s (account %lld) refused: %s; answered %s", c->peer,
                    (long long)c->uploader, why, code);
            reply_error(ws, c, ev->in.msg_id, code, why);
            pv_event_free(ev);
            return 1;
        }
        json_object_set_new(ev->in.root, "files", d);
        ev->in.files = d;
    }
    int rc = pv_queue_push_msg(ws->queue, ev, (int)ws->cfg->queue_timeout_ms);

    if (rc == 0)
        return 1;
    if (rc == -ESHUTDOWN) {
        pv_event_free(ev);
        return 1; /* shutting down: the client already has (or gets) 1001 */
    }
    /* The broadcaster could not take it in time: nothing is dropped
     * silently (typing aside: a hint, it is only counted). */
    if (ev->in.type == PV_IN_TYPING) {
        pv_stat_add(&ws->stats->typing_dropped, 1);
        pv_event_free(ev);
        return 1;
    }
    reply_error(ws, c, ev->in.msg_id, "busy", "server busy: message not accepted, send it again");
    pv_event_free(ev);
    pv_warn("event queue full for %u ms: message from %s refused with \"busy\"",
            ws->cfg->queue_timeout_ms, c->peer);
    return 1;
}

/* Typing requests' own bucket, so a person typing never spends the
 * messages they are about to send. Over it a request is dropped, counted,
 * without a reply (it is a hint; the next refresh says the same); a
 * sustained flood of them closes the client like a message flood. */
static int typing_check(struct pv_ws *ws, struct pv_client *c, uint64_t now)
{
    switch (pv_rate_take(&c->typing, PV_TYPING_RATE, PV_TYPING_BURST, now)) {
    case PV_RATE_OK:
        return 1;
    case PV_RATE_REFUSE:
        pv_stat_add(&ws->stats->typing_dropped, 1);
        return 0;
    case PV_RATE_CLOSE:
        break;
    }
    pv_stat_add(&ws->stats->rate_closes, 1);
    pv_warn("typing flood from %s: more than %u typing requests dropped over %u/s; closing "
            "with 1008",
            c->peer, PV_TYPING_BURST, PV_TYPING_RATE);
    snprintf(c->leave_reason, sizeof(c->leave_reason), "closed 1008: typing flood");
    close_with(ws, c, 1008, "typing rate limit exceeded");
    return -1;
}

/* The rate limit, for a text message or a ping. Returns 1 to take it, 0
 * to drop it (the caller answers), -1 when the client was closed. */
static int rate_check(struct pv_ws *ws, struct pv_client *c, uint64_t now)
{
    unsigned rate = atomic_load_explicit(&ws->live->rate_limit, memory_order_relaxed);
    unsigned burst = atomic_load_explicit(&ws->live->rate_burst, memory_order_relaxed);
    switch (pv_rate_take(&c->rate, rate, burst, now)) {
    case PV_RATE_OK:
        return 1;
    case PV_RATE_REFUSE:
        pv_stat_add(&ws->stats->rate_limited, 1);
        return 0;
    case PV_RATE_CLOSE:
        break;
    }
    pv_stat_add(&ws->stats->rate_closes, 1);
    pv_warn("flood from %s: more than %u messages refused over --rate-limit %u/s; closing "
            "with 1008",
            c->peer, burst, rate);
    snprintf(c->leave_reason, sizeof(c->leave_reason), "closed 1008: message flood");
    close_with(ws, c, 1008, "message rate limit exceeded");
    return -1;
}

/* The byte budget, for every frame that costs the server work (text,
 * ping, pong, continuation): the client's own bucket, then its address's
 * (4x, shared by all its connections). Returns 1 to take it, 0 to refuse
 * (the caller answers), -1 when the client was closed for a sustained
 * byte flood. */
static int byte_check(struct pv_ws *ws, struct pv_client *c, size_t len, uint64_t now)
{
    double rate = ws->cfg->byte_rate, burst = ws->cfg->byte_burst, cost = (double)len + 16;
    if (rate <= 0)
        return 1;
    enum pv_rate_verdict v =
        pv_rate_take_n(&c->bytes, rate, burst, cost,
                       atomic_load_explicit(&ws->live->rate_burst, memory_order_relaxed), now);
    if (v == PV_RATE_OK &&
        pv_peers_bytes(ws->peers, c->addr, rate * 4, burst * 4, cost, now) != PV_RATE_OK) {
        /* The address is over, not this client: refuse, never close. The
         * client's own bucket gets the bytes back. */
        c->bytes.tokens += cost;
        v = PV_RATE_REFUSE;
    }
    if (v == PV_RATE_OK)
        return 1;
    pv_stat_add(&ws->stats->byte_limited, 1);
    if (v == PV_RATE_REFUSE)
        return 0;
    static struct pv_log_limit lim = PV_LOG_LIMIT("clients closed over --byte-rate");
    pv_stat_add(&ws->stats->rate_closes, 1);
    if (pv_log_limited(&lim, PV_LOG_WARNING, 5))
        pv_warn("byte flood from %s: frames refused over --byte-rate %u B/s for too long; "
                "closing with 1008",
                c->peer, ws->cfg->byte_rate);
    snprintf(c->leave_reason, sizeof(c->leave_reason), "closed 1008: byte flood");
    close_with(ws, c, 1008, "byte rate limit exceeded");
    return -1;
}

static int on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *ud)
{
    struct pv_ws *ws = ud;
    struct pv_client *c = mg_get_user_connection_data(conn);

    if (!c)
        return 0;
    uint64_t now = pv_mono_ns(); /* one clock read per frame */
    atomic_store_explicit(&c->last_rx, now, memory_order_relaxed);
    int kick = atomic_load(&c->kick);
    if (kick) {
        /* Closing: only the client's close frame matters now. */
        if (((unsigned)bits & 0x0F) != PV_WS_OP_CLOSE)
            return 1;
        if (c->leave_reason[0] == '\0')
            snprintf(c->leave_reason, sizeof(c->leave_reason), "closed %d by the server", kick);
        return 0;
    }

    unsigned op = (unsigned)bits & 0x0F;
    /* A continuation costs its header here (its bytes are charged with
     * the whole message); pings and pongs their size. */
    if (op != PV_WS_OP_CLOSE && op != PV_WS_OP_TEXT &&
        byte_check(ws, c, op == PV_WS_OP_CONT ? 0 : len, now) != 1) {
        /* Over the byte budget: pings, pongs and fragments are dropped
         * unanswered (a flood of them was free before). Text is judged
         * whole, below. */
        if (atomic_load(&c->kick))
            return 1;
        if (op == PV_WS_OP_PING || op == PV_WS_OP_PONG)
            return 1;
    }
    struct pv_wsmsg_out out = pv_wsmsg_feed(&c->msg, (unsigned)bits, data, len);
    switch (out.kind) {
    case PV_WSMSG_MORE:
    case PV_WSMSG_PONG: /* last_rx is all a pong is for */
        return 1;
    case PV_WSMSG_FAIL:
        return fail(ws, c, (unsigned)bits, out.code, out.reason);
    case PV_WSMSG_CLOSE:
        snprintf(c->leave_reason, sizeof(c->leave_reason), "client closed %u", out.code);
        /* Answer the close handshake (a no-op if we sent our close first). */
        pv_client_close(c, out.code, NULL);
        return 0;
    case PV_WSMSG_PING: {
        int r = rate_check(ws, c, now);
        if (r < 0)
            return 1; /* closing */
        if (r > 0) {  /* a ping over the rate goes unanswered */
            struct pv_frame *f = pv_frame_new(PV_WS_OP_PONG, out.data, out.len);
            pv_client_write(c, f->data, f->len, false);
            pv_frame_unref(f);
        }
        return 1;
    }
    case PV_WSMSG_TEXT: {
        char *req = NULL, *rename = NULL;
        if (c->dialect == PV_DIALECT_SIO) {
            const char *why = NULL;
            long long ack;
            switch (pv_socketio_ws_frame(ws, c, out.data, out.len, &req, &why, &ack)) {
            case PV_SIO_REQUEST:
                break;
            case PV_SIO_DONE: /* a control packet: it still costs its bytes */
                byte_check(ws, c, out.len, now);
                return 1;
            case PV_SIO_REFUSE: {
                pv_info("refused a packet from %s (socketio dialect): %s", c->peer, why);
                json_t *id = ack >= 0 ? json_integer(ack) : NULL;
                reply_error(ws, c, id, "bad-json", why);
                json_decref(id);
                byte_check(ws, c, out.len, now);
                return 1;
            }
            case PV_SIO_CLOSE:
                snprintf(c->leave_reason, sizeof(c->leave_reason), "%s",
                         why ? why : "Socket.IO disconnect");
                if (why)
                    pv_info("closing Socket.IO client %s: %s", c->peer, why);
                return close_with(ws, c, 1000, why ? why : "goodbye");
            }
        } else if (c->dialect != PV_DIALECT_PALAVER) {
            req = dialect_request(ws, c, out.data, out.len, &rename);
            if (!req)
                return 1; /* refused in the dialect's words */
        }
        struct pv_event *ev =
            decode_message(ws, c, req ? req : out.data, req ? strlen(req) : out.len);
        free(req);
        bool typing = ev->in.type == PV_IN_TYPING;
        int r = typing ? typing_check(ws, c, now) : rate_check(ws, c, now);
        if (r == 0 && !typing)
            reply_error(ws, c, ev->in.msg_id, "rate-limited",
                        "too many messages: slow down, this one was not sent");
        if (r == 1) {
            r = byte_check(ws, c, out.len, now);
            if (r == 0 && !typing)
                reply_error(ws, c, ev->in.msg_id, "rate-limited",
                            "too many bytes: slow down, this one was not sent");
        }
        if (r != 1) {
            free(rename);
            pv_event_free(ev);
            return 1; /* refused (a typing hint silently), or closing */
        }
        if (rename)
            push_rename(ws, c, rename);
        free(rename);
        return push_message(ws, c, ev);
    }
    }
    return 0;
}

static void on_close(const struct mg_connection *conn, void *ud)
{
    struct pv_ws *ws = ud;
    struct pv_client *c = mg_get_user_connection_data(conn);

    if (!c)
        return;
    /* Waits for any write in progress; afterwards nobody writes to conn. */
    pv_client_mark_dead(c);
    if (c->counted) {
        pv_peers_release(ws->peers, c->addr);
        atomic_fetch_sub_explicit(&ws->stats->dialect_conns[c->dialect], 1, memory_order_relaxed);
    }
    if (c->leave_reason[0] == '\0' && atomic_load(&c->kick))
        snprintf(c->leave_reason, sizeof(c->leave_reason), "closed %d by the server",
                 atomic_load(&c->kick));
    else if (c->leave_reason[0] == '\0')
        snprintf(c->leave_reason, sizeof(c->leave_reason), "connection lost");
    /* LEAVE takes over this worker's reference. */
    pv_queue_push_ctl(ws->queue,
                      pv_event_new(PV_EV_LEAVE, c, c->leave_reason, strlen(c->leave_reason)));
}

void pv_ws_register(struct mg_context *ctx, struct pv_ws *ws)
{
    mg_set_websocket_handler_with_subprotocols(ctx, "/ws", &subprotocols_ws, on_connect, on_ready,
                                               on_data, on_close, ws);
    mg_set_websocket_handler_with_subprotocols(ctx, "/", &subprotocols_root, on_connect, on_ready,
                                               on_data, on_close, ws);
    mg_set_websocket_handler(ctx, "/socket.io/", on_connect, on_ready, on_data, on_close, ws);
    pv_socketio_register(ctx, ws);
}
