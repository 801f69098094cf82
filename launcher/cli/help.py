"""`launcher --help`: printed without importing Hydra, so it is instant."""

from __future__ import annotations

from pathlib import Path

USAGE = """\
launcher: run LLM evaluations against OpenAI-compatible endpoints, each task in a Docker container.

Run (Hydra: config groups, overrides, -m sweeps):
  launcher execution=local [target=local] [evaluation=smoke] [deployment=none] [key=value ...]
  launcher run --config-dir DIR --config-name NAME [-o key=value ...]
  launcher run --config FILE [-t TASK ...] [--env-file FILE] [--config-mode raw]   (NEL 0.2's form)
  launcher -m execution=local target=local evaluation.only=gsm8k,humaneval
  python -m launcher ...            the same program

Run options:
  -n, --dry-run        print the resolved config and every script; write and start nothing
  --wait               block with live progress; exit 1 if a task did not succeed
  -o, --override K=V   an override (repeatable); same as a bare K=V
  --config FILE        a YAML file as the primary config (its folder is searched for groups too)
  -t, --task NAME      run only this task (a repeated one: every repeat, or NAME.<position>) (repeatable)
  --config-mode raw    the file is the whole config, run as it is: no defaults composed, no overrides
                       (NEL 0.2's mode for its saved configs; the executor is execution.type)
  --env-file FILE      NAME=VALUE lines loaded into the launcher's environment (set variables win;
                       nothing is written): the values of host variables the config names
  --cfg job|hydra|all, --info, --resolve, -m/--multirun, --config-dir, --config-name,
  hydra.searchpath=[...]: as in Hydra; `launcher execution=local --help` shows Hydra's help
  with the composed config

Follow and manage (id: invocation, job <inv>.<n>, or sweep; any unique prefix):
  launcher status [ID ...] [--json] [--watch [--all]]
  launcher logs ID [-f]
  launcher kill ID ...
  launcher resume ID ... [--wait]
  launcher ls runs [--json] | ls tasks | ls executors
  launcher info ID

After the run:
  launcher export ID ... [--dest local|mlflow|wandb] [--format csv|json] [-o FILE]
  launcher results ID|SWEEP ... [--rows AXIS] [--cols AXIS] [--format table|markdown|csv|json]
  launcher report ID ... [-o report.html]
  launcher compare BASE CAND [--task T] [--metric M] [--format text|json|markdown]
  launcher gate BASE CAND --policy FILE [--verbose] [--format ...]   exit 0 GO, 1 NO-GO, 3 INCONCLUSIVE
  launcher VERB --help     details of a verb

Offline catalogue images (built here from PyPI for tasks whose NVIDIA image cannot be pulled):
  launcher images build HARNESS ...|all [--force]     then: launcher images ls [--json]
"""


def groups() -> str:
    conf = Path(__file__).resolve().parent.parent / "conf"
    lines = []
    for group in sorted(p for p in conf.iterdir() if p.is_dir() and not p.name.startswith("_")):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        lines.append(f"  {group.name}: {', '.join(options)}")
    # Plugins are not scanned here: importlib.metadata alone would double the time --help takes.
    lines.append("  execution: local, slurm, and any installed plugin (`launcher ls executors`)")
    return "Config groups (packaged):\n" + "\n".join(sorted(lines)) + "\n"


def print_help() -> None:
    print(USAGE)
    print(groups())
