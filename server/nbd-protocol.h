/* server/nbd-protocol.h: NBD wire constants and message layouts.
 *
 * Everything here is as on the wire: big-endian, packed.  Values and
 * names follow the NBD protocol document (doc/proto.md in
 * github.com/NetworkBlockDevice/nbd).  Only fixed newstyle is spoken;
 * oldstyle constants are left out on purpose.
 */
#ifndef STRATA_NBD_PROTOCOL_H
#define STRATA_NBD_PROTOCOL_H

#include <stdint.h>

/* ---- Handshake ------------------------------------------------------ */

#define NBD_MAGIC            UINT64_C (0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_IHAVEOPT         UINT64_C (0x49484156454f5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC        UINT64_C (0x0003e889045565a9)

/* Handshake flags (server, 16 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE   (1 << 0)
#define NBD_FLAG_NO_ZEROES        (1 << 1)

/* Client flags (32 bits). */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1 << 0)
#define NBD_FLAG_C_NO_ZEROES      (1 << 1)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS         (1 << 0)
#define NBD_FLAG_READ_ONLY         (1 << 1)
#define NBD_FLAG_SEND_FLUSH        (1 << 2)
#define NBD_FLAG_SEND_FUA          (1 << 3)
#define NBD_FLAG_ROTATIONAL        (1 << 4)
#define NBD_FLAG_SEND_TRIM         (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#define NBD_FLAG_SEND_DF           (1 << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1 << 8)
#define NBD_FLAG_SEND_RESIZE       (1 << 9)
#define NBD_FLAG_SEND_CACHE        (1 << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1 << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME        1
#define NBD_OPT_ABORT              2
#define NBD_OPT_LIST               3
#define NBD_OPT_PEEK_EXPORT        4
#define NBD_OPT_STARTTLS           5
#define NBD_OPT_INFO               6
#define NBD_OPT_GO                 7
#define NBD_OPT_STRUCTURED_REPLY   8
#define NBD_OPT_LIST_META_CONTEXT  9
#define NBD_OPT_SET_META_CONTEXT   10
#define NBD_OPT_EXTENDED_HEADERS   11

/* Option replies. */
#define NBD_REP_ACK                1
#define NBD_REP_SERVER             2
#define NBD_REP_INFO               3
#define NBD_REP_META_CONTEXT       4
#define NBD_REP_ERR_BIT            UINT32_C (0x80000000)
#define NBD_REP_ERR_UNSUP          (NBD_REP_ERR_BIT + 1)
#define NBD_REP_ERR_POLICY         (NBD_REP_ERR_BIT + 2)
#define NBD_REP_ERR_INVALID        (NBD_REP_ERR_BIT + 3)
#define NBD_REP_ERR_PLATFORM       (NBD_REP_ERR_BIT + 4)
#define NBD_REP_ERR_TLS_REQD       (NBD_REP_ERR_BIT + 5)
#define NBD_REP_ERR_UNKNOWN        (NBD_REP_ERR_BIT + 6)
#define NBD_REP_ERR_SHUTDOWN       (NBD_REP_ERR_BIT + 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_ERR_BIT + 8)
#define NBD_REP_ERR_TOO_BIG        (NBD_REP_ERR_BIT + 9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT            0
#define NBD_INFO_NAME              1
#define NBD_INFO_DESCRIPTION       2
#define NBD_INFO_BLOCK_SIZE        3

/* The server sends at most this much, and reads at most this much,
 * in one NBD string (names, descriptions, error messages).
 */
#define NBD_MAX_STRING             4096

/* ---- Transmission --------------------------------------------------- */

#define NBD_REQUEST_MAGIC          UINT32_C (0x25609513)
#define NBD_SIMPLE_REPLY_MAGIC     UINT32_C (0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C (0x668e33ef)

/* Commands. */
#define NBD_CMD_READ               0
#define NBD_CMD_WRITE              1
#define NBD_CMD_DISC               2
#define NBD_CMD_FLUSH              3
#define NBD_CMD_TRIM               4
#define NBD_CMD_CACHE              5
#define NBD_CMD_WRITE_ZEROES       6
#define NBD_CMD_BLOCK_STATUS       7

/* Command flags. */
#define NBD_CMD_FLAG_FUA           (1 << 0)
#define NBD_CMD_FLAG_NO_HOLE       (1 << 1)
#define NBD_CMD_FLAG_DF            (1 << 2)
#define NBD_CMD_FLAG_REQ_ONE       (1 << 3)
#define NBD_CMD_FLAG_FAST_ZERO     (1 << 4)

/* Structured reply flags and chunk types. */
#define NBD_REPLY_FLAG_DONE        (1 << 0)
#define NBD_REPLY_TYPE_NONE        0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR       32769
#define NBD_REPLY_TYPE_ERROR_OFFSET 32770

/* base:allocation status bits. */
#define NBD_STATE_HOLE             (1 << 0)
#define NBD_STATE_ZERO             (1 << 1)

/* Error values (NBD's own numbering, which happens to be Linux's). */
#define NBD_SUCCESS                0
#define NBD_EPERM                  1
#define NBD_EIO                    5
#define NBD_ENOMEM                 12
#define NBD_EINVAL                 22
#define NBD_ENOSPC                 28
#define NBD_EOVERFLOW              75
#define NBD_ENOTSUP                95
#define NBD_ESHUTDOWN              108

/* ---- Messages -------------------------------------------------------- */

/* Server greeting, 18 bytes. */
struct nbd_greeting {
  uint64_t magic;               /* NBD_MAGIC */
  uint64_t ihaveopt;            /* NBD_IHAVEOPT */
  uint16_t flags;               /* NBD_FLAG_FIXED_NEWSTYLE | ... */
} __attribute__ ((packed));

/* Client option header, 16 bytes, followed by LENGTH bytes of data. */
struct nbd_option {
  uint64_t magic;               /* NBD_IHAVEOPT */
  uint32_t option;
  uint32_t length;
} __attribute__ ((packed));

/* Server option reply header, 20 bytes, followed by LENGTH bytes. */
struct nbd_option_reply {
  uint64_t magic;               /* NBD_REP_MAGIC */
  uint32_t option;
  uint32_t reply;
  uint32_t length;
} __attribute__ ((packed));

/* Reply to NBD_OPT_EXPORT_NAME (then 124 zero bytes unless NO_ZEROES). */
struct nbd_export_name_reply {
  uint64_t size;
  uint16_t flags;
} __attribute__ ((packed));

struct nbd_info_export {
  uint16_t type;                /* NBD_INFO_EXPORT */
  uint64_t size;
  uint16_t flags;
} __attribute__ ((packed));

struct nbd_info_block_size {
  uint16_t type;                /* NBD_INFO_BLOCK_SIZE */
  uint32_t minimum;
  uint32_t preferred;
  uint32_t maximum;
} __attribute__ ((packed));

/* Request header, 28 bytes. */
struct nbd_request {
  uint32_t magic;               /* NBD_REQUEST_MAGIC */
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;              /* "handle" in older documents */
  uint64_t offset;
  uint32_t length;
} __attribute__ ((packed));

/* Simple reply, 16 bytes (READ data follows on success). */
struct nbd_simple_reply {
  uint32_t magic;               /* NBD_SIMPLE_REPLY_MAGIC */
  uint32_t error;
  uint64_t cookie;
} __attribute__ ((packed));

/* Structured reply chunk header, 20 bytes. */
struct nbd_structured_reply {
  uint32_t magic;               /* NBD_STRUCTURED_REPLY_MAGIC */
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint32_t length;              /* of the payload that follows */
} __attribute__ ((packed));

struct nbd_chunk_hole {
  uint64_t offset;
  uint32_t length;
} __attribute__ ((packed));

/* Error chunk payload; the message follows. */
struct nbd_chunk_error {
  uint32_t error;
  uint16_t msglen;
} __attribute__ ((packed));

struct nbd_block_descriptor {
  uint32_t length;
  uint32_t flags;
} __attribute__ ((packed));

#endif /* STRATA_NBD_PROTOCOL_H */
