/* hosts.c -- Host header check against DNS rebinding (see hosts.h).
 *
 * Threads: pv_host_name() and pv_host_listed() are pure; struct pv_hosts
 * is shared by CivetWeb workers under its mutex `mu` (held for a lookup or
 * one interface refresh, no other lock taken inside). */
#include "palaver/hosts.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "palaver/clock.h"
#include "palaver/stats.h"
#include "palaver/xalloc.h"

bool pv_host_name(const char *header, char out[PV_HOST_MAX])
{
    size_t n = 0;
    const char *p = header, *end;
    if (*p == '[') { /* [v6]:port */
        end = strchr(p, ']');
        if (!end)
            return false;
        p++;
        n = (size_t)(end - p);
        end++;
    } else {
        end = strchr(p, ':');
        if (!end)
            end = p + strlen(p);
        n = (size_t)(end - p);
    }
    if (n == 0 || n >= PV_HOST_MAX)
        return false;
    if (*end == ':') { /* the port: digits only, at most 5 */
        size_t d = strspn(end + 1, "0123456789");
        if (d == 0 || d > 5 || end[1 + d] != '\0')
            return false;
    } else if (*end != '\0') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
                  ch == '_' || (header[0] == '[' && ch == ':');
        if (!ok)
            return false;
        out[i] = ch;
    }
    if (n > 1 && out[n - 1] == '.')
        n--; /* "host." is the same host */
    out[n] = '\0';
    return true;
}

/* Does one list entry (n bytes at e) name host? */
static bool entry_matches(const char *e, size_t n, const char *host)
{
    size_t hl = strlen(host);
    if (n == 1 && e[0] == '*')
        return true;
    if (n > 1 && e[0] == '.') { /* ".example.lan": it and everything under it */
        if (hl == n - 1 && strncasecmp(host, e + 1, n - 1) == 0)
            return true;
        return hl > n && strncasecmp(host + hl - n, e, n) == 0;
    }
    return hl == n && strncasecmp(host, e, n) == 0;
}

bool pv_host_listed(const char *host, const char *list, const char *origins)
{
    for (const char *s = list ? list : ""; *s;) {
        size_t n = strcspn(s, " ,\t");
        if (n && entry_matches(s, n, host))
            return true;
        s += n;
        s += strspn(s, " ,\t");
    }
    for (const char *s = origins ? origins : ""; *s;) {
        size_t n = strcspn(s, " ,\t");
        const char *sep = n > 3 ? memchr(s, ':', n) : NULL;
        if (sep && (size_t)(sep - s) + 3 <= n && sep[1] == '/' && sep[2] == '/') {
            char entry[PV_HOST_MAX + 8];
            size_t hn = n - (size_t)(sep + 3 - s);
            if (hn < sizeof(entry)) {
                char name[PV_HOST_MAX];
                memcpy(entry, sep + 3, hn);
                entry[hn] = '\0';
                if (pv_host_name(entry, name) && strcmp(name, host) == 0)
                    return true;
            }
        }
        s += n;
        s += strspn(s, " ,\t");
    }
    return false;
}

#define MAX_ADDRS 64

struct pv_hosts {
    pthread_mutex_t mu; /* guards everything below */
    char hostname[PV_HOST_MAX];
    char mdns[PV_HOST_MAX + 8];
    char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
    size_t n_addrs;
    uint64_t refreshed_ns;
};

/* Caller holds mu. */
static void refresh(struct pv_hosts *h)
{
    struct ifaddrs *ifs = NULL, *i;
    h->n_addrs = 0;
    h->refreshed_ns = pv_mono_ns();
    if (getifaddrs(&ifs) != 0)
        return;
    for (i = ifs; i && h->n_addrs < MAX_ADDRS; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        const void *a = NULL;
        int fam = i->ifa_addr->sa_family;
        if (fam == AF_INET)
            a = &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
        else if (fam == AF_INET6)
            a = &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr;
        if (a && inet_ntop(fam, a, h->addrs[h->n_addrs], INET6_ADDRSTRLEN))
            h->n_addrs++;
    }
    freeifaddrs(ifs);
}

struct pv_hosts *pv_hosts_new(void)
{
    struct pv_hosts *h = pv_xcalloc(1, sizeof(*h));
    char name[PV_HOST_MAX] = "";
    pthread_mutex_init(&h->mu, NULL);
    if (gethostname(name, sizeof(name) - 1) == 0 && pv_host_name(name, h->hostname)) {
        char *dot = strchr(h->hostname, '.');
        size_t shortlen = dot ? (size_t)(dot - h->hostname) : strlen(h->hostname);
        memcpy(h->mdns, h->hostname, shortlen);
        memcpy(h->mdns + shortlen, ".local", 7);
    }
    refresh(h);
    return h;
}

void pv_hosts_free(struct pv_hosts *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Caller holds mu. */
static bool local_addr(const struct pv_hosts *h, const char *canon)
{
    for (size_t i = 0; i < h->n_addrs; i++)
        if (strcmp(h->addrs[i], canon) == 0)
            return true;
    return false;
}

bool pv_hosts_allow(struct pv_hosts *h, const char *header, const char *allowed_hosts,
                    const char *allowed_origins)
{
    char name[PV_HOST_MAX];
    if (!header)
        return true;
    if (!pv_host_name(header, name))
        return false;
    if (pv_host_listed(name, allowed_hosts, allowed_origins))
        return true;
    size_t n = strlen(name);
    if (strcmp(name, "localhost") == 0 || (n > 10 && strcmp(name + n - 10, ".localhost") == 0))
        return true;
    /* An IP literal: ours if it is an address of this machine. */
    unsigned char bin[sizeof(struct in6_addr)];
    char canon[INET6_ADDRSTRLEN];
    int fam = inet_pton(AF_INET, name, bin) == 1    ? AF_INET
              : inet_pton(AF_INET6, name, bin) == 1 ? AF_INET6
                                                    : 0;
    if (fam == AF_INET && bin[0] == 127)
        return true;
    if (fam && !inet_ntop(fam, bin, canon, sizeof(canon)))
        return false;
    bool ok;
    pthread_mutex_lock(&h->mu);
    if (fam) {
        ok = local_addr(h, canon);
        if (!ok && pv_mono_ns() - h->refreshed_ns >= (uint64_t)PV_HOSTS_REFRESH_MS * 1000000u) {
            refresh(h);
            ok = local_addr(h, canon);
        }
    } else {
        ok = (h->hostname[0] && strcmp(name, h->hostname) == 0) ||
             (h->mdns[0] && strcmp(name, h->mdns) == 0);
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}
