/* server/loop.c: one io_uring event loop per thread.
 *
 * Each loop thread owns one ring and everything reached from it: its
 * connections, their requests and buffers.  Nothing on a loop blocks:
 * socket receive/send, data-file I/O, timers and the wake-up eventfd
 * all go through the ring, and one io_uring_submit_and_wait() per
 * pass both submits everything queued and waits for completions.
 *
 *     listeners ──accept──▶ conn ──recv──▶ rbuf ──parse──▶ req
 *                              ▲                            │ READ/WRITE
 *                              └──sendmsg (batched)◀──reply─┘ at run.pool_offset
 *
 *     sync thread ──loop_post()+eventfd──▶ loop  (FLUSH/FUA done)
 *
 * Every loop posts an accept on every listening socket; the kernel
 * hands each new connection to one of them, which then serves it for
 * its whole life.  Work that a completion makes possible (parse more
 * input, send the replies that became ready) is not done inside the
 * completion but after the whole batch of CQEs (the "dirty" list), so
 * replies finished in one pass leave in one sendmsg.
 *
 * Ownership of ring operations: every SQE's user_data is a struct uop
 * embedded in its owner; loop->pending counts them, and a loop exits
 * only once it reaches zero, so no buffer the kernel may still write
 * is ever freed.  An op the loop runs itself (a small buffered write,
 * protocol-transmission.c) reports through loop_complete_local: its
 * callback runs at the start of the next pass, exactly as a CQE's
 * would, and the loop does not sleep while any is queued.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define container_of(ptr, type, member) \
  ((type *) ((char *) (ptr) - offsetof (type, member)))

/* The daemon's shared state (defined here so that unit tests, which
 * link server_core without main.c, have it too).
 */
struct server server;

#define LOOP_SQ_ENTRIES 256
#define LOOP_CQ_ENTRIES 16384           /* bursts of file I/O CQEs */
#define LOOP_STOP_WAIT_SEC 10           /* drain bound at shutdown */

static void efd_post_read (struct loop *loop);

/* The hot data file opened again with O_DIRECT, for the aligned data
 * I/O of this loop (protocol-transmission.c, seg_fd): the page cache
 * only costs there, since a FLUSH syncs the data file either way.
 * -1 when there is no pool, the file system refuses O_DIRECT, or
 * STRATAD_DATA_IO=buffered asks for the page cache (benchmarks).
 */
static int
open_direct (void)
{
  const char *mode = getenv ("STRATAD_DATA_IO");
  char path[64];
  int fd;

  if (server.pool == NULL || (mode && strcmp (mode, "buffered") == 0))
    return -1;
  fd = blockmap_pool_data_fd (server.pool, BM_TIER_HOT);
  if (fd < 0)
    return -1;
  snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
  fd = open (path, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd == -1)
    log_debug (DBG_LOOP, "data file: no O_DIRECT (%m), buffered I/O only");
  return fd;
}

struct io_uring_sqe *
loop_sqe (struct loop *loop, struct uop *op)
{
  struct io_uring_sqe *sqe;
  int r, tries = 0;

  while ((sqe = io_uring_get_sqe (&loop->ring)) == NULL) {
    r = io_uring_submit (&loop->ring);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      errno = -r;
      log_error ("loop %u: io_uring_submit: %m", loop->index);
      abort ();                 /* a broken ring cannot be recovered */
    }
    if (r < 0 && ++tries > 1000000) {
      log_error ("loop %u: submission queue stuck", loop->index);
      abort ();
    }
  }
  io_uring_sqe_set_data (sqe, op);
  loop->pending++;
  return sqe;
}

bool
loop_complete_local (struct loop *loop, struct uop *op, int res)
{
  if (loop->nlocal == LOOP_LOCAL_MAX)
    return false;
  loop->local[loop->nlocal].op = op;
  loop->local[loop->nlocal].res = res;
  loop->nlocal++;
  return true;
}

/* Run the local completions queued before this call; the callbacks
 * may queue more, which wait for the next pass.
 */
static void
run_local (struct loop *loop)
{
  struct loop_local batch[LOOP_LOCAL_MAX];
  unsigned n = loop->nlocal, i;

  memcpy (batch, loop->local, n * sizeof batch[0]);
  loop->nlocal = 0;
  for (i = 0; i < n; i++)
    batch[i].op->cb (batch[i].op, batch[i].res, 0);
}

/* ---- Accepting connections ------------------------------------------ */

static void accept_post (struct accept_op *a);

static void
accept_retry_cb (struct uop *op, int res, uint32_t flags)
{
  struct accept_op *a = container_of (op, struct accept_op, retry);

  (void) res; (void) flags;
  if (!a->loop->stopping)
    accept_post (a);
}

static void
accept_cb (struct uop *op, int res, uint32_t flags)
{
  struct accept_op *a = container_of (op, struct accept_op, op);
  struct loop *loop = a->loop;
  int one = 1, r;

  (void) flags;
  a->armed = false;
  if (res >= 0) {
    if (loop->stopping) {
      close (res);
      return;
    }
    /* Fails harmlessly (ENOTSUP / EOPNOTSUPP) on Unix sockets. */
    setsockopt (res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    r = conn_new (loop, res, res);
    if (r < 0) {
      errno = -r;
      log_error_ratelimited ("loop %u: new connection: %m", loop->index);
      close (res);
    }
    accept_post (a);
    return;
  }
  if (loop->stopping || res == -ECANCELED)
    return;
  switch (-res) {
  case EINTR: case EAGAIN: case ECONNABORTED: case EPROTO: case EPERM:
    accept_post (a);
    return;
  default:                      /* EMFILE, ENFILE, ENOBUFS, ENOMEM ... */
    errno = -res;
    log_error_ratelimited ("loop %u: accept on fd %d: %m (retrying)",
                           loop->index, a->fd);
    a->ts.tv_sec = 0;
    a->ts.tv_nsec = 100 * 1000 * 1000;
    io_uring_prep_timeout (loop_sqe (loop, &a->retry), &a->ts, 0, 0);
  }
}

static void
accept_post (struct accept_op *a)
{
  io_uring_prep_accept (loop_sqe (a->loop, &a->op), a->fd, NULL, NULL,
                        SOCK_CLOEXEC);
  a->armed = true;
}

/* ---- Cross-thread messages ------------------------------------------ */

void
loop_post (struct loop *loop, struct loop_msg *msg)
{
  uint64_t one = 1;
  bool was_empty;

  {
    LOCK_FOR_SCOPE (&loop->msg_lock);
    was_empty = loop->msgs == NULL;
    msg->next = loop->msgs;
    loop->msgs = msg;
  }
  /* A wake-up is only needed when the list was empty: otherwise one
   * is already on its way.
   */
  if (was_empty && write (loop->efd, &one, sizeof one) != sizeof one)
    log_error ("loop %u: eventfd write: %m", loop->index);
}

static void
run_msgs (struct loop *loop)
{
  struct loop_msg *list, *rev = NULL, *next;

  {
    LOCK_FOR_SCOPE (&loop->msg_lock);
    list = loop->msgs;
    loop->msgs = NULL;
  }
  while (list) {                /* posted LIFO; run in order */
    next = list->next;
    list->next = rev;
    rev = list;
    list = next;
  }
  while (rev) {
    next = rev->next;
    rev->fn (rev);
    rev = next;
  }
}

static void
efd_cb (struct uop *op, int res, uint32_t flags)
{
  struct loop *loop = container_of (op, struct loop, efd_op);

  (void) flags;
  if (res < 0 && res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
    errno = -res;
    log_error ("loop %u: eventfd read: %m", loop->index);
  }
  run_msgs (loop);
  if (res != -ECANCELED && !(loop->stopping && loop->nconns == 0))
    efd_post_read (loop);
}

static void
efd_post_read (struct loop *loop)
{
  io_uring_prep_read (loop_sqe (loop, &loop->efd_op), loop->efd,
                      &loop->efd_buf, sizeof loop->efd_buf, 0);
}

/* ---- Parked requests ------------------------------------------------ */

static void
park_cb (struct uop *op, int res, uint32_t flags)
{
  struct loop *loop = container_of (op, struct loop, park_op);

  (void) res; (void) flags;
  loop->park_armed = false;
  loop->cow_committed = true;   /* retry at the end of this pass */
}

void
loop_park (struct loop *loop, struct req *req)
{
  req->next = loop->parked;
  loop->parked = req;
  if (!loop->park_armed) {      /* also while stopping: it holds a conn */
    /* A CoW commit on this loop retries at once; one on another loop
     * (another connection to the same volume) is noticed by this tick.
     */
    loop->park_ts.tv_sec = 0;
    loop->park_ts.tv_nsec = 1000 * 1000;
    io_uring_prep_timeout (loop_sqe (loop, &loop->park_op),
                           &loop->park_ts, 0, 0);
    loop->park_armed = true;
  }
}

static void
retry_parked (struct loop *loop)
{
  struct req *list = loop->parked, *next;

  loop->parked = NULL;
  loop->cow_committed = false;
  while (list) {
    next = list->next;
    proto_retry_parked (list);
    list = next;
  }
}

/* ---- Housekeeping --------------------------------------------------- */

#define LOOP_TICK_SEC 5

static void
tick_post (struct loop *loop)
{
  loop->tick_ts.tv_sec = LOOP_TICK_SEC;
  loop->tick_ts.tv_nsec = 0;
  io_uring_prep_timeout (loop_sqe (loop, &loop->tick_op), &loop->tick_ts,
                         0, 0);
}

/* Close connections that have not finished the handshake in time: an
 * idle or trickling client must not hold a connection forever.
 */
static void
tick_cb (struct uop *op, int res, uint32_t flags)
{
  struct loop *loop = container_of (op, struct loop, tick_op);
  uint64_t now = conn_now ();
  struct conn *c, *next;

  (void) flags;
  if (res == -ECANCELED || loop->stopping)
    return;
  for (c = loop->conns; c; c = next) {
    next = c->next;
    if ((c->state == CONN_HS_FLAGS || c->state == CONN_HS_OPTIONS) &&
        now - c->started > CONN_HANDSHAKE_TIMEOUT) {
      log_debug (DBG_LOOP, "conn %" PRIu64 ": handshake not finished "
                 "after %d s, closing", c->id, CONN_HANDSHAKE_TIMEOUT);
      conn_close (c);
    }
  }
  tick_post (loop);
}

/* ---- Stopping ------------------------------------------------------- */

static void
stop_timer_cb (struct uop *op, int res, uint32_t flags)
{
  struct loop *loop = container_of (op, struct loop, stop_op);
  struct conn *c, *next;

  (void) flags;
  loop->stop_timer_armed = false;
  if (res == -ECANCELED || loop->nconns == 0)
    return;
  log_warn ("loop %u: %u connection(s) still busy after %d s, closing them",
            loop->index, loop->nconns, LOOP_STOP_WAIT_SEC);
  loop->forced = true;
  for (c = loop->conns; c; c = next) {
    next = c->next;
    conn_close (c);
  }
}

static void
stop_msg_fn (struct loop_msg *msg)
{
  struct loop *loop = container_of (msg, struct loop, stop_msg);
  struct conn *c, *next;
  size_t i;

  if (loop->stopping)
    return;
  loop->stopping = true;
  log_debug (DBG_LOOP, "loop %u: stopping, %u connection(s)",
             loop->index, loop->nconns);
  for (i = 0; i < loop->naccepts; i++)
    if (loop->accepts[i].armed)
      io_uring_prep_cancel (loop_sqe (loop, NULL), &loop->accepts[i].op, 0);
  /* Connections stop reading requests; the ones in flight finish and
   * are answered, then each connection closes (conn.c).
   */
  for (c = loop->conns; c; c = next) {
    next = c->next;
    if (c->state == CONN_TRANSMISSION) {
      c->disc = true;
      conn_mark_dirty (c);
    }
    else
      conn_close (c);
  }
  if (loop->nconns > 0) {
    loop->stop_ts.tv_sec = LOOP_STOP_WAIT_SEC;
    loop->stop_ts.tv_nsec = 0;
    io_uring_prep_timeout (loop_sqe (loop, &loop->stop_op),
                           &loop->stop_ts, 0, 0);
    loop->stop_timer_armed = true;
  }
}

void
loop_request_stop (struct loop *loop)
{
  bool expected = false;

  if (atomic_compare_exchange_strong (&loop->stop_posted, &expected, true))
    loop_post (loop, &loop->stop_msg);
}

/* ---- The loop ------------------------------------------------------- */

static void
null_cb (struct uop *op, int res, uint32_t flags)
{
  (void) op; (void) res; (void) flags;
}

static void *
loop_thread (void *arg)
{
  struct loop *loop = arg;
  struct io_uring_cqe *cqe;
  struct uop cancel_all = { .cb = null_cb };
  bool cancelled = false;
  unsigned head, n;
  size_t i;
  int r;

  if (loop->ring_disabled) {
    /* liburing 2.3 declares io_uring_enable_rings but does not
     * export it: the register call itself.
     */
    r = syscall (__NR_io_uring_register, loop->ring.ring_fd,
                 IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (r < 0) {
      log_error ("loop %u: io_uring_enable_rings: %m", loop->index);
      abort ();                 /* cannot serve without a ring */
    }
    loop->ring_disabled = false;
  }
  /* Enter the ring by its registered index rather than by fd. */
  io_uring_register_ring_fd (&loop->ring);
  efd_post_read (loop);
  tick_post (loop);
  for (i = 0; i < loop->naccepts; i++)
    accept_post (&loop->accepts[i]);

  for (;;) {
    if (loop->stopping && loop->nconns == 0) {
      /* Everything left in the ring is ours (eventfd read, timers):
       * cancel it all and wait until the kernel has let go.
       */
      if (!cancelled) {
        struct io_uring_sqe *sqe = loop_sqe (loop, &cancel_all);
        io_uring_prep_cancel64 (sqe, 0, IORING_ASYNC_CANCEL_ANY |
                                IORING_ASYNC_CANCEL_ALL);
        cancelled = true;
      }
      if (loop->pending == 0 && loop->nlocal == 0)
        break;
    }

    /* With local completions to deliver, only submit: do not wait. */
    r = io_uring_submit_and_wait (&loop->ring, loop->nlocal ? 0 : 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY &&
        r != -ETIME) {
      errno = -r;
      log_error ("loop %u: io_uring_submit_and_wait: %m", loop->index);
      abort ();
    }

    n = 0;
    io_uring_for_each_cqe (&loop->ring, head, cqe) {
      struct uop *op = io_uring_cqe_get_data (cqe);

      n++;
      loop->pending--;
      if (op != NULL)           /* NULL: cancel requests */
        op->cb (op, cqe->res, cqe->flags);
    }
    io_uring_cq_advance (&loop->ring, n);
    if (loop->nlocal)
      run_local (loop);

    if (loop->cow_committed && loop->parked)
      retry_parked (loop);
    while (loop->dirty) {
      struct conn *c = loop->dirty;

      loop->dirty = c->dirty_next;
      c->dirty = false;
      conn_service (c);         /* may free c */
    }
    if (loop->parked && !loop->park_armed) {
      struct req *list = loop->parked;
      loop->parked = NULL;
      while (list) {            /* re-park to re-arm the tick */
        struct req *next = list->next;
        loop_park (loop, list);
        list = next;
      }
    }
    if (loop->single && loop->nconns == 0 && !loop->stopping) {
      /* -s: the one client has gone; tell main to shut down. */
      loop->stopping = true;
      kill (getpid (), SIGTERM);
    }
    if (loop->stopping && loop->nconns == 0 && loop->stop_timer_armed) {
      io_uring_prep_cancel (loop_sqe (loop, NULL), &loop->stop_op, 0);
      loop->stop_timer_armed = false;
    }
  }
  log_debug (DBG_LOOP, "loop %u: finished", loop->index);
  return NULL;
}

int
loop_create (unsigned index, struct loop **out)
{
  struct io_uring_params p;
  struct loop *loop;
  size_t i;
  int r;

  loop = calloc (1, sizeof *loop);
  if (loop == NULL)
    return -ENOMEM;
  loop->index = index;
  loop->efd = -1;
  loop->direct_fd = -1;
  loop->efd_op.cb = efd_cb;
  loop->park_op.cb = park_cb;
  loop->stop_op.cb = stop_timer_cb;
  loop->tick_op.cb = tick_cb;
  loop->stop_msg.fn = stop_msg_fn;
  pthread_mutex_init (&loop->msg_lock, NULL);

  /* Only the loop's own thread ever submits, so the ring can say so
   * (SINGLE_ISSUER) and have completion work run when the loop asks
   * for events rather than by interrupting it (DEFER_TASKRUN): fewer
   * wake-ups and no task-work IPIs on the data path.  Both need the
   * ring to belong to the loop thread, so it starts disabled and
   * loop_thread enables it.  Older kernels get the plainer setups.
   */
  static const unsigned setups[] = {
    IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER
      | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
    IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_CQSIZE,
  };
  r = -EINVAL;
  for (i = 0; i < sizeof setups / sizeof setups[0] && r == -EINVAL; i++) {
    memset (&p, 0, sizeof p);
    p.flags = setups[i];
    p.cq_entries = LOOP_CQ_ENTRIES;
    r = io_uring_queue_init_params (LOOP_SQ_ENTRIES, &loop->ring, &p);
  }
  loop->ring_disabled = r == 0 && (p.flags & IORING_SETUP_R_DISABLED);
  if (r < 0) {
    errno = -r;
    log_error ("io_uring_queue_init: %m");
    pthread_mutex_destroy (&loop->msg_lock);
    free (loop);
    return r;
  }
  loop->efd = eventfd (0, EFD_CLOEXEC);
  if (loop->efd == -1) {
    r = -errno;
    log_error ("eventfd: %m");
    goto fail;
  }
  loop->naccepts = server.nlisten;
  if (loop->naccepts) {
    loop->accepts = calloc (loop->naccepts, sizeof *loop->accepts);
    if (loop->accepts == NULL) {
      r = -ENOMEM;
      goto fail;
    }
  }
  loop->direct_fd = open_direct ();
  for (i = 0; i < loop->naccepts; i++) {
    loop->accepts[i].op.cb = accept_cb;
    loop->accepts[i].retry.cb = accept_retry_cb;
    loop->accepts[i].loop = loop;
    loop->accepts[i].fd = server.listen_fds[i];
  }
  *out = loop;
  return 0;

 fail:
  io_uring_queue_exit (&loop->ring);
  if (loop->efd >= 0)
    close (loop->efd);
  free (loop->accepts);
  pthread_mutex_destroy (&loop->msg_lock);
  free (loop);
  return r;
}

int
loop_start (struct loop *loop)
{
  int r = pthread_create (&loop->thread, NULL, loop_thread, loop);

  if (r != 0) {
    errno = r;
    log_error ("loop %u: pthread_create: %m", loop->index);
    return -r;
  }
  return 0;
}

void
loop_join_and_free (struct loop *loop)
{
  struct req *req;

  if (loop == NULL)
    return;
  pthread_join (loop->thread, NULL);
  while ((req = loop->free_reqs) != NULL) {
    loop->free_reqs = req->next;
    free (req);
  }
  bufpool_clear (&loop->bufs);
  io_uring_queue_exit (&loop->ring);
  close (loop->efd);
  if (loop->direct_fd >= 0)
    close (loop->direct_fd);
  free (loop->accepts);
  pthread_mutex_destroy (&loop->msg_lock);
  free (loop);
}
