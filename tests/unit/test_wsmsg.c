/* Unit tests: frame checks and reassembly (wsmsg.c), the code the data
 * handler runs on every frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/wsmsg.h"

#define FIN 0x80

static struct pv_wsmsg_out feed(struct pv_wsmsg *m, unsigned bits, const char *s)
{
    return pv_wsmsg_feed(m, bits, s, strlen(s));
}

static void expect_fail(unsigned bits, const char *payload, size_t len, uint16_t code)
{
    struct pv_wsmsg m;
    pv_wsmsg_init(&m, 64);
    struct pv_wsmsg_out o = pv_wsmsg_feed(&m, bits, payload, len);
    assert_int_equal(o.kind, PV_WSMSG_FAIL);
    assert_int_equal(o.code, code);
    assert_non_null(o.reason);
    pv_wsmsg_free(&m);
}

static void test_single_frame_text(void **state)
{
    (void)state;
    struct pv_wsmsg m;
    pv_wsmsg_init(&m, 64);
    struct pv_wsmsg_out o = feed(&m, FIN | 1, "caf\xc3\xa9");
    assert_int_equal(o.kind, PV_WSMSG_TEXT);
    assert_int_equal(o.len, 5);
    assert_memory_equal(o.data, "caf\xc3\xa9", 5);
    o = pv_wsmsg_feed(&m, FIN | 1, NULL, 0); /* empty message */
    assert_int_equal(o.kind, PV_WSMSG_TEXT);
    assert_int_equal(o.len, 0);
    pv_wsmsg_free(&m);
}

static void test_fragments_with_control_frames_between(void **state)
{
    (void)state;
    struct pv_wsmsg m;
    pv_wsmsg_init(&m, 64);
    assert_int_equal(feed(&m, 1, "ab\xce").kind, PV_WSMSG_MORE); /* ends inside κ */
    struct pv_wsmsg_out o = feed(&m, FIN | 9, "hi");
    assert_int_equal(o.kind, PV_WSMSG_PING);
    assert_memory_equal(o.data, "hi", 2);
    assert_int_equal(feed(&m, FIN | 0xA, "").kind, PV_WSMSG_PONG);
    assert_int_equal(pv_wsmsg_feed(&m, 0, NULL, 0).kind, PV_WSMSG_MORE); /* empty fragment */
    o = feed(&m, FIN,
             "\xba"
             "cd"); /* FIN continuation */
    assert_int_equal(o.kind, PV_WSMSG_TEXT);
    assert_int_equal(o.len, 6);
    assert_memory_equal(o.data,
                        "ab\xce\xba"
                        "cd",
                        6);
    /* The next message starts clean. */
    o = feed(&m, FIN | 1, "x");
    assert_int_equal(o.kind, PV_WSMSG_TEXT);
    assert_int_equal(o.len, 1);
    pv_wsmsg_free(&m);
}

static void test_framing_violations(void **state)
{
    (void)state;
    expect_fail(FIN | 0x40 | 1, "{}", 2, 1002); /* RSV1 */
    expect_fail(FIN | 0x10 | 9, "", 0, 1002);   /* RSV3 on a ping */
    expect_fail(FIN | 3, "x", 1, 1002);         /* reserved data opcode */
    expect_fail(FIN | 0xB, "", 0, 1002);        /* reserved control opcode */
    expect_fail(9, "x", 1, 1002);               /* fragmented ping */
    expect_fail(0xA, "x", 1, 1002);             /* fragmented pong */
    expect_fail(FIN, "x", 1, 1002);             /* continuation with nothing to continue */
    expect_fail(FIN | 2, "\x01", 1, 1003);      /* binary */
    expect_fail(FIN | 1, "\xff", 1, 1007);      /* invalid UTF-8 */
    expect_fail(FIN | 1, "\xce", 1, 1007);      /* truncated sequence at the end */
    static char big[200];
    memset(big, 'a', sizeof(big));
    expect_fail(FIN | 9, big, 126, 1002); /* control frame over 125 bytes */
    expect_fail(FIN | 1, big, 65, 1009);  /* over max_message (64) */
}

static void test_fragment_violations(void **state)
{
    (void)state;
    struct pv_wsmsg m;
    pv_wsmsg_init(&m, 64);
    assert_int_equal(feed(&m, 1, "ab").kind, PV_WSMSG_MORE);
    struct pv_wsmsg_out o = feed(&m, FIN | 1, "new");
    assert_int_equal(o.kind, PV_WSMSG_FAIL);
    assert_int_equal(o.code, 1002);
    pv_wsmsg_free(&m);

    /* Invalid UTF-8 fails at the fragment that makes it invalid. */
    pv_wsmsg_init(&m, 64);
    assert_int_equal(feed(&m, 1, "\xce").kind, PV_WSMSG_MORE);
    o = feed(&m, 0, "A");
    assert_int_equal(o.kind, PV_WSMSG_FAIL);
    assert_int_equal(o.code, 1007);
    pv_wsmsg_free(&m);

    /* Too big is refused at the fragment that crosses the limit. */
    static char big[40];
    memset(big, 'a', sizeof(big));
    pv_wsmsg_init(&m, 64);
    assert_int_equal(pv_wsmsg_feed(&m, 1, big, 40).kind, PV_WSMSG_MORE);
    o = pv_wsmsg_feed(&m, 0, big, 25);
    assert_int_equal(o.kind, PV_WSMSG_FAIL);
    assert_int_equal(o.code, 1009);
    pv_wsmsg_free(&m);
}

static void test_close_frames(void **state)
{
    (void)state;
    struct pv_wsmsg m;
    pv_wsmsg_init(&m, 64);
    struct pv_wsmsg_out o = pv_wsmsg_feed(&m, FIN | 8, NULL, 0);
    assert_int_equal(o.kind, PV_WSMSG_CLOSE);
    assert_int_equal(o.code, 1000);
    o = pv_wsmsg_feed(&m, FIN | 8,
                      "\x0f\xa0"
                      "bye",
                      5);
    assert_int_equal(o.kind, PV_WSMSG_CLOSE);
    assert_int_equal(o.code, 4000);
    pv_wsmsg_free(&m);
    expect_fail(FIN | 8, "\x03", 1, 1002);         /* 1-byte payload */
    expect_fail(FIN | 8, "\x03\xed", 2, 1002);     /* 1005 must not be sent */
    expect_fail(FIN | 8, "\x03\xe7", 2, 1002);     /* 999 */
    expect_fail(FIN | 8, "\x13\x88", 2, 1002);     /* 5000 */
    expect_fail(FIN | 8, "\x03\xe8\xff", 3, 1007); /* reason not UTF-8 */
    const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999};
    const unsigned invalid[] = {0,    999,  1004, 1005, 1006, 1015,
                                1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        assert_true(pv_wsmsg_close_code_valid(valid[i]));
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_false(pv_wsmsg_close_code_valid(invalid[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_frame_text),
        cmocka_unit_test(test_fragments_with_control_frames_between),
        cmocka_unit_test(test_framing_violations),
        cmocka_unit_test(test_fragment_violations),
        cmocka_unit_test(test_close_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
