"""A minimal third-party executor: 'runs' each task by writing a marker file, instantly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from launcher.executors.base import Executor, JobStatus, Plan, PlannedJob, State


@dataclass(frozen=True)
class DummyConfig:
    output_dir: str = "results"
    greeting: str = "hello"


class DummyExecutor(Executor):
    name = "dummy"
    config_class = DummyConfig

    def plan(self, spec, invocation_id, folder, created):
        jobs, files = [], {}
        for n, task in enumerate(spec.selected_tasks()):
            sub = f"task{n}"
            jobs.append(PlannedJob(f"{invocation_id}.{n}", task.name, sub, "none", ("true",)))
            files[f"{sub}/job.json"] = json.dumps({"task": task.name, "greeting": self.config.greeting})
        return Plan(invocation_id, folder, tuple(jobs), files)

    def start(self, record):
        for job in record.jobs:
            Path(record.folder, job["folder"], "done").write_text("ok\n")

    def status(self, record):
        out = []
        for job in record.jobs:
            done = Path(record.folder, job["folder"], "done").exists()
            killed = Path(record.folder, job["folder"], "killed").exists()
            state = State.KILLED if killed else State.SUCCEEDED if done else State.PENDING
            out.append(JobStatus(job["job_id"], job["task"], state, str(Path(record.folder, job["folder"]))))
        return out

    def kill(self, record):
        for job in record.jobs:
            Path(record.folder, job["folder"], "killed").write_text("")

    def logs(self, record, job_id, follow):
        yield f"dummy job {job_id}\n"

    def check_prerequisites(self, plan):
        pass  # writing a file needs nothing

    def proxy_stats(self, record):
        return None  # no endpoint proxy

    def describe(self):
        return {}

    @classmethod
    def stop_orphan(cls, invocation_id):
        return None  # its marker files were in the folder
