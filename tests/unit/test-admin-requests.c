/* tests/unit/test-admin-requests.c: admin_handle_request() on a real
 * pool in a temporary directory, without sockets.  Every op, every
 * error the protocol lists, and requests that are not requests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test-admin-util.h"


static void
test_create_show_list_delete (void **state)
{
  json_t *reply, *r, *vols;

  (void) state;
  r = ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"vol1\", "
          "\"size\": 1073741824, \"type\": \"ssd\", "
          "\"labels\": {\"app\": \"db\", \"env\": \"prod\"}}}", &reply);
  assert_string_equal (json_string_value (json_object_get (r, "name")),
                       "vol1");
  assert_int_equal (int_field (r, "size"), 1073741824);
  assert_string_equal (json_string_value (json_object_get (r, "type")),
                       "ssd");
  assert_string_equal (json_string_value (json_object_get (
    json_object_get (r, "labels"), "app")), "db");
  assert_int_equal (int_field (r, "connections"), 0);
  assert_int_equal (int_field (r, "allocated"), 0);
  assert_int_equal (int_field (r, "extents"), 0);
  assert_true (int_field (r, "created") > 1600000000);
  assert_true (int_field (r, "id") >= 0);
  json_decref (reply);

  /* Type defaults to ssd; labels default to none. */
  r = ok ("{\"op\": \"volume.create\", \"args\": {\"name\": \"a-vol\", "
          "\"size\": 4096}}", &reply);
  assert_string_equal (json_string_value (json_object_get (r, "type")),
                       "ssd");
  assert_int_equal (json_object_size (json_object_get (r, "labels")), 0);
  json_decref (reply);

  r = ok ("{\"op\": \"volume.show\", \"args\": {\"name\": \"vol1\"}}",
          &reply);
  assert_string_equal (json_string_value (json_object_get (
    json_object_get (r, "labels"), "env")), "prod");
  json_decref (reply);

  /* Listed in name order. */
  r = ok ("{\"op\": \"volume.list\"}", &reply);
  vols = json_object_get (r, "volumes");
  assert_int_equal (json_array_size (vols), 2);
  assert_string_equal (json_string_value (json_object_get (
    json_array_get (vols, 0), "name")), "a-vol");
  assert_string_equal (json_string_value (json_object_get (
    json_array_get (vols, 1), "name")), "vol1");
  json_decref (reply);

  r = ok ("{\"op\": \"volume.delete\", \"args\": {\"name\": \"vol1\"}}",
          &reply);
  assert_string_equal (json_string_value (json_object_get (r, "name")),
                       "vol1");
  json_decref (reply);
  r = ok ("{\"op\": \"volume.delete\", \"args\": {\"name\": \"a-vol\"}}",
          &reply);
  json_decref (reply);
  refused ("{\"op\": \"volume.show\", \"args\": {\"name\": \"vol1\"}}",
           "ENOENT", "volume 'vol1' does not exist");
  r = ok ("{\"op\": \"volume.list\", \"args\": {}}", &reply);
  assert_int_equal (json_array_size (json_object_get (r, "volumes")), 0);
  json_decref (reply);
}

static void
test_list_filters_by_labels (void **state)
{
  json_t *reply, *r;

  (void) state;
  do_ok ("{\"op\":\"volume.create\",\"args\":{\"name\":\"l1\","
                   "\"size\":8192,\"labels\":{\"app\":\"db\",\"env\":"
                   "\"prod\"}}}");
  do_ok ("{\"op\":\"volume.create\",\"args\":{\"name\":\"l2\","
                   "\"size\":8192,\"labels\":{\"app\":\"db\"}}}");
  do_ok ("{\"op\":\"volume.create\",\"args\":{\"name\":\"l3\","
                   "\"size\":8192}}");

  r = ok ("{\"op\":\"volume.list\",\"args\":{\"labels\":{\"app\":\"db\"}}}",
          &reply);
  assert_int_equal (json_array_size (json_object_get (r, "volumes")), 2);
  json_decref (reply);
  r = ok ("{\"op\":\"volume.list\",\"args\":{\"labels\":{\"app\":\"db\","
          "\"env\":\"prod\"}}}", &reply);
  assert_int_equal (json_array_size (json_object_get (r, "volumes")), 1);
  json_decref (reply);
  r = ok ("{\"op\":\"volume.list\",\"args\":{\"labels\":{\"app\":\"web\"}}}",
          &reply);
  assert_int_equal (json_array_size (json_object_get (r, "volumes")), 0);
  json_decref (reply);
  refused ("{\"op\":\"volume.list\",\"args\":{\"labels\":[\"app\"]}}",
           "EINVAL", "'labels' must be an object");

  json_decref (call ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"l1\"}}"));
  json_decref (call ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"l2\"}}"));
  json_decref (call ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"l3\"}}"));
}

static void
test_create_errors_name_the_problem (void **state)
{
  (void) state;
  do_ok ("{\"op\":\"volume.create\",\"args\":{\"name\":\"vol1\","
                   "\"size\":1048576}}");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"vol1\","
           "\"size\":1048576}}", "EEXIST", "volume 'vol1' already exists");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":1000}}", "EINVAL",
           "size 1000 is not a positive multiple of 4096");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":0}}", "EINVAL", "size 0 is not a positive multiple");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":-4096}}", "EINVAL", "is not a positive multiple");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4611686018427387904}}", "EINVAL",
           "exceeds the largest volume size");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":\"10G\"}}", "EINVAL",
           "'size' must be an integer number of bytes");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096.5}}", "EINVAL", "'size' must be an integer");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\"}}",
           "EINVAL", "volume.create needs the argument 'size'");
  refused ("{\"op\":\"volume.create\",\"args\":{\"size\":4096}}",
           "EINVAL", "volume.create needs the argument 'name'");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":7,\"size\":4096}}",
           "EINVAL", "argument 'name' must be a string");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"a b\","
           "\"size\":4096}}", "EINVAL", "volume name 'a b' is not valid");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v@s\","
           "\"size\":4096}}", "EINVAL", "volume name 'v@s' is not valid");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"-v\","
           "\"size\":4096}}", "EINVAL", "is not valid");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096,\"type\":\"nvme\"}}", "EINVAL",
           "unknown volume type 'nvme'; known types: ssd, hdd");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096,\"type\":true}}", "EINVAL",
           "argument 'type' must be a string");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096,\"labels\":{\"a b\":\"c\"}}}", "EINVAL",
           "label key 'a b' must be 1 to 63 characters of [A-Za-z0-9._/-]");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096,\"labels\":{\"a\":5}}}", "EINVAL",
           "label 'a' must have a string value");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096,\"labels\":{\"a\":\"x\\ny\"}}}", "EINVAL",
           "label 'a' has a value");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096,\"labels\":\"a=b\"}}", "EINVAL",
           "'labels' must be an object");
  refused ("{\"op\":\"volume.create\",\"args\":{\"name\":\"v2\","
           "\"size\":4096,\"colour\":\"red\"}}", "EINVAL",
           "unknown argument 'colour' for volume.create");
  /* Nothing was changed by any of the refusals. */
  refused ("{\"op\":\"volume.show\",\"args\":{\"name\":\"v2\"}}", "ENOENT",
           "volume 'v2' does not exist");
  json_decref (call ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"vol1\"}}"));
}

static void
test_resize_rules (void **state)
{
  json_t *reply, *r;

  (void) state;
  do_ok ("{\"op\":\"volume.create\",\"args\":{\"name\":\"rs\","
                   "\"size\":1048576}}");
  /* Growing is always allowed. */
  r = ok ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"rs\","
          "\"size\":2097152}}", &reply);
  assert_int_equal (int_field (r, "size"), 2097152);
  json_decref (reply);
  /* The same size is a no-op. */
  r = ok ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"rs\","
          "\"size\":2097152}}", &reply);
  assert_int_equal (int_field (r, "size"), 2097152);
  json_decref (reply);
  /* Shrinking needs force. */
  refused ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"rs\","
           "\"size\":1048576}}", "EPERM",
           "shrinking volume 'rs' from 2M to 1M");
  refused ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"rs\","
           "\"size\":1048576,\"force\":\"yes\"}}", "EINVAL",
           "argument 'force' must be true or false");
  r = ok ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"rs\","
          "\"size\":1048576,\"force\":true}}", &reply);
  assert_int_equal (int_field (r, "size"), 1048576);
  json_decref (reply);
  refused ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"rs\","
           "\"size\":1234}}", "EINVAL", "size 1234 is not a positive");
  refused ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"nope\","
           "\"size\":4096}}", "ENOENT", "volume 'nope' does not exist");
  refused ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"rs\"}}",
           "EINVAL", "volume.resize needs the argument 'size'");
  json_decref (call ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"rs\"}}"));
}

static void
test_shrink_over_written_data_is_refused (void **state)
{
  struct blockmap_volume *vol;
  struct blockmap_run runs[4];
  json_t *reply, *r;
  uint64_t tok;

  (void) state;
  do_ok ("{\"op\":\"volume.create\",\"args\":{\"name\":\"wr\","
                   "\"size\":4194304}}");
  /* Map a chunk near the end, as a write would. */
  assert_int_equal (blockmap_volume_open (pool, "wr", &vol), 0);
  tok = blockmap_io_begin (pool);
  assert_true (blockmap_write_prepare (vol, 4194304 - 4096, 4096, runs, 4)
               >= 1);
  blockmap_io_end (pool, tok);
  blockmap_volume_release (vol);
  refused ("{\"op\":\"volume.resize\",\"args\":{\"name\":\"wr\","
           "\"size\":1048576,\"force\":true}}", "ENOTEMPTY",
           "would cut data written beyond that size");
  r = ok ("{\"op\":\"volume.show\",\"args\":{\"name\":\"wr\"}}", &reply);
  assert_int_equal (int_field (r, "size"), 4194304);
  assert_true (int_field (r, "allocated") > 0);
  json_decref (reply);
  json_decref (call ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"wr\"}}"));
}

static void
test_delete_of_an_attached_volume_needs_force (void **state)
{
  struct blockmap_volume *vol;
  json_t *reply, *r;

  (void) state;
  do_ok ("{\"op\":\"volume.create\",\"args\":{\"name\":\"busy\","
                   "\"size\":65536}}");
  assert_int_equal (blockmap_volume_open (pool, "busy", &vol), 0);
  r = ok ("{\"op\":\"volume.show\",\"args\":{\"name\":\"busy\"}}", &reply);
  assert_int_equal (int_field (r, "connections"), 1);
  json_decref (reply);
  refused ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"busy\"}}",
           "EBUSY", "volume 'busy' has 1 client attached");
  r = ok ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"busy\","
          "\"force\":true}}", &reply);
  json_decref (reply);
  blockmap_volume_release (vol);
  refused ("{\"op\":\"volume.show\",\"args\":{\"name\":\"busy\"}}",
           "ENOENT", "does not exist");
  refused ("{\"op\":\"volume.delete\",\"args\":{\"name\":\"busy\"}}",
           "ENOENT", "volume 'busy' does not exist");
}

static void
test_pool_status_check_and_types (void **state)
{
  json_t *reply, *r, *t;

  (void) state;
  r = ok ("{\"op\":\"pool.status\"}", &reply);
  assert_int_equal (int_field (r, "format_version"), BLOCKMAP_FORMAT_VERSION);
  assert_true (int_field (r, "chunk_size") > 0);
  assert_true (int_field (r, "capacity") > 0);
  int_field (r, "used");
  int_field (r, "free");
  int_field (r, "volumes");
  int_field (r, "extents");
  int_field (r, "map_memory");
  int_field (r, "journal_bytes");
  int_field (r, "pending_chunks");
  assert_true (json_is_boolean (json_object_get (r, "recovered")));
  assert_int_equal (strlen (json_string_value (json_object_get (r, "uuid"))),
                    36);
  assert_non_null (strstr (json_string_value (json_object_get (r, "path")),
                           "pool"));
  json_decref (reply);

  r = ok ("{\"op\":\"pool.check\"}", &reply);
  assert_true (json_is_true (json_object_get (r, "ok")));
  assert_int_equal (json_array_size (json_object_get (r, "problems")), 0);
  json_decref (reply);

  r = ok ("{\"op\":\"type.list\"}", &reply);
  t = json_array_get (json_object_get (r, "types"), 0);
  assert_string_equal (json_string_value (json_object_get (t, "name")),
                       "ssd");
  assert_int_equal (int_field (t, "iops"), 3000);
  assert_int_equal (int_field (t, "throughput"), 125000000);
  assert_int_equal (int_field (t, "max_iops"), 16000);
  assert_int_equal (int_field (t, "max_throughput"), 1000000000);
  assert_int_equal (int_field (t, "iops_per_gib"), 500);
  assert_string_equal (json_string_value (json_object_get (t, "tier")),
                       "hot");
  assert_true (json_is_false (json_object_get (t, "rotational")));
  t = json_array_get (json_object_get (r, "types"), 1);
  assert_string_equal (json_string_value (json_object_get (t, "tier")),
                       "warm");
  assert_true (json_is_true (json_object_get (t, "rotational")));
  json_decref (reply);

  refused ("{\"op\":\"pool.status\",\"args\":{\"verbose\":true}}", "EINVAL",
           "unknown argument 'verbose' for pool.status; pool.status takes "
           "no arguments");
}

static void
test_requests_that_are_not_requests (void **state)
{
  (void) state;
  refused ("{\"op\": \"volume.create\"", "EINVAL",
           "the request is not valid JSON");
  refused ("hello", "EINVAL", "not valid JSON");
  refused ("{} {}", "EINVAL", "not valid JSON");
  refused ("[1, 2]", "EINVAL", "must be a JSON object");
  refused ("\"volume.list\"", "EINVAL", "must be a JSON object");
  refused ("{}", "EINVAL", "the request has no 'op'");
  refused ("{\"op\": 5}", "EINVAL", "'op' must be a string");
  refused ("{\"op\": \"volume.explode\"}", "EINVAL",
           "unknown op 'volume.explode'; known ops: pool.status");
  refused ("{\"op\": \"volume.list\", \"args\": [1]}", "EINVAL",
           "'args' must be an object");
  refused ("{\"op\": \"volume.list\", \"id\": 1}", "EINVAL",
           "unknown request key 'id'");
  refused ("{\"op\": \"volume.list\", \"op\": \"pool.status\"}", "EINVAL",
           "not valid JSON");
  refused ("{\"op\": \"volume.show\", \"args\": {\"name\": \"a\\u0000b\"}}",
           "EINVAL", "not valid JSON");
  /* Bytes that are not UTF-8 are refused, and the reply is still JSON. */
  refused ("{\"op\": \"\xff\xfe\"}", "EINVAL", "not valid JSON");
}

static void
test_a_long_unknown_name_is_quoted_safely (void **state)
{
  char line[2048];
  json_t *reply;
  const char *msg;

  (void) state;
  snprintf (line, sizeof line, "{\"op\":\"volume.show\",\"args\":"
            "{\"name\":\"%0300d\\u00e9\"}}", 0);
  reply = call (line);
  msg = json_string_value (json_object_get (json_object_get (reply, "error"),
                                            "message"));
  assert_non_null (msg);
  assert_true (strlen (msg) < 256);
  assert_non_null (strstr (msg, "..."));
  json_decref (reply);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_create_show_list_delete),
    cmocka_unit_test (test_list_filters_by_labels),
    cmocka_unit_test (test_create_errors_name_the_problem),
    cmocka_unit_test (test_resize_rules),
    cmocka_unit_test (test_shrink_over_written_data_is_refused),
    cmocka_unit_test (test_delete_of_an_attached_volume_needs_force),
    cmocka_unit_test (test_pool_status_check_and_types),
    cmocka_unit_test (test_requests_that_are_not_requests),
    cmocka_unit_test (test_a_long_unknown_name_is_quoted_safely),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
