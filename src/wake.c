/* wake.c -- the wake-up primitive and the wait-free channel (the
 * protocol, and why it loses no wake-up, is in wake.h).
 *
 * Threads: see wake.h. */
#include "palaver/wake.h"

#include <assert.h>

#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "palaver/tsan.h"

int pv_wake_init(struct pv_wake *w)
{
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return w->fd < 0 ? -1 : 0;
}

void pv_wake_destroy(struct pv_wake *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

void pv_wake_notify(struct pv_wake *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->fd, &one, sizeof(one));
    (void)r; /* EAGAIN only if the counter is already huge: a wake-up is pending */
}

int pv_wake_wait(struct pv_wake *const *ws, size_t n, int timeout_ms)
{
    struct pollfd pfd[8];
    size_t m = 0;
    assert(n <=
           sizeof(pfd) / sizeof(pfd[0])); /* a caller with more is a bug, never a peer's doing */
    for (size_t i = 0; i < n && m < sizeof(pfd) / sizeof(pfd[0]); i++)
        if (ws[i])
            pfd[m++] = (struct pollfd){.fd = ws[i]->fd, .events = POLLIN};
    int fired = 0;
    if (poll(pfd, (nfds_t)m, timeout_ms) <= 0)
        return 0;
    for (size_t i = 0; i < m; i++) {
        if (pfd[i].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(pfd[i].fd, &v, sizeof(v));
            (void)r; /* one consumer: readable means it has a count */
            fired++;
        }
    }
    return fired;
}

void pv_chan_init(struct pv_chan *c)
{
    __cds_wfcq_init(&c->head, &c->tail);
}

bool pv_chan_push(struct pv_chan *c, struct cds_wfcq_node *n)
{
    cds_wfcq_node_init(n);
    pv_tsan_release(c);
    return !cds_wfcq_enqueue(&c->head, &c->tail, n);
}

struct cds_wfcq_node *pv_chan_pop(struct pv_chan *c)
{
    for (int tries = 0;; tries++) {
        struct cds_wfcq_node *n = __cds_wfcq_dequeue_nonblocking(&c->head, &c->tail);
        if (n == NULL)
            return NULL;
        if (n != CDS_WFCQ_WOULDBLOCK) {
            pv_tsan_acquire(c);
            return n;
        }
        /* The producer is a few instructions from done unless it was
         * preempted: yield instead of spinning. */
        poll(NULL, 0, tries < 10 ? 0 : 1);
    }
}

bool pv_chan_empty(struct pv_chan *c)
{
    return cds_wfcq_empty(&c->head, &c->tail);
}
