/* tests/unit/test-blockmap-extend.c: a commit that grows the data file
 * must never cut off data a loop writes meanwhile.
 *
 * Regression: the commit took the file's size and then ftruncate'd it
 * to the end it had computed when it began; a write that a loop made
 * in between, to a chunk allocated after the commit began, past that
 * end, was cut off (seen as data loss in test-concurrent-clients with
 * O_DIRECT writes).  The I/O table below makes that write happen at
 * the worst moment, deterministically.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "test-blockmap-util.h"

static struct blockmap_volume *vol;
static int data_fd = -1;
static bool armed, fired;

/* Another loop writing a chunk allocated after the commit began. */
static void
concurrent_write (void)
{
  armed = false;
  fired = true;
  write_bytes (vol, 40 * CS, CS, 0x5a);
}

static int
hook_fstat (int fd, struct stat *st)
{
  int r = blockmap_io_real.fstat (fd, st);

  if (armed && fd == data_fd)
    concurrent_write ();        /* after the size was taken */
  return r;
}

static int
hook_fallocate (int fd, int mode, uint64_t off, uint64_t len)
{
  if (armed && fd == data_fd && mode == 0)
    concurrent_write ();
  return blockmap_io_real.fallocate (fd, mode, off, len);
}

static int
hook_ftruncate (int fd, uint64_t size)
{
  if (armed && fd == data_fd)
    concurrent_write ();
  return blockmap_io_real.ftruncate (fd, size);
}

static void
test_growing_the_data_file_never_cuts_off_a_concurrent_write (void **state)
{
  struct blockmap_io_ops hooked = blockmap_io_real;
  struct tpool t;
  char *buf = malloc (CS);

  (void) state;
  assert_non_null (buf);
  hooked.fstat = hook_fstat;
  hooked.fallocate = hook_fallocate;
  hooked.ftruncate = hook_ftruncate;
  tpool_make (&t, 64 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 8 * MiB, "ssd",
                                            NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "v", &vol), 0);
  data_fd = blockmap_pool_data_fd (t.pool, BM_TIER_HOT);

  /* Chunk 0 is mapped but only its first 4K written: the file is
   * shorter than the end the next commit will want. */
  write_bytes (vol, 0, 4096, 0x11);
  armed = true;
  blockmap_test_set_io (&hooked);
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  blockmap_test_set_io (NULL);
  assert_true (fired);

  read_bytes (vol, 40 * CS, CS, buf);
  assert_true (all_bytes (buf, CS, 0x5a));
  read_bytes (vol, 0, 4096, buf);
  assert_true (all_bytes (buf, 4096, 0x11));
  assert_int_equal (tpool_check (&t), 0);

  /* And once synced, it survives a crash. */
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  blockmap_volume_release (vol);
  blockmap_pool_crash_close (t.pool);
  tpool_reopen (&t);
  assert_int_equal (blockmap_volume_open (t.pool, "v", &vol), 0);
  read_bytes (vol, 40 * CS, CS, buf);
  assert_true (all_bytes (buf, CS, 0x5a));
  assert_int_equal (tpool_check (&t), 0);
  blockmap_volume_release (vol);
  tpool_done (&t);
  free (buf);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_growing_the_data_file_never_cuts_off_a_concurrent_write),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
