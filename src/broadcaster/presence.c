/* presence.c -- who is online: the snapshot a newcomer gets, and the join
 * and leave notices everyone else gets, coalesced over time.
 *
 * Threads: broadcaster thread only (internal.h).
 *
 * Notices are coalesced twice. Within a burst: a run of JOIN (or LEAVE)
 * events is one notice naming them all (broadcaster.c). Over time: a
 * notice goes out at once when none went out in the last
 * PV_PRESENCE_WINDOW_MS; otherwise joins and leaves wait for the window's
 * end and go out together, one leave notice and one join notice. A client
 * that joins and leaves inside one window is never announced at all, so
 * one address opening and closing WebSockets as fast as it can costs
 * everyone at most two small notices per window, not two per cycle.
 *
 * Causality: a client's own message or rename never reaches anyone before
 * the notice of its join: on_chat() and on_hello() flush first when the
 * sender's join is still pending (c->join_pending). The snapshot a
 * newcomer gets is the registry itself, so it may already list someone
 * whose notice is still pending; pages key users by id, so that notice
 * changes nothing for them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/nickname.h"

struct pv_user *pv__listed_users(struct pv_broadcaster *b, size_t *n)
{
    size_t online = pv_registry_count(&b->reg);
    *n = online < b->d.cfg->presence_max ? online : b->d.cfg->presence_max;
    struct pv_user *u = pv_xcalloc(*n ? *n : 1, sizeof(*u));
    for (size_t i = 0; i < *n; i++)
        u[i] = pv__user_of(b->reg.v[online - 1 - i]);
    return u;
}

/* In rooms over --presence-max, join/leave notices carry counts only:
 * naming every arrival to everyone is O(n^2) bytes in a reconnect burst. */
static bool notices_named(const struct pv_broadcaster *b)
{
    return pv_registry_count(&b->reg) <= b->d.cfg->presence_max;
}

static struct pending_user *push(struct pending_user **v, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = pv_xrealloc(*v, *cap * sizeof(**v));
    }
    return &(*v)[(*n)++];
}

void pv__presence_join(struct pv_broadcaster *b, struct pv_client *c)
{
    if (b->draining)
        return;
    struct pending_user *p = push(&b->joins, &b->joins_n, &b->joins_cap);
    snprintf(p->id, sizeof(p->id), "%s", c->id);
    snprintf(p->name, sizeof(p->name), "%s", c->name);
    p->c = c;
    c->join_pending = true;
}

void pv__presence_leave(struct pv_broadcaster *b, struct pv_client *c)
{
    if (c->join_pending) {
        /* Joined and left inside one window: nobody hears of it. */
        for (size_t i = 0; i < b->joins_n; i++) {
            if (b->joins[i].c == c) {
                memmove(&b->joins[i], &b->joins[i + 1], (b->joins_n - i - 1) * sizeof(b->joins[0]));
                b->joins_n--;
                break;
            }
        }
        c->join_pending = false;
        return;
    }
    if (b->draining)
        return;
    struct pending_user *p = push(&b->leaves, &b->leaves_n, &b->leaves_cap);
    snprintf(p->id, sizeof(p->id), "%s", c->id);
    snprintf(p->name, sizeof(p->name), "%s", c->name);
    p->c = NULL;
}

static struct pv_frame *notice(struct pv_broadcaster *b, const char *type,
                               const struct pending_user *v, size_t n, int64_t now)
{
    struct pv_user *u = pv_xcalloc(n, sizeof(*u));
    /* A join names the account and role too (the client is registered,
     * so alive): a page offers a DM to whoever joined after it. */
    for (size_t i = 0; i < n; i++)
        u[i] = (struct pv_user){.id = v[i].id,
                                .name = v[i].name,
                                .role = v[i].c ? v[i].c->role : NULL,
                                .account = v[i].c ? v[i].c->account : 0};
    struct pv_frame *f =
        pv_proto_notice(type, u, n, notices_named(b), pv_registry_count(&b->reg), now);
    free(u);
    return f;
}

void pv__presence_flush(struct pv_broadcaster *b, bool force)
{
    if (!b->joins_n && !b->leaves_n)
        return;
    uint64_t now = pv_mono_ns();
    if (!force && now - b->presence_sent_ns < (uint64_t)PV_PRESENCE_WINDOW_MS * 1000000u)
        return;
    if (!b->draining) {
        int64_t wall = pv_now_ms();
        if (b->leaves_n)
            pv__fanout(b, notice(b, "leave", b->leaves, b->leaves_n, wall), NULL);
        /* Not to those it announces: their snapshot already had them
         * (the fanout skips clients marked joining). */
        for (size_t i = 0; i < b->joins_n; i++)
            b->joins[i].c->joining = true;
        if (b->joins_n)
            pv__fanout(b, notice(b, "join", b->joins, b->joins_n, wall), NULL);
        for (size_t i = 0; i < b->joins_n; i++)
            b->joins[i].c->joining = false;
    }
    for (size_t i = 0; i < b->joins_n; i++)
        b->joins[i].c->join_pending = false;
    b->joins_n = b->leaves_n = 0;
    b->presence_sent_ns = now;
}

int pv__presence_wait_ms(const struct pv_broadcaster *b)
{
    if (!b->joins_n && !b->leaves_n)
        return -1;
    uint64_t due = b->presence_sent_ns + (uint64_t)PV_PRESENCE_WINDOW_MS * 1000000u,
             now = pv_mono_ns();
    return now >= due ? 0 : (int)((due - now) / 1000000u) + 1;
}

/* ---- Names in use ----
 *
 * A chosen name belongs to one person while they are online: the table
 * maps each online client's name key (nickname.h: case, width and
 * confusable characters folded) to that client. Guest names are made by
 * the server from the client's id and are never in the table; the keys
 * of "guest-..." are refused to people. */

static uint64_t hash(const char *k)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211u;
    return h;
}

static struct pv_client **slot(struct names *t, const char *key)
{
    struct pv_client **p = &t->bucket[hash(key) & (t->cap - 1)];
    while (*p && strcmp((*p)->name_key, key) != 0)
        p = &(*p)->name_next;
    return p;
}

static void grow(struct names *t)
{
    struct names n = {.cap = t->cap ? t->cap * 2 : 256, .n = t->n};
    n.bucket = pv_xcalloc(n.cap, sizeof(*n.bucket));
    for (size_t i = 0; i < t->cap; i++) {
        for (struct pv_client *c = t->bucket[i], *next; c; c = next) {
            next = c->name_next;
            struct pv_client **p = &n.bucket[hash(c->name_key) & (n.cap - 1)];
            c->name_next = *p;
            *p = c;
        }
    }
    free(t->bucket);
    *t = n;
}

void pv__name_release(struct pv_broadcaster *b, struct pv_client *c)
{
    if (!c->name_key)
        return;
    struct pv_client **p = slot(&b->names, c->name_key);
    if (*p == c) {
        *p = c->name_next;
        b->names.n--;
    }
    free(c->name_key);
    c->name_key = NULL;
    c->name_next = NULL;
}

const char *pv__name_claim(struct pv_broadcaster *b, struct pv_client *c, const char *name,
                           const char **why)
{
    char key[PV_NAME_KEY_MAX];
    if (!pv_nickname_key(name, key)) {
        *why = "name is too complex to compare with others";
        return "bad-name";
    }
    if (pv_nickname_reserved(key)) {
        *why = "names like guest-1a2b are given by the server";
        return "bad-name";
    }
    if (b->names.n + 1 > b->names.cap / 2)
        grow(&b->names);
    struct pv_client **p = slot(&b->names, key);
    if (*p && *p != c) {
        *why = "that name (or one that looks the same) is taken by someone online";
        return "name-taken";
    }
    if (*p == c)
        return NULL; /* the same name again, other case or look */
    pv__name_release(b, c);
    p = slot(&b->names, key); /* the release may have unlinked before it */
    c->name_key = pv_xstrdup(key);
    c->name_next = NULL;
    *p = c;
    b->names.n++;
    return NULL;
}

void pv__presence_free(struct pv_broadcaster *b)
{
    free(b->names.bucket);
    b->names = (struct names){0};
    free(b->joins);
    free(b->leaves);
    b->joins = b->leaves = NULL;
    b->joins_n = b->leaves_n = b->joins_cap = b->leaves_cap = 0;
}
