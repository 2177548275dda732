/* limits.h -- per-client and per-address limits checked on CivetWeb
 * workers: the message-rate token bucket, the per-IP connection count and
 * the Origin check.
 *
 * Threads:
 *  - struct pv_rate belongs to one client's CivetWeb worker (the data
 *    handler); nothing in it is shared.
 *  - struct pv_peers is shared by all CivetWeb workers (accept, ready,
 *    data and close handlers) and the broadcaster (history read budgets).
 *    Its one lock, `mu`, guards the whole table and is held for a hash
 *    lookup and a few arithmetic operations only, never around I/O; no
 *    other lock is taken while it is held, so the broadcaster can wait on
 *    it only for as long as that.
 *  - pv_origin_allowed() is a pure function.
 */
#ifndef PALAVER_LIMITS_H
#define PALAVER_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- message rate: token bucket plus a strike count ---- */

struct pv_rate {
    double tokens;  /* messages the client may send right now */
    double strikes; /* refused messages, draining at one per second */
    uint64_t last_ns;
};

enum pv_rate_verdict {
    PV_RATE_OK,     /* take the message */
    PV_RATE_REFUSE, /* over the rate: refuse it with an error */
    PV_RATE_CLOSE,  /* a sustained flood: close the client (1008) */
};

/* Typing requests ({"type":"typing"}) have a bucket of their own: a page
 * sends one when its person starts or stops typing and a refresh every
 * few seconds (docs/receipts.md), so 2 a second with 10 at once is far
 * above any page and far below what would cost the broadcaster. */
#define PV_TYPING_RATE 2u
#define PV_TYPING_BURST 10u

/* A full bucket: `burst` messages at once. */
void pv_rate_init(struct pv_rate *r, unsigned burst, uint64_t now_ns);

/* The same for a message costing `cost` tokens (bytes, for the byte
 * budget): refused while fewer than `cost` are left, except that a full
 * bucket always takes one message (going into debt), so a message larger
 * than the burst is slow, not impossible. */
enum pv_rate_verdict pv_rate_take_n(struct pv_rate *r, double rate, double burst, double cost,
                                    unsigned strikes_max, uint64_t now_ns);

/* Refills r to now_ns and returns the tokens it holds (may be negative:
 * a debt). */
double pv_rate_level(struct pv_rate *r, double rate, double burst, uint64_t now_ns);

/* One message at now_ns. The bucket refills at `rate` per second up to
 * `burst`. A refused message adds a strike; strikes drain at one per
 * second, and more than `burst` of them means a flood. rate 0 = no limit. */
enum pv_rate_verdict pv_rate_take(struct pv_rate *r, unsigned rate, unsigned burst,
                                  uint64_t now_ns);

/* ---- WebSocket connections per IP address ---- */

struct pv_peers;

/* A table for up to `expected` addresses at once (it grows if needed). */
struct pv_peers *pv_peers_new(unsigned expected);
void pv_peers_free(struct pv_peers *p);

/* Counts one more connection from addr unless it already has `limit`
 * (0 = no limit). Returns true if counted; false leaves nothing counted. */
bool pv_peers_acquire(struct pv_peers *p, const char *addr, unsigned limit);
/* Gives back one connection from addr (counted by pv_peers_acquire). */
void pv_peers_release(struct pv_peers *p, const char *addr);
/* Connections counted for addr now. */
unsigned pv_peers_count(struct pv_peers *p, const char *addr);
/* TCP connections holding a CivetWeb worker (from accept to close), per
 * address: counts one more unless addr holds `limit` already (0 = no
 * limit). Always counted, even when refused (returns false): every
 * pv_peers_hold() is matched by one pv_peers_unhold() at close. */
bool pv_peers_hold(struct pv_peers *p, const char *addr, unsigned limit);
void pv_peers_unhold(struct pv_peers *p, const char *addr);

/* Handshake rate per address: a token bucket of `burst` handshakes that
 * refills at `rate` per second (rate 0 = no limit). True to go on (one
 * token taken). An address's entry outlives its connections until its
 * bucket is full again, so closing and reopening does not reset it. */
bool pv_peers_handshake(struct pv_peers *p, const char *addr, unsigned rate, unsigned burst,
                        uint64_t now_ns);
/* History reads per address (replays and pages, on the broadcaster): a
 * bucket of `burst` bytes refilling at `rate`. pv_peers_reads_ok() says
 * whether it is not in debt; pv_peers_reads_charge() takes `cost` bytes
 * (into debt if need be: a read's size is known only once it is done). */
bool pv_peers_reads_ok(struct pv_peers *p, const char *addr, double rate, double burst,
                       uint64_t now_ns);
void pv_peers_reads_charge(struct pv_peers *p, const char *addr, double rate, double burst,
                           double cost, uint64_t now_ns);

/* Bytes per address: the messages of all of addr's connections draw on
 * one bucket of `burst` bytes refilling at `rate` per second. */
enum pv_rate_verdict pv_peers_bytes(struct pv_peers *p, const char *addr, double rate, double burst,
                                    double cost, uint64_t now_ns);

/* ---- Address bans (docs/accounts.md, "Moderation") ----
 *
 * A moderator's ban of a guest, or of an account while guests may chat
 * (auth = open), also bans the addresses its connections came from, for a
 * while: weak (an address is shared behind NAT, and changes), in memory
 * only (a restart lifts them), but it stops the banned person from
 * walking back in as a guest. Threads: the broadcaster adds; CivetWeb
 * workers look up at each handshake; one mutex, held for a scan of at
 * most PV_BANS_MAX entries (microseconds). */
#define PV_BANS_MAX 256
struct pv_bans;
struct pv_bans *pv_bans_new(void);
void pv_bans_free(struct pv_bans *b);
/* Bans addr until `until_ms` (wall clock), for `account` (0: a guest).
 * When full, the ban that ends first makes room. */
void pv_bans_add(struct pv_bans *b, const char *addr, int64_t until_ms, int64_t account);
/* When addr's ban ends (ms since the epoch), or 0 when it is not banned. */
int64_t pv_bans_until(struct pv_bans *b, const char *addr, int64_t now_ms);
/* Lifts the address bans that came with account's ban; returns how many. */
unsigned pv_bans_lift(struct pv_bans *b, int64_t account);

/* ---- Origin ---- */

/* May a handshake with this Origin header (NULL: none sent) and Host
 * header (NULL: none) open a WebSocket? The page's own host (Origin's
 * host[:port] equal to Host) always may; when the request is known to
 * have come over https (a trusted proxy's X-Forwarded-Proto, proxy.h),
 * only with the https scheme. `allowed` is the configured list
 * of further origins, space/comma separated and compared case-insensitively
 * ("http://chat.lan:8080"); "*" allows any origin. A request without Origin
 * is not from a browser page and is allowed: the check exists to stop
 * other sites' pages from using a visitor's browser (cross-site WebSocket
 * hijacking), which always send Origin. */
bool pv_origin_allowed(const char *origin, bool https, const char *host, const char *allowed);

#endif
