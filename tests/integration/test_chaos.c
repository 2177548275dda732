/* Integration: chaos while a sender broadcasts continuously to three
 * receivers. At the same time:
 *  - churners connect and disconnect in rude ways (vanish after the
 *    handshake, mid-frame, after a violation);
 *  - flooders send thousands of malformed JSON messages in one go;
 *  - a reader process is frozen with SIGSTOP (it stops reading);
 *  - a silent peer keeps its socket open and never reads or answers pings
 *    (what a half-open TCP connection looks like from the server);
 *  - a vanished peer's socket is removed without FIN or RST (TCP_REPAIR,
 *    needs CAP_NET_ADMIN; skipped without it);
 *  - and the attacks of issue 12, from addresses of their own, in a loop:
 *    frame headers announcing 1.2 GB, idle TCP connections that never
 *    send a request (slowloris), costly JSON, and pages of history asked
 *    for and never read.
 * palaverd must keep serving the receivers every message in order, within
 * a bound on each message's delay, close
 * each bad client with its own reason, free every connection, and come
 * back to the memory it used before the chaos (resident set size within a
 * bound of the baseline, measured after a warm-up of the same kinds of
 * traffic). LeakSanitizer (the ASan build) checks the rest at exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "receiver.h"

#ifndef TCP_REPAIR
#define TCP_REPAIR 19
#endif

#define T 10000
#define NRECV 3

static struct srv server;

/* Heap in use, from the stats line palaverd logs on SIGUSR1 (mallinfo2). */
static long heap_kib(void)
{
    int before = srv_log_count(&server, "stats:");
    kill(server.pid, SIGUSR1);
    int64_t deadline = mono_ms() + T;
    while (srv_log_count(&server, "stats:") == before && mono_ms() < deadline)
        usleep(10 * 1000);
    return srv_log_last_number(&server, "heap ");
}

/* Clients online, as a fresh client's presence message says (itself
 * included). */
static long online_now(void)
{
    struct wsc *c = wsc_open(server.port, NULL);
    long n = -1;
    if (c && c->status == 101) {
        json_t *j = wsc_expect(c, "presence", T);
        if (j)
            n = (long)json_integer_value(json_object_get(j, "online"));
        json_decref(j);
    }
    wsc_free(c);
    return n;
}

/* Waits until exactly `want` clients are online besides the asking one. */
static bool settles_at(long want, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline) {
        if (online_now() == want + 1)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

/* ---- the rude ones ---- */

struct churner {
    pthread_t thread;
    int cycles;
    atomic_int done; /* read by the sending thread */
};

static void *churn_main(void *arg)
{
    struct churner *ch = arg;
    for (int k = 0; k < ch->cycles; k++) {
        struct wsc *c = wsc_open(server.port, NULL);
        if (!c)
            continue;
        if (c->status == 101) {
            switch (k % 4) {
            case 0: /* vanish right after the handshake */
                break;
            case 1: /* vanish in the middle of a frame header and payload */
                wsc_send_raw(c, "\x81\xfe\x10\x00\x11\x22\x33\x44{\"ty", 12);
                break;
            case 2: /* join and leave politely */
                if (wsc_join(c, NULL, NULL) == 0) {
                    wsc_send(c, true, 8, "\x03\xe8", 2);
                    wsc_wait_close(c, 2000);
                }
                break;
            case 3: /* a violation, then vanish without answering the close */
                wsc_send(c, true, 1, "\xff\xfe", 2);
                break;
            }
        }
        wsc_free(c);
        atomic_fetch_add(&ch->done, 1);
    }
    return NULL;
}

#define FLOOD 9000 /* malformed messages per flood: see test_chaos_during_broadcast */

struct flooder {
    pthread_t thread;
    int messages;
    int errors, close_code;
};

static atomic_int floods_running;

/* Thousands of malformed messages in one write; expects error replies and
 * then close 1008 once the flood outruns the rate limit. */
static void *flood_main(void *arg)
{
    struct flooder *fl = arg;
    static const char *junk[] = {
        "{",
        "not json",
        "[1,2,3]",
        "{\"type\":42}",
        "{\"type\":\"dance\"}",
        "{\"type\":\"message\"}",
        "{\"type\":\"message\",\"text\":[]}",
        "{\"type\":\"message\",\"text\":\"x\",\"text\":\"y\"}",
        "1e999999",
        "\"\\ud800\"",
        "{\"type\":\"hello\",\"name\":\"\\u0000\"}",
        "{\"a\":" /* truncated */,
    };
    struct wsc *c = wsc_open(server.port, NULL);
    if (!c || c->status != 101 || wsc_join(c, NULL, NULL) != 0) {
        wsc_free(c);
        atomic_fetch_sub(&floods_running, 1);
        return NULL;
    }
    size_t cap = (size_t)fl->messages * 64, len = 0;
    char *buf = malloc(cap);
    for (int i = 0; i < fl->messages; i++) {
        unsigned char *f;
        const char *m = junk[i % (sizeof(junk) / sizeof(junk[0]))];
        size_t n = wsc_encode(0x81, m, strlen(m), &f);
        memcpy(buf + len, f, n);
        len += n;
        free(f);
    }
    wsc_send_raw(c, buf, len);
    free(buf);
    for (;;) {
        json_t *j = wsc_recv_json(c, T);
        if (!j)
            break;
        if (strcmp(json_string_value(json_object_get(j, "type")), "error") == 0)
            fl->errors++;
        json_decref(j);
    }
    fl->close_code = c->close_code;
    if (c->close_code > 0)
        wsc_send(c, true, 8, "\x03\xf0", 2);
    wsc_free(c);
    atomic_fetch_sub(&floods_running, 1);
    return NULL;
}

/* A reader in its own process; returns its pid and writes its public id. */
static pid_t frozen_reader(char id[32])
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        close(p[0]);
        struct wsc_opts small = {.rcvbuf = 4096};
        struct wsc *c = wsc_open(server.port, &small);
        char me[32] = "";
        if (c && c->status == 101)
            wsc_join(c, NULL, me);
        if (write(p[1], me, sizeof(me)) != (ssize_t)sizeof(me))
            _exit(1);
        for (;;) { /* read until stopped; the parent kills us */
            struct wsc_frame f;
            if (wsc_recv(c, &f, 1000) == 1)
                wsc_frame_free(&f);
        }
    }
    close(p[1]);
    assert_int_equal(read(p[0], id, 32), 32);
    close(p[0]);
    assert_true(id[0] != '\0');
    return pid;
}

/* ---- the attacks of issue 12 ---- */

struct attacker {
    pthread_t thread;
    atomic_bool stop;
    int huge, refused_1009, idle, json, pages;
};

static struct wsc *open_from(const char *from)
{
    struct wsc_opts o = {.from = from};
    struct wsc *c = wsc_open(server.port, &o);
    if (c && c->status == 101 && wsc_join(c, NULL, NULL) == 0)
        return c;
    wsc_free(c);
    return NULL;
}

static void *attack_main(void *arg)
{
    struct attacker *a = arg;
    int idle_fd[16];
    for (int i = 0; i < 16; i++) { /* slowloris: connect, never send */
        idle_fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.4.1", &src.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
        dst.sin_port = htons((uint16_t)server.port);
        if (bind(idle_fd[i], (struct sockaddr *)&src, sizeof(src)) == 0 &&
            connect(idle_fd[i], (struct sockaddr *)&dst, sizeof(dst)) == 0)
            a->idle++;
    }
    size_t cap = 32000, n = 0;
    char *arr = malloc(cap);
    arr[n++] = '[';
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(arr + n, cap - n, "%s{}", i ? "," : "");
    arr[n++] = ']';
    static unsigned char junk[1 << 16];
    for (int round = 0; !atomic_load(&a->stop); round++) {
        /* A frame header announcing 1.2 GB, then 1 MiB of it. */
        struct wsc *c = open_from("127.0.4.2");
        if (c) {
            unsigned char head[14] = {0x81, 0xFF, 0, 0, 0, 0, 0x47, 0x86, 0x8C, 0x00, 1, 2, 3, 4};
            wsc_send_raw(c, head, sizeof(head));
            for (int k = 0; k < 16 && send(c->fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0; k++)
                ;
            a->huge++;
            if (wsc_wait_close(c, T) == 1009 || c->close_code == 1009)
                a->refused_1009++;
            wsc_free(c);
        }
        /* Costly JSON: 30 arrays of 10,000 {}, replies not read. */
        c = open_from("127.0.4.3");
        for (int k = 0; c && k < 30; k++)
            if (wsc_send(c, true, 1, arr, n) == 0)
                a->json++;
        wsc_free(c);
        /* Pages of history asked for and never read. */
        c = open_from("127.0.4.4");
        for (int k = 0; c && k < 20; k++)
            if (wsc_send_text(c, "{\"type\":\"history\",\"limit\":200}") == 0)
                a->pages++;
        usleep(200 * 1000);
        wsc_free(c);
    }
    for (int i = 0; i < 16; i++)
        close(idle_fd[i]);
    free(arr);
    return NULL;
}

static void wait_leave(const char *id, int timeout_ms)
{
    char needle[96];
    snprintf(needle, sizeof(needle), "leave id=%s", id);
    if (!srv_log_wait(&server, needle, timeout_ms))
        fprintf(stderr, "chaos: no '%s' in the log\n", needle);
    assert_true(srv_log_has(&server, needle));
}

/* One round of everything, at the given scale. */
static void chaos_round(int churn_cycles, int floods, int flood_messages, bool report)
{
    char sid[32], fid[32], silent_id[32], gone_id[32] = "";
    struct receiver r[NRECV];
    struct churner ch[2] = {{.cycles = churn_cycles}, {.cycles = churn_cycles}};
    struct flooder fl[4] = {{0}};

    pid_t frozen = frozen_reader(fid); /* forked before any test thread runs */
    struct wsc *sender = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(sender, NULL, sid), 0);
    for (int i = 0; i < NRECV; i++) {
        r[i] = (struct receiver){.c = wsc_open(server.port, NULL),
                                 .sender_id = sid,
                                 .want = 1 << 30,
                                 .timeout_ms = 120000,
                                 .last_seq = 0};
        assert_int_equal(wsc_join(r[i].c, NULL, NULL), 0);
        receiver_start(&r[i]);
    }
    struct wsc *silent = wsc_open(server.port, &(struct wsc_opts){.rcvbuf = 4096});
    assert_int_equal(wsc_join(silent, NULL, silent_id), 0);
    struct wsc *gone = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(gone, NULL, gone_id), 0);

    kill(frozen, SIGSTOP);
    int one = 1;
    bool repaired = setsockopt(gone->fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one)) == 0;
    close(gone->fd); /* with TCP_REPAIR on: no FIN, no RST, the socket just goes */
    gone->fd = -1;
    for (int i = 0; i < 2; i++)
        pthread_create(&ch[i].thread, NULL, churn_main, &ch[i]);
    atomic_store(&floods_running, floods);
    for (int i = 0; i < floods; i++) {
        fl[i].messages = flood_messages;
        pthread_create(&fl[i].thread, NULL, flood_main, &fl[i]);
    }
    struct attacker atk = {0}; /* both rounds: the warm-up has the same kinds of traffic */
    pthread_create(&atk.thread, NULL, attack_main, &atk);

    /* The broadcast goes on through all of it, paced at 100 messages per
     * 100 ms: under the sender's own rate limit, and the flooders' floods
     * are not. */
    int sent = 0;
    /* Bounded: a round that cannot end says what it waits for (a flood is
     * closed only when its worker takes it faster than the rate limit
     * refills, which a sanitizer build on a loaded machine may not). */
    int64_t round_end = mono_ms() + 150000;
    while (atomic_load(&ch[0].done) < ch[0].cycles || atomic_load(&ch[1].done) < ch[1].cycles ||
           atomic_load(&floods_running) > 0 || sent < 1000) {
        if (mono_ms() > round_end) {
            fprintf(stderr,
                    "chaos: the round did not end in 150 s: churners %d/%d and %d/%d cycles, "
                    "%d flooder(s) not closed, %d messages broadcast\n",
                    atomic_load(&ch[0].done), ch[0].cycles, atomic_load(&ch[1].done), ch[1].cycles,
                    atomic_load(&floods_running), sent);
            fail();
        }
        int64_t t0 = mono_ms();
        int n = send_stream(sender, sent, 100, 300, 16, T);
        assert_int_equal(n, 100);
        sent += n;
        int64_t left = t0 + 100 - mono_ms();
        if (left > 0)
            usleep((useconds_t)left * 1000);
    }
    atomic_store(&atk.stop, true);
    pthread_join(atk.thread, NULL);
    assert_true(atk.huge > 0 && atk.json > 0 && atk.pages > 0 && atk.idle > 0);
    assert_int_equal(atk.refused_1009, atk.huge);
    for (int i = 0; i < 2; i++)
        pthread_join(ch[i].thread, NULL);
    for (int i = 0; i < floods; i++) {
        pthread_join(fl[i].thread, NULL);
        assert_int_equal(fl[i].close_code, 1008);
        assert_true(fl[i].errors > 0);
    }
    int n = send_stream(sender, sent, 100, 300, 16, T);
    assert_int_equal(n, 100);
    sent += n;
    assert_int_equal(wsc_send_chat(sender, 999999, "end;", ""), 0);
    long long worst = 0;
    for (int i = 0; i < NRECV; i++) {
        receiver_join(&r[i]);
        assert_int_equal(r[i].got, sent);
        assert_int_equal(r[i].out_of_order, 0);
        worst = r[i].worst_ms > worst ? r[i].worst_ms : worst;
    }
    /* Bounded delay: every message reached every receiver within this of
     * being sent, whatever else was going on. Sanitizer builds run several
     * times slower: there the bound catches a stall, not a slowdown. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const long long bound = 8000;
#else
    const long long bound = 1000;
#endif
    if (report)
        fprintf(stderr,
                "chaos: worst delay %lld ms (bound %lld); attacks: %d 1.2 GB headers "
                "(all 1009), %d idle connections, %d costly JSON, %d unread pages\n",
                worst, bound, atk.huge, atk.idle, atk.json, atk.pages);
    assert_true(worst < bound);

    /* Each bad client was closed for its own reason. */
    wait_leave(fid, T);       /* frozen: slow consumer, or idle, then evicted */
    wait_leave(silent_id, T); /* silent: idle timeout or slow consumer, evicted */
    if (repaired)
        wait_leave(gone_id, T); /* vanished: our next write got a reset */
    kill(frozen, SIGKILL);
    waitpid(frozen, NULL, 0);
    if (report)
        fprintf(stderr,
                "chaos: %d messages to %d receivers in order; %d churn cycles, %d floods of "
                "%d malformed messages, a frozen reader, a silent peer%s\n",
                sent, NRECV, atomic_load(&ch[0].done) + atomic_load(&ch[1].done), floods,
                flood_messages,
                repaired ? " and a vanished peer (TCP_REPAIR)"
                         : " (no CAP_NET_ADMIN: no vanished peer)");
    wsc_free(silent);
    wsc_free(gone);
    for (int i = 0; i < NRECV; i++)
        wsc_free(r[i].c);
    wsc_free(sender);
}

static void test_chaos_during_broadcast(void **state)
{
    (void)state;
    const char *args[] = {"--max-clients", "300", "--max-per-ip", "0", "--rate-limit", "2000",
                          "--byte-rate", "0", "--rate-burst", "1000", "--ping-interval", "300",
                          "--idle-timeout", "1500", "--max-backlog", "262144", "--writers", "2",
                          "--io-timeout", "2000",
                          /* every leave line: under churn, those of short
                           * connections are aggregated at info level and
                           * written at debug level only */
                          "--log-level", "debug", NULL};
    assert_int_equal(srv_start(&server, args), 0);

    /* Warm-up: every worker thread serves a connection once (touching its
     * stack and buffers), then the same kinds of traffic, small; then the
     * baseline. */
    static struct wsc *all[290];
    for (int i = 0; i < 290; i++) {
        all[i] = wsc_open(server.port, NULL);
        assert_int_equal(all[i]->status, 101);
    }
    for (int i = 0; i < 290; i++)
        wsc_free(all[i]);
    /* A flood is closed once more than --rate-burst (1000) of it are
     * refused: with 2000/s refilling while its worker takes it, a flood of
     * 3000 is refused 1000 times only if taken in under half a second --
     * which a thread-sanitizer build on a busy machine is not (measured:
     * 2016 of 3000 taken, 984 refused, never closed, one round in six).
     * 9000 gives that margin three times over; the assertion is the same. */
    chaos_round(40, 1, FLOOD, false);
    assert_true(settles_at(0, T));
    long base = rss_kib(server.pid), heap_base = heap_kib();

    chaos_round(400, 4, FLOOD, true);
    assert_true(settles_at(0, T)); /* every connection was freed */
    long after = rss_kib(server.pid), heap_after = heap_kib();
    fprintf(stderr,
            "chaos: palaverd RSS %ld KiB after warm-up, %ld KiB after the chaos; heap in "
            "use %ld KiB, then %ld KiB\n",
            base, after, heap_base, heap_after);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizers' allocators keep quarantines and report no mallinfo:
     * memory is judged in the plain build; LeakSanitizer checks leaks at
     * palaverd's exit in the ASan build. */
    fprintf(stderr, "chaos: sanitizer build, memory bounds checked in the plain build only\n");
#else
    assert_true(base > 0 && after > 0 && heap_base > 0 && heap_after > 0);
    /* Memory in use is back where it was (a few KiB of caches aside). */
    assert_true(heap_after <= heap_base + heap_base / 10 + 256);
    /* The resident set also counts the allocator's free lists and newly
     * touched stack pages, so it gets more slack; anything that grew with
     * the amount of traffic would be far over this. */
    assert_true(after <= base + base / 4 + 4096);
#endif
    assert_int_equal(srv_stop(&server), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_during_broadcast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
