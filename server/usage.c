/* server/usage.c: stratad's option table and synopsis.
 *
 * The synopsis text lives in server/stratad-synopsis.txt, which the
 * man page (server/stratad.pod) repeats verbatim and which is
 * embedded here at build time with .incbin (the assembler finds it
 * through the repository root on the include path), so --help and
 * the man page cannot drift apart unnoticed: tests/unit/
 * test-proto-usage.c checks them against each other, and
 * tests/integration/test-help.sh checks the option table in main.c.
 */
#include "internal.h"

__asm__ (".section .rodata\n"
         ".global stratad_synopsis\n"
         ".type stratad_synopsis, @object\n"
         "stratad_synopsis:\n"
         ".incbin \"server/stratad-synopsis.txt\"\n"
         ".byte 0\n"
         ".size stratad_synopsis, . - stratad_synopsis\n"
         ".previous\n");
