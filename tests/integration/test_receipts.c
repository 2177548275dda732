/* test_receipts.c -- delivered and read positions, the read-receipts
 * setting, "seen", and typing lists, against the real palaverd and SQLite
 * (issue 18, docs/receipts.md).
 *
 * The server streams positions in rooms of at most 2 members (DMs, and
 * --receipts-max 2) and shows typing in rooms of at most 3 people online
 * (--typing-max 3), so one small set of accounts covers both sides of
 * each bound.
 *
 * Threads: one test thread. */
#include "people.h"

static char ann[256], bob[256], cat[256]; /* session headers */

static int start(void)
{
    const char *args[] = {
        "--data-dir", dir, "--registration", "open", "--receipts-max", "2", "--typing-max",
        "3",          NULL};
    return srv_start(&server, args);
}

static int setup(void **state)
{
    (void)state;
    assert_true(tmpdir_make(dir, sizeof(dir), "receipts"));
    assert_int_equal(start(), 0);
    account("ann", ann, sizeof(ann));
    account("bob", bob, sizeof(bob));
    account("cat", cat, sizeof(cat));
    return 0;
}

/* The DM between hdr's account and `user`: its wire name to out. */
static void dm_with(struct wsc *c, const char *user, char *out, size_t n)
{
    char req[128];
    snprintf(req, sizeof(req), "{\"type\":\"dm\",\"user\":\"%s\"}", user);
    json_t *j = ask(c, "dm", req);
    snprintf(out, n, "%s", str(j, "room"));
    assert_non_null(strstr(out, "dm:"));
    json_decref(j);
}

/* Bob's entry in a "receipts" frame (NULL: he is not in it). */
static json_t *position_of(json_t *frame, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(frame, "positions"), i, p)
    {
        if (strcmp(str(p, "name"), name) == 0)
            return p;
    }
    return NULL;
}

/* The next "receipts" frame of `room` c gets (within T). */
static json_t *next_receipts(struct wsc *c, const char *room)
{
    for (;;) {
        json_t *j = wsc_expect(c, "receipts", T);
        if (!j)
            srv_dump_log(&server);
        assert_non_null(j);
        if (strcmp(str(j, "room"), room) == 0)
            return j;
        json_decref(j);
    }
}

/* Says text in room without waiting for the ack: a "receipts" frame may
 * come before it (the ack waits for the commit, delivery does not). */
static void post_text(struct wsc *c, const char *room, const char *text)
{
    send_json(c, "{\"type\":\"message\",\"msgId\":1,\"room\":\"%s\",\"text\":\"%s\"}", room, text);
}

/* The rseq of the message with `text` as c receives it. */
static long long rseq_of(struct wsc *c, const char *text)
{
    json_t *m = until_text(c, text, NULL);
    long long r = num(m, "rseq");
    json_decref(m);
    return r;
}

/* Sent -> Delivered -> Read in a DM: delivery is derived by the server
 * (no frame from Bob), read comes from Bob's marker; each change reaches
 * Ann once; markers never go back; at most one frame a second per room. */
static void test_dm_delivered_then_read(void **state)
{
    (void)state;
    char dm[128];
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    /* Bob's join names his account: Ann's page can offer him a DM. */
    json_t *join = wsc_expect(a, "join", T);
    assert_non_null(join);
    assert_string_equal(str(json_object_get(join, "user"), "name"), "bob");
    assert_true(num(json_object_get(join, "user"), "account") > 0);
    assert_string_equal(str(json_object_get(join, "user"), "role"), "member");
    json_decref(join);
    dm_with(a, "bob", dm, sizeof(dm));

    post_text(a, dm, "are you there?");
    long long r1 = rseq_of(b, "are you there?");
    json_t *f = next_receipts(a, dm);
    int64_t t1 = mono_ms();
    json_t *p = position_of(f, "bob");
    assert_non_null(p);
    assert_int_equal(num(p, "delivered"), r1);
    assert_true(num(p, "read") < r1);
    json_decref(f);

    /* Bob confirms what the server already knew: no new frame for it.
     * Then he reads it: one frame, with read = r1. */
    send_json(b, "{\"type\":\"received\",\"room\":\"%s\",\"rseq\":%lld}", dm, r1);
    send_json(b, "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":%lld}", dm, r1);
    f = next_receipts(a, dm);
    int64_t t2 = mono_ms();
    assert_true(t2 - t1 >= 900); /* coalesced: one frame per room per second */
    p = position_of(f, "bob");
    assert_non_null(p);
    assert_int_equal(num(p, "read"), r1);
    assert_int_equal(num(p, "delivered"), r1);
    json_decref(f);

    /* The same marker again, and an older one: nothing moves, nothing is
     * sent. The next frame Ann gets is the next real change. */
    send_json(b, "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":%lld}", dm, r1);
    send_json(b, "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":%lld}", dm, r1 - 1);
    send_json(b, "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":0}", dm);
    post_text(a, dm, "second");
    long long r2 = rseq_of(b, "second");
    f = next_receipts(a, dm);
    p = position_of(f, "bob");
    assert_non_null(p);
    assert_int_equal(num(p, "delivered"), r2);
    assert_int_equal(num(p, "read"), r1); /* never back, never repeated */
    json_decref(f);

    /* The member list carries everyone's positions (a page opening the DM). */
    char req[256];
    snprintf(req, sizeof(req), "{\"type\":\"members\",\"room\":\"%s\"}", dm);
    json_t *ml = ask(a, "members", req);
    size_t i;
    json_t *e;
    int found = 0;
    json_array_foreach(json_object_get(ml, "members"), i, e)
    {
        if (strcmp(str(e, "name"), "bob") == 0) {
            assert_int_equal(num(e, "delivered"), r2);
            assert_int_equal(num(e, "read"), r1);
            found++;
        }
    }
    assert_int_equal(found, 1);
    json_decref(ml);
    wsc_free(a);
    wsc_free(b);
}

/* Markers name a room one is in: anything else gets the same answer as
 * a room that does not exist; a guest's markers change nothing. */
static void test_markers_from_non_members_refused(void **state)
{
    (void)state;
    char dm[128];
    struct wsc *a = open_as(ann, "/ws", NULL), *c = open_as(cat, "/ws", NULL);
    struct wsc *g = open_as(NULL, "/ws?name=gus", NULL);
    dm_with(a, "bob", dm, sizeof(dm));
    const char *kinds[] = {"read", "received", "seen"};
    for (int k = 0; k < 3; k++) {
        send_json(c, "{\"type\":\"%s\",\"room\":\"%s\",\"rseq\":1}", kinds[k], dm);
        expect_error(c, "not-a-member");
        send_json(c, "{\"type\":\"%s\",\"room\":\"no-such-room\",\"rseq\":1}", kinds[k]);
        expect_error(c, "not-a-member");
        send_json(g, "{\"type\":\"%s\",\"room\":\"%s\",\"rseq\":1}", kinds[k], dm);
        expect_error(g, "not-a-member");
    }
    send_json(c, "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":-1}", dm);
    expect_error(c, "bad-rseq");
    send_json(c, "{\"type\":\"received\",\"room\":\"%s\"}", dm);
    expect_error(c, "bad-rseq");
    wsc_free(a);
    wsc_free(c);
    wsc_free(g);
}

/* "Don't send read receipts": Bob's read position still drives his own
 * unread counts, but nobody sees it, and he sees nobody's; delivery is
 * still shown; the setting survives a restart. */
static void test_privacy_setting(void **state)
{
    (void)state;
    char dm[128];
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    struct wsc *b2 = open_as(bob, "/ws", NULL); /* Bob's other device */
    dm_with(a, "bob", dm, sizeof(dm));
    json_t *s = ask(b, "settings", "{\"type\":\"settings\",\"readReceipts\":false,\"msgId\":7}");
    assert_false(json_is_true(json_object_get(s, "readReceipts")));
    assert_int_equal(num(s, "msgId"), 7);
    json_decref(s);
    s = wsc_expect(b2, "settings", T); /* his other page shows it too */
    assert_non_null(s);
    assert_false(json_is_true(json_object_get(s, "readReceipts")));
    json_decref(s);
    /* Ann is told Bob's position again, without "read". */
    json_t *f = next_receipts(a, dm);
    json_t *p = position_of(f, "bob");
    assert_non_null(p);
    assert_null(json_object_get(p, "read"));
    json_decref(f);

    post_text(a, dm, "private one");
    long long r = rseq_of(b, "private one");
    f = next_receipts(a, dm); /* delivered: still shown */
    p = position_of(f, "bob");
    assert_int_equal(num(p, "delivered"), r);
    assert_null(json_object_get(p, "read"));
    json_decref(f);
    send_json(b, "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":%lld}", dm, r);
    json_t *rd = wsc_expect(b2, "read", T); /* his own unread counts agree */
    assert_non_null(rd);
    assert_int_equal(num(rd, "unread"), 0);
    json_decref(rd);
    /* Ann's "seen": delivered to Bob, read by nobody she may know of. */
    char req[256];
    snprintf(req, sizeof(req), "{\"type\":\"seen\",\"room\":\"%s\",\"rseq\":%lld}", dm, r);
    json_t *seen = ask(a, "seen", req);
    assert_int_equal(num(seen, "delivered"), 1); /* Bob (the asker is not counted) */
    assert_int_equal(num(seen, "of"), 1);
    assert_int_equal(num(seen, "read"), 0);
    json_decref(seen);
    /* Ann reads: Bob, who shows none, is shown none (no "read" for him). */
    send_json(a, "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":%lld}", dm, r);
    seen = ask(b, "seen", req);
    assert_null(json_object_get(seen, "read"));
    json_decref(seen);
    wsc_free(a);
    wsc_free(b);
    wsc_free(b2);

    /* Stored: after a restart Bob's setting is still off. */
    assert_int_equal(srv_stop(&server), 0);
    assert_int_equal(start(), 0);
    b = open_as(bob, "/ws", NULL);
    s = ask(b, "settings", "{\"type\":\"settings\"}");
    assert_false(json_is_true(json_object_get(s, "readReceipts")));
    json_decref(s);
    s = ask(b, "settings", "{\"type\":\"settings\",\"readReceipts\":true}");
    assert_true(json_is_true(json_object_get(s, "readReceipts")));
    json_decref(s);
    wsc_free(b);
}

/* A room above --receipts-max streams nothing, whatever its readers do;
 * anyone in it may ask who has seen a message. */
static void test_big_room_seen_on_request(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    struct wsc *c = open_as(cat, "/ws", NULL);
    send_json(a, "{\"type\":\"create\",\"room\":\"trio\",\"kind\":\"private\"}");
    json_decref(wsc_expect(a, "room", T));
    send_json(a, "{\"type\":\"invite\",\"room\":\"trio\",\"user\":\"bob\"}");
    json_decref(wsc_expect(b, "member", T));
    send_json(a, "{\"type\":\"invite\",\"room\":\"trio\",\"user\":\"cat\"}");
    json_decref(wsc_expect(c, "member", T));

    say(a, "trio", "big news");
    long long r = rseq_of(b, "big news");
    rseq_of(c, "big news");
    send_json(b, "{\"type\":\"read\",\"room\":\"trio\",\"rseq\":%lld}", r);
    send_json(c, "{\"type\":\"received\",\"room\":\"trio\",\"rseq\":%lld}", r);
    /* Different connections' requests have no order between them; each
     * connection's own do: an answer on b and on c says their markers
     * were taken before Ann asks. */
    json_decref(ask(b, "seen", "{\"type\":\"seen\",\"room\":\"trio\",\"rseq\":1}"));
    json_decref(ask(c, "seen", "{\"type\":\"seen\",\"room\":\"trio\",\"rseq\":1}"));
    json_t *seen = ask(a, "seen", "{\"type\":\"seen\",\"room\":\"trio\",\"rseq\":999}");
    assert_int_equal(num(seen, "read"), 0); /* nobody is past the end */
    json_decref(seen);
    char req[128];
    snprintf(req, sizeof(req), "{\"type\":\"seen\",\"room\":\"trio\",\"rseq\":%lld}", r);
    seen = ask(a, "seen", req);
    assert_int_equal(num(seen, "of"), 2); /* Bob and Cat: Ann asks */
    assert_int_equal(num(seen, "read"), 1);
    assert_int_equal(num(seen, "delivered"), 2); /* Bob read it, Cat has it */
    assert_string_equal(json_string_value(json_array_get(json_object_get(seen, "readers"), 0)),
                        "bob");
    json_decref(seen);
    /* And nobody got a "receipts" frame of trio: the next frame Ann gets
     * after a message of hers is its ack, then the next chat. */
    say(b, "trio", "sentinel");
    for (;;) {
        json_t *j = wsc_recv_json(a, T);
        assert_non_null(j);
        if (strcmp(str(j, "type"), "receipts") == 0 && strcmp(str(j, "room"), "trio") == 0)
            fail_msg("a room above --receipts-max streamed positions");
        bool end = strcmp(str(j, "text"), "sentinel") == 0;
        json_decref(j);
        if (end)
            break;
    }
    long markers = 0;
    char out[65536];
    assert_int_equal(http_get(server.port, "/metrics", out, sizeof(out)), 200);
    const char *m = strstr(out, "\npalaver_markers_in_total ");
    assert_non_null(m);
    markers = strtol(m + 26, NULL, 10);
    assert_true(markers >= 2);
    wsc_free(a);
    wsc_free(b);
    wsc_free(c);
}

/* The next typing list of `room` c gets within ms (NULL: none). */
static json_t *next_typing(struct wsc *c, const char *room, int ms)
{
    int64_t deadline = mono_ms() + ms;
    for (;;) {
        int left = (int)(deadline - mono_ms());
        json_t *j = left > 0 ? wsc_expect(c, "typing", left) : NULL;
        if (!j || strcmp(str(j, "room"), room) == 0)
            return j;
        json_decref(j);
    }
}

static size_t typists(const json_t *j)
{
    return json_array_size(json_object_get(j, "users"));
}

/* Typing: listed to the room at once, coalesced to one list per second,
 * ended by a message, expired when not refreshed, never given a seq,
 * never stored or replayed. */
static void test_typing_lists(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    struct wsc *c = open_as(cat, "/ws", NULL);
    /* trio has 3 members online: at --typing-max. */
    send_json(b, "{\"type\":\"typing\",\"room\":\"trio\",\"typing\":true}");
    json_t *t = next_typing(a, "trio", T);
    assert_non_null(t);
    int64_t t0 = mono_ms();
    assert_int_equal(typists(t), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(t, "users"), 0)), "bob");
    assert_null(json_object_get(t, "seq"));
    assert_null(json_object_get(t, "rseq"));
    json_decref(t);
    /* Cat starts, Bob refreshes, Cat stops and starts: one list next second. */
    send_json(c, "{\"type\":\"typing\",\"room\":\"trio\"}");
    send_json(b, "{\"type\":\"typing\",\"room\":\"trio\",\"typing\":true}");
    send_json(c, "{\"type\":\"typing\",\"room\":\"trio\",\"typing\":false}");
    send_json(c, "{\"type\":\"typing\",\"room\":\"trio\",\"typing\":true}");
    t = next_typing(a, "trio", T);
    assert_non_null(t);
    assert_true(mono_ms() - t0 >= 900);
    assert_int_equal(typists(t), 2);
    json_decref(t);
    /* Nothing more within the next second: the changes were coalesced. */
    t = next_typing(a, "trio", 1300);
    assert_null(t);

    /* Bob's message ends his typing. */
    say(b, "trio", "done now");
    t = next_typing(a, "trio", T);
    assert_non_null(t);
    assert_int_equal(typists(t), 1);
    json_decref(t);
    /* Cat never refreshes: she is forgotten about 6 s after her last word. */
    int64_t t1 = mono_ms();
    t = next_typing(a, "trio", 9000);
    assert_non_null(t);
    assert_int_equal(typists(t), 0);
    assert_true(mono_ms() - t1 >= 3000);
    json_decref(t);

    /* A non-member's typing is refused like any request for that room. */
    struct wsc *g = open_as(NULL, "/ws?name=gus", NULL);
    send_json(g, "{\"type\":\"typing\",\"room\":\"trio\"}");
    expect_error(g, "not-a-member");
    send_json(g, "{\"type\":\"typing\",\"typing\":\"yes\"}");
    expect_error(g, "bad-typing");

    /* None of it was stored or is replayed: a page of trio's history and a
     * resume from before it hold chat and room events only. */
    json_t *page = ask(a, "history", "{\"type\":\"history\",\"room\":\"trio\"}");
    char *d = json_dumps(page, 0);
    assert_null(strstr(d, "\"typing\""));
    free(d);
    json_decref(page);
    json_t *got;
    struct wsc *a2 = open_as(ann, "/ws?since=1", &got);
    d = json_dumps(got, 0);
    assert_null(strstr(d, "\"typing\""));
    free(d);
    json_decref(got);
    wsc_free(a2);

    /* The lobby has 4 online (above --typing-max 3): nothing is kept or
     * sent there; the chat message after the request comes first. */
    send_json(b, "{\"type\":\"typing\",\"typing\":true}");
    say(b, NULL, "lobby sentinel");
    for (;;) {
        json_t *j = wsc_recv_json(a, T);
        assert_non_null(j);
        if (strcmp(str(j, "type"), "typing") == 0 && strcmp(str(j, "room"), "lobby") == 0)
            fail_msg("a typing list in a room above --typing-max");
        bool end = strcmp(str(j, "text"), "lobby sentinel") == 0;
        json_decref(j);
        if (end)
            break;
    }
    wsc_free(g);
    wsc_free(a);
    wsc_free(b);
    wsc_free(c);
}

/* Typing draws on its own bucket: a burst of it spends none of the
 * person's messages; past its own bucket it is dropped and counted. */
static void test_typing_bucket(void **state)
{
    (void)state;
    struct wsc *b = open_as(bob, "/ws", NULL);
    for (int i = 0; i < 15; i++) /* 10 taken, 5 dropped: no flood yet */
        send_json(b, "{\"type\":\"typing\",\"typing\":%s}", i % 2 ? "false" : "true");
    for (int i = 0; i < 40; i++) /* the whole --rate-burst (40) of messages */
        send_json(b, "{\"type\":\"message\",\"msgId\":%d,\"text\":\"m%d\"}", i, i);
    for (int i = 0; i < 40; i++) {
        json_t *j = wsc_recv_json(b, T);
        assert_non_null(j);
        if (strcmp(str(j, "type"), "error") == 0)
            fail_msg("message refused after typing: %s", str(j, "code"));
        if (strcmp(str(j, "type"), "ack") != 0)
            i--;
        json_decref(j);
    }
    char out[65536];
    assert_int_equal(http_get(server.port, "/metrics", out, sizeof(out)), 200);
    const char *m = strstr(out, "\npalaver_typing_dropped_total ");
    assert_non_null(m);
    assert_true(strtol(m + 30, NULL, 10) >= 5);
    wsc_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dm_delivered_then_read),
        cmocka_unit_test(test_markers_from_non_members_refused),
        cmocka_unit_test(test_privacy_setting),
        cmocka_unit_test(test_big_room_seen_on_request),
        cmocka_unit_test(test_typing_lists),
        cmocka_unit_test(test_typing_bucket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
