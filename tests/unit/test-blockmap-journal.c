/* tests/unit/test-blockmap-journal.c: durability and crash recovery
 * (blockmap/journal.c, apply.c, checkpoint.c, pool.c).
 *
 * A "crash" is blockmap_pool_crash_close: the process's buffered
 * journal records are lost, files are closed without a checkpoint,
 * and the next open must replay.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>

#include "common/log.h"
#include "test-blockmap-util.h"

/* A volume's map as text: "lchunk+count>pchunk;..." via map_range. */
static void
dump_volume (struct blockmap_pool *pool, const char *name, char *out,
             size_t outlen)
{
  struct blockmap_volume *v;
  struct blockmap_volume_info vi;
  struct blockmap_run r[64];
  uint64_t pos = 0, size;
  size_t used;

  assert_int_equal (blockmap_volume_info (pool, name, &vi), 0);
  used = snprintf (out, outlen, "%s id=%" PRIu64 " size=%" PRIu64
                   " type=%s attrs=%s:", vi.name, vi.id, vi.size, vi.type,
                   vi.attrs);
  assert_int_equal (blockmap_volume_open (pool, name, &v), 0);
  size = blockmap_volume_size (v);
  while (pos < size) {
    int n = blockmap_map_range (v, pos, size - pos, r, 64);
    assert_true (n >= 1);
    for (int i = 0; i < n; i++) {
      if (r[i].tier != BM_TIER_NONE)
        used += snprintf (out + used, outlen - used, "%" PRIu64 "+%" PRIu64
                          ">%" PRIu64 ";", r[i].offset / CS,
                          r[i].length / CS, r[i].pool_offset / CS);
      assert_true (used < outlen);
      pos += r[i].length;
    }
  }
  blockmap_volume_release (v);
}

static struct blockmap_volume *
vopen (struct tpool *t, const char *name)
{
  struct blockmap_volume *v;

  assert_int_equal (blockmap_volume_open (t->pool, name, &v), 0);
  return v;
}

/* Some history: creates, writes, unmaps, resizes, attrs, a delete. */
static void
make_history (struct tpool *t)
{
  struct blockmap_volume *v;

  assert_int_equal (blockmap_volume_create (t->pool, "one", 32 * MiB, "ssd",
                                            "{\"k\":1}"), 0);
  assert_int_equal (blockmap_volume_create (t->pool, "two", 16 * MiB, "hdd",
                                            NULL), 0);
  assert_int_equal (blockmap_volume_create (t->pool, "gone", 16 * MiB, "hdd",
                                            NULL), 0);
  v = vopen (t, "one");
  write_bytes (v, 0, 4 * MiB, '1');
  write_bytes (v, 10 * MiB, CS, '2');
  assert_int_equal (blockmap_unmap (v, MiB, MiB), 0);
  blockmap_volume_release (v);
  v = vopen (t, "two");
  for (int i = 9; i >= 0; i--)
    write_bytes (v, (uint64_t) i * 3 * CS, 4096, '3');
  blockmap_volume_release (v);
  v = vopen (t, "gone");
  write_bytes (v, 0, MiB, 'g');
  blockmap_volume_release (v);
  assert_int_equal (blockmap_volume_delete (t->pool, "gone", false), 0);
  assert_int_equal (blockmap_volume_resize (t->pool, "two", 20 * MiB, false), 0);
  assert_int_equal (blockmap_volume_set_attrs (t->pool, "two", "ssd", "a=b"), 0);
  assert_int_equal (blockmap_test_share_range (t->pool, "one", "two", 0, 8), 0);
}

static void
test_replay_after_a_crash_rebuilds_the_synced_state (void **state)
{
  struct tpool t;
  struct blockmap_pool_info info;
  char one[4096], two[4096], again[4096], buf[4096];
  struct blockmap_volume *v;

  (void) state;
  tpool_make (&t, 64 * MiB);
  make_history (&t);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  dump_volume (t.pool, "one", one, sizeof one);
  dump_volume (t.pool, "two", two, sizeof two);
  blockmap_pool_crash_close (t.pool);

  tpool_reopen (&t);
  blockmap_pool_info (t.pool, &info);
  assert_true (info.recovered);
  assert_int_equal (info.volumes, 2);
  dump_volume (t.pool, "one", again, sizeof again);
  assert_string_equal (one, again);
  dump_volume (t.pool, "two", again, sizeof again);
  assert_string_equal (two, again);
  /* Shared chunks: the recomputed counts agree with the maps. */
  assert_int_equal (rtree_lookup (&t.pool->hot.refs, 0)->val, 2);
  assert_int_equal (tpool_check (&t), 0);
  v = vopen (&t, "one");
  read_bytes (v, 10 * MiB, 4096, buf);
  assert_true (all_bytes (buf, 4096, '2'));
  read_bytes (v, MiB, 4096, buf);
  assert_true (all_bytes (buf, 4096, 0));
  blockmap_volume_release (v);
  tpool_done (&t);
}

static void
test_changes_after_the_last_sync_are_lost_but_the_pool_is_consistent (void **state)
{
  struct tpool t;
  struct blockmap_volume *v;
  struct blockmap_volume_info vi;
  char before[4096], after[4096], buf[CS];
  uint64_t p;
  struct blockmap_run r[2];

  (void) state;
  tpool_make (&t, 64 * MiB);
  make_history (&t);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  dump_volume (t.pool, "one", before, sizeof before);
  /* Unsynced: a new volume, more writes, an unmap, a resize. */
  assert_int_equal (blockmap_volume_create (t.pool, "late", MiB, "ssd", NULL), 0);
  v = vopen (&t, "one");
  write_bytes (v, 20 * MiB, 2 * MiB, 'L');
  assert_int_equal (blockmap_unmap (v, 0, MiB), 0);
  assert_int_equal (blockmap_map_range (v, 20 * MiB, 4096, r, 2), 1);
  p = r[0].pool_offset / CS;
  blockmap_volume_release (v);
  assert_int_equal (blockmap_volume_resize (t.pool, "two", 40 * MiB, false), 0);
  blockmap_pool_crash_close (t.pool);

  tpool_reopen (&t);
  assert_int_equal (blockmap_volume_info (t.pool, "late", &vi), -ENOENT);
  assert_int_equal (blockmap_volume_info (t.pool, "two", &vi), 0);
  assert_int_equal (vi.size, 20 * MiB);
  dump_volume (t.pool, "one", after, sizeof after);
  assert_string_equal (before, after);
  assert_int_equal (tpool_check (&t), 0);
  v = vopen (&t, "one");
  read_bytes (v, 0, 4096, buf);
  assert_true (all_bytes (buf, 4096, '1'));       /* the unmap was lost */
  blockmap_volume_release (v);
  /* The chunk written but never journalled is free and reads as zero
   * when it is handed out again.
   */
  assert_null (rtree_lookup (&t.pool->hot.refs, p));
  assert_non_null (rtree_lookup (&t.pool->hot.free, p));
  {
    int fd = blockmap_pool_data_fd (t.pool, BM_TIER_HOT);
    ssize_t n = pread (fd, buf, CS, p * CS);
    assert_true (n >= 0);
    memset (buf + n, 0, CS - n);
    assert_true (all_bytes (buf, CS, 0));
  }
  tpool_done (&t);
}

static char *
journal_path (struct tpool *t, char *buf, size_t len)
{
  snprintf (buf, len, "%s/journal", t->path);
  return buf;
}

static off_t
file_size (const char *path)
{
  struct stat st;

  assert_int_equal (stat (path, &st), 0);
  return st.st_size;
}

/* Sync a base state, then one more volume in its own sync, crash, and
 * let DAMAGE spoil the journal's last record.
 */
static void
crash_and_damage_last_record (void (*damage) (const char *jpath,
                                               off_t last_start, off_t end))
{
  struct tpool t;
  struct blockmap_volume_info vi;
  struct blockmap_pool_info info;
  char jp[256];
  off_t mid, end;

  tpool_make (&t, 64 * MiB);
  make_history (&t);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  mid = file_size (journal_path (&t, jp, sizeof jp));
  assert_int_equal (blockmap_volume_create (t.pool, "last", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  end = file_size (jp);
  assert_true (end > mid);
  blockmap_pool_crash_close (t.pool);

  damage (jp, mid, end);
  tpool_reopen (&t);
  blockmap_pool_info (t.pool, &info);
  assert_true (info.recovered);
  assert_int_equal (info.journal_dropped, 0);  /* nothing after the tail */
  assert_int_equal (blockmap_volume_info (t.pool, "one", &vi), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "last", &vi), -ENOENT);
  assert_int_equal (tpool_check (&t), 0);
  /* The journal was cut at the bad record and goes on from there. */
  assert_int_equal (blockmap_volume_create (t.pool, "next", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  blockmap_pool_crash_close (t.pool);
  tpool_reopen (&t);
  assert_int_equal (blockmap_volume_info (t.pool, "next", &vi), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "one", &vi), 0);
  assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
}

static void
tear (const char *jp, off_t last_start, off_t end)
{
  (void) end;
  assert_int_equal (truncate (jp, last_start + 10), 0);
}

static void
garble (const char *jp, off_t last_start, off_t end)
{
  int fd = open (jp, O_WRONLY);

  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, "\xff", 1, last_start + (end - last_start) / 2), 1);
  close (fd);
}

static void
append_garbage (const char *jp, off_t last_start, off_t end)
{
  int fd = open (jp, O_WRONLY);
  char junk[100];

  (void) last_start;
  memset (junk, 0x5a, sizeof junk);
  assert_true (fd >= 0);
  /* Replace the last record with junk of about the same size. */
  assert_int_equal (pwrite (fd, junk, sizeof junk, last_start), sizeof junk);
  (void) end;
  close (fd);
}

static void
test_a_torn_tail_record_is_ignored (void **state)
{
  (void) state;
  crash_and_damage_last_record (tear);
}

static void
test_a_garbled_tail_record_is_ignored (void **state)
{
  (void) state;
  crash_and_damage_last_record (garble);
}

static void
test_junk_at_the_tail_is_ignored (void **state)
{
  (void) state;
  crash_and_damage_last_record (append_garbage);
}

/* Damage in the middle of the journal, with whole records after it,
 * is not a torn tail: replay still stops there (the pool stays
 * consistent), but the records it drops are counted and reported.
 */
static void
test_records_after_damage_in_the_middle_are_counted (void **state)
{
  struct tpool t;
  struct blockmap_volume_info vi;
  struct blockmap_pool_info info;
  char jp[256];
  off_t mid;
  int fd;

  (void) state;
  tpool_make (&t, 64 * MiB);
  make_history (&t);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  mid = file_size (journal_path (&t, jp, sizeof jp));
  assert_int_equal (blockmap_volume_create (t.pool, "a", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (blockmap_volume_create (t.pool, "b", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  assert_int_equal (blockmap_volume_create (t.pool, "c", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  blockmap_pool_crash_close (t.pool);

  /* Flip a byte inside the record that created "a". */
  fd = open (jp, O_WRONLY);
  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, "\xff", 1, mid + 30), 1);
  close (fd);

  log_set_quiet (true);
  tpool_reopen (&t);
  log_set_quiet (false);
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.journal_dropped, 2);   /* "b" and "c" */
  assert_int_equal (blockmap_volume_info (t.pool, "one", &vi), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "a", &vi), -ENOENT);
  assert_int_equal (blockmap_volume_info (t.pool, "c", &vi), -ENOENT);
  assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
}

static void
test_checkpoint_then_journal_replay_restore_everything (void **state)
{
  struct tpool t;
  struct blockmap_volume *v;
  struct blockmap_pool_info info;
  char before[8192], after[8192];

  (void) state;
  tpool_make (&t, 64 * MiB);
  make_history (&t);
  assert_int_equal (blockmap_pool_checkpoint (t.pool), 0);
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.journal_bytes, JOURNAL_HDR_SIZE);
  /* Records after the checkpoint go to the fresh journal. */
  v = vopen (&t, "one");
  write_bytes (v, 16 * MiB, MiB, 'P');
  blockmap_volume_release (v);
  assert_int_equal (blockmap_volume_create (t.pool, "post", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  dump_volume (t.pool, "one", before, sizeof before);
  blockmap_pool_crash_close (t.pool);

  tpool_reopen (&t);
  dump_volume (t.pool, "one", after, sizeof after);
  assert_string_equal (before, after);
  dump_volume (t.pool, "post", after, sizeof after);
  assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
}

static void
test_the_journal_checkpoints_itself_past_its_threshold (void **state)
{
  struct tpool t;
  struct blockmap_volume *v;
  struct blockmap_pool_info info;
  char before[16384], after[16384];
  uint64_t lsn0;

  (void) state;
  tpool_make (&t, 64 * MiB);
  blockmap_test_set_checkpoint_threshold (t.pool, 4096);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 64 * MiB, "ssd", NULL), 0);
  v = vopen (&t, "v");
  lsn0 = t.pool->checkpoint_lsn;
  for (int i = 0; i < 400; i++) {
    write_bytes (v, (uint64_t) (i * 7 % 400) * CS, 4096, 'c');
    if (i % 50 == 49)
      assert_int_equal (blockmap_pool_sync (t.pool), 0);
  }
  assert_true (t.pool->checkpoint_lsn > lsn0);
  blockmap_pool_info (t.pool, &info);
  assert_true (info.journal_bytes < 8192);
  blockmap_volume_release (v);
  dump_volume (t.pool, "v", before, sizeof before);
  blockmap_pool_crash_close (t.pool);
  tpool_reopen (&t);
  dump_volume (t.pool, "v", after, sizeof after);
  assert_string_equal (before, after);
  assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
}

static void
test_a_crash_after_a_clean_open_is_still_recovered (void **state)
{
  struct tpool t;
  struct blockmap_pool_info info;
  struct blockmap_volume *v;
  struct blockmap_run r[2];
  char buf[CS];
  uint64_t p;

  (void) state;
  tpool_make (&t, 64 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 8 * MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  tpool_reopen (&t);
  blockmap_pool_info (t.pool, &info);
  assert_false (info.recovered);
  /* Data lands in a chunk whose MAP record is never made durable. */
  v = vopen (&t, "v");
  write_bytes (v, 0, CS, 'S');
  assert_int_equal (blockmap_map_range (v, 0, 4096, r, 2), 1);
  p = r[0].pool_offset / CS;
  blockmap_volume_release (v);
  blockmap_pool_crash_close (t.pool);
  tpool_reopen (&t);
  blockmap_pool_info (t.pool, &info);
  assert_true (info.recovered);
  v = vopen (&t, "v");
  assert_int_equal (blockmap_map_range (v, 0, CS, r, 2), 1);
  assert_int_equal (r[0].tier, BM_TIER_NONE);
  /* The stale chunk is handed out again, and reads as zero. */
  write_bytes (v, 5 * CS, 4096, 'T');
  assert_int_equal (blockmap_map_range (v, 5 * CS, CS, r, 2), 1);
  assert_int_equal (r[0].pool_offset / CS, p);
  read_bytes (v, 5 * CS, CS, buf);
  assert_true (all_bytes (buf, 4096, 'T'));
  assert_true (all_bytes (buf + 4096, CS - 4096, 0));
  blockmap_volume_release (v);
  tpool_done (&t);
}

static void
test_a_damaged_checkpoint_is_euclean (void **state)
{
  struct tpool t;
  struct blockmap_pool *p;
  char cp[256];
  int fd;

  (void) state;
  tpool_make (&t, 64 * MiB);
  make_history (&t);
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  t.pool = NULL;
  snprintf (cp, sizeof cp, "%s/checkpoint", t.path);
  fd = open (cp, O_WRONLY);
  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, "\x01", 1, 100), 1);
  close (fd);
  assert_int_equal (blockmap_pool_open (t.path, &p), -EUCLEAN);
  tpool_done (&t);
}

struct syncer {
  struct blockmap_pool *pool;
  struct blockmap_volume *v;
  int base, r;
};

static void *
sync_thread (void *arg)
{
  struct syncer *s = arg;

  s->r = 0;
  for (int i = 0; i < 50 && s->r == 0; i++) {
    struct blockmap_run r[4];
    uint64_t tok = blockmap_io_begin (s->pool);
    if (blockmap_write_prepare (s->v, (uint64_t) (s->base + i) * CS, 4096,
                                r, 4) < 1)
      s->r = -1;
    blockmap_io_end (s->pool, tok);
    if (s->r == 0)
      s->r = blockmap_pool_sync (s->pool);
    if (s->r == 0 && i % 10 == 0)
      s->r = blockmap_unmap (s->v, (uint64_t) (s->base + i) * CS, CS);
  }
  return NULL;
}

static void
test_concurrent_syncs_share_commits_and_lose_nothing (void **state)
{
  struct tpool t;
  struct syncer s[4];
  pthread_t th[4];
  char before[16384], after[16384];

  (void) state;
  tpool_make (&t, 64 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 64 * MiB, "ssd", NULL), 0);
  for (int i = 0; i < 4; i++) {
    s[i] = (struct syncer) { .pool = t.pool, .v = vopen (&t, "v"),
                             .base = i * 100 };
    assert_int_equal (pthread_create (&th[i], NULL, sync_thread, &s[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join (th[i], NULL);
    assert_int_equal (s[i].r, 0);
    blockmap_volume_release (s[i].v);
  }
  dump_volume (t.pool, "v", before, sizeof before);
  assert_int_equal (tpool_check (&t), 0);
  blockmap_pool_crash_close (t.pool);
  tpool_reopen (&t);
  dump_volume (t.pool, "v", after, sizeof after);
  assert_string_equal (before, after);
  assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_replay_after_a_crash_rebuilds_the_synced_state),
    cmocka_unit_test (test_changes_after_the_last_sync_are_lost_but_the_pool_is_consistent),
    cmocka_unit_test (test_a_torn_tail_record_is_ignored),
    cmocka_unit_test (test_a_garbled_tail_record_is_ignored),
    cmocka_unit_test (test_junk_at_the_tail_is_ignored),
    cmocka_unit_test (test_records_after_damage_in_the_middle_are_counted),
    cmocka_unit_test (test_checkpoint_then_journal_replay_restore_everything),
    cmocka_unit_test (test_the_journal_checkpoints_itself_past_its_threshold),
    cmocka_unit_test (test_a_crash_after_a_clean_open_is_still_recovered),
    cmocka_unit_test (test_a_damaged_checkpoint_is_euclean),
    cmocka_unit_test (test_concurrent_syncs_share_commits_and_lose_nothing),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
