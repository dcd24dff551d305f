/* server/bufpool.c: request data buffers, by power-of-two size class.
 *
 * Each loop keeps its own pool (no locks).  Freed buffers stay on a
 * free list per class for reuse, up to BUFPOOL_CACHE_MAX bytes.
 *
 * Large buffers are physically contiguous.  A 1 MiB buffer made of 256
 * scattered 4 KiB pages cannot be one request to a device that takes
 * at most 254 segments (virtio-blk here), so each 1 MiB O_DIRECT read
 * became two, and neighbouring reads could no longer merge: 1 MiB
 * sequential reads ran at half of what fio got from the same file.
 * Buffers of BUFPOOL_SLAB_MIN_SHIFT (64 KiB, the O_DIRECT size) up to
 * 1 MiB are therefore carved from 2 MiB slabs that the kernel backs
 * with a transparent huge page (MADV_HUGEPAGE), and classes of 2 MiB
 * and more get 2 MiB-aligned regions of their own.  Where huge pages
 * are not to be had the same code runs on small pages, as before.
 *
 *   slab:  | buffer | buffer | ... (2 MiB, one huge page) | header (4 KiB) |
 *
 * A slab's header sits in one small page just past its 2 MiB, so the
 * slab of any buffer is found by rounding its address down (no table).
 * Slabs with free buffers are on their class's list; a slab whose
 * buffers are all back while the pool caches more than its cap is
 * unmapped whole.  Smaller buffers come from posix_memalign.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define SLAB_SIZE ((size_t) 2 << 20)
#define SLAB_MAP (SLAB_SIZE + 4096)     /* the slab and its header page */

struct bufpool_slab {
  struct bufpool_slab *next, *prev;     /* class list: has free buffers */
  void *free;                           /* its free buffers, linked
                                           through word 0 */
  unsigned shift;                       /* its class */
  unsigned nfree, total;
};

static unsigned
class_of (size_t size)
{
  unsigned shift = BUFPOOL_MIN_SHIFT;

  while (shift < BUFPOOL_MAX_SHIFT && ((size_t) 1 << shift) < size)
    shift++;
  return shift;
}

/* LEN bytes (a multiple of 2 MiB, plus EXTRA) at a 2 MiB boundary,
 * huge pages asked for on the first LEN.  NULL if out of memory.
 */
static void *
map_aligned (size_t len, size_t extra)
{
  size_t want = len + extra, span = want + SLAB_SIZE;
  char *p, *a;

  p = mmap (NULL, span, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  a = (char *) (((uintptr_t) p + SLAB_SIZE - 1) & ~(uintptr_t) (SLAB_SIZE - 1));
  if (a > p)
    munmap (p, a - p);
  if (p + span > a + want)
    munmap (a + want, p + span - (a + want));
  madvise (a, len, MADV_HUGEPAGE);    /* a hint: fine if refused */
  return a;
}

static struct bufpool_slab *
slab_of (void *buf)
{
  uintptr_t base = (uintptr_t) buf & ~(uintptr_t) (SLAB_SIZE - 1);

  return (struct bufpool_slab *) (base + SLAB_SIZE);
}

static void
list_add (struct bufpool *bp, struct bufpool_slab *s)
{
  s->prev = NULL;
  s->next = bp->partial[s->shift];
  if (s->next)
    s->next->prev = s;
  bp->partial[s->shift] = s;
}

static void
list_del (struct bufpool *bp, struct bufpool_slab *s)
{
  if (s->prev)
    s->prev->next = s->next;
  else
    bp->partial[s->shift] = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

/* A new slab of class SHIFT, on the class list.  NULL: no memory. */
static struct bufpool_slab *
slab_new (struct bufpool *bp, unsigned shift)
{
  char *base = map_aligned (SLAB_SIZE, SLAB_MAP - SLAB_SIZE);
  struct bufpool_slab *s;
  size_t size = (size_t) 1 << shift;

  if (base == NULL)
    return NULL;
  s = (struct bufpool_slab *) (base + SLAB_SIZE);
  s->shift = shift;
  s->total = s->nfree = SLAB_SIZE / size;
  s->free = NULL;
  for (size_t i = s->total; i-- > 0;) {
    void *b = base + i * size;
    *(void **) b = s->free;
    s->free = b;
  }
  bp->cached += SLAB_SIZE;
  bp->slabs++;
  list_add (bp, s);
  return s;
}

void *
bufpool_get (struct bufpool *bp, size_t size, size_t *cap)
{
  unsigned shift = class_of (size);
  struct bufpool_slab *s;
  void *p;

  if (((size_t) 1 << shift) < size)
    return NULL;
  *cap = (size_t) 1 << shift;
  if (shift >= BUFPOOL_SLAB_MIN_SHIFT && *cap < SLAB_SIZE) {
    s = bp->partial[shift];
    if (s == NULL && (s = slab_new (bp, shift)) == NULL)
      return NULL;
    p = s->free;
    s->free = *(void **) p;
    if (--s->nfree == 0)
      list_del (bp, s);
    bp->cached -= *cap;
    return p;
  }
  p = bp->free[shift];
  if (p) {
    bp->free[shift] = *(void **) p;
    bp->cached -= *cap;
    return p;
  }
  if (*cap >= SLAB_SIZE)
    return map_aligned (*cap, 0);
  if (posix_memalign (&p, 4096, *cap) != 0)
    return NULL;
  return p;
}

static void
release (void *buf, size_t cap)
{
  if (cap >= SLAB_SIZE)
    munmap (buf, cap);
  else
    free (buf);
}

void
bufpool_put (struct bufpool *bp, void *buf, size_t cap)
{
  unsigned shift = class_of (cap);
  struct bufpool_slab *s;

  if (buf == NULL)
    return;
  assert (((size_t) 1 << shift) == cap);
  if (shift >= BUFPOOL_SLAB_MIN_SHIFT && cap < SLAB_SIZE) {
    s = slab_of (buf);
    assert (s->shift == shift);
    *(void **) buf = s->free;
    s->free = buf;
    if (s->nfree++ == 0)
      list_add (bp, s);
    bp->cached += cap;
    if (s->nfree == s->total && bp->cached > BUFPOOL_CACHE_MAX) {
      list_del (bp, s);
      bp->cached -= SLAB_SIZE;
      bp->slabs--;
      munmap ((char *) s - SLAB_SIZE, SLAB_MAP);
    }
    return;
  }
  if (bp->cached + cap > BUFPOOL_CACHE_MAX) {
    release (buf, cap);
    return;
  }
  *(void **) buf = bp->free[shift];
  bp->free[shift] = buf;
  bp->cached += cap;
}

void
bufpool_clear (struct bufpool *bp)
{
  struct bufpool_slab *s;
  unsigned i;
  void *p;

  for (i = 0; i <= BUFPOOL_MAX_SHIFT; i++) {
    while ((p = bp->free[i]) != NULL) {
      bp->free[i] = *(void **) p;
      release (p, (size_t) 1 << i);
    }
    /* Only whole slabs can go; one with buffers out is a leak that
     * the owner of those buffers caused, and stays mapped.
     */
    for (s = bp->partial[i]; s; ) {
      struct bufpool_slab *next = s->next;

      if (s->nfree == s->total) {
        list_del (bp, s);
        bp->slabs--;
        munmap ((char *) s - SLAB_SIZE, SLAB_MAP);
      }
      s = next;
    }
  }
  bp->cached = 0;
}
