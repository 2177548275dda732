/* store.c -- durable history in SQLite with a group-committing writer
 * thread and a reader thread (see store.h).
 *
 * Threads: pv_store_append()/pv_store_read()/pv_store_read_done() on the
 * single producer (the broadcaster); writer_main() on the writer thread,
 * which alone uses `w` (the write connection); reader_main() on the reader
 * thread, which alone uses `rd`; the synchronous queries use `r` from one
 * thread at a time. Shared: three channels with their wake-ups (wake.h:
 * producer -> writer, producer -> reader, reader -> producer, and the
 * event wake-up the writer and reader notify), and the atomics committed,
 * transactions and failure. */
#include "palaver/store.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/ids.h"
#include "palaver/wake.h"
#include "palaver/xalloc.h"

struct pv_store {
    /* Channels and wake-ups (wake.h). */
    struct pv_chan msgs;     /* producer -> writer */
    struct pv_chan requests; /* producer -> reader */
    struct pv_chan answers;  /* reader -> producer */
    struct pv_wake wake;     /* producer -> writer: msgs went non-empty, or stop */
    struct pv_wake rwake;    /* producer -> reader: the same for requests */
    struct pv_wake event;    /* writer, reader -> producer: a commit or an answer */
    atomic_bool stop;
    atomic_uint_fast64_t committed;
    atomic_uint_fast64_t first; /* lowest seq stored (0: none) */
    atomic_uint_fast64_t transactions;
    _Atomic(const char *) failure; /* static string or strdup'd, set once */
    char *failure_owned;

    sqlite3 *w, *r, *rd;
    sqlite3_stmt *insert, *prune, *prune_age, *min_w; /* w */
    sqlite3_stmt *range, *before;                     /* r */
    sqlite3_stmt *rd_range, *rd_before, *rd_oldest;   /* rd */
    unsigned keep, max_age_s;
    uint64_t last_seq;
    uint64_t age_checked; /* writer: monotonic ns of the last age prune */
    char id[17];
    pthread_t thread, reader;
};

/* Sleeps until notified, at most a second: the writer's age check runs
 * at least that often. */
static void park(struct pv_wake *w)
{
    pv_wake_wait(&w, 1, 1000);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errsz)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsz, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static void fail(struct pv_store *s, const char *what)
{
    if (atomic_load(&s->failure))
        return;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s: %s", what, sqlite3_errmsg(s->w));
    s->failure_owned = strdup(buf);
    atomic_store_explicit(&s->failure, s->failure_owned, memory_order_release);
    pv_err("history store failed, messages are no longer stored: %s", buf);
}

static uint64_t query_oldest(sqlite3_stmt *st)
{
    uint64_t v = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static struct pv_store_msg *pop(struct pv_store *s)
{
    struct cds_wfcq_node *n = pv_chan_pop(&s->msgs);
    return n ? CONTAINER(n, struct pv_store_msg, node) : NULL;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Retention by age, at most once a second, on the writer thread: the
 * oldest messages first, 1000 per statement, so a check that finds
 * nothing to delete looks at no more than 1000 rows. */
static void prune_by_age(struct pv_store *s)
{
    uint64_t now = mono_ns();
    if (!s->max_age_s || atomic_load(&s->failure) || now - s->age_checked < 1000000000u)
        return;
    s->age_checked = now;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t cutoff =
        (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 - (int64_t)s->max_age_s * 1000;
    int deleted;
    do {
        sqlite3_bind_int64(s->prune_age, 1, cutoff);
        int rc = sqlite3_step(s->prune_age);
        sqlite3_reset(s->prune_age);
        if (rc != SQLITE_DONE) {
            fail(s, "retention DELETE by age");
            return;
        }
        deleted = sqlite3_changes(s->w);
        if (deleted) {
            atomic_store_explicit(&s->first, query_oldest(s->min_w), memory_order_relaxed);
            pv_debug("history store: %d message(s) older than %u s deleted", deleted, s->max_age_s);
        }
    } while (deleted == 1000);
}

/* One transaction with everything queued now. */
static void commit_batch(struct pv_store *s, struct pv_store_msg *first)
{
    uint64_t top = 0, bottom = 0;
    bool ok = !atomic_load(&s->failure);
    if (ok && sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, "BEGIN");
        ok = false;
    }
    for (struct pv_store_msg *m = first; m; m = pop(s)) {
        if (ok) {
            sqlite3_bind_int64(s->insert, 1, (sqlite3_int64)m->seq);
            sqlite3_bind_int64(s->insert, 2, m->server_date);
            size_t len;
            const unsigned char *json = pv_frame_payload(m->frame, &len);
            sqlite3_bind_text(s->insert, 3, (const char *)json, (int)len, SQLITE_STATIC);
            if (sqlite3_step(s->insert) != SQLITE_DONE) {
                fail(s, "INSERT");
                ok = false;
            }
            sqlite3_reset(s->insert);
            top = m->seq;
            if (!bottom)
                bottom = m->seq;
        }
        pv_frame_unref(m->frame);
        free(m);
    }
    if (ok && s->keep && top > s->keep) {
        sqlite3_bind_int64(s->prune, 1, (sqlite3_int64)(top - s->keep));
        if (sqlite3_step(s->prune) != SQLITE_DONE) {
            fail(s, "retention DELETE");
            ok = false;
        }
        sqlite3_reset(s->prune);
    }
    if (ok && sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, "COMMIT");
        ok = false;
    }
    if (!ok) {
        sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
        return;
    }
    uint64_t lowest = atomic_load_explicit(&s->first, memory_order_relaxed);
    if (s->keep && top > s->keep && top - s->keep + 1 > lowest)
        lowest = top - s->keep + 1; /* what the retention DELETE left */
    else if (!lowest)
        lowest = bottom;
    atomic_store_explicit(&s->first, lowest, memory_order_relaxed);
    atomic_store_explicit(&s->committed, top, memory_order_release);
    atomic_fetch_add_explicit(&s->transactions, 1, memory_order_relaxed);
    pv_wake_notify(&s->event);
}

static void *writer_main(void *arg)
{
    struct pv_store *s = arg;
    for (;;) {
        prune_by_age(s);
        struct pv_store_msg *m = pop(s);
        if (m) {
            commit_batch(s, m);
            continue;
        }
        if (atomic_load(&s->stop))
            return NULL;
        park(&s->wake);
    }
}

static int run_query(sqlite3_stmt *st, uint64_t a, unsigned limit, pv_store_fn fn, void *ud);


/* run_query() callback: one row into the request's answer. */
static void collect(void *ud, uint64_t seq, int64_t server_date, const char *json, size_t len)
{
    struct pv_store_read *rq = ud;
    struct pv_store_row *row = &rq->rows[rq->n++];
    row->seq = seq;
    row->server_date = server_date;
    row->len = len;
    row->json = pv_xmalloc(len + 1);
    memcpy(row->json, json, len);
    row->json[len] = '\0';
}

static void answer(struct pv_store *s, struct pv_store_read *rq)
{
    rq->rows = pv_xcalloc(rq->limit ? rq->limit : 1, sizeof(*rq->rows));
    rq->n = 0;
    /* One read transaction for both statements: oldest and rows agree. */
    sqlite3_exec(s->rd, "BEGIN", NULL, NULL, NULL);
    rq->oldest = query_oldest(s->rd_oldest);
    int rc;
    if (rq->backwards) {
        rc = run_query(s->rd_before, rq->from, rq->limit, collect, rq);
    } else {
        sqlite3_bind_int64(s->rd_range, 3, (sqlite3_int64)rq->to);
        rc = run_query(s->rd_range, rq->from, rq->limit, collect, rq);
    }
    sqlite3_exec(s->rd, "COMMIT", NULL, NULL, NULL);
    if (rc < 0) {
        pv_warn("history store: a read failed: %s", sqlite3_errmsg(s->rd));
        for (int i = 0; i < rq->n; i++)
            free(rq->rows[i].json);
        rq->n = -1;
    }
}

static void *reader_main(void *arg)
{
    struct pv_store *s = arg;
    for (;;) {
        struct cds_wfcq_node *n = pv_chan_pop(&s->requests);
        if (n) {
            struct pv_store_read *rq = CONTAINER(n, struct pv_store_read, node);
            answer(s, rq);
            pv_chan_push(&s->answers, &rq->node);
            pv_wake_notify(&s->event);
            continue;
        }
        if (atomic_load(&s->stop))
            return NULL;
        park(&s->rwake);
    }
}

/* Frees everything but the thread (not started, or joined). */
static void release(struct pv_store *s)
{
    sqlite3_stmt *st[] = {s->insert, s->prune,    s->prune_age, s->min_w,    s->range,
                          s->before, s->rd_range, s->rd_before, s->rd_oldest};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(s->w);
    sqlite3_close(s->r);
    sqlite3_close(s->rd);
    pv_wake_destroy(&s->wake);
    pv_wake_destroy(&s->rwake);
    pv_wake_destroy(&s->event);
    free(s->failure_owned);
    free(s);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errsz)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "%s: %s", sql, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

struct pv_store *pv_store_open(const char *dir, const struct pv_store_options *o, char *err,
                               size_t errsz)
{
    struct pv_store *s = pv_xcalloc(1, sizeof(*s));
    char path[4096], pragma[64];
    s->wake.fd = s->rwake.fd = s->event.fd = -1;
    pv_chan_init(&s->msgs);
    pv_chan_init(&s->requests);
    pv_chan_init(&s->answers);
    s->keep = o ? o->keep : 0;
    s->max_age_s = o ? o->max_age_s : 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/palaver.db", dir);
    if (sqlite3_open_v2(path, &s->w,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path, s->w ? sqlite3_errmsg(s->w) : "no memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->w, 5000);
    /* WAL + FULL: each COMMIT is fsync'd, so an acknowledged message
     * survives kill -9 and power loss. */
    if (exec(s->w, "PRAGMA journal_mode=WAL", err, errsz) ||
        exec(s->w, "PRAGMA synchronous=FULL", err, errsz) ||
        exec(s->w,
             "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, "
             "server_date INTEGER NOT NULL, json TEXT NOT NULL)",
             err, errsz) ||
        exec(s->w, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
             err, errsz) ||
        exec(s->w, "PRAGMA quick_check", err, errsz))
        goto fail;
    bool readonly = sqlite3_db_readonly(s->w, "main") == 1;
    /* The history's identity: seq numbers are comparable across restarts
     * for as long as this database lives and every run stops cleanly. */
    char q[160], mark[8] = "";
    sqlite3_stmt *idq;
    if (prepare(s->w,
                "SELECT (SELECT value FROM meta WHERE key = 'history-id'), "
                "(SELECT value FROM meta WHERE key = 'open')",
                &idq, err, errsz))
        goto fail;
    if (sqlite3_step(idq) == SQLITE_ROW) {
        if (sqlite3_column_text(idq, 0))
            snprintf(s->id, sizeof(s->id), "%s", (const char *)sqlite3_column_text(idq, 0));
        if (sqlite3_column_text(idq, 1))
            snprintf(mark, sizeof(mark), "%s", (const char *)sqlite3_column_text(idq, 1));
    }
    sqlite3_finalize(idq);
    if (readonly) {
        /* Opened read-only (file permissions, a read-only mount): history
         * can still be read, nothing new can be stored. */
        s->failure_owned = strdup("the database is read-only (check the owner and mode of "
                                  "palaver.db and its directory, and the mount)");
        atomic_store(&s->failure, s->failure_owned);
    } else {
        /* A run that did not stop cleanly (crash, kill -9, power loss, or
         * a store that failed) may have relayed messages it never stored,
         * and their seq numbers will be given again from here: a new id
         * tells clients that their last seq no longer compares (they get
         * a reset instead of a resume with a gap). */
        if (s->id[0] && strcmp(mark, "1") == 0) {
            pv_notice("history store: the last run did not stop cleanly; seq numbers it relayed "
                      "without storing may be given again, so the history gets a new id "
                      "(clients reconnecting will get a reset)");
            s->id[0] = '\0';
        }
        if (!s->id[0])
            pv_new_id(s->id);
        snprintf(q, sizeof(q),
                 "INSERT OR REPLACE INTO meta(key, value) VALUES('history-id', '%s'), "
                 "('open', '1')",
                 s->id);
        if (exec(s->w, q, err, errsz))
            goto fail;
    }
    if (o && o->max_pages) {
        snprintf(pragma, sizeof(pragma), "PRAGMA max_page_count=%u", o->max_pages);
        if (exec(s->w, pragma, err, errsz))
            goto fail;
    }
    if (prepare(s->w, "INSERT INTO messages(seq, server_date, json) VALUES(?,?,?)", &s->insert, err,
                errsz) ||
        prepare(s->w, "DELETE FROM messages WHERE seq <= ?", &s->prune, err, errsz) ||
        prepare(s->w,
                "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq, "
                "server_date FROM messages ORDER BY seq LIMIT 1000) WHERE server_date < ?)",
                &s->prune_age, err, errsz))
        goto fail;
    sqlite3_stmt *last;
    if (prepare(s->w, "SELECT COALESCE(MAX(seq), 0) FROM messages", &last, err, errsz))
        goto fail;
    if (sqlite3_step(last) == SQLITE_ROW)
        s->last_seq = (uint64_t)sqlite3_column_int64(last, 0);
    sqlite3_finalize(last);
    atomic_init(&s->committed, s->last_seq);
    static const char oldest_sql[] = "SELECT COALESCE(MIN(seq), 0) FROM messages";
    if (prepare(s->w, oldest_sql, &s->min_w, err, errsz))
        goto fail;
    atomic_init(&s->first, query_oldest(s->min_w));

    static const char range_sql[] = "SELECT seq, server_date, json FROM messages WHERE seq > ? "
                                    "AND seq <= ?3 ORDER BY seq LIMIT ?2";
    static const char before_sql[] = "SELECT seq, server_date, json FROM (SELECT * FROM messages "
                                     "WHERE seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY seq";
    if (sqlite3_open_v2(path, &s->r, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_open_v2(path, &s->rd, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        prepare(s->r, range_sql, &s->range, err, errsz) ||
        prepare(s->r, before_sql, &s->before, err, errsz) ||
        prepare(s->rd, range_sql, &s->rd_range, err, errsz) ||
        prepare(s->rd, before_sql, &s->rd_before, err, errsz) ||
        prepare(s->rd, oldest_sql, &s->rd_oldest, err, errsz))
        goto fail;
    sqlite3_busy_timeout(s->r, 5000);
    sqlite3_busy_timeout(s->rd, 5000);

    if (pv_wake_init(&s->wake) || pv_wake_init(&s->rwake) || pv_wake_init(&s->event)) {
        snprintf(err, errsz, "eventfd: %s", strerror(errno));
        goto fail;
    }
    int e = pthread_create(&s->reader, NULL, reader_main, s);
    if (e) {
        snprintf(err, errsz, "cannot start the store reader: %s", strerror(e));
        goto fail;
    }
    e = pthread_create(&s->thread, NULL, writer_main, s);
    if (e) {
        snprintf(err, errsz, "cannot start the store writer: %s", strerror(e));
        atomic_store(&s->stop, true);
        pv_wake_notify(&s->rwake);
        pthread_join(s->reader, NULL);
        goto fail;
    }
    return s;
fail:
    release(s);
    return NULL;
}

uint64_t pv_store_last_seq(const struct pv_store *s)
{
    return s->last_seq;
}

const char *pv_store_id(const struct pv_store *s)
{
    return s->id;
}

void pv_store_append(struct pv_store *s, struct pv_store_msg *m)
{
    if (pv_chan_push(&s->msgs, &m->node))
        pv_wake_notify(&s->wake);
}

void pv_store_read(struct pv_store *s, struct pv_store_read *rq)
{
    if (pv_chan_push(&s->requests, &rq->node))
        pv_wake_notify(&s->rwake);
}

struct pv_store_read *pv_store_read_done(struct pv_store *s)
{
    struct cds_wfcq_node *n = pv_chan_pop(&s->answers);
    return n ? CONTAINER(n, struct pv_store_read, node) : NULL;
}

void pv_store_read_release(struct pv_store_read *rq)
{
    if (!rq)
        return;
    for (int i = 0; i < rq->n; i++)
        free(rq->rows[i].json);
    free(rq->rows);
    rq->rows = NULL;
    rq->n = 0;
}

uint64_t pv_store_first(struct pv_store *s)
{
    return atomic_load_explicit(&s->first, memory_order_relaxed);
}

uint64_t pv_store_committed(struct pv_store *s)
{
    return atomic_load_explicit(&s->committed, memory_order_acquire);
}

struct pv_wake *pv_store_wake(struct pv_store *s)
{
    return &s->event;
}

const char *pv_store_failure(struct pv_store *s)
{
    return atomic_load_explicit(&s->failure, memory_order_acquire);
}

uint64_t pv_store_transactions(struct pv_store *s)
{
    return atomic_load_explicit(&s->transactions, memory_order_relaxed);
}

static int run_query(sqlite3_stmt *st, uint64_t a, unsigned limit, pv_store_fn fn, void *ud)
{
    /* range has a third parameter, the upper bound, set by the caller
     * (pv_store_range: none). */
    int n = 0, rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)a);
    sqlite3_bind_int64(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fn(ud, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
           (const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2));
        n++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? n : -1;
}

int pv_store_range(struct pv_store *s, uint64_t after, unsigned limit, pv_store_fn fn, void *ud)
{
    sqlite3_bind_int64(s->range, 3, INT64_MAX);
    return run_query(s->range, after, limit, fn, ud);
}

int pv_store_before(struct pv_store *s, uint64_t before, unsigned limit, pv_store_fn fn, void *ud)
{
    return run_query(s->before, before, limit, fn, ud);
}

void pv_store_close(struct pv_store *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pv_wake_notify(&s->wake);
    pv_wake_notify(&s->rwake);
    pthread_join(s->thread, NULL);
    pthread_join(s->reader, NULL);
    /* A clean stop: every seq given out is stored (see pv_store_open). */
    char err[256];
    if (!pv_store_failure(s) &&
        exec(s->w, "UPDATE meta SET value = '0' WHERE key = 'open'", err, sizeof(err)))
        pv_warn("history store: %s", err);
    /* Requests the reader did not take, and answers nobody collected: the
     * caller broke the contract (store.h). Their rows go; the structs are
     * the caller's. */
    unsigned left = 0;
    for (struct cds_wfcq_node *n;
         (n = pv_chan_pop(&s->requests)) || (n = pv_chan_pop(&s->answers));) {
        pv_store_read_release(CONTAINER(n, struct pv_store_read, node));
        left++;
    }
    if (left)
        pv_warn("history store: closed with %u read request(s) never collected", left);
    release(s);
}
