/* Integration: a client that stops reading must not delay the others.
 *
 * The server runs with --io-timeout 30000: CivetWeb blocks a writer that
 * long on a full socket, so a design that wrote to the stalled client from
 * the fanout path would need far longer than the 15 s this test allows.
 * The stalled client's backlog passes --max-backlog, so palaverd closes it
 * with 1008 "slow consumer" and logs it; when it reads again it finds the
 * close frame at the end of its stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "receiver.h"

#define NRECV 3
#define NMSG 4000
#define SIZE 2000

static void test_stalled_client_is_closed_and_others_keep_flowing(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {
        "--max-backlog", "262144", "--io-timeout", "30000", "--writers", "2", "--max-per-ip", "0",
        "--rate-limit",  "0",      "--byte-rate",  "0",     NULL};
    char sid[32], pid[32], needle[128];
    struct receiver r[NRECV];

    assert_int_equal(srv_start(&s, args), 0);
    struct wsc_opts small = {.rcvbuf = 4096};
    struct wsc *stalled = wsc_open(s.port, &small);
    assert_int_equal(stalled->status, 101);
    assert_int_equal(wsc_join(stalled, NULL, sid), 0);
    /* From here on, `stalled` reads nothing until the end. */

    struct wsc *p = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(p, NULL, pid), 0);
    for (int i = 0; i < NRECV; i++) {
        r[i] = (struct receiver){.sender_id = pid, .want = NMSG, .timeout_ms = 15000};
        r[i].c = wsc_open(s.port, NULL);
        assert_int_equal(wsc_join(r[i].c, NULL, NULL), 0);
        receiver_start(&r[i]);
    }
    int64_t t0 = mono_ms();
    int acked = send_stream(p, 0, NMSG, SIZE, 64, 15000);
    for (int i = 0; i < NRECV; i++)
        receiver_join(&r[i]);
    int64_t elapsed = mono_ms() - t0;
    print_message("%d x %d-byte messages to %d readers past a stalled one: %lld ms\n", NMSG, SIZE,
                  NRECV, (long long)elapsed);

    assert_int_equal(acked, NMSG);
    for (int i = 0; i < NRECV; i++) {
        assert_int_equal(r[i].got, NMSG);
        assert_int_equal(r[i].out_of_order, 0);
    }
    snprintf(needle, sizeof(needle), "slow consumer: closing id=%s", sid);
    assert_true(srv_log_wait(&s, needle, 5000));
    /* Only the stalled client: readers that keep up are never closed, even
     * when palaverd's own writers fall behind them. */
    assert_int_equal(srv_log_count(&s, "slow consumer: closing"), 1);
    /* The blocked writer was replaced so min writers kept serving. */
    assert_true(srv_log_has(&s, "stalled on slow clients: started writer"));

    /* The stalled client reads again: its stream ends in a 1008 close. */
    assert_int_equal(wsc_wait_close(stalled, 20000), 1008);
    assert_string_equal(stalled->close_reason, "slow consumer");

    for (int i = 0; i < NRECV; i++)
        wsc_free(r[i].c);
    wsc_free(p);
    wsc_free(stalled);
    assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_client_is_closed_and_others_keep_flowing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
