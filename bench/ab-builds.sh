#!/usr/bin/env bash
# Two builds of the service side by side, alternating, in one run: CPU per request from each service's own
# process_cpu_*_seconds_total under the same paced load (bench/paced-load.ts), on Redis, each round a fresh
# service with the benches' history (bench-C1, bench-T1). A rate above capacity saturates it, which is where CPU
# per request is read (at a low rate each request pays for caches the other processes emptied).
#
#   bash bench/ab-builds.sh <checkout A> <checkout B> [rounds=3] [rate=3000] [seconds=6]
#
# Each checkout needs `npm run build` (a `git worktree` or `git archive` of the commit, node_modules copied or
# installed: not linked, when the two differ in dependencies). Needs `bash scripts/services.sh up redis` and
# .services/env. Prints one line per round and build: the CPU µs per request, the load average, the load's JSON.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for d in "$1" "$2"; do
  [[ -f $d/dist/src/cli/main.js ]] || { echo "ab-builds: $d has no build (dist/src/cli/main.js)" >&2; exit 2; }
done
A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
ROUNDS=${3:-3} RATE=${4:-3000} DUR=${5:-6} PORT=${AB_PORT:-18097}
set -a; . "$ROOT/.services/env"; set +a
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "ab-builds: port $PORT is taken (AB_PORT=…)" >&2; exit 2; fi
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null' EXIT
TOKEN=bench-events-token-0123456789
BODY='{"transaction_id":"[<id>]","timestamp":"2018-08-09T10:00:00Z","customer_id":"bench-C1","terminal_id":"bench-T1","amount":57.16}'
cpu() { curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^process_cpu_(user|system)_seconds_total/{s+=$2} END{printf "%.6f", s}'; }
load() { (cd "$ROOT" && node --import tsx bench/paced-load.ts --port "$PORT" --rate "$RATE" --duration "$1" --body "$BODY"); }
for r in $(seq 1 "$ROUNDS"); do
  for X in A B; do
    dir=$A
    [[ $X == B ]] && dir=$B
    (cd "$dir" && PORT=$PORT HOST=127.0.0.1 REDIS_CLUSTER_NODES= KAFKA_BROKERS= REDIS_KEY_PREFIX="ab$RANDOM" EVENTS_TOKEN=$TOKEN \
      MODEL_DIR="$ROOT/models" LOG_LEVEL=info exec node dist/src/cli/main.js serve >/dev/null 2>&1) &
    pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null || { echo "ab-builds: the service of $X ($dir) did not start" >&2; exit 1; }
    (cd "$ROOT" && node --import tsx -e "import('./bench/lib/service.ts').then((m) => m.seedBenchHistory($PORT, '$TOKEN'))")
    load 3 >/dev/null
    c0=$(cpu)
    out=$(load "$DUR")
    c1=$(cpu)
    n=$(node -e 'const l = JSON.parse(process.argv[1]); if (l.non2xx || l.errors || !l.requests) process.exit(1); console.log(l.requests)' "$out") ||
      { echo "ab-builds: failed requests in round $r $X: $out" >&2; exit 1; }
    echo "round $r $X cpu_us_per_req $(node -e 'const [a, b, n] = process.argv.slice(1).map(Number); console.log(Math.round(((b - a) * 1e6) / n))' "$c0" "$c1" "$n") load $(cut -d' ' -f1 /proc/loadavg) $out"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
  done
done
