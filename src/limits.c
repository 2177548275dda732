/* limits.c -- rate bucket, per-IP counts, Origin check (see limits.h).
 *
 * Threads: struct pv_rate: one CivetWeb worker. struct pv_peers: all
 * CivetWeb workers, under its mutex `mu` (held for one hash lookup, no
 * other lock taken inside). pv_origin_allowed(): pure. */
#include "palaver/limits.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "palaver/xalloc.h"

/* ---- rate ---- */

void pv_rate_init(struct pv_rate *r, unsigned burst, uint64_t now_ns)
{
    r->tokens = burst;
    r->strikes = 0;
    r->last_ns = now_ns;
}

enum pv_rate_verdict pv_rate_take(struct pv_rate *r, unsigned rate, unsigned burst,
                                  uint64_t now_ns)
{
    if (rate == 0)
        return PV_RATE_OK;
    double dt = now_ns > r->last_ns ? (double)(now_ns - r->last_ns) / 1e9 : 0.0;
    r->last_ns = now_ns;
    r->tokens += dt * rate;
    if (r->tokens > burst)
        r->tokens = burst;
    r->strikes -= dt;
    if (r->strikes < 0)
        r->strikes = 0;
    if (r->tokens >= 1.0) {
        r->tokens -= 1.0;
        return PV_RATE_OK;
    }
    r->strikes += 1.0;
    return r->strikes > burst ? PV_RATE_CLOSE : PV_RATE_REFUSE;
}

/* ---- peers: chained hash table of address -> count ---- */

struct peer {
    struct peer *next;
    unsigned count;
    char addr[];
};

struct pv_peers {
    pthread_mutex_t mu; /* guards everything below */
    struct peer **bucket;
    size_t mask;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a: addresses are short */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

struct pv_peers *pv_peers_new(unsigned expected)
{
    struct pv_peers *p = pv_xcalloc(1, sizeof(*p));
    size_t n = 64;
    while (n < (size_t)expected * 2)
        n *= 2;
    pthread_mutex_init(&p->mu, NULL);
    p->bucket = pv_xcalloc(n, sizeof(*p->bucket));
    p->mask = n - 1;
    return p;
}

void pv_peers_free(struct pv_peers *p)
{
    if (!p)
        return;
    for (size_t i = 0; i <= p->mask; i++) {
        for (struct peer *e = p->bucket[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(p->bucket);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Caller holds mu. */
static struct peer **slot_of(struct pv_peers *p, const char *addr)
{
    struct peer **e = &p->bucket[hash(addr) & p->mask];
    while (*e && strcmp((*e)->addr, addr) != 0)
        e = &(*e)->next;
    return e;
}

bool pv_peers_acquire(struct pv_peers *p, const char *addr, unsigned limit)
{
    bool ok = true;
    pthread_mutex_lock(&p->mu);
    struct peer **e = slot_of(p, addr);
    if (!*e) {
        size_t n = strlen(addr) + 1;
        *e = pv_xcalloc(1, sizeof(**e) + n);
        memcpy((*e)->addr, addr, n);
    }
    if (limit && (*e)->count >= limit) /* a new entry has count 0: never refused */
        ok = false;
    else
        (*e)->count++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void pv_peers_release(struct pv_peers *p, const char *addr)
{
    pthread_mutex_lock(&p->mu);
    struct peer **e = slot_of(p, addr);
    if (*e && --(*e)->count == 0) {
        struct peer *gone = *e;
        *e = gone->next;
        free(gone);
    }
    pthread_mutex_unlock(&p->mu);
}

unsigned pv_peers_count(struct pv_peers *p, const char *addr)
{
    pthread_mutex_lock(&p->mu);
    struct peer *e = *slot_of(p, addr);
    unsigned n = e ? e->count : 0;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* ---- Origin ---- */

/* The "host[:port]" part of an origin "http(s)://host[:port]", or NULL
 * for any other scheme (including the opaque origin "null"). */
static const char *origin_host(const char *origin)
{
    if (strncasecmp(origin, "http://", 7) == 0)
        return origin + 7;
    if (strncasecmp(origin, "https://", 8) == 0)
        return origin + 8;
    return NULL;
}

static bool same_host(const char *origin, const char *host)
{
    const char *oh = origin_host(origin);
    if (!oh || !host || !*oh || strchr(oh, '/'))
        return false;
    /* "http://h" is port 80 and "https://h" 443; a Host header names the
     * port only when it is not the scheme's default. */
    return strcasecmp(oh, host) == 0;
}

bool pv_origin_allowed(const char *origin, const char *host, const char *allowed)
{
    if (!origin || same_host(origin, host))
        return true;
    if (!allowed)
        return false;
    size_t olen = strlen(origin);
    for (const char *s = allowed; *s;) {
        size_t n = strcspn(s, " ,\t");
        if (n == 1 && *s == '*')
            return true;
        if (n && n == olen && strncasecmp(s, origin, n) == 0)
            return true;
        s += n;
        s += strspn(s, " ,\t");
    }
    return false;
}
