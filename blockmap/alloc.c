/* blockmap/alloc.c: free space of the hot tier, pending frees, and the
 * I/O epochs that make a freed chunk's grace period.
 *
 * Every chunk of the tier is in exactly one state:
 *
 *   free ──alloc_run──▶ mapped (refcount tree) ──count 0──▶ pending
 *     ▲                   ▲ (or reserved for a CoW, until commit)  │
 *     └──── punched ◀── in transit ◀── durable and grace over ─────┘
 *
 * The free tree is an rtree of free runs.  alloc_run takes the chunk
 * after the logical predecessor's chunk when it is free (the hint), so
 * sequential writes stay one extent.  A chunk without a mapped
 * predecessor goes to the lowest free run.  When the hint is taken,
 * another writer is filling that space, so the chunk goes to the
 * middle of the largest of the next few free runs: two volumes written
 * sequentially at the same time then each stay a few extents instead
 * of interleaving chunk by chunk.
 *
 * A freed chunk is pending until (a) the journal record that freed it
 * is durable and (b) every data I/O that began before the free has
 * ended: blockmap_io_begin returns the current epoch and counts the
 * I/O in that epoch's slot; each free is tagged with the current epoch
 * and then the epoch moves on.  A pending free is past its grace
 * period once no slot at or before its epoch has I/O in flight.  If
 * the next slot is still busy (an I/O older than BM_EPOCH_SLOTS frees)
 * the epoch does not move, which only makes later frees wait longer.
 * Only then is the range punched, so a reused chunk reads as zero
 * (DESIGN invariant 2), and put back in the free tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

/* When the hint is taken: how many free runs to look at for the
 * largest, and the smallest half-run worth splitting.
 */
#define ALLOC_SCAN_RUNS 32
#define ALLOC_MIN_SPLIT 16

uint64_t
alloc_run (struct blockmap_pool *pool, uint64_t hint, bool strict,
           uint64_t want, uint64_t *p)
{
  struct tier_space *ts = &pool->hot;
  struct rnode *r = NULL;
  uint64_t start, take;

  if (want == 0)
    return 0;
  if (hint != UINT64_MAX)
    r = rtree_lookup (&ts->free, hint);
  if (r) {
    start = hint;
    take = r->start + r->len - hint;
  }
  else if (strict)
    return 0;
  else if (hint != UINT64_MAX) {
    /* Someone else took the chunk after ours: another writer is
     * filling the space here.  Move to the middle of the largest free
     * run nearby, so that both can go on sequentially.
     */
    const struct rnode *best = NULL, *n = rtree_find_gt (&ts->free, hint);
    for (int i = 0; i < ALLOC_SCAN_RUNS; i++) {
      if (n == NULL && (n = rtree_first (&ts->free)) == NULL)
        return 0;
      if (best == NULL || n->len > best->len)
        best = n;
      n = rtree_find_gt (&ts->free, n->start);
    }
    start = best->start;
    take = best->len;
    if (best->len / 2 >= (want > ALLOC_MIN_SPLIT ? want : ALLOC_MIN_SPLIT)) {
      start += best->len / 2;
      take -= best->len / 2;
    }
  }
  else {
    r = rtree_first (&ts->free);
    if (r == NULL)
      return 0;
    start = r->start;
    take = r->len;
  }
  if (take > want)
    take = want;
  rtree_remove_range (&ts->free, start, take, NULL, NULL);
  ts->fs_avail = ts->fs_avail > take ? ts->fs_avail - take : 0;
  if (start + take > ts->alloc_end)
    ts->alloc_end = start + take;
  *p = start;
  return take;
}

void
alloc_release (struct blockmap_pool *pool, uint64_t p, uint64_t n,
               uint64_t lsn)
{
  struct tier_space *ts = &pool->hot;
  struct pending_free *last;

  if (n == 0)
    return;
  ts->pending_chunks += n;
  last = ts->npending > ts->phead ? &ts->pending[ts->npending - 1] : NULL;
  if (last && last->lsn == lsn && last->epoch == pool->epoch &&
      last->pchunk + last->count == p)
    last->count += n;
  else {
    if (ts->npending == ts->pcap) {
      size_t cap = ts->pcap ? ts->pcap * 2 : 64;
      struct pending_free *v = realloc (ts->pending, cap * sizeof *v);
      if (v == NULL) {
        log_error ("blockmap: out of memory for the pending free list");
        abort ();
      }
      ts->pending = v;
      ts->pcap = cap;
    }
    ts->pending[ts->npending++] = (struct pending_free) {
      .pchunk = p, .count = n, .lsn = lsn, .epoch = pool->epoch,
    };
  }
  /* Later I/Os belong to a later epoch, unless that slot is busy. */
  if (pool->inflight[(pool->epoch + 1) % BM_EPOCH_SLOTS] == 0)
    pool->epoch++;
}

void
alloc_hold (struct blockmap_pool *pool, uint64_t p, uint64_t n, uint64_t lsn)
{
  struct tier_space *ts = &pool->hot;

  if (ts->nholds == ts->hcap) {
    size_t cap = ts->hcap ? ts->hcap * 2 : 64;
    struct pending_free *v = realloc (ts->holds, cap * sizeof *v);
    if (v == NULL) {
      log_error ("blockmap: out of memory for the held chunk list");
      abort ();
    }
    ts->holds = v;
    ts->hcap = cap;
  }
  ts->holds[ts->nholds++] = (struct pending_free) {
    .pchunk = p, .count = n, .lsn = lsn, .epoch = pool->epoch,
  };
  refcount_tree_adjust (&ts->held, p, n, +1);
  if (pool->inflight[(pool->epoch + 1) % BM_EPOCH_SLOTS] == 0)
    pool->epoch++;
}

void
alloc_expire_holds (struct blockmap_pool *pool)
{
  struct tier_space *ts = &pool->hot;
  uint64_t oldest = alloc_oldest_epoch (pool);

  while (ts->hhead < ts->nholds) {
    const struct pending_free *h = &ts->holds[ts->hhead];
    if (h->lsn > pool->durable_lsn || h->epoch >= oldest)
      break;
    refcount_tree_adjust (&ts->held, h->pchunk, h->count, -1);
    ts->hhead++;
  }
  if (ts->hhead == ts->nholds)
    ts->hhead = ts->nholds = 0;
  else if (ts->hhead > ts->nholds / 2) {
    memmove (ts->holds, &ts->holds[ts->hhead],
             (ts->nholds - ts->hhead) * sizeof *ts->holds);
    ts->nholds -= ts->hhead;
    ts->hhead = 0;
  }
}

uint64_t
alloc_oldest_epoch (const struct blockmap_pool *pool)
{
  uint64_t e = pool->epoch >= BM_EPOCH_SLOTS - 1
    ? pool->epoch - (BM_EPOCH_SLOTS - 1) : 0;

  for (; e <= pool->epoch; e++)
    if (pool->inflight[e % BM_EPOCH_SLOTS] > 0)
      return e;
  return pool->epoch + 1;
}

int
alloc_rebuild_free (struct blockmap_pool *pool)
{
  struct tier_space *ts = &pool->hot;
  const struct rnode *r;
  uint64_t pos = 0;

  rtree_clear (&ts->free);
  rtree_clear (&ts->held);
  ts->hhead = ts->nholds = 0;
  ts->phead = ts->npending = 0;
  ts->pending_chunks = ts->reserved_chunks = ts->transit_chunks = 0;
  for (r = rtree_first (&ts->refs); r; r = rtree_find_gt (&ts->refs, r->start)) {
    if (r->start + r->len > ts->capacity) {
      log_error ("blockmap: %s: chunks %" PRIu64 "..%" PRIu64 " are mapped "
                 "but lie beyond the capacity of %" PRIu64 " chunks",
                 pool->path, r->start, r->start + r->len - 1, ts->capacity);
      return -EUCLEAN;
    }
    if (r->start > pos)
      rtree_add_range (&ts->free, pos, r->start - pos, 0, 0, 0);
    pos = r->start + r->len;
  }
  if (pos < ts->capacity)
    rtree_add_range (&ts->free, pos, ts->capacity - pos, 0, 0, 0);
  return 0;
}

size_t
alloc_reclaim_take (struct blockmap_pool *pool, size_t max,
                    struct pending_free **out)
{
  struct tier_space *ts = &pool->hot;
  uint64_t oldest = alloc_oldest_epoch (pool);
  size_t i, n;
  struct pending_free *v;

  *out = NULL;
  alloc_expire_holds (pool);
  for (i = ts->phead; i < ts->npending && i - ts->phead < max; i++)
    if (ts->pending[i].lsn > pool->durable_lsn ||
        ts->pending[i].epoch >= oldest)
      break;
  n = i - ts->phead;
  if (n == 0)
    return 0;
  v = malloc (n * sizeof *v);
  if (v == NULL)
    return 0;                   /* try again at the next sync */
  memcpy (v, &ts->pending[ts->phead], n * sizeof *v);
  for (i = 0; i < n; i++) {
    ts->pending_chunks -= v[i].count;
    ts->transit_chunks += v[i].count;
  }
  ts->phead += n;
  if (ts->phead == ts->npending)
    ts->phead = ts->npending = 0;
  else if (ts->phead > ts->npending / 2) {
    memmove (ts->pending, &ts->pending[ts->phead],
             (ts->npending - ts->phead) * sizeof *ts->pending);
    ts->npending -= ts->phead;
    ts->phead = 0;
  }
  *out = v;
  return n;
}

int
alloc_punch (struct blockmap_pool *pool, uint64_t p, uint64_t n)
{
  static const char zero[65536];
  uint64_t off = p << pool->chunk_shift, len = n << pool->chunk_shift;
  struct stat st;
  uint64_t eof;
  int e;

  e = bm_io->fallocate (pool->hot.fd,
                        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
  if (e != -EOPNOTSUPP)
    return e;
  /* No hole punching here: write zeroes over what lies below EOF. */
  if ((e = bm_io->fstat (pool->hot.fd, &st)) < 0)
    return e;
  eof = st.st_size;
  if (off >= eof)
    return 0;
  if (off + len > eof)
    len = eof - off;
  while (len > 0) {
    size_t step = len < sizeof zero ? len : sizeof zero;
    int r = bm_pwrite_all (pool->hot.fd, zero, step, off);
    if (r < 0)
      return r;
    off += step;
    len -= step;
  }
  return 0;
}

void
alloc_reclaim_finish (struct blockmap_pool *pool, struct pending_free *v,
                      size_t n)
{
  struct tier_space *ts = &pool->hot;
  int *ok = calloc (n ? n : 1, sizeof *ok);

  for (size_t i = 0; i < n; i++) {
    int r = alloc_punch (pool, v[i].pchunk, v[i].count);
    if (r < 0)
      log_error ("blockmap: %s: punch chunks %" PRIu64 "..%" PRIu64 ": %s "
                 "(kept out of use)", pool->path, v[i].pchunk,
                 v[i].pchunk + v[i].count - 1, strerror (-r));
    if (ok)
      ok[i] = r == 0;
  }
  {
    LOCK_FOR_SCOPE (&pool->lock);
    for (size_t i = 0; i < n; i++) {
      ts->transit_chunks -= v[i].count;
      if (ok && ok[i]) {
        rtree_add_range (&ts->free, v[i].pchunk, v[i].count, 0, 0, 0);
        ts->fs_avail += v[i].count;
      }
      else {
        /* Not punched: back on the pending list to retry later. */
        alloc_release (pool, v[i].pchunk, v[i].count, 0);
      }
    }
  }
  free (ok);
  free (v);
}

void
alloc_refresh_fs (struct blockmap_pool *pool)
{
  struct statvfs sv;

  if (fstatvfs (pool->hot.fd, &sv) == 0) {
    LOCK_FOR_SCOPE (&pool->lock);
    pool->hot.fs_avail = (uint64_t) sv.f_bavail * sv.f_frsize
      >> pool->chunk_shift;
  }
}

size_t
blockmap_pool_reclaim (struct blockmap_pool *pool, size_t max_ranges)
{
  struct pending_free *v;
  size_t n;

  {
    LOCK_FOR_SCOPE (&pool->lock);
    n = alloc_reclaim_take (pool, max_ranges, &v);
  }
  if (n > 0)
    alloc_reclaim_finish (pool, v, n);
  return n;
}
