"""The one reader of a task's results (results.tasks.<task>.metrics.<metric>.scores.<name>: results.json
from our harness, or results.yml as NEL's harness images write it) and of the harness's progress file.
Only regular files are opened (a task could leave a FIFO there)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from launcher.store.layout import PROGRESS, RESULTS_JSON, RESULTS_YML, read_regular


@dataclass(frozen=True)
class Score:
    task: str
    metric: str
    name: str
    value: float
    stderr: float | None = None
    count: int | None = None
    errors: int | None = None
    chance: float | None = None  # chance level of the task's headline metric, when the harness says
    protocol: str = ""  # the reference protocol the task reproduces, when the harness says

    @property
    def label(self) -> str:
        return self.metric if self.name == self.metric else f"{self.metric}/{self.name}"


def scores(task_dir: str | Path) -> list[Score]:
    """Every score in the task's results.json; [] when absent or shaped differently (a custom task's)."""
    tasks = _tasks(Path(task_dir))
    if tasks is None:
        return []
    out = []
    for task, body in tasks.items() if isinstance(tasks, dict) else ():
        metrics = body.get("metrics") if isinstance(body, dict) else None
        for metric, entry in metrics.items() if isinstance(metrics, dict) else ():
            named = entry.get("scores") if isinstance(entry, dict) else None
            for name, score in named.items() if isinstance(named, dict) else ():
                if not isinstance(score, dict) or not isinstance(score.get("value"), (int, float)):
                    continue
                stats = score.get("stats") if isinstance(score.get("stats"), dict) else {}
                out.append(
                    Score(
                        str(task),
                        str(metric),
                        str(name),
                        float(score["value"]),
                        _num(stats.get("stderr")),
                        _int(stats.get("count")),
                        _int(stats.get("errors")),
                        _num(body.get("chance")),
                        str(body.get("protocol") or ""),
                    )
                )
    return out


def _tasks(task_dir: Path):
    text = read_regular(task_dir / RESULTS_JSON)
    if text:
        try:
            return json.loads(text)["results"]["tasks"]
        except (ValueError, KeyError, TypeError):
            return None
    text = read_regular(task_dir / RESULTS_YML)
    if not text:
        return None
    import yaml  # only for a harness image that writes YAML alone (NEL's)

    try:
        return yaml.safe_load(text)["results"]["tasks"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None


def headline(task_dir: str | Path) -> str:
    """`name=value` pairs, the SCORE column of `status`."""
    return " ".join(f"{s.name}={s.value:.4f}" for s in scores(task_dir))


def progress(task_dir: str | Path) -> tuple[int | None, int | None]:
    text = read_regular(Path(task_dir) / PROGRESS)
    try:
        data = json.loads(text or "")
        return int(data["done"]), int(data["total"])
    except (ValueError, TypeError, KeyError):
        return None, None


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None
