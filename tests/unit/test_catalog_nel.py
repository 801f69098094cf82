"""The NEL catalogue: resolution rules, config_ef.yaml rendering, image overrides, `ls tasks` rows.

Parity with NEL itself (every task, its own dry run) is tests/integration/test_nel_parity.py.
"""

from __future__ import annotations

import pytest
import yaml

from launcher.catalog.nel import (
    CONTAINER_ENV,
    catalogue,
    catalogue_rows,
    merge_config,
    nel_params,
    render_task,
    resolve_nel,
    resolve_task,
)
from launcher.errors import ConfigError, LauncherError


class Builtin:
    image = "launcher-harness:test"
    description = "ours"


BUILTINS = {n: Builtin() for n in ("gsm8k", "humaneval", "gpqa_diamond", "aime2025", "hellaswag")}
URL = "http://127.0.0.1:8000/v1/chat/completions"


def test_table_has_nel_026_counts():
    cat = catalogue()
    assert (cat.version, len(cat.tasks), len(cat.harness_images)) == ("0.2.6", 421, 23)
    assert all(t.image.startswith("nvcr.io/nvidia/eval-factory/") for t in cat.tasks.values())


@pytest.mark.parametrize(
    "name, expected",
    [
        ("simple_evals.gpqa_diamond", "simple_evals.gpqa_diamond"),  # qualified
        ("mmlu_instruct", "lm-evaluation-harness.mmlu_instruct"),  # bare, one harness has it
        ("gsm8k", "lm-evaluation-harness.gsm8k"),  # bare: NEL alone has no collision rule with ours
        ("AA-LCR.aa_lcr", "AA-LCR.aa_lcr"),  # harness names are case-sensitive
        ("no_such_task", None),
        ("unknown_harness.mmlu", None),  # not NEL's: the caller treats it as a custom task
        ("a.b.c", None),  # NEL accepts at most one dot
    ],
)
def test_resolve_nel(name, expected):
    task = resolve_nel(name)
    assert (task.name if task else None) == expected


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "mmlu",
            "'mmlu' is a task of 2 harnesses. Write one of: lm-evaluation-harness.mmlu, simple_evals.mmlu",
        ),
        ("simple_evals.gpqa", "not in NEL 0.2.6's catalogue of simple_evals (88 tasks). Did you mean"),
        ("aa-lcr.aa_lcr", None),  # wrong case is simply not NEL's (see resolve_task for the message)
    ],
)
def test_resolve_nel_errors(name, message):
    if message is None:
        assert resolve_nel(name) is None
        return
    with pytest.raises(ConfigError) as err:
        resolve_nel(name, key="evaluation.tasks[0].name")
    assert str(err.value).startswith("evaluation.tasks[0].name: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "name, qualified, source",
    [
        ("launcher.gsm8k", "launcher.gsm8k", "builtin"),
        ("hellaswag", "lm-evaluation-harness.hellaswag", "catalogue"),  # bare: never ours, NEL's
        ("gsm8k", "lm-evaluation-harness.gsm8k", "catalogue"),
        ("lm-evaluation-harness.gsm8k", "lm-evaluation-harness.gsm8k", "catalogue"),
        ("simple_evals.humaneval", "simple_evals.humaneval", "catalogue"),
        ("mmlu_instruct", "lm-evaluation-harness.mmlu_instruct", "catalogue"),
    ],
)
def test_resolve_task(name, qualified, source):
    r = resolve_task(name, BUILTINS)
    assert (r.name, r.source) == (qualified, source)
    assert (r.builtin is not None, r.nel is not None) == (source == "builtin", source == "catalogue")


@pytest.mark.parametrize(
    "name, message",
    [
        # ambiguous only where NEL's own catalogue is
        (
            "humaneval",
            "'humaneval' is a task of 2 harnesses. Write one of: bigcode-evaluation-harness.humaneval",
        ),
        ("gpqa_diamond", "'gpqa_diamond' is a task of "),
        # NEL does not know it; we have it as a built-in, always written launcher.<name>
        ("aime2025", "'aime2025' is not in NEL 0.2.6's catalogue. Our built-in is written launcher.aime2025"),
    ],
)
def test_bare_names_are_nel_s(name, message):
    with pytest.raises(LauncherError) as err:
        resolve_task(name, BUILTINS, key="evaluation.tasks[1].name")
    assert str(err.value).startswith(f"evaluation.tasks[1].name: {message}")


def test_unknown_names():
    assert resolve_task("my_custom_eval", BUILTINS) is None
    with pytest.raises(ConfigError, match="no built-in task 'mmlu'. Built-ins: aime2025, gpqa_diamond"):
        resolve_task("launcher.mmlu", BUILTINS)


def _config(rendered) -> dict:
    return yaml.safe_load(rendered.files["config_ef.yaml"])


def test_render_minimal():
    task = resolve_nel("simple_evals.gpqa_diamond")
    r = render_task(task, None, url=URL, model_id="m", api_key_name="MY_KEY", env_names=("HF_TOKEN",))
    assert r.image == "nvcr.io/nvidia/eval-factory/simple-evals:26.03"
    assert _config(r) == {
        "config": {"type": "gpqa_diamond", "output_dir": "/results"},
        "target": {"api_endpoint": {"url": URL, "model_id": "m", "type": "chat", "api_key_name": "MY_KEY"}},
        "metadata": {},
    }
    assert r.argv == (
        "bash",
        "-c",
        "cmd=$(command -v nemo-evaluator >/dev/null 2>&1 && echo nemo-evaluator || echo eval-factory)"
        " && exec $cmd run_eval --run_config /results/config_ef.yaml",
    )
    assert r.env_names == ("HF_TOKEN", "MY_KEY")  # names only: no value anywhere in the result
    assert r.env == CONTAINER_ENV == {"NEMO_EVALUATOR_TELEMETRY_LEVEL": "0"}


def test_render_user_config_wins_and_launcher_fills_the_rest():
    task = resolve_nel("lm-evaluation-harness.mmlu")  # a completions task
    user = merge_config(
        {"config": {"params": {"temperature": 0.0, "extra": {"num_fewshot": 5}}}},
        {
            "config": {"params": {"limit_samples": 10, "extra": {"args": "--x"}}},
            "target": {"api_endpoint": {}},
        },
    )
    user["target"]["api_endpoint"]["adapter_config"] = {"use_caching": True}
    r = render_task(task, user, url=URL, model_id="m", metadata={"launcher": {"task": task.name}})
    cfg = _config(r)
    assert cfg["config"] == {
        "type": "mmlu",
        "output_dir": "/results",
        "params": {"temperature": 0.0, "limit_samples": 10, "extra": {"num_fewshot": 5, "args": "--x"}},
    }
    assert cfg["target"]["api_endpoint"] == {
        "url": URL,
        "model_id": "m",
        "type": "completions",  # the task's first supported type
        "adapter_config": {"use_caching": True},
    }
    assert cfg["metadata"] == {"launcher": {"task": "lm-evaluation-harness.mmlu"}}
    assert r.env_names == ()
    # the input is not modified (pure)
    assert "type" not in user["target"]["api_endpoint"]


def test_render_overrides():
    task = resolve_nel("simple_evals.gpqa_diamond")
    user = {"target": {"api_endpoint": {"url": "http://other/v1"}}, "config": {"type": "gpqa_diamond_x"}}
    mirror = {"simple_evals": "registry.local/simple-evals:26.03"}
    r = render_task(task, user, url=URL, model_id="m", endpoint_type="completions", harness_images=mirror)
    cfg = _config(r)
    assert (cfg["target"]["api_endpoint"]["url"], cfg["target"]["api_endpoint"]["type"]) == (
        "http://other/v1",
        "completions",
    )
    assert cfg["config"]["type"] == "gpqa_diamond_x"
    assert r.image == "registry.local/simple-evals:26.03"
    r2 = render_task(task, None, url=URL, model_id="m", harness_images=mirror, container="mine:1")
    assert r2.image == "mine:1"  # the task's own container beats the harness map


def test_render_pre_and_post_cmd():
    task = resolve_nel("simple_evals.gpqa_diamond")
    r = render_task(task, None, url=URL, model_id="m", pre_cmd="export A=1", post_cmd="echo done")
    assert r.files["pre_cmd.sh"] == "export A=1" and r.files["post_cmd.sh"] == "echo done"
    assert _config(r)["metadata"] == {"pre_cmd": "export A=1", "post_cmd": "echo done"}
    assert (
        "source /results/pre_cmd.sh && (trap 'code=$?; source /results/post_cmd.sh; exit $code' EXIT;"
        in (r.argv[2])
    )


def test_merge_config_replaces_lists_and_copies():
    a = {"x": {"l": [1, 2], "k": 1}}
    merged = merge_config(a, {"x": {"l": [3]}}, None)
    assert merged == {"x": {"l": [3], "k": 1}}
    merged["x"]["k"] = 2
    assert a["x"]["k"] == 1


def test_catalogue_rows():
    rows = catalogue_rows(builtins=BUILTINS)
    assert len(rows) == 421 + len(BUILTINS)
    assert rows[0]["name"] == "launcher.aime2025" and rows[0]["source"] == "built-in"
    gsm = [r["name"] for r in catalogue_rows("GSM8K", BUILTINS)]
    assert gsm[0] == "launcher.gsm8k" and "lm-evaluation-harness.gsm8k" in gsm
    emb = catalogue_rows("Embedding")
    assert len(emb) >= 20  # NEL 0.2.6 has 20 tasks whose endpoint type is embedding
    assert all("embedding" in f"{r['name']} {r['harness']} {r['image']} {r['endpoint_types']}" for r in emb)
    assert catalogue_rows("no-such-thing-anywhere") == []


def test_nel_params():
    ours = {"temperature": 0.0, "max_tokens": 512, "limit_samples": 3, "seed": None, "top_p": None}
    assert nel_params(ours) == {"temperature": 0.0, "max_new_tokens": 512, "limit_samples": 3}
    with pytest.raises(ConfigError, match=r"^evaluation.tasks\[0\].params.seed: has no equivalent"):
        nel_params({"seed": 1}, key="evaluation.tasks[0].params")
