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

/* A client that joins and then never reads: its socket fills up. */
static struct wsc *non_reader(int port)
{
    struct wsc *c = wsc_open(port, &(struct wsc_opts){.rcvbuf = 4096});
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    return c;
}

/* A bystander still gets through: joins, sends, gets its ack. */
static void bystander_ok(int port)
{
    struct wsc *c = wsc_open(port, NULL);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    assert_int_equal(wsc_send_chat(c, 1, "still here", ""), 0);
    json_t *ack = wsc_expect(c, "ack", T);
    assert_non_null(ack);
    json_decref(ack);
    wsc_free(c);
}

/* Frees the three held clients, then a bystander gets in. */
static void bystander_ok_after_leave(struct wsc **held)
{
    for (int i = 0; i < 3; i++)
        wsc_free(held[i]);
    int64_t deadline = mono_ms() + T;
    for (;;) { /* their LEAVEs free the slots */
        struct wsc *c = wsc_open(server.port, NULL);
        bool in = c && c->status == 101;
        wsc_free(c);
        if (in || mono_ms() > deadline)
            break;
        usleep(50 * 1000);
    }
    bystander_ok(server.port);
}

struct churn {
    pthread_t thread;
    int port;
    int64_t until;       /* mono_ms() deadline */
    atomic_int cycles;   /* handshakes completed */
    atomic_int refused;  /* handshakes answered with something else */
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
    const char *args[] = {"--max-clients", "64", NULL};
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
        /* One deadline for the whole round: eviction takes about a second. */
        int64_t deadline = mono_ms() + 8000;
        for (int i = 0; i < N; i++) {
            struct wsc *c = r[i].c;
            if (c && c->status == 101 && wsc_wait_close(c, 2000) == 1013) {
                /* The peer never answers: palaverd must end it. */
                lost++;
                struct wsc_frame f;
                int rc = 0;
                while (mono_ms() < deadline && (rc = wsc_recv(c, &f, 500)) != -1)
                    if (rc == 1)
                        wsc_frame_free(&f);
                if (rc == -1)
                    ended++;
            }
        }
        /* The winner (if any) leaves, freeing the slot for the next round. */
        for (int i = 0; i < N; i++)
            wsc_free(r[i].c);
        usleep(200 * 1000);
    }
    fprintf(stderr, "hostile: %d handshakes lost the admission race after 101; palaverd ended "
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
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                 path, host);
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
    const char *ok[] = {"127.0.0.1", "127.0.0.2:8080", "localhost", "LOCALHOST:1", "a.localhost",
                        "chat.lan", "chat.lan.", "Chat.LAN:8080", "example.org", "x.example.org",
                        NULL};
    const char *bad[] = {"chat.lan.attacker.example", "notchat.lan", "xexample.org",
                         "203.0.113.9", "10.255.255.254", "", ":80", "a b", "chat.lan:http",
                         "[::ffff:203.0.113.9]", "localhost.attacker.example"};
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_with_non_readers_does_not_crash),
        cmocka_unit_test(test_refused_after_handshake_is_evicted),
        cmocka_unit_test(test_dns_rebinding_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
