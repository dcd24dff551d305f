/* tests/unit/test-units.c: unit tests for common/units.c, the size
 * parser behind every --size and op_size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/units.h"

static uint64_t
size_of (const char *s)
{
  uint64_t v = 0;

  if (units_parse_size (s, &v) != 0)
    fail_msg ("'%s' did not parse", s);
  return v;
}

static void
test_sizes_use_binary_units (void **state)
{
  (void) state;
  assert_int_equal (size_of ("4096"), 4096);
  assert_int_equal (size_of ("64K"), 65536);
  assert_int_equal (size_of ("64k"), 65536);
  assert_int_equal (size_of ("512M"), UINT64_C (512) << 20);
  assert_int_equal (size_of ("10G"), UINT64_C (10) << 30);
  assert_int_equal (size_of ("1T"), UINT64_C (1) << 40);
  assert_int_equal (size_of ("1.5G"), UINT64_C (3) << 29);
  assert_int_equal (size_of ("8MiB"), UINT64_C (8) << 20);
  assert_int_equal (size_of ("8MB"), UINT64_C (8) << 20);
  assert_int_equal (size_of ("100B"), 100);
  assert_int_equal (size_of ("0"), 0);
}

static void
test_non_sizes_are_refused (void **state)
{
  const char *bad[] = { "", "abc", "16Q", "-5M", "1.5", "K", "10 G", "1GG",
                        "1Gx", ".", NULL };
  uint64_t v;
  size_t i;

  (void) state;
  for (i = 0; bad[i]; i++)
    if (units_parse_size (bad[i], &v) != -EINVAL)
      fail_msg ("'%s' was accepted", bad[i]);
  assert_int_equal (units_parse_size (NULL, &v), -EINVAL);
}

static void
test_sizes_beyond_64_bits_are_out_of_range (void **state)
{
  uint64_t v;

  (void) state;
  assert_int_equal (units_parse_size ("99999999999999999999", &v), -ERANGE);
  assert_int_equal (units_parse_size ("16E", &v), -ERANGE);
  assert_int_equal (units_parse_size ("15E", &v), 0);
}

static void
test_format_is_short_and_round_trips_when_exact (void **state)
{
  char buf[32];

  (void) state;
  units_format_size (0, buf, sizeof buf);
  assert_string_equal (buf, "0");
  units_format_size (1000, buf, sizeof buf);
  assert_string_equal (buf, "1000");
  units_format_size (65536, buf, sizeof buf);
  assert_string_equal (buf, "64K");
  units_format_size (UINT64_C (3) << 29, buf, sizeof buf);
  assert_string_equal (buf, "1.5G");
  assert_int_equal (size_of (buf), UINT64_C (3) << 29);
}

static void
test_rates_use_decimal_units_unless_written_binary (void **state)
{
  uint64_t v;

  (void) state;
  assert_int_equal (units_parse_rate ("125MB", &v), 0);
  assert_int_equal (v, 125000000);
  assert_int_equal (units_parse_rate ("125 MB/s", &v), 0);
  assert_int_equal (v, 125000000);
  assert_int_equal (units_parse_rate ("1.5G", &v), 0);
  assert_int_equal (v, 1500000000);
  assert_int_equal (units_parse_rate ("100MiB", &v), 0);
  assert_int_equal (v, 100 * 1048576);
  assert_int_equal (units_parse_rate ("50000000", &v), 0);
  assert_int_equal (v, 50000000);
  /* A size is binary whatever the suffix says. */
  assert_int_equal (units_parse_size ("1MB", &v), 0);
  assert_int_equal (v, 1048576);
}

static void
test_non_rates_are_refused (void **state)
{
  uint64_t v = 42;

  (void) state;
  assert_int_equal (units_parse_rate ("", &v), -EINVAL);
  assert_int_equal (units_parse_rate ("MB", &v), -EINVAL);
  assert_int_equal (units_parse_rate ("10 XB", &v), -EINVAL);
  assert_int_equal (units_parse_rate ("10MB/h", &v), -EINVAL);
  assert_int_equal (units_parse_rate ("0.5", &v), -EINVAL);
  assert_int_equal (units_parse_rate ("99999999999999999999", &v), -ERANGE);
  /* Sizes take no spaces or "/s". */
  assert_int_equal (units_parse_size ("10 M", &v), -EINVAL);
  assert_int_equal (units_parse_size ("10M/s", &v), -EINVAL);
  assert_int_equal (v, 42);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_sizes_use_binary_units),
    cmocka_unit_test (test_non_sizes_are_refused),
    cmocka_unit_test (test_sizes_beyond_64_bits_are_out_of_range),
    cmocka_unit_test (test_format_is_short_and_round_trips_when_exact),
    cmocka_unit_test (test_rates_use_decimal_units_unless_written_binary),
    cmocka_unit_test (test_non_rates_are_refused),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
