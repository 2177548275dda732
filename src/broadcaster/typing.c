/* typing.c -- "X is typing...": a short-lived set of typists per room,
 * sent as one list at most once a second per room.
 *
 * Threads: broadcaster thread only (internal.h). The per-connection rate
 * bucket for typing requests is the worker's (ws.c); this file sees only
 * what passed it.
 *
 * The protocol (docs/receipts.md). A client says {"type":"typing",
 * "room":R,"typing":true} when its person starts typing and again every
 * few seconds while they go on; "typing":false when they stop (or send).
 * An entry lives PV_TYPING_TTL_MS after its last refresh, so a client
 * that vanishes mid-word is forgotten without any frame from it; its
 * connection's end and its own chat message in the room end it at once.
 *
 * Each change marks the room dirty; the list of the room's typists
 * ({"type":"typing","room":R,"users":[names]}) goes to everyone online in
 * the room at most once per PV_TYPING_EVERY_MS (the first change after a
 * quiet second at once). It has no seq, is never stored, never enters
 * the ring and is never replayed. Rooms with more than --typing-max
 * people online keep and send nothing. A client whose backlog is behind
 * does not get it (pv__deliver_shed): typing is the first thing shed, so
 * chat keeps the room in the queue. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "palaver/accounts.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/stats.h"

/* People online in r: the size --typing-max bounds. */
static size_t online(const struct pv_broadcaster *b, const struct pv_room *r)
{
    return r->id == PV_LOBBY_ID ? pv_registry_count(&b->reg)
                                : (size_t)r->people_online + r->guests_online;
}

static void enlist(struct pv_broadcaster *b, struct pv_room *r)
{
    if (r->typing_listed)
        return;
    r->typing_listed = true;
    if (b->typing_rooms_n == b->typing_rooms_cap) {
        b->typing_rooms_cap = b->typing_rooms_cap ? b->typing_rooms_cap * 2 : 16;
        b->typing_rooms =
            pv_xrealloc(b->typing_rooms, b->typing_rooms_cap * sizeof(*b->typing_rooms));
    }
    b->typing_rooms[b->typing_rooms_n++] = r->id;
}

static bool drop_typist(struct pv_room *r, const struct pv_client *c)
{
    for (uint32_t i = 0; i < r->typists_n; i++) {
        if (r->typists[i].c == c) {
            r->typists[i] = r->typists[--r->typists_n];
            r->typing_dirty = true;
            return true;
        }
    }
    return false;
}

void pv__on_typing(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = in->room ? pv__room_of(b, c, in) : pv__room(b, PV_LOBBY_ID);
    if (!r)
        return; /* told not-a-member */
    /* Nothing to tell anyone: a room too big, one nobody may post in, or
     * a person who may not post now. No error: typing is a hint. */
    if (!b->d.cfg->typing_max || online(b, r) > b->d.cfg->typing_max || r->archived ||
        c->muted_until > pv_now_ms() ||
        (strcmp(r->kind, "announcement") == 0 && pv_role_rank(c->role) < 2)) {
        if (drop_typist(r, c))
            enlist(b, r);
        return;
    }
    uint64_t until = pv_mono_ns() + (uint64_t)PV_TYPING_TTL_MS * 1000000u;
    if (!in->typing) {
        if (drop_typist(r, c))
            enlist(b, r);
        return;
    }
    for (uint32_t i = 0; i < r->typists_n; i++) {
        if (r->typists[i].c == c) {
            r->typists[i].until_ns = until; /* a refresh: nobody needs telling */
            return;
        }
    }
    if (r->typists_n == r->typists_cap) {
        r->typists_cap = r->typists_cap ? r->typists_cap * 2 : 4;
        r->typists = pv_xrealloc(r->typists, r->typists_cap * sizeof(*r->typists));
    }
    r->typists[r->typists_n++] = (struct pv_typist){c, until};
    r->typing_dirty = true;
    enlist(b, r);
}

void pv__typing_stop(struct pv_broadcaster *b, struct pv_room *r, const struct pv_client *c)
{
    if (r->typists_n && drop_typist(r, c))
        enlist(b, r);
}

void pv__typing_forget(struct pv_broadcaster *b, const struct pv_client *c)
{
    for (size_t i = 0; i < b->typing_rooms_n; i++) {
        struct pv_room *r = pv__room(b, b->typing_rooms[i]);
        if (r)
            drop_typist(r, c);
    }
}

/* The room's list, to everyone online in it. */
static void send_list(struct pv_broadcaster *b, struct pv_room *r)
{
    json_t *users = json_array();
    for (uint32_t i = 0; i < r->typists_n; i++) {
        const struct pv_client *t = r->typists[i].c;
        if (t->closing || !pv__sees(t, r->id))
            continue;        /* left the room meanwhile: their entry expires */
        bool listed = false; /* one person typing on two devices is listed once */
        for (size_t k = 0; k < json_array_size(users) && !listed; k++)
            listed = strcmp(json_string_value(json_array_get(users, k)), t->name) == 0;
        if (!listed)
            json_array_append_new(users, json_string(t->name));
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:o}", "type", "typing", "room", r->name, "roomId",
                          (json_int_t)r->id, "users", users);
    struct pv_frame *f = pv_frame_from_json(j);
    json_decref(j);
    bool lobby = r->id == PV_LOBBY_ID;
    struct pv_client **v = lobby ? b->reg.v : r->online;
    size_t n = lobby ? b->reg.n : r->online_n;
    for (size_t i = 0; i < n; i++) {
        struct pv_client *o = v[i];
        if (o->joining || o->closing)
            continue;
        if (pv__deliver_shed(b, o, pv_frame_ref(f)))
            pv_stat_add(&b->d.stats->typing_frames, 1);
    }
    pv_frame_unref(f);
}

int pv__typing_flush(struct pv_broadcaster *b, uint64_t now)
{
    int wait = -1;
    size_t keep = 0;
    uint64_t every = (uint64_t)PV_TYPING_EVERY_MS * 1000000u;
    for (size_t i = 0; i < b->typing_rooms_n; i++) {
        struct pv_room *r = pv__room(b, b->typing_rooms[i]);
        if (!r)
            continue;      /* deleted meanwhile */
        uint64_t next = 0; /* the soonest entry to expire */
        for (uint32_t k = 0; k < r->typists_n;) {
            if (r->typists[k].until_ns <= now) {
                r->typists[k] = r->typists[--r->typists_n];
                r->typing_dirty = true;
                continue;
            }
            if (!next || r->typists[k].until_ns < next)
                next = r->typists[k].until_ns;
            k++;
        }
        if (r->typing_dirty) {
            if (!r->typing_sent_ns || now - r->typing_sent_ns >= every) {
                send_list(b, r);
                r->typing_sent_ns = now;
                r->typing_dirty = false;
            } else {
                uint64_t due = r->typing_sent_ns + every;
                next = !next || due < next ? due : next;
            }
        }
        if (next) {
            int ms = (int)((next - now) / 1000000u) + 1;
            wait = wait < 0 || ms < wait ? ms : wait;
        }
        if (r->typists_n || r->typing_dirty) {
            b->typing_rooms[keep++] = r->id;
        } else {
            r->typing_listed = false;
            free(r->typists);
            r->typists = NULL;
            r->typists_cap = 0;
        }
    }
    b->typing_rooms_n = keep;
    return wait;
}

void pv__typing_free(struct pv_broadcaster *b)
{
    free(b->typing_rooms);
    b->typing_rooms = NULL;
    b->typing_rooms_n = b->typing_rooms_cap = 0;
}
