"""Write the offline `datasets` cache from which NeMo Evaluator 0.3.0's `gsm8k` loads its items, from our
pinned GSM8K test split; run with the Python of its venv (datasets 5.2.0 writes what it reads).

    python nel_gsm8k_cache.py OUT TEST_JSONL

nemo_evaluator 0.3.0 benchmarks/gsm8k.py names `hf://openai/gsm8k?config=main&split=test`, which
environments/custom.py _load_hf turns into `load_dataset("openai/gsm8k", "main", split="test")`. The layout
that call finds with HF_DATASETS_OFFLINE=1 is the one launcher/catalog/images/prepare_hf_cache.py describes; here the
split is `test` and the source JSON lines (question, answer), as the Hub's parquet has them.
"""

import os
import shutil
import sys

from datasets.packaged_modules.json.json import Json


def main(out: str, test_jsonl: str) -> None:
    target = os.path.join(out, "openai___gsm8k", "main", "0.0.0", "offline")
    scratch = os.path.join(out, ".build")
    builder = Json(
        cache_dir=scratch, dataset_name="gsm8k", config_name="main", data_files={"test": test_jsonl}
    )
    builder.download_and_prepare(output_dir=target)
    shutil.rmtree(scratch, ignore_errors=True)
    print(target)


if __name__ == "__main__":
    main(*sys.argv[1:])
