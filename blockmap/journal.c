/* blockmap/journal.c: the metadata journal's on-disk format and replay.
 *
 * "journal" is a 64-byte header followed by records, append only:
 *
 *   header: "STRJRNL\0" | version u32 | 0 u32 | uuid 16 | start LSN u64
 *           | CRC32 of bytes 0..39 u32 | zeroes to 64
 *   record: CRC32 u32 | type u16 | 0 u16 | payload length u32 | 0 u32
 *           | LSN u64 | payload
 *
 * A record's CRC covers bytes 4.. of its header and its payload, and is
 * seeded with the pool uuid.  LSNs are strictly consecutive, starting at
 * the header's start LSN, so replay stops at the first record that is
 * torn, garbled, or left over from an older journal, and the tail from
 * there is cut off.  A record is written only after the data it points
 * at is synced (pool.c), so whatever replay keeps is safe to use.
 *
 * Replay feeds each record through state_check/state_apply, the same
 * functions the runtime uses (apply.c), so replay cannot drift from
 * what the running pool did.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define JOURNAL_MAGIC "STRJRNL"         /* 8 bytes with its NUL */
#define JOURNAL_TMP_FILE "journal.tmp"

void
journal_encode (const unsigned char uuid[16], const struct jrec *r,
                struct bbuf *b)
{
  size_t at = b->len, plen;

  bbuf_put_u32 (b, 0);                  /* CRC, filled in below */
  bbuf_put_u16 (b, r->type);
  bbuf_put_u16 (b, 0);
  bbuf_put_u32 (b, 0);                  /* payload length, below */
  bbuf_put_u32 (b, 0);
  bbuf_put_u64 (b, r->lsn);
  switch (r->type) {
  case JREC_VOL_CREATE:
    bbuf_put_u64 (b, r->vol);
    bbuf_put_u64 (b, r->size);
    bbuf_put_u64 (b, r->time);
    bbuf_put_str (b, r->name);
    bbuf_put_str (b, r->vtype);
    bbuf_put_str (b, r->attrs ? r->attrs : "");
    break;
  case JREC_VOL_CLONE:
    bbuf_put_u64 (b, r->vol);
    bbuf_put_u64 (b, r->src);
    bbuf_put_u64 (b, r->size);
    bbuf_put_u64 (b, r->time);
    bbuf_put_u8 (b, r->flags);
    bbuf_put_str (b, r->name);
    bbuf_put_str (b, r->vtype);
    bbuf_put_str (b, r->attrs ? r->attrs : "");
    break;
  case JREC_VOL_DELETE:
    bbuf_put_u64 (b, r->vol);
    break;
  case JREC_VOL_RESIZE:
    bbuf_put_u64 (b, r->vol);
    bbuf_put_u64 (b, r->size);
    break;
  case JREC_VOL_SET_ATTRS:
    bbuf_put_u64 (b, r->vol);
    bbuf_put_u8 (b, r->vtype != NULL);
    if (r->vtype)
      bbuf_put_str (b, r->vtype);
    bbuf_put_u8 (b, r->attrs != NULL);
    if (r->attrs)
      bbuf_put_str (b, r->attrs);
    break;
  case JREC_MAP:
    bbuf_put_u64 (b, r->vol);
    bbuf_put_u64 (b, r->lchunk);
    bbuf_put_u64 (b, r->pchunk);
    bbuf_put_u64 (b, r->count);
    bbuf_put_u8 (b, r->tier);
    bbuf_put_u8 (b, r->flags);
    break;
  case JREC_UNMAP:
    bbuf_put_u64 (b, r->vol);
    bbuf_put_u64 (b, r->lchunk);
    bbuf_put_u64 (b, r->count);
    break;
  case JREC_POOL_OPEN:
    bbuf_put_u64 (b, r->time);
    break;
  }
  plen = b->len - at - JREC_HDR_SIZE;
  le32_put (b->p + at + 8, plen);
  le32_put (b->p + at, bm_crc (uuid, b->p + at + 4, b->len - at - 4));
}

/* Count whole records with an LSN above EXPECTED in M[POS+1, SIZE).
 * Cheap tests first: garbage rarely gets past the length and LSN
 * checks to the CRC.
 */
static uint64_t
count_later_records (const struct blockmap_pool *pool,
                     const unsigned char *m, uint64_t pos, uint64_t size,
                     uint64_t expected)
{
  uint64_t n = 0, at = pos + 1, lsn;
  struct jrec rec;
  size_t len;

  while (at + JREC_HDR_SIZE <= size) {
    lsn = le64_get (m + at + 16);
    if (lsn > expected && lsn - expected < (UINT64_C (1) << 32)
        && le32_get (m + at + 8) <= JREC_MAX_PAYLOAD
        && (len = journal_decode (pool->uuid, m + at, size - at,
                                  &rec)) > 0) {
      n++;
      at += len;
    }
    else
      at++;
  }
  return n;
}

size_t
journal_decode (const unsigned char uuid[16], const unsigned char *p,
                size_t avail, struct jrec *r)
{
  struct breader br;
  uint32_t plen;

  if (avail < JREC_HDR_SIZE)
    return 0;
  plen = le32_get (p + 8);
  if (plen > JREC_MAX_PAYLOAD || avail - JREC_HDR_SIZE < plen)
    return 0;
  if (le32_get (p) != bm_crc (uuid, p + 4, JREC_HDR_SIZE - 4 + plen))
    return 0;
  memset (r, 0, sizeof *r);
  r->type = p[4] | p[5] << 8;
  r->lsn = le64_get (p + 16);
  br = (struct breader) { .p = p + JREC_HDR_SIZE, .len = plen };
  switch (r->type) {
  case JREC_VOL_CREATE:
    r->vol = br_u64 (&br);
    r->size = br_u64 (&br);
    r->time = br_u64 (&br);
    r->name = br_str (&br, BLOCKMAP_NAME_MAX);
    r->vtype = br_str (&br, BLOCKMAP_TYPE_MAX);
    r->attrs = br_str (&br, BLOCKMAP_ATTRS_MAX);
    break;
  case JREC_VOL_CLONE:
    r->vol = br_u64 (&br);
    r->src = br_u64 (&br);
    r->size = br_u64 (&br);
    r->time = br_u64 (&br);
    r->flags = br_u8 (&br);
    r->name = br_str (&br, BLOCKMAP_NAME_MAX);
    r->vtype = br_str (&br, BLOCKMAP_TYPE_MAX);
    r->attrs = br_str (&br, BLOCKMAP_ATTRS_MAX);
    break;
  case JREC_VOL_DELETE:
    r->vol = br_u64 (&br);
    break;
  case JREC_VOL_RESIZE:
    r->vol = br_u64 (&br);
    r->size = br_u64 (&br);
    break;
  case JREC_VOL_SET_ATTRS:
    r->vol = br_u64 (&br);
    if (br_u8 (&br))
      r->vtype = br_str (&br, BLOCKMAP_TYPE_MAX);
    if (br_u8 (&br))
      r->attrs = br_str (&br, BLOCKMAP_ATTRS_MAX);
    break;
  case JREC_MAP:
    r->vol = br_u64 (&br);
    r->lchunk = br_u64 (&br);
    r->pchunk = br_u64 (&br);
    r->count = br_u64 (&br);
    r->tier = br_u8 (&br);
    r->flags = br_u8 (&br);
    break;
  case JREC_UNMAP:
    r->vol = br_u64 (&br);
    r->lchunk = br_u64 (&br);
    r->count = br_u64 (&br);
    break;
  case JREC_POOL_OPEN:
    r->time = br_u64 (&br);
    break;
  default:
    return 0;
  }
  if (br.err || br.pos != plen)
    return 0;
  return JREC_HDR_SIZE + plen;
}

int
journal_create (int dirfd, const unsigned char uuid[16], uint64_t start_lsn)
{
  unsigned char h[JOURNAL_HDR_SIZE] = { 0 };
  CLEANUP_BM_CLOSE int fd = -1;
  int r;

  memcpy (h, JOURNAL_MAGIC, 8);
  le32_put (h + 8, BLOCKMAP_FORMAT_VERSION);
  memcpy (h + 16, uuid, 16);
  le64_put (h + 32, start_lsn);
  le32_put (h + 40, bm_crc (uuid, h, 40));

  fd = bm_io->openat (dirfd, JOURNAL_TMP_FILE,
                      O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return fd;
  if ((r = bm_pwrite_all (fd, h, sizeof h, 0)) < 0 ||
      (r = bm_io->fsync (fd)) < 0 ||
      (r = bm_io->renameat (dirfd, JOURNAL_TMP_FILE, dirfd,
                            BM_JOURNAL_FILE)) < 0 ||
      (r = bm_io->fsync (dirfd)) < 0)
    return r;
  return TAKE_FD (fd);
}

int
journal_replay (struct blockmap_pool *pool, uint64_t *nrecords)
{
  CLEANUP_BM_CLOSE int fd = -1;
  CLEANUP_FREE unsigned char *m = NULL;
  uint64_t size, start_lsn, expected, pos;
  int r = 0;

  *nrecords = 0;
  fd = bm_io->openat (pool->dir_fd, BM_JOURNAL_FILE, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    log_error ("blockmap: %s: open journal: %s", pool->path,
               strerror (-fd));
    return fd == -ENOENT ? -EUCLEAN : fd;
  }
  if ((r = bm_read_file (fd, &m, &size)) < 0) {
    log_error ("blockmap: %s: read journal: %s", pool->path, strerror (-r));
    return r;
  }
  if (size < JOURNAL_HDR_SIZE) {
    log_error ("blockmap: %s: journal header is missing", pool->path);
    return -EUCLEAN;
  }

  if (memcmp (m, JOURNAL_MAGIC, 8) != 0 ||
      le32_get (m + 40) != bm_crc (pool->uuid, m, 40) ||
      memcmp (m + 16, pool->uuid, 16) != 0) {
    log_error ("blockmap: %s: journal header is damaged or from another "
               "pool", pool->path);
    r = -EUCLEAN;
    goto out;
  }
  if (le32_get (m + 8) != BLOCKMAP_FORMAT_VERSION) {
    log_error ("blockmap: %s: journal format version %u unknown",
               pool->path, le32_get (m + 8));
    r = -EPROTO;
    goto out;
  }
  start_lsn = le64_get (m + 32);
  if (start_lsn == 0 || start_lsn > pool->checkpoint_lsn + 1) {
    log_error ("blockmap: %s: journal starts at LSN %" PRIu64
               " but the checkpoint ends at %" PRIu64 ": records are "
               "missing", pool->path, start_lsn, pool->checkpoint_lsn);
    r = -EUCLEAN;
    goto out;
  }

  expected = start_lsn;
  pos = JOURNAL_HDR_SIZE;
  pool->replaying = true;
  while (pos < size) {
    struct jrec rec;
    size_t len = journal_decode (pool->uuid, m + pos, size - pos, &rec);

    if (len == 0 || rec.lsn != expected)
      break;
    expected++;
    if (rec.lsn > pool->checkpoint_lsn) {
      if ((r = state_check (pool, &rec)) < 0) {
        log_error ("blockmap: %s: journal record LSN %" PRIu64 " (type %d) "
                   "does not apply: %s", pool->path, rec.lsn, rec.type,
                   strerror (-r));
        r = -EUCLEAN;
        pool->replaying = false;
        goto out;
      }
      state_apply (pool, &rec);
      ++*nrecords;
    }
    pos += len;
  }
  pool->replaying = false;

  if (pos < size) {
    uint64_t later = count_later_records (pool, m, pos, size, expected);

    /* A torn last write is normal after a crash, and may even leave
     * whole records after the damage (sectors land out of order), but
     * those were never acknowledged.  Whole records after the damage
     * that came from an earlier commit would mean corruption of data
     * once durable: we cannot tell the two apart, so say so loudly.
     */
    if (later > 0) {
      log_error ("blockmap: %s: journal: record LSN %" PRIu64 " at offset %"
                 PRIu64 " is damaged, and %" PRIu64 " whole records follow "
                 "it; they are dropped.  If they were acknowledged (older "
                 "than the last commit before the crash), the journal was "
                 "corrupted on disk", pool->path, expected, pos, later);
      pool->journal_dropped = later;
    }
    log_warn ("blockmap: %s: journal: ignoring %" PRIu64 " bytes of torn "
              "or invalid records from offset %" PRIu64 " (LSN %" PRIu64 ")",
              pool->path, size - pos, pos, expected);
    if ((r = bm_io->ftruncate (fd, pos)) < 0 ||
        (r = bm_io->fdatasync (fd)) < 0) {
      log_error ("blockmap: %s: truncate journal: %s", pool->path,
                 strerror (-r));
      goto out;
    }
  }
  pool->next_lsn = expected > pool->checkpoint_lsn + 1
    ? expected : pool->checkpoint_lsn + 1;
  pool->durable_lsn = pool->next_lsn - 1;
  if (expected != pool->next_lsn) {
    /* Every record here is older than the checkpoint (a crash between
     * installing a checkpoint and starting its journal): start afresh
     * so the next record's LSN follows on.
     */
    int nfd = journal_create (pool->dir_fd, pool->uuid, pool->next_lsn);
    if (nfd < 0) {
      r = nfd;
      log_error ("blockmap: %s: restart journal: %s", pool->path,
                 strerror (-r));
      goto out;
    }
    bm_io->close (fd);
    fd = nfd;
    pos = JOURNAL_HDR_SIZE;
  }
  pool->jfd = TAKE_FD (fd);
  pool->journal_size = pos;
 out:
  return r;
}
