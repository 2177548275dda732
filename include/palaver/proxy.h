/* proxy.h -- palaverd behind a TLS terminator: which peers are trusted
 * proxies, the client address and scheme such a peer forwards, and
 * CivetWeb's access-control-list rule applied to that address.
 *
 * The protocol with the terminator (docs/tls.md):
 *  - Only a connection whose socket peer is in --trusted-proxies may name
 *    another client. From any other peer X-Forwarded-For and
 *    X-Forwarded-Proto are ignored, whatever they say.
 *  - The client is the LAST address of the LAST X-Forwarded-For header:
 *    the hop the trusted proxy itself appended (HAProxy's `option
 *    forwardfor` adds its own header after any the client sent). Earlier
 *    hops are the client's own claims and are never believed.
 *  - The scheme is https only when the last X-Forwarded-Proto says
 *    "https"; anything else is http (a missing header never makes a
 *    request secure).
 *  - A trusted peer's request without X-Forwarded-For is the proxy host's
 *    own (a health check, a local scrape): the socket address, http. One
 *    with an X-Forwarded-For that is not an address is refused (400).
 * Addresses are normalized (inet_ntop; an IPv4-mapped IPv6 address is
 * its IPv4 form), so per-address limits, bans and logs see one spelling.
 *
 * Threads: everything here is pure (no state, no I/O, no locks); callable
 * from any thread. Fuzzed: tests/fuzz/fuzz_proxy.c. */
#ifndef PALAVER_PROXY_H
#define PALAVER_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#define PV_ADDR_MAX 48 /* an IPv6 address as text, with its NUL (INET6_ADDRSTRLEN is 46) */
#define PV_CIDRS_MAX 32

struct pv_cidr {
    unsigned char net[16]; /* IPv4 in the first 4 bytes */
    unsigned char bits;    /* prefix length */
    bool v6;
};

struct pv_cidrs {
    struct pv_cidr v[PV_CIDRS_MAX];
    unsigned n;
};

/* "127.0.0.1 10.0.0.0/8, ::1" (spaces or commas) into out. 0, or -1 with
 * a one-line reason in err (a bad address, a prefix too long, too many
 * entries). An empty list is valid (no proxy trusted). */
int pv_cidrs_parse(const char *list, struct pv_cidrs *out, char *err, size_t errsz);
/* Is the address (text, as CivetWeb or pv_addr_normalize gives it) in
 * one of the networks? False for anything that is not an address. */
bool pv_cidrs_match(const struct pv_cidrs *c, const char *addr);

/* The address in s[0..len) -- "1.2.3.4", "1.2.3.4:port", "2001:db8::1",
 * "[2001:db8::1]" or "[2001:db8::1]:port" -- normalized into out. False
 * if it is anything else ("unknown", a name, garbage). */
bool pv_addr_normalize(const char *s, size_t len, char out[PV_ADDR_MAX]);

/* CivetWeb 1.15's access_control_list rule ("-0.0.0.0/0,+192.168.1.0/24",
 * its check_acl()): the last entry that matches decides; when none does,
 * the address is refused. 1 allowed, 0 refused, -1 the list
 * is malformed (callers refuse). An empty list allows everyone. */
int pv_acl_check(const char *acl, const char *addr);

/* Who sent a request. */
struct pv_peer {
    char addr[PV_ADDR_MAX]; /* the client: forwarded, or the socket's peer */
    int port;               /* the socket peer's port (the proxy's side when forwarded) */
    bool https;             /* came over TLS (only ever through a trusted proxy) */
    bool forwarded;         /* addr came from X-Forwarded-For */
};

/* The rule above. sock_addr/sock_port: the socket's peer; xff, xfp: the
 * last X-Forwarded-For and X-Forwarded-Proto values, or NULL. 0, or -1
 * when a trusted peer forwarded something that is not an address (out
 * then holds the socket peer, not forwarded). */
int pv_peer_resolve(const struct pv_cidrs *trusted, const char *sock_addr, int sock_port,
                    const char *xff, const char *xfp, struct pv_peer *out);

#endif
