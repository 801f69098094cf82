#!/usr/bin/env bash
# `make llama-image`: the model server image for deployment=llama_cpp. llama-cpp-python is compiled once
# (portable build, about 7 CPU-minutes) and the wheel cached outside the checkout, so fresh clones and
# later builds reuse it; an existing image is kept unless FORCE=1.
# Usage: scripts/build-llama-image.sh TAG
set -euo pipefail
tag=${1:?usage: build-llama-image.sh TAG}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag already present (FORCE=1 rebuilds it)"; exit 0
fi
cache=${LAUNCHER_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/launcher/wheels}
mkdir -p "$cache"
if ! ls "$cache"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
  echo "compiling llama-cpp-python 0.3.36 (portable, several minutes; the wheel is cached in $cache)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_OPENMP=OFF" "$py" -m pip wheel -q --no-deps \
    --no-binary llama-cpp-python llama-cpp-python==0.3.36 -w "$cache"
fi
"$py" -m pip download -q --dest "$cache" --find-links "$cache" --only-binary=:all: \
  -r "$here/images/llama-cpp/requirements.txt"
"$py" -m pip download -q --dest "$cache" --no-deps --require-hashes \
  -r "$here/images/llama-cpp/model-requirements.txt"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here"/images/llama-cpp/{Dockerfile,requirements.txt,model-requirements.txt,patch_echo_logprobs.py} "$ctx/"
cp -r "$cache" "$ctx/wheelhouse"
bash "$here/scripts/build-image.sh" "$tag" "$ctx/Dockerfile" "$ctx"
