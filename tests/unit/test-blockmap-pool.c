/* tests/unit/test-blockmap-pool.c: pool lifecycle and the volume
 * namespace (blockmap/pool.c, superblock.c, volume.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "test-blockmap-util.h"

static void
test_a_new_pool_opens_empty_and_reports_its_capacity (void **state)
{
  struct tpool t;
  struct blockmap_pool_info info;

  (void) state;
  tpool_make (&t, 64 * MiB);
  blockmap_pool_info (t.pool, &info);
  assert_int_equal (info.format_version, BLOCKMAP_FORMAT_VERSION);
  assert_int_equal (info.chunk_size, CS);
  assert_int_equal (info.hot_capacity, 64 * MiB);
  assert_int_equal (info.hot_used, 0);
  assert_int_equal (info.hot_free, 64 * MiB);
  assert_int_equal (info.volumes, 0);
  assert_int_equal (strlen (info.uuid), 36);
  assert_false (info.recovered);
  assert_int_equal (tpool_check (&t), 0);
  assert_true (blockmap_pool_data_fd (t.pool, BM_TIER_HOT) >= 0);
  assert_int_equal (blockmap_pool_data_fd (t.pool, BM_TIER_COLD), -1);
  tpool_done (&t);
}

static void
test_init_refuses_a_non_empty_directory_and_bad_chunk_sizes (void **state)
{
  struct tpool t;
  struct blockmap_pool_opts bad = { .chunk_size = 3000 };
  char other[128];

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_pool_init (t.path, NULL), -EEXIST);
  snprintf (other, sizeof other, "%s/other", t.dir);
  assert_int_equal (blockmap_pool_init (other, &bad), -EINVAL);
  tpool_done (&t);
}

static void
test_zero_capacity_means_the_free_space_of_the_file_system (void **state)
{
  struct tpool t;
  struct blockmap_pool_info info;

  (void) state;
  tpool_make (&t, 0);
  blockmap_pool_info (t.pool, &info);
  assert_true (info.hot_capacity > 0);
  assert_int_equal (info.hot_capacity % CS, 0);
  tpool_done (&t);
}

static void
test_a_second_open_gets_ebusy (void **state)
{
  struct tpool t;
  struct blockmap_pool *p2 = NULL;

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_pool_open (t.path, &p2), -EBUSY);
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  t.pool = NULL;
  assert_int_equal (blockmap_pool_open (t.path, &p2), 0);
  t.pool = p2;
  tpool_done (&t);
}

static void
test_open_of_a_missing_pool_is_enoent (void **state)
{
  struct blockmap_pool *p = NULL;

  (void) state;
  assert_int_equal (blockmap_pool_open ("/tmp/strata-no-such-pool-here", &p),
                    -ENOENT);
}

static void
test_an_unknown_format_version_is_eproto (void **state)
{
  struct tpool t;
  struct blockmap_pool *p = NULL;
  char sb[128];
  unsigned char v[4] = { 2, 0, 0, 0 };
  int fd;

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  t.pool = NULL;
  snprintf (sb, sizeof sb, "%s/superblock", t.path);
  fd = open (sb, O_WRONLY);
  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, v, 4, 8), 4);
  close (fd);
  assert_int_equal (blockmap_pool_open (t.path, &p), -EPROTO);
  tpool_done (&t);
}

static void
test_a_garbled_superblock_is_euclean (void **state)
{
  struct tpool t;
  struct blockmap_pool *p = NULL;
  char sb[128];
  int fd;

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  t.pool = NULL;
  snprintf (sb, sizeof sb, "%s/superblock", t.path);
  fd = open (sb, O_WRONLY);
  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, "xx", 2, 20), 2);  /* inside the uuid */
  close (fd);
  assert_int_equal (blockmap_pool_open (t.path, &p), -EUCLEAN);
  tpool_done (&t);
}

static void
test_volume_names_follow_the_rules (void **state)
{
  char longname[200];

  (void) state;
  assert_int_equal (blockmap_name_valid ("vol1"), 0);
  assert_int_equal (blockmap_name_valid ("a.b_c-d"), 0);
  assert_int_equal (blockmap_name_valid (""), -EINVAL);
  assert_int_equal (blockmap_name_valid (".hidden"), -EINVAL);
  assert_int_equal (blockmap_name_valid ("-x"), -EINVAL);
  assert_int_equal (blockmap_name_valid ("vol@snap"), -EINVAL);
  assert_int_equal (blockmap_name_valid ("a/b"), -EINVAL);
  memset (longname, 'a', sizeof longname);
  longname[128] = '\0';                /* 128 bytes: one too many */
  assert_int_equal (blockmap_name_valid (longname), -EINVAL);
  longname[127] = '\0';
  assert_int_equal (blockmap_name_valid (longname), 0);
}

static void
test_volume_create_checks_its_arguments (void **state)
{
  struct tpool t;
  char longname[200], *attrs;

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 1 * MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 1 * MiB, "ssd", NULL),
                    -EEXIST);
  assert_int_equal (blockmap_volume_create (t.pool, "bad/name", MiB, "ssd", NULL),
                    -EINVAL);
  assert_int_equal (blockmap_volume_create (t.pool, "w", 0, "ssd", NULL), -EINVAL);
  assert_int_equal (blockmap_volume_create (t.pool, "w", 1000, "ssd", NULL),
                    -EINVAL);
  assert_int_equal (blockmap_volume_create (t.pool, "w", MiB, "", NULL), -EINVAL);
  memset (longname, 'a', sizeof longname);
  longname[150] = '\0';
  assert_int_equal (blockmap_volume_create (t.pool, longname, MiB, "ssd", NULL),
                    -ENAMETOOLONG);
  attrs = malloc (BLOCKMAP_ATTRS_MAX + 1);
  memset (attrs, 'x', BLOCKMAP_ATTRS_MAX);
  attrs[BLOCKMAP_ATTRS_MAX] = '\0';
  assert_int_equal (blockmap_volume_create (t.pool, "w", MiB, "ssd", attrs),
                    -E2BIG);
  free (attrs);
  tpool_done (&t);
}

static int
collect_names (void *opaque, const struct blockmap_volume_info *info)
{
  char *s = opaque;

  strcat (s, info->name);
  strcat (s, ",");
  return 0;
}

static void
test_volumes_are_listed_in_name_order_with_their_info (void **state)
{
  struct tpool t;
  struct blockmap_volume_info vi;
  char names[256] = "";

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "zeta", 2 * MiB, "hdd",
                                            "{\"a\":1}"), 0);
  assert_int_equal (blockmap_volume_create (t.pool, "alpha", 1 * TiB, "ssd",
                                            NULL), 0);
  assert_int_equal (blockmap_volume_create (t.pool, "mid", 4096, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_foreach (t.pool, collect_names, names), 0);
  assert_string_equal (names, "alpha,mid,zeta,");
  assert_int_equal (blockmap_volume_info (t.pool, "zeta", &vi), 0);
  assert_string_equal (vi.type, "hdd");
  assert_string_equal (vi.attrs, "{\"a\":1}");
  assert_int_equal (vi.size, 2 * MiB);
  assert_int_equal (vi.allocated, 0);
  assert_true (vi.created > 0);
  assert_int_equal (blockmap_volume_info (t.pool, "nope", &vi), -ENOENT);
  assert_int_equal (blockmap_volume_set_attrs (t.pool, "zeta", "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "zeta", &vi), 0);
  assert_string_equal (vi.type, "ssd");
  assert_string_equal (vi.attrs, "{\"a\":1}");
  assert_int_equal (blockmap_volume_set_attrs (t.pool, "zeta", NULL, "x=y"), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "zeta", &vi), 0);
  assert_string_equal (vi.attrs, "x=y");
  tpool_done (&t);
}

static void
test_volume_ids_are_never_reused_even_across_reopen (void **state)
{
  struct tpool t;
  struct blockmap_volume_info vi;
  uint64_t id;

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "a", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_create (t.pool, "b", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "b", &vi), 0);
  id = vi.id;
  assert_int_equal (blockmap_volume_delete (t.pool, "b", false), 0);
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  tpool_reopen (&t);
  assert_int_equal (blockmap_volume_create (t.pool, "b", MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "b", &vi), 0);
  assert_true (vi.id > id);
  tpool_done (&t);
}

static void
test_resize_grows_freely_and_shrinks_only_when_forced_and_empty (void **state)
{
  struct tpool t;
  struct blockmap_volume *v;

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 4 * MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "v", &v), 0);
  write_bytes (v, 3 * MiB, 4096, 'a');
  assert_int_equal (blockmap_volume_resize (t.pool, "v", 8 * MiB, false), 0);
  assert_int_equal (blockmap_volume_size (v), 8 * MiB);
  assert_int_equal (blockmap_volume_resize (t.pool, "v", 2 * MiB, false), -EPERM);
  assert_int_equal (blockmap_volume_resize (t.pool, "v", 2 * MiB, true),
                    -ENOTEMPTY);
  assert_int_equal (blockmap_volume_resize (t.pool, "v", 5 * MiB, true), 0);
  assert_int_equal (blockmap_volume_size (v), 5 * MiB);
  assert_int_equal (blockmap_volume_resize (t.pool, "v", 1000, true), -EINVAL);
  assert_int_equal (blockmap_volume_resize (t.pool, "nope", MiB, true), -ENOENT);
  assert_int_equal (blockmap_unmap (v, 3 * MiB, CS), 0);
  assert_int_equal (blockmap_volume_resize (t.pool, "v", 2 * MiB, true), 0);
  assert_int_equal (tpool_check (&t), 0);
  blockmap_volume_release (v);
  tpool_done (&t);
}

static void
test_delete_with_open_handles_needs_force_then_handles_get_eshutdown (void **state)
{
  struct tpool t;
  struct blockmap_volume *v;
  struct blockmap_run r[4];
  struct blockmap_volume_info vi;

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 4 * MiB, "ssd", NULL), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "v", &v), 0);
  write_bytes (v, 0, MiB, 'a');
  assert_int_equal (blockmap_volume_info (t.pool, "v", &vi), 0);
  assert_int_equal (vi.open_count, 1);
  assert_int_equal (blockmap_volume_delete (t.pool, "v", false), -EBUSY);
  assert_int_equal (blockmap_volume_delete (t.pool, "v", true), 0);
  assert_int_equal (blockmap_volume_info (t.pool, "v", &vi), -ENOENT);
  assert_int_equal (blockmap_map_range (v, 0, 4096, r, 4), -ESHUTDOWN);
  assert_int_equal (blockmap_write_prepare (v, 0, 4096, r, 4), -ESHUTDOWN);
  assert_int_equal (blockmap_unmap (v, 0, 4096), -ESHUTDOWN);
  assert_string_equal (blockmap_volume_name (v), "v");
  /* The name is free again at once. */
  assert_int_equal (blockmap_volume_create (t.pool, "v", MiB, "ssd", NULL), 0);
  blockmap_volume_release (v);
  assert_int_equal (blockmap_volume_delete (t.pool, "nope", false), -ENOENT);
  assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
}

static void
test_volumes_survive_a_clean_close (void **state)
{
  struct tpool t;
  struct blockmap_volume *v;
  struct blockmap_volume_info vi;
  struct blockmap_pool_info info;
  char buf[4096];

  (void) state;
  tpool_make (&t, 16 * MiB);
  assert_int_equal (blockmap_volume_create (t.pool, "v", 4 * MiB, "ssd", "x"), 0);
  assert_int_equal (blockmap_volume_open (t.pool, "v", &v), 0);
  write_bytes (v, 8192, 4096, 'q');
  blockmap_volume_release (v);
  assert_int_equal (blockmap_pool_close (t.pool), 0);
  tpool_reopen (&t);
  blockmap_pool_info (t.pool, &info);
  assert_false (info.recovered);
  assert_int_equal (blockmap_volume_info (t.pool, "v", &vi), 0);
  assert_string_equal (vi.attrs, "x");
  assert_int_equal (vi.allocated, CS);
  assert_int_equal (blockmap_volume_open (t.pool, "v", &v), 0);
  read_bytes (v, 8192, 4096, buf);
  assert_true (all_bytes (buf, 4096, 'q'));
  blockmap_volume_release (v);
  assert_int_equal (tpool_check (&t), 0);
  tpool_done (&t);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_a_new_pool_opens_empty_and_reports_its_capacity),
    cmocka_unit_test (test_init_refuses_a_non_empty_directory_and_bad_chunk_sizes),
    cmocka_unit_test (test_zero_capacity_means_the_free_space_of_the_file_system),
    cmocka_unit_test (test_a_second_open_gets_ebusy),
    cmocka_unit_test (test_open_of_a_missing_pool_is_enoent),
    cmocka_unit_test (test_an_unknown_format_version_is_eproto),
    cmocka_unit_test (test_a_garbled_superblock_is_euclean),
    cmocka_unit_test (test_volume_names_follow_the_rules),
    cmocka_unit_test (test_volume_create_checks_its_arguments),
    cmocka_unit_test (test_volumes_are_listed_in_name_order_with_their_info),
    cmocka_unit_test (test_volume_ids_are_never_reused_even_across_reopen),
    cmocka_unit_test (test_resize_grows_freely_and_shrinks_only_when_forced_and_empty),
    cmocka_unit_test (test_delete_with_open_handles_needs_force_then_handles_get_eshutdown),
    cmocka_unit_test (test_volumes_survive_a_clean_close),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
