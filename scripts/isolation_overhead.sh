#!/usr/bin/env bash
# The cost of running every CPU candidate in its own child process (docs/isolation.md): times
# `convbp run SUITE` with --isolate and with --no-isolate, alternating, ROUNDS times each, and
# prints each side's minimum wall time (the least disturbed run) and the overhead.
#   scripts/isolation_overhead.sh [ROUNDS] [SUITE ...]    defaults: 3 rounds; smoke and default
# SUITE "default" is the built-in default suite (`convbp run` without a suite). Uses build/convbp
# (CONVBP=path to override); run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
convbp=${CONVBP:-build/convbp}
rounds=${1:-3}
shift || true
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(smoke default)

seconds() {  # wall time of one run, in seconds
  local start end
  start=$(date +%s.%N)
  "$convbp" run "$@" -q >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

for suite in "${suites[@]}"; do
  args=()
  [ "$suite" = default ] || args=("$suite")
  best_on="" best_off="" all_on="" all_off=""
  for ((i = 0; i < rounds; i++)); do
    on=$(seconds "${args[@]}" --isolate)
    off=$(seconds "${args[@]}" --no-isolate)
    all_on+=$(printf ' %.2f' "$on") all_off+=$(printf ' %.2f' "$off")
    if [ -z "$best_on" ] || (($(echo "$on < $best_on" | bc -l))); then best_on=$on; fi
    if [ -z "$best_off" ] || (($(echo "$off < $best_off" | bc -l))); then best_off=$off; fi
  done
  printf '%-8s isolated %6.2f s  in-process %6.2f s  overhead %+.1f%%   (isolated:%s; in-process:%s)\n' \
    "$suite" "$best_on" "$best_off" "$(echo "($best_on / $best_off - 1) * 100" | bc -l)" \
    "$all_on" "$all_off"
done
