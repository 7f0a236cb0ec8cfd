#!/bin/sh
# Build the helper: static musl (about 65 KB), else static glibc, else
# dynamic glibc. OUT defaults to ../build relative to this directory.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$here/../build}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # absolute: we cd below
srcs="main.c plan.c util.c monitor.c init.c path.c mount.c command.c cleanup.c seccomp.c user.c"
flags="-std=c11 -Os -Wall -Wextra -Werror=implicit-function-declaration -fno-asynchronous-unwind-tables -ffunction-sections -fdata-sections"
ldflags="-Wl,--gc-sections -Wl,-z,noseparate-code -s"
cd "$here"
if command -v musl-gcc >/dev/null 2>&1; then
	cc="musl-gcc -static"
elif echo 'int main(void){return 0;}' | gcc -static -x c -o /dev/null - 2>/dev/null; then
	cc="gcc -static"
else
	cc="gcc"
fi
cc=${CC:-$cc}
# shellcheck disable=SC2086
# link to a temp name, then rename: a running copy stays valid (no ETXTBSY)
$cc $flags -o "$OUT/.hutch-helper.$$" $srcs $ldflags
mv -f "$OUT/.hutch-helper.$$" "$OUT/hutch-helper"
echo "built $OUT/hutch-helper ($cc, $(wc -c <"$OUT/hutch-helper") bytes)"
