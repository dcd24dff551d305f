/* tests/unit/test-config-load.c: unit tests for server/config.c.
 *
 * Each test writes a configuration file into a temporary directory and
 * loads it; bad files must be refused with a sentence naming the file,
 * the line and the key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static char dir[] = "/tmp/strata-test-config.XXXXXX";
static char path[256];
static char err[512];

static int
setup (void **state)
{
  (void) state;
  if (mkdtemp (dir) == NULL)
    return -1;
  snprintf (path, sizeof path, "%s/strata.yaml", dir);
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  unlink (path);
  rmdir (dir);
  return 0;
}

/* Write TEXT to the config file and load it. */
static int
load (const char *text, struct config **cfg)
{
  FILE *fp = fopen (path, "w");

  assert_non_null (fp);
  fputs (text, fp);
  fclose (fp);
  *cfg = NULL;
  return config_load (path, cfg, err, sizeof err);
}

/* Loading TEXT fails, and the message contains each of the NULL
 * terminated strings after it.
 */
static void
assert_refused (const char *text, ...)
{
  struct config *cfg;
  const char *want;
  va_list ap;

  assert_int_equal (load (text, &cfg), -EINVAL);
  assert_null (cfg);
  assert_non_null (strstr (err, path));
  va_start (ap, text);
  while ((want = va_arg (ap, const char *)) != NULL) {
    if (strstr (err, want) == NULL)
      fail_msg ("message \"%s\" lacks \"%s\"", err, want);
  }
  va_end (ap);
}

static void
test_builtin_defaults_without_a_file (void **state)
{
  struct config *cfg;
  const struct volume_type *ssd, *hdd;

  (void) state;
  assert_int_equal (config_load (NULL, &cfg, err, sizeof err), 0);
  assert_int_equal (cfg->ntypes, 2);
  ssd = config_find_type (cfg, "ssd");
  hdd = config_find_type (cfg, "hdd");
  assert_non_null (ssd);
  assert_non_null (hdd);
  assert_int_equal (ssd->iops, 3000);
  assert_int_equal (ssd->throughput, 125000000);
  assert_int_equal (ssd->max_iops, 16000);
  assert_int_equal (ssd->max_throughput, 1000000000);
  assert_int_equal (ssd->iops_per_gib, 500);
  assert_int_equal (ssd->op_size, 256 * 1024);
  assert_int_equal (ssd->tier, BM_TIER_HOT);
  assert_false (ssd->rotational);
  assert_int_equal (hdd->iops, 500);
  assert_int_equal (hdd->throughput, 50000000);
  assert_int_equal (hdd->max_throughput, 500000000);
  assert_int_equal (hdd->op_size, 1024 * 1024);
  assert_int_equal (hdd->tier, BM_TIER_WARM);
  assert_true (hdd->rotational);
  assert_null (config_find_type (cfg, "nvme"));
  config_free (cfg);
}

static void
test_file_overrides_a_builtin_and_adds_a_type (void **state)
{
  struct config *cfg;
  const struct volume_type *ssd, *ar;

  (void) state;
  assert_int_equal (load ("# strata test\n"
                          "volume_types:\n"
                          "  ssd: {iops: 6000, throughput: 250MB/s}\n"
                          "  archive:\n"
                          "    throughput: 20MB\n"
                          "    tier: warm\n"
                          "    rotational: true\n"
                          "    op_size: 1M\n", &cfg), 0);
  assert_int_equal (cfg->ntypes, 3);
  ssd = config_find_type (cfg, "ssd");
  assert_int_equal (ssd->iops, 6000);
  assert_int_equal (ssd->throughput, 250000000);
  assert_int_equal (ssd->max_iops, 16000);       /* kept from built-in */
  assert_int_equal (ssd->iops_per_gib, 500);
  ar = config_find_type (cfg, "archive");
  assert_non_null (ar);
  assert_int_equal (ar->throughput, 20000000);
  assert_int_equal (ar->max_throughput, 20000000);  /* = baseline */
  assert_int_equal (ar->iops, 0);                   /* unlimited */
  assert_int_equal (ar->op_size, 1024 * 1024);
  assert_int_equal (ar->tier, BM_TIER_WARM);
  assert_true (ar->rotational);
  assert_non_null (config_find_type (cfg, "hdd"));
  config_free (cfg);
}

static void
test_throughput_units_are_decimal_unless_binary (void **state)
{
  struct config *cfg;

  (void) state;
  assert_int_equal (load ("volume_types:\n"
                          "  a: {throughput: 1G}\n"
                          "  b: {throughput: 100MiB}\n"
                          "  c: {throughput: 1.5MB}\n"
                          "  d: {throughput: 4096}\n"
                          "  e: {throughput: '2 KB/s'}\n", &cfg), 0);
  assert_int_equal (config_find_type (cfg, "a")->throughput, 1000000000);
  assert_int_equal (config_find_type (cfg, "b")->throughput, 104857600);
  assert_int_equal (config_find_type (cfg, "c")->throughput, 1500000);
  assert_int_equal (config_find_type (cfg, "d")->throughput, 4096);
  assert_int_equal (config_find_type (cfg, "e")->throughput, 2000);
  config_free (cfg);
}

static void
test_empty_file_gives_the_defaults (void **state)
{
  struct config *cfg;

  (void) state;
  assert_int_equal (load ("", &cfg), 0);
  assert_int_equal (cfg->ntypes, 2);
  config_free (cfg);
  assert_int_equal (load ("# nothing yet\nvolume_types:\n", &cfg), 0);
  assert_int_equal (cfg->ntypes, 2);
  config_free (cfg);
}

static void
test_missing_file_is_named (void **state)
{
  struct config *cfg = NULL;

  (void) state;
  assert_int_equal (config_load ("/nonexistent/strata.yaml", &cfg, err,
                                 sizeof err), -ENOENT);
  assert_null (cfg);
  assert_non_null (strstr (err, "/nonexistent/strata.yaml"));
  assert_non_null (strstr (err, "No such file"));
}

static void
test_non_positive_iops_names_file_line_and_key (void **state)
{
  (void) state;
  assert_refused ("volume_types:\n"
                  "  hdd: {throughput: 50MB}\n"
                  "\n"
                  "  ssd: {iops: -5}\n",
                  ":4: volume type 'ssd': 'iops' must be a positive integer",
                  NULL);
  assert_refused ("volume_types:\n  ssd: {iops: 0}\n",
                  ":2:", "'iops' must be a positive integer", NULL);
  assert_refused ("volume_types:\n  ssd: {iops: 3.5}\n",
                  ":2:", "'iops'", "'3.5'", NULL);
  assert_refused ("volume_types:\n  ssd: {iops: 99999999999999999999999}\n",
                  ":2:", "'iops'", NULL);
}

static void
test_unknown_keys_are_refused (void **state)
{
  (void) state;
  assert_refused ("volume_types:\n  ssd:\n    iops: 3000\n    ipos: 5\n",
                  ":4:", "volume type 'ssd'", "unknown key 'ipos'",
                  "known keys", NULL);
  assert_refused ("volume_type:\n  ssd: {iops: 3}\n",
                  ":1:", "unknown key 'volume_type'", NULL);
}

static void
test_bad_values_are_refused (void **state)
{
  (void) state;
  assert_refused ("volume_types:\n  x: {tier: lukewarm}\n",
                  ":2:", "'tier' must be hot, warm or cold", "lukewarm",
                  NULL);
  assert_refused ("volume_types:\n  x: {rotational: maybe}\n",
                  ":2:", "'rotational' must be true or false", NULL);
  assert_refused ("volume_types:\n  x: {throughput: fast}\n",
                  ":2:", "'throughput'", "'fast'", NULL);
  assert_refused ("volume_types:\n  x: {throughput: 10XB}\n",
                  ":2:", "'throughput'", NULL);
  assert_refused ("volume_types:\n  x: {op_size: 1000}\n",
                  ":2:", "'op_size'", NULL);
  assert_refused ("volume_types:\n  x: {iops: [1, 2]}\n",
                  ":2:", "'iops'", NULL);
  assert_refused ("volume_types:\n  x: {iops: }\n",
                  ":2:", "'iops' needs a value", NULL);
  assert_refused ("volume_types:\n  x: {iops: 100, max_iops: 50}\n",
                  ":2:", "'max_iops' (50) is below 'iops' (100)", NULL);
}

static void
test_bad_structure_is_refused (void **state)
{
  (void) state;
  assert_refused ("- ssd\n- hdd\n", ":1:", "mapping", NULL);
  assert_refused ("volume_types: [ssd]\n", ":1:", "'volume_types' must be",
                  NULL);
  assert_refused ("volume_types:\n  ssd: 5\n", ":2:",
                  "volume type 'ssd' must be a mapping", NULL);
  assert_refused ("volume_types:\n  'a b': {iops: 1}\n", ":2:",
                  "volume type name 'a b'", NULL);
  assert_refused ("volume_types:\n  x: {iops: 1}\n  x: {iops: 2}\n",
                  ":3:", "volume type 'x' is defined twice", NULL);
  assert_refused ("volume_types:\n  ssd: {iops: 1}\n  ssd: {iops: 2}\n",
                  ":3:", "'ssd' is defined twice", NULL);
  assert_refused ("volume_types:\n  x: {iops: 1, iops: 2}\n",
                  ":2:", "'iops' is given twice", NULL);
  assert_refused ("a: 1\n---\nb: 2\n", "unknown key 'a'", NULL);
  assert_refused ("volume_types:\n---\nvolume_types:\n",
                  ":2:", "only one YAML document", NULL);
}

static void
test_yaml_syntax_error_names_the_line (void **state)
{
  (void) state;
  assert_refused ("volume_types:\n  ssd: {iops: 3000\n  hdd: {}\n",
                  ":", NULL);
  assert_refused ("volume_types:\n  ssd:\n    iops: 1\n   tier: hot\n",
                  ":4:", NULL);
}

/* The example shipped for /etc/strata/strata.yaml loads. */
static void
test_example_config_file_loads (void **state)
{
  char example[4096];
  struct config *cfg;

  (void) state;
  /* __FILE__ is SRCDIR/tests/unit/test-config-load.c */
  snprintf (example, sizeof example, "%.*s/systemd/strata.yaml",
            (int) (strlen (__FILE__) - strlen ("/tests/unit/test-config-load.c")),
            __FILE__);
  if (config_load (example, &cfg, err, sizeof err) != 0)
    fail_msg ("%s", err);
  assert_int_equal (cfg->ntypes, 3);
  assert_int_equal (config_find_type (cfg, "archive")->throughput, 20000000);
  assert_int_equal (config_find_type (cfg, "ssd")->iops, 3000);
  assert_int_equal (config_find_type (cfg, "hdd")->max_throughput, 500000000);
  config_free (cfg);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_builtin_defaults_without_a_file),
    cmocka_unit_test (test_file_overrides_a_builtin_and_adds_a_type),
    cmocka_unit_test (test_throughput_units_are_decimal_unless_binary),
    cmocka_unit_test (test_empty_file_gives_the_defaults),
    cmocka_unit_test (test_missing_file_is_named),
    cmocka_unit_test (test_non_positive_iops_names_file_line_and_key),
    cmocka_unit_test (test_unknown_keys_are_refused),
    cmocka_unit_test (test_bad_values_are_refused),
    cmocka_unit_test (test_bad_structure_is_refused),
    cmocka_unit_test (test_yaml_syntax_error_names_the_line),
    cmocka_unit_test (test_example_config_file_loads),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
