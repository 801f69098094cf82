"""auto_export.json: what `python -m launcher.export auto` exports once an invocation has ended (NEL's
`execution.auto_export.destinations` plus the `export` group's per-destination settings). Pure; shared by
the local executor (run_all.sh's last step) and the Slurm executor (a job after the array)."""

from __future__ import annotations

import json

from launcher.config.schema import RunSpec

AUTO_EXPORT = "auto_export.json"  # in the invocation folder; read by launcher/export/__main__.py


def auto_export_file(spec: RunSpec) -> dict[str, str]:
    """{auto_export.json: content} when `execution.auto_export.destinations` is set, else {}."""
    destinations = list((spec.pending.auto_export or {}).get("destinations") or [])
    if not destinations:
        return {}
    settings = {d: dict(spec.pending.export.get(d) or {}) for d in destinations}
    for options in settings.values():  # NEL's spelling of the experiment
        if "experiment_name" in options:
            options.setdefault("experiment", options.pop("experiment_name"))
    body = {"destinations": destinations, "settings": settings}
    return {AUTO_EXPORT: json.dumps(body, indent=2, sort_keys=True) + "\n"}
