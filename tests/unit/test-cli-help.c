/* tests/unit/test-cli-help.c: `strata --help` and the man page say the
 * same thing (STYLE B.11): the POD's SYNOPSIS is tools/strata-synopsis.txt
 * line for line, --help prints every synopsis line, every command and
 * every option, each command's --help shows its own options, the POD
 * describes each command, and usage errors exit 2.
 *
 * The snapshot commands are also run against a fake stratad (a thread
 * answering every request with one canned reply), to check the
 * requests they send (doc/admin-protocol.md, Snapshots) and how they
 * print results and refusals; the real daemon is tested in
 * tests/integration.
 *
 * Runs the built `strata` next to this test binary; skips if it is not
 * there.  Source files are found from __FILE__.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

static char strata[PATH_MAX];
static char srcdir[PATH_MAX];

/* Run the shell command CMD (stdout and stderr together) into a new
 * buffer *OUT; returns its exit status.
 */
static int
run (char **out, const char *fmt, ...)
{
  char cmd[PATH_MAX + 512], *buf = NULL;
  size_t len = 0, cap = 0, n;
  va_list ap;
  FILE *fp;
  int status;

  va_start (ap, fmt);
  vsnprintf (cmd, sizeof cmd, fmt, ap);
  va_end (ap);
  strncat (cmd, " 2>&1", sizeof cmd - strlen (cmd) - 1);
  fp = popen (cmd, "r");
  assert_non_null (fp);
  do {
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 65536;
      buf = realloc (buf, cap + 1);
      assert_non_null (buf);
    }
    n = fread (buf + len, 1, cap - len, fp);
    len += n;
  } while (n > 0);
  buf[len] = '\0';
  status = pclose (fp);
  *out = buf;
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static char *
slurp (const char *rel)
{
  char path[PATH_MAX * 2], *buf;
  FILE *fp;
  long n;

  snprintf (path, sizeof path, "%s/%s", srcdir, rel);
  fp = fopen (path, "r");
  if (fp == NULL)
    fail_msg ("cannot open %s", path);
  fseek (fp, 0, SEEK_END);
  n = ftell (fp);
  rewind (fp);
  buf = malloc (n + 1);
  assert_non_null (buf);
  assert_int_equal (fread (buf, 1, n, fp), n);
  buf[n] = '\0';
  fclose (fp);
  return buf;
}

static int
setup (void **state)
{
  char exe[PATH_MAX] = "";
  ssize_t n;

  (void) state;
  n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    return -1;
  exe[n] = '\0';
  snprintf (strata, sizeof strata, "%s/strata", dirname (exe));
  /* __FILE__ is SRCDIR/tests/unit/test-cli-help.c */
  snprintf (exe, sizeof exe, "%s", __FILE__);
  snprintf (srcdir, sizeof srcdir, "%s", dirname (dirname (dirname (exe))));
  return 0;
}

static void
need_strata (void)
{
  if (access (strata, X_OK) != 0)
    skip ();
}

/* The next line of *P (without its newline), trimmed; NULL at the end. */
static char *
next_line (char **p)
{
  char *s = *p, *nl;

  if (*s == '\0')
    return NULL;
  nl = strchr (s, '\n');
  if (nl) {
    *nl = '\0';
    *p = nl + 1;
  }
  else
    *p = s + strlen (s);
  while (*s == ' ')
    s++;
  return s;
}

static void
test_pod_synopsis_is_the_synopsis_file (void **state)
{
  char *syn = slurp ("tools/strata-synopsis.txt");
  char *pod = slurp ("tools/strata.pod");
  char *p, *q, *a, *b;

  (void) state;
  p = strstr (pod, "=head1 SYNOPSIS\n");
  assert_non_null (p);
  p += strlen ("=head1 SYNOPSIS\n");
  q = strstr (p, "\n=head1 ");
  assert_non_null (q);
  *q = '\0';
  while (*p == '\n')
    p++;
  q = syn;
  for (;;) {
    a = next_line (&q);
    do
      b = next_line (&p);
    while (b && *b == '\0' && a);
    if (a == NULL) {
      while (b && *b == '\0')
        b = next_line (&p);
      if (b)
        fail_msg ("the POD SYNOPSIS has an extra line: %s", b);
      break;
    }
    if (b == NULL || strcmp (a, b) != 0)
      fail_msg ("synopsis differs: file '%s', POD '%s'", a, b ? b : "(end)");
  }
  free (syn);
  free (pod);
}

static void
test_help_mentions_every_command_and_option (void **state)
{
  char *syn = slurp ("tools/strata-synopsis.txt"), *out, *p, *line;

  (void) state;
  need_strata ();
  assert_int_equal (run (&out, "%s --help", strata), 0);
  p = syn;
  while ((line = next_line (&p)) != NULL) {
    char *tok, *save, copy[512];

    if (*line == '\0')
      continue;
    if (strstr (out, line) == NULL)
      fail_msg ("--help lacks the synopsis line: %s", line);
    snprintf (copy, sizeof copy, "%s", line);
    for (tok = strtok_r (copy, " []|.", &save); tok;
         tok = strtok_r (NULL, " []|.", &save))
      if (strncmp (tok, "--", 2) == 0 && strstr (out, tok) == NULL)
        fail_msg ("--help lacks the option %s", tok);
  }
  free (out);
  free (syn);
}

/* The command a synopsis LINE is about, its lower-case words after
 * "strata" ("volume create", "snapshot policy set"), into BUF; returns
 * how many words (0 for the lines about strata itself).
 */
static int
command_words (const char *line, char *buf, size_t len)
{
  const char *p = line + strlen ("strata ");
  size_t n = 0, w;
  int words = 0;

  buf[0] = '\0';
  if (strncmp (line, "strata ", strlen ("strata ")) != 0)
    return 0;
  while ((w = strspn (p, "abcdefghijklmnopqrstuvwxyz")) > 0
         && (p[w] == ' ' || p[w] == '\0') && n + w + 2 <= len) {
    n += snprintf (buf + n, len - n, "%s%.*s", words ? " " : "", (int) w, p);
    words++;
    p += w;
    p += *p == ' ';
  }
  return words;
}

static void
test_each_command_help_shows_its_options (void **state)
{
  char *syn = slurp ("tools/strata-synopsis.txt"), *out, *p, *line;

  (void) state;
  need_strata ();
  p = syn;
  while ((line = next_line (&p)) != NULL) {
    char cmd[96], copy[512], *tok, *save;

    if (command_words (line, cmd, sizeof cmd) < 2)
      continue;
    if (run (&out, "%s %s --help", strata, cmd) != 0)
      fail_msg ("strata %s --help failed: %s", cmd, out);
    if (strstr (out, line) == NULL)
      fail_msg ("strata %s --help lacks its synopsis: %s", cmd, out);
    snprintf (copy, sizeof copy, "%s", line);
    for (tok = strtok_r (copy, " []|.", &save); tok;
         tok = strtok_r (NULL, " []|.", &save))
      if (strncmp (tok, "--", 2) == 0 && strstr (out, tok) == NULL)
        fail_msg ("strata %s --help lacks %s", cmd, tok);
    free (out);
  }
  free (syn);
}

/* Every command of the synopsis has its item in the POD's list of
 * commands ("=item B<snapshot policy set> ...").
 */
static void
test_pod_describes_every_command (void **state)
{
  char *syn = slurp ("tools/strata-synopsis.txt");
  char *pod = slurp ("tools/strata.pod"), *p, *line;

  (void) state;
  p = syn;
  while ((line = next_line (&p)) != NULL) {
    char cmd[96], item[128], *q;

    if (command_words (line, cmd, sizeof cmd) < 2)
      continue;
    snprintf (item, sizeof item, "\n=item B<%s", cmd);
    for (q = strstr (pod, item); q; q = strstr (q + 1, item))
      if (q[strlen (item)] == '>' || q[strlen (item)] == ' ')
        break;
    if (q == NULL)
      fail_msg ("tools/strata.pod has no '=item B<%s>' for: %s", cmd, line);
  }
  free (syn);
  free (pod);
}

/* The help of the snapshot noun and of its policy group lists their
 * commands, and each new command's help names its options.
 */
static void
test_snapshot_help (void **state)
{
  static const char *const cmds[] = {
    "snapshot create", "snapshot list", "snapshot show", "snapshot delete",
    "snapshot diff", "snapshot policy set", "snapshot policy show",
    "snapshot policy list", "snapshot policy clear",
  };
  char *out, want[128];
  size_t i;

  (void) state;
  need_strata ();
  assert_int_equal (run (&out, "%s snapshot --help", strata), 0);
  for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    snprintf (want, sizeof want, "strata %s ", cmds[i]);
    if (strstr (out, want) == NULL)
      fail_msg ("strata snapshot --help lacks %s: %s", cmds[i], out);
  }
  free (out);

  assert_int_equal (run (&out, "%s snapshot policy --help", strata), 0);
  assert_non_null (strstr (out, "usage: strata snapshot policy set VOLUME "
                           "--schedule CRON"));
  assert_non_null (strstr (out, "strata snapshot policy clear VOLUME"));
  assert_null (strstr (out, "snapshot create"));
  free (out);

  for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    assert_int_equal (run (&out, "%s %s --help", strata, cmds[i]), 0);
    snprintf (want, sizeof want, "usage: strata %s ", cmds[i]);
    if (strncmp (out, want, strlen (want)) != 0)
      fail_msg ("strata %s --help: %s", cmds[i], out);
    free (out);
  }
  assert_int_equal (run (&out, "%s snapshot policy set --help", strata), 0);
  assert_non_null (strstr (out, "--schedule CRON"));
  assert_non_null (strstr (out, "--keep-count N"));
  assert_non_null (strstr (out, "--keep-age DURATION"));
  assert_non_null (strstr (out, "--tag KEY=VALUE"));
  free (out);
  assert_int_equal (run (&out, "%s volume create --help", strata), 0);
  assert_non_null (strstr (out, "       strata volume create NAME "
                           "--from-snapshot VOLUME@SNAPSHOT [--size SIZE]"));
  free (out);
  assert_int_equal (run (&out, "%s --help", strata), 0);
  assert_non_null (strstr (out, "  snapshot policy clear Remove"));
  free (out);
}

static void
expect (int want_status, const char *want_text, const char *args)
{
  char *out;
  int st = run (&out, "STRATA_SOCKET=/nonexistent/admin.sock %s %s",
                strata, args);

  if (st != want_status || strstr (out, want_text) == NULL)
    fail_msg ("strata %s: exit %d, output: %s (wanted exit %d and '%s')",
              args, st, out, want_status, want_text);
  free (out);
}

static void
test_usage_errors_exit_2_and_say_what_to_try (void **state)
{
  (void) state;
  need_strata ();
  expect (2, "strata: unknown command 'volume explode'; try 'strata --help'",
          "volume explode");
  expect (2, "unknown command 'frob'", "frob");
  expect (2, "no command given", "");
  expect (2, "unknown option '--frob'", "--frob volume list");
  expect (2, "strata: volume create needs NAME and --size or "
          "--from-snapshot; try 'strata volume create --help'",
          "volume create");
  expect (2, "volume create needs NAME and --size or --from-snapshot",
          "volume create v1");
  expect (2, "unknown option '--colour'", "volume list --colour red");
  expect (2, "option '--size' needs a value", "volume create v1 --size");
  expect (2, "--size 'ten' is not a size", "volume create v1 --size ten");
  expect (2, "label 'a b' is not of the form key=value with "
          "[A-Za-z0-9._/-] keys", "volume create v1 --size 1G --label 'a b'");
  expect (2, "label 'noequals' is not of the form",
          "volume list --label noequals");
  expect (2, "unexpected argument 'extra'", "volume show v1 extra");
  expect (2, "--chunk-size 3K is not a power of two",
          "pool init /tmp/nowhere --chunk-size 3K");
  expect (0, "strata 0.", "--version");
  expect (0, "usage: strata volume create", "volume --help");
}

static void
test_snapshot_usage_errors (void **state)
{
  static const char bad_name[] = "is not valid: use 1 to 127 characters of "
    "[A-Za-z0-9._-], not starting with '.' or '-'";
  char want[256];

  (void) state;
  need_strata ();
  expect (2, "strata: 'snapshot' needs a command", "snapshot");
  expect (2, "strata: 'snapshot policy' needs a command", "snapshot policy");
  expect (2, "unknown command 'snapshot explode'", "snapshot explode");
  expect (2, "unknown command 'snapshot policy explode'",
          "snapshot policy explode");

  /* Missing arguments. */
  expect (2, "strata: snapshot create needs VOLUME and NAME (or "
          "VOLUME@NAME); try 'strata snapshot create --help'",
          "snapshot create");
  expect (2, "snapshot create needs VOLUME and NAME", "snapshot create vol1");
  expect (2, "snapshot create: unexpected argument 'x'",
          "snapshot create vol1 s1 x");
  expect (2, "snapshot show needs VOLUME@SNAPSHOT", "snapshot show");
  expect (2, "snapshot show needs VOLUME@SNAPSHOT", "snapshot show vol1");
  expect (2, "snapshot delete needs VOLUME@SNAPSHOT", "snapshot delete");
  expect (2, "snapshot diff needs VOLUME@SNAPSHOT, then VOLUME@SNAPSHOT or "
          "VOLUME", "snapshot diff vol1@a");
  expect (2, "'vol1' is not a snapshot: give VOLUME@SNAPSHOT; try 'strata "
          "snapshot diff --help'", "snapshot diff vol1 vol1@b");
  expect (2, "snapshot list: unexpected argument 'b'", "snapshot list a b");
  expect (2, "strata: snapshot policy set needs VOLUME and --schedule; try "
          "'strata snapshot policy set --help'", "snapshot policy set");
  expect (2, "snapshot policy set needs VOLUME and --schedule",
          "snapshot policy set vol1 --keep-count 3");
  expect (2, "snapshot policy show needs VOLUME", "snapshot policy show");
  expect (2, "snapshot policy clear needs VOLUME", "snapshot policy clear");
  expect (2, "snapshot policy list: unexpected argument 'vol1'",
          "snapshot policy list vol1");
  expect (2, "option '--schedule' needs a value",
          "snapshot policy set vol1 --schedule");

  /* Names, checked before anything is sent. */
  snprintf (want, sizeof want, "volume name '.v' %s", bad_name);
  expect (2, want, "snapshot create .v s1");
  snprintf (want, sizeof want, "snapshot name '-s1' %s", bad_name);
  expect (2, want, "snapshot create vol1 -- -s1");
  snprintf (want, sizeof want, "volume name '-v' %s", bad_name);
  expect (2, want, "snapshot create -- -v s1");     /* order kept */
  snprintf (want, sizeof want, "snapshot name 's1@x' %s", bad_name);
  expect (2, want, "snapshot create vol1@s1@x");
  snprintf (want, sizeof want, "snapshot name '' %s", bad_name);
  expect (2, want, "snapshot delete vol1@");
  snprintf (want, sizeof want, "volume name '' %s", bad_name);
  expect (2, want, "snapshot show @s1");
  snprintf (want, sizeof want, "volume name 'a b' %s", bad_name);
  expect (2, want, "snapshot list 'a b'");
  expect (2, want, "snapshot diff vol1@s1 'a b'");
  expect (2, want, "snapshot policy show 'a b'");
  expect (2, "--from-snapshot 'vol1' is not a snapshot: give "
          "VOLUME@SNAPSHOT; try 'strata volume create --help'",
          "volume create v2 --from-snapshot vol1");
  snprintf (want, sizeof want, "snapshot name '' %s", bad_name);
  expect (2, want, "volume create v2 --from-snapshot vol1@");
  expect (2, "--size 'big' is not a size",
          "volume create v2 --from-snapshot vol1@s1 --size big");

  /* Tags. */
  expect (2, "strata: tag 'novalue' is not of the form key=value with "
          "[A-Za-z0-9._/-] keys; try 'strata snapshot create --help'",
          "snapshot create vol1 s1 --tag novalue");
  expect (2, "tag '=x' is not of the form key=value",
          "snapshot create vol1@s1 --tag =x");
  expect (2, "tag 'a' is given twice",
          "snapshot create vol1 s1 --tag a=1 --tag a=2");
  expect (2, "tag 'a b=c' is not of the form key=value",
          "snapshot policy set vol1 --schedule @daily --tag 'a b=c'");

  /* Schedules: the error names the field. */
  expect (2, "strata: --schedule '61 * * * *' is not a schedule: minute "
          "field \"61\": 61 is out of range 0-59; try 'strata snapshot "
          "policy set --help'", "snapshot policy set vol1 --schedule "
          "'61 * * * *'");
  expect (2, "--schedule '0 24 * * *' is not a schedule: hour field \"24\"",
          "snapshot policy set vol1 --schedule '0 24 * * *'");
  expect (2, "day-of-week field \"mon-frx\"",
          "snapshot policy set vol1 --schedule '0 3 * * mon-frx'");
  expect (2, "expected 5 fields (minute hour day-of-month month "
          "day-of-week) separated by spaces, found 3",
          "snapshot policy set vol1 --schedule '* * *'");
  expect (2, "unknown macro \"@often\"",
          "snapshot policy set vol1 --schedule @often");

  /* Durations and counts. */
  expect (2, "strata: --keep-age '7x' is not a duration such as 90s, 30m, "
          "12h, 7d or 2w; try 'strata snapshot policy set --help'",
          "snapshot policy set vol1 --schedule @daily --keep-age 7x");
  expect (2, "--keep-age '0' is not a duration",
          "snapshot policy set vol1 --schedule @daily --keep-age 0");
  expect (2, "--keep-age '-1d' is not a duration",
          "snapshot policy set vol1 --schedule @daily --keep-age -- -1d");
  expect (2, "--keep-age '1.5d' is not a duration",
          "snapshot policy set vol1 --schedule @daily --keep-age 1.5d");
  expect (2, "--keep-count '0' is not a whole number from 1 to 4294967295",
          "snapshot policy set vol1 --schedule @daily --keep-count 0");
  expect (2, "--keep-count 'ten' is not a whole number",
          "snapshot policy set vol1 --schedule @daily --keep-count ten");

  /* Valid commands get as far as the (missing) daemon. */
  expect (1, "cannot connect to stratad", "snapshot create vol1@s1");
  expect (1, "cannot connect to stratad", "snapshot policy set vol1 "
          "--schedule '0,30 8-18 * * mon-fri' --keep-count 7 --keep-age 2w");
  expect (1, "cannot connect to stratad",
          "volume create v2 --from-snapshot vol1@s1");
}

/* ---- A fake stratad ----------------------------------------------------- */

/* A fake stratad on a Unix socket: it answers every request with REPLY
 * and keeps the requests.  Served by a thread, since the test waits
 * for strata's output meanwhile.
 */
struct fake {
  char dir[64], path[96];
  int listen_fd;
  int stop[2];                  /* a pipe: written to stop the thread */
  const char *reply;            /* one JSON line, without its newline */
  char req[65536];              /* the requests, one per line */
  size_t req_len;
  pthread_t thread;
};

static void
fake_conn (struct fake *f, int fd)
{
  char buf[4096];
  size_t start = f->req_len;

  for (;;) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    ssize_t n;
    char *nl;

    if (poll (&p, 1, 10000) != 1)
      return;                   /* the test sees no request and fails */
    n = read (fd, buf, sizeof buf);
    if (n <= 0)
      return;
    if (n > (ssize_t) (sizeof f->req - 1 - f->req_len))
      return;
    memcpy (f->req + f->req_len, buf, n);
    f->req_len += n;
    f->req[f->req_len] = '\0';
    /* One reply per complete line. */
    while ((nl = strchr (f->req + start, '\n')) != NULL) {
      if (send (fd, f->reply, strlen (f->reply), MSG_NOSIGNAL) < 0
          || send (fd, "\n", 1, MSG_NOSIGNAL) < 0)
        return;
      start = nl + 1 - f->req;
    }
  }
}

static void *
fake_serve (void *arg)
{
  struct fake *f = arg;

  for (;;) {
    struct pollfd p[2] = { { .fd = f->listen_fd, .events = POLLIN },
                           { .fd = f->stop[0], .events = POLLIN } };
    int fd;

    if (poll (p, 2, 30000) <= 0 || p[1].revents)
      return NULL;
    fd = accept4 (f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      return NULL;
    fake_conn (f, fd);
    close (fd);
  }
}

/* Run strata ARGS against a fake stratad that answers REPLY; returns
 * the exit status, with the output in *OUT and the requests (one JSON
 * line each) in *REQ.  Both are the caller's to free.
 */
static int
fake_run (const char *reply, char **req, char **out, const char *args)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  struct fake f = { .reply = reply };
  int st;

  snprintf (f.dir, sizeof f.dir, "/tmp/strata-test-cli.XXXXXX");
  assert_non_null (mkdtemp (f.dir));
  snprintf (f.path, sizeof f.path, "%s/admin.sock", f.dir);
  snprintf (sun.sun_path, sizeof sun.sun_path, "%s", f.path);
  f.listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true (f.listen_fd >= 0);
  assert_int_equal (bind (f.listen_fd, (struct sockaddr *) &sun, sizeof sun),
                    0);
  assert_int_equal (listen (f.listen_fd, 4), 0);
  assert_int_equal (pipe2 (f.stop, O_CLOEXEC), 0);
  assert_int_equal (pthread_create (&f.thread, NULL, fake_serve, &f), 0);

  st = run (out, "%s --socket %s %s", strata, f.path, args);

  assert_int_equal (write (f.stop[1], "x", 1), 1);
  assert_int_equal (pthread_join (f.thread, NULL), 0);
  close (f.stop[0]);
  close (f.stop[1]);
  close (f.listen_fd);
  unlink (f.path);
  rmdir (f.dir);
  *req = strdup (f.req);
  assert_non_null (*req);
  return st;
}

/* REQ holds exactly one request, equal (as JSON) to WANT. */
static void
expect_request (const char *req, const char *want)
{
  json_t *a, *b;
  json_error_t e;
  const char *nl = strchr (req, '\n');

  if (nl == NULL || nl[1] != '\0')
    fail_msg ("wanted one request line, got: '%s'", req);
  a = json_loadb (req, nl - req, 0, &e);
  if (a == NULL)
    fail_msg ("the request is not JSON (%s): %s", e.text, req);
  b = json_loads (want, 0, &e);
  if (b == NULL)
    fail_msg ("the expected request is not JSON (%s): %s", e.text, want);
  if (!json_equal (a, b))
    fail_msg ("request %s, wanted %s", req, want);
  json_decref (a);
  json_decref (b);
}

/* Run ARGS against the fake daemon answering REPLY; expect exit status
 * WANT_ST, the request WANT_REQ ("": none sent; NULL: not checked) and
 * WANT_OUT in the output.
 */
static void
expect_fake (const char *reply, const char *args, int want_st,
             const char *want_req, const char *want_out)
{
  char *req, *out;
  int st = fake_run (reply, &req, &out, args);

  if (st != want_st || strstr (out, want_out) == NULL)
    fail_msg ("strata %s: exit %d, output: %s (wanted exit %d and '%s')",
              args, st, out, want_st, want_out);
  if (want_req && *want_req)
    expect_request (req, want_req);
  else if (want_req && req[0] != '\0')
    fail_msg ("strata %s sent a request: %s", args, req);
  free (req);
  free (out);
}

#define SNAP_RESULT                                                      \
  "{\"ok\": true, \"result\": {\"name\": \"s1\", \"volume\": \"vol1\", "   \
  "\"full_name\": \"vol1@s1\", \"id\": 7, \"size\": 16777216, "            \
  "\"type\": \"ssd\", \"created\": 1790000000, \"tags\": {\"k\": \"v\"}, "  \
  "\"policy\": false, \"allocated\": 65536, \"extents\": 1, "              \
  "\"connections\": 0}}"

static void
test_snapshot_requests (void **state)
{
  (void) state;
  need_strata ();
  expect_fake (SNAP_RESULT, "snapshot create vol1 s1 --tag k=v --tag b=2", 0,
               "{\"op\": \"snapshot.create\", \"args\": {\"volume\": "
               "\"vol1\", \"name\": \"s1\", \"tags\": {\"k\": \"v\", "
               "\"b\": \"2\"}}}",
               "snapshot 'vol1@s1' created: 16M, tags k=v\n");
  expect_fake (SNAP_RESULT, "snapshot create vol1@s1", 0,
               "{\"op\": \"snapshot.create\", \"args\": {\"volume\": "
               "\"vol1\", \"name\": \"s1\"}}", "created");
  expect_fake (SNAP_RESULT, "snapshot show vol1 s1", 0,
               "{\"op\": \"snapshot.show\", \"args\": {\"volume\": "
               "\"vol1\", \"name\": \"s1\"}}",
               "snapshot:     vol1@s1\nvolume:       vol1\n");
  expect_fake (SNAP_RESULT, "snapshot show vol1@s1", 0, NULL,
               "created:      2026-09-21T14:13:20Z\npolicy:       no\n");
  expect_fake (SNAP_RESULT, "--json snapshot show vol1@s1", 0, NULL,
               "\"full_name\": \"vol1@s1\"");
  expect_fake ("{\"ok\": true, \"result\": {\"volume\": \"vol1\", "
               "\"name\": \"s1\"}}", "snapshot delete vol1@s1 --force", 0,
               "{\"op\": \"snapshot.delete\", \"args\": {\"volume\": "
               "\"vol1\", \"name\": \"s1\", \"force\": true}}",
               "snapshot 'vol1@s1' deleted\n");
  expect_fake ("{\"ok\": true, \"result\": {\"volume\": \"vol1\", "
               "\"name\": \"s1\"}}", "snapshot delete vol1 s1", 0,
               "{\"op\": \"snapshot.delete\", \"args\": {\"volume\": "
               "\"vol1\", \"name\": \"s1\", \"force\": false}}",
               "deleted");
  expect_fake ("{\"ok\": false, \"error\": {\"code\": \"ENOENT\", "
               "\"message\": \"snapshot 'vol1@nope' does not exist\"}}",
               "snapshot show vol1@nope", 1, NULL,
               "strata: snapshot 'vol1@nope' does not exist\n");
  /* A usage error sends nothing. */
  expect_fake (SNAP_RESULT, "snapshot create vol1 s1 --tag bad", 2, "",
               "tag 'bad'");
}

static void
test_snapshot_list_table (void **state)
{
  (void) state;
  need_strata ();
  expect_fake ("{\"ok\": true, \"result\": {\"snapshots\": ["
               "{\"full_name\": \"vol1@s1\", \"created\": 1790000000, "
               "\"size\": 16777216, \"allocated\": 65536, \"policy\": false, "
               "\"tags\": {}}, "
               "{\"full_name\": \"vol1@auto-1\", \"created\": 1790003600, "
               "\"size\": 1073741824, \"allocated\": 0, \"policy\": true, "
               "\"tags\": {\"by\": \"policy\"}}]}}",
               "snapshot list vol1", 0,
               "{\"op\": \"snapshot.list\", \"args\": {\"volume\": "
               "\"vol1\"}}",
               "SNAPSHOT     CREATED               SIZE  ALLOCATED  POLICY  "
               "TAGS\n"
               "vol1@s1      2026-09-21T14:13:20Z  16M   64K        no      "
               "-\n"
               "vol1@auto-1  2026-09-21T15:13:20Z  1G    0          yes     "
               "by=policy\n");
  expect_fake ("{\"ok\": true, \"result\": {\"snapshots\": []}}",
               "snapshot list", 0, "{\"op\": \"snapshot.list\"}",
               "SNAPSHOT  CREATED");
}

static void
test_snapshot_diff (void **state)
{
  static const char reply[] = "{\"ok\": true, \"result\": {\"from\": "
    "\"vol1@a\", \"to\": \"vol1\", \"chunk_size\": 65536, \"size\": "
    "17179869184, \"changed_bytes\": 196608, \"ranges\": ["
    "{\"offset\": 0, \"length\": 65536}, "
    "{\"offset\": 1048576, \"length\": 131072}]}}";

  (void) state;
  need_strata ();
  expect_fake (reply, "snapshot diff vol1@a vol1", 0,
               "{\"op\": \"snapshot.diff\", \"args\": {\"from\": "
               "\"vol1@a\", \"to\": \"vol1\"}}",
               "OFFSET        LENGTH\n"
               "0 (0)         65536 (64K)\n"
               "1048576 (1M)  131072 (128K)\n"
               "2 ranges, 192K changed of 16G\n");
  expect_fake (reply, "snapshot diff vol1@a vol1@b", 0,
               "{\"op\": \"snapshot.diff\", \"args\": {\"from\": "
               "\"vol1@a\", \"to\": \"vol1@b\"}}", "2 ranges");
  expect_fake (reply, "snapshot diff vol1@a vol1 --json", 0, NULL,
               "\"changed_bytes\": 196608");
  expect_fake ("{\"ok\": true, \"result\": {\"size\": 16777216, "
               "\"changed_bytes\": 0, \"ranges\": []}}",
               "snapshot diff vol1@a vol1@b", 0, NULL,
               "0 ranges, 0 changed of 16M\n");
}

static void
test_snapshot_policy_requests (void **state)
{
  static const char reply[] = "{\"ok\": true, \"result\": {\"volume\": "
    "\"vol1\", \"policy\": {\"schedule\": \"0 3 * * *\", "
    "\"keep_count\": 7, \"keep_age\": 1209600, \"tags\": {\"k\": \"v\"}, "
    "\"next_run\": 1790046000}}}";

  (void) state;
  need_strata ();
  expect_fake (reply, "snapshot policy set vol1 --schedule '0 3 * * *' "
               "--keep-count 7 --keep-age 2w --tag k=v", 0,
               "{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": "
               "\"vol1\", \"schedule\": \"0 3 * * *\", \"keep_count\": 7, "
               "\"keep_age\": 1209600, \"tags\": {\"k\": \"v\"}}}",
               "volume:       vol1\n"
               "schedule:     0 3 * * * (UTC)\n"
               "keep count:   7\n"
               "keep age:     14d\n"
               "tags:         k=v\n"
               "next run:     2026-09-22T03:00:00Z\n");
  expect_fake (reply, "snapshot policy set vol1 --schedule @daily", 0,
               "{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": "
               "\"vol1\", \"schedule\": \"@daily\"}}", "schedule:");
  expect_fake (reply, "snapshot policy set vol1 --schedule @daily "
               "--keep-age 36h", 0,
               "{\"op\": \"snapshot.policy.set\", \"args\": {\"volume\": "
               "\"vol1\", \"schedule\": \"@daily\", \"keep_age\": 129600}}",
               "schedule:");
  expect_fake (reply, "snapshot policy show vol1", 0,
               "{\"op\": \"snapshot.policy.show\", \"args\": {\"volume\": "
               "\"vol1\"}}", "keep age:     14d\n");
  expect_fake ("{\"ok\": true, \"result\": {\"volume\": \"vol1\", "
               "\"policy\": null}}", "snapshot policy show vol1", 0, NULL,
               "volume 'vol1' has no snapshot policy\n");
  expect_fake ("{\"ok\": true, \"result\": {\"volume\": \"vol1\", "
               "\"policy\": null}}", "snapshot policy clear vol1", 0,
               "{\"op\": \"snapshot.policy.clear\", \"args\": {\"volume\": "
               "\"vol1\"}}", "snapshot policy of volume 'vol1' removed");
  expect_fake ("{\"ok\": true, \"result\": {\"policies\": ["
               "{\"volume\": \"vol1\", \"policy\": {\"schedule\": "
               "\"@hourly\", \"keep_count\": 0, \"keep_age\": 86400, "
               "\"tags\": {}, \"next_run\": null}}]}}",
               "snapshot policy list", 0,
               "{\"op\": \"snapshot.policy.list\"}",
               "VOLUME  SCHEDULE  KEEP COUNT  KEEP AGE  NEXT RUN  TAGS\n"
               "vol1    @hourly   -           1d        never     -\n");
  expect_fake ("{\"ok\": false, \"error\": {\"code\": \"EINVAL\", "
               "\"message\": \"schedule '0 0 31 2 *' never fires\"}}",
               "snapshot policy set vol1 --schedule '0 0 31 2 *'", 1, NULL,
               "strata: schedule '0 0 31 2 *' never fires\n");
}

static void
test_volume_create_from_snapshot_request (void **state)
{
  static const char reply[] = "{\"ok\": true, \"result\": {\"name\": "
    "\"v2\", \"size\": 16777216, \"type\": \"ssd\", \"labels\": {}}}";

  (void) state;
  need_strata ();
  expect_fake (reply, "volume create v2 --from-snapshot vol1@s1", 0,
               "{\"op\": \"volume.create\", \"args\": {\"name\": \"v2\", "
               "\"labels\": {}, \"from_snapshot\": \"vol1@s1\"}}",
               "volume 'v2' created from vol1@s1: 16M, type ssd, labels -\n");
  expect_fake (reply, "volume create v2 --from-snapshot vol1@s1 --size 32M "
               "--type hdd --label a=b", 0,
               "{\"op\": \"volume.create\", \"args\": {\"name\": \"v2\", "
               "\"labels\": {\"a\": \"b\"}, \"from_snapshot\": \"vol1@s1\", "
               "\"size\": 33554432, \"type\": \"hdd\"}}", "created");
  /* Without --from-snapshot, the request is what it always was. */
  expect_fake (reply, "volume create v2 --size 16M", 0,
               "{\"op\": \"volume.create\", \"args\": {\"name\": \"v2\", "
               "\"labels\": {}, \"size\": 16777216}}",
               "volume 'v2' created: 16M");
}

static void
test_unreachable_daemon_exits_1_and_says_so (void **state)
{
  (void) state;
  need_strata ();
  expect (1, "strata: cannot connect to stratad at /nonexistent/admin.sock: "
          "No such file or directory (is stratad running? use --socket)",
          "volume list");
  expect (1, "cannot connect to stratad at /nowhere.sock",
          "--json --socket /nowhere.sock pool status");
  expect (1, "cannot connect to stratad at /nowhere2.sock",
          "type list --socket=/nowhere2.sock --json");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_pod_synopsis_is_the_synopsis_file),
    cmocka_unit_test (test_help_mentions_every_command_and_option),
    cmocka_unit_test (test_each_command_help_shows_its_options),
    cmocka_unit_test (test_pod_describes_every_command),
    cmocka_unit_test (test_snapshot_help),
    cmocka_unit_test (test_usage_errors_exit_2_and_say_what_to_try),
    cmocka_unit_test (test_snapshot_usage_errors),
    cmocka_unit_test (test_snapshot_requests),
    cmocka_unit_test (test_snapshot_list_table),
    cmocka_unit_test (test_snapshot_diff),
    cmocka_unit_test (test_snapshot_policy_requests),
    cmocka_unit_test (test_volume_create_from_snapshot_request),
    cmocka_unit_test (test_unreachable_daemon_exits_1_and_says_so),
  };
  return cmocka_run_group_tests (tests, setup, NULL);
}
