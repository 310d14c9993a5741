#!/usr/bin/env bash
# Runs tests/mpi/failure.cpp's program on 2 ranks in MODE and checks that the
# job fails within SECONDS (no rank left waiting), naming the failing rank:
#
#   check_failure.sh MODE SECONDS MPIEXEC [MPIEXEC ARGS...] PROGRAM
#
# unreadable, step: both ranks report rank 1's error and exit with 1.
# abort: rank 1 ends the job with MPI_Abort; rank 0 never exits by itself.
set -uo pipefail
mode=$1 seconds=$2
shift 2
# Each rank writes what it prints to DIR/rank<R>.txt (the program's second
# argument), so two ranks' lines cannot interleave.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
start=$(date +%s)
timeout "$seconds" "$@" "$mode" "$dir" >"$dir/mpiexec.txt" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
for f in "$dir"/mpiexec.txt "$dir"/rank*.txt; do
  [ -f "$f" ] && { echo "== $(basename "$f")"; cat "$f"; }
done
echo "check_failure: mode $mode, exit status $rc after ${elapsed} s"
fail() { echo "check_failure: FAILED: $*" >&2; exit 1; }
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "the job did not end within $seconds s (a rank left waiting)"
[ "$rc" -ne 0 ] || fail "the job exited with 0"
# has RANK REGEX: rank RANK's output has a line matching REGEX.
has() { grep -qE -- "$2" "$dir/rank$1.txt" 2>/dev/null || fail "rank $1 printed no line matching: $2"; }
case "$mode" in
  unreadable)
    for r in 0 1; do
      has $r "^rank $r of 2: load the training data: rank 1 of 2 failed: ktnn::data::read_idx: cannot open '/nonexistent/train-images-idx3-ubyte.gz'"
      has $r "^rank $r exits with 1$"
    done ;;
  step)
    for r in 0 1; do
      has $r "^rank $r of 2: ktnn::mpi::train_step: rank 1 of 2 failed: ktnn::Model::forward: 'wrong' has 5 features"
      has $r "^rank $r exits with 1$"
    done ;;
  abort)
    has 1 "^rank 1 of 2: rank 1 gave up outside ktnn$"
    has 1 "rank 1 failed outside any agreement point, so the other ranks cannot know; ending the job with MPI_Abort"
    if grep -q "exits with" "$dir/rank0.txt" 2>/dev/null; then fail "rank 0 finished by itself"; fi ;;
  *) fail "unknown mode $mode" ;;
esac
echo "check_failure: ok"
