/* peer.c -- the client address of a request (see peer.h).
 *
 * Threads: CivetWeb workers; nothing shared but the read-only list. */
#include "palaver/peer.h"

#include <civetweb.h>
#include <stdio.h>
#include <strings.h>

/* The value of the last header called name, or NULL: a client may send
 * its own X-Forwarded-For, and the proxy's is the one after it. */
static const char *last_header(const struct mg_request_info *ri, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < ri->num_headers; i++)
        if (ri->http_headers[i].name && strcasecmp(ri->http_headers[i].name, name) == 0)
            v = ri->http_headers[i].value;
    return v;
}

int pv_request_peer(const struct mg_connection *conn, const struct pv_cidrs *trusted,
                    struct pv_peer *out)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (!trusted || !trusted->n)
        return pv_peer_resolve(NULL, ri->remote_addr, ri->remote_port, NULL, NULL, out);
    return pv_peer_resolve(trusted, ri->remote_addr, ri->remote_port,
                           last_header(ri, "X-Forwarded-For"), last_header(ri, "X-Forwarded-Proto"),
                           out);
}

void pv_peer_text(const struct mg_connection *conn, const struct pv_peer *p, char *out, size_t n)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (p->forwarded)
        snprintf(out, n, "%s via %s:%d", p->addr, ri->remote_addr, ri->remote_port);
    else
        snprintf(out, n, "%s:%d", p->addr, p->port);
}

void pv_request_peer_text(const struct mg_connection *conn, const struct pv_cidrs *trusted,
                          char *out, size_t n)
{
    struct pv_peer p;
    (void)pv_request_peer(conn, trusted, &p);
    pv_peer_text(conn, &p, out, n);
}
