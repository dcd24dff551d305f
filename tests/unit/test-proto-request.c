/* tests/unit/test-proto-request.c: unit tests for the pure parts of
 * server/protocol-*.c: request validation, the errno -> NBD error
 * mapping, export flags, NBD_OPT_INFO/GO parsing, and the gate that
 * decides whether a loop runs small writes itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

#define MiB (1024 * 1024)

static const struct proto_export_state export_1g = {
  .size = 1024 * MiB,
  .eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
    NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_DF |
    NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE,
  .structured = true,
  .meta_allocation = true,
};

static struct nbd_request
request (uint16_t type, uint16_t flags, uint64_t offset, uint32_t length)
{
  struct nbd_request r = {
    .magic = NBD_REQUEST_MAGIC, .flags = flags, .type = type,
    .cookie = 42, .offset = offset, .length = length,
  };
  return r;
}

/* Check R against E; returns the verdict, stores the errno. */
static enum proto_verdict
check (struct nbd_request r, const struct proto_export_state *e, int *err)
{
  const char *msg = NULL;
  enum proto_verdict v;

  *err = 0;
  v = proto_check_request (&r, e, err, &msg);
  if (v != PROTO_OK)
    assert_non_null (msg);      /* every refusal says why */
  return v;
}

static void
test_valid_requests_pass (void **state)
{
  struct proto_export_state big = export_1g;
  int err;

  (void) state;
  assert_int_equal (check (request (NBD_CMD_READ, 0, 0, 4096), &export_1g,
                           &err), PROTO_OK);
  assert_int_equal (check (request (NBD_CMD_WRITE, NBD_CMD_FLAG_FUA,
                                    1024 * MiB - 4096, 4096),
                           &export_1g, &err), PROTO_OK);
  assert_int_equal (check (request (NBD_CMD_FLUSH, 0, 0, 0), &export_1g,
                           &err), PROTO_OK);
  assert_int_equal (check (request (NBD_CMD_WRITE_ZEROES,
                                    NBD_CMD_FLAG_NO_HOLE |
                                    NBD_CMD_FLAG_FAST_ZERO, 0, 4096),
                           &export_1g, &err), PROTO_OK);
  assert_int_equal (check (request (NBD_CMD_BLOCK_STATUS,
                                    NBD_CMD_FLAG_REQ_ONE, 0, 1024 * MiB),
                           &export_1g, &err), PROTO_OK);
  assert_int_equal (check (request (NBD_CMD_READ, NBD_CMD_FLAG_DF, 0,
                                    64 * MiB), &export_1g, &err), PROTO_OK);
  /* FUA is accepted on every command once advertised. */
  assert_int_equal (check (request (NBD_CMD_CACHE, NBD_CMD_FLAG_FUA, 0,
                                    4096), &export_1g, &err), PROTO_OK);
  /* Trims and zeroes are not limited by the payload size. */
  big.size = UINT64_C (8) << 30;
  assert_int_equal (check (request (NBD_CMD_TRIM, 0, 0, UINT32_MAX),
                           &big, &err), PROTO_OK);
}

static void
test_bad_magic_disconnects (void **state)
{
  struct nbd_request r = request (NBD_CMD_READ, 0, 0, 512);
  int err;

  (void) state;
  r.magic = NBD_SIMPLE_REPLY_MAGIC;
  assert_int_equal (check (r, &export_1g, &err), PROTO_DISCONNECT);
}

static void
test_unknown_command_is_einval (void **state)
{
  int err;

  (void) state;
  assert_int_equal (check (request (99, 0, 0, 512), &export_1g, &err),
                    PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
  assert_int_equal (check (request (8 /* RESIZE */, 0, 0, 0), &export_1g,
                           &err), PROTO_ERROR);
}

static void
test_flags_not_valid_for_the_command_are_einval (void **state)
{
  int err;

  (void) state;
  assert_int_equal (check (request (NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0,
                                    512), &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
  assert_int_equal (check (request (NBD_CMD_READ, NBD_CMD_FLAG_REQ_ONE, 0,
                                    512), &export_1g, &err), PROTO_ERROR);
  assert_int_equal (check (request (NBD_CMD_TRIM, NBD_CMD_FLAG_FAST_ZERO, 0,
                                    512), &export_1g, &err), PROTO_ERROR);
  assert_int_equal (check (request (NBD_CMD_READ, 1 << 9, 0, 512),
                           &export_1g, &err), PROTO_ERROR);
}

static void
test_df_needs_structured_replies (void **state)
{
  struct proto_export_state e = export_1g;
  int err;

  (void) state;
  e.structured = false;
  e.eflags &= ~NBD_FLAG_SEND_DF;
  assert_int_equal (check (request (NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512),
                           &e, &err), PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
}

static void
test_write_past_the_end_is_enospc_read_is_einval (void **state)
{
  int err;

  (void) state;
  assert_int_equal (check (request (NBD_CMD_WRITE, 0, 1024 * MiB, 512),
                           &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -ENOSPC);
  assert_int_equal (check (request (NBD_CMD_WRITE_ZEROES, 0,
                                    1024 * MiB - 512, 1024),
                           &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -ENOSPC);
  assert_int_equal (check (request (NBD_CMD_READ, 0, 1024 * MiB - 512, 1024),
                           &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
  assert_int_equal (check (request (NBD_CMD_TRIM, 0, 1024 * MiB + 512, 0),
                           &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
  assert_int_equal (check (request (NBD_CMD_BLOCK_STATUS, 0, 1024 * MiB, 1),
                           &export_1g, &err), PROTO_ERROR);
}

static void
test_offset_plus_length_overflow_is_caught (void **state)
{
  int err;

  (void) state;
  assert_int_equal (check (request (NBD_CMD_READ, 0, UINT64_MAX - 100, 4096),
                           &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
  assert_int_equal (check (request (NBD_CMD_WRITE, 0, UINT64_MAX, 1),
                           &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -ENOSPC);
}

static void
test_oversized_write_disconnects_oversized_read_overflows (void **state)
{
  int err;

  (void) state;
  assert_int_equal (check (request (NBD_CMD_WRITE, 0, 0,
                                    PROTO_MAX_REQUEST + 1),
                           &export_1g, &err), PROTO_DISCONNECT);
  assert_int_equal (check (request (NBD_CMD_READ, 0, 0,
                                    PROTO_MAX_REQUEST + 1),
                           &export_1g, &err), PROTO_ERROR);
  assert_int_equal (err, -EOVERFLOW);
  assert_int_equal (proto_errno_to_nbd (EOVERFLOW, NBD_CMD_FLAG_DF),
                    NBD_EOVERFLOW);
  assert_int_equal (proto_errno_to_nbd (EOVERFLOW, 0), NBD_EINVAL);
}

static void
test_flush_with_a_range_is_einval (void **state)
{
  int err;

  (void) state;
  assert_int_equal (check (request (NBD_CMD_FLUSH, 0, 4096, 0), &export_1g,
                           &err), PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
}

static void
test_block_status_needs_a_context (void **state)
{
  struct proto_export_state e = export_1g;
  int err;

  (void) state;
  e.meta_allocation = false;
  assert_int_equal (check (request (NBD_CMD_BLOCK_STATUS, 0, 0, 4096), &e,
                           &err), PROTO_ERROR);
  assert_int_equal (err, -EINVAL);
  assert_int_equal (check (request (NBD_CMD_BLOCK_STATUS, 0, 0, 0),
                           &export_1g, &err), PROTO_ERROR);
}

static void
test_writes_to_a_read_only_export_are_eperm (void **state)
{
  struct proto_export_state e = export_1g;
  int err;

  (void) state;
  e.eflags = proto_export_flags (true, false, true);
  assert_int_equal (check (request (NBD_CMD_WRITE, 0, 0, 512), &e, &err),
                    PROTO_ERROR);
  assert_int_equal (err, -EPERM);
  assert_int_equal (check (request (NBD_CMD_TRIM, 0, 0, 512), &e, &err),
                    PROTO_ERROR);
  assert_int_equal (err, -EPERM);
  assert_int_equal (check (request (NBD_CMD_READ, 0, 0, 512), &e, &err),
                    PROTO_OK);
}

static void
test_errno_mapping_defaults_to_eio (void **state)
{
  (void) state;
  assert_int_equal (proto_errno_to_nbd (0, 0), NBD_SUCCESS);
  assert_int_equal (proto_errno_to_nbd (EPERM, 0), NBD_EPERM);
  assert_int_equal (proto_errno_to_nbd (EROFS, 0), NBD_EPERM);
  assert_int_equal (proto_errno_to_nbd (ENOMEM, 0), NBD_ENOMEM);
  assert_int_equal (proto_errno_to_nbd (EINVAL, 0), NBD_EINVAL);
  assert_int_equal (proto_errno_to_nbd (ENOSPC, 0), NBD_ENOSPC);
  assert_int_equal (proto_errno_to_nbd (EDQUOT, 0), NBD_ENOSPC);
  assert_int_equal (proto_errno_to_nbd (EFBIG, 0), NBD_ENOSPC);
  assert_int_equal (proto_errno_to_nbd (ESHUTDOWN, 0), NBD_ESHUTDOWN);
  assert_int_equal (proto_errno_to_nbd (EIO, 0), NBD_EIO);
  assert_int_equal (proto_errno_to_nbd (EUCLEAN, 0), NBD_EIO);
  assert_int_equal (proto_errno_to_nbd (EBADF, 0), NBD_EIO);
}

static void
test_enotsup_only_for_fast_zero (void **state)
{
  (void) state;
  assert_int_equal (proto_errno_to_nbd (ENOTSUP, NBD_CMD_FLAG_FAST_ZERO),
                    NBD_ENOTSUP);
  assert_int_equal (proto_errno_to_nbd (ENOTSUP, 0), NBD_EINVAL);
}

static void
test_export_flags (void **state)
{
  uint16_t f;

  (void) state;
  f = proto_export_flags (false, false, false);
  assert_true (f & NBD_FLAG_HAS_FLAGS);
  assert_true (f & NBD_FLAG_SEND_FLUSH);
  assert_true (f & NBD_FLAG_SEND_FUA);
  assert_true (f & NBD_FLAG_SEND_TRIM);
  assert_true (f & NBD_FLAG_SEND_WRITE_ZEROES);
  assert_true (f & NBD_FLAG_SEND_FAST_ZERO);
  assert_true (f & NBD_FLAG_CAN_MULTI_CONN);
  assert_true (f & NBD_FLAG_SEND_CACHE);
  assert_false (f & NBD_FLAG_SEND_DF);      /* needs structured replies */
  assert_false (f & NBD_FLAG_ROTATIONAL);
  assert_false (f & NBD_FLAG_READ_ONLY);
  f = proto_export_flags (true, true, false);
  assert_true (f & NBD_FLAG_SEND_DF);
  assert_true (f & NBD_FLAG_ROTATIONAL);
  f = proto_export_flags (true, false, true);
  assert_true (f & NBD_FLAG_READ_ONLY);
  assert_false (f & NBD_FLAG_SEND_TRIM);
}

static void
test_info_request_parsing (void **state)
{
  char buf[64];
  const char *name, *reqs;
  uint32_t namelen, be32;
  uint16_t nreqs, be16;

  (void) state;
  /* "vol1" with two info requests. */
  be32 = htobe32 (4);
  memcpy (buf, &be32, 4);
  memcpy (buf + 4, "vol1", 4);
  be16 = htobe16 (2);
  memcpy (buf + 8, &be16, 2);
  be16 = htobe16 (NBD_INFO_NAME);
  memcpy (buf + 10, &be16, 2);
  be16 = htobe16 (NBD_INFO_BLOCK_SIZE);
  memcpy (buf + 12, &be16, 2);
  assert_int_equal (proto_parse_info_request (buf, 14, &name, &namelen,
                                              &reqs, &nreqs), 0);
  assert_int_equal (namelen, 4);
  assert_memory_equal (name, "vol1", 4);
  assert_int_equal (nreqs, 2);
  assert_ptr_equal (reqs, buf + 10);
  /* Truncated, or with a name longer than the option: refused. */
  assert_int_equal (proto_parse_info_request (buf, 13, &name, &namelen,
                                              &reqs, &nreqs), -EINVAL);
  assert_int_equal (proto_parse_info_request (buf, 5, &name, &namelen,
                                              &reqs, &nreqs), -EINVAL);
  be32 = htobe32 (UINT32_MAX);
  memcpy (buf, &be32, 4);
  assert_int_equal (proto_parse_info_request (buf, 14, &name, &namelen,
                                              &reqs, &nreqs), -EINVAL);
}

static void
test_wire_structs_have_protocol_sizes (void **state)
{
  (void) state;
  assert_int_equal (sizeof (struct nbd_greeting), 18);
  assert_int_equal (sizeof (struct nbd_option), 16);
  assert_int_equal (sizeof (struct nbd_option_reply), 20);
  assert_int_equal (sizeof (struct nbd_request), 28);
  assert_int_equal (sizeof (struct nbd_simple_reply), 16);
  assert_int_equal (sizeof (struct nbd_structured_reply), 20);
  assert_int_equal (sizeof (struct nbd_info_export), 12);
  assert_int_equal (sizeof (struct nbd_info_block_size), 14);
  assert_int_equal (sizeof (struct nbd_chunk_hole), 12);
  assert_int_equal (sizeof (struct nbd_chunk_error), 6);
}

/* ---- The inline write gate ---- */

#define MS (UINT64_C (1000) * 1000)
#define SEC (UINT64_C (1000) * MS)

static void
test_write_gate_stays_open_while_writes_are_fast (void **state)
{
  struct write_gate g = { 0 };

  (void) state;
  assert_true (write_gate_open (&g, 0));
  for (uint64_t t = 1; t < 1000; t++) {
    assert_false (write_gate_record (&g, t * MS, WRITE_GATE_SLOW_NS - 1));
    assert_true (write_gate_open (&g, t * MS + 1));
  }
}

static void
test_a_long_stall_closes_the_gate_for_a_while (void **state)
{
  struct write_gate g = { 0 };
  const uint64_t t0 = 100 * SEC, took = 50 * MS;

  (void) state;
  assert_true (write_gate_record (&g, t0, took));
  /* Closed from the end of the slow write for the minimum back-off. */
  assert_false (write_gate_open (&g, t0 + took));
  assert_false (write_gate_open (&g, t0 + took
                                 + WRITE_GATE_BACKOFF_MIN_NS - 1));
  assert_true (write_gate_open (&g, t0 + took + WRITE_GATE_BACKOFF_MIN_NS));
}

/* A stall of a millisecond or two every few dozen milliseconds (a
 * journal commit, the host taking the CPU away) never adds up to
 * WRITE_GATE_STALL_NS in one window: the gate stays open.
 */
static void
test_lone_short_stalls_leave_the_gate_open (void **state)
{
  struct write_gate g = { 0 };
  const uint64_t took = 3 * WRITE_GATE_SLOW_NS / 2;
  uint64_t t = SEC;

  (void) state;
  for (int i = 0; i < 10000; i++) {
    assert_false (write_gate_record (&g, t, took));
    assert_true (write_gate_open (&g, t + took));
    t += took;
    /* Fast writes in between do not matter either way. */
    assert_false (write_gate_record (&g, t, 10 * 1000));
    t += WRITE_GATE_WINDOW_NS / 6;
  }
}

/* Short stalls close it once they add up to WRITE_GATE_STALL_NS within
 * one window, fast writes between them or not; the sum starts again in
 * the next window.
 */
static void
test_short_stalls_close_the_gate_when_they_add_up (void **state)
{
  struct write_gate g = { 0 };
  const uint64_t took = 3 * WRITE_GATE_SLOW_NS / 2;
  const int need = (WRITE_GATE_STALL_NS + took - 1) / took;   /* 7 */
  uint64_t t = SEC, w0;
  int i;

  (void) state;
  /* need - 1 of them in one window, then the window passes. */
  w0 = t;
  for (i = 0; i < need - 1; i++) {
    assert_false (write_gate_record (&g, t, took));
    t += took;
    assert_false (write_gate_record (&g, t, 10 * 1000));
  }
  t = w0 + WRITE_GATE_WINDOW_NS;
  /* A new window: need - 1 again leave it open, one more closes it. */
  for (i = 0; i < need - 1; i++) {
    assert_false (write_gate_record (&g, t, took));
    assert_true (write_gate_open (&g, t + took));
    t += 2 * took;
  }
  assert_true (t < w0 + 2 * WRITE_GATE_WINDOW_NS);
  assert_true (write_gate_record (&g, t, took));
  assert_false (write_gate_open (&g, t + took));
  assert_true (write_gate_open (&g, t + took + WRITE_GATE_BACKOFF_MIN_NS));
  /* Reopened, the sum starts from nothing. */
  t += took + WRITE_GATE_BACKOFF_MIN_NS;
  assert_false (write_gate_record (&g, t, took));
  assert_true (write_gate_open (&g, t + took));
}

static void
test_back_off_doubles_while_slow_and_resets_when_fast (void **state)
{
  struct write_gate g = { 0 };
  const uint64_t took = WRITE_GATE_STALL_NS;
  uint64_t t = 0, expect = WRITE_GATE_BACKOFF_MIN_NS;

  (void) state;
  for (int i = 0; i < 12; i++) {
    assert_true (write_gate_record (&g, t, took));
    t += took;
    assert_false (write_gate_open (&g, t + expect - 1));
    assert_true (write_gate_open (&g, t + expect));
    t += expect;                /* the next inline write, once open */
    if (expect < WRITE_GATE_BACKOFF_MAX_NS)
      expect *= 2;
  }
  assert_int_equal (expect, WRITE_GATE_BACKOFF_MAX_NS);  /* capped */
  /* One fast write: back to the minimum. */
  assert_false (write_gate_record (&g, t, 10 * 1000));
  assert_true (write_gate_open (&g, t));
  assert_true (write_gate_record (&g, t, took));
  assert_false (write_gate_open (&g, t + took
                                 + WRITE_GATE_BACKOFF_MIN_NS - 1));
  assert_true (write_gate_open (&g, t + took + WRITE_GATE_BACKOFF_MIN_NS));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_valid_requests_pass),
    cmocka_unit_test (test_bad_magic_disconnects),
    cmocka_unit_test (test_unknown_command_is_einval),
    cmocka_unit_test (test_flags_not_valid_for_the_command_are_einval),
    cmocka_unit_test (test_df_needs_structured_replies),
    cmocka_unit_test (test_write_past_the_end_is_enospc_read_is_einval),
    cmocka_unit_test (test_offset_plus_length_overflow_is_caught),
    cmocka_unit_test (test_oversized_write_disconnects_oversized_read_overflows),
    cmocka_unit_test (test_flush_with_a_range_is_einval),
    cmocka_unit_test (test_block_status_needs_a_context),
    cmocka_unit_test (test_writes_to_a_read_only_export_are_eperm),
    cmocka_unit_test (test_errno_mapping_defaults_to_eio),
    cmocka_unit_test (test_enotsup_only_for_fast_zero),
    cmocka_unit_test (test_export_flags),
    cmocka_unit_test (test_info_request_parsing),
    cmocka_unit_test (test_wire_structs_have_protocol_sizes),
    cmocka_unit_test (test_write_gate_stays_open_while_writes_are_fast),
    cmocka_unit_test (test_a_long_stall_closes_the_gate_for_a_while),
    cmocka_unit_test (test_lone_short_stalls_leave_the_gate_open),
    cmocka_unit_test (test_short_stalls_close_the_gate_when_they_add_up),
    cmocka_unit_test (test_back_off_doubles_while_slow_and_resets_when_fast),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
