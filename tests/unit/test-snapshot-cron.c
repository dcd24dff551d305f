/* tests/unit/test-snapshot-cron.c: unit tests for snapshot/cron.c, the
 * schedule parser, the next-firing search and the duration parser.
 *
 * Times are written as "YYYY-MM-DD HH:MM" (UTC) on both sides, so a
 * failure shows the two dates.  The search is also checked against a
 * brute-force minute-by-minute scan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "snapshot/snapshot.h"

static struct snap_cron
parse_ok (const char *text)
{
  struct snap_cron c;
  char err[256];

  memset (&c, 0xa5, sizeof c);
  if (snap_cron_parse (text, &c, err, sizeof err) != 0)
    fail_msg ("'%s' did not parse: %s", text, err);
  return c;
}

/* "YYYY-MM-DD HH:MM[:SS]" UTC to seconds since the epoch. */
static int64_t
at (const char *when)
{
  struct tm tm = { 0 };
  int sec = 0;

  if (sscanf (when, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon,
              &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &sec) < 5)
    fail_msg ("bad time '%s' in the test", when);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_sec = sec;
  return timegm (&tm);
}

/* The next firing of TEXT after AFTER, as "YYYY-MM-DD HH:MM" or "none". */
static const char *
next_after (const char *text, const char *after)
{
  static char buf[64];
  struct snap_cron c = parse_ok (text);
  int64_t t = snap_cron_next (&c, at (after));
  time_t tt = t;
  struct tm tm;

  if (t == -1)
    return "none";
  if (t % 60 != 0)
    fail_msg ("'%s' after %s: %" PRId64 " is not a whole minute",
              text, after, t);
  gmtime_r (&tt, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

/* Parse TEXT, expecting failure; return the message. */
static const char *
parse_error (const char *text)
{
  static char err[256];
  const char *shown = text ? text : "(null)";   /* NULL is a case too */
  struct snap_cron c;

  memset (err, 'x', sizeof err);
  if (snap_cron_parse (text, &c, err, sizeof err) != -EINVAL)
    fail_msg ("'%s' was accepted", shown);
  if (memchr (err, '\0', sizeof err) == NULL)
    fail_msg ("'%s': the error is not terminated", shown);
  return err;
}

static void
assert_contains (const char *haystack, const char *needle)
{
  if (strstr (haystack, needle) == NULL)
    fail_msg ("\"%s\" does not mention \"%s\"", haystack, needle);
}

/* ---- Parsing ---- */

static void
test_fields_parse_into_bit_sets (void **state)
{
  struct snap_cron c;

  (void) state;
  c = parse_ok ("* * * * *");
  assert_int_equal (c.minutes, (UINT64_C (1) << 60) - 1);
  assert_int_equal (c.hours, (UINT32_C (1) << 24) - 1);
  assert_int_equal (c.mdays, UINT32_C (0xfffffffe));
  assert_int_equal (c.months, 0x1ffe);
  assert_int_equal (c.wdays, 0x7f);
  assert_true (c.mday_any);
  assert_true (c.wday_any);

  c = parse_ok ("0,30 9-17/4 1,15 jan-MAR,Dec mon-fri");
  assert_int_equal (c.minutes, (UINT64_C (1) << 0) | (UINT64_C (1) << 30));
  assert_int_equal (c.hours, (1u << 9) | (1u << 13) | (1u << 17));
  assert_int_equal (c.mdays, (1u << 1) | (1u << 15));
  assert_int_equal (c.months, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 12));
  assert_int_equal (c.wdays, 0x3e);
  assert_false (c.mday_any);
  assert_false (c.wday_any);

  /* Steps: on "*", A/S meaning A-max/S, and a one-value range (not
   * widened to the maximum).
   */
  c = parse_ok ("*/15 5/6 5-5/2 */5 *");
  assert_int_equal (c.minutes, (UINT64_C (1) << 0) | (UINT64_C (1) << 15)
                    | (UINT64_C (1) << 30) | (UINT64_C (1) << 45));
  assert_int_equal (c.hours, (1u << 5) | (1u << 11) | (1u << 17) | (1u << 23));
  assert_int_equal (c.mdays, 1u << 5);
  assert_int_equal (c.months, (1u << 1) | (1u << 6) | (1u << 11));
  /* A stepped star is a restriction, not "*". */
  assert_false (parse_ok ("0 0 */2 * *").mday_any);
}

static void
test_sunday_is_0_or_7 (void **state)
{
  (void) state;
  assert_int_equal (parse_ok ("0 0 * * 7").wdays, 1);
  assert_int_equal (parse_ok ("0 0 * * 0").wdays, 1);
  assert_int_equal (parse_ok ("0 0 * * SUN").wdays, 1);
  assert_int_equal (parse_ok ("0 0 * * fri-7").wdays, 0x61);
  assert_int_equal (parse_ok ("0 0 * * 0-7").wdays, 0x7f);
  assert_int_equal (parse_ok ("0 0 * * */2").wdays, 0x55);
}

static void
test_blanks_around_and_between_fields_are_allowed (void **state)
{
  struct snap_cron a = parse_ok ("0 3 * * *");
  struct snap_cron b = parse_ok ("  0\t3  *\t\t*  *  ");

  (void) state;
  assert_memory_equal (&a, &b, sizeof a);
}

static void
test_macros_expand_to_their_schedules (void **state)
{
  static const char *const pairs[][2] = {
    { "@hourly", "0 * * * *" },
    { "@daily", "0 0 * * *" },
    { "@midnight", "0 0 * * *" },
    { "@weekly", "0 0 * * 0" },
    { "@monthly", "0 0 1 * *" },
    { "@yearly", "0 0 1 1 *" },
    { "@annually", "0 0 1 1 *" },
    { " @daily\t", "0 0 * * *" },
  };

  (void) state;
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    struct snap_cron a = parse_ok (pairs[i][0]);
    struct snap_cron b = parse_ok (pairs[i][1]);

    if (memcmp (&a, &b, sizeof a) != 0)
      fail_msg ("%s is not %s", pairs[i][0], pairs[i][1]);
  }
}

static void
test_bad_fields_are_named_in_the_error (void **state)
{
  static const char *const cases[][3] = {
    /* text, the field named, the reason */
    { "61 * * * *", "minute field \"61\": ", "61 is out of range 0-59" },
    { "* 24 * * *", "hour field \"24\"", "out of range 0-23" },
    { "* * 0 * *", "day-of-month field \"0\"", "out of range 1-31" },
    { "* * 32 * *", "day-of-month field", "32 is out of range" },
    { "* * * 13 *", "month field \"13\"", "out of range 1-12" },
    { "* * * foo *", "month field \"foo\"", "not a number or a name jan-dec" },
    { "* * * * 8", "day-of-week field \"8\"", "out of range 0-7" },
    { "* * * * funday", "day-of-week field", "\"funday\"" },
    { "* * * * monday", "day-of-week field", "\"monday\"" },
    { "jan * * * *", "minute field \"jan\"", "not a number" },
    { "*/0 * * * *", "minute field", "step 0 is out of range 1-59" },
    { "*/60 * * * *", "minute field", "step 60" },
    { "5-/2 * * * *", "minute field", "expected a number" },
    { "*/ * * * *", "minute field", "expected a step" },
    { "30-10 * * * *", "minute field", "range 30-10 goes backwards" },
    { "1,,2 * * * *", "minute field \"1,,2\"", "empty item" },
    { "1, * * * *", "minute field", "empty item" },
    { "* * * * 1-", "day-of-week field", "expected a number or name at "
      "the end" },
    { "1- * * * *", "minute field \"1-\"", "expected a number at the end" },
    { "1-,5 * * * *", "minute field", "expected a number at the end" },
    { "*-5 * * * *", "minute field", "unexpected '-'" },
    { "1x * * * *", "minute field", "unexpected 'x'" },
    { "* 1.5 * * *", "hour field", "unexpected '.'" },
    { "* -1 * * *", "hour field", "expected a number at '-'" },
    { "* * * * 99999999999999999999", "day-of-week field",
      "99999999999999999999 is out of range" },
  };

  (void) state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *err = parse_error (cases[i][0]);

    assert_contains (err, cases[i][1]);
    assert_contains (err, cases[i][2]);
  }
}

static void
test_wrong_shapes_say_what_is_wrong (void **state)
{
  (void) state;
  assert_contains (parse_error ("* * * *"), "expected 5 fields");
  assert_contains (parse_error ("* * * *"), "found 4");
  assert_contains (parse_error ("* * * * * *"), "found 6");
  assert_contains (parse_error ("0 3 * * * /bin/true"), "found 6");
  assert_contains (parse_error (""), "empty");
  assert_contains (parse_error (" \t "), "empty");
  assert_contains (parse_error (NULL), "no schedule");
  assert_contains (parse_error ("@reboot"), "unknown macro \"@reboot\"");
  assert_contains (parse_error ("@Daily"), "unknown macro");
  assert_contains (parse_error ("@daily 5"), "nothing may follow");
  /* Only spaces and tabs separate fields. */
  assert_contains (parse_error ("0\n3 * * *"), "found 4");
}

static void
test_failed_parse_leaves_the_output_alone (void **state)
{
  struct snap_cron c, before;
  char small[12];

  (void) state;
  memset (&c, 0x5a, sizeof c);
  before = c;
  assert_int_equal (snap_cron_parse ("0 0 * * 9", &c, NULL, 0), -EINVAL);
  assert_memory_equal (&c, &before, sizeof c);
  /* A short buffer gets a truncated, terminated message. */
  assert_int_equal (snap_cron_parse ("0 0 * * 9", &c, small, sizeof small),
                    -EINVAL);
  assert_int_equal (strlen (small), sizeof small - 1);
  assert_memory_equal (&c, &before, sizeof c);
}

/* ---- Next firing ---- */

static void
test_every_minute_fires_at_the_next_whole_minute (void **state)
{
  (void) state;
  assert_string_equal (next_after ("* * * * *", "2027-03-10 12:00"),
                       "2027-03-10 12:01");
  assert_string_equal (next_after ("* * * * *", "2027-03-10 12:00:59"),
                       "2027-03-10 12:01");
  assert_string_equal (next_after ("* * * * *", "2027-12-31 23:59:30"),
                       "2028-01-01 00:00");
  /* Before 1970 too (negative times round down, not toward zero). */
  assert_string_equal (next_after ("* * * * *", "1969-12-31 23:58:30"),
                       "1969-12-31 23:59");
}

static void
test_every_quarter_hour (void **state)
{
  (void) state;
  assert_string_equal (next_after ("*/15 * * * *", "2027-03-10 12:00"),
                       "2027-03-10 12:15");
  assert_string_equal (next_after ("*/15 * * * *", "2027-03-10 12:14:59"),
                       "2027-03-10 12:15");
  assert_string_equal (next_after ("*/15 * * * *", "2027-03-10 23:45"),
                       "2027-03-11 00:00");
}

static void
test_daily_at_three (void **state)
{
  (void) state;
  assert_string_equal (next_after ("0 3 * * *", "2027-03-10 02:59"),
                       "2027-03-10 03:00");
  assert_string_equal (next_after ("0 3 * * *", "2027-03-10 03:00"),
                       "2027-03-11 03:00");
  assert_string_equal (next_after ("0 3 * * *", "2027-03-31 12:00"),
                       "2027-04-01 03:00");
}

static void
test_monthly_on_the_first (void **state)
{
  (void) state;
  assert_string_equal (next_after ("30 2 1 * *", "2027-03-01 02:29"),
                       "2027-03-01 02:30");
  assert_string_equal (next_after ("30 2 1 * *", "2027-03-01 02:30"),
                       "2027-04-01 02:30");
  assert_string_equal (next_after ("30 2 1 * *", "2027-12-15 00:00"),
                       "2028-01-01 02:30");
}

static void
test_day_of_week (void **state)
{
  (void) state;
  /* 2027-03-10 is a Wednesday. */
  assert_string_equal (next_after ("0 9 * * mon", "2027-03-10 00:00"),
                       "2027-03-15 09:00");
  assert_string_equal (next_after ("0 9 * * 1-5", "2027-03-12 10:00"),
                       "2027-03-15 09:00");
  assert_string_equal (next_after ("0 0 * * 7", "2027-03-10 00:00"),
                       "2027-03-14 00:00");
  assert_string_equal (next_after ("0 0 * * sat", "2027-03-10 00:00"),
                       "2027-03-13 00:00");
}

static void
test_day_of_month_or_day_of_week_when_both_restricted (void **state)
{
  (void) state;
  /* The 13th, or any Friday: from Wed 2027-03-10 the Friday comes
   * first, then the 13th (a Saturday), then the next Friday.
   */
  assert_string_equal (next_after ("0 0 13 * fri", "2027-03-10 00:00"),
                       "2027-03-12 00:00");
  assert_string_equal (next_after ("0 0 13 * fri", "2027-03-12 00:00"),
                       "2027-03-13 00:00");
  assert_string_equal (next_after ("0 0 13 * fri", "2027-03-13 00:00"),
                       "2027-03-19 00:00");
  /* With one of them "*", the other alone decides. */
  assert_string_equal (next_after ("0 0 13 * *", "2027-03-10 00:00"),
                       "2027-03-13 00:00");
  assert_string_equal (next_after ("0 0 * * fri", "2027-03-10 00:00"),
                       "2027-03-12 00:00");
  /* A stepped star restricts: odd days or Mondays. */
  assert_string_equal (next_after ("0 0 */2 * mon", "2027-03-01 00:00"),
                       "2027-03-03 00:00");
  assert_string_equal (next_after ("0 0 2-30/2 * mon", "2027-03-10 00:00"),
                       "2027-03-12 00:00");
  assert_string_equal (next_after ("0 0 2-30/2 * mon", "2027-03-14 00:00"),
                       "2027-03-15 00:00");
}

static void
test_month_and_year_roll_over (void **state)
{
  (void) state;
  assert_string_equal (next_after ("0 0 1 jan *", "2027-01-01 00:00"),
                       "2028-01-01 00:00");
  assert_string_equal (next_after ("59 23 31 12 *", "2027-12-31 23:59"),
                       "2028-12-31 23:59");
  /* The 31st skips the months without one. */
  assert_string_equal (next_after ("0 12 31 * *", "2027-01-31 12:00"),
                       "2027-03-31 12:00");
  assert_string_equal (next_after ("0 12 31 * *", "2027-04-01 00:00"),
                       "2027-05-31 12:00");
  assert_string_equal (next_after ("0 0 * feb,nov *", "2027-02-28 00:00"),
                       "2027-11-01 00:00");
}

static void
test_february_29_waits_for_a_leap_year (void **state)
{
  (void) state;
  assert_string_equal (next_after ("0 0 29 2 *", "2027-01-01 00:00"),
                       "2028-02-29 00:00");
  assert_string_equal (next_after ("0 0 29 2 *", "2028-02-29 00:00"),
                       "2032-02-29 00:00");
  /* 2100 is not a leap year, 2000 was. */
  assert_string_equal (next_after ("0 0 29 2 *", "2096-03-01 00:00"),
                       "none");
  assert_string_equal (next_after ("0 0 29 2 *", "1997-01-01 00:00"),
                       "2000-02-29 00:00");
}

static void
test_impossible_schedules_never_fire (void **state)
{
  struct snap_cron none = { 0 };

  (void) state;
  assert_string_equal (next_after ("0 0 31 2 *", "2027-01-01 00:00"),
                       "none");
  assert_string_equal (next_after ("0 0 30 feb *", "2027-01-01 00:00"),
                       "none");
  assert_string_equal (next_after ("0 0 31 apr,jun,sep,nov *",
                                   "2027-01-01 00:00"), "none");
  /* Empty sets (only a caller filling the struct itself can make them). */
  assert_int_equal (snap_cron_next (&none, at ("2027-01-01 00:00")), -1);
  /* Times too far out for the calendar. */
  none = parse_ok ("* * * * *");
  assert_int_equal (snap_cron_next (&none, INT64_MAX), -1);
  assert_int_equal (snap_cron_next (&none, INT64_MIN), -1);
}

static void
test_the_horizon_is_five_years (void **state)
{
  /* 2100 is not a leap year: after 2096-02-29 the next is 2104-02-29. */
  struct snap_cron c = parse_ok ("0 0 29 2 *");
  int64_t t = at ("2104-02-29 00:00"), horizon = 1827 * INT64_C (86400);

  (void) state;
  assert_int_equal (snap_cron_next (&c, t - horizon), t);
  assert_int_equal (snap_cron_next (&c, t - horizon - 1), -1);
  assert_int_equal (snap_cron_next (&c, at ("2096-02-29 00:00")), -1);
  assert_int_equal (snap_cron_next (&c, at ("2096-02-28 23:59")),
                    at ("2096-02-29 00:00"));
}

static void
test_macros_fire_when_they_should (void **state)
{
  (void) state;
  assert_string_equal (next_after ("@hourly", "2027-03-10 12:00"),
                       "2027-03-10 13:00");
  assert_string_equal (next_after ("@daily", "2027-03-10 12:00"),
                       "2027-03-11 00:00");
  assert_string_equal (next_after ("@midnight", "2027-03-10 23:59:59"),
                       "2027-03-11 00:00");
  assert_string_equal (next_after ("@weekly", "2027-03-10 12:00"),
                       "2027-03-14 00:00");
  assert_string_equal (next_after ("@monthly", "2027-03-10 12:00"),
                       "2027-04-01 00:00");
  assert_string_equal (next_after ("@yearly", "2027-03-10 12:00"),
                       "2028-01-01 00:00");
  assert_string_equal (next_after ("@annually", "2027-01-01 00:00"),
                       "2028-01-01 00:00");
}

/* A brute-force matcher, written from the definition. */
static bool
naive_matches (const struct snap_cron *c, int64_t t)
{
  time_t tt = t;
  struct tm tm;
  bool dom, dow;

  gmtime_r (&tt, &tm);
  if (!(c->minutes & (UINT64_C (1) << tm.tm_min))
      || !(c->hours & (1u << tm.tm_hour))
      || !(c->months & (1u << (tm.tm_mon + 1))))
    return false;
  dom = c->mdays & (1u << tm.tm_mday);
  dow = c->wdays & (1u << tm.tm_wday);
  return c->mday_any || c->wday_any ? dom && dow : dom || dow;
}

static void
test_next_agrees_with_a_minute_by_minute_scan (void **state)
{
  static const char *const exprs[] = {
    "* * * * *", "*/7 * * * *", "5 */5 * * *", "0 0 * * *",
    "17 3 */3 * *", "0 12 * * 1,3,5", "45 23 28-31 * *", "0 0 1 * 1",
    "10-20/5 8-18 * jan,jul sat", "0 6 15 * sun", "30 1 * feb *",
    "0 0 29 2 *", "0 0 1,15 3,6,9,12 *",
  };
  uint64_t seed = 42;

  (void) state;
  for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
    struct snap_cron c = parse_ok (exprs[i]);

    for (int k = 0; k < 20; k++) {
      int64_t after, want = -1, got;

      /* Any second from 1999 to 2039, from a fixed LCG. */
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      after = at ("1999-01-01 00:00") + (int64_t) ((seed >> 33) % 1262304000);
      /* Scan at most two years: these all fire within 13 months,
       * except Feb 29, which may take four.
       */
      for (int64_t t = after - ((after % 60) + 60) % 60 + 60;
           t <= after + 4 * 366 * INT64_C (86400); t += 60)
        if (naive_matches (&c, t)) {
          want = t;
          break;
        }
      got = snap_cron_next (&c, after);
      if (got != want)
        fail_msg ("'%s' after %" PRId64 ": got %" PRId64 ", want %" PRId64,
                  exprs[i], after, got, want);
    }
  }
}

/* ---- Durations ---- */

static void
test_durations_parse (void **state)
{
  static const struct {
    const char *text;
    int64_t secs;
  } good[] = {
    { "90s", 90 }, { "30m", 1800 }, { "12h", 43200 }, { "7d", 604800 },
    { "2w", 1209600 }, { "3600", 3600 }, { "1", 1 }, { "007d", 604800 },
    { "9223372036854775807", INT64_MAX },
    { "15250284452471w", INT64_C (15250284452471) * 604800 },
  };

  (void) state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int64_t v = 0;

    if (snap_duration_parse (good[i].text, &v) != 0)
      fail_msg ("'%s' did not parse", good[i].text);
    assert_int_equal (v, good[i].secs);
  }
}

static void
test_non_durations_are_refused (void **state)
{
  static const char *const bad[] = {
    "", "0", "0s", "00d", "-5m", "+5m", " 5m", "5m ", "5 m", "5x", "5mm",
    "5ms", "d", "1.5h", "5M", "5D", "1e3", "0x10",
    "9223372036854775808", "99999999999999999999999s",
    "15250284452472w", "106751991167301d", NULL,
  };
  int64_t v = 42;

  (void) state;
  for (size_t i = 0; bad[i]; i++)
    if (snap_duration_parse (bad[i], &v) != -EINVAL)
      fail_msg ("'%s' was accepted", bad[i]);
  assert_int_equal (snap_duration_parse (NULL, &v), -EINVAL);
  assert_int_equal (v, 42);
}

static void
test_durations_format_in_the_largest_exact_unit (void **state)
{
  static const struct {
    int64_t secs;
    const char *text;
  } cases[] = {
    { 604800, "7d" }, { 1209600, "14d" }, { 129600, "36h" }, { 90, "90s" },
    { 3600, "1h" }, { 5400, "90m" }, { 86401, "86401s" }, { 0, "0s" },
    { -120, "-2m" }, { INT64_MAX, "9223372036854775807s" },
    { INT64_MIN, "-9223372036854775808s" },
  };
  char buf[24];

  (void) state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snap_duration_format (cases[i].secs, buf, sizeof buf);
    assert_string_equal (buf, cases[i].text);
  }
  /* A short buffer is truncated and terminated. */
  snap_duration_format (129600, buf, 3);
  assert_string_equal (buf, "36");
}

static void
test_durations_round_trip (void **state)
{
  static const int64_t secs[] = {
    1, 59, 60, 61, 3599, 3600, 86400, 86400 * 7, 86400 * 30, 86400 * 365,
    90061, INT64_MAX, INT64_MAX - INT64_MAX % 86400,
  };
  char buf[24];

  (void) state;
  for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
    int64_t back = 0;

    snap_duration_format (secs[i], buf, sizeof buf);
    if (snap_duration_parse (buf, &back) != 0)
      fail_msg ("%" PRId64 " formats as '%s', which does not parse",
                secs[i], buf);
    assert_int_equal (back, secs[i]);
  }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_fields_parse_into_bit_sets),
    cmocka_unit_test (test_sunday_is_0_or_7),
    cmocka_unit_test (test_blanks_around_and_between_fields_are_allowed),
    cmocka_unit_test (test_macros_expand_to_their_schedules),
    cmocka_unit_test (test_bad_fields_are_named_in_the_error),
    cmocka_unit_test (test_wrong_shapes_say_what_is_wrong),
    cmocka_unit_test (test_failed_parse_leaves_the_output_alone),
    cmocka_unit_test (test_every_minute_fires_at_the_next_whole_minute),
    cmocka_unit_test (test_every_quarter_hour),
    cmocka_unit_test (test_daily_at_three),
    cmocka_unit_test (test_monthly_on_the_first),
    cmocka_unit_test (test_day_of_week),
    cmocka_unit_test (test_day_of_month_or_day_of_week_when_both_restricted),
    cmocka_unit_test (test_month_and_year_roll_over),
    cmocka_unit_test (test_february_29_waits_for_a_leap_year),
    cmocka_unit_test (test_impossible_schedules_never_fire),
    cmocka_unit_test (test_the_horizon_is_five_years),
    cmocka_unit_test (test_macros_fire_when_they_should),
    cmocka_unit_test (test_next_agrees_with_a_minute_by_minute_scan),
    cmocka_unit_test (test_durations_parse),
    cmocka_unit_test (test_non_durations_are_refused),
    cmocka_unit_test (test_durations_format_in_the_largest_exact_unit),
    cmocka_unit_test (test_durations_round_trip),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
