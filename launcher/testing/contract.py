"""The executor contract, as a pytest test class a plugin author subclasses:

    from launcher.testing.contract import ExecutorContract

    class TestMyExecutor(ExecutorContract):
        executor_class = MyExecutor
        def tasks(self):  # optional: tasks your executor can really run
            return [{"name": "t1", "container": "my-image", "command": ["true"]}]

The same suite checks the built-in local executor.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from launcher.config.boundary import to_run_spec
from launcher.executors import registry
from launcher.executors.base import Executor, InvocationRecord, JobStatus, State
from launcher.store import index, layout


class ExecutorContract:
    executor_class: type[Executor]
    run_timeout = 60.0  # seconds for started jobs to end

    def tasks(self) -> list[dict]:
        return [{"name": "first"}, {"name": "second"}]

    def execution(self, output_dir: Path) -> dict:
        return {"output_dir": str(output_dir)}

    # ---- helpers -----------------------------------------------------------------------------------

    def spec(self, output_dir: Path):
        data = {
            "execution": self.execution(output_dir),
            "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m"}},
            "evaluation": {"tasks": self.tasks()},
        }
        return to_run_spec(data, self.executor_class.name, self.executor_class.config_class)

    def planned(self, tmp_path: Path):
        spec = self.spec(tmp_path / "out")
        executor = self.executor_class(spec.execution)
        folder = str(tmp_path / "out" / "2026-01-01-00-00-00-0000abcd")
        return executor, executor.plan(spec, "0000abcd", folder, 1767225600.0)

    # ---- the contract --------------------------------------------------------------------------------

    def test_registered_under_its_name(self):
        assert registry.executors().get(self.executor_class.name) is self.executor_class

    def test_config_is_a_frozen_dataclass_with_defaults_and_output_dir(self):
        cls = self.executor_class.config_class
        assert dataclasses.is_dataclass(cls)
        config = cls()  # every field needs a default: it becomes the execution/<name> option
        assert "output_dir" in {f.name for f in dataclasses.fields(cls)}
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.output_dir = "elsewhere"

    def test_plan_is_pure(self, tmp_path):
        _, first = self.planned(tmp_path)
        _, second = self.planned(tmp_path)
        assert first == second
        assert list(tmp_path.iterdir()) == [], "plan() must not write anything"

    def test_plan_jobs_and_files_stay_inside_the_invocation(self, tmp_path):
        _, plan = self.planned(tmp_path)
        assert len(plan.jobs) == len(self.tasks())
        assert len({j.job_id for j in plan.jobs}) == len(plan.jobs)
        assert all(j.job_id.startswith(f"{plan.invocation_id}.") for j in plan.jobs)
        root = Path(plan.folder).resolve()
        for rel in [*plan.files, *(j.folder for j in plan.jobs)]:
            assert not os.path.isabs(rel)
            assert (root / rel).resolve().is_relative_to(root), rel

    def test_start_then_status_then_kill(self, tmp_path, monkeypatch):
        monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
        executor, plan = self.planned(tmp_path)
        executor.check_prerequisites(plan)
        record = InvocationRecord(
            invocation_id=plan.invocation_id,
            folder=plan.folder,
            executor=self.executor_class.name,
            execution=dataclasses.asdict(executor.config),
            jobs=plan.jobs,
            created=time.time(),
            host_env=plan.host_env,
        )
        layout.create_invocation(plan, record, {})
        index.append(record)
        executor.start(record)
        statuses = executor.status(record)
        assert [s.job_id for s in statuses] == [j.job_id for j in plan.jobs]
        assert all(isinstance(s, JobStatus) and isinstance(s.state, State) for s in statuses)
        executor.kill(record)
        deadline = time.monotonic() + self.run_timeout
        while not all(s.state.terminal for s in executor.status(record)):
            assert time.monotonic() < deadline, executor.status(record)
            time.sleep(0.2)
        chunks = list(executor.logs(record, plan.jobs[0].job_id, follow=False))
        assert all(isinstance(c, str) for c in chunks)
        stats = executor.proxy_stats(record)  # `status --detail`
        assert stats is None or (isinstance(stats[0], dict) and isinstance(stats[1], bool)), stats
        assert all(isinstance(k, str) for k in executor.describe())  # `info`
        line = self.executor_class.stop_orphan("ffffffff")  # `kill` of an id whose folder is gone
        assert line is None or isinstance(line, str), line
