/* wake.h -- the one wake-up primitive, and the one wait-free channel.
 *
 * Every cross-thread channel in palaverd is a liburcu wait-free queue
 * (wfcqueue) with one consumer, plus an eventfd the consumer parks on:
 * the event queue (workers -> broadcaster), the store's message, request
 * and answer queues, the writers' progress signal. This is that pair,
 * written once.
 *
 * Protocol (struct pv_chan + struct pv_wake):
 *  - Producers (any number of threads) push with pv_chan_push(), which is
 *    one atomic exchange and one store and never waits for another
 *    thread. It returns true when the channel was empty: only that
 *    producer calls pv_wake_notify(), so a consumer that is busy costs
 *    its producers no system call.
 *  - The consumer (one thread) pops with pv_chan_pop() until it returns
 *    NULL, then parks (pv_wake_wait()). The eventfd is a level-triggered
 *    counter that only the consumer drains, and it drains it before it
 *    looks at its channels again; so a notify that lands between the
 *    consumer's last pop and its poll() is still seen: no wake-up is lost.
 *  - Memory order: liburcu's enqueue and dequeue carry the full barriers
 *    that publish a node's contents to the consumer. ThreadSanitizer
 *    cannot see them (the library is not instrumented), so push releases
 *    and a successful pop acquires on the channel for it (tsan.h). The
 *    eventfd write and read are system calls, hence barriers too; nothing
 *    is published through the eventfd itself.
 *  - A producer caught between its exchange and its store makes the next
 *    node unreachable for a few instructions ("would block"); pv_chan_pop()
 *    then yields (poll with 0, then 1 ms) instead of spinning on 2 cores.
 *
 * A consumer that listens to several channels passes all their wakes to
 * one pv_wake_wait() (the broadcaster: its event queue, the store's
 * commits and answers, the writers' progress).
 *
 * Threads: pv_wake_notify() and pv_chan_push() from any thread;
 * pv_wake_wait() and pv_chan_pop() from the one consumer of each.
 */
#ifndef PALAVER_WAKE_H
#define PALAVER_WAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <urcu/wfcqueue.h>

struct pv_wake {
    int fd; /* eventfd, non-blocking */
};

/* 0, or -1 with errno set (eventfd(2) failed). */
int pv_wake_init(struct pv_wake *w);
void pv_wake_destroy(struct pv_wake *w);

/* Any thread: wakes the consumer (a no-op if a wake-up is pending). */
void pv_wake_notify(struct pv_wake *w);

/* The consumer: parks until one of ws[0..n) is notified (NULL entries
 * are skipped) or timeout_ms passes (-1: no timeout), draining each one
 * that was (n is at most 8). Returns how many were. */
int pv_wake_wait(struct pv_wake *const *ws, size_t n, int timeout_ms);

/* Multi-producer, single-consumer, wait-free. */
struct pv_chan {
    struct __cds_wfcq_head head;
    struct cds_wfcq_tail tail;
};

void pv_chan_init(struct pv_chan *c);
/* Any thread. True if the channel was empty: notify the consumer. */
bool pv_chan_push(struct pv_chan *c, struct cds_wfcq_node *n);
/* The consumer: the oldest node, or NULL when the channel is empty. */
struct cds_wfcq_node *pv_chan_pop(struct pv_chan *c);
/* The consumer: true if nothing is queued. */
bool pv_chan_empty(struct pv_chan *c);

#endif
