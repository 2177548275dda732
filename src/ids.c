/* ids.c -- random identifiers: clients' secret keys, public ids, the
 * history's id (getrandom(2), so nothing to seed and nothing shared).
 *
 * Threads: any. */
#include "palaver/ids.h"

#include <stdio.h>
#include <sys/random.h>
#include <sys/types.h>

static void random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0)
            continue; /* EINTR; getrandom never fails otherwise once seeded */
        p += r;
        n -= (size_t)r;
    }
}

static void hex(char *out, const unsigned char *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
}

void pv_new_key(char key[PV_KEY_LEN + 1])
{
    unsigned char b[16];
    char h[32];

    random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC variant */
    hex(h, b, sizeof(b));
    snprintf(key, PV_KEY_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

void pv_new_id(char id[PV_ID_LEN + 1])
{
    unsigned char b[PV_ID_LEN / 2];
    random_bytes(b, sizeof(b));
    hex(id, b, sizeof(b));
    id[PV_ID_LEN] = '\0';
}
