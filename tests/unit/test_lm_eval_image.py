"""The lm-eval oracle's pieces that run without Docker: the image's entry point
(images/lm-eval/lm_eval_task.py: lm_eval's argv from our run config, lm-eval's results as our layout)
and the packaged `evaluation=lm_eval_compare` group. The image runs in test_lm_eval_oracle.py."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from launcher.store import results as results_store

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("lm_eval_task", ROOT / "images/lm-eval/lm_eval_task.py")
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)

CONFIG = {
    "task": "lm_eval.hellaswag",
    "model_id": "smollm2-135m-instruct",
    "url": "http://127.0.0.1:24326/v1/completions",
    "endpoint_type": "completions",
    "params": {"limit_samples": 20, "parallelism": 1, "request_timeout": 600.0, "max_retries": None},
}
# lm-eval 0.4.13's results_*.json (results and n-samples) from BENCHMARKS.md 8's run, as written
RECORDED = {
    "results": {
        "hellaswag": {
            "name": "hellaswag",
            "alias": "hellaswag",
            "sample_len": 20,
            "acc,none": 0.4,
            "acc_stderr,none": 0.11239029738980327,
            "acc_norm,none": 0.35,
            "acc_norm_stderr,none": 0.1094243309804831,
        },
        "gsm8k_cot_zeroshot": {
            "name": "gsm8k_cot_zeroshot",
            "alias": "gsm8k_cot_zeroshot",
            "sample_len": 3,
            "exact_match,strict-match": 0.0,
            "exact_match_stderr,strict-match": 0.0,
            "exact_match,flexible-extract": 0.0,
            "exact_match_stderr,flexible-extract": 0.0,
        },
    },
    "n-samples": {"hellaswag": {"original": 100, "effective": 20}, "gsm8k_cot_zeroshot": {"effective": 3}},
}


def test_argv_wires_the_launchers_endpoint_into_local_completions():
    argv = entry.lm_eval_argv("hellaswag", ["--seed", "0"], CONFIG)
    assert argv[:3] == ["lm_eval", "--model", "local-completions"]
    model_args = dict(kv.split("=", 1) for kv in argv[argv.index("--model_args") + 1].split(","))
    assert model_args["base_url"] == CONFIG["url"] and model_args["model"] == CONFIG["model_id"]
    assert model_args["tokenizer_backend"] == "huggingface" and model_args["tokenized_requests"] == "False"
    assert (model_args["num_concurrent"], model_args["timeout"], model_args["max_retries"]) == (
        "1",
        "600",
        "3",
    )
    assert argv[argv.index("--tasks") + 1] == "hellaswag" and argv[argv.index("--limit") + 1] == "20"
    assert argv[-2:] == ["--seed", "0"] and "--apply_chat_template" not in argv


def test_a_chat_endpoint_gets_the_chat_model_and_its_template():
    argv = entry.lm_eval_argv("gsm8k_cot_zeroshot", [], {**CONFIG, "endpoint_type": "chat", "params": {}})
    assert argv[2] == "local-chat-completions" and "--apply_chat_template" in argv and "--limit" not in argv


@pytest.mark.parametrize("option", ["--num_fewshot", "--limit=5", "--model_args", "--output_path"])
def test_options_it_sets_or_that_would_read_the_train_copy_are_refused(option, capsys):
    with pytest.raises(SystemExit) as exc:
        entry.lm_eval_argv("hellaswag", [option, "1"], CONFIG)
    assert exc.value.code == 2
    assert option.split("=")[0] in capsys.readouterr().err


def test_lm_evals_results_read_as_ours(tmp_path):
    doc = {"results": {"tasks": entry.scores(RECORDED, "0.4.13")}, "model_id": "m"}
    (tmp_path / "results").mkdir()
    (tmp_path / "results/results.json").write_text(json.dumps(doc))
    got = {
        t.task: {s.label: (s.value, s.stderr, s.count) for s in t.scores}
        for t in results_store.read(tmp_path).tasks
    }
    assert got == {
        "hellaswag": {"acc": (0.4, 0.11239029738980327, 20), "acc_norm": (0.35, 0.1094243309804831, 20)},
        "gsm8k_cot_zeroshot": {
            "exact_match,strict-match": (0.0, 0.0, 3),
            "exact_match,flexible-extract": (0.0, 0.0, 3),
        },
    }


def test_the_compare_group_pairs_each_lm_eval_task_with_ours_on_the_same_items():
    group = yaml.safe_load((ROOT / "launcher/conf/evaluation/lm_eval_compare.yaml").read_text())
    tasks = {t["name"]: t for t in group["evaluation"]["tasks"]}
    image = (ROOT / "images/lm-eval/IMAGE").read_text().strip()
    theirs = [t for t in tasks if t.startswith("lm_eval.")]
    assert sorted(theirs) == ["lm_eval.gsm8k_cot_zeroshot", "lm_eval.hellaswag", "lm_eval.truthfulqa_mc1"]
    for name in theirs:
        bare = name.removeprefix("lm_eval.")
        ours = tasks[f"launcher.{bare}"]
        assert tasks[name]["container"] == image and tasks[name]["command"] == ["launcher-lm-eval", bare]
        assert tasks[name].get("params") == ours.get("params"), name  # the same first items
        assert tasks[name]["endpoint_type"] == "completions"
    # the two harnesses' requests differ only in these, which the proxy evens out before its cache
    assert group["target"]["api_endpoint"]["adapter_config"] == {
        "params_to_remove": ["seed"],
        "params_to_add": {"temperature": 0},
    }


def test_the_compare_group_composes(cli):
    proc = cli("execution=local", "deployment=llama_cpp", "evaluation=lm_eval_compare", "-n", check_rc=0)
    assert proc.stdout.count("launcher-lm-eval:") >= 3
