/* receipts.c -- delivered and read positions: read markers, delivery
 * derived from the writers' progress, "receipts" frames coalesced per
 * room, "who has seen this" on request, and the person's own setting.
 *
 * Threads: broadcaster thread only (internal.h). It reads other threads'
 * data only through clients' written_bytes counters (writer.h: a batch's
 * bytes are added once the writer has handed them all to the socket).
 *
 * The protocol (docs/receipts.md). Every position is cumulative, per
 * member and room: `delivered` (everything up to that rseq reached one of
 * the member's connections) and `read` (the member's last_read, the same
 * position the unread counts use). Positions only move forward.
 *
 *  - In a "streamed" room -- not the lobby, at most --receipts-max
 *    members; every DM -- a position that moves marks its member changed
 *    and the room dirty. At most once per PV_RECEIPTS_EVERY_MS per room
 *    (the first change after a quiet second at once), one frame lists the
 *    changed members' positions and goes to everyone online in the room:
 *    each change reaches each member once, whatever the number of
 *    messages it covers.
 *  - Delivery is derived here, without any client frame: when a chat
 *    message of a streamed room is queued for a member's connection, the
 *    room's per-slot `sent` records its rseq and the connection's
 *    queued_bytes at that point; once written_bytes reaches that mark,
 *    palaverd has handed the message to that socket, and the member's
 *    delivered moves to the rseq. A client may also confirm delivery
 *    itself ("received"), which covers what it got by a replay.
 *  - Bigger rooms stream nothing: a read marker there moves the reader's
 *    own position (and tells the reader's other connections) and costs
 *    one row update; anyone in the room may ask who has seen a message
 *    ("seen": counts, and names up to PV_SEEN_NAMES).
 *  - A person who turned read receipts off ("settings") has their read
 *    position kept for their own unread counts but never shown, and is
 *    shown no one else's (both ways, as people expect from phones);
 *    delivery is still shown. The set of such accounts is kept sorted
 *    here, loaded at start from users.read_receipts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/stats.h"
#include "palaver/store.h"

#define PV_SEEN_NAMES 20 /* names in a "seen" answer, at most */

/* ---- the accounts that send no read receipts: a sorted set ---- */

static size_t no_receipts_at(const struct pv_broadcaster *b, int64_t account, bool *found)
{
    size_t lo = 0, hi = b->no_receipts_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->no_receipts[mid] < account)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < b->no_receipts_n && b->no_receipts[lo] == account;
    return lo;
}

bool pv__receipts_off(const struct pv_broadcaster *b, int64_t account)
{
    bool found;
    if (account <= 0)
        return true; /* a guest has no positions to show, and is shown none */
    no_receipts_at(b, account, &found);
    return found;
}

static void no_receipts_set(struct pv_broadcaster *b, int64_t account, bool off)
{
    bool found;
    size_t at = no_receipts_at(b, account, &found);
    if (found == off)
        return;
    if (off) {
        if (b->no_receipts_n == b->no_receipts_cap) {
            b->no_receipts_cap = b->no_receipts_cap ? b->no_receipts_cap * 2 : 16;
            b->no_receipts =
                pv_xrealloc(b->no_receipts, b->no_receipts_cap * sizeof(*b->no_receipts));
        }
        memmove(b->no_receipts + at + 1, b->no_receipts + at,
                (b->no_receipts_n - at) * sizeof(*b->no_receipts));
        b->no_receipts[at] = account;
        b->no_receipts_n++;
    } else {
        memmove(b->no_receipts + at, b->no_receipts + at + 1,
                (b->no_receipts_n - at - 1) * sizeof(*b->no_receipts));
        b->no_receipts_n--;
    }
}

static void load_one(void *ud, int64_t account)
{
    no_receipts_set(ud, account, true);
}

void pv__receipts_load(struct pv_broadcaster *b)
{
    if (b->d.store && pv_store_no_receipts(b->d.store, load_one, b) < 0)
        pv_warn("receipts: could not read who turned read receipts off; everyone's are on");
}

void pv__receipts_free(struct pv_broadcaster *b)
{
    free(b->no_receipts);
    free(b->receipt_rooms);
    b->no_receipts = NULL;
    b->receipt_rooms = NULL;
    b->no_receipts_n = b->no_receipts_cap = b->receipt_rooms_n = b->receipt_rooms_cap = 0;
}

/* ---- positions ---- */

bool pv__receipts_streamed(const struct pv_broadcaster *b, const struct pv_room *r)
{
    if (r->id == PV_LOBBY_ID)
        return false;
    return strcmp(r->kind, "dm") == 0 || r->members_n <= b->d.cfg->receipts_max;
}

/* The room joins the list the loop looks at (once). */
static void enlist(struct pv_broadcaster *b, struct pv_room *r)
{
    if (r->receipts_listed)
        return;
    r->receipts_listed = true;
    if (b->receipt_rooms_n == b->receipt_rooms_cap) {
        b->receipt_rooms_cap = b->receipt_rooms_cap ? b->receipt_rooms_cap * 2 : 16;
        b->receipt_rooms =
            pv_xrealloc(b->receipt_rooms, b->receipt_rooms_cap * sizeof(*b->receipt_rooms));
    }
    b->receipt_rooms[b->receipt_rooms_n++] = r->id;
}

/* m's positions move to at least delivered and read (never back); in a
 * streamed room a move that others may see marks m for the next frame. */
static void advance(struct pv_broadcaster *b, struct pv_room *r, struct pv_member *m,
                    uint64_t delivered, uint64_t read)
{
    bool shown = false;
    if (read > m->last_read) {
        m->last_read = read;
        shown = !pv__receipts_off(b, m->account);
    }
    if (delivered < m->last_read)
        delivered = m->last_read; /* read implies delivered */
    if (delivered > m->delivered) {
        m->delivered = delivered;
        shown = true;
    }
    if (shown && pv__receipts_streamed(b, r) && b->d.cfg->receipts_max) {
        m->changed = true;
        r->receipts_dirty = true;
        b->receipts_news = true;
        enlist(b, r);
    }
}

/* A chat message of room r (its rseq) has just been queued for everyone
 * online in it but `except`: each member connection's slot remembers
 * where in its stream the message ends. */
void pv__receipts_sent(struct pv_broadcaster *b, struct pv_room *r, uint64_t rseq,
                       const struct pv_client *except)
{
    if (!b->d.cfg->receipts_max || !pv__receipts_streamed(b, r))
        return;
    bool any = false;
    for (uint32_t i = 0; i < r->online_n; i++) {
        struct pv_client *o = r->online[i];
        /* A resuming client's frames are held back, not queued: its
         * replay and its own "received" say when it has them. */
        if (o == except || o->account <= 0 || o->closing || o->joining || o->resuming)
            continue;
        r->sent[i] = (struct pv_sent){.rseq = rseq, .mark = o->queued_bytes};
        any = true;
    }
    if (any) {
        r->receipts_watch = true;
        enlist(b, r);
    }
}

/* The slots whose message has been written: their members' delivery. */
static void watch(struct pv_broadcaster *b, struct pv_room *r)
{
    bool pending = false;
    for (uint32_t i = 0; i < r->online_n; i++) {
        struct pv_sent *s = &r->sent[i];
        if (!s->rseq)
            continue;
        struct pv_client *o = r->online[i];
        if (atomic_load_explicit(&o->written_bytes, memory_order_acquire) < s->mark) {
            pending = true;
            continue;
        }
        struct pv_member *m = pv__member(r, o->account);
        if (m)
            advance(b, r, m, s->rseq, 0);
        s->rseq = 0;
    }
    r->receipts_watch = pending;
}

static json_t *position(const struct pv_member *m, bool with_read)
{
    json_t *o = json_pack("{s:s, s:I, s:I}", "name", m->name, "account", (json_int_t)m->account,
                          "delivered", (json_int_t)m->delivered);
    if (with_read)
        json_object_set_new(o, "read", json_integer((json_int_t)m->last_read));
    return o;
}

/* One frame of the changed members' positions, in two shapes: with the
 * read positions of those who show them, and without any (for those who
 * show none themselves, and guests). */
static void send_positions(struct pv_broadcaster *b, struct pv_room *r)
{
    json_t *full = json_array(), *bare = json_array();
    for (uint32_t i = 0; i < r->members_n; i++) {
        struct pv_member *m = &r->members[i];
        if (!m->changed)
            continue;
        m->changed = false;
        json_array_append_new(full, position(m, !pv__receipts_off(b, m->account)));
        json_array_append_new(bare, position(m, false));
    }
    r->receipts_dirty = false;
    if (!json_array_size(full)) {
        json_decref(full);
        json_decref(bare);
        return;
    }
    struct pv_frame *f[2] = {NULL, NULL};
    json_t *lists[2] = {full, bare};
    for (uint32_t i = 0; i < r->online_n; i++) {
        struct pv_client *o = r->online[i];
        if (o->joining || o->closing)
            continue;
        int k = pv__receipts_off(b, o->account) ? 1 : 0;
        if (!f[k]) {
            json_t *j = json_pack("{s:s, s:s, s:I, s:O}", "type", "receipts", "room", r->name,
                                  "roomId", (json_int_t)r->id, "positions", lists[k]);
            f[k] = pv_frame_from_json(j);
            json_decref(j);
        }
        if (pv__deliver(b, o, pv_frame_ref(f[k])))
            pv_stat_add(&b->d.stats->receipt_frames, 1);
    }
    for (int k = 0; k < 2; k++)
        if (f[k])
            pv_frame_unref(f[k]);
    json_decref(full);
    json_decref(bare);
}

int pv__receipts_flush(struct pv_broadcaster *b, uint64_t now)
{
    int wait = -1;
    size_t keep = 0;
    uint64_t every = (uint64_t)PV_RECEIPTS_EVERY_MS * 1000000u;
    uint64_t watch_every = (uint64_t)PV_RECEIPTS_WATCH_MS * 1000000u;
    if (!b->receipt_rooms_n)
        return -1;
    /* One pass per PV_RECEIPTS_WATCH_MS, not one per loop turn (the loop
     * turns thousands of times a second under load, and a pass reads every
     * watched slot's written_bytes); a moved position passes at once, so
     * the first change after a quiet second still goes out at once. */
    if (!b->receipts_news && now - b->receipts_pass_ns < watch_every)
        return (int)((b->receipts_pass_ns + watch_every - now) / 1000000u) + 1;
    b->receipts_news = false;
    b->receipts_pass_ns = now;
    for (size_t i = 0; i < b->receipt_rooms_n; i++) {
        struct pv_room *r = pv__room(b, b->receipt_rooms[i]);
        if (!r)
            continue; /* deleted meanwhile */
        if (r->receipts_watch)
            watch(b, r);
        if (r->receipts_dirty) {
            if (now - r->receipts_sent_ns >= every || r->receipts_sent_ns == 0) {
                send_positions(b, r);
                r->receipts_sent_ns = now;
            } else {
                int ms = (int)((r->receipts_sent_ns + every - now) / 1000000u) + 1;
                wait = wait < 0 || ms < wait ? ms : wait;
            }
        }
        if (r->receipts_watch) /* the writers do not wake this thread: look again soon */
            wait = wait < 0 || PV_RECEIPTS_WATCH_MS < wait ? PV_RECEIPTS_WATCH_MS : wait;
        if (r->receipts_dirty || r->receipts_watch)
            b->receipt_rooms[keep++] = r->id;
        else
            r->receipts_listed = false;
    }
    b->receipt_rooms_n = keep;
    return wait;
}

/* ---- requests ---- */

/* Tells c's account's other connections where it has read to, so their
 * unread counts agree. The member's connection count says whether there
 * are any: a person with one connection (nearly everyone) costs no
 * search (rooms.c keeps the count, the lobby's too). */
static void tell_own(struct pv_broadcaster *b, struct pv_client *c, struct pv_room *r, uint64_t to,
                     uint32_t conns)
{
    if (conns < 2)
        return;
    bool lobby = r->id == PV_LOBBY_ID;
    struct pv_client **v = lobby ? b->reg.v : r->online;
    size_t n = lobby ? b->reg.n : r->online_n;
    struct pv_frame *f = NULL;
    for (size_t i = 0; i < n; i++) {
        struct pv_client *o = v[i];
        if (o->account != c->account || o == c)
            continue;
        if (!f) {
            json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I}", "type", "read", "room", r->name,
                                  "roomId", (json_int_t)r->id, "rseq", (json_int_t)to, "unread",
                                  (json_int_t)(r->rseq - to));
            f = pv_frame_from_json(j);
            json_decref(j);
        }
        pv__deliver(b, o, pv_frame_ref(f));
    }
    if (f)
        pv_frame_unref(f);
}

/* {"type":"read","room":R,"rseq":n}: the member's last_read moves forward
 * (never back), stored as a marker (no row, no seq); the person's other
 * connections are told, so their unread counts agree; in a streamed room
 * the others see it (unless the person turned receipts off). */
void pv__on_read(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (!r || c->account <= 0)
        return; /* a guest's position is its page's own */
    pv_stat_add(&b->d.stats->markers_in, 1);
    uint64_t to = in->rseq < r->rseq ? in->rseq : r->rseq;
    struct pv_member *m = pv__member(r, c->account);
    if (!m && r->id == PV_LOBBY_ID) /* the lobby keeps positions of those who read it */
        m = pv__member_add(b, r, c->account, c->name, "member", 0);
    if (!m || to <= m->last_read)
        return;
    uint32_t conns = m->conns;
    advance(b, r, m, 0, to);
    if (b->d.store && !pv__store_failed(b)) {
        struct pv_store_msg *sm = pv_xcalloc(1, sizeof(*sm));
        sm->op = pv__room_op(PV_OP_READ, r, c->account);
        sm->op->value = to;
        sm->op->at = pv_now_ms();
        pv_store_append(b->d.store, sm);
    }
    tell_own(b, c, r, to, conns);
}

/* {"type":"received","room":R,"rseq":n}: everything up to n reached the
 * client (what a replay brought, which no write mark covers). Not
 * stored: delivery is re-derived after a restart. */
void pv__on_received(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (!r || c->account <= 0)
        return;
    pv_stat_add(&b->d.stats->markers_in, 1);
    struct pv_member *m = pv__member(r, c->account);
    if (m)
        advance(b, r, m, in->rseq < r->rseq ? in->rseq : r->rseq, 0);
}

/* {"type":"seen","room":R,"rseq":n}: how many of the other members have
 * had and read the room up to n, and the names of (up to PV_SEEN_NAMES
 * of) those who read it. O(members); any member of the room may ask (the
 * asker is not counted: it is usually the author of message n). */
void pv__on_seen(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (!r)
        return;
    bool shown = !pv__receipts_off(b, c->account);
    size_t read = 0, delivered = 0;
    json_t *names = json_array();
    size_t of = 0;
    for (uint32_t i = 0; i < r->members_n; i++) {
        const struct pv_member *m = &r->members[i];
        if (m->account == c->account)
            continue;
        of++;
        if (m->delivered >= in->rseq || m->last_read >= in->rseq)
            delivered++;
        if (!shown || m->last_read < in->rseq || pv__receipts_off(b, m->account))
            continue;
        read++;
        if (json_array_size(names) < PV_SEEN_NAMES)
            json_array_append_new(names, json_string(m->name));
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "type", "seen", "room", r->name, "roomId",
                          (json_int_t)r->id, "rseq", (json_int_t)in->rseq, "delivered",
                          (json_int_t)delivered);
    if (shown) {
        json_object_set_new(o, "read", json_integer((json_int_t)read));
        json_object_set_new(o, "readers", names);
    } else {
        json_decref(names);
    }
    /* Of how many: a room's other members; the lobby's, those who ever read it. */
    json_object_set_new(o, "of", json_integer((json_int_t)of));
    pv__reply(b, c, o, in->msg_id);
}

/* A member's positions in a member list (a streamed room only). */
void pv__receipts_annotate(struct pv_broadcaster *b, const struct pv_room *r,
                           const struct pv_client *asker, const struct pv_member *m, json_t *o)
{
    if (!b->d.cfg->receipts_max || !pv__receipts_streamed(b, r))
        return;
    json_object_set_new(o, "delivered", json_integer((json_int_t)m->delivered));
    if (!pv__receipts_off(b, asker->account) && !pv__receipts_off(b, m->account))
        json_object_set_new(o, "read", json_integer((json_int_t)m->last_read));
}

/* {"type":"settings"[,"readReceipts":bool]}: one's own settings; the
 * answer goes to all of the person's connections (their pages show it). */
void pv__on_settings(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    if (c->account <= 0) {
        pv__send_error(b, c, "forbidden", "sign in to keep settings", in->msg_id);
        return;
    }
    bool off = pv__receipts_off(b, c->account);
    bool changed = in->read_receipts >= 0 && off != (in->read_receipts == 0);
    if (changed) {
        off = in->read_receipts == 0;
        no_receipts_set(b, c->account, off);
        if (b->d.store && !pv__store_failed(b)) {
            struct pv_store_msg *sm = pv_xcalloc(1, sizeof(*sm));
            sm->op = pv_xcalloc(1, sizeof(*sm->op));
            sm->op->kind = PV_OP_RECEIPTS;
            sm->op->user = c->account;
            sm->op->value = off ? 0 : 1;
            pv_store_append(b->d.store, sm);
        }
        /* Its streamed rooms get its position again: with or without
         * "read" from now on. O(rooms), for a rare request. */
        for (uint32_t i = PV_LOBBY_ID + 1; i < b->rooms_cap; i++) {
            struct pv_room *r = b->rooms[i];
            struct pv_member *m = r ? pv__member(r, c->account) : NULL;
            if (m && b->d.cfg->receipts_max && pv__receipts_streamed(b, r)) {
                m->changed = true;
                r->receipts_dirty = true;
                enlist(b, r);
            }
        }
        pv_info("settings: account %lld (id=%s peer=%s) turned read receipts %s",
                (long long)c->account, c->id, c->peer, off ? "off" : "on");
    }
    json_t *o = json_pack("{s:s, s:b}", "type", "settings", "readReceipts", !off);
    struct pv_frame *f = NULL;
    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *x = b->reg.v[i];
        if (x->account != c->account || (x != c && !changed))
            continue;
        if (x == c && in->msg_id) {
            json_t *mine = json_deep_copy(o);
            json_object_set(mine, "msgId", in->msg_id);
            pv__deliver(b, x, pv_frame_from_json(mine));
            json_decref(mine);
            continue;
        }
        if (!f)
            f = pv_frame_from_json(o);
        pv__deliver(b, x, pv_frame_ref(f));
    }
    if (f)
        pv_frame_unref(f);
    json_decref(o);
}
