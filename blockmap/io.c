/* blockmap/io.c: every file operation of the engine, behind one table.
 *
 * The engine never calls open/pread/pwrite/fsync/... itself: it calls
 * bm_io->pwrite (...) and so on, so that a unit test can put a layer
 * underneath that simulates power loss (tests/unit/crash-io.c: at a
 * chosen sync, unsynced writes are dropped, reordered or torn, and the
 * pool is reopened).  The default table calls the system directly and
 * translates errno into a -errno return; bm_io is a plain pointer to a
 * const table, so the cost is one indirect call per system call.
 *
 * Not covered, because they change nothing on disk: mkdir and the
 * emptiness check of pool init, fstatvfs, flock and getrandom.  The
 * data I/O of the server (on blockmap_pool_data_fd) does not go
 * through here either: the fds the table returns are real fds.
 *
 * stratad --debug-fault-file puts a second layer on top of the table
 * (blockmap_debug_set_fault_hook, at the end of this file) that asks a
 * hook before each operation whether it should fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int
real_openat (int dirfd, const char *name, int flags, mode_t mode)
{
  int fd = openat (dirfd, name, flags, mode);

  return fd == -1 ? -errno : fd;
}

static int
real_close (int fd)
{
  return close (fd) == -1 ? -errno : 0;
}

static ssize_t
real_pread (int fd, void *buf, size_t n, uint64_t off)
{
  ssize_t r = pread (fd, buf, n, off);

  return r == -1 ? -errno : r;
}

static ssize_t
real_pwrite (int fd, const void *buf, size_t n, uint64_t off)
{
  ssize_t r = pwrite (fd, buf, n, off);

  return r == -1 ? -errno : r;
}

static int
real_fsync (int fd)
{
  return fsync (fd) == -1 ? -errno : 0;
}

static int
real_fdatasync (int fd)
{
  return fdatasync (fd) == -1 ? -errno : 0;
}

static int
real_ftruncate (int fd, uint64_t size)
{
  return ftruncate (fd, size) == -1 ? -errno : 0;
}

static int
real_fallocate (int fd, int mode, uint64_t off, uint64_t len)
{
  return fallocate (fd, mode, off, len) == -1 ? -errno : 0;
}

static int
real_renameat (int olddirfd, const char *oldname, int newdirfd,
               const char *newname)
{
  return renameat (olddirfd, oldname, newdirfd, newname) == -1 ? -errno : 0;
}

static int
real_unlinkat (int dirfd, const char *name, int flags)
{
  return unlinkat (dirfd, name, flags) == -1 ? -errno : 0;
}

static int
real_fstat (int fd, struct stat *st)
{
  return fstat (fd, st) == -1 ? -errno : 0;
}

const struct blockmap_io_ops blockmap_io_real = {
  .openat = real_openat,
  .close = real_close,
  .pread = real_pread,
  .pwrite = real_pwrite,
  .fsync = real_fsync,
  .fdatasync = real_fdatasync,
  .ftruncate = real_ftruncate,
  .fallocate = real_fallocate,
  .renameat = real_renameat,
  .unlinkat = real_unlinkat,
  .fstat = real_fstat,
};

const struct blockmap_io_ops *bm_io = &blockmap_io_real;

void
blockmap_test_set_io (const struct blockmap_io_ops *ops)
{
  bm_io = ops ? ops : &blockmap_io_real;
}

int
bm_pwrite_all (int fd, const void *buf, size_t n, uint64_t offset)
{
  const unsigned char *p = buf;

  while (n > 0) {
    ssize_t r = bm_io->pwrite (fd, p, n, offset);
    if (r == -EINTR)
      continue;
    if (r < 0)
      return r;
    if (r == 0)
      return -EIO;
    p += r;
    n -= r;
    offset += r;
  }
  return 0;
}

int
bm_read_file (int fd, unsigned char **out, uint64_t *size)
{
  struct stat st;
  unsigned char *p;
  uint64_t done = 0;
  int r;

  *out = NULL;
  *size = 0;
  if ((r = bm_io->fstat (fd, &st)) < 0)
    return r;
  p = malloc (st.st_size ? st.st_size : 1);
  if (p == NULL)
    return -ENOMEM;
  while (done < (uint64_t) st.st_size) {
    ssize_t n = bm_io->pread (fd, p + done, st.st_size - done, done);
    if (n == -EINTR)
      continue;
    if (n < 0) {
      free (p);
      return n;
    }
    if (n == 0)
      break;                    /* shrank meanwhile: take what is there */
    done += n;
  }
  *out = p;
  *size = done;
  return 0;
}

int
bm_fsync_dir (const char *path)
{
  int fd = bm_io->openat (AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                          0);
  int r;

  if (fd < 0)
    return fd;
  r = bm_io->fsync (fd);
  bm_io->close (fd);
  return r;
}

/* ---- The fault hook (blockmap_debug_set_fault_hook) ------------------ */

/* A layer over whatever table was in use when the hook was installed
 * (the real one, or a test's): each operation asks the hook first.
 * Set, like bm_io, only while no pool is open; read without a lock.
 */
static int (*fault_hook) (enum blockmap_io_kind kind, int fd, size_t *len);
static const struct blockmap_io_ops *fault_next;

static int
hooked_openat (int dirfd, const char *name, int flags, mode_t mode)
{
  size_t len = 0;
  int r = fault_hook (BM_IO_OPEN, -1, &len);

  return r < 0 ? r : fault_next->openat (dirfd, name, flags, mode);
}

static int
hooked_close (int fd)
{
  return fault_next->close (fd);
}

static ssize_t
hooked_pread (int fd, void *buf, size_t n, uint64_t off)
{
  size_t len = n;               /* reads are never made short */
  int r = fault_hook (BM_IO_READ, fd, &len);

  return r < 0 ? r : fault_next->pread (fd, buf, n, off);
}

static ssize_t
hooked_pwrite (int fd, const void *buf, size_t n, uint64_t off)
{
  size_t len = n;
  int r = fault_hook (BM_IO_WRITE, fd, &len);

  if (r < 0)
    return r;
  if (len == 0 || len > n)
    len = n;
  return fault_next->pwrite (fd, buf, len, off);
}

static int
hooked_fsync (int fd)
{
  size_t len = 0;
  int r = fault_hook (BM_IO_SYNC, fd, &len);

  return r < 0 ? r : fault_next->fsync (fd);
}

static int
hooked_fdatasync (int fd)
{
  size_t len = 0;
  int r = fault_hook (BM_IO_SYNC, fd, &len);

  return r < 0 ? r : fault_next->fdatasync (fd);
}

static int
hooked_ftruncate (int fd, uint64_t size)
{
  size_t len = 0;
  int r = fault_hook (BM_IO_RESIZE, fd, &len);

  return r < 0 ? r : fault_next->ftruncate (fd, size);
}

static int
hooked_fallocate (int fd, int mode, uint64_t off, uint64_t n)
{
  size_t len = 0;
  int r = fault_hook (BM_IO_RESIZE, fd, &len);

  return r < 0 ? r : fault_next->fallocate (fd, mode, off, n);
}

static int
hooked_renameat (int olddirfd, const char *oldname, int newdirfd,
                 const char *newname)
{
  size_t len = 0;
  int r = fault_hook (BM_IO_RENAME, -1, &len);

  return r < 0 ? r : fault_next->renameat (olddirfd, oldname, newdirfd,
                                           newname);
}

static int
hooked_unlinkat (int dirfd, const char *name, int flags)
{
  size_t len = 0;
  int r = fault_hook (BM_IO_RENAME, -1, &len);

  return r < 0 ? r : fault_next->unlinkat (dirfd, name, flags);
}

static int
hooked_fstat (int fd, struct stat *st)
{
  return fault_next->fstat (fd, st);
}

static const struct blockmap_io_ops hooked_ops = {
  .openat = hooked_openat,
  .close = hooked_close,
  .pread = hooked_pread,
  .pwrite = hooked_pwrite,
  .fsync = hooked_fsync,
  .fdatasync = hooked_fdatasync,
  .ftruncate = hooked_ftruncate,
  .fallocate = hooked_fallocate,
  .renameat = hooked_renameat,
  .unlinkat = hooked_unlinkat,
  .fstat = hooked_fstat,
};

void
blockmap_debug_set_fault_hook (int (*hook) (enum blockmap_io_kind kind,
                                            int fd, size_t *len))
{
  if (hook) {
    if (bm_io != &hooked_ops)
      fault_next = bm_io;
    fault_hook = hook;
    bm_io = &hooked_ops;
  }
  else if (bm_io == &hooked_ops) {
    bm_io = fault_next;
    fault_hook = NULL;
  }
}
