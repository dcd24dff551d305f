/* tests/unit/test-proto-cow.c: the daemon's data path on a real pool,
 * in process: an event loop from server/loop.c serves a socketpair,
 * and a minimal NBD client written here drives it.  The point is the
 * copy-on-write protocol of blockmap_write_prepare (BM_RUN_COW): writes
 * and trims to shared chunks must copy them, leave the other volume
 * untouched, and a second write to a chunk being copied must wait for
 * the first (the -EAGAIN park) rather than fail or lose data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "blockmap/internal.h"      /* blockmap_test_share_range */

#define CHUNK (64 * 1024)
#define VOLSIZE (1024 * 1024)

struct fixture {
  char dir[64];
  struct blockmap_pool *pool;
  struct loop *loop;
};

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st; (void) flag; (void) ftw;
  return remove (path);
}

static void
xwrite (int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t n = write (fd, p, len);
    assert_true (n > 0);
    p += n;
    len -= n;
  }
}

static void
xread (int fd, void *buf, size_t len)
{
  char *p = buf;

  while (len > 0) {
    ssize_t n = read (fd, p, len);
    assert_true (n > 0);
    p += n;
    len -= n;
  }
}

struct new_conn_msg {
  struct loop_msg msg;
  struct loop *loop;
  int fd;
};

static void
new_conn (struct loop_msg *msg)
{
  struct new_conn_msg *m = (struct new_conn_msg *) msg;

  assert_int_equal (conn_new (m->loop, m->fd, m->fd), 0);
  free (m);
}

/* Connect a client to export NAME; returns the client's fd. */
static int
client (struct fixture *f, const char *name)
{
  struct new_conn_msg *m = calloc (1, sizeof *m);
  char greeting[18], hdr[20];
  uint32_t flags = htobe32 (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  struct nbd_option opt;
  uint32_t nl = htobe32 (strlen (name)), type, len;
  uint16_t nreq = 0;
  int sv[2];
  char buf[256];

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                    0);
  m->msg.fn = new_conn;
  m->loop = f->loop;
  m->fd = sv[0];
  loop_post (f->loop, &m->msg);

  xread (sv[1], greeting, sizeof greeting);
  xwrite (sv[1], &flags, 4);
  opt.magic = htobe64 (NBD_IHAVEOPT);
  opt.option = htobe32 (NBD_OPT_GO);
  opt.length = htobe32 (4 + strlen (name) + 2);
  xwrite (sv[1], &opt, sizeof opt);
  xwrite (sv[1], &nl, 4);
  xwrite (sv[1], name, strlen (name));
  xwrite (sv[1], &nreq, 2);
  do {
    xread (sv[1], hdr, sizeof hdr);
    memcpy (&type, hdr + 12, 4);
    memcpy (&len, hdr + 16, 4);
    type = be32toh (type);
    len = be32toh (len);
    assert_true (len <= sizeof buf);
    xread (sv[1], buf, len);
    assert_false (type & NBD_REP_ERR_BIT);
  } while (type != NBD_REP_ACK);
  return sv[1];
}

static void
send_req (int fd, uint16_t type, uint16_t flags, uint64_t cookie,
          uint64_t off, uint32_t len, const void *data)
{
  struct nbd_request r = {
    .magic = htobe32 (NBD_REQUEST_MAGIC), .flags = htobe16 (flags),
    .type = htobe16 (type), .cookie = cookie, .offset = htobe64 (off),
    .length = htobe32 (len),
  };

  xwrite (fd, &r, sizeof r);
  if (type == NBD_CMD_WRITE)
    xwrite (fd, data, len);
}

/* Read one simple reply; returns its error, stores its cookie. */
static uint32_t
recv_reply (int fd, uint64_t *cookie, void *data, uint32_t len)
{
  struct nbd_simple_reply r;

  xread (fd, &r, sizeof r);
  assert_int_equal (be32toh (r.magic), NBD_SIMPLE_REPLY_MAGIC);
  *cookie = r.cookie;
  if (r.error == 0 && data)
    xread (fd, data, len);
  return be32toh (r.error);
}

static uint32_t
cmd (int fd, uint16_t type, uint16_t flags, uint64_t off, uint32_t len,
     void *data)
{
  uint64_t cookie;
  uint32_t err;

  send_req (fd, type, flags, 7, off, len, data);
  err = recv_reply (fd, &cookie, type == NBD_CMD_READ ? data : NULL, len);
  assert_int_equal (cookie, 7);
  return err;
}

static int
setup (void **state)
{
  struct blockmap_pool_opts opts = {
    .chunk_size = CHUNK, .hot_capacity = 64 * 1024 * 1024,
  };
  struct fixture *f = calloc (1, sizeof *f);
  char path[128];

  strcpy (f->dir, "/tmp/test-proto-cow.XXXXXX");
  assert_non_null (mkdtemp (f->dir));
  snprintf (path, sizeof path, "%s/pool", f->dir);
  assert_int_equal (blockmap_pool_init (path, &opts), 0);
  assert_int_equal (blockmap_pool_open (path, &f->pool), 0);
  assert_int_equal (blockmap_volume_create (f->pool, "a", VOLSIZE, "ssd",
                                            NULL), 0);
  assert_int_equal (blockmap_volume_create (f->pool, "b", VOLSIZE, "ssd",
                                            NULL), 0);
  server.pool = f->pool;
  server.chunk_size = CHUNK;
  server.sync = NULL;           /* FLUSH syncs inline */
  server.nlisten = 0;
  assert_int_equal (loop_create (0, &f->loop), 0);
  assert_int_equal (loop_start (f->loop), 0);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  struct fixture *f = *state;

  loop_request_stop (f->loop);
  loop_join_and_free (f->loop);
  assert_int_equal (blockmap_pool_close (f->pool), 0);
  nftw (f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free (f);
  return 0;
}

/* Fill volume "a" with 'A', then share its chunks with "b". */
static void
fill_and_share (struct fixture *f, int fa)
{
  char *buf = malloc (VOLSIZE);

  memset (buf, 'A', VOLSIZE);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE, 0, 0, VOLSIZE, buf), 0);
  assert_int_equal (cmd (fa, NBD_CMD_FLUSH, 0, 0, 0, NULL), 0);
  assert_int_equal (blockmap_test_share_range (f->pool, "a", "b", 0,
                                               VOLSIZE / CHUNK), 0);
  free (buf);
}

static void
test_partial_write_to_a_shared_chunk_copies_it (void **state)
{
  struct fixture *f = *state;
  int fa = client (f, "a"), fb = client (f, "b");
  char *buf = malloc (VOLSIZE), *expect = malloc (VOLSIZE);

  assert_non_null (buf);
  assert_non_null (expect);
  fill_and_share (f, fa);
  memset (buf, 'N', 4096);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE, 0, CHUNK + 4096, 4096, buf), 0);
  /* A whole shared chunk, and one spanning two chunks. */
  memset (buf, 'W', CHUNK);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE, 0, 4 * CHUNK, CHUNK, buf), 0);
  memset (buf, 'S', 8192);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA,
                         6 * CHUNK - 4096, 8192, buf), 0);

  memset (expect, 'A', VOLSIZE);
  memset (expect + CHUNK + 4096, 'N', 4096);
  memset (expect + 4 * CHUNK, 'W', CHUNK);
  memset (expect + 6 * CHUNK - 4096, 'S', 8192);
  assert_int_equal (cmd (fa, NBD_CMD_READ, 0, 0, VOLSIZE, buf), 0);
  assert_memory_equal (buf, expect, VOLSIZE);
  /* The other volume still sees the old data. */
  memset (expect, 'A', VOLSIZE);
  assert_int_equal (cmd (fb, NBD_CMD_READ, 0, 0, VOLSIZE, buf), 0);
  assert_memory_equal (buf, expect, VOLSIZE);
  close (fa);
  close (fb);
  free (buf);
  free (expect);
}

static void
test_trim_and_zero_of_a_shared_chunk_copy_it (void **state)
{
  struct fixture *f = *state;
  int fa = client (f, "a"), fb = client (f, "b");
  char *buf = malloc (VOLSIZE), *expect = malloc (VOLSIZE);

  assert_non_null (buf);
  assert_non_null (expect);
  fill_and_share (f, fa);
  /* Partial edges in chunks 0 and 2, chunk 1 whole. */
  assert_int_equal (cmd (fa, NBD_CMD_TRIM, 0, 1024, 3 * CHUNK - 2048, NULL),
                    0);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE,
                         5 * CHUNK + 512, 1024, NULL), 0);
  memset (expect, 'A', VOLSIZE);
  memset (expect + 1024, 0, 3 * CHUNK - 2048);
  memset (expect + 5 * CHUNK + 512, 0, 1024);
  assert_int_equal (cmd (fa, NBD_CMD_READ, 0, 0, VOLSIZE, buf), 0);
  assert_memory_equal (buf, expect, VOLSIZE);
  memset (expect, 'A', VOLSIZE);
  assert_int_equal (cmd (fb, NBD_CMD_READ, 0, 0, VOLSIZE, buf), 0);
  assert_memory_equal (buf, expect, VOLSIZE);
  close (fa);
  close (fb);
  free (buf);
  free (expect);
}

static void
test_concurrent_writes_to_one_shared_chunk_both_land (void **state)
{
  struct fixture *f = *state;
  int fa = client (f, "a"), fb = client (f, "b");
  char *buf = malloc (VOLSIZE), *expect = malloc (VOLSIZE);
  uint64_t cookie;
  int i, n = 8;

  fill_and_share (f, fa);
  /* Pipelined: the later ones find the chunk being copied (-EAGAIN)
   * and must wait for the commit, not fail or overwrite.
   */
  for (i = 0; i < n; i++) {
    memset (buf, '0' + i, 512);
    send_req (fa, NBD_CMD_WRITE, 0, i, 2 * CHUNK + i * 1024, 512, buf);
  }
  for (i = 0; i < n; i++)
    assert_int_equal (recv_reply (fa, &cookie, NULL, 0), 0);

  memset (expect, 'A', VOLSIZE);
  for (i = 0; i < n; i++)
    memset (expect + 2 * CHUNK + i * 1024, '0' + i, 512);
  assert_int_equal (cmd (fa, NBD_CMD_READ, 0, 0, VOLSIZE, buf), 0);
  assert_memory_equal (buf, expect, VOLSIZE);
  memset (expect, 'A', VOLSIZE);
  assert_int_equal (cmd (fb, NBD_CMD_READ, 0, 0, VOLSIZE, buf), 0);
  assert_memory_equal (buf, expect, VOLSIZE);
  close (fa);
  close (fb);
  free (buf);
  free (expect);
}

static void
test_errors_keep_the_connection_usable (void **state)
{
  struct fixture *f = *state;
  int fa = client (f, "a");
  char buf[4096];

  memset (buf, 'x', sizeof buf);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE, 0, VOLSIZE, 4096, buf),
                    NBD_ENOSPC);
  assert_int_equal (cmd (fa, NBD_CMD_READ, 0, VOLSIZE - 512, 1024, buf),
                    NBD_EINVAL);
  assert_int_equal (cmd (fa, 42, 0, 0, 0, NULL), NBD_EINVAL);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE, NBD_CMD_FLAG_DF, 0, 4096, buf),
                    NBD_EINVAL);
  assert_int_equal (cmd (fa, NBD_CMD_WRITE, 0, 0, 4096, buf), 0);
  assert_int_equal (cmd (fa, NBD_CMD_READ, 0, 0, 4096, buf), 0);
  assert_int_equal (buf[0], 'x');
  close (fa);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown
      (test_partial_write_to_a_shared_chunk_copies_it, setup, teardown),
    cmocka_unit_test_setup_teardown
      (test_trim_and_zero_of_a_shared_chunk_copy_it, setup, teardown),
    cmocka_unit_test_setup_teardown
      (test_concurrent_writes_to_one_shared_chunk_both_land, setup,
       teardown),
    cmocka_unit_test_setup_teardown
      (test_errors_keep_the_connection_usable, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
