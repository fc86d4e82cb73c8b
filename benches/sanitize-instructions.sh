#!/usr/bin/env bash
# Instructions per call of the sanitizer now and before gitleaks' rules,
# counted by callgrind: a figure the shared machine's noise cannot move,
# beside the timings of `cargo bench -p poolscope-benches --bench sanitize`. Not part of CI.
#
#   benches/sanitize-instructions.sh            # 200 calls per input (after a first), 3 builds
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-200}
builds=${BUILDS:-3}
command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install valgrind"; exit 1; }
bin=$(cargo bench -p poolscope-benches --no-run --bench sanitize_callgrind 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-18s %14s %14s %8s\n' input now before now/before
for input in line-clean line-secret traceback-clean traceback-secrets build; do
  n=$calls
  first=1
  [ "$input" = build ] && n=$builds && first=0
  line=()
  for which in now before; do
    # The difference from a run of one call is the calls alone, without
    # what the first call builds once (a lazy DFA's first states, a rule's
    # anchored search): a process pays that once, not per line.
    base=$(count "$which" "$input" "$first")
    with=$(count "$which" "$input" $((n + first)))
    line+=($(( (with - base) / n )))
  done
  printf '%-18s %14s %14s %8s\n' "$input" "${line[0]}" "${line[1]}" \
    "$(awk -v a="${line[0]}" -v b="${line[1]}" 'BEGIN { printf "%.2f", a / b }')"
done
