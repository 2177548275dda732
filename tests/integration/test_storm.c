/* Integration: thousands of connects and disconnects while a sender
 * broadcasts heavily. Run under ASan+UBSan and TSan by .ci/run, this is the
 * proof of "no write after close": CivetWeb recycles a connection slot as
 * soon as its close handler returns, so any write through a stale pointer
 * would reach a stranger (or, after mg_stop, freed memory). The stable
 * receivers must get every message in order, the churning clients must
 * get only well-formed traffic, and palaverd must exit cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <cmocka.h>

#include "receiver.h"

#define NRECV 3
#define NCHURN 3
#define CYCLES 700 /* per churning thread */
#define CHUNK 250  /* messages sent between checks of the churners */

static struct srv server;
static atomic_int churners_left;

struct churner {
    pthread_t thread;
    int cycles;
    int bad; /* malformed traffic seen by a churning client */
};

/* One connect/disconnect cycle, in one of several rude or polite ways. */
static void cycle(struct churner *ch, int k)
{
    struct wsc *c = wsc_open(server.port, NULL);
    if (!c)
        return;
    if (c->status != 101) {
        wsc_free(c);
        return;
    }
    switch (k % 5) {
    case 0: /* join, read a little, leave politely */
        if (wsc_join(c, NULL, NULL) == 0) {
            for (int i = 0; i < 5; i++) {
                struct wsc_frame f;
                if (wsc_recv(c, &f, 50) != 1)
                    break;
                if (f.opcode == 1) {
                    json_t *j = json_loadb((char *)f.data, f.len, 0, NULL);
                    if (!j)
                        ch->bad++;
                    json_decref(j);
                }
                wsc_frame_free(&f);
            }
        }
        wsc_send(c, true, 8, "\x03\xe8", 2);
        wsc_wait_close(c, 1000);
        break;
    case 1: /* vanish right after the handshake */
        break;
    case 2: /* send a chat message and vanish */
        wsc_send_chat(c, 1, "drive-by", "");
        break;
    case 3: /* vanish in the middle of a frame */
        wsc_send_raw(c, "\x81\xfe\x01\x00\x11\x22", 6);
        break;
    case 4: /* a protocol violation, then read the close */
        wsc_send(c, true, 2, "bin", 3);
        wsc_wait_close(c, 1000);
        break;
    }
    wsc_free(c);
    ch->cycles++;
}

static void *churn_main(void *arg)
{
    struct churner *ch = arg;
    for (int k = 0; k < CYCLES; k++)
        cycle(ch, k);
    atomic_fetch_sub(&churners_left, 1);
    return NULL;
}

static void test_connect_disconnect_storm_during_broadcast(void **state)
{
    (void)state;
    const char *args[] = {
        "--max-clients", "200", "--writers", "2", "--max-per-ip", "0", "--rate-limit", "0",
        "--byte-rate",   "0",   NULL};
    char pid[32];
    struct receiver r[NRECV];
    struct churner ch[NCHURN] = {0};

    assert_int_equal(srv_start(&server, args), 0);
    struct wsc *p = wsc_open(server.port, NULL);
    assert_int_equal(wsc_join(p, NULL, pid), 0);
    for (int i = 0; i < NRECV; i++) {
        r[i] = (struct receiver){.sender_id = pid, .want = 1 << 30, .timeout_ms = 240000};
        r[i].c = wsc_open(server.port, NULL);
        assert_int_equal(wsc_join(r[i].c, NULL, NULL), 0);
        receiver_start(&r[i]);
    }
    atomic_store(&churners_left, NCHURN);
    for (int i = 0; i < NCHURN; i++)
        pthread_create(&ch[i].thread, NULL, churn_main, &ch[i]);
    /* Broadcast for as long as the storm lasts. */
    int sent = 0, acked = 0;
    do {
        acked += send_stream(p, sent, CHUNK, 200, 32, 120000);
        sent += CHUNK;
    } while (atomic_load(&churners_left) > 0 && acked == sent);
    assert_int_equal(wsc_send_chat(p, sent, "end;", ""), 0);
    for (int i = 0; i < NRECV; i++)
        receiver_join(&r[i]);
    int cycles = 0, bad = 0;
    for (int i = 0; i < NCHURN; i++) {
        pthread_join(ch[i].thread, NULL);
        cycles += ch[i].cycles;
        bad += ch[i].bad;
    }
    print_message("%d messages broadcast during %d connect/disconnect cycles\n", sent, cycles);

    assert_int_equal(acked, sent);
    for (int i = 0; i < NRECV; i++) {
        assert_int_equal(r[i].got, sent);
        assert_int_equal(r[i].out_of_order, 0);
    }
    assert_int_equal(bad, 0);
    assert_int_equal(cycles, NCHURN * CYCLES);
    assert_int_equal(srv_log_count(&server, "slow consumer: closing"), 0);
    for (int i = 0; i < NRECV; i++)
        wsc_free(r[i].c);
    wsc_free(p);
    assert_int_equal(srv_stop(&server), 0); /* clean: no sanitizer report */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_disconnect_storm_during_broadcast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
