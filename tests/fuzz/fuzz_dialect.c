/* fuzz_dialect.c -- dialect.h on arbitrary input: a seed 003 frame in
 * (never a crash; what comes out is a palaver message request whose
 * avatar, if any, passed the avatar check), and a palaver frame out in
 * both dialects: whatever the text and names, the echo dialect's strings
 * carry no raw <, >, " or ' (seed 003's page concatenates them into
 * HTML), and an avatar is empty or passes the check. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/dialect.h"
#include "palaver/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_markup(const char *s)
{
    if (s && strpbrk(s, "<>\"'"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *msg, *name;
    const char *why;
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
    pv_frame_unref(f);
    return 0;
}
