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
 *
 * Dropping a reference to a node that stays shared frees nothing, but
 * may leave the node to one map alone, which then writes its chunks in
 * place (a chunk's count is per node, extent.c).  That must wait until
 * the delete is durable and the I/O begun before it has ended, as for a
 * chunk's count dropping (refcount.c, "held"): a crash would bring the
 * deleted map back pointing at those chunks, and a read through it may
 * still be under way.  Such references are held back at the bottom of
 * the array, [0, reap_held), and go back on the stack once their
 * delete is ready; every commit also reaps a batch (pool.c), so they do
 * not wait for the next caller of blockmap_pool_reap.
 */
#include <stdlib.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

static void
push (struct blockmap_pool *pool, struct reap_item it)
{
  if (it.n == NULL)
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
  pool->reap[pool->nreap++] = it;
}

void
reap_push (struct blockmap_pool *pool, struct rnode *n, uint64_t lsn)
{
  push (pool, (struct reap_item) { .n = n, .lsn = lsn, .epoch = pool->epoch });
  /* Later I/Os belong to a later epoch, unless that slot is busy. */
  if (pool->inflight[(pool->epoch + 1) % BM_EPOCH_SLOTS] == 0)
    pool->epoch++;
}

/* May IT's reference to a node still shared be dropped?  OLDEST is
 * alloc_oldest_epoch().  At replay the whole journal is durable and
 * there is no I/O.
 */
static bool
ready (const struct blockmap_pool *pool, const struct reap_item *it,
       uint64_t oldest)
{
  return pool->replaying
    || (it->lsn <= pool->durable_lsn && it->epoch < oldest);
}

static bool
any_held_ready (const struct blockmap_pool *pool, uint64_t oldest)
{
  for (size_t i = 0; i < pool->reap_held; i++)
    if (ready (pool, &pool->reap[i], oldest))
      return true;
  return false;
}

size_t
reap_step (struct blockmap_pool *pool, size_t budget)
{
  uint64_t oldest = alloc_oldest_epoch (pool);

  /* Back on the stack; those still not ready are held back again. */
  if (any_held_ready (pool, oldest))
    pool->reap_held = 0;
  while (pool->nreap > pool->reap_held && budget > 0) {
    struct reap_item it = pool->reap[--pool->nreap];
    struct rnode *n = it.n;
    /* The delete is durable by the newest record; tagging frees with
     * that keeps the pending list in LSN order (alloc.c, check.c).
     */
    uint64_t lsn = pool->replaying ? it.lsn : pool->next_lsn - 1;

    budget--;
    if (n->refs > 1 && !ready (pool, &it, oldest)) {
      /* Swap it with the stack's bottom item into the held region. */
      pool->reap[pool->nreap++] = pool->reap[pool->reap_held];
      pool->reap[pool->reap_held++] = it;
      continue;
    }
    if (--n->refs > 0)
      continue;                 /* still in another map */
    if (n->tier == BM_TIER_HOT)
      refcount_dec (pool, n->val, n->len, lsn);
    push (pool, (struct reap_item) { .n = n->left, .lsn = it.lsn,
                                     .epoch = it.epoch });
    push (pool, (struct reap_item) { .n = n->right, .lsn = it.lsn,
                                     .epoch = it.epoch });
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
  return pool->nreap > pool->reap_held
    || any_held_ready (pool, alloc_oldest_epoch (pool));
}
