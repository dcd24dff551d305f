/* server/policy.c: the background thread that runs snapshot policies
 * and frees the maps of deleted volumes and snapshots.
 *
 * Policies.  Each volume may carry a policy in its attrs (schedule,
 * retention, tags, "since": when it was set, and "last_run": the slot
 * last taken).  About once a second the runner looks at each: the last
 * time the policy fired is the newest of those two and the times of the
 * snapshots it took (stored in each snapshot's attrs), so nothing is
 * kept in memory, a restart loses nothing, and retention removing a
 * snapshot does not make its slot look missed.  If the schedule has a firing time after that and not
 * after now, the runner takes one snapshot named auto-YYYYMMDD-HHMM
 * (UTC) for the latest such time -- after downtime it catches up with
 * one snapshot, not a storm of them -- then applies retention to the
 * policy's snapshots (snapshot/retention.c).  Snapshots with clients
 * attached are kept until the next pass.
 *
 * Time comes from policy_now(): the system clock, or with stratad
 * --debug-clock-file the number in that file, read on each pass, so
 * tests move time forward by writing to it.
 *
 * Reaping.  A delete only detaches a map (blockmap/reap.c); this thread
 * frees it BATCH nodes at a time with a short pause between batches,
 * so that client requests get the pool lock in between, and then kicks
 * the sync thread so that the freeing becomes durable.  Once it is, the
 * thread punches the freed chunks (blockmap_pool_reclaim), a batch at a
 * time: a commit only punches a few itself, so FLUSH on any volume
 * never waits behind the hundreds of thousands a big delete frees.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "snapshot/snapshot.h"
#include "internal.h"

#define REAP_BATCH 1024
#define RECLAIM_BATCH 256
#define REAP_PAUSE_NS (100 * 1000)
/* Look at most this far back for a missed firing. */
#define CATCH_UP_SEC (2 * 86400)

static struct {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool running, stop, kicked;
  struct blockmap_pool *pool;
  char *clock_file;
} pr = { .lock = PTHREAD_MUTEX_INITIALIZER };

int64_t
policy_now (void)
{
  const char *f = pr.clock_file;
  FILE *fp;
  long long t;

  if (f && (fp = fopen (f, "re")) != NULL) {
    int ok = fscanf (fp, "%lld", &t) == 1;
    fclose (fp);
    if (ok && t > 0)
      return t;
  }
  return time (NULL);
}

/* The newest policy time among SNAPS (-1: none). */
static int64_t
last_policy_run (const struct blockmap_volume_info *snaps, size_t n,
                 bool *managed)
{
  int64_t last = -1;

  for (size_t i = 0; i < n; i++) {
    json_t *root = snaps[i].attrs[0] ? json_loads (snaps[i].attrs, 0, NULL)
      : NULL;
    json_t *at = json_object_get (json_object_get (root, "policy"), "at");
    managed[i] = json_is_integer (at);
    if (managed[i] && json_integer_value (at) > last)
      last = json_integer_value (at);
    json_decref (root);
  }
  return last;
}

static int64_t
snap_time (const struct blockmap_volume_info *vi)
{
  json_t *root = vi->attrs[0] ? json_loads (vi->attrs, 0, NULL) : NULL;
  json_t *at = json_object_get (json_object_get (root, "policy"), "at");
  int64_t t = json_is_integer (at) ? json_integer_value (at)
    : (int64_t) vi->created;

  json_decref (root);
  return t;
}

struct pol {
  char volume[BLOCKMAP_NAME_MAX];
  char schedule[128];
  struct snap_retention keep;
  int64_t since;
  int64_t last_run;             /* the slot last taken; 0: none */
  json_t *tags;                 /* owned */
};

/* Remember in VOL's policy that slot AT was taken, so that retention
 * removing the snapshot does not make the slot look missed.
 */
static void
record_run (struct blockmap_pool *pool, const char *vol, int64_t at)
{
  struct admin_err e;
  struct admin_req r = { .pool = pool, .e = &e };
  struct blockmap_volume_info vi;
  CLEANUP_FREE char *attrs = NULL;
  json_t *root, *p;

  if (blockmap_volume_info (pool, vol, &vi) < 0)
    return;
  root = json_loads (vi.attrs, 0, NULL);
  p = json_object_get (root, "snapshot_policy");
  if (json_is_object (p)) {
    p = json_deep_copy (p);
    json_object_set_new (p, "last_run", json_integer (at));
    if (admin_attrs_with (&r, vi.attrs, "snapshot_policy", p, &attrs) == 0
        && blockmap_volume_set_attrs (pool, vol, NULL, attrs) < 0)
      log_error ("snapshot policy of volume %s: cannot record its run",
                 vol);
  }
  json_decref (root);
}

static void
run_policy (struct blockmap_pool *pool, const struct pol *p, int64_t now)
{
  CLEANUP_FREE struct blockmap_volume_info *snaps = NULL;
  CLEANUP_FREE bool *managed = NULL, *doomed = NULL;
  CLEANUP_FREE struct snap_entry *ents = NULL;
  struct snap_cron c;
  struct admin_err e;
  int64_t last, t, fire = -1;
  size_t n;

  if (snap_cron_parse (p->schedule, &c, NULL, 0) < 0)
    return;                     /* checked when set: cannot happen */
  if (snapshot_collect (pool, p->volume, &snaps, &n) < 0)
    return;
  managed = calloc (n + 1, sizeof *managed);
  doomed = calloc (n + 1, sizeof *doomed);
  ents = calloc (n + 1, sizeof *ents);
  if (managed == NULL || doomed == NULL || ents == NULL)
    return;
  last = last_policy_run (snaps, n, managed);
  if (last < p->since)
    last = p->since;
  if (last < p->last_run)
    last = p->last_run;
  if (last < now - CATCH_UP_SEC)
    last = now - CATCH_UP_SEC;
  for (t = snap_cron_next (&c, last); t >= 0 && t <= now;
       t = snap_cron_next (&c, t))
    fire = t;

  if (fire >= 0) {
    char name[64];
    struct tm tm;
    time_t tt = fire;
    gmtime_r (&tt, &tm);
    strftime (name, sizeof name, "auto-%Y%m%d-%H%M", &tm);
    for (int k = 2; k < 100; k++) {
      char full[2 * BLOCKMAP_NAME_MAX];
      struct blockmap_volume_info vi;
      snprintf (full, sizeof full, "%s@%s", p->volume, name);
      if (strlen (full) >= BLOCKMAP_NAME_MAX ||
          blockmap_volume_info (pool, full, &vi) < 0)
        break;              /* snapshot_take names a name too long */
      snprintf (name + strcspn (name, "."), sizeof name
                - strcspn (name, "."), ".%d", k);
    }
    if (snapshot_take (pool, p->volume, name, p->tags, fire, &e) < 0)
      log_error ("snapshot policy of volume %s: %s", p->volume, e.msg);
    else {
      record_run (pool, p->volume, fire);
      free (snaps);
      snaps = NULL;
      if (snapshot_collect (pool, p->volume, &snaps, &n) < 0)
        return;
      free (managed);
      free (doomed);
      free (ents);
      managed = calloc (n + 1, sizeof *managed);
      doomed = calloc (n + 1, sizeof *doomed);
      ents = calloc (n + 1, sizeof *ents);
      if (managed == NULL || doomed == NULL || ents == NULL)
        return;
      last_policy_run (snaps, n, managed);
    }
  }

  if (p->keep.keep_count == 0 && p->keep.keep_age == 0)
    return;
  for (size_t i = 0; i < n; i++)
    ents[i] = (struct snap_entry) { .name = snaps[i].name,
                                    .created = snap_time (&snaps[i]),
                                    .managed = managed[i] };
  if (snap_retention_select (&p->keep, ents, n, now, doomed) == 0)
    return;
  for (size_t i = 0; i < n; i++)
    if (doomed[i] &&
        snapshot_remove (pool, snaps[i].name, false, " by retention",
                         &e) < 0)
      log_info ("snapshot policy of volume %s: keeping %s for now: %s",
                p->volume, snaps[i].name, e.msg);
}

struct pol_list {
  struct pol *v;
  size_t n, cap;
};

static int
collect_policy (void *opaque, const struct blockmap_volume_info *vi)
{
  struct pol_list *l = opaque;
  json_t *root, *p, *s;
  struct pol *x;

  if (vi->readonly || vi->attrs[0] == '\0')
    return 0;
  root = json_loads (vi->attrs, 0, NULL);
  p = json_object_get (root, "snapshot_policy");
  s = json_object_get (p, "schedule");
  if (json_is_string (s)) {
    if (l->n == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 8;
      struct pol *v = realloc (l->v, cap * sizeof *v);
      if (v == NULL) {
        json_decref (root);
        return -ENOMEM;
      }
      l->v = v;
      l->cap = cap;
    }
    x = &l->v[l->n++];
    memset (x, 0, sizeof *x);
    snprintf (x->volume, sizeof x->volume, "%s", vi->name);
    snprintf (x->schedule, sizeof x->schedule, "%s", json_string_value (s));
    x->keep.keep_count = json_integer_value (json_object_get (p,
                                                              "keep_count"));
    x->keep.keep_age = json_integer_value (json_object_get (p, "keep_age"));
    x->since = json_integer_value (json_object_get (p, "since"));
    x->last_run = json_integer_value (json_object_get (p, "last_run"));
    x->tags = json_incref (json_object_get (p, "tags"));
  }
  json_decref (root);
  return 0;
}

void
policy_run_once (struct blockmap_pool *pool, int64_t now)
{
  struct pol_list l = { 0 };

  blockmap_volume_foreach (pool, collect_policy, &l);
  for (size_t i = 0; i < l.n; i++) {
    run_policy (pool, &l.v[i], now);
    json_decref (l.v[i].tags);
  }
  free (l.v);
}

static void
reap (struct blockmap_pool *pool)
{
  bool did = false;

  while (blockmap_pool_reap_wanted (pool)) {
    struct timespec ts = { .tv_nsec = REAP_PAUSE_NS };
    {
      LOCK_FOR_SCOPE (&pr.lock);
      if (pr.stop)
        return;
    }
    blockmap_pool_reap (pool, REAP_BATCH);
    did = true;
    nanosleep (&ts, NULL);
  }
  if (did && server.sync)
    sync_kick (server.sync);    /* the freed chunks wait for a commit */
}

/* Punch what deletes freed, once durable, off the commit path. */
static void
reclaim (struct blockmap_pool *pool)
{
  for (;;) {
    struct timespec ts = { .tv_nsec = REAP_PAUSE_NS };
    {
      LOCK_FOR_SCOPE (&pr.lock);
      if (pr.stop)
        return;
    }
    if (blockmap_pool_reclaim (pool, RECLAIM_BATCH) == 0)
      return;
    nanosleep (&ts, NULL);
  }
}

static void *
policy_thread (void *opaque)
{
  struct blockmap_pool *pool = opaque;

  for (;;) {
    {
      LOCK_FOR_SCOPE (&pr.lock);
      struct timespec deadline;
      clock_gettime (CLOCK_MONOTONIC, &deadline);
      deadline.tv_sec += 1;
      while (!pr.stop && !pr.kicked)
        if (pthread_cond_timedwait (&pr.cond, &pr.lock, &deadline)
            == ETIMEDOUT)
          break;
      if (pr.stop)
        break;
      pr.kicked = false;
    }
    reap (pool);
    policy_run_once (pool, policy_now ());
    reap (pool);
    reclaim (pool);
  }
  return NULL;
}

int
policy_start (struct blockmap_pool *pool, const char *clock_file)
{
  pthread_condattr_t attr;
  int r;

  pr.pool = pool;
  pr.stop = pr.kicked = false;
  if (clock_file && (pr.clock_file = strdup (clock_file)) == NULL)
    return -ENOMEM;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&pr.cond, &attr);
  pthread_condattr_destroy (&attr);
  r = pthread_create (&pr.thread, NULL, policy_thread, pool);
  if (r != 0) {
    errno = r;
    log_error ("policy thread: pthread_create: %m");
    pthread_cond_destroy (&pr.cond);
    return -r;
  }
  pr.running = true;
  return 0;
}

void
policy_kick (void)
{
  LOCK_FOR_SCOPE (&pr.lock);
  pr.kicked = true;
  if (pr.running)
    pthread_cond_signal (&pr.cond);
}

void
policy_stop (void)
{
  if (!pr.running)
    return;
  {
    LOCK_FOR_SCOPE (&pr.lock);
    pr.stop = true;
    pthread_cond_signal (&pr.cond);
  }
  pthread_join (pr.thread, NULL);
  pthread_cond_destroy (&pr.cond);
  pr.running = false;
  free (pr.clock_file);
  pr.clock_file = NULL;
}
