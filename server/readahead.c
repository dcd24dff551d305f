/* server/readahead.c: reading ahead of a client that reads sequentially.
 *
 * A client streaming a volume (a backup, a copy, a VM image read with
 * qemu-img) keeps only a few READs in flight: eight 1 MiB READs from
 * fio or qemu.  Each spends part of its life being sent and being
 * handed to the next request, and the disk idles meanwhile: 1 MiB
 * reads at depth 8 spent about 1 ms at the disk and 1.3 ms being sent
 * and consumed.  So once a connection has sent RA_TRIGGER READs of one
 * length, each starting where the last ended, the loop reads on past
 * them, up to RA_MAX_SLOTS READs or RA_MAX_BYTES ahead, and a client
 * READ that matches one exactly takes its buffer (no copy), at once or
 * when that read finishes.  Anything else (another length, a jump, DF)
 * reads as usual and restarts the stream.
 *
 * A read-ahead is an ordinary READ request that no client sent
 * (protocol-transmission.c: proto_prefetch_new): same map walk, same
 * grace-period token, same hole and error handling.  It counts against
 * the connection's request and buffer limits, not against the volume's
 * QoS budget: the client's READ that claims it pays, as if it had read.
 * None starts on a connection that is finishing (closing, or past
 * NBD_CMD_DISC or EOF).
 *
 * Never stale.  blockmap_volume_stamp moves whenever a write request
 * ends, a map changes, and on resize and delete.  A read-ahead records
 * the stamp before it walks the map and is served only while the
 * stamp is unchanged.  So any write answered after the read-ahead
 * began, on any connection, voids it (its end moved the stamp before
 * its reply went out).  A write still in flight has not been answered:
 * a READ now is concurrent with it and may see either contents, torn
 * or not, which is all the read-ahead can hold.  A voided read-ahead
 * is dropped with the rest of the stream's, and the READ reads for
 * itself.
 *
 * Ownership: read-aheads sit in conn->ra.slot until claimed or dropped.
 * A claimed one that is still reading belongs to its waiter; a dropped
 * one that is still reading is an orphan and frees itself when its
 * I/O ends (ra_prefetch_done).  Every one counts in conn->nreqs, so a
 * connection lives until they are gone; conn.c drops the slots when
 * the connection is finishing.
 */
#include <limits.h>
#include <string.h>

#include "common/log.h"
#include "internal.h"

/* ---- The stream (pure) ---------------------------------------------- */

bool
ra_stream_note (struct ra_stream *s, uint64_t off, uint32_t len)
{
  bool cont = len >= RA_MIN_LEN && len == s->len && off == s->next;

  if (cont) {
    if (s->streak < UINT_MAX)
      s->streak++;
  }
  else {
    s->streak = 1;
    s->len = len;
    s->frontier = 0;
  }
  s->next = off + len;
  if (s->frontier < s->next)
    s->frontier = s->next;
  return cont;
}

unsigned
ra_stream_want (const struct ra_stream *s, uint64_t size)
{
  unsigned max, n = 0;
  uint64_t f = s->frontier;

  if (s->streak < RA_TRIGGER || s->len < RA_MIN_LEN)
    return 0;
  max = RA_MAX_BYTES / s->len;
  if (max > RA_MAX_SLOTS)
    max = RA_MAX_SLOTS;
  while (s->nslots + n < max && f <= size && s->len <= size - f) {
    f += s->len;
    n++;
  }
  return n;
}

/* ---- Read-aheads ---------------------------------------------------- */

static void
forget (struct req *p)
{
  if (p->ra_done)
    req_free (p);
  else
    p->ra_orphan = true;        /* frees itself when its I/O ends */
}

void
ra_drop (struct conn *c)
{
  struct ra_stream *s = &c->ra;

  for (unsigned i = 0; i < s->nslots; i++)
    forget (s->slot[i]);
  s->nslots = 0;
}

static void
take_slot (struct ra_stream *s, unsigned i)
{
  memmove (&s->slot[i], &s->slot[i + 1],
           (s->nslots - i - 1) * sizeof s->slot[0]);
  s->nslots--;
}

/* Start the read-aheads the stream wants, while C may take requests. */
static void
read_ahead (struct conn *c)
{
  struct ra_stream *s = &c->ra;
  unsigned n = ra_stream_want (s, blockmap_volume_size (c->vol));
  struct req *p;

  if (c->state == CONN_CLOSING || c->disc || c->eof)
    return;                     /* no READ will come for them */
  while (n-- > 0 && conn_may_take_request (c)) {
    p = proto_prefetch_new (c, s->frontier, s->len);
    if (p == NULL)
      return;
    /* In its slot before it starts: a read of holes finishes at once. */
    s->slot[s->nslots++] = p;
    s->frontier += s->len;
    proto_prefetch_start (p);
  }
}

bool
ra_read_start (struct req *req)
{
  struct conn *c = req->conn;
  struct ra_stream *s = &c->ra;
  struct req *p = NULL;
  unsigned i;

  for (i = 0; i < s->nslots; i++)
    if (s->slot[i]->offset == req->offset) {
      p = s->slot[i];
      take_slot (s, i);
      break;
    }
  if (p && (p->length != req->length || req->flags != 0 ||
            blockmap_volume_stamp (c->vol) != p->ra_stamp)) {
    /* Not this READ's data (DF wants holes filled), or no longer
     * current: neither are the others, which are older.
     */
    log_debug (DBG_PROTO, "conn %" PRIu64 ": read-ahead at %" PRIu64
               " not used (%s)", c->id, req->offset,
               p->ra_stamp != blockmap_volume_stamp (c->vol)
               ? "the volume changed" : "another kind of READ");
    forget (p);
    p = NULL;
    ra_drop (c);
    s->frontier = 0;            /* read ahead again from this READ on */
  }
  if (!ra_stream_note (s, req->offset, req->length))
    ra_drop (c);
  read_ahead (c);
  if (p == NULL)
    return false;
  qos_readahead_hit (req);
  if (p->ra_done)
    proto_reply_from (req, p);
  else
    p->ra_waiter = req;
  return true;
}

void
ra_prefetch_done (struct req *p)
{
  struct ra_stream *s = &p->conn->ra;
  struct req *w = p->ra_waiter;

  p->ra_done = true;
  if (p->ra_orphan) {
    req_free (p);
    return;
  }
  if (w) {
    p->ra_waiter = NULL;
    if (p->error == 0) {
      proto_reply_from (w, p);
      return;
    }
    /* The READ tries for itself, and gets the error if it stays. */
    req_free (p);
    proto_read_start (w);
    return;
  }
  if (p->error) {
    for (unsigned i = 0; i < s->nslots; i++)
      if (s->slot[i] == p) {
        take_slot (s, i);
        break;
      }
    req_free (p);
  }
  /* Else it waits in its slot for its READ. */
}
