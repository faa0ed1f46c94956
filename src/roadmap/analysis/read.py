"""Run records for the charts: every metrics.json under some folders, or a sweep's runs from W&B, as
RunRecords. A damaged record is kept, as `unreadable`, so that every reader names it; a record that
says running while no process holds its run is `killed`. The charts take one variant of the runs
(choose_variant) and say what they left out."""
from __future__ import annotations

import shlex
from pathlib import Path

from omegaconf import OmegaConf

from ..record import RunRecord, read_predictions
from ..train.lock import status_now


def _step_of(run_dir: Path) -> str:
    try:
        return str(OmegaConf.load(run_dir / "config.yaml").step.name)
    except Exception:  # noqa: BLE001 - no config either: the run is named by its directory
        return str(run_dir)


def records_from_dirs(paths: list[Path]) -> list[RunRecord]:
    """Every metrics.json under the given sweep (or run) directories, each once."""
    seen, out = set(), []
    for root in paths:
        if not Path(root).exists():
            raise FileNotFoundError(f"{root}: no such directory")
        for path in sorted(Path(root).rglob("metrics.json")):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                record = RunRecord.load(path)
            except ValueError as why:  # damaged: running the run's command again rebuilds it
                record = RunRecord(
                    step=_step_of(path.parent),
                    status="unreadable",
                    path=str(path.parent),
                    reason=f"{why}; run the same command again to rebuild it from its checkpoint",
                )
            if status_now(record.status, path.parent) == "killed":
                record.status = "killed"
                record.reason = (
                    f"killed: the record says running but no process holds the run (after "
                    f"{record.epochs_done} epoch(s)); run the same command again to resume it"
                )
            out.append(record)
    return out


def identity(r: RunRecord) -> tuple:
    """What names a run wherever its files lie: its regime, data, budget, step, undone step, variant
    and seed."""
    return r.regime, r.data, r.budget, r.step, r.undo, r.variant, r.seed


def one_per_run(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """Each run once, however many copies of it the folders hold (a sweep and its collected copy,
    say): the first completed copy (by path) is kept; a note per run found more than once. Damaged
    records stay, each its own."""
    kept: dict[tuple, RunRecord] = {}
    copies: dict[tuple, list[RunRecord]] = {}
    out = []
    for r in records:
        if r.status == "unreadable":
            out.append(r)
            continue
        key = identity(r)
        copies.setdefault(key, []).append(r)
        if key not in kept or (kept[key].status != "completed" and r.status == "completed"):
            kept[key] = r
    out += list(kept.values())
    notes = []
    for key, runs in copies.items():
        if len(runs) > 1:
            values = {r.final_top1 for r in runs if r.status == "completed"}
            notes.append(f"{len(runs)} copies of one run ({key[3]}{' without ' + key[4] if key[4] else ''}, seed "
                         f"{key[6]}{', variant ' + key[5] if key[5] else ''}) counted once, {kept[key].path}"
                         + ("; the copies disagree on final top-1: " + ", ".join(map(str, sorted(values)))
                            if len(values) > 1 else ""))
    return out, notes


def check_predictions(records: list[RunRecord]) -> list[str]:
    """A note naming each completed run whose predictions.npz cannot be read; such a run is charted
    by its record alone (no bootstrap), its `predictions` cleared."""
    notes = []
    for r in records:
        if r.status == "completed" and r.path and r.predictions:
            try:
                read_predictions(Path(r.path) / r.predictions)
            except ValueError as why:
                notes.append(f"{why}: its run is charted without the bootstrap over test images")
                r.predictions = None
    return notes


def records_from_wandb(project: str, group: str, api=None) -> list[RunRecord]:
    """The same records from the W&B API: the runs of one group (a sweep) of ENTITY/PROJECT."""
    if api is None:
        import wandb
        api = wandb.Api()
    return [RunRecord.from_wandb(run) for run in api.runs(project, filters={"group": group})]


def readable(records: list[RunRecord]) -> list[RunRecord]:
    """The records that could be read (damaged ones stay in the list that readers name as failed);
    ValueError naming the damaged ones when there is none."""
    out = [r for r in records if r.status != "unreadable"]
    if records and not out:
        raise ValueError(f"no readable run record among {len(records)}: "
                         + "; ".join(f"{r.path}: {r.reason}" for r in records[:3]))
    return out


def choose_variant(records: list[RunRecord], variant: str | None = None
                   ) -> tuple[list[RunRecord], str, dict[str, list[RunRecord]]]:
    """The records of one variant (run.py's overrides that change what a run computes; "" for the
    steps as they are), the variant, and the records left out, by variant. By default the variant
    that covers the most steps (the steps as they are on a tie), so a side sweep into a roadmap's
    folder (`-m step=micro/gelu model.kernel_size=5`) leaves the roadmap's chart as it was. Damaged
    records, of no known variant, stay in to be named. ValueError for a `variant` that no record
    has."""
    steps: dict[str, set] = {}
    for r in readable(records):
        steps.setdefault(r.variant, set()).add(r.step)
    if variant is None:
        variant = max(steps, key=lambda v: (len(steps[v]), v == ""), default="")
    elif variant not in steps:
        raise ValueError(f"--variant {variant!r} is not among these records' variants: "
                         + "; ".join(repr(v) for v in sorted(steps)))
    kept = [r for r in records if r.status == "unreadable" or r.variant == variant]
    left: dict[str, list[RunRecord]] = {}
    for r in records:
        if r not in kept:
            left.setdefault(r.variant, []).append(r)
    return kept, variant, left


def describe_left_out(left: dict[str, list[RunRecord]]) -> list[str]:
    """One line per variant left out of a chart: its runs, steps, and how to chart it instead."""
    return [f"left out {len(runs)} run(s) of variant {v!r} ({', '.join(sorted({str(r.step) for r in runs}))}); "
            f"chart them with --variant {shlex.quote(v)}" for v, runs in sorted(left.items())]
