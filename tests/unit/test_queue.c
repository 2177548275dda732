/* Unit tests: the lock-free MPSC event queue (queue.c). The stress test
 * runs under ThreadSanitizer in the sanitizer build. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/queue.h"

static struct pv_event *msg(int producer, int seq)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d:%d", producer, seq);
    return pv_event_new(PV_EV_MSG, NULL, buf, (size_t)n);
}

static void test_fifo_and_classes(void **state)
{
    (void)state;
    struct pv_queue *q = pv_queue_new(4);
    struct pv_event *out[16];

    pv_queue_push_ctl(q, pv_event_new(PV_EV_JOIN, NULL, "ann", 3));
    for (int i = 0; i < 4; i++)
        assert_int_equal(pv_queue_push_msg(q, msg(0, i), 0), 0);
    /* Chat messages are full, and say so after their timeout... */
    struct pv_event *extra = msg(0, 99);
    assert_int_equal(pv_queue_push_msg(q, extra, 20), -ETIMEDOUT);
    /* ...but control events still get in: their room is reserved. */
    pv_queue_push_ctl(q, pv_event_new(PV_EV_LEAVE, NULL, "bye", 3));
    pv_queue_push_ctl(q, pv_event_new(PV_EV_JOIN, NULL, NULL, 0));
    pv_queue_push_ctl(q, pv_event_new(PV_EV_LEAVE, NULL, NULL, 0));
    assert_int_equal(pv_queue_depth(q), 8);

    size_t n = pv_queue_pop(q, out, 16);
    assert_int_equal(n, 8);
    assert_int_equal(out[0]->type, PV_EV_JOIN);
    assert_string_equal(out[0]->data, "ann");
    for (int i = 0; i < 4; i++) {
        char want[16];
        snprintf(want, sizeof(want), "0:%d", i);
        assert_int_equal(out[1 + i]->type, PV_EV_MSG);
        assert_string_equal(out[1 + i]->data, want);
    }
    assert_int_equal(out[5]->type, PV_EV_LEAVE);
    for (size_t i = 0; i < n; i++)
        pv_event_free(out[i]);
    /* Popping gave the room back. */
    assert_int_equal(pv_queue_push_msg(q, extra, 0), 0);
    pv_queue_close_msgs(q);
    struct pv_event *late = msg(0, 100);
    assert_int_equal(pv_queue_push_msg(q, late, 1000), -ESHUTDOWN);
    pv_event_free(late);
    pv_queue_free(q); /* frees the queued `extra` */
}

struct waiter {
    struct pv_queue *q;
    int rc;
};

static void *blocked_producer(void *arg)
{
    struct waiter *w = arg;
    w->rc = pv_queue_push_msg(w->q, msg(1, 1), 10000);
    return NULL;
}

static void test_full_queue_producer_waits_for_space(void **state)
{
    (void)state;
    struct pv_queue *q = pv_queue_new(1);
    struct pv_event *out[4];
    struct waiter w = {.q = q, .rc = -1};
    pthread_t t;

    assert_int_equal(pv_queue_push_msg(q, msg(1, 0), 0), 0);
    pthread_create(&t, NULL, blocked_producer, &w);
    /* The producer cannot finish until we pop; popping releases it. */
    while (pv_queue_pop(q, out, 4) == 0)
        pv_queue_wait(q, 100);
    pv_event_free(out[0]);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(pv_queue_pop(q, out, 4), 1);
    assert_string_equal(out[0]->data, "1:1");
    pv_event_free(out[0]);
    pv_queue_free(q);
}

/* The byte bound: room for 100 messages, but only 1,000 bytes of them;
 * a message alone is always admitted, whatever its size. */
static void test_byte_bound(void **state)
{
    (void)state;
    static char big[600];
    memset(big, 'x', sizeof(big));
    struct pv_queue *q = pv_queue_new(100);
    pv_queue_set_byte_capacity(q, 1000);
    struct pv_event *out[4];
    struct pv_event *a = pv_event_new(PV_EV_MSG, NULL, big, sizeof(big));
    struct pv_event *b = pv_event_new(PV_EV_MSG, NULL, big, sizeof(big));
    assert_int_equal(pv_queue_push_msg(q, a, 0), 0);
    assert_int_equal(pv_queue_push_msg(q, b, 0), -ETIMEDOUT); /* 1,200 > 1,000 */
    assert_int_equal(pv_queue_pop(q, out, 4), 1);
    pv_event_free(out[0]);
    assert_int_equal(pv_queue_push_msg(q, b, 0), 0); /* the bytes came back */
    static char huge[5000];
    struct pv_event *c = pv_event_new(PV_EV_MSG, NULL, huge, sizeof(huge));
    assert_int_equal(pv_queue_push_msg(q, c, 0), -ETIMEDOUT);
    assert_int_equal(pv_queue_pop(q, out, 4), 1);
    pv_event_free(out[0]);
    assert_int_equal(pv_queue_push_msg(q, c, 0), 0); /* alone: admitted */
    assert_int_equal(pv_queue_pop(q, out, 4), 1);
    pv_event_free(out[0]);
    pv_queue_free(q);
}

static void test_wait_times_out_when_empty(void **state)
{
    (void)state;
    struct pv_queue *q = pv_queue_new(8);
    assert_false(pv_queue_wait(q, 10));
    pv_queue_push_ctl(q, pv_event_new(PV_EV_STOP, NULL, NULL, 0));
    assert_true(pv_queue_wait(q, 0));
    pv_queue_free(q);
}

#define PRODUCERS 4
#define PER_PRODUCER 50000

struct producer {
    struct pv_queue *q;
    int id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        if (i % 1000 == 999) {
            pv_queue_push_ctl(p->q, pv_event_new(PV_EV_JOIN, NULL, NULL, 0));
            continue;
        }
        struct pv_event *ev = msg(p->id, i);
        int rc = pv_queue_push_msg(p->q, ev, 60000);
        if (rc != 0)
            abort();
    }
    return NULL;
}

static void test_mpsc_stress_keeps_per_producer_order(void **state)
{
    (void)state;
    struct pv_queue *q = pv_queue_new(256);
    pthread_t t[PRODUCERS];
    struct producer p[PRODUCERS];
    int next[PRODUCERS] = {0};
    long got = 0, joins = 0;
    struct pv_event *out[64];

    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){q, i};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    while (got + joins < (long)PRODUCERS * PER_PRODUCER) {
        size_t n = pv_queue_pop(q, out, 64);
        if (n == 0) {
            pv_queue_wait(q, 1000); /* parks; producers wake it */
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (out[i]->type == PV_EV_JOIN) {
                joins++;
            } else {
                int prod, seq;
                assert_int_equal(sscanf(out[i]->data, "%d:%d", &prod, &seq), 2);
                assert_true(seq >= next[prod]); /* never out of order */
                next[prod] = seq + 1;
                got++;
            }
            pv_event_free(out[i]);
        }
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(joins, PRODUCERS * (PER_PRODUCER / 1000));
    assert_int_equal(got, (long)PRODUCERS * PER_PRODUCER - joins);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(next[i], PER_PRODUCER - 1); /* last msg is seq PER-2 */
    pv_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_classes),
        cmocka_unit_test(test_full_queue_producer_waits_for_space),
        cmocka_unit_test(test_wait_times_out_when_empty),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_mpsc_stress_keeps_per_producer_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
