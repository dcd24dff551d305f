/* server/qos.c: per-volume budgets (token buckets), throttling and
 * per-volume metrics.
 *
 * Each volume has one entry in a registry (struct qos_volume), made at
 * start-up or when the volume is created, and kept until the daemon
 * exits so that a connection may hold a plain pointer to it.  The entry
 * holds two token buckets, one of operations and one of bytes, and the
 * volume's counters and latency histograms.
 *
 * Sharing between loops.  Connections of one volume may be served by
 * different event loops (threads).  The buckets are shared by all of
 * them, under the entry's mutex, held only to charge or check a
 * request (a few arithmetic operations, never across I/O).  The
 * alternative, per-loop shares of the budget that are rebalanced from
 * time to time, avoids the lock but is unfair while the load is uneven
 * (a loop whose share ran dry waits while another loop's share idles)
 * and needs a rebalancer thread; a volume has a handful of
 * connections, so the lock is not contended in practice, and a volume
 * without a budget never takes it.
 *
 * Reservation, not polling.  A request reserves its tokens at once
 * (qos_bucket_reserve), going into debt when there are not enough,
 * and gets a ticket: its position in the bucket's running total.
 * Tickets are handed out in arrival order under the lock, so waiting
 * is FIFO per volume across every connection and loop without any
 * shared queue: each loop keeps its own list of waiting requests (in
 * arrival order) and one io_uring timeout, armed for the earliest
 * moment a waiting request may go.  A volume's waiting requests never
 * hold up another volume's: when the timer fires every waiting request
 * whose tickets are good goes, whatever its place in the list.  No
 * thread sleeps and nothing spins; an idle loop has no timer armed.
 *
 *   admit ─▶ reserve ops + bytes ─▶ good now? ─yes─▶ proto_execute
 *                                       │no
 *                                       ▼
 *                 loop's queue + timeout (ABS, earliest deadline)
 *                                       │ fires
 *                                       ▼
 *                 tickets good (rate may have changed)? ─▶ proto_execute
 *
 * A modify (qos_volume_sync) changes the rates under the lock; waiting
 * requests recompute their wait from the new rate when their timer
 * fires, and a timer never sleeps more than QOS_MAX_SLEEP, so a new
 * budget applies within that bound without reconnecting.
 *
 * Metrics are sharded: each loop adds to the shard of its index (a
 * cache line of its own), with relaxed atomics; readers sum the
 * shards.  An unthrottled request costs two clock reads and a few
 * uncontended atomic adds.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define container_of(ptr, type, member) \
  ((type *) ((char *) (ptr) - offsetof (type, member)))

#define QOS_SHARDS 8
#define QOS_MAX_LOOPS 1024
#define QOS_MAX_SLEEP (100 * UINT64_C (1000000))       /* 100 ms */
#define QOS_TIMER_SLACK (50 * UINT64_C (1000))          /* 50 us */

uint64_t
qos_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * QOS_NS_PER_SEC + ts.tv_nsec;
}

/* ---- Token buckets (pure) ------------------------------------------- */

/* Produce the tokens of the time since the last refill, never letting
 * the level pass BURST.  128-bit arithmetic: a long idle at a high
 * rate (an hour at 4 GB/s) does not overflow.
 */
static void
refill (struct qos_bucket *b, uint64_t now_ns)
{
  unsigned __int128 t;
  uint64_t cap, add;

  if (now_ns <= b->last_ns)
    return;
  cap = b->issued + b->burst;
  if (b->rate == 0 || b->avail >= cap) {
    if (b->avail > cap)
      b->avail = cap;
    b->frac = 0;
    b->last_ns = now_ns;
    return;
  }
  t = (unsigned __int128) (now_ns - b->last_ns) * b->rate + b->frac;
  b->last_ns = now_ns;
  if (t / QOS_NS_PER_SEC >= cap - b->avail) {
    b->avail = cap;
    b->frac = 0;
    return;
  }
  add = (uint64_t) (t / QOS_NS_PER_SEC);
  b->avail += add;
  b->frac = (uint64_t) (t % QOS_NS_PER_SEC);
}

/* Nanoseconds until AVAIL reaches TICKET, rounded up. */
static uint64_t
time_to (const struct qos_bucket *b, uint64_t ticket)
{
  unsigned __int128 need;

  if (b->rate == 0 || b->avail >= ticket)
    return 0;
  need = (unsigned __int128) (ticket - b->avail) * QOS_NS_PER_SEC - b->frac;
  need = (need + b->rate - 1) / b->rate;
  return need > UINT64_MAX / 2 ? UINT64_MAX / 2 : (uint64_t) need;
}

void
qos_bucket_init (struct qos_bucket *b, uint64_t rate, uint64_t burst,
                 uint64_t now_ns)
{
  memset (b, 0, sizeof *b);
  b->rate = rate;
  b->burst = burst;
  b->avail = burst;
  b->last_ns = now_ns;
}

uint64_t
qos_bucket_take (struct qos_bucket *b, uint64_t n, uint64_t now_ns)
{
  uint64_t wait;

  if (b->rate == 0)
    return 0;
  refill (b, now_ns);
  wait = time_to (b, b->issued + n);
  if (wait == 0)
    b->issued += n;
  return wait;
}

uint64_t
qos_bucket_reserve (struct qos_bucket *b, uint64_t n, uint64_t now_ns,
                    uint64_t *ticket)
{
  refill (b, now_ns);
  b->issued += n;
  *ticket = b->issued;
  return time_to (b, *ticket);
}

uint64_t
qos_bucket_wait (struct qos_bucket *b, uint64_t ticket, uint64_t now_ns)
{
  if (b->rate == 0)
    return 0;
  refill (b, now_ns);
  return time_to (b, ticket);
}

void
qos_bucket_set (struct qos_bucket *b, uint64_t rate, uint64_t burst,
                uint64_t now_ns)
{
  refill (b, now_ns);
  if (rate == 0 || b->rate == 0) {
    /* Unlimited forgives every debt; a bucket that was unlimited
     * starts full, as a new one does.
     */
    b->avail = b->issued + (rate ? burst : 0);
    b->frac = 0;
  }
  b->rate = rate;
  b->burst = burst;
  if (b->avail > b->issued + burst)
    b->avail = b->issued + burst;
  b->last_ns = now_ns;
}

int64_t
qos_bucket_level (struct qos_bucket *b, uint64_t now_ns)
{
  refill (b, now_ns);
  return (int64_t) (b->avail - b->issued);
}

uint64_t
qos_op_cost (uint64_t len, uint64_t op_size)
{
  if (op_size == 0 || len <= op_size)
    return 1;
  return (len + op_size - 1) / op_size;
}

/* ---- Histograms (pure) ---------------------------------------------- */

unsigned
qos_hist_index (uint64_t ns)
{
  uint64_t us = ns / 1000;
  unsigned e, i;

  if (us < QOS_HIST_SUB)
    return (unsigned) us;
  e = 63 - __builtin_clzll (us);            /* us in [2^e, 2^(e+1)) */
  i = (e - 2) * QOS_HIST_SUB + (unsigned) ((us >> (e - 3)) & 7);
  return i < QOS_HIST_BUCKETS ? i : QOS_HIST_BUCKETS - 1;
}

uint64_t
qos_hist_lower_ns (unsigned i)
{
  unsigned e;

  if (i < QOS_HIST_SUB)
    return (uint64_t) i * 1000;
  e = i / QOS_HIST_SUB + 2;
  return ((uint64_t) (QOS_HIST_SUB + i % QOS_HIST_SUB) << (e - 3)) * 1000;
}

uint64_t
qos_hist_upper_ns (unsigned i)
{
  if (i + 1 >= QOS_HIST_BUCKETS)
    return UINT64_MAX;
  return qos_hist_lower_ns (i + 1);
}

void
qos_hist_add (struct qos_hist *h, uint64_t ns)
{
  h->b[qos_hist_index (ns)]++;
  h->count++;
  h->sum_ns += ns;
}

uint64_t
qos_hist_quantile (const struct qos_hist *h, double p)
{
  uint64_t total = 0, seen = 0, lo, hi;
  double rank;
  unsigned i;

  for (i = 0; i < QOS_HIST_BUCKETS; i++)
    total += h->b[i];
  if (total == 0)
    return 0;
  if (p > 1)
    p = 1;
  rank = p * (double) total;
  if (rank < 1)
    rank = 1;
  for (i = 0; i < QOS_HIST_BUCKETS; i++) {
    if (h->b[i] == 0)
      continue;
    if ((double) (seen + h->b[i]) >= rank) {
      lo = qos_hist_lower_ns (i);
      hi = i + 1 < QOS_HIST_BUCKETS ? qos_hist_upper_ns (i) : lo * 2;
      return lo + (uint64_t) ((double) (hi - lo)
                              * ((rank - (double) seen) / (double) h->b[i]));
    }
    seen += h->b[i];
  }
  return qos_hist_lower_ns (QOS_HIST_BUCKETS - 1);
}

void
qos_hist_sub (struct qos_hist *a, const struct qos_hist *b)
{
  unsigned i;

  for (i = 0; i < QOS_HIST_BUCKETS; i++)
    a->b[i] = a->b[i] >= b->b[i] ? a->b[i] - b->b[i] : 0;
  a->count = a->count >= b->count ? a->count - b->count : 0;
  a->sum_ns = a->sum_ns >= b->sum_ns ? a->sum_ns - b->sum_ns : 0;
}

void
qos_hist_merge (struct qos_hist *a, const struct qos_hist *b)
{
  unsigned i;

  for (i = 0; i < QOS_HIST_BUCKETS; i++)
    a->b[i] += b->b[i];
  a->count += b->count;
  a->sum_ns += b->sum_ns;
}

/* ---- The registry --------------------------------------------------- */

/* Written by the loop whose index maps to it, read by anyone. */
struct qos_shard {
  _Atomic uint64_t ops[QOS_NCLASS], bytes[QOS_NCLASS];
  _Atomic uint64_t readahead_bytes;
  _Atomic uint64_t lat_sum[QOS_NCLASS];
  _Atomic uint64_t errors, throttled_ns, throttled;
  _Atomic uint64_t admitted, completed;
  _Atomic uint64_t hist[QOS_NCLASS][QOS_HIST_BUCKETS];
} __attribute__ ((aligned (64)));

struct qos_volume {
  struct qos_volume *next;              /* registry list; registry lock */
  char name[BLOCKMAP_NAME_MAX];         /* immutable */
  uint64_t id;                          /* immutable */
  _Atomic bool limited;                 /* either rate is set */
  _Atomic bool deleted;
  _Atomic uint64_t error_event_ns;      /* last volume.error event */
  _Atomic uint64_t errors_unreported;   /* errors since that event */

  /* Lock order: registry lock, then this one. */
  pthread_mutex_t lock;
  char type[BLOCKMAP_TYPE_MAX];         /* protected by lock */
  struct qos_budget budget;             /* protected by lock */
  struct qos_bucket ops, bytes;         /* protected by lock */
  struct alarm_rule rules[ALARM_NMETRICS];      /* protected by lock */
  struct alarm_state alarms[ALARM_NMETRICS];    /* protected by lock */

  struct qos_shard shards[QOS_SHARDS];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct qos_volume *registry;     /* live volumes; registry_lock */
static struct qos_volume *graveyard;    /* deleted; freed at qos_stop */

/* Only the loop of that index touches its entry (STYLE B.7). */
struct qos_loop {
  struct loop *loop;
  struct uop timer;
  struct __kernel_timespec ts;
  bool armed;
  uint64_t armed_ns;
  struct req *head, *tail;              /* waiting, in arrival order */
  unsigned n;
};
static struct qos_loop *loops[QOS_MAX_LOOPS];

static struct qos_volume *
find_locked (const char *name)
{
  struct qos_volume *v;

  for (v = registry; v; v = v->next)
    if (strcmp (v->name, name) == 0)
      return v;
  return NULL;
}

void
qos_budget_of (const struct volume_type *t, const char *attrs,
               struct qos_budget *out)
{
  json_t *root, *q, *x;

  out->iops = t ? t->iops : 0;
  out->throughput = t ? t->throughput : 0;
  out->op_size = t && t->op_size ? t->op_size : 256 * 1024;
  out->burst = t && t->burst ? t->burst : 1;
  if (attrs == NULL || attrs[0] == '\0')
    return;
  root = json_loads (attrs, 0, NULL);
  q = json_object_get (root, "qos");
  x = json_object_get (q, "iops");
  if (json_is_integer (x) && json_integer_value (x) > 0)
    out->iops = json_integer_value (x);
  x = json_object_get (q, "throughput");
  if (json_is_integer (x) && json_integer_value (x) > 0)
    out->throughput = json_integer_value (x);
  json_decref (root);
}

/* The alarm rules of a volume: its type's, replaced metric by metric by
 * the ones in its attrs ({"alarms": {"iops": {"above": ...}}}).
 */
static void
rules_of (const struct volume_type *t, const char *attrs,
          struct alarm_rule *rules)
{
  double type_above[ALARM_NMETRICS] = { 0 };
  json_t *root, *alarms, *a;
  unsigned m;

  if (t) {
    type_above[ALARM_IOPS] = t->alarm_iops;
    type_above[ALARM_THROUGHPUT] = t->alarm_throughput;
    type_above[ALARM_LATENCY_P99] = t->alarm_latency_p99;
    type_above[ALARM_THROTTLED] = t->alarm_throttled;
  }
  for (m = 0; m < ALARM_NMETRICS; m++)
    rules[m] = (struct alarm_rule) {
      .above = type_above[m], .clear_below = type_above[m] * 0.8,
      .windows = 2, .from_type = type_above[m] > 0,
    };
  root = attrs && attrs[0] ? json_loads (attrs, 0, NULL) : NULL;
  alarms = json_object_get (root, "alarms");
  for (m = 0; m < ALARM_NMETRICS; m++) {
    a = json_object_get (alarms, alarm_metric_name (m));
    if (!json_is_object (a))
      continue;
    rules[m].above = json_number_value (json_object_get (a, "above"));
    rules[m].clear_below = json_number_value (json_object_get (a,
                                                               "clear_below"));
    rules[m].windows = json_integer_value (json_object_get (a, "windows"));
    if (rules[m].windows == 0)
      rules[m].windows = 1;
    rules[m].from_type = false;
  }
  json_decref (root);
}

int
qos_volume_sync (const struct config *cfg,
                 const struct blockmap_volume_info *vi)
{
  const struct volume_type *t = config_find_type (cfg, vi->type);
  struct qos_budget bud;
  struct alarm_rule rules[ALARM_NMETRICS];
  struct qos_volume *v;
  uint64_t now = qos_now_ns ();
  unsigned m;
  bool fresh = false;

  qos_budget_of (t, vi->attrs, &bud);
  rules_of (t, vi->attrs, rules);
  LOCK_FOR_SCOPE (&registry_lock);
  v = find_locked (vi->name);
  if (v && v->id != vi->id)             /* deleted and made again */
    v = NULL;
  if (v == NULL) {
    v = calloc (1, sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    snprintf (v->name, sizeof v->name, "%s", vi->name);
    v->id = vi->id;
    pthread_mutex_init (&v->lock, NULL);
    qos_bucket_init (&v->ops, 0, 0, now);
    qos_bucket_init (&v->bytes, 0, 0, now);
    fresh = true;
  }
  {
    LOCK_FOR_SCOPE (&v->lock);
    snprintf (v->type, sizeof v->type, "%s", vi->type);
    v->budget = bud;
    qos_bucket_set (&v->ops, bud.iops, bud.iops * bud.burst, now);
    qos_bucket_set (&v->bytes, bud.throughput, bud.throughput * bud.burst,
                    now);
    for (m = 0; m < ALARM_NMETRICS; m++) {
      if (rules[m].above <= 0)
        v->alarms[m] = (struct alarm_state) { 0 };
      v->rules[m] = rules[m];
    }
    atomic_store (&v->limited, bud.iops != 0 || bud.throughput != 0);
  }
  if (fresh) {
    /* A volume of the same name that was deleted goes to the graveyard. */
    struct qos_volume **pp;

    for (pp = &registry; *pp; pp = &(*pp)->next)
      if (strcmp ((*pp)->name, v->name) == 0) {
        struct qos_volume *old = *pp;

        *pp = old->next;
        atomic_store (&old->deleted, true);
        old->next = graveyard;
        graveyard = old;
        break;
      }
    v->next = registry;
    registry = v;
  }
  log_debug (DBG_QOS, "qos: volume %s: %" PRIu64 " IOPS, %" PRIu64
             " B/s, op size %" PRIu64 ", burst %" PRIu64 " s", vi->name,
             bud.iops, bud.throughput, bud.op_size, bud.burst);
  return 0;
}

void
qos_volume_forget (const char *name)
{
  struct qos_volume **pp;

  LOCK_FOR_SCOPE (&registry_lock);
  for (pp = &registry; *pp; pp = &(*pp)->next)
    if (strcmp ((*pp)->name, name) == 0) {
      struct qos_volume *v = *pp;

      *pp = v->next;
      atomic_store (&v->deleted, true);
      /* Requests still waiting go at once; budgets no longer matter. */
      {
        LOCK_FOR_SCOPE (&v->lock);
        qos_bucket_set (&v->ops, 0, 0, qos_now_ns ());
        qos_bucket_set (&v->bytes, 0, 0, qos_now_ns ());
        atomic_store (&v->limited, false);
      }
      v->next = graveyard;
      graveyard = v;
      return;
    }
}

static int
sync_one (void *opaque, const struct blockmap_volume_info *vi)
{
  return qos_volume_sync (opaque, vi);
}

int
qos_start (struct blockmap_pool *pool, const struct config *cfg)
{
  return blockmap_volume_foreach (pool, sync_one, (void *) cfg);
}

static void
free_list (struct qos_volume *v)
{
  while (v) {
    struct qos_volume *next = v->next;

    pthread_mutex_destroy (&v->lock);
    free (v);
    v = next;
  }
}

void
qos_stop (void)
{
  unsigned i;

  LOCK_FOR_SCOPE (&registry_lock);
  free_list (registry);
  free_list (graveyard);
  registry = graveyard = NULL;
  for (i = 0; i < QOS_MAX_LOOPS; i++) {
    free (loops[i]);
    loops[i] = NULL;
  }
}

static void
snapshot_of (struct qos_volume *v, struct qos_snapshot *s)
{
  unsigned i, c, k;
  uint64_t admitted = 0, completed = 0;

  memset (s, 0, sizeof *s);
  snprintf (s->name, sizeof s->name, "%s", v->name);
  s->id = v->id;
  s->taken_ns = qos_now_ns ();
  {
    LOCK_FOR_SCOPE (&v->lock);
    snprintf (s->type, sizeof s->type, "%s", v->type);
    s->budget = v->budget;
    memcpy (s->rules, v->rules, sizeof s->rules);
    for (i = 0; i < ALARM_NMETRICS; i++)
      s->raised[i] = v->alarms[i].raised;
  }
  for (i = 0; i < QOS_SHARDS; i++) {
    struct qos_shard *sh = &v->shards[i];

    for (c = 0; c < QOS_NCLASS; c++) {
      s->ops[c] += atomic_load_explicit (&sh->ops[c], memory_order_relaxed);
      s->bytes[c] += atomic_load_explicit (&sh->bytes[c],
                                           memory_order_relaxed);
      s->lat[c].sum_ns += atomic_load_explicit (&sh->lat_sum[c],
                                                memory_order_relaxed);
      for (k = 0; k < QOS_HIST_BUCKETS; k++) {
        uint64_t n = atomic_load_explicit (&sh->hist[c][k],
                                           memory_order_relaxed);
        s->lat[c].b[k] += n;
        s->lat[c].count += n;
      }
    }
    s->readahead_bytes += atomic_load_explicit (&sh->readahead_bytes,
                                                memory_order_relaxed);
    s->errors += atomic_load_explicit (&sh->errors, memory_order_relaxed);
    s->throttled_ns += atomic_load_explicit (&sh->throttled_ns,
                                             memory_order_relaxed);
    s->throttled += atomic_load_explicit (&sh->throttled,
                                          memory_order_relaxed);
    /* Completed before admitted, so in_flight is never negative. */
    completed += atomic_load (&sh->completed);
    admitted += atomic_load (&sh->admitted);
  }
  s->in_flight = admitted >= completed ? admitted - completed : 0;
}

int
qos_volume_snapshot (const char *name, struct qos_snapshot *out)
{
  struct qos_volume *v;

  LOCK_FOR_SCOPE (&registry_lock);
  v = find_locked (name);
  if (v == NULL)
    return -ENOENT;
  snapshot_of (v, out);
  return 0;
}

int
qos_foreach (int (*fn) (void *opaque, struct qos_snapshot *s), void *opaque)
{
  CLEANUP_FREE char **names = NULL;
  struct qos_volume *v;
  size_t n = 0, i;
  struct qos_snapshot *s;
  int r = 0;

  {
    LOCK_FOR_SCOPE (&registry_lock);
    for (v = registry; v; v = v->next)
      n++;
    names = calloc (n ? n : 1, sizeof *names);
    if (names == NULL)
      return -ENOMEM;
    n = 0;
    for (v = registry; v; v = v->next)
      if ((names[n] = strdup (v->name)) != NULL)
        n++;
  }
  s = malloc (sizeof *s);
  for (i = 0; i < n; i++) {
    if (r == 0 && s && qos_volume_snapshot (names[i], s) == 0)
      r = fn (opaque, s);
    free (names[i]);
  }
  free (s);
  return s ? r : -ENOMEM;
}

int
qos_volume_alarm_state (const char *name, struct alarm_state *states,
                        bool set)
{
  struct qos_volume *v;

  LOCK_FOR_SCOPE (&registry_lock);
  v = find_locked (name);
  if (v == NULL)
    return -ENOENT;
  {
    LOCK_FOR_SCOPE (&v->lock);
    if (set)
      memcpy (v->alarms, states, sizeof v->alarms);
    else
      memcpy (states, v->alarms, sizeof v->alarms);
  }
  return 0;
}

/* ---- The data path -------------------------------------------------- */

static struct qos_volume *
resolve (struct conn *c)
{
  const char *name = blockmap_volume_name (c->vol);
  struct qos_volume *v;

  {
    LOCK_FOR_SCOPE (&registry_lock);
    v = find_locked (name);
  }
  if (v == NULL && server.pool && server.cfg) {
    /* Not registered (unit tests, or a race with a create): do it now. */
    struct blockmap_volume_info *vi = malloc (sizeof *vi);

    if (vi && blockmap_volume_info (server.pool, name, vi) == 0)
      qos_volume_sync (server.cfg, vi);
    free (vi);
    LOCK_FOR_SCOPE (&registry_lock);
    v = find_locked (name);
  }
  c->qos = v;
  return v;
}

static inline struct qos_shard *
shard_of (struct qos_volume *v, struct loop *loop)
{
  return &v->shards[loop->index % QOS_SHARDS];
}

static void timer_cb (struct uop *op, int res, uint32_t flags);

static struct qos_loop *
loop_state (struct loop *loop)
{
  struct qos_loop *ql;

  assert (loop->index < QOS_MAX_LOOPS);
  ql = loops[loop->index];
  if (ql == NULL || ql->loop != loop) {
    /* A new loop with this index (unit tests make several). */
    free (ql);
    ql = calloc (1, sizeof *ql);
    if (ql == NULL)
      return NULL;
    ql->loop = loop;
    ql->timer.cb = timer_cb;
    loops[loop->index] = ql;
  }
  return ql;
}

/* Arm (or bring forward) the loop's timer for DEADLINE_NS. */
static void
arm (struct qos_loop *ql, uint64_t deadline_ns)
{
  struct io_uring_sqe *sqe;

  if (ql->armed && deadline_ns + QOS_TIMER_SLACK >= ql->armed_ns)
    return;
  ql->ts.tv_sec = deadline_ns / QOS_NS_PER_SEC;
  ql->ts.tv_nsec = deadline_ns % QOS_NS_PER_SEC;
  if (!ql->armed) {
    sqe = loop_sqe (ql->loop, &ql->timer);
    io_uring_prep_timeout (sqe, &ql->ts, 0, IORING_TIMEOUT_ABS);
    ql->armed = true;
  }
  else {
    /* If the timer fired meanwhile the update fails (-ENOENT), and
     * timer_cb, already on its way, looks at the queue anyway.
     */
    sqe = loop_sqe (ql->loop, NULL);
    io_uring_prep_timeout_update (sqe, &ql->ts,
                                  (uint64_t) (uintptr_t) &ql->timer,
                                  IORING_TIMEOUT_ABS);
  }
  ql->armed_ns = deadline_ns;
}

/* Nanoseconds REQ still has to wait at NOW_NS (0: it may go). */
static uint64_t
still_to_wait (struct qos_volume *v, struct req *req, uint64_t now_ns)
{
  uint64_t a, b;

  if (!atomic_load_explicit (&v->limited, memory_order_relaxed))
    return 0;
  LOCK_FOR_SCOPE (&v->lock);
  a = qos_bucket_wait (&v->ops, req->qos.ticket_ops, now_ns);
  b = qos_bucket_wait (&v->bytes, req->qos.ticket_bytes, now_ns);
  return a > b ? a : b;
}

/* Start every waiting request whose tickets are good; re-arm for the
 * rest.  A volume whose first waiting request is not ready is skipped
 * for the rest of the pass: its later requests have later tickets.
 */
static void
run_queue (struct qos_loop *ql)
{
  struct qos_volume *blocked[8];
  unsigned nblocked = 0, i;
  uint64_t now = qos_now_ns (), next = UINT64_MAX;
  struct req *req, *prev = NULL, *nx;
  bool all = ql->loop->stopping;        /* drain at shutdown */

  for (req = ql->head; req; req = nx) {
    struct qos_volume *v = req->qos.vol;
    uint64_t wait = 0;
    bool skip = false;

    nx = req->next;
    for (i = 0; i < nblocked; i++)
      if (blocked[i] == v)
        skip = true;
    if (!skip && !all)
      wait = still_to_wait (v, req, now);
    if (skip || wait > 0) {
      if (!skip && nblocked < sizeof blocked / sizeof blocked[0])
        blocked[nblocked++] = v;
      if (!skip && now + wait < next)
        next = now + wait;
      prev = req;
      continue;
    }
    /* Unlink and go. */
    if (prev)
      prev->next = nx;
    else
      ql->head = nx;
    if (ql->tail == req)
      ql->tail = prev;
    ql->n--;
    req->next = NULL;
    req->qos.queued = false;
    {
      struct qos_shard *sh = shard_of (v, ql->loop);

      atomic_fetch_add_explicit (&sh->throttled_ns, now - req->qos.start_ns,
                                 memory_order_relaxed);
      atomic_fetch_add_explicit (&sh->throttled, 1, memory_order_relaxed);
    }
    proto_execute (req);
  }
  if (ql->head) {
    if (next == UINT64_MAX || next > now + QOS_MAX_SLEEP)
      next = now + QOS_MAX_SLEEP;
    arm (ql, next);
  }
}

static void
timer_cb (struct uop *op, int res, uint32_t flags)
{
  struct qos_loop *ql = container_of (op, struct qos_loop, timer);

  (void) flags;
  ql->armed = false;
  if (res == -ECANCELED && ql->head == NULL)
    return;
  run_queue (ql);
}

static enum qos_class
class_of (uint16_t type)
{
  switch (type) {
  case NBD_CMD_READ: return QOS_READ;
  case NBD_CMD_WRITE: case NBD_CMD_WRITE_ZEROES: return QOS_WRITE;
  default: return QOS_OTHER;
  }
}

bool
qos_admit (struct req *req)
{
  struct conn *c = req->conn;
  struct qos_volume *v = c->qos;
  struct qos_loop *ql;
  uint64_t now, wait, w2, ops, bytes;

  if (v == NULL && (c->vol == NULL || (v = resolve (c)) == NULL))
    return false;
  now = qos_now_ns ();
  req->qos.vol = v;
  req->qos.start_ns = now;
  atomic_fetch_add_explicit (&shard_of (v, c->loop)->admitted, 1,
                             memory_order_relaxed);
  if (!atomic_load_explicit (&v->limited, memory_order_relaxed))
    return false;

  switch (req->type) {
  case NBD_CMD_READ: case NBD_CMD_WRITE:
    bytes = req->length;
    break;
  case NBD_CMD_TRIM: case NBD_CMD_WRITE_ZEROES:
    bytes = 0;
    break;
  default:                      /* FLUSH, CACHE, BLOCK_STATUS: free */
    return false;
  }
  {
    LOCK_FOR_SCOPE (&v->lock);
    ops = qos_op_cost (req->length, v->budget.op_size);
    wait = qos_bucket_reserve (&v->ops, ops, now, &req->qos.ticket_ops);
    w2 = qos_bucket_reserve (&v->bytes, bytes, now, &req->qos.ticket_bytes);
  }
  if (w2 > wait)
    wait = w2;
  ql = loop_state (c->loop);
  if (wait == 0 && (ql == NULL || ql->head == NULL))
    return false;               /* the common case: within budget */
  if (ql == NULL)
    return false;               /* out of memory: do not throttle */
  /* Behind requests already waiting on this loop (FIFO), or until its
   * tickets are good.
   */
  req->next = NULL;
  req->qos.queued = true;
  req->qos.deadline_ns = now + wait;
  if (ql->tail)
    ql->tail->next = req;
  else
    ql->head = req;
  ql->tail = req;
  ql->n++;
  log_debug (DBG_QOS, "qos: %s: %s waits %" PRIu64 " us", v->name,
             class_of (req->type) == QOS_READ ? "read" : "write",
             wait / 1000);
  arm (ql, now + (wait < QOS_MAX_SLEEP ? wait : QOS_MAX_SLEEP));
  return true;
}

void
qos_readahead_hit (const struct req *req)
{
  if (req->qos.vol)
    atomic_fetch_add_explicit (&shard_of (req->qos.vol, req->conn->loop)
                               ->readahead_bytes, req->length,
                               memory_order_relaxed);
}

/* An I/O error becomes an event, at most one per volume every
 * QOS_ERROR_EVENT_GAP (the count of the others goes in the next one),
 * so a failing disk cannot flood the log.  Error path only.
 */
#define QOS_ERROR_EVENT_GAP (10 * QOS_NS_PER_SEC)
static void
error_event (struct qos_volume *v, struct req *req, uint64_t now)
{
  uint64_t last = atomic_load (&v->error_event_ns), n;
  int err = req->error ? req->error : req->sync.result;

  if (err == -ESHUTDOWN || err == -ENOSPC || err == -EINVAL
      || err == -EPERM)
    return;                     /* the client's or the operator's doing */
  if ((last != 0 && now - last < QOS_ERROR_EVENT_GAP)
      || !atomic_compare_exchange_strong (&v->error_event_ns, &last, now)) {
    atomic_fetch_add (&v->errors_unreported, 1);
    return;
  }
  n = atomic_exchange (&v->errors_unreported, 0);
  events_emit ("volume.error", v->name, "request at offset %" PRIu64
               " length %" PRIu32 " failed: %s%s", req->offset,
               req->length, strerror (-err), n ? " (and earlier errors "
               "not reported one by one)" : "");
}

void
qos_complete (struct req *req)
{
  struct qos_volume *v = req->qos.vol;
  struct qos_shard *sh;
  enum qos_class cl;
  uint64_t lat;
  bool failed;

  if (v == NULL) {
    /* Refused before execution (bad request, no memory). */
    struct conn *c = req->conn;

    if (c->vol == NULL || req->type == NBD_CMD_DISC)
      return;
    v = c->qos ? c->qos : resolve (c);
    if (v)
      atomic_fetch_add_explicit (&shard_of (v, c->loop)->errors, 1,
                                 memory_order_relaxed);
    return;
  }
  sh = shard_of (v, req->conn->loop);
  cl = class_of (req->type);
  lat = qos_now_ns () - req->qos.start_ns;
  failed = req->error != 0 || req->sync.result < 0;
  atomic_fetch_add_explicit (&sh->ops[cl], 1, memory_order_relaxed);
  if (!failed && (req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE))
    atomic_fetch_add_explicit (&sh->bytes[cl], req->length,
                               memory_order_relaxed);
  if (failed) {
    atomic_fetch_add_explicit (&sh->errors, 1, memory_order_relaxed);
    error_event (v, req, lat + req->qos.start_ns);
  }
  atomic_fetch_add_explicit (&sh->hist[cl][qos_hist_index (lat)], 1,
                             memory_order_relaxed);
  atomic_fetch_add_explicit (&sh->lat_sum[cl], lat, memory_order_relaxed);
  atomic_fetch_add_explicit (&sh->completed, 1, memory_order_release);
  req->qos.vol = NULL;
}
