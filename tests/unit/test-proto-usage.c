/* tests/unit/test-proto-usage.c: stratad's --help synopsis (embedded
 * in server/usage.c from server/stratad-synopsis.txt) is the text of
 * that file, and the man page (server/stratad.pod) carries it
 * verbatim in its SYNOPSIS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Read the file REL (relative to the source tree) into a string. */
static char *
slurp (const char *rel)
{
  char dir[4096], path[8192];
  FILE *fp;
  char *buf;
  long len;

  snprintf (dir, sizeof dir, "%s", __FILE__);   /* .../tests/unit/x.c */
  snprintf (path, sizeof path, "%s/../../%s", dirname (dir), rel);
  fp = fopen (path, "r");
  if (fp == NULL) {
    fprintf (stderr, "cannot open %s\n", path);
    return NULL;
  }
  fseek (fp, 0, SEEK_END);
  len = ftell (fp);
  rewind (fp);
  buf = calloc (1, len + 1);
  if (buf && fread (buf, 1, len, fp) != (size_t) len) {
    free (buf);
    buf = NULL;
  }
  fclose (fp);
  return buf;
}

static void
test_help_synopsis_is_the_synopsis_file (void **state)
{
  char *txt = slurp ("server/stratad-synopsis.txt");

  (void) state;
  assert_non_null (txt);
  assert_string_equal (stratad_synopsis, txt);
  free (txt);
}

static void
test_man_page_synopsis_is_the_synopsis_file (void **state)
{
  char *txt = slurp ("server/stratad-synopsis.txt");
  char *pod = slurp ("server/stratad.pod");
  char *syn;

  (void) state;
  assert_non_null (txt);
  assert_non_null (pod);
  syn = strstr (pod, "=head1 SYNOPSIS\n\n");
  assert_non_null (syn);
  syn += strlen ("=head1 SYNOPSIS\n\n");
  assert_true (strncmp (syn, txt, strlen (txt)) == 0);
  free (txt);
  free (pod);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_help_synopsis_is_the_synopsis_file),
    cmocka_unit_test (test_man_page_synopsis_is_the_synopsis_file),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
