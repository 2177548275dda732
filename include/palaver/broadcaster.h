/* broadcaster.h -- the one thread that owns the client registry.
 *
 * It drains the event queue in batches, validates chat messages, gives
 * each one the next server-wide sequence number, encodes it once and
 * fans it out to every registered client except its sender. It never
 * writes to a socket: each cycle ends by posting every touched client's
 * gathered frames to the writer pool (writer.h).
 *
 * Threads: pv_broadcaster_start() and pv_broadcaster_join() run on main.
 * Everything else in src/broadcaster/ runs on the broadcaster thread, which
 * alone owns the registry, the history ring, the sequence counter and the
 * broadcaster-owned fields of struct pv_client.
 */
#ifndef PALAVER_BROADCASTER_H
#define PALAVER_BROADCASTER_H

#include <stdatomic.h>
#include <stdbool.h>

struct pv_config;
struct pv_queue;
struct pv_writers;
struct pv_stats;
struct pv_store;
struct pv_peers;
struct pv_broadcaster;

struct pv_broadcaster_deps {
    const struct pv_config *cfg;
    struct pv_queue *queue;
    struct pv_writers *writers;
    struct pv_stats *stats;
    atomic_uint *admitted;  /* admission count, released at each LEAVE */
    struct pv_store *store; /* durable history; NULL = memory only */
    struct pv_peers *peers; /* per-address budgets (limits.h, its own lock) */
    struct pv_bans *bans;   /* address bans: added here, checked at handshakes */
    bool store_wanted;      /* a data directory was configured: without a store
                             * (it could not be opened), senders are told
                             * their messages are not stored */
};

/* Starts the thread. Returns NULL (and logs) if it cannot. */
struct pv_broadcaster *pv_broadcaster_start(const struct pv_broadcaster_deps *deps);

/* main: waits for the thread to leave its loop (after a STOP event was
 * queued) and frees its state, dropping the registry's client references. */
void pv_broadcaster_join(struct pv_broadcaster *b);

#endif
