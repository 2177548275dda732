/* peer.h -- who sent this request: the socket's peer, or, when that peer
 * is a trusted proxy (--trusted-proxies), the client it forwarded for
 * (the rule is proxy.h's). Everything that uses a client's address --
 * per-address limits, bans, login throttling, logs, the ACL through a
 * proxy -- takes it from here, never from mg_request_info.remote_addr.
 *
 * Threads: CivetWeb workers, each on the connection it serves; reads the
 * request's headers and the read-only trusted list. */
#ifndef PALAVER_PEER_H
#define PALAVER_PEER_H

#include <stddef.h>

#include "palaver/proxy.h"

struct mg_connection;

/* Fills out; 0, or -1 when a trusted proxy forwarded an X-Forwarded-For
 * that is not an address (out is then the socket's peer; answer 400). */
int pv_request_peer(const struct mg_connection *conn, const struct pv_cidrs *trusted,
                    struct pv_peer *out);

/* The peer as log lines name it: "addr:port", or through a proxy
 * "client via proxy:port" (the port is the proxy's side). */
void pv_peer_text(const struct mg_connection *conn, const struct pv_peer *p, char *out, size_t n);

/* Both at once, for a log line about conn's request. */
void pv_request_peer_text(const struct mg_connection *conn, const struct pv_cidrs *trusted,
                          char *out, size_t n);

#endif
