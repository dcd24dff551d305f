/* tools/cmd-pool.c: strata pool init | status | check.
 *
 * `pool init` and `pool check --pool PATH` work offline, on the pool
 * directory itself through blockmap; blockmap refuses a pool another
 * process holds (-EBUSY), so they cannot race a running stratad.  The
 * rest ask stratad over the admin socket.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/blockmap.h"
#include "strata.h"

int
cmd_pool_init (struct cli *cli)
{
  struct blockmap_pool_opts opts = { 0 };
  const char *path = cli->argv[0], *s;
  struct blockmap_pool_info pi;
  struct blockmap_pool *pool;
  uint64_t v;
  int r;

  if ((s = cli_opt (cli, "chunk-size")) != NULL) {
    if ((r = parse_size_opt (cli, "--chunk-size", s, &v)) != 0)
      return r;
    if (v < 4096 || v > 16 * 1024 * 1024 || (v & (v - 1)) != 0)
      return cli_usage (cli, "--chunk-size %s is not a power of two from "
                        "4K to 16M", s);
    opts.chunk_size = v;
  }
  if ((s = cli_opt (cli, "size")) != NULL) {
    if ((r = parse_size_opt (cli, "--size", s, &v)) != 0)
      return r;
    if (v == 0)
      return cli_usage (cli, "--size must be more than 0");
    opts.hot_capacity = v;
  }

  r = blockmap_pool_init (path, &opts);
  if (r == -EEXIST)
    return cli_fail ("cannot create a pool in %s: it already holds a pool "
                     "or other files (pool init needs a new or empty "
                     "directory)", path);
  if (r == -EINVAL)
    return cli_fail ("cannot create a pool in %s: the options are not "
                     "valid (chunk size a power of two from 4K to 16M; "
                     "size at least one chunk)", path);
  if (r == -ENOENT) {
    char parent[4096];

    snprintf (parent, sizeof parent, "%s", path);
    return cli_fail ("cannot create a pool in %s: its parent directory %s "
                     "does not exist", path, dirname (parent));
  }
  if (r < 0)
    return cli_fail ("cannot create a pool in %s: %s", path, strerror (-r));

  /* Open it once to report what was made (and prove it opens). */
  r = blockmap_pool_open (path, &pool);
  if (r < 0)
    return cli_fail ("created a pool in %s, but it does not open: %s",
                     path, strerror (-r));
  blockmap_pool_info (pool, &pi);
  blockmap_pool_close (pool);

  if (cli->json) {
    json_t *j = json_pack ("{s:s, s:s, s:I, s:I, s:I}",
                           "path", pi.path, "uuid", pi.uuid,
                           "format_version", (json_int_t) pi.format_version,
                           "chunk_size", (json_int_t) pi.chunk_size,
                           "capacity", (json_int_t) pi.hot_capacity);
    print_json (j);
    json_decref (j);
  }
  else
    printf ("created pool %s: uuid %s, chunk size %s, capacity %s, "
            "format %" PRIu32 "\n", pi.path, pi.uuid,
            fmt_size (pi.chunk_size), fmt_size (pi.hot_capacity),
            pi.format_version);
  return EXIT_DONE;
}

int
cmd_pool_status (struct cli *cli)
{
  json_t *r;
  uint64_t cap, used;
  int ret;

  if ((ret = client_call (cli, "pool.status", NULL, &r)) != EXIT_DONE)
    return ret;
  if (cli->json) {
    print_json (r);
    json_decref (r);
    return EXIT_DONE;
  }
  cap = jint (r, "capacity");
  used = jint (r, "used");
  printf ("pool:            %s\n", jstr (r, "path"));
  printf ("uuid:            %s\n", jstr (r, "uuid"));
  printf ("format version:  %" PRIu64 "\n", jint (r, "format_version"));
  printf ("chunk size:      %s\n", fmt_size (jint (r, "chunk_size")));
  printf ("capacity:        %s\n", fmt_size (cap));
  printf ("used:            %s (%.1f%%)\n", fmt_size (used),
          cap ? 100.0 * used / cap : 0.0);
  printf ("free:            %s\n", fmt_size (jint (r, "free")));
  printf ("volumes:         %" PRIu64 "\n", jint (r, "volumes"));
  printf ("extents:         %" PRIu64 "\n", jint (r, "extents"));
  printf ("map memory:      %s\n", fmt_size (jint (r, "map_memory")));
  printf ("journal:         %s\n", fmt_size (jint (r, "journal_bytes")));
  printf ("pending chunks:  %" PRIu64 "\n", jint (r, "pending_chunks"));
  printf ("recovered:       %s\n",
          json_is_true (json_object_get (r, "recovered"))
          ? "yes (the journal was replayed at open)" : "no");
  if (jint (r, "journal_dropped") > 0)
    printf ("WARNING:         %" PRIu64 " whole journal records after a "
            "damaged one were dropped at open (see the daemon's log)\n",
            jint (r, "journal_dropped"));
  json_decref (r);
  return EXIT_DONE;
}

static void
collect (void *opaque, const char *msg)
{
  json_array_append_new (opaque, json_string (msg));
}

/* Print the outcome of a check; exit 1 if there were problems. */
static int
report_check (struct cli *cli, const char *where, json_t *problems)
{
  size_t i, n = json_array_size (problems);

  if (cli->json) {
    json_t *j = json_pack ("{s:b, s:O}", "ok", n == 0, "problems",
                           problems);
    print_json (j);
    json_decref (j);
  }
  else {
    for (i = 0; i < n; i++)
      printf ("problem: %s\n", json_string_value (json_array_get (problems,
                                                                  i)));
    if (n == 0)
      printf ("%s: no problems found\n", where);
    else
      printf ("%s: %zu problem%s found\n", where, n, n == 1 ? "" : "s");
  }
  return n == 0 ? EXIT_DONE : EXIT_REFUSED;
}

static int
check_offline (struct cli *cli, const char *path)
{
  struct blockmap_pool *pool;
  json_t *problems;
  int r, ret;

  r = blockmap_pool_open (path, &pool);
  switch (r) {
  case 0: break;
  case -EBUSY:
    return cli_fail ("pool %s is in use by a running stratad; run 'strata "
                     "pool check' without --pool to check it through the "
                     "daemon", path);
  case -ENOENT:
    return cli_fail ("there is no pool at %s", path);
  case -EUCLEAN:
    return cli_fail ("pool %s is damaged and does not open (the reasons "
                     "are above)", path);
  case -EPROTO:
    return cli_fail ("pool %s has a format version this strata does not "
                     "know", path);
  default:
    return cli_fail ("cannot open pool %s: %s", path, strerror (-r));
  }
  problems = json_array ();
  r = blockmap_pool_check (pool, collect, problems);
  blockmap_pool_close (pool);
  if (r < 0) {
    json_decref (problems);
    return cli_fail ("the check of pool %s could not run: %s", path,
                     strerror (-r));
  }
  ret = report_check (cli, path, problems);
  json_decref (problems);
  return ret;
}

int
cmd_pool_check (struct cli *cli)
{
  const char *path = cli_opt (cli, "pool");
  json_t *r;
  int ret;

  if (path)
    return check_offline (cli, path);
  if ((ret = client_call (cli, "pool.check", NULL, &r)) != EXIT_DONE)
    return ret;
  ret = report_check (cli, "pool", json_object_get (r, "problems"));
  json_decref (r);
  return ret;
}
