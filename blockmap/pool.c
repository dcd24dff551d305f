/* blockmap/pool.c: pool lifecycle (init, open, close), group commit,
 * the volume indexes and the test hooks.
 *
 * A pool is a directory:
 *
 *   superblock   identity and format version (superblock.c)
 *   checkpoint   the complete state as of an LSN (checkpoint.c)
 *   journal      records after the checkpoint (journal.c)
 *   hot.data     the hot tier: chunk P at byte P * chunk_size, sparse
 *   lock         flock'ed while a process has the pool open
 *
 * Open = load the checkpoint, replay the journal, recompute reference
 * counts and free space from the maps, and (after a crash) punch every
 * free range so that chunks written but never journalled read as zero.
 * The open then journals a POOL_OPEN record, so that a crash from here
 * on is told apart from a clean close (which leaves an empty journal
 * behind a checkpoint marked clean).
 *
 * Group commit (pool_commit_locked), under flush_lock, never the pool
 * lock across I/O:  take the buffered records (pool lock) → fdatasync
 * the data file → write the records at the journal tail → fdatasync the
 * journal → mark them durable and reclaim pending frees (pool lock) →
 * punch those ranges → free them (pool lock).  A record is thus never
 * durable before the data it points at (DESIGN invariant 1).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

/* ---- volume indexes -------------------------------------------------- */

static size_t
name_pos (struct blockmap_pool *pool, const char *name, bool *found)
{
  size_t lo = 0, hi = pool->nvols;

  *found = false;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp (pool->by_name[mid]->name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static size_t
id_pos (struct blockmap_pool *pool, uint64_t id, bool *found)
{
  size_t lo = 0, hi = pool->nvols;

  *found = false;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (pool->by_id[mid]->id == id) {
      *found = true;
      return mid;
    }
    if (pool->by_id[mid]->id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

struct blockmap_volume *
pool_find_volume (struct blockmap_pool *pool, const char *name)
{
  bool found;
  size_t i = name_pos (pool, name, &found);

  return found ? pool->by_name[i] : NULL;
}

struct blockmap_volume *
pool_find_volume_id (struct blockmap_pool *pool, uint64_t id)
{
  bool found;
  size_t i = id_pos (pool, id, &found);

  return found ? pool->by_id[i] : NULL;
}

void
pool_add_volume (struct blockmap_pool *pool, struct blockmap_volume *vol)
{
  bool found;
  size_t i;

  if (pool->nvols == pool->volcap) {
    size_t cap = pool->volcap ? pool->volcap * 2 : 16;
    struct blockmap_volume **a = realloc (pool->by_name, cap * sizeof *a);
    struct blockmap_volume **b;
    if (a == NULL)
      goto oom;
    pool->by_name = a;
    b = realloc (pool->by_id, cap * sizeof *b);
    if (b == NULL)
      goto oom;
    pool->by_id = b;
    pool->volcap = cap;
  }
  i = name_pos (pool, vol->name, &found);
  memmove (&pool->by_name[i + 1], &pool->by_name[i],
           (pool->nvols - i) * sizeof *pool->by_name);
  pool->by_name[i] = vol;
  i = id_pos (pool, vol->id, &found);
  memmove (&pool->by_id[i + 1], &pool->by_id[i],
           (pool->nvols - i) * sizeof *pool->by_id);
  pool->by_id[i] = vol;
  pool->nvols++;
  return;
 oom:
  log_error ("blockmap: out of memory adding volume %s", vol->name);
  abort ();
}

void
pool_remove_volume (struct blockmap_pool *pool, struct blockmap_volume *vol)
{
  bool found;
  size_t i;

  i = name_pos (pool, vol->name, &found);
  if (found && pool->by_name[i] == vol) {
    memmove (&pool->by_name[i], &pool->by_name[i + 1],
             (pool->nvols - i - 1) * sizeof *pool->by_name);
    i = id_pos (pool, vol->id, &found);
    memmove (&pool->by_id[i], &pool->by_id[i + 1],
             (pool->nvols - i - 1) * sizeof *pool->by_id);
    pool->nvols--;
  }
}

/* ---- init ------------------------------------------------------------ */

static int
dir_is_empty (const char *path)
{
  DIR *d = opendir (path);
  struct dirent *e;
  int r = 1;

  if (d == NULL)
    return -errno;
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0) {
      r = 0;
      break;
    }
  closedir (d);
  return r;
}

static int
create_empty (int dirfd, const char *name)
{
  int fd = bm_io->openat (dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                          0644);
  int r;

  if (fd < 0)
    return fd;
  r = bm_io->fsync (fd);
  bm_io->close (fd);
  return r;
}

int
blockmap_pool_init (const char *path, const struct blockmap_pool_opts *opts)
{
  struct superblock sb = { .version = BLOCKMAP_FORMAT_VERSION };
  CLEANUP_BM_CLOSE int dirfd = -1;
  uint64_t cap;
  int r;

  sb.chunk_size = opts && opts->chunk_size ? opts->chunk_size
    : BLOCKMAP_DEFAULT_CHUNK_SIZE;
  if (sb.chunk_size < 4096 || sb.chunk_size > 16 * 1024 * 1024 ||
      (sb.chunk_size & (sb.chunk_size - 1)) != 0) {
    log_error ("blockmap: %s: chunk size %u is not a power of two between "
               "4K and 16M", path, sb.chunk_size);
    return -EINVAL;
  }
  if (mkdir (path, 0755) == -1) {
    if (errno != EEXIST) {
      r = -errno;
      log_error ("blockmap: mkdir %s: %m", path);
      return r;
    }
    r = dir_is_empty (path);
    if (r < 0) {
      log_error ("blockmap: %s: %s", path, strerror (-r));
      return r == -ENOTDIR ? -EEXIST : r;
    }
    if (r == 0) {
      log_error ("blockmap: %s: directory is not empty", path);
      return -EEXIST;
    }
  }
  dirfd = bm_io->openat (AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                         0);
  if (dirfd < 0)
    return dirfd;

  cap = opts ? opts->hot_capacity : 0;
  if (cap == 0) {
    struct statvfs sv;
    if (fstatvfs (dirfd, &sv) == -1)
      return -errno;
    cap = (uint64_t) sv.f_bavail * sv.f_frsize;
  }
  cap &= ~(uint64_t) (sb.chunk_size - 1);
  if (cap < sb.chunk_size) {
    log_error ("blockmap: %s: hot capacity is smaller than one chunk", path);
    return -EINVAL;
  }
  sb.hot_capacity = cap;
  sb.created = time (NULL);
  if (getrandom (sb.uuid, sizeof sb.uuid, 0) != sizeof sb.uuid)
    return -errno;
  sb.uuid[6] = (sb.uuid[6] & 0x0f) | 0x40;      /* RFC 4122 version 4 */
  sb.uuid[8] = (sb.uuid[8] & 0x3f) | 0x80;

  if ((r = create_empty (dirfd, BM_HOT_DATA_FILE)) < 0 ||
      (r = create_empty (dirfd, BM_LOCK_FILE)) < 0 ||
      (r = checkpoint_write_initial (dirfd, sb.uuid)) < 0)
    goto err;
  r = journal_create (dirfd, sb.uuid, 1);
  if (r < 0)
    goto err;
  bm_io->close (r);
  /* The superblock last: until it exists this is not a pool. */
  if ((r = superblock_write (dirfd, &sb)) < 0)
    goto err;
  if ((r = bm_io->fsync (dirfd)) < 0)
    goto err;
  return 0;
 err:
  log_error ("blockmap: %s: creating the pool: %s", path, strerror (-r));
  return r;
}

/* ---- open / close ---------------------------------------------------- */

static void
pool_free (struct blockmap_pool *pool)
{
  for (size_t i = 0; i < pool->nvols; i++) {
    pool->by_id[i]->deleted = true;
    pool->by_id[i]->open_count = 0;
    volume_destroy (pool->by_id[i]);
  }
  free (pool->by_name);
  free (pool->by_id);
  free (pool->reap);            /* its nodes go with the slab */
  rslab_free_all (&pool->slab);
  free (pool->hot.pending);
  free (pool->hot.holds);
  bbuf_free (&pool->jbuf);
  if (pool->hot.fd >= 0)
    bm_io->close (pool->hot.fd);
  if (pool->jfd >= 0)
    bm_io->close (pool->jfd);
  if (pool->dir_fd >= 0)
    bm_io->close (pool->dir_fd);
  if (pool->lock_fd >= 0)
    bm_io->close (pool->lock_fd);       /* releases the flock */
  pthread_mutex_destroy (&pool->lock);
  pthread_mutex_destroy (&pool->flush_lock);
  free (pool->path);
  free (pool);
}

static void
log_problem (void *opaque, const char *msg)
{
  struct blockmap_pool *pool = opaque;

  log_error ("blockmap: %s: %s", pool->path, msg);
}

/* After a crash: chunks allocated but never journalled may hold data
 * that is not ours to show; make every free chunk read as zero.
 */
static int
punch_free_space (struct blockmap_pool *pool)
{
  struct stat st;
  uint64_t eof_chunks;
  const struct rnode *r;
  int e;

  if ((e = bm_io->fstat (pool->hot.fd, &st)) < 0)
    return e;
  eof_chunks = bm_chunks_for (pool, st.st_size);
  for (r = rtree_first (&pool->hot.free); r && r->start < eof_chunks;
       r = rtree_find_gt (&pool->hot.free, r->start)) {
    uint64_t n = r->start + r->len <= eof_chunks ? r->len
      : eof_chunks - r->start;
    e = alloc_punch (pool, r->start, n);
    if (e < 0) {
      log_error ("blockmap: %s: punching free chunks: %s", pool->path,
                 strerror (-e));
      return e;
    }
  }
  return 0;
}

int
blockmap_pool_open (const char *path, struct blockmap_pool **out)
{
  struct blockmap_pool *pool;
  struct superblock sb;
  struct jrec rec;
  uint64_t nrecords = 0;
  bool clean = false;
  int r;

  pool = calloc (1, sizeof *pool);
  if (pool == NULL)
    return -ENOMEM;
  pool->lock_fd = pool->dir_fd = pool->jfd = pool->hot.fd = -1;
  pthread_mutex_init (&pool->lock, NULL);
  pthread_mutex_init (&pool->flush_lock, NULL);
  pool->path = strdup (path);
  if (pool->path == NULL) {
    r = -ENOMEM;
    goto err;
  }

  pool->dir_fd = bm_io->openat (AT_FDCWD, path,
                                O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (pool->dir_fd < 0) {
    r = pool->dir_fd;
    if (r != -ENOENT)
      log_error ("blockmap: open %s: %s", path, strerror (-r));
    goto err;
  }
  r = superblock_read (pool->dir_fd, &sb);
  if (r < 0)
    goto err;
  pool->lock_fd = bm_io->openat (pool->dir_fd, BM_LOCK_FILE,
                                 O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (pool->lock_fd < 0) {
    r = pool->lock_fd;
    log_error ("blockmap: %s: open lock file: %s", path, strerror (-r));
    goto err;
  }
  if (flock (pool->lock_fd, LOCK_EX | LOCK_NB) == -1) {
    r = errno == EWOULDBLOCK ? -EBUSY : -errno;
    if (r != -EBUSY)
      log_error ("blockmap: %s: lock: %m", path);
    goto err;
  }

  memcpy (pool->uuid, sb.uuid, 16);
  uuid_format (pool->uuid, pool->uuid_str);
  pool->chunk_size = sb.chunk_size;
  pool->chunk_shift = __builtin_ctz (sb.chunk_size);
  pool->checkpoint_threshold = BM_CHECKPOINT_THRESHOLD;
  pool->next_vol_id = 1;
  pool->next_lsn = 1;
  rtree_init (&pool->hot.refs, &pool->slab, RT_COUNT);
  rtree_init (&pool->hot.free, &pool->slab, RT_SET);
  rtree_init (&pool->hot.held, &pool->slab, RT_COUNT);
  pool->hot.capacity = sb.hot_capacity >> pool->chunk_shift;

  pool->hot.fd = bm_io->openat (pool->dir_fd, BM_HOT_DATA_FILE,
                                O_RDWR | O_CLOEXEC, 0);
  if (pool->hot.fd < 0) {
    r = pool->hot.fd == -ENOENT ? -EUCLEAN : pool->hot.fd;
    log_error ("blockmap: %s: open %s: %s", path, BM_HOT_DATA_FILE,
               strerror (-pool->hot.fd));
    goto err;
  }

  if ((r = checkpoint_load (pool, &clean)) < 0)
    goto err;
  if ((r = journal_replay (pool, &nrecords)) < 0)
    goto err;

  /* Reference counts and free space come from the maps alone. */
  rtree_clear (&pool->hot.refs);
  refcount_compute (pool, &pool->hot.refs);
  if ((r = alloc_rebuild_free (pool)) < 0)
    goto err;
  /* Every chunk the durable maps reference was inside the data file
   * when its record became durable (see tier_extend), so the check
   * below finds a file that has since been cut short.
   */
  pool->hot.data_end = tier_data_end (pool, &pool->hot);
  pool->recovered = !clean || nrecords > 0;
  if (pool->recovered) {
    log_info ("blockmap: %s: recovering: replayed %" PRIu64 " journal "
              "records after checkpoint LSN %" PRIu64, path, nrecords,
              pool->checkpoint_lsn);
    if ((r = punch_free_space (pool)) < 0)
      goto err;
  }
  r = check_locked (pool, log_problem, pool);
  if (r != 0) {
    if (r > 0)
      log_error ("blockmap: %s: %d problems found, refusing to open", path, r);
    r = r > 0 ? -EUCLEAN : r;
    goto err;
  }
  alloc_refresh_fs (pool);

  memset (&rec, 0, sizeof rec);
  rec.type = JREC_POOL_OPEN;
  rec.time = time (NULL);
  {
    LOCK_FOR_SCOPE (&pool->lock);
    r = state_log (pool, &rec);
  }
  if (r == 0) {
    LOCK_FOR_SCOPE (&pool->flush_lock);
    r = pool_commit_locked (pool);
  }
  if (r < 0)
    goto err;
  *out = pool;
  return 0;

 err:
  pool_free (pool);
  return r;
}

int
blockmap_pool_close (struct blockmap_pool *pool)
{
  int r = 0;

  if (pool == NULL)
    return 0;
  {
    LOCK_FOR_SCOPE (&pool->flush_lock);
    if (pool->failed)
      r = -EIO;
    else {
      r = pool_commit_locked (pool);
      if (r == 0)
        r = checkpoint_write (pool, true);
    }
  }
  for (size_t i = 0; i < pool->nvols; i++)
    if (pool->by_id[i]->open_count > 0)
      log_warn ("blockmap: %s: closing with volume %s still open",
                pool->path, pool->by_id[i]->name);
  pool_free (pool);
  return r;
}

void
blockmap_pool_crash_close (struct blockmap_pool *pool)
{
  if (pool)
    pool_free (pool);
}

/* ---- commit ---------------------------------------------------------- */

static int
commit_failed (struct blockmap_pool *pool, const char *what, int err)
{
  log_error ("blockmap: %s: %s: %s; refusing further changes", pool->path,
             what, strerror (-err));
  LOCK_FOR_SCOPE (&pool->lock);
  pool->failed = true;
  return -EIO;
}

uint64_t
tier_data_end (const struct blockmap_pool *pool, const struct tier_space *ts)
{
  const struct rnode *n = rtree_find_le (&ts->refs, UINT64_MAX);
  uint64_t end = n ? n->start + n->len : 0;

  if (ts->alloc_end > end)
    end = ts->alloc_end;
  return end << pool->chunk_shift;
}

int
tier_extend (struct tier_space *ts, uint64_t end)
{
  uint64_t start;
  int r;

  if (end <= ts->data_end || ts->no_extend)
    return 0;
  /* Not ftruncate: loops may be writing past END right now, to chunks
   * allocated since this commit began, and a size taken before their
   * writes would cut them off.  fallocate over the last block grows
   * the file to END if it is shorter, never shrinks it, and leaves
   * data alone (an allocated block stays as it is).
   */
  start = end >= 4096 ? end - 4096 : 0;
  r = bm_io->fallocate (ts->fd, 0, start, end - start);
  if (r == -EOPNOTSUPP) {
    ts->no_extend = true;       /* pool check cannot rely on the size */
    return 0;
  }
  return r;
}

int
pool_commit_locked (struct blockmap_pool *pool)
{
  struct bbuf b;
  uint64_t last, end;
  struct pending_free *v;
  size_t n;
  int r;

  {
    LOCK_FOR_SCOPE (&pool->lock);
    if (pool->failed)
      return -EIO;
    pool->commits_started++;
    b = pool->jbuf;
    memset (&pool->jbuf, 0, sizeof pool->jbuf);
    last = pool->next_lsn - 1;
    end = tier_data_end (pool, &pool->hot);
  }
  if ((r = tier_extend (&pool->hot, end)) < 0
      || (r = bm_io->fdatasync (pool->hot.fd)) < 0) {
    bbuf_free (&b);
    return commit_failed (pool, "fdatasync " BM_HOT_DATA_FILE, r);
  }
  if (b.len > 0) {
    r = bm_pwrite_all (pool->jfd, b.p, b.len, pool->journal_size);
    if (r == 0)
      r = bm_io->fdatasync (pool->jfd);
    if (r < 0) {
      bbuf_free (&b);
      return commit_failed (pool, "writing the journal", r);
    }
    pool->journal_size += b.len;
  }
  bbuf_free (&b);
  {
    LOCK_FOR_SCOPE (&pool->lock);
    pool->durable_lsn = last;
    if (end > pool->hot.data_end && !pool->hot.no_extend)
      pool->hot.data_end = end;
    /* Deletes just made durable may let go of what they shared. */
    reap_step (pool, BM_REAP_BATCH);
    n = alloc_reclaim_take (pool, BM_RECLAIM_BATCH, &v);
  }
  if (n > 0)
    alloc_reclaim_finish (pool, v, n);
  alloc_refresh_fs (pool);
  return 0;
}

int
blockmap_pool_sync (struct blockmap_pool *pool)
{
  uint64_t s0;

  {
    LOCK_FOR_SCOPE (&pool->lock);
    if (pool->failed)
      return -EIO;
    s0 = pool->commits_started;
  }
  LOCK_FOR_SCOPE (&pool->flush_lock);
  {
    LOCK_FOR_SCOPE (&pool->lock);
    /* A commit that started after our call has finished meanwhile. */
    if (pool->commits_started > s0)
      return pool->failed ? -EIO : 0;
  }
  int r = pool_commit_locked (pool);
  if (r == 0 && pool->journal_size > pool->checkpoint_threshold)
    r = checkpoint_write (pool, false);
  return r;
}

int
blockmap_pool_checkpoint (struct blockmap_pool *pool)
{
  LOCK_FOR_SCOPE (&pool->flush_lock);
  int r = pool_commit_locked (pool);
  if (r == 0)
    r = checkpoint_write (pool, false);
  return r;
}

/* ---- queries --------------------------------------------------------- */

int
blockmap_pool_data_fd (const struct blockmap_pool *pool,
                       enum blockmap_tier tier)
{
  return tier == BM_TIER_HOT ? pool->hot.fd : -1;
}

bool
blockmap_pool_sync_wanted (struct blockmap_pool *pool)
{
  LOCK_FOR_SCOPE (&pool->lock);
  return !pool->failed
    && (pool->jbuf.len > 0 || pool->hot.pending_chunks > 0
        || pool->hot.nholds > pool->hot.hhead);
}

void
blockmap_pool_info (struct blockmap_pool *pool,
                    struct blockmap_pool_info *info)
{
  LOCK_FOR_SCOPE (&pool->lock);
  uint64_t extents = 0;

  memset (info, 0, sizeof *info);
  memcpy (info->uuid, pool->uuid_str, sizeof info->uuid);
  snprintf (info->path, sizeof info->path, "%s", pool->path);
  info->format_version = BLOCKMAP_FORMAT_VERSION;
  info->chunk_size = pool->chunk_size;
  info->hot_capacity = pool->hot.capacity << pool->chunk_shift;
  info->hot_free = pool->hot.free.total << pool->chunk_shift;
  info->hot_used = info->hot_capacity - info->hot_free;
  info->volumes = pool->nvols;
  for (size_t i = 0; i < pool->nvols; i++)
    extents += pool->by_id[i]->map.nodes;
  info->extents = extents;
  /* Every node of the maps (shared ones once), the refcount, free and
   * held trees, and the maps of deleted volumes not yet freed.
   */
  info->map_memory = pool->slab.used * sizeof (struct rnode)
    + pool->nvols * sizeof (struct blockmap_volume);
  info->reap_pending = pool->nreap;
  info->journal_bytes = pool->journal_size;
  info->pending_chunks = pool->hot.pending_chunks + pool->hot.transit_chunks;
  info->recovered = pool->recovered;
  info->journal_dropped = pool->journal_dropped;
}

int
blockmap_pool_check (struct blockmap_pool *pool,
                     void (*report) (void *opaque, const char *msg),
                     void *opaque)
{
  LOCK_FOR_SCOPE (&pool->lock);
  return check_locked (pool, report, opaque);
}

/* ---- data-path epochs ------------------------------------------------ */

uint64_t
blockmap_io_begin (struct blockmap_pool *pool)
{
  LOCK_FOR_SCOPE (&pool->lock);
  pool->inflight[pool->epoch % BM_EPOCH_SLOTS]++;
  return pool->epoch;
}

void
blockmap_io_end (struct blockmap_pool *pool, uint64_t token)
{
  LOCK_FOR_SCOPE (&pool->lock);
  if (pool->inflight[token % BM_EPOCH_SLOTS] == 0) {
    log_error ("blockmap: %s: io_end with token %" PRIu64 " not begun",
               pool->path, token);
    return;
  }
  pool->inflight[token % BM_EPOCH_SLOTS]--;
}

/* ---- test hooks ------------------------------------------------------ */

void
blockmap_test_set_checkpoint_threshold (struct blockmap_pool *pool,
                                        uint64_t bytes)
{
  LOCK_FOR_SCOPE (&pool->lock);
  pool->checkpoint_threshold = bytes;
}

void
blockmap_test_corrupt_refcount (struct blockmap_pool *pool, uint64_t pchunk,
                                int delta)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct rtree *t = &pool->hot.refs;
  struct rnode *r = rtree_lookup (t, pchunk);
  int64_t c = r ? (int64_t) r->val : 0;

  rtree_remove_range (t, pchunk, 1, NULL, NULL);
  if (c + delta > 0)
    rtree_add_range (t, pchunk, 1, c + delta, 0, 0);
}

int
blockmap_test_share_range (struct blockmap_pool *pool, const char *src,
                           const char *dst, uint64_t lchunk, uint64_t count)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct blockmap_volume *s = pool_find_volume (pool, src);
  struct blockmap_volume *d = pool_find_volume (pool, dst);
  uint64_t pos = lchunk, end = lchunk + count;

  if (s == NULL || d == NULL)
    return -ENOENT;
  while (pos < end) {
    const struct rnode *e = rtree_lookup (&s->map, pos);
    struct jrec rec = { .type = JREC_MAP, .vol = d->id };
    int r;

    if (e == NULL) {
      e = rtree_find_gt (&s->map, pos);
      if (e == NULL || e->start >= end)
        break;
      pos = e->start;
    }
    rec.lchunk = pos;
    rec.pchunk = e->val + (pos - e->start);
    rec.count = (e->start + e->len < end ? e->start + e->len : end) - pos;
    rec.tier = e->tier;
    rec.flags = e->flags;
    pos += rec.count;
    if ((r = state_log (pool, &rec)) < 0)
      return r;
  }
  return 0;
}
