/* blockmap/volume.c: the volume namespace and volume handles.
 *
 * Each change (create, delete, resize, set attrs) is one journal record
 * through state_log (apply.c); nothing here edits the state directly.
 * A handle is the struct blockmap_volume itself with open_count held;
 * a deleted volume leaves the namespace at once but its struct lives
 * until the last handle is released, answering -ESHUTDOWN meanwhile.
 * Volume ids come from pool->next_vol_id, which the checkpoint keeps,
 * so an id is never reused even after its volume is deleted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

int
blockmap_name_valid (const char *name)
{
  size_t n;

  if (name == NULL)
    return -EINVAL;
  n = strlen (name);
  if (n == 0 || n >= BLOCKMAP_NAME_MAX || name[0] == '.' || name[0] == '-')
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return -EINVAL;
  }
  return 0;
}

void
volume_destroy (struct blockmap_volume *vol)
{
  struct blockmap_pool *pool = vol->pool;

  /* CoWs never committed: their new chunks may have been written. */
  for (size_t i = 0; i < vol->ncows; i++) {
    pool->hot.reserved_chunks--;
    alloc_release (pool, vol->cows[i].new_pchunk, 1, 0);
  }
  rtree_clear (&vol->map);
  free (vol->cows);
  free (vol->attrs);
  free (vol);
}

int
blockmap_volume_create (struct blockmap_pool *pool, const char *name,
                        uint64_t size, const char *type, const char *attrs)
{
  struct jrec rec = { .type = JREC_VOL_CREATE };

  if (name && strlen (name) >= BLOCKMAP_NAME_MAX)
    return -ENAMETOOLONG;
  if (blockmap_name_valid (name) < 0)
    return -EINVAL;
  if (type == NULL || type[0] == '\0')
    return -EINVAL;
  if (strlen (type) >= BLOCKMAP_TYPE_MAX)
    return -ENAMETOOLONG;
  if (attrs && strlen (attrs) >= BLOCKMAP_ATTRS_MAX)
    return -E2BIG;
  rec.name = name;
  rec.vtype = type;
  rec.attrs = attrs ? attrs : "";
  rec.size = size;
  rec.time = time (NULL);

  LOCK_FOR_SCOPE (&pool->lock);
  rec.vol = pool->next_vol_id;
  return state_log (pool, &rec);
}

/* How long a snapshot waits for the writes in flight on its volume. */
#define CLONE_DRAIN_TIMEOUT_NS (UINT64_C (10) * 1000 * 1000 * 1000)

static uint64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Stop new write requests on VOL and wait for those begun to end.
 * Pool lock held on entry and exit (dropped while waiting).  Returns 0
 * (VOL is then frozen: the caller thaws it) or -ETIMEDOUT.
 */
static int
freeze (struct blockmap_pool *pool, struct blockmap_volume *vol)
{
  uint64_t deadline = now_ns () + CLONE_DRAIN_TIMEOUT_NS;

  vol->frozen++;
  while (vol->writers > 0) {
    struct timespec ts = { .tv_nsec = 100 * 1000 };
    if (now_ns () > deadline) {
      vol->frozen--;
      return -ETIMEDOUT;
    }
    pthread_mutex_unlock (&pool->lock);
    nanosleep (&ts, NULL);
    pthread_mutex_lock (&pool->lock);
  }
  return 0;
}

int
blockmap_volume_clone (struct blockmap_pool *pool, const char *src,
                       const char *name, uint64_t size, const char *type,
                       const char *attrs, bool snapshot)
{
  struct jrec rec = { .type = JREC_VOL_CLONE };
  struct blockmap_volume *s;
  bool frozen = false;
  int r;

  if (name == NULL || src == NULL)
    return -EINVAL;
  if (strlen (name) >= BLOCKMAP_NAME_MAX ||
      (type && strlen (type) >= BLOCKMAP_TYPE_MAX))
    return -ENAMETOOLONG;
  if (attrs && strlen (attrs) >= BLOCKMAP_ATTRS_MAX)
    return -E2BIG;

  LOCK_FOR_SCOPE (&pool->lock);
  s = pool_find_volume (pool, src);
  if (s == NULL)
    return -ENOENT;
  rec.src = s->id;
  rec.name = name;
  rec.size = size ? size : s->size;
  rec.vtype = type ? type : s->type;
  rec.attrs = attrs ? attrs : "";
  rec.time = time (NULL);
  rec.flags = snapshot ? JREC_CLONE_SNAPSHOT : 0;
  rec.vol = pool->next_vol_id;
  /* Refuse bad requests before making any writer wait. */
  if ((r = state_check (pool, &rec)) < 0)
    return r;
  if (!s->readonly) {
    /* A snapshot holds every write completed before it and none after:
     * a write in flight could still land in a chunk about to be shared.
     */
    s->open_count++;            /* S stays allocated while we wait */
    r = freeze (pool, s);
    s->open_count--;
    if (s->deleted) {
      if (r == 0)
        s->frozen--;
      if (s->open_count == 0)
        volume_destroy (s);
      return -ENOENT;
    }
    if (r < 0)
      return r;
    frozen = true;
    rec.vol = pool->next_vol_id;
    rec.size = size ? size : s->size;   /* may have grown meanwhile */
  }
  r = state_log (pool, &rec);
  if (frozen)
    s->frozen--;
  return r;
}

int
blockmap_write_begin (struct blockmap_volume *vol)
{
  LOCK_FOR_SCOPE (&vol->pool->lock);

  if (vol->deleted)
    return -ESHUTDOWN;
  if (vol->readonly)
    return -EROFS;
  if (vol->frozen)
    return -EAGAIN;
  vol->writers++;
  return 0;
}

void
blockmap_write_end (struct blockmap_volume *vol)
{
  LOCK_FOR_SCOPE (&vol->pool->lock);

  if (vol->writers > 0)
    vol->writers--;
  atomic_fetch_add (&vol->stamp, 1);
}

int
blockmap_volume_delete (struct blockmap_pool *pool, const char *name,
                        bool force)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct blockmap_volume *vol = pool_find_volume (pool, name);
  struct jrec rec = { .type = JREC_VOL_DELETE };
  int r;

  if (vol == NULL)
    return -ENOENT;
  if (vol->open_count > 0 && !force)
    return -EBUSY;
  rec.vol = vol->id;
  if ((r = state_log (pool, &rec)) < 0)
    return r;
  /* A small map is gone at once, but for what it shared (held back
   * until the delete is durable); a large one is left to the reaper.
   */
  reap_step (pool, BM_REAP_BATCH);
  return 0;
}

int
blockmap_volume_resize (struct blockmap_pool *pool, const char *name,
                        uint64_t size, bool force)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct blockmap_volume *vol = pool_find_volume (pool, name);
  struct jrec rec = { .type = JREC_VOL_RESIZE };

  if (vol == NULL)
    return -ENOENT;
  if (size == vol->size)
    return 0;
  if (size < vol->size && !force)
    return -EPERM;
  rec.vol = vol->id;
  rec.size = size;
  return state_log (pool, &rec);
}

int
blockmap_volume_set_attrs (struct blockmap_pool *pool, const char *name,
                           const char *type, const char *attrs)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct blockmap_volume *vol = pool_find_volume (pool, name);
  struct jrec rec = { .type = JREC_VOL_SET_ATTRS };

  if (vol == NULL)
    return -ENOENT;
  if (type && strlen (type) >= BLOCKMAP_TYPE_MAX)
    return -ENAMETOOLONG;
  if (type == NULL && attrs == NULL)
    return 0;
  rec.vol = vol->id;
  rec.vtype = type;
  rec.attrs = attrs;
  return state_log (pool, &rec);
}

static void
fill_info (const struct blockmap_volume *vol,
           struct blockmap_volume_info *info)
{
  const struct blockmap_pool *pool = vol->pool;

  memset (info, 0, sizeof *info);
  snprintf (info->name, sizeof info->name, "%s", vol->name);
  snprintf (info->type, sizeof info->type, "%s", vol->type);
  snprintf (info->attrs, sizeof info->attrs, "%s", vol->attrs);
  info->id = vol->id;
  info->size = vol->size;
  info->allocated = vol->map.total << pool->chunk_shift;
  info->extents = vol->map.nodes;
  info->created = vol->created;
  info->open_count = vol->open_count;
  info->readonly = vol->readonly;
  info->origin = vol->origin;
}

int
blockmap_volume_info (struct blockmap_pool *pool, const char *name,
                      struct blockmap_volume_info *info)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct blockmap_volume *vol = pool_find_volume (pool, name);

  if (vol == NULL)
    return -ENOENT;
  fill_info (vol, info);
  return 0;
}

int
blockmap_volume_foreach (struct blockmap_pool *pool,
                         int (*fn) (void *opaque,
                                    const struct blockmap_volume_info *),
                         void *opaque)
{
  CLEANUP_FREE struct blockmap_volume_info *infos = NULL;
  size_t n;
  int r = 0;

  {
    LOCK_FOR_SCOPE (&pool->lock);
    n = pool->nvols;
    infos = malloc ((n ? n : 1) * sizeof *infos);
    if (infos == NULL)
      return -ENOMEM;
    for (size_t i = 0; i < n; i++)
      fill_info (pool->by_name[i], &infos[i]);
  }
  for (size_t i = 0; i < n && r == 0; i++)
    r = fn (opaque, &infos[i]);
  return r;
}

int
blockmap_volume_open (struct blockmap_pool *pool, const char *name,
                      struct blockmap_volume **out)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct blockmap_volume *vol = pool_find_volume (pool, name);

  if (vol == NULL)
    return -ENOENT;
  vol->open_count++;
  *out = vol;
  return 0;
}

void
blockmap_volume_release (struct blockmap_volume *vol)
{
  struct blockmap_pool *pool;

  if (vol == NULL)
    return;
  pool = vol->pool;
  LOCK_FOR_SCOPE (&pool->lock);
  if (vol->open_count > 0)
    vol->open_count--;
  if (vol->deleted && vol->open_count == 0)
    volume_destroy (vol);
}

uint64_t
blockmap_volume_stamp (const struct blockmap_volume *vol)
{
  return atomic_load (&vol->stamp);
}

uint64_t
blockmap_volume_size (const struct blockmap_volume *vol)
{
  return atomic_load_explicit (&vol->size, memory_order_relaxed);
}

const char *
blockmap_volume_name (const struct blockmap_volume *vol)
{
  return vol->name;
}

struct blockmap_pool *
blockmap_volume_pool (const struct blockmap_volume *vol)
{
  return vol->pool;
}
