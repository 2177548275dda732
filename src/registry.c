/* registry.c -- dense array of joined clients.
 *
 * Threads: broadcaster only (see registry.h). */
#include "palaver/registry.h"

#include <stdint.h>
#include <stdlib.h>

#include "palaver/client.h"
#include "palaver/xalloc.h"

void pv_registry_init(struct pv_registry *r)
{
    r->v = NULL;
    r->n = 0;
    r->cap = 0;
}

void pv_registry_destroy(struct pv_registry *r)
{
    for (size_t i = 0; i < r->n; i++) {
        r->v[i]->index = SIZE_MAX;
        pv_client_unref(r->v[i]);
    }
    free(r->v);
    pv_registry_init(r);
}

void pv_registry_add(struct pv_registry *r, struct pv_client *c)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = pv_xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    c->index = r->n;
    r->v[r->n++] = c;
}

void pv_registry_remove(struct pv_registry *r, struct pv_client *c)
{
    size_t i = c->index;
    if (i >= r->n || r->v[i] != c)
        return;
    r->v[i] = r->v[--r->n];
    r->v[i]->index = i;
    c->index = SIZE_MAX;
}
