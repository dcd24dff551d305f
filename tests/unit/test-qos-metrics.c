/* tests/unit/test-qos-metrics.c: latency histograms and quantiles,
 * budgets from a volume's type and attrs, the Prometheus text of
 * server/metrics.c, and alarm hysteresis (server/alarm.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define US UINT64_C (1000)
#define MS UINT64_C (1000000)

/* ---- Histograms ------------------------------------------------------ */

static void
test_histogram_buckets_are_contiguous_and_tight (void **state)
{
  unsigned i;

  (void) state;
  for (i = 0; i + 1 < QOS_HIST_BUCKETS; i++) {
    uint64_t lo = qos_hist_lower_ns (i), hi = qos_hist_upper_ns (i);

    assert_true (hi > lo);
    assert_int_equal (qos_hist_lower_ns (i + 1), hi);
    assert_int_equal (qos_hist_index (lo), i);
    assert_int_equal (qos_hist_index (hi - 1), i);
    /* Log-linear: each bucket is within 12.5% of its lower bound. */
    if (lo >= 8 * US)
      assert_true ((hi - lo) * 8 <= lo);
  }
  /* Beyond the last bucket: clamped, not out of bounds. */
  assert_int_equal (qos_hist_index (UINT64_MAX), QOS_HIST_BUCKETS - 1);
}

static void
test_quantiles_of_a_known_distribution (void **state)
{
  struct qos_hist *h = calloc (1, sizeof *h);
  uint64_t p;
  int i;

  (void) state;
  assert_non_null (h);
  assert_int_equal (qos_hist_quantile (h, 0.5), 0);       /* empty */
  /* 1000 requests at 1..1000 us. */
  for (i = 1; i <= 1000; i++)
    qos_hist_add (h, (uint64_t) i * US);
  assert_int_equal (h->count, 1000);
  p = qos_hist_quantile (h, 0.5);
  assert_in_range (p, 500 * US * 7 / 8, 500 * US * 9 / 8);
  p = qos_hist_quantile (h, 0.9);
  assert_in_range (p, 900 * US * 7 / 8, 900 * US * 9 / 8);
  p = qos_hist_quantile (h, 0.99);
  assert_in_range (p, 990 * US * 7 / 8, 990 * US * 9 / 8);
  /* A slow tail: 1 in 1000 at 50 ms shows in p99.9, not in p99. */
  memset (h, 0, sizeof *h);
  for (i = 0; i < 999; i++)
    qos_hist_add (h, 100 * US);
  for (i = 0; i < 2; i++)
    qos_hist_add (h, 50 * MS);
  assert_true (qos_hist_quantile (h, 0.99) < 200 * US);
  assert_true (qos_hist_quantile (h, 0.999) > 40 * MS);
  free (h);
}

static void
test_a_window_is_the_difference_of_two_snapshots (void **state)
{
  struct qos_hist *a = calloc (1, sizeof *a), *b = calloc (1, sizeof *b);
  int i;

  (void) state;
  for (i = 0; i < 100; i++)
    qos_hist_add (a, 10 * MS);          /* old and slow */
  *b = *a;
  for (i = 0; i < 100; i++)
    qos_hist_add (b, 100 * US);         /* the last window: fast */
  qos_hist_sub (b, a);
  assert_int_equal (b->count, 100);
  assert_true (qos_hist_quantile (b, 0.99) < 120 * US);
  free (a);
  free (b);
}

/* ---- Budgets ---------------------------------------------------------- */

static void
test_budget_comes_from_type_then_attrs (void **state)
{
  struct config *cfg;
  char err[256];
  struct qos_budget b;
  const struct volume_type *ssd;

  (void) state;
  assert_int_equal (config_load (NULL, &cfg, err, sizeof err), 0);
  ssd = config_find_type (cfg, "ssd");
  assert_non_null (ssd);
  qos_budget_of (ssd, NULL, &b);
  assert_int_equal (b.iops, 3000);
  assert_int_equal (b.throughput, 125000000);
  assert_int_equal (b.op_size, 256 * 1024);
  qos_budget_of (ssd, "{\"labels\":{\"a\":\"b\"},\"qos\":{\"iops\":6000,"
                 "\"throughput\":250000000}}", &b);
  assert_int_equal (b.iops, 6000);
  assert_int_equal (b.throughput, 250000000);
  qos_budget_of (config_find_type (cfg, "hdd"), "", &b);
  assert_int_equal (b.throughput, 50000000);
  assert_int_equal (b.op_size, 1024 * 1024);
  assert_true (config_find_type (cfg, "hdd")->rotational);
  assert_true (cfg->tier_cost[BM_TIER_HOT] > cfg->tier_cost[BM_TIER_WARM]);
  config_free (cfg);
}

/* ---- Prometheus text -------------------------------------------------- */

static int
count_lines (const char *text, const char *prefix)
{
  const char *p = text;
  int n = 0;

  while (p && *p) {
    if (strncmp (p, prefix, strlen (prefix)) == 0)
      n++;
    p = strchr (p, '\n');
    if (p)
      p++;
  }
  return n;
}

static void
test_prometheus_text_has_every_volume_and_family (void **state)
{
  struct config *cfg;
  char err[256], *text;
  struct blockmap_volume_info *vi = calloc (1, sizeof *vi);
  const char *p;

  (void) state;
  assert_int_equal (config_load (NULL, &cfg, err, sizeof err), 0);
  snprintf (vi->name, sizeof vi->name, "vol-a");
  snprintf (vi->type, sizeof vi->type, "ssd");
  vi->id = 1;
  snprintf (vi->attrs, sizeof vi->attrs, "{\"qos\":{\"iops\":500}}");
  assert_int_equal (qos_volume_sync (cfg, vi), 0);
  snprintf (vi->name, sizeof vi->name, "vol.b");
  snprintf (vi->type, sizeof vi->type, "hdd");
  vi->id = 2;
  vi->attrs[0] = '\0';
  assert_int_equal (qos_volume_sync (cfg, vi), 0);

  text = metrics_format (NULL, cfg);
  assert_non_null (text);
  /* Each family once, with HELP before TYPE, samples after. */
  assert_int_equal (count_lines (text, "# TYPE strata_volume_requests_total "
                                 "counter"), 1);
  assert_int_equal (count_lines (text, "# HELP strata_volume_requests_total"),
                    1);
  assert_int_equal (count_lines (text, "strata_volume_requests_total{"), 6);
  assert_int_equal (count_lines (text, "# TYPE strata_volume_latency_seconds "
                                 "summary"), 1);
  /* 2 volumes x 3 classes x (4 quantiles + sum + count). */
  assert_int_equal (count_lines (text, "strata_volume_latency_seconds"), 36);
  assert_non_null (strstr (text, "strata_volume_budget_iops{volume=\"vol-a\","
                           "type=\"ssd\"} 500\n"));
  assert_non_null (strstr (text, "strata_volume_budget_bytes_per_second{"
                           "volume=\"vol.b\",type=\"hdd\"} 50000000\n"));
  assert_non_null (strstr (text, "quantile=\"0.999\""));
  /* Every line is a comment or "name{labels} value". */
  for (p = text; *p; p = strchr (p, '\n') + 1) {
    const char *nl = strchr (p, '\n');

    assert_non_null (nl);
    if (*p != '#') {
      const char *sp = memchr (p, ' ', nl - p);

      assert_non_null (sp);
      assert_true (strncmp (p, "strata_", 7) == 0);
      assert_true (sp[1] >= '0' && sp[1] <= '9');
    }
  }
  assert_int_equal (text[strlen (text) - 1], '\n');
  free (text);

  /* A deleted volume leaves the text. */
  qos_volume_forget ("vol.b");
  text = metrics_format (NULL, cfg);
  assert_null (strstr (text, "vol.b"));
  free (text);
  qos_stop ();
  config_free (cfg);
  free (vi);
}

/* ---- Alarms ----------------------------------------------------------- */

static void
test_alarm_raises_and_clears_with_hysteresis (void **state)
{
  struct alarm_rule r = { .above = 100, .clear_below = 80, .windows = 2 };
  struct alarm_state s = { 0 };

  (void) state;
  assert_int_equal (alarm_eval (&r, &s, 150), 0);       /* one window */
  assert_int_equal (alarm_eval (&r, &s, 90), 0);        /* broken run */
  assert_int_equal (alarm_eval (&r, &s, 150), 0);
  assert_int_equal (alarm_eval (&r, &s, 150), 1);       /* raised */
  assert_true (s.raised);
  assert_int_equal (alarm_eval (&r, &s, 200), 0);       /* stays */
  /* Between the two levels: neither raised again nor cleared. */
  assert_int_equal (alarm_eval (&r, &s, 95), 0);
  assert_int_equal (alarm_eval (&r, &s, 95), 0);
  assert_int_equal (alarm_eval (&r, &s, 95), 0);
  assert_true (s.raised);
  assert_int_equal (alarm_eval (&r, &s, 50), 0);
  assert_int_equal (alarm_eval (&r, &s, 120), 0);       /* broken run */
  assert_int_equal (alarm_eval (&r, &s, 50), 0);
  assert_int_equal (alarm_eval (&r, &s, 50), -1);       /* cleared */
  assert_false (s.raised);
  /* A rule removed while raised clears once. */
  assert_int_equal (alarm_eval (&r, &s, 150), 0);
  assert_int_equal (alarm_eval (&r, &s, 150), 1);
  r.above = 0;
  assert_int_equal (alarm_eval (&r, &s, 150), -1);
  assert_int_equal (alarm_eval (&r, &s, 150), 0);
}

static void
test_alarm_window_values (void **state)
{
  struct qos_snapshot *a = calloc (1, sizeof *a), *b = calloc (1, sizeof *b);
  enum alarm_metric m;
  int i;

  (void) state;
  a->taken_ns = 1000 * MS;
  *b = *a;
  b->taken_ns = a->taken_ns + 2000 * MS;
  b->ops[QOS_READ] = 600;
  b->ops[QOS_WRITE] = 400;
  b->bytes[QOS_READ] = 4000000;
  b->throttled = 250;
  for (i = 0; i < 1000; i++)
    qos_hist_add (&b->lat[QOS_READ], 3 * MS);
  assert_int_equal ((int) alarm_window_value (ALARM_IOPS, a, b), 500);
  assert_int_equal ((int) alarm_window_value (ALARM_THROUGHPUT, a, b),
                    2000000);
  assert_int_equal ((int) alarm_window_value (ALARM_THROTTLED, a, b), 25);
  assert_in_range ((int) alarm_window_value (ALARM_LATENCY_P99, a, b), 2, 4);
  assert_int_equal (alarm_metric_parse ("latency_p99", &m), 0);
  assert_int_equal (m, ALARM_LATENCY_P99);
  assert_int_equal (alarm_metric_parse ("latency", &m), -EINVAL);
  free (a);
  free (b);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_histogram_buckets_are_contiguous_and_tight),
    cmocka_unit_test (test_quantiles_of_a_known_distribution),
    cmocka_unit_test (test_a_window_is_the_difference_of_two_snapshots),
    cmocka_unit_test (test_budget_comes_from_type_then_attrs),
    cmocka_unit_test (test_prometheus_text_has_every_volume_and_family),
    cmocka_unit_test (test_alarm_raises_and_clears_with_hysteresis),
    cmocka_unit_test (test_alarm_window_values),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
