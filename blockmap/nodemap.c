/* blockmap/nodemap.c: a hash table from map nodes to numbers.
 *
 * Maps share subtrees once volumes have snapshots (rtree.c), so the
 * walks that must see each node once -- recomputing reference counts,
 * pool check, writing a checkpoint -- remember the shared nodes they
 * have been through here.  Only nodes with refs > 1 ever need to go in:
 * a node with one parent is reached once.  Open addressing with linear
 * probing, keyed by address; it grows at half full and never shrinks.
 */
#include <stdlib.h>

#include "common/log.h"
#include "internal.h"

static size_t
slot_of (const struct nodemap *m, const struct rnode *k)
{
  uint64_t h = (uint64_t) (uintptr_t) k;

  h ^= h >> 33;
  h *= UINT64_C (0xff51afd7ed558ccd);
  h ^= h >> 33;
  return h & (m->cap - 1);
}

static void
grow (struct nodemap *m)
{
  struct nodemap old = *m;

  m->cap = old.cap ? old.cap * 2 : 1024;
  m->n = 0;
  m->keys = calloc (m->cap, sizeof *m->keys);
  m->vals = calloc (m->cap, sizeof *m->vals);
  if (m->keys == NULL || m->vals == NULL) {
    log_error ("blockmap: out of memory walking the extent maps");
    abort ();
  }
  for (size_t i = 0; i < old.cap; i++)
    if (old.keys[i])
      *nodemap_put (m, old.keys[i], NULL) = old.vals[i];
  free (old.keys);
  free (old.vals);
}

uint64_t *
nodemap_get (const struct nodemap *m, const struct rnode *k)
{
  if (m->cap == 0)
    return NULL;
  for (size_t i = slot_of (m, k);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == k)
      return &m->vals[i];
    if (m->keys[i] == NULL)
      return NULL;
  }
}

uint64_t *
nodemap_put (struct nodemap *m, const struct rnode *k, bool *added)
{
  size_t i;

  if (2 * (m->n + 1) > m->cap)
    grow (m);
  for (i = slot_of (m, k); m->keys[i]; i = (i + 1) & (m->cap - 1))
    if (m->keys[i] == k) {
      if (added)
        *added = false;
      return &m->vals[i];
    }
  m->keys[i] = k;
  m->vals[i] = 0;
  m->n++;
  if (added)
    *added = true;
  return &m->vals[i];
}

void
nodemap_free (struct nodemap *m)
{
  free (m->keys);
  free (m->vals);
  *m = (struct nodemap) { 0 };
}

/* Pre-order from N, skipping shared nodes already in SEEN. */
static int
distinct_rec (const struct rnode *n, struct nodemap *seen,
              int (*fn) (void *opaque, const struct rnode *n), void *opaque)
{
  int r;

  if (n == NULL)
    return 0;
  if (n->refs > 1) {
    bool added;
    nodemap_put (seen, n, &added);
    if (!added)
      return 0;
  }
  if ((r = fn (opaque, n)) != 0)
    return r;
  if ((r = distinct_rec (n->left, seen, fn, opaque)) != 0)
    return r;
  return distinct_rec (n->right, seen, fn, opaque);
}

int
pool_walk_distinct (struct blockmap_pool *pool,
                    int (*fn) (void *opaque, const struct rnode *n),
                    void *opaque)
{
  struct nodemap seen = { 0 };
  int r = 0;

  for (size_t i = 0; i < pool->nvols && r == 0; i++)
    r = distinct_rec (pool->by_id[i]->map.root, &seen, fn, opaque);
  for (size_t i = 0; i < pool->nreap && r == 0; i++)
    r = distinct_rec (pool->reap[i].n, &seen, fn, opaque);
  nodemap_free (&seen);
  return r;
}
