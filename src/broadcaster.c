/* broadcaster.c -- registry owner, validator and sender-excluding fanout.
 *
 * Threads: runs on the broadcaster thread only (see broadcaster.h). It
 * reads other threads' data only through the queue (events), the writer
 * pool's outbox protocol and clients' written_bytes counters. */
#include "palaver/broadcaster.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/client.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/limits.h"
#include "palaver/log.h"
#include "palaver/proto.h"
#include "palaver/queue.h"
#include "palaver/registry.h"
#include "palaver/stats.h"
#include "palaver/store.h"
#include "palaver/writer.h"
#include "palaver/xalloc.h"

#define POP_BATCH 256

/* A growable list of clients, holding one reference to each. */
struct client_list {
    struct pv_client **v;
    size_t n, cap;
};

static void list_push(struct client_list *l, struct pv_client *c)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = pv_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = pv_client_ref(c);
}

static void list_free(struct client_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pv_client_unref(l->v[i]);
    free(l->v);
    *l = (struct client_list){0};
}

/* One message kept in memory for newcomers and resumes; the ring holds
 * them oldest first, seq ascending. */
struct hist {
    struct pv_frame *f;
    uint64_t seq;
    int64_t date; /* serverDate, for retention by age */
};

struct pv_broadcaster {
    struct pv_broadcaster_deps d;
    pthread_t thread;

    struct pv_registry reg;
    struct client_list dirty;     /* clients with pending frames */
    struct client_list congested; /* over the backlog bound while writers
                                   * catch up */
    struct client_list refused;   /* lost the admission race, closed 1013,
                                   * connection not yet gone: swept */

    struct hist *history; /* ring of the last cfg->history messages */
    size_t hist_head, hist_len;

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
        struct pv_client *c; /* one reference */
        uint64_t seq;
        json_t *msg_id;      /* one reference, or NULL */
        int64_t now;
    } *acks;
    size_t acks_head, acks_n, acks_cap;

    uint64_t seq; /* last sequence number given out */
    /* Names the seq numbering: the database's id with a store (seq
     * carries on across restarts), else random per start (seq restarts). */
    char run_id[PV_ID_LEN + 1];
    bool draining; /* SHUTDOWN seen: closing everyone, relaying nothing */
    bool stop;
};

/* Queues f for c (taking over one reference the caller holds for c).
 * Returns false, and releases that reference, if c is closing or has just
 * been closed as a slow consumer. */
static bool deliver(struct pv_broadcaster *b, struct pv_client *c, struct pv_frame *f);

static void mark_dirty(struct pv_broadcaster *b, struct pv_client *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    list_push(&b->dirty, c);
}

static uint64_t backlog(const struct pv_client *c)
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

/* The close decision for a client that stopped reading. Its queued data is
 * dropped (writers skip data once kick is set) and a close frame follows. */
static void slow_consumer(struct pv_broadcaster *b, struct pv_client *c, uint64_t queued,
                          const char *why)
{
    struct pv_frame *f = pv_frame_close(1008, "slow consumer");

    c->closing = true;
    atomic_store(&c->drop, true);
    atomic_store(&c->kick, 1008);
    pv_batch_free(c->pending);
    c->pending = NULL;
    pv_batch_push(&c->pending, f);
    mark_dirty(b, c);
    pv_stat_add(&b->d.stats->slow_consumers, 1);
    pv_warn("slow consumer: closing id=%s peer=%s with 1008: %s, backlog %llu bytes over the "
            "%zu-byte bound",
            c->id, c->peer, why, (unsigned long long)queued, b->d.cfg->max_backlog);
}

/* Why a client over the backlog bound must be closed, or NULL while it
 * may wait (our writers are behind, or it is under the hard bound). */
static const char *slow_reason(struct pv_broadcaster *b, const struct pv_client *c,
                               uint64_t queued, uint64_t now)
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
    list_push(&b->congested, c);
}

static bool deliver(struct pv_broadcaster *b, struct pv_client *c, struct pv_frame *f)
{
    if (c->closing) {
        pv_frame_unref(f);
        return false;
    }
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
    uint64_t queued = backlog(c) + f->len;
    if (queued > b->d.cfg->max_backlog) {
        /* Over the bound: the client is not reading (its socket is full),
         * or it reads more slowly than its share and is at twice the bound
         * while our writers keep up: close it. Otherwise our own writers
         * are behind (overload): keep the frame, and the broadcaster takes
         * no new events until they catch up (relieve()). One socket being
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
    mark_dirty(b, c);
    return true;
}

/* Re-examines congested clients: those back under half the bound leave
 * the list, those whose socket has stayed full (or who are at twice the
 * bound while the writers keep up) are closed. Returns true while some
 * client is still congested and the writers are behind: then the
 * broadcaster pauses. */
static bool relieve(struct pv_broadcaster *b)
{
    uint64_t now = pv_mono_ns();
    size_t keep = 0;

    for (size_t i = 0; i < b->congested.n; i++) {
        struct pv_client *c = b->congested.v[i];
        uint64_t queued = backlog(c);
        bool done = c->closing || c->index == SIZE_MAX || queued <= b->d.cfg->max_backlog / 2;
        const char *why = !done && queued > b->d.cfg->max_backlog
                              ? slow_reason(b, c, queued, now)
                              : NULL;
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
static void fanout(struct pv_broadcaster *b, struct pv_frame *f, const struct pv_client *except)
{
    /* One reference per recipient, taken up front in one atomic add; the
     * ones not used (closing clients) are returned by deliver(). Nothing
     * is visible to writers until flush(), so the count cannot drop to
     * zero early. */
    pv_frame_ref_n(f, (unsigned)pv_registry_count(&b->reg));
    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *c = b->reg.v[i];
        if (c == except || c->joining) {
            pv_frame_unref(f);
            continue;
        }
        deliver(b, c, f);
    }
    pv_frame_unref(f);
}

static void send_error(struct pv_broadcaster *b, struct pv_client *c, const char *code,
                       const char *msg, const json_t *msg_id)
{
    pv_stat_error(b->d.stats, code);
    deliver(b, c, pv_proto_error(code, msg, msg_id));
}

static struct pv_user user_of(const struct pv_client *c)
{
    return (struct pv_user){.id = c->id, .name = c->name};
}

/* The i-th oldest message kept for newcomers. */
static struct hist *history_at(const struct pv_broadcaster *b, size_t i)
{
    return &b->history[(b->hist_head + i) % b->d.cfg->history];
}

static void history_push(struct pv_broadcaster *b, struct pv_frame *f, uint64_t seq, int64_t date)
{
    size_t cap = b->d.cfg->history;
    if (cap == 0)
        return;
    struct hist h = {pv_frame_ref(f), seq, date};
    if (b->hist_len == cap) {
        pv_frame_unref(b->history[b->hist_head].f);
        b->history[b->hist_head] = h;
        b->hist_head = (b->hist_head + 1) % cap;
    } else {
        b->history[(b->hist_head + b->hist_len) % cap] = h;
        b->hist_len++;
    }
}

/* Retention by age applies to memory too: the oldest go first. */
static void history_expire(struct pv_broadcaster *b, int64_t now_ms)
{
    if (!b->d.cfg->history_max_age_s)
        return;
    int64_t cutoff = now_ms - (int64_t)b->d.cfg->history_max_age_s * 1000;
    while (b->hist_len && b->history[b->hist_head].date < cutoff) {
        pv_frame_unref(b->history[b->hist_head].f);
        b->hist_head = (b->hist_head + 1) % b->d.cfg->history;
        b->hist_len--;
    }
}

/* Index of the oldest ring entry with seq > after (hist_len if none). */
static size_t history_after(const struct pv_broadcaster *b, uint64_t after)
{
    size_t lo = 0, hi = b->hist_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (history_at(b, mid)->seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* History reads a client asks for on an open connection (hello resumes
 * and pages) are budgeted in the bytes they produce, per client and per
 * address (--history-rate: a 60-byte request could ask for megabytes),
 * and refused with "busy" while either budget is in debt or while the
 * client's own backlog is over half the bound. The history a newcomer
 * gets at its handshake (and a ?since= resume there) is not charged: it
 * is bounded by --history and --resume-limit per handshake, and
 * handshakes by --handshake-rate. c->reads_charged is set while a
 * request's replies are being built. */
static double reads_rate(const struct pv_broadcaster *b)
{
    return b->d.cfg->history_rate;
}

static void reads_charge(struct pv_broadcaster *b, struct pv_client *c, size_t bytes)
{
    double rate = reads_rate(b), burst = rate * 8;
    if (rate <= 0 || bytes == 0 || !c->reads_charged)
        return;
    uint64_t now = pv_mono_ns();
    pv_rate_level(&c->reads, rate, burst, now);
    c->reads.tokens -= (double)bytes;
    if (b->d.peers)
        pv_peers_reads_charge(b->d.peers, c->addr, rate * 4, burst * 4, (double)bytes, now);
}

/* NULL if c may read history now, else why not (for the busy error). */
static const char *reads_refused(struct pv_broadcaster *b, struct pv_client *c)
{
    double rate = reads_rate(b), burst = rate * 8;
    if (backlog(c) > b->d.cfg->max_backlog / 2)
        return "busy: your connection is still behind, ask again once it has caught up";
    if (rate <= 0)
        return NULL;
    uint64_t now = pv_mono_ns();
    if (pv_rate_level(&c->reads, rate, burst, now) <= 0 ||
        (b->d.peers && !pv_peers_reads_ok(b->d.peers, c->addr, rate * 4, burst * 4, now))) {
        pv_stat_add(&b->d.stats->reads_limited, 1);
        return "busy: too much history read, ask again in a few seconds (--history-rate)";
    }
    return NULL;
}

/* Sends ring entries [from, to) to c, oldest first. */
static void send_history(struct pv_broadcaster *b, struct pv_client *c, size_t from, size_t to)
{
    size_t bytes = 0;
    for (size_t h = from; h < to; h++) {
        bytes += history_at(b, h)->f->len;
        deliver(b, c, pv_frame_ref(history_at(b, h)->f));
    }
    reads_charge(b, c, bytes);
}

/* The users presence lists: everyone, up to --presence-max, newest first
 * (the newcomers of a burst are at the end of the registry). */
static struct pv_user *listed_users(struct pv_broadcaster *b, size_t *n)
{
    size_t online = pv_registry_count(&b->reg);
    *n = online < b->d.cfg->presence_max ? online : b->d.cfg->presence_max;
    struct pv_user *u = pv_xcalloc(*n ? *n : 1, sizeof(*u));
    for (size_t i = 0; i < *n; i++)
        u[i] = user_of(b->reg.v[online - 1 - i]);
    return u;
}

/* In rooms over --presence-max, join/leave notices carry counts only:
 * naming every arrival to everyone is O(n^2) bytes in a reconnect burst. */
static bool notices_named(const struct pv_broadcaster *b)
{
    return pv_registry_count(&b->reg) <= b->d.cfg->presence_max;
}

/* ---- Recovery: replay after a seq, and pages of older history ----
 *
 * A client that says the last seq it has (?since=, or hello since) gets
 * a "resume" message and then exactly the messages after it, in order,
 * before anything else; or, when that cannot be done, a "reset" and the
 * latest history. From memory when the ring holds everything it missed;
 * otherwise from the database, read by the store's reader thread (never
 * this one), while every other frame for that client is held back in
 * c->held. A database read waits until the store has committed the last
 * message it must include, so the read and the ring never leave a gap. */

struct read_job {
    struct pv_store_read rq; /* first: pv_store_read_free() frees the job */
    struct pv_client *c;     /* one reference */
    bool page;               /* a history page; else a resume */
    bool charged;            /* asked for on an open connection: budgeted */
    json_t *msg_id;          /* page: the request's msgId (one reference) */
    uint64_t since;          /* resume: the client's last seq */
    uint64_t need;           /* hand to the reader once this seq is committed */
};

static void job_free(struct read_job *j)
{
    pv_client_unref(j->c);
    json_decref(j->msg_id);
    pv_store_read_free(&j->rq);
}

static bool store_failed(const struct pv_broadcaster *b)
{
    return b->d.store ? pv_store_failure(b->d.store) != NULL : b->d.store_wanted;
}

static void read_later(struct pv_broadcaster *b, struct read_job *j)
{
    if (b->waiting_n == b->waiting_cap) {
        b->waiting_cap = b->waiting_cap ? b->waiting_cap * 2 : 16;
        b->waiting = pv_xrealloc(b->waiting, b->waiting_cap * sizeof(*b->waiting));
    }
    b->waiting[b->waiting_n++] = j;
    pv_stat_add(&b->d.stats->store_reads, 1);
}

/* Hands to the reader the waiting reads whose messages are committed (all
 * of them once the store has failed: nothing more will be). */
static void dispatch_reads(struct pv_broadcaster *b)
{
    if (!b->waiting_n)
        return;
    uint64_t done = pv_store_committed(b->d.store);
    bool failed = store_failed(b);
    size_t keep = 0;
    for (size_t i = 0; i < b->waiting_n; i++) {
        struct read_job *j = b->waiting[i];
        if (j->need <= done || failed) {
            pv_store_read(b->d.store, &j->rq);
            b->reads_out++;
        } else {
            b->waiting[keep++] = j;
        }
    }
    b->waiting_n = keep;
}

/* A reset: `since` cannot be honoured; the latest history up to seq `upto`
 * follows (ring entries [0, end)). */
static void send_reset(struct pv_broadcaster *b, struct pv_client *c, uint64_t since,
                       const char *reason, size_t end)
{
    uint64_t last = end ? history_at(b, end - 1)->seq : b->seq;
    pv_stat_add(&b->d.stats->resets, 1);
    pv_info("reset id=%s peer=%s since=%llu: %s; sending the latest %zu", c->id, c->peer,
            (unsigned long long)since, reason, end);
    deliver(b, c, pv_proto_resume("reset", since, reason, end, last, pv_now_ms()));
    send_history(b, c, 0, end);
}

static void resume(struct pv_broadcaster *b, struct pv_client *c, uint64_t since,
                   const char *server)
{
    const char *why = NULL;
    if (server && server[0] && strcmp(server, b->run_id) != 0)
        why = "other-history"; /* seq numbers of another database, or another run */
    else if (since > b->seq)
        why = "ahead";
    else if (b->seq - since > b->d.cfg->resume_limit)
        why = "too-far";
    if (why) {
        send_reset(b, c, since, why, b->hist_len);
        return;
    }
    if (since == b->seq || (b->hist_len && history_at(b, 0)->seq <= since + 1)) {
        size_t from = history_after(b, since);
        pv_stat_add(&b->d.stats->resumes, 1);
        pv_debug("resume id=%s since=%llu: %zu from memory", c->id, (unsigned long long)since,
                 b->hist_len - from);
        deliver(b, c, pv_proto_resume("resume", since, NULL, b->hist_len - from, b->seq,
                                      pv_now_ms()));
        send_history(b, c, from, b->hist_len);
        return;
    }
    /* Not all in memory. Without a database they are gone; with one, a
     * lowest stored seq above since+1 means retention took some. (An
     * empty database may only be waiting for its first commit: the read
     * waits for it, and the answer is checked for holes.) */
    uint64_t first = b->d.store ? pv_store_first(b->d.store) : 0;
    if (!b->d.store || (first != 0 && first > since + 1)) {
        send_reset(b, c, since, "too-far", b->hist_len);
        return;
    }
    struct read_job *j = pv_xcalloc(1, sizeof(*j));
    j->rq = (struct pv_store_read){.from = since, .to = b->seq, .limit = (unsigned)(b->seq - since)};
    j->c = pv_client_ref(c);
    j->since = since;
    j->charged = c->reads_charged;
    j->need = b->seq;
    c->resuming = true;
    read_later(b, j);
}

static void resume_answer(struct pv_broadcaster *b, struct read_job *j)
{
    struct pv_client *c = j->c;
    struct pv_batch *held = c->held;
    bool over = c->held_over;
    const struct pv_store_read *rq = &j->rq;

    c->held = NULL;
    c->held_over = false;
    c->held_bytes = 0;
    c->resuming = false;
    c->reads_charged = j->charged;
    if (c->index == SIZE_MAX || c->closing) {
        pv_batch_free(held);
        return;
    }
    /* The replay must be exactly since+1 .. to: the stored rows, then the
     * ring for what the store never got (it failed meanwhile). A hole
     * means messages are gone: retention (too far behind) or a failed
     * store (unavailable). */
    uint64_t last = rq->n > 0 ? rq->rows[rq->n - 1].seq : j->since;
    size_t from = history_after(b, last), to = history_after(b, rq->to);
    uint64_t expect = j->since + 1;
    for (int i = 0; i < rq->n; i++)
        expect = rq->rows[i].seq == expect ? expect + 1 : 0;
    for (size_t h = from; h < to && expect; h++)
        expect = history_at(b, h)->seq == expect ? expect + 1 : 0;
    const char *why = rq->n < 0                                              ? "unavailable"
                      : expect == rq->to + 1                                 ? NULL
                      : (rq->oldest == 0 || rq->oldest > j->since + 1)      ? "too-far"
                                                                             : "unavailable";
    if (over) {
        /* What was held is gone: start over from the latest history. */
        send_reset(b, c, j->since, "too-far", b->hist_len);
    } else if (why) {
        /* The latest history up to where the held frames begin. */
        send_reset(b, c, j->since, why, history_after(b, rq->to));
    } else {
        pv_stat_add(&b->d.stats->resumes, 1);
        pv_debug("resume id=%s since=%llu: %d from the database, %zu from memory", c->id,
                 (unsigned long long)j->since, rq->n, to - from);
        deliver(b, c, pv_proto_resume("resume", j->since, NULL, (size_t)rq->n + (to - from),
                                      rq->to, pv_now_ms()));
        size_t bytes = 0;
        for (int i = 0; i < rq->n; i++) {
            bytes += rq->rows[i].len;
            deliver(b, c, pv_frame_new(PV_WS_OP_TEXT, rq->rows[i].json, rq->rows[i].len));
        }
        reads_charge(b, c, bytes);
        /* Messages the store had not got (it failed meanwhile): memory. */
        send_history(b, c, from, to);
    }
    if (held && !over) {
        for (size_t i = 0; i < held->n; i++)
            deliver(b, c, held->f[i]); /* the batch's references move */
        held->n = 0;
    }
    pv_batch_free(held);
}

/* Sends the page of the `limit` messages before seq `before`: the stored
 * rows[0..nrows) (oldest first, all before `before`), then what the ring
 * holds after the last of them -- messages relayed while the store was
 * failing are only in memory; with no rows, the ring alone. `oldest` is
 * the lowest seq stored (0: none), for `more`. */
static void send_page(struct pv_broadcaster *b, struct pv_client *c, uint64_t before,
                      unsigned limit, const json_t *msg_id, const struct pv_store_row *rows,
                      size_t nrows, uint64_t oldest)
{
    uint64_t last = nrows ? rows[nrows - 1].seq : 0;
    size_t from = history_after(b, last), to = history_after(b, before - 1);
    size_t total = nrows + (to > from ? to - from : 0);
    const char **items = pv_xcalloc(total + 1, sizeof(*items));
    size_t *lens = pv_xcalloc(total + 1, sizeof(*lens));
    uint64_t *seqs = pv_xcalloc(total + 1, sizeof(*seqs));
    size_t n = 0;
    for (size_t i = 0; i < nrows; i++, n++) {
        items[n] = rows[i].json;
        lens[n] = rows[i].len;
        seqs[n] = rows[i].seq;
    }
    for (size_t h = from; h < to; h++, n++) {
        items[n] = (const char *)pv_frame_payload(history_at(b, h)->f, &lens[n]);
        seqs[n] = history_at(b, h)->seq;
    }
    size_t skip = n > limit ? n - limit : 0;
    bool more = n > 0 && (skip > 0 || (oldest && seqs[skip] > oldest));
    pv_stat_add(&b->d.stats->history_pages, 1);
    struct pv_frame *page =
        pv_proto_history_page(before, msg_id, more, items + skip, lens + skip, n - skip);
    c->reads_charged = true; /* pages are always asked for */
    reads_charge(b, c, page->len);
    c->reads_charged = false;
    c->grace_end = UINT64_MAX;
    deliver(b, c, page);
    c->grace_end = c->queued_bytes;
    free(items);
    free(lens);
    free(seqs);
}

static void page_answer(struct pv_broadcaster *b, struct read_job *j)
{
    struct pv_client *c = j->c;
    const struct pv_store_read *rq = &j->rq;
    c->paging = false;
    if (c->index == SIZE_MAX || c->closing)
        return;
    if (rq->n < 0) {
        send_error(b, c, "history-unavailable", "the history store could not be read",
                   j->msg_id);
        return;
    }
    send_page(b, c, rq->from, rq->limit, j->msg_id, rq->rows, (size_t)rq->n, rq->oldest);
}

/* {"type":"history","before":seq,"limit":n}: the n messages before seq,
 * oldest first, in one "history" reply; from memory when the ring has
 * them (or there is no database), else from the database. */
static void on_history(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    if (c->paging) {
        send_error(b, c, "busy", "a history page is already being read", in->msg_id);
        return;
    }
    const char *refused = reads_refused(b, c);
    if (refused) {
        send_error(b, c, "busy", refused, in->msg_id);
        return;
    }
    uint64_t before = in->before && in->before <= b->seq ? in->before : b->seq + 1;
    size_t end = history_after(b, before - 1); /* ring [0, end) is older than before */
    /* Memory is enough without a database, when it has `limit` messages
     * before `before`, or when the database has nothing older than it:
     * its lowest seq is at or above the ring's first or `before`, or it
     * is empty with nothing waiting to be committed. */
    uint64_t first = b->d.store ? pv_store_first(b->d.store) : 0;
    bool ring_enough = !b->d.store || end >= in->limit ||
                       (first != 0 && ((end > 0 && history_at(b, 0)->seq <= first) ||
                                       first >= before)) ||
                       (first == 0 && (store_failed(b) || pv_store_committed(b->d.store) >= b->seq));
    if (ring_enough) {
        send_page(b, c, before, in->limit, in->msg_id, NULL, 0, first);
        return;
    }
    struct read_job *j = pv_xcalloc(1, sizeof(*j));
    j->rq = (struct pv_store_read){.backwards = true, .from = before, .limit = in->limit};
    j->c = pv_client_ref(c);
    j->page = true;
    j->msg_id = in->msg_id ? json_incref(in->msg_id) : NULL;
    j->need = before - 1;
    c->paging = true;
    read_later(b, j);
}

/* Answers from the store's reader, then reads that may now go out. */
static void store_news(struct pv_broadcaster *b)
{
    if (!b->d.store)
        return;
    struct pv_store_read *rq;
    while ((rq = pv_store_read_done(b->d.store))) {
        struct read_job *j = (struct read_job *)(void *)rq;
        b->reads_out--;
        j->c->grace_end = UINT64_MAX;
        if (j->page)
            page_answer(b, j);
        else
            resume_answer(b, j);
        j->c->reads_charged = false;
        if (!j->c->resuming)
            j->c->grace_end = j->c->queued_bytes;
        job_free(j);
    }
    dispatch_reads(b);
}

/* A run of consecutive JOIN events: a reconnect burst arrives as one. Each
 * newcomer gets its id, one presence snapshot shared by the whole run
 * (encoded once), and the history, before any live message; everyone else
 * gets one join notice naming them all. Per burst this is O(n) encoding
 * and deliveries, where one notice and one snapshot per join would be
 * O(n^2) for n clients reconnecting at once. */
static void on_join_run(struct pv_broadcaster *b, struct pv_event **ev, size_t k)
{
    int64_t now = pv_now_ms();
    struct pv_client **cs = pv_xcalloc(k, sizeof(*cs));
    struct pv_user *joined = pv_xcalloc(k, sizeof(*joined));
    const char **why = pv_xcalloc(k, sizeof(*why)); /* NULL: name fine or none */
    struct pv_join_req *jr = pv_xcalloc(k, sizeof(*jr));

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = cs[i] = ev[i]->client;
        ev[i]->client = NULL; /* the event's reference becomes the registry's */
        if (ev[i]->len == sizeof(jr[i]))
            memcpy(&jr[i], ev[i]->data, sizeof(jr[i]));
        pv_new_key(c->key);
        pv_new_id(c->id);
        if (jr[i].name_len == 0 || !pv_name_check(jr[i].name, jr[i].name_len, c->name, &why[i]))
            snprintf(c->name, sizeof(c->name), "guest-%.4s", c->id);
        c->joining = true;
        c->joined_ns = pv_mono_ns();
        c->grace_end = UINT64_MAX; /* set once its join history is queued */
        c->reads = (struct pv_rate){.tokens = b->d.cfg->history_rate * 8.0,
                                    .last_ns = c->joined_ns};
        pv_registry_add(&b->reg, c);
        pv_stat_add(&b->d.stats->clients, 1);
        joined[i] = user_of(c);
    }
    size_t listed, n = pv_registry_count(&b->reg);
    struct pv_user *users = listed_users(b, &listed);
    /* Two snapshots at most per burst: with the history count, and with 0
     * for clients resuming (their resume or reset message counts). */
    struct pv_frame *presence[2] = {NULL, NULL};
    for (size_t i = 0; i < k; i++) {
        int v = jr[i].has_since ? 1 : 0;
        if (!presence[v])
            presence[v] = pv_proto_presence(users, listed, n, v ? 0 : b->hist_len, b->seq, now);
    }
    free(users);

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = cs[i];
        deliver(b, c, pv_proto_id(c->key, &joined[i], b->run_id, b->d.cfg->max_text, now));
        if (why[i])
            send_error(b, c, "bad-name", why[i], NULL);
        if (jr[i].bad_since)
            send_error(b, c, "bad-since", "?since= must be a seq (an integer >= 0)", NULL);
        deliver(b, c, pv_frame_ref(presence[jr[i].has_since ? 1 : 0]));
        if (jr[i].has_since && !b->draining)
            resume(b, c, jr[i].since, jr[i].server);
        else if (!jr[i].has_since)
            send_history(b, c, 0, b->hist_len);
        /* Aggregated under churn (a few lines per second at info level and
         * a count of the rest); every line at debug level. */
        static struct pv_log_limit join_lim = PV_LOG_LIMIT("join lines");
        bool loud = pv_log_limited(&join_lim, PV_LOG_INFO, 50);
        if (loud || pv_log_enabled(PV_LOG_DEBUG))
            pv_log(loud ? PV_LOG_INFO : PV_LOG_DEBUG, "join id=%s peer=%s name=\"%s\" online=%zu",
                   c->id, c->peer, c->name, n);
        c->grace_end = c->queued_bytes;
        if (b->draining) {
            c->closing = true; /* arrived during shutdown */
            pv_batch_push(&c->pending, pv_frame_close(1001, "server shutting down"));
            mark_dirty(b, c);
        }
    }
    for (int v = 0; v < 2; v++)
        if (presence[v])
            pv_frame_unref(presence[v]);
    if (!b->draining)
        fanout(b, pv_proto_notice("join", joined, k, notices_named(b), n, now), NULL);
    for (size_t i = 0; i < k; i++)
        cs[i]->joining = false;
    free(cs);
    free(joined);
    free(why);
    free(jr);
}

/* A run of consecutive LEAVE events: one leave notice names them all. */
#define CHURN_NS 2000000000ull

static void on_leave_run(struct pv_broadcaster *b, struct pv_event **ev, size_t k)
{
    uint64_t now = pv_mono_ns();
    struct pv_user *left = pv_xcalloc(k, sizeof(*left));
    struct pv_client **gone = pv_xcalloc(k, sizeof(*gone));
    size_t m = 0;

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = ev[i]->client;
        if (c->refused) {
            c->left = true; /* the sweep drops it from the refused list */
            continue;
        }
        atomic_fetch_sub(b->d.admitted, 1);
        if (c->index == SIZE_MAX)
            continue;
        pv_registry_remove(&b->reg, c);
        pv_stat_add(&b->d.stats->clients, (uint64_t)-1);
        /* Churn (clients that stayed under CHURN_NS) is aggregated; a
         * client that stayed longer, or that the server closed (kick set:
         * slow, idle, flood, broken), is always logged. */
        static struct pv_log_limit leave_lim = PV_LOG_LIMIT("leave lines of short connections");
        bool loud = atomic_load(&c->kick) || now - c->joined_ns >= CHURN_NS ||
                    pv_log_limited(&leave_lim, PV_LOG_INFO, 50);
        if (loud || pv_log_enabled(PV_LOG_DEBUG))
            pv_log(loud ? PV_LOG_INFO : PV_LOG_DEBUG,
                   "leave id=%s peer=%s name=\"%s\" reason=\"%s\" online=%zu", c->id, c->peer,
                   c->name, ev[i]->data, pv_registry_count(&b->reg));
        left[m] = user_of(c); /* points into c, kept alive below */
        gone[m++] = c;        /* the registry's reference, dropped below */
    }
    if (m && !b->draining)
        fanout(b,
               pv_proto_notice("leave", left, m, notices_named(b), pv_registry_count(&b->reg),
                               pv_now_ms()),
               NULL);
    for (size_t i = 0; i < m; i++)
        pv_client_unref(gone[i]);
    free(left);
    free(gone);
}

static void on_hello(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    char name[PV_NAME_MAX_BYTES + 1], old[PV_NAME_MAX_BYTES + 1];
    const char *why;

    if (in->has_since) {
        /* Resume on an open connection: after the resume (or reset)
         * message, the stream is exactly the messages after since, even
         * those this connection was already sent. */
        const char *refused = c->resuming ? "a resume is already being read" : reads_refused(b, c);
        if (refused) {
            send_error(b, c, "busy", refused, in->msg_id);
        } else {
            c->reads_charged = true;
            c->grace_end = UINT64_MAX;
            resume(b, c, in->since, in->server);
            c->reads_charged = false;
            if (!c->resuming)
                c->grace_end = c->queued_bytes; /* the replay from memory */
        }
    }
    if (!in->name)
        return; /* a hello without a name changes no name */
    if (!pv_name_check(in->name, in->name_len, name, &why)) {
        send_error(b, c, "bad-name", why, in->msg_id);
        return;
    }
    if (strcmp(name, c->name) == 0)
        return;
    memcpy(old, c->name, sizeof(old));
    memcpy(c->name, name, sizeof(c->name));
    struct pv_user u = user_of(c);
    pv_info("rename id=%s peer=%s from=%s to=%s", c->id, c->peer, old, c->name);
    /* Everyone, the renamed client included: it learns the name was taken. */
    fanout(b, pv_proto_rename(&u, old, pv_now_ms()), NULL);
}

static void hold_ack(struct pv_broadcaster *b, struct pv_client *c, uint64_t seq,
                     const json_t *msg_id, int64_t now)
{
    if (b->acks_head + b->acks_n == b->acks_cap) {
        if (b->acks_head > 0) { /* slide down before growing */
            memmove(b->acks, b->acks + b->acks_head, b->acks_n * sizeof(*b->acks));
            b->acks_head = 0;
        }
        if (b->acks_n == b->acks_cap) {
            b->acks_cap = b->acks_cap ? b->acks_cap * 2 : 256;
            b->acks = pv_xrealloc(b->acks, b->acks_cap * sizeof(*b->acks));
        }
    }
    b->acks[b->acks_head + b->acks_n++] = (struct held_ack){
        pv_client_ref(c), seq, msg_id ? json_incref((json_t *)msg_id) : NULL, now};
}

/* Sends the acks the store's commits allow; if the store has failed, the
 * rest learn that their message was relayed but not stored. */
static void release_acks(struct pv_broadcaster *b)
{
    if (!b->d.store || b->acks_n == 0)
        return;
    uint64_t done = pv_store_committed(b->d.store);
    bool failed = pv_store_failure(b->d.store) != NULL;
    while (b->acks_n) {
        struct held_ack *a = &b->acks[b->acks_head];
        if (a->seq > done && !failed)
            break;
        if (a->c->index != SIZE_MAX && !a->c->closing) {
            if (a->seq <= done)
                deliver(b, a->c, pv_proto_ack(a->msg_id, a->seq, a->now));
            else
                send_error(b, a->c, "not-stored",
                           "relayed to everyone online, but not stored: the history store "
                           "failed", a->msg_id);
        }
        pv_client_unref(a->c);
        json_decref(a->msg_id);
        b->acks_head++;
        b->acks_n--;
    }
    if (b->acks_n == 0)
        b->acks_head = 0;
}

static void on_chat(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    int64_t now = pv_now_ms();
    struct pv_user from = user_of(c);
    uint64_t seq = ++b->seq;
    struct pv_frame *f = pv_proto_message(in, &from, seq, now);

    pv_stat_add(&b->d.stats->messages_in, 1);
    history_push(b, f, seq, now);
    if (b->d.store && !pv_store_failure(b->d.store)) {
        /* The ack waits for the commit: an acknowledged message is on disk.
         * The store writes the frame's payload: encoded once, no copy. */
        struct pv_store_msg *m = pv_xcalloc(1, sizeof(*m));
        m->seq = seq;
        m->server_date = now;
        m->frame = pv_frame_ref(f);
        pv_store_append(b->d.store, m);
        hold_ack(b, c, seq, in->msg_id, now);
    } else if (store_failed(b)) {
        send_error(b, c, "not-stored",
                   "relayed to everyone online, but not stored: the history store failed",
                   in->msg_id);
    } else {
        deliver(b, c, pv_proto_ack(in->msg_id, seq, now));
    }
    fanout(b, f, c);
    pv_debug("message seq=%llu from id=%s bytes=%zu", (unsigned long long)seq, c->id,
             in->text_len);
}

static void on_msg(struct pv_broadcaster *b, struct pv_event *ev)
{
    struct pv_client *c = ev->client;
    struct pv_inbound in;

    if (c->index == SIZE_MAX || c->closing || b->draining)
        return; /* gone or going: nobody is left to answer */
    pv_proto_decode(ev->data, ev->len, b->d.cfg->max_text, &in);
    switch (in.type) {
    case PV_IN_MESSAGE:
        on_chat(b, c, &in);
        break;
    case PV_IN_HELLO:
        on_hello(b, c, &in);
        break;
    case PV_IN_HISTORY:
        on_history(b, c, &in);
        break;
    case PV_IN_INVALID:
        pv_debug("bad message from id=%s peer=%s: %s", c->id, c->peer, in.err_msg);
        send_error(b, c, in.err_code, in.err_msg, in.msg_id);
        break;
    }
    pv_inbound_release(&in);
}

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

static void sweep(struct pv_broadcaster *b, uint64_t now)
{
    const struct pv_config *cfg = b->d.cfg;
    uint64_t ping_ns = (uint64_t)cfg->ping_interval_ms * 1000000u;
    uint64_t idle_ns = (uint64_t)cfg->idle_timeout_ms * 1000000u;
    /* By then a close frame stuck behind a full socket has timed out. */
    uint64_t force_ns = EVICT_GRACE_NS * 2 + (uint64_t)cfg->io_timeout_ms * 1000000u;
    struct pv_frame *ping = NULL;

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
            c->closing = true;
            atomic_store(&c->kick, 1001);
            c->kick_seen = now;
            pv_batch_free(c->pending);
            c->pending = NULL;
            pv_batch_push(&c->pending, pv_frame_close(1001, "idle timeout"));
            mark_dirty(b, c);
            pv_stat_add(&b->d.stats->idle_closes, 1);
            pv_notice("idle timeout: closing id=%s peer=%s with 1001: nothing received for "
                      "%llu ms",
                      c->id, c->peer, (unsigned long long)(silent / 1000000u));
        } else if (silent >= ping_ns && now - c->ping_sent >= ping_ns) {
            if (!ping)
                ping = pv_frame_new(PV_WS_OP_PING, NULL, 0);
            c->ping_sent = now;
            deliver(b, c, pv_frame_ref(ping));
        }
    }
    if (ping)
        pv_frame_unref(ping);
    sweep_refused(b, now, force_ns);
}

/* The client's worker closes it (protocol violation, flood). The close
 * frame goes out through the client's outbox, after the acks and replies
 * to the messages that came before the offence: the queue keeps each
 * worker's events in order. */
static void on_kick(struct pv_broadcaster *b, struct pv_event *ev)
{
    struct pv_client *c = ev->client;
    char reason[124];
    if (c->index == SIZE_MAX || c->closing)
        return; /* gone already, or closing for another reason */
    c->closing = true;
    snprintf(reason, sizeof(reason), "%.*s", (int)ev->len, ev->data);
    pv_batch_push(&c->pending, pv_frame_close((uint16_t)atomic_load(&c->kick), reason));
    mark_dirty(b, c);
}

static void on_shutdown(struct pv_broadcaster *b)
{
    b->draining = true;
    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *c = b->reg.v[i];
        if (c->closing)
            continue;
        c->closing = true;
        pv_batch_push(&c->pending, pv_frame_close(1001, "server shutting down"));
        mark_dirty(b, c);
    }
    pv_info("shutdown: closing %zu client(s) with 1001", b->reg.n);
}

/* Ends a cycle: hands every touched client's frames to the writers. */
static void flush(struct pv_broadcaster *b)
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
}

/* Handles ev[0..n): runs of JOINs and runs of LEAVEs go together. */
static void handle(struct pv_broadcaster *b, struct pv_event **ev, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        switch (ev[i]->type) {
        case PV_EV_JOIN:
        case PV_EV_LEAVE:
            while (j < n && ev[j]->type == ev[i]->type)
                j++;
            if (ev[i]->type == PV_EV_JOIN)
                on_join_run(b, ev + i, j - i);
            else
                on_leave_run(b, ev + i, j - i);
            break;
        case PV_EV_MSG:
            on_msg(b, ev[i]);
            break;
        case PV_EV_SHUTDOWN:
            on_shutdown(b);
            break;
        case PV_EV_KICK:
            on_kick(b, ev[i]);
            break;
        case PV_EV_REFUSED:
            list_push(&b->refused, ev[i]->client);
            break;
        case PV_EV_STOP:
            b->stop = true;
            break;
        }
        for (; i < j; i++)
            pv_event_free(ev[i]);
    }
}

static void *broadcaster_main(void *arg)
{
    struct pv_broadcaster *b = arg;
    struct pv_event *ev[POP_BATCH];
    uint64_t last_tick = 0;
    bool busy = false;

    while (!b->stop) {
        uint64_t now = pv_mono_ns();
        /* Liveness for /healthz and the systemd watchdog (main reads it). */
        atomic_store_explicit(&b->d.stats->heartbeat, now, memory_order_relaxed);
        atomic_store_explicit(&b->d.stats->history, b->hist_len, memory_order_relaxed);
        if (now - last_tick >= 50000000ull) {
            busy = pv_writers_tick(b->d.writers);
            last_tick = now;
        }
        if (now - b->last_sweep >= b->sweep_every) {
            history_expire(b, pv_now_ms());
            sweep(b, now);
            b->last_sweep = now;
        }
        /* Writers behind: take no new events (the queue fills and senders
         * feel it) until the congested clients' backlogs come down. */
        if (b->congested.n && relieve(b)) {
            flush(b);
            pv_writers_wait_progress(b->d.writers, 10);
            continue;
        }
        size_t n = pv_queue_pop(b->d.queue, ev, POP_BATCH);
        /* Lag for /healthz: a loop that turns but falls behind its queue
         * (a flood of costly events) is not healthy either. */
        atomic_store_explicit(&b->d.stats->queue_lag_ns,
                              n ? pv_mono_ns() - ev[0]->queued_ns : 0, memory_order_relaxed);
        handle(b, ev, n);
        store_news(b);
        release_acks(b);
        flush(b);
        if (n == 0 && !b->stop && !b->congested.n) {
            /* Park until a producer wakes us; tick sooner while writers
             * are busy so a stalled writer gets replaced quickly. */
            pv_queue_wait_fd(b->d.queue, b->d.store ? pv_store_event_fd(b->d.store) : -1,
                             busy ? 50 : (int)(b->sweep_every / 1000000u));
        }
    }
    return NULL;
}

/* pv_store_before() callback: a stored message back into the ring. */
static void preload(void *ud, uint64_t seq, int64_t server_date, const char *json, size_t len)
{
    struct pv_broadcaster *b = ud;
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, json, len);
    history_push(b, f, seq, server_date);
    pv_frame_unref(f);
}

struct pv_broadcaster *pv_broadcaster_start(const struct pv_broadcaster_deps *deps)
{
    struct pv_broadcaster *b = pv_xcalloc(1, sizeof(*b));
    int err;

    b->d = *deps;
    pv_registry_init(&b->reg);
    pv_new_id(b->run_id);
    /* A quarter of the shorter interval, between 50 ms and 1 s. */
    unsigned every = deps->cfg->ping_interval_ms < deps->cfg->idle_timeout_ms
                         ? deps->cfg->ping_interval_ms / 4
                         : deps->cfg->idle_timeout_ms / 4;
    every = every < 50 ? 50 : every > 1000 ? 1000 : every;
    b->sweep_every = (uint64_t)every * 1000000u;
    b->last_sweep = pv_mono_ns();
    if (deps->cfg->history)
        b->history = pv_xcalloc(deps->cfg->history, sizeof(*b->history));
    if (deps->store) {
        /* seq continues where the stored history ends; newcomers get the
         * last messages from before the restart. */
        b->seq = pv_store_last_seq(deps->store);
        /* A store failed from the start (read-only) cannot record the seq
         * numbers given out now: they get a numbering of their own. */
        if (!pv_store_failure(deps->store))
            snprintf(b->run_id, sizeof(b->run_id), "%s", pv_store_id(deps->store));
        if (deps->cfg->history &&
            pv_store_before(deps->store, b->seq + 1, deps->cfg->history, preload, b) < 0)
            pv_warn("could not read the stored history back; starting with none in memory");
        pv_info("history store: last seq %llu, %zu messages loaded for newcomers",
                (unsigned long long)b->seq, b->hist_len);
    }
    err = pthread_create(&b->thread, NULL, broadcaster_main, b);
    if (err) {
        pv_err("cannot start the broadcaster thread: %s", strerror(err));
        free(b->history);
        free(b);
        return NULL;
    }
    return b;
}

void pv_broadcaster_join(struct pv_broadcaster *b)
{
    if (!b)
        return;
    pthread_join(b->thread, NULL);
    /* Reads not yet out, then the answers to those that are. */
    for (size_t i = 0; i < b->waiting_n; i++)
        job_free(b->waiting[i]);
    free(b->waiting);
    while (b->reads_out) {
        struct pv_store_read *rq = pv_store_read_done(b->d.store);
        if (rq) {
            job_free((struct read_job *)(void *)rq);
            b->reads_out--;
        } else {
            struct pollfd p = {.fd = pv_store_event_fd(b->d.store), .events = POLLIN};
            poll(&p, 1, 100);
        }
    }
    flush(b);
    for (size_t i = 0; i < b->acks_n; i++) {
        pv_client_unref(b->acks[b->acks_head + i].c);
        json_decref(b->acks[b->acks_head + i].msg_id);
    }
    free(b->acks);
    list_free(&b->congested);
    list_free(&b->refused);
    pv_registry_destroy(&b->reg);
    for (size_t i = 0; i < b->hist_len; i++)
        pv_frame_unref(history_at(b, i)->f);
    free(b->history);
    list_free(&b->dirty);
    free(b);
}
