/* main.c -- palaverd: boot, wait for a signal, shut down gracefully.
 *
 * Threads: main runs the boot sequence, then waits in sigwait(2) for
 * SIGTERM/SIGINT; it is the only thread that handles signals (they are
 * blocked before any other thread exists, so every thread inherits the
 * mask: a signal delivered to a CivetWeb worker would close its WebSocket,
 * docs/civetweb.md section 7). At shutdown main takes over the queue's consumer
 * role after joining the broadcaster.
 */
#include <civetweb.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "palaver/admin.h"
#include "palaver/broadcaster.h"
#include "palaver/client.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/hosts.h"
#include "palaver/limits.h"
#include "palaver/live.h"
#include "palaver/log.h"
#include "palaver/queue.h"
#include "palaver/stats.h"
#include "palaver/store.h"
#include "palaver/writer.h"
#include "palaver/ws.h"

/* CivetWeb workers that have started (init_thread callback). mg_start2()
 * succeeds even when it could start only some of them (docs/civetweb.md
 * section 1), so main counts them and refuses to run short. */
static struct {
    pthread_mutex_t mu; /* guards started */
    pthread_cond_t cv;
    unsigned started;
} workers = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

#define PAGE_HEADERS                                                                               \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "             \
    "form-action 'none'; frame-ancestors 'none'"

/* Eviction (client.h): an empty handler, installed without SA_RESTART,
 * so that the signal makes a worker's poll(2) fail with EINTR. */
static void on_evict_signal(int sig)
{
    (void)sig;
}

static void *on_init_thread(const struct mg_context *ctx, int thread_type)
{
    (void)ctx;
    if (thread_type == 1) {
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

/* Every HTTP error CivetWeb answers (a handshake that timed out or was
 * malformed, a missing file) gets a log line with the peer; CivetWeb then
 * sends its default error page. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    int level = status == 404 ? PV_LOG_DEBUG : PV_LOG_NOTICE;
    if (pv_log_enabled(level))
        pv_log(level, "HTTP %d to %s:%d: %s", status, ri ? ri->remote_addr : "?",
               ri ? ri->remote_port : 0, msg && *msg ? msg : "(no detail)");
    return 1;
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
    /* False until the WebSocket and page handlers are registered: the
     * port accepts (and workers serve) from inside mg_start2(), before
     * main can register them, and a request in that window would get 404.
     * main stores true (release) after registering; workers load it
     * (acquire) for every request. */
    atomic_bool open;
} gate;

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
    if (!ri || pv_peers_hold(gate.peers, ri->remote_addr, gate.max_conns_per_ip))
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
    if (ri)
        pv_peers_unhold(gate.peers, ri->remote_addr);
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
        const struct mg_request_info *ri = mg_get_request_info(conn);
        pv_info("HTTP 503 to %s:%d: palaverd is still starting (handlers not registered yet)",
                ri->remote_addr, ri->remote_port);
    }
    return 503;
}

static int on_begin_request(struct mg_connection *conn)
{
    if (!atomic_load_explicit(&gate.open, memory_order_acquire))
        return starting_up(conn);
    const char *host = mg_get_header(conn, "Host");
    const char *hosts = atomic_load_explicit(&gate.live->hosts, memory_order_acquire);
    const char *origins = atomic_load_explicit(&gate.live->origins, memory_order_acquire);
    if (pv_hosts_allow(gate.hosts, host, hosts, origins))
        return 0;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char h[96];
    static const char body[] =
        "421 Misdirected Request: palaverd does not answer to this host name.\n"
        "(A page that points its own name at this server -- DNS rebinding -- is refused.\n"
        "The operator can add the name with --allowed-hosts.)\n";
    pv_log_printable(host, h, sizeof(h));
    pv_stat_add(&gate.stats->refused_host, 1);
    static struct pv_log_limit lim = PV_LOG_LIMIT("requests refused for their Host");
    if (pv_log_limited(&lim, PV_LOG_NOTICE, 5))
        pv_notice("refused request from %s:%d: Host \"%s\" is not one of ours (DNS rebinding "
                  "protection; see --allowed-hosts); answered 421 (%llu so far)",
                  ri->remote_addr, ri->remote_port, h,
                  (unsigned long long)pv_stat_get(&gate.stats->refused_host));
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

static void stop_writers(struct pv_writers *w)
{
    pv_writers_stop(w);
    pthread_mutex_lock(&teardown.mu);
    teardown.writers_stopped = true;
    pthread_mutex_unlock(&teardown.mu);
}

/* Each WebSocket holds a file descriptor; make sure the limit allows
 * max_clients of them, raising the soft limit up to the hard one. */
static int check_nofile(unsigned needed)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return 0;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
        rlim_t want = needed;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
            want = rl.rlim_max;
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
        pv_err("open-file limit is %llu but %u CivetWeb workers need %u; raise LimitNOFILE= or "
               "ulimit -n, or lower --max-clients",
               (unsigned long long)rl.rlim_cur, needed - 64, needed);
        return -1;
    }
    return 0;
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

/* SIGHUP: read every source again; apply what can change live, name what
 * needs a restart, keep everything if the new configuration is bad. */
static void reload(struct pv_config *cfg, struct pv_live *live, int argc, char **argv)
{
    struct pv_config next;
    enum pv_config_action action;
    char err[512], other[512];
    sd_notify(0, "RELOADING=1");
    if (pv_config_load(&next, argc, argv, &action, err, sizeof(err)) != 0) {
        pv_err("reload refused, keeping the running configuration: %s", err);
        sd_notify(0, "READY=1");
        return;
    }
    if (!pv_config_live_equal(cfg, &next, other, sizeof(other)))
        pv_warn("reload: %s changed but needs a restart; keeping the running values", other);
    pv_live_update(live, cfg, &next);
    /* Only the live settings are taken over: everything else keeps
     * running as it started. */
    pv_config_take_live(cfg, &next);
    pv_info("reloaded %s", cfg->config_path);
    sd_notify(0, "READY=1");
}

/* SIGUSR1: one line of counters, and what the allocator holds. */
static void log_stats(struct pv_stats *s)
{
    struct mallinfo2 mi = mallinfo2();
    pv_info("stats: %llu online, %llu connections, %llu messages, %llu deliveries, %llu "
            "protocol closes, %llu slow consumers, %llu idle closes, %llu floods, %llu evictions; "
            "heap %zu KiB in use, %zu KiB free in the allocator",
            (unsigned long long)pv_stat_get(&s->clients),
            (unsigned long long)pv_stat_get(&s->connections_total),
            (unsigned long long)pv_stat_get(&s->messages_in),
            (unsigned long long)pv_stat_get(&s->deliveries),
            (unsigned long long)pv_stat_get(&s->protocol_closes),
            (unsigned long long)pv_stat_get(&s->slow_consumers),
            (unsigned long long)pv_stat_get(&s->idle_closes),
            (unsigned long long)pv_stat_get(&s->rate_closes),
            (unsigned long long)pv_stat_get(&s->evictions), mi.uordblks / 1024, mi.fordblks / 1024);
}

static void shutdown_broker(struct pv_ws *ws, struct pv_queue *q, struct pv_broadcaster *b,
                            struct pv_writers *w, struct mg_context *ctx, unsigned drain_ms)
{
    /* 1. No new WebSockets; every client gets close 1001 after what is
     *    already queued for it; then the broadcaster leaves its loop. */
    atomic_store(&ws->stopping, true);
    pv_queue_close_msgs(q);
    pv_queue_push_ctl(q, pv_event_new(PV_EV_SHUTDOWN, NULL, NULL, 0));
    pv_queue_push_ctl(q, pv_event_new(PV_EV_STOP, NULL, NULL, 0));
    pv_broadcaster_join(b);
    /* 2. Let the writers flush the close frames, within the bound. */
    if (!pv_writers_drain(w, (int)drain_ms))
        pv_warn("drain timeout (%u ms): some clients did not take their close frame", drain_ms);
    /* 3. Writers stop before mg_stop(), which frees the connection slots. */
    stop_writers(w);
    mg_stop(ctx);
}

int main(int argc, char **argv)
{
    struct pv_config cfg;
    struct pv_stats stats = {0};
    struct pv_ws ws = {0};
    struct pv_queue *queue = NULL;
    struct pv_writers *writers = NULL;
    struct pv_broadcaster *bc = NULL;
    struct mg_context *ctx = NULL;
    struct pv_live live = {0};
    struct pv_store *store = NULL;
    static char store_error[512];
    sigset_t sigs;
    int sig;
    char num_threads[16], port[96], io_timeout[16], head_timeout[16], max_frame[24];
    char err_text[256] = "";

    enum pv_config_action action;
    char cerr[512];
    if (pv_config_load(&cfg, argc, argv, &action, cerr, sizeof(cerr)) != 0) {
        fprintf(stderr, "palaverd: %s\n", cerr);
        return 2;
    }
    if (action == PV_CONFIG_DONE)
        return 0;
    if (action == PV_CONFIG_CHECK) {
        printf("palaverd: configuration OK (file %s%s): port %u, max-clients %u, %u CivetWeb "
               "workers, log-level %s\n",
               cfg.config_path, access(cfg.config_path, R_OK) == 0 ? "" : ", not present", cfg.port,
               cfg.max_clients, pv_config_num_threads(&cfg), pv_log_level_name(cfg.log_level));
        return 0;
    }
    pv_log_set_level(cfg.log_level);

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    sigset_t blocked = sigs;
    sigaddset(&blocked, PV_EVICT_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    struct sigaction sa = {.sa_handler = on_evict_signal}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(PV_EVICT_SIGNAL, &sa, NULL);

    unsigned threads = pv_config_num_threads(&cfg);
    if (check_nofile(threads + 64) != 0)
        return 1;

    queue = pv_queue_new(cfg.queue_size);
    if (!queue)
        return 1;
    pv_queue_set_byte_capacity(queue, cfg.queue_bytes);
    writers = pv_writers_start(cfg.writers, cfg.writers_max, &stats);
    if (!writers)
        goto fail;
    ws.cfg = &cfg;
    ws.queue = queue;
    ws.stats = &stats;
    ws.peers = pv_peers_new(cfg.max_clients);
    pv_live_init(&live, &cfg);
    ws.live = &live;
    gate.hosts = pv_hosts_new();
    gate.live = &live;
    gate.stats = &stats;
    gate.peers = ws.peers;
    gate.max_conns_per_ip = cfg.max_conns_per_ip ? cfg.max_conns_per_ip
                            : cfg.max_per_ip     ? cfg.max_per_ip + 16
                                                 : 0;
    atomic_init(&ws.admitted, 0);
    atomic_init(&ws.stopping, false);
    if (cfg.data_dir[0]) {
        char serr[512];
        struct pv_store_options so = {.keep = cfg.history_keep,
                                      .max_pages = cfg.data_max_pages,
                                      .max_age_s = cfg.history_max_age_s};
        store = pv_store_open(cfg.data_dir, &so, serr, sizeof(serr));
        if (!store) {
            /* Live chat matters more than history: relay, and say so. */
            snprintf(store_error, sizeof(store_error), "%s", serr);
            pv_err("history store unavailable, relaying without storing: %s", serr);
        } else if (pv_store_failure(store)) {
            pv_err("history store failed, messages are relayed but not stored: %s",
                   pv_store_failure(store));
        }
    }
    bc = pv_broadcaster_start(
        &(struct pv_broadcaster_deps){.cfg = &cfg,
                                      .queue = queue,
                                      .writers = writers,
                                      .stats = &stats,
                                      .admitted = &ws.admitted,
                                      .store = store,
                                      .peers = ws.peers,
                                      .store_wanted = cfg.data_dir[0] != '\0'});
    if (!bc)
        goto fail;

    snprintf(num_threads, sizeof(num_threads), "%u", threads);
    if (cfg.listen_addr[0])
        snprintf(port, sizeof(port), "%s:%u", cfg.listen_addr, cfg.port);
    else
        snprintf(port, sizeof(port), "%u", cfg.port);
    snprintf(io_timeout, sizeof(io_timeout), "%u", cfg.io_timeout_ms);
    snprintf(head_timeout, sizeof(head_timeout), "%u", cfg.head_timeout_ms);
    snprintf(max_frame, sizeof(max_frame), "%zu", cfg.max_message);
    const char *options[] = {
        "listening_ports",
        port,
        "document_root",
        cfg.htdocs,
        "num_threads",
        num_threads,
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
        "**.pem$|**.key$|**.bak$|**~$|**/.*",
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
        cfg.access_control_list[0] ? "access_control_list" : NULL,
        cfg.access_control_list,
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

    mg_init_library(0);
    ctx = mg_start2(&(struct mg_init_data){&callbacks, NULL, options}, &err);
    if (!ctx) {
        pv_err("cannot start the HTTP server on port %s: %s", port,
               err_text[0] ? err_text : "unknown error");
        goto fail;
    }
    unsigned started = wait_workers(threads, 10);
    if (started < threads) {
        pv_err("only %u of %u CivetWeb worker threads started (check ulimit -u, "
               "TasksMax=, vm.max_map_count)",
               started, threads);
        goto fail;
    }
    pv_ws_register(ctx, &ws);
    struct pv_admin admin = {
        .cfg = &cfg, .stats = &stats, .queue = queue, .store = store, .store_error = store_error};
    pv_admin_register(ctx, &admin);
    atomic_store_explicit(&gate.open, true, memory_order_release);

    struct mg_server_port ports[4];
    int nports = mg_get_server_ports(ctx, 4, ports);
    int bound = nports > 0 ? ports[0].port : (int)cfg.port;
    pv_info("palaverd %s listening on %s:%d (WebSocket /ws and /), htdocs %s, max %u clients, "
            "%u CivetWeb workers, %u writers",
            PALAVER_VERSION, cfg.listen_addr[0] ? cfg.listen_addr : "0.0.0.0", bound, cfg.htdocs,
            cfg.max_clients, threads, cfg.writers);
    sd_notifyf(0, "READY=1\nSTATUS=Listening on port %d\nX_PALAVER_PORT=%d", bound, bound);

    /* Main's loop: signals, and once a second the systemd status line and
     * the watchdog. WATCHDOG=1 goes out only while the broadcaster loop
     * turns (its heartbeat), so a stuck broadcaster gets the service
     * restarted (WatchdogSec=). */
    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    uint64_t last_wd = 0, last_status = 0, last_msgs = pv_stat_get(&stats.messages_in);
    for (;;) {
        /* A tick of a second, or a quarter of the watchdog interval. */
        uint64_t tick_ns = watchdog && wd_usec * 250u < 1000000000u ? wd_usec * 250u : 1000000000u;
        struct timespec tick = {(time_t)(tick_ns / 1000000000u), (long)(tick_ns % 1000000000u)};
        sig = sigtimedwait(&sigs, NULL, &tick);
        uint64_t now = pv_mono_ns(), age;
        bool alive = pv_admin_alive(&stats, &age);
        if (watchdog && alive && now - last_wd >= wd_usec * 1000u / 2) {
            sd_notify(0, "WATCHDOG=1");
            last_wd = now;
        } else if (watchdog && !alive) {
            pv_err("broadcaster loop stuck for %.1f s: withholding the watchdog ping",
                   (double)age / 1e9);
        }
        if (now - last_status >= 5000000000ull || last_status == 0) {
            uint64_t msgs = pv_stat_get(&stats.messages_in);
            double secs = last_status ? (double)(now - last_status) / 1e9 : 1.0;
            sd_notifyf(0, "STATUS=%llu clients, %.1f messages/s%s",
                       (unsigned long long)pv_stat_get(&stats.clients),
                       (double)(msgs - last_msgs) / secs, alive ? "" : ", broadcaster stuck");
            last_msgs = msgs;
            last_status = now;
        }
        if (sig < 0)
            continue; /* the tick */
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGUSR1) {
            log_stats(&stats);
            continue;
        }
        if (sig == SIGHUP) {
            reload(&cfg, &live, argc, argv);
            continue;
        }
        pv_info("signal %d (%s) ignored", sig, strsignal(sig));
    }

    pv_info("%s: shutting down (drain up to %u ms)", strsignal(sig), cfg.drain_timeout_ms);
    sd_notify(0, "STOPPING=1");
    shutdown_broker(&ws, queue, bc, writers, ctx, cfg.drain_timeout_ms);
    pv_store_close(store); /* commits what is still queued */
    mg_exit_library();
    pv_queue_free(queue); /* LEAVE events queued by mg_stop() release clients */
    pv_peers_free(ws.peers);
    pv_live_destroy(&live);
    pv_hosts_free(gate.hosts);
    pv_info("stopped: %llu connections, %llu messages, %llu deliveries, %llu slow consumers",
            (unsigned long long)pv_stat_get(&stats.connections_total),
            (unsigned long long)pv_stat_get(&stats.messages_in),
            (unsigned long long)pv_stat_get(&stats.deliveries),
            (unsigned long long)pv_stat_get(&stats.slow_consumers));
    return 0;

fail:
    if (bc) {
        pv_queue_push_ctl(queue, pv_event_new(PV_EV_STOP, NULL, NULL, 0));
        pv_broadcaster_join(bc);
    }
    stop_writers(writers);
    if (ctx)
        mg_stop(ctx);
    pv_queue_free(queue);
    pv_peers_free(ws.peers);
    pv_live_destroy(&live);
    pv_hosts_free(gate.hosts);
    pv_store_close(store);
    return 1;
}
