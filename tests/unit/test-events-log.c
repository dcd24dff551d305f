/* tests/unit/test-events-log.c: the event log of server/events.c is
 * durable across reopen, bounded by rotation (keep N files), read back
 * oldest first, skips a torn last line, and the writer thread's flush
 * makes queued events readable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct lines {
  char *v[1000];
  int n;
};

static int
collect (void *opaque, const char *line)
{
  struct lines *l = opaque;

  assert_true (l->n < 1000);
  l->v[l->n++] = strdup (line);
  return 0;
}

static void
lines_free (struct lines *l)
{
  while (l->n > 0)
    free (l->v[--l->n]);
}

static char *
tmpdir (void)
{
  char *d = strdup ("/tmp/strata-events.XXXXXX");

  assert_non_null (mkdtemp (d));
  return d;
}

static void
rmdir_all (const char *d)
{
  char cmd[256];

  snprintf (cmd, sizeof cmd, "rm -rf '%s'", d);
  assert_int_equal (system (cmd), 0);
}

static void
test_events_survive_reopen (void **state)
{
  char *d = tmpdir ();
  struct events_log *log;
  struct lines l = { 0 };

  (void) state;
  assert_int_equal (events_log_open (d, 4096, 2, &log), 0);
  assert_int_equal (events_log_append (log, "{\"n\":1}"), 0);
  assert_int_equal (events_log_append (log, "{\"n\":2}"), 0);
  events_log_close (log);
  assert_int_equal (events_log_open (d, 4096, 2, &log), 0);
  assert_int_equal (events_log_append (log, "{\"n\":3}"), 0);
  events_log_close (log);
  assert_int_equal (events_log_read (d, 2, collect, &l), 0);
  assert_int_equal (l.n, 3);
  assert_string_equal (l.v[0], "{\"n\":1}");
  assert_string_equal (l.v[2], "{\"n\":3}");
  lines_free (&l);
  rmdir_all (d);
  free (d);
}

static void
test_rotation_keeps_n_files_and_the_newest_events (void **state)
{
  char *d = tmpdir (), path[512], line[64];
  struct events_log *log;
  struct lines l = { 0 };
  struct stat st;
  int i;

  (void) state;
  /* Lines of 20 bytes (19 + newline), 100 bytes a file: 5 per file. */
  assert_int_equal (events_log_open (d, 100, 2, &log), 0);
  for (i = 0; i < 40; i++) {
    snprintf (line, sizeof line, "{\"n\":%013d}", i);
    assert_int_equal (strlen (line), 19);
    assert_int_equal (events_log_append (log, line), 0);
  }
  events_log_close (log);
  /* events.log, .1, .2 exist and none is over the bound; no .3. */
  for (i = 0; i <= 2; i++) {
    snprintf (path, sizeof path, i ? "%s/events.log.%d" : "%s/events.log",
              d, i);
    assert_int_equal (stat (path, &st), 0);
    assert_true (st.st_size <= 100);
  }
  snprintf (path, sizeof path, "%s/events.log.3", d);
  assert_int_equal (stat (path, &st), -1);
  /* The newest 15 remain, oldest first, none lost between files. */
  assert_int_equal (events_log_read (d, 2, collect, &l), 0);
  assert_int_equal (l.n, 15);
  for (i = 0; i < 15; i++) {
    snprintf (line, sizeof line, "{\"n\":%013d}", 25 + i);
    assert_string_equal (l.v[i], line);
  }
  lines_free (&l);
  rmdir_all (d);
  free (d);
}

static void
test_a_torn_last_line_is_skipped (void **state)
{
  char *d = tmpdir (), path[512];
  struct events_log *log;
  struct lines l = { 0 };
  int fd;

  (void) state;
  assert_int_equal (events_log_open (d, 4096, 1, &log), 0);
  assert_int_equal (events_log_append (log, "{\"n\":1}"), 0);
  events_log_close (log);
  snprintf (path, sizeof path, "%s/events.log", d);
  fd = open (path, O_WRONLY | O_APPEND);
  assert_true (fd >= 0);
  assert_int_equal (write (fd, "{\"n\":", 5), 5);     /* crash mid-line */
  close (fd);
  assert_int_equal (events_log_read (d, 1, collect, &l), 0);
  assert_int_equal (l.n, 1);
  lines_free (&l);
  rmdir_all (d);
  free (d);
}

static void
test_emitted_events_are_on_disk_after_flush (void **state)
{
  char *d = tmpdir ();
  struct lines l = { 0 };
  int i;

  (void) state;
  assert_int_equal (events_start (d), 0);
  for (i = 0; i < 50; i++)
    events_emit ("volume.created", "v1", "created number %d", i);
  events_emit ("daemon.started", NULL, "no volume");
  events_flush ();
  assert_int_equal (events_log_read (d, EVENTS_DEFAULT_KEEP, collect, &l),
                    0);
  assert_int_equal (l.n, 51);
  assert_non_null (strstr (l.v[0], "\"type\":\"volume.created\""));
  assert_non_null (strstr (l.v[0], "\"volume\":\"v1\""));
  assert_non_null (strstr (l.v[49], "created number 49"));
  assert_null (strstr (l.v[50], "\"volume\""));
  events_stop ();
  /* After stop, emitting is harmless and writes nothing. */
  events_emit ("volume.deleted", "v1", "late");
  lines_free (&l);
  assert_int_equal (events_log_read (d, EVENTS_DEFAULT_KEEP, collect, &l),
                    0);
  assert_int_equal (l.n, 51);
  lines_free (&l);
  rmdir_all (d);
  free (d);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_events_survive_reopen),
    cmocka_unit_test (test_rotation_keeps_n_files_and_the_newest_events),
    cmocka_unit_test (test_a_torn_last_line_is_skipped),
    cmocka_unit_test (test_emitted_events_are_on_disk_after_flush),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
