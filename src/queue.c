/* queue.c -- bounded lock-free MPSC event queue (ck_ring) with a parked
 * consumer and bounded producer backpressure. The protocol is in queue.h.
 *
 * Threads: producers = CivetWeb workers and main; consumer = broadcaster. */
#include "palaver/queue.h"

#include <ck_ring.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "palaver/client.h"
#include "palaver/log.h"
#include "palaver/tsan.h"
#include "palaver/xalloc.h"

struct pv_queue {
    struct ck_ring ring;
    struct ck_ring_buffer *slots;
    unsigned msg_capacity;

    /* MSG events admitted and not yet popped: producers increment before
     * enqueueing (or give up), the consumer decrements after popping. */
    atomic_uint msg_inflight;
    atomic_bool msgs_closed;

    /* Consumer parking: parked is 1 only while the consumer is (about to
     * be) in poll(2) on efd. seq_cst on both sides: either the producer
     * sees parked == 1, or the consumer sees the new event. */
    atomic_int parked;
    int efd;

    /* Producer slow path only: guards nothing but the wait itself. */
    atomic_uint space_waiters;
    pthread_mutex_t space_mu;
    pthread_cond_t space_cv;
};

struct pv_event *pv_event_new(enum pv_event_type type, struct pv_client *c,
                              const void *data, size_t len)
{
    struct pv_event *ev = pv_xmalloc(sizeof(*ev) + len + 1);
    ev->type = type;
    ev->client = c;
    ev->len = len;
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
    free(ev);
}

static unsigned next_pow2(unsigned v)
{
    unsigned p = 2;
    while (p < v)
        p <<= 1;
    return p;
}

struct pv_queue *pv_queue_new(unsigned msg_capacity, unsigned max_clients)
{
    struct pv_queue *q = pv_xcalloc(1, sizeof(*q));
    pthread_condattr_t ca;
    /* One slot of a ck_ring is never used: size = needed + 1, rounded up. */
    unsigned size = next_pow2(msg_capacity + 2 * max_clients + 8 + 1);

    q->slots = pv_xcalloc(size, sizeof(*q->slots));
    ck_ring_init(&q->ring, size);
    q->msg_capacity = msg_capacity;
    atomic_init(&q->msg_inflight, 0);
    atomic_init(&q->msgs_closed, false);
    atomic_init(&q->parked, 0);
    atomic_init(&q->space_waiters, 0);
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd == -1) {
        pv_err("eventfd() failed: %s", strerror(errno));
        free(q->slots);
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
    close(q->efd);
    pthread_mutex_destroy(&q->space_mu);
    pthread_cond_destroy(&q->space_cv);
    free(q->slots);
    free(q);
}

static void enqueue(struct pv_queue *q, struct pv_event *ev)
{
    pv_tsan_release(q);
    if (!ck_ring_enqueue_mpsc(&q->ring, q->slots, ev)) {
        /* Impossible by the capacity argument in queue.h. */
        pv_err("event queue overflow (depth %u): capacity invariant broken",
               ck_ring_size(&q->ring));
        abort();
    }
    /* StoreLoad: the enqueue must be visible before we read `parked`. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&q->parked) && atomic_exchange(&q->parked, 0)) {
        uint64_t one = 1;
        ssize_t w = write(q->efd, &one, sizeof(one));
        (void)w; /* EAGAIN only if the counter is already huge: still awake */
    }
}

void pv_queue_push_ctl(struct pv_queue *q, struct pv_event *ev)
{
    enqueue(q, ev);
}

static bool try_admit(struct pv_queue *q)
{
    unsigned n = atomic_load(&q->msg_inflight);
    while (n < q->msg_capacity) {
        if (atomic_compare_exchange_weak(&q->msg_inflight, &n, n + 1))
            return true;
    }
    return false;
}

int pv_queue_push_msg(struct pv_queue *q, struct pv_event *ev, int timeout_ms)
{
    struct timespec deadline;
    int rc = 0;

    if (atomic_load(&q->msgs_closed))
        return -ESHUTDOWN;
    if (try_admit(q)) {
        enqueue(q, ev);
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->space_mu);
    atomic_fetch_add(&q->space_waiters, 1);
    for (;;) {
        if (atomic_load(&q->msgs_closed)) {
            rc = -ESHUTDOWN;
            break;
        }
        if (try_admit(q))
            break;
        if (pthread_cond_timedwait(&q->space_cv, &q->space_mu, &deadline) == ETIMEDOUT) {
            rc = try_admit(q) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&q->space_waiters, 1);
    pthread_mutex_unlock(&q->space_mu);
    if (rc == 0)
        enqueue(q, ev);
    return rc;
}

static void wake_space_waiters(struct pv_queue *q)
{
    if (atomic_load(&q->space_waiters) > 0) {
        pthread_mutex_lock(&q->space_mu);
        pthread_cond_broadcast(&q->space_cv);
        pthread_mutex_unlock(&q->space_mu);
    }
}

void pv_queue_close_msgs(struct pv_queue *q)
{
    atomic_store(&q->msgs_closed, true);
    pthread_mutex_lock(&q->space_mu);
    pthread_cond_broadcast(&q->space_cv);
    pthread_mutex_unlock(&q->space_mu);
}

size_t pv_queue_pop(struct pv_queue *q, struct pv_event **out, size_t max)
{
    size_t n = 0;
    unsigned msgs = 0;
    void *p;

    while (n < max && ck_ring_dequeue_mpsc(&q->ring, q->slots, &p)) {
        pv_tsan_acquire(q);
        out[n] = p;
        if (out[n]->type == PV_EV_MSG)
            msgs++;
        n++;
    }
    if (msgs) {
        /* seq_cst: pairs with the producer's space_waiters increment. */
        atomic_fetch_sub(&q->msg_inflight, msgs);
        wake_space_waiters(q);
    }
    return n;
}

bool pv_queue_wait(struct pv_queue *q, int timeout_ms)
{
    struct pollfd pfd = {.fd = q->efd, .events = POLLIN};
    uint64_t v;

    if (ck_ring_size(&q->ring) > 0)
        return true;
    atomic_store(&q->parked, 1);
    if (ck_ring_size(&q->ring) > 0) {
        atomic_store(&q->parked, 0);
        return true;
    }
    if (poll(&pfd, 1, timeout_ms) > 0) {
        ssize_t r = read(q->efd, &v, sizeof(v));
        (void)r; /* EAGAIN: a racing reader already reset it; harmless */
    }
    atomic_store(&q->parked, 0);
    return ck_ring_size(&q->ring) > 0;
}

unsigned pv_queue_depth(struct pv_queue *q)
{
    return ck_ring_size(&q->ring);
}
