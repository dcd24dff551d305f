/* tools/strata.h: shared between the .c files of the `strata` CLI.
 *
 * strata.c owns the dispatch table and option parsing; each
 * cmd-NOUN.c implements the commands of one noun; client.c speaks the
 * admin protocol (doc/admin-protocol.md) to stratad.
 */
#ifndef STRATA_TOOLS_STRATA_H
#define STRATA_TOOLS_STRATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Exit codes (STYLE B.11): CSI scripts tell a typo from a refusal. */
#define EXIT_DONE 0
#define EXIT_REFUSED 1
#define EXIT_USAGE 2

#define STRATA_DEFAULT_SOCKET "/run/strata/admin.sock"

/* ---- strata.c: the dispatch table and option parsing ----------------- */

/* An option of one command.  Every command also takes --json,
 * --socket PATH and --help.
 */
struct cmd_opt {
  const char *name;             /* long name, without "--" */
  const char *arg;              /* metavar ("SIZE"), NULL: a flag */
  const char *help;             /* one line for --help */
};

#define CMD_MAX_OPTS 8

struct cli;

struct command {
  const char *noun, *verb;
  const char *summary;          /* one line for --help */
  int min_args, max_args;       /* positional arguments after the verb */
  const char *args_missing;     /* usage message when they are missing */
  struct cmd_opt opts[CMD_MAX_OPTS];    /* ends at name == NULL */
  int (*run) (struct cli *cli);
};

/* One invocation, parsed. */
struct cli {
  const struct command *cmd;
  const char *socket;           /* admin socket path */
  bool json;                    /* --json */
  int argc;                     /* positional arguments after the verb */
  char **argv;
  /* Values of cmd->opts[i], in the order given ("1" for a flag). */
  const char **vals[CMD_MAX_OPTS];
  size_t nvals[CMD_MAX_OPTS];
  int fd;                       /* connection to stratad, -1: none yet */
};

/* The last value of option NAME, or NULL if it was not given. */
const char *cli_opt (const struct cli *cli, const char *name);
/* Every value of the repeatable option NAME; count in *N. */
const char **cli_opt_all (const struct cli *cli, const char *name,
                          size_t *n);

/* Print "strata: MESSAGE" to stderr and return EXIT_USAGE, adding
 * "; try 'strata NOUN VERB --help'".
 */
int cli_usage (const struct cli *cli, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Print "strata: MESSAGE" to stderr and return EXIT_REFUSED. */
int cli_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* ---- client.c: the admin protocol ------------------------------------ */

/* Send OP with ARGS (stolen; NULL: none) to stratad and store the
 * result in *RESULT (caller decrefs).  Connects on first use.  On
 * failure prints the daemon's message (or why it could not be asked)
 * and returns EXIT_REFUSED; returns EXIT_DONE on success.
 */
int client_call (struct cli *cli, const char *op, json_t *args,
                 json_t **result);
void client_close (struct cli *cli);

/* ---- format.c: output ------------------------------------------------ */

/* Print RESULT as indented JSON on stdout. */
void print_json (json_t *result);
/* "10G" for sizes (binary units), into a static rotating buffer. */
const char *fmt_size (uint64_t bytes);
/* "125 MB/s" for rates (decimal units, as EBS). */
const char *fmt_rate (uint64_t bytes_per_sec);
/* LABELS (an object) as "k=v,k2=v2" in key order, or "-" if empty. */
const char *fmt_labels (json_t *labels);
/* Integer field KEY of O as uint64 (0 if absent). */
uint64_t jint (json_t *o, const char *key);
/* String field KEY of O ("" if absent). */
const char *jstr (json_t *o, const char *key);

/* A table printed with aligned columns. */
struct table {
  size_t ncols, nrows;
  char **cells;                 /* owned; nrows * ncols */
};
void table_init (struct table *t, size_t ncols, ...);  /* header names */
void table_add (struct table *t, ...);  /* ncols strings, copied */
void table_print (struct table *t);     /* and free */

/* SECS since the epoch as "2026-01-02T03:04:05Z" (UTC), into a static
 * rotating buffer.
 */
const char *fmt_time (uint64_t secs);

/* Parse "KEY=VALUE" into a new entry of the object OBJ; WHAT names the
 * kind in messages ("tag").  Keys are 1 to 63 characters of
 * [A-Za-z0-9._/-], given once.  Returns 0, or EXIT_USAGE after printing
 * why.
 */
int parse_key_value (struct cli *cli, const char *what, const char *kv,
                     json_t *obj);
/* parse_key_value (CLI, "label", KV, LABELS). */
int parse_label (struct cli *cli, const char *kv, json_t *labels);

/* A snapshot, VOLUME@SNAPSHOT, taken apart. */
struct snap_ref {
  char volume[128];             /* BLOCKMAP_NAME_MAX */
  char name[128];
};
/* Check that NAME is a volume (or snapshot) name by the daemon's rule;
 * WHAT is "volume" or "snapshot".  Returns 0, or EXIT_USAGE after
 * printing why.
 */
int check_name (struct cli *cli, const char *what, const char *name);
/* Take TEXT, "VOLUME@SNAPSHOT", apart into *REF, checking both names.
 * WHAT (an option such as "--from-snapshot", or NULL for an argument)
 * names TEXT in messages.  Returns 0, or EXIT_USAGE after printing why.
 */
int parse_snap_ref (struct cli *cli, const char *what, const char *text,
                    struct snap_ref *ref);
/* Parse a size with units (--size 10G); EXIT_USAGE if not a size. */
int parse_size_opt (struct cli *cli, const char *opt, const char *s,
                    uint64_t *out);

/* ---- cmd-*.c: the commands -------------------------------------------- */

int cmd_pool_init (struct cli *cli);
int cmd_pool_status (struct cli *cli);
int cmd_pool_check (struct cli *cli);
int cmd_volume_create (struct cli *cli);
int cmd_volume_list (struct cli *cli);
int cmd_volume_show (struct cli *cli);
int cmd_volume_resize (struct cli *cli);
int cmd_volume_delete (struct cli *cli);
int cmd_type_list (struct cli *cli);
int cmd_volume_modify (struct cli *cli);
int cmd_volume_status (struct cli *cli);
int cmd_metrics_volume (struct cli *cli);
int cmd_events_list (struct cli *cli);
int cmd_alarm_set (struct cli *cli);
int cmd_alarm_list (struct cli *cli);
int cmd_alarm_clear (struct cli *cli);
int cmd_snapshot_create (struct cli *cli);
int cmd_snapshot_list (struct cli *cli);
int cmd_snapshot_show (struct cli *cli);
int cmd_snapshot_delete (struct cli *cli);
int cmd_snapshot_diff (struct cli *cli);
int cmd_snapshot_policy_set (struct cli *cli);
int cmd_snapshot_policy_show (struct cli *cli);
int cmd_snapshot_policy_list (struct cli *cli);
int cmd_snapshot_policy_clear (struct cli *cli);
/* --iops and --throughput of CLI into ARGS; 0 or EXIT_USAGE. */
int cli_budget_args (struct cli *cli, json_t *args);

#endif /* STRATA_TOOLS_STRATA_H */
