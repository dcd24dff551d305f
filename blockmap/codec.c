/* blockmap/codec.c: little-endian encoding for the on-disk formats.
 *
 * Every on-disk structure (superblock, journal records, checkpoint) is
 * written field by field in little-endian order through struct bbuf
 * and read back through struct breader, never by casting a struct, so
 * the format does not depend on the compiler's padding or the host's
 * byte order.  Each is covered by a CRC32 seeded with the pool uuid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

void
bbuf_reserve (struct bbuf *b, size_t n)
{
  size_t cap;
  unsigned char *p;

  if (b->len + n <= b->cap)
    return;
  cap = b->cap ? b->cap : 4096;
  while (cap < b->len + n)
    cap *= 2;
  p = realloc (b->p, cap);
  if (p == NULL) {
    log_error ("blockmap: out of memory growing a buffer to %zu bytes", cap);
    abort ();
  }
  b->p = p;
  b->cap = cap;
}

void
bbuf_free (struct bbuf *b)
{
  free (b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void
bbuf_put_u8 (struct bbuf *b, uint8_t v)
{
  bbuf_reserve (b, 1);
  b->p[b->len++] = v;
}

void
bbuf_put_u16 (struct bbuf *b, uint16_t v)
{
  bbuf_reserve (b, 2);
  b->p[b->len++] = v & 0xff;
  b->p[b->len++] = v >> 8;
}

void
bbuf_put_u32 (struct bbuf *b, uint32_t v)
{
  bbuf_reserve (b, 4);
  le32_put (b->p + b->len, v);
  b->len += 4;
}

void
bbuf_put_u64 (struct bbuf *b, uint64_t v)
{
  bbuf_reserve (b, 8);
  le64_put (b->p + b->len, v);
  b->len += 8;
}

void
bbuf_put_bytes (struct bbuf *b, const void *p, size_t n)
{
  bbuf_reserve (b, n);
  memcpy (b->p + b->len, p, n);
  b->len += n;
}

void
bbuf_put_str (struct bbuf *b, const char *s)
{
  size_t n = strlen (s) + 1;

  bbuf_put_u32 (b, n);
  bbuf_put_bytes (b, s, n);
}

static const unsigned char *
br_take (struct breader *r, size_t n)
{
  const unsigned char *p;

  if (r->err || r->len - r->pos < n) {
    r->err = true;
    return NULL;
  }
  p = r->p + r->pos;
  r->pos += n;
  return p;
}

uint8_t
br_u8 (struct breader *r)
{
  const unsigned char *p = br_take (r, 1);
  return p ? p[0] : 0;
}

uint16_t
br_u16 (struct breader *r)
{
  const unsigned char *p = br_take (r, 2);
  return p ? (uint16_t) (p[0] | p[1] << 8) : 0;
}

uint32_t
br_u32 (struct breader *r)
{
  const unsigned char *p = br_take (r, 4);
  return p ? le32_get (p) : 0;
}

uint64_t
br_u64 (struct breader *r)
{
  const unsigned char *p = br_take (r, 8);
  return p ? le64_get (p) : 0;
}

const char *
br_str (struct breader *r, size_t max)
{
  uint32_t n = br_u32 (r);
  const unsigned char *p;

  if (r->err || n == 0 || n > max) {
    r->err = true;
    return NULL;
  }
  p = br_take (r, n);
  if (p == NULL || p[n - 1] != '\0' || memchr (p, '\0', n) != p + n - 1) {
    r->err = true;
    return NULL;
  }
  return (const char *) p;
}

uint32_t
bm_crc (const unsigned char uuid[16], const void *p, size_t n)
{
  uLong c = crc32 (0L, uuid, 16);

  while (n > 0) {
    uInt step = n > (1u << 30) ? (1u << 30) : (uInt) n;
    c = crc32 (c, p, step);
    p = (const unsigned char *) p + step;
    n -= step;
  }
  return (uint32_t) c;
}
