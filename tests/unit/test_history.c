/* Unit tests: the history ring and the questions recovery asks of it
 * (src/broadcaster/history.c): push, wrap-around, expiry by age, "the
 * oldest after seq N", "is everything after N in memory", "can memory
 * answer this page", "is this replay gap-free". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/frame.h"
#include "palaver/history.h"
#include "palaver/store.h"

/* A ring of capacity cap holding seqs first..last, dated seq*1000. */
static void fill(struct pv_history *h, size_t cap, uint64_t first, uint64_t last)
{
    pv_history_init(h, cap);
    for (uint64_t s = first; s <= last; s++) {
        char json[64];
        int n = snprintf(json, sizeof(json), "{\"seq\":%llu}", (unsigned long long)s);
        struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, json, (size_t)n);
        pv_history_push(h, f, s, (int64_t)s * 1000);
        pv_frame_unref(f); /* the ring keeps its own reference */
    }
}

static void test_push_and_wrap_around(void **state)
{
    (void)state;
    struct pv_history h;
    fill(&h, 4, 1, 3);
    assert_int_equal(h.len, 3);
    assert_int_equal(pv_history_at(&h, 0)->seq, 1);
    pv_history_destroy(&h);

    /* 10 pushed into 4 slots: the last 4 stay, oldest first, and each
     * holds its frame (the ring's reference is the only one left). */
    fill(&h, 4, 1, 10);
    assert_int_equal(h.len, 4);
    for (size_t i = 0; i < 4; i++) {
        const struct pv_history_entry *e = pv_history_at(&h, i);
        assert_int_equal(e->seq, 7 + i);
        assert_int_equal(atomic_load(&e->f->refs), 1);
        size_t len;
        const char *p = (const char *)pv_frame_payload(e->f, &len);
        char want[32];
        snprintf(want, sizeof(want), "{\"seq\":%zu}", 7 + i);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(p, want, len);
    }
    pv_history_destroy(&h);

    /* Capacity 0 keeps nothing. */
    fill(&h, 0, 1, 5);
    assert_int_equal(h.len, 0);
    assert_int_equal(pv_history_after(&h, 0), 0);
    pv_history_destroy(&h);
}

static void test_after_finds_the_oldest_newer_entry(void **state)
{
    (void)state;
    struct pv_history h;
    fill(&h, 8, 1, 20); /* wrapped: holds 13..20 */
    assert_int_equal(pv_history_after(&h, 0), 0);
    assert_int_equal(pv_history_after(&h, 12), 0);
    assert_int_equal(pv_history_after(&h, 13), 1);
    assert_int_equal(pv_history_after(&h, 17), 5);
    assert_int_equal(pv_history_after(&h, 19), 7);
    assert_int_equal(pv_history_after(&h, 20), 8);
    assert_int_equal(pv_history_after(&h, 1000), 8);
    pv_history_destroy(&h);
}

/* find(): the entry of a seq, wrapped or not, and none for a seq the
 * ring does not hold; replace(): the frame is swapped, references kept
 * straight (the old one is released, the new one held). */
static void test_find_and_replace(void **state)
{
    (void)state;
    struct pv_history h;
    fill(&h, 4, 1, 10); /* 7..10, wrapped */
    assert_null(pv_history_find(&h, 0));
    assert_null(pv_history_find(&h, 6));
    assert_null(pv_history_find(&h, 11));
    for (uint64_t s = 7; s <= 10; s++)
        assert_int_equal(pv_history_find(&h, s)->seq, s);
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, "{}", 2);
    struct pv_history_entry *e = pv_history_find(&h, 8);
    uint64_t gen = h.gen;
    pv_history_replace(&h, e, f);
    assert_true(h.gen != gen); /* what greetings are built from changed */
    assert_ptr_equal(pv_history_find(&h, 8)->f, f);
    assert_int_equal(atomic_load(&f->refs), 2);
    pv_history_destroy(&h);
    assert_int_equal(atomic_load(&f->refs), 1);
    pv_frame_unref(f);
}

static void test_expire_by_age_drops_the_oldest(void **state)
{
    (void)state;
    struct pv_history h;
    fill(&h, 8, 1, 20);                                /* 13..20, dated 13000..20000 */
    assert_int_equal(pv_history_expire(&h, 13000), 0); /* dated before the cutoff only */
    assert_int_equal(pv_history_expire(&h, 16500), 4);
    assert_int_equal(h.len, 4);
    assert_int_equal(pv_history_at(&h, 0)->seq, 17);
    /* Pushing after an expiry keeps the order across the wrap. */
    struct pv_frame *f = pv_frame_new(PV_WS_OP_TEXT, "{}", 2);
    for (uint64_t s = 21; s <= 26; s++)
        pv_history_push(&h, f, s, (int64_t)s * 1000);
    pv_frame_unref(f);
    assert_int_equal(h.len, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(pv_history_at(&h, i)->seq, 19 + i);
    assert_int_equal(pv_history_expire(&h, INT64_MAX), 8);
    assert_int_equal(h.len, 0);
    pv_history_destroy(&h);
}

static void test_covers(void **state)
{
    (void)state;
    struct pv_history h;
    fill(&h, 8, 1, 20);                         /* 13..20 */
    assert_true(pv_history_covers(&h, 20, 20)); /* missed nothing */
    assert_true(pv_history_covers(&h, 12, 20)); /* 13.. are all here */
    assert_true(pv_history_covers(&h, 15, 20));
    assert_false(pv_history_covers(&h, 11, 20)); /* 12 is gone */
    assert_false(pv_history_covers(&h, 0, 20));
    pv_history_destroy(&h);
    pv_history_init(&h, 8); /* empty ring */
    assert_true(pv_history_covers(&h, 5, 5));
    assert_false(pv_history_covers(&h, 4, 5));
    pv_history_destroy(&h);
}

static void test_page_in_memory(void **state)
{
    (void)state;
    struct pv_history h;
    fill(&h, 8, 1, 20); /* 13..20 in memory; last seq 20 */
    struct pv_store_facts none = {.present = false};
    struct pv_store_facts all = {.present = true, .first = 1, .committed = 20};
    struct pv_store_facts kept = {.present = true, .first = 15, .committed = 20};
    struct pv_store_facts empty_behind = {.present = true, .first = 0, .committed = 10};
    struct pv_store_facts empty_done = {.present = true, .first = 0, .committed = 20};
    struct pv_store_facts empty_failed = {.present = true, .failed = true, .first = 0};

    /* No store: memory is all there is. */
    assert_true(pv_history_page_in_memory(&h, 21, 100, 20, &none));
    /* Enough before `before` in the ring (8 before 21, 3 before 16). */
    assert_true(pv_history_page_in_memory(&h, 21, 8, 20, &all));
    assert_true(pv_history_page_in_memory(&h, 16, 3, 20, &all));
    /* Not enough, and the store holds older ones: read the store. */
    assert_false(pv_history_page_in_memory(&h, 21, 9, 20, &all));
    assert_false(pv_history_page_in_memory(&h, 16, 4, 20, &all));
    assert_false(pv_history_page_in_memory(&h, 10, 5, 20, &all));
    /* The store has nothing older than the ring's first entry. */
    assert_true(pv_history_page_in_memory(&h, 21, 50, 20, &kept));
    /* ...or nothing older than `before`. */
    struct pv_store_facts young = {.present = true, .first = 18, .committed = 20};
    assert_true(pv_history_page_in_memory(&h, 10, 5, 20, &young));
    /* An empty store that is still committing may get older rows; one
     * that has committed everything, or failed, will not. */
    assert_false(pv_history_page_in_memory(&h, 21, 50, 20, &empty_behind));
    assert_true(pv_history_page_in_memory(&h, 21, 50, 20, &empty_done));
    assert_true(pv_history_page_in_memory(&h, 21, 50, 20, &empty_failed));
    pv_history_destroy(&h);
}

static void rows_of(struct pv_store_row *r, uint64_t first, uint64_t last)
{
    for (uint64_t s = first; s <= last; s++)
        r[s - first] = (struct pv_store_row){.seq = s};
}

static void test_replay_gap(void **state)
{
    (void)state;
    struct pv_history h;
    struct pv_store_row rows[32];
    fill(&h, 8, 1, 20); /* 13..20 in memory */

    /* Rows 6..20 after since 5: complete. */
    rows_of(rows, 6, 20);
    assert_null(pv_history_replay_gap(&h, 5, 20, rows, 15, 1));
    /* Rows 6..14, the ring supplies 15..20 (the store failed meanwhile). */
    assert_null(pv_history_replay_gap(&h, 5, 20, rows, 9, 1));
    /* Rows 6..10, ring from 13: 11 and 12 are lost -> unavailable (the
     * store kept everything from 1, so nothing was retention's doing). */
    assert_string_equal(pv_history_replay_gap(&h, 5, 20, rows, 5, 1), "unavailable");
    /* Retention took 6..8: the store's oldest is 9 -> too-far. */
    rows_of(rows, 9, 20);
    assert_string_equal(pv_history_replay_gap(&h, 5, 20, rows, 12, 9), "too-far");
    /* Nothing stored at all, and the ring does not reach back. */
    assert_string_equal(pv_history_replay_gap(&h, 5, 20, rows, 0, 0), "too-far");
    /* No rows needed: the ring has since+1 onwards. */
    assert_null(pv_history_replay_gap(&h, 12, 20, rows, 0, 1));
    /* A row missing in the middle. */
    rows_of(rows, 6, 20);
    rows[3].seq = 99;
    assert_string_equal(pv_history_replay_gap(&h, 5, 20, rows, 15, 1), "unavailable");
    /* The read failed. */
    assert_string_equal(pv_history_replay_gap(&h, 5, 20, NULL, -1, 1), "unavailable");
    /* The replay stops at `to`: messages after it are the held live ones. */
    rows_of(rows, 6, 16);
    assert_null(pv_history_replay_gap(&h, 5, 16, rows, 11, 1));
    pv_history_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_and_wrap_around),
        cmocka_unit_test(test_after_finds_the_oldest_newer_entry),
        cmocka_unit_test(test_find_and_replace),
        cmocka_unit_test(test_expire_by_age_drops_the_oldest),
        cmocka_unit_test(test_covers),
        cmocka_unit_test(test_page_in_memory),
        cmocka_unit_test(test_replay_gap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
