#!/usr/bin/env bash
# CI smoke for the Python side: generate -> features -> train --smoke -> verify (< 1 min).
#
#   bash training/smoke.sh [WORKDIR]
#
# Features come from the oracle; with BACKFILL set to a command (e.g. "npx tsx src/cli/main.ts backfill"),
# they come from the TypeScript backfill instead and are compared with the oracle first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/training/.venv/bin/python}
if [ $# -gt 0 ]; then
  WORK=$1
else
  # No WORKDIR: a scratch one, removed on exit.
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
export PYTHONPATH="$ROOT/training${PYTHONPATH:+:$PYTHONPATH}"

"$PY" -m fraudscore_training.generate --days 30 --customers 200 --terminals 400 --seed 1 --output "$WORK/raw.csv"
"$PY" -m fraudscore_training.oracle --input "$WORK/raw.csv" --output "$WORK/oracle.csv" --feature-set v2
FEATURES="$WORK/oracle.csv"
if [ -n "${BACKFILL:-}" ]; then
  $BACKFILL --input "$WORK/raw.csv" --output "$WORK/backfill.csv" --feature-set transaction_v2
  "$PY" -m fraudscore_training.compare "$WORK/backfill.csv" "$WORK/oracle.csv"
  FEATURES="$WORK/backfill.csv"
fi
"$PY" -m fraudscore_training.train --features "$FEATURES" --out "$WORK/models" --name smoke --version 1 \
  --feature-set transaction_v2 --train-until 2018-08-01 --seed 7 --smoke
"$PY" -m fraudscore_training.manifest verify "$WORK/models/smoke/1"
