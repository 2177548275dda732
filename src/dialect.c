/* dialect.c -- the seeds' wire protocols, translated to and from
 * palaver's (dialect.h, docs/dialects.md).
 *
 * Threads: none of its own; pure functions, called by CivetWeb workers
 * (inbound, and a refusal they write themselves) and by the broadcaster
 * (outbound). */
#include "palaver/dialect.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/frame.h"
#include "palaver/xalloc.h"

enum pv_dialect pv_dialect_of(const char *uri, const char *subprotocol)
{
    if (uri && strcmp(uri, "/") == 0) {
        if (!subprotocol)
            return PV_DIALECT_TEXT;
        if (strcmp(subprotocol, "echo-protocol") == 0)
            return PV_DIALECT_ECHO;
    }
    if (uri && strcmp(uri, "/socket.io/") == 0)
        return PV_DIALECT_SIO;
    return PV_DIALECT_PALAVER;
}

const char *pv_dialect_name(enum pv_dialect d)
{
    switch (d) {
    case PV_DIALECT_TEXT:
        return "text";
    case PV_DIALECT_ECHO:
        return "echo";
    case PV_DIALECT_SIO:
        return "socketio";
    default:
        return "palaver";
    }
}

bool pv_dialect_echoes(enum pv_dialect d)
{
    return d == PV_DIALECT_TEXT || d == PV_DIALECT_ECHO;
}

static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i]))
            return false;
    return true;
}

bool pv_dialect_avatar_ok(const char *s, size_t n)
{
    if (!s || n == 0 || n > PV_AVATAR_MAX)
        return false;
    static const char *const images[] = {"data:image/png;base64,", "data:image/jpeg;base64,",
                                         "data:image/gif;base64,", "data:image/webp;base64,"};
    for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
        size_t k = strlen(images[i]);
        if (n > k && strncmp(s, images[i], k) == 0)
            return all_of(s + k, n - k,
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
    }
    size_t k = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    /* A URL's characters (RFC 3986) less the quote and the apostrophe:
     * nothing that ends an attribute, opens a tag or starts an entity
     * that is not escaped again on the way out. */
    return k && n > k &&
           all_of(s + k, n - k,
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/"
                  "?#[]@!$&()*+,;=%");
}

char *pv_dialect_text_in(const char *data, size_t len)
{
    json_t *o = json_pack("{s:s, s:s%}", "type", "message", "text", data, len);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        abort(); /* out of memory, as xalloc.h */
    return s;
}

bool pv_dialect_echo_in(const char *data, size_t len, char **msg, char **name, const char **why)
{
    *msg = *name = NULL;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *m = json_object_get(o, "message"), *n = json_object_get(o, "name"),
           *a = json_object_get(o, "avatar");
    if (!json_is_object(o) || !json_is_string(m) || (n && !json_is_string(n)) ||
        (a && !json_is_string(a))) {
        *why = "a message must be {\"name\":...,\"avatar\":...,\"message\":...,\"date\":...}";
        json_decref(o);
        return false;
    }
    json_t *req = json_pack("{s:s, s:O}", "type", "message", "text", m);
    /* An avatar is kept only if it is safe where seed 003 pages put it;
     * any other is dropped, not refused (the message still goes). */
    if (a && pv_dialect_avatar_ok(json_string_value(a), json_string_length(a)))
        json_object_set(req, "avatar", a);
    *msg = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (n && json_string_length(n) > 0)
        *name = strndup(json_string_value(n), json_string_length(n));
    json_decref(o);
    if (!*msg || (n && json_string_length(n) > 0 && !*name))
        abort(); /* out of memory, as xalloc.h */
    return true;
}

/* ---- outbound ---- */

/* s HTML-escaped (& < > " '), appended to *out. */
static void escape_into(json_t *parts, const char *s)
{
    size_t n = strlen(s), cap = n * 6 + 1, j = 0;
    char *e = pv_xmalloc(cap);
    for (size_t i = 0; i < n; i++) {
        const char *r = NULL;
        switch (s[i]) {
        case '&':
            r = "&amp;";
            break;
        case '<':
            r = "&lt;";
            break;
        case '>':
            r = "&gt;";
            break;
        case '"':
            r = "&quot;";
            break;
        case '\'':
            r = "&#39;";
            break;
        default:
            e[j++] = s[i];
            continue;
        }
        size_t k = strlen(r);
        memcpy(e + j, r, k);
        j += k;
    }
    json_array_append_new(parts, json_stringn(e, j));
    free(e);
}

/* The parts joined. */
static char *joined(json_t *parts)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(parts); i++)
        n += json_string_length(json_array_get(parts, i));
    char *s = pv_xmalloc(n + 1), *p = s;
    for (size_t i = 0; i < json_array_size(parts); i++) {
        json_t *v = json_array_get(parts, i);
        memcpy(p, json_string_value(v), json_string_length(v));
        p += json_string_length(v);
    }
    *p = '\0';
    return s;
}

static const char *sval(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* A message's text, with its files named after it ("[file: a.png]"). */
static void text_with_files(json_t *parts, const json_t *m, bool html)
{
    const char *text = sval(m, "text");
    if (html)
        escape_into(parts, text);
    else
        json_array_append_new(parts, json_string(text));
    json_t *files = json_object_get(m, "files");
    for (size_t i = 0; i < json_array_size(files); i++) {
        json_array_append_new(parts, json_string(i == 0 && !*text ? "[file: " : " [file: "));
        const char *name = sval(json_array_get(files, i), "name");
        if (html)
            escape_into(parts, name);
        else
            json_array_append_new(parts, json_string(name));
        json_array_append_new(parts, json_string("]"));
    }
}

/* seed 003's object: {name, avatar, message, date}, every string
 * HTML-escaped (its page concatenates them into HTML). */
static json_t *echo_object(const char *name, const char *avatar, json_t *message_parts,
                           json_int_t date)
{
    json_t *np = json_array();
    escape_into(np, name);
    char *n = joined(np), *m = joined(message_parts), *a = NULL;
    json_decref(np);
    if (avatar && pv_dialect_avatar_ok(avatar, strlen(avatar))) {
        json_t *ap = json_array();
        escape_into(ap, avatar);
        a = joined(ap);
        json_decref(ap);
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "name", n, "avatar", a ? a : "", "message", m,
                          "date", date);
    free(n);
    free(m);
    free(a);
    return o;
}

/* The echo object for palaver message (or edit) `m`, or NULL. */
static json_t *echo_of(const json_t *m, const char *type, int64_t now)
{
    json_t *parts = json_array();
    json_t *o = NULL;
    if (strcmp(type, "message") == 0 || strcmp(type, "edit") == 0) {
        const json_t *who = json_object_get(m, strcmp(type, "edit") == 0 ? "by" : "from");
        if (strcmp(type, "edit") == 0)
            json_array_append_new(parts, json_string("(edited) "));
        text_with_files(parts, m, true);
        json_t *d = json_object_get(m, "serverDate");
        o = echo_object(sval(who, "name"), sval(m, "avatar"), parts,
                        json_is_integer(d) ? json_integer_value(d) : now);
    } else if (strcmp(type, "error") == 0) {
        escape_into(parts, sval(m, "message"));
        o = echo_object("palaver", NULL, parts, now);
    }
    json_decref(parts);
    return o;
}

static struct pv_frame *text_frame(const char *s)
{
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, s, strlen(s));
    return f;
}

/* ---- Socket.IO (seed 002) ---- */

/* An Engine.IO message of a Socket.IO packet: "4" + "2"/"3" + the ack
 * id, if any + the JSON array `args` (its reference taken). */
static struct pv_frame *sio_frame(char type, json_int_t ack, json_t *args)
{
    char *j = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    if (!j)
        abort(); /* out of memory, as xalloc.h */
    char head[32];
    int h = ack >= 0 ? snprintf(head, sizeof(head), "4%c%lld", type, (long long)ack)
                     : snprintf(head, sizeof(head), "4%c", type);
    size_t n = strlen(j);
    char *s = pv_xmalloc((size_t)h + n + 1);
    memcpy(s, head, (size_t)h);
    memcpy(s + h, j, n + 1);
    free(j);
    struct pv_frame *f = text_frame(s);
    free(s);
    return f;
}

static struct pv_frame *sio_event(const char *event, json_t *arg)
{
    return sio_frame('2', -1, json_pack("[s, o]", event, arg));
}

/* "alice, bob and carol connected" (or "3 people connected" when the
 * notice carries counts only, over --presence-max). */
static struct pv_frame *sio_presence(const json_t *m, const char *what)
{
    json_t *users = json_object_get(m, "users"), *parts = json_array();
    size_t n = json_array_size(users);
    if (n == 0) {
        char c[64];
        json_int_t k = json_integer_value(json_object_get(m, "count"));
        snprintf(c, sizeof(c), "%lld %s ", (long long)k, k == 1 ? "person" : "people");
        json_array_append_new(parts, json_string(c));
    }
    for (size_t i = 0; i < n; i++) {
        if (i)
            json_array_append_new(parts, json_string(i + 1 == n ? " and " : ", "));
        json_array_append_new(parts, json_string(sval(json_array_get(users, i), "name")));
    }
    if (n)
        json_array_append_new(parts, json_string(" "));
    json_array_append_new(parts, json_string(what));
    char *s = joined(parts);
    json_decref(parts);
    struct pv_frame *f = sio_event("broadcast", json_string(s));
    free(s);
    return f;
}

static struct pv_frame *sio_out(const json_t *m, const char *type)
{
    json_t *id = json_object_get(m, "msgId");
    json_int_t ack = json_is_integer(id) ? json_integer_value(id) : -1;
    if (strcmp(type, "message") == 0 || strcmp(type, "edit") == 0) {
        json_t *parts = json_array();
        if (*type == 'e')
            json_array_append_new(parts, json_string("(edited) "));
        text_with_files(parts, m, false);
        char *text = joined(parts);
        json_decref(parts);
        struct pv_frame *f = sio_event(
            "chat message",
            json_pack("{s:s, s:s}", "username",
                      sval(json_object_get(m, *type == 'e' ? "by" : "from"), "name"), "msg", text));
        free(text);
        return f;
    }
    if (strcmp(type, "join") == 0)
        return sio_presence(m, "connected");
    if (strcmp(type, "leave") == 0)
        return sio_presence(m, "disconnected");
    if (strcmp(type, "rename") == 0) {
        char s[2 * 512];
        snprintf(s, sizeof(s), "%s is now %s", sval(m, "oldName"),
                 sval(json_object_get(m, "user"), "name"));
        return sio_event("broadcast", json_string(s));
    }
    if (strcmp(type, "ack") == 0 && ack >= 0)
        return sio_frame('3', ack, json_pack("[{s:O}]", "seq", json_object_get(m, "seq")));
    if (strcmp(type, "error") == 0 && ack >= 0)
        return sio_frame(
            '3', ack,
            json_pack("[{s:s, s:s}]", "error", sval(m, "code"), "message", sval(m, "message")));
    if (strcmp(type, "error") == 0) {
        char *s = pv_xmalloc(strlen(sval(m, "message")) + 16);
        sprintf(s, "palaver: %s", sval(m, "message"));
        struct pv_frame *f = sio_event("system", json_string(s));
        free(s);
        return f;
    }
    return NULL;
}

struct pv_frame *pv_dialect_sio_hello(const char *name)
{
    char *s = pv_xmalloc(strlen(name) + 8);
    sprintf(s, "hello %s", name);
    struct pv_frame *f = sio_event("system", json_string(s));
    free(s);
    f->dialect = PV_DIALECT_SIO;
    return f;
}

bool pv_dialect_sio_in(const char *json, size_t len, int64_t ack, char **msg, const char **why)
{
    *msg = NULL;
    json_t *a = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    const char *event = json_string_value(json_array_get(a, 0));
    json_t *arg = json_array_get(a, 1);
    if (!json_is_array(a) || !event) {
        *why = "an event must be a JSON array naming the event first";
        json_decref(a);
        return false;
    }
    if (strcmp(event, "chat message") != 0) {
        *why = "palaver knows one event: \"chat message\"";
        json_decref(a);
        return false;
    }
    json_t *text = json_is_object(arg) ? json_object_get(arg, "msg") : arg;
    if (!json_is_string(text) || json_array_size(a) != 2) {
        *why = "\"chat message\" takes one argument: the text, or {\"msg\": the text}";
        json_decref(a);
        return false;
    }
    json_t *req = json_pack("{s:s, s:O}", "type", "message", "text", text);
    if (ack >= 0)
        json_object_set_new(req, "msgId", json_integer((json_int_t)ack));
    *msg = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_decref(a);
    if (!*msg)
        abort(); /* out of memory, as xalloc.h */
    return true;
}

struct pv_frame *pv_dialect_out(enum pv_dialect d, const struct pv_frame *f, int64_t now)
{
    if (d == PV_DIALECT_PALAVER || f->opcode != PV_WS_OP_TEXT)
        return NULL;
    size_t len;
    const unsigned char *p = pv_frame_payload(f, &len);
    json_t *m = json_loadb((const char *)p, len, 0, NULL);
    const char *type = sval(m, "type");
    struct pv_frame *out = NULL;
    if (d == PV_DIALECT_TEXT) {
        json_t *parts = json_array();
        if (strcmp(type, "message") == 0 || strcmp(type, "edit") == 0) {
            json_array_append_new(
                parts, json_string(sval(json_object_get(m, *type == 'e' ? "by" : "from"), "name")));
            json_array_append_new(parts, json_string(*type == 'e' ? " (edited): " : ": "));
            text_with_files(parts, m, false);
        } else if (strcmp(type, "error") == 0) {
            json_array_append_new(parts, json_string("palaver: "));
            json_array_append_new(parts, json_string(sval(m, "message")));
        }
        if (json_array_size(parts)) {
            char *s = joined(parts);
            out = text_frame(s);
            free(s);
        }
        json_decref(parts);
    } else if (d == PV_DIALECT_ECHO) {
        json_t *o = echo_of(m, type, now);
        if (o) {
            out = pv_frame_from_json(o);
            json_decref(o);
        }
    } else if (d == PV_DIALECT_SIO) {
        out = sio_out(m, type);
    }
    json_decref(m);
    if (out)
        out->dialect = (uint8_t)d;
    return out;
}

struct pv_frame *pv_dialect_echo_history(struct pv_frame *const *msgs, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const unsigned char *p = pv_frame_payload(msgs[i], &len);
        json_t *m = json_loadb((const char *)p, len, 0, NULL);
        json_t *o = strcmp(sval(m, "type"), "message") == 0 ? echo_of(m, "message", 0) : NULL;
        if (o) {
            char *s = json_dumps(o, JSON_COMPACT);
            if (!s)
                abort(); /* out of memory, as xalloc.h */
            json_array_append_new(arr, json_string(s));
            free(s);
            json_decref(o);
        }
        json_decref(m);
    }
    struct pv_frame *f = pv_frame_from_json(arr);
    json_decref(arr);
    f->dialect = PV_DIALECT_ECHO;
    return f;
}
