/* tests/unit/test-blockmap-random.c: random histories against the
 * whole engine: after each step pool check must pass, and after a crash
 * the reopened pool must equal its state at the last sync, byte for
 * byte, and pass check again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>

#include "test-blockmap-util.h"

#define NVOL 3
#define VSIZE (8 * MiB)
static const char *names[NVOL] = { "r0", "r1", "r2" };

/* The contents of every volume, one byte per 4K block (the byte the
 * block is filled with; 0 for zeroes).
 */
static unsigned char model[NVOL][VSIZE / 4096];
static unsigned char synced[NVOL][VSIZE / 4096];
/* Blocks written, unmapped or shared into since the last sync: after a
 * crash they may hold either state (in-place writes reach the data
 * file whether or not a sync follows), so they are not compared.
 */
static bool touched[NVOL][VSIZE / 4096];

static void
verify_contents (struct blockmap_pool *pool, unsigned char m[NVOL][VSIZE / 4096],
                 bool skip_touched)
{
  static char buf[VSIZE];

  for (int i = 0; i < NVOL; i++) {
    struct blockmap_volume *v;
    assert_int_equal (blockmap_volume_open (pool, names[i], &v), 0);
    read_bytes (v, 0, VSIZE, buf);
    for (uint64_t b = 0; b < VSIZE / 4096; b++)
      if (!(skip_touched && touched[i][b]) && !all_bytes (buf + b * 4096, 4096, m[i][b])) {
        fprintf (stderr, "volume %s block %" PRIu64 ": expected 0x%02x, "
                 "got 0x%02x\n", names[i], b, m[i][b],
                 (unsigned char) buf[b * 4096]);
        fail ();
      }
    blockmap_volume_release (v);
  }
}

static void
run_history (unsigned seed)
{
  struct tpool t;
  struct blockmap_volume *v[NVOL];
  const uint64_t blocks = VSIZE / 4096;

  tpool_make (&t, 40 * MiB);        /* less than 3 x 8 MiB x sharing */
  memset (model, 0, sizeof model);
  memset (touched, 0, sizeof touched);
  for (int i = 0; i < NVOL; i++) {
    assert_int_equal (blockmap_volume_create (t.pool, names[i], VSIZE, "ssd",
                                              NULL), 0);
    assert_int_equal (blockmap_volume_open (t.pool, names[i], &v[i]), 0);
  }
  assert_int_equal (blockmap_pool_sync (t.pool), 0);
  memcpy (synced, model, sizeof model);

  for (int step = 0; step < 300; step++) {
    int i = rand_r (&seed) % NVOL, op = rand_r (&seed) % 10;
    uint64_t b = rand_r (&seed) % blocks;
    uint64_t n = 1 + rand_r (&seed) % 64;
    int byte = 1 + rand_r (&seed) % 255;
    struct blockmap_pool_info info;

    if (b + n > blocks)
      n = blocks - b;
    blockmap_pool_info (t.pool, &info);
    if (op < 5) {
      /* Write, unless the pool could run out of space. */
      if (info.hot_free < (n / 16 + 2) * CS)
        op = 5;
      else {
        write_bytes (v[i], b * 4096, n * 4096, byte);
        memset (&model[i][b], byte, n);
        memset (&touched[i][b], 1, n);
      }
    }
    if (op == 5 || op == 6) {
      /* Unmap: whole chunks inside the range become zero. */
      uint64_t per = CS / 4096;
      uint64_t first = (b + per - 1) / per * per, end = (b + n) / per * per;
      assert_int_equal (blockmap_unmap (v[i], b * 4096, n * 4096), 0);
      if (first < end) {
        memset (&model[i][first], 0, end - first);
        memset (&touched[i][first], 1, end - first);
      }
    }
    else if (op == 7) {
      /* Share whole chunks of one volume into another. */
      int j = (i + 1) % NVOL;
      uint64_t c = b * 4096 / CS, cn = 1 + n * 4096 / CS;
      uint64_t per = CS / 4096;
      if (c + cn > VSIZE / CS)
        cn = VSIZE / CS - c;
      /* Only where the source is mapped does the target change; where
       * the source is a hole the target keeps its data.
       */
      for (uint64_t k = c; k < c + cn; k++) {
        struct blockmap_run r[1];
        assert_int_equal (blockmap_map_range (v[i], k * CS, CS, r, 1), 1);
        if (r[0].tier != BM_TIER_NONE) {
          memcpy (&model[j][k * per], &model[i][k * per], per);
          memset (&touched[j][k * per], 1, per);
        }
      }
      assert_int_equal (blockmap_test_share_range (t.pool, names[i], names[j],
                                                   c, cn), 0);
    }
    else if (op == 8 || (op == 9 && step % 7 == 0)) {
      if (op == 8)
        assert_int_equal (blockmap_pool_sync (t.pool), 0);
      else
        assert_int_equal (blockmap_pool_checkpoint (t.pool), 0);
      memcpy (synced, model, sizeof model);
      memset (touched, 0, sizeof touched);
    }
    if (step % 25 == 0)
      assert_int_equal (tpool_check (&t), 0);
  }
  assert_int_equal (tpool_check (&t), 0);
  verify_contents (t.pool, model, false);
  for (int i = 0; i < NVOL; i++)
    blockmap_volume_release (v[i]);
  blockmap_pool_crash_close (t.pool);

  tpool_reopen (&t);
  assert_int_equal (tpool_check (&t), 0);
  verify_contents (t.pool, synced, true);
  tpool_done (&t);
}

static void
test_random_histories_survive_a_crash_and_pass_check (void **state)
{
  (void) state;
  for (unsigned seed = 1; seed <= 30; seed++)
    run_history (seed);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_random_histories_survive_a_crash_and_pass_check),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
