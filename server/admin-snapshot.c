/* server/admin-snapshot.c: the admin ops for snapshots, clones and
 * snapshot policies (doc/admin-protocol.md, "Snapshots").
 *
 * A snapshot is a read-only volume named VOLUME@SNAPSHOT in the pool
 * (blockmap_volume_clone), so the NBD side exports it like any volume.
 * What the engine keeps opaque lives in its attrs, as JSON:
 *
 *   snapshot:  {"tags": {...}, "policy": {"at": T}}   (policy: taken by
 *              the schedule at scheduler time T)
 *   volume:    {"labels": ..., "qos": ..., "snapshot_policy":
 *              {"schedule": "0 * * * *", "keep_count": N,
 *               "keep_age": SECONDS, "tags": {...}, "since": T}}
 *
 * Taking and deleting snapshots is shared with the policy runner
 * (policy.c) through snapshot_take and snapshot_remove.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "snapshot/snapshot.h"
#include "internal.h"

#define POLICY_KEY "snapshot_policy"
#define KEEP_COUNT_MAX 100000
#define KEEP_AGE_MAX (INT64_C (100) * 365 * 86400)
#define DIFF_BATCH 1024

/* ---- Names and attrs ------------------------------------------------- */

/* Split FULL ("VOLUME@SNAPSHOT") into VOL and SNAP.  Fills R->e. */
static int
split_full (struct admin_req *r, const char *arg, const char *full,
            char vol[BLOCKMAP_NAME_MAX], char snap[BLOCKMAP_NAME_MAX])
{
  const char *at = strchr (full, '@');

  if (at == NULL || strlen (full) >= BLOCKMAP_NAME_MAX)
    return admin_errorf (r->e, EINVAL, "argument '%s' must be "
                         "VOLUME@SNAPSHOT, not '%.128s'", arg, full);
  snprintf (vol, BLOCKMAP_NAME_MAX, "%.*s", (int) (at - full), full);
  snprintf (snap, BLOCKMAP_NAME_MAX, "%s", at + 1);
  if (blockmap_name_valid (vol) < 0 || blockmap_name_valid (snap) < 0)
    return admin_errorf (r->e, EINVAL, "'%.128s' is not a valid snapshot "
                         "name: VOLUME@SNAPSHOT, each 1 to %d characters of "
                         "[A-Za-z0-9._-], not starting with '.' or '-'",
                         full, BLOCKMAP_NAME_MAX - 1);
  return 0;
}

static int
check_snap_name (struct admin_req *r, const char *vol, const char *snap)
{
  if (blockmap_name_valid (snap) < 0)
    return admin_errorf (r->e, EINVAL, "snapshot name '%.128s' is not "
                         "valid: use 1 to %d characters of [A-Za-z0-9._-], "
                         "not starting with '.' or '-'", snap,
                         BLOCKMAP_NAME_MAX - 1);
  if (strlen (vol) + 1 + strlen (snap) >= BLOCKMAP_NAME_MAX)
    return admin_errorf (r->e, EINVAL, "'%s@%s' is longer than %d "
                         "characters", vol, snap, BLOCKMAP_NAME_MAX - 1);
  return 0;
}

static json_t *
attrs_json (const char *attrs)
{
  json_t *root = attrs && attrs[0] ? json_loads (attrs, 0, NULL) : NULL;

  if (!json_is_object (root)) {
    json_decref (root);
    root = json_object ();
  }
  return root;
}

/* The policy time of a snapshot's attrs, or -1 if taken by hand. */
static int64_t
policy_at (const char *attrs)
{
  json_t *root = attrs_json (attrs);
  json_t *at = json_object_get (json_object_get (root, "policy"), "at");
  int64_t t = json_is_integer (at) ? json_integer_value (at) : -1;

  json_decref (root);
  return t;
}

static json_t *
snapshot_json (const struct blockmap_volume_info *vi)
{
  const char *at = strchr (vi->name, '@');
  json_t *root = attrs_json (vi->attrs), *tags;
  int64_t pat = policy_at (vi->attrs);
  json_t *o;

  tags = json_object_get (root, "tags");
  o = json_pack ("{s:s, s:s%, s:s, s:I, s:I, s:s, s:I, s:o, s:b, s:I, s:I, "
                 "s:i}",
                 "name", at ? at + 1 : vi->name,
                 "volume", vi->name, (int) (at ? at - vi->name : 0),
                 "full_name", vi->name,
                 "id", (json_int_t) vi->id,
                 "size", (json_int_t) vi->size,
                 "type", vi->type,
                 "created", (json_int_t) (pat >= 0 ? pat
                                          : (int64_t) vi->created),
                 "tags", json_is_object (tags) ? json_incref (tags)
                 : json_object (),
                 "policy", pat >= 0,
                 "allocated", (json_int_t) vi->allocated,
                 "extents", (json_int_t) vi->extents,
                 "connections", (int) vi->open_count);
  json_decref (root);
  return o;
}

/* ---- Taking and removing (shared with policy.c) ----------------------- */

int
snapshot_take (struct blockmap_pool *pool, const char *vol,
               const char *snap, json_t *tags, int64_t at,
               struct admin_err *e)
{
  struct admin_req r = { .pool = pool, .e = e };
  char full[BLOCKMAP_NAME_MAX];
  CLEANUP_FREE char *attrs = NULL;
  struct blockmap_volume_info vi;
  json_t *a = json_object ();
  char what[300];
  int err;

  if ((err = check_snap_name (&r, vol, snap)) < 0) {
    json_decref (a);
    return err;
  }
  snprintf (full, sizeof full, "%s@%s", vol, snap);
  if (blockmap_volume_info (pool, vol, &vi) < 0 || vi.readonly) {
    json_decref (a);
    return admin_errorf (e, ENOENT, "volume '%s' does not exist", vol);
  }
  if (tags && json_object_size (tags) > 0)
    json_object_set (a, "tags", tags);
  if (at >= 0)
    json_object_set_new (a, "policy", json_pack ("{s:I}", "at",
                                                 (json_int_t) at));
  attrs = json_dumps (a, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref (a);
  if (attrs == NULL)
    return admin_errorf (e, ENOMEM, "out of memory");
  if (strlen (attrs) >= BLOCKMAP_ATTRS_MAX)
    return admin_errorf (e, EINVAL, "the tags take %zu bytes as JSON; at "
                         "most %d fit", strlen (attrs), BLOCKMAP_ATTRS_MAX - 1);

  err = blockmap_volume_clone (pool, vol, full, 0, NULL, attrs, true);
  switch (err) {
  case 0: break;
  case -ENOENT:
    return admin_errorf (e, ENOENT, "volume '%s' does not exist", vol);
  case -EEXIST:
    return admin_errorf (e, EEXIST, "snapshot '%s' already exists", full);
  case -ETIMEDOUT:
    return admin_errorf (e, ETIMEDOUT, "writes in flight on volume '%s' "
                         "did not finish within 10 s; no snapshot was "
                         "taken", vol);
  default:
    return admin_errorf (e, -err, "cannot snapshot volume '%s': %s", vol,
                         strerror (-err));
  }
  snprintf (what, sizeof what, "snapshot '%s' was taken", full);
  if ((err = admin_sync_pool (&r, what)) < 0)
    return err;
  log_info ("admin: took snapshot '%s'%s", full, at >= 0 ? " (policy)" : "");
  events_emit ("snapshot.created", vol, "snapshot %s taken%s", full,
               at >= 0 ? " by the snapshot policy" : "");
  return 0;
}

int
snapshot_remove (struct blockmap_pool *pool, const char *full, bool force,
                 const char *why, struct admin_err *e)
{
  struct admin_req r = { .pool = pool, .e = e };
  struct blockmap_volume_info vi;
  char what[300];
  int err;

  if (blockmap_volume_info (pool, full, &vi) < 0 || !vi.readonly)
    return admin_errorf (e, ENOENT, "snapshot '%s' does not exist", full);
  if (vi.open_count > 0 && !force)
    return admin_errorf (e, EBUSY, "snapshot '%s' has %u client%s "
                         "attached; detach %s or use force", full,
                         vi.open_count, vi.open_count == 1 ? "" : "s",
                         vi.open_count == 1 ? "it" : "them");
  err = blockmap_volume_delete (pool, full, force);
  if (err == -ENOENT)
    return admin_errorf (e, ENOENT, "snapshot '%s' does not exist", full);
  if (err == -EBUSY)
    return admin_errorf (e, EBUSY, "snapshot '%s' has clients attached; "
                         "detach them or use force", full);
  if (err < 0)
    return admin_errorf (e, -err, "cannot delete snapshot '%s': %s", full,
                         strerror (-err));
  snprintf (what, sizeof what, "snapshot '%s' was deleted", full);
  if ((err = admin_sync_pool (&r, what)) < 0)
    return err;
  /* What it alone held is freed in the background (policy.c). */
  policy_kick ();
  {
    char vol[BLOCKMAP_NAME_MAX];
    snprintf (vol, sizeof vol, "%.*s", (int) (strchr (full, '@') - full),
              full);
    log_info ("admin: deleted snapshot '%s'%s", full, why);
    events_emit ("snapshot.deleted", vol, "snapshot %s deleted%s", full,
                 why);
  }
  return 0;
}

/* ---- Ops -------------------------------------------------------------- */

int
admin_op_snapshot_create (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", "name", "tags", NULL };
  const char *vol, *snap;
  char full[BLOCKMAP_NAME_MAX];
  struct blockmap_volume_info vi;
  json_t *tags;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "volume", true, &vol)) < 0
      || (err = admin_check_name (r, vol)) < 0
      || (err = admin_arg_string (r, "name", true, &snap)) < 0
      || (err = check_snap_name (r, vol, snap)) < 0
      || (err = admin_arg_tags (r, "tags", &tags)) < 0
      || (err = snapshot_take (r->pool, vol, snap, tags, -1, r->e)) < 0)
    return err;
  snprintf (full, sizeof full, "%s@%s", vol, snap);
  if (blockmap_volume_info (r->pool, full, &vi) < 0)
    return admin_errorf (r->e, ENOENT, "snapshot '%s' vanished", full);
  *result = snapshot_json (&vi);
  return 0;
}

struct snap_list {
  const char *volume;           /* NULL: all */
  struct blockmap_volume_info *v;
  size_t n, cap;
};

static int
collect_snap (void *opaque, const struct blockmap_volume_info *vi)
{
  struct snap_list *l = opaque;
  size_t vl;

  if (!vi->readonly)
    return 0;
  if (l->volume) {
    vl = strlen (l->volume);
    if (strncmp (vi->name, l->volume, vl) != 0 || vi->name[vl] != '@')
      return 0;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct blockmap_volume_info *v = realloc (l->v, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = *vi;
  return 0;
}

static int64_t
created_of (const struct blockmap_volume_info *vi)
{
  int64_t at = policy_at (vi->attrs);

  return at >= 0 ? at : (int64_t) vi->created;
}

/* By volume, then oldest first, then by id (the order they were taken). */
static int
cmp_snap (const void *a, const void *b)
{
  const struct blockmap_volume_info *x = a, *y = b;
  size_t xl = strcspn (x->name, "@"), yl = strcspn (y->name, "@");
  int c = strncmp (x->name, y->name, xl < yl ? xl : yl);
  int64_t cx, cy;

  if (c == 0 && xl != yl)
    c = xl < yl ? -1 : 1;
  if (c != 0)
    return c;
  cx = created_of (x);
  cy = created_of (y);
  if (cx != cy)
    return cx < cy ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The snapshots of VOLUME (NULL: all), sorted; the caller frees *OUT. */
int
snapshot_collect (struct blockmap_pool *pool, const char *volume,
                  struct blockmap_volume_info **out, size_t *n)
{
  struct snap_list l = { .volume = volume };
  int err = blockmap_volume_foreach (pool, collect_snap, &l);

  if (err < 0) {
    free (l.v);
    return err;
  }
  if (l.n > 1)
    qsort (l.v, l.n, sizeof *l.v, cmp_snap);
  *out = l.v;
  *n = l.n;
  return 0;
}

int
admin_op_snapshot_list (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", NULL };
  CLEANUP_FREE struct blockmap_volume_info *v = NULL;
  const char *vol;
  json_t *arr;
  size_t n;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "volume", false, &vol)) < 0
      || (vol && (err = admin_check_name (r, vol)) < 0))
    return err;
  if ((err = snapshot_collect (r->pool, vol, &v, &n)) < 0)
    return admin_errorf (r->e, -err, "cannot list snapshots: %s",
                         strerror (-err));
  arr = json_array ();
  for (size_t i = 0; i < n; i++)
    json_array_append_new (arr, snapshot_json (&v[i]));
  *result = json_pack ("{s:o}", "snapshots", arr);
  return 0;
}

/* Arguments volume + name of a snapshot that exists, into FULL / VI. */
static int
arg_snapshot (struct admin_req *r, char full[BLOCKMAP_NAME_MAX],
              struct blockmap_volume_info *vi)
{
  const char *vol, *snap;
  int err;

  if ((err = admin_arg_string (r, "volume", true, &vol)) < 0
      || (err = admin_check_name (r, vol)) < 0
      || (err = admin_arg_string (r, "name", true, &snap)) < 0
      || (err = check_snap_name (r, vol, snap)) < 0)
    return err;
  snprintf (full, BLOCKMAP_NAME_MAX, "%s@%s", vol, snap);
  if (blockmap_volume_info (r->pool, full, vi) < 0 || !vi->readonly)
    return admin_errorf (r->e, ENOENT, "snapshot '%s' does not exist", full);
  return 0;
}

int
admin_op_snapshot_show (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", "name", NULL };
  struct blockmap_volume_info vi;
  char full[BLOCKMAP_NAME_MAX];
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = arg_snapshot (r, full, &vi)) < 0)
    return err;
  *result = snapshot_json (&vi);
  return 0;
}

int
admin_op_snapshot_delete (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", "name", "force", NULL };
  struct blockmap_volume_info vi;
  char full[BLOCKMAP_NAME_MAX];
  bool force;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = arg_snapshot (r, full, &vi)) < 0
      || (err = admin_arg_bool (r, "force", &force)) < 0
      || (err = snapshot_remove (r->pool, full, force, "", r->e)) < 0)
    return err;
  *result = json_pack ("{s:s%, s:s}", "volume", full,
                       (int) (strchr (full, '@') - full),
                       "name", strchr (full, '@') + 1);
  return 0;
}

int
admin_op_snapshot_diff (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "from", "to", NULL };
  struct blockmap_diff_run *runs = NULL;
  struct blockmap_volume *a = NULL, *b = NULL;
  struct blockmap_volume_info ai, bi;
  char vol[BLOCKMAP_NAME_MAX], snap[BLOCKMAP_NAME_MAX];
  const char *from, *to;
  uint64_t pos, changed = 0;
  json_t *ranges;
  int err, n;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "from", true, &from)) < 0
      || (err = split_full (r, "from", from, vol, snap)) < 0
      || (err = admin_arg_string (r, "to", true, &to)) < 0)
    return err;
  if (strchr (to, '@') ? (err = split_full (r, "to", to, vol, snap)) < 0
      : (err = admin_check_name (r, to)) < 0)
    return err;
  if (blockmap_volume_info (r->pool, from, &ai) < 0 || !ai.readonly)
    return admin_errorf (r->e, ENOENT, "snapshot '%s' does not exist", from);
  if (blockmap_volume_info (r->pool, to, &bi) < 0)
    return admin_errorf (r->e, ENOENT, "%s '%s' does not exist",
                         strchr (to, '@') ? "snapshot" : "volume", to);
  if (blockmap_volume_open (r->pool, from, &a) < 0 ||
      blockmap_volume_open (r->pool, to, &b) < 0) {
    blockmap_volume_release (a);
    return admin_errorf (r->e, ENOENT, "'%s' or '%s' was just deleted",
                         from, to);
  }
  runs = malloc (DIFF_BATCH * sizeof *runs);
  ranges = json_array ();
  err = runs ? 0 : -ENOMEM;
  for (pos = 0; err == 0 && pos < blockmap_volume_size (b);) {
    n = blockmap_diff (a, b, pos, blockmap_volume_size (b) - pos, runs,
                       DIFF_BATCH);
    if (n < 0) {
      err = n;
      break;
    }
    for (int i = 0; i < n; i++) {
      json_t *last = json_array_get (ranges, json_array_size (ranges) - 1);
      if (!runs[i].changed)
        continue;
      changed += runs[i].length;
      /* A batch boundary may split a range: join it back. */
      if (last && (uint64_t) json_integer_value (json_object_get (last,
                                                                  "offset"))
          + (uint64_t) json_integer_value (json_object_get (last, "length"))
          == runs[i].offset)
        json_object_set_new (last, "length", json_integer
                             (json_integer_value (json_object_get
                                                  (last, "length"))
                              + runs[i].length));
      else
        json_array_append_new (ranges, json_pack ("{s:I, s:I}",
                                                  "offset", (json_int_t)
                                                  runs[i].offset, "length",
                                                  (json_int_t)
                                                  runs[i].length));
    }
    pos = runs[n - 1].offset + runs[n - 1].length;
  }
  free (runs);
  blockmap_volume_release (a);
  blockmap_volume_release (b);
  if (err < 0) {
    json_decref (ranges);
    return admin_errorf (r->e, -err, "cannot compare '%s' with '%s': %s",
                         from, to, strerror (-err));
  }
  *result = json_pack ("{s:s, s:s, s:I, s:I, s:I, s:o}", "from", from,
                       "to", to, "chunk_size", (json_int_t) server.chunk_size,
                       "size", (json_int_t) bi.size,
                       "changed_bytes", (json_int_t) changed,
                       "ranges", ranges);
  return 0;
}

/* ---- Restore: volume.create with from_snapshot ------------------------ */

struct orphan_ctx {
  const char *name;
  size_t len;
  char first[BLOCKMAP_NAME_MAX];
  unsigned count;
};

static int
find_orphan (void *opaque, const struct blockmap_volume_info *vi)
{
  struct orphan_ctx *o = opaque;

  if (vi->readonly && strncmp (vi->name, o->name, o->len) == 0 &&
      vi->name[o->len] == '@') {
    if (o->count++ == 0)
      snprintf (o->first, sizeof o->first, "%s", vi->name);
  }
  return 0;
}

int
admin_check_no_orphans (struct admin_req *r, const char *name)
{
  struct orphan_ctx o = { .name = name, .len = strlen (name) };

  blockmap_volume_foreach (r->pool, find_orphan, &o);
  if (o.count > 0)
    return admin_errorf (r->e, EEXIST, "%u snapshot%s of an earlier volume "
                         "'%s' remain (%s%s); delete %s or pick another name",
                         o.count, o.count == 1 ? "" : "s", name, o.first,
                         o.count > 1 ? ", ..." : "",
                         o.count == 1 ? "it" : "them");
  return 0;
}

int
admin_volume_from_snapshot (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", "from_snapshot", "size",
                                         "type", "labels", NULL };
  char vol[BLOCKMAP_NAME_MAX], snap[BLOCKMAP_NAME_MAX], what[300];
  const char *name, *from, *type;
  struct blockmap_volume_info si, vi;
  CLEANUP_FREE char *attrs = NULL;
  uint64_t size = 0;
  json_t *labels;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = admin_arg_string (r, "from_snapshot", true, &from)) < 0
      || (err = split_full (r, "from_snapshot", from, vol, snap)) < 0
      || (json_object_get (r->args, "size")
          && (err = admin_arg_size (r, "size", &size)) < 0)
      || (err = admin_arg_string (r, "type", false, &type)) < 0
      || (err = admin_arg_labels (r, &labels)) < 0)
    return err;
  if (blockmap_volume_info (r->pool, from, &si) < 0 || !si.readonly)
    return admin_errorf (r->e, ENOENT, "snapshot '%s' does not exist", from);
  if (type && admin_find_type (r, type) == NULL)
    return -EINVAL;
  if (size && size < si.size)
    return admin_errorf (r->e, EINVAL, "size %s is smaller than snapshot "
                         "'%s' (%s); a restored volume may only be larger",
                         admin_size_str (size), from,
                         admin_size_str (si.size));
  if ((err = admin_check_no_orphans (r, name)) < 0)
    return err;
  if (labels && (err = admin_attrs_with (r, "", "labels",
                                         json_incref (labels), &attrs)) < 0)
    return err;

  err = blockmap_volume_clone (r->pool, from, name, size, type, attrs, false);
  switch (err) {
  case 0: break;
  case -EEXIST:
    return admin_errorf (r->e, EEXIST, "volume '%s' already exists", name);
  case -ENOENT:
    return admin_errorf (r->e, ENOENT, "snapshot '%s' does not exist", from);
  default:
    return admin_errorf (r->e, -err, "cannot create volume '%s' from '%s': "
                         "%s", name, from, strerror (-err));
  }
  snprintf (what, sizeof what, "volume '%s' was created from '%s'", name,
            from);
  if ((err = admin_sync_pool (r, what)) < 0)
    return err;
  if (blockmap_volume_info (r->pool, name, &vi) < 0)
    return admin_errorf (r->e, ENOENT, "volume '%s' vanished", name);
  log_info ("admin: created volume '%s' (%s, type %s) from snapshot '%s'",
            name, admin_size_str (vi.size), vi.type, from);
  admin_qos_refresh (r, name);
  events_emit ("volume.created", name, "created from snapshot %s: %s, "
               "type %s", from, admin_size_str (vi.size), vi.type);
  *result = admin_volume_json (&vi);
  return 0;
}

/* ---- Policies --------------------------------------------------------- */

json_t *
policy_json (const char *attrs, int64_t now)
{
  json_t *root = attrs_json (attrs), *p = json_object_get (root, POLICY_KEY);
  json_t *out = NULL;
  struct snap_cron c;
  const char *sched;

  if (json_is_object (p)) {
    sched = json_string_value (json_object_get (p, "schedule"));
    out = json_deep_copy (p);
    if (sched && snap_cron_parse (sched, &c, NULL, 0) == 0) {
      int64_t next = snap_cron_next (&c, now);
      json_object_set_new (out, "next_run", next >= 0
                           ? json_integer (next) : json_null ());
    }
  }
  json_decref (root);
  return out;
}

static int
arg_volume (struct admin_req *r, struct blockmap_volume_info *vi)
{
  const char *vol;
  int err;

  if ((err = admin_arg_string (r, "volume", true, &vol)) < 0
      || (err = admin_check_name (r, vol)) < 0)
    return err;
  if (blockmap_volume_info (r->pool, vol, vi) < 0)
    return admin_errorf (r->e, ENOENT, "volume '%s' does not exist", vol);
  return 0;
}

static int
store_policy (struct admin_req *r, const struct blockmap_volume_info *vi,
              json_t *policy, json_t **result)
{
  CLEANUP_FREE char *attrs = NULL;
  struct blockmap_volume_info now;
  char what[300];
  int err;

  if ((err = admin_attrs_with (r, vi->attrs, POLICY_KEY, policy,
                               &attrs)) < 0)
    return err;
  err = blockmap_volume_set_attrs (r->pool, vi->name, NULL, attrs);
  if (err < 0)
    return admin_errorf (r->e, -err, "cannot change the policy of volume "
                         "'%s': %s", vi->name, strerror (-err));
  snprintf (what, sizeof what, "the snapshot policy of '%s' was changed",
            vi->name);
  if ((err = admin_sync_pool (r, what)) < 0)
    return err;
  policy_kick ();
  if (blockmap_volume_info (r->pool, vi->name, &now) < 0)
    return admin_errorf (r->e, ENOENT, "volume '%s' vanished", vi->name);
  *result = json_pack ("{s:s, s:o*}", "volume", vi->name, "policy",
                       policy_json (now.attrs, policy_now ()));
  if (json_object_get (*result, "policy") == NULL)
    json_object_set_new (*result, "policy", json_null ());
  return 0;
}

int
admin_op_policy_set (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", "schedule", "keep_count",
                                         "keep_age", "tags", NULL };
  struct blockmap_volume_info vi;
  const char *sched;
  struct snap_cron c;
  char cerr[256];
  uint64_t keep_count, keep_age;
  json_t *tags, *p;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = arg_volume (r, &vi)) < 0
      || (err = admin_arg_string (r, "schedule", true, &sched)) < 0
      || (err = admin_arg_count (r, "keep_count", KEEP_COUNT_MAX,
                                 &keep_count)) < 0
      || (err = admin_arg_count (r, "keep_age", KEEP_AGE_MAX,
                                 &keep_age)) < 0
      || (err = admin_arg_tags (r, "tags", &tags)) < 0)
    return err;
  if (vi.readonly)
    return admin_errorf (r->e, EINVAL, "'%s' is a snapshot; policies "
                         "belong to volumes", vi.name);
  if (snap_cron_parse (sched, &c, cerr, sizeof cerr) < 0)
    return admin_errorf (r->e, EINVAL, "schedule '%.100s': %s", sched, cerr);
  if (snap_cron_next (&c, policy_now ()) < 0)
    return admin_errorf (r->e, EINVAL, "schedule '%.100s' never fires in "
                         "the next five years", sched);
  p = json_pack ("{s:s, s:I, s:I, s:o, s:I}", "schedule", sched,
                 "keep_count", (json_int_t) keep_count,
                 "keep_age", (json_int_t) keep_age,
                 "tags", tags ? json_incref (tags) : json_object (),
                 "since", (json_int_t) policy_now ());
  return store_policy (r, &vi, p, result);
}

int
admin_op_policy_show (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", NULL };
  struct blockmap_volume_info vi;
  json_t *p;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = arg_volume (r, &vi)) < 0)
    return err;
  p = policy_json (vi.attrs, policy_now ());
  *result = json_pack ("{s:s, s:o}", "volume", vi.name,
                       "policy", p ? p : json_null ());
  return 0;
}

static int
list_policy (void *opaque, const struct blockmap_volume_info *vi)
{
  json_t *p = policy_json (vi->attrs, policy_now ());

  if (p)
    json_array_append_new (opaque, json_pack ("{s:s, s:o}", "volume",
                                              vi->name, "policy", p));
  return 0;
}

int
admin_op_policy_list (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { NULL };
  json_t *arr;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0)
    return err;
  arr = json_array ();
  blockmap_volume_foreach (r->pool, list_policy, arr);
  *result = json_pack ("{s:o}", "policies", arr);
  return 0;
}

int
admin_op_policy_clear (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", NULL };
  struct blockmap_volume_info vi;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = arg_volume (r, &vi)) < 0)
    return err;
  return store_policy (r, &vi, NULL, result);
}
