/* tests/unit/test-bufpool.c: the request buffer pool (server/bufpool.c):
 * size classes and alignment, slabs carved into buffers and reused,
 * whole slabs released once the cache is over its cap, buffers that
 * never overlap, and slabs marked for huge pages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define KiB ((size_t) 1024)
#define MiB (1024 * KiB)
#define SLAB (2 * MiB)

static void
test_sizes_round_up_to_their_class (void **state)
{
  struct bufpool bp = { 0 };
  static const size_t sizes[][2] = {
    { 1, 4 * KiB }, { 4 * KiB, 4 * KiB }, { 4 * KiB + 1, 8 * KiB },
    { 64 * KiB, 64 * KiB }, { 1 * MiB - 1, 1 * MiB }, { 1 * MiB, 1 * MiB },
    { 2 * MiB, 2 * MiB }, { 3 * MiB, 4 * MiB }, { 64 * MiB, 64 * MiB },
  };
  size_t cap;

  (void) state;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *b = bufpool_get (&bp, sizes[i][0], &cap);

    assert_non_null (b);
    assert_int_equal (cap, sizes[i][1]);
    assert_int_equal ((uintptr_t) b % 4096, 0);
    if (cap >= SLAB)
      assert_int_equal ((uintptr_t) b % SLAB, 0);
    memset (b, 0x5a, cap);      /* all of it is ours */
    bufpool_put (&bp, b, cap);
  }
  assert_null (bufpool_get (&bp, 64 * MiB + 1, &cap));
  bufpool_clear (&bp);
}

static void
test_large_buffers_are_carved_from_slabs_and_reused (void **state)
{
  struct bufpool bp = { 0 };
  char *b[33];
  size_t cap;

  (void) state;
  /* 32 buffers of 64 KiB fill one 2 MiB slab, contiguously. */
  for (int i = 0; i < 32; i++) {
    b[i] = bufpool_get (&bp, 64 * KiB, &cap);
    assert_non_null (b[i]);
    assert_int_equal (cap, 64 * KiB);
    assert_int_equal ((uintptr_t) b[i] / SLAB, (uintptr_t) b[0] / SLAB);
  }
  assert_int_equal (bp.slabs, 1);
  b[32] = bufpool_get (&bp, 64 * KiB, &cap);
  assert_int_equal (bp.slabs, 2);
  assert_int_not_equal ((uintptr_t) b[32] / SLAB, (uintptr_t) b[0] / SLAB);

  /* A buffer given back is the next one handed out. */
  bufpool_put (&bp, b[7], 64 * KiB);
  assert_ptr_equal (bufpool_get (&bp, 64 * KiB, &cap), b[7]);

  /* 1 MiB buffers: two to a slab, each whole and aligned to 1 MiB. */
  {
    char *x = bufpool_get (&bp, MiB, &cap), *y = bufpool_get (&bp, MiB, &cap);

    assert_int_equal ((uintptr_t) x % MiB, 0);
    assert_int_equal ((uintptr_t) y % MiB, 0);
    assert_int_equal ((uintptr_t) x / SLAB, (uintptr_t) y / SLAB);
    assert_int_equal (bp.slabs, 3);
    bufpool_put (&bp, x, MiB);
    bufpool_put (&bp, y, MiB);
  }
  for (int i = 0; i < 33; i++)
    bufpool_put (&bp, b[i], 64 * KiB);
  /* Under the cap: everything is kept for reuse. */
  assert_int_equal (bp.slabs, 3);
  assert_int_equal (bp.cached, 3 * SLAB);
  bufpool_clear (&bp);
  assert_int_equal (bp.slabs, 0);
}

static void
test_whole_slabs_are_released_over_the_cap (void **state)
{
  const size_t n = 2 * (BUFPOOL_CACHE_MAX / MiB) + 20;      /* 1 MiB each */
  struct bufpool bp = { 0 };
  char **b = calloc (n, sizeof *b);
  size_t cap;

  (void) state;
  assert_non_null (b);
  for (size_t i = 0; i < n; i++)
    assert_non_null (b[i] = bufpool_get (&bp, MiB, &cap));
  assert_int_equal (bp.slabs, n / 2);
  assert_int_equal (bp.cached, 0);
  for (size_t i = 0; i < n; i++)
    bufpool_put (&bp, b[i], MiB);
  /* Slabs that came back whole past the cap were unmapped. */
  assert_true (bp.cached <= BUFPOOL_CACHE_MAX + SLAB);
  assert_true (bp.slabs < n / 2);
  assert_int_equal (bp.slabs * SLAB, bp.cached);
  /* What is left is still usable. */
  for (size_t i = 0; i < n; i++) {
    assert_non_null (b[i] = bufpool_get (&bp, MiB, &cap));
    memset (b[i], (int) i, MiB);
  }
  for (size_t i = 0; i < n; i++)
    bufpool_put (&bp, b[i], MiB);
  bufpool_clear (&bp);
  free (b);
}

/* Buffers of mixed sizes, all out at once, never share a byte. */
static void
test_buffers_never_overlap (void **state)
{
  static const size_t sizes[] = {
    4 * KiB, 60 * KiB, 64 * KiB, 100 * KiB, 256 * KiB, MiB, 2 * MiB, 5 * MiB,
  };
  enum { N = 96 };
  struct bufpool bp = { 0 };
  unsigned char *b[N];
  size_t cap[N];

  (void) state;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      b[i] = bufpool_get (&bp, sizes[(i * 5 + round) % 8], &cap[i]);
      assert_non_null (b[i]);
      memset (b[i], i + 1, cap[i]);
    }
    for (int i = 0; i < N; i++)
      for (size_t k = 0; k < cap[i]; k += 4096)
        if (b[i][k] != i + 1 || b[i][cap[i] - 1] != i + 1)
          fail_msg ("buffer %d (%zu bytes) was overwritten at %zu", i,
                    cap[i], k);
    for (int i = 0; i < N; i += 2)      /* half back, then all */
      bufpool_put (&bp, b[i], cap[i]);
    for (int i = 1; i < N; i += 2)
      bufpool_put (&bp, b[i], cap[i]);
  }
  bufpool_clear (&bp);
}

/* The mapping that holds ADDR, from /proc/self/smaps: is it marked
 * for huge pages ("hg" in VmFlags)?  -1: not found.
 */
static int
marked_huge (const void *addr)
{
  FILE *fp = fopen ("/proc/self/smaps", "r");
  char line[512];
  bool in = false;
  int r = -1;

  if (fp == NULL)
    return -1;
  while (fgets (line, sizeof line, fp)) {
    unsigned long lo, hi;

    if (sscanf (line, "%lx-%lx ", &lo, &hi) == 2 && strchr (line, '-') &&
        line[strspn (line, "0123456789abcdef")] == '-')
      in = (uintptr_t) addr >= lo && (uintptr_t) addr < hi;
    else if (in && strncmp (line, "VmFlags:", 8) == 0) {
      r = strstr (line, " hg") != NULL;
      break;
    }
  }
  fclose (fp);
  return r;
}

static void
test_slabs_ask_for_huge_pages (void **state)
{
  struct bufpool bp = { 0 };
  size_t cap;
  char *small = bufpool_get (&bp, 4 * KiB, &cap);
  char *mid = bufpool_get (&bp, MiB, &cap);
  char *big = bufpool_get (&bp, 4 * MiB, &cap);

  (void) state;
  assert_int_equal (marked_huge (mid), 1);
  assert_int_equal (marked_huge (big), 1);
  assert_int_equal (marked_huge (small), 0);
  bufpool_put (&bp, small, 4 * KiB);
  bufpool_put (&bp, mid, MiB);
  bufpool_put (&bp, big, 4 * MiB);
  bufpool_clear (&bp);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_sizes_round_up_to_their_class),
    cmocka_unit_test (test_large_buffers_are_carved_from_slabs_and_reused),
    cmocka_unit_test (test_whole_slabs_are_released_over_the_cap),
    cmocka_unit_test (test_buffers_never_overlap),
    cmocka_unit_test (test_slabs_ask_for_huge_pages),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
