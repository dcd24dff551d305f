/* server/fault.c: stratad --debug-fault-file PATH, a test hook that
 * makes chosen data or metadata I/O fail (STYLE B.9, nbdkit's
 * error-file).  Always compiled, off unless the option is given.
 *
 * While PATH exists, each line of it that reads
 *
 *   OPERATION ERROR          e.g.  data-write EIO
 *                                  meta-sync EIO
 *                                  data-* ENOSPC
 *
 * makes every matching operation fail with ERROR (EIO, ENOSPC, EDQUOT,
 * EROFS, ENOMEM), or, for the two write operations, with ERROR
 * "short": each write then transfers only half of what was asked, so
 * the code that completes short writes is exercised.  OPERATION is a
 * shell pattern (fnmatch) over:
 *
 *   data-read, data-write   the server's io_uring I/O of volume data
 *                           (data-write includes the ZERO_RANGE of
 *                           WRITE_ZEROES and TRIM edges)
 *   data-sync, data-resize  the engine's fdatasync / ftruncate /
 *                           fallocate (extend, punch) of the data file
 *   meta-read, meta-write, meta-sync, meta-resize, meta-open,
 *   meta-rename             the engine's operations on everything else
 *                           (journal, checkpoint, superblock)
 *
 * Blank lines and lines starting with # are ignored; a line that does
 * not parse is logged once and ignored.  The first matching line wins.
 *
 * Cost: the file is looked at (stat, and read again only if its mtime,
 * size or inode changed) at most every FAULT_CHECK_NS, by whichever
 * thread asks first; every other check is a mutex and a table lookup.
 * Without the option every hook is one predictable branch.
 *
 * How a data operation fails: the submission hook (fault_seg_submit)
 * notes the error in the seg and points the SQE at fd -1, so the
 * kernel fails it with EBADF without touching the file, and the
 * completion hook (fault_seg_complete) turns that EBADF into the
 * error noted.  Metadata operations fail in blockmap's I/O table
 * (blockmap_debug_set_fault_hook) without being run.
 *
 * The fuzzer (tests/fuzz) uses a second mode instead of the file: a
 * script, one byte per data I/O in the order they are submitted
 * (fault_script), so that each input chooses which reads and writes
 * of its session fail and how.
 */
#include <assert.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define FAULT_CHECK_NS (100 * 1000 * 1000)
#define FAULT_SHORT (-1)                /* "short": a rule's error */
#define FAULT_RULES_MAX 64

enum fault_op {
  FAULT_DATA_READ, FAULT_DATA_WRITE, FAULT_DATA_SYNC, FAULT_DATA_RESIZE,
  FAULT_META_READ, FAULT_META_WRITE, FAULT_META_SYNC, FAULT_META_RESIZE,
  FAULT_META_OPEN, FAULT_META_RENAME, FAULT_NOPS,
};

static const char *const op_names[FAULT_NOPS] = {
  "data-read", "data-write", "data-sync", "data-resize",
  "meta-read", "meta-write", "meta-sync", "meta-resize",
  "meta-open", "meta-rename",
};

static const struct { const char *name; int err; } errors[] = {
  { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
  { "EROFS", EROFS }, { "ENOMEM", ENOMEM }, { "short", FAULT_SHORT },
};

static bool enabled;                    /* set before any thread starts */
static bool scripted;                   /* ...and so is this */
static const char *path;                /* --debug-fault-file */
static int data_fd = -1;                /* the pool's data file */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Protected by LOCK: */
static uint64_t next_check_ns;
static struct stat seen;                /* the file as last read */
static bool present;
static int err_of[FAULT_NOPS];          /* 0: none, errno or FAULT_SHORT */
static uint64_t hits[FAULT_NOPS];       /* faults injected by these rules */
static uint8_t script[FAULT_SCRIPT_MAX];
static size_t script_len, script_pos;

static uint64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * UINT64_C (1000000000) + ts.tv_nsec;
}

/* Read the rules from PATH into err_of (lock held). */
static void
load_rules (void)
{
  FILE *fp;
  char line[256], op[64], err[64], extra[2];
  unsigned lineno = 0;
  int i, e, n;

  memset (err_of, 0, sizeof err_of);
  fp = fopen (path, "re");
  if (fp == NULL) {
    if (errno != ENOENT)
      log_warn ("--debug-fault-file %s: %m", path);
    return;
  }
  while (fgets (line, sizeof line, fp)) {
    lineno++;
    n = sscanf (line, "%63s %63s %1s", op, err, extra);
    if (n <= 0 || op[0] == '#')
      continue;
    e = 0;
    for (i = 0; n == 2 && i < (int) (sizeof errors / sizeof errors[0]); i++)
      if (strcmp (err, errors[i].name) == 0)
        e = errors[i].err;
    if (e == 0) {
      log_warn ("--debug-fault-file %s:%u: expected 'OPERATION ERROR' "
                "with ERROR one of EIO ENOSPC EDQUOT EROFS ENOMEM short; "
                "line ignored", path, lineno);
      continue;
    }
    n = 0;
    for (i = 0; i < FAULT_NOPS; i++) {
      if (fnmatch (op, op_names[i], 0) != 0)
        continue;
      n++;
      if (e == FAULT_SHORT && i != FAULT_DATA_WRITE && i != FAULT_META_WRITE)
        continue;               /* only writes can be short */
      if (err_of[i] == 0)
        err_of[i] = e;
    }
    if (n == 0)
      log_warn ("--debug-fault-file %s:%u: no operation matches '%s'; "
                "line ignored", path, lineno, op);
  }
  fclose (fp);
}

/* Log how many faults the rules that are going away injected, so a
 * test can tell that its rule was in force (lock held).
 */
static void
report_hits (void)
{
  for (int i = 0; i < FAULT_NOPS; i++) {
    if (hits[i])
      log_info ("--debug-fault-file: %s %s: %" PRIu64 " injected",
                op_names[i], err_of[i] == FAULT_SHORT ? "short"
                : strerrorname_np (err_of[i]), hits[i]);
    hits[i] = 0;
  }
}

/* The next step of the script for data operation OP (lock held): of
 * each byte, the low three bits choose; 0-3 let the operation run.
 */
static int
script_step (enum fault_op op)
{
  static const int step[8] = { 0, 0, 0, 0, EIO, ENOSPC, FAULT_SHORT, EDQUOT };
  int e;

  if (script_pos >= script_len)
    return 0;
  e = step[script[script_pos++] & 7];
  if (e == FAULT_SHORT && op != FAULT_DATA_WRITE)
    e = 0;
  return e;
}

/* The error to inject into OP now: 0, an errno, or FAULT_SHORT.
 * COUNT: this is an injection (not the completion of one).
 */
static int
check (enum fault_op op, bool count)
{
  LOCK_FOR_SCOPE (&lock);
  uint64_t now = now_ns ();
  struct stat st;

  if (scripted)
    return script_step (op);
  if (now >= next_check_ns) {
    next_check_ns = now + FAULT_CHECK_NS;
    if (stat (path, &st) == -1) {
      if (present) {
        report_hits ();
        log_info ("--debug-fault-file %s is gone: no more faults", path);
      }
      present = false;
      memset (err_of, 0, sizeof err_of);
    }
    else if (!present || st.st_ino != seen.st_ino ||
             st.st_size != seen.st_size ||
             st.st_mtim.tv_sec != seen.st_mtim.tv_sec ||
             st.st_mtim.tv_nsec != seen.st_mtim.tv_nsec) {
      present = true;
      seen = st;
      report_hits ();
      load_rules ();
      log_info ("--debug-fault-file %s: rules (re)loaded", path);
    }
  }
  if (err_of[op] && count)
    hits[op]++;
  return err_of[op];
}

static int
meta_hook (enum blockmap_io_kind kind, int fd, size_t *len)
{
  bool data = fd >= 0 && fd == data_fd;
  enum fault_op op;
  int e;

  switch (kind) {
  case BM_IO_READ:   op = data ? FAULT_DATA_READ : FAULT_META_READ; break;
  case BM_IO_WRITE:  op = data ? FAULT_DATA_WRITE : FAULT_META_WRITE; break;
  case BM_IO_SYNC:   op = data ? FAULT_DATA_SYNC : FAULT_META_SYNC; break;
  case BM_IO_RESIZE: op = data ? FAULT_DATA_RESIZE : FAULT_META_RESIZE; break;
  case BM_IO_OPEN:   op = FAULT_META_OPEN; break;
  case BM_IO_RENAME: op = FAULT_META_RENAME; break;
  default:           return 0;
  }
  e = check (op, true);
  if (e == FAULT_SHORT) {
    if (kind == BM_IO_WRITE && *len > 1)
      *len /= 2;
    return 0;
  }
  if (e)
    log_debug (DBG_BLOCKMAP, "fault: %s fails with %s", op_names[op],
               strerror (e));
  return -e;
}

int
fault_init (const char *file)
{
  if (file == NULL)
    return 0;
  if (file[0] == 0)
    return -EINVAL;
  path = file;
  enabled = true;
  blockmap_debug_set_fault_hook (meta_hook);
  log_info ("--debug-fault-file %s: fault injection is on (a test hook)",
            path);
  return 0;
}

void
fault_script_init (void)
{
  enabled = scripted = true;
}

void
fault_script (const uint8_t *s, size_t len)
{
  LOCK_FOR_SCOPE (&lock);

  assert (scripted);
  if (len > FAULT_SCRIPT_MAX)
    len = FAULT_SCRIPT_MAX;
  if (len)
    memcpy (script, s, len);
  script_len = len;
  script_pos = 0;
}

void
fault_set_pool (struct blockmap_pool *pool)
{
  if (enabled)
    data_fd = blockmap_pool_data_fd (pool, BM_TIER_HOT);
}

static enum fault_op
seg_op (const struct seg *seg)
{
  return seg->phase == SEG_READ || seg->phase == SEG_COW_READ
    ? FAULT_DATA_READ : FAULT_DATA_WRITE;
}

void
fault_seg_submit (struct seg *seg, struct io_uring_sqe *sqe)
{
  int e;

  if (__builtin_expect (!enabled, 1))
    return;
  seg->fault = 0;
  e = check (seg_op (seg), true);
  if (e == FAULT_SHORT) {
    if ((sqe->opcode == IORING_OP_WRITE ||
         sqe->opcode == IORING_OP_WRITE_FIXED) && sqe->len > 1)
      sqe->len /= 2;
  }
  else if (e) {
    seg->fault = e;
    sqe->fd = -1;               /* fails with EBADF, touching nothing */
  }
}

int
fault_seg_complete (const struct seg *seg, int res)
{
  if (__builtin_expect (!enabled, 1) || res != -EBADF || seg->fault == 0)
    return res;
  log_debug (DBG_PROTO, "fault: %s fails with %s", op_names[seg_op (seg)],
             strerror (seg->fault));
  return -seg->fault;
}
