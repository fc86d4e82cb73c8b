#!/usr/bin/env bash
# Reproduces the overhead figures in BENCHMARKS.md: criterion side by side in
# one run per build, then instruction counts under callgrind. Long: about
# ten minutes on two cores. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-1000000}

echo "== criterion, aspects compiled out"
cargo bench --bench overhead -- "$@"
echo "== criterion, aspects compiled in (--features observe)"
cargo bench --bench overhead --features observe -- "$@"

command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install valgrind"; exit 1; }
out=$(mktemp -d)
for build in off on; do
  features=()
  [ "$build" = on ] && features=(--features observe)
  bin=$(cargo bench --no-run --bench callgrind "${features[@]}" 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
  for function in plain observed; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$build-$function" "$bin" "$function" "$calls" >/dev/null 2>"$out/$build-$function.log"
    total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$build-$function.log")
    echo "callgrind aspects-$build $function: $total instructions for $calls calls"
    echo "$total" >"$out/$build-$function.total"
  done
  plain=$(cat "$out/$build-plain.total")
  observed=$(cat "$out/$build-observed.total")
  echo "callgrind aspects-$build: observed - plain = $((observed - plain)) instructions ($(( (observed - plain) / calls )) per call)"
  if [ "$build" = off ]; then
    # With no aspect the two functions must be the same machine code. The
    # compiler folds identical functions, so `observed` may have no symbol
    # left at all: its address is `plain`'s.
    symbols=$(nm -C "$bin" | grep -E ' callgrind::subject::(plain|observed)$' || true)
    echo "$symbols" | sed 's/^/  nm: /'
    if ! echo "$symbols" | grep -q 'callgrind::subject::observed$'; then
      echo "objdump aspects-off: observed was folded into plain (identical machine code)"
    else
      dis() { objdump -d --no-show-raw-insn -C "$bin" | awk -v f="<callgrind::subject::$1>:" '$2==f{p=1;next} /^$/{p=0} p{sub(/^ *[0-9a-f]+:\t/,""); print}'; }
      if cmp -s <(dis plain) <(dis observed); then
        echo "objdump aspects-off: plain and observed are identical machine code"
      else
        echo "objdump aspects-off: plain and observed differ"; diff <(dis plain) <(dis observed) || true
        exit 1
      fi
    fi
  fi
done
