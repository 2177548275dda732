/* fuzz_dialect.c -- dialect.h on arbitrary input: a seed 003 frame in
 * (never a crash; what comes out is a palaver message request whose
 * avatar, if any, passed the avatar check), and a palaver frame out in
 * both dialects: whatever the text and names, the echo dialect's strings
 * carry no raw <, >, " or ' (seed 003's page concatenates them into
 * HTML), and an avatar is empty or passes the check. Seed 002's side:
 * the input as Engine.IO/Socket.IO packets and a polling payload (sio.h:
 * spans and fields stay inside the input), as an event's JSON (a request
 * comes out only for "chat message" and is palaver JSON), and the
 * message out as a Socket.IO event whose JSON parses back to the text. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/dialect.h"
#include "palaver/frame.h"
#include "palaver/sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_markup(const char *s)
{
    if (s && strpbrk(s, "<>\"'"))
        abort();
}

static void inside(const char *base, size_t size, const char *p, size_t n)
{
    if (n && (p < base || p + n > base + size))
        abort();
}

static void sio_side(const char *in, size_t size)
{
    struct pv_sio_packet pk;
    if (pv_sio_parse(in, size, &pk)) {
        inside(in, size, pk.data, pk.data_len);
        if (pk.sio) {
            if (pk.nsp_len != 1 || pk.nsp[0] != '/')
                inside(in, size, pk.nsp, pk.nsp_len);
            inside(in, size, pk.json, pk.json_len);
            if (pk.ack > PV_SIO_ACK_MAX)
                abort();
        }
    }
    struct pv_span sp[8];
    size_t k = pv_eio_split(in, size, sp, 8), total = 0;
    for (size_t i = 0; i < k && i < 8; i++) {
        if (sp[i].off + sp[i].len > size)
            abort();
        total += sp[i].len;
    }
    if (k <= 8 && total + k - 1 != size)
        abort(); /* the packets and their separators are the whole payload */
    char *msg;
    const char *why;
    if (pv_dialect_sio_in(in, size, size % 3 ? (int64_t)size : -1, &msg, &why)) {
        json_t *m = json_loads(msg, 0, NULL);
        if (!m || strcmp(json_string_value(json_object_get(m, "type")), "message") != 0 ||
            !json_is_string(json_object_get(m, "text")))
            abort();
        json_decref(m);
        free(msg);
    } else if (!why || msg) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *msg, *name;
    const char *why;
    sio_side((const char *)data, size);
    if (pv_dialect_echo_in((const char *)data, size, &msg, &name, &why)) {
        json_t *m = json_loads(msg, 0, NULL);
        json_t *a = json_object_get(m, "avatar");
        if (!m || (a && !pv_dialect_avatar_ok(json_string_value(a), json_string_length(a))))
            abort();
        json_decref(m);
        free(msg);
        free(name);
    }
    /* The input as a palaver message's text and sender's name -- without
     * NUL: palaver never relays one (proto.c parses without
     * JSON_ALLOW_NUL, so "\u0000" in a message is refused). */
    if (memchr(data, 0, size))
        return 0;
    json_t *o = json_pack("{s:s, s:s%, s:{s:s%}, s:s%, s:I}", "type", "message", "text",
                          (const char *)data, size, "from", "name", (const char *)data, size / 2,
                          "avatar", (const char *)data, size, "serverDate", (json_int_t)1);
    if (!o)
        return 0; /* not UTF-8: palaver never makes such a frame */
    struct pv_frame *f = pv_frame_from_json(o);
    json_decref(o);
    struct pv_frame *e = pv_dialect_out(PV_DIALECT_ECHO, f, 0);
    size_t n;
    const unsigned char *p = pv_frame_payload(e, &n);
    json_t *got = json_loadb((const char *)p, n, 0, NULL);
    if (!got)
        abort();
    no_markup(json_string_value(json_object_get(got, "name")));
    no_markup(json_string_value(json_object_get(got, "message")));
    const char *av = json_string_value(json_object_get(got, "avatar"));
    if (!av || (*av && !pv_dialect_avatar_ok(av, strlen(av))))
        abort();
    json_decref(got);
    pv_frame_unref(e);
    struct pv_frame *t = pv_dialect_out(PV_DIALECT_TEXT, f, 0);
    if (!t)
        abort();
    pv_frame_unref(t);
    /* Seed 002: 42["chat message",{"username","msg"}], msg the text. */
    struct pv_frame *s = pv_dialect_out(PV_DIALECT_SIO, f, 0);
    p = pv_frame_payload(s, &n);
    if (n < 3 || memcmp(p, "42[", 3) != 0)
        abort();
    json_t *ev = json_loadb((const char *)p + 2, n - 2, 0, NULL);
    const char *text = json_string_value(json_object_get(json_array_get(ev, 1), "msg"));
    if (!text || strncmp(text, (const char *)data, size) != 0)
        abort();
    json_decref(ev);
    pv_frame_unref(s);
    pv_frame_unref(f);
    return 0;
}
