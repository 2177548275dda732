/* libFuzzer target: the UTF-8 validator (utf8.c). Invariants: the
 * incremental validator agrees with the whole-buffer one however the input
 * is split, and with a straightforward reference decoder. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "palaver/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 3629 by the book: decode each sequence, reject overlongs,
 * surrogates and values above U+10FFFF. */
static bool reference_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len;
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            cp = b & 0x1F, len = 2;
        } else if ((b & 0xF0) == 0xE0) {
            cp = b & 0x0F, len = 3;
        } else if ((b & 0xF8) == 0xF0) {
            cp = b & 0x07, len = 4;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return false; /* overlong */
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* The first byte chooses a split point; the rest is the text. */
    size_t split = data[0] % size;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;
    bool whole = pv_utf8_valid(s, n);
    if (whole != reference_valid(s, n))
        abort();
    struct pv_utf8 v;
    pv_utf8_init(&v);
    enum pv_utf8_result r = pv_utf8_feed(&v, s, split);
    if (r != PV_UTF8_INVALID)
        r = pv_utf8_feed(&v, s + split, n - split);
    if ((r == PV_UTF8_OK) != whole)
        abort();
    if (whole && pv_utf8_length(s, n) > n)
        abort();
    return 0;
}
