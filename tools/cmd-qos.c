/* tools/cmd-qos.c: budgets, metrics, alarms and the event log:
 *
 *   strata volume modify NAME [--iops N] [--throughput RATE] [--type T]
 *   strata volume status NAME
 *   strata metrics volume NAME [--watch] [--interval S] [--count N]
 *   strata events list [--volume V] [--type T] [--since TIME] [--limit N]
 *   strata alarm set VOLUME --metric M --above X [--clear-below Y]
 *                           [--for N]
 *   strata alarm list [VOLUME]
 *   strata alarm clear VOLUME --metric M
 *
 * Numbers and rates are parsed here (rates in decimal units, as the
 * config file reads them); the daemon validates budgets against the
 * volume type and its message is printed as is.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/units.h"
#include "strata.h"

static int
parse_count_opt (struct cli *cli, const char *opt, const char *s,
                 uint64_t max, uint64_t *out)
{
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull (s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v == 0
      || v > max)
    return cli_usage (cli, "%s '%s' is not a whole number from 1 to %"
                      PRIu64, opt, s, max);
  *out = v;
  return 0;
}

static int
parse_number_opt (struct cli *cli, const char *opt, const char *s,
                  double *out)
{
  char *end;
  double v;

  errno = 0;
  v = strtod (s, &end);
  if (end == s || *end != '\0' || errno != 0 || !(v > 0) || v > 1e18)
    return cli_usage (cli, "%s '%s' is not a positive number", opt, s);
  *out = v;
  return 0;
}

int
cli_budget_args (struct cli *cli, json_t *args)
{
  const char *iops_s = cli_opt (cli, "iops"), *tput_s = cli_opt (cli,
                                                                 "throughput");
  uint64_t iops = 0, tput = 0;
  int ret;

  if (iops_s) {
    if ((ret = parse_count_opt (cli, "--iops", iops_s, UINT32_MAX,
                                &iops)) != 0)
      return ret;
    json_object_set_new (args, "iops", json_integer (iops));
  }
  if (tput_s) {
    if (units_parse_rate (tput_s, &tput) < 0 || tput == 0)
      return cli_usage (cli, "--throughput '%s' is not a rate such as "
                        "125MB (decimal units, bytes per second) or 100MiB",
                        tput_s);
    json_object_set_new (args, "throughput", json_integer (tput));
  }
  return 0;
}

static const char *
fmt_budget (uint64_t iops, uint64_t tput)
{
  static char b[96];
  char i[32];

  snprintf (i, sizeof i, iops ? "%" PRIu64 " IOPS" : "unlimited IOPS", iops);
  snprintf (b, sizeof b, "%s, %s", i,
            tput ? fmt_rate (tput) : "unlimited throughput");
  return b;
}

int
cmd_volume_modify (struct cli *cli)
{
  const char *type = cli_opt (cli, "type");
  json_t *args, *r;
  int ret;

  if (type == NULL && cli_opt (cli, "iops") == NULL
      && cli_opt (cli, "throughput") == NULL)
    return cli_usage (cli, "volume modify needs --iops, --throughput or "
                      "--type");
  args = json_pack ("{s:s}", "name", cli->argv[0]);
  if (args == NULL)
    return cli_usage (cli, "volume name '%s' is not UTF-8 text",
                      cli->argv[0]);
  if ((ret = cli_budget_args (cli, args)) != 0) {
    json_decref (args);
    return ret;
  }
  if (type)
    json_object_set_new (args, "type", json_string (type));
  if ((ret = client_call (cli, "volume.modify", args, &r)) != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else
    printf ("volume '%s' modified: type %s, %s\n", jstr (r, "name"),
            jstr (r, "type"), fmt_budget (jint (r, "iops"),
                                          jint (r, "throughput")));
  json_decref (r);
  return EXIT_DONE;
}

static void
print_latency (const char *what, json_t *l)
{
  if (jint (l, "count") == 0) {
    printf ("  %-6s  -\n", what);
    return;
  }
  printf ("  %-6s  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms"
          "  (%" PRIu64 " requests)\n", what,
          json_real_value (json_object_get (l, "p50_ms")),
          json_real_value (json_object_get (l, "p90_ms")),
          json_real_value (json_object_get (l, "p99_ms")),
          json_real_value (json_object_get (l, "p99.9_ms")),
          jint (l, "count"));
}

int
cmd_volume_status (struct cli *cli)
{
  json_t *r, *b, *m, *a, *x;
  size_t i;
  int ret;

  ret = client_call (cli, "volume.status",
                     json_pack ("{s:s}", "name", cli->argv[0]), &r);
  if (ret != EXIT_DONE)
    return ret;
  if (cli->json) {
    print_json (r);
    json_decref (r);
    return EXIT_DONE;
  }
  b = json_object_get (r, "budget");
  m = json_object_get (r, "metrics");
  printf ("name:         %s\n", jstr (r, "name"));
  printf ("type:         %s (tier %s%s)\n", jstr (r, "type"), jstr (b, "tier"),
          json_is_true (json_object_get (b, "rotational")) ? ", rotational"
          : "");
  printf ("size:         %s, %s allocated, %.2f per month\n",
          fmt_size (jint (r, "size")), fmt_size (jint (r, "allocated")),
          json_real_value (json_object_get (r, "cost_per_month")));
  printf ("budget:       %s, one operation per %s, burst %" PRIu64 " s\n",
          fmt_budget (jint (b, "iops"), jint (b, "throughput")),
          fmt_size (jint (b, "op_size")), jint (b, "burst"));
  printf ("connections:  %" PRIu64 "\n", jint (r, "connections"));
  x = json_object_get (m, "requests");
  printf ("requests:     %" PRIu64 " read, %" PRIu64 " write, %" PRIu64
          " other; %" PRIu64 " in flight; %" PRIu64 " errors\n",
          jint (x, "read"), jint (x, "write"), jint (x, "other"),
          jint (m, "in_flight"), jint (m, "errors"));
  x = json_object_get (m, "bytes");
  printf ("bytes:        %s read (%s of it read ahead), %s written\n",
          fmt_size (jint (x, "read")), fmt_size (jint (x, "read_ahead")),
          fmt_size (jint (x, "write")));
  printf ("throttled:    %" PRIu64 " requests, %.3f s in total\n",
          jint (m, "throttled_requests"),
          json_real_value (json_object_get (m, "throttled_seconds")));
  printf ("latency:\n");
  x = json_object_get (m, "latency");
  print_latency ("read", json_object_get (x, "read"));
  print_latency ("write", json_object_get (x, "write"));
  print_latency ("other", json_object_get (x, "other"));
  a = json_object_get (r, "alarms");
  printf ("alarms:       %s\n", json_array_size (a) ? "" : "none");
  json_array_foreach (a, i, x)
    printf ("  %-12s above %g, clear below %g, %" PRIu64 " s (%s): %s\n",
            jstr (x, "metric"),
            json_real_value (json_object_get (x, "above")),
            json_real_value (json_object_get (x, "clear_below")),
            jint (x, "windows"), jstr (x, "source"),
            json_is_true (json_object_get (x, "raised")) ? "RAISED" : "ok");
  json_decref (r);
  return EXIT_DONE;
}

static volatile sig_atomic_t interrupted;
static void on_sigint (int sig) { (void) sig; interrupted = 1; }

/* requests.K of metrics M */
static uint64_t
req (json_t *m, const char *k)
{
  return jint (json_object_get (m, "requests"), k);
}

static uint64_t
byt (json_t *m, const char *k)
{
  return jint (json_object_get (m, "bytes"), k);
}

int
cmd_metrics_volume (struct cli *cli)
{
  const char *iv = cli_opt (cli, "interval"), *cnt = cli_opt (cli, "count");
  bool watch = cli_opt (cli, "watch") != NULL;
  double interval = 1;
  uint64_t count = 0, n;
  json_t *r, *prev = NULL;
  int ret;

  if (iv && (ret = parse_number_opt (cli, "--interval", iv, &interval)) != 0)
    return ret;
  if (cnt && (ret = parse_count_opt (cli, "--count", cnt, UINT32_MAX,
                                     &count)) != 0)
    return ret;
  if ((iv || cnt) && !watch)
    return cli_usage (cli, "--interval and --count go with --watch");
  if (watch)
    signal (SIGINT, on_sigint);
  for (n = 0; !interrupted; n++) {
    ret = client_call (cli, "metrics.volume",
                       json_pack ("{s:s}", "name", cli->argv[0]), &r);
    if (ret != EXIT_DONE) {
      json_decref (prev);
      return ret;
    }
    if (!watch) {
      if (cli->json)
        print_json (r);
      else {
        json_t *l = json_object_get (r, "latency");

        printf ("requests:   %" PRIu64 " read, %" PRIu64 " write, %"
                PRIu64 " other\n", req (r, "read"), req (r, "write"),
                req (r, "other"));
        printf ("bytes:      %" PRIu64 " read, %" PRIu64 " written\n",
                byt (r, "read"), byt (r, "write"));
        printf ("errors:     %" PRIu64 "\n", jint (r, "errors"));
        printf ("in flight:  %" PRIu64 "\n", jint (r, "in_flight"));
        printf ("throttled:  %" PRIu64 " requests, %.3f s\n",
                jint (r, "throttled_requests"),
                json_real_value (json_object_get (r, "throttled_seconds")));
        printf ("latency:\n");
        print_latency ("read", json_object_get (l, "read"));
        print_latency ("write", json_object_get (l, "write"));
        print_latency ("other", json_object_get (l, "other"));
      }
      json_decref (r);
      return EXIT_DONE;
    }
    if (prev) {
      double secs = (jint (r, "taken_ns") - jint (prev, "taken_ns")) / 1e9;
      double rd = (req (r, "read") - req (prev, "read")) / secs;
      double wr = (req (r, "write") - req (prev, "write")) / secs;
      double rb = (byt (r, "read") - byt (prev, "read")) / secs;
      double wb = (byt (r, "write") - byt (prev, "write")) / secs;
      uint64_t dreq = req (r, "read") + req (r, "write") + req (r, "other")
        - req (prev, "read") - req (prev, "write") - req (prev, "other");
      double thr = dreq ? 100.0 * (jint (r, "throttled_requests")
                                   - jint (prev, "throttled_requests"))
        / dreq : 0;

      if (cli->json)
        printf ("{\"read_iops\": %.1f, \"write_iops\": %.1f, "
                "\"read_bytes_per_second\": %.0f, "
                "\"write_bytes_per_second\": %.0f, \"throttled_percent\": "
                "%.1f, \"in_flight\": %" PRIu64 ", \"errors\": %" PRIu64
                "}\n", rd, wr, rb, wb, thr, jint (r, "in_flight"),
                jint (r, "errors"));
      else {
        if ((n - 1) % 20 == 0)
          printf ("%10s %10s %11s %11s %10s %9s %7s\n", "READ IOPS",
                  "WRITE IOPS", "READ MB/s", "WRITE MB/s", "THROTTLED",
                  "IN FLIGHT", "ERRORS");
        printf ("%10.1f %10.1f %11.2f %11.2f %9.1f%% %9" PRIu64 " %7" PRIu64
                "\n", rd, wr, rb / 1e6, wb / 1e6, thr,
                jint (r, "in_flight"), jint (r, "errors"));
      }
      fflush (stdout);
      if (count && n >= count) {
        json_decref (r);
        break;
      }
    }
    json_decref (prev);
    prev = r;
    if (!interrupted)
      usleep ((useconds_t) (interval * 1e6));
  }
  json_decref (prev);
  return EXIT_DONE;
}

/* ---- Events ----------------------------------------------------------- */

/* TIME: seconds since the epoch, an ISO 8601 date-time in UTC
 * ("2026-01-02T03:04:05Z", "2026-01-02 03:04:05", "2026-01-02"), or
 * an age: "90s", "10m", "2h", "7d" ago.
 */
static int
parse_since (const char *s, double *out)
{
  struct tm tm;
  char *end;
  double v;
  const char *p;

  errno = 0;
  v = strtod (s, &end);
  if (end != s && errno == 0 && v >= 0) {
    double mul = 0;

    if (*end == '\0' && v > 1e8) {      /* epoch seconds */
      *out = v;
      return 0;
    }
    if (strcmp (end, "s") == 0) mul = 1;
    else if (strcmp (end, "m") == 0) mul = 60;
    else if (strcmp (end, "h") == 0) mul = 3600;
    else if (strcmp (end, "d") == 0) mul = 86400;
    if (mul > 0) {
      *out = (double) time (NULL) - v * mul;
      return 0;
    }
  }
  memset (&tm, 0, sizeof tm);
  p = strptime (s, "%Y-%m-%d", &tm);
  if (p == NULL)
    return -EINVAL;
  if (*p == 'T' || *p == ' ')
    p = strptime (p + 1, "%H:%M:%S", &tm);
  if (p == NULL || (*p != '\0' && strcmp (p, "Z") != 0))
    return -EINVAL;
  *out = (double) timegm (&tm);
  return 0;
}

int
cmd_events_list (struct cli *cli)
{
  const char *since = cli_opt (cli, "since"), *limit = cli_opt (cli, "limit");
  const char *volume = cli_opt (cli, "volume"), *type = cli_opt (cli, "type");
  json_t *args = json_object (), *r, *e;
  struct table t;
  uint64_t n = 0;
  double when;
  size_t i;
  int ret;

  if (volume)
    json_object_set_new (args, "volume", json_string (volume));
  if (type)
    json_object_set_new (args, "type", json_string (type));
  if (since) {
    if (parse_since (since, &when) < 0) {
      json_decref (args);
      return cli_usage (cli, "--since '%s' is not a time: give seconds "
                        "since the epoch, 2026-01-02T03:04:05Z, or an age "
                        "such as 10m, 2h or 7d", since);
    }
    json_object_set_new (args, "since", json_real (when));
  }
  if (limit) {
    if ((ret = parse_count_opt (cli, "--limit", limit, 100000, &n)) != 0) {
      json_decref (args);
      return ret;
    }
    json_object_set_new (args, "limit", json_integer (n));
  }
  if ((ret = client_call (cli, "events.list", args, &r)) != EXIT_DONE)
    return ret;
  if (cli->json) {
    print_json (r);
    json_decref (r);
    return EXIT_DONE;
  }
  table_init (&t, 4, "TIME", "TYPE", "VOLUME", "MESSAGE");
  json_array_foreach (json_object_get (r, "events"), i, e) {
    double tm = json_number_value (json_object_get (e, "time"));
    time_t secs = (time_t) tm;
    char stamp[64];
    struct tm g;

    if (gmtime_r (&secs, &g))
      strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &g);
    else
      snprintf (stamp, sizeof stamp, "%.0f", tm);
    table_add (&t, stamp, jstr (e, "type"),
               json_object_get (e, "volume") ? jstr (e, "volume") : "-",
               jstr (e, "message"));
  }
  table_print (&t);
  json_decref (r);
  return EXIT_DONE;
}

/* ---- Alarms ----------------------------------------------------------- */

static void
print_alarms (json_t *alarms, bool with_volume)
{
  struct table t;
  json_t *a;
  size_t i;

  table_init (&t, 7, "VOLUME", "METRIC", "ABOVE", "CLEAR BELOW", "FOR",
              "SOURCE", "STATE");
  json_array_foreach (alarms, i, a) {
    char above[32], clear[32], windows[32];

    snprintf (above, sizeof above, "%g",
              json_real_value (json_object_get (a, "above")));
    snprintf (clear, sizeof clear, "%g",
              json_real_value (json_object_get (a, "clear_below")));
    snprintf (windows, sizeof windows, "%" PRIu64 " s", jint (a, "windows"));
    table_add (&t, with_volume ? jstr (a, "volume") : "-", jstr (a, "metric"),
               above, clear, windows, jstr (a, "source"),
               json_is_true (json_object_get (a, "raised")) ? "RAISED"
               : "ok");
  }
  table_print (&t);
}

int
cmd_alarm_set (struct cli *cli)
{
  const char *metric = cli_opt (cli, "metric"), *above_s = cli_opt (cli,
                                                                    "above");
  const char *clear_s = cli_opt (cli, "clear-below"), *for_s = cli_opt (cli,
                                                                        "for");
  double above = 0, clear = 0;
  uint64_t windows = 0;
  json_t *args, *r;
  int ret;

  if (metric == NULL || above_s == NULL)
    return cli_usage (cli, "alarm set needs VOLUME, --metric and --above");
  if ((ret = parse_number_opt (cli, "--above", above_s, &above)) != 0)
    return ret;
  args = json_pack ("{s:s, s:s, s:f}", "name", cli->argv[0], "metric",
                    metric, "above", above);
  if (args == NULL)
    return cli_usage (cli, "arguments are not UTF-8 text");
  if (clear_s) {
    if ((ret = parse_number_opt (cli, "--clear-below", clear_s,
                                 &clear)) != 0) {
      json_decref (args);
      return ret;
    }
    json_object_set_new (args, "clear_below", json_real (clear));
  }
  if (for_s) {
    if ((ret = parse_count_opt (cli, "--for", for_s, 3600, &windows)) != 0) {
      json_decref (args);
      return ret;
    }
    json_object_set_new (args, "windows", json_integer (windows));
  }
  if ((ret = client_call (cli, "alarm.set", args, &r)) != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else
    print_alarms (json_object_get (r, "alarms"), false);
  json_decref (r);
  return EXIT_DONE;
}

int
cmd_alarm_clear (struct cli *cli)
{
  const char *metric = cli_opt (cli, "metric");
  json_t *args, *r;
  int ret;

  if (metric == NULL)
    return cli_usage (cli, "alarm clear needs VOLUME and --metric");
  args = json_pack ("{s:s, s:s}", "name", cli->argv[0], "metric", metric);
  if (args == NULL)
    return cli_usage (cli, "arguments are not UTF-8 text");
  if ((ret = client_call (cli, "alarm.clear", args, &r)) != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else
    printf ("alarm on %s of volume '%s' removed\n", metric, cli->argv[0]);
  json_decref (r);
  return EXIT_DONE;
}

int
cmd_alarm_list (struct cli *cli)
{
  json_t *r, *args = NULL;
  int ret;

  if (cli->argc > 0) {
    args = json_pack ("{s:s}", "name", cli->argv[0]);
    if (args == NULL)
      return cli_usage (cli, "volume name is not UTF-8 text");
  }
  if ((ret = client_call (cli, "alarm.list", args, &r)) != EXIT_DONE)
    return ret;
  if (cli->json)
    print_json (r);
  else
    print_alarms (json_object_get (r, "alarms"), true);
  json_decref (r);
  return EXIT_DONE;
}
