/* socketio.h -- seed 002's Socket.IO (Engine.IO v4, Socket.IO v5) on
 * palaverd's port: the client library, the long-polling handshake and
 * the WebSocket it upgrades to (docs/dialects.md, "Seed 002").
 *
 * An unmodified io() first opens a long-polling session over plain HTTP
 * and only then probes and upgrades to a WebSocket. In palaverd the
 * polling session carries the handshake only -- the open packet, the
 * namespace connect the client asks for, pings, and the noop that lets
 * the client finish its upgrade -- and chat goes over the WebSocket (a
 * client of the `sio` dialect, dialect.h), where every limit, bucket and
 * log line of palaver's own protocol applies. A session that has not
 * upgraded within PV_SIO_UPGRADE_PINGS pingIntervals (--ping-interval) is refused with a Socket.IO
 * CONNECT_ERROR ("palaver needs WebSockets") and ended.
 *
 *   client (io())                                  palaverd
 *   GET  /socket.io/?EIO=4&transport=polling   ->  0{"sid":S,"upgrades":["websocket"],...}
 *   POST /socket.io/?...&sid=S   "40"          ->  ok          (asked for namespace "/")
 *   GET  /socket.io/?...&sid=S                 ->  (held: a ping, or the noop below)
 *   WS   /socket.io/?EIO=4&transport=websocket&sid=S
 *        "2probe"                              ->  "3probe", and "6" to the held GET
 *        "5"                                   ->  the polling session ends;
 *                                                  40{"sid":...}, then chat (dialect.h)
 *
 * A client that opens the WebSocket directly (transports: ["websocket"],
 * the bench) gets the open packet on it at once and sends "40" there.
 *
 * Bounds (per session, fixed): at most PV_SIO_OUT_MAX bytes of packets
 * waiting for its GET (a few control packets; more ends the session with
 * 400), one GET at a time (a second ends it, as Engine.IO's servers do),
 * a GET held at most pingInterval, a POST of at most --max-message bytes
 * and PV_SIO_POST_PACKETS packets; sessions: at most half of
 * --http-workers (a held GET takes an HTTP worker: the other half always
 * serve pages, the API and uploads) and PV_SIO_SESSIONS in all, and
 * from one address --max-per-ip and at most half of those; new ones draw on the address's
 * --handshake-rate bucket like WebSocket handshakes. A session nobody
 * hears from for pingInterval + pingTimeout is forgotten.
 *
 * Threads: CivetWeb workers. The session table has one mutex (the only
 * shared state here): the GET, the POSTs and the WebSocket of one session
 * run on different workers. A held GET waits on its session's condition
 * variable under that mutex, in slices of at most 250 ms so that shutdown
 * (ws->stopping) is seen without a wake-up from main.
 */
#ifndef PALAVER_SOCKETIO_H
#define PALAVER_SOCKETIO_H

#include <stdbool.h>
#include <stddef.h>

struct mg_context;
struct pv_client;
struct pv_ws;

#define PV_SIO_SESSIONS 256    /* polling sessions at once, all addresses */
#define PV_SIO_OUT_MAX 512     /* bytes of packets a session holds for its GET */
#define PV_SIO_POST_PACKETS 16 /* packets in one POST */
#define PV_SIO_UPGRADE_PINGS 3 /* a polling session must upgrade within 3 pingIntervals */
#define PV_SIO_SID_LEN 20      /* base64url of 15 random bytes */

struct pv_socketio;

struct pv_socketio *pv_socketio_new(void);
void pv_socketio_free(struct pv_socketio *s);

/* Registers /socket.io/socket.io.js (the pinned socket.io-client's
 * dist/socket.io.js, built into palaverd) and the polling endpoint
 * /socket.io/. Main thread, before the server starts. */
void pv_socketio_register(struct mg_context *ctx, struct pv_ws *ws);

/* The WebSocket side, on the worker serving a sio-dialect client.
 * pv_socketio_ws_check: may a WebSocket handshake with this query string
 * open? (EIO=4, transport=websocket, and a sid, if any, of a polling
 * session of the same address not yet upgraded.) Fills *why if not. */
bool pv_socketio_ws_check(struct pv_ws *ws, const char *query, const char *addr, const char **why);

/* The ready handler's part: the client's Engine.IO state from its query
 * string. A direct WebSocket gets its open packet now. */
void pv_socketio_ws_ready(struct pv_ws *ws, struct pv_client *c, const char *query);

/* One text frame from a sio client. PV_SIO_REQUEST: *req is a palaver
 * request (malloc'd) to decode and judge like any; PV_SIO_DONE: handled
 * (a control packet); PV_SIO_REFUSE: refused with *why (and *ack, -1 or
 * the ack id the refusal answers); PV_SIO_CLOSE: the client said goodbye
 * (close 1000). */
enum pv_sio_verdict { PV_SIO_DONE, PV_SIO_REQUEST, PV_SIO_REFUSE, PV_SIO_CLOSE };
enum pv_sio_verdict pv_socketio_ws_frame(struct pv_ws *ws, struct pv_client *c, const char *data,
                                         size_t len, char **req, const char **why, long long *ack);

#endif
