"""Weights & Biases, never fatal: a W&B error is reported once, logging stops, and training goes
on."""
from __future__ import annotations

import logging
import netrc
import os
import shlex
import socket
import threading
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

from ..config.steps import roadmap_steps
from ..enums import WandbMode
from ..record import RunRecord
from ..schema import RunConfig, WandbConfig

log = logging.getLogger(__name__)

PROBE_S = 3.0         # to reach the W&B server at all (DNS and TCP), before trying online
# wandb.init's own limit online (its default is 90 s); the offline start follows
INIT_TIMEOUT_S = 8.0
# why online failed in this process: a sweep does not wait on every run
_online_failed: str | None = None


def reachable(url: str, timeout: float = PROBE_S) -> bool:
    """Whether a TCP connection to the server of `url` opens within `timeout` seconds, DNS
    included."""
    u = urlparse(url)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(
                (u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout
            ).close()
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


def rerun_command(overrides: Sequence[str], run_dir: Path) -> str:
    """The command that reruns (resumes) this one run, also when it was one job of a sweep."""
    return shlex.join(["python", "run.py", *overrides, f"hydra.run.dir={run_dir}"])


def run_identity(cfg: RunConfig, variant: str, record: RunRecord, overrides: Sequence[str],
                 run_dir: Path) -> tuple[str, dict, tuple[str, ...]]:
    """A training run's W&B name, the top-level config keys the dashboard sorts, groups and filters
    runs by, and its tags (the step's group, the regime, and leave_one_out for an undone step)."""
    undo = f"without/{cfg.undo}" if cfg.undo else None
    name = "/".join(
        filter(None, (cfg.regime.name, cfg.step.name, undo, variant, f"seed{cfg.seed}"))
    )
    undone = None
    if cfg.undo:
        undone = next((s.meta for s in roadmap_steps(cfg.regime.name) if s.name == cfg.undo), None)
    keys = {"step_name": cfg.step.name, "step_order": cfg.step.order, "step_label": cfg.step.label,
            "step_group": cfg.step.name.split("/")[0], "variant": variant, "regime_name": cfg.regime.name,
            "undo_step": cfg.undo, "undo_order": undone.order if undone else None,
            "undo_label": undone.label if undone else None,
            "params": record.params, "gmacs": record.gmacs, "git_commit": record.git_commit,
            "command": rerun_command(overrides, run_dir)}
    tags = (keys["step_group"], cfg.regime.name, *(["leave_one_out"] * bool(cfg.undo)))
    return name, keys, tags


def _code_file(path: str, root: str | None = None) -> bool:
    return path.endswith((".py", ".yaml", ".toml", ".txt", ".md"))


def _not_code(path: str, root: str | None = None) -> bool:
    """What log_code leaves out: environments, outputs, results, W&B's own folders."""
    parts = Path(os.path.relpath(path, root or ".")).parts
    return any(
        p.startswith(".")
        or p in ("outputs", "wandb", "results", "multirun", "build")
        or p.endswith(".egg-info")
        for p in parts[:-1]
    )


def online_if_reachable(mode: str) -> str:
    """`mode`, or offline for online when W&B's server could not be reached (asked once per process)."""
    global _online_failed
    if mode == "online" and _online_failed is None:
        url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
        if not reachable(url):
            _online_failed = f"{url} could not be reached within {PROBE_S:.0f} s"
    if mode == "online" and _online_failed is not None:
        log.warning("W&B online is not available (%s); logging offline", _online_failed)
        return "offline"
    return mode


def start_run(cfg: WandbConfig, mode: str, **kwargs):
    """wandb.init in this mode, or None (logged) if it fails: W&B must never stop a run."""
    global _online_failed
    try:
        import wandb
        # quiet: no footer of sparklines and sync hints after the run's own closing line (finish says where)
        settings = wandb.Settings(console=cfg.console.value, init_timeout=INIT_TIMEOUT_S, quiet=True)
        return wandb.init(mode=mode, settings=settings, **kwargs)
    except Exception as e:  # noqa: BLE001 - W&B must never stop a run
        if mode == "online":
            _online_failed = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        log.warning("W&B %s start failed (%s); %s", mode, str(e).splitlines()[0][:200] if str(e) else
                    type(e).__name__, "logging offline" if mode == "online" else "training goes on without W&B")
        return None


class Tracker:
    def __init__(self, cfg: WandbConfig, run_dir: Path, name: str, group: str | None, config: dict,
                 run_id: str | None, enabled: bool = True, job_type: str = "train", tags: tuple[str, ...] = ()):
        self.run = None
        mode = resolve_mode(cfg.mode)
        if not enabled or mode == "disabled":
            return
        mode = online_if_reachable(mode)
        for attempt in ([mode, "offline"] if mode == "online" else [mode]):
            self.run = start_run(cfg, attempt, project=cfg.project, entity=cfg.entity, name=name, group=group,
                                 job_type=job_type, tags=list(dict.fromkeys([*tags, *cfg.tags])), config=config,
                                 dir=str(run_dir), id=run_id, resume="allow")
            if self.run is not None:
                break
        if self.run is None:
            return
        # the x axis is the global step we log: a resumed run may repeat steps its last epoch reached
        self._call("define_metric", lambda: (self.run.define_metric("global_step"),
                                             self.run.define_metric("*", step_metric="global_step")))
        if cfg.save_code and self.run is not None:
            root = Path(__file__).resolve().parents[3]  # the project: configs/, src/, scripts/, run.py
            self._call("log_code", lambda: self.run.log_code(str(root), include_fn=_code_file,
                                                             exclude_fn=_not_code))
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
            log.warning(
                "W&B %s failed (%s: %s); training goes on without W&B", what, type(e).__name__, e
            )
            self.run = None

    def log(self, data: dict, step: int) -> None:
        self._call("log", lambda: self.run.log({**data, "global_step": step}))

    def log_checkpoint(self, path: Path, epoch: int, metadata: dict) -> None:
        """The checkpoint as this epoch's version of the run's model artifact (copied now: the file
        is replaced)."""
        def upload() -> None:
            import wandb
            art = wandb.Artifact(
                f"checkpoint-{self.run.id}", type="model", metadata={"epoch": epoch, **metadata}
            )
            art.add_file(str(path), name=path.name)
            self.run.log_artifact(art, aliases=["latest", f"epoch{epoch}"])
        self._call("checkpoint artifact", upload)

    def summary(self, data: dict) -> None:
        self._call("summary", lambda: self.run.summary.update(data))

    def finish(self, exit_code: int = 0) -> None:
        """End the W&B run, and say in one line where it is (and how to upload it, when offline)."""
        if self.run is None:
            return
        run = self.run
        self._call("finish", lambda: run.finish(exit_code=exit_code))
        offline = run.settings.mode == "offline"
        log.info(
            "W&B run %s (%s)%s",
            run.path,
            run.settings.mode,
            f"; upload it with: wandb sync {Path(run.dir).parent}" if offline else f": {run.url}",
        )
        self.run = None
