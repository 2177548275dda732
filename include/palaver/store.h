/* store.h -- durable chat history in SQLite.
 *
 * One database file, palaver.db, in a data directory; WAL journal,
 * synchronous=FULL, so a committed transaction survives kill -9 and power
 * loss. One writer thread owns the write connection and does group
 * commit: every message queued while it was committing goes into the next
 * transaction, so the commit rate adapts to the load.
 *
 * Threads:
 *  - pv_store_append(): one producer thread (the broadcaster). Messages go
 *    through a wait-free channel; the producer wakes the writer only when
 *    it goes from empty to non-empty (wake.h).
 *  - the writer thread: owns the write connection and the retention
 *    accounting (rows and bytes per sender); publishes the highest
 *    committed seq, the highest decided one (stored, or lost to a full
 *    database) and the lowest stored one, pushes each lost range onto a
 *    channel before publishing it as decided, and notifies
 *    pv_store_wake() after each batch. On an error other than a full
 *    database (read-only, corrupt, I/O) it publishes the reason and
 *    stores nothing more. The producer must not acknowledge what was not
 *    committed.
 *  - the reader thread: owns a read connection of its own and answers
 *    pv_store_read() requests (resume after a seq, pages before a seq) in
 *    the order they were made, so the broadcaster never waits on a disk
 *    read. Requests go in and answers come back through two more wfcqueues
 *    (one producer, one consumer each: the broadcaster); an answer notifies
 *    the same wake-up as a commit (pv_store_wake).
 *  - pv_store_range()/pv_store_before(): synchronous, for the thread that
 *    opened the store (before serving clients) and for tests, on a third
 *    connection.
 *  WAL lets the readers see every committed transaction without ever
 *  blocking the writer.
 *
 * Retention (docs/durability.md): by count (keep), by bytes (max_bytes:
 * the JSON plus PV_STORE_ROW_OVERHEAD per row) and by age. Over a limit,
 * the oldest messages go -- except that a sender holding more than
 * `sender_share` percent of either limit loses its own oldest first, so
 * one flooding address cannot push everyone else's history out. Those
 * deletions leave holes in seq, so they take from below the newest
 * `protect` seqs, where resumes read (a resume must see every seq or gets
 * a reset), and from inside them only when the sender has nothing older.
 *
 * Rooms may keep less (docs/rooms.md, "Retention per room"): a room with a
 * keep count or a maximum age has the rows beyond it turned into
 * tombstones in place, at most once a second, so its text goes while its
 * seqs stay (a resume never meets a hole); the global limits then remove
 * the tombstones like any row.
 *
 * A full database (SQLITE_FULL: the disk, or max_pages) is not a failure:
 * the writer deletes the oldest messages to make room, lowers the byte
 * limit to what fits (until restart), and tries the batch again; if it
 * still does not fit, that batch is lost (a lost range: relayed, not
 * stored) and the next batch tries again. Storing resumes by itself.
 */
#ifndef PALAVER_STORE_H
#define PALAVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/wfcqueue.h>

struct pv_frame;
struct pv_wake;
struct pv_store;

struct pv_store_msg {
    uint64_t seq;
    int64_t server_date;    /* ms since the epoch */
    struct pv_frame *frame; /* the message as sent to clients: one reference,
                             * dropped by the writer once stored */
    char sender[48];        /* who sent it (its address), for fair retention */
    uint32_t room;          /* its room (docs/rooms.md); 0: the lobby (1) */
    uint64_t rseq;          /* its place in its room */
    bool files;             /* it carries files: their attachments (and their previews) get
                             * its seq in the transaction that stores it (docs/files.md) */
    /* An edit or a deletion (proto.h): stored with this event, in the same
     * transaction, the row of seq `target` gets `replace` (one reference,
     * dropped by the writer) as its JSON; 0/NULL for a chat message. */
    uint64_t target;
    struct pv_frame *replace;
    /* A moderator's deletion is audited with it (the audit table of
     * accounts.h, same transaction); NULL otherwise. Owned, freed by the
     * writer. */
    struct pv_store_audit *audit;
    /* A room or membership change (docs/rooms.md), applied in the same
     * transaction as the event that announces it; NULL otherwise. Owned,
     * freed by the writer. A message with no frame carries only this (a
     * read marker: no row, no seq of its own; it is applied after the
     * rows of its batch, best effort). */
    struct pv_store_room_op *op;
    struct cds_wfcq_node node; /* private: the writer's queue */
};

enum pv_store_op_kind {
    PV_OP_ROOM_CREATE,   /* rooms: id room, name, key, kind, topic, by */
    PV_OP_MEMBER_ADD,    /* room_members: room, user, role, last_read = value */
    PV_OP_MEMBER_REMOVE, /* room, user */
    PV_OP_TOPIC,         /* room, topic */
    PV_OP_ARCHIVE,       /* room: archived = at */
    PV_OP_READ,          /* room, user: last_read = max(last_read, value) */
    PV_OP_ROOM_DELETE,   /* room: its rows become tombstones, it and its members go */
    PV_OP_RETENTION,     /* room: keep (items) and max_age_s, 0 = the global ones only */
    PV_OP_RENAME,        /* room: name, key; every row of the room names it anew */
    PV_OP_RECEIPTS,      /* user: read_receipts = value (0 or 1), a person's own setting */
};

struct pv_store_room_op {
    enum pv_store_op_kind kind;
    uint32_t room;
    int64_t user, by, at;
    uint64_t value;
    unsigned keep, max_age_s; /* PV_OP_RETENTION */
    char role[16];
    char room_kind[16];
    char *name, *key, *topic; /* owned (free()), NULL when not used */
};

/* A room as stored, for pv_store_rooms(). */
struct pv_store_room {
    uint32_t id;
    const char *name, *kind, *topic;
    bool archived;
    uint64_t last_rseq;
    unsigned keep, max_age_s; /* its own retention (0: the global one only) */
};
typedef void (*pv_store_room_fn)(void *ud, const struct pv_store_room *r);
typedef void (*pv_store_member_fn)(void *ud, uint32_t room, int64_t user, const char *name,
                                   const char *role, uint64_t last_read);
/* Synchronous, for the thread that opened the store, before serving:
 * every room in id order, then every membership (room, user order).
 * Returns the number of rooms, or -1 (an older read-only database has
 * none: the caller keeps the lobby alone). */
int pv_store_rooms(struct pv_store *s, pv_store_room_fn room, pv_store_member_fn member, void *ud);
/* The same, for the accounts that send no read receipts (docs/receipts.md),
 * in id order. Returns how many, or -1 (a database without the column). */
int pv_store_no_receipts(struct pv_store *s, void (*fn)(void *ud, int64_t account), void *ud);

struct pv_store_audit {
    int64_t actor_id;
    char actor[129];
    char action[16];
    char target[192];
};

/* Bytes a row costs beyond its JSON (seq, date, sender, index entries),
 * counted so that a flood of tiny messages is not free. */
#define PV_STORE_ROW_OVERHEAD 64

struct pv_store_options {
    unsigned keep;         /* messages kept; 0 = all */
    uint64_t max_bytes;    /* bytes kept (JSON + PV_STORE_ROW_OVERHEAD per row); 0 = any */
    unsigned sender_share; /* percent of keep and max_bytes one sender may hold before its
                            * own oldest go first; 0 or 100: oldest first, whoever sent them */
    unsigned protect;      /* the newest seqs, spared by the share while it can (resume-limit) */
    unsigned max_age_s;    /* messages older than this are deleted; 0 = none */
    unsigned max_pages;    /* tests: PRAGMA max_page_count (0 = SQLite's) */
};

/* Opens (creating) dir/palaver.db and starts the writer. NULL with a
 * reason in err on failure. */
struct pv_store *pv_store_open(const char *dir, const struct pv_store_options *o, char *err,
                               size_t errsz);
/* The highest seq stored when the store was opened (0 for a new one). */
uint64_t pv_store_last_seq(const struct pv_store *s);
/* The lobby's highest rseq stored when the store was opened. */
uint64_t pv_store_last_rseq(const struct pv_store *s);
/* A random id made when the database was created: the `server` field of
 * the id message, so clients know seq numbers carry on across restarts. */
const char *pv_store_id(const struct pv_store *s);

/* Producer: queues m for the next transaction, taking ownership. */
void pv_store_append(struct pv_store *s, struct pv_store_msg *m);
/* Creates palaver.db in dir if needed and upgrades its schema in place
 * (one transaction per version), on a connection of its own that is
 * closed again: for the modules that keep their own tables in the same
 * file (accounts.h) and for palaverd --create-admin. 0, or -1 with err. */
int pv_store_upgrade(const char *dir, char *err, size_t errsz);

/* Highest seq known committed (acquire). */
uint64_t pv_store_committed(struct pv_store *s);
/* Highest seq whose fate is known (acquire): committed, or lost to a full
 * database. Every lost range at or below it can be taken. */
uint64_t pv_store_decided(struct pv_store *s);
/* Producer: the next range of seqs that were relayed but could not be
 * stored (a full database), oldest first; false when there is none. */
bool pv_store_take_lost(struct pv_store *s, uint64_t *from, uint64_t *to);
/* Messages lost to a full database so far; and whether the last batch
 * was one of them (storing is degraded until the next commit). */
uint64_t pv_store_lost_total(struct pv_store *s);
bool pv_store_full(struct pv_store *s);
/* Bytes and rows stored, as the writer last published them. */
uint64_t pv_store_bytes(struct pv_store *s);
uint64_t pv_store_rows(struct pv_store *s);
/* Notified after each commit and each read answer: the producer parks on
 * it with its other channels (pv_wake_wait, wake.h). */
struct pv_wake *pv_store_wake(struct pv_store *s);
/* NULL while healthy; otherwise why nothing more is being stored. */
const char *pv_store_failure(struct pv_store *s);
/* Transactions committed so far (for measurements). */
uint64_t pv_store_transactions(struct pv_store *s);

/* Calls fn for each stored message with seq > after, in order, at most
 * limit; returns how many, or -1 on a database error. */
typedef void (*pv_store_fn)(void *ud, uint64_t seq, int64_t server_date, const char *json,
                            size_t len);
int pv_store_range(struct pv_store *s, uint64_t after, unsigned limit, pv_store_fn fn, void *ud);
/* The `limit` messages just before seq `before`, oldest first. */
int pv_store_before(struct pv_store *s, uint64_t before, unsigned limit, pv_store_fn fn, void *ud);

/* Asynchronous reads (the reader thread). */
struct pv_store_row {
    uint32_t room; /* its room's id */
    uint64_t seq;
    int64_t server_date;
    size_t len;
    char *json; /* NUL-terminated, owned by the request */
};

struct pv_store_read {
    /* Request, set by the caller. */
    bool backwards; /* false: seq in (from, to], oldest first, at most limit;
                     * true: the `limit` messages before seq `from` */
    uint32_t room;  /* backwards only: of this room alone (0: any room) */
    bool by_rseq;   /* backwards with a room: `from` is an rseq of that room */
    uint64_t from, to;
    unsigned limit;
    /* Answer, set by the reader thread. */
    int n;           /* rows, or -1 on a database error */
    uint64_t oldest; /* lowest seq stored (0: none) at the time of the read; of the
                      * room alone for a room's page */
    struct pv_store_row *rows;
    struct cds_wfcq_node node; /* private */
};

/* Producer (one thread): queues rq for the reader, which takes it over
 * until it comes back from pv_store_read_done(). */
void pv_store_read(struct pv_store *s, struct pv_store_read *rq);
/* Consumer (the same thread): the next answered request, or NULL. */
struct pv_store_read *pv_store_read_done(struct pv_store *s);
/* Frees the rows of an answered (or never queued) request; the struct
 * itself is the caller's (it is usually the first member of the caller's
 * own job, which the caller frees). Every queued request must have come
 * back from pv_store_read_done() before pv_store_close(). */
void pv_store_read_release(struct pv_store_read *rq);

/* The lowest seq stored (0: none) as last published by the writer, after
 * each commit and prune: any thread, no database access. */
uint64_t pv_store_first(struct pv_store *s);

/* Commits what is queued, stops the writer, closes. NULL is fine. */
void pv_store_close(struct pv_store *s);

#endif
