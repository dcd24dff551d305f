/* common/units.c: see units.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "units.h"

/* The multiplier of unit SUFFIX ("", "B", "K", "KB", "KiB", "Ki", ...):
 * powers of 1000 if DECIMAL, else of 1024; an "i" always means 1024.
 */
static int
multiplier (const char *suffix, bool decimal, uint64_t *mul)
{
  static const char units[] = "KMGTPE";
  const char *p, *rest;
  bool binary;

  *mul = 1;
  if (*suffix == '\0' || strcasecmp (suffix, "B") == 0)
    return 0;
  p = strchr (units, toupper ((unsigned char) *suffix));
  if (p == NULL)
    return -EINVAL;
  rest = suffix + 1;
  binary = strcasecmp (rest, "iB") == 0 || strcasecmp (rest, "i") == 0;
  if (!binary && *rest != '\0' && strcasecmp (rest, "B") != 0)
    return -EINVAL;
  for (int i = 0; i <= p - units; i++)
    *mul *= binary || !decimal ? 1024 : 1000;
  return 0;
}

/* A number with an optional fraction and unit, in bytes. */
static int
parse_scaled (const char *str, bool decimal, bool rate, uint64_t *out)
{
  const char *p = str;
  char suffix[16];
  uint64_t mul, whole = 0, r;
  double frac = 0;
  int digits = 0;
  size_t n;

  if (str == NULL)
    return -EINVAL;
  while (isdigit ((unsigned char) *p)) {
    if (__builtin_mul_overflow (whole, 10, &whole)
        || __builtin_add_overflow (whole, (uint64_t) (*p - '0'), &whole))
      return -ERANGE;
    p++;
    digits++;
  }
  if (*p == '.') {
    double scale = 0.1;
    p++;
    while (isdigit ((unsigned char) *p)) {
      frac += (*p - '0') * scale;
      scale /= 10;
      p++;
      digits++;
    }
  }
  if (digits == 0)
    return -EINVAL;
  if (rate)
    while (*p == ' ')
      p++;
  n = strlen (p);
  if (n >= sizeof suffix)
    return -EINVAL;
  memcpy (suffix, p, n + 1);
  if (rate && n >= 2 && strcmp (suffix + n - 2, "/s") == 0)
    suffix[n - 2] = '\0';
  if (multiplier (suffix, decimal, &mul) < 0)
    return -EINVAL;
  if (__builtin_mul_overflow (whole, mul, &r))
    return -ERANGE;
  if (frac > 0) {
    double extra = frac * (double) mul;
    if (extra != floor (extra))
      return -EINVAL;           /* a fraction of a byte */
    if (__builtin_add_overflow (r, (uint64_t) extra, &r))
      return -ERANGE;
  }
  *out = r;
  return 0;
}

int
units_parse_size (const char *str, uint64_t *out)
{
  return parse_scaled (str, false, false, out);
}

int
units_parse_rate (const char *str, uint64_t *out)
{
  return parse_scaled (str, true, true, out);
}

void
units_format_size (uint64_t bytes, char *buf, size_t len)
{
  static const char units[] = "KMGTPE";
  int i = -1;
  double v = (double) bytes;

  while (v >= 1024 && i < 5) {
    v /= 1024;
    i++;
  }
  if (i < 0)
    snprintf (buf, len, "%" PRIu64, bytes);
  else if (v == floor (v))
    snprintf (buf, len, "%.0f%c", v, units[i]);
  else
    snprintf (buf, len, "%.1f%c", v, units[i]);
}
