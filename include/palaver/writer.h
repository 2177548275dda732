/* writer.h -- the writer pool: the only threads that write fanout traffic
 * to sockets, so that a client that stops reading stalls one writer, never
 * the broadcaster or the other clients.
 *
 * Why a pool. CivetWeb's mg_write() blocks for up to request_timeout_ms on
 * a client whose socket buffer is full (docs/civetweb.md section 2), and the
 * library exposes no socket to poll. The broadcaster therefore never
 * writes; it posts batches to per-client outboxes and writer threads send
 * them. When a writer has been inside one write for longer than
 * PV_WRITER_STALL_MS, the broadcaster's housekeeping tick starts another
 * writer (up to writers_max), so min_writers unstuck writers always serve
 * the healthy clients. Extra writers retire after being idle.
 *
 * Outbox protocol (lock-free, per client):
 *  - outbox: an atomic pointer to a pv_batch, or NULL. Only the broadcaster
 *    puts batches in (exchange out whatever is there, append, store back);
 *    a writer takes the whole batch with one exchange.
 *  - scheduled: true while exactly one writer owns the client or the
 *    client sits in the ready queue. The broadcaster enqueues the client
 *    only when it flips scheduled false -> true. The owning writer clears
 *    it after a batch, then looks at the outbox again and re-claims the
 *    client if more arrived (and the broadcaster did not claim it first).
 *    So at most one writer writes a client at a time, and batches go out
 *    in the order they were posted.
 *  - Ready queue: liburcu's wait-free concurrent queue (wfcqueue), linked
 *    through each client's own ready_node. Writers take clients until the
 *    queue is empty, then register in `idle` and look once more before
 *    they sleep on a semaphore. The broadcaster enqueues a cycle's clients
 *    without waking anyone and kicks once at the end of the cycle, waking
 *    only as many idle writers as the queue needs (one per
 *    PV_WRITER_PER_WAKE queued clients, counting those awake): a post per
 *    client woke every writer for every message, and each wake-up
 *    preempted the broadcaster in the middle of its fanout. The
 *    housekeeping tick wakes idle writers when an awake one is stuck on a
 *    full socket with clients queued behind it. The broadcaster is
 *    the only enqueuer (wait-free: one exchange and one store); writers
 *    dequeue under the queue head's own mutex, held for a pointer swap.
 *    A client is in the queue at most once (it is there only while
 *    `scheduled`), so the queue needs no capacity: clients that have left
 *    but are still queued (their LEAVE already released their admission
 *    slot) cost their own memory and nothing else. (A fixed ring sized
 *    from max_clients overflowed exactly there: issue 12, item 1.)
 *  - written_bytes: writers add the size of each finished batch (sent or
 *    dropped); the broadcaster's backlog for a client is
 *    queued_bytes - written_bytes.
 *  - write_since: set by the writer for the duration of each write, and
 *    refreshed by each 64 KiB piece that goes out. A write that has made
 *    no progress for PV_CLIENT_STALL_MS is blocked on a full socket.
 *  - watch: when the broadcaster waits for a client's backlog to shrink it
 *    sets watch; the writer that finishes a batch for a watched client
 *    notifies the pool's progress wake-up (wake.h).
 */
#ifndef PALAVER_WRITER_H
#define PALAVER_WRITER_H

#include <stdbool.h>
#include <stdint.h>

struct pv_client;
struct pv_batch;
struct pv_stats;
struct pv_writers;
struct pv_wake;

#define PV_WRITER_STALL_MS 100
/* Queued clients per writer kept awake (pv_writers_kick). */
#define PV_WRITER_PER_WAKE 1024
/* A client whose socket has taken nothing for this long while its backlog
 * is over the bound is not reading. Longer than PV_WRITER_STALL_MS (which
 * only starts another writer): a Wi-Fi hiccup or a descheduled reader can
 * pause a healthy client for a few hundred ms. */
#define PV_CLIENT_STALL_MS 1000

/* main: creates the pool and starts min_writers threads. */
struct pv_writers *pv_writers_start(unsigned min_writers, unsigned max_writers,
                                    struct pv_stats *stats);

/* Broadcaster only: appends b to c's outbox (taking b over) and makes sure
 * a writer will send it. */
void pv_writers_post(struct pv_writers *w, struct pv_client *c, struct pv_batch *b);

/* Broadcaster only, at the end of a cycle: wakes idle writers for the
 * clients posted since the last kick. */
void pv_writers_kick(struct pv_writers *w);

/* Broadcaster: notified when a batch of a watched client is done (the
 * broadcaster parks on it with its other channels while it waits for a
 * congested client's backlog to shrink). */
struct pv_wake *pv_writers_wake(struct pv_writers *w);

/* Broadcaster only: stall supervision. Starts a writer when fewer than
 * min_writers are free of a stalled write, and reaps retired ones.
 * Returns true while some writer is busy (the caller ticks sooner). */
bool pv_writers_tick(struct pv_writers *w);

/* main, after the broadcaster stopped: waits up to timeout_ms until no
 * client is scheduled. Returns true if everything was written. */
bool pv_writers_drain(struct pv_writers *w, int timeout_ms);

/* main, after the broadcaster stopped: stops and joins every writer, then
 * frees the pool (releasing clients still queued). */
void pv_writers_stop(struct pv_writers *w);

/* Broadcaster: true while clients wait in the ready queue for a writer
 * (more clients have batches than there are writers): palaverd's own
 * writers are behind, as opposed to one client reading slowly. */
bool pv_writers_behind(struct pv_writers *w);

#endif
