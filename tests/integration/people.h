/* people.h -- what the integration tests of signed-in people share: one
 * palaverd (`server`), accounts registered and signed in over the real
 * HTTP API, WebSocket connections as them, and the requests and replies
 * of the JSON protocol.
 *
 * Threads: the test's one thread. Static functions: each test file that
 * includes this gets its own copy of `server`. */
#ifndef PEOPLE_H
#define PEOPLE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvtest.h"

#define T 5000
#define PASSWORD "correct horse battery"

static struct srv server;
static char dir[256]; /* its data directory */

/* cmocka group teardown: the server stopped cleanly, its data gone. */
static inline int teardown(void **state)
{
    (void)state;
    int rc = srv_stop(&server);
    tmpdir_remove(dir);
    return rc == 0 ? 0 : -1;
}

static inline int post(const char *path, const char *headers, const char *body, char *out, size_t n)
{
    char req[8192];
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n%s"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             path, server.port, headers ? headers : "", strlen(body), body);
    return http_request(server.port, req, out, n);
}

/* Registers `name` (open registration) unless it exists, signs in, and
 * writes the session cookie header to hdr. */
static inline void account(const char *name, char *hdr, size_t n)
{
    char body[256], out[4096];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"password\":\"%s\"}", name, PASSWORD);
    post("/api/register", NULL, body, out, sizeof(out));
    int64_t deadline = mono_ms() + 20000;
    int status;
    while ((status = post("/api/login", NULL, body, out, sizeof(out))) == 429 &&
           mono_ms() < deadline)
        poll(NULL, 0, 200);
    assert_int_equal(status, 200);
    const char *c = strstr(out, "palaver_session=");
    assert_non_null(c);
    snprintf(hdr, n, "Cookie: palaver_session=%.*s\r\n", (int)strcspn(c + 16, ";\r\n"), c + 16);
}

/* A connection as hdr's account (NULL: a guest), with everything it got at
 * the handshake (id, presence, join history or a replay) in *got (an
 * array) when got is given. */
static inline struct wsc *open_as(const char *hdr, const char *path, json_t **got)
{
    struct wsc *c = wsc_open(server.port, &(struct wsc_opts){.headers = hdr, .path = path});
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    json_t *all = json_array();
    json_int_t left = -1;
    while (left != 0) {
        json_t *j = wsc_recv_json(c, T);
        assert_non_null(j);
        const char *t = json_string_value(json_object_get(j, "type"));
        if (strcmp(t, "presence") == 0 && !strstr(path, "since="))
            left = json_integer_value(json_object_get(j, "history"));
        else if (strcmp(t, "resume") == 0 || strcmp(t, "reset") == 0)
            left = json_integer_value(json_object_get(j, "history"));
        else if (left > 0)
            left--;
        json_array_append_new(all, j);
    }
    if (got)
        *got = all;
    else
        json_decref(all);
    return c;
}

/* The next text frame's payload (malloc'd, NUL-terminated), skipping
 * other frames; NULL on timeout or close. */
static inline char *next_text(struct wsc *c)
{
    struct wsc_frame f;
    while (wsc_recv(c, &f, T) == 1) {
        if (f.opcode == 1)
            return (char *)f.data;
        wsc_frame_free(&f);
    }
    return NULL;
}

static inline void send_json(struct wsc *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    assert_int_equal(wsc_send_text(c, buf), 0);
}

static inline const char *str(const json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

static inline long long num(const json_t *j, const char *k)
{
    return json_integer_value(json_object_get(j, k));
}

static inline void expect_error(struct wsc *c, const char *code)
{
    json_t *e = wsc_expect(c, "error", T);
    if (!e)
        srv_dump_log(&server);
    assert_non_null(e);
    assert_string_equal(str(e, "code"), code);
    json_decref(e);
}

/* Says `text` in `room` (NULL: the lobby, no "room" field); the ack's seq. */
static inline long long say(struct wsc *c, const char *room, const char *text)
{
    if (room)
        send_json(c, "{\"type\":\"message\",\"msgId\":1,\"room\":\"%s\",\"text\":\"%s\"}", room,
                  text);
    else
        send_json(c, "{\"type\":\"message\",\"msgId\":1,\"text\":\"%s\"}", text);
    json_t *a = wsc_expect(c, "ack", T);
    assert_non_null(a);
    long long seq = num(a, "seq");
    json_decref(a);
    return seq;
}

/* Reads c's frames until the chat message with `text`; fails if anything
 * of room `never` comes before it. Returns that message. */
static inline json_t *until_text(struct wsc *c, const char *text, const char *never)
{
    for (;;) {
        json_t *j = wsc_recv_json(c, T);
        assert_non_null(j);
        if (never && strcmp(str(j, "room"), never) == 0)
            fail_msg("a frame of room %s reached a non-member: %s", never, str(j, "type"));
        if (strcmp(str(j, "type"), "message") == 0 && strcmp(str(j, "text"), text) == 0)
            return j;
        json_decref(j);
    }
}

/* The reply of `type` to a request. */
static inline json_t *ask(struct wsc *c, const char *type, const char *req)
{
    assert_int_equal(wsc_send_text(c, req), 0);
    json_t *j = wsc_expect(c, type, T);
    if (!j)
        srv_dump_log(&server);
    assert_non_null(j);
    return j;
}

#endif
