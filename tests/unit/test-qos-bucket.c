/* tests/unit/test-qos-bucket.c: the token buckets of server/qos.c,
 * driven by a fake clock: refill, burst, long idle, large requests,
 * FIFO order of waiting requests, independence of two volumes, and a
 * budget changed while requests wait.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "internal.h"

#define SEC UINT64_C (1000000000)
#define MS UINT64_C (1000000)

static void
test_empty_bucket_says_how_long_to_wait (void **state)
{
  struct qos_bucket b;

  (void) state;
  qos_bucket_init (&b, 1000, 1000, 0);
  assert_int_equal (qos_bucket_take (&b, 1000, 0), 0);
  /* 500 tokens at 1000/s is half a second. */
  assert_int_equal (qos_bucket_take (&b, 500, 0), SEC / 2);
  /* Refused requests take nothing. */
  assert_int_equal (qos_bucket_level (&b, 0), 0);
  assert_int_equal (qos_bucket_take (&b, 500, SEC / 2), 0);
}

static void
test_refill_is_exact_over_many_small_steps (void **state)
{
  struct qos_bucket b;
  uint64_t t, taken = 0;

  (void) state;
  /* 3 tokens per second, refilled every 1 ms: fractions must add up. */
  qos_bucket_init (&b, 3, 3, 0);
  assert_int_equal (qos_bucket_take (&b, 3, 0), 0);
  for (t = MS; t <= 10 * SEC; t += MS)
    if (qos_bucket_take (&b, 1, t) == 0)
      taken++;
  assert_int_equal (taken, 30);
}

static void
test_burst_caps_the_level (void **state)
{
  struct qos_bucket b;

  (void) state;
  qos_bucket_init (&b, 100, 200, 0);
  /* Ten idle seconds earn 1000 tokens, but the bucket holds 200. */
  assert_int_equal (qos_bucket_level (&b, 10 * SEC), 200);
  assert_int_equal (qos_bucket_take (&b, 200, 10 * SEC), 0);
  assert_true (qos_bucket_take (&b, 1, 10 * SEC) > 0);
}

static void
test_long_idle_at_high_rate_does_not_overflow (void **state)
{
  struct qos_bucket b;

  (void) state;
  qos_bucket_init (&b, UINT64_C (4000000000), 1000, 0);     /* 4 GB/s */
  assert_int_equal (qos_bucket_take (&b, 1000, 0), 0);
  assert_int_equal (qos_bucket_take (&b, 1000, 3600 * SEC), 0);
  /* A year of idle, with debt outstanding first. */
  qos_bucket_init (&b, UINT64_C (16000000000), UINT64_C (16000000000), 0);
  {
    uint64_t ticket;

    qos_bucket_reserve (&b, UINT64_C (32000000000), 0, &ticket);
    assert_int_equal (qos_bucket_wait (&b, ticket, 365 * 24 * 3600 * SEC),
                      0);
    assert_int_equal (qos_bucket_level (&b, 365 * 24 * 3600 * SEC),
                      (int64_t) UINT64_C (16000000000));
  }
}

static void
test_unlimited_bucket_never_waits (void **state)
{
  struct qos_bucket b;
  uint64_t ticket;

  (void) state;
  qos_bucket_init (&b, 0, 0, 0);
  assert_int_equal (qos_bucket_take (&b, UINT64_MAX / 4, 0), 0);
  assert_int_equal (qos_bucket_reserve (&b, 1 << 20, 0, &ticket), 0);
  assert_int_equal (qos_bucket_wait (&b, ticket, 0), 0);
}

static void
test_large_request_counts_several_operations (void **state)
{
  struct qos_bucket ops;
  uint64_t ticket;

  (void) state;
  assert_int_equal (qos_op_cost (0, 256 * 1024), 1);
  assert_int_equal (qos_op_cost (4096, 256 * 1024), 1);
  assert_int_equal (qos_op_cost (256 * 1024, 256 * 1024), 1);
  assert_int_equal (qos_op_cost (256 * 1024 + 1, 256 * 1024), 2);
  assert_int_equal (qos_op_cost (1024 * 1024, 256 * 1024), 4);
  assert_int_equal (qos_op_cost (32 * 1024 * 1024, 1024 * 1024), 32);
  /* 100 IOPS, burst 100: one 4 MiB request (16 ops of 256K) leaves 84. */
  qos_bucket_init (&ops, 100, 100, 0);
  assert_int_equal (qos_bucket_reserve (&ops, qos_op_cost (4 << 20,
                                                           256 * 1024),
                                        0, &ticket), 0);
  assert_int_equal (qos_bucket_level (&ops, 0), 84);
}

/* Requests reserve in arrival order and go in that order: each one's
 * wait is one token's time longer than the one before.
 */
static void
test_waiting_requests_go_in_arrival_order (void **state)
{
  struct qos_bucket b;
  uint64_t ticket[10], wait[10], t;
  int i, gone = 0;

  (void) state;
  qos_bucket_init (&b, 500, 1, 0);              /* 500 IOPS, burst 1 */
  for (i = 0; i < 10; i++)
    wait[i] = qos_bucket_reserve (&b, 1, 0, &ticket[i]);
  assert_int_equal (wait[0], 0);
  for (i = 1; i < 10; i++)
    assert_int_equal (wait[i], (uint64_t) i * 2 * MS);
  /* Walk a fake clock: at every step, exactly the oldest requests are
   * good, never a younger one before an older one.
   */
  for (t = 0; t <= 20 * MS; t += MS / 4) {
    for (i = 0; i < 10; i++) {
      bool good = qos_bucket_wait (&b, ticket[i], t) == 0;

      if (i < gone)
        assert_true (good);
      else if (good) {
        assert_int_equal (i, gone);
        gone++;
      }
    }
  }
  assert_int_equal (gone, 10);
}

/* Two volumes have a bucket each: one deep in debt does not delay the
 * other.
 */
static void
test_two_volumes_are_independent (void **state)
{
  struct qos_bucket a, b;
  uint64_t ticket;
  int i;

  (void) state;
  qos_bucket_init (&a, 500, 500, 0);
  qos_bucket_init (&b, 500, 500, 0);
  for (i = 0; i < 5000; i++)
    qos_bucket_reserve (&a, 1, 0, &ticket);
  assert_true (qos_bucket_wait (&a, ticket, 0) >= 8 * SEC);
  assert_int_equal (qos_bucket_reserve (&b, 1, 0, &ticket), 0);
  assert_int_equal (qos_bucket_reserve (&b, 499, 0, &ticket), 0);
  /* B's 501st request waits one token's time, not A's 9 seconds. */
  assert_int_equal (qos_bucket_reserve (&b, 1, 0, &ticket), 2 * MS);
}

/* Over a long run the rate is the budget, whatever the request size. */
static void
test_sustained_rate_is_the_budget (void **state)
{
  struct qos_bucket b;
  uint64_t t = 0, ticket, n = 0;

  (void) state;
  qos_bucket_init (&b, 125000000, 125000000, 0);        /* 125 MB/s */
  while (t < 10 * SEC) {
    t += qos_bucket_reserve (&b, 1 << 20, t, &ticket);
    n++;
  }
  /* 10 s at 125 MB/s plus the 1 s burst: 1.375 GB in MiB requests. */
  assert_in_range (n, 1310, 1313);
}

static void
test_budget_change_applies_to_waiting_requests (void **state)
{
  struct qos_bucket b;
  uint64_t ticket;
  int i;

  (void) state;
  qos_bucket_init (&b, 100, 100, 0);
  for (i = 0; i < 300; i++)
    qos_bucket_reserve (&b, 1, 0, &ticket);
  assert_int_equal (qos_bucket_wait (&b, ticket, 0), 2 * SEC);
  /* Ten times the rate: the last one now waits a tenth as long. */
  qos_bucket_set (&b, 1000, 1000, 0);
  assert_int_equal (qos_bucket_wait (&b, ticket, 0), SEC / 5);
  /* Unlimited: everyone goes at once, and no debt is left over. */
  qos_bucket_set (&b, 0, 0, 0);
  assert_int_equal (qos_bucket_wait (&b, ticket, 0), 0);
  qos_bucket_set (&b, 100, 100, 0);
  assert_int_equal (qos_bucket_level (&b, 0), 100);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_empty_bucket_says_how_long_to_wait),
    cmocka_unit_test (test_refill_is_exact_over_many_small_steps),
    cmocka_unit_test (test_burst_caps_the_level),
    cmocka_unit_test (test_long_idle_at_high_rate_does_not_overflow),
    cmocka_unit_test (test_unlimited_bucket_never_waits),
    cmocka_unit_test (test_large_request_counts_several_operations),
    cmocka_unit_test (test_waiting_requests_go_in_arrival_order),
    cmocka_unit_test (test_two_volumes_are_independent),
    cmocka_unit_test (test_sustained_rate_is_the_budget),
    cmocka_unit_test (test_budget_change_applies_to_waiting_requests),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
