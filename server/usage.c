/* server/usage.c: stratad's option table and synopsis.
 *
 * The synopsis text lives in server/stratad-synopsis.txt, which the
 * man page (server/stratad.pod) repeats verbatim and which is
 * embedded here at build time with .incbin (the assembler finds it
 * through the repository root on the include path), so --help, the
 * man page and this table cannot drift apart unnoticed:
 * tests/unit/test-proto-usage.c checks all three against each other.
 */
#include <getopt.h>
#include <stddef.h>

#include "internal.h"

__asm__ (".section .rodata\n"
         ".global stratad_synopsis\n"
         ".type stratad_synopsis, @object\n"
         "stratad_synopsis:\n"
         ".incbin \"server/stratad-synopsis.txt\"\n"
         ".byte 0\n"
         ".size stratad_synopsis, . - stratad_synopsis\n"
         ".previous\n");

const char stratad_short_options[] = "fsD:";

const struct option stratad_long_options[] = {
  { "pool",           required_argument, NULL, OPT_POOL },
  { "foreground",     no_argument,       NULL, 'f' },
  { "single",         no_argument,       NULL, 's' },
  { "unix",           required_argument, NULL, OPT_UNIX },
  { "listen",         required_argument, NULL, OPT_LISTEN },
  { "port",           required_argument, NULL, OPT_PORT },
  { "admin-socket",   required_argument, NULL, OPT_ADMIN_SOCKET },
  { "config",         required_argument, NULL, OPT_CONFIG },
  { "threads",        required_argument, NULL, OPT_THREADS },
  { "default-export", required_argument, NULL, OPT_DEFAULT_EXPORT },
  { "pid-file",       required_argument, NULL, OPT_PID_FILE },
  { "debug",          required_argument, NULL, 'D' },
  { "dump-config",    no_argument,       NULL, OPT_DUMP_CONFIG },
  { "help",           no_argument,       NULL, OPT_HELP },
  { "version",        no_argument,       NULL, OPT_VERSION },
  { NULL },
};
