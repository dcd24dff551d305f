/* snapshot/cron.c: snapshot schedules (five-field cron expressions, UTC)
 * and the durations used by retention policies.
 *
 * A schedule is parsed once into bit sets, one per field; a bit is set
 * for each value the field allows:
 *
 *   "0,30 9-17 * * mon-fri"  minutes {0,30}  hours {9..17}
 *                            mdays 1..31 (any)  months 1..12
 *                            wdays {1..5}
 *
 * snap_cron_next() walks the calendar from the minute after AFTER and
 * skips whole months, days and hours that cannot match, so it costs a
 * few dozen steps for a usual schedule and at most a few thousand (one
 * per day of the five-year horizon) for one that never fires.  It uses
 * gmtime_r() to split AFTER and timegm() to build the answer, so the
 * time zone of the process never matters.
 *
 * Errors are sentences for the operator (DESIGN invariant 6): each names
 * the field, quotes its text and says what is wrong with it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "snapshot.h"

_Static_assert (sizeof (time_t) == sizeof (int64_t),
                "snap_cron_next needs a 64-bit time_t");

#define HORIZON_DAYS (5 * 365 + 2)      /* the longest five years */

/* ---- Parsing ---- */

struct field {
  const char *name;                     /* in error messages */
  int lo, hi;                           /* allowed values in the text */
  const char *const *names;             /* names[i] means lo + i; or NULL */
  const char *names_hint;               /* e.g. "jan-dec" */
};

static const char *const month_names[] = {
  "jan", "feb", "mar", "apr", "may", "jun",
  "jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const day_names[] = {
  "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

enum { F_MINUTE, F_HOUR, F_MDAY, F_MONTH, F_WDAY, NR_FIELDS };

static const struct field fields[NR_FIELDS] = {
  [F_MINUTE] = { "minute", 0, 59, NULL, NULL },
  [F_HOUR] = { "hour", 0, 23, NULL, NULL },
  [F_MDAY] = { "day-of-month", 1, 31, NULL, NULL },
  [F_MONTH] = { "month", 1, 12, month_names, "jan-dec" },
  /* 7 is Sunday too; folded onto 0 once the field is parsed. */
  [F_WDAY] = { "day-of-week", 0, 7, day_names, "sun-sat" },
};

static const struct {
  const char *name, *expansion;
} macros[] = {
  { "@hourly",   "0 * * * *" },
  { "@daily",    "0 0 * * *" },
  { "@midnight", "0 0 * * *" },
  { "@weekly",   "0 0 * * 0" },
  { "@monthly",  "0 0 1 * *" },
  { "@yearly",   "0 0 1 1 *" },
  { "@annually", "0 0 1 1 *" },
};

/* Where parse errors go: the caller's buffer, and the field being
 * parsed so every message can name it and quote it.
 */
struct errbuf {
  char *buf;                            /* borrowed; may be NULL */
  size_t len;
  const struct field *f;                /* NULL outside a field */
  const char *text;                     /* the field's text */
  int textlen;
};

/* Store a sentence in E (prefixed with the field, if any) and return
 * -EINVAL, so callers can  return fail (e, ...);
 */
static int __attribute__ ((format (printf, 2, 3)))
fail (struct errbuf *e, const char *fmt, ...)
{
  va_list ap;
  int n = 0;

  if (e->buf == NULL || e->len == 0)
    return -EINVAL;
  if (e->f)
    n = snprintf (e->buf, e->len, "%s field \"%.*s\": ",
                  e->f->name, e->textlen, e->text);
  if (n >= 0 && (size_t) n < e->len) {
    va_start (ap, fmt);
    vsnprintf (e->buf + n, e->len - n, fmt, ap);
    va_end (ap);
  }
  return -EINVAL;
}

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

/* Describe the character at P, before END, for an error message. */
static const char *
describe (const char *p, const char *end, char *buf, size_t len)
{
  if (p >= end)
    snprintf (buf, len, "the end");
  else if (isprint ((unsigned char) *p))
    snprintf (buf, len, "'%c'", *p);
  else
    snprintf (buf, len, "byte 0x%02x", (unsigned char) *p);
  return buf;
}

/* Parse one value (a number, or a name if the field has names) at *P,
 * which is before END, into *OUT and advance *P.
 */
static int
parse_value (struct errbuf *e, const char **p, const char *end, int *out)
{
  const struct field *f = e->f;
  const char *s = *p;
  char what[16];

  if (s < end && isdigit ((unsigned char) *s)) {
    int v = 0;

    while (s < end && isdigit ((unsigned char) *s)) {
      if (v <= 9999)                    /* far out of range anyway */
        v = v * 10 + (*s - '0');
      s++;
    }
    if (v < f->lo || v > f->hi)
      return fail (e, "%.*s is out of range %d-%d",
                   (int) (s - *p), *p, f->lo, f->hi);
    *out = v;
    *p = s;
    return 0;
  }
  if (s < end && isalpha ((unsigned char) *s)) {
    while (s < end && isalpha ((unsigned char) *s))
      s++;
    if (f->names == NULL)
      return fail (e, "\"%.*s\" is not a number", (int) (s - *p), *p);
    for (int i = 0; f->names[i]; i++)
      if (s - *p == 3 && strncasecmp (*p, f->names[i], 3) == 0) {
        *out = f->lo + i;
        *p = s;
        return 0;
      }
    return fail (e, "\"%.*s\" is not a number or a name %s",
                 (int) (s - *p), *p, f->names_hint);
  }
  return fail (e, "expected a %s at %s", f->names ? "number or name" :
               "number", describe (s, end, what, sizeof what));
}

/* Parse one item of a list, [ITEM, END): "*", N or A-B, then an
 * optional /STEP.  Adds its values to *BITS.
 */
static int
parse_item (struct errbuf *e, const char *item, const char *end,
            uint64_t *bits)
{
  const struct field *f = e->f;
  const char *p = item;
  int a, b, step = 1, r;
  bool single = false;                  /* just N: N/S means N-max/S */
  char what[16];

  if (p == end)
    return fail (e, "empty item in the list");
  if (*p == '*') {
    a = f->lo;
    b = f->hi;
    p++;
  }
  else {
    r = parse_value (e, &p, end, &a);
    if (r < 0)
      return r;
    b = a;
    single = true;
    if (p < end && *p == '-') {
      single = false;
      p++;
      r = parse_value (e, &p, end, &b);
      if (r < 0)
        return r;
      if (b < a)
        return fail (e, "range %.*s goes backwards",
                     (int) (p - item), item);
    }
  }
  if (p < end && *p == '/') {
    const char *s = ++p;

    step = 0;
    while (p < end && isdigit ((unsigned char) *p)) {
      if (step <= 9999)
        step = step * 10 + (*p - '0');
      p++;
    }
    if (p == s)
      return fail (e, "expected a step after '/' at %s",
                   describe (p, end, what, sizeof what));
    if (step < 1 || step > f->hi)
      return fail (e, "step %.*s is out of range 1-%d",
                   (int) (p - s), s, f->hi);
    if (single)
      b = f->hi;
  }
  if (p < end)
    return fail (e, "unexpected %s in \"%.*s\"",
                 describe (p, end, what, sizeof what),
                 (int) (end - item), item);
  for (int v = a; v <= b; v += step)
    *bits |= UINT64_C (1) << v;
  return 0;
}

/* Parse the field F, [TEXT, TEXT+LEN), into *BITS. */
static int
parse_field (struct errbuf *e, int fi, const char *text, int len,
             uint64_t *bits)
{
  const char *end = text + len, *item = text, *comma;
  int r;

  e->f = &fields[fi];
  e->text = text;
  e->textlen = len;
  *bits = 0;
  for (;;) {
    comma = memchr (item, ',', end - item);
    r = parse_item (e, item, comma ? comma : end, bits);
    if (r < 0)
      return r;
    if (comma == NULL)
      break;
    item = comma + 1;
  }
  if (fi == F_WDAY && (*bits & (UINT64_C (1) << 7)))
    *bits = (*bits & ~(UINT64_C (1) << 7)) | 1;     /* 7 is Sunday */
  e->f = NULL;
  return 0;
}

int
snap_cron_parse (const char *text, struct snap_cron *out,
                 char *err, size_t errlen)
{
  struct errbuf e = { .buf = err, .len = errlen };
  const char *start[NR_FIELDS], *p;
  int len[NR_FIELDS];
  uint64_t bits[NR_FIELDS];
  int n = 0, r;

  if (err && errlen)
    err[0] = '\0';
  if (text == NULL)
    return fail (&e, "no schedule");
  p = text;
  while (is_blank (*p))
    p++;
  if (*p == '@') {
    const char *s = p;
    size_t l;

    while (*p && !is_blank (*p))
      p++;
    l = p - s;
    while (is_blank (*p))
      p++;
    if (*p)
      return fail (&e, "nothing may follow the macro \"%.*s\"", (int) l, s);
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
      if (strlen (macros[i].name) == l && memcmp (macros[i].name, s, l) == 0)
        return snap_cron_parse (macros[i].expansion, out, err, errlen);
    return fail (&e, "unknown macro \"%.*s\": expected @hourly, @daily, "
                 "@midnight, @weekly, @monthly, @yearly or @annually",
                 (int) l, s);
  }

  /* Split into fields; keep counting past five to say how many. */
  while (*p) {
    const char *s = p;

    while (*p && !is_blank (*p))
      p++;
    if (n < NR_FIELDS) {
      start[n] = s;
      len[n] = p - s > INT_MAX ? INT_MAX : (int) (p - s);
    }
    n++;
    while (is_blank (*p))
      p++;
  }
  if (n == 0)
    return fail (&e, "the schedule is empty: expected 5 fields "
                 "(minute hour day-of-month month day-of-week) or a macro "
                 "such as @daily");
  if (n != NR_FIELDS)
    return fail (&e, "expected 5 fields (minute hour day-of-month month "
                 "day-of-week) separated by spaces, found %d", n);

  for (int i = 0; i < NR_FIELDS; i++) {
    r = parse_field (&e, i, start[i], len[i], &bits[i]);
    if (r < 0)
      return r;
  }
  out->minutes = bits[F_MINUTE];
  out->hours = (uint32_t) bits[F_HOUR];
  out->mdays = (uint32_t) bits[F_MDAY];
  out->months = (uint16_t) bits[F_MONTH];
  out->wdays = (uint8_t) bits[F_WDAY];
  out->mday_any = len[F_MDAY] == 1 && start[F_MDAY][0] == '*';
  out->wday_any = len[F_WDAY] == 1 && start[F_WDAY][0] == '*';
  return 0;
}

/* ---- The next firing ---- */

static bool
is_leap (int64_t y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month (int64_t y, int m)
{
  static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

  return m == 2 && is_leap (y) ? 29 : days[m - 1];
}

/* Day of the week (0 = Sunday) of Y-M-D in the proleptic Gregorian
 * calendar, valid for negative years too (Hinnant's days_from_civil).
 */
static int
weekday (int64_t y, int m, int d)
{
  int64_t era, yoe, doy, doe, days;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  days = era * 146097 + doe - 719468;   /* days since 1970-01-01 */
  return (int) (((days + 4) % 7 + 7) % 7);      /* that was a Thursday */
}

static bool
day_matches (const struct snap_cron *c, int64_t y, int m, int d)
{
  bool dom = c->mdays & (UINT32_C (1) << d);
  bool dow = c->wdays & (1u << weekday (y, m, d));

  if (!c->mday_any && !c->wday_any)
    return dom || dow;                  /* the classic cron OR rule */
  return dom && dow;
}

/* The lowest set bit of BITS at or above FROM and at most MAX, or -1. */
static int
next_bit (uint64_t bits, int from, int max)
{
  if (from > max)
    return -1;
  bits &= ~UINT64_C (0) << from;
  if (max < 63)
    bits &= (UINT64_C (1) << (max + 1)) - 1;
  return bits ? __builtin_ctzll (bits) : -1;
}

int64_t
snap_cron_next (const struct snap_cron *c, int64_t after)
{
  int64_t start, limit, year, first_year, m;
  int mon, mday, hour, min, h;
  struct tm tm;
  time_t t;

  /* Beyond these, gmtime_r() fails anyway (the year overflows int). */
  if (after < INT64_MIN / 2 || after > INT64_MAX / 2)
    return -1;
  m = after % 60;
  if (m < 0)
    m += 60;
  start = after - m + 60;
  limit = after + (int64_t) HORIZON_DAYS * 86400;

  t = start;
  if (gmtime_r (&t, &tm) == NULL)
    return -1;
  year = first_year = tm.tm_year + INT64_C (1900);
  mon = tm.tm_mon + 1;
  mday = tm.tm_mday;
  hour = tm.tm_hour;
  min = tm.tm_min;

  /* Each step either finds the minute or moves to the start of a later
   * month, day or hour; HORIZON_DAYS is under six years.
   */
  while (year <= first_year + 6) {
    if (!(c->months & (1u << mon)) || mday > days_in_month (year, mon)) {
      mday = 1;
      hour = min = 0;
      if (++mon > 12) {
        mon = 1;
        year++;
      }
      continue;
    }
    h = next_bit (c->hours, hour, 23);
    if (h < 0 || !day_matches (c, year, mon, mday)) {
      mday++;                           /* past the month's end: see above */
      hour = min = 0;
      continue;
    }
    if (h != hour) {
      hour = h;
      min = 0;
    }
    min = next_bit (c->minutes, min, 59);
    if (min < 0) {
      hour++;                           /* 24: the hour test moves on */
      min = 0;
      continue;
    }

    if (year - 1900 > INT_MAX)
      return -1;
    memset (&tm, 0, sizeof tm);
    tm.tm_year = (int) (year - 1900);
    tm.tm_mon = mon - 1;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    t = timegm (&tm);
    if (t == (time_t) -1)               /* never a whole minute */
      return -1;
    return t > limit ? -1 : (int64_t) t;
  }
  return -1;
}

/* ---- Durations ---- */

static const struct {
  char unit;
  int64_t secs;
} units[] = {
  { 'w', 7 * 86400 }, { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
};

int
snap_duration_parse (const char *text, int64_t *secs)
{
  const char *p = text;
  int64_t v = 0, mul = 1, r;

  if (text == NULL || !isdigit ((unsigned char) *p))
    return -EINVAL;                     /* empty, a sign, a blank, ... */
  while (isdigit ((unsigned char) *p)) {
    if (__builtin_mul_overflow (v, 10, &v)
        || __builtin_add_overflow (v, *p - '0', &v))
      return -EINVAL;
    p++;
  }
  if (*p) {
    size_t i;

    for (i = 0; i < sizeof units / sizeof units[0]; i++)
      if (*p == units[i].unit)
        break;
    if (i == sizeof units / sizeof units[0] || p[1] != '\0')
      return -EINVAL;
    mul = units[i].secs;
  }
  if (v == 0 || __builtin_mul_overflow (v, mul, &r))
    return -EINVAL;
  *secs = r;
  return 0;
}

void
snap_duration_format (int64_t secs, char *buf, size_t len)
{
  /* Magnitude as unsigned, so INT64_MIN works too. */
  uint64_t mag = secs < 0 ? -(uint64_t) secs : (uint64_t) secs;

  if (mag == 0) {
    snprintf (buf, len, "0s");
    return;
  }
  /* From days down: weeks are parsed, never printed. */
  for (size_t i = 1; i < sizeof units / sizeof units[0]; i++)
    if (mag % (uint64_t) units[i].secs == 0) {
      snprintf (buf, len, "%s%" PRIu64 "%c", secs < 0 ? "-" : "",
                mag / (uint64_t) units[i].secs, units[i].unit);
      return;
    }
}
