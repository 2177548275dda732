/* proto.h -- palaver's JSON wire protocol (documented in docs/protocol.md).
 *
 * Inbound text messages are decoded and validated here; outbound messages
 * are built as pre-encoded frames (frame.h), once each.
 *
 * Compatibility: seed 000's client sends {"type":"message","msgId":n,
 * "text":"...","clientKey":"<key>","date":ms} and reads "type", "date",
 * "clientKey" and "text". palaver keeps those fields and adds its own
 * ("from", "seq", "serverDate", ...), which that client ignores.
 *
 * Threads: none shared; functions work on the caller's data. In
 * palaverd the decoder runs on the CivetWeb workers (each its own
 * connection's messages, in parallel) and the encoders on the
 * broadcaster; a decoded pv_inbound moves from one to the other inside a
 * queue event and is released by whoever holds it last.
 */
#ifndef PALAVER_PROTO_H
#define PALAVER_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "palaver/client.h"

struct pv_frame;

#define PV_NAME_MAX_CHARS 32 /* code points in a display name */
#define PV_MSGID_MAX 64      /* bytes in a string msgId */

struct pv_user {
    const char *id;
    const char *name;
    const char *role; /* "admin", "moderator", "member", "guest"; NULL: not said */
    int64_t account;  /* the account's id, 0 for a guest */
};

#define PV_PAGE_MAX 200 /* messages in one history page */
#define PV_PAGE_DEFAULT 50
#define PV_SEQ_MAX 9007199254740991ull /* 2^53 - 1: exact in every JSON reader */

enum pv_in_type {
    PV_IN_INVALID,
    PV_IN_MESSAGE,
    PV_IN_HELLO,
    PV_IN_HISTORY,
    PV_IN_EDIT,   /* {"type":"edit","target":seq,"text":...}: one's own message */
    PV_IN_DELETE, /* {"type":"delete","target":seq}: one's own, or any for moderators */
    PV_IN_ROOM,   /* a room request (docs/rooms.md): `op` says which */
    PV_IN_TYPING, /* {"type":"typing","room":name,"typing":bool}: never stored (docs/receipts.md) */
    PV_IN_SETTINGS, /* {"type":"settings","readReceipts":bool}: one's own; no field: just ask */
};

/* Room requests (docs/rooms.md, "Protocol"); who may is the broadcaster's. */
enum pv_room_op {
    PV_ROOM_LIST,      /* {"type":"rooms"}: your rooms */
    PV_ROOM_CREATE,    /* {"type":"create","room":name,"kind":k,"topic":t} */
    PV_ROOM_JOIN,      /* {"type":"join","room":name}: a public room */
    PV_ROOM_LEAVE,     /* {"type":"leave","room":name} */
    PV_ROOM_INVITE,    /* {"type":"invite","room":name,"user":name} */
    PV_ROOM_DM,        /* {"type":"dm","user":name}: open (or find) the DM with name */
    PV_ROOM_TOPIC,     /* {"type":"topic","room":name,"topic":t} */
    PV_ROOM_READ,      /* {"type":"read","room":name,"rseq":n}: read up to n */
    PV_ROOM_MEMBERS,   /* {"type":"members","room":name} */
    PV_ROOM_ARCHIVE,   /* {"type":"archive","room":name}: admins; read-only from then on */
    PV_ROOM_DELETE,    /* {"type":"delete-room","room":name}: admins; its messages go too */
    PV_ROOM_RETENTION, /* {"type":"retention","room":name,"keep":n,"maxAge":s}: the
                        * room's owner or a moderator; 0 = the server's limits only */
    PV_ROOM_RENAME,    /* {"type":"rename-room","room":name,"name":new}: the room's owner or
                        * a moderator; not the lobby, a DM or an archived room */
    PV_ROOM_REMOVE,    /* {"type":"remove","room":name,"user":name}: the room's owner or a
                        * moderator takes a member out */
    PV_ROOM_RECEIVED,  /* {"type":"received","room":name,"rseq":n}: everything up to n
                        * reached me (docs/receipts.md) */
    PV_ROOM_SEEN,      /* {"type":"seen","room":name,"rseq":n}: who has read n */
};

#define PV_ROOM_NAME_MAX_BYTES 128 /* a room's wire name: a display name, or dm:<id>:<id> */
#define PV_TOPIC_MAX_BYTES 512
#define PV_FILES_PER_MESSAGE 10     /* files one message may carry (docs/files.md) */
#define PV_ROOM_KEEP_MAX 100000000u /* retention: items */
#define PV_ROOM_AGE_MAX 3153600000u /* retention: seconds (100 years) */

struct pv_inbound {
    enum pv_in_type type;
    json_t *root;     /* owned; NULL if the JSON did not parse */
    json_t *msg_id;   /* borrowed from root: integer or short string */
    const char *text; /* message, edit: the text ("" for a message of files only) */
    size_t text_len;
    json_t *date;     /* message: the client's date if it is a number */
    json_t *files;    /* message: borrowed from root, NULL if none: 1..PV_FILES_PER_MESSAGE
                       * attachment ids as decoded; on the worker, before the message is
                       * queued, the files' descriptions (files.h) */
    const char *name; /* hello: the requested display name, if any */
    size_t name_len;
    bool has_since; /* hello: resume after seq `since` */
    uint64_t since;
    const char *server; /* hello: the `server` that since belongs to, if given */
    bool name_reserved; /* hello: the name is an account's (the worker asked accounts.h) */
    uint64_t before;    /* history: page before this seq (0: the newest) */
    unsigned limit;     /* history: messages wanted, 1..PV_PAGE_MAX */
    uint64_t target;    /* edit, delete: the seq of the message */
    const char *room;   /* message, history, room requests: the room named, NULL: none
                         * (the lobby); at most PV_ROOM_NAME_MAX_BYTES */
    size_t room_len;
    enum pv_room_op op; /* PV_IN_ROOM: which request */
    const char *kind;   /* create: "public" (default), "private" or "announcement" */
    const char *topic;  /* create, topic */
    size_t topic_len;
    const char *user;     /* invite, dm: the account named; the worker replaces it by the
                           * account's own name when it finds one (user_account) */
    int64_t user_account; /* invite, dm: that account's id, 0 if there is none */
    uint64_t rseq;        /* read, received, seen: an rseq of the room */
    bool typing;          /* typing: started (true) or stopped (false) */
    int read_receipts;    /* settings: 1 send them, 0 do not, -1 not said */
    unsigned keep;        /* retention: items the room keeps (0: no limit of its own) */
    unsigned max_age_s;   /* retention: seconds the room keeps them (0: no limit of its own) */
    const char *err_code; /* invalid: machine-readable code */
    const char *err_msg;  /* invalid: human-readable reason */
};

/* A chat message is a handful of fields: a message with more than
 * PV_PROTO_MAX_VALUES values and members (containers and commas, counted
 * outside strings) or nested deeper than PV_PROTO_MAX_DEPTH is refused
 * ("too-complex") by one linear scan, before it is parsed: parsing
 * 10,000 {} costs thousands of allocations, and the heap growing and
 * shrinking under them costs page faults and TLB shootdowns on every
 * core (measured: docs/hostile-clients.md). */
#define PV_PROTO_MAX_VALUES 128
#define PV_PROTO_MAX_DEPTH 8
bool pv_proto_too_complex(const char *data, size_t len);

/* Decodes one complete text message of len bytes (valid UTF-8). Never
 * fails: problems come back as type PV_IN_INVALID with err_code set.
 * max_text bounds the text in bytes. */
void pv_proto_decode(const char *data, size_t len, size_t max_text, struct pv_inbound *in);
void pv_inbound_release(struct pv_inbound *in);

/* Parses a seq sent by a client (decimal, no sign, at most PV_SEQ_MAX). */
bool pv_seq_parse(const char *s, size_t len, uint64_t *out);

/* What a WebSocket handshake's query string asks for, carried by the JOIN
 * event from the worker to the broadcaster. */
struct pv_join_req {
    size_t name_len; /* 0: no ?name= */
    char name[PV_NAME_MAX_BYTES * 2 + 2];
    bool has_since; /* ?since=<seq> */
    bool bad_since; /* ?since= was not a seq */
    uint64_t since;
    char server[PV_ID_LEN + 1]; /* ?server=<id>, "" if none */
    /* Decided by the worker at the handshake (accounts.h): the session
     * cookie's account (then `name` is the account's name), or, for a
     * guest, whether the ?name= asked for is an account's. */
    int64_t account;
    char role[16];
    int64_t session;     /* the session's id */
    int64_t muted_until; /* ms since the epoch, 0: not muted */
    bool name_reserved;
};

/* Validates a display name with the nickname profile (nickname.h): valid
 * UTF-8, white space folded and trimmed, nothing invisible, unassigned or
 * look-alike, NFC, 1..PV_NAME_MAX_CHARS code points. Writes the name to
 * out (PV_NAME_MAX_BYTES + 1 bytes). Returns true if valid; otherwise *why
 * says what is wrong. (Whether the name is free is the broadcaster's.) */
bool pv_name_check(const char *s, size_t len, char out[PV_NAME_MAX_BYTES + 1], const char **why);


/* The one rule for a message's msgId, wherever it is read (the decoder,
 * and the worker's own replies: rate-limited, busy): an integer a
 * JavaScript client reads exactly (|n| <= 2^53 - 1), or a string of at
 * most PV_MSGID_MAX bytes. *out is the msgId (borrowed from
 * root) or NULL when there is none; false when there is one that breaks
 * the rule (then *out is NULL: it is never echoed). */
bool pv_proto_msg_id(const json_t *root, json_t **out);

/* Outbound messages. */
/* The newcomer's own identity; `server` names this run of palaverd (seq
 * numbers count from 1 again when it restarts), max_text is --max-text. */
struct pv_frame *pv_proto_id(const char *key, const struct pv_user *you, const char *server,
                             size_t max_text, int64_t now);
/* Every message, edit and deletion names its room and its place in it
 * (docs/rooms.md). */
#define PV_LOBBY "lobby"
struct pv_frame *pv_proto_message(const struct pv_inbound *in, const struct pv_user *from,
                                  const char *room, uint64_t seq, uint64_t rseq, int64_t now);
struct pv_frame *pv_proto_ack(const json_t *msg_id, uint64_t seq, uint64_t rseq, int64_t now);
struct pv_frame *pv_proto_error(const char *code, const char *message, const json_t *msg_id);
/* type is "join" or "leave": users[0..n) arrived or left together (a
 * reconnect burst is one notice); "user" repeats the first of them. With
 * named false (a room over --presence-max) only "count" is sent. */
struct pv_frame *pv_proto_notice(const char *type, const struct pv_user *users, size_t n,
                                 bool named, size_t online, int64_t now);
struct pv_frame *pv_proto_rename(const struct pv_user *u, const char *old_name, int64_t now);
/* Everyone online (newcomers included), shared by all newcomers of a
 * burst: it carries nothing per-client (that is in "id"). */
/* Lists users[0..n); online may be larger ("truncated" is then true).
 * history: chat messages that follow (0 for a client resuming: the
 * resume or reset message says how many). */
struct pv_frame *pv_proto_presence(const struct pv_user *users, size_t n, size_t online,
                                   size_t history, uint64_t last_seq, int64_t now);
/* Starts a replay after seq `since`: type "resume" (exactly the messages
 * after since follow, `history` of them, then live ones) or "reset"
 * (since could not be honoured, for `reason`; the latest `history`
 * messages follow). */
struct pv_frame *pv_proto_resume(const char *type, uint64_t since, const char *reason,
                                 size_t history, uint64_t last_seq, int64_t now);
/* A page of older messages: items[0..n) are stored message objects
 * (JSON text), oldest first; `more` says whether older ones exist. */
/* room: the room's name when the request named one, else NULL. */
struct pv_frame *pv_proto_history_page(const char *room, uint64_t before, const json_t *msg_id,
                                       bool more, const char *const *items, const size_t *lens,
                                       size_t n);

/* Moderation and editing (docs/protocol.md, "Edits and deletions"). Each
 * event has a seq of its own, so a resume replays it; the message it
 * names (`target`) is changed in the history as well:
 *   delete:  {"type":"delete","target":N,"by":{...},"seq":M,...}; message N
 *            becomes a tombstone {"type":"deleted","seq":N,"serverDate":...}
 *   edit:    {"type":"edit","target":N,"text":"...","by":{...},"seq":M,
 *            "edited":ms,...}; message N gets the text and "edited". */
struct pv_frame *pv_proto_delete(const struct pv_user *by, const char *room, uint64_t target,
                                 uint64_t seq, uint64_t rseq, int64_t now);
struct pv_frame *pv_proto_edit(const struct pv_user *by, const char *room, uint64_t target,
                               const char *text, size_t len, uint64_t seq, uint64_t rseq,
                               int64_t now);
/* orig (a message frame) with `text` and "edited": now; NULL if orig does
 * not parse (never for a frame palaverd encoded). */
struct pv_frame *pv_proto_edited(const struct pv_frame *orig, const char *text, size_t len,
                                 int64_t now);
/* rseq 0: not known (the message is older than the ring), not sent. */
struct pv_frame *pv_proto_tombstone(const char *room, uint64_t seq, uint64_t rseq,
                                    int64_t server_date, int64_t now);
/* To the person acted on: {"type":"moderation","action":"mute","by":"ann",
 * "until":ms,"reason":"...","role":"..."} (until, reason, role when set). */
struct pv_frame *pv_proto_moderation(const char *action, const char *by, const char *reason,
                                     int64_t until, const char *role, int64_t now);
/* The account of a stored message's sender (0: a guest, or not a
 * message) and whether it is a chat message: for the history ring
 * reloaded at start. */
/* room: its room's wire name (PV_ROOM_NAME_MAX_BYTES + 1 bytes; the
 * lobby when it names none). */
int64_t pv_proto_author(const char *json, size_t len, bool *is_message, uint64_t *rseq, char *room);

#endif
