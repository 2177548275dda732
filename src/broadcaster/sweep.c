/* sweep.c -- keepalive and eviction over the whole registry.
 *
 * Threads: broadcaster thread only (internal.h). It reads clients'
 * last_rx (relaxed, a clock reading written by their workers) and kick
 * (client.h), and interrupts a stuck worker through pv_client_evict(). */
#include <stdint.h>

#include "internal.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/stats.h"

/* Keepalive and eviction, every sweep_every ns over the whole registry:
 *  - a client silent (no frame at all) for --ping-interval gets a ping,
 *    then another each interval; its pong counts as a frame;
 *  - one silent for --idle-timeout is closed with 1001 "idle timeout";
 *  - a client the server has decided to close (kick set: idle, slow
 *    consumer, protocol violation, flood, broken write) that has not
 *    answered with its close frame a second after ours went out is
 *    evicted (client.h), again each sweep until its close handler runs;
 *    if ours cannot go out (socket full), the write times out after
 *    --io-timeout and the stream is broken, which allows eviction too.
 *    That is what ends a peer that stopped reading and sending: CivetWeb
 *    alone would keep its worker in poll(2) for good. */
#define EVICT_GRACE_NS 1000000000ull

/* A closed client whose close frame has been out for the grace period
 * and whose connection is still open gets its worker interrupted. */
static void evict_due(struct pv_broadcaster *b, struct pv_client *c, int kick, uint64_t now,
                      uint64_t force_ns)
{
    if (!c->kick_seen)
        c->kick_seen = now;
    else if (now - c->kick_seen >= EVICT_GRACE_NS &&
             pv_client_evict(c, now - c->kick_seen >= force_ns)) {
        pv_stat_add(&b->d.stats->evictions, 1);
        pv_info("evicting id=%s peer=%s: closed %d but its connection is still open",
                c->id[0] ? c->id : "(refused)", c->peer, kick);
    }
}

/* Handshakes refused after they completed: evicted like closed clients,
 * dropped once their LEAVE has come. */
static void sweep_refused(struct pv_broadcaster *b, uint64_t now, uint64_t force_ns)
{
    size_t keep = 0;
    for (size_t i = 0; i < b->refused.n; i++) {
        struct pv_client *c = b->refused.v[i];
        if (c->left) {
            pv_client_unref(c);
            continue;
        }
        evict_due(b, c, atomic_load(&c->kick), now, force_ns);
        b->refused.v[keep++] = c;
    }
    b->refused.n = keep;
}

void pv__sweep(struct pv_broadcaster *b, uint64_t now)
{
    const struct pv_config *cfg = b->d.cfg;
    uint64_t ping_ns = (uint64_t)cfg->ping_interval_ms * 1000000u;
    uint64_t idle_ns = (uint64_t)cfg->idle_timeout_ms * 1000000u;
    /* By then a close frame stuck behind a full socket has timed out. */
    uint64_t force_ns = EVICT_GRACE_NS * 2 + (uint64_t)cfg->io_timeout_ms * 1000000u;
    struct pv_frame *ping = NULL, *sio_ping = NULL;

    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *c = b->reg.v[i];
        int kick = atomic_load(&c->kick);
        if (kick) {
            evict_due(b, c, kick, now, force_ns);
            continue;
        }
        if (c->closing)
            continue;
        uint64_t rx = atomic_load_explicit(&c->last_rx, memory_order_relaxed);
        uint64_t silent = now > rx ? now - rx : 0;
        if (silent >= idle_ns) {
            if (!pv_client_close_decide(c, 1001, NULL))
                continue; /* closing for another reason already (client.h) */
            c->kick_seen = now;
            pv__queue_close(b, c, 1001, "idle timeout", true);
            pv_stat_add(&b->d.stats->idle_closes, 1);
            pv_notice("idle timeout: closing id=%s peer=%s with 1001: nothing received for "
                      "%llu ms",
                      c->id, c->peer, (unsigned long long)(silent / 1000000u));
        } else if (c->dialect == PV_DIALECT_SIO && c->sio_open && now - c->ping_sent >= ping_ns) {
            /* Engine.IO's heartbeat: the server pings every pingInterval
             * whatever the traffic, and a client that hears none for
             * pingInterval + pingTimeout gives up (socketio.h). */
            if (!sio_ping)
                sio_ping = pv_frame_new(PV_WS_OP_TEXT, "2", 1);
            sio_ping->dialect = PV_DIALECT_SIO; /* already in its words */
            c->ping_sent = now;
            pv__deliver(b, c, pv_frame_ref(sio_ping));
        } else if (silent >= ping_ns && now - c->ping_sent >= ping_ns) {
            if (!ping)
                ping = pv_frame_new(PV_WS_OP_PING, NULL, 0);
            c->ping_sent = now;
            pv__deliver(b, c, pv_frame_ref(ping));
        }
    }
    if (ping)
        pv_frame_unref(ping);
    if (sio_ping)
        pv_frame_unref(sio_ping);
    sweep_refused(b, now, force_ns);
}
