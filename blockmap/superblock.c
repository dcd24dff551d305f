/* blockmap/superblock.c: the pool's identity and format version.
 *
 * The file "superblock" is 512 bytes, written once by pool init (as
 * "superblock.tmp", then renamed):
 *
 *   0  magic "STRATASB"        8
 *   8  format version          u32 (BLOCKMAP_FORMAT_VERSION)
 *  12  chunk size              u32
 *  16  uuid                    16
 *  32  hot capacity (bytes)    u64
 *  40  created (epoch secs)    u64
 *  48  CRC32 of bytes 0..47 seeded with the uuid
 *
 * The version is checked before anything else is trusted, so a newer
 * format is refused with -EPROTO rather than misread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define SB_MAGIC "STRATASB"
#define SB_SIZE 512
#define SB_TMP_FILE "superblock.tmp"

void
uuid_format (const unsigned char u[16], char out[37])
{
  snprintf (out, 37,
            "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x",
            u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
            u[10], u[11], u[12], u[13], u[14], u[15]);
}

int
superblock_write (int dirfd, const struct superblock *sb)
{
  unsigned char buf[SB_SIZE] = { 0 };
  CLEANUP_BM_CLOSE int fd = -1;
  int r;

  memcpy (buf, SB_MAGIC, 8);
  le32_put (buf + 8, sb->version);
  le32_put (buf + 12, sb->chunk_size);
  memcpy (buf + 16, sb->uuid, 16);
  le64_put (buf + 32, sb->hot_capacity);
  le64_put (buf + 40, sb->created);
  le32_put (buf + 48, bm_crc (sb->uuid, buf, 48));

  /* Written under another name and renamed, so that after a crash the
   * superblock is either whole or absent (then there is no pool), never
   * an empty or torn file that would make the pool look damaged.  The
   * caller fsyncs the directory.
   */
  fd = bm_io->openat (dirfd, SB_TMP_FILE,
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return fd;
  if ((r = bm_pwrite_all (fd, buf, sizeof buf, 0)) < 0 ||
      (r = bm_io->fsync (fd)) < 0)
    return r;
  return bm_io->renameat (dirfd, SB_TMP_FILE, dirfd, BM_SUPERBLOCK_FILE);
}

int
superblock_read (int dirfd, struct superblock *sb)
{
  unsigned char buf[SB_SIZE];
  CLEANUP_BM_CLOSE int fd = -1;
  ssize_t n;

  fd = bm_io->openat (dirfd, BM_SUPERBLOCK_FILE, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    return fd;
  n = bm_io->pread (fd, buf, sizeof buf, 0);
  if (n < 0)
    return n;
  if (n < 52 || memcmp (buf, SB_MAGIC, 8) != 0) {
    log_error ("blockmap: superblock: not a strata pool (bad magic)");
    return -EUCLEAN;
  }
  sb->version = le32_get (buf + 8);
  if (sb->version != BLOCKMAP_FORMAT_VERSION) {
    log_error ("blockmap: superblock: format version %u, this build "
               "understands %u", sb->version, BLOCKMAP_FORMAT_VERSION);
    return -EPROTO;
  }
  memcpy (sb->uuid, buf + 16, 16);
  if (le32_get (buf + 48) != bm_crc (sb->uuid, buf, 48)) {
    log_error ("blockmap: superblock: checksum mismatch");
    return -EUCLEAN;
  }
  sb->chunk_size = le32_get (buf + 12);
  sb->hot_capacity = le64_get (buf + 32);
  sb->created = le64_get (buf + 40);
  if (sb->chunk_size < 4096 || sb->chunk_size > 16 * 1024 * 1024 ||
      (sb->chunk_size & (sb->chunk_size - 1)) != 0 ||
      sb->hot_capacity < sb->chunk_size) {
    log_error ("blockmap: superblock: bad chunk size %u or capacity %llu",
               sb->chunk_size, (unsigned long long) sb->hot_capacity);
    return -EUCLEAN;
  }
  return 0;
}
