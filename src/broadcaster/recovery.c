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

/* Sends ring entries [from, to) to c, oldest first. */
void pv__send_history(struct pv_broadcaster *b, struct pv_client *c, size_t from, size_t to)
{
    size_t bytes = 0;
    for (size_t h = from; h < to; h++) {
        bytes += pv_history_at(&b->hist, h)->f->len;
        pv__deliver(b, c, pv_frame_ref(pv_history_at(&b->hist, h)->f));
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

struct read_job {
    struct pv_store_read rq; /* first: the store hands back &rq, which is the job */
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
    pv__deliver(b, c, pv_proto_resume("reset", since, reason, end, last, pv_now_ms()));
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
        pv_debug("resume id=%s since=%llu: %zu from memory", c->id, (unsigned long long)since,
                 b->hist.len - from);
        pv__deliver(
            b, c, pv_proto_resume("resume", since, NULL, b->hist.len - from, b->seq, pv_now_ms()));
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
        pv_stat_add(&b->d.stats->resumes, 1);
        pv_debug("resume id=%s since=%llu: %d from the database, %zu from memory", c->id,
                 (unsigned long long)j->since, rq->n, to - from);
        pv__deliver(b, c,
                    pv_proto_resume("resume", j->since, NULL, (size_t)rq->n + (to - from), rq->to,
                                    pv_now_ms()));
        size_t bytes = 0;
        for (int i = 0; i < rq->n; i++) {
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
    size_t from = pv_history_after(&b->hist, last), to = pv_history_after(&b->hist, before - 1);
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
        items[n] = (const char *)pv_frame_payload(pv_history_at(&b->hist, h)->f, &lens[n]);
        seqs[n] = pv_history_at(&b->hist, h)->seq;
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
    send_page(b, c, rq->from, rq->limit, j->msg_id, rq->rows, (size_t)rq->n, rq->oldest);
}

/* {"type":"history","before":seq,"limit":n}: the n messages before seq,
 * oldest first, in one "history" reply; from memory when the ring has
 * them (or there is no database), else from the database. */
void pv__on_history(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    if (c->paging) {
        pv__send_error(b, c, "busy", "a history page is already being read", in->msg_id);
        return;
    }
    const char *refused = pv__reads_refused(b, c);
    if (refused) {
        pv__send_error(b, c, "busy", refused, in->msg_id);
        return;
    }
    uint64_t before = in->before && in->before <= b->seq ? in->before : b->seq + 1;
    /* Memory is enough without a database, when it has `limit` messages
     * before `before`, or when the database has nothing older than it
     * (history.h). */
    struct pv_store_facts st = {
        .present = b->d.store != NULL,
        .failed = pv__store_failed(b),
        .first = b->d.store ? pv_store_first(b->d.store) : 0,
        .committed = b->d.store ? pv_store_decided(b->d.store) : 0,
    };
    bool ring_enough = pv_history_page_in_memory(&b->hist, before, in->limit, b->seq, &st);
    if (ring_enough) {
        send_page(b, c, before, in->limit, in->msg_id, NULL, 0, st.first);
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
