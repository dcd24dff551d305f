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
 * Sharing (snapshots, DESIGN invariant 3).  A tree may share whole
 * subtrees with other trees: rtree_share makes a second tree use the
 * same root, in O(1), and every node counts how many parents (or tree
 * roots) point at it (refs).  The trees stay persistent: before any
 * change, every node from the root down to the one changed is "owned"
 * -- a node with refs > 1 is first copied, the copy taking a reference
 * on each child and the original losing one (path copying).  So a
 * change to one tree costs O(log n) new nodes the first time, and the
 * other trees never see it.  Copying a node of an extent map means one
 * more node points at its chunks; the tree tells its owner through
 * on_copy (extent.c turns that into a chunk reference).  Trees that
 * never shared (the refcount and free trees) skip all of this.
 *
 * The recursion is bounded by the AVL height (< 1.45 log2 n).
 */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "internal.h"

#define BM_SLAB_NODES 1024

struct rnode *
rslab_get (struct rslab *s)
{
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
  n->refs = 1;
  s->used++;
  return n;
}

void
rslab_put (struct rslab *s, struct rnode *n)
{
  n->left = s->freelist;
  n->refs = 0;
  s->freelist = n;
  s->used--;
}

static struct rnode *
node_new (struct rtree *t)
{
  t->nodes++;
  return rslab_get (t->slab);
}

/* N must be owned (refs == 1): it leaves the tree for the free list. */
static void
node_put (struct rtree *t, struct rnode *n)
{
  rslab_put (t->slab, n);
  t->nodes--;
}

/* N, or a private copy of it if other trees share it.  The caller
 * stores the result where it found N (so the parent must be owned).
 */
static struct rnode *
own (struct rtree *t, struct rnode *n)
{
  struct rnode *c;

  if (n == NULL || n->refs == 1)
    return n;
  c = rslab_get (t->slab);
  *c = *n;
  c->refs = 1;
  n->refs--;
  if (c->left)
    c->left->refs++;
  if (c->right)
    c->right->refs++;
  if (t->on_copy)
    t->on_copy (t->copy_opaque, c);
  return c;
}

/* The node with key START (which must be in T), owned along with its
 * whole path from the root.  N is the caller's pointer to it, returned
 * as is when T has never shared anything.
 */
static struct rnode *
own_node (struct rtree *t, struct rnode *n)
{
  struct rnode **link = &t->root;

  if (!t->may_share)
    return n;
  while (*link) {
    struct rnode *x = own (t, *link);
    *link = x;
    if (x->start == n->start)
      return x;
    link = n->start < x->start ? &x->left : &x->right;
  }
  abort ();                     /* N was not in T */
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
  slab->used = 0;
}

void
rtree_init (struct rtree *t, struct rslab *slab, enum rtree_kind kind)
{
  t->root = NULL;
  t->slab = slab;
  t->kind = kind;
  t->nodes = 0;
  t->total = 0;
  t->may_share = false;
  t->on_copy = NULL;
  t->copy_opaque = NULL;
}

/* Drop one reference to N; free what nobody else holds. */
static void
clear_rec (struct rslab *s, struct rnode *n)
{
  if (n == NULL || --n->refs > 0)
    return;
  clear_rec (s, n->left);
  clear_rec (s, n->right);
  n->refs = 1;
  rslab_put (s, n);
}

void
rtree_clear (struct rtree *t)
{
  clear_rec (t->slab, t->root);
  t->root = NULL;
  t->nodes = 0;
  t->total = 0;
}

void
rtree_share (struct rtree *dst, struct rtree *src)
{
  dst->root = src->root;
  if (dst->root)
    dst->root->refs++;
  dst->nodes = src->nodes;
  dst->total = src->total;
  dst->may_share = src->may_share = true;
}

struct rnode *
rtree_detach (struct rtree *t)
{
  struct rnode *root = t->root;

  t->root = NULL;
  t->nodes = 0;
  t->total = 0;
  return root;
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

/* Rotations and balance: N is owned; the child lifted is owned here. */
static struct rnode *
rotate_right (struct rtree *t, struct rnode *n)
{
  struct rnode *l = own (t, n->left);

  n->left = l->right;
  l->right = n;
  fix_height (n);
  fix_height (l);
  return l;
}

static struct rnode *
rotate_left (struct rtree *t, struct rnode *n)
{
  struct rnode *r = own (t, n->right);

  n->right = r->left;
  r->left = n;
  fix_height (n);
  fix_height (r);
  return r;
}

static struct rnode *
balance (struct rtree *t, struct rnode *n)
{
  int bf;

  fix_height (n);
  bf = height (n->left) - height (n->right);
  if (bf > 1) {
    if (height (n->left->left) < height (n->left->right)) {
      n->left = own (t, n->left);
      n->left = rotate_left (t, n->left);
    }
    return rotate_right (t, n);
  }
  if (bf < -1) {
    if (height (n->right->right) < height (n->right->left)) {
      n->right = own (t, n->right);
      n->right = rotate_right (t, n->right);
    }
    return rotate_left (t, n);
  }
  return n;
}

static struct rnode *
insert_rec (struct rtree *t, struct rnode *root, struct rnode *n)
{
  if (root == NULL)
    return n;
  root = own (t, root);
  if (n->start < root->start)
    root->left = insert_rec (t, root->left, n);
  else
    root->right = insert_rec (t, root->right, n);
  return balance (t, root);
}

/* Detach the minimum of the subtree N into *MIN (owned). */
static struct rnode *
remove_min (struct rtree *t, struct rnode *n, struct rnode **min)
{
  n = own (t, n);
  if (n->left == NULL) {
    *min = n;
    return n->right;
  }
  n->left = remove_min (t, n->left, min);
  return balance (t, n);
}

/* Detach the node with key START (it must exist) into *OUT (owned: its
 * children's references pass to whatever replaces it).
 */
static struct rnode *
delete_rec (struct rtree *t, struct rnode *root, uint64_t start,
            struct rnode **out)
{
  root = own (t, root);
  if (start < root->start)
    root->left = delete_rec (t, root->left, start, out);
  else if (start > root->start)
    root->right = delete_rec (t, root->right, start, out);
  else {
    struct rnode *l = root->left, *r = root->right, *min;
    *out = root;
    if (r == NULL)
      return l;
    r = remove_min (t, r, &min);
    min->left = l;
    min->right = r;
    return balance (t, min);
  }
  return balance (t, root);
}

static void
node_delete (struct rtree *t, struct rnode *n)
{
  struct rnode *out = NULL;

  t->root = delete_rec (t, t->root, n->start, &out);
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
    /* Owning PREV's path may copy NEXT: only its key is used below. */
    prev = own_node (t, prev);
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
      next = own_node (t, next);
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
  t->root = insert_rec (t, t->root, n);
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

    n = own_node (t, n);
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
        t->root = insert_rec (t, t->root, tail);
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

void
rtree_own_range (struct rtree *t, uint64_t start, uint64_t len)
{
  uint64_t end = start + len < start ? UINT64_MAX : start + len;
  struct rnode *n;

  if (!t->may_share || len == 0)
    return;
  n = rtree_find_le (t, start);
  if (n == NULL || n->start + n->len <= start)
    n = rtree_find_gt (t, start);
  while (n && n->start < end) {
    uint64_t key = n->start;
    own_node (t, n);
    n = rtree_find_gt (t, key);
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
