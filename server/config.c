/* server/config.c: volume types, built in and from the YAML file.
 *
 * The configuration file (doc/config.md) is YAML:
 *
 *   volume_types:
 *     ssd: {iops: 3000, throughput: 125MB, max_iops: 16000, tier: hot}
 *     archive: {throughput: 20MB, tier: warm, rotational: true}
 *
 * It is read with libyaml's document API: the whole file becomes a node
 * tree whose nodes remember their line, so every error can name the
 * file, the line and the key ("strata.yaml:4: volume type 'ssd': 'iops'
 * must be a positive integer").  Unknown keys are errors, because a
 * misspelt budget that is silently ignored is worse than a refusal.
 *
 * Types in the file start from the built-in type of the same name when
 * there is one (so "ssd: {iops: 6000}" changes only the IOPS), else
 * from the generic defaults below.  The result is a flat array; lookups
 * are linear because there are a handful of types.
 *
 * Units: throughputs follow the EBS convention of decimal units
 * (125MB = 125,000,000 bytes/s; "125MiB" is binary; an optional "/s"
 * is accepted).  Sizes (op_size) use binary units via
 * units_parse_size (256K = 262144).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "common/cleanup.h"
#include "common/units.h"
#include "internal.h"

#define MB UINT64_C (1000000)

static const struct volume_type builtin_types[] = {
  /* gp3-like: a baseline that may be provisioned up to the maxima. */
  { .name = "ssd", .iops = 3000, .throughput = 125 * MB,
    .max_iops = 16000, .max_throughput = 1000 * MB, .iops_per_gib = 500,
    .op_size = 256 * 1024, .burst = 1, .tier = BM_TIER_HOT,
    .rotational = false },
  /* st1-like: throughput-optimised, large operations, rotational. */
  { .name = "hdd", .iops = 500, .throughput = 50 * MB,
    .max_iops = 500, .max_throughput = 500 * MB, .iops_per_gib = 0,
    .op_size = 1024 * 1024, .burst = 1, .tier = BM_TIER_WARM,
    .rotational = true },
};
#define NBUILTIN (sizeof builtin_types / sizeof builtin_types[0])
_Static_assert (NBUILTIN == 2, "struct parse.overridden is sized for 2");

/* A new type that is not built in: unlimited IOPS, hot, 256K ops.
 * max_iops/max_throughput default to the baseline (set after parsing).
 */
static const struct volume_type generic_type = {
  .iops = 0, .throughput = 0, .op_size = 256 * 1024, .burst = 1,
  .tier = BM_TIER_HOT, .rotational = false,
};

void
config_free (struct config *cfg)
{
  if (cfg == NULL)
    return;
  free (cfg->types);
  free (cfg);
}

const struct volume_type *
config_find_type (const struct config *cfg, const char *name)
{
  size_t i;

  if (cfg == NULL || name == NULL)
    return NULL;
  for (i = 0; i < cfg->ntypes; i++)
    if (strcmp (cfg->types[i].name, name) == 0)
      return &cfg->types[i];
  return NULL;
}

/* ---- Parsing helpers -------------------------------------------------- */

struct parse {
  const char *path;
  yaml_document_t *doc;
  char *err;
  size_t errlen;
  bool overridden[2];           /* builtin_types[i] was set by the file */
};

static int
fail (struct parse *p, const yaml_node_t *node, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static int
fail (struct parse *p, const yaml_node_t *node, const char *fmt, ...)
{
  va_list ap;
  int n;

  n = snprintf (p->err, p->errlen, "%s:%zu: ", p->path,
                node ? (size_t) node->start_mark.line + 1 : (size_t) 1);
  if (n < 0 || (size_t) n >= p->errlen)
    return -EINVAL;
  va_start (ap, fmt);
  vsnprintf (p->err + n, p->errlen - n, fmt, ap);
  va_end (ap);
  return -EINVAL;
}

static const char *
scalar (const yaml_node_t *node)
{
  if (node == NULL || node->type != YAML_SCALAR_NODE)
    return NULL;
  return (const char *) node->data.scalar.value;
}

/* A positive integer without units ("3000"). */
static int
parse_count (const char *s, uint64_t *out)
{
  uint64_t v = 0;

  if (s == NULL || *s == '\0')
    return -EINVAL;
  for (; *s; s++) {
    if (!isdigit ((unsigned char) *s))
      return -EINVAL;
    if (__builtin_mul_overflow (v, 10, &v)
        || __builtin_add_overflow (v, (uint64_t) (*s - '0'), &v))
      return -ERANGE;
  }
  *out = v;
  return 0;
}

static int
parse_bool (const char *s, bool *out)
{
  if (s == NULL)
    return -EINVAL;
  if (strcmp (s, "true") == 0 || strcmp (s, "yes") == 0
      || strcmp (s, "True") == 0 || strcmp (s, "on") == 0) {
    *out = true;
    return 0;
  }
  if (strcmp (s, "false") == 0 || strcmp (s, "no") == 0
      || strcmp (s, "False") == 0 || strcmp (s, "off") == 0) {
    *out = false;
    return 0;
  }
  return -EINVAL;
}

static int
parse_tier (const char *s, enum blockmap_tier *out)
{
  if (s == NULL)
    return -EINVAL;
  if (strcmp (s, "hot") == 0)
    *out = BM_TIER_HOT;
  else if (strcmp (s, "warm") == 0)
    *out = BM_TIER_WARM;
  else if (strcmp (s, "cold") == 0)
    *out = BM_TIER_COLD;
  else
    return -EINVAL;
  return 0;
}

/* Type names follow volume names (blockmap_name_valid), shorter. */
static bool
type_name_valid (const char *s)
{
  size_t n = strlen (s), i;

  if (n == 0 || n >= BLOCKMAP_TYPE_MAX || s[0] == '.' || s[0] == '-')
    return false;
  for (i = 0; i < n; i++)
    if (!isalnum ((unsigned char) s[i]) && !strchr ("._-", s[i]))
      return false;
  return true;
}

/* ---- The tree --------------------------------------------------------- */

enum field_kind { F_COUNT, F_COUNT0, F_RATE, F_SIZE, F_TIER, F_BOOL };

static const struct field {
  const char *key;
  enum field_kind kind;
  size_t offset;
} fields[] = {
  { "iops", F_COUNT, offsetof (struct volume_type, iops) },
  { "throughput", F_RATE, offsetof (struct volume_type, throughput) },
  { "max_iops", F_COUNT, offsetof (struct volume_type, max_iops) },
  { "max_throughput", F_RATE, offsetof (struct volume_type, max_throughput) },
  { "iops_per_gib", F_COUNT0, offsetof (struct volume_type, iops_per_gib) },
  { "op_size", F_SIZE, offsetof (struct volume_type, op_size) },
  { "burst", F_COUNT, offsetof (struct volume_type, burst) },
  { "tier", F_TIER, offsetof (struct volume_type, tier) },
  { "rotational", F_BOOL, offsetof (struct volume_type, rotational) },
  { "alarm_iops", F_COUNT0, offsetof (struct volume_type, alarm_iops) },
  { "alarm_throughput", F_RATE,
    offsetof (struct volume_type, alarm_throughput) },
  { "alarm_latency_p99", F_COUNT0,
    offsetof (struct volume_type, alarm_latency_p99) },
  { "alarm_throttled", F_COUNT0,
    offsetof (struct volume_type, alarm_throttled) },
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static const char field_names[] =
  "iops, throughput, max_iops, max_throughput, iops_per_gib, op_size, "
  "burst, tier, rotational, alarm_iops, alarm_throughput, "
  "alarm_latency_p99, alarm_throttled";

static int
parse_field (struct parse *p, struct volume_type *t, const char *key,
             yaml_node_t *vnode, bool *seen)
{
  const struct field *f = NULL;
  const char *v = scalar (vnode);
  char *dst = (char *) t;
  uint64_t u;
  size_t i;
  int r;

  for (i = 0; i < NFIELDS; i++)
    if (strcmp (fields[i].key, key) == 0)
      f = &fields[i];
  if (f == NULL)
    return fail (p, vnode, "volume type '%s': unknown key '%s'; known keys: "
                 "%s", t->name, key, field_names);
  if (seen[f - fields])
    return fail (p, vnode, "volume type '%s': '%s' is given twice",
                 t->name, key);
  seen[f - fields] = true;
  if (v == NULL || (vnode->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                    && v[0] == '\0'))
    return fail (p, vnode, "volume type '%s': '%s' needs a value",
                 t->name, key);

  switch (f->kind) {
  case F_COUNT:
  case F_COUNT0:
    r = parse_count (v, &u);
    if (r < 0 || (f->kind == F_COUNT && u == 0))
      return fail (p, vnode, "volume type '%s': '%s' must be a %s integer, "
                   "not '%s'", t->name, key,
                   f->kind == F_COUNT ? "positive" : "non-negative", v);
    memcpy (dst + f->offset, &u, sizeof u);
    break;
  case F_RATE:
    r = units_parse_rate (v, &u);
    if (r < 0 || u == 0)
      return fail (p, vnode, "volume type '%s': '%s' must be a positive "
                   "rate in bytes per second such as 125MB (decimal "
                   "units) or 100MiB, not '%s'", t->name, key, v);
    memcpy (dst + f->offset, &u, sizeof u);
    break;
  case F_SIZE:
    r = units_parse_size (v, &u);
    if (r < 0 || u == 0 || u % 512 != 0 || u > 64 * 1024 * 1024)
      return fail (p, vnode, "volume type '%s': '%s' must be a size such as "
                   "256K, a multiple of 512 up to 64M, not '%s'",
                   t->name, key, v);
    memcpy (dst + f->offset, &u, sizeof u);
    break;
  case F_TIER:
    if (parse_tier (v, &t->tier) < 0)
      return fail (p, vnode, "volume type '%s': 'tier' must be hot, warm or "
                   "cold, not '%s'", t->name, v);
    break;
  case F_BOOL:
    if (parse_bool (v, &t->rotational) < 0)
      return fail (p, vnode, "volume type '%s': '%s' must be true or false, "
                   "not '%s'", t->name, key, v);
    break;
  }
  return 0;
}

static int
add_type (struct parse *p, struct config *cfg, yaml_node_t *knode,
          yaml_node_t *vnode)
{
  const char *name = scalar (knode);
  struct volume_type t, *slot = NULL;
  bool seen[NFIELDS] = { false }, builtin = false;
  yaml_node_pair_t *pair;
  size_t i;
  int r;

  if (name == NULL || !type_name_valid (name))
    return fail (p, knode, "volume type name '%s' must be 1 to %d "
                 "characters of [A-Za-z0-9._-], not starting with '.' or "
                 "'-'", name ? name : "(not a string)", BLOCKMAP_TYPE_MAX - 1);

  t = generic_type;
  for (i = 0; i < NBUILTIN; i++)
    if (strcmp (builtin_types[i].name, name) == 0) {
      t = builtin_types[i];
      builtin = true;
    }
  snprintf (t.name, sizeof t.name, "%s", name);

  for (i = 0; i < cfg->ntypes; i++)
    if (strcmp (cfg->types[i].name, name) == 0) {
      slot = &cfg->types[i];
      /* A built-in is overridden once; a file's own type defined once. */
      if (i >= NBUILTIN || p->overridden[i])
        return fail (p, knode, "volume type '%s' is defined twice", name);
      p->overridden[i] = true;
    }

  if (vnode->type == YAML_SCALAR_NODE && scalar (vnode)[0] == '\0'
      && vnode->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
    ;                           /* "name:" alone: all defaults */
  else if (vnode->type != YAML_MAPPING_NODE)
    return fail (p, vnode, "volume type '%s' must be a mapping of keys "
                 "(%s)", name, field_names);
  else {
    for (pair = vnode->data.mapping.pairs.start;
         pair < vnode->data.mapping.pairs.top; pair++) {
      yaml_node_t *k = yaml_document_get_node (p->doc, pair->key);
      yaml_node_t *v = yaml_document_get_node (p->doc, pair->value);
      const char *key = scalar (k);

      if (key == NULL)
        return fail (p, k, "volume type '%s': keys must be strings", name);
      r = parse_field (p, &t, key, v, seen);
      if (r < 0)
        return r;
    }
  }

  /* A new type's maxima default to its baseline; a built-in whose
   * baseline was raised above its maxima gets them raised too only if
   * the file did not set them (then it is the operator's mistake).
   */
  if (!seen[2] && (!builtin || t.max_iops < t.iops))
    t.max_iops = t.iops;
  if (!seen[3] && (!builtin || t.max_throughput < t.throughput))
    t.max_throughput = t.throughput;
  if (t.max_iops < t.iops)
    return fail (p, vnode, "volume type '%s': 'max_iops' (%" PRIu64 ") is "
                 "below 'iops' (%" PRIu64 ")", name, t.max_iops, t.iops);
  if (t.max_throughput < t.throughput)
    return fail (p, vnode, "volume type '%s': 'max_throughput' (%" PRIu64
                 ") is below 'throughput' (%" PRIu64 ")", name,
                 t.max_throughput, t.throughput);

  if (slot == NULL) {
    struct volume_type *nt;

    nt = realloc (cfg->types, (cfg->ntypes + 1) * sizeof *nt);
    if (nt == NULL)
      return -ENOMEM;
    cfg->types = nt;
    slot = &cfg->types[cfg->ntypes++];
  }
  *slot = t;
  return 0;
}

/* tiers: {hot: {cost_per_gb: 0.08}, warm: {...}, cold: {...}} */
static int
parse_tiers (struct parse *p, struct config *cfg, yaml_node_t *v)
{
  yaml_node_pair_t *tp, *kp;
  enum blockmap_tier tier;

  if (v->type == YAML_SCALAR_NODE && scalar (v)[0] == '\0')
    return 0;
  if (v->type != YAML_MAPPING_NODE)
    return fail (p, v, "'tiers' must be a mapping of hot, warm and cold to "
                 "their settings");
  for (tp = v->data.mapping.pairs.start; tp < v->data.mapping.pairs.top;
       tp++) {
    yaml_node_t *k = yaml_document_get_node (p->doc, tp->key);
    yaml_node_t *tv = yaml_document_get_node (p->doc, tp->value);
    const char *name = scalar (k);

    if (parse_tier (name, &tier) < 0)
      return fail (p, k, "unknown tier '%s'; tiers are hot, warm and cold",
                   name ? name : "(not a string)");
    if (tv->type != YAML_MAPPING_NODE)
      return fail (p, tv, "tier '%s' must be a mapping such as "
                   "{cost_per_gb: 0.08}", name);
    for (kp = tv->data.mapping.pairs.start;
         kp < tv->data.mapping.pairs.top; kp++) {
      yaml_node_t *kk = yaml_document_get_node (p->doc, kp->key);
      yaml_node_t *kv = yaml_document_get_node (p->doc, kp->value);
      const char *key = scalar (kk), *val = scalar (kv);
      char *end;
      double d;

      if (key == NULL || strcmp (key, "cost_per_gb") != 0)
        return fail (p, kk, "tier '%s': unknown key '%s'; known keys: "
                     "cost_per_gb", name, key ? key : "(not a string)");
      errno = 0;
      d = val ? strtod (val, &end) : -1;
      if (val == NULL || end == val || *end != '\0' || errno != 0
          || !(d >= 0) || d > 1e6)
        return fail (p, kv, "tier '%s': 'cost_per_gb' must be a "
                     "non-negative number (currency units per GB-month), "
                     "not '%s'", name, val ? val : "(not a scalar)");
      cfg->tier_cost[tier] = d;
    }
  }
  return 0;
}

static int
parse_root (struct parse *p, struct config *cfg)
{
  yaml_node_t *root = yaml_document_get_root_node (p->doc);
  yaml_node_pair_t *pair, *tp;
  bool seen_types = false;
  int r;

  if (root == NULL)
    return 0;                   /* an empty file: the defaults */
  if (root->type == YAML_SCALAR_NODE && scalar (root)[0] == '\0')
    return 0;
  if (root->type != YAML_MAPPING_NODE)
    return fail (p, root, "the file must be a mapping with the key "
                 "'volume_types'");

  for (pair = root->data.mapping.pairs.start;
       pair < root->data.mapping.pairs.top; pair++) {
    yaml_node_t *k = yaml_document_get_node (p->doc, pair->key);
    yaml_node_t *v = yaml_document_get_node (p->doc, pair->value);
    const char *key = scalar (k);

    if (key != NULL && strcmp (key, "tiers") == 0) {
      if ((r = parse_tiers (p, cfg, v)) < 0)
        return r;
      continue;
    }
    if (key == NULL || strcmp (key, "volume_types") != 0)
      return fail (p, k, "unknown key '%s'; known keys: volume_types, tiers",
                   key ? key : "(not a string)");
    if (seen_types)
      return fail (p, k, "'volume_types' is given twice");
    seen_types = true;
    if (v->type == YAML_SCALAR_NODE && scalar (v)[0] == '\0')
      continue;                 /* "volume_types:" alone */
    if (v->type != YAML_MAPPING_NODE)
      return fail (p, v, "'volume_types' must be a mapping of type names "
                   "to their settings");
    for (tp = v->data.mapping.pairs.start; tp < v->data.mapping.pairs.top;
         tp++) {
      r = add_type (p, cfg, yaml_document_get_node (p->doc, tp->key),
                    yaml_document_get_node (p->doc, tp->value));
      if (r < 0)
        return r;
    }
  }
  return 0;
}

static int
load_file (const char *path, struct config *cfg, char *err, size_t errlen)
{
  struct parse p = { .path = path, .err = err, .errlen = errlen };
  yaml_parser_t parser;
  yaml_document_t doc;
  FILE *fp;
  int r;

  fp = fopen (path, "re");
  if (fp == NULL) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    return r;
  }
  if (!yaml_parser_initialize (&parser)) {
    fclose (fp);
    return -ENOMEM;
  }
  yaml_parser_set_input_file (&parser, fp);
  if (!yaml_parser_load (&parser, &doc)) {
    snprintf (err, errlen, "%s:%zu: %s%s%s", path,
              (size_t) parser.problem_mark.line + 1,
              parser.problem ? parser.problem : "not valid YAML",
              parser.context ? " " : "",
              parser.context ? parser.context : "");
    yaml_parser_delete (&parser);
    fclose (fp);
    return -EINVAL;
  }
  p.doc = &doc;
  r = parse_root (&p, cfg);
  if (r == 0) {
    /* A second document in the same file is a mistake, not ignored. */
    yaml_document_t doc2;

    if (!yaml_parser_load (&parser, &doc2)) {
      snprintf (err, errlen, "%s:%zu: %s", path,
                (size_t) parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "not valid YAML");
      r = -EINVAL;
    }
    else {
      if (yaml_document_get_root_node (&doc2) != NULL) {
        snprintf (err, errlen, "%s:%zu: only one YAML document is allowed",
                  path, (size_t) doc2.start_mark.line + 1);
        r = -EINVAL;
      }
      yaml_document_delete (&doc2);
    }
  }
  yaml_document_delete (&doc);
  yaml_parser_delete (&parser);
  fclose (fp);
  return r;
}

int
config_load (const char *path, struct config **cfgp, char *err,
             size_t errlen)
{
  struct config *cfg;
  int r;

  if (errlen > 0)
    err[0] = '\0';
  cfg = calloc (1, sizeof *cfg);
  if (cfg == NULL)
    return -ENOMEM;
  cfg->types = malloc (sizeof builtin_types);
  if (cfg->types == NULL) {
    free (cfg);
    return -ENOMEM;
  }
  memcpy (cfg->types, builtin_types, sizeof builtin_types);
  cfg->ntypes = NBUILTIN;
  /* EBS-like list prices per GB-month: gp3, st1, sc1. */
  cfg->tier_cost[BM_TIER_HOT] = 0.08;
  cfg->tier_cost[BM_TIER_WARM] = 0.045;
  cfg->tier_cost[BM_TIER_COLD] = 0.015;

  if (path != NULL) {
    r = load_file (path, cfg, err, errlen);
    if (r < 0) {
      if (r == -ENOMEM && errlen > 0 && err[0] == '\0')
        snprintf (err, errlen, "%s: out of memory", path);
      config_free (cfg);
      return r;
    }
  }
  *cfgp = cfg;
  return 0;
}
