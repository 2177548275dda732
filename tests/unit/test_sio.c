/* test_sio.c -- sio.h: Engine.IO and Socket.IO packets as
 * socket.io-client 4.x writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "palaver/sio.h"

static struct pv_sio_packet p;

static bool parse(const char *s)
{
    return pv_sio_parse(s, strlen(s), &p);
}

static void test_engine_io(void **state)
{
    (void)state;
    assert_true(parse("2probe"));
    assert_int_equal(p.eio, PV_EIO_PING);
    assert_int_equal(p.data_len, 5);
    assert_true(parse("3"));
    assert_int_equal(p.eio, PV_EIO_PONG);
    assert_true(parse("5"));
    assert_int_equal(p.eio, PV_EIO_UPGRADE);
    assert_true(parse("4hello"));
    assert_false(p.sio);
    assert_false(parse(""));
    assert_false(parse("7"));
    assert_false(parse("bAQID")); /* binary: not taken */
}

static void test_socket_io(void **state)
{
    (void)state;
    assert_true(parse("40"));
    assert_true(p.sio);
    assert_int_equal(p.type, PV_SIO_CONNECT);
    assert_int_equal(p.nsp_len, 1);
    assert_int_equal(p.ack, -1);
    assert_int_equal(p.json_len, 0);
    assert_true(parse("40/admin,{\"token\":\"x\"}"));
    assert_memory_equal(p.nsp, "/admin", 6);
    assert_memory_equal(p.json, "{\"token\":\"x\"}", p.json_len);
    assert_true(parse("42[\"chat message\",{\"username\":\"ann\",\"msg\":\"hi\"}]"));
    assert_int_equal(p.type, PV_SIO_EVENT);
    assert_int_equal(p.ack, -1);
    assert_int_equal(p.json[0], '[');
    assert_true(parse("4212[\"x\"]"));
    assert_int_equal(p.ack, 12);
    assert_true(parse("43/chat,7[\"ok\"]"));
    assert_int_equal(p.type, PV_SIO_ACK);
    assert_int_equal(p.ack, 7);
    assert_false(parse("40/admin"));            /* the namespace's comma */
    assert_false(parse("421234567890[\"x\"]")); /* an ack id too long */
}

static void test_split(void **state)
{
    (void)state;
    struct pv_span s[4];
    const char *pl = "40\x1e"
                     "42[\"a\"]\x1e"
                     "3";
    assert_int_equal(pv_eio_split(pl, strlen(pl), s, 4), 3);
    assert_int_equal(s[0].len, 2);
    assert_int_equal(s[1].off, 3);
    assert_int_equal(s[1].len, 7);
    assert_int_equal(s[2].len, 1);
    assert_int_equal(pv_eio_split("", 0, s, 4), 1);
    assert_int_equal(pv_eio_split("\x1e\x1e\x1e\x1e", 4, s, 4), 5); /* more than max: counted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_io),
        cmocka_unit_test(test_socket_io),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
