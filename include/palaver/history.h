/* history.h -- the history ring: the last --history messages kept in
 * memory for newcomers, resumes and pages, as a plain value type, and the
 * questions recovery asks of it (pure functions, unit-tested in
 * tests/unit/test_history.c).
 *
 * Threads: none of its own. The broadcaster's ring is owned by the
 * broadcaster thread; a ring has no lock and no atomics, so one ring is
 * used by one thread.
 *
 * Entries are oldest first with seq strictly ascending (the broadcaster
 * pushes each message with the next seq; a restart preloads the stored
 * tail in order). Each entry holds one reference to its encoded frame:
 * a newcomer's history is those same bytes, shared, never re-encoded.
 */
#ifndef PALAVER_HISTORY_H
#define PALAVER_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pv_frame;
struct pv_store_row;

struct pv_history_entry {
    struct pv_frame *f; /* one reference */
    uint64_t seq;
    int64_t date; /* serverDate (ms since the epoch), for retention by age */
    /* Who may edit or delete it (docs/accounts.md): the sender's account
     * (0: a guest, or not a chat message), and whether it is one. */
    int64_t account;
    bool message;
    uint64_t rseq; /* its place in its room (docs/rooms.md), for a tombstone */
    uint32_t room; /* its room's id (1: the lobby): who may see it */
};

struct pv_history {
    struct pv_history_entry *v; /* cap slots */
    size_t cap, head, len;
    uint64_t gen; /* changes with every push, replacement and expiry: what is
                   * built from the entries (the dialects' greetings) keys on it */
};

/* cap 0 keeps nothing (pushes are dropped). */
void pv_history_init(struct pv_history *h, size_t cap);
/* Drops every entry's reference and the slots. */
void pv_history_destroy(struct pv_history *h);

/* Appends (taking a reference of its own to f); when full, the oldest
 * entry goes. seq must be above the newest entry's. */
void pv_history_push(struct pv_history *h, struct pv_frame *f, uint64_t seq, int64_t date);

/* The entry of seq, or NULL if the ring does not hold it. */
struct pv_history_entry *pv_history_find(struct pv_history *h, uint64_t seq);
/* The entry's frame becomes f (a reference of its own): an edit or a
 * deletion's tombstone. */
void pv_history_replace(struct pv_history *h, struct pv_history_entry *e, struct pv_frame *f);

/* Drops the oldest entries dated before cutoff_ms; returns how many. */
size_t pv_history_expire(struct pv_history *h, int64_t cutoff_ms);

/* The i-th oldest entry, i < len. */
static inline const struct pv_history_entry *pv_history_at(const struct pv_history *h, size_t i)
{
    return &h->v[(h->head + i) % h->cap];
}

/* Index of the oldest entry with seq > after (len if none). */
size_t pv_history_after(const struct pv_history *h, uint64_t after);

/* ---- Questions recovery asks ---- */

/* True if every message after `since` up to `last` (the last seq given
 * out) is in the ring: nothing was missed, or the ring starts at or
 * before since + 1. */
bool pv_history_covers(const struct pv_history *h, uint64_t since, uint64_t last);

/* What the history store can say, for the decisions below. */
struct pv_store_facts {
    bool present;       /* a store is open */
    bool failed;        /* it failed (or was wanted and could not open) */
    uint64_t first;     /* lowest stored seq, 0 when it holds none */
    uint64_t committed; /* highest seq decided: committed, or lost to a full database */
};

/* A history page asks for the `limit` messages before seq `before`
 * (last: the last seq given out). True if the ring alone answers it:
 * there is no store; the ring has `limit` messages before `before`; the
 * store has nothing older than the ring's first entry or than `before`;
 * or the store is empty with nothing waiting to be committed (or has
 * failed, so nothing more will be). */
bool pv_history_page_in_memory(const struct pv_history *h, uint64_t before, size_t limit,
                               uint64_t last, const struct pv_store_facts *st);

/* A resume after `since` read rows[0..n) from the store (n < 0: the read
 * failed), meant to cover since+1 .. to; the ring supplies what comes
 * after the last row (what the store never got). Returns NULL when the
 * replay is complete and gap-free, else why not: "too-far" when
 * retention took messages (`oldest`, the lowest stored seq at the read,
 * is above since + 1, or nothing is stored), "unavailable" otherwise (a
 * failed read, or a store that failed and lost messages). */
const char *pv_history_replay_gap(const struct pv_history *h, uint64_t since, uint64_t to,
                                  const struct pv_store_row *rows, int n, uint64_t oldest);

#endif
