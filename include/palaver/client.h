/* client.h -- one WebSocket client, shared by three kinds of thread.
 *
 * Each field names its owner. A client is reference-counted: its CivetWeb
 * worker holds one reference from the ready handler until it hands that
 * reference to the LEAVE event; the registry holds one from JOIN to LEAVE;
 * every event that names the client, the broadcaster's dirty list and a
 * scheduled writer slot hold one each. Whoever drops the last reference
 * frees the client (never touching conn).
 *
 * The connection pointer. CivetWeb reuses an mg_connection slot for the
 * worker's next socket as soon as the close handler returns (docs/civetweb.md
 * section 2), so conn may be written only under mg_lock_connection(conn)
 * after checking that `dead` is still false; the close handler sets `dead`
 * under that same lock, which also waits out any write in progress. The
 * slot's memory lives until mg_stop(), and every writer is stopped before
 * that.
 */
#ifndef PALAVER_CLIENT_H
#define PALAVER_CLIENT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/wfcqueue.h>

#include "palaver/ids.h"
#include "palaver/limits.h"
#include "palaver/wsmsg.h"

struct mg_connection;
struct pv_frame;
struct pv_room;

/* One room a client is online in (docs/rooms.md): `slot` is its index in
 * the room's online array. Broadcaster thread only. */
struct pv_membership {
    struct pv_room *r;
    uint32_t slot;
};

#define PV_NAME_MAX_BYTES 128 /* 32 code points of up to 4 bytes */

struct pv_client {
    atomic_uint refs;

    /* Set by the worker in the ready handler before JOIN is queued;
     * read-only afterwards. */
    struct mg_connection *conn;
    pthread_t worker; /* the CivetWeb worker serving conn (eviction) */
    char peer[64];    /* "address:port", for log lines */
    char addr[48];    /* remote address alone, for the per-IP count */
    bool counted;     /* addr holds one pv_peers count (released on close) */
    uint8_t dialect;  /* enum pv_dialect (dialect.h): how it speaks, from its path and
                       * subprotocol */
    bool refused;     /* lost the admission race: closed 1013 at once, never
                       * registered; the broadcaster's sweep still evicts it */

    /* Guarded by mg_lock_connection(conn). */
    bool dead;       /* the close handler ran: conn is not ours any more */
    bool close_sent; /* a close frame went out: nothing may follow it */
    bool broken;     /* a write failed or was partial: the stream is corrupt */
    /* Set (under that lock) with close_sent or broken; read by the sweep
     * without the lock, which a writer may hold for a whole write timeout. */
    atomic_bool stream_done;
    /* Guarded by client.c's evict_mu: the close handler has begun, the
     * worker may move on to another connection (see pv_client_evict). */
    bool gone;

    /* Owned by this client's CivetWeb worker thread. */
    struct pv_wsmsg msg;   /* frame checks and reassembly */
    struct pv_rate rate;   /* message-rate bucket */
    struct pv_rate typing; /* typing requests' own bucket (PV_TYPING_RATE) */
    struct pv_rate bytes;  /* inbound byte budget */
    char leave_reason[64];
    char claimed[PV_NAME_MAX_BYTES + 1]; /* echo dialect: the name its messages last gave */
    uint8_t sio_state; /* sio dialect: the Engine.IO/Socket.IO handshake's progress
                        * (socketio.c) */
    char sio_sid[24];  /* sio dialect: its Engine.IO session id */
    int64_t uploader;  /* the account it signed in with at the handshake (0: a guest), for
                        * the files a message names (files.h): the broadcaster owns `account` */

    /* Worker -> broadcaster: monotonic ns of the last frame received
     * (any frame, pongs included); relaxed, it is only a clock reading. */
    atomic_uint_fast64_t last_rx;

    /* Owned by the broadcaster thread. */
    size_t index; /* slot in the registry; SIZE_MAX when not registered */
    char key[PV_KEY_LEN + 1];
    char id[PV_ID_LEN + 1];
    char name[PV_NAME_MAX_BYTES + 1];
    int64_t account;     /* the signed-in account's id (accounts.h), 0 for a guest */
    char role[16];       /* "admin", "moderator", "member", or "guest" */
    int64_t session;     /* the session it signed in with (accounts.h), 0 for a guest */
    int64_t muted_until; /* ms since the epoch: its messages are refused until then */
    bool closing;        /* no more fanout: closed or being closed */
    bool close_queued;   /* our close frame is in its pending batch */
    bool dirty;          /* on the broadcaster's dirty list */
    bool congested;      /* on the broadcaster's congested list */
    bool joining;        /* in the join burst being handled, or the join notice being sent */
    bool join_pending;   /* its join notice waits for the presence window */
    bool sio_open;       /* sio dialect: its namespace is connected (OPEN): until then
                          * nothing but WebSocket pings is delivered to it (socketio.h) */
    char *name_key;      /* a chosen name's key (nickname.h), claimed among those
                          * online; NULL for a guest name */
    struct pv_client *name_next; /* the broadcaster's names table chain */
    struct pv_membership *rooms; /* the rooms it is online in, the lobby aside */
    uint32_t rooms_n, rooms_cap;
    struct pv_batch *pending; /* gathered this cycle, not yet posted */
    uint64_t queued_bytes;    /* bytes ever handed to the outbox */
    uint64_t ping_sent;       /* monotonic ns of our last keepalive ping */
    uint64_t kick_seen;       /* monotonic ns the sweep first saw kick set */
    uint64_t joined_ns;       /* monotonic ns of its JOIN (log aggregation) */
    uint64_t grace_end;       /* queued_bytes after a burst the server chose to send
                               * (join history, an admitted replay or page): until
                               * that is written the hard backlog bound waits */
    /* Resuming from the database (?since=, hello since): the replay is
     * being read; until it is sent, everything else for this client is
     * held back here, so it gets the missed messages before live ones. */
    bool resuming;
    bool held_over; /* held passed --max-backlog: replay becomes a reset */
    struct pv_batch *held;
    uint64_t held_bytes;
    bool paging;          /* a history page is being read for it */
    bool left;            /* refused client: its LEAVE has been handled */
    struct pv_rate reads; /* history read budget (replays, pages), bytes */
    bool reads_charged;   /* history being sent now was asked for: budget it */

    /* Lock-free handoff broadcaster -> writers: protocol in writer.h. */
    _Atomic(struct pv_batch *) outbox;
    atomic_bool scheduled;
    struct cds_wfcq_node ready_node;    /* its link in the writers' ready queue */
    atomic_uint_fast64_t written_bytes; /* writers: bytes of batches done */
    /* Writers -> broadcaster: monotonic ns when the write in progress to
     * this client last made progress (it started, or one piece of
     * PV_CLIENT_WRITE_PIECE bytes went out), 0 when none is. A write that
     * makes no progress means the client's socket is full: it is not
     * reading. */
    atomic_uint_fast64_t write_since;
    /* Broadcaster -> writers: tell me when a batch of this client is done
     * (the broadcaster is waiting for its backlog to shrink). */
    atomic_bool watch;

    /* The close decision: 0, then the close code, set once by
     * pv_client_close_decide() (compare-and-swap) by whichever thread
     * decides first (lifecycle below); never changed afterwards. */
    atomic_int kick;
    /* Broadcaster -> writers: discard this client's queued data and send
     * only the close frame (slow consumer). */
    atomic_bool drop;
};

/* The close lifecycle of a client, one decision and the states after it:
 *
 *   OPEN --decide(code)--> CLOSING --close frame out--> CLOSE_SENT
 *     |                      |                            |
 *     |                      +------ write failed -------> BROKEN
 *     |                                                   |
 *     +----- peer closed / connection lost ---------------+--> DEAD --LEAVE--> GONE
 *
 *  - decide: pv_client_close_decide(c, code), a compare-and-swap on
 *    `kick`: the first thread wins and its code is the one the client
 *    sees, logs and counts. Who decides: the worker (protocol violation
 *    1002/1007/1009, flood 1008: it then queues a KICK event carrying the
 *    code and reason), the broadcaster (slow consumer 1008, idle timeout
 *    1001, shutdown 1001), a writer or worker whose write broke the
 *    stream (1006), the ready handler refusing a handshake (1013). A
 *    thread that loses stops what it was doing for the client and leaves
 *    the close to the winner.
 *  - CLOSING: the broadcaster sets `closing` (no more fanout) and queues
 *    the close frame once (`close_queued`); with `drop` set the writers
 *    discard the data queued before it. From `kick` on, the worker reads
 *    only to find the client's close frame.
 *  - CLOSE_SENT / BROKEN: `close_sent` or `broken` under the connection
 *    lock, with `stream_done` (atomic) for the sweep, which must not take
 *    that lock.
 *  - A closed client that does not finish the handshake is evicted by the
 *    sweep (`kick_seen`, then pv_client_evict()).
 *  - DEAD: the close handler sets `dead` under the connection lock (and
 *    `gone` under evict_mu) and queues LEAVE; nothing writes to conn
 *    afterwards. GONE: the broadcaster handles LEAVE and drops the
 *    registry's reference; the last reference frees the client.
 *
 * Owners: `kick` any thread (CAS only); `closing`, `close_queued`,
 * `kick_seen` the broadcaster; `dead`, `close_sent`, `broken` the
 * connection lock; `gone` evict_mu; `stream_done`, `drop` atomics (set by
 * the writer of the state, read anywhere). */
static inline bool pv_client_close_decide(struct pv_client *c, int code, int *decided)
{
    int none = 0;
    bool won = atomic_compare_exchange_strong(&c->kick, &none, code);
    if (decided)
        *decided = won ? code : none;
    return won;
}

/* Worker thread, ready handler: a new client with one reference, served
 * by the calling worker. */
struct pv_client *pv_client_new(struct mg_connection *conn, const char *addr, int port,
                                size_t max_message);

static inline struct pv_client *pv_client_ref(struct pv_client *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

/* Any thread. Frees the client when the last reference goes. */
void pv_client_unref(struct pv_client *c);

/* Any thread. Writes len bytes of already-framed data under the connection
 * lock, unless the client is dead, closed or broken. `closes` marks a
 * close frame: afterwards nothing more is written. Returns 0 when written,
 * -1 when skipped, -2 when the write failed or was partial (the client is
 * then marked broken and its worker asked to stop). Written in pieces of
 * PV_CLIENT_WRITE_PIECE bytes under the one lock; while a writer times the
 * write (write_since non-zero), each piece refreshes write_since. */
#define PV_CLIENT_WRITE_PIECE ((size_t)64 * 1024)
int pv_client_write(struct pv_client *c, const void *data, size_t len, bool closes);

/* Any thread. Sends a close frame with code and reason (see above). */
int pv_client_close(struct pv_client *c, uint16_t code, const char *reason);

/* Close handler only: marks the connection gone, waiting for any write in
 * progress to finish. */
void pv_client_mark_dead(struct pv_client *c);

/* Eviction. CivetWeb 1.15 gives no way to end a connection from another
 * thread, and its worker sits in poll(2) until the peer sends something
 * (docs/civetweb.md section 3). But it treats EINTR there as an error and ends
 * the connection (section 7). So the worker threads, alone in the process,
 * take PV_EVICT_SIGNAL with an empty handler installed without SA_RESTART:
 * pv_client_evict() sends it to c's worker under evict_mu and only while
 * `gone` is false, so the signal can reach only the worker that still
 * serves c (the close handler sets `gone` under that mutex before the
 * worker moves on). Not the connection lock: a writer can hold that for a
 * whole write timeout, and the broadcaster must never wait on it. A signal that lands while the
 * worker is not blocked is lost; the broadcaster's sweep repeats it every second until the close
 * handler has run. Unless `force`, only a client whose close frame has
 * gone out (or whose stream is broken) is evicted: ending the connection
 * earlier would mark it dead and the close frame still queued would never
 * be written. Any thread. Returns true if the signal was sent. */
#define PV_EVICT_SIGNAL (SIGRTMIN + 3)
bool pv_client_evict(struct pv_client *c, bool force);

#endif
