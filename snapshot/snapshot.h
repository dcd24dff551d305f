/* snapshot/snapshot.h: snapshots of volumes, the schedules that take
 * them and the retention policy that removes them.
 *
 * The only header other modules include from snapshot/.
 *
 * Threads: the schedule and retention functions below are pure: they
 * read no clock, keep no state, never allocate, never block and are
 * safe to call from any thread.  The caller passes the time in
 * (seconds since the epoch, UTC), so tests can drive them with a fake
 * clock.
 */
#ifndef STRATA_SNAPSHOT_H
#define STRATA_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Schedules: cron.c ---- */

/* A parsed five-field cron schedule: minute hour day-of-month month
 * day-of-week.  Times are UTC.
 */
struct snap_cron {
  uint64_t minutes;             /* bit m set: minute m (0-59) */
  uint32_t hours;               /* bit h: 0-23 */
  uint32_t mdays;               /* bit d: 1-31 */
  uint16_t months;              /* bit m: 1-12 */
  uint8_t wdays;                /* bit w: 0-6, Sunday = 0 (7 in the text
                                   also means Sunday) */
  bool mday_any, wday_any;      /* the field was "*" (affects the classic
                                   cron OR rule) */
};

/* Parse TEXT, a schedule such as "0 3 * * *", "0,30 8-18 * * mon-fri"
 * or "@daily", into *OUT.
 *
 * Each field is a comma-separated list of items; an item is "*", N or
 * A-B, optionally followed by a step /S ("*" then /S is every S-th
 * value; A/S means A-max/S).  Months may be written jan..dec and days
 * of the week sun..sat (any case), also in ranges.  Ranges must not go
 * backwards; a step is 1..max of its field.  Fields are separated by
 * spaces or tabs; leading and trailing blanks are ignored.  Macros:
 * @hourly @daily @midnight @weekly @monthly @yearly @annually (lower
 * case only).
 *
 * Day-of-month and day-of-week follow the classic (Vixie) rule: when
 * neither field is exactly "*", a day matches if either field does;
 * otherwise both must.  A stepped star ("*" then /2) counts as
 * restricted, unlike Vixie cron, which treats any field starting with
 * "*" as unrestricted.
 *
 * Returns 0, or -EINVAL with a sentence in ERR (size ERRLEN; ERR may be
 * NULL) that names the bad field and says why, for example
 *   minute field "61": 61 is out of range 0-59
 * *OUT is written only on success.
 */
int snap_cron_parse (const char *text, struct snap_cron *out,
                     char *err, size_t errlen)
  __attribute__ ((nonnull (2)));

/* The first whole minute strictly after AFTER (seconds since the epoch,
 * UTC) that C matches, in seconds since the epoch.  Returns -1 if there
 * is none within five years (1827 days) of AFTER, as for "0 0 31 2 *",
 * or if the answer would not be representable.
 */
int64_t snap_cron_next (const struct snap_cron *c, int64_t after)
  __attribute__ ((nonnull (1)));

/* Parse a duration: a positive decimal number with an optional unit,
 * s m h d w (lower case; no unit means seconds): "90s", "30m", "12h",
 * "7d", "2w", "3600".  No blanks, signs or fractions.
 * Returns 0 and stores the seconds in *SECS, or -EINVAL for an empty
 * string, zero, a negative number, an unknown unit or junk after it,
 * or a value that does not fit in int64_t seconds.  *SECS is written
 * only on success.
 */
int snap_duration_parse (const char *text, int64_t *secs)
  __attribute__ ((nonnull (2)));

/* Format SECS into BUF (size LEN, always terminated if LEN > 0) in the
 * largest of d h m s that divides it exactly: "7d", "14d", "36h",
 * "90s", "0s".  Weeks are never used, so a week prints as "7d".  The
 * result parses back to SECS with snap_duration_parse() when SECS > 0.
 * 24 bytes is always enough.
 */
void snap_duration_format (int64_t secs, char *buf, size_t len);

/* ---- Retention: retention.c ---- */

struct snap_retention {
  uint32_t keep_count;          /* 0: no limit by count */
  int64_t keep_age;             /* seconds; 0 (or < 0): no limit by age */
};

struct snap_entry {
  const char *name;             /* borrowed; NULL sorts as "" */
  int64_t created;              /* seconds since the epoch */
  bool managed;                 /* made by the policy: only these are
                                   ever selected */
};

/* Decide which of the N entries V[] to delete at time NOW.  A managed
 * entry is selected if it is older than keep_age (now - created >
 * keep_age, when keep_age is set) or if it is not among the keep_count
 * newest managed entries (when keep_count is set).  Newest means the
 * greatest created; among equal created, the greater name (strcmp) is
 * newer, and among equal created and name, the later index.
 * Unmanaged entries are never selected and do not count.
 *
 * Sets DOOMED[i] for every i < N (true: delete V[i]) and returns how
 * many were selected.  V and DOOMED may be NULL when N is 0.
 * Never allocates.  XXX Up to N^2 comparisons: 10,000 entries take
 * under 0.1 s, 100,000 about 5 s (less than 0.01 s either way when
 * they are listed newest first and keep_count is small).
 */
size_t snap_retention_select (const struct snap_retention *r,
                              const struct snap_entry *v, size_t n,
                              int64_t now, bool *doomed)
  __attribute__ ((nonnull (1)));

#endif /* STRATA_SNAPSHOT_H */
