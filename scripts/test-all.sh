#!/usr/bin/env bash
# `npm test`: every vitest project (unit + integration) against real local servers, then the training package's
# pytest suite.
#
#   1. scripts/services.sh up all + up redis-cluster (Redis, Kafka KRaft broker, 3-master Redis Cluster),
#      unless FRAUDSCORE_SERVICES=external (then REDIS_URL / KAFKA_BROKERS / REDIS_CLUSTER_NODES, or
#      .services/env, must point at running servers);
#   2. sources .services/env;
#   3. scripts/python-env.sh (training/.venv; tests that shell out to Python use FRAUDSCORE_PYTHON);
#   4. npx vitest run "$@"  (extra arguments go to vitest, e.g. `npm test -- test/unit`);
#   4b. the training package's pytest suite (training/tests), when no vitest arguments were given;
#   5. stops the services this run started (not those that were already up), on success, failure or
#      Ctrl-C, unless KEEP_SERVICES=1.
# Exit code: vitest's, else pytest's (or the failing setup step's).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SERVICES="$ROOT/scripts/services.sh"
ALL_SERVICES=(redis kafka redis-cluster)
STARTED=()

log() { printf '[test-all] %s\n' "$*" >&2; }

cleanup() {
  local rc=$?
  trap '' INT TERM # a second Ctrl-C must not leave half-stopped servers behind
  if ((${#STARTED[@]} > 0)); then
    if [[ ${KEEP_SERVICES:-0} == 1 ]]; then
      log "KEEP_SERVICES=1: leaving ${STARTED[*]} running (stop with: scripts/services.sh down all)"
    else
      log "stopping ${STARTED[*]}"
      bash "$SERVICES" down "${STARTED[@]}" || log "warning: services.sh down failed"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ${FRAUDSCORE_SERVICES:-managed} != external ]]; then
  for svc in "${ALL_SERVICES[@]}"; do
    bash "$SERVICES" is-up "$svc" 2>/dev/null || STARTED+=("$svc")
  done
  t0=$SECONDS
  bash "$SERVICES" up all >/dev/null || {
    log "services.sh up all failed"
    exit 1
  }
  bash "$SERVICES" up redis-cluster >/dev/null || {
    log "services.sh up redis-cluster failed"
    exit 1
  }
  log "services ready in $((SECONDS - t0))s"
  # The services just started are the ones the tests must use: .services/env wins over the shell.
  if [[ -f .services/env ]]; then
    set -a
    # shellcheck disable=SC1091
    . .services/env
    set +a
  fi
else
  log "FRAUDSCORE_SERVICES=external: not starting servers"
  # External servers: variables already set in the environment win; .services/env fills the gaps.
  if [[ -f .services/env ]]; then
    while IFS='=' read -r key value; do
      [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
      [[ -n ${!key:-} ]] || export "$key=$value"
    done <.services/env
  fi
fi
log "REDIS_URL=${REDIS_URL:-} KAFKA_BROKERS=${KAFKA_BROKERS:-} REDIS_CLUSTER_NODES=${REDIS_CLUSTER_NODES:-}"

venv=$(bash "$ROOT/scripts/python-env.sh") || {
  log "scripts/python-env.sh failed"
  exit 1
}
export FRAUDSCORE_PYTHON="$venv/bin/python"
export KAFKAJS_NO_PARTITIONER_WARNING=1

npx vitest run "$@"
rc=$?
log "vitest exited with $rc"
# The Python side (oracle, generator, evaluation protocol, manifest writer) has its own tests; with
# arguments (a selection of vitest files) only vitest runs.
if (($# == 0)); then
  (cd training && "$FRAUDSCORE_PYTHON" -m pytest)
  py=$?
  log "pytest exited with $py"
  ((rc == 0)) && rc=$py
fi
exit "$rc"
