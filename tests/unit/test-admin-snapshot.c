/* tests/unit/test-admin-snapshot.c: the snapshot, restore and policy
 * ops through admin_handle_request() on a real pool, and the policy
 * runner driven by a fake clock (policy_run_once with a chosen time).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test-admin-util.h"

#define MiB (UINT64_C (1) << 20)

/* Map (allocate) [OFF, OFF+LEN) of volume NAME, as a write would. */
static void
touch (const char *name, uint64_t off, uint64_t len)
{
  struct blockmap_volume *v;
  struct blockmap_run runs[16];
  int n;

  assert_int_equal (blockmap_volume_open (pool, name, &v), 0);
  n = blockmap_write_prepare (v, off, len, runs, 16);
  assert_true (n >= 1);
  for (int i = 0; i < n; i++)
    if (runs[i].flags & BM_RUN_COW)
      assert_int_equal (blockmap_cow_commit (v, &runs[i]), 0);
  blockmap_volume_release (v);
}

static size_t
count_snapshots (const char *volume, bool policy_only)
{
  char line[256];
  json_t *reply, *r, *s;
  size_t i, n = 0;

  snprintf (line, sizeof line, "{\"op\": \"snapshot.list\", \"args\": "
            "{\"volume\": \"%s\"}}", volume);
  r = ok (line, &reply);
  json_array_foreach (json_object_get (r, "snapshots"), i, s)
    if (!policy_only || json_is_true (json_object_get (s, "policy")))
      n++;
  json_decref (reply);
  return n;
}

static void
test_create_list_show_delete (void **state)
{
  json_t *reply, *r;

  (void) state;
  do_ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"a\", "
         "\"size\": 16777216}}");
  touch ("a", 0, MiB);
  r = ok ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"a\", "
          "\"name\": \"s1\", \"tags\": {\"why\": \"test\"}}}", &reply);
  assert_string_equal (json_string_value (json_object_get (r, "name")), "s1");
  assert_string_equal (json_string_value (json_object_get (r, "volume")),
                       "a");
  assert_string_equal (json_string_value (json_object_get (r, "full_name")),
                       "a@s1");
  assert_int_equal (int_field (r, "allocated"), MiB);
  assert_string_equal (json_string_value
                       (json_object_get (json_object_get (r, "tags"),
                                         "why")), "test");
  assert_true (json_is_false (json_object_get (r, "policy")));
  json_decref (reply);

  /* Not a volume as far as volume.list goes; a snapshot.list entry. */
  r = ok ("{\"op\": \"volume.list\"}", &reply);
  assert_int_equal (json_array_size (json_object_get (r, "volumes")), 1);
  json_decref (reply);
  assert_int_equal (count_snapshots ("a", false), 1);
  do_ok ("{\"op\": \"snapshot.show\", \"args\": {\"volume\": \"a\", "
         "\"name\": \"s1\"}}");
  refused ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"a\", "
           "\"name\": \"s1\"}}", "EEXIST", "'a@s1' already exists");
  do_ok ("{\"op\": \"snapshot.delete\", \"args\": {\"volume\": \"a\", "
         "\"name\": \"s1\"}}");
  assert_int_equal (count_snapshots ("a", false), 0);
  do_ok ("{\"op\": \"volume.delete\", \"args\": {\"name\": \"a\"}}");
}

static void
test_bad_requests_name_the_problem (void **state)
{
  (void) state;
  do_ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"b\", "
         "\"size\": 16777216}}");
  refused ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"b\"}}",
           "EINVAL", "'name'");
  refused ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"b\", "
           "\"name\": \"x@y\"}}", "EINVAL", "snapshot name 'x@y' is not");
  refused ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"b\", "
           "\"name\": \"-x\"}}", "EINVAL", "is not valid");
  refused ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"nope\", "
           "\"name\": \"s\"}}", "ENOENT", "volume 'nope' does not exist");
  refused ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"b\", "
           "\"name\": \"s\", \"tags\": [1]}}", "EINVAL", "'tags'");
  refused ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"b\", "
           "\"name\": \"s\", \"colour\": 1}}", "EINVAL", "colour");
  refused ("{\"op\": \"snapshot.delete\", \"args\": {\"volume\": \"b\", "
           "\"name\": \"none\"}}", "ENOENT", "'b@none' does not exist");
  refused ("{\"op\": \"snapshot.diff\", \"args\": {\"from\": \"b\", "
           "\"to\": \"b\"}}", "EINVAL", "VOLUME@SNAPSHOT");
  refused ("{\"op\": \"snapshot.diff\", \"args\": {\"from\": \"b@x\", "
           "\"to\": \"b\"}}", "ENOENT", "'b@x' does not exist");
  refused ("{\"op\": \"volume.create\", \"args\": {\"name\": \"c\", "
           "\"from_snapshot\": \"b@none\"}}", "ENOENT", "does not exist");
  refused ("{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": \"b\", "
           "\"schedule\": \"61 * * * *\"}}", "EINVAL", "minute field");
  refused ("{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": \"b\", "
           "\"schedule\": \"0 0 31 2 *\"}}", "EINVAL", "never fires");
  refused ("{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": \"b\", "
           "\"schedule\": \"@hourly\", \"keep_count\": 1000000}}", "EINVAL",
           "keep_count");
  refused ("{\"op\": \"snapshot.policy.show\", \"args\": {\"volume\": "
           "\"nope\"}}", "ENOENT", "'nope' does not exist");
  /* Nothing was taken by any of them. */
  assert_int_equal (count_snapshots ("b", false), 0);
  do_ok ("{\"op\": \"volume.delete\", \"args\": {\"name\": \"b\"}}");
}

static void
test_restore_diff_and_orphans (void **state)
{
  json_t *reply, *r, *ranges;

  (void) state;
  do_ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"d\", "
         "\"size\": 16777216}}");
  touch ("d", 0, 4 * MiB);
  do_ok ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"d\", "
         "\"name\": \"base\"}}");
  touch ("d", 3 * 65536 + 512, 4096);           /* copy of chunk 3 */
  touch ("d", 8 * MiB, 65536);                  /* a new chunk */
  r = ok ("{\"op\": \"snapshot.diff\", \"args\": {\"from\": \"d@base\", "
          "\"to\": \"d\"}}", &reply);
  ranges = json_object_get (r, "ranges");
  assert_int_equal (json_array_size (ranges), 2);
  assert_int_equal (int_field (json_array_get (ranges, 0), "offset"),
                    3 * 65536);
  assert_int_equal (int_field (json_array_get (ranges, 0), "length"), 65536);
  assert_int_equal (int_field (json_array_get (ranges, 1), "offset"),
                    8 * MiB);
  assert_int_equal (int_field (r, "changed_bytes"), 2 * 65536);
  json_decref (reply);

  /* Restore into a larger volume; not a smaller one. */
  refused ("{\"op\": \"volume.create\", \"args\": {\"name\": \"small\", "
           "\"from_snapshot\": \"d@base\", \"size\": 4194304}}", "EINVAL",
           "smaller than snapshot");
  r = ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"big\", "
          "\"from_snapshot\": \"d@base\", \"size\": 33554432}}", &reply);
  assert_int_equal (int_field (r, "size"), 32 * MiB);
  assert_int_equal (int_field (r, "allocated"), 4 * MiB);
  json_decref (reply);

  /* The volume goes; its snapshot and the clone stay, and the name
   * cannot be reused while the snapshot remains.
   */
  do_ok ("{\"op\": \"volume.delete\", \"args\": {\"name\": \"d\"}}");
  assert_int_equal (count_snapshots ("d", false), 1);
  refused ("{\"op\": \"volume.create\", \"args\": {\"name\": \"d\", "
           "\"size\": 16777216}}", "EEXIST", "d@base");
  r = ok ("{\"op\": \"pool.check\"}", &reply);
  assert_true (json_is_true (json_object_get (r, "ok")));
  json_decref (reply);
  do_ok ("{\"op\": \"snapshot.delete\", \"args\": {\"volume\": \"d\", "
         "\"name\": \"base\"}}");
  do_ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"d\", "
         "\"size\": 16777216}}");
  do_ok ("{\"op\": \"volume.delete\", \"args\": {\"name\": \"d\"}}");
  do_ok ("{\"op\": \"volume.delete\", \"args\": {\"name\": \"big\"}}");
}

static int64_t
policy_since (const char *volume)
{
  char line[256];
  json_t *reply, *r;
  int64_t since;

  snprintf (line, sizeof line, "{\"op\": \"snapshot.policy.show\", "
            "\"args\": {\"volume\": \"%s\"}}", volume);
  r = ok (line, &reply);
  since = int_field (json_object_get (r, "policy"), "since");
  json_decref (reply);
  return since;
}

static void
test_policy_runs_on_a_fake_clock (void **state)
{
  const int64_t hour = 3600;
  json_t *reply, *r, *s;
  int64_t t0, first;
  size_t i;

  (void) state;
  do_ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"p\", "
         "\"size\": 16777216}}");
  do_ok ("{\"op\": \"snapshot.create\", \"args\": {\"volume\": \"p\", "
         "\"name\": \"manual\"}}");
  do_ok ("{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": \"p\", "
         "\"schedule\": \"0 * * * *\", \"keep_count\": 3, "
         "\"tags\": {\"by\": \"policy\"}}}");
  t0 = policy_since ("p");
  first = (t0 / hour + 1) * hour;               /* the next whole hour */

  /* Before the first firing: nothing. */
  policy_run_once (pool, first - 1);
  assert_int_equal (count_snapshots ("p", true), 0);
  /* Each hour one more, and the same hour twice is one. */
  for (int k = 0; k < 6; k++) {
    policy_run_once (pool, first + k * hour);
    policy_run_once (pool, first + k * hour + 59);
    assert_int_equal (count_snapshots ("p", true), k < 3 ? k + 1 : 3);
  }
  /* The newest three, tagged; the manual one kept by retention. */
  r = ok ("{\"op\": \"snapshot.list\", \"args\": {\"volume\": \"p\"}}",
          &reply);
  json_array_foreach (json_object_get (r, "snapshots"), i, s) {
    if (!json_is_true (json_object_get (s, "policy"))) {
      assert_string_equal (json_string_value (json_object_get (s, "name")),
                           "manual");
      continue;
    }
    assert_true (int_field (s, "created") >= first + 3 * hour);
    assert_string_equal (json_string_value
                         (json_object_get (json_object_get (s, "tags"),
                                           "by")), "policy");
    assert_true (strncmp (json_string_value (json_object_get (s, "name")),
                          "auto-", 5) == 0);
  }
  assert_int_equal (json_array_size (json_object_get (r, "snapshots")), 4);
  json_decref (reply);

  /* Ten hours of downtime: one catch-up snapshot, not ten. */
  policy_run_once (pool, first + 15 * hour + 30);
  r = ok ("{\"op\": \"snapshot.list\", \"args\": {\"volume\": \"p\"}}",
          &reply);
  s = json_array_get (json_object_get (r, "snapshots"), 3);
  assert_int_equal (int_field (s, "created"), first + 15 * hour);
  json_decref (reply);
  assert_int_equal (count_snapshots ("p", true), 3);

  /* Retention by age: everything older than 2 h goes at the next pass. */
  do_ok ("{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": \"p\", "
         "\"schedule\": \"0 * * * *\", \"keep_age\": 7200}}");
  policy_run_once (pool, first + 15 * hour + 60);
  assert_int_equal (count_snapshots ("p", true), 1);
  assert_int_equal (count_snapshots ("p", false), 2);

  /* Cleared: no more snapshots. */
  r = ok ("{\"op\": \"snapshot.policy.clear\", \"args\": {\"volume\": "
          "\"p\"}}", &reply);
  assert_true (json_is_null (json_object_get (r, "policy")));
  json_decref (reply);
  policy_run_once (pool, first + 20 * hour);
  assert_int_equal (count_snapshots ("p", true), 1);
}

/* Create volume NAME; its id (ids only grow, one per volume or
 * snapshot ever made).
 */
static int64_t
new_volume_id (const char *name)
{
  char line[256];
  json_t *reply, *r;
  int64_t id;

  snprintf (line, sizeof line, "{\"op\": \"volume.create\", \"args\": "
            "{\"name\": \"%s\", \"size\": 1048576}}", name);
  r = ok (line, &reply);
  id = int_field (r, "id");
  json_decref (reply);
  return id;
}

/* Retention shorter than the schedule's period removes every policy
 * snapshot between firings; the runner must not then take the same
 * slot again (it once did, every second).
 */
static void
test_retention_shorter_than_the_period_does_not_churn (void **state)
{
  const int64_t hour = 3600;
  int64_t first, id0;

  (void) state;
  do_ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"q\", "
         "\"size\": 16777216}}");
  do_ok ("{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": \"q\", "
         "\"schedule\": \"0 * * * *\", \"keep_age\": 1800}}");
  first = (policy_since ("q") / hour + 1) * hour;
  policy_run_once (pool, first + 10);
  assert_int_equal (count_snapshots ("q", true), 1);
  policy_run_once (pool, first + 1900);         /* too old: removed */
  assert_int_equal (count_snapshots ("q", true), 0);
  /* Not taken again (and removed at once): volume ids count takes. */
  id0 = new_volume_id ("probe1");
  policy_run_once (pool, first + 1901);
  policy_run_once (pool, first + 2500);
  assert_int_equal (new_volume_id ("probe2"), id0 + 1);
  assert_int_equal (count_snapshots ("q", true), 0);
  policy_run_once (pool, first + hour + 5);     /* the next slot is */
  assert_int_equal (count_snapshots ("q", true), 1);
  do_ok ("{\"op\": \"snapshot.policy.clear\", \"args\": {\"volume\": "
         "\"q\"}}");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_create_list_show_delete),
    cmocka_unit_test (test_bad_requests_name_the_problem),
    cmocka_unit_test (test_restore_diff_and_orphans),
    cmocka_unit_test (test_policy_runs_on_a_fake_clock),
    cmocka_unit_test (test_retention_shorter_than_the_period_does_not_churn),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
