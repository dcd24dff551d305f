/* blockmap/checkpoint.c: the complete state, written now and then so
 * that the journal stays short.
 *
 * "checkpoint" (all little-endian):
 *
 *   "STRCKPT\0" | version u32 | flags u32 (1: clean close) | uuid 16
 *   | last LSN u64 | next volume id u64 | volume count u64
 *   per volume: id u64 | size u64 | created u64 | flags u32
 *               | name | type | attrs (u32 length incl. NUL, bytes)
 *               | extent count u64
 *               | extents: lchunk u64 | pchunk u64 | count u64
 *                          | tier u8 | flags u8
 *   "STRCKEND" | CRC32 of everything before it, seeded with the uuid
 *
 * Writing (checkpoint_write, under flush_lock): serialize the state
 * under the pool lock (taking the journal buffer with it: its records
 * are all in the state), fdatasync the data file, write checkpoint.tmp,
 * fsync, rename over checkpoint, fsync the directory, then start a new
 * journal at the next LSN.  Serializing before the data sync is safe:
 * a map entry exists only for a chunk that reads as zero (fresh) or
 * whose data write has completed (CoW commit), so once the data file is
 * synced every entry points at the right bytes.  A crash between the
 * rename and the new journal leaves an old journal whose records are
 * all at or below the checkpoint's LSN; replay skips them.
 *
 * Loading goes through state_check/state_apply with VOL_CREATE and MAP
 * records made up from the file, like replay, so the same rules hold.
 *
 * XXX The state is serialized into memory while holding the pool lock:
 * about 26 bytes and a few hundred nanoseconds per extent.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define CKPT_MAGIC "STRCKPT"
#define CKPT_END "STRCKEND"
#define CKPT_TMP_FILE "checkpoint.tmp"
#define CKPT_CLEAN 1u
#define CKPT_HDR_SIZE 56

static void
put_header (struct bbuf *b, const unsigned char uuid[16], bool clean,
            uint64_t last_lsn, uint64_t next_vol_id, uint64_t nvols)
{
  bbuf_put_bytes (b, CKPT_MAGIC, 8);
  bbuf_put_u32 (b, BLOCKMAP_FORMAT_VERSION);
  bbuf_put_u32 (b, clean ? CKPT_CLEAN : 0);
  bbuf_put_bytes (b, uuid, 16);
  bbuf_put_u64 (b, last_lsn);
  bbuf_put_u64 (b, next_vol_id);
  bbuf_put_u64 (b, nvols);
}

static void
put_trailer (struct bbuf *b, const unsigned char uuid[16])
{
  bbuf_put_bytes (b, CKPT_END, 8);
  bbuf_put_u32 (b, bm_crc (uuid, b->p, b->len));
}

static int
put_extent (void *opaque, const struct rnode *e)
{
  struct bbuf *b = opaque;

  bbuf_put_u64 (b, e->start);
  bbuf_put_u64 (b, e->val);
  bbuf_put_u64 (b, e->len);
  bbuf_put_u8 (b, e->tier);
  bbuf_put_u8 (b, e->flags);
  return 0;
}

static void
serialize (struct blockmap_pool *pool, bool clean, uint64_t last,
           struct bbuf *b)
{
  uint64_t extents = 0;

  for (size_t i = 0; i < pool->nvols; i++)
    extents += pool->by_id[i]->map.nodes;
  bbuf_reserve (b, CKPT_HDR_SIZE + 12 + extents * 26
                + pool->nvols * (64 + BLOCKMAP_NAME_MAX));
  put_header (b, pool->uuid, clean, last, pool->next_vol_id, pool->nvols);
  for (size_t i = 0; i < pool->nvols; i++) {
    const struct blockmap_volume *v = pool->by_id[i];
    bbuf_put_u64 (b, v->id);
    bbuf_put_u64 (b, v->size);
    bbuf_put_u64 (b, v->created);
    bbuf_put_u32 (b, v->readonly ? 1 : 0);
    bbuf_put_str (b, v->name);
    bbuf_put_str (b, v->type);
    bbuf_put_str (b, v->attrs);
    bbuf_put_u64 (b, v->map.nodes);
    rtree_walk (&v->map, put_extent, b);
  }
  put_trailer (b, pool->uuid);
}

static int
install (int dirfd, const struct bbuf *b)
{
  CLEANUP_BM_CLOSE int fd = -1;
  int r;

  fd = bm_io->openat (dirfd, CKPT_TMP_FILE,
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return fd;
  if ((r = bm_pwrite_all (fd, b->p, b->len, 0)) < 0 ||
      (r = bm_io->fsync (fd)) < 0 ||
      (r = bm_io->renameat (dirfd, CKPT_TMP_FILE, dirfd,
                            BM_CHECKPOINT_FILE)) < 0 ||
      (r = bm_io->fsync (dirfd)) < 0)
    return r;
  return 0;
}

int
checkpoint_write_initial (int dirfd, const unsigned char uuid[16])
{
  struct bbuf b = { 0 };
  int r;

  put_header (&b, uuid, true, 0, 1, 0);
  put_trailer (&b, uuid);
  r = install (dirfd, &b);
  bbuf_free (&b);
  return r;
}

int
checkpoint_write (struct blockmap_pool *pool, bool clean)
{
  struct bbuf b = { 0 };
  struct pending_free *v;
  uint64_t last, end;
  size_t n;
  int r, jfd;
  const char *what;

  {
    LOCK_FOR_SCOPE (&pool->lock);
    if (pool->failed)
      return -EIO;
    pool->commits_started++;
    last = pool->next_lsn - 1;
    serialize (pool, clean, last, &b);
    /* Every buffered record is in the serialized state. */
    pool->jbuf.len = 0;
    end = tier_data_end (pool, &pool->hot);
  }
  what = "extending " BM_HOT_DATA_FILE;
  if ((r = tier_extend (&pool->hot, end)) < 0)
    goto fail;
  what = "fdatasync " BM_HOT_DATA_FILE;
  if ((r = bm_io->fdatasync (pool->hot.fd)) < 0)
    goto fail;
  what = "writing the checkpoint";
  if ((r = install (pool->dir_fd, &b)) < 0)
    goto fail;
  bbuf_free (&b);
  what = "starting a new journal";
  jfd = journal_create (pool->dir_fd, pool->uuid, last + 1);
  if (jfd < 0) {
    r = jfd;
    goto fail;
  }
  bm_io->close (pool->jfd);
  pool->jfd = jfd;
  pool->journal_size = JOURNAL_HDR_SIZE;
  {
    LOCK_FOR_SCOPE (&pool->lock);
    pool->checkpoint_lsn = last;
    pool->durable_lsn = last;
    n = alloc_reclaim_take (pool, &v);
  }
  if (n > 0)
    alloc_reclaim_finish (pool, v, n);
  log_debug (DBG_JOURNAL, "blockmap: %s: checkpoint at LSN %" PRIu64 "%s",
             pool->path, last, clean ? " (clean)" : "");
  return 0;

 fail:
  bbuf_free (&b);
  log_error ("blockmap: %s: checkpoint: %s: %s; refusing further changes",
             pool->path, what, strerror (-r));
  {
    LOCK_FOR_SCOPE (&pool->lock);
    pool->failed = true;
  }
  return -EIO;
}

static int
load (struct blockmap_pool *pool, const unsigned char *m, size_t size,
      bool *clean)
{
  struct breader br = { .p = m, .len = size - 12 };
  uint64_t nvols, next_vol_id;
  uint32_t version, flags;
  int r;

  if (memcmp (m, CKPT_MAGIC, 8) != 0)
    return -EUCLEAN;
  br.pos = 8;
  version = br_u32 (&br);
  if (version != BLOCKMAP_FORMAT_VERSION) {
    log_error ("blockmap: %s: checkpoint format version %u unknown",
               pool->path, version);
    return -EPROTO;
  }
  flags = br_u32 (&br);
  if (memcmp (m + br.pos, pool->uuid, 16) != 0)
    return -EUCLEAN;
  br.pos += 16;
  pool->checkpoint_lsn = br_u64 (&br);
  next_vol_id = br_u64 (&br);
  nvols = br_u64 (&br);
  *clean = flags & CKPT_CLEAN;

  for (uint64_t i = 0; i < nvols && !br.err; i++) {
    struct jrec c = { .type = JREC_VOL_CREATE };
    struct blockmap_volume *vol;
    uint64_t nextents, prev_end = 0;
    uint32_t vflags;

    c.vol = br_u64 (&br);
    c.size = br_u64 (&br);
    c.time = br_u64 (&br);
    vflags = br_u32 (&br);
    c.name = br_str (&br, BLOCKMAP_NAME_MAX);
    c.vtype = br_str (&br, BLOCKMAP_TYPE_MAX);
    c.attrs = br_str (&br, BLOCKMAP_ATTRS_MAX);
    nextents = br_u64 (&br);
    if (br.err)
      break;
    if ((r = state_check (pool, &c)) < 0) {
      log_error ("blockmap: %s: checkpoint: volume id %" PRIu64 " is "
                 "invalid: %s", pool->path, c.vol, strerror (-r));
      return -EUCLEAN;
    }
    state_apply (pool, &c);
    vol = pool_find_volume_id (pool, c.vol);
    vol->readonly = vflags & 1;
    for (uint64_t j = 0; j < nextents && !br.err; j++) {
      struct jrec e = { .type = JREC_MAP, .vol = c.vol };
      e.lchunk = br_u64 (&br);
      e.pchunk = br_u64 (&br);
      e.count = br_u64 (&br);
      e.tier = br_u8 (&br);
      e.flags = br_u8 (&br);
      if (br.err)
        break;
      if ((j > 0 && e.lchunk < prev_end) ||
          (r = state_check (pool, &e)) < 0) {
        log_error ("blockmap: %s: checkpoint: volume %s: extent at chunk %"
                   PRIu64 " is invalid or overlaps", pool->path, vol->name,
                   e.lchunk);
        return -EUCLEAN;
      }
      prev_end = e.lchunk + e.count;
      state_apply (pool, &e);
    }
  }
  if (br.err || br.pos != br.len) {
    log_error ("blockmap: %s: checkpoint is truncated or malformed",
               pool->path);
    return -EUCLEAN;
  }
  if (next_vol_id > pool->next_vol_id)
    pool->next_vol_id = next_vol_id;
  return 0;
}

int
checkpoint_load (struct blockmap_pool *pool, bool *clean)
{
  CLEANUP_BM_CLOSE int fd = -1;
  CLEANUP_FREE unsigned char *m = NULL;
  uint64_t size;
  int r;

  fd = bm_io->openat (pool->dir_fd, BM_CHECKPOINT_FILE, O_RDONLY | O_CLOEXEC,
                      0);
  if (fd < 0) {
    log_error ("blockmap: %s: open checkpoint: %s", pool->path,
               strerror (-fd));
    return fd == -ENOENT ? -EUCLEAN : fd;
  }
  if ((r = bm_read_file (fd, &m, &size)) < 0) {
    log_error ("blockmap: %s: read checkpoint: %s", pool->path,
               strerror (-r));
    return r;
  }
  if (size < CKPT_HDR_SIZE + 12) {
    log_error ("blockmap: %s: checkpoint is truncated", pool->path);
    return -EUCLEAN;
  }
  if (memcmp (m + size - 12, CKPT_END, 8) != 0 ||
      le32_get (m + size - 4) != bm_crc (pool->uuid, m, size - 4)) {
    /* A version we do not know may checksum differently: say so. */
    if (memcmp (m, CKPT_MAGIC, 8) == 0 &&
        le32_get (m + 8) != BLOCKMAP_FORMAT_VERSION) {
      log_error ("blockmap: %s: checkpoint format version %u unknown",
                 pool->path, le32_get (m + 8));
      r = -EPROTO;
    }
    else {
      log_error ("blockmap: %s: checkpoint checksum mismatch", pool->path);
      r = -EUCLEAN;
    }
  }
  else
    r = load (pool, m, size, clean);
  return r;
}
