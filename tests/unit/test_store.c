/* Unit tests: the SQLite history store (store.c) -- group commit, seq
 * kept across a reopen, range and before queries, retention by count,
 * bytes and age, the per-sender share, a full database that makes room
 * and recovers (with no false "committed"), and the schema upgrade. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "palaver/frame.h"
#include "palaver/store.h"
#include "palaver/wake.h"

static char dir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/palaver-store-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static struct pv_store *open_opts(const char *sub, const struct pv_store_options *o)
{
    char path[200], err[256] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    struct pv_store *s = pv_store_open(path, o, err, sizeof(err));
    if (!s)
        fprintf(stderr, "open: %s\n", err);
    assert_non_null(s);
    return s;
}

static struct pv_store *open_store_age(const char *sub, unsigned keep, unsigned max_pages,
                                       unsigned max_age_s)
{
    char path[200], err[256] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    struct pv_store_options o = {.keep = keep, .max_pages = max_pages, .max_age_s = max_age_s};
    struct pv_store *s = pv_store_open(path, &o, err, sizeof(err));
    if (!s)
        fprintf(stderr, "open: %s\n", err);
    assert_non_null(s);
    return s;
}

static struct pv_store *open_store(const char *sub, unsigned keep, unsigned max_pages)
{
    return open_store_age(sub, keep, max_pages, 0);
}

static void append_full(struct pv_store *s, uint64_t seq, size_t size, int64_t date,
                        const char *sender)
{
    struct pv_store_msg *m = calloc(1, sizeof(*m));
    m->seq = seq;
    snprintf(m->sender, sizeof(m->sender), "%s", sender);
    m->server_date = date;
    char *json = malloc(size + 64);
    int n = snprintf(json, size + 64, "{\"type\":\"message\",\"seq\":%llu,\"text\":\"",
                     (unsigned long long)seq);
    memset(json + n, 'x', size);
    memcpy(json + n + size, "\"}", 3);
    m->frame = pv_frame_new(PV_WS_OP_TEXT, json, (size_t)n + size + 2);
    free(json);
    pv_store_append(s, m);
}

static void append_dated(struct pv_store *s, uint64_t seq, size_t size, int64_t date)
{
    append_full(s, seq, size, date, "127.0.0.1");
}

static void append_from(struct pv_store *s, uint64_t seq, size_t size, const char *sender)
{
    append_full(s, seq, size, 1700000000000 + (int64_t)seq, sender);
}

static void append(struct pv_store *s, uint64_t seq, size_t size)
{
    append_dated(s, seq, size, 1700000000000 + (int64_t)seq);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on the event eventfd (which every commit and answer signals) for
 * the answer to one read request, for at most 10 s. */
static struct pv_store_read *read_answer(struct pv_store *s)
{
    for (int64_t end = mono_ms() + 10000; mono_ms() < end;) {
        struct pv_store_read *rq = pv_store_read_done(s);
        if (rq)
            return rq;
        struct pv_wake *w = pv_store_wake(s);
        pv_wake_wait(&w, 1, 100);
    }
    return NULL;
}

/* Waits on the commit eventfd until `seq` is committed (or failure), for
 * at most 30 s: a deadline, not a count of wake-ups (each transaction is
 * one, and under load a group commit takes hundreds). */
static bool committed(struct pv_store *s, uint64_t seq)
{
    for (int64_t end = mono_ms() + 30000;
         mono_ms() < end && pv_store_committed(s) < seq && !pv_store_failure(s);) {
        struct pv_wake *w = pv_store_wake(s);
        pv_wake_wait(&w, 1, 100);
    }
    return pv_store_committed(s) >= seq;
}

/* Waits until the fate of `seq` is known: committed or lost. */
static bool decided(struct pv_store *s, uint64_t seq)
{
    for (int64_t end = mono_ms() + 30000;
         mono_ms() < end && pv_store_decided(s) < seq && !pv_store_failure(s);) {
        struct pv_wake *w = pv_store_wake(s);
        pv_wake_wait(&w, 1, 100);
    }
    return pv_store_decided(s) >= seq;
}

struct got {
    uint64_t seq[64];
    int n;
};

static void collect(void *ud, uint64_t seq, int64_t date, const char *json, size_t len)
{
    struct got *g = ud;
    (void)date;
    assert_true(len > 10 && json[0] == '{');
    if (g->n < 64)
        g->seq[g->n++] = seq;
}

/* Every stored seq, for checks over thousands of rows. */
struct all {
    uint64_t *seq;
    size_t n, cap;
};

static void collect_all(void *ud, uint64_t seq, int64_t date, const char *json, size_t len)
{
    struct all *a = ud;
    (void)date;
    (void)json;
    (void)len;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 1024;
        a->seq = realloc(a->seq, a->cap * sizeof(*a->seq));
    }
    a->seq[a->n++] = seq;
}

static size_t count_between(const struct all *a, uint64_t lo, uint64_t hi)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += a->seq[i] >= lo && a->seq[i] <= hi;
    return n;
}

static void test_group_commit_and_reopen(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct pv_store *s = open_store("a", 0, 0);
    assert_int_equal(pv_store_last_seq(s), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 1; i <= N; i++)
        append(s, i, 100);
    assert_true(committed(s, N));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t tx = pv_store_transactions(s);
    /* Group commit: far fewer transactions (each an fsync) than messages. */
    fprintf(stderr,
            "store: %d messages of ~150 bytes committed in %.3f s (%.0f/s) in %llu "
            "transactions\n",
            N, secs, N / secs, (unsigned long long)tx);
    assert_true(tx >= 1 && tx < N);
    assert_null(pv_store_failure(s));
    /* One at a time, each waited for: one fsync'd transaction each. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = N + 1; i <= N + 200; i++) {
        append(s, i, 100);
        assert_true(committed(s, i));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "store: 200 single-message commits in %.3f s (%.0f commits/s, %.2f ms each)\n",
            secs, 200 / secs, secs * 1000 / 200);
    assert_int_equal(pv_store_transactions(s), tx + 200);
    pv_store_close(s);

    /* Reopened: seq continues from what was stored; queries work. */
    s = open_store("a", 0, 0);
    assert_int_equal(pv_store_last_seq(s), N + 200);
    struct got g = {0};
    assert_int_equal(pv_store_range(s, N - 5, 5, collect, &g), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.seq[i], N - 4 + (uint64_t)i);
    g.n = 0;
    assert_int_equal(pv_store_before(s, 50, 5, collect, &g), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.seq[i], 45 + (uint64_t)i); /* oldest first */
    g.n = 0;
    assert_int_equal(pv_store_range(s, N + 200, 10, collect, &g), 0);
    pv_store_close(s);
}

static void test_retention(void **state)
{
    (void)state;
    struct pv_store *s = open_store("b", 100, 0);
    for (uint64_t i = 1; i <= 1000; i++)
        append(s, i, 20);
    assert_true(committed(s, 1000));
    struct got g = {0};
    assert_int_equal(pv_store_before(s, 1001, 64, collect, &g), 64);
    assert_int_equal(pv_store_range(s, 0, 1000, collect, &(struct got){0}), 100);
    pv_store_close(s);
}

/* A database that fills up (room for 40 pages of 4 KiB of messages, as a
 * full disk: the cap is 44 since schema 9's files and attachments tables
 * and their indexes take 4 pages of their own) is not a failure:
 * retention learns what fits, deletes the oldest, and storing goes on;
 * the newest are stored without a hole, and what was reported committed
 * survives a reopen. */
static void test_full_database_makes_room(void **state)
{
    (void)state;
    struct pv_store *s = open_store("c", 0, 44);
    for (uint64_t i = 1; i <= 5; i++)
        append(s, i, 100);
    assert_true(committed(s, 5));
    for (uint64_t i = 6; i <= 3000; i++)
        append(s, i, 1000);
    assert_true(decided(s, 3000));
    assert_null(pv_store_failure(s));
    assert_int_equal(pv_store_committed(s), 3000);
    assert_false(pv_store_full(s));
    uint64_t first = pv_store_first(s);
    assert_true(first > 5 && first < 3000);
    assert_true(pv_store_bytes(s) < 160 * 1024); /* what 40 pages hold */
    assert_true(pv_store_bytes(s) > 40 * 1024);  /* and not much less */
    struct all all = {0};
    assert_true(pv_store_range(s, 0, 100000, collect_all, &all) > 20);
    assert_int_equal(all.seq[all.n - 1], 3000);
    assert_int_equal(count_between(&all, 2981, 3000), 20); /* the newest, no hole */
    assert_int_equal(pv_store_rows(s), all.n);
    free(all.seq);
    pv_store_close(s);
    s = open_store("c", 0, 44);
    assert_int_equal(pv_store_last_seq(s), 3000);
    /* Reopened, it goes on storing within the same room. */
    for (uint64_t i = 3001; i <= 3400; i++)
        append(s, i, 1000);
    assert_true(decided(s, 3400));
    assert_null(pv_store_failure(s));
    assert_int_equal(pv_store_committed(s), 3400);
    pv_store_close(s);
}

/* A message that cannot fit even an empty database is lost -- a lost
 * range, never "committed" -- and the store recovers with the next one. */
static void test_lost_message_then_recovery(void **state)
{
    (void)state;
    struct pv_store *s = open_store("c2", 0, 8);
    append(s, 1, 20);
    assert_true(committed(s, 1));
    append(s, 2, 60000);
    assert_true(decided(s, 2));
    assert_int_equal(pv_store_committed(s), 1);
    assert_true(pv_store_full(s));
    assert_null(pv_store_failure(s));
    assert_int_equal(pv_store_lost_total(s), 1);
    uint64_t from = 0, to = 0;
    assert_true(pv_store_take_lost(s, &from, &to));
    assert_int_equal(from, 2);
    assert_int_equal(to, 2);
    assert_false(pv_store_take_lost(s, &from, &to));
    append(s, 3, 20);
    assert_true(committed(s, 3));
    assert_false(pv_store_full(s));
    struct all all = {0};
    assert_int_equal(pv_store_range(s, 0, 10, collect_all, &all), 2);
    assert_int_equal(all.seq[0], 1); /* the message before was kept */
    assert_int_equal(all.seq[1], 3);
    free(all.seq);
    pv_store_close(s);
}

/* Retention by bytes: never over the limit, down to 90 % when it prunes. */
static void test_retention_by_bytes(void **state)
{
    (void)state;
    struct pv_store_options o = {.max_bytes = 100000};
    struct pv_store *s = open_opts("bytes", &o);
    for (uint64_t i = 1; i <= 2000; i++) {
        append(s, i, 200);
        if (i % 100 == 0) {
            assert_true(committed(s, i));
            assert_true(pv_store_bytes(s) <= 100000);
        }
    }
    uint64_t b = pv_store_bytes(s);
    assert_true(b >= 80000 && b <= 100000);
    struct all all = {0};
    pv_store_range(s, 0, 100000, collect_all, &all);
    assert_int_equal(all.seq[all.n - 1], 2000);
    assert_int_equal(count_between(&all, all.seq[0], 2000), 2000 - all.seq[0] + 1); /* no hole */
    free(all.seq);
    pv_store_close(s);
}

/* One address floods; another wrote 200 messages before. With a share of
 * 25 %, the flood's own oldest go first (outside the protected newest),
 * by count and by bytes; with a share of 100 (the control), the others'
 * history is pushed out. */
static void flood(const char *sub, unsigned share, bool by_bytes, size_t *kept, uint64_t *rows)
{
    struct pv_store_options o = {.sender_share = share, .protect = 100};
    if (by_bytes)
        o.max_bytes = 1 << 20;
    else
        o.keep = 1000;
    struct pv_store *s = open_opts(sub, &o);
    for (uint64_t i = 1; i <= 200; i++)
        append_from(s, i, 100, "192.168.1.20");
    for (uint64_t i = 201; i <= 5200; i++)
        append_from(s, i, by_bytes ? 4000 : 100, "192.168.1.66");
    assert_true(committed(s, 5200));
    assert_null(pv_store_failure(s));
    struct all all = {0};
    pv_store_range(s, 0, 100000, collect_all, &all);
    *kept = count_between(&all, 1, 200);
    *rows = pv_store_rows(s);
    /* The newest 100 (protected) are all there, with no hole. */
    assert_int_equal(count_between(&all, 5101, 5200), 100);
    if (by_bytes)
        assert_true(pv_store_bytes(s) <= 1 << 20);
    else
        assert_true(*rows <= 1000);
    free(all.seq);
    pv_store_close(s);
}

static void test_sender_share(void **state)
{
    (void)state;
    size_t kept;
    uint64_t rows;
    flood("share-count", 25, false, &kept, &rows);
    assert_int_equal(kept, 200);
    flood("share-bytes", 25, true, &kept, &rows);
    assert_int_equal(kept, 200);
    flood("share-off", 100, false, &kept, &rows);
    assert_int_equal(kept, 0);
}

static void keep_json(void *ud, uint64_t seq, int64_t date, const char *json, size_t len)
{
    (void)date;
    char *out = ud;
    snprintf(out + (seq - 1) * 64, 64, "%.*s", (int)len, json);
}

/* An edit or deletion event (store.h: target, replace) is stored with the
 * target's row rewritten in the same transaction, and the byte accounting
 * follows the new size; a target already gone is left gone. */
static void test_event_replaces_its_target(void **state)
{
    (void)state;
    struct pv_store *s = open_store("replace", 0, 0);
    append(s, 1, 10);
    append(s, 2, 10);
    struct pv_store_msg *m = calloc(1, sizeof(*m));
    m->seq = 3;
    m->server_date = 1700000000003;
    m->frame = pv_frame_new(PV_WS_OP_TEXT, "{\"type\":\"delete\",\"target\":1}", 29);
    m->target = 1;
    m->replace = pv_frame_new(PV_WS_OP_TEXT, "{\"type\":\"deleted\",\"seq\":1}", 27);
    snprintf(m->sender, sizeof(m->sender), "127.0.0.1");
    pv_store_append(s, m);
    m = calloc(1, sizeof(*m)); /* a target that was never stored */
    m->seq = 4;
    m->frame = pv_frame_new(PV_WS_OP_TEXT, "{}", 2);
    m->target = 99;
    m->replace = pv_frame_new(PV_WS_OP_TEXT, "{\"x\":1}", 7);
    pv_store_append(s, m);
    assert_true(committed(s, 4));
    char rows[4 * 64] = "";
    assert_int_equal(pv_store_range(s, 0, 10, keep_json, rows), 4);
    assert_string_equal(rows, "{\"type\":\"deleted\",\"seq\":1}");
    assert_non_null(strstr(rows + 64, "xxxxxxxxxx"));
    assert_string_equal(rows + 128, "{\"type\":\"delete\",\"target\":1}");
    /* 2 messages of 46 bytes, the tombstone (27), the events (29, 2). */
    assert_int_equal(pv_store_bytes(s), 46 + 27 + 29 + 2 + 4 * 64);
    pv_store_close(s);
}

/* The database of a running install (schema 3, palaver with accounts
 * and invites, as that release made it) upgrades in place to 6: its
 * people, sessions and invites stay, nobody is muted, the audit log and
 * the tokens are there and empty. */
static void test_schema_upgrade_from_3(void **state)
{
    (void)state;
    char path[256], file[300];
    snprintf(path, sizeof(path), "%s/v3", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(file, sizeof(file), "%s/palaver.db", path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY, server_date INTEGER NOT NULL, "
            "json TEXT NOT NULL, sender TEXT NOT NULL DEFAULT '', bytes INTEGER NOT NULL "
            "DEFAULT 0);"
            "CREATE INDEX messages_by_sender ON messages(sender, seq, bytes);"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES('history-id', 'fedcba9876543210'), ('open', '0');"
            "INSERT INTO messages VALUES (1, 1, '{\"type\":\"message\"}', 'a', 84);"
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "name_key TEXT NOT NULL UNIQUE, pass_hash TEXT NOT NULL, role TEXT NOT NULL "
            "CHECK (role IN ('admin', 'moderator', 'member')), created INTEGER NOT NULL, "
            "banned_at INTEGER);"
            "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, "
            "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
            "created INTEGER NOT NULL, last_used INTEGER NOT NULL, expires INTEGER NOT NULL, "
            "addr TEXT NOT NULL DEFAULT '');"
            "CREATE INDEX sessions_by_user ON sessions(user_id);"
            "CREATE TABLE invites (code_hash TEXT PRIMARY KEY, "
            "created_by INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
            "role TEXT NOT NULL CHECK (role IN ('admin', 'moderator', 'member')), "
            "created INTEGER NOT NULL, expires INTEGER NOT NULL, uses_left INTEGER NOT NULL);"
            "INSERT INTO users VALUES (1, 'Ann', 'ann', '$argon2id$x', 'admin', 1, NULL);"
            "INSERT INTO sessions VALUES ('h', 1, 1, 1, 9999999999, '10.0.0.1');"
            "INSERT INTO invites VALUES ('c', 1, 'member', 1, 9999999999, 3);"
            "PRAGMA user_version = 3;",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct pv_store *s = open_store("v3", 0, 0);
    assert_int_equal(pv_store_last_seq(s), 1);
    assert_int_equal(pv_store_last_rseq(s), 1); /* back-filled: the lobby's first */
    assert_string_equal(pv_store_id(s), "fedcba9876543210");
    pv_store_close(s);
    assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT (SELECT user_version FROM pragma_user_version), "
                           "u.name, u.muted_until IS NULL, s.addr, i.uses_left, "
                           "(SELECT COUNT(*) FROM audit) + "
                           "(SELECT COUNT(*) FROM tokens), u.read_receipts FROM users u "
                           "JOIN sessions s ON s.user_id = u.id "
                           "JOIN invites i ON i.created_by = u.id",
                           -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 10);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "Ann");
    assert_int_equal(sqlite3_column_int(st, 2), 1);
    assert_string_equal((const char *)sqlite3_column_text(st, 3), "10.0.0.1");
    assert_int_equal(sqlite3_column_int(st, 4), 3);
    assert_int_equal(sqlite3_column_int(st, 5), 0);
    assert_int_equal(sqlite3_column_int(st, 6), 1); /* schema 8: receipts on by default */
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A database of schema 0 (palaver before retention by bytes) is upgraded
 * in place, through 1 and 2 (accounts), 3 (invites) and 4 (mutes, the
 * audit log), 5 (bots' tokens) to 6 (rooms: each message the lobby's,
 * its rseq its rank): rows kept and counted, the history id kept; one of a newer
 * schema is refused and left as it was. */
static void test_schema_upgrade(void **state)
{
    (void)state;
    char path[256], file[300];
    snprintf(path, sizeof(path), "%s/v0", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(file, sizeof(file), "%s/palaver.db", path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL;"
                     "CREATE TABLE messages (seq INTEGER PRIMARY KEY, server_date INTEGER NOT NULL,"
                     " json TEXT NOT NULL);"
                     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO meta VALUES('history-id', '0123456789abcdef'), ('open', '0');"
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)"
                     " INSERT INTO messages SELECT i, 1700000000000 + i,"
                     " '{\"type\":\"message\",\"text\":\"old ' || i || '\"}' FROM n;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct pv_store *s = open_store("v0", 0, 0);
    assert_int_equal(pv_store_last_seq(s), 10);
    assert_string_equal(pv_store_id(s), "0123456789abcdef");
    assert_int_equal(pv_store_rows(s), 10);
    /* {"type":"message","text":"old N"}: 33 bytes for N < 10, 34 for 10. */
    assert_int_equal(pv_store_bytes(s), 9 * (33 + 64) + (34 + 64));
    append(s, 11, 20);
    assert_true(committed(s, 11));
    struct all all = {0};
    assert_int_equal(pv_store_range(s, 0, 100, collect_all, &all), 11);
    free(all.seq);
    pv_store_close(s);
    assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 10);
    sqlite3_finalize(st);
    /* Version 6: the stored messages are the lobby's, numbered in order
     * (rseq back-filled by rank). */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(rseq), min(room_id), max(room_id), "
                                        "(SELECT name FROM rooms WHERE id = 1) FROM (SELECT rseq, "
                                        "room_id FROM messages WHERE seq <= 10 ORDER BY seq)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "1,2,3,4,5,6,7,8,9,10");
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    assert_int_equal(sqlite3_column_int(st, 2), 1);
    assert_string_equal((const char *)sqlite3_column_text(st, 3), "lobby");
    sqlite3_finalize(st);
    /* Versions 2 to 5's accounts tables (accounts.h) came with the upgrade,
     * empty, and take a user, a session, an invite and an audit line. */
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO users (name, name_key, pass_hash, role, created) "
                     "VALUES ('ann', 'ann', '$argon2id$x', 'admin', 1);"
                     "INSERT INTO sessions (token_hash, user_id, created, last_used, expires) "
                     "VALUES ('h', 1, 1, 1, 2);"
                     "INSERT INTO invites (code_hash, created_by, role, created, expires, "
                     "uses_left) VALUES ('c', 1, 'member', 1, 2, 1);"
                     "UPDATE users SET muted_until = 5 WHERE id = 1;"
                     "INSERT INTO audit (at, actor_id, actor, action, target) "
                     "VALUES (1, 1, 'ann', 'mute', 'bo');"
                     "INSERT INTO tokens (token_hash, user_id, name, created) "
                     "VALUES ('t', 1, 'ci', 1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    /* Roles are the three the server knows. */
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO users (name, name_key, pass_hash, role, "
                                      "created) VALUES ('bo', 'bo', 'x', 'root', 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    /* A newer palaverd's database: refused, untouched. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 11", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    assert_null(pv_store_open(path, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "newer palaverd"));
    assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM messages", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 11);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The reader thread answers in request order, while the writer goes on
 * committing: a forward range bounded above, a page backwards, the
 * oldest seq, and an empty answer. */
static void test_async_reads(void **state)
{
    (void)state;
    struct pv_store *s = open_store("d", 500, 0);
    for (uint64_t i = 1; i <= 1000; i++)
        append(s, i, 30);
    assert_true(committed(s, 1000));
    struct pv_store_read *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)),
                         *c = calloc(1, sizeof(*c));
    *a = (struct pv_store_read){.from = 600, .to = 650, .limit = 100};
    *b = (struct pv_store_read){.backwards = true, .from = 700, .limit = 20};
    *c = (struct pv_store_read){.from = 1000, .to = 2000, .limit = 10};
    pv_store_read(s, a);
    pv_store_read(s, b);
    for (uint64_t i = 1001; i <= 1100; i++) /* the writer keeps going */
        append(s, i, 30);
    pv_store_read(s, c);
    assert_ptr_equal(read_answer(s), a);
    assert_int_equal(a->n, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(a->rows[i].seq, 601 + (uint64_t)i);
        assert_int_equal(a->rows[i].server_date, 1700000000000 + 601 + i);
        assert_int_equal(strlen(a->rows[i].json), a->rows[i].len);
        assert_non_null(strstr(a->rows[i].json, "\"type\":\"message\""));
    }
    /* keep = 500: the lowest stored when the read ran, 501 before the
     * writer committed any of 1001..1100, 601 after all of them. */
    assert_true(a->oldest >= 501 && a->oldest <= 601);
    assert_ptr_equal(read_answer(s), b);
    assert_int_equal(b->n, 20);
    assert_int_equal(b->rows[0].seq, 680);
    assert_int_equal(b->rows[19].seq, 699);
    assert_ptr_equal(read_answer(s), c);
    assert_true(c->n >= 0 && c->n <= 10); /* what the writer had committed by then */
    for (int i = 0; i < c->n; i++)
        assert_int_equal(c->rows[i].seq, 1001 + (uint64_t)i);
    for (struct pv_store_read **r = (struct pv_store_read *[]){a, b, c, NULL}; *r; r++) {
        pv_store_read_release(*r);
        assert_null((*r)->rows);
        free(*r); /* the struct is ours */
    }
    assert_true(committed(s, 1100));
    /* Retention kept the last 500: the lowest row, and the writer says so. */
    struct got g = {0};
    assert_int_equal(pv_store_range(s, 0, 1, collect, &g), 1);
    assert_int_equal(g.seq[0], 601);
    assert_int_equal(pv_store_first(s), 601);
    /* One more, collected before the store closes (the contract). */
    struct pv_store_read *d = calloc(1, sizeof(*d));
    *d = (struct pv_store_read){.backwards = true, .from = 900, .limit = 5};
    pv_store_read(s, d);
    assert_ptr_equal(read_answer(s), d);
    assert_int_equal(d->n, 5);
    assert_int_equal(d->rows[4].seq, 899);
    pv_store_read_release(d);
    free(d);
    pv_store_close(s);
}

/* Retention by age: the writer deletes messages older than max_age_s
 * (checked once a second, oldest first) and keeps the rest. */
static void test_retention_by_age(void **state)
{
    (void)state;
    struct pv_store *s = open_store_age("e", 0, 0, 3600);
    int64_t now = wall_ms();
    for (uint64_t i = 1; i <= 1500; i++) /* two hours old */
        append_dated(s, i, 20, now - 7200 * 1000);
    for (uint64_t i = 1501; i <= 1510; i++) /* fresh */
        append_dated(s, i, 20, now);
    assert_true(committed(s, 1510));
    /* The next check runs within a second of the last one. */
    int64_t deadline = wall_ms() + 5000;
    while (pv_store_first(s) != 1501 && wall_ms() < deadline) {
        uint64_t next = pv_store_committed(s) + 1; /* read once: the commit races us */
        append_dated(s, next, 20, wall_ms());
        assert_true(committed(s, next));
        poll(NULL, 0, 50);
    }
    assert_int_equal(pv_store_first(s), 1501);
    assert_null(pv_store_failure(s));
    struct got g = {0};
    assert_int_equal(pv_store_range(s, 0, 10, collect, &g), 10);
    assert_int_equal(g.seq[0], 1501);
    pv_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_reads),
        cmocka_unit_test(test_retention_by_age),
        cmocka_unit_test(test_group_commit_and_reopen),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_full_database_makes_room),
        cmocka_unit_test(test_lost_message_then_recovery),
        cmocka_unit_test(test_retention_by_bytes),
        cmocka_unit_test(test_sender_share),
        cmocka_unit_test(test_schema_upgrade),
        cmocka_unit_test(test_schema_upgrade_from_3),
        cmocka_unit_test(test_event_replaces_its_target),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
