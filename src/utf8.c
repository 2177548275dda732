/* utf8.c -- strict incremental UTF-8 validator.
 *
 * Threads: none shared; state lives in the caller's struct pv_utf8. */
#include "palaver/utf8.h"

#include <string.h>

enum pv_utf8_result pv_utf8_feed(struct pv_utf8 *v, const void *s, size_t n)
{
    const unsigned char *p = s, *end = p + n;

    while (p < end) {
        if (v->need == 0) {
            /* Fast path: skip ASCII eight bytes at a time. */
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (w & 0x8080808080808080ull)
                    break;
                p += 8;
            }
            if (p == end)
                break;
            unsigned char b = *p++;
            if (b < 0x80)
                continue;
            if (b >= 0xC2 && b <= 0xDF) {
                v->need = 1;
            } else if (b == 0xE0) {
                v->need = 2;
                v->lo = 0xA0; /* no overlong 3-byte forms */
            } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
                v->need = 2;
            } else if (b == 0xED) {
                v->need = 2;
                v->hi = 0x9F; /* no surrogates */
            } else if (b == 0xF0) {
                v->need = 3;
                v->lo = 0x90; /* no overlong 4-byte forms */
            } else if (b >= 0xF1 && b <= 0xF3) {
                v->need = 3;
            } else if (b == 0xF4) {
                v->need = 3;
                v->hi = 0x8F; /* nothing above U+10FFFF */
            } else {
                return PV_UTF8_INVALID; /* 0x80..0xC1, 0xF5..0xFF */
            }
        } else {
            unsigned char b = *p++;
            if (b < v->lo || b > v->hi)
                return PV_UTF8_INVALID;
            v->need--;
            v->lo = 0x80;
            v->hi = 0xBF;
        }
    }
    return v->need ? PV_UTF8_INCOMPLETE : PV_UTF8_OK;
}

bool pv_utf8_valid(const void *s, size_t n)
{
    struct pv_utf8 v;
    pv_utf8_init(&v);
    return pv_utf8_feed(&v, s, n) == PV_UTF8_OK;
}

size_t pv_utf8_length(const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            count++;
    }
    return count;
}

size_t pv_utf8_prefix(const void *s, size_t n, size_t max)
{
    const unsigned char *p = s;
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && (p[k] & 0xC0) == 0x80)
        k--; /* p[k] continues the character before it: cut before that one */
    return k;
}
