#!/usr/bin/env bash
# Reproduces the HTTP figures in BENCHMARKS.md: /metrics render time, then
# wrk against a bare hyper server and poolscope's, one after the other in one
# run, on loopback. Needs wrk (`apt-get install wrk`). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-32}

echo "== /metrics render time"
cargo bench -p poolscope-benches --bench http_render --features observe,http

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk"; exit 1; }
bin=$(cargo bench -p poolscope-benches --no-run --bench http_servers --features observe,http 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
port=19464
run() { # server path
  "$bin" "$1" "$port" & pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port$2" && break; sleep 0.1; done
  echo "== wrk -t1 -c$connections -d${seconds}s $1 $2"
  wrk -t1 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port$2" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx'
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
run bare /health
run poolscope /health
run poolscope /health/ready
run poolscope /metrics
run bare /health
