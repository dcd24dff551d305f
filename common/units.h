/* common/units.h: sizes with units, for the CLI, the config file and
 * the daemon's options.
 */
#ifndef STRATA_UNITS_H
#define STRATA_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parse a size such as "4096", "64K", "512M", "10G", "1T" or "1.5G"
 * (binary units: K = 1024; an optional trailing "B" or "iB" is
 * accepted) into *OUT.  Returns 0, or -EINVAL if STR is not a size,
 * -ERANGE if it does not fit in 64 bits.
 */
int units_parse_size (const char *str, uint64_t *out);

/* Parse a rate in bytes per second such as "125MB", "125 MB/s",
 * "100MiB" or "50000000": decimal units (K = 1000), as storage budgets
 * are quoted, unless written KiB, MiB, ...  Returns 0, -EINVAL, -ERANGE.
 */
int units_parse_rate (const char *str, uint64_t *out);

/* Format BYTES into BUF as a short human size ("64K", "1.5G", "0"). */
void units_format_size (uint64_t bytes, char *buf, size_t len);

#endif /* STRATA_UNITS_H */
