/* Integration: the hostile-client attacks of issue 12, each reproduced
 * against the real palaverd from one loopback address, each asserting
 * that the attack no longer works and that a bystander is not hurt.
 *
 * Threads: each test runs on cmocka's thread; the churn helpers start
 * their own threads, which share nothing but atomics with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 10000

static struct srv server;

/* True while palaverd runs (it has not exited or been killed). */
static bool alive(const struct srv *s)
{
    int st;
    return waitpid(s->pid, &st, WNOHANG) == 0;
}

/* A plain TCP connection to palaverd (no request sent), from source
 * address `from` (127.0.0.x: another LAN host, as far as palaverd can
 * tell) or from 127.0.0.1 when NULL. */
static int raw_tcp_from(int port, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && from) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, from, &src.sin_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int raw_tcp(int port)
{
    return raw_tcp_from(port, NULL);
}

/* GET / from another address; the status, or -1. */
static int get_from(int port, const char *from)
{
    int fd = raw_tcp_from(port, from), status = -1;
    const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (fd < 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1 &&
        poll(&p, 1, 5000) > 0) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            sscanf(buf, "HTTP/1.%*d %d", &status);
        }
    }
    close(fd);
    return status;
}

/* A client that joins and then never reads: its socket fills up. */
static struct wsc *non_reader(int port)
{
    struct wsc *c = wsc_open(port, &(struct wsc_opts){.rcvbuf = 4096});
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    return c;
}

/* An admitted client joins, sends, gets its ack; then it leaves. */
static void chat_once(struct wsc *c)
{
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    assert_int_equal(wsc_send_chat(c, 1, "still here", ""), 0);
    json_t *ack = wsc_expect(c, "ack", T);
    assert_non_null(ack);
    json_decref(ack);
    wsc_free(c);
}

/* A bystander still gets through. */
static void bystander_ok(int port)
{
    struct wsc *c = wsc_open(port, NULL);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    chat_once(c);
}

/* Frees the three held clients, then a bystander gets in (once their
 * LEAVEs have freed the slots: until then it may be refused 503, and a
 * slot freed by someone else does not count). */
static void bystander_ok_after_leave(struct wsc **held)
{
    for (int i = 0; i < 3; i++)
        wsc_free(held[i]);
    int64_t deadline = mono_ms() + T;
    for (;;) {
        struct wsc *c = wsc_open(server.port, NULL);
        assert_non_null(c);
        if (c->status == 101) {
            chat_once(c);
            return;
        }
        assert_int_equal(c->status, 503);
        wsc_free(c);
        assert_true(mono_ms() < deadline);
        usleep(50 * 1000);
    }
}

struct churn {
    pthread_t thread;
    int port;
    int64_t until;      /* mono_ms() deadline */
    atomic_int cycles;  /* handshakes completed */
    atomic_int refused; /* handshakes answered with something else */
};

/* Opens and closes WebSockets as fast as it can until `until`. */
static void *churn_main(void *arg)
{
    struct churn *ch = arg;
    while (mono_ms() < ch->until) {
        struct wsc *c = wsc_open(ch->port, NULL);
        if (c && c->status == 101)
            atomic_fetch_add(&ch->cycles, 1);
        else
            atomic_fetch_add(&ch->refused, 1);
        wsc_free(c);
    }
    return NULL;
}

/* Item 1: clients that left stayed queued for the writers while new ones
 * were admitted, until the writers' ready ring (sized from --max-clients)
 * overflowed and palaverd called abort(). Eight clients that stop reading
 * keep writers busy; two threads then open and close WebSockets as fast
 * as they can. palaverd must stay up and keep serving. */
static void test_churn_with_non_readers_does_not_crash(void **state)
{
    (void)state;
    const char *args[] = {"--max-clients", "64", "--handshake-rate", "0", NULL};
    assert_int_equal(srv_start(&server, args), 0);
    struct wsc *stuck[8];
    for (int i = 0; i < 8; i++)
        stuck[i] = non_reader(server.port);
    struct churn ch[2];
    int64_t until = mono_ms() + 6000;
    for (int i = 0; i < 2; i++) {
        ch[i] = (struct churn){.port = server.port, .until = until};
        pthread_create(&ch[i].thread, NULL, churn_main, &ch[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(ch[i].thread, NULL);
    int cycles = atomic_load(&ch[0].cycles) + atomic_load(&ch[1].cycles);
    fprintf(stderr, "hostile: %d open/close cycles beside 8 non-readers\n", cycles);
    if (!alive(&server))
        srv_dump_log(&server);
    assert_true(alive(&server));
    assert_false(srv_log_has(&server, "capacity invariant"));
    bystander_ok(server.port);
    for (int i = 0; i < 8; i++)
        wsc_free(stuck[i]);
    assert_int_equal(srv_stop(&server), 0);
}

struct racer {
    pthread_t thread;
    int port;
    pthread_barrier_t *go;
    struct wsc *c;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->go);
    r->c = wsc_open(r->port, NULL);
    return NULL;
}

/* Item 8: a handshake that completed (101) but lost the admission race
 * in the ready handler was closed with 1013 and then belonged to nobody:
 * never swept, so a peer that never answered the close kept its CivetWeb
 * worker for good. Racers that lose now see palaverd end the connection
 * themselves, without sending anything. */
static void test_refused_after_handshake_is_evicted(void **state)
{
    (void)state;
    const char *args[] = {"--max-clients", "4", "--max-per-ip", "0", NULL};
    assert_int_equal(srv_start(&server, args), 0);
    struct wsc *held[3];
    for (int i = 0; i < 3; i++) {
        held[i] = wsc_open(server.port, NULL);
        assert_int_equal(wsc_join(held[i], NULL, NULL), 0);
    }
    int lost = 0, ended = 0;
    for (int round = 0; round < 40 && lost < 3; round++) {
        enum { N = 16 };
        struct racer r[N];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        for (int i = 0; i < N; i++) {
            r[i] = (struct racer){.port = server.port, .go = &go};
            pthread_create(&r[i].thread, NULL, racer_main, &r[i]);
        }
        for (int i = 0; i < N; i++)
            pthread_join(r[i].thread, NULL);
        pthread_barrier_destroy(&go);
        /* A loser's first frame is its close 1013; a winner's is its id. */
        struct wsc *losers[N];
        int nl = 0;
        for (int i = 0; i < N; i++) {
            struct wsc *c = r[i].c;
            struct wsc_frame f;
            if (!c || c->status != 101 || wsc_recv(c, &f, 2000) != 1)
                continue;
            wsc_frame_free(&f);
            if (c->close_code == 1013)
                losers[nl++] = c;
        }
        /* The peers never answer: palaverd must end each (eviction comes a
         * second or two after the close; 8 s each is generous). Waited for
         * together: each gets its 8 s from now. */
        lost += nl;
        bool gone[N] = {false};
        for (int64_t until = mono_ms() + 8000; mono_ms() < until;) {
            int open = 0;
            for (int k = 0; k < nl; k++) {
                struct wsc_frame f;
                if (gone[k])
                    continue;
                int rc = wsc_recv(losers[k], &f, 100);
                if (rc == 1)
                    wsc_frame_free(&f);
                if (rc == -1) {
                    gone[k] = true;
                    ended++;
                } else {
                    open++;
                }
            }
            if (!open)
                break;
        }
        if (ended < lost)
            fprintf(stderr,
                    "hostile: %d refused connection(s) still open 8 s after their close "
                    "1013\n",
                    lost - ended);
        /* The winner (if any) leaves, freeing the slot for the next round. */
        for (int i = 0; i < N; i++)
            wsc_free(r[i].c);
        usleep(200 * 1000);
    }
    fprintf(stderr,
            "hostile: %d handshakes lost the admission race after 101; palaverd ended "
            "%d of them\n",
            lost, ended);
    assert_true(lost > 0);
    assert_int_equal(ended, lost);
    bystander_ok_after_leave(held);
    assert_int_equal(srv_stop(&server), 0);
}

/* GET path with this Host header (NULL: none, HTTP/1.0); the status. */
static int get_with_host(const char *path, const char *host)
{
    char req[512], out[8192];
    if (host)
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
                 host);
    else
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    return http_request(server.port, req, out, sizeof(out));
}

/* Item 11: DNS rebinding. A page on attacker.example whose name now
 * resolves to palaverd's address sends Host = Origin = attacker.example:
 * the Origin-equals-Host check passed it (101, /metrics, history,
 * posting). Every request is now checked against the names palaverd
 * answers to; others get 421. */
static void test_dns_rebinding_is_refused(void **state)
{
    (void)state;
    const char *args[] = {"--allowed-hosts", "chat.lan .example.org", NULL};
    assert_int_equal(srv_start(&server, args), 0);
    char evil[64];
    snprintf(evil, sizeof(evil), "attacker.example:%d", server.port);
    const char *paths[] = {"/", "/index.html", "/app.js", "/metrics", "/healthz"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(get_with_host(paths[i], evil), 421);
        assert_int_equal(get_with_host(paths[i], "127.0.0.1"), 200);
    }
    /* The WebSocket handshake of the rebinding page: Origin matches Host. */
    char origin[128];
    snprintf(origin, sizeof(origin), "Origin: http://%s\r\n", evil);
    struct wsc *c = wsc_open(server.port, &(struct wsc_opts){.host = evil, .headers = origin});
    assert_non_null(c);
    assert_int_equal(c->status, 421);
    wsc_free(c);
    /* Ours: loopback literals, localhost, configured names and suffixes,
     * no Host at all; not: look-alikes, other addresses, junk. */
    const char *ok[] = {"127.0.0.1",   "127.0.0.2:8080", "localhost", "LOCALHOST:1",
                        "a.localhost", "chat.lan",       "chat.lan.", "Chat.LAN:8080",
                        "example.org", "x.example.org",  NULL};
    const char *bad[] = {"chat.lan.attacker.example",
                         "notchat.lan",
                         "xexample.org",
                         "203.0.113.9",
                         "10.255.255.254",
                         "",
                         ":80",
                         "a b",
                         "chat.lan:http",
                         "[::ffff:203.0.113.9]",
                         "localhost.attacker.example"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(get_with_host("/", ok[i]), 200);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = get_with_host("/", bad[i]);
        if (st != 421 && st != 400)
            fprintf(stderr, "Host '%s' answered %d\n", bad[i], st);
        assert_true(st == 421 || st == 400);
    }
    /* Counted and logged (aggregated). */
    char out[16384];
    assert_int_equal(http_get(server.port, "/metrics", out, sizeof(out)), 200);
    assert_non_null(strstr(out, "palaver_refused_connections_total{reason=\"host\"}"));
    assert_null(strstr(out, "palaver_refused_connections_total{reason=\"host\"} 0\n"));
    assert_true(srv_log_has(&server, "is not one of ours"));
    assert_int_equal(srv_stop(&server), 0);
}

/* Item 7: join/leave churn. One address opened and closed thousands of
 * WebSockets per second: a join and a leave notice to everyone each time,
 * and 147,000 log lines in 10 s. Handshakes per address are now a token
 * bucket (--handshake-rate, --handshake-burst; 429 past it), and the
 * refusal lines are aggregated. */
static void test_handshake_churn_is_rate_limited(void **state)
{
    (void)state;
    const char *args[] = {"--handshake-rate", "10", "--handshake-burst", "20", NULL};
    assert_int_equal(srv_start(&server, args), 0);
    struct wsc *watcher = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(watcher, NULL, NULL), 0);
    int64_t t0 = mono_ms();
    struct churn ch = {.port = server.port, .until = t0 + 2000};
    churn_main(&ch);
    double secs = (double)(mono_ms() - t0) / 1000.0;
    int ok = atomic_load(&ch.cycles), refused = atomic_load(&ch.refused);
    fprintf(stderr, "hostile: churn for %.1f s: %d handshakes got 101, %d were refused\n", secs, ok,
            refused);
    /* The bucket: 20 at once (the watcher took one), then 10 per second. */
    assert_true(ok <= 20 + (int)(10 * secs) + 2);
    assert_true(refused > ok);
    /* The watcher saw at most that many joins (notices may name several). */
    int joins = 0;
    json_t *j;
    while ((j = wsc_recv_json(watcher, 500)) != NULL) {
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type && strcmp(type, "join") == 0)
            joins++;
        json_decref(j);
    }
    assert_true(joins <= ok);
    /* Refusals logged a few per second, with a count of the rest. */
    int lines = srv_log_count(&server, "answered 429");
    fprintf(stderr, "hostile: %d refusal lines for %d refusals\n", lines, refused);
    assert_true(lines <= 5 * ((int)secs + 2));
    assert_true(refused < 50 || srv_log_wait(&server, "similar lines suppressed", 3000) ||
                lines < refused);
    /* The refusal says when to come back. */
    bool told = false;
    for (int i = 0; i < 40 && !told; i++) {
        struct wsc *c = wsc_open(server.port, NULL);
        told = c && c->status == 429 && strstr(c->response, "Retry-After: 1");
        wsc_free(c);
    }
    assert_true(told);
    wsc_free(watcher);
    assert_int_equal(srv_stop(&server), 0);
}

/* Item 7, over time: with no handshake bucket at all (--handshake-rate 0:
 * many addresses, or a household behind one), two threads open and close
 * WebSockets for 2 s. Notices were one join and one leave per cycle to
 * everyone; now they are coalesced over a 250 ms window, and a client
 * that joins and leaves inside one window is never announced. The
 * watcher gets at most two notices per window; a client that joins
 * during the churn and stays is announced, by name, within a second. */
static void test_churn_costs_few_notices(void **state)
{
    (void)state;
    const char *args[] = {"--max-per-ip", "0", NULL}; /* pvtest: --handshake-rate 0 */
    assert_int_equal(srv_start(&server, args), 0);
    struct wsc *watcher = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(watcher, NULL, NULL), 0);
    int64_t t0 = mono_ms();
    struct churn ch[2];
    for (int i = 0; i < 2; i++) {
        ch[i] = (struct churn){.port = server.port, .until = t0 + 2000};
        pthread_create(&ch[i].thread, NULL, churn_main, &ch[i]);
    }
    poll(NULL, 0, 1000);
    struct wsc_opts so = {.path = "/ws?name=stayer"};
    struct wsc *stayer = wsc_open(server.port, &so);
    assert_int_equal(wsc_join(stayer, NULL, NULL), 0);
    int64_t stayed_at = mono_ms(), announced_ms = -1;
    int notices = 0, cycles = 0;
    json_t *j;
    while ((j = wsc_recv_json(watcher, 1000)) != NULL) {
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type && (strcmp(type, "join") == 0 || strcmp(type, "leave") == 0)) {
            notices++;
            json_t *users = json_object_get(j, "users");
            for (size_t u = 0; u < json_array_size(users) && announced_ms < 0; u++) {
                const char *n =
                    json_string_value(json_object_get(json_array_get(users, u), "name"));
                if (strcmp(type, "join") == 0 && n && strcmp(n, "stayer") == 0)
                    announced_ms = mono_ms() - stayed_at;
            }
        }
        json_decref(j);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(ch[i].thread, NULL);
        cycles += atomic_load(&ch[i].cycles);
    }
    double secs = (double)(mono_ms() - t0) / 1000.0;
    fprintf(stderr,
            "hostile: %d open/close cycles in 2 s: the watcher got %d notices in %.1f s; the "
            "stayer announced after %lld ms\n",
            cycles, notices, secs, (long long)announced_ms);
    assert_true(cycles > 200); /* the churn really ran */
    assert_true(notices <= 2 * ((int)(secs * 4) + 2));
    assert_true(announced_ms >= 0 && announced_ms < 1000);
    wsc_free(watcher);
    wsc_free(stayer);
    bystander_ok(server.port);
    assert_int_equal(srv_stop(&server), 0);
}

/* A chat message whose text is n control characters: each is escaped as
 * \u0001, six bytes on the wire for one of text. */
static char *fat_message(int n, long long msg_id)
{
    size_t cap = (size_t)n * 6 + 128, len = 0;
    char *m = malloc(cap);
    len += (size_t)snprintf(m, cap, "{\"type\":\"message\",\"msgId\":%lld,\"text\":\"", msg_id);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(m + len, cap - len, "\\u0001");
    snprintf(m + len, cap - len, "\"}");
    return m;
}

/* Item 6: byte floods inside the message rate. 19 messages/s of 24.6 KB
 * is within the message bucket, and was relayed in full to everyone:
 * readers slower than that were closed as slow consumers. Bytes are now
 * budgeted per client and per address. */
static void test_byte_flood_is_budgeted(void **state)
{
    (void)state;
    assert_int_equal(srv_start(&server, NULL), 0); /* defaults: 64 KiB/s, 256 KiB burst */
    struct wsc *reader = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(reader, NULL, NULL), 0);
    enum { A = 4, M = 38 };
    struct wsc *atk[A];
    size_t offered = 0;
    for (int i = 0; i < A; i++) {
        atk[i] = wsc_open(server.port, NULL);
        assert_int_equal(wsc_join(atk[i], NULL, NULL), 0);
    }
    int64_t t0 = mono_ms();
    for (int k = 0; k < M; k++) {
        for (int i = 0; i < A; i++) {
            char *m = fat_message(4096, k);
            offered += strlen(m);
            assert_int_equal(wsc_send(atk[i], true, 1, m, strlen(m)), 0);
            free(m);
        }
    }
    /* What reached the reader in the next 3 s. */
    size_t relayed = 0;
    int64_t deadline = mono_ms() + 3000;
    struct wsc_frame f;
    while (mono_ms() < deadline && wsc_recv(reader, &f, 200) >= 0) {
        if (f.opcode == 1 && strstr((char *)f.data, "\"type\":\"message\""))
            relayed += f.len;
        if (f.len || f.opcode)
            wsc_frame_free(&f);
    }
    double secs = (double)(mono_ms() - t0) / 1000.0;
    int refusals = 0;
    for (int i = 0; i < A; i++) {
        json_t *j;
        while ((j = wsc_recv_json(atk[i], 200)) != NULL) {
            const char *code = json_string_value(json_object_get(j, "code"));
            if (code && strcmp(code, "rate-limited") == 0)
                refusals++;
            json_decref(j);
        }
    }
    fprintf(stderr,
            "hostile: %zu bytes offered by %d clients of one address, %zu relayed in "
            "%.1f s, %d refused\n",
            offered, A, relayed, secs, refusals);
    /* The address's budget: 1 MiB at once, then 256 KiB/s (plus what the
     * relay adds to each message). */
    assert_true(relayed <= (size_t)((1 << 20) + 262144 * secs) * 11 / 10);
    assert_true(refusals > 0);
    bystander_ok(server.port);
    for (int i = 0; i < A; i++)
        wsc_free(atk[i]);
    wsc_free(reader);
    assert_int_equal(srv_stop(&server), 0);
}

/* Smaller items: unsolicited pongs and empty continuation frames cost the
 * server a read and a wake-up each and were free (835 MB of pongs in 8 s
 * used both cores). They now draw on the byte budget; a sustained flood
 * is closed with 1008. */
static void test_pong_flood_is_closed(void **state)
{
    (void)state;
    assert_int_equal(srv_start(&server, NULL), 0);
    for (int kind = 0; kind < 2; kind++) {
        struct wsc *c = wsc_open(server.port, NULL);
        assert_int_equal(wsc_join(c, NULL, NULL), 0);
        if (kind == 1) /* a fragmented message left open, then empty continuations */
            assert_int_equal(wsc_send(c, false, 1, "{", 1), 0);
        unsigned char payload[125], *frame;
        memset(payload, 'p', sizeof(payload));
        size_t n =
            wsc_encode(kind == 0 ? 0x8A : 0x00, payload, kind == 0 ? sizeof(payload) : 0, &frame);
        enum { K = 20000 };
        unsigned char *buf = malloc(n * K);
        for (int i = 0; i < K; i++)
            memcpy(buf + n * (size_t)i, frame, n);
        free(frame);
        wsc_send_raw(c, buf, n * K);
        free(buf);
        int code = wsc_wait_close(c, T);
        fprintf(stderr, "hostile: %d %s frames: closed %d\n", K,
                kind == 0 ? "unsolicited pong" : "empty continuation", code);
        assert_int_equal(code, 1008);
        wsc_free(c);
    }
    bystander_ok(server.port);
    assert_int_equal(srv_stop(&server), 0);
}

/* Item 2: CivetWeb 1.15 allocated the length a frame header announced (up
 * to 2 GiB) and filled it as bytes arrived; palaverd refused with 1009
 * only when the frame was complete. Three clients announce 1.2 GB frames
 * and send 16 MiB of each: palaverd's patched CivetWeb refuses each at
 * its header (1009) and its memory does not grow with what they announce. */
static void test_huge_frame_header_is_refused_at_once(void **state)
{
    (void)state;
    assert_int_equal(srv_start(&server, NULL), 0);
    struct wsc *bystander = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(bystander, NULL, NULL), 0);
    long before = rss_kib(server.pid);
    enum { N = 3 };
    struct wsc *c[N];
    static unsigned char junk[1 << 16];
    for (int i = 0; i < N; i++) {
        c[i] = wsc_open(server.port, NULL);
        assert_int_equal(wsc_join(c[i], NULL, NULL), 0);
        /* FIN+text, masked, 64-bit length 1,200,000,000, mask key. */
        unsigned char head[14] = {0x81, 0xFF, 0, 0, 0, 0, 0x47, 0x86, 0x8C, 0x00, 1, 2, 3, 4};
        assert_int_equal(wsc_send_raw(c[i], head, sizeof(head)), 0);
    }
    long peak = before;
    for (int k = 0; k < 256; k++) { /* 16 MiB each, as fast as it goes */
        for (int i = 0; i < N; i++)
            if (c[i]->fd >= 0 && send(c[i]->fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0) {
                close(c[i]->fd);
                c[i]->fd = -1;
            }
        long now = rss_kib(server.pid);
        if (now > peak)
            peak = now;
    }
    int refused = 0;
    for (int i = 0; i < N; i++) {
        if (c[i]->fd >= 0 && wsc_wait_close(c[i], T) == 1009)
            refused++;
        else if (c[i]->close_code == 1009)
            refused++;
        wsc_free(c[i]);
    }
    fprintf(stderr,
            "hostile: %d frames announcing 1.2 GB: RSS %ld KiB before, %ld KiB at most "
            "while they were sent; %d closed 1009\n",
            N, before, peak, refused);
    assert_true(peak < before + 64 * 1024); /* was +3.38 GiB */
    assert_true(srv_log_wait(&server, "over websocket_max_frame_size; closed 1009", T));
    /* The bystander still chats. */
    assert_int_equal(wsc_send_chat(bystander, 7, "after the big ones", ""), 0);
    json_t *ack = wsc_expect(bystander, "ack", T);
    assert_non_null(ack);
    json_decref(ack);
    wsc_free(bystander);
    assert_int_equal(srv_stop(&server), 0);
}

/* Item 3: slowloris. Every accepted TCP connection held a CivetWeb worker
 * until its request head was complete or --io-timeout (10 s) passed, and
 * the per-address limit counted only finished WebSockets: idle
 * connections from one address hung page loads and handshakes. Now an
 * address may hold --max-conns-per-ip workers (past that, connections are
 * closed at accept), and a request head must be complete within
 * --head-timeout. */
static void test_slowloris_cannot_take_the_workers(void **state)
{
    (void)state;
    const char *args[] = {
        "--max-clients", "40", "--http-workers", "8", "--max-per-ip", "4", "--head-timeout",
        "1500",          NULL};
    assert_int_equal(srv_start(&server, args), 0);
    enum { IDLE = 300 };
    int fds[IDLE], accepted = 0;
    for (int i = 0; i < IDLE; i++) {
        fds[i] = raw_tcp(server.port);
        if (fds[i] >= 0)
            accepted++;
        static const char half[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        if (i % 10 == 0 && fds[i] >= 0) /* half a request head, as slowloris does */
            send(fds[i], half, sizeof(half) - 1, MSG_NOSIGNAL);
    }
    /* Everyone else still gets the page: the idle ones hold at most
     * 4 + 16 workers (--max-conns-per-ip defaults to --max-per-ip + 16),
     * the rest were closed at accept. */
    usleep(200 * 1000);
    int64_t t0 = mono_ms();
    for (int i = 2; i < 8; i++) {
        char from[16];
        snprintf(from, sizeof(from), "127.0.0.%d", i);
        assert_int_equal(get_from(server.port, from), 200);
    }
    int64_t page_ms = (mono_ms() - t0) / 6;
    fprintf(stderr,
            "hostile: %d idle connections from one address; page answered to 6 others "
            "in %lld ms each\n",
            accepted, (long long)page_ms);
    assert_true(page_ms < 3000);
    assert_true(srv_log_wait(&server, "(--max-conns-per-ip); closed at accept", T));
    /* Idle ones that did get a worker lose it after --head-timeout. */
    int64_t deadline = mono_ms() + 6000;
    int closed = 0;
    for (int i = 0; i < IDLE; i++) {
        char b[256];
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        int left = (int)(deadline - mono_ms());
        if (fds[i] < 0 || poll(&p, 1, left > 0 ? left : 0) <= 0)
            continue;
        /* Readable: the end of the stream, or CivetWeb's 400 for the half
         * request head before it closes. Either way the worker is free. */
        if (recv(fds[i], b, sizeof(b), MSG_DONTWAIT) >= 0)
            closed++;
    }
    fprintf(stderr, "hostile: %d of %d idle connections ended by palaverd within 6 s\n", closed,
            accepted);
    assert_int_equal(closed, accepted);
    for (int i = 0; i < IDLE; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    bystander_ok(server.port);
    assert_int_equal(srv_stop(&server), 0);
}

/* Fills the history with n fat messages (4,096 control characters each,
 * about 24.6 KB on the wire) from a client of its own. */
static void fill_history(int n)
{
    struct wsc *c = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    for (int i = 0; i < n; i++) {
        char *m = fat_message(4096, i);
        assert_int_equal(wsc_send(c, true, 1, m, strlen(m)), 0);
        free(m);
        json_t *ack = wsc_expect(c, "ack", T);
        assert_non_null(ack);
        json_decref(ack);
    }
    wsc_free(c);
}

struct puller {
    pthread_t thread;
    int port, requests;
    size_t bytes; /* history bytes received */
    int busy;     /* requests refused with busy */
};

/* Asks for the newest 200 messages `requests` times at once, then counts
 * what comes back for 4 s. */
static void *puller_main(void *arg)
{
    struct puller *p = arg;
    struct wsc *c = wsc_open(p->port, NULL);
    if (!c || c->status != 101 || wsc_join(c, NULL, NULL) != 0) {
        wsc_free(c);
        return NULL;
    }
    for (int i = 0; i < p->requests; i++) {
        char req[96];
        snprintf(req, sizeof(req), "{\"type\":\"history\",\"limit\":200,\"msgId\":%d}", i);
        wsc_send_text(c, req);
    }
    int64_t deadline = mono_ms() + 4000;
    struct wsc_frame f;
    while (mono_ms() < deadline) {
        int r = wsc_recv(c, &f, 200);
        if (r < 0)
            break;
        if (r == 0)
            continue;
        if (f.opcode == 1 && strstr((char *)f.data, "\"type\":\"history\""))
            p->bytes += f.len;
        if (f.opcode == 1 && strstr((char *)f.data, "\"code\":\"busy\""))
            p->busy++;
        wsc_frame_free(&f);
    }
    wsc_free(c);
    return NULL;
}

/* Item 9: amplification. A 60-byte history request returned ~4.9 MB
 * (200 stored messages); 10 connections pulled 2.45 GB in 15 s. History
 * reads are now budgeted in the bytes they produce, per client and per
 * address (--history-rate, default 512 KiB/s, 8x burst, 4x per address). */
static void test_history_amplification_is_budgeted(void **state)
{
    (void)state;
    const char *args[] = {"--history", "200", "--rate-limit", "0", "--byte-rate", "0", NULL};
    assert_int_equal(srv_start(&server, args), 0);
    fill_history(200);
    enum { P = 10 };
    struct puller p[P];
    int64_t t0 = mono_ms();
    for (int i = 0; i < P; i++) {
        p[i] = (struct puller){.port = server.port, .requests = 20};
        pthread_create(&p[i].thread, NULL, puller_main, &p[i]);
    }
    size_t total = 0;
    int busy = 0;
    for (int i = 0; i < P; i++) {
        pthread_join(p[i].thread, NULL);
        total += p[i].bytes;
        busy += p[i].busy;
    }
    double secs = (double)(mono_ms() - t0) / 1000.0;
    fprintf(stderr,
            "hostile: %d connections asked for %d pages of 200 fat messages: %zu bytes "
            "in %.1f s, %d refused busy\n",
            P, P * 20, total, secs, busy);
    /* Unbudgeted that was 200 x 4.9 MB; the address's budget is 16 MiB at
     * once, then 2 MiB/s (a page already being read may overshoot it
     * once per connection). */
    double bound = 16.0 * 1048576 + 2.0 * 1048576 * secs + P * 5.0e6;
    assert_true((double)total <= bound);
    assert_true(busy > 0);
    bystander_ok(server.port);
    assert_int_equal(srv_stop(&server), 0);
}

struct slow_reader {
    pthread_t thread;
    struct wsc *c;
    atomic_bool stop;
    int busy;
    size_t bytes;
};

/* Reads 64 KiB every 2 ms (about 20 MB/s): never stalled for the 1 s
 * that makes a slow consumer, but slower than what it asks for. Counts
 * the busy replies (one straddling two reads may be missed). */
static void *slow_reader_main(void *arg)
{
    struct slow_reader *r = arg;
    static char buf[65536];
    static const char busy[] = "\"code\":\"busy\"";
    while (!atomic_load(&r->stop)) {
        ssize_t n = recv(r->c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0) {
            r->bytes += (size_t)n;
            for (const char *p = buf, *end = buf + n;
                 (p = memmem(p, (size_t)(end - p), busy, sizeof(busy) - 1)) != NULL;
                 p += sizeof(busy) - 1)
                r->busy++;
        }
        usleep(2000);
    }
    return NULL;
}

/* Item 4: one client froze all fanout. It asked for replays (hello with
 * since inside the memory ring, 40 at once) and then read steadily: it
 * was "congested", and while any congested client was over half the
 * bound the broadcaster took no events (nobody received anything for
 * 3.4-4.5 s). Now a client's backlog pauses nobody while the writers keep
 * up; replays are refused with busy while the client is behind or over
 * its read budget. A bystander's latency stays bounded. */
static void test_one_slow_replayer_does_not_freeze_fanout(void **state)
{
    (void)state;
    const char *args[] = {"--history", "100", "--rate-limit", "0", "--byte-rate", "0", NULL};
    assert_int_equal(srv_start(&server, args), 0);
    fill_history(100);
    char sid[32];
    struct wsc *sender = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(sender, NULL, sid), 0);
    struct wsc *bystander = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(bystander, NULL, NULL), 0);
    /* static: a failed assertion leaves the test while the reader runs */
    static struct slow_reader r;
    r = (struct slow_reader){.c = wsc_open(server.port, &(struct wsc_opts){.rcvbuf = 65536})};
    assert_int_equal(wsc_join(r.c, NULL, NULL), 0);
    char hello[128];
    snprintf(hello, sizeof(hello), "{\"type\":\"hello\",\"since\":1}");
    for (int i = 0; i < 40; i++)
        assert_int_equal(wsc_send_text(r.c, hello), 0);
    pthread_create(&r.thread, NULL, slow_reader_main, &r);
    /* 4 s of chat at 20 messages/s; the bystander times each one. */
    int64_t worst = 0;
    int got = 0, acked = 0;
    for (int i = 0; i < 80; i++) {
        char text[64];
        snprintf(text, sizeof(text), "t=%lld;", (long long)mono_ms());
        if (wsc_send_chat(sender, i, text, "") != 0)
            break;
        /* The sender reads its acks: a client that never reads is a slow
         * consumer, rightly. */
        json_t *ack = wsc_expect(sender, "ack", T);
        if (!ack)
            break;
        acked++;
        json_decref(ack);
        int64_t until = mono_ms() + 50;
        json_t *j;
        while (mono_ms() < until && (j = wsc_recv_json(bystander, (int)(until - mono_ms())))) {
            const char *t = json_string_value(json_object_get(j, "text"));
            long long sent;
            if (t && sscanf(t, "t=%lld;", &sent) == 1) {
                got++;
                if (mono_ms() - sent > worst)
                    worst = mono_ms() - sent;
            }
            json_decref(j);
        }
    }
    int64_t until = mono_ms() + 3000;
    json_t *j;
    while (got < 80 && (j = wsc_recv_json(bystander, (int)(until - mono_ms()))) != NULL) {
        const char *t = json_string_value(json_object_get(j, "text"));
        long long sent;
        if (t && sscanf(t, "t=%lld;", &sent) == 1) {
            got++;
            if (mono_ms() - sent > worst)
                worst = mono_ms() - sent;
        }
        json_decref(j);
        if (mono_ms() > until)
            break;
    }
    atomic_store(&r.stop, true);
    pthread_join(r.thread, NULL);
    fprintf(stderr,
            "hostile: 40 replays to a slow reader beside a bystander: %d of 80 messages "
            "acked, %d received, worst latency %lld ms; %d replays refused busy, %zu bytes "
            "read\n",
            acked, got, (long long)worst, r.busy, r.bytes);
    if (acked < 80 || r.busy == 0)
        srv_dump_log(&server);
    assert_int_equal(acked, 80);
    assert_int_equal(got, 80);
    assert_true(worst < 1000); /* was 3.4-4.5 s stalls */
    assert_true(r.busy > 0);
    wsc_free(r.c);
    wsc_free(bystander);
    wsc_free(sender);
    assert_int_equal(srv_stop(&server), 0);
}

/* Sends n chat messages from a client at address `from`, each waited for
 * (its ack: stored); fat ones are 4,096 control characters (24.6 KB). */
static void send_from(const char *from, int n, bool fat, const char *tag)
{
    struct wsc_opts o = {.from = from};
    struct wsc *c = wsc_open(server.port, &o);
    assert_non_null(c);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    for (int i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof(text), "%s %d", tag, i);
        char *m = fat ? fat_message(4096, i) : NULL;
        assert_int_equal(fat ? wsc_send(c, true, 1, m, strlen(m)) : wsc_send_chat(c, i, text, ""),
                         0);
        free(m);
        json_t *ack = wsc_expect(c, "ack", T);
        assert_non_null(ack);
        json_decref(ack);
    }
    wsc_free(c);
}

/* How many of the first n messages (seq 1..n, sent by the bystander
 * before the flood) the store still has: a page read from the database. */
static size_t stored_of_first(int n)
{
    struct wsc *c = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    char req[96];
    snprintf(req, sizeof(req), "{\"type\":\"history\",\"before\":%d,\"limit\":%d}", n + 1, n);
    assert_int_equal(wsc_send_text(c, req), 0);
    json_t *h = wsc_expect(c, "history", T);
    assert_non_null(h);
    json_t *msgs = json_object_get(h, "messages");
    size_t kept = 0;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const char *text = json_string_value(json_object_get(json_array_get(msgs, i), "text"));
        kept += text && strncmp(text, "before the flood ", 17) == 0;
    }
    json_decref(h);
    wsc_free(c);
    return kept;
}

/* Item 10: retention counted messages, so one address writing fat
 * messages wiped everyone's history (and, with a size cap, failed the
 * store for good). Now retention counts bytes too (--history-max-bytes),
 * and a sender over --history-sender-share of it loses its own oldest
 * first. One address writes 5x the byte limit after another wrote 50
 * messages: those 50 are all still stored, the store stayed under its
 * limit and never failed. With the share at 100 % (the control: oldest
 * first, whoever sent them) the same flood wipes them. */
static size_t history_flood(const char *share, char *metrics, size_t msz)
{
    char dir[128];
    assert_true(tmpdir_make(dir, sizeof(dir), "flood"));
    const char *args[] = {"--data-dir",
                          dir,
                          "--history-max-bytes",
                          "2097152",
                          "--history-sender-share",
                          share,
                          "--resume-limit",
                          "100",
                          "--history",
                          "10",
                          "--rate-limit",
                          "0",
                          "--byte-rate",
                          "0",
                          NULL};
    assert_int_equal(srv_start(&server, args), 0);
    send_from("127.0.0.5", 50, false, "before the flood");
    int64_t t0 = mono_ms();
    send_from("127.0.0.66", 420, true, NULL); /* 10.3 MB: 5x the limit */
    double secs = (double)(mono_ms() - t0) / 1000.0;
    size_t kept = stored_of_first(50);
    assert_int_equal(http_get(server.port, "/metrics", metrics, msz), 200);
    fprintf(stderr, "hostile: share %s%%: 420 fat messages (10.3 MB) in %.1f s, %zu of 50 kept\n",
            share, secs, kept);
    bystander_ok(server.port);
    assert_int_equal(srv_stop(&server), 0);
    tmpdir_remove(dir);
    return kept;
}

static void test_history_flood_is_fair(void **state)
{
    (void)state;
    static char metrics[65536];
    assert_int_equal(history_flood("25", metrics, sizeof(metrics)), 50);
    assert_non_null(strstr(metrics, "\npalaver_store_up 1\n"));
    const char *b = strstr(metrics, "\npalaver_store_bytes ");
    assert_non_null(b);
    long long bytes = atoll(b + strlen("\npalaver_store_bytes "));
    assert_true(bytes > 1000000 && bytes <= 2097152);
    assert_int_equal(history_flood("100", metrics, sizeof(metrics)), 0);
}

struct json_bomber {
    pthread_t thread;
    int port;
    char from[16];
    atomic_bool *stop;
    long sent;
};

/* Sends costly JSON as fast as the socket takes it: an array of 10,000
 * {} (30 KB; not a message, but it must be parsed to know that) and a
 * message with 3,000 unknown fields (a valid chat message "x" once they
 * are dropped). Reads and drops what comes back. */
static void *json_bomber_main(void *arg)
{
    struct json_bomber *jb = arg;
    struct wsc_opts o = {.from = jb->from};
    struct wsc *c = wsc_open(jb->port, &o);
    if (!c || c->status != 101) {
        wsc_free(c);
        return NULL;
    }
    size_t cap = 40000, n1 = 0, n2 = 0;
    char *arr = malloc(cap), *obj = malloc(cap);
    arr[n1++] = '[';
    for (int i = 0; i < 10000; i++)
        n1 += (size_t)snprintf(arr + n1, cap - n1, "%s{}", i ? "," : "");
    arr[n1++] = ']';
    n2 += (size_t)snprintf(obj, cap, "{\"type\":\"message\",\"text\":\"x\"");
    for (int i = 0; i < 3000; i++)
        n2 += (size_t)snprintf(obj + n2, cap - n2, ",\"u%d\":[]", i);
    obj[n2++] = '}';
    char sink[65536];
    while (!atomic_load(jb->stop)) {
        if (wsc_send(c, true, 1, jb->sent % 2 ? obj : arr, jb->sent % 2 ? n2 : n1) != 0)
            break;
        jb->sent++;
        while (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
    }
    free(arr);
    free(obj);
    wsc_free(c);
    return NULL;
}

/* Item 5: costly JSON. Every message was parsed on the one broadcaster
 * thread: 21,000 {} cost 3.1 ms to decode, and 30 connections at the
 * rate limit pushed everyone's latency to 12-23 s. Now each worker
 * decodes its own connection's messages (in parallel) and hands over only
 * the fields the protocol uses. With the rate and byte budgets off (the
 * attack at full speed), 8 connections from 8 addresses send costly JSON
 * for 4 s while a bystander chats at 20 messages/s: each of its messages
 * reaches its reader within a bound. */
static void test_costly_json_does_not_stall_fanout(void **state)
{
    (void)state;
    const char *args[] = {"--rate-limit", "0", "--byte-rate", "0", NULL};
    assert_int_equal(srv_start(&server, args), 0);
    struct wsc *tx = wsc_open(server.port, NULL), *rx = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(tx, NULL, NULL), 0);
    assert_int_equal(wsc_join(rx, NULL, NULL), 0);
    enum { B = 8, N = 80 };
    atomic_bool stop = false;
    struct json_bomber jb[B];
    for (int i = 0; i < B; i++) {
        jb[i] = (struct json_bomber){.port = server.port, .stop = &stop};
        snprintf(jb[i].from, sizeof(jb[i].from), "127.0.1.%d", i + 1);
        pthread_create(&jb[i].thread, NULL, json_bomber_main, &jb[i]);
    }
    poll(NULL, 0, 300); /* the attack is on */
    int64_t worst = 0, total = 0;
    int got = 0;
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof(text), "probe %d", i);
        int64_t t0 = mono_ms();
        assert_int_equal(wsc_send_chat(tx, i, text, ""), 0);
        /* The bombers' messages are refused (too-complex) before they are
         * parsed; anything else relayed to rx is skipped. */
        for (json_t *m; (m = wsc_expect(rx, "message", T)) != NULL;) {
            bool mine = strcmp(json_string_value(json_object_get(m, "text")), text) == 0;
            json_decref(m);
            if (mine) {
                got++;
                break;
            }
        }
        int64_t dt = mono_ms() - t0;
        worst = dt > worst ? dt : worst;
        total += dt;
        poll(NULL, 0, 50);
    }
    atomic_store(&stop, true);
    long sent = 0;
    for (int i = 0; i < B; i++) {
        pthread_join(jb[i].thread, NULL);
        sent += jb[i].sent;
    }
    fprintf(stderr,
            "hostile: %ld costly JSON messages (~30 KB each) from %d addresses; bystander: "
            "%d of %d, mean %.1f ms, worst %lld ms\n",
            sent, B, got, N, (double)total / N, (long long)worst);
    assert_int_equal(got, N);
    assert_true(sent > 1000); /* the attack really ran */
    /* Measured here: decoded on the broadcaster (70f2cfc, run with
     * PVTEST_PALAVERD=) mean 807 ms, worst 1244 ms; on the workers mean
     * 178 ms, worst 374 ms -- and on 6 December, same test, 480-740 ms
     * for both 8a56a98 and its successor (the workers' malloc arenas grew
     * and were trimmed for every message: page faults, and madvise's TLB
     * shootdowns interrupting every core). Refused by a scan before the
     * parse (pv_proto_too_complex): mean 2.6-3.3 ms, worst 12-16 ms, with
     * 6x the attack's messages. Sanitizer builds run several times slower:
     * there the bound catches a stall, not a slowdown. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const int64_t scale = 4;
#else
    const int64_t scale = 1;
#endif
    assert_true(total / N < 400 * scale);
    assert_true(worst < 1000 * scale);
    wsc_free(tx);
    wsc_free(rx);
    bystander_ok(server.port);
    assert_int_equal(srv_stop(&server), 0);
}

/* Opens a WebSocket asking for ?name=<url-encoded name>; returns the name
 * it was given and the error code it got, if any ("" when none). */
static struct wsc *join_named(const char *urlname, char *given, size_t gsz, char *code, size_t csz)
{
    char path[256];
    snprintf(path, sizeof(path), "/ws?name=%s", urlname);
    struct wsc_opts o = {.path = path};
    struct wsc *c = wsc_open(server.port, &o);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    json_t *id = wsc_expect(c, "id", T);
    assert_non_null(id);
    snprintf(given, gsz, "%s",
             json_string_value(json_object_get(json_object_get(id, "you"), "name")));
    json_decref(id);
    code[0] = '\0';
    for (json_t *j; (j = wsc_recv_json(c, 2000)) != NULL;) {
        const char *type = json_string_value(json_object_get(j, "type"));
        bool presence = strcmp(type, "presence") == 0;
        if (strcmp(type, "error") == 0)
            snprintf(code, csz, "%s", json_string_value(json_object_get(j, "code")));
        json_decref(j);
        if (presence)
            break;
    }
    return c;
}

/* Names: two people could both be "bob", look-alikes (Cyrillic о, full
 * width, case), invisible-only names and guest-name look-alikes were
 * taken, and a name could forge fields in the log. Now the nickname
 * profile refuses what cannot be shown honestly, a chosen name is one
 * person's while they are online (compared by its confusable skeleton),
 * and logged names are quoted. */
static void test_names_are_honest_and_unique(void **state)
{
    (void)state;
    assert_int_equal(srv_start(&server, NULL), 0);
    char given[256], code[64];
    struct wsc *bob = join_named("bob", given, sizeof(given), code, sizeof(code));
    assert_string_equal(given, "bob");
    assert_string_equal(code, "");
    struct {
        const char *url, *code;
    } cases[] = {
        {"BOB", "name-taken"},                         /* case */
        {"%EF%BD%82%EF%BD%8F%EF%BD%82", "name-taken"}, /* fullwidth ｂｏｂ */
        {"b%D0%BEb", "bad-name"},                      /* Cyrillic о among Latin */
        {"guest-1a2b", "bad-name"},                    /* the server's names */
        {"GUEST-ffff", "bad-name"},
        {"%E3%85%A4", "bad-name"},                             /* U+3164 alone */
        {"%E2%80%8Bbob", "bad-name"},                          /* ZWSP */
        {"a%CC%81%CC%81%CC%81%CC%81%CC%81%CC%81", "bad-name"}, /* 6 combining marks */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wsc *c = join_named(cases[i].url, given, sizeof(given), code, sizeof(code));
        if (strcmp(code, cases[i].code) != 0)
            fail_msg("?name=%s: got name \"%s\" and error \"%s\"", cases[i].url, given, code);
        assert_int_equal(strncmp(given, "guest-", 6), 0);
        wsc_free(c);
    }
    /* A rename to a look-alike of an online name: refused; to a free one: fine. */
    struct wsc *other = join_named("alice", given, sizeof(given), code, sizeof(code));
    assert_int_equal(wsc_send_text(other, "{\"type\":\"hello\",\"name\":\"Bob\",\"msgId\":7}"), 0);
    json_t *e = wsc_expect(other, "error", T);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "name-taken");
    json_decref(e);
    /* Once bob is gone, the name is free again. */
    wsc_free(bob);
    bool renamed = false;
    for (int tries = 0; tries < 50 && !renamed; tries++) {
        assert_int_equal(wsc_send_text(other, "{\"type\":\"hello\",\"name\":\"Bob\"}"), 0);
        for (json_t *j; !renamed && (j = wsc_recv_json(other, 500)) != NULL;) {
            const char *type = json_string_value(json_object_get(j, "type"));
            renamed = strcmp(type, "rename") == 0;
            bool err = strcmp(type, "error") == 0;
            json_decref(j);
            if (err)
                break;
        }
        if (!renamed)
            poll(NULL, 0, 100); /* bob's LEAVE is on its way */
    }
    assert_true(renamed);
    /* A name that tries to forge log fields stays one quoted field. */
    struct wsc *forger = join_named("x%22%20online%3D0%20peer%3D10.0.0.9%3A1234", given,
                                    sizeof(given), code, sizeof(code));
    assert_string_equal(given, "x\" online=0 peer=10.0.0.9:1234");
    assert_true(srv_log_has(&server, "name=\"x\\\" online=0 peer=10.0.0.9:1234\" online="));
    wsc_free(forger);
    wsc_free(other);
    assert_int_equal(srv_stop(&server), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_with_non_readers_does_not_crash),
        cmocka_unit_test(test_refused_after_handshake_is_evicted),
        cmocka_unit_test(test_dns_rebinding_is_refused),
        cmocka_unit_test(test_handshake_churn_is_rate_limited),
        cmocka_unit_test(test_byte_flood_is_budgeted),
        cmocka_unit_test(test_pong_flood_is_closed),
        cmocka_unit_test(test_huge_frame_header_is_refused_at_once),
        cmocka_unit_test(test_slowloris_cannot_take_the_workers),
        cmocka_unit_test(test_history_amplification_is_budgeted),
        cmocka_unit_test(test_one_slow_replayer_does_not_freeze_fanout),
        cmocka_unit_test(test_history_flood_is_fair),
        cmocka_unit_test(test_costly_json_does_not_stall_fanout),
        cmocka_unit_test(test_churn_costs_few_notices),
        cmocka_unit_test(test_names_are_honest_and_unique),
    };
    /* PVTEST_FILTER=test_costly* runs the matching tests alone. */
    if (getenv("PVTEST_FILTER"))
        cmocka_set_test_filter(getenv("PVTEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
