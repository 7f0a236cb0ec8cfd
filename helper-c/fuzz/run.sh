#!/bin/sh
# Fuzz the plan parser for SECONDS (default 20) with libFuzzer:
#
#   helper-c/fuzz/run.sh [SECONDS]
#
# Needs clang with its fuzzer and sanitizer runtimes (Debian: clang,
# libclang-rt-14-dev). Builds $OUT/helper-fuzz/plan_fuzz (OUT defaults to
# ../../build), starts from the seeds in corpus/ (read only: new inputs go
# to a scratch directory that is removed afterwards), and exits non-zero
# on any crash, sanitizer report, leak or timeout; the failing input is
# left in $OUT/helper-fuzz/ (crash-*, leak-*, timeout-*).
#
# -close_fd_mask=2: the parser prints an error for every invalid plan;
# libFuzzer keeps its own and the sanitizers' output on a copy of stderr.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-20}
OUT=${OUT:-$here/../../build}
mkdir -p "$OUT/helper-fuzz"
dir=$(cd "$OUT/helper-fuzz" && pwd)
CC=${CC:-clang}
srcs="plan.c util.c seccomp.c"
(cd "$here/.." && $CC -std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -o "$dir/plan_fuzz" fuzz/plan_fuzz.c $srcs)
echo "built $dir/plan_fuzz"
work=$(mktemp -d "$dir/corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$dir"
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	./plan_fuzz -max_total_time="$secs" -close_fd_mask=2 -max_len=8192 -timeout=10 \
	-print_final_stats=1 "$work" "$here/corpus"
