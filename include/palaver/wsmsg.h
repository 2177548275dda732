/* wsmsg.h -- the RFC 6455 rules CivetWeb 1.15 leaves unchecked: one
 * connection's frames in, whole checked messages (or a failure) out.
 *
 * CivetWeb hands every frame to the data handler separately and unchecked
 * (docs/civetweb.md section 3): RSV bits, opcodes, fragmentation, control-frame
 * size, UTF-8 and close payloads are all ours to check. This module does
 * that with no I/O and no CivetWeb, so unit tests and a libFuzzer target
 * drive exactly the code the data handler runs.
 *
 * Threads: a struct pv_wsmsg belongs to one connection's CivetWeb worker
 * (or to a test); nothing here is shared.
 */
#ifndef PALAVER_WSMSG_H
#define PALAVER_WSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "palaver/utf8.h"

struct pv_wsmsg {
    size_t max_message; /* bytes of one reassembled message, at most */
    char *buf;          /* fragments of the message in progress */
    size_t len, cap;
    bool active;         /* inside a fragmented text message */
    struct pv_utf8 utf8; /* validation state across fragments */
};

enum pv_wsmsg_kind {
    PV_WSMSG_MORE,  /* a fragment was taken; the message is not complete */
    PV_WSMSG_TEXT,  /* a complete, valid UTF-8 text message */
    PV_WSMSG_PING,  /* answer with a pong carrying the same payload */
    PV_WSMSG_PONG,  /* nothing to do but note the peer is alive */
    PV_WSMSG_CLOSE, /* a valid close: answer with `code` and end */
    PV_WSMSG_FAIL,  /* a violation: close with `code` and `reason` */
};

struct pv_wsmsg_out {
    enum pv_wsmsg_kind kind;
    const char *data; /* TEXT, PING: valid until the next feed or free */
    size_t len;
    uint16_t code;      /* CLOSE: the code to echo; FAIL: the close code */
    const char *reason; /* FAIL: a static string for the close frame and log */
};

void pv_wsmsg_init(struct pv_wsmsg *m, size_t max_message);
void pv_wsmsg_free(struct pv_wsmsg *m);

/* Feeds one frame as CivetWeb delivers it: `bits` is the frame's first
 * byte (FIN, RSV1-3, opcode), data the unmasked payload. After FAIL or
 * CLOSE the connection is over and m must not be fed again. */
struct pv_wsmsg_out pv_wsmsg_feed(struct pv_wsmsg *m, unsigned bits, const char *data, size_t len);

/* True for a close code a peer may send (RFC 6455 section 7.4). */
bool pv_wsmsg_close_code_valid(unsigned code);

#endif
