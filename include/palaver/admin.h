/* admin.h -- the operator's endpoints on the chat port: /healthz (200
 * while the broadcaster loop is alive, 503 otherwise) and /metrics
 * (Prometheus text exposition format 0.0.4).
 *
 * Threads: the handlers run on CivetWeb workers and only read: relaxed
 * atomics from stats.h, the queue depth, the read-only config.
 */
#ifndef PALAVER_ADMIN_H
#define PALAVER_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

struct mg_context;
struct pv_config;
struct pv_queue;
struct pv_stats;
struct pv_store;

struct pv_admin {
    const struct pv_config *cfg;
    struct pv_stats *stats;
    struct pv_queue *queue;
    struct pv_store *store;  /* NULL: memory only, or it failed to open */
    const char *store_error; /* why it failed to open ("" if it did not) */
};

/* How long the broadcaster loop may go without turning before it counts
 * as stuck (it turns at least once a second when idle). */
#define PV_HEARTBEAT_STALE_NS 5000000000ull
/* /healthz says 503 "lagging" when events wait this long in the queue. */
#define PV_QUEUE_LAG_BAD_NS 2000000000ull

/* True while the broadcaster loop turns; *age_ns gets its heartbeat's age. */
bool pv_admin_alive(const struct pv_stats *s, uint64_t *age_ns);

void pv_admin_register(struct mg_context *ctx, struct pv_admin *a);

#endif
