/* proxy.c -- trusted proxies, forwarded addresses, the ACL rule (see
 * proxy.h).
 *
 * Threads: pure functions, any thread; nothing shared. */
#include "palaver/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Parses an address literal of exactly len bytes (no port, no brackets)
 * into bytes; an IPv4-mapped IPv6 address becomes IPv4. */
static bool parse_addr(const char *s, size_t len, unsigned char out[16], bool *v6)
{
    char buf[PV_ADDR_MAX];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out) == 1) {
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out, mapped, sizeof(mapped)) == 0) {
        memmove(out, out + 12, 4);
        memset(out + 4, 0, 12);
        *v6 = false;
        return true;
    }
    *v6 = true;
    return true;
}

static bool port_ok(const char *p, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

/* The address part of "a", "a:port", "[v6]", "[v6]:port". */
static bool split_addr(const char *s, size_t len, const char **a, size_t *alen)
{
    if (len && s[0] == '[') {
        const char *end = memchr(s, ']', len);
        if (!end)
            return false;
        *a = s + 1;
        *alen = (size_t)(end - s) - 1;
        size_t rest = len - (size_t)(end - s) - 1;
        return rest == 0 || (end[1] == ':' && port_ok(end + 2, rest - 1));
    }
    const char *colon = memchr(s, ':', len);
    if (colon && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        colon = NULL; /* two or more colons: a bare IPv6 address */
    *a = s;
    *alen = colon ? (size_t)(colon - s) : len;
    return !colon || port_ok(colon + 1, len - *alen - 1);
}

bool pv_addr_normalize(const char *s, size_t len, char out[PV_ADDR_MAX])
{
    const char *a;
    size_t alen;
    unsigned char bytes[16];
    bool v6;
    if (!s || !split_addr(s, len, &a, &alen) || !parse_addr(a, alen, bytes, &v6))
        return false;
    return inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, out, PV_ADDR_MAX) != NULL;
}

static bool cidr_parse(const char *s, size_t len, struct pv_cidr *c)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    if (!parse_addr(s, alen, c->net, &c->v6))
        return false;
    unsigned max = c->v6 ? 128 : 32;
    c->bits = (unsigned char)max;
    if (slash) {
        size_t dn = len - alen - 1;
        unsigned bits = 0;
        if (dn == 0 || dn > 3)
            return false;
        for (size_t i = 0; i < dn; i++) {
            if (slash[1 + i] < '0' || slash[1 + i] > '9')
                return false;
            bits = bits * 10 + (unsigned)(slash[1 + i] - '0');
        }
        if (bits > max)
            return false;
        c->bits = (unsigned char)bits;
    }
    return true;
}

static bool cidr_has(const struct pv_cidr *c, const unsigned char a[16], bool v6)
{
    if (c->v6 != v6)
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->net[full] & mask) == (a[full] & mask);
}

int pv_cidrs_parse(const char *list, struct pv_cidrs *out, char *err, size_t errsz)
{
    out->n = 0;
    for (const char *s = list ? list : ""; *s;) {
        s += strspn(s, " ,\t");
        size_t n = strcspn(s, " ,\t");
        if (n == 0)
            break;
        if (out->n == PV_CIDRS_MAX) {
            snprintf(err, errsz, "more than %d trusted proxies", PV_CIDRS_MAX);
            return -1;
        }
        if (!cidr_parse(s, n, &out->v[out->n])) {
            snprintf(err, errsz, "'%.*s' is not an address or address/prefix",
                     (int)(n > 64 ? 64 : n), s);
            return -1;
        }
        out->n++;
        s += n;
    }
    return 0;
}

bool pv_cidrs_match(const struct pv_cidrs *c, const char *addr)
{
    unsigned char a[16];
    bool v6;
    if (!c || !c->n || !addr || !parse_addr(addr, strlen(addr), a, &v6))
        return false;
    for (unsigned i = 0; i < c->n; i++)
        if (cidr_has(&c->v[i], a, v6))
            return true;
    return false;
}

int pv_acl_check(const char *acl, const char *addr)
{
    if (!acl || !*acl)
        return 1;
    unsigned char a[16];
    bool v6;
    if (!addr || !parse_addr(addr, strlen(addr), a, &v6))
        return 0;
    char allowed = '-'; /* CivetWeb 1.15: any list denies by default */
    for (const char *s = acl; *s;) {
        s += strspn(s, " ,");
        size_t n = strcspn(s, ",");
        while (n && s[n - 1] == ' ')
            n--;
        if (n == 0)
            break;
        struct pv_cidr c;
        if ((s[0] != '+' && s[0] != '-') || !cidr_parse(s + 1, n - 1, &c))
            return -1;
        if (cidr_has(&c, a, v6))
            allowed = s[0];
        s += n;
    }
    return allowed == '+';
}

/* The last comma-separated element of a header value, trimmed. */
static const char *last_element(const char *v, size_t *len)
{
    const char *comma = strrchr(v, ',');
    const char *p = comma ? comma + 1 : v;
    p += strspn(p, " \t");
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    *len = n;
    return p;
}

int pv_peer_resolve(const struct pv_cidrs *trusted, const char *sock_addr, int sock_port,
                    const char *xff, const char *xfp, struct pv_peer *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->addr, sizeof(out->addr), "%s", sock_addr ? sock_addr : "");
    out->port = sock_port;
    if (!xff || !pv_cidrs_match(trusted, sock_addr))
        return 0; /* not a trusted proxy, or the proxy host's own request */
    size_t n;
    const char *last = last_element(xff, &n);
    char addr[PV_ADDR_MAX];
    if (!pv_addr_normalize(last, n, addr))
        return -1;
    memcpy(out->addr, addr, sizeof(addr));
    out->forwarded = true;
    if (xfp) {
        const char *p = last_element(xfp, &n);
        out->https = n == 5 && strncasecmp(p, "https", 5) == 0;
    }
    return 0;
}
