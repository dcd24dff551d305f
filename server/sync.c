/* server/sync.c: the sync thread, which makes writes durable.
 *
 * blockmap_pool_sync() blocks (fdatasync of the data files, then the
 * journal), so no event loop may call it.  Loops queue a struct
 * sync_req instead (FLUSH, or a FUA write after its data I/O), and
 * this thread answers them in groups:
 *
 *   loop A ─┐                   ┌─ take the whole queue ─┐
 *   loop B ─┼─▶ queue (mutex) ──┤                        ├─▶ loop_post()
 *   loop A ─┘                   └─ blockmap_pool_sync ───┘   + eventfd
 *
 * Group commit: one blockmap_pool_sync covers every request that was
 * queued before it STARTED.  A request queued while a sync is running
 * waits for the next one, because the running sync may have begun
 * before the writes that request must cover had completed.  Since a
 * loop queues a FLUSH only when it arrives, the sync that answers it
 * started after every write completed before it on any connection
 * (DESIGN invariant 1, which is what lets us offer CAN_MULTI_CONN).
 *
 * The thread also commits on its own: about once a second when the
 * pool has changes not yet durable or freed chunks waiting to be
 * reused (blockmap_pool_sync_wanted), and at once when a loop kicks it
 * because a write found the pool full of such chunks.  Without this a
 * client that never FLUSHes would pile journal records up in memory
 * and be refused (ENOSPC) the very space it had trimmed.  An idle pool
 * wants nothing, so the thread then only wakes once a second to ask.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define SYNC_BACKGROUND_SEC 1       /* commit on our own this often */

struct sync_thread {
  struct blockmap_pool *pool;           /* borrowed */
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct sync_req *head, *tail;         /* protected by lock */
  bool stop;                            /* protected by lock */
  bool kicked;                          /* protected by lock */
  unsigned long syncs, requests;        /* this thread only */
};

static void *
sync_thread (void *arg)
{
  struct sync_thread *st = arg;
  struct sync_req *batch, *next;
  int r;

  for (;;) {
    {
      LOCK_FOR_SCOPE (&st->lock);
      struct timespec deadline;

      clock_gettime (CLOCK_MONOTONIC, &deadline);
      deadline.tv_sec += SYNC_BACKGROUND_SEC;
      while (st->head == NULL && !st->stop && !st->kicked)
        if (pthread_cond_timedwait (&st->cond, &st->lock,
                                    &deadline) == ETIMEDOUT)
          break;
      if (st->head == NULL && st->stop)
        break;
      batch = st->head;
      st->head = st->tail = NULL;
      if (batch == NULL && !st->kicked
          && !blockmap_pool_sync_wanted (st->pool))
        continue;               /* idle: nothing to commit */
      st->kicked = false;
    }
    r = blockmap_pool_sync (st->pool);
    if (r < 0) {
      errno = -r;
      log_error ("pool sync failed: %m");
    }
    st->syncs++;
    for (; batch; batch = next) {
      next = batch->next;       /* batch belongs to its loop after post */
      batch->result = r;
      st->requests++;
      loop_post (batch->loop, &batch->msg);
    }
  }
  log_debug (DBG_LOOP, "sync thread: %lu syncs for %lu requests",
             st->syncs, st->requests);
  return NULL;
}

int
sync_start (struct blockmap_pool *pool, struct sync_thread **out)
{
  struct sync_thread *st;
  pthread_condattr_t attr;
  int r;

  st = calloc (1, sizeof *st);
  if (st == NULL)
    return -ENOMEM;
  st->pool = pool;
  pthread_mutex_init (&st->lock, NULL);
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&st->cond, &attr);
  pthread_condattr_destroy (&attr);
  r = pthread_create (&st->thread, NULL, sync_thread, st);
  if (r != 0) {
    errno = r;
    log_error ("sync thread: pthread_create: %m");
    pthread_cond_destroy (&st->cond);
    pthread_mutex_destroy (&st->lock);
    free (st);
    return -r;
  }
  *out = st;
  return 0;
}

void
sync_post (struct sync_thread *st, struct sync_req *sr)
{
  sr->next = NULL;
  LOCK_FOR_SCOPE (&st->lock);
  if (st->tail)
    st->tail->next = sr;
  else
    st->head = sr;
  st->tail = sr;
  pthread_cond_signal (&st->cond);
}

void
sync_kick (struct sync_thread *st)
{
  LOCK_FOR_SCOPE (&st->lock);
  st->kicked = true;
  pthread_cond_signal (&st->cond);
}

void
sync_stop (struct sync_thread *st)
{
  if (st == NULL)
    return;
  {
    LOCK_FOR_SCOPE (&st->lock);
    st->stop = true;
    pthread_cond_signal (&st->cond);
  }
  pthread_join (st->thread, NULL);
  pthread_cond_destroy (&st->cond);
  pthread_mutex_destroy (&st->lock);
  free (st);
}
