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

#include "palaver/clock.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/ids.h"
#include "palaver/wake.h"
#include "palaver/xalloc.h"

/* The writer's accounting of what each sender has stored, for fair
 * retention: open addressing on the sender's address, never shrunk
 * during a run (a sender whose rows all went keeps an empty slot; the
 * table is rebuilt from the database after a rollback). Writer only. */
struct sender {
    char key[48];
    uint64_t rows, bytes;
};

struct senders {
    struct sender *slot;
    size_t cap, used; /* cap: a power of two, or 0 */
};

/* A range of seqs relayed but not stored (a full database). */
struct lost_range {
    uint64_t from, to;
    struct cds_wfcq_node node;
};

#define PV_MARKERS_EVERY_MS 1000 /* read markers: one transaction a second */

struct pv_store {
    /* Read markers and settings waiting to be applied (the writer's):
     * at most one transaction of them a second (PV_MARKERS_EVERY_MS),
     * a read position kept once per (room, user), the highest. */
    struct pv_store_msg **markers;
    size_t markers_n, markers_cap;
    uint64_t markers_ns; /* monotonic: the last transaction of them */
    /* Channels and wake-ups (wake.h). */
    struct pv_chan msgs;     /* producer -> writer */
    struct pv_chan requests; /* producer -> reader */
    struct pv_chan answers;  /* reader -> producer */
    struct pv_chan lost;     /* writer -> producer: struct lost_range */
    struct pv_wake wake;     /* producer -> writer: msgs went non-empty, or stop */
    struct pv_wake rwake;    /* producer -> reader: the same for requests */
    struct pv_wake event;    /* writer, reader -> producer: a commit or an answer */
    atomic_bool stop;
    atomic_uint_fast64_t committed;
    atomic_uint_fast64_t decided; /* committed or lost; lost ranges pushed first */
    atomic_uint_fast64_t first;   /* lowest seq stored (0: none) */
    atomic_uint_fast64_t transactions;
    atomic_uint_fast64_t lost_total, bytes_pub, rows_pub;
    atomic_bool full;              /* the last batch was lost to a full database */
    _Atomic(const char *) failure; /* static string or strdup'd, set once */
    char *failure_owned;

    sqlite3 *w, *r, *rd;
    sqlite3_stmt *insert, *prune_oldest, *prune_sender, *prune_age, *min_w; /* w */
    sqlite3_stmt *old_row, *replace_row, *audit;                            /* w */
    sqlite3_stmt *range, *before;                                           /* r */
    sqlite3_stmt *rd_range, *rd_before, *rd_oldest;                         /* rd */
    sqlite3_stmt *rd_room_seq, *rd_room_rseq, *rd_room_oldest;              /* rd */
    unsigned keep, max_age_s, share, protect;
    uint64_t max_bytes; /* the configured byte limit (0: none) */
    uint64_t last_seq;
    uint64_t last_rseq;   /* the lobby's, at open */
    uint64_t age_checked; /* writer: monotonic ns of the last age prune */
    /* Writer only: the accounting, and the batch being committed. */
    struct senders senders;
    uint64_t rows, bytes;
    uint64_t room;          /* bytes that fit, learnt from a full database (0: unknown) */
    uint64_t room_raised;   /* monotonic ns of the last change to room */
    uint64_t lost_runs;     /* batches lost since the last commit */
    bool recount;           /* a room's rows were rewritten: recount after the commit */
    uint64_t rooms_checked; /* writer: monotonic ns of the last per-room retention pass */
    sqlite3_stmt *expire;   /* w: that pass (NULL: a schema without per-room retention) */
    sqlite3_stmt *attach;   /* w: a message's files (and their previews) get its seq */
    struct pv_store_msg **batch;
    size_t batch_cap;
    const char *what; /* the statement that failed last, */
    int rc;           /* its SQLite code */
    char errmsg[200]; /* and SQLite's message */
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
    snprintf(buf, sizeof(buf), "%s: %s", what ? what : "COMMIT",
             s->errmsg[0] ? s->errmsg : sqlite3_errmsg(s->w));
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

/* ---- The writer's accounting (rows and bytes, per sender) ---- */

static uint64_t key_hash(const char *k)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211u;
    return h;
}

/* The slot for `key` ('' -- rows stored before senders were recorded --
 * is kept as "?"), created empty if new. */
static struct sender *sender_slot(struct senders *t, const char *key)
{
    if (t->used * 2 >= t->cap) { /* grow: at most half full */
        struct senders n = {.cap = t->cap ? t->cap * 2 : 64};
        n.slot = pv_xcalloc(n.cap, sizeof(*n.slot));
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slot[i].key[0])
                continue;
            size_t j = key_hash(t->slot[i].key) & (n.cap - 1);
            while (n.slot[j].key[0])
                j = (j + 1) & (n.cap - 1);
            n.slot[j] = t->slot[i];
            n.used++;
        }
        free(t->slot);
        *t = n;
    }
    if (!key[0])
        key = "?";
    size_t j = key_hash(key) & (t->cap - 1);
    while (t->slot[j].key[0] && strcmp(t->slot[j].key, key) != 0)
        j = (j + 1) & (t->cap - 1);
    if (!t->slot[j].key[0]) {
        snprintf(t->slot[j].key, sizeof(t->slot[j].key), "%s", key);
        t->used++;
    }
    return &t->slot[j];
}

static void account(struct pv_store *s, const char *sender, int64_t rows, int64_t bytes)
{
    struct sender *e = sender_slot(&s->senders, sender ? sender : "");
    e->rows += (uint64_t)rows;
    e->bytes += (uint64_t)bytes;
    s->rows += (uint64_t)rows;
    s->bytes += (uint64_t)bytes;
}

static void publish_size(struct pv_store *s)
{
    atomic_store_explicit(&s->bytes_pub, s->bytes, memory_order_relaxed);
    atomic_store_explicit(&s->rows_pub, s->rows, memory_order_relaxed);
}

/* Rebuilds the accounting from the database (at open, and after a
 * rollback undid what the counters had seen). */
static int load_accounting(struct pv_store *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->w,
                           "SELECT sender, COUNT(*), TOTAL(bytes) FROM messages GROUP BY sender",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    free(s->senders.slot);
    s->senders = (struct senders){0};
    s->rows = s->bytes = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        account(s, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                (int64_t)sqlite3_column_double(st, 2));
    sqlite3_finalize(st);
    publish_size(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Remembers why a statement failed, at the point of failure (a ROLLBACK
 * afterwards would overwrite SQLite's message). Returns the primary code. */
static int note(struct pv_store *s, const char *what)
{
    s->what = what;
    s->rc = sqlite3_errcode(s->w);
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->w));
    return s->rc;
}

/* Steps a DELETE ... RETURNING sender, bytes, taking each row off the
 * accounting. Returns the rows deleted, or -1 (s->what says which). */
static int run_delete(struct pv_store *s, sqlite3_stmt *st, const char *what)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        account(s, (const char *)sqlite3_column_text(st, 0), -1, -sqlite3_column_int64(st, 1));
        n++;
    }
    if (rc != SQLITE_DONE)
        note(s, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? n : -1;
}

static int delete_oldest(struct pv_store *s, uint64_t n)
{
    sqlite3_bind_int64(s->prune_oldest, 1, (sqlite3_int64)n);
    return run_delete(s, s->prune_oldest, "retention DELETE");
}

/* ---- Retention ---- */

/* The byte limit in force: the configured one, lowered to what a full
 * database showed fits. */
static uint64_t byte_limit(const struct pv_store *s)
{
    if (s->room && (!s->max_bytes || s->room < s->max_bytes))
        return s->room;
    return s->max_bytes;
}

/* The sender holding the most rows (by_rows) or bytes. Linear in the
 * senders seen this run: a LAN's worth of addresses. */
static struct sender *heaviest(struct pv_store *s, bool by_rows)
{
    struct sender *best = NULL;
    for (size_t i = 0; i < s->senders.cap; i++) {
        struct sender *e = &s->senders.slot[i];
        if (!e->rows)
            continue;
        if (!best || (by_rows ? e->rows > best->rows : e->bytes > best->bytes))
            best = e;
    }
    return best;
}

/* Inside the open transaction of the batch ending at `top`: brings rows
 * down to keep and bytes (plus `extra`, about to be inserted) down to 90 %
 * of the limit when over it (headroom, so this does not run on every
 * commit). Called before the inserts with their bytes (room first, so a
 * full database is rarely reached) and after them with 0 (exact keep). A
 * sender over its share loses its own oldest first, below the protected
 * newest seqs; otherwise, or when it has nothing there, the oldest go. */
static int retain(struct pv_store *s, uint64_t top, uint64_t extra)
{
    uint64_t limit = byte_limit(s);
    bool over_rows = s->keep && s->rows > s->keep;
    bool over_bytes = limit && s->bytes + extra > limit;
    if (!over_rows && !over_bytes)
        return 0;
    uint64_t target_bytes = limit ? limit - limit / 10 : UINT64_MAX;
    uint64_t target_rows = s->keep ? s->keep : UINT64_MAX;
    uint64_t fair_top = top > s->protect ? top - s->protect : 0;
    bool fair = s->share > 0 && s->share < 100;
    unsigned guard = 0;
    while ((s->rows > target_rows || s->bytes + extra > target_bytes) && s->rows > 0 &&
           guard++ < 100000) {
        bool by_rows = s->rows > target_rows;
        /* Over bytes: about as many rows as the excess needs, at the
         * average row size (a few more statements beat deleting too much). */
        uint64_t avg = s->bytes / s->rows + 1;
        uint64_t want =
            by_rows ? s->rows - target_rows : (s->bytes + extra - target_bytes) / avg + 1;
        if (want > 1000)
            want = 1000;
        struct sender *h = fair ? heaviest(s, by_rows) : NULL;
        if (h && (by_rows ? h->rows * 100 > (uint64_t)s->keep * s->share
                          : h->bytes * 100 > limit * s->share)) {
            /* Below the protected seqs first; if the sender has nothing
             * there (its flood is all newer), its oldest anyway: a resume
             * over that hole gets a reset, which is better than everyone
             * else's history going. */
            int n = 0;
            for (int pass = 0; pass < 2 && n == 0; pass++) {
                sqlite3_bind_text(s->prune_sender, 1, strcmp(h->key, "?") ? h->key : "", -1,
                                  SQLITE_TRANSIENT);
                sqlite3_bind_int64(s->prune_sender, 2, (sqlite3_int64)(pass == 0 ? fair_top : top));
                sqlite3_bind_int64(s->prune_sender, 3, (sqlite3_int64)want);
                n = run_delete(s, s->prune_sender, "retention DELETE (sender share)");
                if (n < 0)
                    return -1;
            }
            if (n > 0)
                continue;
        }
        int n = delete_oldest(s, want);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
    }
    return 0;
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
        deleted = run_delete(s, s->prune_age, "retention DELETE by age");
        if (deleted < 0) {
            if (load_accounting(s))
                pv_warn("history store: could not recount the stored messages");
            if (s->rc != SQLITE_FULL)
                fail(s, s->what);
            return;
        }
        if (deleted) {
            atomic_store_explicit(&s->first, query_oldest(s->min_w), memory_order_relaxed);
            publish_size(s);
            pv_debug("history store: %d message(s) older than %u s deleted", deleted, s->max_age_s);
        }
    } while (deleted == 1000);
}

/* Retention per room (store.h): the rows of rooms with a keep count or a
 * maximum age beyond it become tombstones (text, sender and all gone; seq,
 * room and rseq kept), in one statement over those rooms' rows, at most
 * once a second. The accounting is recounted when rows changed. */
static void expire_rooms(struct pv_store *s)
{
    uint64_t now = mono_ns();
    if (!s->expire || atomic_load(&s->failure) || now - s->rooms_checked < 1000000000u)
        return;
    s->rooms_checked = now;
    sqlite3_bind_int64(s->expire, 1, pv_now_ms());
    int rc = sqlite3_step(s->expire);
    sqlite3_reset(s->expire);
    if (rc != SQLITE_DONE) {
        pv_warn("history store: per-room retention failed: %s (tried again in a second)",
                sqlite3_errmsg(s->w));
        return;
    }
    int changed = sqlite3_changes(s->w);
    if (changed > 0) {
        pv_debug("history store: %d message(s) of rooms with their own retention expired", changed);
        if (load_accounting(s))
            pv_warn("history store: could not recount the stored messages");
        publish_size(s);
    }
}

/* An edit or a deletion (m->target, store.h): the target's row gets the
 * new JSON, and the retention accounting its new size, in the same
 * transaction as the event itself. A target retention already took is
 * left gone. */
static int replace_target(struct pv_store *s, const struct pv_store_msg *m)
{
    int rc = SQLITE_OK;
    sqlite3_bind_int64(s->old_row, 1, (sqlite3_int64)m->target);
    int step = sqlite3_step(s->old_row);
    if (step == SQLITE_ROW) {
        char sender[48];
        snprintf(sender, sizeof(sender), "%s", (const char *)sqlite3_column_text(s->old_row, 0));
        int64_t old_bytes = sqlite3_column_int64(s->old_row, 1);
        size_t len;
        const unsigned char *json = pv_frame_payload(m->replace, &len);
        int64_t bytes = (int64_t)len + PV_STORE_ROW_OVERHEAD;
        sqlite3_bind_int64(s->replace_row, 1, (sqlite3_int64)m->target);
        sqlite3_bind_text(s->replace_row, 2, (const char *)json, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(s->replace_row, 3, bytes);
        if (sqlite3_step(s->replace_row) != SQLITE_DONE)
            rc = note(s, "UPDATE (edit or delete)");
        else
            account(s, sender, 0, bytes - old_bytes);
        sqlite3_reset(s->replace_row);
        sqlite3_clear_bindings(s->replace_row);
    } else if (step != SQLITE_DONE) {
        rc = note(s, "SELECT (edit or delete)");
    }
    sqlite3_reset(s->old_row);
    sqlite3_clear_bindings(s->old_row);
    return rc;
}

static int audit(struct pv_store *s, const struct pv_store_msg *m)
{
    int rc = SQLITE_OK;
    sqlite3_bind_int64(s->audit, 1, m->server_date);
    sqlite3_bind_int64(s->audit, 2, m->audit->actor_id);
    sqlite3_bind_text(s->audit, 3, m->audit->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->audit, 4, m->audit->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->audit, 5, m->audit->target, -1, SQLITE_STATIC);
    if (sqlite3_step(s->audit) != SQLITE_DONE)
        rc = note(s, "INSERT (audit)");
    sqlite3_reset(s->audit);
    sqlite3_clear_bindings(s->audit);
    return rc;
}

static int run_op(struct pv_store *s, sqlite3_stmt *st, const struct pv_store_room_op *op);

/* A room or membership change (store.h), inside the caller's transaction. */
static int apply_op(struct pv_store *s, const struct pv_store_room_op *op)
{
    static const char *const sql[] = {
        [PV_OP_ROOM_CREATE] = "INSERT INTO rooms (id, name, name_key, kind, topic, created_by, "
                              "created) VALUES (?1, ?2, ?3, ?4, COALESCE(?5, ''), ?6, ?7)",
        [PV_OP_MEMBER_ADD] = "INSERT INTO room_members (room_id, user_id, role, joined, "
                             "last_read) VALUES (?1, ?8, ?9, ?7, ?10) ON CONFLICT DO UPDATE SET "
                             "role = excluded.role",
        [PV_OP_MEMBER_REMOVE] = "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?8",
        [PV_OP_TOPIC] = "UPDATE rooms SET topic = COALESCE(?5, '') WHERE id = ?1",
        [PV_OP_ARCHIVE] = "UPDATE rooms SET archived = ?7 WHERE id = ?1",
        /* Every row of the room becomes a tombstone naming no room (its seq
         * stays: resumes see no hole), then the room and its members go. */
        [PV_OP_RETENTION] = "UPDATE rooms SET keep = ?11, max_age_s = ?12 WHERE id = ?1",
        /* A rename: the room's row, and every stored frame of the room names
         * it anew (a resume or a page never shows the old name); O(the
         * room's rows), once per rename. Tombstones of a deleted room name
         * none and are not its rows any more. */
        [PV_OP_RENAME] =
            "UPDATE rooms SET name = ?2, name_key = ?3 WHERE id = ?1;"
            "UPDATE messages SET json = json_set(json, '$.room', ?2) WHERE room_id = ?1 "
            "AND json_extract(json, '$.room') IS NOT NULL;"
            "UPDATE messages SET bytes = length(json) + 64 WHERE room_id = ?1",
        [PV_OP_ROOM_DELETE] =
            "UPDATE messages SET json = json_object('type', 'deleted', 'seq', seq, 'room', '', "
            "'rseq', rseq, 'serverDate', server_date, 'deletedAt', ?7) WHERE room_id = ?1;"
            "UPDATE messages SET bytes = length(json) + 64 WHERE room_id = ?1;"
            "DELETE FROM room_members WHERE room_id = ?1;"
            "DELETE FROM rooms WHERE id = ?1",
        /* The lobby's membership is implicit: its row exists for last_read
         * only. Another room's read marker never makes a member. */
        [PV_OP_READ] = "INSERT INTO room_members (room_id, user_id, last_read, joined) "
                       "SELECT ?1, ?8, ?10, ?7 WHERE ?1 = 1 OR EXISTS (SELECT 1 FROM room_members "
                       "WHERE room_id = ?1 AND user_id = ?8) ON CONFLICT DO UPDATE SET "
                       "last_read = max(last_read, excluded.last_read)",
        /* A person's own setting (docs/receipts.md); value 0 or 1. */
        [PV_OP_RECEIPTS] = "UPDATE users SET read_receipts = ?10 WHERE id = ?8",
    };
    const char *next = sql[op->kind];
    int rc = SQLITE_OK;
    while (rc == SQLITE_OK && next && *next) { /* one statement at a time */
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->w, next, -1, &st, &next) != SQLITE_OK)
            return note(s, "prepare (room change)");
        if (!st)
            break;
        rc = run_op(s, st, op);
    }
    if (op->kind == PV_OP_ROOM_DELETE || op->kind == PV_OP_RENAME)
        s->recount = true;
    return rc;
}

/* One statement of a room change, its parameters bound by number (a
 * statement ignores those it does not have). */
static int run_op(struct pv_store *s, sqlite3_stmt *st, const struct pv_store_room_op *op)
{
    sqlite3_bind_int64(st, 1, op->room);
    if (op->name)
        sqlite3_bind_text(st, 2, op->name, -1, SQLITE_STATIC);
    if (op->key)
        sqlite3_bind_text(st, 3, op->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, op->room_kind, -1, SQLITE_STATIC);
    if (op->topic)
        sqlite3_bind_text(st, 5, op->topic, -1, SQLITE_STATIC);
    if (op->by > 0)
        sqlite3_bind_int64(st, 6, op->by);
    sqlite3_bind_int64(st, 7, op->at);
    sqlite3_bind_int64(st, 8, op->user);
    sqlite3_bind_text(st, 9, op->role[0] ? op->role : "member", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)op->value);
    sqlite3_bind_int64(st, 11, op->keep);
    sqlite3_bind_int64(st, 12, op->max_age_s);
    int rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : note(s, "room change");
    sqlite3_finalize(st);
    return rc;
}

static void op_free(struct pv_store_room_op *op)
{
    if (!op)
        return;
    free(op->name);
    free(op->key);
    free(op->topic);
    free(op);
}

/* Read markers and settings (messages with an op and no frame): kept
 * until a second has passed since the last transaction of them, then
 * applied in one transaction of their own, after the rows committed
 * meanwhile; a marker that fails is logged and dropped (the next one
 * carries the position again). One transaction a second, not one per
 * batch: each commit is an fsync, and 1,000 readers marking once a second
 * would otherwise double the commits the chat's acks wait for (measured:
 * -16 % deliveries/s, docs/receipts.md). A crash loses at most the last
 * second of read positions; the pages send them again. */
static void keep_marker(struct pv_store *s, struct pv_store_msg *m)
{
    struct pv_store_room_op *op = m->op;
    for (size_t i = 0; op && op->kind == PV_OP_READ && i < s->markers_n; i++) {
        struct pv_store_room_op *o = s->markers[i]->op;
        if (o && o->kind == PV_OP_READ && o->room == op->room && o->user == op->user) {
            if (op->value > o->value)
                o->value = op->value;
            op_free(op);
            free(m);
            return;
        }
    }
    if (s->markers_n == s->markers_cap) {
        s->markers_cap = s->markers_cap ? s->markers_cap * 2 : 64;
        s->markers = pv_xrealloc(s->markers, s->markers_cap * sizeof(*s->markers));
    }
    s->markers[s->markers_n++] = m;
}

static void apply_markers(struct pv_store *s, struct pv_store_msg **ops, size_t n)
{
    if (!n || atomic_load(&s->failure))
        return;
    int rc = SQLITE_OK;
    if (sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        rc = note(s, "BEGIN (read markers)");
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
        rc = apply_op(s, ops[i]->op);
    if (rc == SQLITE_OK && sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = note(s, "COMMIT (read markers)");
    if (rc != SQLITE_OK) {
        sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
        pv_warn("history store: %zu read marker(s) not stored (%s: %s)", n, s->what, s->errmsg);
    }
}

/* One attempt at storing batch[0..n) in one transaction, with retention.
 * Returns SQLITE_OK, or the error code (s->what names the step); on an
 * error everything is rolled back and the accounting recounted. */
static int store_batch(struct pv_store *s, struct pv_store_msg **batch, size_t n, size_t bytes)
{
    int rc = SQLITE_OK;
    if (sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return note(s, "BEGIN");
    if (retain(s, batch[n - 1]->seq, bytes) < 0)
        rc = s->rc;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        struct pv_store_msg *m = batch[i];
        size_t len;
        const unsigned char *json = pv_frame_payload(m->frame, &len);
        sqlite3_bind_int64(s->insert, 1, (sqlite3_int64)m->seq);
        sqlite3_bind_int64(s->insert, 2, m->server_date);
        sqlite3_bind_text(s->insert, 3, (const char *)json, (int)len, SQLITE_STATIC);
        sqlite3_bind_text(s->insert, 4, m->sender, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->insert, 5, (sqlite3_int64)len + PV_STORE_ROW_OVERHEAD);
        sqlite3_bind_int64(s->insert, 6, m->room ? (sqlite3_int64)m->room : 1);
        sqlite3_bind_int64(s->insert, 7, (sqlite3_int64)m->rseq);
        if (sqlite3_step(s->insert) != SQLITE_DONE)
            rc = note(s, "INSERT");
        else
            account(s, m->sender, 1, (int64_t)(len + PV_STORE_ROW_OVERHEAD));
        sqlite3_reset(s->insert);
        sqlite3_clear_bindings(s->insert);
        if (rc == SQLITE_OK && m->files) {
            sqlite3_bind_int64(s->attach, 1, (sqlite3_int64)m->seq);
            sqlite3_bind_text(s->attach, 2, (const char *)json, (int)len, SQLITE_STATIC);
            if (sqlite3_step(s->attach) != SQLITE_DONE)
                rc = note(s, "UPDATE attachments");
            sqlite3_reset(s->attach);
            sqlite3_clear_bindings(s->attach);
        }
        if (rc == SQLITE_OK && m->target && m->replace)
            rc = replace_target(s, m);
        if (rc == SQLITE_OK && m->audit)
            rc = audit(s, m);
        if (rc == SQLITE_OK && m->op)
            rc = apply_op(s, m->op);
    }
    if (rc == SQLITE_OK && retain(s, batch[n - 1]->seq, 0) < 0)
        rc = s->rc;
    if (rc == SQLITE_OK && sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = note(s, "COMMIT");
    if (rc != SQLITE_OK || s->recount) {
        if (rc != SQLITE_OK)
            sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
        s->recount = false;
        if (load_accounting(s))
            pv_warn("history store: could not recount the stored messages");
    }
    return rc;
}

static size_t msg_bytes(const struct pv_store_msg *m)
{
    size_t len;
    pv_frame_payload(m->frame, &len);
    return len + PV_STORE_ROW_OVERHEAD;
}

/* The end of the chunk of batch[i..n) stored in one transaction: at most
 * an eighth of the byte limit (at least one message), so a burst never
 * needs more room than retention keeps free. *bytes gets its size. */
static size_t chunk_end(const struct pv_store *s, size_t i, size_t n, size_t *bytes)
{
    uint64_t limit = byte_limit(s), most = limit ? limit / 8 : UINT64_MAX;
    size_t j = i, b = 0;
    while (j < n && (j == i || b + msg_bytes(s->batch[j]) <= most))
        b += msg_bytes(s->batch[j++]);
    *bytes = b;
    return j;
}

/* The database was full with `had` bytes of messages in it or on their
 * way: from now on retention keeps to 90 % of that, probing upwards by a
 * thirty-second a minute (room_probe) in case the disk got room again. */
static void learn_room(struct pv_store *s, uint64_t had)
{
    uint64_t room = had - had / 10;
    if (s->room && room >= s->room)
        room = s->room - s->room / 10; /* full again at the limit: lower it */
    s->room = room ? room : 1;
    s->room_raised = mono_ns();
    pv_warn("history store: the database is full at %llu bytes of messages; keeping at most %llu "
            "from now on (history-max-bytes %llu), the oldest go first",
            (unsigned long long)had, (unsigned long long)s->room, (unsigned long long)s->max_bytes);
}

static void room_probe(struct pv_store *s)
{
    if (!s->room || mono_ns() - s->room_raised < 60000000000u)
        return;
    s->room += s->room / 32 + 1;
    s->room_raised = mono_ns();
    if (s->max_bytes && s->room >= s->max_bytes)
        s->room = 0; /* back to the configured limit */
}

static struct pv_log_limit lost_lines = PV_LOG_LIMIT("history store: batch not stored");

/* Publishes the fate of seq bottom..top: stored (rc SQLITE_OK) or lost. */
static void decide(struct pv_store *s, uint64_t bottom, uint64_t top, size_t bytes, int rc)
{
    if (rc == SQLITE_OK) {
        atomic_store_explicit(&s->first, query_oldest(s->min_w), memory_order_relaxed);
        publish_size(s);
        atomic_store_explicit(&s->committed, top, memory_order_release);
        atomic_fetch_add_explicit(&s->transactions, 1, memory_order_relaxed);
        if (s->lost_runs) {
            pv_notice("history store: storing again after %llu batch(es) lost to a full "
                      "database (%llu message(s) in all so far)",
                      (unsigned long long)s->lost_runs,
                      (unsigned long long)atomic_load(&s->lost_total));
            s->lost_runs = 0;
            atomic_store(&s->full, false);
        }
    } else {
        struct lost_range *l = pv_xcalloc(1, sizeof(*l));
        l->from = bottom;
        l->to = top;
        pv_chan_push(&s->lost, &l->node); /* before `decided`: store.h */
        atomic_fetch_add(&s->lost_total, top - bottom + 1);
        atomic_store(&s->full, true);
        s->lost_runs++;
        if (pv_log_limited(&lost_lines, PV_LOG_ERR, 3))
            pv_err("history store: the database is full even after deleting the oldest "
                   "messages; seq %llu-%llu (%llu message(s), %zu bytes) relayed but not stored; "
                   "trying again with the next message (%s: %s)",
                   (unsigned long long)bottom, (unsigned long long)top,
                   (unsigned long long)(top - bottom + 1), bytes, s->what, s->errmsg);
    }
    atomic_store_explicit(&s->decided, top, memory_order_release);
}

/* Everything queued now, in chunks of one transaction each: stored; or,
 * when the database is full, stored after retention made room (up to
 * four times keeping to less) or in smaller chunks; or lost, and the next
 * chunk tries again; or, on any other error, the store fails for good. */
static void commit_batch(struct pv_store *s, struct pv_store_msg *first)
{
    size_t n = 0;
    for (struct pv_store_msg *m = first; m; m = pop(s)) {
        if (!m->frame) { /* a read marker or a setting: no row, kept for later */
            keep_marker(s, m);
            continue;
        }
        if (n == s->batch_cap) {
            s->batch_cap = s->batch_cap ? s->batch_cap * 2 : 256;
            s->batch = pv_xrealloc(s->batch, s->batch_cap * sizeof(*s->batch));
        }
        s->batch[n++] = m;
    }
    room_probe(s);
    for (size_t i = 0, j; i < n && !atomic_load(&s->failure); i = j) {
        size_t bytes;
        j = chunk_end(s, i, n, &bytes);
        int rc = store_batch(s, s->batch + i, j - i, bytes);
        /* Full: a chunk bigger than the history is halved first (deleting
         * history would not make room for it); otherwise the history is
         * what fills the database, and retention learns to keep less. One
         * message bigger than the history that does not fit is lost. */
        for (int learnt = 0, halved = 0; rc == SQLITE_FULL && learnt < 4 && halved < 32;) {
            if (bytes > s->bytes && j - i > 1) {
                j = i + (j - i) / 2;
                bytes = 0;
                for (size_t k = i; k < j; k++)
                    bytes += msg_bytes(s->batch[k]);
                halved++;
            } else if (bytes <= s->bytes) {
                learn_room(s, s->bytes + bytes);
                j = chunk_end(s, i, j, &bytes);
                learnt++;
            } else {
                break;
            }
            rc = store_batch(s, s->batch + i, j - i, bytes);
        }
        if (rc == SQLITE_OK || rc == SQLITE_FULL)
            decide(s, s->batch[i]->seq, s->batch[j - 1]->seq, bytes, rc);
        else
            fail(s, s->what);
    }
    for (size_t i = 0; i < n; i++) {
        pv_frame_unref(s->batch[i]->frame);
        if (s->batch[i]->replace)
            pv_frame_unref(s->batch[i]->replace);
        free(s->batch[i]->audit);
        op_free(s->batch[i]->op);
        free(s->batch[i]);
    }
    pv_wake_notify(&s->event);
}

/* The markers kept, if their second is up (or `now`: at stop). */
static void flush_markers(struct pv_store *s, bool now)
{
    uint64_t t = pv_mono_ns();
    if (!s->markers_n || (!now && t - s->markers_ns < (uint64_t)PV_MARKERS_EVERY_MS * 1000000u))
        return;
    apply_markers(s, s->markers, s->markers_n);
    for (size_t i = 0; i < s->markers_n; i++) {
        op_free(s->markers[i]->op);
        free(s->markers[i]);
    }
    s->markers_n = 0;
    s->markers_ns = t;
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pv-store-write");
    struct pv_store *s = arg;
    for (;;) {
        prune_by_age(s);
        expire_rooms(s);
        struct pv_store_msg *m = pop(s);
        if (m) {
            commit_batch(s, m);
            flush_markers(s, false);
            continue;
        }
        bool stop = atomic_load(&s->stop);
        flush_markers(s, stop);
        if (stop) {
            free(s->markers);
            return NULL;
        }
        park(&s->wake); /* at most a second: kept markers go out then */
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

/* The reader's rows, with their room (column 3). */
static int run_rows(sqlite3_stmt *st, uint64_t a, unsigned limit, struct pv_store_read *rq)
{
    int rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)a);
    sqlite3_bind_int64(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (unsigned)rq->n < (limit ? limit : 1)) {
        collect(rq, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                (const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2));
        rq->rows[rq->n - 1].room = (uint32_t)sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? rq->n : -1;
}

static void answer(struct pv_store *s, struct pv_store_read *rq)
{
    rq->rows = pv_xcalloc(rq->limit ? rq->limit : 1, sizeof(*rq->rows));
    rq->n = 0;
    /* One read transaction for both statements: oldest and rows agree. */
    sqlite3_exec(s->rd, "BEGIN", NULL, NULL, NULL);
    int rc;
    if (rq->backwards && rq->room) {
        sqlite3_bind_int64(s->rd_room_oldest, 1, rq->room);
        rq->oldest = query_oldest(s->rd_room_oldest);
        sqlite3_stmt *st = rq->by_rseq ? s->rd_room_rseq : s->rd_room_seq;
        sqlite3_bind_int64(st, 3, rq->room);
        rc = run_rows(st, rq->from, rq->limit, rq);
    } else if (rq->backwards) {
        rq->oldest = query_oldest(s->rd_oldest);
        rc = run_rows(s->rd_before, rq->from, rq->limit, rq);
    } else {
        rq->oldest = query_oldest(s->rd_oldest);
        sqlite3_bind_int64(s->rd_range, 3, (sqlite3_int64)rq->to);
        rc = run_rows(s->rd_range, rq->from, rq->limit, rq);
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
    pthread_setname_np(pthread_self(), "pv-store-read");
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
    sqlite3_stmt *st[] = {
        s->insert, s->prune_oldest, s->prune_sender, s->prune_age,      s->min_w,   s->range,
        s->before, s->rd_range,     s->rd_before,    s->rd_oldest,      s->old_row, s->replace_row,
        s->audit,  s->rd_room_seq,  s->rd_room_rseq, s->rd_room_oldest, s->expire,  s->attach};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        sqlite3_finalize(st[i]);
    /* A statement left unfinalized keeps its connection open (SQLITE_BUSY):
     * said, not ignored. */
    sqlite3 *dbs[] = {s->w, s->r, s->rd};
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
        if (sqlite3_close(dbs[i]) != SQLITE_OK)
            pv_warn("history store: a connection did not close: %s", sqlite3_errmsg(dbs[i]));
    pv_wake_destroy(&s->wake);
    pv_wake_destroy(&s->rwake);
    pv_wake_destroy(&s->event);
    for (struct cds_wfcq_node *n; (n = pv_chan_pop(&s->lost));)
        free(CONTAINER(n, struct lost_range, node));
    free(s->senders.slot);
    free(s->batch);
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

/* The schema, versioned by PRAGMA user_version; each step runs in one
 * transaction, so a database is upgraded in place or not at all.
 *  0: messages(seq, server_date, json), meta(key, value) -- palaver 0.x.
 *  1: messages gains sender and bytes (what retention counts, back-filled
 *     from the JSON), and an index on (sender, seq, bytes).
 *  2: users and sessions (accounts.h: only hashes of passwords and session
 *     tokens).
 *  3: invites (only the hash of each code).
 *  4: users gain muted_until (ms since the epoch; NULL: not muted); the
 *     audit table of moderation (who did what to whom, when).
 *  5: tokens, personal access tokens for bots (only the hash of each).
 *  6: rooms (docs/rooms.md): rooms (the lobby is room 1), room_members,
 *     and each message's room_id and rseq (its place in its room),
 *     back-filled: every message stored so far is the lobby's, its rseq
 *     its rank.
 *  7: rooms gain keep and max_age_s (their own retention).
 *  8: users gain read_receipts (1, the default: the person's read
 *     positions are shown to others; docs/receipts.md).
 *  9: files (content by SHA-256: size, detected type, image dimensions)
 *     and attachments (each upload: a random id, the uploader, the room,
 *     the sanitized name; docs/files.md).
 * 10: attachments gain seq (the message they are in; set by the writer
 *     in the transaction that stores the message) and preview_of (a
 *     preview's original). */
#define SCHEMA_VERSION 10

static int migrate(sqlite3 *db, bool readonly, char *err, size_t errsz)
{
    sqlite3_stmt *st;
    int version = 0;
    if (prepare(db, "PRAGMA user_version", &st, err, errsz))
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        snprintf(err, errsz,
                 "palaver.db has schema version %d, this palaverd knows up to %d: it was made by "
                 "a newer palaverd (nothing was changed)",
                 version, SCHEMA_VERSION);
        return -1;
    }
    if (version == SCHEMA_VERSION || readonly)
        return 0; /* read-only: served as it is */
    static const char *const steps[] = {
        /* 0: what palaver 0.x created (IF NOT EXISTS: also a new file) */
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, "
        "server_date INTEGER NOT NULL, json TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        /* 0 -> 1 */
        "ALTER TABLE messages ADD COLUMN sender TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE messages ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
        "UPDATE messages SET bytes = length(CAST(json AS BLOB)) + 64;"
        "CREATE INDEX messages_by_sender ON messages(sender, seq, bytes);"
        "PRAGMA user_version = 1;"
        "COMMIT",
        /* 1 -> 2 */
        "BEGIN IMMEDIATE;"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "name_key TEXT NOT NULL UNIQUE, pass_hash TEXT NOT NULL, role TEXT NOT NULL "
        "CHECK (role IN ('admin', 'moderator', 'member')), created INTEGER NOT NULL, "
        "banned_at INTEGER);"
        "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, "
        "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
        "created INTEGER NOT NULL, last_used INTEGER NOT NULL, expires INTEGER NOT NULL, "
        "addr TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX sessions_by_user ON sessions(user_id);"
        "PRAGMA user_version = 2;"
        "COMMIT",
        /* 2 -> 3 */
        "BEGIN IMMEDIATE;"
        "CREATE TABLE invites (code_hash TEXT PRIMARY KEY, "
        "created_by INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
        "role TEXT NOT NULL CHECK (role IN ('admin', 'moderator', 'member')), "
        "created INTEGER NOT NULL, expires INTEGER NOT NULL, uses_left INTEGER NOT NULL);"
        "PRAGMA user_version = 3;"
        "COMMIT",
        /* 3 -> 4 */
        "BEGIN IMMEDIATE;"
        "ALTER TABLE users ADD COLUMN muted_until INTEGER;"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, "
        "actor_id INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, "
        "target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"
        "PRAGMA user_version = 4;"
        "COMMIT",
        /* 4 -> 5 */
        "BEGIN IMMEDIATE;"
        "CREATE TABLE tokens (id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, "
        "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
        "name TEXT NOT NULL, created INTEGER NOT NULL, last_used INTEGER);"
        "CREATE INDEX tokens_by_user ON tokens(user_id);"
        "PRAGMA user_version = 5;"
        "COMMIT",
        /* 5 -> 6 */
        "BEGIN IMMEDIATE;"
        "CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "name_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL "
        "CHECK (kind IN ('public', 'private', 'announcement', 'dm')), "
        "topic TEXT NOT NULL DEFAULT '', created_by INTEGER, created INTEGER NOT NULL, "
        "archived INTEGER);"
        "INSERT INTO rooms (id, name, name_key, kind, created) "
        "VALUES (1, 'lobby', 'lobby', 'public', 0);"
        "CREATE TABLE room_members (room_id INTEGER NOT NULL REFERENCES rooms(id) "
        "ON DELETE CASCADE, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
        "role TEXT NOT NULL DEFAULT 'member', last_read INTEGER NOT NULL DEFAULT 0, "
        "joined INTEGER NOT NULL, PRIMARY KEY (room_id, user_id)) WITHOUT ROWID;"
        "CREATE INDEX room_members_by_user ON room_members(user_id);"
        "ALTER TABLE messages ADD COLUMN room_id INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE messages ADD COLUMN rseq INTEGER NOT NULL DEFAULT 0;"
        "UPDATE messages SET rseq = r.n FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS n "
        "FROM messages) AS r WHERE messages.seq = r.seq;"
        "CREATE INDEX messages_by_room ON messages(room_id, rseq);"
        "PRAGMA user_version = 6;"
        "COMMIT",
        /* 6 -> 7 */
        "BEGIN IMMEDIATE;"
        "ALTER TABLE rooms ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE rooms ADD COLUMN max_age_s INTEGER NOT NULL DEFAULT 0;"
        "PRAGMA user_version = 7;"
        "COMMIT",
        /* 7 -> 8 */
        "BEGIN IMMEDIATE;"
        "ALTER TABLE users ADD COLUMN read_receipts INTEGER NOT NULL DEFAULT 1;"
        "PRAGMA user_version = 8;"
        "COMMIT",
        /* 8 -> 9 */
        "BEGIN IMMEDIATE;"
        "CREATE TABLE files (hash TEXT PRIMARY KEY, size INTEGER NOT NULL, mime TEXT NOT NULL, "
        "width INTEGER, height INTEGER, created INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE attachments (id TEXT PRIMARY KEY, hash TEXT NOT NULL REFERENCES files(hash), "
        "user_id INTEGER REFERENCES users(id) ON DELETE SET NULL, room_id INTEGER NOT NULL, "
        "name TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL, "
        "addr TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
        "CREATE INDEX attachments_by_user ON attachments(user_id, created);"
        "CREATE INDEX attachments_by_hash ON attachments(hash);"
        "PRAGMA user_version = 9;"
        "COMMIT",
        /* 9 -> 10 */
        "BEGIN IMMEDIATE;"
        "ALTER TABLE attachments ADD COLUMN seq INTEGER;"
        "ALTER TABLE attachments ADD COLUMN preview_of TEXT;"
        "CREATE INDEX attachments_by_preview ON attachments(preview_of);"
        "PRAGMA user_version = 10;"
        "COMMIT",
    };
    _Static_assert(PV_STORE_ROW_OVERHEAD == 64, "the back-fill above counts 64 per row");
    for (int v = version; v < SCHEMA_VERSION; v++) {
        if (exec(db, steps[v], err, errsz)) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        pv_info("history store: schema upgraded from version %d to %d", v, v + 1);
    }
    return 0;
}

int pv_store_upgrade(const char *dir, char *err, size_t errsz)
{
    char path[4096];
    sqlite3 *db = NULL;
    int rc = -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/palaver.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if (exec(db, "PRAGMA journal_mode=WAL", err, errsz) == 0 &&
        migrate(db, sqlite3_db_readonly(db, "main") == 1, err, errsz) == 0)
        rc = 0;
out:
    sqlite3_close(db);
    return rc;
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
    pv_chan_init(&s->lost);
    s->keep = o ? o->keep : 0;
    s->max_age_s = o ? o->max_age_s : 0;
    s->max_bytes = o ? o->max_bytes : 0;
    s->share = o ? o->sender_share : 0;
    s->protect = o ? o->protect : 0;
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
        exec(s->w, "PRAGMA quick_check", err, errsz))
        goto fail;
    bool readonly = sqlite3_db_readonly(s->w, "main") == 1;
    if (migrate(s->w, readonly, err, errsz))
        goto fail;
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
    /* The write statements need schema 1; a read-only database of an
     * older schema is served as it is (nothing is written to it). */
    if (!readonly &&
        (prepare(s->w,
                 "INSERT INTO messages(seq, server_date, json, sender, bytes, room_id, rseq) "
                 "VALUES(?,?,?,?,?,?,?)",
                 &s->insert, err, errsz) ||
         prepare(s->w,
                 "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq "
                 "LIMIT ?) RETURNING sender, bytes",
                 &s->prune_oldest, err, errsz) ||
         prepare(s->w,
                 "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE sender = ?1 "
                 "AND seq <= ?2 ORDER BY seq LIMIT ?3) RETURNING sender, bytes",
                 &s->prune_sender, err, errsz) ||
         prepare(s->w,
                 "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq, "
                 "server_date FROM messages ORDER BY seq LIMIT 1000) WHERE server_date < ?) "
                 "RETURNING sender, bytes",
                 &s->prune_age, err, errsz) ||
         prepare(s->w, "SELECT sender, bytes FROM messages WHERE seq = ?", &s->old_row, err,
                 errsz) ||
         prepare(s->w, "UPDATE messages SET json = ?2, bytes = ?3 WHERE seq = ?1", &s->replace_row,
                 err, errsz) ||
         prepare(s->w, "INSERT INTO audit (at, actor_id, actor, action, target) VALUES (?,?,?,?,?)",
                 &s->audit, err, errsz)))
        goto fail;
    /* Retention per room: rows beyond a room's keep (items of the room,
     * by rseq) or older than its max_age_s become tombstones. */
    if (!readonly &&
        prepare(s->w,
                "UPDATE messages SET json = json_object('type', 'deleted', 'seq', seq, 'room', "
                "r.name, 'rseq', rseq, 'serverDate', server_date, 'expired', 1), bytes = 64 + "
                "length(json_object('type', 'deleted', 'seq', seq, 'room', r.name, 'rseq', rseq, "
                "'serverDate', server_date, 'expired', 1)) FROM rooms r WHERE messages.room_id = "
                "r.id AND (r.keep > 0 OR r.max_age_s > 0) AND messages.json NOT LIKE "
                "'{\"type\":\"deleted\"%' AND ((r.keep > 0 AND messages.rseq + r.keep <= (SELECT "
                "MAX(m2.rseq) FROM messages m2 WHERE m2.room_id = r.id)) OR (r.max_age_s > 0 AND "
                "messages.server_date < ?1 - r.max_age_s * 1000))",
                &s->expire, err, errsz))
        goto fail;
    if (!readonly && prepare(s->w,
                             "UPDATE attachments SET seq = ?1 WHERE seq IS NULL AND id IN (SELECT "
                             "value FROM json_tree(?2, '$.files') WHERE key = 'id')",
                             &s->attach, err, errsz))
        goto fail;
    if (!readonly && load_accounting(s)) {
        snprintf(err, errsz, "counting the stored messages: %s", sqlite3_errmsg(s->w));
        goto fail;
    }
    sqlite3_stmt *last;
    if (prepare(s->w, "SELECT COALESCE(MAX(seq), 0) FROM messages", &last, err, errsz))
        goto fail;
    if (sqlite3_step(last) == SQLITE_ROW)
        s->last_seq = (uint64_t)sqlite3_column_int64(last, 0);
    sqlite3_finalize(last);
    /* The lobby's last rseq (an older read-only database has none: 0). */
    if (sqlite3_prepare_v2(s->w, "SELECT COALESCE(MAX(rseq), 0) FROM messages WHERE room_id = 1",
                           -1, &last, NULL) == SQLITE_OK) {
        if (sqlite3_step(last) == SQLITE_ROW)
            s->last_rseq = (uint64_t)sqlite3_column_int64(last, 0);
        sqlite3_finalize(last);
    }
    atomic_init(&s->committed, s->last_seq);
    atomic_init(&s->decided, s->last_seq);
    static const char oldest_sql[] = "SELECT COALESCE(MIN(seq), 0) FROM messages";
    if (prepare(s->w, oldest_sql, &s->min_w, err, errsz))
        goto fail;
    atomic_init(&s->first, query_oldest(s->min_w));

    static const char range_sql[] = "SELECT seq, server_date, json, room_id FROM messages WHERE "
                                    "seq > ? AND seq <= ?3 ORDER BY seq LIMIT ?2";
    static const char before_sql[] = "SELECT seq, server_date, json, room_id FROM (SELECT * FROM "
                                     "messages WHERE seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY "
                                     "seq";
    /* A room's pages (docs/rooms.md): before a seq (the lobby's page of an
     * older client) or before an rseq, on the index (room_id, rseq). */
    static const char room_seq_sql[] = "SELECT seq, server_date, json, room_id FROM (SELECT * "
                                       "FROM messages WHERE room_id = ?3 AND seq < ?1 ORDER BY "
                                       "rseq DESC LIMIT ?2) ORDER BY seq";
    static const char room_rseq_sql[] = "SELECT seq, server_date, json, room_id FROM (SELECT * "
                                        "FROM messages WHERE room_id = ?3 AND rseq < ?1 ORDER BY "
                                        "rseq DESC LIMIT ?2) ORDER BY seq";
    static const char room_oldest_sql[] =
        "SELECT COALESCE(MIN(seq), 0) FROM messages WHERE room_id = ?";
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
    /* (A read-only database of an older schema has no rooms: its room
     * statements stay NULL and room pages fall back to the ring.) */
    if (sqlite3_prepare_v2(s->rd, room_seq_sql, -1, &s->rd_room_seq, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->rd, room_rseq_sql, -1, &s->rd_room_rseq, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->rd, room_oldest_sql, -1, &s->rd_room_oldest, NULL) != SQLITE_OK) {
        sqlite3_finalize(s->rd_room_seq);
        sqlite3_finalize(s->rd_room_rseq);
        sqlite3_finalize(s->rd_room_oldest);
        s->rd_room_seq = s->rd_room_rseq = s->rd_room_oldest = NULL;
    }
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

uint64_t pv_store_last_rseq(const struct pv_store *s)
{
    return s->last_rseq;
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

uint64_t pv_store_decided(struct pv_store *s)
{
    return atomic_load_explicit(&s->decided, memory_order_acquire);
}

bool pv_store_take_lost(struct pv_store *s, uint64_t *from, uint64_t *to)
{
    struct cds_wfcq_node *n = pv_chan_pop(&s->lost);
    if (!n)
        return false;
    struct lost_range *l = CONTAINER(n, struct lost_range, node);
    *from = l->from;
    *to = l->to;
    free(l);
    return true;
}

uint64_t pv_store_lost_total(struct pv_store *s)
{
    return atomic_load_explicit(&s->lost_total, memory_order_relaxed);
}

bool pv_store_full(struct pv_store *s)
{
    return atomic_load_explicit(&s->full, memory_order_relaxed);
}

uint64_t pv_store_bytes(struct pv_store *s)
{
    return atomic_load_explicit(&s->bytes_pub, memory_order_relaxed);
}

uint64_t pv_store_rows(struct pv_store *s)
{
    return atomic_load_explicit(&s->rows_pub, memory_order_relaxed);
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

int pv_store_no_receipts(struct pv_store *s, void (*fn)(void *ud, int64_t account), void *ud)
{
    sqlite3_stmt *st;
    int n = 0;
    if (sqlite3_prepare_v2(s->r, "SELECT id FROM users WHERE read_receipts = 0 ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        fn(ud, sqlite3_column_int64(st, 0));
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

int pv_store_rooms(struct pv_store *s, pv_store_room_fn room, pv_store_member_fn member, void *ud)
{
    sqlite3_stmt *st;
    int n = 0;
    if (sqlite3_prepare_v2(s->r,
                           "SELECT r.id, r.name, r.kind, r.topic, r.archived IS NOT NULL, "
                           "(SELECT COALESCE(MAX(rseq), 0) FROM messages WHERE room_id = r.id), "
                           "r.keep, r.max_age_s FROM rooms r ORDER BY r.id",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct pv_store_room r = {
            .id = (uint32_t)sqlite3_column_int64(st, 0),
            .name = (const char *)sqlite3_column_text(st, 1),
            .kind = (const char *)sqlite3_column_text(st, 2),
            .topic = (const char *)sqlite3_column_text(st, 3),
            .archived = sqlite3_column_int(st, 4) != 0,
            .last_rseq = (uint64_t)sqlite3_column_int64(st, 5),
            .keep = (unsigned)sqlite3_column_int64(st, 6),
            .max_age_s = (unsigned)sqlite3_column_int64(st, 7),
        };
        room(ud, &r);
        n++;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->r,
                           "SELECT m.room_id, m.user_id, u.name, m.role, m.last_read FROM "
                           "room_members m JOIN users u ON u.id = m.user_id "
                           "ORDER BY m.room_id, m.user_id",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        member(ud, (uint32_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
               (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
               (uint64_t)sqlite3_column_int64(st, 4));
    sqlite3_finalize(st);
    return n;
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
    /* A clean stop: every seq given out is stored (see pv_store_open) --
     * not if the last batch was lost to a full database: those seqs would
     * be given again. */
    char err[256];
    if (!pv_store_failure(s) && !pv_store_full(s) &&
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
