/* tests/unit/test-blockmap-util.h: helpers shared by the blockmap unit
 * tests: a temporary pool directory that is removed afterwards, and a
 * few shorthands.  Included after <cmocka.h>.
 */
#ifndef STRATA_TEST_BLOCKMAP_UTIL_H
#define STRATA_TEST_BLOCKMAP_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockmap/internal.h"  /* not server/internal.h */

#define KiB UINT64_C (1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)
#define TiB (GiB * 1024)
#define CS (64 * KiB)

struct tpool {
  char dir[64];                 /* the mkdtemp directory */
  char path[96];                /* DIR/pool */
  struct blockmap_pool *pool;
};

static int
rm_one (const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st;
  (void) flag;
  (void) ftw;
  return remove (p);
}

static inline void
tpool_rmdir (struct tpool *t)
{
  nftw (t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh pool of CAPACITY bytes (0: the file system's free space). */
static inline void
tpool_make (struct tpool *t, uint64_t capacity)
{
  struct blockmap_pool_opts o = { .chunk_size = CS, .hot_capacity = capacity };

  strcpy (t->dir, "/tmp/strata-bm-test.XXXXXX");
  assert_non_null (mkdtemp (t->dir));
  snprintf (t->path, sizeof t->path, "%s/pool", t->dir);
  assert_int_equal (blockmap_pool_init (t->path, &o), 0);
  assert_int_equal (blockmap_pool_open (t->path, &t->pool), 0);
}

static inline void
tpool_reopen (struct tpool *t)
{
  assert_int_equal (blockmap_pool_open (t->path, &t->pool), 0);
}

static inline void
tpool_done (struct tpool *t)
{
  if (t->pool)
    assert_int_equal (blockmap_pool_close (t->pool), 0);
  t->pool = NULL;
  tpool_rmdir (t);
}

static void
print_problem (void *opaque, const char *msg)
{
  (void) opaque;
  fprintf (stderr, "check: %s\n", msg);
}

static inline int
tpool_check (struct tpool *t)
{
  return blockmap_pool_check (t->pool, print_problem, NULL);
}

/* Write-prepare [OFF, OFF+LEN), asserting one run comes back. */
static inline struct blockmap_run
prep1 (struct blockmap_volume *v, uint64_t off, uint64_t len)
{
  struct blockmap_run r[4];
  int n = blockmap_write_prepare (v, off, len, r, 4);

  assert_int_equal (n, 1);
  return r[0];
}

/* Write BYTE over [OFF, OFF+LEN) of V the way the server does:
 * write_prepare, then pwrite (copying for CoW runs), then commit.
 */
static inline void
write_bytes (struct blockmap_volume *v, uint64_t off, uint64_t len, int byte)
{
  struct blockmap_pool *pool = blockmap_volume_pool (v);
  int fd = blockmap_pool_data_fd (pool, BM_TIER_HOT);
  struct blockmap_run runs[16];
  uint64_t tok = blockmap_io_begin (pool);
  uint64_t done = 0;

  while (done < len) {
    int n = blockmap_write_prepare (v, off + done, len - done, runs, 16);
    assert_true (n >= 1);
    for (int i = 0; i < n; i++) {
      char *buf = malloc (runs[i].length);
      assert_non_null (buf);
      memset (buf, byte, runs[i].length);
      if (runs[i].flags & BM_RUN_COW) {
        char *old = malloc (CS);
        uint64_t in = runs[i].offset % CS;
        ssize_t got;
        assert_non_null (old);
        got = pread (fd, old, CS, runs[i].cow_src_offset);
        assert_true (got >= 0);
        memset (old + got, 0, CS - got);        /* past EOF: zero */
        memcpy (old + in, buf, runs[i].length);
        assert_int_equal (pwrite (fd, old, CS, runs[i].pool_offset), CS);
        assert_int_equal (blockmap_cow_commit (v, &runs[i]), 0);
        free (old);
      }
      else
        assert_int_equal (pwrite (fd, buf, runs[i].length,
                                  runs[i].pool_offset),
                          (ssize_t) runs[i].length);
      free (buf);
      done += runs[i].length;
    }
  }
  blockmap_io_end (pool, tok);
}

/* Read [OFF, OFF+LEN) of V into BUF through map_range. */
static inline void
read_bytes (struct blockmap_volume *v, uint64_t off, uint64_t len, char *buf)
{
  struct blockmap_pool *pool = blockmap_volume_pool (v);
  int fd = blockmap_pool_data_fd (pool, BM_TIER_HOT);
  struct blockmap_run runs[16];
  uint64_t done = 0;

  while (done < len) {
    int n = blockmap_map_range (v, off + done, len - done, runs, 16);
    assert_true (n >= 1);
    for (int i = 0; i < n; i++) {
      char *p = buf + (runs[i].offset - off);
      if (runs[i].tier == BM_TIER_NONE)
        memset (p, 0, runs[i].length);
      else {
        ssize_t r = pread (fd, p, runs[i].length, runs[i].pool_offset);
        assert_true (r >= 0);
        memset (p + r, 0, runs[i].length - r);  /* past EOF: zero */
      }
      done += runs[i].length;
    }
  }
}

/* True if all LEN bytes at P equal BYTE. */
static inline bool
all_bytes (const char *p, uint64_t len, int byte)
{
  for (uint64_t i = 0; i < len; i++)
    if (p[i] != (char) byte)
      return false;
  return true;
}

#endif /* STRATA_TEST_BLOCKMAP_UTIL_H */
