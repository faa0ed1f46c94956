"""Multirun support: a summary that counts every job of a sweep (Hydra's callback,
configs/config.yaml).

Each job leaves `<sweep dir>/.jobs/<number>.json` (its overrides, run directory and outcome),
written by the job's own process, so the summary also works with launchers that run jobs elsewhere
(submitit). The summary compares them with the jobs the sweep was to launch: completed, failed,
refused (the directory was another run's, in use or unreadable), interrupted, or never started. The
command exits non-zero unless every job completed."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .config.store import register
from .errors import WriteFailed, heard_stop_signals
from .record import STATUSES, RunRecord, print_table, runs_table, write_table
from .sweep_plan import estimate_line, sweep_jobs, swept_keys
from .train.lock import is_held, status_now


def expected_jobs(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper will launch (None for other sweepers): sweep_plan.sweep_jobs
    counted."""
    jobs = sweep_jobs(config)
    return None if jobs is None else len(jobs)


def outcome(job_return: JobReturn) -> dict:
    """What run.py's main returned, or the exception a job raised."""
    try:
        value = job_return.return_value  # raises the job's exception, if it failed
    except Exception as error:  # noqa: BLE001 - any job's failure is counted, never raised here
        return {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    return (
        value if isinstance(value, dict) else {"status": "failed", "reason": f"returned {value!r}"}
    )


def _reason(job: dict, width: int = 160) -> str:
    """A job's reason on one line: the first line of its message, its run directory left out of the
    paths in it (the summary names the run already), cut at a word to `width` characters."""
    text = job["reason"].splitlines()[0]
    if job.get("run_dir"):
        text = text.replace(str(job["run_dir"]).rstrip("/") + "/", "")
    return textwrap.shorten(text, width, placeholder=" …")


def _group(status: str, reason: str, runs: list[str], shown: int = 3) -> str:
    """Jobs that ended with one status and reason: `run: status (reason)` for one, else their count
    and the first few runs (scripts/status.py lists every run with its reason)."""
    why = f" ({reason})" if reason else ""
    if len(runs) == 1:
        return f"{runs[0]}: {status}{why}"
    more = f" and {len(runs) - shown} more" if len(runs) > shown else ""
    return f"{len(runs)} {status}{why}: {', '.join(runs[:shown])}{more}"


# this multirun's id, inherited by job processes that a launcher starts
LAUNCH_ENV = "ROADMAP_SWEEP_LAUNCH"


def joblib_jobs(launcher) -> int | None:
    """How many jobs Hydra's joblib launcher runs at once (its n_jobs: -1 all cores, -2 all but one,
    ...); None for another launcher."""
    if "joblib" not in str(OmegaConf.select(launcher, "_target_", default="")).lower():
        return None
    n = int(OmegaConf.select(launcher, "n_jobs", default=-1) or 1)
    return n if n > 0 else max(1, (os.cpu_count() or 1) + 1 + n)


def jobs_side_by_side(launcher) -> int:
    """How many of a sweep's jobs share this machine at once: the joblib launcher's count, else
    one."""
    return joblib_jobs(launcher) or 1


def jobs_elsewhere(config: DictConfig) -> bool:
    """Whether the launcher runs the jobs in other processes (joblib with more than one job,
    submitit), not in this one (the basic launcher, and joblib with one job, which it runs
    in-process)."""
    launcher = OmegaConf.select(config, "hydra.launcher", default=None)
    if launcher is None or "BasicLauncher" in str(
        OmegaConf.select(launcher, "_target_", default="")
    ):
        return False
    return joblib_jobs(launcher) != 1


def _job_state(job: dict) -> str:
    """A job that started and never reported its end: what its run's record and lock say now."""
    run_dir = Path(job["run_dir"]) if job.get("run_dir") else None
    record = RunRecord.read(run_dir / "metrics.json") if run_dir else None
    if record is None or record.status not in STATUSES:
        return "interrupted"
    return status_now(record.status, run_dir)


# what a sweep may vary while every job still reads the same data, on the same device, in batches of one size
SAME_DATA = ("step", "seed", "undo", "model.", "train.", "budget.", "wandb.")


def refusal_of_every_job(config: DictConfig) -> str | None:
    """What every job of the sweep would be refused for, found before the first starts (a dataset not
    found, a device not there, a batch larger than the data): its one line, or None. Checked where the
    jobs differ only in settings that leave the data, the device and the batch size as they are;
    otherwise each job checks itself as it starts. Only for jobs run on this machine (the basic and
    joblib launchers): a SLURM job's node has its own data and devices."""
    launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
    if not ("BasicLauncher" in launcher or "joblib" in launcher.lower()):
        return None
    keys = swept_keys(config)
    if keys is None or any(not k.lstrip("+~").startswith(SAME_DATA) or k.lstrip("+~") == "train.batch_size"
                           for k in keys):
        return None
    from .config.compose import to_run_config
    from .train.lifecycle import can_start
    base = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    try:
        run = to_run_config(base)
    except Exception:  # noqa: BLE001 - the sweep's own values may be what completes it: the jobs check themselves
        return None
    try:
        can_start(run)
    except ValueError as e:
        return str(e)
    return None


def start_the_resource_tracker_deaf_to_sighup() -> None:
    """joblib's workers share a resource tracker, a process in the sweep's process group that ignores SIGINT and
    SIGTERM but not SIGHUP: a closed terminal would kill it, and the one joblib starts in its place would end the
    sweep with a KeyError traceback for every shared-memory file it was never told of. Started here with SIGHUP
    ignored, it keeps ignoring it (an ignored signal stays so across exec); it ends when the sweep does. The jobs,
    started later, keep their SIGHUP."""
    from joblib.externals.loky.backend.resource_tracker import ensure_running
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


class SweepSummary(Callback):
    """After a multirun: one line counting every job's outcome, naming those that did not complete.

    Each launch of a sweep keeps its own markers (`.jobs/<launch id>/`), so two copies of one sweep
    on one directory each count their own jobs. A sweep stopped by SIGINT, SIGTERM or SIGHUP prints its line
    too: from run.py when the jobs run in this process, from a signal handler here when a launcher
    runs them elsewhere."""
    active: "tuple[SweepSummary, DictConfig] | None" = None

    def _jobs_dir(self, config: DictConfig) -> Path:
        launch = getattr(self, "launch", None) or os.environ.get(LAUNCH_ENV, "unknown")
        return Path(config.hydra.sweep.dir) / ".jobs" / launch

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        refusal = refusal_of_every_job(config)
        if refusal:  # one line, before anything is written, instead of the same failure in every job
            sys.exit(f"error: {refusal}")
        self.launch = os.environ[LAUNCH_ENV] = (
            f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        )
        self.expected = expected_jobs(config)
        SweepSummary.active = (self, config)
        try:
            line = estimate_line(config, jobs_side_by_side(config.hydra.launcher))
        except Exception as e:  # noqa: BLE001 - an estimate never stops a sweep
            line = f"no estimate ({type(e).__name__}: {e})"
        if line:
            print(line, file=sys.stderr, flush=True)
        if jobs_elsewhere(config) and threading.current_thread() is threading.main_thread():
            if joblib_jobs(config.hydra.launcher):
                start_the_resource_tracker_deaf_to_sighup()
            # the jobs run in other processes: say how far it got
            for sig in heard_stop_signals():  # nohup's SIGHUP stays ignored
                signal.signal(sig, self._stopped)

    def _jobs(self, config: DictConfig) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self._jobs_dir(config).glob("*.json"))]

    def _stopped(self, signum, frame) -> None:
        config = self.active[1]
        here = socket.gethostname()
        # a signal sent to this process alone (kill PID) reaches the jobs too
        for job in self._jobs(config):
            if (
                job.get("status") == "started"
                and job.get("host") == here
                and job.get("pid") not in (None, os.getpid())
            ):
                try:
                    os.kill(job["pid"], signum)
                except (ProcessLookupError, PermissionError):
                    pass  # ended meanwhile
        deadline = time.time() + 60  # the jobs end at their next batch: wait for them to say how
        while time.time() < deadline and any(
                j.get("status") == "started" and j.get("run_dir") and is_held(Path(j["run_dir"]))
                for j in self._jobs(config)):
            time.sleep(0.2)
        SweepSummary.print_active(f"stopped by {signal.Signals(signum).name}")
        sys.exit(128 + signum)

    def _mark(self, config: DictConfig, data: dict) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        jobs = self._jobs_dir(config)
        jobs.mkdir(parents=True, exist_ok=True)
        info = {"num": config.hydra.job.num, "overrides": list(config.hydra.overrides.task),
                "run_dir": config.hydra.runtime.output_dir, "host": socket.gethostname(), "pid": os.getpid()}
        (jobs / f"{config.hydra.job.num}.json").write_text(json.dumps(info | data))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._mark(config, {"status": "started"})
        if config.hydra.mode == RunMode.MULTIRUN:
            total = getattr(self, "expected", None)
            print(f"job {config.hydra.job.num + 1} of {total or '?'}: {' '.join(config.hydra.overrides.task)}",
                  file=sys.stderr, flush=True)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        self._mark(config, outcome(job_return))

    def summary(self, config: DictConfig, stopped: str | None = None) -> tuple[str, bool]:
        """(the line, whether every job completed)."""
        jobs = self._jobs(config)
        for j in jobs:
            if j["status"] == "started":
                j["status"] = _job_state(j)
        counts = Counter(j["status"] for j in jobs)
        expected = getattr(self, "expected", None)
        if expected is not None and expected > len(jobs):
            counts["never started"] = expected - len(jobs)
        total = expected if expected is not None else len(jobs)
        line = f"sweep of {total} job(s){', ' + stopped if stopped else ''}: " + \
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        bad = [j for j in jobs if j["status"] != "completed"]
        if not bad and not counts["never started"]:
            return f"{line} ({config.hydra.sweep.dir})", True
        root = Path(config.hydra.sweep.dir)
        where = lambda j: (  # noqa: E731
            Path(j["run_dir"]).relative_to(root).as_posix()
            if j.get("run_dir") and Path(j["run_dir"]).is_relative_to(root)
            else " ".join(j["overrides"])
        )
        groups: dict[tuple[str, str], list[str]] = {}  # jobs that ended alike, named once (51 of one missing dataset)
        for j in bad:
            groups.setdefault((j["status"], _reason(j) if j.get("reason") else ""), []).append(where(j))
        names = "; ".join(_group(status, reason, runs) for (status, reason), runs in groups.items())
        return f"{line}. Not completed: {names}" if names else line, False

    def print_line(self, config: DictConfig, stopped: str | None = None) -> None:
        line = self.summary(config, stopped)[0]
        try:
            print(line, file=sys.stderr)
        except OSError:  # the terminal has gone (SIGHUP): the runs' records and sweep.csv say it
            pass

    @staticmethod
    def print_table(sweep_dir: Path) -> None:
        """What the sweep's folder holds, every launch's runs: the table (step, seeds, mean final
        top-1, statuses), printed and written beside the runs as sweep.csv (scripts/status.py shows
        it at any time)."""
        records = []
        for path in sorted(sweep_dir.rglob("metrics.json")):
            record = RunRecord.read(path) or RunRecord(step=str(path.parent.relative_to(sweep_dir)),
                                                       status="unreadable")
            if record.status == "running":
                record.status = status_now(record.status, path.parent)
            records.append(record)
        if not records:
            return
        rows = runs_table(records)
        print_table(rows, sys.stderr)
        try:
            write_table(rows, sweep_dir / "sweep.csv")
        # the table was printed; a sweep's outcome does not hang on its copy
        except WriteFailed as e:
            print(f"sweep.csv not written: {e}", file=sys.stderr)

    @classmethod
    def print_active(cls, stopped: str) -> None:
        """The line of the sweep this process runs, if any and once: when a job it runs is
        interrupted, when it is stopped by a signal, or when an error ends it early (run.py)."""
        if cls.active is not None:
            summary, config = cls.active
            cls.active = None
            summary.print_line(config, stopped)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        SweepSummary.active = None
        line, ok = self.summary(config)
        # counted: this launch's markers are done
        shutil.rmtree(self._jobs_dir(config), ignore_errors=True)
        self.print_table(Path(config.hydra.sweep.dir))
        if ok:
            print(line, file=sys.stderr)
            return
        sys.exit(line)


register()  # also in job processes that a launcher (submitit, joblib) starts
