/* blockmap/internal.h: shared between the .c files of blockmap/ only
 * (and the unit tests, which are friends).  Sections follow the file
 * that defines them.
 *
 * The picture, for one pool:
 *
 *   struct blockmap_pool
 *     lock ── protects everything below except where noted
 *     volumes (by name, by id) ── struct blockmap_volume
 *                                   map: rtree of extents (lchunk → pchunk)
 *     hot: struct tier_space
 *            refs:    rtree of runs of referenced chunks (val = count)
 *            free:    rtree of runs of free, reusable chunks
 *            pending: FIFO of freed chunks waiting for durability and
 *                     for the I/Os that began before the free
 *     jbuf: journal records applied in memory, not yet written
 *     flush_lock ── serializes commits and checkpoints (never taken
 *                   while holding the pool lock)
 *
 * Lock order, outermost first: 1. flush_lock  2. lock.
 */
#ifndef STRATA_BLOCKMAP_INTERNAL_H
#define STRATA_BLOCKMAP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "blockmap.h"

#define BM_SUPERBLOCK_FILE "superblock"
#define BM_JOURNAL_FILE "journal"
#define BM_CHECKPOINT_FILE "checkpoint"
#define BM_HOT_DATA_FILE "hot.data"
#define BM_LOCK_FILE "lock"

#define BM_CHECKPOINT_THRESHOLD (UINT64_C (64) * 1024 * 1024)
#define BM_EPOCH_SLOTS 256

/* ---- codec.c: little-endian encoding into growable buffers ---------- */

struct bbuf {
  unsigned char *p;             /* owned */
  size_t len, cap;
};

/* Make room for N more bytes.  Aborts on out of memory (see the note
 * in apply.c on why metadata changes cannot fail half way).
 */
void bbuf_reserve (struct bbuf *b, size_t n);
void bbuf_free (struct bbuf *b);
void bbuf_put_u8 (struct bbuf *b, uint8_t v);
void bbuf_put_u16 (struct bbuf *b, uint16_t v);
void bbuf_put_u32 (struct bbuf *b, uint32_t v);
void bbuf_put_u64 (struct bbuf *b, uint64_t v);
void bbuf_put_bytes (struct bbuf *b, const void *p, size_t n);
/* A string as u32 length (including the NUL) + bytes + NUL. */
void bbuf_put_str (struct bbuf *b, const char *s);

static inline void
le32_put (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = v >> (8 * i);
}

static inline uint32_t
le32_get (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
    | (uint32_t) p[3] << 24;
}

static inline uint64_t
le64_get (const unsigned char *p)
{
  return (uint64_t) le32_get (p) | (uint64_t) le32_get (p + 4) << 32;
}

static inline void
le64_put (unsigned char *p, uint64_t v)
{
  le32_put (p, (uint32_t) v);
  le32_put (p + 4, (uint32_t) (v >> 32));
}

/* A bounds-checked reader: any read past the end sets ERR and returns
 * zeroes, so a decoder checks once at the end.
 */
struct breader {
  const unsigned char *p;
  size_t len, pos;
  bool err;
};

uint8_t br_u8 (struct breader *r);
uint16_t br_u16 (struct breader *r);
uint32_t br_u32 (struct breader *r);
uint64_t br_u64 (struct breader *r);
/* A string written by bbuf_put_str, at most MAX bytes including the
 * NUL; points into the buffer.  NULL (and ERR set) if malformed.
 */
const char *br_str (struct breader *r, size_t max);

/* CRC32 (zlib) seeded with the pool uuid, so a record or checkpoint of
 * another pool never passes.
 */
uint32_t bm_crc (const unsigned char uuid[16], const void *p, size_t n);


/* ---- io.c: every file operation, behind a table -------------------- */

/* The engine's file operations.  Each returns what the system call
 * does on success (an fd, a count, 0) and -errno on failure; errno is
 * not used.  fds are real fds (blockmap_pool_data_fd hands one out).
 * A test layer (tests/unit/crash-io.c) may wrap them to simulate power
 * loss; fsync and fdatasync are its crash points.
 */
struct blockmap_io_ops {
  int (*openat) (int dirfd, const char *name, int flags, mode_t mode);
  int (*close) (int fd);
  ssize_t (*pread) (int fd, void *buf, size_t n, uint64_t off);
  ssize_t (*pwrite) (int fd, const void *buf, size_t n, uint64_t off);
  int (*fsync) (int fd);              /* files and directories */
  int (*fdatasync) (int fd);
  int (*ftruncate) (int fd, uint64_t size);
  int (*fallocate) (int fd, int mode, uint64_t off, uint64_t len);
  int (*renameat) (int olddirfd, const char *oldname, int newdirfd,
                   const char *newname);
  int (*unlinkat) (int dirfd, const char *name, int flags);
  int (*fstat) (int fd, struct stat *st);
};

/* The system calls themselves. */
extern const struct blockmap_io_ops blockmap_io_real;
/* The table in use: &blockmap_io_real unless a test changed it.  Not
 * locked: set it only while no pool is open.
 */
extern const struct blockmap_io_ops *bm_io;

/* Write all of BUF at OFFSET.  Returns 0 or -errno (-EIO if no progress). */
int bm_pwrite_all (int fd, const void *buf, size_t n, uint64_t offset);
/* Read the whole file FD into *OUT (caller frees), its size in *SIZE.
 * Returns 0 or -errno.
 */
int bm_read_file (int fd, unsigned char **out, uint64_t *size);
/* fsync the directory PATH.  Returns 0 or -errno. */
int bm_fsync_dir (const char *path);

static inline void
bm_cleanup_close_ (int *fd)
{
  if (*fd >= 0)
    bm_io->close (*fd);
}
/* CLEANUP_CLOSE for fds opened through bm_io. */
#define CLEANUP_BM_CLOSE __attribute__ ((cleanup (bm_cleanup_close_)))

/* ---- rtree.c: AVL tree of runs [start, start+len) ------------------- */

/* One run.  In a volume's map: start = lchunk, val = pchunk.  In the
 * refcount tree: start = pchunk, val = count.  In the free tree:
 * start = pchunk, val unused.  Runs of one tree never overlap.
 */
struct rnode {
  uint64_t start;
  uint64_t len;
  uint64_t val;
  struct rnode *left, *right;
  uint32_t refs;                /* parents and roots pointing here */
  uint8_t tier, flags;
  int8_t height;
};

/* Nodes come from a per-pool slab so that the map costs sizeof (struct
 * rnode) per extent, not a malloc header more.  Protected by the pool
 * lock like the trees that use it.
 */
struct rslab {
  struct rnode *freelist;
  void **blocks;                /* owned, each BM_SLAB_NODES nodes */
  size_t nblocks;
  uint64_t used;                /* nodes handed out */
};

enum rtree_kind {
  RT_EXTENT,                    /* val shifts with start; merge if
                                   physically contiguous too */
  RT_COUNT,                     /* val constant over the run; merge if
                                   equal */
  RT_SET,                       /* val unused; always merge */
};

struct rtree {
  struct rnode *root;
  struct rslab *slab;           /* borrowed from the pool */
  enum rtree_kind kind;
  uint64_t nodes;               /* number of runs */
  uint64_t total;               /* sum of len */
  bool may_share;               /* ever shared nodes with another tree */
  /* Called when a shared node is copied for this tree (see rtree.c). */
  void (*on_copy) (void *opaque, const struct rnode *n);
  void *copy_opaque;
};

/* Called for each piece removed by rtree_remove_range; VAL is the
 * piece's own val (shifted for RT_EXTENT).
 */
typedef void (*rtree_piece_fn) (void *opaque, uint64_t start, uint64_t len,
                                uint64_t val, uint8_t tier, uint8_t flags);

void rslab_free_all (struct rslab *slab);
/* A node with refs = 1 / back to the free list (no tree bookkeeping). */
struct rnode *rslab_get (struct rslab *slab);
void rslab_put (struct rslab *slab, struct rnode *n);
void rtree_init (struct rtree *t, struct rslab *slab, enum rtree_kind kind);
/* Drop T's reference to its nodes, freeing those nobody else holds
 * (no chunk references move: for pool close and private trees).
 */
void rtree_clear (struct rtree *t);
/* Make the empty tree DST share all of SRC's nodes, in O(1). */
void rtree_share (struct rtree *dst, struct rtree *src);
/* Empty T and hand its root (with T's reference on it) to the caller. */
struct rnode *rtree_detach (struct rtree *t);
/* The run with the greatest start <= X, or NULL. */
struct rnode *rtree_find_le (const struct rtree *t, uint64_t x);
/* The run with the smallest start > X, or NULL. */
struct rnode *rtree_find_gt (const struct rtree *t, uint64_t x);
struct rnode *rtree_first (const struct rtree *t);
/* The run containing X, or NULL. */
struct rnode *rtree_lookup (const struct rtree *t, uint64_t x);
/* Add [START, START+LEN) which must not overlap any run, merging with
 * its neighbours where the kind allows.  Never fails (aborts on out of
 * memory).
 */
void rtree_add_range (struct rtree *t, uint64_t start, uint64_t len,
                      uint64_t val, uint8_t tier, uint8_t flags);
/* Remove whatever lies in [START, START+LEN), splitting runs at the
 * edges; FN (may be NULL) sees each removed piece in order.
 */
void rtree_remove_range (struct rtree *t, uint64_t start, uint64_t len,
                         rtree_piece_fn fn, void *opaque);
/* Own (rtree.c) every node overlapping [START, START+LEN) and the paths
 * to them.  Nothing to do in a tree that never shared.
 */
void rtree_own_range (struct rtree *t, uint64_t start, uint64_t len);
/* In-order walk; FN must not change the tree.  Stops at non-zero. */
int rtree_walk (const struct rtree *t,
                int (*fn) (void *opaque, const struct rnode *n),
                void *opaque);
/* Sanity of the tree itself (order, no overlap, AVL balance, totals).
 * Returns 0 or -EUCLEAN.
 */
int rtree_verify (const struct rtree *t);

/* ---- nodemap.c: map nodes -> numbers, for walks over shared maps ---- */

struct nodemap {
  const struct rnode **keys;    /* owned; NULL: empty slot */
  uint64_t *vals;               /* owned */
  size_t cap, n;
};

/* The value of K, or NULL if K is not in M. */
uint64_t *nodemap_get (const struct nodemap *m, const struct rnode *k);
/* The value of K, added as 0 if missing (*ADDED says which; may be
 * NULL).  The pointer is valid until the next put.
 */
uint64_t *nodemap_put (struct nodemap *m, const struct rnode *k,
                       bool *added);
void nodemap_free (struct nodemap *m);
/* Call FN once for each distinct node of every map in POOL (volumes,
 * snapshots and the maps still being freed), pre-order.  Pool lock
 * held.  Stops at and returns FN's first non-zero value.
 */
int pool_walk_distinct (struct blockmap_pool *pool,
                        int (*fn) (void *opaque, const struct rnode *n),
                        void *opaque);

/* ---- reap.c: freeing deleted maps in the background ----------------- */

struct reap_item {
  struct rnode *n;              /* one reference to drop */
  uint64_t lsn;                 /* the VOL_DELETE that dropped it */
  uint64_t epoch;               /* io epoch of that delete */
};

/* Freed ranges a commit punches itself (each a fallocate): a delete of
 * a large map frees hundreds of thousands, which blockmap_pool_reclaim
 * punches off the commit path, so FLUSH never waits for them.
 */
#define BM_RECLAIM_BATCH 256

/* Map nodes freed per step: a few hundred microseconds of pool lock. */
#define BM_REAP_BATCH 1024

/* Queue the reference of the map deleted by record LSN to its root N
 * (may be NULL) for dropping.  Pool lock held.
 */
void reap_push (struct blockmap_pool *pool, struct rnode *n, uint64_t lsn);
/* Drop up to BUDGET queued references.  Returns how many are left,
 * counting those held back (see reap.c).
 */
size_t reap_step (struct blockmap_pool *pool, size_t budget);

/* ---- pool.c ---------------------------------------------------------- */

struct pending_free {
  uint64_t pchunk, count;
  uint64_t lsn;                 /* record that freed it (0: none) */
  uint64_t epoch;               /* io epoch when it was freed */
};

struct tier_space {
  int fd;                       /* the data file, owned */
  uint64_t capacity;            /* chunks */
  uint64_t fs_avail;            /* chunks the file system can still take
                                   (estimate, refreshed at each sync) */
  struct rtree refs;            /* RT_COUNT */
  struct rtree free;            /* RT_SET */
  struct pending_free *pending; /* owned; FIFO [phead, npending) */
  size_t phead, npending, pcap;
  uint64_t pending_chunks;
  /* Chunks that lost a reference (but not their last) in a record not
   * yet durable, or while older I/O is in flight: still shared as far
   * as writing in place goes, since after a crash the dropped reference
   * would be back.  held counts the holds per chunk (RT_COUNT); the
   * FIFO [hhead, nholds) expires them like pending frees.
   */
  struct rtree held;
  struct pending_free *holds;   /* owned */
  size_t hhead, nholds, hcap;
  uint64_t reserved_chunks;     /* allocated for a CoW, not yet mapped */
  uint64_t transit_chunks;      /* reclaimed, being punched */
  /* Bytes the data file durably spans: every commit first extends the
   * file over every chunk ever allocated (alloc_end), so after any
   * crash, whatever prefix of the journal survives, a mapped chunk past
   * the end of the file means the file was cut, and pool check says
   * so.  Not the chunks referenced at commit time: a batch may map a
   * chunk and free it again, and a torn journal keeps only the first.
   */
  uint64_t data_end;
  uint64_t alloc_end;           /* chunks: one past the highest allocated */
  bool no_extend;               /* the file system has no fallocate */
};

struct cow_pending {
  uint64_t lchunk, old_pchunk, new_pchunk;
};

struct blockmap_volume {
  struct blockmap_pool *pool;   /* borrowed */
  uint64_t id;
  char name[BLOCKMAP_NAME_MAX];
  char type[BLOCKMAP_TYPE_MAX];
  char *attrs;                  /* owned, never NULL */
  _Atomic uint64_t size;        /* bytes; read lock-free */
  uint64_t created;
  struct rtree map;             /* RT_EXTENT */
  unsigned open_count;
  bool deleted;                 /* gone from the namespace */
  bool readonly;                /* a snapshot */
  uint64_t origin;              /* volume or snapshot id cloned from; 0 */
  /* Snapshot quiescing (volume.c): while frozen, no write request may
   * begin; writers counts those begun and not ended.
   */
  unsigned frozen;
  unsigned writers;
  /* Moves whenever the volume's contents may have changed: a write
   * request ends, a map record is applied, the volume is resized or
   * deleted (blockmap_volume_stamp).  Written under the pool lock,
   * read lock-free.
   */
  _Atomic uint64_t stamp;
  struct cow_pending *cows;     /* owned */
  size_t ncows, cowcap;
};

struct blockmap_pool {
  /* Immutable after open. */
  char *path;                   /* owned */
  unsigned char uuid[16];
  char uuid_str[37];
  uint32_t chunk_size;
  unsigned chunk_shift;
  int lock_fd;                  /* flock'ed, owned */
  int dir_fd;                   /* owned */
  bool recovered;
  uint64_t journal_dropped;     /* see blockmap_pool_info */

  pthread_mutex_t flush_lock;   /* serializes commits and checkpoints */
  pthread_mutex_t lock;         /* the pool lock: everything below */

  struct rslab slab;
  struct tier_space hot;
  struct blockmap_volume **by_name;  /* owned array, sorted by name */
  struct blockmap_volume **by_id;    /* same volumes, sorted by id */
  size_t nvols, volcap;
  uint64_t next_vol_id;

  /* Journal. */
  int jfd;                      /* owned */
  uint64_t journal_size;        /* bytes on disk (written by commits,
                                   under flush_lock) */
  struct bbuf jbuf;             /* encoded records not yet written */
  uint64_t next_lsn;
  uint64_t durable_lsn;
  uint64_t checkpoint_lsn;
  uint64_t checkpoint_threshold;
  uint64_t commits_started;     /* group commit generation */
  bool failed;                  /* a commit failed: refuse changes */
  bool replaying;

  /* Maps of deleted volumes, being freed (reap.c). */
  struct reap_item *reap;       /* owned: held back [0, reap_held),
                                   stack [reap_held, nreap) */
  size_t nreap, reapcap, reap_held;
  uint64_t reaped_nodes;        /* since open */

  /* I/O epochs (grace period for freed chunks). */
  uint64_t epoch;
  uint32_t inflight[BM_EPOCH_SLOTS];
};

static inline uint64_t
bm_chunks_for (const struct blockmap_pool *pool, uint64_t bytes)
{
  return (bytes + pool->chunk_size - 1) >> pool->chunk_shift;
}

/* Look up a live volume by name / id (pool lock held).  NULL if none. */
struct blockmap_volume *pool_find_volume (struct blockmap_pool *pool,
                                          const char *name);
struct blockmap_volume *pool_find_volume_id (struct blockmap_pool *pool,
                                             uint64_t id);
/* Add VOL to both indexes / remove it (pool lock held). */
void pool_add_volume (struct blockmap_pool *pool,
                      struct blockmap_volume *vol);
void pool_remove_volume (struct blockmap_pool *pool,
                         struct blockmap_volume *vol);
/* Free VOL's memory (it must be out of the indexes). */
void volume_destroy (struct blockmap_volume *vol);

/* Make buffered records and the data durable (group commit), without
 * the checkpoint check.  Caller holds flush_lock.
 */
int pool_commit_locked (struct blockmap_pool *pool);
/* The end in bytes of the highest chunk TS's maps reference, or that
 * was ever allocated since the pool opened if that is further.  Pool
 * lock held.
 */
uint64_t tier_data_end (const struct blockmap_pool *pool,
                        const struct tier_space *ts);
/* Extend the data file of TS to END bytes if it is shorter.  BLOCKS;
 * the caller's fdatasync makes it durable.
 */
int tier_extend (struct tier_space *ts, uint64_t end);

/* ---- superblock.c ---------------------------------------------------- */

struct superblock {
  uint32_t version;
  uint32_t chunk_size;
  unsigned char uuid[16];
  uint64_t hot_capacity;        /* bytes */
  uint64_t created;
};

int superblock_write (int dirfd, const struct superblock *sb);
/* -ENOENT, -EPROTO (version), -EUCLEAN (bad magic/CRC/fields). */
int superblock_read (int dirfd, struct superblock *sb);
void uuid_format (const unsigned char uuid[16], char out[37]);

/* ---- journal.c ------------------------------------------------------- */

enum jrec_type {
  JREC_VOL_CREATE = 1,
  JREC_VOL_DELETE = 2,
  JREC_VOL_RESIZE = 3,
  JREC_VOL_SET_ATTRS = 4,
  JREC_MAP = 5,
  JREC_UNMAP = 6,
  JREC_POOL_OPEN = 7,           /* no state change: marks the pool in use */
  JREC_VOL_CLONE = 8,           /* a snapshot or clone of another volume */
};

#define JREC_CLONE_SNAPSHOT 1   /* VOL_CLONE flags: read-only snapshot */

#define JREC_HDR_SIZE 24
#define JOURNAL_HDR_SIZE 64
#define JREC_MAX_PAYLOAD (64 * 1024)

/* A decoded record.  Strings are borrowed (from the caller or from the
 * journal mapping); NULL means "not present" (VOL_SET_ATTRS).
 */
struct jrec {
  enum jrec_type type;
  uint64_t lsn;
  uint64_t vol;                 /* volume id */
  uint64_t src;                 /* VOL_CLONE: the volume cloned */
  uint64_t size;                /* VOL_CREATE, VOL_RESIZE, VOL_CLONE */
  uint64_t time;                /* VOL_CREATE, VOL_CLONE: created;
                                   POOL_OPEN */
  uint64_t lchunk, pchunk, count;   /* MAP; UNMAP uses lchunk, count */
  uint8_t tier, flags;          /* MAP; VOL_CLONE flags */
  const char *name, *vtype, *attrs;
};

/* Append R (with its lsn set) to BUF, encoded with its CRC. */
void journal_encode (const unsigned char uuid[16], const struct jrec *r,
                     struct bbuf *buf);
/* Decode the record at P (AVAIL bytes).  Returns the record's total
 * size, 0 if it is torn or corrupt (bad CRC, length, fields).
 */
size_t journal_decode (const unsigned char uuid[16], const unsigned char *p,
                       size_t avail, struct jrec *r);
/* Create a fresh journal file whose first record will be START_LSN,
 * atomically replacing the old one.  Returns the new fd or -errno.
 */
int journal_create (int dirfd, const unsigned char uuid[16],
                    uint64_t start_lsn);
/* Open the journal, replay every record after the checkpoint through
 * state_apply, truncate at the first bad record.  Sets *NRECORDS to the
 * number applied.  Returns 0 or -errno (-EUCLEAN).
 */
int journal_replay (struct blockmap_pool *pool, uint64_t *nrecords);

/* ---- apply.c: the single way state changes -------------------------- */

/* A VOL_CREATE made up by checkpoint loading for a snapshot, whose
 * name is VOLUME@SNAPSHOT (its volume may be gone).  0 or -errno.
 */
int state_check_snapshot_entry (struct blockmap_pool *pool,
                                const struct jrec *r);
/* Is R applicable to the current state?  0 or -errno. */
int state_check (struct blockmap_pool *pool, const struct jrec *r);
/* Apply R (already checked) to the in-memory state.  Used by the
 * runtime (through state_log) and by replay alike.
 */
void state_apply (struct blockmap_pool *pool, const struct jrec *r);
/* The runtime path: check R, give it the next LSN, append it to the
 * journal buffer, apply it.  Pool lock held.  Returns 0 or -errno.
 */
int state_log (struct blockmap_pool *pool, struct jrec *r);

/* ---- refcount.c ------------------------------------------------------ */

/* Add one reference to each chunk of [P, P+N). */
void refcount_inc (struct blockmap_pool *pool, uint64_t p, uint64_t n);
/* Drop one reference from each chunk of [P, P+N); chunks reaching zero
 * go to the pending list tagged with LSN.
 */
void refcount_dec (struct blockmap_pool *pool, uint64_t p, uint64_t n,
                   uint64_t lsn);
/* Recompute the refcount tree of TIER from all maps into T (initialized
 * by the caller).
 */
void refcount_compute (struct blockmap_pool *pool, struct rtree *t);
/* Add DELTA to the count of each chunk of [P, P+N) in T (no frees). */
void refcount_tree_adjust (struct rtree *t, uint64_t p, uint64_t n,
                           int delta);
/* How many chunks from P on (at most N) may be written in place: count
 * exactly one and not held.
 */
uint64_t refcount_private_len (struct blockmap_pool *pool, uint64_t p,
                               uint64_t n);
/* Number of chunks in [P, P+N) that must be copied on write. */
uint64_t refcount_shared (struct blockmap_pool *pool, uint64_t p,
                          uint64_t n);

/* ---- alloc.c --------------------------------------------------------- */

/* Take up to WANT free chunks, starting at HINT if that chunk is free
 * (then only chunks following it), else from the lowest free run unless
 * STRICT.  Returns the count taken (0: none), first chunk in *P.
 */
uint64_t alloc_run (struct blockmap_pool *pool, uint64_t hint, bool strict,
                    uint64_t want, uint64_t *p);
/* Freed chunks: put on the pending list. */
void alloc_release (struct blockmap_pool *pool, uint64_t p, uint64_t n,
                    uint64_t lsn);
/* Hold [P, P+N) as shared until LSN is durable and the I/O in flight
 * now has ended (see struct tier_space).
 */
void alloc_hold (struct blockmap_pool *pool, uint64_t p, uint64_t n,
                 uint64_t lsn);
/* Drop the holds that are durable and past their grace period. */
void alloc_expire_holds (struct blockmap_pool *pool);
/* Rebuild the free tree as the complement of the refcount tree, and
 * forget pending frees and holds (at open, after replay).
 */
int alloc_rebuild_free (struct blockmap_pool *pool);
/* Move pending frees that are durable and past their grace period out
 * of the pending list into *OUT (caller frees), counting them as in
 * transit; pool lock held.  Returns the number of entries.
 */
size_t alloc_reclaim_take (struct blockmap_pool *pool, size_t max,
                           struct pending_free **out);
/* Punch each range (no lock), then add them to the free tree (takes the
 * pool lock).  Frees V.
 */
void alloc_reclaim_finish (struct blockmap_pool *pool,
                           struct pending_free *v, size_t n);
/* Punch a chunk range of the hot data file so that it reads as zero. */
int alloc_punch (struct blockmap_pool *pool, uint64_t p, uint64_t n);
/* Re-read the file system's free space (fstatvfs). */
void alloc_refresh_fs (struct blockmap_pool *pool);
/* The oldest epoch that still has I/O in flight (epoch+1 if none). */
uint64_t alloc_oldest_epoch (const struct blockmap_pool *pool);

/* ---- extent.c -------------------------------------------------------- */

/* Map [L, L+N) of VOL to [P, P+N), replacing what was there; references
 * move accordingly (new ones first, so remapping a chunk to itself
 * never frees it).
 */
void extent_map (struct blockmap_volume *vol, uint64_t l, uint64_t n,
                 uint64_t p, uint8_t tier, uint8_t flags, uint64_t lsn);
/* Unmap [L, L+N) of VOL, dropping references. */
void extent_unmap (struct blockmap_volume *vol, uint64_t l, uint64_t n,
                   uint64_t lsn);
/* Set up VOL's (empty) map so that copying a shared node of it adds
 * chunk references (rtree.c).
 */
void extent_map_init (struct blockmap_volume *vol);
/* Own every node of VOL's map on the paths to [L, L+N) (rtree.c), so
 * that chunk reference counts alone tell what is shared.
 */
void extent_unshare (struct blockmap_volume *vol, uint64_t l, uint64_t n);
/* True if any chunk of [L, L+N) is mapped. */
bool extent_any_mapped (const struct blockmap_volume *vol, uint64_t l,
                        uint64_t n);

/* ---- checkpoint.c ---------------------------------------------------- */

/* Serialize the whole state, sync the data files, write and install
 * the checkpoint, start a fresh journal.  CLEAN marks a clean close.
 * Caller holds flush_lock, not the pool lock.  Returns 0 or -errno.
 */
int checkpoint_write (struct blockmap_pool *pool, bool clean);
/* Write the empty checkpoint of a new pool (pool init). */
int checkpoint_write_initial (int dirfd, const unsigned char uuid[16]);
/* Load the checkpoint into the (empty) pool.  *CLEAN: it was written by
 * a clean close.  Returns 0 or -errno (-EUCLEAN).
 */
int checkpoint_load (struct blockmap_pool *pool, bool *clean);

/* ---- check.c --------------------------------------------------------- */

/* The body of blockmap_pool_check, pool lock held. */
int check_locked (struct blockmap_pool *pool,
                  void (*report) (void *opaque, const char *msg),
                  void *opaque);

/* ---- test hooks (always compiled, used only by tests) --------------- */

/* Close POOL as a crash would: no sync, no checkpoint, buffered records
 * lost, lock released.
 */
void blockmap_pool_crash_close (struct blockmap_pool *pool);

/* Make volume DST map [LCHUNK, LCHUNK+COUNT) to the same chunks as
 * volume SRC does (holes stay holes), as MAP records, so the chunks
 * become shared (what a snapshot will do).  Returns 0 or -errno.
 */
int blockmap_test_share_range (struct blockmap_pool *pool, const char *src,
                               const char *dst, uint64_t lchunk,
                               uint64_t count);

/* Damage the in-memory refcount of hot chunk PCHUNK by DELTA, so that
 * tests can see blockmap_pool_check find it.
 */
void blockmap_test_corrupt_refcount (struct blockmap_pool *pool,
                                     uint64_t pchunk, int delta);

/* Checkpoint when the journal passes BYTES (default 64 MiB). */
void blockmap_test_set_checkpoint_threshold (struct blockmap_pool *pool,
                                             uint64_t bytes);

/* Route every file operation of every pool through OPS (NULL: back to
 * the real system calls).  Only while no pool is open.
 */
void blockmap_test_set_io (const struct blockmap_io_ops *ops);

/* Write a checkpoint now (not clean).  BLOCKS. */
int blockmap_pool_checkpoint (struct blockmap_pool *pool);

#endif /* STRATA_BLOCKMAP_INTERNAL_H */
