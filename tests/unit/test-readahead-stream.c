/* tests/unit/test-readahead-stream.c: when read-ahead starts, how far
 * it goes and when it stops (the pure part of server/readahead.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "internal.h"

#define KiB UINT64_C (1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

/* A fresh stream that has seen N READs of LEN bytes from offset 0. */
static void
stream (struct ra_stream *s, unsigned n, uint64_t len)
{
  memset (s, 0, sizeof *s);
  for (unsigned i = 0; i < n; i++)
    ra_stream_note (s, i * len, len);
}

static void
test_starts_after_the_trigger_and_fills_the_window (void **state)
{
  struct ra_stream s;
  uint64_t off = 5 * MiB;

  (void) state;
  memset (&s, 0, sizeof s);
  for (unsigned i = 1; i < RA_TRIGGER; i++) {
    ra_stream_note (&s, off, MiB);
    off += MiB;
    assert_int_equal (ra_stream_want (&s, GiB), 0);
  }
  assert_true (ra_stream_note (&s, off, MiB));
  off += MiB;
  /* 1 MiB READs: as many as fit in RA_MAX_BYTES, at most RA_MAX_SLOTS. */
  assert_int_equal (ra_stream_want (&s, GiB), RA_MAX_SLOTS);
  assert_int_equal (s.frontier, off);     /* from right after the READ */
  /* With some waiting already, only the rest. */
  s.nslots = 5;
  assert_int_equal (ra_stream_want (&s, GiB), RA_MAX_SLOTS - 5);
}

static void
test_byte_budget_limits_large_reads (void **state)
{
  struct ra_stream s;

  (void) state;
  stream (&s, RA_TRIGGER, 4 * MiB);
  assert_int_equal (ra_stream_want (&s, GiB), RA_MAX_BYTES / (4 * MiB));
}

static void
test_small_reads_are_not_read_ahead (void **state)
{
  struct ra_stream s;

  (void) state;
  stream (&s, 20, 4 * KiB);
  assert_int_equal (ra_stream_want (&s, GiB), 0);
  stream (&s, 20, RA_MIN_LEN);
  assert_int_not_equal (ra_stream_want (&s, GiB), 0);
}

static void
test_a_jump_or_another_length_starts_over (void **state)
{
  struct ra_stream s;

  (void) state;
  memset (&s, 0, sizeof s);
  for (unsigned i = 0; i < 10; i++)
    assert_true (ra_stream_note (&s, i * MiB, MiB) || i == 0);
  assert_true (ra_stream_want (&s, GiB) > 0);
  /* A jump back. */
  assert_false (ra_stream_note (&s, 2 * MiB, MiB));
  assert_int_equal (s.streak, 1);
  assert_int_equal (s.frontier, 3 * MiB);
  assert_int_equal (ra_stream_want (&s, GiB), 0);
  /* The same place, another length. */
  ra_stream_note (&s, 3 * MiB, MiB);
  ra_stream_note (&s, 4 * MiB, MiB);
  assert_true (ra_stream_want (&s, GiB) > 0);
  assert_false (ra_stream_note (&s, 5 * MiB, 512 * KiB));
  assert_int_equal (ra_stream_want (&s, GiB), 0);
}

static void
test_never_past_the_end_of_the_volume (void **state)
{
  struct ra_stream s;
  const uint64_t size = 10 * MiB;

  (void) state;
  stream (&s, 5, MiB);
  assert_int_equal (ra_stream_want (&s, size), 5);   /* 5M..10M */
  s.frontier = size;
  assert_int_equal (ra_stream_want (&s, size), 0);
  /* A volume that shrank under the stream. */
  assert_int_equal (ra_stream_want (&s, 3 * MiB), 0);
  /* The last READ of an odd-sized volume is shorter: no read-ahead
   * of a partial READ either.
   */
  s.frontier = size - 512 * KiB;
  assert_int_equal (ra_stream_want (&s, size), 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_starts_after_the_trigger_and_fills_the_window),
    cmocka_unit_test (test_byte_budget_limits_large_reads),
    cmocka_unit_test (test_small_reads_are_not_read_ahead),
    cmocka_unit_test (test_a_jump_or_another_length_starts_over),
    cmocka_unit_test (test_never_past_the_end_of_the_volume),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
