"""Write a Hugging Face `datasets` cache folder that `load_dataset(REPO, CONFIG)` reads offline.

    python3 prepare_hf_cache.py OUT REPO CONFIG[:SPLIT]=FILE [...]

FILE is a .csv, .jsonl or .jsonl.gz; `pkg:PACKAGE/PATH` names a file of an installed package (the pinned
data packages of this image). SPLIT defaults to `train`. OUT becomes the dataset's own cache folder, to be
mounted as $HF_DATASETS_CACHE/<namespace>___<name> (the name snake-cased, as `datasets` does).

Runs inside the image (`launcher images build`), so the writer is the reader's `datasets` (5.2.0). What that
version reads with HF_DATASETS_OFFLINE=1 (load.py CachedDatasetModuleFactory, packaged_modules/cache/cache.py
_find_hash_in_cache): <config>/<version>/<hash>/ with a dataset_info.json whose config_name is <config>,
and <name>-<split>.arrow per split.
"""

import os
import shutil
import sys
from importlib.resources import files

from datasets.packaged_modules.csv.csv import Csv
from datasets.packaged_modules.json.json import Json

VERSION, HASH = "0.0.0", "offline"  # any names: the reader takes the newest folder it finds


def resolve(path: str) -> str:
    if path.startswith("pkg:"):
        package, _, inside = path[4:].partition("/")
        return str(files(package) / inside)
    return os.path.abspath(path)


def prepare(out: str, repo: str, config: str, splits: dict[str, str]) -> str:
    target = os.path.join(out, config, VERSION, HASH)
    scratch = os.path.join(out, ".build")
    kind = Csv if all(f.endswith(".csv") for f in splits.values()) else Json
    name = repo.split("/")[-1]
    builder = kind(cache_dir=scratch, dataset_name=name, config_name=config, data_files=splits)
    builder.download_and_prepare(output_dir=target)
    shutil.rmtree(scratch, ignore_errors=True)
    return target


def main(argv: list[str]) -> None:
    if len(argv) < 3 or any("=" not in a for a in argv[2:]):
        sys.exit(__doc__)
    out, repo = argv[0], argv[1]
    configs: dict[str, dict[str, str]] = {}
    for pair in argv[2:]:
        key, path = pair.split("=", 1)
        config, _, split = key.partition(":")
        configs.setdefault(config, {})[split or "train"] = resolve(path)
    for config, splits in configs.items():
        print(prepare(out, repo, config, splits))
    # datasets leaves lock files next to what it wrote; the cache is mounted read-only, so none belong in it
    for root, _, names in os.walk(out):
        for f in names:
            if f.endswith(".lock"):
                os.remove(os.path.join(root, f))


if __name__ == "__main__":
    main(sys.argv[1:])
