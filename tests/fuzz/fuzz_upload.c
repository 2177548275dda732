/* libFuzzer target: what a client sends about a file (upload.c): the
 * name, an id, a Range header. The input is split at its first NUL into a
 * name and a header (the Range, the id), and a size is taken from the
 * last 8 bytes. Invariants: a sanitized name is valid UTF-8 of 1 to
 * PV_FILE_NAME_MAX bytes with no '/', '\\', control or bidi character,
 * does not start with '.', and sanitizing it again changes nothing; a
 * served range lies inside the file; an id that passes is 22 base64url
 * characters; the Content-Disposition value fits, is printable ASCII and
 * has no line break. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/upload.h"
#include "palaver/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t cut = 0;
    while (cut < size && data[cut])
        cut++;
    char out[PV_FILE_NAME_MAX + 1], again[PV_FILE_NAME_MAX + 1];
    /* Sizes from a libmagic description (the bytes up to the first NUL):
     * none, or both within 1..1000000. */
    char *desc = malloc(cut + 1);
    memcpy(desc, in, cut);
    desc[cut] = '\0';
    long w = -1, h = -1;
    pv_file_dimensions(desc, &w, &h);
    free(desc);
    if ((w == 0) != (h == 0) || w < 0 || h < 0 || w > 1000000 || h > 1000000)
        abort();
    pv_file_name(in, cut, out);
    size_t n = strlen(out);
    if (n == 0 || n > PV_FILE_NAME_MAX || !pv_utf8_valid(out, n) || out[0] == '.' ||
        strpbrk(out, "/\\\r\n\t") || strstr(out, "\xe2\x80\xae"))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            abort();
    pv_file_name(out, n, again);
    if (strcmp(out, again) != 0)
        abort();

    char disp[PV_FILE_DISPOSITION_MAX];
    pv_file_disposition(out, n % 2, disp, sizeof(disp));
    for (const char *p = disp; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            abort();

    char *header = NULL;
    if (cut < size) {
        size_t hl = size - cut - 1;
        header = malloc(hl + 1);
        if (!header)
            return 0;
        memcpy(header, in + cut + 1, hl);
        header[hl] = '\0';
        if (pv_file_id_ok(header, strlen(header)) && strlen(header) != PV_FILE_ID_CHARS)
            abort();
        uint64_t fsize = 0;
        if (size >= 8)
            memcpy(&fsize, data + size - 8, 8);
        fsize %= (uint64_t)1 << 40;
        uint64_t a = 0, b = 0;
        int r = pv_file_range(header, fsize, &a, &b);
        if (r == 1 && (a > b || b >= fsize))
            abort();
        free(header);
    }
    return 0;
}
