"""Secret values never leave the harness: every text it stores or prints passes through a Redactor."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

MIN_LENGTH = 4  # shorter values ("1", "yes") would mangle ordinary text; secrets are longer


class Redactor:
    def __init__(self, names: Iterable[str], environ: dict | None = None):
        env = os.environ if environ is None else environ
        self.pairs: list[tuple[str, str]] = []
        for name in names:
            value = env.get(name) or ""
            if len(value) < MIN_LENGTH:
                continue
            mark = f"[redacted ${name}]"
            # The raw value, and its spelling inside a JSON string (quotes, backslashes, control chars).
            for form in dict.fromkeys(
                [value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]]
            ):
                self.pairs.append((form, mark))
        self.pairs.sort(key=lambda p: -len(p[0]))  # longest first: a value containing another wins

    def __call__(self, text: str) -> str:
        for value, mark in self.pairs:
            if value in text:
                text = text.replace(value, mark)
        return text


NONE = Redactor(())
