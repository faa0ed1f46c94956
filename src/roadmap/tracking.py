"""Weights & Biases, never fatal: a W&B error is reported once, logging stops, and training goes on."""
from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from .config import WandbConfig, WandbMode

log = logging.getLogger(__name__)


def resolve_mode(mode: WandbMode) -> str:
    """auto: WANDB_MODE if the user set it, online with an API key, offline without."""
    if mode != WandbMode.auto:
        return mode.value
    if os.environ.get("WANDB_MODE") in ("online", "offline", "disabled"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        return "online" if netrc.netrc().authenticators("api.wandb.ai") else "offline"
    except (OSError, netrc.NetrcParseError):
        return "offline"


class Tracker:
    def __init__(self, cfg: WandbConfig, run_dir: Path, name: str, group: str | None, config: dict,
                 run_id: str | None, enabled: bool = True):
        self.run = None
        mode = resolve_mode(cfg.mode)
        if not enabled or mode == "disabled":
            return
        for attempt in ([mode, "offline"] if mode == "online" else [mode]):
            try:
                import wandb
                self.run = wandb.init(project=cfg.project, entity=cfg.entity, name=name, group=group,
                                      tags=list(cfg.tags), config=config, dir=str(run_dir), id=run_id,
                                      resume="allow", mode=attempt, settings=wandb.Settings(console="off"))
                break
            except Exception as e:  # noqa: BLE001 - W&B must never stop a run
                log.warning("W&B %s start failed (%s: %s); %s", attempt, type(e).__name__, e,
                            "trying offline" if attempt == "online" else "training goes on without W&B")
        if self.run is not None and self.run.settings.mode == "offline":
            log.info("W&B is offline; to upload this run later: wandb sync %s", Path(self.run.dir).parent)

    @property
    def id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def _call(self, what: str, fn) -> None:
        if self.run is None:
            return
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            log.warning("W&B %s failed (%s: %s); training goes on without W&B", what, type(e).__name__, e)
            self.run = None

    def log(self, data: dict, step: int) -> None:
        self._call("log", lambda: self.run.log(data, step=step))

    def summary(self, data: dict) -> None:
        self._call("summary", lambda: self.run.summary.update(data))

    def finish(self, exit_code: int = 0) -> None:
        self._call("finish", lambda: self.run.finish(exit_code=exit_code))
        self.run = None
