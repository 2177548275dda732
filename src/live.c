/* live.c -- settings SIGHUP can change (see live.h).
 *
 * Threads: main writes; CivetWeb workers read through the atomics. */
#include "palaver/live.h"

#include <stdlib.h>
#include <string.h>

#include "palaver/config.h"
#include "palaver/log.h"
#include "palaver/xalloc.h"

struct retired {
    struct retired *next;
    char *s;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = pv_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

/* Replaces a published string; the old one is kept until exit (a worker
 * may still read it). */
static void publish(struct pv_live *l, _Atomic(const char *) *slot, const char *value)
{
    const char *prev = atomic_exchange_explicit(slot, dup_str(value), memory_order_acq_rel);
    struct retired *r = pv_xmalloc(sizeof(*r));
    r->s = (char *)prev;
    r->next = l->retired;
    l->retired = r;
}

void pv_live_init(struct pv_live *l, const struct pv_config *c)
{
    atomic_init(&l->rate_limit, c->rate_limit);
    atomic_init(&l->rate_burst, c->rate_burst);
    atomic_init(&l->max_per_ip, c->max_per_ip);
    atomic_init(&l->members_only, strcmp(c->auth, "members") == 0);
    atomic_init(&l->origins, dup_str(c->allowed_origins));
    atomic_init(&l->hosts, dup_str(c->allowed_hosts));
    l->retired = NULL;
}

void pv_live_update(struct pv_live *l, const struct pv_config *old, const struct pv_config *c)
{
    if (old->log_level != c->log_level) {
        pv_log_set_level(c->log_level);
        pv_notice("reload: log-level %s -> %s", pv_log_level_name(old->log_level),
                  pv_log_level_name(c->log_level));
    }
    if (old->rate_limit != c->rate_limit) {
        atomic_store_explicit(&l->rate_limit, c->rate_limit, memory_order_relaxed);
        pv_notice("reload: rate-limit %u -> %u", old->rate_limit, c->rate_limit);
    }
    if (old->rate_burst != c->rate_burst) {
        atomic_store_explicit(&l->rate_burst, c->rate_burst, memory_order_relaxed);
        pv_notice("reload: rate-burst %u -> %u", old->rate_burst, c->rate_burst);
    }
    if (old->max_per_ip != c->max_per_ip) {
        atomic_store_explicit(&l->max_per_ip, c->max_per_ip, memory_order_relaxed);
        pv_notice("reload: max-per-ip %u -> %u", old->max_per_ip, c->max_per_ip);
    }
    if (strcmp(old->auth, c->auth) != 0) {
        atomic_store_explicit(&l->members_only, strcmp(c->auth, "members") == 0,
                              memory_order_relaxed);
        pv_notice("reload: auth %s -> %s%s", old->auth, c->auth,
                  strcmp(c->auth, "members") == 0 ? " (guests connected now are closed with 4004)"
                                                  : " (new connections; open ones stay)");
    }
    if (strcmp(old->allowed_origins, c->allowed_origins) != 0) {
        publish(l, &l->origins, c->allowed_origins);
        pv_notice("reload: allowed-origins '%s' -> '%s'", old->allowed_origins, c->allowed_origins);
    }
    if (strcmp(old->allowed_hosts, c->allowed_hosts) != 0) {
        publish(l, &l->hosts, c->allowed_hosts);
        pv_notice("reload: allowed-hosts '%s' -> '%s'", old->allowed_hosts, c->allowed_hosts);
    }
}

void pv_live_destroy(struct pv_live *l)
{
    free((char *)atomic_load(&l->origins));
    free((char *)atomic_load(&l->hosts));
    while (l->retired) {
        struct retired *r = l->retired;
        l->retired = r->next;
        free(r->s);
        free(r);
    }
}
