/* sio.c -- Engine.IO v4 / Socket.IO v5 packets (sio.h).
 *
 * Threads: none of its own; pure functions. */
#include "palaver/sio.h"

#include <string.h>

bool pv_sio_parse(const char *s, size_t n, struct pv_sio_packet *out)
{
    memset(out, 0, sizeof(*out));
    out->ack = -1;
    if (n == 0 || s[0] < '0' || s[0] > '6')
        return false;
    out->eio = (enum pv_eio_type)(s[0] - '0');
    out->data = s + 1;
    out->data_len = n - 1;
    if (out->eio != PV_EIO_MESSAGE || n < 2)
        return true; /* (a message with no data is an empty message) */
    const char *p = s + 1, *end = s + n;
    if (*p < '0' || *p > '6')
        return true; /* a plain Engine.IO message, not Socket.IO's */
    out->sio = true;
    out->type = (enum pv_sio_type)(*p - '0');
    p++;
    out->nsp = "/";
    out->nsp_len = 1;
    if (p < end && *p == '/') {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (!comma)
            return false;
        out->nsp = p;
        out->nsp_len = (size_t)(comma - p);
        p = comma + 1;
    }
    if (p < end && *p >= '0' && *p <= '9') {
        int64_t ack = 0;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > 9)
                return false;
            ack = ack * 10 + (*p - '0');
            p++;
        }
        out->ack = ack;
    }
    out->json = p;
    out->json_len = (size_t)(end - p);
    return true;
}

size_t pv_eio_split(const char *payload, size_t n, struct pv_span *out, size_t max)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || payload[i] == '\x1e') {
            if (count < max)
                out[count] = (struct pv_span){start, i - start};
            count++;
            start = i + 1;
        }
    }
    return count;
}
