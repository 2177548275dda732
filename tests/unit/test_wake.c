/* Unit tests: the wait-free channel and its wake-up (wake.c). Producers
 * push from several threads and notify only on empty -> non-empty; the
 * consumer parks whenever the channel is empty. Every node arrives, each
 * producer's in its order, and no park times out while nodes wait (a
 * lost wake-up would). Run under ThreadSanitizer by the TSan build. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "palaver/wake.h"

enum { PRODUCERS = 4, PER = 50000 };

struct item {
    struct cds_wfcq_node node; /* first */
    int producer, n;
};

static struct pv_chan chan;
static struct pv_wake wake;

static void *producer_main(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int i = 0; i < PER; i++) {
        struct item *it = malloc(sizeof(*it));
        it->producer = p;
        it->n = i;
        if (pv_chan_push(&chan, &it->node))
            pv_wake_notify(&wake);
        if (i % 64 == 63)
            sched_yield(); /* let the consumer catch up and park */
    }
    return NULL;
}

static void test_every_node_arrives_in_order_and_no_wakeup_is_lost(void **state)
{
    (void)state;
    pv_chan_init(&chan);
    assert_int_equal(pv_wake_init(&wake), 0);
    assert_true(pv_chan_empty(&chan));
    assert_null(pv_chan_pop(&chan));

    pthread_t t[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++)
        pthread_create(&t[p], NULL, producer_main, (void *)(intptr_t)p);
    int next[PRODUCERS] = {0}, got = 0, out_of_order = 0, parks = 0, lost = 0;
    struct pv_wake *w = &wake;
    while (got < PRODUCERS * PER) {
        struct cds_wfcq_node *n;
        while ((n = pv_chan_pop(&chan)) != NULL) {
            struct item *it = (struct item *)(void *)n;
            if (it->n != next[it->producer])
                out_of_order++;
            next[it->producer] = it->n + 1;
            got++;
            free(it);
        }
        if (got == PRODUCERS * PER)
            break;
        parks++;
        /* Nothing is left to pop: a producer that pushes now notifies,
         * and the wait must see it. A timeout with nodes waiting is a
         * lost wake-up. */
        if (pv_wake_wait(&w, 1, 5000) == 0 && !pv_chan_empty(&chan))
            lost++;
    }
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(t[p], NULL);
    assert_int_equal(got, PRODUCERS * PER);
    assert_int_equal(out_of_order, 0);
    assert_int_equal(lost, 0);
    assert_true(pv_chan_empty(&chan));
    print_message("wake: %d nodes from %d producers, the consumer parked %d times\n", got,
                  PRODUCERS, parks);
    pv_wake_destroy(&wake);
}

static void test_wait_times_out_and_skips_null(void **state)
{
    (void)state;
    struct pv_wake a, b;
    assert_int_equal(pv_wake_init(&a), 0);
    assert_int_equal(pv_wake_init(&b), 0);
    struct pv_wake *ws[3] = {&a, NULL, &b};
    assert_int_equal(pv_wake_wait(ws, 3, 0), 0);
    pv_wake_notify(&b);
    pv_wake_notify(&b); /* counted, drained by one wait */
    assert_int_equal(pv_wake_wait(ws, 3, 1000), 1);
    assert_int_equal(pv_wake_wait(ws, 3, 0), 0);
    pv_wake_notify(&a);
    pv_wake_notify(&b);
    assert_int_equal(pv_wake_wait(ws, 3, 1000), 2);
    pv_wake_destroy(&a);
    pv_wake_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_node_arrives_in_order_and_no_wakeup_is_lost),
        cmocka_unit_test(test_wait_times_out_and_skips_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
