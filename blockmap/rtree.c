/* blockmap/rtree.c: an AVL tree of non-overlapping runs.
 *
 * The one balanced search structure of blockmap/: every volume's extent
 * map, the refcount tree and the free-space tree are rtrees.  A run is
 * [start, start+len) with a value; lookups are lower-bound searches
 * (rtree_find_le) in O(log n), and the range operations split runs at
 * the edges and merge equal neighbours, so a sequentially written
 * volume stays one run however large it grows.
 *
 *          [40,+8 → p100]
 *          /            \
 *   [0,+16 → p7]     [64,+1 → p3]
 *
 * Memory is one struct rnode (48 bytes on LP64) per run, from a slab
 * owned by the pool, so the map grows with the number of extents and
 * never with the size of the volume.  Nodes are never returned to the
 * system before the pool closes, only to the slab's free list.
 *
 * The recursion is bounded by the AVL height (< 1.45 log2 n).
 */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "internal.h"

#define BM_SLAB_NODES 1024

static struct rnode *
node_new (struct rtree *t)
{
  struct rslab *s = t->slab;
  struct rnode *n;

  if (s->freelist == NULL) {
    struct rnode *block = malloc (BM_SLAB_NODES * sizeof *block);
    void **blocks = realloc (s->blocks, (s->nblocks + 1) * sizeof *blocks);
    if (block == NULL || blocks == NULL) {
      /* See apply.c: a change half applied is worse than stopping. */
      log_error ("blockmap: out of memory for the extent maps");
      abort ();
    }
    s->blocks = blocks;
    s->blocks[s->nblocks++] = block;
    for (size_t i = 0; i < BM_SLAB_NODES; i++) {
      block[i].left = s->freelist;
      s->freelist = &block[i];
    }
  }
  n = s->freelist;
  s->freelist = n->left;
  n->left = n->right = NULL;
  n->height = 1;
  t->nodes++;
  return n;
}

static void
node_put (struct rtree *t, struct rnode *n)
{
  n->left = t->slab->freelist;
  t->slab->freelist = n;
  t->nodes--;
}

void
rslab_free_all (struct rslab *slab)
{
  for (size_t i = 0; i < slab->nblocks; i++)
    free (slab->blocks[i]);
  free (slab->blocks);
  slab->blocks = NULL;
  slab->nblocks = 0;
  slab->freelist = NULL;
}

void
rtree_init (struct rtree *t, struct rslab *slab, enum rtree_kind kind)
{
  t->root = NULL;
  t->slab = slab;
  t->kind = kind;
  t->nodes = 0;
  t->total = 0;
}

static void
clear_rec (struct rtree *t, struct rnode *n)
{
  if (n == NULL)
    return;
  clear_rec (t, n->left);
  clear_rec (t, n->right);
  node_put (t, n);
}

void
rtree_clear (struct rtree *t)
{
  clear_rec (t, t->root);
  t->root = NULL;
  t->total = 0;
}

static inline int
height (const struct rnode *n)
{
  return n ? n->height : 0;
}

static inline void
fix_height (struct rnode *n)
{
  int hl = height (n->left), hr = height (n->right);
  n->height = (hl > hr ? hl : hr) + 1;
}

static struct rnode *
rotate_right (struct rnode *n)
{
  struct rnode *l = n->left;

  n->left = l->right;
  l->right = n;
  fix_height (n);
  fix_height (l);
  return l;
}

static struct rnode *
rotate_left (struct rnode *n)
{
  struct rnode *r = n->right;

  n->right = r->left;
  r->left = n;
  fix_height (n);
  fix_height (r);
  return r;
}

static struct rnode *
balance (struct rnode *n)
{
  int bf;

  fix_height (n);
  bf = height (n->left) - height (n->right);
  if (bf > 1) {
    if (height (n->left->left) < height (n->left->right))
      n->left = rotate_left (n->left);
    return rotate_right (n);
  }
  if (bf < -1) {
    if (height (n->right->right) < height (n->right->left))
      n->right = rotate_right (n->right);
    return rotate_left (n);
  }
  return n;
}

static struct rnode *
insert_rec (struct rnode *root, struct rnode *n)
{
  if (root == NULL)
    return n;
  if (n->start < root->start)
    root->left = insert_rec (root->left, n);
  else
    root->right = insert_rec (root->right, n);
  return balance (root);
}

/* Detach the minimum of the subtree N into *MIN. */
static struct rnode *
remove_min (struct rnode *n, struct rnode **min)
{
  if (n->left == NULL) {
    *min = n;
    return n->right;
  }
  n->left = remove_min (n->left, min);
  return balance (n);
}

/* Detach the node with key START (it must exist) into *OUT. */
static struct rnode *
delete_rec (struct rnode *root, uint64_t start, struct rnode **out)
{
  if (start < root->start)
    root->left = delete_rec (root->left, start, out);
  else if (start > root->start)
    root->right = delete_rec (root->right, start, out);
  else {
    struct rnode *l = root->left, *r = root->right, *min;
    *out = root;
    if (r == NULL)
      return l;
    r = remove_min (r, &min);
    min->left = l;
    min->right = r;
    return balance (min);
  }
  return balance (root);
}

static void
node_delete (struct rtree *t, struct rnode *n)
{
  struct rnode *out = NULL;

  t->root = delete_rec (t->root, n->start, &out);
  node_put (t, out);
}

struct rnode *
rtree_find_le (const struct rtree *t, uint64_t x)
{
  struct rnode *n = t->root, *best = NULL;

  while (n) {
    if (n->start <= x) {
      best = n;
      n = n->right;
    }
    else
      n = n->left;
  }
  return best;
}

struct rnode *
rtree_find_gt (const struct rtree *t, uint64_t x)
{
  struct rnode *n = t->root, *best = NULL;

  while (n) {
    if (n->start > x) {
      best = n;
      n = n->left;
    }
    else
      n = n->right;
  }
  return best;
}

struct rnode *
rtree_first (const struct rtree *t)
{
  struct rnode *n = t->root;

  while (n && n->left)
    n = n->left;
  return n;
}

struct rnode *
rtree_lookup (const struct rtree *t, uint64_t x)
{
  struct rnode *n = rtree_find_le (t, x);

  return n && x - n->start < n->len ? n : NULL;
}

/* Can run A be followed directly by B (B.start == A.start + A.len)? */
static bool
mergeable (const struct rtree *t, const struct rnode *a, uint64_t bval,
           uint8_t btier, uint8_t bflags)
{
  if (a->tier != btier || a->flags != bflags)
    return false;
  switch (t->kind) {
  case RT_EXTENT: return a->val + a->len == bval;
  case RT_COUNT:  return a->val == bval;
  case RT_SET:    return true;
  }
  return false;
}

void
rtree_add_range (struct rtree *t, uint64_t start, uint64_t len,
                 uint64_t val, uint8_t tier, uint8_t flags)
{
  struct rnode *prev, *next, *n;

  if (len == 0)
    return;
  t->total += len;
  prev = start > 0 ? rtree_find_le (t, start - 1) : NULL;
  next = rtree_find_gt (t, start);
  if (next && next->start != start + len)
    next = NULL;
  if (prev && prev->start + prev->len == start &&
      mergeable (t, prev, val, tier, flags)) {
    prev->len += len;
    if (next && mergeable (t, prev, next->val, next->tier, next->flags)) {
      prev->len += next->len;
      node_delete (t, next);
    }
    return;
  }
  if (next) {
    struct rnode tmp = { .start = start, .len = len, .val = val,
                         .tier = tier, .flags = flags };
    if (mergeable (t, &tmp, next->val, next->tier, next->flags)) {
      /* Moving the key down keeps the order: [start, next) was free. */
      next->start = start;
      next->len += len;
      next->val = val;
      return;
    }
  }
  n = node_new (t);
  n->start = start;
  n->len = len;
  n->val = val;
  n->tier = tier;
  n->flags = flags;
  t->root = insert_rec (t->root, n);
}

void
rtree_remove_range (struct rtree *t, uint64_t start, uint64_t len,
                    rtree_piece_fn fn, void *opaque)
{
  uint64_t end = start + len;
  struct rnode *n;

  if (len == 0)
    return;
  n = rtree_find_le (t, start);
  if (n == NULL || n->start + n->len <= start)
    n = rtree_find_gt (t, start);
  while (n && n->start < end) {
    uint64_t nend = n->start + n->len;
    uint64_t shift = t->kind == RT_EXTENT;

    if (n->start < start) {
      uint64_t cut_end = nend < end ? nend : end;
      if (fn)
        fn (opaque, start, cut_end - start, n->val + shift * (start - n->start),
            n->tier, n->flags);
      t->total -= cut_end - start;
      if (nend > end) {
        /* Split: keep the head in N, a new node for the tail. */
        uint64_t tval = n->val + shift * (end - n->start);
        uint8_t tier = n->tier, flags = n->flags;
        n->len = start - n->start;
        struct rnode *tail = node_new (t);
        tail->start = end;
        tail->len = nend - end;
        tail->val = tval;
        tail->tier = tier;
        tail->flags = flags;
        t->root = insert_rec (t->root, tail);
        return;
      }
      n->len = start - n->start;
      n = rtree_find_gt (t, n->start);
      continue;
    }
    if (nend > end) {
      /* Trim the head; the key moves up within its own old range. */
      if (fn)
        fn (opaque, n->start, end - n->start, n->val, n->tier, n->flags);
      t->total -= end - n->start;
      n->val += shift * (end - n->start);
      n->len = nend - end;
      n->start = end;
      return;
    }
    if (fn)
      fn (opaque, n->start, n->len, n->val, n->tier, n->flags);
    t->total -= n->len;
    {
      uint64_t key = n->start;
      node_delete (t, n);
      n = rtree_find_gt (t, key);
    }
  }
}

static int
walk_rec (const struct rnode *n,
          int (*fn) (void *opaque, const struct rnode *n), void *opaque)
{
  int r;

  if (n == NULL)
    return 0;
  if ((r = walk_rec (n->left, fn, opaque)) != 0)
    return r;
  if ((r = fn (opaque, n)) != 0)
    return r;
  return walk_rec (n->right, fn, opaque);
}

int
rtree_walk (const struct rtree *t,
            int (*fn) (void *opaque, const struct rnode *n), void *opaque)
{
  return walk_rec (t->root, fn, opaque);
}

struct verify_state {
  bool have_prev;
  uint64_t prev_end;
  uint64_t nodes, total;
};

static int
verify_rec (const struct rnode *n, struct verify_state *s)
{
  int hl, hr;

  if (n == NULL)
    return 0;
  if (verify_rec (n->left, s) < 0)
    return -EUCLEAN;
  if (n->len == 0 || n->start + n->len < n->start)
    return -EUCLEAN;
  if (s->have_prev && n->start < s->prev_end)
    return -EUCLEAN;
  s->have_prev = true;
  s->prev_end = n->start + n->len;
  s->nodes++;
  s->total += n->len;
  hl = height (n->left);
  hr = height (n->right);
  if (n->height != (hl > hr ? hl : hr) + 1 || hl - hr > 1 || hr - hl > 1)
    return -EUCLEAN;
  return verify_rec (n->right, s);
}

int
rtree_verify (const struct rtree *t)
{
  struct verify_state s = { 0 };

  if (verify_rec (t->root, &s) < 0)
    return -EUCLEAN;
  if (s.nodes != t->nodes || s.total != t->total)
    return -EUCLEAN;
  return 0;
}
