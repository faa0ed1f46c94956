"""Multirun support: the step list for `+sweep=roadmap`, and a summary that fails the command when runs failed."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .steps import roadmap_steps

log = logging.getLogger("roadmap.sweep")


def register_resolvers() -> None:
    """`${roadmap_steps:}`: every step in paper order, comma-separated, from the step configs' metadata."""
    if not OmegaConf.has_resolver("roadmap_steps"):
        OmegaConf.register_new_resolver("roadmap_steps", lambda: ",".join(s.name for s in roadmap_steps()))


def failed_runs(sweep_dir: Path, since: float) -> list[dict]:
    """Records under `sweep_dir` written since `since` that did not complete."""
    out = []
    for path in sorted(sweep_dir.rglob("metrics.json")):
        if path.stat().st_mtime < since:
            continue
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            rec = {"status": "unreadable"}
        if rec.get("status") != "completed":
            out.append(rec | {"path": str(path.parent)})
    return out


class SweepSummary(Callback):
    """After a multirun: one line naming the runs that failed, and a non-zero exit status if any did."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time() - 1.0  # file times may be rounded down

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        failed = failed_runs(Path(config.hydra.sweep.dir), getattr(self, "start", 0.0))
        if not failed:
            log.info("sweep finished: every run completed (%s)", config.hydra.sweep.dir)
            return
        names = ", ".join(f"{r.get('step', r['path'])} seed {r.get('seed', '?')} "
                          f"({(r.get('reason') or r['status']).split(';')[0]})" for r in failed)
        sys.exit(f"sweep finished with {len(failed)} failed run(s): {names}")


register_resolvers()  # also in job processes that a launcher (submitit) starts
