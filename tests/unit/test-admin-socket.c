/* tests/unit/test-admin-socket.c: the admin thread's connection
 * handling (server/admin.c): framing, many clients, bad and over-long
 * lines, clients that go away, and admin_stop().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

static char dir[] = "/tmp/strata-test-admsock.XXXXXX";
static char sock_path[100];
static struct blockmap_pool *pool;
static struct config *cfg;
static struct admin_server *admin;

static int
setup (void **state)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  char pool_path[256], err[256];
  int fd;

  (void) state;
  signal (SIGPIPE, SIG_IGN);
  if (mkdtemp (dir) == NULL)
    return -1;
  snprintf (pool_path, sizeof pool_path, "%s/pool", dir);
  snprintf (sock_path, sizeof sock_path, "%s/admin.sock", dir);
  if (blockmap_pool_init (pool_path, NULL) < 0
      || blockmap_pool_open (pool_path, &pool) < 0
      || config_load (NULL, &cfg, err, sizeof err) < 0)
    return -1;
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  snprintf (sun.sun_path, sizeof sun.sun_path, "%s", sock_path);
  if (fd < 0 || bind (fd, (struct sockaddr *) &sun, sizeof sun) < 0
      || listen (fd, 16) < 0)
    return -1;
  return admin_start (pool, cfg, fd, &admin);
}

static int
teardown (void **state)
{
  char cmd[300];

  (void) state;
  admin_stop (admin);
  blockmap_pool_close (pool);
  config_free (cfg);
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  return system (cmd) == 0 ? 0 : -1;
}

static int
connect_admin (void)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  assert_true (fd >= 0);
  snprintf (sun.sun_path, sizeof sun.sun_path, "%s", sock_path);
  assert_int_equal (connect (fd, (struct sockaddr *) &sun, sizeof sun), 0);
  return fd;
}

static void
send_all (int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);

    assert_true (n > 0);
    buf += n;
    len -= n;
  }
}

static void
send_str (int fd, const char *s)
{
  send_all (fd, s, strlen (s));
}

/* Read one reply line (without the newline) into BUF, waiting at most
 * 10 s.  Returns its length, or -1 on EOF.
 */
static int
read_line (int fd, char *buf, size_t len)
{
  size_t n = 0;

  while (n < len - 1) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    ssize_t r;

    if (poll (&p, 1, 10000) != 1)
      fail_msg ("no reply within 10 s");
    r = read (fd, buf + n, 1);
    if (r == 0)
      return -1;
    assert_int_equal (r, 1);
    if (buf[n] == '\n') {
      buf[n] = '\0';
      return n;
    }
    n++;
  }
  fail_msg ("reply too long");
  return -1;
}

static void
expect (int fd, const char *want)
{
  char buf[65536];

  assert_true (read_line (fd, buf, sizeof buf) >= 0);
  if (strstr (buf, want) == NULL)
    fail_msg ("reply %s lacks %s", buf, want);
}

static void
test_pipelined_requests_are_answered_in_order (void **state)
{
  int fd = connect_admin ();

  (void) state;
  send_str (fd, "{\"op\":\"volume.create\",\"args\":{\"name\":\"p1\","
            "\"size\":4096}}\n{\"op\":\"volume.show\",\"args\":"
            "{\"name\":\"p1\"}}\n\n{\"op\":\"volume.delete\",\"args\":"
            "{\"name\":\"p1\"}}\r\n");
  expect (fd, "{\"ok\":true,\"result\":{\"name\":\"p1\"");
  expect (fd, "\"connections\":0");
  expect (fd, "{\"ok\":true,\"result\":{\"name\":\"p1\"}}");
  close (fd);
}

static void
test_bad_line_gets_an_error_and_the_connection_stays (void **state)
{
  int fd = connect_admin ();

  (void) state;
  send_str (fd, "this is not json\n");
  expect (fd, "\"code\":\"EINVAL\"");
  send_str (fd, "{\"op\":\"nope\"}\n");
  expect (fd, "unknown op 'nope'");
  send_str (fd, "{\"op\":\"pool.status\"}\n");
  expect (fd, "\"ok\":true");
  close (fd);
}

static void
test_over_long_line_is_refused_and_skipped (void **state)
{
  size_t len = ADMIN_LINE_MAX + 100;
  char *big = malloc (len);
  int fd = connect_admin ();

  (void) state;
  memset (big, ' ', len);
  big[0] = '{';
  send_all (fd, big, len);
  expect (fd, "longer than 1048576 bytes");
  send_all (fd, big, 1000);     /* still the same line: dropped */
  send_str (fd, "}\n{\"op\":\"type.list\"}\n");
  expect (fd, "\"name\":\"ssd\"");
  free (big);
  close (fd);
}

static void
test_many_clients_and_one_that_goes_away (void **state)
{
  int fds[20], i, gone;

  (void) state;
  for (i = 0; i < 20; i++)
    fds[i] = connect_admin ();
  /* One client sends half a request and disappears. */
  gone = connect_admin ();
  send_str (gone, "{\"op\":\"pool.st");
  close (gone);
  /* Another disappears without reading its reply. */
  gone = connect_admin ();
  send_str (gone, "{\"op\":\"pool.check\"}\n");
  close (gone);
  for (i = 19; i >= 0; i--)
    send_str (fds[i], "{\"op\":\"volume.list\"}\n");
  for (i = 0; i < 20; i++) {
    expect (fds[i], "{\"ok\":true,\"result\":{\"volumes\":[]}}");
    close (fds[i]);
  }
}

static void
test_last_line_without_newline_is_answered_at_eof (void **state)
{
  int fd = connect_admin ();
  char buf[4096];

  (void) state;
  send_str (fd, "{\"op\":\"type.list\"}");
  shutdown (fd, SHUT_WR);
  expect (fd, "\"types\"");
  assert_int_equal (read_line (fd, buf, sizeof buf), -1);  /* then EOF */
  close (fd);
}

static void
test_stop_with_clients_connected (void **state)
{
  int fd = connect_admin ();

  (void) state;
  send_str (fd, "{\"op\":\"pool.status\"}\n");
  expect (fd, "\"ok\":true");
  admin_stop (admin);           /* must not hang on the open client */
  admin = NULL;
  close (fd);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_pipelined_requests_are_answered_in_order),
    cmocka_unit_test (test_bad_line_gets_an_error_and_the_connection_stays),
    cmocka_unit_test (test_over_long_line_is_refused_and_skipped),
    cmocka_unit_test (test_many_clients_and_one_that_goes_away),
    cmocka_unit_test (test_last_line_without_newline_is_answered_at_eof),
    cmocka_unit_test (test_stop_with_clients_connected),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
