/* registry.h -- the set of joined clients.
 *
 * Threads: owned by the broadcaster thread; nothing else reads or writes
 * it. Clients are kept in a dense array for the fanout loop; each client
 * remembers its slot (c->index) so removal is O(1) by swapping the last
 * client into the hole.
 */
#ifndef PALAVER_REGISTRY_H
#define PALAVER_REGISTRY_H

#include <stddef.h>

struct pv_client;

struct pv_registry {
    struct pv_client **v;
    size_t n, cap;
};

void pv_registry_init(struct pv_registry *r);
/* Frees the array and drops the registry's reference to each client. */
void pv_registry_destroy(struct pv_registry *r);
/* Adds c (taking over one reference). c must not be registered. */
void pv_registry_add(struct pv_registry *r, struct pv_client *c);
/* Removes c and returns the registry's reference to the caller. */
void pv_registry_remove(struct pv_registry *r, struct pv_client *c);

static inline size_t pv_registry_count(const struct pv_registry *r)
{
    return r->n;
}

#endif
