/* server/admin.c: the admin socket (doc/admin-protocol.md).
 *
 * One thread serves every admin connection with a poll() loop:
 *
 *   wake eventfd ─┐
 *   listen fd ────┼─▶ poll ─▶ accept / read lines / write replies
 *   conn fds  ────┘
 *
 * Each connection has an input buffer (at most one request line of
 * ADMIN_LINE_MAX bytes plus what follows it) and an output buffer of
 * replies not yet written.  A complete line is handed to
 * admin_handle_request(), a pure function of (pool, config, line), and
 * its reply is queued.  A line that grows past ADMIN_LINE_MAX gets an
 * error reply and is discarded up to its newline; the connection stays
 * up.  A client that stops reading stops being read from once its
 * replies pass OUT_HIGH bytes, so it cannot make us buffer without
 * bound.  A client that goes away is dropped.
 *
 * The admin thread may block: every change of state calls
 * blockmap_pool_sync() before its reply is built, so an acknowledged
 * change is durable (DESIGN invariant 2).  Validation happens before
 * any change, so a refused request changes nothing (invariant 6).
 *
 * Labels live in the volume's opaque attrs as JSON text,
 * {"labels": {"app": "db"}}, so later issues can add fields next to
 * them.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/units.h"
#include "internal.h"

#define ADMIN_MAX_CONNS 128
#define OUT_HIGH (4 * 1024 * 1024)      /* stop reading above this */
#define READ_CHUNK (64 * 1024)
#define VOLUME_SIZE_MAX (UINT64_C (1) << 60)    /* 1 EiB */
#define LABEL_KEY_MAX 63
#define LABEL_VALUE_MAX 255
#define LABELS_MAX 64

/* ---- Errors ----------------------------------------------------------- */

int
admin_errorf (struct admin_err *e, int code, const char *fmt, ...)
{
  va_list ap;

  e->code = code;
  va_start (ap, fmt);
  vsnprintf (e->msg, sizeof e->msg, fmt, ap);
  va_end (ap);
  return -code;
}

const char *
admin_errno_name (int code)
{
  static const struct { int code; const char *name; } names[] = {
    { EINVAL, "EINVAL" }, { EEXIST, "EEXIST" }, { ENOENT, "ENOENT" },
    { EBUSY, "EBUSY" }, { EPERM, "EPERM" }, { ENOTEMPTY, "ENOTEMPTY" },
    { ENOSPC, "ENOSPC" }, { EIO, "EIO" }, { ENOMEM, "ENOMEM" },
    { E2BIG, "E2BIG" }, { ENAMETOOLONG, "ENAMETOOLONG" },
    { ESHUTDOWN, "ESHUTDOWN" }, { EROFS, "EROFS" }, { EUCLEAN, "EUCLEAN" },
    { EPROTO, "EPROTO" }, { EAGAIN, "EAGAIN" }, { ENOTSUP, "ENOTSUP" },
    { ERANGE, "ERANGE" }, { EOVERFLOW, "EOVERFLOW" },
  };
  size_t i;

  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].code == code)
      return names[i].name;
  return "EIO";
}

/* A client-supplied string, made safe to quote in a message: at most
 * 64 bytes, bytes outside printable ASCII shown as '?'.  The result
 * lives until the fourth next call on this thread.
 */
static const char *
q (const char *s)
{
  static _Thread_local char bufs[4][72];
  static _Thread_local unsigned next;
  char *b = bufs[next++ % 4];
  size_t i;

  for (i = 0; s[i] && i < 64; i++)
    b[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (s[i]) {
    memcpy (b + i, "...", 4);
    return b;
  }
  b[i] = '\0';
  return b;
}

const char *
admin_size_str (uint64_t bytes)
{
  static _Thread_local char bufs[4][32];
  static _Thread_local unsigned next;
  char *b = bufs[next++ % 4];

  units_format_size (bytes, b, sizeof bufs[0]);
  return b;
}

static const char *
tier_name (enum blockmap_tier t)
{
  switch (t) {
  case BM_TIER_HOT: return "hot";
  case BM_TIER_WARM: return "warm";
  case BM_TIER_COLD: return "cold";
  case BM_TIER_NONE: break;
  }
  return "none";
}

/* ---- Arguments -------------------------------------------------------- */


/* Refuse arguments the op does not know: a newer client's option that
 * an older daemon would ignore silently is worse than a refusal.
 * ALLOWED is a NULL-terminated list.
 */
int
admin_check_args (struct admin_req *r, const char *const *allowed)
{
  const char *key;
  json_t *v;
  size_t i;

  json_object_foreach (r->args, key, v) {
    bool ok = false;

    for (i = 0; allowed[i]; i++)
      if (strcmp (allowed[i], key) == 0)
        ok = true;
    if (!ok) {
      char known[160] = "";

      for (i = 0; allowed[i]; i++)
        snprintf (known + strlen (known), sizeof known - strlen (known),
                  "%s%s", i ? ", " : "", allowed[i]);
      return admin_errorf (r->e, EINVAL, "unknown argument '%s' for %s; "
                           "%s takes %s", q (key), r->op, r->op,
                           allowed[0] ? known : "no arguments");
    }
  }
  return 0;
}

int
admin_arg_string (struct admin_req *r, const char *key, bool required,
                  const char **out)
{
  json_t *v = json_object_get (r->args, key);

  *out = NULL;
  if (v == NULL || json_is_null (v)) {
    if (required)
      return admin_errorf (r->e, EINVAL, "%s needs the argument '%s'",
                           r->op, key);
    return 0;
  }
  if (!json_is_string (v))
    return admin_errorf (r->e, EINVAL, "argument '%s' must be a string",
                         key);
  if (strlen (json_string_value (v)) != json_string_length (v))
    return admin_errorf (r->e, EINVAL, "argument '%s' contains a NUL byte",
                         key);
  *out = json_string_value (v);
  return 0;
}

int
admin_arg_bool (struct admin_req *r, const char *key, bool *out)
{
  json_t *v = json_object_get (r->args, key);

  *out = false;
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_boolean (v))
    return admin_errorf (r->e, EINVAL, "argument '%s' must be true or "
                         "false", key);
  *out = json_is_true (v);
  return 0;
}

/* A volume size: a positive multiple of 4096 within VOLUME_SIZE_MAX. */
int
admin_arg_size (struct admin_req *r, const char *key, uint64_t *out)
{
  json_t *v = json_object_get (r->args, key);
  json_int_t n;

  if (v == NULL || json_is_null (v))
    return admin_errorf (r->e, EINVAL, "%s needs the argument '%s' (bytes)",
                         r->op, key);
  if (!json_is_integer (v))
    return admin_errorf (r->e, EINVAL, "argument '%s' must be an integer "
                         "number of bytes", key);
  n = json_integer_value (v);
  if (n <= 0 || n % 4096 != 0)
    return admin_errorf (r->e, EINVAL, "%s %" JSON_INTEGER_FORMAT " is not "
                         "a positive multiple of 4096", key, n);
  if ((uint64_t) n > VOLUME_SIZE_MAX)
    return admin_errorf (r->e, EINVAL, "%s %" JSON_INTEGER_FORMAT " exceeds "
                         "the largest volume size, %" PRIu64 " (%s)", key,
                         n, VOLUME_SIZE_MAX, admin_size_str (VOLUME_SIZE_MAX));
  *out = n;
  return 0;
}

int
admin_check_name (struct admin_req *r, const char *name)
{
  if (blockmap_name_valid (name) < 0)
    return admin_errorf (r->e, EINVAL, "volume name '%s' is not valid: "
                         "use 1 to %d characters of [A-Za-z0-9._-], not "
                         "starting with '.' or '-'", q (name),
                         BLOCKMAP_NAME_MAX - 1);
  return 0;
}

static bool
label_key_valid (const char *k)
{
  size_t n = strlen (k), i;

  if (n == 0 || n > LABEL_KEY_MAX)
    return false;
  for (i = 0; i < n; i++)
    if (!isalnum ((unsigned char) k[i]) && !strchr ("._/-", k[i]))
      return false;
  return true;
}

static bool
label_value_valid (const char *v, size_t len)
{
  size_t i;

  if (len > LABEL_VALUE_MAX || strlen (v) != len)
    return false;
  for (i = 0; i < len; i++)
    if ((unsigned char) v[i] < 0x20 || v[i] == 0x7f)
      return false;
  return true;
}

/* Argument 'labels': an object of label keys to string values.  Stores
 * a borrowed reference in *OUT (NULL when absent).
 */
int
admin_arg_labels (struct admin_req *r, json_t **out)
{
  return admin_arg_tags (r, "labels", out);
}

int
admin_arg_tags (struct admin_req *r, const char *what, json_t **out)
{
  json_t *v = json_object_get (r->args, what), *val;
  const char *key;

  *out = NULL;
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_object (v))
    return admin_errorf (r->e, EINVAL, "argument '%s' must be an "
                         "object of keys to string values", what);
  if (json_object_size (v) > LABELS_MAX)
    return admin_errorf (r->e, EINVAL, "%zu %s are too many; at most %d",
                         json_object_size (v), what, LABELS_MAX);
  json_object_foreach (v, key, val) {
    if (!label_key_valid (key))
      return admin_errorf (r->e, EINVAL, "label key '%s' must be 1 to %d "
                           "characters of [A-Za-z0-9._/-]", q (key),
                           LABEL_KEY_MAX);
    if (!json_is_string (val))
      return admin_errorf (r->e, EINVAL, "label '%s' must have a string "
                           "value", key);
    if (!label_value_valid (json_string_value (val),
                            json_string_length (val)))
      return admin_errorf (r->e, EINVAL, "label '%s' has a value that is "
                           "not up to %d bytes of text without control "
                           "characters", key, LABEL_VALUE_MAX);
  }
  *out = v;
  return 0;
}

/* The labels stored in ATTRS, as a new object ({} if none). */
static json_t *
labels_from_attrs (const char *attrs)
{
  json_t *root, *labels, *out;

  root = attrs && attrs[0] ? json_loads (attrs, 0, NULL) : NULL;
  labels = json_object_get (root, "labels");
  out = json_is_object (labels) ? json_deep_copy (labels) : json_object ();
  json_decref (root);
  return out;
}

/* ---- Results ---------------------------------------------------------- */

static const struct config *json_cfg;   /* for volume_json's budget */

json_t *
admin_volume_json (const struct blockmap_volume_info *vi)
{
  struct qos_budget b;

  qos_budget_of (config_find_type (json_cfg, vi->type), vi->attrs, &b);
  return json_pack ("{s:s, s:I, s:I, s:s, s:o, s:I, s:I, s:I, s:I, s:I, "
                    "s:I}",
                    "name", vi->name,
                    "id", (json_int_t) vi->id,
                    "size", (json_int_t) vi->size,
                    "type", vi->type,
                    "labels", labels_from_attrs (vi->attrs),
                    "allocated", (json_int_t) vi->allocated,
                    "extents", (json_int_t) vi->extents,
                    "created", (json_int_t) vi->created,
                    "connections", (json_int_t) vi->open_count,
                    "iops", (json_int_t) b.iops,
                    "throughput", (json_int_t) b.throughput);
}

static int
lookup (struct admin_req *r, const char *name, struct blockmap_volume_info *vi)
{
  int err = blockmap_volume_info (r->pool, name, vi);

  if (err == -ENOENT)
    return admin_errorf (r->e, ENOENT, "volume '%s' does not exist", name);
  if (err < 0)
    return admin_errorf (r->e, -err, "cannot look up volume '%s': %s",
                         name, strerror (-err));
  return 0;
}

/* Make the change just made durable.  WHAT names it for the message. */
int
admin_sync_pool (struct admin_req *r, const char *what)
{
  int err = blockmap_pool_sync (r->pool);

  if (err < 0) {
    log_error ("admin: %s: pool sync failed: %s", what, strerror (-err));
    return admin_errorf (r->e, EIO, "%s, but the pool could not make it "
                         "durable (%s); the pool now refuses changes",
                         what, strerror (-err));
  }
  return 0;
}

/* ---- Budgets and attrs ------------------------------------------------ */

/* Optional argument KEY: a positive integer at most MAX (0 if absent). */
int
admin_arg_count (struct admin_req *r, const char *key, uint64_t max,
           uint64_t *out)
{
  json_t *v = json_object_get (r->args, key);
  json_int_t n;

  *out = 0;
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_integer (v) || (n = json_integer_value (v)) <= 0)
    return admin_errorf (r->e, EINVAL, "argument '%s' must be a positive "
                         "integer", key);
  if ((uint64_t) n > max)
    return admin_errorf (r->e, EINVAL, "argument '%s' (%" JSON_INTEGER_FORMAT
                         ") is larger than %" PRIu64, key, n, max);
  *out = n;
  return 0;
}

const struct volume_type *
admin_find_type (struct admin_req *r, const char *type)
{
  const struct volume_type *t = config_find_type (r->cfg, type);

  if (t == NULL) {
    char known[200] = "";
    size_t i;

    for (i = 0; i < r->cfg->ntypes; i++)
      snprintf (known + strlen (known), sizeof known - strlen (known),
                "%s%s", i ? ", " : "", r->cfg->types[i].name);
    admin_errorf (r->e, EINVAL, "unknown volume type '%s'; known types: %s",
                  q (type), known);
  }
  return t;
}

/* A volume of type T and SIZE bytes may provision IOPS (0: the type's)
 * and TPUT bytes/s (0: the type's) within the type's maxima, like EBS
 * gp3: at most max_iops, max_throughput, and, above the baseline,
 * iops_per_gib IOPS per GiB of size.
 */
static int
check_provision (struct admin_req *r, const struct volume_type *t,
                 uint64_t size, uint64_t iops, uint64_t tput)
{
  char rate[32];

  if (iops) {
    if (t->max_iops == 0)
      return admin_errorf (r->e, EINVAL, "volume type '%s' has no IOPS "
                           "budget, so none can be provisioned", t->name);
    if (iops > t->max_iops)
      return admin_errorf (r->e, EINVAL, "%" PRIu64 " IOPS exceeds the "
                           "maximum of volume type '%s', %" PRIu64 " IOPS",
                           iops, t->name, t->max_iops);
    if (t->iops_per_gib && iops > t->iops) {
      uint64_t gib = size / (UINT64_C (1) << 30);
      uint64_t cap = gib * t->iops_per_gib;

      if (iops > cap)
        return admin_errorf (r->e, EINVAL, "%" PRIu64 " IOPS exceeds %"
                             PRIu64 " IOPS per GiB of volume type '%s': a "
                             "volume of %s may provision up to %" PRIu64
                             " IOPS", iops, t->iops_per_gib, t->name,
                             admin_size_str (size), cap > t->iops ? cap : t->iops);
    }
  }
  if (tput) {
    if (t->max_throughput == 0)
      return admin_errorf (r->e, EINVAL, "volume type '%s' has no "
                           "throughput budget, so none can be provisioned",
                           t->name);
    if (tput > t->max_throughput) {
      snprintf (rate, sizeof rate, "%g MB/s", t->max_throughput / 1e6);
      return admin_errorf (r->e, EINVAL, "throughput %" PRIu64 " B/s "
                           "exceeds the maximum of volume type '%s', %s",
                           tput, t->name, rate);
    }
  }
  return 0;
}

/* ATTRS (JSON text, may be empty) with KEY set to VAL (stolen; NULL or
 * an empty object: KEY removed), as new JSON text in *OUT.
 */
int
admin_attrs_with (struct admin_req *r, const char *attrs, const char *key,
            json_t *val, char **out)
{
  json_t *root = attrs && attrs[0] ? json_loads (attrs, 0, NULL) : NULL;

  if (!json_is_object (root)) {
    json_decref (root);
    root = json_object ();
  }
  if (val == NULL || (json_is_object (val) && json_object_size (val) == 0)) {
    json_object_del (root, key);
    json_decref (val);
  }
  else
    json_object_set_new (root, key, val);
  *out = json_dumps (root, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref (root);
  if (*out == NULL)
    return admin_errorf (r->e, ENOMEM, "out of memory");
  if (strlen (*out) >= BLOCKMAP_ATTRS_MAX) {
    free (*out);
    *out = NULL;
    return admin_errorf (r->e, EINVAL, "the volume's attributes would "
                         "take more than %d bytes as JSON",
                         BLOCKMAP_ATTRS_MAX - 1);
  }
  return 0;
}

/* The "qos" attrs object for provisioned IOPS and throughput. */
static json_t *
qos_attrs (uint64_t iops, uint64_t tput)
{
  json_t *o = json_object ();

  if (iops)
    json_object_set_new (o, "iops", json_integer (iops));
  if (tput)
    json_object_set_new (o, "throughput", json_integer (tput));
  return o;
}

/* Provisioned values in ATTRS (0: none). */
static void
provisioned (const char *attrs, uint64_t *iops, uint64_t *tput)
{
  json_t *root = attrs && attrs[0] ? json_loads (attrs, 0, NULL) : NULL;
  json_t *q = json_object_get (root, "qos");

  *iops = json_integer_value (json_object_get (q, "iops"));
  *tput = json_integer_value (json_object_get (q, "throughput"));
  json_decref (root);
}

/* Tell qos.c about the volume as it is now. */
void
admin_qos_refresh (struct admin_req *r, const char *name)
{
  struct blockmap_volume_info vi;

  if (blockmap_volume_info (r->pool, name, &vi) == 0
      && qos_volume_sync (r->cfg, &vi) < 0)
    log_error ("admin: volume %s: out of memory applying its budget", name);
  alarm_kick ();
}

/* ---- Operations ------------------------------------------------------- */

static int
op_pool_status (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { NULL };
  struct blockmap_pool_info pi;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0)
    return err;
  blockmap_pool_info (r->pool, &pi);
  *result = json_pack ("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                       " s:I, s:I, s:b, s:I, s:I}",
                       "uuid", pi.uuid,
                       "path", pi.path,
                       "format_version", (json_int_t) pi.format_version,
                       "chunk_size", (json_int_t) pi.chunk_size,
                       "capacity", (json_int_t) pi.hot_capacity,
                       "used", (json_int_t) pi.hot_used,
                       "free", (json_int_t) pi.hot_free,
                       "volumes", (json_int_t) pi.volumes,
                       "extents", (json_int_t) pi.extents,
                       "map_memory", (json_int_t) pi.map_memory,
                       "journal_bytes", (json_int_t) pi.journal_bytes,
                       "pending_chunks", (json_int_t) pi.pending_chunks,
                       "recovered", (int) pi.recovered,
                       "journal_dropped", (json_int_t) pi.journal_dropped,
                       "reap_pending", (json_int_t) pi.reap_pending);
  return 0;
}

static void
collect_problem (void *opaque, const char *msg)
{
  json_array_append_new (opaque, json_string (msg));
}

static int
op_pool_check (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { NULL };
  json_t *problems;
  int n, err;

  if ((err = admin_check_args (r, allowed)) < 0)
    return err;
  problems = json_array ();
  n = blockmap_pool_check (r->pool, collect_problem, problems);
  if (n < 0) {
    json_decref (problems);
    return admin_errorf (r->e, -n, "the pool check could not run: %s",
                         strerror (-n));
  }
  if (n > 0)
    log_warn ("admin: pool check found %d problem(s)", n);
  *result = json_pack ("{s:b, s:o}", "ok", n == 0, "problems", problems);
  return 0;
}

static int
op_volume_create (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", "size", "type", "labels",
                                         "iops", "throughput", NULL };
  const char *name, *type;
  const struct volume_type *t;
  json_t *labels;
  CLEANUP_FREE char *attrs = NULL;
  struct blockmap_volume_info vi;
  char what[200];
  uint64_t size, iops, tput;
  int err;

  if (json_object_get (r->args, "from_snapshot"))
    return admin_volume_from_snapshot (r, result);
  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = admin_check_no_orphans (r, name)) < 0
      || (err = admin_arg_size (r, "size", &size)) < 0
      || (err = admin_arg_string (r, "type", false, &type)) < 0
      || (err = admin_arg_labels (r, &labels)) < 0
      || (err = admin_arg_count (r, "iops", UINT32_MAX, &iops)) < 0
      || (err = admin_arg_count (r, "throughput", UINT64_C (1) << 50, &tput)) < 0)
    return err;
  if (type == NULL)
    type = "ssd";
  if ((t = admin_find_type (r, type)) == NULL)
    return -EINVAL;
  if ((err = check_provision (r, t, size, iops, tput)) < 0)
    return err;

  if (labels != NULL || iops || tput) {
    json_t *a = json_object ();

    if (labels)
      json_object_set (a, "labels", labels);
    if (iops || tput)
      json_object_set_new (a, "qos", qos_attrs (iops, tput));

    attrs = json_dumps (a, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (a);
    if (attrs == NULL)
      return admin_errorf (r->e, ENOMEM, "out of memory");
    if (strlen (attrs) >= BLOCKMAP_ATTRS_MAX)
      return admin_errorf (r->e, EINVAL, "the labels take %zu bytes as "
                           "JSON; at most %d fit", strlen (attrs),
                           BLOCKMAP_ATTRS_MAX - 1);
  }

  err = blockmap_volume_create (r->pool, name, size, type, attrs);
  switch (err) {
  case 0: break;
  case -EEXIST:
    return admin_errorf (r->e, EEXIST, "volume '%s' already exists", name);
  case -E2BIG:
    return admin_errorf (r->e, EINVAL, "the labels of volume '%s' are too "
                         "long", name);
  default:
    return admin_errorf (r->e, -err, "cannot create volume '%s': %s", name,
                         strerror (-err));
  }
  snprintf (what, sizeof what, "volume '%s' was created", name);
  if ((err = admin_sync_pool (r, what)) < 0)
    return err;
  log_info ("admin: created volume '%s' (%s, type %s)", name,
            admin_size_str (size), type);
  if ((err = lookup (r, name, &vi)) < 0)
    return err;
  admin_qos_refresh (r, name);
  {
    struct qos_budget b;

    qos_budget_of (t, vi.attrs, &b);
    events_emit ("volume.created", name, "created: %s, type %s, %" PRIu64
                 " IOPS, %" PRIu64 " B/s", admin_size_str (size), type, b.iops,
                 b.throughput);
  }
  *result = admin_volume_json (&vi);
  return 0;
}

struct list_ctx {
  json_t *filter;               /* borrowed; NULL: all */
  json_t *volumes;              /* owned by the caller */
};

static int
list_one (void *opaque, const struct blockmap_volume_info *vi)
{
  struct list_ctx *ctx = opaque;
  json_t *v, *labels, *want;
  const char *key;

  if (vi->readonly)
    return 0;                   /* a snapshot: snapshot.list has them */
  v = admin_volume_json (vi);
  if (v == NULL)
    return -ENOMEM;
  labels = json_object_get (v, "labels");
  json_object_foreach (ctx->filter, key, want) {
    if (!json_equal (json_object_get (labels, key), want)) {
      json_decref (v);
      return 0;
    }
  }
  json_array_append_new (ctx->volumes, v);
  return 0;
}

static int
op_volume_list (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "labels", NULL };
  struct list_ctx ctx;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_labels (r, &ctx.filter)) < 0)
    return err;
  ctx.volumes = json_array ();
  err = blockmap_volume_foreach (r->pool, list_one, &ctx);
  if (err < 0) {
    json_decref (ctx.volumes);
    return admin_errorf (r->e, -err, "cannot list volumes: %s",
                         strerror (-err));
  }
  *result = json_pack ("{s:o}", "volumes", ctx.volumes);
  return 0;
}

static int
op_volume_show (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", NULL };
  struct blockmap_volume_info vi;
  const char *name;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = lookup (r, name, &vi)) < 0)
    return err;
  *result = admin_volume_json (&vi);
  return 0;
}

static int
op_volume_resize (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", "size", "force", NULL };
  struct blockmap_volume_info vi;
  const char *name;
  char what[200];
  uint64_t size;
  bool force;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = admin_arg_size (r, "size", &size)) < 0
      || (err = admin_arg_bool (r, "force", &force)) < 0
      || (err = lookup (r, name, &vi)) < 0)
    return err;
  if (size == vi.size) {
    *result = admin_volume_json (&vi);
    return 0;
  }
  if (size < vi.size && !force)
    return admin_errorf (r->e, EPERM, "shrinking volume '%s' from %s to %s "
                         "discards its end; use force to shrink it",
                         name, admin_size_str (vi.size), admin_size_str (size));

  err = blockmap_volume_resize (r->pool, name, size, force);
  switch (err) {
  case 0: break;
  case -ENOENT:
    return admin_errorf (r->e, ENOENT, "volume '%s' does not exist", name);
  case -EPERM:
    return admin_errorf (r->e, EPERM, "shrinking volume '%s' needs force",
                         name);
  case -ENOTEMPTY:
    return admin_errorf (r->e, ENOTEMPTY, "shrinking volume '%s' to %s "
                         "would cut data written beyond that size; trim "
                         "it first", name, admin_size_str (size));
  default:
    return admin_errorf (r->e, -err, "cannot resize volume '%s': %s", name,
                         strerror (-err));
  }
  snprintf (what, sizeof what, "volume '%s' was resized", name);
  if ((err = admin_sync_pool (r, what)) < 0)
    return err;
  log_info ("admin: resized volume '%s' from %s to %s", name,
            admin_size_str (vi.size), admin_size_str (size));
  events_emit ("volume.resized", name, "resized from %s to %s",
               admin_size_str (vi.size), admin_size_str (size));
  if ((err = lookup (r, name, &vi)) < 0)
    return err;
  *result = admin_volume_json (&vi);
  return 0;
}

static int
op_volume_delete (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", "force", NULL };
  struct blockmap_volume_info vi;
  const char *name;
  char what[200];
  bool force;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = admin_arg_bool (r, "force", &force)) < 0
      || (err = lookup (r, name, &vi)) < 0)
    return err;
  if (vi.open_count > 0 && !force)
    return admin_errorf (r->e, EBUSY, "volume '%s' has %u client%s "
                         "attached; detach %s or use force", name,
                         vi.open_count, vi.open_count == 1 ? "" : "s",
                         vi.open_count == 1 ? "it" : "them");

  err = blockmap_volume_delete (r->pool, name, force);
  switch (err) {
  case 0: break;
  case -ENOENT:
    return admin_errorf (r->e, ENOENT, "volume '%s' does not exist", name);
  case -EBUSY:
    return admin_errorf (r->e, EBUSY, "volume '%s' has clients attached; "
                         "detach them or use force", name);
  default:
    return admin_errorf (r->e, -err, "cannot delete volume '%s': %s", name,
                         strerror (-err));
  }
  snprintf (what, sizeof what, "volume '%s' was deleted", name);
  if ((err = admin_sync_pool (r, what)) < 0)
    return err;
  log_info ("admin: deleted volume '%s'%s", name,
            vi.open_count > 0 ? " (forced, clients were attached)" : "");
  qos_volume_forget (name);
  events_emit ("volume.deleted", name, "deleted%s",
               vi.open_count > 0 ? " (forced, clients were attached)" : "");
  *result = json_pack ("{s:s}", "name", name);
  return 0;
}

static int
op_type_list (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { NULL };
  json_t *types;
  size_t i;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0)
    return err;
  types = json_array ();
  for (i = 0; i < r->cfg->ntypes; i++) {
    const struct volume_type *t = &r->cfg->types[i];

    json_array_append_new (types, json_pack (
      "{s:s, s:I, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I}",
      "name", t->name,
      "iops", (json_int_t) t->iops,
      "throughput", (json_int_t) t->throughput,
      "tier", tier_name (t->tier),
      "rotational", (int) t->rotational,
      "max_iops", (json_int_t) t->max_iops,
      "max_throughput", (json_int_t) t->max_throughput,
      "iops_per_gib", (json_int_t) t->iops_per_gib,
      "op_size", (json_int_t) t->op_size,
      "burst", (json_int_t) t->burst));
  }
  *result = json_pack ("{s:o}", "types", types);
  return 0;
}

static int
op_volume_modify (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", "type", "iops",
                                         "throughput", NULL };
  struct blockmap_volume_info vi;
  const struct volume_type *t;
  const char *name, *type;
  CLEANUP_FREE char *attrs = NULL;
  uint64_t iops, tput, old_iops, old_tput;
  struct qos_budget before, after;
  char what[200];
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = admin_arg_string (r, "type", false, &type)) < 0
      || (err = admin_arg_count (r, "iops", UINT32_MAX, &iops)) < 0
      || (err = admin_arg_count (r, "throughput", UINT64_C (1) << 50, &tput)) < 0
      || (err = lookup (r, name, &vi)) < 0)
    return err;
  if (type == NULL && iops == 0 && tput == 0)
    return admin_errorf (r->e, EINVAL, "volume.modify needs at least one "
                         "of 'type', 'iops' and 'throughput'");
  if ((t = admin_find_type (r, type ? type : vi.type)) == NULL)
    return -EINVAL;
  qos_budget_of (config_find_type (r->cfg, vi.type), vi.attrs, &before);
  /* What is not given stays as provisioned, and must fit the new type. */
  provisioned (vi.attrs, &old_iops, &old_tput);
  if (iops == 0)
    iops = old_iops;
  if (tput == 0)
    tput = old_tput;
  if ((err = check_provision (r, t, vi.size, iops, tput)) < 0)
    return err;
  if ((err = admin_attrs_with (r, vi.attrs, "qos", qos_attrs (iops, tput),
                         &attrs)) < 0)
    return err;
  err = blockmap_volume_set_attrs (r->pool, name, type, attrs);
  if (err == -ENOENT)
    return admin_errorf (r->e, ENOENT, "volume '%s' does not exist", name);
  if (err < 0)
    return admin_errorf (r->e, -err, "cannot modify volume '%s': %s", name,
                         strerror (-err));
  snprintf (what, sizeof what, "volume '%s' was modified", name);
  if ((err = admin_sync_pool (r, what)) < 0)
    return err;
  if ((err = lookup (r, name, &vi)) < 0)
    return err;
  admin_qos_refresh (r, name);
  qos_budget_of (t, vi.attrs, &after);
  log_info ("admin: modified volume '%s': type %s, %" PRIu64 " IOPS, %"
            PRIu64 " B/s", name, vi.type, after.iops, after.throughput);
  events_emit ("volume.modified", name, "type %s, %" PRIu64 " IOPS, %"
               PRIu64 " B/s (was %" PRIu64 " IOPS, %" PRIu64 " B/s)",
               vi.type, after.iops, after.throughput, before.iops,
               before.throughput);
  *result = admin_volume_json (&vi);
  return 0;
}

static json_t *
quantiles_json (const struct qos_hist *h)
{
  return json_pack ("{s:I, s:f, s:f, s:f, s:f, s:f}",
                    "count", (json_int_t) h->count,
                    "mean_ms", h->count ? h->sum_ns / 1e6 / h->count : 0.0,
                    "p50_ms", qos_hist_quantile (h, 0.5) / 1e6,
                    "p90_ms", qos_hist_quantile (h, 0.9) / 1e6,
                    "p99_ms", qos_hist_quantile (h, 0.99) / 1e6,
                    "p99.9_ms", qos_hist_quantile (h, 0.999) / 1e6);
}

static json_t *
alarms_json (const struct qos_snapshot *s)
{
  json_t *a = json_array ();
  unsigned m;

  for (m = 0; m < ALARM_NMETRICS; m++)
    if (s->rules[m].above > 0)
      json_array_append_new (a, json_pack (
        "{s:s, s:f, s:f, s:I, s:s, s:b}",
        "metric", alarm_metric_name (m),
        "above", s->rules[m].above,
        "clear_below", s->rules[m].clear_below,
        "windows", (json_int_t) s->rules[m].windows,
        "source", s->rules[m].from_type ? "type" : "volume",
        "raised", (int) s->raised[m]));
  return a;
}

static json_t *
metrics_json (const struct qos_snapshot *s)
{
  return json_pack ("{s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:I, s:f,"
                    " s:I, s:I, s:{s:o, s:o, s:o}}",
                    "taken_ns", (json_int_t) s->taken_ns,
                    "requests", "read", (json_int_t) s->ops[QOS_READ],
                    "write", (json_int_t) s->ops[QOS_WRITE],
                    "other", (json_int_t) s->ops[QOS_OTHER],
                    "bytes", "read", (json_int_t) s->bytes[QOS_READ],
                    "write", (json_int_t) s->bytes[QOS_WRITE],
                    "read_ahead", (json_int_t) s->readahead_bytes,
                    "errors", (json_int_t) s->errors,
                    "throttled_seconds", s->throttled_ns / 1e9,
                    "throttled_requests", (json_int_t) s->throttled,
                    "in_flight", (json_int_t) s->in_flight,
                    "latency", "read", quantiles_json (&s->lat[QOS_READ]),
                    "write", quantiles_json (&s->lat[QOS_WRITE]),
                    "other", quantiles_json (&s->lat[QOS_OTHER]));
}

/* The snapshot of volume NAME, registering it if it is not yet. */
static int
snapshot (struct admin_req *r, const char *name, struct qos_snapshot **out)
{
  struct qos_snapshot *s = malloc (sizeof *s);

  if (s == NULL)
    return admin_errorf (r->e, ENOMEM, "out of memory");
  if (qos_volume_snapshot (name, s) == -ENOENT) {
    admin_qos_refresh (r, name);
    if (qos_volume_snapshot (name, s) < 0) {
      free (s);
      return admin_errorf (r->e, ENOENT, "volume '%s' does not exist",
                           name);
    }
  }
  *out = s;
  return 0;
}

static int
op_volume_status (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", NULL };
  struct blockmap_volume_info vi;
  CLEANUP_FREE struct qos_snapshot *s = NULL;
  const struct volume_type *t;
  const char *name;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = lookup (r, name, &vi)) < 0
      || (err = snapshot (r, name, &s)) < 0)
    return err;
  t = config_find_type (r->cfg, vi.type);
  *result = admin_volume_json (&vi);
  if (*result == NULL)
    return 0;
  json_object_set_new (*result, "budget", json_pack (
    "{s:I, s:I, s:I, s:I, s:s, s:b}",
    "iops", (json_int_t) s->budget.iops,
    "throughput", (json_int_t) s->budget.throughput,
    "op_size", (json_int_t) s->budget.op_size,
    "burst", (json_int_t) s->budget.burst,
    "tier", t ? tier_name (t->tier) : "none",
    "rotational", t ? (int) t->rotational : 0));
  json_object_set_new (*result, "metrics", metrics_json (s));
  json_object_set_new (*result, "alarms", alarms_json (s));
  json_object_set_new (*result, "cost_per_month", json_real (
    t ? vi.allocated / 1e9 * r->cfg->tier_cost[t->tier] : 0));
  return 0;
}

static int
op_metrics_volume (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", NULL };
  CLEANUP_FREE struct qos_snapshot *s = NULL;
  const char *name;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = snapshot (r, name, &s)) < 0)
    return err;
  *result = metrics_json (s);
  if (*result) {
    json_object_set_new (*result, "name", json_string (name));
    json_object_set_new (*result, "budget", json_pack (
      "{s:I, s:I}", "iops", (json_int_t) s->budget.iops,
      "throughput", (json_int_t) s->budget.throughput));
  }
  return 0;
}

/* ---- Events and alarms ---------------------------------------------------- */

#define EVENTS_LIST_MAX 100000

struct events_ctx {
  const char *volume, *type;
  double since;
  json_t *events;
};

static int
event_one (void *opaque, const char *line)
{
  struct events_ctx *c = opaque;
  json_t *e = json_loads (line, 0, NULL), *v;
  const char *type;
  size_t tl;

  if (!json_is_object (e))
    goto skip;                  /* not ours: skip, do not fail the list */
  if (json_number_value (json_object_get (e, "time")) < c->since)
    goto skip;
  if (c->volume) {
    v = json_object_get (e, "volume");
    if (!json_is_string (v) || strcmp (json_string_value (v), c->volume))
      goto skip;
  }
  if (c->type) {
    /* "alarm" matches alarm.raised and alarm.cleared. */
    type = json_string_value (json_object_get (e, "type"));
    tl = strlen (c->type);
    if (type == NULL || strncmp (type, c->type, tl) != 0
        || (type[tl] != '\0' && type[tl] != '.'))
      goto skip;
  }
  json_array_append_new (c->events, e);
  if (json_array_size (c->events) > EVENTS_LIST_MAX)
    json_array_remove (c->events, 0);
  return 0;
 skip:
  json_decref (e);
  return 0;
}

static int
op_events_list (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "volume", "type", "since", "limit",
                                         NULL };
  struct events_ctx c = { 0 };
  json_t *since;
  uint64_t limit;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "volume", false, &c.volume)) < 0
      || (err = admin_arg_string (r, "type", false, &c.type)) < 0
      || (err = admin_arg_count (r, "limit", EVENTS_LIST_MAX, &limit)) < 0)
    return err;
  since = json_object_get (r->args, "since");
  if (since && !json_is_null (since)) {
    if (!json_is_number (since))
      return admin_errorf (r->e, EINVAL, "argument 'since' must be a "
                           "number of seconds since the epoch");
    c.since = json_number_value (since);
  }
  c.events = json_array ();
  if (events_dir ()) {
    events_flush ();
    err = events_log_read (events_dir (), EVENTS_DEFAULT_KEEP, event_one,
                           &c);
    if (err < 0) {
      json_decref (c.events);
      return admin_errorf (r->e, -err, "cannot read the event log: %s",
                           strerror (-err));
    }
  }
  while (limit && json_array_size (c.events) > limit)
    json_array_remove (c.events, 0);
  *result = json_pack ("{s:o}", "events", c.events);
  return 0;
}

static int
arg_number (struct admin_req *r, const char *key, bool required,
            double *out)
{
  json_t *v = json_object_get (r->args, key);

  *out = 0;
  if (v == NULL || json_is_null (v)) {
    if (required)
      return admin_errorf (r->e, EINVAL, "%s needs the argument '%s'",
                           r->op, key);
    return 0;
  }
  if (!json_is_number (v) || !(json_number_value (v) > 0)
      || json_number_value (v) > 1e18)
    return admin_errorf (r->e, EINVAL, "argument '%s' must be a positive "
                         "number", key);
  *out = json_number_value (v);
  return 0;
}

static int
arg_metric (struct admin_req *r, enum alarm_metric *m)
{
  const char *name;
  int err;

  if ((err = admin_arg_string (r, "metric", true, &name)) < 0)
    return err;
  if (alarm_metric_parse (name, m) < 0)
    return admin_errorf (r->e, EINVAL, "unknown alarm metric '%s'; metrics: "
                         "iops, throughput (bytes/s), latency_p99 (ms), "
                         "throttled (percent of requests)", q (name));
  return 0;
}

/* Replace volume NAME's alarm rule for M (RULE NULL: remove it). */
static int
set_alarm (struct admin_req *r, const char *name, enum alarm_metric m,
           json_t *rule)
{
  struct blockmap_volume_info vi;
  CLEANUP_FREE char *attrs = NULL;
  json_t *root, *alarms;
  char what[200];
  int err;

  if ((err = lookup (r, name, &vi)) < 0) {
    json_decref (rule);
    return err;
  }
  root = vi.attrs[0] ? json_loads (vi.attrs, 0, NULL) : NULL;
  alarms = json_deep_copy (json_object_get (root, "alarms"));
  json_decref (root);
  if (!json_is_object (alarms)) {
    json_decref (alarms);
    alarms = json_object ();
  }
  if (rule)
    json_object_set_new (alarms, alarm_metric_name (m), rule);
  else if (json_object_del (alarms, alarm_metric_name (m)) < 0) {
    json_decref (alarms);
    return admin_errorf (r->e, ENOENT, "volume '%s' has no alarm of its own "
                         "on %s", name, alarm_metric_name (m));
  }
  if ((err = admin_attrs_with (r, vi.attrs, "alarms", alarms, &attrs)) < 0)
    return err;
  err = blockmap_volume_set_attrs (r->pool, name, NULL, attrs);
  if (err < 0)
    return admin_errorf (r->e, -err, "cannot change the alarms of volume "
                         "'%s': %s", name, strerror (-err));
  snprintf (what, sizeof what, "the alarms of volume '%s' were changed",
            name);
  if ((err = admin_sync_pool (r, what)) < 0)
    return err;
  admin_qos_refresh (r, name);
  return 0;
}

static int
op_alarm_set (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", "metric", "above",
                                         "clear_below", "windows", NULL };
  CLEANUP_FREE struct qos_snapshot *s = NULL;
  enum alarm_metric m;
  const char *name;
  double above, clear;
  uint64_t windows;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = arg_metric (r, &m)) < 0
      || (err = arg_number (r, "above", true, &above)) < 0
      || (err = arg_number (r, "clear_below", false, &clear)) < 0
      || (err = admin_arg_count (r, "windows", 3600, &windows)) < 0)
    return err;
  if (clear == 0)
    clear = above * 0.8;
  if (clear > above)
    return admin_errorf (r->e, EINVAL, "clear_below (%g) must not be above "
                         "the threshold (%g): the alarm would never stay "
                         "raised", clear, above);
  if (windows == 0)
    windows = 2;
  err = set_alarm (r, name, m, json_pack ("{s:f, s:f, s:I}", "above", above,
                                          "clear_below", clear, "windows",
                                          (json_int_t) windows));
  if (err < 0)
    return err;
  events_emit ("alarm.set", name, "alarm on %s above %g, clear below %g, "
               "for %" PRIu64 " s", alarm_metric_name (m), above, clear,
               windows);
  if ((err = snapshot (r, name, &s)) < 0)
    return err;
  *result = json_pack ("{s:s, s:o}", "name", name, "alarms",
                       alarms_json (s));
  return 0;
}

static int
op_alarm_clear (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", "metric", NULL };
  CLEANUP_FREE struct qos_snapshot *s = NULL;
  enum alarm_metric m;
  const char *name;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", true, &name)) < 0
      || (err = admin_check_name (r, name)) < 0
      || (err = arg_metric (r, &m)) < 0
      || (err = set_alarm (r, name, m, NULL)) < 0)
    return err;
  events_emit ("alarm.removed", name, "the volume's alarm on %s was removed",
               alarm_metric_name (m));
  if ((err = snapshot (r, name, &s)) < 0)
    return err;
  *result = json_pack ("{s:s, s:o}", "name", name, "alarms",
                       alarms_json (s));
  return 0;
}

struct alarm_list_ctx {
  json_t *alarms;
};

static int
alarm_list_one (void *opaque, struct qos_snapshot *s)
{
  struct alarm_list_ctx *c = opaque;
  json_t *a = alarms_json (s), *x;
  size_t i;

  json_array_foreach (a, i, x)
    json_object_set_new (x, "volume", json_string (s->name));
  json_array_extend (c->alarms, a);
  json_decref (a);
  return 0;
}

static int
op_alarm_list (struct admin_req *r, json_t **result)
{
  static const char *const allowed[] = { "name", NULL };
  struct alarm_list_ctx c;
  CLEANUP_FREE struct qos_snapshot *s = NULL;
  const char *name;
  int err;

  if ((err = admin_check_args (r, allowed)) < 0
      || (err = admin_arg_string (r, "name", false, &name)) < 0)
    return err;
  c.alarms = json_array ();
  if (name) {
    if ((err = admin_check_name (r, name)) < 0
        || (err = snapshot (r, name, &s)) < 0) {
      json_decref (c.alarms);
      return err;
    }
    alarm_list_one (&c, s);
  }
  else
    qos_foreach (alarm_list_one, &c);
  *result = json_pack ("{s:o}", "alarms", c.alarms);
  return 0;
}

static const struct op {
  const char *name;
  int (*run) (struct admin_req *r, json_t **result);
} ops[] = {
  { "pool.status", op_pool_status },
  { "pool.check", op_pool_check },
  { "volume.create", op_volume_create },
  { "volume.list", op_volume_list },
  { "volume.show", op_volume_show },
  { "volume.resize", op_volume_resize },
  { "volume.delete", op_volume_delete },
  { "type.list", op_type_list },
  { "volume.modify", op_volume_modify },
  { "volume.status", op_volume_status },
  { "metrics.volume", op_metrics_volume },
  { "events.list", op_events_list },
  { "alarm.set", op_alarm_set },
  { "alarm.clear", op_alarm_clear },
  { "alarm.list", op_alarm_list },
  { "snapshot.create", admin_op_snapshot_create },
  { "snapshot.list", admin_op_snapshot_list },
  { "snapshot.show", admin_op_snapshot_show },
  { "snapshot.delete", admin_op_snapshot_delete },
  { "snapshot.diff", admin_op_snapshot_diff },
  { "snapshot.policy.set", admin_op_policy_set },
  { "snapshot.policy.show", admin_op_policy_show },
  { "snapshot.policy.list", admin_op_policy_list },
  { "snapshot.policy.clear", admin_op_policy_clear },
};

/* ---- One request ------------------------------------------------------ */

static char *
error_reply (const struct admin_err *e)
{
  json_t *reply;
  char *s;

  reply = json_pack ("{s:b, s:{s:s, s:s}}", "ok", 0, "error",
                     "code", admin_errno_name (e->code), "message", e->msg);
  if (reply == NULL)            /* e.g. a message cut inside UTF-8 */
    reply = json_pack ("{s:b, s:{s:s, s:s}}", "ok", 0, "error",
                       "code", admin_errno_name (e->code),
                       "message", "the error message could not be encoded");
  s = json_dumps (reply, JSON_COMPACT);
  json_decref (reply);
  return s;
}

static int
parse_request (struct admin_req *r, const char *line, size_t len, json_t **root)
{
  json_error_t jerr;
  json_t *op, *args;
  const char *key;
  json_t *v;
  size_t i;

  *root = json_loadb (line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                     &jerr);
  if (*root == NULL)
    return admin_errorf (r->e, EINVAL, "the request is not valid JSON: %s "
                         "(at byte %d)", jerr.text, jerr.position);
  if (!json_is_object (*root))
    return admin_errorf (r->e, EINVAL, "the request must be a JSON object "
                         "with 'op' and 'args'");
  json_object_foreach (*root, key, v) {
    if (strcmp (key, "op") != 0 && strcmp (key, "args") != 0)
      return admin_errorf (r->e, EINVAL, "unknown request key '%s'; a "
                           "request has 'op' and 'args'", q (key));
  }
  op = json_object_get (*root, "op");
  if (op == NULL)
    return admin_errorf (r->e, EINVAL, "the request has no 'op'");
  if (!json_is_string (op))
    return admin_errorf (r->e, EINVAL, "'op' must be a string");
  r->op = json_string_value (op);
  for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp (ops[i].name, r->op) == 0)
      break;
  if (i == sizeof ops / sizeof ops[0]) {
    char known[256] = "";

    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
      snprintf (known + strlen (known), sizeof known - strlen (known),
                "%s%s", i ? ", " : "", ops[i].name);
    return admin_errorf (r->e, EINVAL, "unknown op '%s'; known ops: %s",
                         q (r->op), known);
  }
  args = json_object_get (*root, "args");
  if (args == NULL || json_is_null (args)) {
    args = json_object ();
    json_object_set_new (*root, "args", args);
  }
  if (!json_is_object (args))
    return admin_errorf (r->e, EINVAL, "'args' must be an object");
  r->args = args;
  return (int) i;
}

char *
admin_handle_request (struct blockmap_pool *pool, const struct config *cfg,
                      const char *line, size_t len)
{
  struct admin_err e = { 0 };
  struct admin_req r = { .pool = pool, .cfg = cfg, .e = &e };

  json_cfg = cfg;
  json_t *root = NULL, *result = NULL, *reply;
  char *s;
  int i;

  i = parse_request (&r, line, len, &root);
  if (i >= 0) {
    log_debug (DBG_ADMIN, "admin: %s", ops[i].name);
    if (ops[i].run (&r, &result) == 0 && result == NULL)
      admin_errorf (&e, ENOMEM, "out of memory building the reply");
  }
  /* Events of a change are durable before its reply, like the change. */
  events_flush ();
  if (e.code != 0) {
    json_decref (result);
    json_decref (root);
    log_debug (DBG_ADMIN, "admin: refused: %s", e.msg);
    return error_reply (&e);
  }
  reply = json_pack ("{s:b, s:o}", "ok", 1, "result", result);
  s = json_dumps (reply, JSON_COMPACT);
  json_decref (reply);
  json_decref (root);
  return s;
}

/* ---- The server thread ------------------------------------------------ */

struct admin_conn {
  int fd;
  char *in;                     /* owned; unprocessed input */
  size_t inlen, incap;
  bool discarding;              /* dropping an over-long line */
  bool eof;                     /* the client will send no more */
  char *out;                    /* owned; replies not yet written */
  size_t outoff, outlen, outcap;
};

/* Lock: none.  Everything here belongs to the admin thread, except
 * wake_fd, which admin_stop() writes from another thread.
 */
struct admin_server {
  struct blockmap_pool *pool;   /* borrowed */
  const struct config *cfg;     /* borrowed */
  int listen_fd;                /* owned */
  int wake_fd;                  /* owned; eventfd, written to stop */
  pthread_t thread;
  struct admin_conn *conns[ADMIN_MAX_CONNS];  /* owned */
  size_t nconns;
};

static void
conn_free (struct admin_conn *c)
{
  if (c == NULL)
    return;
  if (c->fd >= 0)
    close (c->fd);
  free (c->in);
  free (c->out);
  free (c);
}

static int
queue_reply (struct admin_conn *c, const char *s)
{
  size_t n = strlen (s);

  if (c->outoff > 0 && c->outoff == c->outlen)
    c->outoff = c->outlen = 0;
  if (c->outlen + n + 1 > c->outcap) {
    size_t cap = c->outcap ? c->outcap : 4096;
    char *p;

    if (c->outoff > 0) {        /* compact before growing */
      memmove (c->out, c->out + c->outoff, c->outlen - c->outoff);
      c->outlen -= c->outoff;
      c->outoff = 0;
    }
    while (cap < c->outlen + n + 1)
      cap *= 2;
    p = realloc (c->out, cap);
    if (p == NULL)
      return -ENOMEM;
    c->out = p;
    c->outcap = cap;
  }
  memcpy (c->out + c->outlen, s, n);
  c->out[c->outlen + n] = '\n';
  c->outlen += n + 1;
  return 0;
}

static int
queue_error (struct admin_conn *c, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static int
queue_error (struct admin_conn *c, int code, const char *fmt, ...)
{
  struct admin_err e = { .code = code };
  CLEANUP_FREE char *s = NULL;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (e.msg, sizeof e.msg, fmt, ap);
  va_end (ap);
  s = error_reply (&e);
  return s ? queue_reply (c, s) : -ENOMEM;
}

/* Write what we can.  Returns 0, or -errno if the client is gone. */
static int
conn_flush (struct admin_conn *c)
{
  while (c->outoff < c->outlen) {
    ssize_t n = send (c->fd, c->out + c->outoff, c->outlen - c->outoff,
                      MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      if (errno == EINTR)
        continue;
      return -errno;
    }
    c->outoff += n;
  }
  c->outoff = c->outlen = 0;
  return 0;
}

static size_t
pending_out (const struct admin_conn *c)
{
  return c->outlen - c->outoff;
}

/* Handle the complete lines in the input buffer (and, at EOF, a last
 * line without its newline), while the client keeps up with replies.
 */
static int
conn_process (struct admin_server *a, struct admin_conn *c)
{
  size_t start = 0;
  int err;

  while (start < c->inlen && pending_out (c) < OUT_HIGH) {
    char *nl = memchr (c->in + start, '\n', c->inlen - start);
    size_t len;

    if (nl == NULL) {
      if (!c->eof || c->discarding)
        break;
      len = c->inlen - start;   /* the last line, unterminated */
    }
    else
      len = nl - (c->in + start);

    if (c->discarding)
      c->discarding = false;
    else if (len > ADMIN_LINE_MAX) {
      if ((err = queue_error (c, EINVAL, "the request line is longer than "
                              "%d bytes", ADMIN_LINE_MAX)) < 0)
        return err;
    }
    else {
      const char *line = c->in + start;
      size_t n = len;

      if (n > 0 && line[n - 1] == '\r')
        n--;
      while (n > 0 && isspace ((unsigned char) *line)) {
        line++;
        n--;
      }
      if (n > 0) {              /* blank lines are not requests */
        CLEANUP_FREE char *reply = admin_handle_request (a->pool, a->cfg,
                                                         line, n);
        if (reply == NULL)
          return -ENOMEM;
        if ((err = queue_reply (c, reply)) < 0)
          return err;
      }
    }
    start += len + (nl != NULL);
  }

  memmove (c->in, c->in + start, c->inlen - start);
  c->inlen -= start;

  /* An over-long line with no newline yet: answer now, drop its bytes
   * as they come, and resume after its newline.
   */
  if (c->inlen > ADMIN_LINE_MAX && memchr (c->in, '\n', c->inlen) == NULL) {
    if (!c->discarding
        && (err = queue_error (c, EINVAL, "the request line is longer than "
                               "%d bytes", ADMIN_LINE_MAX)) < 0)
      return err;
    c->discarding = true;
    c->inlen = 0;
  }
  else if (c->discarding && c->inlen > 0
           && memchr (c->in, '\n', c->inlen) == NULL)
    c->inlen = 0;
  return 0;
}

/* Read what is there.  Returns 0, or -errno to drop the client. */
static int
conn_read (struct admin_server *a, struct admin_conn *c)
{
  ssize_t n;

  if (c->incap - c->inlen < READ_CHUNK) {
    size_t cap = c->inlen + READ_CHUNK;
    char *p = realloc (c->in, cap);

    if (p == NULL)
      return -ENOMEM;
    c->in = p;
    c->incap = cap;
  }
  n = read (c->fd, c->in + c->inlen, c->incap - c->inlen);
  if (n < 0)
    return errno == EAGAIN || errno == EINTR ? 0 : -errno;
  if (n == 0)
    c->eof = true;
  c->inlen += n;
  return conn_process (a, c);
}

static void
accept_all (struct admin_server *a)
{
  for (;;) {
    int fd = accept4 (a->listen_fd, NULL, NULL,
                      SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct admin_conn *c;

    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        log_error_ratelimited ("admin: accept: %m");
      return;
    }
    if (a->nconns == ADMIN_MAX_CONNS) {
      static const char busy[] =
        "{\"ok\":false,\"error\":{\"code\":\"EBUSY\",\"message\":"
        "\"too many admin connections\"}}\n";

      log_error_ratelimited ("admin: refused a connection: already %d",
                             ADMIN_MAX_CONNS);
      /* Best effort: the client learns why before the close. */
      (void) !send (fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      close (fd);
      continue;
    }
    c = calloc (1, sizeof *c);
    if (c == NULL) {
      close (fd);
      return;
    }
    c->fd = fd;
    a->conns[a->nconns++] = c;
    log_debug (DBG_ADMIN, "admin: connection %d accepted", fd);
  }
}

static void *
admin_thread (void *opaque)
{
  struct admin_server *a = opaque;
  struct pollfd pfd[ADMIN_MAX_CONNS + 2];
  size_t i, j, npolled;

  for (;;) {
    pfd[0] = (struct pollfd) { .fd = a->wake_fd, .events = POLLIN };
    pfd[1] = (struct pollfd) { .fd = a->listen_fd, .events = POLLIN };
    for (i = 0; i < a->nconns; i++) {
      struct admin_conn *c = a->conns[i];

      pfd[i + 2] = (struct pollfd) { .fd = c->fd };
      if (!c->eof && pending_out (c) < OUT_HIGH)
        pfd[i + 2].events |= POLLIN;
      if (pending_out (c) > 0)
        pfd[i + 2].events |= POLLOUT;
    }
    if (poll (pfd, a->nconns + 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      log_error ("admin: poll: %m");
      break;
    }
    if (pfd[0].revents)
      break;
    /* Connections accepted now go after the polled ones, and are polled
     * from the next round.
     */
    npolled = a->nconns;
    if (pfd[1].revents & POLLIN)
      accept_all (a);

    for (i = 0; i < a->nconns; i++) {
      struct admin_conn *c = a->conns[i];
      short rev = i < npolled ? pfd[i + 2].revents : 0;
      int err = 0;

      if (rev & POLLNVAL)
        err = -EBADF;
      if (err == 0 && (rev & (POLLIN | POLLHUP | POLLERR)) && !c->eof)
        err = conn_read (a, c);
      if (err == 0 && pending_out (c) > 0) {
        size_t before = pending_out (c);

        err = conn_flush (c);
        /* Room again for replies: handle lines that were waiting. */
        if (err == 0 && before >= OUT_HIGH && pending_out (c) < OUT_HIGH)
          err = conn_process (a, c);
        if (err == 0)
          err = conn_flush (c);
      }
      if (err == 0 && c->eof && pending_out (c) == 0
          && (c->inlen == 0 || c->discarding))
        err = -ECONNRESET;      /* done: the client closed its side */
      if (err < 0) {
        log_debug (DBG_ADMIN, "admin: connection %d closed: %s", c->fd,
                   strerror (-err));
        conn_free (c);
        a->conns[i] = NULL;
      }
    }
    for (i = j = 0; i < a->nconns; i++)
      if (a->conns[i] != NULL)
        a->conns[j++] = a->conns[i];
    a->nconns = j;
  }
  return NULL;
}

int
admin_start (struct blockmap_pool *pool, const struct config *cfg,
             int listen_fd, struct admin_server **out)
{
  struct admin_server *a;
  int flags, err;

  a = calloc (1, sizeof *a);
  if (a == NULL) {
    close (listen_fd);
    return -ENOMEM;
  }
  a->pool = pool;
  a->cfg = cfg;
  a->listen_fd = listen_fd;
  a->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (a->wake_fd < 0) {
    err = -errno;
    log_error ("admin: eventfd: %m");
    goto fail;
  }
  flags = fcntl (listen_fd, F_GETFL);
  if (flags < 0 || fcntl (listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    err = -errno;
    log_error ("admin: cannot make the admin socket non-blocking: %m");
    goto fail;
  }
  err = pthread_create (&a->thread, NULL, admin_thread, a);
  if (err != 0) {
    err = -err;
    log_error ("admin: cannot start the admin thread: %s", strerror (-err));
    goto fail;
  }
  *out = a;
  return 0;

 fail:
  if (a->wake_fd >= 0)
    close (a->wake_fd);
  close (a->listen_fd);
  free (a);
  return err;
}

void
admin_stop (struct admin_server *a)
{
  uint64_t one = 1;
  size_t i;

  if (a == NULL)
    return;
  if (write (a->wake_fd, &one, sizeof one) != sizeof one)
    abort ();                   /* an eventfd write cannot fail here */
  pthread_join (a->thread, NULL);
  for (i = 0; i < a->nconns; i++)
    conn_free (a->conns[i]);
  close (a->listen_fd);
  close (a->wake_fd);
  free (a);
}
