/* main.c -- palaverd's boot script: configuration, log, signals, limits,
 * queue, writers, store, broadcaster, HTTP (handlers included), READY,
 * supervision, and one teardown that undoes whatever part of that ran.
 *
 * Threads: main runs the boot, then supervises in sigtimedwait(2); it is
 * the only thread that handles signals (they are blocked before any other
 * thread exists, so every thread inherits the mask: a signal delivered to
 * a CivetWeb worker would close its WebSocket, docs/civetweb.md section
 * 7). At shutdown main takes over the queue's consumer role after joining
 * the broadcaster.
 */
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <termios.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "palaver/accounts.h"
#include "palaver/files.h"
#include "palaver/admin.h"
#include "palaver/api.h"
#include "palaver/broadcaster.h"
#include "palaver/client.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/http.h"
#include "palaver/limits.h"
#include "palaver/live.h"
#include "palaver/log.h"
#include "palaver/queue.h"
#include "palaver/stats.h"
#include "palaver/store.h"
#include "palaver/writer.h"
#include "palaver/socketio.h"
#include "palaver/ws.h"

/* Everything main starts, in boot order. Owned by main; the threads it
 * starts get pointers into it, valid until teardown() has stopped them. */
struct palaverd {
    struct pv_config cfg;
    struct pv_stats stats;
    struct pv_live live;
    struct pv_queue *queue;
    struct pv_writers *writers;
    struct pv_store *store;
    char store_error[512]; /* why there is no store, for /healthz */
    struct pv_broadcaster *bc;
    struct pv_ws ws;
    struct pv_admin admin;
    struct pv_accounts *accounts; /* NULL: memory only, or palaver.db would not open */
    struct pv_files *files;       /* NULL: no data directory (uploads answer 503) */
    struct pv_api api;
    struct pv_http *http;
};

/* Eviction (client.h): an empty handler, installed without SA_RESTART,
 * so that the signal makes a worker's poll(2) fail with EINTR. */
static void on_evict_signal(int sig)
{
    (void)sig;
}

/* Blocks the signals main handles (and the eviction signal, which only
 * CivetWeb workers unblock: http.c) before any thread exists. */
static void block_signals(sigset_t *handled)
{
    sigemptyset(handled);
    sigaddset(handled, SIGTERM);
    sigaddset(handled, SIGINT);
    sigaddset(handled, SIGHUP);
    sigaddset(handled, SIGUSR1);
    sigaddset(handled, SIGUSR2);
    sigset_t blocked = *handled;
    sigaddset(&blocked, PV_EVICT_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    struct sigaction sa = {.sa_handler = on_evict_signal}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(PV_EVICT_SIGNAL, &sa, NULL);
    /* A write past the file size limit (systemd's LimitFSIZE=, ulimit -f)
     * would kill the daemon with SIGXFSZ; ignored, the write fails EFBIG
     * and that upload alone is refused (files.c: 507). */
    signal(SIGXFSZ, SIG_IGN);
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

/* Threads besides the workers and writers (main, CivetWeb's master, the
 * broadcaster, the store's, a margin) and mappings besides the threads'. */
#define PV_OWN_THREADS 16
#define PV_OWN_MAPPINGS 1024

/* Reads the first number in a /proc or /sys file; -1 when absent, and
 * LLONG_MAX for "max" (a cgroup without a limit). */
static long long read_limit(const char *path)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strncmp(buf, "max", 3) == 0)
        return LLONG_MAX;
    char *end;
    long long v = strtoll(buf, &end, 10);
    return end == buf ? -1 : v;
}

/* The pids controller's directory of this process: cgroup v2's unified
 * hierarchy ("0::/path") or v1's pids hierarchy ("N:pids:/path"). */
static bool pids_cgroup(char *out, size_t n)
{
    char line[512];
    bool found = false;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "0::", 3) == 0)
            found = snprintf(out, n, "/sys/fs/cgroup%s", line + 3) < (int)n;
        else if (strstr(line, ":pids:"))
            found = snprintf(out, n, "/sys/fs/cgroup/pids%s", strstr(line, ":pids:") + 6) < (int)n;
    }
    fclose(f);
    return found;
}

/* CivetWeb's workers start on demand (docs/civetweb-patch.md): a thread
 * limit would bite only when the room fills up, as connections that wait
 * for a worker nobody can start. So every limit a thread counts against is
 * checked now, for all of them plus palaverd's own threads, and a start
 * that could not reach --max-clients is refused, naming the limit. */
static int check_threads(unsigned workers, unsigned writers)
{
    unsigned long long need = (unsigned long long)workers + writers + PV_OWN_THREADS;
    char dir[480];
    long long v;

    if (geteuid() != 0) { /* root is exempt from RLIMIT_NPROC */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur < need) {
            rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
            setrlimit(RLIMIT_NPROC, &rl);
            getrlimit(RLIMIT_NPROC, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
            pv_err("process limit (ulimit -u, LimitNPROC=) is %llu but %u CivetWeb workers "
                   "need %llu threads; raise it or lower --max-clients",
                   (unsigned long long)rl.rlim_cur, workers, need);
            return -1;
        }
    }
    if (pids_cgroup(dir, sizeof(dir))) {
        char path[512];
        snprintf(path, sizeof(path), "%s/pids.max", dir);
        long long max = read_limit(path);
        snprintf(path, sizeof(path), "%s/pids.current", dir);
        long long cur = read_limit(path);
        if (max >= 0 && max != LLONG_MAX && (unsigned long long)max < need + (cur > 0 ? cur : 0)) {
            pv_err("task limit (TasksMax=, cgroup pids.max) is %lld with %lld in use but %u "
                   "CivetWeb workers need %llu threads; raise TasksMax= or lower --max-clients",
                   max, cur > 0 ? cur : 0, workers, need);
            return -1;
        }
    }
    /* Each thread maps its stack and a guard page. */
    v = read_limit("/proc/sys/vm/max_map_count");
    if (v > 0 && (unsigned long long)v < 2 * need + PV_OWN_MAPPINGS) {
        pv_err("vm.max_map_count is %lld but %u CivetWeb workers need about %llu mappings; "
               "raise it (sysctl vm.max_map_count) or lower --max-clients",
               v, workers, 2 * need + PV_OWN_MAPPINGS);
        return -1;
    }
    v = read_limit("/proc/sys/kernel/threads-max");
    if (v > 0 && (unsigned long long)v < need) {
        pv_err("kernel.threads-max is %lld but %u CivetWeb workers need %llu threads; raise it "
               "or lower --max-clients",
               v, workers, need);
        return -1;
    }
    return 0;
}

/* SIGHUP: read every source again; apply what can change live, name what
 * needs a restart, keep everything if the new configuration is bad. */
static void reload(struct pv_config *cfg, struct pv_live *live, struct pv_queue *queue, int argc,
                   char **argv)
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
    bool was_members = atomic_load_explicit(&live->members_only, memory_order_relaxed);
    pv_live_update(live, cfg, &next);
    if (!was_members && atomic_load_explicit(&live->members_only, memory_order_relaxed)) {
        /* auth = members from now on: the guests still connected are
         * closed (4004), so only members read what is said next. */
        struct pv_mod_req r = {.action = "members", .by = "auth = members"};
        pv_queue_push_ctl(queue, pv_event_new(PV_EV_MOD, NULL, &r, sizeof(r)));
    }
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

/* The store is optional: live chat matters more than history, so a store
 * that cannot open means relaying without storing (and saying so). */
static void open_store(struct palaverd *p)
{
    if (!p->cfg.data_dir[0])
        return;
    char serr[512];
    struct pv_store_options so = {.keep = p->cfg.history_keep,
                                  .max_bytes = p->cfg.history_max_bytes,
                                  .sender_share = p->cfg.history_share,
                                  .protect = p->cfg.resume_limit,
                                  .max_pages = p->cfg.data_max_pages,
                                  .max_age_s = p->cfg.history_max_age_s};
    p->store = pv_store_open(p->cfg.data_dir, &so, serr, sizeof(serr));
    if (!p->store) {
        snprintf(p->store_error, sizeof(p->store_error), "%s", serr);
        pv_err("history store unavailable, relaying without storing: %s", serr);
    } else if (pv_store_failure(p->store)) {
        pv_err("history store failed, messages are relayed but not stored: %s",
               pv_store_failure(p->store));
    }
}

/* Accounts live in palaver.db too: without a data directory there are
 * none, and the API says so (503). */
static void open_accounts(struct palaverd *p)
{
    char err[512];
    if (!p->cfg.data_dir[0])
        return;
    p->accounts = pv_accounts_open(p->cfg.data_dir, err, sizeof(err));
    if (!p->accounts)
        pv_err("accounts unavailable (sign-in answers 503): %s", err);
}

/* No admin yet: the one-time setup link (accounts.h), logged once the
 * port is known. It is the bootstrap channel by design: whoever reads
 * palaverd's log (root, the journal's readers) may make the first admin. */
static void log_setup_link(struct palaverd *p, int port)
{
    char token[PV_TOKEN_CHARS + 1];
    if (!p->accounts || !pv_accounts_setup_token(p->accounts, token))
        return;
    pv_notice("setup: there is no admin account yet: open http://%s:%d/setup#%s within %d h to "
              "create it (the link works once; or run 'palaverd --create-admin NAME' with the "
              "same --data-dir, password on standard input)",
              p->cfg.listen_addr[0] ? p->cfg.listen_addr : "HOST", port, token, PV_SETUP_HOURS);
    sodium_memzero(token, sizeof(token));
}

static bool start(struct palaverd *p)
{
    const struct pv_config *cfg = &p->cfg;
    pv_live_init(&p->live, cfg);
    p->queue = pv_queue_new(cfg->queue_size);
    if (!p->queue)
        return false;
    pv_queue_set_byte_capacity(p->queue, cfg->queue_bytes);
    p->writers = pv_writers_start(cfg->writers, cfg->writers_max, &p->stats);
    if (!p->writers)
        return false;
    p->ws = (struct pv_ws){.cfg = cfg,
                           .queue = p->queue,
                           .stats = &p->stats,
                           .peers = pv_peers_new(cfg->max_clients),
                           .bans = pv_bans_new(),
                           .live = &p->live,
                           .sio = pv_socketio_new()};
    atomic_init(&p->ws.admitted, 0);
    atomic_init(&p->ws.stopping, false);
    open_store(p);
    open_accounts(p);
    p->ws.accounts = p->accounts;
    if (p->accounts && p->store) {
        char ferr[512];
        p->files = pv_files_open(cfg, p->accounts, &p->live, ferr, sizeof(ferr));
        if (!p->files)
            pv_err("shared files unavailable (uploads answer 503): %s", ferr);
    }
    p->ws.files = p->files;
    p->api = (struct pv_api){.accounts = p->accounts,
                             .live = &p->live,
                             .registration = p->cfg.registration,
                             .queue = p->queue,
                             .files = p->files,
                             .cfg = cfg};
    p->bc = pv_broadcaster_start(
        &(struct pv_broadcaster_deps){.cfg = cfg,
                                      .queue = p->queue,
                                      .writers = p->writers,
                                      .stats = &p->stats,
                                      .admitted = &p->ws.admitted,
                                      .store = p->store,
                                      .peers = p->ws.peers,
                                      .bans = p->ws.bans,
                                      .store_wanted = cfg->data_dir[0] != '\0'});
    if (!p->bc)
        return false;
    p->admin = (struct pv_admin){.cfg = cfg,
                                 .stats = &p->stats,
                                 .queue = p->queue,
                                 .store = p->store,
                                 .store_error = p->store_error};
    p->http = pv_http_start(&(struct pv_http_deps){.cfg = cfg,
                                                   .stats = &p->stats,
                                                   .live = &p->live,
                                                   .peers = p->ws.peers,
                                                   .ws = &p->ws,
                                                   .admin = &p->admin,
                                                   .api = &p->api,
                                                   .files = p->files});
    return p->http != NULL;
}

/* Signals, and once a second the systemd status line and the watchdog,
 * until SIGTERM or SIGINT (returned). WATCHDOG=1 goes out only while the
 * fanout makes progress (the broadcaster's heartbeat: it takes events, or
 * none wait -- a loop that turns while paused with events waiting does
 * not count), so a stuck or stalled broadcaster gets the service
 * restarted (WatchdogSec=). */
static int supervise(struct palaverd *p, const sigset_t *sigs, int argc, char **argv)
{
    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    uint64_t last_wd = 0, last_status = 0, last_msgs = pv_stat_get(&p->stats.messages_in);
    uint64_t last_sweep = pv_mono_ns();
    for (;;) {
        /* A tick of a second, or a quarter of the watchdog interval. */
        uint64_t tick_ns = watchdog && wd_usec * 250u < 1000000000u ? wd_usec * 250u : 1000000000u;
        struct timespec tick = {(time_t)(tick_ns / 1000000000u), (long)(tick_ns % 1000000000u)};
        int sig = sigtimedwait(sigs, NULL, &tick);
        uint64_t now = pv_mono_ns(), age;
        bool alive = pv_admin_alive(&p->stats, &age);
        if (watchdog && alive && now - last_wd >= wd_usec * 1000u / 2) {
            sd_notify(0, "WATCHDOG=1");
            last_wd = now;
        } else if (watchdog && !alive) {
            pv_err("fanout stalled for %.1f s (the broadcaster takes no events): withholding the "
                   "watchdog ping",
                   (double)age / 1e9);
        }
        if (now - last_status >= 5000000000ull || last_status == 0) {
            uint64_t msgs = pv_stat_get(&p->stats.messages_in);
            double secs = last_status ? (double)(now - last_status) / 1e9 : 1.0;
            sd_notifyf(0, "STATUS=%llu clients, %.1f messages/s%s",
                       (unsigned long long)pv_stat_get(&p->stats.clients),
                       (double)(msgs - last_msgs) / secs, alive ? "" : ", broadcaster stuck");
            last_msgs = msgs;
            last_status = now;
        }
        /* Files of deleted or expired messages (files.h): a sweep is a
         * few bounded statements, well inside a watchdog tick. */
        if (p->files && now - last_sweep >= (uint64_t)p->cfg.files_sweep_s * 1000000000u) {
            pv_files_sweep(p->files, pv_now_ms());
            last_sweep = now;
        }
        if (sig < 0)
            continue; /* the tick */
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGUSR1) {
            log_stats(&p->stats);
            continue;
        }
        if (sig == SIGHUP) {
            reload(&p->cfg, &p->live, p->queue, argc, argv);
            continue;
        }
        pv_info("signal %d (%s) ignored", sig, strsignal(sig));
    }
}

/* Undoes whatever part of start() ran, in the order the threads need:
 * clients get close 1001 after what was already queued for them, the
 * broadcaster leaves its loop, the writers flush (within
 * --drain-timeout) and stop, then CivetWeb (which frees the connection
 * slots), then the store commits what is still queued. */
static void teardown(struct palaverd *p)
{
    if (p->bc) {
        if (p->http) {
            atomic_store(&p->ws.stopping, true); /* no new WebSockets */
            pv_queue_close_msgs(p->queue);
            pv_queue_push_ctl(p->queue, pv_event_new(PV_EV_SHUTDOWN, NULL, NULL, 0));
        }
        pv_queue_push_ctl(p->queue, pv_event_new(PV_EV_STOP, NULL, NULL, 0));
        pv_broadcaster_join(p->bc);
        if (p->http && !pv_writers_drain(p->writers, (int)p->cfg.drain_timeout_ms))
            pv_warn("drain timeout (%u ms): some clients did not take their close frame",
                    p->cfg.drain_timeout_ms);
    }
    pv_http_stop_writers(p->writers);
    pv_http_stop(p->http);
    pv_store_close(p->store);
    pv_files_close(p->files);       /* after CivetWeb: no handler runs any more */
    pv_accounts_close(p->accounts); /* after CivetWeb: no handler runs any more */
    pv_queue_free(p->queue);        /* LEAVE events queued by mg_stop() release clients */
    pv_peers_free(p->ws.peers);
    pv_bans_free(p->ws.bans);
    pv_socketio_free(p->ws.sio); /* after CivetWeb: no handler runs any more */
    pv_live_destroy(&p->live);
}

/* --create-admin NAME: the first admin (or another) from a shell, with
 * the password on standard input (one line; not echoed on a terminal).
 * Works while the service runs: SQLite's locking orders the two writers. */
static int create_admin(const struct pv_config *cfg)
{
    char err[512], password[PV_PASSWORD_MAX + 2];
    const char *code = NULL;
    if (!cfg->data_dir[0]) {
        fprintf(stderr, "palaverd: --create-admin needs a data directory (--data-dir)\n");
        return 2;
    }
    struct pv_accounts *a = pv_accounts_open(cfg->data_dir, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "palaverd: %s\n", err);
        return 1;
    }
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "password for %s: ", cfg->create_admin);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool got = fgets(password, sizeof(password), stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    password[strcspn(password, "\r\n")] = '\0';
    int rc = got ? pv_accounts_create(a, cfg->create_admin, password, "admin", NULL, &code, err,
                                      sizeof(err))
                 : (snprintf(err, sizeof(err), "no password on standard input"), -1);
    explicit_bzero(password, sizeof(password));
    pv_accounts_close(a);
    if (rc != 0) {
        fprintf(stderr, "palaverd: cannot create admin '%s': %s\n", cfg->create_admin, err);
        return 1;
    }
    printf("palaverd: admin account '%s' created in %s/palaver.db\n", cfg->create_admin,
           cfg->data_dir);
    return 0;
}

int main(int argc, char **argv)
{
    static struct palaverd p;
    enum pv_config_action action;
    char cerr[512];
    sigset_t sigs;

    if (pv_config_load(&p.cfg, argc, argv, &action, cerr, sizeof(cerr)) != 0) {
        fprintf(stderr, "palaverd: %s\n", cerr);
        return 2;
    }
    if (action == PV_CONFIG_DONE)
        return 0;
    if (action == PV_CONFIG_CREATE_ADMIN)
        return create_admin(&p.cfg);
    if (action == PV_CONFIG_CHECK) {
        printf("palaverd: configuration OK (file %s%s): port %u, max-clients %u, %u CivetWeb "
               "workers, log-level %s\n",
               p.cfg.config_path, access(p.cfg.config_path, R_OK) == 0 ? "" : ", not present",
               p.cfg.port, p.cfg.max_clients, pv_config_num_threads(&p.cfg),
               pv_log_level_name(p.cfg.log_level));
        return 0;
    }
    pv_log_set_level(p.cfg.log_level);
    block_signals(&sigs);
    if (check_nofile(pv_config_num_threads(&p.cfg) + 64) != 0)
        return 1;
    if (check_threads(pv_config_num_threads(&p.cfg), p.cfg.writers) != 0)
        return 1;
    if (!start(&p)) {
        teardown(&p);
        return 1;
    }
    int port = pv_http_port(p.http);
    log_setup_link(&p, port); /* before the line that says palaverd listens */
    pv_info("palaverd %s listening on %s:%d (WebSocket /ws, / and /socket.io/), htdocs %s, max %u "
            "clients, "
            "%u CivetWeb workers, %u writers",
            PALAVER_VERSION, p.cfg.listen_addr[0] ? p.cfg.listen_addr : "0.0.0.0", port,
            p.cfg.htdocs, p.cfg.max_clients, pv_config_num_threads(&p.cfg), p.cfg.writers);
    if (p.cfg.trusted.n)
        pv_info("trusted proxies: %s (their X-Forwarded-For and X-Forwarded-Proto are believed; "
                "docs/tls.md)",
                p.cfg.trusted_proxies);
    if (p.cfg.trusted.n && !p.cfg.listen_addr[0])
        pv_warn("--trusted-proxies is set but palaverd listens on every address: clients on the "
                "network can reach it around the TLS terminator, in plain http; set --listen "
                "127.0.0.1 (docs/tls.md)");
    sd_notifyf(0, "READY=1\nSTATUS=Listening on port %d\nX_PALAVER_PORT=%d", port, port);

    int sig = supervise(&p, &sigs, argc, argv);

    pv_info("%s: shutting down (drain up to %u ms)", strsignal(sig), p.cfg.drain_timeout_ms);
    sd_notify(0, "STOPPING=1");
    teardown(&p);
    pv_info("stopped: %llu connections, %llu messages, %llu deliveries, %llu slow consumers",
            (unsigned long long)pv_stat_get(&p.stats.connections_total),
            (unsigned long long)pv_stat_get(&p.stats.messages_in),
            (unsigned long long)pv_stat_get(&p.stats.deliveries),
            (unsigned long long)pv_stat_get(&p.stats.slow_consumers));
    return 0;
}
