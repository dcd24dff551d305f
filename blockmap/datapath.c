/* blockmap/datapath.c: resolving reads and writes to runs.
 *
 * These run on the event-loop threads: they hold the pool lock for a
 * map walk (O(log n) per run) and, for writes to holes, an allocation
 * and a buffered MAP record; never any I/O.  Runs are built left to
 * right and merged while they stay contiguous in the data file, so a
 * sequential volume resolves to one run.
 *
 * Writes to holes map freshly allocated chunks at once: a fresh chunk
 * was punched when it was freed (alloc.c), so it reads as zero until
 * the caller's data lands.  A chunk whose count is above one is never
 * written in place: write_prepare reserves a new chunk and returns a
 * BM_RUN_COW run; the map switches only at blockmap_cow_commit, after
 * the caller has copied and written the new chunk (DESIGN invariant 3).
 * A chunk that was shared until a change not yet durable is still
 * treated as shared (refcount.c, "held"): written in place, it would
 * change what the other map points at if that change were lost.
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

static int
range_check (const struct blockmap_volume *vol, uint64_t offset,
             uint64_t length)
{
  uint64_t size;

  if (vol->deleted)
    return -ESHUTDOWN;
  size = vol->size;
  if (length == 0 || offset > size || length > size - offset)
    return -EINVAL;
  return 0;
}

/* Append RUN, merging it into the last one if contiguous.  False if
 * there is no room.
 */
static bool
emit (struct blockmap_run *runs, int *n, int max,
      const struct blockmap_run *run)
{
  if (*n > 0) {
    struct blockmap_run *last = &runs[*n - 1];
    if (last->tier == run->tier && last->flags == 0 && run->flags == 0 &&
        last->offset + last->length == run->offset &&
        (run->tier == BM_TIER_NONE ||
         last->pool_offset + last->length == run->pool_offset)) {
      last->length += run->length;
      return true;
    }
  }
  if (*n >= max)
    return false;
  runs[(*n)++] = *run;
  return true;
}

int
blockmap_map_range (struct blockmap_volume *vol, uint64_t offset,
                    uint64_t length, struct blockmap_run *runs, int max)
{
  struct blockmap_pool *pool = vol->pool;
  const unsigned shift = pool->chunk_shift;
  const uint64_t mask = pool->chunk_size - 1;
  uint64_t pos, end;
  int n = 0, r;

  if (max < 1)
    return -EINVAL;
  LOCK_FOR_SCOPE (&pool->lock);
  if ((r = range_check (vol, offset, length)) < 0)
    return r;
  pos = offset;
  end = offset + length;
  while (pos < end) {
    uint64_t l = pos >> shift, run_end;
    const struct rnode *e = rtree_lookup (&vol->map, l);
    struct blockmap_run run = { .offset = pos };

    if (e) {
      run_end = (e->start + e->len) << shift;
      run.tier = e->tier;
      run.pool_offset = ((e->val + (l - e->start)) << shift) + (pos & mask);
    }
    else {
      const struct rnode *nx = rtree_find_gt (&vol->map, l);
      run_end = nx ? nx->start << shift : end;
      run.tier = BM_TIER_NONE;
    }
    if (run_end > end)
      run_end = end;
    run.length = run_end - pos;
    if (!emit (runs, &n, max, &run))
      break;
    pos = run_end;
  }
  return n;
}

/* Chunks to allocate for a write of chunks [FIRST, LAST]: holes, and
 * shared chunks (copied).  -EAGAIN if a CoW is pending in the range.
 */
static int64_t
chunks_needed (struct blockmap_volume *vol, uint64_t first, uint64_t last)
{
  struct blockmap_pool *pool = vol->pool;
  uint64_t l = first, needed = 0;

  for (size_t i = 0; i < vol->ncows; i++)
    if (vol->cows[i].lchunk >= first && vol->cows[i].lchunk <= last)
      return -EAGAIN;
  while (l <= last) {
    const struct rnode *e = rtree_lookup (&vol->map, l);
    uint64_t seg_end;

    if (e) {
      seg_end = e->start + e->len;
      if (seg_end > last + 1)
        seg_end = last + 1;
      needed += refcount_shared (pool, e->val + (l - e->start), seg_end - l);
    }
    else {
      const struct rnode *nx = rtree_find_gt (&vol->map, l);
      seg_end = nx && nx->start <= last ? nx->start : last + 1;
      needed += seg_end - l;
    }
    l = seg_end;
  }
  return needed;
}

static int
add_cow (struct blockmap_volume *vol, uint64_t l, uint64_t oldp,
         uint64_t newp)
{
  if (vol->ncows == vol->cowcap) {
    size_t cap = vol->cowcap ? vol->cowcap * 2 : 8;
    struct cow_pending *c = realloc (vol->cows, cap * sizeof *c);
    if (c == NULL)
      return -ENOMEM;
    vol->cows = c;
    vol->cowcap = cap;
  }
  vol->cows[vol->ncows++] = (struct cow_pending) {
    .lchunk = l, .old_pchunk = oldp, .new_pchunk = newp,
  };
  return 0;
}

int
blockmap_write_prepare (struct blockmap_volume *vol, uint64_t offset,
                        uint64_t length, struct blockmap_run *runs, int max)
{
  struct blockmap_pool *pool = vol->pool;
  const unsigned shift = pool->chunk_shift;
  const uint64_t mask = pool->chunk_size - 1;
  uint64_t pos, end, last_new = UINT64_MAX;
  int64_t needed;
  int n = 0, r;

  if (max < 1)
    return -EINVAL;
  LOCK_FOR_SCOPE (&pool->lock);
  if ((r = range_check (vol, offset, length)) < 0)
    return r;
  if (vol->readonly)
    return -EROFS;
  if (pool->failed)
    return -EIO;
  end = offset + length;
  /* After this, a count above one means another map has the chunk. */
  extent_unshare (vol, offset >> shift, ((end - 1) >> shift) + 1
                  - (offset >> shift));
  needed = chunks_needed (vol, offset >> shift, (end - 1) >> shift);
  if (needed < 0)
    return needed;
  if ((uint64_t) needed > pool->hot.fs_avail)
    return -ENOSPC;
  if ((uint64_t) needed > pool->hot.free.total)
    return (uint64_t) needed <= pool->hot.free.total
      + pool->hot.pending_chunks + pool->hot.transit_chunks
      ? -EINPROGRESS : -ENOSPC;

  pos = offset;
  while (pos < end) {
    uint64_t l = pos >> shift, run_end;
    const struct rnode *e = rtree_lookup (&vol->map, l);
    struct blockmap_run run = { .offset = pos, .tier = BM_TIER_HOT };

    if (e) {
      uint64_t p = e->val + (l - e->start);
      uint64_t lim = e->start + e->len, priv;

      if (lim > ((end - 1) >> shift) + 1)
        lim = ((end - 1) >> shift) + 1;
      priv = refcount_private_len (pool, p, lim - l);

      if (priv == 0) {
        uint64_t np;
        if (n >= max)
          break;
        if (alloc_run (pool, last_new != UINT64_MAX ? last_new + 1
                       : UINT64_MAX, false, 1, &np) != 1)
          break;                /* cannot happen: counted above */
        if (add_cow (vol, l, p, np) < 0) {
          rtree_add_range (&pool->hot.free, np, 1, 0, 0, 0);
          if (n == 0)
            return -ENOMEM;
          break;
        }
        pool->hot.reserved_chunks++;
        last_new = np;
        run_end = (l + 1) << shift;
        if (run_end > end)
          run_end = end;
        run.length = run_end - pos;
        run.flags = BM_RUN_COW;
        run.pool_offset = np << shift;
        run.cow_src_offset = p << shift;
        runs[n++] = run;
        pos = run_end;
        continue;
      }
      /* In place, as far as the extent stays unshared. */
      run_end = (l + priv) << shift;
      if (run_end > end)
        run_end = end;
      run.tier = e->tier;
      run.length = run_end - pos;
      run.pool_offset = (p << shift) + (pos & mask);
      if (!emit (runs, &n, max, &run))
        break;
      pos = run_end;
    }
    else {
      const struct rnode *nx = rtree_find_gt (&vol->map, l);
      const struct rnode *pred = l > 0 ? rtree_lookup (&vol->map, l - 1)
        : NULL;
      uint64_t want, hint = UINT64_MAX, np, got;
      bool strict = false;
      struct jrec rec = { .type = JREC_MAP, .vol = vol->id,
                          .tier = BM_TIER_HOT };

      want = (nx && nx->start <= (end - 1) >> shift ? nx->start
              : ((end - 1) >> shift) + 1) - l;
      if (pred)
        hint = pred->val + (l - 1 - pred->start) + 1;
      if (n >= max) {
        /* Only an allocation that extends the last run fits. */
        const struct blockmap_run *lr = &runs[n - 1];
        if (lr->flags != 0 || lr->tier != BM_TIER_HOT ||
            hint != (lr->pool_offset + lr->length) >> shift)
          break;
        strict = true;
      }
      got = alloc_run (pool, hint, strict, want, &np);
      if (got == 0)
        break;
      rec.lchunk = l;
      rec.pchunk = np;
      rec.count = got;
      if ((r = state_log (pool, &rec)) < 0) {
        rtree_add_range (&pool->hot.free, np, got, 0, 0, 0);
        if (n == 0)
          return r;
        break;
      }
      last_new = np + got - 1;
      run_end = (l + got) << shift;
      if (run_end > end)
        run_end = end;
      run.length = run_end - pos;
      run.pool_offset = (np << shift) + (pos & mask);
      if (!emit (runs, &n, max, &run))
        break;                  /* cannot happen: checked above */
      pos = run_end;
    }
  }
  return n;
}

/* Find and remove the pending CoW that COW describes. */
static int
take_cow (struct blockmap_volume *vol, const struct blockmap_run *cow,
          struct cow_pending *out)
{
  const unsigned shift = vol->pool->chunk_shift;
  uint64_t l = cow->offset >> shift, np = cow->pool_offset >> shift;

  if (!(cow->flags & BM_RUN_COW))
    return -EINVAL;
  for (size_t i = 0; i < vol->ncows; i++)
    if (vol->cows[i].lchunk == l && vol->cows[i].new_pchunk == np) {
      *out = vol->cows[i];
      vol->cows[i] = vol->cows[--vol->ncows];
      vol->pool->hot.reserved_chunks--;
      return 0;
    }
  return -EINVAL;
}

int
blockmap_cow_commit (struct blockmap_volume *vol,
                     const struct blockmap_run *cow)
{
  struct blockmap_pool *pool = vol->pool;
  LOCK_FOR_SCOPE (&pool->lock);
  struct cow_pending c;
  struct jrec rec = { .type = JREC_MAP, .vol = vol->id,
                      .tier = BM_TIER_HOT, .count = 1 };
  int r;

  if ((r = take_cow (vol, cow, &c)) < 0)
    return r;
  if (vol->deleted)
    r = -ESHUTDOWN;
  else {
    /* The MAP record drops the old chunk's reference as it remaps. */
    rec.lchunk = c.lchunk;
    rec.pchunk = c.new_pchunk;
    r = state_log (pool, &rec);
  }
  if (r < 0)
    alloc_release (pool, c.new_pchunk, 1, 0);
  return r;
}

void
blockmap_cow_abort (struct blockmap_volume *vol,
                    const struct blockmap_run *cow)
{
  struct blockmap_pool *pool = vol->pool;
  LOCK_FOR_SCOPE (&pool->lock);
  struct cow_pending c;

  /* The new chunk may hold part of a copy: punched before reuse. */
  if (take_cow (vol, cow, &c) == 0)
    alloc_release (pool, c.new_pchunk, 1, 0);
}

int
blockmap_unmap (struct blockmap_volume *vol, uint64_t offset,
                uint64_t length)
{
  struct blockmap_pool *pool = vol->pool;
  const unsigned shift = pool->chunk_shift;
  LOCK_FOR_SCOPE (&pool->lock);
  struct jrec rec = { .type = JREC_UNMAP, .vol = vol->id };
  uint64_t first, lend, end;
  int r;

  if ((r = range_check (vol, offset, length)) < 0)
    return r;
  if (vol->readonly)
    return -EROFS;
  end = offset + length;
  first = bm_chunks_for (pool, offset);
  /* The volume's last chunk may be partial: up to the end is whole. */
  lend = end == vol->size ? bm_chunks_for (pool, end) : end >> shift;
  if (first >= lend || !extent_any_mapped (vol, first, lend - first))
    return 0;
  rec.lchunk = first;
  rec.count = lend - first;
  return state_log (pool, &rec);
}
