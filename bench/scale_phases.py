"""Where a submit's time goes: `python bench/scale_phases.py CONFIG_DIR CONFIG_NAME` calls what
`launcher run` calls, one step after another in one process, prints `step=seconds; ...` and kills the
invocation it started. Used by `bench/run.py scale-phases`."""

from __future__ import annotations

import sys
import time

START = time.perf_counter()

from launcher import api  # noqa: E402
from launcher.cli import hydra_front  # noqa: E402
from launcher.store import index, layout  # noqa: E402


def main(config_dir: str, config_name: str) -> None:
    marks = [("python start + imports", time.perf_counter())]
    ctx = hydra_front.compose(["--config-dir", config_dir, "--config-name", config_name])
    marks.append(("compose", time.perf_counter()))
    spec, overrides = ctx.jobs[0]
    prepared = api.prepare(spec, overrides)
    marks.append(("plan", time.perf_counter()))
    api.preflight_all([prepared])
    marks.append(("preflight", time.perf_counter()))
    record = prepared.record
    layout.create_invocation(prepared.plan, record, api.hydra_files(prepared.spec, list(overrides)))
    index.append(record)
    marks.append(("write folder + index", time.perf_counter()))
    with layout.invocation_lock(record.folder, record.invocation_id):
        prepared.executor.start(record)
        marks.append(("start run_all.sh", time.perf_counter()))
        api.wait_for_start(prepared.executor, record, 0)
        marks.append(("one status look", time.perf_counter()))
    previous, parts = START, []
    for name, at in marks:
        parts.append(f"{name}={at - previous:.2f}")
        previous = at
    print("; ".join([*parts, f"total={previous - START:.2f}"]))
    api.kill([record.invocation_id])


if __name__ == "__main__":
    main(*sys.argv[1:3])
