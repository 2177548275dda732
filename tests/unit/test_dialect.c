/* test_dialect.c -- dialect.h: telling the dialects apart, translating
 * the seeds' frames in and palaver's frames out (docs/dialects.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/dialect.h"
#include "palaver/frame.h"

static void test_which(void **state)
{
    (void)state;
    assert_int_equal(pv_dialect_of("/", NULL), PV_DIALECT_TEXT);
    assert_int_equal(pv_dialect_of("/", "echo-protocol"), PV_DIALECT_ECHO);
    assert_int_equal(pv_dialect_of("/", "sample-protocol"), PV_DIALECT_PALAVER);
    assert_int_equal(pv_dialect_of("/", "palaver"), PV_DIALECT_PALAVER);
    assert_int_equal(pv_dialect_of("/ws", NULL), PV_DIALECT_PALAVER);
    assert_int_equal(pv_dialect_of("/ws", "echo-protocol"), PV_DIALECT_PALAVER);
    assert_int_equal(pv_dialect_of("/socket.io/", NULL), PV_DIALECT_SIO);
    assert_int_equal(pv_dialect_of("/socket.io", NULL), PV_DIALECT_PALAVER);
    assert_false(pv_dialect_echoes(PV_DIALECT_SIO)); /* socket.broadcast.emit */
    assert_true(pv_dialect_echoes(PV_DIALECT_TEXT));
    assert_true(pv_dialect_echoes(PV_DIALECT_ECHO));
    assert_false(pv_dialect_echoes(PV_DIALECT_PALAVER));
}

static void test_avatars(void **state)
{
    (void)state;
#define OK(s) assert_true(pv_dialect_avatar_ok(s, strlen(s)))
#define NO(s) assert_false(pv_dialect_avatar_ok(s, strlen(s)))
    OK("https://example.com/me.png");
    OK("http://10.0.0.5/a.jpg?size=50");
    OK("data:image/png;base64,iVBORw0KGgo=");
    NO("javascript:alert(1)");
    NO("data:text/html;base64,PHNjcmlwdD4=");
    NO("data:image/svg+xml;base64,PHN2Zz4=");
    NO("https://x.example/\" onerror=\"alert(1)");
    NO("https://x.example/'><script>");
    NO("https://x.example/a b");
    NO("https://");
    NO("");
    NO("//example.com/a.png");
    NO("data:image/png;base64,<script>");
#undef OK
#undef NO
}

static json_t *payload(const struct pv_frame *f)
{
    size_t n;
    const unsigned char *p = pv_frame_payload(f, &n);
    return json_loadb((const char *)p, n, 0, NULL);
}

/* A text frame's payload as a string (payloads are not NUL-terminated). */
static char got[1024];
static const char *text_of(const struct pv_frame *f)
{
    size_t n;
    const unsigned char *p = pv_frame_payload(f, &n);
    snprintf(got, sizeof(got), "%.*s", (int)n, (const char *)p);
    return got;
}

static struct pv_frame *frame(const char *json)
{
    return pv_frame_new(PV_WS_OP_TEXT, json, strlen(json));
}

static void test_inbound(void **state)
{
    (void)state;
    char *t = pv_dialect_text_in("hi \"there\"\n", 11);
    assert_string_equal(t, "{\"type\":\"message\",\"text\":\"hi \\\"there\\\"\\n\"}");
    free(t);
    char *msg, *name;
    const char *why;
    const char *in = "{\"name\":\"Stef\",\"avatar\":\"javascript:alert(1)\",\"message\":\"yo\","
                     "\"date\":\"2017-09-19T14:37:15.000Z\"}";
    assert_true(pv_dialect_echo_in(in, strlen(in), &msg, &name, &why));
    assert_string_equal(name, "Stef");
    assert_string_equal(msg, "{\"type\":\"message\",\"text\":\"yo\"}"); /* the avatar dropped */
    free(msg);
    free(name);
    in = "{\"name\":\"\",\"avatar\":\"https://a.example/me.png\",\"message\":\"yo\"}";
    assert_true(pv_dialect_echo_in(in, strlen(in), &msg, &name, &why));
    assert_null(name);
    assert_non_null(strstr(msg, "\"avatar\":\"https://a.example/me.png\""));
    free(msg);
    const char *bad[] = {"not json",         "[1,2]",
                         "{\"message\":7}",  "{\"name\":1,\"message\":\"x\"}",
                         "{\"name\":\"a\"}", "{\"message\":\"x\",\"avatar\":[]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(pv_dialect_echo_in(bad[i], strlen(bad[i]), &msg, &name, &why));
        assert_null(msg);
        assert_non_null(why);
    }
}

static void test_outbound(void **state)
{
    (void)state;
    struct pv_frame *m =
        frame("{\"type\":\"message\",\"text\":\"<img src=x onerror=alert(1)> & 'q'\","
              "\"from\":{\"name\":\"ann\\\"><script>\"},\"serverDate\":1000,\"avatar\":"
              "\"https://a.example/a.png\",\"files\":[{\"name\":\"<b>.png\"}]}");
    struct pv_frame *t = pv_dialect_out(PV_DIALECT_TEXT, m, 5);
    assert_int_equal(t->dialect, PV_DIALECT_TEXT);
    assert_string_equal(text_of(t),
                        "ann\"><script>: <img src=x onerror=alert(1)> & 'q' [file: <b>.png]");
    pv_frame_unref(t);
    struct pv_frame *e = pv_dialect_out(PV_DIALECT_ECHO, m, 5);
    json_t *o = payload(e);
    assert_string_equal(json_string_value(json_object_get(o, "name")),
                        "ann&quot;&gt;&lt;script&gt;");
    assert_string_equal(json_string_value(json_object_get(o, "message")),
                        "&lt;img src=x onerror=alert(1)&gt; &amp; &#39;q&#39; [file: "
                        "&lt;b&gt;.png]");
    assert_string_equal(json_string_value(json_object_get(o, "avatar")), "https://a.example/a.png");
    assert_int_equal(json_integer_value(json_object_get(o, "date")), 1000);
    json_decref(o);
    pv_frame_unref(e);
    /* What the dialects do not show. */
    const char *quiet[] = {"{\"type\":\"ack\",\"seq\":1}", "{\"type\":\"presence\"}",
                           "{\"type\":\"id\"}", "{\"type\":\"typing\",\"users\":[]}", "nonsense"};
    for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
        struct pv_frame *q = frame(quiet[i]);
        assert_null(pv_dialect_out(PV_DIALECT_TEXT, q, 5));
        assert_null(pv_dialect_out(PV_DIALECT_ECHO, q, 5));
        pv_frame_unref(q);
    }
    /* A refusal, in each dialect's words. */
    struct pv_frame *err =
        frame("{\"type\":\"error\",\"code\":\"rate-limited\",\"message\":\"slow <down>\"}");
    t = pv_dialect_out(PV_DIALECT_TEXT, err, 5);
    assert_string_equal(text_of(t), "palaver: slow <down>");
    pv_frame_unref(t);
    e = pv_dialect_out(PV_DIALECT_ECHO, err, 5);
    o = payload(e);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "palaver");
    assert_string_equal(json_string_value(json_object_get(o, "message")), "slow &lt;down&gt;");
    json_decref(o);
    pv_frame_unref(e);
    pv_frame_unref(err);
    /* The echo greeting: an array of JSON strings, messages only. */
    struct pv_frame *del = frame("{\"type\":\"deleted\",\"seq\":2}");
    struct pv_frame *hist[] = {m, del};
    e = pv_dialect_echo_history(hist, 2);
    o = payload(e);
    assert_int_equal(json_array_size(o), 1);
    json_t *inner = json_loads(json_string_value(json_array_get(o, 0)), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(inner, "name")),
                        "ann&quot;&gt;&lt;script&gt;");
    json_decref(inner);
    json_decref(o);
    pv_frame_unref(e);
    pv_frame_unref(del);
    pv_frame_unref(m);
}

/* Seed 002's events in: what its page emits, and what else is refused. */
static void test_sio_in(void **state)
{
    (void)state;
    char *msg;
    const char *why;
#define IN(j, ack) pv_dialect_sio_in(j, strlen(j), ack, &msg, &why)
    assert_true(IN("[\"chat message\",{\"username\":\"mallory\",\"msg\":\"hi <b>\"}]", -1));
    /* its username is ignored: the server knows who sent it */
    assert_string_equal(msg, "{\"type\":\"message\",\"text\":\"hi <b>\"}");
    free(msg);
    assert_true(IN("[\"chat message\",\"plain\"]", 7));
    assert_string_equal(msg, "{\"type\":\"message\",\"text\":\"plain\",\"msgId\":7}");
    free(msg);
    const char *bad[] = {"[\"typing\",true]",
                         "[\"chat message\"]",
                         "[\"chat message\",{\"msg\":5}]",
                         "[\"chat message\",\"a\",\"b\"]",
                         "[\"chat message\",[\"x\"]]",
                         "{\"chat message\":\"x\"}",
                         "[7,\"x\"]",
                         "[\"chat message\",\"a\"",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(IN(bad[i], -1));
        assert_null(msg);
        assert_non_null(why);
    }
#undef IN
}

static struct pv_frame *sio_of(const char *json)
{
    struct pv_frame *f = frame(json);
    struct pv_frame *o = pv_dialect_out(PV_DIALECT_SIO, f, 5);
    pv_frame_unref(f);
    return o;
}


/* Palaver's frames out to seed 002: its events, from others; acks and
 * refusals answer the emit's ack id; nothing else is sent. */
static void test_sio_out(void **state)
{
    (void)state;
    struct pv_frame *o;
    o = sio_of(
        "{\"type\":\"message\",\"seq\":3,\"text\":\"hi\",\"from\":{\"name\":\"Ann\",\"id\":\"x\"},"
        "\"files\":[{\"name\":\"a.png\"}]}");
    assert_string_equal(text_of(o),
                        "42[\"chat message\",{\"username\":\"Ann\",\"msg\":\"hi [file: a.png]\"}]");
    assert_int_equal(o->dialect, PV_DIALECT_SIO);
    pv_frame_unref(o);
    o = sio_of("{\"type\":\"edit\",\"seq\":3,\"text\":\"fixed\",\"by\":{\"name\":\"Ann\"}}");
    assert_string_equal(text_of(o),
                        "42[\"chat message\",{\"username\":\"Ann\",\"msg\":\"(edited) fixed\"}]");
    pv_frame_unref(o);
    o = sio_of("{\"type\":\"join\",\"count\":2,\"users\":[{\"name\":\"Ann\"},{\"name\":\"Bo\"}]}");
    assert_string_equal(text_of(o), "42[\"broadcast\",\"Ann and Bo connected\"]");
    pv_frame_unref(o);
    o = sio_of("{\"type\":\"leave\",\"count\":3,\"users\":[{\"name\":\"A\"},{\"name\":\"B\"},"
               "{\"name\":\"C\"}]}");
    assert_string_equal(text_of(o), "42[\"broadcast\",\"A, B and C disconnected\"]");
    pv_frame_unref(o);
    o = sio_of("{\"type\":\"join\",\"count\":40,\"online\":900}"); /* counts only */
    assert_string_equal(text_of(o), "42[\"broadcast\",\"40 people connected\"]");
    pv_frame_unref(o);
    o = sio_of("{\"type\":\"ack\",\"msgId\":12,\"seq\":44,\"serverDate\":1}");
    assert_string_equal(text_of(o), "4312[{\"seq\":44}]");
    pv_frame_unref(o);
    assert_null(sio_of("{\"type\":\"ack\",\"seq\":44}")); /* no ack id asked for */
    assert_null(sio_of("{\"type\":\"ack\",\"msgId\":\"p-1\",\"seq\":44}"));
    o = sio_of(
        "{\"type\":\"error\",\"code\":\"rate-limited\",\"message\":\"slow down\",\"msgId\":0}");
    assert_string_equal(text_of(o), "430[{\"error\":\"rate-limited\",\"message\":\"slow down\"}]");
    pv_frame_unref(o);
    o = sio_of("{\"type\":\"error\",\"code\":\"bad-json\",\"message\":\"no\"}");
    assert_string_equal(text_of(o), "42[\"system\",\"palaver: no\"]");
    pv_frame_unref(o);
    assert_null(sio_of("{\"type\":\"presence\",\"users\":[]}"));
    assert_null(sio_of("{\"type\":\"typing\",\"users\":[]}"));
    assert_null(sio_of("{\"type\":\"id\",\"id\":\"x\"}"));
    o = pv_dialect_sio_hello("Paola \"P\"");
    assert_string_equal(text_of(o), "42[\"system\",\"hello Paola \\\"P\\\"\"]");
    pv_frame_unref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which),   cmocka_unit_test(test_avatars),
        cmocka_unit_test(test_inbound), cmocka_unit_test(test_outbound),
        cmocka_unit_test(test_sio_in),  cmocka_unit_test(test_sio_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
