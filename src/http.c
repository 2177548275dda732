/* http.c -- palaverd's CivetWeb context: the options it runs with, the
 * callbacks every connection and request passes through, the handlers,
 * and start and stop in the order the connection slots require.
 *
 * Threads: pv_http_start(), pv_http_stop_writers() and pv_http_stop() run
 * on main. The callbacks run on CivetWeb's threads: init_connection,
 * begin_request, connection_close and http_error on the worker serving
 * the connection, init_thread and exit_thread on each CivetWeb thread,
 * log_message on any of them. What they share is below, each with its
 * guard: `gate` is written by main before mg_start2() and only read
 * afterwards (its `open` flag is the one atomic, release/acquire); the
 * worker count and the teardown flag each have a mutex. One context per
 * process, so that state is file-scope. */
#include "palaver/http.h"

#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "palaver/admin.h"
#include "palaver/api.h"
#include "palaver/files.h"
#include "palaver/client.h"
#include "palaver/config.h"
#include "palaver/hosts.h"
#include "palaver/limits.h"
#include "palaver/live.h"
#include "palaver/log.h"
#include "palaver/peer.h"
#include "palaver/stats.h"
#include "palaver/writer.h"
#include "palaver/ws.h"
#include "palaver/xalloc.h"

struct pv_http {
    struct mg_context *ctx;
    int port; /* the port bound (the first listening port) */
};

/* CivetWeb workers that have started (init_thread callback). mg_start2()
 * succeeds even when it could start only some of them (docs/civetweb.md
 * section 1), so main counts them and refuses to run short. */
static struct {
    pthread_mutex_t mu; /* guards started */
    pthread_cond_t cv;
    unsigned started;
} workers = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

#define PV_HTTP_REQUEST_BUFFER "8192"

#define PAGE_HEADERS                                                                               \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; media-src 'self'; connect-src 'self'; manifest-src 'self'; "            \
    "base-uri 'none'; "                                                                            \
    "form-action 'none'; frame-ancestors 'none'"

/* The lowest address of this worker's stack (init_thread), for
 * pv_http_trim_stack(). Thread-local: each worker reads only its own. */
static _Thread_local char *stack_lo;

static void note_stack(void)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0)
        stack_lo = addr; /* above the guard page */
    pthread_attr_destroy(&attr);
}

void pv_http_trim_stack(void)
{
    long pagesize = sysconf(_SC_PAGESIZE);
    char *sp = __builtin_frame_address(0);
    if (!stack_lo || pagesize <= 0 || (uintptr_t)sp < PV_HTTP_TRIM_MARGIN)
        return;
    uintptr_t page = (uintptr_t)pagesize;
    /* Whole pages from the stack's lowest one up to the margin below this
     * frame (pointer arithmetic: rounded by offsets, never cast back). */
    char *lo = stack_lo + (page - (uintptr_t)stack_lo % page) % page;
    char *hi = sp - PV_HTTP_TRIM_MARGIN;
    hi -= (uintptr_t)hi % page;
    if (hi > lo)
        madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
}

static void *on_init_thread(const struct mg_context *ctx, int thread_type)
{
    (void)ctx;
    if (thread_type == 1) {
        note_stack();
        /* Workers alone take the eviction signal (blocked everywhere else). */
        sigset_t evict;
        sigemptyset(&evict);
        sigaddset(&evict, PV_EVICT_SIGNAL);
        pthread_sigmask(SIG_UNBLOCK, &evict, NULL);
        pthread_mutex_lock(&workers.mu);
        workers.started++;
        pthread_cond_broadcast(&workers.cv);
        pthread_mutex_unlock(&workers.mu);
    }
    return NULL;
}


/* What every request is checked against before CivetWeb handles it
 * (begin_request runs on the worker for every request: files, WebSocket
 * handshakes, /healthz, /metrics). Set before mg_start2(), read-only
 * afterwards; hosts has its own lock (hosts.h). */
static struct {
    struct pv_hosts *hosts;
    struct pv_live *live;
    struct pv_stats *stats;
    struct pv_peers *peers;
    unsigned max_conns_per_ip;
    const struct pv_cidrs *trusted; /* --trusted-proxies (proxy.h) */
    /* --access-control-list when trusted proxies are set: then palaverd
     * applies it to the forwarded client itself (CivetWeb's would see only
     * the proxy); "" otherwise (CivetWeb applies it at accept). */
    const char *acl;
    char htdocs[4096]; /* realpath of --htdocs: files are served from inside it only */
    /* False until the WebSocket and page handlers are registered: the
     * port accepts (and workers serve) from inside mg_start2(), before
     * main can register them, and a request in that window would get 404.
     * main stores true (release) after registering; workers load it
     * (acquire) for every request. */
    atomic_bool open;
} gate;

/* Every HTTP error CivetWeb answers (a handshake that timed out or was
 * malformed, a missing file) gets a log line with the peer; CivetWeb then
 * sends its default error page. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
    int level = status == 404 ? PV_LOG_DEBUG : PV_LOG_NOTICE;
    if (pv_log_enabled(level)) {
        char who[128];
        pv_request_peer_text(conn, gate.trusted, who, sizeof(who));
        pv_log(level, "HTTP %d to %s: %s", status, who, msg && *msg ? msg : "(no detail)");
    }
    return 1;
}

/* Every accepted TCP connection, on the worker that took it, before any
 * of its request is read (CivetWeb's init_connection, patched so that a
 * non-zero return closes the connection). An address holding
 * --max-conns-per-ip workers already is refused here: idle connections
 * (slowloris) cannot take every worker. connection_close runs for every
 * connection init_connection saw, refused ones included. */
static int on_init_connection(const struct mg_connection *conn, void **conn_data)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    (void)conn_data;
    /* A trusted proxy carries many clients on its connections: their
     * addresses are known only from each request's headers, and the
     * terminator bounds idle connections itself (docs/tls.md). */
    if (!ri || pv_cidrs_match(gate.trusted, ri->remote_addr) ||
        pv_peers_hold(gate.peers, ri->remote_addr, gate.max_conns_per_ip))
        return 0;
    static struct pv_log_limit lim = PV_LOG_LIMIT("connections refused over --max-conns-per-ip");
    pv_stat_add(&gate.stats->refused_conns, 1);
    if (pv_log_limited(&lim, PV_LOG_WARNING, 5))
        pv_warn("refused connection from %s:%d: %u connections from that address hold "
                "workers already (--max-conns-per-ip); closed at accept",
                ri->remote_addr, ri->remote_port, gate.max_conns_per_ip);
    return 1;
}

static void on_connection_close(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri && !pv_cidrs_match(gate.trusted, ri->remote_addr))
        pv_peers_unhold(gate.peers, ri->remote_addr);
    /* The worker goes back to waiting for a connection: what its stack
     * touched serving this one is dead. */
    pv_http_trim_stack();
}

/* A request that came before the handlers were registered. */
static int starting_up(struct mg_connection *conn)
{
    static const char body[] = "503 Service Unavailable: palaverd is starting, try again in a "
                               "second.\n";
    mg_printf(conn,
              "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; "
              "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
              sizeof(body) - 1, body);
    static struct pv_log_limit lim = PV_LOG_LIMIT("requests answered 503 while starting");
    if (pv_log_limited(&lim, PV_LOG_INFO, 5)) {
        char who[128];
        pv_request_peer_text(conn, gate.trusted, who, sizeof(who));
        pv_info("HTTP 503 to %s: palaverd is still starting (handlers not registered yet)", who);
    }
    return 503;
}

/* A page request whose file is not a plain file inside --htdocs: a
 * symbolic link (or a linked folder) that leads outside it, or something
 * that is not a regular file or folder (a FIFO, a device). CivetWeb would
 * follow the link and serve its target. Answered 404, like a hidden file,
 * so nothing says what is there. */
static bool outside_htdocs(const struct mg_connection *conn, const struct mg_request_info *ri)
{
    if (!ri->local_uri || !gate.htdocs[0] || mg_get_header(conn, "Upgrade"))
        return false; /* handshakes and the admin paths are not files */
    if (strcmp(ri->local_uri, "/healthz") == 0 || strcmp(ri->local_uri, "/metrics") == 0)
        return false;
    char path[8192], real[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s%s", gate.htdocs, ri->local_uri) >= sizeof(path))
        return true; /* longer than any file of ours: refused, not checked half */
    if (!realpath(path, real))
        return false; /* no such file: CivetWeb answers 404 itself */
    size_t n = strlen(gate.htdocs);
    struct stat st;
    bool inside = strncmp(real, gate.htdocs, n) == 0 && (real[n] == '\0' || real[n] == '/');
    if (!inside || stat(real, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
        return true;
    if (!S_ISDIR(st.st_mode))
        return false;
    /* A folder is served as its index.html: that file must stay inside too. */
    char index[PATH_MAX + 16], ireal[PATH_MAX];
    snprintf(index, sizeof(index), "%s/index.html", real);
    if (!realpath(index, ireal))
        return false;
    return strncmp(ireal, gate.htdocs, n) != 0 || ireal[n] != '/';
}

static int not_found(struct mg_connection *conn, const struct mg_request_info *ri)
{
    static const char body[] = "404 Not Found\n";
    char u[128];
    pv_log_printable(ri->local_uri, u, sizeof(u));
    static struct pv_log_limit lim = PV_LOG_LIMIT("requests for files outside htdocs");
    if (pv_log_limited(&lim, PV_LOG_NOTICE, 5)) {
        char who[128];
        pv_request_peer_text(conn, gate.trusted, who, sizeof(who));
        pv_notice("refused request from %s: \"%s\" leads outside --htdocs (a symbolic link) or "
                  "is not a plain file; answered 404",
                  who, u);
    }
    mg_printf(conn,
              "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
              sizeof(body) - 1, body);
    return 404;
}

/* A short plain-text answer that closes the connection. */
static int plain(struct mg_connection *conn, int status, const char *reason, const char *body)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
              status, reason, strlen(body), body);
    return status;
}

/* The checks on who sent the request, when trusted proxies are set
 * (proxy.h): a forwarded address that is not one (400), the ACL on the
 * client (403), /metrics asked for through the proxy (403: it is for
 * scrapers on the machine or the LAN that talk to palaverd's own port,
 * never for the world the terminator faces). 0 to go on. */
static int proxy_checks(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct pv_peer p;
    static struct pv_log_limit lim = PV_LOG_LIMIT("requests refused by the proxy checks");
    if (pv_request_peer(conn, gate.trusted, &p) != 0) {
        char x[96];
        pv_log_printable(mg_get_header(conn, "X-Forwarded-For"), x, sizeof(x));
        if (pv_log_limited(&lim, PV_LOG_WARNING, 5))
            pv_warn("refused request from trusted proxy %s:%d: X-Forwarded-For \"%s\" does not "
                    "end in an address; answered 400",
                    ri->remote_addr, ri->remote_port, x);
        return plain(conn, 400, "Bad Request",
                     "400 Bad Request: the proxy forwarded a client address that is not one.\n");
    }
    char who[128];
    pv_peer_text(conn, &p, who, sizeof(who));
    int acl = gate.acl[0] ? pv_acl_check(gate.acl, p.addr) : 1;
    if (acl != 1) {
        if (pv_log_limited(&lim, PV_LOG_NOTICE, 5))
            pv_notice("refused request from %s: the address is not allowed "
                      "(--access-control-list); answered 403",
                      who);
        return plain(conn, 403, "Forbidden", "403 Forbidden: this address may not use palaverd.\n");
    }
    if (p.forwarded && ri->local_uri && strcmp(ri->local_uri, "/metrics") == 0) {
        if (pv_log_limited(&lim, PV_LOG_NOTICE, 5))
            pv_notice("refused /metrics to %s: metrics are not served through the proxy (scrape "
                      "palaverd's own port); answered 403",
                      who);
        return plain(conn, 403, "Forbidden",
                     "403 Forbidden: /metrics is served on palaverd's own port only.\n");
    }
    return 0;
}

static int on_begin_request(struct mg_connection *conn)
{
    if (!atomic_load_explicit(&gate.open, memory_order_acquire))
        return starting_up(conn);
    int refused = gate.trusted->n ? proxy_checks(conn) : 0;
    if (refused)
        return refused;
    const char *host = mg_get_header(conn, "Host");
    const char *hosts = atomic_load_explicit(&gate.live->hosts, memory_order_acquire);
    const char *origins = atomic_load_explicit(&gate.live->origins, memory_order_acquire);
    if (pv_hosts_allow(gate.hosts, host, hosts, origins)) {
        const struct mg_request_info *ri = mg_get_request_info(conn);
        return outside_htdocs(conn, ri) ? not_found(conn, ri) : 0;
    }
    char h[96];
    static const char body[] =
        "421 Misdirected Request: palaverd does not answer to this host name.\n"
        "(A page that points its own name at this server -- DNS rebinding -- is refused.\n"
        "The operator can add the name with --allowed-hosts.)\n";
    pv_log_printable(host, h, sizeof(h));
    pv_stat_add(&gate.stats->refused_host, 1);
    static struct pv_log_limit lim = PV_LOG_LIMIT("requests refused for their Host");
    if (pv_log_limited(&lim, PV_LOG_NOTICE, 5)) {
        char who[128];
        pv_request_peer_text(conn, gate.trusted, who, sizeof(who));
        pv_notice("refused request from %s: Host \"%s\" is not one of ours (DNS rebinding "
                  "protection; see --allowed-hosts); answered 421 (%llu so far)",
                  who, h, (unsigned long long)pv_stat_get(&gate.stats->refused_host));
    }
    mg_printf(conn,
              "HTTP/1.1 421 Misdirected Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
              sizeof(body) - 1, body);
    return 421;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    pv_warn("civetweb: %s", message);
    return 1;
}

/* Teardown order: every writer thread is joined before mg_stop(), which
 * makes each CivetWeb worker exit and destroy its connection mutex (the
 * mutex the writers lock). CivetWeb signals its workers through a flag
 * ThreadSanitizer cannot see, so the exit_thread callback (which runs just
 * before that destroy) takes this mutex: the ordering becomes a real
 * happens-before, and a worker exiting while writers run is logged. */
static struct {
    pthread_mutex_t mu; /* guards writers_stopped */
    bool writers_stopped;
} teardown = {PTHREAD_MUTEX_INITIALIZER, false};

static void on_exit_thread(const struct mg_context *ctx, int thread_type, void *user_ptr)
{
    bool ok;
    (void)ctx;
    (void)user_ptr;
    if (thread_type != 1)
        return;
    pthread_mutex_lock(&teardown.mu);
    ok = teardown.writers_stopped;
    pthread_mutex_unlock(&teardown.mu);
    if (!ok)
        pv_err("a CivetWeb worker exited while writer threads still run");
}

/* Waits until `want` workers have started, or timeout_s passes; returns
 * how many did. */
static unsigned wait_workers(unsigned want, int timeout_s)
{
    struct timespec deadline;
    unsigned n;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_s;
    pthread_mutex_lock(&workers.mu);
    while (workers.started < want &&
           pthread_cond_timedwait(&workers.cv, &workers.mu, &deadline) != ETIMEDOUT)
        ;
    n = workers.started;
    pthread_mutex_unlock(&workers.mu);
    return n;
}

void pv_http_stop_writers(struct pv_writers *w)
{
    pv_writers_stop(w);
    pthread_mutex_lock(&teardown.mu);
    teardown.writers_stopped = true;
    pthread_mutex_unlock(&teardown.mu);
}

struct pv_http *pv_http_start(const struct pv_http_deps *d)
{
    const struct pv_config *cfg = d->cfg;
    unsigned threads = pv_config_num_threads(cfg);
    unsigned prespawn = pv_http_prespawn(cfg);
    char num_threads[16], prespawn_threads[16], port[96], io_timeout[16], head_timeout[16],
        max_frame[24];
    char err_text[256] = "";

    gate.hosts = pv_hosts_new();
    if (!realpath(cfg->htdocs, gate.htdocs))
        gate.htdocs[0] = '\0'; /* CivetWeb reports a missing document root itself */
    gate.live = d->live;
    gate.stats = d->stats;
    gate.peers = d->peers;
    gate.trusted = &cfg->trusted;
    gate.acl = cfg->trusted.n ? cfg->access_control_list : "";
    gate.max_conns_per_ip = cfg->max_conns_per_ip ? cfg->max_conns_per_ip
                            : cfg->max_per_ip     ? cfg->max_per_ip + 16
                                                  : 0;
    snprintf(num_threads, sizeof(num_threads), "%u", threads);
    snprintf(prespawn_threads, sizeof(prespawn_threads), "%u", prespawn);
    if (cfg->listen_addr[0])
        snprintf(port, sizeof(port), "%s:%u", cfg->listen_addr, cfg->port);
    else
        snprintf(port, sizeof(port), "%u", cfg->port);
    snprintf(io_timeout, sizeof(io_timeout), "%u", cfg->io_timeout_ms);
    snprintf(head_timeout, sizeof(head_timeout), "%u", cfg->head_timeout_ms);
    snprintf(max_frame, sizeof(max_frame), "%zu", cfg->max_message);
    const char *options[] = {
        "listening_ports",
        port,
        "document_root",
        cfg->htdocs,
        "num_threads",
        num_threads,
        /* Patched in: only these start with the server; the master thread
         * starts the others when a connection finds no idle worker, up to
         * num_threads, and they stay. An unused slot costs no thread. */
        "prespawn_threads",
        prespawn_threads,
        /* Each worker's request buffer (malloc'd once per worker, holds
         * the request head, then WebSocket frames as they are read):
         * 8 KiB leaves room for any browser's upgrade head with cookies,
         * and costs a connected client two pages where 1.15's 16 KiB
         * default costs three or four. A longer head gets 431. */
        "max_request_size",
        PV_HTTP_REQUEST_BUFFER,
        "connection_queue",
        "256",
        "listen_backlog",
        "1024",
        "tcp_nodelay",
        "1", /* the exact string "1": "yes" is ignored */
        "request_timeout_ms",
        io_timeout,
        /* Patched in (cmake/PalaverCivetWeb.cmake): the request head has
         * its own bound, and a frame longer than a whole message may be is
         * refused (1009) at its header, before CivetWeb allocates it. */
        "request_head_timeout_ms",
        head_timeout,
        "websocket_max_frame_size",
        max_frame,
        /* palaver answers pings and keeps clients alive itself (ws.c,
         * broadcaster/sweep.c): CivetWeb's own ping/pong would answer invalid
         * pings (oversized, fragmented, RSV bits) before palaver could
         * refuse them. With it off, this is only the read loop's poll
         * interval, which bounds how soon mg_stop() is noticed. */
        "websocket_timeout_ms",
        "1000",
        "enable_websocket_ping_pong",
        "no",
        "enable_directory_listing",
        "no",
        "cgi_pattern",
        "",
        "ssi_pattern",
        "",
        "hide_files_patterns",
        "**.pem$|**.key$|**.bak$|**~$|**/.*|**.orig$|**.old$|**.rej$|**.swp$|**.tmp$",
        "access_control_allow_origin",
        "",
        /* One value, several header lines, on every response. The page
         * loads nothing but its own files (no inline script or style),
         * talks only to its own origin (CSP 3: 'self' covers ws://), and
         * may not be framed. */
        "additional_header",
        PAGE_HEADERS,
        /* Last: when no ACL is set the list ends here (CivetWeb reads an
         * empty ACL as "deny everyone"). */
        cfg->access_control_list[0] && !cfg->trusted.n ? "access_control_list" : NULL,
        cfg->access_control_list,
        NULL,
    };
    /* No log_access callback: CivetWeb 1.15 formats access lines with
     * localtime(3), which is not thread-safe (ThreadSanitizer reports it). */
    struct mg_callbacks callbacks = {
        .begin_request = on_begin_request,
        .init_connection = on_init_connection,
        .connection_close = on_connection_close,
        .log_message = on_log_message,
        .http_error = on_http_error,
        .init_thread = on_init_thread,
        .exit_thread = on_exit_thread,
    };
    struct mg_error_data err = {.text = err_text, .text_buffer_size = sizeof(err_text)};
    struct pv_http *h = pv_xcalloc(1, sizeof(*h));

    mg_init_library(0);
    h->ctx = mg_start2(&(struct mg_init_data){&callbacks, NULL, options}, &err);
    if (!h->ctx) {
        pv_err("cannot start the HTTP server on port %s: %s", port,
               err_text[0] ? err_text : "unknown error");
        pv_http_stop(h);
        return NULL;
    }
    unsigned started = wait_workers(prespawn, 10);
    if (started < prespawn) {
        pv_err("only %u of %u CivetWeb worker threads started (check ulimit -u, "
               "TasksMax=, vm.max_map_count)",
               started, prespawn);
        /* Nothing has written to a connection yet: no writer to wait for. */
        pthread_mutex_lock(&teardown.mu);
        teardown.writers_stopped = true;
        pthread_mutex_unlock(&teardown.mu);
        pv_http_stop(h);
        return NULL;
    }
    /* Handlers, then the gate opens: until then every request got 503
     * (docs/civetweb.md section 7). */
    pv_ws_register(h->ctx, d->ws);
    pv_admin_register(h->ctx, d->admin);
    if (d->api)
        pv_api_register(h->ctx, d->api);
    pv_files_register(h->ctx, d->files);
    atomic_store_explicit(&gate.open, true, memory_order_release);
    struct mg_server_port ports[4];
    int nports = mg_get_server_ports(h->ctx, 4, ports);
    h->port = nports > 0 ? ports[0].port : (int)cfg->port;
    return h;
}

unsigned pv_http_prespawn(const struct pv_config *cfg)
{
    unsigned threads = pv_config_num_threads(cfg);
    unsigned want = cfg->http_workers + PV_HTTP_PRESPAWN_EXTRA;
    return want < threads ? want : threads;
}

int pv_http_port(const struct pv_http *h)
{
    return h->port;
}

void pv_http_stop(struct pv_http *h)
{
    if (!h)
        return;
    if (h->ctx)
        mg_stop(h->ctx);
    mg_exit_library();
    pv_hosts_free(gate.hosts);
    gate.hosts = NULL;
    free(h);
}
