"""Write a Hugging Face `datasets` cache that `load_dataset(REPO, CONFIG)` reads offline, from local CSVs.

    python3 prepare_hf_cache.py OUT REPO CONFIG=CSV [CONFIG=CSV ...]

Runs inside the NEL image (scripts/build-nel-image.sh) so the cache is written by the same `datasets`
version (5.2.0) that reads it. What that version looks for with HF_DATASETS_OFFLINE=1 (datasets 5.2.0,
load.py CachedDatasetModuleFactory and packaged_modules/cache/cache.py _find_hash_in_cache):
OUT/<namespace>___<name>/<config>/<version>/<hash>/ holding dataset_info.json whose config_name is <config>,
and <name>-<split>.arrow. Each CSV becomes the `train` split, as the Hub's CSV configs of such repos do.
"""

import os
import shutil
import sys

from datasets.packaged_modules.csv.csv import Csv

VERSION, HASH = "0.0.0", "offline"  # any names: the reader takes the newest folder it finds


def prepare(out: str, repo: str, config: str, csv: str) -> str:
    namespace, name = repo.split("/")
    target = os.path.join(out, f"{namespace}___{name}", config, VERSION, HASH)
    scratch = os.path.join(out, ".build")
    builder = Csv(cache_dir=scratch, dataset_name=name, config_name=config, data_files={"train": csv})
    builder.download_and_prepare(output_dir=target)
    shutil.rmtree(scratch, ignore_errors=True)
    return target


def main(argv: list[str]) -> None:
    if len(argv) < 3 or any("=" not in a for a in argv[2:]):
        sys.exit(__doc__)
    out, repo = argv[0], argv[1]
    for pair in argv[2:]:
        config, csv = pair.split("=", 1)
        print(prepare(out, repo, config, os.path.abspath(csv)))
    # datasets leaves lock files next to what it wrote; the cache is mounted read-only, so none belong in it
    for root, _, files in os.walk(out):
        for f in files:
            if f.endswith(".lock"):
                os.remove(os.path.join(root, f))


if __name__ == "__main__":
    main(sys.argv[1:])
