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

int
blockmap_volume_delete (struct blockmap_pool *pool, const char *name,
                        bool force)
{
  LOCK_FOR_SCOPE (&pool->lock);
  struct blockmap_volume *vol = pool_find_volume (pool, name);
  struct jrec rec = { .type = JREC_VOL_DELETE };

  if (vol == NULL)
    return -ENOENT;
  if (vol->open_count > 0 && !force)
    return -EBUSY;
  rec.vol = vol->id;
  return state_log (pool, &rec);
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
