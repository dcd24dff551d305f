/* blockmap/blockmap.h: the storage pool and each volume's extent map.
 *
 * The only header other modules include from blockmap/.
 *
 * Threads: every function here is thread-safe unless it says otherwise.
 * The pool has one mutex (the "pool lock") protecting maps, reference
 * counts, the allocator and the journal buffer; data-path calls hold it
 * for a map lookup or an allocation only, never across I/O.  Functions
 * marked BLOCKS do file I/O and fsync: call them from the pool's sync
 * thread, the admin thread or at start-up, never from an event loop.
 * Data-path functions never block and never do I/O.
 *
 * Durability model (DESIGN invariants 1 and 2):
 *  - Data lives in one file per tier ("hot.data"); chunk P is at byte
 *    P * chunk_size.  The caller does data I/O itself, on the fd from
 *    blockmap_pool_data_fd(), with io_uring.
 *  - Every metadata change (volume create/resize/delete, map, unmap) is
 *    a journal record appended to an in-memory buffer under the pool
 *    lock, and applied to the in-memory state at once.
 *  - blockmap_pool_sync() makes everything durable: fdatasync of the
 *    data files, then the buffered journal records are written and the
 *    journal fdatasync'ed (group commit).  A record is therefore durable
 *    only after the data it points at.
 *  - A chunk freed by unmap/trim/delete/CoW stays "pending" until the
 *    sync that made its freeing record durable AND every data I/O that
 *    was in flight when it was freed has ended (blockmap_io_end); only
 *    then is its range punched (so it reads as zero) and reusable.
 *  - A freshly allocated chunk therefore always reads as zero, which is
 *    why a write to a hole may map the chunk before the data is written.
 */
#ifndef STRATA_BLOCKMAP_H
#define STRATA_BLOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOCKMAP_FORMAT_VERSION 1
#define BLOCKMAP_DEFAULT_CHUNK_SIZE (64 * 1024)
#define BLOCKMAP_NAME_MAX 128           /* volume name, bytes incl. NUL */
#define BLOCKMAP_TYPE_MAX 32            /* volume type name, incl. NUL */
#define BLOCKMAP_ATTRS_MAX 8192         /* opaque attrs text, incl. NUL */

struct blockmap_pool;                   /* opaque */
struct blockmap_volume;                 /* opaque */

/* The tier ids are stored on disk in every map entry: never renumber. */
enum blockmap_tier {
  BM_TIER_NONE = 0,                     /* a hole: reads as zero */
  BM_TIER_HOT = 1,
  BM_TIER_WARM = 2,
  BM_TIER_COLD = 3,
};

/* Flags of a resolved run. */
enum {
  BM_RUN_COW = 1 << 0,     /* write_prepare: copy-on-write, see below */
};

/* A run of a volume's logical space resolved to storage. */
struct blockmap_run {
  uint64_t offset;              /* byte offset in the volume */
  uint64_t length;              /* bytes */
  enum blockmap_tier tier;      /* BM_TIER_NONE: a hole, reads as zero */
  uint32_t flags;               /* BM_RUN_* */
  uint64_t pool_offset;         /* byte offset in the tier's data file */
  /* BM_RUN_COW only: where the chunk's old contents are (same tier),
   * byte offset of the start of the old chunk.  pool_offset is then the
   * start of the new chunk and offset/length still cover only the part
   * being written (which lies within that one chunk). */
  uint64_t cow_src_offset;
};

/* ---- Pool ------------------------------------------------------------ */

struct blockmap_pool_opts {
  uint32_t chunk_size;          /* power of two, 4K..16M; 0: default */
  uint64_t hot_capacity;        /* bytes the hot tier may use; 0: the
                                   free space of the file system now */
};

/* Create a new, empty pool in directory PATH (created if missing; must
 * be empty if it exists).  BLOCKS.  Returns 0, or -errno: -EEXIST a pool
 * or other files are already there, -EINVAL bad options.
 */
int blockmap_pool_init (const char *path,
                        const struct blockmap_pool_opts *opts);

/* Open the pool in directory PATH, replaying the journal if the last
 * shutdown was not clean.  BLOCKS.  Stores the new pool in *POOL.
 * Returns 0, or -errno: -ENOENT no pool at PATH, -EBUSY another
 * process holds it, -EUCLEAN it is damaged (reasons are logged),
 * -EPROTO an unknown format version.
 */
int blockmap_pool_open (const char *path, struct blockmap_pool **pool);

/* Make everything durable, write a checkpoint, mark the pool clean and
 * close it.  Volume handles must all have been released.  BLOCKS.
 * Accepts NULL.  Returns 0 or -errno (the pool is closed either way).
 */
int blockmap_pool_close (struct blockmap_pool *pool);

/* Make every metadata change made before the call durable, together
 * with the data written before the call (see the durability model).
 * Concurrent callers share one commit.  BLOCKS.  Returns 0 or -errno;
 * after an error the pool refuses all further changes (-EIO).
 */
int blockmap_pool_sync (struct blockmap_pool *pool);

/* Whether blockmap_pool_sync() has work to do: changes not yet durable,
 * or freed chunks that become reusable only after a commit.  A caller
 * that commits on its own when this is true (the daemon's sync thread
 * does, about once a second) keeps clients that never FLUSH from
 * piling journal records up in memory or being refused space they
 * freed.  Takes the pool lock briefly; never blocks otherwise.
 */
bool blockmap_pool_sync_wanted (struct blockmap_pool *pool);

/* The data file of TIER, opened read-write, owned by the pool.  -1 if
 * the pool has no such tier.
 */
int blockmap_pool_data_fd (const struct blockmap_pool *pool,
                           enum blockmap_tier tier);

struct blockmap_pool_info {
  char uuid[37];
  char path[4096];
  uint32_t format_version;
  uint32_t chunk_size;
  uint64_t hot_capacity;        /* bytes */
  uint64_t hot_used;            /* bytes in chunks referenced or pending */
  uint64_t hot_free;            /* capacity - used */
  uint64_t volumes;
  uint64_t extents;             /* across all volumes */
  uint64_t map_memory;          /* bytes of memory the maps use */
  uint64_t journal_bytes;       /* journal size on disk */
  uint64_t pending_chunks;      /* freed, not yet reusable */
  bool recovered;               /* journal was replayed at open */
  uint64_t journal_dropped;     /* at open: whole records found after a
                                   damaged one, and so not replayed */
  uint64_t reap_pending;        /* map subtrees of deleted volumes still
                                   to be freed (blockmap_pool_reap) */
};

void blockmap_pool_info (struct blockmap_pool *pool,
                         struct blockmap_pool_info *info);

/* Cross-check maps, reference counts, the allocator and the data file
 * against each other.  Calls REPORT once per problem found, with a
 * sentence naming it (may be NULL).  Returns the number of problems
 * (0: consistent), or -errno if the check itself could not run.
 */
int blockmap_pool_check (struct blockmap_pool *pool,
                         void (*report) (void *opaque, const char *msg),
                         void *opaque);

/* ---- Volumes --------------------------------------------------------- */

struct blockmap_volume_info {
  char name[BLOCKMAP_NAME_MAX];
  char type[BLOCKMAP_TYPE_MAX];
  uint64_t id;                  /* never reused within a pool */
  uint64_t size;                /* bytes */
  uint64_t allocated;           /* bytes in chunks this volume maps */
  uint64_t extents;
  uint64_t created;             /* seconds since the epoch */
  unsigned open_count;          /* handles held (= client connections) */
  bool readonly;                /* a snapshot */
  uint64_t origin;              /* id of the volume or snapshot this one
                                   was cloned from; 0: none */
  char attrs[BLOCKMAP_ATTRS_MAX];/* opaque text owned by the caller */
};

/* Volume names: 1..127 bytes of [A-Za-z0-9._-], not starting with '.'
 * or '-'.  '@' is reserved for snapshots.  Returns 0 or -EINVAL.
 */
int blockmap_name_valid (const char *name);

/* Create volume NAME of SIZE bytes (a positive multiple of 4096) with
 * type TYPE and opaque ATTRS (a NUL-terminated text the admin layer
 * owns, e.g. JSON labels; may be NULL).  The change is journalled but
 * not yet durable: call blockmap_pool_sync().
 * Returns 0, or -EEXIST, -EINVAL (bad name, size or type),
 * -ENAMETOOLONG, -E2BIG (attrs too long).
 */
int blockmap_volume_create (struct blockmap_pool *pool, const char *name,
                            uint64_t size, const char *type,
                            const char *attrs);

/* Delete volume NAME: its chunks are freed (pending until durable).
 * Refused with -EBUSY while handles are open, unless FORCE; forced, the
 * volume disappears from the namespace at once and every later request
 * on an open handle fails with -ESHUTDOWN.  Returns 0, -ENOENT, -EBUSY.
 */
int blockmap_volume_delete (struct blockmap_pool *pool, const char *name,
                            bool force);

/* Make NAME a copy of volume SRC that shares all of SRC's chunks, in
 * time independent of how much SRC has written (DESIGN invariant 3):
 * the two maps share their nodes, and a later write to either copies
 * only the chunk it writes.
 *
 * SNAPSHOT: NAME must be "SRC@SNAP" and the copy is read-only
 * (write_prepare and unmap answer -EROFS).  If SRC is writable, new
 * write requests on it are held off (blockmap_write_begin answers
 * -EAGAIN) and those begun are waited for, so that the copy holds every
 * write completed before the call and none after it; BLOCKS (-ETIMEDOUT
 * after 10 s of writes that do not end).
 * Otherwise NAME is a writable clone (a volume name without '@').
 *
 * SIZE: 0 for SRC's size, or a larger size (the new range reads as
 * zeroes); smaller is -EINVAL.  TYPE NULL: SRC's type.  ATTRS as for
 * blockmap_volume_create.  The change is journalled but not durable:
 * call blockmap_pool_sync().  Deleting SRC later leaves NAME intact,
 * and the chunks they share live until neither maps them.
 * Returns 0, or -ENOENT (no SRC), -EEXIST, -EINVAL, -ENAMETOOLONG,
 * -E2BIG, -ETIMEDOUT.
 */
int blockmap_volume_clone (struct blockmap_pool *pool, const char *src,
                           const char *name, uint64_t size,
                           const char *type, const char *attrs,
                           bool snapshot);

/* Change the size of volume NAME to SIZE (multiple of 4096, > 0).
 * Growing is always allowed.  Shrinking needs FORCE (-EPERM without),
 * and is refused with -ENOTEMPTY if any chunk of the cut range is
 * mapped.  Open handles see the new size through
 * blockmap_volume_size().  Returns 0 or -errno.
 */
int blockmap_volume_resize (struct blockmap_pool *pool, const char *name,
                            uint64_t size, bool force);

/* Replace the type and/or attrs of volume NAME (NULL: unchanged). */
int blockmap_volume_set_attrs (struct blockmap_pool *pool, const char *name,
                               const char *type, const char *attrs);

/* Fill *INFO for volume NAME.  Returns 0 or -ENOENT. */
int blockmap_volume_info (struct blockmap_pool *pool, const char *name,
                          struct blockmap_volume_info *info);

/* Call FN for each volume, in name order, with the pool lock NOT held
 * (FN gets a copy).  Stops and returns FN's value if it is non-zero.
 */
int blockmap_volume_foreach (struct blockmap_pool *pool,
                             int (*fn) (void *opaque,
                                        const struct blockmap_volume_info *),
                             void *opaque);

/* Open a handle on volume NAME (a client connection holds one).
 * Returns 0, or -ENOENT.  The handle stays valid after a forced delete
 * (requests then fail with -ESHUTDOWN) until released.
 */
int blockmap_volume_open (struct blockmap_pool *pool, const char *name,
                          struct blockmap_volume **vol);
void blockmap_volume_release (struct blockmap_volume *vol);

/* Current size in bytes (changes on resize).  Lock-free. */
uint64_t blockmap_volume_size (const struct blockmap_volume *vol);
const char *blockmap_volume_name (const struct blockmap_volume *vol);
struct blockmap_pool *blockmap_volume_pool (const struct blockmap_volume *vol);

/* ---- Data path: never blocks, never does I/O ------------------------ */

/* Bracket each client request that may write (WRITE, WRITE_ZEROES,
 * TRIM): begin before its first write_prepare or unmap, end after its
 * last I/O.  Begin answers -EAGAIN while a snapshot of VOL is being
 * taken (retry shortly: it takes about as long as the writes already in
 * flight), -EROFS on a snapshot, -ESHUTDOWN on a deleted volume.
 */
int blockmap_write_begin (struct blockmap_volume *vol);
void blockmap_write_end (struct blockmap_volume *vol);

/* A stamp of VOL's contents, for keeping data read ahead of a client
 * (server/readahead.c).  It moves whenever a write request ends
 * (blockmap_write_end, before the request is answered), a map
 * changes, and when VOL is resized or deleted.  So data read from VOL
 * after the stamp was S is what a new read would return for as long
 * as the stamp is still S, except for the writes not yet answered,
 * which are concurrent with any read until they are.  Lock-free.
 */
uint64_t blockmap_volume_stamp (const struct blockmap_volume *vol);

/* Compare VOL's map with BASE's (a volume and one of its snapshots,
 * two snapshots of one volume, a clone and its snapshot...) over
 * [OFFSET, OFFSET+LENGTH) of VOL's bytes.  A chunk is "changed" when
 * the two map it differently: to different chunks, or one maps it and
 * the other has a hole.  Since a chunk shared with a snapshot is never
 * written in place, every chunk written since BASE was taken counts as
 * changed.  Stores at most MAX runs, alternating (adjacent runs never
 * have the same state), chunk aligned except at the range's ends.
 * Past BASE's end counts as a hole.  Returns the number of runs (>= 1),
 * or -errno (-ESHUTDOWN either was deleted, -EINVAL a range past VOL's
 * end).  When the range needs more than MAX runs the last is cut
 * short: call again from its end.
 */
struct blockmap_diff_run {
  uint64_t offset, length;
  bool changed;
};

int blockmap_diff (struct blockmap_volume *base, struct blockmap_volume *vol,
                   uint64_t offset, uint64_t length,
                   struct blockmap_diff_run *runs, int max);

/* Free, a batch of at most MAX_NODES map nodes at a time, what deleted
 * volumes and snapshots held (the delete itself only detached their
 * maps).  What a deleted map shared with others is let go only once
 * the delete is durable and the I/O begun before it has ended; each
 * blockmap_pool_sync() also reaps a batch.  Call it while
 * blockmap_pool_reap_wanted() is true (false while only such waits
 * remain), from a thread that may take the pool lock (the daemon's
 * sync thread does).  Returns how many subtrees are still queued,
 * waiting ones included.
 */
size_t blockmap_pool_reap (struct blockmap_pool *pool, size_t max_nodes);
bool blockmap_pool_reap_wanted (struct blockmap_pool *pool);

/* Make reusable up to MAX_RANGES runs of freed chunks whose freeing is
 * durable and past its grace period: punch them (so they read as zero)
 * and add them to the free space.  Each commit does a few itself; after
 * a large delete, call this until it returns 0 from a thread that may
 * block, so that commits (and so FLUSH) never wait for the punching.
 * BLOCKS (fallocate).  Returns the number of runs handled.
 */
size_t blockmap_pool_reclaim (struct blockmap_pool *pool, size_t max_ranges);

/* Every data I/O the caller does on a data file must lie between
 * blockmap_io_begin() and blockmap_io_end() with the token it returned,
 * so that a chunk freed meanwhile is not reused under it (grace period).
 * Call begin BEFORE map_range/write_prepare, end after the I/O is done.
 */
uint64_t blockmap_io_begin (struct blockmap_pool *pool);
void blockmap_io_end (struct blockmap_pool *pool, uint64_t token);

/* Resolve [OFFSET, OFFSET+LENGTH) of VOL for reading into at most MAX
 * runs.  Holes come back as BM_TIER_NONE runs.  Adjacent chunks that
 * are contiguous on disk come back as one run.  Returns the number of
 * runs stored (>= 1), or -errno (-ESHUTDOWN deleted volume, -EINVAL
 * range past the end).  When the range needs more than MAX runs the
 * last one is cut short: call again from its end.
 */
int blockmap_map_range (struct blockmap_volume *vol,
                        uint64_t offset, uint64_t length,
                        struct blockmap_run *runs, int max)
  __attribute__ ((nonnull (1, 4)));

/* Prepare a write of [OFFSET, OFFSET+LENGTH) of VOL: map every hole
 * chunk of the range to a freshly allocated chunk (which reads as zero,
 * so the map may point at it before the data lands), and resolve the
 * range into at most MAX runs to write to, like blockmap_map_range.
 * Runs are never holes.
 *
 * A chunk whose reference count is above one is not written in place:
 * its run comes back with BM_RUN_COW, covering only that chunk, with a
 * new private chunk at pool_offset and the old one at cow_src_offset.
 * The caller copies the old chunk's bytes outside [offset, offset+len)
 * of the run into the new chunk, writes its data, then calls
 * blockmap_cow_commit() (or blockmap_cow_abort() on failure).  Until
 * then the map still points at the old chunk, and a second write_prepare
 * touching that chunk returns -EAGAIN: retry it after the commit.
 *
 * Returns the number of runs (>= 1), or -errno: -ENOSPC the tier is
 * full (nothing was allocated), -EINPROGRESS the tier is full only
 * because freed chunks wait for a sync before reuse (nothing was
 * allocated: have blockmap_pool_sync() run, then retry), -ESHUTDOWN,
 * -EINVAL, -EAGAIN, -EROFS (a read-only volume, i.e. a snapshot).
 */
int blockmap_write_prepare (struct blockmap_volume *vol,
                            uint64_t offset, uint64_t length,
                            struct blockmap_run *runs, int max)
  __attribute__ ((nonnull (1, 4)));

/* Finish a BM_RUN_COW run from write_prepare: point the map at the new
 * chunk and drop a reference on the old one.  COW is the run as
 * returned.  Returns 0 or -errno.
 */
int blockmap_cow_commit (struct blockmap_volume *vol,
                         const struct blockmap_run *cow);
void blockmap_cow_abort (struct blockmap_volume *vol,
                         const struct blockmap_run *cow);

/* Unmap every whole chunk inside [OFFSET, OFFSET+LENGTH) of VOL (they
 * become holes and read as zero).  Partial chunks at either end are not
 * touched: the caller zeroes those bytes itself (after write_prepare,
 * so that shared chunks are copied first).  Returns 0 or -errno.
 */
int blockmap_unmap (struct blockmap_volume *vol,
                    uint64_t offset, uint64_t length);

/* ---- Test hook: fault injection (stratad --debug-fault-file) -------- */

/* The engine's file operations, as a fault hook sees them. */
enum blockmap_io_kind {
  BM_IO_READ,                   /* pread */
  BM_IO_WRITE,                  /* pwrite */
  BM_IO_SYNC,                   /* fsync, fdatasync */
  BM_IO_RESIZE,                 /* ftruncate, fallocate */
  BM_IO_OPEN,                   /* openat */
  BM_IO_RENAME,                 /* renameat, unlinkat */
};

/* Put HOOK under every file operation of the engine (NULL: remove it).
 * Before each operation of kind KIND on FD (-1 for renameat, unlinkat
 * and openat) HOOK returns 0 to let it run, or -errno to fail it with
 * that error without running it; for BM_IO_WRITE it may also lower
 * *LEN (to no less than 1) to make the write short.  HOOK runs on
 * whichever thread does the operation.  Call only while no pool is
 * open.  The data I/O of the server does not go through the engine:
 * it has its own hooks (server/fault.c).
 */
void blockmap_debug_set_fault_hook (int (*hook) (enum blockmap_io_kind kind,
                                                 int fd, size_t *len));

#endif /* STRATA_BLOCKMAP_H */
