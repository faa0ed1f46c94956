"""Multirun support: the step list for `+sweep=roadmap`, run-directory names, and a summary that counts every job.

Each job leaves `<sweep dir>/.jobs/<number>.json` (its overrides, run directory and outcome), written by the job's
own process, so the summary also works with launchers that run jobs elsewhere (submitit). The summary compares
them with the jobs the sweep was to launch: completed, failed, refused (the directory was another run's, in use
or unreadable), interrupted, or never started. The command exits non-zero unless every job completed."""
from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .naming import variant_dir
from .leave_one_out import full_model, sweep_values
from .steps import roadmap_steps


def register_resolvers() -> None:
    """`${roadmap_steps:}`: every step in paper order, from the step configs' metadata;
    `${roadmap_full_step:}` and `${roadmap_leave_one_out:}`: the reverse study's model and undo list;
    `${roadmap_variant:${hydra:overrides.task}}`: the run directory's variant part (naming.py);
    `${roadmap_undo:${undo}}`: its `without/<step>/` part in the reverse study."""
    resolvers = {"roadmap_steps": lambda: ",".join(s.name for s in roadmap_steps()),
                 "roadmap_full_step": full_model, "roadmap_leave_one_out": sweep_values,
                 "roadmap_variant": lambda overrides: variant_dir(list(overrides)),
                 "roadmap_undo": lambda undo: "" if undo is None else f"without/{undo}/"}
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def expected_jobs(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper will launch (None for other sweepers)."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
    return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))


def outcome(job_return: JobReturn) -> dict:
    """What run.py's main returned, or the exception a job raised."""
    if job_return.status == JobStatus.COMPLETED and isinstance(job_return._return_value, dict):
        return job_return._return_value
    error = job_return._return_value
    return {"status": "failed", "reason": f"{type(error).__name__}: {error}" if error is not None else "unknown"}


class SweepSummary(Callback):
    """After a multirun: one line counting every job's outcome, naming those that did not complete."""

    @staticmethod
    def _jobs_dir(config: DictConfig) -> Path:
        return Path(config.hydra.sweep.dir) / ".jobs"

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        shutil.rmtree(self._jobs_dir(config), ignore_errors=True)  # a relaunch counts its own jobs
        self.expected = expected_jobs(config)

    def _mark(self, config: DictConfig, data: dict) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        jobs = self._jobs_dir(config)
        jobs.mkdir(parents=True, exist_ok=True)
        info = {"num": config.hydra.job.num, "overrides": list(config.hydra.overrides.task),
                "run_dir": config.hydra.runtime.output_dir}
        (jobs / f"{config.hydra.job.num}.json").write_text(json.dumps(info | data))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._mark(config, {"status": "started"})

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        self._mark(config, outcome(job_return))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        jobs = [json.loads(p.read_text()) for p in sorted(self._jobs_dir(config).glob("*.json"))]
        counts = Counter("interrupted" if j["status"] == "started" else j["status"] for j in jobs)
        expected = getattr(self, "expected", None)
        if expected is not None and expected > len(jobs):
            counts["never started"] = expected - len(jobs)
        total = expected if expected is not None else len(jobs)
        line = f"sweep of {total} job(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        bad = [j for j in jobs if j["status"] != "completed"]
        if not bad and not counts["never started"]:
            print(f"{line} ({config.hydra.sweep.dir})", file=sys.stderr)
            return
        root = Path(config.hydra.sweep.dir)
        where = lambda j: Path(j["run_dir"]).relative_to(root).as_posix() \
            if j.get("run_dir") and Path(j["run_dir"]).is_relative_to(root) else " ".join(j["overrides"])  # noqa: E731
        names = "; ".join(f"{where(j)}: {j['status']}"
                          f"{' (' + j['reason'].splitlines()[0][:160] + ')' if j.get('reason') else ''}"
                          for j in bad)
        sys.exit(f"{line}. Not completed: {names}")


register_resolvers()  # also in job processes that a launcher (submitit) starts
