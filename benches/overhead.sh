#!/usr/bin/env bash
# Reproduces the overhead figures in BENCHMARKS.md: criterion side by side in
# one run per build, then instruction counts under callgrind. Long: about
# ten minutes on two cores. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-1000000}

# ONLY=callgrind skips the criterion runs: the instruction counts and the
# machine-code check alone, in about two minutes.
if [ "${ONLY:-}" != callgrind ]; then
  echo "== criterion, aspects compiled out"
  cargo bench -p poolscope-benches --bench overhead -- "$@"
  echo "== criterion, aspects compiled in (--features observe)"
  cargo bench -p poolscope-benches --bench overhead --features observe -- "$@"
fi

command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install valgrind"; exit 1; }
out=$(mktemp -d)
for build in off on; do
  features=()
  [ "$build" = on ] && features=(--features observe)
  bin=$(cargo bench -p poolscope-benches --no-run --bench callgrind "${features[@]}" 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
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
    # With no aspect the functions must be the same machine code: `observed`
    # (literal arguments, handed back token for token) and `observed_args`
    # (argument expressions, checked in a block that never runs). The
    # compiler folds identical functions, so either may have no symbol left
    # at all: its address is `plain`'s.
    symbols=$(nm -C "$bin" | grep -E ' poolscope_benches::subject::(plain|observed|observed_args)$' || true)
    echo "$symbols" | sed 's/^/  nm: /'
    dis() { objdump -d --no-show-raw-insn -C "$bin" | awk -v f="<poolscope_benches::subject::$1>:" '$2==f{p=1;next} /^$/{p=0} p{sub(/^ *[0-9a-f]+:\t/,""); print}'; }
    present=$(echo "$symbols" | sed -n 's/.*poolscope_benches::subject::\([a-z_]*\)$/\1/p')
    first=$(echo "$present" | head -n 1)
    address() { echo "$symbols" | awk -v f="poolscope_benches::subject::$1" '$3==f {print $1}'; }
    for twin in $(echo "$present" | tail -n +2); do
      if [ "$(address "$first")" = "$(address "$twin")" ]; then
        # Folded into one function under two public names.
        echo "objdump aspects-off: $first and $twin are one function (the same address)"
      elif cmp -s <(dis "$first") <(dis "$twin"); then
        echo "objdump aspects-off: $first and $twin are identical machine code"
      else
        echo "objdump aspects-off: $first and $twin differ"; diff <(dis "$first") <(dis "$twin") || true
        exit 1
      fi
    done
    for name in plain observed observed_args; do
      echo "$present" | grep -qx "$name" || echo "objdump aspects-off: $name was folded into $first (identical machine code)"
    done
    valgrind --tool=callgrind --callgrind-out-file="$out/off-args" "$bin" observed_args "$calls" >/dev/null 2>"$out/off-args.log"
    args_total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/off-args.log")
    echo "callgrind aspects-off: observed_args - plain = $((args_total - plain)) instructions ($(( (args_total - plain) / calls )) per call)"
    [ $(( (args_total - plain) / calls )) = 0 ] || { echo "observed_args costs more than plain"; exit 1; }
  fi
done
