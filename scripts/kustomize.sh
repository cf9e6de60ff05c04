#!/usr/bin/env bash
# Runs the pinned kustomize, building it from the Go module proxy on first use:
#   bash scripts/kustomize.sh build k8s/overlays/prod
#
# The binary is cached as .cache/bin/kustomize-<version> (.cache/ is git-ignored), so bumping the pin below
# rebuilds it. A cold build (download + compile) takes about a minute; later runs start instantly.
# Needs Go >= 1.24 (kustomize v5.8.1's go.mod); GOTOOLCHAIN=local so Go never fetches a toolchain by itself.
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir="$root/.cache/bin"
bin="$bin_dir/kustomize-$KUSTOMIZE_VERSION"

if [[ ! -x $bin ]]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "kustomize.sh: Go is needed to build kustomize $KUSTOMIZE_VERSION (https://go.dev/dl/)" >&2
    exit 1
  fi
  mkdir -p "$bin_dir"
  # Build into a private directory, then rename: concurrent callers (parallel test files) never see a
  # half-written binary, and the last rename wins with an identical file.
  tmp=$(mktemp -d "$bin_dir/.kustomize-build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "kustomize.sh: building sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION (first run only)" >&2
  GOTOOLCHAIN=local GOBIN="$tmp" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
  mv -f "$tmp/kustomize" "$bin"
  rm -rf "$tmp"
  trap - EXIT # exec below would skip the trap
fi

exec "$bin" "$@"
