/* tests/unit/test-admin-util.h: a real pool in a temporary directory
 * and admin_handle_request() around it, for the admin unit tests.
 * Included by one test program each (static definitions).
 */
#ifndef STRATA_TEST_ADMIN_UTIL_H
#define STRATA_TEST_ADMIN_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

static char dir[] = "/tmp/strata-test-admin.XXXXXX";   /* per program */
static char pool_path[256];
static struct blockmap_pool *pool;
static struct config *cfg;

static int
setup (void **state)
{
  char err[256];

  (void) state;
  if (mkdtemp (dir) == NULL)
    return -1;
  snprintf (pool_path, sizeof pool_path, "%s/pool", dir);
  if (blockmap_pool_init (pool_path, &(struct blockmap_pool_opts) {
        .hot_capacity = UINT64_C (1) << 30 }) < 0)
    return -1;
  if (blockmap_pool_open (pool_path, &pool) < 0)
    return -1;
  return config_load (NULL, &cfg, err, sizeof err);
}

static int
teardown (void **state)
{
  char cmd[300];

  (void) state;
  blockmap_pool_close (pool);
  config_free (cfg);
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  return system (cmd) == 0 ? 0 : -1;
}

/* Send the request LINE; return the parsed reply (caller decrefs). */
static json_t *
call (const char *line)
{
  char *reply = admin_handle_request (pool, cfg, line, strlen (line));
  json_t *j;

  assert_non_null (reply);
  assert_null (strchr (reply, '\n'));   /* one line on the wire */
  j = json_loads (reply, 0, NULL);
  if (j == NULL)
    fail_msg ("reply is not JSON: %s", reply);
  free (reply);
  return j;
}

/* The request succeeds; returns its result (borrowed from *REPLY). */
static json_t *
ok (const char *line, json_t **reply)
{
  *reply = call (line);
  if (!json_is_true (json_object_get (*reply, "ok"))) {
    char *s = json_dumps (*reply, 0);
    fail_msg ("%s -> %s", line, s);
  }
  return json_object_get (*reply, "result");
}

/* The request fails with errno name CODE and a message containing
 * WANT.
 */
static void
refused (const char *line, const char *code, const char *want)
{
  json_t *reply = call (line), *e;
  const char *msg;

  if (!json_is_false (json_object_get (reply, "ok"))) {
    char *s = json_dumps (reply, 0);
    fail_msg ("%s was not refused: %s", line, s);
  }
  e = json_object_get (reply, "error");
  msg = json_string_value (json_object_get (e, "message"));
  assert_non_null (msg);
  if (strcmp (json_string_value (json_object_get (e, "code")), code) != 0
      || strstr (msg, want) == NULL)
    fail_msg ("%s -> %s: %s; wanted %s: ...%s...", line,
              json_string_value (json_object_get (e, "code")), msg, code,
              want);
  json_decref (reply);
}

/* The request succeeds; its reply is not needed. */
static void
do_ok (const char *line)
{
  json_t *reply;

  ok (line, &reply);
  json_decref (reply);
}

static json_int_t
int_field (json_t *o, const char *key)
{
  json_t *v = json_object_get (o, key);

  if (!json_is_integer (v))
    fail_msg ("field '%s' is not an integer", key);
  return json_integer_value (v);
}

#endif /* STRATA_TEST_ADMIN_UTIL_H */
