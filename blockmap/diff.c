/* blockmap/diff.c: which chunks differ between two maps.
 *
 * The changed-block list of snapshots (snapshot/ and the NBD meta
 * context) asks this.  Both maps are walked together, extent by
 * extent: where the two extents covering a position point at different
 * chunks (or one is a hole), the whole stretch up to the nearer extent
 * boundary differs, since both mappings advance one chunk per chunk.
 * The cost is O(e log n) for e extents in the range, whatever the
 * volume size; nothing is read from the data files.
 */
#include <errno.h>

#include "common/cleanup.h"
#include "internal.h"

/* Where chunk L of T lives: *P and *TIER (BM_TIER_NONE: a hole), and
 * the first chunk after L where that may change.
 */
static uint64_t
locate (const struct rtree *t, uint64_t l, uint64_t *p, uint8_t *tier)
{
  const struct rnode *e = rtree_lookup (t, l), *nx;

  if (e) {
    *p = e->val + (l - e->start);
    *tier = e->tier;
    return e->start + e->len;
  }
  *p = 0;
  *tier = BM_TIER_NONE;
  nx = rtree_find_gt (t, l);
  return nx ? nx->start : UINT64_MAX;
}

int
blockmap_diff (struct blockmap_volume *base, struct blockmap_volume *vol,
               uint64_t offset, uint64_t length,
               struct blockmap_diff_run *runs, int max)
{
  struct blockmap_pool *pool = vol->pool;
  const unsigned shift = pool->chunk_shift;
  uint64_t pos, end, size;
  int n = 0;

  if (max < 1 || base->pool != pool)
    return -EINVAL;
  LOCK_FOR_SCOPE (&pool->lock);
  if (vol->deleted || base->deleted)
    return -ESHUTDOWN;
  size = vol->size;
  if (length == 0 || offset > size || length > size - offset)
    return -EINVAL;
  pos = offset;
  end = offset + length;
  while (pos < end) {
    uint64_t l = pos >> shift, pa, pb, ea, eb, seg, run_end;
    uint8_t ta, tb;
    bool changed;

    ea = locate (&base->map, l, &pa, &ta);
    eb = locate (&vol->map, l, &pb, &tb);
    seg = ea < eb ? ea : eb;
    changed = ta != tb || (ta != BM_TIER_NONE && pa != pb);
    run_end = seg >= (end >> shift) + 1 ? end : seg << shift;
    if (run_end > end)
      run_end = end;
    if (n > 0 && runs[n - 1].changed == changed)
      runs[n - 1].length += run_end - pos;
    else if (n < max)
      runs[n++] = (struct blockmap_diff_run) {
        .offset = pos, .length = run_end - pos, .changed = changed,
      };
    else
      break;
    pos = run_end;
  }
  return n;
}
