/* tests/unit/test-blockmap-refcount.c: reference counts, the
 * copy-on-write protocol, freed chunks' grace period, and pool check
 * (blockmap/refcount.c, alloc.c, datapath.c, check.c).
 *
 * There are no snapshots yet; blockmap_test_share_range makes a second
 * volume point at the same chunks, as a snapshot will.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test-blockmap-util.h"

static struct tpool t;
static struct blockmap_volume *a, *b;

static int
setup (void **state)
{
  (void) state;
  tpool_make (&t, 64 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "a", 64 * MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_create (t.pool, "b", 64 * MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "a", &a), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "b", &b), 0);
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  assert_int_equal (tpool_check (&t), 0);
  blockmap_volume_release (a);
  blockmap_volume_release (b);
  tpool_done (&t);
  return 0;
}

static uint64_t
pchunk_of (struct blockmap_volume *v, uint64_t off)
{
  struct blockmap_run r[1];

  assert_int_equal (blockmap_map_range (v, off, 4096, r, 1), 1);
  assert_int_equal (r[0].tier, BM_TIER_HOT);
  return r[0].pool_offset / CS;
}

static uint64_t
refs_of (uint64_t p)
{
  struct rnode *n = rtree_lookup (&t.pool->hot.refs, p);
  return n ? n->val : 0;
}

static void
test_shared_chunks_count_two_references (void **state)
{
  (void) state;
  write_bytes (a, 0, 4 * CS, 'a');
  assert_int_equal (blockmap_test_share_range (t.pool, "a", "b", 0, 4), 0);
  assert_int_equal (pchunk_of (b, 2 * CS), pchunk_of (a, 2 * CS));
  assert_int_equal (refs_of (pchunk_of (a, 0)), 2);
  assert_int_equal (tpool_check (&t), 0);
  /* Unmapping one side drops the count back to one; nothing is freed. */
  assert_int_equal (blockmap_unmap (b, 0, CS), 0);
  assert_int_equal (refs_of (pchunk_of (a, 0)), 1);
  assert_int_equal (t.pool->hot.pending_chunks, 0);
}

static void
test_a_write_to_a_shared_chunk_is_copied_on_write (void **state)
{
  struct blockmap_run r[4], again[4];
  uint64_t oldp;
  int fd = blockmap_pool_data_fd (t.pool, BM_TIER_HOT);
  char chunk[CS], buf[4096];

  (void) state;
  write_bytes (a, 0, 2 * CS, 'o');
  assert_int_equal (blockmap_test_share_range (t.pool, "a", "b", 0, 2), 0);
  oldp = pchunk_of (a, CS);

  /* A write of 4K in the middle of chunk 1. */
  assert_int_equal (blockmap_write_prepare (a, CS + 8192, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, BM_RUN_COW);
  assert_int_equal (r[0].offset, CS + 8192);
  assert_int_equal (r[0].length, 4096);
  assert_int_equal (r[0].cow_src_offset, oldp * CS);
  assert_int_equal (r[0].pool_offset % CS, 0);
  assert_true (r[0].pool_offset != oldp * CS);

  /* Until the commit: reads see the old chunk, writes wait. */
  assert_int_equal (pchunk_of (a, CS), oldp);
  assert_int_equal (blockmap_write_prepare (a, CS, 4096, again, 4), -EAGAIN);
  assert_int_equal (blockmap_write_prepare (a, 0, 2 * CS, again, 4), -EAGAIN);
  assert_int_equal (blockmap_write_prepare (b, CS, 4096, again, 4) >= 1, 1);
  blockmap_cow_abort (b, &again[0]);    /* b's own CoW: not wanted */

  /* The caller copies and writes, then commits. */
  assert_int_equal (pread (fd, chunk, CS, r[0].cow_src_offset), CS);
  memset (chunk + 8192, 'n', 4096);
  assert_int_equal (pwrite (fd, chunk, CS, r[0].pool_offset), CS);
  assert_int_equal (blockmap_cow_commit (a, &r[0]), 0);

  assert_int_equal (pchunk_of (a, CS), r[0].pool_offset / CS);
  assert_int_equal (pchunk_of (b, CS), oldp);
  assert_int_equal (refs_of (oldp), 1);
  assert_int_equal (refs_of (r[0].pool_offset / CS), 1);
  read_bytes (a, CS + 8192, 4096, buf);
  assert_true (all_bytes (buf, 4096, 'n'));
  read_bytes (a, CS, 4096, buf);
  assert_true (all_bytes (buf, 4096, 'o'));
  read_bytes (b, CS + 8192, 4096, buf);
  assert_true (all_bytes (buf, 4096, 'o'));
  /* Now private: written in place. */
  assert_int_equal (blockmap_write_prepare (a, CS, 4096, again, 4), 1);
  assert_int_equal (again[0].flags, 0);
  /* Committing the same run twice is refused. */
  assert_int_equal (blockmap_cow_commit (a, &r[0]), -EINVAL);
}

static void
test_a_long_write_over_shared_chunks_gets_one_cow_run_per_chunk (void **state)
{
  struct blockmap_run r[8];
  int n;

  (void) state;
  write_bytes (a, 0, 4 * CS, 'x');
  assert_int_equal (blockmap_test_share_range (t.pool, "a", "b", 1, 2), 0);
  n = blockmap_write_prepare (a, 0, 4 * CS, r, 8);
  assert_int_equal (n, 4);
  assert_int_equal (r[0].flags, 0);
  assert_int_equal (r[1].flags, BM_RUN_COW);
  assert_int_equal (r[2].flags, BM_RUN_COW);
  assert_int_equal (r[3].flags, 0);
  assert_int_equal (r[1].length, CS);
  assert_int_equal (t.pool->hot.reserved_chunks, 2);
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_cow_commit (a, &r[1]), 0);
  blockmap_cow_abort (a, &r[2]);
  assert_int_equal (t.pool->hot.reserved_chunks, 0);
  assert_int_equal (refs_of (pchunk_of (a, 2 * CS)), 2);
  assert_int_equal (refs_of (pchunk_of (a, CS)), 1);
}

static void
test_a_commit_after_the_other_side_let_go_frees_the_old_chunk (void **state)
{
  struct blockmap_run r[4];
  uint64_t oldp;

  (void) state;
  write_bytes (a, 0, CS, 'x');
  assert_int_equal (blockmap_test_share_range (t.pool, "a", "b", 0, 1), 0);
  oldp = pchunk_of (a, 0);
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, BM_RUN_COW);
  assert_int_equal (blockmap_volume_delete (t.pool, "b", true), 0);
  assert_int_equal (refs_of (oldp), 1);
  assert_int_equal (blockmap_cow_commit (a, &r[0]), 0);
  assert_int_equal (refs_of (oldp), 0);
  assert_int_equal (t.pool->hot.pending_chunks, 1);
}

/* Found by test-blockmap-random: b copies its shared chunk, then a
 * wrote the chunk in place, as its count was one; after a crash b's
 * durable map pointed at the chunk again, now holding a's data.
 */
static void
test_a_chunk_unshared_by_a_change_not_yet_durable_is_still_copied (void **state)
{
  struct blockmap_run r[4];
  uint64_t oldp;

  (void) state;
  write_bytes (a, 0, CS, 's');
  assert_int_equal (blockmap_test_share_range (t.pool, "a", "b", 0, 1), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  oldp = pchunk_of (a, 0);
  write_bytes (b, 0, 4096, 'b');            /* b copies and commits */
  assert_int_equal (refs_of (oldp), 1);
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, BM_RUN_COW);
  blockmap_cow_abort (a, &r[0]);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  /* Durable now: a writes in place. */
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, 0);
  assert_int_equal (r[0].pool_offset, oldp * CS);
}

static void
test_a_cow_write_needs_space_for_the_copy (void **state)
{
  struct blockmap_run r[4];

  (void) state;
  write_bytes (a, 0, 64 * MiB, 'x');        /* fills the pool */
  assert_int_equal (blockmap_test_share_range (t.pool, "a", "b", 0, 1), 0);
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), -ENOSPC);
  assert_int_equal (t.pool->hot.reserved_chunks, 0);
  assert_int_equal (blockmap_write_prepare (a, CS, 4096, r, 4), 1);
}

static void
test_a_freed_chunk_is_not_reused_before_sync (void **state)
{
  uint64_t p, q;

  (void) state;
  write_bytes (a, 0, CS, 'f');
  p = pchunk_of (a, 0);
  assert_int_equal (blockmap_unmap (a, 0, CS), 0);
  write_bytes (a, 10 * CS, CS, 'g');
  q = pchunk_of (a, 10 * CS);
  assert_true (q != p);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  write_bytes (a, 20 * CS, CS, 'h');
  assert_int_equal (pchunk_of (a, 20 * CS), p);   /* lowest free again */
}

static void
test_a_freed_chunk_waits_for_io_begun_before_the_free (void **state)
{
  uint64_t p, before, after;

  (void) state;
  write_bytes (a, 0, CS, 'f');
  p = pchunk_of (a, 0);
  before = blockmap_io_begin (t.pool);      /* a read of chunk 0 */
  assert_int_equal (blockmap_unmap (a, 0, CS), 0);
  after = blockmap_io_begin (t.pool);       /* begun after the free */
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (t.pool->hot.pending_chunks, 1);
  write_bytes (a, 10 * CS, CS, 'g');
  assert_true (pchunk_of (a, 10 * CS) != p);
  blockmap_io_end (t.pool, before);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  /* Only the older I/O held it back. */
  assert_int_equal (t.pool->hot.pending_chunks, 0);
  write_bytes (a, 20 * CS, CS, 'h');
  assert_int_equal (pchunk_of (a, 20 * CS), p);
  blockmap_io_end (t.pool, after);
}

static void
test_a_reused_chunk_reads_as_zero (void **state)
{
  char buf[CS];
  uint64_t p;

  (void) state;
  write_bytes (a, 0, CS, 'z');
  p = pchunk_of (a, 0);
  assert_int_equal (blockmap_unmap (a, 0, CS), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  write_bytes (b, 0, 4096, 'w');          /* only 4K of the chunk */
  assert_int_equal (pchunk_of (b, 0), p);
  read_bytes (b, 0, CS, buf);
  assert_true (all_bytes (buf, 4096, 'w'));
  assert_true (all_bytes (buf + 4096, CS - 4096, 0));
}

static void
test_deleting_a_volume_frees_its_chunks_after_sync (void **state)
{
  struct blockmap_pool_info info;

  (void) state;
  write_bytes (a, 0, 8 * MiB, 'd');
  blockmap_volume_release (a);
  assert_int_equal (blockmap_volume_delete (t.pool, "a", false), 0);
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.hot_used, 8 * MiB);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.hot_used, 0);
  assert_int_equal (blockmap_volume_create (t.pool, "a", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "a", &a), 0);
}

static int nproblems;
static char last_problem[512];

static void
remember (void *opaque, const char *msg)
{
  (void) opaque;
  nproblems++;
  snprintf (last_problem, sizeof last_problem, "%s", msg);
}

static void
test_pool_check_reports_a_corrupted_refcount (void **state)
{
  uint64_t p;

  (void) state;
  write_bytes (a, 0, 4 * CS, 'c');
  p = pchunk_of (a, CS);
  assert_int_equal (blockmap_pool_check (t.pool, remember, NULL), 0);
  blockmap_test_corrupt_refcount (t.pool, p, +1);
  nproblems = 0;
  assert_true (blockmap_pool_check (t.pool, remember, NULL) >= 1);
  assert_true (nproblems >= 1);
  fprintf (stderr, "check said: %s\n", last_problem);
  assert_non_null (strstr (last_problem, "reference count"));
  blockmap_test_corrupt_refcount (t.pool, p, -1);
  assert_int_equal (blockmap_pool_check (t.pool, remember, NULL), 0);
  /* A count dropped to zero: referenced yet counted as nothing. */
  blockmap_test_corrupt_refcount (t.pool, p, -1);
  nproblems = 0;
  assert_true (blockmap_pool_check (t.pool, remember, NULL) >= 1);
  blockmap_test_corrupt_refcount (t.pool, p, +1);
}

static void
test_pool_check_reports_a_chunk_both_free_and_referenced (void **state)
{
  uint64_t p;

  (void) state;
  write_bytes (a, 0, CS, 'c');
  p = pchunk_of (a, 0);
  rtree_add_range (&t.pool->hot.free, p, 1, 0, 0, 0);
  nproblems = 0;
  assert_true (blockmap_pool_check (t.pool, remember, NULL) >= 1);
  fprintf (stderr, "check said: %s\n", last_problem);
  rtree_remove_range (&t.pool->hot.free, p, 1, NULL, NULL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
    T (test_shared_chunks_count_two_references),
    T (test_a_write_to_a_shared_chunk_is_copied_on_write),
    T (test_a_long_write_over_shared_chunks_gets_one_cow_run_per_chunk),
    T (test_a_commit_after_the_other_side_let_go_frees_the_old_chunk),
    T (test_a_chunk_unshared_by_a_change_not_yet_durable_is_still_copied),
    T (test_a_cow_write_needs_space_for_the_copy),
    T (test_a_freed_chunk_is_not_reused_before_sync),
    T (test_a_freed_chunk_waits_for_io_begun_before_the_free),
    T (test_a_reused_chunk_reads_as_zero),
    T (test_deleting_a_volume_frees_its_chunks_after_sync),
    T (test_pool_check_reports_a_corrupted_refcount),
    T (test_pool_check_reports_a_chunk_both_free_and_referenced),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
