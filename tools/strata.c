/* tools/strata.c: the admin CLI's entry point and dispatch table.
 *
 *   strata [--socket PATH] [--json] NOUN VERB [ARGS] [OPTIONS]
 *
 * A verb may be two words ("snapshot policy set"); the first is then a
 * group, which --help lists like a noun ("strata snapshot policy
 * --help").
 *
 * One table (commands[]) names every command, its arguments and its
 * options; the parser, the usage messages and --help are all generated
 * from it, and --help prints the SYNOPSIS text the man page carries
 * (tools/strata-synopsis.txt, embedded at build time), so the three
 * cannot drift apart (STYLE B.11).  Exit codes: 0 done, 1 refused or
 * failed, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "strata.h"
#include "strata-synopsis.h"

static const struct command commands[] = {
  { "pool", "init", "Create a new, empty pool in PATH (offline: stratad "
    "must not be using it).", 1, 1, "pool init needs PATH",
    { { "chunk-size", "SIZE", "allocation and copy-on-write unit, a power "
        "of two from 4K to 16M (default 64K)" },
      { "size", "SIZE", "capacity of the hot tier (default: the free space "
        "of the file system)" } },
    cmd_pool_init },
  { "pool", "status", "Show the pool's capacity, usage and state.", 0, 0,
    NULL, { { NULL } }, cmd_pool_status },
  { "pool", "check", "Cross-check the pool's maps, reference counts and "
    "allocator; exit 1 if any problem is found.", 0, 0, NULL,
    { { "pool", "PATH", "check the pool at PATH directly, without stratad "
        "(refused while stratad holds it)" } },
    cmd_pool_check },
  { "volume", "create", "Create a thin-provisioned volume, empty or as a "
    "writable copy of a snapshot.", 1, 1,
    "volume create needs NAME and --size or --from-snapshot",
    { { "size", "SIZE", "size with units, e.g. 10G (a multiple of 4K); "
        "with --from-snapshot, default the snapshot's size" },
      { "from-snapshot", "VOLUME@SNAPSHOT", "start as a writable copy of "
        "the snapshot, sharing its space until written" },
      { "type", "TYPE", "volume type (default ssd, or the snapshot's; see "
        "'strata type list')" },
      { "label", "KEY=VALUE", "attach a label (repeatable)" },
      { "iops", "N", "provision N IOPS (within the type's maximum)" },
      { "throughput", "RATE", "provision RATE bytes/s, e.g. 250MB "
        "(decimal units)" } },
    cmd_volume_create },
  { "volume", "list", "List volumes in name order.", 0, 0, NULL,
    { { "label", "KEY=VALUE", "only volumes carrying this label "
        "(repeatable: all must match)" } },
    cmd_volume_list },
  { "volume", "show", "Show one volume.", 1, 1, "volume show needs NAME",
    { { NULL } }, cmd_volume_show },
  { "volume", "resize", "Grow or (with --force) shrink a volume.", 1, 1,
    "volume resize needs NAME and --size",
    { { "size", "[+]SIZE", "the new size, or +SIZE to grow by SIZE" },
      { "force", NULL, "allow shrinking (refused if the cut range holds "
        "data)" } },
    cmd_volume_resize },
  { "volume", "delete", "Delete a volume and free its space.", 1, 1,
    "volume delete needs NAME",
    { { "force", NULL, "delete even while clients are attached (their "
        "requests then fail)" } },
    cmd_volume_delete },
  { "volume", "modify", "Change a volume's budget or type online (clients "
    "stay attached).", 1, 1, "volume modify needs NAME",
    { { "iops", "N", "provision N IOPS (within the type's maximum)" },
      { "throughput", "RATE", "provision RATE bytes/s, e.g. 250MB" },
      { "type", "TYPE", "move the volume to volume type TYPE" } },
    cmd_volume_modify },
  { "volume", "status", "Show a volume's budget, traffic, latency and "
    "alarms.", 1, 1, "volume status needs NAME", { { NULL } },
    cmd_volume_status },
  { "snapshot", "create", "Take a read-only snapshot of a volume as it is "
    "now.", 1, 2, "snapshot create needs VOLUME and NAME (or VOLUME@NAME)",
    { { "tag", "KEY=VALUE", "attach a tag (repeatable)" } },
    cmd_snapshot_create },
  { "snapshot", "list", "List snapshots, by volume, oldest first.", 0, 1,
    NULL, { { NULL } }, cmd_snapshot_list },
  { "snapshot", "show", "Show one snapshot.", 1, 2,
    "snapshot show needs VOLUME@SNAPSHOT", { { NULL } }, cmd_snapshot_show },
  { "snapshot", "delete", "Delete a snapshot and free the space only it "
    "holds.", 1, 2, "snapshot delete needs VOLUME@SNAPSHOT",
    { { "force", NULL, "delete even while clients are attached to the "
        "snapshot (their requests then fail)" } },
    cmd_snapshot_delete },
  { "snapshot", "diff", "List the byte ranges that differ between a "
    "snapshot and a later one or the volume now.", 2, 2,
    "snapshot diff needs VOLUME@SNAPSHOT, then VOLUME@SNAPSHOT or VOLUME",
    { { NULL } }, cmd_snapshot_diff },
  { "snapshot", "policy set", "Snapshot a volume on a schedule, and "
    "remove the policy's old snapshots.", 1, 1,
    "snapshot policy set needs VOLUME and --schedule",
    { { "schedule", "CRON", "when, in UTC: five cron fields (minute hour "
        "day-of-month month day-of-week) or @hourly, @daily, ..." },
      { "keep-count", "N", "keep only the N newest snapshots the policy "
        "took" },
      { "keep-age", "DURATION", "remove the policy's snapshots older than "
        "DURATION, e.g. 7d, 12h, 2w" },
      { "tag", "KEY=VALUE", "tag each snapshot the policy takes "
        "(repeatable)" } },
    cmd_snapshot_policy_set },
  { "snapshot", "policy show", "Show a volume's snapshot policy and its "
    "next run.", 1, 1, "snapshot policy show needs VOLUME", { { NULL } },
    cmd_snapshot_policy_show },
  { "snapshot", "policy list", "List the volumes' snapshot policies.", 0, 0,
    NULL, { { NULL } }, cmd_snapshot_policy_list },
  { "snapshot", "policy clear", "Remove a volume's snapshot policy (the "
    "snapshots it took stay).", 1, 1, "snapshot policy clear needs VOLUME",
    { { NULL } }, cmd_snapshot_policy_clear },
  { "type", "list", "List the volume types and their budgets.", 0, 0, NULL,
    { { NULL } }, cmd_type_list },
  { "metrics", "volume", "Show a volume's counters, or watch its rates.",
    1, 1, "metrics volume needs NAME",
    { { "watch", NULL, "print rates every interval until interrupted" },
      { "interval", "SECONDS", "with --watch: seconds between lines "
        "(default 1)" },
      { "count", "N", "with --watch: stop after N lines" } },
    cmd_metrics_volume },
  { "events", "list", "List events (volume lifecycle, alarms, errors), "
    "oldest first.", 0, 0, NULL,
    { { "volume", "NAME", "only events of this volume" },
      { "type", "TYPE", "only events of this type, e.g. alarm or "
        "volume.created" },
      { "since", "TIME", "only events since TIME: epoch seconds, "
        "2026-01-02T03:04:05Z, or an age such as 10m, 2h, 7d" },
      { "limit", "N", "only the newest N events" } },
    cmd_events_list },
  { "alarm", "set", "Raise an event when a volume's metric stays above a "
    "threshold.", 1, 1, "alarm set needs VOLUME, --metric and --above",
    { { "metric", "METRIC", "iops, throughput (bytes/s), latency_p99 (ms) "
        "or throttled (percent of requests)" },
      { "above", "X", "raise when the metric is above X" },
      { "clear-below", "Y", "clear when it is below Y (default 80% of X)" },
      { "for", "N", "... for N one-second windows in a row (default 2)" } },
    cmd_alarm_set },
  { "alarm", "list", "List alarm rules and their state.", 0, 1, NULL,
    { { NULL } }, cmd_alarm_list },
  { "alarm", "clear", "Remove a volume's own alarm on a metric.", 1, 1,
    "alarm clear needs VOLUME and --metric",
    { { "metric", "METRIC", "the metric whose rule to remove" } },
    cmd_alarm_clear },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Options every command takes. */
static const struct cmd_opt common_opts[] = {
  { "json", NULL, "print machine-readable JSON" },
  { "socket", "PATH", "stratad's admin socket (default $STRATA_SOCKET, "
    "else " STRATA_DEFAULT_SOCKET ")" },
  { "help", NULL, "show this help" },
};
#define NCOMMON (sizeof common_opts / sizeof common_opts[0])

static const char *
default_socket (void)
{
  const char *s = getenv ("STRATA_SOCKET");

  return s && *s ? s : STRATA_DEFAULT_SOCKET;
}

/* ---- Help, generated from the table ----------------------------------- */

static void
print_opt (const struct cmd_opt *o)
{
  char left[64];

  snprintf (left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "",
            o->arg ? o->arg : "");
  printf ("  %-22s %s\n", left, o->help);
}

/* The synopsis lines starting with PREFIX ("strata volume create "). */
static void
print_synopsis (const char *prefix, const char *lead)
{
  const char *p = strata_synopsis;

  while (*p) {
    const char *nl = strchr (p, '\n');
    size_t len = nl ? (size_t) (nl - p) : strlen (p);

    if (prefix == NULL || strncmp (p, prefix, strlen (prefix)) == 0) {
      printf ("%s%.*s\n", lead, (int) len, p);
      lead = prefix ? "       " : lead;
    }
    p += len + (nl != NULL);
  }
}

static void
global_help (void)
{
  const char *noun = NULL;
  size_t i, j;

  printf ("strata: administer a strata block-storage server (stratad)\n\n"
          "Usage:\n");
  print_synopsis (NULL, "  ");
  printf ("\nCommands:\n");
  for (i = 0; i < NCOMMANDS; i++) {
    char name[64];

    if (noun && strcmp (noun, commands[i].noun) != 0)
      printf ("\n");
    noun = commands[i].noun;
    snprintf (name, sizeof name, "%s %s", commands[i].noun,
              commands[i].verb);
    printf ("  %-21s %s\n", name, commands[i].summary);
    for (j = 0; commands[i].opts[j].name; j++) {
      char left[64];

      snprintf (left, sizeof left, "--%s%s%s", commands[i].opts[j].name,
                commands[i].opts[j].arg ? " " : "",
                commands[i].opts[j].arg ? commands[i].opts[j].arg : "");
      printf ("    %-22s %s\n", left, commands[i].opts[j].help);
    }
  }
  printf ("\nOptions for every command:\n");
  for (i = 0; i < NCOMMON; i++)
    print_opt (&common_opts[i]);
  printf ("  %-22s %s\n", "--version", "print the version and exit");
  printf ("\nExit status: 0 done, 1 refused or failed, 2 bad usage.\n"
          "Run 'strata NOUN VERB --help' for one command.  "
          "See strata(8).\n");
}

static void
command_help (const struct command *c)
{
  char prefix[64];
  size_t i;

  snprintf (prefix, sizeof prefix, "strata %s %s ", c->noun, c->verb);
  print_synopsis (prefix, "usage: ");
  printf ("\n%s\n\nOptions:\n", c->summary);
  for (i = 0; c->opts[i].name; i++)
    print_opt (&c->opts[i]);
  for (i = 0; i < NCOMMON; i++)
    print_opt (&common_opts[i]);
}

/* ---- Errors ----------------------------------------------------------- */

int
cli_usage (const struct cli *cli, const char *fmt, ...)
{
  va_list ap;

  fputs ("strata: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  if (cli && cli->cmd)
    fprintf (stderr, "; try 'strata %s %s --help'\n", cli->cmd->noun,
             cli->cmd->verb);
  else
    fprintf (stderr, "; try 'strata --help'\n");
  return EXIT_USAGE;
}

int
cli_fail (const char *fmt, ...)
{
  va_list ap;

  fputs ("strata: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  return EXIT_REFUSED;
}

/* ---- Parsing ---------------------------------------------------------- */

static int
opt_index (const struct command *c, const char *name)
{
  int i;

  for (i = 0; c->opts[i].name; i++)
    if (strcmp (c->opts[i].name, name) == 0)
      return i;
  return -1;
}

const char *
cli_opt (const struct cli *cli, const char *name)
{
  int i = opt_index (cli->cmd, name);

  if (i < 0 || cli->nvals[i] == 0)
    return NULL;
  return cli->vals[i][cli->nvals[i] - 1];
}

const char **
cli_opt_all (const struct cli *cli, const char *name, size_t *n)
{
  int i = opt_index (cli->cmd, name);

  *n = i < 0 ? 0 : cli->nvals[i];
  return i < 0 ? NULL : cli->vals[i];
}

enum { OPT_JSON = CHAR_MAX + 1, OPT_SOCKET, OPT_HELP, OPT_CMD };

/* The escaped argument that P marks (P is &MARKS[i]), or P itself. */
static char *
unmark (const char *p, const char *marks, int nesc, char **esc)
{
  int i;

  for (i = 0; i < nesc; i++)
    if (p == &marks[i])
      return esc[i];
  return (char *) p;
}

/* Parse the command's arguments: ARGV[0] is the verb. */
static int
parse_command (struct cli *cli, int argc, char **argv, bool *help)
{
  const struct command *c = cli->cmd;
  struct option longopts[CMD_MAX_OPTS + NCOMMON + 1];
  CLEANUP_FREE char **esc = NULL;
  CLEANUP_FREE char *marks = NULL;
  size_t n = 0, i, k;
  int ch, nesc = 0, a;

  for (i = 0; c->opts[i].name; i++)
    longopts[n++] = (struct option) {
      c->opts[i].name, c->opts[i].arg ? required_argument : no_argument,
      NULL, OPT_CMD + (int) i };
  longopts[n++] = (struct option) { "json", no_argument, NULL, OPT_JSON };
  longopts[n++] = (struct option) { "socket", required_argument, NULL,
                                    OPT_SOCKET };
  longopts[n++] = (struct option) { "help", no_argument, NULL, OPT_HELP };
  longopts[n] = (struct option) { 0 };

  /* "--" makes the one argument after it positional (a name starting
   * with '-' reaches the daemon, which says why it is refused), and
   * options may still follow: commands take at most two positionals,
   * so the usual "everything after -- is positional" would only invite
   * errors.  Each escaped argument is replaced by a mark of its own, an
   * empty string (which getopt leaves in place, as a positional, in
   * order), and put back after getopt has run.
   */
  esc = malloc (argc * sizeof *esc);
  marks = calloc (argc, 1);
  if (esc == NULL || marks == NULL)
    return cli_fail ("out of memory");
  {
    int j = 1;

    for (a = 1; a < argc; a++) {
      if (strcmp (argv[a], "--") == 0 && a + 1 < argc) {
        esc[nesc] = argv[++a];
        argv[j++] = &marks[nesc++];
      }
      else if (strcmp (argv[a], "--") != 0)
        argv[j++] = argv[a];
    }
    argv[j] = NULL;
    argc = j;
  }

  optind = 0;                   /* reinitialise getopt */
  opterr = 0;
  while ((ch = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case OPT_JSON: cli->json = true; break;
    case OPT_SOCKET: cli->socket = optarg; break;
    case OPT_HELP: case 'h': *help = true; return 0;
    case '?':                   /* opterr = 0: we say what was wrong */
      if (optopt >= OPT_JSON)
        return cli_usage (cli, "option '%s' needs a value",
                          argv[optind - 1]);
      if (optopt != 0)
        return cli_usage (cli, "unknown option '-%c'", optopt);
      return cli_usage (cli, "unknown option '%s'", argv[optind - 1]);
    default:
      i = ch - OPT_CMD;
      {
        const char **v = realloc (cli->vals[i],
                                  (cli->nvals[i] + 1) * sizeof *v);
        if (v == NULL)
          return cli_fail ("out of memory");
        cli->vals[i] = v;
      }
      cli->vals[i][cli->nvals[i]++] = optarg ? optarg : "1";
      break;
    }
  }
  /* Put the escaped arguments back where their marks ended up: among
   * the positionals, which getopt has moved to the end, or as the value
   * of an option ("--size -- -1").
   */
  for (a = 0; a < argc; a++)
    argv[a] = unmark (argv[a], marks, nesc, esc);
  for (i = 0; i < CMD_MAX_OPTS; i++)
    for (k = 0; k < cli->nvals[i]; k++)
      cli->vals[i][k] = unmark (cli->vals[i][k], marks, nesc, esc);
  cli->argc = argc - optind;
  cli->argv = argv + optind;
  if (cli->argc < c->min_args)
    return cli_usage (cli, "%s", c->args_missing);
  if (cli->argc > c->max_args)
    return cli_usage (cli, "%s %s: unexpected argument '%s'", c->noun,
                      c->verb, cli->argv[c->max_args]);
  return 0;
}

/* The command named by WORDS[0..N): the noun, then the verb's words
 * ("snapshot" "policy" "set").  Stores in *USED how many words it took.
 */
static const struct command *
find_command (int n, char **words, int *used)
{
  size_t i;

  for (i = 0; i < NCOMMANDS; i++) {
    const char *v = commands[i].verb;
    int w = 1;

    if (strcmp (commands[i].noun, words[0]) != 0)
      continue;
    while (*v) {
      size_t len = strcspn (v, " ");

      if (w == n || strlen (words[w]) != len
          || strncmp (words[w], v, len) != 0)
        break;
      w++;
      v += len;
      v += *v == ' ';
    }
    if (*v == '\0') {
      *used = w;
      return &commands[i];
    }
  }
  return NULL;
}

/* How many of WORDS[0..N) name a noun (1), or a noun and a group of
 * verbs (2: "snapshot policy"); 0 if the first is no noun.
 */
static int
known_words (int n, char **words)
{
  size_t i;
  int best = 0;

  for (i = 0; i < NCOMMANDS; i++) {
    const char *v = commands[i].verb, *sp = strchr (v, ' ');

    if (strcmp (commands[i].noun, words[0]) != 0)
      continue;
    if (best < 1)
      best = 1;
    if (sp && n > 1 && strlen (words[1]) == (size_t) (sp - v)
        && strncmp (words[1], v, sp - v) == 0)
      best = 2;
  }
  return best;
}

/* WORDS[0..N) joined by blanks into BUF. */
static const char *
join_words (char *buf, size_t len, int n, char **words)
{
  size_t off = 0;
  int w;

  buf[0] = '\0';
  for (w = 0; w < n && off < len; w++)
    off += snprintf (buf + off, len - off, "%s%s", w ? " " : "", words[w]);
  return buf;
}

/* "strata volume", "strata snapshot policy --help", "strata volume
 * explode": a noun or group without a verb of its own (with --help, its
 * commands' synopses), or an unknown command.  WORDS[0..N) are the
 * arguments from the noun on.
 */
static int
no_command (int n, char **words, bool help)
{
  int nk = known_words (n, words), w;
  char name[256], full[64];
  size_t k, len;

  if (nk > 0 && (nk == n || words[nk][0] == '-')) {
    join_words (name, sizeof name, nk, words);
    if (!help && nk < n)
      help = strcmp (words[nk], "--help") == 0
        || strcmp (words[nk], "-h") == 0;
    if (!help)
      return cli_usage (NULL, "'%s' needs a command", name);
    len = strlen (name);
    for (k = 0; k < NCOMMANDS; k++) {
      snprintf (full, sizeof full, "%s %s ", commands[k].noun,
                commands[k].verb);
      if (strncmp (full, name, len) == 0 && full[len] == ' ') {
        char prefix[80];

        snprintf (prefix, sizeof prefix, "strata %s", full);
        print_synopsis (prefix, "usage: ");
      }
    }
    return EXIT_DONE;
  }
  /* The words known, the first that is not, and at least two. */
  for (w = 0; w < n && w < (nk + 1 > 2 ? nk + 1 : 2); w++)
    if (words[w][0] == '-')
      break;
  return cli_usage (NULL, "unknown command '%s'",
                    join_words (name, sizeof name, w, words));
}

/* Arguments go to the daemon as JSON strings, which must be UTF-8:
 * refuse others here, once, with their name, rather than let each
 * command send a request without them.  pool init and an offline pool
 * check take a file name, which need not be text.
 */
static int
check_text (struct cli *cli)
{
  bool offline = strcmp (cli->cmd->noun, "pool") == 0
    && (strcmp (cli->cmd->verb, "init") == 0 || cli_opt (cli, "pool"));
  json_t *s;
  int i, k;

  if (offline)
    return 0;
  for (i = 0; i < cli->argc; i++) {
    if ((s = json_string (cli->argv[i])) == NULL)
      return cli_usage (cli, "'%s' is not UTF-8 text", cli->argv[i]);
    json_decref (s);
  }
  for (k = 0; k < CMD_MAX_OPTS; k++)
    for (i = 0; i < (int) cli->nvals[k]; i++) {
      if ((s = json_string (cli->vals[k][i])) == NULL)
        return cli_usage (cli, "'%s' is not UTF-8 text", cli->vals[k][i]);
      json_decref (s);
    }
  return 0;
}

int
main (int argc, char *argv[])
{
  struct cli cli = { .socket = default_socket (), .fd = -1 };
  bool help = false;
  int i, r, used;
  size_t k;

  log_set_program ("strata");

  /* Global options, before the noun. */
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];

    if (strcmp (a, "--") == 0) {
      i++;
      break;
    }
    else if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
      help = true;
    else if (strcmp (a, "--version") == 0 || strcmp (a, "-V") == 0) {
      printf ("strata %s\n", STRATA_VERSION);
      return EXIT_DONE;
    }
    else if (strcmp (a, "--json") == 0)
      cli.json = true;
    else if (strcmp (a, "--socket") == 0) {
      if (i + 1 == argc)
        return cli_usage (NULL, "option '--socket' needs a value");
      cli.socket = argv[++i];
    }
    else if (strncmp (a, "--socket=", 9) == 0)
      cli.socket = a + 9;
    else
      return cli_usage (NULL, "unknown option '%s'", a);
  }

  if (i == argc) {
    if (help) {
      global_help ();
      return EXIT_DONE;
    }
    return cli_usage (NULL, "no command given");
  }
  cli.cmd = find_command (argc - i, argv + i, &used);
  if (cli.cmd == NULL)
    return no_command (argc - i, argv + i, help);
  /* The command's arguments start at the last word of its verb.  From
   * here on the option values are allocated: every path out goes
   * through the frees below (LeakSanitizer runs the CLI tests too). */
  i += used - 1;
  r = parse_command (&cli, argc - i, argv + i, &help);
  if (r == 0 && help) {
    command_help (cli.cmd);
    r = EXIT_DONE;
  }
  else if (r == 0 && (r = check_text (&cli)) == 0) {
    r = cli.cmd->run (&cli);
    client_close (&cli);
  }
  for (k = 0; k < CMD_MAX_OPTS; k++)
    free (cli.vals[k]);
  if (fflush (stdout) != 0 && r == EXIT_DONE)
    return cli_fail ("cannot write the output: %m");
  return r;
}
