/* recovery.c -- what a client missed: resume after a seq (hello since,
 * or ?since= at the handshake), pages of older history, the reads of the
 * history store they need, and the budget on history reads.
 *
 * Threads: broadcaster thread only (internal.h). Store reads are handed
 * to the store's reader thread and come back through its done queue
 * (store.h); this file never blocks on the database. The decisions it
 * makes about the ring (is everything in memory, is a replay gap-free,
 * can memory answer a page) are pure functions in history.c, unit-tested.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/limits.h"
#include "palaver/log.h"
#include "palaver/proto.h"
#include "palaver/stats.h"
#include "palaver/store.h"
#include "palaver/wake.h"

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
const char *pv__reads_refused(struct pv_broadcaster *b, struct pv_client *c)
{
    double rate = reads_rate(b), burst = rate * 8;
    if (pv__backlog(c) > b->d.cfg->max_backlog / 2)
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

/* Isolation (docs/rooms.md): every replay from the ring -- a newcomer's
 * history, a resume, a reset, the ring's part of a page -- goes through
 * these two, which pass only the rooms the client is in. */
static bool sees(const struct pv_client *c, uint32_t room)
{
    return c ? pv__sees(c, room) : room == PV_LOBBY_ID;
}

size_t pv__visible(struct pv_broadcaster *b, const struct pv_client *c, size_t from, size_t to)
{
    size_t n = 0;
    for (size_t h = from; h < to; h++)
        n += sees(c, pv_history_at(&b->hist, h)->room);
    return n;
}

void pv__send_history(struct pv_broadcaster *b, struct pv_client *c, size_t from, size_t to)
{
    size_t bytes = 0;
    for (size_t h = from; h < to; h++) {
        const struct pv_history_entry *e = pv_history_at(&b->hist, h);
        if (!sees(c, e->room))
            continue;
        bytes += e->f->len;
        pv__deliver(b, c, pv_frame_ref(e->f));
    }
    reads_charge(b, c, bytes);
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

/* A page asked for (pv__on_history): of a room, before an rseq of it when
 * the request named the room, else (the lobby's page of an older client)
 * before a seq. */
struct page_req {
    uint32_t room;
    bool named;
    uint64_t before;
    unsigned limit;
};

struct read_job {
    struct pv_store_read rq; /* first: the store hands back &rq, which is the job */
    struct pv_client *c;     /* one reference */
    bool page;               /* a history page; else a resume */
    bool charged;            /* asked for on an open connection: budgeted */
    json_t *msg_id;          /* page: the request's msgId (one reference) */
    uint64_t since;          /* resume: the client's last seq */
    uint64_t need;           /* hand to the reader once this seq is committed */
    struct page_req pg;      /* page: what was asked for */
};

static void job_free(struct read_job *j)
{
    pv_client_unref(j->c);
    json_decref(j->msg_id);
    pv_store_read_release(&j->rq);
    free(j);
}

bool pv__store_failed(const struct pv_broadcaster *b)
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
    uint64_t done = pv_store_decided(b->d.store); /* stored, or lost for good */
    bool failed = pv__store_failed(b);
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
    uint64_t last = end ? pv_history_at(&b->hist, end - 1)->seq : b->seq;
    pv_stat_add(&b->d.stats->resets, 1);
    pv_info("reset id=%s peer=%s since=%llu: %s; sending the latest %zu", c->id, c->peer,
            (unsigned long long)since, reason, end);
    pv__deliver(
        b, c,
        pv_proto_resume("reset", since, reason, pv__visible(b, c, 0, end), last, pv_now_ms()));
    pv__send_history(b, c, 0, end);
}

void pv__resume(struct pv_broadcaster *b, struct pv_client *c, uint64_t since, const char *server)
{
    const char *why = NULL;
    if (server && server[0] && strcmp(server, b->run_id) != 0)
        why = "other-history"; /* seq numbers of another database, or another run */
    else if (since > b->seq)
        why = "ahead";
    else if (b->seq - since > b->d.cfg->resume_limit)
        why = "too-far";
    if (why) {
        send_reset(b, c, since, why, b->hist.len);
        return;
    }
    if (pv_history_covers(&b->hist, since, b->seq)) {
        size_t from = pv_history_after(&b->hist, since);
        pv_stat_add(&b->d.stats->resumes, 1);
        size_t n = pv__visible(b, c, from, b->hist.len);
        pv_debug("resume id=%s since=%llu: %zu from memory", c->id, (unsigned long long)since, n);
        pv__deliver(b, c, pv_proto_resume("resume", since, NULL, n, b->seq, pv_now_ms()));
        pv__send_history(b, c, from, b->hist.len);
        return;
    }
    /* Not all in memory. Without a database they are gone; with one, a
     * lowest stored seq above since+1 means retention took some. (An
     * empty database may only be waiting for its first commit: the read
     * waits for it, and the answer is checked for holes.) */
    uint64_t first = b->d.store ? pv_store_first(b->d.store) : 0;
    if (!b->d.store || (first != 0 && first > since + 1)) {
        send_reset(b, c, since, "too-far", b->hist.len);
        return;
    }
    struct read_job *j = pv_xcalloc(1, sizeof(*j));
    j->rq =
        (struct pv_store_read){.from = since, .to = b->seq, .limit = (unsigned)(b->seq - since)};
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
    size_t from = pv_history_after(&b->hist, last), to = pv_history_after(&b->hist, rq->to);
    const char *why =
        pv_history_replay_gap(&b->hist, j->since, rq->to, rq->rows, rq->n, rq->oldest);
    if (over) {
        /* What was held is gone: start over from the latest history. */
        send_reset(b, c, j->since, "too-far", b->hist.len);
    } else if (why) {
        /* The latest history up to where the held frames begin. */
        send_reset(b, c, j->since, why, pv_history_after(&b->hist, rq->to));
    } else {
        /* The read covers every room (the gap check needs every seq);
         * only the rows of the client's rooms go out. */
        size_t rows = 0, mem = pv__visible(b, c, from, to);
        for (int i = 0; i < rq->n; i++)
            rows += pv__sees(c, rq->rows[i].room);
        pv_stat_add(&b->d.stats->resumes, 1);
        pv_debug("resume id=%s since=%llu: %zu from the database, %zu from memory", c->id,
                 (unsigned long long)j->since, rows, mem);
        pv__deliver(b, c,
                    pv_proto_resume("resume", j->since, NULL, rows + mem, rq->to, pv_now_ms()));
        size_t bytes = 0;
        for (int i = 0; i < rq->n; i++) {
            if (!pv__sees(c, rq->rows[i].room))
                continue;
            bytes += rq->rows[i].len;
            pv__deliver(b, c, pv_frame_new(PV_WS_OP_TEXT, rq->rows[i].json, rq->rows[i].len));
        }
        reads_charge(b, c, bytes);
        /* Messages the store had not got (it failed meanwhile): memory. */
        pv__send_history(b, c, from, to);
    }
    if (held && !over) {
        for (size_t i = 0; i < held->n; i++)
            pv__deliver(b, c, held->f[i]); /* the batch's references move */
        held->n = 0;
    }
    pv_batch_free(held);
}

static bool page_has(const struct pv_history_entry *e, const struct page_req *pg)
{
    return e->room == pg->room && (pg->named ? e->rseq : e->seq) < pg->before;
}

/* Sends the page of the `limit` messages of pg's room before `before`:
 * the stored rows[0..nrows) (oldest first, all before it, all of that
 * room), then what the ring holds of that room after the last of them --
 * messages relayed while the store was failing are only in memory; with
 * no rows, the ring alone. `oldest` is the lowest seq stored of that room
 * (0: none), for `more`. */
static void send_page(struct pv_broadcaster *b, struct pv_client *c, const struct page_req *pg,
                      const json_t *msg_id, const struct pv_store_row *rows, size_t nrows,
                      uint64_t oldest)
{
    uint64_t last = nrows ? rows[nrows - 1].seq : 0;
    size_t from = pv_history_after(&b->hist, last);
    size_t total = nrows + (b->hist.len - from);
    const char **items = pv_xcalloc(total + 1, sizeof(*items));
    size_t *lens = pv_xcalloc(total + 1, sizeof(*lens));
    uint64_t *seqs = pv_xcalloc(total + 1, sizeof(*seqs));
    size_t n = 0;
    for (size_t i = 0; i < nrows; i++, n++) {
        items[n] = rows[i].json;
        lens[n] = rows[i].len;
        seqs[n] = rows[i].seq;
    }
    for (size_t h = from; h < b->hist.len; h++) {
        const struct pv_history_entry *e = pv_history_at(&b->hist, h);
        if (!page_has(e, pg))
            continue;
        items[n] = (const char *)pv_frame_payload(e->f, &lens[n]);
        seqs[n++] = e->seq;
    }
    size_t skip = n > pg->limit ? n - pg->limit : 0;
    bool more = n > 0 && (skip > 0 || (oldest && seqs[skip] > oldest));
    pv_stat_add(&b->d.stats->history_pages, 1);
    struct pv_room *r = pv__room(b, pg->room);
    struct pv_frame *page =
        pv_proto_history_page(pg->named && r ? r->name : NULL, pg->before, msg_id, more,
                              items + skip, lens + skip, n - skip);
    c->reads_charged = true; /* pages are always asked for */
    reads_charge(b, c, page->len);
    c->reads_charged = false;
    c->grace_end = UINT64_MAX;
    pv__deliver(b, c, page);
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
        pv__send_error(b, c, "history-unavailable", "the history store could not be read",
                       j->msg_id);
        return;
    }
    /* Membership may have ended while the store read: the rows of a room
     * one has left are not sent. */
    if (!pv__sees(c, j->pg.room)) {
        pv__send_error(b, c, "not-a-member", "you are not a member of that room (or there is none)",
                       j->msg_id);
        return;
    }
    send_page(b, c, &j->pg, j->msg_id, rq->rows, (size_t)rq->n, rq->oldest);
}

/* {"type":"history","before":seq,"limit":n} (the lobby, before a seq), or
 * with "room" (that room, before an rseq): the n messages before it,
 * oldest first, in one "history" reply; from memory when the ring has
 * them (or there is no database), else from the database. */
void pv__on_history(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    if (c->paging) {
        pv__send_error(b, c, "busy", "a history page is already being read", in->msg_id);
        return;
    }
    struct pv_room *r = in->room ? pv__room_of(b, c, in) : pv__room(b, PV_LOBBY_ID);
    if (!r)
        return;
    const char *refused = pv__reads_refused(b, c);
    if (refused) {
        pv__send_error(b, c, "busy", refused, in->msg_id);
        return;
    }
    struct page_req pg = {.room = r->id, .named = in->room != NULL, .limit = in->limit};
    uint64_t top = pg.named ? r->rseq : b->seq;
    pg.before = in->before && in->before <= top ? in->before : top + 1;
    /* Memory is enough without a database, or once it has failed. For the
     * lobby's page before a seq, with no other room's message in the ring,
     * the ring's own rules apply (history.h); any other page is read from
     * the database, which has every message of the room once the last
     * given out is committed. */
    struct pv_store_facts st = {
        .present = b->d.store != NULL,
        .failed = pv__store_failed(b),
        .first = b->d.store ? pv_store_first(b->d.store) : 0,
        .committed = b->d.store ? pv_store_decided(b->d.store) : 0,
    };
    bool lobby_ring = !pg.named && pv__visible(b, NULL, 0, b->hist.len) == b->hist.len;
    bool ring_enough =
        !st.present || st.failed ||
        (lobby_ring && pv_history_page_in_memory(&b->hist, pg.before, in->limit, b->seq, &st));
    if (ring_enough) {
        send_page(b, c, &pg, in->msg_id, NULL, 0, lobby_ring ? st.first : 0);
        return;
    }
    struct read_job *j = pv_xcalloc(1, sizeof(*j));
    j->rq = (struct pv_store_read){.backwards = true,
                                   .from = pg.before,
                                   .limit = in->limit,
                                   .room = r->id,
                                   .by_rseq = pg.named};
    j->c = pv_client_ref(c);
    j->page = true;
    j->pg = pg;
    j->msg_id = in->msg_id ? json_incref(in->msg_id) : NULL;
    j->need = pg.named ? b->seq : pg.before - 1;
    c->paging = true;
    read_later(b, j);
}

/* Answers from the store's reader, then reads that may now go out. */
void pv__store_news(struct pv_broadcaster *b)
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

void pv__reads_drop(struct pv_broadcaster *b)
{
    /* Reads not yet out, then the answers to those that are. */
    for (size_t i = 0; i < b->waiting_n; i++)
        job_free(b->waiting[i]);
    free(b->waiting);
    b->waiting = NULL;
    b->waiting_n = 0;
    while (b->reads_out) {
        struct pv_store_read *rq = pv_store_read_done(b->d.store);
        if (rq) {
            job_free((struct read_job *)(void *)rq);
            b->reads_out--;
        } else {
            struct pv_wake *w = pv_store_wake(b->d.store);
            pv_wake_wait(&w, 1, 100);
        }
    }
}
