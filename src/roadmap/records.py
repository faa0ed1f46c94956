"""What a run leaves behind: metrics.json, config.yaml and checkpoint.pt, each written atomically."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from .compose import flatten
from .config import RunConfig
from .errors import ConfigMismatch, CorruptCheckpoint, WriteFailed

# sections that may change between a run and its resumption: where and how it runs, and the paper's numbers and
# labels that reports set beside it, not what it computes
RESUMABLE_CHANGES = ("system.", "wandb.", "data.num_workers", "data.root", "data.download", "regime.paper",
                     "regime.title", "regime.compare_with", "step.label", "step.paper_", "step.note")


PREDICTIONS = "predictions.npz"  # the last epoch's predicted and true class of every validation image

SUMMARY = ("best_top1", "final_top1", "epochs_done", "images_per_s", "wall_time_s")


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _atomic(path: Path, write) -> None:
    """Write to a temporary file, then rename it over `path`: `path` is always the old or the new version.
    A failed write (full disk, quota) removes the temporary file and raises WriteFailed, one line long."""
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        cause = f"{e.strerror}" if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
        free = shutil.disk_usage(path.parent).free / 2**20
        raise WriteFailed(f"could not write {path} ({cause.splitlines()[0]}; {free:.0f} MiB free there); "
                          f"{path.name} is as it was before and no temporary file was left") from None


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files of a process that died while writing (only call this while holding the run's lock)."""
    for name in ("checkpoint.pt", "metrics.json", "config.yaml", "overrides.yaml", PREDICTIONS):
        _tmp(run_dir / name).unlink(missing_ok=True)


def save_checkpoint(state: dict, path: Path) -> None:
    _atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        missing = {"model", "optimizer", "epoch", "global_step", "config", "record"} - set(state)
    except Exception as e:
        raise CorruptCheckpoint(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}). It was left as it is; "
                                "move it away (or restore a good copy) and run the same command again.") from None
    if missing:
        raise CorruptCheckpoint(f"checkpoint {path} lacks {sorted(missing)}; it was left as it is. Move it away "
                                "and run the same command again.")
    return state


def save_predictions(rows: torch.Tensor, path: Path) -> None:
    """`rows` (images, 2), predicted and true class per validation image, as predictions.npz (`pred`, `target`;
    uint16, compressed: a few KB for 10,000 images)."""
    pred, target = (rows[:, i].numpy().astype(np.uint16) for i in (0, 1))
    _atomic(path, lambda f: np.savez_compressed(f, pred=pred, target=target))


def load_predictions(path: Path):
    """(pred, target) arrays of a predictions.npz, or None when it is missing or unreadable."""
    try:
        with np.load(path) as d:
            return d["pred"].astype(np.int64), d["target"].astype(np.int64)
    except (OSError, ValueError, KeyError):
        return None


def write_json(data: dict, path: Path) -> None:
    if data.get("status") == "completed":
        check_completed(data)
    _atomic(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def summarize(record: dict) -> dict:
    """The summary fields, from the per-epoch history (the one source of every recorded number)."""
    h = record["history"]
    if h:
        record.update(best_top1=max(r["val_top1"] for r in h), final_top1=h[-1]["val_top1"], epochs_done=len(h),
                      images_per_s=sum(r["images_per_s"] for r in h) / len(h),
                      wall_time_s=sum(r["epoch_time_s"] for r in h))
    else:
        record.update({k: None for k in SUMMARY}, epochs_done=0)
    return record


def record_from_checkpoint(state: dict, epochs: int) -> dict:
    """The record as it stood when `state` was saved, its status derived: completed only after every epoch."""
    record = dict(state["record"], history=list(state["record"]["history"]))
    summarize(record)
    done = state["epoch"] >= epochs and record["epochs_done"] == epochs
    record.update(status="completed" if done else "running", reason=None, signal=None)
    return record


def check_completed(record: dict) -> None:
    missing = [k for k in SUMMARY if record.get(k) is None]
    if missing:
        raise AssertionError(f"a completed record must have {missing}; not written")


def plain(cfg: RunConfig) -> dict:
    """The config as plain data (enums as their values)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)


def check_same_config(saved: dict, current: dict, run_dir: Path) -> None:
    a, b = flatten(saved), flatten(current)
    diff = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_CHANGES)]
    if diff:
        raise ConfigMismatch(f"{run_dir} holds a checkpoint of another configuration ({'; '.join(diff)}). "
                             "Give this run its own directory (hydra.run.dir=...) or move that one away.")


def write_config(cfg: RunConfig, path: Path, overrides=()) -> None:
    """config.yaml, the resolved config, and overrides.yaml beside it, the command line's overrides."""
    _atomic(path, lambda f: f.write(OmegaConf.to_yaml(OmegaConf.structured(cfg)).encode()))
    _atomic(path.with_name("overrides.yaml"), lambda f: f.write(OmegaConf.to_yaml(list(overrides)).encode()))


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if sha.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def hardware(device: torch.device, world: int) -> dict:
    info = {"device": str(device), "world_size": world, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return info
