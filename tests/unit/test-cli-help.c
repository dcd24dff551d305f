/* tests/unit/test-cli-help.c: `strata --help` and the man page say the
 * same thing (STYLE B.11): the POD's SYNOPSIS is tools/strata-synopsis.txt
 * line for line, --help prints every synopsis line, every command and
 * every option, each command's --help shows its own options, and usage
 * errors exit 2.
 *
 * Runs the built `strata` next to this test binary; skips if it is not
 * there.  Source files are found from __FILE__.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static void
test_each_command_help_shows_its_options (void **state)
{
  char *syn = slurp ("tools/strata-synopsis.txt"), *out, *p, *line;

  (void) state;
  need_strata ();
  p = syn;
  while ((line = next_line (&p)) != NULL) {
    char noun[32], verb[32], copy[512], *tok, *save;

    if (sscanf (line, "strata %31[a-z] %31[a-z]", noun, verb) != 2)
      continue;
    if (run (&out, "%s %s %s --help", strata, noun, verb) != 0)
      fail_msg ("strata %s %s --help failed: %s", noun, verb, out);
    if (strstr (out, line) == NULL)
      fail_msg ("strata %s %s --help lacks its synopsis: %s", noun, verb,
                out);
    snprintf (copy, sizeof copy, "%s", line);
    for (tok = strtok_r (copy, " []|.", &save); tok;
         tok = strtok_r (NULL, " []|.", &save))
      if (strncmp (tok, "--", 2) == 0 && strstr (out, tok) == NULL)
        fail_msg ("strata %s %s --help lacks %s", noun, verb, tok);
    free (out);
  }
  free (syn);
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
  expect (2, "strata: volume create needs NAME and --size; try 'strata "
          "volume create --help'", "volume create");
  expect (2, "volume create needs NAME and --size", "volume create v1");
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
    cmocka_unit_test (test_usage_errors_exit_2_and_say_what_to_try),
    cmocka_unit_test (test_unreachable_daemon_exits_1_and_says_so),
  };
  return cmocka_run_group_tests (tests, setup, NULL);
}
