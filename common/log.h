/* common/log.h: one-line messages to stderr, by level and debug topic.
 *
 * Under systemd stderr goes to journald, which adds the time and unit,
 * so a line is just "PROGRAM: LEVEL: message".  Every message should name
 * its volume, connection or peer.
 */
#ifndef STRATA_LOG_H
#define STRATA_LOG_H

#include <stdbool.h>
#include <time.h>

enum log_level { LL_ERROR, LL_WARN, LL_INFO, LL_DEBUG };

/* Debug topics, switched on with  stratad -D blockmap -D proto. */
enum {
  DBG_BLOCKMAP = 1 << 0,
  DBG_PROTO    = 1 << 1,        /* NBD handshake and requests */
  DBG_LOOP     = 1 << 2,        /* event loops, connections */
  DBG_ADMIN    = 1 << 3,
  DBG_JOURNAL  = 1 << 4,
  DBG_QOS      = 1 << 5,
  DBG_REPLICA  = 1 << 6,
  DBG_TIER     = 1 << 7,
};
extern unsigned log_debug_topics;

/* The program name printed at the start of each line ("stratad"). */
void log_set_program (const char *name);

/* Turn on the debug topic NAME ("blockmap", "proto", ..., or "all").
 * Returns 0, or -EINVAL for an unknown topic.
 */
int log_enable_topic (const char *name);

/* Silence (true) or restore every message.  For tests that provoke
 * errors on purpose: unlike redirecting stderr, this keeps the test's
 * own failure reports visible.
 */
void log_set_quiet (bool quiet);

/* The list of topic names, space separated, for --help. */
const char *log_topic_names (void);

/* Writes one line to stderr.  Preserves errno, so
 * log_error ("open %s: %m", path)  works after a failure.
 */
void log_msg (enum log_level level, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

#define log_error(...) log_msg (LL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg (LL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg (LL_INFO, __VA_ARGS__)

/* Arguments are not evaluated unless the topic is on. */
#define log_debug(topic, ...)                                   \
  do {                                                          \
    if (__builtin_expect (log_debug_topics & (topic), 0))       \
      log_msg (LL_DEBUG, __VA_ARGS__);                          \
  } while (0)

/* For errors a client can trigger once per request: at most one line
 * per second from each call site (per thread).
 */
#define log_error_ratelimited(...)                              \
  do {                                                          \
    static _Thread_local time_t last_;                          \
    time_t now_ = time (NULL);                                  \
    if (now_ != last_) {                                        \
      last_ = now_;                                             \
      log_msg (LL_ERROR, __VA_ARGS__);                          \
    }                                                           \
  } while (0)

#endif /* STRATA_LOG_H */
