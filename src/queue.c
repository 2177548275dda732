/* queue.c -- lock-free MPSC event queue (liburcu wfcqueue) with a parked
 * consumer and bounded producer backpressure. The protocol is in queue.h.
 *
 * Threads: producers = CivetWeb workers and main; consumer = broadcaster
 * (main after it has joined the broadcaster). */
#include "palaver/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "palaver/client.h"
#include "palaver/publish.h"
#include "palaver/clock.h"
#include "palaver/log.h"
#include "palaver/stats.h"
#include "palaver/wake.h"
#include "palaver/xalloc.h"

struct pv_queue {
    /* The channel and its wake-up (wake.h): producers touch only the
     * tail (one exchange), the single consumer only the head. */
    struct pv_chan chan;
    struct pv_wake wake; /* notified on empty -> non-empty */
    atomic_uint depth;   /* events queued, for metrics and tests */

    unsigned msg_capacity;
    /* MSG events admitted and not yet popped: producers increment before
     * enqueueing (or give up), the consumer decrements after popping. */
    atomic_uint msg_inflight;
    uint64_t msg_byte_capacity;     /* 0: no byte bound */
    atomic_uint_fast64_t msg_bytes; /* payload bytes of MSG events in flight */
    atomic_bool msgs_closed;

    /* Producer slow path only: the mutex guards nothing but the wait. */
    atomic_uint space_waiters;
    pthread_mutex_t space_mu;
    pthread_cond_t space_cv;
};

struct pv_event *pv_event_new(enum pv_event_type type, struct pv_client *c, const void *data,
                              size_t len)
{
    struct pv_event *ev = pv_xmalloc(sizeof(*ev) + len + 1);
    cds_wfcq_node_init(&ev->node);
    ev->type = type;
    ev->client = c;
    ev->len = len;
    ev->queued_ns = pv_mono_ns();
    ev->code = 0;
    memset(&ev->in, 0, sizeof(ev->in));
    ev->publish = NULL;
    if (len)
        memcpy(ev->data, data, len);
    ev->data[len] = '\0';
    return ev;
}

void pv_event_free(struct pv_event *ev)
{
    if (!ev)
        return;
    if (ev->client)
        pv_client_unref(ev->client);
    if (ev->publish) {
        pv_publish_answer(ev->publish, 0, 0, "unavailable", "the server is shutting down");
        pv_publish_unref(ev->publish);
    }
    pv_inbound_release(&ev->in);
    free(ev);
}

struct pv_queue *pv_queue_new(unsigned msg_capacity)
{
    struct pv_queue *q = pv_xcalloc(1, sizeof(*q));
    pthread_condattr_t ca;

    pv_chan_init(&q->chan);
    atomic_init(&q->depth, 0);
    q->msg_capacity = msg_capacity;
    atomic_init(&q->msg_inflight, 0);
    atomic_init(&q->msg_bytes, 0);
    atomic_init(&q->msgs_closed, false);
    atomic_init(&q->space_waiters, 0);
    if (pv_wake_init(&q->wake) != 0) {
        pv_err("eventfd() failed: %s", strerror(errno));
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->space_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->space_cv, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

void pv_queue_free(struct pv_queue *q)
{
    struct pv_event *ev[64];
    size_t n;

    if (!q)
        return;
    while ((n = pv_queue_pop(q, ev, 64)) > 0) {
        for (size_t i = 0; i < n; i++)
            pv_event_free(ev[i]);
    }
    pv_wake_destroy(&q->wake);
    pthread_mutex_destroy(&q->space_mu);
    pthread_cond_destroy(&q->space_cv);
    free(q);
}

static void enqueue(struct pv_queue *q, struct pv_event *ev)
{
    atomic_fetch_add_explicit(&q->depth, 1, memory_order_relaxed);
    if (pv_chan_push(&q->chan, &ev->node))
        pv_wake_notify(&q->wake); /* it was empty: this producer wakes the consumer */
}

void pv_queue_push_ctl(struct pv_queue *q, struct pv_event *ev)
{
    enqueue(q, ev);
}

void pv_queue_set_byte_capacity(struct pv_queue *q, uint64_t bytes)
{
    q->msg_byte_capacity = bytes;
}

/* Admits one message of len bytes: under the count and the byte bound (a
 * message alone in the queue is always admitted, whatever its size). */
static bool try_admit(struct pv_queue *q, size_t len)
{
    unsigned n = atomic_load(&q->msg_inflight);
    for (;;) {
        if (n >= q->msg_capacity)
            return false;
        if (atomic_compare_exchange_weak(&q->msg_inflight, &n, n + 1))
            break;
    }
    uint64_t before = atomic_fetch_add(&q->msg_bytes, len);
    if (q->msg_byte_capacity && before > 0 && before + len > q->msg_byte_capacity) {
        atomic_fetch_sub(&q->msg_bytes, len);
        atomic_fetch_sub(&q->msg_inflight, 1);
        return false;
    }
    return true;
}

int pv_queue_push_msg(struct pv_queue *q, struct pv_event *ev, int timeout_ms)
{
    struct timespec deadline;
    int rc = 0;

    if (atomic_load(&q->msgs_closed))
        return -ESHUTDOWN;
    if (try_admit(q, ev->len)) {
        enqueue(q, ev);
        return 0;
    }
    deadline = pv_mono_deadline((unsigned)timeout_ms);
    pthread_mutex_lock(&q->space_mu);
    /* seq_cst: either the consumer sees this waiter, or we see its pop. */
    atomic_fetch_add(&q->space_waiters, 1);
    for (;;) {
        if (atomic_load(&q->msgs_closed)) {
            rc = -ESHUTDOWN;
            break;
        }
        if (try_admit(q, ev->len))
            break;
        if (pthread_cond_timedwait(&q->space_cv, &q->space_mu, &deadline) == ETIMEDOUT) {
            rc = try_admit(q, ev->len) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&q->space_waiters, 1);
    pthread_mutex_unlock(&q->space_mu);
    if (rc == 0)
        enqueue(q, ev);
    return rc;
}

void pv_queue_close_msgs(struct pv_queue *q)
{
    atomic_store(&q->msgs_closed, true);
    pthread_mutex_lock(&q->space_mu);
    pthread_cond_broadcast(&q->space_cv);
    pthread_mutex_unlock(&q->space_mu);
}

/* Next event, NULL when empty. */
static struct pv_event *dequeue(struct pv_queue *q)
{
    struct cds_wfcq_node *n = pv_chan_pop(&q->chan);
    if (!n)
        return NULL;
    atomic_fetch_sub_explicit(&q->depth, 1, memory_order_relaxed);
    return (struct pv_event *)(void *)((char *)n - offsetof(struct pv_event, node));
}

size_t pv_queue_pop(struct pv_queue *q, struct pv_event **out, size_t max)
{
    size_t n = 0;
    unsigned msgs = 0;
    uint64_t bytes = 0;

    while (n < max && (out[n] = dequeue(q)) != NULL) {
        if (out[n]->type == PV_EV_MSG || out[n]->type == PV_EV_PUBLISH) {
            msgs++;
            bytes += out[n]->len;
        }
        n++;
    }
    if (msgs) {
        atomic_fetch_sub(&q->msg_bytes, bytes);
        atomic_fetch_sub(&q->msg_inflight, msgs);
        if (atomic_load(&q->space_waiters) > 0) {
            pthread_mutex_lock(&q->space_mu);
            pthread_cond_broadcast(&q->space_cv);
            pthread_mutex_unlock(&q->space_mu);
        }
    }
    return n;
}

bool pv_queue_wait(struct pv_queue *q, int timeout_ms)
{
    if (!pv_chan_empty(&q->chan))
        return true;
    struct pv_wake *w = &q->wake;
    pv_wake_wait(&w, 1, timeout_ms);
    return !pv_chan_empty(&q->chan);
}

struct pv_wake *pv_queue_wake(struct pv_queue *q)
{
    return &q->wake;
}

bool pv_queue_empty(struct pv_queue *q)
{
    return pv_chan_empty(&q->chan);
}

unsigned pv_queue_depth(struct pv_queue *q)
{
    return atomic_load_explicit(&q->depth, memory_order_relaxed);
}
