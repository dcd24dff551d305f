/* server/metrics.c: the Prometheus endpoint.
 *
 * `stratad --metrics-listen 127.0.0.1:9810` serves GET /metrics in the
 * Prometheus text format (0.0.4), off by default.  HTTP is
 * libmicrohttpd's, in its own thread (MHD_USE_INTERNAL_POLLING_THREAD):
 * a small, well-kept library in Debian; HTTP is not worth writing by
 * hand.  Nothing here touches a loop: a scrape reads the per-volume
 * counters with relaxed atomic loads (qos.c) and the pool's figures
 * with blockmap_pool_info(), so scraping never slows the data path
 * beyond the cache lines it reads.
 *
 * metrics_format() is the whole text, and pure apart from what it
 * reads, so a unit test checks its shape and promtool checks it in the
 * integration test.  Latency is a summary with the quantiles operators
 * ask for (0.5, 0.9, 0.99, 0.999), computed from the log-linear
 * histograms of qos.c (each within 12.5%).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "internal.h"

/* ---- Text ------------------------------------------------------------ */

struct buf {
  char *p;
  size_t len, cap;
  bool oom;
};

static void
put (struct buf *b, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static void
put (struct buf *b, const char *fmt, ...)
{
  va_list ap;
  int n;

  if (b->oom)
    return;
  for (;;) {
    va_start (ap, fmt);
    n = vsnprintf (b->p + b->len, b->cap - b->len, fmt, ap);
    va_end (ap);
    if (n < 0) {
      b->oom = true;
      return;
    }
    if ((size_t) n < b->cap - b->len) {
      b->len += n;
      return;
    }
    {
      size_t cap = b->cap * 2 + n + 1;
      char *p = realloc (b->p, cap);

      if (p == NULL) {
        b->oom = true;
        return;
      }
      b->p = p;
      b->cap = cap;
    }
  }
}

static void
family (struct buf *b, const char *name, const char *type, const char *help)
{
  put (b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *const class_names[QOS_NCLASS] = { "read", "write",
                                                     "other" };
static const char *const tier_names[] = { "none", "hot", "warm", "cold" };

struct vol {
  struct qos_snapshot s;
  uint64_t size, allocated;
  unsigned connections;
};

struct collect {
  struct vol *v;
  size_t n, cap;
  struct blockmap_pool *pool;
};

static int
collect_one (void *opaque, struct qos_snapshot *s)
{
  struct collect *c = opaque;
  struct blockmap_volume_info *vi;

  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    struct vol *v = realloc (c->v, cap * sizeof *v);

    if (v == NULL)
      return -ENOMEM;
    c->v = v;
    c->cap = cap;
  }
  memset (&c->v[c->n], 0, sizeof c->v[c->n]);
  c->v[c->n].s = *s;
  if (c->pool && (vi = malloc (sizeof *vi)) != NULL) {
    if (blockmap_volume_info (c->pool, s->name, vi) == 0) {
      c->v[c->n].size = vi->size;
      c->v[c->n].allocated = vi->allocated;
      c->v[c->n].connections = vi->open_count;
    }
    free (vi);
  }
  c->n++;
  return 0;
}

static int
by_name (const void *a, const void *b)
{
  return strcmp (((const struct vol *) a)->s.name,
                 ((const struct vol *) b)->s.name);
}

/* Volume and type names are [A-Za-z0-9._-]: nothing to escape. */
#define VL "volume=\"%s\",type=\"%s\""

char *
metrics_format (struct blockmap_pool *pool, const struct config *cfg)
{
  static const double quantiles[] = { 0.5, 0.9, 0.99, 0.999 };
  struct collect c = { .pool = pool };
  struct buf b = { 0 };
  size_t i;
  unsigned k, q;

  b.cap = 65536;
  b.p = malloc (b.cap);
  if (b.p == NULL)
    return NULL;
  b.p[0] = '\0';
  if (qos_foreach (collect_one, &c) < 0) {
    free (c.v);
    free (b.p);
    return NULL;
  }
  if (c.n > 1)
    qsort (c.v, c.n, sizeof *c.v, by_name);

  family (&b, "strata_volume_requests_total", "counter",
          "NBD requests completed, by class (other: flush, trim, "
          "block status, cache).");
  for (i = 0; i < c.n; i++)
    for (k = 0; k < QOS_NCLASS; k++)
      put (&b, "strata_volume_requests_total{" VL ",op=\"%s\"} %" PRIu64
           "\n", c.v[i].s.name, c.v[i].s.type, class_names[k],
           c.v[i].s.ops[k]);
  family (&b, "strata_volume_bytes_total", "counter",
          "Bytes read and written by clients.");
  for (i = 0; i < c.n; i++)
    for (k = 0; k < 2; k++)
      put (&b, "strata_volume_bytes_total{" VL ",op=\"%s\"} %" PRIu64 "\n",
           c.v[i].s.name, c.v[i].s.type, class_names[k], c.v[i].s.bytes[k]);
  family (&b, "strata_volume_readahead_bytes_total", "counter",
          "Bytes of client reads answered from data read ahead of a "
          "sequential reader (included in strata_volume_bytes_total).");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_readahead_bytes_total{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].s.readahead_bytes);
  family (&b, "strata_volume_errors_total", "counter",
          "Requests answered with an error.");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_errors_total{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].s.errors);
  family (&b, "strata_volume_throttled_seconds_total", "counter",
          "Time requests spent waiting for the volume's budget.");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_throttled_seconds_total{" VL "} %.9f\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].s.throttled_ns / 1e9);
  family (&b, "strata_volume_throttled_requests_total", "counter",
          "Requests that waited for the volume's budget.");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_throttled_requests_total{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].s.throttled);
  family (&b, "strata_volume_in_flight_requests", "gauge",
          "Requests being served or waiting for budget now.");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_in_flight_requests{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].s.in_flight);
  family (&b, "strata_volume_latency_seconds", "summary",
          "Request latency from arrival (including any wait for budget) "
          "to reply.");
  for (i = 0; i < c.n; i++)
    for (k = 0; k < QOS_NCLASS; k++) {
      const struct qos_hist *h = &c.v[i].s.lat[k];

      for (q = 0; q < sizeof quantiles / sizeof quantiles[0]; q++)
        put (&b, "strata_volume_latency_seconds{" VL ",op=\"%s\","
             "quantile=\"%g\"} %.9f\n", c.v[i].s.name, c.v[i].s.type,
             class_names[k], quantiles[q],
             qos_hist_quantile (h, quantiles[q]) / 1e9);
      put (&b, "strata_volume_latency_seconds_sum{" VL ",op=\"%s\"} %.9f\n",
           c.v[i].s.name, c.v[i].s.type, class_names[k], h->sum_ns / 1e9);
      put (&b, "strata_volume_latency_seconds_count{" VL ",op=\"%s\"} %"
           PRIu64 "\n", c.v[i].s.name, c.v[i].s.type, class_names[k],
           h->count);
    }
  family (&b, "strata_volume_budget_iops", "gauge",
          "The volume's IOPS budget (0: unlimited).");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_budget_iops{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].s.budget.iops);
  family (&b, "strata_volume_budget_bytes_per_second", "gauge",
          "The volume's throughput budget (0: unlimited).");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_budget_bytes_per_second{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].s.budget.throughput);
  family (&b, "strata_volume_size_bytes", "gauge", "Volume size.");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_size_bytes{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].size);
  family (&b, "strata_volume_allocated_bytes", "gauge",
          "Bytes of the pool the volume's data takes.");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_allocated_bytes{" VL "} %" PRIu64 "\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].allocated);
  family (&b, "strata_volume_connections", "gauge",
          "Clients attached to the volume.");
  for (i = 0; i < c.n; i++)
    put (&b, "strata_volume_connections{" VL "} %u\n",
         c.v[i].s.name, c.v[i].s.type, c.v[i].connections);
  family (&b, "strata_volume_alarm", "gauge",
          "1 while an alarm on the volume is raised, by metric.");
  for (i = 0; i < c.n; i++)
    for (k = 0; k < ALARM_NMETRICS; k++)
      if (c.v[i].s.rules[k].above > 0 || c.v[i].s.raised[k])
        put (&b, "strata_volume_alarm{" VL ",metric=\"%s\"} %d\n",
             c.v[i].s.name, c.v[i].s.type, alarm_metric_name (k),
             c.v[i].s.raised[k] ? 1 : 0);

  if (pool) {
    struct blockmap_pool_info *pi = malloc (sizeof *pi);

    if (pi) {
      uint64_t cap[4] = { 0 }, used[4] = { 0 };

      blockmap_pool_info (pool, pi);
      cap[BM_TIER_HOT] = pi->hot_capacity;
      used[BM_TIER_HOT] = pi->hot_used;
      family (&b, "strata_pool_capacity_bytes", "gauge",
              "Capacity of each tier of the pool.");
      for (k = BM_TIER_HOT; k <= BM_TIER_COLD; k++)
        put (&b, "strata_pool_capacity_bytes{tier=\"%s\"} %" PRIu64 "\n",
             tier_names[k], cap[k]);
      family (&b, "strata_pool_used_bytes", "gauge",
              "Bytes used in each tier of the pool.");
      for (k = BM_TIER_HOT; k <= BM_TIER_COLD; k++)
        put (&b, "strata_pool_used_bytes{tier=\"%s\"} %" PRIu64 "\n",
             tier_names[k], used[k]);
      family (&b, "strata_pool_price_per_gigabyte_month", "gauge",
              "Configured cost of one GB (10^9 bytes) for a month, by tier.");
      for (k = BM_TIER_HOT; k <= BM_TIER_COLD; k++)
        put (&b, "strata_pool_price_per_gigabyte_month{tier=\"%s\"} %g\n",
             tier_names[k], cfg ? cfg->tier_cost[k] : 0);
      family (&b, "strata_pool_cost_per_month", "gauge",
              "Cost of the data stored now, for a month, by tier.");
      for (k = BM_TIER_HOT; k <= BM_TIER_COLD; k++)
        put (&b, "strata_pool_cost_per_month{tier=\"%s\"} %.6f\n",
             tier_names[k], cfg ? used[k] / 1e9 * cfg->tier_cost[k] : 0);
      family (&b, "strata_pool_volumes", "gauge", "Volumes in the pool.");
      put (&b, "strata_pool_volumes %" PRIu64 "\n", pi->volumes);
      free (pi);
    }
  }
  free (c.v);
  if (b.oom) {
    free (b.p);
    return NULL;
  }
  return b.p;
}

/* ---- HTTP ------------------------------------------------------------ */

static struct MHD_Daemon *httpd;
static struct blockmap_pool *mpool;
static const struct config *mcfg;

static enum MHD_Result
answer (void *cls, struct MHD_Connection *conn, const char *url,
        const char *method, const char *version, const char *upload_data,
        size_t *upload_data_size, void **con_cls)
{
  struct MHD_Response *resp;
  const char *text;
  char *body = NULL;
  unsigned status = MHD_HTTP_OK;
  enum MHD_Result ret;

  (void) cls; (void) version; (void) upload_data; (void) con_cls;
  if (*upload_data_size != 0)
    return MHD_NO;
  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
    text = "only GET /metrics is served here\n";
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
  }
  else if (strcmp (url, "/metrics") == 0) {
    body = metrics_format (mpool, mcfg);
    text = body;
    if (body == NULL) {
      text = "out of memory\n";
      status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
  }
  else if (strcmp (url, "/") == 0)
    text = "strata: metrics are at /metrics\n";
  else {
    text = "not found; metrics are at /metrics\n";
    status = MHD_HTTP_NOT_FOUND;
  }
  if (body)
    resp = MHD_create_response_from_buffer (strlen (body), body,
                                            MHD_RESPMEM_MUST_FREE);
  else
    resp = MHD_create_response_from_buffer (strlen (text), (void *) text,
                                            MHD_RESPMEM_PERSISTENT);
  if (resp == NULL) {
    free (body);
    return MHD_NO;
  }
  MHD_add_response_header (resp, "Content-Type", body
                           ? "text/plain; version=0.0.4; charset=utf-8"
                           : "text/plain; charset=utf-8");
  ret = MHD_queue_response (conn, status, resp);
  MHD_destroy_response (resp);
  return ret;
}

/* "HOST:PORT", "[V6]:PORT", or ":PORT" (loopback). */
static int
parse_addr (const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
  CLEANUP_FREE char *host = NULL;
  const char *colon, *port;
  struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                            .ai_socktype = SOCK_STREAM };
  struct addrinfo *ai;

  if (addr[0] == '[') {
    const char *end = strchr (addr, ']');

    if (end == NULL || end[1] != ':')
      return -EINVAL;
    host = strndup (addr + 1, end - addr - 1);
    port = end + 2;
  }
  else {
    colon = strrchr (addr, ':');
    if (colon == NULL)
      return -EINVAL;
    host = strndup (addr, colon - addr);
    port = colon + 1;
  }
  if (host == NULL)
    return -ENOMEM;
  if (host[0] == '\0') {
    free (host);
    host = strdup ("127.0.0.1");
    if (host == NULL)
      return -ENOMEM;
  }
  if (port[0] == '\0' || getaddrinfo (host, port, &hints, &ai) != 0)
    return -EINVAL;
  memcpy (ss, ai->ai_addr, ai->ai_addrlen);
  *len = ai->ai_addrlen;
  freeaddrinfo (ai);
  return 0;
}

int
metrics_start (const char *addr, struct blockmap_pool *pool,
               const struct config *cfg)
{
  struct sockaddr_storage ss;
  socklen_t len;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG
    | MHD_USE_AUTO;

  if (parse_addr (addr, &ss, &len) < 0) {
    log_error ("--metrics-listen %s: not an address and port such as "
               "127.0.0.1:9810 or [::1]:9810", addr);
    return -EINVAL;
  }
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  mpool = pool;
  mcfg = cfg;
  httpd = MHD_start_daemon (flags, 0, NULL, NULL, answer, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                            MHD_OPTION_END);
  if (httpd == NULL) {
    log_error ("cannot serve metrics on %s (address in use?)", addr);
    return -EADDRINUSE;
  }
  log_info ("metrics on http://%s/metrics", addr);
  return 0;
}

void
metrics_stop (void)
{
  if (httpd)
    MHD_stop_daemon (httpd);
  httpd = NULL;
}
