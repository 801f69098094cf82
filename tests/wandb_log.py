"""Read a W&B offline run file (run-<id>.wandb) back into records, for the export tests.

wandb 0.31 ships no Python reader, so this walks the file's framing and decodes every record with wandb's
own protobuf schema (wandb.proto.wandb_internal_pb2.Record). Framing (LevelDB-log style, as in wandb's
former sdk/internal/datastore.py, checked against files wandb 0.31 writes): a 7-byte file header
':W&B' + magic 0xBEE1 (LE u16) + version u8; then 32 KiB blocks of records, each with a 7-byte header
crc32 (u32) + length (u16) + type (u8: 1 full, 2 first, 3 middle, 4 last); a block tail shorter than a
header is zero padding.
"""

from __future__ import annotations

import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def payloads(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    out, pos, partial = [], HEADER, b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += left_in_block  # zero padding to the end of the block
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            partial = chunk
        elif kind == MIDDLE:
            partial += chunk
        elif kind == LAST:
            out.append(partial + chunk)
            partial = b""
    return out


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    out = []
    for raw in payloads(path):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        out.append(rec)
    return out


def summary_config_files(path: Path) -> tuple[dict, dict, list[str], str]:
    """(summary, config, artifact file paths, run id) as the offline run recorded them."""
    import json

    summary, config, files, run_id = {}, {}, [], ""
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run_id = rec.run.run_id
            for item in rec.run.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "summary":
            for item in rec.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "artifact":
            files += [c.path for c in rec.artifact.manifest.contents]
    return summary, config, files, run_id
