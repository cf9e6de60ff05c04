#!/usr/bin/env bash
# Creates (or refreshes) the training virtualenv: training/.venv (git-ignored).
#
#   scripts/python-env.sh            ensure the venv; prints its path on stdout (progress goes to stderr)
#   PYTHON=python3.11 scripts/python-env.sh    pick the interpreter (default: python3)
#
# pip runs only when training/requirements.txt (or the interpreter) changed since the last successful
# install: the hash is kept in training/.venv/.requirements.sha256. Idempotent and cheap when up to date.
# Use it as: "$(scripts/python-env.sh)/bin/python" training/train.py
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/training/.venv"
REQ="$ROOT/training/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

log() { printf '[python-env] %s\n' "$*" >&2; }
die() {
  printf '[python-env] ERROR: %s\n' "$*" >&2
  exit 1
}

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"

# A venv whose interpreter no longer runs (python upgraded or removed) is rebuilt.
if [[ -d $VENV ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "existing venv is broken; recreating"
  rm -rf "$VENV"
fi

if [[ ! -x $VENV/bin/python ]]; then
  log "creating $VENV"
  if ! "$PYTHON" -m venv "$VENV" >&2; then
    rm -rf "$VENV"
    # Debian's system python3 needs python3-venv for ensurepip.
    if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
      log "python3 -m venv failed; installing python3-venv"
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -q python3-venv >&2 || { apt-get update -q >&2 && apt-get install -y -q python3-venv >&2; }
      "$PYTHON" -m venv "$VENV" >&2 || die "could not create $VENV"
    else
      die "could not create $VENV (is the venv module installed?)"
    fi
  fi
fi

if [[ ! -f $REQ ]]; then
  log "no training/requirements.txt yet: venv has no extra packages"
  printf '%s\n' "$VENV"
  exit 0
fi

want=$({
  sha256sum "$REQ" | cut -d' ' -f1
  "$VENV/bin/python" -c 'import sys; print(sys.version)'
} | sha256sum | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)

if [[ $want != "$have" ]]; then
  log "installing training/requirements.txt into the venv"
  t0=$SECONDS
  rm -f "$STAMP"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -r "$REQ" >&2 ||
    die "pip install -r training/requirements.txt failed"
  printf '%s\n' "$want" >"$STAMP"
  log "requirements installed in $((SECONDS - t0))s"
else
  log "requirements up to date"
fi

printf '%s\n' "$VENV"
