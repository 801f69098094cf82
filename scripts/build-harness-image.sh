#!/usr/bin/env bash
# `make image`: build the harness image from a host-side wheelhouse (no network inside docker build).
# Usage: scripts/build-harness-image.sh TAG
set -euo pipefail
tag=${1:?usage: build-harness-image.sh TAG}
here=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/images/harness/Dockerfile" "$here/images/harness/requirements.txt" \
   "$here/images/harness/data-requirements.txt" "$ctx/"
# Wheels for the image's Python (3.11, manylinux x86_64/aarch64 like the host), cached between builds.
cache=${WHEELHOUSE:-$here/build/wheelhouse}
mkdir -p "$cache"
"${PYTHON:-python3}" -m pip download -q --dest "$cache" --only-binary=:all: --python-version 3.11 \
  -r "$here/images/harness/requirements.txt"
"${PYTHON:-python3}" -m pip download -q --dest "$cache" --no-deps --require-hashes \
  -r "$here/images/harness/data-requirements.txt"
cp -r "$cache" "$ctx/wheelhouse"
# Only the harness and the package marker go in: the image needs no Hydra or Docker SDK.
mkdir -p "$ctx/src/launcher"
cp "$here/launcher/__init__.py" "$ctx/src/launcher/"
cp -r "$here/launcher/harness" "$ctx/src/launcher/harness"
find "$ctx/src" -name __pycache__ -prune -exec rm -rf {} +
bash "$here/scripts/build-image.sh" "$tag" "$ctx/Dockerfile" "$ctx"
