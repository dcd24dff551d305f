/* server/main.c: stratad, the strata daemon: options, start-up and
 * shutdown.
 *
 * Start-up, in this order, so that a failure is reported before the
 * daemon detaches:
 *   parse options ─▶ [fork; the parent waits for "ready"] ─▶ open the
 *   pool ─▶ load volume types ─▶ listeners (systemd's, TCP, Unix) ─▶
 *   admin socket ─▶ sync thread ─▶ N event loops ─▶ pid file ─▶ ready
 *
 * Shutdown on SIGTERM/SIGINT (or, with -s, when the client leaves):
 * loops stop accepting and reading, answer what is in flight (bounded
 * by loop.c's LOOP_STOP_WAIT_SEC), release their volumes and exit;
 * then one last blockmap_pool_sync, the admin server stops, and the
 * pool is closed clean.  Signals are blocked in every thread and
 * taken with sigwait() here, so no handler runs inside a loop.
 *
 * Exit status: 0 done, 1 failure, 2 bad usage (STYLE B.11).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/units.h"
#include "internal.h"

#define EXIT_USAGE 2

/* The one option table (STYLE B.11); --help prints the synopsis from
 * server/stratad-synopsis.txt, which names every option here.
 */
static const char short_options[] = "fsD:";
static const struct option long_options[] = {
  { "pool",           required_argument, NULL, OPT_POOL },
  { "foreground",     no_argument,       NULL, 'f' },
  { "single",         no_argument,       NULL, 's' },
  { "unix",           required_argument, NULL, OPT_UNIX },
  { "listen",         required_argument, NULL, OPT_LISTEN },
  { "port",           required_argument, NULL, OPT_PORT },
  { "admin-socket",   required_argument, NULL, OPT_ADMIN_SOCKET },
  { "config",         required_argument, NULL, OPT_CONFIG },
  { "threads",        required_argument, NULL, OPT_THREADS },
  { "default-export", required_argument, NULL, OPT_DEFAULT_EXPORT },
  { "pid-file",       required_argument, NULL, OPT_PID_FILE },
  { "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
  { "max-buffer-memory", required_argument, NULL, OPT_MAX_BUFFER_MEMORY },
  { "debug",          required_argument, NULL, 'D' },
  { "debug-fault-file", required_argument, NULL, OPT_DEBUG_FAULT_FILE },
  { "debug-clock-file", required_argument, NULL, OPT_DEBUG_CLOCK_FILE },
  { "dump-config",    no_argument,       NULL, OPT_DUMP_CONFIG },
  { "help",           no_argument,       NULL, OPT_HELP },
  { "version",        no_argument,       NULL, OPT_VERSION },
  { NULL },
};

static int daemon_pipe = -1;

static void usage_error (const char *fmt, ...)
  __attribute__ ((noreturn, format (printf, 1, 2)));

static void
usage_error (const char *fmt, ...)
{
  va_list ap;

  fprintf (stderr, "stratad: ");
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\nTry 'stratad --help'.\n");
  exit (EXIT_USAGE);
}

static void
print_help (void)
{
  printf ("usage:\n%s\n"
          "Serves the volumes of a strata pool over NBD.  Debug topics "
          "for -D:\n  %s\n"
          "See stratad(8) for details.\n",
          stratad_synopsis, log_topic_names ());
}

static long
parse_number (const char *opt, const char *arg, long min, long max)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (arg, &end, 10);
  if (errno || end == arg || *end || v < min || v > max) {
    fprintf (stderr, "stratad: %s: '%s' is not a number from %ld to %ld\n",
             opt, arg, min, max);
    fprintf (stderr, "Try 'stratad --help'.\n");
    exit (EXIT_USAGE);
  }
  return v;
}

static void
dump_config (const struct server_opts *o, const char *debug_topics)
{
  printf ("version=%s\n", STRATA_VERSION);
  printf ("pool=%s\n", o->pool_path ? o->pool_path : "");
  printf ("foreground=%d\n", o->foreground);
  printf ("single=%d\n", o->single);
  printf ("tcp=%d\n", o->tcp);
  printf ("listen=%s\n", o->listen_addr);
  printf ("port=%d\n", o->port);
  printf ("unix=%s\n", o->unix_path ? o->unix_path : "");
  printf ("admin_socket=%s\n", o->admin_path ? o->admin_path : "");
  printf ("config=%s\n", o->config_path ? o->config_path : "");
  printf ("threads=%u\n", o->threads);
  printf ("default_export=%s\n",
          o->default_export ? o->default_export : "");
  printf ("pid_file=%s\n", o->pid_file ? o->pid_file : "");
  printf ("metrics_listen=%s\n",
          o->metrics_listen ? o->metrics_listen : "");
  printf ("max_buffer_memory=%" PRIu64 "\n", o->max_buffer_memory);
  printf ("debug=%s\n", debug_topics);
  printf ("min_block_size=%d\n", PROTO_MIN_BLOCK);
  printf ("preferred_block_size=%d\n", PROTO_PREF_BLOCK);
  printf ("max_payload=%d\n", PROTO_MAX_PAYLOAD);
  printf ("max_request=%d\n", PROTO_MAX_REQUEST);
  printf ("tls=0\n");
}

/* Fork; the parent exits once the child says it is ready (status 0)
 * or dies (status 1), so `stratad ... && next-step` works.
 */
static void
daemonize (void)
{
  int p[2];
  pid_t pid;
  char c;

  if (pipe2 (p, O_CLOEXEC) == -1) {
    fprintf (stderr, "stratad: pipe: %m\n");
    exit (EXIT_FAILURE);
  }
  pid = fork ();
  if (pid == -1) {
    fprintf (stderr, "stratad: fork: %m\n");
    exit (EXIT_FAILURE);
  }
  if (pid > 0) {
    close (p[1]);
    _exit (read (p[0], &c, 1) == 1 && c == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
  }
  close (p[0]);
  setsid ();
  daemon_pipe = p[1];
}

static void
daemon_ready (void)
{
  int fd;

  if (daemon_pipe < 0)
    return;
  fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    dup2 (fd, STDIN_FILENO);
    dup2 (fd, STDOUT_FILENO);
    dup2 (fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
      close (fd);
  }
  if (write (daemon_pipe, "", 1) != 1) {
    /* The parent is gone; nothing to tell. */
  }
  close (daemon_pipe);
  daemon_pipe = -1;
}

static int
write_pid_file (const char *path)
{
  char tmp[PATH_MAX];
  FILE *fp;

  if (snprintf (tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp)
    return -ENAMETOOLONG;
  fp = fopen (tmp, "we");
  if (fp == NULL) {
    log_error ("pid file %s: %m", tmp);
    return -errno;
  }
  fprintf (fp, "%ld\n", (long) getpid ());
  if (fclose (fp) != 0 || rename (tmp, path) == -1) {
    log_error ("pid file %s: %m", path);
    unlink (tmp);
    return -errno;
  }
  return 0;
}

/* With -s, the one connection is made on its loop's thread. */
struct single_msg {
  struct loop_msg msg;          /* first: the message is the struct */
  struct loop *loop;
};

static void
single_conn (struct loop_msg *msg)
{
  struct loop *loop = ((struct single_msg *) msg)->loop;
  int r;

  r = conn_new (loop, STDIN_FILENO, STDOUT_FILENO);
  if (r == 0)
    loop->single = true;        /* from now on: exit when it is gone */
  else {
    errno = -r;
    log_error ("-s: %m");
    kill (getpid (), SIGTERM);
  }
}

int
main (int argc, char *argv[])
{
  struct server_opts opts = { .port = STRATAD_DEFAULT_PORT,
                              .max_buffer_memory =
                                STRATAD_DEFAULT_BUFFER_MEMORY };
  struct listen_set ls = { .admin_fd = -1 };
  struct blockmap_pool_info *pinfo = NULL;
  struct blockmap_pool *pool = NULL;
  struct admin_server *admin = NULL;
  struct config *cfg = NULL;
  struct loop **loops = NULL;
  struct single_msg single_msg;
  char debug_topics[256] = "", err[512], *admin_path_alloc = NULL;
  const char *fault_file = NULL;      /* --debug-fault-file, a test hook */
  const char *clock_file = NULL;      /* --debug-clock-file, a test hook */
  bool listen_given = false, port_given = false, dump = false;
  bool admin_created = false, unix_created = false;
  sigset_t sigs;
  unsigned i, nloops = 0;
  long nproc;
  int *fds;
  int c, r, sig, unix_fd, status = EXIT_FAILURE;

  log_set_program ("stratad");
  while ((c = getopt_long (argc, argv, short_options,
                           long_options, NULL)) != -1) {
    switch (c) {
    case OPT_POOL:           opts.pool_path = optarg; break;
    case 'f':                opts.foreground = true; break;
    case 's':                opts.single = true; break;
    case OPT_UNIX:           opts.unix_path = optarg; break;
    case OPT_LISTEN:         opts.listen_addr = optarg; listen_given = true;
                             break;
    case OPT_PORT:
      opts.port = parse_number ("--port", optarg, 1, 65535);
      port_given = true;
      break;
    case OPT_ADMIN_SOCKET:   opts.admin_path = optarg; break;
    case OPT_CONFIG:         opts.config_path = optarg; break;
    case OPT_THREADS:
      opts.threads = parse_number ("--threads", optarg, 1, 1024);
      break;
    case OPT_DEFAULT_EXPORT: opts.default_export = optarg; break;
    case OPT_PID_FILE:       opts.pid_file = optarg; break;
    case OPT_METRICS_LISTEN: opts.metrics_listen = optarg; break;
    case OPT_MAX_BUFFER_MEMORY:
      if (units_parse_size (optarg, &opts.max_buffer_memory) < 0
          || opts.max_buffer_memory < PROTO_MAX_REQUEST)
        usage_error ("--max-buffer-memory: '%s' is not a size of at least "
                     "64M", optarg);
      break;
    case 'D':
      if (log_enable_topic (optarg) < 0)
        usage_error ("-D: unknown debug topic '%s'", optarg);
      if (strlen (debug_topics) + strlen (optarg) + 2 < sizeof debug_topics) {
        if (debug_topics[0])
          strcat (debug_topics, ",");
        strcat (debug_topics, optarg);
      }
      break;
    case OPT_DEBUG_FAULT_FILE:
      if (*optarg == 0)
        usage_error ("%s", "--debug-fault-file needs a file name");
      fault_file = optarg;
      break;
    case OPT_DEBUG_CLOCK_FILE:
      if (*optarg == 0)
        usage_error ("%s", "--debug-clock-file needs a file name");
      clock_file = optarg;
      break;
    case OPT_DUMP_CONFIG:    dump = true; break;
    case OPT_HELP:           print_help (); exit (EXIT_SUCCESS);
    case OPT_VERSION:        printf ("stratad %s\n", STRATA_VERSION);
                             exit (EXIT_SUCCESS);
    default:
      fprintf (stderr, "Try 'stratad --help'.\n");
      exit (EXIT_USAGE);
    }
  }
  if (optind < argc)
    usage_error ("unexpected argument '%s'", argv[optind]);
  if (opts.listen_addr == NULL)
    opts.listen_addr = "127.0.0.1";   /* no TLS: loopback by default */
  if (opts.threads == 0) {
    nproc = sysconf (_SC_NPROCESSORS_ONLN);
    opts.threads = nproc > 0 ? (nproc > 1024 ? 1024 : nproc) : 1;
  }
  if (opts.admin_path == NULL && opts.pool_path && !opts.single) {
    if (asprintf (&admin_path_alloc, "%s/admin.sock", opts.pool_path) < 0)
      exit (EXIT_FAILURE);
    opts.admin_path = admin_path_alloc;
  }
  /* --unix alone means Unix only; socket activation is checked below. */
  opts.tcp = !opts.single &&
    (listen_given || port_given || opts.unix_path == NULL);
  if (dump) {
    dump_config (&opts, debug_topics);
    exit (EXIT_SUCCESS);
  }
  if (opts.pool_path == NULL)
    usage_error ("%s", "--pool is required");
  if (opts.single && (opts.unix_path || listen_given || port_given))
    usage_error ("%s", "-s serves stdin/stdout: --unix, --listen and "
                 "--port cannot be used with it");

  sigemptyset (&sigs);
  sigaddset (&sigs, SIGTERM);
  sigaddset (&sigs, SIGINT);
  sigaddset (&sigs, SIGHUP);
  pthread_sigmask (SIG_BLOCK, &sigs, NULL);  /* every thread inherits it */
  signal (SIGPIPE, SIG_IGN);

  if (!opts.foreground && !opts.single)
    daemonize ();

  if (fault_init (fault_file) < 0)
    goto out;
  r = blockmap_pool_open (opts.pool_path, &pool);
  if (r < 0) {
    log_error ("cannot open pool %s: %s", opts.pool_path, strerror (-r));
    goto out;
  }
  fault_set_pool (pool);
  pinfo = malloc (sizeof *pinfo);
  if (pinfo == NULL)
    goto out;
  blockmap_pool_info (pool, pinfo);
  r = config_load (opts.config_path, &cfg, err, sizeof err);
  if (r < 0) {
    log_error ("%s", err);
    goto out;
  }

  if (!opts.single) {
    r = listen_systemd (&ls);
    if (r < 0)
      goto out;
    if (ls.activated && !listen_given && !port_given)
      opts.tcp = false;         /* systemd's sockets replace the default */
    if (opts.tcp && listen_tcp (&ls, opts.listen_addr, opts.port) < 0)
      goto out;
    if (opts.unix_path) {
      if (listen_unix (opts.unix_path, &unix_fd) < 0)
        goto out;
      unix_created = true;
      fds = realloc (ls.fds, (ls.n + 1) * sizeof *ls.fds);
      if (fds == NULL) {
        close (unix_fd);
        goto out;
      }
      ls.fds = fds;
      ls.fds[ls.n++] = unix_fd;
    }
  }
  if (ls.admin_fd == -1 && opts.admin_path) {
    r = listen_unix (opts.admin_path, &ls.admin_fd);
    if (r < 0)
      goto out;
    admin_created = true;
  }
  /* Budgets, the event log and alarms (qos.c, events.c, alarm.c). */
  if (qos_start (pool, cfg) < 0
      || (!opts.single && events_start (opts.pool_path) < 0)
      || alarm_start () < 0)
    goto out;
  events_emit ("daemon.started", NULL, "stratad %s serving pool %s%s",
               STRATA_VERSION, opts.pool_path, pinfo->recovered
               ? " (the journal was replayed after an unclean stop)" : "");
  if (opts.metrics_listen
      && metrics_start (opts.metrics_listen, pool, cfg) < 0)
    goto out;

  if (ls.admin_fd >= 0) {
    r = admin_start (pool, cfg, ls.admin_fd, &admin);
    ls.admin_fd = -1;           /* the admin server owns it now */
    if (r < 0) {
      log_error ("cannot start the admin server: %s", strerror (-r));
      goto out;
    }
  }

  server.pool = pool;
  server.cfg = cfg;
  server.opts = &opts;
  server.chunk_size = pinfo->chunk_size;
  server.listen_fds = ls.fds;
  server.nlisten = ls.n;
  r = sync_start (pool, &server.sync);
  if (r < 0)
    goto out;
  if ((r = policy_start (pool, clock_file)) < 0) {
    sync_stop (server.sync);
    server.sync = NULL;
    goto out;
  }

  nloops = opts.single ? 1 : opts.threads;
  loops = calloc (nloops, sizeof *loops);
  if (loops == NULL)
    goto out;
  for (i = 0; i < nloops; i++) {
    r = loop_create (i, &loops[i]);
    if (r < 0) {
      nloops = i;
      goto stop;
    }
    loops[i]->max_req_bytes = opts.max_buffer_memory / nloops;
  }
  if (opts.single) {
    single_msg.msg.fn = single_conn;
    single_msg.loop = loops[0];
    loop_post (loops[0], &single_msg.msg);
  }
  for (i = 0; i < nloops; i++) {
    r = loop_start (loops[i]);
    if (r < 0) {
      log_error ("cannot start event loop %u", i);
      free (loops[i]);        /* XXX leaks the ring; we are exiting */
      nloops = i;
      goto stop;
    }
  }
  if (opts.pid_file && write_pid_file (opts.pid_file) < 0)
    goto stop;

  log_info ("serving pool %s on%s%s%s%s%s%s, %u loop%s", opts.pool_path,
            ls.activated ? " systemd sockets" : "",
            opts.tcp ? " " : "", opts.tcp ? opts.listen_addr : "",
            opts.unix_path ? " " : "", opts.unix_path ? opts.unix_path : "",
            opts.single ? " stdin/stdout" : "", nloops,
            nloops == 1 ? "" : "s");
  daemon_ready ();
  status = EXIT_SUCCESS;

  for (;;) {
    if (sigwait (&sigs, &sig) != 0)
      continue;
    if (sig == SIGTERM || sig == SIGINT)
      break;
  }
  log_debug (DBG_LOOP, "signal %d: shutting down", sig);

 stop:
  server.stopping = true;
  policy_stop ();               /* may be taking a snapshot: needs loops */
  for (i = 0; i < nloops; i++)
    loop_request_stop (loops[i]);
  for (i = 0; i < nloops; i++)
    loop_join_and_free (loops[i]);
  sync_stop (server.sync);
  server.sync = NULL;
  r = blockmap_pool_sync (pool);
  if (r < 0) {
    log_error ("final pool sync failed: %s", strerror (-r));
    status = EXIT_FAILURE;
  }

 out:
  admin_stop (admin);
  metrics_stop ();
  alarm_stop ();
  if (status == EXIT_SUCCESS)
    events_emit ("daemon.stopped", NULL, "stratad stopped");
  events_stop ();
  qos_stop ();
  listen_set_free (&ls);
  if (unix_created)
    unlink (opts.unix_path);
  if (admin_created)
    unlink (opts.admin_path);
  if (opts.pid_file && status == EXIT_SUCCESS)
    unlink (opts.pid_file);
  if (pool && blockmap_pool_close (pool) < 0)
    status = EXIT_FAILURE;
  config_free (cfg);
  free (loops);
  free (pinfo);
  free (admin_path_alloc);
  exit (status);
}
