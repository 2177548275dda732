/* frame.h -- refcounted, pre-encoded WebSocket frames.
 *
 * A message is serialised once (JSON and the RFC 6455 frame header) into a
 * pv_frame; every recipient's outbox holds a reference to that same buffer,
 * and the writer that sends it drops the reference. No per-recipient
 * serialisation or copy happens on the fanout path.
 *
 * Threads: a frame is immutable once built. refs is the only shared field:
 * any thread holding a reference may pv_frame_ref() or pv_frame_unref();
 * the thread that drops the last reference frees it (acquire/release on the
 * count orders the other threads' reads before the free).
 */
#ifndef PALAVER_FRAME_H
#define PALAVER_FRAME_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PV_WS_OP_CONT 0x0
#define PV_WS_OP_TEXT 0x1
#define PV_WS_OP_BINARY 0x2
#define PV_WS_OP_CLOSE 0x8
#define PV_WS_OP_PING 0x9
#define PV_WS_OP_PONG 0xA

/* Largest header a server (unmasked) frame needs. */
#define PV_WS_MAX_HEADER 10

struct pv_frame {
    atomic_uint refs;
    uint8_t opcode;
    uint8_t dialect;     /* enum pv_dialect it is written in (dialect.h): 0, palaver's,
                          * unless a dialect encoder made it */
    size_t len;          /* bytes at data: header + payload */
    unsigned char *data; /* points into storage */
    unsigned char storage[];
};

/* Writes a FIN frame header for a payload of len bytes into hdr.
 * Returns the header length (2, 4 or 10). */
size_t pv_ws_header(unsigned char hdr[PV_WS_MAX_HEADER], unsigned opcode, size_t len);

/* New frame with one reference, payload copied. Aborts on out of memory. */
struct pv_frame *pv_frame_new(unsigned opcode, const void *payload, size_t len);

/* Serialises obj compactly (Jansson) straight into a text frame with one
 * reference: one serialisation, no copy. Aborts on out of memory. */
struct pv_frame *pv_frame_from_json(const json_t *obj);

/* Close frame: 2-byte code and a UTF-8 reason of at most 123 bytes. */
struct pv_frame *pv_frame_close(uint16_t code, const char *reason);

static inline struct pv_frame *pv_frame_ref(struct pv_frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

/* Adds n references at once (the broadcaster takes one per recipient). */
static inline void pv_frame_ref_n(struct pv_frame *f, unsigned n)
{
    atomic_fetch_add_explicit(&f->refs, n, memory_order_relaxed);
}

void pv_frame_unref(struct pv_frame *f);

/* Payload of a frame (after its header) and its length. */
const unsigned char *pv_frame_payload(const struct pv_frame *f, size_t *len);

/* An ordered run of frames for one client. Built by the broadcaster,
 * handed to a writer through the client's outbox, freed by the writer. */
struct pv_batch {
    size_t n, cap;
    uint64_t bytes; /* sum of f[i]->len */
    struct pv_frame *f[];
};

/* Appends f to *bp (growing it), taking over one reference to f. */
void pv_batch_push(struct pv_batch **bp, struct pv_frame *f);
/* Appends all of src to *dst and frees src (references move). */
void pv_batch_concat(struct pv_batch **dst, struct pv_batch *src);
/* Drops every frame reference and frees the batch. NULL is fine. */
void pv_batch_free(struct pv_batch *b);

#endif
