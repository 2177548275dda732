/* libFuzzer target: trusted-proxy lists, forwarded addresses and the ACL
 * rule (proxy.c). The input is split at NUL bytes into a trusted list, a
 * socket address, an X-Forwarded-For, an X-Forwarded-Proto and an ACL.
 * Invariants: a request from a peer the list does not trust is never
 * forwarded nor https and keeps the socket address; a forwarded address
 * is one (normalizing it again gives itself, and a one-host list made of
 * it matches it); normalizing is idempotent; the ACL answers 1, 0 or -1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *part[5] = {"", "", NULL, NULL, ""};
    char *p = buf, *end = buf + size;
    for (int i = 0; i < 5 && p <= end; i++) {
        part[i] = p;
        p += strlen(p) + 1;
    }
    struct pv_cidrs trusted;
    char err[160];
    if (pv_cidrs_parse(part[0], &trusted, err, sizeof(err)) != 0) {
        if (!err[0])
            abort(); /* a refusal says why */
        trusted.n = 0;
    }
    const char *sock = part[1] ? part[1] : "";
    struct pv_peer peer;
    int r = pv_peer_resolve(&trusted, sock, 1234, part[2], part[3], &peer);
    bool trusts = pv_cidrs_match(&trusted, sock);
    if (!trusts && (peer.forwarded || peer.https || r != 0 || strncmp(peer.addr, sock, 47) != 0))
        abort();
    if (r != 0 && (peer.forwarded || peer.https))
        abort();
    if (peer.https && !peer.forwarded)
        abort();
    if (peer.forwarded) {
        char again[PV_ADDR_MAX];
        if (!pv_addr_normalize(peer.addr, strlen(peer.addr), again) || strcmp(again, peer.addr))
            abort();
        struct pv_cidrs one;
        if (pv_cidrs_parse(peer.addr, &one, err, sizeof(err)) != 0 ||
            !pv_cidrs_match(&one, peer.addr))
            abort();
    }
    char n1[PV_ADDR_MAX], n2[PV_ADDR_MAX];
    if (pv_addr_normalize(sock, strlen(sock), n1) &&
        (!pv_addr_normalize(n1, strlen(n1), n2) || strcmp(n1, n2) != 0))
        abort();
    int acl = pv_acl_check(part[4], sock);
    if (acl < -1 || acl > 1)
        abort();
    free(buf);
    return 0;
}
