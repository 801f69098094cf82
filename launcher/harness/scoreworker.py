"""The scoring worker: `main([<harness pid>, <tasks module>, <task name>])` in a child process started
(with the harness's sys.path) and killed by scoring.ScorePool; it dies with the harness. Standard library
only.

stdin: frames of a 4-byte big-endian length and a pickle of (Sample, record), from the harness only.
stdout: JSON lines: {"ready": true} once the task is imported, then one line per frame, in order:
{"scores": {metric: float}, "extracted": str | null} or {"error": "<Type>: <message>"}. Each line is
written as soon as its sample is scored, so the harness knows which sample a worker is on. Whatever a
scorer prints goes to stderr. The worker ends at the end of its input (the harness closed or died).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import sys

FRAME = struct.Struct(">I")


def frame(payload: bytes) -> bytes:
    return FRAME.pack(len(payload)) + payload


def read_exactly(fh, n: int) -> bytes | None:
    data = fh.read(n)
    return data if len(data) == n else None


def reply(task, sample, record) -> dict:
    try:
        scores, extracted = task.score(sample, record)
        scores = {str(k): float(v) for k, v in scores.items()}
    except Exception as err:  # a scorer bug or an odd reply costs its sample only
        return {"error": f"{type(err).__name__}: {err}"}
    return {"scores": scores, "extracted": extracted if isinstance(extracted, str | None) else str(extracted)}


def die_with(parent: int) -> None:
    """SIGKILL this worker when the harness dies, even mid-sample (a scorer stuck in a regex never reads
    its input again, so the end of input would not end it): Linux's PR_SET_PDEATHSIG (prctl(2))."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the end of input still ends an idle worker
        pass
    if os.getppid() != parent:  # the harness died before the line above
        os._exit(1)


def main(argv: list[str]) -> int:
    from launcher.harness.api import registry

    parent, *argv = argv
    die_with(int(parent))
    out = os.fdopen(os.dup(1), "wb")  # the protocol's own descriptor
    os.dup2(2, 1)  # print() in a scorer lands in the log, not in the protocol
    sys.stdout = sys.stderr
    module, name = argv
    task = registry(module)[name]
    out.write(b'{"ready": true}\n')
    out.flush()
    stdin = sys.stdin.buffer
    while (head := read_exactly(stdin, FRAME.size)) is not None:
        payload = read_exactly(stdin, FRAME.unpack(head)[0])
        if payload is None:
            break
        sample, record = pickle.loads(payload)
        out.write(json.dumps(reply(task, sample, record)).encode() + b"\n")
        out.flush()
    return 0
