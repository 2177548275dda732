/* publish.h -- a chat message published over HTTP (POST /api/messages, a
 * bot with a personal access token), and the answer its request waits
 * for: the seq the broadcaster gave it, once the store has committed it,
 * exactly as a WebSocket message's ack waits (docs/accounts.md, "Bots").
 *
 * Threads: one CivetWeb worker (the request) and the broadcaster share a
 * struct pv_publish. The protocol:
 *  - The worker makes it (two references: its own and the event's), puts
 *    it in a PV_EV_PUBLISH event and queues that through the chat
 *    messages' admission (queue.h), then waits on it, at most a timeout.
 *  - The broadcaster answers it once, with pv_publish_answer(): under
 *    `mu`, it sets the result and signals `cv`. Whoever frees the event
 *    without handling it (teardown) answers "unavailable".
 *  - Each side drops its reference when done; the last one frees it. The
 *    worker may give up waiting (a timeout) before the answer: the answer
 *    then lands in memory nobody reads, and is freed with it.
 */
#ifndef PALAVER_PUBLISH_H
#define PALAVER_PUBLISH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "palaver/client.h"

struct pv_publish {
    atomic_uint refs;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    /* Set by the worker before queueing; read-only afterwards. */
    int64_t account;
    char name[PV_NAME_MAX_BYTES + 1];
    char role[16];
    int64_t muted_until;
    /* The answer, under mu. */
    bool done;
    uint64_t seq;
    int64_t date;
    char code[24]; /* "" when stored and relayed; else an error code */
    char message[160];
};

/* A new request with two references (the worker's and its event's). */
struct pv_publish *pv_publish_new(void);
void pv_publish_unref(struct pv_publish *p);
/* The broadcaster (or teardown): the answer, once; later calls are
 * ignored. code NULL: stored and relayed as seq. */
void pv_publish_answer(struct pv_publish *p, uint64_t seq, int64_t date, const char *code,
                       const char *message);
/* The worker: true when answered within timeout_ms. */
bool pv_publish_wait(struct pv_publish *p, int timeout_ms);

#endif
