/* server/internal.h: private to the daemon (no other module uses
 * server/).  Sections follow the file that defines each part.
 */
#ifndef STRATA_SERVER_INTERNAL_H
#define STRATA_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockmap/blockmap.h"

/* ---- main.c ---------------------------------------------------------- */

#define STRATAD_DEFAULT_PORT 10809

struct server_opts {
  const char *pool_path;        /* --pool, required */
  const char *listen_addr;      /* --listen, default 127.0.0.1 */
  int port;                     /* --port, default 10809 */
  bool tcp;                     /* open the TCP listener */
  const char *unix_path;        /* --unix, NULL: none */
  const char *admin_path;       /* --admin-socket, default POOL/admin.sock */
  const char *config_path;      /* --config, NULL: built-in defaults */
  const char *default_export;   /* --default-export, served for "" */
  const char *pid_file;         /* --pid-file */
  unsigned threads;             /* --threads, default nproc */
  bool foreground;              /* -f */
  bool single;                  /* -s: one client on stdin/stdout */
};

/* ---- config.c: volume types from the YAML configuration file ------- */

/* A volume type: a named budget and placement.  Budgets are enforced
 * by a later issue; this one stores and reports them.
 */
struct volume_type {
  char name[BLOCKMAP_TYPE_MAX];
  uint64_t iops;                /* baseline operations per second */
  uint64_t throughput;          /* baseline bytes per second */
  uint64_t max_iops;            /* a volume may provision up to these */
  uint64_t max_throughput;
  uint64_t iops_per_gib;        /* provisioning cap per GiB; 0: none */
  uint64_t op_size;             /* a request counts one op per op_size */
  uint64_t burst;               /* bucket burst, seconds of baseline */
  enum blockmap_tier tier;
  bool rotational;              /* advertised to clients (NBD flag) */
};

struct config {
  struct volume_type *types;    /* owned */
  size_t ntypes;
};

/* Load the configuration file PATH (YAML), or the built-in defaults
 * (`ssd`, `hdd`) when PATH is NULL.  Types in the file replace or add
 * to the defaults by name.  On error returns -errno and writes a
 * sentence naming the file, line and problem into ERR.
 */
int config_load (const char *path, struct config **cfg,
                 char *err, size_t errlen);
void config_free (struct config *cfg);
const struct volume_type *config_find_type (const struct config *cfg,
                                            const char *name);

/* ---- admin.c: the admin socket (doc/admin-protocol.md) -------------- */

struct admin_server;

/* Serve the admin protocol on LISTEN_FD (bound and listening; the admin
 * server owns it from now on) in a thread of its own.  POOL and CFG are
 * borrowed and must outlive the admin server.
 */
int admin_start (struct blockmap_pool *pool, const struct config *cfg,
                 int listen_fd, struct admin_server **out);

/* Stop the admin thread, close its sockets.  Accepts NULL. */
void admin_stop (struct admin_server *admin);

/* ---- admin.c internals, for tests ------------------------------------ */

/* Control-path errors carry a sentence for the operator, returned in
 * the admin reply as {"ok": false, "error": {"code": "EINVAL",
 * "message": ...}} (STYLE B.3, DESIGN invariant 6).
 */
struct admin_err {
  int code;                     /* errno value */
  char msg[256];
};

/* Fill *E and return -CODE, so callers can  return admin_errorf (...); */
int admin_errorf (struct admin_err *e, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

/* The name of errno value CODE ("EINVAL"); "EIO" for unknown ones. */
const char *admin_errno_name (int code);

/* Handle one request LINE (one JSON text, without its newline) against
 * POOL and CFG and return the reply: one line of JSON without its
 * newline, malloc'ed, owned by the caller.  Never returns NULL except
 * when out of memory.  BLOCKS (a change of state is synced before the
 * reply is built).  Pure apart from the pool: no sockets, no globals,
 * so unit tests drive it directly.
 */
char *admin_handle_request (struct blockmap_pool *pool,
                            const struct config *cfg, const char *line,
                            size_t len);

/* The most bytes one request line may have, without its newline. */
#define ADMIN_LINE_MAX (1024 * 1024)

#endif /* STRATA_SERVER_INTERNAL_H */
