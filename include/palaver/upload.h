/* upload.h -- the pure parts of file sharing (docs/files.md): what an
 * upload's name becomes, what a download's Range asks for, what an id
 * may look like, which types are shown inline, and the
 * Content-Disposition header. Everything a client sends about a file
 * passes through here before anything else looks at it.
 *
 * Threads: pure functions, any thread; nothing shared. Fuzzed
 * (tests/fuzz/fuzz_upload.c).
 */
#ifndef PALAVER_UPLOAD_H
#define PALAVER_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PV_FILE_NAME_MAX 128 /* bytes of a sanitized name */
#define PV_FILE_ID_CHARS 22  /* base64url characters of an attachment id (16 random bytes) */
#define PV_FILE_DISPOSITION_MAX (PV_FILE_NAME_MAX * 3 + 96)

/* A file's display name from what the client sent (len bytes, any bytes):
 * the last path component (after '/' or '\\'), without control, bidi,
 * zero-width or other invisible characters and without invalid UTF-8,
 * white space folded, leading dots and trailing dots and spaces cut, at
 * most PV_FILE_NAME_MAX bytes cut on a character boundary with its
 * extension kept; "file" when nothing is left. out has
 * PV_FILE_NAME_MAX + 1 bytes. Never fails. */
void pv_file_name(const char *in, size_t len, char out[PV_FILE_NAME_MAX + 1]);

/* Whether s is an attachment id's shape: exactly PV_FILE_ID_CHARS of
 * [A-Za-z0-9_-]. Checked before any lookup. */
bool pv_file_id_ok(const char *s, size_t len);

/* A Range header against a file of `size` bytes (RFC 9110 14.1.2): only
 * one range of bytes is served. Returns 1 with [*from, *to] (inclusive)
 * to serve 206, 0 to ignore the header and serve the whole file (absent,
 * several ranges, not "bytes=", malformed), -1 when it cannot be
 * satisfied (416). */
int pv_file_range(const char *header, uint64_t size, uint64_t *from, uint64_t *to);

/* Whether a detected MIME type is shown inline (the allow-list of raster
 * images, audio and video); anything else is an attachment. */
bool pv_file_inline(const char *mime);

/* The Content-Disposition value for name (already pv_file_name()'d):
 * `inline` or `attachment`, an ASCII fallback filename (others as '_')
 * and filename* in UTF-8, percent-encoded (RFC 6266, RFC 8187). */
void pv_file_disposition(const char *name, bool inline_, char *out, size_t n);

/* An image's size from libmagic's description of its header: the last
 * "W x H" or "WxH" (each 1..1000000) followed by a comma or the end, not
 * a JPEG's "density 72x72". 0 x 0 when there is none. Examples:
 *   "PNG image data, 640 x 480, 8-bit/color RGBA, non-interlaced"
 *   "JPEG image data, JFIF standard 1.01, aspect ratio, density 1x1, segment
 *    length 16, baseline, precision 8, 320x240, components 3"
 *   "RIFF (little-endian) data, Web/P image, VP8 encoding, 320x240, Scaling: ..." */
void pv_file_dimensions(const char *desc, long *w, long *h);

#endif
