/* tests/unit/test-snapshot-retention.c: unit tests for
 * snapshot/retention.c, which snapshots a policy deletes, and a week of
 * a fake-clock scheduler driving snapshot/cron.c and retention together.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "snapshot/snapshot.h"

#define HOUR INT64_C (3600)
#define DAY (24 * HOUR)
#define NOW INT64_C (1805000000)        /* 2027-03-14 04:53:20; any will do */

/* Run the selection and return the doomed entries' names, in input
 * order, as "a,b,c" (or "" for none), checking the count it returned.
 */
static const char *
select_names (uint32_t keep_count, int64_t keep_age,
              const struct snap_entry *v, size_t n, int64_t now)
{
  static char buf[256];
  struct snap_retention r = { .keep_count = keep_count, .keep_age = keep_age };
  bool doomed[32];
  size_t got, count = 0;

  assert_true (n <= 32);
  memset (doomed, 1, sizeof doomed);    /* must all be overwritten */
  got = snap_retention_select (&r, v, n, now, doomed);
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++)
    if (doomed[i]) {
      if (count++)
        strcat (buf, ",");
      strcat (buf, v[i].name);
    }
  assert_int_equal (got, count);
  return buf;
}

static void
test_count_keeps_the_newest (void **state)
{
  /* Listed out of order on purpose. */
  const struct snap_entry v[] = {
    { "h3", NOW - 3 * HOUR, true }, { "h1", NOW - 1 * HOUR, true },
    { "h5", NOW - 5 * HOUR, true }, { "h2", NOW - 2 * HOUR, true },
    { "h4", NOW - 4 * HOUR, true },
  };

  (void) state;
  assert_string_equal (select_names (3, 0, v, 5, NOW), "h5,h4");
  assert_string_equal (select_names (1, 0, v, 5, NOW), "h3,h5,h2,h4");
  assert_string_equal (select_names (5, 0, v, 5, NOW), "");
  assert_string_equal (select_names (100, 0, v, 5, NOW), "");
}

static void
test_age_removes_what_is_strictly_older (void **state)
{
  const struct snap_entry v[] = {
    { "just-made", NOW, true },
    { "exactly-a-day", NOW - DAY, true },
    { "a-day-and-a-second", NOW - DAY - 1, true },
    { "last-year", NOW - 365 * DAY, true },
    { "from-the-future", NOW + HOUR, true },     /* a clock step back */
  };

  (void) state;
  assert_string_equal (select_names (0, DAY, v, 5, NOW),
                       "a-day-and-a-second,last-year");
  /* No limits at all, and a negative age is no limit either. */
  assert_string_equal (select_names (0, 0, v, 5, NOW), "");
  assert_string_equal (select_names (0, -1, v, 5, NOW), "");
}

static void
test_count_and_age_together_remove_what_either_would (void **state)
{
  const struct snap_entry v[] = {
    { "h1", NOW - 1 * HOUR, true }, { "h2", NOW - 2 * HOUR, true },
    { "h3", NOW - 3 * HOUR, true }, { "d2", NOW - 2 * DAY, true },
    { "d3", NOW - 3 * DAY, true },
  };

  (void) state;
  /* Count alone would drop d3; age alone, d2 and d3. */
  assert_string_equal (select_names (4, DAY, v, 5, NOW), "d2,d3");
  /* Count alone would drop h3, d2, d3; age alone, d3. */
  assert_string_equal (select_names (2, 60 * HOUR, v, 5, NOW), "h3,d2,d3");
}

static void
test_unmanaged_entries_are_never_selected_nor_counted (void **state)
{
  const struct snap_entry v[] = {
    { "manual-newest", NOW, false },
    { "h1", NOW - 1 * HOUR, true },
    { "manual-middle", NOW - 90 * 60, false },
    { "h2", NOW - 2 * HOUR, true },
    { "h3", NOW - 3 * HOUR, true },
    { "manual-ancient", NOW - 1000 * DAY, false },
  };

  (void) state;
  /* The two newest managed ones stay, whatever the manual ones are. */
  assert_string_equal (select_names (2, 0, v, 6, NOW), "h3");
  /* Nor does age select them. */
  assert_string_equal (select_names (3, HOUR, v, 6, NOW), "h2,h3");
  /* Nothing managed: nothing selected. */
  assert_string_equal (select_names (1, 1, v, 1, NOW), "");
}

static void
test_ties_on_created_are_broken_by_name (void **state)
{
  const struct snap_entry ab[] = {
    { "a", NOW, true }, { "b", NOW, true }, { "c", NOW - 1, true },
  };
  const struct snap_entry ba[] = {
    { "b", NOW, true }, { "a", NOW, true }, { "c", NOW - 1, true },
  };
  const struct snap_entry same[] = {
    { "x", NOW, true }, { "x", NOW, true }, { "x", NOW, true },
  };
  const struct snap_entry nul[] = {
    { NULL, NOW, true }, { "", NOW, true }, { "a", NOW, true },
  };
  struct snap_retention r = { .keep_count = 1 };
  bool doomed[3];

  (void) state;
  /* The greater name counts as newer, in whatever order. */
  assert_string_equal (select_names (1, 0, ab, 3, NOW), "a,c");
  assert_string_equal (select_names (1, 0, ba, 3, NOW), "a,c");
  assert_string_equal (select_names (2, 0, ba, 3, NOW), "c");
  /* Identical entries still keep exactly keep_count: the last listed. */
  assert_string_equal (select_names (2, 0, same, 3, NOW), "x");
  assert_int_equal (snap_retention_select (&r, same, 3, NOW, doomed), 2);
  assert_true (doomed[0]);
  assert_true (doomed[1]);
  assert_false (doomed[2]);
  /* A NULL name sorts as "", then by index. */
  assert_int_equal (snap_retention_select (&r, nul, 3, NOW, doomed), 2);
  assert_true (doomed[0]);
  assert_true (doomed[1]);
  assert_false (doomed[2]);
}

static void
test_no_entries_select_nothing (void **state)
{
  struct snap_retention r = { .keep_count = 1, .keep_age = 1 };
  bool doomed[1] = { true };

  (void) state;
  assert_int_equal (snap_retention_select (&r, NULL, 0, NOW, NULL), 0);
  assert_int_equal (snap_retention_select (&r, NULL, 0, NOW, doomed), 0);
  assert_true (doomed[0]);              /* untouched: not an entry */
}

static void
test_extreme_times_do_not_overflow (void **state)
{
  const struct snap_entry v[] = {
    { "dawn-of-time", INT64_MIN, true },
    { "end-of-time", INT64_MAX, true },
  };

  (void) state;
  assert_string_equal (select_names (0, DAY, v, 2, INT64_MAX),
                       "dawn-of-time");
  assert_string_equal (select_names (0, DAY, v, 2, INT64_MIN), "");
  assert_string_equal (select_names (0, INT64_MAX, v, 2, INT64_MAX),
                       "dawn-of-time");
}

/* A scheduler loop on a fake clock: take a snapshot at each firing of
 * "0 * * * *" for a week, applying keep_count 24 after each one as the
 * daemon will, and deleting what it selects.  Two manual snapshots
 * must survive throughout.
 */
static void
test_a_week_of_hourly_snapshots_keeps_the_newest_24 (void **state)
{
  enum { MAX = 200 };
  static char names[MAX][32];
  struct snap_entry v[MAX];
  bool doomed[MAX];
  struct snap_retention r = { .keep_count = 24 };
  struct snap_cron c;
  char err[128];
  int64_t start, end, clock, last = 0;
  size_t n = 0, taken = 0, managed = 0, manual = 0;

  (void) state;
  assert_int_equal (snap_cron_parse ("0 * * * *", &c, err, sizeof err), 0);
  start = NOW + 1234;                   /* not on an hour */
  end = start + 7 * DAY;
  v[n++] = (struct snap_entry) { "before-upgrade", start - 30 * DAY, false };
  v[n++] = (struct snap_entry) { "zz-manual", start + DAY, false };

  for (clock = start;;) {
    size_t kept = 0, selected;
    time_t tt;
    struct tm tm;

    clock = snap_cron_next (&c, clock);
    assert_true (clock > 0);
    if (clock > end)
      break;
    if (last)
      assert_int_equal (clock - last, HOUR);
    last = clock;
    tt = clock;
    gmtime_r (&tt, &tm);
    assert_int_equal (tm.tm_min, 0);
    assert_int_equal (tm.tm_sec, 0);

    assert_true (taken < MAX && n < MAX);
    strftime (names[taken], sizeof names[taken], "auto-%Y%m%d-%H%M", &tm);
    v[n++] = (struct snap_entry) { names[taken++], clock, true };

    selected = snap_retention_select (&r, v, n, clock, doomed);
    for (size_t i = 0; i < n; i++) {
      if (doomed[i]) {
        assert_true (v[i].managed);
        continue;
      }
      v[kept++] = v[i];
    }
    assert_int_equal (n - kept, selected);
    /* Once there are 24, each new one pushes exactly one out. */
    assert_int_equal (selected, taken > 24 ? 1 : 0);
    n = kept;
  }

  assert_int_equal (taken, 7 * 24);
  for (size_t i = 0; i < n; i++) {
    if (!v[i].managed) {
      manual++;
      continue;
    }
    managed++;
    /* The newest 24: the last firing and the 23 hours before it. */
    assert_true (v[i].created <= last);
    assert_true (v[i].created > last - 24 * HOUR);
    assert_int_equal ((last - v[i].created) % HOUR, 0);
  }
  assert_int_equal (managed, 24);
  assert_int_equal (manual, 2);
  /* Names are distinct per hour, so 24 in the window means all of them. */
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      assert_int_not_equal (v[i].created, v[j].created);
  assert_string_equal (v[n - 1].name, names[taken - 1]);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_count_keeps_the_newest),
    cmocka_unit_test (test_age_removes_what_is_strictly_older),
    cmocka_unit_test (test_count_and_age_together_remove_what_either_would),
    cmocka_unit_test (test_unmanaged_entries_are_never_selected_nor_counted),
    cmocka_unit_test (test_ties_on_created_are_broken_by_name),
    cmocka_unit_test (test_no_entries_select_nothing),
    cmocka_unit_test (test_extreme_times_do_not_overflow),
    cmocka_unit_test (test_a_week_of_hourly_snapshots_keeps_the_newest_24),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
