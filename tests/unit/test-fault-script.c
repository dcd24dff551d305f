/* tests/unit/test-fault-script.c: the fuzzer's scripted faults
 * (server/fault.c: fault_script), through the two hooks the data path
 * calls around every read and write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "internal.h"

/* Submit one op of SEG's phase as the data path would, complete it as
 * the kernel would (fd -1: EBADF, else all LEN bytes or the shortened
 * length), and return what the data path sees.
 */
static int
run (struct seg *seg, bool write, unsigned len)
{
  struct io_uring_sqe sqe;

  memset (&sqe, 0, sizeof sqe);
  if (write)
    io_uring_prep_write (&sqe, 7, NULL, len, 0);
  else
    io_uring_prep_read (&sqe, 7, NULL, len, 0);
  fault_seg_submit (seg, &sqe);
  return fault_seg_complete (seg, sqe.fd == -1 ? -EBADF : (int) sqe.len);
}

static void
test_each_byte_decides_one_op_in_order (void **state)
{
  static const uint8_t script[] = { 0, 4, 5, 3, 7, 6, 6 };
  struct seg rd = { .phase = SEG_READ }, wr = { .phase = SEG_WRITE };

  (void) state;
  fault_script (script, sizeof script);
  assert_int_equal (run (&rd, false, 4096), 4096);      /* 0: runs */
  assert_int_equal (run (&rd, false, 4096), -EIO);      /* 4 */
  assert_int_equal (run (&wr, true, 4096), -ENOSPC);    /* 5 */
  assert_int_equal (run (&wr, true, 4096), 4096);       /* 3: runs */
  assert_int_equal (run (&wr, true, 4096), -EDQUOT);    /* 7 */
  assert_int_equal (run (&wr, true, 4096), 2048);       /* 6: short */
  assert_int_equal (run (&rd, false, 4096), 4096);      /* 6: reads run */
  /* Past the end of the script everything runs. */
  assert_int_equal (run (&wr, true, 4096), 4096);
  assert_int_equal (run (&rd, false, 512), 512);
}

static void
test_only_the_low_three_bits_count (void **state)
{
  static const uint8_t script[] = { 0xfc, 0x08 };
  struct seg wr = { .phase = SEG_COW_WRITE };

  (void) state;
  fault_script (script, sizeof script);
  assert_int_equal (run (&wr, true, 8192), -EIO);       /* 0xfc & 7 = 4 */
  assert_int_equal (run (&wr, true, 8192), 8192);       /* 0x08 & 7 = 0 */
}

static void
test_a_new_script_starts_from_its_first_byte (void **state)
{
  static const uint8_t a[] = { 0, 0, 0 }, b[] = { 4 };
  struct seg rd = { .phase = SEG_COW_READ };

  (void) state;
  fault_script (a, sizeof a);
  assert_int_equal (run (&rd, false, 4096), 4096);
  fault_script (b, sizeof b);
  assert_int_equal (run (&rd, false, 4096), -EIO);
  fault_script (NULL, 0);
  assert_int_equal (run (&rd, false, 4096), 4096);
}

/* A real EBADF (not one the hook caused) is passed on as it is. */
static void
test_an_ebadf_that_was_not_injected_is_left_alone (void **state)
{
  struct seg rd = { .phase = SEG_READ };
  struct io_uring_sqe sqe;

  (void) state;
  fault_script (NULL, 0);
  memset (&sqe, 0, sizeof sqe);
  io_uring_prep_read (&sqe, 7, NULL, 4096, 0);
  fault_seg_submit (&rd, &sqe);
  assert_int_equal (sqe.fd, 7);
  assert_int_equal (fault_seg_complete (&rd, -EBADF), -EBADF);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_each_byte_decides_one_op_in_order),
    cmocka_unit_test (test_only_the_low_three_bits_count),
    cmocka_unit_test (test_a_new_script_starts_from_its_first_byte),
    cmocka_unit_test (test_an_ebadf_that_was_not_injected_is_left_alone),
  };

  fault_script_init ();
  return cmocka_run_group_tests (tests, NULL, NULL);
}
