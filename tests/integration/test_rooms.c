/* test_rooms.c -- rooms, private rooms and direct messages against the
 * real palaverd and SQLite (issue 16, docs/rooms.md): isolation on every
 * path (live, join history, resume from memory and from the database,
 * pages, the room list, member lists), per-room rseq and the global seq,
 * one resume across several rooms, unread counts across restarts,
 * announcement rooms, archive, and a kicked person leaving every room's
 * online set.
 *
 * Threads: one test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "people.h"

#define HISTORY "4" /* a small ring: resumes and pages read the database */

static char ann[256], bob[256], cat[256], dan[256]; /* session headers */

static int start(void)
{
    const char *args[] = {"--data-dir", dir, "--registration", "open", "--history", HISTORY, NULL};
    return srv_start(&server, args);
}

static int setup(void **state)
{
    (void)state;
    char out[2048], cmd[1024];
    assert_true(tmpdir_make(dir, sizeof(dir), "rooms"));
    snprintf(cmd, sizeof(cmd),
             "printf '%%s\\n' '%s' | '%s' --config /dev/null --data-dir '%s' --create-admin Ann",
             PASSWORD, PALAVERD_PATH, dir);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(run_capture(argv, NULL, out, sizeof(out)), 0);
    assert_int_equal(start(), 0);
    account("Ann", ann, sizeof(ann));
    account("bob", bob, sizeof(bob));
    account("cat", cat, sizeof(cat));
    account("dan", dan, sizeof(dan));
    return 0;
}

static void restart(void)
{
    assert_int_equal(srv_stop(&server), 0);
    assert_int_equal(start(), 0);
}

/* The entry for `room` in a rooms reply's "rooms" (NULL: none). */
static json_t *entry(json_t *list, const char *room)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(list, "rooms"), i, e)
    {
        if (strcmp(str(e, "room"), room) == 0)
            return e;
    }
    return NULL;
}

/* No element of `arr` (messages) is of room `room`. */
static void none_of(json_t *arr, const char *room)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (strcmp(str(e, "room"), room) == 0)
            fail_msg("%s message (seq %lld) of room %s leaked", str(e, "type"), num(e, "seq"),
                     room);
    }
}

/* No element of `arr` mentions `text` anywhere. */
static void nowhere(json_t *arr, const char *text)
{
    char *d = json_dumps(arr, 0);
    if (strstr(d, text))
        fail_msg("\"%s\" is still served: %.300s", text, strstr(d, text));
    free(d);
}

/* Isolation (docs/rooms.md): a private room's and a DM's messages reach
 * nobody else -- live, in a join history, in resumes from memory and from
 * the database, in pages, in the room list, in member lists -- and a
 * request for a private room gets the same answer as one for no room. */
static void test_isolation(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    struct wsc *c = open_as(cat, "/ws", NULL), *g = open_as(NULL, "/ws?name=gus", NULL);

    /* Ann's private room, with Bob invited. */
    send_json(a, "{\"type\":\"create\",\"room\":\"ops\",\"kind\":\"private\",\"topic\":\"pager\"}");
    json_t *ev = wsc_expect(a, "room", T);
    assert_non_null(ev);
    assert_string_equal(str(ev, "action"), "created");
    assert_string_equal(str(ev, "room"), "ops");
    assert_int_equal(num(ev, "rseq"), 1);
    json_decref(ev);
    send_json(a, "{\"type\":\"invite\",\"room\":\"ops\",\"user\":\"BOB\"}");
    ev = wsc_expect(b, "member", T); /* Bob hears of it: he is in */
    assert_non_null(ev);
    assert_string_equal(str(ev, "action"), "invited");
    assert_string_equal(str(json_object_get(ev, "user"), "name"), "bob");
    json_decref(ev);

    long long s1 = say(b, "ops", "secret one");
    json_t *m = until_text(a, "secret one", NULL);
    assert_string_equal(str(m, "room"), "ops");
    assert_int_equal(num(m, "seq"), s1);
    long long r1 = num(m, "rseq");
    json_decref(m);
    for (int i = 2; i <= 6; i++) { /* more than the ring holds */
        char t[32];
        snprintf(t, sizeof(t), "secret %d", i);
        say(a, "ops", t);
        m = until_text(b, t, NULL);
        assert_int_equal(num(m, "rseq"), r1 + i - 1); /* contiguous in the room */
        json_decref(m);
    }
    /* The lobby marker: Cat and the guest get it, and nothing of ops first. */
    say(a, NULL, "lobby marker");
    json_decref(until_text(c, "lobby marker", "ops"));
    json_decref(until_text(g, "lobby marker", "ops"));

    /* A DM between Bob and Cat: Dan and Ann never see it. */
    json_t *dm = ask(b, "dm", "{\"type\":\"dm\",\"user\":\"cat\",\"msgId\":5}");
    char dmname[64];
    snprintf(dmname, sizeof(dmname), "%s", str(dm, "room"));
    assert_non_null(strstr(dmname, "dm:"));
    assert_string_equal(str(json_object_get(dm, "with"), "name"), "cat");
    json_decref(dm);
    json_t *again = ask(c, "dm", "{\"type\":\"dm\",\"user\":\"bob\"}"); /* the same room */
    assert_string_equal(str(again, "room"), dmname);
    json_decref(again);
    say(c, dmname, "psst bob");
    json_decref(until_text(b, "psst bob", NULL));
    say(b, NULL, "lobby marker 2");
    json_decref(until_text(a, "lobby marker 2", dmname));
    json_decref(until_text(g, "lobby marker 2", dmname));

    /* Requests for a room one is not in: one answer, existing or not. */
    const char *denied[] = {
        "{\"type\":\"message\",\"room\":\"ops\",\"text\":\"let me in\"}",
        "{\"type\":\"history\",\"room\":\"ops\"}",
        "{\"type\":\"members\",\"room\":\"ops\"}",
        "{\"type\":\"join\",\"room\":\"ops\"}",
        "{\"type\":\"join\",\"room\":\"no such room\"}",
        "{\"type\":\"leave\",\"room\":\"ops\"}",
        "{\"type\":\"read\",\"room\":\"ops\",\"rseq\":3}",
        "{\"type\":\"invite\",\"room\":\"ops\",\"user\":\"dan\"}",
    };
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        assert_int_equal(wsc_send_text(c, denied[i]), 0);
        expect_error(c, "not-a-member");
    }
    char req[256];
    snprintf(req, sizeof(req), "{\"type\":\"message\",\"room\":\"%s\",\"text\":\"hi\"}", dmname);
    assert_int_equal(wsc_send_text(a, req), 0); /* an admin is not in others' DMs */
    expect_error(a, "not-a-member");
    assert_int_equal(wsc_send_text(g, "{\"type\":\"create\",\"room\":\"guests\"}"), 0);
    expect_error(g, "forbidden"); /* guests live in the lobby */
    assert_int_equal(wsc_send_text(g, "{\"type\":\"dm\",\"user\":\"bob\"}"), 0);
    expect_error(g, "forbidden");

    /* The room list: Cat's has no ops (not even among public rooms). */
    json_t *list = ask(c, "rooms", "{\"type\":\"rooms\"}");
    assert_null(entry(list, "ops"));
    assert_non_null(entry(list, dmname));
    assert_non_null(entry(list, "lobby"));
    char *dumped = json_dumps(list, 0);
    assert_null(strstr(dumped, "secret"));
    assert_null(strstr(dumped, "pager"));
    free(dumped);
    json_decref(list);
    list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    json_t *ops = entry(list, "ops");
    assert_non_null(ops);
    assert_string_equal(str(ops, "kind"), "private");
    assert_string_equal(str(ops, "topic"), "pager");
    assert_int_equal(num(ops, "online"), 2);
    assert_string_equal(str(json_object_get(ops, "last"), "text"), "secret 6");
    json_decref(list);

    /* Members of ops, with who is online. */
    json_t *mem = ask(b, "members", "{\"type\":\"members\",\"room\":\"ops\"}");
    assert_int_equal(num(mem, "count"), 2);
    json_decref(mem);

    /* Pages: the lobby's page, served from the database, has nothing of
     * ops or the DM; ops' page by rseq has ops' messages only. */
    json_t *page = ask(c, "history", "{\"type\":\"history\",\"limit\":200}");
    none_of(json_object_get(page, "messages"), "ops");
    none_of(json_object_get(page, "messages"), dmname);
    assert_true(json_array_size(json_object_get(page, "messages")) >= 2);
    json_decref(page);
    snprintf(req, sizeof(req), "{\"type\":\"history\",\"room\":\"ops\",\"before\":%lld}", r1 + 5);
    page = ask(b, "history", req);
    assert_string_equal(str(page, "room"), "ops");
    json_t *msgs = json_object_get(page, "messages");
    assert_true(json_array_size(msgs) >= 5);
    size_t i;
    json_t *e;
    json_array_foreach(msgs, i, e)
    {
        assert_string_equal(str(e, "room"), "ops");
        assert_true(num(e, "rseq") < r1 + 5);
        if (i)
            assert_int_equal(num(e, "rseq"), num(json_array_get(msgs, i - 1), "rseq") + 1);
    }
    assert_string_equal(str(json_array_get(msgs, json_array_size(msgs) - 1), "text"), "secret 5");
    json_decref(page);

    /* Newcomers: Dan's join history and resumes, from memory (since near
     * the end) and from the database (since 0), carry nothing of ops or
     * the DM; Bob's resume from the database has both rooms he is in. */
    json_t *got;
    wsc_free(open_as(dan, "/ws", &got));
    none_of(got, "ops");
    none_of(got, dmname);
    json_decref(got);
    snprintf(req, sizeof(req), "/ws?since=%lld", s1 + 3);
    wsc_free(open_as(dan, req, &got));
    none_of(got, "ops");
    none_of(got, dmname);
    json_decref(got);
    wsc_free(open_as(dan, "/ws?since=0", &got));
    assert_string_equal(str(json_array_get(got, 2), "type"), "resume");
    none_of(got, "ops");
    none_of(got, dmname);
    json_decref(got);
    wsc_free(open_as(NULL, "/ws?since=0&name=gwen", &got));
    none_of(got, "ops");
    none_of(got, dmname);
    json_decref(got);
    wsc_free(open_as(bob, "/ws?since=0", &got));
    bool saw_ops = false, saw_dm = false;
    json_array_foreach(got, i, e)
    {
        saw_ops |= strcmp(str(e, "room"), "ops") == 0;
        saw_dm |= strcmp(str(e, "room"), dmname) == 0;
    }
    assert_true(saw_ops && saw_dm);
    json_decref(got);

    /* After a restart (rooms and memberships from the database), the same. */
    wsc_free(a);
    wsc_free(b);
    wsc_free(c);
    wsc_free(g);
    restart();
    c = open_as(cat, "/ws?since=0", &got);
    none_of(got, "ops");
    json_decref(got);
    b = open_as(bob, "/ws", NULL);
    say(b, "ops", "after restart");
    say(b, NULL, "lobby marker 3");
    json_decref(until_text(c, "lobby marker 3", "ops"));
    list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    assert_non_null(entry(list, "ops"));
    assert_int_equal(num(entry(list, "ops"), "rseq"), r1 + 6); /* rseq carried on */
    json_decref(list);
    wsc_free(b);
    wsc_free(c);
}

/* One resume across several rooms: Bob drops; meanwhile ops, the lobby and
 * a DM he is not in keep going (more than the ring holds); his ?since=
 * brings exactly the messages he missed in his rooms, in seq order, each
 * room's rseq contiguous, no gap, no duplicate, nothing of the others. */
static void test_resume_across_rooms(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    struct wsc *c = open_as(cat, "/ws", NULL), *d = open_as(dan, "/ws", NULL);
    json_t *dm = ask(c, "dm", "{\"type\":\"dm\",\"user\":\"dan\"}");
    char dmname[64];
    snprintf(dmname, sizeof(dmname), "%s", str(dm, "room"));
    json_decref(dm);
    long long last = say(b, "ops", "before the drop");
    wsc_free(b);

    long long want_ops = 0, want_lobby = 0;
    for (int i = 0; i < 12; i++) {
        char t[32];
        snprintf(t, sizeof(t), "missed %d", i);
        if (i % 3 == 0) {
            say(a, "ops", t);
            want_ops++;
        } else if (i % 3 == 1) {
            say(c, NULL, t);
            want_lobby++;
        } else {
            say(d, dmname, t);
        }
    }
    char path[64];
    snprintf(path, sizeof(path), "/ws?since=%lld", last);
    json_t *got;
    b = open_as(bob, path, &got);
    size_t i;
    json_t *e;
    long long prev_seq = last, ops_rseq = 0, lobby_rseq = 0, n_ops = 0, n_lobby = 0;
    json_array_foreach(got, i, e)
    {
        const char *t = str(e, "type");
        if (strcmp(t, "resume") == 0)
            assert_int_equal(num(e, "history"), want_ops + want_lobby);
        if (strcmp(t, "message") != 0)
            continue;
        assert_true(num(e, "seq") > prev_seq); /* strictly increasing, no duplicate */
        prev_seq = num(e, "seq");
        long long *rs = strcmp(str(e, "room"), "ops") == 0 ? &ops_rseq : &lobby_rseq;
        assert_true(strcmp(str(e, "room"), "ops") == 0 || strcmp(str(e, "room"), "lobby") == 0);
        if (*rs)
            assert_int_equal(num(e, "rseq"), *rs + 1); /* contiguous per room */
        *rs = num(e, "rseq");
        *(strcmp(str(e, "room"), "ops") == 0 ? &n_ops : &n_lobby) += 1;
    }
    assert_int_equal(n_ops, want_ops);
    assert_int_equal(n_lobby, want_lobby);
    none_of(got, dmname);
    json_decref(got);
    wsc_free(a);
    wsc_free(b);
    wsc_free(c);
    wsc_free(d);
}

/* A bot's token speaks as its account: into a room its account is in (its
 * members get it, nobody else), never into one it is not (403, and the
 * text goes nowhere, not the lobby either). */
static void test_bots_in_rooms(void **state)
{
    (void)state;
    char out[4096], req[512], auth[256];
    struct wsc *a = open_as(ann, "/ws", NULL), *c = open_as(cat, "/ws", NULL);
    const char *who[] = {bob, cat};
    char tokens[2][128];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(post("/api/tokens", who[i], "{\"name\":\"bot\"}", out, sizeof(out)), 200);
        json_t *j = json_loads(strstr(out, "\r\n\r\n") + 4, 0, NULL);
        snprintf(tokens[i], sizeof(tokens[i]), "%s", str(j, "token"));
        json_decref(j);
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", tokens[0]);
    assert_int_equal(post("/api/messages", auth,
                          "{\"type\":\"message\",\"room\":\"ops\",\"text\":\"bot in ops\"}", out,
                          sizeof(out)),
                     200);
    json_t *m = until_text(a, "bot in ops", NULL);
    assert_string_equal(str(m, "room"), "ops");
    json_decref(m);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", tokens[1]);
    snprintf(req, sizeof(req), "{\"type\":\"message\",\"room\":\"ops\",\"text\":\"cat bot\"}");
    assert_int_equal(post("/api/messages", auth, req, out, sizeof(out)), 403);
    assert_non_null(strstr(out, "not-a-member"));
    assert_int_equal(post("/api/messages", auth,
                          "{\"type\":\"message\",\"text\":\"lobby marker 6\"}", out, sizeof(out)),
                     200);
    json_decref(until_text(a, "lobby marker 6", NULL));
    json_decref(until_text(c, "lobby marker 6", "ops"));
    json_t *page = ask(c, "history", "{\"type\":\"history\",\"limit\":200}");
    nowhere(page, "cat bot");
    json_decref(page);
    wsc_free(a);
    wsc_free(c);
}

/* Unread counts: a read marker moves forward only, reaches the person's
 * other connections, and the count survives a restart. */
static void test_unread(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    struct wsc *b2 = open_as(bob, "/ws", NULL);
    for (int i = 0; i < 5; i++)
        say(a, "ops", "unread one");
    json_t *list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    long long top = num(entry(list, "ops"), "rseq");
    json_decref(list);
    char req[128];
    snprintf(req, sizeof(req), "{\"type\":\"read\",\"room\":\"ops\",\"rseq\":%lld}", top - 2);
    assert_int_equal(wsc_send_text(b, req), 0);
    json_t *r = wsc_expect(b2, "read", T); /* the other tab's badge follows */
    assert_non_null(r);
    assert_int_equal(num(r, "rseq"), top - 2);
    assert_int_equal(num(r, "unread"), 2);
    json_decref(r);
    snprintf(req, sizeof(req), "{\"type\":\"read\",\"room\":\"ops\",\"rseq\":%lld}", top - 4);
    assert_int_equal(wsc_send_text(b, req), 0); /* backwards: ignored */
    list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    assert_int_equal(num(entry(list, "ops"), "unread"), 2);
    assert_int_equal(num(entry(list, "ops"), "lastRead"), top - 2);
    json_decref(list);
    wsc_free(a);
    wsc_free(b);
    wsc_free(b2);
    restart();
    b = open_as(bob, "/ws", NULL);
    list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    assert_int_equal(num(entry(list, "ops"), "unread"), 2);
    json_decref(list);
    wsc_free(b);
}

/* Announcement rooms: everyone may join and read, only moderators post;
 * public rooms are listed to be joined; leaving ends delivery; archived
 * rooms are read-only. */
static void test_kinds(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    assert_int_equal(wsc_send_text(b, "{\"type\":\"create\",\"room\":\"news\",\"kind\":"
                                      "\"announcement\"}"),
                     0);
    expect_error(b, "forbidden");
    assert_int_equal(wsc_send_text(a, "{\"type\":\"create\",\"room\":\"news\",\"kind\":"
                                      "\"announcement\"}"),
                     0);
    json_decref(wsc_expect(a, "room", T));
    assert_int_equal(wsc_send_text(a, "{\"type\":\"create\",\"room\":\"NEWS\"}"), 0);
    expect_error(a, "room-exists"); /* names compare as display names do */
    json_t *list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    size_t i;
    json_t *e;
    bool listed = false;
    json_array_foreach(json_object_get(list, "public"), i, e) listed |=
        strcmp(str(e, "room"), "news") == 0;
    assert_true(listed);
    json_decref(list);
    assert_int_equal(wsc_send_text(b, "{\"type\":\"join\",\"room\":\"news\"}"), 0);
    json_t *ev = wsc_expect(b, "member", T);
    assert_string_equal(str(ev, "action"), "joined");
    json_decref(ev);
    assert_int_equal(wsc_send_text(b, "{\"type\":\"message\",\"room\":\"news\",\"text\":\"hi\"}"),
                     0);
    expect_error(b, "forbidden");
    say(a, "news", "release tonight");
    json_decref(until_text(b, "release tonight", NULL));

    assert_int_equal(wsc_send_text(b, "{\"type\":\"leave\",\"room\":\"news\"}"), 0);
    ev = wsc_expect(b, "member", T); /* the leaver hears it, then nothing more */
    assert_string_equal(str(ev, "action"), "left");
    json_decref(ev);
    say(a, "news", "after bob left");
    say(a, NULL, "lobby marker 4");
    json_decref(until_text(b, "lobby marker 4", "news"));

    assert_int_equal(wsc_send_text(b, "{\"type\":\"archive\",\"room\":\"news\"}"), 0);
    expect_error(b, "forbidden"); /* admins only */
    assert_int_equal(wsc_send_text(a, "{\"type\":\"archive\",\"room\":\"news\"}"), 0);
    ev = wsc_expect(a, "room", T);
    assert_string_equal(str(ev, "action"), "archived");
    json_decref(ev);
    assert_int_equal(wsc_send_text(a, "{\"type\":\"message\",\"room\":\"news\",\"text\":\"x\"}"),
                     0);
    expect_error(a, "archived");
    wsc_free(a);
    wsc_free(b);
}

/* Rows of palaver.db (read with SQLite itself, palaverd stopped or not:
 * WAL readers see what is committed) matching `where`. */
static long long db_count(const char *where)
{
    char path[512], sql[512];
    snprintf(path, sizeof(path), "%s/palaver.db", dir);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM messages WHERE %s", where);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Deleting a room (admins): its members hear it and are out; nothing of
 * it is served again (memory, database, after a restart); its name is
 * free and a new room of that name starts empty. */
static void test_delete_room(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    assert_int_equal(wsc_send_text(a, "{\"type\":\"create\",\"room\":\"tmp\"}"), 0);
    json_decref(wsc_expect(a, "room", T));
    assert_int_equal(wsc_send_text(b, "{\"type\":\"join\",\"room\":\"tmp\"}"), 0);
    json_decref(wsc_expect(b, "member", T));
    say(b, "tmp", "short lived");
    json_decref(until_text(a, "short lived", NULL));
    assert_int_equal(wsc_send_text(b, "{\"type\":\"delete-room\",\"room\":\"tmp\"}"), 0);
    expect_error(b, "forbidden");
    assert_int_equal(wsc_send_text(a, "{\"type\":\"delete-room\",\"room\":\"tmp\"}"), 0);
    for (int i = 0; i < 2; i++) {
        json_t *ev = wsc_expect(i ? b : a, "room", T);
        assert_non_null(ev);
        assert_string_equal(str(ev, "action"), "deleted");
        json_decref(ev);
    }
    assert_int_equal(wsc_send_text(b, "{\"type\":\"message\",\"room\":\"tmp\",\"text\":\"x\"}"), 0);
    expect_error(b, "not-a-member");
    json_t *list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    assert_null(entry(list, "tmp"));
    json_decref(list);
    json_t *got;
    wsc_free(open_as(bob, "/ws?since=0", &got));
    nowhere(got, "short lived");
    json_decref(got);
    wsc_free(a);
    wsc_free(b);
    restart();
    /* In the database: the rows are tombstones (their seqs kept), the
     * text is gone from them. */
    assert_int_equal(db_count("json LIKE '%short lived%'"), 0);
    assert_true(db_count("json LIKE '%\"deleted\"%' AND json LIKE '%\"room\":\"\"%'") >= 3);
    b = open_as(bob, "/ws?since=0", &got);
    nowhere(got, "short lived");
    json_decref(got);
    a = open_as(ann, "/ws", NULL);
    assert_int_equal(wsc_send_text(a, "{\"type\":\"create\",\"room\":\"tmp\"}"), 0);
    json_decref(wsc_expect(a, "room", T));
    json_t *page = ask(a, "history", "{\"type\":\"history\",\"room\":\"tmp\"}");
    nowhere(page, "short lived");
    assert_true(json_array_size(json_object_get(page, "messages")) >= 1);
    json_decref(page);
    wsc_free(a);
    wsc_free(b);
}

static void page_texts(json_t *page, char *out, size_t n);

/* Renaming (docs/rooms.md, "Renaming"): the owner renames, a member may
 * not; the lobby, a DM, another room's name and "lobby" are refused; the
 * event says renamed with the old name; from then on no path serves the
 * old name -- live, the room list, pages, resumes from memory and from
 * the database, palaver.db's rows, after a restart -- and rseq goes on
 * contiguous. */
static void test_rename_room(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    assert_int_equal(wsc_send_text(a, "{\"type\":\"create\",\"room\":\"old-name\"}"), 0);
    json_decref(wsc_expect(a, "room", T));
    assert_int_equal(wsc_send_text(a, "{\"type\":\"create\",\"room\":\"taken\"}"), 0);
    json_decref(wsc_expect(a, "room", T));
    assert_int_equal(wsc_send_text(b, "{\"type\":\"join\",\"room\":\"old-name\"}"), 0);
    json_decref(wsc_expect(b, "member", T));
    char text[32];
    for (int i = 0; i < 6; i++) { /* more than the ring (4): some only in the database */
        snprintf(text, sizeof(text), "before %d", i);
        say(b, "old-name", text);
    }
    json_decref(until_text(a, "before 5", NULL));
    /* Who may, and which names. */
    send_json(b, "{\"type\":\"rename-room\",\"room\":\"old-name\",\"name\":\"x\"}");
    expect_error(b, "forbidden");
    send_json(a, "{\"type\":\"rename-room\",\"room\":\"lobby\",\"name\":\"x\"}");
    expect_error(a, "bad-room");
    send_json(a, "{\"type\":\"rename-room\",\"room\":\"old-name\",\"name\":\"TAKEN\"}");
    expect_error(a, "room-exists");
    send_json(a, "{\"type\":\"rename-room\",\"room\":\"old-name\",\"name\":\"Lobby\"}");
    expect_error(a, "bad-room");
    send_json(a, "{\"type\":\"rename-room\",\"room\":\"old-name\"}");
    expect_error(a, "bad-room");
    /* The rename: both members get the event. */
    send_json(a, "{\"type\":\"rename-room\",\"room\":\"old-name\",\"name\":\"new-name\"}");
    long long ev_rseq = 0;
    for (int i = 0; i < 2; i++) {
        json_t *ev = wsc_expect(i ? b : a, "room", T);
        assert_non_null(ev);
        assert_string_equal(str(ev, "action"), "renamed");
        assert_string_equal(str(ev, "room"), "new-name");
        assert_string_equal(str(ev, "was"), "old-name");
        ev_rseq = num(ev, "rseq");
        json_decref(ev);
    }
    /* Each rename rewrites the room's stored rows: one per room per minute. */
    send_json(a, "{\"type\":\"rename-room\",\"room\":\"new-name\",\"name\":\"third\"}");
    expect_error(a, "busy");
    /* The old name is no room of theirs any more; the new one goes on. */
    send_json(b, "{\"type\":\"message\",\"room\":\"old-name\",\"text\":\"x\"}");
    expect_error(b, "not-a-member");
    say(b, "new-name", "after");
    json_t *m = until_text(a, "after", NULL);
    assert_string_equal(str(m, "room"), "new-name");
    assert_int_equal(num(m, "rseq"), ev_rseq + 1);
    json_decref(m);
    json_t *list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    assert_null(entry(list, "old-name"));
    assert_non_null(entry(list, "new-name"));
    json_decref(list);
    json_t *page = ask(a, "history", "{\"type\":\"history\",\"room\":\"new-name\",\"limit\":50}");
    none_of(json_object_get(page, "messages"), "old-name");
    char texts[512];
    page_texts(page, texts, sizeof(texts));
    assert_string_equal(texts, "before 0|before 1|before 2|before 3|before 4|before 5|after|");
    json_decref(page);
    /* A resume from the start (ring and database): only the new name. */
    json_t *got;
    wsc_free(open_as(bob, "/ws?since=0", &got));
    none_of(got, "old-name");
    json_decref(got);
    wsc_free(a);
    wsc_free(b);
    restart();
    assert_int_equal(db_count("json LIKE '%\"room\":\"old-name\"%'"), 0);
    assert_true(db_count("json LIKE '%\"room\":\"new-name\"%'") >= 8);
    b = open_as(bob, "/ws?since=0", &got);
    none_of(got, "old-name");
    json_decref(got);
    list = ask(b, "rooms", "{\"type\":\"rooms\"}");
    assert_null(entry(list, "old-name"));
    assert_non_null(entry(list, "new-name"));
    json_decref(list);
    say(b, "new-name", "after restart");
    wsc_free(b);
}

/* Removing a member (docs/rooms.md): the owner (bob, a plain member of
 * the server) removes; a member may not, nor may anyone remove the owner
 * without being a moderator, nor themselves; the lobby and DMs keep their
 * people. The removed one hears it, then nothing more of the room: not
 * live, not in the room list, not after a restart; a new invitation
 * brings them back. */
static void test_remove_member(void **state)
{
    (void)state;
    struct wsc *b = open_as(bob, "/ws", NULL), *c = open_as(cat, "/ws", NULL),
               *d = open_as(dan, "/ws", NULL);
    assert_int_equal(
        wsc_send_text(b, "{\"type\":\"create\",\"room\":\"crew\",\"kind\":\"private\"}"), 0);
    json_decref(wsc_expect(b, "room", T));
    send_json(b, "{\"type\":\"invite\",\"room\":\"crew\",\"user\":\"cat\"}");
    json_decref(wsc_expect(c, "member", T));
    send_json(b, "{\"type\":\"invite\",\"room\":\"crew\",\"user\":\"dan\"}");
    json_decref(wsc_expect(d, "member", T));
    /* Refusals. */
    send_json(c, "{\"type\":\"remove\",\"room\":\"crew\",\"user\":\"dan\"}");
    expect_error(c, "forbidden");
    send_json(b, "{\"type\":\"remove\",\"room\":\"crew\",\"user\":\"bob\"}");
    expect_error(b, "forbidden");
    send_json(b, "{\"type\":\"remove\",\"room\":\"crew\",\"user\":\"nobody\"}");
    expect_error(b, "no-user");
    send_json(b, "{\"type\":\"remove\",\"room\":\"lobby\",\"user\":\"dan\"}");
    expect_error(b, "forbidden");
    send_json(b, "{\"type\":\"remove\",\"room\":\"crew\"}");
    expect_error(b, "bad-user");
    /* The owner removes dan: all three hear it, dan last of the room. */
    send_json(b, "{\"type\":\"remove\",\"room\":\"crew\",\"user\":\"dan\"}");
    struct wsc *all[3] = {b, c, d};
    for (int i = 0; i < 3; i++) {
        json_t *ev = wsc_expect(all[i], "member", T);
        assert_non_null(ev);
        assert_string_equal(str(ev, "action"), "removed");
        assert_string_equal(str(json_object_get(ev, "user"), "name"), "dan");
        assert_string_equal(str(json_object_get(ev, "by"), "name"), "bob");
        json_decref(ev);
    }
    send_json(b, "{\"type\":\"remove\",\"room\":\"crew\",\"user\":\"dan\"}");
    expect_error(b, "no-user");
    say(b, "crew", "after dan");
    json_decref(until_text(c, "after dan", NULL));
    say(b, NULL, "lobby marker 2");
    json_decref(until_text(d, "lobby marker 2", "crew"));
    send_json(d, "{\"type\":\"message\",\"room\":\"crew\",\"text\":\"x\"}");
    expect_error(d, "not-a-member");
    json_t *list = ask(d, "rooms", "{\"type\":\"rooms\"}");
    assert_null(entry(list, "crew"));
    json_decref(list);
    wsc_free(b);
    wsc_free(c);
    wsc_free(d);
    restart();
    d = open_as(dan, "/ws", NULL);
    list = ask(d, "rooms", "{\"type\":\"rooms\"}");
    assert_null(entry(list, "crew"));
    json_decref(list);
    /* Invited again, dan is back. */
    b = open_as(bob, "/ws", NULL);
    send_json(b, "{\"type\":\"invite\",\"room\":\"crew\",\"user\":\"dan\"}");
    json_decref(wsc_expect(d, "member", T));
    say(b, "crew", "welcome back");
    json_decref(until_text(d, "welcome back", NULL));
    wsc_free(b);
    wsc_free(d);
}

/* The texts of the chat messages in a history reply, in order. */
static void page_texts(json_t *page, char *out, size_t n)
{
    size_t i, len = 0;
    json_t *e;
    out[0] = '\0';
    json_array_foreach(json_object_get(page, "messages"), i, e)
    {
        if (strcmp(str(e, "type"), "message") == 0)
            len += (size_t)snprintf(out + len, n - len, "%s|", str(e, "text"));
    }
}

/* A room's own retention: its owner (or a moderator) sets it; beyond it
 * the room's rows become tombstones -- the database within a second, the
 * ring at the next sweep -- while every seq stays (no resume meets a
 * hole); by count and by age; it survives a restart. */
static void test_room_retention(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    assert_int_equal(wsc_send_text(a, "{\"type\":\"create\",\"room\":\"brief\"}"), 0);
    json_t *ev = wsc_expect(a, "room", T);
    long long id = num(ev, "roomId");
    json_decref(ev);
    assert_int_equal(wsc_send_text(b, "{\"type\":\"join\",\"room\":\"brief\"}"), 0);
    json_decref(wsc_expect(b, "member", T));
    assert_int_equal(wsc_send_text(b, "{\"type\":\"retention\",\"room\":\"brief\",\"keep\":3}"), 0);
    expect_error(b, "forbidden"); /* a member, not its owner */
    assert_int_equal(wsc_send_text(a, "{\"type\":\"retention\",\"room\":\"brief\",\"keep\":-1}"),
                     0);
    expect_error(a, "bad-retention");
    assert_int_equal(wsc_send_text(a, "{\"type\":\"retention\",\"room\":\"lobby\",\"keep\":3}"), 0);
    expect_error(a, "bad-room");
    assert_int_equal(wsc_send_text(a, "{\"type\":\"retention\",\"room\":\"brief\",\"keep\":3}"), 0);
    ev = wsc_expect(b, "room", T);
    assert_string_equal(str(ev, "action"), "retention");
    assert_int_equal(num(ev, "keep"), 3);
    json_decref(ev);
    for (int i = 1; i <= 6; i++) {
        char t[16];
        snprintf(t, sizeof(t), "brief %d", i);
        say(a, "brief", t);
    }
    /* The database: exactly the last three are text (polled: the store's
     * pass runs once a second). */
    char where[128], texts[512];
    snprintf(where, sizeof(where), "room_id = %lld AND json LIKE '%%\"brief %%'", id);
    for (int64_t end = mono_ms() + 10000; db_count(where) != 3 && mono_ms() < end;)
        poll(NULL, 0, 50);
    assert_int_equal(db_count(where), 3);
    json_t *page = ask(b, "history", "{\"type\":\"history\",\"room\":\"brief\"}");
    page_texts(page, texts, sizeof(texts));
    assert_string_equal(texts, "brief 4|brief 5|brief 6|");
    json_decref(page);
    /* Memory: a newcomer's join history (the ring) has none of the older. */
    json_t *got = NULL;
    for (int64_t end = mono_ms() + 5000; mono_ms() < end; poll(NULL, 0, 50)) {
        json_decref(got);
        wsc_free(open_as(bob, "/ws", &got));
        char *d = json_dumps(got, 0);
        bool old = strstr(d, "brief 3") != NULL;
        free(d);
        if (!old)
            break;
    }
    nowhere(got, "brief 3");
    json_decref(got);
    /* By age, after a restart (the setting is stored). */
    wsc_free(a);
    wsc_free(b);
    restart();
    a = open_as(ann, "/ws", NULL);
    json_t *list = ask(a, "rooms", "{\"type\":\"rooms\"}");
    assert_int_equal(num(entry(list, "brief"), "keep"), 3);
    json_decref(list);
    assert_int_equal(
        wsc_send_text(a, "{\"type\":\"retention\",\"room\":\"brief\",\"keep\":0,\"maxAge\":1}"), 0);
    json_decref(wsc_expect(a, "room", T));
    say(a, "brief", "brief 7");
    for (int64_t end = mono_ms() + 10000; db_count(where) != 0 && mono_ms() < end;)
        poll(NULL, 0, 100);
    assert_int_equal(db_count(where), 0);
    /* Every seq of the room is still there, as text or tombstone. */
    snprintf(where, sizeof(where), "room_id = %lld", id);
    assert_true(db_count(where) >= 10);
    wsc_free(a);
}

/* A kicked person leaves every room's online set at once. */
static void test_kick_leaves_rooms(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    json_t *list = ask(a, "rooms", "{\"type\":\"rooms\"}");
    assert_int_equal(num(entry(list, "ops"), "online"), 2);
    json_decref(list);
    char out[4096];
    assert_int_equal(
        post("/api/moderate", ann, "{\"action\":\"kick\",\"user\":\"bob\"}", out, sizeof(out)),
        200);
    assert_int_equal(wsc_wait_close(b, T), 4001);
    wsc_free(b); /* the connection ends, as a browser's does after the close */
    json_t *mem = NULL;
    for (int64_t end = mono_ms() + T; mono_ms() < end;) {
        json_decref(mem);
        mem = ask(a, "members", "{\"type\":\"members\",\"room\":\"ops\"}");
        json_t *m0 = json_array_get(json_object_get(mem, "members"), 0);
        json_t *m1 = json_array_get(json_object_get(mem, "members"), 1);
        json_t *bobm = strcmp(str(m0, "name"), "bob") == 0 ? m0 : m1;
        if (!json_is_true(json_object_get(bobm, "online")))
            break;
        poll(NULL, 0, 20);
    }
    json_decref(mem);
    list = ask(a, "rooms", "{\"type\":\"rooms\"}");
    assert_int_equal(num(entry(list, "ops"), "online"), 1);
    json_decref(list);
    wsc_free(a);
}

/* --guest-rooms on: guests create and join public rooms for the length of
 * their connection; private rooms and DMs stay for accounts; a guest that
 * reconnects is back in the lobby alone. */
static void test_guest_rooms(void **state)
{
    (void)state;
    struct srv g;
    const char *args[] = {"--guest-rooms", "on", NULL};
    assert_int_equal(srv_start(&g, args), 0);
    struct wsc *x = wsc_open(g.port, &(struct wsc_opts){.path = "/ws?name=xena"});
    struct wsc *y = wsc_open(g.port, &(struct wsc_opts){.path = "/ws?name=yuri"});
    struct wsc *z = wsc_open(g.port, &(struct wsc_opts){.path = "/ws?name=zoe"});
    assert_int_equal(wsc_join(x, NULL, NULL), 0);
    assert_int_equal(wsc_join(y, NULL, NULL), 0);
    assert_int_equal(wsc_join(z, NULL, NULL), 0);
    assert_int_equal(wsc_send_text(x, "{\"type\":\"create\",\"room\":\"hush\",\"kind\":"
                                      "\"private\"}"),
                     0);
    expect_error(x, "forbidden");
    assert_int_equal(wsc_send_text(x, "{\"type\":\"dm\",\"user\":\"yuri\"}"), 0);
    expect_error(x, "forbidden");
    assert_int_equal(wsc_send_text(x, "{\"type\":\"create\",\"room\":\"maths\"}"), 0);
    json_t *ev = wsc_expect(x, "member", T);
    assert_non_null(ev);
    assert_string_equal(str(ev, "role"), "guest");
    json_decref(ev);
    assert_int_equal(wsc_send_text(y, "{\"type\":\"join\",\"room\":\"maths\"}"), 0);
    ev = wsc_expect(x, "member", T); /* x hears y arrive */
    assert_string_equal(str(json_object_get(ev, "user"), "name"), "yuri");
    json_decref(ev);
    say(x, "maths", "two plus two");
    json_decref(until_text(y, "two plus two", NULL));
    say(x, NULL, "lobby marker 5");
    json_decref(until_text(z, "lobby marker 5", "maths")); /* z never joined */
    json_t *mem = ask(x, "members", "{\"type\":\"members\",\"room\":\"maths\"}");
    assert_int_equal(num(mem, "count"), 2);
    json_decref(mem);
    /* Back after a reconnect, a guest is in the lobby alone. */
    wsc_free(y);
    y = wsc_open(g.port, &(struct wsc_opts){.path = "/ws?name=yuri"});
    assert_int_equal(wsc_join(y, NULL, NULL), 0);
    assert_int_equal(wsc_send_text(y, "{\"type\":\"message\",\"room\":\"maths\",\"text\":"
                                      "\"x\"}"),
                     0);
    expect_error(y, "not-a-member");
    wsc_free(x);
    wsc_free(y);
    wsc_free(z);
    assert_int_equal(srv_stop(&g), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolation),      cmocka_unit_test(test_resume_across_rooms),
        cmocka_unit_test(test_bots_in_rooms),  cmocka_unit_test(test_unread),
        cmocka_unit_test(test_kinds),          cmocka_unit_test(test_delete_room),
        cmocka_unit_test(test_room_retention), cmocka_unit_test(test_kick_leaves_rooms),
        cmocka_unit_test(test_guest_rooms),    cmocka_unit_test(test_rename_room),
        cmocka_unit_test(test_remove_member),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
