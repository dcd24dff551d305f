/* blockmap/extent.c: a volume's extent map.
 *
 * The map is an rtree (rtree.c) of extents keyed by logical chunk:
 *
 *   lchunk 0..15 ──▶ pchunk 7..22      (one extent: contiguous both
 *   lchunk 40..47 ─▶ pchunk 100..107    logically and physically)
 *
 * Unmapped chunks are simply absent (holes, read as zero), so an
 * unwritten volume of any size costs nothing, and since the allocator
 * places a chunk right after its logical predecessor's (alloc.c) and
 * rtree_add_range merges contiguous neighbours, a sequentially written
 * volume stays a single extent.  Mapping and unmapping move reference
 * counts (refcount.c); the map itself is changed only from state_apply.
 */
#include "internal.h"

struct unmap_ctx {
  struct blockmap_pool *pool;
  uint64_t lsn;
};

static void
unmap_piece (void *opaque, uint64_t start, uint64_t len, uint64_t val,
             uint8_t tier, uint8_t flags)
{
  struct unmap_ctx *c = opaque;

  (void) start;
  (void) tier;
  (void) flags;
  refcount_dec (c->pool, val, len, c->lsn);
}

void
extent_map (struct blockmap_volume *vol, uint64_t l, uint64_t n,
            uint64_t p, uint8_t tier, uint8_t flags, uint64_t lsn)
{
  struct unmap_ctx c = { vol->pool, lsn };

  refcount_inc (vol->pool, p, n);
  rtree_remove_range (&vol->map, l, n, unmap_piece, &c);
  rtree_add_range (&vol->map, l, n, p, tier, flags);
}

void
extent_unmap (struct blockmap_volume *vol, uint64_t l, uint64_t n,
              uint64_t lsn)
{
  struct unmap_ctx c = { vol->pool, lsn };

  if (n > UINT64_MAX - l)
    n = UINT64_MAX - l;
  rtree_remove_range (&vol->map, l, n, unmap_piece, &c);
}

bool
extent_any_mapped (const struct blockmap_volume *vol, uint64_t l,
                   uint64_t n)
{
  const struct rnode *e;

  if (n == 0)
    return false;
  if (rtree_lookup (&vol->map, l))
    return true;
  e = rtree_find_gt (&vol->map, l);
  return e && e->start - l < n;
}
