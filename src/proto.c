/* proto.c -- decoding, validation and encoding of palaver's JSON messages.
 *
 * Threads: no shared state (called by the broadcaster in palaverd). */
#include "palaver/proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "palaver/dialect.h"
#include "palaver/frame.h"
#include "palaver/log.h"
#include "palaver/nickname.h"
#include "palaver/upload.h"
#include "palaver/utf8.h"
#include "palaver/xalloc.h"

static void set_invalid(struct pv_inbound *in, const char *code, const char *msg)
{
    in->type = PV_IN_INVALID;
    in->err_code = code;
    in->err_msg = msg;
}

/* The largest integer a JavaScript client reads exactly (2^53 - 1). */
#define PV_JS_INT_MAX 9007199254740991LL

static bool seq_value(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > PV_SEQ_MAX)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

bool pv_seq_parse(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 16)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > PV_SEQ_MAX)
        return false;
    *out = v;
    return true;
}

bool pv_proto_too_complex(const char *data, size_t len)
{
    unsigned tokens = 0, depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (in_string) {
            if (ch == '\\')
                i++; /* the escaped character cannot end the string */
            else if (ch == '"')
                in_string = false;
            continue;
        }
        switch (ch) {
        case '"':
            in_string = true;
            break;
        case '{':
        case '[':
            if (++depth > PV_PROTO_MAX_DEPTH)
                return true;
            /* a container counts as a value */
            __attribute__((fallthrough));
        case ',':
            if (++tokens > PV_PROTO_MAX_VALUES)
                return true;
            break;
        case '}':
        case ']':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return false;
}

/* A message's "files": 1..PV_FILES_PER_MESSAGE attachment ids (upload.h),
 * no id twice; absent is fine. The worker replaces each id by the
 * file's description before the message is queued (files.h). */
static bool files_field(struct pv_inbound *in)
{
    json_t *v = json_object_get(in->root, "files");
    if (!v)
        return true;
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0 || n > PV_FILES_PER_MESSAGE) {
        set_invalid(in, "bad-files", "\"files\" must be a list of 1 to 10 file ids");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_array_get(v, i);
        if (!json_is_string(id) || !pv_file_id_ok(json_string_value(id), json_string_length(id))) {
            set_invalid(in, "bad-files", "\"files\" must be a list of file ids");
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (json_equal(id, json_array_get(v, j))) {
                set_invalid(in, "bad-files", "a file is listed twice");
                return false;
            }
    }
    in->files = v;
    return true;
}

/* The "text" of a message or an edit: a string, not blank, at most
 * max_text bytes. False (in set invalid) otherwise. */
static bool text_field(struct pv_inbound *in, size_t max_text, bool may_be_empty)
{
    json_t *v = json_object_get(in->root, "text");
    if (!v && may_be_empty) {
        in->text = "";
        return true;
    }
    if (!json_is_string(v)) {
        set_invalid(in, "bad-text", "\"text\" must be a string");
        return false;
    }
    in->text = json_string_value(v);
    in->text_len = json_string_length(v);
    if (pv_text_blank(in->text, in->text_len) && !may_be_empty) {
        set_invalid(in, "empty-text", "message text is empty");
        return false;
    }
    if (in->text_len > max_text) {
        set_invalid(in, "text-too-long", "message text is longer than the server allows");
        return false;
    }
    return true;
}

/* An optional string field of min to max bytes; false (in set invalid,
 * `code`) when it is there and is not one. */
static bool str_field(struct pv_inbound *in, const char *key, size_t min, size_t max,
                      const char *code, const char *msg, const char **out, size_t *len)
{
    json_t *v = json_object_get(in->root, key);
    if (!v)
        return true;
    if (!json_is_string(v) || json_string_length(v) < min || /* a topic may be "": cleared */
        json_string_length(v) > max) {
        set_invalid(in, code, msg);
        return false;
    }
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return true;
}

static bool room_field(struct pv_inbound *in)
{
    return str_field(in, "room", 1, PV_ROOM_NAME_MAX_BYTES, "bad-room",
                     "\"room\" must be a room's name (a string of at most 128 bytes)", &in->room,
                     &in->room_len);
}

/* The room requests (docs/rooms.md): each names what it needs. */
static const struct {
    const char *type;
    enum pv_room_op op;
    bool room, user;
} room_requests[] = {
    {"rooms", PV_ROOM_LIST, false, false},        {"create", PV_ROOM_CREATE, true, false},
    {"join", PV_ROOM_JOIN, true, false},          {"leave", PV_ROOM_LEAVE, true, false},
    {"invite", PV_ROOM_INVITE, true, true},       {"dm", PV_ROOM_DM, false, true},
    {"topic", PV_ROOM_TOPIC, true, false},        {"read", PV_ROOM_READ, true, false},
    {"members", PV_ROOM_MEMBERS, true, false},    {"archive", PV_ROOM_ARCHIVE, true, false},
    {"delete-room", PV_ROOM_DELETE, true, false}, {"retention", PV_ROOM_RETENTION, true, false},
    {"rename-room", PV_ROOM_RENAME, true, false}, {"remove", PV_ROOM_REMOVE, true, true},
    {"received", PV_ROOM_RECEIVED, true, false},  {"seen", PV_ROOM_SEEN, true, false},
};

static void decode_room(struct pv_inbound *in, size_t i)
{
    in->op = room_requests[i].op;
    if (!room_field(in))
        return;
    if (room_requests[i].room && !in->room) {
        set_invalid(in, "bad-room", "this request needs \"room\"");
        return;
    }
    if (room_requests[i].user) {
        if (!str_field(in, "user", 1, PV_NAME_MAX_BYTES, "bad-user",
                       "\"user\" must be a person's name", &in->user, NULL))
            return;
        if (!in->user) {
            set_invalid(in, "bad-user", "this request needs \"user\"");
            return;
        }
    }
    if (!str_field(in, "kind", 1, 16, "bad-kind",
                   "\"kind\" must be public, private or announcement", &in->kind, NULL) ||
        !str_field(in, "topic", 0, PV_TOPIC_MAX_BYTES, "bad-topic",
                   "\"topic\" must be a string of at most 512 bytes", &in->topic, &in->topic_len))
        return;
    if (in->op == PV_ROOM_RENAME) {
        if (!str_field(in, "name", 1, PV_ROOM_NAME_MAX_BYTES, "bad-room",
                       "\"name\" must be the room's new name (a string of at most 128 bytes)",
                       &in->name, &in->name_len))
            return;
        if (!in->name) {
            set_invalid(in, "bad-room", "this request needs \"name\", the room's new name");
            return;
        }
    }
    if (in->op == PV_ROOM_TOPIC && !in->topic) {
        set_invalid(in, "bad-topic", "this request needs \"topic\"");
        return;
    }
    if (in->op == PV_ROOM_RETENTION) {
        json_t *k = json_object_get(in->root, "keep"), *a = json_object_get(in->root, "maxAge");
        uint64_t kv = 0, av = 0;
        if ((k && (!seq_value(k, &kv) || kv > PV_ROOM_KEEP_MAX)) ||
            (a && (!seq_value(a, &av) || av > PV_ROOM_AGE_MAX))) {
            set_invalid(in, "bad-retention",
                        "\"keep\" (items) and \"maxAge\" (seconds) must be integers >= 0");
            return;
        }
        in->keep = (unsigned)kv;
        in->max_age_s = (unsigned)av;
    }
    if ((in->op == PV_ROOM_READ || in->op == PV_ROOM_RECEIVED || in->op == PV_ROOM_SEEN) &&
        !seq_value(json_object_get(in->root, "rseq"), &in->rseq)) {
        set_invalid(in, "bad-rseq", "\"rseq\" must be an rseq of the room (an integer >= 0)");
        return;
    }
    in->type = PV_IN_ROOM;
}

static void decode(const char *data, size_t len, size_t max_text, struct pv_inbound *in)
{
    json_error_t err;
    json_t *type, *v;
    const char *t;

    memset(in, 0, sizeof(*in));
    /* One linear pass before any allocation: a message no client of ours
     * sends (thousands of values, deep nesting) costs a scan, not a tree
     * of thousands of allocations on this worker (docs/hostile-clients.md). */
    if (pv_proto_too_complex(data, len)) {
        set_invalid(in, "too-complex", "message has too many JSON values or is nested too deeply");
        return;
    }
    in->root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (!in->root) {
        set_invalid(in, "bad-json", "message is not valid JSON");
        return;
    }
    if (!json_is_object(in->root)) {
        set_invalid(in, "bad-json", "message must be a JSON object");
        return;
    }
    if (!pv_proto_msg_id(in->root, &in->msg_id)) {
        set_invalid(in, "bad-msgid", "msgId must be an integer or a short string");
        return;
    }
    type = json_object_get(in->root, "type");
    t = json_string_value(type);
    if (!t) {
        set_invalid(in, "unknown-type", "message has no \"type\" string");
        return;
    }
    for (size_t i = 0; i < sizeof(room_requests) / sizeof(room_requests[0]); i++) {
        if (strcmp(t, room_requests[i].type) == 0) {
            decode_room(in, i);
            return;
        }
    }
    if (strcmp(t, "edit") == 0 || strcmp(t, "delete") == 0) {
        /* {"type":"edit","target":seq,"text":"..."}, {"type":"delete","target":seq}:
         * who may is the broadcaster's to decide (docs/accounts.md). */
        v = json_object_get(in->root, "target");
        if (!seq_value(v, &in->target) || in->target == 0) {
            set_invalid(in, "bad-target", "\"target\" must be the seq of a message");
            return;
        }
        if (t[0] == 'd') {
            in->type = PV_IN_DELETE;
            return;
        }
        if (!text_field(in, max_text, false))
            return;
        in->type = PV_IN_EDIT;
    } else if (strcmp(t, "message") == 0) {
        /* A message with files may have no text (a photo on its own). */
        if (!files_field(in) || !text_field(in, max_text, in->files != NULL) || !room_field(in))
            return;
        /* An avatar (seed 003's, docs/dialects.md) is kept only if it is
         * safe where that page puts it; checked here, on the worker, so
         * the broadcaster only copies it. */
        v = json_object_get(in->root, "avatar");
        if (v && !(json_is_string(v) &&
                   pv_dialect_avatar_ok(json_string_value(v), json_string_length(v))))
            json_object_del(in->root, "avatar");
        /* A client's own date is relayed when it is a time a client can
         * read exactly (an integer of ms, 0 .. 2^53 - 1); else the
         * server's time is used. */
        v = json_object_get(in->root, "date");
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_integer_value(v) <= PV_JS_INT_MAX)
            in->date = v;
        in->type = PV_IN_MESSAGE;
    } else if (strcmp(t, "hello") == 0) {
        v = json_object_get(in->root, "name");
        if (v && !json_is_string(v)) {
            set_invalid(in, "bad-name", "\"name\" must be a string");
            return;
        }
        if (v) {
            in->name = json_string_value(v);
            in->name_len = json_string_length(v);
        }
        v = json_object_get(in->root, "since");
        if (v) {
            if (!seq_value(v, &in->since)) {
                set_invalid(in, "bad-since", "\"since\" must be a seq (an integer >= 0)");
                return;
            }
            in->has_since = true;
        }
        v = json_object_get(in->root, "server");
        if (v && !json_is_string(v)) {
            set_invalid(in, "bad-since", "\"server\" must be a string");
            return;
        }
        in->server = json_string_value(v);
        in->type = PV_IN_HELLO;
    } else if (strcmp(t, "typing") == 0) {
        /* {"type":"typing","room":name,"typing":true|false}: no room is the
         * lobby; a missing "typing" means started (docs/receipts.md). */
        if (!room_field(in))
            return;
        v = json_object_get(in->root, "typing");
        if (v && !json_is_boolean(v)) {
            set_invalid(in, "bad-typing", "\"typing\" must be true or false");
            return;
        }
        in->typing = !v || json_is_true(v);
        in->type = PV_IN_TYPING;
    } else if (strcmp(t, "settings") == 0) {
        v = json_object_get(in->root, "readReceipts");
        if (v && !json_is_boolean(v)) {
            set_invalid(in, "bad-settings", "\"readReceipts\" must be true or false");
            return;
        }
        in->read_receipts = v ? json_is_true(v) : -1;
        in->type = PV_IN_SETTINGS;
    } else if (strcmp(t, "history") == 0) {
        if (!room_field(in))
            return;
        v = json_object_get(in->root, "before");
        if (v && !seq_value(v, &in->before)) {
            set_invalid(in, "bad-history", "\"before\" must be a seq (an integer >= 0)");
            return;
        }
        v = json_object_get(in->root, "limit");
        in->limit = PV_PAGE_DEFAULT;
        if (v) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > PV_PAGE_MAX) {
                set_invalid(in, "bad-history", "\"limit\" must be an integer from 1 to 200");
                return;
            }
            in->limit = (unsigned)json_integer_value(v);
        }
        in->type = PV_IN_HISTORY;
    } else {
        set_invalid(in, "unknown-type", "unknown message type");
    }
}

/* Keeps of the parsed message only the fields the protocol reads: the
 * decoded pointers point into those children, which the smaller root
 * keeps alive; everything else (unknown fields, their trees) is freed
 * now, by the decoding thread, so a queued message holds no more than
 * it needs. */
static void keep_only_known(struct pv_inbound *in)
{
    static const char *const known[] = {"type", "msgId", "text",  "date", "name",  "server",
                                        "room", "kind",  "topic", "user", "files", "avatar"};
    /* ("target", "since", "before", "limit" and "rseq" were read as numbers,
     * "typing" and "readReceipts" as booleans.) */
    if (!in->root)
        return;
    if (!json_is_object(in->root)) {
        json_decref(in->root);
        in->root = NULL;
        in->msg_id = NULL;
        return;
    }
    json_t *small = json_object();
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        json_t *v = json_object_get(in->root, known[i]);
        if (v)
            json_object_set(small, known[i], v);
    }
    json_decref(in->root);
    in->root = small;
}

void pv_proto_decode(const char *data, size_t len, size_t max_text, struct pv_inbound *in)
{
    decode(data, len, max_text, in);
    keep_only_known(in);
}

void pv_inbound_release(struct pv_inbound *in)
{
    json_decref(in->root);
    memset(in, 0, sizeof(*in));
}

bool pv_name_check(const char *s, size_t len, char out[PV_NAME_MAX_BYTES + 1], const char **why)
{
    return pv_nickname_prepare(s, len, out, PV_NAME_MAX_BYTES + 1, why);
}

static json_t *user_json(const struct pv_user *u)
{
    json_t *o = json_pack("{s:s, s:s}", "id", u->id, "name", u->name);
    if (u->role)
        json_object_set_new(o, "role", json_string(u->role));
    if (u->account > 0)
        json_object_set_new(o, "account", json_integer((json_int_t)u->account));
    return o;
}

static struct pv_frame *finish(json_t *obj)
{
    struct pv_frame *f;
    if (!obj) {
        /* json_pack fails only on out of memory or a bad format string. */
        pv_err("building a JSON message failed");
        abort();
    }
    f = pv_frame_from_json(obj);
    json_decref(obj);
    return f;
}

struct pv_frame *pv_proto_id(const char *key, const struct pv_user *you, const char *server,
                             size_t max_text, int64_t now)
{
    return finish(json_pack("{s:s, s:s, s:I, s:o, s:s, s:I}", "type", "id", "clientKey", key,
                            "date", (json_int_t)now, "you", user_json(you), "server", server,
                            "maxText", (json_int_t)max_text));
}

struct pv_frame *pv_proto_message(const struct pv_inbound *in, const struct pv_user *from,
                                  const char *room, uint64_t seq, uint64_t rseq, int64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("message"));
    if (in->msg_id)
        json_object_set(o, "msgId", in->msg_id);
    json_object_set_new(o, "text", json_stringn(in->text, in->text_len));
    json_object_set_new(o, "clientKey", json_string(""));
    if (in->date)
        json_object_set(o, "date", in->date);
    else
        json_object_set_new(o, "date", json_integer((json_int_t)now));
    json_object_set_new(o, "from", user_json(from));
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "room", json_string(room));
    json_object_set_new(o, "rseq", json_integer((json_int_t)rseq));
    json_object_set_new(o, "serverDate", json_integer((json_int_t)now));
    if (in->files) /* the descriptions the worker put in place of the ids */
        json_object_set(o, "files", in->files);
    /* A picture of the sender a seed 003 client gave (docs/dialects.md):
     * relayed only if it is safe where that page puts it. */
    json_t *av = json_object_get(in->root, "avatar"); /* checked by the decode */
    if (av)
        json_object_set(o, "avatar", av);
    return finish(o);
}

bool pv_proto_msg_id(const json_t *root, json_t **out)
{
    json_t *v = json_is_object(root) ? json_object_get(root, "msgId") : NULL;
    *out = NULL;
    if (!v)
        return true;
    bool ok = json_is_integer(v) ? json_integer_value(v) >= -PV_JS_INT_MAX &&
                                       json_integer_value(v) <= PV_JS_INT_MAX
                                 : json_is_string(v) && json_string_length(v) <= PV_MSGID_MAX;
    if (!ok)
        return false;
    *out = v;
    return true;
}

struct pv_frame *pv_proto_ack(const json_t *msg_id, uint64_t seq, uint64_t rseq, int64_t now)
{
    json_t *o = json_pack("{s:s}", "type", "ack");
    if (msg_id)
        json_object_set(o, "msgId", (json_t *)msg_id);
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    if (rseq) /* its place in its room: what receipts positions count (docs/receipts.md) */
        json_object_set_new(o, "rseq", json_integer((json_int_t)rseq));
    json_object_set_new(o, "serverDate", json_integer((json_int_t)now));
    return finish(o);
}

struct pv_frame *pv_proto_error(const char *code, const char *message, const json_t *msg_id)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);
    if (msg_id)
        json_object_set(o, "msgId", (json_t *)msg_id);
    return finish(o);
}

static json_t *users_json(const struct pv_user *users, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, user_json(&users[i]));
    return list;
}

struct pv_frame *pv_proto_notice(const char *type, const struct pv_user *users, size_t n,
                                 bool named, size_t online, int64_t now)
{
    json_t *o = json_pack("{s:s, s:I}", "type", type, "count", (json_int_t)n);
    if (named) {
        json_object_set_new(o, "user", user_json(&users[0]));
        json_object_set_new(o, "users", users_json(users, n));
    }
    json_object_set_new(o, "online", json_integer((json_int_t)online));
    json_object_set_new(o, "serverDate", json_integer((json_int_t)now));
    return finish(o);
}

struct pv_frame *pv_proto_rename(const struct pv_user *u, const char *old_name, int64_t now)
{
    return finish(json_pack("{s:s, s:o, s:s, s:I}", "type", "rename", "user", user_json(u),
                            "oldName", old_name, "serverDate", (json_int_t)now));
}

struct pv_frame *pv_proto_presence(const struct pv_user *users, size_t n, size_t online,
                                   size_t history, uint64_t last_seq, int64_t now)
{
    return finish(json_pack("{s:s, s:o, s:I, s:b, s:I, s:I, s:I}", "type", "presence", "users",
                            users_json(users, n), "online", (json_int_t)online, "truncated",
                            online > n, "history", (json_int_t)history, "lastSeq",
                            (json_int_t)last_seq, "serverDate", (json_int_t)now));
}

struct pv_frame *pv_proto_resume(const char *type, uint64_t since, const char *reason,
                                 size_t history, uint64_t last_seq, int64_t now)
{
    json_t *o = json_pack("{s:s, s:I}", "type", type, "since", (json_int_t)since);
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "history", json_integer((json_int_t)history));
    json_object_set_new(o, "lastSeq", json_integer((json_int_t)last_seq));
    json_object_set_new(o, "serverDate", json_integer((json_int_t)now));
    return finish(o);
}

/* The page is assembled as text: the items are stored message objects
 * already encoded, so they are copied, not parsed and re-encoded. */
struct pv_frame *pv_proto_history_page(const char *room, uint64_t before, const json_t *msg_id,
                                       bool more, const char *const *items, const size_t *lens,
                                       size_t n)
{
    char head[160], *id = NULL, *rm = NULL;
    if (msg_id)
        id = json_dumps(msg_id, JSON_ENCODE_ANY | JSON_COMPACT);
    if (room) {
        json_t *r = json_string(room);
        rm = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT);
        json_decref(r);
    }
    int hn = snprintf(head, sizeof(head), "{\"type\":\"history\",\"before\":%llu,\"more\":%s,",
                      (unsigned long long)before, more ? "true" : "false");
    size_t total = (size_t)hn + (id ? strlen(id) + 10 : 0) + (rm ? strlen(rm) + 10 : 0) + 16;
    for (size_t i = 0; i < n; i++)
        total += lens[i] + 1;
    char *buf = pv_xmalloc(total), *p = buf;
    memcpy(p, head, (size_t)hn);
    p += hn;
    if (id)
        p += sprintf(p, "\"msgId\":%s,", id);
    if (rm)
        p += sprintf(p, "\"room\":%s,", rm);
    p += sprintf(p, "\"messages\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, items[i], lens[i]);
        p += lens[i];
    }
    memcpy(p, "]}", 2);
    p += 2;
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, buf, (size_t)(p - buf));
    free(buf);
    free(id);
    free(rm);
    return f;
}

struct pv_frame *pv_proto_delete(const struct pv_user *by, const char *room, uint64_t target,
                                 uint64_t seq, uint64_t rseq, int64_t now)
{
    return finish(json_pack("{s:s, s:I, s:o, s:I, s:s, s:I, s:I}", "type", "delete", "target",
                            (json_int_t)target, "by", user_json(by), "seq", (json_int_t)seq, "room",
                            room, "rseq", (json_int_t)rseq, "serverDate", (json_int_t)now));
}

struct pv_frame *pv_proto_edit(const struct pv_user *by, const char *room, uint64_t target,
                               const char *text, size_t len, uint64_t seq, uint64_t rseq,
                               int64_t now)
{
    return finish(json_pack("{s:s, s:I, s:s%, s:o, s:I, s:s, s:I, s:I, s:I}", "type", "edit",
                            "target", (json_int_t)target, "text", text, len, "by", user_json(by),
                            "seq", (json_int_t)seq, "room", room, "rseq", (json_int_t)rseq,
                            "edited", (json_int_t)now, "serverDate", (json_int_t)now));
}

struct pv_frame *pv_proto_edited(const struct pv_frame *orig, const char *text, size_t len,
                                 int64_t now)
{
    size_t n;
    const unsigned char *p = pv_frame_payload(orig, &n);
    json_t *o = json_loadb((const char *)p, n, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "text", json_stringn(text, len));
    json_object_set_new(o, "edited", json_integer((json_int_t)now));
    return finish(o);
}

struct pv_frame *pv_proto_tombstone(const char *room, uint64_t seq, uint64_t rseq,
                                    int64_t server_date, int64_t now)
{
    json_t *o =
        json_pack("{s:s, s:I, s:s, s:I, s:I}", "type", "deleted", "seq", (json_int_t)seq, "room",
                  room, "serverDate", (json_int_t)server_date, "deletedAt", (json_int_t)now);
    if (rseq) /* unknown for a message older than the ring */
        json_object_set_new(o, "rseq", json_integer((json_int_t)rseq));
    return finish(o);
}

struct pv_frame *pv_proto_moderation(const char *action, const char *by, const char *reason,
                                     int64_t until, const char *role, int64_t now)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "type", "moderation", "action", action, "by", by,
                          "serverDate", (json_int_t)now);
    if (reason && *reason)
        json_object_set_new(o, "reason", json_string(reason));
    if (until)
        json_object_set_new(o, "until", json_integer((json_int_t)until));
    if (role)
        json_object_set_new(o, "role", json_string(role));
    return finish(o);
}

int64_t pv_proto_author(const char *json, size_t len, bool *is_message, uint64_t *rseq, char *room)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    const char *named = json_string_value(json_object_get(o, "room"));
    snprintf(room, PV_ROOM_NAME_MAX_BYTES + 1, "%s", named ? named : PV_LOBBY);
    const char *type = json_string_value(json_object_get(o, "type"));
    *is_message = type && strcmp(type, "message") == 0;
    json_int_t r = json_integer_value(json_object_get(o, "rseq"));
    *rseq = r > 0 ? (uint64_t)r : 0;
    json_int_t account = json_integer_value(json_object_get(json_object_get(o, "from"), "account"));
    json_decref(o);
    return account > 0 ? (int64_t)account : 0;
}
