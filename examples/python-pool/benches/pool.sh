#!/usr/bin/env bash
# The flagship pool with poolscope's aspects compiled in and compiled out,
# run in alternating pairs (off/on, then on/off, ...) so drift on a shared
# machine hits both builds alike; prints every run and the means. Needs
# python3 with grpcio and grpcio-tools. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../../.."
requests=${REQUESTS:-10000}
concurrency=${CONCURRENCY:-16}
rounds=${ROUNDS:-6}
build() { cargo bench -p poolscope-python-pool --no-run --bench pool "$@" 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1; }
off=$(build --no-default-features)
on=$(build)
out=$(mktemp)
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="$off $on"; else order="$on $off"; fi
  for bin in $order; do "$bin" "$requests" "$concurrency" | tee -a "$out"; done
done
awk '{
  split($4, r, "="); split($5, p, "="); split($6, q, "=");
  n[$1]++; rps[$1] += r[2]; p50[$1] += p[2]; p99[$1] += q[2]
} END {
  for (k in n) printf "mean %s runs=%d rps=%.0f p50_us=%.0f p99_us=%.0f\n", k, n[k], rps[k]/n[k], p50[k]/n[k], p99[k]/n[k]
  printf "on/off: rps %.3f, p50 %.3f\n", (rps["observe-on"]/n["observe-on"])/(rps["observe-off"]/n["observe-off"]), (p50["observe-on"]/n["observe-on"])/(p50["observe-off"]/n["observe-off"])
}' "$out"
