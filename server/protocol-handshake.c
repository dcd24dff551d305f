/* server/protocol-handshake.c: the NBD fixed-newstyle handshake.
 *
 *   server: NBDMAGIC IHAVEOPT flags(FIXED_NEWSTYLE|NO_ZEROES)
 *   client: flags
 *   client: IHAVEOPT option length data      ┐ repeated; each gets
 *   server: REP_MAGIC option reply length ...┘ replies ending in ACK
 *                                              or an error
 *   ... until NBD_OPT_GO (ACK) or NBD_OPT_EXPORT_NAME: transmission.
 *
 * The parser works on the connection's receive buffer and consumes a
 * whole option at a time; options longer than PROTO_MAX_OPTION are
 * refused with NBD_REP_ERR_TOO_BIG and their data skipped, so a
 * client can neither make us buffer much nor desynchronise us.  Bad
 * magic, unknown client flags or an unknown export for
 * NBD_OPT_EXPORT_NAME (which has no way to report errors) close the
 * connection.  Nothing here blocks: volume lookups are in-memory.
 *
 * Replies queue while the client does not read them: past
 * CONN_MAX_HS_QUEUE bytes the parser pauses until they drain, and a
 * handshake may carry at most PROTO_MAX_OPTIONS options and
 * PROTO_MAX_LISTS export lists, so a client can make us neither queue
 * nor work without bound.  The loop closes a connection that has not
 * finished its handshake within 30 s (loop.c).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "internal.h"

#define BASE_ALLOCATION "base:allocation"

int
proto_greet (struct conn *c)
{
  struct nbd_greeting g = {
    .magic = htobe64 (NBD_MAGIC),
    .ihaveopt = htobe64 (NBD_IHAVEOPT),
    .flags = htobe16 (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
  };

  return conn_queue_copy (c, &g, sizeof g, NULL, 0);
}

uint16_t
proto_export_flags (bool structured, bool rotational, bool read_only)
{
  uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
    NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;

  if (!read_only)
    f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
      NBD_FLAG_SEND_FAST_ZERO;
  else
    f |= NBD_FLAG_READ_ONLY;
  if (structured)
    f |= NBD_FLAG_SEND_DF;
  if (rotational)
    f |= NBD_FLAG_ROTATIONAL;
  return f;
}

int
proto_parse_info_request (const char *data, uint32_t len,
                          const char **name, uint32_t *namelen,
                          const char **reqs, uint16_t *nreqs)
{
  uint32_t nl;
  uint16_t n;

  if (len < 6)
    return -EINVAL;
  memcpy (&nl, data, 4);
  nl = be32toh (nl);
  if (nl > len - 6)
    return -EINVAL;
  memcpy (&n, data + 4 + nl, 2);
  n = be16toh (n);
  if ((uint64_t) 6 + nl + 2 * (uint64_t) n != len)
    return -EINVAL;
  *name = data + 4;
  *namelen = nl;
  *reqs = data + 6 + nl;
  *nreqs = n;
  return 0;
}

/* ---- Replies -------------------------------------------------------- */

static int
reply (struct conn *c, uint32_t option, uint32_t type,
       const void *data, size_t len)
{
  struct nbd_option_reply h = {
    .magic = htobe64 (NBD_REP_MAGIC),
    .option = htobe32 (option),
    .reply = htobe32 (type),
    .length = htobe32 (len),
  };

  return conn_queue_copy (c, &h, sizeof h, data, len);
}

static int
reply_error (struct conn *c, uint32_t option, uint32_t type,
             const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

static int
reply_error (struct conn *c, uint32_t option, uint32_t type,
             const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (n < 0)
    n = 0;
  if ((size_t) n >= sizeof msg)
    n = sizeof msg - 1;
  log_debug (DBG_PROTO, "conn %" PRIu64 ": option %" PRIu32 ": %s",
             c->id, option, msg);
  return reply (c, option, type, msg, n);
}

/* Resolve the export NAME (LEN bytes, not NUL-terminated; empty means
 * the default export) into OUT and fill *INFO.  Returns 0, or -ENOENT.
 */
static int
find_export (const char *name, uint32_t len, char out[BLOCKMAP_NAME_MAX],
             struct blockmap_volume_info *info)
{
  if (len == 0) {
    const char *def = server.opts ? server.opts->default_export : NULL;
    if (def == NULL || strlen (def) >= BLOCKMAP_NAME_MAX)
      return -ENOENT;
    strcpy (out, def);
  }
  else {
    if (len >= BLOCKMAP_NAME_MAX || memchr (name, 0, len) != NULL)
      return -ENOENT;
    memcpy (out, name, len);
    out[len] = 0;
  }
  return blockmap_volume_info (server.pool, out, info) == 0 ? 0 : -ENOENT;
}

static bool
type_rotational (const char *type)
{
  const struct volume_type *t;

  if (server.cfg == NULL)
    return false;
  t = config_find_type (server.cfg, type);
  return t != NULL && t->rotational;
}

/* Switch C to transmission on export NAME.  Returns 0 or -errno. */
static int
enter_transmission (struct conn *c, const char *name, bool rotational,
                    bool read_only)
{
  struct blockmap_volume *vol;
  int r;

  r = blockmap_volume_open (server.pool, name, &vol);
  if (r < 0)
    return r;
  c->export_name = strdup (name);
  if (c->export_name == NULL) {
    blockmap_volume_release (vol);
    return -ENOMEM;
  }
  c->vol = vol;
  c->eflags = proto_export_flags (c->structured, rotational, read_only);
  if (c->meta_export == NULL || strcmp (c->meta_export, name) != 0) {
    c->meta_allocation = false; /* negotiated for another export */
    free (c->meta_changed);
    c->meta_changed = NULL;
  }
  if (c->meta_changed &&
      blockmap_volume_open (server.pool, c->meta_changed,
                            &c->changed_base) < 0)
    c->changed_base = NULL;     /* deleted since: block status refused */
  c->state = CONN_TRANSMISSION;
  log_debug (DBG_PROTO, "conn %" PRIu64 ": export %s, flags 0x%x%s",
             c->id, name, c->eflags,
             c->structured ? ", structured replies" : "");
  return 0;
}

/* ---- Options -------------------------------------------------------- */

static int
opt_export_name (struct conn *c, const char *data, uint32_t len)
{
  struct blockmap_volume_info info;
  char name[BLOCKMAP_NAME_MAX];
  struct nbd_export_name_reply rep;
  static const char zeroes[124];
  int r;

  r = find_export (data, len, name, &info);
  if (r == 0)
    r = enter_transmission (c, name, type_rotational (info.type),
                            info.readonly);
  if (r < 0) {
    /* This option has no error reply: all we can do is hang up. */
    log_debug (DBG_PROTO, "conn %" PRIu64 ": NBD_OPT_EXPORT_NAME '%.*s': "
               "no such export", c->id, (int) (len > 128 ? 128 : len), data);
    return -ENOENT;
  }
  rep.size = htobe64 (blockmap_volume_size (c->vol));
  rep.flags = htobe16 (c->eflags);
  return conn_queue_copy (c, &rep, sizeof rep, zeroes,
                          c->cflags & NBD_FLAG_C_NO_ZEROES ? 0
                          : sizeof zeroes);
}

struct list_ctx {
  struct conn *c;
  int r;
};

static int
list_one (void *opaque, const struct blockmap_volume_info *info)
{
  struct list_ctx *lc = opaque;
  uint32_t len = strlen (info->name);
  char buf[4 + BLOCKMAP_NAME_MAX];
  uint32_t belen = htobe32 (len);

  memcpy (buf, &belen, 4);
  memcpy (buf + 4, info->name, len);
  lc->r = reply (lc->c, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + len);
  return lc->r < 0 ? 1 : 0;
}

static int
opt_list (struct conn *c, uint32_t len)
{
  struct list_ctx lc = { .c = c, .r = 0 };

  if (len != 0)
    return reply_error (c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                        "NBD_OPT_LIST takes no data");
  blockmap_volume_foreach (server.pool, list_one, &lc);
  if (lc.r < 0)
    return lc.r;
  return reply (c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

static int
opt_info_go (struct conn *c, uint32_t option, const char *data, uint32_t len)
{
  struct blockmap_volume_info info;
  char name[BLOCKMAP_NAME_MAX];
  const char *rname, *reqs;
  uint32_t rnamelen;
  uint16_t nreqs, i, t;
  bool want_name = false, want_desc = false, rotational;
  struct nbd_info_export ie;
  struct nbd_info_block_size ib;
  uint16_t flags;
  int r;

  if (proto_parse_info_request (data, len, &rname, &rnamelen,
                                &reqs, &nreqs) < 0)
    return reply_error (c, option, NBD_REP_ERR_INVALID,
                        "malformed %s request",
                        option == NBD_OPT_GO ? "NBD_OPT_GO" : "NBD_OPT_INFO");
  for (i = 0; i < nreqs; i++) {
    memcpy (&t, reqs + 2 * i, 2);
    t = be16toh (t);
    if (t == NBD_INFO_NAME)
      want_name = true;
    else if (t == NBD_INFO_DESCRIPTION)
      want_desc = true;
  }
  if (find_export (rname, rnamelen, name, &info) < 0) {
    if (rnamelen == 0)
      return reply_error (c, option, NBD_REP_ERR_UNKNOWN,
                          "no default export (use stratad "
                          "--default-export, or name a volume)");
    return reply_error (c, option, NBD_REP_ERR_UNKNOWN,
                        "volume '%.*s' does not exist",
                        (int) (rnamelen > 128 ? 128 : rnamelen), rname);
  }
  rotational = type_rotational (info.type);
  flags = proto_export_flags (c->structured, rotational, info.readonly);

  ie.type = htobe16 (NBD_INFO_EXPORT);
  ie.size = htobe64 (info.size);
  ie.flags = htobe16 (flags);
  r = reply (c, option, NBD_REP_INFO, &ie, sizeof ie);
  if (r == 0 && (want_name || rnamelen == 0)) {
    char buf[2 + BLOCKMAP_NAME_MAX];
    uint16_t bt = htobe16 (NBD_INFO_NAME);
    size_t nl = strlen (name);

    memcpy (buf, &bt, 2);
    memcpy (buf + 2, name, nl);
    r = reply (c, option, NBD_REP_INFO, buf, 2 + nl);
  }
  if (r == 0 && want_desc) {
    char buf[2 + 256];
    uint16_t bt = htobe16 (NBD_INFO_DESCRIPTION);
    int n = snprintf (buf + 2, sizeof buf - 2, "strata volume %s (type %s)",
                      name, info.type);

    if (n < 0)
      n = 0;
    if ((size_t) n >= sizeof buf - 2)
      n = sizeof buf - 3;
    memcpy (buf, &bt, 2);
    r = reply (c, option, NBD_REP_INFO, buf, 2 + n);
  }
  if (r == 0) {
    ib.type = htobe16 (NBD_INFO_BLOCK_SIZE);
    ib.minimum = htobe32 (PROTO_MIN_BLOCK);
    ib.preferred = htobe32 (PROTO_PREF_BLOCK);
    ib.maximum = htobe32 (PROTO_MAX_PAYLOAD);
    r = reply (c, option, NBD_REP_INFO, &ib, sizeof ib);
  }
  if (r < 0)
    return r;
  if (option == NBD_OPT_GO) {
    r = enter_transmission (c, name, rotational, info.readonly);
    if (r < 0)
      return reply_error (c, option, NBD_REP_ERR_UNKNOWN,
                          "volume '%s' cannot be opened: %s",
                          name, strerror (-r));
  }
  return reply (c, option, NBD_REP_ACK, NULL, 0);
}

/* The base snapshot named by context "strata:changed:X" of export
 * EXPORT: X itself if it has an '@', else EXPORT's volume "@" X.  It
 * must be a snapshot that exists.  Returns 0 or -ENOENT.
 */
static int
changed_base (const char *export, const char *x, size_t xlen,
              char out[BLOCKMAP_NAME_MAX])
{
  struct blockmap_volume_info info;
  size_t vl = strcspn (export, "@");

  if (xlen == 0 || memchr (x, '\0', xlen))
    return -ENOENT;
  if (memchr (x, '@', xlen)) {
    if (xlen >= BLOCKMAP_NAME_MAX)
      return -ENOENT;
    memcpy (out, x, xlen);
    out[xlen] = '\0';
  }
  else {
    if (vl + 1 + xlen >= BLOCKMAP_NAME_MAX)
      return -ENOENT;
    memcpy (out, export, vl);
    out[vl] = '@';
    memcpy (out + vl + 1, x, xlen);
    out[vl + 1 + xlen] = '\0';
  }
  if (strcmp (out, export) == 0 ||
      blockmap_volume_info (server.pool, out, &info) < 0 || !info.readonly)
    return -ENOENT;
  return 0;
}

static int
reply_context (struct conn *c, uint32_t option, uint32_t id,
               const char *name, size_t len)
{
  char buf[4 + sizeof PROTO_CHANGED_PREFIX + 2 * BLOCKMAP_NAME_MAX];
  uint32_t beid = htobe32 (id);

  if (len > sizeof buf - 4)
    return 0;
  memcpy (buf, &beid, 4);
  memcpy (buf + 4, name, len);
  return reply (c, option, NBD_REP_META_CONTEXT, buf, 4 + len);
}

struct list_changed {
  struct conn *c;
  uint32_t option;
  const char *export;
  int r;
};

/* LIST: every snapshot of the export's volume is a context. */
static int
list_changed_one (void *opaque, const struct blockmap_volume_info *info)
{
  struct list_changed *l = opaque;
  size_t vl = strcspn (l->export, "@");
  char ctx[sizeof PROTO_CHANGED_PREFIX + BLOCKMAP_NAME_MAX];
  int n;

  if (!info->readonly || strncmp (info->name, l->export, vl) != 0 ||
      info->name[vl] != '@' || strcmp (info->name, l->export) == 0)
    return 0;
  n = snprintf (ctx, sizeof ctx, "%s%s", PROTO_CHANGED_PREFIX,
                info->name + vl + 1);
  l->r = reply_context (l->c, l->option, 0, ctx, n);
  return l->r < 0 ? 1 : 0;
}

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: contexts are
 * base:allocation and, per snapshot of the export's volume,
 * strata:changed:SNAPSHOT (chunks that differ from that snapshot).
 */
static int
opt_meta_context (struct conn *c, uint32_t option, const char *data,
                  uint32_t len)
{
  const bool list = option == NBD_OPT_LIST_META_CONTEXT;
  const char *what = list ? "NBD_OPT_LIST_META_CONTEXT"
    : "NBD_OPT_SET_META_CONTEXT";
  const size_t plen = strlen (PROTO_CHANGED_PREFIX);
  struct blockmap_volume_info info;
  char name[BLOCKMAP_NAME_MAX], base[BLOCKMAP_NAME_MAX];
  uint32_t namelen, nq, ql, i, pos;
  bool alloc = false, all_changed = false;
  uint32_t id;
  int r;

  if (!c->structured)
    return reply_error (c, option, NBD_REP_ERR_INVALID,
                        "%s needs NBD_OPT_STRUCTURED_REPLY first", what);
  if (!list) {                  /* SET replaces what was set before */
    c->meta_allocation = false;
    free (c->meta_export);
    c->meta_export = NULL;
    free (c->meta_changed);
    c->meta_changed = NULL;
  }
  if (len < 8)
    goto invalid;
  memcpy (&namelen, data, 4);
  namelen = be32toh (namelen);
  if (namelen > len - 8)
    goto invalid;
  memcpy (&nq, data + 4 + namelen, 4);
  nq = be32toh (nq);
  /* Check the whole query list before answering anything. */
  pos = 8 + namelen;
  for (i = 0; i < nq; i++) {
    if (len - pos < 4)
      goto invalid;
    memcpy (&ql, data + pos, 4);
    ql = be32toh (ql);
    if (ql > len - pos - 4)
      goto invalid;
    pos += 4 + ql;
  }
  if (pos != len)
    goto invalid;
  if (find_export (data + 4, namelen, name, &info) < 0)
    return reply_error (c, option, NBD_REP_ERR_UNKNOWN,
                        "volume '%.*s' does not exist",
                        (int) (namelen > 128 ? 128 : namelen), data + 4);

  if (nq == 0 && list)
    alloc = all_changed = true; /* everything we have */
  pos = 8 + namelen;
  for (i = 0; i < nq; i++) {
    const char *q;

    memcpy (&ql, data + pos, 4);
    ql = be32toh (ql);
    q = data + pos + 4;
    pos += 4 + ql;
    if (ql == strlen (BASE_ALLOCATION) &&
        memcmp (q, BASE_ALLOCATION, ql) == 0)
      alloc = true;
    else if (list && ql == 5 && memcmp (q, "base:", 5) == 0)
      alloc = true;             /* every context in the namespace */
    else if (list && ((ql == 7 && memcmp (q, "strata:", 7) == 0) ||
                      (ql == plen && memcmp (q, PROTO_CHANGED_PREFIX,
                                             plen) == 0)))
      all_changed = true;
    else if (ql > plen && memcmp (q, PROTO_CHANGED_PREFIX, plen) == 0 &&
             changed_base (name, q + plen, ql - plen, base) == 0) {
      /* One changed-blocks context per connection: the first named. */
      if (!list && c->meta_changed)
        continue;
      id = list ? 0 : PROTO_META_CHANGED_ID;
      if ((r = reply_context (c, option, id, q, ql)) < 0)
        return r;
      if (!list && (c->meta_changed = strdup (base)) == NULL)
        return -ENOMEM;
    }
  }
  if (alloc) {
    id = list ? 0 : PROTO_META_ALLOCATION_ID;
    r = reply_context (c, option, id, BASE_ALLOCATION,
                       strlen (BASE_ALLOCATION));
    if (r < 0)
      return r;
    if (!list)
      c->meta_allocation = true;
  }
  if (all_changed) {
    struct list_changed l = { c, option, name, 0 };
    blockmap_volume_foreach (server.pool, list_changed_one, &l);
    if (l.r < 0)
      return l.r;
  }
  if (!list && (c->meta_allocation || c->meta_changed)) {
    c->meta_export = strdup (name);
    if (c->meta_export == NULL)
      return -ENOMEM;
  }
  return reply (c, option, NBD_REP_ACK, NULL, 0);

 invalid:
  return reply_error (c, option, NBD_REP_ERR_INVALID, "malformed %s", what);
}

/* Handle one complete option.  Returns 0 or -errno (drop). */
static int
handle_option (struct conn *c, uint32_t option, const char *data,
               uint32_t len)
{
  log_debug (DBG_PROTO, "conn %" PRIu64 ": option %" PRIu32 " (%" PRIu32
             " bytes)", c->id, option, len);
  switch (option) {
  case NBD_OPT_EXPORT_NAME:
    return opt_export_name (c, data, len);
  case NBD_OPT_ABORT:
    c->disc = true;             /* close once the ACK is sent */
    return reply (c, option, NBD_REP_ACK, NULL, 0);
  case NBD_OPT_LIST:
    if (++c->nlists > PROTO_MAX_LISTS)
      return reply_error (c, option, NBD_REP_ERR_POLICY,
                          "at most %d export lists per connection",
                          PROTO_MAX_LISTS);
    return opt_list (c, len);
  case NBD_OPT_STARTTLS:
    return reply_error (c, option, NBD_REP_ERR_UNSUP,
                        "TLS is not supported yet");
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
    return opt_info_go (c, option, data, len);
  case NBD_OPT_STRUCTURED_REPLY:
    if (len != 0)
      return reply_error (c, option, NBD_REP_ERR_INVALID,
                          "NBD_OPT_STRUCTURED_REPLY takes no data");
    c->structured = true;
    return reply (c, option, NBD_REP_ACK, NULL, 0);
  case NBD_OPT_LIST_META_CONTEXT:
  case NBD_OPT_SET_META_CONTEXT:
    return opt_meta_context (c, option, data, len);
  default:
    return reply_error (c, option, NBD_REP_ERR_UNSUP,
                        "option %" PRIu32 " is not supported", option);
  }
}

int
proto_handshake (struct conn *c)
{
  struct nbd_option h;
  uint32_t option, len;
  size_t avail;
  int r;

  for (;;) {
    avail = c->rend - c->rstart;
    if (c->discard) {
      size_t n = avail < c->discard ? avail : c->discard;
      c->rstart += n;
      c->discard -= n;
      if (c->discard)
        return 0;
      continue;
    }
    if (c->disc || c->state == CONN_CLOSING ||
        c->state == CONN_TRANSMISSION)
      return 0;
    if (c->state == CONN_HS_FLAGS) {
      uint32_t f;

      if (avail < 4)
        return 0;
      memcpy (&f, c->rbuf + c->rstart, 4);
      c->rstart += 4;
      c->cflags = be32toh (f);
      if (c->cflags & ~(uint32_t) (NBD_FLAG_C_FIXED_NEWSTYLE |
                                   NBD_FLAG_C_NO_ZEROES)) {
        log_debug (DBG_PROTO, "conn %" PRIu64 ": unknown client flags 0x%"
                   PRIx32, c->id, c->cflags);
        return -EPROTO;
      }
      c->state = CONN_HS_OPTIONS;
      continue;
    }

    /* CONN_HS_OPTIONS.  A client that sends options without reading
     * the replies must not make us queue without bound (OPT_LIST
     * answers one reply per volume): stop parsing until the queue
     * drains; conn_service() calls us again when it has.
     */
    if (c->sendq_bytes >= CONN_MAX_HS_QUEUE)
      return 0;
    if (avail < sizeof h)
      return 0;
    memcpy (&h, c->rbuf + c->rstart, sizeof h);
    if (be64toh (h.magic) != NBD_IHAVEOPT) {
      log_debug (DBG_PROTO, "conn %" PRIu64 ": bad option magic", c->id);
      return -EPROTO;
    }
    option = be32toh (h.option);
    len = be32toh (h.length);
    if (len > PROTO_MAX_OPTION) {
      if (option == NBD_OPT_EXPORT_NAME)
        return -EPROTO;         /* no error reply exists for it */
      c->rstart += sizeof h;
      c->discard = len;
      r = reply_error (c, option, NBD_REP_ERR_TOO_BIG,
                       "option data of %" PRIu32 " bytes is too long "
                       "(limit %d)", len, PROTO_MAX_OPTION);
      if (r < 0)
        return r;
      continue;
    }
    if (avail < sizeof h + len)
      return 0;                 /* rbuf always has room for it */
    c->rstart += sizeof h + len;
    if (++c->noptions > PROTO_MAX_OPTIONS) {
      log_error_ratelimited ("conn %" PRIu64 ": more than %d options in "
                             "the handshake; closing", c->id,
                             PROTO_MAX_OPTIONS);
      return -EPROTO;
    }
    r = handle_option (c, option, c->rbuf + c->rstart - len, len);
    if (r < 0)
      return r;
  }
}
