/* Integration: durable history. Every acknowledged message survives
 * kill -9 with its seq, seq never goes backwards across a restart; a
 * database that fills up (capped in size, as a full disk) makes room and
 * goes on, and one where a message cannot fit relays it, says so
 * (healthz, metrics, a "not-stored" reply) and recovers by itself; a
 * store that fails keeps the chat relaying and never acknowledges what it
 * did not store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
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
    const char *args[] = {"--data-dir", sub,           "--history", "5000", "--rate-limit",
                          "0",          "--byte-rate", "0",         NULL};
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
            fprintf(stderr, "durable: acked seq %d '%s' not in history ('%s')\n", seq, acked[seq],
                    stored[seq]);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
    assert_true(last >= max_acked);
    /* A new history id: the killed run relayed messages it had not stored
     * yet, and their seq numbers are given again from here, so a client's
     * last seq from before the crash must not compare (it gets a reset).
     * After a clean stop the id stays (test_resume.c). */
    assert_string_not_equal(server_id[0], server_id[1]);
    assert_true(srv_log_has(&s, "the last run did not stop cleanly"));
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

/* Sends one chat message from a and returns its answer: "ack" (the seq
 * in *seq) or the error's code, skipping notices; b must get it relayed. */
static const char *chat_answer(struct wsc *a, struct wsc *b, int id, const char *text,
                               long long *seq, char *reason, size_t rsz)
{
    static char code[32];
    assert_int_equal(wsc_send_chat(a, id, text, ""), 0);
    json_t *j;
    const char *type;
    for (;;) {
        j = wsc_recv_json(a, T);
        assert_non_null(j);
        type = json_string_value(json_object_get(j, "type"));
        if (strcmp(type, "ack") == 0 || strcmp(type, "error") == 0)
            break;
        json_decref(j);
    }
    if (strcmp(type, "ack") == 0) {
        *seq = json_integer_value(json_object_get(j, "seq"));
        snprintf(code, sizeof(code), "ack");
    } else {
        snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(j, "code")));
        if (reason)
            snprintf(reason, rsz, "%s", json_string_value(json_object_get(j, "message")));
    }
    json_decref(j);
    json_t *m = wsc_expect(b, "message", T); /* relayed either way */
    assert_non_null(m);
    json_decref(m);
    return code;
}

/* A database capped at 56 pages (224 KiB, as a disk that fills up; each
 * table and index takes a page even when empty, and schema 6 (rooms) added
 * five and an index entry per message: measured, 40 pages now keep the
 * newest 16 of these messages and 56 keep 29, about the 26 that 40 kept
 * before it) is
 * not a failure: palaverd learns what fits, deletes the oldest messages
 * and keeps storing -- every message acked, the newest history without a
 * hole, /healthz ok; and every ack was true. */
static void test_full_store_makes_room(void **state)
{
    (void)state;
    struct srv s;
    char sub[200], page[65536];
    snprintf(sub, sizeof(sub), "%s/full", dir);
    const char *args[] = {"--data-dir",   sub, "--data-max-pages", "56", "--history", "10",
                          "--rate-limit", "0", "--byte-rate",      "0",  NULL};
    static char acked[MAXMSG][32];
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *a = wsc_open(s.port, NULL), *b = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    static char text[2100];
    int acks = 0;
    for (int i = 0; i < 300; i++) {
        snprintf(text, sizeof(text), "big %d ", i);
        memset(text + strlen(text), 'y', 2000);
        text[2000] = '\0';
        long long seq = 0;
        const char *code = chat_answer(a, b, i, text, &seq, NULL, 0);
        assert_string_equal(code, "ack");
        snprintf(acked[seq], 32, "big %d ", i);
        acks++;
    }
    assert_true(srv_log_has(&s, "the database is full at"));
    assert_int_equal(http_get(s.port, "/healthz", page, sizeof(page)), 200);
    assert_null(strstr(page, "degraded"));
    assert_int_equal(http_get(s.port, "/metrics", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "\npalaver_store_up 1\n"));
    assert_non_null(strstr(page, "\npalaver_store_lost_total 0\n"));
    /* The newest page: contiguous up to the last, the oldest gone. */
    assert_int_equal(wsc_send_text(b, "{\"type\":\"history\",\"limit\":200}"), 0);
    json_t *h = wsc_expect(b, "history", T);
    assert_non_null(h);
    json_t *msgs = json_object_get(h, "messages");
    size_t n = json_array_size(msgs);
    fprintf(stderr, "durable: page of %zu\n", n);
    assert_true(n > 20 && n < 200);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, i), "seq")),
                         300 - (long long)n + 1 + (long long)i);
    json_decref(h);
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
    fprintf(stderr, "durable: %d acked into 224 KiB; the newest %zu kept\n", acks, n);

    /* Every ack was true: each acked message at or above the oldest one
     * kept is in the database, as sent. */
    const char *again[] = {"--data-dir", sub, "--history", "500", NULL};
    assert_int_equal(srv_start(&s, again), 0);
    static char stored[MAXMSG][32];
    long long last = 0;
    history(s.port, stored, &last);
    int lowest = 0;
    for (int seq = 1; seq < MAXMSG && !lowest; seq++)
        if (stored[seq][0])
            lowest = seq;
    assert_true(lowest > 1);
    for (int seq = lowest; seq < MAXMSG; seq++) {
        if (acked[seq][0])
            assert_memory_equal(acked[seq], stored[seq], strlen(acked[seq]));
    }
    assert_int_equal(srv_stop(&s), 0);
}

/* A message that cannot fit even after retention (a database of 8 pages,
 * a 24 KB message) is relayed and answered "not-stored", /healthz and
 * /metrics say the store is degraded, and the next message that fits is
 * stored and acked again: degraded, then recovered, without a restart. */
static void test_full_store_degrades_and_recovers(void **state)
{
    (void)state;
    struct srv s;
    char sub[200], page[65536], reason[256];
    snprintf(sub, sizeof(sub), "%s/tiny", dir);
    const char *args[] = {"--data-dir",   sub, "--data-max-pages", "8", "--history", "10",
                          "--rate-limit", "0", "--byte-rate",      "0", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *a = wsc_open(s.port, NULL), *b = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    long long seq = 0;
    assert_string_equal(chat_answer(a, b, 1, "small", &seq, NULL, 0), "ack");
    static char fat[4097];
    memset(fat, 1, 4096); /* escaped as \u0001: 24 KB of JSON */
    assert_string_equal(chat_answer(a, b, 2, fat, &seq, reason, sizeof(reason)), "not-stored");
    assert_non_null(strstr(reason, "full"));
    assert_int_equal(http_get(s.port, "/healthz", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "degraded: history database full"));
    assert_int_equal(http_get(s.port, "/metrics", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "\npalaver_store_up 0\n"));
    assert_non_null(strstr(page, "\npalaver_store_lost_total 1\n"));
    assert_true(srv_log_has(&s, "relayed but not stored"));
    assert_string_equal(chat_answer(a, b, 3, "small again", &seq, NULL, 0), "ack");
    assert_int_equal(seq, 3);
    assert_int_equal(http_get(s.port, "/healthz", page, sizeof(page)), 200);
    assert_null(strstr(page, "degraded"));
    assert_int_equal(http_get(s.port, "/metrics", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "\npalaver_store_up 1\n"));
    assert_true(srv_log_has(&s, "storing again"));
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
}

/* Counts the rows of palaver.db in d with the sqlite3 library's own
 * view, through palaverd: the history a newcomer is sent. */
static int stored_count(const char *d, long long *last)
{
    struct srv s;
    const char *args[] = {"--data-dir", d, "--history", "1000", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    static char texts[MAXMSG][32];
    int n = history(s.port, texts, last);
    assert_int_equal(srv_stop(&s), 0);
    return n;
}

static void send_some(int port, int n, const char *what)
{
    struct wsc *a = wsc_open(port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    for (int i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof(text), "%s %d", what, i);
        assert_int_equal(wsc_send_chat(a, i, text, ""), 0);
        json_t *ack = wsc_expect(a, "ack", T);
        assert_non_null(ack);
        json_decref(ack);
    }
    wsc_free(a);
}

/* What a degraded store looks like from outside: relayed to b, the sender
 * told not-stored (no ack), /healthz and /metrics say so. */
static void expect_degraded(int port, const char *healthz_needle)
{
    char page[65536];
    struct wsc *a = wsc_open(port, NULL), *b = wsc_open(port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    assert_int_equal(wsc_send_chat(a, 1, "while degraded", ""), 0);
    json_t *m;
    while ((m = wsc_expect(b, "message", T)) && /* after any history */
           strcmp(json_string_value(json_object_get(m, "text")), "while degraded") != 0)
        json_decref(m);
    assert_non_null(m);
    json_decref(m);
    json_t *e = wsc_recv_json(a, T);
    while (e && strcmp(json_string_value(json_object_get(e, "type")), "error") != 0) {
        assert_string_not_equal(json_string_value(json_object_get(e, "type")), "ack");
        json_decref(e);
        e = wsc_recv_json(a, T);
    }
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "not-stored");
    json_decref(e);
    assert_int_equal(http_get(port, "/healthz", page, sizeof(page)), 200);
    if (!strstr(page, healthz_needle))
        fail_msg("healthz without '%s': %s", healthz_needle, page);
    assert_int_equal(http_get(port, "/metrics", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "\npalaver_store_up 0\n"));
    wsc_free(a);
    wsc_free(b);
}

/* A database palaverd may read but not write (its file read-only to the
 * user palaverd runs as): history is still served, new messages are
 * relayed and reported not stored, and the file is left as it was. */
static void test_read_only_database(void **state)
{
    (void)state;
    struct srv s;
    char sub[200], db[240];
    snprintf(sub, sizeof(sub), "%s/ro", dir);
    snprintf(db, sizeof(db), "%s/palaver.db", sub);
    const char *args[] = {"--data-dir", sub, "--history", "100", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    send_some(s.port, 5, "kept");
    assert_int_equal(srv_stop(&s), 0);
    /* Root ignores file modes: palaverd runs as nobody for this part. */
    assert_int_equal(chmod(dir, 0711), 0);
    assert_int_equal(chmod(sub, 0777), 0);
    assert_int_equal(chmod(db, 0444), 0);
    const char *envs[] = {"PVTEST_UID=65534", NULL};
    assert_int_equal(srv_start_env(&s, args, envs), 0);
    assert_true(srv_log_has(&s, "the database is read-only"));
    static char texts[MAXMSG][32];
    long long last = 0;
    assert_int_equal(history(s.port, texts, &last), 5); /* still readable */
    assert_string_equal(texts[5], "kept 4");
    expect_degraded(s.port, "degraded: history store failed");
    assert_int_equal(srv_stop(&s), 0);
    /* Nothing was written: made writable again, it holds the same 5. */
    assert_int_equal(chmod(db, 0644), 0);
    assert_int_equal(stored_count(sub, &last), 5);
    assert_int_equal(last, 5);
}

/* A corrupt database: palaverd starts all the same, relays, says why it
 * stores nothing, and does not touch the file (the operator decides). */
static void test_corrupt_database(void **state)
{
    (void)state;
    struct srv s;
    char sub[200], db[240], garbage[8192];
    snprintf(sub, sizeof(sub), "%s/corrupt", dir);
    snprintf(db, sizeof(db), "%s/palaver.db", sub);
    assert_int_equal(mkdir(sub, 0700), 0);
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)(i * 131 + 7);
    FILE *f = fopen(db, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(garbage, 1, sizeof(garbage), f), sizeof(garbage));
    fclose(f);
    const char *args[] = {"--data-dir", sub, NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_true(srv_log_has(&s, "history store unavailable"));
    assert_true(srv_log_has(&s, "not a database"));
    expect_degraded(s.port, "degraded");
    assert_int_equal(srv_stop(&s), 0);
    char back[sizeof(garbage)];
    f = fopen(db, "rb");
    assert_non_null(f);
    assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(back));
    fclose(f);
    assert_memory_equal(back, garbage, sizeof(garbage));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acked_messages_survive_kill_9),
        cmocka_unit_test(test_full_store_makes_room),
        cmocka_unit_test(test_full_store_degrades_and_recovers),
        cmocka_unit_test(test_read_only_database),
        cmocka_unit_test(test_corrupt_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
