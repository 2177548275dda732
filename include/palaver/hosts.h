/* hosts.h -- the Host names palaverd answers to: the defence against DNS
 * rebinding.
 *
 * A page on another site can point its own host name at palaverd's LAN
 * address (DNS rebinding). The browser then sends Host and Origin both
 * naming the attacker's host, so an Origin-equals-Host check passes and
 * the page can read /metrics, the history and post messages. Every
 * request (the page, WebSocket handshakes, /healthz, /metrics) is
 * therefore checked here first, and a Host that is not one of ours gets
 * 421 Misdirected Request. Ours are:
 *  - IP literals that are addresses of this machine (its interfaces, and
 *    all of 127.0.0.0/8): a rebinding page always uses a name;
 *  - "localhost" and names under ".localhost";
 *  - this machine's host name, and that name under ".local" (mDNS);
 *  - the hosts of --allowed-origins entries;
 *  - --allowed-hosts: names, ".suffix" for a domain and everything under
 *    it, or "*" for any Host (behind a proxy that checks Host itself).
 * A request without Host (HTTP/1.0 tools) is answered: browsers always
 * send one.
 *
 * Threads: pv_host_name() and pv_host_listed() are pure. struct pv_hosts
 * is shared by the CivetWeb workers; its mutex `mu` guards the local names
 * and addresses, held for a lookup or for one getifaddrs(3) refresh (at
 * most one per PV_HOSTS_REFRESH_MS, when an unknown address is asked for:
 * DHCP may have given the machine a new one).
 */
#ifndef PALAVER_HOSTS_H
#define PALAVER_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#define PV_HOST_MAX 256
#define PV_HOSTS_REFRESH_MS 2000

/* The host part of a Host header value ("name[:port]", "[v6]:port"),
 * lower-cased, without a trailing dot, into out. False if malformed
 * (empty, too long, bad characters, a port that is not a number). */
bool pv_host_name(const char *header, char out[PV_HOST_MAX]);

/* Does the list (space/comma separated names, ".suffix", "*") name host?
 * origins: entries "scheme://host[:port]" whose host counts too. */
bool pv_host_listed(const char *host, const char *list, const char *origins);

struct pv_hosts;

struct pv_hosts *pv_hosts_new(void);
void pv_hosts_free(struct pv_hosts *h);

/* The whole check for one request's Host header (NULL: none sent). */
bool pv_hosts_allow(struct pv_hosts *h, const char *header, const char *allowed_hosts,
                    const char *allowed_origins);

#endif
