/* delivery.c -- the delivery policy: per-client pending batches, the
 * backlog bound, slow consumer versus congestion, the sender-excluding
 * fanout and the flush to the writer pool.
 *
 * Threads: broadcaster thread only (internal.h). It reads other threads'
 * data only through clients' written_bytes and write_since counters
 * (written by the writers, writer.h) and pv_writers_behind().
 *
 * The policy. A frame for a client is appended to its pending batch and
 * the client marked dirty; flush() posts each dirty client's batch to its
 * outbox at the end of the cycle. A client whose backlog (queued minus
 * written) passes --max-backlog is either not reading (its socket has
 * taken nothing for PV_CLIENT_STALL_MS: closed 1008 "slow consumer"), or
 * reading more slowly than the chat runs (twice the bound while our
 * writers keep up, past any burst the server chose to send it: closed
 * too), or waiting on our own writers (congested: kept; the broadcaster
 * pauses while writers are behind, relieve()). */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/proto.h"
#include "palaver/stats.h"
#include "palaver/writer.h"

void pv__mark_dirty(struct pv_broadcaster *b, struct pv_client *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    pv__list_push(&b->dirty, c);
}

uint64_t pv__backlog(const struct pv_client *c)
{
    uint64_t done = atomic_load_explicit(&c->written_bytes, memory_order_acquire);
    return c->queued_bytes - done;
}

/* True if a write to c has made no progress for PV_CLIENT_STALL_MS: the
 * kernel will not take more, so the client is not reading. */
static bool write_stalled(const struct pv_client *c, uint64_t now)
{
    uint64_t since = atomic_load(&c->write_since);
    return since && now > since && now - since >= (uint64_t)PV_CLIENT_STALL_MS * 1000000u;
}

/* The close decision for a client that stopped reading: no more fanout,
 * its queued data is dropped (writers skip data once drop is set) and a
 * close frame follows, unless another close was decided first (its own
 * close frame comes with it: client.h). */
static void slow_consumer(struct pv_broadcaster *b, struct pv_client *c, uint64_t queued,
                          const char *why)
{
    c->closing = true;
    atomic_store(&c->drop, true);
    pv_batch_free(c->pending);
    c->pending = NULL;
    if (!pv_client_close_decide(c, 1008, NULL))
        return;
    pv__queue_close(b, c, 1008, "slow consumer", false);
    pv_stat_add(&b->d.stats->slow_consumers, 1);
    pv_warn("slow consumer: closing id=%s peer=%s with 1008: %s, backlog %llu bytes over the "
            "%zu-byte bound",
            c->id, c->peer, why, (unsigned long long)queued, b->d.cfg->max_backlog);
}

/* Why a client over the backlog bound must be closed, or NULL while it
 * may wait (our writers are behind, or it is under the hard bound). */
static const char *slow_reason(struct pv_broadcaster *b, const struct pv_client *c, uint64_t queued,
                               uint64_t now)
{
    if (write_stalled(c, now))
        return "not reading (its socket has been full for 1 s)";
    /* A burst the server chose to send (a newcomer's history, a replay or
     * page it admitted) may exceed the bound: until it has been written,
     * only a full socket counts. */
    bool graced_out = atomic_load_explicit(&c->written_bytes, memory_order_acquire) >= c->grace_end;
    if (graced_out && queued > 2 * (uint64_t)b->d.cfg->max_backlog &&
        !pv_writers_behind(b->d.writers))
        return "reading more slowly than the chat runs (twice the bound queued)";
    return NULL;
}

static void congest(struct pv_broadcaster *b, struct pv_client *c)
{
    if (c->congested)
        return;
    c->congested = true;
    atomic_store(&c->watch, true);
    pv__list_push(&b->congested, c);
}

bool pv__deliver(struct pv_broadcaster *b, struct pv_client *c, struct pv_frame *f)
{
    if (c->closing) {
        pv_frame_unref(f);
        return false;
    }
    /* A client of a seed's dialect gets the frame in its own words, or
     * not at all (dialects.c); palaver's own clients never pay for it. */
    if (c->dialect != f->dialect && f->opcode == PV_WS_OP_TEXT && !(f = pv__dialect_frame(b, c, f)))
        return false;
    if (c->resuming) {
        /* Held back until the replay is out (bounded like a backlog; past
         * the bound the replay turns into a reset). */
        c->held_bytes += f->len;
        if (!c->held_over && c->held_bytes > b->d.cfg->max_backlog) {
            c->held_over = true;
            pv_batch_free(c->held);
            c->held = NULL;
        }
        if (c->held_over)
            pv_frame_unref(f);
        else
            pv_batch_push(&c->held, f);
        return true;
    }
    uint64_t queued = pv__backlog(c) + f->len;
    if (queued > b->d.cfg->max_backlog) {
        /* Over the bound: the client is not reading (its socket is full),
         * or it reads more slowly than its share and is at twice the bound
         * while our writers keep up: close it. Otherwise our own writers
         * are behind (overload): keep the frame, and the broadcaster takes
         * no new events until they catch up (pv__relieve()). One socket being
         * behind never pauses the others. */
        const char *why = slow_reason(b, c, queued, pv_mono_ns());
        if (why) {
            pv_frame_unref(f);
            slow_consumer(b, c, queued, why);
            return false;
        }
        congest(b, c);
    }
    pv_batch_push(&c->pending, f);
    c->queued_bytes += f->len;
    pv__mark_dirty(b, c);
    return true;
}

bool pv__deliver_shed(struct pv_broadcaster *b, struct pv_client *c, struct pv_frame *f)
{
    if (!c->closing && (c->congested || c->resuming || pv__backlog(c) > PV_TYPING_SHED_BYTES)) {
        pv_stat_add(&b->d.stats->typing_shed, 1);
        pv_frame_unref(f);
        return false;
    }
    return pv__deliver(b, c, f);
}

/* Re-examines congested clients: those back under half the bound leave
 * the list, those whose socket has stayed full (or who are at twice the
 * bound while the writers keep up) are closed. Returns true while some
 * client is still congested and the writers are behind: then the
 * broadcaster pauses. */
bool pv__relieve(struct pv_broadcaster *b)
{
    uint64_t now = pv_mono_ns();
    size_t keep = 0;

    for (size_t i = 0; i < b->congested.n; i++) {
        struct pv_client *c = b->congested.v[i];
        uint64_t queued = pv__backlog(c);
        bool done = c->closing || c->index == SIZE_MAX || queued <= b->d.cfg->max_backlog / 2;
        const char *why =
            !done && queued > b->d.cfg->max_backlog ? slow_reason(b, c, queued, now) : NULL;
        if (why) {
            slow_consumer(b, c, queued, why);
            done = true;
        }
        if (done) {
            c->congested = false;
            atomic_store(&c->watch, false);
            pv_client_unref(c);
        } else {
            b->congested.v[keep++] = c;
        }
    }
    b->congested.n = keep;
    /* Global back-pressure only while our own writers are behind. */
    return keep > 0 && pv_writers_behind(b->d.writers);
}

/* Sends f to every registered client except `except` (NULL: everyone) and
 * the newcomers of the join burst being handled.
 * This is the sender-excluding fanout: the frame was encoded once, and
 * each recipient gets a reference to the same bytes. Consumes the
 * caller's reference to f. */
void pv__fanout(struct pv_broadcaster *b, struct pv_frame *f, const struct pv_client *except)
{
    /* One reference per recipient, taken up front in one atomic add; the
     * ones not used (closing clients) are returned by pv__deliver(). Nothing
     * is visible to writers until pv__flush(), so the count cannot drop to
     * zero early. */
    pv_frame_ref_n(f, (unsigned)pv_registry_count(&b->reg));
    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *c = b->reg.v[i];
        if (c == except || c->joining) {
            pv_frame_unref(f);
            continue;
        }
        pv__deliver(b, c, f);
    }
    pv_frame_unref(f);
}

void pv__send_error(struct pv_broadcaster *b, struct pv_client *c, const char *code,
                    const char *msg, const json_t *msg_id)
{
    pv_stat_error(b->d.stats, code);
    pv__deliver(b, c, pv_proto_error(code, msg, msg_id));
}

/* Ends a cycle: hands every touched client's frames to the writers. */
void pv__flush(struct pv_broadcaster *b)
{
    for (size_t i = 0; i < b->dirty.n; i++) {
        struct pv_client *c = b->dirty.v[i];
        struct pv_batch *batch = c->pending;
        c->pending = NULL;
        c->dirty = false;
        if (batch) {
            if (c->index == SIZE_MAX)
                pv_batch_free(batch); /* left this cycle */
            else
                pv_writers_post(b->d.writers, c, batch);
        }
        pv_client_unref(c);
    }
    b->dirty.n = 0;
    pv_writers_kick(b->d.writers);
}

void pv__queue_close(struct pv_broadcaster *b, struct pv_client *c, uint16_t code,
                     const char *reason, bool discard)
{
    c->closing = true;
    if (discard) {
        pv_batch_free(c->pending);
        c->pending = NULL;
    }
    pv_batch_push(&c->pending, pv_frame_close(code, reason));
    c->close_queued = true;
    pv__mark_dirty(b, c);
}
