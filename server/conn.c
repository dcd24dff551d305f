/* server/conn.c: one client connection, from accept to close.
 *
 * A connection belongs to the loop that accepted it.  Its state:
 *
 *   CONN_HS_FLAGS ─▶ CONN_HS_OPTIONS ─▶ CONN_TRANSMISSION ─▶ CONN_CLOSING ─▶ freed
 *         └──────────────┴─── bad input, EOF, NBD_OPT_ABORT ──┘
 *
 * Input: at most one receive is in the ring at a time, into rbuf
 * (CONN_RBUF_SIZE); the protocol parsers consume as many complete
 * messages as rbuf holds, so a burst of small requests costs one
 * recv.  A WRITE whose payload does not fit in rbuf is received
 * straight into its request's buffer (payload_req) instead.
 *
 * Output: replies queue in completion order; one sendmsg is in the
 * ring at a time and carries every queued reply that fits in
 * CONN_SEND_IOV iovecs.  Short sends resume from head_sent.
 *
 * A slow or hostile client only stalls itself: the loop never waits
 * on a socket, and a connection stops reading (so TCP pushes back)
 * once it holds CONN_MAX_REQS requests or CONN_MAX_BYTES of request
 * buffers, or, in the handshake, CONN_MAX_HS_QUEUE bytes of replies
 * the client does not read.
 *
 * Freeing: a connection is freed only by conn_service (after a loop
 * pass), once it is CLOSING and has no receive, send, cancel or
 * request left in the ring, so no completion ever finds it gone, and
 * is not queued on the loop's dirty list.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "internal.h"

#define container_of(ptr, type, member) \
  ((type *) ((char *) (ptr) - offsetof (type, member)))

static void recv_cb (struct uop *op, int res, uint32_t flags);
static void send_cb (struct uop *op, int res, uint32_t flags);
static void sent (struct conn *c, size_t n);

static void
cancel_cb (struct uop *op, int res, uint32_t flags)
{
  struct conn *c = container_of (op, struct conn, cancel_op);

  (void) res; (void) flags;
  c->cancels--;
  conn_mark_dirty (c);
}

uint64_t
conn_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

static bool
fd_is_socket (int fd)
{
  struct stat st;

  return fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode);
}

int
conn_new (struct loop *loop, int rfd, int wfd)
{
  static _Atomic uint64_t next_id = 1;
  struct conn *c;
  int r;

  c = calloc (1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  c->rbuf = malloc (CONN_RBUF_SIZE);
  if (c->rbuf == NULL) {
    free (c);
    return -ENOMEM;
  }
  c->loop = loop;
  c->id = next_id++;
  c->started = conn_now ();
  c->rfd = rfd;
  c->wfd = wfd;
  c->is_socket = fd_is_socket (rfd) && fd_is_socket (wfd);
  c->state = CONN_HS_FLAGS;
  c->recv_op.cb = recv_cb;
  c->send_op.cb = send_cb;
  c->cancel_op.cb = cancel_cb;

  c->next = loop->conns;
  if (loop->conns)
    loop->conns->prev = c;
  loop->conns = c;
  loop->nconns++;
  log_debug (DBG_LOOP, "conn %" PRIu64 ": new on loop %u (fd %d)",
             c->id, loop->index, rfd);

  r = proto_greet (c);
  if (r < 0) {
    /* Not queued anything in the ring yet: unlink and free here. */
    loop->conns = c->next;
    if (c->next)
      c->next->prev = NULL;
    loop->nconns--;
    free (c->rbuf);
    free (c);
    return r;
  }
  conn_mark_dirty (c);
  return 0;
}

bool
conn_may_take_request (struct conn *c)
{
  if (c->nreqs >= CONN_MAX_REQS || c->req_bytes >= CONN_MAX_BYTES)
    return false;
  if (c->nreqs > 0 && c->loop->max_req_bytes > 0
      && c->loop->req_bytes >= c->loop->max_req_bytes) {
    c->loop->bytes_paused = true;
    return false;
  }
  return true;
}

void
conn_account_bytes (struct conn *c, ssize_t delta)
{
  struct loop *loop = c->loop;

  c->req_bytes += delta;
  loop->req_bytes += delta;
  if (delta < 0 && loop->bytes_paused
      && loop->req_bytes < loop->max_req_bytes) {
    /* Under budget again: every conn may have been waiting for it. */
    loop->bytes_paused = false;
    for (struct conn *o = loop->conns; o; o = o->next)
      conn_mark_dirty (o);
  }
}

void
conn_mark_dirty (struct conn *c)
{
  if (c->dirty)
    return;
  c->dirty = true;
  c->dirty_next = c->loop->dirty;
  c->loop->dirty = c;
}

static size_t
out_len (const struct out *out)
{
  size_t len = 0;
  unsigned i;

  for (i = 0; i < out->niov; i++)
    len += out->iov[i].iov_len;
  return len;
}

void
conn_queue (struct conn *c, struct out *out)
{
  if (c->state == CONN_CLOSING) {
    out->done (out);            /* nobody to send it to */
    return;
  }
  out->next = NULL;
  if (c->sendq_tail)
    c->sendq_tail->next = out;
  else
    c->sendq = out;
  c->sendq_tail = out;
  c->sendq_bytes += out_len (out);
  conn_mark_dirty (c);
}

/* A copied message, for the handshake. */
struct copy_out {
  struct out out;
  struct iovec iov;
  char data[];
};

static void
copy_out_done (struct out *out)
{
  free (container_of (out, struct copy_out, out));
}

int
conn_queue_copy (struct conn *c, const void *hdr, size_t hdrlen,
                 const void *data, size_t datalen)
{
  struct copy_out *co;

  co = malloc (sizeof *co + hdrlen + datalen);
  if (co == NULL)
    return -ENOMEM;
  memcpy (co->data, hdr, hdrlen);
  if (datalen)
    memcpy (co->data + hdrlen, data, datalen);
  co->iov.iov_base = co->data;
  co->iov.iov_len = hdrlen + datalen;
  co->out.iov = &co->iov;
  co->out.niov = 1;
  co->out.done = copy_out_done;
  conn_queue (c, &co->out);
  return 0;
}

static void
drop_queue (struct conn *c)
{
  struct out *out;

  while ((out = c->sendq) != NULL) {
    c->sendq = out->next;
    out->done (out);
  }
  c->sendq_tail = NULL;
  c->sendq_bytes = 0;
  c->head_sent = 0;
}

static void
post_cancel (struct conn *c, struct uop *target)
{
  io_uring_prep_cancel (loop_sqe (c->loop, &c->cancel_op), target, 0);
  c->cancels++;
}

void
conn_close (struct conn *c)
{
  if (c->state == CONN_CLOSING)
    return;
  log_debug (DBG_LOOP, "conn %" PRIu64 ": closing", c->id);
  c->state = CONN_CLOSING;
  ra_drop (c);                  /* no READ will claim them now */
  /* Make the receive and send in the ring finish now. */
  if (c->is_socket)
    shutdown (c->rfd, SHUT_RDWR);
  else {
    if (c->recv_posted)
      post_cancel (c, &c->recv_op);
    if (c->send_posted)
      post_cancel (c, &c->send_op);
  }
  if (!c->send_posted)
    drop_queue (c);
  if (c->payload_req && !c->recv_posted) {
    struct req *req = c->payload_req;

    c->payload_req = NULL;
    req_free (req);
  }
  conn_mark_dirty (c);
}

static void
conn_free (struct conn *c)
{
  struct loop *loop = c->loop;

  log_debug (DBG_LOOP, "conn %" PRIu64 ": freed", c->id);
  if (c->prev)
    c->prev->next = c->next;
  else
    loop->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  loop->nconns--;
  close (c->rfd);
  if (c->wfd != c->rfd)
    close (c->wfd);
  if (c->vol)
    blockmap_volume_release (c->vol);
  free (c->export_name);
  free (c->meta_export);
  free (c->meta_changed);
  blockmap_volume_release (c->changed_base);
  free (c->rbuf);
  free (c);
}

/* ---- Receiving ------------------------------------------------------ */

static void
recv_cb (struct uop *op, int res, uint32_t flags)
{
  struct conn *c = container_of (op, struct conn, recv_op);
  struct req *req = c->payload_req;

  (void) flags;
  c->recv_posted = false;
  conn_mark_dirty (c);
  if (c->state == CONN_CLOSING) {
    if (req) {
      c->payload_req = NULL;
      req_free (req);
    }
    return;
  }
  if (res > 0) {
    if (req) {
      req->got += res;
      if (req->got == req->length) {
        c->payload_req = NULL;
        proto_execute (req);
      }
    }
    else
      c->rend += res;
    return;
  }
  if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS)
    return;                     /* conn_service posts again */
  if (res == 0 || res == -ECANCELED)
    log_debug (DBG_LOOP, "conn %" PRIu64 ": end of input", c->id);
  else {
    errno = -res;
    log_debug (DBG_LOOP, "conn %" PRIu64 ": recv: %m", c->id);
  }
  c->eof = true;
  if (req) {
    /* The payload will never arrive: nothing to answer. */
    c->payload_req = NULL;
    req_free (req);
  }
}

static void
post_recv (struct conn *c)
{
  struct io_uring_sqe *sqe;
  struct req *req = c->payload_req;
  char *buf;
  size_t len;

  if (req) {
    buf = req->buf + req->got;
    len = req->length - req->got;
  }
  else {
    /* Keep room for the largest message parsed from rbuf. */
    if (c->rstart == c->rend)
      c->rstart = c->rend = 0;
    else if (c->rstart > 0 &&
             (CONN_RBUF_SIZE - c->rstart < CONN_RBUF_MSG_MAX ||
              c->rend - c->rstart <= 4096)) {
      memmove (c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
      c->rend -= c->rstart;
      c->rstart = 0;
    }
    buf = c->rbuf + c->rend;
    len = CONN_RBUF_SIZE - c->rend;
    if (len == 0)
      return;                   /* parser is blocked on a full buffer */
  }
  sqe = loop_sqe (c->loop, &c->recv_op);
  if (c->is_socket)
    io_uring_prep_recv (sqe, c->rfd, buf, len, 0);
  else
    io_uring_prep_read (sqe, c->rfd, buf, len, (uint64_t) -1);
  c->recv_posted = true;
}

/* ---- Sending -------------------------------------------------------- */

static void
post_send (struct conn *c)
{
  struct io_uring_sqe *sqe;
  size_t skip = c->head_sent;
  unsigned n = 0, i;
  struct out *out;

  for (out = c->sendq; out && n < CONN_SEND_IOV; out = out->next)
    for (i = 0; i < out->niov && n < CONN_SEND_IOV; i++) {
      if (skip >= out->iov[i].iov_len) {
        skip -= out->iov[i].iov_len;
        continue;
      }
      c->siov[n].iov_base = (char *) out->iov[i].iov_base + skip;
      c->siov[n].iov_len = out->iov[i].iov_len - skip;
      skip = 0;
      n++;
    }
  if (n == 0) {                 /* only empty messages: complete them */
    sent (c, 0);
    return;
  }
  sqe = loop_sqe (c->loop, &c->send_op);
  if (c->is_socket) {
    memset (&c->smsg, 0, sizeof c->smsg);
    c->smsg.msg_iov = c->siov;
    c->smsg.msg_iovlen = n;
    io_uring_prep_sendmsg (sqe, c->wfd, &c->smsg, MSG_NOSIGNAL);
  }
  else
    io_uring_prep_writev (sqe, c->wfd, c->siov, n, (uint64_t) -1);
  c->send_posted = true;
}

/* N more bytes of the queue have left: complete the messages that
 * are now entirely sent.
 */
static void
sent (struct conn *c, size_t n)
{
  size_t done = c->head_sent + n, len;
  struct out *out;

  c->sendq_bytes -= n;
  while ((out = c->sendq) != NULL) {
    len = out_len (out);
    if (done < len)
      break;
    done -= len;
    c->sendq = out->next;
    if (c->sendq == NULL)
      c->sendq_tail = NULL;
    out->done (out);
  }
  c->head_sent = done;
}

static void
send_cb (struct uop *op, int res, uint32_t flags)
{
  struct conn *c = container_of (op, struct conn, send_op);

  (void) flags;
  c->send_posted = false;
  conn_mark_dirty (c);
  if (c->state == CONN_CLOSING) {
    drop_queue (c);
    return;
  }
  if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS)
    return;                     /* conn_service posts again */
  if (res <= 0) {
    if (res == 0)
      res = -EPIPE;             /* no progress: do not spin */
    errno = -res;
    log_debug (DBG_LOOP, "conn %" PRIu64 ": send: %m", c->id);
    conn_close (c);
    return;
  }
  sent (c, res);
}

/* ---- After each loop pass ------------------------------------------- */

/* Whether C should read more input now.  Not const: asking the loop's
 * buffer budget notes that C waits for it (conn_may_take_request).
 */
static bool
want_input (struct conn *c)
{
  if (c->state == CONN_CLOSING || c->eof || c->recv_posted)
    return false;
  if (c->payload_req)
    return true;                /* even when stopping: finish the WRITE */
  if (c->disc)
    return false;
  if (c->state == CONN_TRANSMISSION)
    return conn_may_take_request (c);
  return c->sendq_bytes < CONN_MAX_HS_QUEUE;
}

void
conn_service (struct conn *c)
{
  int r = 0;

  if (c->state == CONN_CLOSING) {
    /* Nothing is left to send: conn_close dropped the queue, or
     * send_cb did when the send in the ring ended, and conn_queue
     * drops what comes after.  So nothing here frees a request and
     * marks C dirty again: the loop took it off the dirty list before
     * this call, and it is on no list the loop will walk.
     */
    assert (c->sendq == NULL || c->send_posted);
    assert (!c->dirty);
    if (!c->recv_posted && !c->send_posted && c->nreqs == 0 &&
        c->cancels == 0)
      conn_free (c);
    return;
  }

  if (c->state == CONN_HS_FLAGS || c->state == CONN_HS_OPTIONS)
    r = proto_handshake (c);
  if (r == 0 && c->state == CONN_TRANSMISSION && !c->payload_req)
    r = proto_transmission (c);
  if (r < 0) {
    conn_close (c);
    return;
  }

  if (!c->send_posted && c->sendq)
    post_send (c);
  if (want_input (c))
    post_recv (c);

  /* Finished: after NBD_CMD_DISC, NBD_OPT_ABORT, shutdown or EOF,
   * once every request is answered.  Read-aheads count as requests,
   * and no READ will come for them now (nor will new ones start).
   */
  if (c->disc || c->eof)
    ra_drop (c);
  if ((c->disc || c->eof) && c->nreqs == 0 && !c->payload_req &&
      c->sendq == NULL && !c->send_posted)
    conn_close (c);
}
