/* dialect.h -- the seeds' own wire protocols ("dialects"), translated at
 * the edge to and from palaver's (docs/dialects.md). The broadcaster,
 * ordering, history and limits stay one: a dialect client's frame becomes
 * a palaver request on its CivetWeb worker before it is decoded, and a
 * palaver frame becomes the dialect's when it is delivered to such a
 * client (once per frame and dialect, shared by reference like any frame).
 *
 *   dialect   how a client is told apart            in                 out
 *   palaver   /ws; / with "palaver" or              palaver JSON       palaver JSON
 *             "sample-protocol" (seed 000)
 *   text      / with no subprotocol (seed 004)      a line of text     "name: text" lines,
 *                                                                      its own included
 *   echo      / with "echo-protocol" (seed 003)     {name,avatar,      {name,avatar,message,
 *                                                   message,date}      date}, HTML-escaped;
 *                                                                      on connect an array
 *                                                                      of earlier ones
 *   sio       /socket.io/ (Engine.IO v4 over     42["chat message",  42["chat message",
 *             long-polling, then a WebSocket;     {msg}] (an ack id   {username,msg}] from
 *             seed 002's io(); socketio.h)       becomes msgId)      others; "system",
 *                                                                      "broadcast" notices
 *
 * Pure: no I/O, no shared state; any thread. Fuzzed (fuzz_dialect).
 */
#ifndef PALAVER_DIALECT_H
#define PALAVER_DIALECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pv_frame;

enum pv_dialect {
    PV_DIALECT_PALAVER = 0,
    PV_DIALECT_TEXT,
    PV_DIALECT_ECHO,
    PV_DIALECT_SIO,
    PV_DIALECTS
};

/* The dialect of a WebSocket opened on `uri` with the subprotocol the
 * server accepted (NULL: none). */
enum pv_dialect pv_dialect_of(const char *uri, const char *subprotocol);
const char *pv_dialect_name(enum pv_dialect d);
/* Whether the dialect's clients get their own messages back (the seeds'
 * servers broadcast to everyone, and their pages show a message only when
 * it comes back). */
bool pv_dialect_echoes(enum pv_dialect d);

#define PV_AVATAR_MAX 4096 /* bytes of an avatar URL a seed 003 client may give */

/* Whether `s` may be an avatar: an http(s) URL, or a data: URL of a PNG,
 * JPEG, GIF or WebP in base64 -- nothing that could leave an attribute or
 * run script where a seed 003 page puts it into <img src="...">. */
bool pv_dialect_avatar_ok(const char *s, size_t n);

/* A text dialect's frame as a palaver request (malloc'd, NUL-terminated
 * JSON): {"type":"message","text":<the frame>}. */
char *pv_dialect_text_in(const char *data, size_t len);

/* An echo dialect's frame ({name, avatar, message, date}) as palaver
 * requests: *msg gets {"type":"message","text":message[,"avatar":a]}
 * (malloc'd); *name the name it claims (malloc'd, NULL if none). Returns
 * false with *why when the frame is not such an object (nothing set). */
bool pv_dialect_echo_in(const char *data, size_t len, char **msg, char **name, const char **why);

/* The frame a `d` client gets for palaver frame `f` (a text frame of
 * palaver JSON), with one reference; NULL when the dialect shows nothing
 * for it (acks, presence, typing, ...). Chat messages, edits and errors
 * are shown. `now` (ms) dates a refusal. */
struct pv_frame *pv_dialect_out(enum pv_dialect d, const struct pv_frame *f, int64_t now);

/* The echo dialect's greeting: one frame with the JSON array of the
 * earlier messages, each the JSON text of its {name,avatar,message,date}
 * (what seed 003's server sends on connect). `msgs`: palaver message
 * frames, oldest first. */
struct pv_frame *pv_dialect_echo_history(struct pv_frame *const *msgs, size_t n);

/* A Socket.IO EVENT's JSON array (its packet's json, sio.h) with ack id
 * `ack` (-1: none) as a palaver request (malloc'd): ["chat message", m]
 * where m is the text, or seed 002's {username, msg} (its username is
 * ignored: the server knows who sent it), becomes {"type":"message",
 * "text":...,"msgId":ack}. False with *why for any other event or shape. */
bool pv_dialect_sio_in(const char *json, size_t len, int64_t ack, char **msg, const char **why);

/* Seed 002's greeting to a newcomer: 42["system","hello <name>"]. */
struct pv_frame *pv_dialect_sio_hello(const char *name);

#endif
