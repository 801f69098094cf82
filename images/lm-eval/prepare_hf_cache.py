"""Turn export_data.py's JSON Lines into the Hugging Face `datasets` cache lm-eval reads offline.

    python3 prepare_hf_cache.py IN OUT

IN/<namespace>___<name>/<config>/<split>.jsonl -> OUT/<namespace>___<name>/<config>/0.0.0/offline/ with
dataset_info.json (config_name <config>) and <name>-<split>.arrow: what `datasets` 5.2.0 looks for with
HF_DATASETS_OFFLINE=1 (as launcher/catalog/images/simple_evals/prepare_hf_cache.py does; see its
README.md). Runs during the image build, so the writer is the reader's `datasets` version.
"""

import os
import shutil
import sys

from datasets.packaged_modules.json.json import Json


def build(name: str, config: str, files: dict, target: str) -> None:
    scratch = os.path.join(target, ".scratch")
    Json(cache_dir=scratch, dataset_name=name, config_name=config, data_files=files).download_and_prepare(
        output_dir=target
    )
    shutil.rmtree(scratch, ignore_errors=True)


def main(src: str, out: str) -> None:
    for folder in sorted(os.listdir(src)):
        name = folder.split("___", 1)[1]
        for config in sorted(os.listdir(os.path.join(src, folder))):
            here = os.path.join(src, folder, config)
            files = {f.removesuffix(".jsonl"): os.path.join(here, f) for f in os.listdir(here)}
            target = os.path.join(out, folder, config, "0.0.0", "offline")
            build(name, config, files, target)
            print(target, sorted(files))
    for root, _, names in os.walk(out):  # datasets' lock files do not belong in the image
        for f in names:
            if f.endswith(".lock"):
                os.remove(os.path.join(root, f))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
