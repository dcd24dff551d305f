/* server/events.c: the event log.
 *
 * What happened to volumes and the daemon, for operators: volume
 * lifecycle (created, deleted, resized, modified: type and budget
 * changes), alarms raised and cleared, I/O errors, daemon start and
 * stop.  One event is one line of JSON:
 *
 *   {"time": 1767225600.123, "type": "volume.resized", "volume": "db",
 *    "message": "resized from 10G to 20G"}
 *
 * Durable: an event is written and fdatasync'ed before events_flush()
 * returns, so `strata events list` after a change shows it, and it
 * survives a crash or a restart.  Bounded: once events.log would pass
 * max_bytes it is renamed to events.log.1 (and .1 to .2 ... up to
 * .KEEP, the oldest dropped), so the log never holds more than about
 * (KEEP + 1) * max_bytes.  The files live in the pool directory.
 *
 * Off the data path: events_emit() only formats the line and queues it
 * under a mutex; a thread of its own writes and syncs the queue in
 * batches (one fdatasync per batch).  events_flush() waits for the
 * thread to catch up, for the admin thread's readers.
 *
 * Lock: qlock protects the queue, the sequence numbers and LOG's use
 * by readers; the writer thread holds it only to take the queue and
 * to rotate, not while writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

/* ---- The files ------------------------------------------------------ */

struct events_log {
  char *dir;                    /* owned */
  uint64_t max_bytes;
  unsigned keep;
  int fd;                       /* events.log, O_APPEND */
  uint64_t size;
};

static int
log_path (char *buf, size_t len, const char *dir, unsigned n)
{
  int r = n ? snprintf (buf, len, "%s/events.log.%u", dir, n)
    : snprintf (buf, len, "%s/events.log", dir);

  return r < 0 || (size_t) r >= len ? -ENAMETOOLONG : 0;
}

static int
open_current (struct events_log *log)
{
  char path[PATH_MAX];
  struct stat st;
  int r;

  if ((r = log_path (path, sizeof path, log->dir, 0)) < 0)
    return r;
  log->fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (log->fd < 0)
    return -errno;
  if (fstat (log->fd, &st) < 0)
    return -errno;
  log->size = st.st_size;
  return 0;
}

static int
sync_dir (const char *dir)
{
  CLEANUP_CLOSE int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 || fsync (fd) < 0)
    return -errno;
  return 0;
}

int
events_log_open (const char *dir, uint64_t max_bytes, unsigned keep,
                 struct events_log **out)
{
  struct events_log *log = calloc (1, sizeof *log);
  int r;

  if (log == NULL)
    return -ENOMEM;
  log->fd = -1;
  log->dir = strdup (dir);
  log->max_bytes = max_bytes ? max_bytes : EVENTS_DEFAULT_MAX_BYTES;
  log->keep = keep;
  if (log->dir == NULL) {
    events_log_close (log);
    return -ENOMEM;
  }
  r = open_current (log);
  if (r < 0) {
    events_log_close (log);
    return r;
  }
  *out = log;
  return 0;
}

void
events_log_close (struct events_log *log)
{
  if (log == NULL)
    return;
  if (log->fd >= 0)
    close (log->fd);
  free (log->dir);
  free (log);
}

/* events.log.K-1 → .K ... events.log → .1; the oldest is dropped. */
static int
rotate (struct events_log *log)
{
  char from[PATH_MAX], to[PATH_MAX];
  unsigned n;
  int r;

  close (log->fd);
  log->fd = -1;
  if (log->keep == 0) {
    if ((r = log_path (from, sizeof from, log->dir, 0)) < 0)
      return r;
    if (unlink (from) < 0 && errno != ENOENT)
      return -errno;
  }
  for (n = log->keep; n > 0; n--) {
    if ((r = log_path (from, sizeof from, log->dir, n - 1)) < 0
        || (r = log_path (to, sizeof to, log->dir, n)) < 0)
      return r;
    if (rename (from, to) < 0 && errno != ENOENT)
      return -errno;
  }
  if ((r = open_current (log)) < 0)
    return r;
  return sync_dir (log->dir);
}

int
events_log_append (struct events_log *log, const char *line)
{
  size_t len = strlen (line);
  CLEANUP_FREE char *buf = malloc (len + 1);
  size_t done = 0;
  int r;

  if (buf == NULL)
    return -ENOMEM;
  memcpy (buf, line, len);
  buf[len++] = '\n';
  if (log->size > 0 && log->size + len > log->max_bytes
      && (r = rotate (log)) < 0)
    return r;
  if (log->fd < 0 && (r = open_current (log)) < 0)
    return r;
  while (done < len) {
    ssize_t n = write (log->fd, buf + done, len - done);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    done += n;
  }
  log->size += len;
  if (fdatasync (log->fd) < 0)
    return -errno;
  return 0;
}

int
events_log_read (const char *dir, unsigned keep,
                 int (*fn) (void *opaque, const char *line), void *opaque)
{
  char path[PATH_MAX];
  CLEANUP_FREE char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  unsigned i;
  int r;

  for (i = keep + 1; i-- > 0;) {        /* oldest first */
    FILE *fp;

    if ((r = log_path (path, sizeof path, dir, i)) < 0)
      return r;
    fp = fopen (path, "re");
    if (fp == NULL) {
      if (errno == ENOENT)
        continue;
      return -errno;
    }
    while ((n = getline (&line, &cap, fp)) > 0) {
      if (line[n - 1] != '\n')
        break;                  /* torn last line of a crash: skip */
      line[n - 1] = '\0';
      if ((r = fn (opaque, line)) != 0) {
        fclose (fp);
        return r;
      }
    }
    fclose (fp);
  }
  return 0;
}

/* ---- The writer thread ---------------------------------------------- */

struct event {
  struct event *next;
  uint64_t seq;
  char *line;                   /* owned */
};

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;    /* work */
static pthread_cond_t dcond = PTHREAD_COND_INITIALIZER;    /* done */
static struct event *qhead, *qtail;     /* protected by qlock */
static uint64_t queued_seq, written_seq;/* protected by qlock */
static bool running, stopping;          /* protected by qlock */
static struct events_log *elog;         /* writer thread, and start/stop */
static char *edir;                      /* immutable while running */
static pthread_t writer;
static unsigned failures;

static void *
writer_thread (void *arg)
{
  (void) arg;
  for (;;) {
    struct event *batch, *e;
    uint64_t last = 0;

    {
      LOCK_FOR_SCOPE (&qlock);
      while (qhead == NULL && !stopping)
        pthread_cond_wait (&qcond, &qlock);
      if (qhead == NULL && stopping)
        break;
      batch = qhead;
      qhead = qtail = NULL;
    }
    while ((e = batch) != NULL) {
      int r = events_log_append (elog, e->line);

      if (r < 0 && failures++ < 10)
        log_error ("event log %s: %s (event lost: %s)", edir,
                   strerror (-r), e->line);
      last = e->seq;
      batch = e->next;
      free (e->line);
      free (e);
    }
    {
      LOCK_FOR_SCOPE (&qlock);
      written_seq = last;
      pthread_cond_broadcast (&dcond);
    }
  }
  return NULL;
}

int
events_start (const char *dir)
{
  int r;

  edir = strdup (dir);
  if (edir == NULL)
    return -ENOMEM;
  r = events_log_open (dir, EVENTS_DEFAULT_MAX_BYTES, EVENTS_DEFAULT_KEEP,
                       &elog);
  if (r < 0) {
    log_error ("cannot open the event log in %s: %s", dir, strerror (-r));
    free (edir);
    edir = NULL;
    return r;
  }
  stopping = false;
  r = pthread_create (&writer, NULL, writer_thread, NULL);
  if (r != 0) {
    log_error ("cannot start the event log thread: %s", strerror (r));
    events_log_close (elog);
    elog = NULL;
    free (edir);
    edir = NULL;
    return -r;
  }
  running = true;
  return 0;
}

void
events_stop (void)
{
  if (!running)
    return;
  {
    LOCK_FOR_SCOPE (&qlock);
    stopping = true;
    pthread_cond_signal (&qcond);
  }
  pthread_join (writer, NULL);
  running = false;
  events_log_close (elog);
  elog = NULL;
  free (edir);
  edir = NULL;
}

const char *
events_dir (void)
{
  return edir;
}

void
events_emit (const char *type, const char *volume, const char *fmt, ...)
{
  char msg[512];
  struct timespec ts;
  struct event *e;
  json_t *j;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  log_debug (DBG_ADMIN, "event %s %s: %s", type, volume ? volume : "-", msg);
  clock_gettime (CLOCK_REALTIME, &ts);
  j = json_pack ("{s:f, s:s, s:s}", "time",
                 (double) ts.tv_sec + ts.tv_nsec / 1e9, "type", type,
                 "message", msg);
  if (j && volume)
    json_object_set_new (j, "volume", json_string (volume));
  e = calloc (1, sizeof *e);
  if (j == NULL || e == NULL
      || (e->line = json_dumps (j, JSON_COMPACT | JSON_SORT_KEYS
                                | JSON_REAL_PRECISION (17))) == NULL) {
    json_decref (j);
    free (e);
    return;                     /* out of memory: the event is lost */
  }
  json_decref (j);
  LOCK_FOR_SCOPE (&qlock);
  if (!running) {               /* no log (unit tests, -s) */
    free (e->line);
    free (e);
    return;
  }
  e->seq = ++queued_seq;
  if (qtail)
    qtail->next = e;
  else
    qhead = e;
  qtail = e;
  pthread_cond_signal (&qcond);
}

void
events_flush (void)
{
  LOCK_FOR_SCOPE (&qlock);
  uint64_t want = queued_seq;

  while (running && written_seq < want)
    pthread_cond_wait (&dcond, &qlock);
}
