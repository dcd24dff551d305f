/* blockmap/check.c: cross-check the pool's state against itself.
 *
 * Reference counts are recomputed from every map and compared with the
 * counts the pool keeps; then every chunk must be in exactly one of the
 * states of alloc.c (referenced, pending, in transit, reserved for a
 * CoW, free), extents must not overlap and must lie within their
 * volume and within the data area, and the trees must be well formed.
 * Each problem is reported as one sentence naming the chunks or the
 * volume.  Used by blockmap_pool_check and at every pool open.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "internal.h"

struct check {
  void (*report) (void *opaque, const char *msg);
  void *opaque;
  int problems;
};

static void __attribute__ ((format (printf, 2, 3)))
problem (struct check *c, const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  c->problems++;
  if (c->report == NULL)
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  c->report (c->opaque, msg);
}

/* Call FN for each piece of [S, E) as covered by T: with the run that
 * covers it, or NULL for a gap.
 */
static void
foreach_piece (const struct rtree *t, uint64_t s, uint64_t e,
               void (*fn) (struct check *c, uint64_t ps, uint64_t pe,
                           const struct rnode *n, const void *arg),
               struct check *c, const void *arg)
{
  const struct rnode *n = rtree_lookup (t, s);
  uint64_t pos = s;

  if (n == NULL)
    n = rtree_find_gt (t, s);
  while (pos < e) {
    uint64_t pe;
    if (n && n->start <= pos) {
      pe = n->start + n->len < e ? n->start + n->len : e;
      fn (c, pos, pe, n, arg);
      n = rtree_find_gt (t, n->start);
    }
    else {
      pe = n && n->start < e ? n->start : e;
      fn (c, pos, pe, NULL, arg);
    }
    pos = pe;
  }
}

static void
cmp_expected (struct check *c, uint64_t s, uint64_t e, const struct rnode *n,
              const void *arg)
{
  const struct rnode *want = arg;
  uint64_t have = n ? n->val : 0;

  if (have != want->val)
    problem (c, "chunks %" PRIu64 "..%" PRIu64 " have reference count %"
             PRIu64 " but the maps point at them %" PRIu64 " time(s)",
             s, e - 1, have, want->val);
}

static void
cmp_actual (struct check *c, uint64_t s, uint64_t e, const struct rnode *n,
            const void *arg)
{
  const struct rnode *have = arg;

  if (n == NULL)
    problem (c, "chunks %" PRIu64 "..%" PRIu64 " have reference count %"
             PRIu64 " but no map points at them", s, e - 1, have->val);
}

static void
must_be_absent (struct check *c, uint64_t s, uint64_t e,
                const struct rnode *n, const void *arg)
{
  if (n)
    problem (c, "chunks %" PRIu64 "..%" PRIu64 " are both %s", s, e - 1,
             (const char *) arg);
}

struct indegree {
  struct nodemap deg;           /* node -> parents and roots seen */
};

static void
point_at (struct indegree *d, const struct rnode *n)
{
  if (n)
    (*nodemap_put (&d->deg, n, NULL))++;
}

static int
count_children (void *opaque, const struct rnode *n)
{
  point_at (opaque, n->left);
  point_at (opaque, n->right);
  return 0;
}

/* Each node's refs must be the number of distinct parents and map roots
 * pointing at it: one too many and its chunks would never be freed, one
 * too few and a write would change a snapshot in place.
 */
static void
check_node_refs (struct blockmap_pool *pool, struct check *c)
{
  struct indegree d = { 0 };
  uint64_t bad = 0;

  for (size_t i = 0; i < pool->nvols; i++)
    point_at (&d, pool->by_id[i]->map.root);
  for (size_t i = 0; i < pool->nreap; i++)
    point_at (&d, pool->reap[i].n);
  pool_walk_distinct (pool, count_children, &d);
  for (size_t i = 0; i < d.deg.cap; i++) {
    const struct rnode *n = d.deg.keys[i];
    if (n && n->refs != d.deg.vals[i] && bad++ < 8)
      problem (c, "the map node of chunks %" PRIu64 "..%" PRIu64 " is "
               "shared by %" PRIu64 " map(s) but records %" PRIu32,
               n->start, n->start + n->len - 1, d.deg.vals[i], n->refs);
  }
  if (bad > 8)
    problem (c, "%" PRIu64 " more map nodes have the wrong share count",
             bad - 8);
  nodemap_free (&d.deg);
}

static void
check_volume (struct blockmap_pool *pool, const struct blockmap_volume *v,
              struct check *c)
{
  uint64_t nchunks = bm_chunks_for (pool, v->size), prev_end = 0;
  const struct rnode *e;
  bool first = true;

  if (rtree_verify (&v->map) < 0)
    problem (c, "volume %s: the extent map is malformed", v->name);
  for (e = rtree_first (&v->map); e; e = rtree_find_gt (&v->map, e->start)) {
    if (!first && e->start < prev_end)
      problem (c, "volume %s: extent at chunk %" PRIu64 " overlaps the one "
               "before it", v->name, e->start);
    if (e->start + e->len > nchunks)
      problem (c, "volume %s: extent at chunks %" PRIu64 "..%" PRIu64
               " lies beyond the volume size (%" PRIu64 " chunks)",
               v->name, e->start, e->start + e->len - 1, nchunks);
    if (e->tier != BM_TIER_HOT)
      problem (c, "volume %s: extent at chunk %" PRIu64 " has unknown tier "
               "%u", v->name, e->start, e->tier);
    else if (e->val + e->len > pool->hot.capacity)
      problem (c, "volume %s: extent at chunk %" PRIu64 " points at chunks %"
               PRIu64 "..%" PRIu64 " beyond the data area (%" PRIu64
               " chunks)", v->name, e->start, e->val, e->val + e->len - 1,
               pool->hot.capacity);
    prev_end = e->start + e->len;
    first = false;
  }
}

int
check_locked (struct blockmap_pool *pool,
              void (*report) (void *opaque, const char *msg), void *opaque)
{
  struct check c = { report, opaque, 0 };
  struct tier_space *ts = &pool->hot;
  struct rtree want;
  const struct rnode *n;
  uint64_t reserved = 0, prev_lsn = 0, prev_epoch = 0, sum;
  struct stat st;

  /* Maps. */
  for (size_t i = 0; i < pool->nvols; i++) {
    const struct blockmap_volume *v = pool->by_id[i];
    check_volume (pool, v, &c);
    if (i > 0 && pool->by_id[i - 1]->id >= v->id)
      problem (&c, "volume ids are out of order at %s",
               v->name);
    reserved += v->ncows;
  }

  check_node_refs (pool, &c);

  /* Reference counts, recomputed and compared both ways. */
  if (rtree_verify (&ts->refs) < 0)
    problem (&c, "the reference count tree is malformed");
  rtree_init (&want, &pool->slab, RT_COUNT);
  refcount_compute (pool, &want);
  for (n = rtree_first (&want); n; n = rtree_find_gt (&want, n->start))
    foreach_piece (&ts->refs, n->start, n->start + n->len, cmp_expected, &c,
                   n);
  for (n = rtree_first (&ts->refs); n; n = rtree_find_gt (&ts->refs, n->start))
    foreach_piece (&want, n->start, n->start + n->len, cmp_actual, &c, n);
  rtree_clear (&want);

  if (rtree_verify (&ts->held) < 0)
    problem (&c, "the held chunk tree is malformed");

  /* Free space. */
  if (rtree_verify (&ts->free) < 0)
    problem (&c, "the free space tree is malformed");
  for (n = rtree_first (&ts->free); n; n = rtree_find_gt (&ts->free, n->start)) {
    if (n->start + n->len > ts->capacity)
      problem (&c, "free chunks %" PRIu64 "..%" PRIu64 " lie beyond the "
               "capacity of %" PRIu64 " chunks", n->start,
               n->start + n->len - 1, ts->capacity);
    foreach_piece (&ts->refs, n->start, n->start + n->len, must_be_absent,
                   &c, "free and referenced");
  }

  /* Pending frees. */
  sum = 0;
  for (size_t i = ts->phead; i < ts->npending; i++) {
    const struct pending_free *p = &ts->pending[i];
    if (p->count == 0 || p->pchunk + p->count > ts->capacity)
      problem (&c, "pending free of chunks %" PRIu64 " (+%" PRIu64 ") is "
               "empty or beyond the capacity", p->pchunk, p->count);
    if (p->lsn < prev_lsn && p->lsn != 0)
      problem (&c, "pending frees are out of LSN order at chunk %" PRIu64,
               p->pchunk);
    if (p->lsn >= pool->next_lsn)
      problem (&c, "pending free of chunk %" PRIu64 " names LSN %" PRIu64
               " which was never written", p->pchunk, p->lsn);
    if (p->epoch < prev_epoch || p->epoch > pool->epoch)
      problem (&c, "pending free of chunk %" PRIu64 " has epoch %" PRIu64
               " out of order", p->pchunk, p->epoch);
    foreach_piece (&ts->refs, p->pchunk, p->pchunk + p->count,
                   must_be_absent, &c, "pending free and referenced");
    foreach_piece (&ts->free, p->pchunk, p->pchunk + p->count,
                   must_be_absent, &c, "pending free and free");
    if (p->lsn)
      prev_lsn = p->lsn;
    prev_epoch = p->epoch;
    sum += p->count;
  }
  if (sum != ts->pending_chunks)
    problem (&c, "the pending list holds %" PRIu64 " chunks but %" PRIu64
             " are accounted for", sum, ts->pending_chunks);

  /* CoW reservations (volumes deleted with handles open still hold
   * theirs, hence at most).
   */
  if (reserved > ts->reserved_chunks)
    problem (&c, "%" PRIu64 " copy-on-write chunks are pending but only %"
             PRIu64 " are reserved", reserved, ts->reserved_chunks);
  for (size_t i = 0; i < pool->nvols; i++) {
    const struct blockmap_volume *v = pool->by_id[i];
    for (size_t j = 0; j < v->ncows; j++) {
      uint64_t np = v->cows[j].new_pchunk;
      if (rtree_lookup (&ts->refs, np) || rtree_lookup (&ts->free, np))
        problem (&c, "volume %s: chunk %" PRIu64 " reserved for a copy is "
                 "also referenced or free", v->name, np);
    }
  }

  /* Accounting. */
  sum = ts->refs.total + ts->pending_chunks + ts->transit_chunks
    + ts->reserved_chunks + ts->free.total;
  if (sum != ts->capacity)
    problem (&c, "used plus free is %" PRIu64 " chunks (%" PRIu64
             " referenced, %" PRIu64 " pending, %" PRIu64 " reserved, %"
             PRIu64 " free) but the capacity is %" PRIu64,
             sum, ts->refs.total, ts->pending_chunks + ts->transit_chunks,
             ts->reserved_chunks, ts->free.total, ts->capacity);

  /* The data file. */
  if (bm_io->fstat (ts->fd, &st) < 0)
    problem (&c, "cannot stat the hot data file");
  else if ((uint64_t) st.st_size < ts->data_end)
    problem (&c, "the hot data file is %" PRIu64 " bytes, but chunks up to "
             "byte %" PRIu64 " are mapped and were made durable: the file "
             "has been cut short and their data is lost",
             (uint64_t) st.st_size, ts->data_end);
  else if ((uint64_t) st.st_size > ts->capacity << pool->chunk_shift)
    problem (&c, "the hot data file (%" PRIu64 " bytes) is larger than "
             "the capacity (%" PRIu64 " bytes)", (uint64_t) st.st_size,
             ts->capacity << pool->chunk_shift);
  return c.problems;
}
