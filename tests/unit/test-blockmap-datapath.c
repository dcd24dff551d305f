/* tests/unit/test-blockmap-datapath.c: resolving reads and writes
 * (blockmap/datapath.c) and the allocator behind them (alloc.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test-blockmap-util.h"

static struct tpool t;
static struct blockmap_volume *v;

static int
setup (void **state)
{
  (void) state;
  tpool_make (&t, 64 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 1 * GiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "v", &v), 0);
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  assert_int_equal (tpool_check (&t), 0);
  blockmap_volume_release (v);
  tpool_done (&t);
  return 0;
}

static uint64_t
extents (void)
{
  struct blockmap_volume_info vi;

  assert_int_equal (blockmap_volume_info (t.pool, "v", &vi), 0);
  return vi.extents;
}

static void
test_holes_read_as_none_runs (void **state)
{
  struct blockmap_run r[4];

  (void) state;
  assert_int_equal (blockmap_map_range (v, 4096, 3 * MiB, r, 4), 1);
  assert_int_equal (r[0].tier, BM_TIER_NONE);
  assert_int_equal (r[0].offset, 4096);
  assert_int_equal (r[0].length, 3 * MiB);
  assert_int_equal (extents (), 0);
}

static void
test_ranges_past_the_end_are_einval (void **state)
{
  struct blockmap_run r[4];

  (void) state;
  assert_int_equal (blockmap_map_range (v, GiB, 1, r, 4), -EINVAL);
  assert_int_equal (blockmap_map_range (v, GiB - 4096, 8192, r, 4), -EINVAL);
  assert_int_equal (blockmap_map_range (v, 0, 0, r, 4), -EINVAL);
  assert_int_equal (blockmap_write_prepare (v, GiB - 4096, 8192, r, 4), -EINVAL);
  assert_int_equal (blockmap_unmap (v, UINT64_MAX - 10, 20), -EINVAL);
}

static void
test_sequential_writes_give_one_extent (void **state)
{
  struct blockmap_run r[4];
  char buf[4096];

  (void) state;
  for (uint64_t off = 0; off < 16 * MiB; off += 4096)
    write_bytes (v, off, 4096, 's');
  assert_int_equal (extents (), 1);
  assert_int_equal (blockmap_map_range (v, 0, 16 * MiB, r, 4), 1);
  assert_int_equal (r[0].tier, BM_TIER_HOT);
  assert_int_equal (r[0].length, 16 * MiB);
  read_bytes (v, 5 * MiB + 4096, 4096, buf);
  assert_true (all_bytes (buf, 4096, 's'));
}

static void
test_scattered_writes_give_one_extent_each (void **state)
{
  (void) state;
  /* Every other chunk, backwards so no write has a mapped predecessor. */
  for (int i = 99; i >= 0; i--)
    write_bytes (v, (uint64_t) i * 2 * CS, 512, 'x');
  assert_int_equal (extents (), 100);
}

static void
test_a_write_is_placed_after_its_logical_predecessor (void **state)
{
  struct blockmap_run a, b, c;

  (void) state;
  a = prep1 (v, 10 * CS, 4096);
  c = prep1 (v, 500 * CS, 4096);        /* takes the next free chunk */
  b = prep1 (v, 11 * CS, 4096);         /* wants a's successor... */
  /* ...which c took, so it goes elsewhere; but 12 follows 11. */
  assert_int_equal (c.pool_offset, a.pool_offset + CS);
  assert_true (b.pool_offset != c.pool_offset);
  {
    struct blockmap_run d = prep1 (v, 12 * CS, 4096);
    assert_int_equal (d.pool_offset, b.pool_offset + CS);
  }
  assert_int_equal (extents (), 3);     /* 10, 11-12, 500 */
}

static void
test_two_volumes_written_sequentially_at_once_stay_few_extents (void **state)
{
  struct blockmap_volume *w;
  struct blockmap_volume_info vi;

  (void) state;
  assert_int_equal (blockmap_volume_create (t.pool, "w", GiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "w", &w), 0);
  for (uint64_t off = 0; off < 16 * MiB; off += CS) {
    write_bytes (v, off, CS, 'v');
    write_bytes (w, off, CS, 'w');
  }
  assert_true (extents () <= 2);
  assert_int_equal (blockmap_volume_info (t.pool, "w", &vi), 0);
  assert_true (vi.extents <= 2);
  blockmap_volume_release (w);
}

static void
test_map_range_cuts_the_last_run_at_max (void **state)
{
  struct blockmap_run r[3];
  uint64_t pos, end = 20 * CS;
  int n, calls = 0;

  (void) state;
  for (int i = 0; i < 10; i++)
    write_bytes (v, (uint64_t) i * 2 * CS, CS, 'm');
  /* 10 extents and 10 holes: 20 runs, fetched 3 at a time. */
  n = blockmap_map_range (v, 0, end, r, 3);
  assert_int_equal (n, 3);
  assert_int_equal (r[0].tier, BM_TIER_HOT);
  assert_int_equal (r[1].tier, BM_TIER_NONE);
  assert_int_equal (r[2].offset, 2 * CS);
  assert_int_equal (r[2].length, CS);
  for (pos = 0; pos < end; calls++) {
    n = blockmap_map_range (v, pos, end - pos, r, 3);
    assert_true (n >= 1 && n <= 3);
    for (int i = 0; i < n; i++) {
      assert_int_equal (r[i].offset, pos);
      pos += r[i].length;
    }
  }
  assert_int_equal (pos, end);
  assert_int_equal (calls, 7);
}

static void
test_write_prepare_cut_at_max_allocates_only_what_it_returns (void **state)
{
  struct blockmap_run r[2];
  struct blockmap_pool_info before, after;
  int n;

  (void) state;
  /* Chunks 1 and 3 mapped far apart: writing 0..4 needs 5 runs. */
  write_bytes (v, 3 * CS, CS, 'a');
  write_bytes (v, 1 * CS, CS, 'b');
  blockmap_pool_info (t.pool, &before);
  n = blockmap_write_prepare (v, 0, 5 * CS, r, 2);
  assert_int_equal (n, 2);
  assert_int_equal (r[0].offset, 0);
  blockmap_pool_info (t.pool, &after);
  /* Chunk 0 only was allocated (chunk 2 was not returned). */
  assert_int_equal (after.hot_used - before.hot_used, CS);
  assert_int_equal (r[1].offset + r[1].length, 2 * CS);
}

static void
test_enospc_allocates_nothing (void **state)
{
  struct blockmap_pool_info before, after;
  struct blockmap_run r[4];
  char buf[4096];

  (void) state;
  /* The pool has 64 MiB = 1024 chunks. */
  write_bytes (v, 0, 60 * MiB, 'f');
  blockmap_pool_info (t.pool, &before);
  assert_int_equal (before.hot_free, 4 * MiB);
  assert_int_equal (blockmap_write_prepare (v, 100 * MiB, 5 * MiB, r, 4),
                    -ENOSPC);
  blockmap_pool_info (t.pool, &after);
  assert_int_equal (after.hot_free, before.hot_free);
  assert_int_equal (after.extents, before.extents);
  /* What fits still works, and what was written is intact. */
  assert_int_equal (blockmap_write_prepare (v, 100 * MiB, 4 * MiB, r, 4), 1);
  assert_int_equal (blockmap_write_prepare (v, 200 * MiB, 4096, r, 4), -ENOSPC);
  read_bytes (v, 59 * MiB, 4096, buf);
  assert_true (all_bytes (buf, 4096, 'f'));
  /* Overwriting mapped chunks needs no space. */
  assert_int_equal (blockmap_write_prepare (v, 0, 60 * MiB, r, 4), 1);
}

static void
test_unmap_of_whole_chunks_makes_holes_and_leaves_partial_ones (void **state)
{
  struct blockmap_run r[8];
  int n;

  (void) state;
  write_bytes (v, 0, 4 * CS, 'u');
  /* From the middle of chunk 0 to the middle of chunk 3: only 1 and 2. */
  assert_int_equal (blockmap_unmap (v, CS / 2, 3 * CS), 0);
  n = blockmap_map_range (v, 0, 4 * CS, r, 8);
  assert_int_equal (n, 3);
  assert_int_equal (r[0].tier, BM_TIER_HOT);
  assert_int_equal (r[0].length, CS);
  assert_int_equal (r[1].tier, BM_TIER_NONE);
  assert_int_equal (r[1].length, 2 * CS);
  assert_int_equal (r[2].tier, BM_TIER_HOT);
  assert_int_equal (extents (), 2);
  /* Less than a chunk: nothing. */
  assert_int_equal (blockmap_unmap (v, 0, CS - 4096), 0);
  assert_int_equal (extents (), 2);
  assert_int_equal (blockmap_unmap (v, 0, 4 * CS), 0);
  assert_int_equal (extents (), 0);
}

static void
test_the_partial_last_chunk_of_a_volume_can_be_unmapped (void **state)
{
  struct blockmap_volume *w;
  struct blockmap_volume_info vi;

  (void) state;
  assert_int_equal (blockmap_volume_create (t.pool, "odd", CS + 8192, "ssd",
                                            NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "odd", &w), 0);
  write_bytes (w, 0, CS + 8192, 'o');
  assert_int_equal (blockmap_volume_info (t.pool, "odd", &vi), 0);
  assert_int_equal (vi.allocated, 2 * CS);
  assert_int_equal (blockmap_unmap (w, CS, 8192), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "odd", &vi), 0);
  assert_int_equal (vi.allocated, CS);
  blockmap_volume_release (w);
}

static void
test_used_and_free_add_up_to_the_capacity (void **state)
{
  struct blockmap_pool_info info;

  (void) state;
  write_bytes (v, 0, 3 * MiB, 'c');
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.hot_used, 3 * MiB);
  assert_int_equal (info.hot_used + info.hot_free, info.hot_capacity);
  assert_int_equal (blockmap_unmap (v, 0, 3 * MiB), 0);
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.hot_used, 3 * MiB);         /* pending */
  assert_int_equal (info.pending_chunks, 3 * MiB / CS);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.hot_used, 0);
  assert_int_equal (info.pending_chunks, 0);
}

/* server/readahead.c keeps data it read ahead only while the stamp
 * stands still: every way the contents can change must move it, and
 * reads must not.
 */
static void
test_the_stamp_moves_on_every_change_and_not_on_reads (void **state)
{
  struct blockmap_run r[4];
  uint64_t s;

  (void) state;
  s = blockmap_volume_stamp (v);
  assert_int_equal (blockmap_map_range (v, 0, MiB, r, 4), 1);
  assert_true (blockmap_volume_stamp (v) == s);

  assert_int_equal (blockmap_write_begin (v), 0);
  write_bytes (v, 0, MiB, 'a');                 /* a map record */
  assert_true (blockmap_volume_stamp (v) > s);
  s = blockmap_volume_stamp (v);
  blockmap_write_end (v);
  assert_true (blockmap_volume_stamp (v) > s);

  s = blockmap_volume_stamp (v);
  assert_int_equal (blockmap_unmap (v, 0, CS), 0);
  assert_true (blockmap_volume_stamp (v) > s);

  s = blockmap_volume_stamp (v);
  assert_int_equal (blockmap_volume_resize (t.pool, "v", 2 * GiB, false), 0);
  assert_true (blockmap_volume_stamp (v) > s);

  s = blockmap_volume_stamp (v);
  assert_int_equal (blockmap_volume_delete (t.pool, "v", true), 0);
  assert_true (blockmap_volume_stamp (v) > s);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
    T (test_holes_read_as_none_runs),
    T (test_ranges_past_the_end_are_einval),
    T (test_sequential_writes_give_one_extent),
    T (test_scattered_writes_give_one_extent_each),
    T (test_a_write_is_placed_after_its_logical_predecessor),
    T (test_two_volumes_written_sequentially_at_once_stay_few_extents),
    T (test_map_range_cuts_the_last_run_at_max),
    T (test_write_prepare_cut_at_max_allocates_only_what_it_returns),
    T (test_enospc_allocates_nothing),
    T (test_unmap_of_whole_chunks_makes_holes_and_leaves_partial_ones),
    T (test_the_partial_last_chunk_of_a_volume_can_be_unmapped),
    T (test_used_and_free_add_up_to_the_capacity),
    T (test_the_stamp_moves_on_every_change_and_not_on_reads),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
