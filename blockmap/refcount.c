/* blockmap/refcount.c: how many map entries point at each chunk.
 *
 * The counts live in an rtree of runs keyed by physical chunk, value =
 * count (>= 1); unreferenced chunks are absent.  A count is the number
 * of distinct map nodes pointing at the chunk (extent.c): nodes shared
 * between a volume and its snapshots count once.  Without copies every
 * count is 1 and the tree has about as many runs as there are extents.
 * The counts are never stored: pool open recomputes them from the maps
 * (refcount_compute), and pool check recomputes and compares.
 *
 * A count reaching zero hands the chunk to the allocator's pending
 * list (alloc.c), never straight to the free tree (DESIGN invariant 2).
 * A count dropping but not to zero "holds" the chunk (alloc_hold) until
 * the change is durable and older I/O has ended: until then the chunk
 * is still copied on write, because after a crash the other map would
 * point at it again, and an in-flight read through the other map may
 * still be reading it.
 */
#include <inttypes.h>

#include "common/log.h"
#include "internal.h"

/* Add DELTA (+1 or -1) to every chunk of [P, P+N) in T.  With POOL set,
 * chunks reaching zero are released to its pending list.
 */
static void
adjust (struct blockmap_pool *pool, struct rtree *t, uint64_t p, uint64_t n,
        int delta, uint64_t lsn)
{
  uint64_t pos = p, end = p + n;

  while (pos < end) {
    struct rnode *r = rtree_lookup (t, pos);
    uint64_t pend;

    if (r) {
      uint64_t c = r->val;
      pend = r->start + r->len < end ? r->start + r->len : end;
      rtree_remove_range (t, pos, pend - pos, NULL, NULL);
      if ((int64_t) c + delta > 0) {
        rtree_add_range (t, pos, pend - pos, c + delta, 0, 0);
        if (pool && delta < 0)
          alloc_hold (pool, pos, pend - pos, lsn);
      }
      else if (pool)
        alloc_release (pool, pos, pend - pos, lsn);
    }
    else {
      struct rnode *next = rtree_find_gt (t, pos);
      pend = next && next->start < end ? next->start : end;
      if (delta > 0)
        rtree_add_range (t, pos, pend - pos, delta, 0, 0);
      else
        log_error ("blockmap: reference count of chunks %" PRIu64 "..%"
                   PRIu64 " would go below zero", pos, pend - 1);
    }
    pos = pend;
  }
}

void
refcount_inc (struct blockmap_pool *pool, uint64_t p, uint64_t n)
{
  adjust (pool, &pool->hot.refs, p, n, +1, 0);
}

void
refcount_dec (struct blockmap_pool *pool, uint64_t p, uint64_t n,
              uint64_t lsn)
{
  adjust (pool, &pool->hot.refs, p, n, -1, lsn);
}

static int
count_extent (void *opaque, const struct rnode *e)
{
  struct rtree *t = opaque;

  if (e->tier == BM_TIER_HOT)
    adjust (NULL, t, e->val, e->len, +1, 0);
  return 0;
}

void
refcount_compute (struct blockmap_pool *pool, struct rtree *t)
{
  /* A node shared by a volume and its snapshots counts once. */
  pool_walk_distinct (pool, count_extent, t);
}

void
refcount_tree_adjust (struct rtree *t, uint64_t p, uint64_t n, int delta)
{
  adjust (NULL, t, p, n, delta, 0);
}

uint64_t
refcount_private_len (struct blockmap_pool *pool, uint64_t p, uint64_t n)
{
  const struct tier_space *ts = &pool->hot;
  uint64_t pos = p, end = p + n;

  while (pos < end) {
    const struct rnode *r = rtree_lookup (&ts->refs, pos);
    const struct rnode *h;
    uint64_t seg_end;

    if (r == NULL || r->val != 1 || rtree_lookup (&ts->held, pos))
      break;
    seg_end = r->start + r->len;
    h = rtree_find_gt (&ts->held, pos);
    if (h && h->start < seg_end)
      seg_end = h->start;
    pos = seg_end < end ? seg_end : end;
  }
  return pos - p;
}

uint64_t
refcount_shared (struct blockmap_pool *pool, uint64_t p, uint64_t n)
{
  uint64_t pos = p, end = p + n, shared = 0;

  while (pos < end) {
    pos += refcount_private_len (pool, pos, end - pos);
    if (pos < end) {
      shared++;
      pos++;
    }
  }
  return shared;
}
