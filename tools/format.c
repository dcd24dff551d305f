/* tools/format.c: the CLI's output (tables, sizes, rates, labels) and
 * the parsing of values shared by several commands (sizes, labels).
 *
 * Names are checked here with the daemon's own rule
 * (blockmap_name_valid), where a command must take a name apart
 * (VOLUME@SNAPSHOT) before it can ask.
 *
 * Sizes are shown in binary units (10G = 10 GiB, as units_parse_size
 * reads them); rates in decimal units (125 MB/s), the EBS convention
 * the config file also uses.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockmap/blockmap.h"
#include "common/units.h"
#include "strata.h"

_Static_assert (sizeof ((struct snap_ref *) 0)->volume == BLOCKMAP_NAME_MAX,
                "struct snap_ref holds one volume name");

void
print_json (json_t *result)
{
  json_dumpf (result, stdout, JSON_INDENT (2));
  putchar ('\n');
}

const char *
fmt_size (uint64_t bytes)
{
  static char bufs[8][32];
  static unsigned next;
  char *b = bufs[next++ % 8];
  uint64_t back;
  int shift;

  /* "1.5G" when that is exact; else the largest unit that is ("1552M"),
   * so two different sizes never print the same.
   */
  units_format_size (bytes, b, sizeof bufs[0]);
  if (units_parse_size (b, &back) == 0 && back == bytes)
    return b;
  for (shift = 60; shift >= 10; shift -= 10)
    if (bytes % (UINT64_C (1) << shift) == 0) {
      snprintf (b, sizeof bufs[0], "%" PRIu64 "%c", bytes >> shift,
                "KMGTPE"[shift / 10 - 1]);
      return b;
    }
  snprintf (b, sizeof bufs[0], "%" PRIu64, bytes);
  return b;
}

const char *
fmt_rate (uint64_t r)
{
  static char bufs[8][32];
  static unsigned next;
  char *b = bufs[next++ % 8];

  if (r >= 1000000000 && r % 100000000 == 0)
    snprintf (b, sizeof bufs[0], "%g GB/s", r / 1e9);
  else if (r >= 1000000)
    snprintf (b, sizeof bufs[0], "%g MB/s", (double) (r / 100000) / 10);
  else if (r >= 1000)
    snprintf (b, sizeof bufs[0], "%g kB/s", (double) (r / 100) / 10);
  else
    snprintf (b, sizeof bufs[0], "%" PRIu64 " B/s", r);
  return b;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

const char *
fmt_labels (json_t *labels)
{
  static char buf[8192];
  const char *keys[256], *key;
  json_t *v;
  size_t n = 0, i, off = 0;

  json_object_foreach (labels, key, v) {
    if (n < 256)
      keys[n++] = key;
  }
  if (n == 0)
    return "-";
  qsort (keys, n, sizeof keys[0], cmp_str);
  buf[0] = '\0';
  for (i = 0; i < n && off < sizeof buf; i++)
    off += snprintf (buf + off, sizeof buf - off, "%s%s=%s", i ? "," : "",
                     keys[i],
                     json_string_value (json_object_get (labels, keys[i])));
  return buf;
}

const char *
fmt_time (uint64_t secs)
{
  static char bufs[4][32];
  static unsigned next;
  char *b = bufs[next++ % 4];
  time_t t = (time_t) secs;
  struct tm tm;

  if (secs > INT64_MAX || gmtime_r (&t, &tm) == NULL
      || strftime (b, sizeof bufs[0], "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf (b, sizeof bufs[0], "%" PRIu64, secs);
  return b;
}

uint64_t
jint (json_t *o, const char *key)
{
  json_t *v = json_object_get (o, key);

  return json_is_integer (v) ? (uint64_t) json_integer_value (v) : 0;
}

const char *
jstr (json_t *o, const char *key)
{
  const char *s = json_string_value (json_object_get (o, key));

  return s ? s : "";
}

/* ---- Tables ----------------------------------------------------------- */

static void
table_addv (struct table *t, va_list ap)
{
  size_t i;

  t->cells = realloc (t->cells, (t->nrows + 1) * t->ncols * sizeof (char *));
  if (t->cells == NULL)
    abort ();
  for (i = 0; i < t->ncols; i++) {
    t->cells[t->nrows * t->ncols + i] = strdup (va_arg (ap, const char *));
    if (t->cells[t->nrows * t->ncols + i] == NULL)
      abort ();
  }
  t->nrows++;
}

void
table_init (struct table *t, size_t ncols, ...)
{
  va_list ap;

  t->ncols = ncols;
  t->nrows = 0;
  t->cells = NULL;
  va_start (ap, ncols);
  table_addv (t, ap);
  va_end (ap);
}

void
table_add (struct table *t, ...)
{
  va_list ap;

  va_start (ap, t);
  table_addv (t, ap);
  va_end (ap);
}

void
table_print (struct table *t)
{
  size_t w[16] = { 0 }, r, c;

  for (r = 0; r < t->nrows; r++)
    for (c = 0; c < t->ncols && c < 16; c++) {
      size_t n = strlen (t->cells[r * t->ncols + c]);
      if (n > w[c])
        w[c] = n;
    }
  for (r = 0; r < t->nrows; r++) {
    for (c = 0; c < t->ncols; c++) {
      const char *s = t->cells[r * t->ncols + c];

      if (c + 1 == t->ncols)
        printf ("%s\n", s);     /* no trailing blanks */
      else
        printf ("%-*s  ", (int) w[c], s);
    }
  }
  for (r = 0; r < t->nrows * t->ncols; r++)
    free (t->cells[r]);
  free (t->cells);
  t->cells = NULL;
}

/* ---- Values ----------------------------------------------------------- */

int
parse_key_value (struct cli *cli, const char *what, const char *kv,
                 json_t *obj)
{
  const char *eq = strchr (kv, '=');
  char key[64];
  size_t n, i;

  n = eq ? (size_t) (eq - kv) : 0;
  for (i = 0; i < n; i++)
    if (!isalnum ((unsigned char) kv[i]) && !strchr ("._/-", kv[i]))
      break;
  if (eq == NULL || n == 0 || i < n || n >= sizeof key)
    return cli_usage (cli, "%s '%s' is not of the form key=value with "
                      "[A-Za-z0-9._/-] keys", what, kv);
  memcpy (key, kv, n);
  key[n] = '\0';
  if (json_object_get (obj, key))
    return cli_usage (cli, "%s '%s' is given twice", what, key);
  if (json_object_set_new (obj, key, json_string (eq + 1)) < 0)
    return cli_usage (cli, "%s '%s' has a value that is not UTF-8 text",
                      what, key);
  return 0;
}

int
parse_label (struct cli *cli, const char *kv, json_t *labels)
{
  return parse_key_value (cli, "label", kv, labels);
}

int
parse_size_opt (struct cli *cli, const char *opt, const char *s,
                uint64_t *out)
{
  int r = units_parse_size (s, out);

  if (r == -ERANGE)
    return cli_usage (cli, "%s '%s' is too large", opt, s);
  if (r < 0)
    return cli_usage (cli, "%s '%s' is not a size such as 4096, 64K, 10G "
                      "or 1.5T", opt, s);
  return 0;
}

static int
bad_name (struct cli *cli, const char *what, const char *name, size_t len)
{
  return cli_usage (cli, "%s name '%.*s' is not valid: use 1 to %d "
                    "characters of [A-Za-z0-9._-], not starting with '.' "
                    "or '-'", what, (int) len, name, BLOCKMAP_NAME_MAX - 1);
}

int
check_name (struct cli *cli, const char *what, const char *name)
{
  if (blockmap_name_valid (name) < 0)
    return bad_name (cli, what, name, strlen (name));
  return 0;
}

int
parse_snap_ref (struct cli *cli, const char *what, const char *text,
                struct snap_ref *ref)
{
  const char *at = strchr (text, '@');
  size_t n;
  int r;

  if (at == NULL)
    return cli_usage (cli, "%s%s'%s' is not a snapshot: give "
                      "VOLUME@SNAPSHOT", what ? what : "", what ? " " : "",
                      text);
  n = at - text;
  if (n >= sizeof ref->volume)
    return bad_name (cli, "volume", text, n);
  memcpy (ref->volume, text, n);
  ref->volume[n] = '\0';
  if ((r = check_name (cli, "volume", ref->volume)) != 0)
    return r;
  if (strlen (at + 1) >= sizeof ref->name)
    return bad_name (cli, "snapshot", at + 1, strlen (at + 1));
  strcpy (ref->name, at + 1);
  return check_name (cli, "snapshot", ref->name);
}
