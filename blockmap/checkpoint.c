/* blockmap/checkpoint.c: the complete state, written now and then so
 * that the journal stays short.
 *
 * "checkpoint" (all little-endian):
 *
 *   "STRCKPT\0" | version u32 | flags u32 (1: clean close) | uuid 16
 *   | last LSN u64 | next volume id u64 | volume count u64
 *   per volume: id u64 | size u64 | created u64 | flags u32 (1: snapshot)
 *               | origin u64 | name | type | attrs (u32 length incl.
 *               NUL, bytes) | extent count u64 | map
 *   "STRCKEND" | CRC32 of everything before it, seeded with the uuid
 *
 * A map is its AVL tree in pre-order, so that subtrees shared between
 * a volume and its snapshots (rtree.c) are written once, and loading
 * rebuilds the same sharing without searching:
 *
 *   tree := 0                         no node
 *         | 1 extent tree tree        a node only this parent has
 *         | 2 extent tree tree        a shared node, first time: it gets
 *                                     the next id (0, 1, ...)
 *         | 3 id u64                  that shared node again
 *   extent := lchunk u64 | pchunk u64 | count u64 | tier u8 | flags u8
 *
 * Version 1 (no sharing, no origin) stored each map as a flat extent
 * list; it is still read.
 *
 * Writing (checkpoint_write, under flush_lock): serialize the state
 * under the pool lock (taking the journal buffer with it: its records
 * are all in the state), fdatasync the data file, write checkpoint.tmp,
 * fsync, rename over checkpoint, fsync the directory, then start a new
 * journal at the next LSN.  Serializing before the data sync is safe:
 * a map entry exists only for a chunk that reads as zero (fresh) or
 * whose data write has completed (CoW commit), so once the data file is
 * synced every entry points at the right bytes.  A crash between the
 * rename and the new journal leaves an old journal whose records are
 * all at or below the checkpoint's LSN; replay skips them.
 *
 * Loading goes through state_check/state_apply with VOL_CREATE and MAP
 * records made up from the file, like replay, so the same rules hold.
 *
 * XXX The state is serialized into memory while holding the pool lock:
 * about 26 bytes and a few hundred nanoseconds per extent.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define CKPT_MAGIC "STRCKPT"
#define CKPT_END "STRCKEND"
#define CKPT_TMP_FILE "checkpoint.tmp"
#define CKPT_CLEAN 1u
#define CKPT_HDR_SIZE 56
#define CKPT_VERSION 2
#define CKPT_VERSION_FLAT 1

enum { TAG_NONE, TAG_NODE, TAG_SHARED, TAG_REF };

/* Deeper than any AVL tree of 2^64 nodes: a deeper one is corrupt. */
#define CKPT_MAX_DEPTH 96

static void
put_header (struct bbuf *b, const unsigned char uuid[16], bool clean,
            uint64_t last_lsn, uint64_t next_vol_id, uint64_t nvols)
{
  bbuf_put_bytes (b, CKPT_MAGIC, 8);
  bbuf_put_u32 (b, CKPT_VERSION);
  bbuf_put_u32 (b, clean ? CKPT_CLEAN : 0);
  bbuf_put_bytes (b, uuid, 16);
  bbuf_put_u64 (b, last_lsn);
  bbuf_put_u64 (b, next_vol_id);
  bbuf_put_u64 (b, nvols);
}

static void
put_trailer (struct bbuf *b, const unsigned char uuid[16])
{
  bbuf_put_bytes (b, CKPT_END, 8);
  bbuf_put_u32 (b, bm_crc (uuid, b->p, b->len));
}

struct put_ctx {
  struct bbuf *b;
  struct nodemap ids;           /* shared nodes written: id + 1 */
  uint64_t next_id;
};

static void
put_tree (struct put_ctx *c, const struct rnode *n)
{
  struct bbuf *b = c->b;

  if (n == NULL) {
    bbuf_put_u8 (b, TAG_NONE);
    return;
  }
  if (n->refs > 1) {
    bool added;
    uint64_t *id = nodemap_put (&c->ids, n, &added);
    if (!added) {
      bbuf_put_u8 (b, TAG_REF);
      bbuf_put_u64 (b, *id - 1);
      return;
    }
    *id = ++c->next_id;
    bbuf_put_u8 (b, TAG_SHARED);
  }
  else
    bbuf_put_u8 (b, TAG_NODE);
  bbuf_put_u64 (b, n->start);
  bbuf_put_u64 (b, n->val);
  bbuf_put_u64 (b, n->len);
  bbuf_put_u8 (b, n->tier);
  bbuf_put_u8 (b, n->flags);
  put_tree (c, n->left);
  put_tree (c, n->right);
}

static void
serialize (struct blockmap_pool *pool, bool clean, uint64_t last,
           struct bbuf *b)
{
  struct put_ctx c = { .b = b };

  bbuf_reserve (b, CKPT_HDR_SIZE + 12 + pool->slab.used * 28
                + pool->nvols * (80 + BLOCKMAP_NAME_MAX));
  put_header (b, pool->uuid, clean, last, pool->next_vol_id, pool->nvols);
  for (size_t i = 0; i < pool->nvols; i++) {
    const struct blockmap_volume *v = pool->by_id[i];
    bbuf_put_u64 (b, v->id);
    bbuf_put_u64 (b, v->size);
    bbuf_put_u64 (b, v->created);
    bbuf_put_u32 (b, v->readonly ? 1 : 0);
    bbuf_put_u64 (b, v->origin);
    bbuf_put_str (b, v->name);
    bbuf_put_str (b, v->type);
    bbuf_put_str (b, v->attrs);
    bbuf_put_u64 (b, v->map.nodes);
    put_tree (&c, v->map.root);
  }
  nodemap_free (&c.ids);
  put_trailer (b, pool->uuid);
}

static int
install (int dirfd, const struct bbuf *b)
{
  CLEANUP_BM_CLOSE int fd = -1;
  int r;

  fd = bm_io->openat (dirfd, CKPT_TMP_FILE,
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return fd;
  if ((r = bm_pwrite_all (fd, b->p, b->len, 0)) < 0 ||
      (r = bm_io->fsync (fd)) < 0 ||
      (r = bm_io->renameat (dirfd, CKPT_TMP_FILE, dirfd,
                            BM_CHECKPOINT_FILE)) < 0 ||
      (r = bm_io->fsync (dirfd)) < 0)
    return r;
  return 0;
}

int
checkpoint_write_initial (int dirfd, const unsigned char uuid[16])
{
  struct bbuf b = { 0 };
  int r;

  put_header (&b, uuid, true, 0, 1, 0);
  put_trailer (&b, uuid);
  r = install (dirfd, &b);
  bbuf_free (&b);
  return r;
}

int
checkpoint_write (struct blockmap_pool *pool, bool clean)
{
  struct bbuf b = { 0 };
  struct pending_free *v;
  uint64_t last, end;
  size_t n;
  int r, jfd;
  const char *what;

  {
    LOCK_FOR_SCOPE (&pool->lock);
    if (pool->failed)
      return -EIO;
    pool->commits_started++;
    last = pool->next_lsn - 1;
    serialize (pool, clean, last, &b);
    /* Every buffered record is in the serialized state. */
    pool->jbuf.len = 0;
    end = tier_data_end (pool, &pool->hot);
  }
  what = "extending " BM_HOT_DATA_FILE;
  if ((r = tier_extend (&pool->hot, end)) < 0)
    goto fail;
  what = "fdatasync " BM_HOT_DATA_FILE;
  if ((r = bm_io->fdatasync (pool->hot.fd)) < 0)
    goto fail;
  what = "writing the checkpoint";
  if ((r = install (pool->dir_fd, &b)) < 0)
    goto fail;
  bbuf_free (&b);
  what = "starting a new journal";
  jfd = journal_create (pool->dir_fd, pool->uuid, last + 1);
  if (jfd < 0) {
    r = jfd;
    goto fail;
  }
  bm_io->close (pool->jfd);
  pool->jfd = jfd;
  pool->journal_size = JOURNAL_HDR_SIZE;
  {
    LOCK_FOR_SCOPE (&pool->lock);
    pool->checkpoint_lsn = last;
    pool->durable_lsn = last;
    n = alloc_reclaim_take (pool, BM_RECLAIM_BATCH, &v);
  }
  if (n > 0)
    alloc_reclaim_finish (pool, v, n);
  log_debug (DBG_JOURNAL, "blockmap: %s: checkpoint at LSN %" PRIu64 "%s",
             pool->path, last, clean ? " (clean)" : "");
  return 0;

 fail:
  bbuf_free (&b);
  log_error ("blockmap: %s: checkpoint: %s: %s; refusing further changes",
             pool->path, what, strerror (-r));
  {
    LOCK_FOR_SCOPE (&pool->lock);
    pool->failed = true;
  }
  return -EIO;
}

/* Loading a version 2 map. */
struct load_ctx {
  struct blockmap_pool *pool;
  struct breader *br;
  struct rnode **shared;        /* by id; NULL until its subtree is read */
  size_t nshared, cap;
  bool any_shared;              /* this volume's tree has shared nodes */
};

static bool
push_shared (struct load_ctx *c)
{
  if (c->nshared == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 256;
    struct rnode **v = realloc (c->shared, cap * sizeof *v);
    if (v == NULL)
      return false;
    c->shared = v;
    c->cap = cap;
  }
  c->shared[c->nshared++] = NULL;
  return true;
}

/* Read one tree into *OUT.  Returns 0 or -EUCLEAN / -ENOMEM.  Nodes
 * built are owned by the slab, so a failure leaves them for pool close.
 */
static int
get_tree (struct load_ctx *c, int depth, struct rnode **out)
{
  struct breader *br = c->br;
  uint8_t tag = br_u8 (br);
  struct rnode *n;
  size_t id = 0;
  int r, hl, hr;

  *out = NULL;
  if (br->err || depth > CKPT_MAX_DEPTH)
    return -EUCLEAN;
  switch (tag) {
  case TAG_NONE:
    return 0;
  case TAG_REF: {
    uint64_t ref = br_u64 (br);
    /* Only a node whose subtree is complete: no cycles. */
    if (br->err || ref >= c->nshared || c->shared[ref] == NULL)
      return -EUCLEAN;
    n = c->shared[ref];
    if (n->refs == UINT32_MAX)
      return -EUCLEAN;
    n->refs++;
    c->any_shared = true;
    *out = n;
    return 0;
  }
  case TAG_SHARED:
    if (!push_shared (c))
      return -ENOMEM;
    id = c->nshared - 1;
    c->any_shared = true;
    /* fall through */
  case TAG_NODE:
    n = rslab_get (&c->pool->slab);
    n->start = br_u64 (br);
    n->val = br_u64 (br);
    n->len = br_u64 (br);
    n->tier = br_u8 (br);
    n->flags = br_u8 (br);
    if (br->err || n->len == 0 || n->start + n->len < n->start ||
        n->tier != BM_TIER_HOT || n->val >= c->pool->hot.capacity ||
        n->len > c->pool->hot.capacity - n->val)
      return -EUCLEAN;
    if ((r = get_tree (c, depth + 1, &n->left)) < 0 ||
        (r = get_tree (c, depth + 1, &n->right)) < 0)
      return r;
    hl = n->left ? n->left->height : 0;
    hr = n->right ? n->right->height : 0;
    n->height = (hl > hr ? hl : hr) + 1;
    if (tag == TAG_SHARED)
      c->shared[id] = n;
    *out = n;
    return 0;
  default:
    return -EUCLEAN;
  }
}

struct count_ctx {
  uint64_t nodes, total;
};

static int
count_node (void *opaque, const struct rnode *n)
{
  struct count_ctx *c = opaque;

  c->nodes++;
  c->total += n->len;
  return 0;
}

/* Read VOL's map; check it is a well-formed tree within the volume. */
static int
load_map (struct load_ctx *c, struct blockmap_volume *vol,
          uint64_t nextents)
{
  struct count_ctx cnt = { 0 };
  const struct rnode *last;
  int r;

  c->any_shared = false;
  if ((r = get_tree (c, 0, &vol->map.root)) < 0)
    return r;
  rtree_walk (&vol->map, count_node, &cnt);
  vol->map.nodes = cnt.nodes;
  vol->map.total = cnt.total;
  vol->map.may_share = c->any_shared;
  if (cnt.nodes != nextents || rtree_verify (&vol->map) < 0)
    return -EUCLEAN;
  for (last = rtree_first (&vol->map); last && rtree_find_gt (&vol->map,
                                                                last->start);)
    last = rtree_find_gt (&vol->map, last->start);
  if (last && last->start + last->len > bm_chunks_for (c->pool, vol->size))
    return -EUCLEAN;
  return 0;
}

static int
load (struct blockmap_pool *pool, const unsigned char *m, size_t size,
      bool *clean)
{
  struct breader br = { .p = m, .len = size - 12 };
  uint64_t nvols, next_vol_id;
  uint32_t version, flags;
  int r;

  if (memcmp (m, CKPT_MAGIC, 8) != 0)
    return -EUCLEAN;
  br.pos = 8;
  version = br_u32 (&br);
  if (version != CKPT_VERSION && version != CKPT_VERSION_FLAT) {
    log_error ("blockmap: %s: checkpoint format version %u unknown",
               pool->path, version);
    return -EPROTO;
  }
  flags = br_u32 (&br);
  if (memcmp (m + br.pos, pool->uuid, 16) != 0)
    return -EUCLEAN;
  br.pos += 16;
  pool->checkpoint_lsn = br_u64 (&br);
  next_vol_id = br_u64 (&br);
  nvols = br_u64 (&br);
  *clean = flags & CKPT_CLEAN;

  struct load_ctx lc = { .pool = pool, .br = &br };
  for (uint64_t i = 0; i < nvols && !br.err; i++) {
    struct jrec c = { .type = JREC_VOL_CREATE };
    struct blockmap_volume *vol;
    uint64_t nextents, prev_end = 0, origin;
    uint32_t vflags;

    c.vol = br_u64 (&br);
    c.size = br_u64 (&br);
    c.time = br_u64 (&br);
    vflags = br_u32 (&br);
    origin = version == CKPT_VERSION ? br_u64 (&br) : 0;
    c.name = br_str (&br, BLOCKMAP_NAME_MAX);
    c.vtype = br_str (&br, BLOCKMAP_TYPE_MAX);
    c.attrs = br_str (&br, BLOCKMAP_ATTRS_MAX);
    nextents = br_u64 (&br);
    if (br.err)
      break;
    r = vflags & 1 ? state_check_snapshot_entry (pool, &c)
      : state_check (pool, &c);
    if (r < 0) {
      log_error ("blockmap: %s: checkpoint: volume id %" PRIu64 " is "
                 "invalid: %s", pool->path, c.vol, strerror (-r));
      free (lc.shared);
      return -EUCLEAN;
    }
    state_apply (pool, &c);
    vol = pool_find_volume_id (pool, c.vol);
    vol->origin = origin;
    if (version == CKPT_VERSION) {
      vol->readonly = vflags & 1;
      if ((r = load_map (&lc, vol, nextents)) < 0) {
        log_error ("blockmap: %s: checkpoint: volume %s: the map is "
                   "malformed", pool->path, vol->name);
        free (lc.shared);
        return r == -ENOMEM ? r : -EUCLEAN;
      }
      continue;
    }
    for (uint64_t j = 0; j < nextents && !br.err; j++) {
      struct jrec e = { .type = JREC_MAP, .vol = c.vol };
      e.lchunk = br_u64 (&br);
      e.pchunk = br_u64 (&br);
      e.count = br_u64 (&br);
      e.tier = br_u8 (&br);
      e.flags = br_u8 (&br);
      if (br.err)
        break;
      if ((j > 0 && e.lchunk < prev_end) ||
          (r = state_check (pool, &e)) < 0) {
        log_error ("blockmap: %s: checkpoint: volume %s: extent at chunk %"
                   PRIu64 " is invalid or overlaps", pool->path, vol->name,
                   e.lchunk);
        return -EUCLEAN;
      }
      prev_end = e.lchunk + e.count;
      state_apply (pool, &e);
    }
    vol->readonly = vflags & 1;   /* after its MAP records */
  }
  free (lc.shared);
  if (br.err || br.pos != br.len) {
    log_error ("blockmap: %s: checkpoint is truncated or malformed",
               pool->path);
    return -EUCLEAN;
  }
  if (next_vol_id > pool->next_vol_id)
    pool->next_vol_id = next_vol_id;
  /* Replay moves counts from here (version 1 built them already). */
  if (version == CKPT_VERSION)
    refcount_compute (pool, &pool->hot.refs);
  return 0;
}

int
checkpoint_load (struct blockmap_pool *pool, bool *clean)
{
  CLEANUP_BM_CLOSE int fd = -1;
  CLEANUP_FREE unsigned char *m = NULL;
  uint64_t size;
  int r;

  fd = bm_io->openat (pool->dir_fd, BM_CHECKPOINT_FILE, O_RDONLY | O_CLOEXEC,
                      0);
  if (fd < 0) {
    log_error ("blockmap: %s: open checkpoint: %s", pool->path,
               strerror (-fd));
    return fd == -ENOENT ? -EUCLEAN : fd;
  }
  if ((r = bm_read_file (fd, &m, &size)) < 0) {
    log_error ("blockmap: %s: read checkpoint: %s", pool->path,
               strerror (-r));
    return r;
  }
  if (size < CKPT_HDR_SIZE + 12) {
    log_error ("blockmap: %s: checkpoint is truncated", pool->path);
    return -EUCLEAN;
  }
  if (memcmp (m + size - 12, CKPT_END, 8) != 0 ||
      le32_get (m + size - 4) != bm_crc (pool->uuid, m, size - 4)) {
    /* A version we do not know may checksum differently: say so. */
    if (memcmp (m, CKPT_MAGIC, 8) == 0 &&
        le32_get (m + 8) != CKPT_VERSION &&
        le32_get (m + 8) != CKPT_VERSION_FLAT) {
      log_error ("blockmap: %s: checkpoint format version %u unknown",
                 pool->path, le32_get (m + 8));
      r = -EPROTO;
    }
    else {
      log_error ("blockmap: %s: checkpoint checksum mismatch", pool->path);
      r = -EUCLEAN;
    }
  }
  else
    r = load (pool, m, size, clean);
  return r;
}
