"""Where the configs are, and what each config group offers."""
from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """`configs/` of this checkout, or $ROADMAP_CONFIG_DIR."""
    path = Path(os.environ.get("ROADMAP_CONFIG_DIR") or Path(__file__).resolve().parents[3] / "configs")
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(
            f"no config.yaml in {path}: install the package editable from its checkout (pip install -e .) "
            "or set ROADMAP_CONFIG_DIR to the repository's configs/ folder")
    return path


GROUPS = ("step", "regime", "recipe", "data", "budget", "wandb", "sweep", "experiment")


def options(group: str) -> list[str]:
    """The choices of a config group, e.g. options("step") -> ["baseline/enhanced_recipe", ...]."""
    root = config_dir() / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))
