"""`launcher-lm-eval`: run lm-evaluation-harness's own tasks as a launcher task, against the endpoint the
launcher gives the task (its run config), and write the scores where `launcher status`/`results` read them.

    launcher-lm-eval TASK[,TASK...] [lm_eval options ...]

From /results/run_config.json (or $LAUNCHER_CONFIG): the URL and model id (`local-completions`, or
`local-chat-completions` with --apply_chat_template for a chat endpoint), `limit_samples` (--limit: lm-eval's
first N documents, as our built-ins), `parallelism` (num_concurrent), `max_retries`, `request_timeout`.
Log-likelihood needs a tokenizer to find where the continuation starts: $LM_EVAL_TOKENIZER, a Hugging Face
tokenizer folder (default: the one baked in for SmolLM2-135M, from its GGUF, gguf_tokenizer.py); requests are
sent as text (tokenized_requests=False), which any OpenAI-compatible server accepts.
lm-eval's own output (results and per-sample logs) is in /results/lm-eval/; /results/results.json is its
scores in the launcher's results layout. The options this sets are refused on the command line, and so is
--num_fewshot: the offline data has no train split (export_data.py).
"""

import glob
import json
import os
import subprocess
import sys
import time

OUT = "/results/lm-eval"
OWNED = ("--model", "--model_args", "--tasks", "--output_path", "--limit", "--num_fewshot")


def fail(msg: str) -> None:
    print(f"launcher-lm-eval: {msg}", file=sys.stderr)
    sys.exit(2)


def lm_eval_argv(tasks: str, extra: list[str], config: dict) -> list[str]:
    for arg in extra:
        option = arg.split("=", 1)[0]
        if option in OWNED:
            fail(f"{option} is set by this entry point; remove it (it sets {', '.join(OWNED)})")
    params = config.get("params") or {}
    chat = config.get("endpoint_type") == "chat"
    args = {
        "model": config["model_id"],
        "base_url": config["url"],
        "tokenizer_backend": "huggingface",
        "tokenizer": os.environ.get("LM_EVAL_TOKENIZER", "/opt/tokenizers/smollm2-135m"),
        "tokenized_requests": "False",
        "num_concurrent": params.get("parallelism") or 1,
        "max_retries": params.get("max_retries") or 3,
        "timeout": int(params.get("request_timeout") or 300),
    }
    if any("," in str(v) or "=" in str(v) for v in args.values()):
        fail("the model id, URL or tokenizer has ',' or '=', which lm_eval's --model_args cannot carry")
    argv = [
        "lm_eval",
        "--model",
        "local-chat-completions" if chat else "local-completions",
        "--model_args",
        ",".join(f"{k}={v}" for k, v in args.items()),
        "--tasks",
        tasks,
        "--output_path",
        OUT,
        "--log_samples",
    ]
    if params.get("limit_samples"):
        argv += ["--limit", str(int(params["limit_samples"]))]
    if chat:
        argv.append("--apply_chat_template")
    return argv + extra


def scores(lm: dict, version: str) -> dict:
    """lm-eval's results_*.json -> results.tasks.<task>.metrics.<metric>.scores.<metric>: a metric
    `name,filter` keeps lm-eval's name (`acc` for the `none` filter, `exact_match,strict-match`)."""
    tasks = {}
    for task, row in lm["results"].items():
        count = (lm.get("n-samples", {}).get(task) or {}).get("effective")
        metrics = {}
        for key, value in row.items():
            if "," not in key or "_stderr," in key or not isinstance(value, (int, float)):
                continue
            metric, filt = key.split(",", 1)
            name = metric if filt == "none" else key
            stderr = row.get(f"{metric}_stderr,{filt}")
            stats = {"count": count, "stderr": stderr if isinstance(stderr, (int, float)) else None}
            metrics[name] = {"scores": {name: {"value": float(value), "stats": stats}}}
        tasks[task] = {
            "metrics": metrics,
            "headline": next(iter(metrics), None),
            "protocol": f"lm-evaluation-harness {version} `{task}`, run by lm-eval itself",
            "samples": {"items": count},
        }
    return tasks


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        fail("usage: launcher-lm-eval TASK[,TASK...] [lm_eval options]")
    path = os.environ.get("LAUNCHER_CONFIG", "/results/run_config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        fail(f"cannot read the run config {path}: {err}")
    if config.get("api_key_env"):  # lm-eval's local-* models send $OPENAI_API_KEY as the bearer token
        os.environ["OPENAI_API_KEY"] = os.environ.get(config["api_key_env"], "")
    before = set(glob.glob(f"{OUT}/**/results_*.json", recursive=True))
    code = subprocess.call(lm_eval_argv(argv[0], argv[1:], config))
    if code != 0:
        return code
    new = sorted(set(glob.glob(f"{OUT}/**/results_*.json", recursive=True)) - before, key=os.path.getmtime)
    if not new:
        fail(f"lm_eval wrote no results_*.json under {OUT}")
    with open(new[-1], encoding="utf-8") as f:
        lm = json.load(f)
    from importlib.metadata import version

    doc = {
        "results": {"tasks": scores(lm, version("lm_eval"))},
        "model_id": config["model_id"],
        "config": {k: config.get(k) for k in ("task", "model_id", "url", "endpoint_type", "params")},
        "lm_eval_results": os.path.relpath(new[-1], "/results"),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = "/results/results.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, "/results/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
