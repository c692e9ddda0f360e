#!/usr/bin/env bash
# `lowbit explore` killed with SIGKILL at several moments and run again must end with exactly the
# points and metrics of an uninterrupted run (REF, written by the explore_small fixture); so must
# the same exploration shared by 3 MPI ranks on this machine.
# Usage: explore_resume_test.sh LOWBIT MODEL SPACE REF WORK
set -euo pipefail
lowbit=$1 model=$2 space=$3 ref=$4 work=$5
mkdir -p "$work"
cd "$work"
rm -f killed.db* mpi.db*

metrics() { sqlite3 "$1" "SELECT key, top1, top5, images, macs, bit_ops, weight_bits, activation_bits, lut, ff, carry, dsp FROM points ORDER BY key"; }
rows() { [ -f "$1" ] && sqlite3 "$1" "SELECT count(*) FROM points" 2>/dev/null || echo 0; }
total=$(rows "$ref")
[ "$total" -ge 6 ] || { echo "reference store $ref holds $total points"; exit 1; }

# Waits until the store holds at least $2 rows (or the run ends), then kills it with SIGKILL.
kill_after_rows() {
  local want=$1 extra_sleep=$2
  "$lowbit" explore "$model" --space "$space" --store killed.db > /dev/null 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null && [ "$(rows killed.db)" -lt "$want" ]; do sleep 0.05; done
  sleep "$extra_sleep"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "killed with $(rows killed.db) of $total points stored"
}
kill_after_rows 0 0.2   # while loading
kill_after_rows 1 0.3   # in the middle of a point
kill_after_rows 4 0     # right after a store write
mid=$(rows killed.db)
if [ "$mid" -ge "$total" ]; then echo "every point was done before the last kill: the test did not interrupt anything"; exit 1; fi

"$lowbit" explore "$model" --space "$space" --store killed.db | tee resume.log
grep -q "$mid already in killed.db" resume.log || { echo "the resumed run did not skip the $mid stored points"; exit 1; }
[ "$(sqlite3 killed.db 'SELECT count(DISTINCT key) FROM points')" -eq "$total" ] || { echo "distinct keys differ"; exit 1; }
[ "$(rows killed.db)" -eq "$total" ] || { echo "rows differ: $(rows killed.db) vs $total"; exit 1; }
diff <(metrics "$ref") <(metrics killed.db) || { echo "metrics of the resumed run differ from the uninterrupted run"; exit 1; }
echo "resumed store: $total points, metrics identical to the uninterrupted run"

# Three MPI ranks (Open MPI refuses root without the two variables; the tests run as root in CI).
# Open MPI keeps some allocations until exit, which LeakSanitizer would report in the asan build.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpirun --oversubscribe -n 3 "$lowbit" explore "$model" --space "$space" --store mpi.db | tee mpi.log
diff <(metrics "$ref") <(metrics mpi.db) || { echo "metrics of the 3-rank run differ from the single-process run"; exit 1; }
[ "$(sqlite3 mpi.db 'SELECT count(DISTINCT rank) FROM points')" -eq 3 ] || { echo "not every rank evaluated points"; exit 1; }
echo "3 MPI ranks: $total points, metrics identical to the single-process run"
