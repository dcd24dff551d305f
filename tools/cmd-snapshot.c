/* tools/cmd-snapshot.c: snapshots and snapshot policies, through
 * stratad (doc/admin-protocol.md, Snapshots):
 *
 *   strata snapshot create VOLUME NAME [--tag KEY=VALUE]...
 *   strata snapshot list [VOLUME]
 *   strata snapshot show VOLUME@SNAPSHOT
 *   strata snapshot delete VOLUME@SNAPSHOT [--force]
 *   strata snapshot diff VOLUME@SNAPSHOT VOLUME@SNAPSHOT|VOLUME
 *   strata snapshot policy set VOLUME --schedule CRON [--keep-count N]
 *                              [--keep-age DURATION] [--tag KEY=VALUE]...
 *   strata snapshot policy show VOLUME
 *   strata snapshot policy list
 *   strata snapshot policy clear VOLUME
 *
 * A snapshot is named VOLUME@SNAPSHOT (its NBD export name) or, where
 * a command takes it as arguments, VOLUME SNAPSHOT.  Unlike the volume
 * commands, these check names here: a snapshot's name has to be taken
 * apart from its volume's before it can be sent, and checking both
 * halves with the daemon's rule is what taking it apart means.
 * Schedules and durations are checked here too, with snapshot/'s own
 * parsers, so the error names the cron field before anything is sent;
 * the daemon checks them again with the same code.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapshot.h"
#include "strata.h"

/* The --tag options as an object, or NULL (and *RET set) on error. */
static json_t *
tags_from_opts (struct cli *cli, int *ret)
{
  const char **kv;
  json_t *tags = json_object ();
  size_t n, i;

  *ret = EXIT_DONE;
  kv = cli_opt_all (cli, "tag", &n);
  for (i = 0; i < n; i++) {
    if ((*ret = parse_key_value (cli, "tag", kv[i], tags)) != 0) {
      json_decref (tags);
      return NULL;
    }
  }
  return tags;
}

/* The snapshot the arguments name: VOLUME@SNAPSHOT, or VOLUME
 * SNAPSHOT.  Returns 0, or EXIT_USAGE after printing why.
 */
static int
snapshot_args (struct cli *cli, struct snap_ref *ref)
{
  int r;

  if (cli->argc == 1) {
    if (strchr (cli->argv[0], '@') == NULL)
      return cli_usage (cli, "%s", cli->cmd->args_missing);
    return parse_snap_ref (cli, NULL, cli->argv[0], ref);
  }
  if ((r = check_name (cli, "volume", cli->argv[0])) != 0
      || (r = check_name (cli, "snapshot", cli->argv[1])) != 0)
    return r;
  snprintf (ref->volume, sizeof ref->volume, "%s", cli->argv[0]);
  snprintf (ref->name, sizeof ref->name, "%s", cli->argv[1]);
  return 0;
}

/* The result R of an op, printed as JSON, or by SHOW for humans. */
static int
print_result (struct cli *cli, json_t *r, void (*show) (json_t *))
{
  if (cli->json)
    print_json (r);
  else
    show (r);
  json_decref (r);
  return EXIT_DONE;
}

/* ---- Snapshots --------------------------------------------------------- */

static void
show_created (json_t *s)
{
  printf ("snapshot '%s' created: %s, tags %s\n", jstr (s, "full_name"),
          fmt_size (jint (s, "size")),
          fmt_labels (json_object_get (s, "tags")));
}

int
cmd_snapshot_create (struct cli *cli)
{
  struct snap_ref ref;
  json_t *tags, *args, *r;
  int ret;

  if ((ret = snapshot_args (cli, &ref)) != 0)
    return ret;
  if ((tags = tags_from_opts (cli, &ret)) == NULL)
    return ret;
  args = json_pack ("{s:s, s:s}", "volume", ref.volume, "name", ref.name);
  if (args == NULL) {
    json_decref (tags);
    return cli_fail ("out of memory");
  }
  if (json_object_size (tags) > 0)
    json_object_set_new (args, "tags", tags);
  else
    json_decref (tags);
  if ((ret = client_call (cli, "snapshot.create", args, &r)) != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_created);
}

static void
show_list (json_t *r)
{
  struct table t;
  json_t *s;
  size_t i;

  table_init (&t, 6, "SNAPSHOT", "CREATED", "SIZE", "ALLOCATED", "POLICY",
              "TAGS");
  json_array_foreach (json_object_get (r, "snapshots"), i, s)
    table_add (&t, jstr (s, "full_name"), fmt_time (jint (s, "created")),
               fmt_size (jint (s, "size")), fmt_size (jint (s, "allocated")),
               json_is_true (json_object_get (s, "policy")) ? "yes" : "no",
               fmt_labels (json_object_get (s, "tags")));
  table_print (&t);
}

int
cmd_snapshot_list (struct cli *cli)
{
  json_t *args = NULL, *r;
  int ret;

  if (cli->argc > 0) {
    if ((ret = check_name (cli, "volume", cli->argv[0])) != 0)
      return ret;
    args = json_pack ("{s:s}", "volume", cli->argv[0]);
  }
  if ((ret = client_call (cli, "snapshot.list", args, &r)) != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_list);
}

static void
show_snapshot (json_t *s)
{
  printf ("snapshot:     %s\n", jstr (s, "full_name"));
  printf ("volume:       %s\n", jstr (s, "volume"));
  printf ("id:           %" PRIu64 "\n", jint (s, "id"));
  printf ("size:         %s (%" PRIu64 " bytes)\n",
          fmt_size (jint (s, "size")), jint (s, "size"));
  printf ("type:         %s\n", jstr (s, "type"));
  printf ("allocated:    %s\n", fmt_size (jint (s, "allocated")));
  printf ("extents:      %" PRIu64 "\n", jint (s, "extents"));
  printf ("created:      %s\n", fmt_time (jint (s, "created")));
  printf ("policy:       %s\n",
          json_is_true (json_object_get (s, "policy")) ? "yes" : "no");
  printf ("connections:  %" PRIu64 "\n", jint (s, "connections"));
  printf ("tags:         %s\n", fmt_labels (json_object_get (s, "tags")));
}

int
cmd_snapshot_show (struct cli *cli)
{
  struct snap_ref ref;
  json_t *r;
  int ret;

  if ((ret = snapshot_args (cli, &ref)) != 0)
    return ret;
  ret = client_call (cli, "snapshot.show",
                     json_pack ("{s:s, s:s}", "volume", ref.volume,
                                "name", ref.name), &r);
  if (ret != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_snapshot);
}

static void
show_deleted (json_t *r)
{
  printf ("snapshot '%s@%s' deleted\n", jstr (r, "volume"), jstr (r, "name"));
}

int
cmd_snapshot_delete (struct cli *cli)
{
  bool force = cli_opt (cli, "force") != NULL;
  struct snap_ref ref;
  json_t *r;
  int ret;

  if ((ret = snapshot_args (cli, &ref)) != 0)
    return ret;
  ret = client_call (cli, "snapshot.delete",
                     json_pack ("{s:s, s:s, s:b}", "volume", ref.volume,
                                "name", ref.name, "force", force), &r);
  if (ret != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_deleted);
}

/* A byte count and its size in units: "1048576 (1M)". */
static void
bytes_and_size (char *buf, size_t len, uint64_t bytes)
{
  snprintf (buf, len, "%" PRIu64 " (%s)", bytes, fmt_size (bytes));
}

static void
show_diff (json_t *r)
{
  json_t *ranges = json_object_get (r, "ranges"), *x;
  size_t i, n = json_array_size (ranges);
  struct table t;

  if (n > 0) {
    table_init (&t, 2, "OFFSET", "LENGTH");
    json_array_foreach (ranges, i, x) {
      char off[64], len[64];

      bytes_and_size (off, sizeof off, jint (x, "offset"));
      bytes_and_size (len, sizeof len, jint (x, "length"));
      table_add (&t, off, len);
    }
    table_print (&t);
  }
  printf ("%zu range%s, %s changed of %s\n", n, n == 1 ? "" : "s",
          fmt_size (jint (r, "changed_bytes")), fmt_size (jint (r, "size")));
}

int
cmd_snapshot_diff (struct cli *cli)
{
  const char *to = cli->argv[1];
  struct snap_ref ref;
  json_t *r;
  int ret;

  if ((ret = parse_snap_ref (cli, NULL, cli->argv[0], &ref)) != 0)
    return ret;
  if (strchr (to, '@'))
    ret = parse_snap_ref (cli, NULL, to, &ref);
  else
    ret = check_name (cli, "volume", to);
  if (ret != 0)
    return ret;
  ret = client_call (cli, "snapshot.diff",
                     json_pack ("{s:s, s:s}", "from", cli->argv[0], "to", to),
                     &r);
  if (ret != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_diff);
}

/* ---- Policies ---------------------------------------------------------- */

/* keep_count or keep_age of policy P for humans: "-" for no limit. */
static const char *
fmt_keep_count (json_t *p)
{
  static char b[24];

  if (jint (p, "keep_count") == 0)
    return "-";
  snprintf (b, sizeof b, "%" PRIu64, jint (p, "keep_count"));
  return b;
}

static const char *
fmt_keep_age (json_t *p)
{
  static char b[24];

  if ((int64_t) jint (p, "keep_age") <= 0)
    return "-";
  snap_duration_format ((int64_t) jint (p, "keep_age"), b, sizeof b);
  return b;
}

static const char *
fmt_next_run (json_t *p)
{
  return json_is_integer (json_object_get (p, "next_run"))
    ? fmt_time (jint (p, "next_run")) : "never";
}

/* {volume, policy}, for humans. */
static void
show_policy (json_t *r)
{
  json_t *p = json_object_get (r, "policy");

  if (!json_is_object (p)) {
    printf ("volume '%s' has no snapshot policy\n", jstr (r, "volume"));
    return;
  }
  printf ("volume:       %s\n", jstr (r, "volume"));
  printf ("schedule:     %s (UTC)\n", jstr (p, "schedule"));
  printf ("keep count:   %s\n", jint (p, "keep_count") ? fmt_keep_count (p)
          : "no limit");
  printf ("keep age:     %s\n", (int64_t) jint (p, "keep_age") > 0
          ? fmt_keep_age (p) : "no limit");
  printf ("tags:         %s\n", fmt_labels (json_object_get (p, "tags")));
  printf ("next run:     %s\n", fmt_next_run (p));
}

static int
parse_keep_count (struct cli *cli, const char *s, uint64_t *out)
{
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull (s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v == 0
      || v > UINT32_MAX)
    return cli_usage (cli, "--keep-count '%s' is not a whole number from 1 "
                      "to %" PRIu32, s, UINT32_MAX);
  *out = v;
  return 0;
}

int
cmd_snapshot_policy_set (struct cli *cli)
{
  const char *schedule = cli_opt (cli, "schedule");
  const char *count_s = cli_opt (cli, "keep-count");
  const char *age_s = cli_opt (cli, "keep-age");
  struct snap_cron cron;
  char err[256];
  uint64_t count = 0;
  int64_t age = 0;
  json_t *tags, *args, *r;
  int ret;

  if ((ret = check_name (cli, "volume", cli->argv[0])) != 0)
    return ret;
  if (schedule == NULL)
    return cli_usage (cli, "%s", cli->cmd->args_missing);
  if (snap_cron_parse (schedule, &cron, err, sizeof err) < 0)
    return cli_usage (cli, "--schedule '%s' is not a schedule: %s", schedule,
                      err);
  if (count_s && (ret = parse_keep_count (cli, count_s, &count)) != 0)
    return ret;
  if (age_s && snap_duration_parse (age_s, &age) < 0)
    return cli_usage (cli, "--keep-age '%s' is not a duration such as 90s, "
                      "30m, 12h, 7d or 2w", age_s);
  if ((tags = tags_from_opts (cli, &ret)) == NULL)
    return ret;
  args = json_pack ("{s:s, s:s}", "volume", cli->argv[0], "schedule",
                    schedule);
  if (args == NULL) {
    json_decref (tags);
    return cli_fail ("out of memory");
  }
  if (count_s)
    json_object_set_new (args, "keep_count", json_integer (count));
  if (age_s)
    json_object_set_new (args, "keep_age", json_integer (age));
  if (json_object_size (tags) > 0)
    json_object_set_new (args, "tags", tags);
  else
    json_decref (tags);
  ret = client_call (cli, "snapshot.policy.set", args, &r);
  if (ret != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_policy);
}

int
cmd_snapshot_policy_show (struct cli *cli)
{
  json_t *r;
  int ret;

  if ((ret = check_name (cli, "volume", cli->argv[0])) != 0)
    return ret;
  ret = client_call (cli, "snapshot.policy.show",
                     json_pack ("{s:s}", "volume", cli->argv[0]), &r);
  if (ret != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_policy);
}

static void
show_policies (json_t *r)
{
  struct table t;
  json_t *x, *p;
  size_t i;

  table_init (&t, 6, "VOLUME", "SCHEDULE", "KEEP COUNT", "KEEP AGE",
              "NEXT RUN", "TAGS");
  json_array_foreach (json_object_get (r, "policies"), i, x) {
    p = json_object_get (x, "policy");
    table_add (&t, jstr (x, "volume"), jstr (p, "schedule"),
               fmt_keep_count (p), fmt_keep_age (p), fmt_next_run (p),
               fmt_labels (json_object_get (p, "tags")));
  }
  table_print (&t);
}

int
cmd_snapshot_policy_list (struct cli *cli)
{
  json_t *r;
  int ret;

  if ((ret = client_call (cli, "snapshot.policy.list", NULL, &r))
      != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_policies);
}

static void
show_cleared (json_t *r)
{
  printf ("snapshot policy of volume '%s' removed (its snapshots stay)\n",
          jstr (r, "volume"));
}

int
cmd_snapshot_policy_clear (struct cli *cli)
{
  json_t *r;
  int ret;

  if ((ret = check_name (cli, "volume", cli->argv[0])) != 0)
    return ret;
  ret = client_call (cli, "snapshot.policy.clear",
                     json_pack ("{s:s}", "volume", cli->argv[0]), &r);
  if (ret != EXIT_DONE)
    return ret;
  return print_result (cli, r, show_cleared);
}
