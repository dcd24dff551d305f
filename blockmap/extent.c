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
 *
 * A chunk's count is the number of distinct map nodes covering it, not
 * of volumes: a snapshot shares its volume's nodes (rtree.c) and adds
 * nothing, and a node copied away from a shared one adds one.  So a
 * writer first owns the nodes it will write through (extent_unshare),
 * and then a count above one means exactly "another map has it".
 */
#include "internal.h"

/* A node of VOL's map was copied off a shared one: one more node now
 * points at its chunks.
 */
static void
on_copy (void *opaque, const struct rnode *n)
{
  struct blockmap_volume *vol = opaque;

  if (n->tier == BM_TIER_HOT)
    refcount_inc (vol->pool, n->val, n->len);
}

void
extent_map_init (struct blockmap_volume *vol)
{
  rtree_init (&vol->map, &vol->pool->slab, RT_EXTENT);
  vol->map.on_copy = on_copy;
  vol->map.copy_opaque = vol;
}

void
extent_unshare (struct blockmap_volume *vol, uint64_t l, uint64_t n)
{
  rtree_own_range (&vol->map, l, n);
}

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
