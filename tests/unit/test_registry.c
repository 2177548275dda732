/* Unit tests: the broadcaster-owned registry (registry.c). */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_keeps_dense_indexes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
