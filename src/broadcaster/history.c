/* history.c -- the history ring and the questions recovery asks of it.
 *
 * Threads: none of its own; a ring is used by the one thread that owns it
 * (the broadcaster's, see history.h). Pure: no I/O, no clock, no locks. */
#include "palaver/history.h"

#include <stdlib.h>

#include "palaver/frame.h"
#include "palaver/store.h"
#include "palaver/xalloc.h"

void pv_history_init(struct pv_history *h, size_t cap)
{
    *h = (struct pv_history){.cap = cap};
    if (cap)
        h->v = pv_xcalloc(cap, sizeof(*h->v));
}

void pv_history_destroy(struct pv_history *h)
{
    for (size_t i = 0; i < h->len; i++)
        pv_frame_unref(pv_history_at(h, i)->f);
    free(h->v);
    *h = (struct pv_history){0};
}

void pv_history_push(struct pv_history *h, struct pv_frame *f, uint64_t seq, int64_t date)
{
    if (h->cap == 0)
        return;
    struct pv_history_entry e = {pv_frame_ref(f), seq, date, 0, false, 0, 1 /* the lobby */};
    h->gen++;
    if (h->len == h->cap) {
        pv_frame_unref(h->v[h->head].f);
        h->v[h->head] = e;
        h->head = (h->head + 1) % h->cap;
    } else {
        h->v[(h->head + h->len) % h->cap] = e;
        h->len++;
    }
}

struct pv_history_entry *pv_history_find(struct pv_history *h, uint64_t seq)
{
    size_t i = pv_history_after(h, seq - 1);
    if (seq == 0 || i == h->len || h->v[(h->head + i) % h->cap].seq != seq)
        return NULL;
    return &h->v[(h->head + i) % h->cap];
}

void pv_history_replace(struct pv_history *h, struct pv_history_entry *e, struct pv_frame *f)
{
    h->gen++;
    struct pv_frame *old = e->f;
    e->f = pv_frame_ref(f);
    pv_frame_unref(old);
}

size_t pv_history_expire(struct pv_history *h, int64_t cutoff_ms)
{
    size_t n = 0;
    while (h->len && h->v[h->head].date < cutoff_ms) {
        pv_frame_unref(h->v[h->head].f);
        h->head = (h->head + 1) % h->cap;
        h->len--;
        n++;
    }
    h->gen += n;
    return n;
}

size_t pv_history_after(const struct pv_history *h, uint64_t after)
{
    size_t lo = 0, hi = h->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pv_history_at(h, mid)->seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool pv_history_covers(const struct pv_history *h, uint64_t since, uint64_t last)
{
    return since == last || (h->len && pv_history_at(h, 0)->seq <= since + 1);
}

bool pv_history_page_in_memory(const struct pv_history *h, uint64_t before, size_t limit,
                               uint64_t last, const struct pv_store_facts *st)
{
    size_t end = pv_history_after(h, before - 1); /* [0, end) is older than before */
    if (!st->present || end >= limit)
        return true;
    if (st->first != 0)
        return (end > 0 && pv_history_at(h, 0)->seq <= st->first) || st->first >= before;
    return st->failed || st->committed >= last;
}

const char *pv_history_replay_gap(const struct pv_history *h, uint64_t since, uint64_t to,
                                  const struct pv_store_row *rows, int n, uint64_t oldest)
{
    if (n < 0)
        return "unavailable";
    uint64_t last = n > 0 ? rows[n - 1].seq : since;
    size_t from = pv_history_after(h, last), end = pv_history_after(h, to);
    uint64_t expect = since + 1; /* 0 once a seq is missing */
    for (int i = 0; i < n && expect; i++)
        expect = rows[i].seq == expect ? expect + 1 : 0;
    for (size_t i = from; i < end && expect; i++)
        expect = pv_history_at(h, i)->seq == expect ? expect + 1 : 0;
    if (expect == to + 1)
        return NULL;
    return oldest == 0 || oldest > since + 1 ? "too-far" : "unavailable";
}
