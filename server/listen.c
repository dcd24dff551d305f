/* server/listen.c: the listening sockets.
 *
 * Three sources, decided in main.c: sockets passed by systemd (or by
 * libnbd's nbd_connect_systemd_socket_activation, which passes one
 * unnamed fd), a TCP address (loopback by default: NBD without TLS
 * has no authentication), and Unix sockets.  Every NBD listener is
 * shared by all event loops, each of which keeps an accept posted on
 * it; the admin socket goes to admin.c.
 *
 * A Unix socket path that is already there is replaced only if
 * nothing answers on it (a stale file from a crashed daemon); if a
 * server answers, we refuse rather than steal its address.
 */
#include <errno.h>
#include <stdbool.h>
#include <time.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

#define LISTEN_BACKLOG 1024
#define SD_LISTEN_FDS_START 3

static int
add_fd (struct listen_set *ls, int fd)
{
  int *fds = realloc (ls->fds, (ls->n + 1) * sizeof *fds);

  if (fds == NULL)
    return -ENOMEM;
  ls->fds = fds;
  ls->fds[ls->n++] = fd;
  return 0;
}

int
listen_systemd (struct listen_set *ls)
{
  const char *spid = getenv ("LISTEN_PID");
  const char *sfds = getenv ("LISTEN_FDS");
  const char *snames = getenv ("LISTEN_FDNAMES");
  char *names = NULL, *saveptr = NULL, *name;
  char *end;
  long pid, n, i;
  int r = 0;

  if (spid == NULL || sfds == NULL)
    return 0;
  errno = 0;
  pid = strtol (spid, &end, 10);
  if (errno || *end || pid != (long) getpid ())
    return 0;                   /* meant for another process */
  errno = 0;
  n = strtol (sfds, &end, 10);
  if (errno || *end || n < 0 || n > 1000) {
    log_error ("LISTEN_FDS=%s is not a number of sockets", sfds);
    return -EINVAL;
  }
  /* Names are only trusted if there is one per fd. */
  if (snames) {
    long count = 1;
    const char *p;

    for (p = snames; *p; p++)
      count += *p == ':';
    if (count == n)
      names = strdup (snames);
  }
  name = names ? strtok_r (names, ":", &saveptr) : NULL;
  for (i = 0; i < n; i++) {
    int fd = SD_LISTEN_FDS_START + i;

    fcntl (fd, F_SETFD, FD_CLOEXEC);
    if (name && strcmp (name, "admin") == 0 && ls->admin_fd == -1)
      ls->admin_fd = fd;
    else if ((r = add_fd (ls, fd)) < 0)
      break;
    if (names)
      name = strtok_r (NULL, ":", &saveptr);
  }
  free (names);
  unsetenv ("LISTEN_PID");
  unsetenv ("LISTEN_FDS");
  unsetenv ("LISTEN_FDNAMES");
  if (r < 0)
    return r;
  ls->activated = true;
  log_debug (DBG_LOOP, "socket activation: %ld fd(s)", n);
  return (int) n;
}

int
listen_tcp (struct listen_set *ls, const char *addr, int port)
{
  struct addrinfo hints, *res = NULL, *ai;
  char sport[16];
  int r, one = 1, opened = 0, last_err = 0;

  memset (&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
  snprintf (sport, sizeof sport, "%d", port);
  r = getaddrinfo (addr, sport, &hints, &res);
  if (r != 0) {
    log_error ("--listen %s: %s", addr ? addr : "*", gai_strerror (r));
    return -EINVAL;
  }
  for (ai = res; ai; ai = ai->ai_next) {
    CLEANUP_CLOSE int fd = -1;

    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd == -1) {
      last_err = errno;
      continue;
    }
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind (fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
        listen (fd, LISTEN_BACKLOG) == -1) {
      last_err = errno;
      continue;
    }
    r = add_fd (ls, fd);
    if (r < 0) {
      freeaddrinfo (res);
      return r;
    }
    fd = -1;                    /* the set owns it */
    opened++;
  }
  freeaddrinfo (res);
  if (opened == 0) {
    errno = last_err ? last_err : EADDRNOTAVAIL;
    log_error ("cannot listen on %s port %d: %m", addr ? addr : "*", port);
    return -errno;
  }
  return 0;
}

/* Is a server accepting on the Unix socket SUN?  A socket whose owner
 * was just killed can still accept a connection for a few milliseconds
 * while the kernel tears it down (seen after kill -9 of a daemon with
 * accepts pending in its ring), so a live server is one that keeps
 * accepting for LIVE_PROBE_TRIES tries in a row; a stale socket file
 * refuses at once.
 */
#define LIVE_PROBE_TRIES 20
#define LIVE_PROBE_INTERVAL_NS 50000000

static bool
socket_is_live (const struct sockaddr_un *sun)
{
  for (int i = 0; i < LIVE_PROBE_TRIES; i++) {
    CLEANUP_CLOSE int probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (probe == -1
        || connect (probe, (const struct sockaddr *) sun, sizeof *sun) == -1)
      return false;
    nanosleep (&(struct timespec) { 0, LIVE_PROBE_INTERVAL_NS }, NULL);
  }
  return true;
}

int
listen_unix (const char *path, int *out)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  CLEANUP_CLOSE int fd = -1;
  struct stat st;

  if (strlen (path) >= sizeof sun.sun_path) {
    log_error ("socket path %s is too long (max %zu bytes)", path,
               sizeof sun.sun_path - 1);
    return -ENAMETOOLONG;
  }
  strcpy (sun.sun_path, path);
  if (lstat (path, &st) == 0) {
    if (!S_ISSOCK (st.st_mode)) {
      log_error ("%s exists and is not a socket", path);
      return -EEXIST;
    }
    if (socket_is_live (&sun)) {
      log_error ("%s: another server is listening there", path);
      return -EADDRINUSE;
    }
    if (unlink (path) == -1 && errno != ENOENT) {
      log_error ("unlink stale socket %s: %m", path);
      return -errno;
    }
  }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    log_error ("socket: %m");
    return -errno;
  }
  if (bind (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
    log_error ("bind %s: %m", path);
    return -errno;
  }
  if (listen (fd, LISTEN_BACKLOG) == -1) {
    log_error ("listen %s: %m", path);
    return -errno;
  }
  *out = TAKE_FD (fd);
  return 0;
}

void
listen_set_free (struct listen_set *ls)
{
  size_t i;

  for (i = 0; i < ls->n; i++)
    close (ls->fds[i]);
  free (ls->fds);
  ls->fds = NULL;
  ls->n = 0;
  if (ls->admin_fd >= 0)
    close (ls->admin_fd);
  ls->admin_fd = -1;
}
