/* tools/cmd-volume.c: strata volume create | list | show | resize |
 * delete, through stratad.  Sizes are parsed here (units); everything
 * else is validated by the daemon, whose message is printed as is.
 * `volume create --from-snapshot` makes a clone (doc/admin-protocol.md,
 * Snapshots).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata.h"

/* The --label options as an object, or NULL (and *RET set) on error. */
static json_t *
labels_from_opts (struct cli *cli, int *ret)
{
  const char **kv;
  json_t *labels = json_object ();
  size_t n, i;

  *ret = EXIT_DONE;
  kv = cli_opt_all (cli, "label", &n);
  for (i = 0; i < n; i++) {
    if ((*ret = parse_label (cli, kv[i], labels)) != 0) {
      json_decref (labels);
      return NULL;
    }
  }
  return labels;
}

static void
show_volume (json_t *v)
{
  time_t created = jint (v, "created");
  char when[64];
  struct tm tm;

  if (gmtime_r (&created, &tm))
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  else
    snprintf (when, sizeof when, "%" PRIu64, jint (v, "created"));
  printf ("name:         %s\n", jstr (v, "name"));
  printf ("id:           %" PRIu64 "\n", jint (v, "id"));
  printf ("size:         %s (%" PRIu64 " bytes)\n", fmt_size (jint (v, "size")),
          jint (v, "size"));
  printf ("type:         %s\n", jstr (v, "type"));
  printf ("allocated:    %s\n", fmt_size (jint (v, "allocated")));
  printf ("extents:      %" PRIu64 "\n", jint (v, "extents"));
  printf ("created:      %s\n", when);
  printf ("connections:  %" PRIu64 "\n", jint (v, "connections"));
  printf ("labels:       %s\n", fmt_labels (json_object_get (v, "labels")));
}

/* With --from-snapshot the daemon takes the size (unless --size is
 * given) and the type from the snapshot; only the snapshot's name is
 * checked here, since it must be taken apart to be checked at all.
 */
int
cmd_volume_create (struct cli *cli)
{
  const char *name = cli->argv[0], *size_s = cli_opt (cli, "size");
  const char *type = cli_opt (cli, "type");
  const char *from = cli_opt (cli, "from-snapshot");
  struct snap_ref ref;
  json_t *labels, *args, *r;
  uint64_t size = 0;
  int ret;

  if (size_s == NULL && from == NULL)
    return cli_usage (cli, "volume create needs NAME and --size or "
                      "--from-snapshot");
  if (size_s && (ret = parse_size_opt (cli, "--size", size_s, &size)) != 0)
    return ret;
  if (from
      && (ret = parse_snap_ref (cli, "--from-snapshot", from, &ref)) != 0)
    return ret;
  if ((labels = labels_from_opts (cli, &ret)) == NULL)
    return ret;
  args = json_pack ("{s:s, s:o}", "name", name, "labels", labels);
  if (args == NULL)
    return cli_usage (cli, "volume name '%s' is not UTF-8 text", name);
  if (size_s)
    json_object_set_new (args, "size", json_integer ((json_int_t) size));
  if (from)
    json_object_set_new (args, "from_snapshot", json_string (from));
  if (type)
    json_object_set_new (args, "type", json_string (type));
  if ((ret = cli_budget_args (cli, args)) != 0) {
    json_decref (args);
    return ret;
  }
  if ((ret = client_call (cli, "volume.create", args, &r)) != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else
    printf ("volume '%s' created%s%s: %s, type %s, labels %s\n",
            jstr (r, "name"), from ? " from " : "", from ? from : "",
            fmt_size (jint (r, "size")), jstr (r, "type"),
            fmt_labels (json_object_get (r, "labels")));
  json_decref (r);
  return EXIT_DONE;
}

int
cmd_volume_list (struct cli *cli)
{
  json_t *labels, *args = NULL, *r, *vols, *v;
  struct table t;
  size_t i;
  int ret;

  if ((labels = labels_from_opts (cli, &ret)) == NULL)
    return ret;
  if (json_object_size (labels) > 0)
    args = json_pack ("{s:o}", "labels", labels);
  else
    json_decref (labels);
  if ((ret = client_call (cli, "volume.list", args, &r)) != EXIT_DONE)
    return ret;
  if (cli->json) {
    print_json (r);
    json_decref (r);
    return EXIT_DONE;
  }
  vols = json_object_get (r, "volumes");
  table_init (&t, 6, "NAME", "SIZE", "TYPE", "ALLOCATED", "CONNS",
              "LABELS");
  json_array_foreach (vols, i, v) {
    char conns[24];

    snprintf (conns, sizeof conns, "%" PRIu64, jint (v, "connections"));
    table_add (&t, jstr (v, "name"), fmt_size (jint (v, "size")),
               jstr (v, "type"), fmt_size (jint (v, "allocated")), conns,
               fmt_labels (json_object_get (v, "labels")));
  }
  table_print (&t);
  json_decref (r);
  return EXIT_DONE;
}

int
cmd_volume_show (struct cli *cli)
{
  json_t *r;
  int ret;

  ret = client_call (cli, "volume.show",
                     json_pack ("{s:s}", "name", cli->argv[0]), &r);
  if (ret != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else
    show_volume (r);
  json_decref (r);
  return EXIT_DONE;
}

int
cmd_volume_resize (struct cli *cli)
{
  const char *name = cli->argv[0], *size_s = cli_opt (cli, "size");
  bool force = cli_opt (cli, "force") != NULL, grow = false;
  uint64_t size, old;
  json_t *r;
  int ret;

  if (size_s == NULL)
    return cli_usage (cli, "volume resize needs NAME and --size");
  if (size_s[0] == '+') {
    grow = true;
    size_s++;
  }
  if ((ret = parse_size_opt (cli, "--size", size_s, &size)) != 0)
    return ret;

  /* The current size: to grow by, and to report the change. */
  ret = client_call (cli, "volume.show", json_pack ("{s:s}", "name", name),
                     &r);
  if (ret != EXIT_DONE)
    return ret;
  old = jint (r, "size");
  json_decref (r);
  if (grow && __builtin_add_overflow (old, size, &size))
    return cli_usage (cli, "--size +%s overflows", size_s);

  ret = client_call (cli, "volume.resize",
                     json_pack ("{s:s, s:I, s:b}", "name", name, "size",
                                (json_int_t) size, "force", force), &r);
  if (ret != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else if (jint (r, "size") == old)
    printf ("volume '%s' is already %s\n", name, fmt_size (old));
  else
    printf ("volume '%s' resized from %s to %s\n", name, fmt_size (old),
            fmt_size (jint (r, "size")));
  json_decref (r);
  return EXIT_DONE;
}

int
cmd_volume_delete (struct cli *cli)
{
  bool force = cli_opt (cli, "force") != NULL;
  json_t *r;
  int ret;

  ret = client_call (cli, "volume.delete",
                     json_pack ("{s:s, s:b}", "name", cli->argv[0],
                                "force", force), &r);
  if (ret != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else
    printf ("volume '%s' deleted\n", jstr (r, "name"));
  json_decref (r);
  return EXIT_DONE;
}
