/* sio.h -- Engine.IO v4 and Socket.IO v5 packets, as seed 002's client
 * (socket.io-client 4.x) speaks them (docs/dialects.md, "Not yet": the
 * codec the seed 002 dialect will stand on). Pure: no I/O, no state; any
 * thread. Used by socketio.c (socketio.h).
 *
 * Engine.IO packet (a WebSocket text frame, or one record of a polling
 * payload): one type digit, then its data:
 *   0 open {"sid",...}   1 close   2 ping   3 pong   4 message   5 upgrade
 *   6 noop. A polling payload joins packets with 0x1E (record separator).
 * Socket.IO packet (the data of an Engine.IO message): one type digit
 *   (0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5/6 binary
 *   event/ack), then "/nsp," unless the namespace is "/", then an ack id
 *   (digits) if any, then JSON: 42["chat message",{...}], 420["x"] (ack
 *   id 0), 40 (connect to /), 40/admin, (connect to /admin), 430[...] (the
 *   answer to ack 0). */
#ifndef PALAVER_SIO_H
#define PALAVER_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pv_eio_type {
    PV_EIO_OPEN = 0,
    PV_EIO_CLOSE,
    PV_EIO_PING,
    PV_EIO_PONG,
    PV_EIO_MESSAGE,
    PV_EIO_UPGRADE,
    PV_EIO_NOOP
};

enum pv_sio_type {
    PV_SIO_CONNECT = 0,
    PV_SIO_DISCONNECT,
    PV_SIO_EVENT,
    PV_SIO_ACK,
    PV_SIO_CONNECT_ERROR,
    PV_SIO_BINARY_EVENT,
    PV_SIO_BINARY_ACK
};

#define PV_SIO_ACK_MAX 999999999 /* ack ids above this are refused */

struct pv_sio_packet {
    enum pv_eio_type eio;
    const char *data; /* the Engine.IO packet's data (after its type digit) */
    size_t data_len;
    /* eio == PV_EIO_MESSAGE and the data is a Socket.IO packet: */
    bool sio;
    enum pv_sio_type type;
    const char *nsp; /* "/" or "/name" (not NUL-terminated) */
    size_t nsp_len;
    int64_t ack;      /* -1: none */
    const char *json; /* its JSON, possibly empty (not parsed here) */
    size_t json_len;
};

/* Parses one Engine.IO packet (and the Socket.IO packet in a message).
 * False for anything malformed: an empty packet, an unknown type, a
 * binary ('b') packet, a namespace without its comma, an ack id too long. */
bool pv_sio_parse(const char *s, size_t n, struct pv_sio_packet *out);

/* Splits a polling payload into its packets at 0x1E: up to max spans
 * (start offset, length) in out; returns how many there are (may exceed
 * max: the caller refuses such a payload). */
struct pv_span {
    size_t off, len;
};
size_t pv_eio_split(const char *payload, size_t n, struct pv_span *out, size_t max);

#endif
