/* xalloc.h -- the out-of-memory policy, stated once.
 *
 * palaverd treats running out of memory as fatal: pv_xmalloc() and friends
 * log one line and abort(). Error paths are kept for real failures (bad
 * input, I/O, peers), not for malloc returning NULL. systemd restarts the
 * service (Restart=on-failure).
 *
 * Threads: any.
 */
#ifndef PALAVER_XALLOC_H
#define PALAVER_XALLOC_H

#include <stddef.h>

void *pv_xmalloc(size_t n);
void *pv_xcalloc(size_t n, size_t size);
void *pv_xrealloc(void *p, size_t n);
char *pv_xstrdup(const char *s);

#endif
