#!/usr/bin/env bash
# `make tools-image`: the image that runs the endpoint proxy and auto-export on Slurm nodes, built from a
# host-side wheelhouse (no network inside docker build). Usage: scripts/build-tools-image.sh TAG
set -euo pipefail
tag=${1:?usage: build-tools-image.sh TAG}
here=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/images/tools/Dockerfile" "$here/images/tools/requirements.txt" "$ctx/"
cache=${WHEELHOUSE:-$here/build/wheelhouse}
mkdir -p "$cache"
"${PYTHON:-python3}" -m pip download -q --dest "$cache" --only-binary=:all: --python-version 3.11 \
  -r "$here/images/tools/requirements.txt"
cp -r "$cache" "$ctx/wheelhouse"
# The launcher package; the proxy and the export step import no Hydra and no Docker SDK.
mkdir -p "$ctx/src"
cp -r "$here/launcher" "$ctx/src/launcher"
find "$ctx/src" -name __pycache__ -prune -exec rm -rf {} +
bash "$here/scripts/build-image.sh" "$tag" "$ctx/Dockerfile" "$ctx"
