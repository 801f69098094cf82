"""The response cache on disk: one file per key (<dir>/<2 hex>/<key>.json), written atomically, so
several proxies (invocations) can share one `caching_dir` without locks. This module owns that format."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class ResponseCache:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> bytes | None:
        """The stored response body, or None (a missing or torn entry is a miss)."""
        try:
            record = json.loads(self._path(key).read_bytes())
            return record["body"].encode()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: str, body: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump({"key": key, "body": body.decode()}, out)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
