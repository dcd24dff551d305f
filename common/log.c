/* common/log.c: see log.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

unsigned log_debug_topics;
static const char *program = "strata";
static _Atomic bool quiet;

static const struct {
  const char *name;
  unsigned bit;
} topics[] = {
  { "blockmap", DBG_BLOCKMAP }, { "proto", DBG_PROTO },
  { "loop", DBG_LOOP },         { "admin", DBG_ADMIN },
  { "journal", DBG_JOURNAL },   { "qos", DBG_QOS },
  { "replica", DBG_REPLICA },   { "tier", DBG_TIER },
};

void
log_set_quiet (bool on)
{
  quiet = on;
}

void
log_set_program (const char *name)
{
  program = name;
}

int
log_enable_topic (const char *name)
{
  size_t i;

  if (strcmp (name, "all") == 0) {
    log_debug_topics = ~0u;
    return 0;
  }
  for (i = 0; i < sizeof topics / sizeof topics[0]; i++)
    if (strcmp (name, topics[i].name) == 0) {
      log_debug_topics |= topics[i].bit;
      return 0;
    }
  return -EINVAL;
}

const char *
log_topic_names (void)
{
  return "blockmap proto loop admin journal qos replica tier all";
}

void
log_msg (enum log_level level, const char *fmt, ...)
{
  static const char *names[] = { "error", "warning", "info", "debug" };
  int saved = errno;
  char line[1024];
  va_list ap;
  int n;

  if (quiet)
    return;
  n = snprintf (line, sizeof line, "%s: %s: ", program, names[level]);
  va_start (ap, fmt);
  errno = saved;                /* so %m in FMT sees the caller's errno */
  vsnprintf (line + n, sizeof line - n, fmt, ap);
  va_end (ap);
  /* One write per line keeps lines from different threads whole. */
  fprintf (stderr, "%s\n", line);
  errno = saved;
}
