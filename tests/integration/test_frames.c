/* Integration: RFC 6455 framing as palaverd enforces it (CivetWeb 1.15
 * checks none of it). A violation closes the offender with the right code
 * and a real close frame; the other clients stay connected and keep
 * receiving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 5000

static struct srv server;
static struct wsc *bystander; /* B: must see only valid traffic, throughout */

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--max-message", "1024", "--max-text", "512", NULL};
    if (srv_start(&server, args) != 0)
        return -1;
    bystander = wsc_open(server.port, NULL);
    return bystander && bystander->status == 101 && wsc_join(bystander, NULL, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    wsc_free(bystander);
    return srv_stop(&server) == 0 ? 0 : -1;
}

static struct wsc *client(void)
{
    struct wsc *c = wsc_open(server.port, NULL);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    return c;
}

/* The bystander's next chat message has this text, and every frame it
 * got on the way was a valid text frame. */
static void bystander_gets(const char *text)
{
    int64_t deadline = mono_ms() + T;
    for (;;) {
        struct wsc_frame f;
        assert_true(mono_ms() < deadline);
        assert_int_equal(wsc_recv(bystander, &f, T), 1);
        assert_int_equal(f.opcode, 1);
        json_t *j = json_loadb((char *)f.data, f.len, 0, NULL);
        wsc_frame_free(&f);
        assert_non_null(j); /* valid UTF-8 JSON, or Jansson would refuse it */
        const char *type = json_string_value(json_object_get(j, "type"));
        if (strcmp(type, "message") == 0) {
            assert_string_equal(json_string_value(json_object_get(j, "text")), text);
            json_decref(j);
            return;
        }
        json_decref(j);
    }
}

static void test_fragmented_message_with_interleaved_ping(void **state)
{
    (void)state;
    struct wsc *a = client();
    const char *p1 = "{\"type\":\"message\",\"text\":\"fragm";
    const char *p2 = "ented caf\xc3"; /* é split across fragments */
    const char *p3 = "\xa9 message\"}";
    struct wsc_frame f;

    assert_int_equal(wsc_send(a, false, 1, p1, strlen(p1)), 0);
    assert_int_equal(wsc_send(a, true, 9, "ping!", 5), 0); /* control frame in between */
    assert_int_equal(wsc_send(a, false, 0, p2, strlen(p2)), 0);
    assert_int_equal(wsc_send(a, true, 0, p3, strlen(p3)), 0);
    /* The pong comes back with the ping's payload. */
    int64_t deadline = mono_ms() + T;
    for (;;) {
        assert_true(mono_ms() < deadline);
        assert_int_equal(wsc_recv(a, &f, T), 1);
        int op = f.opcode;
        if (op == 0xA)
            assert_memory_equal(f.data, "ping!", 5);
        wsc_frame_free(&f);
        if (op == 0xA)
            break;
    }
    bystander_gets("fragmented caf\xc3\xa9 message");
    json_t *ack = wsc_expect(a, "ack", T);
    assert_non_null(ack);
    json_decref(ack);
    wsc_free(a);
}

enum how { TEXT, BITS, FRAGS_BAD_UTF8, FRAGS_TOO_BIG, CONT_ONLY, TEXT_IN_FRAG, CLOSE_RAW };

struct violation {
    const char *what;
    enum how how;
    uint8_t bits;
    const char *payload;
    size_t len;
    int code;
};

static void run_violation(const struct violation *v)
{
    struct wsc *x = client();
    char big[2000];

    switch (v->how) {
    case TEXT:
        assert_int_equal(wsc_send(x, true, 1, v->payload, v->len), 0);
        break;
    case BITS:
        assert_int_equal(wsc_send_bits(x, v->bits, v->payload, v->len), 0);
        break;
    case FRAGS_BAD_UTF8:
        /* A valid prefix ending inside a sequence, then a bad byte. */
        assert_int_equal(wsc_send(x, false, 1, "{\"text\":\"\xce", 10), 0);
        assert_int_equal(wsc_send(x, true, 0, "A\"}", 3), 0);
        break;
    case FRAGS_TOO_BIG:
        memset(big, 'a', sizeof(big));
        assert_int_equal(wsc_send(x, false, 1, big, 600), 0);
        assert_int_equal(wsc_send(x, false, 0, big, 600), 0); /* 1200 > 1024 */
        break;
    case CONT_ONLY:
        assert_int_equal(wsc_send(x, true, 0, "{}", 2), 0);
        break;
    case TEXT_IN_FRAG:
        assert_int_equal(wsc_send(x, false, 1, "{", 1), 0);
        assert_int_equal(wsc_send(x, true, 1, "{}", 2), 0);
        break;
    case CLOSE_RAW:
        assert_int_equal(wsc_send(x, true, 8, v->payload, v->len), 0);
        break;
    }
    int code = wsc_wait_close(x, T);
    if (code != v->code)
        fprintf(stderr, "violation '%s': expected close %d, got %d\n", v->what, v->code, code);
    assert_int_equal(code, v->code);
    wsc_free(x);
}

static void test_violations_close_only_the_offender(void **state)
{
    (void)state;
    static char oversized[1500];
    memset(oversized, 'x', sizeof(oversized));
    const struct violation cases[] = {
        {"invalid UTF-8", TEXT, 0, "{\"type\":\"message\",\"text\":\"\xff\xfe\"}", 30, 1007},
        {"surrogate in UTF-8", TEXT, 0, "\"\xed\xa0\x80\"", 5, 1007},
        {"invalid UTF-8 split across fragments", FRAGS_BAD_UTF8, 0, NULL, 0, 1007},
        {"binary message", BITS, 0x82, "\x01\x02\x03", 3, 1003},
        {"oversized frame", TEXT, 0, oversized, sizeof(oversized), 1009},
        {"oversized fragmented message", FRAGS_TOO_BIG, 0, NULL, 0, 1009},
        {"RSV1 set", BITS, 0xC1, "{}", 2, 1002},
        {"RSV3 set", BITS, 0x91, "{}", 2, 1002},
        {"reserved data opcode 3", BITS, 0x83, "{}", 2, 1002},
        {"reserved control opcode 0xB", BITS, 0x8B, "", 0, 1002},
        {"continuation without a message", CONT_ONLY, 0, NULL, 0, 1002},
        {"new text inside a fragmented message", TEXT_IN_FRAG, 0, NULL, 0, 1002},
        {"close code 999", CLOSE_RAW, 0, "\x03\xe7", 2, 1002},
        {"close code 1005 (reserved)", CLOSE_RAW, 0, "\x03\xed", 2, 1002},
        {"close with 1-byte payload", CLOSE_RAW, 0, "\x03", 1, 1002},
        {"close reason not UTF-8", CLOSE_RAW, 0, "\x03\xe8\xff", 3, 1007},
        /* Valid closes are answered with the same code. */
        {"close 1000 with reason", CLOSE_RAW, 0,
         "\x03\xe8"
         "bye",
         5, 1000},
        {"close 4000 (application code)", CLOSE_RAW, 0, "\x0f\xa0", 2, 4000},
        {"close without payload", CLOSE_RAW, 0, "", 0, 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_violation(&cases[i]);
    /* After all of that the bystander is still here and still receiving. */
    struct wsc *a = client();
    assert_int_equal(wsc_send_chat(a, 1, "after the storm", ""), 0);
    bystander_gets("after the storm");
    wsc_free(a);
    assert_true(srv_log_has(&server, "protocol error from"));
}

static void test_message_at_the_size_limit_passes(void **state)
{
    (void)state;
    struct wsc *a = client();
    char msg[1025], text[600];
    memset(text, 'z', 500);
    text[500] = '\0';
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"message\",\"text\":\"%s\"}", text);
    assert_true(n <= 1024);
    assert_int_equal(wsc_send(a, true, 1, msg, (size_t)n), 0);
    bystander_gets(text);
    wsc_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fragmented_message_with_interleaved_ping),
        cmocka_unit_test(test_violations_close_only_the_offender),
        cmocka_unit_test(test_message_at_the_size_limit_passes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
