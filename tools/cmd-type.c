/* tools/cmd-type.c: strata type list. */
#include <inttypes.h>
#include <stdio.h>

#include "strata.h"

int
cmd_type_list (struct cli *cli)
{
  json_t *r, *t;
  struct table tab;
  size_t i;
  int ret;

  if ((ret = client_call (cli, "type.list", NULL, &r)) != EXIT_DONE)
    return ret;
  if (cli->json) {
    print_json (r);
    json_decref (r);
    return EXIT_DONE;
  }
  table_init (&tab, 8, "NAME", "TIER", "IOPS", "THROUGHPUT", "MAX_IOPS",
              "MAX_THROUGHPUT", "IOPS/GIB", "ROTATIONAL");
  json_array_foreach (json_object_get (r, "types"), i, t) {
    char iops[24], max_iops[24], per_gib[24];

    /* 0 means no limit for the budgets and none for iops_per_gib. */
    snprintf (iops, sizeof iops, jint (t, "iops") ? "%" PRIu64 : "-",
              jint (t, "iops"));
    snprintf (max_iops, sizeof max_iops,
              jint (t, "max_iops") ? "%" PRIu64 : "-", jint (t, "max_iops"));
    snprintf (per_gib, sizeof per_gib,
              jint (t, "iops_per_gib") ? "%" PRIu64 : "-",
              jint (t, "iops_per_gib"));
    table_add (&tab, jstr (t, "name"), jstr (t, "tier"), iops,
               jint (t, "throughput") ? fmt_rate (jint (t, "throughput"))
                                      : "-",
               max_iops,
               jint (t, "max_throughput")
               ? fmt_rate (jint (t, "max_throughput")) : "-",
               per_gib,
               json_is_true (json_object_get (t, "rotational")) ? "yes"
                                                                 : "no");
  }
  table_print (&tab);
  json_decref (r);
  return EXIT_DONE;
}
