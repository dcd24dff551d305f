/* tests/unit/test-blockmap-crash.c: power loss at every sync point
 * (DESIGN invariants 1 and 2), through the crash-io layer.
 *
 * One deterministic workload (volume create / resize / delete, data
 * writes stamped per sector with (generation, block), unmaps, shared
 * ranges written copy-on-write, syncs, checkpoints from a small
 * threshold) is first run without a crash to count its sync points T.
 * Then for every N in 1..T and every crash mode (and a few seeds for
 * the random ones) it runs again from pool init and loses power at
 * sync point N; the pool is reopened with the real system calls and
 * checked against a model of what may have survived:
 *
 *  - the pool opens and blockmap_pool_check finds nothing (inv. 2);
 *  - each volume exists, or not, and has a size, as some history
 *    allows: what the last completed blockmap_pool_sync made durable,
 *    or a later change;
 *  - each 512-byte sector of each 4K block reads as the generation
 *    that was current at the last completed sync, or one written later
 *    (zero counts as a value: a hole, an unmap): never garbage, never
 *    older (inv. 1);
 *  - no chunk is mapped twice, except at the same place in volumes that
 *    shared a range.
 *
 * A sync that fails because of the crash does not count as completed.
 * Set CRASH_VERBOSE=1 to see the engine's log lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <sys/stat.h>

#include "common/log.h"
#include "test-blockmap-util.h"
#include "crash-io.c"

#define BLK 4096
#define SECT 512
#define MAXVOLS 16
#define MAXBLKS ((int) (2 * MiB / BLK)) /* largest volume */
#define BPC ((int) (CS / BLK))          /* blocks per chunk */
#define MAXC 48                         /* candidate values per block */
#define STAMP_MAGIC UINT64_C (0x53545241544b5331)

/* ---- stamps ------------------------------------------------------------ */

static void
stamp_sector (unsigned char *p, uint64_t gen, uint64_t blk, unsigned s)
{
  for (unsigned i = 0; i < SECT; i++)
    p[i] = (unsigned char) (gen * 131 + blk * 7 + s * 17 + i);
  le64_put (p, STAMP_MAGIC);
  le64_put (p + 8, gen);
  le64_put (p + 16, blk);
  le32_put (p + 24, s);
}

static void
stamp_block (unsigned char *p, uint64_t gen, uint64_t blk)
{
  for (unsigned s = 0; s < BLK / SECT; s++)
    stamp_sector (p + s * SECT, gen, blk, s);
}

/* The generation sector P holds for block BLK: 0 if zero, UINT64_MAX
 * if it is not a valid stamp of that sector.
 */
static uint64_t
sector_value (const unsigned char *p, uint64_t blk, unsigned s)
{
  unsigned char want[SECT];
  uint64_t gen;

  if (all_bytes ((const char *) p, SECT, 0))
    return 0;
  gen = le64_get (p + 8);
  stamp_sector (want, gen, blk, s);
  return memcmp (p, want, SECT) == 0 ? gen : UINT64_MAX;
}

/* ---- the model ------------------------------------------------------- */

/* What a block (or a size) may be after a crash: its value at the last
 * completed sync, and every value it had since.
 */
struct cands {
  uint64_t cur;
  uint64_t v[MAXC];
  int n;
};

static void
cand_set (struct cands *c, uint64_t v)
{
  c->cur = v;
  for (int i = 0; i < c->n; i++)
    if (c->v[i] == v)
      return;
  assert_true (c->n < MAXC);
  c->v[c->n++] = v;
}

static void
cand_merge (struct cands *c, const struct cands *from)
{
  for (int i = 0; i < from->n; i++) {
    uint64_t keep = c->cur;
    cand_set (c, from->v[i]);
    c->cur = keep;
  }
  cand_set (c, from->cur);
}

static bool
cand_has (const struct cands *c, uint64_t v)
{
  for (int i = 0; i < c->n; i++)
    if (c->v[i] == v)
      return true;
  return false;
}

static void
cand_collapse (struct cands *c)
{
  c->v[0] = c->cur;
  c->n = 1;
}

struct mvol {
  char name[BLOCKMAP_NAME_MAX];
  bool used;                    /* this slot was ever created */
  bool readonly;                /* a snapshot */
  struct cands exists;          /* 0 / 1 */
  struct cands size;
  struct cands blk[MAXBLKS];
  bool mapped[MAXBLKS / BPC];   /* chunk mapped now */
};

struct model {
  struct mvol vol[MAXVOLS];
  int nvols;
  bool shared[MAXVOLS][MAXVOLS];
  uint64_t gen;
  uint64_t rng;
  int syncs_ok;
};

static uint64_t
mrand (struct model *m)
{
  uint64_t x = m->rng;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  m->rng = x;
  return x;
}

static void
model_synced (struct model *m)
{
  for (int i = 0; i < m->nvols; i++) {
    struct mvol *v = &m->vol[i];
    cand_collapse (&v->exists);
    cand_collapse (&v->size);
    for (int b = 0; b < MAXBLKS; b++)
      cand_collapse (&v->blk[b]);
  }
  m->syncs_ok++;
}

/* ---- the workload ---------------------------------------------------- */

struct run {
  char dir[64], path[96];
  struct blockmap_pool *pool;
  struct model m;
};

/* Write blocks [B, B+N) of volume I with generation m->gen, the way the
 * server does, through bm_io.  False if the pool refused (the crash).
 */
static bool
do_write (struct run *r, int i, uint64_t b, uint64_t n)
{
  struct mvol *mv = &r->m.vol[i];
  struct blockmap_volume *v;
  int fd = blockmap_pool_data_fd (r->pool, BM_TIER_HOT);
  uint64_t gen = ++r->m.gen, done = 0, off = b * BLK, len = n * BLK;
  uint64_t tok;
  bool ok = true;

  assert_int_equal (blockmap_volume_open (r->pool, mv->name, &v), 0);
  tok = blockmap_io_begin (r->pool);
  while (ok && done < len) {
    struct blockmap_run runs[8];
    int nr = blockmap_write_prepare (v, off + done, len - done, runs, 8);
    if (nr < 0) {
      assert_true (crash_io_crashed ());
      ok = false;
      break;
    }
    for (int k = 0; k < nr && ok; k++) {
      const struct blockmap_run *ru = &runs[k];
      unsigned char *buf = malloc (CS);
      uint64_t at = ru->offset % CS;
      assert_non_null (buf);
      if (ru->flags & BM_RUN_COW) {
        ssize_t got = bm_io->pread (fd, buf, CS, ru->cow_src_offset);
        if (got < 0)
          got = 0;
        memset (buf + got, 0, CS - got);
        for (uint64_t p = 0; p < ru->length; p += BLK)
          stamp_block (buf + at + p, gen, (ru->offset + p) / BLK);
      }
      if (ru->flags & BM_RUN_COW) {
        if (bm_pwrite_all (fd, buf, CS, ru->pool_offset) < 0 ||
            blockmap_cow_commit (v, ru) < 0) {
          blockmap_cow_abort (v, ru);
          ok = false;
        }
      }
      else {
        unsigned char *big = malloc (ru->length);
        assert_non_null (big);
        for (uint64_t p = 0; p < ru->length; p += BLK)
          stamp_block (big + p, gen, (ru->offset + p) / BLK);
        if (bm_pwrite_all (fd, big, ru->length, ru->pool_offset) < 0)
          ok = false;
        free (big);
      }
      free (buf);
      done += ru->length;
    }
  }
  blockmap_io_end (r->pool, tok);
  blockmap_volume_release (v);
  /* Blocks the pool mapped may hold the new data even if we stopped. */
  for (uint64_t k = b; k < b + n; k++) {
    cand_set (&mv->blk[k], gen);
    mv->mapped[k / BPC] = true;
  }
  if (!ok)
    assert_true (crash_io_crashed ());
  return ok;
}

static void
model_unmap (struct mvol *mv, uint64_t c0, uint64_t nc)
{
  for (uint64_t c = c0; c < c0 + nc; c++) {
    mv->mapped[c] = false;
    for (uint64_t k = c * BPC; k < (c + 1) * BPC; k++)
      cand_set (&mv->blk[k], 0);
  }
}

/* Percent of steps that take a snapshot or a clone (0: the workloads
 * from before snapshots, unchanged).
 */
static int snap_pct;
static int snaps_taken, clones_taken;   /* by the last run */

/* Volumes I and J now share chunks, and so does everything either
 * already shared with.
 */
static void
model_share (struct model *m, int i, int j)
{
  for (int k = 0; k < m->nvols; k++)
    if (k == i || m->shared[i][k]) {
      m->shared[j][k] = m->shared[k][j] = true;
      for (int l = 0; l < m->nvols; l++)
        if (m->shared[j][l])
          m->shared[k][l] = m->shared[l][k] = true;
    }
}

/* Snapshot (read-only, "SRC@sN") or clone (writable, maybe larger) of
 * volume I.  False once the crash has happened.
 */
static bool
snapshot_step (struct run *r, int i, bool snapshot)
{
  struct model *m = &r->m;
  struct mvol *mv = &m->vol[i], *nv;
  uint64_t size = mv->size.cur;
  int e, j;

  if (m->nvols == MAXVOLS || (snapshot && mv->readonly))
    return true;
  j = m->nvols;
  nv = &m->vol[j];
  if (snapshot) {
    char base[32];
    snprintf (base, sizeof base, "%.20s", mv->name);
    snprintf (nv->name, sizeof nv->name, "%s@s%d", base, j);
  }
  else {
    snprintf (nv->name, sizeof nv->name, "vol%d", j);
    if (mrand (m) & 1 && size + CS <= MAXBLKS * BLK)
      size += CS * (1 + mrand (m) % 2);
    if (size > MAXBLKS * BLK)
      size = MAXBLKS * BLK;
  }
  e = blockmap_volume_clone (r->pool, mv->name, nv->name,
                             snapshot ? 0 : size, NULL, NULL, snapshot);
  if (e < 0) {
    assert_true (crash_io_crashed ());
    return false;
  }
  m->nvols++;
  if (snapshot)
    snaps_taken++;
  else
    clones_taken++;
  nv->used = true;
  nv->readonly = snapshot;
  cand_set (&nv->exists, 0);
  cand_set (&nv->exists, 1);
  cand_set (&nv->size, size);
  for (int b = 0; b < MAXBLKS; b++) {
    if ((uint64_t) b * BLK < mv->size.cur) {
      nv->blk[b] = mv->blk[b];
      /* The copy holds what the volume has now, once durable; before
       * then it does not exist, so older values do not matter.
       */
      cand_collapse (&nv->blk[b]);
      cand_set (&nv->blk[b], mv->blk[b].cur);
    }
    else
      cand_set (&nv->blk[b], 0);
  }
  for (int c = 0; c < MAXBLKS / BPC; c++)
    nv->mapped[c] = (uint64_t) c * CS < mv->size.cur && mv->mapped[c];
  model_share (m, i, j);
  return true;
}

static int
pick_live (struct run *r)
{
  int live[MAXVOLS], n = 0;

  for (int i = 0; i < r->m.nvols; i++)
    if (r->m.vol[i].exists.cur)
      live[n++] = i;
  return n ? live[mrand (&r->m) % n] : -1;
}

/* One step of the workload.  False once the crash has happened. */
static bool
step (struct run *r)
{
  struct model *m = &r->m;
  int i = pick_live (r), what = mrand (m) % 100, e;
  struct mvol *mv = i >= 0 ? &m->vol[i] : NULL;
  uint64_t chunks = mv ? mv->size.cur / CS : 0;

  if (snap_pct > 0 && i >= 0 && mrand (m) % 100 < (uint64_t) snap_pct)
    return snapshot_step (r, i, mrand (m) % 3 != 0);
  if (mv && mv->readonly && what >= 12 && what < 90)
    return true;                /* snapshots are only read or deleted */
  if (i < 0 || (what < 8 && m->nvols < MAXVOLS)) {
    struct mvol *nv;
    uint64_t size;
    if (m->nvols == MAXVOLS)
      return true;
    nv = &m->vol[m->nvols];
    size = (2 + mrand (m) % 6) * CS;
    snprintf (nv->name, sizeof nv->name, "vol%d", m->nvols);
    e = blockmap_volume_create (r->pool, nv->name, size, "ssd", NULL);
    if (e < 0) {
      assert_true (crash_io_crashed ());
      return false;
    }
    m->nvols++;
    nv->used = true;
    cand_set (&nv->exists, 0);
    cand_set (&nv->exists, 1);
    cand_set (&nv->size, size);
    for (int b = 0; b < MAXBLKS; b++)
      cand_set (&nv->blk[b], 0);
    return true;
  }
  if (what < 12) {                              /* delete */
    e = blockmap_volume_delete (r->pool, mv->name, false);
    if (e < 0)
      return false;
    cand_set (&mv->exists, 0);
    return true;
  }
  if (what < 18) {                              /* resize */
    uint64_t nc = mrand (m) & 1 && chunks > 2 ? chunks - 1 - mrand (m) % 2
      : chunks + 1 + mrand (m) % 4;
    if (nc * CS > MAXBLKS * BLK)
      nc = MAXBLKS * BLK / CS;
    if (nc < chunks) {
      struct blockmap_volume *v;
      assert_int_equal (blockmap_volume_open (r->pool, mv->name, &v), 0);
      e = blockmap_unmap (v, nc * CS, (chunks - nc) * CS);
      blockmap_volume_release (v);
      model_unmap (mv, nc, chunks - nc);
      if (e < 0)
        return false;
    }
    e = blockmap_volume_resize (r->pool, mv->name, nc * CS, true);
    if (e < 0) {
      assert_true (crash_io_crashed ());
      return false;
    }
    cand_set (&mv->size, nc * CS);
    return true;
  }
  if (what < 28) {                              /* unmap */
    struct blockmap_volume *v;
    uint64_t c0 = mrand (m) % chunks, nc = 1 + mrand (m) % 3;
    if (c0 + nc > chunks)
      nc = chunks - c0;
    assert_int_equal (blockmap_volume_open (r->pool, mv->name, &v), 0);
    e = blockmap_unmap (v, c0 * CS, nc * CS);
    blockmap_volume_release (v);
    model_unmap (mv, c0, nc);
    if (e < 0) {
      assert_true (crash_io_crashed ());
      return false;
    }
    return true;
  }
  if (what < 42) {                              /* share a range */
    int j = pick_live (r);
    uint64_t cj, c0, nc;
    struct mvol *dv;
    if (j == i)
      return true;
    dv = &m->vol[j];
    if (dv->readonly)
      return true;
    cj = dv->size.cur / CS;
    c0 = mrand (m) % (chunks < cj ? chunks : cj);
    nc = 1 + mrand (m) % 3;
    if (c0 + nc > chunks)
      nc = chunks - c0;
    if (c0 + nc > cj)
      nc = cj - c0;
    e = blockmap_test_share_range (r->pool, mv->name, dv->name, c0, nc);
    for (uint64_t c = c0; c < c0 + nc; c++) {
      if (!mv->mapped[c])
        continue;
      dv->mapped[c] = true;
      for (uint64_t k = c * BPC; k < (c + 1) * BPC; k++) {
        uint64_t now = mv->blk[k].cur;
        cand_merge (&dv->blk[k], &mv->blk[k]);
        dv->blk[k].cur = now;
      }
    }
    model_share (m, i, j);
    if (e < 0) {
      assert_true (crash_io_crashed ());
      return false;
    }
    return true;
  }
  if (what < 90) {                              /* write */
    uint64_t blocks = mv->size.cur / BLK;
    uint64_t b = mrand (m) % blocks, n = 1 + mrand (m) % 12;
    if (b + n > blocks)
      n = blocks - b;
    return do_write (r, i, b, n);
  }
  e = blockmap_pool_sync (r->pool);             /* sync */
  if (e < 0) {
    assert_true (crash_io_crashed ());
    return false;
  }
  model_synced (m);
  return true;
}

#define STEPS 140

/* ---- checking after the crash --------------------------------------- */

struct mapping {
  uint64_t pchunk, lchunk;
  int vol;
};

static int
cmp_mapping (const void *a, const void *b)
{
  const struct mapping *x = a, *y = b;

  return x->pchunk < y->pchunk ? -1 : x->pchunk > y->pchunk;
}

struct ctx {
  uint64_t crash_at;
  enum crash_mode mode;
  uint64_t seed;
};

#define FAIL_IF(cond, ...)                                            \
  do {                                                                \
    if (cond) {                                                       \
      fprintf (stderr, "crash at sync %" PRIu64 " mode %d seed %"     \
               PRIu64 ": ", cx->crash_at, cx->mode, cx->seed);        \
      fprintf (stderr, __VA_ARGS__);                                  \
      fprintf (stderr, "\n");                                         \
      fail ();                                                        \
    }                                                                 \
  } while (0)

static int
count_vol (void *opaque, const struct blockmap_volume_info *vi)
{
  (void) vi;
  ++*(int *) opaque;
  return 0;
}

static void
verify (struct run *r, const struct ctx *cx)
{
  struct model *m = &r->m;
  struct mapping *maps = NULL;
  size_t nmaps = 0, mapcap = 0;
  int fd = blockmap_pool_data_fd (r->pool, BM_TIER_HOT), nlive = 0, npool = 0;
  int problems = blockmap_pool_check (r->pool, print_problem, NULL);

  FAIL_IF (problems != 0, "blockmap_pool_check found %d problems", problems);
  for (int i = 0; i < m->nvols; i++) {
    struct mvol *mv = &m->vol[i];
    struct blockmap_volume_info vi;
    struct blockmap_volume *v;
    unsigned char buf[BLK];
    bool exists = blockmap_volume_info (r->pool, mv->name, &vi) == 0;

    FAIL_IF (!cand_has (&mv->exists, exists), "volume %s %s", mv->name,
             exists ? "exists but was never durably created"
             : "was durably created but is gone");
    if (!exists)
      continue;
    nlive++;
    FAIL_IF (!cand_has (&mv->size, vi.size), "volume %s has size %" PRIu64
             " which it never had at a sync", mv->name, vi.size);
    assert_int_equal (blockmap_volume_open (r->pool, mv->name, &v), 0);
    for (uint64_t b = 0; b < vi.size / BLK; b++) {
      struct blockmap_run ru[2];
      int n = blockmap_map_range (v, b * BLK, BLK, ru, 2);
      assert_int_equal (n, 1);
      if (ru[0].tier == BM_TIER_NONE)
        memset (buf, 0, BLK);
      else {
        ssize_t got = pread (fd, buf, BLK, ru[0].pool_offset);
        assert_true (got >= 0);
        memset (buf + got, 0, BLK - got);
        if (b % BPC == 0) {
          if (nmaps == mapcap) {
            mapcap = mapcap ? mapcap * 2 : 256;
            maps = realloc (maps, mapcap * sizeof *maps);
            assert_non_null (maps);
          }
          maps[nmaps++] = (struct mapping) {
            .pchunk = ru[0].pool_offset / CS, .lchunk = b / BPC, .vol = i };
        }
      }
      for (unsigned s = 0; s < BLK / SECT; s++) {
        uint64_t val = sector_value (buf + s * SECT, b, s);
        FAIL_IF (val == UINT64_MAX, "volume %s block %" PRIu64 " sector %u "
                 "is garbage", mv->name, b, s);
        FAIL_IF (!cand_has (&mv->blk[b], val), "volume %s block %" PRIu64
                 " sector %u reads generation %" PRIu64 " (%s), but the "
                 "last durable one is %" PRIu64 " (%d candidates)",
                 mv->name, b, s, val, val ? "stale" : "zero",
                 mv->blk[b].v[0], mv->blk[b].n);
      }
    }
    blockmap_volume_release (v);
  }
  blockmap_volume_foreach (r->pool, count_vol, &npool);
  FAIL_IF (npool != nlive, "the pool has %d volumes, the model knows %d",
           npool, nlive);
  if (nmaps > 0)
    qsort (maps, nmaps, sizeof *maps, cmp_mapping);
  for (size_t k = 1; k < nmaps; k++) {
    const struct mapping *a = &maps[k - 1], *b = &maps[k];
    if (a->pchunk != b->pchunk)
      continue;
    FAIL_IF (a->lchunk != b->lchunk || !m->shared[a->vol][b->vol],
             "chunk %" PRIu64 " is mapped by %s chunk %" PRIu64 " and %s "
             "chunk %" PRIu64 ", which never shared it", a->pchunk,
             m->vol[a->vol].name, a->lchunk, m->vol[b->vol].name,
             b->lchunk);
  }
  free (maps);
}

/* ---- one run --------------------------------------------------------- */

static uint64_t init_syncs;     /* sync points of pool init */

/* Engine errors are expected while crashed pools are opened; keep them
 * out of the output (CRASH_VERBOSE=1 shows them).  Only the log is
 * silenced, so the test's own failure reports always get through.
 */
static void
quiet (bool on)
{
  if (getenv ("CRASH_VERBOSE"))
    return;
  log_set_quiet (on);
}

/* Run the workload with a crash at sync point CRASH_AT (0: none), then
 * reopen and verify.  Returns the number of sync points seen.
 */
static uint64_t recovery_crash_at;     /* 0: recover without a crash */
static uint64_t recovery_syncs;        /* sync points of the last recovery */

static uint64_t
run_once (uint64_t crash_at, enum crash_mode mode, uint64_t seed,
          uint64_t wseed)
{
  struct blockmap_pool_opts o = { .chunk_size = CS,
                                  .hot_capacity = 8 * MiB };
  struct ctx cxs = { crash_at, mode, seed }, *cx = &cxs;
  struct crash_io_config cfg = { .crash_at = crash_at, .mode = mode,
                                 .seed = seed, .no_garble = BM_HOT_DATA_FILE };
  struct run *r = calloc (1, sizeof *r);
  bool inited = false, opened = false;
  uint64_t syncs;
  int e;

  assert_non_null (r);
  r->m.rng = wseed * 0x9e3779b97f4a7c15ull + 1;
  strcpy (r->dir, "/tmp/strata-bm-crash.XXXXXX");
  assert_non_null (mkdtemp (r->dir));
  snprintf (r->path, sizeof r->path, "%s/pool", r->dir);
  assert_int_equal (mkdir (r->path, 0755), 0);
  cfg.dir = r->path;

  quiet (true);
  snaps_taken = clones_taken = 0;
  crash_io_start (&cfg);
  inited = blockmap_pool_init (r->path, &o) == 0;
  if (crash_at == 0)
    init_syncs = crash_io_syncs ();
  if (inited)
    opened = blockmap_pool_open (r->path, &r->pool) == 0;
  if (opened) {
    blockmap_test_set_checkpoint_threshold (r->pool, 1500);
    for (int s = 0; s < STEPS && step (r); s++)
      ;
    if (!crash_io_crashed ()) {
      e = blockmap_pool_sync (r->pool);
      if (e == 0)
        model_synced (&r->m);
    }
  }
  if (r->pool)
    blockmap_pool_crash_close (r->pool);
  r->pool = NULL;
  syncs = crash_io_syncs ();
  FAIL_IF (!crash_io_crashed () && (!inited || !opened),
           "init or open failed without a crash");
  crash_io_stop ();

  /* Power may fail again while the pool recovers. */
  cfg.crash_at = recovery_crash_at;
  crash_io_start (&cfg);
  if (blockmap_pool_open (r->path, &r->pool) == 0)
    blockmap_pool_crash_close (r->pool);
  r->pool = NULL;
  recovery_syncs = crash_io_syncs ();
  crash_io_stop ();

  e = blockmap_pool_open (r->path, &r->pool);
  quiet (false);
  if (!inited && e == -ENOENT)
    goto done;                  /* the crash came before the superblock */
  FAIL_IF (e != 0, "the pool does not open: %s", strerror (-e));
  verify (r, cx);
  /* The recovered pool takes new work and closes cleanly. */
  {
    struct model *m = &r->m;
    for (int i = 0; i < m->nvols; i++) {
      struct blockmap_volume *v;
      struct blockmap_run ru[4];
      if (m->vol[i].readonly ||
          blockmap_volume_open (r->pool, m->vol[i].name, &v) < 0)
        continue;
      FAIL_IF (blockmap_write_prepare (v, 0, CS, ru, 4) < 1,
               "cannot write to %s after recovery", m->vol[i].name);
      blockmap_volume_release (v);
    }
  }
  FAIL_IF (blockmap_pool_close (r->pool) != 0, "clean close failed");
  r->pool = NULL;
  quiet (true);
  e = blockmap_pool_open (r->path, &r->pool);
  quiet (false);
  FAIL_IF (e != 0, "the pool does not open after a clean close");
  FAIL_IF (blockmap_pool_check (r->pool, print_problem, NULL) != 0,
           "check after a clean close");
  assert_int_equal (blockmap_pool_close (r->pool), 0);
  r->pool = NULL;
 done:
  nftw (r->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free (r);
  return syncs;
}

/* ---- the tests ------------------------------------------------------- */

static void
test_the_layer_without_a_crash_changes_nothing (void **state)
{
  uint64_t a, b;

  (void) state;
  a = run_once (0, CRASH_DROP, 1, 1);
  b = run_once (0, CRASH_DROP, 2, 1);
  assert_true (a > 20);
  assert_int_equal (a, b);              /* deterministic: same sync points */
}

/* Crash at every sync point from FIRST (0: after pool init) to LAST
 * (0: the end of the workload) in every mode, with SEEDS seeds for the
 * random modes.
 */
static void
crash_everywhere (uint64_t wseed, int seeds, uint64_t first, uint64_t last)
{
  uint64_t total = run_once (0, CRASH_DROP, 1, wseed), tried = 0;

  if (first == 0)
    first = init_syncs + 1;
  if (last == 0 || last > total)
    last = total;
  for (uint64_t n = first; n <= last; n++)
    for (int mode = 0; mode < CRASH_MODES; mode++) {
      int ns = mode == CRASH_DROP || mode == CRASH_KEEP ? 1 : seeds;
      for (int s = 0; s < ns; s++) {
        run_once (n, mode, n * 1000 + s, wseed);
        tried++;
      }
    }
  printf ("workload %" PRIu64 ": %" PRIu64 " sync points, crashed at %"
          PRIu64 "..%" PRIu64 ": %" PRIu64 " crashes tried\n", wseed, total,
          first, last, tried);
}

/* Regression: pool init created "superblock" in place, so a crash
 * could leave the name durable but the file empty: the pool then
 * failed to open with -EUCLEAN instead of not being there (-ENOENT).
 */
static void
test_a_crash_during_pool_init_leaves_no_pool_or_a_whole_one (void **state)
{
  (void) state;
  run_once (0, CRASH_DROP, 1, 1);
  assert_true (init_syncs > 3);
  crash_everywhere (1, 8, 1, init_syncs);
}

static void
test_a_crash_at_any_sync_point_loses_nothing_durable (void **state)
{
  (void) state;
  crash_everywhere (1, 2, 0, 0);
}

static void
test_a_crash_at_any_sync_point_of_another_workload (void **state)
{
  (void) state;
  crash_everywhere (7, 1, 0, 0);
}

/* A crash while the pool recovers from a crash, at every sync point of
 * the recovery, after every sync point of the workload.
 */
static void
test_a_crash_during_recovery_loses_nothing_either (void **state)
{
  uint64_t total = run_once (0, CRASH_DROP, 1, 3), tried = 0;

  (void) state;
  for (uint64_t n = init_syncs + 1; n <= total; n++) {
    uint64_t rsyncs;
    recovery_crash_at = 0;
    run_once (n, CRASH_TEAR, n, 3);
    rsyncs = recovery_syncs;
    for (uint64_t k = 1; k <= rsyncs; k++) {
      recovery_crash_at = k;
      run_once (n, CRASH_TEAR, n, 3);
      tried++;
    }
  }
  recovery_crash_at = 0;
  printf ("workload 3: %" PRIu64 " crashes during recovery tried\n", tried);
  assert_true (tried > total);
}

/* Snapshots and clones in the workload: taken, written around (the
 * volume copies each shared chunk it writes), deleted in any order;
 * every snapshot still reads what its volume held when it was taken.
 */
static void
test_a_crash_at_any_sync_point_with_snapshots_and_clones (void **state)
{
  (void) state;
  snap_pct = 10;
  for (uint64_t w = 11; w <= 12; w++) {
    run_once (0, CRASH_DROP, 1, w);
    printf ("workload %" PRIu64 ": %d snapshots, %d clones\n", w,
            snaps_taken, clones_taken);
    assert_true (snaps_taken >= 3 && clones_taken >= 1);
    crash_everywhere (w, 3 - (int) (w - 10), 0, 0);
  }
  snap_pct = 0;
}

static void
test_a_crash_during_recovery_with_snapshots (void **state)
{
  uint64_t total, tried = 0;

  (void) state;
  snap_pct = 10;
  total = run_once (0, CRASH_DROP, 1, 13);
  for (uint64_t n = init_syncs + 1; n <= total; n += 3) {
    recovery_crash_at = 0;
    run_once (n, CRASH_TEAR, n, 13);
    for (uint64_t k = 1, rs = recovery_syncs; k <= rs; k++) {
      recovery_crash_at = k;
      run_once (n, CRASH_TEAR, n, 13);
      tried++;
    }
  }
  recovery_crash_at = 0;
  snap_pct = 0;
  printf ("workload 13: %" PRIu64 " crashes during recovery tried\n", tried);
  assert_true (tried > 0);
}

/* A soak: CRASH_WORKLOADS=N runs N more workloads (seeds 100..),
 * one seed per random mode, and CRASH_SNAP_WORKLOADS=N as many with
 * snapshots and clones (seeds 200..).  Skipped by default.
 */
static void
test_more_workloads_when_asked (void **state)
{
  const char *e = getenv ("CRASH_WORKLOADS");
  const char *es = getenv ("CRASH_SNAP_WORKLOADS");
  int n = e ? atoi (e) : 0, ns = es ? atoi (es) : 0;

  (void) state;
  if (n <= 0 && ns <= 0)
    skip ();
  for (int w = 0; w < n; w++)
    crash_everywhere (100 + w, 1, 0, 0);
  snap_pct = 15;
  for (int w = 0; w < ns; w++)
    crash_everywhere (200 + w, 1, 0, 0);
  snap_pct = 0;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_the_layer_without_a_crash_changes_nothing),
    cmocka_unit_test (test_a_crash_during_pool_init_leaves_no_pool_or_a_whole_one),
    cmocka_unit_test (test_a_crash_at_any_sync_point_loses_nothing_durable),
    cmocka_unit_test (test_a_crash_at_any_sync_point_of_another_workload),
    cmocka_unit_test (test_a_crash_during_recovery_loses_nothing_either),
    cmocka_unit_test (test_a_crash_at_any_sync_point_with_snapshots_and_clones),
    cmocka_unit_test (test_a_crash_during_recovery_with_snapshots),
    cmocka_unit_test (test_more_workloads_when_asked),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
