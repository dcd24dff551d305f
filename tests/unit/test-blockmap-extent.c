/* tests/unit/test-blockmap-extent.c: the run tree (blockmap/rtree.c)
 * and the extent map built on it (blockmap/extent.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "test-blockmap-util.h"

struct piece {
  uint64_t start, len, val;
};

struct pieces {
  struct piece v[16];
  int n;
};

static void
record_piece (void *opaque, uint64_t start, uint64_t len, uint64_t val,
              uint8_t tier, uint8_t flags)
{
  struct pieces *p = opaque;

  (void) tier;
  (void) flags;
  p->v[p->n++] = (struct piece) { start, len, val };
}

static void
test_inserted_extents_are_found_by_lower_bound (void **state)
{
  struct rslab slab = { 0 };
  struct rtree t;
  struct rnode *n;

  (void) state;
  rtree_init (&t, &slab, RT_EXTENT);
  rtree_add_range (&t, 100, 10, 1000, 1, 0);
  rtree_add_range (&t, 0, 5, 50, 1, 0);
  rtree_add_range (&t, 50, 1, 7, 1, 0);
  assert_int_equal (t.nodes, 3);
  assert_int_equal (t.total, 16);
  n = rtree_lookup (&t, 105);
  assert_non_null (n);
  assert_int_equal (n->start, 100);
  assert_int_equal (n->val, 1000);
  assert_null (rtree_lookup (&t, 110));
  assert_null (rtree_lookup (&t, 5));
  n = rtree_find_le (&t, 99);
  assert_int_equal (n->start, 50);
  n = rtree_find_gt (&t, 50);
  assert_int_equal (n->start, 100);
  assert_null (rtree_find_gt (&t, 100));
  assert_int_equal (rtree_find_le (&t, 0)->start, 0);
  assert_int_equal (rtree_first (&t)->start, 0);
  assert_int_equal (rtree_verify (&t), 0);
  rtree_clear (&t);
  rslab_free_all (&slab);
}

static void
test_adjacent_contiguous_extents_merge_and_others_do_not (void **state)
{
  struct rslab slab = { 0 };
  struct rtree t;

  (void) state;
  rtree_init (&t, &slab, RT_EXTENT);
  rtree_add_range (&t, 0, 4, 100, 1, 0);
  rtree_add_range (&t, 4, 4, 104, 1, 0);     /* follows on: merges */
  assert_int_equal (t.nodes, 1);
  rtree_add_range (&t, 12, 4, 112, 1, 0);    /* gap of 4 logical */
  assert_int_equal (t.nodes, 2);
  rtree_add_range (&t, 8, 4, 108, 1, 0);     /* fills it: all merge */
  assert_int_equal (t.nodes, 1);
  assert_int_equal (rtree_first (&t)->len, 16);
  rtree_add_range (&t, 16, 1, 500, 1, 0);    /* not physically next */
  assert_int_equal (t.nodes, 2);
  rtree_add_range (&t, 17, 1, 501, 2, 0);    /* another tier */
  assert_int_equal (t.nodes, 3);
  rtree_add_range (&t, 20, 1, 504, 2, 0);    /* same flags, but gap */
  assert_int_equal (t.nodes, 4);
  /* Inserting before a run that follows on merges backwards. */
  rtree_add_range (&t, 19, 1, 503, 2, 0);
  assert_int_equal (t.nodes, 4);
  assert_int_equal (rtree_lookup (&t, 20)->start, 19);
  assert_int_equal (rtree_lookup (&t, 20)->val, 503);
  assert_int_equal (rtree_verify (&t), 0);
  rtree_clear (&t);
  rslab_free_all (&slab);
}

static void
test_removing_the_middle_of_an_extent_splits_it (void **state)
{
  struct rslab slab = { 0 };
  struct rtree t;
  struct pieces p = { .n = 0 };
  struct rnode *n;

  (void) state;
  rtree_init (&t, &slab, RT_EXTENT);
  rtree_add_range (&t, 10, 10, 200, 1, 0);
  rtree_remove_range (&t, 13, 4, record_piece, &p);
  assert_int_equal (p.n, 1);
  assert_int_equal (p.v[0].start, 13);
  assert_int_equal (p.v[0].len, 4);
  assert_int_equal (p.v[0].val, 203);        /* shifted physical chunk */
  assert_int_equal (t.nodes, 2);
  n = rtree_lookup (&t, 12);
  assert_int_equal (n->start, 10);
  assert_int_equal (n->len, 3);
  n = rtree_lookup (&t, 17);
  assert_int_equal (n->start, 17);
  assert_int_equal (n->len, 3);
  assert_int_equal (n->val, 207);
  assert_int_equal (t.total, 6);
  /* Putting the middle back merges all three again. */
  rtree_add_range (&t, 13, 4, 203, 1, 0);
  assert_int_equal (t.nodes, 1);
  assert_int_equal (rtree_verify (&t), 0);
  rtree_clear (&t);
  rslab_free_all (&slab);
}

static void
test_removing_a_range_across_extents_trims_both_ends (void **state)
{
  struct rslab slab = { 0 };
  struct rtree t;
  struct pieces p = { .n = 0 };

  (void) state;
  rtree_init (&t, &slab, RT_EXTENT);
  rtree_add_range (&t, 0, 10, 100, 1, 0);
  rtree_add_range (&t, 20, 10, 300, 1, 0);
  rtree_add_range (&t, 40, 10, 500, 1, 0);
  rtree_remove_range (&t, 5, 40, record_piece, &p);
  assert_int_equal (p.n, 3);
  assert_int_equal (p.v[0].start, 5);
  assert_int_equal (p.v[0].len, 5);
  assert_int_equal (p.v[0].val, 105);
  assert_int_equal (p.v[1].start, 20);
  assert_int_equal (p.v[1].len, 10);
  assert_int_equal (p.v[2].start, 40);
  assert_int_equal (p.v[2].len, 5);
  assert_int_equal (p.v[2].val, 500);
  assert_int_equal (t.nodes, 2);
  assert_int_equal (rtree_lookup (&t, 45)->val, 505);
  assert_int_equal (t.total, 10);
  assert_int_equal (rtree_verify (&t), 0);
  rtree_clear (&t);
  rslab_free_all (&slab);
}

/* A random workload against a flat shadow array. */
static void
test_random_maps_and_unmaps_agree_with_a_flat_array (void **state)
{
  enum { N = 4096 };
  static uint64_t shadow[N];                   /* 0: hole, else p + 1 */
  struct rslab slab = { 0 };
  struct rtree t;
  unsigned seed = 12345;

  (void) state;
  memset (shadow, 0, sizeof shadow);
  rtree_init (&t, &slab, RT_EXTENT);
  for (int iter = 0; iter < 20000; iter++) {
    uint64_t s = rand_r (&seed) % N;
    uint64_t len = 1 + rand_r (&seed) % 64;
    if (s + len > N)
      len = N - s;
    rtree_remove_range (&t, s, len, NULL, NULL);
    for (uint64_t i = s; i < s + len; i++)
      shadow[i] = 0;
    if (rand_r (&seed) % 3) {
      uint64_t p = rand_r (&seed) % 100000;
      rtree_add_range (&t, s, len, p, 1, 0);
      for (uint64_t i = 0; i < len; i++)
        shadow[s + i] = p + i + 1;
    }
    if (iter % 1000 == 0)
      assert_int_equal (rtree_verify (&t), 0);
  }
  for (uint64_t i = 0; i < N; i++) {
    struct rnode *n = rtree_lookup (&t, i);
    if (shadow[i] == 0)
      assert_null (n);
    else {
      assert_non_null (n);
      assert_int_equal (n->val + (i - n->start) + 1, shadow[i]);
    }
  }
  assert_int_equal (rtree_verify (&t), 0);
  rtree_clear (&t);
  rslab_free_all (&slab);
}

/* One million scattered extents: lookups stay fast, memory is
 * sizeof (struct rnode) per extent.  Prints the measurement.
 */
static void
test_a_million_extents_cost_one_node_each (void **state)
{
  enum { N = 1000000 };
  struct rslab slab = { 0 };
  struct rtree t;
  struct timespec a, b;
  double ns;

  (void) state;
  rtree_init (&t, &slab, RT_EXTENT);
  clock_gettime (CLOCK_MONOTONIC, &a);
  for (uint64_t i = 0; i < N; i++)
    rtree_add_range (&t, i * 2, 1, (N - i) * 3, 1, 0);
  clock_gettime (CLOCK_MONOTONIC, &b);
  assert_int_equal (t.nodes, N);
  ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / N;
  for (uint64_t i = 0; i < N; i += 997)
    assert_int_equal (rtree_lookup (&t, i * 2)->val, (N - i) * 3);
  fprintf (stderr, "extent map: %zu bytes per extent (slab of %zu blocks), "
           "%.0f ns per insert at 1M extents\n", sizeof (struct rnode),
           slab.nblocks, ns);
  assert_true (slab.nblocks * 1024 >= N);
  assert_true (slab.nblocks * 1024 < N + 1024);
  assert_int_equal (rtree_verify (&t), 0);
  rtree_clear (&t);
  rslab_free_all (&slab);
}

static void
test_an_unwritten_huge_volume_costs_no_map_memory (void **state)
{
  struct tpool t;
  struct blockmap_pool_info before, after;
  struct blockmap_volume *v;
  struct blockmap_run r[4];

  (void) state;
  tpool_make (&t, 64 * MiB);
  blockmap_pool_info (t.pool, &before);
  assert_int_equal (blockmap_volume_create (t.pool, "big", 1 * TiB, "ssd",
                                            NULL), 0);
  blockmap_pool_info (t.pool, &after);
  assert_int_equal (after.extents, 0);
  assert_true (after.map_memory - before.map_memory < 1024);
  assert_int_equal (blockmap_volume_open (t.pool, "big", &v), 0);
  assert_int_equal (blockmap_map_range (v, 0, 1 * TiB, r, 4), 1);
  assert_int_equal (r[0].tier, BM_TIER_NONE);
  assert_int_equal (r[0].length, 1 * TiB);
  blockmap_volume_release (v);
  tpool_done (&t);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_inserted_extents_are_found_by_lower_bound),
    cmocka_unit_test (test_adjacent_contiguous_extents_merge_and_others_do_not),
    cmocka_unit_test (test_removing_the_middle_of_an_extent_splits_it),
    cmocka_unit_test (test_removing_a_range_across_extents_trims_both_ends),
    cmocka_unit_test (test_random_maps_and_unmaps_agree_with_a_flat_array),
    cmocka_unit_test (test_a_million_extents_cost_one_node_each),
    cmocka_unit_test (test_an_unwritten_huge_volume_costs_no_map_memory),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
