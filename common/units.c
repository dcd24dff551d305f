/* common/units.c: see units.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "units.h"

static int
multiplier (const char *suffix, uint64_t *mul)
{
  static const char units[] = "KMGTPE";
  const char *p;

  if (*suffix == '\0' || strcasecmp (suffix, "B") == 0) {
    *mul = 1;
    return 0;
  }
  p = strchr (units, toupper ((unsigned char) *suffix));
  if (p == NULL || *suffix == '\0')
    return -EINVAL;
  suffix++;
  if (*suffix != '\0' && strcasecmp (suffix, "B") != 0
      && strcasecmp (suffix, "iB") != 0)
    return -EINVAL;
  *mul = UINT64_C (1) << (10 * (p - units + 1));
  return 0;
}

int
units_parse_size (const char *str, uint64_t *out)
{
  const char *p = str;
  uint64_t mul, whole = 0, r;
  double frac = 0;
  int digits = 0;

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
  if (multiplier (p, &mul) < 0)
    return -EINVAL;
  if (__builtin_mul_overflow (whole, mul, &r))
    return -ERANGE;
  if (frac > 0) {
    double extra = frac * (double) mul;
    if (mul == 1 && extra != floor (extra))
      return -EINVAL;           /* "1.5" bytes is not a size */
    if (__builtin_add_overflow (r, (uint64_t) extra, &r))
      return -ERANGE;
  }
  *out = r;
  return 0;
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
