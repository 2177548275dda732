/* Integration: the chat protocol against a real palaverd over loopback.
 * Fanout to all but the sender, one seq order everywhere, acks, seed 000's
 * client behaviour, names, presence, join/leave, history, errors,
 * impersonation, and the SIGTERM close handshake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 5000 /* ms: generous bound for any single expected message */

static const char *str(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

static long long num(json_t *j, const char *k)
{
    return json_integer_value(json_object_get(j, k));
}

static const char *from_id(json_t *j)
{
    const char *s = json_string_value(json_object_get(json_object_get(j, "from"), "id"));
    return s ? s : "";
}

static struct wsc *join(struct srv *s, const char *path, char key[64], char id[32])
{
    struct wsc_opts o = {.path = path};
    struct wsc *c = wsc_open(s->port, &o);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    assert_true(c->accept_ok);
    assert_int_equal(wsc_join(c, key, id), 0);
    return c;
}

static void start(struct srv *s, const char *const *extra)
{
    assert_int_equal(srv_start(s, extra), 0);
}

static void stop(struct srv *s)
{
    assert_int_equal(srv_stop(s), 0); /* clean exit, no sanitizer report */
}

/* Sender exclusion, proven by order: `other` sends a marker; `sender`'s
 * next chat message must be that marker. An echo of anything `sender`
 * sent earlier would have been queued to it first. */
static void assert_no_echo(struct wsc *sender, struct wsc *other)
{
    assert_int_equal(wsc_send_chat(other, 0, "no-echo marker", ""), 0);
    json_t *m = wsc_expect(sender, "message", T);
    assert_non_null(m);
    assert_string_equal(str(m, "text"), "no-echo marker");
    json_decref(m);
}

#define NCLIENTS 8
#define NMSGS 25

static void test_fanout_all_but_sender_in_one_order(void **state)
{
    (void)state;
    struct srv s;
    struct wsc *c[NCLIENTS];
    char id[NCLIENTS][32];
    long long seq_of[NCLIENTS][NMSGS]; /* from acks */
    start(&s, NULL);
    for (int i = 0; i < NCLIENTS; i++)
        c[i] = join(&s, "/ws", NULL, id[i]);
    /* Everyone sends at once, interleaved. */
    for (int m = 0; m < NMSGS; m++) {
        for (int i = 0; i < NCLIENTS; i++) {
            char text[64];
            snprintf(text, sizeof(text), "c%d-m%d", i, m);
            assert_int_equal(wsc_send_chat(c[i], m, text, ""), 0);
        }
    }
    for (int i = 0; i < NCLIENTS; i++) {
        int acks = 0, got = 0;
        long long last_seq = 0;
        int next_from[NCLIENTS] = {0};
        while (acks < NMSGS || got < (NCLIENTS - 1) * NMSGS) {
            json_t *j = wsc_recv_json(c[i], T);
            assert_non_null(j);
            const char *type = str(j, "type");
            if (strcmp(type, "ack") == 0) {
                long long mid = num(j, "msgId");
                assert_true(mid >= 0 && mid < NMSGS);
                assert_int_equal(mid, acks); /* acks in send order */
                seq_of[i][mid] = num(j, "seq");
                acks++;
            } else if (strcmp(type, "message") == 0) {
                int sender, m;
                assert_int_equal(sscanf(str(j, "text"), "c%d-m%d", &sender, &m), 2);
                assert_int_not_equal(sender, i);              /* never our own echo */
                assert_string_equal(from_id(j), id[sender]);  /* sender named by the server */
                assert_string_equal(str(j, "clientKey"), ""); /* key never relayed */
                assert_int_equal(m, next_from[sender]);       /* per-sender order kept */
                next_from[sender]++;
                assert_true(num(j, "seq") > last_seq); /* one increasing order */
                last_seq = num(j, "seq");
                assert_true(num(j, "serverDate") > 0);
                got++;
            }
            json_decref(j);
        }
    }
    /* Every receiver saw each message under the seq its sender's ack gave:
     * check by re-deriving from the acks that all seqs are distinct. */
    for (int i = 0; i < NCLIENTS; i++)
        for (int m = 1; m < NMSGS; m++)
            assert_true(seq_of[i][m] > seq_of[i][m - 1]);
    for (int i = 0; i < NCLIENTS; i++)
        wsc_free(c[i]);
    stop(&s);
}

static void test_seq_matches_ack_at_every_receiver(void **state)
{
    (void)state;
    struct srv s;
    struct wsc *a, *b, *c;
    start(&s, NULL);
    a = join(&s, "/ws", NULL, NULL);
    b = join(&s, "/ws", NULL, NULL);
    c = join(&s, "/ws", NULL, NULL);
    for (int m = 0; m < 10; m++) {
        assert_int_equal(wsc_send_chat(a, 100 + m, "x", ""), 0);
        json_t *ack = wsc_expect(a, "ack", T);
        json_t *jb = wsc_expect(b, "message", T);
        json_t *jc = wsc_expect(c, "message", T);
        assert_non_null(ack);
        assert_non_null(jb);
        assert_non_null(jc);
        assert_int_equal(num(ack, "msgId"), 100 + m);
        assert_int_equal(num(ack, "seq"), num(jb, "seq"));
        assert_int_equal(num(ack, "seq"), num(jc, "seq"));
        assert_int_equal(num(jb, "msgId"), 100 + m);
        json_decref(ack);
        json_decref(jb);
        json_decref(jc);
    }
    wsc_free(a);
    wsc_free(b);
    wsc_free(c);
    stop(&s);
}

/* Seed 000's client: ws://host:PORT/ with subprotocol sample-protocol,
 * waits for {"type":"id"}, sends its message objects, shows "message"s. */
static void test_seed000_client_protocol(void **state)
{
    (void)state;
    struct srv s;
    struct wsc_opts seed = {.path = "/", .subprotocol = "sample-protocol"};
    start(&s, NULL);
    struct wsc *a = wsc_open(s.port, &seed), *b = wsc_open(s.port, &seed);
    assert_int_equal(a->status, 101);
    assert_true(a->accept_ok);
    assert_string_equal(a->protocol, "sample-protocol");
    json_t *id = wsc_recv_json(a, T); /* the very first message */
    assert_non_null(id);
    assert_string_equal(str(id, "type"), "id");
    assert_int_equal(strlen(str(id, "clientKey")), 36);
    assert_true(json_is_integer(json_object_get(id, "date")));
    char akey[64];
    snprintf(akey, sizeof(akey), "%s", str(id, "clientKey"));
    json_decref(id);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);

    /* Exactly what the seed sends. */
#define SEED_MSG                                                                                   \
    "{\"type\":\"message\",\"msgId\":0,\"text\":\"hello from the seed\",\"clientKey\":\"%s\","     \
    "\"date\":1500000000000}"
    char buf[256];
    snprintf(buf, sizeof(buf), SEED_MSG, akey);
    assert_int_equal(wsc_send_text(a, buf), 0);
    json_t *m = wsc_expect(b, "message", T);
    assert_non_null(m);
    assert_string_equal(str(m, "text"), "hello from the seed");
    assert_string_equal(str(m, "clientKey"), "");
    assert_int_equal(num(m, "date"), 1500000000000LL);
    assert_int_equal(num(m, "msgId"), 0);
    json_decref(m);
    assert_no_echo(a, b);
    wsc_free(a);
    wsc_free(b);
    stop(&s);
}

/* With --max-clients 1 the previous client's slot is released only when
 * the broadcaster has processed its leave: retry (bounded) until admitted. */
static struct wsc *open_retry(int port, const struct wsc_opts *o)
{
    int64_t deadline = mono_ms() + T;
    for (;;) {
        struct wsc *c = wsc_open(port, o);
        assert_non_null(c);
        if (c->status == 101)
            return c;
        assert_int_equal(c->status, 503);
        assert_true(mono_ms() < deadline);
        wsc_free(c);
    }
}

static void test_subprotocol_negotiation(void **state)
{
    (void)state;
    struct srv s;
    /* Three workers only, so connections reuse them: CivetWeb 1.15 would
     * otherwise answer a client that offered nothing with the previous
     * client's subprotocol. */
    const char *args[] = {"--max-clients", "1", "--http-workers", "2", NULL};
    start(&s, args);
    for (int round = 0; round < 4; round++) {
        struct wsc_opts with = {.path = "/", .subprotocol = "foo, sample-protocol"};
        struct wsc_opts none = {.path = "/ws"};
        struct wsc *c = open_retry(s.port, &with);
        assert_string_equal(c->protocol, "sample-protocol");
        assert_int_equal(wsc_join(c, NULL, NULL), 0);
        wsc_free(c);
        struct wsc *d = open_retry(s.port, &none);
        assert_string_equal(d->protocol, ""); /* none offered, none answered */
        assert_int_equal(wsc_join(d, NULL, NULL), 0);
        wsc_free(d);
    }
    stop(&s);
}

static void test_names_presence_join_leave(void **state)
{
    (void)state;
    struct srv s;
    char aid[32], bid[32];
    start(&s, NULL);
    struct wsc *a = join(&s, "/ws?name=ann", NULL, aid);
    struct wsc *b = join(&s, "/ws", NULL, bid);

    json_t *j = wsc_expect(a, "join", T); /* A sees B arrive */
    assert_non_null(j);
    assert_string_equal(str(json_object_get(j, "user"), "id"), bid);
    assert_int_equal(strncmp(str(json_object_get(j, "user"), "name"), "guest-", 6), 0);
    assert_int_equal(num(j, "online"), 2);
    json_decref(j);

    assert_int_equal(wsc_send_text(b, "{\"type\":\"hello\",\"name\":\"  bob \"}"), 0);
    for (int k = 0; k < 2; k++) { /* both get the rename, B included */
        j = wsc_expect(k ? b : a, "rename", T);
        assert_non_null(j);
        assert_string_equal(str(json_object_get(j, "user"), "name"), "bob");
        assert_string_equal(str(json_object_get(j, "user"), "id"), bid);
        json_decref(j);
    }
    /* A bad name is refused, to B only, and changes nothing. */
    assert_int_equal(wsc_send_text(b, "{\"type\":\"hello\",\"name\":\"bad\\u0007name\"}"), 0);
    j = wsc_expect(b, "error", T);
    assert_non_null(j);
    assert_string_equal(str(j, "code"), "bad-name");
    json_decref(j);

    /* A newcomer gets who is here. */
    struct wsc_opts o = {.path = "/ws?name=%F0%9F%98%80cy"}; /* URL-encoded emoji */
    struct wsc *c = wsc_open(s.port, &o);
    json_t *idm = wsc_expect(c, "id", T);
    assert_non_null(idm);
    assert_string_equal(str(json_object_get(idm, "you"), "name"), "\xf0\x9f\x98\x80"
                                                                  "cy");
    json_decref(idm);
    j = wsc_expect(c, "presence", T);
    assert_non_null(j);
    assert_int_equal(num(j, "online"), 3);
    json_t *users = json_object_get(j, "users"); /* everyone, the newcomer too */
    assert_int_equal(json_array_size(users), 3);
    int seen = 0;
    for (size_t i = 0; i < 3; i++) {
        const char *n = str(json_array_get(users, i), "name");
        seen |= strcmp(n, "ann") == 0   ? 1
                : strcmp(n, "bob") == 0 ? 2
                : strcmp(n, "\xf0\x9f\x98\x80"
                            "cy") == 0
                    ? 4
                    : 0;
    }
    assert_int_equal(seen, 7);
    json_decref(j);

    /* A and B are told of C (within a presence window) ... */
    for (int k = 0; k < 2; k++) {
        j = wsc_expect(k ? b : a, "join", T);
        assert_non_null(j);
        assert_string_equal(str(json_object_get(j, "user"), "name"), "\xf0\x9f\x98\x80"
                                                                     "cy");
        assert_int_equal(num(j, "online"), 3);
        json_decref(j);
    }
    /* ... and when C leaves, with the right count. */
    wsc_free(c);
    for (int k = 0; k < 2; k++) {
        j = wsc_expect(k ? b : a, "leave", T);
        assert_non_null(j);
        assert_string_equal(str(json_object_get(j, "user"), "name"), "\xf0\x9f\x98\x80"
                                                                     "cy");
        assert_int_equal(num(j, "online"), 2);
        json_decref(j);
    }
    /* An invalid ?name= gets a guest name and an error. */
    struct wsc_opts bad = {.path = "/ws?name=%01x"};
    struct wsc *d = wsc_open(s.port, &bad);
    idm = wsc_expect(d, "id", T);
    assert_non_null(idm);
    assert_int_equal(strncmp(str(json_object_get(idm, "you"), "name"), "guest-", 6), 0);
    json_decref(idm);
    j = wsc_expect(d, "error", T);
    assert_non_null(j);
    assert_string_equal(str(j, "code"), "bad-name");
    json_decref(j);
    wsc_free(d);
    wsc_free(a);
    wsc_free(b);
    stop(&s);
}

/* Many clients at once (a reconnect burst): joins are announced in
 * grouped notices, but every newcomer exactly once, and every newcomer's
 * presence lists itself and the observer. */
static void test_join_burst_announces_everyone_once(void **state)
{
    (void)state;
    enum { N = 60 };
    struct srv s;
    char oid[32], ids[N][32];
    struct wsc *c[N];
    bool announced[N] = {false};
    int notices = 0, seen = 0;

    const char *args[] = {"--max-per-ip", "0", NULL}; /* N clients from 127.0.0.1 */
    start(&s, args);
    struct wsc *observer = join(&s, "/ws", NULL, oid);
    for (int i = 0; i < N; i++) {
        c[i] = wsc_open(s.port, NULL);
        assert_int_equal(c[i]->status, 101);
    }
    for (int i = 0; i < N; i++) {
        json_t *id = wsc_expect(c[i], "id", T);
        assert_non_null(id);
        snprintf(ids[i], sizeof(ids[i]), "%s", str(json_object_get(id, "you"), "id"));
        json_decref(id);
        json_t *p = wsc_expect(c[i], "presence", T);
        assert_non_null(p);
        json_t *users = json_object_get(p, "users");
        assert_int_equal((size_t)num(p, "online"), json_array_size(users));
        int found = 0;
        for (size_t u = 0; u < json_array_size(users); u++) {
            const char *uid = str(json_array_get(users, u), "id");
            found |= strcmp(uid, ids[i]) == 0 ? 1 : strcmp(uid, oid) == 0 ? 2 : 0;
        }
        assert_int_equal(found, 3);
        json_decref(p);
    }
    while (seen < N) {
        json_t *j = wsc_expect(observer, "join", T);
        assert_non_null(j);
        notices++;
        json_t *users = json_object_get(j, "users");
        assert_true(json_array_size(users) >= 1);
        assert_string_equal(str(json_object_get(j, "user"), "id"),
                            str(json_array_get(users, 0), "id"));
        for (size_t u = 0; u < json_array_size(users); u++) {
            const char *uid = str(json_array_get(users, u), "id");
            int k = 0;
            while (k < N && strcmp(ids[k], uid) != 0)
                k++;
            assert_true(k < N); /* a newcomer of this burst */
            // cppcheck-suppress arrayIndexOutOfBoundsCond ; assert_true() above ends the test
            assert_false(announced[k]); /* announced once */
            announced[k] = true;
            seen++;
        }
        json_decref(j);
    }
    print_message("%d joins announced in %d notice(s)\n", N, notices);
    for (int i = 0; i < N; i++)
        wsc_free(c[i]);
    /* They leave together too; the observer hears of every one. */
    int left = 0;
    while (left < N) {
        json_t *j = wsc_expect(observer, "leave", T);
        assert_non_null(j);
        left += (int)json_array_size(json_object_get(j, "users"));
        json_decref(j);
    }
    assert_int_equal(left, N);
    wsc_free(observer);
    stop(&s);
}

/* Over --presence-max online, presence is cut (newest first, marked
 * truncated) and join/leave notices carry counts instead of names. */
static void test_presence_is_capped_in_large_rooms(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--presence-max", "3", NULL};
    struct wsc *c[5];
    char id4[32] = "";
    start(&s, args);
    for (int i = 0; i < 4; i++)
        c[i] = join(&s, "/ws", NULL, i == 3 ? id4 : NULL);
    /* 4 online > 3: c[0] heard of c[3] by count only. (Joins inside one
     * presence window come in one notice: count them.) */
    json_t *j = NULL;
    for (long long joined = 0; joined < 3;) { /* the joins of c[1], c[2], c[3] */
        json_decref(j);
        j = wsc_expect(c[0], "join", T);
        assert_non_null(j);
        joined += num(j, "count");
    }
    assert_int_equal(num(j, "online"), 4);
    assert_true(num(j, "count") >= 1);
    assert_null(json_object_get(j, "users"));
    json_decref(j);

    struct wsc_opts o = {.path = "/ws"};
    c[4] = wsc_open(s.port, &o);
    j = wsc_expect(c[4], "presence", T);
    assert_non_null(j);
    assert_int_equal(num(j, "online"), 5);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_t *users = json_object_get(j, "users");
    assert_int_equal(json_array_size(users), 3);
    assert_string_equal(str(json_array_get(users, 1), "id"), id4); /* newest first */
    json_decref(j);
    for (int i = 0; i < 5; i++)
        wsc_free(c[i]);
    stop(&s);
}

static void test_history_on_join(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--history", "3", NULL};
    start(&s, args);
    struct wsc *a = join(&s, "/ws", NULL, NULL);
    long long seqs[5];
    for (int m = 0; m < 5; m++) {
        char text[16];
        snprintf(text, sizeof(text), "h%d", m);
        assert_int_equal(wsc_send_chat(a, m, text, ""), 0);
        json_t *ack = wsc_expect(a, "ack", T);
        assert_non_null(ack);
        seqs[m] = num(ack, "seq");
        json_decref(ack);
    }
    struct wsc_opts o = {.path = "/ws"};
    struct wsc *b = wsc_open(s.port, &o);
    json_t *j = wsc_expect(b, "presence", T);
    assert_non_null(j);
    assert_int_equal(num(j, "history"), 3);
    assert_int_equal(num(j, "lastSeq"), seqs[4]);
    json_decref(j);
    for (int m = 2; m < 5; m++) { /* the last three, oldest first, before live */
        j = wsc_recv_json(b, T);
        assert_non_null(j);
        assert_string_equal(str(j, "type"), "message");
        assert_int_equal(num(j, "seq"), seqs[m]);
        json_decref(j);
    }
    assert_int_equal(wsc_send_chat(a, 5, "live", ""), 0);
    j = wsc_expect(b, "message", T);
    assert_non_null(j);
    assert_string_equal(str(j, "text"), "live");
    assert_true(num(j, "seq") > seqs[4]);
    json_decref(j);
    wsc_free(a);
    wsc_free(b);
    stop(&s);
}

static void expect_error(struct wsc *c, const char *send, const char *code, long long msg_id)
{
    assert_int_equal(wsc_send_text(c, send), 0);
    json_t *j = wsc_expect(c, "error", T);
    assert_non_null(j);
    assert_string_equal(str(j, "code"), code);
    assert_true(strlen(str(j, "message")) > 0);
    if (msg_id >= 0)
        assert_int_equal(num(j, "msgId"), msg_id);
    else
        assert_null(json_object_get(j, "msgId"));
    json_decref(j);
}

static void test_errors_keep_the_connection(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--max-text", "100", NULL};
    start(&s, args);
    struct wsc *a = join(&s, "/ws", NULL, NULL), *b = join(&s, "/ws", NULL, NULL);
    char big[300];
    expect_error(a, "this is not json", "bad-json", -1);
    expect_error(a, "[1,2,3]", "bad-json", -1);
    expect_error(a, "{\"type\":\"dance\",\"msgId\":3}", "unknown-type", 3);
    expect_error(a, "{\"type\":\"message\",\"msgId\":7,\"text\":\"\"}", "empty-text", 7);
    expect_error(a, "{\"type\":\"message\",\"msgId\":8,\"text\":\"   \\n \"}", "empty-text", 8);
    snprintf(big, sizeof(big), "{\"type\":\"message\",\"msgId\":9,\"text\":\"%0150d\"}", 0);
    expect_error(a, big, "text-too-long", 9);
    expect_error(a, "{\"type\":\"message\",\"msgId\":10,\"text\":5}", "bad-text", 10);
    /* None of that reached B; the connection still works. */
    assert_int_equal(wsc_send_chat(a, 11, "still here", ""), 0);
    json_t *j = wsc_expect(b, "message", T);
    assert_non_null(j);
    assert_string_equal(str(j, "text"), "still here");
    json_decref(j);
    j = wsc_expect(a, "ack", T);
    assert_non_null(j);
    assert_int_equal(num(j, "msgId"), 11);
    json_decref(j);
    wsc_free(a);
    wsc_free(b);
    stop(&s);
}

static void test_impersonation_fails(void **state)
{
    (void)state;
    struct srv s;
    char akey[64], bkey[64], aid[32], bid[32];
    start(&s, NULL);
    struct wsc *a = join(&s, "/ws", akey, aid), *b = join(&s, "/ws", bkey, bid);
    struct wsc *c = join(&s, "/ws", NULL, NULL);
    /* A claims to be B by sending B's secret key. */
    assert_int_equal(wsc_send_chat(a, 1, "i am b", bkey), 0);
    json_t *j = wsc_expect(c, "message", T);
    assert_non_null(j);
    assert_string_equal(from_id(j), aid); /* the connection decides */
    assert_string_equal(str(j, "clientKey"), "");
    json_decref(j);
    /* B is not treated as the sender: it receives the message... */
    j = wsc_expect(b, "message", T);
    assert_non_null(j);
    assert_string_equal(str(j, "text"), "i am b");
    assert_string_equal(from_id(j), aid);
    json_decref(j);
    assert_no_echo(a, c); /* ...and A gets no echo */
    wsc_free(a);
    wsc_free(b);
    wsc_free(c);
    stop(&s);
}

/* A full queue: with room for one waiting message and no patience, a burst
 * is partly refused -- but every message gets exactly one answer, an ack
 * or a "busy" error naming it. Nothing is dropped silently. */
static void test_full_queue_answers_every_message(void **state)
{
    (void)state;
    struct srv s;
    /* The rate limit is off: this burst is about the queue. */
    const char *args[] = {
        "--queue-size", "1", "--queue-timeout", "0", "--rate-limit", "0", "--byte-rate", "0", NULL};
    enum { BURST = 400 };
    static char burst[BURST * 128];
    size_t len = 0;
    bool answered[BURST] = {false};
    int acks = 0, busy = 0;

    start(&s, args);
    struct wsc *a = join(&s, "/ws", NULL, NULL), *b = join(&s, "/ws", NULL, NULL);
    /* One TCP write carrying all the frames, so the worker pushes faster
     * than the broadcaster can pop. */
    for (int i = 0; i < BURST; i++) {
        char msg[96];
        int n = snprintf(msg, sizeof(msg), "{\"type\":\"message\",\"msgId\":%d,\"text\":\"m%d\"}",
                         i, i);
        burst[len++] = (char)0x81;
        burst[len++] = (char)(0x80 | n);
        memset(burst + len, 0, 4); /* zero mask: payload as is */
        len += 4;
        memcpy(burst + len, msg, (size_t)n);
        len += (size_t)n;
    }
    assert_int_equal(wsc_send_raw(a, burst, len), 0);
    while (acks + busy < BURST) {
        json_t *j = wsc_recv_json(a, T);
        assert_non_null(j);
        const char *type = str(j, "type");
        if (strcmp(type, "ack") == 0 ||
            (strcmp(type, "error") == 0 && strcmp(str(j, "code"), "busy") == 0)) {
            long long id = num(j, "msgId");
            assert_true(id >= 0 && id < BURST);
            assert_false(answered[id]); /* exactly one answer each */
            answered[id] = true;
            if (type[0] == 'a')
                acks++;
            else
                busy++;
        }
        json_decref(j);
    }
    print_message("burst of %d: %d accepted, %d refused with busy\n", BURST, acks, busy);
    /* B got exactly the accepted ones. */
    assert_int_equal(wsc_send_chat(a, 9999, "end", ""), 0);
    int got = 0;
    for (;;) {
        json_t *j = wsc_expect(b, "message", T);
        assert_non_null(j);
        bool end = strcmp(str(j, "text"), "end") == 0;
        json_decref(j);
        if (end)
            break;
        got++;
    }
    assert_int_equal(got, acks);
    if (busy)
        assert_true(srv_log_has(&s, "refused with \"busy\""));
    wsc_free(a);
    wsc_free(b);
    stop(&s);
}

static void test_sigterm_closes_clients_with_1001(void **state)
{
    (void)state;
    struct srv s;
    start(&s, NULL);
    struct wsc *a = join(&s, "/ws", NULL, NULL), *b = join(&s, "/ws", NULL, NULL);
    assert_int_equal(wsc_send_chat(a, 1, "last words", ""), 0);
    json_t *j = wsc_expect(a, "ack", T);
    assert_non_null(j);
    json_decref(j);
    stop(&s); /* SIGTERM; exit status 0 */
    /* B gets the queued message first, then the close frame. */
    j = wsc_expect(b, "message", T);
    assert_non_null(j);
    json_decref(j);
    assert_int_equal(wsc_wait_close(b, T), 1001);
    assert_string_equal(b->close_reason, "server shutting down");
    assert_int_equal(wsc_wait_close(a, T), 1001);
    assert_true(srv_log_has(&s, "shutting down"));
    wsc_free(a);
    wsc_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fanout_all_but_sender_in_one_order),
        cmocka_unit_test(test_seq_matches_ack_at_every_receiver),
        cmocka_unit_test(test_seed000_client_protocol),
        cmocka_unit_test(test_subprotocol_negotiation),
        cmocka_unit_test(test_names_presence_join_leave),
        cmocka_unit_test(test_join_burst_announces_everyone_once),
        cmocka_unit_test(test_presence_is_capped_in_large_rooms),
        cmocka_unit_test(test_history_on_join),
        cmocka_unit_test(test_errors_keep_the_connection),
        cmocka_unit_test(test_impersonation_fails),
        cmocka_unit_test(test_full_queue_answers_every_message),
        cmocka_unit_test(test_sigterm_closes_clients_with_1001),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
