/* server/alarm.c: alarms on a volume's IOPS, throughput, latency and
 * throttling, with hysteresis, and the monitor thread that checks them.
 *
 * A rule (struct alarm_rule) comes from the volume's type (config keys
 * alarm_iops, alarm_throughput, alarm_latency_p99, alarm_throttled:
 * clear below 80% of the threshold, after 2 windows) or from the
 * volume itself (`strata alarm set`, stored in its attrs JSON next to
 * its labels), which replaces the type's rule for that metric.
 *
 * Hysteresis is twofold, so that a value hovering at the threshold
 * does not make an event every second:
 *
 *        value
 *          │      ┌──raised──────────────┐
 *   above ─┼──────┼──────────────────────┼───────
 *          │      │  (WINDOWS in a row   │
 *   clear ─┼──────┼───above, to raise)   │(WINDOWS in a row below
 *          │      │                      │ clear_below, to clear)
 *
 * The monitor thread wakes once a second while any volume has a rule,
 * takes a snapshot of each such volume (qos.c), computes the window's
 * value from the previous snapshot, evaluates, and on a change queues
 * an event (events.c).  With no rules it sleeps until alarm_kick().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

static const char *const metric_names[ALARM_NMETRICS] = {
  [ALARM_IOPS] = "iops",
  [ALARM_THROUGHPUT] = "throughput",
  [ALARM_LATENCY_P99] = "latency_p99",
  [ALARM_THROTTLED] = "throttled",
};

const char *
alarm_metric_name (enum alarm_metric m)
{
  return m < ALARM_NMETRICS ? metric_names[m] : "unknown";
}

int
alarm_metric_parse (const char *name, enum alarm_metric *out)
{
  unsigned m;

  for (m = 0; m < ALARM_NMETRICS; m++)
    if (name && strcmp (name, metric_names[m]) == 0) {
      *out = m;
      return 0;
    }
  return -EINVAL;
}

int
alarm_eval (const struct alarm_rule *r, struct alarm_state *s, double value)
{
  unsigned need = r->windows ? r->windows : 1;

  if (r->above <= 0) {                  /* no rule: nothing is raised */
    if (s->raised) {
      *s = (struct alarm_state) { 0 };
      return -1;
    }
    return 0;
  }
  if (!s->raised) {
    s->under = 0;
    s->over = value > r->above ? s->over + 1 : 0;
    if (s->over >= need) {
      s->raised = true;
      s->over = 0;
      return 1;
    }
    return 0;
  }
  s->over = 0;
  s->under = value < r->clear_below ? s->under + 1 : 0;
  if (s->under >= need) {
    s->raised = false;
    s->under = 0;
    return -1;
  }
  return 0;
}

double
alarm_window_value (enum alarm_metric m, const struct qos_snapshot *prev,
                    const struct qos_snapshot *cur)
{
  double secs = (double) (cur->taken_ns - prev->taken_ns) / 1e9;
  uint64_t ops, prev_ops;
  struct qos_hist *h;
  double v = 0;

  if (secs <= 0)
    return 0;
  ops = cur->ops[QOS_READ] + cur->ops[QOS_WRITE] + cur->ops[QOS_OTHER];
  prev_ops = prev->ops[QOS_READ] + prev->ops[QOS_WRITE]
    + prev->ops[QOS_OTHER];
  switch (m) {
  case ALARM_IOPS:
    v = (double) (ops - prev_ops) / secs;
    break;
  case ALARM_THROUGHPUT:
    v = (double) (cur->bytes[QOS_READ] + cur->bytes[QOS_WRITE]
                  - prev->bytes[QOS_READ] - prev->bytes[QOS_WRITE]) / secs;
    break;
  case ALARM_LATENCY_P99:
    h = malloc (sizeof *h);
    if (h == NULL)
      return 0;
    *h = cur->lat[QOS_READ];
    qos_hist_merge (h, &cur->lat[QOS_WRITE]);
    {
      struct qos_hist p = prev->lat[QOS_READ];

      qos_hist_merge (&p, &prev->lat[QOS_WRITE]);
      qos_hist_sub (h, &p);
    }
    v = (double) qos_hist_quantile (h, 0.99) / 1e6;
    free (h);
    break;
  case ALARM_THROTTLED:
    v = ops > prev_ops ? 100.0 * (double) (cur->throttled - prev->throttled)
      / (double) (ops - prev_ops) : 0;
    break;
  case ALARM_NMETRICS:
    break;
  }
  return v;
}

/* ---- The monitor thread --------------------------------------------- */

/* Previous snapshots, by volume id; monitor thread only. */
struct prev {
  struct prev *next;
  uint64_t id;
  uint64_t seen;                        /* pass number */
  struct qos_snapshot snap;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;             /* CLOCK_MONOTONIC */
static bool running, stopping, kicked;  /* protected by lock */
static pthread_t thread;
static struct prev *prevs;              /* monitor thread only */
static uint64_t pass;

static struct prev *
prev_of (uint64_t id)
{
  struct prev *p;

  for (p = prevs; p; p = p->next)
    if (p->id == id)
      return p;
  return NULL;
}

static int
check_volume (void *opaque, struct qos_snapshot *s)
{
  bool *any = opaque;
  struct alarm_state st[ALARM_NMETRICS];
  struct prev *p;
  bool rules = false, changed = false;
  unsigned m;

  for (m = 0; m < ALARM_NMETRICS; m++)
    if (s->rules[m].above > 0 || s->raised[m])
      rules = true;
  if (!rules)
    return 0;
  *any = true;
  p = prev_of (s->id);
  if (p == NULL) {
    p = calloc (1, sizeof *p);
    if (p == NULL)
      return 0;
    p->id = s->id;
    p->snap = *s;
    p->seen = pass;
    p->next = prevs;
    prevs = p;
    return 0;                           /* the first window starts now */
  }
  if (qos_volume_alarm_state (s->name, st, false) < 0)
    return 0;
  for (m = 0; m < ALARM_NMETRICS; m++) {
    double v = alarm_window_value (m, &p->snap, s);
    int r = alarm_eval (&s->rules[m], &st[m], v);
    const char *unit = m == ALARM_IOPS ? " IOPS"
      : m == ALARM_THROUGHPUT ? " B/s" : m == ALARM_LATENCY_P99 ? " ms"
      : "%";

    changed = true;
    if (r > 0)
      events_emit ("alarm.raised", s->name, "%s is %.4g%s, above %.4g%s "
                   "for %u s (%s rule)", metric_names[m], v, unit,
                   s->rules[m].above, unit, s->rules[m].windows,
                   s->rules[m].from_type ? "volume type" : "volume");
    else if (r < 0)
      events_emit ("alarm.cleared", s->name, "%s is %.4g%s, below %.4g%s "
                   "for %u s", metric_names[m], v, unit,
                   s->rules[m].clear_below, unit,
                   s->rules[m].windows ? s->rules[m].windows : 1);
    if (r != 0)
      log_info ("volume %s: alarm on %s %s (%.4g%s)", s->name,
                metric_names[m], r > 0 ? "raised" : "cleared", v, unit);
  }
  if (changed)
    qos_volume_alarm_state (s->name, st, true);
  p->snap = *s;
  p->seen = pass;
  return 0;
}

static void *
monitor (void *arg)
{
  struct timespec ts;
  bool any = true;

  (void) arg;
  for (;;) {
    {
      LOCK_FOR_SCOPE (&lock);
      if (!any && !kicked && !stopping)
        pthread_cond_wait (&cond, &lock);       /* no rules: sleep */
      else if (!stopping) {
        clock_gettime (CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        while (!stopping
               && pthread_cond_timedwait (&cond, &lock, &ts) == 0
               && !stopping)
          ;                                     /* a kick: keep the beat */
      }
      if (stopping)
        break;
      kicked = false;
    }
    pass++;
    any = false;
    qos_foreach (check_volume, &any);
    {
      struct prev **pp = &prevs;                /* drop volumes gone */

      while (*pp) {
        if ((*pp)->seen != pass) {
          struct prev *old = *pp;

          *pp = old->next;
          free (old);
        }
        else
          pp = &(*pp)->next;
      }
    }
  }
  return NULL;
}

int
alarm_start (void)
{
  pthread_condattr_t ca;
  int r;

  pthread_condattr_init (&ca);
  pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
  pthread_cond_init (&cond, &ca);
  pthread_condattr_destroy (&ca);
  stopping = false;
  r = pthread_create (&thread, NULL, monitor, NULL);
  if (r != 0) {
    log_error ("cannot start the alarm monitor: %s", strerror (r));
    return -r;
  }
  running = true;
  return 0;
}

void
alarm_kick (void)
{
  LOCK_FOR_SCOPE (&lock);
  kicked = true;
  if (running)
    pthread_cond_signal (&cond);
}

void
alarm_stop (void)
{
  struct prev *p;

  if (!running)
    return;
  {
    LOCK_FOR_SCOPE (&lock);
    stopping = true;
    pthread_cond_signal (&cond);
  }
  pthread_join (thread, NULL);
  running = false;
  while ((p = prevs) != NULL) {
    prevs = p->next;
    free (p);
  }
}
