/* Integration: a client that stops reading must not delay the others.
 *
 * The server runs with --io-timeout 30000: CivetWeb blocks a writer that
 * long on a full socket, so a design that wrote to the stalled client from
 * the fanout path would need far longer than the 15 s this test allows.
 * The stalled client's backlog passes --max-backlog, so palaverd closes it
 * with 1008 "slow consumer" and logs it; when it reads again it finds the
 * close frame at the end of its stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "receiver.h"

#define NRECV 3
#define NMSG 4000
#define SIZE 2000

static void test_stalled_client_is_closed_and_others_keep_flowing(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {
        "--max-backlog", "262144", "--io-timeout", "30000", "--writers", "2", "--max-per-ip", "0",
        "--rate-limit",  "0",      "--byte-rate",  "0",     NULL};
    char sid[32], pid[32], needle[128];
    struct receiver r[NRECV];

    assert_int_equal(srv_start(&s, args), 0);
    struct wsc_opts small = {.rcvbuf = 4096};
    struct wsc *stalled = wsc_open(s.port, &small);
    assert_int_equal(stalled->status, 101);
    assert_int_equal(wsc_join(stalled, NULL, sid), 0);
    /* From here on, `stalled` reads nothing until the end. */

    struct wsc *p = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(p, NULL, pid), 0);
    for (int i = 0; i < NRECV; i++) {
        r[i] = (struct receiver){.sender_id = pid, .want = NMSG, .timeout_ms = 15000};
        r[i].c = wsc_open(s.port, NULL);
        assert_int_equal(wsc_join(r[i].c, NULL, NULL), 0);
        receiver_start(&r[i]);
    }
    int64_t t0 = mono_ms();
    int acked = send_stream(p, 0, NMSG, SIZE, 64, 15000);
    for (int i = 0; i < NRECV; i++)
        receiver_join(&r[i]);
    int64_t elapsed = mono_ms() - t0;
    print_message("%d x %d-byte messages to %d readers past a stalled one: %lld ms\n", NMSG, SIZE,
                  NRECV, (long long)elapsed);

    assert_int_equal(acked, NMSG);
    for (int i = 0; i < NRECV; i++) {
        assert_int_equal(r[i].got, NMSG);
        assert_int_equal(r[i].out_of_order, 0);
    }
    snprintf(needle, sizeof(needle), "slow consumer: closing id=%s", sid);
    assert_true(srv_log_wait(&s, needle, 5000));
    /* Only the stalled client: readers that keep up are never closed, even
     * when palaverd's own writers fall behind them. */
    assert_int_equal(srv_log_count(&s, "slow consumer: closing"), 1);
    /* The blocked writer was replaced so min writers kept serving. */
    assert_true(srv_log_has(&s, "stalled on slow clients: started writer"));

    /* The stalled client reads again: its stream ends in a 1008 close. */
    assert_int_equal(wsc_wait_close(stalled, 20000), 1008);
    assert_string_equal(stalled->close_reason, "slow consumer");

    for (int i = 0; i < NRECV; i++)
        wsc_free(r[i].c);
    wsc_free(p);
    wsc_free(stalled);
    assert_int_equal(srv_stop(&s), 0);
}

/* Metric `name` of palaverd at port, or -1. */
static long metric(int port, const char *name)
{
    static char out[65536];
    if (http_get(port, "/metrics", out, sizeof(out)) != 200)
        return -1;
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = strstr(out, needle);
    return p ? strtol(p + strlen(needle), NULL, 10) : -1;
}

/* Counts c's frames until `chat` chat messages have come: how many were
 * typing lists. */
static int typing_until(struct wsc *c, int chat, int timeout_ms)
{
    int typing = 0, got = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    while (got < chat && mono_ms() < deadline) {
        json_t *j = wsc_recv_json(c, (int)(deadline - mono_ms()));
        if (!j)
            break;
        const char *t = json_string_value(json_object_get(j, "type"));
        typing += t && strcmp(t, "typing") == 0;
        got += t && strcmp(t, "message") == 0;
        json_decref(j);
    }
    assert_int_equal(got, chat);
    return typing;
}

/* Typing is the first thing shed (docs/receipts.md): a client that has
 * fallen behind gets every chat message but no typing list while it is
 * behind; one that keeps up gets both. Nobody is closed: the backlog stays
 * under --max-backlog. */
static void test_typing_is_shed_before_chat(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--max-backlog",
                          "16777216",
                          "--max-per-ip",
                          "0",
                          "--rate-limit",
                          "0",
                          "--byte-rate",
                          "0",
                          NULL};
    enum { N = 3000 };
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *behind = wsc_open(s.port, &(struct wsc_opts){.rcvbuf = 4096});
    assert_int_equal(wsc_join(behind, NULL, NULL), 0);
    struct wsc *fast = wsc_open(s.port, NULL), *p = wsc_open(s.port, NULL);
    struct wsc *q = wsc_open(s.port, NULL);
    char pid[32];
    assert_int_equal(wsc_join(fast, NULL, NULL), 0);
    assert_int_equal(wsc_join(p, NULL, pid), 0);
    assert_int_equal(wsc_join(q, NULL, NULL), 0);

    /* Before the flood: the list reaches both. */
    assert_int_equal(wsc_send_text(q, "{\"type\":\"typing\",\"typing\":true}"), 0);
    json_t *j = wsc_expect(fast, "typing", 5000);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "users")), 1);
    assert_null(json_object_get(j, "seq")); /* no place in the stream */
    json_decref(j);

    /* 6 MB of chat: more than the loopback socket holds for `behind`. */
    struct receiver r = {.c = fast, .sender_id = pid, .want = N, .timeout_ms = 30000};
    receiver_start(&r);
    assert_int_equal(send_stream(p, 0, N, SIZE, 64, 30000), N);
    receiver_join(&r);
    assert_int_equal(r.got, N);
    long shed = metric(s.port, "palaver_typing_shed_total");
    /* Now q stops and starts again, past the coalescing second: lists go
     * to the room; `behind` is far behind and gets none of them. */
    assert_int_equal(wsc_send_text(q, "{\"type\":\"typing\",\"typing\":false}"), 0);
    j = wsc_expect(fast, "typing", 5000);
    assert_non_null(j);
    json_decref(j);
    assert_true(metric(s.port, "palaver_typing_shed_total") > shed);
    /* A chat message after it: `behind` gets it, and every one before it. */
    assert_int_equal(wsc_send_chat(q, 1, "end;", ""), 0);
    int seen = typing_until(behind, N + 1, 60000);
    /* The one list from before the flood; the one p's first message made
     * (p was not typing: nothing) and q's stop were shed. */
    assert_int_equal(seen, 1);
    assert_int_equal(srv_log_count(&s, "slow consumer: closing"), 0);
    wsc_free(behind);
    wsc_free(fast);
    wsc_free(p);
    wsc_free(q);
    assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_client_is_closed_and_others_keep_flowing),
        cmocka_unit_test(test_typing_is_shed_before_chat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
