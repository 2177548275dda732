/* store.c -- durable history in SQLite with a group-committing writer
 * thread (see store.h).
 *
 * Threads: pv_store_append() on the single producer; writer_main() on the
 * store's writer thread, which alone uses `w` (the write connection);
 * readers use `r` from one thread at a time. Shared: the wfcqueue
 * (producer -> writer), the wake and commit eventfds, and the atomics
 * committed, transactions and failure. */
#include "palaver/store.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/proto.h"
#include "palaver/tsan.h"
#include "palaver/xalloc.h"

struct pv_store {
    struct __cds_wfcq_head head;
    struct cds_wfcq_tail tail;
    int wake_fd;   /* producer -> writer: the queue went non-empty, or stop */
    int commit_fd; /* writer -> anyone: a commit happened */
    atomic_bool stop;
    atomic_uint_fast64_t committed;
    atomic_uint_fast64_t transactions;
    _Atomic(const char *) failure; /* static string or strdup'd, set once */
    char *failure_owned;

    sqlite3 *w, *r;
    sqlite3_stmt *insert, *prune, *range, *before;
    unsigned keep;
    uint64_t last_seq;
    char id[17];
    pthread_t thread;
};

/* Bumps an eventfd; EAGAIN means a wake-up is already pending. */
static void signal_fd(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof(one));
    (void)r;
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

static struct pv_store_msg *pop(struct pv_store *s)
{
    for (;;) {
        struct cds_wfcq_node *n = __cds_wfcq_dequeue_nonblocking(&s->head, &s->tail);
        if (n == NULL)
            return NULL;
        if (n != CDS_WFCQ_WOULDBLOCK) {
            /* liburcu orders the node's contents with its own barriers,
             * which ThreadSanitizer cannot see (tsan.h). */
            pv_tsan_acquire(s);
            return (struct pv_store_msg *)(void *)((char *)n - offsetof(struct pv_store_msg, node));
        }
        poll(NULL, 0, 0); /* the producer is finishing its enqueue */
    }
}

/* One transaction with everything queued now. */
static void commit_batch(struct pv_store *s, struct pv_store_msg *first)
{
    uint64_t top = 0;
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
    atomic_store_explicit(&s->committed, top, memory_order_release);
    atomic_fetch_add_explicit(&s->transactions, 1, memory_order_relaxed);
    signal_fd(s->commit_fd);
}

static void *writer_main(void *arg)
{
    struct pv_store *s = arg;
    for (;;) {
        struct pv_store_msg *m = pop(s);
        if (m) {
            commit_batch(s, m);
            continue;
        }
        if (atomic_load(&s->stop))
            return NULL;
        struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
        if (poll(&p, 1, 1000) > 0) {
            uint64_t v;
            ssize_t r = read(s->wake_fd, &v, sizeof(v));
            (void)r;
        }
    }
}

/* Frees everything but the thread (not started, or joined). */
static void release(struct pv_store *s)
{
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->prune);
    sqlite3_finalize(s->range);
    sqlite3_finalize(s->before);
    sqlite3_close(s->w);
    sqlite3_close(s->r);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->commit_fd >= 0)
        close(s->commit_fd);
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
    s->wake_fd = s->commit_fd = -1;
    __cds_wfcq_init(&s->head, &s->tail);
    s->keep = o ? o->keep : 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/palaver.db", dir);
    if (sqlite3_open_v2(path, &s->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path, s->w ? sqlite3_errmsg(s->w) : "no memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->w, 5000);
    /* WAL + FULL: each COMMIT is fsync'd, so an acknowledged message
     * survives kill -9 and power loss. */
    if (exec(s->w, "PRAGMA journal_mode=WAL", err, errsz) ||
        exec(s->w, "PRAGMA synchronous=FULL", err, errsz) ||
        exec(s->w, "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, "
                   "server_date INTEGER NOT NULL, json TEXT NOT NULL)", err, errsz) ||
        exec(s->w, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
             err, errsz) ||
        exec(s->w, "PRAGMA quick_check", err, errsz))
        goto fail;
    /* The history's identity: seq numbers are comparable across restarts
     * for as long as this database lives. */
    sqlite3_stmt *idq;
    if (prepare(s->w, "SELECT value FROM meta WHERE key = 'history-id'", &idq, err, errsz))
        goto fail;
    if (sqlite3_step(idq) == SQLITE_ROW)
        snprintf(s->id, sizeof(s->id), "%s", (const char *)sqlite3_column_text(idq, 0));
    sqlite3_finalize(idq);
    if (!s->id[0]) {
        char q[128];
        pv_new_id(s->id);
        snprintf(q, sizeof(q), "INSERT INTO meta(key, value) VALUES('history-id', '%s')", s->id);
        if (exec(s->w, q, err, errsz))
            goto fail;
    }
    if (o && o->max_pages) {
        snprintf(pragma, sizeof(pragma), "PRAGMA max_page_count=%u", o->max_pages);
        if (exec(s->w, pragma, err, errsz))
            goto fail;
    }
    if (prepare(s->w, "INSERT INTO messages(seq, server_date, json) VALUES(?,?,?)", &s->insert,
                err, errsz) ||
        prepare(s->w, "DELETE FROM messages WHERE seq <= ?", &s->prune, err, errsz))
        goto fail;
    sqlite3_stmt *last;
    if (prepare(s->w, "SELECT COALESCE(MAX(seq), 0) FROM messages", &last, err, errsz))
        goto fail;
    if (sqlite3_step(last) == SQLITE_ROW)
        s->last_seq = (uint64_t)sqlite3_column_int64(last, 0);
    sqlite3_finalize(last);
    atomic_init(&s->committed, s->last_seq);

    if (sqlite3_open_v2(path, &s->r, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        prepare(s->r, "SELECT seq, server_date, json FROM messages WHERE seq > ? ORDER BY seq "
                      "LIMIT ?", &s->range, err, errsz) ||
        prepare(s->r, "SELECT seq, server_date, json FROM (SELECT * FROM messages WHERE seq < ? "
                      "ORDER BY seq DESC LIMIT ?) ORDER BY seq", &s->before, err, errsz))
        goto fail;
    sqlite3_busy_timeout(s->r, 5000);

    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->commit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0 || s->commit_fd < 0) {
        snprintf(err, errsz, "eventfd: %s", strerror(errno));
        goto fail;
    }
    int e = pthread_create(&s->thread, NULL, writer_main, s);
    if (e) {
        snprintf(err, errsz, "cannot start the store writer: %s", strerror(e));
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
    cds_wfcq_node_init(&m->node);
    pv_tsan_release(s);
    /* enqueue returns false when the queue was empty: wake the writer. */
    if (!cds_wfcq_enqueue(&s->head, &s->tail, &m->node))
        signal_fd(s->wake_fd);
}

uint64_t pv_store_committed(struct pv_store *s)
{
    return atomic_load_explicit(&s->committed, memory_order_acquire);
}

int pv_store_commit_fd(const struct pv_store *s)
{
    return s->commit_fd;
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
    return run_query(s->range, after, limit, fn, ud);
}

int pv_store_before(struct pv_store *s, uint64_t before, unsigned limit, pv_store_fn fn,
                    void *ud)
{
    return run_query(s->before, before, limit, fn, ud);
}

void pv_store_close(struct pv_store *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    signal_fd(s->wake_fd);
    pthread_join(s->thread, NULL);
    release(s);
}
