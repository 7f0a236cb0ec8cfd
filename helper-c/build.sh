#!/bin/sh
# Build the helper: static musl (about 80 KB), else static glibc, else
# dynamic glibc. OUT defaults to ../build relative to this directory.
#
#   build.sh              $OUT/hutch-helper
#   build.sh --sanitize   $OUT/helper-asan/hutch-helper: AddressSanitizer and
#                         UndefinedBehaviorSanitizer, dynamic glibc (neither
#                         works with musl or -static), -O1 -g, every UBSan
#                         finding fatal (-fno-sanitize-recover). For
#                         test-helper.sh, not for shipping.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$here/../build}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # absolute: we cd below
srcs="main.c plan.c util.c monitor.c init.c path.c mount.c command.c cleanup.c seccomp.c user.c harden.c route.c relay.c log.c join.c await.c netns.c netlink.c dns.c nat.c"
cd "$here"
if [ "${1:-}" = --sanitize ]; then
	cc=${CC:-gcc}
	dir="$OUT/helper-asan"
	flags="-std=c11 -O1 -g -Wall -Wextra -Werror=implicit-function-declaration -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
	ldflags="-fsanitize=address,undefined"
elif [ -n "${1:-}" ]; then
	echo "usage: build.sh [--sanitize]" >&2
	exit 2
else
	dir="$OUT"
	flags="-std=c11 -Os -Wall -Wextra -Werror=implicit-function-declaration -fno-asynchronous-unwind-tables -ffunction-sections -fdata-sections"
	ldflags="-Wl,--gc-sections -Wl,-z,noseparate-code -s"
	if command -v musl-gcc >/dev/null 2>&1; then
		cc="musl-gcc -static"
	elif echo 'int main(void){return 0;}' | gcc -static -x c -o /dev/null - 2>/dev/null; then
		cc="gcc -static"
	else
		cc="gcc"
	fi
	cc=${CC:-$cc}
fi
mkdir -p "$dir"
# shellcheck disable=SC2086
# link to a temp name, then rename: a running copy stays valid (no ETXTBSY)
$cc $flags -o "$dir/.hutch-helper.$$" $srcs $ldflags
mv -f "$dir/.hutch-helper.$$" "$dir/hutch-helper"
echo "built $dir/hutch-helper ($cc, $(wc -c <"$dir/hutch-helper") bytes)"
