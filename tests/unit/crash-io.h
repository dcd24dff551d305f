/* tests/unit/crash-io.h: simulated power loss under blockmap (bm_io).
 *
 * In the style of SQLite's test6.c: every file the engine opens through
 * bm_io is tracked by inode.  Writes, truncates and hole punches are
 * kept in memory, in order, and reach the real file only when the file
 * is fsync'ed or fdatasync'ed; reads and fstat see the pending changes
 * on top of the real file, as the process would.  Creating, renaming
 * and unlinking names in the pool directory happen at once (so the
 * process sees them) but are logged with enough to undo them (a hard
 * link keeps a replaced file) until the directory is fsync'ed.
 *
 * Every fsync/fdatasync (files and directories) is a sync point,
 * numbered from 1.  At sync point CRASH_AT the layer "loses power"
 * instead of syncing: for each file it applies to the real file what
 * MODE says of the pending changes (none, all, a random subset in
 * order, a prefix whose last write is torn at a 512-byte sector, or
 * torn with the next sector garbled), keeps a prefix of the pending
 * namespace changes and undoes the rest, and from then on refuses every
 * change with -EIO.  What is on disk then is what a machine would find
 * after the power came back; the test closes the pool without syncing
 * (blockmap_pool_crash_close), stops the layer and reopens with the
 * real system calls.
 *
 * Compiled into a test by #include "crash-io.c" (CMake builds only
 * tests/unit/test-*.c).  Not thread-safe: one pool, one thread.
 */
#ifndef STRATA_TEST_CRASH_IO_H
#define STRATA_TEST_CRASH_IO_H

#include <stdbool.h>
#include <stdint.h>

enum crash_mode {
  CRASH_DROP,          /* no unsynced change survives */
  CRASH_KEEP,          /* every unsynced change survives */
  CRASH_SUBSET,        /* each survives or not, at random */
  CRASH_TEAR,          /* a prefix survives, its last write torn */
  CRASH_GARBLE,        /* as TEAR, and the sector after the tear is junk */
  CRASH_MODES
};

struct crash_io_config {
  const char *dir;          /* the pool directory (names are relative) */
  uint64_t crash_at;        /* sync point to crash at; 0: never */
  enum crash_mode mode;
  uint64_t seed;            /* for the random choices */
  const char *no_garble;    /* a file name never garbled (NULL: none) */
};

/* Install the layer (blockmap_test_set_io) with a fresh state. */
void crash_io_start (const struct crash_io_config *cfg);
/* Has the crash happened? */
bool crash_io_crashed (void);
/* Sync points seen so far (the crashing one included). */
uint64_t crash_io_syncs (void);
/* Uninstall the layer.  Without a crash every pending change is
 * applied (the process exited and the OS wrote everything back).
 * Closes the layer's own fds; the pool must be closed already.
 */
void crash_io_stop (void);

#endif /* STRATA_TEST_CRASH_IO_H */
