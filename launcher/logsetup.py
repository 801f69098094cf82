"""structlog: readable console lines, a JSON log file per invocation, secret values redacted everywhere.

Nothing is configured on import; `configure` is called once an invocation folder exists.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

REDACTED = "***"


def redactor(secrets: Iterable[str]):
    values = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(value):
        if isinstance(value, str):
            for secret in values:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(v) for v in value]
        return value

    def processor(_logger, _method, event_dict):
        return scrub(event_dict)

    return processor


def json_file_tee(path: str):
    def processor(_logger, _method, event_dict):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event_dict, default=str) + "\n")
        return event_dict

    return processor


def console_threshold(level: int):
    """Everything goes to the JSON file; the console shows only `level` and above."""
    import logging

    import structlog

    def processor(_logger, method, event_dict):
        if logging.getLevelName(method.upper()) < level:
            raise structlog.DropEvent
        return event_dict

    return processor


def configure(log_file: str | None, secrets: Iterable[str] = (), verbose: bool = False) -> None:
    import logging

    import structlog

    processors = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor(secrets),
    ]
    if log_file:
        processors.append(json_file_tee(log_file))
    processors += [
        console_threshold(logging.DEBUG if verbose else logging.WARNING),
        structlog.dev.ConsoleRenderer(colors=False),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str = "launcher"):
    import structlog

    return structlog.get_logger(name)
