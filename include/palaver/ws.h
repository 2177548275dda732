/* ws.h -- CivetWeb's WebSocket callbacks: connect, ready, data, close.
 *
 * They run on CivetWeb worker threads, one worker per open WebSocket for
 * the connection's whole life (docs/civetweb.md section 1). They never touch
 * the registry. At the handshake they check Origin, capacity and the
 * per-address limit, and the session cookie (accounts.h: an account, a
 * guest, or a session that has ended, refused 401); afterwards they check the RFC 6455 framing
 * CivetWeb leaves unchecked (wsmsg.h), answer close and ping frames, apply the message-rate limit,
 * and turn each event (joined, message, left) into a pv_event on the lock-free queue.
 *
 * Threads: pv_ws_register() runs on main. The callbacks run on workers;
 * each touches only its own client's worker-owned fields, the queue, the
 * atomic admission counter and the stats.
 */
#ifndef PALAVER_WS_H
#define PALAVER_WS_H

#include <stdatomic.h>

struct mg_context;
struct pv_config;
struct pv_accounts;
struct pv_live;
struct pv_peers;
struct pv_queue;
struct pv_stats;
struct pv_socketio;

struct pv_ws {
    const struct pv_config *cfg;
    struct pv_queue *queue;
    struct pv_stats *stats;
    struct pv_peers *peers;       /* WebSockets per remote address */
    struct pv_bans *bans;         /* addresses banned for a while (limits.h) */
    struct pv_live *live;         /* limits SIGHUP can change */
    struct pv_accounts *accounts; /* sessions and reserved names; NULL without a data dir */
    struct pv_files *files;       /* files in messages (files.h); NULL: none can be attached */
    struct pv_socketio *sio;      /* Socket.IO polling sessions (socketio.h) */
    /* Clients admitted and not yet released by the broadcaster's LEAVE
     * handling: at most cfg->max_clients. */
    atomic_uint admitted;
    atomic_bool stopping; /* main: refuse new WebSockets from now on */
};

/* Registers the handlers on "/ws", "/" (seed 000's client opens the
 * bare host; the seeds' dialects, dialect.h) and "/socket.io/" (seed
 * 002's, with socketio.h's polling handshake). */
void pv_ws_register(struct mg_context *ctx, struct pv_ws *ws);

#endif
