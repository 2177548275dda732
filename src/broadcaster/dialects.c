/* dialects.c -- delivering to clients of the seeds' dialects (dialect.h,
 * docs/dialects.md): palaver frames translated once per frame and
 * dialect, and what such a client gets on joining.
 *
 * Threads: broadcaster thread only (internal.h). The translation itself
 * is dialect.c's (pure); this file owns the cache of the last frame
 * translated into each dialect, so a fanout to 300 seed 004 pages
 * encodes the message's line once and queues 300 references to it, and
 * of the greeting built from the history, so 300 seed pages joining
 * together translate the lobby's history once. */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "palaver/clock.h"
#include "palaver/frame.h"
#include "palaver/history.h"
#include "palaver/stats.h"
#include "palaver/xalloc.h"

/* The deliveries of the cached frame, into the shared counter. */
static void flush_count(struct pv_broadcaster *b, enum pv_dialect d)
{
    struct dialect_cache *k = &b->dialect_cache[d];
    if (k->uses)
        pv_stat_add(&b->d.stats->dialect_out[d], k->uses);
    k->uses = 0;
}

struct pv_frame *pv__dialect_frame(struct pv_broadcaster *b, const struct pv_client *c,
                                   struct pv_frame *f)
{
    enum pv_dialect d = (enum pv_dialect)c->dialect;
    if (d >= PV_DIALECTS) {
        pv_frame_unref(f);
        return NULL;
    }
    /* Seed 002's client has not connected its Socket.IO namespace yet:
     * anything on its WebSocket now would break its upgrade probe
     * (socketio.h). (Its own greeting and heartbeat are already in its
     * words and sent only once it is open; pings are control frames.) */
    if (d == PV_DIALECT_SIO && !c->sio_open) {
        pv_frame_unref(f);
        return NULL;
    }
    struct dialect_cache *k = &b->dialect_cache[d];
    if (k->src != f) {
        flush_count(b, d);
        if (k->src)
            pv_frame_unref(k->src);
        if (k->out)
            pv_frame_unref(k->out);
        k->src = pv_frame_ref(f);
        k->out = pv_dialect_out(d, f, pv_now_ms());
    }
    pv_frame_unref(f);
    if (!k->out)
        return NULL;
    k->uses++; /* counted here, published once per frame: no atomic per delivery */
    return pv_frame_ref(k->out);
}

static void greet_free(struct greet_cache *g)
{
    for (size_t i = 0; i < g->n; i++)
        pv_frame_unref(g->f[i]);
    free(g->f);
    *g = (struct greet_cache){0};
}

void pv__dialect_greet(struct pv_broadcaster *b, struct pv_client *c)
{
    enum pv_dialect d = (enum pv_dialect)c->dialect;
    if (d >= PV_DIALECTS)
        return;
    struct greet_cache *g = &b->greet_cache[d];
    if (!g->valid || g->gen != b->hist.gen) {
        greet_free(g);
        size_t n = 0;
        struct pv_frame **lobby = pv_xcalloc(b->hist.len + 1, sizeof(*lobby));
        for (size_t h = 0; h < b->hist.len; h++) {
            const struct pv_history_entry *e = pv_history_at(&b->hist, h);
            if (e->room == PV_LOBBY_ID && e->message)
                lobby[n++] = e->f;
        }
        if (d == PV_DIALECT_ECHO) {
            lobby[0] = pv_dialect_echo_history(lobby, n);
            g->n = 1;
        } else {
            int64_t now = pv_now_ms();
            for (size_t i = 0; i < n; i++)
                if ((lobby[g->n] = pv_dialect_out(d, lobby[i], now)) != NULL)
                    g->n++;
        }
        g->f = lobby; /* the translations took the originals' places */
        g->gen = b->hist.gen;
        g->valid = true;
    }
    for (size_t i = 0; i < g->n; i++)
        pv__deliver(b, c, pv_frame_ref(g->f[i]));
    pv_stat_add(&b->d.stats->dialect_out[d], g->n);
}

void pv__dialect_open(struct pv_broadcaster *b, struct pv_client *c)
{
    if (c->dialect != PV_DIALECT_SIO || c->sio_open || c->index == SIZE_MAX || c->closing)
        return;
    c->sio_open = true;
    c->grace_end = UINT64_MAX;
    pv__deliver(b, c, pv_dialect_sio_hello(c->name));
    pv__dialect_greet(b, c);
    c->grace_end = c->queued_bytes; /* the greeting is a burst the server chose to send */
}

void pv__dialects_free(struct pv_broadcaster *b)
{
    for (int d = 0; d < PV_DIALECTS; d++) {
        flush_count(b, (enum pv_dialect)d);
        if (b->dialect_cache[d].src)
            pv_frame_unref(b->dialect_cache[d].src);
        if (b->dialect_cache[d].out)
            pv_frame_unref(b->dialect_cache[d].out);
        b->dialect_cache[d] = (struct dialect_cache){0};
        greet_free(&b->greet_cache[d]);
    }
}
