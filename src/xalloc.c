/* xalloc.c -- allocation that cannot fail (the policy is in xalloc.h).
 *
 * Threads: any. */
#include "palaver/xalloc.h"

#include <stdlib.h>
#include <string.h>

#include "palaver/log.h"

void *pv_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        pv_err("out of memory allocating %zu bytes", n);
        abort();
    }
    return p;
}

void *pv_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        pv_err("out of memory allocating %zu x %zu bytes", n, size);
        abort();
    }
    return p;
}

void *pv_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        pv_err("out of memory reallocating %zu bytes", n);
        abort();
    }
    return q;
}

char *pv_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(pv_xmalloc(n), s, n);
}
