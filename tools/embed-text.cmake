# tools/embed-text.cmake: turn the text file IN into a C header OUT that
# defines  static const char NAME[] = "...";  so a program can print the
# same text its man page includes (STYLE B.11: one synopsis feeds --help
# and the man page).
#   cmake -DIN=file.txt -DOUT=file.h -DNAME=symbol -P embed-text.cmake
file(READ "${IN}" text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n  \"" text "${text}")
file(WRITE "${OUT}"
  "/* Generated from ${IN} by tools/embed-text.cmake; do not edit. */\n"
  "static const char ${NAME}[] =\n  \"${text}\";\n")
