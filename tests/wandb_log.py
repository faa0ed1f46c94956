"""Read an offline W&B run's transaction log (run-<id>.wandb) back: W&B 0.31 has no reader of its own in Python.

The file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of records, each with a 7-byte header
(CRC, length, type: 1 full, 2 first, 3 middle, 4 last) and a chunk of a serialized `Record` protobuf."""
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7


def records(path: Path) -> list:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B log"
    out, pos, parts = [], HEADER, []
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the rest of a block too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        parts.append(chunk)
        if kind in (1, 4):  # a whole record, or its last piece
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(b"".join(parts))
            out.append(rec)
            parts = []
    return out


def run_info(run_dir: Path) -> dict:
    """job_type, group, tags, config (flat: key -> JSON text), history keys, summary (key -> JSON text), console text
    and artifacts ((type, name, aliases, file paths)) of an offline run."""
    (log,) = Path(run_dir).glob("run-*.wandb")
    info = {"config": {}, "history_keys": set(), "console": "", "artifacts": [], "summary": {}}
    for rec in records(log):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            info.update(job_type=rec.run.job_type, group=rec.run.run_group, tags=list(rec.run.tags))
            info["config"].update({item.key: item.value_json for item in rec.run.config.update})
        elif kind == "config":
            info["config"].update({item.key: item.value_json for item in rec.config.update})
        elif kind == "history":
            info["history_keys"] |= {item.key or "/".join(item.nested_key) for item in rec.history.item}
        elif kind == "summary":
            info["summary"].update({item.key: item.value_json for item in rec.summary.update})
        elif kind == "output_raw":
            info["console"] += rec.output_raw.line
        elif kind == "artifact":
            a = rec.artifact
            info["artifacts"].append((a.type, a.name, list(a.aliases), [c.path for c in a.manifest.contents]))
    return info
