"""Compose `configs/` into a typed `RunConfig`, from notebooks, tests and scripts (run.py uses Hydra directly)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from .config import RunConfig


def config_dir() -> Path:
    """`configs/` of this checkout, or $ROADMAP_CONFIG_DIR."""
    path = Path(os.environ.get("ROADMAP_CONFIG_DIR") or Path(__file__).resolve().parents[2] / "configs")
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(
            f"no config.yaml in {path}: install the package editable from its checkout (pip install -e .) "
            "or set ROADMAP_CONFIG_DIR to the repository's configs/ folder")
    return path


def flatten(d: dict, prefix: str = "") -> dict:
    """{"model": {"kernel_size": 7}} -> {"model.kernel_size": 7}"""
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Typed, validated config. Raises ValueError naming the bad field and what is allowed."""
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), cfg)
    try:
        return OmegaConf.to_object(cfg)
    except Exception as e:  # OmegaConf wraps errors raised in __post_init__
        cause = e.__cause__ if isinstance(e.__cause__, ValueError) else e
        raise ValueError(str(cause).split("\n    full_key")[0]) from e


GROUPS = ("step", "recipe", "data", "budget", "wandb")


def options(group: str) -> list[str]:
    """The choices of a config group, e.g. options("step") -> ["baseline/enhanced_recipe", ...]."""
    root = config_dir() / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def check_choices(overrides: Sequence[str]) -> None:
    """Fail on an unknown group choice (`step=micro/gelux`) with the list of valid ones.

    Hydra's own message lists only the top level of nested groups such as step/."""
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or "(" in value or "$" in value:  # sweep functions: Hydra checks those
            continue
        for choice in value.split(","):  # a multirun list
            if choice not in options(key):
                valid = "\n  ".join(options(key))
                raise ValueError(f"unknown {key} {choice!r}. Valid {key} choices:\n  {valid}")


def compose_dict(step: str | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    overrides = ([f"step={step}"] if step else []) + list(overrides)
    check_choices(overrides)
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        try:
            return compose("config", overrides=overrides)
        except ConfigCompositionException as e:
            detail = str(e.__cause__).split("\n    full_key")[0] if e.__cause__ else ""
            raise ValueError(f"{e}: {detail}" if detail else str(e)) from e


def load_config(step: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Compose the step (e.g. "micro/gelu") with Hydra overrides (e.g. ["model.kernel_size=9"])."""
    return to_run_config(compose_dict(step, overrides))
