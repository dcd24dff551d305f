/* snapshot/retention.c: which scheduled snapshots a policy deletes.
 *
 * A policy keeps the keep_count newest snapshots it made and none older
 * than keep_age; an entry goes if either limit says so.  Snapshots an
 * operator made by hand ("unmanaged") are invisible to the policy: they
 * are never selected and do not take a place among the newest, so a
 * manual snapshot never pushes a scheduled one out.
 *
 * The decision is pure (the time is a parameter) and total: every
 * managed entry is ranked against the others with a strict order
 * (created, then name, then index), so the same input always selects
 * the same entries, whatever order the caller listed them in, unless
 * two entries are identical in created and name.
 */
#include <string.h>

#include "snapshot.h"

/* Is A (at index IA) newer than B (at IB)? A strict total order. */
static bool
newer (const struct snap_entry *a, size_t ia,
       const struct snap_entry *b, size_t ib)
{
  int c;

  if (a->created != b->created)
    return a->created > b->created;
  c = strcmp (a->name ? a->name : "", b->name ? b->name : "");
  if (c != 0)
    return c > 0;
  return ia > ib;
}

/* now - created > keep_age, without overflow. */
static bool
too_old (int64_t now, int64_t created, int64_t keep_age)
{
  int64_t age;

  if (__builtin_sub_overflow (now, created, &age))
    return now > created;               /* beyond any keep_age, or negative */
  return age > keep_age;
}

size_t
snap_retention_select (const struct snap_retention *r,
                       const struct snap_entry *v, size_t n,
                       int64_t now, bool *doomed)
{
  size_t selected = 0;

  for (size_t i = 0; i < n; i++) {
    doomed[i] = false;
    if (!v[i].managed)
      continue;
    if (r->keep_age > 0 && too_old (now, v[i].created, r->keep_age))
      doomed[i] = true;
    else if (r->keep_count > 0) {
      size_t newer_count = 0;

      for (size_t j = 0; j < n && newer_count < r->keep_count; j++)
        if (j != i && v[j].managed && newer (&v[j], j, &v[i], i))
          newer_count++;
      doomed[i] = newer_count >= r->keep_count;
    }
    selected += doomed[i];
  }
  return selected;
}
