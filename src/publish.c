/* publish.c -- the answer an HTTP publish waits for (see publish.h).
 *
 * Threads: one CivetWeb worker and the broadcaster, by the protocol in
 * publish.h (a mutex and a condition variable, and a reference count). */
#include "palaver/publish.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "palaver/clock.h"
#include "palaver/xalloc.h"

struct pv_publish *pv_publish_new(void)
{
    struct pv_publish *p = pv_xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 2);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    return p;
}

void pv_publish_unref(struct pv_publish *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

void pv_publish_answer(struct pv_publish *p, uint64_t seq, int64_t date, const char *code,
                       const char *message)
{
    pthread_mutex_lock(&p->mu);
    if (!p->done) {
        p->done = true;
        p->seq = seq;
        p->date = date;
        snprintf(p->code, sizeof(p->code), "%s", code ? code : "");
        snprintf(p->message, sizeof(p->message), "%s", message ? message : "");
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

bool pv_publish_wait(struct pv_publish *p, int timeout_ms)
{
    struct timespec deadline = pv_mono_deadline(timeout_ms);
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (!p->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
    bool done = p->done;
    pthread_mutex_unlock(&p->mu);
    return done;
}
