/* test_dialects.c -- the seeds' dialects against the real palaverd
 * (issue 20, docs/dialects.md): a seed 004 (plain text) client, a seed
 * 003 (echo-protocol) client and palaver's own protocol in one lobby:
 * every message reaches every dialect in its own shape, in the one seq
 * order, the seeds' clients get their own messages back; what a palaver
 * user writes cannot become markup on a seed 003 page; a malformed seed
 * 003 frame is refused in its words with a log line; the same rate limit
 * for every dialect; metrics by dialect.
 *
 * Threads: one test thread. */
#include "people.h"

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--rate-limit", "20", "--rate-burst", "10", NULL};
    return srv_start(&server, args);
}

static struct wsc *open_dialect(const char *subprotocol)
{
    struct wsc *c =
        wsc_open(server.port, &(struct wsc_opts){.path = "/", .subprotocol = subprotocol});
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    return c;
}

static json_t *next_echo(struct wsc *c)
{
    char *s = next_text(c);
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", s);
    free(s);
    return j;
}

/* A palaver-protocol reader's next chat message text, with its seq. */
static char *next_palaver(struct wsc *c, long long *seq)
{
    json_t *m;
    for (;;) {
        char *raw = next_text(c);
        m = raw ? json_loads(raw, 0, NULL) : NULL;
        free(raw);
        if (!m || strcmp(str(m, "type"), "message") == 0)
            break;
        json_decref(m);
    }
    assert_non_null(m);
    *seq = num(m, "seq");
    char *t = strdup(str(m, "text"));
    json_decref(m);
    return t;
}

static void test_three_dialects_one_lobby(void **state)
{
    (void)state;
    struct wsc *pal = open_as(NULL, "/ws", NULL);
    struct wsc *text = open_dialect(NULL);
    assert_string_equal(text->protocol, "");
    struct wsc *echo = open_dialect("echo-protocol");
    assert_string_equal(echo->protocol, "echo-protocol");
    /* Seed 003's greeting: the array of earlier messages (none yet). */
    json_t *greet = next_echo(echo);
    assert_true(json_is_array(greet));
    json_decref(greet);

    /* The plain-text client says something: everyone gets it, the sender
     * included, each in its own shape. */
    assert_int_equal(wsc_send_text(text, "hello from <seed 004>"), 0);
    char *line = next_text(text);
    assert_non_null(line);
    assert_non_null(strstr(line, ": hello from <seed 004>"));
    assert_int_equal(strncmp(line, "guest-", 6), 0);
    free(line);
    long long s1, s2, s3;
    char *t = next_palaver(pal, &s1);
    assert_string_equal(t, "hello from <seed 004>");
    free(t);
    json_t *e = next_echo(echo);
    assert_string_equal(str(e, "message"), "hello from &lt;seed 004&gt;");
    json_decref(e);

    /* Seed 003's client: its name (checked like a guest's), its avatar
     * (only a safe one is kept), its own message back. */
    assert_int_equal(
        wsc_send_text(echo,
                      "{\"name\":\"Stefano\",\"avatar\":\"https://pi.lan/me.png\","
                      "\"message\":\"joined the chatroom.\",\"date\":\"2017-09-19T14:37:15Z\"}"),
        0);
    e = next_echo(echo);
    assert_string_equal(str(e, "name"), "Stefano");
    assert_string_equal(str(e, "avatar"), "https://pi.lan/me.png");
    assert_string_equal(str(e, "message"), "joined the chatroom.");
    assert_true(json_is_integer(json_object_get(e, "date")));
    json_decref(e);
    line = next_text(text);
    assert_string_equal(line, "Stefano: joined the chatroom.");
    free(line);
    t = next_palaver(pal, &s2);
    assert_string_equal(t, "joined the chatroom.");
    free(t);
    assert_true(s2 > s1);

    /* A palaver user tries markup: text on every page, never markup on
     * seed 003's. */
    send_json(pal, "{\"type\":\"hello\",\"name\":\"mallory\"}");
    send_json(pal, "{\"type\":\"message\",\"msgId\":1,\"text\":\"<img src=x onerror=alert(1)>\"}");
    json_decref(wsc_expect(pal, "ack", T));
    e = next_echo(echo);
    assert_string_equal(str(e, "name"), "mallory");
    assert_string_equal(str(e, "message"), "&lt;img src=x onerror=alert(1)&gt;");
    assert_string_equal(str(e, "avatar"), "");
    json_decref(e);
    line = next_text(text);
    assert_string_equal(line, "mallory: <img src=x onerror=alert(1)>");
    free(line);

    /* A malformed seed 003 frame: refused in its words, logged; nothing
     * relayed (the next thing the palaver reader gets is the next message). */
    assert_int_equal(wsc_send_text(echo, "this is not JSON"), 0);
    e = next_echo(echo);
    assert_string_equal(str(e, "name"), "palaver");
    assert_non_null(strstr(str(e, "message"), "a message must be"));
    json_decref(e);
    assert_true(srv_log_wait(&server, "(echo dialect): a message must be", T));
    /* An unsafe avatar is dropped, the message kept. */
    assert_int_equal(wsc_send_text(echo, "{\"name\":\"Stefano\",\"avatar\":\"javascript:alert(1)\","
                                         "\"message\":\"still here\"}"),
                     0);
    e = next_echo(echo);
    assert_string_equal(str(e, "message"), "still here");
    assert_string_equal(str(e, "avatar"), "");
    json_decref(e);
    t = next_palaver(pal, &s3);
    assert_string_equal(t, "still here");
    free(t);
    line = next_text(text);
    assert_string_equal(line, "Stefano: still here");
    free(line);
    assert_true(s3 > s2);

    /* The order is the one seq order for everyone: a burst from all three
     * arrives at the plain-text client in the palaver reader's order. */
    char want[8][64];
    for (int i = 0; i < 4; i++) {
        char m[64];
        snprintf(m, sizeof(m), "text %d", i);
        assert_int_equal(wsc_send_text(text, m), 0);
        snprintf(m, sizeof(m), "{\"name\":\"Stefano\",\"message\":\"echo %d\"}", i);
        assert_int_equal(wsc_send_text(echo, m), 0);
    }
    for (int i = 0; i < 8; i++) {
        long long s;
        char *m = next_palaver(pal, &s);
        snprintf(want[i], sizeof(want[i]), "%s", m);
        free(m);
    }
    for (int i = 0; i < 8; i++) {
        line = next_text(text);
        assert_non_null(line);
        const char *colon = strstr(line, ": ");
        assert_non_null(colon);
        assert_string_equal(colon + 2, want[i]);
        free(line);
    }
    /* A newcomer on seed 003 gets the lobby so far as its array. */
    struct wsc *late = open_dialect("echo-protocol");
    greet = next_echo(late);
    assert_true(json_array_size(greet) >= 12);
    json_t *first = json_loads(json_string_value(json_array_get(greet, 0)), 0, NULL);
    assert_string_equal(str(first, "message"), "hello from &lt;seed 004&gt;");
    json_decref(first);
    json_decref(greet);

    /* Metrics by dialect. */
    char out[65536];
    assert_int_equal(http_get(server.port, "/metrics", out, sizeof(out)), 200);
    assert_non_null(strstr(out, "palaver_dialect_connections{dialect=\"text\"} 1\n"));
    assert_non_null(strstr(out, "palaver_dialect_connections{dialect=\"echo\"} 2\n"));
    assert_non_null(strstr(out, "palaver_dialect_messages_in_total{dialect=\"text\"} 5\n"));
    assert_non_null(strstr(out, "palaver_dialect_messages_in_total{dialect=\"echo\"} 6\n"));
    wsc_free(late);
    wsc_free(echo);
    wsc_free(text);
    wsc_free(pal);
}

/* The same rate limit for a dialect: over the burst, refused in its
 * words (a line), never relayed. */
static void test_rate_limit_in_the_dialect(void **state)
{
    (void)state;
    struct wsc *text = open_dialect(NULL), *pal = open_as(NULL, "/ws", NULL);
    /* 16 at once: the burst of 10 taken, the rest refused (fewer than the
     * burst again: a longer flood is closed 1008, as on /ws). */
    for (int i = 0; i < 16; i++)
        assert_int_equal(wsc_send_text(text, "flood"), 0);
    /* (Its first lines are the lobby so far: a newcomer's history.) */
    int lines = 0, refused = 0;
    while (lines + refused < 16) {
        char *l = next_text(text);
        assert_non_null(l);
        if (strncmp(l, "palaver: ", 9) == 0)
            refused++;
        else if (strstr(l, ": flood"))
            lines++;
        free(l);
    }
    assert_true(refused > 0);
    assert_true(lines >= 10);
    /* Exactly the lines it got back were taken (refused ones never relayed). */
    char out[65536], want[96];
    assert_int_equal(http_get(server.port, "/metrics", out, sizeof(out)), 200);
    snprintf(want, sizeof(want), "palaver_dialect_messages_in_total{dialect=\"text\"} %d\n",
             5 + lines);
    if (!strstr(out, want))
        fail_msg("want %s in\n%s", want, strstr(out, "palaver_dialect_messages_in"));
    wsc_free(text);

    /* Seed 003 names itself in every message: a new name with each one is
     * still one rename per message taken -- the refused ones rename
     * nobody (a rename costs a notice to everyone). */
    struct wsc *echo = open_dialect("echo-protocol");
    json_decref(next_echo(echo)); /* its greeting */
    for (int i = 0; i < 16; i++) {
        char m[96];
        snprintf(m, sizeof(m), "{\"name\":\"renamer%d\",\"message\":\"r\"}", i);
        assert_int_equal(wsc_send_text(echo, m), 0);
    }
    int taken = 0, said = 0;
    while (taken + said < 16) {
        json_t *e = next_echo(echo);
        if (strcmp(str(e, "name"), "palaver") == 0)
            said++;
        else if (strcmp(str(e, "message"), "r") == 0)
            taken++;
        json_decref(e);
    }
    assert_true(said > 0);
    assert_int_equal(srv_log_count(&server, "to=\"renamer"), taken);
    wsc_free(echo);
    wsc_free(pal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_dialects_one_lobby),
        cmocka_unit_test(test_rate_limit_in_the_dialect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
