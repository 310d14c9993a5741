#!/usr/bin/env bash
# Builds and runs a libFuzzer target of ktnn's parsers with clang, AddressSanitizer
# and UBSan, for a bounded time, from a generated seed corpus and a dictionary.
#
#   tests/fuzz/run_fuzzer.sh TARGET SECONDS WORKDIR      e.g. idx 60 build/fuzz
#
# CI runs each target for 60 s (the fuzz_* ctests); for a longer campaign run
# this script with more seconds inside the build root (tools/ktnn run ...).
# A crash, a sanitizer report or a broken invariant fails it and leaves the
# input in WORKDIR/TARGET/crash-*.
set -euo pipefail
target=$1 seconds=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
clang=${KTNN_FUZZ_CXX:-clang++}
command -v "$clang" >/dev/null || { echo "run_fuzzer: $clang not found" >&2; exit 1; }
mkdir -p "$work/$target"
cd "$work/$target"
"$clang" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I "$root/include" "$here/fuzz_$target.cpp" -lz -o "fuzz_$target"
rm -rf corpus && python3 "$here/make_${target}_seeds.py" corpus >/dev/null
# Leak checking stays on; -rss_limit keeps a declared size from taking the machine.
"./fuzz_$target" corpus -dict="$here/$target.dict" -max_total_time="$seconds" \
  -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 | tail -n 25
