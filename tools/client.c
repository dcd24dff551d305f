/* tools/client.c: the CLI's side of the admin protocol
 * (doc/admin-protocol.md): one Unix-socket connection per invocation,
 * one JSON line per request, one JSON line per reply.
 *
 * The daemon's error message is printed as it is ("strata: volume 'x'
 * does not exist"): it already names the problem, so the CLI adds
 * nothing but its name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "strata.h"

#define REPLY_MAX (256 * 1024 * 1024)   /* a sanity bound, not a limit */

static int
connect_daemon (struct cli *cli)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int fd;

  if (strlen (cli->socket) >= sizeof sun.sun_path)
    return cli_fail ("cannot connect to stratad at %s: the path is longer "
                     "than %zu bytes", cli->socket, sizeof sun.sun_path - 1);
  memcpy (sun.sun_path, cli->socket, strlen (cli->socket) + 1);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cli_fail ("socket: %m");
  if (connect (fd, (struct sockaddr *) &sun, sizeof sun) < 0) {
    int err = errno;

    close (fd);
    return cli_fail ("cannot connect to stratad at %s: %s (is stratad "
                     "running? use --socket)", cli->socket, strerror (err));
  }
  cli->fd = fd;
  return EXIT_DONE;
}

void
client_close (struct cli *cli)
{
  if (cli->fd >= 0)
    close (cli->fd);
  cli->fd = -1;
}

static int
send_all (int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    buf += n;
    len -= n;
  }
  return 0;
}

/* Read one line into a new buffer *OUT (NUL-terminated, no newline). */
static int
read_line (int fd, char **out)
{
  CLEANUP_FREE char *buf = NULL;
  size_t len = 0, cap = 0;

  for (;;) {
    char *nl;
    ssize_t n;

    if (cap - len < 65536) {
      char *p;

      if (cap > REPLY_MAX)
        return -EMSGSIZE;
      cap = cap ? cap * 2 : 65536;
      p = realloc (buf, cap + 1);
      if (p == NULL)
        return -ENOMEM;
      buf = p;
    }
    n = read (fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      return -ECONNRESET;
    nl = memchr (buf + len, '\n', n);
    len += n;
    if (nl) {
      *nl = '\0';               /* one request, one reply: no more data */
      *out = TAKE_PTR (buf);
      return 0;
    }
  }
}

int
client_call (struct cli *cli, const char *op, json_t *args, json_t **result)
{
  CLEANUP_FREE char *line = NULL, *reply = NULL;
  json_t *req, *rep, *err;
  json_error_t jerr;
  size_t len;
  int r;

  *result = NULL;
  if (cli->fd < 0 && (r = connect_daemon (cli)) != EXIT_DONE) {
    json_decref (args);
    return r;
  }
  req = args ? json_pack ("{s:s, s:o}", "op", op, "args", args)
             : json_pack ("{s:s}", "op", op);
  if (req == NULL)
    return cli_fail ("cannot build the request (out of memory?)");
  line = json_dumps (req, JSON_COMPACT);
  json_decref (req);
  if (line == NULL)
    return cli_fail ("cannot build the request (out of memory?)");
  len = strlen (line);
  line[len] = '\n';             /* the NUL becomes the line end */
  r = send_all (cli->fd, line, len + 1);
  line[len] = '\0';
  if (r < 0)
    return cli_fail ("cannot send to stratad at %s: %s", cli->socket,
                     strerror (-r));
  r = read_line (cli->fd, &reply);
  if (r == -ECONNRESET)
    return cli_fail ("stratad at %s closed the connection without "
                     "replying", cli->socket);
  if (r < 0)
    return cli_fail ("cannot read the reply from stratad at %s: %s",
                     cli->socket, strerror (-r));

  rep = json_loads (reply, 0, &jerr);
  if (!json_is_object (rep)) {
    json_decref (rep);
    return cli_fail ("stratad sent a reply that is not a JSON object: %s",
                     jerr.text);
  }
  if (json_is_true (json_object_get (rep, "ok"))) {
    *result = json_incref (json_object_get (rep, "result"));
    json_decref (rep);
    if (*result == NULL)
      return cli_fail ("stratad's reply has no result");
    return EXIT_DONE;
  }
  err = json_object_get (rep, "error");
  r = cli_fail ("%s", json_string_value (json_object_get (err, "message"))
                ? json_string_value (json_object_get (err, "message"))
                : "stratad refused the request without saying why");
  json_decref (rep);
  return r;
}
