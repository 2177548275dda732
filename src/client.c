/* client.c -- client lifetime and the locked write path.
 *
 * Threads: see client.h; each field has a named owner. pv_client_write()
 * may run on a writer thread, on the client's own worker (protocol close
 * frames, "busy" replies) or on main; all of them serialise on CivetWeb's
 * per-connection recursive mutex. */
#include "palaver/client.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/clock.h"
#include "palaver/frame.h"
#include "palaver/stats.h"
#include "palaver/xalloc.h"

struct pv_client *pv_client_new(struct mg_connection *conn, const char *addr, int port,
                                size_t max_message)
{
    struct pv_client *c = pv_xcalloc(1, sizeof(*c));
    atomic_init(&c->refs, 1);
    c->conn = conn;
    c->worker = pthread_self();
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    snprintf(c->peer, sizeof(c->peer), "%s:%d", addr, port);
    pv_wsmsg_init(&c->msg, max_message);
    atomic_init(&c->last_rx, 0);
    c->index = SIZE_MAX;
    atomic_init(&c->outbox, NULL);
    atomic_init(&c->scheduled, false);
    atomic_init(&c->written_bytes, 0);
    atomic_init(&c->write_since, 0);
    atomic_init(&c->watch, false);
    atomic_init(&c->kick, 0);
    atomic_init(&c->drop, false);
    atomic_init(&c->stream_done, false);
    return c;
}

void pv_client_unref(struct pv_client *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    pv_batch_free(c->pending);
    pv_batch_free(c->held);
    pv_batch_free(atomic_load(&c->outbox));
    pv_wsmsg_free(&c->msg);
    free(c->name_key); /* released from the names table at its LEAVE; at exit, not */
    free(c);
}

int pv_client_write(struct pv_client *c, const void *data, size_t len, bool closes)
{
    const char *p = data;
    int rc = -1;

    mg_lock_connection(c->conn);
    if (!c->dead && !c->close_sent && !c->broken) {
        rc = 0;
        /* In pieces, under the one lock (nothing can come between them):
         * each piece that goes out is progress, so a big frame (a history
         * page) to a client that reads steadily never looks stalled. */
        for (size_t off = 0; off < len && rc == 0;) {
            size_t n = len - off < PV_CLIENT_WRITE_PIECE ? len - off : PV_CLIENT_WRITE_PIECE;
            if (off > 0 && atomic_load(&c->write_since))
                atomic_store(&c->write_since, pv_mono_ns());
            if (mg_write(c->conn, p + off, n) != (int)n)
                rc = -2;
            off += n;
        }
        if (rc == 0 && closes) {
            c->close_sent = true;
            atomic_store(&c->stream_done, true);
        } else if (rc == -2) {
            /* A partial write leaves half a frame on the wire: nothing can
             * follow it. The worker stops at its next frame or ping. */
            c->broken = true;
            atomic_store(&c->stream_done, true);
            pv_client_close_decide(c, 1006, NULL); /* unless closing already */
        }
    }
    mg_unlock_connection(c->conn);
    return rc;
}

int pv_client_close(struct pv_client *c, uint16_t code, const char *reason)
{
    struct pv_frame *f = pv_frame_close(code, reason);
    int rc = pv_client_write(c, f->data, f->len, true);
    pv_frame_unref(f);
    return rc;
}

/* Guards every client's `gone` flag: the check-and-signal of
 * pv_client_evict() against the close handler. Held for a flag and a
 * pthread_kill() only, never around I/O, so the broadcaster never waits on
 * a writer stuck on a full socket (which the connection lock would do). */
static pthread_mutex_t evict_mu = PTHREAD_MUTEX_INITIALIZER;

void pv_client_mark_dead(struct pv_client *c)
{
    pthread_mutex_lock(&evict_mu);
    c->gone = true;
    pthread_mutex_unlock(&evict_mu);
    mg_lock_connection(c->conn);
    c->dead = true;
    mg_unlock_connection(c->conn);
}

bool pv_client_evict(struct pv_client *c, bool force)
{
    bool sent = false;
    pthread_mutex_lock(&evict_mu);
    if (!c->gone && (atomic_load(&c->stream_done) || force))
        sent = pthread_kill(c->worker, PV_EVICT_SIGNAL) == 0;
    pthread_mutex_unlock(&evict_mu);
    return sent;
}
