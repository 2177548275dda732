/* queue.h -- the inbound event queue: CivetWeb workers -> broadcaster.
 *
 * A lock-free multi-producer single-consumer queue: liburcu's wait-free
 * concurrent queue (wfcqueue), bounded by admission control.
 *
 * Why not ck_ring. Concurrency Kit's MP enqueue makes each producer spin
 * until every earlier producer has committed its slot. palaverd has one
 * producer thread per open WebSocket (1000+) on a 2-core machine, so a
 * producer preempted inside that window stalls all the others for a time
 * slice. Measured here: 4 producers x 200,000 events with one consumer on
 * 2 cores did not finish within 60 s on ck_ring 0.7.1 (three runs), and
 * took 0.03-0.07 s on wfcqueue, whose enqueue is one atomic exchange and
 * one store and never waits for another thread.
 *
 * Protocol
 *  - Producers are CivetWeb worker threads (and main, for SHUTDOWN/STOP).
 *    One consumer: the broadcaster thread (main takes that role only after
 *    it has joined the broadcaster, at teardown).
 *  - Events of one producer thread come out in the order it pushed them; a
 *    client's events (JOIN, MSGs, LEAVE) all come from its own worker, so
 *    the broadcaster sees them in order.
 *  - Bounded by admission, in two classes. MSG (and PUBLISH: a message
 *    from the HTTP API, publish.h) events are admitted through
 *    two atomic counters, msg_inflight and msg_bytes (their payload): when
 *    msg_capacity are in flight, or their bytes would pass the byte bound, the
 *    producer waits up to its timeout on a condition variable (the only
 *    lock here, and only on this slow path), so backpressure reaches the
 *    sender's TCP connection, and then fails with -ETIMEDOUT. Control
 *    events (JOIN, REFUSED, KICK, LEAVE, SHUTDOWN, STOP) never wait and
 *    never fail; they are bounded by the connections themselves: at most
 *    one JOIN or REFUSED, one OPEN, one KICK and one LEAVE per connection that
 *    completed its handshake, and each connection holds a CivetWeb worker
 *    until its LEAVE is queued. A MOD event comes from an HTTP request
 *    that holds its worker until the event is queued, after a signed-in
 *    moderator's action was stored: bounded by the workers too.
 *  - A MSG event arrives decoded: its worker parsed and checked the JSON
 *    (pv_proto_decode, proto.h) and kept only the fields the protocol
 *    uses, so the one broadcaster thread never parses JSON and never
 *    holds a peer's unknown fields; the decode runs on the workers, in
 *    parallel. Its `len` is the payload's size (what the byte bound
 *    counts); `data` is empty.
 *  - Wake-up and ordering: the channel and wake-up of wake.h (only the
 *    producer that makes the queue non-empty notifies; no wake-up can be
 *    lost; the memory-order argument is written there).
 */
#ifndef PALAVER_QUEUE_H
#define PALAVER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/wfcqueue.h>

#include "palaver/proto.h"

struct pv_client;
struct pv_publish;
struct pv_wake;

enum pv_event_type {
    PV_EV_JOIN,     /* a client finished its handshake (data: struct pv_join_req) */
    PV_EV_MSG,      /* one complete, UTF-8-valid text message */
    PV_EV_LEAVE,    /* the client's connection is gone */
    PV_EV_KICK,     /* the worker is closing the client (code in client->kick,
                     * data: reason): send the close frame after what is queued */
    PV_EV_REFUSED,  /* a handshake lost the admission race after it completed:
                     * closed 1013 already, never registered; the broadcaster
                     * keeps it only to evict a peer that never answers */
    PV_EV_OPEN,     /* a sio-dialect client connected its Socket.IO namespace
                     * (socketio.h): greet it, deliver to it from now on */
    PV_EV_PUBLISH,  /* a chat message published over HTTP (publish.h): decoded
                     * like MSG, admitted like MSG, answered through `publish` */
    PV_EV_MOD,      /* the HTTP API decided a moderation or session action
                     * (data: struct pv_mod_req): apply it to the open
                     * connections it names */
    PV_EV_SHUTDOWN, /* main: close every client with 1001, stop relaying */
    PV_EV_STOP,     /* main: leave the loop */
};

/* A decision of the HTTP API (api.h), already authorized and stored by
 * accounts.h, for the broadcaster to apply to open connections:
 *   kick, ban    close every connection of the target (4001, 4003); a ban
 *                `by_address` also bans their addresses (limits.h)
 *   unban        lift the address bans that came with the account's
 *   mute, unmute the target's messages are refused until `until` (or not)
 *   role         the target's connections speak with role `role` now
 *   revoke       close the connections of session `session` (4002)
 *   password     close the target's connections but session `session`'s (4002)
 *   members      (main, on SIGHUP to auth = members) close every guest (4004)
 *   rename       the account's connections take `name` (its new name;
 *                `old_name` the one the rename notice says it had)
 * The target is an account (`account` > 0) or, for kick, ban and mute, a
 * guest by the name they hold online (`name`). */
struct pv_mod_req {
    char action[12];
    int64_t account;
    int64_t session;
    char name[PV_NAME_MAX_BYTES + 1];
    char role[16];
    int64_t until;   /* ms since the epoch: a mute's end, or an address ban's */
    bool by_address; /* ban: also ban the addresses of its connections until `until` */
    char by[PV_NAME_MAX_BYTES + 1];
    char old_name[PV_NAME_MAX_BYTES + 1]; /* rename: the name it had */
    char reason[204];                     /* at most PV_REASON_MAX (apireq.h) bytes */
};

struct pv_event {
    struct cds_wfcq_node node; /* queue link; first member */
    enum pv_event_type type;
    struct pv_client *client;   /* one reference owned by the event, or NULL */
    size_t len;                 /* bytes in data, not counting the NUL */
    uint64_t queued_ns;         /* monotonic ns when it was made (queue lag) */
    int code;                   /* KICK: the close code its worker decided */
    struct pv_inbound in;       /* MSG, PUBLISH: decoded by the worker (owned; released with the
                                 * event) */
    struct pv_publish *publish; /* PUBLISH: one reference; freeing the event unanswered
                                 * answers "unavailable" */
    char data[];                /* NUL-terminated copy of the payload (not for MSG) */
};

/* Allocates an event holding a copy of data (may be NULL when len is 0).
 * Takes no client reference: the caller transfers one. */
struct pv_event *pv_event_new(enum pv_event_type type, struct pv_client *c, const void *data,
                              size_t len);

/* Frees the event and drops its client reference. */
void pv_event_free(struct pv_event *ev);

struct pv_queue;

/* msg_capacity: chat messages that may wait in the queue.
 * Returns NULL (and logs) if the eventfd fails. */
struct pv_queue *pv_queue_new(unsigned msg_capacity);
void pv_queue_free(struct pv_queue *q); /* frees events still queued */

/* Any thread. Control events: never blocks, never fails. */
void pv_queue_push_ctl(struct pv_queue *q, struct pv_event *ev);

/* Any thread. Chat messages: waits up to timeout_ms for space.
 * Returns 0 when queued (ownership passes to the queue), -ETIMEDOUT when
 * the queue stayed full, -ESHUTDOWN after pv_queue_close_msgs(); on error
 * the caller keeps ev. */
int pv_queue_push_msg(struct pv_queue *q, struct pv_event *ev, int timeout_ms);

/* main, before any producer: chat messages in flight may also hold at
 * most `bytes` bytes of payload (0 = no byte bound); a message alone is
 * always admitted. With 1000s of clients at --max-message each, a count
 * alone let the queue hold hundreds of MiB. */
void pv_queue_set_byte_capacity(struct pv_queue *q, uint64_t bytes);

/* Any thread: from now on pv_queue_push_msg() fails at once (shutdown). */
void pv_queue_close_msgs(struct pv_queue *q);

/* Consumer only: takes up to max events, oldest first. Returns the count. */
size_t pv_queue_pop(struct pv_queue *q, struct pv_event **out, size_t max);

/* Consumer only: parks until the queue is non-empty or timeout_ms passes
 * (-1: no timeout). Returns true if events are waiting. */
bool pv_queue_wait(struct pv_queue *q, int timeout_ms);
/* Consumer only: the queue's wake-up, for a consumer that parks on several
 * channels at once (pv_wake_wait), and whether anything is queued. */
struct pv_wake *pv_queue_wake(struct pv_queue *q);
bool pv_queue_empty(struct pv_queue *q);

/* Any thread: events waiting (approximate while producers are active). */
unsigned pv_queue_depth(struct pv_queue *q);

#endif
