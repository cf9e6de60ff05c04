#!/usr/bin/env bash
# `fraudscore backfill` on each engine over the same files: wall time and peak RSS of the whole process tree
# (bench/peak_rss.py), one JSON line per engine on stdout. Needs `npm run build` and scripts/python-env.sh.
#
#   bash bench/backfill-engines.sh <label> <feature-set> <memory budget for the SQL engines> <input>...
#   e.g. bash bench/backfill-engines.sh handbook transaction_v2 2GB ../shared/data/fraud-handbook/transactions-2018-0*.csv.gz
#   ENGINES="duckdb spark" to choose (default: node duckdb spark); OUT=<dir> for the outputs (default /tmp).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
label=$1 set=$2 memory=$3
shift 3
out=${OUT:-/tmp}
py="$ROOT/training/.venv/bin/python"
for engine in ${ENGINES:-node duckdb spark}; do
  extra=()
  [[ $engine != node ]] && extra=(--memory "$memory")
  "$py" "$ROOT/bench/peak_rss.py" --label "$label $engine" -- \
    node "$ROOT/dist/src/cli/main.js" backfill --engine "$engine" --feature-set "$set" "${extra[@]}" \
    -o "$out/backfill-$label-$engine.csv" -i "$@" 2> >(grep -E '^backfill[: (]' >&2)
done
