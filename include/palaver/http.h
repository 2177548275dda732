/* http.h -- palaverd's HTTP side: one CivetWeb context serving the page,
 * the WebSocket endpoints (ws.h) and /healthz and /metrics (admin.h) on
 * one port.
 *
 * What every connection and request passes through, in order:
 *  1. init_connection (at accept, patched CivetWeb): an address holding
 *     --max-conns-per-ip workers already is closed at once;
 *  2. begin_request (every request, handshakes included): 503 with
 *     Retry-After while palaverd is starting (the port accepts from
 *     inside mg_start2(), before the handlers exist), then the Host check
 *     (421: DNS rebinding);
 *  3. the WebSocket handlers (ws.h) or the admin handlers or a file.
 *
 * Threads: pv_http_start(), pv_http_stop_writers() and pv_http_stop() on
 * main only; the callbacks on CivetWeb's threads (http.c says what they
 * share and how it is guarded).
 *
 * Teardown order: the writer pool is stopped with pv_http_stop_writers()
 * before pv_http_stop(): mg_stop() frees the connection slots and mutexes
 * the writers lock (docs/civetweb.md section 2).
 */
#ifndef PALAVER_HTTP_H
#define PALAVER_HTTP_H

struct pv_config;
struct pv_stats;
struct pv_live;
struct pv_peers;
struct pv_ws;
struct pv_admin;
struct pv_api;
struct pv_writers;
struct pv_http;

struct pv_http_deps {
    const struct pv_config *cfg;
    struct pv_stats *stats;
    struct pv_live *live;   /* the settings SIGHUP may change (Host, Origin lists) */
    struct pv_peers *peers; /* per-address counts and budgets (limits.h) */
    struct pv_ws *ws;       /* registered on /ws and / */
    struct pv_admin *admin; /* /healthz and /metrics */
    struct pv_api *api;     /* /api/login, /api/logout, /api/me */
    struct pv_files *files; /* /api/files, /files/ (NULL: uploads answer 503) */
};

/* Starts the context and every worker, registers the handlers, opens the
 * gate. NULL (logged, everything undone) if the port cannot be bound or
 * not every worker started. The deps must outlive the context. */
struct pv_http *pv_http_start(const struct pv_http_deps *d);

/* The port bound (useful with --port 0). */
/* CivetWeb workers started with the server: the --http-workers spare
 * ones plus PV_HTTP_PRESPAWN_EXTRA, at most all of them. The others start
 * on demand (patched CivetWeb, docs/civetweb-patch.md), one per connection
 * that finds no idle worker, and then stay: an unused --max-clients slot
 * costs no thread, no stack and no request buffer. */
#define PV_HTTP_PRESPAWN_EXTRA 64
unsigned pv_http_prespawn(const struct pv_config *cfg);

/* Returns the pages of the calling CivetWeb worker's stack below the
 * current frame (less PV_HTTP_TRIM_MARGIN) to the kernel
 * (MADV_DONTNEED). A worker's stack is 100 KiB; the handshake path
 * touches about 36 KiB of it, and a worker then sits in the WebSocket read
 * loop for the connection's life using only a few pages of that. Called by
 * the WebSocket ready handler (ws.c) and on connection close: everything
 * below those frames has returned. Nothing else points into a worker's
 * dead stack, and a signal handler runs only before or after the call. A
 * no-op on threads that are not CivetWeb workers. */
#define PV_HTTP_TRIM_MARGIN 4096
void pv_http_trim_stack(void);

int pv_http_port(const struct pv_http *h);

/* Stops the writer pool (NULL is fine) and records it, so that a CivetWeb
 * worker exiting before that is reported. */
void pv_http_stop_writers(struct pv_writers *w);

/* mg_stop() (every worker joined, every slot freed) and the library's
 * exit. NULL is fine. */
void pv_http_stop(struct pv_http *h);

#endif
