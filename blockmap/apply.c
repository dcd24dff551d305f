/* blockmap/apply.c: the one function that changes the pool's state.
 *
 * Every metadata change is a journal record (journal.c), and every
 * record goes through state_check then state_apply, both at run time
 * (state_log: check, number, buffer, apply) and at replay:
 *
 *   runtime:  request ─▶ struct jrec ─▶ state_log ─┬▶ journal buffer
 *                                                  └▶ state_apply
 *   replay:   journal ─▶ journal_decode ─▶ state_check ─▶ state_apply
 *
 * so that replaying the journal rebuilds exactly what the running pool
 * had (DESIGN invariant 2).  state_check validates everything first;
 * state_apply then cannot fail, except that it aborts the process when
 * out of memory: a change half applied to memory after its record was
 * buffered would be worse, and the journal on disk stays consistent,
 * so a restart recovers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "internal.h"

/* The largest volume: chunk indexes and byte offsets must not overflow. */
#define VOLUME_SIZE_MAX (UINT64_C (1) << 60)

static int
size_valid (uint64_t size)
{
  return size > 0 && size % 4096 == 0 && size <= VOLUME_SIZE_MAX;
}

/* A snapshot's name: SRC's name, '@', and a valid name. */
static int
snapshot_name_valid (const struct blockmap_volume *src, const char *name)
{
  size_t n = strlen (src->name);

  if (strncmp (name, src->name, n) != 0 || name[n] != '@')
    return -EINVAL;
  return blockmap_name_valid (name + n + 1);
}

/* What a new volume needs besides its name. */
static int
create_check (struct blockmap_pool *pool, const struct jrec *r)
{
  if (r->vtype == NULL || r->vtype[0] == '\0' ||
      strlen (r->vtype) >= BLOCKMAP_TYPE_MAX)
    return -EINVAL;
  if (r->attrs && strlen (r->attrs) >= BLOCKMAP_ATTRS_MAX)
    return -E2BIG;
  if (!size_valid (r->size))
    return -EINVAL;
  if (pool_find_volume (pool, r->name) != NULL)
    return -EEXIST;
  if (r->vol < pool->next_vol_id || pool_find_volume_id (pool, r->vol))
    return -EEXIST;
  return 0;
}

int
state_check_snapshot_entry (struct blockmap_pool *pool, const struct jrec *r)
{
  const char *at = r->name ? strchr (r->name, '@') : NULL;
  char base[BLOCKMAP_NAME_MAX];

  if (at == NULL || strlen (r->name) >= BLOCKMAP_NAME_MAX)
    return -EINVAL;
  snprintf (base, sizeof base, "%.*s", (int) (at - r->name), r->name);
  if (blockmap_name_valid (base) < 0 || blockmap_name_valid (at + 1) < 0)
    return -EINVAL;
  return create_check (pool, r);
}

int
state_check (struct blockmap_pool *pool, const struct jrec *r)
{
  struct blockmap_volume *vol = NULL;
  uint64_t nchunks;

  if (r->type != JREC_VOL_CREATE && r->type != JREC_POOL_OPEN &&
      r->type != JREC_VOL_CLONE) {
    vol = pool_find_volume_id (pool, r->vol);
    if (vol == NULL)
      return -ENOENT;
  }
  switch (r->type) {
  case JREC_VOL_CREATE:
    if (r->name == NULL || blockmap_name_valid (r->name) < 0)
      return -EINVAL;
    return create_check (pool, r);
  case JREC_VOL_CLONE:
    vol = pool_find_volume_id (pool, r->src);
    if (vol == NULL)
      return -ENOENT;
    if (r->name == NULL || r->vtype == NULL)
      return -EINVAL;
    if (strlen (r->name) >= BLOCKMAP_NAME_MAX)
      return -ENAMETOOLONG;
    if (r->flags & JREC_CLONE_SNAPSHOT
        ? vol->readonly || snapshot_name_valid (vol, r->name) < 0
        : blockmap_name_valid (r->name) < 0)
      return -EINVAL;
    /* Larger is fine (the new range is a hole); smaller would cut. */
    if (r->size < vol->size)
      return -EINVAL;
    return create_check (pool, r);
  case JREC_VOL_DELETE:
    return 0;
  case JREC_VOL_RESIZE:
    if (vol->readonly)
      return -EROFS;
    if (!size_valid (r->size))
      return -EINVAL;
    if (r->size < vol->size) {
      /* Any mapped chunk with bytes at or past the new end. */
      uint64_t first = r->size >> pool->chunk_shift;
      uint64_t end = bm_chunks_for (pool, vol->size);
      if (extent_any_mapped (vol, first, end - first))
        return -ENOTEMPTY;
    }
    return 0;
  case JREC_VOL_SET_ATTRS:
    if (r->vtype && (r->vtype[0] == '\0' ||
                     strlen (r->vtype) >= BLOCKMAP_TYPE_MAX))
      return -EINVAL;
    if (r->attrs && strlen (r->attrs) >= BLOCKMAP_ATTRS_MAX)
      return -E2BIG;
    return 0;
  case JREC_MAP:
    if (vol->readonly)
      return -EROFS;
    nchunks = bm_chunks_for (pool, vol->size);
    if (r->count == 0 || r->lchunk >= nchunks ||
        r->count > nchunks - r->lchunk)
      return -EINVAL;
    if (r->tier != BM_TIER_HOT)
      return -EINVAL;
    if (r->pchunk >= pool->hot.capacity ||
        r->count > pool->hot.capacity - r->pchunk)
      return -EINVAL;
    return 0;
  case JREC_UNMAP:
    if (vol->readonly)
      return -EROFS;
    nchunks = bm_chunks_for (pool, vol->size);
    if (r->count == 0 || r->lchunk >= nchunks ||
        r->count > nchunks - r->lchunk)
      return -EINVAL;
    return 0;
  case JREC_POOL_OPEN:
    return 0;
  }
  return -EINVAL;
}

static char *
xstrdup (const char *s)
{
  char *p = strdup (s);

  if (p == NULL) {
    log_error ("blockmap: out of memory applying a journal record");
    abort ();
  }
  return p;
}

/* A new, empty volume from a VOL_CREATE or VOL_CLONE record. */
static struct blockmap_volume *
new_volume (struct blockmap_pool *pool, const struct jrec *r)
{
  struct blockmap_volume *vol = calloc (1, sizeof *vol);

  if (vol == NULL) {
    log_error ("blockmap: out of memory creating volume %s", r->name);
    abort ();
  }
  vol->pool = pool;
  vol->id = r->vol;
  strcpy (vol->name, r->name);
  strcpy (vol->type, r->vtype);
  vol->attrs = xstrdup (r->attrs ? r->attrs : "");
  vol->size = r->size;
  vol->created = r->time;
  extent_map_init (vol);
  pool_add_volume (pool, vol);
  if (r->vol >= pool->next_vol_id)
    pool->next_vol_id = r->vol + 1;
  return vol;
}

void
state_apply (struct blockmap_pool *pool, const struct jrec *r)
{
  struct blockmap_volume *vol = NULL, *src;

  if (r->type != JREC_VOL_CREATE && r->type != JREC_POOL_OPEN &&
      r->type != JREC_VOL_CLONE)
    vol = pool_find_volume_id (pool, r->vol);

  /* Whatever this record does to VOL may change what it reads. */
  if (vol)
    atomic_fetch_add (&vol->stamp, 1);
  switch (r->type) {
  case JREC_VOL_CREATE:
    new_volume (pool, r);
    break;
  case JREC_VOL_CLONE:
    /* O(1) whatever the size of the map (DESIGN invariant 3). */
    src = pool_find_volume_id (pool, r->src);
    vol = new_volume (pool, r);
    rtree_share (&vol->map, &src->map);
    vol->readonly = r->flags & JREC_CLONE_SNAPSHOT;
    vol->origin = src->id;
    break;
  case JREC_VOL_DELETE:
    /* Only the root leaves now; reap.c frees the rest in steps. */
    reap_push (pool, rtree_detach (&vol->map), r->lsn);
    if (pool->replaying)
      reap_step (pool, SIZE_MAX);
    pool_remove_volume (pool, vol);
    vol->deleted = true;
    if (vol->open_count == 0)
      volume_destroy (vol);
    break;
  case JREC_VOL_RESIZE:
    vol->size = r->size;
    break;
  case JREC_VOL_SET_ATTRS:
    if (r->vtype)
      strcpy (vol->type, r->vtype);
    if (r->attrs) {
      char *a = xstrdup (r->attrs);
      free (vol->attrs);
      vol->attrs = a;
    }
    break;
  case JREC_MAP:
    extent_map (vol, r->lchunk, r->count, r->pchunk, r->tier, r->flags,
                r->lsn);
    break;
  case JREC_UNMAP:
    extent_unmap (vol, r->lchunk, r->count, r->lsn);
    break;
  case JREC_POOL_OPEN:
    break;
  }
  log_debug (DBG_JOURNAL, "blockmap: %s record LSN %" PRIu64 " type %d",
             pool->replaying ? "replayed" : "applied", r->lsn, r->type);
}

int
state_log (struct blockmap_pool *pool, struct jrec *r)
{
  int e;

  if (pool->failed)
    return -EIO;
  if ((e = state_check (pool, r)) < 0)
    return e;
  r->lsn = pool->next_lsn++;
  journal_encode (pool->uuid, r, &pool->jbuf);
  state_apply (pool, r);
  return 0;
}
