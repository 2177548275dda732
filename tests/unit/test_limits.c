/* Unit tests: rate bucket, per-address counts and the Origin rule
 * (limits.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/limits.h"

#define SEC 1000000000ull

static void test_rate_burst_then_refill(void **state)
{
    (void)state;
    struct pv_rate r;
    uint64_t t = 5 * SEC;
    pv_rate_init(&r, 4, t);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pv_rate_take(&r, 2, 4, t), PV_RATE_OK); /* the burst */
    assert_int_equal(pv_rate_take(&r, 2, 4, t), PV_RATE_REFUSE);
    t += SEC / 2; /* 2/s: one token back after half a second */
    assert_int_equal(pv_rate_take(&r, 2, 4, t), PV_RATE_OK);
    assert_int_equal(pv_rate_take(&r, 2, 4, t), PV_RATE_REFUSE);
    /* Rate 0 is no limit. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pv_rate_take(&r, 0, 4, t), PV_RATE_OK);
}

static void test_rate_flood_closes_but_a_pause_forgives(void **state)
{
    (void)state;
    struct pv_rate r;
    uint64_t t = SEC;
    pv_rate_init(&r, 3, t);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pv_rate_take(&r, 1, 3, t), PV_RATE_OK);
    /* Three refusals are tolerated (strikes <= burst)... */
    for (int i = 0; i < 3; i++)
        assert_int_equal(pv_rate_take(&r, 1, 3, t), PV_RATE_REFUSE);
    /* ...after a pause the strikes drain and the tokens return... */
    t += 10 * SEC;
    for (int i = 0; i < 3; i++)
        assert_int_equal(pv_rate_take(&r, 1, 3, t), PV_RATE_OK);
    /* ...and a flood with no pause is closed at the fourth refusal. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(pv_rate_take(&r, 1, 3, t), PV_RATE_REFUSE);
    assert_int_equal(pv_rate_take(&r, 1, 3, t), PV_RATE_CLOSE);
}

static void test_peers_count_per_address(void **state)
{
    (void)state;
    struct pv_peers *p = pv_peers_new(4);
    assert_true(pv_peers_acquire(p, "10.0.0.1", 2));
    assert_true(pv_peers_acquire(p, "10.0.0.1", 2));
    assert_false(pv_peers_acquire(p, "10.0.0.1", 2));
    assert_true(pv_peers_acquire(p, "10.0.0.2", 2)); /* another address is separate */
    assert_int_equal(pv_peers_count(p, "10.0.0.1"), 2);
    pv_peers_release(p, "10.0.0.1");
    assert_true(pv_peers_acquire(p, "10.0.0.1", 2));
    /* Many addresses (more than the table was sized for), then all gone. */
    char a[48];
    for (int i = 0; i < 500; i++) {
        snprintf(a, sizeof(a), "fe80::%x", i);
        assert_true(pv_peers_acquire(p, a, 0));
    }
    for (int i = 0; i < 500; i++) {
        snprintf(a, sizeof(a), "fe80::%x", i);
        assert_int_equal(pv_peers_count(p, a), 1);
        pv_peers_release(p, a);
        assert_int_equal(pv_peers_count(p, a), 0);
    }
    pv_peers_free(p); /* LeakSanitizer checks the entries went */
}

static void test_origin_rule(void **state)
{
    (void)state;
    /* No Origin: not a browser page; allowed. */
    assert_true(pv_origin_allowed(NULL, false, "chat.lan:8080", ""));
    /* Same host (and port) as the page: allowed, any case. */
    assert_true(pv_origin_allowed("http://chat.lan:8080", false, "chat.lan:8080", ""));
    assert_true(pv_origin_allowed("https://CHAT.lan:8080", false, "chat.lan:8080", ""));
    assert_true(pv_origin_allowed("http://192.168.1.5", false, "192.168.1.5", ""));
    /* Another site, another port, odd forms: refused. */
    assert_false(pv_origin_allowed("http://evil.example", false, "chat.lan:8080", ""));
    assert_false(pv_origin_allowed("http://chat.lan:9090", false, "chat.lan:8080", ""));
    assert_false(
        pv_origin_allowed("http://chat.lan:8080.evil.example", false, "chat.lan:8080", ""));
    assert_false(pv_origin_allowed("null", false, "chat.lan:8080", ""));
    assert_false(pv_origin_allowed("file://", false, "chat.lan:8080", ""));
    assert_false(pv_origin_allowed("http://chat.lan:8080/x", false, "chat.lan:8080", ""));
    assert_false(pv_origin_allowed("http://chat.lan:8080", false, NULL, ""));
    /* The configured list adds origins; "*" allows all. */
    const char *list = "http://proxy.lan, https://chat.example.org";
    assert_true(pv_origin_allowed("https://chat.example.org", false, "10.0.0.2:8080", list));
    assert_true(pv_origin_allowed("HTTP://PROXY.LAN", false, "10.0.0.2:8080", list));
    assert_false(pv_origin_allowed("http://proxy.lan.evil", false, "10.0.0.2:8080", list));
    assert_false(pv_origin_allowed("http://proxy", false, "10.0.0.2:8080", list));
    assert_true(pv_origin_allowed("http://anything", false, "h", "*"));
    /* Through a trusted TLS terminator (https known): only the https page
     * of the host is its own; the http one only when listed. */
    assert_true(pv_origin_allowed("https://chat.lan", true, "chat.lan", ""));
    assert_true(pv_origin_allowed("https://chat.lan:8443", true, "chat.lan:8443", ""));
    assert_false(pv_origin_allowed("http://chat.lan", true, "chat.lan", ""));
    assert_false(pv_origin_allowed("https://evil.example", true, "chat.lan", ""));
    assert_true(pv_origin_allowed("http://chat.lan", true, "chat.lan", "http://chat.lan"));
}

/* Address bans: found until they end; the same address keeps the later
 * end; a full table gives the slot of the ban that ends first; an
 * account's unban lifts only the bans that came with it. */
static void test_bans(void **state)
{
    (void)state;
    struct pv_bans *b = pv_bans_new();
    assert_int_equal(pv_bans_until(b, "10.0.0.1", 1000), 0);
    pv_bans_add(b, "10.0.0.1", 5000, 0);
    pv_bans_add(b, "10.0.0.2", 9000, 7);
    assert_int_equal(pv_bans_until(b, "10.0.0.1", 1000), 5000);
    assert_int_equal(pv_bans_until(b, "10.0.0.1", 5000), 0); /* over */
    pv_bans_add(b, "10.0.0.1", 3000, 0);                     /* shorter: the later end stays */
    assert_int_equal(pv_bans_until(b, "10.0.0.1", 1000), 5000);
    for (int i = 0; i < PV_BANS_MAX + 10; i++) { /* full: the soonest ends make room */
        char a[32];
        snprintf(a, sizeof(a), "192.168.0.%d", i);
        pv_bans_add(b, a, 100000 + i, 0);
    }
    assert_int_equal(pv_bans_until(b, "192.168.0.265", 1000), 100265);
    assert_int_equal(pv_bans_until(b, "10.0.0.1", 1000), 0); /* it ended first: gone */
    pv_bans_add(b, "10.0.0.3", 200000, 7);
    pv_bans_add(b, "10.0.0.4", 200000, 8);
    assert_int_equal(pv_bans_lift(b, 7), 1);
    assert_int_equal(pv_bans_until(b, "10.0.0.3", 1000), 0);
    assert_int_equal(pv_bans_until(b, "10.0.0.4", 1000), 200000);
    assert_int_equal(pv_bans_lift(b, 0), 0); /* guests' bans end by time only */
    pv_bans_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_burst_then_refill),
        cmocka_unit_test(test_rate_flood_closes_but_a_pause_forgives),
        cmocka_unit_test(test_peers_count_per_address),
        cmocka_unit_test(test_origin_rule),
        cmocka_unit_test(test_bans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
