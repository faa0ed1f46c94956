"""What a run leaves beside its record: checkpoint.pt, config.yaml and overrides.yaml, each written
atomically, and the checks that a checkpoint is this run's."""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
from enum import Enum
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..errors import ConfigMismatch, CorruptCheckpoint
from ..files import atomic_write, temporary
from ..record import PREDICTIONS
from ..schedule import derive_schedule
from ..schema import RESUMABLE_CHANGES, RunConfig, flatten

CHECKPOINT_KEYS = {"model", "optimizer", "epoch", "global_step", "config", "record"}


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files of a process that died while writing (only call this while holding the run's
    lock)."""
    for name in ("checkpoint.pt", "metrics.json", "config.yaml", "overrides.yaml", PREDICTIONS):
        temporary(run_dir / name).unlink(missing_ok=True)


def save_checkpoint(state: dict, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        missing = CHECKPOINT_KEYS - set(state)
    except Exception as e:
        raise CorruptCheckpoint(
            f"checkpoint {path} cannot be read ({type(e).__name__}: {e}). It was left as it is; "
            "move it away (or restore a good copy) and run the same command again."
        ) from None
    if missing:
        raise CorruptCheckpoint(
            f"checkpoint {path} lacks {sorted(missing)}; it was left as it is. Move it away "
            "and run the same command again."
        )
    return state


def config_dict(cfg: RunConfig) -> dict:
    """The config as plain data (enums as their values), as checkpoints, config.yaml and W&B keep
    it; its `schedule` (what runs) derived afresh. What OmegaConf gives of it (`to_container(structured(cfg),
    enum_to_str=True)`, which tests/test_train.py compares for every step), 150 times faster: a run asks at its
    start and at every epoch, 25 ms each time through OmegaConf."""
    cfg.schedule = derive_schedule(cfg.train, cfg.budget)
    return _plain(cfg)


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


DERIVED = ("schedule.",)  # follows from the settings that are compared (older configs have none)
# The settings added since the first release that change what a run computes, each with what the
# code did before it existed: an older checkpoint, whose config lacks the key, did that.
ADDED = {"model.base_width": 64, "model.stem_stride": 4, "data.pipeline": "auto", "train.lr_scaling": "linear",
         "train.crop": "random_resized", "train.crop_ratio": [0.75, 1.3333333333333333], "train.crop_padding": 4,
         "data.fit": "resize", "data.val_split": 0, "data.val_split_seed": 0}


def check_same_config(saved: dict, current: dict, run_dir: Path) -> None:
    """ConfigMismatch unless the two configs compute the same thing (RESUMABLE_CHANGES may differ).
    A setting that did not exist when `saved` was written reads as what the code did then
    (ADDED)."""
    a, b = flatten(saved), flatten(current)
    a = {k: v for k, v in ADDED.items() if k not in a} | a
    folder = "image_folder" in (a.get("data.name"), b.get("data.name"))  # its root is its dataset, not a place
    diff = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and (not k.startswith(RESUMABLE_CHANGES + DERIVED)
                                         or (folder and k == "data.root"))]
    if diff:
        raise ConfigMismatch(
            f"{run_dir} holds a checkpoint of another configuration ({'; '.join(diff)}). "
            "Give this run its own directory (hydra.run.dir=...) or move that one away."
        )


def write_config(cfg: RunConfig, path: Path, overrides=()) -> None:
    """config.yaml, the resolved config, and overrides.yaml beside it, the command line's
    overrides."""
    atomic_write(path, lambda f: f.write(OmegaConf.to_yaml(config_dict(cfg)).encode()))
    atomic_write(
        path.with_name("overrides.yaml"),
        lambda f: f.write(OmegaConf.to_yaml(list(overrides)).encode()),
    )


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[3]
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return (
            sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
            if sha.returncode == 0
            else None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_name() -> str:
    """The processor's model name (/proc/cpuinfo on Linux, where platform.processor() is empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device, world: int) -> dict:
    """The machine a part of a run ran on, as its record keeps it: the processor and the instruction set torch's
    CPU kernels use (AVX2, AVX512...: two machines of one platform can differ in both, and in speed)."""
    info = {"device": str(device), "world_size": world, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return info
