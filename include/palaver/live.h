/* live.h -- the settings SIGHUP can change while palaverd runs: the
 * message-rate limit and burst, the per-IP connection limit, the
 * allowed origins and hosts, and whether only members may connect (the
 * log level lives in log.c).
 *
 * Threads: main writes (at start and on SIGHUP); CivetWeb workers read.
 * Numbers are atomics (relaxed: each is used on its own, a handshake or a
 * message may see the old or the new value). The origins and hosts strings are
 * immutable once published through an atomic pointer (release/acquire);
 * a replaced string is kept until pv_live_destroy() at exit, because a
 * worker may still be reading it -- a few hundred bytes per reload.
 */
#ifndef PALAVER_LIVE_H
#define PALAVER_LIVE_H

#include <stdatomic.h>

struct pv_config;

struct pv_live {
    atomic_uint rate_limit;
    atomic_uint rate_burst;
    atomic_uint max_per_ip;
    atomic_bool members_only; /* auth = members: a WebSocket needs a session */
    _Atomic(const char *) origins;
    _Atomic(const char *) hosts; /* --allowed-hosts, same rules as origins */
    struct retired *retired;     /* main only */
};

void pv_live_init(struct pv_live *l, const struct pv_config *c);
/* Publishes c's live settings, logging each that changed against old. */
void pv_live_update(struct pv_live *l, const struct pv_config *old, const struct pv_config *c);
void pv_live_destroy(struct pv_live *l);

#endif
