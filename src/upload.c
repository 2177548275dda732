/* upload.c -- the pure parts of file sharing (upload.h, docs/files.md).
 *
 * Threads: pure functions, any thread; nothing shared. */
#include "palaver/upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One code point from s[0..n) (strict UTF-8: no overlongs, surrogates or
 * values past U+10FFFF); its length to *len, or -1 (and *len 1) for a
 * byte that does not start one. */
static long decode(const unsigned char *s, size_t n, size_t *len)
{
    *len = 1;
    unsigned char c = s[0];
    if (c < 0x80)
        return c;
    size_t k = c >= 0xF0 && c <= 0xF4   ? 4
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xC2 && c <= 0xDF ? 2
                                        : 0; /* 0xF5-0xFF never start a character */
    if (k == 0 || k > n)
        return -1;
    long cp = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return -1;
    *len = k;
    return cp;
}

/* Controls, bidi and zero-width formatting, fillers, variation selectors,
 * tags, noncharacters' neighbours: nothing a name should carry unseen. */
static bool invisible(long cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xAD || cp == 0x34F || cp == 0x61C ||
           cp == 0x115F || cp == 0x1160 || cp == 0x17B4 || cp == 0x17B5 ||
           (cp >= 0x180B && cp <= 0x180F) || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0x3164 ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF || cp == 0xFFA0 ||
           (cp >= 0xFFF0 && cp <= 0xFFFB) || (cp >= 0x1D173 && cp <= 0x1D17A) ||
           (cp >= 0xE0000 && cp <= 0xE0FFF) || (cp >= 0xF0000);
}

static bool space(long cp)
{
    return cp == ' ' || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

void pv_file_name(const char *in, size_t len, char out[PV_FILE_NAME_MAX + 1])
{
    /* The last path component: a name is never a path. */
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (in[i] == '/' || in[i] == '\\')
            start = i + 1;
    const unsigned char *s = (const unsigned char *)in + start;
    size_t n = len - start;
    /* Clean copy: at most 4 bytes per code point kept, so a working buffer
     * of 4x the limit holds every name worth keeping. */
    char buf[PV_FILE_NAME_MAX * 4 + 8];
    size_t w = 0;
    bool pending_space = false;
    for (size_t i = 0, k; i < n && w + 5 < sizeof(buf); i += k) {
        long cp = decode(s + i, n - i, &k);
        if (space(cp) || (cp >= '\t' && cp <= '\r')) { /* line breaks and tabs too */
            pending_space = w > 0;
            continue;
        }
        if (cp < 0 || invisible(cp))
            continue;
        if (pending_space) {
            buf[w++] = ' ';
            pending_space = false;
        }
        if (cp < 0x80 && strchr("<>:\"|?*", (int)cp)) {
            buf[w++] = '_';
            continue;
        }
        memcpy(buf + w, s + i, k);
        w += k;
    }
    /* No leading dots (hidden files, "..") or spaces, nor trailing ones. */
    size_t a = 0;
    while (a < w && (buf[a] == '.' || buf[a] == ' '))
        a++;
    while (w > a && (buf[w - 1] == '.' || buf[w - 1] == ' '))
        w--;
    if (w <= a) {
        snprintf(out, PV_FILE_NAME_MAX + 1, "file");
        return;
    }
    const char *name = buf + a;
    size_t nl = w - a;
    if (nl <= PV_FILE_NAME_MAX) {
        memcpy(out, name, nl);
        out[nl] = '\0';
        return;
    }
    /* Too long: the stem is cut on a character boundary, the extension
     * (a last dot followed by at most 16 bytes, no space) kept. */
    size_t ext = nl;
    for (size_t i = nl; i > 0 && nl - i < 17; i--) {
        if (name[i - 1] == ' ')
            break;
        if (name[i - 1] == '.') {
            ext = i - 1;
            break;
        }
    }
    size_t ext_len = nl - ext, room = PV_FILE_NAME_MAX - ext_len, cut = 0;
    for (size_t i = 0, k; i < ext; i += k) {
        decode((const unsigned char *)name + i, ext - i, &k);
        if (i + k > room)
            break;
        cut = i + k;
    }
    while (cut > 0 && (name[cut - 1] == ' ' || name[cut - 1] == '.'))
        cut--; /* the cut stem ends like a whole name may: no dot or space */
    const char *stem = cut ? name : "file";
    if (!cut)
        cut = 4;
    memcpy(out, stem, cut);
    memcpy(out + cut, name + ext, ext_len);
    out[cut + ext_len] = '\0';
}

bool pv_file_id_ok(const char *s, size_t len)
{
    if (!s || len != PV_FILE_ID_CHARS)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Digits at *p (at most 19 of them, no sign); false if none. */
static bool number(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    int d = 0;
    while (*s >= '0' && *s <= '9') {
        if (++d > 19)
            return false;
        x = x * 10 + (uint64_t)(*s++ - '0');
    }
    if (d == 0)
        return false;
    *p = s;
    *v = x;
    return true;
}

int pv_file_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0; /* absent, another unit, several ranges: the whole file */
    const char *p = h + 6;
    while (*p == ' ')
        p++;
    uint64_t a = 0, b = 0;
    if (*p == '-') { /* the last b bytes */
        p++;
        if (!number(&p, &b))
            return 0;
        while (*p == ' ')
            p++;
        if (*p)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return 1;
    }
    if (!number(&p, &a) || *p++ != '-')
        return 0;
    bool open_end = !(*p >= '0' && *p <= '9');
    if (!open_end && !number(&p, &b))
        return 0;
    while (*p == ' ')
        p++;
    if (*p || (!open_end && b < a))
        return 0; /* malformed: ignored (RFC 9110 14.2) */
    if (a >= size)
        return -1;
    *from = a;
    *to = open_end || b >= size ? size - 1 : b;
    return 1;
}

bool pv_file_inline(const char *mime)
{
    static const char *const ok[] = {
        "image/png", "image/jpeg", "image/gif",   "image/webp", "audio/mpeg",
        "audio/ogg", "audio/wav",  "audio/x-wav", "audio/flac", "audio/x-flac",
        "audio/aac", "audio/mp4",  "video/mp4",   "video/webm", "video/ogg",
    };
    for (size_t i = 0; mime && i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(mime, ok[i]) == 0)
            return true;
    return false;
}

void pv_file_disposition(const char *name, bool inline_, char *out, size_t n)
{
    char ascii[PV_FILE_NAME_MAX + 1], enc[PV_FILE_NAME_MAX * 3 + 1];
    size_t a = 0, e = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && a < PV_FILE_NAME_MAX; p++) {
        unsigned char c = *p;
        if (c >= 0x80) { /* one '_' per character in the fallback */
            if ((c & 0xC0) == 0xC0)
                ascii[a++] = '_';
        } else {
            bool plain = c >= 0x20 && c != 0x7F && c != '"' && c != '\\' && c != '%';
            char ch = '_';
            if (plain)
                ch = (char)c;
            ascii[a++] = ch;
        }
    }
    ascii[a] = '\0';
    for (const unsigned char *p = (const unsigned char *)name; *p && e + 3 < sizeof(enc); p++) {
        unsigned char c = *p;
        /* RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~" */
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("!#$&+-.^_`|~", c))
            enc[e++] = (char)c;
        else
            e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%%02X", c);
    }
    enc[e] = '\0';
    snprintf(out, n, "%s; filename=\"%s\"; filename*=UTF-8''%s", inline_ ? "inline" : "attachment",
             ascii, enc);
}

void pv_file_dimensions(const char *desc, long *w, long *h)
{
    *w = *h = 0;
    for (const char *p = desc; p && *p; p++) {
        if (!(*p >= '1' && *p <= '9') || (p != desc && p[-1] != ' ' && p[-1] != ','))
            continue;
        /* "density 72x72" (JPEG's pixel density) is not a size. */
        if (p - desc >= 8 && strncmp(p - 8, "density ", 8) == 0)
            continue;
        char *end;
        long a = strtol(p, &end, 10);
        while (*end == ' ')
            end++;
        if (*end != 'x')
            continue;
        end++;
        while (*end == ' ')
            end++;
        if (!(*end >= '1' && *end <= '9'))
            continue;
        long b = strtol(end, &end, 10);
        if (a > 0 && b > 0 && a <= 1000000 && b <= 1000000 && (*end == '\0' || *end == ',')) {
            *w = a; /* the last such pair: libmagic names the size after the format's details */
            *h = b;
        }
    }
}
