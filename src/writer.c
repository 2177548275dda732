/* writer.c -- writer pool: sends each client's outbox, one client per
 * writer at a time, gathering queued frames into one write.
 *
 * Threads: writer threads run writer_main(). pv_writers_post() and
 * pv_writers_tick() run only on the broadcaster; pv_writers_start(),
 * pv_writers_drain() and pv_writers_stop() only on main. The outbox and
 * ready-ring protocol is documented in writer.h. */
#include "palaver/writer.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu/wfcqueue.h>

#include "palaver/client.h"
#include "palaver/clock.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/stats.h"
#include "palaver/tsan.h"
#include "palaver/wake.h"
#include "palaver/xalloc.h"

#define CHUNK ((size_t)64 * 1024) /* most bytes gathered into one write */
#define RETIRE_IDLE_S 5           /* an extra writer idle this long exits */

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_EXITED };

struct writer_slot {
    struct pv_writers *pool;
    atomic_int state;                /* FREE -> RUNNING by the spawner,
                                      * RUNNING -> EXITED by the thread,
                                      * EXITED -> FREE by the joiner */
    pthread_t tid;                   /* spawner and joiner only */
    atomic_uint_fast64_t busy_since; /* ns of the write in progress, or 0 */
    unsigned char *scratch;          /* the thread's own gather buffer */
};

struct pv_writers {
    /* The ready queue: clients with an outbox to send, linked through
     * their own ready_node (writer.h). */
    struct cds_wfcq_head ready_head;
    struct cds_wfcq_tail ready_tail;
    sem_t ready;      /* wake-ups owed to idle writers (see writer_main) */
    atomic_uint idle; /* writers between "queue empty" and sem_wait */
    unsigned unwoken; /* broadcaster only: clients queued since the last kick */
    unsigned min, max;
    atomic_uint running; /* threads started and not yet exiting */
    atomic_bool stop;
    atomic_uint scheduled; /* clients in the ring or owned by a writer */
    atomic_uint drain_waiters;
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cv;
    struct pv_stats *stats;
    struct writer_slot *ws;  /* max slots */
    struct pv_wake progress; /* writers -> broadcaster: a watched batch is done */
};

static void *writer_main(void *arg);

/* The client a ready-queue node belongs to (container_of without the
 * cast-align warning: the node sits inside a properly aligned client). */
static struct pv_client *client_of(struct cds_wfcq_node *n)
{
    return (struct pv_client *)(void *)((char *)n - offsetof(struct pv_client, ready_node));
}

static bool spawn(struct pv_writers *w)
{
    for (unsigned i = 0; i < w->max; i++) {
        struct writer_slot *s = &w->ws[i];
        int st = atomic_load(&s->state);
        if (st == SLOT_EXITED) {
            pthread_join(s->tid, NULL);
            atomic_store(&s->state, SLOT_FREE);
            st = SLOT_FREE;
        }
        if (st != SLOT_FREE)
            continue;
        atomic_store(&s->state, SLOT_RUNNING);
        atomic_fetch_add(&w->running, 1);
        int err = pthread_create(&s->tid, NULL, writer_main, s);
        if (err) {
            atomic_fetch_sub(&w->running, 1);
            atomic_store(&s->state, SLOT_FREE);
            pv_err("cannot start writer thread: %s", strerror(err));
            return false;
        }
        return true;
    }
    return false;
}

struct pv_writers *pv_writers_start(unsigned min_writers, unsigned max_writers,
                                    struct pv_stats *stats)
{
    struct pv_writers *w = pv_xcalloc(1, sizeof(*w));
    pthread_condattr_t ca;

    if (max_writers < min_writers)
        max_writers = min_writers;
    w->min = min_writers;
    w->max = max_writers;
    w->stats = stats;
    cds_wfcq_init(&w->ready_head, &w->ready_tail);
    sem_init(&w->ready, 0, 0);
    atomic_init(&w->idle, 0);
    atomic_init(&w->running, 0);
    atomic_init(&w->stop, false);
    atomic_init(&w->scheduled, 0);
    atomic_init(&w->drain_waiters, 0);
    pthread_mutex_init(&w->drain_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->drain_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pv_wake_init(&w->progress) != 0) {
        pv_err("eventfd() failed: %s", strerror(errno));
        abort();
    }
    w->ws = pv_xcalloc(max_writers, sizeof(*w->ws));
    for (unsigned i = 0; i < max_writers; i++) {
        w->ws[i].pool = w;
        atomic_init(&w->ws[i].state, SLOT_FREE);
        atomic_init(&w->ws[i].busy_since, 0);
    }
    for (unsigned i = 0; i < min_writers; i++) {
        if (!spawn(w)) {
            pv_writers_stop(w);
            return NULL;
        }
    }
    return w;
}

void pv_writers_post(struct pv_writers *w, struct pv_client *c, struct pv_batch *b)
{
    struct pv_batch *old = atomic_exchange(&c->outbox, NULL);
    if (old) {
        pv_batch_concat(&old, b);
        b = old;
    }
    atomic_store(&c->outbox, b);
    if (!atomic_exchange(&c->scheduled, true)) {
        pv_client_ref(c);
        atomic_fetch_add(&w->scheduled, 1);
        pv_tsan_release(w);
        /* The node is free: the client is in the queue only while
         * scheduled, and scheduled was false. */
        cds_wfcq_node_init(&c->ready_node);
        cds_wfcq_enqueue(&w->ready_head, &w->ready_tail, &c->ready_node);
        w->unwoken++;
    }
}

void pv_writers_kick(struct pv_writers *w)
{
    if (w->unwoken == 0)
        return;
    w->unwoken = 0;
    /* Wake as few writers as the queue needs: one per PV_WRITER_PER_WAKE queued
     * clients, counting the ones already awake. Every writer awake costs
     * wake-ups and preemptions, and a writer that finds several frames
     * waiting for a client sends them in one write; one writer sweeping a
     * 1,000-client fanout beats four racing through it (docs/performance.md).
     * The enqueues are sequentially consistent (an exchange); so is this
     * load: a writer that registered as idle after it was read sees the
     * queued clients when it looks again (writer_main). */
    unsigned idle = atomic_load(&w->idle);
    unsigned running = atomic_load(&w->running);
    unsigned awake = running > idle ? running - idle : 0;
    unsigned queued = atomic_load(&w->scheduled);
    queued = queued > awake ? queued - awake : 0;
    unsigned want = (queued + PV_WRITER_PER_WAKE - 1) / PV_WRITER_PER_WAKE;
    want = want > awake ? want - awake : 0;
    while (want > 0 && idle > 0) {
        if (!atomic_compare_exchange_weak(&w->idle, &idle, idle - 1))
            continue;
        sem_post(&w->ready);
        want--;
    }
}

bool pv_writers_behind(struct pv_writers *w)
{
    return atomic_load(&w->scheduled) > atomic_load(&w->running);
}

bool pv_writers_tick(struct pv_writers *w)
{
    uint64_t now = pv_mono_ns();
    unsigned stuck = 0, busy = 0;

    for (unsigned i = 0; i < w->max; i++) {
        struct writer_slot *s = &w->ws[i];
        int st = atomic_load(&s->state);
        if (st == SLOT_EXITED) {
            pthread_join(s->tid, NULL);
            atomic_store(&s->state, SLOT_FREE);
            continue;
        }
        if (st != SLOT_RUNNING)
            continue;
        uint64_t since = atomic_load(&s->busy_since);
        if (since) {
            busy++;
            if (now > since && now - since > (uint64_t)PV_WRITER_STALL_MS * 1000000u)
                stuck++;
        }
    }
    /* A kick wakes few writers; if one of them is now stuck on a full
     * socket with clients still queued behind it, wake the idle ones. */
    for (unsigned i = 0; i < stuck; i++) {
        unsigned idle = atomic_load(&w->idle);
        if (idle == 0 || atomic_load(&w->scheduled) <= busy)
            break;
        if (atomic_compare_exchange_strong(&w->idle, &idle, idle - 1))
            sem_post(&w->ready);
    }
    unsigned running = atomic_load(&w->running);
    if (stuck && running - stuck < w->min && running < w->max) {
        if (spawn(w))
            pv_notice("%u writer(s) stalled on slow clients: started writer %u of at most %u",
                      stuck, running + 1, w->max);
    }
    return busy > 0 || atomic_load(&w->scheduled) > 0;
}

/* One write of gathered frames, timed for stall supervision. */
static int timed_write(struct writer_slot *s, struct pv_client *c, const void *data, size_t len,
                       bool closes)
{
    uint64_t t0 = pv_mono_ns();
    atomic_store(&s->busy_since, t0);
    atomic_store(&c->write_since, t0);
    int rc = pv_client_write(c, data, len, closes);
    atomic_store(&c->write_since, 0);
    atomic_store(&s->busy_since, 0);
    if (rc == 0)
        pv_stat_add(&s->pool->stats->bytes_out, len);
    if (rc == -2) {
        unsigned long long ms = (pv_mono_ns() - t0) / 1000000u;
        pv_stat_add(&s->pool->stats->write_failures, 1);
        /* A quick failure is a peer that went away (reset); a slow one is a
         * peer that stopped reading until CivetWeb's write timeout. */
        if (ms < 1000)
            pv_info("write to %s failed: connection lost", c->peer);
        else
            pv_warn("write to %s timed out after %llu ms; dropping the client", c->peer, ms);
    }
    return rc;
}

struct gather {
    const struct pv_frame *first; /* a chunk of one frame is written in place */
    size_t len;                   /* bytes in the chunk */
    unsigned frames;
};

static bool gather_flush(struct writer_slot *s, struct pv_client *c, struct gather *g)
{
    int rc = 0;
    if (g->frames == 0)
        return true;
    rc = timed_write(s, c, g->frames == 1 ? g->first->data : s->scratch, g->len, false);
    if (rc == 0) /* its bytes were counted by timed_write() */
        pv_stat_add(&s->pool->stats->deliveries, g->frames);
    g->frames = 0;
    g->len = 0;
    return rc == 0;
}

static void gather_add(struct writer_slot *s, struct pv_client *c, struct gather *g,
                       const struct pv_frame *f, bool *ok)
{
    if (g->frames && g->len + f->len > CHUNK)
        *ok = gather_flush(s, c, g);
    if (!*ok)
        return;
    if (g->frames == 0) {
        g->first = f; /* alone (possibly larger than CHUNK): written in place */
    } else {
        if (g->frames == 1)
            memcpy(s->scratch, g->first->data, g->len);
        memcpy(s->scratch + g->len, f->data, f->len);
    }
    g->frames++;
    g->len += f->len;
}

static void write_batch(struct writer_slot *s, struct pv_client *c, struct pv_batch *b)
{
    /* Once the broadcaster has decided to close the client (slow consumer)
     * its queued data is dropped and only the close frame goes out. */
    bool drop_data = atomic_load(&c->drop);
    struct gather g = {0};
    bool ok = true;

    for (size_t i = 0; i < b->n; i++) {
        const struct pv_frame *f = b->f[i];
        if (f->opcode == PV_WS_OP_CLOSE) {
            ok = gather_flush(s, c, &g) && ok;
            timed_write(s, c, f->data, f->len, true);
            ok = false; /* nothing may follow a close frame */
            continue;
        }
        if (drop_data || !ok)
            continue;
        gather_add(s, c, &g, f, &ok);
    }
    if (ok)
        gather_flush(s, c, &g);
    atomic_fetch_add_explicit(&c->written_bytes, b->bytes, memory_order_release);
    pv_batch_free(b);
    if (atomic_load(&c->watch))
        pv_wake_notify(&s->pool->progress);
}

struct pv_wake *pv_writers_wake(struct pv_writers *w)
{
    return &w->progress;
}

static void serve(struct writer_slot *s, struct pv_client *c)
{
    struct pv_writers *w = s->pool;

    for (;;) {
        struct pv_batch *b = atomic_exchange(&c->outbox, NULL);
        if (b)
            write_batch(s, c, b);
        atomic_store(&c->scheduled, false);
        if (atomic_load(&c->outbox) == NULL)
            break;
        if (atomic_exchange(&c->scheduled, true))
            break; /* the broadcaster re-queued it; another pass will come */
    }
    if (atomic_fetch_sub(&w->scheduled, 1) == 1 && atomic_load(&w->drain_waiters)) {
        pthread_mutex_lock(&w->drain_mu);
        pthread_cond_broadcast(&w->drain_cv);
        pthread_mutex_unlock(&w->drain_mu);
    }
    pv_client_unref(c);
}

/* A writer that stops being idle without a post (it found work, or its
 * wait ended) takes itself off the count -- unless a kick already did, in
 * which case the post it owes stays in the semaphore and costs one
 * spurious wake-up later. */
static void unidle(struct pv_writers *w)
{
    unsigned idle = atomic_load(&w->idle);
    while (idle > 0 && !atomic_compare_exchange_weak(&w->idle, &idle, idle - 1))
        ;
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pv-writer");
    struct writer_slot *s = arg;
    struct pv_writers *w = s->pool;
    bool retired = false;

    s->scratch = pv_xmalloc(CHUNK);
    for (;;) {
        struct cds_wfcq_node *node = cds_wfcq_dequeue_blocking(&w->ready_head, &w->ready_tail);
        if (node) {
            pv_tsan_acquire(w);
            serve(s, client_of(node));
            continue;
        }
        if (atomic_load(&w->stop))
            break;
        /* Register as idle, then look once more: the broadcaster enqueues
         * before it reads `idle`, so either it sees this writer and posts,
         * or this look sees its clients. */
        atomic_fetch_add(&w->idle, 1);
        node = cds_wfcq_dequeue_blocking(&w->ready_head, &w->ready_tail);
        if (node) {
            unidle(w);
            pv_tsan_acquire(w);
            serve(s, client_of(node));
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += RETIRE_IDLE_S;
        if (sem_clockwait(&w->ready, CLOCK_MONOTONIC, &ts) == -1) {
            unidle(w);
            if (errno != ETIMEDOUT)
                continue;
            if (atomic_load(&w->stop))
                break;
            unsigned r = atomic_load(&w->running);
            if (r > w->min && atomic_compare_exchange_strong(&w->running, &r, r - 1)) {
                retired = true;
                break;
            }
            continue;
        }
    }
    if (!retired)
        atomic_fetch_sub(&w->running, 1);
    free(s->scratch);
    s->scratch = NULL;
    atomic_store(&s->state, SLOT_EXITED);
    return NULL;
}

bool pv_writers_drain(struct pv_writers *w, int timeout_ms)
{
    struct timespec deadline;
    bool done;

    deadline = pv_mono_deadline((unsigned)timeout_ms);
    pthread_mutex_lock(&w->drain_mu);
    atomic_fetch_add(&w->drain_waiters, 1);
    while (atomic_load(&w->scheduled) > 0) {
        if (pthread_cond_timedwait(&w->drain_cv, &w->drain_mu, &deadline) == ETIMEDOUT)
            break;
    }
    done = atomic_load(&w->scheduled) == 0;
    atomic_fetch_sub(&w->drain_waiters, 1);
    pthread_mutex_unlock(&w->drain_mu);
    return done;
}

void pv_writers_stop(struct pv_writers *w)
{
    struct cds_wfcq_node *node;

    if (!w)
        return;
    atomic_store(&w->stop, true);
    for (unsigned i = 0; i < w->max; i++)
        sem_post(&w->ready);
    for (unsigned i = 0; i < w->max; i++) {
        if (atomic_load(&w->ws[i].state) != SLOT_FREE)
            pthread_join(w->ws[i].tid, NULL);
    }
    /* Clients still queued: release the queue's references. */
    while ((node = cds_wfcq_dequeue_blocking(&w->ready_head, &w->ready_tail))) {
        pv_tsan_acquire(w);
        pv_client_unref(client_of(node));
    }
    cds_wfcq_destroy(&w->ready_head, &w->ready_tail);
    sem_destroy(&w->ready);
    pv_wake_destroy(&w->progress);
    pthread_mutex_destroy(&w->drain_mu);
    pthread_cond_destroy(&w->drain_cv);
    free(w->ws);
    free(w);
}
