/* broadcaster.c -- registry owner, validator and sender-excluding fanout.
 *
 * Threads: runs on the broadcaster thread only (see broadcaster.h). It
 * reads other threads' data only through the queue (events), the writer
 * pool's outbox protocol and clients' written_bytes counters. */
#include "palaver/broadcaster.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/client.h"
#include "palaver/config.h"
#include "palaver/frame.h"
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

struct pv_broadcaster {
    struct pv_broadcaster_deps d;
    pthread_t thread;

    struct pv_registry reg;
    struct client_list dirty;     /* clients with pending frames */
    struct client_list congested; /* over the backlog bound while writers
                                   * catch up */

    struct pv_frame **history; /* ring of the last cfg->history messages */
    size_t hist_head, hist_len;

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

/* True if a write to c has been in progress for PV_WRITER_STALL_MS: the
 * kernel will not take more, so the client is not reading. */
static bool write_stalled(const struct pv_client *c, uint64_t now)
{
    uint64_t since = atomic_load(&c->write_since);
    return since && now > since && now - since >= (uint64_t)PV_WRITER_STALL_MS * 1000000u;
}

/* The close decision for a client that stopped reading. Its queued data is
 * dropped (writers skip data once kick is set) and a close frame follows. */
static void slow_consumer(struct pv_broadcaster *b, struct pv_client *c, uint64_t queued)
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
    pv_warn("slow consumer: closing id=%s peer=%s with 1008: not reading for %d ms, backlog "
            "%llu bytes over the %zu-byte bound",
            c->id, c->peer, PV_WRITER_STALL_MS, (unsigned long long)queued,
            b->d.cfg->max_backlog);
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
    uint64_t queued = backlog(c) + f->len;
    if (queued > b->d.cfg->max_backlog) {
        /* Over the bound: either the client is not reading (its socket is
         * full: close it), or our writers are behind on it (overload: keep
         * the frame and stop taking new events until they catch up). */
        if (write_stalled(c, pv_mono_ns())) {
            pv_frame_unref(f);
            slow_consumer(b, c, queued);
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
 * the list, those whose socket has stayed full are closed. Returns true
 * while some client is still congested. */
static bool relieve(struct pv_broadcaster *b)
{
    uint64_t now = pv_mono_ns();
    size_t keep = 0;

    for (size_t i = 0; i < b->congested.n; i++) {
        struct pv_client *c = b->congested.v[i];
        uint64_t queued = backlog(c);
        bool done = c->closing || c->index == SIZE_MAX || queued <= b->d.cfg->max_backlog / 2;
        if (!done && queued > b->d.cfg->max_backlog && write_stalled(c, now)) {
            slow_consumer(b, c, queued);
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
    return keep > 0;
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
static struct pv_frame *history_at(const struct pv_broadcaster *b, size_t i)
{
    return b->history[(b->hist_head + i) % b->d.cfg->history];
}

static void history_push(struct pv_broadcaster *b, struct pv_frame *f)
{
    size_t cap = b->d.cfg->history;
    if (cap == 0)
        return;
    size_t slot = (b->hist_head + b->hist_len) % cap;
    if (b->hist_len == cap) {
        pv_frame_unref(b->history[b->hist_head]);
        b->history[b->hist_head] = pv_frame_ref(f);
        b->hist_head = (b->hist_head + 1) % cap;
    } else {
        b->history[slot] = pv_frame_ref(f);
        b->hist_len++;
    }
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

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = cs[i] = ev[i]->client;
        ev[i]->client = NULL; /* the event's reference becomes the registry's */
        pv_new_key(c->key);
        pv_new_id(c->id);
        if (ev[i]->len == 0 || !pv_name_check(ev[i]->data, ev[i]->len, c->name, &why[i]))
            snprintf(c->name, sizeof(c->name), "guest-%.4s", c->id);
        c->joining = true;
        pv_registry_add(&b->reg, c);
        pv_stat_add(&b->d.stats->clients, 1);
        joined[i] = user_of(c);
    }
    size_t listed, n = pv_registry_count(&b->reg);
    struct pv_user *users = listed_users(b, &listed);
    struct pv_frame *presence = pv_proto_presence(users, listed, n, b->hist_len, b->seq, now);
    free(users);
    pv_frame_ref_n(presence, (unsigned)k);

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = cs[i];
        deliver(b, c, pv_proto_id(c->key, &joined[i], b->run_id, b->d.cfg->max_text, now));
        if (why[i])
            send_error(b, c, "bad-name", why[i], NULL);
        deliver(b, c, presence);
        for (size_t h = 0; h < b->hist_len; h++)
            deliver(b, c, pv_frame_ref(history_at(b, h)));
        pv_info("join id=%s peer=%s name=%s online=%zu", c->id, c->peer, c->name, n);
        if (b->draining) {
            c->closing = true; /* arrived during shutdown */
            pv_batch_push(&c->pending, pv_frame_close(1001, "server shutting down"));
            mark_dirty(b, c);
        }
    }
    pv_frame_unref(presence);
    if (!b->draining)
        fanout(b, pv_proto_notice("join", joined, k, notices_named(b), n, now), NULL);
    for (size_t i = 0; i < k; i++)
        cs[i]->joining = false;
    free(cs);
    free(joined);
    free(why);
}

/* A run of consecutive LEAVE events: one leave notice names them all. */
static void on_leave_run(struct pv_broadcaster *b, struct pv_event **ev, size_t k)
{
    struct pv_user *left = pv_xcalloc(k, sizeof(*left));
    struct pv_client **gone = pv_xcalloc(k, sizeof(*gone));
    size_t m = 0;

    for (size_t i = 0; i < k; i++) {
        struct pv_client *c = ev[i]->client;
        atomic_fetch_sub(b->d.admitted, 1);
        if (c->index == SIZE_MAX)
            continue;
        pv_registry_remove(&b->reg, c);
        pv_stat_add(&b->d.stats->clients, (uint64_t)-1);
        pv_info("leave id=%s peer=%s name=%s reason=\"%s\" online=%zu", c->id, c->peer,
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

    if (!in->name)
        return; /* a hello without a name changes nothing */
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
    history_push(b, f);
    if (b->d.store && !pv_store_failure(b->d.store)) {
        /* The ack waits for the commit: an acknowledged message is on disk.
         * The store writes the frame's payload: encoded once, no copy. */
        struct pv_store_msg *m = pv_xcalloc(1, sizeof(*m));
        m->seq = seq;
        m->server_date = now;
        m->frame = pv_frame_ref(f);
        pv_store_append(b->d.store, m);
        hold_ack(b, c, seq, in->msg_id, now);
    } else if (b->d.store) {
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
            if (!c->kick_seen)
                c->kick_seen = now;
            else if (now - c->kick_seen >= EVICT_GRACE_NS &&
                     pv_client_evict(c, now - c->kick_seen >= force_ns)) {
                pv_stat_add(&b->d.stats->evictions, 1);
                pv_info("evicting id=%s peer=%s: closed %d but its connection is still open",
                        c->id, c->peer, kick);
            }
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
        handle(b, ev, n);
        release_acks(b);
        flush(b);
        if (n == 0 && !b->stop && !b->congested.n) {
            /* Park until a producer wakes us; tick sooner while writers
             * are busy so a stalled writer gets replaced quickly. */
            pv_queue_wait_fd(b->d.queue, b->d.store ? pv_store_commit_fd(b->d.store) : -1,
                             busy ? 50 : (int)(b->sweep_every / 1000000u));
        }
    }
    return NULL;
}

/* pv_store_before() callback: a stored message back into the ring. */
static void preload(void *ud, uint64_t seq, int64_t server_date, const char *json, size_t len)
{
    struct pv_broadcaster *b = ud;
    (void)seq;
    (void)server_date;
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, json, len);
    history_push(b, f);
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
    flush(b);
    for (size_t i = 0; i < b->acks_n; i++) {
        pv_client_unref(b->acks[b->acks_head + i].c);
        json_decref(b->acks[b->acks_head + i].msg_id);
    }
    free(b->acks);
    list_free(&b->congested);
    pv_registry_destroy(&b->reg);
    for (size_t i = 0; i < b->hist_len; i++)
        pv_frame_unref(history_at(b, i));
    free(b->history);
    list_free(&b->dirty);
    free(b);
}
