#!/usr/bin/env bash
# Build an image from a Dockerfile with `ARG BASE_IMAGE`. Set BASE_IMAGE to build on an image of your
# choice (docker pulls it if needed). Unset, python:3.11-slim is used if it is already on this machine;
# otherwise a local Debian base is made offline with images/make-base.sh; nothing is pulled.
# Usage: scripts/build-image.sh TAG DOCKERFILE CONTEXT
set -euo pipefail
tag=$1 dockerfile=$2 context=$3
local_base=launcher-base:bookworm
here=$(cd "$(dirname "$0")/.." && pwd)
base=${BASE_IMAGE:-python:3.11-slim}
if [ -z "${BASE_IMAGE:-}" ] && ! docker image inspect "$base" >/dev/null 2>&1; then
  bash "$here/images/make-base.sh" "$local_base"
  base=$local_base
fi
docker build -q --build-arg BASE_IMAGE="$base" -t "$tag" -f "$dockerfile" "$context" >/dev/null
echo "built $tag (base $base)"
