/* blockmap/reap.c: freeing the maps of deleted volumes, a little at a
 * time.
 *
 * Deleting a volume or a snapshot is one VOL_DELETE record; what it
 * frees is worked out afterwards.  The record detaches the volume's map
 * root onto pool->reap, a stack of (node, LSN of the delete): popping a
 * node drops one reference to it, and a node nobody else holds gives
 * its chunks' references back (refcount_dec, so chunks reaching zero go
 * to the pending list tagged with the delete's LSN, DESIGN invariant 2)
 * and pushes its children.  Nodes still shared with a snapshot or clone
 * stop the walk there, so a delete costs what it frees, not the size
 * of the map.
 *
 * blockmap_pool_reap does a bounded batch under the pool lock, so a
 * volume with millions of extents is freed by the sync thread in small
 * steps between client requests.  Nothing here is journalled: after a
 * crash, the replayed VOL_DELETE starts the walk again from the root
 * (and refcounts are recomputed at open anyway), so the work survives
 * kill -9 at any point.
 */
#include <stdlib.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

void
reap_push (struct blockmap_pool *pool, struct rnode *n, uint64_t lsn)
{
  if (n == NULL)
    return;
  if (pool->nreap == pool->reapcap) {
    size_t cap = pool->reapcap ? pool->reapcap * 2 : 64;
    struct reap_item *v = realloc (pool->reap, cap * sizeof *v);
    if (v == NULL) {
      log_error ("blockmap: out of memory freeing a deleted volume");
      abort ();
    }
    pool->reap = v;
    pool->reapcap = cap;
  }
  pool->reap[pool->nreap++] = (struct reap_item) { .n = n, .lsn = lsn };
}

size_t
reap_step (struct blockmap_pool *pool, size_t budget)
{
  while (pool->nreap > 0 && budget > 0) {
    struct reap_item it = pool->reap[--pool->nreap];
    struct rnode *n = it.n;

    budget--;
    if (--n->refs > 0)
      continue;                 /* still in another map */
    if (n->tier == BM_TIER_HOT)
      refcount_dec (pool, n->val, n->len, it.lsn);
    reap_push (pool, n->left, it.lsn);
    reap_push (pool, n->right, it.lsn);
    n->refs = 1;
    rslab_put (&pool->slab, n);
    pool->reaped_nodes++;
  }
  return pool->nreap;
}

size_t
blockmap_pool_reap (struct blockmap_pool *pool, size_t max_nodes)
{
  LOCK_FOR_SCOPE (&pool->lock);
  return reap_step (pool, max_nodes);
}

bool
blockmap_pool_reap_wanted (struct blockmap_pool *pool)
{
  LOCK_FOR_SCOPE (&pool->lock);
  return pool->nreap > 0;
}
