/* server/protocol-transmission.c: NBD requests, from header to reply.
 *
 * A request header is checked (proto_check_request, pure, unit
 * tested), becomes a struct req, and is executed as a small pipeline
 * of ring operations:
 *
 *   READ          map_range ─▶ READ per data run ─▶ reply
 *                 (holes are never read: zeroes, or OFFSET_HOLE chunks)
 *   WRITE         write_prepare ─▶ WRITE per run ─▶ [sync if FUA] ─▶ reply
 *                   BM_RUN_COW: READ old chunk, merge, WRITE new chunk,
 *                   blockmap_cow_commit
 *   TRIM,         blockmap_unmap (whole chunks) ─▶ zero the partial
 *   WRITE_ZEROES  edges (write_prepare, then FALLOCATE ZERO_RANGE, or a
 *                 CoW merge with zeroes) ─▶ [sync if FUA] ─▶ reply
 *     +NO_HOLE    write_prepare the whole range ─▶ ZERO_RANGE per run
 *   FLUSH         sync thread (group commit) ─▶ reply
 *   BLOCK_STATUS  map_range ─▶ descriptors ─▶ reply
 *   CACHE         reply (a hint; nothing is cached yet)
 *
 * Ranges are resolved in batches of at most REQ_SEGS runs; the next
 * batch is resolved only when the previous one's I/O has finished, so
 * a request never holds a pending CoW chunk while it waits.  If
 * write_prepare answers -EAGAIN (another request is copying one of the
 * chunks) the request is parked on its loop and retried after the next
 * CoW commit there, or on the next 1 ms tick (loop_park).
 *
 * Every request's data I/O lies between blockmap_io_begin and
 * blockmap_io_end, so a chunk freed meanwhile is never reused under it
 * (blockmap.h durability model; DESIGN invariant 2).  FUA and FLUSH
 * go through the sync thread, whose group commit starts after the
 * request was queued, so a FLUSH covers every write completed before
 * it on any connection (invariant 1, CAN_MULTI_CONN).
 *
 * Errors: each failure is an -errno until proto_errno_to_nbd, the one
 * place it becomes an NBD error.  With structured replies an error is
 * an NBD_REPLY_TYPE_ERROR chunk carrying a sentence.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "internal.h"

#define container_of(ptr, type, member) \
  ((type *) ((char *) (ptr) - offsetof (type, member)))

#define ZERO_BUF_SIZE (1024 * 1024)
static const char zero_buf[ZERO_BUF_SIZE] __attribute__ ((aligned (4096)));
#define DIRECT_ALIGN 4096       /* O_DIRECT: buffer, offset and length */
/* Small writes go through the page cache: on ext4 a 4 KiB O_DIRECT
 * write waits for the disk, a buffered one only for a page copy.
 * Large ones go direct (1 MiB sequential: 1.6 GB/s against 0.3 through
 * the page cache, which stalls in writeback).  The commit grows the
 * data file with fallocate, which cannot cut off a direct write past
 * its end (blockmap/pool.c tier_extend; test-blockmap-extend).
 */
#define DIRECT_WRITE_MIN ((size_t) 64 * 1024)
#define REQ_FREE_MAX 256

static void req_step (struct req *req);

/* How many times a write parks for space that a commit would free
 * (about a millisecond each) before it is answered ENOSPC.
 */
#define REQ_SPACE_WAITS 2000
static void req_io_finished (struct req *req);
static void reply_error (struct req *req, int err, const char *msg);

/* ---- Pure functions ------------------------------------------------- */

uint32_t
proto_errno_to_nbd (int err, uint16_t flags)
{
  switch (err) {
  case 0:                 return NBD_SUCCESS;
  case EPERM: case EROFS: return NBD_EPERM;
  case ENOMEM:            return NBD_ENOMEM;
  case ENOSPC: case EDQUOT: case EFBIG: return NBD_ENOSPC;
  case ESHUTDOWN:         return NBD_ESHUTDOWN;
  case EINVAL:            return NBD_EINVAL;
  case ENOTSUP:
    return flags & NBD_CMD_FLAG_FAST_ZERO ? NBD_ENOTSUP : NBD_EINVAL;
  case EOVERFLOW:
    return flags & NBD_CMD_FLAG_DF ? NBD_EOVERFLOW : NBD_EINVAL;
  default:                return NBD_EIO;  /* disk trouble and the like */
  }
}

static const char *
cmd_name (uint16_t type)
{
  switch (type) {
  case NBD_CMD_READ:         return "NBD_CMD_READ";
  case NBD_CMD_WRITE:        return "NBD_CMD_WRITE";
  case NBD_CMD_DISC:         return "NBD_CMD_DISC";
  case NBD_CMD_FLUSH:        return "NBD_CMD_FLUSH";
  case NBD_CMD_TRIM:         return "NBD_CMD_TRIM";
  case NBD_CMD_CACHE:        return "NBD_CMD_CACHE";
  case NBD_CMD_WRITE_ZEROES: return "NBD_CMD_WRITE_ZEROES";
  case NBD_CMD_BLOCK_STATUS: return "NBD_CMD_BLOCK_STATUS";
  default:                   return "unknown command";
  }
}

enum proto_verdict
proto_check_request (const struct nbd_request *r,
                     const struct proto_export_state *e,
                     int *err, const char **msg)
{
  uint16_t allowed = NBD_CMD_FLAG_FUA;
  bool writes = false;

  if (r->magic != NBD_REQUEST_MAGIC) {
    *err = -EPROTO;
    *msg = "bad request magic";
    return PROTO_DISCONNECT;
  }
  switch (r->type) {
  case NBD_CMD_READ:
    if (e->eflags & NBD_FLAG_SEND_DF)
      allowed |= NBD_CMD_FLAG_DF;
    break;
  case NBD_CMD_WRITE:
    writes = true;
    if (r->length > PROTO_MAX_REQUEST) {
      /* Its payload is too big to skip safely: hang up. */
      *err = -EOVERFLOW;
      *msg = "write larger than the maximum request size";
      return PROTO_DISCONNECT;
    }
    break;
  case NBD_CMD_DISC:
    return PROTO_OK;            /* no reply either way */
  case NBD_CMD_FLUSH:
  case NBD_CMD_CACHE:
    break;
  case NBD_CMD_TRIM:
    writes = true;
    break;
  case NBD_CMD_WRITE_ZEROES:
    writes = true;
    allowed |= NBD_CMD_FLAG_NO_HOLE;
    if (e->eflags & NBD_FLAG_SEND_FAST_ZERO)
      allowed |= NBD_CMD_FLAG_FAST_ZERO;
    break;
  case NBD_CMD_BLOCK_STATUS:
    allowed |= NBD_CMD_FLAG_REQ_ONE;
    break;
  default:
    *err = -EINVAL;
    *msg = "unknown command";
    return PROTO_ERROR;
  }
  if (r->flags & ~allowed) {
    *err = -EINVAL;
    *msg = "unsupported flags for this command";
    return PROTO_ERROR;
  }
  if (writes && (e->eflags & NBD_FLAG_READ_ONLY)) {
    *err = -EPERM;
    *msg = "the export is read-only";
    return PROTO_ERROR;
  }
  switch (r->type) {
  case NBD_CMD_READ:
    if (r->length > PROTO_MAX_REQUEST) {
      *err = -EOVERFLOW;
      *msg = "read larger than the maximum request size";
      return PROTO_ERROR;
    }
    break;
  case NBD_CMD_FLUSH:
    if (r->offset != 0 || r->length != 0) {
      *err = -EINVAL;
      *msg = "flush offset and length must be zero";
      return PROTO_ERROR;
    }
    return PROTO_OK;
  case NBD_CMD_BLOCK_STATUS:
    if (!e->meta_allocation && !e->meta_changed) {
      *err = -EINVAL;
      *msg = "no metadata context was negotiated";
      return PROTO_ERROR;
    }
    if (r->length == 0) {
      *err = -EINVAL;
      *msg = "block status of zero bytes";
      return PROTO_ERROR;
    }
    break;
  }
  if (r->offset > e->size || r->length > e->size - r->offset) {
    if (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES) {
      *err = -ENOSPC;
      *msg = "write beyond the end of the volume";
    }
    else {
      *err = -EINVAL;
      *msg = "request beyond the end of the volume";
    }
    return PROTO_ERROR;
  }
  return PROTO_OK;
}

bool
write_gate_open (const struct write_gate *g, uint64_t now_ns)
{
  return g->closed_until == 0 || now_ns >= g->closed_until;
}

bool
write_gate_record (struct write_gate *g, uint64_t start_ns, uint64_t took_ns)
{
  if (took_ns < WRITE_GATE_SLOW_NS) {
    g->closed_until = g->backoff_ns = 0;
    return false;
  }
  if (g->stalled_ns == 0
      || start_ns >= g->window_start + WRITE_GATE_WINDOW_NS) {
    g->window_start = start_ns;
    g->stalled_ns = 0;
  }
  g->stalled_ns += took_ns;
  if (g->stalled_ns < WRITE_GATE_STALL_NS)
    return false;
  g->stalled_ns = 0;
  if (g->backoff_ns < WRITE_GATE_BACKOFF_MIN_NS)
    g->backoff_ns = WRITE_GATE_BACKOFF_MIN_NS;
  g->closed_until = start_ns + took_ns + g->backoff_ns;
  if (g->backoff_ns < WRITE_GATE_BACKOFF_MAX_NS)
    g->backoff_ns *= 2;
  return true;
}

/* ---- Requests ------------------------------------------------------- */

static void
req_out_done (struct out *out)
{
  req_free (container_of (out, struct req, out));
}

static struct req *
req_new (struct conn *c, const struct nbd_request *h, uint64_t raw_cookie)
{
  struct loop *loop = c->loop;
  struct req *req = loop->free_reqs;

  if (req) {
    loop->free_reqs = req->next;
    loop->nfree_reqs--;
  }
  else {
    req = malloc (sizeof *req);
    if (req == NULL)
      return NULL;
  }
  /* Everything up to the segs; segs are set up as they are used. */
  memset (req, 0, offsetof (struct req, segs));
  req->conn = c;
  req->out.done = req_out_done;
  req->flags = h->flags;
  req->type = h->type;
  req->cookie = raw_cookie;
  req->offset = h->offset;
  req->length = h->length;
  req->pieces = req->pieces_inl;
  req->piececap = sizeof req->pieces_inl / sizeof req->pieces_inl[0];
  req->iov = req->iov_inl;
  req->hdr = req->hdr_inl;
  c->nreqs++;
  return req;
}

void
req_free (struct req *req)
{
  struct conn *c = req->conn;
  struct loop *loop = c->loop;

  assert (req->pending == 0);
  if (!req->prefetch)
    qos_complete (req);         /* metrics: latency, bytes, errors */
  if (req->io_active)
    blockmap_io_end (server.pool, req->token);
  if (req->writing)
    blockmap_write_end (c->vol);
  if (req->buf) {
    bufpool_put (&loop->bufs, req->buf, req->bufcap);
    conn_account_bytes (c, -(ssize_t) req->bufcap);
  }
  if (req->pieces != req->pieces_inl)
    free (req->pieces);
  if (req->iov != req->iov_inl)
    free (req->iov);
  if (req->hdr != req->hdr_inl)
    free (req->hdr);
  c->nreqs--;
  conn_mark_dirty (c);
  if (loop->nfree_reqs < REQ_FREE_MAX) {
    req->next = loop->free_reqs;
    loop->free_reqs = req;
    loop->nfree_reqs++;
  }
  else
    free (req);
}

static int
req_alloc_buf (struct req *req, size_t size)
{
  req->buf = bufpool_get (&req->conn->loop->bufs, size ? size : 1,
                          &req->bufcap);
  if (req->buf == NULL)
    return -ENOMEM;
  conn_account_bytes (req->conn, req->bufcap);
  return 0;
}

/* Make sure REQ has room for NIOV iovecs and HDRLEN header bytes. */
static int
req_reserve (struct req *req, size_t niov, size_t hdrlen)
{
  if (niov > sizeof req->iov_inl / sizeof req->iov_inl[0]) {
    req->iov = malloc (niov * sizeof *req->iov);
    if (req->iov == NULL) {
      req->iov = req->iov_inl;
      return -ENOMEM;
    }
  }
  if (hdrlen > sizeof req->hdr_inl) {
    req->hdr = malloc (hdrlen);
    if (req->hdr == NULL) {
      req->hdr = req->hdr_inl;
      return -ENOMEM;
    }
  }
  return 0;
}

/* ---- Replies -------------------------------------------------------- */

static void
send_reply (struct req *req, unsigned niov)
{
  req->out.iov = req->iov;
  req->out.niov = niov;
  conn_queue (req->conn, &req->out);
}

static void
put_chunk_header (char *p, struct req *req, uint16_t flags, uint16_t type,
                  uint32_t len)
{
  struct nbd_structured_reply h = {
    .magic = htobe32 (NBD_STRUCTURED_REPLY_MAGIC),
    .flags = htobe16 (flags),
    .type = htobe16 (type),
    .cookie = req->cookie,
    .length = htobe32 (len),
  };

  memcpy (p, &h, sizeof h);
}

static void
reply_simple (struct req *req, uint32_t nbd_err, bool with_data)
{
  struct nbd_simple_reply h = {
    .magic = htobe32 (NBD_SIMPLE_REPLY_MAGIC),
    .error = htobe32 (nbd_err),
    .cookie = req->cookie,
  };
  unsigned niov = 1;

  memcpy (req->hdr, &h, sizeof h);
  req->iov[0].iov_base = req->hdr;
  req->iov[0].iov_len = sizeof h;
  if (with_data && req->length) {
    req->iov[1].iov_base = req->buf;
    req->iov[1].iov_len = req->length;
    niov = 2;
  }
  send_reply (req, niov);
}

/* ERR is -errno. */
static void
reply_error (struct req *req, int err, const char *msg)
{
  uint32_t nbd_err = proto_errno_to_nbd (-err, req->flags);
  struct nbd_chunk_error ce;
  size_t msglen;

  if (nbd_err == NBD_SUCCESS)
    nbd_err = NBD_EIO;
  if (msg == NULL)
    msg = strerror (-err);
  log_debug (DBG_PROTO, "conn %" PRIu64 ": %s at %" PRIu64 "+%" PRIu32
             ": %s (%s)", req->conn->id, cmd_name (req->type), req->offset,
             req->length, msg, strerror (-err));
  if (!req->conn->structured) {
    reply_simple (req, nbd_err, false);
    return;
  }
  msglen = strlen (msg);
  if (msglen > sizeof req->hdr_inl - sizeof (struct nbd_structured_reply)
      - sizeof ce)
    msglen = sizeof req->hdr_inl - sizeof (struct nbd_structured_reply)
      - sizeof ce;
  /* The header buffer may have grown for a READ reply; either fits. */
  put_chunk_header (req->hdr, req, NBD_REPLY_FLAG_DONE,
                    NBD_REPLY_TYPE_ERROR, sizeof ce + msglen);
  ce.error = htobe32 (nbd_err);
  ce.msglen = htobe16 (msglen);
  memcpy (req->hdr + sizeof (struct nbd_structured_reply), &ce, sizeof ce);
  memcpy (req->hdr + sizeof (struct nbd_structured_reply) + sizeof ce,
          msg, msglen);
  req->iov[0].iov_base = req->hdr;
  req->iov[0].iov_len = sizeof (struct nbd_structured_reply) + sizeof ce
    + msglen;
  send_reply (req, 1);
}

static void
reply_ok (struct req *req)
{
  reply_simple (req, NBD_SUCCESS, false);
}

/* A successful READ: simple, or structured with one chunk per piece
 * (holes as OFFSET_HOLE), or one OFFSET_DATA chunk with DF.
 */
static void
reply_read (struct req *req)
{
  const size_t hsz = sizeof (struct nbd_structured_reply);
  struct piece whole = { .offset = req->offset, .length = req->length };
  const struct piece *pieces = req->pieces;
  unsigned n = req->npieces, i, niov = 0;
  size_t hlen = 0;

  if (!req->conn->structured) {
    reply_simple (req, NBD_SUCCESS, true);
    return;
  }
  if (req->length == 0) {
    put_chunk_header (req->hdr, req, NBD_REPLY_FLAG_DONE,
                      NBD_REPLY_TYPE_NONE, 0);
    req->iov[0].iov_base = req->hdr;
    req->iov[0].iov_len = hsz;
    send_reply (req, 1);
    return;
  }
  if (req->flags & NBD_CMD_FLAG_DF) {
    pieces = &whole;
    n = 1;
  }
  if (req_reserve (req, 2 * (size_t) n, (hsz + 12) * (size_t) n) < 0) {
    reply_error (req, -ENOMEM, "out of memory building the reply");
    return;
  }
  for (i = 0; i < n; i++) {
    const struct piece *p = &pieces[i];
    uint16_t flags = i == n - 1 ? NBD_REPLY_FLAG_DONE : 0;
    char *h = req->hdr + hlen;
    uint64_t off = htobe64 (p->offset);
    size_t len;

    if (p->hole) {
      uint32_t hl = htobe32 (p->length);

      put_chunk_header (h, req, flags, NBD_REPLY_TYPE_OFFSET_HOLE, 12);
      memcpy (h + hsz, &off, 8);
      memcpy (h + hsz + 8, &hl, 4);
      len = hsz + 12;
    }
    else {
      put_chunk_header (h, req, flags, NBD_REPLY_TYPE_OFFSET_DATA,
                        8 + p->length);
      memcpy (h + hsz, &off, 8);
      len = hsz + 8;
    }
    hlen += len;
    /* Headers that follow each other in hdr share one iovec. */
    if (niov > 0 && (char *) req->iov[niov - 1].iov_base
        + req->iov[niov - 1].iov_len == h)
      req->iov[niov - 1].iov_len += len;
    else {
      req->iov[niov].iov_base = h;
      req->iov[niov].iov_len = len;
      niov++;
    }
    if (!p->hole) {
      req->iov[niov].iov_base = req->buf + (p->offset - req->offset);
      req->iov[niov].iov_len = p->length;
      niov++;
    }
  }
  send_reply (req, niov);
}

/* ---- Sync (FLUSH, FUA) ---------------------------------------------- */

static void
sync_done (struct loop_msg *msg)
{
  struct req *req = container_of (msg, struct req, sync.msg);

  if (req->sync.result < 0)
    reply_error (req, req->sync.result, "flush to stable storage failed");
  else
    reply_ok (req);
}

static void
start_sync (struct req *req)
{
  req->sync.msg.fn = sync_done;
  req->sync.loop = req->conn->loop;
  req->sync.result = 0;
  if (server.sync == NULL) {    /* unit tests */
    req->sync.result = blockmap_pool_sync (server.pool);
    sync_done (&req->sync.msg);
    return;
  }
  sync_post (server.sync, &req->sync);
}

/* ---- Data I/O ------------------------------------------------------- */

static void seg_cb (struct uop *op, int res, uint32_t flags);

/* The fd for LEN bytes at BUF and file offset OFF of SEG: the loop's
 * O_DIRECT fd of the hot data file for reads and large writes when all
 * three are aligned, else the pool's (buffered) one.  Either way the
 * bytes land in the same file and a FLUSH's fdatasync covers them; the
 * kernel keeps the page cache coherent with direct I/O (a direct read
 * writes back dirty pages in its range first, a direct write drops
 * them).  A direct op that fails with EINVAL is retried buffered.
 */
static int
seg_fd (struct seg *seg, const void *buf, size_t len, uint64_t off,
        bool write)
{
  int dfd = seg->req->conn->loop->direct_fd;

  seg->direct = dfd >= 0 && !seg->no_direct &&
    seg->run.tier == BM_TIER_HOT && (!write || len >= DIRECT_WRITE_MIN) &&
    ((uintptr_t) buf | len | off) % DIRECT_ALIGN == 0;
  return seg->direct ? dfd : seg->fd;
}

/* Small buffered writes run on the loop thread.
 *
 * ext4 has no non-blocking buffered writes (pwritev2 RWF_NOWAIT says
 * EOPNOTSUPP), so io_uring hands every one to an io-wq worker, and all
 * writes to one file queue behind a single worker: a wake-up and a
 * hand-back per batch, for what is a page copy.  The loop does the
 * copy itself instead, as io_uring does inline on file systems that
 * can (XFS): 4k random writes at depth 32 went from 69.8k to 90.5k
 * IOPS, server CPU from 10.8 to 8.5 us per request.  Only whole pages
 * (a partial page may have to be read from disk first) and only small
 * writes; large ones go O_DIRECT (seg_fd).  A buffered write can still
 * block (dirty-page throttling, a journal commit): once slow writes
 * have held the loop for 10 ms within 100 ms, the loop's write gate
 * closes, and writes go through the ring until it opens again
 * (write_gate_record), so stalls cost a loop a few milliseconds now and
 * then, never one per write.  A lone stall of a millisecond or two
 * does not close it: when it did, it closed 16 times in 12 runs of 4k
 * random writes at depth 32 (2 s each, one and two connections), each
 * time sending a second of writes through the ring; one of the six
 * one-connection runs fell to 42.7k IOPS, the others made 76.7-87.6k.
 * With the window the six made 74.0-95.1k.
 */
static bool
write_inline (struct loop *loop, size_t len, uint64_t off)
{
  return len < DIRECT_WRITE_MIN && (len | off) % DIRECT_ALIGN == 0 &&
    loop->nlocal < LOOP_LOCAL_MAX &&
    write_gate_open (&loop->wgate, qos_now_ns ());
}

/* Run the write SQE describes now, on this thread, and deliver its
 * result to SEG like a completion.
 */
static void
run_inline (struct seg *seg, const struct io_uring_sqe *sqe)
{
  struct loop *loop = seg->req->conn->loop;
  uint64_t t0 = qos_now_ns (), took;
  ssize_t r;

  r = pwrite (sqe->fd, (const void *) (uintptr_t) sqe->addr, sqe->len,
              sqe->off);
  took = qos_now_ns () - t0;
  if (write_gate_record (&loop->wgate, t0, took))
    log_debug (DBG_PROTO, "loop %u: a %u-byte write took %" PRIu64 " us; "
               "writes go through the ring for a while", loop->index,
               sqe->len, took / 1000);
  if (!loop_complete_local (loop, &seg->op, r < 0 ? -errno : (int) r))
    abort ();                   /* write_inline checked for room */
}

static void
seg_submit (struct seg *seg)
{
  struct loop *loop = seg->req->conn->loop;
  struct io_uring_sqe local, *sqe = NULL;
  uint64_t off = seg->file_off + seg->done;
  size_t n = seg->len - seg->done;
  const char *buf = seg->buf ? seg->buf + seg->done : NULL;
  int fd;

  switch (seg->phase) {
  case SEG_READ:
  case SEG_COW_READ:
    sqe = loop_sqe (loop, &seg->op);
    io_uring_prep_read (sqe, seg_fd (seg, buf, n, off, false), (char *) buf,
                        n, off);
    break;
  case SEG_WRITE:
  case SEG_COW_WRITE:
    if (seg->zero_src) {
      if (n > ZERO_BUF_SIZE)
        n = ZERO_BUF_SIZE;
      buf = zero_buf;
    }
    fd = seg_fd (seg, buf, n, off, true);
    if (!seg->direct && write_inline (loop, n, off)) {
      memset (&local, 0, sizeof local);
      io_uring_prep_write (&local, fd, buf, n, off);
      fault_seg_submit (seg, &local);   /* --debug-fault-file */
      run_inline (seg, &local);
      return;
    }
    sqe = loop_sqe (loop, &seg->op);
    io_uring_prep_write (sqe, fd, buf, n, off);
    break;
  case SEG_ZERO:
    seg->direct = false;
    sqe = loop_sqe (loop, &seg->op);
    io_uring_prep_fallocate (sqe, seg->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                             seg->file_off, seg->len);
    break;
  }
  fault_seg_submit (seg, sqe);  /* --debug-fault-file */
}

static void
seg_release (struct seg *seg)
{
  if (seg->cowbuf) {
    bufpool_put (&seg->req->conn->loop->bufs, seg->cowbuf, seg->cowcap);
    seg->cowbuf = NULL;
  }
}

static void
seg_finished (struct seg *seg, int err)
{
  struct req *req = seg->req;
  struct blockmap_volume *vol = req->conn->vol;
  int r;

  if (seg->run.flags & BM_RUN_COW) {
    if (err == 0) {
      r = blockmap_cow_commit (vol, &seg->run);
      if (r < 0)
        err = r;
      req->conn->loop->cow_committed = true;
    }
    else
      blockmap_cow_abort (vol, &seg->run);
  }
  seg_release (seg);
  if (err < 0 && req->error == 0) {
    req->error = err;
    req->errmsg = req->type == NBD_CMD_READ ? "read from the pool failed"
      : "write to the pool failed";
    log_error_ratelimited ("volume %s: %s at %" PRIu64 "+%" PRIu64 ": %s",
                           blockmap_volume_name (vol), cmd_name (req->type),
                           seg->run.offset, seg->run.length,
                           strerror (-err));
  }
  req->pending--;
  if (req->pending == 0)
    req_step (req);
}

static void
seg_cb (struct uop *op, int res, uint32_t flags)
{
  struct seg *seg = container_of (op, struct seg, op);
  uint64_t in_chunk;

  (void) flags;
  res = fault_seg_complete (seg, res);  /* --debug-fault-file */
  if (res == -EINVAL && seg->direct) {
    /* The file system wants another alignment: the page cache. */
    seg->no_direct = true;
    seg_submit (seg);
    return;
  }
  if (res < 0 && res != -EINTR && res != -EAGAIN) {
    if (seg->phase == SEG_ZERO && (res == -EOPNOTSUPP || res == -EINVAL)
        && (seg->req->flags & NBD_CMD_FLAG_FAST_ZERO)) {
      /* FAST_ZERO: the client would rather zero itself than have us
       * write zeroes slowly; proto_errno_to_nbd sends NBD_ENOTSUP.
       */
      seg_finished (seg, -ENOTSUP);
      return;
    }
    if (seg->phase == SEG_ZERO && (res == -EOPNOTSUPP || res == -EINVAL)) {
      /* No ZERO_RANGE on this file system: write zeroes instead. */
      seg->phase = seg->run.flags & BM_RUN_COW ? SEG_COW_WRITE : SEG_WRITE;
      seg->zero_src = true;
      seg->done = 0;
      seg_submit (seg);
      return;
    }
    seg_finished (seg, res);
    return;
  }
  if (res == -EINTR || res == -EAGAIN) {
    seg_submit (seg);
    return;
  }
  switch (seg->phase) {
  case SEG_ZERO:
    seg_finished (seg, 0);
    return;
  case SEG_READ:
  case SEG_COW_READ:
    if (res == 0) {             /* past the end of the data file */
      memset (seg->buf + seg->done, 0, seg->len - seg->done);
      seg->done = seg->len;
    }
    break;
  case SEG_WRITE:
  case SEG_COW_WRITE:
    if (res == 0) {             /* no progress: do not spin */
      seg_finished (seg, -EIO);
      return;
    }
    break;
  }
  seg->done += res;
  if (seg->done < seg->len) {
    seg_submit (seg);           /* short read or write: the rest */
    return;
  }
  if (seg->phase != SEG_COW_READ) {
    seg_finished (seg, 0);
    return;
  }
  /* Merge the new bytes into the old chunk, then write it whole to
   * the new chunk.
   */
  in_chunk = seg->run.offset % server.chunk_size;
  if (seg->src)
    memcpy (seg->cowbuf + in_chunk, seg->src, seg->run.length);
  else
    memset (seg->cowbuf + in_chunk, 0, seg->run.length);
  seg->phase = SEG_COW_WRITE;
  seg->file_off = seg->run.pool_offset;
  seg->done = 0;
  seg_submit (seg);
}

/* Start the I/O for one run of REQ's current batch. */
static int
start_run (struct req *req, const struct blockmap_run *run)
{
  struct seg *seg;
  char *data = NULL;
  bool zeroing = req->type != NBD_CMD_READ && req->type != NBD_CMD_WRITE;

  if (req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE)
    data = req->buf + (run->offset - req->offset);

  if (req->type == NBD_CMD_READ) {
    const bool pieces = req->conn->structured &&
      !(req->flags & NBD_CMD_FLAG_DF);
    const bool hole = run->tier == BM_TIER_NONE;

    if (hole && !pieces)
      memset (data, 0, run->length);
    if (pieces) {
      struct piece *last = req->npieces ? &req->pieces[req->npieces - 1]
        : NULL;

      if (last && last->hole == hole &&
          last->offset + last->length == run->offset)
        last->length += run->length;
      else {
        if (req->npieces == req->piececap) {
          unsigned cap = req->piececap * 4;
          struct piece *p = malloc (cap * sizeof *p);

          if (p == NULL)
            return -ENOMEM;
          memcpy (p, req->pieces, req->npieces * sizeof *p);
          if (req->pieces != req->pieces_inl)
            free (req->pieces);
          req->pieces = p;
          req->piececap = cap;
        }
        req->pieces[req->npieces++] = (struct piece) {
          .offset = run->offset, .length = run->length, .hole = hole,
        };
      }
    }
    if (hole)
      return 0;
  }

  seg = &req->segs[req->pending];
  memset (seg, 0, sizeof *seg);
  seg->op.cb = seg_cb;
  seg->req = req;
  seg->run = *run;
  seg->fd = blockmap_pool_data_fd (server.pool, run->tier);
  if (seg->fd < 0) {
    if (run->flags & BM_RUN_COW)
      blockmap_cow_abort (req->conn->vol, run);
    return -EIO;                /* a tier this pool does not have */
  }

  if (run->flags & BM_RUN_COW) {
    bool whole = run->offset % server.chunk_size == 0 &&
      run->length == server.chunk_size;

    if (whole) {
      /* Nothing of the old chunk survives: write the new one. */
      seg->file_off = run->pool_offset;
      seg->len = run->length;
      if (zeroing)
        seg->phase = SEG_ZERO;
      else {
        seg->phase = SEG_COW_WRITE;
        seg->buf = data;
      }
    }
    else {
      seg->cowbuf = bufpool_get (&req->conn->loop->bufs, server.chunk_size,
                                 &seg->cowcap);
      if (seg->cowbuf == NULL) {
        blockmap_cow_abort (req->conn->vol, run);
        return -ENOMEM;
      }
      seg->phase = SEG_COW_READ;
      seg->buf = seg->cowbuf;
      seg->src = zeroing ? NULL : data;
      seg->file_off = run->cow_src_offset;
      seg->len = server.chunk_size;
    }
  }
  else {
    seg->file_off = run->pool_offset;
    seg->len = run->length;
    seg->buf = data;
    if (req->type == NBD_CMD_READ)
      seg->phase = SEG_READ;
    else if (req->type == NBD_CMD_WRITE)
      seg->phase = SEG_WRITE;
    else
      seg->phase = SEG_ZERO;
  }
  req->pending++;
  seg_submit (seg);
  return 0;
}

/* Resolve and start the next batch of REQ's ranges; when everything
 * is done, finish the request.  Called with nothing of REQ's in the
 * ring.
 */
static void
req_step (struct req *req)
{
  struct blockmap_volume *vol = req->conn->vol;
  struct blockmap_run runs[REQ_SEGS];
  int n, i, r;

  assert (req->pending == 0);
  while (req->error == 0) {
    if (req->conn->state == CONN_CLOSING && req->type != NBD_CMD_WRITE)
      break;                    /* nobody will read the answer */
    if (req->pos >= req->end) {
      if (++req->cur_range >= req->nranges)
        break;
      req->pos = req->ranges[req->cur_range][0];
      req->end = req->ranges[req->cur_range][1];
      continue;
    }
    if (req->type == NBD_CMD_READ)
      n = blockmap_map_range (vol, req->pos, req->end - req->pos,
                              runs, REQ_SEGS);
    else {
      if (req->skip_holes) {
        /* An edge of a trim (within one chunk): leave a hole alone. */
        n = blockmap_map_range (vol, req->pos, req->end - req->pos,
                                runs, 1);
        if (n == 1 && runs[0].tier == BM_TIER_NONE &&
            runs[0].offset + runs[0].length >= req->end) {
          req->pos = req->end;
          continue;
        }
      }
      n = blockmap_write_prepare (vol, req->pos, req->end - req->pos,
                                  runs, REQ_SEGS);
      if (n == -EAGAIN) {
        log_debug (DBG_PROTO, "conn %" PRIu64 ": %s at %" PRIu64
                   ": chunk being copied, parked", req->conn->id,
                   cmd_name (req->type), req->pos);
        loop_park (req->conn->loop, req);
        return;
      }
      if (n == -EINPROGRESS && req->space_waits < REQ_SPACE_WAITS) {
        /* Full of chunks freed but not yet reusable: have the sync
         * thread commit, then retry.  Bounded, because this request's
         * own grace-period token may be what still holds them.
         */
        req->space_waits++;
        if (server.sync)
          sync_kick (server.sync);
        loop_park (req->conn->loop, req);
        return;
      }
      if (n == -EINPROGRESS)
        n = -ENOSPC;
    }
    if (n < 0) {
      req->error = n;
      req->errmsg = n == -ENOSPC ? "the pool is full" : NULL;
      break;
    }
    for (i = 0; i < n; i++) {
      r = start_run (req, &runs[i]);
      if (r < 0) {
        req->error = r;
        /* Abort the CoW runs of this batch that never started. */
        for (i++; i < n; i++)
          if (runs[i].flags & BM_RUN_COW)
            blockmap_cow_abort (vol, &runs[i]);
        break;
      }
    }
    req->pos = runs[n - 1].offset + runs[n - 1].length;
    if (req->pending > 0)
      return;                   /* seg_finished calls us again */
  }
  req_io_finished (req);
}

static void proto_start (struct req *req);

void
proto_retry_parked (struct req *req)
{
  if (req->wait_write) {        /* not started: a snapshot was being taken */
    req->wait_write = false;
    if (req->conn->state == CONN_CLOSING) {
      req->error = -ESHUTDOWN;
      req_io_finished (req);
    }
    else
      proto_start (req);
    return;
  }
  if (req->conn->state == CONN_CLOSING && req->type != NBD_CMD_WRITE) {
    req_io_finished (req);
    return;
  }
  req_step (req);
}

static void
req_io_finished (struct req *req)
{
  if (req->io_active) {
    blockmap_io_end (server.pool, req->token);
    req->io_active = false;
  }
  if (req->writing) {
    blockmap_write_end (req->conn->vol);
    req->writing = false;
  }
  if (req->prefetch)
    ra_prefetch_done (req);     /* no client to answer yet */
  else if (req->error)
    reply_error (req, req->error, req->errmsg);
  else if (req->type == NBD_CMD_READ)
    reply_read (req);
  else if (req->flags & NBD_CMD_FLAG_FUA)
    start_sync (req);
  else
    reply_ok (req);
}

/* ---- Commands ------------------------------------------------------- */

static void
start_ranges (struct req *req)
{
  req->cur_range = 0;
  if (req->nranges == 0) {
    req->pos = req->end = 0;
  }
  else {
    req->pos = req->ranges[0][0];
    req->end = req->ranges[0][1];
  }
  req_step (req);
}

static void
add_range (struct req *req, uint64_t start, uint64_t end)
{
  if (start < end) {
    req->ranges[req->nranges][0] = start;
    req->ranges[req->nranges][1] = end;
    req->nranges++;
  }
}

/* TRIM, and WRITE_ZEROES without NO_HOLE: unmap the whole chunks,
 * zero the partial ones at either end.
 */
static void
do_trim (struct req *req)
{
  const uint64_t cs = server.chunk_size;
  uint64_t start = req->offset, end = req->offset + req->length;
  uint64_t head_end, tail_start;
  int r;

  r = blockmap_unmap (req->conn->vol, start, req->length);
  if (r < 0) {
    req->error = r;
    req_io_finished (req);
    return;
  }
  head_end = start % cs ? (end < (start / cs + 1) * cs ? end
                           : (start / cs + 1) * cs) : start;
  tail_start = end % cs ? (end / cs * cs > head_end ? end / cs * cs
                           : head_end) : end;
  add_range (req, start, head_end);
  add_range (req, tail_start, end);
  req->skip_holes = true;
  start_ranges (req);
}

/* Make REQ's buffer hold at least NEED bytes (contents kept). */
static int
grow_buf (struct req *req, size_t need)
{
  size_t newcap;
  char *nb;

  if (need <= req->bufcap)
    return 0;
  nb = bufpool_get (&req->conn->loop->bufs, need > req->bufcap * 2 ? need
                    : req->bufcap * 2, &newcap);
  if (nb == NULL)
    return -ENOMEM;
  memcpy (nb, req->buf, req->bufcap);
  bufpool_put (&req->conn->loop->bufs, req->buf, req->bufcap);
  conn_account_bytes (req->conn, newcap - req->bufcap);
  req->buf = nb;
  req->bufcap = newcap;
  return 0;
}

/* Append at *AT of REQ's buffer one BLOCK_STATUS chunk for context ID
 * over the request's range: allocation, or (CHANGED) changed since the
 * base snapshot.  DONE: the reply's last chunk.  Returns 0 or -errno.
 */
static int
put_status_chunk (struct req *req, size_t *at, uint32_t id, bool changed,
                  bool done)
{
  const size_t hsz = sizeof (struct nbd_structured_reply);
  const size_t dsz = sizeof (struct nbd_block_descriptor);
  uint64_t pos = req->offset, end = req->offset + req->length;
  unsigned nd = 0, maxd = PROTO_MAX_DESCRIPTORS;
  struct nbd_block_descriptor d;
  uint32_t ctx = htobe32 (id), last = 0;
  int n, i;

  if (req->flags & NBD_CMD_FLAG_REQ_ONE)
    maxd = 1;
  if (grow_buf (req, *at + hsz + 4 + 64 * dsz) < 0)
    return -ENOMEM;
  while (pos < end) {
    struct blockmap_run runs[REQ_SEGS];
    struct blockmap_diff_run druns[REQ_SEGS];
    uint32_t st[REQ_SEGS];
    uint64_t len[REQ_SEGS];

    if (changed) {
      n = blockmap_diff (req->conn->changed_base, req->conn->vol, pos,
                         end - pos, druns, REQ_SEGS);
      for (i = 0; i < n; i++) {
        st[i] = druns[i].changed ? PROTO_STATE_CHANGED : 0;
        len[i] = druns[i].length;
      }
    }
    else {
      n = blockmap_map_range (req->conn->vol, pos, end - pos, runs,
                              REQ_SEGS);
      for (i = 0; i < n; i++) {
        st[i] = runs[i].tier == BM_TIER_NONE
          ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
        len[i] = runs[i].length;
      }
    }
    if (n < 0)
      return n;
    for (i = 0; i < n; i++) {
      char *dp = req->buf + *at + hsz + 4;

      pos += len[i];
      if (nd > 0 && last == st[i]) {
        memcpy (&d, dp + (nd - 1) * dsz, dsz);
        d.length = htobe32 (be32toh (d.length) + (uint32_t) len[i]);
        memcpy (dp + (nd - 1) * dsz, &d, dsz);
        continue;
      }
      if (nd == maxd)
        goto done;
      if (grow_buf (req, *at + hsz + 4 + (nd + 1) * dsz) < 0)
        return -ENOMEM;
      dp = req->buf + *at + hsz + 4;
      d.length = htobe32 ((uint32_t) len[i]);
      d.flags = htobe32 (st[i]);
      memcpy (dp + nd * dsz, &d, dsz);
      last = st[i];
      nd++;
    }
  }
 done:
  put_chunk_header (req->buf + *at, req, done ? NBD_REPLY_FLAG_DONE : 0,
                    NBD_REPLY_TYPE_BLOCK_STATUS, 4 + nd * dsz);
  memcpy (req->buf + *at + hsz, &ctx, 4);
  *at += hsz + 4 + nd * dsz;
  return 0;
}

/* One chunk per negotiated context: base:allocation, strata:changed. */
static void
do_block_status (struct req *req)
{
  struct conn *c = req->conn;
  size_t at = 0;
  int r = 0;

  if (req_alloc_buf (req, 4096) < 0)
    r = -ENOMEM;
  if (r == 0 && c->meta_allocation)
    r = put_status_chunk (req, &at, PROTO_META_ALLOCATION_ID, false,
                          c->changed_base == NULL);
  if (r == 0 && c->changed_base)
    r = put_status_chunk (req, &at, PROTO_META_CHANGED_ID, true, true);
  if (r < 0) {
    req->error = r;
    req_io_finished (req);
    return;
  }
  if (req->io_active) {
    blockmap_io_end (server.pool, req->token);
    req->io_active = false;
  }
  req->iov[0].iov_base = req->buf;
  req->iov[0].iov_len = at;
  send_reply (req, 1);
}

void
proto_execute (struct req *req)
{
  if (req->qos.vol == NULL && qos_admit (req))
    return;                     /* waits for its budget; qos.c calls again */
  log_debug (DBG_PROTO, "conn %" PRIu64 ": %s %" PRIu64 "+%" PRIu32
             " flags 0x%x", req->conn->id, cmd_name (req->type),
             req->offset, req->length, req->flags);
  proto_start (req);
}

void
proto_read_start (struct req *req)
{
  req->token = blockmap_io_begin (server.pool);
  req->io_active = true;
  add_range (req, req->offset, req->offset + req->length);
  start_ranges (req);
}

/* ---- Read-ahead (readahead.c decides when) --------------------------- */

struct req *
proto_prefetch_new (struct conn *c, uint64_t off, uint32_t len)
{
  const struct nbd_request h = {
    .magic = NBD_REQUEST_MAGIC, .type = NBD_CMD_READ,
    .offset = off, .length = len,
  };
  struct req *req = req_new (c, &h, 0);

  if (req == NULL)
    return NULL;
  req->prefetch = true;
  if (req_alloc_buf (req, len) < 0) {
    req_free (req);
    return NULL;
  }
  return req;
}

void
proto_prefetch_start (struct req *req)
{
  /* Before the map walk: a write that ends after this point voids
   * what is read (blockmap_volume_stamp).
   */
  req->ra_stamp = blockmap_volume_stamp (req->conn->vol);
  proto_read_start (req);
}

void
proto_reply_from (struct req *req, struct req *prefetch)
{
  char *buf = req->buf;
  size_t cap = req->bufcap;

  /* Same length, so the same buffer size: a swap, not a copy. */
  req->buf = prefetch->buf;
  req->bufcap = prefetch->bufcap;
  prefetch->buf = buf;
  prefetch->bufcap = cap;
  if (prefetch->pieces != prefetch->pieces_inl) {
    if (req->pieces != req->pieces_inl)
      free (req->pieces);
    req->pieces = prefetch->pieces;
    req->piececap = prefetch->piececap;
    prefetch->pieces = prefetch->pieces_inl;
  }
  else
    memcpy (req->pieces, prefetch->pieces,
            prefetch->npieces * sizeof *req->pieces);
  req->npieces = prefetch->npieces;
  req_free (prefetch);
  reply_read (req);
}

/* Past admission: begin the request's I/O. */
static void
proto_start (struct req *req)
{
  const bool io = req->type != NBD_CMD_FLUSH && req->type != NBD_CMD_CACHE;

  if (req->type == NBD_CMD_WRITE || req->type == NBD_CMD_TRIM ||
      req->type == NBD_CMD_WRITE_ZEROES) {
    /* A snapshot of the volume being taken holds new writes off. */
    int r = blockmap_write_begin (req->conn->vol);
    if (r == -EAGAIN) {
      req->wait_write = true;
      loop_park (req->conn->loop, req);
      return;
    }
    if (r < 0) {
      req->error = r;
      req->errmsg = r == -EROFS ? "a snapshot is read-only" : NULL;
      req_io_finished (req);
      return;
    }
    req->writing = true;
  }
  if (req->type == NBD_CMD_READ) {
    if (!ra_read_start (req))
      proto_read_start (req);
    return;
  }
  if (io) {
    req->token = blockmap_io_begin (server.pool);
    req->io_active = true;
  }
  switch (req->type) {
  case NBD_CMD_WRITE:
    add_range (req, req->offset, req->offset + req->length);
    start_ranges (req);
    return;
  case NBD_CMD_FLUSH:
    start_sync (req);
    return;
  case NBD_CMD_TRIM:
    do_trim (req);
    return;
  case NBD_CMD_WRITE_ZEROES:
    if (req->flags & NBD_CMD_FLAG_NO_HOLE) {
      add_range (req, req->offset, req->offset + req->length);
      start_ranges (req);
    }
    else
      do_trim (req);
    return;
  case NBD_CMD_CACHE:
    reply_ok (req);
    return;
  case NBD_CMD_BLOCK_STATUS:
    do_block_status (req);
    return;
  default:
    req->error = -EINVAL;
    req_io_finished (req);
  }
}

/* ---- Parsing -------------------------------------------------------- */

int
proto_transmission (struct conn *c)
{
  struct nbd_request h;
  struct proto_export_state es;
  enum proto_verdict v;
  const char *msg = NULL;
  struct req *req;
  uint64_t raw_cookie;
  size_t avail, n;
  int err = 0;

  for (;;) {
    avail = c->rend - c->rstart;
    if (c->discard) {
      n = avail < c->discard ? avail : c->discard;
      c->rstart += n;
      c->discard -= n;
      if (c->discard)
        return 0;
      continue;
    }
    if (c->disc || c->state != CONN_TRANSMISSION || c->payload_req)
      return 0;
    if (!conn_may_take_request (c))
      return 0;                 /* resumes when buffers are freed */
    if (avail < sizeof h)
      return 0;
    memcpy (&h, c->rbuf + c->rstart, sizeof h);
    h.magic = be32toh (h.magic);
    h.flags = be16toh (h.flags);
    h.type = be16toh (h.type);
    raw_cookie = h.cookie;
    h.offset = be64toh (h.offset);
    h.length = be32toh (h.length);

    es.size = blockmap_volume_size (c->vol);
    es.eflags = c->eflags;
    es.structured = c->structured;
    es.meta_allocation = c->meta_allocation;
    es.meta_changed = c->changed_base != NULL;
    v = proto_check_request (&h, &es, &err, &msg);
    if (v == PROTO_DISCONNECT) {
      log_error_ratelimited ("conn %" PRIu64 ": %s, closing the "
                             "connection", c->id, msg);
      return -EPROTO;
    }
    if (v == PROTO_OK && h.type == NBD_CMD_WRITE &&
        sizeof h + h.length <= CONN_RBUF_MSG_MAX &&
        avail < sizeof h + h.length)
      return 0;                 /* wait for the whole payload in rbuf */
    c->rstart += sizeof h;
    avail -= sizeof h;

    if (v == PROTO_OK && h.type == NBD_CMD_DISC) {
      log_debug (DBG_PROTO, "conn %" PRIu64 ": NBD_CMD_DISC", c->id);
      c->disc = true;
      return 0;
    }
    req = req_new (c, &h, raw_cookie);
    if (req == NULL)
      return -ENOMEM;
    if (v == PROTO_ERROR) {
      if (h.type == NBD_CMD_WRITE)
        c->discard = h.length;  /* <= PROTO_MAX_REQUEST, checked */
      reply_error (req, err, msg);
      continue;
    }
    if (h.type == NBD_CMD_READ || h.type == NBD_CMD_WRITE) {
      if (req_alloc_buf (req, h.length) < 0) {
        if (h.type == NBD_CMD_WRITE)
          c->discard = h.length;
        reply_error (req, -ENOMEM, "out of memory");
        continue;
      }
    }
    if (h.type == NBD_CMD_WRITE) {
      n = avail < h.length ? avail : h.length;
      memcpy (req->buf, c->rbuf + c->rstart, n);
      c->rstart += n;
      req->got = n;
      if (req->got < h.length) {
        c->payload_req = req;   /* conn.c receives the rest */
        return 0;
      }
    }
    proto_execute (req);
  }
}
