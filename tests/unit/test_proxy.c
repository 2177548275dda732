/* Unit tests of proxy.c: trusted-proxy lists, forwarded addresses, the
 * ACL rule. Threads: the test's main thread only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "palaver/proxy.h"

static void test_cidrs(void **state)
{
    (void)state;
    struct pv_cidrs c;
    char err[160];
    assert_int_equal(
        pv_cidrs_parse("127.0.0.1, 10.0.0.0/8 ::1 2001:db8::/32", &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 4);
    assert_true(pv_cidrs_match(&c, "127.0.0.1"));
    assert_false(pv_cidrs_match(&c, "127.0.0.2"));
    assert_true(pv_cidrs_match(&c, "10.255.1.2"));
    assert_false(pv_cidrs_match(&c, "11.0.0.1"));
    assert_true(pv_cidrs_match(&c, "::1"));
    assert_true(pv_cidrs_match(&c, "2001:db8:ffff::7"));
    assert_false(pv_cidrs_match(&c, "2001:db9::7"));
    assert_true(pv_cidrs_match(&c, "::ffff:10.1.2.3")); /* IPv4-mapped is IPv4 */
    assert_false(pv_cidrs_match(&c, "localhost"));
    assert_false(pv_cidrs_match(&c, ""));
    /* A prefix that is not a multiple of 8. */
    assert_int_equal(pv_cidrs_parse("192.168.4.0/22", &c, err, sizeof(err)), 0);
    assert_true(pv_cidrs_match(&c, "192.168.7.255"));
    assert_false(pv_cidrs_match(&c, "192.168.8.0"));
    /* Empty: nobody is trusted. */
    assert_int_equal(pv_cidrs_parse("", &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 0);
    assert_false(pv_cidrs_match(&c, "127.0.0.1"));
    /* Refusals say what. */
    assert_int_equal(pv_cidrs_parse("10.0.0.0/33", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "10.0.0.0/33"));
    assert_int_equal(pv_cidrs_parse("proxy.lan", &c, err, sizeof(err)), -1);
    assert_int_equal(pv_cidrs_parse("10.0.0.0/", &c, err, sizeof(err)), -1);
    assert_int_equal(pv_cidrs_parse("::1/129", &c, err, sizeof(err)), -1);
}

static void test_normalize(void **state)
{
    (void)state;
    char out[PV_ADDR_MAX];
#define N(s) pv_addr_normalize(s, strlen(s), out)
    assert_true(N("192.0.2.7"));
    assert_string_equal(out, "192.0.2.7");
    assert_true(N("192.0.2.7:4711"));
    assert_string_equal(out, "192.0.2.7");
    assert_true(N("2001:DB8:0:0::1"));
    assert_string_equal(out, "2001:db8::1");
    assert_true(N("[2001:db8::1]:443"));
    assert_string_equal(out, "2001:db8::1");
    assert_true(N("[::ffff:192.0.2.9]"));
    assert_string_equal(out, "192.0.2.9");
    assert_false(N("unknown"));
    assert_false(N(""));
    assert_false(N("192.0.2.7:99999"));
    assert_false(N("192.0.2.7:"));
    assert_false(N("[2001:db8::1"));
    assert_false(N("192.0.2.256"));
    assert_false(N("<script>"));
#undef N
}

static void test_resolve(void **state)
{
    (void)state;
    struct pv_cidrs t;
    char err[160];
    struct pv_peer p;
    assert_int_equal(pv_cidrs_parse("127.0.0.1", &t, err, sizeof(err)), 0);
    /* From the trusted proxy: the last hop of the last header, the scheme. */
    assert_int_equal(pv_peer_resolve(&t, "127.0.0.1", 5000, "6.6.6.6, 192.0.2.7", "https", &p), 0);
    assert_true(p.forwarded);
    assert_true(p.https);
    assert_string_equal(p.addr, "192.0.2.7");
    assert_int_equal(p.port, 5000);
    assert_int_equal(pv_peer_resolve(&t, "127.0.0.1", 5000, " 192.0.2.8 ", "HTTP", &p), 0);
    assert_string_equal(p.addr, "192.0.2.8");
    assert_false(p.https);
    /* No proto header: never https. */
    assert_int_equal(pv_peer_resolve(&t, "127.0.0.1", 1, "192.0.2.8", NULL, &p), 0);
    assert_false(p.https);
    /* Not trusted: the headers are ignored, whatever they say. */
    assert_int_equal(pv_peer_resolve(&t, "192.168.1.9", 6000, "10.9.9.9", "https", &p), 0);
    assert_false(p.forwarded);
    assert_false(p.https);
    assert_string_equal(p.addr, "192.168.1.9");
    assert_int_equal(pv_peer_resolve(NULL, "192.168.1.9", 6000, "10.9.9.9", "https", &p), 0);
    assert_string_equal(p.addr, "192.168.1.9");
    /* The proxy host's own request (no X-Forwarded-For). */
    assert_int_equal(pv_peer_resolve(&t, "127.0.0.1", 7, NULL, "https", &p), 0);
    assert_false(p.forwarded);
    assert_false(p.https);
    assert_string_equal(p.addr, "127.0.0.1");
    /* A trusted proxy forwarding garbage: refused, and nothing believed. */
    assert_int_equal(pv_peer_resolve(&t, "127.0.0.1", 7, "192.0.2.7, unknown", "https", &p), -1);
    assert_false(p.forwarded);
    assert_false(p.https);
    assert_string_equal(p.addr, "127.0.0.1");
}

static void test_acl(void **state)
{
    (void)state;
    const char *acl = "-0.0.0.0/0,+192.168.1.0/24,+127.0.0.1";
    assert_int_equal(pv_acl_check(acl, "192.168.1.40"), 1);
    assert_int_equal(pv_acl_check(acl, "127.0.0.1"), 1);
    assert_int_equal(pv_acl_check(acl, "192.168.2.40"), 0);
    assert_int_equal(pv_acl_check(acl, "2001:db8::1"), 0); /* no entry matches: refused */
    /* The last match decides; no match refuses (CivetWeb 1.15's check_acl). */
    assert_int_equal(pv_acl_check("+10.0.0.0/8,-10.0.0.5", "10.0.0.5"), 0);
    assert_int_equal(pv_acl_check("+10.0.0.0/8,-10.0.0.5", "10.0.0.6"), 1);
    assert_int_equal(pv_acl_check("+10.0.0.0/8", "11.0.0.1"), 0);
    assert_int_equal(pv_acl_check("-10.0.0.0/8", "11.0.0.1"), 0);
    assert_int_equal(pv_acl_check("+0.0.0.0/0, -10.0.0.0/8", "11.0.0.1"), 1);
    assert_int_equal(pv_acl_check("", "11.0.0.1"), 1);
    assert_int_equal(pv_acl_check("10.0.0.0/8", "10.0.0.1"), -1);
    assert_int_equal(pv_acl_check("+10.0.0.0/99", "10.0.0.1"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_acl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
