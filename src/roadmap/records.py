"""What a run leaves behind: metrics.json, config.yaml and checkpoint.pt, each written atomically."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import torch
from omegaconf import OmegaConf

from .compose import flatten
from .config import RunConfig
from .errors import ConfigMismatch, CorruptCheckpoint

# sections that may change between a run and its resumption: where and how it runs, not what it computes
RESUMABLE_CHANGES = ("system.", "wandb.", "data.num_workers", "data.root", "data.download")


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(state: dict, path: Path) -> None:
    _atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        missing = {"model", "optimizer", "epoch", "global_step", "config"} - set(state)
    except Exception as e:
        raise CorruptCheckpoint(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}). It was left as it is; "
                                "move it away (or restore a good copy) and run the same command again.") from None
    if missing:
        raise CorruptCheckpoint(f"checkpoint {path} lacks {sorted(missing)}; it was left as it is. Move it away "
                                "and run the same command again.")
    return state


def write_json(data: dict, path: Path) -> None:
    _atomic(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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


def write_config(cfg: RunConfig, path: Path) -> None:
    _atomic(path, lambda f: f.write(OmegaConf.to_yaml(OmegaConf.structured(cfg)).encode()))


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
            "python": platform.python_version(), "torch": torch.__version__}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return info
