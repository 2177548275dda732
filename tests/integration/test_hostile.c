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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_with_non_readers_does_not_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
