"""A sweep's estimate before its first job: which of its jobs the folder already holds completed,
and how long the rest take, from the epoch times its runs recorded (the same step's where there are
some, else the folder's mean).

Jobs are matched to records by what names a run: step, seed, undone step and variant (the overrides
that change what it computes, config/variants.py). A folder with no timed epoch gets no number, only
where to look once the first epochs end (scripts/status.py); measure_study.py --estimate estimates a
study before anything trained."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from .config.variants import variant_name
from .record import RunRecord, clock


@dataclass(frozen=True)
class Job:
    step: str
    seed: int
    undo: str | None
    variant: str


def _lists(config: DictConfig) -> dict[str, list[str]]:
    """Each key's overrides, as the basic sweeper makes them: the sweeper's params, then the command
    line's (which win); a swept key has one per value."""
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    lists = {}
    for o in OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task)):
        key = o.get_key_element()
        lists[key] = (
            [f"{key}={v}" for v in o.sweep_string_iterator()]
            if o.is_sweep_override()
            else [f"{key}={o.get_value_element_as_str()}"]
        )
    return lists


def swept_keys(config: DictConfig) -> set[str] | None:
    """The keys whose values differ between the sweep's jobs (None for sweepers other than the basic
    one, whose jobs are not known in advance)."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    return {key for key, values in _lists(config).items() if len(values) > 1}


def sweep_jobs(config: DictConfig) -> list[Job] | None:
    """The jobs the basic sweeper will launch, in its order (None for other sweepers)."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    lists = _lists(config)  # their product, in the basic sweeper's order
    jobs = []
    for overrides in itertools.product(*lists.values()):
        values = dict(o.split("=", 1) for o in overrides)
        undo = values.get("undo", OmegaConf.select(config, "undo"))
        step = values.get("step", OmegaConf.select(config, "step.name"))
        jobs.append(Job(step, int(values.get("seed", OmegaConf.select(config, "seed", default=0))),
                        None if undo in (None, "null") else undo, variant_name(overrides)))
    return jobs


def _key(r: RunRecord) -> Job:
    return Job(r.step, r.seed, r.undo, r.variant or "")


def estimate_line(config: DictConfig, n_jobs: int) -> str | None:
    """One line: the jobs completed already, those to train, and the time they take at `n_jobs` at a
    time."""
    jobs = sweep_jobs(config)
    if jobs is None:
        return None
    sweep_dir = Path(config.hydra.sweep.dir)
    records = {}
    for path in sorted(sweep_dir.rglob("metrics.json")) if sweep_dir.is_dir() else []:
        r = RunRecord.read(path)
        if r is not None and r.step:
            records[_key(r)] = r
    done = [j for j in jobs if j in records and records[j].status == "completed"]
    todo = [j for j in jobs if j not in done]
    head = f"sweep plan: {len(jobs)} job(s), {len(done)} completed already, {len(todo)} to train"
    if not todo:
        return f"{head} ({sweep_dir})"
    times = {}
    for r in records.values():
        times.setdefault(r.step, []).extend(
            row.epoch_time_s for row in r.history if row.epoch_time_s
        )
    every = [t for ts in times.values() for t in ts]
    if not every:
        return (f"{head}; no estimate yet: no epoch of it has been timed in {sweep_dir} "
                f"(scripts/status.py {sweep_dir} gives the time left once the first epochs end)")
    epochs = config.budget.epochs or None
    seconds = 0.0
    for j in todo:
        r = records.get(j)
        left = (
            (r.epochs - r.epochs_done)
            if r is not None and r.epochs
            else (epochs or _epochs_of(records))
        )
        seconds += left * mean(times.get(j.step) or every)
    return (f"{head}; about {clock(seconds / max(1, n_jobs))} at {n_jobs} at a time, from {len(every)} epoch(s) "
            f"timed in {sweep_dir} (a step never timed there at the folder's mean)")


def _epochs_of(records: dict) -> int:
    """The epochs of the folder's runs, for a job whose budget is not fixed at the sweep's level."""
    return max((r.epochs or 0) for r in records.values()) or 1
