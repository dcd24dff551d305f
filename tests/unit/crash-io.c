/* tests/unit/crash-io.c: simulated power loss under blockmap; see
 * crash-io.h for the model.  #include'd by the tests that use it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockmap/internal.h"
#include "crash-io.h"

#define CIO_MAX_FD 4096
#define CIO_SECTOR 512

enum cop_type { COP_WRITE, COP_TRUNC, COP_PUNCH, COP_EXTEND };

/* One change to a file's contents not yet synced. */
struct cop {
  enum cop_type type;
  uint64_t off, len;            /* TRUNC: off = the new size */
  unsigned char *data;          /* WRITE: owned */
};

/* A file (an inode) the layer has seen. */
struct cfile {
  dev_t dev;
  ino_t ino;
  int fd;                       /* the layer's own, owned: applies cops */
  char name[64];                /* the name it was opened by */
  struct cop *ops;              /* owned */
  size_t nops, cap;
  struct cfile *next;
};

enum nsop_type { NS_CREATE, NS_RENAME, NS_UNLINK };

/* A change to the directory not yet synced, with what undoes it. */
struct nsop {
  enum nsop_type type;
  char a[64], b[64];            /* CREATE a; RENAME a -> b; UNLINK a */
  char bak[64];                 /* a hard link to what b (or a) was */
};

static struct {
  struct crash_io_config cfg;
  char dir[256];
  uint64_t rng;
  uint64_t syncs;
  bool crashed;
  struct cfile *files;          /* owned list */
  struct cfile *byfd[CIO_MAX_FD];       /* borrowed */
  bool isdir[CIO_MAX_FD];
  struct nsop *ns;              /* owned */
  size_t nns, nscap;
  unsigned nbak;
} cio;

static uint64_t
cio_rand (void)
{
  uint64_t x = cio.rng;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  cio.rng = x;
  return x;
}

static int
cio_dirfd (void)
{
  int fd = open (cio.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd == -1) {
    fprintf (stderr, "crash-io: open %s: %m\n", cio.dir);
    abort ();
  }
  return fd;
}

static void
must (int ok, const char *what)
{
  if (!ok) {
    fprintf (stderr, "crash-io: %s: %m\n", what);
    abort ();
  }
}

/* ---- file contents ---------------------------------------------------- */

static uint64_t
real_size (const struct cfile *f)
{
  struct stat st;

  must (fstat (f->fd, &st) == 0, "fstat");
  return st.st_size;
}

static uint64_t
logical_size (const struct cfile *f)
{
  uint64_t size = real_size (f);

  for (size_t i = 0; i < f->nops; i++) {
    const struct cop *o = &f->ops[i];
    if (o->type == COP_WRITE && o->off + o->len > size)
      size = o->off + o->len;
    else if (o->type == COP_TRUNC)
      size = o->off;
    else if (o->type == COP_EXTEND && o->off > size)
      size = o->off;
  }
  return size;
}

static void
add_op (struct cfile *f, struct cop op)
{
  if (f->nops == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 16;
    f->ops = realloc (f->ops, f->cap * sizeof *f->ops);
    must (f->ops != NULL, "realloc");
  }
  f->ops[f->nops++] = op;
}

/* Apply [OFF, OFF+LEN) of the write O (or all of another op). */
static void
apply_op (struct cfile *f, const struct cop *o, uint64_t off, uint64_t len)
{
  switch (o->type) {
  case COP_WRITE:
    must (pwrite (f->fd, o->data + (off - o->off), len, off) == (ssize_t) len,
          "pwrite");
    break;
  case COP_TRUNC:
    must (ftruncate (f->fd, o->off) == 0, "ftruncate");
    break;
  case COP_EXTEND:
    if (real_size (f) < o->off)
      must (ftruncate (f->fd, o->off) == 0, "ftruncate (extend)");
    break;
  case COP_PUNCH:
    if (fallocate (f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   o->off, o->len) != 0) {
      uint64_t eof = real_size (f), end = o->off + o->len;
      static const unsigned char zero[65536];
      for (uint64_t p = o->off; p < end && p < eof; p += sizeof zero) {
        uint64_t n = end - p < sizeof zero ? end - p : sizeof zero;
        if (p + n > eof)
          n = eof - p;
        must (pwrite (f->fd, zero, n, p) == (ssize_t) n, "pwrite zero");
      }
    }
    break;
  }
}

static void
clear_ops (struct cfile *f)
{
  for (size_t i = 0; i < f->nops; i++)
    free (f->ops[i].data);
  f->nops = 0;
}

static void
flush_file (struct cfile *f)
{
  for (size_t i = 0; i < f->nops; i++)
    apply_op (f, &f->ops[i], f->ops[i].off, f->ops[i].len);
  clear_ops (f);
}

/* What survives of F's pending changes at the crash. */
static void
crash_file (struct cfile *f)
{
  enum crash_mode m = cio.cfg.mode;
  size_t k;

  if (f->nops == 0)
    return;
  switch (m) {
  case CRASH_DROP:
    break;
  case CRASH_KEEP:
    flush_file (f);
    break;
  case CRASH_SUBSET:
    for (size_t i = 0; i < f->nops; i++)
      if (cio_rand () & 1)
        apply_op (f, &f->ops[i], f->ops[i].off, f->ops[i].len);
    break;
  case CRASH_TEAR:
  case CRASH_GARBLE:
    k = cio_rand () % f->nops;
    for (size_t i = 0; i < k; i++)
      apply_op (f, &f->ops[i], f->ops[i].off, f->ops[i].len);
    if (f->ops[k].type == COP_WRITE) {
      const struct cop *o = &f->ops[k];
      uint64_t first = (o->off / CIO_SECTOR + 1) * CIO_SECTOR;
      uint64_t end = o->off + o->len, cut = o->off, nb;
      /* Cut at OFF or at one of the sector boundaries inside. */
      nb = first < end ? (end - 1 - first) / CIO_SECTOR + 1 : 0;
      if (nb > 0) {
        uint64_t c = cio_rand () % (nb + 1);
        cut = c == 0 ? o->off : first + (c - 1) * CIO_SECTOR;
      }
      if (cut > o->off)
        apply_op (f, o, o->off, cut - o->off);
      if (m == CRASH_GARBLE && cut < end &&
          !(cio.cfg.no_garble && strcmp (f->name, cio.cfg.no_garble) == 0)) {
        uint64_t gend = (cut / CIO_SECTOR + 1) * CIO_SECTOR;
        unsigned char junk[CIO_SECTOR];
        if (gend > end)
          gend = end;
        for (size_t i = 0; i < sizeof junk; i++)
          junk[i] = cio_rand ();
        must (pwrite (f->fd, junk, gend - cut, cut) == (ssize_t) (gend - cut),
              "pwrite junk");
      }
    }
    else if (cio_rand () & 1)
      apply_op (f, &f->ops[k], f->ops[k].off, f->ops[k].len);
    break;
  case CRASH_MODES:
    abort ();
  }
  clear_ops (f);
}

/* ---- the directory ---------------------------------------------------- */

static void
add_ns (struct nsop op)
{
  if (cio.nns == cio.nscap) {
    cio.nscap = cio.nscap ? cio.nscap * 2 : 16;
    cio.ns = realloc (cio.ns, cio.nscap * sizeof *cio.ns);
    must (cio.ns != NULL, "realloc");
  }
  cio.ns[cio.nns++] = op;
}

/* Keep a hard link to NAME (if it exists) in BAK; false if none. */
static bool
backup (int dfd, const char *name, char bak[64])
{
  snprintf (bak, 64, ".crash-bak-%u", cio.nbak++);
  if (linkat (dfd, name, dfd, bak, 0) == 0)
    return true;
  must (errno == ENOENT, "linkat");
  bak[0] = '\0';
  return false;
}

/* The directory is synced: the first N changes are durable. */
static void
commit_ns (int dfd, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (cio.ns[i].bak[0])
      must (unlinkat (dfd, cio.ns[i].bak, 0) == 0, "unlink backup");
  if (cio.nns > n)               /* cio.ns may still be NULL */
    memmove (cio.ns, cio.ns + n, (cio.nns - n) * sizeof *cio.ns);
  cio.nns -= n;
}

/* Undo every change after the first KEEP, newest first. */
static void
undo_ns (int dfd, size_t keep)
{
  while (cio.nns > keep) {
    const struct nsop *o = &cio.ns[--cio.nns];
    switch (o->type) {
    case NS_CREATE:
      must (unlinkat (dfd, o->a, 0) == 0, "undo create");
      break;
    case NS_RENAME:
      must (renameat (dfd, o->b, dfd, o->a) == 0, "undo rename");
      if (o->bak[0])
        must (renameat (dfd, o->bak, dfd, o->b) == 0, "restore rename target");
      break;
    case NS_UNLINK:
      must (renameat (dfd, o->bak, dfd, o->a) == 0, "undo unlink");
      break;
    }
  }
}

static void
crash (void)
{
  int dfd = cio_dirfd ();
  size_t keep;

  for (struct cfile *f = cio.files; f; f = f->next)
    crash_file (f);
  switch (cio.cfg.mode) {
  case CRASH_DROP: keep = 0; break;
  case CRASH_KEEP: keep = cio.nns; break;
  default: keep = cio_rand () % (cio.nns + 1); break;
  }
  undo_ns (dfd, keep);
  commit_ns (dfd, cio.nns);
  close (dfd);
  cio.crashed = true;
}

/* ---- the ops ---------------------------------------------------------- */

static struct cfile *
lookup (int fd)
{
  return fd >= 0 && fd < CIO_MAX_FD ? cio.byfd[fd] : NULL;
}

static int
c_openat (int dirfd, const char *name, int flags, mode_t mode)
{
  bool existed;
  struct stat st;
  struct cfile *f;
  char proc[64];
  int fd;

  if (flags & O_DIRECTORY) {
    fd = openat (dirfd, name, flags, mode);
    if (fd == -1)
      return -errno;
    if (fd < CIO_MAX_FD)
      cio.isdir[fd] = true;
    return fd;
  }
  if (cio.crashed && (flags & (O_CREAT | O_TRUNC)))
    return -EIO;
  existed = fstatat (dirfd, name, &st, 0) == 0;
  /* O_TRUNC is a pending change like any other: open without it. */
  fd = openat (dirfd, name, flags & ~O_TRUNC, mode);
  if (fd == -1)
    return -errno;
  must (fd < CIO_MAX_FD && fstat (fd, &st) == 0, "fstat new fd");
  for (f = cio.files; f; f = f->next)
    if (f->dev == st.st_dev && f->ino == st.st_ino)
      break;
  if (f == NULL) {
    f = calloc (1, sizeof *f);
    must (f != NULL, "calloc");
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
    f->fd = open (proc, O_RDWR | O_CLOEXEC);     /* its own description,
                                                    so flock is unshared */
    must (f->fd >= 0, "reopen");
    f->next = cio.files;
    cio.files = f;
  }
  snprintf (f->name, sizeof f->name, "%s", name);
  cio.byfd[fd] = f;
  if (!existed) {
    struct nsop op = { .type = NS_CREATE };
    snprintf (op.a, sizeof op.a, "%s", name);
    add_ns (op);
  }
  if ((flags & O_TRUNC) && logical_size (f) > 0)
    add_op (f, (struct cop) { .type = COP_TRUNC, .off = 0 });
  return fd;
}

static int
c_close (int fd)
{
  if (fd >= 0 && fd < CIO_MAX_FD) {
    cio.byfd[fd] = NULL;
    cio.isdir[fd] = false;
  }
  return close (fd) == -1 ? -errno : 0;
}

static ssize_t
c_pread (int fd, void *buf, size_t n, uint64_t off)
{
  struct cfile *f = lookup (fd);
  uint64_t size;
  ssize_t r;

  if (f == NULL)
    return blockmap_io_real.pread (fd, buf, n, off);
  size = logical_size (f);
  if (off >= size)
    return 0;
  if (n > size - off)
    n = size - off;
  r = pread (f->fd, buf, n, off);
  if (r == -1)
    return -errno;
  memset ((char *) buf + r, 0, n - r);
  for (size_t i = 0; i < f->nops; i++) {
    const struct cop *o = &f->ops[i];
    uint64_t s, e;
    if (o->type == COP_TRUNC) {
      s = o->off > off ? o->off : off;
      e = off + n;
    }
    else {
      s = o->off > off ? o->off : off;
      e = o->off + o->len < off + n ? o->off + o->len : off + n;
    }
    if (s >= e)
      continue;
    if (o->type == COP_WRITE)
      memcpy ((char *) buf + (s - off), o->data + (s - o->off), e - s);
    else
      memset ((char *) buf + (s - off), 0, e - s);
  }
  return n;
}

static ssize_t
c_pwrite (int fd, const void *buf, size_t n, uint64_t off)
{
  struct cfile *f = lookup (fd);
  struct cop op = { .type = COP_WRITE, .off = off, .len = n };

  if (cio.crashed)
    return -EIO;
  if (f == NULL)
    return -EBADF;
  op.data = malloc (n ? n : 1);
  must (op.data != NULL, "malloc");
  memcpy (op.data, buf, n);
  add_op (f, op);
  return n;
}

static int
c_sync (int fd)
{
  struct cfile *f = lookup (fd);

  if (cio.crashed)
    return -EIO;
  cio.syncs++;
  if (cio.syncs == cio.cfg.crash_at) {
    crash ();
    return -EIO;
  }
  if (fd >= 0 && fd < CIO_MAX_FD && cio.isdir[fd]) {
    int dfd = cio_dirfd ();
    commit_ns (dfd, cio.nns);
    close (dfd);
    return 0;
  }
  if (f == NULL)
    return -EBADF;
  flush_file (f);
  return 0;
}

static int
c_ftruncate (int fd, uint64_t size)
{
  struct cfile *f = lookup (fd);

  if (cio.crashed)
    return -EIO;
  if (f == NULL)
    return -EBADF;
  add_op (f, (struct cop) { .type = COP_TRUNC, .off = size });
  return 0;
}

static int
c_fallocate (int fd, int mode, uint64_t off, uint64_t len)
{
  struct cfile *f = lookup (fd);

  if (cio.crashed)
    return -EIO;
  if (f == NULL)
    return -EBADF;
  if (mode == 0) {               /* allocate: the file grows to OFF+LEN */
    add_op (f, (struct cop) { .type = COP_EXTEND, .off = off + len });
    return 0;
  }
  if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
    return -EOPNOTSUPP;
  add_op (f, (struct cop) { .type = COP_PUNCH, .off = off, .len = len });
  return 0;
}

static int
c_renameat (int olddirfd, const char *oldname, int newdirfd,
            const char *newname)
{
  struct nsop op = { .type = NS_RENAME };

  if (cio.crashed)
    return -EIO;
  snprintf (op.a, sizeof op.a, "%s", oldname);
  snprintf (op.b, sizeof op.b, "%s", newname);
  backup (newdirfd, newname, op.bak);
  if (renameat (olddirfd, oldname, newdirfd, newname) == -1) {
    int e = -errno;
    if (op.bak[0])
      unlinkat (newdirfd, op.bak, 0);
    return e;
  }
  add_ns (op);
  return 0;
}

static int
c_unlinkat (int dirfd, const char *name, int flags)
{
  struct nsop op = { .type = NS_UNLINK };

  if (cio.crashed)
    return -EIO;
  snprintf (op.a, sizeof op.a, "%s", name);
  if (!backup (dirfd, name, op.bak))
    return -ENOENT;
  if (unlinkat (dirfd, name, flags) == -1) {
    int e = -errno;
    unlinkat (dirfd, op.bak, 0);
    return e;
  }
  add_ns (op);
  return 0;
}

static int
c_fstat (int fd, struct stat *st)
{
  struct cfile *f = lookup (fd);

  if (fstat (fd, st) == -1)
    return -errno;
  if (f)
    st->st_size = logical_size (f);
  return 0;
}

static const struct blockmap_io_ops crash_io_ops = {
  .openat = c_openat,
  .close = c_close,
  .pread = c_pread,
  .pwrite = c_pwrite,
  .fsync = c_sync,
  .fdatasync = c_sync,
  .ftruncate = c_ftruncate,
  .fallocate = c_fallocate,
  .renameat = c_renameat,
  .unlinkat = c_unlinkat,
  .fstat = c_fstat,
};

/* ---- control ---------------------------------------------------------- */

void
crash_io_start (const struct crash_io_config *cfg)
{
  memset (&cio, 0, sizeof cio);
  cio.cfg = *cfg;
  snprintf (cio.dir, sizeof cio.dir, "%s", cfg->dir);
  cio.cfg.dir = cio.dir;
  cio.rng = cfg->seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
  if (cio.rng == 0)
    cio.rng = 1;
  blockmap_test_set_io (&crash_io_ops);
}

bool
crash_io_crashed (void)
{
  return cio.crashed;
}

uint64_t
crash_io_syncs (void)
{
  return cio.syncs;
}

void
crash_io_stop (void)
{
  struct cfile *f, *next;

  blockmap_test_set_io (NULL);
  if (!cio.crashed) {
    int dfd = cio_dirfd ();
    for (f = cio.files; f; f = f->next)
      flush_file (f);
    commit_ns (dfd, cio.nns);
    close (dfd);
  }
  for (f = cio.files; f; f = next) {
    next = f->next;
    clear_ops (f);
    free (f->ops);
    close (f->fd);
    free (f);
  }
  free (cio.ns);
  memset (&cio, 0, sizeof cio);
}
