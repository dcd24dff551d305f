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
#define STRATAD_DEFAULT_BUFFER_MEMORY (UINT64_C (1) << 30)

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
  const char *metrics_listen;   /* --metrics-listen ADDR:PORT, NULL: off */
  uint64_t max_buffer_memory;   /* --max-buffer-memory: request buffers,
                                   all loops together */
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
  /* Alarm thresholds for volumes of this type (alarm.c); 0: none. */
  uint64_t alarm_iops;          /* requests per second */
  uint64_t alarm_throughput;    /* bytes per second */
  uint64_t alarm_latency_p99;   /* milliseconds */
  uint64_t alarm_throttled;     /* percent of requests that waited */
};

struct config {
  struct volume_type *types;    /* owned */
  size_t ntypes;
  double tier_cost[4];          /* per GB-month, by enum blockmap_tier */
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

/* One request being handled; ops live in admin.c and, for snapshots,
 * admin-snapshot.c, and share the argument helpers below.  Each helper
 * returns 0 or fills R->e and returns -errno.
 */
struct json_t;
struct admin_req {
  struct blockmap_pool *pool;   /* borrowed */
  const struct config *cfg;     /* borrowed */
  const char *op;
  struct json_t *args;          /* borrowed from the request; an object */
  struct admin_err *e;
};

/* Refuse keys of R->args not in the NULL-terminated ALLOWED. */
int admin_check_args (struct admin_req *r, const char *const *allowed);
/* *OUT: the string argument KEY, NULL if absent and not REQUIRED. */
int admin_arg_string (struct admin_req *r, const char *key, bool required,
                      const char **out);
int admin_arg_bool (struct admin_req *r, const char *key, bool *out);
/* A required volume size (positive multiple of 4096, at most 2^60). */
int admin_arg_size (struct admin_req *r, const char *key, uint64_t *out);
/* An optional count in 0..MAX (0 when absent). */
int admin_arg_count (struct admin_req *r, const char *key, uint64_t max,
                     uint64_t *out);
/* An optional object of label strings (NULL when absent); borrowed. */
int admin_arg_labels (struct admin_req *r, struct json_t **out);
/* The same rules for argument WHAT ("tags"). */
int admin_arg_tags (struct admin_req *r, const char *what,
                    struct json_t **out);
/* A valid volume name, or an error naming what is wrong with NAME. */
int admin_check_name (struct admin_req *r, const char *name);
/* Make a change durable; WHAT says what was done, for the error. */
int admin_sync_pool (struct admin_req *r, const char *what);
const struct volume_type *admin_find_type (struct admin_req *r,
                                           const char *type);
/* "10 GiB": a static buffer per thread. */
const char *admin_size_str (uint64_t bytes);
struct json_t *admin_volume_json (const struct blockmap_volume_info *vi);
/* ATTRS (JSON text, may be empty) with KEY set to VAL (stolen; NULL or
 * an empty object: KEY removed), as new JSON text in *OUT.
 */
int admin_attrs_with (struct admin_req *r, const char *attrs,
                      const char *key, struct json_t *val, char **out);
/* Tell qos.c about volume NAME as it is now. */
void admin_qos_refresh (struct admin_req *r, const char *name);

/* ---- admin-snapshot.c: snapshot, clone and policy ops ---------------- */

/* The ops (doc/admin-protocol.md, "Snapshots"), in admin.c's table. */
int admin_op_snapshot_create (struct admin_req *r, struct json_t **result);
int admin_op_snapshot_list (struct admin_req *r, struct json_t **result);
int admin_op_snapshot_show (struct admin_req *r, struct json_t **result);
int admin_op_snapshot_delete (struct admin_req *r, struct json_t **result);
int admin_op_snapshot_diff (struct admin_req *r, struct json_t **result);
int admin_op_policy_set (struct admin_req *r, struct json_t **result);
int admin_op_policy_show (struct admin_req *r, struct json_t **result);
int admin_op_policy_list (struct admin_req *r, struct json_t **result);
int admin_op_policy_clear (struct admin_req *r, struct json_t **result);
/* volume.create with from_snapshot (admin.c hands it over). */
int admin_volume_from_snapshot (struct admin_req *r, struct json_t **result);
/* Would creating volume NAME hide an earlier volume's snapshots (NAME@*
 * still exist)?  Fills R->e and returns -EEXIST if so.
 */
int admin_check_no_orphans (struct admin_req *r, const char *name);

/* Take snapshot VOL@SNAP with TAGS (borrowed, may be NULL); AT >= 0
 * marks it as taken by the policy at scheduler time AT.  Synced and
 * logged as an event.  Returns 0 or fills E and returns -errno.  BLOCKS.
 */
int snapshot_take (struct blockmap_pool *pool, const char *vol,
                   const char *snap, struct json_t *tags, int64_t at,
                   struct admin_err *e);
/* Delete snapshot FULL (VOLUME@SNAPSHOT); WHY is appended to the log
 * and event (" by retention").  BLOCKS.
 */
int snapshot_remove (struct blockmap_pool *pool, const char *full,
                     bool force, const char *why, struct admin_err *e);
/* The snapshots of VOLUME (NULL: all) by volume, oldest first; *OUT is
 * malloc'ed.  Returns 0 or -errno.
 */
int snapshot_collect (struct blockmap_pool *pool, const char *volume,
                      struct blockmap_volume_info **out, size_t *n);
/* The policy in a volume's ATTRS with next_run after NOW, or NULL. */
struct json_t *policy_json (const char *attrs, int64_t now);

/* ---- policy.c: the snapshot policy runner and map reaper ------------- */

/* Start the thread that runs snapshot policies (about once a second)
 * and frees deleted volumes' maps in the background.  CLOCK_FILE: read
 * the time from this file (seconds since the epoch) instead of the
 * system clock -- stratad --debug-clock-file, for tests; may be NULL.
 */
int policy_start (struct blockmap_pool *pool, const char *clock_file);
void policy_stop (void);
/* Wake the runner now (a delete to reap, a policy changed). */
void policy_kick (void);
/* The policy clock: seconds since the epoch. */
int64_t policy_now (void);
/* One pass of the runner at time NOW (tests call it directly). */
void policy_run_once (struct blockmap_pool *pool, int64_t now);

/* ---- The NBD data path: loop.c, conn.c, protocol-*.c, sync.c,
 * listen.c, usage.c, main.c.  Everything below belongs to the files
 * named in each part.
 */

#include <getopt.h>
#include <pthread.h>
#include <sys/uio.h>
#include <liburing.h>

#include "nbd-protocol.h"

/* Limits of the data path (see conn.c for why these values). */
#define PROTO_MIN_BLOCK      512        /* advertised minimum block size */
#define PROTO_PREF_BLOCK     4096       /* advertised preferred size */
#define PROTO_MAX_PAYLOAD    (32 * 1024 * 1024) /* advertised maximum */
#define PROTO_MAX_REQUEST    (64 * 1024 * 1024) /* accepted READ/WRITE */
#define PROTO_MAX_OPTION     (64 * 1024)        /* option data, bytes */
#define PROTO_MAX_OPTIONS    4096       /* options in one handshake */
#define PROTO_MAX_LISTS      16         /* NBD_OPT_LIST in one handshake */
#define PROTO_MAX_DESCRIPTORS (64 * 1024)       /* per BLOCK_STATUS reply */
#define PROTO_META_ALLOCATION_ID 1      /* context id of base:allocation */
#define PROTO_META_CHANGED_ID 2         /* strata:changed:SNAPSHOT */
/* Block status of chunks changed since a snapshot (bit 0: changed). */
#define PROTO_CHANGED_PREFIX "strata:changed:"
#define PROTO_STATE_CHANGED 1

/* ---- usage.c: the synopsis, shared with --help and the POD -------- */

extern const char stratad_synopsis[];   /* server/stratad-synopsis.txt */

/* ---- main.c: the option table -------------------------------------- */

enum {                                  /* long-only options */
  OPT_POOL = 256, OPT_UNIX, OPT_LISTEN, OPT_PORT, OPT_ADMIN_SOCKET,
  OPT_CONFIG, OPT_THREADS, OPT_DEFAULT_EXPORT, OPT_PID_FILE,
  OPT_DUMP_CONFIG, OPT_VERSION, OPT_HELP,
  OPT_DEBUG_FAULT_FILE,
  OPT_DEBUG_CLOCK_FILE,
  OPT_METRICS_LISTEN,
  OPT_MAX_BUFFER_MEMORY,
};

/* ---- main.c: the state every thread shares -------------------------- */

/* Set at start-up before any thread starts, read-only afterwards
 * except STOPPING.
 */
struct server {
  struct blockmap_pool *pool;           /* owned by main */
  const struct config *cfg;             /* owned by main */
  const struct server_opts *opts;
  uint32_t chunk_size;                  /* the pool's */
  int *listen_fds;                      /* NBD listeners, owned by main */
  size_t nlisten;
  struct sync_thread *sync;
  _Atomic bool stopping;                /* SIGTERM/SIGINT seen */
};
extern struct server server;

/* ---- listen.c: listening sockets ------------------------------------ */

struct listen_set {
  int *fds;                     /* NBD listeners, owned */
  size_t n;
  int admin_fd;                 /* -1: none */
  bool activated;               /* fds came from systemd (LISTEN_FDS) */
};

/* Take the sockets passed by systemd (LISTEN_PID/LISTEN_FDS/
 * LISTEN_FDNAMES): the one named "admin" becomes LS->admin_fd, the
 * others NBD listeners.  Returns the number of fds taken (0: not
 * activated) or -errno.
 */
int listen_systemd (struct listen_set *ls);
/* Listen on TCP ADDR:PORT (every address it resolves to). */
int listen_tcp (struct listen_set *ls, const char *addr, int port);
/* Listen on the Unix socket PATH, replacing a stale socket file.
 * Stores the fd in *FD.  -EADDRINUSE if a live server answers there.
 */
int listen_unix (const char *path, int *fd);
void listen_set_free (struct listen_set *ls);

/* ---- sync.c: the thread that makes writes durable ------------------- */

struct loop;
struct sync_thread;

/* A message from another thread to a loop (loop_post). */
struct loop_msg {
  struct loop_msg *next;
  void (*fn) (struct loop_msg *msg);    /* runs on the loop's thread */
};

/* One request for durability.  Group commit: a sync_req is covered by
 * the first blockmap_pool_sync() that STARTS after sync_post() (so it
 * covers every write completed before the post, on any connection).
 * RESULT is then set and MSG posted to LOOP.
 */
struct sync_req {
  struct loop_msg msg;
  struct loop *loop;
  struct sync_req *next;                /* in the sync queue */
  int result;                           /* 0 or -errno */
};

int sync_start (struct blockmap_pool *pool, struct sync_thread **out);
/* Queue SR (any thread; never blocks beyond a short mutex). */
void sync_post (struct sync_thread *st, struct sync_req *sr);
/* Ask for a commit soon without waiting for it (any thread): a write
 * found the pool full of freed chunks that a commit would release.
 */
void sync_kick (struct sync_thread *st);
/* Finish queued requests, then stop and join the thread.  NULL ok. */
void sync_stop (struct sync_thread *st);

/* ---- loop.c: one io_uring event loop per thread --------------------- */

/* Every SQE's user_data points at a uop embedded in its owner; the
 * loop calls CB once per CQE.  Ownership: while the op is in the ring
 * the owner must not be freed (conn.c counts its ops for this).
 */
struct uop {
  void (*cb) (struct uop *op, int res, uint32_t cqe_flags);
};

struct conn;
struct req;

/* ---- bufpool.c: request data buffers ------------------------------- */

/* Reusable data buffers, by power-of-two size class, per loop.  From
 * BUFPOOL_SLAB_MIN_SHIFT up they sit in huge pages (bufpool.c says why).
 */
#define BUFPOOL_MIN_SHIFT 12
#define BUFPOOL_SLAB_MIN_SHIFT 16
#define BUFPOOL_MAX_SHIFT 26
#define BUFPOOL_CACHE_MAX ((size_t) 64 * 1024 * 1024)  /* kept for reuse */
struct bufpool_slab;
struct bufpool {
  void *free[BUFPOOL_MAX_SHIFT + 1];   /* singly linked through word 0 */
  struct bufpool_slab *partial[BUFPOOL_MAX_SHIFT + 1];  /* with room */
  size_t cached;                        /* bytes free for reuse */
  size_t slabs;                         /* slabs mapped */
};

/* A buffer of at least SIZE bytes (4 KiB-aligned; 2 MiB-aligned from
 * 2 MiB); *CAP gets the size to pass back to bufpool_put.  NULL if out
 * of memory or SIZE is over 2^BUFPOOL_MAX_SHIFT.
 */
void *bufpool_get (struct bufpool *bp, size_t size, size_t *cap);
void bufpool_put (struct bufpool *bp, void *buf, size_t cap);
/* Release every cached buffer (the loop is ending). */
void bufpool_clear (struct bufpool *bp);

struct accept_op {
  struct uop op;
  struct uop retry;                     /* timer after an accept error */
  struct __kernel_timespec ts;
  struct loop *loop;
  int fd;                               /* listening socket, borrowed */
  bool armed;
};

#define LOOP_LOCAL_MAX 256              /* local completions per pass */

/* Whether a loop runs small buffered writes itself or hands them to
 * the ring (protocol-transmission.c says why).  Pure: the caller
 * passes CLOCK_MONOTONIC times in nanoseconds.  A write that takes
 * WRITE_GATE_SLOW_NS or more is slow.  Slow writes close the gate once
 * they have held the loop for WRITE_GATE_STALL_NS within one window of
 * WRITE_GATE_WINDOW_NS (the window starts at the first slow write after
 * the last one ended): a single stall of a millisecond or two, which a
 * journal commit or the host taking the CPU away causes every few
 * seconds, is cheaper to sit out than a second of writes through the
 * ring.  Closed, the gate stays so for a back-off period (BACKOFF_MIN,
 * doubling while writes keep being slow, up to BACKOFF_MAX); the
 * first fast write after it resets the period.
 */
#define WRITE_GATE_SLOW_NS (UINT64_C (1000) * 1000)                   /* 1 ms */
#define WRITE_GATE_WINDOW_NS (100 * WRITE_GATE_SLOW_NS)
#define WRITE_GATE_STALL_NS (10 * WRITE_GATE_SLOW_NS)
#define WRITE_GATE_BACKOFF_MIN_NS (UINT64_C (1000) * 1000 * 1000)     /* 1 s */
#define WRITE_GATE_BACKOFF_MAX_NS (64 * WRITE_GATE_BACKOFF_MIN_NS)
struct write_gate {
  uint64_t closed_until;        /* 0: open */
  uint64_t backoff_ns;          /* the next closing's length; 0: MIN */
  uint64_t window_start;        /* the first slow write of the window */
  uint64_t stalled_ns;          /* slow writes' time in it; 0: none */
};
bool write_gate_open (const struct write_gate *g, uint64_t now_ns);
/* A write that started at START_NS took TOOK_NS.  Returns true if
 * that closed the gate.
 */
bool write_gate_record (struct write_gate *g, uint64_t start_ns,
                        uint64_t took_ns);

struct loop {
  unsigned index;
  pthread_t thread;
  struct io_uring ring;
  bool ring_disabled;                   /* created R_DISABLED: the loop
                                           thread enables it */
  int efd;                              /* eventfd: messages, stop */
  uint64_t efd_buf;
  struct uop efd_op;
  unsigned pending;                     /* SQEs posted, CQEs not seen */

  pthread_mutex_t msg_lock;
  struct loop_msg *msgs;                /* protected by msg_lock */

  struct accept_op *accepts;            /* owned, one per listener */
  size_t naccepts;

  struct conn *conns;                   /* every live conn (owner only) */
  unsigned nconns;
  struct conn *dirty;                   /* conns to service after CQEs */

  struct req *parked;                   /* writes waiting on a CoW */
  struct uop park_op;
  struct __kernel_timespec park_ts;
  bool park_armed, cow_committed;

  struct uop tick_op;                   /* housekeeping, LOOP_TICK_SEC */
  struct __kernel_timespec tick_ts;
  struct loop_msg stop_msg;             /* posted by loop_request_stop */
  _Atomic bool stop_posted;
  struct uop stop_op;                   /* bounded wait at shutdown */
  struct __kernel_timespec stop_ts;
  bool stopping, stop_timer_armed, forced;
  bool single;                          /* -s: exit when conns end */

  struct bufpool bufs;
  /* Request buffers of all this loop's conns, against its share of
   * --max-buffer-memory; bytes_paused: some conn waits for it. */
  size_t req_bytes, max_req_bytes;
  bool bytes_paused;
  int direct_fd;                        /* hot data file, O_DIRECT; -1 */
  /* Ops completed without the ring (loop_complete_local), delivered
   * like CQEs at the start of the next pass.
   */
  struct loop_local {
    struct uop *op;
    int res;
  } local[LOOP_LOCAL_MAX];
  unsigned nlocal;
  /* Whether small buffered writes run inline (protocol-transmission.c). */
  struct write_gate wgate;
  struct req *free_reqs;
  unsigned nfree_reqs;
};

int loop_create (unsigned index, struct loop **out);
/* Deliver RES to OP's callback as if a CQE had come for it, at the
 * start of LOOP's next pass (never from inside this call, so the
 * caller's state is consistent when it runs).  For ops the loop did
 * itself (an inline write).  False if the queue is full: use the ring.
 */
bool loop_complete_local (struct loop *loop, struct uop *op, int res);
int loop_start (struct loop *loop);
/* Ask the loop to stop accepting and drain (any thread). */
void loop_request_stop (struct loop *loop);
void loop_join_and_free (struct loop *loop);
/* Post MSG to LOOP from any thread. */
void loop_post (struct loop *loop, struct loop_msg *msg);
/* An SQE of LOOP (owner thread); submits to make room when full. */
struct io_uring_sqe *loop_sqe (struct loop *loop, struct uop *op);
/* Park REQ until a CoW commit (or the next tick) lets it retry. */
void loop_park (struct loop *loop, struct req *req);

/* ---- readahead.c: reading ahead of sequential readers -------------- */

#define RA_MIN_LEN (64 * 1024)          /* smaller READs: not worth it */
#define RA_TRIGGER 3                    /* READs in a row before it starts */
#define RA_MAX_SLOTS 8                  /* read-aheads waiting per conn */
#define RA_MAX_BYTES (8 * 1024 * 1024)  /* ...and their bytes at most */

/* One connection's sequential stream, and the reads made ahead of it.
 * A stream is READs of one length LEN, each starting where the last
 * ended.  Owned by the connection's loop.
 */
struct ra_stream {
  uint64_t next;                /* where the next READ would continue */
  uint32_t len;                 /* the stream's READ length */
  unsigned streak;              /* READs in a row that continued it */
  uint64_t frontier;            /* the end of the last read-ahead */
  struct req *slot[RA_MAX_SLOTS];       /* unclaimed read-aheads, in the
                                           order they were started */
  unsigned nslots;
};

/* Pure parts (unit tested).  Note a READ of LEN bytes at OFF: returns
 * true if it continues the stream, false if it starts a new one (the
 * caller then drops the old stream's read-aheads).
 */
bool ra_stream_note (struct ra_stream *s, uint64_t off, uint32_t len);
/* How many read-aheads of S->len bytes to start now from S->frontier,
 * in a volume of SIZE bytes: none until the stream has RA_TRIGGER
 * READs, then enough to keep RA_MAX_SLOTS (and RA_MAX_BYTES) waiting.
 */
unsigned ra_stream_want (const struct ra_stream *s, uint64_t size);

/* Data path (the connection's loop).  For a READ about to start: if
 * data read ahead covers it exactly and is still current, answer it
 * from there (or once that read finishes) and return true; else
 * return false and the caller reads.  Either way, read further ahead
 * if the stream asks for it.
 */
bool ra_read_start (struct req *req);
/* A read-ahead REQ has finished its I/O. */
void ra_prefetch_done (struct req *req);
/* Forget C's read-aheads (the stream broke, or C is finishing): free
 * those done, let those in flight free themselves when they finish.
 */
void ra_drop (struct conn *c);

/* ---- conn.c: a client connection ------------------------------------ */

/* A reply (or handshake message) queued for sending.  DONE is called
 * once, after it was sent or when the connection drops it.
 */
struct out {
  struct out *next;
  struct iovec *iov;
  unsigned niov;
  void (*done) (struct out *out);
};

enum conn_state {
  CONN_HS_FLAGS,                /* waiting for the client flags */
  CONN_HS_OPTIONS,              /* option haggling */
  CONN_TRANSMISSION,
  CONN_CLOSING,                 /* no more input; free when idle */
};

#define CONN_RBUF_SIZE (128 * 1024)
#define CONN_HANDSHAKE_TIMEOUT 30       /* seconds to reach transmission */
#define CONN_MAX_REQS 128               /* requests in flight */
#define CONN_MAX_HS_QUEUE (1024 * 1024) /* handshake replies queued */
#define CONN_MAX_BYTES (256 * 1024 * 1024) /* request buffers held */
#define CONN_SEND_IOV 64
/* The largest message parsed in place from rbuf (an option with its
 * header, or a WRITE with its payload); bigger WRITE payloads are
 * received straight into the request's buffer.
 */
#define CONN_RBUF_MSG_MAX (CONN_RBUF_SIZE / 2 + 64)

struct conn {
  struct loop *loop;                    /* owner, immutable */
  struct conn *next, *prev;             /* loop->conns */
  struct conn *dirty_next;
  bool dirty;
  uint64_t id;
  uint64_t started;                     /* CLOCK_MONOTONIC seconds */
  int rfd, wfd;                         /* the same socket, except -s */
  bool is_socket;
  enum conn_state state;

  /* Input. */
  char *rbuf;                           /* CONN_RBUF_SIZE, owned */
  size_t rstart, rend;                  /* unparsed bytes */
  struct uop recv_op;
  bool recv_posted;
  struct req *payload_req;              /* WRITE payload read directly */
  uint64_t discard;                     /* input bytes to skip */
  bool eof;

  /* Output: replies in completion order, one send in flight. */
  struct out *sendq, *sendq_tail;
  size_t sendq_bytes;                   /* queued, not yet sent */
  size_t head_sent;                     /* bytes of sendq already sent */
  struct uop send_op;
  bool send_posted;
  struct iovec siov[CONN_SEND_IOV];
  struct msghdr smsg;

  unsigned nreqs;                       /* struct req alive */
  size_t req_bytes;                     /* their buffers */
  bool disc;                            /* NBD_CMD_DISC seen */
  struct uop cancel_op;
  unsigned cancels;

  /* Negotiated in the handshake. */
  uint32_t cflags;
  unsigned noptions, nlists;
  bool structured;
  bool meta_allocation;                 /* base:allocation selected */
  char *meta_export;                    /* ...for this export, owned */
  char *meta_changed;                   /* strata:changed: base snapshot
                                           (VOLUME@SNAP), owned; NULL */
  struct blockmap_volume *changed_base; /* its handle in transmission */
  struct blockmap_volume *vol;          /* owned handle */
  struct ra_stream ra;                  /* readahead.c */
  struct qos_volume *qos;               /* qos.c: budget and metrics,
                                           borrowed, lives until exit */
  char *export_name;                    /* owned */
  uint16_t eflags;
};

/* Seconds on the monotonic clock. */
uint64_t conn_now (void);
/* Make a connection on LOOP for the accepted socket FD (or, with -s,
 * RFD/WFD = stdin/stdout) and start the handshake.
 */
int conn_new (struct loop *loop, int rfd, int wfd);
/* Start closing C: no more input; freed once nothing is in flight. */
void conn_close (struct conn *c);
/* Queue OUT on C's send queue (sent at the end of this loop pass). */
void conn_queue (struct conn *c, struct out *out);
/* Have C parsed and flushed at the end of this loop pass. */
void conn_mark_dirty (struct conn *c);
/* Whether C may start one more request: its own limits, and its
 * loop's share of --max-buffer-memory.  A conn with nothing in flight
 * may always start one, so clients that read their replies progress
 * while others hold the budget.
 */
bool conn_may_take_request (struct conn *c);
/* Count DELTA bytes of request buffer against C and its loop. */
void conn_account_bytes (struct conn *c, ssize_t delta);
void conn_service (struct conn *c);
/* Queue a handshake message: HDR (HDRLEN bytes) then DATA. */
int conn_queue_copy (struct conn *c, const void *hdr, size_t hdrlen,
                     const void *data, size_t datalen);
void conn_maybe_free (struct conn *c);

/* ---- protocol-handshake.c ------------------------------------------- */

/* Queue the greeting on a new connection. */
int proto_greet (struct conn *c);
/* Consume handshake input from C's buffer.  Returns 0 (need more
 * input, or the state changed), or -errno to drop the connection.
 */
int proto_handshake (struct conn *c);
/* Transmission flags for an export. */
uint16_t proto_export_flags (bool structured, bool rotational,
                             bool read_only);
/* Parse an NBD_OPT_INFO/GO body.  Stores the name (not NUL-terminated)
 * and the info requests.  Returns 0 or -EINVAL.
 */
int proto_parse_info_request (const char *data, uint32_t len,
                              const char **name, uint32_t *namelen,
                              const char **reqs, uint16_t *nreqs);

/* ---- qos.c: the part of a request that admission uses -------------- */

struct qos_volume;
struct qos_req {
  struct qos_volume *vol;       /* set at admission; NULL: not admitted */
  uint64_t start_ns;            /* CLOCK_MONOTONIC at admission */
  uint64_t ticket_ops;          /* bucket positions it waits for */
  uint64_t ticket_bytes;
  uint64_t deadline_ns;         /* while queued: when to look again */
  bool queued;                  /* waiting in its loop's qos queue */
};

/* ---- protocol-transmission.c ---------------------------------------- */

/* One NBD request.  Ownership: the connection's parser makes it; it
 * lives while any of its segs is in the ring, while a sync is pending,
 * and while its reply is on the send queue; req_free returns it to
 * the loop's free list.
 */
#define REQ_SEGS 32
enum seg_phase {
  SEG_READ, SEG_WRITE, SEG_ZERO, SEG_COW_READ, SEG_COW_WRITE,
};
struct seg {
  struct uop op;
  struct req *req;
  struct blockmap_run run;
  enum seg_phase phase;
  int fd;
  char *buf;                    /* borrowed from the req, or cowbuf */
  const char *src;              /* bytes to copy in, NULL: zeroes */
  uint64_t file_off;
  size_t len, done;
  bool zero_src;                /* write zeroes from the shared buffer */
  bool direct, no_direct;       /* last op went O_DIRECT; never again */
  char *cowbuf;                 /* owned, from the bufpool */
  size_t cowcap;
  int fault;                    /* fault.c: errno injected into the op */
};

struct piece {                  /* a structured READ reply chunk */
  uint64_t offset;
  uint32_t length;
  bool hole;
};

struct req {
  struct out out;               /* the reply */
  struct conn *conn;
  struct req *next;             /* free list or loop->parked */
  uint16_t flags, type;
  uint64_t cookie, offset;
  uint32_t length;
  int error;                    /* first failure, -errno */
  const char *errmsg;           /* static text for error chunks */

  char *buf;                    /* data, owned, from the bufpool */
  size_t bufcap;
  size_t got;                   /* WRITE payload bytes received */

  uint64_t token;               /* blockmap_io_begin */
  bool io_active;
  bool writing;                 /* blockmap_write_begin held */
  bool wait_write;              /* parked: a snapshot is being taken */
  unsigned pending;             /* segs in the ring */
  uint64_t pos, end;            /* the current range's progress */
  uint64_t ranges[2][2];        /* [start, end) still to do */
  unsigned nranges, cur_range;
  bool skip_holes;              /* zeroing: leave holes alone */
  /* Read-ahead (readahead.c): a READ no client sent, kept until a
   * client READ of the same range claims it.  RA_STAMP: the volume's
   * blockmap_volume_stamp when it began; RA_WAITER: the client READ
   * that claimed it while it was still reading.
   */
  bool prefetch, ra_done, ra_orphan;
  uint64_t ra_stamp;
  struct req *ra_waiter;
  unsigned space_waits;         /* parks waiting for freed space */

  struct piece *pieces;         /* READ structured: owned if != inl */
  unsigned npieces, piececap;
  struct piece pieces_inl[4];

  struct sync_req sync;
  struct qos_req qos;           /* qos.c: admission, throttling, metrics */

  struct iovec *iov;            /* reply vector, owned if != iov_inl */
  struct iovec iov_inl[4];
  char *hdr;                    /* reply headers, owned if != hdr_inl */
  char hdr_inl[160];

  struct seg segs[REQ_SEGS];    /* last: not cleared by req_new */
};

/* Result of checking a request header. */
enum proto_verdict {
  PROTO_OK,
  PROTO_ERROR,                  /* reply with *ERR, skip any payload */
  PROTO_DISCONNECT,             /* the stream cannot be trusted */
};

struct proto_export_state {
  uint64_t size;
  uint16_t eflags;
  bool structured;
  bool meta_allocation;
  bool meta_changed;
};

/* Check request R (fields already in host byte order) against the
 * export.  Pure: no I/O, no allocation.  On PROTO_ERROR stores the
 * -errno in *ERR and a sentence for the client in *MSG.
 */
enum proto_verdict proto_check_request (const struct nbd_request *r,
                                        const struct proto_export_state *e,
                                        int *err, const char **msg);
/* The only place where an errno becomes an NBD error. */
uint32_t proto_errno_to_nbd (int err, uint16_t flags);
/* Parse transmission input of C.  Returns 0 or -errno (drop). */
int proto_transmission (struct conn *c);
/* Start executing REQ (header fields set, payload in place). */
void proto_execute (struct req *req);
/* Retry a parked request (loop.c, after a CoW commit or a tick). */
void proto_retry_parked (struct req *req);
/* Read-ahead's use of the data path (readahead.c): make a READ of LEN
 * bytes at OFF that no client sent (NULL when out of memory), start
 * it, answer client READ REQ with what PREFETCH read (the same range;
 * PREFETCH is freed), or have REQ read for itself after all.
 */
struct req *proto_prefetch_new (struct conn *c, uint64_t off, uint32_t len);
void proto_prefetch_start (struct req *prefetch);
void proto_reply_from (struct req *req, struct req *prefetch);
void proto_read_start (struct req *req);
void req_free (struct req *req);

/* ---- qos.c: token buckets, per-volume budgets and metrics ----------- */

#define QOS_NS_PER_SEC UINT64_C (1000000000)

/* A token bucket.  Tokens are operations or bytes.  The bucket does
 * no locking and reads no clock: the caller passes the time in, so
 * tests drive it with a fake clock (STYLE B.8).
 *
 * It counts in two running totals instead of one level, so that a
 * request can reserve tokens it does not have yet and be told where
 * it stands in line: ISSUED is every token handed out, AVAIL every
 * token produced (never more than ISSUED + BURST).  A request that
 * reserves N gets the ticket ISSUED + N and may start once AVAIL has
 * reached it.  Tickets are handed out in arrival order, so the wait
 * is FIFO by construction, and AVAIL - ISSUED is the level (negative:
 * debt owed by the requests waiting).
 */
struct qos_bucket {
  uint64_t rate;                /* tokens per second; 0 = unlimited */
  uint64_t burst;               /* capacity in tokens */
  uint64_t issued;              /* tokens handed out, running total */
  uint64_t avail;               /* tokens produced, running total */
  uint64_t frac;                /* produced, not yet whole (1e-9 tokens) */
  uint64_t last_ns;             /* time of the last refill */
};

/* Start full: BURST tokens available at NOW_NS. */
void qos_bucket_init (struct qos_bucket *b, uint64_t rate, uint64_t burst,
                      uint64_t now_ns);
/* Take N tokens at NOW_NS if all are there.  Returns 0 if they were
 * taken, else the nanoseconds to wait before trying again (nothing is
 * taken then).  An unlimited bucket always returns 0.
 */
uint64_t qos_bucket_take (struct qos_bucket *b, uint64_t n, uint64_t now_ns);
/* Reserve N tokens at NOW_NS, going into debt if need be, and store
 * the ticket to wait for in *TICKET.  Returns the nanoseconds until
 * the ticket is good at the current rate (0: at once).
 */
uint64_t qos_bucket_reserve (struct qos_bucket *b, uint64_t n,
                             uint64_t now_ns, uint64_t *ticket);
/* Nanoseconds until TICKET is good at NOW_NS and the current rate
 * (0: now).  Tickets of an unlimited bucket are always good.
 */
uint64_t qos_bucket_wait (struct qos_bucket *b, uint64_t ticket,
                          uint64_t now_ns);
/* Change the rate and burst at NOW_NS (tokens produced so far at the
 * old rate are kept; becoming unlimited forgives every debt).
 */
void qos_bucket_set (struct qos_bucket *b, uint64_t rate, uint64_t burst,
                     uint64_t now_ns);
/* AVAIL - ISSUED at NOW_NS: tokens available, negative while in debt. */
int64_t qos_bucket_level (struct qos_bucket *b, uint64_t now_ns);

/* A volume's effective budget: its type's, or what it provisioned. */
struct qos_budget {
  uint64_t iops;                /* 0: unlimited */
  uint64_t throughput;          /* bytes/s, 0: unlimited */
  uint64_t op_size;             /* bytes that count as one operation */
  uint64_t burst;               /* seconds of budget the buckets hold */
};

/* Operations that a request of LEN bytes counts as: one per OP_SIZE
 * bytes or part of it, at least one.
 */
uint64_t qos_op_cost (uint64_t len, uint64_t op_size);

/* Latency histogram: log-linear, 8 buckets per power of two of
 * microseconds (each within 12.5%), from 1 us to about 18 minutes.
 */
#define QOS_HIST_SUB 8
#define QOS_HIST_BUCKETS 224
struct qos_hist {
  uint64_t count;
  uint64_t sum_ns;
  uint64_t b[QOS_HIST_BUCKETS];
};
unsigned qos_hist_index (uint64_t ns);
/* Bounds of bucket I in nanoseconds: [lower, upper). */
uint64_t qos_hist_lower_ns (unsigned i);
uint64_t qos_hist_upper_ns (unsigned i);
void qos_hist_add (struct qos_hist *h, uint64_t ns);
/* The P-quantile (0 < P <= 1) in nanoseconds, interpolated inside its
 * bucket; 0 for an empty histogram.
 */
uint64_t qos_hist_quantile (const struct qos_hist *h, double p);
/* A -= B, bucket by bucket (a window between two snapshots). */
void qos_hist_sub (struct qos_hist *a, const struct qos_hist *b);
void qos_hist_merge (struct qos_hist *a, const struct qos_hist *b);

enum qos_class { QOS_READ, QOS_WRITE, QOS_OTHER, QOS_NCLASS };

/* Alarm rules on a volume's metrics (alarm.c evaluates them). */
enum alarm_metric {
  ALARM_IOPS,                   /* requests per second */
  ALARM_THROUGHPUT,             /* bytes per second */
  ALARM_LATENCY_P99,            /* milliseconds, reads and writes */
  ALARM_THROTTLED,              /* percent of requests that waited */
  ALARM_NMETRICS,
};
struct alarm_rule {
  double above;                 /* raise above this; 0: no rule */
  double clear_below;           /* clear below this (hysteresis) */
  unsigned windows;             /* for this many 1 s windows in a row */
  bool from_type;               /* the volume type's rule, not the volume's */
};
struct alarm_state {
  bool raised;
  unsigned over, under;         /* windows in a row beyond each bound */
};

/* What the metrics, the CLI and the alarms see of one volume. */
struct qos_snapshot {
  char name[BLOCKMAP_NAME_MAX];
  char type[BLOCKMAP_TYPE_MAX];
  uint64_t id;
  uint64_t taken_ns;            /* CLOCK_MONOTONIC */
  struct qos_budget budget;
  uint64_t ops[QOS_NCLASS], bytes[QOS_NCLASS];
  uint64_t readahead_bytes;     /* bytes of READs answered from read-ahead */
  uint64_t errors;
  uint64_t throttled_ns;        /* total time requests waited */
  uint64_t throttled;           /* requests that waited */
  uint64_t in_flight;
  struct qos_hist lat[QOS_NCLASS];
  struct alarm_rule rules[ALARM_NMETRICS];
  bool raised[ALARM_NMETRICS];
};

/* The registry of volumes.  Thread-safe.  An entry lives until
 * qos_stop(), so a connection may keep its pointer.
 */
int qos_start (struct blockmap_pool *pool, const struct config *cfg);
void qos_stop (void);
/* The budget of a volume of type T whose attrs (JSON text, may be
 * NULL) are ATTRS: the type's, raised to what attrs "qos" provisions.
 */
void qos_budget_of (const struct volume_type *t, const char *attrs,
                    struct qos_budget *out);
/* Create or update the entry of volume VI (after create, modify,
 * resize; also at start-up).  A changed budget applies to requests
 * already waiting.  Returns 0 or -ENOMEM.
 */
int qos_volume_sync (const struct config *cfg,
                     const struct blockmap_volume_info *vi);
/* The volume NAME is gone. */
void qos_volume_forget (const char *name);
/* Fill *OUT for volume NAME.  Returns 0 or -ENOENT. */
int qos_volume_snapshot (const char *name, struct qos_snapshot *out);
/* Call FN for each volume (name order not guaranteed), with no lock
 * held.  Stops at FN's first non-zero value and returns it.
 */
int qos_foreach (int (*fn) (void *opaque, struct qos_snapshot *s),
                 void *opaque);
/* Alarm bookkeeping for alarm.c: the states and rules of volume NAME. */
int qos_volume_alarm_state (const char *name, struct alarm_state *states,
                            bool set);

/* Data path (loop threads).  qos_admit() starts a request's
 * accounting and charges its budget; true means it now waits in its
 * loop's queue and qos.c calls proto_execute() again when its tickets
 * are good.  qos_complete() is called when the request is freed.
 */
bool qos_admit (struct req *req);
void qos_complete (struct req *req);
/* REQ was answered from data read ahead (metrics). */
void qos_readahead_hit (const struct req *req);
uint64_t qos_now_ns (void);

/* ---- events.c: the durable, bounded event log ---------------------- */

/* The files: DIR/events.log, rotated to events.log.1 ... events.log.KEEP
 * once it would pass MAX_BYTES.  Each event is one JSON line.
 */
#define EVENTS_DEFAULT_MAX_BYTES (1024 * 1024)
#define EVENTS_DEFAULT_KEEP 4

struct events_log;
/* Open (create) the log in DIR.  BLOCKS.  Returns 0 or -errno. */
int events_log_open (const char *dir, uint64_t max_bytes, unsigned keep,
                     struct events_log **out);
/* Append LINE (no newline) durably (write + fdatasync), rotating first
 * if needed.  BLOCKS.  Returns 0 or -errno.
 */
int events_log_append (struct events_log *log, const char *line);
void events_log_close (struct events_log *log);
/* Call FN with each line of the log in DIR, oldest first.  BLOCKS. */
int events_log_read (const char *dir, unsigned keep,
                     int (*fn) (void *opaque, const char *line),
                     void *opaque);

/* The event thread: appends are queued by any thread (never blocking
 * on I/O) and written and synced by a thread of its own, in batches.
 */
int events_start (const char *dir);
void events_stop (void);
/* Queue an event of TYPE ("volume.created") about VOLUME (NULL: the
 * pool) with a message.  Any thread; never blocks on I/O.
 */
void events_emit (const char *type, const char *volume, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Wait until every event queued before the call is on disk.  BLOCKS. */
void events_flush (void);
/* The directory of the running log, NULL if none. */
const char *events_dir (void);

/* ---- alarm.c: thresholds with hysteresis, and the monitor thread ---- */

/* One evaluation of rule R over one window whose value is VALUE.
 * Returns +1 when the alarm is raised, -1 when it clears, 0 otherwise.
 * Pure.
 */
int alarm_eval (const struct alarm_rule *r, struct alarm_state *s,
                double value);
const char *alarm_metric_name (enum alarm_metric m);
int alarm_metric_parse (const char *name, enum alarm_metric *out);
/* The value of metric M between two snapshots of one volume. */
double alarm_window_value (enum alarm_metric m,
                           const struct qos_snapshot *prev,
                           const struct qos_snapshot *cur);

/* Evaluate every volume's alarms once a second, in a thread of its own,
 * while any volume has a rule (otherwise it sleeps).
 */
int alarm_start (void);
void alarm_stop (void);
/* Rules changed: wake the monitor. */
void alarm_kick (void);

/* ---- metrics.c: Prometheus text format over HTTP -------------------- */

/* Write the metrics of POOL (may be NULL) and every volume to a new
 * buffer in the Prometheus text format (version 0.0.4).  Returns it
 * (caller frees) or NULL when out of memory.
 */
char *metrics_format (struct blockmap_pool *pool, const struct config *cfg);
/* Serve GET /metrics on ADDR ("127.0.0.1:9810", "[::1]:9810") in
 * libmicrohttpd's thread.  Returns 0 or -errno (logged).
 */
int metrics_start (const char *addr, struct blockmap_pool *pool,
                   const struct config *cfg);
void metrics_stop (void);

/* ---- fault.c: --debug-fault-file, a test hook ----------------------- */

/* Turn fault injection on for the rules in FILE (NULL: stay off), and
 * hook the engine's metadata I/O.  Call before the pool is opened and
 * before any thread starts.  Returns 0 or -EINVAL.
 */
int fault_init (const char *file);
/* Tell fault.c which fd is POOL's data file (data-sync, data-resize). */
void fault_set_pool (struct blockmap_pool *pool);
/* Data I/O hooks, one call each in protocol-transmission.c: after SEG's
 * SQE is prepared (may make it fail or write short), and first thing
 * on its completion (returns the result to use instead of RES).
 */
void fault_seg_submit (struct seg *seg, struct io_uring_sqe *sqe);
int fault_seg_complete (const struct seg *seg, int res);
/* The fuzzer's mode (tests/fuzz/fuzz-nbd.c), instead of fault_init:
 * data I/O fails as a script says.  fault_script_init turns it on
 * (before any thread starts); fault_script then sets the script for
 * the I/O to come: one byte per data read or write submitted, in
 * order, whose low three bits are 0-3 (run it), 4 (EIO), 5 (ENOSPC),
 * 6 (a short write; a read runs) or 7 (EDQUOT).  Past the end of the
 * script, or FAULT_SCRIPT_MAX bytes, everything runs.
 */
#define FAULT_SCRIPT_MAX 64
void fault_script_init (void);
void fault_script (const uint8_t *script, size_t len);

#endif /* STRATA_SERVER_INTERNAL_H */
