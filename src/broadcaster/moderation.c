/* moderation.c -- edits, deletions, mutes, and the moderation and
 * session decisions of the HTTP API applied to open connections
 * (docs/accounts.md, "Moderation"; the protocol in proto.h).
 *
 * Threads: the broadcaster thread only (internal.h). Who may edit or
 * delete a message is decided here, against the history ring, which
 * records each message's sender account; kicks, bans, mutes, role
 * changes and session ends were decided and stored by a CivetWeb worker
 * (api.c, accounts.h) and arrive as PV_EV_MOD events (queue.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "palaver/accounts.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/frame.h"
#include "palaver/limits.h"
#include "palaver/log.h"
#include "palaver/nickname.h"
#include "palaver/queue.h"
#include "palaver/store.h"
#include "palaver/utf8.h"

bool pv__muted(struct pv_broadcaster *b, struct pv_client *c, const json_t *msg_id, int64_t now)
{
    if (c->muted_until <= now)
        return false;
    char why[96];
    long long minutes = (c->muted_until - now + 59999) / 60000;
    snprintf(why, sizeof(why), "a moderator muted you: %lld more minute%s", minutes,
             minutes == 1 ? "" : "s");
    pv__send_error(b, c, "muted", why, msg_id);
    return true;
}

/* An edit or deletion event in room r: into the ring and the store (with
 * the target's row rewritten to `replace`), and to the room's members,
 * its author included (the page confirms from it). */
static void publish(struct pv_broadcaster *b, struct pv_client *c, struct pv_room *r,
                    struct pv_frame *f, uint64_t seq, uint64_t rseq, int64_t now, uint64_t target,
                    struct pv_frame *replace, struct pv_store_audit *audit)
{
    struct pv_store_msg *m = pv__record(b, f, r->id, seq, rseq, now, 0, false, c->addr);
    if (m) {
        m->target = target;
        m->replace = pv_frame_ref(replace);
        m->audit = audit;
        pv_store_append(b->d.store, m);
    } else {
        free(audit);
    }
    pv__room_fanout(b, r, f, NULL);
}

/* The next seq, and the next rseq of r. */
static uint64_t next_rseq(struct pv_broadcaster *b, struct pv_room *r)
{
    uint64_t rseq = ++r->rseq;
    if (r->id == PV_LOBBY_ID)
        b->rseq = rseq;
    return rseq;
}

/* Whether c may edit or delete message in->target (false after telling
 * c why not); *e is its ring entry, or NULL when the ring no longer holds
 * it. Anyone signed in edits and deletes their own messages; moderators
 * and admins delete anyone's (*mod_only), also older than the ring holds
 * (the store rewrites the row if it still has it). */
static bool allowed(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in,
                    bool edit, struct pv_history_entry **entry, bool *mod_only)
{
    struct pv_history_entry *e = *entry = pv_history_find(&b->hist, in->target);
    bool mod = pv_role_rank(c->role) >= 2;
    *mod_only = false;
    if (c->account <= 0) {
        pv__send_error(b, c, "forbidden", "sign in to edit or delete your messages", in->msg_id);
        return false;
    }
    /* A message of a room one is not in is one that does not exist. */
    if (in->target > b->seq || (e && (!e->message || !pv__sees(c, e->room)))) {
        pv__send_error(b, c, "not-found", "there is no such message", in->msg_id);
        return false;
    }
    if (!e && !(mod && !edit)) {
        pv__send_error(b, c, "too-old",
                       "only messages still in the server's recent history (--history) can be "
                       "changed",
                       in->msg_id);
        return false;
    }
    if (e && e->account != c->account && (edit || !mod)) {
        pv__send_error(b, c, "forbidden",
                       edit ? "you can only edit your own messages"
                            : "you can only delete your own messages",
                       in->msg_id);
        return false;
    }
    *mod_only = !e || e->account != c->account;
    return true;
}

void pv__on_edit(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    int64_t now = pv_now_ms();
    bool mod_only;
    if (pv__muted(b, c, in->msg_id, now))
        return;
    struct pv_history_entry *e;
    if (!allowed(b, c, in, true, &e, &mod_only))
        return;
    struct pv_frame *edited = pv_proto_edited(e->f, in->text, in->text_len, now);
    if (!edited) {
        pv__send_error(b, c, "not-found", "that message cannot be edited", in->msg_id);
        return;
    }
    pv_history_replace(&b->hist, e, edited);
    struct pv_user by = pv__user_of(c);
    struct pv_room *r = pv__room(b, e->room);
    uint64_t seq = ++b->seq, rseq = next_rseq(b, r);
    struct pv_frame *f =
        pv_proto_edit(&by, r->name, in->target, in->text, in->text_len, seq, rseq, now);
    publish(b, c, r, f, seq, rseq, now, in->target, edited, NULL);
    pv_frame_unref(edited);
    pv_info("edit seq=%llu of seq=%llu by id=%s account=%lld bytes=%zu", (unsigned long long)seq,
            (unsigned long long)in->target, c->id, (long long)c->account, in->text_len);
}

void pv__on_delete(struct pv_broadcaster *b, struct pv_client *c, const struct pv_inbound *in)
{
    int64_t now = pv_now_ms();
    bool mod_only;
    struct pv_history_entry *e;
    if (!allowed(b, c, in, false, &e, &mod_only))
        return;
    /* A message older than the ring (a moderator's deletion) is taken to
     * be the lobby's: its room is not known without a read
     * (docs/known-limits.md). */
    struct pv_room *r = pv__room(b, e ? e->room : PV_LOBBY_ID);
    struct pv_frame *tomb =
        pv_proto_tombstone(r->name, in->target, e ? e->rseq : 0, e ? e->date : now, now);
    if (e) {
        pv_history_replace(&b->hist, e, tomb);
        e->message = false;
    }
    struct pv_store_audit *audit = NULL;
    if (mod_only) {
        /* A moderator's deletion of someone else's message is audited, in
         * the transaction that stores it. */
        audit = pv_xcalloc(1, sizeof(*audit));
        audit->actor_id = c->account;
        snprintf(audit->actor, sizeof(audit->actor), "%s", c->name);
        snprintf(audit->action, sizeof(audit->action), "delete");
        snprintf(audit->target, sizeof(audit->target), "message %llu",
                 (unsigned long long)in->target);
    }
    struct pv_user by = pv__user_of(c);
    uint64_t seq = ++b->seq, rseq = next_rseq(b, r);
    struct pv_frame *f = pv_proto_delete(&by, r->name, in->target, seq, rseq, now);
    publish(b, c, r, f, seq, rseq, now, in->target, tomb, audit);
    pv_frame_unref(tomb);
    char q[2 * PV_NAME_MAX_BYTES + 8];
    pv_log_quote(c->name, q, sizeof(q));
    pv_log(mod_only ? PV_LOG_NOTICE : PV_LOG_INFO,
           "delete seq=%llu of seq=%llu by id=%s name=\"%s\" role=%s%s", (unsigned long long)seq,
           (unsigned long long)in->target, c->id, q, c->role,
           mod_only ? " (moderation, audited)" : "");
}

/* True if c is the one r names: its account, or the guest holding r's
 * name online (key: that name's comparison key). */
static bool named(const struct pv_client *c, const struct pv_mod_req *r, const char *key)
{
    if (r->account > 0)
        return c->account == r->account;
    return c->account == 0 && key && c->name_key && strcmp(c->name_key, key) == 0;
}

static void close_with(struct pv_broadcaster *b, struct pv_client *c, uint16_t code,
                       const char *reason)
{
    if (c->closing || !pv_client_close_decide(c, code, NULL))
        return; /* closing for another reason already */
    pv__queue_close(b, c, code, reason, false);
}

void pv__on_mod(struct pv_broadcaster *b, const struct pv_mod_req *r)
{
    int64_t now = pv_now_ms();
    char key[PV_NAME_KEY_MAX];
    const char *k = r->account == 0 && pv_nickname_key(r->name, key) ? key : NULL;
    char reason[512];
    size_t hit = 0;
    bool kick = strcmp(r->action, "kick") == 0, ban = strcmp(r->action, "ban") == 0;
    bool mute = strcmp(r->action, "mute") == 0 || strcmp(r->action, "unmute") == 0;
    bool role = strcmp(r->action, "role") == 0;
    bool revoke = strcmp(r->action, "revoke") == 0;
    bool password = strcmp(r->action, "password") == 0;
    if (strcmp(r->action, "members") == 0) { /* auth = members from now on */
        size_t n = 0;
        for (size_t i = 0; i < b->reg.n; i++) {
            struct pv_client *c = b->reg.v[i];
            if (c->account == 0 && !c->closing && pv_client_close_decide(c, 4004, NULL)) {
                pv__queue_close(b, c, 4004, "this chat is for members now: sign in", false);
                n++;
            }
        }
        pv_notice("auth = members: %zu guest connection(s) closed with 4004", n);
        return;
    }
    if (strcmp(r->action, "rename") == 0) { /* r->name: the new name, r->old_name: the old */
        for (size_t i = 0; i < b->reg.n; i++) {
            struct pv_client *c = b->reg.v[i];
            if (c->account != r->account || c->closing)
                continue;
            if (c->join_pending)
                pv__presence_flush(b, true); /* its join first, under the old name */
            snprintf(c->name, sizeof(c->name), "%s", r->name);
            struct pv_user u = pv__user_of(c);
            pv__fanout(b, pv_proto_rename(&u, r->old_name, now), NULL);
        }
        pv__rooms_rename(b, r->account, r->name);
        return;
    }
    if (strcmp(r->action, "unban") == 0) {
        unsigned n = b->d.bans ? pv_bans_lift(b->d.bans, r->account) : 0;
        pv_notice("moderation: unban account=%lld by \"%s\": %u address ban(s) lifted",
                  (long long)r->account, r->by, n);
        return;
    }

    /* A close reason is at most 123 bytes of UTF-8: cut on a character
     * boundary, or the browser fails the connection and the code is lost. */
    int len = snprintf(reason, sizeof(reason), "%s by %s%s%s", kick ? "kicked" : "banned", r->by,
                       r->reason[0] ? ": " : "", r->reason);
    reason[len < 0 ? 0 : pv_utf8_prefix(reason, strlen(reason), 123)] = '\0';
    /* One pass over the registry: moderation is rare, and a person's
     * connections (tabs, devices) are found without an index. */
    for (size_t i = 0; i < b->reg.n; i++) {
        struct pv_client *c = b->reg.v[i];
        if (c->closing)
            continue;
        if (revoke) {
            if (c->session != r->session)
                continue;
            close_with(b, c, 4002, "signed out: this session has ended");
        } else if (password) {
            if (c->account != r->account || c->session == r->session)
                continue;
            close_with(b, c, 4002, "signed out: the password was changed");
        } else if (!named(c, r, k)) {
            continue;
        } else if (kick || ban) {
            pv__deliver(b, c, pv_proto_moderation(r->action, r->by, r->reason, 0, NULL, now));
            close_with(b, c, kick ? 4001 : 4003, reason);
            if (ban && r->by_address && b->d.bans)
                pv_bans_add(b->d.bans, c->addr, r->until, r->account);
        } else if (mute || role) {
            if (mute)
                c->muted_until = r->until;
            else
                snprintf(c->role, sizeof(c->role), "%s", r->role);
            pv__deliver(b, c,
                        pv_proto_moderation(r->action, r->by, r->reason, mute ? r->until : 0,
                                            role ? r->role : NULL, now));
        }
        hit++;
    }
    char q[2 * PV_NAME_MAX_BYTES + 8];
    pv_log_quote(r->name, q, sizeof(q));
    pv_notice("moderation: %s account=%lld name=\"%s\" session=%lld by \"%s\": %zu open "
              "connection(s) acted on",
              r->action, (long long)r->account, q, (long long)r->session, r->by, hit);
}
