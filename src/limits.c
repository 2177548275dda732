/* limits.c -- rate bucket, per-IP counts, Origin check (see limits.h).
 *
 * Threads: struct pv_rate: one CivetWeb worker. struct pv_peers: all
 * CivetWeb workers, under its mutex `mu` (held for one hash lookup, no
 * other lock taken inside). pv_origin_allowed(): pure. */
#include "palaver/limits.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "palaver/clock.h"
#include "palaver/stats.h"
#include "palaver/xalloc.h"

/* ---- rate ---- */

void pv_rate_init(struct pv_rate *r, unsigned burst, uint64_t now_ns)
{
    r->tokens = burst;
    r->strikes = 0;
    r->last_ns = now_ns;
}

enum pv_rate_verdict pv_rate_take_n(struct pv_rate *r, double rate, double burst, double cost,
                                    unsigned strikes_max, uint64_t now_ns)
{
    if (rate <= 0)
        return PV_RATE_OK;
    double dt = now_ns > r->last_ns ? (double)(now_ns - r->last_ns) / 1e9 : 0.0;
    r->last_ns = now_ns;
    r->tokens += dt * rate;
    if (r->tokens > burst)
        r->tokens = burst;
    r->strikes -= dt;
    if (r->strikes < 0)
        r->strikes = 0;
    if (r->tokens >= cost || r->tokens >= burst) {
        r->tokens -= cost;
        return PV_RATE_OK;
    }
    r->strikes += 1.0;
    return r->strikes > strikes_max ? PV_RATE_CLOSE : PV_RATE_REFUSE;
}

double pv_rate_level(struct pv_rate *r, double rate, double burst, uint64_t now_ns)
{
    double dt = now_ns > r->last_ns ? (double)(now_ns - r->last_ns) / 1e9 : 0.0;
    r->last_ns = now_ns;
    r->tokens += dt * rate;
    if (r->tokens > burst)
        r->tokens = burst;
    return r->tokens;
}

enum pv_rate_verdict pv_rate_take(struct pv_rate *r, unsigned rate, unsigned burst, uint64_t now_ns)
{
    return pv_rate_take_n(r, rate, burst, 1.0, burst, now_ns);
}

/* ---- peers: chained hash table of address -> count ---- */

struct peer {
    struct peer *next;
    unsigned count;        /* WebSockets open */
    unsigned held;         /* TCP connections holding a worker */
    struct pv_rate shakes; /* handshake bucket */
    struct pv_rate bytes;  /* inbound bytes of all its connections */
    struct pv_rate reads;  /* history bytes replayed or paged to it */
    bool shakes_used, bytes_used, reads_used;
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

/* An entry with no connection whose buckets have refilled (after 60 s,
 * longer than any bucket takes) holds nothing worth keeping. */
#define IDLE_NS (60ull * 1000000000u)

static bool idle(const struct peer *e, uint64_t now_ns)
{
    uint64_t last = e->shakes.last_ns > e->bytes.last_ns ? e->shakes.last_ns : e->bytes.last_ns;
    if (e->reads.last_ns > last)
        last = e->reads.last_ns;
    return e->count == 0 && e->held == 0 && now_ns > last && now_ns - last > IDLE_NS;
}

/* Caller holds mu. Drops idle entries of the chain on the way. */
static struct peer **slot_of(struct pv_peers *p, const char *addr)
{
    struct peer **e = &p->bucket[hash(addr) & p->mask];
    uint64_t now = 0;
    while (*e && strcmp((*e)->addr, addr) != 0) {
        if ((*e)->count == 0 && (*e)->held == 0) {
            if (!now)
                now = pv_mono_ns();
            if (idle(*e, now)) {
                struct peer *gone = *e;
                *e = gone->next;
                free(gone);
                continue;
            }
        }
        e = &(*e)->next;
    }
    return e;
}

/* Caller holds mu: the entry for addr, created if needed. */
static struct peer *entry(struct pv_peers *p, const char *addr)
{
    struct peer **e = slot_of(p, addr);
    if (!*e) {
        size_t n = strlen(addr) + 1;
        *e = pv_xcalloc(1, sizeof(**e) + n);
        memcpy((*e)->addr, addr, n);
    }
    return *e;
}

bool pv_peers_hold(struct pv_peers *p, const char *addr, unsigned limit)
{
    pthread_mutex_lock(&p->mu);
    struct peer *e = entry(p, addr);
    bool ok = limit == 0 || e->held < limit;
    e->held++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void pv_peers_unhold(struct pv_peers *p, const char *addr)
{
    pthread_mutex_lock(&p->mu);
    struct peer **e = slot_of(p, addr);
    if (*e && (*e)->held > 0 && --(*e)->held == 0 && (*e)->count == 0 && !(*e)->shakes_used &&
        !(*e)->bytes_used && !(*e)->reads_used) {
        struct peer *gone = *e;
        *e = gone->next;
        free(gone);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Caller holds mu. */
static struct pv_rate *reads_of(struct pv_peers *p, const char *addr, double burst, uint64_t now_ns)
{
    struct peer *e = entry(p, addr);
    if (!e->reads_used) {
        e->reads = (struct pv_rate){.tokens = burst, .last_ns = now_ns};
        e->reads_used = true;
    }
    return &e->reads;
}

bool pv_peers_reads_ok(struct pv_peers *p, const char *addr, double rate, double burst,
                       uint64_t now_ns)
{
    if (rate <= 0)
        return true;
    pthread_mutex_lock(&p->mu);
    bool ok = pv_rate_level(reads_of(p, addr, burst, now_ns), rate, burst, now_ns) > 0;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void pv_peers_reads_charge(struct pv_peers *p, const char *addr, double rate, double burst,
                           double cost, uint64_t now_ns)
{
    if (rate <= 0)
        return;
    pthread_mutex_lock(&p->mu);
    struct pv_rate *r = reads_of(p, addr, burst, now_ns);
    pv_rate_level(r, rate, burst, now_ns);
    r->tokens -= cost;
    pthread_mutex_unlock(&p->mu);
}

bool pv_peers_handshake(struct pv_peers *p, const char *addr, unsigned rate, unsigned burst,
                        uint64_t now_ns)
{
    if (rate == 0)
        return true;
    pthread_mutex_lock(&p->mu);
    struct peer *e = entry(p, addr);
    if (!e->shakes_used) {
        pv_rate_init(&e->shakes, burst, now_ns);
        e->shakes_used = true;
    }
    enum pv_rate_verdict v = pv_rate_take_n(&e->shakes, rate, burst, 1.0, UINT32_MAX, now_ns);
    pthread_mutex_unlock(&p->mu);
    return v == PV_RATE_OK;
}

enum pv_rate_verdict pv_peers_bytes(struct pv_peers *p, const char *addr, double rate, double burst,
                                    double cost, uint64_t now_ns)
{
    if (rate <= 0)
        return PV_RATE_OK;
    pthread_mutex_lock(&p->mu);
    struct peer *e = entry(p, addr);
    if (!e->bytes_used) {
        e->bytes = (struct pv_rate){.tokens = burst, .last_ns = now_ns};
        e->bytes_used = true;
    }
    enum pv_rate_verdict v = pv_rate_take_n(&e->bytes, rate, burst, cost, UINT32_MAX, now_ns);
    pthread_mutex_unlock(&p->mu);
    return v;
}

bool pv_peers_acquire(struct pv_peers *p, const char *addr, unsigned limit)
{
    bool ok = true;
    pthread_mutex_lock(&p->mu);
    struct peer *e = entry(p, addr);
    if (limit && e->count >= limit) /* a new entry has count 0: never refused */
        ok = false;
    else
        e->count++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void pv_peers_release(struct pv_peers *p, const char *addr)
{
    pthread_mutex_lock(&p->mu);
    struct peer **e = slot_of(p, addr);
    /* Kept while its buckets matter; slot_of() drops it once idle. */
    if (*e && (*e)->count > 0 && --(*e)->count == 0 && (*e)->held == 0 && !(*e)->shakes_used &&
        !(*e)->bytes_used && !(*e)->reads_used) {
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

static bool same_host(const char *origin, bool https, const char *host)
{
    const char *oh = origin_host(origin);
    if (!oh || !host || !*oh || strchr(oh, '/'))
        return false;
    /* Known to have come over TLS (a trusted proxy said so): only the
     * https page of this host is its own, so a page injected into plain
     * http://host on the way cannot use the secure session. Otherwise the
     * scheme is unknown (an untrusted terminator may be in front) and
     * either is. */
    if (https && oh != origin + 8)
        return false;
    /* "http://h" is port 80 and "https://h" 443; a Host header names the
     * port only when it is not the scheme's default. */
    return strcasecmp(oh, host) == 0;
}

bool pv_origin_allowed(const char *origin, bool https, const char *host, const char *allowed)
{
    if (!origin || same_host(origin, https, host))
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

/* ---- Address bans ---- */

struct pv_bans {
    pthread_mutex_t mu; /* guards v */
    struct ban {
        char addr[48];
        int64_t until; /* ms since the epoch; 0: a free slot */
        int64_t account;
    } v[PV_BANS_MAX];
};

struct pv_bans *pv_bans_new(void)
{
    struct pv_bans *b = pv_xcalloc(1, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

void pv_bans_free(struct pv_bans *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void pv_bans_add(struct pv_bans *b, const char *addr, int64_t until_ms, int64_t account)
{
    pthread_mutex_lock(&b->mu);
    struct ban *slot = &b->v[0];
    for (size_t i = 0; i < PV_BANS_MAX; i++) {
        struct ban *e = &b->v[i];
        if (e->until && strcmp(e->addr, addr) == 0) {
            slot = e; /* the same address: the later end wins */
            if (e->until > until_ms)
                until_ms = e->until;
            break;
        }
        if (e->until < slot->until)
            slot = e; /* a free slot (0), or the ban that ends first */
    }
    snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
    slot->until = until_ms;
    slot->account = account;
    pthread_mutex_unlock(&b->mu);
}

int64_t pv_bans_until(struct pv_bans *b, const char *addr, int64_t now_ms)
{
    int64_t until = 0;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < PV_BANS_MAX; i++) {
        struct ban *e = &b->v[i];
        if (e->until > now_ms && strcmp(e->addr, addr) == 0) {
            until = e->until;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return until;
}

unsigned pv_bans_lift(struct pv_bans *b, int64_t account)
{
    unsigned n = 0;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; account > 0 && i < PV_BANS_MAX; i++)
        if (b->v[i].until && b->v[i].account == account) {
            b->v[i].until = 0;
            n++;
        }
    pthread_mutex_unlock(&b->mu);
    return n;
}
