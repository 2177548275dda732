/* socketio.c -- seed 002's Socket.IO: its client library, Engine.IO's
 * long-polling handshake, and the WebSocket side of the sio dialect
 * (socketio.h; the protocol and its bounds are written there).
 *
 * Threads: CivetWeb workers only. The session table is guarded by
 * `mu`; everything else a function touches is its own connection's (the
 * worker-owned fields of struct pv_client) or atomics (ws.h, stats.h). */
#include "palaver/socketio.h"

#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "palaver/accounts.h"
#include "palaver/api.h"
#include "palaver/client.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/dialect.h"
#include "palaver/frame.h"
#include "palaver/limits.h"
#include "palaver/live.h"
#include "palaver/log.h"
#include "palaver/peer.h"
#include "palaver/queue.h"
#include "palaver/sio.h"
#include "palaver/stats.h"
#include "palaver/ws.h"
#include "palaver/xalloc.h"

/* socket.io-client's dist/socket.io.js, built in (cmake/socketio/,
 * generated at build time from the pinned npm package). Empty when
 * palaverd was built with PALAVER_SOCKETIO_CLIENT=OFF. */
extern const unsigned char pv_socketio_js[];
extern const size_t pv_socketio_js_len;
extern const char pv_socketio_js_version[];

struct session {
    bool used;
    char sid[PV_SIO_SID_LEN + 1];
    char addr[48];
    uint64_t heard_ns;   /* its last GET or POST: forgotten after pingInterval + pingTimeout */
    uint64_t upgrade_by; /* refused (CONNECT_ERROR) if not upgraded by then */
    bool asked;          /* it sent "40": connect to namespace "/" */
    bool upgrading;      /* "2probe" came on its WebSocket: GETs get "6" at once */
    bool upgraded;       /* "5" came: the WebSocket has it; the slot ends with its GET */
    bool ended;          /* refused or closed: its next GET gets what is queued, then it ends */
    bool get_waiting;    /* a GET is held (one at a time) */
    size_t out_len;
    char out[PV_SIO_OUT_MAX]; /* packets for the next GET, 0x1E-separated */
    pthread_cond_t cv;        /* signalled when out, upgrading/upgraded or ended change */
};

struct pv_socketio {
    pthread_mutex_t mu;
    struct session s[PV_SIO_SESSIONS];
};

struct pv_socketio *pv_socketio_new(void)
{
    struct pv_socketio *io = pv_xcalloc(1, sizeof(*io));
    pthread_mutex_init(&io->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (size_t i = 0; i < PV_SIO_SESSIONS; i++)
        pthread_cond_init(&io->s[i].cv, &ca);
    pthread_condattr_destroy(&ca);
    return io;
}

void pv_socketio_free(struct pv_socketio *io)
{
    if (!io)
        return;
    for (size_t i = 0; i < PV_SIO_SESSIONS; i++)
        pthread_cond_destroy(&io->s[i].cv);
    pthread_mutex_destroy(&io->mu);
    free(io);
}

static uint64_t ping_interval_ns(const struct pv_ws *ws)
{
    return (uint64_t)ws->cfg->ping_interval_ms * 1000000u;
}

/* What the open packet promises: the client gives up on a server that
 * has not pinged for pingInterval + pingTimeout. palaverd pings every
 * --ping-interval and closes a client silent for --idle-timeout. */
static unsigned ping_timeout_ms(const struct pv_ws *ws)
{
    unsigned i = ws->cfg->ping_interval_ms, t = ws->cfg->idle_timeout_ms;
    return t > i + 5000 ? t - i : 5000;
}

/* How many polling sessions there may be at once (socketio.h). */
static unsigned sessions_cap(const struct pv_ws *ws)
{
    unsigned cap = ws->cfg->http_workers / 2;
    return cap < 1 ? 1 : cap > PV_SIO_SESSIONS ? PV_SIO_SESSIONS : cap;
}

/* Engine.IO's open packet: the session id, whether it may upgrade to a
 * WebSocket (over polling), the heartbeat and the largest packet. */
static size_t open_packet(const struct pv_ws *ws, const char *sid, bool polling, char *out,
                          size_t n)
{
    int k = snprintf(out, n,
                     "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                     "\"maxPayload\":%u}",
                     sid, polling ? "\"websocket\"" : "", ws->cfg->ping_interval_ms,
                     ping_timeout_ms(ws), (unsigned)ws->cfg->max_message);
    return k > 0 && (size_t)k < n ? (size_t)k : 0;
}

/* ---- the session table (mu held) ---- */

static void session_free(struct session *s)
{
    s->used = false;
    s->sid[0] = '\0';
}

/* Ends s (refused, or upgraded: *flag): its held GET, if any, wakes,
 * answers and frees the slot; otherwise the slot is freed now. */
static void session_end(struct session *s, bool *flag)
{
    *flag = true;
    pthread_cond_signal(&s->cv);
    if (!s->get_waiting)
        session_free(s);
}

/* Forgets sessions nobody has heard from for pingInterval + pingTimeout
 * (a held GET keeps its own). Cheap: PV_SIO_SESSIONS slots. */
static void expire(struct pv_socketio *io, const struct pv_ws *ws, uint64_t now)
{
    uint64_t life = ping_interval_ns(ws) + (uint64_t)ping_timeout_ms(ws) * 1000000u;
    for (size_t i = 0; i < PV_SIO_SESSIONS; i++) {
        struct session *s = &io->s[i];
        if (s->used && !s->get_waiting && now - s->heard_ns > life)
            session_free(s);
    }
}

static struct session *find(struct pv_socketio *io, const char *sid, const char *addr)
{
    if (strlen(sid) != PV_SIO_SID_LEN)
        return NULL;
    for (size_t i = 0; i < PV_SIO_SESSIONS; i++) {
        struct session *s = &io->s[i];
        /* Another address's sid is unknown here: a sid leaked to someone
         * else does not let them finish that client's upgrade. */
        if (s->used && sodium_memcmp(s->sid, sid, PV_SIO_SID_LEN) == 0)
            return strcmp(s->addr, addr) == 0 ? s : NULL;
    }
    return NULL;
}

/* Appends one packet for the session's next GET. False when it does not
 * fit: the session is over its bound. */
static bool queue_packet(struct session *s, const char *p, size_t n)
{
    size_t need = n + (s->out_len ? 1 : 0);
    if (s->out_len + need > sizeof(s->out))
        return false;
    if (s->out_len)
        s->out[s->out_len++] = '\x1e';
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
    pthread_cond_signal(&s->cv);
    return true;
}

static void new_sid(char out[PV_SIO_SID_LEN + 1])
{
    unsigned char raw[15];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, PV_SIO_SID_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* ---- HTTP ---- */

static int answer(struct mg_connection *conn, int status, const char *reason, const char *type,
                  const char *body, size_t len)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
              status, reason, type, len,
              status == 503   ? "Retry-After: 5\r\n"
              : status == 429 ? "Retry-After: 1\r\n"
                              : "");
    if (len)
        mg_write(conn, body, len);
    return status;
}

/* Engine.IO's own error answer: {"code":N,"message":...} with 400 (what
 * socket.io-client reports as the transport error's context). */
static int eio_error(struct mg_connection *conn, int status, int code, const char *message)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    const char *reason = status == 400   ? "Bad Request"
                         : status == 403 ? "Forbidden"
                         : status == 401 ? "Unauthorized"
                         : status == 413 ? "Payload Too Large"
                         : status == 429 ? "Too Many Requests"
                                         : "Service Unavailable";
    return answer(conn, status, reason, "application/json", body, (size_t)n);
}

static int on_client_js(struct mg_connection *conn, void *ud)
{
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (pv_socketio_js_len == 0) {
        static struct pv_log_limit lim = PV_LOG_LIMIT("socket.io.js requests without it");
        if (pv_log_limited(&lim, PV_LOG_NOTICE, 5))
            pv_notice("/socket.io/socket.io.js requested, but this palaverd was built without "
                      "socket.io-client (PALAVER_SOCKETIO_CLIENT=OFF); answered 404");
        return answer(conn, 404, "Not Found", "text/plain; charset=utf-8",
                      "404 Not Found: built without socket.io-client\n", 46);
    }
    if (strcmp(ri->request_method, "GET") != 0 && strcmp(ri->request_method, "HEAD") != 0)
        return answer(conn, 405, "Method Not Allowed", "text/plain; charset=utf-8",
                      "405 Method Not Allowed\n", 23);
    const char *inm = mg_get_header(conn, "If-None-Match");
    char etag[64];
    snprintf(etag, sizeof(etag), "\"socket.io-client-%s\"", pv_socketio_js_version);
    if (inm && strcmp(inm, etag) == 0) {
        mg_printf(conn, "HTTP/1.1 304 Not Modified\r\nETag: %s\r\nContent-Length: 0\r\n\r\n", etag);
        return 304;
    }
    mg_printf(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/javascript; charset=utf-8\r\n"
        "Content-Length: %zu\r\nETag: %s\r\nCache-Control: public, max-age=3600\r\n"
        "X-Content-Type-Options: nosniff\r\nCross-Origin-Resource-Policy: same-origin\r\n\r\n",
        pv_socketio_js_len, etag);
    if (strcmp(ri->request_method, "HEAD") != 0)
        mg_write(conn, pv_socketio_js, pv_socketio_js_len);
    return 200;
}

/* The handshake's checks, as a WebSocket's (ws.c on_connect): shutdown,
 * Origin, the address's handshake bucket, the session cookie, bans.
 * Returns 0 to go on, or the status it answered. */
static int handshake_checks(struct pv_ws *ws, struct mg_connection *conn, const struct pv_peer *p,
                            const char *peer)
{
    if (atomic_load(&ws->stopping))
        return eio_error(conn, 503, 5, "palaverd is shutting down");
    if (!pv_peers_handshake(ws->peers, p->addr, ws->cfg->handshake_rate, ws->cfg->handshake_burst,
                            pv_mono_ns())) {
        static struct pv_log_limit lim = PV_LOG_LIMIT("polling handshakes over --handshake-rate");
        pv_stat_add(&ws->stats->refused_rate, 1);
        if (pv_log_limited(&lim, PV_LOG_WARNING, 5))
            pv_warn("refused Socket.IO handshake from %s: more than %u handshakes/s from that "
                    "address (--handshake-rate); answered 429",
                    peer, ws->cfg->handshake_rate);
        return eio_error(conn, 429, 5, "too many connection attempts, slow down");
    }
    struct pv_account a;
    int s = pv_api_session(ws->accounts, conn, &a);
    if (s < 0) {
        pv_notice("refused Socket.IO handshake from %s: its session cookie is unknown, expired "
                  "or revoked; answered 401",
                  peer);
        return eio_error(conn, 401, 4, "your session has ended: sign in again");
    }
    if (s == 0 && atomic_load_explicit(&ws->live->members_only, memory_order_relaxed)) {
        pv_notice("refused Socket.IO handshake from %s: auth = members and it has no session; "
                  "answered 401",
                  peer);
        return eio_error(conn, 401, 4, "this chat is for members: sign in first");
    }
    if (s == 0 && pv_bans_until(ws->bans, p->addr, pv_now_ms())) {
        pv_notice("refused Socket.IO handshake from %s: the address is banned; answered 403", peer);
        return eio_error(conn, 403, 4, "a moderator banned your address");
    }
    return 0;
}

static int polling_open(struct pv_ws *ws, struct mg_connection *conn, const struct pv_peer *p,
                        const char *peer)
{
    int r = handshake_checks(ws, conn, p, peer);
    if (r)
        return r;
    struct pv_socketio *io = ws->sio;
    uint64_t now = pv_mono_ns();
    /* One address gets at most half the sessions (and --max-per-ip): a
     * host polling without upgrading cannot hold every seed 002 handshake
     * slot of the LAN. --max-per-ip 0 leaves addresses unlimited. */
    unsigned per_ip = atomic_load_explicit(&ws->live->max_per_ip, memory_order_relaxed);
    unsigned half = sessions_cap(ws) / 2 ? sessions_cap(ws) / 2 : 1;
    if (per_ip > half)
        per_ip = half;
    pthread_mutex_lock(&io->mu);
    expire(io, ws, now);
    struct session *free_slot = NULL;
    unsigned mine = 0, used = 0;
    for (size_t i = 0; i < PV_SIO_SESSIONS; i++) {
        if (!io->s[i].used) {
            if (!free_slot)
                free_slot = &io->s[i];
            continue;
        }
        used++;
        if (strcmp(io->s[i].addr, p->addr) == 0)
            mine++;
    }
    /* A session's held GET takes an HTTP worker: half of --http-workers
     * always stay for pages, the API and uploads. */
    if (used >= sessions_cap(ws))
        free_slot = NULL;
    if (!free_slot || (per_ip && mine >= per_ip)) {
        pthread_mutex_unlock(&io->mu);
        static struct pv_log_limit lim = PV_LOG_LIMIT("polling sessions refused");
        pv_stat_add(free_slot ? &ws->stats->refused_per_ip : &ws->stats->refused_full, 1);
        if (pv_log_limited(&lim, PV_LOG_WARNING, 5))
            pv_warn("refused Socket.IO handshake from %s: %s (%u); answered 503", peer,
                    free_slot ? "as many polling sessions from that address as allowed "
                                "(--max-per-ip, half the sessions)"
                              : "every polling session in use",
                    free_slot ? per_ip : sessions_cap(ws));
        return eio_error(conn, 503, 5, "too many sessions, try again later");
    }
    struct session *s = free_slot;
    s->used = true;
    new_sid(s->sid);
    snprintf(s->addr, sizeof(s->addr), "%s", p->addr);
    s->heard_ns = now;
    s->upgrade_by = now + PV_SIO_UPGRADE_PINGS * ping_interval_ns(ws);
    s->asked = s->upgrading = s->upgraded = s->ended = s->get_waiting = false;
    s->out_len = 0;
    char body[256];
    size_t n = open_packet(ws, s->sid, true, body, sizeof(body));
    pthread_mutex_unlock(&io->mu);
    pv_debug("Socket.IO polling session from %s", peer);
    return answer(conn, 200, "OK", "text/plain; charset=utf-8", body, n);
}

/* A held GET: answers what is queued, at once or when it comes; a ping
 * after pingInterval; the noop once the client is upgrading. */
static int polling_get(struct pv_ws *ws, struct mg_connection *conn, const char *sid,
                       const struct pv_peer *p, const char *peer)
{
    struct pv_socketio *io = ws->sio;
    uint64_t now = pv_mono_ns();
    pthread_mutex_lock(&io->mu);
    struct session *s = find(io, sid, p->addr);
    if (!s) {
        pthread_mutex_unlock(&io->mu);
        return eio_error(conn, 400, 1, "Session ID unknown");
    }
    if (s->get_waiting) {
        /* Engine.IO allows one; a second means a broken or hostile client
         * (the held one answers and frees the slot). */
        session_end(s, &s->ended);
        pthread_mutex_unlock(&io->mu);
        pv_info("Socket.IO session from %s ended: a second GET while one was held; answered 400",
                peer);
        return eio_error(conn, 400, 3, "overlapping GET");
    }
    s->get_waiting = true;
    s->heard_ns = now;
    uint64_t until = now + ping_interval_ns(ws);
    bool too_late = false;
    for (;;) {
        now = pv_mono_ns();
        /* The deadline holds while upgrading too: a probe whose
         * WebSocket went away would otherwise have the client polling
         * noops for as long as it likes. */
        if (!s->upgraded && !s->ended && now >= s->upgrade_by) {
            /* It never upgraded (no WebSocket through some proxy?): a
             * Socket.IO CONNECT_ERROR, after which the client does not
             * try again by itself, and a line for the operator. */
            static const char e[] =
                "44{\"message\":\"palaver needs WebSockets: this connection could not "
                "upgrade to one\"}";
            queue_packet(s, e, sizeof(e) - 1);
            s->ended = true;
            too_late = true; /* said below, outside the lock */
            break;
        }
        if (s->out_len || s->ended || s->upgrading || s->upgraded || atomic_load(&ws->stopping))
            break;
        if (now >= until) {
            queue_packet(s, "2", 1); /* the client answers with a POST of "3" */
            break;
        }
        uint64_t wait = until < s->upgrade_by ? until - now : s->upgrade_by - now;
        if (wait > 250000000u)
            wait = 250000000u;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)wait;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->cv, &io->mu, &ts);
    }
    char body[PV_SIO_OUT_MAX];
    size_t n = s->out_len;
    memcpy(body, s->out, n);
    s->out_len = 0;
    if (n == 0) {
        /* upgrading/upgraded: the noop that lets the client pause polling;
         * shutdown or ended: close. */
        body[0] = s->upgrading || s->upgraded ? '6' : '1';
        n = 1;
    }
    s->get_waiting = false;
    s->heard_ns = pv_mono_ns();
    if (s->upgraded || s->ended || atomic_load(&ws->stopping))
        session_free(s);
    pthread_mutex_unlock(&io->mu);
    if (too_late)
        pv_notice("Socket.IO session from %s ended: not upgraded to a WebSocket within %u ms "
                  "(%d pingIntervals); answered CONNECT_ERROR",
                  peer, PV_SIO_UPGRADE_PINGS * ws->cfg->ping_interval_ms, PV_SIO_UPGRADE_PINGS);
    return answer(conn, 200, "OK", "text/plain; charset=utf-8", body, n);
}

/* A POST's packets: the namespace connect, pongs, close. */
static int polling_post(struct pv_ws *ws, struct mg_connection *conn, const char *sid,
                        const struct pv_peer *p, const char *peer)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    long long len = ri->content_length;
    if (len < 0)
        return eio_error(conn, 400, 3, "a POST needs Content-Length");
    if ((unsigned long long)len > ws->cfg->max_message) {
        pv_info("Socket.IO POST from %s refused: %lld bytes, over --max-message %zu; "
                "answered 413",
                peer, len, ws->cfg->max_message);
        return eio_error(conn, 413, 3, "payload too large");
    }
    char *body = pv_xmalloc((size_t)len + 1);
    size_t got = 0;
    while (got < (size_t)len) {
        int r = mg_read(conn, body + got, (size_t)len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < (size_t)len) {
        free(body);
        return eio_error(conn, 400, 3, "the body ended early");
    }
    struct pv_span sp[PV_SIO_POST_PACKETS];
    size_t k = pv_eio_split(body, got, sp, PV_SIO_POST_PACKETS);
    const char *bad = k > PV_SIO_POST_PACKETS ? "too many packets in one POST" : NULL;
    struct pv_socketio *io = ws->sio;
    pthread_mutex_lock(&io->mu);
    struct session *s = find(io, sid, p->addr);
    if (!s) {
        pthread_mutex_unlock(&io->mu);
        free(body);
        return eio_error(conn, 400, 1, "Session ID unknown");
    }
    s->heard_ns = pv_mono_ns();
    for (size_t i = 0; i < k && !bad; i++) {
        struct pv_sio_packet pk;
        if (!pv_sio_parse(body + sp[i].off, sp[i].len, &pk)) {
            bad = "a malformed packet";
        } else if (pk.eio == PV_EIO_MESSAGE && pk.sio && pk.type == PV_SIO_CONNECT) {
            if (pk.nsp_len == 1) {
                s->asked = true;
            } else {
                /* Only "/" is served: refused as Socket.IO servers do. */
                char e[128];
                int n = pk.nsp_len <= 64
                            ? snprintf(e, sizeof(e), "44%.*s,{\"message\":\"Invalid namespace\"}",
                                       (int)pk.nsp_len, pk.nsp)
                            : 0;
                if (n == 0 || memchr(pk.nsp, '"', pk.nsp_len) || !queue_packet(s, e, (size_t)n))
                    bad = "namespaces asked for beyond its bound";
            }
        } else if (pk.eio == PV_EIO_PONG || pk.eio == PV_EIO_NOOP ||
                   (pk.eio == PV_EIO_MESSAGE && pk.sio && pk.type == PV_SIO_DISCONNECT)) {
            /* heard: nothing else to do */
        } else if (pk.eio == PV_EIO_PING) {
            char e[64];
            int n = snprintf(e, sizeof(e), "3%.*s", (int)(pk.data_len < 32 ? pk.data_len : 32),
                             pk.data);
            if (!queue_packet(s, e, (size_t)n))
                bad = "pings beyond its bound";
        } else if (pk.eio == PV_EIO_CLOSE) {
            s->ended = true;
            pthread_cond_signal(&s->cv);
        } else {
            bad = "a packet palaverd does not take over polling (events go over the WebSocket)";
        }
    }
    if (bad)
        session_end(s, &s->ended);
    pthread_mutex_unlock(&io->mu);
    free(body);
    if (bad) {
        pv_info("Socket.IO session from %s ended: %s; answered 400", peer, bad);
        return eio_error(conn, 400, 3, "Bad request");
    }
    return answer(conn, 200, "OK", "text/plain; charset=utf-8", "ok", 2);
}

static int on_polling(struct mg_connection *conn, void *ud)
{
    struct pv_ws *ws = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct pv_peer p;
    char peer[128];
    (void)pv_request_peer(conn, &ws->cfg->trusted, &p); /* a bad one got 400 in begin_request */
    pv_peer_text(conn, &p, peer, sizeof(peer));

    const char *q = ri->query_string ? ri->query_string : "";
    size_t ql = strlen(q);
    char eio[4], transport[16], sid[PV_SIO_SID_LEN + 2];
    if (mg_get_var(q, ql, "EIO", eio, sizeof(eio)) < 0 || strcmp(eio, "4") != 0)
        return eio_error(conn, 400, 5, "Unsupported protocol version");
    if (mg_get_var(q, ql, "transport", transport, sizeof(transport)) < 0 ||
        strcmp(transport, "polling") != 0)
        return eio_error(conn, 400, 0, "Transport unknown");
    /* The Origin rule of WebSockets: another site's page may not use a
     * visitor's browser here (its cookie would name them). */
    const char *origin = mg_get_header(conn, "Origin");
    if (!pv_origin_allowed(origin, p.https, mg_get_header(conn, "Host"),
                           atomic_load_explicit(&ws->live->origins, memory_order_acquire))) {
        char o[128];
        pv_log_printable(origin, o, sizeof(o));
        pv_stat_add(&ws->stats->refused_origin, 1);
        pv_warn("refused Socket.IO request from %s: Origin '%s' is not allowed (see "
                "--allowed-origins); answered 403",
                peer, o);
        return eio_error(conn, 403, 4, "cross-site request refused");
    }
    bool has_sid = mg_get_var(q, ql, "sid", sid, sizeof(sid)) >= 0;
    bool get = strcmp(ri->request_method, "GET") == 0;
    if (!get && strcmp(ri->request_method, "POST") != 0)
        return eio_error(conn, 400, 2, "Bad handshake method");
    if (!has_sid)
        return get ? polling_open(ws, conn, &p, peer)
                   : eio_error(conn, 400, 2, "Bad handshake method");
    return get ? polling_get(ws, conn, sid, &p, peer) : polling_post(ws, conn, sid, &p, peer);
}

void pv_socketio_register(struct mg_context *ctx, struct pv_ws *ws)
{
    mg_set_request_handler(ctx, "/socket.io/socket.io.js$", on_client_js, ws);
    mg_set_request_handler(ctx, "/socket.io/$", on_polling, ws);
}

/* ---- the WebSocket (ws.c's callbacks, on the client's worker) ---- */

bool pv_socketio_ws_check(struct pv_ws *ws, const char *query, const char *addr, const char **why)
{
    const char *q = query ? query : "";
    size_t ql = strlen(q);
    char eio[4], transport[16], sid[PV_SIO_SID_LEN + 2];
    if (mg_get_var(q, ql, "EIO", eio, sizeof(eio)) < 0 || strcmp(eio, "4") != 0) {
        *why = "unsupported Engine.IO version: palaverd speaks EIO=4 (socket.io-client 3 and 4)";
        return false;
    }
    if (mg_get_var(q, ql, "transport", transport, sizeof(transport)) < 0 ||
        strcmp(transport, "websocket") != 0) {
        *why = "transport must be websocket";
        return false;
    }
    if (mg_get_var(q, ql, "sid", sid, sizeof(sid)) < 0)
        return true; /* a WebSocket from the start */
    pthread_mutex_lock(&ws->sio->mu);
    struct session *s = find(ws->sio, sid, addr);
    bool ok = s && !s->upgraded && !s->ended;
    pthread_mutex_unlock(&ws->sio->mu);
    if (!ok)
        *why = "unknown or ended Socket.IO session";
    return ok;
}

enum { SIO_PROBING = 1, SIO_OPEN, SIO_CONNECTED };

static void write_text(struct pv_client *c, const char *s, size_t n)
{
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, s, n);
    pv_client_write(c, f->data, f->len, false);
    pv_frame_unref(f);
}

void pv_socketio_ws_ready(struct pv_ws *ws, struct pv_client *c, const char *query)
{
    const char *q = query ? query : "";
    if (mg_get_var(q, strlen(q), "sid", c->sio_sid, sizeof(c->sio_sid)) >= 0) {
        c->sio_state = SIO_PROBING;
        return;
    }
    new_sid(c->sio_sid);
    c->sio_state = SIO_OPEN;
    char open[256];
    write_text(c, open, open_packet(ws, c->sio_sid, false, open, sizeof(open)));
}

/* Namespace "/" connected: its CONNECT answer (a socket id of its own),
 * then the broadcaster greets it and starts delivering (OPEN). */
static void connect_ns(struct pv_ws *ws, struct pv_client *c)
{
    char sid[PV_SIO_SID_LEN + 1], ok[64];
    new_sid(sid);
    int n = snprintf(ok, sizeof(ok), "40{\"sid\":\"%s\"}", sid);
    write_text(c, ok, (size_t)n);
    c->sio_state = SIO_CONNECTED;
    pv_queue_push_ctl(ws->queue, pv_event_new(PV_EV_OPEN, pv_client_ref(c), NULL, 0));
}

enum pv_sio_verdict pv_socketio_ws_frame(struct pv_ws *ws, struct pv_client *c, const char *data,
                                         size_t len, char **req, const char **why, long long *ack)
{
    struct pv_sio_packet pk;
    *req = NULL;
    *ack = -1;
    if (!pv_sio_parse(data, len, &pk)) {
        *why = "not an Engine.IO packet";
        return PV_SIO_REFUSE;
    }
    if (c->sio_state == SIO_PROBING) {
        struct pv_socketio *io = ws->sio;
        if (pk.eio == PV_EIO_PING && pk.data_len == 5 && memcmp(pk.data, "probe", 5) == 0) {
            pthread_mutex_lock(&io->mu);
            struct session *s = find(io, c->sio_sid, c->addr);
            if (s) {
                s->upgrading = true; /* the held GET answers "6": the client pauses polling */
                pthread_cond_signal(&s->cv);
            }
            pthread_mutex_unlock(&io->mu);
            if (!s) {
                *why = "the polling session has ended";
                return PV_SIO_CLOSE;
            }
            write_text(c, "3probe", 6);
            return PV_SIO_DONE;
        }
        if (pk.eio == PV_EIO_UPGRADE) {
            pthread_mutex_lock(&io->mu);
            struct session *s = find(io, c->sio_sid, c->addr);
            bool asked = s && s->asked;
            if (s)
                session_end(s, &s->upgraded);
            pthread_mutex_unlock(&io->mu);
            if (!s) {
                *why = "the polling session has ended";
                return PV_SIO_CLOSE;
            }
            c->sio_state = SIO_OPEN;
            if (asked)
                connect_ns(ws, c);
            return PV_SIO_DONE;
        }
        *why = "expected the upgrade probe (2probe, then 5)";
        return PV_SIO_CLOSE;
    }
    switch (pk.eio) {
    case PV_EIO_PONG:
    case PV_EIO_NOOP:
        return PV_SIO_DONE;
    case PV_EIO_PING: {
        char pong[40];
        int n = snprintf(pong, sizeof(pong), "3%.*s", (int)(pk.data_len < 32 ? pk.data_len : 32),
                         pk.data);
        write_text(c, pong, (size_t)n);
        return PV_SIO_DONE;
    }
    case PV_EIO_CLOSE:
        return PV_SIO_CLOSE;
    case PV_EIO_MESSAGE:
        break;
    default:
        *why = "an Engine.IO packet out of place";
        return PV_SIO_REFUSE;
    }
    if (!pk.sio) {
        *why = "not a Socket.IO packet";
        return PV_SIO_REFUSE;
    }
    if (pk.nsp_len != 1) {
        if (pk.type == PV_SIO_CONNECT && pk.nsp_len <= 64 && !memchr(pk.nsp, '"', pk.nsp_len)) {
            char e[128];
            int n = snprintf(e, sizeof(e), "44%.*s,{\"message\":\"Invalid namespace\"}",
                             (int)pk.nsp_len, pk.nsp);
            write_text(c, e, (size_t)n);
            return PV_SIO_DONE;
        }
        *why = "palaverd serves the namespace \"/\" only";
        return PV_SIO_REFUSE;
    }
    switch (pk.type) {
    case PV_SIO_CONNECT:
        if (c->sio_state == SIO_OPEN)
            connect_ns(ws, c);
        return PV_SIO_DONE;
    case PV_SIO_DISCONNECT:
        return PV_SIO_CLOSE;
    case PV_SIO_EVENT:
        *ack = pk.ack;
        if (c->sio_state != SIO_CONNECTED) {
            *why = "connect to the namespace first (40)";
            return PV_SIO_REFUSE;
        }
        return pv_dialect_sio_in(pk.json, pk.json_len, pk.ack, req, why) ? PV_SIO_REQUEST
                                                                         : PV_SIO_REFUSE;
    default:
        *why = "palaverd takes events (42) only: no acks from clients, no binary";
        return PV_SIO_REFUSE;
    }
}
