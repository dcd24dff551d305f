/* tests/unit/test-blockmap-snapshot.c: snapshots and clones of volumes
 * (blockmap_volume_clone, DESIGN invariant 3): copy-on-write through
 * shared map nodes (rtree.c, extent.c, datapath.c), constant-time
 * creation, deletes of either side, the version 2 checkpoint and
 * journal replay of VOL_CLONE, blockmap_diff, the background reaper
 * (reap.c), write quiescing while a snapshot is taken (volume.c), and
 * pool check of node share counts (check.c).
 *
 * Many tests write only the first 4K of a chunk ("heads"): a volume of
 * thousands of scattered extents then costs a few MiB of I/O.  The rest
 * of such a chunk is never written, so a copy-on-write of it has nothing
 * else to copy (its new chunk reads as zero).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common/cleanup.h"
#include "test-blockmap-util.h"

static struct tpool t;

static int
setup (void **state)
{
  (void) state;
  tpool_make (&t, 2 * GiB);
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  if (t.pool)
    assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
  return 0;
}

/* ---- helpers --------------------------------------------------------- */

static struct blockmap_volume *
vopen (const char *name)
{
  struct blockmap_volume *v;

  assert_int_equal (blockmap_volume_open (t.pool, name, &v), 0);
  return v;
}

static void
vcreate (const char *name, uint64_t size)
{
  assert_int_equal (blockmap_volume_create (t.pool, name, size, "ssd", NULL),
                    0);
}

/* Snapshot SRC as FULL ("SRC@NAME"). */
static void
snap (const char *src, const char *full)
{
  assert_int_equal (blockmap_volume_clone (t.pool, src, full, 0, NULL, NULL,
                                           true), 0);
}

static struct blockmap_pool_info
pinfo (void)
{
  struct blockmap_pool_info i;

  blockmap_pool_info (t.pool, &i);
  return i;
}

static struct blockmap_volume_info
vinfo (const char *name)
{
  struct blockmap_volume_info i;

  assert_int_equal (blockmap_volume_info (t.pool, name, &i), 0);
  return i;
}

/* True if [OFF, OFF+LEN) of V reads as BYTE throughout. */
static bool
reads_as (struct blockmap_volume *v, uint64_t off, uint64_t len, int byte)
{
  char *buf = malloc (len);
  bool ok;

  assert_non_null (buf);
  read_bytes (v, off, len, buf);
  ok = all_bytes (buf, len, byte);
  free (buf);
  return ok;
}

static uint64_t
pchunk_of (struct blockmap_volume *v, uint64_t l)
{
  struct blockmap_run r[1];

  assert_int_equal (blockmap_map_range (v, l * CS, 4096, r, 1), 1);
  assert_int_equal (r[0].tier, BM_TIER_HOT);
  return r[0].pool_offset / CS;
}

/* Write BYTE over the first 4K of chunk L of V, the way the server
 * does (copy-on-write included: see the note at the top).
 */
static void
write_head (struct blockmap_volume *v, uint64_t l, int byte)
{
  int fd = blockmap_pool_data_fd (t.pool, BM_TIER_HOT);
  uint64_t tok = blockmap_io_begin (t.pool);
  struct blockmap_run r;
  char buf[4096];

  memset (buf, byte, sizeof buf);
  r = prep1 (v, l * CS, sizeof buf);
  assert_int_equal (r.offset, l * CS);
  assert_int_equal (pwrite (fd, buf, sizeof buf, r.pool_offset),
                    (ssize_t) sizeof buf);
  if (r.flags & BM_RUN_COW)
    assert_int_equal (blockmap_cow_commit (v, &r), 0);
  blockmap_io_end (t.pool, tok);
}

/* The byte the first 4K of chunk L of V holds throughout (0: zero or a
 * hole), or -1 if it is not one byte throughout.
 */
static int
head_of (struct blockmap_volume *v, uint64_t l)
{
  char buf[4096];

  read_bytes (v, l * CS, sizeof buf, buf);
  return all_bytes (buf, sizeof buf, buf[0]) ? (unsigned char) buf[0] : -1;
}

/* Every chunk head of V (NCH chunks) against MODEL; prints the first
 * difference.
 */
static bool
heads_match (struct blockmap_volume *v, const unsigned char *model,
             uint64_t nch)
{
  for (uint64_t l = 0; l < nch; l++) {
    int h = head_of (v, l);
    if (h != model[l]) {
      fprintf (stderr, "%s: chunk %" PRIu64 " reads %d, expected %d\n",
               blockmap_volume_name (v), l, h, model[l]);
      return false;
    }
  }
  return true;
}

/* Map chunk L of V without writing data (it reads as zero). */
static void
map_only (struct blockmap_volume *v, uint64_t l)
{
  struct blockmap_run r = prep1 (v, l * CS, 4096);

  assert_int_equal (r.flags, 0);
}

/* Nodes of the tree at N reachable only through unshared nodes: the
 * ones that only this map has.  Pool lock held.
 */
static uint64_t
private_nodes (const struct rnode *n)
{
  if (n == NULL || n->refs > 1)
    return 0;
  return 1 + private_nodes (n->left) + private_nodes (n->right);
}

static uint64_t
private_nodes_of (const char *name)
{
  LOCK_FOR_SCOPE (&t.pool->lock);
  struct blockmap_volume *v = pool_find_volume (t.pool, name);

  assert_non_null (v);
  return private_nodes (v->map.root);
}

static int
count_one (void *opaque, const struct rnode *n)
{
  (void) n;
  (*(uint64_t *) opaque)++;
  return 0;
}

/* Distinct map nodes across the pool (shared ones once). */
static uint64_t
distinct_map_nodes (void)
{
  LOCK_FOR_SCOPE (&t.pool->lock);
  uint64_t n = 0;

  pool_walk_distinct (t.pool, count_one, &n);
  return n;
}

/* Map nodes if no volume shared any: the sum of every map's size. */
static uint64_t
unshared_map_nodes (void)
{
  LOCK_FOR_SCOPE (&t.pool->lock);
  uint64_t n = 0;

  for (size_t i = 0; i < t.pool->nvols; i++)
    n += t.pool->by_id[i]->map.nodes;
  return n;
}

/* Reap while there is work that can be done now.  Returns how many
 * subtrees are still queued (those waiting for a sync, or for I/O).
 */
static uint64_t
reap_all (void)
{
  for (int i = 0; i < 100000 && blockmap_pool_reap_wanted (t.pool); i++)
    blockmap_pool_reap (t.pool, 1000);
  assert_false (blockmap_pool_reap_wanted (t.pool));
  return pinfo ().reap_pending;
}

/* Problems blockmap_pool_check reports, remembered. */
static int nproblems;
static char problems[4096];

static void
remember (void *opaque, const char *msg)
{
  size_t len = strlen (problems);

  (void) opaque;
  nproblems++;
  fprintf (stderr, "check: %s\n", msg);
  snprintf (problems + len, sizeof problems - len, "%s\n", msg);
}

static int
check_remembering (void)
{
  nproblems = 0;
  problems[0] = '\0';
  return blockmap_pool_check (t.pool, remember, NULL);
}

/* ---- 1. copy-on-write ------------------------------------------------ */

static void
test_a_snapshot_keeps_the_old_data_when_its_volume_overwrites_it (void **state)
{
  struct blockmap_volume *a, *s;
  struct blockmap_run r[4];
  uint64_t old1;

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  write_bytes (a, 0, 4 * CS, 'o');
  snap ("a", "a@s");
  s = vopen ("a@s");
  assert_int_equal (pchunk_of (s, 1), pchunk_of (a, 1));
  old1 = pchunk_of (a, 1);

  /* Partial overwrite of chunk 1: a copy-on-write run for just 4K of
   * it, from the old chunk to a new one.
   */
  assert_int_equal (blockmap_write_prepare (a, CS + 8192, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, BM_RUN_COW);
  assert_int_equal (r[0].offset, CS + 8192);
  assert_int_equal (r[0].length, 4096);
  assert_int_equal (r[0].cow_src_offset, old1 * CS);
  assert_true (r[0].pool_offset / CS != old1);
  blockmap_cow_abort (a, &r[0]);
  write_bytes (a, CS + 8192, 4096, 'n');
  /* Now private to the volume: written in place. */
  assert_int_equal (blockmap_write_prepare (a, CS, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, 0);
  assert_int_equal (pchunk_of (s, 1), old1);
  assert_true (pchunk_of (a, 1) != old1);

  /* Full overwrite of chunk 2. */
  assert_int_equal (blockmap_write_prepare (a, 2 * CS, CS, r, 4), 1);
  assert_int_equal (r[0].flags, BM_RUN_COW);
  assert_int_equal (r[0].length, CS);
  blockmap_cow_abort (a, &r[0]);
  write_bytes (a, 2 * CS, CS, 'f');

  assert_true (reads_as (s, 0, 4 * CS, 'o'));
  assert_true (reads_as (s, 4 * CS, 60 * CS, 0));
  assert_true (reads_as (a, 0, CS + 8192, 'o'));
  assert_true (reads_as (a, CS + 8192, 4096, 'n'));
  assert_true (reads_as (a, CS + 12288, CS - 12288, 'o'));
  assert_true (reads_as (a, 2 * CS, CS, 'f'));
  assert_true (reads_as (a, 3 * CS, CS, 'o'));
  assert_int_equal (tpool_check (&t), 0);

  blockmap_volume_release (s);
  blockmap_volume_release (a);
}

static void
test_a_long_write_copies_only_the_shared_chunk (void **state)
{
  struct blockmap_volume *b, *s;
  struct blockmap_run r[8];
  uint64_t covered = 0;
  int n, ncow = 0;

  (void) state;
  vcreate ("b", 64 * CS);
  b = vopen ("b");
  write_bytes (b, 2 * CS, CS, 'x');
  snap ("b", "b@s");
  s = vopen ("b@s");
  /* Chunks 0, 1 and 3 are written after the snapshot: private. */
  write_bytes (b, 0, 2 * CS, 'y');
  write_bytes (b, 3 * CS, CS, 'y');

  n = blockmap_write_prepare (b, 0, 4 * CS, r, 8);
  assert_true (n >= 3);
  for (int i = 0; i < n; i++) {
    assert_int_equal (r[i].offset, covered);
    covered += r[i].length;
    if (r[i].flags & BM_RUN_COW) {
      ncow++;
      assert_int_equal (r[i].offset, 2 * CS);
      assert_int_equal (r[i].length, CS);
      assert_int_equal (r[i].cow_src_offset, pchunk_of (s, 2) * CS);
      blockmap_cow_abort (b, &r[i]);
    }
    else
      assert_int_equal (r[i].flags, 0);
  }
  assert_int_equal (covered, 4 * CS);
  assert_int_equal (ncow, 1);

  write_bytes (b, 0, 4 * CS, 'z');
  assert_true (reads_as (b, 0, 4 * CS, 'z'));
  assert_true (reads_as (s, 0, 2 * CS, 0));
  assert_true (reads_as (s, 2 * CS, CS, 'x'));
  assert_true (reads_as (s, 3 * CS, CS, 0));
  blockmap_volume_release (s);
  blockmap_volume_release (b);
}

/* ---- 2. constant-time creation -------------------------------------- */

static void
test_a_snapshot_costs_the_same_for_one_extent_and_twenty_thousand (void **state)
{
  const uint64_t many = 20000;
  struct blockmap_volume *one, *big;
  uint64_t used, jlen, jsmall, jbig;

  (void) state;
  vcreate ("one", 2 * many * CS);
  vcreate ("big", 2 * many * CS);
  one = vopen ("one");
  big = vopen ("big");
  map_only (one, 0);
  for (uint64_t l = 0; l < many; l++)
    map_only (big, 2 * l);      /* every other chunk: no merging */
  assert_int_equal (vinfo ("one").extents, 1);
  assert_int_equal (vinfo ("big").extents, many);

  used = t.pool->slab.used;
  jlen = t.pool->jbuf.len;
  snap ("one", "one@s");
  assert_int_equal (t.pool->slab.used, used);
  jsmall = t.pool->jbuf.len - jlen;

  used = t.pool->slab.used;
  jlen = t.pool->jbuf.len;
  snap ("big", "big@s");
  assert_int_equal (t.pool->slab.used, used);
  jbig = t.pool->jbuf.len - jlen;

  assert_true (jsmall > 0);
  assert_int_equal (jbig, jsmall);
  assert_int_equal (vinfo ("big@s").extents, many);
  assert_int_equal (vinfo ("big@s").allocated, many * CS);
  assert_true (vinfo ("big@s").readonly);
  blockmap_volume_release (one);
  blockmap_volume_release (big);
}

/* ---- 3. clones and what a snapshot refuses -------------------------- */

static void
test_a_clone_is_a_writable_copy_of_a_snapshot (void **state)
{
  struct blockmap_volume *a, *s, *c;
  struct blockmap_volume_info si, ci;

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  write_bytes (a, 0, 4 * CS, 'a');
  snap ("a", "a@s");
  assert_int_equal (blockmap_volume_clone (t.pool, "a@s", "c", 32 * CS,
                                           NULL, NULL, false), -EINVAL);
  assert_int_equal (blockmap_volume_clone (t.pool, "a@s", "c", 128 * CS,
                                           NULL, NULL, false), 0);
  s = vopen ("a@s");
  c = vopen ("c");
  si = vinfo ("a@s");
  ci = vinfo ("c");
  assert_true (si.readonly);
  assert_int_equal (si.origin, vinfo ("a").id);
  assert_false (ci.readonly);
  assert_int_equal (ci.origin, si.id);
  assert_int_equal (ci.size, 128 * CS);
  assert_string_equal (ci.type, "ssd");
  assert_int_equal (blockmap_volume_size (c), 128 * CS);

  assert_true (reads_as (c, 0, 4 * CS, 'a'));
  assert_true (reads_as (c, 4 * CS, 124 * CS, 0));   /* grown: zeros */

  assert_int_equal (blockmap_write_begin (c), 0);
  write_bytes (c, 0, 4096, 'c');
  write_bytes (c, 100 * CS, CS, 'g');
  blockmap_write_end (c);
  assert_true (reads_as (c, 0, 4096, 'c'));
  assert_true (reads_as (c, 4096, 4 * CS - 4096, 'a'));
  assert_true (reads_as (c, 100 * CS, CS, 'g'));
  assert_true (reads_as (s, 0, 4 * CS, 'a'));
  assert_true (reads_as (a, 0, 4 * CS, 'a'));
  assert_int_equal (blockmap_unmap (c, CS, CS), 0);
  assert_true (reads_as (c, CS, CS, 0));
  assert_true (reads_as (s, CS, CS, 'a'));
  /* A clone may grow like any volume. */
  assert_int_equal (blockmap_volume_resize (t.pool, "c", 256 * CS, false), 0);

  /* A clone of the live volume is independent of it too. */
  assert_int_equal (blockmap_volume_clone (t.pool, "a", "d", 0, NULL, NULL,
                                           false), 0);
  write_bytes (a, 0, CS, 'A');
  {
    struct blockmap_volume *d = vopen ("d");
    assert_true (reads_as (d, 0, 4 * CS, 'a'));
    blockmap_volume_release (d);
  }
  assert_true (reads_as (s, 0, 4 * CS, 'a'));
  assert_int_equal (tpool_check (&t), 0);

  blockmap_volume_release (c);
  blockmap_volume_release (s);
  blockmap_volume_release (a);
}

static void
test_bad_snapshot_and_clone_names_are_refused (void **state)
{
  (void) state;
  vcreate ("a", 64 * CS);
  vcreate ("b", 64 * CS);
  snap ("a", "a@s");
#define CLONE(src, name, snapshot)                                      \
  blockmap_volume_clone (t.pool, src, name, 0, NULL, NULL, snapshot)
  /* No snapshot of a snapshot. */
  assert_int_equal (CLONE ("a@s", "a@s@t", true), -EINVAL);
  assert_int_equal (CLONE ("a@s", "a@t", true), -EINVAL);
  /* A snapshot is named SRC@NAME, NAME a valid volume name. */
  assert_int_equal (CLONE ("a", "t", true), -EINVAL);
  assert_int_equal (CLONE ("a", "b@t", true), -EINVAL);
  assert_int_equal (CLONE ("a", "ab@t", true), -EINVAL);
  assert_int_equal (CLONE ("a", "a@", true), -EINVAL);
  assert_int_equal (CLONE ("a", "a@.t", true), -EINVAL);
  assert_int_equal (CLONE ("a", "a@t@u", true), -EINVAL);
  assert_int_equal (CLONE ("a", "a@s", true), -EEXIST);
  assert_int_equal (CLONE ("nope", "nope@s", true), -ENOENT);
  /* A clone's name has no '@'. */
  assert_int_equal (CLONE ("a@s", "c@x", false), -EINVAL);
  assert_int_equal (CLONE ("a", "a@x", false), -EINVAL);
  assert_int_equal (CLONE ("a", "b", false), -EEXIST);
#undef CLONE
  assert_int_equal (pinfo ().volumes, 3);
  assert_int_equal (vinfo ("a@s").readonly, true);
}

static void
test_a_snapshot_refuses_every_change (void **state)
{
  struct blockmap_volume *a, *s;
  struct blockmap_run r[4];

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  write_bytes (a, 0, 2 * CS, 'a');
  snap ("a", "a@s");
  s = vopen ("a@s");
  assert_int_equal (blockmap_write_prepare (s, 0, 4096, r, 4), -EROFS);
  assert_int_equal (blockmap_write_prepare (s, 10 * CS, CS, r, 4), -EROFS);
  assert_int_equal (blockmap_unmap (s, 0, 2 * CS), -EROFS);
  assert_int_equal (blockmap_write_begin (s), -EROFS);
  assert_int_equal (blockmap_volume_resize (t.pool, "a@s", 128 * CS, false),
                    -EROFS);
  assert_int_equal (blockmap_volume_resize (t.pool, "a@s", 32 * CS, true),
                    -EROFS);
  assert_int_equal (vinfo ("a@s").size, 64 * CS);
  assert_int_equal (vinfo ("a@s").allocated, 2 * CS);
  assert_true (reads_as (s, 0, 2 * CS, 'a'));
  /* The volume itself is still writable. */
  assert_int_equal (blockmap_write_begin (a), 0);
  blockmap_write_end (a);
  blockmap_volume_release (s);
  blockmap_volume_release (a);
}

/* ---- 4. deleting either side ---------------------------------------- */

static void
test_deleting_the_origin_keeps_its_snapshot_and_clone (void **state)
{
  struct blockmap_volume *a, *s, *c;

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  write_bytes (a, 0, 8 * CS, 'a');
  snap ("a", "a@s");
  assert_int_equal (blockmap_volume_clone (t.pool, "a@s", "c", 0, NULL, NULL,
                                           false), 0);
  c = vopen ("c");
  write_bytes (c, 0, CS, 'c');
  write_bytes (a, CS, CS, 'A');
  blockmap_volume_release (c);
  blockmap_volume_release (a);
  assert_int_equal (tpool_check (&t), 0);

  assert_int_equal (blockmap_volume_delete (t.pool, "a", false), 0);
  reap_all ();
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (reap_all (), 0);
  assert_int_equal (tpool_check (&t), 0);
  s = vopen ("a@s");
  c = vopen ("c");
  assert_true (reads_as (s, 0, 8 * CS, 'a'));
  assert_true (reads_as (c, 0, CS, 'c'));
  assert_true (reads_as (c, CS, 7 * CS, 'a'));
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (tpool_check (&t), 0);
  /* What a@s and c share is counted once: 8 + 1 chunks. */
  assert_int_equal (pinfo ().hot_used, 9 * CS);
  blockmap_volume_release (s);
  blockmap_volume_release (c);

  /* A snapshot whose volume is gone, through a checkpoint. */
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  tpool_reopen (&t);
  assert_int_equal (tpool_check (&t), 0);
  s = vopen ("a@s");
  c = vopen ("c");
  assert_true (vinfo ("a@s").readonly);
  assert_true (reads_as (s, 0, 8 * CS, 'a'));
  assert_true (reads_as (c, 0, CS, 'c'));
  assert_true (reads_as (c, CS, 7 * CS, 'a'));
  blockmap_volume_release (s);
  blockmap_volume_release (c);

  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", false), 0);
  reap_all ();
  assert_int_equal (tpool_check (&t), 0);
  c = vopen ("c");
  assert_true (reads_as (c, CS, 7 * CS, 'a'));
  blockmap_volume_release (c);
  assert_int_equal (blockmap_volume_delete (t.pool, "c", false), 0);
  reap_all ();
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (reap_all (), 0);
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (pinfo ().volumes, 0);
  assert_int_equal (pinfo ().hot_used, 0);
  assert_int_equal (pinfo ().pending_chunks, 0);
  assert_int_equal (t.pool->hot.refs.total, 0);
}

/* ---- 5. a chain of snapshots, a checkpoint and a crash -------------- */

#define CHAIN_NCH 4096           /* chunks of the chained volume */

static unsigned char m_a[CHAIN_NCH], m_s1[CHAIN_NCH], m_s3[CHAIN_NCH];

static void
chain_write (struct blockmap_volume *a, uint64_t l, int byte)
{
  write_head (a, l, byte);
  m_a[l] = byte;
}

/* a: every other chunk, then s1, a few writes, s2, writes and trims,
 * s3, writes; s2 deleted.  Few writes after the first snapshot, so
 * that most map nodes stay shared between a, s1 and s3.
 */
static void
chain_build (void)
{
  struct blockmap_volume *a;

  vcreate ("a", CHAIN_NCH * CS);
  a = vopen ("a");
  memset (m_a, 0, sizeof m_a);
  for (uint64_t l = 0; l < CHAIN_NCH; l += 2)
    chain_write (a, l, '1');
  snap ("a", "a@s1");
  memcpy (m_s1, m_a, sizeof m_a);
  for (uint64_t l = 0; l < CHAIN_NCH; l += 256)
    chain_write (a, l, '2');            /* copies */
  for (uint64_t l = 1; l < CHAIN_NCH; l += 512)
    chain_write (a, l, '2');            /* new chunks */
  snap ("a", "a@s2");
  for (uint64_t l = 2; l < CHAIN_NCH; l += 256)
    chain_write (a, l, '3');
  for (uint64_t l = 4; l < CHAIN_NCH; l += 512) {
    assert_int_equal (blockmap_unmap (a, l * CS, CS), 0);
    m_a[l] = 0;
  }
  snap ("a", "a@s3");
  memcpy (m_s3, m_a, sizeof m_a);
  for (uint64_t l = 0; l < CHAIN_NCH; l += 128)
    chain_write (a, l, '4');
  blockmap_volume_release (a);
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s2", false), 0);
  reap_all ();
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (reap_all (), 0);
  assert_int_equal (tpool_check (&t), 0);
}

static void
chain_verify (void)
{
  struct blockmap_volume *a = vopen ("a");
  struct blockmap_volume *s1 = vopen ("a@s1");
  struct blockmap_volume *s3 = vopen ("a@s3");
  struct blockmap_volume *s2;

  assert_int_equal (blockmap_volume_open (t.pool, "a@s2", &s2), -ENOENT);
  assert_true (heads_match (a, m_a, CHAIN_NCH));
  assert_true (heads_match (s1, m_s1, CHAIN_NCH));
  assert_true (heads_match (s3, m_s3, CHAIN_NCH));
  assert_true (vinfo ("a@s1").readonly);
  assert_true (vinfo ("a@s3").readonly);
  assert_int_equal (vinfo ("a@s3").origin, vinfo ("a").id);
  blockmap_volume_release (s3);
  blockmap_volume_release (s1);
  blockmap_volume_release (a);
}

/* After reopening: the volume still copies what its snapshots share. */
static void
chain_overwrite_and_verify (void)
{
  struct blockmap_volume *a = vopen ("a");

  for (uint64_t l = 0; l < CHAIN_NCH; l += 2)
    chain_write (a, l, '5');
  blockmap_volume_release (a);
  chain_verify ();
  assert_int_equal (tpool_check (&t), 0);
}

static void
test_a_chain_of_snapshots_survives_a_checkpoint_with_its_sharing (void **state)
{
  uint64_t used, distinct;

  (void) state;
  chain_build ();
  chain_verify ();
  distinct = distinct_map_nodes ();
  fprintf (stderr, "map nodes: %" PRIu64 " distinct, %" PRIu64
           " unshared; slab %" PRIu64 "\n", distinct, unshared_map_nodes (),
           t.pool->slab.used);
  /* Large enough to tell: un-sharing would cost more than the slab has. */
  assert_true (unshared_map_nodes () > 2 * distinct);
  assert_true (unshared_map_nodes () - distinct > t.pool->slab.used / 2);
  used = t.pool->slab.used;

  assert_int_equal (blockmap_pool_close (t.pool), 0);
  tpool_reopen (&t);
  assert_int_equal (tpool_check (&t), 0);
  fprintf (stderr, "after reopen: %" PRIu64 " distinct; slab %" PRIu64 "\n",
           distinct_map_nodes (), t.pool->slab.used);
  assert_true (t.pool->slab.used <= used);
  assert_int_equal (distinct_map_nodes (), distinct);
  chain_verify ();
  chain_overwrite_and_verify ();
}

static void
test_a_chain_of_snapshots_survives_a_crash_after_sync (void **state)
{
  uint64_t distinct;

  (void) state;
  chain_build ();
  distinct = distinct_map_nodes ();
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  blockmap_pool_crash_close (t.pool);
  tpool_reopen (&t);
  assert_true (pinfo ().recovered);
  assert_int_equal (tpool_check (&t), 0);
  /* Replayed VOL_CLONE records share, too. */
  assert_true (distinct_map_nodes () < unshared_map_nodes () / 2);
  fprintf (stderr, "distinct map nodes: %" PRIu64 " before, %" PRIu64
           " after replay\n", distinct, distinct_map_nodes ());
  chain_verify ();
  chain_overwrite_and_verify ();
}

/* ---- 6. blockmap_diff ------------------------------------------------ */

/* Check the diff of [OFF, OFF+LEN) of VOL against BASE, asking for MAX
 * runs at a time and going on from the last run's end: the runs cover
 * the range in order, alternate within one answer, are chunk aligned
 * except at the range's ends, and say "changed" exactly for the chunks
 * CHANGED says.  Returns the number of calls.
 */
static int
check_diff (struct blockmap_volume *base, struct blockmap_volume *vol,
            uint64_t off, uint64_t len, const bool *changed, int max)
{
  struct blockmap_diff_run runs[64];
  uint64_t pos = off, end = off + len;
  int calls = 0;

  assert_true (max <= 64);
  while (pos < end) {
    int n = blockmap_diff (base, vol, pos, end - pos, runs, max);
    assert_true (n >= 1 && n <= max);
    calls++;
    for (int i = 0; i < n; i++) {
      uint64_t rend = runs[i].offset + runs[i].length;
      assert_int_equal (runs[i].offset, pos);
      assert_true (runs[i].length > 0 && rend <= end);
      if (i > 0)
        assert_true (runs[i].changed != runs[i - 1].changed);
      if (rend < end)
        assert_int_equal (rend % CS, 0);
      for (uint64_t l = runs[i].offset / CS; l <= (rend - 1) / CS; l++)
        if (changed[l] != runs[i].changed) {
          fprintf (stderr, "diff: chunk %" PRIu64 " is %s, expected %s\n",
                   l, runs[i].changed ? "changed" : "unchanged",
                   changed[l] ? "changed" : "unchanged");
          fail ();
        }
      pos = rend;
    }
    assert_true (calls < 10000);
  }
  return calls;
}

static void
test_diff_lists_exactly_the_chunks_written_or_trimmed (void **state)
{
  struct blockmap_volume *a, *s, *u;
  bool ch[64] = { false }, none[64] = { false }, ch5[64] = { false };
  struct blockmap_diff_run runs[16];
  int n;

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  for (uint64_t l = 0; l < 32; l++)
    write_head (a, l, 'o');
  snap ("a", "a@s");
  s = vopen ("a@s");
  write_head (a, 3, 'n');                               /* copied */
  write_bytes (a, 10 * CS, CS, 'n');                    /* copied */
  assert_int_equal (blockmap_unmap (a, 20 * CS, CS), 0);        /* trimmed */
  ch[3] = ch[10] = ch[20] = true;

  /* Exactly 7 runs: [0,3) [3] [4,10) [10] [11,20) [20] [21,64). */
  n = blockmap_diff (s, a, 0, 64 * CS, runs, 16);
  assert_int_equal (n, 7);
  assert_int_equal (runs[1].offset, 3 * CS);
  assert_int_equal (runs[1].length, CS);
  assert_true (runs[1].changed);
  assert_int_equal (runs[6].offset, 21 * CS);
  assert_int_equal (runs[6].length, 43 * CS);
  assert_false (runs[6].changed);
  assert_int_equal (check_diff (s, a, 0, 64 * CS, ch, 16), 1);
  /* Either way round. */
  assert_int_equal (check_diff (a, s, 0, 64 * CS, ch, 16), 1);
  /* Unaligned ends. */
  assert_int_equal (check_diff (s, a, 3 * CS + 100, 8 * CS, ch, 16), 1);
  assert_int_equal (check_diff (s, a, 20 * CS + 1, 1, ch, 16), 1);
  /* Against itself: nothing. */
  assert_int_equal (check_diff (s, s, 0, 64 * CS, none, 16), 1);
  assert_int_equal (check_diff (a, a, 0, 64 * CS, none, 16), 1);

  /* Few runs at a time: go on from the last one's end. */
  assert_true (check_diff (s, a, 0, 64 * CS, ch, 2) >= 4);
  assert_true (check_diff (s, a, 0, 64 * CS, ch, 1) >= 7);
  assert_int_equal (blockmap_diff (s, a, 0, 64 * CS, runs, 2), 2);
  assert_int_equal (runs[1].offset + runs[1].length, 4 * CS);

  /* Between two snapshots of the volume. */
  snap ("a", "a@u");
  u = vopen ("a@u");
  write_head (a, 5, 'x');
  ch5[5] = true;
  assert_int_equal (check_diff (s, u, 0, 64 * CS, ch, 16), 1);
  assert_int_equal (check_diff (u, a, 0, 64 * CS, ch5, 16), 1);
  ch[5] = true;
  assert_int_equal (check_diff (s, a, 0, 64 * CS, ch, 16), 1);

  /* A range past VOL's end. */
  assert_int_equal (blockmap_diff (s, a, 60 * CS, 8 * CS, runs, 16), -EINVAL);
  assert_int_equal (blockmap_diff (s, a, 0, 0, runs, 16), -EINVAL);
  assert_int_equal (blockmap_diff (s, a, 0, CS, runs, 0), -EINVAL);

  blockmap_volume_release (u);
  blockmap_volume_release (s);
  blockmap_volume_release (a);
}

static void
test_diff_past_the_base_end_compares_with_a_hole (void **state)
{
  struct blockmap_volume *a, *s, *c;
  bool ch[128] = { false };

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  for (uint64_t l = 0; l < 64; l += 2)
    write_head (a, l, 'o');
  snap ("a", "a@s");
  s = vopen ("a@s");
  assert_int_equal (blockmap_volume_clone (t.pool, "a@s", "c", 128 * CS,
                                           NULL, NULL, false), 0);
  c = vopen ("c");
  write_head (c, 70, 'g');              /* past a@s's end */
  write_head (c, 127, 'g');
  write_head (c, 8, 'c');
  assert_int_equal (blockmap_unmap (c, 12 * CS, CS), 0);
  ch[70] = ch[127] = ch[8] = ch[12] = true;
  assert_int_equal (check_diff (s, c, 0, 128 * CS, ch, 16), 1);
  assert_int_equal (check_diff (s, c, 64 * CS, 64 * CS, ch, 16), 1);
  assert_int_equal (check_diff (s, c, 100 * CS, 28 * CS, ch, 1), 2);
  /* The other way round the range must lie within VOL (a@s). */
  assert_int_equal (check_diff (c, s, 0, 64 * CS, ch, 16), 1);
  {
    struct blockmap_diff_run r[4];
    assert_int_equal (blockmap_diff (c, s, 64 * CS, CS, r, 4), -EINVAL);
  }
  blockmap_volume_release (c);
  blockmap_volume_release (s);
  blockmap_volume_release (a);
}

static void
test_diff_with_a_deleted_side_is_shutdown (void **state)
{
  struct blockmap_volume *a, *s;
  struct blockmap_diff_run r[4];

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  write_head (a, 0, 'o');
  snap ("a", "a@s");
  s = vopen ("a@s");
  assert_int_equal (blockmap_diff (s, a, 0, 64 * CS, r, 4), 1);
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", false), -EBUSY);
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", true), 0);
  assert_int_equal (blockmap_diff (s, a, 0, 64 * CS, r, 4), -ESHUTDOWN);
  assert_int_equal (blockmap_diff (a, s, 0, 64 * CS, r, 4), -ESHUTDOWN);
  assert_int_equal (blockmap_diff (s, s, 0, 64 * CS, r, 4), -ESHUTDOWN);
  blockmap_volume_release (s);
  assert_int_equal (head_of (a, 0), 'o');
  blockmap_volume_release (a);
}

/* ---- 7, 8. the background reaper ------------------------------------ */

#define REAP_EXTENTS 5200

/* Volume a of REAP_EXTENTS scattered chunks, snapshot a@s, then every
 * one of them overwritten: a@s ends up with its own REAP_EXTENTS nodes.
 */
static void
reap_setup (void)
{
  struct blockmap_volume *a;

  vcreate ("a", 2 * REAP_EXTENTS * CS);
  a = vopen ("a");
  for (uint64_t l = 0; l < REAP_EXTENTS; l++)
    write_head (a, 2 * l, 'o');
  snap ("a", "a@s");
  for (uint64_t l = 0; l < REAP_EXTENTS; l++)
    write_head (a, 2 * l, 'n');
  blockmap_volume_release (a);
  assert_true (private_nodes_of ("a@s") > 5000);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (pinfo ().hot_used, 2 * REAP_EXTENTS * CS);
}

/* Punch and reuse everything freed and durable, as the daemon's
 * reaper thread does after a delete; returns the runs handled.
 */
static uint64_t
reclaim_all (void)
{
  uint64_t total = 0, n;

  while ((n = blockmap_pool_reclaim (t.pool, 1000)) > 0)
    total += n;
  return total;
}

static void
expect_only_a_left (void)
{
  struct blockmap_volume *a = vopen ("a"), *s;

  assert_int_equal (blockmap_volume_open (t.pool, "a@s", &s), -ENOENT);
  assert_int_equal (vinfo ("a").allocated, REAP_EXTENTS * CS);
  assert_int_equal (pinfo ().hot_used, REAP_EXTENTS * CS);
  assert_int_equal (pinfo ().pending_chunks, 0);
  assert_int_equal (pinfo ().reap_pending, 0);
  for (uint64_t l = 0; l < 2 * REAP_EXTENTS; l += 97)
    assert_int_equal (head_of (a, l), l % 2 ? 0 : 'n');
  blockmap_volume_release (a);
}

static void
test_a_large_snapshot_is_freed_in_the_background (void **state)
{
  uint64_t left, prev;

  (void) state;
  reap_setup ();
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", false), 0);
  prev = pinfo ().reap_pending;
  assert_true (prev > 0);
  assert_true (blockmap_pool_reap_wanted (t.pool));
  assert_int_equal (tpool_check (&t), 0);
  for (int i = 0; i < 4; i++) {
    left = blockmap_pool_reap (t.pool, 100);
    assert_int_equal (left, pinfo ().reap_pending);
    assert_true (left > 0);
    assert_int_equal (tpool_check (&t), 0);
  }
  assert_int_equal (reap_all (), 0);     /* nothing a@s had was shared */
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  /* A commit punches only a batch itself (FLUSH must not wait for
   * thousands of fallocates); the rest is reclaimed off its path.
   */
  assert_true (pinfo ().pending_chunks > 0);
  assert_true (pinfo ().pending_chunks
               >= REAP_EXTENTS - BM_RECLAIM_BATCH);
  assert_int_equal (tpool_check (&t), 0);
  assert_true (reclaim_all () > 0);
  assert_int_equal (tpool_check (&t), 0);
  expect_only_a_left ();
}

/* The daemon reaps from its sync thread while clients go on writing
 * and trimming: frees of both kinds mix in the pending list.
 */
static void
test_pool_check_is_clean_while_a_reap_and_trims_interleave (void **state)
{
  struct blockmap_volume *a;

  (void) state;
  reap_setup ();
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", false), 0);
  a = vopen ("a");
  for (int i = 0; pinfo ().reap_pending > 0; i++) {
    assert_true (i < 1000);
    assert_int_equal (blockmap_unmap (a, (2 * i + 1) * 2 * CS, CS), 0);
    blockmap_pool_reap (t.pool, 300);
    assert_int_equal (check_remembering (), 0);
    if (i % 3 == 2)
      assert_int_equal (blockmap_pool_sync (t.pool), 0);
  }
  blockmap_volume_release (a);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  reclaim_all ();
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (pinfo ().pending_chunks, 0);
  assert_int_equal (pinfo ().hot_used, vinfo ("a").allocated);
}

static void
test_a_crash_in_the_middle_of_a_reap_frees_everything_after_reopen (void **state)
{
  (void) state;
  reap_setup ();
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", false), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);    /* delete durable */
  assert_true (blockmap_pool_reap (t.pool, 1500) > 0);
  assert_true (pinfo ().reap_pending > 0);
  assert_int_equal (tpool_check (&t), 0);
  blockmap_pool_crash_close (t.pool);
  tpool_reopen (&t);
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (tpool_check (&t), 0);
  expect_only_a_left ();
}

/* ---- node sharing and durability ------------------------------------ */

/* A snapshot delete that is not durable yet must not let its volume
 * write in place what the two shared: after a crash the snapshot is
 * back and must read what it did (as for a chunk's count dropping,
 * refcount.c "held").
 */
static void
test_a_snapshot_delete_not_yet_durable_still_copies_on_write (void **state)
{
  struct blockmap_volume *a;
  struct blockmap_run r[4];

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  write_head (a, 0, 'o');
  snap ("a", "a@s");
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", false), 0);
  assert_int_equal (reap_all (), 1);    /* the root the two share */
  assert_int_equal (tpool_check (&t), 0);
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, BM_RUN_COW);
  blockmap_cow_abort (a, &r[0]);
  /* Durable, and no I/O in flight: in place from now on. */
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  reap_all ();
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, 0);
  blockmap_volume_release (a);
}

static void
test_a_snapshot_whose_delete_was_lost_in_a_crash_reads_its_data (void **state)
{
  struct blockmap_volume *a, *s;

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  for (uint64_t l = 0; l < 8; l++)
    write_head (a, l, 'o');
  snap ("a", "a@s");
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", false), 0);
  reap_all ();
  for (uint64_t l = 0; l < 8; l++)
    write_head (a, l, 'n');
  blockmap_volume_release (a);
  blockmap_pool_crash_close (t.pool);   /* the delete is lost */
  tpool_reopen (&t);
  assert_int_equal (tpool_check (&t), 0);
  s = vopen ("a@s");
  for (uint64_t l = 0; l < 8; l++)
    assert_int_equal (head_of (s, l), 'o');
  blockmap_volume_release (s);
}

/* A read through a snapshot begun before its (forced) delete may still
 * be reading the chunks it shares with the volume.
 */
static void
test_a_snapshot_deleted_under_a_read_is_still_copied_until_it_ends (void **state)
{
  struct blockmap_volume *a, *s;
  struct blockmap_run r[4];
  uint64_t tok;

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  write_head (a, 0, 'o');
  snap ("a", "a@s");
  s = vopen ("a@s");
  tok = blockmap_io_begin (t.pool);
  assert_int_equal (blockmap_map_range (s, 0, 4096, r, 4), 1);
  assert_int_equal (blockmap_volume_delete (t.pool, "a@s", true), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  reap_all ();
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, BM_RUN_COW);
  blockmap_cow_abort (a, &r[0]);
  blockmap_io_end (t.pool, tok);
  blockmap_volume_release (s);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  reap_all ();
  assert_int_equal (blockmap_write_prepare (a, 0, 4096, r, 4), 1);
  assert_int_equal (r[0].flags, 0);
  blockmap_volume_release (a);
}

/* ---- 9. a snapshot waits for the writes in flight ------------------- */

struct freeze_ctx {
  struct blockmap_volume *a;
  atomic_int writer_began, release_writer, clone_done;
  int clone_result;
};

static void *
writer_thread (void *arg)
{
  struct freeze_ctx *c = arg;

  if (blockmap_write_begin (c->a) != 0)
    return NULL;                /* main sees writer_began stay 0 */
  atomic_store (&c->writer_began, 1);
  while (!atomic_load (&c->release_writer))
    nanosleep (&(struct timespec) { .tv_nsec = 1000000 }, NULL);
  /* The request begun before the snapshot still completes. */
  write_head (c->a, 0, 'w');
  blockmap_write_end (c->a);
  return NULL;
}

static void *
clone_thread (void *arg)
{
  struct freeze_ctx *c = arg;

  c->clone_result = blockmap_volume_clone (t.pool, "a", "a@s", 0, NULL, NULL,
                                           true);
  atomic_store (&c->clone_done, 1);
  return NULL;
}

/* Poll FLAG for up to 10 s. */
static bool
wait_for (atomic_int *flag)
{
  for (int i = 0; i < 10000 && !atomic_load (flag); i++)
    nanosleep (&(struct timespec) { .tv_nsec = 1000000 }, NULL);
  return atomic_load (flag);
}

static unsigned
frozen_count (struct blockmap_volume *v)
{
  LOCK_FOR_SCOPE (&t.pool->lock);
  return v->frozen;
}

static void
test_a_snapshot_waits_for_writes_begun_and_holds_off_new_ones (void **state)
{
  struct freeze_ctx c = { 0 };
  pthread_t wt, ct;
  struct blockmap_volume *s;
  unsigned frozen;
  bool done_early, done_later;
  int begin1, begin2;

  (void) state;
  vcreate ("a", 64 * CS);
  c.a = vopen ("a");
  write_head (c.a, 0, 'o');
  assert_int_equal (pthread_create (&wt, NULL, writer_thread, &c), 0);
  if (!wait_for (&c.writer_began)) {
    atomic_store (&c.release_writer, 1);
    pthread_join (wt, NULL);
    fail_msg ("the writer could not begin");
  }
  assert_int_equal (pthread_create (&ct, NULL, clone_thread, &c), 0);
  for (int i = 0; i < 10000 && frozen_count (c.a) == 0
         && !atomic_load (&c.clone_done); i++)
    nanosleep (&(struct timespec) { .tv_nsec = 1000000 }, NULL);
  frozen = frozen_count (c.a);
  nanosleep (&(struct timespec) { .tv_nsec = 100000000 }, NULL);
  done_early = atomic_load (&c.clone_done);
  begin1 = blockmap_write_begin (c.a);
  begin2 = blockmap_write_begin (c.a);
  done_later = atomic_load (&c.clone_done);
  if (begin1 == 0)
    blockmap_write_end (c.a);
  if (begin2 == 0)
    blockmap_write_end (c.a);

  /* Let the writer finish before judging, so that no thread is left
   * behind whatever the outcome.
   */
  atomic_store (&c.release_writer, 1);
  assert_int_equal (pthread_join (wt, NULL), 0);
  assert_true (wait_for (&c.clone_done));
  assert_int_equal (pthread_join (ct, NULL), 0);

  assert_int_equal (frozen, 1);                 /* the clone waits ... */
  assert_false (done_early);                    /* ... for the writer */
  assert_false (done_later);
  assert_int_equal (begin1, -EAGAIN);           /* new writes wait */
  assert_int_equal (begin2, -EAGAIN);
  assert_int_equal (c.clone_result, 0);
  assert_int_equal (frozen_count (c.a), 0);

  /* The snapshot holds the write that was in flight. */
  s = vopen ("a@s");
  assert_int_equal (head_of (s, 0), 'w');
  assert_int_equal (blockmap_write_begin (c.a), 0);
  write_head (c.a, 0, 'x');
  blockmap_write_end (c.a);
  assert_int_equal (head_of (s, 0), 'w');
  assert_int_equal (head_of (c.a, 0), 'x');
  blockmap_volume_release (s);
  blockmap_volume_release (c.a);
}

/* ---- 10. pool check and share counts -------------------------------- */

static void
test_pool_check_finds_a_wrong_share_count (void **state)
{
  struct blockmap_volume *a;
  struct rnode *root;

  (void) state;
  vcreate ("a", 64 * CS);
  a = vopen ("a");
  for (uint64_t l = 0; l < 16; l += 2)
    write_head (a, l, 'o');
  snap ("a", "a@s");
  assert_int_equal (check_remembering (), 0);
  {
    LOCK_FOR_SCOPE (&t.pool->lock);
    root = pool_find_volume (t.pool, "a")->map.root;
    assert_int_equal (root->refs, 2);
    root->refs++;
  }
  assert_true (check_remembering () >= 1);
  assert_non_null (strstr (problems, "share"));
  {
    LOCK_FOR_SCOPE (&t.pool->lock);
    root->refs -= 2;            /* one too few: a write would go in place */
  }
  assert_true (check_remembering () >= 1);
  assert_non_null (strstr (problems, "share"));
  {
    LOCK_FOR_SCOPE (&t.pool->lock);
    root->refs++;
  }
  assert_int_equal (check_remembering (), 0);
  blockmap_volume_release (a);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
    T (test_a_snapshot_keeps_the_old_data_when_its_volume_overwrites_it),
    T (test_a_long_write_copies_only_the_shared_chunk),
    T (test_a_snapshot_costs_the_same_for_one_extent_and_twenty_thousand),
    T (test_a_clone_is_a_writable_copy_of_a_snapshot),
    T (test_bad_snapshot_and_clone_names_are_refused),
    T (test_a_snapshot_refuses_every_change),
    T (test_deleting_the_origin_keeps_its_snapshot_and_clone),
    T (test_a_chain_of_snapshots_survives_a_checkpoint_with_its_sharing),
    T (test_a_chain_of_snapshots_survives_a_crash_after_sync),
    T (test_diff_lists_exactly_the_chunks_written_or_trimmed),
    T (test_diff_past_the_base_end_compares_with_a_hole),
    T (test_diff_with_a_deleted_side_is_shutdown),
    T (test_a_large_snapshot_is_freed_in_the_background),
    T (test_pool_check_is_clean_while_a_reap_and_trims_interleave),
    T (test_a_crash_in_the_middle_of_a_reap_frees_everything_after_reopen),
    T (test_a_snapshot_delete_not_yet_durable_still_copies_on_write),
    T (test_a_snapshot_whose_delete_was_lost_in_a_crash_reads_its_data),
    T (test_a_snapshot_deleted_under_a_read_is_still_copied_until_it_ends),
    T (test_a_snapshot_waits_for_writes_begun_and_holds_off_new_ones),
    T (test_pool_check_finds_a_wrong_share_count),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
