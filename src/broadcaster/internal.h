/* internal.h -- the broadcaster's state, shared by the files of
 * src/broadcaster/ and by nobody else.
 *
 * Threads: every file that includes this runs on the broadcaster thread
 * only (pv_broadcaster_start() and pv_broadcaster_join() aside, which run
 * on main before the thread starts and after it has left its loop). The
 * struct below is that thread's alone; other threads reach it only
 * through the event queue (queue.h), the writers' outbox protocol
 * (writer.h) and clients' written_bytes counters.
 *
 * The files, one concern each:
 *   broadcaster.c  the loop, event dispatch, chat and held acks, join and
 *                  leave runs, kicks and shutdown
 *   presence.c     the presence snapshot, join/leave notices coalesced
 *                  over time
 *   delivery.c     per-client pending batches, backlog, slow consumer vs
 *                  congestion, the sender-excluding fanout, the flush to
 *                  the writers
 *   recovery.c     resume after a seq, history pages, store reads, the
 *                  history read budget
 *   history.c      the history ring, a pure value type (history.h)
 *   sweep.c        keepalive pings, idle timeouts, eviction
 *   moderation.c   edits, deletions, mutes; the HTTP API's kicks, bans,
 *                  role changes and session ends on open connections
 *   rooms.c        rooms, memberships, DMs, each room's online set, the
 *                  room requests, the room list
 *   receipts.c     delivered and read positions, read markers, "receipts"
 *                  frames coalesced per room, "seen", the receipts setting
 *   typing.c       who is typing, per room, coalesced, never stored
 * Calls between these files use the pv__ prefix (internal tier); the
 * public API is broadcaster.h.
 */
#ifndef PALAVER_BROADCASTER_INTERNAL_H
#define PALAVER_BROADCASTER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "palaver/broadcaster.h"
#include "palaver/client.h"
#include "palaver/dialect.h"
#include "palaver/history.h"
#include "palaver/proto.h"
#include "palaver/registry.h"
#include "palaver/store.h"
#include "palaver/xalloc.h"

struct pv_event;
struct pv_frame;
struct pv_inbound;

/* A growable list of clients, holding one reference to each. */
struct client_list {
    struct pv_client **v;
    size_t n, cap;
};

static inline void pv__list_push(struct client_list *l, struct pv_client *c)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = pv_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = pv_client_ref(c);
}

static inline void pv__list_free(struct client_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pv_client_unref(l->v[i]);
    free(l->v);
    *l = (struct client_list){0};
}

struct read_job; /* recovery.c */

/* Rooms (rooms.c, docs/rooms.md). */
#define PV_LOBBY_ID 1u
struct pv_member {
    int64_t account;
    uint64_t last_read; /* read up to this rseq */
    uint64_t delivered; /* had up to this rseq (receipts.c; not stored) */
    uint32_t conns;     /* its connections online (the lobby's: of those who read it) */
    bool changed;       /* a position others see moved since the last frame */
    char role[8];       /* "owner" or "member" in this room */
    char *name;         /* the account's name (kept for member lists) */
};
struct pv_room {
    uint32_t id;
    char kind[16]; /* public, private, announcement, dm */
    char *name, *key, *topic;
    bool archived;
    uint64_t rseq;             /* its last rseq given out */
    struct pv_client **online; /* connections online in it (not the lobby's:
                                * that is the registry); no references */
    uint32_t online_n, online_cap;
    uint32_t people_online;    /* members with a connection online */
    uint32_t guests_online;    /* guests' connections in it (--guest-rooms) */
    struct pv_member *members; /* sorted by account */
    uint32_t members_n, members_cap;
    struct pv_frame *last;    /* its newest message, for the room list */
    unsigned keep, max_age_s; /* its own retention (0: the server's only) */
    int64_t renamed_ms;       /* wall clock of its last rename (PV_RENAME_EVERY_MS) */
    /* receipts.c: per online slot (parallel to `online`), the last chat
     * message queued for that connection and where in its stream it ends. */
    struct pv_sent {
        uint64_t rseq; /* 0: nothing waiting to be written */
        uint64_t mark; /* its queued_bytes once the message was queued */
    } * sent;
    bool receipts_listed, receipts_dirty, receipts_watch;
    uint64_t receipts_sent_ns; /* monotonic: its last "receipts" frame */
    /* typing.c: who is typing in it (no references: a client leaving is
     * taken out by pv__typing_forget before it goes). */
    struct pv_typist {
        struct pv_client *c;
        uint64_t until_ns; /* monotonic: forgotten then unless refreshed */
    } * typists;
    uint32_t typists_n, typists_cap;
    bool typing_listed, typing_dirty;
    uint64_t typing_sent_ns; /* monotonic: its last list went out */
};

#define PV_RECEIPTS_EVERY_MS 1000 /* one "receipts" frame per room per second, at most */
#define PV_RECEIPTS_WATCH_MS 50   /* how often written marks are looked at while any wait */
#define PV_TYPING_EVERY_MS 1000   /* one typing list per room per second, at most */
#define PV_TYPING_TTL_MS 6000     /* a typist not refreshed for this long is forgotten */
/* Typing lists are not sent to a client with more than this queued and
 * not yet written: it is behind, chat goes first. */
#define PV_TYPING_SHED_BYTES 16384

/* Renames of one room at most this often: each rewrites all its stored rows. */
#define PV_RENAME_EVERY_MS 60000

struct pv_broadcaster {
    struct pv_broadcaster_deps d;
    pthread_t thread;

    struct pv_registry reg;
    struct client_list dirty;     /* clients with pending frames */
    struct client_list congested; /* over the backlog bound while writers
                                   * catch up */
    struct client_list refused;   /* lost the admission race, closed 1013,
                                   * connection not yet gone: swept */

    struct pv_history hist; /* the last cfg->history messages */

    /* Join and leave notices not yet sent (presence.c): coalesced over
     * PV_PRESENCE_WINDOW_MS; a client that joins and leaves inside one
     * window is never announced. */
    struct pending_user {
        char id[PV_ID_LEN + 1];
        char name[PV_NAME_MAX_BYTES + 1];
        struct pv_client *c; /* joins: registered, so alive; leaves: NULL */
    } * joins, *leaves;
    size_t joins_n, joins_cap, leaves_n, leaves_cap;
    uint64_t presence_sent_ns; /* monotonic: the last notice went out */
    uint64_t progress_ns;      /* monotonic: events last taken, or none waited */

    /* The chosen names of those online, by key (presence.c): chained
     * through c->name_next; a name is one person's while they are online. */
    struct names {
        struct pv_client **bucket;
        size_t cap, n; /* cap: a power of two, or 0 */
    } names;

    /* Database reads (resumes, history pages): waiting for the store to
     * commit what they must include, then out at the store's reader. */
    struct read_job **waiting;
    size_t waiting_n, waiting_cap;
    size_t reads_out; /* handed to the reader, answer not yet handled */

    uint64_t sweep_every; /* ns between keepalive sweeps */
    uint64_t last_sweep;

    /* Acks held until the store has committed their message, oldest
     * first (seqs ascending). */
    struct held_ack {
        struct pv_client *c;        /* one reference, or NULL for an HTTP publish */
        struct pv_publish *publish; /* one reference, or NULL for a WebSocket ack */
        uint64_t seq, rseq;
        json_t *msg_id; /* one reference, or NULL */
        int64_t now;
    } * acks;
    size_t acks_head, acks_n, acks_cap;
    /* Seq ranges the store could not store (a full database), oldest
     * first, taken from the store as acks are released (store.h). */
    struct lost_seqs {
        uint64_t from, to;
    } * lost;
    size_t lost_n, lost_cap;

    /* The last frame translated into each dialect (dialects.c): a fanout
     * translates a message once per dialect, every client of that dialect
     * shares the result. One reference to each. */
    struct dialect_cache {
        struct pv_frame *src, *out;
        uint64_t uses; /* deliveries of out not yet added to stats->dialect_out */
    } dialect_cache[PV_DIALECTS];
    /* What a dialect client gets on joining (dialects.c), built once per
     * state of the history (its gen) and dialect: a reconnect burst of
     * seed pages translates the lobby's history once, not once each. */
    struct greet_cache {
        bool valid;
        uint64_t gen;        /* b->hist.gen it was built from */
        struct pv_frame **f; /* one reference each, in the dialect's words */
        size_t n;
    } greet_cache[PV_DIALECTS];

    uint64_t seq;           /* last sequence number given out */
    uint64_t rseq;          /* the lobby's last rseq given out (rooms[1]->rseq mirrors it) */
    struct pv_room **rooms; /* by id; NULL where there is none */
    uint32_t rooms_cap, rooms_n, next_room;
    /* Names the seq numbering: the database's id with a store (seq
     * carries on across restarts), else random per start (seq restarts). */
    char run_id[PV_ID_LEN + 1];
    /* receipts.c: rooms with positions to send or writes to watch (ids);
     * the accounts that send no read receipts (sorted). */
    uint32_t *receipt_rooms;
    size_t receipt_rooms_n, receipt_rooms_cap;
    uint64_t receipts_pass_ns; /* monotonic: the last pass over them */
    bool receipts_news;        /* a position moved since: pass at once */
    int64_t *no_receipts;
    size_t no_receipts_n, no_receipts_cap;
    /* typing.c: rooms with typists or a list to send (ids). */
    uint32_t *typing_rooms;
    size_t typing_rooms_n, typing_rooms_cap;
    bool draining; /* SHUTDOWN seen: closing everyone, relaying nothing */
    bool stop;
};

static inline struct pv_user pv__user_of(const struct pv_client *c)
{
    return (struct pv_user){.id = c->id, .name = c->name, .role = c->role, .account = c->account};
}

/* ---- delivery.c ---- */

/* Queues f for c, taking over the caller's reference to f (c's own
 * reference count is not touched: the dirty list takes one of its own).
 * Returns false, and releases f, if c is closing or has just been closed
 * as a slow consumer. */
bool pv__deliver(struct pv_broadcaster *b, struct pv_client *c, struct pv_frame *f);
/* c has frames for this cycle's flush. */
void pv__mark_dirty(struct pv_broadcaster *b, struct pv_client *c);
/* Bytes queued for c that its writer has not finished. */
uint64_t pv__backlog(const struct pv_client *c);
/* Re-examines congested clients; true while the broadcaster must pause. */
bool pv__relieve(struct pv_broadcaster *b);
/* pv__deliver for what may be shed (typing lists): not queued, and f
 * released, when c is behind (PV_TYPING_SHED_BYTES, congested, resuming). */
bool pv__deliver_shed(struct pv_broadcaster *b, struct pv_client *c, struct pv_frame *f);
/* ---- dialects.c ---- */

/* f (the caller's reference, consumed) as c's dialect shows it: a new
 * reference, or NULL when that dialect shows nothing of it. */
struct pv_frame *pv__dialect_frame(struct pv_broadcaster *b, const struct pv_client *c,
                                   struct pv_frame *f);
/* What a dialect client gets on joining, in place of the join history:
 * the echo dialect's array of earlier lobby messages, the text dialect's
 * earlier lobby messages as lines. */
void pv__dialect_greet(struct pv_broadcaster *b, struct pv_client *c);
/* A sio client connected its namespace (PV_EV_OPEN): deliveries start,
 * with seed 002's "system" greeting and the lobby's recent messages. */
void pv__dialect_open(struct pv_broadcaster *b, struct pv_client *c);
void pv__dialects_free(struct pv_broadcaster *b);

/* The sender-excluding fanout (consumes the caller's reference to f). */
void pv__fanout(struct pv_broadcaster *b, struct pv_frame *f, const struct pv_client *except);
/* Queues our close frame for c (the caller won pv_client_close_decide(),
 * or handles the KICK its worker decided): closing from now on, the frame
 * after what is pending (discard: instead of it), c marked dirty. */
void pv__queue_close(struct pv_broadcaster *b, struct pv_client *c, uint16_t code,
                     const char *reason, bool discard);

/* presence.c */
#define PV_PRESENCE_WINDOW_MS 250 /* at most one join and one leave notice per window */
struct pv_user *pv__listed_users(struct pv_broadcaster *b, size_t *n); /* caller frees */
void pv__presence_join(struct pv_broadcaster *b, struct pv_client *c);
void pv__presence_leave(struct pv_broadcaster *b, struct pv_client *c);
/* Sends what waits if its window is over (or force); ms until it is due,
 * -1 when nothing waits. */
void pv__presence_flush(struct pv_broadcaster *b, bool force);
int pv__presence_wait_ms(const struct pv_broadcaster *b);
void pv__presence_free(struct pv_broadcaster *b);
/* Gives c the chosen name `name` (already through the profile): NULL when
 * it is c's now (any name it held before is released), else the error
 * code ("name-taken", "bad-name") with *why for the person. */
const char *pv__name_claim(struct pv_broadcaster *b, struct pv_client *c, const char *name,
                           const char **why);
void pv__name_release(struct pv_broadcaster *b, struct pv_client *c);
void pv__send_error(struct pv_broadcaster *b, struct pv_client *c, const char *code,
                    const char *msg, const json_t *msg_id);
/* Ends a cycle: hands every touched client's frames to the writers. */
void pv__flush(struct pv_broadcaster *b);

/* ---- recovery.c ---- */

bool pv__store_failed(const struct pv_broadcaster *b);
/* NULL if c may read history now, else why not (for the busy error). */
const char *pv__reads_refused(struct pv_broadcaster *b, struct pv_client *c);
/* Ring entries [from, to) c may see (NULL: a guest, the lobby alone). */
size_t pv__visible(struct pv_broadcaster *b, const struct pv_client *c, size_t from, size_t to);
/* Sends the ring entries [from, to) c may see, oldest first. */
void pv__send_history(struct pv_broadcaster *b, struct pv_client *c, size_t from, size_t to);
/* Resume after `since` (of the numbering `server`, if named). */
void pv__resume(struct pv_broadcaster *b, struct pv_client *c, uint64_t since, const char *server);
/* {"type":"history"}: a page of older history. */
void pv__on_history(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
/* Answers from the store's reader, then reads that may now go out. */
void pv__store_news(struct pv_broadcaster *b);
/* main, at teardown: every read not yet answered, and the answers. */
void pv__reads_drop(struct pv_broadcaster *b);

/* ---- broadcaster.c ---- */

/* Records the stream item f (seq, rseq, sent at now by `account`,
 * `message` if it is a chat message someone may edit or delete) in the
 * ring, and returns its store message, filled but for what only the
 * caller knows (target, replace, audit), for pv_store_append(); NULL
 * when there is no healthy store. */
struct pv_store_msg *pv__record(struct pv_broadcaster *b, struct pv_frame *f, uint32_t room,
                                uint64_t seq, uint64_t rseq, int64_t now, int64_t account,
                                bool message, const char *sender);

/* ---- rooms.c ---- */

struct pv_room *pv__room(struct pv_broadcaster *b, uint32_t id);
/* By wire name (NULL, or "lobby": the lobby); NULL if there is none. */
struct pv_room *pv__room_by_name(struct pv_broadcaster *b, const char *name, size_t len);
/* The room a request names, if c is in it; else NULL, c told not-a-member. */
struct pv_room *pv__room_of(struct pv_broadcaster *b, struct pv_client *c,
                            const struct pv_inbound *in);
struct pv_member *pv__member(struct pv_room *r, int64_t account);
/* Whether c may see room `room`'s messages (the lobby: everyone). */
bool pv__sees(const struct pv_client *c, uint32_t room);
void pv__rooms_load(struct pv_broadcaster *b);
void pv__rooms_free(struct pv_broadcaster *b);
void pv__rooms_attach(struct pv_broadcaster *b, struct pv_client *c);
void pv__rooms_detach(struct pv_broadcaster *b, struct pv_client *c);
void pv__room_fanout(struct pv_broadcaster *b, struct pv_room *r, struct pv_frame *f,
                     const struct pv_client *except);
void pv__room_set_last(struct pv_room *r, struct pv_frame *f);
void pv__on_room(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
void pv__rooms_rename(struct pv_broadcaster *b, int64_t account, const char *name);
/* Retention per room in memory: ring entries of rooms with a keep count or
 * a maximum age beyond it become tombstones (every sweep). */
void pv__rooms_expire(struct pv_broadcaster *b, int64_t now);

struct pv_member *pv__member_add(struct pv_broadcaster *b, struct pv_room *r, int64_t account,
                                 const char *name, const char *role, uint64_t last_read);
struct pv_store_room_op *pv__room_op(enum pv_store_op_kind kind, const struct pv_room *r,
                                     int64_t user);
/* Sends o (consumed) to c, with the request's msgId. */
void pv__reply(struct pv_broadcaster *b, struct pv_client *c, json_t *o, const json_t *msg_id);

/* ---- receipts.c ---- */

void pv__receipts_load(struct pv_broadcaster *b);
void pv__receipts_free(struct pv_broadcaster *b);
/* Whether the account shows (and is shown) no read positions; guests: true. */
bool pv__receipts_off(const struct pv_broadcaster *b, int64_t account);
/* Whether r's positions are streamed to its members (a DM, or a room of
 * at most --receipts-max members; never the lobby). */
bool pv__receipts_streamed(const struct pv_broadcaster *b, const struct pv_room *r);
/* A chat message of r (rseq) was just queued for everyone online but except. */
void pv__receipts_sent(struct pv_broadcaster *b, struct pv_room *r, uint64_t rseq,
                       const struct pv_client *except);
/* Derives delivery from the writers, sends what is due; ms until it
 * needs to run again, -1 when nothing waits. */
int pv__receipts_flush(struct pv_broadcaster *b, uint64_t now);
void pv__on_read(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
void pv__on_received(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
void pv__on_seen(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
void pv__on_settings(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
/* m's positions into o, a member list's entry, as asker may see them. */
void pv__receipts_annotate(struct pv_broadcaster *b, const struct pv_room *r,
                           const struct pv_client *asker, const struct pv_member *m, json_t *o);

/* ---- typing.c ---- */

void pv__on_typing(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
/* c's chat message in r: c stopped typing there. */
void pv__typing_stop(struct pv_broadcaster *b, struct pv_room *r, const struct pv_client *c);
/* c is leaving: out of every list. */
void pv__typing_forget(struct pv_broadcaster *b, const struct pv_client *c);
/* Expires typists, sends what is due; ms until it needs to run again, -1: nothing waits. */
int pv__typing_flush(struct pv_broadcaster *b, uint64_t now);
void pv__typing_free(struct pv_broadcaster *b);

/* ---- moderation.c ---- */

struct pv_mod_req;
/* True (and c told, `muted`) while c may not post. */
bool pv__muted(struct pv_broadcaster *b, struct pv_client *c, const json_t *msg_id, int64_t now);
void pv__on_edit(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
void pv__on_delete(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in);
void pv__on_mod(struct pv_broadcaster *b, const struct pv_mod_req *r);

/* ---- sweep.c ---- */

/* Keepalive and eviction over the whole registry (every sweep_every). */
void pv__sweep(struct pv_broadcaster *b, uint64_t now);

#endif
