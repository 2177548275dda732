/* broadcaster.c -- the broadcaster thread: its loop, event dispatch,
 * chat (seq numbers, held acks), join and leave runs, presence, kicks and
 * shutdown. The rest of its work is in the files beside it (internal.h
 * lists them).
 *
 * Threads: runs on the broadcaster thread only (see broadcaster.h), but
 * pv_broadcaster_start() and pv_broadcaster_join(), which run on main
 * before the thread starts and after it has left its loop. It reads other
 * threads' data only through the queue (events), the writer pool's outbox
 * protocol and clients' written_bytes counters. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "palaver/accounts.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/limits.h"
#include "palaver/log.h"
#include "palaver/proto.h"
#include "palaver/publish.h"
#include "palaver/queue.h"
#include "palaver/stats.h"
#include "palaver/store.h"
#include "palaver/wake.h"
#include "palaver/writer.h"

#define POP_BATCH 256

/* A run of consecutive JOIN events: a reconnect burst arrives as one. Each
 * newcomer gets its id, one presence snapshot shared by the whole run
 * (encoded once), and the history, before any live message; everyone else
 * gets one join notice naming them all (presence.c, which also coalesces
 * notices over time). Per burst this is O(n) encoding and deliveries,
 * where one notice and one snapshot per join would be O(n^2) for n
 * clients reconnecting at once. */
static void on_join_run(struct pv_broadcaster *b, struct pv_event **ev, size_t k)
{
    int64_t now = pv_now_ms();
    struct pv_client **cs = pv_xcalloc(k, sizeof(*cs));
    struct pv_user *joined = pv_xcalloc(k, sizeof(*joined));
    const char **why = pv_xcalloc(k, sizeof(*why)); /* NULL: name fine or none */
    struct pv_join_req *jr = pv_xcalloc(k, sizeof(*jr));
    const char **code = pv_xcalloc(k, sizeof(*code)); /* the error of why[i] */

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = cs[i] = ev[i]->client;
        ev[i]->client = NULL; /* the event's reference becomes the registry's */
        if (ev[i]->len == sizeof(jr[i]))
            memcpy(&jr[i], ev[i]->data, sizeof(jr[i]));
        pv_new_key(c->key);
        pv_new_id(c->id);
        /* A chosen name passes the profile and is free among those online
         * (the first of a burst wins); otherwise a guest name, and the
         * client is told why. */
        if (jr[i].account > 0) {
            /* Signed in (the worker checked the session): the account's
             * name, which no guest may take (accounts.h), and its role.
             * Two tabs of one person share it, so it is not claimed. */
            c->account = jr[i].account;
            c->session = jr[i].session;
            c->muted_until = jr[i].muted_until;
            snprintf(c->role, sizeof(c->role), "%s", jr[i].role);
            snprintf(c->name, sizeof(c->name), "%.*s", (int)jr[i].name_len, jr[i].name);
        } else {
            snprintf(c->role, sizeof(c->role), "guest");
            if (jr[i].name_reserved) {
                code[i] = "name-taken";
                why[i] = "that name belongs to an account: sign in to use it";
            }
            if (jr[i].name_len == 0 || why[i] ||
                !pv_name_check(jr[i].name, jr[i].name_len, c->name, &why[i]) ||
                (code[i] = pv__name_claim(b, c, c->name, &why[i])) != NULL)
                snprintf(c->name, sizeof(c->name), "guest-%.4s", c->id);
        }
        c->joining = true;
        c->joined_ns = pv_mono_ns();
        c->grace_end = UINT64_MAX; /* set once its join history is queued */
        c->reads =
            (struct pv_rate){.tokens = b->d.cfg->history_rate * 8.0, .last_ns = c->joined_ns};
        pv_registry_add(&b->reg, c);
        pv__rooms_attach(b, c);
        pv_stat_add(&b->d.stats->clients, 1);
        joined[i] = pv__user_of(c);
    }
    size_t listed, n = pv_registry_count(&b->reg);
    struct pv_user *users = pv__listed_users(b, &listed);
    /* A few snapshots per burst: one per history count (the ring's
     * messages this client may see: docs/rooms.md), and with 0 for
     * clients resuming (their resume or reset message counts). A burst of
     * guests shares one. */
#define SNAPSHOTS 4
    struct snapshot {
        size_t count;
        struct pv_frame *f;
    } snap[SNAPSHOTS];
    size_t snaps = 0;
    struct pv_frame **presence = pv_xcalloc(k, sizeof(*presence));
    size_t everything = b->hist.len;
    bool foreign = false; /* the ring holds messages of rooms other than the lobby */
    for (size_t h = 0; h < b->hist.len && !foreign; h++)
        foreign = pv_history_at(&b->hist, h)->room != PV_LOBBY_ID;
    size_t lobby_only = foreign ? pv__visible(b, NULL, 0, b->hist.len) : everything;
    for (size_t i = 0; i < k; i++) {
        size_t count = jr[i].has_since       ? 0
                       : !foreign            ? everything
                       : cs[i]->rooms_n == 0 ? lobby_only
                                             : pv__visible(b, cs[i], 0, b->hist.len);
        for (size_t s = 0; s < snaps && !presence[i]; s++)
            if (snap[s].count == count)
                presence[i] = pv_frame_ref(snap[s].f);
        if (presence[i])
            continue;
        presence[i] = pv_proto_presence(users, listed, n, count, b->seq, now);
        if (snaps < SNAPSHOTS)
            snap[snaps++] = (struct snapshot){count, pv_frame_ref(presence[i])};
    }
    free(users);

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = cs[i];
        pv__deliver(b, c, pv_proto_id(c->key, &joined[i], b->run_id, b->d.cfg->max_text, now));
        if (why[i])
            pv__send_error(b, c, code[i] ? code[i] : "bad-name", why[i], NULL);
        if (jr[i].bad_since)
            pv__send_error(b, c, "bad-since", "?since= must be a seq (an integer >= 0)", NULL);
        pv__deliver(b, c, presence[i]); /* the array's reference moves */
        if (jr[i].has_since && !b->draining)
            pv__resume(b, c, jr[i].since, jr[i].server);
        else if (!jr[i].has_since && c->dialect == PV_DIALECT_SIO)
            ; /* greeted when its namespace is connected (OPEN) */
        else if (!jr[i].has_since && c->dialect != PV_DIALECT_PALAVER)
            pv__dialect_greet(b, c);
        else if (!jr[i].has_since)
            pv__send_history(b, c, 0, b->hist.len);
        /* Aggregated under churn (a few lines per second at info level and
         * a count of the rest); every line at debug level. */
        static struct pv_log_limit join_lim = PV_LOG_LIMIT("join lines");
        bool loud = pv_log_limited(&join_lim, PV_LOG_INFO, 50);
        if (loud || pv_log_enabled(PV_LOG_DEBUG)) {
            char q[2 * PV_NAME_MAX_BYTES + 8];
            pv_log_quote(c->name, q, sizeof(q));
            pv_log(loud ? PV_LOG_INFO : PV_LOG_DEBUG, "join id=%s peer=%s name=\"%s\" online=%zu",
                   c->id, c->peer, q, n);
        }
        c->grace_end = c->queued_bytes;
        if (b->draining && pv_client_close_decide(c, 1001, NULL)) {
            pv__queue_close(b, c, 1001, "server shutting down", false); /* arrived during it */
        }
    }
    for (size_t s = 0; s < snaps; s++)
        pv_frame_unref(snap[s].f);
    free(presence);
    for (size_t i = 0; i < k; i++) {
        pv__presence_join(b, cs[i]);
        cs[i]->joining = false;
    }
    free(cs);
    free(joined);
    free(why);
    free(code);
    free(jr);
}

/* A run of consecutive LEAVE events: one leave notice names them all
 * (presence.c). */
#define CHURN_NS 2000000000ull

static void on_leave_run(struct pv_broadcaster *b, struct pv_event **ev, size_t k)
{
    uint64_t now = pv_mono_ns();
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
        if (loud || pv_log_enabled(PV_LOG_DEBUG)) {
            char q[2 * PV_NAME_MAX_BYTES + 8];
            pv_log_quote(c->name, q, sizeof(q));
            pv_log(loud ? PV_LOG_INFO : PV_LOG_DEBUG,
                   "leave id=%s peer=%s name=\"%s\" reason=\"%s\" online=%zu", c->id, c->peer, q,
                   ev[i]->data, pv_registry_count(&b->reg));
        }
        pv__presence_leave(b, c);
        pv__name_release(b, c);
        pv__typing_forget(b, c);
        pv__rooms_detach(b, c);
        gone[m++] = c; /* the registry's reference, dropped below */
    }
    for (size_t i = 0; i < m; i++)
        pv_client_unref(gone[i]);
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
        const char *refused =
            c->resuming ? "a resume is already being read" : pv__reads_refused(b, c);
        if (refused) {
            pv__send_error(b, c, "busy", refused, in->msg_id);
        } else {
            c->reads_charged = true;
            c->grace_end = UINT64_MAX;
            pv__resume(b, c, in->since, in->server);
            c->reads_charged = false;
            if (!c->resuming)
                c->grace_end = c->queued_bytes; /* the replay from memory */
        }
    }
    if (!in->name)
        return; /* a hello without a name changes no name */
    if (c->account > 0) {
        if (in->name_len != strlen(c->name) || memcmp(in->name, c->name, in->name_len) != 0)
            pv__send_error(b, c, "bad-name", "signed in: your name is your account's", in->msg_id);
        return;
    }
    if (in->name_reserved) {
        pv__send_error(b, c, "name-taken", "that name belongs to an account: sign in to use it",
                       in->msg_id);
        return;
    }
    if (!pv_name_check(in->name, in->name_len, name, &why)) {
        pv__send_error(b, c, "bad-name", why, in->msg_id);
        return;
    }
    if (strcmp(name, c->name) == 0)
        return;
    const char *code = pv__name_claim(b, c, name, &why);
    if (code) {
        pv__send_error(b, c, code, why, in->msg_id);
        return;
    }
    if (c->join_pending)
        pv__presence_flush(b, true); /* its join first, under the old name */
    memcpy(old, c->name, sizeof(old));
    memcpy(c->name, name, sizeof(c->name));
    struct pv_user u = pv__user_of(c);
    char qo[2 * PV_NAME_MAX_BYTES + 8], qn[2 * PV_NAME_MAX_BYTES + 8];
    pv_log_quote(old, qo, sizeof(qo));
    pv_log_quote(c->name, qn, sizeof(qn));
    pv_info("rename id=%s peer=%s from=\"%s\" to=\"%s\"", c->id, c->peer, qo, qn);
    /* Everyone, the renamed client included: it learns the name was taken. */
    pv__fanout(b, pv_proto_rename(&u, old, pv_now_ms()), NULL);
}

static void hold_ack(struct pv_broadcaster *b, struct pv_client *c, struct pv_publish *publish,
                     uint64_t seq, uint64_t rseq, const json_t *msg_id, int64_t now)
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
    b->acks[b->acks_head + b->acks_n++] =
        (struct held_ack){c ? pv_client_ref(c) : NULL,
                          publish,
                          seq,
                          rseq,
                          msg_id ? json_incref((json_t *)msg_id) : NULL,
                          now};
}

/* True if the store lost `seq` (a full database); ranges before it are
 * dropped as acks only go forward. Every range at or below the store's
 * decided seq has been taken (store.h: pushed before publishing). */
static bool seq_lost(struct pv_broadcaster *b, uint64_t seq)
{
    uint64_t from, to;
    while (pv_store_take_lost(b->d.store, &from, &to)) {
        if (b->lost_n == b->lost_cap) {
            b->lost_cap = b->lost_cap ? b->lost_cap * 2 : 8;
            b->lost = pv_xrealloc(b->lost, b->lost_cap * sizeof(*b->lost));
        }
        b->lost[b->lost_n++] = (struct lost_seqs){from, to};
    }
    size_t drop = 0;
    while (drop < b->lost_n && b->lost[drop].to < seq)
        drop++;
    if (drop) {
        memmove(b->lost, b->lost + drop, (b->lost_n - drop) * sizeof(*b->lost));
        b->lost_n -= drop;
    }
    return b->lost_n && b->lost[0].from <= seq;
}

/* Sends the acks the store's commits allow; a message the store lost (a
 * full database), or any message once the store has failed, gets
 * "not-stored" instead: relayed, but not in the history. */
static void release_acks(struct pv_broadcaster *b)
{
    if (!b->d.store || b->acks_n == 0)
        return;
    uint64_t done = pv_store_decided(b->d.store);
    bool failed = pv_store_failure(b->d.store) != NULL;
    while (b->acks_n) {
        struct held_ack *a = &b->acks[b->acks_head];
        if (a->seq > done && !failed)
            break;
        bool stored = a->seq <= done && !seq_lost(b, a->seq);
        if (a->publish) {
            pv_publish_answer(a->publish, a->seq, a->now, stored ? NULL : "not-stored",
                              stored ? NULL
                                     : "relayed to everyone online, but not stored (the history "
                                       "store failed or the database is full)");
            pv_publish_unref(a->publish);
        } else if (a->c->index != SIZE_MAX && !a->c->closing) {
            if (stored)
                pv__deliver(b, a->c, pv_proto_ack(a->msg_id, a->seq, a->rseq, a->now));
            else
                pv__send_error(b, a->c, "not-stored",
                               failed ? "relayed to everyone online, but not stored: the history "
                                        "store failed"
                                      : "relayed to everyone online, but not stored: the history "
                                        "database is full (palaverd keeps trying)",
                               a->msg_id);
        }
        if (a->c)
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
    if (c->join_pending)
        pv__presence_flush(b, true); /* nobody reads a message before its sender's join */
    int64_t now = pv_now_ms();
    if (pv__muted(b, c, in->msg_id, now))
        return;
    /* The room it names (none: the lobby), if the sender is in it. */
    struct pv_room *r = in->room ? pv__room_of(b, c, in) : pv__room(b, PV_LOBBY_ID);
    if (!r)
        return;
    if (r->archived) {
        pv__send_error(b, c, "archived", "that room is archived (read-only)", in->msg_id);
        return;
    }
    if (strcmp(r->kind, "announcement") == 0 && pv_role_rank(c->role) < 2) {
        pv__send_error(b, c, "forbidden", "only moderators post in an announcement room",
                       in->msg_id);
        return;
    }
    struct pv_user from = pv__user_of(c);
    uint64_t seq = ++b->seq, rseq = ++r->rseq;
    if (r->id == PV_LOBBY_ID)
        b->rseq = rseq;
    struct pv_frame *f = pv_proto_message(in, &from, r->name, seq, rseq, now);

    pv_stat_add(&b->d.stats->messages_in, 1);
    struct pv_store_msg *m = pv__record(b, f, r->id, seq, rseq, now, c->account, true, c->addr);
    if (m) {
        m->files = in->files != NULL;
        /* The ack waits for the commit: an acknowledged message is on disk.
         * The store writes the frame's payload: encoded once, no copy. */
        pv_store_append(b->d.store, m);
        hold_ack(b, c, NULL, seq, rseq, in->msg_id, now);
    } else if (pv__store_failed(b)) {
        pv__send_error(b, c, "not-stored",
                       "relayed to everyone online, but not stored: the history store failed",
                       in->msg_id);
    } else {
        pv__deliver(b, c, pv_proto_ack(in->msg_id, seq, rseq, now));
    }
    pv__room_fanout(b, r, f, c);
    /* The seeds' dialects show a message only when it comes back. */
    if (pv_dialect_echoes((enum pv_dialect)c->dialect))
        pv__deliver(b, c, pv_frame_ref(f));
    pv_stat_add(&b->d.stats->dialect_in[c->dialect < PV_DIALECTS ? c->dialect : 0], 1);
    pv__receipts_sent(b, r, rseq, c); /* delivery, derived from the writers' progress */
    pv__typing_stop(b, r, c);         /* a message ends its sender's typing there */
    pv_debug("message seq=%llu from id=%s room=%u bytes=%zu", (unsigned long long)seq, c->id, r->id,
             in->text_len);
}

struct pv_store_msg *pv__record(struct pv_broadcaster *b, struct pv_frame *f, uint32_t room,
                                uint64_t seq, uint64_t rseq, int64_t now, int64_t account,
                                bool message, const char *sender)
{
    pv_history_push(&b->hist, f, seq, now);
    struct pv_history_entry *e = pv_history_find(&b->hist, seq);
    if (e) { /* who may see it (rooms.c), edit or delete it (moderation.c) */
        e->account = account;
        e->message = message;
        e->rseq = rseq;
        e->room = room;
    }
    struct pv_room *r = pv__room(b, room);
    if (message && r)
        pv__room_set_last(r, f);
    if (!b->d.store || pv_store_failure(b->d.store))
        return NULL;
    struct pv_store_msg *m = pv_xcalloc(1, sizeof(*m));
    m->seq = seq;
    m->server_date = now;
    m->frame = pv_frame_ref(f);
    m->rseq = rseq;
    m->room = room;
    snprintf(m->sender, sizeof(m->sender), "%s", sender);
    return m;
}

/* A chat message published over HTTP by a bot's token (publish.h):
 * ordered, stored and fanned out like a WebSocket message (to the room's
 * online members, all of them: its sender has no connection), answered
 * with its seq once stored. A bot speaks as its account: in the lobby, or
 * in a room that account is a member of (the same rules as a person's). */
static void on_publish(struct pv_broadcaster *b, struct pv_event *ev)
{
    struct pv_publish *p = ev->publish;
    int64_t now = pv_now_ms();
    if (b->draining) {
        pv_publish_answer(p, 0, 0, "busy", "the server is shutting down");
        return;
    }
    if (p->muted_until > now) {
        pv_publish_answer(p, 0, 0, "muted", "a moderator muted this account");
        return;
    }
    struct pv_room *r =
        ev->in.room ? pv__room_by_name(b, ev->in.room, ev->in.room_len) : pv__room(b, PV_LOBBY_ID);
    if (!r || (r->id != PV_LOBBY_ID && !pv__member(r, p->account))) {
        pv_publish_answer(p, 0, 0, "not-a-member",
                          "this token's account is not a member of that room (or there is none)");
        return;
    }
    if (r->archived) {
        pv_publish_answer(p, 0, 0, "archived", "that room is archived (read-only)");
        return;
    }
    if (strcmp(r->kind, "announcement") == 0 && pv_role_rank(p->role) < 2) {
        pv_publish_answer(p, 0, 0, "forbidden", "only moderators post in an announcement room");
        return;
    }
    char id[PV_ID_LEN + 1];
    snprintf(id, sizeof(id), "api%013llx", (unsigned long long)p->account & 0xfffffffffffffull);
    struct pv_user from = {.id = id, .name = p->name, .role = p->role, .account = p->account};
    uint64_t seq = ++b->seq, rseq = ++r->rseq;
    if (r->id == PV_LOBBY_ID)
        b->rseq = rseq;
    struct pv_frame *f = pv_proto_message(&ev->in, &from, r->name, seq, rseq, now);
    pv_stat_add(&b->d.stats->messages_in, 1);
    char sender[32]; /* retention counts a bot's messages under its account */
    snprintf(sender, sizeof(sender), "api:%lld", (long long)p->account);
    struct pv_store_msg *m = pv__record(b, f, r->id, seq, rseq, now, p->account, true, sender);
    if (m) {
        m->files = ev->in.files != NULL;
        pv_store_append(b->d.store, m);
        hold_ack(b, NULL, p, seq, 0, NULL, now); /* the event's reference moves there */
        ev->publish = NULL;
    } else {
        pv_publish_answer(p, seq, now, pv__store_failed(b) ? "not-stored" : NULL,
                          "relayed to everyone online, but not stored: the history store failed");
    }
    pv__room_fanout(b, r, f, NULL);
}

static void on_msg(struct pv_broadcaster *b, struct pv_event *ev)
{
    struct pv_client *c = ev->client;
    const struct pv_inbound *in = &ev->in; /* decoded by the worker (queue.h) */

    if (c->index == SIZE_MAX || c->closing || b->draining)
        return; /* gone or going: nobody is left to answer */
    switch (in->type) {
    case PV_IN_MESSAGE:
        on_chat(b, c, in);
        break;
    case PV_IN_HELLO:
        on_hello(b, c, in);
        break;
    case PV_IN_HISTORY:
        pv__on_history(b, c, in);
        break;
    case PV_IN_EDIT:
        pv__on_edit(b, c, in);
        break;
    case PV_IN_DELETE:
        pv__on_delete(b, c, in);
        break;
    case PV_IN_ROOM:
        pv__on_room(b, c, in);
        break;
    case PV_IN_TYPING:
        pv__on_typing(b, c, in);
        break;
    case PV_IN_SETTINGS:
        pv__on_settings(b, c, in);
        break;
    case PV_IN_INVALID:
        pv_debug("bad message from id=%s peer=%s: %s", c->id, c->peer, in->err_msg);
        pv__send_error(b, c, in->err_code, in->err_msg, in->msg_id);
        break;
    }
}

/* The client's worker closes it (protocol violation, flood). The close
 * frame goes out through the client's outbox, after the acks and replies
 * to the messages that came before the offence: the queue keeps each
 * worker's events in order. */
static void on_kick(struct pv_broadcaster *b, struct pv_event *ev)
{
    struct pv_client *c = ev->client;
    char reason[124];
    if (c->index == SIZE_MAX || c->close_queued)
        return; /* gone already, or our close frame is out (a KICK only comes
                 * from the thread that decided: client.h) */
    snprintf(reason, sizeof(reason), "%.*s", (int)ev->len, ev->data);
    pv__queue_close(b, c, (uint16_t)ev->code, reason, false);
}

static void on_shutdown(struct pv_broadcaster *b)
{
    b->draining = true;
    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *c = b->reg.v[i];
        if (c->closing || !pv_client_close_decide(c, 1001, NULL))
            continue; /* closing for another reason already */
        pv__queue_close(b, c, 1001, "server shutting down", false);
    }
    pv_info("shutdown: closing %zu client(s) with 1001", b->reg.n);
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
        case PV_EV_OPEN:
            pv__dialect_open(b, ev[i]->client);
            break;
        case PV_EV_PUBLISH:
            on_publish(b, ev[i]);
            break;
        case PV_EV_SHUTDOWN:
            on_shutdown(b);
            break;
        case PV_EV_KICK:
            on_kick(b, ev[i]);
            break;
        case PV_EV_MOD:
            if (ev[i]->len == sizeof(struct pv_mod_req)) {
                struct pv_mod_req r; /* data[] need not be aligned for it */
                memcpy(&r, ev[i]->data, sizeof(r));
                pv__on_mod(b, &r);
            }
            break;
        case PV_EV_REFUSED:
            pv__list_push(&b->refused, ev[i]->client);
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
    pthread_setname_np(pthread_self(), "pv-broadcaster");
    struct pv_broadcaster *b = arg;
    struct pv_event *ev[POP_BATCH];
    uint64_t last_tick = 0;
    bool busy = false;

    while (!b->stop) {
        uint64_t now = pv_mono_ns();
        if (now - last_tick >= 50000000ull) {
            busy = pv_writers_tick(b->d.writers);
            last_tick = now;
        }
        if (now - b->last_sweep >= b->sweep_every) {
            /* Retention by age applies to memory too: the oldest go first. */
            if (b->d.cfg->history_max_age_s)
                pv_history_expire(&b->hist,
                                  pv_now_ms() - (int64_t)b->d.cfg->history_max_age_s * 1000);
            pv__rooms_expire(b, pv_now_ms()); /* rooms with retention of their own */
            pv__sweep(b, now);
            b->last_sweep = now;
        }
        /* Writers behind: take no new events (the queue fills and senders
         * feel it) until the congested clients' backlogs come down. Store
         * commits and answers are still handled meanwhile (acks go out). */
        bool paused = b->congested.n && pv__relieve(b);
        size_t n = paused ? 0 : pv_queue_pop(b->d.queue, ev, POP_BATCH);
        /* Progress, for /healthz and the systemd watchdog (main reads it):
         * the fanout moves when events are taken or none wait. A loop that
         * turns while paused with events waiting is not progress: paused
         * for good (a bug), it stops the watchdog pings and systemd
         * restarts the service. */
        if (!paused || pv_queue_empty(b->d.queue))
            b->progress_ns = now;
        atomic_store_explicit(&b->d.stats->heartbeat, b->progress_ns, memory_order_relaxed);
        /* Lag for /healthz: a loop that turns but falls behind its queue
         * (a flood of costly events), or that is paused while events wait,
         * is not healthy either. */
        uint64_t lag = n ? pv_mono_ns() - ev[0]->queued_ns : paused ? now - b->progress_ns : 0;
        atomic_store_explicit(&b->d.stats->queue_lag_ns, lag, memory_order_relaxed);
        handle(b, ev, n);
        /* The ring's size for /metrics, published before this cycle's
         * replies reach the writers: whoever got a reply sees it counted. */
        atomic_store_explicit(&b->d.stats->history, b->hist.len, memory_order_relaxed);
        pv__presence_flush(b, false);
        uint64_t after = pv_mono_ns();
        int receipts = pv__receipts_flush(b, after), typing = pv__typing_flush(b, after);
        pv__store_news(b);
        release_acks(b);
        pv__flush(b);
        if (n == 0 && !b->stop) {
            /* Park on every channel this thread consumes (wake.h): the
             * event queue (not while paused), the store's commits and
             * answers, and the writers' progress while a client is
             * congested. Tick sooner while a client is congested (its
             * backlog is re-examined) or writers are busy (a stalled
             * writer is replaced quickly). */
            struct pv_wake *w[3] = {
                paused ? NULL : pv_queue_wake(b->d.queue),
                b->d.store ? pv_store_wake(b->d.store) : NULL,
                b->congested.n ? pv_writers_wake(b->d.writers) : NULL,
            };
            int timeout = b->congested.n ? 10 : busy ? 50 : (int)(b->sweep_every / 1000000u);
            int presence = pv__presence_wait_ms(b); /* notices waiting for their window */
            if (presence >= 0 && presence < timeout)
                timeout = presence;
            if (receipts >= 0 && receipts < timeout) /* positions due, or writes watched */
                timeout = receipts;
            if (typing >= 0 && typing < timeout) /* a list due, or a typist to expire */
                timeout = typing;
            pv_wake_wait(w, 3, timeout);
        }
    }
    return NULL;
}

/* pv_store_before() callback: a stored message back into the ring. */
static void preload(void *ud, uint64_t seq, int64_t server_date, const char *json, size_t len)
{
    struct pv_broadcaster *b = ud;
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, json, len);
    pv_history_push(&b->hist, f, seq, server_date);
    pv_frame_unref(f);
    struct pv_history_entry *e = pv_history_find(&b->hist, seq);
    if (!e)
        return;
    /* Who may see it, edit it or delete it, once at start. */
    char room[PV_ROOM_NAME_MAX_BYTES + 1];
    e->account = pv_proto_author(json, len, &e->message, &e->rseq, room);
    struct pv_room *r = pv__room_by_name(b, room, strlen(room));
    /* A message of a room that is not open (skipped at load) is nobody's:
     * it stays out of every replay. */
    e->room = r ? r->id : UINT32_MAX;
    if (r && e->message)
        pv__room_set_last(r, e->f);
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
    pv_history_init(&b->hist, deps->cfg->history);
    if (deps->store) {
        /* seq continues where the stored history ends; newcomers get the
         * last messages from before the restart. */
        b->seq = pv_store_last_seq(deps->store);
        b->rseq = pv_store_last_rseq(deps->store);
    }
    pv__rooms_load(b); /* the lobby, and with a store every stored room */
    pv__receipts_load(b);
    if (deps->store) {
        /* A store failed from the start (read-only) cannot record the seq
         * numbers given out now: they get a numbering of their own. */
        if (!pv_store_failure(deps->store))
            snprintf(b->run_id, sizeof(b->run_id), "%s", pv_store_id(deps->store));
        if (deps->cfg->history &&
            pv_store_before(deps->store, b->seq + 1, deps->cfg->history, preload, b) < 0)
            pv_warn("could not read the stored history back; starting with none in memory");
        pv_info("history store: last seq %llu, %zu messages loaded for newcomers",
                (unsigned long long)b->seq, b->hist.len);
    }
    err = pthread_create(&b->thread, NULL, broadcaster_main, b);
    if (err) {
        pv_err("cannot start the broadcaster thread: %s", strerror(err));
        pv_history_destroy(&b->hist);
        pv__rooms_free(b);
        pv__receipts_free(b);
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
    pv__reads_drop(b);
    pv__flush(b);
    for (size_t i = 0; i < b->acks_n; i++) {
        struct held_ack *a = &b->acks[b->acks_head + i];
        if (a->c)
            pv_client_unref(a->c);
        if (a->publish) {
            pv_publish_answer(a->publish, 0, 0, "unavailable", "the server stopped");
            pv_publish_unref(a->publish);
        }
        json_decref(a->msg_id);
    }
    free(b->acks);
    free(b->lost);
    pv__presence_free(b);
    pv__list_free(&b->congested);
    pv__list_free(&b->refused);
    /* Clients still registered at the end (they had not left when the
     * loop stopped): out of their rooms first, so their back-slot arrays
     * go with them (a leak under ASan otherwise). */
    for (size_t i = 0; i < b->reg.n; i++)
        pv__rooms_detach(b, b->reg.v[i]);
    pv_registry_destroy(&b->reg);
    pv_history_destroy(&b->hist);
    pv__rooms_free(b);
    pv__receipts_free(b);
    pv__typing_free(b);
    pv__dialects_free(b);
    pv__list_free(&b->dirty);
    free(b);
}
