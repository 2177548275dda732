/* rooms.c -- rooms, memberships and direct messages (docs/rooms.md):
 * which connections a room's messages go to, and the requests that
 * change that (create, join, leave, invite, remove, dm, topic, rename, archive), the room
 * list with unread counts, member lists and read markers.
 *
 * Threads: broadcaster thread only (internal.h). Every room, member array
 * and online array below is that thread's; changes are stored by handing
 * the store writer an event that carries the change (store.h,
 * pv_store_room_op), so this thread never waits on the disk.
 *
 * Layout (docs/rooms.md, "Data layout"): rooms by id in an array; a room
 * holds its members sorted by account (binary search) and the
 * connections online in it (an array; each connection records its slot,
 * so leaving is a swap-remove). The lobby (id 1) is everyone's: its
 * members are implicit, its online set is the registry itself, and its
 * member array holds only read positions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "palaver/accounts.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/nickname.h"
#include "palaver/store.h"

#define PV_ROOMS_MAX 10000   /* rooms on one server (a bound on what accounts can create) */
#define PV_DISCOVER_MAX 200  /* public rooms listed to someone not in them */
#define PV_MEMBERS_LIST 1000 /* members named in one members reply */

static const char *const kinds[] = {"public", "private", "announcement", "dm"};

static bool kind_ok(const char *k)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(k, kinds[i]) == 0)
            return true;
    return false;
}

static char *sdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = pv_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

/* A room's lookup key: a DM's name is its key; any other room's is the
 * name-equivalence key of display names (nickname.h), so "Ops" and "ops"
 * are one room. NULL when the name cannot be a room's. */
static char *room_key(const char *name, size_t len)
{
    char buf[PV_ROOM_NAME_MAX_BYTES + 1], key[PV_NAME_KEY_MAX];
    if (len > PV_ROOM_NAME_MAX_BYTES)
        return NULL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (strncmp(buf, "dm:", 3) == 0)
        return sdup(buf);
    char prepared[PV_NAME_MAX_BYTES + 1];
    const char *why;
    if (!pv_nickname_prepare(buf, len, prepared, sizeof(prepared), &why) ||
        !pv_nickname_key(prepared, key))
        return NULL;
    return sdup(key);
}

struct pv_room *pv__room(struct pv_broadcaster *b, uint32_t id)
{
    return id < b->rooms_cap ? b->rooms[id] : NULL;
}

/* O(rooms): requests that name a room are rare next to messages, which
 * name theirs once per connection's send (docs/rooms.md, costs). */
struct pv_room *pv__room_by_name(struct pv_broadcaster *b, const char *name, size_t len)
{
    if (!name || (len == 5 && memcmp(name, PV_LOBBY, 5) == 0))
        return pv__room(b, PV_LOBBY_ID);
    char *key = room_key(name, len);
    struct pv_room *found = NULL;
    for (uint32_t i = 1; key && i < b->rooms_cap && !found; i++)
        if (b->rooms[i] && strcmp(b->rooms[i]->key, key) == 0)
            found = b->rooms[i];
    free(key);
    return found;
}

static struct pv_room *room_add(struct pv_broadcaster *b, uint32_t id, const char *name,
                                const char *key, const char *kind, const char *topic)
{
    if (id >= b->rooms_cap) {
        uint32_t cap = b->rooms_cap ? b->rooms_cap : 16;
        while (cap <= id)
            cap *= 2;
        b->rooms = pv_xrealloc(b->rooms, cap * sizeof(*b->rooms));
        memset(b->rooms + b->rooms_cap, 0, (cap - b->rooms_cap) * sizeof(*b->rooms));
        b->rooms_cap = cap;
    }
    struct pv_room *r = pv_xcalloc(1, sizeof(*r));
    r->id = id;
    r->name = sdup(name);
    r->key = sdup(key);
    r->topic = sdup(topic ? topic : "");
    snprintf(r->kind, sizeof(r->kind), "%s", kind);
    b->rooms[id] = r;
    b->rooms_n++;
    if (id >= b->next_room)
        b->next_room = id + 1;
    return r;
}

/* The member of r with `account`, or NULL; *at: where it is or would go. */
static struct pv_member *find_member(struct pv_room *r, int64_t account, uint32_t *at)
{
    uint32_t lo = 0, hi = r->members_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->members[mid].account < account)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    return lo < r->members_n && r->members[lo].account == account ? &r->members[lo] : NULL;
}

struct pv_member *pv__member(struct pv_room *r, int64_t account)
{
    return account > 0 ? find_member(r, account, NULL) : NULL;
}

static struct pv_member *member_add(struct pv_room *r, int64_t account, const char *name,
                                    const char *role, uint64_t last_read)
{
    uint32_t at;
    struct pv_member *m = find_member(r, account, &at);
    if (m)
        return m;
    if (r->members_n == r->members_cap) {
        r->members_cap = r->members_cap ? r->members_cap * 2 : 4;
        r->members = pv_xrealloc(r->members, r->members_cap * sizeof(*r->members));
    }
    memmove(r->members + at + 1, r->members + at, (r->members_n - at) * sizeof(*r->members));
    r->members_n++;
    m = &r->members[at];
    *m = (struct pv_member){
        .account = account, .last_read = last_read, .delivered = last_read, .name = sdup(name)};
    snprintf(m->role, sizeof(m->role), "%s", role && *role ? role : "member");
    return m;
}

/* The lobby's positions (a read marker): its member counts the account's
 * connections from then on (pv__rooms_attach); others through their join. */
struct pv_member *pv__member_add(struct pv_broadcaster *b, struct pv_room *r, int64_t account,
                                 const char *name, const char *role, uint64_t last_read)
{
    struct pv_member *m = member_add(r, account, name, role, last_read);
    if (r->id == PV_LOBBY_ID && m->conns == 0)
        for (size_t i = 0; i < b->reg.n; i++)
            m->conns += b->reg.v[i]->account == account;
    return m;
}

static void member_remove(struct pv_room *r, int64_t account)
{
    uint32_t at;
    struct pv_member *m = find_member(r, account, &at);
    if (!m)
        return;
    free(m->name);
    memmove(r->members + at, r->members + at + 1, (r->members_n - at - 1) * sizeof(*r->members));
    r->members_n--;
}

bool pv__sees(const struct pv_client *c, uint32_t room)
{
    if (room == PV_LOBBY_ID || room == 0)
        return true;
    for (uint32_t i = 0; i < c->rooms_n; i++)
        if (c->rooms[i].r->id == room)
            return true;
    return false;
}

/* ---- Online sets ---- */

static void attach(struct pv_room *r, struct pv_client *c)
{
    if (pv__sees(c, r->id))
        return;
    if (r->online_n == r->online_cap) {
        r->online_cap = r->online_cap ? r->online_cap * 2 : 8;
        r->online = pv_xrealloc(r->online, r->online_cap * sizeof(*r->online));
        r->sent = pv_xrealloc(r->sent, r->online_cap * sizeof(*r->sent));
    }
    r->sent[r->online_n] = (struct pv_sent){0};
    if (c->rooms_n == c->rooms_cap) {
        c->rooms_cap = c->rooms_cap ? c->rooms_cap * 2 : 4;
        c->rooms = pv_xrealloc(c->rooms, c->rooms_cap * sizeof(*c->rooms));
    }
    c->rooms[c->rooms_n++] = (struct pv_membership){r, r->online_n};
    r->online[r->online_n++] = c;
    struct pv_member *m = pv__member(r, c->account);
    if (m && m->conns++ == 0)
        r->people_online++;
    if (c->account <= 0)
        r->guests_online++;
}

/* Swap-remove c from r's online set (its slot goes to the last one). */
static void detach(struct pv_room *r, struct pv_client *c)
{
    for (uint32_t i = 0; i < c->rooms_n; i++) {
        if (c->rooms[i].r != r)
            continue;
        uint32_t slot = c->rooms[i].slot;
        struct pv_client *last = r->online[--r->online_n];
        r->online[slot] = last;
        r->sent[slot] = r->sent[r->online_n];
        for (uint32_t j = 0; last != c && j < last->rooms_n; j++)
            if (last->rooms[j].r == r)
                last->rooms[j].slot = slot;
        c->rooms[i] = c->rooms[--c->rooms_n];
        struct pv_member *m = pv__member(r, c->account);
        if (m && m->conns && --m->conns == 0)
            r->people_online--;
        if (c->account <= 0)
            r->guests_online--;
        return;
    }
}

/* A newcomer (JOIN): into the online set of every room its account is a
 * member of. O(rooms x log members); the lobby's set is the registry. */
void pv__rooms_attach(struct pv_broadcaster *b, struct pv_client *c)
{
    if (c->account <= 0)
        return;
    struct pv_member *lm = pv__member(pv__room(b, PV_LOBBY_ID), c->account);
    if (lm) /* the lobby's members are those who read it: connections counted only */
        lm->conns++;
    for (uint32_t i = PV_LOBBY_ID + 1; i < b->rooms_cap; i++)
        if (b->rooms[i] && pv__member(b->rooms[i], c->account))
            attach(b->rooms[i], c);
}

/* A client leaving: out of each of its rooms, touching only those. */
void pv__rooms_detach(struct pv_broadcaster *b, struct pv_client *c)
{
    struct pv_member *lm = pv__member(pv__room(b, PV_LOBBY_ID), c->account);
    if (lm && lm->conns)
        lm->conns--;
    while (c->rooms_n)
        detach(c->rooms[c->rooms_n - 1].r, c);
    free(c->rooms);
    c->rooms = NULL;
    c->rooms_cap = 0;
}

/* Every open connection of `account` joins (on) or leaves r's online set:
 * one registry pass (membership changes are rare; docs/rooms.md). */
static void account_online(struct pv_broadcaster *b, struct pv_room *r, int64_t account, bool on)
{
    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *c = b->reg.v[i];
        if (c->account != account)
            continue;
        if (on)
            attach(r, c);
        else
            detach(r, c);
    }
}

/* The room's fanout: its online connections, minus `except`. The lobby's
 * is the registry's (pv__fanout). Consumes the caller's reference. */
void pv__room_fanout(struct pv_broadcaster *b, struct pv_room *r, struct pv_frame *f,
                     const struct pv_client *except)
{
    if (r->id == PV_LOBBY_ID) {
        pv__fanout(b, f, except);
        return;
    }
    pv_frame_ref_n(f, r->online_n);
    for (uint32_t i = 0; i < r->online_n; i++) {
        struct pv_client *c = r->online[i];
        if (c == except || c->joining) {
            pv_frame_unref(f);
            continue;
        }
        pv__deliver(b, c, f);
    }
    pv_frame_unref(f);
}

void pv__room_set_last(struct pv_room *r, struct pv_frame *f)
{
    if (r->last)
        pv_frame_unref(r->last);
    r->last = pv_frame_ref(f);
}

/* ---- Loading at start ---- */

static void load_room(void *ud, const struct pv_store_room *sr)
{
    struct pv_broadcaster *b = ud;
    char *key = sr->id == PV_LOBBY_ID ? sdup(PV_LOBBY) : room_key(sr->name, strlen(sr->name));
    if (!key || !kind_ok(sr->kind)) {
        pv_warn("rooms: stored room %u (\"%s\") has a name or kind this version cannot use; "
                "skipped",
                sr->id, sr->name);
        free(key);
        return;
    }
    struct pv_room *r = pv__room(b, sr->id);
    if (!r)
        r = room_add(b, sr->id, sr->name, key, sr->kind, sr->topic);
    r->archived = sr->archived;
    r->rseq = sr->last_rseq;
    r->keep = sr->keep;
    r->max_age_s = sr->max_age_s;
    free(key);
}

static void load_member(void *ud, uint32_t room, int64_t user, const char *name, const char *role,
                        uint64_t last_read)
{
    struct pv_broadcaster *b = ud;
    struct pv_room *r = pv__room(b, room);
    if (r)
        member_add(r, user, name, role, last_read);
}

void pv__rooms_load(struct pv_broadcaster *b)
{
    struct pv_room *lobby = room_add(b, PV_LOBBY_ID, PV_LOBBY, PV_LOBBY, "public", "");
    lobby->rseq = b->rseq;
    if (!b->d.store)
        return;
    int n = pv_store_rooms(b->d.store, load_room, load_member, b);
    if (n < 0)
        pv_warn("rooms: could not read the stored rooms; only the lobby is open");
    else
        pv_info("rooms: %d room(s) loaded", n);
    b->rseq = lobby->rseq;
}

static void room_free(struct pv_room *r)
{
    for (uint32_t j = 0; j < r->members_n; j++)
        free(r->members[j].name);
    free(r->members);
    free(r->online);
    free(r->sent);
    free(r->typists);
    if (r->last)
        pv_frame_unref(r->last);
    free(r->name);
    free(r->key);
    free(r->topic);
    free(r);
}

void pv__rooms_free(struct pv_broadcaster *b)
{
    for (uint32_t i = 0; i < b->rooms_cap; i++)
        if (b->rooms[i])
            room_free(b->rooms[i]);
    free(b->rooms);
}

/* ---- Events: stored, with a seq and an rseq of their room ---- */

static json_t *user_obj(const char *name, int64_t account)
{
    json_t *o = json_pack("{s:s}", "name", name);
    if (account > 0)
        json_object_set_new(o, "account", json_integer((json_int_t)account));
    return o;
}

/* Gives ev (a "room" or "member" event, one reference) its seq and rseq
 * in r, records it (ring, store with op), and sends it to r's online
 * members, the actor included. */
static void post_event(struct pv_broadcaster *b, struct pv_room *r, json_t *ev,
                       const struct pv_client *by, struct pv_store_room_op *op)
{
    int64_t now = pv_now_ms();
    uint64_t seq = ++b->seq, rseq = ++r->rseq;
    if (r->id == PV_LOBBY_ID)
        b->rseq = rseq;
    json_object_set_new(ev, "room", json_string(r->name));
    json_object_set_new(ev, "roomId", json_integer(r->id));
    if (by)
        json_object_set_new(ev, "by", user_obj(by->name, by->account));
    json_object_set_new(ev, "seq", json_integer((json_int_t)seq));
    json_object_set_new(ev, "rseq", json_integer((json_int_t)rseq));
    json_object_set_new(ev, "serverDate", json_integer((json_int_t)now));
    struct pv_frame *f = pv_frame_from_json(ev);
    json_decref(ev);
    struct pv_store_msg *m =
        pv__record(b, f, r->id, seq, rseq, now, 0, false, by ? by->addr : "server");
    if (m) {
        if (op)
            op->at = now;
        m->op = op;
        pv_store_append(b->d.store, m);
    } else if (op) {
        free(op->name);
        free(op->key);
        free(op->topic);
        free(op);
    }
    pv__room_fanout(b, r, f, NULL);
}

struct pv_store_room_op *pv__room_op(enum pv_store_op_kind kind, const struct pv_room *r,
                                     int64_t user)
{
    struct pv_store_room_op *op = pv_xcalloc(1, sizeof(*op));
    op->kind = kind;
    op->room = r->id;
    op->user = user;
    snprintf(op->room_kind, sizeof(op->room_kind), "%s", r->kind);
    return op;
}

static struct pv_store_room_op *member_op(const struct pv_room *r, int64_t user, uint64_t last_read)
{
    struct pv_store_room_op *op = pv__room_op(PV_OP_MEMBER_ADD, r, user);
    op->value = last_read;
    return op;
}

static json_t *room_json(const struct pv_room *r)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s}", "type", "room", "action", "", "roomId",
                     (json_int_t)r->id, "kind", r->kind, "topic", r->topic);
}

/* A member joins (or is invited, or is one of a new DM's pair): stored,
 * the account's open connections put online in r, and announced. */
static void add_member(struct pv_broadcaster *b, struct pv_room *r, int64_t account,
                       const char *name, const char *role, const char *action,
                       const struct pv_client *by)
{
    /* A newcomer has read everything before it came in, and its own
     * arrival: unread counts start at what follows. */
    member_add(r, account, name, role, r->rseq + 1);
    account_online(b, r, account, true);
    struct pv_store_room_op *op = pv__room_op(PV_OP_MEMBER_ADD, r, account);
    snprintf(op->role, sizeof(op->role), "%s", role);
    op->value = r->rseq + 1;
    json_t *ev = json_pack("{s:s, s:s, s:o, s:s}", "type", "member", "action", action, "user",
                           user_obj(name, account), "role", role);
    post_event(b, r, ev, by, op);
}

/* ---- Requests ---- */

void pv__reply(struct pv_broadcaster *b, struct pv_client *c, json_t *o, const json_t *msg_id)
{
    if (msg_id)
        json_object_set(o, "msgId", (json_t *)msg_id);
    pv__deliver(b, c, pv_frame_from_json(o));
    json_decref(o);
}

static void reply(struct pv_broadcaster *b, struct pv_client *c, json_t *o, const json_t *msg_id)
{
    pv__reply(b, c, o, msg_id);
}

/* The one answer for a room one is not in, whether it exists or not:
 * private rooms' names do not leak (docs/rooms.md, "Isolation"). */
static void not_member(struct pv_broadcaster *b, struct pv_client *c, const json_t *msg_id)
{
    pv__send_error(b, c, "not-a-member", "you are not a member of that room (or there is none)",
                   msg_id);
}

/* The room `in` names, if c is in it; else NULL after telling c. */
struct pv_room *pv__room_of(struct pv_broadcaster *b, struct pv_client *c,
                            const struct pv_inbound *in)
{
    /* The hot path (a message to a room): the name as the server wrote it,
     * among the client's own rooms: O(its rooms), no name folding. */
    for (uint32_t i = 0; in->room && i < c->rooms_n; i++) {
        const char *n = c->rooms[i].r->name;
        if (strlen(n) == in->room_len && memcmp(n, in->room, in->room_len) == 0)
            return c->rooms[i].r;
    }
    struct pv_room *r = pv__room_by_name(b, in->room, in->room_len);
    if (!r || !pv__sees(c, r->id)) {
        not_member(b, c, in->msg_id);
        return NULL;
    }
    return r;
}

/* --guest-rooms on: guests create and join public rooms too, for as long
 * as their connection lasts (nothing of their membership is stored). */
static bool guests_welcome(const struct pv_broadcaster *b)
{
    return strcmp(b->d.cfg->guest_rooms, "on") == 0;
}

static bool signed_in(struct pv_broadcaster *b, struct pv_client *c, const json_t *msg_id)
{
    if (c->account > 0)
        return true;
    pv__send_error(b, c, "forbidden", "sign in to use rooms and direct messages", msg_id);
    return false;
}

static bool room_mod(const struct pv_client *c, struct pv_room *r)
{
    struct pv_member *m = pv__member(r, c->account);
    return pv_role_rank(c->role) >= 2 || (m && strcmp(m->role, "owner") == 0);
}

/* A name a room may take (create, rename): it passes the name profile,
 * is not a DM's form nor the lobby's, and no other room has it (`self`,
 * the room being renamed, may keep its own in another case). Returns the
 * name's key (malloc'd) with the prepared name in `name`, or NULL after
 * telling c why. */
static char *room_name_free(struct pv_broadcaster *b, struct pv_client *c, const char *s,
                            size_t len, const struct pv_room *self,
                            char name[PV_NAME_MAX_BYTES + 1], const json_t *msg_id)
{
    const char *why;
    if (!pv_name_check(s, len, name, &why)) {
        pv__send_error(b, c, "bad-room", why, msg_id);
        return NULL;
    }
    char *key = room_key(name, strlen(name));
    if (!key || strncmp(name, "dm:", 3) == 0 || strcmp(key, PV_LOBBY) == 0) {
        free(key);
        pv__send_error(b, c, "bad-room", "that cannot be a room's name", msg_id);
        return NULL;
    }
    const struct pv_room *other = pv__room_by_name(b, name, strlen(name));
    if (other && other != self) {
        free(key);
        pv__send_error(b, c, "room-exists", "a room of that name exists already", msg_id);
        return NULL;
    }
    return key;
}

static void on_create(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    const char *kind = in->kind ? in->kind : "public";
    char name[PV_NAME_MAX_BYTES + 1];
    bool guest = c->account <= 0;
    if (guest && (!guests_welcome(b) || strcmp(kind, "public") != 0)) {
        signed_in(b, c, in->msg_id);
        return;
    }
    if (strcmp(kind, "public") != 0 && strcmp(kind, "private") != 0 &&
        strcmp(kind, "announcement") != 0) {
        pv__send_error(b, c, "bad-kind", "\"kind\" must be public, private or announcement",
                       in->msg_id);
        return;
    }
    if (strcmp(kind, "announcement") == 0 && pv_role_rank(c->role) < 2) {
        pv__send_error(b, c, "forbidden", "only moderators create announcement rooms", in->msg_id);
        return;
    }
    char *key = room_name_free(b, c, in->room, in->room_len, NULL, name, in->msg_id);
    if (!key)
        return;
    if (b->rooms_n >= PV_ROOMS_MAX) {
        free(key);
        pv__send_error(b, c, "too-many-rooms", "this server has as many rooms as it keeps",
                       in->msg_id);
        return;
    }
    char topic[PV_TOPIC_MAX_BYTES + 1];
    snprintf(topic, sizeof(topic), "%.*s", (int)in->topic_len, in->topic ? in->topic : "");
    struct pv_room *r = room_add(b, b->next_room, name, key, kind, topic);
    struct pv_store_room_op *op = pv__room_op(PV_OP_ROOM_CREATE, r, 0);
    op->name = sdup(name);
    op->key = key;
    op->topic = sdup(topic);
    op->by = c->account;
    /* The creator first, so the created event reaches them. A guest's room
     * is stored (it stays, anyone may join it), its membership is not. */
    if (guest) {
        attach(r, c);
    } else {
        member_add(r, c->account, c->name, "owner", 2); /* the two events below */
        account_online(b, r, c->account, true);
    }
    json_t *ev = room_json(r);
    json_object_set_new(ev, "action", json_string("created"));
    post_event(b, r, ev, c, op);
    struct pv_store_room_op *mop = guest ? NULL : member_op(r, c->account, 2);
    if (mop)
        snprintf(mop->role, sizeof(mop->role), "owner");
    post_event(b, r,
               json_pack("{s:s, s:s, s:o, s:s}", "type", "member", "action", "joined", "user",
                         user_obj(c->name, c->account), "role", guest ? "guest" : "owner"),
               c, mop);
    char q[2 * PV_NAME_MAX_BYTES + 8];
    pv_log_quote(name, q, sizeof(q));
    pv_info("room created id=%u name=\"%s\" kind=%s by account=%lld", r->id, q, kind,
            (long long)c->account);
}

static void on_join(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    if (c->account <= 0 && !guests_welcome(b)) {
        signed_in(b, c, in->msg_id);
        return;
    }
    struct pv_room *r = pv__room_by_name(b, in->room, in->room_len);
    /* Private rooms and DMs answer exactly as a room that does not exist. */
    if (!r || strcmp(r->kind, "private") == 0 || strcmp(r->kind, "dm") == 0) {
        if (r && pv__member(r, c->account))
            return; /* in it already */
        not_member(b, c, in->msg_id);
        return;
    }
    if (r->id == PV_LOBBY_ID || pv__member(r, c->account) || pv__sees(c, r->id))
        return; /* in it already: nothing changes */
    if (r->archived) {
        pv__send_error(b, c, "archived", "that room is archived (read-only)", in->msg_id);
        return;
    }
    if (c->account <= 0) { /* a guest: this connection, not stored */
        attach(r, c);
        post_event(b, r,
                   json_pack("{s:s, s:s, s:o, s:s}", "type", "member", "action", "joined", "user",
                             user_obj(c->name, 0), "role", "guest"),
                   NULL, NULL);
        return;
    }
    add_member(b, r, c->account, c->name, "member", "joined", c);
}

/* The room named by a leave or a removal, if its members may change:
 * not the lobby (everyone is in it) nor a DM (its two stay); else NULL
 * after telling c. */
static struct pv_room *changeable_room(struct pv_broadcaster *b, struct pv_client *c,
                                       const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (r && (r->id == PV_LOBBY_ID || strcmp(r->kind, "dm") == 0)) {
        pv__send_error(b, c, "forbidden",
                       r->id == PV_LOBBY_ID ? "everyone stays in the lobby"
                                            : "a direct message keeps its two members",
                       in->msg_id);
        return NULL;
    }
    return r;
}

static void on_leave(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = changeable_room(b, c, in);
    if (!r)
        return;
    /* Announced first, so the leaver's connections get it too. */
    bool guest = c->account <= 0;
    post_event(b, r,
               json_pack("{s:s, s:s, s:o}", "type", "member", "action", "left", "user",
                         user_obj(c->name, c->account)),
               NULL, guest ? NULL : pv__room_op(PV_OP_MEMBER_REMOVE, r, c->account));
    if (guest) {
        detach(r, c);
        return;
    }
    account_online(b, r, c->account, false);
    member_remove(r, c->account);
}

/* The room's owner or a moderator takes a member out (docs/rooms.md,
 * "Removing a member"): not from the lobby or a DM, not themselves (they
 * leave), not the owner unless a server moderator does it. Announced
 * first ("removed", with "by"), so the removed person's pages hear it;
 * then their connections leave the room's online set and the membership
 * goes from the store. A private room needs a new invitation to come
 * back; a public one may be joined again (removal is not a ban). */
static void on_remove(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = changeable_room(b, c, in);
    if (!r)
        return;
    if (c->account <= 0 || !room_mod(c, r)) {
        pv__send_error(b, c, "forbidden", "only the room's owner or a moderator removes members",
                       in->msg_id);
        return;
    }
    struct pv_member *m = in->user_account > 0 ? pv__member(r, in->user_account) : NULL;
    if (!m) {
        pv__send_error(b, c, "no-user", "there is no member of that name in this room", in->msg_id);
        return;
    }
    if (in->user_account == c->account) {
        pv__send_error(b, c, "forbidden", "to go, leave the room", in->msg_id);
        return;
    }
    if (strcmp(m->role, "owner") == 0 && pv_role_rank(c->role) < 2) {
        pv__send_error(b, c, "forbidden", "only a moderator removes a room's owner", in->msg_id);
        return;
    }
    int64_t account = in->user_account;
    post_event(b, r,
               json_pack("{s:s, s:s, s:o}", "type", "member", "action", "removed", "user",
                         user_obj(m->name, account)),
               c, pv__room_op(PV_OP_MEMBER_REMOVE, r, account));
    account_online(b, r, account, false);
    member_remove(r, account);
}

static void on_invite(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    if (!signed_in(b, c, in->msg_id))
        return;
    struct pv_room *r = pv__room_by_name(b, in->room, in->room_len);
    bool mod = pv_role_rank(c->role) >= 2;
    if (!r || (!pv__sees(c, r->id) && !(mod && strcmp(r->kind, "dm") != 0))) {
        not_member(b, c, in->msg_id);
        return;
    }
    if (r->id == PV_LOBBY_ID || strcmp(r->kind, "dm") == 0) {
        pv__send_error(b, c, "forbidden",
                       r->id == PV_LOBBY_ID ? "everyone is in the lobby"
                                            : "a direct message keeps its members",
                       in->msg_id);
        return;
    }
    if (r->archived) {
        pv__send_error(b, c, "archived", "that room is archived (read-only)", in->msg_id);
        return;
    }
    if (in->user_account <= 0) {
        pv__send_error(b, c, "no-user", "there is no account of that name", in->msg_id);
        return;
    }
    if (pv__member(r, in->user_account)) {
        pv__send_error(b, c, "already-member", "they are in that room already", in->msg_id);
        return;
    }
    add_member(b, r, in->user_account, in->user, "member", "invited", c);
}

static void on_dm(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    if (!signed_in(b, c, in->msg_id))
        return;
    if (in->user_account <= 0 || in->user_account == c->account) {
        pv__send_error(b, c, "no-user",
                       in->user_account == c->account ? "a direct message needs someone else"
                                                      : "there is no account of that name",
                       in->msg_id);
        return;
    }
    int64_t lo = c->account < in->user_account ? c->account : in->user_account;
    int64_t hi = c->account < in->user_account ? in->user_account : c->account;
    char name[64];
    snprintf(name, sizeof(name), "dm:%lld:%lld", (long long)lo, (long long)hi);
    struct pv_room *r = pv__room_by_name(b, name, strlen(name));
    if (!r) {
        if (b->rooms_n >= PV_ROOMS_MAX) {
            pv__send_error(b, c, "too-many-rooms", "this server has as many rooms as it keeps",
                           in->msg_id);
            return;
        }
        r = room_add(b, b->next_room, name, name, "dm", "");
        struct pv_store_room_op *op = pv__room_op(PV_OP_ROOM_CREATE, r, 0);
        op->name = sdup(name);
        op->key = sdup(name);
        op->by = c->account;
        member_add(r, c->account, c->name, "member", 3); /* created, and both joins */
        member_add(r, in->user_account, in->user, "member", 3);
        account_online(b, r, c->account, true);
        account_online(b, r, in->user_account, true);
        json_t *ev = room_json(r);
        json_object_set_new(ev, "action", json_string("created"));
        json_object_set_new(ev, "members",
                            json_pack("[o, o]", user_obj(c->name, c->account),
                                      user_obj(in->user, in->user_account)));
        post_event(b, r, ev, c, op);
        /* Both memberships, stored with an event each. */
        int64_t who[2] = {c->account, in->user_account};
        const char *names[2] = {c->name, in->user};
        for (int i = 0; i < 2; i++)
            post_event(b, r,
                       json_pack("{s:s, s:s, s:o, s:s}", "type", "member", "action", "joined",
                                 "user", user_obj(names[i], who[i]), "role", "member"),
                       NULL, member_op(r, who[i], 3));
    }
    reply(b, c,
          json_pack("{s:s, s:s, s:I, s:o}", "type", "dm", "room", r->name, "roomId",
                    (json_int_t)r->id, "with", user_obj(in->user, in->user_account)),
          in->msg_id);
}

static void on_topic(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (!r)
        return;
    bool dm = strcmp(r->kind, "dm") == 0;
    if (c->account <= 0 || (!dm && !room_mod(c, r))) {
        pv__send_error(b, c, "forbidden", "only the room's owner or a moderator sets its topic",
                       in->msg_id);
        return;
    }
    free(r->topic);
    r->topic = pv_xmalloc(in->topic_len + 1);
    memcpy(r->topic, in->topic, in->topic_len);
    r->topic[in->topic_len] = '\0';
    struct pv_store_room_op *op = pv__room_op(PV_OP_TOPIC, r, 0);
    op->topic = sdup(r->topic);
    json_t *ev = room_json(r);
    json_object_set_new(ev, "action", json_string("topic"));
    post_event(b, r, ev, c, op);
}

/* f (a JSON text frame of r's) with its "room" now `name`: a new frame,
 * one reference; NULL if f is not a JSON object (never: we encoded it). */
static struct pv_frame *with_room_name(const struct pv_frame *f, const char *name)
{
    size_t n;
    const unsigned char *p = pv_frame_payload(f, &n);
    json_t *o = json_loadb((const char *)p, n, 0, NULL);
    if (!json_is_object(o) || !json_object_get(o, "room")) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "room", json_string(name));
    struct pv_frame *g = pv_frame_from_json(o);
    json_decref(o);
    return g;
}

/* Renames r (docs/rooms.md, "Renaming"): its owner or a room moderator, a
 * room that is neither the lobby nor a DM nor archived, to a name no
 * other room has (a change of case or spacing of its own name is fine).
 * Everything that names r is rewritten so that no client ever meets the
 * old name again: the ring's entries of r (O(ring), once), its last
 * message, and in the store every row of r (O(its rows), in the event's
 * transaction). The event says "renamed" with the old name in "was". */
static void on_rename_room(struct pv_broadcaster *b, struct pv_client *c,
                           const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (!r)
        return;
    if (r->id == PV_LOBBY_ID || strcmp(r->kind, "dm") == 0) {
        pv__send_error(b, c, "bad-room", "the lobby and DMs keep their names", in->msg_id);
        return;
    }
    if (c->account <= 0 || !room_mod(c, r)) {
        pv__send_error(b, c, "forbidden", "only the room's owner or a moderator renames it",
                       in->msg_id);
        return;
    }
    if (r->archived) {
        pv__send_error(b, c, "archived", "this room is archived (read-only)", in->msg_id);
        return;
    }
    /* A rename rewrites every stored row of the room on the store writer
     * (O(its rows)): at most one per room per PV_RENAME_EVERY_MS, so an
     * owner cannot keep the store busy for everyone. */
    int64_t now = pv_now_ms();
    if (r->renamed_ms && now - r->renamed_ms < PV_RENAME_EVERY_MS) {
        pv__send_error(b, c, "busy", "this room was renamed less than a minute ago; try later",
                       in->msg_id);
        return;
    }
    char name[PV_NAME_MAX_BYTES + 1];
    char *key = room_name_free(b, c, in->name, in->name_len, r, name, in->msg_id);
    if (!key)
        return;
    r->renamed_ms = now;
    char *was = r->name;
    free(r->key);
    r->name = sdup(name);
    r->key = key;
    bool last_done = false; /* the room's last message was in the ring */
    for (size_t i = 0; i < b->hist.len; i++) {
        struct pv_history_entry *e = (struct pv_history_entry *)pv_history_at(&b->hist, i);
        struct pv_frame *g = e->room == r->id ? with_room_name(e->f, name) : NULL;
        if (g) {
            if (r->last == e->f) {
                pv__room_set_last(r, g);
                last_done = true;
            }
            pv_history_replace(&b->hist, e, g);
            pv_frame_unref(g);
        }
    }
    struct pv_frame *g = r->last && !last_done ? with_room_name(r->last, name) : NULL;
    if (g) { /* older than the ring */
        pv__room_set_last(r, g);
        pv_frame_unref(g);
    }
    struct pv_store_room_op *op = pv__room_op(PV_OP_RENAME, r, 0);
    op->name = sdup(r->name);
    op->key = sdup(r->key);
    json_t *ev = room_json(r);
    json_object_set_new(ev, "action", json_string("renamed"));
    json_object_set_new(ev, "was", json_string(was));
    char q1[160], q2[160];
    pv_log_quote(was, q1, sizeof(q1));
    pv_log_quote(r->name, q2, sizeof(q2));
    pv_info("room renamed id=%u from \"%s\" to \"%s\" by account=%lld from %s", r->id, q1, q2,
            (long long)c->account, c->peer);
    free(was);
    post_event(b, r, ev, c, op);
}

/* The room an admin's archive or delete names, if it may be: not the
 * lobby, not a DM; else NULL after telling c (`what`: "archive", "delete"). */
static struct pv_room *admin_room(struct pv_broadcaster *b, struct pv_client *c,
                                  const struct pv_inbound *in, const char *what)
{
    char why[64];
    if (pv_role_rank(c->role) < 3) {
        snprintf(why, sizeof(why), "only admins %s rooms", what);
        pv__send_error(b, c, "forbidden", why, in->msg_id);
        return NULL;
    }
    struct pv_room *r = pv__room_by_name(b, in->room, in->room_len);
    if (!r || r->id == PV_LOBBY_ID || strcmp(r->kind, "dm") == 0) {
        snprintf(why, sizeof(why), "that room cannot be %sd", what);
        pv__send_error(b, c, "bad-room", why, in->msg_id);
        return NULL;
    }
    return r;
}

static void on_archive(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = admin_room(b, c, in, "archive");
    if (!r || r->archived)
        return;
    json_t *ev = room_json(r);
    json_object_set_new(ev, "action", json_string("archived"));
    post_event(b, r, ev, c, pv__room_op(PV_OP_ARCHIVE, r, 0));
    r->archived = true;
}

/* Deletes a room (admins): its members hear it, everyone online in it
 * leaves it, its stored messages become tombstones without text, sender or
 * room (their seqs stay, so resumes see no hole), and its name is free.
 * What the ring holds of it is nobody's from now on. */
static void on_delete_room(struct pv_broadcaster *b, struct pv_client *c,
                           const struct pv_inbound *in)
{
    struct pv_room *r = admin_room(b, c, in, "delete");
    if (!r)
        return;
    json_t *ev = room_json(r);
    json_object_set_new(ev, "action", json_string("deleted"));
    post_event(b, r, ev, c, pv__room_op(PV_OP_ROOM_DELETE, r, 0));
    char q[2 * PV_NAME_MAX_BYTES + 8];
    pv_log_quote(r->name, q, sizeof(q));
    pv_notice("room deleted id=%u name=\"%s\" members=%u by account=%lld", r->id, q, r->members_n,
              (long long)c->account);
    while (r->online_n)
        detach(r, r->online[r->online_n - 1]);
    b->rooms[r->id] = NULL;
    b->rooms_n--;
    room_free(r);
}

/* A room's own retention (docs/rooms.md): its owner or a moderator sets
 * how many items and for how long it keeps (0: the server's limits only);
 * what is beyond it becomes tombstones, in memory at the next sweep and in
 * the database within a second. The lobby keeps what the server keeps. */
static void on_retention(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (!r)
        return;
    if (r->id == PV_LOBBY_ID) {
        pv__send_error(b, c, "bad-room", "the lobby keeps what the server keeps (--history-keep)",
                       in->msg_id);
        return;
    }
    bool dm = strcmp(r->kind, "dm") == 0;
    if (c->account <= 0 || (!dm && !room_mod(c, r))) {
        pv__send_error(b, c, "forbidden", "only the room's owner or a moderator sets its retention",
                       in->msg_id);
        return;
    }
    r->keep = in->keep;
    r->max_age_s = in->max_age_s;
    struct pv_store_room_op *op = pv__room_op(PV_OP_RETENTION, r, 0);
    op->keep = r->keep;
    op->max_age_s = r->max_age_s;
    json_t *ev = room_json(r);
    json_object_set_new(ev, "action", json_string("retention"));
    json_object_set_new(ev, "keep", json_integer(r->keep));
    json_object_set_new(ev, "maxAge", json_integer(r->max_age_s));
    post_event(b, r, ev, c, op);
    pv__rooms_expire(b, pv_now_ms());
}

void pv__rooms_expire(struct pv_broadcaster *b, int64_t now)
{
    bool any = false; /* O(rooms) to skip the O(ring) walk when no room asks */
    for (uint32_t i = PV_LOBBY_ID + 1; i < b->rooms_cap && !any; i++)
        any = b->rooms[i] && (b->rooms[i]->keep || b->rooms[i]->max_age_s);
    for (size_t h = 0; any && h < b->hist.len; h++) {
        struct pv_history_entry *e = pv_history_find(&b->hist, pv_history_at(&b->hist, h)->seq);
        struct pv_room *r = e && e->room != PV_LOBBY_ID ? pv__room(b, e->room) : NULL;
        if (!r || (!r->keep && !r->max_age_s) || !e->message)
            continue;
        bool over = (r->keep && e->rseq + r->keep <= r->rseq) ||
                    (r->max_age_s && e->date < now - (int64_t)r->max_age_s * 1000);
        if (!over)
            continue;
        if (r->last == e->f) { /* the room list shows no expired text either */
            pv_frame_unref(r->last);
            r->last = NULL;
        }
        struct pv_frame *t = pv_proto_tombstone(r->name, e->seq, e->rseq, e->date, now);
        pv_history_replace(&b->hist, e, t);
        pv_frame_unref(t);
        e->message = false;
    }
}

static void on_members(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    struct pv_room *r = pv__room_of(b, c, in);
    if (!r)
        return;
    json_t *list = json_array();
    size_t total;
    if (r->id == PV_LOBBY_ID) { /* everyone: those online are its members */
        size_t n;
        struct pv_user *u = pv__listed_users(b, &n);
        for (size_t i = 0; i < n; i++) {
            json_t *o = user_obj(u[i].name, u[i].account);
            json_object_set_new(o, "role", json_string(u[i].role));
            json_object_set_new(o, "online", json_true());
            json_array_append_new(list, o);
        }
        free(u);
        total = pv_registry_count(&b->reg);
    } else {
        for (uint32_t i = 0; i < r->members_n && i < PV_MEMBERS_LIST; i++) {
            json_t *o = user_obj(r->members[i].name, r->members[i].account);
            json_object_set_new(o, "role", json_string(r->members[i].role));
            json_object_set_new(o, "online", json_boolean(r->members[i].conns > 0));
            pv__receipts_annotate(b, r, c, &r->members[i], o);
            json_array_append_new(list, o);
        }
        /* Guests in it (--guest-rooms): members while connected. */
        for (uint32_t i = 0; i < r->online_n && json_array_size(list) < PV_MEMBERS_LIST; i++) {
            if (r->online[i]->account > 0)
                continue;
            json_t *o = user_obj(r->online[i]->name, 0);
            json_object_set_new(o, "role", json_string("guest"));
            json_object_set_new(o, "online", json_true());
            json_array_append_new(list, o);
        }
        total = r->members_n + r->guests_online;
    }
    reply(b, c,
          json_pack("{s:s, s:s, s:I, s:o, s:I}", "type", "members", "room", r->name, "roomId",
                    (json_int_t)r->id, "members", list, "count", (json_int_t)total),
          in->msg_id);
}

static json_t *list_entry(struct pv_broadcaster *b, struct pv_client *c, struct pv_room *r)
{
    struct pv_member *m = pv__member(r, c->account);
    uint64_t last_read = m ? m->last_read : 0;
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I, s:b}", "room", r->name, "roomId",
                          (json_int_t)r->id, "kind", r->kind, "topic", r->topic, "rseq",
                          (json_int_t)r->rseq, "archived", r->archived);
    if (c->account > 0) {
        json_object_set_new(o, "lastRead", json_integer((json_int_t)last_read));
        json_object_set_new(o, "unread", json_integer((json_int_t)(r->rseq - last_read)));
    }
    if (m)
        json_object_set_new(o, "role", json_string(m->role));
    if (r->keep)
        json_object_set_new(o, "keep", json_integer(r->keep));
    if (r->max_age_s)
        json_object_set_new(o, "maxAge", json_integer(r->max_age_s));
    if (r->id == PV_LOBBY_ID) {
        json_object_set_new(o, "online", json_integer((json_int_t)pv_registry_count(&b->reg)));
    } else {
        json_object_set_new(o, "online", json_integer(r->people_online + r->guests_online));
        json_object_set_new(o, "members", json_integer(r->members_n));
    }
    if (strcmp(r->kind, "dm") == 0) {
        json_t *with = json_array();
        for (uint32_t i = 0; i < r->members_n; i++)
            if (r->members[i].account != c->account)
                json_array_append_new(with, user_obj(r->members[i].name, r->members[i].account));
        json_object_set_new(o, "with", with);
    }
    if (r->last) {
        size_t len;
        const unsigned char *p = pv_frame_payload(r->last, &len);
        json_t *last = json_loadb((const char *)p, len, 0, NULL);
        if (last)
            json_object_set_new(o, "last", last);
    }
    return o;
}

/* {"type":"rooms"}: the person's rooms, each with its last message,
 * unread count and members online, and the public rooms they could join.
 * O(rooms): it starts from the person's own list for what it shows. */
static void on_list(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    json_t *mine = json_array(), *open = json_array();
    json_array_append_new(mine, list_entry(b, c, pv__room(b, PV_LOBBY_ID)));
    for (uint32_t i = 0; i < c->rooms_n; i++)
        json_array_append_new(mine, list_entry(b, c, c->rooms[i].r));
    bool may_join = c->account > 0 || guests_welcome(b);
    for (uint32_t i = PV_LOBBY_ID + 1; may_join && i < b->rooms_cap; i++) {
        struct pv_room *r = b->rooms[i];
        if (!r || r->archived || strcmp(r->kind, "private") == 0 || strcmp(r->kind, "dm") == 0 ||
            pv__sees(c, r->id) || json_array_size(open) >= PV_DISCOVER_MAX)
            continue;
        json_array_append_new(open, json_pack("{s:s, s:I, s:s, s:s, s:I}", "room", r->name,
                                              "roomId", (json_int_t)r->id, "kind", r->kind, "topic",
                                              r->topic, "members", (json_int_t)r->members_n));
    }
    reply(b, c, json_pack("{s:s, s:o, s:o}", "type", "rooms", "rooms", mine, "public", open),
          in->msg_id);
}

void pv__on_room(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    switch (in->op) {
    case PV_ROOM_LIST:
        on_list(b, c, in);
        break;
    case PV_ROOM_CREATE:
        on_create(b, c, in);
        break;
    case PV_ROOM_JOIN:
        on_join(b, c, in);
        break;
    case PV_ROOM_LEAVE:
        on_leave(b, c, in);
        break;
    case PV_ROOM_INVITE:
        on_invite(b, c, in);
        break;
    case PV_ROOM_DM:
        on_dm(b, c, in);
        break;
    case PV_ROOM_TOPIC:
        on_topic(b, c, in);
        break;
    case PV_ROOM_READ:
        pv__on_read(b, c, in);
        break;
    case PV_ROOM_RECEIVED:
        pv__on_received(b, c, in);
        break;
    case PV_ROOM_SEEN:
        pv__on_seen(b, c, in);
        break;
    case PV_ROOM_MEMBERS:
        on_members(b, c, in);
        break;
    case PV_ROOM_ARCHIVE:
        on_archive(b, c, in);
        break;
    case PV_ROOM_DELETE:
        on_delete_room(b, c, in);
        break;
    case PV_ROOM_RETENTION:
        on_retention(b, c, in);
        break;
    case PV_ROOM_RENAME:
        on_rename_room(b, c, in);
        break;
    case PV_ROOM_REMOVE:
        on_remove(b, c, in);
        break;
    }
}

/* An account's new name (PV_EV_MOD rename) in every room it is in. */
void pv__rooms_rename(struct pv_broadcaster *b, int64_t account, const char *name)
{
    for (uint32_t i = 0; i < b->rooms_cap; i++) {
        struct pv_member *m = b->rooms[i] ? pv__member(b->rooms[i], account) : NULL;
        if (m) {
            free(m->name);
            m->name = sdup(name);
        }
    }
}
