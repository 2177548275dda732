/* Integration: durable history. Every acknowledged message survives
 * kill -9 with its seq, seq never goes backwards across a restart, and a
 * store that fails (a database capped in size, as a full disk) keeps the
 * chat relaying, says so (healthz, metrics, a "not-stored" reply) and
 * never acknowledges what it did not store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 10000
#define MAXMSG 2000

static char dir[128];

static int setup(void **state)
{
    (void)state;
    return tmpdir_make(dir, sizeof(dir), "durable") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

/* Joins and collects the history replayed to a newcomer: seq -> text. */
static char server_id[2][32];

static int history(int port, char texts[][32], long long *max_seq)
{
    struct wsc *c = wsc_open(port, NULL);
    assert_non_null(c);
    json_t *id = wsc_expect(c, "id", T);
    assert_non_null(id);
    snprintf(server_id[1], sizeof(server_id[1]), "%s",
             json_string_value(json_object_get(id, "server")));
    json_decref(id);
    json_t *p = wsc_expect(c, "presence", T);
    assert_non_null(p);
    int n = (int)json_integer_value(json_object_get(p, "history"));
    *max_seq = json_integer_value(json_object_get(p, "lastSeq"));
    json_decref(p);
    for (int i = 0; i < n; i++) {
        json_t *m = wsc_expect(c, "message", T);
        assert_non_null(m);
        long long seq = json_integer_value(json_object_get(m, "seq"));
        if (seq > 0 && seq < MAXMSG)
            snprintf(texts[seq], 32, "%s", json_string_value(json_object_get(m, "text")));
        json_decref(m);
    }
    wsc_free(c);
    return n;
}

static void test_acked_messages_survive_kill_9(void **state)
{
    (void)state;
    struct srv s;
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/kill", dir);
    const char *args[] = {"--data-dir", sub, "--history", "5000", "--rate-limit", "0", NULL};
    static char acked[MAXMSG][32];
    int nacked = 0;
    assert_int_equal(srv_start(&s, args), 0);
    long long none = 0;
    static char before[MAXMSG][32];
    history(s.port, before, &none);
    memcpy(server_id[0], server_id[1], sizeof(server_id[0]));
    struct wsc *a = wsc_open(s.port, NULL), *b = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    /* Stream messages with 16 in flight; once 500 are acknowledged,
     * kill -9 palaverd with the window still full. */
    for (int i = 0; i < MAXMSG - 100; i++) {
        char text[32];
        snprintf(text, sizeof(text), "durable %d", i);
        assert_int_equal(wsc_send_chat(a, i, text, ""), 0);
        while (i + 1 - nacked >= 16) {
            json_t *j = wsc_recv_json(a, T);
            assert_non_null(j);
            if (strcmp(json_string_value(json_object_get(j, "type")), "ack") == 0) {
                long long seq = json_integer_value(json_object_get(j, "seq"));
                assert_true(seq > 0 && seq < MAXMSG);
                snprintf(acked[seq], 32, "durable %lld",
                         json_integer_value(json_object_get(j, "msgId")));
                nacked++;
            }
            json_decref(j);
        }
        if (nacked >= 500) {
            kill(s.pid, SIGKILL);
            break;
        }
    }
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 128 + SIGKILL);
    fprintf(stderr, "durable: %d messages acknowledged before kill -9\n", nacked);
    assert_true(nacked > 0);

    /* Restart on the same data: every acked message is there, same seq. */
    assert_int_equal(srv_start(&s, args), 0);
    static char stored[MAXMSG][32];
    long long last = 0;
    history(s.port, stored, &last);
    int missing = 0;
    long long max_acked = 0;
    for (int seq = 1; seq < MAXMSG; seq++) {
        if (!acked[seq][0])
            continue;
        if (seq > max_acked)
            max_acked = seq;
        if (strcmp(acked[seq], stored[seq]) != 0) {
            fprintf(stderr, "durable: acked seq %d '%s' not in history ('%s')\n", seq,
                    acked[seq], stored[seq]);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
    assert_true(last >= max_acked);
    /* The same history id: clients may compare seq across the restart. */
    assert_string_equal(server_id[0], server_id[1]);
    /* seq goes on from there, never backwards. */
    struct wsc *c = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    assert_int_equal(wsc_send_chat(c, 1, "after the crash", ""), 0);
    json_t *ack = wsc_expect(c, "ack", T);
    assert_non_null(ack);
    assert_true(json_integer_value(json_object_get(ack, "seq")) == last + 1);
    json_decref(ack);
    wsc_free(c);
    assert_int_equal(srv_stop(&s), 0);
}

static void test_full_store_degrades_without_false_acks(void **state)
{
    (void)state;
    struct srv s;
    char sub[200], page[65536];
    snprintf(sub, sizeof(sub), "%s/full", dir);
    /* 40 pages of 4 KiB: a few dozen 2 KiB messages fill it. */
    const char *args[] = {"--data-dir", sub, "--data-max-pages", "40", "--history", "500",
                          "--rate-limit", "0", NULL};
    static char acked[MAXMSG][32];
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *a = wsc_open(s.port, NULL), *b = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    static char text[2100];
    int acks = 0, not_stored = 0, relayed = 0;
    for (int i = 0; i < 200 && not_stored == 0; i++) {
        snprintf(text, sizeof(text), "big %d ", i);
        memset(text + strlen(text), 'y', 2000);
        text[2000] = '\0';
        assert_int_equal(wsc_send_chat(a, i, text, ""), 0);
        json_t *j;
        const char *type;
        for (;;) { /* skip notices: the answer is an ack or an error */
            j = wsc_recv_json(a, T);
            assert_non_null(j);
            type = json_string_value(json_object_get(j, "type"));
            if (strcmp(type, "ack") == 0 || strcmp(type, "error") == 0)
                break;
            json_decref(j);
        }
        if (strcmp(type, "ack") == 0) {
            long long seq = json_integer_value(json_object_get(j, "seq"));
            snprintf(acked[seq], 32, "big %d ", i);
            acks++;
        } else {
            assert_string_equal(type, "error");
            assert_string_equal(json_string_value(json_object_get(j, "code")), "not-stored");
            not_stored++;
        }
        json_decref(j);
        json_t *m = wsc_expect(b, "message", T); /* relayed either way */
        assert_non_null(m);
        relayed++;
        json_decref(m);
    }
    assert_true(not_stored == 1);
    assert_true(acks > 0);
    /* Still relaying, and telling the sender each time. */
    assert_int_equal(wsc_send_chat(a, 999, "after the disk filled", ""), 0);
    json_t *m = wsc_expect(b, "message", T);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "text")), "after the disk filled");
    json_decref(m);
    json_t *e = wsc_expect(a, "error", T);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "not-stored");
    json_decref(e);
    /* Reported: healthz detail, metrics, the log. */
    assert_int_equal(http_get(s.port, "/healthz", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "degraded: history store failed"));
    assert_int_equal(http_get(s.port, "/metrics", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "\npalaver_store_up 0\n"));
    assert_true(srv_log_has(&s, "history store failed"));
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
    fprintf(stderr, "durable: %d stored and acked, then the store filled up\n", acks);

    /* Every ack was true: those messages are in the database. */
    const char *again[] = {"--data-dir", sub, "--history", "500", NULL};
    assert_int_equal(srv_start(&s, again), 0);
    static char stored[MAXMSG][32];
    long long last = 0;
    history(s.port, stored, &last);
    for (int seq = 1; seq < MAXMSG; seq++) {
        if (acked[seq][0])
            assert_memory_equal(acked[seq], stored[seq], strlen(acked[seq]));
    }
    assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acked_messages_survive_kill_9),
        cmocka_unit_test(test_full_store_degrades_without_false_acks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
