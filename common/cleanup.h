/* common/cleanup.h: scope-bound cleanup for locals.  GCC/Clang only.
 *
 * A local declared CLEANUP_FREE or CLEANUP_CLOSE is released when it
 * goes out of scope; TAKE_PTR / TAKE_FD hand it on without releasing.
 * LOCK_FOR_SCOPE holds a mutex until the end of the enclosing block.
 */
#ifndef STRATA_CLEANUP_H
#define STRATA_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_free_ (void *p) { free (*(void **) p); }
static inline void cleanup_close_ (int *fd) { if (*fd >= 0) close (*fd); }
static inline void
cleanup_unlock_ (pthread_mutex_t **m)
{
  if (*m && pthread_mutex_unlock (*m) != 0)
    abort ();
}
static inline pthread_mutex_t *
lock_or_abort_ (pthread_mutex_t *m)
{
  if (pthread_mutex_lock (m) != 0)
    abort ();                   /* EDEADLK etc. are bugs, not errors */
  return m;
}

#define CLEANUP_FREE  __attribute__ ((cleanup (cleanup_free_)))
#define CLEANUP_CLOSE __attribute__ ((cleanup (cleanup_close_)))

/* Hand a resource to someone else: the local is reset so its cleanup
 * does nothing, and the old value is returned.
 */
#define TAKE_PTR(p) ({ __typeof__ (p) p_ = (p); (p) = NULL; p_; })
#define TAKE_FD(fd) ({ int fd_ = (fd); (fd) = -1; fd_; })

#define CONCAT_(a, b) a##b
#define CONCAT(a, b) CONCAT_ (a, b)
#define LOCK_FOR_SCOPE(mutex)                                       \
  __attribute__ ((cleanup (cleanup_unlock_), unused))               \
  pthread_mutex_t *CONCAT (scope_lock_, __COUNTER__) =              \
    lock_or_abort_ (mutex)

#endif /* STRATA_CLEANUP_H */
