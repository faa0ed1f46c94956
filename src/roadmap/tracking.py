"""Weights & Biases, never fatal: a W&B error is reported once, logging stops, and training goes on."""
from __future__ import annotations

import logging
import netrc
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from .config import WandbConfig, WandbMode

log = logging.getLogger(__name__)

PROBE_S = 3.0         # to reach the W&B server at all (DNS and TCP), before trying online
INIT_TIMEOUT_S = 8.0  # wandb.init's own limit online (its default is 90 s); the offline start follows
_online_failed: str | None = None  # why online failed in this process: a sweep does not wait on every run


def reachable(url: str, timeout: float = PROBE_S) -> bool:
    """Whether a TCP connection to the server of `url` opens within `timeout` seconds, DNS included."""
    u = urlparse(url)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


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
                 run_id: str | None, enabled: bool = True, job_type: str = "train", tags: tuple[str, ...] = ()):
        self.run = None
        mode = resolve_mode(cfg.mode)
        if not enabled or mode == "disabled":
            return
        global _online_failed
        if mode == "online" and _online_failed is None:
            url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
            if not reachable(url):
                _online_failed = f"{url} could not be reached within {PROBE_S:.0f} s"
        if mode == "online" and _online_failed is not None:
            log.warning("W&B online is not available (%s); logging offline", _online_failed)
            mode = "offline"
        for attempt in ([mode, "offline"] if mode == "online" else [mode]):
            try:
                import wandb
                settings = wandb.Settings(console="off", init_timeout=INIT_TIMEOUT_S)
                self.run = wandb.init(project=cfg.project, entity=cfg.entity, name=name, group=group,
                                      job_type=job_type, tags=list(dict.fromkeys([*tags, *cfg.tags])),
                                      config=config, dir=str(run_dir), id=run_id, resume="allow", mode=attempt,
                                      settings=settings)
                break
            except Exception as e:  # noqa: BLE001 - W&B must never stop a run
                if attempt == "online":
                    _online_failed = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                log.warning("W&B %s start failed (%s); %s", attempt, str(e).splitlines()[0][:200] if str(e) else
                            type(e).__name__, "logging offline" if attempt == "online" else
                            "training goes on without W&B")
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
