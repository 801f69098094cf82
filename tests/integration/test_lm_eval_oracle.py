"""lm-evaluation-harness 0.4.13 itself as the oracle, on one real server: SmolLM2-135M served by llama.cpp
(`deployment=llama_cpp`), our `launcher.hellaswag` and lm-eval's own `hellaswag` on the same 100 items, and
our `launcher.gsm8k_cot_zeroshot` and lm-eval's on the same first items, in one invocation through the
packaged `evaluation=lm_eval_compare` tasks (lm-eval in `make lm-eval-image`'s image, offline).

The endpoint proxy's response cache answers identical requests once, so both harnesses score the very same
responses: the log-likelihood of every ending and every generated answer must then be equal, and so must
acc, acc_norm and exact_match. A difference can only come from how each harness builds its requests or
reads the answers: where the continuation starts (lm-eval: tokens [ctxlen:-1] of its own tokenization; ours:
the echoed tokens' text offsets), the prompts, the filters and metrics.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from statistics import mean

import pytest
import yaml
from helpers import invocation_of

from launcher.catalog import LLAMA_CPP_IMAGE
from launcher.proxy.cache import ResponseCache
from launcher.proxy.transforms import cache_key
from launcher.store import results as results_store

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
LM_EVAL_IMAGE = (ROOT / "images/lm-eval/IMAGE").read_text().strip()
GROUP = ROOT / "launcher/conf/evaluation/lm_eval_compare.yaml"
MODEL = "smollm2-135m-instruct"  # conf/deployment/llama_cpp.yaml served_model_name
GSM8K_ITEMS = 5  # generations of up to 256 tokens: the slow part on 2 cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lm_eval_image(docker_engine) -> str:
    """Built by the make target's script when missing; a failed build fails the test (no skip)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/build-lm-eval-image.sh"), LM_EVAL_IMAGE],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-lm-eval-image.sh failed:\n{proc.stderr[-3000:]}")
    return LM_EVAL_IMAGE


@pytest.fixture(scope="session")
def llama_image(docker_engine):
    try:
        docker_engine.images.get(LLAMA_CPP_IMAGE)
    except Exception:
        pytest.fail(f"{LLAMA_CPP_IMAGE} is missing: `make llama-image` builds it (make test does)")
    return LLAMA_CPP_IMAGE


def one_thread_server() -> list[str]:
    """The packaged llama.cpp command on one thread: on a machine shared by other jobs, ggml's two threads
    wait for each other at every graph node and a request took minutes (the numbers do not depend on it:
    both harnesses read the same responses)."""
    command = yaml.safe_load((ROOT / "launcher/conf/deployment/llama_cpp.yaml").read_text())["deployment"][
        "command"
    ]
    for flag in ("--n_threads", "--n_threads_batch"):
        command[command.index(flag) + 1] = "1"
    return command


def compare_config(tmp_path: Path, port: int) -> Path:
    """The packaged comparison, its hellaswag and gsm8k pairs, gsm8k on its first GSM8K_ITEMS items."""
    group = yaml.safe_load(GROUP.read_text())
    tasks = [t for t in group["evaluation"]["tasks"] if "truthfulqa" not in t["name"]]
    for t in tasks:
        if "gsm8k" in t["name"]:
            t["params"] = {**t.get("params", {}), "limit_samples": GSM8K_ITEMS}
    cfg = {
        "defaults": [{"execution": "local"}, {"deployment": "llama_cpp"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out")},
        "deployment": {"port": port, "command": one_thread_server()},
        "target": group["target"],
        "evaluation": {"params": group["evaluation"]["params"], "tasks": tasks},
    }
    (tmp_path / "compare.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "compare.yaml"


def scores(folder: Path) -> dict[str, float]:
    entry = results_store.read(folder).tasks[0]
    return {s.label: s.value for s in entry.scores}


def ours(folder: Path) -> dict[str, dict]:
    """Our per-sample records (results/samples.jsonl), by item id."""
    lines = (folder / "results/samples.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines) if "id" in r}


def dropped(cache: ResponseCache, prompt: str, upstream: str) -> float:
    """What lm-eval 0.4.13's local-completions leaves out of a continuation's log-likelihood: it sums
    token_logprobs[ctxlen:-1], taking the last entry for the one generated token; when the model's next
    token is its end of text, llama-cpp-python 0.3.36 echoes the prompt's tokens alone, and the slice drops
    the continuation's last token. Read from the proxy's cache, which answered both harnesses."""
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
    logprobs = json.loads(cache.get(cache_key(upstream, "/v1/completions", body)))["choices"][0]["logprobs"]
    return logprobs["token_logprobs"][-1] if logprobs["text_offset"][-1] < len(prompt) else 0.0


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def theirs(folder: Path, task: str) -> list[dict]:
    """lm-eval's per-document log (--log_samples), in document order; its `resps` are strings. A task with
    several filters logs each document once per filter, with the same responses."""
    (path,) = (folder / "results/lm-eval").rglob(f"samples_{task}_*.jsonl")
    docs = {d["doc_id"]: d for d in map(json.loads, path.read_text().splitlines())}
    return [docs[i] for i in sorted(docs)]


def test_lm_eval_scores_the_same_responses_as_ours(cli, tmp_path, harness_image, llama_image, lm_eval_image):
    proc = cli("run", "--config", str(compare_config(tmp_path, free_port())), "--wait", timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    inv = invocation_of(proc)
    jobs = {j["task"]: j for j in json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["jobs"]}
    assert {j["state"] for j in jobs.values()} == {"SUCCEEDED"}
    assert_same_scores({task: Path(job["folder"]) for task, job in jobs.items()})


def assert_same_scores(folder: dict[str, Path]) -> None:
    # HellaSwag: every ending's log-likelihood, then acc and acc_norm, on the same 100 items
    cache = ResponseCache(folder["launcher.hellaswag"].parent / "proxy/cache")
    upstream = json.loads((folder["launcher.hellaswag"].parent / "proxy/proxy.json").read_text())["upstream"]
    mine = ours(folder["launcher.hellaswag"])
    docs = theirs(folder["lm_eval.hellaswag"], "hellaswag")
    assert len(docs) == len(mine) == 100
    expected = []  # lm-eval's log-likelihoods as its slicing reads the responses both harnesses got
    for doc in docs:
        record = mine[doc["doc"]["source_id"]]["output"]
        prompts = [a["arg_0"] + a["arg_1"] for a in doc["arguments"].values()]
        expected.append(
            [
                ll - dropped(cache, p, upstream)
                for ll, p in zip(record["loglikelihoods"], prompts, strict=True)
            ]
        )
        lls = [float(resp[0][0]) for resp in doc["resps"]]  # logged as str(float): exact
        assert lls == pytest.approx(expected[-1], abs=1e-9), doc["doc"]["source_id"]
    a, b = scores(folder["launcher.hellaswag"]), scores(folder["lm_eval.hellaswag"])
    if all(
        dropped(cache, x["arg_0"] + x["arg_1"], upstream) == 0 for d in docs for x in d["arguments"].values()
    ):
        for metric in ("acc", "acc_norm"):
            assert a[metric] == pytest.approx(b[metric], abs=1e-9), (metric, a, b)
    else:  # lm-eval's scores are its metrics over its own (one token short) log-likelihoods
        golds = [int(d["doc"]["label"]) for d in docs]
        picked = [argmax(x) for x in expected]
        normed = [
            argmax([ll / len(c) for ll, c in zip(x, d["doc"]["choices"], strict=True)])
            for x, d in zip(expected, docs, strict=True)
        ]
        assert b["acc"] == pytest.approx(mean(p == g for p, g in zip(picked, golds, strict=True)), abs=1e-9)
        assert b["acc_norm"] == pytest.approx(
            mean(p == g for p, g in zip(normed, golds, strict=True)), abs=1e-9
        )

    # GSM8K zero-shot CoT: the same answers, the same exact_match under both filters
    mine = list(ours(folder["launcher.gsm8k_cot_zeroshot"]).values())
    docs = theirs(folder["lm_eval.gsm8k_cot_zeroshot"], "gsm8k_cot_zeroshot")
    assert len(docs) == len(mine) == GSM8K_ITEMS
    by_id = {r["id"]: r["output"]["response"] for r in mine}
    assert [d["resps"][0][0] for d in docs] == [by_id[f"gsm8k-{d['doc_id']}"] for d in docs]
    a, b = scores(folder["launcher.gsm8k_cot_zeroshot"]), scores(folder["lm_eval.gsm8k_cot_zeroshot"])
    for metric in ("exact_match,strict-match", "exact_match,flexible-extract"):
        assert a[metric] == b[metric], metric

    # one proxy cache: each of lm-eval's requests was answered from it (ours asked the model)
    stats = json.loads((folder["launcher.hellaswag"].parent / "proxy/proxy_stats.json").read_text())
    assert stats["cache_hits"] == 4 * 100 + GSM8K_ITEMS, stats
    assert stats["upstream_requests"] == stats["requests"] - stats["cache_hits"], stats
