/* Integration: missed-message recovery and history paging (issue 7).
 *
 * A client that reconnects with ?since=<seq> (or says hello since) gets a
 * "resume" message and then exactly the messages after seq, in order,
 * before live ones -- no gap, no duplicate -- while another client keeps
 * sending; from memory when the ring holds them, from SQLite beyond that.
 * Too far behind, from another history or ahead of the server, it gets a
 * "reset" and the latest history. {"type":"history","before":seq} pages
 * backwards through everything stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 10000

static char dir[128];

static int setup(void **state)
{
    (void)state;
    return tmpdir_make(dir, sizeof(dir), "resume") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

static const char *type_of(json_t *j)
{
    const char *t = json_string_value(json_object_get(j, "type"));
    return t ? t : "";
}

static long long int_of(json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

/* Sends n chat messages with up to 8 unacknowledged, one per `gap_ms`;
 * last_acked follows the acks. */
struct sender {
    int port;
    int n;
    int gap_ms;
    atomic_llong last_acked;
    atomic_int sent;
    atomic_bool failed;
};

static void *send_loop(void *arg)
{
    struct sender *s = arg;
    struct wsc *c = wsc_open(s->port, NULL);
    if (!c || c->status != 101 || wsc_join(c, NULL, NULL) != 0) {
        atomic_store(&s->failed, true);
        wsc_free(c);
        return NULL;
    }
    int acked = 0;
    for (int i = 0; i < s->n; i++) {
        char text[48];
        snprintf(text, sizeof(text), "live %d", i);
        if (wsc_send_chat(c, i, text, "") != 0) {
            atomic_store(&s->failed, true);
            break;
        }
        atomic_fetch_add(&s->sent, 1);
        while (i + 1 - acked >= 8 || (i == s->n - 1 && acked < s->n)) {
            json_t *j = wsc_recv_json(c, T);
            if (!j) {
                atomic_store(&s->failed, true);
                wsc_free(c);
                return NULL;
            }
            if (strcmp(type_of(j), "ack") == 0) {
                atomic_store(&s->last_acked, int_of(j, "seq"));
                acked++;
            }
            json_decref(j);
        }
        if (s->gap_ms)
            poll(NULL, 0, s->gap_ms);
    }
    wsc_free(c);
    return NULL;
}

/* Opens a client, reads its id (the history's `server` id into server)
 * and presence. */
static struct wsc *open_client(int port, char server[32])
{
    struct wsc *c = wsc_open(port, NULL);
    assert_non_null(c);
    json_t *id = wsc_expect(c, "id", T);
    assert_non_null(id);
    snprintf(server, 32, "%s", json_string_value(json_object_get(id, "server")));
    json_decref(id);
    json_t *p = wsc_expect(c, "presence", T);
    assert_non_null(p);
    json_decref(p);
    return c;
}

/* Sends n messages "<prefix> <i>" and waits for all n acks. */
static void send_acked(struct wsc *c, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof(text), "%s %d", prefix, i);
        assert_int_equal(wsc_send_chat(c, i, text, ""), 0);
    }
    for (int acks = 0; acks < n;) {
        json_t *j = wsc_recv_json(c, T);
        assert_non_null(j);
        acks += strcmp(type_of(j), "ack") == 0;
        json_decref(j);
    }
}

static struct wsc *open_since(int port, long long since, const char *server)
{
    char path[160];
    snprintf(path, sizeof(path), "/ws?since=%lld&server=%s", since, server);
    struct wsc_opts o = {.path = path};
    struct wsc *c = wsc_open(port, &o);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    return c;
}

/* After id and presence: the resume/reset message, with no chat message
 * before it. Returns it (the caller frees). */
static json_t *expect_marker(struct wsc *c, const char *want)
{
    for (;;) {
        json_t *j = wsc_recv_json(c, T);
        assert_non_null(j);
        const char *t = type_of(j);
        assert_string_not_equal(t, "message");
        if (strcmp(t, "presence") == 0)
            assert_int_equal(int_of(j, "history"), 0);
        if (strcmp(t, "resume") == 0 || strcmp(t, "reset") == 0) {
            assert_string_equal(t, want);
            return j;
        }
        json_decref(j);
    }
}

/* Reads chat messages, asserting each is exactly *last + 1, until seq
 * `until` (or `count` messages when until is 0). */
static void read_consecutive(struct wsc *c, long long *last, long long until, int count)
{
    int got = 0;
    while (until ? *last < until : got < count) {
        json_t *j = wsc_recv_json(c, T);
        if (!j)
            fail_msg("no message after seq %lld (waiting for %lld)", *last, until);
        if (strcmp(type_of(j), "message") == 0) {
            long long seq = int_of(j, "seq");
            if (seq != *last + 1)
                fail_msg("gap or duplicate: seq %lld after %lld", seq, *last);
            *last = seq;
            got++;
        }
        json_decref(j);
    }
}

static long long metric(int port, const char *name)
{
    static char page[65536];
    char needle[128];
    assert_int_equal(http_get(port, "/metrics", page, sizeof(page)), 200);
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = strstr(page, needle);
    assert_non_null(p);
    return atoll(p + strlen(needle));
}

/* The main promise: reconnect with since while another client keeps
 * sending; each time, from the resume message on, the stream is exactly
 * the messages after since. Short absences are served from memory (the
 * ring holds 50), long ones from SQLite. */
static void resume_cycles(const char *data_dir, bool expect_disk)
{
    struct srv s;
    const char *args[] = {"--data-dir",   data_dir, "--history",   "200",
                          "--rate-limit", "0",      "--byte-rate", "0",
                          "--max-per-ip", "0",      NULL};
    assert_int_equal(srv_start(&s, args), 0);
    struct sender snd = {.port = s.port, .n = 4000, .gap_ms = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_loop, &snd), 0);

    struct wsc *r = wsc_open(s.port, NULL);
    json_t *id = wsc_expect(r, "id", T);
    assert_non_null(id);
    char server[32];
    snprintf(server, sizeof(server), "%s", json_string_value(json_object_get(id, "server")));
    json_decref(id);
    json_t *p = wsc_expect(r, "presence", T); /* history and lastSeq wanted here */
    long long last = int_of(p, "lastSeq") - int_of(p, "history");
    json_decref(p);
    int cycles = 0, far = 0;
    for (int cycle = 0; cycle < 8; cycle++) {
        read_consecutive(r, &last, 0, 20);
        wsc_free(r); /* gone without a close frame, as a sleeping laptop */
        /* Away for 10 messages (memory) or 600 (beyond the ring of 200). */
        long long away = cycle % 2 ? 600 : 10;
        int64_t deadline = mono_ms() + T;
        while (atomic_load(&snd.last_acked) < last + away && mono_ms() < deadline &&
               !atomic_load(&snd.failed))
            poll(NULL, 0, 2);
        assert_false(atomic_load(&snd.failed));
        bool finished = atomic_load(&snd.last_acked) < last + away;
        if (!finished)
            far += away > 200;
        r = open_since(s.port, last, server);
        json_t *m = expect_marker(r, "resume");
        assert_int_equal(int_of(m, "since"), last);
        if (!finished)
            assert_true(int_of(m, "history") >= away);
        json_decref(m);
        cycles++;
        if (finished)
            break;
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_false(atomic_load(&snd.failed));
    /* To the very last message: nothing missing, nothing twice. */
    read_consecutive(r, &last, atomic_load(&snd.last_acked), 0);
    wsc_free(r);
    fprintf(stderr, "resume: %d reconnects (%d beyond the ring), %lld messages followed\n", cycles,
            far, last);
    assert_true(cycles >= 4 && far >= 2);
    assert_int_equal(metric(s.port, "palaver_resumes_total"), cycles);
    assert_int_equal(metric(s.port, "palaver_resets_total"), 0);
    /* The long absences were read from the database (a short one may
     * have been too, if the sender outran this loop). */
    if (expect_disk) {
        long long reads = metric(s.port, "palaver_store_reads_total");
        assert_true(reads >= far && reads <= cycles);
    }
    assert_int_equal(srv_stop(&s), 0);
}

static void test_resume_during_continuous_sending(void **state)
{
    (void)state;
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/cycles", dir);
    resume_cycles(sub, true);
}

/* hello since on an open connection: after the resume message, the stream
 * restarts at since + 1 (repeating what this connection already had). */
static void test_hello_since_on_open_connection(void **state)
{
    (void)state;
    struct srv s;
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/hello", dir);
    const char *args[] = {"--data-dir", sub,           "--history", "10", "--rate-limit",
                          "0",          "--byte-rate", "0",         NULL};
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *a = wsc_open(s.port, NULL), *b = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    for (int i = 0; i < 100; i++) {
        char text[32];
        snprintf(text, sizeof(text), "m%d", i);
        assert_int_equal(wsc_send_chat(a, i, text, ""), 0);
    }
    long long last = 0;
    read_consecutive(b, &last, 100, 0);
    /* From the database: 30..100 (the ring holds 91..100). */
    assert_int_equal(wsc_send_text(b, "{\"type\":\"hello\",\"since\":29,\"msgId\":1}"), 0);
    json_t *m = expect_marker(b, "resume");
    assert_int_equal(int_of(m, "history"), 71);
    assert_int_equal(int_of(m, "lastSeq"), 100);
    json_decref(m);
    last = 29;
    read_consecutive(b, &last, 100, 0);
    /* From memory, and nothing missed: an empty resume. */
    assert_int_equal(wsc_send_text(b, "{\"type\":\"hello\",\"since\":100}"), 0);
    m = expect_marker(b, "resume");
    assert_int_equal(int_of(m, "history"), 0);
    json_decref(m);
    /* Live messages follow on. */
    assert_int_equal(wsc_send_chat(a, 500, "after", ""), 0);
    read_consecutive(b, &last, 101, 0);
    /* A bad since is refused with a reason. */
    assert_int_equal(wsc_send_text(b, "{\"type\":\"hello\",\"since\":-3,\"msgId\":7}"), 0);
    json_t *e = wsc_expect(b, "error", T);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "bad-since");
    assert_int_equal(int_of(e, "msgId"), 7);
    json_decref(e);
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
}

/* Every way since cannot be honoured ends in a reset with a reason and
 * the latest history, never in a gap. */
static void test_reset_paths(void **state)
{
    (void)state;
    struct srv s;
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/reset", dir);
    /* 300 messages, 200 kept on disk, 20 in memory, resume at most 150. */
    const char *args[] = {"--data-dir",
                          sub,
                          "--history",
                          "20",
                          "--history-keep",
                          "200",
                          "--resume-limit",
                          "150",
                          "--rate-limit",
                          "0",
                          "--byte-rate",
                          "0",
                          NULL};
    assert_int_equal(srv_start(&s, args), 0);
    char server[32];
    struct wsc *a = open_client(s.port, server);
    send_acked(a, 300, "x");
    struct {
        long long since;
        const char *server;
        const char *reason; /* NULL: resume */
    } cases[] = {
        {140, server, "too-far"},                  /* 160 missed: over the limit of 150 */
        {160, server, NULL},                       /* 140 missed, from disk (101..300 kept) */
        {290, server, NULL},                       /* 10 missed, from memory */
        {99, "0123456789abcdef", "other-history"}, /* another database's seq */
        {301, server, "ahead"},                    /* more than the server has */
        {300, server, NULL},                       /* nothing missed */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wsc *c = open_since(s.port, cases[i].since, cases[i].server);
        json_t *m = expect_marker(c, cases[i].reason ? "reset" : "resume");
        long long last = cases[i].since;
        if (cases[i].reason) {
            assert_string_equal(json_string_value(json_object_get(m, "reason")), cases[i].reason);
            assert_int_equal(int_of(m, "history"), 20); /* the latest 20 */
            last = 280;
        } else {
            assert_int_equal(int_of(m, "history"), 300 - cases[i].since);
        }
        json_decref(m);
        read_consecutive(c, &last, 300, 0);
        wsc_free(c);
    }
    wsc_free(a);
    /* A clean restart with the resume limit raised: since 50 is within
     * it, but 51..100 were deleted by retention. */
    assert_int_equal(srv_stop(&s), 0);
    const char *args2[] = {"--data-dir",     sub,    "--history", "20", "--history-keep", "200",
                           "--resume-limit", "1000", NULL};
    assert_int_equal(srv_start(&s, args2), 0);
    /* Across a clean restart the history keeps its id: a resume. */
    struct wsc *c = open_since(s.port, 290, server);
    json_t *r = expect_marker(c, "resume");
    assert_int_equal(int_of(r, "history"), 10);
    json_decref(r);
    long long at = 290;
    read_consecutive(c, &at, 300, 0);
    wsc_free(c);
    c = open_since(s.port, 50, server);
    json_t *m = expect_marker(c, "reset");
    assert_string_equal(json_string_value(json_object_get(m, "reason")), "too-far");
    json_decref(m);
    wsc_free(c);
    /* A malformed ?since= is refused and the usual history follows. */
    struct wsc_opts o = {.path = "/ws?since=12abc"};
    c = wsc_open(s.port, &o);
    json_t *e = wsc_expect(c, "error", T);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "bad-since");
    json_decref(e);
    json_t *p = wsc_expect(c, "presence", T);
    assert_int_equal(int_of(p, "history"), 20);
    json_decref(p);
    wsc_free(c);
    assert_int_equal(metric(s.port, "palaver_resets_total"), 1);
    assert_int_equal(srv_stop(&s), 0);
}

/* Memory only (no database): resume works within the ring, beyond it the
 * client gets a reset. */
static void test_resume_without_a_database(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--history", "30", "--rate-limit", "0", "--byte-rate", "0", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    char server[32];
    struct wsc *a = open_client(s.port, server);
    send_acked(a, 100, "y");
    struct wsc *c = open_since(s.port, 75, server);
    json_t *m = expect_marker(c, "resume");
    json_decref(m);
    long long last = 75;
    read_consecutive(c, &last, 100, 0);
    wsc_free(c);
    c = open_since(s.port, 60, server);
    m = expect_marker(c, "reset");
    assert_string_equal(json_string_value(json_object_get(m, "reason")), "too-far");
    json_decref(m);
    last = 70;
    read_consecutive(c, &last, 100, 0);
    wsc_free(c);
    wsc_free(a);
    assert_int_equal(srv_stop(&s), 0);
}

/* Pages backwards: each page is the `limit` messages before `before`,
 * oldest first; following `more` reaches the first message stored. */
static void page_through(int port, int total, int limit)
{
    struct wsc *c = wsc_open(port, NULL);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    long long before = 0, expect_top = total;
    int pages = 0, seen = 0;
    for (;;) {
        char req[128];
        snprintf(req, sizeof(req),
                 "{\"type\":\"history\",\"before\":%lld,\"limit\":%d,\"msgId\":%d}", before, limit,
                 pages);
        assert_int_equal(wsc_send_text(c, req), 0);
        json_t *h = wsc_expect(c, "history", T);
        assert_non_null(h);
        assert_int_equal(int_of(h, "msgId"), pages);
        json_t *msgs = json_object_get(h, "messages");
        size_t n = json_array_size(msgs);
        assert_true(n <= (size_t)limit);
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(msgs, i);
            assert_string_equal(type_of(m), "message");
            assert_int_equal(int_of(m, "seq"), expect_top - (long long)n + 1 + (long long)i);
        }
        seen += (int)n;
        expect_top -= (long long)n;
        pages++;
        bool more = json_is_true(json_object_get(h, "more"));
        if (n)
            before = int_of(json_array_get(msgs, 0), "seq");
        json_decref(h);
        if (!more)
            break;
        assert_true(n == (size_t)limit);
    }
    assert_int_equal(seen, total);
    assert_int_equal(expect_top, 0);
    fprintf(stderr, "history: %d messages in %d pages of %d\n", seen, pages, limit);
    wsc_free(c);
}

static void test_history_pages(void **state)
{
    (void)state;
    struct srv s;
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/pages", dir);
    const char *args[] = {"--data-dir", sub,           "--history", "25", "--rate-limit",
                          "0",          "--byte-rate", "0",         NULL};
    assert_int_equal(srv_start(&s, args), 0);
    char server[32];
    struct wsc *a = open_client(s.port, server);
    send_acked(a, 530, "page");
    page_through(s.port, 530, 100); /* the first page from memory, the rest from disk */
    page_through(s.port, 530, 7);
    assert_true(metric(s.port, "palaver_store_reads_total") > 0);
    /* Bad requests get a reason. */
    assert_int_equal(wsc_send_text(a, "{\"type\":\"history\",\"limit\":0,\"msgId\":3}"), 0);
    json_t *e = wsc_expect(a, "error", T);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "bad-history");
    json_decref(e);
    wsc_free(a);
    assert_int_equal(srv_stop(&s), 0);

    /* Without a database, pages come from memory, down to its oldest. */
    const char *mem[] = {"--history", "40", "--rate-limit", "0", "--byte-rate", "0", NULL};
    assert_int_equal(srv_start(&s, mem), 0);
    a = open_client(s.port, server);
    send_acked(a, 40, "m");
    page_through(s.port, 40, 15);
    wsc_free(a);
    assert_int_equal(srv_stop(&s), 0);
}

/* Retention by age, on disk and in memory: messages older than
 * --history-max-age are no longer replayed. */
static void test_retention_by_age(void **state)
{
    (void)state;
    struct srv s;
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/age", dir);
    const char *args[] = {"--data-dir",
                          sub,
                          "--history-max-age",
                          "2",
                          "--ping-interval",
                          "200",
                          "--rate-limit",
                          "0",
                          "--byte-rate",
                          "0",
                          NULL};
    assert_int_equal(srv_start(&s, args), 0);
    char server[32];
    struct wsc *a = open_client(s.port, server);
    send_acked(a, 10, "old");
    /* Kept at first: on disk and in memory. */
    assert_int_equal(wsc_send_text(a, "{\"type\":\"history\",\"before\":11}"), 0);
    json_t *h0 = wsc_expect(a, "history", T);
    assert_int_equal(json_array_size(json_object_get(h0, "messages")), 10);
    json_decref(h0);
    /* Each newcomer is told how much history follows; it drops to none. */
    int64_t deadline = mono_ms() + T;
    long long hist = -1;
    while (mono_ms() < deadline) {
        struct wsc *c = wsc_open(s.port, NULL);
        json_t *p = wsc_expect(c, "presence", T);
        hist = int_of(p, "history");
        json_decref(p);
        wsc_free(c);
        if (hist == 0)
            break;
        poll(NULL, 0, 100);
    }
    assert_int_equal(hist, 0);
    /* And the database let them go too: a page finds nothing. */
    deadline = mono_ms() + T;
    size_t n = 1;
    while (n && mono_ms() < deadline) {
        assert_int_equal(wsc_send_text(a, "{\"type\":\"history\",\"before\":11}"), 0);
        json_t *h = wsc_expect(a, "history", T);
        n = json_array_size(json_object_get(h, "messages"));
        json_decref(h);
        if (n)
            poll(NULL, 0, 100);
    }
    assert_int_equal(n, 0);
    wsc_free(a);
    assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_during_continuous_sending),
        cmocka_unit_test(test_hello_since_on_open_connection),
        cmocka_unit_test(test_reset_paths),
        cmocka_unit_test(test_resume_without_a_database),
        cmocka_unit_test(test_history_pages),
        cmocka_unit_test(test_retention_by_age),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
