/* tests/fuzz/fuzz-nbd.c: libFuzzer target over the NBD handshake and
 * request parsing, driving the real daemon code in process.
 *
 * Once per process (LLVMFuzzerInitialize) a pool is made in a
 * temporary directory with the volumes the seed corpus names, and one
 * event loop from server/loop.c is started on its own thread, exactly
 * as stratad runs it.  Each input is then one client session: the
 * bytes are written, as the client side of a socketpair, to a
 * connection made by conn_new() on that loop, the write side is shut,
 * and everything the server says is read until it closes the
 * connection.  So the input is the whole client byte stream, starting
 * with the client flags after the greeting:
 *
 *   client flags (4) ─▶ options (IHAVEOPT ...) ─▶ requests (+ payloads)
 *
 * The loop, the parsers (protocol-handshake.c, protocol-transmission.c),
 * the data path (io_uring reads and writes of the pool, CoW of shared
 * chunks, trims, block status, FLUSH inline) all run for real, under
 * ASan and UBSan.  A session that does not end within HANG_SECONDS is
 * reported as a crash (abort), since a client must never be able to
 * wedge a connection that has sent EOF.
 *
 * Volumes: "a" (1 MiB, written, its chunks shared with "b"), "b"
 * (1 MiB, shares "a"'s chunks, so writes to it copy on write), "z"
 * (1 MiB, empty) and "" is not a default export.
 *
 * Faults: an input may end with a fault script, "SCRIPT N FLT!" (N
 * bytes of script, N itself as one byte, N <= FAULT_SCRIPT_MAX, then
 * the four bytes "FLT!"), which is not sent: each script byte decides
 * whether the session's next data read or write fails (EIO, ENOSPC,
 * EDQUOT) or writes short (server/fault.c: fault_script).  So the
 * fuzzer explores the error paths of every request type together with
 * the protocol states around them.  stratad -s, replaying the same
 * input (tests/fuzz/replay.sh), just reads the trailer as bytes.
 *
 * The pool persists across inputs (a fresh one per input would cost
 * more than the session): a crash may need earlier inputs to show, so
 * tests/fuzz/replay.sh replays every regression input in order.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "internal.h"
#include "blockmap/internal.h"      /* blockmap_test_share_range */

#define CHUNK (64 * 1024)
#define VOLSIZE (1024 * 1024)
#define HANG_SECONDS 20

static char dir[64];
static struct blockmap_pool *pool;
static struct loop *loop;

struct new_conn_msg {
  struct loop_msg msg;          /* first: the message is the struct */
  int fd;
};

static void
new_conn (struct loop_msg *msg)
{
  struct new_conn_msg *m = (struct new_conn_msg *) msg;

  if (conn_new (loop, m->fd, m->fd) < 0)
    close (m->fd);              /* out of memory: the client sees EOF */
  free (m);
}

/* A probe run on the loop's thread: are all connections gone? */
struct idle_msg {
  struct loop_msg msg;          /* first: the message is the struct */
  _Atomic int answer;           /* 0: not yet run, 1: busy, 2: idle */
};

static void
idle_probe (struct loop_msg *msg)
{
  struct idle_msg *m = (struct idle_msg *) msg;

  m->answer = loop->nconns == 0 ? 2 : 1;
}

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st; (void) flag; (void) ftw;
  return remove (path);
}

static void
cleanup (void)
{
  if (loop) {
    loop_request_stop (loop);
    loop_join_and_free (loop);
  }
  if (pool)
    blockmap_pool_close (pool);
  if (dir[0])
    nftw (dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
die (const char *what, int err)
{
  fprintf (stderr, "fuzz-nbd: %s: %s\n", what, strerror (err < 0 ? -err
                                                           : err));
  exit (EXIT_FAILURE);
}

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  struct blockmap_pool_opts opts = {
    .chunk_size = CHUNK, .hot_capacity = 256 * 1024 * 1024,
  };
  struct blockmap_volume *vol;
  char path[128];
  char *buf;
  int r;

  (void) argc; (void) argv;
  /* Bad input is logged as errors by design: keep the output for the
   * fuzzer's own reports.  STRATA_FUZZ_LOG=1 shows it.
   */
  log_set_program ("fuzz-nbd");
  if (getenv ("STRATA_FUZZ_LOG") == NULL)
    log_set_quiet (true);
  signal (SIGPIPE, SIG_IGN);

  strcpy (dir, "/tmp/strata-fuzz.XXXXXX");
  if (mkdtemp (dir) == NULL)
    die ("mkdtemp", errno);
  atexit (cleanup);
  snprintf (path, sizeof path, "%s/pool", dir);
  if ((r = blockmap_pool_init (path, &opts)) < 0)
    die ("pool init", r);
  if ((r = blockmap_pool_open (path, &pool)) < 0)
    die ("pool open", r);
  if ((r = blockmap_volume_create (pool, "a", VOLSIZE, "ssd", NULL)) < 0 ||
      (r = blockmap_volume_create (pool, "b", VOLSIZE, "ssd", NULL)) < 0 ||
      (r = blockmap_volume_create (pool, "z", VOLSIZE, "ssd", NULL)) < 0)
    die ("volume create", r);

  /* "a" gets data (written the way the server writes it: map, then
   * pwrite to the data file), then shares its chunks with "b".
   */
  buf = malloc (VOLSIZE);
  if (buf == NULL)
    die ("malloc", ENOMEM);
  memset (buf, 'A', VOLSIZE);
  if ((r = blockmap_volume_open (pool, "a", &vol)) < 0)
    die ("volume open", r);
  for (uint64_t off = 0; off < VOLSIZE; off += CHUNK) {
    struct blockmap_run run;
    int fd;

    r = blockmap_write_prepare (vol, off, CHUNK, &run, 1);
    if (r != 1)
      die ("write prepare", r < 0 ? r : EIO);
    fd = blockmap_pool_data_fd (pool, run.tier);
    if (pwrite (fd, buf, run.length, run.pool_offset) != (ssize_t) run.length)
      die ("pwrite", errno);
  }
  blockmap_volume_release (vol);
  free (buf);
  if ((r = blockmap_pool_sync (pool)) < 0)
    die ("pool sync", r);
  if ((r = blockmap_test_share_range (pool, "a", "b", 0,
                                      VOLSIZE / CHUNK)) < 0)
    die ("share range", r);
  /* A snapshot of "a": a read-only export, and strata:changed:s. */
  if ((r = blockmap_volume_clone (pool, "a", "a@s", 0, NULL, NULL,
                                  true)) < 0)
    die ("snapshot", r);

  fault_script_init ();         /* before the loop's thread starts */
  server.pool = pool;
  server.cfg = NULL;            /* no types: nothing is rotational */
  server.opts = NULL;           /* no default export */
  server.chunk_size = CHUNK;
  server.sync = NULL;           /* FLUSH and FUA sync inline */
  server.nlisten = 0;
  if ((r = loop_create (0, &loop)) < 0)
    die ("loop create", r);
  if ((r = loop_start (loop)) < 0)
    die ("loop start", r);
  return 0;
}

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
check_report (void *opaque, const char *msg)
{
  (void) opaque;
  fprintf (stderr, "fuzz-nbd: pool check: %s\n", msg);
}

/* Split a fault script off the end of DATA (see the top): returns the
 * script's length and sets *SCRIPT, and shortens *SIZE to the session.
 */
static size_t
fault_trailer (const uint8_t *data, size_t *size, const uint8_t **script)
{
  size_t n;

  if (*size < 5 || memcmp (data + *size - 4, "FLT!", 4) != 0)
    return 0;
  n = data[*size - 5];
  if (n > FAULT_SCRIPT_MAX || *size < 5 + n)
    return 0;
  *size -= 5 + n;
  *script = data + *size;
  return n;
}

/* One session: send DATA, then EOF, and drain the server's replies
 * until it closes.  The server's output is only read, never checked:
 * the oracle is the sanitizers, the absence of a hang, the loop
 * staying alive for the next input, and a clean pool check after it.
 */
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static char sink[256 * 1024];
  struct new_conn_msg *m;
  size_t sent = 0;
  bool shut = false;
  double deadline = now () + HANG_SECONDS;
  const uint8_t *script = NULL;
  size_t nscript = fault_trailer (data, &size, &script);
  int sv[2];

  /* Set while no connection is open: the last session's I/O is over. */
  fault_script (script, nscript);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
    die ("socketpair", errno);
  if (fcntl (sv[1], F_SETFL, O_NONBLOCK) == -1)
    die ("fcntl", errno);
  m = calloc (1, sizeof *m);
  if (m == NULL)
    die ("calloc", ENOMEM);
  m->msg.fn = new_conn;
  m->fd = sv[0];
  loop_post (loop, &m->msg);

  for (;;) {
    struct pollfd p = { .fd = sv[1], .events = POLLIN };
    ssize_t n;

    if (!shut && sent == size) {
      shutdown (sv[1], SHUT_WR);
      shut = true;
    }
    if (!shut)
      p.events |= POLLOUT;
    if (now () > deadline) {
      fprintf (stderr, "fuzz-nbd: the session did not end within %d s "
               "of the client's EOF (%zu of %zu bytes sent)\n",
               HANG_SECONDS, sent, size);
      abort ();
    }
    if (poll (&p, 1, 1000) < 0) {
      if (errno == EINTR)
        continue;
      die ("poll", errno);
    }
    if (p.revents & POLLOUT) {
      n = send (sv[1], data + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0)
        sent += n;
      else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sent = size;            /* the server hung up: stop sending */
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      n = recv (sv[1], sink, sizeof sink, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        break;                  /* the server closed the connection */
    }
  }
  close (sv[1]);

  /* The session is over for the client; wait until the server has
   * freed the connection too, so that libFuzzer's leak check never
   * sees a request half way through being freed, and a connection
   * that outlives its client is reported as a hang.
   */
  for (;;) {
    struct idle_msg probe = { .msg.fn = idle_probe };

    loop_post (loop, &probe.msg);
    while (probe.answer == 0)
      usleep (50);
    if (probe.answer == 2)
      break;
    if (now () > deadline) {
      fprintf (stderr, "fuzz-nbd: the connection was not freed within "
               "%d s of the end of the session\n", HANG_SECONDS);
      abort ();
    }
    usleep (200);
  }

  /* Whatever the session did and whatever failed under it, the pool's
   * maps, reference counts and allocator must still agree.
   */
  if (blockmap_pool_check (pool, check_report, NULL) != 0) {
    fprintf (stderr, "fuzz-nbd: pool check failed after the session\n");
    abort ();
  }
  return 0;
}
