/* Unit tests: the broadcaster-owned registry (registry.c). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "palaver/client.h"
#include "palaver/registry.h"

static void test_add_remove_keeps_dense_indexes(void **state)
{
    (void)state;
    struct pv_registry r;
    struct pv_client *c[100];

    pv_registry_init(&r);
    for (int i = 0; i < 100; i++) {
        c[i] = pv_client_new(NULL, "127.0.0.1", 1, 1024);
        pv_client_ref(c[i]); /* the test keeps one, the registry takes one */
        pv_registry_add(&r, c[i]);
        assert_int_equal(c[i]->index, (size_t)i);
    }
    assert_int_equal(pv_registry_count(&r), 100);
    /* Remove every third client; the rest stay findable by index. */
    for (int i = 0; i < 100; i += 3) {
        pv_registry_remove(&r, c[i]);
        assert_int_equal(c[i]->index, SIZE_MAX);
        pv_client_unref(c[i]); /* the registry's reference */
    }
    assert_int_equal(pv_registry_count(&r), 66);
    for (size_t i = 0; i < r.n; i++)
        assert_ptr_equal(r.v[i]->index == i ? r.v[i] : NULL, r.v[i]);
    /* Removing twice is harmless. */
    pv_registry_remove(&r, c[0]);
    assert_int_equal(pv_registry_count(&r), 66);
    pv_registry_destroy(&r);
    for (int i = 0; i < 100; i++)
        pv_client_unref(c[i]);
}

/* The close decision (client.h): threads racing to close one client with
 * different codes; exactly one wins each time, and every loser learns the
 * winner's code, which never changes afterwards. */
struct decider {
    pthread_t t;
    pthread_barrier_t *go;
    struct pv_client *c;
    int code, won, saw;
};

static void *decider_main(void *arg)
{
    struct decider *d = arg;
    pthread_barrier_wait(d->go);
    d->won = pv_client_close_decide(d->c, d->code, &d->saw);
    return NULL;
}

static void test_close_is_decided_once(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        struct pv_client *c = pv_client_new(NULL, "127.0.0.1", 1, 1024);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 3);
        struct decider d[3] = {{.go = &go, .c = c, .code = 1008},
                               {.go = &go, .c = c, .code = 1001},
                               {.go = &go, .c = c, .code = 1006}};
        for (int i = 0; i < 3; i++)
            pthread_create(&d[i].t, NULL, decider_main, &d[i]);
        int winners = 0, code = 0;
        for (int i = 0; i < 3; i++) {
            pthread_join(d[i].t, NULL);
            if (d[i].won) {
                winners++;
                code = d[i].code;
            }
        }
        assert_int_equal(winners, 1);
        for (int i = 0; i < 3; i++)
            assert_int_equal(d[i].saw, code);
        assert_int_equal(atomic_load(&c->kick), code);
        int later;
        assert_false(pv_client_close_decide(c, 1000, &later));
        assert_int_equal(later, code);
        pthread_barrier_destroy(&go);
        pv_client_unref(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_keeps_dense_indexes),
        cmocka_unit_test(test_close_is_decided_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
